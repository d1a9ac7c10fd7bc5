"""Checks for real tables: sample weights, unlabelled rows (``y == -1``) and
missing values, shared by the estimators.

* **Sample weights** are checked once (finite, non-negative, one per row,
  not all zero). A teacher that crembo fits gets them as they are; for the
  student they are rescaled to mean 1 over the rows of ``X``, so that
  multiplying every weight by the same factor changes nothing there, and
  rows that come without a weight (``X_unlabeled``, MUNGE's synthetic rows)
  weigh 1, the mean.
* **Unlabelled rows** follow scikit-learn's semi-supervised convention: a
  label of ``-1`` means "no label". Such rows join the transfer set (the
  teacher is asked about them) but are never a class, never fit the teacher
  and never score a student. (Labels that are exactly ``{-1, 1}`` are the
  binary "plus/minus one" coding: there ``-1`` is a class.)
* **Missing values** (NaN) reach the teacher and the student only when both
  say they accept them (scikit-learn's ``allow_nan`` input tag); otherwise
  the error names the first column with a missing value and the model that
  refuses it. A column with no value at all is refused outright: no model
  can learn from it, and MUNGE could not place synthetic values in it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import ArrayLike

__all__ = ["UNLABELED", "unlabeled_mask", "check_weights", "allows_nan", "check_missing"]

#: The label that marks a row without a label (scikit-learn's convention).
UNLABELED = -1


def unlabeled_mask(y: ArrayLike) -> np.ndarray:
    """Boolean mask of the rows of ``y`` labelled ``-1`` (numeric labels, or
    object arrays holding the integer -1; string labels have no such mark).

    One exception: when the labels are exactly ``{-1, 1}`` (the common
    "minus one, plus one" binary coding), ``-1`` is a class and no row is
    unlabelled; pass such rows in ``X_unlabeled`` instead.
    """
    y = np.asarray(y)
    if y.dtype.kind in "iuf":
        mask = y == UNLABELED
        rest = y[~mask]
    elif y.dtype.kind == "O":
        mask = np.array(
            [
                isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and v == UNLABELED
                for v in y
            ],
            dtype=bool,
        )
        rest = y[~mask]
    else:
        return np.zeros(y.shape, dtype=bool)
    if mask.any() and rest.size and all(v == 1 for v in np.unique(rest.astype(object))):
        return np.zeros(y.shape, dtype=bool)  # labels {-1, 1}: -1 is a class
    return mask


def check_weights(
    sample_weight: ArrayLike | None, n: int, labeled: np.ndarray | None = None, *, normalize: bool = True
) -> np.ndarray | None:
    """``sample_weight`` as float64 weights of mean 1 (as given when
    ``normalize`` is false), or None.

    Raises ValueError naming ``sample_weight`` when it is not one finite,
    non-negative number per row, or when the labelled rows (``labeled``, a
    mask; all rows when None) weigh nothing in total.
    """
    if sample_weight is None:
        return None
    if hasattr(sample_weight, "to_numpy"):
        sample_weight = sample_weight.to_numpy()
    w = np.asarray(sample_weight)
    if w.ndim == 0:  # a scalar: every row weighs the same
        w = np.full(n, w)
    if w.ndim != 1 or w.shape[0] != n:
        raise ValueError(f"sample_weight: expected {n} weights (one per row of X), got shape {w.shape}")
    if w.dtype == bool or w.dtype.kind not in "iuf":
        raise ValueError(f"sample_weight: expected real numbers, got dtype {w.dtype}")
    w = np.asarray(w, dtype=np.float64)
    if not np.all(np.isfinite(w)):
        bad = int(np.flatnonzero(~np.isfinite(w))[0])
        raise ValueError(f"sample_weight[{bad}] = {w[bad]}: weights must be finite (no NaN or inf)")
    if np.any(w < 0):
        bad = int(np.flatnonzero(w < 0)[0])
        raise ValueError(f"sample_weight[{bad}] = {w[bad]}: weights must be non-negative")
    lab = w if labeled is None else w[labeled]
    if lab.size == 0 or not np.any(lab > 0):
        raise ValueError("sample_weight: every labelled row has weight zero; there is nothing to learn from")
    return w / w.mean() if normalize else w


def allows_nan(estimator: Any) -> bool:
    """True when scikit-learn's tags say ``estimator`` accepts NaN in X
    (False when it has no tags)."""
    from sklearn.utils import get_tags

    try:
        return bool(get_tags(estimator).input_tags.allow_nan)
    except Exception:  # not a scikit-learn estimator
        return False


def _column_name(j, names):
    return f"column {j}" if names is None else f"column {j} ({names[j]!r})"


def check_missing(
    X: ArrayLike, models: Sequence[tuple[str, Any]], names: Sequence[str] | None = None, *, what: str = "X"
) -> None:
    """Raise unless every model accepts the missing values of ``X``.

    ``models`` is a list of ``(role, estimator or None)``; None means "does
    not look at X" or "cannot tell" (a plain callable) and passes. The error
    names the first column with a missing value and the first model that
    refuses NaN. A column with no value at all is always an error.
    """
    X = np.asarray(X)
    if X.size == 0 or X.dtype.kind != "f":
        return
    missing = np.isnan(X)
    if not missing.any():
        return
    col_missing = missing.any(axis=0)
    empty = np.flatnonzero(missing.all(axis=0))
    if empty.size and X.shape[0] > 0:
        raise ValueError(
            f"{what}: {_column_name(int(empty[0]), names)} has no value at all (every entry is "
            "missing); drop it, there is nothing to learn from it"
        )
    j = int(np.flatnonzero(col_missing)[0])
    for role, est in models:
        if est is not None and not allows_nan(est):
            raise ValueError(
                f"{what}: {_column_name(j, names)} has missing values (NaN), which the {role} "
                f"({type(est).__name__}) does not accept; impute them first (for example "
                "sklearn.impute.SimpleImputer in a Pipeline) or use a teacher and a student that "
                "handle missing values (HistGradientBoostingClassifier, HistTreeClassifier)"
            )
