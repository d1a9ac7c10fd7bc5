"""Real tables: sample weights, unlabelled rows (y == -1), missing values,
and HistTreeClassifier's scikit-learn vocabulary (n_jobs,
feature_importances_)."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from crembo import CREMBOClassifier, LabelDistiller
from crembo.compress.augment import munge
from crembo.compress.tables import check_weights, unlabeled_mask
from crembo.trees.hist import HistTreeClassifier


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=300, n_features=6, n_informative=4, n_classes=3, random_state=0)
    return X, y


def small(**kw):
    params = dict(
        teacher=RandomForestClassifier(n_estimators=20, max_depth=6, random_state=0),
        n_thresholds=6,
        cv=3,
        max_rounds=3,
        random_state=0,
    )
    params.update(kw)
    return CREMBOClassifier(**params)


def same_tree(a, b):
    ta, tb = a.tree_, b.tree_
    return (
        np.array_equal(ta.feature, tb.feature)
        and np.allclose(ta.threshold, tb.threshold)
        and np.allclose(ta.value, tb.value)
    )


# ------------------------------------------------------------ sample weights
def test_check_weights_errors():
    with pytest.raises(ValueError, match="non-negative"):
        check_weights([1.0, -1.0, 2.0], 3)
    with pytest.raises(ValueError, match="weight zero"):
        check_weights([0.0, 0.0, 0.0], 3)
    with pytest.raises(ValueError, match="finite"):
        check_weights([1.0, np.nan, 2.0], 3)
    with pytest.raises(ValueError, match="expected 3 weights"):
        check_weights([1.0, 2.0], 3)
    with pytest.raises(ValueError, match="weight zero"):  # only the unlabelled rows weigh anything
        check_weights([0.0, 1.0], 2, labeled=np.array([True, False]))
    w = check_weights([1.0, 3.0], 2)
    assert np.allclose(w, [0.5, 1.5])


@pytest.mark.parametrize("cls", [CREMBOClassifier, LabelDistiller])
@pytest.mark.parametrize("bad", [-1.0, 0.0, np.nan])
def test_bad_weights_refused(data, cls, bad):
    X, y = data
    w = np.ones(len(y))
    if bad == 0.0:
        w[:] = 0.0
    else:
        w[5] = bad
    with pytest.raises(ValueError, match="sample_weight"):
        cls(RandomForestClassifier(n_estimators=5)).fit(X, y, sample_weight=w)
    with pytest.raises(ValueError, match="sample_weight"):
        cls(RandomForestClassifier(n_estimators=5)).fit(X, y, sample_weight=np.ones(len(y) - 1))


@pytest.mark.parametrize("kw", [dict(), dict(cv=None), dict(mode="memo"), dict(oracle="single")])
def test_scaling_weights_changes_nothing(data, kw):
    X, y = data
    w = np.random.default_rng(0).uniform(0.2, 3.0, len(y))
    a = small(**kw).fit(X, y, sample_weight=w)
    b = small(**kw).fit(X, y, sample_weight=w * 8.0)
    assert a.threshold_ == b.threshold_
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X))


def test_weights_reach_teacher_student_and_score(data):
    X, y = data
    rng = np.random.default_rng(1)
    w = rng.uniform(0.1, 5.0, len(y))
    plain = small().fit(X, y)
    weighted = small().fit(X, y, sample_weight=w)
    # The teacher was fitted with the weights.
    t = RandomForestClassifier(n_estimators=20, max_depth=6, random_state=0).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(weighted.teacher_.predict_proba(X), t.predict_proba(X))
    assert not np.allclose(plain.teacher_.predict_proba(X), weighted.teacher_.predict_proba(X))
    # With a fitted teacher, unit weights are no weights at all (a forest
    # fitted with unit weights may draw other bootstraps than without).
    for kw in (dict(), dict(cv=None), dict(mode="memo")):
        plain = small(teacher=t, **kw).fit(X, y)
        ones = small(teacher=t, **kw).fit(X, y, sample_weight=np.ones(len(y)))
        np.testing.assert_array_equal(ones.predict(X), plain.predict(X))
        assert ones.validation_score_ == pytest.approx(plain.validation_score_)
        heavy = small(teacher=t, **kw).fit(X, y, sample_weight=w)
        if kw.get("mode") != "memo":  # the score is a weighted accuracy
            assert heavy.validation_score_ != pytest.approx(plain.validation_score_)


def test_zero_weight_rows_are_as_good_as_absent(data):
    """Rows of weight zero neither teach the teacher nor count in the score."""
    X, y = data
    w = np.ones(len(y))
    w[::3] = 0.0
    keep = w > 0
    teach = LogisticRegression(max_iter=500)
    a = LabelDistiller(teach, DecisionTreeClassifier(max_depth=3, random_state=0)).fit(X, y, sample_weight=w)
    ref = LogisticRegression(max_iter=500).fit(X[keep], y[keep])
    np.testing.assert_allclose(a.teacher_.coef_, ref.coef_, rtol=1e-4, atol=1e-6)


def test_teacher_without_sample_weight(data):
    X, y = data

    class NoWeights(LogisticRegression):
        def fit(self, X, y):
            return super().fit(X, y)

    with pytest.raises(TypeError, match="sample_weight"):
        small(teacher=NoWeights()).fit(X, y, sample_weight=np.ones(len(y)) + np.arange(len(y)) % 2)


def test_metadata_routing(data):
    import sklearn

    X, y = data
    w = np.random.default_rng(2).uniform(0.5, 2.0, len(y))
    with sklearn.config_context(enable_metadata_routing=True):
        est = small(n_thresholds=3).set_fit_request(sample_weight=True, X_unlabeled=False)
        pipe = make_pipeline(StandardScaler().set_fit_request(sample_weight=False), est)
        pipe.fit(X, y, sample_weight=w)
        direct = small(n_thresholds=3).fit(StandardScaler().fit_transform(X), y, sample_weight=w)
        np.testing.assert_array_equal(pipe.predict(X), direct.predict(StandardScaler().fit(X).transform(X)))
        routed = small(n_thresholds=3).set_fit_request(sample_weight=True, X_unlabeled=False)
        routed.set_score_request(sample_weight=True)
        res = cross_validate(routed, X, y, cv=2, params={"sample_weight": w})
        assert len(res["test_score"]) == 2
        search = GridSearchCV(routed, {"n_thresholds": [2, 3]}, cv=2).fit(X, y, sample_weight=w)
        assert search.best_estimator_.n_thresholds in (2, 3)


# --------------------------------------------------------- unlabelled rows
def test_unlabeled_mask():
    assert unlabeled_mask(np.array([0, -1, 2])).tolist() == [False, True, False]
    assert unlabeled_mask(np.array(["a", "-1"])).tolist() == [False, False]
    assert unlabeled_mask(np.array(["a", -1], dtype=object)).tolist() == [False, True]
    # The plus/minus one binary coding: -1 is a class there.
    assert not unlabeled_mask(np.array([-1, 1, 1, -1])).any()
    assert unlabeled_mask(np.array([-1, 1, 2])).tolist() == [True, False, False]


@pytest.mark.parametrize("cls", [CREMBOClassifier, LabelDistiller])
def test_minus_one_rows_are_transfer_rows(data, cls):
    X, y = data
    y_semi = y.copy()
    y_semi[200:] = -1
    kw = dict(n_thresholds=6, cv=3, max_rounds=3) if cls is CREMBOClassifier else {}
    teacher = RandomForestClassifier(n_estimators=20, max_depth=6, random_state=0)
    a = cls(teacher, random_state=0, **kw).fit(X, y_semi)
    b = cls(teacher, random_state=0, **kw).fit(X[:200], y[:200], X_unlabeled=X[200:])
    assert -1 not in a.classes_
    np.testing.assert_array_equal(a.classes_, [0, 1, 2])
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    # The teacher learnt from the labelled rows only.
    np.testing.assert_allclose(a.teacher_.predict_proba(X), b.teacher_.predict_proba(X))


def test_minus_one_rows_with_precomputed_beliefs(data):
    X, y = data
    t = RandomForestClassifier(n_estimators=20, max_depth=6, random_state=0).fit(X, y)
    P = t.predict_proba(X)
    y_semi = y.copy()
    y_semi[::4] = -1  # scattered: their beliefs must follow them
    a = CREMBOClassifier(P, n_thresholds=6, cv=3, max_rounds=3, random_state=0).fit(X, y_semi)
    b = CREMBOClassifier(t, n_thresholds=6, cv=3, max_rounds=3, augment=0, belief="proba", random_state=0).fit(
        X, y_semi
    )
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


@pytest.mark.parametrize("cls", [CREMBOClassifier, LabelDistiller])
def test_only_minus_one_is_refused(data, cls):
    X, _ = data
    with pytest.raises(ValueError, match="-1"):
        cls().fit(X, -np.ones(len(X), dtype=int))


def test_minus_one_in_a_pipeline_is_scaled(data):
    """Rows labelled -1 go through the Pipeline's steps, unlike X_unlabeled."""
    X, y = data
    Xs = X * 100 + 37
    y_semi = y.copy()
    y_semi[250:] = -1
    seen = []

    class Spy(LogisticRegression):
        def predict_proba(self, X):
            seen.append(np.asarray(X).mean())
            return super().predict_proba(X)

    pipe = make_pipeline(StandardScaler(), LabelDistiller(Spy(max_iter=300), DecisionTreeClassifier(max_depth=3)))
    pipe.fit(Xs, y_semi)
    assert abs(seen[0]) < 1.0


# ----------------------------------------------------------- missing values
def with_nan(X, frac=0.1, seed=0):
    X = X.copy()
    X[np.random.default_rng(seed).random(X.shape) < frac] = np.nan
    return X


@pytest.mark.parametrize("cls", [CREMBOClassifier, LabelDistiller])
def test_nan_passes_through(data, cls):
    X, y = data
    Xn = with_nan(X)
    kw = dict(n_thresholds=6, cv=3, max_rounds=3) if cls is CREMBOClassifier else {}
    student = HistTreeClassifier(max_depth=3) if cls is LabelDistiller else None
    est = cls(HistGradientBoostingClassifier(max_iter=30, random_state=0), student, random_state=0, **kw)
    est.fit(Xn, y)
    acc = np.mean(est.predict(Xn) == y)
    assert acc > 0.6
    assert np.allclose(est.predict_proba(Xn).sum(axis=1), 1.0)
    # scikit-learn's tree accepts NaN too.
    cls(HistGradientBoostingClassifier(max_iter=30), DecisionTreeClassifier(max_depth=3), random_state=0, **kw).fit(
        Xn, y
    )


def test_nan_refused_names_column_and_model(data):
    X, y = data
    Xn = X.copy()
    Xn[3, 2] = np.nan
    with pytest.raises(ValueError, match=r"column 2.*student \(LogisticRegression\)"):
        small(teacher=HistGradientBoostingClassifier(max_iter=10), student=LogisticRegression()).fit(Xn, y)
    with pytest.raises(ValueError, match=r"column 2.*teacher \(LogisticRegression\)"):
        small(teacher=LogisticRegression()).fit(Xn, y)
    import pandas as pd

    df = pd.DataFrame(Xn, columns=[f"f{j}" for j in range(X.shape[1])])
    with pytest.raises(ValueError, match=r"column 2 \('f2'\)"):
        LabelDistiller(LogisticRegression()).fit(df, y)
    # At predict time: a student that refuses NaN.
    est = small(student=LogisticRegression()).fit(X, y)
    with pytest.raises(ValueError, match="column 2"):
        est.predict(Xn)
    with pytest.raises(ValueError, match="X_unlabeled: column 2"):
        small(student=LogisticRegression()).fit(X, y, X_unlabeled=Xn)


def test_all_nan_column_refused(data):
    X, y = data
    Xn = X.copy()
    Xn[:, 4] = np.nan
    with pytest.raises(ValueError, match="column 4 has no value"):
        small(teacher=HistGradientBoostingClassifier(max_iter=10)).fit(Xn, y)


def test_inf_still_refused(data):
    X, y = data
    Xi = X.copy()
    Xi[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        small().fit(Xi, y)


def test_munge_keeps_missing_cells(data):
    X, _ = data
    Xn = with_nan(X, 0.2)
    S = munge(Xn, 2.0, random_state=0)
    assert S.shape == (2 * len(X), X.shape[1])
    assert not np.isinf(S).any()
    # Exactly the cells missing in the source row are missing.
    np.testing.assert_array_equal(np.isnan(S), np.isnan(np.concatenate([Xn, Xn])))
    # Without NaN the draw is the same as before (no NaN path taken).
    np.testing.assert_array_equal(munge(X, 1.0, random_state=3), munge(X.copy(), 1.0, random_state=3))


def test_tags_follow_models():
    from sklearn.utils import get_tags

    assert get_tags(CREMBOClassifier()).input_tags.allow_nan
    assert not get_tags(CREMBOClassifier(student=LogisticRegression())).input_tags.allow_nan
    assert not get_tags(LabelDistiller(LogisticRegression())).input_tags.allow_nan


# ----------------------------------------------- HistTreeClassifier vocabulary
def test_hist_tree_n_jobs_and_deprecated_n_threads(data):
    X, y = data
    a = HistTreeClassifier(max_depth=4, n_jobs=2).fit(X, y)
    with pytest.warns(FutureWarning, match="n_jobs"):
        b = HistTreeClassifier(max_depth=4, n_threads=1).fit(X, y)
    assert same_tree(a, b)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        HistTreeClassifier(max_depth=2).fit(X, y).predict(X)
    with pytest.raises(ValueError, match="n_jobs"):
        HistTreeClassifier(n_jobs=0).fit(X, y)


def test_hist_tree_feature_importances(data):
    X, y = data
    Xf = np.round(X, 1).astype(np.float32)  # few distinct values: the same splits as scikit-learn's tree
    h = HistTreeClassifier(max_depth=3).fit(Xf, y)
    d = DecisionTreeClassifier(max_depth=3, random_state=0).fit(Xf, y)
    if np.array_equal(h.tree_.feature, d.tree_.feature):
        np.testing.assert_allclose(h.feature_importances_, d.feature_importances_, atol=1e-10)
    fi = h.feature_importances_
    assert fi.shape == (X.shape[1],) and np.all(fi >= 0) and fi.sum() == pytest.approx(1.0)
    assert not hasattr(HistTreeClassifier(), "feature_importances_")
    stump = HistTreeClassifier(max_depth=1).fit(Xf, y)
    assert np.count_nonzero(stump.feature_importances_) == 1


# ------------------------------------------------------ progress and budget
def test_verbose_shows_every_stage(data, capfd):
    X, y = data
    small(verbose=1, refit=True, cv=None).fit(X, y)
    err = capfd.readouterr().err
    for stage in (
        "CREMBO teacher fit",
        "teacher beliefs",
        "teacher beliefs (synthetic rows)",
        "MEMO probes",
        "CREMBO sweep",
        "CREMBO refit",
    ):
        assert stage in err, stage
    small(verbose=1).fit(X, y)
    assert "3-fold sweep" in capfd.readouterr().err
    small(verbose=0).fit(X, y)
    assert capfd.readouterr().err == ""


def test_no_memo_warning_once_per_estimator(data, caplog):
    import logging

    X, y = data
    # One reweighting round and a hard problem: MEMO finds nothing.
    est = small(max_rounds=1, student=HistTreeClassifier(max_depth=1), n_thresholds=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with caplog.at_level(logging.INFO, logger="crembo"):
            GridSearchCV(est, {"eta": [1.0, 2.0]}, cv=2).fit(X, y)
    memo_warnings = [w for w in caught if "MEMO found no consistent student" in str(w.message)]
    assert len(memo_warnings) == 1
    assert any("warned already" in r.getMessage() for r in caplog.records)
    # Another estimator warns again.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        small(max_rounds=1, student=HistTreeClassifier(max_depth=1), n_thresholds=2).fit(X, y)
    assert sum("MEMO found no consistent" in str(w.message) for w in caught) == 1


@pytest.mark.parametrize("cv", [None, 3])
def test_max_time_stops_the_sweep(data, cv):
    X, y = data
    full = small(cv=cv, n_thresholds=12).fit(X, y)
    assert not full.timed_out_
    quick = small(cv=cv, n_thresholds=12, max_time=1e-9).fit(X, y)
    assert quick.timed_out_
    tried = [r for r in quick.trace_ if r["stage"] in ("sweep", "cv")]
    full_tried = [r for r in full.trace_ if r["stage"] in ("sweep", "cv")]
    # an exhausted budget still scores the first candidate, and only it
    assert len(full_tried) > 1 and len(tried) == 1
    assert tried[0]["threshold"] == full_tried[0]["threshold"] == quick.threshold_
    assert quick.predict(X).shape == (len(X),)
    assert np.mean(quick.predict(X) == y) > 0.5
    for bad in (0, -1.0, np.nan):
        with pytest.raises(ValueError, match="max_time"):
            small(max_time=bad).fit(X, y)
    with pytest.raises(TypeError, match="max_time"):
        small(max_time="1s").fit(X, y)


# ------------------------------------------------- categorical splits
def cat_data(n=1500, seed=0, n_cat=8, missing=0.05):
    rng = np.random.default_rng(seed)
    c = rng.integers(0, n_cat, n).astype(float)
    x = rng.normal(size=n)
    c[rng.random(n) < missing] = np.nan
    y = (np.isin(c, [1, 4, 6]) ^ (x > 1.2)).astype(int)
    return np.c_[c, x], y


def test_categorical_split_finds_the_subset():
    X, y = cat_data(missing=0.0)
    stump = HistTreeClassifier(max_depth=1, categorical_features=[0]).fit(X, y)
    t = stump.tree_
    assert t.is_categorical[0] and t.feature[0] == 0
    left = {c for c in range(8) if (int(t.cat_left[0, 0]) >> c) & 1}
    assert left in ({0, 2, 3, 5, 7}, {1, 4, 6})
    # A threshold on the codes cannot separate {1, 4, 6}: the stump is better.
    numeric = HistTreeClassifier(max_depth=1, categorical_features=None).fit(X, y)
    assert stump.score(X, y) > numeric.score(X, y) + 0.1


def test_categorical_multiclass_and_allowed():
    rng = np.random.default_rng(3)
    c = rng.integers(0, 9, 900).astype(float)
    y = np.array([0, 1, 2, 1, 0, 2, 2, 1, 0])[c.astype(int)]
    X = np.c_[c, rng.normal(size=900)]
    h = HistTreeClassifier(max_depth=2, categorical_features=[0]).fit(X, y)
    assert h.score(X, y) == 1.0
    allowed = np.eye(3, dtype=bool)[y]
    ha = HistTreeClassifier(max_depth=2, categorical_features=[0]).fit_allowed(X, allowed)
    assert ha.score(X, y) == 1.0


def test_categorical_spec_forms_agree():
    import pandas as pd

    X, y = cat_data()
    df = pd.DataFrame({"c": X[:, 0], "x": X[:, 1]})
    ref = HistTreeClassifier(max_depth=3, categorical_features=[0]).fit(X, y)
    for spec, data in (([True, False], X), (np.array([0]), X), (["c"], df)):
        other = HistTreeClassifier(max_depth=3, categorical_features=spec).fit(data, y)
        assert same_tree(ref, other)
        np.testing.assert_array_equal(other.is_categorical_, [True, False])


def test_categorical_from_dtype_dataframe_and_unseen_categories():
    import pandas as pd

    X, y = cat_data()
    letters = np.array(list("abcdefgh"), dtype=object)
    codes = X[:, 0]
    names = np.where(np.isnan(codes), None, letters[np.nan_to_num(codes).astype(int)])
    df = pd.DataFrame(
        {
            "cat": pd.Categorical(names, categories=list("abcdefgh")),
            "x": X[:, 1],
            "s": np.where(X[:, 1] > 0, "hi", "lo"),
        }
    )
    h = HistTreeClassifier(max_depth=3).fit(df, y)
    np.testing.assert_array_equal(h.is_categorical_, [True, False, True])
    assert h.categories_[0] == list("abcdefgh") and h.categories_[1] is None and h.categories_[2] == ["hi", "lo"]
    np.testing.assert_array_equal(h.feature_names_in_, ["cat", "x", "s"])
    ref = HistTreeClassifier(max_depth=3, categorical_features=[0]).fit(X, y)
    np.testing.assert_array_equal(h.predict(df), ref.predict(X))
    # A category seen only at predict time goes right at every categorical split.
    new = df.iloc[:50].copy()
    new["cat"] = new["cat"].astype(object)
    new.loc[:, "cat"] = "zzz"
    leaves = h.apply(new)
    node = np.zeros(50, dtype=int)
    t = h.tree_
    Xc = X[:50].copy()
    Xc[:, 0] = -1.0  # the code of an unknown category
    for _ in range(4):
        inner = t.children_left[node] >= 0
        nd = node[inner]
        go = np.where(
            t.is_categorical[nd],
            False,
            np.asarray(Xc[inner][np.arange(inner.sum()), t.feature[nd]], np.float32) <= t.threshold[nd],
        )
        node[inner] = np.where(go, t.children_left[nd], t.children_right[nd])
    np.testing.assert_array_equal(leaves, node)
    # Missing categories follow the learnt side: same as NaN codes.
    miss = df.iloc[:20].copy()
    miss["cat"] = None
    Xm = X[:20].copy()
    Xm[:, 0] = np.nan
    np.testing.assert_array_equal(h.predict(miss), ref.predict(Xm))


def test_categorical_bad_inputs():
    import pandas as pd

    X, y = cat_data()
    Xb = X.copy()
    Xb[0, 0] = 2.5
    with pytest.raises(ValueError, match="integer codes"):
        HistTreeClassifier(categorical_features=[0]).fit(Xb, y)
    Xb[0, 0] = 300
    with pytest.raises(ValueError, match="integer codes"):
        HistTreeClassifier(categorical_features=[0]).fit(Xb, y)
    many = pd.DataFrame({"c": [f"v{i}" for i in range(300)], "x": np.arange(300.0)})
    with pytest.raises(ValueError, match="300 categories"):
        HistTreeClassifier().fit(many, np.arange(300) % 2)
    for bad in ("auto", [5], np.array([[0]]), [True]):
        with pytest.raises(ValueError, match="categorical_features"):
            HistTreeClassifier(categorical_features=bad).fit(X, y)
    with pytest.raises(ValueError, match="DataFrame"):
        HistTreeClassifier(categorical_features=["c"]).fit(X, y)
    strings = pd.DataFrame({"c": np.where(y == 1, "a", "b"), "x": X[:, 1]})
    with pytest.raises(ValueError, match=r"column 0 \('c'\) is not numeric"):
        HistTreeClassifier(categorical_features=None).fit(strings, y)


def test_categorical_tree_pickles_and_exports():
    import pickle

    from crembo.trees.export import (
        FastTree,
        export_cpp,
        export_dot,
        export_native,
        export_onnx,
        export_rules,
        rules_predict,
        tree_rules,
    )

    X, y = cat_data()
    h = HistTreeClassifier(max_depth=4, categorical_features=[0]).fit(X, y)
    h2 = pickle.loads(pickle.dumps(h))
    np.testing.assert_array_equal(h2.predict(X), h.predict(X))
    Xt = X.copy()
    Xt[:30, 0] = 99.0  # unknown codes
    np.testing.assert_array_equal(rules_predict(tree_rules(h), Xt), h.predict(Xt))
    assert " in {" in export_rules(h) and " in {" in export_dot(h)
    for export in (export_cpp, export_native, export_onnx, FastTree.from_sklearn):
        with pytest.raises(ValueError, match="category-subset splits"):
            export(h)


@pytest.mark.parametrize("cls", [CREMBOClassifier, LabelDistiller])
def test_distillers_take_categorical_dataframes(cls):
    import pandas as pd

    X, y = cat_data(n=800)
    letters = np.array(list("abcdefgh"), dtype=object)
    df = pd.DataFrame(
        {
            "cat": pd.Categorical(np.where(np.isnan(X[:, 0]), None, letters[np.nan_to_num(X[:, 0]).astype(int)])),
            "x": X[:, 1],
            "s": np.where(X[:, 1] > 0, "hi", "lo"),
        }
    )
    seen = []

    class Spy(HistGradientBoostingClassifier):
        def predict_proba(self, X):
            seen.append(X)
            return super().predict_proba(X)

    kw = dict(n_thresholds=6, cv=3, max_rounds=3) if cls is CREMBOClassifier else {}
    student = HistTreeClassifier(max_depth=3) if cls is LabelDistiller else None
    est = cls(Spy(categorical_features="from_dtype", max_iter=30, random_state=0), student, random_state=0, **kw)
    est.fit(df, y)
    assert isinstance(seen[0], pd.DataFrame) and isinstance(seen[0]["cat"].dtype, pd.CategoricalDtype)
    assert list(seen[0]["cat"].cat.categories) == list("abcdefgh")
    assert est.student_.tree_.is_categorical.any()
    assert est.score(df, y) > 0.85
    new = df.iloc[:10].copy()
    new["cat"] = new["cat"].astype(object)
    new.loc[:, "cat"] = "never seen"
    assert est.predict(new).shape == (10,)
    if cls is CREMBOClassifier:
        from crembo.trees.export import export_rules

        assert "cat in {" in export_rules(est) or "cat not in {" in export_rules(est)


def test_categorical_dataframe_with_a_teacher_that_refuses_strings():
    import pandas as pd

    X, y = cat_data(n=300)
    df = pd.DataFrame({"s": np.where(y == 1, "a", "b"), "x": X[:, 1]})
    with pytest.raises(ValueError):
        LabelDistiller(LogisticRegression()).fit(df, y)


# ------------------------------------------------------------------ ONNX
@pytest.mark.parametrize("n_classes", [2, 3])
def test_onnx_export_of_hist_tree(n_classes):
    pytest.importorskip("skl2onnx")
    ort = pytest.importorskip("onnxruntime")
    from crembo.trees.export import export_onnx

    X, y = make_classification(
        n_samples=1500, n_features=6, n_informative=4, n_classes=n_classes, random_state=n_classes
    )
    for model in (
        HistTreeClassifier(max_depth=6).fit(X, y),
        small(teacher=RandomForestClassifier(n_estimators=10, random_state=0)).fit(X, y),
    ):
        onx = export_onnx(model)
        sess = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
        label, proba = sess.run(None, {"X": X.astype(np.float32)})
        np.testing.assert_array_equal(label, model.predict(X))
        np.testing.assert_allclose(proba, model.predict_proba(X), atol=1e-6)
