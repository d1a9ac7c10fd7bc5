"""The CREMBO sweep module: SweepResult, selection and the sweeps' backends."""

from __future__ import annotations

import numpy as np
import pytest
from joblib import parallel_config
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.tree import DecisionTreeClassifier

from crembo import CREMBOClassifier, HistTreeClassifier, teacher_beliefs
from crembo.compress import SweepCandidate, SweepResult, cv_sweep, holdout_sweep, select_candidate
from crembo.compress.sweep import sweep_thresholds
from crembo.compress.students import StudentTrainer


def result(scores, n_validation=100):
    cands = [SweepCandidate(0.1 * (k + 1), s, f"student{k}", 0, 0.0, 1) for k, s in enumerate(scores)]
    return SweepResult("holdout", [c.threshold for c in cands], cands, n_validation=n_validation)


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


@pytest.fixture(scope="module")
def teacher(iris):
    X, y = iris
    return RandomForestClassifier(n_estimators=10, max_depth=6, random_state=0).fit(X, y)


# ---------------------------------------------------------------- selection
def test_best_takes_the_highest_score_and_ties_go_to_the_lowest_threshold():
    r = result([0.80, 0.90, 0.85, 0.90])
    assert select_candidate(r, "best") is r.candidates[1]
    assert select_candidate(r) is r.candidates[1]


def test_one_se_takes_the_lowest_threshold_within_one_standard_error():
    # best 0.9 on 100 rows: se = 0.03, so 0.88 is within reach and 0.86 is not
    r = result([0.86, 0.88, 0.90], n_validation=100)
    assert select_candidate(r, "one_se") is r.candidates[1]
    # on 10 000 rows the standard error is 0.003: only the best is within reach
    assert select_candidate(result([0.86, 0.88, 0.90], n_validation=10_000), "one_se").score == 0.90


def test_unscored_candidates_are_never_chosen_and_none_scored_gives_none():
    r = result([None, 0.5, None])
    assert r.scored == [r.candidates[1]]
    assert select_candidate(r, "best") is r.candidates[1]
    assert select_candidate(result([None, None]), "best") is None


def test_callable_selection_returns_a_candidate_or_its_index():
    r = result([0.8, 0.9, 0.7])
    assert select_candidate(r, lambda res: res.candidates[2]) is r.candidates[2]
    assert select_candidate(r, lambda res: 0) is r.candidates[0]
    assert select_candidate(r, lambda res: -1) is r.candidates[2]


@pytest.mark.parametrize(
    "rule, match",
    [
        (lambda res: 7, "index 7"),
        (lambda res: SweepCandidate(0.5, 0.9, None, 0, 0.0, 1), "one of the scored candidates"),
        (lambda res: None, "one of the scored candidates"),
        ("worst", "selection"),
    ],
)
def test_bad_selection_is_a_clear_error(rule, match):
    with pytest.raises(ValueError, match=match):
        select_candidate(result([0.8, 0.9]), rule)


def test_a_callable_may_not_pick_an_unscored_candidate():
    r = result([None, 0.9])
    with pytest.raises(ValueError, match="scored"):
        select_candidate(r, lambda res: 0)


def test_trace_records_follow_the_candidates():
    r = result([0.8, None])
    r.candidates[0].violations = 3
    trace = r.trace()
    assert [rec["stage"] for rec in trace] == ["sweep", "sweep"]
    assert trace[0] == dict(
        stage="sweep", threshold=0.1, consistent=False, violations=3, rounds=1, validation_score=0.8, fit_seconds=0.0
    )
    assert trace[1]["consistent"] is False  # no score: not a consistent candidate
    assert r.n_fits == 2


# -------------------------------------------------------- the estimator
def nearest_to(t):
    def rule(sweep):
        return min(sweep.scored, key=lambda c: abs(c.threshold - t))

    return rule


@pytest.mark.parametrize("cv", [None, 3])
def test_sweep_attribute_and_callable_selection(iris, teacher, cv):
    X, y = iris
    est = CREMBOClassifier(teacher, cv=cv, random_state=0).fit(X, y)
    sweep = est.sweep_
    assert isinstance(sweep, SweepResult)
    assert sweep.method == ("cv" if cv else "holdout") and sweep.n_folds == cv
    assert [r for r in est.trace_ if r["stage"] in ("sweep", "cv")] == sweep.trace()
    assert sweep.n_validation == (150 if cv else int(np.ceil(0.15 * 150)))
    best = select_candidate(sweep, "best")
    assert est.threshold_ == best.threshold and est.validation_score_ == best.score
    # a callable rule: the candidate nearest the top threshold
    top = max(c.threshold for c in sweep.scored)
    other = CREMBOClassifier(teacher, cv=cv, selection=nearest_to(top), random_state=0).fit(X, y)
    assert other.threshold_ == top != est.threshold_
    # the same search, another choice
    same = [(c.threshold, c.score, c.violations) for c in sweep.candidates]
    assert [(c.threshold, c.score, c.violations) for c in other.sweep_.candidates] == same


def test_holdout_candidates_are_the_students_and_memo_mode_has_no_sweep(iris, teacher):
    X, y = iris
    est = CREMBOClassifier(teacher, cv=None, random_state=0).fit(X, y)
    chosen = select_candidate(est.sweep_, "best")
    assert est.student_ is chosen.student
    first = est.sweep_.candidates[0]
    assert first.threshold == est.memo_threshold_ and first.n_fits == 0  # MEMO's student, no new fit
    assert all(c.student is not None for c in est.sweep_.candidates)
    memo = CREMBOClassifier(teacher, mode="memo", random_state=0).fit(X, y)
    assert memo.sweep_ is None


def test_a_fit_reselected_by_evaluation_matches_a_fit_with_that_rule(iris, teacher):
    from crembo.evaluation.protocol import _with_selection

    X, y = iris
    kw = dict(cv=None, augment=0, random_state=0)
    best = CREMBOClassifier(teacher, **kw).fit(X, y)
    direct = CREMBOClassifier(teacher, selection="one_se", **kw).fit(X, y)
    again = _with_selection(best, "one_se")
    assert again.threshold_ == direct.threshold_ and again.validation_score_ == direct.validation_score_
    np.testing.assert_array_equal(again.predict(X), direct.predict(X))
    assert best.selection == "best"  # the original is left alone


@pytest.mark.parametrize("bad", ["median", 3])
def test_bad_selection_parameter(iris, teacher, bad):
    X, y = iris
    with pytest.raises((ValueError, TypeError), match="selection"):
        CREMBOClassifier(teacher, selection=bad).fit(X, y)


# ------------------------------------------------------------ backends
@pytest.mark.parametrize("cv", [None, 3])
@pytest.mark.parametrize("student", ["tree:3", DecisionTreeClassifier(max_depth=3, random_state=0)])
def test_loky_backend_gives_the_default_result(iris, teacher, cv, student):
    X, y = iris
    kw = dict(cv=cv, n_jobs=2, n_thresholds=6, random_state=0)
    default = CREMBOClassifier(teacher, student, **kw).fit(X, y)
    with parallel_config(backend="loky"):
        loky = CREMBOClassifier(teacher, student, **kw).fit(X, y)
    assert loky.threshold_ == default.threshold_
    assert loky.validation_score_ == default.validation_score_
    strip = [{k: v for k, v in r.items() if k != "fit_seconds"} for r in default.trace_]
    assert [{k: v for k, v in r.items() if k != "fit_seconds"} for r in loky.trace_] == strip
    np.testing.assert_array_equal(loky.predict(X), default.predict(X))
    np.testing.assert_array_equal(loky.predict_proba(X), default.predict_proba(X))


def test_default_threads_are_the_sweeps_own_and_configured_backends_get_joblib(iris, teacher, monkeypatch):
    import joblib
    from joblib import delayed

    from crembo.compress import sweep

    calls = []
    real = sweep.Parallel
    monkeypatch.setattr(sweep, "Parallel", lambda *a, **k: calls.append(k) or real(*a, **k))
    tasks = lambda: [delayed(pow)(k, 2) for k in range(9)]  # noqa: E731
    ticks = []
    # Joblib's default configuration: the sweep's own threads, kept between
    # sweeps; results in order, on_fit after each.
    assert sweep._run(tasks(), 2, lambda: ticks.append(1)) == [k * k for k in range(9)]
    pool = sweep._pool(2)
    assert sweep._run(tasks(), 2, None) == [k * k for k in range(9)] and sweep._pool(2) is pool
    assert len(ticks) == 9 and calls == []
    assert sweep._run(tasks(), None, None) == [k * k for k in range(9)]  # one job: in the caller
    # A configuration in effect (any backend, even threads): joblib runs them.
    for backend in ("threading", "loky"):
        with joblib.parallel_config(backend=backend):
            assert sweep._run(tasks(), 2, None) == [k * k for k in range(9)]
    assert len(calls) == 2
    # A sweep inside a sweep's task runs in its caller (no deadlock on the
    # pool's busy threads), and a task's error reaches the caller.
    inner = lambda: sweep._run(tasks(), 2, None)  # noqa: E731
    assert sweep._run([delayed(inner)() for _ in range(4)], 2, None) == [[k * k for k in range(9)]] * 4
    with pytest.raises(ZeroDivisionError):
        sweep._run([delayed(divmod)(1, k) for k in (1, 0, 2)], 2, None)
    # The same CREMBO either way.
    X, y = iris
    kw = dict(n_jobs=2, n_thresholds=6, random_state=0)
    own = CREMBOClassifier(teacher, "tree:3", **kw).fit(X, y)
    with joblib.parallel_config(backend="threading"):
        threads = CREMBOClassifier(teacher, "tree:3", **kw).fit(X, y)
    assert own.threshold_ == threads.threshold_
    np.testing.assert_array_equal(own.predict_proba(X), threads.predict_proba(X))


def test_sweep_functions_run_on_their_own(iris, teacher):
    X, y = iris
    P = teacher_beliefs(teacher, X)
    trainer = StudentTrainer(HistTreeClassifier(max_depth=2), np.arange(3), seed=0)
    ts = sweep_thresholds(P, None, 5)
    assert ts == sorted(ts) and len(ts) <= 5
    fit_rows, val_rows = np.arange(0, 150, 2), np.arange(1, 150, 2)
    hold = holdout_sweep(trainer, X[fit_rows], P[fit_rows], X[val_rows], y[val_rows], ts)
    assert [c.threshold for c in hold.candidates] == ts and not hold.timed_out
    assert all(c.n_fits == 1 and 0 <= c.score <= 1 for c in hold.candidates)
    calls = []
    cv = cv_sweep(trainer, X, P, np.arange(150), y, ts, n_folds=3, random_state=0, on_fit=lambda: calls.append(1))
    assert len(calls) == 3 * len(ts) and cv.n_folds == 3 and cv.n_validation == 150
    assert all(c.student is None for c in cv.candidates)
    with pytest.raises(ValueError, match="only 2 labelled rows"):
        cv_sweep(trainer, X, P, np.arange(2), y[:2], ts, n_folds=3)


def test_repeated_cv_scores_every_partition(iris, teacher):
    # cv_repeats: partition r is the one random_state + r gives alone, and a
    # threshold's score is the accuracy over all partitions' out-of-fold
    # predictions (the mean of the partitions' accuracies).
    X, y = iris
    P = teacher_beliefs(teacher, X)
    trainer = StudentTrainer(HistTreeClassifier(max_depth=2), np.arange(3), seed=0)
    ts = sweep_thresholds(P, None, 6)
    rows = np.arange(150)
    one = [cv_sweep(trainer, X, P, rows, y, ts, n_folds=3, random_state=7 + r) for r in range(3)]
    calls = []
    rep = cv_sweep(trainer, X, P, rows, y, ts, n_folds=3, n_repeats=3, random_state=7, on_fit=lambda: calls.append(1))
    assert rep.n_repeats == 3 and rep.n_folds == 3 and len(calls) == 9 * len(ts)
    assert [c.n_fits for c in rep.candidates] == [9] * len(ts)
    for k, c in enumerate(rep.candidates):
        assert c.score == pytest.approx(np.mean([o.candidates[k].score for o in one]), abs=1e-12)
    assert one[0].n_repeats == 1
    scores = {tuple(c.score for c in o.candidates) for o in one}
    assert len(scores) > 1  # the partitions differ, so the average is not one of them
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="cv_repeats"):
            cv_sweep(trainer, X, P, rows, y, ts, n_folds=3, n_repeats=bad)


@pytest.mark.parametrize("bad", [0, 2.5, "3", True])
def test_bad_cv_repeats(iris, teacher, bad):
    X, y = iris
    with pytest.raises((ValueError, TypeError), match="cv_repeats"):
        CREMBOClassifier(teacher, cv_repeats=bad).fit(X, y)


def test_cv_repeats_in_the_estimator(iris, teacher):
    X, y = iris
    a = CREMBOClassifier(teacher, student="tree:2", random_state=0).fit(X, y)
    b = CREMBOClassifier(teacher, student="tree:2", random_state=0, cv_repeats=2).fit(X, y)
    c = CREMBOClassifier(teacher, student="tree:2", random_state=0, cv_repeats=1).fit(X, y)
    assert a.sweep_.n_repeats == 1 and b.sweep_.n_repeats == 2
    assert [r["rounds"] for r in b.trace_ if r["stage"] == "cv"] == [
        2 * r["rounds"] for r in a.trace_ if r["stage"] == "cv"
    ]
    np.testing.assert_array_equal(a.predict(X), c.predict(X))  # 1: the sweep as before
    assert a.threshold_ == c.threshold_
    # a single held-out split ignores it
    d = CREMBOClassifier(teacher, student="tree:2", random_state=0, cv=None, cv_repeats=3).fit(X, y)
    assert d.sweep_.method == "holdout" and d.sweep_.n_repeats == 1


def test_a_passed_deadline_still_tries_the_first_threshold(iris, teacher):
    X, y = iris
    P = teacher_beliefs(teacher, X)
    trainer = StudentTrainer(HistTreeClassifier(max_depth=2), np.arange(3), seed=0)
    ts = sweep_thresholds(P, None, 5)
    hold = holdout_sweep(trainer, X, P, X, y, ts, deadline=0.0)
    assert hold.timed_out and [c.threshold for c in hold.candidates] == ts[:1]
    cv = cv_sweep(trainer, X, P, np.arange(150), y, ts, n_folds=3, deadline=0.0)
    assert cv.timed_out and [c.threshold for c in cv.candidates] == ts[:1]


@pytest.mark.parametrize("scoring", ["rmse", "r2"])
def test_regressor_sweep_result_and_error_scores(scoring):
    from crembo.compress.regression import CREMBORegressor

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = X[:, 0] + 0.5 * X[:, 1] ** 2 + rng.normal(scale=0.2, size=300)
    est = CREMBORegressor(scoring=scoring, n_thresholds=6, random_state=0).fit(X, y)
    sweep = est.sweep_
    assert sweep.greater_is_better == (scoring == "r2")
    scores = [c.score for c in sweep.scored]
    assert est.validation_score_ == (max(scores) if scoring == "r2" else min(scores))
    assert est.level_ == select_candidate(sweep).threshold
    assert [r for r in est.trace_ if r["stage"] == "sweep"] == sweep.trace()
    errors = SweepResult("holdout", [], sweep.candidates, greater_is_better=False)
    with pytest.raises(ValueError, match="one_se"):  # a standard error of an accuracy only
        select_candidate(errors, "one_se")
    assert CREMBORegressor(mode="memo", random_state=0).fit(X, y).sweep_ is None


def test_error_scores_select_the_lowest():
    r = result([0.3, 0.1, 0.1, 0.2])
    r.greater_is_better = False
    assert select_candidate(r) is r.candidates[1]  # the lowest error, ties to the lowest threshold


@pytest.mark.parametrize(
    "student", [DecisionTreeClassifier(max_depth=3, random_state=0), HistTreeClassifier(max_depth=3)]
)
@pytest.mark.parametrize("threshold", [0.05, 0.4, 0.9])
def test_belief_leaf_predictions_are_the_students_own(student, threshold):
    # fit_at_threshold reads the predictions off the leaves it averaged the
    # beliefs over: they must be exactly what the student predicts, also
    # when the student saw fewer classes than the teacher has.
    from crembo.compress.students import StudentTrainer
    from crembo.compress.sweep import fit_at_threshold

    X, y = load_iris(return_X_y=True)
    P = teacher_beliefs(RandomForestClassifier(n_estimators=15, max_depth=3, random_state=0).fit(X, y), X)
    P4 = np.hstack([np.zeros((len(P), 1)), P])  # a first class nobody believes in
    trainer = StudentTrainer(student, np.arange(4), seed=0)
    w = np.linspace(0.5, 2.0, len(X))
    fit = fit_at_threshold(trainer, X, P4, threshold, sample_weight=w, leaf_values="belief")
    np.testing.assert_array_equal(fit.pred, trainer.predict_index(fit.student, X))
    assert set(fit.student.classes_) <= {1, 2, 3}


def test_label_accuracy_is_accuracy_score_to_the_last_bit():
    # The sweep's own accuracy: the float accuracy_score gives, weighted or
    # not, and scikit-learn's error for weights that sum to zero.
    from sklearn.metrics import accuracy_score

    from crembo.compress.sweep import label_accuracy

    for trial in range(60):
        r = np.random.RandomState(trial)
        n = int(r.randint(1, 5000))
        y = r.randint(0, 7, n)
        pred = np.where(r.rand(n) < 0.7, y, r.randint(0, 7, n)).astype(np.int32)
        w = r.exponential(size=n) * r.choice([1e-3, 1.0, 1e6])
        assert label_accuracy(y, pred) == accuracy_score(y, pred)
        assert label_accuracy(y, pred, w) == accuracy_score(y, pred, sample_weight=w)
    with pytest.raises(ValueError, match="non-zero"):
        label_accuracy(np.array([0, 1]), np.array([0, 0]), np.zeros(2))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_thresholds_from_the_distinct_entries_gathered_once(dtype):
    from crembo import _native
    from crembo.compress.memo import run_memo

    rng = np.random.default_rng(3)
    votes = rng.multinomial(25, np.ones(5) / 5, size=400)
    for P in (votes / 25.0, rng.dirichlet(np.ones(5), 400)):  # few distinct values, and many
        P = P.astype(dtype)
        distinct = _native.distinct_entries(P, 0.0, 1.0)
        assert distinct[1].sum() == np.count_nonzero(P)
        for start in (None, 0.0, 0.12, float(np.median(P)), 0.999, 1.5):
            for k in (None, 1, 3, 32, 10**6):
                assert sweep_thresholds(P, start, k, distinct) == sweep_thresholds(P, start, k)
        X = rng.normal(size=(400, 3))
        trainer = StudentTrainer(HistTreeClassifier(max_depth=2), np.arange(5), seed=0)
        a = run_memo(X, P, trainer, distinct=distinct)
        b = run_memo(X, P, trainer)
        np.testing.assert_array_equal(a.candidates, b.candidates)
        assert a.threshold == b.threshold
    with pytest.raises(ValueError, match="sorted and distinct"):
        _native.budget_from_counts(np.array([0.2, 0.1]), np.array([1, 1]), 2)
    with pytest.raises(ValueError, match="positive"):
        _native.budget_from_counts(np.array([0.1, 0.2]), np.array([1, 0]), 2)
    with pytest.raises(ValueError, match="expected 2 values"):
        _native.budget_from_counts(np.array([0.1, 0.2]), np.array([1]), 2)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_a_forked_child_makes_its_own_sweep_threads():
    import os

    from joblib import delayed

    from crembo.compress import sweep

    sweep._run([delayed(abs)(-k) for k in range(4)], 2, None)  # the parent's pool exists
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a sweep must run (not hang on the parent's threads)
        try:
            ok = sweep._POOLS == {} and sweep._run([delayed(abs)(-k) for k in range(4)], 2, None) == [0, 1, 2, 3]
            os.write(write, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(write)
    got = os.read(read, 1)
    os.waitpid(pid, 0)
    assert got == b"1"
