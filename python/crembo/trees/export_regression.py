"""Export and deploy regression-tree students (CREMBORegressor,
LabelDistillerRegressor, DecisionTreeRegressor).

A regression tree predicts one of finitely many leaf values, so it is
flattened into :class:`crembo.trees.representation.FlatTree` (by
:func:`flatten_regression_tree`, defined there) as a classifier whose
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
  :func:`crembo.trees.export.export_dot`) and self-contained C++
  (:func:`export_regression_cpp`, with ``double predict_value(const T* x)``).

ONNX is not offered for regression students (``export_onnx`` converts
classifiers only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import export
from .representation import (
    FlatTree,  # noqa: F401 - crembo.trees.export_regression.FlatTree, as before
    flatten_regression_tree,
    is_regression_model,
    regression_fast_tree,
)

if TYPE_CHECKING:
    import os

__all__ = [
    "flatten_regression_tree",
    "regression_fast_tree",
    "export_regression_rules",
    "export_regression_cpp",
    "export_regression_native",
    "is_regression_model",
]


def export_regression_native(
    model: Any, path: str | os.PathLike[str] | None = None, *, precision: str = "float32"
) -> str:
    """The text file of ``crembo/fast_tree.hpp`` for a regression tree (its
    class names are the leaf values). Returns the text; writes ``path`` when given."""
    return export.export_native(flatten_regression_tree(model, precision=precision), path)


def export_regression_rules(
    model: Any,
    *,
    feature_names: list | None = None,
    decimals: int | None = None,
    precision: str = "float32",
    show_missing: bool = False,
) -> str:
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


def export_regression_cpp(
    model: Any, *, name: str = "crembo_tree", precision: str = "float32", feature_names: list | None = None
) -> str:
    """Self-contained C++ of a regression tree: the classification header of
    :func:`crembo.trees.export.export_cpp` over the distinct leaf values, plus
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
    head = "// A regression tree (crembo.trees.export_regression): see predict_value at the end.\n"
    return head + text.replace(marker, extra + marker)
