"""The compression method: teachers' beliefs, MEMO, the CREMBO sweep and the
estimators built on them.

* :mod:`~crembo.compress.teachers`: any teacher as a belief ``p(y|x)``;
* :mod:`~crembo.compress.augment`: MUNGE rows, a larger transfer set;
* :mod:`~crembo.compress.students`: students trained on allowed labels;
* :mod:`~crembo.compress.memo`: MEMO, the deepest student (docs/ALGORITHMS.md, "MEMO");
* :mod:`~crembo.compress.sweep`: CREMBO's threshold sweep and its selection;
* :mod:`~crembo.compress.estimators`: ``CREMBOClassifier`` and ``LabelDistiller``;
* :mod:`~crembo.compress.regression`: the same for regression;
* :mod:`~crembo.compress.tables`: sample weights, unlabelled rows and missing values.
"""

from .sweep import SweepCandidate, SweepResult, cv_sweep, holdout_sweep, select_candidate

__all__ = ["SweepCandidate", "SweepResult", "cv_sweep", "holdout_sweep", "select_candidate"]
