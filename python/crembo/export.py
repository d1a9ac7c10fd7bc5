"""Export and deploy tree students.

A fitted tree (a scikit-learn ``DecisionTreeClassifier``, a fitted
``CREMBOClassifier`` or ``LabelDistiller`` whose student is a tree, a
multi-output tree student of the paper's oracle, or any object with a
scikit-learn-like ``tree_``: ``children_left``, ``children_right``,
``feature``, ``threshold``, ``value``) can be

* evaluated natively: :class:`FastTree` flattens it into arrays walked in C++
  (the GIL released and rows split over threads for batches), with
  predictions identical to the model's own;
* read as if-then rules (:func:`tree_rules`, :func:`export_rules`);
* drawn with Graphviz (:func:`export_dot`);
* converted to ONNX (:func:`export_onnx`, through skl2onnx when installed);
* embedded without Python: :func:`export_cpp` writes self-contained C++
  source of the tree, and :func:`export_native` writes a text file the
  header-only evaluator ``crembo/fast_tree.hpp`` loads.

Comparison semantics are scikit-learn's everywhere: a feature is cast to
float32 and compared with the float64 threshold, ``x <= threshold`` going
left; a missing value (NaN) goes where the tree learned to send it
(``missing_go_to_left``). ``precision="float64"`` compares float64 features
instead, for trees that split on float64 values.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from sklearn.base import is_regressor

from . import _native

__all__ = [
    "FastTree",
    "FlatTree",
    "Rule",
    "Condition",
    "flatten_tree",
    "tree_rules",
    "export_rules",
    "rules_predict",
    "short_threshold",
    "export_dot",
    "export_onnx",
    "export_cpp",
    "export_native",
]

PRECISIONS = ("float32", "float64")


# --------------------------------------------------------------------------- flattening
@dataclass
class FlatTree:
    """A classification tree as flat per-node arrays (scikit-learn's layout).

    ``leaf_class[i]`` (an index into ``classes``) and ``proba[i]`` are what
    the model predicts at leaf ``i``; both are unused at split nodes.
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
    def n_nodes(self):
        return len(self.children_left)

    def is_leaf(self, i):
        return self.children_left[i] < 0

    def check_numeric(self, fmt):
        """Raise a ValueError naming ``fmt`` when the tree has category-subset
        splits, which that format cannot carry."""
        if self.categorical:
            raise ValueError(
                f"{fmt}: this tree has category-subset splits (categorical features), which {fmt} "
                "cannot carry (it has numeric 'x <= threshold' splits only); export it with "
                "export_rules or export_dot, or fit the tree with categorical_features=None"
            )

    def category_text(self, feature, codes):
        names = None if self.category_names is None else self.category_names[feature]
        shown = [str(names[c]) if names is not None and 0 <= c < len(names) else str(c) for c in sorted(codes)]
        return "{" + ", ".join(shown) + "}"

    def depth(self):
        d = np.zeros(self.n_nodes, dtype=np.int64)
        for i in range(self.n_nodes):
            if not self.is_leaf(i):
                d[self.children_left[i]] = d[self.children_right[i]] = d[i] + 1
        return int(d.max())

    def arrays(self):
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


def _unwrap(model):
    """The tree inside a fitted distiller; the model itself otherwise."""
    if hasattr(model, "student") and hasattr(model, "teacher") and not hasattr(model, "tree_"):
        student = getattr(model, "student_", None)
        if student is None:
            raise ValueError(f"{type(model).__name__} is not fitted: call fit before exporting its student")
        return student, np.asarray(model.classes_)
    return model, None


def _is_regressor(model):
    try:
        return is_regressor(model)
    except (AttributeError, TypeError):  # not a scikit-learn estimator: trust its classes_
        return getattr(model, "_estimator_type", None) == "regressor"


def _is_allowed_label_student(model):
    return callable(getattr(model, "allowed_scores", None)) and hasattr(model, "estimator")


def _tree_arrays(tree_obj, owner):
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


def _n_features(model, feature, owner):
    d = getattr(model, "n_features_in_", None)
    if d is None:
        d = getattr(model, "n_features_", None)
    if d is None:
        d = int(feature.max()) + 1 if np.any(feature >= 0) else 1
    return int(d)


def _feature_names(model):
    names = getattr(model, "feature_names_in_", None)
    return None if names is None else [str(s) for s in names]


def flatten_tree(model, *, precision="float32"):
    """Flatten a fitted tree classifier into a :class:`FlatTree`.

    Parameters
    ----------
    model : fitted tree classifier
        A ``DecisionTreeClassifier`` (or ``ExtraTreeClassifier``), a fitted
        ``CREMBOClassifier``/``LabelDistiller`` with a tree student, the
        multi-output tree student of ``oracle="single"``, a :class:`FastTree`,
        or any classifier with a scikit-learn-like ``tree_`` and ``classes_``.
    precision : {"float32", "float64"}
        How features are compared with thresholds (scikit-learn: float32).

    Returns
    -------
    FlatTree
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision: expected one of {PRECISIONS}, got {precision!r}")
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
    outer = model
    model, outer_classes = _unwrap(model)
    name = type(model).__name__
    if _is_allowed_label_student(model):
        flat = _flatten_allowed_label_student(model, precision)
    else:
        if not hasattr(model, "tree_"):
            raise TypeError(
                f"{name} is not a fitted tree classifier: expected a scikit-learn-like tree_ "
                "(children_left, children_right, feature, threshold, value)"
            )
        if _is_regressor(model):
            raise TypeError(f"{name} is a regression tree; crembo exports classification trees")
        left, right, feature, threshold, value, nan_left, samples = _tree_arrays(model.tree_, name)
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
            _n_features(model, feature, name),
            precision,
            _feature_names(model),
            samples,
            name,
        )
        cat = getattr(model.tree_, "is_categorical", None)
        if cat is not None and np.any(cat):
            bits = np.asarray(model.tree_.cat_left, dtype=np.uint64)
            flat.categorical = {
                int(i): tuple(c for c in range(256) if (int(bits[i, c >> 6]) >> (c & 63)) & 1)
                for i in np.flatnonzero(cat)
            }
            flat.category_names = getattr(model, "categories_", None)
    if outer_classes is not None:
        flat = _to_outer_classes(flat, outer_classes)
        flat.feature_names = flat.feature_names or _feature_names(outer)
        flat.n_features = int(getattr(outer, "n_features_in_", flat.n_features))
        flat.source = f"{type(outer).__name__}({flat.source})"
        if flat.categorical and getattr(outer, "categories_", None) is not None:
            flat.category_names = outer.categories_
    return flat


def _flatten_allowed_label_student(student, precision):
    est = student.estimator
    name = f"allowed-label {type(est).__name__}"
    if not hasattr(est, "tree_"):
        raise TypeError(f"{name} is not a tree; only tree students can be exported")
    left, right, feature, threshold, value, nan_left, samples = _tree_arrays(est.tree_, name)
    classes = np.asarray(student.classes_)
    C = len(classes)
    out_classes = est.classes_ if isinstance(est.classes_, list) else [est.classes_]
    if value.ndim != 3 or value.shape[1] != C or len(out_classes) != C:
        raise ValueError(f"{name}: expected one binary output per class ({C}), got value of shape {value.shape}")
    # The same arithmetic as AllowedLabelStudent.allowed_scores/predict_proba,
    # applied to the leaf rows: score of y = predicted probability that y is
    # allowed; prediction = argmax; probabilities = scores normalized.
    scores = np.zeros((len(left), C), dtype=np.float64)
    for y, cls in enumerate(out_classes):
        hit = np.flatnonzero(np.asarray(cls) == 1)
        if hit.size:
            scores[:, y] = value[:, y, hit[0]]
    leaf_class = np.argmax(scores, axis=1).astype(np.int32)
    total = scores.sum(axis=1, keepdims=True)
    uniform = np.full_like(scores, 1.0 / C)
    proba = np.where(total > 0, scores / np.where(total > 0, total, 1.0), uniform)
    return FlatTree(
        left,
        right,
        feature,
        threshold,
        nan_left,
        leaf_class,
        np.ascontiguousarray(proba),
        classes,
        _n_features(est, feature, name),
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


def _leaf_points(flat):
    """One input row per reachable leaf (``None`` rows for leaves no finite
    input reaches) and the leaf ids, for checking a flattening against the
    model it came from."""
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
        t = dt(_core_round_down(flat.threshold[i])) if f32 else dt(flat.threshold[i])
        lo, hi = bounds.get(f, (-inf, inf))
        left = dict(bounds)
        left[f] = (lo, min(hi, t))
        right = dict(bounds)
        right[f] = (max(lo, t), hi)
        stack.append((int(flat.children_right[i]), right))
        stack.append((int(flat.children_left[i]), left))
    X = np.array(rows, dtype=dt).reshape(len(rows), flat.n_features)
    return X, np.asarray(leaves, dtype=np.int64)


def short_threshold(t, precision="float32"):
    """The shortest decimal text of a threshold that splits every input the
    way the tree does: for float32 comparison, any value in
    ``[rd(t), next float32 above rd(t))`` does (no float32 lies inside), so
    ``16.829999923706055`` prints as ``16.83``; for float64, Python's repr."""
    t = float(t)
    if precision != "float32" or not math.isfinite(t):
        return repr(t)
    lo = float(_core_round_down(t))
    if not math.isfinite(lo):
        return repr(lo)
    hi = float(np.nextafter(np.float32(lo), np.float32(np.inf)))
    for digits in range(1, 18):
        for base in (lo, (lo + hi) / 2):
            text = f"{base:.{digits}g}"
            if lo <= float(text) < hi:
                return text
    return repr(lo)


def _core_round_down(t):
    """The largest float32 not above ``t`` (how scikit-learn's float32
    comparison ``x <= t`` reads a float64 threshold)."""
    f = np.float32(t)
    if np.isfinite(f) and float(f) > t:
        f = np.nextafter(f, np.float32(-np.inf))
    elif np.isinf(f) and f > 0 and np.isfinite(t):
        f = np.finfo(np.float32).max
    return f


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
    def from_sklearn(cls, model, *, precision="float32", check=True):
        """Flatten a fitted tree classifier.

        Parameters
        ----------
        model : fitted tree classifier
            See :func:`flatten_tree` for what is accepted.
        precision : {"float32", "float64"}, default "float32"
            scikit-learn's comparison (float32 features) or float64.
        check : bool, default True
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
    def from_flat(cls, flat):
        tree = cls(**flat.arrays())
        tree.feature_names_in_ = flat.feature_names
        tree.source_ = flat.source
        tree.n_node_samples_ = flat.n_node_samples
        return tree

    def save(self, path):
        """Write the text format of ``crembo/fast_tree.hpp`` (``FastTree::load``)."""
        Path(path).write_text(self.to_text())

    @classmethod
    def load(cls, path):
        """Read a file written by :meth:`save`. Class names that all parse as
        integers (or numbers) come back as integers (or floats)."""
        state = _native.fast_tree_text_state(Path(path).read_text())
        state["classes"] = _parse_class_names(list(state["classes"]))
        tree = cls(**state)
        tree.feature_names_in_ = None
        tree.source_ = "FastTree file"
        tree.n_node_samples_ = None
        return tree

    def to_cpp(self, name="crembo_tree", **kwargs):
        """Self-contained C++ source of this tree (see :func:`export_cpp`)."""
        return export_cpp(self, name=name, **kwargs)

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


def _check_against(tree, model, flat):
    X, leaves = _leaf_points(flat)
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


def _as_fast_tree(model, precision="float32"):
    if isinstance(model, FastTree):
        return model
    return FastTree.from_flat(flatten_tree(model, precision=precision))


# --------------------------------------------------------------------------- rules
@dataclass
class Condition:
    """``lower < x[feature] <= upper`` (either bound may be absent); a missing
    value satisfies it when ``missing`` is true."""

    feature: int
    lower: float | None = None
    upper: float | None = None
    missing: bool = False

    def text(self, names, fmt):
        name = names[self.feature] if names is not None else f"x[{self.feature}]"
        if self.lower is not None and self.upper is not None:
            s = f"{fmt(self.lower)} < {name} <= {fmt(self.upper)}"
        elif self.upper is not None:
            s = f"{name} <= {fmt(self.upper)}"
        else:
            s = f"{name} > {fmt(self.lower)}"
        return f"({s} or {name} is missing)" if self.missing else s


@dataclass
class CategoryCondition:
    """``x[feature]`` is one of ``inside`` (when not None) and none of
    ``outside``; a missing value satisfies it when ``missing`` is true.
    Values are category codes (names shown through ``FlatTree.category_names``)."""

    feature: int
    inside: frozenset | None = None
    outside: frozenset = frozenset()
    missing: bool = False
    names: object = None

    def text(self, names, fmt):
        name = names[self.feature] if names is not None else f"x[{self.feature}]"
        shown = self.names or (lambda f, codes: "{" + ", ".join(map(str, sorted(codes))) + "}")
        if self.inside is not None:
            s = f"{name} in {shown(self.feature, self.inside)}"
        else:
            s = f"{name} not in {shown(self.feature, self.outside)}"
        return f"({s} or {name} is missing)" if self.missing else s

    def holds(self, x):
        """Rows of the code column ``x`` that satisfy it (missing ones excluded)."""
        known = ~np.isnan(x)
        ok = known.copy()
        if self.inside is not None:
            ok &= np.isin(x, np.fromiter(self.inside, dtype=np.float64, count=len(self.inside)))
        if self.outside:
            ok &= ~np.isin(x, np.fromiter(self.outside, dtype=np.float64, count=len(self.outside)))
        return ok


@dataclass
class Rule:
    """One leaf of a tree as an if-then rule: all ``conditions`` hold ->
    predict ``label`` (class index ``class_index``) with probabilities ``proba``."""

    conditions: list
    label: object
    class_index: int
    proba: np.ndarray
    leaf: int
    samples: int | None = None
    extra: dict = field(default_factory=dict)

    def text(self, feature_names=None, class_names=None, decimals=None, precision="float32", show_missing=True):
        if decimals is None:

            def fmt(v):
                return short_threshold(v, precision)
        else:

            def fmt(v):
                return f"{v:.{decimals}f}"

        conds = self.conditions if show_missing else [replace(c, missing=False) for c in self.conditions]
        cond = " AND ".join(c.text(feature_names, fmt) for c in conds) or "TRUE"
        label = class_names[self.class_index] if class_names is not None else self.label
        conf = float(self.proba[self.class_index])
        tail = f"p={conf:.3f}" + (f", {self.samples} samples" if self.samples is not None else "")
        return f"IF {cond} THEN {label}  ({tail})"


def tree_rules(model, *, precision="float32"):
    """The leaves of a tree as a list of :class:`Rule`, one per leaf, in
    left-to-right order. Each rule's conditions are the path to its leaf with
    the bounds on each feature merged (the tightest upper and lower bound).
    Rules are disjoint and cover every input: exactly one matches a row."""
    flat = flatten_tree(model, precision=precision)
    rules = []
    stack = [(0, {})]
    while stack:
        i, conds = stack.pop()
        if flat.children_left[i] < 0:
            c = int(flat.leaf_class[i])
            samples = None if flat.n_node_samples is None else int(flat.n_node_samples[i])
            rules.append(Rule([conds[f] for f in sorted(conds)], flat.classes[c], c, flat.proba[i].copy(), i, samples))
            continue
        f, t = int(flat.feature[i]), float(flat.threshold[i])
        nan_left = bool(flat.missing_go_to_left[i])
        old = conds.get(f)
        left, right = dict(conds), dict(conds)
        if flat.categorical and i in flat.categorical:
            S = frozenset(flat.categorical[i])
            if old is None:
                old = CategoryCondition(f, None, frozenset(), True, flat.category_text)
            inside_l = S if old.inside is None else old.inside & S
            left[f] = CategoryCondition(f, inside_l, frozenset(), old.missing and nan_left, flat.category_text)
            if old.inside is None:
                right[f] = CategoryCondition(f, None, old.outside | S, old.missing and not nan_left, flat.category_text)
            else:
                right[f] = CategoryCondition(
                    f, old.inside - S, frozenset(), old.missing and not nan_left, flat.category_text
                )
        elif old is None:
            left[f] = Condition(f, None, t, nan_left)
            right[f] = Condition(f, t, None, not nan_left)
        else:
            up = t if old.upper is None else min(old.upper, t)
            lo = t if old.lower is None else max(old.lower, t)
            left[f] = Condition(f, old.lower, up, old.missing and nan_left)
            right[f] = Condition(f, lo, old.upper, old.missing and not nan_left)
        stack.append((int(flat.children_right[i]), right))
        stack.append((int(flat.children_left[i]), left))
    return rules


def rules_predict(rules, X, *, precision="float32", return_index=False):
    """Labels of the rows of ``X`` from a list of rules (slow, for checking):
    the label of the one rule each row matches, features compared as
    scikit-learn does."""
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X: expected a 2-d array, got shape {X.shape}")
    # Cast as scikit-learn does, then compare in float64 with the float64
    # thresholds (a float32 array against a Python float would compare in
    # float32 under NumPy 2's promotion rules, rounding the threshold).
    Xc = X.astype(np.float32 if precision == "float32" else np.float64).astype(np.float64)
    out = np.full(len(X), -1, dtype=np.int64)
    for r in rules:
        match = np.ones(len(X), dtype=bool)
        for c in r.conditions:
            if isinstance(c, CategoryCondition):
                x = X[:, c.feature].astype(np.float64)
                match &= c.holds(x) | (np.isnan(x) & c.missing)
                continue
            x = Xc[:, c.feature]
            ok = np.ones(len(X), dtype=bool)
            if c.upper is not None:
                ok &= x <= c.upper
            if c.lower is not None:
                ok &= x > c.lower
            match &= ok | (np.isnan(x) & c.missing)
        out[match] = r.class_index
    if np.any(out < 0):
        raise ValueError(f"{int(np.sum(out < 0))} rows match no rule")
    if return_index:
        return out
    return _labels_of(rules, out)


def _labels_of(rules, idx):
    labels = {}
    for r in rules:
        labels[r.class_index] = r.label
    keys = sorted(labels)
    table = np.asarray([labels[k] for k in keys])
    pos = np.searchsorted(np.asarray(keys), idx)
    return table[pos]


def export_rules(
    model, *, feature_names=None, class_names=None, decimals=None, precision="float32", show_missing=False
):
    """The tree as readable if-then rules, one line per leaf.

    Thresholds are printed as the shortest decimals that split float32
    features exactly as the tree does (:func:`short_threshold`) unless
    ``decimals`` asks for rounding; features are compared as float32, as
    scikit-learn does. ``show_missing=True`` adds where missing values (NaN)
    go ("or x is missing"); by default the rules describe finite inputs.
    """
    flat = flatten_tree(model, precision=precision)
    names = feature_names if feature_names is not None else flat.feature_names
    if names is not None and len(names) != flat.n_features:
        raise ValueError(f"feature_names: expected {flat.n_features} names, got {len(names)}")
    if class_names is not None and len(class_names) != len(flat.classes):
        raise ValueError(f"class_names: expected {len(flat.classes)} names, got {len(class_names)}")
    rules = tree_rules(flat)
    head = (
        f"# {len(rules)} rules from {flat.source} (depth {flat.depth()}, {flat.n_features} features, "
        f"{len(flat.classes)} classes); features compared as {flat.precision}, x <= threshold"
        f"{'' if show_missing else '; missing values not shown'}\n"
    )
    return head + "".join(
        f"rule {k + 1}: {r.text(names, class_names, decimals, flat.precision, show_missing)}\n"
        for k, r in enumerate(rules)
    )


# --------------------------------------------------------------------------- Graphviz
def _dot_escape(s):
    return str(s).replace("\\", "\\\\").replace('"', '\\"')


def export_dot(model, *, feature_names=None, class_names=None, decimals=None, precision="float32", show_missing=False):
    """The tree in Graphviz dot (render with ``dot -Tpng tree.dot -o tree.png``).

    Thresholds are printed as in :func:`export_rules` (``decimals`` rounds
    them to that many significant digits); ``show_missing=True`` notes
    splits that send missing values left."""
    flat = flatten_tree(model, precision=precision)
    names = feature_names if feature_names is not None else flat.feature_names
    labels = class_names if class_names is not None else [str(c) for c in flat.classes]
    lines = [
        "digraph Tree {",
        '  node [shape=box, style="rounded,filled", fontname="helvetica", fillcolor="#ffffff"];',
        '  edge [fontname="helvetica"];',
    ]
    palette = [
        "#8dd3c7",
        "#ffffb3",
        "#bebada",
        "#fb8072",
        "#80b1d3",
        "#fdb462",
        "#b3de69",
        "#fccde5",
        "#d9d9d9",
        "#bc80bd",
    ]
    for i in range(flat.n_nodes):
        samples = "" if flat.n_node_samples is None else f"\\nsamples = {int(flat.n_node_samples[i])}"
        if flat.children_left[i] < 0:
            c = int(flat.leaf_class[i])
            text = f"class = {_dot_escape(labels[c])}\\np = {flat.proba[i, c]:.3f}{samples}"
            lines.append(f'  {i} [label="{text}", fillcolor="{palette[c % len(palette)]}"];')
        else:
            f = int(flat.feature[i])
            fname = _dot_escape(names[f] if names is not None else f"x[{f}]")
            missing = "\\n(missing: left)" if show_missing and flat.missing_go_to_left[i] else ""
            if flat.categorical and i in flat.categorical:
                text = f"{fname} in {_dot_escape(flat.category_text(f, flat.categorical[i]))}{missing}{samples}"
            else:
                thr = (
                    short_threshold(flat.threshold[i], flat.precision)
                    if decimals is None
                    else f"{flat.threshold[i]:.{decimals}g}"
                )
                text = f"{fname} <= {thr}{missing}{samples}"
            lines.append(f'  {i} [label="{text}"];')
    for i in range(flat.n_nodes):
        if flat.children_left[i] >= 0:
            lines.append(f'  {i} -> {int(flat.children_left[i])} [label="yes"];')
            lines.append(f'  {i} -> {int(flat.children_right[i])} [label="no"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- ONNX
def export_onnx(model, path=None, *, target_opset=None):
    """Convert a tree student (scikit-learn's decision trees, crembo's
    ``HistTreeClassifier`` without categorical splits) to ONNX with skl2onnx.

    Missing values: ONNX Runtime (1.32, with skl2onnx 1.20) does not follow
    the side a split learnt for NaN, for scikit-learn's trees as for
    crembo's, so rows with missing values may be predicted differently;
    finite rows are predicted as the tree does.

    The ONNX graph takes a float32 tensor ``X`` of shape ``(n, n_features)``
    and returns ``label`` and ``probabilities``. Needs ``skl2onnx`` (``pip
    install crembo[export]``). Returns the ``onnx.ModelProto``; also writes
    it to ``path`` when given.
    """
    try:
        from skl2onnx import to_onnx
        from skl2onnx.common.data_types import FloatTensorType
    except ImportError:
        raise ImportError(
            "ONNX export needs skl2onnx: pip install 'crembo[export]' (or pip install skl2onnx onnxruntime)"
        ) from None
    est, _ = _unwrap(model)
    if np.any(getattr(getattr(est, "tree_", None), "is_categorical", False)):
        raise ValueError(
            "export_onnx: this tree has category-subset splits (categorical features), which the ONNX "
            "TreeEnsembleClassifier node cannot carry (numeric splits only); use export_rules or "
            "export_dot, or fit the tree with categorical_features=None"
        )
    if not hasattr(est, "tree_") or _is_allowed_label_student(est):
        raise TypeError(f"export_onnx: {type(est).__name__} is not a scikit-learn tree classifier skl2onnx can convert")
    from .onnx_hist import register

    register()  # crembo's HistTreeClassifier
    d = int(est.n_features_in_)
    try:
        onx = to_onnx(
            est,
            initial_types=[("X", FloatTensorType([None, d]))],
            target_opset=target_opset,
            options={id(est): {"zipmap": False}},
        )
    except Exception as exc:  # skl2onnx raises many types for models it cannot convert
        raise TypeError(f"export_onnx: skl2onnx could not convert {type(est).__name__}: {exc}") from None
    if path is not None:
        Path(path).write_bytes(onx.SerializeToString())
    return onx


# --------------------------------------------------------------------------- C++
def _identifier(name):
    ok = name and (name[0].isalpha() or name[0] == "_") and all(ch.isalnum() or ch == "_" for ch in name)
    if not ok or not name.isascii():
        raise ValueError(f"name: {name!r} is not a C++ identifier")
    return name


def _cpp_float(v, f32):
    v = float(v)
    if math.isinf(v):
        kind = "float" if f32 else "double"
        return f"{'-' if v < 0 else ''}std::numeric_limits<{kind}>::infinity()"
    s = f"{v:.9g}" if f32 else f"{v:.17g}"
    if not any(ch in s for ch in ".e"):
        s += ".0"
    return s + ("f" if f32 else "")


def _cpp_string(s):
    return json.dumps(str(s), ensure_ascii=True)


def export_cpp(model, *, name="crembo_tree", precision="float32", feature_names=None):
    """Self-contained C++ source (a header) of a tree: nested if/else on the
    features, no dependency on crembo or Python.

    The generated namespace ``name`` holds ``n_features``, ``n_classes``,
    ``class_names``, and, for ``T`` = ``float`` or ``double``,

    * ``int leaf(const T* x)``: the leaf index (0-based, left to right);
    * ``int predict(const T* x)``: the class index of one row of
      ``n_features`` values;
    * ``const double* predict_proba(const T* x)``: its class probabilities;
    * ``void predict_batch(const T* X, long n, int* out)``: ``n`` C-ordered rows.

    Thresholds are the float32 values scikit-learn effectively compares with
    (the float64 threshold rounded down), printed with 9 significant digits,
    which read back exactly, so the code agrees with the tree on every input.
    """
    ident = _identifier(name)
    flat = flatten_tree(model, precision=precision)
    flat.check_numeric("export_cpp")
    f32 = flat.precision == "float32"
    names = feature_names if feature_names is not None else flat.feature_names
    C = len(flat.classes)
    leaf_ids = {}
    order = []
    stack = [0]
    while stack:  # left-to-right leaf numbering
        i = stack.pop()
        if flat.children_left[i] < 0:
            leaf_ids[i] = len(order)
            order.append(i)
        else:
            stack.append(int(flat.children_right[i]))
            stack.append(int(flat.children_left[i]))

    vtype = "float" if f32 else "double"
    body = []
    # Iterative emission: (node, indent) to open, or a closing marker.
    work = [("node", 0, 2)]
    while work:
        item = work.pop()
        if item[0] == "text":
            body.append(item[1])
            continue
        _, i, ind = item
        pad = " " * ind
        if flat.children_left[i] < 0:
            body.append(f"{pad}return {leaf_ids[i]};")
            continue
        f = int(flat.feature[i])
        t = _core_round_down(flat.threshold[i]) if f32 else flat.threshold[i]
        lit = _cpp_float(t, f32)
        x = f"static_cast<{vtype}>(x[{f}])"
        cond = f"!({x} > {lit})" if flat.missing_go_to_left[i] else f"{x} <= {lit}"
        note = ""
        if names is not None:
            note = "  // " + str(names[f]).replace("\n", " ") + f" <= {float(flat.threshold[i])!r}"
        body.append(f"{pad}if ({cond}) {{{note}")
        work.append(("text", f"{pad}}}"))
        work.append(("node", int(flat.children_right[i]), ind + 2))
        work.append(("text", f"{pad}}} else {{"))
        work.append(("node", int(flat.children_left[i]), ind + 2))

    proba_rows = ",\n".join("    {" + ", ".join(repr(float(p)) for p in flat.proba[i]) + "}" for i in order)
    classes = ", ".join(str(int(flat.leaf_class[i])) for i in order)
    class_names = ", ".join(_cpp_string(c) for c in flat.classes)
    guard = f"CREMBO_GENERATED_{ident.upper()}_HPP"
    try:
        from . import __version__ as version
    except ImportError:  # pragma: no cover
        version = "?"
    header = [
        f"// Generated by crembo {version} (crembo.export.export_cpp) from {flat.source}:",
        f"// {flat.n_nodes} nodes, {len(order)} leaves, depth {flat.depth()}, {flat.n_features} features, {C} classes.",
        "// Self-contained C++11: no crembo, no Python. Each row holds n_features values.",
        "// Comparisons follow scikit-learn: the feature cast to "
        + vtype
        + ", x <= threshold goes left"
        + (" (thresholds are" if f32 else "")
        + (" the float64 ones rounded down to float32)." if f32 else "."),
        f"#ifndef {guard}",
        f"#define {guard}",
        "",
        "#include <limits>",
        "",
        f"namespace {ident} {{",
        "",
        f"static const int n_features = {flat.n_features};",
        f"static const int n_classes = {C};",
        f"static const int n_leaves = {len(order)};",
        f"static const char* const class_names[{C}] = {{{class_names}}};",
        f"static const int leaf_class[{len(order)}] = {{{classes}}};",
        f"static const double leaf_proba[{len(order)}][{C}] = {{",
        proba_rows,
        "};",
        "",
        "template <class T>",
        "inline int leaf(const T* x) {",
        *body,
        "}",
        "",
        "template <class T>",
        "inline int predict(const T* x) { return leaf_class[leaf(x)]; }",
        "",
        "template <class T>",
        "inline const double* predict_proba(const T* x) { return leaf_proba[leaf(x)]; }",
        "",
        "template <class T>",
        "inline void predict_batch(const T* X, long n, int* out) {",
        "  for (long i = 0; i < n; ++i) out[i] = predict(X + i * n_features);",
        "}",
        "",
        f"}}  // namespace {ident}",
        "",
        f"#endif  // {guard}",
        "",
    ]
    return "\n".join(header)


def export_native(model, path=None, *, precision="float32"):
    """The tree in the text format of ``crembo/fast_tree.hpp``
    (``crembo::FastTree::load(path)`` in C++, :meth:`FastTree.load` in
    Python). Returns the text; writes it to ``path`` when given."""
    flatten_tree(model, precision=precision).check_numeric("export_native (the FastTree text format)")
    text = _as_fast_tree(model, precision).to_text()
    if path is not None:
        Path(path).write_text(text)
    return text
