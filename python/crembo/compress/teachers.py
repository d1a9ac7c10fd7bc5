"""Teacher adapters: turn any teacher into a belief ``p(y|x)`` on a set of points.

Supported teachers, in the order they are tried:

* a precomputed array of beliefs (handled by the estimators);
* a fitted scikit-learn *voting ensemble* (random forest, extra trees,
  bagging, hard voting): each member is a sampled hypothesis and the belief is
  the share of members voting each class (``method="votes"``);
* anything with ``predict_proba`` (gradient boosting, MLPs, calibrated
  models, XGBoost/LightGBM through their scikit-learn API);
* a plain callable ``f(X) -> (n, C)`` array of probabilities.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
import scipy.sparse as sp
from joblib import Parallel, delayed, effective_n_jobs
from sklearn.base import is_classifier
from sklearn.utils import check_array
from sklearn.utils.validation import _num_samples, validate_data

from .. import _native

from ..core import beliefs_from_votes
from .._validation import as_beliefs, check_choice, check_device

__all__ = ["teacher_beliefs", "is_voting_ensemble", "teacher_classes"]

BELIEF_METHODS = ("auto", "votes", "proba")


def _members(teacher):
    members = getattr(teacher, "estimators_", None)
    if members is None:
        return None
    # np.asarray would unpack same-length members (pipelines) into their steps.
    members = list(members.ravel()) if isinstance(members, np.ndarray) else list(members)
    if not members or not all(is_classifier(m) for m in members):
        return None
    return members


def unwrap_teacher(teacher: Any) -> Any:
    """The estimator inside a ``sklearn.frozen.FrozenEstimator`` (which keeps
    a prefit teacher fitted through ``clone``), else ``teacher`` itself."""
    from sklearn.frozen import FrozenEstimator

    return teacher.estimator if isinstance(teacher, FrozenEstimator) else teacher


def is_voting_ensemble(teacher: Any) -> bool:
    """True for a fitted ensemble whose members are classifiers that predict
    indices into the ensemble's ``classes_`` and vote one each: forests,
    bagging, hard voting (with or without weights)."""
    teacher = unwrap_teacher(teacher)
    if _members(teacher) is None or not hasattr(teacher, "classes_"):
        return False
    # Gradient boosting stores regressors; stacking members predict raw labels.
    from sklearn.ensemble import BaggingClassifier, VotingClassifier
    from sklearn.ensemble._forest import ForestClassifier

    if isinstance(teacher, VotingClassifier):
        return teacher.voting == "hard"  # soft voting averages predict_proba: that is its belief
    return isinstance(teacher, (ForestClassifier, BaggingClassifier))


def teacher_classes(teacher: Any) -> np.ndarray | None:
    """The teacher's ``classes_`` when it has them, else ``None``."""
    classes = getattr(unwrap_teacher(teacher), "classes_", None)
    if classes is None:
        return None
    classes = np.asarray(classes)
    return classes if classes.ndim == 1 else None


# Native forests already built, one per live teacher. An entry holds the
# members' tree_ objects, so it is reused only while the teacher still has
# exactly those trees (a refit replaces them).
_FORESTS = weakref.WeakKeyDictionary()


def _threads(n_jobs):
    """joblib's n_jobs as a native thread count (None: 0, crembo's default)."""
    return 0 if n_jobs is None else effective_n_jobs(n_jobs)


def _native_forest(teacher, members):
    """The ensemble's trees as a :class:`crembo._core.VoteForest`, or ``None``
    when a member is not a single-output scikit-learn classification tree
    voting for one of the ensemble's class indices."""
    features = getattr(teacher, "estimators_features_", None)
    key = tuple(getattr(m, "tree_", None) for m in members)
    key += tuple(features) if features is not None else ()
    try:
        cached = _FORESTS.get(teacher)
    except TypeError:  # not weakly referenceable
        cached = None
    if cached is not None and len(cached[0]) == len(key) and all(a is b for a, b in zip(cached[0], key)):
        return cached[1]
    forest = _build_forest(teacher, members, features)
    try:
        _FORESTS[teacher] = (key, forest)  # None too: the members' predict is needed
    except TypeError:
        pass
    return forest


def _build_forest(teacher, members, features):
    from sklearn.tree import BaseDecisionTree

    from ..trees.representation import tree_arrays

    C = len(teacher.classes_)
    d = getattr(teacher, "n_features_in_", None)
    if d is None or not all(
        isinstance(m, BaseDecisionTree) and is_classifier(m) and getattr(m, "n_outputs_", 1) == 1 for m in members
    ):
        return None
    forest = _native.VoteForest(int(d), C)
    for k, m in enumerate(members):
        left, right, feature, threshold, value, nan_left, _ = tree_arrays(m.tree_, type(m).__name__)
        value = value[:, 0, :] if value.ndim == 3 else value
        # A member votes classes_[argmax(leaf value)], an index of the ensemble's classes.
        member_classes = np.asarray(m.classes_)
        if member_classes.ndim != 1 or value.shape[1] != len(member_classes):
            return None
        if member_classes.dtype.kind not in "iuf" or not np.all(member_classes == np.round(member_classes)):
            return None
        if member_classes.min() < 0 or member_classes.max() >= C:
            return None
        leaf_class = member_classes.astype(np.int64)[np.argmax(value, axis=1)]
        if features is not None:
            cols = np.asarray(features[k], dtype=np.int64)
            split = left >= 0
            feature = feature.copy()
            feature[split] = cols[feature[split]]
        forest.add_tree(left, right, feature, threshold, leaf_class, nan_left)
    return forest


def _native_beliefs(teacher, X, n_jobs):
    """Vote shares counted by the native forest, or ``None`` when the
    members or the data need scikit-learn's own predict (non-tree members,
    missing or infinite values)."""
    members = _members(teacher)
    if not _all_trees(members):
        return None
    if sp.issparse(X):
        return None  # the members read sparse rows without densifying them
    try:
        Xc = check_array(X, dtype=np.float32)  # finite values only (the default check)
    except (ValueError, TypeError):
        return None  # the members' predict reports (or handles) it
    forest = _native_forest(teacher, members)
    if forest is None:
        return None
    return forest.beliefs(Xc, _threads(n_jobs))


def _member_votes(teacher, X, n_jobs):
    members = _members(teacher)
    features = getattr(teacher, "estimators_features_", None)
    # Trees work in float32; convert once instead of once per member.
    if sp.issparse(X):  # the members predict sparse rows themselves (CSR, float32 for trees)
        Xc = check_array(
            X, accept_sparse="csr", dtype=np.float32 if _all_trees(members) else None, ensure_all_finite=False
        )
    elif _all_trees(members):
        Xc = np.asarray(X, dtype=np.float32)
    elif features is not None:
        Xc = np.asarray(X)  # column subsets are taken positionally
    else:
        Xc = X

    def vote(k):
        m = members[k]
        Xk = Xc if features is None else Xc[:, features[k]]
        return np.asarray(m.predict(Xk))

    votes = Parallel(n_jobs=n_jobs, prefer="threads")(delayed(vote)(k) for k in range(len(members)))
    votes = np.vstack(votes)
    # Members were fitted on the ensemble's encoded labels 0..C-1.
    if not np.all(votes == np.round(votes)):
        raise ValueError("teacher: ensemble members returned non-integer label indices")
    return votes.astype(np.int32)


def _all_trees(members):
    from sklearn.tree import BaseDecisionTree

    return all(isinstance(m, BaseDecisionTree) for m in members)


def teacher_beliefs(
    teacher: Any,
    X: ArrayLike,
    *,
    method: str = "auto",
    n_classes: int | None = None,
    n_jobs: int | None = None,
    device: str = "auto",
    normalize: bool = False,
) -> np.ndarray:
    """Belief ``p(y|x)`` of a teacher on the rows of ``X``.

    Parameters
    ----------
    teacher : fitted estimator or callable
        A voting ensemble, an estimator with ``predict_proba``, or a callable
        returning an ``(n, C)`` array of probabilities.
    X : array-like of shape (n, d)
    method : {"auto", "votes", "proba"}, default="auto"
        ``"votes"`` uses the members of an ensemble as sampled hypotheses
        (the paper's belief for forests); ``"proba"`` uses ``predict_proba``;
        ``"auto"`` prefers votes when the teacher is a voting ensemble.
    n_classes : int or None, default=None
        Expected number of columns; checked when given.
    n_jobs : int or None, default=None
        Threads for querying ensemble members.
    device : {"auto", "cpu", "cuda"}, default="auto"
        Where the votes are counted (``"auto"``: the CPU, where NumPy inputs live) when the members are asked one by one.
        Ensembles of scikit-learn trees are always counted by crembo's native
        forest on the CPU, which is faster than asking the members and gives
        the same numbers.
    normalize : bool, default=False
        Rescale rows that do not sum to one instead of rejecting them.

    Returns
    -------
    beliefs : ndarray of shape (n, C), float64 (float32 when the teacher
        returns float32 probabilities)
    """
    check_choice(method, "belief", BELIEF_METHODS)
    check_device(device)
    n = _num_samples(X)  # len() is ambiguous for sparse matrices
    if is_voting_ensemble(teacher) and method in ("auto", "votes"):
        teacher = unwrap_teacher(teacher)
        # The members were fitted without column names: check X against the
        # ensemble's own names and count, as its predict would.
        validate_data(teacher, X, reset=False, skip_check_array=True)
        weights = getattr(teacher, "weights", None)
        P = _native_beliefs(teacher, X, n_jobs) if weights is None else None
        if P is None:
            C = len(teacher.classes_)
            votes = _member_votes(teacher, X, n_jobs)
            if votes.min() < 0 or votes.max() >= C:
                raise ValueError("teacher: ensemble members voted for a class outside the ensemble's classes_")
            if weights is None:
                P = beliefs_from_votes(votes, C, device=device)
            else:  # hard voting with weights: each member's vote counts its weight
                w = np.asarray(weights, dtype=np.float64)
                P = np.zeros((votes.shape[1], C))
                for k in range(votes.shape[0]):
                    P[np.arange(votes.shape[1]), votes[k]] += w[k]
                P /= w.sum()
    elif method == "votes":
        raise TypeError(
            f"teacher: belief='votes' needs a fitted voting ensemble (random forest, extra trees, "
            f"bagging, voting); got {type(teacher).__name__}"
        )
    elif hasattr(teacher, "predict_proba"):
        P = as_beliefs(teacher.predict_proba(X), name="teacher.predict_proba(X)", normalize=normalize)
    elif callable(teacher) and not hasattr(teacher, "fit"):
        P = as_beliefs(teacher(X), name="teacher(X)", normalize=normalize)
    else:
        raise TypeError(
            f"teacher: {type(teacher).__name__} has neither ensemble members (estimators_) nor predict_proba, "
            "and is not a callable returning probabilities"
        )
    if P.shape[0] != n:
        raise ValueError(f"teacher: returned beliefs for {P.shape[0]} rows, expected {n}")
    if n_classes is not None and P.shape[1] != n_classes:
        raise ValueError(f"teacher: returned {P.shape[1]} classes, expected {n_classes}")
    return P
