"""ONNX export of ``HistTreeClassifier`` through skl2onnx.

A fitted ``HistTreeClassifier`` lays its tree out as scikit-learn's
``Tree`` (``tree_`` with ``children_left``, ``children_right``,
``feature``, ``threshold``, ``value`` and ``missing_go_to_left``), so
skl2onnx's own decision-tree converter writes it as one
``TreeEnsembleClassifier`` node. :func:`register` tells skl2onnx about the
class; :func:`crembo.trees.export.export_onnx` calls it. Trees with
category-subset splits cannot be written (the node has numeric splits
only) and are refused before conversion.
"""

from __future__ import annotations

__all__ = ["register"]

_REGISTERED = False


def register() -> bool:
    """Register ``HistTreeClassifier`` with skl2onnx (once); True when
    skl2onnx is installed."""
    global _REGISTERED
    if _REGISTERED:
        return True
    try:
        from skl2onnx import update_registered_converter
        from skl2onnx.operator_converters.decision_tree import convert_sklearn_decision_tree_classifier
        from skl2onnx.shape_calculators.linear_classifier import calculate_linear_classifier_output_shapes
    except ImportError:
        return False
    from .hist import HistTreeClassifier

    update_registered_converter(
        HistTreeClassifier,
        "CremboHistTreeClassifier",
        calculate_linear_classifier_output_shapes,
        convert_sklearn_decision_tree_classifier,
        options={
            "zipmap": [True, False, "columns"],
            "nocl": [True, False],
            "decision_path": [True, False],
            "decision_leaf": [True, False],
        },
    )
    _REGISTERED = True
    return True
