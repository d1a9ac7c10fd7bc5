"""``HistTreeRegressor``: a native histogram regression tree that learns
interval targets directly (CREMBORegressor's native student).

``fit(X, y)`` is an ordinary weighted least-squares tree on histogram bins;
``fit_intervals(X, lo, hi)`` minimises the squared distance of the tree's
predictions to the intervals ``[lo_i, hi_i]`` (a point inside the interval
costs nothing), alternating targets ``clip(prediction, lo, hi)``, a
squared-error structure on them, and exact interval-loss leaf values
(``cpp/src/hist_tree_regression.cpp``). ``X`` may be a
:class:`crembo.BinnedData`, binned once and reused by every fit (CREMBO and
MEMO refit the student many times on the same rows). Prediction walks the
tree in the native ``FastTree`` (float32 comparisons and NaN routing as in
scikit-learn).
"""

from __future__ import annotations


from typing import TYPE_CHECKING

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, column_or_1d, validate_data

from .. import _native
from .._validation import MAX_INT, Interval, ParamsValidationMixin
from .hist import MAX_BINS, BinnedData, HistTree

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["HistTreeRegressor"]


class HistTreeRegressor(ParamsValidationMixin, RegressorMixin, BaseEstimator):
    """Histogram regression tree for point or interval targets.

    Parameters
    ----------
    max_depth : int or None, default=None
    min_samples_split : int, default=2
    min_samples_leaf : int, default=1
    min_weight_fraction_leaf : float in [0, 0.5], default=0.0
    max_bins : int in [2, 255], default=255
    rounds : int, default=3
        Alternations of ``fit_intervals`` (targets, structure, leaf values).
    random_state : ignored
        Accepted for interchangeability with scikit-learn's trees (the fit is
        deterministic).

    Attributes
    ----------
    tree_ : HistTree
        Flat arrays in scikit-learn's layout; ``value[k, 0, 0]`` is node
        ``k``'s prediction.
    n_features_in_ : int
    """

    def __init__(
        self,
        *,
        max_depth=None,
        min_samples_split=2,
        min_samples_leaf=1,
        min_weight_fraction_leaf=0.0,
        max_bins=MAX_BINS,
        rounds=3,
        random_state=None,
    ):
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.min_weight_fraction_leaf = min_weight_fraction_leaf
        self.max_bins = max_bins
        self.rounds = rounds
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    #: The parameters, declared once (see :mod:`crembo._validation`).
    _parameter_constraints: dict = {
        "max_depth": [None, Interval("integer", 1, MAX_INT)],
        "min_samples_split": [Interval("integer", 2, MAX_INT)],
        "min_samples_leaf": [Interval("integer", 1, MAX_INT)],
        "min_weight_fraction_leaf": [Interval("real", 0.0, 0.5)],
        "max_bins": [Interval("integer", 2, MAX_BINS)],
        "rounds": [Interval("integer", 1, MAX_INT)],
        "random_state": "no_validation",  # ignored: the fit is deterministic
    }

    def _options(self):
        """The native tree's options, once the parameters are checked."""
        self._validate_params()
        return dict(
            max_depth=-1 if self.max_depth is None else int(self.max_depth),
            min_samples_split=int(self.min_samples_split),
            min_samples_leaf=int(self.min_samples_leaf),
            min_weight_fraction_leaf=float(self.min_weight_fraction_leaf),
            rounds=int(self.rounds),
        )

    def bin_data(self, X: ArrayLike) -> BinnedData:
        """``BinnedData`` of ``X`` with this tree's ``max_bins``, for repeated fits."""
        return BinnedData(X, max_bins=self.max_bins)

    def _binned(self, X):
        if isinstance(X, BinnedData):
            if hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
            self.n_features_in_ = X.n_features
            return X
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_all_finite="allow-nan")
        return self.bin_data(X)

    def _vector(self, v, name, n):
        v = column_or_1d(v, warn=True)
        if v.shape[0] != n:
            raise ValueError(f"{name}: expected {n} values (one per row of X), got {v.shape[0]}")
        try:
            v = np.ascontiguousarray(v, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{name}: expected real numbers") from None
        if not np.all(np.isfinite(v)):
            raise ValueError(f"Input {name} contains NaN or infinity.")
        return v

    def _fit(self, X, lo, hi, sample_weight, point):
        opts = self._options()
        if isinstance(X, BinnedData):
            binned = self._binned(X)
            n = len(binned)
        else:
            if point:
                X, lo = validate_data(
                    self, X, lo, dtype=[np.float64, np.float32], ensure_all_finite="allow-nan", y_numeric=True
                )
                hi = lo
            else:
                X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_all_finite="allow-nan")
            binned = self.bin_data(X)
            n = X.shape[0]
        lo = self._vector(lo, "y" if point else "lo", n)
        hi = lo if point else self._vector(hi, "hi", n)
        if not point and np.any(lo > hi):
            i = int(np.argmax(lo > hi))
            raise ValueError(f"lo, hi: row {i} has lo = {lo[i]!r} > hi = {hi[i]!r}")
        w = None
        if sample_weight is not None:
            w = np.ascontiguousarray(
                _check_sample_weight(sample_weight, np.empty((n, 0)), dtype=np.float64, ensure_non_negative=True)
            )
        arrays = _native.hist_fit_intervals(
            binned._codes,
            binned.n_bins,
            binned._lo,
            binned._hi,
            rows=binned._rows,
            lo=lo,
            hi=hi,
            sample_weight=w,
            **opts,
        )
        self.tree_ = HistTree(arrays, binned.n_features, 1)
        self.n_outputs_ = 1
        return self

    def fit(self, X: ArrayLike | BinnedData, y: ArrayLike, sample_weight: ArrayLike | None = None) -> HistTreeRegressor:
        """Least-squares fit to point targets ``y`` (X: an array or a BinnedData)."""
        if y is None:
            validate_data(self, X, y)  # scikit-learn's "requires y" error
        return self._fit(X, y, None, sample_weight, point=True)

    def fit_intervals(
        self, X: ArrayLike | BinnedData, lo: ArrayLike, hi: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> HistTreeRegressor:
        """Fit to interval targets: minimise ``sum w * dist(f(x), [lo, hi])^2``."""
        return self._fit(X, lo, hi, sample_weight, point=False)

    def _fast_tree(self):
        # Cached on tree_ (HistTree drops it from pickles), not on self.
        t = self.tree_
        fast = t.__dict__.get("_fast")
        if fast is None:
            n = t.node_count
            # Only the walk (apply) is used: one dummy class.
            fast = t._fast = _native.FastTree(
                children_left=t.children_left,
                children_right=t.children_right,
                feature=t.feature,
                threshold=t.threshold,
                leaf_class=np.zeros(n, dtype=np.int32),
                proba=np.ones((n, 1)),
                n_features=t.n_features,
                classes=np.arange(1),
                missing_go_to_left=t.missing_go_to_left,
            )
        return fast

    def apply(self, X: ArrayLike) -> np.ndarray:
        """Index of the leaf each row of ``X`` reaches."""
        check_is_fitted(self, "tree_")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32], ensure_all_finite="allow-nan")
        return self._fast_tree().apply(X, 0)

    def predict(self, X: ArrayLike) -> np.ndarray:
        """The tree's value at the leaf each row reaches."""
        check_is_fitted(self, "tree_")
        return self.tree_.value[self.apply(X), 0, 0].astype(np.float64)

    def get_depth(self) -> int:
        check_is_fitted(self, "tree_")
        return int(self.tree_.max_depth)

    def get_n_leaves(self) -> int:
        check_is_fitted(self, "tree_")
        return int(self.tree_.n_leaves)
