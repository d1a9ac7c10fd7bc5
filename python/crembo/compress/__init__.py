"""The compression method: the CREMBO threshold sweep (:mod:`crembo.compress.sweep`).

MEMO (:mod:`crembo.memo`), the teachers' beliefs, the students and the
estimators built on them are to join this package.
"""

from .sweep import SweepCandidate, SweepResult, cv_sweep, holdout_sweep, select_candidate

__all__ = ["SweepCandidate", "SweepResult", "cv_sweep", "holdout_sweep", "select_candidate"]
