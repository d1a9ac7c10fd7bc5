"""Tests of crembo.evaluation.datasets: the five data sets of the reference protocol."""

import numpy as np
import pytest

from crembo.evaluation import datasets
from crembo.evaluation.datasets import (
    DATASETS,
    Dataset,
    find_data_dir,
    load_arrhythmia,
    load_breast_cancer,
    load_dataset,
    load_dermatology,
    load_heart,
    load_iris,
)

UCI_FILES = {
    "heart": "heart_cleveland.csv",
    "dermatology": "dermatology.csv",
    "arrhythmia": "arrhythmia.csv",
}


# The data home as the session sees it (tests/conftest.py points
# CREMBO_DATA_DIR at ../shared/data in a checkout), read before the autouse
# fixture below clears the variable.
_SESSION_DATA_DIR = find_data_dir()


def _shared_data():
    d = _SESSION_DATA_DIR
    if not all((d / f).is_file() for f in UCI_FILES.values()):
        pytest.skip(f"UCI CSV files not found in {d}")
    return d


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    # Tests decide themselves whether CREMBO_DATA_DIR is set.
    monkeypatch.delenv(datasets.DATA_DIR_ENV, raising=False)


@pytest.fixture
def data_dir(monkeypatch):
    # Loaders called without data_dir find the files as a checkout points at
    # them: through the environment variable (the autouse fixture above
    # cleared it first).
    d = _shared_data()
    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(d))
    return d


def _check_common(ds, n, d, n_classes):
    assert isinstance(ds, Dataset)
    assert ds.X.shape == (n, d)
    assert ds.y.shape == (n,)
    assert ds.X.dtype == np.float64
    assert ds.y.dtype == np.int64
    assert np.all(np.isfinite(ds.X))
    assert ds.y.min() == 0 and ds.y.max() == n_classes - 1
    assert len(np.unique(ds.y)) == n_classes
    assert ds.n_classes == n_classes
    if ds.class_names is not None:
        assert len(ds.class_names) == n_classes
    if ds.feature_names is not None:
        assert len(ds.feature_names) == d
    assert ds.name in DATASETS
    assert ds.description


def test_heart(data_dir):
    ds = load_heart()
    _check_common(ds, 303, 13, 5)
    assert np.bincount(ds.y).tolist() == [164, 55, 36, 35, 13]
    assert ds.feature_names[0] == "age" and "target" not in ds.feature_names


def test_heart_missing_values_are_column_means(data_dir):
    ds = load_heart(data_dir)
    # Recompute the imputation by hand from the raw file.
    lines = (data_dir / UCI_FILES["heart"]).read_text().strip().splitlines()[1:]
    raw = np.array([[np.nan if v.strip() == "?" else float(v) for v in line.split(",")[:-1]] for line in lines])
    holes = np.isnan(raw)
    assert holes.sum() == 6
    expected = np.where(holes, np.nanmean(raw, axis=0), raw)
    np.testing.assert_allclose(ds.X, expected)


def test_dermatology(data_dir):
    ds = load_dermatology()
    _check_common(ds, 366, 34, 6)
    assert np.bincount(ds.y).tolist() == [112, 61, 72, 49, 52, 20]
    # The header holds a quoted name with a comma: 34 names, not 35.
    assert ds.feature_names[-1] == "Age"


def test_arrhythmia(data_dir):
    ds = load_arrhythmia()
    _check_common(ds, 452, 279, 13)
    # Counts of the codes 1..10, 14, 15, 16 as found in the file (codes
    # 11..13 never occur).
    assert np.bincount(ds.y).tolist() == [245, 44, 15, 15, 13, 25, 3, 2, 9, 50, 4, 5, 22]
    assert "code 16" in ds.class_names[-1] and "code 10" in ds.class_names[9]
    # The first row is data, not a header.
    first = (data_dir / UCI_FILES["arrhythmia"]).read_text().splitlines()[0].split(",")
    assert ds.X[0, 0] == float(first[0])


def test_arrhythmia_label_mapping_is_sorted(data_dir):
    ds = load_arrhythmia(data_dir)
    raw = np.array(
        [int(line.rsplit(",", 1)[1]) for line in (data_dir / UCI_FILES["arrhythmia"]).read_text().strip().splitlines()]
    )
    present = np.unique(raw)
    assert len(present) == 13
    np.testing.assert_array_equal(present[ds.y], raw)


def test_sklearn_sets():
    bc = load_breast_cancer()
    _check_common(bc, 569, 30, 2)
    ir = load_iris()
    _check_common(ir, 150, 4, 3)


def test_tuple_unpacking():
    X, y = load_iris()
    assert X.shape == (150, 4) and y.shape == (150,)


@pytest.mark.parametrize("name", DATASETS)
def test_load_dataset_by_name(name, data_dir):
    ds = load_dataset(name)
    assert ds.name == name


def test_load_dataset_aliases_and_unknown():
    assert load_dataset("Breast-Cancer").name == "breast_cancer"
    with pytest.raises(ValueError, match="unknown data set"):
        load_dataset("mnist")


def test_datasets_names():
    assert set(DATASETS) == {"heart", "dermatology", "arrhythmia", "breast_cancer", "iris"}


def test_env_var_override(monkeypatch, tmp_path, data_dir):
    # A private copy of the heart file with one value changed: the loader
    # must read this one.
    src = (data_dir / UCI_FILES["heart"]).read_text().splitlines()
    first = src[1].split(",")
    first[0] = "1000"
    src[1] = ",".join(first)
    (tmp_path / UCI_FILES["heart"]).write_text("\n".join(src) + "\n")
    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(tmp_path))
    assert find_data_dir() == tmp_path
    assert load_heart().X[0, 0] == 1000.0
    assert load_dataset("heart").X[0, 0] == 1000.0
    # data_dir wins over the environment variable.
    assert load_heart(data_dir=data_dir).X[0, 0] == 63.0


def test_env_var_missing_file(monkeypatch, tmp_path):
    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError) as info:
        load_dermatology()
    msg = str(info.value)
    assert "dermatology.csv" in msg
    assert "CREMBO_DATA_DIR" in msg and "data_dir" in msg


def test_missing_folder_error_message(tmp_path):
    missing = tmp_path / "no_such_folder"
    for name, filename in UCI_FILES.items():
        with pytest.raises(FileNotFoundError) as info:
            load_dataset(name, data_dir=missing)
        msg = str(info.value)
        assert filename in msg
        assert str(missing / filename) in msg
        assert "data_dir" in msg and "CREMBO_DATA_DIR" in msg


def test_missing_values_and_header_handling(tmp_path):
    # A tiny dermatology-shaped file: '?' imputed by the column mean,
    # labels 1..6 mapped to 0..5.
    header = ",".join([f"f{j}" for j in range(34)] + ["Class"])
    rows = []
    for i in range(6):
        vals = [str(i)] * 33 + (["?"] if i == 0 else [str(10 * i)]) + [str(i + 1)]
        rows.append(",".join(vals))
    (tmp_path / "dermatology.csv").write_text(header + "\n" + "\n".join(rows) + "\n")
    ds = load_dermatology(data_dir=tmp_path)
    assert ds.y.tolist() == [0, 1, 2, 3, 4, 5]
    assert ds.X[0, 33] == pytest.approx(np.mean([10, 20, 30, 40, 50]))
    assert not np.isnan(ds.X).any()


def test_default_location_is_the_home_data_folder(monkeypatch, tmp_path):
    # Without the argument and the variable: ~/crembo_data, wherever the
    # module is installed and whatever the working folder (no searching).
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    expected = tmp_path / "home" / "crembo_data"
    assert datasets.DEFAULT_DATA_DIR == "~/crembo_data"
    assert find_data_dir() == expected
    # A shared/data folder next to the working folder is not looked for.
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "pyproject.toml").write_text("")
    monkeypatch.chdir(tmp_path / "repo")
    assert find_data_dir() == expected
    # The argument and the variable expand ~ too.
    assert find_data_dir("~/elsewhere") == tmp_path / "home" / "elsewhere"
    monkeypatch.setenv(datasets.DATA_DIR_ENV, "~/from_env")
    assert find_data_dir() == tmp_path / "home" / "from_env"
    monkeypatch.setenv(datasets.DATA_DIR_ENV, "   ")  # blank: unset
    assert find_data_dir() == expected


def test_default_location_missing_file_names_it(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError) as info:
        load_heart()
    msg = str(info.value)
    assert str(tmp_path / "crembo_data" / UCI_FILES["heart"]) in msg
    assert "~/crembo_data" in msg and "CREMBO_DATA_DIR" in msg and "data_dir" in msg


def test_env_var_works_from_any_working_folder(monkeypatch, tmp_path, data_dir):
    # The variable is how a checkout points at its data: any cwd works.
    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(data_dir))
    monkeypatch.chdir(tmp_path)
    assert load_heart().X.shape == (303, 13)


# ------------------------------------------ one CSV reader, one table holder
def test_read_csv_rows(tmp_path):
    from crembo.evaluation.datasets import read_csv_rows

    p = tmp_path / "t.csv"
    p.write_text("a, b\n1,2\n\n3,4\n , \n")
    names, rows, lines = read_csv_rows(p)
    assert names == ["a", " b"] and rows == [["1", "2"], ["3", "4"], [" ", " "]] and lines == [2, 4, 5]
    assert read_csv_rows(p, skip_blank=True)[1:] == ([["1", "2"], ["3", "4"]], [2, 4])
    assert read_csv_rows(p, header=False)[0] is None
    tsv = tmp_path / "t.tsv"
    tsv.write_text("a\tb\n1\t2\n")
    assert read_csv_rows(tsv, sep="\t")[:2] == (["a", "b"], [["1", "2"]])
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n\n1,2,3\n")
    with pytest.raises(ValueError, match=r"bad.csv: line 4 has 3 fields, the header has 2"):
        read_csv_rows(bad)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    for header in (True, False):
        with pytest.raises(ValueError, match="empty.csv: the file is empty"):
            read_csv_rows(empty, header=header)


def test_the_command_line_reads_tables_into_datasets(tmp_path):
    from crembo.cli import commands as cli
    from crembo.evaluation.datasets import Dataset

    p = tmp_path / "pets.csv"
    p.write_text("x,z,label\n1,2,cat\n3,4,dog\n5,6,cat\n")
    for use_pandas in (False, True):
        if use_pandas:
            pytest.importorskip("pandas")
        t = cli.read_table(p, "label", use_pandas=use_pandas)
        assert isinstance(t, Dataset) and t.name == "pets" and t.path == str(p)
        assert t.feature_names == ["x", "z"] and t.n_samples == 3 and t.n_features == 2
        assert t.n_classes == 2 and list(t.y) == ["cat", "dog", "cat"]
        X, y = t
        np.testing.assert_array_equal(X, [[1, 2], [3, 4], [5, 6]])
    bad = tmp_path / "bad.csv"
    bad.write_text("x,label\n1,a\n2\n")
    with pytest.raises(cli.CLIError, match="bad.csv: line 3 has 1 fields, the header has 2"):
        cli.read_table(bad, "label", use_pandas=False)
