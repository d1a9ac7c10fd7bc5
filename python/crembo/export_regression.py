"""Export and deploy regression-tree students (CREMBORegressor,
LabelDistillerRegressor, DecisionTreeRegressor).

A regression tree predicts one of finitely many leaf values, so it is
flattened into :class:`crembo.export.FlatTree` as a classifier whose
"classes" are its distinct leaf values (sorted; each leaf predicts its own
value with probability one). Everything the classification exports offer
then applies unchanged, with predictions identical to the tree's:

* the native evaluator: :func:`regression_fast_tree` returns a
  :class:`crembo.FastTree` whose ``predict`` gives the leaf values (float64),
  and :func:`export_regression_native` writes its text file, which
  ``crembo/fast_tree.hpp`` loads in C++ (the values are the class names,
  printed as shortest round-trip decimals: ``std::stod`` reads them back
  exactly);
* rules (:func:`export_regression_rules`), Graphviz dot (through
  :func:`crembo.export.export_dot`) and self-contained C++
  (:func:`export_regression_cpp`, with ``double predict_value(const T* x)``).

ONNX is not offered for regression students (``export_onnx`` converts
classifiers only).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import is_regressor

from . import export
from .export import FlatTree

__all__ = [
    "flatten_regression_tree",
    "regression_fast_tree",
    "export_regression_rules",
    "export_regression_cpp",
    "export_regression_native",
    "is_regression_model",
]


def is_regression_model(model):
    """True for a scikit-learn regressor, a fitted crembo regression distiller,
    or a FastTree/FlatTree made from one."""
    if isinstance(model, (FlatTree, export.FastTree)):
        return bool(getattr(model, "regression_", False))
    try:
        return bool(is_regressor(model))
    except (AttributeError, TypeError):
        return getattr(model, "_estimator_type", None) == "regressor"


def _unwrap(model):
    if hasattr(model, "student") and hasattr(model, "teacher") and not hasattr(model, "tree_"):
        student = getattr(model, "student_", None)
        if student is None:
            raise ValueError(f"{type(model).__name__} is not fitted: call fit before exporting its student")
        return student, model
    return model, None


def flatten_regression_tree(model, *, precision="float32"):
    """Flatten a fitted regression tree into a :class:`FlatTree` whose classes
    are the distinct leaf values.

    Parameters
    ----------
    model : DecisionTreeRegressor (or ExtraTreeRegressor), or a fitted
        CREMBORegressor / LabelDistillerRegressor whose student is one.
    precision : {"float32", "float64"}
    """
    if precision not in export.PRECISIONS:
        raise ValueError(f"precision: expected one of {export.PRECISIONS}, got {precision!r}")
    if isinstance(model, FlatTree):
        return model
    tree, outer = _unwrap(model)
    name = type(tree).__name__
    if not hasattr(tree, "tree_"):
        raise TypeError(
            f"{name} is not a fitted tree regressor: expected a scikit-learn-like tree_; only tree "
            "students can be exported"
        )
    if not is_regression_model(tree):
        raise TypeError(f"{name} is not a regressor; use crembo.export for classification trees")
    left, right, feature, threshold, value, nan_left, samples = export._tree_arrays(tree.tree_, name)
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
    d = export._n_features(tree, feature, name)
    names = export._feature_names(tree)
    source = name
    if outer is not None:
        d = int(getattr(outer, "n_features_in_", d))
        names = names or export._feature_names(outer)
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


def regression_fast_tree(model, *, precision="float32", check=True):
    """The native evaluator (:class:`crembo.FastTree`) of a regression tree;
    its ``predict`` returns the leaf values as float64."""
    flat = flatten_regression_tree(model, precision=precision)
    tree = export.FastTree.from_flat(flat)
    tree.regression_ = True
    if check and not isinstance(model, FlatTree):
        X, _ = export._leaf_points(flat)
        if len(X):
            expected = np.asarray(model.predict(X), dtype=np.float64)
            if not np.array_equal(tree.predict(X), expected):
                raise ValueError(
                    "regression_fast_tree: the flattened tree disagrees with the model's predict; "
                    "try precision='float64' or check=False"
                )
    return tree


def export_regression_native(model, path=None, *, precision="float32"):
    """The text file of ``crembo/fast_tree.hpp`` for a regression tree (its
    class names are the leaf values). Returns the text; writes ``path`` when given."""
    return export.export_native(flatten_regression_tree(model, precision=precision), path)


def export_regression_rules(model, *, feature_names=None, decimals=None, precision="float32", show_missing=False):
    """The tree as if-then rules, one line per leaf: ``IF ... THEN y = value``."""
    flat = flatten_regression_tree(model, precision=precision)
    names = feature_names if feature_names is not None else flat.feature_names
    if names is not None and len(names) != flat.n_features:
        raise ValueError(f"feature_names: expected {flat.n_features} names, got {len(names)}")
    rules = export.tree_rules(flat)
    if decimals is None:

        def fmt(v):
            return export.short_threshold(v, flat.precision)

        def fmt_value(v):
            return repr(float(v))
    else:

        def fmt(v):
            return f"{v:.{decimals}f}"

        fmt_value = fmt
    lines = [
        f"# {len(rules)} rules from {flat.source} (regression, depth {flat.depth()}, {flat.n_features} "
        f"features); features compared as {flat.precision}, x <= threshold"
        f"{'' if show_missing else '; missing values not shown'}\n"
    ]
    for k, r in enumerate(rules):
        conds = (
            r.conditions
            if show_missing
            else [export.Condition(c.feature, c.lower, c.upper, False) for c in r.conditions]
        )
        cond = " AND ".join(c.text(names, fmt) for c in conds) or "TRUE"
        tail = f"  ({r.samples} samples)" if r.samples is not None else ""
        lines.append(f"rule {k + 1}: IF {cond} THEN y = {fmt_value(r.label)}{tail}\n")
    return "".join(lines)


def export_regression_cpp(model, *, name="crembo_tree", precision="float32", feature_names=None):
    """Self-contained C++ of a regression tree: the classification header of
    :func:`crembo.export.export_cpp` over the distinct leaf values, plus
    ``value[n_classes]`` and ``double predict_value(const T* x)`` (the
    tree's prediction) and ``predict_value_batch``."""
    flat = flatten_regression_tree(model, precision=precision)
    text = export.export_cpp(flat, name=name, precision=precision, feature_names=feature_names)
    values = ", ".join(repr(float(v)) for v in flat.classes)
    extra = "\n".join(
        [
            "// Regression: class k stands for the leaf value value[k]; predict_value is the tree's prediction.",
            f"static const double value[{len(flat.classes)}] = {{{values}}};",
            "",
            "template <class T>",
            "inline double predict_value(const T* x) { return value[predict(x)]; }",
            "",
            "template <class T>",
            "inline void predict_value_batch(const T* X, long n, double* out) {",
            "  for (long i = 0; i < n; ++i) out[i] = predict_value(X + i * n_features);",
            "}",
            "",
            "",
        ]
    )
    marker = f"}}  // namespace {name}"
    head = "// A regression tree (crembo.export_regression): see predict_value at the end.\n"
    return head + text.replace(marker, extra + marker)
