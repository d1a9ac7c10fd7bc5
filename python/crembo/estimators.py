"""scikit-learn estimators: ``CREMBOClassifier`` (MEMO and CREMBO) and
``LabelDistiller`` (the VT baseline: a student trained on the teacher's
argmax labels)."""
from __future__ import annotations

import logging
import numbers
import time
import warnings

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _core
from .augment import _check_size, munge
from ._validation import (Beliefs, _DistillerDataMixin, as_beliefs, check_choice, check_device, check_fraction,
                          check_positive_int, is_fitted, seed_from)
from .memo import ORACLES, check_oracle, default_student, run_memo
from .tree import resolve_student, tree_student
from .students import (LEAF_VALUES, TARGET_MODES, StudentTrainer, is_tree_student, proba_in_classes,
                       resolve_leaf_values, set_leaf_beliefs)
from .teachers import BELIEF_METHODS, teacher_beliefs, teacher_classes, unwrap_teacher

__all__ = ["CREMBOClassifier", "LabelDistiller", "default_teacher"]

log = logging.getLogger("crembo")

#: Synthetic rows per transfer row under ``augment="auto"`` and folds under
#: ``cv="auto"``, for tree students (docs/defaults_study.md).
DEFAULT_AUGMENT = 3.0
DEFAULT_CV = 5
#: Above this many rows (labelled for ``cv``, transfer for ``augment``) the
#: "auto" settings fall back to one validation split and no synthetic rows:
#: the study measured small tables, where a 15% split holds a few dozen rows
#: and the transfer set a few hundred; with tens of thousands of rows neither
#: is scarce, and five folds over four times the rows would cost 20x the fits.
AUTO_MAX_ROWS = 20_000

SCORERS = {"accuracy": accuracy_score, "balanced_accuracy": balanced_accuracy_score}


def default_teacher(random_state=None):
    """The reference teacher: 100 trees of depth at most 12, balanced classes."""
    return RandomForestClassifier(n_estimators=100, max_depth=12, class_weight="balanced",
                                  random_state=random_state)


class _DistillerBase(_DistillerDataMixin, ClassifierMixin, BaseEstimator):
    """Teacher resolution, validation and prediction shared by the estimators."""

    def _validate_inputs(self, X, y, X_unlabeled):
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], ensure_min_samples=2)
        check_classification_targets(y)
        return X, y, self._validate_unlabeled(X_unlabeled, X)

    def _resolve_teacher(self, X, y, X_unlabeled, rng):
        """Fit the teacher if needed; return (beliefs function or array, classes)."""
        teacher = self.teacher
        n_all = len(X) + len(X_unlabeled)
        y_classes = np.unique(y)
        if isinstance(teacher, (np.ndarray, Beliefs)) or (hasattr(teacher, "to_numpy") and not hasattr(teacher, "fit")):
            P_all = as_beliefs(teacher, name="teacher (precomputed beliefs)")
            if P_all.shape[0] != n_all:
                raise ValueError(f"teacher: precomputed beliefs have {P_all.shape[0]} rows, expected {n_all} "
                                 "(the rows of X followed by those of X_unlabeled)")
            if P_all.shape[1] != len(y_classes):
                raise ValueError(f"teacher: precomputed beliefs have {P_all.shape[1]} columns but y has "
                                 f"{len(y_classes)} classes; columns must follow the sorted classes of y")
            self.teacher_ = None
            return P_all, y_classes
        if teacher is None:
            teacher_ = default_teacher(seed_from(rng)).fit(self._teacher_view(X), y)
        elif hasattr(teacher, "fit") and hasattr(teacher, "get_params"):
            teacher_ = teacher if is_fitted(teacher) else clone(teacher).fit(self._teacher_view(X), y)
        elif hasattr(teacher, "predict_proba") or callable(teacher):
            teacher_ = teacher  # already trained: used as it is
        else:
            raise TypeError("teacher: expected a scikit-learn classifier, a callable returning probabilities, "
                            f"or an array of beliefs; got {type(teacher).__name__}")
        self.teacher_ = teacher_
        inner = unwrap_teacher(teacher_)
        classes = teacher_classes(inner)
        if classes is None:
            classes = y_classes
        unknown = np.setdiff1d(y_classes, classes)
        if unknown.size:
            raise ValueError(f"y: labels {unknown[:5].tolist()} are not among the teacher's classes "
                             f"{classes[:10].tolist()}")
        return inner, classes

    def _beliefs(self, source, X, rows):
        """Teacher beliefs on ``X`` (``rows`` index a precomputed array)."""
        if isinstance(source, np.ndarray):
            return np.ascontiguousarray(source[rows])
        return teacher_beliefs(source, self._teacher_view(X), method=self.belief, n_classes=len(self.classes_),
                               n_jobs=self.n_jobs, device=self.device)

    def _synthetic_rows(self, source, X_tr, rng):
        """MUNGE rows near ``X_tr`` for the teacher to label (none when
        ``augment`` is 0)."""
        size = self.augment
        if size == "auto":
            # The study's choice for tree students; synthetic rows need a
            # teacher to label them: none for precomputed beliefs.
            student = resolve_student(tree_student(4) if self.student is None else self.student)
            queryable = not isinstance(source, np.ndarray)
            small = len(X_tr) <= AUTO_MAX_ROWS
            size = DEFAULT_AUGMENT if is_tree_student(student) and queryable and small else 0.0
        if size == 0:
            return X_tr[:0]
        if isinstance(source, np.ndarray):
            raise ValueError("augment: synthetic rows need a teacher that can be asked about new rows; "
                             "precomputed beliefs cannot (set augment=0, or pass the teacher itself)")
        return munge(X_tr, size, swap=self.augment_swap, spread=self.augment_spread,
                     random_state=seed_from(rng)).astype(X_tr.dtype, copy=False)

    def _check_augment(self):
        if not (isinstance(self.augment, str) and self.augment == "auto"):
            _check_size(self.augment)
        munge_params = dict(swap=self.augment_swap, spread=self.augment_spread)
        munge(np.zeros((2, 1)), 0.0, **munge_params)  # checks swap and spread only

    def _check_single_class(self, y):
        if np.unique(y).size < 2:
            raise ValueError(f"y: expected at least two classes, got 1 class ({np.unique(y)[0]!r}); "
                             "there is nothing to compress")

    def predict(self, X):
        """Predict class labels with the compressed student.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,), labels from ``classes_``.
        """
        X = self._student_input(X)
        return np.asarray(self.student_.predict(X))

    def predict_proba(self, X):
        """Class probabilities of the student, columns ordered as ``classes_``."""
        X = self._student_input(X)
        return proba_in_classes(self.student_, X, self.classes_)


class LabelDistiller(_DistillerBase):
    """Label distillation (VT): the student learns the teacher's argmax labels.

    Parameters
    ----------
    teacher : classifier, callable, array or None
        A fitted classifier is used as it is; an unfitted one is fitted on
        ``(X, y)``; a callable maps ``X`` to probabilities; an array holds
        beliefs for the rows of ``X`` then ``X_unlabeled``. Default: a
        100-tree random forest of depth 12 with balanced classes.
    student : classifier or None
        Cloned, never modified. Default: a depth-4 tree, balanced classes.
    augment : float, default=0.0
        Synthetic rows per real row (MUNGE, see :func:`crembo.augment.munge`)
        added to the transfer set and labelled by the teacher; 0 adds none.
    augment_swap, augment_spread : float, default=0.5 and 1.0
        MUNGE's swap probability and spread.
    belief : {"auto", "votes", "proba"}, default "auto"
        How beliefs are read from the teacher (see ``teacher_beliefs``).
    n_jobs : int or None
        Threads for querying ensemble members.
    device : {"cpu", "cuda"}, default "cpu"
    random_state : int, RandomState or None

    Attributes
    ----------
    teacher_, student_, classes_, n_features_in_
    """

    def __init__(self, teacher=None, student=None, *, augment=0.0, augment_swap=0.5, augment_spread=1.0,
                 belief="auto", n_jobs=None, device="cpu", random_state=None):
        self.teacher = teacher
        self.student = student
        self.augment = augment
        self.augment_swap = augment_swap
        self.augment_spread = augment_spread
        self.belief = belief
        self.n_jobs = n_jobs
        self.device = device
        self.random_state = random_state

    def fit(self, X, y, X_unlabeled=None):
        """Fit the student on the teacher's labels of ``X`` and ``X_unlabeled``."""
        check_choice(self.belief, "belief", BELIEF_METHODS)
        check_device(self.device)
        self._check_augment()
        X, y, X_unl = self._validate_inputs(X, y, X_unlabeled)
        self._check_single_class(y)
        rng = check_random_state(self.random_state)
        source, self.classes_ = self._resolve_teacher(X, y, X_unl, rng)
        X_t = np.concatenate([X, X_unl]) if len(X_unl) else X
        P = self._beliefs(source, X_t, np.arange(len(X_t)))
        X_syn = self._synthetic_rows(source, X_t, rng)
        if len(X_syn):
            X_t, P = np.concatenate([X_t, X_syn]), np.concatenate([P, self._beliefs(source, X_syn, None)])
        labels, _ = _core.row_argmax(P)
        template = default_student() if self.student is None else self.student
        trainer = StudentTrainer(template, self.classes_, target="labels", seed=seed_from(rng))
        self.student_ = trainer.fit_labels(X_t, labels)
        return self


def _busy_seconds(intervals):
    """Wall time covered by at least one of the (start, end) intervals: the
    time student fits ran, however many ran at once."""
    total, reach = 0.0, -np.inf
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


class CREMBOClassifier(_DistillerBase):
    """Compress a teacher into a small, robust student: MEMO and CREMBO.

    MEMO finds the deepest student (the one most central to the teacher's
    belief ``p(y|x)``) by a binary search over consistency thresholds.
    CREMBO then sweeps thresholds at and above MEMO's, training a student at
    each on the labels the teacher allows there, and keeps the one with the
    best score on a validation split of the labelled data.

    Parameters
    ----------
    teacher : classifier, callable, array or None
        A fitted classifier is used as it is (wrap it in
        ``sklearn.frozen.FrozenEstimator`` to keep it fitted through
        ``clone``); an unfitted one is fitted on all of ``(X, y)``; a callable
        maps ``X`` to an ``(n, C)`` probability array; an array holds beliefs
        for the rows of ``X`` then ``X_unlabeled``. Default: a 100-tree random
        forest of depth 12 with balanced classes (the paper's teacher).
    student : classifier, "tree:D" or None
        Cloned, never modified. Default (and ``"tree:D"``): crembo's
        histogram tree (``HistTreeClassifier``) of depth 4 (D), balanced
        classes, the student that measured best (``docs/defaults_study.md``).
        Any scikit-learn classifier works.
    mode : {"crembo", "memo"}, default "crembo"
        ``"memo"`` returns MEMO's deepest student, without a validation split.
    oracle : {"reweight", "single"}, default "reweight"
        MEMO's consistency oracle: rounds of weighted fits, or the paper's
        single multi-output fit.
    student_target : {"auto", "labels", "multioutput"}, default "auto"
        How students learn allowed-label sets: one allowed label per point
        (works with any classifier), or the paper's multi-output fit on the
        allowed-label matrix. "auto": "multioutput" with ``oracle="single"``,
        else "labels".
    max_rounds : int, default 8
        Reweighting rounds per MEMO threshold.
    eta : float, default 1.0
        Weight growth ``1 + eta`` of a violating point per round.
    patience : int, default 0
        MEMO gives a threshold up after this many rounds without fewer
        violations than its best round (0: always ``max_rounds`` rounds); a
        speed option that can stop short of the deepest threshold.
    probe_lowest : bool, default True
        MEMO probes the smallest threshold first and stops when it fails
        (nothing above it can pass); ``False``: the paper's plain binary
        search. The same answer whenever the oracle is exact.
    warm_start : bool, default=True
        Each MEMO probe starts from the weights the previous probe ended with
        (see :func:`crembo.memo`).
    adaptive_eta : bool, default=True
        The growth of violating points compounds while a round brings no
        fewer violations (see :func:`crembo.memo`).
    delta : float in [0, 1), default 0.0
        Tolerated fraction of violations in MEMO (delta-insensitive depth).
    validation_fraction : float in (0, 1), default 0.15
        Share of ``(X, y)`` held out to choose the threshold (stratified when
        every class has two members). Not used with ``cv``.
    cv : int, None or "auto", default="auto"
        Choose the threshold by ``cv``-fold cross-validation instead of one
        held-out split: every labelled row is scored once, by a student fit
        without its fold, so the choice is far less at the mercy of one small
        validation split; then one student is fit at the chosen threshold on
        all rows. Costs ``cv`` fits per threshold (cheap with the histogram
        tree student). Stratified folds when every class has ``cv`` members.
        None: one held-out split of ``validation_fraction``. ``"auto"``: 5
        for tree students (the study's choice) when there are 10 to 20,000
        labelled rows, None otherwise (students whose fits are costly, such
        as networks, keep the paper's single split).
    n_thresholds : int or None, default 32
        Budget of the threshold sweep (quantile-spaced candidates at or above
        MEMO's threshold); None walks every distinct belief value.
    scoring : {"accuracy", "balanced_accuracy"}, default "accuracy"
        Validation score used to choose the threshold.
    selection : {"best", "one_se"}, default "best"
        ``"best"``: the threshold of highest validation score (ties to the
        lowest threshold). ``"one_se"``: the lowest threshold whose score is
        within one standard error (``sqrt(s(1-s)/n_val)``) of the best, which
        prefers students closer to MEMO's deep one when the validation split
        cannot tell them apart.
    refit : bool, default False
        Refit the chosen threshold's student on all of ``X`` (fit and
        validation parts) and ``X_unlabeled``.
    search_subsample : int, float or None, default None
        Search (MEMO and sweep) on a random subsample of the transfer set of
        this many rows (or this fraction), then refit once on all of it at the
        chosen threshold: for large data sets.
    augment : float or "auto", default="auto"
        Synthetic rows per transfer row, made by MUNGE (Bucilă et al., 2006;
        :func:`crembo.augment.munge`) and labelled by the teacher's belief:
        a larger transfer set where the data lives. Needs a teacher that can
        be queried. ``"auto"``: 3 (the study's choice) for tree students
        when the teacher can be queried and the transfer set has at most
        20,000 rows, else 0. Synthetic rows are made from
        the labelled and unlabelled transfer rows alike.
    augment_swap : float in [0, 1], default=0.5
        MUNGE's probability of moving an attribute towards the neighbour's.
    augment_spread : float, default=1.0
        MUNGE's spread: the draw around the neighbour's value has standard
        deviation ``|e_a - e'_a| / augment_spread``.
    leaf_values : {"auto", "student", "belief"}, default="auto"
        ``"belief"``: every leaf of a tree student predicts the teacher's mean
        belief over the transfer rows that reach it, and its label is that
        mean's most likely class (the tree's structure still comes from the
        allowed labels at the chosen threshold). Applied to every candidate
        before it is scored. Needs a single-output tree student.
        ``"student"``: the leaves keep what the student learned. ``"auto"``:
        ``"belief"`` for single-output tree students, else ``"student"``.
    belief : {"auto", "votes", "proba"}, default "auto"
        How beliefs are read from the teacher.
    n_jobs : int or None
        Threads for the sweep's fits and for querying ensemble members.
    device : {"cpu", "cuda"}, default "cpu"
        Where beliefs and depth kernels run.
    random_state : int, RandomState or None
        Seeds the split, the default teacher and the students.
    verbose : int, default 0
        Progress bar over the sweep when > 0.

    Attributes
    ----------
    student_ : fitted classifier
        The compressed model; predicts labels from ``classes_``.
    teacher_ : fitted teacher (None for precomputed beliefs)
    classes_ : ndarray of shape (C,)
    n_features_in_ : int
    threshold_ : float or None
        The chosen threshold (MEMO's in ``mode="memo"``).
    memo_threshold_ : float or None
        MEMO's deepest consistent threshold; None when none was found.
    memo_depth_ : float or None
        Depth of MEMO's student on the search transfer set.
    memo_student_ : fitted classifier or None
        MEMO's deepest consistent student (the start of CREMBO's sweep).
    depth_ : float
        Empirical depth of ``student_`` on the transfer set.
    validation_score_ : float or None
    trace_ : list of dict
        Every threshold tried: stage ("memo", "sweep", "cv" or "refit"),
        threshold, consistent, violations, rounds, validation_score and
        fit_seconds.
    n_student_fits_ : int
    timings_ : dict
        Seconds spent in teacher fit, beliefs, MEMO, sweep, refit and in
        total; ``student_fits`` is the wall time during which at least one
        student fit ran (fits running at once with ``n_jobs`` count once) and
        ``overhead = total - teacher_fit - student_fits`` (beliefs, thresholds,
        predictions, scoring; never negative).
    """

    def __init__(self, teacher=None, student=None, *, mode="crembo", oracle="reweight", student_target="auto",
                 max_rounds=8, eta=1.0, patience=0, probe_lowest=True, warm_start=True, adaptive_eta=True,
                 delta=0.0, validation_fraction=0.15, cv="auto", n_thresholds=32, scoring="accuracy",
                 selection="best", refit=False, search_subsample=None, augment="auto", augment_swap=0.5,
                 augment_spread=1.0, leaf_values="auto", belief="auto", n_jobs=None, device="cpu",
                 random_state=None, verbose=0):
        self.teacher = teacher
        self.leaf_values = leaf_values
        self.warm_start = warm_start
        self.adaptive_eta = adaptive_eta
        self.augment = augment
        self.augment_swap = augment_swap
        self.augment_spread = augment_spread
        self.student = student
        self.mode = mode
        self.oracle = oracle
        self.student_target = student_target
        self.max_rounds = max_rounds
        self.eta = eta
        self.patience = patience
        self.probe_lowest = probe_lowest
        self.cv = cv
        self.delta = delta
        self.validation_fraction = validation_fraction
        self.n_thresholds = n_thresholds
        self.scoring = scoring
        self.selection = selection
        self.refit = refit
        self.search_subsample = search_subsample
        self.belief = belief
        self.n_jobs = n_jobs
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ---------------------------------------------------------------- checks
    def _check_params(self):
        check_choice(self.mode, "mode", ("crembo", "memo"))
        check_choice(self.oracle, "oracle", ORACLES)
        check_choice(self.student_target, "student_target", TARGET_MODES)
        check_choice(self.scoring, "scoring", tuple(SCORERS))
        check_choice(self.selection, "selection", ("best", "one_se"))
        check_choice(self.leaf_values, "leaf_values", LEAF_VALUES)
        check_choice(self.belief, "belief", BELIEF_METHODS)
        check_positive_int(self.max_rounds, "max_rounds")
        check_positive_int(self.patience, "patience", minimum=0)
        if isinstance(self.eta, bool) or not isinstance(self.eta, numbers.Real):
            raise TypeError(f"eta: expected a positive number, got {self.eta!r}")
        if not np.isfinite(self.eta) or self.eta <= 0:
            raise ValueError(f"eta: expected a positive number, got {self.eta!r}")
        check_fraction(self.delta, "delta")
        check_fraction(self.validation_fraction, "validation_fraction", low_inclusive=False)
        if not (isinstance(self.cv, str) and self.cv == "auto"):
            check_positive_int(self.cv, "cv", minimum=2, allow_none=True)
        check_positive_int(self.n_thresholds, "n_thresholds", allow_none=True, maximum=2**63 - 1)  # a 64-bit budget
        check_device(self.device)
        self._check_augment()
        s = self.search_subsample
        if s is not None:
            if isinstance(s, float):
                check_fraction(s, "search_subsample", low_inclusive=False, high_inclusive=True)
            else:
                check_positive_int(s, "search_subsample", minimum=2)
        target = self.student_target
        if target == "auto":
            target = "multioutput" if self.oracle == "single" else "labels"
        if self.oracle == "single" and target != "multioutput":
            raise ValueError("oracle='single' fits the allowed-label matrix; it needs student_target='multioutput'")
        return target

    # ------------------------------------------------------------------- fit
    def fit(self, X, y, X_unlabeled=None):
        """Compress the teacher into the student.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Labelled data. In ``mode="crembo"`` a ``validation_fraction`` of it
            chooses the threshold; the rest (and ``X_unlabeled``) is the
            transfer set on which the teacher's beliefs are computed.
        y : array-like of shape (n_samples,)
            Labels (any hashable type); used to fit an unfitted teacher and
            to score the validation split.
        X_unlabeled : array-like of shape (m, n_features), optional
            Extra transfer points without labels.

        Returns
        -------
        self
        """
        t_start = time.perf_counter()
        target = self._check_params()
        X, y, X_unl = self._validate_inputs(X, y, X_unlabeled)
        self._check_single_class(y)
        rng = check_random_state(self.random_state)
        seed = seed_from(rng)
        timings = dict.fromkeys(("teacher_fit", "beliefs", "memo", "sweep", "refit", "student_fits"), 0.0)

        t0 = time.perf_counter()
        source, self.classes_ = self._resolve_teacher(X, y, X_unl, rng)
        timings["teacher_fit"] = time.perf_counter() - t0
        y_idx = np.searchsorted(self.classes_, y)

        n, n_unl = len(X), len(X_unl)
        template = resolve_student(tree_student(4) if self.student is None else self.student)
        self._cv = self._resolve_cv(template, n)
        use_cv = self.mode == "crembo" and self._cv is not None
        if self.mode == "crembo" and not use_cv:
            fit_rows, val_rows = self._split(y, rng)
        else:
            fit_rows, val_rows = np.arange(n), np.arange(0)
        # Transfer set: the fitting part plus the unlabelled rows (which sit
        # after the n labelled rows in a precomputed belief array).
        transfer_rows = np.concatenate([fit_rows, n + np.arange(n_unl)])
        X_all = np.concatenate([X, X_unl]) if n_unl else X
        X_tr = X_all[transfer_rows]
        # Synthetic rows near the transfer set (MUNGE), labelled by the teacher.
        X_syn = self._synthetic_rows(source, X_tr, rng)
        # refit=True trains the final student on every row: ask the teacher
        # about all of them once.
        refit_all = self.refit and self.mode == "crembo" and not use_cv  # cv already searched on every row
        t0 = time.perf_counter()
        if refit_all:
            P_all = self._beliefs(source, X_all, np.arange(n + n_unl))
            P_tr = np.ascontiguousarray(P_all[transfer_rows])
        else:
            P_tr = self._beliefs(source, X_tr, transfer_rows)
        if len(X_syn):
            P_syn = self._beliefs(source, X_syn, None)
            X_tr, P_tr = np.concatenate([X_tr, X_syn]), np.concatenate([P_tr, P_syn])
            if refit_all:
                X_all, P_all = np.concatenate([X_all, X_syn]), np.concatenate([P_all, P_syn])
        timings["beliefs"] = time.perf_counter() - t0

        # Search on a subsample when asked, refit once on all rows after.
        search = np.arange(len(X_tr))
        sub = self.search_subsample
        if sub is not None:
            size = int(round(sub * len(X_tr))) if isinstance(sub, float) else int(sub)
            if size < len(X_tr):
                search = np.sort(rng.choice(len(X_tr), size=max(size, 2), replace=False))
        if len(search) == len(X_tr):
            X_s, P_s = X_tr, P_tr  # the same arrays: a student's binned X is reused
        else:
            X_s, P_s = X_tr[search], np.ascontiguousarray(P_tr[search])

        trainer = StudentTrainer(template, self.classes_,
                                 target=target, seed=seed)
        check_oracle(self.oracle, trainer)

        t0 = time.perf_counter()
        memo_res = run_memo(X_s, P_s, trainer, oracle=self.oracle, max_rounds=self.max_rounds, eta=self.eta,
                            delta=self.delta, patience=self.patience, probe_lowest=bool(self.probe_lowest),
                            warm_start=bool(self.warm_start), adaptive_eta=bool(self.adaptive_eta))
        timings["memo"] = time.perf_counter() - t0
        timings["student_fits"] += memo_res.fit_seconds
        self.memo_threshold_ = memo_res.threshold
        self.memo_depth_ = memo_res.depth
        self.memo_student_ = memo_res.student
        trace = [dict(stage="memo", validation_score=None, **rec) for rec in memo_res.trace]
        n_fits = memo_res.n_fits
        if memo_res.student is None:
            then = ("the sweep starts from the smallest belief value" if self.mode == "crembo" else
                    "the student is trained on the allowed labels at the smallest belief value")
            warnings.warn(f"MEMO found no consistent student at any threshold; {then}", RuntimeWarning,
                          stacklevel=2)

        self._leaf_values = resolve_leaf_values(self.leaf_values, trainer)
        if self._leaf_values == "belief" and memo_res.student is not None:
            # MEMO's student keeps its own leaves (its depth is MEMO's); the
            # copy that stands for its threshold predicts the mean beliefs.
            import copy

            memo_res.student = set_leaf_beliefs(copy.deepcopy(memo_res.student), X_s, P_s, self.classes_)
            memo_res.pred = trainer.predict_index(memo_res.student, X_s)
        if self.mode == "memo":
            if memo_res.student is not None:
                student, threshold = memo_res.student, memo_res.threshold
            else:
                threshold = float(_core.candidate_thresholds(P_s, 0.0, 1.0)[0])
                student = None
            score = None
        else:
            t0 = time.perf_counter()
            if use_cv:
                # The labelled rows of the search set (the first n transfer rows are X's).
                labelled = np.flatnonzero(search < len(fit_rows))
                student, threshold, score, sweep_trace, sweep_seconds = self._cv_sweep(
                    trainer, X_s, P_s, memo_res, labelled, y_idx[fit_rows[search[labelled]]], rng)
            else:
                student, threshold, score, sweep_trace, sweep_seconds = self._sweep(
                    trainer, X_s, P_s, memo_res, X[val_rows], y_idx[val_rows])
            timings["sweep"] = time.perf_counter() - t0
            timings["student_fits"] += sweep_seconds
            trace += sweep_trace
            n_fits += sum(rec["rounds"] for rec in sweep_trace)
            self.validation_score_ = score

        # Final student: refit at the chosen threshold on every transfer row
        # when the search used a subsample (or refit=True asks for all data).
        pred_tr = None
        if refit_all or student is None or X_s is not X_tr:
            t0 = time.perf_counter()
            X_f, P_f = (X_all, P_all) if refit_all else (X_tr, P_tr)
            guide = student if student is not None else memo_res.student
            if guide is None:
                prefer_f = None
            elif guide is memo_res.student and X_f is X_s:
                prefer_f = memo_res.pred  # MEMO already predicted these rows
            else:
                prefer_f = trainer.predict_index(guide, X_f)
            student, fit_s, viol, pred_tr = self._fit_at(trainer, X_f, P_f, threshold, prefer_f)
            timings["refit"] = time.perf_counter() - t0
            timings["student_fits"] += fit_s
            n_fits += 1
            trace.append(dict(stage="refit", threshold=threshold, consistent=viol == 0, violations=viol,
                              rounds=1, validation_score=None, fit_seconds=fit_s))
            X_tr, P_tr = X_f, P_f

        self.student_ = student
        self.threshold_ = threshold
        if self.mode == "memo":
            self.validation_score_ = None
        self.trace_ = trace
        self.n_student_fits_ = int(n_fits)
        if pred_tr is None:
            pred_tr = trainer.predict_index(student, X_tr)
        self.depth_ = float(_core.empirical_depth(P_tr, pred_tr, 0.0))
        timings["total"] = time.perf_counter() - t_start
        timings["overhead"] = timings["total"] - timings["teacher_fit"] - timings["student_fits"]
        self.timings_ = timings
        log.info("CREMBO: threshold %.4g (MEMO %s), depth %.4g, %d student fits, %.2fs",
                 threshold, self.memo_threshold_, self.depth_, n_fits, timings["total"])
        return self

    def _select(self, selection):
        """Index of the chosen sweep candidate under a selection rule."""
        cands = self._sweep_candidates
        # Highest score; ties go to the lowest threshold (closest to MEMO's deep student).
        best = max(range(len(cands)), key=lambda k: (cands[k][1], -cands[k][0]))
        if selection == "one_se":
            top = cands[best][1]
            floor = top - np.sqrt(max(top * (1.0 - top), 0.0) / max(self._n_validation, 1))
            best = min((k for k in range(len(cands)) if cands[k][1] >= floor - 1e-12), key=lambda k: cands[k][0])
        return best

    def _can_reselect(self):
        """True when every sweep candidate is a fitted student that could be
        the final one (see :meth:`_with_selection`)."""
        check_is_fitted(self, "student_")
        return self.mode == "crembo" and self._cv is None and not any(r["stage"] == "refit" for r in self.trace_)

    def _with_selection(self, selection):
        """A copy of this fitted model whose student is chosen by another rule.

        Only for fits whose final student is a sweep candidate (no refit, no
        search subsample); used by the evaluation protocol to compare
        selection rules without repeating the search. ``depth_`` of the copy
        is NaN.
        """
        if not self._can_reselect():
            raise ValueError("selection can only be changed after a CREMBO fit without cv, refit or subsampling")
        import copy

        other = copy.copy(self)
        other.selection = selection
        t, score, est = self._sweep_candidates[self._select(selection)]
        other.student_, other.threshold_, other.validation_score_ = est, t, score
        other.depth_ = float("nan")  # the transfer set is not kept to recompute it
        return other

    def _resolve_cv(self, template, n_labelled):
        """``cv="auto"``: 5 folds for tree students (the study's choice,
        cheap refits) when there are at least 10 labelled rows, else one
        held-out split."""
        if not (isinstance(self.cv, str) and self.cv == "auto"):
            return self.cv
        small = 2 * DEFAULT_CV <= n_labelled <= AUTO_MAX_ROWS
        return DEFAULT_CV if is_tree_student(template) and small else None

    def _split(self, y, rng):
        idx = np.arange(len(y))
        n_val = int(np.ceil(self.validation_fraction * len(y)))
        if n_val < 1 or len(y) - n_val < 1:
            raise ValueError(f"validation_fraction={self.validation_fraction} leaves no fitting or no validation "
                             f"rows out of {len(y)}; use more data or mode='memo'")
        _, counts = np.unique(y, return_counts=True)
        stratify = y if counts.min() >= 2 and n_val >= len(counts) else None
        fit_rows, val_rows = train_test_split(idx, test_size=n_val, random_state=seed_from(rng),
                                              stratify=stratify)
        return np.sort(fit_rows), np.sort(val_rows)

    def _fit_at(self, trainer, X, P, t, prefer, leave_out=None):
        """One student trained on the allowed labels at ``t`` (no consistency
        needed), without the rows where ``leave_out`` is true: (student, fit
        seconds, violations on all of ``X``, its predictions on ``X``)."""
        t0 = time.perf_counter()
        if trainer.target == "multioutput":
            mask = _core.allowed_labels(P, t)
            if leave_out is not None:
                mask[leave_out] = False
            est = trainer.fit_mask(X, mask)
        else:
            targets, _ = _core.allowed_targets(P, t, prefer)
            if leave_out is not None:
                targets[leave_out] = -1
            est = trainer.fit_labels(X, targets)
        if self._leaf_values == "belief":
            est = set_leaf_beliefs(est, X, P, self.classes_)
        pred = trainer.predict_index(est, X)
        viol = int(_core.count_violations(P, pred, t))
        return est, time.perf_counter() - t0, viol, pred

    def _sweep_thresholds(self, P_s, memo_res):
        """The sweep's candidates: from MEMO's threshold (or the smallest
        belief value) up, all of them or a quantile-spaced budget."""
        lo = memo_res.threshold
        if lo is None:
            lo = float(_core.candidate_thresholds(P_s, 0.0, 1.0)[0])
        if self.n_thresholds is None:
            cands = _core.candidate_thresholds(P_s, lo, 1.0)
        else:
            cands = _core.budgeted_thresholds(P_s, self.n_thresholds, lo, 1.0)
        return [float(t) for t in cands]

    def _cv_sweep(self, trainer, X_s, P_s, memo_res, labelled, y_lab, rng):
        """The threshold chosen by cross-validation over the labelled rows of
        the search set (positions ``labelled`` in ``X_s``, labels ``y_lab``):
        at each candidate, ``cv`` students each fit without one fold score
        that fold; the out-of-fold predictions give the threshold's score."""
        if len(labelled) < self._cv:
            raise ValueError(f"cv={self._cv}: only {len(labelled)} labelled rows to split into folds")
        _, counts = np.unique(y_lab, return_counts=True)
        splitter = (StratifiedKFold if counts.min() >= self._cv else KFold)(
            self._cv, shuffle=True, random_state=seed_from(rng))
        folds = [labelled[val] for _, val in splitter.split(labelled, y_lab)]
        truth = np.empty(len(X_s), dtype=np.int64)
        truth[labelled] = y_lab
        truth = np.concatenate([truth[f] for f in folds])
        cands = self._sweep_thresholds(P_s, memo_res)
        row_max = P_s.max(axis=1)
        busy = []

        def one(t, k):
            leave_out = np.zeros(len(X_s), dtype=bool)
            leave_out[folds[k]] = True
            if not np.any(row_max[~leave_out] >= t):
                return None, 0.0, 0  # the teacher is this sure only on the left-out fold: no student
            t0 = time.perf_counter()
            _, secs, viol, pred = self._fit_at(trainer, X_s, P_s, t, memo_res.pred, leave_out)
            busy.append((t0, t0 + secs))
            return pred[folds[k]], secs, viol

        tasks = [(t, k) for t in cands for k in range(self._cv)]
        if self.verbose:
            from tqdm.auto import tqdm

            tasks = tqdm(tasks, desc=f"CREMBO {self._cv}-fold sweep", unit="fit")
        outs = Parallel(n_jobs=self.n_jobs, prefer="threads")(delayed(one)(t, k) for t, k in tasks)
        score_fn = SCORERS[self.scoring]
        results, trace = [], []
        for i, t in enumerate(cands):
            part = outs[i * self._cv:(i + 1) * self._cv]
            fitted = sum(p[0] is not None for p in part)
            secs, viol = float(sum(p[1] for p in part)), int(sum(p[2] for p in part))
            score = None
            if fitted == self._cv:  # else some fold had no row to learn from: not a candidate
                score = float(score_fn(truth, np.concatenate([p[0] for p in part])))
                results.append((t, score))
            trace.append(dict(stage="cv", threshold=t, consistent=viol == 0 and score is not None,
                              violations=viol, rounds=fitted, validation_score=score, fit_seconds=secs))
        self._sweep_candidates = [(t, score, None) for t, score in results]
        self._n_validation = len(labelled)
        t, score = results[self._select(self.selection)]
        # MEMO's student stands for its own threshold; any other is refit on all rows.
        student = memo_res.student if memo_res.student is not None and t == memo_res.threshold else None
        return student, t, score, trace, _busy_seconds(busy)

    def _sweep(self, trainer, X_s, P_s, memo_res, X_val, y_val):
        score_fn = SCORERS[self.scoring]
        cands = self._sweep_thresholds(P_s, memo_res)
        prefer = memo_res.pred

        def evaluate(est):
            return float(score_fn(y_val, trainer.predict_index(est, X_val)))

        results = []
        if memo_res.student is not None:
            # MEMO's own student stands for its threshold: no refit needed.
            results.append((memo_res.student, memo_res.threshold, evaluate(memo_res.student), 0.0, 0, 0))
            cands = [t for t in cands if t > memo_res.threshold]

        busy = []  # (start, end) of every fit: they may overlap (n_jobs)

        def one(t):
            t0 = time.perf_counter()
            est, secs, viol, _ = self._fit_at(trainer, X_s, P_s, t, prefer)
            busy.append((t0, t0 + secs))
            return est, t, evaluate(est), secs, viol, 1

        if self.verbose:
            from tqdm.auto import tqdm

            cands_iter = tqdm(cands, desc="CREMBO sweep", unit="threshold")
        else:
            cands_iter = cands
        results += Parallel(n_jobs=self.n_jobs, prefer="threads")(delayed(one)(t) for t in cands_iter)
        # rounds=0 marks MEMO's student, scored without a new fit.
        trace = [dict(stage="sweep", threshold=t, consistent=viol == 0, violations=viol, rounds=r,
                      validation_score=s, fit_seconds=secs) for (_, t, s, secs, viol, r) in results]
        # The candidates, for choosing again under another rule (evaluation).
        self._sweep_candidates = [(t, sc, est) for (est, t, sc, *_rest) in results]
        self._n_validation = len(y_val)
        est, t, s = results[self._select(self.selection)][:3]
        return est, t, s, trace, _busy_seconds(busy)
