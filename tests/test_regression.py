"""Deep hypotheses for regression (docs/regression.md): the native kernels
against a NumPy reference, MEMO on cases whose deepest student is known,
scikit-learn's estimator checks, every kind of teacher, bad input."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from sklearn.datasets import make_friedman1
from sklearn.dummy import DummyRegressor
from sklearn.ensemble import (
    BaggingRegressor,
    ExtraTreesRegressor,
    GradientBoostingRegressor,
    HistGradientBoostingRegressor,
    RandomForestRegressor,
)
from sklearn.linear_model import LinearRegression
from sklearn.neighbors import KNeighborsRegressor
from sklearn.tree import DecisionTreeRegressor
from sklearn.utils.estimator_checks import parametrize_with_checks

from crembo import _core
from crembo.compress.regression import (
    CREMBORegressor,
    LabelDistillerRegressor,
    hypothesis_intervals,
    hypothesis_levels,
    hypothesis_predictions,
    regression_agreement,
    regression_depth,
    regression_memo,
    regression_point_depth,
)


# ----------------------------------------------------------------- reference
def ref_depth(H, pred, tol=0.0):
    """Tukey depth by counting (docs/regression.md)."""
    H = np.asarray(H, dtype=np.float64)
    eps = tol * np.maximum(1.0, np.abs(H).max(axis=1))
    below = (H <= (pred + eps)[:, None]).sum(axis=1)
    above = (H >= (pred - eps)[:, None]).sum(axis=1)
    return np.minimum(below, above) / H.shape[1]


def ref_rank(m, t):
    return min(k for k in range(1, m + 1) if k / m >= t)


def ref_interval(H, t):
    S = np.sort(np.asarray(H, dtype=np.float64), axis=1)
    m = S.shape[1]
    k = ref_rank(m, t)
    return S[:, k - 1], S[:, m - k]


def tied_hypotheses(rng, n=60, m=11):
    """Small integers: many ties, so the tie rules matter."""
    return rng.integers(-3, 4, size=(n, m)).astype(np.float64)


@pytest.fixture(params=[np.float64, np.float32], ids=["f64", "f32"])
def dtype(request):
    return request.param


# ------------------------------------------------------------------- kernels
@pytest.mark.parametrize("m", [1, 2, 3, 7, 10, 49, 100])
def test_interval_rank_is_smallest_k_with_k_over_m_at_least_t(m):
    for t in list(hypothesis_levels(m)) + [1e-9, 0.013, 0.1, 0.25, 1 / 3, 0.49, 0.5]:
        assert _core.interval_rank(m, t) == ref_rank(m, t), (m, t)


def test_levels_are_distinct_and_reach_the_median():
    for m in (1, 2, 5, 10, 11, 100):
        lv = hypothesis_levels(m)
        assert lv[-1] == 0.5 and np.all(np.diff(lv) > 0)
        ranks = [_core.interval_rank(m, t) for t in lv]
        assert ranks == list(range(1, (m + 1) // 2 + 1))


def test_sort_and_intervals_match_numpy(dtype):
    rng = np.random.default_rng(0)
    for H in (rng.normal(size=(40, 9)), tied_hypotheses(rng)):
        H = H.astype(dtype)
        S = _core.sort_hypotheses(H)
        assert S.dtype == dtype
        np.testing.assert_array_equal(S, np.sort(H, axis=1))
        for t in hypothesis_levels(H.shape[1]):
            lo, hi = _core.hypothesis_intervals(S, t)
            rlo, rhi = ref_interval(H, t)
            np.testing.assert_array_equal(lo, rlo.astype(dtype))
            np.testing.assert_array_equal(hi, rhi.astype(dtype))
            assert np.all(lo <= hi)


def test_medians_and_clipping(dtype):
    rng = np.random.default_rng(1)
    H = rng.normal(size=(30, 8)).astype(dtype)
    S = _core.sort_hypotheses(H)
    np.testing.assert_allclose(_core.hypothesis_medians(S), np.median(H.astype(np.float64), axis=1), rtol=1e-6)
    prefer = rng.normal(scale=2, size=30).astype(dtype)
    for t in (0.125, 0.25, 0.5):
        lo, hi = ref_interval(H, t)
        np.testing.assert_allclose(_core.clip_to_intervals(S, t, prefer), np.clip(prefer, lo, hi), rtol=1e-6)
        med = _core.clip_to_intervals(S, t)
        assert np.all((med >= lo.astype(dtype)) & (med <= hi.astype(dtype)))


@pytest.mark.parametrize("tol", [0.0, 1e-3])
def test_point_depth_matches_counting(dtype, tol):
    rng = np.random.default_rng(2)
    for H in (rng.normal(size=(50, 13)), tied_hypotheses(rng)):
        H = H.astype(dtype)
        # Predictions at member values (ties), between them, and outside.
        pred = np.concatenate([H[:20, 3], rng.normal(size=20), H[40:, 0] + 0.5]).astype(dtype)
        got = _core.hypothesis_point_depth(H, pred, tol)
        np.testing.assert_array_equal(got, ref_depth(H, pred.astype(np.float64), tol))


def test_empirical_depth_is_the_insensitive_order_statistic(dtype):
    rng = np.random.default_rng(3)
    H = rng.normal(size=(40, 10)).astype(dtype)
    pred = rng.normal(scale=0.5, size=40).astype(dtype)
    d = np.sort(ref_depth(H, pred.astype(np.float64)))
    for delta in (0.0, 0.05, 0.1, 0.5, 0.99):
        k = min(math.floor(delta * 40), 39)
        assert _core.hypothesis_empirical_depth(H, pred, 0.0, delta) == d[k]
    assert regression_depth(H, pred, tol=0.0) == d[0]


@pytest.mark.parametrize("tol", [0.0, 1e-9, 1e-2])
def test_inside_the_interval_iff_depth_at_least_t(dtype, tol):
    """The consistency definition and the depth definition agree exactly."""
    rng = np.random.default_rng(4)
    for H in (rng.normal(size=(80, 12)), tied_hypotheses(rng, n=80, m=12), rng.normal(size=(80, 7))):
        H = H.astype(dtype)
        S = _core.sort_hypotheses(H)
        pred = np.concatenate([H[:40, 5], rng.normal(size=40)]).astype(dtype)
        depth = _core.hypothesis_point_depth(H, pred, tol)
        for t in list(hypothesis_levels(H.shape[1])) + [0.3, 0.42]:
            viol = _core.hypothesis_violations(S, pred, t, tol)
            assert viol == int(np.sum(depth < t)), (t, tol)


def test_max_point_depth_matches_brute_force(dtype):
    rng = np.random.default_rng(5)
    for H in (rng.normal(size=(30, 9)), tied_hypotheses(rng, n=30, m=10), np.ones((3, 4))):
        H = H.astype(dtype)
        S = _core.sort_hypotheses(H)
        brute = np.array(
            [max(ref_depth(np.tile(row, (len(row), 1)), row.astype(np.float64))) for row in H.astype(np.float64)]
        )
        np.testing.assert_array_equal(_core.max_point_depth(S, 0.0), brute)
        assert np.all(brute >= 0.5)


def test_public_wrappers_agree_with_the_kernels():
    rng = np.random.default_rng(6)
    H = rng.normal(size=(25, 6))
    pred = rng.normal(size=25)
    np.testing.assert_array_equal(regression_point_depth(H, pred, tol=0.0), ref_depth(H, pred))
    lo, hi = hypothesis_intervals(H, 1 / 3)
    rlo, rhi = ref_interval(H, 1 / 3)
    np.testing.assert_array_equal(lo, rlo)
    np.testing.assert_array_equal(hi, rhi)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda H, S, p: _core.sort_hypotheses(np.where(np.eye(4, 3) > 0, np.nan, H)), r"hypotheses\[0, 0\]"),
        (lambda H, S, p: _core.hypothesis_intervals(S, 0.0), "t: expected a level in"),
        (lambda H, S, p: _core.hypothesis_intervals(S, 0.6), "t: expected a level in"),
        (lambda H, S, p: _core.hypothesis_intervals(H[:, ::-1].copy(), 0.2), "not sorted"),
        (lambda H, S, p: _core.hypothesis_point_depth(H, p[:2], 0.0), "pred: expected"),
        (lambda H, S, p: _core.hypothesis_point_depth(H, p, -1.0), "tol"),
        (lambda H, S, p: _core.hypothesis_point_depth(H, np.full(4, np.nan), 0.0), r"pred\[0\]"),
        (lambda H, S, p: _core.hypothesis_empirical_depth(H, p, 0.0, 1.0), "delta"),
        (lambda H, S, p: _core.hypothesis_violations(S, p, 0.2, np.inf), "tol"),
        (lambda H, S, p: _core.sort_hypotheses(np.ones(3)), "2-d"),
        (lambda H, S, p: _core.sort_hypotheses(np.ones((0, 3))), "at least one point"),
    ],
)
def test_kernels_reject_bad_input(call, match):
    H = np.arange(12, dtype=np.float64).reshape(4, 3)
    with pytest.raises(ValueError, match=match):
        call(H, _core.sort_hypotheses(H), np.zeros(4))


def test_oracle_first_targets_are_clipped_medians_and_weights_grow():
    rng = np.random.default_rng(7)
    H = rng.normal(size=(20, 9))
    S = _core.sort_hypotheses(H)
    t = 2 / 9
    lo, hi = ref_interval(H, t)
    seen = []

    def fit(targets, weights):
        seen.append((targets.copy(), weights.copy()))
        pred = np.full(20, 100.0)  # outside everywhere: every point violates
        return pred

    r = _core.regression_oracle(S, t, fit, max_rounds=3, eta=0.5)
    assert not r["consistent"] and r["violations"] == 20 and r["rounds"] == 3
    np.testing.assert_allclose(seen[0][0], np.clip(np.median(H, axis=1), lo, hi))
    np.testing.assert_array_equal(seen[0][1], np.ones(20))
    # Everyone violates every round: targets kept, weights stay equal (rescaled).
    np.testing.assert_allclose(seen[2][0], seen[0][0])
    np.testing.assert_allclose(seen[2][1], np.ones(20))


def test_oracle_locks_in_allowed_predictions_and_upweights_violators():
    H = np.tile(np.arange(5, dtype=np.float64), (4, 1))  # every interval at 2/5 is [1, 3]
    S = _core.sort_hypotheses(H)
    seen = []
    preds = [np.array([1.5, 10.0, 2.5, -4.0]), np.array([1.5, 3.0, 2.5, 1.0])]

    def fit(targets, weights):
        seen.append((targets.copy(), weights.copy()))
        return preds[len(seen) - 1]

    r = _core.regression_oracle(S, 0.4, fit, max_rounds=5, eta=1.0)
    assert r["consistent"] and r["rounds"] == 2
    targets, weights = seen[1]
    np.testing.assert_allclose(targets, [1.5, 2.0, 2.5, 2.0])  # own values kept where allowed
    np.testing.assert_allclose(weights, np.array([1, 2, 1, 2]) * 4 / 6)  # violators doubled, total kept


def test_oracle_rejects_bad_callbacks():
    S = _core.sort_hypotheses(np.arange(12.0).reshape(4, 3))
    with pytest.raises(ValueError, match="4 predictions"):
        _core.regression_oracle(S, 0.4, lambda t, w: np.zeros(3))
    with pytest.raises(ValueError, match="finite"):
        _core.regression_oracle(S, 0.4, lambda t, w: np.full(4, np.nan))
    with pytest.raises(ValueError, match="eta"):
        _core.regression_oracle(S, 0.4, lambda t, w: t, eta=0.0)
    with pytest.raises(ValueError, match="max_rounds"):
        _core.regression_oracle(S, 0.4, lambda t, w: t, max_rounds=0)


# ---------------------------------------------------------------------- MEMO
def test_memo_reaches_the_median_when_the_student_can_fit_it():
    """Members are 2x + offsets: the median is linear in x, so a linear
    student can be inside every interval up to level 1/2 (the deepest)."""
    rng = np.random.default_rng(8)
    X = rng.uniform(-1, 1, size=(200, 1))
    offsets = np.sort(rng.normal(size=15))
    H = 2 * X + offsets[None, :]
    res = regression_memo(X, H, LinearRegression())
    assert res.level == 0.5
    assert res.depth >= 0.5
    assert regression_depth(H, res.student.predict(X)) >= 0.5
    assert res.trace[-1]["consistent"]


def brute_force_deepest_constant(H):
    """The deepest constant predictor: depth is piecewise constant between
    member values, so its maximum is attained at a member value."""
    best, best_c = -1.0, None
    for c in np.unique(H):
        d = ref_depth(H, np.full(len(H), c)).min()
        if d > best:
            best, best_c = d, c
    return best, best_c


def test_memo_finds_the_deepest_constant():
    """A constant student (the weighted mean): the deepest constant is
    known by brute force; MEMO can never beat it and, here, reaches it."""
    rng = np.random.default_rng(9)
    centres = rng.normal(scale=0.6, size=(12, 1))
    H = centres + rng.normal(size=(12, 20))
    best, _ = brute_force_deepest_constant(H)
    X = np.zeros((12, 1))
    res = regression_memo(X, H, DummyRegressor(), max_rounds=60, eta=0.5, tol=0.0)
    assert res.level is not None
    assert res.depth <= best + 1e-12  # no constant is deeper than the brute-force one
    assert res.level == pytest.approx(best)
    assert res.depth >= res.level  # sound: consistent at its level


def test_memo_reports_nothing_when_no_level_is_reachable():
    """Two points that demand far-apart values from a constant student."""
    H = np.array([[0.0, 0.1, 0.2, 0.3], [10.0, 10.1, 10.2, 10.3]])
    res = regression_memo(np.zeros((2, 1)), H, DummyRegressor(), max_rounds=5)
    assert res.level is None and res.student is None and res.depth is None
    assert len(res.trace) == 1  # the lowest level failed: the search stopped
    assert res.fallback_student is not None


def test_memo_delta_tolerates_violations():
    """99 points allow [0, 0.3] at level 1/4, one outlier needs ~10: a
    constant is consistent at 1/4 only when one violation is tolerated
    (the weighted mean is 0.25 at the first fit)."""
    H = np.array([[0.0, 0.1, 0.2, 0.3]] * 99 + [[10.0, 10.1, 10.2, 10.3]])
    X = np.zeros((100, 1))
    strict = regression_memo(X, H, DummyRegressor(), max_rounds=30)
    loose = regression_memo(X, H, DummyRegressor(), max_rounds=30, delta=0.01)
    assert strict.level is None
    assert loose.level == 0.25
    viol = _core.hypothesis_violations(_core.sort_hypotheses(H), loose.pred, loose.level, 1e-9)
    assert viol == 1
    assert loose.depth == 0.25  # the delta-insensitive depth skips the one violation


def test_memo_student_without_sample_weight_is_a_type_error():
    H = np.random.default_rng(0).normal(size=(20, 5))
    with pytest.raises(TypeError, match="sample_weight"):
        regression_memo(np.zeros((20, 1)), H, KNeighborsRegressor())


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(eta=0), ValueError, "eta"),
        (dict(eta="1"), TypeError, "eta"),
        (dict(delta=1.0), ValueError, "delta"),
        (dict(delta=-0.1), ValueError, "delta"),
        (dict(max_rounds=0), ValueError, "max_rounds"),
        (dict(tol=-1.0), ValueError, "tol"),
        (dict(candidates=[0.1, 0.7]), ValueError, "candidates"),
        (dict(candidates=[0.3, 0.2]), ValueError, "candidates"),
        (dict(sample_weight=np.ones(3)), ValueError, "sample_weight"),
    ],
)
def test_memo_rejects_bad_parameters(kwargs, exc, match):
    H = np.random.default_rng(0).normal(size=(20, 5))
    with pytest.raises(exc, match=match):
        regression_memo(np.zeros((20, 1)), H, **kwargs)


def test_memo_rejects_bad_hypotheses():
    X = np.zeros((3, 1))
    with pytest.raises(ValueError, match=r"hypotheses: entry \[1, 0\]"):
        regression_memo(X, np.array([[1.0, 2], [np.nan, 1], [0, 0]]))
    with pytest.raises(ValueError, match="X: expected 3 rows"):
        regression_memo(np.zeros((4, 1)), np.ones((3, 2)))
    with pytest.raises(TypeError, match="hypotheses"):
        regression_memo(X, np.array([["a", "b"]] * 3))


# ---------------------------------------------------------------- estimators
def small_forest():
    return RandomForestRegressor(n_estimators=10, min_samples_leaf=3, random_state=0)


@parametrize_with_checks(
    [
        CREMBORegressor(teacher=small_forest(), n_thresholds=4, random_state=0),
        CREMBORegressor(teacher=small_forest(), mode="memo", random_state=0),
        LabelDistillerRegressor(teacher=small_forest(), random_state=0),
    ]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def friedman():
    return make_friedman1(n_samples=400, noise=1.0, random_state=0)


def test_crembo_regressor_fits_and_reports(friedman):
    X, y = friedman
    m = CREMBORegressor(teacher=small_forest(), random_state=0).fit(X, y)
    assert m.n_hypotheses_ == 10
    assert m.score(X, y) > 0.4
    levels = [r["threshold"] for r in m.trace_ if r["stage"] == "sweep"]
    assert m.level_ in levels and all(0 < t <= 0.5 for t in levels)
    if m.memo_level_ is not None:
        assert min(levels) == m.memo_level_ and m.memo_depth_ >= m.memo_level_
    scores = [r["validation_score"] for r in m.trace_ if r["stage"] == "sweep"]
    assert m.validation_score_ == min(scores)
    assert 0.0 <= m.depth_ <= 1.0
    m2 = pickle.loads(pickle.dumps(m))
    np.testing.assert_array_equal(m2.predict(X), m.predict(X))


def test_deterministic_with_random_state(friedman):
    X, y = friedman
    a = CREMBORegressor(random_state=3, n_thresholds=4).fit(X, y).predict(X)
    b = CREMBORegressor(random_state=3, n_thresholds=4).fit(X, y).predict(X)
    np.testing.assert_array_equal(a, b)


def test_label_distiller_learns_the_teacher_mean(friedman):
    X, y = friedman
    teacher = small_forest().fit(X, y)
    vt = LabelDistillerRegressor(teacher, student=DecisionTreeRegressor(max_depth=30, random_state=0)).fit(X, y)
    # A full-depth tree reproduces its targets: the forest's prediction.
    np.testing.assert_allclose(vt.predict(X), teacher.predict(X), rtol=1e-6)


@pytest.mark.parametrize(
    "teacher, m",
    [
        (RandomForestRegressor(n_estimators=7, random_state=0), 7),
        (ExtraTreesRegressor(n_estimators=6, random_state=0), 6),
        (BaggingRegressor(LinearRegression(), n_estimators=5, max_features=0.6, random_state=0), 5),
        (GradientBoostingRegressor(n_estimators=20, random_state=0), 4),
        (HistGradientBoostingRegressor(max_iter=20, random_state=0), 4),
    ],
)
def test_teachers_with_sampled_hypotheses(friedman, teacher, m):
    X, y = friedman
    est = CREMBORegressor(teacher, n_bootstrap=4, n_thresholds=3, random_state=0).fit(X, y)
    assert est.n_hypotheses_ == m
    assert est.score(X, y) > 0.2


def test_fitted_forest_teacher_is_used_as_is(friedman):
    X, y = friedman
    teacher = small_forest().fit(X, y)
    est = CREMBORegressor(teacher, random_state=0).fit(X, y)
    assert est.teacher_ is teacher
    H = hypothesis_predictions(teacher, X[:5])
    np.testing.assert_allclose(H.mean(axis=1), teacher.predict(X[:5]))


def test_bagging_members_see_their_features(friedman):
    X, y = friedman
    bag = BaggingRegressor(LinearRegression(), n_estimators=3, max_features=0.5, random_state=0).fit(X, y)
    H = hypothesis_predictions(bag, X)
    for j, (est, f) in enumerate(zip(bag.estimators_, bag.estimators_features_)):
        np.testing.assert_allclose(H[:, j], est.predict(X[:, f]))
    np.testing.assert_allclose(H.mean(axis=1), bag.predict(X))


def test_hypothesis_matrix_teacher(friedman):
    X, y = friedman
    H = hypothesis_predictions(small_forest().fit(X, y), np.concatenate([X, X[:50]]))
    est = CREMBORegressor(H, mode="memo").fit(X, y, X_unlabeled=X[:50])
    assert est.teacher_ is None and est.n_hypotheses_ == 10
    with pytest.raises(ValueError, match="450"):
        CREMBORegressor(H[:10]).fit(X, y, X_unlabeled=X[:50])


@pytest.mark.parametrize("teacher", [LinearRegression(), KNeighborsRegressor(), "forest"])
def test_teacher_without_sampled_hypotheses_is_a_type_error(friedman, teacher):
    X, y = friedman
    with pytest.raises(TypeError, match="teacher: .* has no sampled hypotheses"):
        CREMBORegressor(teacher).fit(X, y)
    with pytest.raises(TypeError, match="no sampled hypotheses"):
        LabelDistillerRegressor(teacher).fit(X, y)


def test_boosting_with_members_only_is_a_type_error(friedman):
    X, y = friedman
    with pytest.raises(TypeError, match="no sampled hypotheses"):
        CREMBORegressor(GradientBoostingRegressor(), hypotheses="members").fit(X, y)


def test_bootstrap_makes_any_regressor_a_teacher(friedman):
    X, y = friedman
    est = CREMBORegressor(LinearRegression(), hypotheses="bootstrap", n_bootstrap=5, n_thresholds=3).fit(X, y)
    assert est.n_hypotheses_ == 5


def test_nan_and_constant_targets_are_rejected(friedman):
    X, y = friedman
    y_nan = y.copy()
    y_nan[3] = np.nan
    for cls in (CREMBORegressor, LabelDistillerRegressor):
        with pytest.raises(ValueError, match="y"):
            cls().fit(X, y_nan)
        with pytest.raises(ValueError, match="y: all 400 targets equal"):
            cls().fit(X, np.full(len(y), 2.5))


@pytest.mark.parametrize(
    "params, exc, match",
    [
        (dict(eta=-1), ValueError, "eta"),
        (dict(eta=None), TypeError, "eta"),
        (dict(delta=1.5), ValueError, "delta"),
        (dict(tol=-1e-3), ValueError, "tol"),
        (dict(mode="fast"), ValueError, "mode"),
        (dict(scoring="mae2"), ValueError, "scoring"),
        (dict(validation_fraction=0.0), ValueError, "validation_fraction"),
        (dict(n_thresholds=0), ValueError, "n_thresholds"),
        (dict(hypotheses="quantile"), ValueError, "hypotheses"),
        (dict(n_bootstrap=1), ValueError, "n_bootstrap"),
        (dict(max_rounds=0), ValueError, "max_rounds"),
    ],
)
def test_bad_parameters(friedman, params, exc, match):
    X, y = friedman
    with pytest.raises(exc, match=match):
        CREMBORegressor(**params).fit(X, y)


def test_student_without_sample_weight(friedman):
    X, y = friedman
    with pytest.raises(TypeError, match="sample_weight"):
        CREMBORegressor(small_forest(), KNeighborsRegressor()).fit(X, y)
    # VT needs no weights.
    LabelDistillerRegressor(small_forest(), KNeighborsRegressor()).fit(X, y)


def test_refit_uses_all_rows(friedman):
    X, y = friedman
    est = CREMBORegressor(small_forest(), refit=True, n_thresholds=3, random_state=0).fit(X, y)
    assert est.trace_[-1]["stage"] == "refit"
    assert est.student_.tree_.n_node_samples[0] == len(X)


def test_regression_agreement():
    y = np.array([0.0, 1, 2, 3])
    same = regression_agreement(np.tile(y, (3, 1)), y)
    assert same == (1.0, 0.0)
    r2, nmad = regression_agreement(np.array([y, y + 1.0]), y)
    assert r2 == pytest.approx(1 - 1 / np.var(y))
    assert nmad == pytest.approx(1 / np.mean(np.abs(y - y.mean())))
    with pytest.raises(ValueError, match="predictions"):
        regression_agreement(y[None, :], y)


# ------------------------------------------------------------ export and CLI
def test_exports_predict_like_the_tree(friedman, tmp_path):
    from crembo.trees.export import FastTree
    from crembo.trees.export_regression import (
        export_regression_cpp,
        export_regression_native,
        export_regression_rules,
        regression_fast_tree,
    )

    X, y = friedman
    m = CREMBORegressor(small_forest(), n_thresholds=3, random_state=0).fit(X, y)
    ft = regression_fast_tree(m)
    np.testing.assert_array_equal(ft.predict(X), m.predict(X))
    export_regression_native(m, tmp_path / "t.txt")
    np.testing.assert_array_equal(FastTree.load(tmp_path / "t.txt").predict(X), m.predict(X))
    rules = export_regression_rules(m).splitlines()
    assert len(rules) == 1 + m.student_.get_n_leaves()
    assert "THEN y = " in rules[1]
    cpp = export_regression_cpp(m)
    assert "inline double predict_value(const T* x)" in cpp
    with pytest.raises(TypeError, match="not a fitted tree regressor"):
        regression_fast_tree(LabelDistillerRegressor(small_forest(), LinearRegression()).fit(X, y))


def test_generated_cpp_agrees_with_the_tree(friedman, tmp_path):
    import shutil
    import subprocess

    from crembo.trees.export_regression import export_regression_cpp

    cxx = shutil.which("c++") or shutil.which("g++")
    if cxx is None:
        pytest.skip("no C++ compiler")
    X, y = friedman
    m = CREMBORegressor(small_forest(), n_thresholds=3, random_state=0).fit(X, y)
    (tmp_path / "tree.hpp").write_text(export_regression_cpp(m, name="reg"))
    (tmp_path / "main.cpp").write_text(
        '#include "tree.hpp"\n#include <cstdio>\nint main() { double x[10];\n'
        '  while (true) { for (int j = 0; j < 10; ++j) if (std::scanf("%lf", &x[j]) != 1) return 0;\n'
        '    std::printf("%.17g\\n", reg::predict_value(x)); } }\n'
    )
    subprocess.run([cxx, "-std=c++11", "-O1", "main.cpp", "-o", "main"], cwd=tmp_path, check=True)
    rows = X[:60]
    out = subprocess.run(
        [str(tmp_path / "main")],
        input="\n".join(" ".join(repr(float(v)) for v in r) for r in rows),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    np.testing.assert_array_equal(np.array(out, dtype=np.float64), m.predict(rows))


def test_cli_compress_evaluate_export_regression(friedman, tmp_path, capsys):
    import json

    import pandas as pd

    from crembo.cli.commands import main
    from crembo.cli.regression import infer_task

    X, y = friedman
    df = pd.DataFrame(X, columns=[f"f{j}" for j in range(X.shape[1])])
    df["target"] = y
    df["small"] = np.round(y) % 3 * 0.5  # three float values: a class label under --task auto
    path = tmp_path / "data.csv"
    df.to_csv(path, index=False)
    assert infer_task(df["target"].to_numpy()) == "regression"
    assert infer_task(df["small"].to_numpy()) == "classification"
    out = tmp_path / "out"
    rc = main(
        [
            "compress",
            str(path),
            "--label",
            "target",
            "--drop",
            "small",
            "--export",
            "rules,cpp,native",
            "-o",
            str(out),
            "-q",
            "--n-thresholds",
            "4",
        ]
    )
    assert rc == 0
    assert "crembo compress (regression)" in capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert report["task"] == "regression" and report["scores"]["test"]["student_r2"] > 0.3
    for suffix in ("rules.txt", "hpp", "fasttree.txt"):
        assert (out / f"student.{suffix}").is_file()
    assert main(["evaluate", str(out / "student.joblib"), str(path), "--label", "target", "--drop", "small"]) == 0
    assert "RMSE" in capsys.readouterr().out
    assert main(["export", str(out / "student.joblib"), "--format", "rules"]) == 0
    assert "THEN y = " in capsys.readouterr().out
    assert main(["export", str(out / "student.joblib"), "--format", "onnx", "-o", str(tmp_path / "x.onnx")]) == 2
    assert "not available for regression" in capsys.readouterr().err
    # --task regression forces it; a constant label is refused with a clear message.
    df["const"] = 1.5
    df.to_csv(path, index=False)
    assert main(["compress", str(path), "--label", "const", "--task", "regression", "-q", "-o", str(out)]) == 2
    assert "nothing to compress" in capsys.readouterr().err


# --------------------------------------------------------- native interval tree
def interval_loss(v, lo, hi, w=None):
    d = np.maximum(lo - v, 0) + np.maximum(v - hi, 0)
    return float(np.sum((1.0 if w is None else w) * d * d))


def test_interval_leaf_value_is_the_exact_minimiser():
    rng = np.random.default_rng(10)
    for trial in range(30):
        n = int(rng.integers(1, 40))
        a, b = rng.normal(size=n) * 3, rng.normal(size=n) * 3
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        if trial % 3 == 0:
            hi = lo  # point targets: the weighted mean
        w = rng.uniform(0.1, 2.0, size=n)
        v = _core.interval_leaf_value(lo, hi, w, hint=0.0)
        grid = np.linspace(min(lo.min(), v) - 1, max(hi.max(), v) + 1, 20001)
        best = min(interval_loss(g, lo, hi, w) for g in grid)
        assert interval_loss(v, lo, hi, w) <= best + 1e-9
        if trial % 3 == 0:
            assert v == pytest.approx(np.sum(w * lo) / np.sum(w))


def test_interval_leaf_value_takes_the_hint_inside_the_intersection():
    lo, hi = np.array([0.0, 1.0, -2.0]), np.array([3.0, 4.0, 2.0])  # intersection [1, 2]
    assert _core.interval_leaf_value(lo, hi, None, hint=1.5) == 1.5
    assert _core.interval_leaf_value(lo, hi, None, hint=10.0) == 2.0
    assert _core.interval_leaf_value(lo, hi, None, hint=-10.0) == 1.0


def test_hist_tree_regressor_on_points_is_a_least_squares_tree():
    from crembo import HistTreeRegressor

    rng = np.random.default_rng(11)
    X = rng.integers(0, 100, size=(300, 1)).astype(np.float64)
    y = np.sin(X[:, 0] / 10) + rng.normal(scale=0.1, size=300)
    ours = HistTreeRegressor(max_depth=2).fit(X, y)
    ref = DecisionTreeRegressor(max_depth=2, random_state=0).fit(X, y)
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=1e-9)
    np.testing.assert_allclose(ours.tree_.threshold, ref.tree_.threshold)
    full = HistTreeRegressor().fit(X, y)
    means = {x: y[X[:, 0] == x].mean() for x in np.unique(X[:, 0])}
    np.testing.assert_allclose(full.predict(X), [means[x] for x in X[:, 0]])


def test_hist_tree_regressor_learns_intervals():
    """Every interval contains [-1, 1] but the midpoints are scattered: a
    least-squares tree on the midpoints misses many intervals, the interval
    tree none."""
    from crembo import HistTreeRegressor

    rng = np.random.default_rng(12)
    X = rng.uniform(size=(400, 3))
    lo = -1.0 - rng.uniform(0, 100, size=400)
    hi = 1.0 + rng.uniform(0, 100, size=400)
    tree = HistTreeRegressor(max_depth=3).fit_intervals(X, lo, hi)
    p = tree.predict(X)
    assert np.all((p >= lo) & (p <= hi))
    assert interval_loss(p, lo, hi) == 0.0
    ls = DecisionTreeRegressor(max_depth=3, random_state=0).fit(X, (lo + hi) / 2).predict(X)
    assert interval_loss(ls, lo, hi) > 0.0
    # A step the tree can represent: two regimes with disjoint intervals.
    y_lo = np.where(X[:, 0] < 0.5, 0.0, 20.0)
    step = HistTreeRegressor(max_depth=1).fit_intervals(X, y_lo, y_lo + 10.0)
    assert interval_loss(step.predict(X), y_lo, y_lo + 10.0) == 0.0


def test_hist_tree_regressor_reuses_bins_and_checks_input():
    from crembo import BinnedData, HistTreeRegressor

    X, y = make_friedman1(n_samples=300, random_state=1)
    binned = BinnedData(X)
    a = HistTreeRegressor(max_depth=4).fit(binned, y).predict(X)
    b = HistTreeRegressor(max_depth=4).fit(X, y).predict(X)
    np.testing.assert_array_equal(a, b)
    # A row subset of the same bins: the tree sees those rows only, and each
    # leaf predicts the mean of its rows' targets.
    sub = HistTreeRegressor(max_depth=4).fit(binned.take(np.arange(100)), y[:100])
    assert sub.tree_.n_node_samples[0] == 100
    leaves = sub.apply(X[:100])
    for leaf in np.unique(leaves):
        np.testing.assert_allclose(sub.predict(X[:100])[leaves == leaf], y[:100][leaves == leaf].mean())
    with pytest.raises(ValueError, match="lo, hi: row 0"):
        HistTreeRegressor().fit_intervals(X, y + 1, y)
    with pytest.raises(ValueError, match="hi: expected 300"):
        HistTreeRegressor().fit_intervals(X, y, y[:5])
    with pytest.raises(ValueError, match="rounds"):
        HistTreeRegressor(rounds=0).fit(X, y)


def _hist_tree_regressor():
    from crembo import HistTreeRegressor

    return HistTreeRegressor(max_depth=5)


@parametrize_with_checks([_hist_tree_regressor()])
def test_hist_tree_regressor_sklearn_compatible(estimator, check):
    check(estimator)


def test_crembo_with_the_native_interval_tree(friedman):
    from crembo import HistTreeRegressor

    X, y = friedman
    teacher = small_forest().fit(X, y)
    est = CREMBORegressor(teacher, HistTreeRegressor(max_depth=4), n_thresholds=5, random_state=0).fit(X, y)
    assert isinstance(est.student_, HistTreeRegressor)
    assert est.score(X, y) > 0.4
    assert 0 < est.level_ <= 0.5
    from crembo.trees.export_regression import regression_fast_tree

    np.testing.assert_array_equal(regression_fast_tree(est).predict(X), est.predict(X))


# ------------------------------------------------------------------ CUDA twins
def test_cuda_twins_are_absent_or_agree_with_the_cpu():
    import crembo
    from crembo.compress.regression import regression_violations

    rng = np.random.default_rng(13)
    H = np.concatenate([rng.normal(size=(300, 11)), tied_hypotheses(rng, n=300, m=11)])
    pred = np.concatenate([H[:300, 4], rng.normal(size=300)])
    if not crembo.cuda_available():
        with pytest.raises(ValueError, match="device='cuda'"):
            regression_depth(H, pred, device="cuda")
        pytest.skip("no CUDA device (the CUDA twins are compile-checked only)")
    for dtype in (np.float64, np.float32):
        Hd, pd_ = H.astype(dtype), pred.astype(dtype)
        for tol in (0.0, 1e-9, 1e-2):
            np.testing.assert_array_equal(
                regression_point_depth(Hd, pd_, tol=tol, device="cuda"), regression_point_depth(Hd, pd_, tol=tol)
            )
            for delta in (0.0, 0.1):
                assert regression_depth(Hd, pd_, delta=delta, tol=tol, device="cuda") == regression_depth(
                    Hd, pd_, delta=delta, tol=tol
                )
            for t in (1 / 11, 3 / 11, 0.5):
                assert regression_violations(Hd, pd_, t, tol=tol, device="cuda") == regression_violations(
                    Hd, pd_, t, tol=tol
                )
    bad = H.copy()
    bad[2, 3] = np.nan
    with pytest.raises(ValueError, match=r"hypotheses\[2, 3\]"):
        _core.cuda_hypothesis_point_depth(bad, pred, 0.0)
    with pytest.raises(ValueError, match="not sorted"):
        _core.cuda_hypothesis_violations(H, pred, 0.2, 0.0)
