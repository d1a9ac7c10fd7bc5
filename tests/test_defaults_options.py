"""The options the configuration study added: MUNGE augmentation, MEMO's warm
start and adaptive growth, leaves that predict the teacher's mean belief,
and protocol variants."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris, make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

import crembo
from crembo import _core
from crembo.compress.augment import munge
from crembo.compress.estimators import CREMBOClassifier, LabelDistiller, default_teacher
from crembo.evaluation.protocol import generalization, stability
from crembo.compress.students import set_leaf_beliefs
from crembo.trees.hist import HistTreeClassifier


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return X, y


# ------------------------------------------------------------------ MUNGE
def test_munge_shape_dtype_and_determinism(iris):
    X, _ = iris
    a = munge(X, 2.0, random_state=0)
    b = munge(X, 2.0, random_state=0)
    assert a.shape == (2 * len(X), X.shape[1]) and a.dtype == np.float64
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, munge(X, 2.0, random_state=1))
    assert munge(X.astype(np.float32), 0.5, random_state=0).dtype == np.float32
    assert munge(X, 0.5, random_state=0).shape == (75, 4)
    assert munge(X, 0.0).shape == (0, 4)


def test_munge_rows_stay_near_the_data(iris):
    X, _ = iris
    Z = munge(X, 3.0, swap=0.5, random_state=0)
    # swap=0 copies the real rows exactly.
    np.testing.assert_array_equal(munge(X, 1.0, swap=0.0, random_state=0), X)
    # A synthetic value is the row's own or drawn around its neighbour's:
    # it stays within a few spreads of the data's range.
    lo, hi = X.min(axis=0), X.max(axis=0)
    span = hi - lo
    assert np.all(Z >= lo - span) and np.all(Z <= hi + span)
    # Every synthetic row is close to some real row (nearer than the data's
    # typical spacing times a few).
    d = np.sqrt(((Z[:, None, :] - X[None, :, :]) ** 2).sum(-1)).min(axis=1)
    assert np.median(d) < 0.5


def test_munge_discrete_columns_take_the_neighbours_value():
    rng = np.random.RandomState(0)
    X = np.c_[rng.randint(0, 3, 200).astype(float), rng.normal(size=200)]
    Z = munge(X, 2.0, swap=1.0, random_state=0)
    assert set(np.unique(Z[:, 0])) <= {0.0, 1.0, 2.0}
    # the continuous column is drawn anew
    assert len(np.intersect1d(Z[:, 1], X[:, 1])) < len(Z) // 2


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(size=-1.0), ValueError, "augment"),
        (dict(size=np.nan), ValueError, "augment"),
        (dict(size="2"), TypeError, "augment"),
        (dict(size=1.0, swap=1.5), ValueError, "augment_swap"),
        (dict(size=1.0, spread=0.0), ValueError, "augment_spread"),
    ],
)
def test_munge_bad_parameters(iris, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        munge(iris[0], **kwargs)


def test_munge_bad_data():
    with pytest.raises(ValueError, match="at least 2 rows"):
        munge(np.ones((1, 3)), 1.0)
    with pytest.raises(ValueError, match="no inf"):
        munge(np.array([[0.0, np.inf], [1.0, 2.0]]), 1.0)
    with pytest.raises(ValueError, match="2-d"):
        munge(np.ones(4), 1.0)


def _counting_teacher(fitted):
    calls = []

    def teacher(X):
        calls.append(len(X))
        return fitted.predict_proba(X)

    return teacher, calls


def test_crembo_augment_asks_the_teacher_about_synthetic_rows(iris):
    X, y = iris
    forest = default_teacher(0).fit(X, y)
    plain_t, plain_calls = _counting_teacher(forest)
    aug_t, aug_calls = _counting_teacher(forest)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = CREMBOClassifier(plain_t, student="tree:4", augment=0.0, random_state=0).fit(X, y)
        b = CREMBOClassifier(aug_t, student="tree:4", augment=2.0, random_state=0).fit(X, y)
        c = CREMBOClassifier(aug_t, student="tree:4", augment=2.0, random_state=0).fit(X, y)
    n_transfer = sum(plain_calls)
    assert sum(aug_calls) // 2 == n_transfer * 3  # the transfer rows, then twice as many synthetic ones
    np.testing.assert_array_equal(b.predict(X), c.predict(X))
    assert a.score(X, y) > 0.8 and b.score(X, y) > 0.8
    # timings_ times the synthetic rows apart from the beliefs
    assert a.timings_["augment"] < 1e-3 < b.timings_["augment"]
    assert b.timings_["overhead"] >= b.timings_["augment"]


def test_augment_needs_a_teacher_it_can_query(iris):
    X, y = iris
    P = default_teacher(0).fit(X, y).predict_proba(X)
    with pytest.raises(ValueError, match="augment: synthetic rows need a teacher"):
        CREMBOClassifier(P, augment=1.0).fit(X, y)
    with pytest.raises(ValueError, match="augment"):
        CREMBOClassifier(augment=-1.0).fit(X, y)
    with pytest.raises(ValueError, match="augment_swap"):
        LabelDistiller(augment=1.0, augment_swap=2.0).fit(X, y)


def test_label_distiller_augment(iris):
    X, y = iris
    forest = default_teacher(0).fit(X, y)
    vt = LabelDistiller(forest, augment=3.0, random_state=0).fit(X, y)
    assert vt.score(X, y) > 0.9
    # with refit the augmented CREMBO fits every row and the synthetic ones
    m = CREMBOClassifier(forest, student="tree:4", augment=1.0, cv=None, refit=True, random_state=0).fit(X, y)
    assert m.trace_[-1]["stage"] == "refit"


# ------------------------------------------------- MEMO warm start, growth
def _recording_fit(pred_fn, log):
    def fit_labels(targets, weights):
        log.append(np.array(weights, copy=True))
        return pred_fn(np.asarray(targets))

    return fit_labels


def test_adaptive_eta_compounds_while_violations_stall():
    # Rows 0-2 allow only label 1; the student always says 0: every round
    # leaves the same 3 violations.
    P = np.array([[0.0, 1.0]] * 3 + [[1.0, 0.0]] * 5)
    for adaptive, ratios in ((False, [1, 2, 4, 8]), (True, [1, 2, 8, 64])):
        log = []
        res = _core.consistency_oracle(
            P,
            0.5,
            fit_labels=_recording_fit(lambda t: np.zeros(8, np.int32), log),
            max_rounds=4,
            eta=1.0,
            adaptive_eta=adaptive,
        )
        assert not res["consistent"] and res["rounds"] == 4
        got = [w[0] / w[3] for w in log]
        np.testing.assert_allclose(got, ratios)


def test_warm_start_reuses_reweighted_weights():
    # First probe needs a reweighting round; with warm_start the second
    # probe starts from those weights, otherwise from ones.
    P = np.array([[0.45, 0.55]] * 2 + [[0.6, 0.4]] * 6)
    for warm in (False, True):
        log, state = [], {"n": 0}

        def pred(targets):
            state["n"] += 1
            # first fit: wrong on rows 0-1 (says 0 where 0.45 < t=0.5); then the targets
            return np.zeros(8, np.int32) if state["n"] == 1 else np.asarray(targets, dtype=np.int32)

        _core.memo_search(
            P,
            np.array([0.5, 0.55]),
            fit_labels=_recording_fit(pred, log),
            max_rounds=3,
            eta=1.0,
            probe_lowest=True,
            warm_start=warm,
            adaptive_eta=False,
        )
        assert len(log) == 3  # probe 0.5: 2 rounds; probe 0.55: 1 round
        if warm:
            np.testing.assert_allclose(log[2], log[1])
            assert log[2][0] > log[2][5]
        else:
            np.testing.assert_allclose(log[2], np.ones(8))


def test_memo_defaults_reach_at_least_the_fixed_growth_search(iris):
    X, y = iris
    P = crembo.teacher_beliefs(default_teacher(0).fit(X, y), X)
    new = crembo.memo(X, P, "tree:4", random_state=0)
    old = crembo.memo(X, P, "tree:4", random_state=0, warm_start=False, adaptive_eta=False)
    long = crembo.memo(X, P, "tree:4", random_state=0, warm_start=False, adaptive_eta=False, max_rounds=30)
    assert new.threshold >= long.threshold > old.threshold
    assert new.n_fits <= 2 * old.n_fits


# ----------------------------------------------------------- belief leaves
@pytest.mark.parametrize(
    "student", [DecisionTreeClassifier(max_depth=3, random_state=0), HistTreeClassifier(max_depth=3)]
)
def test_leaf_beliefs_are_the_mean_belief_of_each_leaf(iris, student):
    X, y = iris
    P = default_teacher(0).fit(X, y).predict_proba(X)
    est = student.fit(X, y)
    set_leaf_beliefs(est, X, P, np.unique(y))
    leaves = est.apply(X)
    proba = est.predict_proba(X)
    for leaf in np.unique(leaves):
        np.testing.assert_allclose(
            proba[leaves == leaf], np.broadcast_to(P[leaves == leaf].mean(axis=0), proba[leaves == leaf].shape)
        )
    np.testing.assert_array_equal(est.predict(X), np.argmax(proba, axis=1))


def test_leaf_beliefs_refuse_other_students(iris):
    X, y = iris
    est = LogisticRegression(max_iter=200).fit(X, y)
    with pytest.raises(TypeError, match="leaf_values='belief'"):
        set_leaf_beliefs(est, X, np.full((len(X), 3), 1 / 3), np.unique(y))
    with pytest.raises(TypeError, match="leaf_values='belief'"):
        CREMBOClassifier(student=LogisticRegression(max_iter=200), leaf_values="belief").fit(X, y)
    with pytest.raises(ValueError, match="leaf_values"):
        CREMBOClassifier(leaf_values="mean").fit(X, y)


def test_crembo_belief_leaves(iris):
    X, y = iris
    forest = default_teacher(0).fit(X, y)
    m = CREMBOClassifier(
        forest, student="tree:4", leaf_values="belief", refit=True, cv=None, augment=0.0, random_state=0
    ).fit(X, y)
    P = forest.predict_proba(X)
    leaves = m.student_.apply(X)
    proba = m.predict_proba(X)
    for leaf in np.unique(leaves):
        np.testing.assert_allclose(proba[leaves == leaf][0], P[leaves == leaf].mean(axis=0))


# ---------------------------------------------------------- study variants
def test_protocol_variants():
    X, y = make_classification(200, 6, n_informative=4, n_classes=3, random_state=0)
    variants = {
        "cov": dict(student="tree:4", student_target="multioutput", oracle="single"),
        "vt-aug": dict(estimator="vt", augment=1.0),
    }
    g = generalization(
        X,
        y,
        methods=("BM", "cov", "vt-aug"),
        n_splits=3,
        variants=variants,
        teacher=default_teacher(0).set_params(n_estimators=10),
    )
    s = stability(
        X, y, methods=("cov",), n_splits=3, variants=variants, teacher=default_teacher(0).set_params(n_estimators=10)
    )
    assert 0.3 < g.summary["cov"]["mean"] <= 1 and 0 <= s.summary["cov"]["agreement"] <= 1
    with pytest.raises(ValueError, match="taken by built-in"):
        generalization(X, y, methods=("BM",), variants={"VT": {}})
    with pytest.raises(ValueError, match="unknown"):
        generalization(X, y, methods=("nope",), variants=variants)


def test_auto_settings_follow_the_student_and_the_size(iris):
    X, y = iris
    forest = default_teacher(0).set_params(n_estimators=10).fit(X, y)
    tree = CREMBOClassifier(forest, random_state=0).fit(X, y)
    assert any(r["stage"] == "cv" for r in tree.trace_)  # 5-fold selection for a tree student
    lin = CREMBOClassifier(forest, LogisticRegression(max_iter=300), random_state=0).fit(X, y)
    assert not any(r["stage"] == "cv" for r in lin.trace_)  # other students keep one validation split
    assert lin._leaf_values == "student"
    # beyond AUTO_MAX_ROWS labelled rows: one split and no synthetic rows
    from crembo.compress import estimators

    old = estimators.AUTO_MAX_ROWS
    try:
        estimators.AUTO_MAX_ROWS = 100
        teacher, calls = _counting_teacher(forest)
        big = CREMBOClassifier(teacher, random_state=0).fit(X, y)
        assert not any(r["stage"] == "cv" for r in big.trace_)
        assert sum(calls) == len(X) - int(np.ceil(0.15 * len(X)))  # the transfer rows only
    finally:
        estimators.AUTO_MAX_ROWS = old
