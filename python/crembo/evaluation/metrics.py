"""Evaluation metrics of the reference experimental protocol.

* **Agreement** (stability): students built from different training folds
  are compared on one fixed test set; the agreement is the mean, over
  unordered pairs of students, of the fraction of test points on which the
  two predict the same label (:func:`agreement`, :func:`pairwise_agreement`,
  :func:`agreement_of`).
* **Depth** of a student under the teacher's belief
  (:func:`depth_statistics`), computed by the native core.
* **Perturbations**: Gaussian feature noise scaled per feature
  (:func:`add_feature_noise`, :func:`noisy_accuracy`) and label flips
  (:func:`flip_labels`).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Dict, Iterable, Sequence, Union

import numpy as np
from numpy.typing import ArrayLike
from sklearn.utils import check_random_state

from .. import _native

#: What ``random_state`` takes: None, a seed, or a NumPy random state.
RandomState = Union[int, np.random.RandomState, np.random.Generator, None]

__all__ = [
    "add_feature_noise",
    "agreement",
    "agreement_of",
    "depth_statistics",
    "flip_labels",
    "noisy_accuracy",
    "pairwise_agreement",
]


# ------------------------------------------------------------------ agreement
def _prediction_rows(predictions) -> list:
    """Validate ``predictions`` and return it as a list of 1-d arrays."""
    if predictions is None:
        raise ValueError("predictions: expected a sequence of label arrays, got None")
    if isinstance(predictions, np.ndarray):
        if predictions.ndim != 2:
            raise ValueError(
                "predictions: expected a 2-d array (one row per student) or a sequence "
                f"of 1-d label arrays, got an array with {predictions.ndim} dimension(s)"
            )
        rows = [predictions[k] for k in range(predictions.shape[0])]
    else:
        try:
            rows = [np.asarray(p) for p in predictions]
        except TypeError:
            raise ValueError(
                f"predictions: expected a sequence of label arrays, got {type(predictions).__name__}"
            ) from None
    if len(rows) < 2:
        raise ValueError(f"predictions: agreement needs at least 2 students, got {len(rows)}")
    for k, r in enumerate(rows):
        if r.ndim != 1:
            raise ValueError(f"predictions[{k}]: expected a 1-d array of labels, got {r.ndim} dimension(s)")
    lengths = {r.shape[0] for r in rows}
    if len(lengths) > 1:
        raise ValueError(
            f"predictions: every student must predict on the same test points; got lengths {[r.shape[0] for r in rows]}"
        )
    if rows[0].shape[0] == 0:
        raise ValueError("predictions: the test set is empty (0 predictions per student)")
    return rows


def pairwise_agreement(predictions: ArrayLike | Sequence[ArrayLike]) -> np.ndarray:
    """Agreement of every pair of students.

    Parameters
    ----------
    predictions : sequence of array-like of shape (n_samples,), or ndarray of shape (n_students, n_samples)
        The labels each student predicts on the same test points. Labels may
        be of any type that compares with ``==`` (ints, strings, ...).

    Returns
    -------
    ndarray of shape (n_students, n_students), dtype float64
        Symmetric; entry ``[a, b]`` is the fraction of test points on which
        students ``a`` and ``b`` predict the same label. The diagonal is 1.

    Raises
    ------
    ValueError
        With fewer than 2 students, an empty test set, predictions that are
        not 1-d, or students predicting on different numbers of points.
    """
    rows = _prediction_rows(predictions)
    k = len(rows)
    out = np.eye(k, dtype=np.float64)
    for a in range(k):
        for b in range(a + 1, k):
            same = np.asarray(rows[a] == rows[b], dtype=bool)
            if same.shape != rows[a].shape:  # elementwise comparison failed
                raise ValueError(f"predictions[{a}] and predictions[{b}] cannot be compared elementwise")
            out[a, b] = out[b, a] = float(same.mean())
    return out


def agreement(predictions: ArrayLike | Sequence[ArrayLike]) -> float:
    """Mean pairwise agreement of several students on one test set.

    Parameters
    ----------
    predictions : sequence of array-like of shape (n_samples,), or ndarray of shape (n_students, n_samples)
        The labels each student predicts on the same test points.

    Returns
    -------
    float
        The mean, over the ``n_students * (n_students - 1) / 2`` unordered
        pairs of students, of the fraction of test points on which the two
        predict the same label. 1.0 when all students agree everywhere.

    Raises
    ------
    ValueError
        As :func:`pairwise_agreement`.
    """
    m = pairwise_agreement(predictions)
    iu = np.triu_indices(m.shape[0], k=1)
    return float(m[iu].mean())


def agreement_of(estimators: Iterable[Any], X: ArrayLike) -> float:
    """Agreement of fitted estimators on ``X``.

    Parameters
    ----------
    estimators : iterable of fitted estimators
        Each must have ``predict(X)``.
    X : array-like of shape (n_samples, n_features)
        The common test points.

    Returns
    -------
    float
        ``agreement([est.predict(X) for est in estimators])``.
    """
    return agreement([np.asarray(est.predict(X)) for est in estimators])


# ---------------------------------------------------------------------- depth
def _check_unit_interval(value, name: str, upper_open: bool) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise ValueError(f"{name}: expected a real number, got {value!r}")
    v = float(value)
    ok = 0.0 <= v < 1.0 if upper_open else 0.0 <= v <= 1.0
    if not ok:
        interval = "[0, 1)" if upper_open else "[0, 1]"
        raise ValueError(f"{name}: expected a value in {interval}, got {value!r}")
    return v


def depth_statistics(
    beliefs: ArrayLike,
    pred: ArrayLike,
    deltas: Sequence[float] = (0, 0.01, 0.05, 0.1),
    thresholds: ArrayLike | None = None,
) -> Dict[str, Any]:
    """Depth of a student's predictions under the teacher's belief.

    The depth at point ``i`` is ``beliefs[i, pred[i]]``; the student's
    (empirical) depth is the minimum over points, and its
    delta-insensitive depth is the ``(floor(delta * n) + 1)``-th smallest
    point depth.

    Parameters
    ----------
    beliefs : array-like of shape (n_samples, n_classes)
        The teacher's belief ``p(y|x_i)``; float32 is kept, anything else is
        used as float64. Entries must be finite.
    pred : array-like of shape (n_samples,)
        The student's labels, integers in ``0 .. n_classes - 1``.
    deltas : sequence of float, default=(0, 0.01, 0.05, 0.1)
        Insensitivity levels, each in ``[0, 1)``.
    thresholds : array-like of shape (n_thresholds,), default=None
        Grid of the depth profile; ``None`` means 21 evenly spaced values
        ``0, 0.05, ..., 1``.

    Returns
    -------
    dict
        ``"min_depth"`` : float, the empirical depth ``min_i D(h|x_i)``;
        ``"mean_depth"`` : float, the mean point depth;
        ``"delta_depths"`` : dict float -> float, the delta-insensitive
        depth for each delta (``delta_depths[0.0] == min_depth``);
        ``"thresholds"`` : ndarray of shape (n_thresholds,), the grid;
        ``"profile"`` : ndarray of shape (n_thresholds,), the fraction of
        points with depth ``>= thresholds[j]``;
        ``"point_depths"`` : ndarray of shape (n_samples,), the depth at
        every point.

    Raises
    ------
    ValueError
        For a belief matrix that is not 2-d, empty or non-finite, ``pred`` of
        the wrong length or with non-integer or out-of-range labels, a delta
        outside ``[0, 1)`` or a non-finite threshold grid.
    """
    P = np.asarray(beliefs)
    if P.ndim != 2:
        raise ValueError(f"beliefs: expected a 2-d array (n_samples x n_classes), got {P.ndim} dimension(s)")
    n, C = P.shape
    if n == 0 or C == 0:
        raise ValueError(f"beliefs: expected a non-empty matrix, got shape {P.shape}")
    if not np.issubdtype(P.dtype, np.number) or np.issubdtype(P.dtype, np.complexfloating):
        raise ValueError(f"beliefs: expected real numbers, got dtype {P.dtype}")
    if P.dtype != np.float32:
        P = P.astype(np.float64, copy=False)
    if not np.all(np.isfinite(P)):
        raise ValueError("beliefs: contains NaN or infinite values")
    P = np.ascontiguousarray(P)

    y = np.asarray(pred)
    if y.ndim != 1:
        raise ValueError(f"pred: expected a 1-d array of labels, got {y.ndim} dimension(s)")
    if y.shape[0] != n:
        raise ValueError(f"pred: expected {n} labels (one per row of beliefs), got {y.shape[0]}")
    if y.dtype == bool or not np.issubdtype(y.dtype, np.number):
        raise ValueError(f"pred: expected integer labels, got dtype {y.dtype}")
    if not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise ValueError("pred: expected integer labels, got non-integer values")
    if y.min() < 0 or y.max() >= C:
        raise ValueError(
            f"pred: labels must lie in 0..{C - 1} (n_classes = {C}); got values from {y.min()} to {y.max()}"
        )
    y = np.ascontiguousarray(y, dtype=np.int32)

    if isinstance(deltas, numbers.Real):
        deltas = (deltas,)
    dl = [_check_unit_interval(d, "deltas", upper_open=True) for d in deltas]

    if thresholds is None:
        grid = np.linspace(0.0, 1.0, 21)
    else:
        grid = np.asarray(thresholds, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(grid)):
            raise ValueError("thresholds: contains NaN or infinite values")
    grid = np.ascontiguousarray(grid, dtype=np.float64)

    depth = np.asarray(_native.point_depth(P, y))
    delta_depths = {d: float(_native.empirical_depth(P, y, d)) for d in dl}
    min_depth = delta_depths[0.0] if 0.0 in delta_depths else float(_native.empirical_depth(P, y, 0.0))
    profile = np.asarray(_native.depth_profile(depth.astype(np.float64), grid))
    return {
        "min_depth": min_depth,
        "mean_depth": float(depth.astype(np.float64).mean()),
        "delta_depths": delta_depths,
        "thresholds": grid,
        "profile": profile,
        "point_depths": depth,
    }


# ------------------------------------------------------------- feature noise
def _check_level(level) -> float:
    if not isinstance(level, numbers.Real) or isinstance(level, bool):
        raise ValueError(f"level: expected a real number, got {level!r}")
    v = float(level)
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"level: expected a finite value >= 0, got {level!r}")
    return v


def _feature_scale(X: np.ndarray, scale) -> np.ndarray:
    if scale is None:
        return X.std(axis=0)
    s = np.asarray(scale, dtype=np.float64)
    if s.ndim == 0:
        s = np.full(X.shape[1], float(s))
    if s.shape != (X.shape[1],):
        raise ValueError(f"scale: expected {X.shape[1]} per-feature values, got shape {s.shape}")
    if not np.all(np.isfinite(s)) or np.any(s < 0):
        raise ValueError("scale: expected finite, non-negative values")
    return s


def _as_feature_matrix(X) -> np.ndarray:
    A = np.asarray(X, dtype=np.float64)
    if A.ndim != 2:
        raise ValueError(f"X: expected a 2-d array (n_samples x n_features), got {A.ndim} dimension(s)")
    if not np.all(np.isfinite(A)):
        raise ValueError("X: contains NaN or infinite values")
    return A


def add_feature_noise(
    X: ArrayLike, level: float, random_state: RandomState = None, scale: ArrayLike | None = None
) -> np.ndarray:
    """Add Gaussian noise scaled to each feature's spread.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Features (finite); not modified.
    level : float
        Noise level, ``>= 0``: feature ``j`` gets noise of standard
        deviation ``level * scale[j]``. 0 returns a copy of ``X``.
    random_state : int, RandomState instance or None, default=None
        Seed or generator (:func:`sklearn.utils.check_random_state`).
    scale : array-like of shape (n_features,) or float, default=None
        Per-feature standard deviations (e.g. computed on training data).
        ``None`` uses the standard deviation of each column of ``X``
        (``ddof=0``).

    Returns
    -------
    ndarray of shape (n_samples, n_features), dtype float64
        ``X + level * scale * N(0, 1)``.
    """
    A = _as_feature_matrix(X)
    lv = _check_level(level)
    s = _feature_scale(A, scale)
    rng = check_random_state(random_state)
    if lv == 0.0:
        return A.copy()
    return A + rng.standard_normal(A.shape) * (lv * s)


def noisy_accuracy(
    estimator: Any,
    X: ArrayLike,
    y: ArrayLike,
    levels: Sequence[float] = (0, 0.1, 0.25, 0.5),
    n_repeats: int = 5,
    random_state: RandomState = None,
    scale: ArrayLike | None = None,
) -> Dict[float, float]:
    """Accuracy of a fitted estimator on noisy copies of ``X``.

    Parameters
    ----------
    estimator : fitted estimator
        Must have ``predict(X)``.
    X : array-like of shape (n_samples, n_features)
        Test features.
    y : array-like of shape (n_samples,)
        True labels.
    levels : sequence of float, default=(0, 0.1, 0.25, 0.5)
        Noise levels (see :func:`add_feature_noise`).
    n_repeats : int, default=5
        Noisy copies drawn per level (one is enough at level 0).
    random_state : int, RandomState instance or None, default=None
        Seed or generator (:func:`sklearn.utils.check_random_state`), shared
        by all levels.
    scale : array-like of shape (n_features,), default=None
        Per-feature standard deviations; ``None`` uses those of ``X``.

    Returns
    -------
    dict float -> float
        For each level, the mean accuracy over the repeats.
    """
    A = _as_feature_matrix(X)
    yt = np.asarray(y)
    if yt.ndim != 1 or yt.shape[0] != A.shape[0]:
        raise ValueError(f"y: expected {A.shape[0]} labels (one per row of X), got shape {yt.shape}")
    if A.shape[0] == 0:
        raise ValueError("X: expected at least one sample")
    if not isinstance(n_repeats, numbers.Integral) or isinstance(n_repeats, bool) or n_repeats < 1:
        raise ValueError(f"n_repeats: expected an integer >= 1, got {n_repeats!r}")
    lvls = [_check_level(lv) for lv in levels]
    s = _feature_scale(A, scale)
    rng = check_random_state(random_state)
    out: Dict[float, float] = {}
    for lv in lvls:
        reps = 1 if lv == 0.0 else int(n_repeats)
        accs = []
        for _ in range(reps):
            Xn = add_feature_noise(A, lv, random_state=rng, scale=s)
            accs.append(float(np.mean(np.asarray(estimator.predict(Xn)) == yt)))
        out[lv] = float(np.mean(accs))
    return out


# ---------------------------------------------------------------- label flips
def flip_labels(
    y: ArrayLike, fraction: float, n_classes: int | ArrayLike | None = None, random_state: RandomState = None
) -> np.ndarray:
    """Flip a fraction of the labels, each to a different class.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Labels of any type (ints, strings, ...); not modified.
    fraction : float
        In ``[0, 1]``: exactly ``floor(fraction * n_samples + 0.5)`` labels
        (rounded half up), at distinct positions drawn uniformly, are changed.
    n_classes : int or array-like of labels, default=None
        The classes to flip among. ``None`` uses the classes present in
        ``y``; an int ``C`` means the labels ``0 .. C-1``; a sequence gives
        the classes explicitly. Every label of ``y`` must be one of them.
    random_state : int, RandomState instance or None, default=None
        Seed or generator (:func:`sklearn.utils.check_random_state`).

    Returns
    -------
    ndarray of shape (n_samples,)
        A new array; each flipped label is replaced by a class drawn
        uniformly among the classes other than its own.

    Raises
    ------
    ValueError
        For ``fraction`` outside ``[0, 1]``, labels outside the given
        classes, or fewer than 2 classes when some label must flip.
    """
    labels = np.asarray(y)
    if labels.ndim != 1:
        raise ValueError(f"y: expected a 1-d array of labels, got {labels.ndim} dimension(s)")
    frac = _check_unit_interval(fraction, "fraction", upper_open=False)
    n = labels.shape[0]

    if n_classes is None:
        classes = np.unique(labels)
    elif isinstance(n_classes, numbers.Integral) and not isinstance(n_classes, bool):
        if n_classes < 1:
            raise ValueError(f"n_classes: expected a positive integer, got {n_classes!r}")
        classes = np.arange(int(n_classes))
    else:
        classes = np.unique(np.asarray(n_classes))
        if classes.ndim != 1 or classes.size == 0:
            raise ValueError("n_classes: expected an int or a non-empty sequence of class labels")

    if n == 0:
        return labels.copy()
    try:
        idx = np.searchsorted(classes, labels)
    except TypeError:
        raise ValueError("y: labels cannot be compared with the given classes") from None
    inside = idx < classes.size
    inside[inside] = classes[idx[inside]] == labels[inside]
    if not np.all(inside):
        bad = labels[~inside][0]
        raise ValueError(f"y: label {bad!r} is not one of the classes {classes.tolist()}")

    k = int(math.floor(frac * n + 0.5))
    out = labels.astype(np.result_type(labels.dtype, classes.dtype), copy=True)
    if k == 0:
        return out
    K = classes.size
    if K < 2:
        raise ValueError(
            f"flip_labels: need at least 2 classes to flip a label, got {K} (pass n_classes to name the classes)"
        )
    rng = check_random_state(random_state)
    where = rng.choice(n, size=k, replace=False)
    shift = rng.randint(1, K, size=k)  # 1 .. K-1: never the same class
    out[where] = classes[(idx[where] + shift) % K]
    return out
