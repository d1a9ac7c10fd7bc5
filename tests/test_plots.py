"""Plots: depth profiles, the threshold search, the tree drawing."""

import numpy as np
import pytest

mpl = pytest.importorskip("matplotlib")
mpl.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.tree import DecisionTreeClassifier  # noqa: E402

from crembo import CREMBOClassifier, teacher_beliefs  # noqa: E402
from crembo.evaluation.plots import plot_depth_profile, plot_threshold_search, plot_tree  # noqa: E402


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 5))
    y = np.array(["a", "b", "c"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0.7)]
    teacher = RandomForestClassifier(n_estimators=25, max_depth=6, random_state=0).fit(X, y)
    model = CREMBOClassifier(teacher, DecisionTreeClassifier(max_depth=3), n_thresholds=6, random_state=0).fit(X, y)
    return X, y, teacher, model


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_depth_profile_curves_start_at_the_depth(fitted):
    X, y, teacher, model = fitted
    P = teacher_beliefs(teacher, X)
    preds = {"CREMBO": model.predict(X), "true labels": y}
    ax = plot_depth_profile(P, preds, classes=model.classes_)
    lines = ax.get_lines()
    assert len(lines) == 2
    for line, pred in zip(lines, preds.values()):
        depth = P[np.arange(len(X)), np.searchsorted(model.classes_, pred)]
        ydata = np.asarray(line.get_ydata())
        assert ydata.min() == pytest.approx(depth.min()) and np.all(np.diff(ydata) >= 0)
        assert f"depth {depth.min():.2f}" in line.get_label()
    # indices instead of labels, one array instead of a dict
    ax2 = plot_depth_profile(P, np.searchsorted(model.classes_, y))
    assert len(ax2.get_lines()) == 1


def test_depth_profile_errors(fitted):
    X, y, teacher, model = fitted
    P = teacher_beliefs(teacher, X)
    with pytest.raises(ValueError, match="expected 400 predictions"):
        plot_depth_profile(P, {"s": y[:10]}, classes=model.classes_)
    with pytest.raises(ValueError, match="outside classes"):
        plot_depth_profile(P, {"s": np.array(["z"] * 400)}, classes=model.classes_)
    with pytest.raises(ValueError, match="class indices"):
        plot_depth_profile(P, np.full(400, 7))
    with pytest.raises(ValueError, match="beliefs"):
        plot_depth_profile(P[0], y)
    with pytest.raises(ValueError, match="at least one student"):
        plot_depth_profile(P, {})


def test_threshold_search_plots_the_sweep(fitted, tmp_path):
    model = fitted[3]
    ax = plot_threshold_search(model)
    sweep = [r for r in model.trace_ if r["stage"] in ("sweep", "cv") and r["validation_score"] is not None]
    assert sweep
    line = ax.get_lines()[0]
    assert len(line.get_xdata()) == len(sweep)
    assert max(line.get_ydata()) == pytest.approx(model.validation_score_)
    labels = [h.get_label() for h in ax.get_legend().legend_handles]
    assert any("chosen threshold" in s for s in labels)
    ax.figure.savefig(tmp_path / "search.png")
    assert (tmp_path / "search.png").stat().st_size > 1000
    # a bare trace works too; junk does not
    plot_threshold_search(model.trace_)
    with pytest.raises(TypeError, match="trace_"):
        plot_threshold_search(42)


def test_plot_tree_draws_every_node(fitted):
    X, y, _, model = fitted
    student = model.student_
    ax = plot_tree(student, feature_names=[f"f{j}" for j in range(5)])
    assert len(ax.texts) == 2 * student.tree_.node_count - 1  # boxes and yes/no edge labels
    ax2 = plot_tree(model, max_depth=1)
    boxes = [t for t in ax2.texts if t.get_bbox_patch() is not None]
    assert len(boxes) == 3
    with pytest.raises(TypeError, match="not a fitted tree"):
        plot_tree(object())
