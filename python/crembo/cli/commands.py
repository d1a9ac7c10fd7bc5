"""The ``crembo`` command line.

``crembo demo`` runs the main job on a built-in data set: a random-forest
teacher compressed into depth-4 trees by BM, VT, MEMO and CREMBO, compared by
cross-validated accuracy and by the agreement of students trained on
different folds.

``crembo compress`` does the same job on a user's table (CSV or Parquet) and
writes the student (joblib), a JSON report, plots and exports;
``crembo evaluate`` scores a saved student on a table; ``crembo export``
writes a saved tree student as rules, Graphviz dot, C++ source, the native
evaluator's file or ONNX; ``crembo paper`` runs the paper reproduction.
Errors are one line on stderr and a non-zero exit code, no traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import specs
from ..evaluation.datasets import Dataset, PathLike, read_csv_rows

__all__ = ["main"]


class CLIError(Exception):
    """An error reported as one line on stderr with a non-zero exit code."""


def _demo(args):
    from ..evaluation.datasets import DATASETS, load_dataset
    from ..compress.estimators import CREMBOClassifier
    from ..evaluation.protocol import format_table, generalization, stability

    if args.dataset not in DATASETS:
        raise CLIError(f"unknown data set {args.dataset!r}; choose one of {', '.join(DATASETS)}")
    try:
        data = load_dataset(args.dataset, data_dir=args.data_dir)
    except FileNotFoundError as exc:
        raise CLIError(str(exc)) from None
    X, y = data.X, data.y
    print(f"crembo demo: {data.name}, {X.shape[0]} rows x {X.shape[1]} features, {len(np.unique(y))} classes")
    print(
        "teacher: random forest (100 trees, max depth 12, balanced)\n"
        "students (depth 4, balanced classes): BM and VT use scikit-learn's decision tree, as in the paper; "
        "MEMO and CREMBO run\nwith CREMBOClassifier's defaults: crembo's histogram tree, the threshold chosen "
        "by 5-fold cross-validation,\n3 synthetic (MUNGE) rows per row labelled by the teacher, leaves that "
        "predict the teacher's mean belief\n"
    )

    t0 = time.perf_counter()
    print("[1/3] one CREMBO fit with the defaults on all rows", flush=True)
    one = CREMBOClassifier(random_state=args.seed, verbose=1).fit(X, y)
    print(f"One CREMBO fit on all rows ({time.perf_counter() - t0:.2f} s, {one.n_student_fits_} student fits):")
    print(f"  MEMO's deepest consistent threshold: {one.memo_threshold_}  (student depth {one.memo_depth_})")
    print(
        f"  chosen threshold: {one.threshold_:.4g}  validation accuracy {one.validation_score_:.4f}  "
        f"depth on the transfer set {one.depth_:.4g}\n"
    )

    print(
        f"[2/3] {args.folds}-fold cross-validation x {args.repeats}: teacher, BM, VT, MEMO and CREMBO in every fold",
        flush=True,
    )
    gen = generalization(
        X, y, n_splits=args.folds, n_repeats=args.repeats, random_state=args.seed, n_jobs=args.jobs, progress=True
    )
    print(f"[3/3] stability: the {args.folds} fold students of each method on a fixed 15% test split", flush=True)
    stab = stability(X, y, n_splits=args.folds, random_state=args.seed, n_jobs=args.jobs, progress=True)
    print(
        f"{args.folds}-fold cross-validation x {args.repeats} (accuracy; folds won among the students) "
        f"and stability (agreement of the {args.folds} fold students on a fixed 15% test split):\n"
    )
    print(format_table(gen, stab))
    print(f"\n({gen.seconds + stab.seconds:.1f} s)")
    print(_demo_reading(gen, stab, n_test=int(np.ceil(0.15 * len(y)))))
    return 0


def _demo_reading(gen, stab, n_test):
    """What the demo's table says, read off the numbers (not written in advance)."""
    students = [m for m in gen.summary if m != "teacher"]
    acc = {m: gen.summary[m]["mean"] for m in students}
    agr = {m: stab.summary[m]["agreement"] for m in students}
    best_acc, best_agr = max(students, key=acc.get), max(students, key=agr.get)
    base_acc = max(acc["BM"], acc["VT"])
    base_agr = max(agr["BM"], agr["VT"])
    lines = [
        f"\nReading: the best cross-validated accuracy is {best_acc}'s ({acc[best_acc]:.4f}); the highest "
        f"agreement is {best_agr}'s ({agr[best_agr]:.4f})."
    ]
    d_acc, d_agr = acc["CREMBO"] - base_acc, agr["CREMBO"] - base_agr
    lines.append(
        f"CREMBO against the better of BM and VT: accuracy {d_acc:+.4f}, agreement {d_agr:+.4f}. "
        f"One of the {n_test} held-out rows is {1 / n_test:.4f} of agreement: differences of that size "
        "are noise (--repeats gives a firmer reading)."
    )
    return "\n".join(lines)


# ---------------------------------------------------------------- tables
#: Cells read as missing besides pandas' defaults (empty, NA, NaN, ...):
#: ``?``, as in the UCI files.
MISSING_CELLS = ("?",)


#: What a feature column that is not numeric can do, by default.
NOT_NUMERIC_WHY = "encode it as numbers or leave it out with --drop"


def _not_numeric_error(table: Dataset, name: str, why: str = NOT_NUMERIC_WHY) -> CLIError:
    return _not_numeric(table.path, name, table.samples.get(name), why)


def _not_numeric(path, name: str, sample: object, why: str = NOT_NUMERIC_WHY) -> CLIError:
    return CLIError(f"{path}: feature column {name!r} is not numeric (e.g. {sample!r}); {why}")


def _missing_error(table: Dataset, name: str, why: str = "impute them first") -> CLIError:
    return _missing(table.path, name, table.missing[name], why)


def _missing(path, name: str, count: int, why: str = "impute them first") -> CLIError:
    return CLIError(f"{path}: feature column {name!r} has {count} missing or infinite value(s); {why}")


def require_numeric(table: Dataset) -> None:
    """Raise the first column's error (in column order) when the table has
    categorical columns or missing values: the checks of the numeric
    reader, for models that take neither."""
    for name in table.feature_names:
        if name in table.categorical:
            raise _not_numeric_error(table, name)
        if name in table.missing:
            raise _missing_error(table, name)


def _take(X, rows):
    """Rows of an array or of a DataFrame (positions)."""
    if hasattr(X, "iloc"):
        return X.iloc[rows].reset_index(drop=True)
    return X[rows]


def _parse_cells(values):
    """Labels from CSV text: integers, else numbers, else the strings."""
    for conv in (int, float):
        try:
            return np.array([conv(v) for v in values])
        except ValueError:
            continue
    return np.array(values, dtype=object).astype(str)


def _read_csv_plain(path, sep):
    """Header and text columns of a CSV file (no pandas): crembo's one CSV
    reader, :func:`crembo.evaluation.datasets.read_csv_rows`."""
    try:
        header, body, _ = read_csv_rows(path, sep=sep)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    return header, {name: [r[j] for r in body] for j, name in enumerate(header)}


def read_table(
    path: PathLike,
    label: str,
    *,
    drop: Sequence[str] = (),
    use_pandas: bool | None = None,
    categorical: bool = False,
) -> Dataset:
    """Read a CSV (or TSV) or Parquet file into a :class:`crembo.evaluation.datasets.Dataset`.

    Every column but ``label`` (and ``drop``) is a feature. By default each
    must be numeric without missing values. With ``categorical=True`` (what
    ``crembo compress`` and ``crembo evaluate`` read, pandas needed) a column
    that is not numeric becomes a pandas categorical column and missing cells
    (empty, ``NA``, ``?``, ...) become NaN; whether the models accept them is
    checked afterwards. Infinite values are always refused. Errors are
    :class:`CLIError`.
    """
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        raise CLIError(f"{path}: no such file")
    suffix = p.suffix.lower()
    if suffix not in (".csv", ".tsv", ".txt", ".parquet", ".pq"):
        raise CLIError(f"{path}: unknown table format {suffix or '(no suffix)'}; expected .csv, .tsv or .parquet")
    sep = "\t" if suffix == ".tsv" else ","
    if use_pandas is None:
        try:
            import pandas  # noqa: F401

            use_pandas = True
        except ImportError:
            use_pandas = False
    if suffix in (".parquet", ".pq"):
        if not use_pandas:
            raise CLIError("reading Parquet needs pandas and pyarrow: pip install pandas pyarrow")
        import pandas as pd

        try:
            df = pd.read_parquet(p)
        except ImportError:
            raise CLIError("reading Parquet needs pyarrow (or fastparquet): pip install pyarrow") from None
        except Exception as exc:
            raise CLIError(f"{path}: cannot read as Parquet: {exc}") from None
        columns = {str(c): df[c] for c in df.columns}
        header = list(columns)
    elif use_pandas:
        import pandas as pd

        extra = {"na_values": list(MISSING_CELLS)} if categorical else {}
        try:
            df = pd.read_csv(p, sep=sep, float_precision="round_trip", **extra)  # the exact doubles
        except pd.errors.EmptyDataError:
            raise CLIError(f"{path}: the file is empty") from None
        except Exception as exc:
            raise CLIError(f"{path}: cannot read as CSV: {exc}") from None
        columns = {str(c): df[c] for c in df.columns}
        header = list(columns)
    else:
        header, columns = _read_csv_plain(p, sep)
    if label not in columns:
        shown = ", ".join(header[:12]) + (", ..." if len(header) > 12 else "")
        raise CLIError(f"{path}: no label column {label!r} (columns: {shown})")
    unknown = [c for c in drop if c not in columns]
    if unknown:
        raise CLIError(f"{path}: --drop names columns that are not in the file: {', '.join(unknown)}")
    names = [c for c in header if c != label and c not in drop]
    if not names:
        raise CLIError(f"{path}: no feature columns besides the label {label!r}")
    n = len(columns[label])
    if n < 2:
        raise CLIError(f"{path}: expected at least two rows, got {n}")
    X = np.empty((n, len(names)), dtype=np.float64)
    cats, missing, samples = {}, {}, {}
    for j, name in enumerate(names):
        col = columns[name]
        if use_pandas:
            import pandas as pd

            if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
                sample = next((v for v in col if isinstance(v, str)), col.iloc[0])
                if not categorical:
                    raise _not_numeric(path, name, sample)
                samples[name] = sample
                cats[name] = _categorical_column(col)
                n_missing = int(cats[name].isna().sum())
                if n_missing:
                    missing[name] = n_missing
                X[:, j] = np.nan
                continue
            vals = col.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            vals = np.empty(n)
            nan_cells = ("", "NA", "NaN", "nan") + (MISSING_CELLS if categorical else ())
            for i, v in enumerate(col):
                v = v.strip()
                try:
                    vals[i] = float(v) if v not in nan_cells else np.nan
                except ValueError:
                    why = NOT_NUMERIC_WHY
                    if categorical:
                        why = "categorical columns need pandas (pip install pandas), or leave it out with --drop"
                    raise _not_numeric(path, name, v, why) from None
        n_missing = int(np.sum(~np.isfinite(vals)))
        if n_missing:
            if not categorical or np.isinf(vals).any():
                raise _missing(path, name, n_missing)
            missing[name] = n_missing
        X[:, j] = vals
    ycol = columns[label]
    if use_pandas:
        if ycol.isna().any():
            raise CLIError(f"{path}: label column {label!r} has {int(ycol.isna().sum())} missing value(s)")
        y = ycol.to_numpy()
        if y.dtype == object:
            y = y.astype(str)
    else:
        if any(v.strip() == "" for v in ycol):
            raise CLIError(f"{path}: label column {label!r} has missing values")
        y = _parse_cells([v.strip() for v in ycol])
    if cats:
        import pandas as pd

        X = pd.DataFrame({name: cats[name] if name in cats else X[:, j] for j, name in enumerate(names)})
    return Dataset(
        X,
        y,
        name=p.stem,
        description=f"read from {path}",
        feature_names=names,
        path=str(path),
        categorical=list(cats),
        missing=missing,
        samples=samples,
    )


def _categorical_column(col):
    """A feature column that is not numeric as a pandas categorical column
    (its categories: the dtype's, else the sorted values); missing stays NaN."""
    import pandas as pd

    if not isinstance(col.dtype, pd.CategoricalDtype):
        values = col.astype(object).where(col.notna(), None)
        col = pd.Series(pd.Categorical(values.map(lambda v: v if v is None else str(v))))
    return col.reset_index(drop=True)


# ---------------------------------------------------------------- models
#: The built-in classification teachers (crembo.specs), by canonical name.
TEACHERS = specs.names("teacher", "classification")


def teacher_name(text: str, task: str = "classification") -> str | None:
    """The canonical name of a built-in teacher (``random_forest`` ->
    ``random-forest``), or None when ``text`` names none."""
    try:
        return specs.lookup(text, "teacher", task)[0].name
    except specs.SpecError:
        return None


def make_teacher(kind: str, seed: int | None) -> Any:
    """A new built-in teacher (:mod:`crembo.specs`) seeded with ``seed``."""
    try:
        return specs.make(kind, "teacher", "classification", seed=seed)
    except specs.SpecError as exc:
        raise CLIError(f"--teacher {kind!r}: {exc}") from None


def _load_pickle(path, what):
    from pathlib import Path

    import joblib

    if not Path(path).is_file():
        raise CLIError(f"{what} file {path}: no such file")
    try:
        return joblib.load(path)
    except Exception as exc:
        raise CLIError(
            f"{what} file {path}: cannot be loaded with joblib/pickle ({type(exc).__name__}: {exc})"
        ) from None


def _is_fitted(est):
    from .._validation import is_fitted

    return is_fitted(est)


def _align_to_model(table, model, what):
    """Check a fitted model against the table's features; reorder the columns
    when the model knows its feature names."""
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        names = [str(s) for s in names]
        missing = [s for s in names if s not in table.feature_names]
        if missing:
            raise CLIError(f"the {what} was fitted on columns the table lacks: {', '.join(missing[:8])}")
        extra = [s for s in table.feature_names if s not in names]
        if extra:
            raise CLIError(
                f"the {what} expects {len(names)} features but the table has {len(table.feature_names)} "
                f"(not used by the {what}: {', '.join(extra[:8])}); leave them out with --drop"
            )
        if names != table.feature_names:
            if hasattr(table.X, "iloc"):
                table.X = table.X[names]
            else:
                table.X = table.X[:, [table.feature_names.index(s) for s in names]]
            table.feature_names = names
        return
    d = getattr(model, "n_features_in_", None)
    if d is not None and int(d) != table.X.shape[1]:
        raise CLIError(
            f"the {what} expects {int(d)} features but the table has {table.X.shape[1]} "
            "(every column but the label and --drop ones is a feature)"
        )


def load_teacher(path: PathLike, table: Dataset) -> Any:
    teacher = _load_pickle(path, "teacher")
    if not (hasattr(teacher, "predict_proba") or hasattr(teacher, "estimators_") or callable(teacher)):
        raise CLIError(f"teacher file {path}: holds a {type(teacher).__name__}, which has no predict_proba")
    if _is_fitted(teacher):
        _align_to_model(table, teacher, "teacher")
    return teacher


def _takes_categories(est):
    """Whether an unfitted model accepts pandas categorical columns as they
    are: a histogram model with ``categorical_features="from_dtype"``, an
    encoder or column transformer, or a pipeline that starts with one."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, TargetEncoder

    from ..trees.hist import HistTreeClassifier

    if isinstance(est, Pipeline):
        return bool(est.steps) and _takes_categories(est.steps[0][1])
    if isinstance(est, (ColumnTransformer, OneHotEncoder, OrdinalEncoder, TargetEncoder)):
        return True
    if isinstance(est, (HistGradientBoostingClassifier, HistTreeClassifier)):
        spec = est.categorical_features
        return isinstance(spec, str) and spec == "from_dtype"
    return False


def _teacher_takes_categories(teacher, table):
    """A fitted teacher is asked (on a few rows); an unfitted one is judged by
    its type (:func:`_takes_categories`)."""
    import warnings

    if not _is_fitted(teacher):
        return _takes_categories(teacher)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            (teacher.predict_proba if hasattr(teacher, "predict_proba") else teacher)(
                _take(table.X, np.arange(5)[: len(table.y)])
            )
    except Exception:
        return False
    return True


def check_inputs(table: Dataset, teacher: Any, teacher_name: str, student: Any) -> None:
    """Raise a :class:`CLIError` naming the first feature column (in column
    order) whose categories or missing values the teacher or the student
    cannot take; nothing for a numeric table without missing values.

    The built-in teachers: gradient-boosting takes both; random-forest and
    mlp take numeric columns without missing values, as always. A teacher
    file is asked (fitted) or judged by its type (unfitted); a student by
    scikit-learn's ``allow_nan`` tag (categorical columns reach it as codes).
    """
    if not table.categorical and not table.missing:
        return
    from ..compress.tables import allows_nan
    from ..trees.hist import MAX_BINS

    builtin = teacher_name in TEACHERS
    who = f"the {teacher_name} teacher" if builtin else f"the teacher ({type(teacher).__name__})"
    cat_ok = nan_ok = teacher_name == "gradient-boosting"
    if not builtin:
        cat_ok = not table.categorical or _teacher_takes_categories(teacher, table)
        nan_ok = allows_nan(teacher)
    n = len(table.y)
    for name in table.feature_names:
        if name in table.categorical:
            if not cat_ok:
                raise _not_numeric_error(
                    table,
                    name,
                    f"{who} cannot take categorical columns: use --teacher gradient-boosting (or a teacher file "
                    "that accepts them), or leave it out with --drop",
                )
            k = len(table.X[name].cat.categories)
            if k > MAX_BINS:
                raise CLIError(
                    f"{table.path}: feature column {name!r} is not numeric (e.g. {table.samples.get(name)!r}) and "
                    f"has {k} distinct values; a categorical column may have at most {MAX_BINS} (an id or free "
                    "text?): leave it out with --drop"
                )
        if name not in table.missing:
            continue
        if table.missing[name] >= n:
            raise _missing_error(table, name, "the column has no value at all: leave it out with --drop")
        if not nan_ok:
            raise _missing_error(
                table,
                name,
                f"{who} does not take missing values: impute them first, or use --teacher gradient-boosting",
            )
        if student is not None and not allows_nan(student):
            raise _missing_error(
                table,
                name,
                f"the student ({type(student).__name__}) does not take missing values: impute them first, "
                "or use --student tree",
            )


def _check_student_input(table, student):
    """For ``crembo evaluate``: the saved student must know the categories of
    each categorical column (a tree student saved by ``crembo compress``
    from such a table does) and accept the missing values."""
    from ..compress.tables import allows_nan

    mask = getattr(student, "is_categorical_", None)
    cats = getattr(student, "categories_", None)
    for j, name in enumerate(table.feature_names):
        if name in table.categorical and (mask is None or cats is None or not mask[j] or cats[j] is None):
            raise _not_numeric_error(
                table,
                name,
                "the student was not fitted with it as a categorical column: use the table it was fitted on",
            )
        if name in table.missing and not allows_nan(student):
            raise _missing_error(
                table, name, f"the student ({type(student).__name__}) does not take missing values: impute them first"
            )


def _load_student_file(spec, is_kind, kind):
    """The student template pickled at ``spec``; ``is_kind`` (scikit-learn's
    is_classifier or is_regressor) checks that it is a ``kind``."""
    est = _load_pickle(spec, "student")
    if not is_kind(est):
        raise CLIError(f"student file {spec}: holds a {type(est).__name__}, not a scikit-learn {kind}")
    return est


def names_tree_student(spec: str, task: str = "classification") -> bool | None:
    """Whether a student specification names a tree (the students the exports
    take); None when it names no registered student (a file)."""
    try:
        return specs.lookup(spec, "student", task)[0].tree
    except specs.SpecError:
        return None


def parse_student(spec: str, seed: int | None, task: str = "classification") -> Any:
    """A student template from a specification of :mod:`crembo.specs`
    (tree[:DEPTH] is crembo's histogram tree, as ``student="tree:4"`` in
    Python; sklearn-tree[:DEPTH], logistic[:C], naive-bayes, ...), or a
    joblib file holding an unfitted classifier (regressor for
    ``task="regression"``)."""
    import os

    from sklearn.base import is_classifier, is_regressor

    try:
        found, arg = specs.lookup(spec, "student", task)
    except specs.SpecError:
        found = None
    if found is not None:
        try:
            return found.make(arg, seed)
        except specs.SpecError as exc:
            raise CLIError(f"--student {spec!r}: {exc}") from None
    if os.path.exists(spec):
        if task == "regression":
            return _load_student_file(spec, is_regressor, "regressor")
        return _load_student_file(spec, is_classifier, "classifier")
    what = "regressor" if task == "regression" else "classifier"
    raise CLIError(
        f"--student {spec!r}: {'for regression ' if task == 'regression' else ''}expected "
        f"{specs.usage('student', task)} or a joblib file of an unfitted {what}"
    )


# ---------------------------------------------------------------- helpers
def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return str(obj)


def _predict(model, X, feature_names=None):
    import warnings

    if feature_names is not None and getattr(model, "feature_names_in_", None) is not None:
        try:
            import pandas as pd

            X = pd.DataFrame(X, columns=feature_names)
        except ImportError:
            pass
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*feature names.*", category=UserWarning)
        return np.asarray(model.predict(X))


def _scores(y, student_pred, teacher_pred=None):
    import warnings

    from sklearn.metrics import accuracy_score, balanced_accuracy_score

    with warnings.catch_warnings():  # a few test rows need not hold every predicted class
        warnings.filterwarnings("ignore", message=".*y_pred contains classes not in y_true.*")
        balanced = float(balanced_accuracy_score(y, student_pred))
    out = {
        "rows": int(len(y)),
        "student_accuracy": float(accuracy_score(y, student_pred)),
        "student_balanced_accuracy": balanced,
    }
    if teacher_pred is not None:
        out["teacher_accuracy"] = float(accuracy_score(y, teacher_pred))
        out["agreement_with_teacher"] = float(np.mean(np.asarray(student_pred) == np.asarray(teacher_pred)))
    return out


def _student_summary(student):
    info = {"type": type(student).__name__}
    inner = getattr(student, "estimator", student)
    if hasattr(inner, "get_params"):
        info["params"] = _jsonable(inner.get_params(deep=False))
    if hasattr(inner, "tree_"):
        info["tree"] = {
            "depth": int(inner.get_depth()) if hasattr(inner, "get_depth") else None,
            "leaves": int(inner.get_n_leaves()) if hasattr(inner, "get_n_leaves") else None,
            "nodes": int(inner.tree_.node_count),
        }
    return info


class _Stage:
    """Stage messages on stderr: '[k/N] what ... (seconds)'."""

    def __init__(self, total, quiet):
        self.total, self.quiet, self.k = total, quiet, 0

    def __call__(self, what):
        self.k += 1
        self.t0 = time.perf_counter()
        if not self.quiet:
            print(f"[{self.k}/{self.total}] {what}", file=sys.stderr, flush=True)
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
        return False


EXPORT_FORMATS = {"rules": "rules.txt", "dot": "dot", "cpp": "hpp", "native": "fasttree.txt", "onnx": "onnx"}


def _parse_formats(text):
    formats = [f.strip().lower() for f in text.split(",") if f.strip()]
    bad = [f for f in formats if f not in EXPORT_FORMATS]
    if bad:
        raise CLIError(f"--export: unknown format(s) {', '.join(bad)}; choose from {', '.join(EXPORT_FORMATS)}")
    return formats


def write_export(
    student: Any,
    fmt: str,
    path: PathLike | None,
    *,
    name: str = "crembo_tree",
    feature_names: Sequence[str] | None = None,
    class_names: Sequence[Any] | None = None,
) -> None:
    """Write one export of a tree student; CLIError when it is not a tree."""
    from pathlib import Path

    from ..trees import export

    try:
        if fmt == "rules":
            text = export.export_rules(student, feature_names=feature_names, class_names=class_names)
        elif fmt == "dot":
            text = export.export_dot(student, feature_names=feature_names, class_names=class_names)
        elif fmt == "cpp":
            text = export.export_cpp(student, name=name, feature_names=feature_names)
        elif fmt == "native":
            text = export.export_native(student)
        else:
            if path is None:
                raise CLIError("--format onnx writes a binary file: give -o FILE")
            export.export_onnx(student, path)
            return
    except ImportError as exc:
        raise CLIError(str(exc)) from None
    except (TypeError, ValueError) as exc:  # ValueError: category-subset splits in cpp, native, onnx
        raise CLIError(f"cannot export as {fmt}: {exc}") from None
    if path is None:
        sys.stdout.write(text)
    else:
        Path(path).write_text(text)


# ---------------------------------------------------------------- output folder
# What crembo compress writes in its output folder. A folder holding nothing
# else may be replaced by a new run; one holding other files is refused.
OUTPUT_NAMES = frozenset(
    {"student.joblib", "report.json", "plots"} | {f"student.{ext}" for ext in EXPORT_FORMATS.values()}
)


def prepare_output(path: PathLike) -> tuple[Path, Path]:
    """Check the output folder before any work and create the staging folder
    beside it that the run writes into; returns (target, staging folder).

    The staging folder is renamed into place by :func:`commit_output` once
    everything is written, so a failed or interrupted run leaves the target
    as it was, and a reused folder never mixes in files of an earlier run.
    """
    import os
    import tempfile
    from pathlib import Path

    target = Path(os.path.abspath(path))
    if target.is_symlink():
        target = target.resolve()
    if target.exists():
        if not target.is_dir():
            raise CLIError(f"--out-dir {path}: exists and is not a folder")
        cwd = Path.cwd().resolve()
        if target.resolve() == cwd or target.resolve() in cwd.parents:
            raise CLIError(f"--out-dir {path}: is the current folder or holds it; choose a new folder")
        try:
            foreign = sorted(p.name for p in target.iterdir() if p.name not in OUTPUT_NAMES)
        except OSError as exc:
            raise CLIError(f"--out-dir {path}: cannot be read ({exc.strerror or exc})") from None
        if foreign:
            shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
            raise CLIError(
                f"--out-dir {path}: holds files that crembo compress did not write ({shown}); a new run "
                "replaces the folder as a whole, so choose another folder or empty this one"
            )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    except OSError as exc:
        raise CLIError(f"--out-dir {path}: cannot write there ({exc.strerror or exc})") from None
    return target, staging


def commit_output(staging: Path, target: Path) -> None:
    """Rename the finished staging folder to ``target``. An existing folder
    there is moved aside first and removed only after the new one is in
    place; Ctrl-C is held back meanwhile, so an interrupt leaves either the
    old folder or the complete new one."""
    import os
    import shutil

    old = staging.with_name(staging.name + ".old")
    with _interrupts_held():
        moved = False
        if target.exists():
            os.replace(target, old)
            moved = True
        try:
            os.replace(staging, target)
        except OSError:
            if moved:
                os.replace(old, target)
            raise
        if moved:
            shutil.rmtree(old, ignore_errors=True)


class _interrupts_held:
    """Delay SIGINT (KeyboardInterrupt) to the end of the block; main thread only."""

    def __enter__(self):
        import signal
        import threading

        self.caught, self.previous = [], None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, lambda signum, frame: self.caught.append(signum))
        return self

    def __exit__(self, *exc):
        import signal

        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        if self.caught and exc[0] is None:
            raise KeyboardInterrupt
        return False


# ---------------------------------------------------------------- compress
def _compress(args):
    import shutil

    if args.task != "classification":  # regression: crembo/cli_regression.py
        from .regression import compress_regression, infer_task

        table = read_table(args.data, args.label, drop=_split_list(args.drop), categorical=True)
        if args.task == "regression" or infer_task(table.y) == "regression":
            require_numeric(table)  # the regression CLI takes numeric columns without missing values
            return compress_regression(args, table)
    formats = _parse_formats(args.export) if args.export else []
    if formats and names_tree_student(args.student) is False:
        raise CLIError(f"--export {args.export}: exports are for tree students, not --student {args.student}")
    if "onnx" in formats:
        try:
            import skl2onnx  # noqa: F401
        except ImportError:
            raise CLIError("--export onnx needs skl2onnx: pip install 'crembo[export]'") from None
    if not 0.0 <= args.test_fraction < 1.0:
        raise CLIError(f"--test-fraction: expected a number in [0, 1), got {args.test_fraction}")
    if not 0.0 < args.validation_fraction < 1.0:
        raise CLIError(f"--validation-fraction: expected a number in (0, 1), got {args.validation_fraction}")
    if args.cv is not None and (args.cv == 1 or args.cv < 0):
        raise CLIError(f"--cv: expected 0 (one validation split) or at least 2 folds, got {args.cv}")
    if args.augment is not None and not (0 <= args.augment <= 1000):
        raise CLIError(f"--augment: expected a number of synthetic rows per row in [0, 1000], got {args.augment}")
    if args.n_thresholds is not None and args.n_thresholds < 1:
        raise CLIError(f"--n-thresholds: expected a positive integer, got {args.n_thresholds}")
    if args.plots:
        try:
            import matplotlib

            matplotlib.use("Agg")
        except ImportError:
            raise CLIError("--plots needs matplotlib: pip install 'crembo[plot]'") from None
    target, staging = prepare_output(args.out_dir)  # before any work: a bad folder fails fast
    try:
        summary = _compress_into(args, formats, staging)
        commit_output(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # left only by a failed or interrupted run
    print(summary)
    return 0


def _compress_into(args, formats, staging):
    """The work of ``crembo compress``: every file goes into ``staging``;
    the report names them where they will be (in ``--out-dir``)."""
    import json
    import warnings
    from pathlib import Path

    import joblib
    from sklearn.base import clone
    from sklearn.model_selection import train_test_split

    from ..compress.estimators import CREMBOClassifier

    stage = _Stage(4 + bool(args.plots) + bool(formats), args.quiet)
    timings = {}
    args.teacher = teacher_name(args.teacher) or args.teacher  # random_forest -> random-forest
    with stage(f"reading {args.data}"):
        table = read_table(args.data, args.label, drop=_split_list(args.drop), categorical=True)
        student_template = parse_student(args.student, args.seed)
        if args.teacher in TEACHERS:
            teacher, teacher_source = make_teacher(args.teacher, args.seed), args.teacher
        else:
            if not Path(args.teacher).exists() and "/" not in args.teacher and "." not in args.teacher:
                raise CLIError(f"--teacher {args.teacher!r}: expected {', '.join(TEACHERS)} or a joblib/pickle file")
            teacher, teacher_source = load_teacher(args.teacher, table), str(args.teacher)
        check_inputs(table, teacher, args.teacher, student_template)  # before any fit
    timings["read"] = stage.seconds
    X, y = table.X, table.y
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise CLIError(
            f"{args.data}: the label column {args.label!r} holds one class ({classes[0]!r}); "
            "there is nothing to compress"
        )
    rows = np.arange(len(y))
    if args.test_fraction > 0:
        n_test = int(np.ceil(args.test_fraction * len(y)))
        stratify = y if counts.min() >= 2 and n_test >= len(classes) else None
        try:
            fit_rows, test_rows = train_test_split(rows, test_size=n_test, random_state=args.seed, stratify=stratify)
        except ValueError as exc:
            raise CLIError(f"--test-fraction {args.test_fraction}: {exc}") from None
        fit_rows, test_rows = np.sort(fit_rows), np.sort(test_rows)
    else:
        fit_rows, test_rows = rows, rows[:0]
    X_fit, y_fit = _take(X, fit_rows), y[fit_rows]
    absent = np.setdiff1d(classes, y_fit)
    if absent.size:
        # A tiny table: holding rows out for the test left a class with no
        # row to fit on (the teacher could not learn it).
        raise CLIError(
            f"{args.data}: {len(y)} rows are too few: after holding out {len(test_rows)} test row(s), "
            f"no row of class(es) {absent[:5].tolist()} is left to fit on (class counts: "
            f"{dict(zip(classes.tolist(), counts.tolist()))}); add rows, or use --test-fraction 0"
        )

    fitted_teacher = args.teacher not in TEACHERS and _is_fitted(teacher)
    with stage(
        f"teacher: {'loaded from ' + teacher_source if fitted_teacher else 'training ' + teacher_source} "
        f"on {len(fit_rows)} rows"
    ):
        if not fitted_teacher:
            teacher = clone(teacher).fit(X_fit, y_fit)
    timings["teacher_fit"] = 0.0 if fitted_teacher else stage.seconds
    teacher_classes = getattr(teacher, "classes_", None)
    if teacher_classes is not None:
        unknown = np.setdiff1d(classes, np.asarray(teacher_classes))
        if unknown.size:
            raise CLIError(
                f"the teacher does not know the label(s) {unknown[:5].tolist()} of column "
                f"{args.label!r}; its classes are {np.asarray(teacher_classes)[:10].tolist()}"
            )

    model = CREMBOClassifier(
        teacher,
        student_template,
        mode=args.mode,
        oracle=args.oracle,
        validation_fraction=args.validation_fraction,
        cv="auto" if args.cv is None else (None if args.cv == 0 else args.cv),
        n_thresholds=args.n_thresholds,
        augment="auto" if args.augment is None else args.augment,
        n_jobs=args.jobs,
        random_state=args.seed,
        verbose=0 if args.quiet else 1,
    )
    with stage(
        f"{'CREMBO' if args.mode == 'crembo' else 'MEMO'}: {type(student_template).__name__} student, "
        f"search over thresholds"
    ):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.filterwarnings("ignore", message=".*feature names.*", category=UserWarning)
            model.fit(X_fit, y_fit)
    timings["crembo"] = stage.seconds
    fit_warnings = _summarize_warnings(caught, args.quiet)
    student = model.student_
    if table.categorical:
        # The student saw the categorical columns as codes; the saved copy
        # carries their categories, so it reads the table's columns itself
        # (crembo evaluate) and its exports show category names.
        import copy

        student = copy.copy(student)
        if getattr(student, "is_categorical_", None) is not None:
            student.categories_ = list(model.categories_)
    try:
        student.feature_names_in_ = np.asarray(table.feature_names, dtype=object)
    except AttributeError:
        pass

    out = Path(args.out_dir)  # as the user named it, for messages and the report
    student_path = out / "student.joblib"
    report_path = out / "report.json"
    with stage(f"scoring and writing {student_path} and {report_path}"):
        joblib.dump(student, staging / student_path.name)
        scores = {"fit": _scores(y_fit, _predict(student, X_fit, table.feature_names), _predict(teacher, X_fit))}
        if len(test_rows):
            X_te = _take(X, test_rows)
            scores["test"] = _scores(
                y[test_rows], _predict(student, X_te, table.feature_names), _predict(teacher, X_te)
            )
    timings["score_and_write"] = stage.seconds
    written = {"student": str(student_path), "report": str(report_path)}

    if args.plots:
        with stage(f"plots in {out / 'plots'}"), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*feature names.*", category=UserWarning)
            plots = _compress_plots(
                model, teacher, student_template, X_fit, y_fit, staging / "plots", table.feature_names
            )
            written["plots"] = [str(out / "plots" / Path(p).name) for p in plots]
        timings["plots"] = stage.seconds
    if formats:
        with stage(f"exports ({', '.join(formats)})"):
            written["exports"] = {}
            for fmt in formats:
                name = f"student.{EXPORT_FORMATS[fmt]}"
                write_export(student, fmt, staging / name, feature_names=table.feature_names)
                written["exports"][fmt] = str(out / name)
        timings["exports"] = stage.seconds

    report = {
        "crembo_version": _version(),
        "command": ["crembo"] + list(args.argv),
        "data": {
            "path": table.path,
            "rows": int(len(y)),
            "features": table.feature_names,
            "categorical": table.categorical,
            "missing": table.missing,
            "label": args.label,
            "classes": classes,
            "class_counts": counts,
            "fit_rows": int(len(fit_rows)),
            "test_rows": int(len(test_rows)),
            "test_fraction": args.test_fraction,
            "seed": args.seed,
        },
        "teacher": {"source": teacher_source, "type": type(teacher).__name__, "trained": not fitted_teacher},
        "student": dict(spec=args.student, **_student_summary(student)),
        "search": {
            "mode": args.mode,
            "oracle": args.oracle,
            "validation_fraction": args.validation_fraction,
            "cv": args.cv,
            "n_thresholds": args.n_thresholds,
            "memo_threshold": model.memo_threshold_,
            "memo_depth": model.memo_depth_,
            "threshold": model.threshold_,
            "validation_score": model.validation_score_,
            "depth": model.depth_,
            "n_student_fits": model.n_student_fits_,
            "thresholds_tried": model.trace_,
        },
        "scores": scores,
        "warnings": fit_warnings,
        "timings": {"cli": timings, "crembo": model.timings_},
        "outputs": written,
    }
    (staging / report_path.name).write_text(json.dumps(_jsonable(report), indent=2) + "\n")
    s = scores.get("test", scores["fit"])
    part = "test" if "test" in scores else "fit"
    return (
        f"crembo compress: threshold {model.threshold_:.4g} (MEMO {_fmt(model.memo_threshold_)}), depth "
        f"{model.depth_:.4g}, {part} accuracy {s['student_accuracy']:.4f} (teacher {s['teacher_accuracy']:.4f}), "
        f"agreement with the teacher {s['agreement_with_teacher']:.4f}; wrote {out}"
    )


def _summarize_warnings(caught, quiet):
    """One stderr line per kind of warning raised while fitting (students
    that warn at every fit, e.g. ConvergenceWarning, would flood the screen)."""
    kinds = {}
    for w in caught:
        first = str(w.message).strip().splitlines()[0] if str(w.message).strip() else ""
        key = (w.category.__name__, first)
        kinds[key] = kinds.get(key, 0) + 1
    out = []
    for (cat, msg), count in kinds.items():
        out.append({"category": cat, "message": msg, "count": count})
        if not quiet:
            print(f"note: {count} x {cat}: {msg}", file=sys.stderr)
    return out


def _fmt(v):
    return "none" if v is None else f"{v:.4g}"


def _version():
    try:
        from .. import __version__

        return __version__
    except ImportError:  # pragma: no cover
        return None


def _split_list(text):
    return [s.strip() for s in text.split(",") if s.strip()] if text else []


def _compress_plots(model, teacher, template, X, y, folder, feature_names):
    import matplotlib.pyplot as plt
    from sklearn.base import clone

    from ..evaluation import plots
    from ..compress.estimators import LabelDistiller
    from ..compress.teachers import teacher_beliefs

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    P = teacher_beliefs(teacher, X, n_classes=len(model.classes_))
    vt = LabelDistiller(teacher, template, random_state=model.random_state).fit(X, y)
    preds = {"CREMBO": model.predict(X), "VT (teacher's labels)": vt.predict(X)}
    try:
        preds["BM (true labels)"] = clone(template).fit(X, y).predict(X)
    except Exception:  # a template that cannot fit the raw labels: leave BM out
        pass
    for name, draw in (
        ("depth_profile", lambda ax: plots.plot_depth_profile(P, preds, classes=model.classes_, ax=ax)),
        ("threshold_search", lambda ax: plots.plot_threshold_search(model, ax=ax)),
    ):
        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        draw(ax)
        fig.tight_layout()
        fig.savefig(folder / f"{name}.png", dpi=120)
        plt.close(fig)
        written.append(str(folder / f"{name}.png"))
    try:
        from ..trees.representation import flatten_tree

        flatten_tree(model.student_)
    except (TypeError, ValueError):
        return written  # not a tree: nothing to draw
    ax = plots.plot_tree(model.student_, feature_names=feature_names)
    fig = ax.figure
    fig.tight_layout()
    fig.savefig(folder / "tree.png", dpi=120)
    plt.close(fig)
    written.append(str(folder / "tree.png"))
    return written


# ---------------------------------------------------------------- evaluate
def _evaluate(args):
    import json
    from pathlib import Path

    student = _load_pickle(args.student, "student")
    if not hasattr(student, "predict"):
        raise CLIError(f"student file {args.student}: holds a {type(student).__name__}, which cannot predict")
    from ..trees.export_regression import is_regression_model

    if is_regression_model(student):  # crembo/cli_regression.py
        from .regression import evaluate_regression

        return evaluate_regression(args, student)
    table = read_table(args.data, args.label, drop=_split_list(args.drop), categorical=True)
    _align_to_model(table, student, "student")
    _check_student_input(table, student)
    teacher = None
    if args.teacher:
        teacher = load_teacher(args.teacher, table)
        if not _is_fitted(teacher):
            raise CLIError(f"teacher file {args.teacher}: the teacher is not fitted")
        check_inputs(table, teacher, str(args.teacher), None)
    pred = _predict(student, table.X, table.feature_names)
    tpred = None if teacher is None else _predict(teacher, table.X)
    scores = _scores(table.y, pred, tpred)
    known = getattr(student, "classes_", None)
    if known is not None:
        unseen = np.setdiff1d(np.unique(table.y), np.asarray(known))
        scores["labels_unknown_to_student"] = unseen.tolist()
    line = (
        f"crembo evaluate: {scores['rows']} rows, accuracy {scores['student_accuracy']:.4f}, "
        f"balanced accuracy {scores['student_balanced_accuracy']:.4f}"
    )
    if tpred is not None:
        line += (
            f", teacher accuracy {scores['teacher_accuracy']:.4f}, agreement with the teacher "
            f"{scores['agreement_with_teacher']:.4f}"
        )
    print(line)
    if args.json:
        Path(args.json).write_text(
            json.dumps(_jsonable({"student": args.student, "data": args.data, "label": args.label, **scores}), indent=2)
            + "\n"
        )
    return 0


# ---------------------------------------------------------------- export
def _export(args):
    student = _load_pickle(args.student, "student")
    from ..trees.export_regression import is_regression_model

    if is_regression_model(student):  # crembo/cli_regression.py
        from .regression import export_regression

        return export_regression(args, student)
    names = getattr(student, "feature_names_in_", None)
    names = None if names is None else [str(s) for s in names]
    write_export(student, args.format, args.output, name=args.name, feature_names=names)
    if args.output:
        print(f"crembo export: wrote {args.output}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------- paper
def _paper(args):
    try:
        from ..evaluation import paper
    except ImportError as exc:  # an installation without it (packagers may leave the bench out)
        raise CLIError(f"the paper reproduction is not available in this installation ({exc})") from None
    return paper.main(list(args.paper_args))


def _specs_epilog() -> str:
    """The registry of specifications (crembo.specs) for ``compress --help``."""
    parts = []
    for role in specs.ROLES:
        for task in specs.TASKS:
            parts.append(f"{role}s for {task} (--{role}):\n{specs.describe(role, task)}")
    return (
        "\n\n".join(parts) + "\n\nNames are case-insensitive; '_' and '-' are the same "
        "(random_forest is random-forest). The students for classification are also the estimators' "
        'student= specifications (student="tree:4").'
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crembo", description="Robust model compression with deep hypotheses.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="compress a random forest on a built-in data set and compare methods")
    demo.add_argument(
        "--dataset",
        default="breast_cancer",
        help="breast_cancer, iris (built in), heart, dermatology, arrhythmia (UCI files)",
    )
    demo.add_argument(
        "--data-dir", default=None, help="folder of the UCI CSV files (default: $CREMBO_DATA_DIR, else ~/crembo_data)"
    )
    demo.add_argument("--folds", type=int, default=10)
    demo.add_argument("--repeats", type=int, default=1)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--jobs", type=int, default=None, help="parallel folds (default: 1)")
    demo.set_defaults(func=_demo)
    c = sub.add_parser(
        "compress",
        help="compress a teacher into a small student on a table (CSV or Parquet)",
        description="Compress a teacher into a small student with CREMBO; write the student "
        "(joblib), a JSON report, and optionally plots and exports.",
        epilog=_specs_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    c.add_argument("data", help="table: .csv, .tsv or .parquet, one row per example")
    c.add_argument("--label", required=True, help="name of the label column")
    c.add_argument(
        "--teacher",
        default="random-forest",
        help=f"{', '.join(TEACHERS)} (default random-forest; for regression "
        f"{', '.join(specs.names('teacher', 'regression'))}), or a joblib/pickle file of a (fitted) model; "
        "see the list below",
    )
    c.add_argument(
        "--student",
        default="tree:4",
        help=f"{specs.usage('student')} (default tree:4: crembo's histogram tree, as in Python), or a joblib "
        "file of an unfitted classifier (regressor); see the list below",
    )
    c.add_argument(
        "--task",
        choices=("auto", "classification", "regression"),
        default="auto",
        help="auto (default): regression when the label is a float column with more than 20 distinct "
        "values (CREMBORegressor, docs/regression.md)",
    )
    c.add_argument("--mode", choices=("crembo", "memo"), default="crembo")
    c.add_argument("--oracle", choices=("reweight", "single"), default="reweight")
    c.add_argument("--n-thresholds", type=int, default=32, help="sweep budget (default 32)")
    c.add_argument("--validation-fraction", type=float, default=0.15)
    c.add_argument(
        "--cv",
        type=int,
        default=None,
        help="choose the threshold by this many folds of cross-validation, then fit the student on all "
        "fitting rows; 0: one validation split of --validation-fraction instead (default: "
        "CREMBOClassifier's, 5 folds for tree students)",
    )
    c.add_argument(
        "--augment",
        type=float,
        default=None,
        help="synthetic rows (MUNGE) per transfer row, labelled by the teacher (default: "
        "CREMBOClassifier's, 3; 0: none)",
    )
    c.add_argument(
        "--test-fraction",
        type=float,
        default=0.2,
        help="rows held out to report test accuracy and agreement (default 0.2; 0: none)",
    )
    c.add_argument("--drop", default="", help="comma-separated columns that are not features (ids, ...)")
    c.add_argument("-o", "--out-dir", default="crembo_out", help="output folder (default crembo_out)")
    c.add_argument("--plots", action="store_true", help="write depth-profile, threshold-search and tree plots")
    c.add_argument(
        "--export", default="", help="comma-separated exports of a tree student: rules, dot, cpp, native, onnx"
    )
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--jobs", type=int, default=None, help="threads for the sweep's fits")
    c.add_argument("-q", "--quiet", action="store_true", help="no progress bar or stage messages")
    c.set_defaults(func=_compress)

    e = sub.add_parser("evaluate", help="score a saved student on a table")
    e.add_argument("student", help="student file written by crembo compress (joblib)")
    e.add_argument("data", help="table: .csv, .tsv or .parquet")
    e.add_argument("--label", required=True, help="name of the label column")
    e.add_argument("--teacher", default=None, help="joblib/pickle file of a fitted teacher: report agreement")
    e.add_argument("--drop", default="", help="comma-separated columns that are not features")
    e.add_argument("--json", default=None, help="also write the scores to this JSON file")
    e.set_defaults(func=_evaluate)

    x = sub.add_parser("export", help="export a saved tree student: rules, Graphviz dot, C++, native, ONNX")
    x.add_argument("student", help="student file written by crembo compress (joblib)")
    x.add_argument("--format", required=True, choices=tuple(EXPORT_FORMATS))
    x.add_argument("-o", "--output", default=None, help="output file (default: standard output; required for onnx)")
    x.add_argument("--name", default="crembo_tree", help="C++ namespace of --format cpp (default crembo_tree)")
    x.set_defaults(func=_export)

    p = sub.add_parser("paper", help="run the paper reproduction benchmark (crembo paper --help)", add_help=False)
    p.set_defaults(func=_paper, paper_args=[])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = [str(a) for a in (sys.argv[1:] if argv is None else argv)]
    # `crembo paper ARGS` hands ARGS, untouched and in order, to crembo.evaluation.paper.
    k = 0
    while k < len(argv) and argv[k] in ("-v", "--verbose"):
        k += 1
    if k < len(argv) and argv[k] == "paper":
        args = parser.parse_args(argv[: k + 1])
        args.paper_args = argv[k + 1 :]
    else:
        args = parser.parse_args(argv)
    args.argv = argv
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s")
    try:
        return args.func(args)
    except CLIError as exc:
        print(f"crembo: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("crembo: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one line, no traceback (CREMBO_DEBUG=1 shows it)
        import os

        if os.environ.get("CREMBO_DEBUG"):
            raise
        msg = " ".join(str(exc).split()) or type(exc).__name__
        print(f"crembo: error: {msg}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
