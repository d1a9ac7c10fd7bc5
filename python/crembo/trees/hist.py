"""Histogram decision trees: ``HistTreeClassifier`` and ``BinnedData``.

CREMBO and MEMO fit the same student many times on the same ``X`` with
different targets. ``BinnedData`` bins ``X`` once (up to 255 quantile bins
per feature plus one for missing values, one byte per value); a
``HistTreeClassifier`` fitted on it (``fit(binned, y)``) skips the binning,
and a row subset (``binned.take(rows)``) costs a gather of the bytes, so a
refit costs only its histogram passes. Fitted on a raw array, the tree bins
it first.

The tree learns either labels (``fit``) or sets of allowed labels
(``fit_allowed``: an ``n x C`` boolean matrix, the targets of MEMO and
CREMBO at a threshold). With sets, a leaf predicts the label of greatest
allowed weight, and the split criterion is one of

* ``"gini"``: Gini over the classes' allowed masses -- the criterion of the
  paper's multi-output tree (one binary "c is allowed" output per class),
  learned in one pass instead of C outputs;
* ``"coverage"``: the weight of points whose allowed set contains the
  child's best label (the weight the split makes consistent), Gini breaking
  ties;
* ``"spread_gini"``: Gini after each point spreads its weight evenly over
  its allowed labels.

The default ``"auto"`` uses ``"coverage"`` for sets (it gave the most
accurate CREMBO students on average in bench/bench_tree.py) and Gini for
labels.

With single labels ``"gini"`` and ``"spread_gini"`` are scikit-learn's Gini.
Feature values are compared as float32 and splits sit midway between the
values either side, as in scikit-learn's exact tree, so on features with at
most 255 distinct values and no ties between candidate splits the tree is
scikit-learn's ``DecisionTreeClassifier`` (same splits, thresholds and node
numbering). The fitted tree is exposed as flat arrays in ``tree_`` with
scikit-learn's names, for exporters.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_array, check_is_fitted, column_or_1d, validate_data

from .. import _native
from .._deprecation import warn_renamed
from .._validation import MAX_INT, Interval, Options, ParamsValidationMixin, check_int

__all__ = [
    "BinnedData",
    "HistTree",
    "HistTreeClassifier",
    "tree_student",
    "resolve_student",
    "release_buffers",
    "CRITERIA",
]

CRITERIA = ("auto", "gini", "coverage", "spread_gini")

#: Most value bins per feature (one more bin holds missing values).
MAX_BINS = 255

#: Category codes are integers in [0, MAX_CATEGORY].
MAX_CATEGORY = 255


def _is_category_like(dtype):
    """pandas categorical, object or string dtypes (what "from_dtype" reads
    as categorical)."""
    import pandas as pd

    return (
        isinstance(dtype, pd.CategoricalDtype)
        or getattr(dtype, "kind", None) == "O"
        or pd.api.types.is_string_dtype(dtype)
    )


def _is_frame(X):
    return hasattr(X, "columns") and hasattr(X, "dtypes") and hasattr(X, "iloc")


def _encode_categories(X, mask, categories, max_bins):
    """``X`` as a float64 array whose categorical columns (``mask``) hold
    codes: a DataFrame column of categorical, object or string dtype becomes
    the index of its value in its categories (``categories[j]``; learnt here
    when ``categories`` is None: the dtype's categories, else the sorted
    values seen), a numeric column must already hold integer codes in
    [0, 255]. Missing values stay NaN; a value outside the known categories
    (only at predict time) becomes -1, which every split sends right.
    Returns (array, categories)."""
    import pandas as pd

    fit = categories is None
    frame = (
        X
        if _is_frame(X)
        else pd.DataFrame(np.asarray(X, dtype=object) if np.asarray(X).dtype.kind in "OUS" else np.asarray(X))
    )
    n, d = frame.shape
    if mask.shape[0] != d:
        raise ValueError(f"X has {d} features, but the categorical mask has {mask.shape[0]}")
    out = np.empty((n, d), dtype=np.float64)
    cats = [None] * d if fit else list(categories)
    for j in range(d):
        col = frame.iloc[:, j]
        label = f"column {j}" + (f" ({frame.columns[j]!r})" if _is_frame(X) else "")
        if not mask[j]:
            try:
                out[:, j] = np.asarray(col, dtype=np.float64)
            except (TypeError, ValueError):
                raise ValueError(
                    f"X: {label} is not numeric; declare it in categorical_features (or give it a "
                    "pandas categorical dtype)"
                ) from None
            continue
        missing = np.asarray(pd.isna(col))
        if _is_category_like(col.dtype) or (not fit and cats[j] is not None):
            if fit:
                if isinstance(col.dtype, pd.CategoricalDtype):
                    cats[j] = list(col.dtype.categories)
                else:
                    cats[j] = sorted(pd.unique(col[~missing]).tolist(), key=lambda v: (str(type(v)), v))
                if len(cats[j]) > min(max_bins, MAX_CATEGORY + 1):
                    raise ValueError(
                        f"X: {label} has {len(cats[j])} categories; at most max_bins={max_bins} are supported"
                    )
            codes = pd.Index(cats[j]).get_indexer(pd.Index(np.asarray(col, dtype=object))).astype(np.float64)
        else:
            try:
                codes = np.asarray(col, dtype=np.float64).copy()
            except (TypeError, ValueError):
                raise ValueError(
                    f"X: {label} is categorical with non-numeric values that were numeric at fit time"
                ) from None
            ok = ~missing
            valid = (codes == np.round(codes)) & (codes >= 0) & (codes <= MAX_CATEGORY)
            if fit:
                if np.any(ok & ~valid):
                    raise ValueError(
                        f"X: {label} is categorical and must hold integer codes in [0, {MAX_CATEGORY}] "
                        "(or NaN for missing), or be a pandas categorical/string column"
                    )
                if np.unique(codes[ok]).size > max_bins:
                    raise ValueError(f"X: {label} has more than max_bins={max_bins} categories")
            else:
                codes[ok & ~valid] = -1.0  # unknown codes go right
        codes[missing] = np.nan
        out[:, j] = codes
    return out, cats


def _check_numeric_columns(X, mask):
    """Raise when a DataFrame column that is not declared categorical is not numeric."""
    if not _is_frame(X):
        return
    import pandas as pd

    for j, dtype in enumerate(X.dtypes):
        if (mask is None or not mask[j]) and not (
            pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)
        ):
            raise ValueError(
                f"X: column {j} ({X.columns[j]!r}) is not numeric; declare it in categorical_features "
                "(or give it a pandas categorical dtype with categorical_features='from_dtype')"
            )


def categorical_mask(spec: Any, X: Any, n_features: int, *, name: str = "categorical_features") -> np.ndarray | None:
    """The boolean mask of categorical columns that ``spec`` names for ``X``
    (None, "from_dtype", a boolean mask, column indices or, for a DataFrame,
    column names); None when no column is categorical."""
    d = n_features
    if spec is None:
        mask = np.zeros(d, dtype=bool)
    elif isinstance(spec, str):
        if spec != "from_dtype":
            raise ValueError(
                f"{name}: expected None, 'from_dtype', a boolean mask, indices or column names, got {spec!r}"
            )
        mask = (
            np.array([_is_category_like(t) for t in X.dtypes], dtype=bool) if _is_frame(X) else np.zeros(d, dtype=bool)
        )
    else:
        arr = np.asarray(spec)
        if arr.ndim != 1:
            raise ValueError(f"{name}: expected a 1-d mask, indices or names, got shape {arr.shape}")
        if arr.dtype == bool:
            if arr.shape[0] != d:
                raise ValueError(f"{name}: a boolean mask needs {d} values (one per feature), got {arr.shape[0]}")
            mask = arr.copy()
        elif arr.size == 0:
            mask = np.zeros(d, dtype=bool)
        elif arr.dtype.kind in "iu":
            if arr.min() < -d or arr.max() >= d:
                raise ValueError(f"{name}: index out of range for {d} features: {arr.tolist()}")
            mask = np.zeros(d, dtype=bool)
            mask[arr] = True
        elif arr.dtype.kind in "UO":
            if not _is_frame(X):
                raise ValueError(f"{name}: column names need X to be a DataFrame with those columns")
            cols = [str(c) for c in X.columns]
            missing = [c for c in arr if str(c) not in cols]
            if missing:
                raise ValueError(f"{name}: no column named {missing[0]!r} in X")
            mask = np.array([c in set(map(str, arr)) for c in cols], dtype=bool)
        else:
            raise ValueError(f"{name}: expected a boolean mask, integer indices or column names, got dtype {arr.dtype}")
    return mask if mask.any() else None


def _threads(n_threads, name="n_threads"):
    if n_threads is None:
        return 0
    if isinstance(n_threads, bool) or not isinstance(n_threads, numbers.Integral) or n_threads < 1:
        raise ValueError(f"{name}: expected None or an integer >= 1, got {n_threads!r}")
    return int(n_threads)


#: Marks ``HistTreeClassifier(n_threads=...)`` as not given (it is deprecated).
_DEPRECATED = "deprecated"


def _encode_labels(y):
    """(sorted distinct labels, int32 index of each label): np.unique's
    answer, without its sort for small non-negative integer labels (the
    common case in MEMO and CREMBO's many fits), and without a lookup when
    those labels are already 0, 1, ..., C - 1 (each present)."""
    if y.dtype.kind in "iu" and y.size and y.min() >= 0 and y.max() < 4 * y.size + 1024:
        present = np.bincount(y) > 0
        if present.all():  # the labels are their own indices
            return np.arange(present.size).astype(y.dtype), np.ascontiguousarray(y, dtype=np.int32)
        classes = np.flatnonzero(present).astype(y.dtype)
        lookup = np.cumsum(present) - 1
        return classes, np.ascontiguousarray(lookup[y], dtype=np.int32)
    classes, idx = np.unique(y, return_inverse=True)
    return classes, np.ascontiguousarray(idx.reshape(-1), dtype=np.int32)


def _int_param(value, name, minimum, allow_none=False, maximum=MAX_INT):
    # The native tree takes these as C ints: a larger value is refused here,
    # not by pybind11's "incompatible function arguments".
    return check_int(value, name, minimum=minimum, maximum=maximum, allow_none=allow_none)


class BinnedData:
    """``X`` binned once, for many tree fits.

    Each feature gets up to ``max_bins`` bins of about equal row counts (one
    bin per distinct value when it has at most ``max_bins`` of them) and one
    more bin for missing values (NaN). Values are read as float32, like
    scikit-learn's trees.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        float32 or float64 (other numbers are converted); NaN marks a missing
        value, infinities are refused. Read in place whatever its memory order.
    max_bins : int in [2, 255], default=255
        Value bins per feature.
    subsample : int, default=200_000
        Rows that place the bin edges when ``X`` has more (a uniform sample);
        every row is binned either way.
    random_state : int, default=0
        Seeds that sample.
    n_jobs : int or None, default=None
        Threads (over features); None uses ``crembo``'s default.
    n_threads : int or None
        Deprecated alias of ``n_jobs`` (a :class:`CremboDeprecationWarning`
        when given).

    Attributes
    ----------
    n_samples : int
        Rows of this view (``len(binned)``).
    n_features : int
    n_bins : ndarray of shape (n_features,)
        Value bins of each feature.

    Notes
    -----
    ``take(rows)`` returns a view on a subset of the rows that shares the
    bins; fitting on it is fitting on those rows of ``X``.
    """

    def __init__(
        self,
        X: ArrayLike,
        *,
        max_bins: int = MAX_BINS,
        subsample: int = 200_000,
        random_state: int = 0,
        n_jobs: int | None = None,
        n_threads: int | None | str = _DEPRECATED,
    ) -> None:
        if not (isinstance(n_threads, str) and n_threads == _DEPRECATED):
            warn_renamed("BinnedData", "n_threads", "n_jobs")
            n_jobs = n_threads
        max_bins = _int_param(max_bins, "max_bins", 2)
        if max_bins > MAX_BINS:
            raise ValueError(f"max_bins: expected an integer in [2, {MAX_BINS}], got {max_bins}")
        subsample = _int_param(subsample, "subsample", 1)
        seed = _int_param(random_state, "random_state", 0)
        X = check_array(X, dtype=[np.float64, np.float32], ensure_all_finite="allow-nan", order=None, input_name="X")
        self.max_bins = max_bins
        self.n_features = X.shape[1]
        self._codes, self.n_bins, self._lo, self._hi = _native.hist_bin(
            X, max_bins, subsample, seed, _threads(n_jobs, "n_jobs")
        )
        self._rows = None
        self.n_samples = X.shape[0]

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_samples, self.n_features)

    def __len__(self):
        return self.n_samples

    def __repr__(self):
        return f"BinnedData(n_samples={self.n_samples}, n_features={self.n_features}, max_bins={self.max_bins})"

    @property
    def rows(self) -> np.ndarray | None:
        """Indices of this view's rows in the binned ``X`` (None: all, in order)."""
        return self._rows

    def take(self, rows: ArrayLike) -> BinnedData:
        """A view on some rows (indices, or a boolean mask over this view's rows)."""
        rows = np.asarray(rows)
        if rows.dtype == bool:
            if rows.shape != (self.n_samples,):
                raise ValueError(f"rows: a boolean mask needs {self.n_samples} values, got shape {rows.shape}")
            rows = np.flatnonzero(rows)
        elif rows.ndim != 1 or (rows.size and not np.issubdtype(rows.dtype, np.integer)):
            raise ValueError("rows: expected a 1-d array of row indices or a boolean mask")
        rows = rows.astype(np.int64, copy=False)
        if rows.size and (rows.min() < -self.n_samples or rows.max() >= self.n_samples):
            raise IndexError(f"rows: index out of range for {self.n_samples} rows")
        rows = np.where(rows < 0, rows + self.n_samples, rows)
        view = object.__new__(BinnedData)
        view.__dict__.update(self.__dict__)
        view._rows = np.ascontiguousarray(rows if self._rows is None else self._rows[rows])
        view.n_samples = int(rows.shape[0])
        return view


class HistTree:
    """A fitted tree as flat arrays, named and laid out like scikit-learn's
    ``Tree`` (``sklearn.tree._tree.Tree``): node 0 is the root; a leaf has
    ``children_left == children_right == -1`` and ``feature == threshold ==
    -2``. Row ``x`` goes left at node ``k`` when ``float32(x[feature[k]]) <=
    threshold[k]`` (threshold in raw feature units), and a NaN goes left
    when ``missing_go_to_left[k]``. ``value[k, 0]`` holds the node's class
    shares (for allowed sets, its classes' allowed masses, normalized).
    ``split_bin[k]``: the bin codes that go left are those ``<= split_bin[k]``
    in the ``BinnedData`` the tree was fitted on.
    """

    def __init__(self, arrays, n_features, n_classes):
        self.children_left = arrays["children_left"]
        self.children_right = arrays["children_right"]
        self.feature = arrays["feature"]
        self.threshold = arrays["threshold"]
        self.missing_go_to_left = arrays["missing_go_to_left"]
        self.split_bin = arrays["split_bin"]
        self.value = arrays["value"]
        self.n_node_samples = arrays["n_node_samples"]
        self.weighted_n_node_samples = arrays["weighted_n_node_samples"]
        self.impurity = arrays["impurity"]
        self.max_depth = int(arrays["max_depth"])
        n = self.children_left.shape[0]
        self.is_categorical = np.asarray(arrays.get("is_categorical", np.zeros(n, dtype=np.uint8)), dtype=bool)
        self.cat_left = np.asarray(arrays.get("cat_left", np.zeros((n, 4), dtype=np.uint64)), dtype=np.uint64)
        self.n_features = int(n_features)
        self.n_classes = np.array([n_classes], dtype=np.intp)
        self.n_outputs = 1
        self.max_n_classes = int(n_classes)
        # Each node's predicted class index (first of the largest shares).
        self.node_class = np.argmax(self.value[:, 0, :], axis=1).astype(np.intp)

    @property
    def node_count(self) -> int:
        return int(self.children_left.shape[0])

    @property
    def capacity(self) -> int:
        return self.node_count

    @property
    def n_leaves(self) -> int:
        return int(np.sum(self.children_left == -1))

    def apply(
        self, X: np.ndarray, n_jobs: int | None = None, *, n_threads: int | None | str = _DEPRECATED
    ) -> np.ndarray:
        """Leaf index reached by each row of ``X`` (a validated 2-d array),
        walked by the native FastTree (the same float32 comparison, NaN to the
        stored side), built on first use. ``n_jobs``: threads over rows (None
        or 0: crembo's default); ``n_threads`` is its deprecated alias."""
        if not (isinstance(n_threads, str) and n_threads == _DEPRECATED):
            warn_renamed("HistTree.apply", "n_threads", "n_jobs")
            n_jobs = n_threads
        if self.__dict__.get("is_categorical") is not None and self.is_categorical.any():
            return self._apply_categorical(X)
        fast = self.__dict__.get("_fast")
        if fast is None:
            fast = self._fast = _native.FastTree(
                children_left=self.children_left,
                children_right=self.children_right,
                feature=self.feature,
                threshold=self.threshold,
                leaf_class=self.node_class.astype(np.int32),
                proba=np.ascontiguousarray(self.value[:, 0, :]),
                n_features=self.n_features,
                classes=np.arange(self.max_n_classes),
                missing_go_to_left=self.missing_go_to_left,
            )
        return fast.apply(X, 0 if n_jobs is None else n_jobs)

    def fitted_on(self, binned: BinnedData) -> bool:
        """True when ``binned`` (a ``BinnedData`` or a ``take`` of one)
        holds the bins this tree was fitted with, in this process (the link
        is not pickled)."""
        return isinstance(binned, BinnedData) and self.__dict__.get("_bin_lo") is binned._lo

    def apply_binned(self, binned: BinnedData, X: np.ndarray, n_jobs: int | None = None) -> np.ndarray:
        """Leaf index reached by each row of ``binned`` (a ``BinnedData`` or
        a ``take`` of one), ``X`` being the array that was binned into it
        (every row, before any ``take``): the leaves ``apply`` gives on those
        rows of ``X``, found from the rows' one-byte bin codes. A code
        decides a split unless its bin holds values on both sides of the
        threshold; then the row's value in ``X`` does."""
        if not isinstance(binned, BinnedData):
            raise TypeError(f"binned: expected a BinnedData, got {type(binned).__name__}")
        categorical = self.is_categorical.any()
        return _native.hist_leaves(
            binned._codes,
            binned.n_bins,
            binned._lo,
            binned._hi,
            binned._rows,
            X,
            self.children_left,
            self.children_right,
            self.feature,
            self.threshold,
            self.missing_go_to_left,
            self.is_categorical.astype(np.uint8) if categorical else None,
            self.cat_left if categorical else None,
            _threads(n_jobs, "n_jobs"),
        )

    def goes_left(self, node: ArrayLike, values: ArrayLike) -> np.ndarray:
        """Whether ``values`` (of the node's feature) go left at split nodes
        ``node`` (arrays of equal length): the rule of ``apply``."""
        node = np.asarray(node)
        v = np.asarray(values, dtype=np.float64)
        miss = np.isnan(v)
        with np.errstate(invalid="ignore"):
            numeric = np.asarray(v, dtype=np.float32).astype(np.float64) <= self.threshold[node]
            known = ~miss & (v >= 0) & (v <= 255) & (v == np.round(v))
        code = np.where(known, v, 0).astype(np.int64)
        bit = (self.cat_left[node, code >> 6] >> (code & 63).astype(np.uint64)) & np.uint64(1)
        categorical = known & (bit == 1)
        left = np.where(self.is_categorical[node], categorical, numeric)
        return np.where(miss, self.missing_go_to_left[node].astype(bool), left)

    def _apply_categorical(self, X):
        """Leaves reached through category-subset splits (a NumPy walk, level
        by level; FastTree has numeric splits only)."""
        X = np.asarray(X)
        node = np.zeros(X.shape[0], dtype=np.intp)
        for _ in range(self.max_depth + 1):
            rows = np.flatnonzero(self.children_left[node] >= 0)
            if rows.size == 0:
                break
            nd = node[rows]
            left = self.goes_left(nd, X[rows, self.feature[nd]])
            node[rows] = np.where(left, self.children_left[nd], self.children_right[nd])
        return node

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_fast", None)  # rebuilt on first use after unpickling
        state.pop("_bin_lo", None)  # the bins it was fitted with live in this process only
        return state


class HistTreeClassifier(ParamsValidationMixin, ClassifierMixin, BaseEstimator):
    """Histogram decision tree for labels and for sets of allowed labels.

    Features are binned once (see ``BinnedData``; pass one to ``fit`` to
    reuse it across fits); splits are found from per-feature histograms of
    the target mass, each child's histogram being its parent's minus its
    sibling's. Missing values (NaN) go down the side that scores better (to
    the child with more rows when the node saw none).

    Parameters
    ----------
    criterion : {"auto", "gini", "coverage", "spread_gini"}, default="auto"
        Split criterion. With labels, "gini" and "spread_gini" are Gini and
        "coverage" is the weight of correctly classified points with Gini
        breaking ties. With allowed-label sets (``fit_allowed``) see the
        module notes. "auto": "gini" for labels (scikit-learn's tree),
        "coverage" for allowed sets (the most accurate CREMBO students in
        our measurements, docs/hist_tree.md).
    max_depth : int or None, default=None
        Deepest level of a node (the root is level 0); None: unlimited.
    min_samples_split : int >= 2, default=2
        A node with fewer rows is a leaf.
    min_samples_leaf : int >= 1, default=1
        Fewest rows in a child.
    min_weight_fraction_leaf : float in [0, 0.5], default=0.0
        Least weight of a child, as a share of the total (class-weighted)
        weight.
    max_leaf_nodes : int >= 2 or None, default=None
        When set, the tree grows best first (the split of largest criterion
        gain next) up to this many leaves.
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, multiplied into ``sample_weight``.
        "balanced": ``n / (C * count(c))`` with ``count(c)`` the rows labelled
        ``c`` (with allowed sets: the rows allowing ``c``).
    max_bins : int in [2, 255], default=255
        Value bins per feature when ``fit`` bins ``X`` itself.
    n_jobs : int or None, default=None
        Threads over features (large nodes only) and rows (prediction); None:
        ``crembo``'s default. The GIL is released throughout.
    n_threads : int or None
        Deprecated alias of ``n_jobs`` (a :class:`CremboDeprecationWarning`,
        both a DeprecationWarning and a FutureWarning, when given); it wins
        over ``n_jobs`` when both are set.
    categorical_features : None, "from_dtype", bool mask, indices or names, default="from_dtype"
        Features split by category subsets (a set of categories goes left)
        instead of thresholds. "from_dtype": the columns of a pandas
        DataFrame of categorical, object or string dtype. In a numeric array
        a categorical feature holds integer codes in [0, 255] (NaN: missing).
        At most ``max_bins`` categories per feature. Subsets are found by
        ordering a node's categories by their share of one class and cutting
        that order like numeric values: the best Gini subset for two
        classes; with more classes one order per class is tried and the best
        cut kept (a heuristic). A missing value goes to the side learned for
        missing values (the larger child when the node saw none); a category
        the node did not see at fit time (unknown codes and categories new at
        predict time included) goes right.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_classes_ : int
    n_features_in_ : int
    n_outputs_ : int
        Always 1.
    tree_ : HistTree
        The fitted tree as flat arrays (scikit-learn's names).
    fitted_on_allowed_ : bool
        True when fitted by ``fit_allowed``.
    is_categorical_ : ndarray of bool, shape (n_features,), or None
        The categorical features (None: none).
    categories_ : list or None
        Per feature, the categories of a DataFrame column whose codes the
        tree splits on (None for numeric and integer-coded features).
    """

    def __init__(
        self,
        *,
        criterion="auto",
        max_depth=None,
        min_samples_split=2,
        min_samples_leaf=1,
        min_weight_fraction_leaf=0.0,
        max_leaf_nodes=None,
        class_weight=None,
        max_bins=MAX_BINS,
        n_jobs=None,
        n_threads=_DEPRECATED,
        categorical_features="from_dtype",
    ):
        self.criterion = criterion
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.min_weight_fraction_leaf = min_weight_fraction_leaf
        self.max_leaf_nodes = max_leaf_nodes
        self.class_weight = class_weight
        self.max_bins = max_bins
        self.n_jobs = n_jobs
        self.n_threads = n_threads
        self.categorical_features = categorical_features

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    # ---------------------------------------------------------------- checks
    def _n_threads(self):
        """The native thread count (0: crembo's default) from ``n_jobs``, or
        from the deprecated ``n_threads`` when given."""
        if isinstance(self.n_threads, str) and self.n_threads == _DEPRECATED:
            return _threads(self.n_jobs, "n_jobs")
        warn_renamed("HistTreeClassifier", "n_threads", "n_jobs", stacklevel=3)
        return _threads(self.n_threads)

    #: The parameters, declared once (see :mod:`crembo._validation`); the
    #: native tree takes the counts as C ints, so larger values are refused
    #: here, not by pybind11.
    _parameter_constraints: dict = {
        "criterion": [Options(*CRITERIA)],
        "max_depth": [None, Interval("integer", 1, MAX_INT)],
        "min_samples_split": [Interval("integer", 2, MAX_INT)],
        "min_samples_leaf": [Interval("integer", 1, MAX_INT)],
        "min_weight_fraction_leaf": [Interval("real", 0.0, 0.5)],
        "max_leaf_nodes": [None, Interval("integer", 2, MAX_INT)],
        "class_weight": [None, Options("balanced"), dict],
        "max_bins": [Interval("integer", 2, MAX_BINS)],
        "n_jobs": "no_validation",  # checked with the deprecated n_threads by _n_threads()
        "n_threads": "no_validation",
        "categorical_features": "no_validation",  # checked against X by categorical_mask()
    }

    def _check_params(self, allowed=False):
        """The native tree's options, once the parameters are checked."""
        self._validate_params()
        criterion = self.criterion
        if criterion == "auto":
            criterion = "coverage" if allowed else "gini"
        return dict(
            criterion=criterion,
            max_depth=-1 if self.max_depth is None else int(self.max_depth),
            min_samples_split=int(self.min_samples_split),
            min_samples_leaf=int(self.min_samples_leaf),
            min_weight_fraction_leaf=float(self.min_weight_fraction_leaf),
            max_leaf_nodes=-1 if self.max_leaf_nodes is None else int(self.max_leaf_nodes),
            n_threads=self._n_threads(),
        )

    def bin_data(self, X: ArrayLike) -> BinnedData:
        """``BinnedData`` of ``X`` with this tree's ``max_bins``: pass it to
        ``fit`` / ``fit_allowed`` (or a ``take`` of it) instead of ``X``."""
        return BinnedData(X, max_bins=self.max_bins, n_jobs=self._n_threads() or None)

    def _binned_input(self, X, y=None):
        """``fit``'s ``X`` as BinnedData (and ``y`` validated with it when
        given); sets the categorical attributes."""
        self.is_categorical_, self.categories_ = None, None
        if isinstance(X, BinnedData):
            if hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
            self.n_features_in_ = X.n_features
            spec = self.categorical_features
            if not (isinstance(spec, str) and spec == "from_dtype"):
                self.is_categorical_ = categorical_mask(spec, None, X.n_features)
            if self.is_categorical_ is not None:
                self.categories_ = [None] * X.n_features  # the bins hold the codes themselves
            self._check_binned_categories(X)
            return X if y is None else (X, y)
        frame = X
        mask = None
        if _is_frame(X):
            mask = categorical_mask(self.categorical_features, X, X.shape[1])
            _check_numeric_columns(X, mask)
        elif self.categorical_features is not None:
            shape = np.shape(X) if hasattr(X, "shape") else np.shape(np.asarray(X, dtype=object))
            if len(shape) == 2:
                mask = categorical_mask(self.categorical_features, None, shape[1])
        if mask is not None:
            X, self.categories_ = _encode_categories(X, mask, None, self.max_bins)
        if y is None:
            X = validate_data(
                self, X, dtype=[np.float64, np.float32], ensure_all_finite="allow-nan", ensure_min_samples=1
            )
        else:
            X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], ensure_all_finite="allow-nan")
        if mask is not None:
            self.is_categorical_ = mask
            if _is_frame(frame):
                validate_data(self, frame, reset=True, skip_check_array=True)  # the DataFrame's column names
        binned = self.bin_data(X)
        return binned if y is None else (binned, y)

    def _check_binned_categories(self, binned):
        """Each categorical feature's bins must hold one integer code each."""
        if self.is_categorical_ is None:
            return
        for j in np.flatnonzero(self.is_categorical_):
            nb = int(binned.n_bins[j])
            lo, hi = binned._lo[j, :nb], binned._hi[j, :nb]
            if np.any(lo != hi) or np.any(lo != np.round(lo)) or np.any(lo < 0) or np.any(lo > MAX_CATEGORY):
                raise ValueError(
                    f"categorical_features: feature {j} must hold integer codes in [0, {MAX_CATEGORY}] "
                    f"with at most max_bins={self.max_bins} distinct values"
                )

    def _categorical_arg(self):
        m = getattr(self, "is_categorical_", None)
        return None if m is None else np.ascontiguousarray(m, dtype=np.uint8)

    def _weights(self, sample_weight, n):
        if sample_weight is None:
            return None
        w = _check_sample_weight(sample_weight, np.empty((n, 0)), dtype=np.float64, ensure_non_negative=True)
        return np.ascontiguousarray(w, dtype=np.float64)

    def _class_weight_vector(self, classes, counts, n_rows):
        cw = self.class_weight
        if cw is None:
            return None
        if isinstance(cw, str):  # "balanced"
            present = counts > 0
            out = np.zeros(len(classes), dtype=np.float64)
            out[present] = n_rows / (present.sum() * counts[present])
            return out
        out = np.ones(len(classes), dtype=np.float64)
        for label, weight in cw.items():
            hit = np.flatnonzero(classes == label)
            if hit.size == 0:
                raise ValueError(f"class_weight: class {label!r} is not among the classes {classes.tolist()}")
            if not (np.isfinite(weight) and weight >= 0):
                raise ValueError(f"class_weight[{label!r}]: expected a finite, non-negative weight, got {weight!r}")
            out[hit[0]] = float(weight)
        return out

    def _finish(self, arrays, binned, n_classes):
        self.tree_ = HistTree(arrays, binned.n_features, n_classes)
        self.tree_._bin_lo = binned._lo  # its bins (HistTree.fitted_on)
        self.n_classes_ = int(n_classes)
        self.n_outputs_ = 1
        return self

    # ------------------------------------------------------------------- fit
    def fit(
        self, X: ArrayLike | BinnedData, y: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> HistTreeClassifier:
        """Fit the tree to labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or BinnedData
            A ``BinnedData`` (or a ``take`` of one) is used as it is binned.
        y : array-like of shape (n_samples,)
            Labels of any sortable type; NaN is refused.
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights.

        Returns
        -------
        self
        """
        opts = self._check_params()
        if isinstance(X, BinnedData):
            if y is None:
                raise ValueError(
                    f"This {type(self).__name__} estimator requires y to be passed, but the target y is None."
                )
            if not (isinstance(y, np.ndarray) and y.ndim == 1 and y.dtype.kind in "iub"):
                y = column_or_1d(y, warn=True)  # its checks cost 0.3 ms a fit; integer vectors need none
            if len(y) != len(X):
                raise ValueError(f"y: expected {len(X)} labels (one per row of X), got {len(y)}")
            if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
                raise ValueError("Input y contains NaN or infinity.")
            binned = self._binned_input(X)
        else:
            if y is None:
                validate_data(self, X, y)  # raises scikit-learn's "requires y" error
            binned, y = self._binned_input(X, y)
        if y.dtype.kind not in "iubUS":  # integers, booleans and strings are class labels
            check_classification_targets(y)
        self.classes_, y_idx = _encode_labels(y)
        C = len(self.classes_)
        w = self._weights(sample_weight, len(y_idx))
        cw = None
        if self.class_weight is not None:
            cw = self._class_weight_vector(
                self.classes_, np.bincount(y_idx, minlength=C).astype(np.float64), len(y_idx)
            )
        arrays = _native.hist_fit(
            binned._codes,
            binned.n_bins,
            binned._lo,
            binned._hi,
            rows=binned._rows,
            n_classes=C,
            labels=y_idx,
            sample_weight=w,
            class_weight=cw,
            categorical=self._categorical_arg(),
            **opts,
        )
        self.fitted_on_allowed_ = False
        return self._finish(arrays, binned, C)

    def fit_allowed(
        self,
        X: ArrayLike | BinnedData,
        allowed: ArrayLike,
        classes: ArrayLike | None = None,
        sample_weight: ArrayLike | None = None,
    ) -> HistTreeClassifier:
        """Fit the tree to sets of allowed labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or BinnedData
        allowed : array-like of bool, shape (n_samples, n_classes)
            ``allowed[i, c]``: label ``classes[c]`` is acceptable at row ``i``.
            Rows allowing nothing have no target and are left out.
        classes : array-like of shape (n_classes,), optional
            Labels of the columns; default ``0 .. n_classes - 1``.
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self
            Its ``predict`` returns labels from ``classes``; ``predict_proba``
            the leaf's allowed masses, normalized.
        """
        opts = self._check_params(allowed=True)
        if hasattr(allowed, "to_numpy"):
            allowed = allowed.to_numpy()
        allowed = np.asarray(allowed)
        if allowed.ndim != 2 or allowed.shape[1] < 1:
            raise ValueError(f"allowed: expected a 2-d (n_samples, n_classes) matrix, got shape {allowed.shape}")
        if allowed.dtype != bool:
            if allowed.dtype.kind not in "biuf" or not np.all(np.isin(allowed, (0, 1))):
                raise ValueError("allowed: expected a boolean (or 0/1) matrix")
            allowed = allowed.astype(bool)
        if classes is None:
            classes = np.arange(allowed.shape[1])
        classes = np.asarray(classes)
        if classes.shape != (allowed.shape[1],):
            raise ValueError(
                f"classes: expected {allowed.shape[1]} labels (one per column of allowed), got shape {classes.shape}"
            )
        if len(np.unique(classes)) != len(classes):
            raise ValueError("classes: expected distinct labels")
        binned = self._binned_input(X)
        if allowed.shape[0] != len(binned):
            raise ValueError(f"allowed: expected {len(binned)} rows (one per row of X), got {allowed.shape[0]}")
        keep = allowed.any(axis=1)
        if not keep.any():
            raise ValueError("allowed: every row has an empty allowed set; there is nothing to fit")
        w = self._weights(sample_weight, allowed.shape[0])
        if not keep.all():
            binned = binned.take(keep)
            allowed = allowed[keep]
            w = None if w is None else w[keep]
        allowed = np.ascontiguousarray(allowed)
        cw = self._class_weight_vector(classes, allowed.sum(axis=0).astype(np.float64), allowed.shape[0])
        arrays = _native.hist_fit(
            binned._codes,
            binned.n_bins,
            binned._lo,
            binned._hi,
            rows=binned._rows,
            n_classes=allowed.shape[1],
            allowed=allowed.view(np.uint8),
            sample_weight=w,
            class_weight=cw,
            categorical=self._categorical_arg(),
            **opts,
        )
        self.classes_ = classes
        self.fitted_on_allowed_ = True
        return self._finish(arrays, binned, allowed.shape[1])

    # --------------------------------------------------------------- predict
    def _validate_X(self, X):
        check_is_fitted(self, "tree_")
        mask = getattr(self, "is_categorical_", None)
        if mask is None:
            return validate_data(self, X, reset=False, dtype=[np.float64, np.float32], ensure_all_finite="allow-nan")
        validate_data(self, X, reset=False, skip_check_array=True)  # names and count
        X, _ = _encode_categories(X, mask, self.categories_, self.max_bins)
        return check_array(X, dtype=[np.float64, np.float32], ensure_all_finite="allow-nan")

    def apply(self, X: ArrayLike, check_input: bool = True) -> np.ndarray:
        """Index of the leaf each row of ``X`` reaches (node ids of ``tree_``).

        ``check_input=False`` skips the checks of ``X`` (as scikit-learn's
        trees allow): only for a 2-d float32 or float64 array with the fitted
        number of columns and no infinite values, already checked by the
        caller; category codes of categorical features are still mapped."""
        if check_input or getattr(self, "is_categorical_", None) is not None:
            X = self._validate_X(X)
        else:
            check_is_fitted(self, "tree_")
            if not (
                isinstance(X, np.ndarray)
                and X.ndim == 2
                and X.dtype in (np.float32, np.float64)
                and X.shape[1] == self.n_features_in_
            ):
                raise ValueError(
                    f"check_input=False: X must be a 2-d float32 or float64 array with {self.n_features_in_} columns"
                )
        return self.tree_.apply(X, self._n_threads())

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Class shares of the leaf of each row, columns ordered as ``classes_``."""
        leaves = self.apply(X)
        return self.tree_.value[leaves, 0, :].copy()

    def predict_log_proba(self, X: ArrayLike) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X: ArrayLike) -> np.ndarray:
        """The class of greatest share (allowed mass) at each row's leaf."""
        leaves = self.apply(X)
        return self.classes_[self.tree_.node_class[leaves]]

    @property
    def feature_importances_(self) -> np.ndarray:
        """Impurity-based importance of each feature: the weighted decrease
        of the node impurity summed over the splits on that feature,
        normalised to sum to one (all zeros for a tree without a split), as
        scikit-learn's trees compute it."""
        check_is_fitted(self, "tree_")
        t = self.tree_
        out = np.zeros(self.n_features_in_, dtype=np.float64)
        split = np.flatnonzero(t.children_left >= 0)
        if split.size:
            w, imp = t.weighted_n_node_samples, t.impurity
            left, right = t.children_left[split], t.children_right[split]
            gain = w[split] * imp[split] - w[left] * imp[left] - w[right] * imp[right]
            np.add.at(out, t.feature[split], np.maximum(gain, 0.0))
            total = out.sum()
            if total > 0:
                out /= total
        return out

    def get_depth(self) -> int:
        """Depth of the fitted tree (the root alone is depth 0)."""
        check_is_fitted(self, "tree_")
        return self.tree_.max_depth

    def get_n_leaves(self) -> int:
        check_is_fitted(self, "tree_")
        return self.tree_.n_leaves


def release_buffers() -> int:
    """Free the buffer that fits on integer class counts keep between fits.

    Such fits (single labels, no sample weights or weights of 0 and 1) pack
    the rows into one buffer, and keep it for the next fit: CREMBO refits
    many trees on the same rows, and a fresh buffer costs a page fault per
    4 KiB on first touch. One buffer per process is kept, the largest, up to
    256 MiB. Call this when no more fits are coming (a long-lived service
    between jobs, say). A fit running in another thread keeps its own buffer
    until it ends.

    Returns
    -------
    int
        The bytes freed; 0 when no buffer was kept.
    """
    return int(_native.hist_release_buffers())


def tree_student(
    max_depth: int | None = 4, *, class_weight: dict | str | None = "balanced", **params: Any
) -> HistTreeClassifier:
    """The histogram tree as a CREMBO/MEMO student: ``HistTreeClassifier``
    of the given depth with balanced class weights (the paper's student is a
    depth-4 tree with balanced classes). Extra keyword arguments go to
    ``HistTreeClassifier``."""
    return HistTreeClassifier(max_depth=max_depth, class_weight=class_weight, **params)


def resolve_student(student: Any) -> Any:
    """A student specification (``"tree:4"``, ``"sklearn-tree:3"``, ...; see
    :mod:`crembo.specs`) as a new estimator; anything else is returned
    unchanged."""
    if isinstance(student, str):
        from ..specs import make

        try:
            return make(student, "student", "classification")
        except ValueError as exc:
            raise ValueError(
                f"student: expected an estimator or a specification such as 'tree:<depth>' (e.g. 'tree:4'): {exc}"
            ) from None
    return student
