"""A larger transfer set: synthetic rows for the teacher to label (MUNGE).

Compression learns from the teacher's beliefs, and the teacher can be asked
about any point, not only the training rows. MUNGE (C. Bucilă, R. Caruana and
A. Niculescu-Mizil, *Model Compression*, KDD 2006) makes new points that stay
close to the data: for each real row ``e`` it takes its nearest neighbour
``e'`` (Euclidean distance on standardised features) and, attribute by
attribute with probability ``swap``, moves ``e``'s value towards ``e'``'s:

* a continuous attribute draws from a normal of mean ``e'_a`` and standard
  deviation ``|e_a - e'_a| / spread`` (both rows get the new value in the
  paper; here only ``e`` is changed, and ``e'`` gets its turn as a row of its
  own);
* a discrete attribute (few distinct integer values in the data) takes
  ``e'_a``.

``size`` synthetic rows per real row are made, each pass starting again from
the real rows, so that synthetic rows never breed synthetic rows. The
teacher labels them: more transfer points where the data lives makes the
student a function of the teacher rather than of the few real rows it saw,
which is what makes it stable when those rows change
(``docs/ALGORITHMS.md``, section 5).

Missing values (NaN) are allowed: neighbours are found on a copy whose
missing cells hold their column's mean, and a synthetic row keeps a missing
cell of ``e`` missing; an attribute missing in ``e'`` is not moved. So
synthetic rows have missing values where real rows have them, for a teacher
and a student that handle them.
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING

import numpy as np
from sklearn.neighbors import NearestNeighbors
from sklearn.utils import check_random_state

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["munge"]

#: A column with at most this many distinct integer values is treated as discrete.
DISCRETE_MAX_VALUES = 10


def _check_size(size):
    if isinstance(size, bool) or not isinstance(size, numbers.Real):
        raise TypeError(f"augment: expected a non-negative number of synthetic rows per real row, got {size!r}")
    if not np.isfinite(size) or size < 0:
        raise ValueError(f"augment: expected a non-negative number of synthetic rows per real row, got {size!r}")
    if size > 1000:
        raise ValueError(f"augment: {size} synthetic rows per real row is more than 1000; use fewer")
    return float(size)


def _check_unit(value, name, low_inclusive):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number, got {value!r}")
    ok = (0 <= value <= 1) if low_inclusive else (0 < value <= 1)
    if not np.isfinite(value) or not ok:
        raise ValueError(f"{name}: expected a number in {'[' if low_inclusive else '('}0, 1], got {value!r}")
    return float(value)


def munge(
    X: ArrayLike,
    size: float = 1.0,
    *,
    swap: float = 0.5,
    spread: float = 1.0,
    random_state: int | np.random.RandomState | None = None,
    categorical: ArrayLike | None = None,
) -> np.ndarray:
    """Synthetic rows near ``X`` by MUNGE.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Real rows (at least 2; NaN marks a missing value, see the module
        notes; infinities are refused).
    size : float, default=1.0
        Synthetic rows per real row: ``round(size * n_samples)`` rows in all
        (a fraction takes a random subset of the real rows in the last pass).
    swap : float in [0, 1], default=0.5
        Probability that an attribute of a row is moved towards its
        neighbour's (the paper's ``p``).
    spread : float, default=1.0
        Divides the standard deviation of the draw around the neighbour's
        value (the paper's ``s``): larger keeps synthetic values closer.
    random_state : int, RandomState or None
    categorical : boolean mask of shape (n_features,), optional
        Columns of category codes: a moved attribute takes the neighbour's
        code, as a discrete one does.

    Returns
    -------
    ndarray of shape (round(size * n_samples), n_features), the dtype of ``X``
    (float32 stays float32, anything else becomes float64).
    """
    size = _check_size(size)
    swap = _check_unit(swap, "augment_swap", low_inclusive=True)
    if isinstance(spread, bool) or not isinstance(spread, numbers.Real) or not np.isfinite(spread) or spread <= 0:
        raise ValueError(f"augment_spread: expected a positive number, got {spread!r}")
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X: expected a 2-d array, got shape {X.shape}")
    if X.dtype.kind not in "biuf":
        raise TypeError(f"X: expected numeric values, got dtype {X.dtype}")
    dtype = np.float32 if X.dtype == np.float32 else np.float64
    X = np.asarray(X, dtype=dtype)
    n, d = X.shape
    total = int(round(size * n))
    if total == 0:
        return np.empty((0, d), dtype=dtype)
    if n < 2:
        raise ValueError(f"X: MUNGE needs at least 2 rows to find neighbours, got {n}")
    if np.any(np.isinf(X)):
        raise ValueError("X: MUNGE needs finite values or NaN for missing ones (no inf)")
    rng = check_random_state(random_state)
    missing = np.isnan(X)
    if missing.any():
        col_mean = np.zeros(d, dtype=dtype)
        seen = ~missing.all(axis=0)
        col_mean[seen] = np.nanmean(X[:, seen], axis=0)
        filled = np.where(missing, col_mean, X)
    else:
        filled = X
    scale = filled.std(axis=0)
    scale[scale == 0] = 1.0
    Z = (filled - filled.mean(axis=0)) / scale
    # The nearest other row; duplicates are their own neighbour at distance 0,
    # which only means that row is copied where it swaps.
    nn = NearestNeighbors(n_neighbors=2).fit(Z)
    idx = nn.kneighbors(Z, return_distance=False)
    self_first = idx[:, 0] == np.arange(n)
    neighbour = np.where(self_first, idx[:, 1], idx[:, 0])
    discrete = np.array([_is_discrete(X[~missing[:, j], j]) for j in range(d)], dtype=bool)
    if categorical is not None:
        discrete |= np.asarray(categorical, dtype=bool)

    out = np.empty((total, d), dtype=dtype)
    done = 0
    while done < total:
        take = min(n, total - done)
        rows = np.arange(n) if take == n else np.sort(rng.choice(n, size=take, replace=False))
        e, other = X[rows], X[neighbour[rows]]
        moved = rng.random_sample((take, d)) < swap
        with np.errstate(invalid="ignore"):
            drawn = rng.normal(np.nan_to_num(other), np.nan_to_num(np.abs(e - other)) / spread)
        drawn = np.where(discrete, other, drawn)
        # A missing cell stays missing; a value does not move towards a missing one.
        moved &= ~np.isnan(e) & ~np.isnan(other)
        out[done : done + take] = np.where(moved, drawn, e)
        done += take
    return out


def _is_discrete(values):
    """Few distinct integer values (the observed ones of a column)."""
    return bool(np.all(values == np.round(values)) and np.unique(values).size <= DISCRETE_MAX_VALUES)
