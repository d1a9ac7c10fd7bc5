"""Data sets of the reference experimental protocol.

Five tabular classification data sets, as used by the CREMBO paper's tabular
experiments:

========================  =====  ========  =======  ==========================
name                      rows   features  classes  source
========================  =====  ========  =======  ==========================
``"heart"``               303    13        5        UCI (Cleveland), CSV file
``"dermatology"``         366    34        6        UCI, CSV file
``"arrhythmia"``          452    279       13       UCI, CSV file
``"breast_cancer"``       569    30        2        scikit-learn
``"iris"``                150    4         3        scikit-learn
========================  =====  ========  =======  ==========================

The three UCI data sets are read from CSV files that are *not* shipped with
the package. The folder holding them (crembo's data home, found as
scikit-learn finds its own) is, in order of preference:

1. the ``data_dir`` argument of the loader (``--data-dir`` in the CLI);
2. the environment variable ``CREMBO_DATA_DIR``;
3. the default ``~/crembo_data``.

In a checkout whose data sit next to the repository, set
``CREMBO_DATA_DIR=../shared/data`` (the test suite and CI do so).

Preprocessing follows the paper: missing values (written ``?``) are replaced
by the mean of their column, and labels are mapped to ``0 .. C-1`` (for
arrhythmia, the classes present in the file, in sorted order).

Every loader returns a :class:`Dataset`; it unpacks as ``X, y = load_heart()``.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

import numpy as np

if TYPE_CHECKING:
    import pandas

__all__ = [
    "DATASETS",
    "DATA_DIR_ENV",
    "DEFAULT_DATA_DIR",
    "Dataset",
    "find_data_dir",
    "load_arrhythmia",
    "load_breast_cancer",
    "load_dataset",
    "load_dermatology",
    "load_heart",
    "heart_table",
    "load_iris",
    "read_csv_rows",
]

#: Name of the environment variable that points at the folder of CSV files.
DATA_DIR_ENV = "CREMBO_DATA_DIR"

#: The names accepted by :func:`load_dataset`.
DATASETS = ("heart", "dermatology", "arrhythmia", "breast_cancer", "iris")

PathLike = Union[str, "os.PathLike[str]"]

_HEART_FILE = "heart_cleveland.csv"
_DERMATOLOGY_FILE = "dermatology.csv"
_ARRHYTHMIA_FILE = "arrhythmia.csv"

_HEART_CLASSES = [
    "no disease",
    "disease (severity 1)",
    "disease (severity 2)",
    "disease (severity 3)",
    "disease (severity 4)",
]

_DERMATOLOGY_CLASSES = [
    "psoriasis",
    "seborrheic dermatitis",
    "lichen planus",
    "pityriasis rosea",
    "chronic dermatitis",
    "pityriasis rubra pilaris",
]

# Class codes 1..16 of the UCI arrhythmia data set.
_ARRHYTHMIA_CLASSES = {
    1: "normal",
    2: "ischemic changes (coronary artery disease)",
    3: "old anterior myocardial infarction",
    4: "old inferior myocardial infarction",
    5: "sinus tachycardia",
    6: "sinus bradycardia",
    7: "ventricular premature contraction (PVC)",
    8: "supraventricular premature contraction",
    9: "left bundle branch block",
    10: "right bundle branch block",
    11: "1st degree atrioventricular block",
    12: "2nd degree atrioventricular block",
    13: "3rd degree atrioventricular block",
    14: "left ventricular hypertrophy",
    15: "atrial fibrillation or flutter",
    16: "others",
}


@dataclass
class Dataset:
    """A labelled table: a bundled data set, or a file read by the command line.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_features) or pandas DataFrame
        Features. The bundled data sets: float64, without missing values. A
        table read from a file: float64 (NaN marks a missing cell), or a
        DataFrame when some columns are categorical.
    y : ndarray of shape (n_samples,)
        Labels. The bundled data sets: int64 in ``0 .. n_classes - 1``; a
        table read from a file: its label column's values.
    name : str
        Short name (one of :data:`DATASETS`, or the file's stem).
    description : str
        One-paragraph description: origin and preprocessing.
    feature_names : list of str or None, default=None
        Column names, when the source has them.
    class_names : list of str or None, default=None
        ``class_names[k]`` describes label ``k``.
    path : str or None, default=None
        The file the table was read from.
    categorical : list of str, default=[]
        The feature columns that are categorical (pandas categorical dtype).
    missing : dict of str to int, default={}
        The count of missing cells of each feature column that has any.
    samples : dict of str to object, default={}
        A value of each categorical column (for messages).

    Notes
    -----
    Iterating over a ``Dataset`` yields ``X`` then ``y``, so
    ``X, y = load_heart()`` works.
    """

    X: Any
    y: np.ndarray
    name: str
    description: str
    feature_names: Optional[List[str]] = None
    class_names: Optional[List[str]] = None
    path: Optional[str] = None
    categorical: List[str] = field(default_factory=list)
    missing: Dict[str, int] = field(default_factory=dict)
    samples: Dict[str, Any] = field(default_factory=dict)

    def __iter__(self) -> Iterator[np.ndarray]:
        yield self.X
        yield self.y

    @property
    def n_samples(self) -> int:
        """Number of rows of ``X``."""
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        """Number of columns of ``X``."""
        return int(self.X.shape[1])

    @property
    def n_classes(self) -> int:
        """Number of classes: ``len(class_names)`` when given, else ``max(y) +
        1`` for integer labels, else the number of distinct labels."""
        if self.class_names is not None:
            return len(self.class_names)
        if not self.y.size:
            return 0
        if self.y.dtype.kind in "iu":
            return int(self.y.max()) + 1
        return int(np.unique(self.y).size)

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, n_samples={self.n_samples}, "
            f"n_features={self.n_features}, n_classes={self.n_classes})"
        )


# --------------------------------------------------------------- locating data
#: The folder used when neither ``data_dir`` nor the environment variable
#: names one (``~`` is the user's home folder), as scikit-learn's data home
#: defaults to ``~/scikit_learn_data``.
DEFAULT_DATA_DIR = "~/crembo_data"


def find_data_dir(data_dir: Optional[PathLike] = None) -> Path:
    """The folder the UCI CSV files are read from (crembo's data home).

    Found as scikit-learn finds its data home: the argument, then the
    environment variable, then a fixed default. Nothing is searched for, and
    the folder is not checked here.

    Parameters
    ----------
    data_dir : str or path-like, default=None
        Explicit folder; returned as given (``~`` expanded).

    Returns
    -------
    pathlib.Path
        ``data_dir`` when given; else the value of ``CREMBO_DATA_DIR``
        (:data:`DATA_DIR_ENV`) when set and non-empty; else
        :data:`DEFAULT_DATA_DIR`, ``~/crembo_data``.
    """
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get(DATA_DIR_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    return Path(DEFAULT_DATA_DIR).expanduser()


def _data_file(filename: str, data_dir: Optional[PathLike]) -> Path:
    env = os.environ.get(DATA_DIR_ENV, "").strip()
    if data_dir is not None:
        source = "the data_dir argument"
    elif env:
        source = f"the {DATA_DIR_ENV} environment variable"
    else:
        source = f"the default location {DEFAULT_DATA_DIR}, as neither data_dir nor {DATA_DIR_ENV} was given"
    folder = find_data_dir(data_dir)
    path = folder / filename
    if not path.is_file():
        raise FileNotFoundError(
            f"data file {filename!r} not found: {str(path)!r} does not exist "
            f"(folder taken from {source}). Point the loader at the folder "
            f"holding {filename!r} with data_dir=... or by setting the "
            f"{DATA_DIR_ENV} environment variable."
        )
    return path


# ------------------------------------------------------------------- parsing
def _parse_value(text: str) -> float:
    text = text.strip()
    if text in ("", "?"):
        return np.nan
    return float(text)


def read_csv_rows(
    path: PathLike, *, sep: str = ",", header: bool = True, skip_blank: bool = False
) -> Tuple[Optional[List[str]], List[List[str]], List[int]]:
    """The cells of a CSV (or, with ``sep="\\t"``, TSV) file as text.

    The one CSV reader of crembo without pandas: the bundled data sets and
    the command line's plain reader both use it.

    Parameters
    ----------
    path : str or path-like
    sep : str, default=","
        The field delimiter.
    header : bool, default=True
        The first row holds the column names.
    skip_blank : bool, default=False
        Also skip the rows whose cells are all blank (else they are rows of
        empty cells).

    Returns
    -------
    names : list of str or None
        The header's names as written (None when ``header=False``).
    rows : list of list of str
        The data rows; empty lines are skipped (and blank rows, with
        ``skip_blank``).
    lines : list of int
        The file line of each row (for messages).

    Raises
    ------
    ValueError
        An empty file, or a row whose field count differs from the header's
        (or, without header, the first row's).
    """
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter=sep)
        names = None
        if header:
            try:
                names = next(reader)
            except StopIteration:
                raise ValueError(f"{path}: the file is empty") from None
        rows, lines = [], []
        width = len(names) if names is not None else None
        for lineno, row in enumerate(reader, start=2 if header else 1):
            if not row or (skip_blank and all(not s.strip() for s in row)):
                continue
            if width is None:
                width = len(row)
            if len(row) != width:
                what = "the header has" if header else "the first row has"
                raise ValueError(f"{path}: line {lineno} has {len(row)} fields, {what} {width}")
            rows.append(row)
            lines.append(lineno)
    if names is None and not rows:
        raise ValueError(f"{path}: the file is empty")
    return names, rows, lines


def _read_csv(path: Path, header: bool):
    """Rows of a numeric CSV file as a float64 matrix (``?`` -> NaN)."""
    names, rows, lines = read_csv_rows(path, header=header, skip_blank=True)
    names = None if names is None else [s.strip() for s in names]
    values = []
    for row, lineno in zip(rows, lines):
        try:
            values.append([_parse_value(s) for s in row])
        except ValueError as exc:
            raise ValueError(f"{path}, line {lineno}: {exc}") from None
    if not values:
        raise ValueError(f"{path}: no data rows")
    return np.asarray(values, dtype=np.float64), names


def _impute_column_means(X: np.ndarray) -> np.ndarray:
    """Replace NaN by the mean of the column's observed values (0 if none)."""
    X = np.array(X, dtype=np.float64, copy=True)
    missing = np.isnan(X)
    if missing.any():
        observed = np.where(missing, 0.0, X)
        counts = (~missing).sum(axis=0)
        means = np.divide(observed.sum(axis=0), counts, out=np.zeros(X.shape[1]), where=counts > 0)
        rows, cols = np.nonzero(missing)
        X[rows, cols] = means[cols]
    return X


def _split_labels(data: np.ndarray, path: Path):
    X, raw = data[:, :-1], data[:, -1]
    if np.isnan(raw).any():
        raise ValueError(f"{str(path)!r}: missing values in the label column")
    if not np.all(raw == np.round(raw)):
        raise ValueError(f"{str(path)!r}: non-integer values in the label column")
    return _impute_column_means(X), raw.astype(np.int64)


def _read_labelled(file: str, data_dir: Optional[PathLike], *, header: bool, labels: Optional[Tuple[int, int]] = None):
    """A UCI file's features (missing values imputed) and integer labels,
    with the labels checked against the inclusive range ``labels``."""
    path = _data_file(file, data_dir)
    data, names = _read_csv(path, header=header)
    X, y = _split_labels(data, path)
    if labels is not None and (y.min() < labels[0] or y.max() > labels[1]):
        raise ValueError(f"{str(path)!r}: expected labels {labels[0]}..{labels[1]}, got {y.min()}..{y.max()}")
    return X, y, names


# -------------------------------------------------------------------- loaders
def load_heart(data_dir: Optional[PathLike] = None) -> Dataset:
    """Heart disease (Cleveland), 303 x 13, 5 classes.

    Parameters
    ----------
    data_dir : str or path-like, default=None
        Folder holding ``heart_cleveland.csv``; see :func:`find_data_dir`.

    Returns
    -------
    Dataset
        ``X`` of shape (303, 13), ``y`` of shape (303,) with labels 0..4
        (0 = no disease; counts 164/55/36/35/13). The 6 missing values are
        imputed by their column mean.

    Raises
    ------
    FileNotFoundError
        When the CSV file is not in the folder.
    """
    X, y, names = _read_labelled(_HEART_FILE, data_dir, header=True, labels=(0, 4))
    return Dataset(
        X=X,
        y=y,
        name="heart",
        description=(
            "UCI Heart Disease (Cleveland clinic): 303 patients, 13 clinical "
            "features, target 0 (no disease) to 4. Missing values ('?') "
            "imputed by the column mean."
        ),
        feature_names=names[:-1],
        class_names=list(_HEART_CLASSES),
    )


#: Heart's categorical columns: code -> name, as the UCI documentation gives them.
HEART_CATEGORIES = {
    "cp": {1: "typical angina", 2: "atypical angina", 3: "non-anginal pain", 4: "asymptomatic"},
    "slope": {1: "upsloping", 2: "flat", 3: "downsloping"},
    "thal": {3: "normal", 6: "fixed defect", 7: "reversible defect"},
}


def heart_table(data_dir: Optional[PathLike] = None) -> Tuple["pandas.DataFrame", np.ndarray]:
    """Heart (Cleveland) as published: a pandas DataFrame with missing
    values left missing (``?`` becomes NaN, nothing imputed) and chest pain
    type (``cp``), ``slope`` and ``thal`` as categorical columns whose
    categories are their documented names; and the labels 0..4.

    Returns
    -------
    (X, y) : (pandas.DataFrame of shape (303, 13), ndarray of shape (303,))
    """
    import pandas as pd

    path = _data_file(_HEART_FILE, data_dir)
    data, names = _read_csv(path, header=True)
    X = pd.DataFrame(data[:, :-1], columns=names[:-1])
    y = data[:, -1].astype(np.int64)
    for col, labels in HEART_CATEGORIES.items():
        codes = X[col]
        X[col] = pd.Categorical(codes.map(labels), categories=list(labels.values()))
    return X, y


def load_dermatology(data_dir: Optional[PathLike] = None) -> Dataset:
    """Dermatology, 366 x 34, 6 classes.

    Parameters
    ----------
    data_dir : str or path-like, default=None
        Folder holding ``dermatology.csv``; see :func:`find_data_dir`.

    Returns
    -------
    Dataset
        ``X`` of shape (366, 34), ``y`` of shape (366,) with the classes
        1..6 of the file mapped to 0..5. The 8 missing ages are imputed by
        the column mean.

    Raises
    ------
    FileNotFoundError
        When the CSV file is not in the folder.
    """
    X, y, names = _read_labelled(_DERMATOLOGY_FILE, data_dir, header=True, labels=(1, 6))
    return Dataset(
        X=X,
        y=y - 1,
        name="dermatology",
        description=(
            "UCI Dermatology: 366 patients, 12 clinical and 22 histopathological "
            "features, 6 erythemato-squamous diseases (classes 1..6 mapped to "
            "0..5). Missing values ('?') imputed by the column mean."
        ),
        feature_names=names[:-1],
        class_names=list(_DERMATOLOGY_CLASSES),
    )


def load_arrhythmia(data_dir: Optional[PathLike] = None) -> Dataset:
    """Arrhythmia, 452 x 279, 13 classes present (of 16).

    Parameters
    ----------
    data_dir : str or path-like, default=None
        Folder holding ``arrhythmia.csv`` (no header row); see
        :func:`find_data_dir`.

    Returns
    -------
    Dataset
        ``X`` of shape (452, 279), ``y`` of shape (452,). The class codes
        present in the file (13 of 1..16) are mapped to ``0 .. C-1`` in
        sorted order; ``class_names`` gives each one's meaning with its
        original code. The 408 missing values are imputed by the column
        mean.

    Raises
    ------
    FileNotFoundError
        When the CSV file is not in the folder.
    """
    X, codes, _ = _read_labelled(_ARRHYTHMIA_FILE, data_dir, header=False)
    present, y = np.unique(codes, return_inverse=True)
    class_names = [f"{_ARRHYTHMIA_CLASSES.get(int(c), 'class')} (code {int(c)})" for c in present]
    return Dataset(
        X=X,
        y=y.astype(np.int64).reshape(-1),
        name="arrhythmia",
        description=(
            "UCI Arrhythmia: 452 ECG recordings, 279 features, class codes "
            f"1..16 of which {len(present)} occur; the present codes are mapped "
            "to 0..C-1 in sorted order. Missing values ('?') imputed by the "
            "column mean."
        ),
        feature_names=None,
        class_names=class_names,
    )


def _from_sklearn(loader: Callable, name: str, description: str) -> Dataset:
    bunch = loader()
    return Dataset(
        X=np.asarray(bunch.data, dtype=np.float64),
        y=np.asarray(bunch.target, dtype=np.int64),
        name=name,
        description=description,
        feature_names=[str(f) for f in bunch.feature_names],
        class_names=[str(c) for c in bunch.target_names],
    )


def load_breast_cancer() -> Dataset:
    """Breast cancer Wisconsin (diagnostic), 569 x 30, 2 classes.

    Returns
    -------
    Dataset
        From :func:`sklearn.datasets.load_breast_cancer`; labels 0
        (malignant) and 1 (benign).
    """
    from sklearn.datasets import load_breast_cancer as _load

    return _from_sklearn(
        _load,
        "breast_cancer",
        "Breast Cancer Wisconsin (diagnostic), via scikit-learn: 569 samples, "
        "30 features, 2 classes (malignant, benign).",
    )


def load_iris() -> Dataset:
    """Iris, 150 x 4, 3 classes.

    Returns
    -------
    Dataset
        From :func:`sklearn.datasets.load_iris`; labels 0..2.
    """
    from sklearn.datasets import load_iris as _load

    return _from_sklearn(
        _load,
        "iris",
        "Fisher's Iris, via scikit-learn: 150 samples, 4 features, 3 classes.",
    )


_UCI_LOADERS: Dict[str, Callable[..., Dataset]] = {
    "heart": load_heart,
    "dermatology": load_dermatology,
    "arrhythmia": load_arrhythmia,
}
_SKLEARN_LOADERS: Dict[str, Callable[[], Dataset]] = {
    "breast_cancer": load_breast_cancer,
    "iris": load_iris,
}
_ALIASES = {"heart_cleveland": "heart", "cleveland": "heart", "breast": "breast_cancer"}


def load_dataset(name: str, data_dir: Optional[PathLike] = None) -> Dataset:
    """Load one of :data:`DATASETS` by name.

    Parameters
    ----------
    name : str
        ``"heart"``, ``"dermatology"``, ``"arrhythmia"``, ``"breast_cancer"``
        or ``"iris"`` (case-insensitive; ``-`` and spaces read as ``_``).
    data_dir : str or path-like, default=None
        Folder of the UCI CSV files (ignored for the scikit-learn ones); see
        :func:`find_data_dir`.

    Returns
    -------
    Dataset

    Raises
    ------
    ValueError
        For an unknown name.
    FileNotFoundError
        When a UCI data set's CSV file cannot be found.
    """
    if not isinstance(name, str):
        raise ValueError(f"name: expected a string, one of {list(DATASETS)}; got {name!r}")
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    key = _ALIASES.get(key, key)
    if key in _UCI_LOADERS:
        return _UCI_LOADERS[key](data_dir=data_dir)
    if key in _SKLEARN_LOADERS:
        return _SKLEARN_LOADERS[key]()
    raise ValueError(f"unknown data set {name!r}; expected one of {list(DATASETS)}")
