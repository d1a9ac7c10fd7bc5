"""CREMBO's threshold sweep: train a student at each threshold at and above
MEMO's, score it on held-out labelled rows, and choose one.

Two ways to score a threshold:

* :func:`holdout_sweep` fits one student per threshold on the transfer set
  and scores it on a held-out validation split (the paper's protocol);
* :func:`cv_sweep` fits ``n_folds`` students per threshold, each without one
  fold of the labelled rows, and scores the out-of-fold predictions.

Both return a :class:`SweepResult`, and the choice among its candidates is
:func:`select_candidate`, a pure function of that result and a selection
rule. The student fits run on threads of this process by default (the
sweep's own, kept between sweeps); under a ``joblib.parallel_config(...)``
they go through :class:`joblib.Parallel`, which can send them to processes
or to a cluster.
"""

from __future__ import annotations

import numbers
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np
from joblib import Parallel, delayed
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from sklearn.model_selection import KFold, StratifiedKFold

from .. import _native
from .students import StudentTrainer, is_tree_student, leaf_label_indices, set_leaf_beliefs

__all__ = [
    "SCORERS",
    "SELECTIONS",
    "SweepCandidate",
    "SweepResult",
    "ThresholdFit",
    "cv_sweep",
    "fit_at_threshold",
    "holdout_sweep",
    "select_candidate",
    "sweep_thresholds",
]

#: Validation scores a sweep can use.
SCORERS = {"accuracy": accuracy_score, "balanced_accuracy": balanced_accuracy_score}
#: The named selection rules of :func:`select_candidate`.
SELECTIONS = ("best", "one_se")


@dataclass
class SweepCandidate:
    """One threshold the sweep tried.

    Attributes
    ----------
    threshold : float
        The consistency threshold whose allowed labels the student learnt.
    score : float or None
        Its validation score (out of fold for :func:`cv_sweep`); None when
        some fold had no row to learn from (the threshold is then no
        candidate for selection).
    student : fitted classifier or None
        The student of :func:`holdout_sweep` (MEMO's own student for MEMO's
        threshold); None for :func:`cv_sweep`, whose fold students are not
        kept.
    violations : int
        Transfer rows whose prediction is not an allowed label (summed over
        the folds for :func:`cv_sweep`).
    seconds : float
        Seconds its student fits took (summed over the folds).
    n_fits : int
        Student fits made for it: 0 for MEMO's student (scored without a new
        fit), 1 in :func:`holdout_sweep`, the folds fitted in :func:`cv_sweep`.
    """

    threshold: float
    score: float | None
    student: Any
    violations: int
    seconds: float
    n_fits: int

    @property
    def consistent(self) -> bool:
        """True when scored and every prediction is an allowed label."""
        return self.violations == 0 and self.score is not None


@dataclass
class SweepResult:
    """What a sweep found: every threshold tried, in order.

    Attributes
    ----------
    method : {"holdout", "cv"}
        Which sweep made it.
    thresholds : list of float
        The thresholds the sweep was to try, lowest first (MEMO's threshold,
        or the smallest belief value, first).
    candidates : list of SweepCandidate
        The thresholds tried, in the order of ``thresholds``; a time budget
        may have cut the list short.
    n_validation : int
        Labelled rows that scored each candidate (the standard error of
        ``selection="one_se"`` is computed from it).
    n_folds : int or None
        Folds of :func:`cv_sweep` (per partition); None for
        :func:`holdout_sweep`.
    n_repeats : int
        Fold partitions of :func:`cv_sweep` (1 for :func:`holdout_sweep`).
    timed_out : bool
        True when a deadline stopped the sweep before every threshold was
        tried.
    fit_seconds : float
        Wall time during which at least one student fit ran (fits running at
        once count once).
    seconds : float
        Wall time of the whole sweep.
    greater_is_better : bool
        False for scores that are errors (the regressors' RMSE).
    """

    method: str
    thresholds: list
    candidates: list = field(default_factory=list)
    n_validation: int = 0
    n_folds: int | None = None
    n_repeats: int = 1
    timed_out: bool = False
    fit_seconds: float = 0.0
    seconds: float = 0.0
    greater_is_better: bool = True

    @property
    def scored(self) -> list:
        """The candidates that have a score: those selection chooses among."""
        return [c for c in self.candidates if c.score is not None]

    @property
    def n_fits(self) -> int:
        """Student fits the sweep made."""
        return sum(c.n_fits for c in self.candidates)

    def trace(self) -> list:
        """One record per candidate, as in ``CREMBOClassifier.trace_``."""
        stage = "cv" if self.method == "cv" else "sweep"
        return [
            dict(
                stage=stage,
                threshold=c.threshold,
                consistent=c.consistent,
                violations=c.violations,
                rounds=c.n_fits,
                validation_score=c.score,
                fit_seconds=c.seconds,
            )
            for c in self.candidates
        ]


#: A selection rule: a name from ``SELECTIONS`` or a callable that takes the
#: :class:`SweepResult` and returns one of its scored candidates (or its
#: index in ``result.candidates``).
Selection = Union[str, Callable[[SweepResult], Union[SweepCandidate, int]]]


def select_candidate(result: SweepResult, selection: Selection = "best") -> SweepCandidate | None:
    """The candidate of ``result`` that ``selection`` chooses (None when no
    candidate was scored).

    Parameters
    ----------
    result : SweepResult
    selection : {"best", "one_se"} or callable, default="best"
        ``"best"``: the highest score (the lowest when
        ``result.greater_is_better`` is False), ties to the lowest threshold
        (closest to MEMO's deep student). ``"one_se"``: the lowest threshold whose
        score is within one standard error ``sqrt(s (1 - s) / n)`` of the
        best score ``s``, ``n`` being ``result.n_validation``. A callable is
        given ``result`` and returns one of ``result.scored`` (or its index
        in ``result.candidates``).

    Returns
    -------
    SweepCandidate or None
    """
    scored = result.scored
    if not scored:
        return None
    if callable(selection):
        chosen = selection(result)
        if isinstance(chosen, numbers.Integral) and not isinstance(chosen, bool):
            if not -len(result.candidates) <= chosen < len(result.candidates):
                raise ValueError(
                    f"selection: the callable returned index {chosen}, but the sweep has "
                    f"{len(result.candidates)} candidates"
                )
            chosen = result.candidates[chosen]
        if not any(chosen is c for c in scored):
            raise ValueError(
                "selection: the callable must return one of the scored candidates of the "
                f"SweepResult (or its index in result.candidates), got {chosen!r}"
            )
        return chosen
    if selection not in SELECTIONS:
        raise ValueError(f"selection: expected one of {SELECTIONS} or a callable, got {selection!r}")
    sign = 1.0 if result.greater_is_better else -1.0
    best = max(range(len(scored)), key=lambda k: (sign * scored[k].score, -scored[k].threshold))
    if selection == "one_se":
        if not result.greater_is_better:
            raise ValueError("selection='one_se' needs a score in [0, 1] where greater is better (an accuracy)")
        top = scored[best].score
        floor = top - np.sqrt(max(top * (1.0 - top), 0.0) / max(result.n_validation, 1))
        best = min(
            (k for k in range(len(scored)) if scored[k].score >= floor - 1e-12), key=lambda k: scored[k].threshold
        )
    return scored[best]


def distinct_beliefs(P: np.ndarray) -> tuple:
    """(values, counts): the positive entries of ``P``, distinct and sorted,
    and how often each occurs. MEMO's candidates and the sweep's thresholds
    are both read off it, so a fit gathers it once."""
    return _native.distinct_entries(P, 0.0, np.inf)


def sweep_thresholds(
    P: np.ndarray, start: float | None, n_thresholds: int | None, distinct: tuple | None = None
) -> list:
    """The sweep's thresholds: from ``start`` (MEMO's threshold; None: the
    smallest belief value) up, every distinct belief value or a
    quantile-spaced budget of ``n_thresholds`` (as ``candidate_thresholds``
    and ``budgeted_thresholds`` pick them). ``distinct``: P's positive
    entries, distinct and counted (:func:`distinct_beliefs`), when already
    gathered."""
    values, counts = distinct_beliefs(P) if distinct is None else distinct
    # None: from 0, which keeps the same entries (only positive ones count).
    keep = (values >= values.dtype.type(0.0 if start is None else start)) & (values <= 1.0)
    cands = (
        values[keep] if n_thresholds is None else _native.budget_from_counts(values[keep], counts[keep], n_thresholds)
    )
    return [float(t) for t in cands]


@dataclass
class ThresholdFit:
    """One student trained on the allowed labels at a threshold."""

    student: Any
    seconds: float
    violations: int
    pred: np.ndarray


def fit_at_threshold(
    trainer: StudentTrainer,
    X: np.ndarray,
    P: np.ndarray,
    threshold: float,
    prefer: np.ndarray | None = None,
    *,
    leave_out: np.ndarray | None = None,
    sample_weight: np.ndarray | None = None,
    leaf_values: str = "student",
) -> ThresholdFit:
    """Train one student on the allowed labels at ``threshold`` (no
    consistency needed), rows weighted by ``sample_weight``, without the rows
    where ``leave_out`` is true.

    ``prefer`` (label indices) breaks ties among allowed labels;
    ``leaf_values="belief"`` makes the leaves of a tree student predict the
    teacher's mean belief. The violations and predictions are on all of
    ``X``.
    """
    t0 = time.perf_counter()
    if trainer.target == "multioutput":
        mask = _native.allowed_labels(P, threshold)
        if leave_out is not None:
            mask[leave_out] = False
        est = trainer.fit_mask(X, mask, sample_weight)
    else:
        targets, _ = _native.allowed_targets(P, threshold, prefer)
        if leave_out is not None:
            targets[leave_out] = -1
        est = trainer.fit_labels(X, targets, sample_weight)
    pred = None
    if leaf_values == "belief":
        # One walk of X serves the leaf means and the predictions.
        leaves = trainer.apply(est, X) if is_tree_student(est) else None
        est = set_leaf_beliefs(est, X, P, trainer.classes, sample_weight, leaves=leaves)
        if leaves is not None:
            pred = leaf_label_indices(est, leaves, trainer.classes)
    if pred is None:
        pred = trainer.predict_index(est, X)
    viol = int(_native.count_violations(P, pred, threshold))
    return ThresholdFit(est, time.perf_counter() - t0, viol, pred)


def busy_seconds(intervals: Sequence) -> float:
    """Wall time covered by at least one of the (start, end) intervals: the
    time student fits ran, however many ran at once."""
    total, reach = 0.0, -np.inf
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def _past(deadline):
    return deadline is not None and time.time() > deadline


# The sweep's own threads, kept between sweeps: {thread count: executor},
# for the process that made them (a forked child makes its own).
_POOLS: dict = {}
_POOLS_LOCK = threading.Lock()
_IN_POOL = threading.local()


def _forget_pools():
    """In a forked child: the parent's threads (and their lock's state)
    did not come along."""
    global _POOLS_LOCK
    _POOLS.clear()
    _POOLS_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pools)


def _mark_pool_thread():
    _IN_POOL.active = True


def _default_threads(n_jobs):
    """The threads joblib would run the sweep's tasks on with its default
    configuration (``prefer="threads"``, no ``joblib.parallel_config`` in
    effect), or None when a configuration is in effect (a backend of the
    user's choice: processes, Dask, verbose output, ...), when this is one
    of the sweep's own threads (nested sweeps run in the caller), or when
    joblib's internals are not the ones known here."""
    if getattr(_IN_POOL, "active", False):
        return None
    try:
        from joblib import parallel as jp

        if getattr(jp._backend, "config", jp.default_parallel_config) is not jp.default_parallel_config:
            return None
        n = jp.effective_n_jobs(n_jobs)
    except Exception:  # another joblib: its own Parallel decides
        return None
    return n if isinstance(n, numbers.Integral) and n >= 1 else None


def _pool(n):
    """The sweep's executor of ``n`` threads (made on first use)."""
    with _POOLS_LOCK:
        pool = _POOLS.get(n)
        if pool is None:
            pool = ThreadPoolExecutor(n, thread_name_prefix="crembo-sweep", initializer=_mark_pool_thread)
            _POOLS[n] = pool
        return pool


def _run(tasks, n_jobs, on_fit):
    """The tasks' results in order; ``on_fit()`` after each.

    The tasks go through joblib, so that ``joblib.parallel_config`` can send
    them to processes or a cluster; with joblib's default configuration
    they would run on threads of this process, and run on the sweep's own
    threads instead, kept between sweeps: the same results, without
    starting a thread pool per sweep and polling it (15 ms of a 0.1 s sweep
    at 10^5 rows, measured)."""
    n = _default_threads(n_jobs)
    if n is None:
        results = Parallel(n_jobs=n_jobs, prefer="threads", return_as="generator")(tasks)
    elif n == 1:
        results = (fn(*args, **kwargs) for fn, args, kwargs in tasks)
    else:
        results = _pool(n).map(lambda task: task[0](*task[1], **task[2]), list(tasks))
    out = []
    for res in results:
        out.append(res)
        if on_fit is not None:
            on_fit()
    return out


@dataclass
class _Job:
    """What every fit of a sweep shares (sent once per task to workers)."""

    trainer: StudentTrainer
    X: np.ndarray
    P: np.ndarray
    prefer: np.ndarray | None
    sample_weight: np.ndarray | None
    leaf_values: str
    deadline: float | None


def _holdout_task(job, t, X_val, y_val, w_val, scoring, always):
    """One threshold of the holdout sweep: (candidate, start time), or None
    when the deadline passed before it started (unless ``always``)."""
    if not always and _past(job.deadline):
        return None
    start = time.time()
    fit = fit_at_threshold(
        job.trainer, job.X, job.P, t, job.prefer, sample_weight=job.sample_weight, leaf_values=job.leaf_values
    )
    score = _score(scoring, y_val, job.trainer.predict_index(fit.student, X_val), w_val)
    return SweepCandidate(t, score, fit.student, fit.violations, fit.seconds, 1), start


def _score(scoring, y_true, y_pred, weight):
    if scoring == "accuracy":
        return label_accuracy(y_true, y_pred, weight)
    return float(SCORERS[scoring](y_true, y_pred, sample_weight=weight))


def label_accuracy(y_true: np.ndarray, y_pred: np.ndarray, weight: np.ndarray | None = None) -> float:
    """``accuracy_score(y_true, y_pred, sample_weight=weight)`` for two label
    index arrays of one length that the sweep made itself: the same sums in
    the same order, without scikit-learn's target checks (a millisecond a
    call, a dozen calls a fit). Weights summing to zero go to scikit-learn,
    which raises."""
    hit = (np.asarray(y_true) == np.asarray(y_pred)).astype(np.float64)
    if weight is None:
        return float(np.mean(hit))
    w = np.asarray(weight, dtype=np.float64)
    scale = np.sum(w)
    if hit.shape != w.shape or scale == 0.0:
        return float(accuracy_score(y_true, y_pred, sample_weight=weight))
    return float(np.sum(hit * w) / scale)


def holdout_sweep(
    trainer: StudentTrainer,
    X: np.ndarray,
    P: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    thresholds: Sequence[float],
    *,
    memo_student: Any = None,
    memo_threshold: float | None = None,
    prefer: np.ndarray | None = None,
    sample_weight: np.ndarray | None = None,
    validation_weight: np.ndarray | None = None,
    scoring: str = "accuracy",
    leaf_values: str = "student",
    n_jobs: int | None = None,
    deadline: float | None = None,
    on_fit: Callable[[], None] | None = None,
) -> SweepResult:
    """Fit a student at each threshold on the transfer set ``(X, P)`` and
    score it on the validation rows ``(X_val, y_val)`` (``y_val`` as label
    indices).

    Parameters
    ----------
    trainer : StudentTrainer
    X, P : ndarray
        The transfer rows and the teacher's beliefs on them.
    X_val, y_val : ndarray
        The validation rows and their label indices.
    thresholds : sequence of float
        Lowest first (see :func:`sweep_thresholds`).
    memo_student : fitted classifier or None, default=None
        MEMO's student: it stands for ``memo_threshold`` (scored without a
        new fit), and only thresholds above it are fitted.
    memo_threshold : float or None, default=None
    prefer : ndarray or None, default=None
        Label indices that break ties among allowed labels (MEMO's
        predictions).
    sample_weight, validation_weight : ndarray or None, default=None
        Weights of the transfer rows and of the validation rows.
    scoring : {"accuracy", "balanced_accuracy"}, default="accuracy"
    leaf_values : {"student", "belief"}, default="student"
        See :func:`fit_at_threshold`.
    n_jobs : int or None, default=None
        Fits at once, through ``joblib.Parallel`` (threads unless
        ``joblib.parallel_config`` selects another backend).
    deadline : float or None, default=None
        A ``time.time()`` after which no new threshold is started; the first
        one is always tried.
    on_fit : callable or None, default=None
        Called after each threshold (progress bars).

    Returns
    -------
    SweepResult
    """
    start = time.perf_counter()
    thresholds = [float(t) for t in thresholds]
    result = SweepResult("holdout", thresholds, n_validation=len(y_val))
    todo = thresholds
    if memo_student is not None:
        pred = trainer.predict_index(memo_student, X_val)
        score = _score(scoring, y_val, pred, validation_weight)
        result.candidates.append(SweepCandidate(float(memo_threshold), score, memo_student, 0, 0.0, 0))
        todo = [t for t in thresholds if t > memo_threshold]
    job = _Job(trainer, X, P, prefer, sample_weight, leaf_values, deadline)
    first_always = memo_student is None
    tasks = (
        delayed(_holdout_task)(job, t, X_val, y_val, validation_weight, scoring, first_always and i == 0)
        for i, t in enumerate(todo)
    )
    outs = _run(tasks, n_jobs, on_fit)
    result.timed_out = any(o is None for o in outs)
    done = [o for o in outs if o is not None]
    result.candidates += [cand for cand, _ in done]
    result.fit_seconds = busy_seconds([(t0, t0 + cand.seconds) for cand, t0 in done])
    result.seconds = time.perf_counter() - start
    return result


@dataclass
class _FoldFit:
    """One fold's student at one threshold of the cross-validated sweep."""

    pred: np.ndarray | None  # its predictions on the left-out fold; None: nothing to learn from
    seconds: float = 0.0
    violations: int = 0
    start: float | None = None


def _cv_task(job, t, fold, row_max, always):
    if not always and _past(job.deadline):
        return None
    leave_out = np.zeros(len(job.X), dtype=bool)
    leave_out[fold] = True
    if not np.any(row_max[~leave_out] >= t):
        return _FoldFit(None)  # the teacher is this sure only on the left-out fold: no student
    start = time.time()
    fit = fit_at_threshold(
        job.trainer,
        job.X,
        job.P,
        t,
        job.prefer,
        leave_out=leave_out,
        sample_weight=job.sample_weight,
        leaf_values=job.leaf_values,
    )
    return _FoldFit(fit.pred[fold], fit.seconds, fit.violations, start)


def cv_sweep(
    trainer: StudentTrainer,
    X: np.ndarray,
    P: np.ndarray,
    labelled: np.ndarray,
    y_labelled: np.ndarray,
    thresholds: Sequence[float],
    *,
    n_folds: int,
    n_repeats: int = 1,
    prefer: np.ndarray | None = None,
    sample_weight: np.ndarray | None = None,
    labelled_weight: np.ndarray | None = None,
    scoring: str = "accuracy",
    leaf_values: str = "student",
    random_state: int | None = None,
    n_jobs: int | None = None,
    deadline: float | None = None,
    on_fit: Callable[[], None] | None = None,
) -> SweepResult:
    """Score each threshold by ``n_folds``-fold cross-validation over the
    labelled rows of the transfer set.

    At each threshold, ``n_folds`` students, each fit on ``(X, P)`` without
    one fold of the labelled rows, predict that fold; the out-of-fold
    predictions give the threshold's score. Folds are stratified when every
    class has ``n_folds`` members.

    Parameters
    ----------
    trainer : StudentTrainer
    X, P : ndarray
        The transfer rows and the teacher's beliefs on them.
    labelled : ndarray of int
        Positions in ``X`` of the labelled rows.
    y_labelled : ndarray of int
        Their label indices.
    thresholds : sequence of float
        Lowest first (see :func:`sweep_thresholds`).
    n_folds : int
    n_repeats : int, default=1
        Fold partitions: the cross-validation is repeated on ``n_repeats``
        partitions of the labelled rows (seeded ``random_state``,
        ``random_state + 1``, ...), and each threshold is scored on the
        out-of-fold predictions of all of them (every labelled row
        ``n_repeats`` times). Steadier scores at ``n_repeats`` times the fits.
    prefer : ndarray or None, default=None
        Label indices that break ties among allowed labels.
    sample_weight : ndarray or None, default=None
        Weights of the rows of ``X``.
    labelled_weight : ndarray or None, default=None
        Weights of the labelled rows in the score.
    scoring : {"accuracy", "balanced_accuracy"}, default="accuracy"
    leaf_values : {"student", "belief"}, default="student"
    random_state : int or None, default=None
        Seeds the folds (partition r: ``random_state + r``).
    n_jobs, deadline, on_fit
        As in :func:`holdout_sweep` (``on_fit`` is called after each fold's
        fit); the first threshold's folds are always fitted.

    Returns
    -------
    SweepResult
        Candidates without students; a threshold at which some fold had no
        row to learn from is a candidate without a score.
    """
    start = time.perf_counter()
    if len(labelled) < n_folds:
        raise ValueError(f"cv={n_folds}: only {len(labelled)} labelled rows to split into folds")
    if isinstance(n_repeats, bool) or not isinstance(n_repeats, numbers.Integral) or n_repeats < 1:
        raise ValueError(f"cv_repeats: expected an integer >= 1, got {n_repeats!r}")
    _, counts = np.unique(y_labelled, return_counts=True)
    kind = StratifiedKFold if counts.min() >= n_folds else KFold
    folds = []
    for r in range(n_repeats):
        seed = None if random_state is None else random_state + r
        splitter = kind(n_folds, shuffle=True, random_state=seed)
        folds += [labelled[val] for _, val in splitter.split(labelled, y_labelled)]
    n_parts = len(folds)
    truth = np.empty(len(X), dtype=np.int64)
    truth[labelled] = y_labelled
    truth = np.concatenate([truth[f] for f in folds])
    score_weight = None
    if labelled_weight is not None:
        w_rows = np.zeros(len(X))
        w_rows[labelled] = labelled_weight
        score_weight = np.concatenate([w_rows[f] for f in folds])
    thresholds = [float(t) for t in thresholds]
    row_max = _native.row_argmax(P)[1]  # P.max(axis=1), natively
    job = _Job(trainer, X, P, prefer, sample_weight, leaf_values, deadline)
    tasks = (
        delayed(_cv_task)(job, t, folds[k], row_max, i == 0) for i, t in enumerate(thresholds) for k in range(n_parts)
    )
    outs = _run(tasks, n_jobs, on_fit)
    result = SweepResult("cv", thresholds, n_validation=len(labelled), n_folds=n_folds, n_repeats=n_repeats)
    for i, t in enumerate(thresholds):
        part = outs[i * n_parts : (i + 1) * n_parts]
        if any(p is None for p in part):
            result.timed_out = True
            continue
        fitted = sum(p.pred is not None for p in part)
        score = None
        if fitted == n_parts:  # else some fold had no row to learn from: not a candidate
            pred = np.concatenate([p.pred for p in part])
            score = _score(scoring, truth, pred, score_weight)
        secs, viol = float(sum(p.seconds for p in part)), int(sum(p.violations for p in part))
        result.candidates.append(SweepCandidate(t, score, None, viol, secs, fitted))
    result.fit_seconds = busy_seconds(
        [(p.start, p.start + p.seconds) for p in outs if p is not None and p.start is not None]
    )
    result.seconds = time.perf_counter() - start
    return result
