"""The reference experimental protocol: which compression method is better.

* :func:`generalization`: k-fold cross-validation (unshuffled folds, the
  rows permuted anew for each repeat after the first); mean/std test accuracy
  per method and how many folds each method wins.
* :func:`stability`: a fixed held-out test split; one student per fold of
  the rest, built from that fold's training part; the *agreement* of a
  method is the mean pairwise fraction of test points on which its students
  predict the same label.

Methods (``METHODS``): the teacher itself, BM (the student on the true
labels), VT (the student on the teacher's argmax labels), MEMO and CREMBO.
Inside a fold the teacher is fitted once on the fold's training part and
shared, prefit, by VT, MEMO and CREMBO. The protocol: ``docs/ALGORITHMS.md``,
section 6.
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold, train_test_split

from .._validation import seeded_clone
from ..compress.sweep import Selection, select_candidate
from ..compress.estimators import CREMBOClassifier, LabelDistiller, default_teacher
from ..compress.memo import default_student
from ..trees.hist import resolve_student
from .metrics import add_feature_noise, agreement, flip_labels

__all__ = ["METHODS", "EXTRA_METHODS", "generalization", "stability", "ProtocolResult", "format_table"]

METHODS = ("teacher", "BM", "VT", "MEMO", "CREMBO")
#: Further methods a protocol run may ask for: CREMBO with the one-standard-
#: error selection rule (the lowest threshold within one SE of the best
#: validation score).
EXTRA_METHODS = ("CREMBO-1SE",)


def _build(method, teacher, students, X, y, seed, crembo_params, variants=None):
    """Fit one method's model on (X, y); ``teacher`` is already fitted.
    ``students``: (the baselines' student, MEMO's and CREMBO's student; None
    means CREMBOClassifier's default)."""
    student, crembo_student = students
    if method == "teacher":
        return teacher
    if variants and method in variants:
        params = dict(variants[method])
        kind = params.pop("estimator", "crembo")
        est_student = params.pop("student", student)
        if kind == "vt":
            return LabelDistiller(teacher=teacher, student=est_student, random_state=seed, **params).fit(X, y)
        if kind == "bm":
            return seeded_clone(resolve_student(est_student), seed).fit(X, y)
        return CREMBOClassifier(teacher=teacher, student=est_student, random_state=seed, **params).fit(X, y)
    if method == "BM":
        return seeded_clone(student, seed).fit(X, y)
    if method == "VT":
        return LabelDistiller(teacher=teacher, student=student, random_state=seed).fit(X, y)
    params = dict(crembo_params or {})
    if method == "MEMO":
        params["mode"] = "memo"
    elif method == "CREMBO-1SE":
        params["selection"] = "one_se"
    return CREMBOClassifier(teacher=teacher, student=crembo_student, random_state=seed, **params).fit(X, y)


def _can_reselect(est: CREMBOClassifier) -> bool:
    """True when every sweep candidate of the fitted ``est`` is a student that
    could be its final one: a CREMBO fit on one validation split, without a
    refit (``refit=True``, a search subsample) after the sweep."""
    sweep = est.sweep_
    return sweep is not None and sweep.method == "holdout" and not any(r["stage"] == "refit" for r in est.trace_)


def _with_selection(est: CREMBOClassifier, selection: Selection) -> CREMBOClassifier:
    """A copy of the fitted ``est`` whose student is the candidate of its
    sweep (``est.sweep_``) that ``selection`` chooses, to compare selection
    rules without repeating the search. ``depth_`` of the copy is NaN (the
    transfer set is not kept to recompute it)."""
    if not _can_reselect(est):
        raise ValueError("selection can only be changed after a CREMBO fit without cv, refit or subsampling")
    chosen = select_candidate(est.sweep_, selection)
    other = copy.copy(est)
    other.selection = selection
    other.student_, other.threshold_, other.validation_score_ = chosen.student, chosen.threshold, chosen.score
    other.depth_ = float("nan")
    return other


def _fold(
    train, test, X, y, methods, teacher, students, seed, crembo_params, label_noise=0.0, feature_noise=(), variants=None
):
    """Fit every method on ``train`` and score it on ``test``.

    ``label_noise`` flips that share of the training labels (teacher and
    students all see the same noisy labels; the test labels stay clean).
    ``feature_noise`` lists levels of Gaussian test-time noise, scaled by the
    training features' standard deviations, at which accuracy is also read.
    """
    rng = np.random.RandomState(seed)
    y_train = y[train]
    if label_noise > 0:
        y_train = flip_labels(y_train, label_noise, n_classes=np.unique(y), random_state=rng)
    scale = X[train].std(axis=0)
    noisy_tests = {lv: add_feature_noise(X[test], lv, random_state=rng, scale=scale) for lv in feature_noise}
    # A MEMO that finds no consistent student is part of the results (its
    # sweep then starts from the lowest threshold), not a warning per fold.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="MEMO found no consistent student")
        # A teacher (the MLP) that stops at its iteration budget is part of the
        # protocol as specified, not news at every fold.
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        t0 = time.perf_counter()
        teacher_ = clone(teacher).fit(X[train], y_train)
        teacher_seconds = time.perf_counter() - t0
        out, fitted = {}, {}
        for m in methods:
            t0 = time.perf_counter()
            shared = fitted.get("CREMBO")
            if m == "CREMBO-1SE" and shared is not None and _can_reselect(shared):
                # Same search as CREMBO's, another selection rule: no refit needed.
                est = _with_selection(shared, "one_se")
                secs = out["CREMBO"]["seconds"]
            else:
                est = _build(m, teacher_, students, X[train], y_train, seed, crembo_params, variants)
                secs = time.perf_counter() - t0 + (teacher_seconds if m == "teacher" else 0.0)
            fitted[m] = est
            pred = np.asarray(est.predict(X[test]))
            out[m] = dict(
                pred=pred,
                accuracy=float(np.mean(pred == y[test])),
                seconds=secs,
                noisy={lv: float(np.mean(est.predict(Xn) == y[test])) for lv, Xn in noisy_tests.items()},
            )
            if hasattr(est, "threshold_"):
                out[m]["threshold"] = est.threshold_
                out[m]["memo_threshold"] = est.memo_threshold_
    return out


def _run_folds(tasks, total, n_jobs, progress, desc):
    """Run the fold tasks (joblib), with a progress bar when asked."""
    results = Parallel(n_jobs=n_jobs, return_as="generator")(tasks)
    if progress:
        from tqdm.auto import tqdm

        results = tqdm(results, total=total, desc=desc, unit="fold")
    return list(results)


@dataclass
class ProtocolResult:
    """Per-method results of one protocol run.

    ``summary[method]`` holds ``mean``, ``std``, ``wins`` (generalization) or
    ``agreement`` and ``accuracy`` (stability), and ``seconds`` (mean wall time
    of one fit).
    """

    kind: str
    summary: dict
    scores: dict = field(default_factory=dict)
    seconds: float = 0.0


def _methods_and_models(methods, teacher, student, random_state, variants=None):
    methods = tuple(METHODS if methods is None else methods)
    variants = dict(variants or {})
    clash = set(variants) & (set(METHODS) | set(EXTRA_METHODS))
    if clash:
        raise ValueError(f"variants: names {sorted(clash)} are taken by built-in methods")
    unknown = set(methods) - set(METHODS) - set(EXTRA_METHODS) - set(variants)
    if unknown:
        raise ValueError(
            f"methods: unknown {sorted(unknown)}; expected a subset of {METHODS + EXTRA_METHODS} or a name of variants"
        )
    teacher = default_teacher(random_state) if teacher is None else teacher
    # No student given: the baselines get the paper's student and MEMO/CREMBO
    # their own default; a given student is every method's.
    students = (default_student(random_state), None) if student is None else (student, student)
    return methods, teacher, students


def _noisy_summary(folds, m):
    levels = folds[0][m]["noisy"].keys() if folds else ()
    return {float(lv): float(np.mean([f[m]["noisy"][lv] for f in folds])) for lv in levels}


def generalization(
    X: ArrayLike,
    y: ArrayLike,
    *,
    methods: Sequence[str] | None = None,
    teacher: Any = None,
    student: Any = None,
    n_splits: int = 10,
    n_repeats: int = 1,
    random_state: int | None = 0,
    crembo_params: dict | None = None,
    label_noise: float = 0.0,
    feature_noise: Sequence[float] = (),
    n_jobs: int | None = None,
    variants: dict | None = None,
    progress: bool = False,
) -> ProtocolResult:
    """Cross-validated test accuracy of each method.

    Parameters
    ----------
    X : ndarray of shape (n, d)
    y : ndarray of shape (n,)
    methods : sequence of str, optional
        Subset of ``METHODS``; default all.
    teacher, student : unfitted estimators, optional
        Default teacher: the paper's random forest. A given student is every
        method's; by default BM and VT use the paper's student (a depth-4
        scikit-learn tree with balanced classes) and MEMO and CREMBO
        ``CREMBOClassifier``'s own default student.
    n_splits : int, default=10
    n_repeats : int, default=1
        The first repeat uses the rows in their given order (unshuffled
        folds); later ones permute the rows first.
    crembo_params : dict, optional
        Extra parameters for the MEMO and CREMBO estimators.
    label_noise : float, default=0
        Share of training labels flipped in every fold (test labels clean).
    variants : dict, optional
        Further methods by name: ``{name: params}``, a ``CREMBOClassifier``
        built with ``params`` (``"student"`` in them replaces the protocol's
        student; ``"estimator": "vt"`` makes it a ``LabelDistiller`` and
        ``"estimator": "bm"`` the student alone on the true labels).
        Their names may then appear in ``methods``.
    feature_noise : sequence of float, default=()
        Test-time Gaussian noise levels (times each feature's training std)
        at which accuracy is also measured.
    n_jobs : int, optional
        Folds run in parallel processes.
    progress : bool, default=False
        A progress bar (tqdm) over the folds.

    Returns
    -------
    ProtocolResult with ``summary[m] = {mean, std, wins, seconds, noisy}`` and
    ``scores[m]`` the per-fold accuracies.
    """
    start = time.perf_counter()
    X, y = np.asarray(X), np.asarray(y)
    methods, teacher, students = _methods_and_models(methods, teacher, student, random_state, variants)
    rng = np.random.RandomState(random_state)
    jobs = []
    for r in range(n_repeats):
        order = np.arange(len(y)) if r == 0 else rng.permutation(len(y))
        for train, test in KFold(n_splits=n_splits).split(X):
            jobs.append((order[train], order[test], int(rng.randint(2**31 - 1))))
    folds = _run_folds(
        (
            delayed(_fold)(
                tr,
                te,
                X,
                y,
                methods,
                teacher,
                students,
                seed,
                crembo_params,
                label_noise,
                tuple(feature_noise),
                variants,
            )
            for tr, te, seed in jobs
        ),
        len(jobs),
        n_jobs,
        progress,
        "cross-validation",
    )
    scores = {m: np.array([f[m]["accuracy"] for f in folds]) for m in methods}
    compared = [m for m in methods if m != "teacher"]
    best = np.max(np.vstack([scores[m] for m in compared]), axis=0)
    summary = {}
    for m in methods:
        summary[m] = dict(
            mean=float(scores[m].mean()),
            std=float(scores[m].std()),
            wins=int(np.sum(scores[m] >= best)) if m != "teacher" else None,
            seconds=float(np.mean([f[m]["seconds"] for f in folds])),
            noisy=_noisy_summary(folds, m),
        )
    return ProtocolResult("generalization", summary, scores, time.perf_counter() - start)


def stability(
    X: ArrayLike,
    y: ArrayLike,
    *,
    methods: Sequence[str] | None = None,
    teacher: Any = None,
    student: Any = None,
    n_splits: int = 10,
    n_repeats: int = 1,
    test_size: float = 0.15,
    random_state: int | None = 0,
    crembo_params: dict | None = None,
    label_noise: float = 0.0,
    n_jobs: int | None = None,
    variants: dict | None = None,
    progress: bool = False,
) -> ProtocolResult:
    """Agreement of the students built on the folds of a fixed training split.

    A ``test_size`` share of the rows is held out (stratified). Each of the
    ``n_splits`` folds of the rest trains every method on that fold's
    training part; a method's agreement is the mean over pairs of folds of the
    fraction of held-out rows where the two students predict the same label.
    With ``n_repeats > 1`` the whole procedure is repeated with new test
    splits and the agreements are averaged. ``variants`` adds methods as in
    :func:`generalization`.

    Returns
    -------
    ProtocolResult with ``summary[m] = {agreement, agreement_std, accuracy,
    seconds}``; ``scores[m]`` holds the agreement of each repeat.
    """
    start = time.perf_counter()
    X, y = np.asarray(X), np.asarray(y)
    methods, teacher, students = _methods_and_models(methods, teacher, student, random_state, variants)
    _, counts = np.unique(y, return_counts=True)
    rng = np.random.RandomState(random_state)
    jobs = []
    for r in range(n_repeats):
        rest, test = train_test_split(
            np.arange(len(y)),
            test_size=test_size,
            random_state=rng.randint(2**31 - 1),
            stratify=y if counts.min() >= 2 else None,
        )
        for tr, _ in KFold(n_splits=n_splits).split(rest):
            jobs.append((r, rest[tr], test, int(rng.randint(2**31 - 1))))
    folds = _run_folds(
        (
            delayed(_fold)(tr, te, X, y, methods, teacher, students, seed, crembo_params, label_noise, (), variants)
            for _, tr, te, seed in jobs
        ),
        len(jobs),
        n_jobs,
        progress,
        "stability folds",
    )
    summary, scores = {}, {}
    for m in methods:
        per_repeat = []
        for r in range(n_repeats):
            preds = [f[m]["pred"] for (rr, *_), f in zip(jobs, folds) if rr == r]
            per_repeat.append(agreement(preds))
        scores[m] = np.array(per_repeat)
        summary[m] = dict(
            agreement=float(scores[m].mean()),
            agreement_std=float(scores[m].std()),
            accuracy=float(np.mean([f[m]["accuracy"] for f in folds])),
            seconds=float(np.mean([f[m]["seconds"] for f in folds])),
        )
    return ProtocolResult("stability", summary, scores, time.perf_counter() - start)


def format_table(
    generalization_result: ProtocolResult | None = None, stability_result: ProtocolResult | None = None
) -> str:
    """A markdown table of one data set's results (either part may be None)."""
    methods = list((generalization_result or stability_result).summary)
    head = ["method"]
    if generalization_result is not None:
        head += ["CV accuracy (mean ± std)", "folds won"]
    if stability_result is not None:
        head += ["agreement", "accuracy (stability split)"]
    head += ["fit time (s)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in methods:
        row = [m]
        secs = None
        if generalization_result is not None:
            g = generalization_result.summary[m]
            row += [f"{g['mean']:.4f} ± {g['std']:.4f}", "" if g["wins"] is None else str(g["wins"])]
            secs = g["seconds"]
        if stability_result is not None:
            s = stability_result.summary[m]
            row += [f"{s['agreement']:.4f}", f"{s['accuracy']:.4f}"]
            secs = s["seconds"] if secs is None else secs
        row.append(f"{secs:.3f}")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)
