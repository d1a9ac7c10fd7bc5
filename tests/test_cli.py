"""The crembo command line, end to end on temporary tables."""

import json
import shutil
import subprocess
import sys
import types
import warnings

import joblib
import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

import crembo
import crembo.evaluation
from crembo.cli import commands as cli
from crembo.trees.export import FastTree

FEATURES = ["f0", "f1", "f2", "f3"]
FAST = ["--n-thresholds", "4", "-q"]


def write_csv(path, n=300, seed=0, label_name="y", extra=None):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = np.array(["red", "green", "blue"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0.8)]
    cols = {"id": np.arange(n), **{f: X[:, j] for j, f in enumerate(FEATURES)}, label_name: y}
    if extra:
        cols.update(extra)
    with open(path, "w") as fh:
        fh.write(",".join(cols) + "\n")
        for i in range(n):
            fh.write(",".join(str(v[i]) for v in cols.values()) + "\n")
    return X, y


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    folder = tmp_path_factory.mktemp("table")
    X, y = write_csv(folder / "data.csv")
    return folder / "data.csv", X, y


def run_cli(argv, capsys):
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line_error(rc, err, *fragments):
    assert rc != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("crembo: error: ") and "Traceback" not in err
    for f in fragments:
        assert f in lines[0], lines[0]


def test_compress_writes_student_report_plots_and_exports(table, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    csv, X, y = table
    out = tmp_path / "out"
    exports = "rules,dot,cpp,native" + (",onnx" if _has("skl2onnx") else "")
    # scikit-learn's tree: every export format, ONNX included.
    rc, stdout, _ = run_cli(
        [
            "compress",
            csv,
            "--label",
            "y",
            "--drop",
            "id",
            "--plots",
            "--export",
            exports,
            "--student",
            "sklearn-tree:4",
            "-o",
            out,
            *FAST,
        ],
        capsys,
    )
    assert rc == 0
    assert "crembo compress: threshold" in stdout and "agreement with the teacher" in stdout
    for name in (
        "student.joblib",
        "report.json",
        "plots/depth_profile.png",
        "plots/threshold_search.png",
        "plots/tree.png",
        "student.rules.txt",
        "student.dot",
        "student.hpp",
        "student.fasttree.txt",
    ):
        assert (out / name).stat().st_size > 0, name
    report = json.loads((out / "report.json").read_text())
    assert report["data"]["features"] == FEATURES and report["data"]["rows"] == 300
    assert report["data"]["fit_rows"] + report["data"]["test_rows"] == 300
    search = report["search"]
    tried = search["thresholds_tried"]
    # the default tree student chooses its threshold by 5-fold cross-validation ("cv" records)
    assert any(r["stage"] == "memo" for r in tried) and any(r["stage"] == "cv" for r in tried)
    assert (
        max(r["validation_score"] for r in tried if r["stage"] == "cv" and r["validation_score"] is not None)
        == search["validation_score"]
    )
    assert search["threshold"] >= search["memo_threshold"] and 0 < search["depth"] <= 1
    assert report["student"]["tree"]["depth"] <= 4
    for part in ("fit", "test"):
        assert 0 <= report["scores"][part]["agreement_with_teacher"] <= 1
    assert report["timings"]["crembo"]["total"] > 0
    # the saved student predicts; the native file predicts the same
    student = joblib.load(out / "student.joblib")
    assert list(student.feature_names_in_) == FEATURES
    native = FastTree.load(out / "student.fasttree.txt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the student knows its feature names; X is a bare array
        np.testing.assert_array_equal(native.predict(X), student.predict(X))
    assert "rule 1: IF" in (out / "student.rules.txt").read_text()
    # evaluate the saved student on the table
    rc, stdout, _ = run_cli(
        ["evaluate", out / "student.joblib", csv, "--label", "y", "--drop", "id", "--json", tmp_path / "eval.json"],
        capsys,
    )
    assert rc == 0 and "accuracy" in stdout
    scores = json.loads((tmp_path / "eval.json").read_text())
    expected = float(np.mean(FastTree.from_sklearn(student).predict(X) == y))
    assert scores["rows"] == 300 and scores["student_accuracy"] == pytest.approx(expected)


def _has(module):
    try:
        __import__(module)
        return True
    except ImportError:
        return False


def test_console_entry_point_end_to_end(table, tmp_path):
    csv, _, _ = table
    cmd = [
        sys.executable,
        "-m",
        "crembo",
        "compress",
        str(csv),
        "--label",
        "y",
        "--drop",
        "id",
        "-o",
        str(tmp_path / "o"),
        "--student",
        "tree:2",
        *FAST,
    ]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "o" / "student.joblib").exists()
    bad = subprocess.run(
        [sys.executable, "-m", "crembo", "compress", str(csv), "--label", "nope", "-q"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines() == [bad.stderr.strip()] and "no label column 'nope'" in bad.stderr
    if shutil.which("crembo"):
        res = subprocess.run(["crembo", "--help"], capture_output=True, text=True)
        assert res.returncode == 0 and "compress" in res.stdout and "evaluate" in res.stdout


def test_compress_with_a_teacher_file(table, tmp_path, capsys):
    pd = pytest.importorskip("pandas")
    csv, X, y = table
    df = pd.DataFrame(X, columns=FEATURES)
    # fitted on the columns in another order: the table is reordered to match
    teacher = RandomForestClassifier(n_estimators=30, max_depth=6, random_state=0).fit(df[FEATURES[::-1]], y)
    joblib.dump(teacher, tmp_path / "teacher.joblib")
    rc, _, _ = run_cli(
        [
            "compress",
            csv,
            "--label",
            "y",
            "--drop",
            "id",
            "--teacher",
            tmp_path / "teacher.joblib",
            "-o",
            tmp_path / "o",
            *FAST,
        ],
        capsys,
    )
    assert rc == 0
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["teacher"]["trained"] is False and report["data"]["features"] == FEATURES[::-1]
    rc, stdout, _ = run_cli(
        [
            "evaluate",
            tmp_path / "o" / "student.joblib",
            csv,
            "--label",
            "y",
            "--drop",
            "id",
            "--teacher",
            tmp_path / "teacher.joblib",
        ],
        capsys,
    )
    assert rc == 0 and "agreement with the teacher" in stdout


@pytest.mark.parametrize("teacher", ["gradient-boosting", "mlp"])
def test_compress_trains_each_teacher_kind(table, tmp_path, capsys, teacher):
    csv, _, _ = table
    rc, _, err = run_cli(
        [
            "compress",
            csv,
            "--label",
            "y",
            "--drop",
            "id",
            "--teacher",
            teacher,
            "--test-fraction",
            "0",
            "-o",
            tmp_path,
            *FAST,
        ],
        capsys,
    )
    assert rc == 0, err
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["teacher"]["source"] == teacher and "test" not in report["scores"]


def test_compress_reads_parquet_and_the_plain_csv_reader_agrees(table, tmp_path, capsys):
    csv, X, y = table
    plain = cli.read_table(csv, "y", drop=["id"], use_pandas=False)
    np.testing.assert_array_equal(plain.X, X)
    np.testing.assert_array_equal(plain.y, y)
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    frame = cli.read_table(csv, "y", drop=["id"], use_pandas=True)
    np.testing.assert_array_equal(frame.X, plain.X)
    pd.read_csv(csv).to_parquet(tmp_path / "data.parquet")
    rc, _, err = run_cli(
        [
            "compress",
            tmp_path / "data.parquet",
            "--label",
            "y",
            "--drop",
            "id",
            "--mode",
            "memo",
            "-o",
            tmp_path / "o",
            *FAST,
        ],
        capsys,
    )
    assert rc == 0, err


def test_errors_are_one_line(table, tmp_path, capsys):
    csv, X, y = table
    out = ["-o", tmp_path / "o", *FAST]
    text_col = tmp_path / "text.csv"
    write_csv(text_col, extra={"city": np.array(["paris", "rome"] * 150)})
    holes = tmp_path / "holes.csv"
    write_csv(holes, extra={"gap": np.where(np.arange(300) % 7 == 0, np.nan, 1.0)})
    one_class = tmp_path / "one.csv"
    write_csv(one_class, extra={"const": np.zeros(300, dtype=int)})
    small_teacher = RandomForestClassifier(n_estimators=5, random_state=0).fit(X[:, :3], y)
    joblib.dump(small_teacher, tmp_path / "t3.joblib")
    joblib.dump({"not": "a model"}, tmp_path / "dict.joblib")
    (tmp_path / "junk.joblib").write_bytes(b"not a pickle")
    cases = [
        (["compress", tmp_path / "missing.csv", "--label", "y"], ["missing.csv: no such file"]),
        (["compress", csv, "--label", "label"], ["no label column 'label'", "f0"]),
        (["compress", text_col, "--label", "y"], ["feature column 'city' is not numeric", "'paris'"]),
        (["compress", holes, "--label", "y"], ["feature column 'gap' has 43 missing"]),
        (["compress", one_class, "--label", "const", "--drop", "y"], ["one class"]),
        (
            ["compress", csv, "--label", "y", "--drop", "id", "--teacher", tmp_path / "t3.joblib"],
            ["teacher expects 3 features but the table has 4"],
        ),
        (["compress", csv, "--label", "y", "--teacher", tmp_path / "dict.joblib"], ["has no predict_proba"]),
        (["compress", csv, "--label", "y", "--teacher", tmp_path / "junk.joblib"], ["cannot be loaded"]),
        (["compress", csv, "--label", "y", "--teacher", "svm"], ["--teacher 'svm'"]),
        (["compress", csv, "--label", "y", "--student", "tree:0"], ["bad parameter"]),
        (["compress", csv, "--label", "y", "--student", "forest"], ["--student 'forest'"]),
        (["compress", csv, "--label", "y", "--export", "pdf"], ["unknown format(s) pdf"]),
        (["compress", csv, "--label", "y", "--student", "logistic", "--export", "rules"], ["tree students"]),
        (["compress", csv, "--label", "y", "--drop", "nope"], ["--drop names columns", "nope"]),
        (["compress", csv, "--label", "y", "--test-fraction", "1.5"], ["--test-fraction"]),
        (["evaluate", tmp_path / "none.joblib", csv, "--label", "y"], ["student file", "no such file"]),
        (
            ["evaluate", tmp_path / "t3.joblib", csv, "--label", "y", "--drop", "id"],
            ["student expects 3 features but the table has 4"],
        ),
        (["export", tmp_path / "dict.joblib", "--format", "rules"], ["cannot export as rules"]),
    ]
    for argv, fragments in cases:
        rc, _, err = run_cli([*argv, *out] if argv[0] == "compress" else argv, capsys)
        assert_one_line_error(rc, err, *fragments)


def test_export_subcommand(table, tmp_path, capsys):
    csv, X, y = table
    rc, _, _ = run_cli(["compress", csv, "--label", "y", "--drop", "id", "-o", tmp_path, *FAST], capsys)
    assert rc == 0
    rc, stdout, _ = run_cli(["export", tmp_path / "student.joblib", "--format", "cpp", "--name", "my_tree"], capsys)
    assert rc == 0 and "namespace my_tree {" in stdout
    rc, _, _ = run_cli(["export", tmp_path / "student.joblib", "--format", "rules", "-o", tmp_path / "r.txt"], capsys)
    assert rc == 0
    assert (tmp_path / "r.txt").read_text().startswith("# ") and " THEN " in (tmp_path / "r.txt").read_text()
    rc, _, err = run_cli(["export", tmp_path / "student.joblib", "--format", "onnx"], capsys)
    assert_one_line_error(rc, err, "give -o FILE")


def test_paper_forwards_its_arguments(monkeypatch, capsys):
    seen = []
    fake = types.ModuleType("crembo.evaluation.paper")
    fake.main = lambda argv: seen.append(argv) or 0
    monkeypatch.setitem(sys.modules, "crembo.evaluation.paper", fake)
    monkeypatch.setattr(crembo.evaluation, "paper", fake, raising=False)
    rc, _, _ = run_cli(["paper", "--quick", "--seed", "3"], capsys)
    assert rc == 0 and seen == [["--quick", "--seed", "3"]]
    monkeypatch.setitem(sys.modules, "crembo.evaluation.paper", None)
    monkeypatch.delattr(crembo.evaluation, "paper", raising=False)
    rc, _, err = run_cli(["paper", "--quick"], capsys)
    assert_one_line_error(rc, err, "paper reproduction is not available")


def test_demo_still_runs(capsys):
    rc, stdout, _ = run_cli(["demo", "--dataset", "iris", "--folds", "2"], capsys)
    assert rc == 0 and "CREMBO" in stdout and "MEMO's deepest consistent threshold" in stdout


def test_compress_with_cross_validated_threshold(table, tmp_path, capsys):
    csv, X, y = table
    out = tmp_path / "cv"
    rc, stdout, _ = run_cli(["compress", csv, "--label", "y", "--drop", "id", "--cv", "3", "-o", out, *FAST], capsys)
    assert rc == 0
    report = json.loads((out / "report.json").read_text())
    assert report["search"]["cv"] == 3
    tried = report["search"]["thresholds_tried"]
    assert any(r["stage"] == "cv" for r in tried) and not any(r["stage"] == "sweep" for r in tried)
    rc, _, err = run_cli(["compress", csv, "--label", "y", "--cv", "1", "-o", tmp_path / "bad"], capsys)
    assert_one_line_error(rc, err, "--cv", "at least 2 folds")


# ------------------------------------------------------------ output folder
def _snapshot(folder):
    """{relative path: bytes} of every file under folder."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _leftovers(parent):
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def _no_fit(monkeypatch):
    """Make any fit fail loudly: the checks under test must come first."""
    from crembo.compress.estimators import CREMBOClassifier

    def fit(self, *args, **kwargs):
        raise AssertionError("the output folder must be checked before fitting")

    monkeypatch.setattr(CREMBOClassifier, "fit", fit)


def test_a_reused_output_folder_is_replaced_as_a_whole(table, tmp_path, capsys):
    csv, _, _ = table
    out = tmp_path / "out"
    rc, _, err = run_cli(
        ["compress", csv, "--label", "y", "--drop", "id", "--export", "rules,dot", "-o", out, *FAST], capsys
    )
    assert rc == 0, err
    assert (out / "student.rules.txt").exists() and (out / "student.dot").exists()
    first = json.loads((out / "report.json").read_text())
    rc, _, err = run_cli(
        ["compress", csv, "--label", "y", "--drop", "id", "--student", "tree:2", "-o", out, *FAST], capsys
    )
    assert rc == 0, err
    # nothing of the first run is left: no stale exports next to the new student
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "student.joblib"]
    second = json.loads((out / "report.json").read_text())
    assert first["student"]["spec"] == "tree:4" and second["student"]["spec"] == "tree:2"
    assert second["outputs"] == {"student": str(out / "student.joblib"), "report": str(out / "report.json")}
    assert joblib.load(out / "student.joblib").get_depth() <= 2
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("where", ["exports", "report"])
def test_an_interrupt_leaves_the_previous_output(table, tmp_path, capsys, monkeypatch, where):
    csv, _, _ = table
    out = tmp_path / "out"
    rc, _, _ = run_cli(["compress", csv, "--label", "y", "--drop", "id", "-o", out, *FAST], capsys)
    assert rc == 0
    before = _snapshot(out)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    if where == "exports":  # after the student is written, before the report
        monkeypatch.setattr(cli, "write_export", interrupted)
    else:  # the report is the last file written
        monkeypatch.setattr(cli, "_jsonable", interrupted)
    for target in (out, tmp_path / "fresh"):
        rc, _, err = run_cli(
            ["compress", csv, "--label", "y", "--drop", "id", "--export", "rules", "-o", target, *FAST], capsys
        )
        assert rc == 130 and "interrupted" in err
    assert _snapshot(out) == before  # the old folder, untouched
    assert not (tmp_path / "fresh").exists()  # no half-written new folder
    assert _leftovers(tmp_path) == []  # and no staging folder


def test_an_interrupt_while_the_folder_is_swapped_is_held_back(table, tmp_path, capsys, monkeypatch):
    import os
    import signal

    csv, _, _ = table
    out = tmp_path / "out"
    real_replace = os.replace

    def replace_with_a_signal(src, dst):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C in the middle of the swap
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_with_a_signal)
    rc, _, err = run_cli(["compress", csv, "--label", "y", "--drop", "id", "-o", out, *FAST], capsys)
    assert rc == 130 and "interrupted" in err  # reported, but only once the new folder is complete
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "student.joblib"]
    assert _leftovers(tmp_path) == []


def test_output_folder_problems_are_reported_before_fitting(table, tmp_path, capsys, monkeypatch):
    csv, _, _ = table
    _no_fit(monkeypatch)
    a_file = tmp_path / "taken"
    a_file.write_text("not a folder")
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    cases = [
        (a_file, ["--out-dir", "exists and is not a folder"]),
        (a_file / "sub", ["--out-dir", "cannot write there"]),
        (foreign, ["--out-dir", "holds files that crembo compress did not write (notes.txt)"]),
    ]
    for target, fragments in cases:
        rc, _, err = run_cli(["compress", csv, "--label", "y", "--drop", "id", "-o", target, *FAST], capsys)
        assert_one_line_error(rc, err, *fragments)
        assert rc == 2
    assert a_file.read_text() == "not a folder" and (foreign / "notes.txt").read_text() == "keep me"
    assert _leftovers(tmp_path) == []


def test_the_current_folder_is_never_an_output_folder(table, tmp_path, capsys, monkeypatch):
    csv, _, _ = table
    _no_fit(monkeypatch)
    monkeypatch.chdir(tmp_path)
    for target in (".", tmp_path.parent):
        rc, _, err = run_cli(["compress", csv, "--label", "y", "--drop", "id", "-o", target, *FAST], capsys)
        assert_one_line_error(rc, err, "--out-dir", "current folder")


@pytest.mark.skipif(
    not hasattr(__import__("os"), "geteuid") or __import__("os").geteuid() == 0,
    reason="root may write into a read-only folder",
)
def test_an_unwritable_parent_is_reported_before_fitting(table, tmp_path, capsys, monkeypatch):
    csv, _, _ = table
    _no_fit(monkeypatch)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        rc, _, err = run_cli(["compress", csv, "--label", "y", "-o", locked / "out", *FAST], capsys)
        assert_one_line_error(rc, err, "--out-dir", "cannot write there")
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize("rows", [2, 3])
def test_tiny_tables_get_a_clear_message(tmp_path, capsys, rows):
    path = tmp_path / "tiny.csv"
    path.write_text("a,b,y\n" + "".join(f"{i},{i * i % 5},{i}\n" for i in range(rows)))
    rc, _, err = run_cli(["compress", path, "--label", "y", "-o", tmp_path / "o", *FAST], capsys)
    assert_one_line_error(rc, err, f"{rows} rows are too few", "--test-fraction 0")
    assert "does not know" not in err
    assert not (tmp_path / "o").exists() and _leftovers(tmp_path) == []


# ---------------------------------------------------------------- categorical columns and missing cells
def write_categorical_csv(path, n=300, seed=0):
    """A string column (empty and ``?`` cells missing), a numeric column with
    empty and ``NA`` cells, a plain numeric column; the label depends on the
    colour and on x."""
    rng = np.random.default_rng(seed)
    color = rng.choice(["red", "green", "blue", "violet"], n)
    x, z = rng.normal(size=n), rng.normal(size=n)
    y = np.where(np.isin(color, ["red", "violet"]) ^ (x > 1.0), "yes", "no")
    with open(path, "w") as fh:
        fh.write("color,x,z,label\n")
        for i in range(n):
            c = "" if i % 17 == 0 else ("?" if i % 23 == 0 else color[i])
            xv = "" if i % 11 == 0 else ("NA" if i % 13 == 0 else str(float(x[i])))
            fh.write(f"{c},{xv},{float(z[i])},{y[i]}\n")
    return path


def test_read_table_categorical_columns_and_missing_cells(tmp_path):
    pytest.importorskip("pandas")
    csv = write_categorical_csv(tmp_path / "cat.csv")
    with pytest.raises(cli.CLIError, match="feature column 'color' is not numeric"):
        cli.read_table(csv, "label")  # the numeric reader, as before
    t = cli.read_table(csv, "label", categorical=True)
    assert t.categorical == ["color"] and str(t.X["color"].dtype) == "category"
    assert list(t.X["color"].cat.categories) == ["blue", "green", "red", "violet"]
    missing = sum(1 for i in range(300) if i % 17 == 0 or i % 23 == 0)
    assert t.missing == {"color": missing, "x": sum(1 for i in range(300) if i % 11 == 0 or i % 13 == 0)}
    assert int(t.X["color"].isna().sum()) == missing and t.X["x"].dtype == np.float64


def test_compress_and_evaluate_a_categorical_table(tmp_path, capsys):
    pytest.importorskip("pandas")
    csv = write_categorical_csv(tmp_path / "cat.csv")
    out = tmp_path / "o"
    argv = ["compress", csv, "--label", "label", "--teacher", "gradient-boosting", "--export", "rules,dot"]
    rc, stdout, err = run_cli([*argv, "-o", out, *FAST], capsys)
    assert rc == 0, err
    report = json.loads((out / "report.json").read_text())
    assert report["data"]["categorical"] == ["color"] and set(report["data"]["missing"]) == {"color", "x"}
    assert report["scores"]["test"]["student_accuracy"] > 0.8
    rules = (out / "student.rules.txt").read_text()
    assert "color in {" in rules and any(c in rules for c in ("red", "green", "blue", "violet"))
    assert "violet" in (out / "student.dot").read_text() or "green" in (out / "student.dot").read_text()
    # The saved student carries the categories: it reads the table's strings.
    rc, stdout, err = run_cli(["evaluate", out / "student.joblib", csv, "--label", "label"], capsys)
    assert rc == 0, err
    acc = float(stdout.split("accuracy ")[1].split(",")[0])
    assert acc > 0.8
    student = joblib.load(out / "student.joblib")
    assert list(student.categories_[0]) == ["blue", "green", "red", "violet"]
    # Formats without category-subset splits: the Python one-line error.
    rc, _, err = run_cli(["export", out / "student.joblib", "--format", "cpp"], capsys)
    assert_one_line_error(rc, err, "cannot export as cpp", "category-subset splits")
    rc, _, err = run_cli(["export", out / "student.joblib", "--format", "native"], capsys)
    assert_one_line_error(rc, err, "cannot export as native", "category-subset splits")


def test_a_categorical_table_is_parquet_round_trip(tmp_path, capsys):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    csv = write_categorical_csv(tmp_path / "cat.csv")
    pq = tmp_path / "cat.parquet"
    pd.read_csv(csv, na_values=["?"]).to_parquet(pq)
    from_csv = cli.read_table(csv, "label", categorical=True)
    from_pq = cli.read_table(pq, "label", categorical=True)
    pd.testing.assert_frame_equal(from_csv.X, from_pq.X)
    assert from_pq.missing == from_csv.missing
    out = tmp_path / "o"
    rc, _, err = run_cli(
        ["compress", pq, "--label", "label", "--teacher", "gradient-boosting", "-o", out, *FAST], capsys
    )
    assert rc == 0, err
    for data in (pq, csv):
        rc, stdout, err = run_cli(["evaluate", out / "student.joblib", data, "--label", "label"], capsys)
        assert rc == 0 and "accuracy" in stdout, err


def test_categorical_columns_need_a_teacher_that_takes_them(tmp_path, capsys, monkeypatch):
    pytest.importorskip("pandas")
    csv = write_categorical_csv(tmp_path / "cat.csv")
    _no_fit(monkeypatch)  # every error comes before fitting
    for teacher in ("random-forest", "mlp"):
        rc, _, err = run_cli(
            ["compress", csv, "--label", "label", "--teacher", teacher, "-o", tmp_path / "o", *FAST], capsys
        )
        assert_one_line_error(
            rc, err, "feature column 'color' is not numeric", f"the {teacher} teacher", "--teacher gradient-boosting"
        )
    # A teacher file that takes categorical columns is accepted; one that does not is refused.
    from sklearn.ensemble import HistGradientBoostingClassifier

    joblib.dump(RandomForestClassifier(n_estimators=5), tmp_path / "rf.joblib")
    rc, _, err = run_cli(
        ["compress", csv, "--label", "label", "--teacher", tmp_path / "rf.joblib", "-o", tmp_path / "o", *FAST], capsys
    )
    assert_one_line_error(rc, err, "feature column 'color' is not numeric", "RandomForestClassifier")
    # Missing values with a student that refuses them.
    rc, _, err = run_cli(
        [
            "compress",
            csv,
            "--label",
            "label",
            "--teacher",
            "gradient-boosting",
            "--student",
            "logistic",
            "-o",
            tmp_path / "o",
            *FAST,
        ],
        capsys,
    )
    assert_one_line_error(rc, err, "feature column 'color' has", "LogisticRegression")
    assert not (tmp_path / "o").exists()
    joblib.dump(HistGradientBoostingClassifier(max_iter=10), tmp_path / "hgb.joblib")
    assert cli._takes_categories(joblib.load(tmp_path / "hgb.joblib"))
    # A text column with more distinct values than a categorical column may hold (an id, free text).
    ids = tmp_path / "ids.csv"
    write_csv(ids, extra={"name": np.array([f"row{i}" for i in range(300)])})
    rc, _, err = run_cli(
        ["compress", ids, "--label", "y", "--teacher", "gradient-boosting", "-o", tmp_path / "o", *FAST], capsys
    )
    assert_one_line_error(rc, err, "feature column 'name' is not numeric", "300 distinct values", "--drop")


def test_evaluate_refuses_categorical_columns_a_numeric_student_never_saw(table, tmp_path, capsys):
    pytest.importorskip("pandas")
    csv, X, y = table
    rc, _, err = run_cli(["compress", csv, "--label", "y", "--drop", "id", "-o", tmp_path / "o", *FAST], capsys)
    assert rc == 0, err
    text_col = tmp_path / "text.csv"
    write_csv(text_col)
    lines = text_col.read_text().splitlines()
    lines[1] = lines[1].replace(lines[1].split(",")[1], "abc", 1)  # one f0 cell that is text
    text_col.write_text("\n".join(lines) + "\n")
    rc, _, err = run_cli(
        ["evaluate", tmp_path / "o" / "student.joblib", text_col, "--label", "y", "--drop", "id"], capsys
    )
    assert_one_line_error(rc, err, "feature column 'f0' is not numeric", "'abc'")


def test_teacher_names_mean_the_same_as_in_the_paper_bench():
    from crembo.evaluation.paper import TEACHERS as PAPER_TEACHERS

    for cli_name, paper_name in (("random-forest", "random_forest"), ("mlp", "mlp")):
        a, b = cli.make_teacher(cli_name, 0), PAPER_TEACHERS[paper_name](0)
        assert repr(a) == repr(b), (cli_name, a, b)
    # the student "tree:4" is crembo's histogram tree in the CLI as in Python
    from crembo.trees.hist import HistTreeClassifier, resolve_student

    assert isinstance(cli.parse_student("tree:4", 0), HistTreeClassifier)
    assert isinstance(resolve_student("tree:4"), HistTreeClassifier)
    assert type(cli.parse_student("sklearn-tree:4", 0)).__name__ == "DecisionTreeClassifier"
