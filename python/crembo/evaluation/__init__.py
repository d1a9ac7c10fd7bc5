"""Evaluation: which compression method is better.

* :mod:`~crembo.evaluation.protocol`: the reference experimental protocol
  (cross-validated accuracy, agreement across folds);
* :mod:`~crembo.evaluation.metrics`: agreement, depth and the other metrics;
* :mod:`~crembo.evaluation.datasets`: the paper's data sets;
* :mod:`~crembo.evaluation.paper`: the paper's tabular experiments;
* :mod:`~crembo.evaluation.plots`: depth profiles and other plots.

The protocol's functions are importable from here, as before the package
layout (``from crembo.evaluation import generalization``).
"""

from .protocol import EXTRA_METHODS, METHODS, ProtocolResult, format_table, generalization, stability

__all__ = ["METHODS", "EXTRA_METHODS", "generalization", "stability", "ProtocolResult", "format_table"]
