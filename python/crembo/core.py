"""Depth, thresholds and consistency: NumPy-facing wrappers of the native core.

A *belief* is an ``(n, C)`` row-stochastic array ``p(y|x_i)``. The depth of a
student with predictions ``h`` at point ``i`` is ``p(h_i | x_i)``; its
empirical depth is the minimum over points (see ``docs/ALGORITHMS.md``,
section 1).

Every function takes ``device="auto" | "cpu" | "cuda"`` where a CUDA kernel
exists; both kernels give the same results and the CPU path is always there.
``"auto"`` (the default, as across crembo) runs where the inputs live: the
CPU for NumPy arrays (see ``crembo._native.resolve_device``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from . import _native
from ._validation import (
    MAX_CLASSES,
    MAX_INDEX,
    as_beliefs,
    as_label_indices,
    check_device,
    check_fraction,
    check_positive_int,
    check_real,
)

__all__ = [
    "beliefs_from_votes",
    "point_depth",
    "depth",
    "depth_profile",
    "max_achievable_depth",
    "candidate_thresholds",
    "budgeted_thresholds",
    "allowed_labels",
    "count_violations",
    "is_consistent",
]


def _backend(device, name):
    return _native.kernel(name, check_device(device))


def beliefs_from_votes(
    votes: ArrayLike, n_classes: int | None = None, *, dtype: DTypeLike = np.float64, device: str = "auto"
) -> np.ndarray:
    """Beliefs from the votes of sampled hypotheses.

    Parameters
    ----------
    votes : array-like of int, shape (m, n)
        Label index predicted by each of ``m`` hypotheses at each of ``n``
        points, in ``[0, n_classes)``.
    n_classes : int or None, default=None
        Number of classes ``C`` (at most ``2**24``); None: ``votes.max() + 1``.
    dtype : {numpy.float64, numpy.float32}, default=float64
    device : {"auto", "cpu", "cuda"}, default="auto"

    Returns
    -------
    beliefs : ndarray of shape (n, C)
        ``beliefs[i, y]`` is the share of hypotheses voting ``y`` at point ``i``.
    """
    if hasattr(votes, "to_numpy"):
        votes = votes.to_numpy()
    v = np.asarray(votes)
    if v.ndim != 2:
        raise ValueError(f"votes: expected a 2-d array (n_hypotheses, n_samples), got shape {v.shape}")
    if v.size == 0:
        raise ValueError(f"votes: expected a non-empty array, got shape {v.shape}")
    if not np.issubdtype(v.dtype, np.integer):
        raise TypeError(f"votes: expected integer label indices, got dtype {v.dtype}")
    if n_classes is None:
        n_classes = int(v.max()) + 1
    n_classes = check_positive_int(n_classes, "n_classes", maximum=MAX_CLASSES)
    # The CPU core rejects out-of-range votes itself; wider integers are
    # checked here, before the int32 conversion could wrap them into range.
    fits_int32 = v.dtype.itemsize < 4 or (v.dtype.itemsize == 4 and v.dtype.kind == "i")
    if (_native.resolve_device(device) != "cpu" or not fits_int32) and (v.min() < 0 or v.max() >= n_classes):
        j, i = np.argwhere((v < 0) | (v >= n_classes))[0]
        raise ValueError(f"votes[{j}, {i}] = {v[j, i]} is outside the label range [0, {n_classes})")
    if np.dtype(dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype: expected float32 or float64, got {dtype}")
    fn = _backend(device, "beliefs_from_votes")
    return fn(np.ascontiguousarray(v, dtype=np.int32), n_classes, np.dtype(dtype) == np.float32)


def _beliefs_and_pred(beliefs, pred, normalize=False):
    P = as_beliefs(beliefs, normalize=normalize)
    h = as_label_indices(pred, P.shape[0], P.shape[1])
    return P, h


def point_depth(beliefs: ArrayLike, pred: ArrayLike, *, device: str = "auto") -> np.ndarray:
    """Depth of a student at each point: ``beliefs[i, pred[i]]``.

    Parameters
    ----------
    beliefs : array-like of shape (n, C)
    pred : array-like of int, shape (n,)
        The student's label indices in ``[0, C)``.

    Returns
    -------
    ndarray of shape (n,), the dtype of ``beliefs`` (float32 or float64).
    """
    P, h = _beliefs_and_pred(beliefs, pred)
    return _backend(device, "point_depth")(P, h)


def depth(beliefs: ArrayLike, pred: ArrayLike, *, delta: float = 0.0, device: str = "auto") -> float:
    """Empirical (``delta = 0``) or delta-insensitive depth of a student.

    The ``(floor(delta*n) + 1)``-th smallest point depth: ``delta = 0`` is
    ``min_i beliefs[i, pred[i]]``; larger ``delta`` ignores the shallowest
    ``floor(delta*n)`` points.

    Returns
    -------
    float
    """
    delta = check_fraction(delta, "delta")
    P, h = _beliefs_and_pred(beliefs, pred)
    return float(_backend(device, "empirical_depth")(P, h, delta))


def depth_profile(
    beliefs: ArrayLike, pred: ArrayLike, thresholds: ArrayLike | None = None, *, device: str = "auto"
) -> tuple[np.ndarray, np.ndarray]:
    """Fraction of points whose depth is at least each threshold.

    Parameters
    ----------
    thresholds : array-like or None, default=None
        None: the sorted distinct point depths.

    Returns
    -------
    thresholds : ndarray of shape (k,)
    fraction : ndarray of shape (k,)
    """
    d = point_depth(beliefs, pred, device=device).astype(np.float64)
    if thresholds is None:
        thr = np.unique(d)
    else:
        thr = np.asarray(thresholds)
        if thr.dtype.kind not in "biuf":
            raise TypeError(f"thresholds: expected real numbers, got an array of dtype {thr.dtype}")
        thr = thr.astype(np.float64)
        if thr.ndim != 1:
            raise ValueError(f"thresholds: expected a 1-d array, got shape {thr.shape}")
        if not np.all(np.isfinite(thr)):
            raise ValueError("thresholds: expected finite values")
    return thr, _native.depth_profile(d, np.ascontiguousarray(thr))


def max_achievable_depth(beliefs: ArrayLike, *, device: str = "auto") -> float:
    """``min_i max_y beliefs[i, y]``: no student can be deeper on these points."""
    P = as_beliefs(beliefs)
    return float(_backend(device, "max_achievable_depth")(P))


def candidate_thresholds(beliefs: ArrayLike, *, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    """Sorted distinct positive entries of ``beliefs`` in ``[lo, hi]``.

    The depth of every student is one of these values, so they are the only
    thresholds MEMO needs to test.
    """
    lo, hi = check_real(lo, "lo", finite=False), check_real(hi, "hi", finite=False)
    P = as_beliefs(beliefs)
    return _native.candidate_thresholds(P, lo, hi)


def budgeted_thresholds(beliefs: ArrayLike, n_thresholds: int, *, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    """At most ``n_thresholds`` candidate thresholds in ``[lo, hi]``.

    Placed at evenly spaced quantiles of the belief entries in that range (so
    they follow how much the allowed-label sets change) and snapped to actual
    entries; the smallest entry ``>= lo`` is always included.
    """
    n_thresholds = check_positive_int(n_thresholds, "n_thresholds", maximum=MAX_INDEX)
    lo, hi = check_real(lo, "lo", finite=False), check_real(hi, "hi", finite=False)
    P = as_beliefs(beliefs)
    return _native.budgeted_thresholds(P, n_thresholds, lo, hi)


def allowed_labels(beliefs: ArrayLike, threshold: float, *, device: str = "auto") -> np.ndarray:
    """Boolean ``(n, C)`` mask of the allowed labels ``beliefs >= threshold``."""
    t = check_real(threshold, "threshold")
    P = as_beliefs(beliefs)
    return _backend(device, "allowed_labels")(P, t)


def count_violations(beliefs: ArrayLike, pred: ArrayLike, threshold: float, *, device: str = "auto") -> int:
    """Number of points where ``pred`` is not an allowed label at ``threshold``."""
    t = check_real(threshold, "threshold")
    P, h = _beliefs_and_pred(beliefs, pred)
    return int(_backend(device, "count_violations")(P, h, t))


def is_consistent(
    beliefs: ArrayLike, pred: ArrayLike, threshold: float, *, delta: float = 0.0, device: str = "auto"
) -> bool:
    """True when at most ``floor(delta*n)`` predictions are not allowed at ``threshold``."""
    delta = check_fraction(delta, "delta")
    violations = count_violations(beliefs, pred, threshold, device=device)  # checks beliefs: (n, C)
    return violations <= int(np.floor(delta * np.shape(beliefs)[0]))
