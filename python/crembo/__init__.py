"""crembo: robust model compression with deep hypotheses.

Compress any teacher (a random forest, a boosted ensemble, a network) into
any student class (a depth-4 tree, a logistic regression, a small network)
with MEMO and CREMBO (Armstrong and Gilad-Bachrach, AAAI 2021): find a
student that is *deep*, central with respect to the teacher's belief
``p(y|x)``, and choose its depth level on validation data.
"""

from __future__ import annotations

from . import _compat, _native
from ._validation import Beliefs
from .core import (
    allowed_labels,
    beliefs_from_votes,
    budgeted_thresholds,
    candidate_thresholds,
    count_violations,
    depth,
    depth_profile,
    is_consistent,
    max_achievable_depth,
    point_depth,
)
from .compress.estimators import CREMBOClassifier, LabelDistiller, default_teacher
from .compress.memo import MemoResult, default_student, memo
from .compress.regression import CREMBORegressor, LabelDistillerRegressor
from .trees.hist_regression import HistTreeRegressor
from .compress.teachers import teacher_beliefs
from .trees.hist import BinnedData, HistTreeClassifier, tree_student
from .trees import FastTree

_compat.install()


def __getattr__(name):
    """Old module paths as attributes (``crembo.tree``), with a warning."""
    return _compat.module_getattr(name)


__version__ = _native.version


def cuda_available() -> bool:
    """True when crembo was built with CUDA kernels and a CUDA device is present."""
    return _native.cuda_ready()


__all__ = [
    "Beliefs",
    "BinnedData",
    "CREMBOClassifier",
    "CREMBORegressor",
    "FastTree",
    "HistTreeClassifier",
    "HistTreeRegressor",
    "LabelDistiller",
    "LabelDistillerRegressor",
    "MemoResult",
    "allowed_labels",
    "beliefs_from_votes",
    "budgeted_thresholds",
    "candidate_thresholds",
    "count_violations",
    "cuda_available",
    "default_student",
    "default_teacher",
    "depth",
    "depth_profile",
    "is_consistent",
    "max_achievable_depth",
    "memo",
    "point_depth",
    "teacher_beliefs",
    "tree_student",
]
