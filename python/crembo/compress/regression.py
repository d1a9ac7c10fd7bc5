"""Deep hypotheses for regression: ``CREMBORegressor`` and ``LabelDistillerRegressor``.

The belief at ``x`` is the distribution of the teacher's sampled hypotheses'
predictions there (a forest's trees, a bagging ensemble's members, a
bootstrap ensemble of a boosted model, or a user-given ``(n, m)`` matrix).
A student's depth at ``x`` is Tukey's depth of its prediction in that
distribution, ``min(F(h(x)), 1 - F(h(x)))`` with closed half-lines; the
allowed set at level ``t`` in ``(0, 1/2]`` is the central interval of the
member predictions whose depth is at least ``t``. MEMO finds the largest
level at which a student stays inside every interval; CREMBO sweeps levels
from there up to the median and keeps the one that scores best on held-out
data. The full specification is ``docs/regression.md``; the kernels and the
MEMO loop are native (``cpp/src/regression.cpp``).
"""

from __future__ import annotations

import logging
import numbers
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.ensemble import (
    BaggingRegressor,
    ExtraTreesRegressor,
    GradientBoostingRegressor,
    HistGradientBoostingRegressor,
    RandomForestRegressor,
)
from sklearn.metrics import mean_squared_error, r2_score
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeRegressor
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, has_fit_parameter, validate_data

from .. import _native
from .._validation import (
    BOOLEAN,
    MAX_INT,
    N_JOBS,
    Interval,
    Options,
    ParamsValidationMixin,
    _DistillerDataMixin,
    check_device,
    check_fraction,
    check_param,
    is_fitted,
    seed_from,
    seeded_clone,
    validate_params,
)
from .sweep import SweepCandidate, SweepResult, busy_seconds, select_candidate
from .memo import MEMO_PARAMETERS

__all__ = [
    "CREMBORegressor",
    "LabelDistillerRegressor",
    "RegressionMemoResult",
    "default_regression_student",
    "default_regression_teacher",
    "hypothesis_predictions",
    "hypothesis_levels",
    "hypothesis_intervals",
    "regression_depth",
    "regression_point_depth",
    "regression_violations",
    "regression_memo",
    "regression_agreement",
]

log = logging.getLogger("crembo")

#: Default tolerance of depth comparisons, relative to a row's largest
#: magnitude (docs/regression.md, "Ties and roundoff").
DEFAULT_TOL = 1e-9

SCORING = ("rmse", "r2")
HYPOTHESES = ("auto", "members", "bootstrap")


def default_regression_student(random_state: int | None = None) -> DecisionTreeRegressor:
    """The reference student: a depth-4 regression tree."""
    return DecisionTreeRegressor(max_depth=4, random_state=random_state)


def default_regression_teacher(random_state: int | None = None) -> RandomForestRegressor:
    """The reference teacher: 100 regression trees with at least 5 rows per leaf."""
    return RandomForestRegressor(n_estimators=100, min_samples_leaf=5, random_state=random_state)


# ------------------------------------------------------------------ hypotheses
_MEMBER_ENSEMBLES = (RandomForestRegressor, ExtraTreesRegressor, BaggingRegressor)
_BOOSTING = (GradientBoostingRegressor, HistGradientBoostingRegressor)


def _no_hypotheses_error(teacher):
    return TypeError(
        f"teacher: {type(teacher).__name__} has no sampled hypotheses; expected a RandomForestRegressor, "
        "ExtraTreesRegressor or BaggingRegressor (their members are the hypotheses), a gradient-boosting "
        "regressor (bagged into a bootstrap ensemble; or pass hypotheses='bootstrap' for any regressor), "
        "or an (n_samples, n_hypotheses) array of hypothesis predictions"
    )


def hypothesis_predictions(teacher: Any, X: ArrayLike, *, n_jobs: int | None = None) -> np.ndarray:
    """Predictions of a fitted ensemble's members: an ``(n, m)`` float64 array.

    Parameters
    ----------
    teacher : fitted RandomForestRegressor, ExtraTreesRegressor or BaggingRegressor
        (a bagged boosting model is a BaggingRegressor too).
    X : array-like of shape (n, d)
    n_jobs : int or None
        Threads over members.
    """
    if not isinstance(teacher, _MEMBER_ENSEMBLES):
        raise _no_hypotheses_error(teacher)
    check_is_fitted(teacher)
    if hasattr(X, "to_numpy"):
        X = X.to_numpy()
    X = np.asarray(X)
    if isinstance(teacher, BaggingRegressor):
        feats = teacher.estimators_features_
        jobs = [(est, f) for est, f in zip(teacher.estimators_, feats)]

        def one(est, f):
            return np.asarray(est.predict(X[:, f]), dtype=np.float64)
    else:
        X32 = np.ascontiguousarray(X, dtype=np.float32)  # what forest trees compare
        jobs = [(est, None) for est in teacher.estimators_]

        def one(est, f):
            return np.asarray(est.predict(X32, check_input=False), dtype=np.float64).reshape(-1)

    cols = Parallel(n_jobs=n_jobs, prefer="threads")(delayed(one)(e, f) for e, f in jobs)
    return np.ascontiguousarray(np.column_stack(cols), dtype=np.float64)


def _as_hypotheses(H, name="hypotheses"):
    if hasattr(H, "to_numpy"):
        H = H.to_numpy()
    arr = np.asarray(H)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected a numeric (n_samples, n_hypotheses) array, got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name}: expected a non-empty 2-d array (n_samples, n_hypotheses), got shape {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        i, j = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(f"{name}: entry [{i}, {j}] is not finite (NaN or inf)")
    return arr


def _check_level(t, name="t"):
    if isinstance(t, bool) or not isinstance(t, numbers.Real) or not np.isfinite(t):
        raise TypeError(f"{name}: expected a real level in (0, 1/2], got {t!r}")
    if not 0.0 < t <= 0.5:
        raise ValueError(f"{name}: expected a level in (0, 1/2], got {t!r}")
    return float(t)


#: Relative tolerance of interval comparisons.
TOL = [Interval("real", 0.0, np.inf, closed="left", desc="a finite, non-negative tolerance")]


def _check_tol(tol):
    return float(check_param(tol, "tol", TOL))


def hypothesis_levels(m: int, lo: float = 0.0, hi: float = 0.5) -> np.ndarray:
    """The distinct levels of ``m`` hypotheses, ``min(c/m, 1/2)`` for
    ``c = 1..ceil(m/2)``, that lie in ``[lo, hi]`` (every other level gives
    the same interval as the next one of these)."""
    c = np.arange(1, (int(m) + 1) // 2 + 1, dtype=np.float64)
    levels = np.minimum(c / float(m), 0.5)
    return levels[(levels >= lo) & (levels <= hi)]


def hypothesis_intervals(hypotheses: ArrayLike, t: float) -> np.ndarray:
    """``(lo, hi)``: the allowed intervals at level ``t`` of an ``(n, m)`` hypothesis matrix."""
    S = _native.sort_hypotheses(_as_hypotheses(hypotheses))
    return _native.hypothesis_intervals(S, _check_level(t))


def _kernel(name, device):
    """The CPU kernel ``name`` or, for device="cuda", its CUDA twin."""
    return _native.kernel(name, check_device(device))


def regression_point_depth(
    hypotheses: ArrayLike, pred: ArrayLike, *, tol: float = DEFAULT_TOL, device: str = "auto"
) -> np.ndarray:
    """Tukey depth of ``pred[i]`` among the members' predictions at each point
    (``device="cuda"``: the CUDA twin, same values)."""
    H = _as_hypotheses(hypotheses)
    pred = _as_pred(pred, H.shape[0])
    return _kernel("hypothesis_point_depth", device)(H, pred, _check_tol(tol))


def regression_depth(
    hypotheses: ArrayLike, pred: ArrayLike, *, delta: float = 0.0, tol: float = DEFAULT_TOL, device: str = "auto"
) -> float:
    """Empirical depth of a student: the ``floor(delta n)+1``-th smallest point depth."""
    H = _as_hypotheses(hypotheses)
    pred = _as_pred(pred, H.shape[0])
    fn = _kernel("hypothesis_empirical_depth", device)
    return float(fn(H, pred, _check_tol(tol), check_fraction(delta, "delta")))


def regression_violations(
    hypotheses: ArrayLike, pred: ArrayLike, t: float, *, tol: float = DEFAULT_TOL, device: str = "auto"
) -> int:
    """Number of points whose prediction lies outside the allowed interval at level ``t``."""
    H = _as_hypotheses(hypotheses)
    pred = _as_pred(pred, H.shape[0])
    S = _native.sort_hypotheses(H)
    return int(_kernel("hypothesis_violations", device)(S, pred, _check_level(t), _check_tol(tol)))


def _as_pred(pred, n, name="pred"):
    pred = np.ascontiguousarray(pred, dtype=np.float64).reshape(-1) if np.ndim(pred) <= 2 else None
    if pred is None or pred.shape != (n,):
        raise ValueError(f"{name}: expected {n} predictions")
    if not np.all(np.isfinite(pred)):
        raise ValueError(f"{name}: predictions must be finite")
    return pred


def regression_agreement(predictions: ArrayLike, y_reference: ArrayLike) -> tuple[float, float]:
    """Agreement of students trained on different folds, on one test split.

    ``predictions``: (k, n) predictions of k students on the same n points.
    Returns ``(r2, nmad)``: the mean over pairs ``a < b`` of
    ``1 - mean((f_a - f_b)^2) / var(y_reference)`` (pairwise R^2, 1 for
    identical students) and of ``mean|f_a - f_b| / mean|y_reference -
    mean(y_reference)|`` (normalised mean absolute difference, 0 for
    identical students).
    """
    P = np.asarray(predictions, dtype=np.float64)
    y = np.asarray(y_reference, dtype=np.float64)
    if P.ndim != 2 or P.shape[0] < 2 or P.shape[1] != y.shape[0]:
        raise ValueError("predictions: expected a (k >= 2, n) array matching y_reference")
    var = float(np.var(y))
    mad = float(np.mean(np.abs(y - y.mean())))
    if var <= 0 or mad <= 0:
        raise ValueError("y_reference: expected targets that are not all equal")
    r2, nm = [], []
    for a in range(len(P)):
        for b in range(a + 1, len(P)):
            d = P[a] - P[b]
            r2.append(1.0 - float(np.mean(d * d)) / var)
            nm.append(float(np.mean(np.abs(d))) / mad)
    return float(np.mean(r2)), float(np.mean(nm))


# ------------------------------------------------------------------ students
class _RegressionTrainer:
    """Clones and fits the student on real-valued targets (with weights)."""

    def __init__(self, template, seed):
        from ..trees.hist_regression import HistTreeRegressor

        if not (hasattr(template, "fit") and hasattr(template, "predict")):
            raise TypeError(f"student: expected a scikit-learn regressor, got {type(template).__name__}")
        self.template = template
        self.seed = seed
        self.accepts_weights = has_fit_parameter(template, "sample_weight")
        # The native tree learns intervals directly and reuses X's bins.
        self.native = isinstance(template, HistTreeRegressor)
        self._bins = {}

    def _input(self, est, X):
        if not self.native:
            return X
        key = (id(X), X.shape)
        hit = self._bins.get(key)
        if hit is None or hit[0] is not X:
            hit = self._bins[key] = (X, est.bin_data(X))
        return hit[1]

    def fit(self, X: ArrayLike, targets: ArrayLike, weights: ArrayLike | None = None) -> Any:
        est = seeded_clone(self.template, self.seed)
        Xb = self._input(est, X)
        if weights is None:
            return est.fit(Xb, targets)
        return est.fit(Xb, targets, sample_weight=weights)

    def fit_intervals(self, X: ArrayLike, lo: ArrayLike, hi: ArrayLike) -> Any:
        est = seeded_clone(self.template, self.seed)
        return est.fit_intervals(self._input(est, X), lo, hi)

    @staticmethod
    def predict(est: Any, X: ArrayLike) -> np.ndarray:
        return np.ascontiguousarray(est.predict(X), dtype=np.float64).reshape(-1)


@dataclass
class RegressionMemoResult:
    """What regression MEMO found (see :func:`regression_memo`)."""

    student: object
    level: float | None
    depth: float | None
    pred: np.ndarray | None
    candidates: np.ndarray
    trace: list = field(default_factory=list)
    n_fits: int = 0
    seconds: float = 0.0
    fallback_student: object = None
    fallback_pred: np.ndarray | None = None


def _run_memo(
    X, S, H, trainer, *, max_rounds, eta, delta, patience, tol, candidates=None, sample_weight=None, probe_lowest=True
):
    start = time.perf_counter()
    if not trainer.accepts_weights:
        raise TypeError(
            f"student: {type(trainer.template).__name__}.fit does not accept sample_weight, which "
            "the reweighting oracle of MEMO needs"
        )
    if candidates is None:
        candidates = hypothesis_levels(S.shape[1])
    candidates = np.ascontiguousarray(candidates, dtype=np.float64)
    state = {"last": None, "best": None}

    def fit(targets, weights):
        est = trainer.fit(X, targets, weights)
        state["last"] = est
        return trainer.predict(est, X)

    def accept():
        state["best"] = state["last"]

    res = _native.regression_memo_search(
        S,
        candidates,
        fit,
        accept,
        tol=tol,
        max_rounds=max_rounds,
        eta=eta,
        delta=delta,
        patience=patience,
        sample_weight=sample_weight,
        probe_lowest=probe_lowest,
    )
    found = res["best_level"] is not None
    pred = res["best_pred"] if found else None
    out = RegressionMemoResult(
        student=state["best"] if found else None,
        level=res["best_level"],
        depth=float(_native.hypothesis_empirical_depth(H, pred, tol, delta)) if found else None,
        pred=pred,
        candidates=candidates,
        trace=[dict(r) for r in res["trace"]],
        n_fits=int(res["n_fits"]),
        seconds=time.perf_counter() - start,
    )
    if not found and state["last"] is not None:
        # No level was reached: the oracle's last (reweighted) student still
        # guides CREMBO's targets, rather than the bare medians.
        out.fallback_student = state["last"]
        out.fallback_pred = trainer.predict(state["last"], X)
    log.info(
        "regression MEMO: %d levels probed, %d fits, level %s, depth %s",
        len(out.trace),
        out.n_fits,
        out.level,
        out.depth,
    )
    return out


#: Regression MEMO's parameters: classification MEMO's reweighting
#: parameters and the tolerance of interval comparisons.
REGRESSION_MEMO_PARAMETERS = {
    **{k: MEMO_PARAMETERS[k] for k in ("max_rounds", "eta", "delta", "patience", "probe_lowest")},
    "tol": TOL,
}


def regression_memo(
    X: ArrayLike,
    hypotheses: ArrayLike,
    student: Any = None,
    *,
    max_rounds: int = 8,
    eta: float = 1.0,
    delta: float = 0.0,
    patience: int = 0,
    tol: float = DEFAULT_TOL,
    candidates: ArrayLike | None = None,
    sample_weight: ArrayLike | None = None,
    random_state: Any = None,
    probe_lowest: bool = True,
) -> RegressionMemoResult:
    """MEMO for regression: the deepest student a reweighting oracle finds.

    Parameters
    ----------
    X : array-like of shape (n, d)
        The transfer set.
    hypotheses : array-like of shape (n, m)
        Predictions of m sampled hypotheses of the teacher at the rows of X.
    student : scikit-learn regressor accepting ``sample_weight``; default a depth-4 tree.
    max_rounds, eta, delta, patience, probe_lowest :
        As in :func:`crembo.compress.memo` (reweighting rounds per level, weight growth
        ``1 + eta`` of violators, tolerated fraction of violations, early stop
        of a level, probe the lowest level first).
    tol : float, default=1e-9
        Relative tolerance of the interval comparisons (docs/regression.md).
    candidates : array-like, optional
        Increasing levels in (0, 1/2] to search; default :func:`hypothesis_levels`.

    Returns
    -------
    RegressionMemoResult
    """
    validate_params(
        dict(max_rounds=max_rounds, eta=eta, delta=delta, patience=patience, probe_lowest=probe_lowest, tol=tol),
        REGRESSION_MEMO_PARAMETERS,
    )
    H = _as_hypotheses(hypotheses)
    if hasattr(X, "to_numpy"):
        X = X.to_numpy()
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] != H.shape[0]:
        raise ValueError(f"X: expected {H.shape[0]} rows (one per row of hypotheses), got shape {X.shape}")
    if candidates is not None:
        candidates = np.asarray(candidates, dtype=np.float64)
        if (
            candidates.ndim != 1
            or not np.all((candidates > 0) & (candidates <= 0.5))
            or np.any(np.diff(candidates) <= 0)
        ):
            raise ValueError("candidates: expected strictly increasing levels in (0, 1/2]")
    if sample_weight is not None:
        sample_weight = np.ascontiguousarray(sample_weight, dtype=np.float64)
        if sample_weight.shape != (H.shape[0],) or not np.all(np.isfinite(sample_weight)) or np.any(sample_weight < 0):
            raise ValueError(f"sample_weight: expected {H.shape[0]} finite, non-negative weights")
    trainer = _RegressionTrainer(default_regression_student() if student is None else student, seed_from(random_state))
    S = _native.sort_hypotheses(H)
    return _run_memo(
        X,
        S,
        H,
        trainer,
        max_rounds=max_rounds,
        eta=eta,
        delta=delta,
        patience=patience,
        tol=tol,
        candidates=candidates,
        sample_weight=sample_weight,
        probe_lowest=bool(probe_lowest),
    )


# ------------------------------------------------------------------ estimators
class _RegressionDistillerBase(ParamsValidationMixin, _DistillerDataMixin, RegressorMixin, BaseEstimator):
    """Validation, teacher resolution and prediction shared by the regressors."""

    #: The parameters both regressors share (see :mod:`crembo._validation`).
    _parameter_constraints: dict = {
        "teacher": "no_validation",
        "student": "no_validation",
        "hypotheses": [Options(*HYPOTHESES)],
        "n_bootstrap": [Interval("integer", 2, MAX_INT)],
        "n_jobs": N_JOBS,
        "random_state": "no_validation",
    }

    def _validate_inputs(self, X, y, X_unlabeled):
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], y_numeric=True, ensure_min_samples=2)
        y = np.asarray(y, dtype=np.float64)
        if np.ptp(y) == 0:
            raise ValueError(f"y: all {len(y)} targets equal {y[0]!r}; there is nothing to compress")
        return X, y, self._validate_unlabeled(X_unlabeled, X)

    def _resolve_teacher(self, X, y, n_unl, seed):
        """Fit the teacher if needed; return a function rows -> (n, m) hypotheses
        (``rows`` index the rows of X followed by those of X_unlabeled)."""
        teacher = self.teacher
        n_all = len(X) + n_unl
        if isinstance(teacher, np.ndarray) or (hasattr(teacher, "to_numpy") and not hasattr(teacher, "fit")):
            H_all = _as_hypotheses(teacher, name="teacher (hypothesis predictions)")
            if H_all.shape[0] != n_all:
                raise ValueError(
                    f"teacher: the hypothesis matrix has {H_all.shape[0]} rows, expected {n_all} "
                    "(the rows of X followed by those of X_unlabeled)"
                )
            if H_all.shape[1] < 2:
                raise ValueError("teacher: expected at least two hypotheses (columns)")
            self.teacher_ = None
            return lambda X_rows, rows: np.ascontiguousarray(H_all[rows])
        if teacher is None:
            teacher_ = default_regression_teacher(seed).fit(self._teacher_view(X), y)
        elif not (hasattr(teacher, "fit") and hasattr(teacher, "get_params")):
            raise _no_hypotheses_error(teacher)
        elif self.hypotheses == "bootstrap" or (self.hypotheses == "auto" and isinstance(teacher, _BOOSTING)):
            # A bootstrap ensemble of the teacher: n_bootstrap more fits of it.
            teacher_ = BaggingRegressor(
                estimator=clone(teacher),
                n_estimators=self.n_bootstrap,
                bootstrap=True,
                random_state=seed,
                n_jobs=self.n_jobs,
            ).fit(self._teacher_view(X), y)
        elif isinstance(teacher, _MEMBER_ENSEMBLES):
            teacher_ = teacher if is_fitted(teacher) else clone(teacher).fit(self._teacher_view(X), y)
        else:
            raise _no_hypotheses_error(teacher)
        self.teacher_ = teacher_
        return lambda X_rows, rows: hypothesis_predictions(teacher_, self._teacher_view(X_rows), n_jobs=self.n_jobs)

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predict with the compressed student.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        X = self._student_input(X)
        return np.asarray(self.student_.predict(X), dtype=np.float64).reshape(-1)


class LabelDistillerRegressor(_RegressionDistillerBase):
    """Label distillation for regression (VT): the student learns the
    teacher's mean prediction (the mean of its hypotheses, which is a
    forest's or bagging ensemble's own prediction).

    Parameters
    ----------
    teacher : regressor, array or None
        As for :class:`CREMBORegressor`.
    student : regressor or None
        Default: a depth-4 regression tree.
    hypotheses : {"auto", "members", "bootstrap"}, default="auto"
    n_bootstrap : int, default=16
    n_jobs : int or None
    random_state : int, RandomState or None
    """

    def __init__(
        self, teacher=None, student=None, *, hypotheses="auto", n_bootstrap=16, n_jobs=None, random_state=None
    ):
        self.teacher = teacher
        self.student = student
        self.hypotheses = hypotheses
        self.n_bootstrap = n_bootstrap
        self.n_jobs = n_jobs
        self.random_state = random_state

    def fit(self, X: ArrayLike, y: ArrayLike, X_unlabeled: ArrayLike | None = None) -> LabelDistillerRegressor:
        """Fit the student on the teacher's mean prediction on ``X`` and ``X_unlabeled``."""
        self._validate_params()
        X, y, X_unl = self._validate_inputs(X, y, X_unlabeled)
        seed = seed_from(check_random_state(self.random_state))
        source = self._resolve_teacher(X, y, len(X_unl), seed)
        X_t = np.concatenate([X, X_unl]) if len(X_unl) else X
        H = source(X_t, np.arange(len(X_t)))
        trainer = _RegressionTrainer(default_regression_student() if self.student is None else self.student, seed)
        self.student_ = trainer.fit(X_t, H.mean(axis=1))
        return self


class CREMBORegressor(_RegressionDistillerBase):
    """Compress a regression teacher into a small student that is deep among
    the teacher's sampled hypotheses: MEMO and CREMBO for regression.

    MEMO finds the largest level ``t`` at which the student's prediction lies
    inside the central ``[t, 1-t]`` interval of the members' predictions at
    every transfer point (binary search over levels, reweighting oracle in
    the native core). CREMBO then trains one student per level from MEMO's up
    to 1/2 (the median) on the interval-clipped targets and keeps the best on
    a validation split. Specification: docs/regression.md.

    Parameters
    ----------
    teacher : regressor, array or None
        A RandomForestRegressor, ExtraTreesRegressor or BaggingRegressor,
        fitted (used as it is) or not (fitted on ``(X, y)``); its members are
        the hypotheses. A GradientBoostingRegressor or
        HistGradientBoostingRegressor (or any regressor with
        ``hypotheses="bootstrap"``) is bagged into ``n_bootstrap`` bootstrap
        fits of a clone (``n_bootstrap`` times the teacher's fit cost; a given
        fitted model is used only for its parameters). An array of shape
        ``(n_samples + n_unlabeled, m)`` holds hypothesis predictions for the
        rows of X then X_unlabeled. Default: 100 regression trees, at least 5
        rows per leaf.
    student : regressor or None
        Cloned, never modified; MEMO's oracle needs ``sample_weight`` in
        ``fit``. Default: a depth-4 regression tree.
    mode : {"crembo", "memo"}, default="crembo"
    max_rounds : int, default=8
        Reweighting rounds per MEMO level.
    eta : float, default=1.0
        Weight growth ``1 + eta`` of a violating point per round.
    patience : int, default=0
        Give a level up after this many rounds without fewer violations.
    delta : float in [0, 1), default=0.1
        Tolerated fraction of points outside their interval (and the depth
        ``depth_`` reports is the ``floor(delta n)+1``-th smallest point
        depth). Not 0 by default: a small regressor is almost never inside
        every interval (docs/regression.md, "Why delta > 0").
    tol : float, default=1e-9
        Relative tolerance of interval comparisons (roundoff in a student's
        fitted values).
    validation_fraction : float in (0, 1), default=0.2
        Share of ``(X, y)`` held out to choose the level (mode "crembo").
    n_thresholds : int or None, default=16
        Levels tried by the sweep (evenly spaced over the distinct levels
        from MEMO's to 1/2); None tries every distinct level.
    scoring : {"rmse", "r2"}, default="rmse"
    refit : bool, default=False
        Refit the chosen level's student on all labelled and unlabelled rows.
    hypotheses : {"auto", "members", "bootstrap"}, default="auto"
        Where hypotheses come from: members of a forest/bagging ensemble, or a
        bootstrap ensemble of the teacher ("auto": bootstrap for boosting).
    n_bootstrap : int, default=16
        Size of the bootstrap ensemble.
    n_jobs : int or None
        Threads for members' predictions and the sweep's fits.
    random_state : int, RandomState or None

    Attributes
    ----------
    student_ : fitted regressor
    teacher_ : fitted teacher (None for a hypothesis matrix)
    level_ : float
        The chosen level (MEMO's in mode "memo").
    memo_level_ : float or None
        MEMO's deepest consistent level.
    memo_depth_ : float or None
        Delta-insensitive depth of MEMO's student on the transfer set.
    memo_student_ : fitted regressor or None
    depth_ : float
        Delta-insensitive empirical depth of ``student_`` on the transfer
        set (the ``floor(delta n)+1``-th smallest point depth).
    validation_score_ : float or None
        RMSE (or R^2) of the chosen student on the validation split.
    sweep_ : SweepResult or None
        The sweep (:class:`crembo.compress.SweepResult`, its thresholds the
        levels, ``greater_is_better`` False for RMSE); None in mode "memo".
    trace_ : list of dict
        Every level tried (stage "memo", "sweep" or "refit").
    n_student_fits_ : int
    n_hypotheses_ : int
    """

    _parameter_constraints: dict = {
        **_RegressionDistillerBase._parameter_constraints,
        **{k: v for k, v in REGRESSION_MEMO_PARAMETERS.items() if k != "probe_lowest"},
        "mode": [Options("crembo", "memo")],
        "validation_fraction": [Interval("real", 0.0, 1.0, closed="neither")],
        "n_thresholds": [None, Interval("integer", 1, MAX_INT)],
        "scoring": [Options(*SCORING)],
        "refit": BOOLEAN,
    }

    def __init__(
        self,
        teacher=None,
        student=None,
        *,
        mode="crembo",
        max_rounds=8,
        eta=1.0,
        patience=0,
        delta=0.1,
        tol=DEFAULT_TOL,
        validation_fraction=0.2,
        n_thresholds=16,
        scoring="rmse",
        refit=False,
        hypotheses="auto",
        n_bootstrap=16,
        n_jobs=None,
        random_state=None,
    ):
        self.teacher = teacher
        self.student = student
        self.mode = mode
        self.max_rounds = max_rounds
        self.eta = eta
        self.patience = patience
        self.delta = delta
        self.tol = tol
        self.validation_fraction = validation_fraction
        self.n_thresholds = n_thresholds
        self.scoring = scoring
        self.refit = refit
        self.hypotheses = hypotheses
        self.n_bootstrap = n_bootstrap
        self.n_jobs = n_jobs
        self.random_state = random_state

    def fit(self, X: ArrayLike, y: ArrayLike, X_unlabeled: ArrayLike | None = None) -> CREMBORegressor:
        """Compress the teacher into the student.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Real-valued targets (finite, not all equal).
        X_unlabeled : array-like of shape (m, n_features), optional
            Extra transfer points without targets.

        Returns
        -------
        self
        """
        self._validate_params()
        X, y, X_unl = self._validate_inputs(X, y, X_unlabeled)
        rng = check_random_state(self.random_state)
        seed = seed_from(rng)
        source = self._resolve_teacher(X, y, len(X_unl), seed)
        trainer = _RegressionTrainer(default_regression_student() if self.student is None else self.student, seed)

        n, n_unl = len(X), len(X_unl)
        if self.mode == "crembo":
            n_val = int(np.ceil(self.validation_fraction * n))
            if n_val < 1 or n - n_val < 2:
                raise ValueError(
                    f"validation_fraction={self.validation_fraction} leaves too few fitting or "
                    f"validation rows out of {n}; use more data or mode='memo'"
                )
            fit_rows, val_rows = train_test_split(np.arange(n), test_size=n_val, random_state=seed_from(rng))
            fit_rows, val_rows = np.sort(fit_rows), np.sort(val_rows)
        else:
            fit_rows, val_rows = np.arange(n), np.arange(0)
        rows_tr = np.concatenate([fit_rows, n + np.arange(n_unl)])
        X_all = np.concatenate([X, X_unl]) if n_unl else X
        X_tr = X_all[rows_tr]
        H_tr = source(X_tr, rows_tr)
        S_tr = _native.sort_hypotheses(H_tr)
        self.n_hypotheses_ = int(H_tr.shape[1])

        memo_res = _run_memo(
            X_tr,
            S_tr,
            H_tr,
            trainer,
            max_rounds=self.max_rounds,
            eta=self.eta,
            delta=self.delta,
            patience=self.patience,
            tol=self.tol,
        )
        self.memo_level_ = memo_res.level
        self.memo_depth_ = memo_res.depth
        self.memo_student_ = memo_res.student
        trace = [dict(stage="memo", validation_score=None, **r) for r in memo_res.trace]
        n_fits = memo_res.n_fits

        self.sweep_ = None
        if self.mode == "memo":
            if memo_res.student is not None:
                student, level, pred_tr = memo_res.student, memo_res.level, memo_res.pred
            else:  # not even the widest interval: the student on the clipped medians
                level = float(hypothesis_levels(S_tr.shape[1])[0])
                student, pred_tr = self._fit_at(trainer, X_tr, S_tr, level, memo_res.fallback_pred)
                n_fits += 1
            score = None
        else:
            self.sweep_ = self._sweep(trainer, X_tr, S_tr, memo_res, X[val_rows], y[val_rows])
            chosen = select_candidate(self.sweep_, "best")
            student, level, score = chosen.student, chosen.threshold, chosen.score
            pred_tr = memo_res.pred if chosen.n_fits == 0 else trainer.predict(student, X_tr)
            trace += self.sweep_.trace()
            n_fits += self.sweep_.n_fits

        if self.refit and self.mode == "crembo":
            rows_f = np.arange(n + n_unl)
            H_f = source(X_all, rows_f)
            S_f = _native.sort_hypotheses(H_f)
            guide = trainer.predict(student, X_all)
            student, pred_tr = self._fit_at(trainer, X_all, S_f, level, guide)
            viol = int(_native.hypothesis_violations(S_f, pred_tr, level, self.tol))
            trace.append(
                dict(
                    stage="refit",
                    threshold=level,
                    consistent=viol == 0,
                    violations=viol,
                    rounds=1,
                    validation_score=None,
                )
            )
            n_fits += 1
            H_tr = H_f
        self.student_ = student
        self.level_ = float(level)
        self.validation_score_ = score
        self.trace_ = trace
        self.n_student_fits_ = int(n_fits)
        self.depth_ = float(_native.hypothesis_empirical_depth(H_tr, pred_tr, self.tol, self.delta))
        return self

    def _fit_at(self, trainer, X, S, level, prefer):
        """A student on the targets ``prefer`` (or the medians) clipped into
        the intervals at ``level``; the native tree learns the intervals."""
        if trainer.native:
            lo, hi = _native.hypothesis_intervals(S, level)
            est = trainer.fit_intervals(X, lo, hi)
        else:
            est = trainer.fit(X, _native.clip_to_intervals(S, level, prefer))
        return est, trainer.predict(est, X)

    def _score(self, y_true, y_pred):
        if self.scoring == "rmse":
            return float(np.sqrt(mean_squared_error(y_true, y_pred)))
        return float(r2_score(y_true, y_pred))

    def _sweep(self, trainer, X_tr, S_tr, memo_res, X_val, y_val):
        """Stage "sweep": one student per level from MEMO's up to the median,
        scored on the validation rows."""
        start_time = time.perf_counter()
        m = S_tr.shape[1]
        start = memo_res.level if memo_res.level is not None else float(hypothesis_levels(m)[0])
        levels = hypothesis_levels(m, lo=start)
        if self.n_thresholds is not None and len(levels) > self.n_thresholds:
            pick = np.unique(np.round(np.linspace(0, len(levels) - 1, self.n_thresholds)).astype(int))
            levels = levels[pick]
        result = SweepResult(
            "holdout", [float(t) for t in levels], n_validation=len(y_val), greater_is_better=self.scoring == "r2"
        )
        prefer = memo_res.pred if memo_res.pred is not None else memo_res.fallback_pred
        if memo_res.student is not None:
            score = self._score(y_val, trainer.predict(memo_res.student, X_val))
            result.candidates.append(SweepCandidate(memo_res.level, score, memo_res.student, 0, 0.0, 0))
            levels = levels[levels > memo_res.level]

        def one(t):
            t0 = time.perf_counter()
            est, pred = self._fit_at(trainer, X_tr, S_tr, float(t), prefer)
            viol = int(_native.hypothesis_violations(S_tr, pred, float(t), self.tol))
            secs = time.perf_counter() - t0
            return SweepCandidate(t, self._score(y_val, trainer.predict(est, X_val)), est, viol, secs, 1), t0

        outs = Parallel(n_jobs=self.n_jobs, prefer="threads")(delayed(one)(float(t)) for t in levels)
        result.candidates += [cand for cand, _ in outs]
        result.fit_seconds = busy_seconds([(t0, t0 + cand.seconds) for cand, t0 in outs])
        result.seconds = time.perf_counter() - start_time
        return result
