"""Trees: the native histogram learners, the tree representation and its exports.

* :mod:`~crembo.trees.hist`: ``HistTreeClassifier`` and ``BinnedData``;
* :mod:`~crembo.trees.hist_regression`: ``HistTreeRegressor``;
* :mod:`~crembo.trees.representation`: ``FlatTree``, ``flatten_tree`` and the
  native predictor ``FastTree``;
* :mod:`~crembo.trees.codegen`: C++ source of a flattened tree;
* :mod:`~crembo.trees.export`, :mod:`~crembo.trees.export_regression`,
  :mod:`~crembo.trees.onnx`: rules, Graphviz, C++, native and ONNX exports,
  built on the representation.
"""

from .representation import FastTree, FlatTree, flatten_regression_tree, flatten_tree

__all__ = ["FastTree", "FlatTree", "flatten_regression_tree", "flatten_tree"]
