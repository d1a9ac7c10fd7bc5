"""HistTreeClassifier and BinnedData: parity with scikit-learn's exact tree,
the set-valued criteria against a NumPy reference, weights, determinism,
bad input, scikit-learn conventions and the CREMBO integration."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.estimator_checks import parametrize_with_checks

import crembo
from crembo import BinnedData, HistTreeClassifier, tree_student
from crembo.compress.students import StudentTrainer
from crembo.trees.hist import resolve_student


# ---------------------------------------------------------------- helpers
def few_valued(seed, n=2000, d=6, levels=8, n_classes=4):
    """Integer features (few distinct values) and noisy labels: exact and
    histogram splits are the same candidates here."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, levels, size=(n, d)).astype(np.float64)
    score = 0.9 * X[:, 0] + 0.6 * X[:, 1] * (X[:, 2] > 3) - 0.4 * X[:, 3] + rng.normal(0, 1.5, n)
    y = np.digitize(score, np.quantile(score, np.linspace(0, 1, n_classes + 1)[1:-1]))
    return X, y


def assert_same_tree(sk, ht, *, exact_threshold=True):
    a, b = sk.tree_, ht.tree_
    assert a.node_count == b.node_count
    np.testing.assert_array_equal(a.children_left, b.children_left)
    np.testing.assert_array_equal(a.children_right, b.children_right)
    np.testing.assert_array_equal(a.feature, b.feature)
    if exact_threshold:
        np.testing.assert_array_equal(a.threshold, b.threshold)
    np.testing.assert_array_equal(a.n_node_samples, b.n_node_samples)
    np.testing.assert_allclose(a.weighted_n_node_samples, b.weighted_n_node_samples, rtol=1e-10)
    np.testing.assert_allclose(a.value, b.value, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(a.impurity, b.impurity, rtol=1e-7, atol=1e-10)


def sklearn_tree_is_tie_free(make, X, y, **fit):
    """scikit-learn breaks ties between equally good splits by a random
    feature order; a tree that does not change over 8 seeds very likely has
    none that matter (a two-way tie survives 8 seeds with odds 1/256)."""
    trees = [make(random_state=s).fit(X, y, **fit).tree_ for s in range(8)]
    return all(
        np.array_equal(t.feature, trees[0].feature) and np.array_equal(t.threshold, trees[0].threshold)
        for t in trees[1:]
    )


def brute_force_root(X, allowed, w, criterion, cw=None):
    """Best root split of the allowed-set criteria, by enumeration.

    Returns (feature, threshold). Scores follow the definitions: class mass
    a_c = sum w_i cw_c [c in A_i]; criterion weight omega_i = w_i * mean of
    cw over A_i; "gini": sum_c a_c^2 / W per child; "spread_gini": the same
    with each row's mass divided by |A_i|; "coverage": max_c a_c per child,
    Gini breaking ties.
    """
    C = allowed.shape[1]
    cw = np.ones(C) if cw is None else cw
    k = allowed.sum(axis=1)
    mass = allowed * w[:, None] * cw[None, :]
    omega = w * (allowed * cw[None, :]).sum(axis=1) / k
    channel = mass / k[:, None] if criterion == "spread_gini" else mass
    best, best_score = None, None
    for f in range(X.shape[1]):
        vals = np.unique(X[:, f])
        for lo, hi in zip(vals[:-1], vals[1:]):
            left = X[:, f] <= lo
            parts = [left, ~left]
            g = sum((channel[p].sum(axis=0) ** 2).sum() / omega[p].sum() for p in parts)
            cov = sum(mass[p].sum(axis=0).max() for p in parts)
            if criterion == "coverage":
                # equal coverage (up to rounding: 1e-9 of the weight) -> Gini
                tol = 1e-9 * omega.sum()
                better = (
                    best_score is None
                    or cov > best_score[0] + tol
                    or (abs(cov - best_score[0]) <= tol and g > best_score[1])
                )
            else:
                better = best_score is None or g > best_score[1]
            if better:
                best, best_score = (f, (lo + hi) / 2), (cov, g)
    return best


# --------------------------------------------------- parity with scikit-learn
# Seeds whose scikit-learn trees have no ties between candidate splits (the
# test checks it first): with ties scikit-learn picks by a random feature
# order and both trees are equally right.
@pytest.mark.parametrize("seed, depth", [(0, 3), (1, 3), (2, 3), (0, 6), (4, 6), (5, 6)])
def test_identical_to_sklearn_on_few_valued_features(seed, depth):
    X, y = few_valued(seed)
    assert sklearn_tree_is_tie_free(lambda **kw: DecisionTreeClassifier(max_depth=depth, **kw), X, y)
    sk = DecisionTreeClassifier(max_depth=depth, random_state=0).fit(X, y)
    ht = HistTreeClassifier(max_depth=depth).fit(X, y)
    assert_same_tree(sk, ht)
    np.testing.assert_array_equal(sk.predict(X), ht.predict(X))
    np.testing.assert_allclose(sk.predict_proba(X), ht.predict_proba(X))
    np.testing.assert_array_equal(sk.apply(X), ht.apply(X))


@pytest.mark.parametrize("n, levels, seed", [(240, None, 3), (3000, 200, 1)])
def test_identical_to_sklearn_small_nodes_without_histograms(n, levels, seed):
    # Nodes with fewer rows than a feature has bins sort their rows instead
    # of building histograms: 240 distinct values per feature (the whole tree
    # that way), or 200 levels on 3000 rows (histograms at the top only).
    # min_samples_leaf=5 keeps away the tiny nodes where different splits tie
    # to the last bit.
    rng = np.random.default_rng(n + seed)
    X = rng.normal(size=(n, 5)) if levels is None else rng.integers(0, levels, size=(n, 5)).astype(float)
    y = np.digitize(
        X[:, 0] + 0.5 * X[:, 1] + rng.normal(0, 0.7 * X[:, 0].std(), n), [-0.5, 0.5] if levels is None else [70, 130]
    )
    w = rng.uniform(0.5, 2.0, n)  # no ties between candidate splits
    make = lambda **kw: DecisionTreeClassifier(max_depth=6, min_samples_leaf=5, **kw)  # noqa: E731
    assert sklearn_tree_is_tie_free(make, X, y, sample_weight=w)
    sk = make(random_state=0).fit(X, y, sample_weight=w)
    assert sk.tree_.node_count > 30
    assert_same_tree(sk, HistTreeClassifier(max_depth=6, min_samples_leaf=5).fit(X, y, sample_weight=w))


def test_identical_to_sklearn_with_weights_class_weights_and_leaf_limits():
    X, y = few_valued(5)
    w = np.random.default_rng(5).uniform(0.2, 3.0, len(y))
    for params in (
        dict(max_depth=5, class_weight="balanced"),
        dict(max_depth=4, min_samples_leaf=20),
        dict(max_depth=5, min_samples_split=60),
        dict(max_depth=5, min_weight_fraction_leaf=0.02),
    ):
        make = lambda **kw: DecisionTreeClassifier(**params, **kw)  # noqa: E731
        assert sklearn_tree_is_tie_free(make, X, y, sample_weight=w)
        sk = make(random_state=0).fit(X, y, sample_weight=w)
        ht = HistTreeClassifier(**params).fit(X, y, sample_weight=w)
        assert_same_tree(sk, ht)


def test_best_first_growth_matches_sklearn_partition():
    X, y = few_valued(3)
    sk = DecisionTreeClassifier(max_leaf_nodes=12, random_state=0).fit(X, y)
    ht = HistTreeClassifier(max_leaf_nodes=12).fit(X, y)
    assert ht.get_n_leaves() == sk.get_n_leaves() == 12
    # Same leaves (node numbering may differ): same rows together, same shares.
    np.testing.assert_allclose(ht.predict_proba(X), sk.predict_proba(X))
    pairs = set(zip(ht.apply(X).tolist(), sk.apply(X).tolist()))
    assert len(pairs) == 12


def test_missing_values_go_to_the_better_side_like_sklearn():
    X, y = few_valued(7, n=1500)
    rng = np.random.default_rng(7)
    X[rng.random(X.shape) < 0.1] = np.nan
    make = lambda **kw: DecisionTreeClassifier(max_depth=4, **kw)  # noqa: E731
    assert sklearn_tree_is_tie_free(make, X, y)
    sk = make(random_state=0).fit(X, y)
    ht = HistTreeClassifier(max_depth=4).fit(X, y)
    assert_same_tree(sk, ht)
    np.testing.assert_array_equal(sk.tree_.missing_go_to_left, ht.tree_.missing_go_to_left)
    np.testing.assert_array_equal(sk.predict(X), ht.predict(X))


def test_missing_values_learned_side():
    # NaN rows belong with the low values: the split sends them left.
    x = np.r_[np.zeros(50), np.ones(50), np.full(30, np.nan)]
    y = np.r_[np.zeros(50), np.ones(50), np.zeros(30)].astype(int)
    ht = HistTreeClassifier(max_depth=1).fit(x[:, None], y)
    assert ht.tree_.missing_go_to_left[0] == 1
    assert ht.score(x[:, None], y) == 1.0
    # A feature without NaN at training: unseen NaN follows the bigger child.
    x2 = np.r_[np.zeros(70), np.ones(30)]
    y2 = np.r_[np.zeros(70), np.ones(30)].astype(int)
    ht = HistTreeClassifier(max_depth=1).fit(x2[:, None], y2)
    assert ht.predict([[np.nan]])[0] == 0


# --------------------------------------------------------------- binning
def test_binning_one_bin_per_value_and_quantiles():
    rng = np.random.default_rng(0)
    X = np.c_[rng.integers(0, 7, 5000), rng.normal(size=5000), np.r_[np.zeros(4000), rng.normal(size=1000)]]
    b = BinnedData(X)
    assert b.n_bins.tolist()[0] == 7
    assert b.n_bins[1] == 255
    counts = np.bincount(b._codes[1], minlength=255)
    assert counts.min() >= 5000 // 255 - 2 and counts.max() <= 5000 // 255 + 2
    # A heavy value gets a bin of its own; the rest share the others.
    heavy = np.bincount(b._codes[2]).max()
    assert heavy == 4000
    assert BinnedData(X, max_bins=16).n_bins.max() == 16


@pytest.mark.parametrize("subsample", [300, 200_000])
def test_thresholds_reproduce_the_binned_partition(subsample):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(4000, 5)) * np.array([1, 1e-3, 1e3, 1, 1])
    X[rng.random(X.shape) < 0.05] = np.nan
    y = (np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 3]) > 0).astype(int)
    binned = BinnedData(X, subsample=subsample)
    ht = HistTreeClassifier(max_depth=8).fit(binned, y)
    # The raw-value thresholds send every training row where the bins did.
    leaves = ht.apply(X)
    is_leaf = ht.tree_.children_left == -1
    np.testing.assert_array_equal(
        np.bincount(leaves, minlength=ht.tree_.node_count)[is_leaf], ht.tree_.n_node_samples[is_leaf]
    )


def test_export_arrays_walk_like_apply():
    X, y = load_iris(return_X_y=True)
    ht = HistTreeClassifier(max_depth=4).fit(X, y)
    t = ht.tree_
    Xf = X.astype(np.float32)
    leaves = []
    for row in Xf:
        k = 0
        while t.children_left[k] != -1:
            v = row[t.feature[k]]
            go_left = t.missing_go_to_left[k] if np.isnan(v) else float(v) <= t.threshold[k]
            k = t.children_left[k] if go_left else t.children_right[k]
        leaves.append(k)
    np.testing.assert_array_equal(leaves, ht.apply(X))
    assert t.value.shape == (t.node_count, 1, 3)
    np.testing.assert_allclose(t.value.sum(axis=2), 1.0)
    assert set(t.threshold[t.children_left == -1]) == {-2.0}


# ------------------------------------------------- set-valued targets
def random_allowed(rng, n, C, p=0.35):
    A = rng.random((n, C)) < p
    A[np.arange(n), rng.integers(0, C, n)] = True  # never empty
    return A


@pytest.mark.parametrize("criterion", ["gini", "coverage", "spread_gini"])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_allowed_root_split_matches_brute_force(criterion, seed):
    rng = np.random.default_rng(seed)
    n, C = 300, 4
    X = rng.integers(0, 6, size=(n, 3)).astype(float)
    A = random_allowed(rng, n, C)
    # allowed sets that depend on the features, so splits matter
    A[X[:, 0] <= 1, 0] = True
    A[X[:, 1] >= 4, 2] = True
    w = rng.uniform(0.5, 2.0, n)  # continuous weights: no exact ties
    cw = rng.uniform(0.5, 2.0, C)
    ht = HistTreeClassifier(max_depth=1, criterion=criterion, class_weight=dict(enumerate(cw)))
    ht.fit_allowed(X, A, sample_weight=w)
    f, thr = brute_force_root(X, A, w, criterion, cw)
    assert (ht.tree_.feature[0], ht.tree_.threshold[0]) == (f, thr)
    # Leaves predict the label of greatest allowed (class-weighted) mass.
    mass = A * w[:, None] * cw[None, :]
    for leaf in (1, 2):
        rows = ht.apply(X) == leaf
        m = mass[rows].sum(axis=0)
        np.testing.assert_allclose(ht.tree_.value[leaf, 0], m / m.sum())
        assert ht.tree_.node_class[leaf] == np.argmax(m)


def test_allowed_hand_made_cases():
    # One label allowed everywhere: the root is pure, nothing to split.
    X = np.arange(8, dtype=float)[:, None]
    A = np.array([[1, 1, 0], [0, 1, 1], [0, 1, 0], [1, 1, 1]] * 2, dtype=bool)
    ht = HistTreeClassifier(max_depth=3).fit_allowed(X, A, classes=["a", "b", "c"])
    assert ht.tree_.node_count == 1
    assert (ht.predict(X) == "b").all()

    # Low x allows {0}, high x allows {1, 2} or {2}: one split, leaves 0 and 2.
    X = np.r_[np.zeros(20), np.ones(20)][:, None]
    A = np.zeros((40, 3), dtype=bool)
    A[:20, 0] = True
    A[20:, 2] = True
    A[20:30, 1] = True
    for criterion in ("gini", "coverage", "spread_gini"):
        ht = HistTreeClassifier(max_depth=2, criterion=criterion).fit_allowed(X, A)
        assert ht.tree_.node_count == 3, criterion
        np.testing.assert_array_equal(ht.predict([[0.0], [1.0]]), [0, 2])

    # Label 1 is allowed almost everywhere, so the root is not pure only
    # because of 4 {0}-rows (feature 0 = 0) and 4 {2}-rows (feature 0 = 1).
    # Splitting on feature 0 lets label 0 cover the left side and label 2
    # the right: every point consistent. Feature 1 leaves 8 points uncovered.
    n = 48
    f0 = np.r_[np.zeros(24), np.ones(24)]
    f1 = np.r_[np.zeros(12), np.ones(12), np.zeros(12), np.ones(12)]
    A = np.zeros((n, 3), dtype=bool)
    A[:24, :2] = True
    A[24:, 1:] = True
    A[:4, 1] = False  # {0}
    A[24:28, 1] = False  # {2}
    X = np.c_[f0, f1]
    cov = HistTreeClassifier(max_depth=1, criterion="coverage").fit_allowed(X, A)
    assert cov.tree_.feature[0] == 0
    assert A[np.arange(n), cov.predict(X)].all()


def test_allowed_rows_with_empty_sets_are_left_out():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(200, 3))
    A = random_allowed(rng, 200, 3)
    A2 = A.copy()
    A2[::5] = False
    full = HistTreeClassifier(max_depth=4).fit_allowed(X[A2.any(axis=1)], A2[A2.any(axis=1)])
    part = HistTreeClassifier(max_depth=4).fit_allowed(X, A2)
    assert part.tree_.n_node_samples[0] == A2.any(axis=1).sum()
    np.testing.assert_array_equal(full.predict(X), part.predict(X))


def test_labels_equal_single_label_sets():
    X, y = few_valued(11, n=800)
    A = np.zeros((len(y), 4), dtype=bool)
    A[np.arange(len(y)), y] = True
    a = HistTreeClassifier(max_depth=5).fit(X, y)
    b = HistTreeClassifier(max_depth=5, criterion="gini").fit_allowed(X, A)
    np.testing.assert_array_equal(a.tree_.feature, b.tree_.feature)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    # "auto" is Gini for labels and coverage for sets
    c = HistTreeClassifier(max_depth=5).fit_allowed(X, A)
    d = HistTreeClassifier(max_depth=5, criterion="coverage").fit_allowed(X, A)
    np.testing.assert_array_equal(c.tree_.feature, d.tree_.feature)
    np.testing.assert_array_equal(c.tree_.threshold, d.tree_.threshold)
    e = HistTreeClassifier(max_depth=5, criterion="gini").fit(X, y)
    np.testing.assert_array_equal(a.tree_.threshold, e.tree_.threshold)


# ---------------------------------------------------- weights, determinism
def test_sample_weights():
    X, y = few_valued(2, n=600)
    rng = np.random.default_rng(2)
    w = rng.integers(1, 4, len(y))
    a = HistTreeClassifier(max_depth=4).fit(X, y, sample_weight=w)
    b = HistTreeClassifier(max_depth=4).fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    np.testing.assert_array_equal(a.tree_.feature, b.tree_.feature)
    np.testing.assert_array_equal(a.tree_.threshold, b.tree_.threshold)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X))
    c = HistTreeClassifier(max_depth=4).fit(X, y, sample_weight=3.5 * w)
    np.testing.assert_array_equal(a.tree_.feature, c.tree_.feature)
    # Zero weight everywhere but one class: that class everywhere.
    w0 = (y == 2).astype(float)
    assert (HistTreeClassifier().fit(X, y, sample_weight=w0).predict(X) == 2).all()
    with pytest.raises(ValueError, match="zero"):
        HistTreeClassifier().fit(X, y, sample_weight=np.zeros(len(y)))
    with pytest.raises(ValueError):
        HistTreeClassifier().fit(X, y, sample_weight=-np.ones(len(y)))


def test_class_weight_balanced_equals_its_sample_weights():
    X, y = few_valued(9, n=900)
    y = np.where(y == 3, 2, y)  # unequal classes
    counts = np.bincount(y)
    w = len(y) / (len(counts) * counts[y])
    a = HistTreeClassifier(max_depth=4, class_weight="balanced").fit(X, y)
    b = HistTreeClassifier(max_depth=4).fit(X, y, sample_weight=w)
    np.testing.assert_array_equal(a.tree_.threshold, b.tree_.threshold)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X))
    d = HistTreeClassifier(max_depth=4, class_weight={0: 5.0}).fit(X, y)
    e = HistTreeClassifier(max_depth=4).fit(X, y, sample_weight=np.where(y == 0, 5.0, 1.0))
    np.testing.assert_array_equal(d.tree_.threshold, e.tree_.threshold)
    with pytest.raises(ValueError, match="class_weight"):
        HistTreeClassifier(class_weight={7: 1.0}).fit(X, y)


def test_deterministic_threads_and_binned_reuse():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(30_000, 8))  # large enough for the threaded paths
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0.3).astype(int) + (X[:, 3] > 1)
    fits = [HistTreeClassifier(max_depth=7, n_jobs=t).fit(X, y) for t in (1, 2, 2)]
    for f in fits[1:]:
        for name in ("feature", "threshold", "children_left", "value"):
            np.testing.assert_array_equal(getattr(fits[0].tree_, name), getattr(f.tree_, name))
    binned = BinnedData(X)
    g = HistTreeClassifier(max_depth=7).fit(binned, y)
    np.testing.assert_array_equal(g.tree_.threshold, fits[0].tree_.threshold)
    # A row subset of the binned data is the subset of X (same bins).
    rows = rng.choice(len(X), 5000, replace=False)
    sub = HistTreeClassifier(max_depth=5).fit(binned.take(rows), y[rows])
    assert sub.tree_.n_node_samples[0] == 5000
    np.testing.assert_array_equal(binned.take(rows).take([1, 2]).rows, rows[[1, 2]])
    # the subset's leaves hold the rows the raw thresholds send there
    leaves = sub.apply(X[rows])
    is_leaf = sub.tree_.children_left == -1
    np.testing.assert_array_equal(
        np.bincount(leaves, minlength=sub.tree_.node_count)[is_leaf], sub.tree_.n_node_samples[is_leaf]
    )


# ------------------------------------------------ rows of weight 1 (counts)
def _tree_arrays(t):
    names = ("children_left", "children_right", "feature", "threshold", "missing_go_to_left", "split_bin")
    names += ("value", "n_node_samples", "impurity", "is_categorical", "cat_left")
    return {k: getattr(t, k) for k in names}


@pytest.mark.parametrize(
    "case", ["depth", "unlimited", "best_first", "categorical", "subset", "multiclass", "coverage", "zero_weights"]
)
def test_unit_weights_equal_the_weighted_path(case):
    """Rows of weight 1 are fitted from integer class counts (the native
    count mode: rows packed and partitioned, no float sums); the same rows
    all weighing 0.5 take the weighted path, where every sum is exactly half
    as large. The trees must be the same bit for bit."""
    rng = np.random.default_rng(11)
    n = 150_000 if case == "depth" else 40_000  # "depth": the threaded count passes too
    X = rng.normal(size=(n, 9))
    X[:, 0] = np.round(X[:, 0] * 2) + 4  # few values (codes 0..~9 for "categorical")
    X[:, 0] = np.clip(X[:, 0], 0, 9)
    X[rng.random(X.shape) < 0.03] = np.nan
    C = 5 if case in ("multiclass", "coverage") else 2
    score = np.nan_to_num(X[:, 0]) * 0.3 + np.nan_to_num(X[:, 1] * X[:, 2]) + rng.normal(0, 1, n)
    y = np.digitize(score, np.quantile(score, np.linspace(0, 1, C + 1)[1:-1]))
    params = dict(max_depth=8, n_jobs=2)
    if case == "unlimited":
        params = dict(max_depth=None, min_samples_leaf=3)  # small nodes sort their rows
    elif case == "best_first":
        params = dict(max_leaf_nodes=300, max_depth=12)
    elif case == "categorical":
        params = dict(max_depth=6, categorical_features=[0])
    elif case == "coverage":
        params = dict(max_depth=7, criterion="coverage")
    w = np.ones(n)
    if case == "zero_weights":
        w = (rng.random(n) < 0.8).astype(float)
    binned = BinnedData(X)
    if case == "subset":
        rows = rng.integers(0, n, size=n // 2)  # repeats too
        binned, y, w = binned.take(rows), y[rows], w[rows]
        params = dict(max_depth=10)
    unit = HistTreeClassifier(**params).fit(binned, y, sample_weight=None if case != "zero_weights" else w)
    half = HistTreeClassifier(**params).fit(binned, y, sample_weight=0.5 * w)
    assert unit.tree_.node_count > 20
    a, b = _tree_arrays(unit.tree_), _tree_arrays(half.tree_)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    np.testing.assert_array_equal(unit.tree_.weighted_n_node_samples, 2 * half.tree_.weighted_n_node_samples)


def _same_but_exact_ties(t1, t2, X, y, C):
    """Walks two fitted trees together from the root; a node where they split
    differently must be an exact tie on the rows that reach it (the same
    class counts go to the two sides, in either order), and their subtrees
    are not compared. Returns the matched nodes: their ids in t1 and in t2."""
    pairs = []

    def goes_left(t, i, rows):
        x = X[rows, t.feature[i]]
        return np.where(np.isnan(x), bool(t.missing_go_to_left[i]), x <= t.threshold[i])

    stack = [(0, 0, np.arange(len(X)))]
    while stack:
        i, k, rows = stack.pop()
        leaf1, leaf2 = t1.children_left[i] < 0, t2.children_left[k] < 0
        assert leaf1 == leaf2, (i, k)
        if leaf1:
            pairs.append((i, k))
            continue
        if (t1.feature[i], t1.threshold[i], t1.missing_go_to_left[i]) != (
            t2.feature[k],
            t2.threshold[k],
            t2.missing_go_to_left[k],
        ):
            sides = []
            for t, node in ((t1, i), (t2, k)):
                left = goes_left(t, node, rows)
                sides.append(sorted(np.bincount(y[rows][m], minlength=C).tolist() for m in (left, ~left)))
            assert sides[0] == sides[1], f"node {i}: not a tie: {sides}"
            continue
        pairs.append((i, k))
        left = goes_left(t1, i, rows)
        stack.append((t1.children_left[i], t2.children_left[k], rows[left]))
        stack.append((t1.children_right[i], t2.children_right[k], rows[~left]))
    return tuple(np.array(p) for p in zip(*pairs))


@pytest.mark.parametrize("case", ["balanced", "multiclass", "dyadic", "best_first", "zero_weights", "zero_class"])
def test_class_weights_from_counts_equal_the_weighted_path(case):
    """Rows whose weight is their class's weight (no sample weights, or
    sample weights of 0 and 1) are fitted from integer class counts times the
    class weights; the same rows with sample weights of 0.5 take the
    weighted path's running sums. The trees must be the same, their sums
    equal to rounding, except where two splits tie exactly: the counts then
    keep the first, where the running sums let rounding choose (checked on
    the rows: both splits send the same class counts to their two sides).
    "dyadic": weights that are powers of two make every sum exact, and an
    unlimited tree, whose small nodes sort their rows, is the same bit for
    bit. A class of weight 0 is left out on both paths."""
    rng = np.random.default_rng(12)
    n = 60_000
    X = rng.normal(size=(n, 7))
    X[rng.random(X.shape) < 0.03] = np.nan
    C = 2 if case == "balanced" else 5
    score = np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1] * X[:, 2]) + rng.normal(0, 1, n)
    cuts = np.quantile(score, [0.7] if C == 2 else [0.1, 0.3, 0.6, 0.9])
    y = np.digitize(score, cuts)
    cw = "balanced" if case in ("balanced", "zero_weights") else {0: 3.0, 1: 0.7, 2: 1.0, 3: 2.25, 4: 0.1}
    if case == "dyadic":
        cw = {0: 2.0, 1: 0.5, 2: 1.0, 3: 4.0, 4: 0.25}
    elif case == "zero_class":
        cw = {0: 3.0, 1: 0.0, 2: 1.0, 3: 2.25, 4: 0.1}
    params = dict(max_depth=8, n_jobs=2, class_weight=cw, min_weight_fraction_leaf=0.001)
    if case == "dyadic":
        params.update(max_depth=None, min_samples_leaf=3, min_weight_fraction_leaf=0.0)
    elif case == "best_first":
        params.update(max_leaf_nodes=200, max_depth=12)
    w = (rng.random(n) < 0.8).astype(float) if case == "zero_weights" else np.ones(n)
    binned = BinnedData(X)
    unit = HistTreeClassifier(**params).fit(binned, y, sample_weight=None if case != "zero_weights" else w)
    half = HistTreeClassifier(**params).fit(binned, y, sample_weight=0.5 * w)
    assert unit.tree_.node_count > 20
    a, b = _tree_arrays(unit.tree_), _tree_arrays(half.tree_)
    if case == "dyadic":
        assert unit.tree_.node_count > 5000
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    fit_rows = w > 0
    i, k = _same_but_exact_ties(unit.tree_, half.tree_, X[fit_rows], y[fit_rows], C)
    assert len(i) > 20
    # The weighted path takes a child's sums as its parent's less its
    # sibling's, so a class absent from a leaf can keep a share of 1e-15
    # there; the counts give exactly 0.
    for key, rtol, atol in (("value", 1e-9, 1e-11), ("impurity", 1e-9, 1e-11), ("n_node_samples", 0, 0)):
        np.testing.assert_allclose(a[key][i], b[key][k], rtol=rtol, atol=atol, err_msg=key)
    np.testing.assert_allclose(
        unit.tree_.weighted_n_node_samples[i], 2 * half.tree_.weighted_n_node_samples[k], rtol=1e-9
    )
    if len(i) == unit.tree_.node_count:  # no ties: the same predictions
        np.testing.assert_array_equal(unit.predict(X), half.predict(X))
    if case == "zero_class":
        assert not np.any(unit.predict(X) == 1)


def test_concurrent_fits_share_the_kept_buffer_safely():
    """Count-mode fits keep one buffer per process between fits; fits in
    several Python threads at once (the GIL released) each get their own or
    the kept one, and give the trees of sequential fits."""
    import threading

    rng = np.random.default_rng(5)
    X = rng.normal(size=(20_000, 6))
    binned = BinnedData(X)
    labels = [(X[:, k] + rng.normal(0, 0.5, len(X)) > 0).astype(int) for k in range(6)]
    sizes = [20_000, 5_000, 20_000, 12_000, 20_000, 3_000]  # buffers of different sizes

    def fit(k):
        return HistTreeClassifier(max_depth=6, n_jobs=1).fit(binned.take(np.arange(sizes[k])), labels[k][: sizes[k]])

    expected = [fit(k).tree_ for k in range(6)]
    got = [None] * 6

    def work(k):
        for _ in range(3):
            got[k] = fit(k).tree_

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(expected, got):
        np.testing.assert_array_equal(a.threshold, b.threshold)
        np.testing.assert_array_equal(a.value, b.value)


def test_release_buffers_frees_the_kept_buffer():
    """A count-mode fit leaves its packed rows for the next one; release_buffers
    frees them (their size in bytes), and fits after it give the same tree."""
    from crembo.trees.hist import release_buffers

    rng = np.random.default_rng(3)
    X = rng.normal(size=(5_000, 6))
    y = (X[:, 0] + rng.normal(0, 0.5, len(X)) > 0).astype(int)
    binned = BinnedData(X)
    release_buffers()
    first = HistTreeClassifier(max_depth=5).fit(binned, y)
    # 5,000 rows of 6 codes and a label, padded to 8 bytes: at least 40 kB.
    assert release_buffers() >= 5_000 * 8
    assert release_buffers() == 0
    HistTreeClassifier(max_depth=5).fit(binned, y, sample_weight=np.full(len(y), 0.5))  # float path: keeps none
    assert release_buffers() == 0
    again = HistTreeClassifier(max_depth=5).fit(binned, y)
    np.testing.assert_array_equal(first.tree_.threshold, again.tree_.threshold)
    np.testing.assert_array_equal(first.tree_.value, again.tree_.value)
    assert release_buffers() > 0


# --------------------------------------------------------------- bad input
def test_bad_input():
    X, y = few_valued(1, n=100)
    yf = y.astype(float)
    yf[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        HistTreeClassifier().fit(X, yf)
    with pytest.raises(ValueError, match="NaN"):
        HistTreeClassifier().fit(BinnedData(X), yf)
    with pytest.raises(ValueError, match="empty allowed set"):
        HistTreeClassifier().fit_allowed(X, np.zeros((100, 3), dtype=bool))
    with pytest.raises(ValueError, match="allowed"):
        HistTreeClassifier().fit_allowed(X, np.ones((99, 3), dtype=bool))
    with pytest.raises(ValueError, match="allowed"):
        HistTreeClassifier().fit_allowed(X, np.full((100, 3), 2))
    Xi = X.copy()
    Xi[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        HistTreeClassifier().fit(Xi, y)
    for bad in (
        dict(max_depth=0),
        dict(min_samples_leaf=0),
        dict(min_samples_split=1),
        dict(max_leaf_nodes=1),
        dict(criterion="entropy"),
        dict(max_bins=256),
        dict(class_weight="auto"),
        dict(n_jobs=0),
    ):
        with pytest.raises(ValueError):
            HistTreeClassifier(**bad).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        HistTreeClassifier().fit(X, y).predict(X[:, :3])
    with pytest.raises(IndexError):
        BinnedData(X).take([1000])


def test_one_feature_and_constant_features():
    x = np.linspace(0, 1, 50)[:, None]
    y = (x[:, 0] > 0.3).astype(int)
    assert HistTreeClassifier().fit(x, y).score(x, y) == 1.0
    Xc = np.ones((50, 3))
    ht = HistTreeClassifier().fit(Xc, y)
    assert ht.tree_.node_count == 1
    assert (ht.predict(Xc) == 1).all()  # the majority class
    Xn = np.full((50, 2), np.nan)
    assert HistTreeClassifier().fit(Xn, y).tree_.node_count == 1
    # one class: a single leaf
    assert (HistTreeClassifier().fit(x, np.zeros(50)).predict(x) == 0).all()


# ----------------------------------------------------- scikit-learn glue
def _expected_failures(est):
    if est.class_weight == "balanced":
        # Balanced weights come from the class counts, which repeating rows
        # changes and weighting them does not (scikit-learn's trees too).
        return {"check_sample_weight_equivalence_on_dense_data": "balanced class weights count rows"}
    return {}


@parametrize_with_checks(
    [HistTreeClassifier(), HistTreeClassifier(max_depth=3, class_weight="balanced", criterion="coverage")],
    expected_failed_checks=_expected_failures,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_pickle_and_string_labels():
    X, y = load_iris(return_X_y=True)
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    ht = HistTreeClassifier(max_depth=3).fit(X, labels)
    again = pickle.loads(pickle.dumps(ht))
    np.testing.assert_array_equal(again.predict(X), ht.predict(X))
    assert again.predict(X[:1]).dtype == labels.dtype
    # after a prediction too (the tree keeps a native evaluator it rebuilds)
    twice = pickle.loads(pickle.dumps(again))
    np.testing.assert_array_equal(twice.predict(X), ht.predict(X))
    binned = pickle.loads(pickle.dumps(BinnedData(X).take([0, 5, 9])))
    assert len(binned) == 3


# -------------------------------------------------------- CREMBO integration
def test_student_trainer_bins_once_and_reuses_bins():
    X, y = load_breast_cancer(return_X_y=True)
    calls = []

    class Counting(HistTreeClassifier):
        def bin_data(self, X):
            calls.append(X.shape)
            return super().bin_data(X)

    trainer = StudentTrainer(Counting(max_depth=3, criterion="gini"), np.array([0, 1]))
    t = y.copy()
    a = trainer.fit_labels(X, t)
    t2 = t.copy()
    t2[::4] = -1  # rows without a target: a subset of the same bins
    b = trainer.fit_labels(X, t2, np.linspace(1, 2, len(y)))
    mask = np.zeros((len(y), 2), dtype=bool)
    mask[np.arange(len(y)), y] = True
    c = trainer.fit_mask(X, mask)
    assert calls == [X.shape]
    assert b.tree_.n_node_samples[0] == (t2 >= 0).sum()
    keep = t2 >= 0
    ref = HistTreeClassifier(max_depth=3, criterion="gini").fit(
        BinnedData(X).take(keep), y[keep], np.linspace(1, 2, len(y))[keep]
    )
    np.testing.assert_array_equal(b.predict(X), ref.predict(X))
    np.testing.assert_array_equal(a.predict(X), c.predict(X))


def test_crembo_with_the_hist_tree_student():
    X, y = load_breast_cancer(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    for student, kw in ((tree_student(3), {}), ("tree:3", dict(oracle="single"))):
        clf = crembo.CREMBOClassifier(student=student, random_state=0, n_thresholds=8, **kw).fit(Xtr, ytr)
        assert isinstance(clf.student_, HistTreeClassifier)
        assert clf.student_.get_depth() <= 3
        assert clf.score(Xte, yte) > 0.85
    assert isinstance(resolve_student("tree:5"), HistTreeClassifier)
    assert resolve_student("tree:5").max_depth == 5
    with pytest.raises(ValueError, match="tree:<depth>"):
        resolve_student("forest")


def test_accuracy_near_sklearn_on_breast_cancer():
    X, y = load_breast_cancer(return_X_y=True)
    accs = {"sk": [], "ht": []}
    for seed in range(5):
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=seed, stratify=y)
        accs["sk"].append(DecisionTreeClassifier(max_depth=4, random_state=0).fit(Xtr, ytr).score(Xte, yte))
        accs["ht"].append(HistTreeClassifier(max_depth=4).fit(Xtr, ytr).score(Xte, yte))
    assert abs(np.mean(accs["ht"]) - np.mean(accs["sk"])) < 0.03


def test_export_reads_the_tree():
    export = pytest.importorskip("crembo.trees.export")
    X, y = load_iris(return_X_y=True)
    X = X.copy()
    X[::7, 1] = np.nan
    A = np.eye(3, dtype=bool)[y] | (np.arange(len(y)) % 5 == 0)[:, None]
    for ht in (
        HistTreeClassifier(max_depth=4).fit(X, y),
        HistTreeClassifier(max_depth=4).fit_allowed(X, A, classes=np.array(["a", "b", "c"])),
    ):
        fast = export.FastTree.from_sklearn(ht)
        np.testing.assert_array_equal(fast.predict(X), ht.predict(X))
        np.testing.assert_allclose(fast.predict_proba(X), ht.predict_proba(X))


# ------------------------------------------ n_jobs is the thread-count name
def test_n_threads_is_a_deprecated_alias_of_n_jobs_everywhere():
    # Issue 14, item 6: n_jobs everywhere; each old n_threads keyword still
    # works, with a DeprecationWarning (also a FutureWarning), and gives the
    # same answer.
    import warnings

    from crembo._deprecation import CremboDeprecationWarning

    X, y = few_valued(0, n=600)
    assert issubclass(CremboDeprecationWarning, DeprecationWarning)
    assert issubclass(CremboDeprecationWarning, FutureWarning)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new names warn of nothing
        new = HistTreeClassifier(max_depth=3, n_jobs=2).fit(BinnedData(X, n_jobs=2), y)
        leaves = new.tree_.apply(X.astype(np.float32), n_jobs=2)
        assert np.array_equal(new.tree_.apply(X.astype(np.float32), 1), leaves)
    with pytest.warns(DeprecationWarning, match=r"BinnedData: n_threads is deprecated.*use n_jobs"):
        binned = BinnedData(X, n_threads=2)
    with pytest.warns(DeprecationWarning, match=r"HistTreeClassifier: n_threads is deprecated.*use n_jobs"):
        old = HistTreeClassifier(max_depth=3, n_threads=2).fit(binned, y)
    with pytest.warns(DeprecationWarning, match=r"HistTree.apply: n_threads is deprecated.*use n_jobs"):
        assert np.array_equal(old.tree_.apply(X.astype(np.float32), n_threads=2), leaves)
    assert np.array_equal(old.predict(X), new.predict(X))
    with pytest.raises(ValueError, match="n_jobs: expected None or an integer >= 1"):
        BinnedData(X, n_jobs=0)


def test_apply_without_checking_input():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(2000, 5))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    clf = HistTreeClassifier(max_depth=5).fit(X, y)
    for Z in (X, X.astype(np.float32)):
        np.testing.assert_array_equal(clf.apply(Z, check_input=False), clf.apply(Z))
    for bad in (X[:, :4], X.tolist(), X.astype(int), X[0]):
        with pytest.raises(ValueError, match="check_input=False"):
            clf.apply(bad, check_input=False)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        HistTreeClassifier().apply(X, check_input=False)


# ------------------------------------------------ walking the bin codes
@pytest.mark.parametrize("depth", [1, 3, 6, None])
def test_apply_binned_equals_apply_on_the_raw_rows(depth):
    rng = np.random.default_rng(depth or 0)
    X, y = few_valued(depth or 0, n=1500)
    X = np.c_[X, rng.normal(size=len(X)), rng.normal(size=len(X)).round(1)]
    X[rng.random(X.shape) < 0.05] = np.nan  # missing values in every column
    binned = BinnedData(X)
    est = HistTreeClassifier(max_depth=depth).fit(binned, y)
    raw = est.apply(X)
    np.testing.assert_array_equal(est.tree_.apply_binned(binned, X), raw)
    # A take (repeats, any order) walks its own rows.
    rows = rng.integers(0, len(X), 700)
    np.testing.assert_array_equal(est.tree_.apply_binned(binned.take(rows), X), raw[rows])
    # A tree fitted on a take walks the rows it never saw: where a bin
    # empty at a node holds values on both sides of its threshold, the raw
    # value decides (the threshold lies midway between occupied bins).
    sub = HistTreeClassifier(max_depth=depth).fit(binned.take(rows[:300]), y[rows[:300]])
    np.testing.assert_array_equal(sub.tree_.apply_binned(binned, X), sub.apply(X))
    np.testing.assert_array_equal(sub.tree_.apply_binned(binned, X.astype(np.float32), 1), sub.apply(X))
    # Set-valued fits walk the same way; a tree fitted on other bins too.
    allowed = np.eye(4, dtype=bool)[y] | (rng.random((len(y), 4)) < 0.2)
    est_a = HistTreeClassifier(max_depth=depth, criterion="coverage").fit_allowed(X[:900], allowed[:900])
    np.testing.assert_array_equal(est_a.tree_.apply_binned(binned, X), est_a.apply(X))


def test_apply_binned_straddling_bins_read_the_raw_value():
    # Sampled bins (the edges from 200 rows of 5,000): most bins hold
    # values on both sides of some threshold of a tree fitted on few rows.
    rng = np.random.default_rng(7)
    X = rng.normal(size=(5000, 3))
    y = (X[:, 0] + X[:, 1] ** 2 > 0.7).astype(int)
    binned = BinnedData(X, subsample=200, max_bins=16)
    est = HistTreeClassifier(max_depth=5).fit(X[:400], y[:400])
    np.testing.assert_array_equal(est.tree_.apply_binned(binned, X), est.apply(X))
    with pytest.raises(ValueError, match="straddles a threshold and no raw rows"):
        crembo._core.hist_leaves(
            binned._codes,
            binned.n_bins,
            binned._lo,
            binned._hi,
            None,
            None,
            est.tree_.children_left,
            est.tree_.children_right,
            est.tree_.feature,
            est.tree_.threshold,
            est.tree_.missing_go_to_left,
        )


def test_apply_binned_categorical_splits_and_a_lone_leaf():
    rng = np.random.default_rng(5)
    c = rng.integers(0, 9, 3000).astype(float)
    c[rng.random(3000) < 0.05] = np.nan
    X = np.c_[c, rng.normal(size=3000)]
    y = np.where(np.isnan(c), 2, np.array([0, 1, 2, 1, 0, 2, 2, 1, 0])[np.nan_to_num(c).astype(int)])
    y = np.where(X[:, 1] > 1.0, 1, y)
    binned = BinnedData(X)
    est = HistTreeClassifier(max_depth=3, categorical_features=[0]).fit(binned, y)
    assert est.tree_.is_categorical.any()
    np.testing.assert_array_equal(est.tree_.apply_binned(binned, X), est.apply(X))
    lone = HistTreeClassifier().fit(binned, np.zeros(len(y), dtype=int))  # one class: the root is a leaf
    assert lone.tree_.node_count == 1
    np.testing.assert_array_equal(lone.tree_.apply_binned(binned, X), np.zeros(len(y)))


def test_apply_binned_bad_input():
    X, y = few_valued(1)
    binned = BinnedData(X)
    est = HistTreeClassifier(max_depth=3).fit(binned, y)
    t = est.tree_
    with pytest.raises(TypeError, match="BinnedData"):
        t.apply_binned(X, X)
    with pytest.raises(ValueError, match="raw values, shape"):
        t.apply_binned(binned, X[:, :-1])
    # The native walk checks the tree it is given: a clear error, no crash.
    args = [binned._codes, binned.n_bins, binned._lo, binned._hi, None, X]

    def walk(**change):
        arrays = dict(
            children_left=t.children_left,
            children_right=t.children_right,
            feature=t.feature,
            threshold=t.threshold,
            missing_go_to_left=t.missing_go_to_left,
        )
        arrays.update(change)
        return crembo._core.hist_leaves(*args, **arrays)

    np.testing.assert_array_equal(walk(), est.apply(X))
    loop = t.children_left.copy()
    loop[0] = 0
    with pytest.raises(ValueError, match="children must be distinct nodes stored after their parent"):
        walk(children_left=loop)
    far = t.feature.copy()
    far[0] = X.shape[1]
    with pytest.raises(ValueError, match="split feature outside"):
        walk(feature=far)
    with pytest.raises(ValueError, match="expected"):
        walk(feature=t.feature[:-1])
    with pytest.raises(ValueError, match="row index out of range"):
        crembo._core.hist_leaves(
            *args[:4],
            np.array([0, len(X)]),
            X,
            t.children_left,
            t.children_right,
            t.feature,
            t.threshold,
            t.missing_go_to_left,
        )


def test_student_trainer_walks_the_codes_of_the_rows_it_binned(monkeypatch):
    X, y = load_breast_cancer(return_X_y=True)
    trainer = StudentTrainer(HistTreeClassifier(max_depth=3), np.array([0, 1]))
    targets = y.copy()
    targets[::3] = -1
    est = trainer.fit_labels(X, targets)
    assert est.tree_.fitted_on(trainer._binned(X))
    calls = []
    real = crembo._core.hist_leaves
    monkeypatch.setattr(crembo._core, "hist_leaves", lambda *a, **k: calls.append(1) or real(*a, **k))
    np.testing.assert_array_equal(trainer.apply(est, X), est.apply(X))
    np.testing.assert_array_equal(trainer.predict_index(est, X), est.predict(X))
    assert len(calls) == 2
    # Other rows, or a tree fitted elsewhere, are walked on their values.
    Xc = X.copy()
    np.testing.assert_array_equal(trainer.apply(est, Xc), est.apply(X))
    outside = HistTreeClassifier(max_depth=3).fit(X, y)
    assert not outside.tree_.fitted_on(trainer._binned(X))
    np.testing.assert_array_equal(trainer.predict_index(outside, X), outside.predict(X))
    assert len(calls) == 2
    # The link to the bins stays in this process: a pickled copy has none.
    copy = pickle.loads(pickle.dumps(est))
    assert not copy.tree_.fitted_on(trainer._binned(X))
    np.testing.assert_array_equal(copy.apply(X), est.apply(X))
