"""Argument checks shared by the public functions and estimators.

Every check raises ``ValueError``/``TypeError`` naming the argument and what
was expected, before any native code runs (the native core checks again).
"""

from __future__ import annotations

import numbers

import numpy as np

from . import _native

#: Default tolerance on ``|sum_y p(y|x) - 1|`` for float64 beliefs.
ROW_SUM_TOL = 1e-6
#: Tolerance used for float32 beliefs (their sums are only that precise).
ROW_SUM_TOL_F32 = 1e-4

#: Devices of the native kernels; "auto" is the CPU for NumPy inputs (crembo._native.resolve_device).
DEVICES = ("cpu", "cuda", "auto")


def as_beliefs(beliefs, *, name="beliefs", normalize=False, tol=None):
    """Return ``beliefs`` as a C-contiguous float32/float64 ``(n, C)`` array.

    float32 input stays float32; every other numeric dtype becomes float64.
    Pandas DataFrames are accepted. Rows must be finite, non-negative and sum
    to one within ``tol``; ``normalize=True`` rescales rows instead.
    """
    if isinstance(beliefs, Beliefs) and tol is None:
        return beliefs.array  # validated (or normalized) when it was made
    if hasattr(beliefs, "to_numpy"):
        beliefs = beliefs.to_numpy()
    arr = np.asarray(beliefs)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected a numeric array of real probabilities, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-d array of shape (n_samples, n_classes), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name}: expected a non-empty array, got shape {arr.shape}")
    # Kind and size, not equality: big-endian float32 stays float32 too.
    dtype = np.float32 if (arr.dtype.kind == "f" and arr.dtype.itemsize == 4) else np.float64
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if normalize:
        if not np.all(np.isfinite(arr)):
            bad = int(np.argwhere(~np.isfinite(arr))[0, 0])
            raise ValueError(f"{name}: row {bad} has a non-finite value (NaN or inf)")
        if np.any(arr < 0):
            bad = int(np.argwhere(arr < 0)[0, 0])
            raise ValueError(f"{name}: row {bad} has a negative value; beliefs are probabilities")
        return _named(name, _native.normalize_beliefs, arr)
    if tol is None:
        tol = ROW_SUM_TOL_F32 if dtype == np.float32 else ROW_SUM_TOL
    # One native pass checks finiteness, signs and row sums (multi-threaded);
    # its message names the first bad row.
    _named(name, _native.check_beliefs, arr, float(tol))
    return arr


def _named(name, fn, *args):
    """``fn(*args)``, its "beliefs:" error message renamed to ``name``."""
    try:
        return fn(*args)
    except ValueError as exc:
        raise ValueError(str(exc).replace("beliefs:", f"{name}:", 1)) from None


class Beliefs:
    """A belief matrix ``p(y|x)`` validated once.

    crembo's functions check every belief matrix they are given (one native
    pass over it: finite, non-negative, rows summing to one). Wrap a matrix
    that is used again and again, for example to score many students, and
    pass the wrapper instead: the functions then skip that pass.

    Parameters
    ----------
    beliefs : array-like of shape (n_samples, n_classes)
    normalize : bool, default False
        Rescale rows that do not sum to one instead of rejecting them.

    Attributes
    ----------
    array : ndarray
        The validated, C-contiguous float32 or float64 matrix, read-only. It
        may share memory with ``beliefs``: changing ``beliefs`` afterwards
        is not noticed, so validate again after changing it.
    """

    __slots__ = ("_array",)

    def __init__(self, beliefs, *, normalize=False):
        arr = as_beliefs(beliefs, normalize=normalize).view()
        arr.flags.writeable = False
        self._array = arr

    @property
    def array(self):
        return self._array

    @property
    def shape(self):
        return self._array.shape

    @property
    def dtype(self):
        return self._array.dtype

    def __len__(self):
        return self._array.shape[0]

    def __array__(self, dtype=None, copy=None):
        if dtype is None and not copy:
            return self._array
        return np.array(self._array, dtype=dtype, copy=True if copy is None else copy)

    def __repr__(self):
        n, C = self._array.shape
        return f"Beliefs({n} x {C}, {self._array.dtype})"


def as_label_indices(pred, n, n_classes, *, name="pred"):
    """Return integer labels in ``[0, n_classes)`` as a contiguous int32 array."""
    if hasattr(pred, "to_numpy"):
        pred = pred.to_numpy()
    arr = np.asarray(pred)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-d array of label indices, got shape {arr.shape}")
    if arr.shape[0] != n:
        raise ValueError(f"{name}: expected {n} labels (one per row of beliefs), got {arr.shape[0]}")
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise TypeError(f"{name}: expected integer label indices in [0, {n_classes}), got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= n_classes):
        bad = int(np.flatnonzero((arr < 0) | (arr >= n_classes))[0])
        raise ValueError(f"{name}[{bad}] = {arr[bad]} is outside the label range [0, {n_classes})")
    return np.ascontiguousarray(arr, dtype=np.int32)


def check_fraction(value, name, *, low=0.0, high=1.0, low_inclusive=True, high_inclusive=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise TypeError(f"{name}: expected a real number, got {value!r}")
    ok_low = value >= low if low_inclusive else value > low
    ok_high = value <= high if high_inclusive else value < high
    if not (ok_low and ok_high):
        lb = "[" if low_inclusive else "("
        hb = "]" if high_inclusive else ")"
        raise ValueError(f"{name}: expected a value in {lb}{low}, {high}{hb}, got {value!r}")
    return float(value)


#: Largest count the native core takes as a C int (rounds, classes, ...).
MAX_INT = 2**31 - 1
#: Largest size it takes as a 64-bit index (budgets, row counts).
MAX_INDEX = 2**63 - 1
#: Most classes a belief matrix may have (as many as a tree file may name):
#: a larger count asked for in a scalar would allocate n x C at once.
MAX_CLASSES = 2**24


def check_positive_int(value, name, *, minimum=1, allow_none=False, maximum=MAX_INT):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    if value > maximum:
        raise ValueError(f"{name}: expected an integer in [{minimum}, {maximum}], got {value!r}")
    return int(value)


def check_real(value, name, *, finite=True):
    """``value`` as a float: a real number (Python or NumPy; not a bool, a
    string or a complex number), finite unless ``finite=False`` (NaN is
    refused either way)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {value!r}")
    v = float(value)
    if np.isnan(v) or (finite and not np.isfinite(v)):
        raise ValueError(f"{name}: expected a {'finite ' if finite else ''}number, got {value!r}")
    return v


def check_choice(value, name, choices):
    if value not in choices:
        raise ValueError(f"{name}: expected one of {', '.join(repr(c) for c in choices)}, got {value!r}")
    return value


def check_device(device):
    """Validate ``device``, make sure the CUDA path exists when asked for, and
    return the device the kernels run on (``"auto"``: the CPU)."""
    if not (isinstance(device, str) and device in DEVICES):
        raise ValueError(
            f"device: expected one of 'cpu', 'cuda', got {device!r} (or 'auto', the default: where the inputs "
            "live, the CPU for NumPy arrays)"
        )
    device = _native.resolve_device(device)
    if device == "cuda":
        if not _native.cuda_built:
            raise ValueError(
                "device='cuda': this build of crembo has no CUDA kernels (rebuild with a CUDA compiler, CREMBO_CUDA=ON)"
            )
        if not _native.cuda_available():
            raise ValueError("device='cuda': no CUDA device is available on this machine")
    return device


def seeded_clone(estimator, seed):
    """``clone(estimator)``, its ``random_state`` set to ``seed`` when it has
    one and it is None (so repeated fits are reproducible)."""
    from sklearn.base import clone

    est = clone(estimator)
    params = est.get_params(deep=False)
    if seed is not None and "random_state" in params and params["random_state"] is None:
        est.set_params(random_state=seed)
    return est


def seed_from(random_state):
    """An int seed drawn from ``random_state`` (None stays None)."""
    if random_state is None:
        return None
    if isinstance(random_state, (numbers.Integral, np.integer)) and not isinstance(random_state, bool):
        return int(random_state)
    from sklearn.utils import check_random_state

    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def is_fitted(estimator):
    """True when ``estimator`` is fitted (objects that are not scikit-learn
    estimators, such as plain callables, count as ready to use)."""
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(estimator)
        return True
    except NotFittedError:
        return False
    except TypeError:  # not an estimator
        return True


class _DistillerDataMixin:
    """Input handling shared by the classifier and regressor distillers:
    the unlabelled rows, the view of X the teacher is given, and the rows
    given to the fitted student."""

    def _validate_unlabeled(self, X_unlabeled, X):
        """``X_unlabeled`` checked against the fitted columns (an empty slice of
        ``X`` when None); errors name the argument."""
        from sklearn.utils.validation import validate_data

        if X_unlabeled is None:
            return X[:0]
        try:
            return validate_data(self, X_unlabeled, reset=False, dtype=X.dtype)
        except ValueError as exc:
            raise ValueError(f"X_unlabeled: {exc}") from None

    def _teacher_view(self, X):
        """``X`` as the teacher expects it: with the column names it was given."""
        names = getattr(self, "feature_names_in_", None)
        if names is None:
            return X
        import pandas as pd  # feature names are only set when X was a DataFrame

        return pd.DataFrame(X, columns=names)

    def _student_input(self, X):
        """``X`` checked for prediction by the fitted student."""
        from sklearn.utils.validation import check_is_fitted, validate_data

        check_is_fitted(self, "student_")
        return validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
