"""CREMBOClassifier and LabelDistiller: scikit-learn conventions, the
reference protocol end to end, every kind of teacher and student, bad input.

Run with ``-s`` to see the cross-validation table of the reference protocol.
"""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.estimator_checks import parametrize_with_checks
from sklearn.utils.validation import check_is_fitted

import crembo
from crembo import CREMBOClassifier, LabelDistiller, teacher_beliefs
from crembo.compress.students import AllowedLabelStudent

TRACE_KEYS = {"stage", "threshold", "consistent", "violations", "rounds", "validation_score", "fit_seconds"}
TIMING_KEYS = {"teacher_fit", "augment", "beliefs", "memo", "sweep", "refit", "student_fits", "total", "overhead"}


def small_teacher():
    return RandomForestClassifier(n_estimators=10, max_depth=6, random_state=0)


def paper_teacher():
    return RandomForestClassifier(n_estimators=100, max_depth=12, class_weight="balanced", random_state=0)


def paper_student():
    return DecisionTreeClassifier(max_depth=4, class_weight="balanced", random_state=0)


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return X, y


@pytest.fixture(scope="module")
def fitted_teacher(iris):
    X, y = iris
    return small_teacher().fit(X, y)


# --------------------------------------------------------------------------
# 1. scikit-learn's estimator checks
# --------------------------------------------------------------------------
CHECKED_ESTIMATORS = [
    CREMBOClassifier(teacher=small_teacher(), random_state=0),
    CREMBOClassifier(mode="memo", teacher=small_teacher()),
    CREMBOClassifier(oracle="single", teacher=small_teacher(), random_state=0),
    LabelDistiller(teacher=small_teacher()),
]


def _expected_failed_checks(estimator):
    # Every other check applies and passes with scikit-learn 1.9
    # (check_array_api_input skips itself unless SCIPY_ARRAY_API is set).
    # Keep this mapping of check name -> reason for checks that genuinely
    # cannot apply.
    return {
        # Repeating a row is not doubling its weight here: the teacher's
        # bootstrap (scikit-learn xfails this check for its forests too),
        # MUNGE's neighbours and the cross-validation folds all draw rows.
        "check_sample_weight_equivalence_on_dense_data": "rows are drawn (teacher bootstrap, MUNGE neighbours, folds): a repeated row is not a doubled weight",
    }


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # MEMO finds nothing on some random check data
@parametrize_with_checks(CHECKED_ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)


# --------------------------------------------------------------------------
# 2. The reference protocol, end to end: BM, VT, MEMO, CREMBO
# --------------------------------------------------------------------------
METHODS = ("BM", "VT", "MEMO", "CREMBO")
MIN_MEAN_ACCURACY = {"iris": 0.85, "breast_cancer": 0.88}


#: The paper's CREMBO: the transfer set is the fit part itself (no synthetic
#: rows), one held-out validation split, and the students' own leaves; the
#: properties below are the paper algorithm's.
PAPER = dict(augment=0.0, cv=None, leaf_values="student")


def _belief_values(P):
    return set(np.unique(P).tolist())


def _run_protocol(X, y):
    acc = {m: [] for m in METHODS}
    folds = []
    for tr, te in KFold(n_splits=10, shuffle=False).split(X):
        teacher = paper_teacher().fit(X[tr], y[tr])
        bm = paper_student().fit(X[tr], y[tr])
        vt = LabelDistiller(teacher, paper_student(), random_state=0).fit(X[tr], y[tr])
        me = CREMBOClassifier(teacher, paper_student(), mode="memo", random_state=0, **PAPER).fit(X[tr], y[tr])
        cr = CREMBOClassifier(teacher, paper_student(), random_state=0, **PAPER).fit(X[tr], y[tr])
        for name, model in zip(METHODS, (bm, vt, me, cr)):
            acc[name].append(model.score(X[te], y[te]))
        P = teacher_beliefs(teacher, X[tr])
        folds.append(dict(teacher=teacher, memo=me, crembo=cr, P=P, X=X[tr]))
    return {m: np.array(v) for m, v in acc.items()}, folds


@pytest.fixture(scope="module")
def protocol():
    out = {}
    for name, loader in (("iris", load_iris), ("breast_cancer", load_breast_cancer)):
        X, y = loader(return_X_y=True)
        out[name] = _run_protocol(X, y)
    return out


def test_protocol_accuracy_table(protocol):
    lines = [f"{'data set':<14}" + "".join(f"{m:>18}" for m in METHODS)]
    for name, (acc, _) in protocol.items():
        lines.append(f"{name:<14}" + "".join(f"{acc[m].mean():>11.4f} ±{acc[m].std():.4f}" for m in METHODS))
    print("\n10-fold CV (unshuffled), mean ± std test accuracy\n" + "\n".join(lines))
    for name, (acc, _) in protocol.items():
        for m in METHODS:
            assert len(acc[m]) == 10
            assert acc[m].mean() > MIN_MEAN_ACCURACY[name], (name, m, acc[m].mean())


@pytest.mark.parametrize("name", ["iris", "breast_cancer"])
def test_protocol_memo_properties(protocol, name):
    for fold in protocol[name][1]:
        me, P = fold["memo"], fold["P"]
        values = _belief_values(P)
        assert me.memo_threshold_ in values  # MEMO's threshold is a belief value
        assert me.threshold_ == me.memo_threshold_
        assert me.validation_score_ is None
        # MEMO's student is consistent at its threshold: its depth (recomputed
        # here from the teacher's votes on the transfer set) is at least that.
        pred = np.searchsorted(me.classes_, me.predict(fold["X"]))
        depth = P[np.arange(len(P)), pred].min()
        assert me.depth_ == pytest.approx(depth)
        assert me.depth_ == pytest.approx(me.memo_depth_)
        assert me.depth_ >= me.memo_threshold_
        assert all(r["stage"] == "memo" for r in me.trace_)
        consistent = [r["threshold"] for r in me.trace_ if r["consistent"]]
        assert max(consistent) == me.memo_threshold_


@pytest.mark.parametrize("name", ["iris", "breast_cancer"])
def test_protocol_crembo_properties(protocol, name):
    for fold in protocol[name][1]:
        cr, P = fold["crembo"], fold["P"]
        values = _belief_values(P)  # the transfer set is a subset of these rows
        assert cr.memo_threshold_ in values
        assert cr.threshold_ in values  # the budgeted sweep snaps to belief entries
        assert cr.threshold_ >= cr.memo_threshold_
        assert cr.memo_depth_ >= cr.memo_threshold_
        sweep = [r for r in cr.trace_ if r["stage"] == "sweep"]
        ts = [r["threshold"] for r in sweep]
        assert ts == sorted(set(ts)), "sweep thresholds must be distinct and increasing"
        assert cr.threshold_ in ts
        assert all(r["consistent"] == (r["violations"] == 0) for r in sweep)
        assert all(r["threshold"] >= cr.memo_threshold_ for r in sweep)
        best = max(r["validation_score"] for r in sweep)
        assert cr.validation_score_ == best
        # ties go to the lowest threshold
        assert cr.threshold_ == min(r["threshold"] for r in sweep if r["validation_score"] == best)
        # Sweep students carry no consistency requirement, so the final
        # student's depth is only tied to MEMO's when MEMO's student wins.
        if cr.threshold_ == cr.memo_threshold_:
            assert cr.depth_ == pytest.approx(cr.memo_depth_)
            assert cr.depth_ >= cr.memo_threshold_
        assert 0.0 <= cr.depth_ <= 1.0


# --------------------------------------------------------------------------
# 3. API conventions
# --------------------------------------------------------------------------
def test_params_roundtrip_and_clone(fitted_teacher):
    est = CREMBOClassifier(fitted_teacher, mode="memo", n_thresholds=5, eta=0.5, random_state=3)
    params = est.get_params(deep=False)
    assert params["teacher"] is fitted_teacher and params["n_thresholds"] == 5 and params["eta"] == 0.5
    assert est.set_params(n_thresholds=7, delta=0.1) is est
    assert est.n_thresholds == 7 and est.delta == 0.1
    assert est.get_params()["teacher__n_estimators"] == 10
    c = clone(est)
    assert c is not est and c.get_params(deep=False).keys() == params.keys()
    assert c.n_thresholds == 7 and c.random_state == 3
    assert not hasattr(c, "student_")
    ld = LabelDistiller(fitted_teacher, belief="proba")
    assert clone(ld).get_params(deep=False)["belief"] == "proba"


def test_fitted_attributes(iris, fitted_teacher):
    X, y = iris
    est = CREMBOClassifier(fitted_teacher, random_state=0, **PAPER)
    assert est.fit(X, y) is est
    assert est.teacher_ is fitted_teacher
    check_is_fitted(est)
    np.testing.assert_array_equal(est.classes_, [0, 1, 2])
    assert est.n_features_in_ == 4
    for attr in ("threshold_", "memo_threshold_", "memo_depth_", "depth_", "validation_score_"):
        assert isinstance(getattr(est, attr), float), attr
    assert est.threshold_ >= est.memo_threshold_
    assert 0.0 <= est.validation_score_ <= 1.0
    assert est.trace_ and all(TRACE_KEYS <= set(r) for r in est.trace_)
    assert {r["stage"] for r in est.trace_} <= {"memo", "sweep"}
    assert est.trace_[0]["stage"] == "memo"
    assert isinstance(est.n_student_fits_, int) and est.n_student_fits_ >= 1
    assert est.n_student_fits_ == sum(r["rounds"] for r in est.trace_)
    assert set(est.timings_) == TIMING_KEYS
    assert all(v >= 0 for v in est.timings_.values())
    assert est.timings_["total"] >= est.timings_["memo"] + est.timings_["sweep"]
    # the student predicts like the estimator, and probabilities agree with labels
    np.testing.assert_array_equal(est.predict(X), est.student_.predict(X))
    proba = est.predict_proba(X)
    assert proba.shape == (150, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(est.classes_[proba.argmax(axis=1)], est.predict(X))
    assert est.score(X, y) > 0.85

    ld = LabelDistiller(fitted_teacher, random_state=0)
    assert ld.fit(X, y) is ld
    assert ld.teacher_ is fitted_teacher and ld.n_features_in_ == 4
    np.testing.assert_array_equal(ld.classes_, [0, 1, 2])
    assert ld.score(X, y) > 0.85


@pytest.mark.parametrize(
    "make",
    [
        lambda t: CREMBOClassifier(t, random_state=0),
        lambda t: CREMBOClassifier(t, mode="memo", random_state=0),
        lambda t: CREMBOClassifier(t, oracle="single", random_state=0),
        lambda t: LabelDistiller(t, random_state=0),
    ],
    ids=["crembo", "memo", "single", "vt"],
)
def test_string_labels(iris, make):
    X, y = iris
    names = load_iris().target_names
    ys = names[y]
    est = make(small_teacher()).fit(X, ys)
    np.testing.assert_array_equal(est.classes_, np.sort(names))
    pred = est.predict(X)
    assert set(pred) <= set(names)
    assert est.score(X, ys) > 0.85
    proba = est.predict_proba(X)
    assert proba.shape == (150, 3)
    np.testing.assert_array_equal(est.classes_[proba.argmax(axis=1)], pred)


def test_integer_labels_not_starting_at_zero(iris, fitted_teacher):
    X, y = iris
    est = CREMBOClassifier(small_teacher(), random_state=0).fit(X, y * 10 + 5)
    np.testing.assert_array_equal(est.classes_, [5, 15, 25])
    assert set(est.predict(X)) <= {5, 15, 25}


def test_input_containers(iris, fitted_teacher):
    X, y = iris
    base = CREMBOClassifier(fitted_teacher, random_state=0).fit(X, y)
    ref = base.predict(X)
    # Fortran-ordered and non-contiguous views give exactly the same result
    rows = np.zeros((300, 4))
    rows[::2] = X
    assert not rows[::2].flags.c_contiguous
    for Xv in (np.asfortranarray(X), rows[::2]):
        est = CREMBOClassifier(fitted_teacher, random_state=0).fit(Xv, y)
        np.testing.assert_array_equal(est.predict(Xv), ref)
        assert est.threshold_ == base.threshold_
    strided = np.repeat(X, 2, axis=1)[:, ::2]
    assert not strided.flags.c_contiguous
    est = CREMBOClassifier(fitted_teacher, random_state=0).fit(strided, y)
    np.testing.assert_array_equal(est.predict(strided), ref)
    # float32 input
    X32 = X.astype(np.float32)
    est = CREMBOClassifier(small_teacher(), random_state=0).fit(X32, y)
    assert est.score(X32, y) > 0.85 and est.predict_proba(X32).shape == (150, 3)
    # integer input: same values as float64
    Xi = np.round(X * 10).astype(np.int64)
    a = CREMBOClassifier(small_teacher(), random_state=0).fit(Xi, y)
    b = CREMBOClassifier(small_teacher(), random_state=0).fit(Xi.astype(np.float64), y)
    np.testing.assert_array_equal(a.predict(Xi), b.predict(Xi.astype(np.float64)))
    # pandas DataFrame
    df = pd.DataFrame(X, columns=["sl", "sw", "pl", "pw"])
    est = CREMBOClassifier(small_teacher(), random_state=0).fit(df, pd.Series(y))
    assert list(est.feature_names_in_) == ["sl", "sw", "pl", "pw"]
    assert est.score(df, y) > 0.85
    ld = LabelDistiller(small_teacher(), random_state=0).fit(df, y)
    assert ld.score(df, y) > 0.85


def test_dataframe_reaches_teacher_with_column_names():
    from sklearn.compose import ColumnTransformer

    X, y = load_iris(return_X_y=True, as_frame=True)
    X.columns = ["a", "b", "c", "d"]
    teacher = make_pipeline(
        ColumnTransformer([("s", StandardScaler(), ["a", "c"])]),
        GradientBoostingClassifier(n_estimators=10, random_state=0),
    ).fit(X, y)
    est = CREMBOClassifier(teacher, random_state=0).fit(X, y)
    assert est.score(X, y) > 0.85


class _CountingTeacher:
    """A callable teacher that records the rows it was asked about."""

    def __init__(self, model):
        self.model = model
        self.seen = []

    def __call__(self, X):
        self.seen.append(np.array(X, copy=True))
        return self.model.predict_proba(X)

    @property
    def rows(self):
        return np.vstack(self.seen)


def _contains_rows(haystack, needles):
    h = {tuple(r) for r in haystack}
    return all(tuple(r) in h for r in needles)


def test_x_unlabeled_is_used(iris, fitted_teacher):
    X, y = iris
    rng = np.random.default_rng(0)
    Xu = X[rng.choice(150, 40)] + rng.normal(0, 0.05, (40, 4))
    t = _CountingTeacher(fitted_teacher)
    memo_est = CREMBOClassifier(t, mode="memo", random_state=0, **PAPER).fit(X, y, X_unlabeled=Xu)
    assert len(t.seen) == 1 and len(t.rows) == 150 + 40
    assert _contains_rows(t.rows, Xu) and _contains_rows(t.rows, X)
    assert memo_est.teacher_ is t

    t = _CountingTeacher(fitted_teacher)
    est = CREMBOClassifier(t, random_state=0, validation_fraction=0.2, **PAPER).fit(X, y, X_unlabeled=Xu)
    # the transfer set: the 80% fitting part plus every unlabelled row
    assert len(t.rows) == 120 + 40 and _contains_rows(t.rows, Xu)
    np.testing.assert_array_equal(est.classes_, [0, 1, 2])

    t = _CountingTeacher(fitted_teacher)
    LabelDistiller(t, random_state=0).fit(X, y, X_unlabeled=Xu)
    assert len(t.rows) == 190 and _contains_rows(t.rows, Xu)

    # MEMO's depth is taken over the unlabelled rows too
    P = teacher_beliefs(fitted_teacher, np.vstack([X, Xu]))
    pred = memo_est.predict(np.vstack([X, Xu]))
    assert memo_est.depth_ == pytest.approx(P[np.arange(len(P)), pred].min())


def test_prefit_teacher_used_as_is(iris):
    X, y = iris
    teacher = small_teacher().fit(X[:100:2].tolist() + X[100:].tolist(), np.r_[y[:100:2], y[100:]])
    members = teacher.estimators_
    est = CREMBOClassifier(teacher, random_state=0).fit(X, y)
    assert est.teacher_ is teacher
    assert est.teacher_.estimators_ is members
    assert teacher.estimators_ is members
    ld = LabelDistiller(teacher).fit(X, y)
    assert ld.teacher_ is teacher and teacher.estimators_ is members


def test_unfitted_teacher_gets_fitted_not_mutated(iris):
    X, y = iris
    teacher = small_teacher()
    est = CREMBOClassifier(teacher, random_state=0).fit(X, y)
    with pytest.raises(NotFittedError):
        check_is_fitted(teacher)  # the parameter stays as given
    assert est.teacher_ is not teacher
    check_is_fitted(est.teacher_)
    assert est.teacher_.get_params() == teacher.get_params()
    # teacher=None: the paper's forest
    est = CREMBOClassifier(random_state=0, mode="memo").fit(X, y)
    assert isinstance(est.teacher_, RandomForestClassifier)
    assert est.teacher_.n_estimators == 100 and est.teacher_.max_depth == 12
    assert est.teacher_.class_weight == "balanced"


def test_frozen_teacher_survives_clone(iris, fitted_teacher):
    X, y = iris
    frozen = FrozenEstimator(fitted_teacher)
    est = clone(CREMBOClassifier(frozen, random_state=0))
    est.fit(X, y)
    assert est.teacher_ is frozen
    assert est.teacher_.estimator.estimators_ is fitted_teacher.estimators_
    ref = CREMBOClassifier(fitted_teacher, random_state=0).fit(X, y)
    np.testing.assert_array_equal(est.predict(X), ref.predict(X))
    assert est.threshold_ == ref.threshold_


def test_precomputed_beliefs_match_teacher(iris, fitted_teacher):
    X, y = iris
    rng = np.random.default_rng(1)
    Xu = X[rng.choice(150, 30)] + rng.normal(0, 0.05, (30, 4))
    P = teacher_beliefs(fitted_teacher, np.vstack([X, Xu]))
    for mode in ("crembo", "memo"):
        a = CREMBOClassifier(P, mode=mode, random_state=0, **PAPER).fit(X, y, X_unlabeled=Xu)
        b = CREMBOClassifier(fitted_teacher, mode=mode, random_state=0, **PAPER).fit(X, y, X_unlabeled=Xu)
        assert a.teacher_ is None
        np.testing.assert_array_equal(a.classes_, [0, 1, 2])
        assert a.threshold_ == b.threshold_ and a.memo_threshold_ == b.memo_threshold_
        assert a.depth_ == b.depth_
        np.testing.assert_array_equal(a.predict(X), b.predict(X))
    # refit=True re-reads the precomputed rows of all of X
    a = CREMBOClassifier(P, refit=True, random_state=0, **PAPER).fit(X, y, X_unlabeled=Xu)
    b = CREMBOClassifier(fitted_teacher, refit=True, random_state=0, **PAPER).fit(X, y, X_unlabeled=Xu)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    # a DataFrame of beliefs, and VT on beliefs
    c = CREMBOClassifier(pd.DataFrame(P), random_state=0, **PAPER).fit(X, y, X_unlabeled=Xu)
    d = CREMBOClassifier(P, random_state=0, **PAPER).fit(X, y, X_unlabeled=Xu)
    assert _summary(c, X) == _summary(d, X)
    ld = LabelDistiller(P[:150], random_state=0).fit(X, y)
    assert ld.teacher_ is None and ld.score(X, y) > 0.85


def test_callable_teacher(iris, fitted_teacher):
    X, y = iris
    ys = load_iris().target_names[y]
    t = _CountingTeacher(fitted_teacher)
    est = CREMBOClassifier(t, random_state=0).fit(X, ys)
    np.testing.assert_array_equal(est.classes_, np.sort(np.unique(ys)))  # columns follow the sorted classes of y
    assert est.score(X, ys) > 0.85
    ld = LabelDistiller(fitted_teacher.predict_proba, random_state=0).fit(X, y)
    assert ld.score(X, y) > 0.85


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(
    "teacher",
    [
        GradientBoostingClassifier(n_estimators=20, max_depth=2, random_state=0),
        make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(16,), max_iter=2000, random_state=0)),
    ],
    ids=["gradient_boosting", "mlp"],
)
@pytest.mark.parametrize("mode", ["crembo", "memo"])
def test_predict_proba_teachers(iris, teacher, mode):
    X, y = iris
    est = CREMBOClassifier(teacher, mode=mode, random_state=0, **PAPER).fit(X, y)
    check_is_fitted(est.teacher_)
    P = est.teacher_.predict_proba(X)
    # a proba teacher's thresholds are its probabilities, not vote shares
    assert np.isclose(P, est.memo_threshold_).any()
    assert est.score(X, y) > 0.85
    ld = LabelDistiller(teacher, random_state=0).fit(X, y)
    assert ld.score(X, y) > 0.85


def test_predict_proba_object_without_fit(iris, fitted_teacher):
    X, y = iris

    class ProbaOnly:
        classes_ = np.array([0, 1, 2])

        def predict_proba(self, Z):
            return fitted_teacher.predict_proba(Z)

    est = CREMBOClassifier(ProbaOnly(), random_state=0).fit(X, y)
    assert est.score(X, y) > 0.85


def test_logistic_regression_student(iris, fitted_teacher):
    X, y = iris
    student = LogisticRegression(max_iter=1000)
    est = CREMBOClassifier(fitted_teacher, student, n_thresholds=8, random_state=0).fit(X, y)
    assert isinstance(est.student_, (LogisticRegression,)) or type(est.student_).__name__ == "DummyClassifier"
    assert not hasattr(student, "coef_")  # the template is never fitted
    assert est.score(X, y) > 0.85
    np.testing.assert_allclose(est.predict_proba(X).sum(axis=1), 1.0)
    ld = LabelDistiller(fitted_teacher, student).fit(X, y)
    assert isinstance(ld.student_, LogisticRegression) and ld.score(X, y) > 0.85


@pytest.mark.parametrize("oracle", ["single", "reweight"])
def test_multioutput_student_target(iris, fitted_teacher, oracle):
    X, y = iris
    est = CREMBOClassifier(
        fitted_teacher, paper_student(), oracle=oracle, student_target="multioutput", random_state=0, **PAPER
    ).fit(X, y)
    assert set(est.predict(X)) <= {0, 1, 2}
    proba = est.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(est.classes_[proba.argmax(axis=1)], est.predict(X))
    assert est.score(X, y) > 0.85
    if oracle == "single":
        assert isinstance(est.student_, AllowedLabelStudent)
        auto = CREMBOClassifier(fitted_teacher, paper_student(), oracle="single", random_state=0, **PAPER).fit(X, y)
        np.testing.assert_array_equal(auto.predict(X), est.predict(X))


def test_refit(iris, fitted_teacher):
    X, y = iris
    t = _CountingTeacher(fitted_teacher)
    est = CREMBOClassifier(t, refit=True, random_state=0, **PAPER).fit(X, y)
    last = est.trace_[-1]
    assert last["stage"] == "refit" and last["rounds"] == 1 and last["validation_score"] is None
    assert last["threshold"] == est.threshold_
    assert TRACE_KEYS <= set(last)
    assert est.n_student_fits_ == sum(r["rounds"] for r in est.trace_)
    assert est.timings_["refit"] > 0
    # the refit needs beliefs on all of X (fit and validation parts): the
    # teacher is asked once, about all 150 rows
    assert len(t.seen) == 1 and len(t.seen[0]) == 150
    assert est.score(X, y) > 0.85
    # mode="memo" has no validation part: refit changes nothing
    a = CREMBOClassifier(fitted_teacher, mode="memo", refit=True, random_state=0, **PAPER).fit(X, y)
    b = CREMBOClassifier(fitted_teacher, mode="memo", random_state=0, **PAPER).fit(X, y)
    assert [r["stage"] for r in a.trace_] == [r["stage"] for r in b.trace_]


@pytest.mark.parametrize("sub", [60, 0.5])
def test_search_subsample(iris, fitted_teacher, sub):
    X, y = iris
    est = CREMBOClassifier(fitted_teacher, search_subsample=sub, random_state=0, **PAPER).fit(X, y)
    assert est.trace_[-1]["stage"] == "refit"
    assert est.trace_[-1]["threshold"] == est.threshold_
    assert est.n_student_fits_ == sum(r["rounds"] for r in est.trace_)
    assert est.score(X, y) > 0.85
    memo_est = CREMBOClassifier(fitted_teacher, mode="memo", search_subsample=sub, random_state=0, **PAPER).fit(X, y)
    assert memo_est.trace_[-1]["stage"] == "refit"
    # a subsample at least as large as the transfer set is no subsample
    full = CREMBOClassifier(fitted_teacher, search_subsample=10_000, random_state=0, **PAPER).fit(X, y)
    assert full.trace_[-1]["stage"] == "sweep"


def _summary(est, X):
    return (
        est.threshold_,
        est.memo_threshold_,
        est.depth_,
        est.validation_score_,
        [(r["stage"], r["threshold"], r["violations"], r["validation_score"]) for r in est.trace_],
        est.predict(X).tolist(),
    )


def test_n_jobs_identical(iris, fitted_teacher):
    X, y = iris
    a = CREMBOClassifier(fitted_teacher, n_jobs=1, random_state=0).fit(X, y)
    b = CREMBOClassifier(fitted_teacher, n_jobs=2, random_state=0).fit(X, y)
    assert _summary(a, X) == _summary(b, X)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def test_pickle_roundtrip(iris, fitted_teacher):
    X, y = iris
    for est in (
        CREMBOClassifier(fitted_teacher, random_state=0),
        CREMBOClassifier(fitted_teacher, oracle="single", random_state=0),
        LabelDistiller(fitted_teacher, random_state=0),
    ):
        est.fit(X, y)
        back = pickle.loads(pickle.dumps(est))
        np.testing.assert_array_equal(back.predict(X), est.predict(X))
        np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))
        assert back.get_params(deep=False).keys() == est.get_params(deep=False).keys()


def test_pipeline_and_grid_search(iris):
    X, y = iris
    pipe = make_pipeline(StandardScaler(), CREMBOClassifier(small_teacher(), random_state=0))
    assert pipe.fit(X, y).score(X, y) > 0.85
    gs = GridSearchCV(pipe, {"cremboclassifier__n_thresholds": [2, 8]}, cv=3)
    gs.fit(X, y)
    assert gs.best_params_["cremboclassifier__n_thresholds"] in (2, 8)
    assert len(gs.cv_results_["mean_test_score"]) == 2
    assert gs.best_score_ > 0.85
    assert gs.predict(X).shape == (150,)


def test_reproducible_with_random_state(iris):
    X, y = iris
    # teacher=None: the seeded default forest, the split and the students
    a = CREMBOClassifier(random_state=7).fit(X, y)
    b = CREMBOClassifier(random_state=7).fit(X, y)
    assert _summary(a, X) == _summary(b, X)
    np.testing.assert_array_equal(a.teacher_.predict_proba(X), b.teacher_.predict_proba(X))
    c = CREMBOClassifier(small_teacher(), random_state=1).fit(X, y)
    d = clone(c).fit(X, y)
    assert _summary(c, X) == _summary(d, X)
    # refitting the same object gives the same model
    assert _summary(c.fit(X, y), X) == _summary(d, X)


def test_verbose_progress_bar(iris, fitted_teacher, capsys):
    X, y = iris
    est = CREMBOClassifier(fitted_teacher, verbose=1, random_state=0, **PAPER).fit(X, y)
    quiet = CREMBOClassifier(fitted_teacher, random_state=0, **PAPER).fit(X, y)
    err = capsys.readouterr().err
    assert "CREMBO sweep" in err
    assert _summary(est, X) == _summary(quiet, X)


# --------------------------------------------------------------------------
# 4. Bad input
# --------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [CREMBOClassifier, LabelDistiller])
def test_bad_x_and_y(iris, fitted_teacher, cls):
    X, y = iris
    Xn = X.copy()
    Xn[5, 2] = np.nan
    # Missing values pass when the teacher and the student accept them
    # (tests/test_tables.py); a student that refuses them is named.
    with pytest.raises(ValueError, match=r"column 2 has missing values.*student \(LogisticRegression\)"):
        cls(fitted_teacher, LogisticRegression()).fit(Xn, y)
    Xi = X.copy()
    Xi[7, 0] = np.inf
    with pytest.raises(ValueError, match="X contains infinity"):
        cls(fitted_teacher).fit(Xi, y)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        cls(fitted_teacher).fit(X, y[:-1])
    with pytest.raises(ValueError, match="0 sample"):
        cls(fitted_teacher).fit(X[:0], y[:0])
    with pytest.raises(ValueError, match="y: expected at least two classes"):
        cls(small_teacher()).fit(X[:50], y[:50])
    with pytest.raises(ValueError, match=r"y: labels \[3\] are not among the teacher's classes"):
        cls(fitted_teacher).fit(X, np.where(y == 2, 3, y))
    with pytest.raises(ValueError, match="y: labels"):
        cls(fitted_teacher).fit(X, load_iris().target_names[y])
    with pytest.raises(ValueError, match="Unknown label type"):
        cls(small_teacher()).fit(X, X[:, 0])


@pytest.mark.parametrize("cls", [CREMBOClassifier, LabelDistiller])
def test_teacher_without_probabilities(iris, cls):
    X, y = iris
    with pytest.raises(TypeError, match="teacher: SVC has neither ensemble members.*nor predict_proba"):
        cls(SVC().fit(X, y)).fit(X, y)  # probability off (the default)
    with pytest.raises(TypeError, match="teacher: LinearSVC has neither"):
        cls(LinearSVC()).fit(X, y)
    with pytest.raises(TypeError, match="teacher: expected a scikit-learn classifier"):
        cls("random forest").fit(X, y)


@pytest.mark.parametrize("cls", [CREMBOClassifier, LabelDistiller])
def test_bad_precomputed_beliefs(iris, fitted_teacher, cls):
    X, y = iris
    P = teacher_beliefs(fitted_teacher, X)
    with pytest.raises(ValueError, match="teacher: precomputed beliefs have 149 rows, expected 150"):
        cls(P[:-1]).fit(X, y)
    with pytest.raises(ValueError, match="teacher: precomputed beliefs have 150 rows, expected 160"):
        cls(P).fit(X, y, X_unlabeled=X[:10])
    with pytest.raises(ValueError, match="precomputed beliefs have 2 columns but y has 3 classes"):
        cls(np.full((150, 2), 0.5)).fit(X, y)
    bad = P.copy()
    bad[4, 0] = np.nan
    with pytest.raises(ValueError, match="row 4 has a non-finite value"):
        cls(bad).fit(X, y)
    bad = P.copy()
    bad[9] = [1.5, -0.5, 0.0]
    with pytest.raises(ValueError, match="row 9 has a negative value"):
        cls(bad).fit(X, y)
    bad = P.copy()
    bad[11] = [0.3, 0.3, 0.3]
    with pytest.raises(ValueError, match="row 11 sums to 0.9"):
        cls(bad).fit(X, y)
    with pytest.raises(ValueError, match="teacher.*2-d array"):
        cls(P[:, 0].copy()).fit(X, y)


@pytest.mark.parametrize("cls", [CREMBOClassifier, LabelDistiller])
def test_bad_callable_teacher(iris, cls):
    X, y = iris
    with pytest.raises(ValueError, match="teacher: returned 2 classes, expected 3"):
        cls(lambda Z: np.full((len(Z), 2), 0.5)).fit(X, y)
    with pytest.raises(ValueError, match="teacher: returned beliefs for 5 rows"):
        cls(lambda Z: np.full((5, 3), 1 / 3)).fit(X, y)
    with pytest.raises(ValueError, match=r"teacher\(X\): expected a 2-d array"):
        cls(lambda Z: np.ones(len(Z))).fit(X, y)
    with pytest.raises(ValueError, match="sums to"):
        cls(lambda Z: np.full((len(Z), 3), 0.5)).fit(X, y)


def test_student_without_sample_weight(iris, fitted_teacher):
    X, y = iris
    with pytest.raises(TypeError, match="KNeighborsClassifier.fit does not accept sample_weight"):
        CREMBOClassifier(fitted_teacher, KNeighborsClassifier(), oracle="reweight").fit(X, y)
    est = CREMBOClassifier(fitted_teacher, KNeighborsClassifier(), oracle="single", random_state=0).fit(X, y)
    assert isinstance(est.student_, AllowedLabelStudent)
    assert est.score(X, y) > 0.85
    # the single oracle needs a multi-output student
    with pytest.raises(ValueError, match="student_target='multioutput'"):
        CREMBOClassifier(fitted_teacher, LogisticRegression(), oracle="single").fit(X, y)
    with pytest.raises(ValueError, match="oracle='single'.*student_target='multioutput'"):
        CREMBOClassifier(fitted_teacher, oracle="single", student_target="labels").fit(X, y)
    with pytest.raises(TypeError, match="student: expected a scikit-learn classifier"):
        CREMBOClassifier(fitted_teacher, StandardScaler()).fit(X, y)


class _ExplodingTeacher(RandomForestClassifier):
    """Fails the test if anyone fits it: parameters must be checked first."""

    def fit(self, X, y, sample_weight=None):
        raise AssertionError("teacher fitted before the parameters were checked")


BAD_PARAMS = [
    (dict(mode="fast"), ValueError, "mode: expected one of 'crembo', 'memo', got 'fast'"),
    (dict(oracle="exact"), ValueError, "oracle: expected one of"),
    (dict(student_target="soft"), ValueError, "student_target: expected one of"),
    (dict(delta=1), ValueError, r"delta: expected a value in \[0.0, 1.0\)"),
    (dict(delta=-0.1), ValueError, "delta"),
    (dict(validation_fraction=0), ValueError, r"validation_fraction: expected a value in \(0.0, 1.0\)"),
    (dict(validation_fraction=1.0), ValueError, "validation_fraction"),
    (dict(n_thresholds=0), ValueError, "n_thresholds: expected an integer >= 1"),
    (dict(n_thresholds=2.5), TypeError, "n_thresholds"),
    (dict(eta=0), ValueError, "eta: expected a positive number"),
    (dict(eta=-1.0), ValueError, "eta"),
    (dict(eta=float("nan")), ValueError, "eta"),
    (dict(max_rounds=0), ValueError, "max_rounds: expected an integer >= 1"),
    (dict(max_rounds=True), TypeError, "max_rounds"),
    (dict(scoring="f1"), ValueError, "scoring: expected one of 'accuracy', 'balanced_accuracy'"),
    (dict(belief="softmax"), ValueError, "belief: expected one of"),
    (dict(device="gpu"), ValueError, "device: expected one of 'cpu', 'cuda', 'auto', got 'gpu'"),
    (dict(search_subsample=1), ValueError, "search_subsample: expected an integer >= 2"),
    (dict(search_subsample=0.0), ValueError, "search_subsample"),
    (dict(search_subsample=1.5), ValueError, "search_subsample"),
    (dict(search_subsample="half"), TypeError, "search_subsample"),
]


@pytest.mark.parametrize("params,exc,match", BAD_PARAMS, ids=[str(p[0]) for p in BAD_PARAMS])
def test_bad_parameters(iris, params, exc, match):
    X, y = iris
    with pytest.raises(exc, match=match):
        CREMBOClassifier(_ExplodingTeacher(), **params).fit(X, y)


def test_non_numeric_eta_names_argument(iris, fitted_teacher):
    X, y = iris
    with pytest.raises((TypeError, ValueError), match="eta"):
        CREMBOClassifier(fitted_teacher, eta="fast").fit(X, y)


def test_label_distiller_bad_parameters(iris):
    X, y = iris
    with pytest.raises(ValueError, match="belief: expected one of"):
        LabelDistiller(_ExplodingTeacher(), belief="softmax").fit(X, y)
    with pytest.raises(ValueError, match="device"):
        LabelDistiller(_ExplodingTeacher(), device="gpu").fit(X, y)


@pytest.mark.skipif(crembo.cuda_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("cls", [CREMBOClassifier, LabelDistiller])
def test_cuda_without_cuda(iris, cls):
    X, y = iris
    with pytest.raises(ValueError, match="device='cuda'"):
        cls(_ExplodingTeacher(), device="cuda").fit(X, y)


def test_belief_votes_on_proba_teacher(iris):
    X, y = iris
    with pytest.raises(TypeError, match="belief='votes' needs a fitted voting ensemble"):
        CREMBOClassifier(GradientBoostingClassifier(n_estimators=5), belief="votes").fit(X, y)


@pytest.mark.parametrize("cls", [CREMBOClassifier, LabelDistiller])
def test_bad_x_unlabeled(iris, fitted_teacher, cls):
    X, y = iris
    with pytest.raises(ValueError, match="3 features.*expecting 4 features"):
        cls(fitted_teacher).fit(X, y, X_unlabeled=X[:10, :3])
    Xu = X[:10].copy()
    Xu[2, 2] = np.nan
    with pytest.raises(ValueError, match="X_unlabeled: column 2 has missing values"):
        cls(fitted_teacher, LogisticRegression()).fit(X, y, X_unlabeled=Xu)


def test_x_unlabeled_errors_name_the_argument(iris, fitted_teacher):
    X, y = iris
    with pytest.raises(ValueError, match="X_unlabeled"):
        CREMBOClassifier(fitted_teacher).fit(X, y, X_unlabeled=X[:10, :3])


@pytest.mark.parametrize("cls", [CREMBOClassifier, LabelDistiller])
def test_predict_errors(iris, fitted_teacher, cls):
    X, y = iris
    est = cls(fitted_teacher)
    for method in (est.predict, est.predict_proba):
        with pytest.raises(NotFittedError):
            method(X)
    est.fit(X, y)
    refuses_nan = cls(fitted_teacher, LogisticRegression()).fit(X, y)
    for method, other in ((est.predict, refuses_nan.predict), (est.predict_proba, refuses_nan.predict_proba)):
        with pytest.raises(ValueError, match="X has 3 features, but .* is expecting 4 features"):
            method(X[:, :3])
        Xn = X[:5].copy()
        Xn[0, 0] = np.nan
        assert len(method(Xn)) == 5  # the default students take missing values
        with pytest.raises(ValueError, match="column 0 has missing values"):
            other(Xn)


@pytest.mark.parametrize("mode", ["memo", "crembo"])
def test_no_consistent_student(iris, mode):
    # One-hot beliefs on random labels: the only candidate threshold is 1 and a
    # stump cannot be consistent there, so MEMO finds nothing.
    X, y = iris
    P = np.eye(3)[np.random.default_rng(0).integers(0, 3, 150)]
    est = CREMBOClassifier(P, DecisionTreeClassifier(max_depth=1), mode=mode, random_state=0, **PAPER)
    with pytest.warns(RuntimeWarning, match="MEMO found no consistent student"):
        est.fit(X, y)
    assert est.memo_threshold_ is None and est.memo_depth_ is None
    assert est.threshold_ == 1.0
    assert all(not r["consistent"] for r in est.trace_ if r["stage"] == "memo")
    assert est.n_student_fits_ == sum(r["rounds"] for r in est.trace_)
    assert est.trace_[-1]["stage"] == ("refit" if mode == "memo" else "sweep")
    assert (est.validation_score_ is None) == (mode == "memo")
    assert est.predict(X).shape == (150,) and 0.0 <= est.depth_ <= 1.0


def test_busy_seconds_counts_overlapping_fits_once():
    from crembo.compress.sweep import busy_seconds

    assert busy_seconds([]) == 0.0
    assert busy_seconds([(0.0, 1.0), (2.0, 3.5)]) == 2.5  # disjoint: the sum
    assert busy_seconds([(0.0, 2.0), (1.0, 3.0)]) == 3.0  # overlapping: the union
    assert busy_seconds([(1.0, 3.0), (0.0, 4.0), (1.5, 2.0)]) == 4.0  # nested, any order


def test_parallel_sweep_timings_add_up(fitted_teacher):
    X, y = load_iris(return_X_y=True)
    est = CREMBOClassifier(fitted_teacher, n_jobs=2, random_state=0, **PAPER).fit(X, y)
    t = est.timings_
    sweep_fits = sum(r["fit_seconds"] for r in est.trace_ if r["stage"] == "sweep")
    # Two sweep fits at a time: the wall time they took is at most their sum.
    assert t["student_fits"] <= t["memo"] + sweep_fits + 1e-9
    assert t["overhead"] >= 0 and t["student_fits"] + t["teacher_fit"] <= t["total"] + 1e-9


def test_probe_lowest_ends_a_failing_memo_after_one_probe():
    # A deep forest's votes on its own training rows are nearly one-hot: no
    # stump is consistent at any threshold, so MEMO fails either way; probing
    # the smallest threshold first finds that out with one probe, and the
    # sweep after it (and so the chosen student) is the same.
    X, y = load_breast_cancer(return_X_y=True)
    forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
    fits = {}
    for probe_lowest in (True, False):
        est = CREMBOClassifier(
            forest,
            DecisionTreeClassifier(max_depth=1, random_state=0),
            max_rounds=2,
            probe_lowest=probe_lowest,
            random_state=0,
        )
        with pytest.warns(RuntimeWarning, match="MEMO found no consistent student"):
            est.fit(X, y)
        memo = [r for r in est.trace_ if r["stage"] == "memo"]
        assert est.memo_threshold_ is None and not any(r["consistent"] for r in memo)
        fits[probe_lowest] = (len(memo), est.threshold_, est.predict(X))
    assert fits[True][0] == 1 < fits[False][0]
    assert fits[True][1] == fits[False][1]
    np.testing.assert_array_equal(fits[True][2], fits[False][2])


# ------------------------------------------------------- cross-validated sweep
def test_cv_sweep_scores_out_of_fold_and_refits_on_all_rows(fitted_teacher, iris):
    X, y = iris
    est = CREMBOClassifier(fitted_teacher, cv=5, random_state=0).fit(X, y)
    cv = [r for r in est.trace_ if r["stage"] == "cv"]
    assert cv and {r["stage"] for r in est.trace_} <= {"memo", "cv", "refit"}
    assert all(r["rounds"] == 5 for r in cv if r["validation_score"] is not None)
    assert est.n_student_fits_ == sum(r["rounds"] for r in est.trace_)
    scored = {r["threshold"]: r["validation_score"] for r in cv if r["validation_score"] is not None}
    assert est.threshold_ in scored and est.validation_score_ == scored[est.threshold_]
    assert est.validation_score_ == max(scored.values())
    if est.threshold_ != est.memo_threshold_:
        refit = [r for r in est.trace_ if r["stage"] == "refit"]
        assert len(refit) == 1 and refit[0]["threshold"] == est.threshold_
    assert np.mean(est.predict(X) == y) > 0.9
    from crembo.evaluation.protocol import _with_selection

    with pytest.raises(ValueError, match="without cv"):
        _with_selection(est, "one_se")


def test_cv_sweep_never_scores_a_row_it_trained_on():
    # The teacher knows every (random) label and a 1-NN student memorises
    # its training rows: any row scored by a student that saw it would be
    # right, so a leak shows as a validation score near 1; out of fold, a
    # random label is guessed at chance.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = rng.integers(0, 3, size=300)
    beliefs = np.full((300, 3), 0.05)
    beliefs[np.arange(300), y] = 0.9
    est = CREMBOClassifier(beliefs, KNeighborsClassifier(n_neighbors=1), oracle="single", cv=4, random_state=0).fit(
        X, y
    )
    assert est.validation_score_ < 0.5
    assert np.mean(est.predict(X) == y) == 1.0  # the final student did see every row


def test_cv_with_allowed_sets_unlabelled_rows_and_subsample(iris):
    X, y = iris
    teacher = small_teacher().fit(X, y)
    X_unl = X + np.random.default_rng(1).normal(scale=0.05, size=X.shape)
    est = CREMBOClassifier(teacher, "tree:3", oracle="single", cv=3, search_subsample=200, random_state=0)
    est.fit(X, y, X_unlabeled=X_unl)
    assert any(r["stage"] == "cv" for r in est.trace_)
    assert est.trace_[-1]["stage"] == "refit"  # the search ran on a subsample
    assert np.mean(est.predict(X) == y) > 0.85


@pytest.mark.parametrize(
    "cv, error, match",
    [
        (1, ValueError, "cv"),
        (0, ValueError, "cv"),
        (2.5, TypeError, "cv"),
        ("5", TypeError, "cv"),
        (1000, ValueError, "only 150 labelled rows"),
    ],
)
def test_cv_bad_values(fitted_teacher, iris, cv, error, match):
    X, y = iris
    with pytest.raises(error, match=match):
        CREMBOClassifier(fitted_teacher, cv=cv, random_state=0).fit(X, y)


def test_stratified_holdout_is_train_test_split():
    # CREMBO's validation split gathers scikit-learn's stratified split with
    # arrays: the same rows for every layout, seed and size (string labels,
    # rare classes, validation sides from one row per class up).
    from sklearn.model_selection import train_test_split

    from crembo.compress.estimators import stratified_holdout

    for trial in range(150):
        r = np.random.RandomState(trial)
        C = int(r.randint(2, 12))
        p = r.dirichlet(np.ones(C) * r.choice([0.3, 1.0, 5.0]))
        codes = np.concatenate([r.choice(C, int(r.randint(0, 800)), p=p), np.arange(C), np.arange(C)])
        y = np.array([f"c{k}" for k in range(C)])[codes]
        n = len(y)
        n_val = int(r.randint(C, n - C + 1))
        seed = int(r.randint(1 << 30))
        _, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
        fit_rows, val_rows = stratified_holdout(inverse, counts, n_val, seed)
        ref_fit, ref_val = train_test_split(np.arange(n), test_size=n_val, random_state=seed, stratify=y)
        np.testing.assert_array_equal(fit_rows, np.sort(ref_fit))
        np.testing.assert_array_equal(val_rows, np.sort(ref_val))


@pytest.mark.parametrize(
    "y",
    [
        np.array([3, 0, 3, 7, 7, 7, 0]),
        np.array([2, 2, 5], dtype=np.uint8),
        np.array([-1, 4, 4, -1, 9]),  # negative labels: np.unique itself
        np.array([10**9, 5, 10**9]),  # labels far above the row count: np.unique itself
        np.array(["b", "a", "b", "c"]),
        np.array([True, False, True]),
        np.array([0.5, 2.0, 0.5]),
    ],
)
def test_unique_labels_equals_np_unique(y):
    from crembo.compress.estimators import unique_labels

    got = unique_labels(y)
    want = np.unique(y, return_inverse=True, return_counts=True)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g, w.reshape(-1))
