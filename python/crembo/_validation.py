"""Argument checks shared by the public functions and estimators.

One style of parameter validation
---------------------------------
Estimators declare their parameters once, in a class attribute
``_parameter_constraints`` (as scikit-learn does): a dict from each
parameter name to a list of the constraints it may satisfy, any of

* ``None``: the value None;
* ``"boolean"``: True or False (Python or NumPy);
* ``"callable"``: any callable;
* a type: instances of it (``str``, an estimator base class, ...);
* :class:`Interval`: integers or real numbers in a range (bools are never
  numbers here; NaN is in no range);
* :class:`Options`: one of a few values (``"auto"``, ...);
* ``"no_validation"`` instead of a list: anything (checked where it is used,
  such as a teacher or a student).

:meth:`ParamsValidationMixin._validate_params` checks them all with one
function, :func:`validate_params`, before any data is touched; public
functions use the same constraints through :func:`check_param` and the
shorthands below (:func:`check_int`, :func:`check_fraction`,
:func:`check_real`, :func:`check_choice`).

The error convention is scikit-learn's: every invalid parameter raises
:class:`InvalidParameterError`, which is both a ``ValueError`` and a
``TypeError``, whether the fault is the type (a string where a number is
expected) or the value (a number out of range, an unknown option). The
message names the parameter, says what was expected (only the ranges of the
kind of number given, when it is one: ``"max_rounds: expected an integer >=
1, got 0"``) and repeats the value. Faults in data (arrays of the wrong
shape or dtype) keep their own ``ValueError``/``TypeError``; the native core
checks everything again.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from . import _native

#: Default tolerance on ``|sum_y p(y|x) - 1|`` for float64 beliefs.
ROW_SUM_TOL = 1e-6
#: Tolerance used for float32 beliefs (their sums are only that precise).
ROW_SUM_TOL_F32 = 1e-4

#: Devices of the native kernels; "auto" is the CPU for NumPy inputs (crembo._native.resolve_device).
DEVICES = ("cpu", "cuda", "auto")


def as_beliefs(beliefs: Any, *, name: str = "beliefs", normalize: bool = False, tol: float | None = None) -> np.ndarray:
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
    normalize : bool, default=False
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
    def array(self) -> np.ndarray:
        return self._array

    @property
    def shape(self) -> tuple:
        return self._array.shape

    @property
    def dtype(self) -> np.dtype:
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


def as_label_indices(pred: Any, n: int, n_classes: int, *, name: str = "pred") -> np.ndarray:
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


class InvalidParameterError(ValueError, TypeError):
    """A parameter of a wrong type or value (both a ``ValueError`` and a
    ``TypeError``, as in scikit-learn)."""


class Interval:
    """Numbers of one kind in a range.

    Parameters
    ----------
    kind : {"integer", "real", "real_not_int"}
        Integers (Python or NumPy, not bool), real numbers (integers
        included), or real numbers that are not integers.
    left, right : float or None
        The bounds; None: unbounded on that side.
    closed : {"both", "left", "right", "neither"}, default="both"
        Which bounds belong to the range.
    desc : str or None, default=None
        What the message says is expected (default: made from the bounds).
    """

    KINDS = ("integer", "real", "real_not_int")

    def __init__(self, kind: str, left=None, right=None, *, closed: str = "both", desc: str | None = None):
        if kind not in self.KINDS or closed not in ("both", "left", "right", "neither"):
            raise ValueError(f"Interval: bad kind {kind!r} or closed {closed!r}")
        self.kind, self.left, self.right, self.closed, self._desc = kind, left, right, closed, desc

    def has_kind(self, value: Any) -> bool:
        """True when ``value`` is a number of this interval's kind."""
        if isinstance(value, (bool, np.bool_)):
            return False
        if self.kind == "integer":
            return isinstance(value, numbers.Integral)
        if self.kind == "real_not_int":
            return isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral)
        return isinstance(value, numbers.Real)

    def __contains__(self, value) -> bool:
        if not self.has_kind(value) or float(value) != float(value):  # NaN is in no range
            return False
        lo_in = self.closed in ("both", "left")
        hi_in = self.closed in ("both", "right")
        if self.left is not None and not (value >= self.left if lo_in else value > self.left):
            return False
        return self.right is None or (value <= self.right if hi_in else value < self.right)

    def describe(self, value: Any = None) -> str:
        if self._desc is not None:
            return self._desc
        if self.kind == "integer":
            # The upper bound (often the native core's limit) is named only
            # to a value above it.
            above = self.right is not None and self.has_kind(value) and value > self.right
            if self.left is None or above:
                return (
                    f"an integer in [{self.left}, {self.right}]"
                    if self.left is not None
                    else f"an integer <= {self.right}"
                )
            return f"an integer >= {self.left}"
        lb = "[" if self.closed in ("both", "left") else "("
        hb = "]" if self.closed in ("both", "right") else ")"
        if self.right is None:
            return f"a number {'>=' if lb == '[' else '>'} {self.left}"
        if self.left is None:
            return f"a number {'<=' if hb == ']' else '<'} {self.right}"
        return f"a value in {lb}{self.left}, {self.right}{hb}"


class Options:
    """One of a few values (compared with ``==``; strings, mostly)."""

    def __init__(self, *values):
        self.values = tuple(values)

    def __contains__(self, value) -> bool:
        return any(isinstance(value, type(v)) and value == v for v in self.values)

    def describe(self, value: Any = None) -> str:
        return f"one of {', '.join(repr(v) for v in self.values)}"


def _satisfies(value, constraint) -> bool:
    if constraint is None:
        return value is None
    if isinstance(constraint, (Interval, Options)):
        return value in constraint
    if constraint == "boolean":
        return isinstance(value, (bool, np.bool_))
    if constraint == "callable":
        return callable(value)
    if isinstance(constraint, type):
        return isinstance(value, constraint)
    raise ValueError(f"unknown parameter constraint {constraint!r}")


def _describe(constraint, value=None) -> str:
    if constraint is None:
        return "None"
    if isinstance(constraint, (Interval, Options)):
        return constraint.describe(value)
    if constraint == "boolean":
        return "a bool"
    if constraint == "callable":
        return "a callable"
    return f"an instance of {constraint.__name__}"


def check_param(value: Any, name: str, constraints: Iterable) -> Any:
    """``value`` when it satisfies one of ``constraints``; else an
    :class:`InvalidParameterError` naming ``name``.

    When the value is a number of the kind of some interval but outside it,
    the message names only those intervals; otherwise every constraint.
    """
    if not isinstance(constraints, (list, tuple)):
        constraints = list(constraints)
    for c in constraints:
        if _satisfies(value, c):
            return value
    near = [c for c in constraints if isinstance(c, Interval) and c.has_kind(value)]
    listed = near or constraints
    parts = [_describe(c, value) for c in listed]
    expected = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]
    raise InvalidParameterError(f"{name}: expected {expected}, got {value!r}")


def validate_params(params: Mapping[str, Any], constraints: Mapping[str, Any]) -> None:
    """Check every parameter of ``params`` against its declared constraints
    (see the module's docstring); a parameter without a declaration is an
    error of the declaration, reported as such."""
    for name, value in params.items():
        if name not in constraints:
            raise RuntimeError(f"parameter {name!r} has no declared constraints")
        spec = constraints[name]
        if isinstance(spec, str) and spec == "no_validation":
            continue
        check_param(value, name, spec)


class ParamsValidationMixin:
    """``_validate_params()`` for estimators that declare
    ``_parameter_constraints`` (replaces scikit-learn's method of that name,
    which expects scikit-learn's own constraint objects).

    The declared parameters are read as attributes (``get_params`` inspects
    the signature, which costs more than the check in a tree refit thousands
    of times); the tests check that every estimator declares exactly the
    parameters of its ``__init__``.
    """

    _parameter_constraints: dict = {}

    def _validate_params(self) -> None:
        for name, spec in self._parameter_constraints.items():
            if not (isinstance(spec, str) and spec == "no_validation"):
                check_param(getattr(self, name), name, spec)


#: Constraints shared by many estimators.
N_JOBS = [None, Interval("integer", None, None, desc="an integer (joblib's n_jobs)")]
DEVICE = [Options(*DEVICES)]
BOOLEAN = ["boolean", Interval("integer", 0, 1)]  # True/False, or 0/1
VERBOSE = ["boolean", Interval("integer", 0, None)]
POSITIVE = Interval("real", 0.0, np.inf, closed="neither", desc="a positive number")


def check_fraction(
    value: Any,
    name: str,
    *,
    low: float = 0.0,
    high: float = 1.0,
    low_inclusive: bool = True,
    high_inclusive: bool = False,
) -> float:
    """``value`` as a float in the range from ``low`` to ``high`` (``[0, 1)``
    by default)."""
    closed = {(True, True): "both", (True, False): "left", (False, True): "right", (False, False): "neither"}
    check_param(value, name, [Interval("real", low, high, closed=closed[low_inclusive, high_inclusive])])
    return float(value)


#: Largest count the native core takes as a C int (rounds, classes, ...).
MAX_INT = 2**31 - 1
#: Largest size it takes as a 64-bit index (budgets, row counts).
MAX_INDEX = 2**63 - 1
#: Most classes a belief matrix may have (as many as a tree file may name):
#: a larger count asked for in a scalar would allocate n x C at once.
MAX_CLASSES = 2**24


def check_int(value: Any, name: str, *, minimum: int, maximum: int = MAX_INT, allow_none: bool = False) -> int | None:
    """``value`` as an int in ``[minimum, maximum]`` (None passes with
    ``allow_none``)."""
    constraints = [Interval("integer", minimum, maximum)]
    check_param(value, name, [None, *constraints] if allow_none else constraints)
    return None if value is None else int(value)


def check_positive_int(
    value: Any, name: str, *, minimum: int = 1, allow_none: bool = False, maximum: int = MAX_INT
) -> int | None:
    """``value`` as an int of at least ``minimum`` (>= 1); for counts that
    may be 0, use :func:`check_int` with ``minimum=0``."""
    if minimum < 1:
        raise ValueError(f"check_positive_int: minimum={minimum} is not positive; use check_int(minimum={minimum})")
    return check_int(value, name, minimum=minimum, maximum=maximum, allow_none=allow_none)


def check_real(value: Any, name: str, *, finite: bool = True) -> float:
    """``value`` as a float: a real number (Python or NumPy; not a bool, a
    string or a complex number), finite unless ``finite=False`` (NaN is
    refused either way)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise InvalidParameterError(f"{name}: expected a real number, got {value!r}")
    v = float(value)
    if np.isnan(v) or (finite and not np.isfinite(v)):
        raise InvalidParameterError(f"{name}: expected a {'finite ' if finite else ''}number, got {value!r}")
    return v


def check_choice(value: Any, name: str, choices: Iterable) -> Any:
    """``value`` when it is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise InvalidParameterError(f"{name}: expected one of {', '.join(repr(c) for c in choices)}, got {value!r}")
    return value


def check_device(device: str) -> str:
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


def seeded_clone(estimator: Any, seed: int | None) -> Any:
    """``clone(estimator)``, its ``random_state`` set to ``seed`` when it has
    one and it is None (so repeated fits are reproducible)."""
    from sklearn.base import clone

    est = clone(estimator)
    params = est.get_params(deep=False)
    if seed is not None and "random_state" in params and params["random_state"] is None:
        est.set_params(random_state=seed)
    return est


def seed_from(random_state: Any) -> int | None:
    """An int seed drawn from ``random_state`` (None stays None)."""
    if random_state is None:
        return None
    if isinstance(random_state, (numbers.Integral, np.integer)) and not isinstance(random_state, bool):
        return int(random_state)
    from sklearn.utils import check_random_state

    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def is_fitted(estimator: Any) -> bool:
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
