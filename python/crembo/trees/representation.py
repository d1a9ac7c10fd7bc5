"""The flat representation of a fitted tree, and its native evaluator.

Every tree crembo reads (a scikit-learn ``DecisionTreeClassifier`` or
``DecisionTreeRegressor``, crembo's histogram trees, a fitted
``CREMBOClassifier`` or ``LabelDistiller`` whose student is a tree, the
multi-output tree student of the paper's oracle, or any object with a
scikit-learn-like ``tree_``) is read once into a :class:`FlatTree`: per-node
arrays in scikit-learn's layout plus what each leaf predicts.
:class:`FastTree` walks those arrays in C++. The export formats
(:mod:`crembo.trees.export`, :mod:`crembo.trees.export_regression`), the plots and the
teachers build on this module; it imports none of them.

Comparison semantics are scikit-learn's: a feature is cast to float32 and
compared with the float64 threshold, ``x <= threshold`` going left; a
missing value (NaN) goes where the tree learned to send it
(``missing_go_to_left``). ``precision="float64"`` compares float64 features
instead, for trees that split on float64 values.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import is_regressor

from .. import _native
from .codegen import check_identifier, cpp_source

if TYPE_CHECKING:
    import os
    from collections.abc import Sequence

    from numpy.typing import ArrayLike

__all__ = [
    "PRECISIONS",
    "FastTree",
    "FlatTree",
    "flatten_tree",
    "flatten_regression_tree",
    "regression_fast_tree",
    "is_regression_model",
    "tree_arrays",
    "leaf_points",
    "round_down_float32",
]

#: How features are compared with thresholds.
PRECISIONS = ("float32", "float64")


def round_down_float32(t: float) -> np.float32:
    """The largest float32 not above ``t`` (how scikit-learn's float32
    comparison ``x <= t`` reads a float64 threshold)."""
    f = np.float32(t)
    if np.isfinite(f) and float(f) > t:
        f = np.nextafter(f, np.float32(-np.inf))
    elif np.isinf(f) and f > 0 and np.isfinite(t):
        f = np.finfo(np.float32).max
    return f


# --------------------------------------------------------------------------- FlatTree
@dataclass
class FlatTree:
    """A classification tree as flat per-node arrays (scikit-learn's layout).

    ``leaf_class[i]`` (an index into ``classes``) and ``proba[i]`` are what
    the model predicts at leaf ``i``; both are unused at split nodes. A
    regression tree is held as a classifier whose classes are its distinct
    leaf values (see :func:`flatten_regression_tree`).
    """

    children_left: np.ndarray
    children_right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    missing_go_to_left: np.ndarray
    leaf_class: np.ndarray
    proba: np.ndarray
    classes: np.ndarray
    n_features: int
    precision: str = "float32"
    feature_names: list | None = None
    n_node_samples: np.ndarray | None = None
    source: str = "tree"
    #: Category-subset splits: node -> the category codes that go left (a
    #: missing value goes to ``missing_go_to_left``, any other code right).
    categorical: dict | None = None
    #: Per feature, the category names of its codes (None: show the codes).
    category_names: list | None = None

    @property
    def n_nodes(self) -> int:
        return len(self.children_left)

    def is_leaf(self, i: int) -> bool:
        return self.children_left[i] < 0

    def check_numeric(self, fmt: str) -> None:
        """Raise a ValueError naming ``fmt`` when the tree has category-subset
        splits, which that format cannot carry."""
        if self.categorical:
            raise ValueError(
                f"{fmt}: this tree has category-subset splits (categorical features), which {fmt} "
                "cannot carry (it has numeric 'x <= threshold' splits only); export it with "
                "export_rules or export_dot, or fit the tree with categorical_features=None"
            )

    def category_text(self, feature: int, codes: ArrayLike) -> str:
        names = None if self.category_names is None else self.category_names[feature]
        shown = [str(names[c]) if names is not None and 0 <= c < len(names) else str(c) for c in sorted(codes)]
        return "{" + ", ".join(shown) + "}"

    def compared_threshold(self, i: int) -> float:
        """The threshold of split ``i`` as features are compared with it:
        rounded down to float32 for ``precision="float32"``."""
        t = self.threshold[i]
        return round_down_float32(t) if self.precision == "float32" else t

    def depth(self) -> int:
        d = np.zeros(self.n_nodes, dtype=np.int64)
        for i in range(self.n_nodes):
            if not self.is_leaf(i):
                d[self.children_left[i]] = d[self.children_right[i]] = d[i] + 1
        return int(d.max())

    def arrays(self) -> dict:
        """Keyword arguments of ``FastTree(...)``."""
        self.check_numeric("FastTree")
        return dict(
            children_left=self.children_left,
            children_right=self.children_right,
            feature=self.feature,
            threshold=self.threshold,
            leaf_class=self.leaf_class,
            proba=self.proba,
            n_features=self.n_features,
            classes=self.classes,
            missing_go_to_left=self.missing_go_to_left,
            precision=self.precision,
        )


# --------------------------------------------------------------------------- reading a model
def unwrap_distiller(model: Any) -> tuple[Any, Any]:
    """``(student, distiller)`` for a fitted distiller (an object with
    ``student`` and ``teacher`` parameters and no ``tree_``), ``(model, None)``
    otherwise. ValueError when the distiller is not fitted."""
    if hasattr(model, "student") and hasattr(model, "teacher") and not hasattr(model, "tree_"):
        student = getattr(model, "student_", None)
        if student is None:
            raise ValueError(f"{type(model).__name__} is not fitted: call fit before exporting its student")
        return student, model
    return model, None


def _is_regressor(model):
    try:
        return is_regressor(model)
    except (AttributeError, TypeError):  # not a scikit-learn estimator: trust its _estimator_type
        return getattr(model, "_estimator_type", None) == "regressor"


def is_regression_model(model: Any) -> bool:
    """True for a scikit-learn regressor, a fitted crembo regression distiller,
    or a FastTree/FlatTree made from one."""
    if isinstance(model, (FlatTree, FastTree)):
        return bool(getattr(model, "regression_", False))
    return bool(_is_regressor(model))


def is_allowed_label_student(model: Any) -> bool:
    """True for an allowed-label student (``crembo.compress.students.AllowedLabelStudent``
    or a look-alike): a multi-output ``estimator`` read through ``allowed_scores``."""
    return callable(getattr(model, "allowed_scores", None)) and hasattr(model, "estimator")


def tree_arrays(tree_obj: Any, owner: str) -> tuple[np.ndarray, ...]:
    """scikit-learn's flat arrays of a ``tree_``, converted to crembo's dtypes.

    Parameters
    ----------
    tree_obj : object
        A scikit-learn-like ``tree_`` (``children_left``, ``children_right``,
        ``feature``, ``threshold``, ``value``; optionally
        ``missing_go_to_left`` and ``n_node_samples``).
    owner : str
        Named in error messages.

    Returns
    -------
    tuple
        ``(left, right, feature, threshold, value, missing_go_to_left,
        n_node_samples)``; the last is None when the tree has none.
    """
    try:
        left = np.asarray(tree_obj.children_left, dtype=np.int64)
        right = np.asarray(tree_obj.children_right, dtype=np.int64)
        feature = np.asarray(tree_obj.feature, dtype=np.int64)
        threshold = np.asarray(tree_obj.threshold, dtype=np.float64)
        value = np.asarray(tree_obj.value, dtype=np.float64)
    except AttributeError as exc:
        raise TypeError(
            f"{owner}: its tree_ lacks {exc.name or 'an array'}; expected scikit-learn's flat arrays "
            "children_left, children_right, feature, threshold and value"
        ) from None
    n = len(left)
    if n == 0 or not (len(right) == len(feature) == len(threshold) == len(value) == n):
        raise ValueError(f"{owner}: tree_ arrays are empty or of different lengths")
    nan_left = getattr(tree_obj, "missing_go_to_left", None)
    nan_left = np.zeros(n, np.uint8) if nan_left is None else np.asarray(nan_left, dtype=np.uint8)
    samples = getattr(tree_obj, "n_node_samples", None)
    samples = None if samples is None else np.asarray(samples, dtype=np.int64)
    return left, right, feature, threshold, value, nan_left, samples


def _n_features(model, feature):
    d = getattr(model, "n_features_in_", None)
    if d is None:
        d = getattr(model, "n_features_", None)
    if d is None:
        d = int(feature.max()) + 1 if np.any(feature >= 0) else 1
    return int(d)


def _feature_names(model):
    names = getattr(model, "feature_names_in_", None)
    return None if names is None else [str(s) for s in names]


def _check_precision(precision):
    if precision not in PRECISIONS:
        raise ValueError(f"precision: expected one of {PRECISIONS}, got {precision!r}")


# --------------------------------------------------------------------------- classification trees
def flatten_tree(model: Any, *, precision: str = "float32") -> FlatTree:
    """Flatten a fitted tree classifier into a :class:`FlatTree`.

    Parameters
    ----------
    model : fitted tree classifier
        A ``DecisionTreeClassifier`` (or ``ExtraTreeClassifier``), a fitted
        ``CREMBOClassifier``/``LabelDistiller`` with a tree student, the
        multi-output tree student of ``oracle="single"``, a :class:`FastTree`,
        or any classifier with a scikit-learn-like ``tree_`` and ``classes_``.
    precision : {"float32", "float64"}, default="float32"
        How features are compared with thresholds (scikit-learn: float32).

    Returns
    -------
    FlatTree
    """
    _check_precision(precision)
    if isinstance(model, FlatTree):
        return model
    if isinstance(model, _native.FastTree):
        s = model._state()
        return FlatTree(
            s["children_left"],
            s["children_right"],
            s["feature"],
            s["threshold"],
            s["missing_go_to_left"],
            s["leaf_class"],
            s["proba"],
            np.asarray(s["classes"]),
            int(s["n_features"]),
            s["precision"],
            getattr(model, "feature_names_in_", None),
            getattr(model, "n_node_samples_", None),
            getattr(model, "source_", "FastTree"),
        )
    model, outer = unwrap_distiller(model)
    outer_classes = None if outer is None else np.asarray(outer.classes_)
    name = type(model).__name__
    if is_allowed_label_student(model):
        flat = _flatten_allowed_label_student(model, precision)
    else:
        flat = _flatten_classifier(model, name, precision)
    if outer is not None:
        flat = _to_outer_classes(flat, outer_classes)
        flat.feature_names = flat.feature_names or _feature_names(outer)
        flat.n_features = int(getattr(outer, "n_features_in_", flat.n_features))
        flat.source = f"{type(outer).__name__}({flat.source})"
        if flat.categorical and getattr(outer, "categories_", None) is not None:
            flat.category_names = outer.categories_
    return flat


def _flatten_classifier(model, name, precision):
    if not hasattr(model, "tree_"):
        raise TypeError(
            f"{name} is not a fitted tree classifier: expected a scikit-learn-like tree_ "
            "(children_left, children_right, feature, threshold, value)"
        )
    if _is_regressor(model):
        raise TypeError(f"{name} is a regression tree; crembo exports classification trees")
    left, right, feature, threshold, value, nan_left, samples = tree_arrays(model.tree_, name)
    if value.ndim == 3:
        if value.shape[1] != 1:
            raise ValueError(
                f"{name} is a multi-output tree ({value.shape[1]} outputs); only single-output "
                "classification trees (and crembo's allowed-label students) can be exported"
            )
        value = value[:, 0, :]
    if value.ndim != 2:
        raise ValueError(f"{name}: tree_.value has shape {value.shape}, expected (n_nodes, [1,] n_classes)")
    classes = getattr(model, "classes_", None)
    classes = np.arange(value.shape[1]) if classes is None else np.asarray(classes)
    if classes.ndim != 1:
        raise ValueError(f"{name} is a multi-output classifier; only single-output trees can be exported")
    value = value[:, : len(classes)]
    # predict() takes the argmax of the leaf's value; predict_proba()
    # returns the value row, normalized if it holds counts (older
    # scikit-learn); scikit-learn >= 1.4 stores fractions already.
    leaf_class = np.argmax(value, axis=1).astype(np.int32)
    sums = value.sum(axis=1)
    leaves = left < 0
    if np.all((np.abs(sums[leaves] - 1.0) <= 1e-6) | (sums[leaves] == 0.0)):
        proba = value.copy()
    else:
        norm = sums[:, None].copy()
        norm[norm == 0.0] = 1.0
        proba = value / norm
    flat = FlatTree(
        left,
        right,
        feature,
        threshold,
        nan_left,
        leaf_class,
        np.ascontiguousarray(proba),
        classes,
        _n_features(model, feature),
        precision,
        _feature_names(model),
        samples,
        name,
    )
    cat = getattr(model.tree_, "is_categorical", None)
    if cat is not None and np.any(cat):
        bits = np.asarray(model.tree_.cat_left, dtype=np.uint64)
        flat.categorical = {
            int(i): tuple(c for c in range(256) if (int(bits[i, c >> 6]) >> (c & 63)) & 1) for i in np.flatnonzero(cat)
        }
        flat.category_names = getattr(model, "categories_", None)
    return flat


class _NodeOutputs:
    """Stands in for an allowed-label student's multi-output tree so that the
    student's own arithmetic reads the leaves: "row" ``i`` is node ``i``, and
    its predicted probabilities per output are the node's value rows."""

    def __init__(self, classes, value):
        self.classes_ = classes
        self._value = value

    def predict_proba(self, nodes: np.ndarray) -> list[np.ndarray]:
        return [self._value[nodes, y, :] for y in range(self._value.shape[1])]


def _flatten_allowed_label_student(student, precision):
    est = student.estimator
    name = f"allowed-label {type(est).__name__}"
    if not hasattr(est, "tree_"):
        raise TypeError(f"{name} is not a tree; only tree students can be exported")
    left, right, feature, threshold, value, nan_left, samples = tree_arrays(est.tree_, name)
    classes = np.asarray(student.classes_)
    C = len(classes)
    out_classes = est.classes_ if isinstance(est.classes_, list) else [est.classes_]
    if value.ndim != 3 or value.shape[1] != C or len(out_classes) != C:
        raise ValueError(f"{name}: expected one binary output per class ({C}), got value of shape {value.shape}")
    # The student's own allowed_scores/predict_proba, applied to the node
    # rows: score of y = predicted probability that y is allowed; prediction
    # = argmax of the scores; probabilities = the scores normalized.
    at_nodes = copy.copy(student)
    at_nodes.estimator = _NodeOutputs(out_classes, value)
    nodes = np.arange(len(left))
    leaf_class = np.argmax(at_nodes.allowed_scores(nodes), axis=1).astype(np.int32)
    proba = np.asarray(at_nodes.predict_proba(nodes), dtype=np.float64)
    return FlatTree(
        left,
        right,
        feature,
        threshold,
        nan_left,
        leaf_class,
        np.ascontiguousarray(proba),
        classes,
        _n_features(est, feature),
        precision,
        _feature_names(student) or _feature_names(est),
        samples,
        name,
    )


def _to_outer_classes(flat, outer_classes):
    """Re-index a student's leaves onto its distiller's ``classes_``."""
    inner = np.asarray(flat.classes)
    if len(inner) == len(outer_classes) and np.array_equal(inner, outer_classes):
        flat.classes = outer_classes
        return flat
    cols = np.searchsorted(outer_classes, inner)
    cols = np.clip(cols, 0, len(outer_classes) - 1)
    if not np.all(outer_classes[cols] == inner):
        raise ValueError("the student's classes are not among its distiller's classes_")
    proba = np.zeros((flat.n_nodes, len(outer_classes)), dtype=np.float64)
    proba[:, cols] = flat.proba
    flat.leaf_class = cols[flat.leaf_class].astype(np.int32)
    flat.proba = proba
    flat.classes = outer_classes
    return flat


# --------------------------------------------------------------------------- regression trees
def flatten_regression_tree(model: Any, *, precision: str = "float32") -> FlatTree:
    """Flatten a fitted regression tree into a :class:`FlatTree` whose classes
    are the distinct leaf values (sorted; each leaf predicts its own value
    with probability one).

    Parameters
    ----------
    model : fitted tree regressor
        A ``DecisionTreeRegressor`` (or ``ExtraTreeRegressor``), or a fitted
        ``CREMBORegressor`` / ``LabelDistillerRegressor`` whose student is one.
    precision : {"float32", "float64"}, default="float32"
        How features are compared with thresholds (scikit-learn: float32).

    Returns
    -------
    FlatTree
        With ``regression_ = True``.
    """
    _check_precision(precision)
    if isinstance(model, FlatTree):
        return model
    tree, outer = unwrap_distiller(model)
    name = type(tree).__name__
    if not hasattr(tree, "tree_"):
        raise TypeError(
            f"{name} is not a fitted tree regressor: expected a scikit-learn-like tree_; only tree "
            "students can be exported"
        )
    if not is_regression_model(tree):
        raise TypeError(f"{name} is not a regressor; use crembo.trees.export for classification trees")
    left, right, feature, threshold, value, nan_left, samples = tree_arrays(tree.tree_, name)
    value = value.reshape(len(left), -1)
    if value.shape[1] != 1:
        raise ValueError(
            f"{name} is a multi-output regression tree ({value.shape[1]} outputs); only "
            "single-output trees can be exported"
        )
    value = value[:, 0]
    leaves = left < 0
    classes, idx = np.unique(value[leaves], return_inverse=True)
    leaf_class = np.zeros(len(left), dtype=np.int32)
    leaf_class[leaves] = idx
    proba = np.zeros((len(left), len(classes)), dtype=np.float64)
    proba[np.flatnonzero(leaves), idx] = 1.0
    d = _n_features(tree, feature)
    names = _feature_names(tree)
    source = name
    if outer is not None:
        d = int(getattr(outer, "n_features_in_", d))
        names = names or _feature_names(outer)
        source = f"{type(outer).__name__}({name})"
    flat = FlatTree(
        left,
        right,
        feature,
        threshold,
        nan_left,
        leaf_class,
        proba,
        classes.astype(np.float64),
        d,
        precision,
        names,
        samples,
        source,
    )
    flat.regression_ = True
    return flat


def regression_fast_tree(model: Any, *, precision: str = "float32", check: bool = True) -> FastTree:
    """The native evaluator (:class:`FastTree`) of a regression tree; its
    ``predict`` returns the leaf values as float64.

    Parameters
    ----------
    model : fitted tree regressor
        See :func:`flatten_regression_tree`.
    precision : {"float32", "float64"}, default="float32"
        How features are compared with thresholds.
    check : bool, default=True
        Predict one point per leaf with the model and the flattened tree and
        raise ValueError if they differ.

    Returns
    -------
    FastTree
    """
    flat = flatten_regression_tree(model, precision=precision)
    tree = FastTree.from_flat(flat)
    tree.regression_ = True
    if check and not isinstance(model, FlatTree):
        X, _ = leaf_points(flat)
        if len(X):
            expected = np.asarray(model.predict(X), dtype=np.float64)
            if not np.array_equal(tree.predict(X), expected):
                raise ValueError(
                    "regression_fast_tree: the flattened tree disagrees with the model's predict; "
                    "try precision='float64' or check=False"
                )
    return tree


# --------------------------------------------------------------------------- checking a flattening
def leaf_points(flat: FlatTree) -> tuple[np.ndarray, np.ndarray]:
    """One input row per reachable leaf and the leaf ids, for checking a
    flattening against the model it came from.

    Returns
    -------
    X : ndarray of shape (n_reached, n_features)
        In the tree's precision; leaves no finite input reaches are left out.
    leaves : ndarray of int64, shape (n_reached,)
    """
    f32 = flat.precision == "float32"
    dt = np.float32 if f32 else np.float64
    inf = dt(np.inf)
    leaves, rows = [], []
    stack = [(0, {})]
    while stack:
        i, bounds = stack.pop()
        if flat.children_left[i] < 0:
            row = np.zeros(flat.n_features, dtype=dt)
            ok = True
            for f, (lo, hi) in bounds.items():
                x = hi if hi < inf else (np.nextafter(lo, inf) if lo > -inf else dt(0))
                if not (x > lo and x <= hi) or not np.isfinite(x):
                    ok = False
                    break
                row[f] = x
            if ok:
                leaves.append(i)
                rows.append(row)
            continue
        f = int(flat.feature[i])
        t = dt(flat.compared_threshold(i))
        lo, hi = bounds.get(f, (-inf, inf))
        left = dict(bounds)
        left[f] = (lo, min(hi, t))
        right = dict(bounds)
        right[f] = (max(lo, t), hi)
        stack.append((int(flat.children_right[i]), right))
        stack.append((int(flat.children_left[i]), left))
    X = np.array(rows, dtype=dt).reshape(len(rows), flat.n_features)
    return X, np.asarray(leaves, dtype=np.int64)


def _check_against(tree, model, flat):
    X, leaves = leaf_points(flat)
    if len(X) == 0:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # feature-name warnings of models fitted on DataFrames
        expected = np.asarray(model.predict(X))
    got = tree.predict(X)
    bad = int(np.sum(expected != got))
    if bad or not np.array_equal(tree.apply(X), leaves):
        raise ValueError(
            f"FastTree.from_sklearn: the flattened {flat.source} disagrees with the model's own predict on "
            f"{max(bad, 1)} of {len(X)} leaf points; the model does not follow scikit-learn's tree semantics "
            f"(x cast to {flat.precision}, x <= threshold goes left); try precision='float64' or check=False"
        )


# --------------------------------------------------------------------------- FastTree
class FastTree(_native.FastTree):
    """A tree classifier flattened into arrays and evaluated in C++.

    Build one with :meth:`from_sklearn` (or :meth:`load`). ``predict``,
    ``predict_proba`` and ``apply`` take a 2-d array ``(n_samples,
    n_features)``: float32 and float64 arrays are read in place (any
    strides), anything else is converted once. Single rows are cheap (no
    validation beyond shape and dtype); batches of 256 rows or more release
    the GIL and split rows over ``crembo._core.set_num_threads`` threads.
    Predictions are identical to the source model's, row for row.

    Attributes
    ----------
    classes_, n_features_in_, n_classes_, node_count, n_leaves, max_depth,
    precision, feature_names_in_ (when the model had them)
    """

    @classmethod
    def from_sklearn(cls, model: Any, *, precision: str = "float32", check: bool = True) -> FastTree:
        """Flatten a fitted tree classifier.

        Parameters
        ----------
        model : fitted tree classifier
            See :func:`flatten_tree` for what is accepted.
        precision : {"float32", "float64"}, default="float32"
            scikit-learn's comparison (float32 features) or float64.
        check : bool, default=True
            Predict one point per leaf with both the model and the flattened
            tree and raise ``ValueError`` if they differ (a model whose tree
            does not follow scikit-learn's semantics).
        """
        flat = flatten_tree(model, precision=precision)
        tree = cls.from_flat(flat)
        if check and not isinstance(model, (_native.FastTree, FlatTree)) and hasattr(model, "predict"):
            _check_against(tree, model, flat)
        return tree

    @classmethod
    def from_flat(cls, flat: FlatTree) -> FastTree:
        """The evaluator of a :class:`FlatTree` (numeric splits only)."""
        tree = cls(**flat.arrays())
        tree.feature_names_in_ = flat.feature_names
        tree.source_ = flat.source
        tree.n_node_samples_ = flat.n_node_samples
        return tree

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the text format of ``crembo/fast_tree.hpp`` (``FastTree::load``)."""
        Path(path).write_text(self.to_text())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> FastTree:
        """Read a file written by :meth:`save`. Class names that all parse as
        integers (or numbers) come back as integers (or floats)."""
        state = _native.fast_tree_text_state(Path(path).read_text())
        state["classes"] = _parse_class_names(list(state["classes"]))
        tree = cls(**state)
        tree.feature_names_in_ = None
        tree.source_ = "FastTree file"
        tree.n_node_samples_ = None
        return tree

    def to_cpp(
        self, name: str = "crembo_tree", *, precision: str = "float32", feature_names: Sequence[str] | None = None
    ) -> str:
        """Self-contained C++ source of this tree (see :func:`crembo.trees.export.export_cpp`)."""
        check_identifier(name)
        return cpp_source(flatten_tree(self, precision=precision), name=name, feature_names=feature_names)

    def __reduce__(self):
        return (_fast_tree_from_state, (type(self), self._state(), dict(getattr(self, "__dict__", {}))))

    def __repr__(self):
        return (
            f"FastTree({self.node_count} nodes, {self.n_leaves} leaves, depth {self.max_depth}, "
            f"{self.n_features_in_} features, {self.n_classes_} classes, {self.precision})"
        )


def _fast_tree_from_state(cls, state, attrs):
    tree = cls(**state)
    tree.__dict__.update(attrs)
    return tree


def _parse_class_names(names):
    for conv, dtype in ((int, np.int64), (float, np.float64)):
        try:
            return np.array([conv(s) for s in names], dtype=dtype)
        except (ValueError, OverflowError):
            continue
    return np.array(names)


def as_fast_tree(model: Any, precision: str = "float32") -> FastTree:
    """``model`` itself when it is a :class:`FastTree`, else its flattening's evaluator."""
    if isinstance(model, FastTree):
        return model
    return FastTree.from_flat(flatten_tree(model, precision=precision))
