"""scikit-learn estimators: ``CREMBOClassifier`` (MEMO and CREMBO) and
``LabelDistiller`` (the VT baseline: a student trained on the teacher's
argmax labels)."""

from __future__ import annotations

import logging
import numbers
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, has_fit_parameter, validate_data

try:  # the stratified split's class shares, as train_test_split draws them
    from sklearn.utils.extmath import _approximate_mode
except ImportError:  # pragma: no cover - scikit-learn moved it
    _approximate_mode = None

from .. import _native
from .augment import munge
from .._validation import (
    BOOLEAN,
    DEVICE,
    MAX_INDEX,
    MAX_INT,
    N_JOBS,
    POSITIVE,
    VERBOSE,
    Beliefs,
    Interval,
    Options,
    ParamsValidationMixin,
    as_beliefs,
    check_device,
    is_fitted,
    seed_from,
)
from .sweep import (
    SCORERS,
    SELECTIONS,
    cv_sweep,
    distinct_beliefs,
    fit_at_threshold,
    holdout_sweep,
    select_candidate,
    sweep_thresholds,
)
from .memo import MEMO_PARAMETERS, check_oracle, default_student, run_memo
from .tables import allows_nan, check_missing, check_weights, unlabeled_mask
from ..trees.hist import (
    MAX_BINS,
    HistTreeClassifier,
    _encode_categories,
    _is_frame,
    categorical_mask,
    resolve_student,
    tree_student,
)
from .students import (
    LEAF_VALUES,
    StudentTrainer,
    is_tree_student,
    proba_in_classes,
    resolve_leaf_values,
    set_leaf_beliefs,
)
from .teachers import BELIEF_METHODS, teacher_beliefs, teacher_classes, unwrap_teacher

if TYPE_CHECKING:
    from collections.abc import Iterator

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
#: Synthetic rows per real row: ``augment`` as a number.
AUGMENT_SIZE = Interval("real", 0.0, 1000.0, desc="a non-negative number of synthetic rows per real row (at most 1000)")

#: Rows per teacher call when beliefs show a progress bar.
BELIEF_CHUNK = 20_000


def default_teacher(random_state: int | None = None) -> RandomForestClassifier:
    """The reference teacher: 100 trees of depth at most 12, balanced classes."""
    return RandomForestClassifier(n_estimators=100, max_depth=12, class_weight="balanced", random_state=random_state)


class _DistillerBase(ParamsValidationMixin, ClassifierMixin, BaseEstimator):
    """Teacher resolution, validation and prediction shared by the estimators."""

    #: The parameters both estimators share (see :mod:`crembo._validation`);
    #: the teacher and the student are checked where they are resolved.
    _parameter_constraints: dict = {
        "teacher": "no_validation",
        "student": "no_validation",
        "augment": [Options("auto"), AUGMENT_SIZE],
        "augment_swap": [Interval("real", 0.0, 1.0)],
        "augment_spread": [POSITIVE],
        "belief": [Options(*BELIEF_METHODS)],
        "n_jobs": N_JOBS,
        "device": DEVICE,
        "random_state": "no_validation",
    }

    def _validate_inputs(self, X, y, X_unlabeled, sample_weight=None):
        """Checked ``X`` and ``y`` of the labelled rows, the unlabelled rows
        (those of ``y == -1`` then ``X_unlabeled``) and their weights.

        Returns ``(X, y, X_unl, w_lab, w_unl, w_teacher)``: the weights
        rescaled to mean 1 for the student, and the labelled rows' weights
        as given, for the teacher (all None without ``sample_weight``). Missing values pass here and are checked
        against the teacher and the student by :meth:`_check_missing`.
        """
        frame, self._cat_mask, self.categories_ = None, None, None
        if _is_frame(X):
            mask = categorical_mask("from_dtype", X, X.shape[1])
            if mask is not None:  # categorical or string columns: coded for the student, decoded for the teacher
                frame, self._cat_mask = X, mask
                X, self.categories_ = _encode_categories(X, mask, None, MAX_BINS)
        X, y = validate_data(
            self, X, y, dtype=[np.float64, np.float32], ensure_min_samples=2, ensure_all_finite="allow-nan"
        )
        if frame is not None:
            validate_data(self, frame, reset=True, skip_check_array=True)  # the DataFrame's column names
        if not (y.ndim == 1 and y.dtype.kind in "iub"):
            # 1-d integer labels are class labels by construction; the
            # check's two np.unique calls cost 4 ms on 10^5 of them.
            check_classification_targets(y)
        unl = unlabeled_mask(y)
        if unl.all():
            raise ValueError("y: every row is labelled -1 (unlabelled); at least two labelled classes are needed")
        raw = check_weights(sample_weight, len(y), labeled=~unl, normalize=False)
        w = None if raw is None else raw / raw.mean()
        if X_unlabeled is not None:
            try:
                X_unlabeled = self._coded(X_unlabeled, dtype=X.dtype)
            except ValueError as exc:
                raise ValueError(f"X_unlabeled: {exc}") from None
        else:
            X_unlabeled = X[:0]
        # Precomputed beliefs follow the rows of X then X_unlabeled; the rows
        # of y == -1 move to the unlabelled part, and the beliefs with them.
        self._row_order = None
        w_unl = None if w is None else np.ones(len(X_unlabeled))
        if unl.any():
            lab, un = np.flatnonzero(~unl), np.flatnonzero(unl)
            self._row_order = np.concatenate([lab, un, len(y) + np.arange(len(X_unlabeled))])
            X_unlabeled = np.concatenate([X[un], X_unlabeled])
            if w is not None:
                w_unl = np.concatenate([w[un], w_unl])
                w, raw = w[lab], raw[lab]
            X, y = X[lab], y[lab]
        return X, y, X_unlabeled, w, w_unl, raw

    def _bar(self, desc, total=None, unit="it"):
        """A tqdm progress bar of its own line when ``verbose >= 1``."""
        if not getattr(self, "verbose", 0):
            return _NoBar()
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit=unit, leave=True)

    def __sklearn_clone__(self):
        # Clones (GridSearchCV, cross_validate) share their original's
        # lineage, so a warning is given once for all of them.
        new = super().__sklearn_clone__()
        new._lineage = self._lineage_token()
        return new

    def _lineage_token(self):
        token = self.__dict__.get("_lineage")
        if token is None:
            import uuid

            token = self._lineage = uuid.uuid4().hex
        return token

    def _coded(self, X, dtype=(np.float64, np.float32)):
        """``X`` checked against the fitted columns, categorical columns as
        the codes learnt at fit time (-1: a category unseen then)."""
        if getattr(self, "_cat_mask", None) is None:
            return validate_data(self, X, reset=False, dtype=dtype, ensure_all_finite="allow-nan")
        validate_data(self, X, reset=False, skip_check_array=True)  # names and count
        X, _ = _encode_categories(X, self._cat_mask, self.categories_, MAX_BINS)
        return check_array(X, dtype=dtype, ensure_all_finite="allow-nan")

    def _nan_models(self):
        """The models that will see ``X``, for :func:`crembo.compress.tables.check_missing`."""
        teacher = self.teacher
        if teacher is None:
            teacher_est = default_teacher()
        elif hasattr(teacher, "fit") and hasattr(teacher, "get_params"):
            teacher_est = unwrap_teacher(teacher)
        else:
            teacher_est = None  # precomputed beliefs or a callable: NaN is passed on as it is
        return [("teacher", teacher_est), ("student", self._student_template())]

    def _student_template(self):
        template = resolve_student(self._default_student() if self.student is None else self.student)
        mask = getattr(self, "_cat_mask", None)
        if (
            mask is not None
            and isinstance(template, HistTreeClassifier)
            and isinstance(template.categorical_features, str)
            and template.categorical_features == "from_dtype"
        ):
            # The coded columns are categorical: native category-subset splits.
            template = clone(template).set_params(categorical_features=mask)
        return template

    def _default_student(self):
        return tree_student(4)

    def _check_missing(self, *arrays):
        models = self._nan_models()
        names = getattr(self, "feature_names_in_", None)
        for what, arr in zip(("X", "X_unlabeled"), arrays):
            check_missing(arr, models, names, what=what)
        self._student_nan_ok = allows_nan(models[1][1])

    def _fit_teacher(self, template, X, y, w):
        """``template`` fitted on the labelled rows, with their weights when given."""
        if w is None:
            return template.fit(self._teacher_view(X), y)
        if not has_fit_parameter(template, "sample_weight"):
            raise TypeError(
                f"sample_weight: the teacher {type(template).__name__}.fit does not accept "
                "sample_weight; fit the teacher yourself and pass it fitted"
            )
        return template.fit(self._teacher_view(X), y, sample_weight=w)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        try:
            tags.input_tags.allow_nan = all(est is None or allows_nan(est) for _, est in self._nan_models())
        except (TypeError, ValueError):  # an invalid student is reported by fit
            tags.input_tags.allow_nan = False
        return tags

    def _resolve_teacher(self, X, y, X_unlabeled, rng, w, y_classes):
        """Fit the teacher if needed (on the labelled rows, weights ``w``);
        return (beliefs function or array, classes). ``y_classes``: the
        distinct labels of ``y``."""
        teacher = self.teacher
        n_all = len(X) + len(X_unlabeled)
        if isinstance(teacher, (np.ndarray, Beliefs)) or (hasattr(teacher, "to_numpy") and not hasattr(teacher, "fit")):
            P_all = as_beliefs(teacher, name="teacher (precomputed beliefs)")
            if P_all.shape[0] != n_all:
                raise ValueError(
                    f"teacher: precomputed beliefs have {P_all.shape[0]} rows, expected {n_all} "
                    "(the rows of X followed by those of X_unlabeled)"
                )
            if getattr(self, "_row_order", None) is not None:
                P_all = np.ascontiguousarray(P_all[self._row_order])  # rows of y == -1 after the labelled ones
            if P_all.shape[1] != len(y_classes):
                raise ValueError(
                    f"teacher: precomputed beliefs have {P_all.shape[1]} columns but y has "
                    f"{len(y_classes)} classes; columns must follow the sorted classes of y"
                )
            self.teacher_ = None
            return P_all, y_classes
        if teacher is None:
            teacher_ = self._fit_teacher(default_teacher(seed_from(rng)), X, y, w)
        elif hasattr(teacher, "fit") and hasattr(teacher, "get_params"):
            teacher_ = teacher if is_fitted(teacher) else self._fit_teacher(clone(teacher), X, y, w)
        elif hasattr(teacher, "predict_proba") or callable(teacher):
            teacher_ = teacher  # already trained: used as it is
        else:
            raise TypeError(
                "teacher: expected a scikit-learn classifier, a callable returning probabilities, "
                f"or an array of beliefs; got {type(teacher).__name__}"
            )
        self.teacher_ = teacher_
        inner = unwrap_teacher(teacher_)
        classes = teacher_classes(inner)
        if classes is None:
            classes = y_classes
        unknown = np.setdiff1d(y_classes, classes)
        if unknown.size:
            raise ValueError(
                f"y: labels {unknown[:5].tolist()} are not among the teacher's classes {classes[:10].tolist()}"
            )
        return inner, classes

    def _teacher_view(self, X):
        """``X`` as the teacher expects it: with the column names it was given."""
        names = getattr(self, "feature_names_in_", None)
        if names is None:
            return X
        import pandas as pd  # feature names are only set when X was a DataFrame

        mask = getattr(self, "_cat_mask", None)
        if mask is None:
            return pd.DataFrame(X, columns=names)
        cols = {}
        for j, name in enumerate(names):
            if mask[j]:
                codes = np.where(np.isnan(X[:, j]), -1, X[:, j]).astype(np.int64)
                cols[name] = pd.Categorical.from_codes(codes, categories=self.categories_[j])
            else:
                cols[name] = X[:, j]
        return pd.DataFrame(cols)

    def _beliefs(self, source, X, rows, desc="teacher beliefs"):
        """Teacher beliefs on ``X`` (``rows`` index a precomputed array)."""
        if isinstance(source, np.ndarray):
            return np.ascontiguousarray(source[rows])
        if not getattr(self, "verbose", 0) or len(X) == 0:
            return teacher_beliefs(
                source,
                self._teacher_view(X),
                method=self.belief,
                n_classes=len(self.classes_),
                n_jobs=self.n_jobs,
                device=self.device,
            )
        # In chunks of rows, for a progress bar (beliefs are row by row).
        bar = self._bar(desc, total=len(X), unit="row")
        parts = []
        for start in range(0, len(X), BELIEF_CHUNK):
            part = X[start : start + BELIEF_CHUNK]
            parts.append(
                teacher_beliefs(
                    source,
                    self._teacher_view(part),
                    method=self.belief,
                    n_classes=len(self.classes_),
                    n_jobs=self.n_jobs,
                    device=self.device,
                )
            )
            bar.update(len(part))
        bar.close()
        return np.concatenate(parts)

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
            raise ValueError(
                "augment: synthetic rows need a teacher that can be asked about new rows; "
                "precomputed beliefs cannot (set augment=0, or pass the teacher itself)"
            )
        return munge(
            X_tr,
            size,
            swap=self.augment_swap,
            spread=self.augment_spread,
            random_state=seed_from(rng),
            categorical=getattr(self, "_cat_mask", None),
        ).astype(X_tr.dtype, copy=False)

    def _check_single_class(self, classes):
        """``classes``: the distinct labels of y."""
        if classes.size < 2:
            raise ValueError(
                f"y: expected at least two classes, got 1 class ({classes[0]!r}); there is nothing to compress"
            )

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predict class labels with the compressed student.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,), labels from ``classes_``.
        """
        X = self._validate_predict(X)
        return np.asarray(self.student_.predict(X))

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Class probabilities of the student, columns ordered as ``classes_``."""
        X = self._validate_predict(X)
        return proba_in_classes(self.student_, X, self.classes_)

    def _validate_predict(self, X):
        check_is_fitted(self, "student_")
        X = self._coded(X)
        if not getattr(self, "_student_nan_ok", False):
            check_missing(X, [("student", self.student_)], getattr(self, "feature_names_in_", None))
        return X


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
        Synthetic rows per real row (MUNGE, see :func:`crembo.compress.augment.munge`)
        added to the transfer set and labelled by the teacher; 0 adds none.
    augment_swap, augment_spread : float, default=0.5 and 1.0
        MUNGE's swap probability and spread.
    belief : {"auto", "votes", "proba"}, default="auto"
        How beliefs are read from the teacher (see ``teacher_beliefs``).
    n_jobs : int or None
        Threads for querying ensemble members.
    device : {"auto", "cpu", "cuda"}, default="auto"
    random_state : int, RandomState or None

    Attributes
    ----------
    teacher_, student_, classes_, n_features_in_
    categories_ : list or None
        For a DataFrame with categorical, object or string columns: per
        column, the categories whose codes the student sees (None for a
        numeric column); None when every column is numeric.
    """

    def __init__(
        self,
        teacher=None,
        student=None,
        *,
        augment=0.0,
        augment_swap=0.5,
        augment_spread=1.0,
        belief="auto",
        n_jobs=None,
        device="auto",
        random_state=None,
    ):
        self.teacher = teacher
        self.student = student
        self.augment = augment
        self.augment_swap = augment_swap
        self.augment_spread = augment_spread
        self.belief = belief
        self.n_jobs = n_jobs
        self.device = device
        self.random_state = random_state

    def _default_student(self):
        return default_student()

    def fit(
        self, X: ArrayLike, y: ArrayLike, X_unlabeled: ArrayLike | None = None, sample_weight: ArrayLike | None = None
    ) -> LabelDistiller:
        """Fit the student on the teacher's labels of ``X`` and ``X_unlabeled``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Missing values (NaN) are passed on when the teacher and the
            student both accept them.
        y : array-like of shape (n_samples,)
            Labels; ``-1`` marks a row without a label (it joins the transfer
            set only), except for labels exactly ``{-1, 1}``.
        X_unlabeled : array-like of shape (m, n_features), optional
            More rows without labels. Not transformed by the steps before
            this estimator in a Pipeline: prefer ``y == -1`` rows there.
        sample_weight : array-like of shape (n_samples,), optional
            Weights of the rows of ``X``, used to fit the teacher (when
            crembo fits it) and the student; rows of ``X_unlabeled`` and
            synthetic rows weigh the mean weight.
        """
        self._validate_params()
        check_device(self.device)
        X, y, X_unl, w, w_unl, w_teacher = self._validate_inputs(X, y, X_unlabeled, sample_weight)
        y_classes = unique_labels(y)[0]
        self._check_single_class(y_classes)
        self._check_missing(X, X_unl)
        rng = check_random_state(self.random_state)
        source, self.classes_ = self._resolve_teacher(X, y, X_unl, rng, w_teacher, y_classes)
        X_t = np.concatenate([X, X_unl]) if len(X_unl) else X
        w_t = None if w is None else np.concatenate([w, w_unl])
        P = self._beliefs(source, X_t, np.arange(len(X_t)))
        X_syn = self._synthetic_rows(source, X_t, rng)
        if len(X_syn):
            X_t, P = np.concatenate([X_t, X_syn]), np.concatenate([P, self._beliefs(source, X_syn, None)])
            w_t = None if w_t is None else np.concatenate([w_t, np.ones(len(X_syn))])
        labels, _ = _native.row_argmax(P)
        trainer = StudentTrainer(self._student_template(), self.classes_, target="labels", seed=seed_from(rng))
        if w_t is not None and not trainer.accepts_weights:
            raise TypeError(
                f"sample_weight: the student {type(trainer.template).__name__}.fit does not accept sample_weight"
            )
        self.student_ = trainer.fit_labels(X_t, labels, w_t)
        return self


class _NoBar:
    """Stands for a progress bar when ``verbose`` is 0."""

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


#: Estimator lineages (an estimator and its clones) already warned that MEMO
#: found no consistent student; later fits log it at INFO level instead.
_WARNED_NO_MEMO = set()


def _extend_weights(w, n):
    """Weights ``w`` followed by ``n`` ones (None stays None)."""
    return None if w is None else np.concatenate([w, np.ones(n)])


class _StageClock:
    """Seconds per stage of a fit, for ``timings_``: the stages time
    themselves with :meth:`stage`; ``student_fits`` adds up the wall time
    during which student fits ran."""

    STAGES = ("teacher_fit", "augment", "beliefs", "memo", "sweep", "refit")

    def __init__(self):
        self.start = time.perf_counter()
        self.seconds = dict.fromkeys((*self.STAGES, "student_fits"), 0.0)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - t0

    def add_fits(self, seconds: float) -> None:
        self.seconds["student_fits"] += seconds

    def deadline(self, max_time: float | None) -> float | None:
        """The ``time.time()`` at which ``max_time`` seconds from the start
        are spent (None: no limit)."""
        if max_time is None:
            return None
        return time.time() + float(max_time) - (time.perf_counter() - self.start)

    def timings(self) -> dict[str, float]:
        out = dict(self.seconds)
        out["total"] = time.perf_counter() - self.start
        out["overhead"] = out["total"] - out["teacher_fit"] - out["student_fits"]
        return out


def stratified_holdout(inverse: np.ndarray, counts: np.ndarray, n_val: int, seed: int | None):
    """The sorted fitting and validation rows that scikit-learn's
    ``train_test_split(..., test_size=n_val, random_state=seed, stratify=y)``
    chooses, for ``inverse, counts = np.unique(y, return_inverse=True,
    return_counts=True)`` (at least 2 rows per class and at least one class
    count of rows on each side).

    The same random draws in the same order (each class's share of each
    side, then one permutation per class); the rows are gathered with
    arrays, where scikit-learn builds Python lists (20 ms at 10^5 rows).
    The last shuffle of each side is left out: the rows come back sorted.
    A test checks the equality on many layouts.
    """
    if _approximate_mode is None:  # a scikit-learn without the helper
        y_rows = np.arange(len(inverse))
        fit_rows, val_rows = train_test_split(y_rows, test_size=n_val, random_state=seed, stratify=inverse)
        return np.sort(fit_rows), np.sort(val_rows)
    rng = check_random_state(seed)
    n_fit = len(inverse) - n_val
    fit_share = _approximate_mode(counts, n_fit, rng)
    val_share = _approximate_mode(counts - fit_share, n_val, rng)
    # A stable sort is one permutation whatever the dtype; numpy sorts
    # 16-bit keys by radix (4x faster than 64-bit ones at 10^5 rows).
    keys = inverse.astype(np.uint16) if len(counts) <= 1 << 16 else inverse
    by_class = np.split(np.argsort(keys, kind="stable"), np.cumsum(counts)[:-1])
    side = np.zeros(len(inverse), dtype=np.int8)  # 1: fitting, 2: validation (rows come back sorted)
    for rows, n_f, n_v in zip(by_class, fit_share, val_share):
        rows = rows[rng.permutation(len(rows))]
        side[rows[:n_f]] = 1
        side[rows[n_f : n_f + n_v]] = 2
    return np.flatnonzero(side == 1), np.flatnonzero(side == 2)


def unique_labels(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``np.unique(y, return_inverse=True, return_counts=True)``, without the
    sort for small non-negative integer labels (the usual ``y``): the same
    classes, inverse and counts from one ``bincount``. A fit needs them
    several times (two classes at least, the teacher's classes, the
    stratified split); on 10^5 labels each ``np.unique`` costs 2 ms."""
    y = np.asarray(y)
    if y.ndim == 1 and y.dtype.kind in "iu" and y.size and y.min() >= 0 and y.max() < 4 * y.size + 1024:
        counts = np.bincount(y)
        present = counts > 0
        inverse = (np.cumsum(present) - 1)[y]
        return np.flatnonzero(present).astype(y.dtype), inverse, counts[present]
    classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    return classes, inverse.reshape(-1), counts


@dataclass
class _FitData:
    """The checked inputs of a fit: the labelled rows, the unlabelled rows
    and their weights (see ``_DistillerBase._validate_inputs``)."""

    X: np.ndarray
    y: np.ndarray
    X_unl: np.ndarray
    w_lab: np.ndarray | None
    w_unl: np.ndarray | None
    w_teacher: np.ndarray | None
    labels: tuple  # unique_labels(y): classes, inverse, counts


@dataclass
class _TransferSet:
    """The rows a CREMBO fit learns from, with the teacher's beliefs.

    ``*_all``: every labelled and unlabelled row (beliefs only with
    ``refit=True``); ``*_tr``: the transfer set (fitting rows, unlabelled
    rows, synthetic rows); ``*_s``: the rows MEMO and the sweep search on
    (the transfer set itself, or its subsample ``search``).
    """

    X_all: np.ndarray
    P_all: np.ndarray | None
    w_all: np.ndarray | None
    X_tr: np.ndarray
    P_tr: np.ndarray
    w_tr: np.ndarray | None
    X_s: np.ndarray
    P_s: np.ndarray
    w_s: np.ndarray | None
    search: np.ndarray
    fit_rows: np.ndarray
    val_rows: np.ndarray
    refit_all: bool

    @cached_property
    def distinct(self) -> tuple:
        """``P_s``'s positive entries, distinct and counted
        (``sweep.distinct_beliefs``): MEMO's candidates and the sweep's
        thresholds both come from it, gathered once."""
        return distinct_beliefs(self.P_s)


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
    mode : {"crembo", "memo"}, default="crembo"
        ``"memo"`` returns MEMO's deepest student, without a validation split.
    oracle : {"reweight", "single"}, default="reweight"
        MEMO's consistency oracle: rounds of weighted fits, or the paper's
        single multi-output fit.
    student_target : {"auto", "labels", "multioutput"}, default="auto"
        How students learn allowed-label sets: one allowed label per point
        (works with any classifier), or the paper's multi-output fit on the
        allowed-label matrix. "auto": "multioutput" with ``oracle="single"``,
        else "labels".
    max_rounds : int, default=8
        Reweighting rounds per MEMO threshold.
    eta : float, default=1.0
        Weight growth ``1 + eta`` of a violating point per round.
    patience : int, default=0
        MEMO gives a threshold up after this many rounds without fewer
        violations than its best round (0: always ``max_rounds`` rounds); a
        speed option that can stop short of the deepest threshold.
    probe_lowest : bool, default=True
        MEMO probes the smallest threshold first and stops when it fails
        (nothing above it can pass; that probe gives up early when hopeless,
        see :func:`crembo.compress.memo`); ``False``: the paper's plain
        binary search. The same answer whenever the oracle is exact.
    warm_start : bool, default=True
        Each MEMO probe starts from the weights the previous probe ended with
        (see :func:`crembo.compress.memo`).
    adaptive_eta : bool, default=True
        The growth of violating points compounds while a round brings no
        fewer violations (see :func:`crembo.compress.memo`).
    search : {"binary", "gallop"}, default="binary"
        How MEMO searches the thresholds: the paper's binary search, or a
        galloping search up from the smallest that jumps to the deepest
        threshold each consistent student reaches (fewer fits on the
        measured data; see :func:`crembo.compress.memo`).
    delta : float in [0, 1), default=0.0
        Tolerated fraction of violations in MEMO (delta-insensitive depth).
    validation_fraction : float in (0, 1), default=0.15
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
    cv_repeats : int, default=1
        Fold partitions of the cross-validated sweep: each threshold is
        scored on the out-of-fold predictions of ``cv_repeats`` partitions
        of the labelled rows (every row scored ``cv_repeats`` times): scores
        less bound to one partition, at ``cv_repeats`` times the sweep's
        fits. In the study's tuning run 2 and 3 did not make students
        agree more across training sets (docs/defaults_study.md). No effect
        with a single held-out split (``cv=None``, or ``"auto"`` resolving
        to it).
    n_thresholds : int or None, default=32
        Budget of the threshold sweep (quantile-spaced candidates at or above
        MEMO's threshold); None walks every distinct belief value.
    scoring : {"accuracy", "balanced_accuracy"}, default="accuracy"
        Validation score used to choose the threshold.
    selection : {"best", "one_se"} or callable, default="best"
        ``"best"``: the threshold of highest validation score (ties to the
        lowest threshold). ``"one_se"``: the lowest threshold whose score is
        within one standard error (``sqrt(s(1-s)/n_val)``) of the best, which
        prefers students closer to MEMO's deep one when the validation split
        cannot tell them apart. A callable is given the sweep's
        :class:`~crembo.compress.SweepResult` and returns one of its scored
        candidates (see :func:`crembo.compress.select_candidate`).
    refit : bool, default=False
        Refit the chosen threshold's student on all of ``X`` (fit and
        validation parts) and ``X_unlabeled``.
    search_subsample : int, float or None, default=None
        Search (MEMO and sweep) on a random subsample of the transfer set of
        this many rows (or this fraction), then refit once on all of it at the
        chosen threshold: for large data sets.
    augment : float or "auto", default="auto"
        Synthetic rows per transfer row, made by MUNGE (Bucilă et al., 2006;
        :func:`crembo.compress.augment.munge`) and labelled by the teacher's belief:
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
    belief : {"auto", "votes", "proba"}, default="auto"
        How beliefs are read from the teacher.
    n_jobs : int or None
        Threads for the sweep's fits and for querying ensemble members.
    device : {"auto", "cpu", "cuda"}, default="auto"
        Where beliefs and depth kernels run.
    random_state : int, RandomState or None
        Seeds the split, the default teacher and the students.
    verbose : int, default=0
        When >= 1, every stage of the fit shows a tqdm progress bar on a
        line of its own: teacher fit, teacher beliefs (on the transfer rows
        and on the synthetic rows), MEMO's student fits, the sweep and the
        refit.
    max_time : float or None, default=None
        Seconds the fit may take, counted from its start: once they are
        spent the sweep starts no new threshold (the first is always
        tried), and the best student among the thresholds already scored is
        kept; ``timed_out_`` tells whether the budget cut the sweep short.
        The teacher fit, beliefs and MEMO are not interrupted (they count
        against the budget). None: no limit.

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
    sweep_ : SweepResult or None
        The sweep (:class:`crembo.compress.SweepResult`): every threshold
        tried with its score, violations, seconds and (without ``cv``) its
        student; ``select_candidate(sweep_, rule)`` tells what another
        selection rule would have chosen. None in ``mode="memo"``.
    trace_ : list of dict
        Every threshold tried: stage ("memo", "sweep", "cv" or "refit"),
        threshold, consistent, violations, rounds, validation_score and
        fit_seconds.
    n_student_fits_ : int
    categories_ : list or None
        As in :class:`LabelDistiller`: the categories of categorical columns.
    timed_out_ : bool
        True when ``max_time`` cut the sweep short.
    timings_ : dict
        Seconds spent in teacher fit, the synthetic rows of ``augment``
        (MUNGE's neighbour search and draws; 0 without them), beliefs, MEMO,
        sweep, refit and in total; ``student_fits`` is the wall time during
        which at least one student fit ran (fits running at once with
        ``n_jobs`` count once) and ``overhead = total - teacher_fit -
        student_fits`` (synthetic rows, beliefs, thresholds, predictions,
        scoring; never negative).
    """

    _parameter_constraints: dict = {
        **_DistillerBase._parameter_constraints,
        **MEMO_PARAMETERS,
        "mode": [Options("crembo", "memo")],
        "validation_fraction": [Interval("real", 0.0, 1.0, closed="neither")],
        "cv": [None, Options("auto"), Interval("integer", 2, MAX_INT)],
        "cv_repeats": [Interval("integer", 1, MAX_INT)],
        "n_thresholds": [None, Interval("integer", 1, MAX_INDEX)],  # a 64-bit budget
        "scoring": [Options(*SCORERS)],
        "selection": [Options(*SELECTIONS), "callable"],
        "refit": BOOLEAN,
        "search_subsample": [
            None,
            Interval("integer", 2, MAX_INDEX),
            Interval("real_not_int", 0.0, 1.0, closed="right"),
        ],
        "leaf_values": [Options(*LEAF_VALUES)],
        "verbose": VERBOSE,
        "max_time": [None, Interval("real", 0.0, np.inf, closed="neither", desc="a positive number of seconds")],
    }

    def __init__(
        self,
        teacher=None,
        student=None,
        *,
        mode="crembo",
        oracle="reweight",
        student_target="auto",
        max_rounds=8,
        eta=1.0,
        patience=0,
        probe_lowest=True,
        warm_start=True,
        adaptive_eta=True,
        search="binary",
        delta=0.0,
        validation_fraction=0.15,
        cv="auto",
        cv_repeats=1,
        n_thresholds=32,
        scoring="accuracy",
        selection="best",
        refit=False,
        search_subsample=None,
        augment="auto",
        augment_swap=0.5,
        augment_spread=1.0,
        leaf_values="auto",
        belief="auto",
        n_jobs=None,
        device="auto",
        random_state=None,
        verbose=0,
        max_time=None,
    ):
        self.teacher = teacher
        self.leaf_values = leaf_values
        self.warm_start = warm_start
        self.adaptive_eta = adaptive_eta
        self.search = search
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
        self.cv_repeats = cv_repeats
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
        self.max_time = max_time

    # ---------------------------------------------------------------- checks
    def _check_params(self):
        """The parameters checked against ``_parameter_constraints``, the
        device's availability, and the student target the oracle needs."""
        self._validate_params()
        check_device(self.device)
        target = self.student_target
        if target == "auto":
            target = "multioutput" if self.oracle == "single" else "labels"
        if self.oracle == "single" and target != "multioutput":
            raise ValueError("oracle='single' fits the allowed-label matrix; it needs student_target='multioutput'")
        return target

    # ------------------------------------------------------------------- fit
    def fit(
        self, X: ArrayLike, y: ArrayLike, X_unlabeled: ArrayLike | None = None, sample_weight: ArrayLike | None = None
    ) -> CREMBOClassifier:
        """Compress the teacher into the student.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Labelled data. In ``mode="crembo"`` a ``validation_fraction`` of it
            chooses the threshold; the rest (and ``X_unlabeled``) is the
            transfer set on which the teacher's beliefs are computed.
            Missing values (NaN) are passed on to the teacher and the
            student when both accept them (scikit-learn's ``allow_nan`` tag;
            crembo's ``HistTreeClassifier`` does); otherwise the error names
            the column and the model that refuses them.
        y : array-like of shape (n_samples,)
            Labels (any hashable type); used to fit an unfitted teacher and
            to score the validation split. ``-1`` marks a row without a
            label (scikit-learn's semi-supervised convention): it joins the
            transfer set, never fits the teacher, is never scored and never
            becomes a class (except for labels exactly ``{-1, 1}``, where
            ``-1`` is a class).
        X_unlabeled : array-like of shape (m, n_features), optional
            Extra transfer points without labels. In a Pipeline these rows do
            *not* go through the steps before this estimator (scalers,
            encoders): pass them as rows of ``X`` labelled ``-1`` instead.
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights of the rows of ``X``; they fit the teacher
            as given (when crembo fits it), and, rescaled to mean 1, start MEMO's reweighting, weigh every
            student fit of the sweep and the refit, and weigh the validation
            score. Rows of ``X_unlabeled`` and MUNGE's synthetic rows weigh
            the mean weight; multiplying all weights by one factor changes
            nothing. Routed by scikit-learn's metadata routing
            (``set_fit_request(sample_weight=True)``).

        Returns
        -------
        self
        """
        clock = _StageClock()
        target = self._check_params()
        data = self._validated(X, y, X_unlabeled, sample_weight)
        rng = check_random_state(self.random_state)
        seed = seed_from(rng)
        self._deadline = clock.deadline(self.max_time)
        self.timed_out_ = False

        with clock.stage("teacher_fit"), self._bar("CREMBO teacher fit", total=1, unit="model") as bar:
            source, self.classes_ = self._resolve_teacher(
                data.X, data.y, data.X_unl, rng, data.w_teacher, data.labels[0]
            )
            bar.update(1)
        y_classes, y_inverse, _ = data.labels
        same = len(self.classes_) == len(y_classes) and np.array_equal(self.classes_, y_classes)
        y_idx = y_inverse if same else np.searchsorted(self.classes_, data.y)
        template = self._student_template()
        n_folds = self._resolve_cv(template, len(data.X))
        tr = self._transfer_set(source, data, y_idx, n_folds, rng, clock)

        trainer = StudentTrainer(template, self.classes_, target=target, seed=seed)
        check_oracle(self.oracle, trainer)
        with clock.stage("memo"):
            memo_res = self._run_memo(trainer, tr)
        clock.add_fits(memo_res.fit_seconds)
        self._leaf_values = resolve_leaf_values(self.leaf_values, trainer)
        memo_student, memo_pred = self._memo_candidate(memo_res, trainer, tr)

        self.sweep_ = None
        if self.mode == "memo":
            threshold, student, score = memo_res.threshold, memo_student, None
            if memo_student is None:
                threshold = float(_native.candidate_thresholds(tr.P_s, 0.0, 1.0)[0])
        else:
            with clock.stage("sweep"):
                self.sweep_ = self._run_sweep(trainer, data, tr, y_idx, n_folds, memo_res, memo_student, memo_pred, rng)
            clock.add_fits(self.sweep_.fit_seconds)
            self.timed_out_ = self.sweep_.timed_out
            threshold, student, score = self._select(self.sweep_, memo_res, memo_student)

        trace = [dict(stage="memo", validation_score=None, **rec) for rec in memo_res.trace]
        trace += [] if self.sweep_ is None else self.sweep_.trace()
        refit = None
        if tr.refit_all or student is None or tr.X_s is not tr.X_tr:
            with clock.stage("refit"):
                refit, X_f, P_f = self._refit(trainer, tr, threshold, student, memo_student, memo_pred)
            clock.add_fits(refit.seconds)
            student = refit.student
            trace.append(
                dict(
                    stage="refit",
                    threshold=threshold,
                    consistent=refit.violations == 0,
                    violations=refit.violations,
                    rounds=1,
                    validation_score=None,
                    fit_seconds=refit.seconds,
                )
            )
        else:
            X_f, P_f = tr.X_tr, tr.P_tr

        self.student_ = student
        self.threshold_ = threshold
        self.validation_score_ = score
        self.trace_ = trace
        n_fits = memo_res.n_fits + (0 if self.sweep_ is None else self.sweep_.n_fits) + (refit is not None)
        self.n_student_fits_ = int(n_fits)
        pred_f = refit.pred if refit is not None else trainer.predict_index(student, X_f)
        self.depth_ = float(_native.empirical_depth(P_f, pred_f, 0.0))
        self.timings_ = clock.timings()
        log.info(
            "CREMBO: threshold %.4g (MEMO %s), depth %.4g, %d student fits, %.2fs",
            threshold,
            self.memo_threshold_,
            self.depth_,
            self.n_student_fits_,
            self.timings_["total"],
        )
        return self

    # ---------------------------------------------------------- fit stages
    def _validated(self, X, y, X_unlabeled, sample_weight):
        """Stage "validate": the checked inputs (see ``_validate_inputs``)."""
        X, y, X_unl, w_lab, w_unl, w_teacher = self._validate_inputs(X, y, X_unlabeled, sample_weight)
        labels = unique_labels(y)
        self._check_single_class(labels[0])
        self._check_missing(X, X_unl)
        return _FitData(X=X, y=y, X_unl=X_unl, w_lab=w_lab, w_unl=w_unl, w_teacher=w_teacher, labels=labels)

    def _transfer_set(self, source, data, y_idx, n_folds, rng, clock):
        """Stage "beliefs": the validation split, the transfer set (fitting
        rows, unlabelled rows, synthetic rows), the teacher's beliefs on it,
        and the search subsample."""
        n, n_unl = len(data.X), len(data.X_unl)
        use_cv = self.mode == "crembo" and n_folds is not None
        if self.mode == "crembo" and not use_cv:
            fit_rows, val_rows = self._split(data.labels, rng)
        else:
            fit_rows, val_rows = np.arange(n), np.arange(0)
        # Transfer set: the fitting part plus the unlabelled rows (which sit
        # after the n labelled rows in a precomputed belief array).
        transfer_rows = np.concatenate([fit_rows, n + np.arange(n_unl)])
        X_all = np.concatenate([data.X, data.X_unl]) if n_unl else data.X
        X_tr = X_all[transfer_rows]
        w_all = None if data.w_lab is None else np.concatenate([data.w_lab, data.w_unl])
        w_tr = None if w_all is None else w_all[transfer_rows]
        # Synthetic rows near the transfer set (MUNGE), labelled by the teacher.
        with clock.stage("augment"):
            X_syn = self._synthetic_rows(source, X_tr, rng)
        # refit=True trains the final student on every row: ask the teacher
        # about all of them once (cv already searched on every row).
        refit_all = self.refit and self.mode == "crembo" and not use_cv
        P_all = None
        with clock.stage("beliefs"):
            if refit_all:
                P_all = self._beliefs(source, X_all, np.arange(n + n_unl))
                P_tr = np.ascontiguousarray(P_all[transfer_rows])
            else:
                P_tr = self._beliefs(source, X_tr, transfer_rows)
            if len(X_syn):
                P_syn = self._beliefs(source, X_syn, None, desc="teacher beliefs (synthetic rows)")
                X_tr, P_tr = np.concatenate([X_tr, X_syn]), np.concatenate([P_tr, P_syn])
                w_tr = _extend_weights(w_tr, len(X_syn))
                if refit_all:
                    X_all, P_all = np.concatenate([X_all, X_syn]), np.concatenate([P_all, P_syn])
                    w_all = _extend_weights(w_all, len(X_syn))
        # Search on a subsample when asked, refit once on all rows after.
        search = np.arange(len(X_tr))
        sub = self.search_subsample
        if sub is not None:
            size = int(sub) if isinstance(sub, numbers.Integral) else int(round(sub * len(X_tr)))
            if size < len(X_tr):
                search = np.sort(rng.choice(len(X_tr), size=max(size, 2), replace=False))
        if len(search) == len(X_tr):
            X_s, P_s, w_s = X_tr, P_tr, w_tr  # the same arrays: a student's binned X is reused
        else:
            X_s, P_s = X_tr[search], np.ascontiguousarray(P_tr[search])
            w_s = None if w_tr is None else w_tr[search]
        return _TransferSet(
            X_all=X_all,
            P_all=P_all,
            w_all=w_all,
            X_tr=X_tr,
            P_tr=P_tr,
            w_tr=w_tr,
            X_s=X_s,
            P_s=P_s,
            w_s=w_s,
            search=search,
            fit_rows=fit_rows,
            val_rows=val_rows,
            refit_all=refit_all,
        )

    def _run_memo(self, trainer, tr):
        """Stage "MEMO": the deepest consistent student on the search rows;
        sets the ``memo_*`` attributes and warns (once per lineage) when
        there is none."""
        with self._bar("MEMO probes", unit="fit") as bar:
            memo_res = run_memo(
                tr.X_s,
                tr.P_s,
                trainer,
                oracle=self.oracle,
                max_rounds=self.max_rounds,
                eta=self.eta,
                delta=self.delta,
                patience=self.patience,
                probe_lowest=bool(self.probe_lowest),
                warm_start=bool(self.warm_start),
                adaptive_eta=bool(self.adaptive_eta),
                search=self.search,
                sample_weight=tr.w_s,
                on_fit=bar.update,
                distinct=tr.distinct,
            )
        self.memo_threshold_ = memo_res.threshold
        self.memo_depth_ = memo_res.depth
        self.memo_student_ = memo_res.student
        if memo_res.student is None:
            then = (
                "the sweep starts from the smallest belief value"
                if self.mode == "crembo"
                else "the student is trained on the allowed labels at the smallest belief value"
            )
            message = f"MEMO found no consistent student at any threshold; {then}"
            token = self._lineage_token()
            if token in _WARNED_NO_MEMO:
                log.info("%s (warned already for this estimator)", message)
            else:
                _WARNED_NO_MEMO.add(token)
                warnings.warn(message, RuntimeWarning, stacklevel=3)
        return memo_res

    def _memo_candidate(self, memo_res, trainer, tr):
        """MEMO's student as it stands for its threshold, and its label
        indices on the search rows. With belief leaves it is a copy whose
        leaves predict the mean beliefs (``memo_student_`` keeps its own
        leaves: its depth is MEMO's)."""
        if self._leaf_values != "belief" or memo_res.student is None:
            return memo_res.student, memo_res.pred
        import copy

        student = set_leaf_beliefs(copy.deepcopy(memo_res.student), tr.X_s, tr.P_s, self.classes_, tr.w_s)
        return student, trainer.predict_index(student, tr.X_s)

    def _run_sweep(self, trainer, data, tr, y_idx, n_folds, memo_res, memo_student, memo_pred, rng):
        """Stage "sweep": every threshold from MEMO's up, scored on the
        validation split or by ``cv``-fold cross-validation."""
        thresholds = sweep_thresholds(tr.P_s, memo_res.threshold, self.n_thresholds, tr.distinct)
        common = dict(
            prefer=memo_pred,
            sample_weight=tr.w_s,
            scoring=self.scoring,
            leaf_values=self._leaf_values,
            n_jobs=self.n_jobs,
            deadline=self._deadline,
        )
        w_lab = data.w_lab
        if n_folds is not None:
            # The labelled rows of the search set (the first rows of the transfer set are X's).
            labelled = np.flatnonzero(tr.search < len(tr.fit_rows))
            rows = tr.fit_rows[tr.search[labelled]]
            repeats = self.cv_repeats
            desc = f"CREMBO {n_folds}-fold sweep" + (f" x {repeats}" if repeats > 1 else "")
            with self._bar(desc, total=len(thresholds) * n_folds * repeats, unit="fit") as bar:
                return cv_sweep(
                    trainer,
                    tr.X_s,
                    tr.P_s,
                    labelled,
                    y_idx[rows],
                    thresholds,
                    n_folds=n_folds,
                    n_repeats=repeats,
                    labelled_weight=None if w_lab is None else w_lab[rows],
                    random_state=seed_from(rng),
                    on_fit=bar.update,
                    **common,
                )
        n_new = sum(memo_student is None or t > memo_res.threshold for t in thresholds)
        with self._bar("CREMBO sweep", total=n_new, unit="threshold") as bar:
            return holdout_sweep(
                trainer,
                tr.X_s,
                tr.P_s,
                trainer.mark_checked(data.X[tr.val_rows]),  # checked with X in _validated
                y_idx[tr.val_rows],
                thresholds,
                memo_student=memo_student,
                memo_threshold=memo_res.threshold,
                validation_weight=None if w_lab is None else w_lab[tr.val_rows],
                on_fit=bar.update,
                **common,
            )

    def _select(self, sweep, memo_res, memo_student):
        """Stage "select": (threshold, student or None, score) of the
        candidate ``selection`` chooses. A cross-validated sweep keeps no
        students: MEMO's stands for its own threshold, any other is refit."""
        chosen = select_candidate(sweep, self.selection)
        if chosen is None:  # the time budget ran out before a threshold was scored in every fold
            threshold, student, score = sweep.thresholds[0], None, None
        else:
            threshold, student, score = chosen.threshold, chosen.student, chosen.score
        if sweep.method == "cv":
            is_memo = memo_student is not None and threshold == memo_res.threshold
            student = memo_student if is_memo else None
        return threshold, student, score

    def _refit(self, trainer, tr, threshold, student, memo_student, memo_pred):
        """Stage "refit": one student at the chosen threshold on every
        transfer row (every row with ``refit=True``), when the search used a
        subsample or kept no student. Returns the fit and the rows it saw."""
        X_f, P_f, w_f = (tr.X_all, tr.P_all, tr.w_all) if tr.refit_all else (tr.X_tr, tr.P_tr, tr.w_tr)
        guide = student if student is not None else memo_student
        if guide is None:
            prefer = None
        elif guide is memo_student and X_f is tr.X_s:
            prefer = memo_pred  # MEMO already predicted these rows
        else:
            prefer = trainer.predict_index(guide, X_f)
        with self._bar("CREMBO refit", total=1, unit="fit") as bar:
            fit = fit_at_threshold(
                trainer, X_f, P_f, threshold, prefer, sample_weight=w_f, leaf_values=self._leaf_values
            )
            bar.update(1)
        return fit, X_f, P_f

    def _resolve_cv(self, template, n_labelled):
        """``cv="auto"``: 5 folds for tree students (the study's choice,
        cheap refits) when there are at least 10 labelled rows, else one
        held-out split."""
        if not (isinstance(self.cv, str) and self.cv == "auto"):
            return self.cv
        small = 2 * DEFAULT_CV <= n_labelled <= AUTO_MAX_ROWS
        return DEFAULT_CV if is_tree_student(template) and small else None

    def _split(self, labels, rng):
        """(fitting rows, validation rows) of the labelled rows whose
        ``unique_labels`` are ``labels``: stratified when every class has
        two rows or more."""
        _, inverse, counts = labels
        n = len(inverse)
        idx = np.arange(n)
        n_val = int(np.ceil(self.validation_fraction * n))
        if n_val < 1 or n - n_val < 1:
            raise ValueError(
                f"validation_fraction={self.validation_fraction} leaves no fitting or no validation "
                f"rows out of {n}; use more data or mode='memo'"
            )
        seed = seed_from(rng)
        if counts.min() >= 2 and min(n_val, n - n_val) >= len(counts):
            return stratified_holdout(inverse, counts, n_val, seed)
        fit_rows, val_rows = train_test_split(idx, test_size=n_val, random_state=seed)
        return np.sort(fit_rows), np.sort(val_rows)
