"""crembo on a Dask cluster: ``pip install crembo[dask]``.

:class:`CREMBOClassifier` takes dask arrays and dask DataFrames and runs
MEMO and CREMBO on the workers, the data staying where it lives: teacher
beliefs per partition (the teacher sent once), thresholds, depth and
violation counts as reductions, allowed labels per partition, and a
data-parallel histogram tree (bin edges from a mergeable sketch, node
histograms per partition summed per level, splits chosen once by the
in-memory tree's own split search). :class:`BinEdges` holds the bins; its
``binned(X)`` gives an in-memory ``BinnedData`` on the same bins.
"""

try:
    import dask  # noqa: F401
    import distributed  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("crembo.dask needs dask and distributed: pip install 'crembo[dask]'") from exc

from ._bins import BinEdges
from ._estimator import CREMBOClassifier

__all__ = ["CREMBOClassifier", "BinEdges"]
