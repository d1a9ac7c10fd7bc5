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

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import is_classifier

from .core import beliefs_from_votes
from ._validation import as_beliefs, check_choice

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


def is_voting_ensemble(teacher):
    """True for a fitted ensemble whose members are classifiers that predict
    indices into the ensemble's ``classes_`` (forests, bagging, voting)."""
    if _members(teacher) is None or not hasattr(teacher, "classes_"):
        return False
    # Gradient boosting stores regressors; stacking members predict raw labels.
    from sklearn.ensemble import BaggingClassifier, VotingClassifier
    from sklearn.ensemble._forest import ForestClassifier

    return isinstance(teacher, (ForestClassifier, BaggingClassifier, VotingClassifier))


def teacher_classes(teacher):
    """The teacher's ``classes_`` when it has them, else ``None``."""
    classes = getattr(teacher, "classes_", None)
    if classes is None:
        return None
    classes = np.asarray(classes)
    return classes if classes.ndim == 1 else None


def _member_votes(teacher, X, n_jobs):
    members = _members(teacher)
    features = getattr(teacher, "estimators_features_", None)
    # Trees work in float32; convert once instead of once per member.
    if _all_trees(members):
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


def teacher_beliefs(teacher, X, *, method="auto", n_classes=None, n_jobs=None, device="cpu",
                    normalize=False):
    """Belief ``p(y|x)`` of a teacher on the rows of ``X``.

    Parameters
    ----------
    teacher : fitted estimator or callable
        A voting ensemble, an estimator with ``predict_proba``, or a callable
        returning an ``(n, C)`` array of probabilities.
    X : array-like of shape (n, d)
    method : {"auto", "votes", "proba"}, default "auto"
        ``"votes"`` uses the members of an ensemble as sampled hypotheses
        (the paper's belief for forests); ``"proba"`` uses ``predict_proba``;
        ``"auto"`` prefers votes when the teacher is a voting ensemble.
    n_classes : int, optional
        Expected number of columns; checked when given.
    n_jobs : int, optional
        Threads for querying ensemble members.
    device : {"cpu", "cuda"}
        Where the votes are counted.
    normalize : bool, default False
        Rescale rows that do not sum to one instead of rejecting them.

    Returns
    -------
    beliefs : ndarray of shape (n, C), float64 (float32 when the teacher
        returns float32 probabilities)
    """
    check_choice(method, "belief", BELIEF_METHODS)
    n = len(X)
    if is_voting_ensemble(teacher) and method in ("auto", "votes"):
        C = len(teacher.classes_)
        votes = _member_votes(teacher, X, n_jobs)
        if votes.min() < 0 or votes.max() >= C:
            raise ValueError("teacher: ensemble members voted for a class outside the ensemble's classes_")
        P = beliefs_from_votes(votes, C, device=device)
    elif method == "votes":
        raise TypeError(f"teacher: belief='votes' needs a fitted voting ensemble (random forest, extra trees, "
                        f"bagging, voting); got {type(teacher).__name__}")
    elif hasattr(teacher, "predict_proba"):
        P = as_beliefs(teacher.predict_proba(X), name="teacher.predict_proba(X)", normalize=normalize)
    elif callable(teacher) and not hasattr(teacher, "fit"):
        P = as_beliefs(teacher(X), name="teacher(X)", normalize=normalize)
    else:
        raise TypeError(
            f"teacher: {type(teacher).__name__} has neither ensemble members (estimators_) nor predict_proba, "
            "and is not a callable returning probabilities")
    if P.shape[0] != n:
        raise ValueError(f"teacher: returned beliefs for {P.shape[0]} rows, expected {n}")
    if n_classes is not None and P.shape[1] != n_classes:
        raise ValueError(f"teacher: returned {P.shape[1]} classes, expected {n_classes}")
    return P
