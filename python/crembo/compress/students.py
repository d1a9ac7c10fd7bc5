"""Student adapters: train clones of a student template on allowed labels.

The native core speaks in label *indices* ``0..C-1``; students are trained on
the real class labels (``classes[index]``) so that a fitted single-label
student is an ordinary classifier a user can keep, export or pickle. Two ways
to train on the allowed-label sets ``A_t(x)``:

* ``"labels"``: one allowed label per point, with sample weights (the
  reweighting oracle and the threshold sweep). Works with any classifier that
  accepts ``sample_weight`` (and without it when all weights are equal).
* ``"multioutput"`` (the paper's variant): one binary output per class,
  fitted to the ``n x C`` allowed-label matrix; the prediction is the class
  whose "allowed" score is highest. Needs a student that supports
  multi-output classification (decision trees, extra trees, k-NN, forests).

A student may also learn allowed-label sets natively by offering
``fit_allowed(X, allowed, classes)`` (``allowed`` a boolean ``n x C`` matrix
whose columns follow ``classes``), after which its ``predict`` returns labels
from ``classes``; the trainer then calls it instead of the multi-output fit.
"""

from __future__ import annotations

import threading
import warnings
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import is_classifier
from sklearn.dummy import DummyClassifier
from sklearn.utils.validation import _num_samples, has_fit_parameter

from .. import _native
from .._validation import check_choice, seeded_clone
from ..trees.hist import resolve_student

__all__ = ["StudentTrainer", "AllowedLabelStudent", "supports_multioutput"]

TARGET_MODES = ("auto", "labels", "multioutput")


def supports_multioutput(estimator: Any) -> bool:
    """True when the estimator can learn the allowed-label matrix: it has a
    ``fit_allowed`` method, or scikit-learn's tags say it fits multi-output
    targets."""
    if callable(getattr(estimator, "fit_allowed", None)):
        return True
    try:
        from sklearn.utils import get_tags

        return bool(get_tags(estimator).target_tags.multi_output)
    except Exception:  # older scikit-learn or estimators without tags
        return False


class AllowedLabelStudent:
    """A fitted multi-output student read as a single-label classifier.

    ``estimator`` was fitted on the ``n x C`` allowed-label matrix; the score
    of class ``y`` at ``x`` is its predicted probability that ``y`` is allowed.
    """

    def __init__(self, estimator, classes):
        self.estimator = estimator
        self.classes_ = np.asarray(classes)

    def allowed_scores(self, X: ArrayLike) -> np.ndarray:
        proba = self.estimator.predict_proba(X)
        if not isinstance(proba, list):  # a single output comes back as one array
            proba = [proba]
        n = len(X)
        scores = np.zeros((n, len(self.classes_)), dtype=np.float64)
        for y, (p, cls) in enumerate(zip(proba, self.estimator.classes_)):
            hit = np.flatnonzero(np.asarray(cls) == 1)
            if hit.size:
                scores[:, y] = p[:, hit[0]]
        return scores

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        s = self.allowed_scores(X)
        total = s.sum(axis=1, keepdims=True)
        uniform = np.full_like(s, 1.0 / s.shape[1])
        return np.where(total > 0, s / np.where(total > 0, total, 1.0), uniform)

    def predict(self, X: ArrayLike) -> np.ndarray:
        return self.classes_[np.argmax(self.allowed_scores(X), axis=1)]


class StudentTrainer:
    """Fits clones of ``template`` on allowed-label targets.

    Parameters
    ----------
    template : scikit-learn classifier
        Never fitted or modified; every fit uses a fresh clone.
    classes : ndarray of shape (C,)
        The class labels; targets are indices into it.
    target : {"labels", "multioutput"}
    seed : int or None
        Given to clones whose ``random_state`` is left as None, so that
        repeated fits differ only by their targets.
    """

    def __init__(self, template, classes, *, target="labels", seed=None):
        template = resolve_student(template)  # "tree:4" -> the histogram tree student
        if not hasattr(template, "fit") or not hasattr(template, "get_params") or not is_classifier(template):
            raise TypeError(f"student: expected a scikit-learn classifier, got {type(template).__name__}")
        self.template = template
        self.classes = np.asarray(classes)
        check_choice(target, "student_target", ("labels", "multioutput"))
        if target == "multioutput" and not supports_multioutput(template):
            raise ValueError(
                f"student_target='multioutput': {type(template).__name__} does not support "
                "multi-output classification; use a multi-output student (e.g. a decision tree), "
                "or student_target='labels' with oracle='reweight'"
            )
        self.target = target
        self.seed = seed
        self.accepts_weights = has_fit_parameter(template, "sample_weight")
        # Students that offer bin_data(X) (HistTreeClassifier) get X binned
        # once per X and reused by every fit, row subsets included.
        self._bins = None
        self._bins_lock = threading.Lock()
        self._checked_arrays = []  # see mark_checked

    def _binned(self, X):
        """X binned once by the student's ``bin_data`` (None if it has none)."""
        if not callable(getattr(self.template, "bin_data", None)) or not isinstance(X, np.ndarray):
            return None
        with self._bins_lock:
            if self._bins is None or self._bins[0] is not X or self._bins[1].shape != X.shape:
                self._bins = (X, self.template.bin_data(X))
                self.mark_checked(X)  # bin_data checked it
            return self._bins[1]

    def __getstate__(self):
        # The lock, the binned-X cache and the checked arrays stay behind: a
        # copy (joblib's process and cluster backends pickle the sweep's
        # tasks) bins and checks anew.
        state = dict(self.__dict__)
        state["_bins"], state["_bins_lock"], state["_checked_arrays"] = None, None, []
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._bins_lock = threading.Lock()
        self.__dict__.setdefault("_checked_arrays", [])

    def _clone(self):
        return seeded_clone(self.template, self.seed)

    def fit_labels(self, X: Any, targets: ArrayLike, sample_weight: ArrayLike | None = None) -> Any:
        """Fit on label indices ``targets`` (``-1`` rows are left out)."""
        targets = np.asarray(targets)
        keep = targets >= 0
        if not np.any(keep):
            raise ValueError("student: no point has an allowed label at this threshold; nothing to fit")
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        binned = self._binned(X)
        if not np.all(keep):
            # With binned rows the student reads only their codes: the raw
            # rows are not copied (a copy of X per fit at 10^6 rows costs
            # more than the fit).
            if binned is None:
                X = X[keep]
            else:
                binned = binned.take(keep)
            targets = targets[keep]
            w = None if w is None else w[keep]
        if w is not None and np.all(w == w[0]):
            w = None  # equal weights: let students without sample_weight train too
        if w is not None and not self.accepts_weights:
            raise TypeError(
                f"student: {type(self.template).__name__}.fit does not accept sample_weight, which the "
                "reweighting oracle needs; use oracle='single' (one fit per threshold) or a student that "
                "takes sample weights"
            )
        y = self.classes[targets]
        est = self._clone()
        X_fit = X if binned is None else binned
        try:
            if w is None:
                est.fit(X_fit, y)
            else:
                est.fit(X_fit, y, sample_weight=w)
        except ValueError:
            if np.unique(targets).size != 1:
                raise
            # Some students refuse a single class; the constant student is the
            # exact answer there.
            X_rows = X if len(X) == len(y) else X[keep]
            est = DummyClassifier(strategy="constant", constant=y[0]).fit(X_rows, y)
        return est

    def fit_mask(self, X: Any, mask: ArrayLike, sample_weight: ArrayLike | None = None) -> Any:
        """Fit the paper's multi-output student on the allowed-label matrix
        (rows weighted by ``sample_weight`` when given)."""
        mask = np.asarray(mask, dtype=bool)
        keep = mask.any(axis=1)
        if not np.any(keep):
            raise ValueError("student: no point has an allowed label at this threshold; nothing to fit")
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)[keep]
        if w is not None and np.all(w == w[0]):
            w = None
        kw = {} if w is None else {"sample_weight": w}
        if w is not None and not self.accepts_weights:
            raise TypeError(
                f"sample_weight: the student {type(self.template).__name__}.fit does not accept sample_weight"
            )
        est = self._clone()
        if callable(getattr(est, "fit_allowed", None)):
            binned = self._binned(X)
            if binned is None:
                X_fit = X[keep]
            else:
                X_fit = binned if keep.all() else binned.take(keep)
            return est.fit_allowed(X_fit, mask[keep], self.classes, **kw)
        est.fit(X[keep], mask[keep].astype(np.int8), **kw)
        return AllowedLabelStudent(est, self.classes)

    def mark_checked(self, X: np.ndarray) -> np.ndarray:
        """Record that ``X`` (this very array) was checked as a student's
        input is (2-d float32 or float64, no infinite value, the fitted
        number of columns), so that histogram tree students walk it without
        checking it on every prediction (the sweep scores each candidate on
        the same validation rows). Returns ``X``. Not kept in a pickled copy."""
        ok = isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype in (np.float32, np.float64)
        if ok and not self._checked(X):
            self._checked_arrays.append(X)
        return X

    def _checked(self, X: Any) -> bool:
        """True when X is an array given to :meth:`mark_checked` (those this
        trainer binned among them: ``bin_data`` checked them), so a
        histogram tree may walk it without checking it again."""
        return any(a is X for a in self._checked_arrays)

    def _leaves(self, est: Any, X: Any) -> np.ndarray | None:
        """The leaves of ``X``'s rows in ``est`` when ``est`` is a histogram
        tree this trainer may walk without checking ``X``: on the bin codes
        when it binned ``X`` and fitted ``est`` on those bins (every fit of
        its own), on the values when ``X`` was marked checked. None
        otherwise."""
        from ..trees.hist import HistTreeClassifier

        if not isinstance(est, HistTreeClassifier):
            return None
        bins = self._bins
        if bins is not None and bins[0] is X and est.tree_.fitted_on(bins[1]):
            return est.tree_.apply_binned(bins[1], X, est._n_threads() or None)
        return est.apply(X, check_input=False) if self._checked(X) else None

    def apply(self, est: Any, X: Any) -> np.ndarray:
        """The leaf of each row of ``X`` in a fitted tree student."""
        leaves = self._leaves(est, X)
        return est.apply(X) if leaves is None else leaves

    def predict_index(self, est: Any, X: Any) -> np.ndarray:
        """Predicted label indices ``0..C-1`` of a fitted student."""
        leaves = self._leaves(est, X)
        if leaves is not None:  # the leaves say the labels
            return leaf_label_indices(est, leaves, self.classes)
        raw = est.predict(X)
        if raw is None:
            raise TypeError(f"student: {type(est).__name__}.predict returned None, expected an array of labels")
        pred = np.asarray(raw)
        n = _num_samples(X)
        if pred.shape != (n,):
            raise ValueError(
                f"student: {type(est).__name__}.predict returned an array of shape {pred.shape}, "
                f"expected ({n},): one label per row"
            )
        try:
            idx = np.searchsorted(self.classes, pred)
        except TypeError:  # labels of a type that does not compare with the classes
            raise ValueError("student: predicted a label outside the teacher's classes") from None
        idx = np.clip(idx, 0, len(self.classes) - 1)
        if not np.all(self.classes[idx] == pred):
            raise ValueError("student: predicted a label outside the teacher's classes")
        return idx.astype(np.int32)

    def fit(
        self,
        X: Any,
        targets: ArrayLike | None = None,
        sample_weight: ArrayLike | None = None,
        mask: ArrayLike | None = None,
    ) -> Any:
        """Fit in this trainer's mode: label targets or the allowed-label mask.

        .. deprecated:: 0.2.0
            Call :meth:`fit_labels` or :meth:`fit_mask`; ``fit`` will be removed.
        """
        method = "fit_mask" if self.target == "multioutput" else "fit_labels"
        warnings.warn(
            f"StudentTrainer.fit is deprecated and will be removed; call StudentTrainer.{method}",
            DeprecationWarning,
            stacklevel=2,
        )
        if self.target == "multioutput":
            return self.fit_mask(X, mask, sample_weight)
        return self.fit_labels(X, targets, sample_weight)


def proba_in_classes(est: Any, X: ArrayLike, classes: ArrayLike) -> np.ndarray:
    """``predict_proba`` of a fitted student laid out over ``classes``."""
    classes = np.asarray(classes)
    if isinstance(est, AllowedLabelStudent):
        return est.predict_proba(X)
    n = len(X)
    out = np.zeros((n, len(classes)), dtype=np.float64)
    if hasattr(est, "predict_proba"):
        p = np.asarray(est.predict_proba(X), dtype=np.float64)
        cols = np.searchsorted(classes, est.classes_)
        out[:, cols] = p
    else:
        pred = np.asarray(est.predict(X))
        out[np.arange(n), np.searchsorted(classes, pred)] = 1.0
    return out


LEAF_VALUES = ("auto", "student", "belief")


def is_tree_student(student: Any) -> bool:
    """True for decision-tree students: scikit-learn's trees and crembo's
    histogram tree (the students the configuration study measured)."""
    from sklearn.tree import BaseDecisionTree

    from ..trees.hist import HistTreeClassifier

    return isinstance(student, (BaseDecisionTree, HistTreeClassifier))


def resolve_leaf_values(leaf_values: str, trainer: StudentTrainer) -> str:
    """``"auto"``: ``"belief"`` when the trainer fits single-output tree
    students (scikit-learn's decision trees on labels, crembo's histogram
    tree on labels or allowed sets), ``"student"`` otherwise."""
    if leaf_values != "auto":
        return leaf_values
    from ..trees.hist import HistTreeClassifier

    single_output = trainer.target == "labels" or isinstance(trainer.template, HistTreeClassifier)
    return "belief" if is_tree_student(trainer.template) and single_output else "student"


def set_leaf_beliefs(
    est: Any,
    X: ArrayLike,
    P: ArrayLike,
    classes: ArrayLike,
    sample_weight: ArrayLike | None = None,
    *,
    leaves: np.ndarray | None = None,
) -> Any:
    """Make every leaf of a fitted tree student predict the teacher's mean
    belief over the rows of ``X`` that reach it (``P`` holds their beliefs,
    columns following ``classes``); its label becomes that mean's most likely
    class. Works in place on scikit-learn's single-output decision trees and
    on ``HistTreeClassifier``, and returns ``est``.

    With ``sample_weight`` the mean is weighted. A leaf no row of ``X``
    (of positive weight) reaches keeps its own values. Classes the student
    never saw (absent from its ``classes_``) cannot be predicted by it; their
    belief mass is left out and the rest renormalised. ``leaves``: the
    leaf of each row of ``X`` when already known (``est.apply(X)``).
    """
    from sklearn.tree import BaseDecisionTree

    from ..trees.hist import HistTreeClassifier

    classes = np.asarray(classes)
    if isinstance(est, HistTreeClassifier) or (
        isinstance(est, BaseDecisionTree) and getattr(est, "n_outputs_", 1) == 1
    ):
        tree, cols = est.tree_, np.searchsorted(classes, est.classes_)
    elif isinstance(est, DummyClassifier):
        return est  # a constant student: one label, nothing to average
    else:
        raise TypeError(
            f"leaf_values='belief': needs a single-output tree student (scikit-learn's decision "
            f"tree or crembo's HistTreeClassifier), got {type(est).__name__}"
        )
    if leaves is None:
        leaves = est.apply(X)
    P = np.asarray(P)
    if P.dtype not in (np.float32, np.float64):
        P = P.astype(np.float64)
    w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    # One native pass over the rows (this runs once per sweep candidate),
    # summed in row order as numpy's bincount does.
    sums = _native.leaf_sums(P, np.asarray(leaves), w, cols.astype(np.int64), tree.node_count)
    mass = sums.sum(axis=1)
    reached = mass > 0
    value = tree.value  # a writable view of the tree's own buffer in both classes
    value[reached, 0, :] = sums[reached] / mass[reached, None]
    if isinstance(est, HistTreeClassifier):
        tree.node_class[reached] = np.argmax(value[reached, 0, :], axis=1)
        tree.__dict__.pop("_fast", None)  # the native evaluator is rebuilt from the new values
    return est


def leaf_label_indices(est: Any, leaves: np.ndarray, classes: ArrayLike) -> np.ndarray | None:
    """What ``est.predict`` says for rows reaching ``leaves``, as indices into
    ``classes``, read off the leaves of a single-output tree student
    (None for other students): the class of largest value at each leaf,
    first on ties, as both tree classes predict."""
    from sklearn.tree import BaseDecisionTree

    from ..trees.hist import HistTreeClassifier

    if isinstance(est, HistTreeClassifier):
        node_class = est.tree_.node_class
    elif isinstance(est, BaseDecisionTree) and getattr(est, "n_outputs_", 1) == 1:
        node_class = np.argmax(est.tree_.value[:, 0, :], axis=1)
    else:
        return None
    cols = np.searchsorted(np.asarray(classes), est.classes_)
    return cols[node_class[leaves]].astype(np.int32)
