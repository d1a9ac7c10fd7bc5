"""The regression side of the ``crembo`` command line (``compress --task
regression``, and ``evaluate``/``export`` of a saved regression student).

``crembo compress`` infers the task from the label column when ``--task
auto`` (the default): a float label with more than ``MAX_CLASS_LIKE_VALUES``
distinct values is a regression target; anything else stays a class label
(``--task regression`` forces regression).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from numpy.typing import ArrayLike

from .. import specs
from .commands import (
    CLIError,
    EXPORT_FORMATS,
    _align_to_model,
    _is_fitted,
    _jsonable,
    _load_pickle,
    _predict,
    _split_list,
    _Stage,
    _student_summary,
    _summarize_warnings,
    _version,
    names_tree_student,
    parse_student,
    read_table,
    teacher_name,
)
from ..evaluation.datasets import Dataset, PathLike

__all__ = ["infer_task", "compress_regression", "evaluate_regression", "export_regression", "REGRESSION_EXPORT_FORMATS"]

#: Float labels with at most this many distinct values stay class labels under --task auto.
MAX_CLASS_LIKE_VALUES = 20
#: The built-in regression teachers (crembo.specs), by canonical name.
REGRESSION_TEACHERS = specs.names("teacher", "regression")
REGRESSION_EXPORT_FORMATS = ("rules", "dot", "cpp", "native")


def infer_task(y: ArrayLike) -> str:
    """ "regression" for a float label with more than ``MAX_CLASS_LIKE_VALUES``
    distinct values; "classification" otherwise."""
    y = np.asarray(y)
    if y.dtype.kind == "f" and np.unique(y[np.isfinite(y)]).size > MAX_CLASS_LIKE_VALUES:
        return "regression"
    return "classification"


def make_regression_teacher(kind: str, seed: int | None) -> Any:
    """A new built-in regression teacher (:mod:`crembo.specs`)."""
    try:
        return specs.make(kind, "teacher", "regression", seed=seed)
    except specs.SpecError:
        raise CLIError(
            f"--teacher {kind!r}: for regression expected {', '.join(REGRESSION_TEACHERS)} or a joblib/pickle "
            "file of a forest or bagging regressor"
        ) from None


def parse_regression_student(spec: str, seed: int | None) -> Any:
    """A regression student from a specification of :mod:`crembo.specs`
    (tree[:DEPTH], linear, ridge[:ALPHA]), or a joblib file of an unfitted
    regressor."""
    return parse_student(spec, seed, task="regression")


def regression_scores(y: ArrayLike, pred: ArrayLike, teacher_pred: ArrayLike | None = None) -> dict[str, float | None]:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    y = np.asarray(y, dtype=np.float64)
    out = {
        "rows": int(len(y)),
        "student_rmse": float(np.sqrt(mean_squared_error(y, pred))),
        "student_mae": float(mean_absolute_error(y, pred)),
        "student_r2": float(r2_score(y, pred)) if len(y) > 1 else None,
    }
    if teacher_pred is not None:
        out["teacher_rmse"] = float(np.sqrt(mean_squared_error(y, teacher_pred)))
        out["teacher_r2"] = float(r2_score(y, teacher_pred)) if len(y) > 1 else None
        # R^2 of the student against the teacher's predictions.
        out["agreement_with_teacher_r2"] = (
            float(r2_score(teacher_pred, pred)) if len(y) > 1 and np.ptp(teacher_pred) > 0 else None
        )
    return out


def _regression_export_text(student, fmt, *, name, feature_names):
    from ..trees import export
    from ..trees import export_regression

    if fmt == "rules":
        return export_regression.export_regression_rules(student, feature_names=feature_names)
    if fmt == "dot":
        return export.export_dot(export_regression.flatten_regression_tree(student), feature_names=feature_names)
    if fmt == "cpp":
        return export_regression.export_regression_cpp(student, name=name, feature_names=feature_names)
    if fmt == "native":
        return export_regression.export_regression_native(student)
    raise CLIError(
        f"--format {fmt}: not available for regression students (available: "
        f"{', '.join(REGRESSION_EXPORT_FORMATS)}; ONNX export converts classifiers only)"
    )


def write_regression_export(
    student: Any,
    fmt: str,
    path: PathLike | None,
    *,
    name: str = "crembo_tree",
    feature_names: Sequence[str] | None = None,
) -> None:
    try:
        text = _regression_export_text(student, fmt, name=name, feature_names=feature_names)
    except (TypeError, ValueError) as exc:
        raise CLIError(f"cannot export as {fmt}: {exc}") from None
    if path is None:
        sys.stdout.write(text)
    else:
        Path(path).write_text(text)


def compress_regression(args: argparse.Namespace, table: Dataset | None = None) -> int:
    """``crembo compress`` for a real-valued label."""
    import joblib
    from sklearn.base import clone
    from sklearn.model_selection import train_test_split

    from ..compress.regression import CREMBORegressor

    formats = [f.strip().lower() for f in args.export.split(",") if f.strip()] if args.export else []
    bad = [f for f in formats if f not in REGRESSION_EXPORT_FORMATS]
    if bad:
        raise CLIError(
            f"--export {','.join(bad)}: not available for regression students (available: "
            f"{', '.join(REGRESSION_EXPORT_FORMATS)})"
        )
    if formats and not names_tree_student(args.student, "regression"):
        raise CLIError(f"--export {args.export}: exports are for tree students, not --student {args.student}")
    if args.plots:
        raise CLIError("--plots: the plots are drawn for classification only")
    if args.cv is not None:
        raise CLIError("--cv: regression chooses its level on one validation split (use --validation-fraction)")
    if args.oracle != "reweight":
        raise CLIError("--oracle single: regression has only the reweighting oracle")
    if not 0.0 <= args.test_fraction < 1.0:
        raise CLIError(f"--test-fraction: expected a number in [0, 1), got {args.test_fraction}")
    if not 0.0 < args.validation_fraction < 1.0:
        raise CLIError(f"--validation-fraction: expected a number in (0, 1), got {args.validation_fraction}")
    if args.n_thresholds is not None and args.n_thresholds < 1:
        raise CLIError(f"--n-thresholds: expected a positive integer, got {args.n_thresholds}")
    stage = _Stage(4 + bool(formats), args.quiet)
    timings = {}
    with stage(f"reading {args.data} (regression)"):
        if table is None:
            table = read_table(args.data, args.label, drop=_split_list(args.drop))
        student_template = parse_regression_student(args.student, args.seed)
        builtin = teacher_name(args.teacher, "regression")
        if builtin is not None or teacher_name(args.teacher) is not None:  # mlp: a classification teacher
            args.teacher = builtin or args.teacher
            teacher, teacher_source = make_regression_teacher(args.teacher, args.seed), args.teacher
        else:
            if not Path(args.teacher).exists():
                raise CLIError(
                    f"--teacher {args.teacher!r}: expected {', '.join(REGRESSION_TEACHERS)} or a joblib/pickle file"
                )
            teacher, teacher_source = _load_pickle(args.teacher, "teacher"), str(args.teacher)
            if _is_fitted(teacher):
                _align_to_model(table, teacher, "teacher")
    timings["read"] = stage.seconds
    X = table.X
    try:
        y = np.asarray(table.y, dtype=np.float64)
    except (TypeError, ValueError):
        raise CLIError(
            f"{args.data}: the label column {args.label!r} is not numeric; regression needs real-valued targets"
        ) from None
    if not np.all(np.isfinite(y)):
        raise CLIError(f"{args.data}: the label column {args.label!r} has missing or non-finite values")
    if np.ptp(y) == 0:
        raise CLIError(
            f"{args.data}: every value of the label column {args.label!r} is {y[0]!r}; there is nothing to compress"
        )
    rows = np.arange(len(y))
    if args.test_fraction > 0:
        fit_rows, test_rows = train_test_split(
            rows, test_size=int(np.ceil(args.test_fraction * len(y))), random_state=args.seed
        )
        fit_rows, test_rows = np.sort(fit_rows), np.sort(test_rows)
    else:
        fit_rows, test_rows = rows, rows[:0]
    X_fit, y_fit = X[fit_rows], y[fit_rows]

    fitted_teacher = args.teacher not in REGRESSION_TEACHERS and _is_fitted(teacher)
    model = CREMBORegressor(
        teacher,
        student_template,
        mode=args.mode,
        validation_fraction=args.validation_fraction,
        n_thresholds=args.n_thresholds,
        n_jobs=args.jobs,
        random_state=args.seed,
    )
    with stage(
        f"{'CREMBO' if args.mode == 'crembo' else 'MEMO'} (regression): {type(student_template).__name__} "
        f"student, teacher {'loaded' if fitted_teacher else 'trained'} ({teacher_source})"
    ):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.filterwarnings("ignore", message=".*feature names.*", category=UserWarning)
            try:
                model.fit(X_fit, y_fit)
            except TypeError as exc:
                raise CLIError(str(exc)) from None
    timings["crembo"] = stage.seconds
    fit_warnings = _summarize_warnings(caught, args.quiet)
    teacher = model.teacher_ if model.teacher_ is not None else clone(teacher)
    student = model.student_
    try:
        student.feature_names_in_ = np.asarray(table.feature_names, dtype=object)
    except AttributeError:
        pass

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    student_path, report_path = out / "student.joblib", out / "report.json"
    with stage(f"scoring and writing {student_path} and {report_path}"):
        joblib.dump(student, student_path)
        scores = {
            "fit": regression_scores(y_fit, _predict(student, X_fit, table.feature_names), _predict(teacher, X_fit))
        }
        if len(test_rows):
            X_te = X[test_rows]
            scores["test"] = regression_scores(
                y[test_rows], _predict(student, X_te, table.feature_names), _predict(teacher, X_te)
            )
    timings["score_and_write"] = stage.seconds
    written = {"student": str(student_path), "report": str(report_path)}
    if formats:
        with stage(f"exports ({', '.join(formats)})"):
            written["exports"] = {}
            for fmt in formats:
                path = out / f"student.{EXPORT_FORMATS[fmt]}"
                write_regression_export(student, fmt, path, feature_names=table.feature_names)
                written["exports"][fmt] = str(path)
        timings["exports"] = stage.seconds
    report = {
        "crembo_version": _version(),
        "task": "regression",
        "command": ["crembo"] + list(args.argv),
        "data": {
            "path": table.path,
            "rows": int(len(y)),
            "features": table.feature_names,
            "label": args.label,
            "fit_rows": int(len(fit_rows)),
            "test_rows": int(len(test_rows)),
            "test_fraction": args.test_fraction,
            "seed": args.seed,
        },
        "teacher": {
            "source": teacher_source,
            "type": type(teacher).__name__,
            "trained": not fitted_teacher,
            "n_hypotheses": model.n_hypotheses_,
        },
        "student": dict(spec=args.student, **_student_summary(student)),
        "search": {
            "mode": args.mode,
            "validation_fraction": args.validation_fraction,
            "n_thresholds": args.n_thresholds,
            "delta": model.delta,
            "memo_level": model.memo_level_,
            "memo_depth": model.memo_depth_,
            "level": model.level_,
            "validation_rmse": model.validation_score_,
            "depth": model.depth_,
            "n_student_fits": model.n_student_fits_,
            "levels_tried": model.trace_,
        },
        "scores": scores,
        "warnings": fit_warnings,
        "timings": {"cli": timings},
        "outputs": written,
    }
    report_path.write_text(json.dumps(_jsonable(report), indent=2) + "\n")
    part = "test" if "test" in scores else "fit"
    s = scores[part]
    memo = "none" if model.memo_level_ is None else f"{model.memo_level_:.4g}"
    print(
        f"crembo compress (regression): level {model.level_:.4g} (MEMO {memo}), depth {model.depth_:.4g}, "
        f"{part} RMSE {s['student_rmse']:.4g}, R^2 {s['student_r2']:.4f} (teacher RMSE {s['teacher_rmse']:.4g}); "
        f"wrote {out}"
    )
    return 0


def evaluate_regression(args: argparse.Namespace, student: Any) -> int:
    """``crembo evaluate`` of a saved regression student."""
    table = read_table(args.data, args.label, drop=_split_list(args.drop))
    _align_to_model(table, student, "student")
    try:
        y = np.asarray(table.y, dtype=np.float64)
    except (TypeError, ValueError):
        raise CLIError(f"{args.data}: the label column {args.label!r} is not numeric") from None
    if not np.all(np.isfinite(y)):
        raise CLIError(f"{args.data}: the label column {args.label!r} has missing or non-finite values")
    teacher = None
    if args.teacher:
        teacher = _load_pickle(args.teacher, "teacher")
        if not _is_fitted(teacher):
            raise CLIError(f"teacher file {args.teacher}: the teacher is not fitted")
        _align_to_model(table, teacher, "teacher")
    pred = _predict(student, table.X, table.feature_names)
    tpred = None if teacher is None else _predict(teacher, table.X)
    scores = regression_scores(y, pred, tpred)
    r2 = "n/a" if scores["student_r2"] is None else f"{scores['student_r2']:.4f}"
    line = (
        f"crembo evaluate (regression): {scores['rows']} rows, RMSE {scores['student_rmse']:.4g}, "
        f"MAE {scores['student_mae']:.4g}, R^2 {r2}"
    )
    if tpred is not None:
        line += f", teacher RMSE {scores['teacher_rmse']:.4g}"
    print(line)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                _jsonable(
                    {"student": args.student, "data": args.data, "label": args.label, "task": "regression", **scores}
                ),
                indent=2,
            )
            + "\n"
        )
    return 0


def export_regression(args: argparse.Namespace, student: Any) -> int:
    """``crembo export`` of a saved regression student."""
    names = getattr(student, "feature_names_in_", None)
    names = None if names is None else [str(s) for s in names]
    write_regression_export(student, args.format, args.output, name=args.name, feature_names=names)
    if args.output:
        print(f"crembo export: wrote {args.output}", file=sys.stderr)
    return 0
