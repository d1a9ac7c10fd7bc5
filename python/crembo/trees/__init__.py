"""Trees: the flat representation of a fitted tree and its native evaluator.

* :mod:`crembo.trees.representation`: :class:`FlatTree` (a fitted tree as
  per-node arrays), :func:`flatten_tree` / :func:`flatten_regression_tree`
  (read any supported tree into one) and :class:`FastTree` (the arrays
  walked in C++).
* :mod:`crembo.trees.codegen`: C++ source of a flattened tree.

The export formats (:mod:`crembo.export`) build on these.
"""

from .representation import FastTree, FlatTree, flatten_regression_tree, flatten_tree

__all__ = ["FastTree", "FlatTree", "flatten_regression_tree", "flatten_tree"]
