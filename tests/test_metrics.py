"""Tests of crembo.evaluation.metrics: agreement, depth statistics and perturbations."""

import math

import numpy as np
import pytest

from crembo.evaluation.metrics import (
    add_feature_noise,
    agreement,
    agreement_of,
    depth_statistics,
    flip_labels,
    noisy_accuracy,
    pairwise_agreement,
)


# ------------------------------------------------------------------ agreement
def test_identical_students_agree_fully():
    p = np.array([0, 1, 2, 1, 0])
    assert agreement([p, p.copy(), p.copy()]) == 1.0
    np.testing.assert_array_equal(pairwise_agreement([p, p]), np.ones((2, 2)))


def test_agreement_hand_computed():
    a = [0, 1, 1, 0]
    b = [0, 1, 0, 0]  # agrees with a on 3/4
    c = [1, 1, 0, 1]  # agrees with a on 1/4, with b on 2/4
    m = pairwise_agreement([a, b, c])
    expected = np.array([[1, 0.75, 0.25], [0.75, 1, 0.5], [0.25, 0.5, 1]])
    np.testing.assert_allclose(m, expected)
    assert agreement([a, b, c]) == pytest.approx((0.75 + 0.25 + 0.5) / 3)
    # A 2-d array: one row per student.
    assert agreement(np.array([a, b, c])) == pytest.approx(0.5)


def test_agreement_two_students_disjoint():
    assert agreement([[0, 0, 0], [1, 1, 1]]) == 0.0


def test_agreement_string_labels():
    assert agreement([["a", "b", "c", "d"], ["a", "b", "x", "y"]]) == pytest.approx(0.5)


@pytest.mark.parametrize(
    "bad, match",
    [
        ([[0, 1, 2]], "at least 2"),
        ([], "at least 2"),
        (np.array([[0, 1, 2]]), "at least 2"),
        ([[0, 1, 2], [0, 1]], "same test points"),
        ([[], []], "empty"),
        (np.array([0, 1, 2]), "2-d"),
        ([[[0, 1]], [[0, 1]]], "1-d"),
        (None, "sequence"),
    ],
)
def test_agreement_bad_inputs(bad, match):
    with pytest.raises(ValueError, match=match):
        agreement(bad)


class _Constant:
    def __init__(self, labels):
        self.labels = np.asarray(labels)

    def predict(self, X):
        assert len(X) == len(self.labels)
        return self.labels


def test_agreement_of_uses_predict():
    X = np.zeros((4, 2))
    ests = [_Constant([0, 1, 1, 0]), _Constant([0, 1, 0, 0])]
    assert agreement_of(ests, X) == pytest.approx(0.75)


def test_agreement_of_real_trees():
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] > 0).astype(int)
    trees = [DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y) for _ in range(3)]
    assert agreement_of(trees, X) == 1.0


# ---------------------------------------------------------------------- depth
def _numpy_depth_stats(P, pred, deltas, grid):
    d = P[np.arange(len(pred)), pred]
    s = np.sort(d)
    return {
        "min_depth": d.min(),
        "mean_depth": d.mean(),
        "delta_depths": {float(x): s[int(math.floor(x * len(d)))] for x in deltas},
        "profile": np.array([(d >= t).mean() for t in grid]),
        "point_depths": d,
    }


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_depth_statistics_matches_numpy(dtype):
    rng = np.random.RandomState(1)
    n, C = 257, 5
    P = rng.dirichlet(np.ones(C), size=n).astype(dtype)
    pred = rng.randint(0, C, size=n)
    deltas = (0, 0.01, 0.05, 0.1, 0.5)
    grid = np.linspace(0, 1, 41)
    got = depth_statistics(P, pred, deltas=deltas, thresholds=grid)
    want = _numpy_depth_stats(P, pred, deltas, grid)
    tol = 1e-6 if dtype == np.float32 else 1e-12
    assert got["min_depth"] == pytest.approx(want["min_depth"], abs=tol)
    assert got["mean_depth"] == pytest.approx(want["mean_depth"], abs=tol)
    assert set(got["delta_depths"]) == {float(x) for x in deltas}
    for x, v in want["delta_depths"].items():
        assert got["delta_depths"][x] == pytest.approx(v, abs=tol)
    np.testing.assert_allclose(got["thresholds"], grid)
    np.testing.assert_allclose(got["profile"], want["profile"])
    np.testing.assert_allclose(got["point_depths"], want["point_depths"], atol=tol)
    assert got["delta_depths"][0.0] == got["min_depth"]


def test_depth_statistics_hand_case_and_default_grid():
    P = np.array([[0.7, 0.3], [0.4, 0.6], [0.5, 0.5], [0.9, 0.1]])
    pred = np.array([0, 0, 1, 0])  # depths 0.7, 0.4, 0.5, 0.9
    st = depth_statistics(P, pred, deltas=(0, 0.25, 0.5))
    assert st["min_depth"] == pytest.approx(0.4)
    assert st["mean_depth"] == pytest.approx(0.625)
    assert st["delta_depths"][0.25] == pytest.approx(0.5)  # 2nd smallest
    assert st["delta_depths"][0.5] == pytest.approx(0.7)  # 3rd smallest
    assert st["thresholds"].shape == (21,)
    assert st["profile"][0] == 1.0  # threshold 0
    assert st["profile"][10] == pytest.approx(0.75)  # threshold 0.5: 0.7, 0.5, 0.9


def test_depth_statistics_profile_at_half():
    P = np.array([[0.7, 0.3], [0.4, 0.6], [0.5, 0.5], [0.9, 0.1]])
    st = depth_statistics(P, [0, 0, 1, 0], thresholds=[0.5, 0.75, 1.0])
    np.testing.assert_allclose(st["profile"], [0.75, 0.25, 0.0])


@pytest.mark.parametrize(
    "P, pred, kwargs, match",
    [
        (np.ones((3, 2)) / 2, [0, 1], {}, "expected 3 labels"),
        (np.ones((3, 2)) / 2, [0, 1, 2], {}, r"0\.\.1"),
        (np.ones((3, 2)) / 2, [0, -1, 1], {}, r"0\.\.1"),
        (np.ones((3, 2)) / 2, [0, 0.5, 1], {}, "integer"),
        (np.ones((3, 2)) / 2, [[0, 1, 1]], {}, "1-d"),
        (np.ones(3), [0, 1, 1], {}, "2-d"),
        (np.zeros((0, 2)), [], {}, "non-empty"),
        (np.array([[np.nan, 1.0], [0.5, 0.5]]), [0, 1], {}, "NaN"),
        (np.ones((3, 2)) / 2, [0, 1, 1], {"deltas": (0, 1.0)}, "deltas"),
        (np.ones((3, 2)) / 2, [0, 1, 1], {"deltas": (-0.1,)}, "deltas"),
    ],
)
def test_depth_statistics_bad_inputs(P, pred, kwargs, match):
    with pytest.raises(ValueError, match=match):
        depth_statistics(P, pred, **kwargs)


# ------------------------------------------------------------- feature noise
def test_feature_noise_scale_follows_column_std():
    rng = np.random.RandomState(2)
    X = rng.normal(size=(20000, 3)) * np.array([1.0, 10.0, 0.1]) + 5.0
    noisy = add_feature_noise(X, 0.5, random_state=0)
    diff = noisy - X
    np.testing.assert_allclose(diff.std(axis=0), 0.5 * X.std(axis=0), rtol=0.03)
    assert np.all(np.abs(diff.mean(axis=0)) < 0.05 * X.std(axis=0))


def test_feature_noise_given_scale_and_level_zero():
    X = np.zeros((20000, 2))
    noisy = add_feature_noise(X, 2.0, random_state=0, scale=[1.0, 0.0])
    assert noisy[:, 0].std() == pytest.approx(2.0, rel=0.03)
    assert np.all(noisy[:, 1] == 0.0)
    X = np.arange(12.0).reshape(4, 3)
    out = add_feature_noise(X, 0, random_state=0)
    np.testing.assert_array_equal(out, X)
    assert out is not X


def test_feature_noise_reproducible_and_input_untouched():
    X = np.random.RandomState(3).normal(size=(50, 4))
    X0 = X.copy()
    a = add_feature_noise(X, 0.3, random_state=7)
    b = add_feature_noise(X, 0.3, random_state=7)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(X, X0)
    assert not np.allclose(a, X)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"level": -0.1}, "level"), ({"level": 0.1, "scale": [1.0]}, "scale"), ({"level": float("nan")}, "level")],
)
def test_feature_noise_bad_inputs(kwargs, match):
    with pytest.raises(ValueError, match=match):
        add_feature_noise(np.ones((3, 2)), **kwargs)


def test_noisy_accuracy_degrades_with_noise():
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.RandomState(4)
    X = rng.normal(size=(400, 2))
    y = (X[:, 0] > 0).astype(int)
    clf = DecisionTreeClassifier(max_depth=1, random_state=0).fit(X, y)
    res = noisy_accuracy(clf, X, y, levels=(0, 0.5, 2.0), n_repeats=3, random_state=0)
    assert list(res) == [0.0, 0.5, 2.0]
    assert res[0.0] == pytest.approx(clf.score(X, y))
    assert res[0.0] > res[0.5] > res[2.0]
    again = noisy_accuracy(clf, X, y, levels=(0, 0.5, 2.0), n_repeats=3, random_state=0)
    assert again == res


# ---------------------------------------------------------------- label flips
def test_flip_labels_exact_count_and_never_same():
    rng = np.random.RandomState(5)
    y = rng.randint(0, 4, size=1000)
    y0 = y.copy()
    for frac in (0.0, 0.1, 0.333, 1.0):
        out = flip_labels(y, frac, random_state=0)
        assert (out != y).sum() == int(math.floor(frac * len(y) + 0.5))
        assert set(np.unique(out)) <= {0, 1, 2, 3}
    np.testing.assert_array_equal(y, y0)


def test_flip_labels_uniform_over_other_classes():
    y = np.zeros(30000, dtype=int)
    out = flip_labels(y, 1.0, n_classes=4, random_state=1)
    assert np.all(out != 0)
    counts = np.bincount(out, minlength=4)[1:]
    np.testing.assert_allclose(counts / counts.sum(), 1 / 3, atol=0.02)


def test_flip_labels_reproducible():
    y = np.arange(100) % 3
    a = flip_labels(y, 0.2, random_state=42)
    b = flip_labels(y, 0.2, random_state=42)
    c = flip_labels(y, 0.2, random_state=43)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_flip_labels_strings_and_given_classes():
    y = np.array(["cat", "dog", "cat", "dog"] * 5)
    out = flip_labels(y, 0.5, random_state=0)
    assert (out != y).sum() == 10
    assert set(out) <= {"cat", "dog"}
    # Given classes may include labels absent from y (and longer strings).
    out = flip_labels(y, 1.0, n_classes=["cat", "dog", "hamster"], random_state=0)
    assert np.all(out != y)
    assert "hamster" in set(out)


def test_flip_labels_rounding():
    y = np.arange(10) % 2
    assert (flip_labels(y, 0.25, random_state=0) != y).sum() == 3  # 2.5 rounds up
    assert (flip_labels(y, 0.04, random_state=0) != y).sum() == 0


@pytest.mark.parametrize(
    "y, frac, kwargs, match",
    [
        ([0, 1, 2], 1.5, {}, "fraction"),
        ([0, 1, 2], -0.1, {}, "fraction"),
        ([0, 0, 0], 0.5, {}, "at least 2 classes"),
        ([0, 1, 5], 0.5, {"n_classes": 3}, "not one of the classes"),
        ([[0, 1]], 0.5, {}, "1-d"),
    ],
)
def test_flip_labels_bad_inputs(y, frac, kwargs, match):
    with pytest.raises(ValueError, match=match):
        flip_labels(y, frac, **kwargs)
