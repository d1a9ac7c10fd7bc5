"""Smoke test of the paper reproduction: the quick protocol on iris, and the
schema of what it writes."""

import json

import pytest

from crembo.evaluation import paper


@pytest.fixture(scope="module")
def iris_run():
    return paper.run(
        datasets=["iris"],
        teachers=["random_forest"],
        repeats=1,
        label_noise=(0.1,),
        feature_noise=(0.25,),
        noise_repeats=1,
        n_jobs=1,
        progress=None,
    )


def test_run_schema(iris_run):
    r = iris_run
    assert r["settings"]["datasets"] == ["iris"] and r["settings"]["repeats"] == 1
    assert [(x["dataset"], x["teacher"], x["label_noise"]) for x in r["runs"]] == [
        ("iris", "random_forest", 0.0),
        ("iris", "random_forest", 0.1),
    ]
    for run in r["runs"]:
        assert set(run["methods"]) == set(paper.PAPER_METHODS)
        for m, v in run["methods"].items():
            assert {"mean", "std", "wins", "agreement", "agreement_std", "fit_seconds", "feature_noise"} <= set(v)
            assert 0.0 <= v["mean"] <= 1.0 and 0.0 <= v["agreement"] <= 1.0
            assert (v["wins"] is None) == (m == "teacher")
            if m != "teacher":
                assert 0 <= v["wins"] <= 10
    clean = r["runs"][0]["methods"]
    assert set(clean["CREMBO"]["feature_noise"]) == {"0.25"}
    assert r["runs"][1]["methods"]["CREMBO"]["feature_noise"] == {}
    # iris is easy: every student beats chance by far on clean labels
    assert all(clean[m]["mean"] > 0.8 for m in paper.STUDENT_METHODS)
    json.dumps(r)  # the JSON report must serialise


def test_markdown_and_figure(iris_run, tmp_path):
    md = paper.markdown(iris_run)
    assert "### Accuracy and agreement, clean labels" in md
    assert "10% of training labels flipped" in md
    assert "feature noise" in md and "| iris | random_forest |" in md
    pytest.importorskip("matplotlib")
    out = tmp_path / "fig.png"
    paper.figure(iris_run, out)
    assert out.stat().st_size > 1000


def test_main_writes_files_and_rejects_bad_names(tmp_path, capsys):
    assert (
        paper.main(
            ["--quick", "--datasets", "iris", "--teachers", "random_forest", "--jobs", "1", "--out", str(tmp_path)]
        )
        == 0
    )
    data = json.loads((tmp_path / "paper_quick.json").read_text())
    assert data["settings"]["repeats"] == 1
    assert (tmp_path / "paper_quick.md").read_text().startswith("Settings:")
    with pytest.raises(SystemExit):
        paper.main(["--datasets", "mnist"])
    assert "unknown data set 'mnist'" in capsys.readouterr().err


def test_missing_data_folder_is_one_line_error(tmp_path, capsys):
    assert (
        paper.main(["--quick", "--datasets", "heart", "--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path)])
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("crembo paper: error:") and "heart" in err
