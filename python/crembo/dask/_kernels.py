"""Per-partition work of ``crembo.dask``: plain functions of NumPy arrays
that run on the workers (each call sees one partition) and the small
reductions that combine their answers.

Nothing here imports dask: the functions are shipped to the workers by name
and run on whatever arrays a partition holds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _native
from ..compress.teachers import teacher_beliefs

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from numpy.typing import ArrayLike

# ------------------------------------------------------------------ inputs


def label_info(y: ArrayLike) -> dict[str, Any]:
    """Rows and distinct labels of one partition of ``y``."""
    y = np.asarray(y)
    return dict(n=int(y.shape[0]), labels=np.unique(y))


def prepare_partition(
    X: ArrayLike,
    y: ArrayLike,
    teacher: Any,
    *,
    classes: np.ndarray,
    unlabelled_value: Any,
    val_fraction: float,
    seed: int,
    method: str,
    names: Sequence[str] | None,
    sample_weight: ArrayLike | None = None,
) -> dict[str, np.ndarray]:
    """One partition's transfer rows (float32), validation rows (float32)
    and label indices, and the teacher's beliefs on the transfer rows; with
    ``sample_weight``, the weights of both (``w_tr``, ``w_val``)."""
    X = np.asarray(X)
    if X.shape[0] != np.shape(y)[0]:
        raise ValueError(f"a partition of X has {X.shape[0]} rows but its partition of y has {np.shape(y)[0]}")
    out = split_partition(
        X,
        y,
        classes=classes,
        unlabelled_value=unlabelled_value,
        val_fraction=val_fraction,
        seed=seed,
        sample_weight=sample_weight,
    )
    out["P"] = beliefs(teacher, out["X_tr"], method=method, n_classes=len(classes), names=names)
    out["X_tr"] = as_float32(out["X_tr"])
    out["X_val"] = as_float32(out["X_val"])
    return out


def split_partition(
    X: np.ndarray,
    y: ArrayLike,
    *,
    classes: np.ndarray,
    unlabelled_value: Any,
    val_fraction: float,
    seed: int,
    sample_weight: ArrayLike | None = None,
) -> dict[str, np.ndarray]:
    """One partition cut into its transfer rows and its validation rows.

    Returns a dict: ``X_tr`` (fitting rows then unlabelled rows, the order of
    the in-memory estimator), ``X_val``, ``y_val`` (label indices), and with
    ``sample_weight`` their weights ``w_tr`` and ``w_val``.
    ``val_fraction`` 0 keeps every labelled row for transfer.
    """
    y = np.asarray(y)
    unl = (y == unlabelled_value) if unlabelled_value is not None else np.zeros(len(y), dtype=bool)
    lab = np.flatnonzero(~unl)
    if val_fraction > 0 and lab.size:
        rng = np.random.RandomState(seed)
        n_val = int(np.ceil(val_fraction * lab.size))
        n_val = min(n_val, lab.size)
        val = np.sort(rng.permutation(lab)[:n_val])
    else:
        val = lab[:0]
    fit_mask = ~unl
    fit_mask[val] = False
    fit = np.flatnonzero(fit_mask)
    tr = np.concatenate([fit, np.flatnonzero(unl)])
    y_idx = np.searchsorted(classes, y[val]).astype(np.int64)
    out = dict(X_tr=np.ascontiguousarray(X[tr]), X_val=np.ascontiguousarray(X[val]), y_val=y_idx)
    if sample_weight is not None:
        w = check_weights(sample_weight, len(y))
        out.update(w_tr=w[tr], w_val=w[val])
    return out


def check_weights(w: ArrayLike, n: int) -> np.ndarray:
    """A partition of ``sample_weight``, checked: ``n`` finite, non-negative numbers."""
    w = np.asarray(w)
    if w.dtype.kind not in "biuf":
        raise TypeError(f"sample_weight: expected real numbers, got an array of dtype {w.dtype}")
    w = w.astype(np.float64)
    if w.shape != (n,):
        raise ValueError(f"sample_weight: a partition has {w.shape[0]} weights for {n} rows")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("sample_weight: expected finite, non-negative weights")
    return w


def get(d: Mapping[str, Any], field: str) -> Any:
    return d[field]


def as_float32(X: ArrayLike) -> np.ndarray:
    return np.ascontiguousarray(X, dtype=np.float32)


def n_rows(a: np.ndarray) -> int:
    return int(a.shape[0])


def beliefs(
    teacher: Any, X: np.ndarray, *, method: str, n_classes: int, names: Sequence[str] | None = None
) -> np.ndarray:
    """Teacher beliefs on one partition (a scikit-learn forest is counted
    by the native vote counter)."""
    if len(X) == 0:
        return np.zeros((0, n_classes), dtype=np.float64)
    view = X
    if names is not None:
        import pandas as pd

        view = pd.DataFrame(X, columns=names)
    return teacher_beliefs(teacher, view, method=method, n_classes=n_classes, n_jobs=1)


# ------------------------------------------------------- belief statistics


def row_max_min(P: np.ndarray) -> float:
    return float(P.max(axis=1).min()) if len(P) else np.inf


def row_max_smallest(P: np.ndarray, k: int) -> np.ndarray:
    """The ``k + 1`` smallest row maxima of a partition, sorted."""
    if len(P) == 0:
        return np.zeros(0)
    m = P.max(axis=1)
    if k + 1 < len(m):
        m = np.partition(m, k)[: k + 1]
    return np.sort(m)


def entry_counts(P: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Distinct positive belief entries in [lo, hi] with their counts (the
    exact candidate set, mergeable by summing counts)."""
    v = P[(P > 0) & (P >= lo) & (P <= hi)]
    return np.unique(v, return_counts=True)


def merge_counts(parts: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    vals = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0)
    cnts = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, dtype=np.int64)
    if vals.size == 0:
        return vals, cnts.astype(np.int64)
    u, inv = np.unique(vals, return_inverse=True)
    return u, np.bincount(inv, weights=cnts, minlength=u.size).astype(np.int64)


def budgeted_from_counts(values: np.ndarray, counts: np.ndarray, K: int) -> np.ndarray:
    """``_core.budgeted_thresholds`` from distinct entries and their counts:
    quantile ``j / (K - 1)`` of the entries with multiplicity."""
    N = int(counts.sum())
    if N == 0:
        return values[:0]
    if K >= N:
        return values
    ends = np.cumsum(counts)  # entry positions [ends[i-1], ends[i]) hold values[i]
    pos = np.zeros(1, dtype=np.int64) if K == 1 else (np.arange(K, dtype=np.int64) * (N - 1)) // (K - 1)
    out = values[np.searchsorted(ends, pos, side="right")]
    return np.unique(out)


def allowed_targets(P: np.ndarray, t: float, prefer: np.ndarray) -> tuple[np.ndarray, int]:
    targets, empty = _native.allowed_targets(P, t, prefer)
    return targets, int(empty)


def fill_empty_targets(targets: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Rows with an empty allowed set learn their most likely label (the
    reweighting oracle's tolerated violations)."""
    bad = targets < 0
    if bad.any():
        targets = targets.copy()
        targets[bad] = np.argmax(P[bad], axis=1)
    return targets


def lock_in(P: np.ndarray, targets: np.ndarray, pred: np.ndarray, t: float) -> tuple[np.ndarray, int]:
    """The oracle's round bookkeeping: rows whose prediction is allowed keep
    it as their target; returns (targets, violations)."""
    ok = P[np.arange(len(P)), pred] >= t
    targets = np.where(ok, pred, targets).astype(np.int32)
    return targets, int((~ok).sum())


def grow_weights(P: np.ndarray, pred: np.ndarray, w: np.ndarray | None, t: float, grow: float) -> np.ndarray:
    w = np.ones(len(P)) if w is None else w.copy()
    w[P[np.arange(len(P)), pred] < t] *= grow
    return w


def weight_sum(w: np.ndarray) -> float:
    return float(w.sum())


def scale(w: np.ndarray, factor: float) -> np.ndarray:
    return w * factor


def count_violations(P: np.ndarray, pred: np.ndarray, t: float) -> int:
    return int(_native.count_violations(P, pred, t)) if len(P) else 0


def depth_min(P: np.ndarray, pred: np.ndarray) -> float:
    return float(P[np.arange(len(P)), pred].min()) if len(P) else np.inf


def depth_smallest(P: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    d = P[np.arange(len(P)), pred]
    if k + 1 < len(d):
        d = np.partition(d, k)[: k + 1]
    return np.sort(d)


def score_counts(pred: np.ndarray, y: np.ndarray, w: np.ndarray | None = None, *, n_classes: int) -> np.ndarray:
    """Confusion counts a score needs: (correct per class, rows per class),
    rows weighted by ``w`` when given."""
    hit = pred == y
    correct = np.bincount(y[hit], weights=None if w is None else w[hit], minlength=n_classes)
    total = np.bincount(y, weights=w, minlength=n_classes)
    return np.stack([correct, total])


def predict_index(est: Any, X: ArrayLike, lookup: np.ndarray) -> np.ndarray:
    """Label indices (global classes) the fitted student predicts on ``X``."""
    if len(X) == 0:
        return np.zeros(0, dtype=np.int32)
    return lookup[est.tree_.node_class[est.tree_.apply(np.asarray(X), 1)]].astype(np.int32)


def predict_labels(est: Any, X: ArrayLike) -> np.ndarray:
    return np.asarray(est.predict(X))


def predict_proba(est: Any, X: ArrayLike, classes: np.ndarray) -> np.ndarray:
    from ..compress.students import proba_in_classes

    return proba_in_classes(est, X, classes)


def leaf_sums(est: Any, X: ArrayLike, P: np.ndarray, w: np.ndarray | None = None, *, cols: Sequence[int]) -> np.ndarray:
    """Teacher belief summed per leaf (the columns of the student's classes),
    rows weighted by ``w`` when given: ``set_leaf_beliefs``'s sums, one
    partition at a time."""
    nc = est.tree_.node_count
    if len(X) == 0:
        return np.zeros((nc, len(cols)))
    leaves = est.tree_.apply(np.asarray(X), 1)
    return np.column_stack(
        [np.bincount(leaves, weights=P[:, c] if w is None else P[:, c] * w, minlength=nc) for c in cols]
    )


def sample_rows(arrays: Sequence[np.ndarray], p: float, seed: int) -> list[np.ndarray]:
    """A Bernoulli(p) sample of a partition's rows from each array."""
    n = len(arrays[0])
    keep = np.random.RandomState(seed).random_sample(n) < p
    return [a[keep] for a in arrays]


def identity(x: Any) -> Any:
    return x


def add(a: Any, b: Any) -> Any:
    return a + b


def concat(*parts: np.ndarray) -> np.ndarray:
    return np.concatenate(parts)
