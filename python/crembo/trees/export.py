"""Export tree students: rules, Graphviz, ONNX, C++ and the native text format.

A fitted tree (a scikit-learn ``DecisionTreeClassifier``, a fitted
``CREMBOClassifier`` or ``LabelDistiller`` whose student is a tree, a
multi-output tree student of the paper's oracle, or any object with a
scikit-learn-like ``tree_``: ``children_left``, ``children_right``,
``feature``, ``threshold``, ``value``) is first read into the flat
representation of :mod:`crembo.trees.representation` (:class:`FlatTree`;
:class:`FastTree` evaluates it natively, with predictions identical to the
model's own). This module writes that representation out:

* as if-then rules (:func:`tree_rules`, :func:`export_rules`);
* in Graphviz dot (:func:`export_dot`);
* in ONNX (:func:`export_onnx`, through skl2onnx when installed);
* without Python: :func:`export_cpp` writes self-contained C++ source of
  the tree, and :func:`export_native` writes a text file the header-only
  evaluator ``crembo/fast_tree.hpp`` loads.

:class:`FastTree`, :class:`FlatTree` and :func:`flatten_tree` are
re-exported here, where they were defined before :mod:`crembo.trees`.

Comparison semantics are scikit-learn's everywhere: a feature is cast to
float32 and compared with the float64 threshold, ``x <= threshold`` going
left; a missing value (NaN) goes where the tree learned to send it
(``missing_go_to_left``). ``precision="float64"`` compares float64 features
instead, for trees that split on float64 values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Sequence

    import onnx
    from numpy.typing import ArrayLike

from .codegen import check_identifier, cpp_source
from .representation import (
    PRECISIONS,  # noqa: F401 - crembo.trees.export.PRECISIONS, as before
    FastTree,
    FlatTree,
    _fast_tree_from_state,  # noqa: F401 - pickles of FastTree written before crembo.trees name it here
    as_fast_tree,
    flatten_tree,
    is_allowed_label_student,
    round_down_float32,
    unwrap_distiller,
)

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


def short_threshold(t: float, precision: str = "float32") -> str:
    """The shortest decimal text of a threshold that splits every input the
    way the tree does: for float32 comparison, any value in
    ``[rd(t), next float32 above rd(t))`` does (no float32 lies inside), so
    ``16.829999923706055`` prints as ``16.83``; for float64, Python's repr."""
    t = float(t)
    if precision != "float32" or not math.isfinite(t):
        return repr(t)
    lo = float(round_down_float32(t))
    if not math.isfinite(lo):
        return repr(lo)
    hi = float(np.nextafter(np.float32(lo), np.float32(np.inf)))
    for digits in range(1, 18):
        for base in (lo, (lo + hi) / 2):
            text = f"{base:.{digits}g}"
            if lo <= float(text) < hi:
                return text
    return repr(lo)


# --------------------------------------------------------------------------- rules
@dataclass
class Condition:
    """``lower < x[feature] <= upper`` (either bound may be absent); a missing
    value satisfies it when ``missing`` is true."""

    feature: int
    lower: float | None = None
    upper: float | None = None
    missing: bool = False

    def text(self, names: Sequence[str] | None, fmt: Callable[[float], str]) -> str:
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

    def text(self, names: Sequence[str] | None, fmt: Callable[[float], str]) -> str:
        name = names[self.feature] if names is not None else f"x[{self.feature}]"
        shown = self.names or (lambda f, codes: "{" + ", ".join(map(str, sorted(codes))) + "}")
        if self.inside is not None:
            s = f"{name} in {shown(self.feature, self.inside)}"
        else:
            s = f"{name} not in {shown(self.feature, self.outside)}"
        return f"({s} or {name} is missing)" if self.missing else s

    def holds(self, x: np.ndarray) -> np.ndarray:
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

    def text(
        self,
        feature_names: list | None = None,
        class_names: list | None = None,
        decimals: int | None = None,
        precision: str = "float32",
        show_missing: bool = True,
    ) -> str:
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


def tree_rules(model: Any, *, precision: str = "float32") -> list[Rule]:
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


def rules_predict(
    rules: list[Rule], X: ArrayLike, *, precision: str = "float32", return_index: bool = False
) -> np.ndarray:
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


def _feature_names_of(flat, feature_names, class_names):
    """The feature names to print (the given ones, else the tree's own),
    after checking both lists against the tree."""
    names = feature_names if feature_names is not None else flat.feature_names
    if names is not None and len(names) != flat.n_features:
        raise ValueError(f"feature_names: expected {flat.n_features} names, got {len(names)}")
    if class_names is not None and len(class_names) != len(flat.classes):
        raise ValueError(f"class_names: expected {len(flat.classes)} names, got {len(class_names)}")
    return names


def export_rules(
    model: Any,
    *,
    feature_names: list | None = None,
    class_names: list | None = None,
    decimals: int | None = None,
    precision: str = "float32",
    show_missing: bool = False,
) -> str:
    """The tree as readable if-then rules, one line per leaf.

    Thresholds are printed as the shortest decimals that split float32
    features exactly as the tree does (:func:`short_threshold`) unless
    ``decimals`` asks for rounding; features are compared as float32, as
    scikit-learn does. ``show_missing=True`` adds where missing values (NaN)
    go ("or x is missing"); by default the rules describe finite inputs.
    """
    flat = flatten_tree(model, precision=precision)
    names = _feature_names_of(flat, feature_names, class_names)
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


def export_dot(
    model: Any,
    *,
    feature_names: list | None = None,
    class_names: list | None = None,
    decimals: int | None = None,
    precision: str = "float32",
    show_missing: bool = False,
) -> str:
    """The tree in Graphviz dot (render with ``dot -Tpng tree.dot -o tree.png``).

    Thresholds are printed as in :func:`export_rules` (``decimals`` rounds
    them to that many significant digits); ``show_missing=True`` notes
    splits that send missing values left."""
    flat = flatten_tree(model, precision=precision)
    names = _feature_names_of(flat, feature_names, class_names)
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
def export_onnx(
    model: Any, path: str | os.PathLike[str] | None = None, *, target_opset: int | None = None
) -> onnx.ModelProto:
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
    est, _ = unwrap_distiller(model)
    if np.any(getattr(getattr(est, "tree_", None), "is_categorical", False)):
        raise ValueError(
            "export_onnx: this tree has category-subset splits (categorical features), which the ONNX "
            "TreeEnsembleClassifier node cannot carry (numeric splits only); use export_rules or "
            "export_dot, or fit the tree with categorical_features=None"
        )
    if not hasattr(est, "tree_") or is_allowed_label_student(est):
        raise TypeError(f"export_onnx: {type(est).__name__} is not a scikit-learn tree classifier skl2onnx can convert")
    from .onnx import register

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
def export_cpp(
    model: Any, *, name: str = "crembo_tree", precision: str = "float32", feature_names: list | None = None
) -> str:
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
    check_identifier(name)
    return cpp_source(flatten_tree(model, precision=precision), name=name, feature_names=feature_names)


def export_native(model: Any, path: str | os.PathLike[str] | None = None, *, precision: str = "float32") -> str:
    """The tree in the text format of ``crembo/fast_tree.hpp``
    (``crembo::FastTree::load(path)`` in C++, :meth:`FastTree.load` in
    Python). Returns the text; writes it to ``path`` when given."""
    flatten_tree(model, precision=precision).check_numeric("export_native (the FastTree text format)")
    text = as_fast_tree(model, precision).to_text()
    if path is not None:
        Path(path).write_text(text)
    return text
