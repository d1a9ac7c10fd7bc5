"""MEMO: the deepest student that a consistency oracle can find.

Binary search over the candidate thresholds (the distinct belief values up to
the achievable depth); at each threshold the oracle tries to train a student
whose every prediction is an allowed label. The search, the reweighting loop
and its bookkeeping run in the native core; the student fit is a Python
callback (``StudentTrainer``). The algorithm, its oracles, warm start and
adaptive eta: ``docs/ALGORITHMS.md``, section 2.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.tree import DecisionTreeClassifier

from .. import _native
from .._validation import BOOLEAN, MAX_INT, POSITIVE, Interval, Options, as_beliefs, seed_from, validate_params
from .students import TARGET_MODES, StudentTrainer
from .sweep import distinct_beliefs

__all__ = ["memo", "MemoResult", "default_student", "ORACLES"]

log = logging.getLogger("crembo")

ORACLES = ("reweight", "single")
SEARCHES = ("binary", "gallop")

#: MEMO's parameters, declared once for :func:`memo` and the estimators that
#: run it (see :mod:`crembo._validation`).
MEMO_PARAMETERS = {
    "oracle": [Options(*ORACLES)],
    "student_target": [Options(*TARGET_MODES)],
    "max_rounds": [Interval("integer", 1, MAX_INT)],
    "eta": [POSITIVE],
    "delta": [Interval("real", 0.0, 1.0, closed="left")],
    "patience": [Interval("integer", 0, MAX_INT)],
    "probe_lowest": BOOLEAN,
    "warm_start": BOOLEAN,
    "adaptive_eta": BOOLEAN,
    "search": [Options(*SEARCHES)],
}


def default_student(random_state: int | None = None) -> DecisionTreeClassifier:
    """The reference student: a depth-4 decision tree with balanced class weights."""
    return DecisionTreeClassifier(max_depth=4, class_weight="balanced", random_state=random_state)


@dataclass
class MemoResult:
    """What MEMO found.

    Attributes
    ----------
    student : fitted estimator or None
        The deepest consistent student; None when the oracle succeeded at no
        threshold.
    threshold : float or None
        Its consistency threshold ``t_memo`` (a lower bound of its depth).
    depth : float or None
        The student's empirical depth on the transfer set.
    pred : ndarray of int or None
        The student's label indices on the transfer set.
    candidates : ndarray
        The thresholds searched.
    trace : list of dict
        One record per probed threshold: threshold, consistent, violations,
        rounds (fits made there) and fit_seconds.
    n_fits : int
        Student fits made in total.
    """

    student: object
    threshold: float | None
    depth: float | None
    pred: np.ndarray | None
    candidates: np.ndarray
    trace: list = field(default_factory=list)
    n_fits: int = 0
    fit_seconds: float = 0.0
    seconds: float = 0.0


def hopeless_rule(n: int, max_rounds: int) -> tuple[int, int]:
    """When the feasibility probe (``probe_lowest``'s first) gives up as
    hopeless: (the round index from which the rule applies, the violations
    it must exceed), as the native search does (``core.hpp``)."""
    return max(2, max_rounds // 4 - 1), max(int(_native.HOPELESS_MIN), int(_native.HOPELESS_SHARE * n))


def _memo_ceiling(P, delta):
    """Largest threshold at which a (delta-insensitive) consistent student can exist."""
    row_max = _native.row_argmax(P)[1]  # P.max(axis=1), natively (0.5 ms against 3.6 at 85,000 x 10)
    k = min(int(np.floor(delta * P.shape[0])), P.shape[0] - 1)
    return float(row_max.min() if k == 0 else np.partition(row_max, k)[k])


def check_oracle(oracle: str, trainer: StudentTrainer) -> None:
    """Raise unless the trainer's student can serve ``oracle``: the single
    fit needs the multi-output target, reweighting needs ``sample_weight``."""
    if oracle == "single" and trainer.target != "multioutput":
        raise ValueError("oracle='single' trains on the allowed-label matrix and needs student_target='multioutput'")
    if oracle == "reweight" and not trainer.accepts_weights:
        raise TypeError(
            f"student: {type(trainer.template).__name__}.fit does not accept sample_weight, which the "
            "reweighting oracle needs; use oracle='single' with a multi-output student (e.g. a "
            "decision tree)"
        )


def run_memo(
    X: np.ndarray,
    P: np.ndarray,
    trainer: StudentTrainer,
    *,
    oracle: str = "reweight",
    max_rounds: int = 8,
    eta: float = 1.0,
    delta: float = 0.0,
    patience: int = 0,
    candidates: np.ndarray | None = None,
    sample_weight: np.ndarray | None = None,
    probe_lowest: bool = True,
    warm_start: bool = True,
    adaptive_eta: bool = True,
    search: str = "binary",
    on_fit: Callable[[], None] | None = None,
    distinct: tuple | None = None,
) -> MemoResult:
    """MEMO with an existing ``StudentTrainer`` (used by the estimators);
    ``on_fit()`` is called after every student fit (progress bars).
    ``distinct``: P's positive entries, distinct and counted
    (:func:`~crembo.compress.sweep.distinct_beliefs`), when already gathered."""
    start = time.perf_counter()
    if candidates is None:  # candidate_thresholds(P, 0, ceiling): P's positive entries up to the ceiling
        values = (distinct_beliefs(P) if distinct is None else distinct)[0]
        candidates = values[values <= values.dtype.type(_memo_ceiling(P, delta))]
    candidates = np.ascontiguousarray(candidates, dtype=P.dtype)
    state = {"last": None, "best": None}
    fit_times = []

    def timed(fit):
        t0 = time.perf_counter()
        est = fit()
        pred = trainer.predict_index(est, X)
        fit_times.append(time.perf_counter() - t0)
        state["last"] = est
        if on_fit is not None:
            on_fit()
        return pred

    def fit_labels(targets, weights):
        return timed(lambda: trainer.fit_labels(X, targets, weights))

    def fit_mask(mask):
        return timed(lambda: trainer.fit_mask(X, mask, sample_weight))

    def accept():
        state["best"] = state["last"]

    res = _native.memo_search(
        P,
        candidates,
        fit_labels=fit_labels if oracle == "reweight" else None,
        fit_mask=fit_mask if oracle == "single" else None,
        accept=accept,
        oracle=oracle,
        max_rounds=max_rounds,
        eta=eta,
        delta=delta,
        patience=patience,
        sample_weight=sample_weight,
        probe_lowest=probe_lowest,
        warm_start=warm_start,
        adaptive_eta=adaptive_eta,
        search=search,
    )
    trace, k = [], 0
    for rec in res["trace"]:
        rec = dict(rec)
        rec["fit_seconds"] = float(sum(fit_times[k : k + rec["rounds"]]))
        k += rec["rounds"]
        trace.append(rec)
    found = res["best_threshold"] is not None
    pred = res["best_pred"] if found else None
    result = MemoResult(
        student=state["best"] if found else None,
        threshold=res["best_threshold"],
        depth=float(_native.empirical_depth(P, pred, 0.0)) if found else None,
        pred=pred,
        candidates=candidates,
        trace=trace,
        n_fits=int(res["n_fits"]),
        fit_seconds=float(sum(fit_times)),
        seconds=time.perf_counter() - start,
    )
    log.info(
        "MEMO: %d thresholds searched, %d fits, threshold %s, depth %s",
        len(trace),
        result.n_fits,
        result.threshold,
        result.depth,
    )
    return result


def memo(
    X: ArrayLike,
    beliefs: ArrayLike,
    student: Any = None,
    *,
    classes: ArrayLike | None = None,
    oracle: str = "reweight",
    student_target: str = "auto",
    max_rounds: int = 8,
    eta: float = 1.0,
    delta: float = 0.0,
    patience: int = 0,
    candidates: ArrayLike | None = None,
    sample_weight: ArrayLike | None = None,
    normalize: bool = False,
    random_state: Any = None,
    probe_lowest: bool = True,
    warm_start: bool = True,
    adaptive_eta: bool = True,
    search: str = "binary",
) -> MemoResult:
    """Find a deep student: MEMO (Multiclass Empirical Median Optimization).

    Parameters
    ----------
    X : array-like of shape (n, d)
        The transfer set.
    beliefs : array-like of shape (n, C)
        The teacher's belief ``p(y|x)`` on ``X`` (see ``teacher_beliefs``).
    student : scikit-learn classifier, optional
        Cloned, never modified. Default: depth-4 tree, balanced classes.
    classes : array-like of shape (C,), optional
        Labels of the belief columns; default ``0..C-1``. The fitted student
        predicts these labels.
    oracle : {"reweight", "single"}, default="reweight"
        ``"reweight"``: rounds of weighted fits that up-weight violating points
        (needs ``sample_weight`` support); ``"single"``: the paper's single
        multi-output fit on the allowed-label matrix.
    student_target : {"auto", "labels", "multioutput"}
        How the student learns allowed labels; "auto" picks "multioutput" for
        the single-fit oracle and "labels" otherwise.
    max_rounds : int, default=8
        Reweighting rounds per threshold.
    eta : float, default=1.0
        Violating points' weights grow by ``1 + eta`` per round.
    delta : float in [0, 1), default=0
        Tolerated fraction of violations (delta-insensitive consistency).
    patience : int, default=0
        Give a threshold up after this many rounds without fewer violations
        than its best round so far (0: always run ``max_rounds`` rounds). A
        speed option: on the paper's data sets 2 reached the same threshold as
        0 in 7 of 8 cases with about a third fewer fits, but it can stop short
        of the deepest threshold.
    candidates : array-like, optional
        Sorted thresholds to search; default every distinct belief value up to
        the achievable depth.
    sample_weight : array-like of shape (n,), optional
        Starting weights of the reweighting oracle.
    random_state : int or None
        Seed given to students whose ``random_state`` is None.
    probe_lowest : bool, default=True
        Probe the smallest candidate first and stop at once when it fails
        (consistency is monotone in the threshold, so nothing above it can
        pass): one probe instead of ``log2(len(candidates))`` when no
        threshold is consistent, one extra probe otherwise. With the
        reweighting oracle this first probe gives up as hopeless when, from
        its third round and a quarter of ``max_rounds`` on, a round leaves
        more than 5% of the points and more than 100 points in violation and
        no fewer than its first round did (``hopeless_rule``; on 10^5 rows
        of ten classes that saves five of its eight fits). ``False`` runs
        the paper's plain binary search.
    warm_start : bool, default=True
        Each probe of the search starts from the weights the previous probe
        ended with, so the points that were hard at one threshold start heavy
        at the next instead of being found again from scratch. ``False``:
        every probe starts from ``sample_weight`` (or equal weights).
    adaptive_eta : bool, default=True
        While a reweighting round leaves no fewer violations than the round
        before, the growth of violating points compounds (``1 + eta``, then
        ``(1 + eta)^2``, ...), falling back to ``1 + eta`` once the
        violations drop. ``False``: a fixed growth of ``1 + eta``.
        Together with ``warm_start`` this lets the default ``max_rounds=8``
        reach the thresholds a 30-round search finds (see
        ``docs/defaults_study.md``).
    search : {"binary", "gallop"}, default="binary"
        How the thresholds are searched. ``"binary"``: the paper's binary
        search (with ``probe_lowest``). ``"gallop"``: from the smallest
        candidate up; every consistent student certifies the deepest
        threshold it reaches (its smallest belief, which may lie well above
        the threshold it was fit for), and the next probe lies 1, 2, 4, ...
        candidates above that, bisecting back after a failure
        (``probe_lowest`` has no effect: the smallest is always probed
        first). On the paper's forest beliefs with the depth-4 tree it
        reached the 30-round threshold on iris in 8-9 fits instead of 14-17
        and the synthetic set's in 17 instead of 32, and went deeper than
        ``"binary"`` on breast cancer (0.17-0.20 against 0.17) at about the
        same fits (``bench/memo_variants.py``; ``docs/defaults_study.md``).

    Returns
    -------
    MemoResult
    """
    validate_params(
        dict(
            oracle=oracle,
            student_target=student_target,
            max_rounds=max_rounds,
            eta=eta,
            delta=delta,
            patience=patience,
            probe_lowest=probe_lowest,
            warm_start=warm_start,
            adaptive_eta=adaptive_eta,
            search=search,
        ),
        MEMO_PARAMETERS,
    )
    max_rounds, patience, delta, eta = int(max_rounds), int(patience), float(delta), float(eta)
    P = as_beliefs(beliefs, normalize=normalize)
    if hasattr(X, "to_numpy"):
        X = X.to_numpy()
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] != P.shape[0]:
        raise ValueError(f"X: expected {P.shape[0]} rows (one per row of beliefs), got shape {X.shape}")
    if classes is None:
        classes = np.arange(P.shape[1])
    classes = np.asarray(classes)
    if classes.shape != (P.shape[1],):
        raise ValueError(f"classes: expected {P.shape[1]} labels (one per belief column), got {classes.shape}")
    if np.any(classes[1:] <= classes[:-1]):
        raise ValueError("classes: expected sorted, distinct labels")
    student = default_student() if student is None else student
    if student_target == "auto":
        student_target = "multioutput" if oracle == "single" else "labels"
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight)
        if sample_weight.dtype.kind not in "biuf":
            raise TypeError(f"sample_weight: expected real numbers, got an array of dtype {sample_weight.dtype}")
        sample_weight = np.ascontiguousarray(sample_weight, dtype=np.float64)
        if sample_weight.shape != (P.shape[0],) or not np.all(np.isfinite(sample_weight)) or np.any(sample_weight < 0):
            raise ValueError(f"sample_weight: expected {P.shape[0]} finite, non-negative weights")
        if not np.any(sample_weight > 0):
            raise ValueError("sample_weight: every weight is zero; expected at least one positive weight")
    trainer = StudentTrainer(student, classes, target=student_target, seed=seed_from(random_state))
    check_oracle(oracle, trainer)
    if candidates is not None:
        candidates = np.asarray(candidates, dtype=np.float64)
        if (
            candidates.ndim != 1
            or not np.all(np.isfinite(candidates))
            or np.any(candidates <= 0)
            or np.any(np.diff(candidates) <= 0)
        ):
            raise ValueError("candidates: expected a 1-d array of positive, strictly increasing thresholds")
    return run_memo(
        X,
        P,
        trainer,
        oracle=oracle,
        max_rounds=max_rounds,
        eta=eta,
        delta=delta,
        patience=patience,
        candidates=candidates,
        sample_weight=sample_weight,
        probe_lowest=bool(probe_lowest),
        warm_start=bool(warm_start),
        adaptive_eta=bool(adaptive_eta),
        search=search,
    )
