"""teacher_beliefs: vote shares of ensembles, predict_proba, callables."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris, load_wine
from sklearn.ensemble import (
    BaggingClassifier,
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    RandomForestClassifier,
    VotingClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from crembo import teacher_beliefs
from crembo.compress.teachers import is_voting_ensemble, teacher_classes


@pytest.fixture(scope="module")
def wine():
    X, y = load_wine(return_X_y=True)
    return X, y


def numpy_vote_shares(teacher, X):
    """The belief of a voting ensemble recomputed from its members."""
    C = len(teacher.classes_)
    features = getattr(teacher, "estimators_features_", None)
    votes = []
    for k, member in enumerate(teacher.estimators_):
        Xk = X if features is None else X[:, features[k]]
        votes.append(np.asarray(member.predict(Xk)).astype(int))
    votes = np.array(votes)  # (n_members, n)
    return np.stack([(votes == c).mean(axis=0) for c in range(C)], axis=1)


ENSEMBLES = {
    "random_forest": lambda: RandomForestClassifier(n_estimators=15, max_depth=4, random_state=0),
    "extra_trees": lambda: ExtraTreesClassifier(n_estimators=15, max_depth=4, random_state=0),
    "bagging_trees_feature_subsets": lambda: BaggingClassifier(
        DecisionTreeClassifier(max_depth=3), n_estimators=15, max_features=0.5, bootstrap_features=True, random_state=0
    ),
    "bagging_knn_feature_subsets": lambda: BaggingClassifier(
        KNeighborsClassifier(n_neighbors=5), n_estimators=7, max_features=0.4, random_state=0
    ),
    "hard_voting": lambda: VotingClassifier(
        [
            ("lr", make_pipeline(StandardScaler(), LogisticRegression())),
            ("dt", DecisionTreeClassifier(max_depth=2, random_state=0)),
            ("dt3", DecisionTreeClassifier(max_depth=3, random_state=0)),
        ]
    ),
}


@pytest.mark.parametrize("name", list(ENSEMBLES))
def test_vote_shares_match_numpy(wine, name):
    X, y = wine
    teacher = ENSEMBLES[name]().fit(X, y)
    assert is_voting_ensemble(teacher)
    expected = numpy_vote_shares(teacher, X)
    P = teacher_beliefs(teacher, X)
    assert P.shape == (len(X), 3) and P.dtype == np.float64
    np.testing.assert_allclose(P, expected, atol=1e-12)
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    np.testing.assert_allclose(teacher_beliefs(teacher, X, method="votes"), expected, atol=1e-12)
    np.testing.assert_allclose(teacher_beliefs(teacher, X, n_jobs=2), expected, atol=1e-12)
    # votes are shares of members: multiples of 1/n_members
    m = len(teacher.estimators_)
    np.testing.assert_allclose(P * m, np.round(P * m), atol=1e-9)


def test_feature_subsets_matter(wine):
    # Reading every member on all features would be wrong: the belief must
    # follow estimators_features_.
    X, y = wine
    teacher = ENSEMBLES["bagging_trees_feature_subsets"]().fit(X, y)
    subsets = teacher.estimators_features_
    assert any(len(f) < X.shape[1] for f in subsets)
    # Shuffle the features each member does *not* use: votes must not change.
    rng = np.random.default_rng(0)
    P = teacher_beliefs(teacher, X)
    used = np.unique(np.concatenate(subsets))
    unused = np.setdiff1d(np.arange(X.shape[1]), used)
    X2 = X.copy()
    X2[:, unused] = rng.normal(size=(len(X), unused.size))
    np.testing.assert_allclose(teacher_beliefs(teacher, X2), P)


def test_string_labels_votes(wine):
    X, y = wine
    ys = np.array(["barolo", "grignolino", "barbera"])[y]
    teacher = RandomForestClassifier(n_estimators=10, max_depth=3, random_state=0).fit(X, ys)
    P = teacher_beliefs(teacher, X)
    # columns follow teacher.classes_ (sorted labels)
    np.testing.assert_array_equal(teacher_classes(teacher), np.sort(np.unique(ys)))
    np.testing.assert_allclose(P, numpy_vote_shares(teacher, X))
    agree = teacher.classes_[P.argmax(axis=1)] == teacher.predict(X)
    assert agree.mean() > 0.9


def test_dataframe_and_float32_input(wine):
    X, y = wine
    teacher = RandomForestClassifier(n_estimators=10, max_depth=3, random_state=0).fit(X, y)
    P = teacher_beliefs(teacher, X)
    np.testing.assert_allclose(teacher_beliefs(teacher, pd.DataFrame(X)), P)
    np.testing.assert_allclose(teacher_beliefs(teacher, X.astype(np.float32)), P)
    np.testing.assert_allclose(teacher_beliefs(teacher, np.asfortranarray(X)), P)


def test_bagging_non_tree_members_on_dataframe(wine):
    X, y = wine
    teacher = ENSEMBLES["bagging_knn_feature_subsets"]().fit(X, y)
    expected = numpy_vote_shares(teacher, X)
    np.testing.assert_allclose(teacher_beliefs(teacher, pd.DataFrame(X)), expected)
    np.testing.assert_allclose(teacher_beliefs(teacher, X.tolist()), expected)


def test_bagging_of_pipelines_votes(wine):
    X, y = wine
    teacher = BaggingClassifier(
        make_pipeline(StandardScaler(), LogisticRegression()), n_estimators=7, max_features=0.4, random_state=0
    ).fit(X, y)
    assert is_voting_ensemble(teacher)
    np.testing.assert_allclose(teacher_beliefs(teacher, X), numpy_vote_shares(teacher, X))


def test_forest_proba_method(wine):
    X, y = wine
    teacher = RandomForestClassifier(n_estimators=10, max_depth=3, random_state=0).fit(X, y)
    np.testing.assert_allclose(teacher_beliefs(teacher, X, method="proba"), teacher.predict_proba(X))
    # votes and averaged leaf probabilities are different beliefs
    assert not np.allclose(teacher_beliefs(teacher, X, method="votes"), teacher.predict_proba(X))


@pytest.mark.parametrize(
    "make",
    [
        lambda: GradientBoostingClassifier(n_estimators=15, max_depth=2, random_state=0),
        lambda: make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(8,), max_iter=300, random_state=0)),
        lambda: make_pipeline(StandardScaler(), LogisticRegression()),
    ],
    ids=["gradient_boosting", "mlp", "logreg"],
)
def test_predict_proba_teachers(wine, make):
    X, y = wine
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        teacher = make().fit(X, y)
    assert not is_voting_ensemble(teacher)
    P = teacher_beliefs(teacher, X)
    np.testing.assert_allclose(P, teacher.predict_proba(X))
    np.testing.assert_allclose(teacher_beliefs(teacher, X, method="proba"), P)
    with pytest.raises(TypeError, match="belief='votes' needs a fitted voting ensemble"):
        teacher_beliefs(teacher, X, method="votes")


def test_gradient_boosting_is_not_a_voting_ensemble(wine):
    X, y = wine
    gb = GradientBoostingClassifier(n_estimators=3, random_state=0).fit(X, y)
    assert getattr(gb, "estimators_", None) is not None  # regressors: not hypotheses over labels
    assert not is_voting_ensemble(gb)
    assert not is_voting_ensemble(RandomForestClassifier())  # unfitted
    assert teacher_classes(gb).tolist() == [0, 1, 2]
    assert teacher_classes(lambda Z: Z) is None


def test_callable_teacher(wine):
    X, y = wine
    rng = np.random.default_rng(0)
    P0 = rng.dirichlet(np.ones(3), size=len(X))
    calls = []

    def teacher(Z):
        calls.append(len(Z))
        return P0[: len(Z)]

    np.testing.assert_allclose(teacher_beliefs(teacher, X), P0)
    assert calls == [len(X)]
    f32 = teacher_beliefs(lambda Z: P0.astype(np.float32), X)
    assert f32.dtype == np.float32
    np.testing.assert_allclose(teacher_beliefs(lambda Z: 2 * P0, X, normalize=True), P0)
    with pytest.raises(ValueError, match="sums to"):
        teacher_beliefs(lambda Z: 2 * P0, X)
    with pytest.raises(ValueError, match="teacher: returned beliefs for 10 rows, expected 178"):
        teacher_beliefs(lambda Z: P0[:10], X)
    with pytest.raises(ValueError, match="teacher: returned 3 classes, expected 4"):
        teacher_beliefs(teacher, X, n_classes=4)
    with pytest.raises(ValueError, match=r"teacher\(X\): expected a 2-d array"):
        teacher_beliefs(lambda Z: P0[:, 0], X)
    with pytest.raises(ValueError, match="non-finite"):
        teacher_beliefs(lambda Z: np.full_like(P0, np.nan), X)
    with pytest.raises(ValueError, match="negative"):
        teacher_beliefs(lambda Z: P0 - 0.5, X)
    with pytest.raises(TypeError, match="belief='votes'"):
        teacher_beliefs(teacher, X, method="votes")


def test_bad_teachers_and_methods(wine):
    X, y = wine
    iris_X, iris_y = load_iris(return_X_y=True)
    svc = SVC().fit(iris_X, iris_y)  # no probability estimates
    with pytest.raises(TypeError, match="teacher: SVC has neither ensemble members.*nor predict_proba"):
        teacher_beliefs(svc, iris_X)
    with pytest.raises(TypeError, match="has neither"):
        teacher_beliefs(object(), X)
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="belief: expected one of 'auto', 'votes', 'proba'"):
        teacher_beliefs(forest, X, method="mean")
    with pytest.raises(ValueError, match="teacher: returned 3 classes, expected 2"):
        teacher_beliefs(forest, X, n_classes=2)


# ------------------------------------------------------- the native forest
# Forests, extra trees and bagged trees are counted by crembo._core.VoteForest
# (crembo.compress.teachers._native_beliefs); everything else by the members' predict.
from crembo import _core  # noqa: E402
from crembo.compress import teachers as _teachers  # noqa: E402


def _no_member_predict(monkeypatch):
    def fail(*a, **k):
        raise AssertionError("the members' predict was used instead of the native forest")

    monkeypatch.setattr(_teachers, "_member_votes", fail)


@pytest.fixture(scope="module")
def noisy():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 6))
    X[:, 5] = np.round(X[:, 5])  # a feature with ties at split thresholds
    y = (X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=1.0, size=3000) > 0).astype(int) + (X[:, 2] > 1)
    return X, y


NATIVE = {
    "deep_forest": lambda: RandomForestClassifier(n_estimators=12, random_state=0),
    "extra_trees": lambda: ExtraTreesClassifier(n_estimators=12, random_state=0),
    "bagging_subsets": lambda: BaggingClassifier(
        DecisionTreeClassifier(),
        n_estimators=12,
        max_features=0.5,
        max_samples=0.3,
        bootstrap_features=True,
        random_state=0,
    ),
}


@pytest.mark.parametrize("name", list(NATIVE))
def test_native_forest_counts_exactly_the_member_votes(noisy, name, monkeypatch):
    X, y = noisy
    teacher = NATIVE[name]().fit(X[:2000], y[:2000])
    expected = numpy_vote_shares(teacher, X)
    _no_member_predict(monkeypatch)
    for n_jobs in (None, 1, 2, -1):
        np.testing.assert_array_equal(teacher_beliefs(teacher, X, n_jobs=n_jobs), expected)
    np.testing.assert_array_equal(teacher_beliefs(teacher, X.astype(np.float32)), expected)
    np.testing.assert_array_equal(teacher_beliefs(teacher, np.asfortranarray(X)), expected)
    np.testing.assert_array_equal(teacher_beliefs(teacher, pd.DataFrame(X)), expected)
    np.testing.assert_array_equal(teacher_beliefs(teacher, X[:7]), expected[:7])  # fewer rows than a block
    forest = _teachers._native_forest(teacher, teacher.estimators_)
    for block_rows in (1, 7, 8, 1000):  # blocks that split the 8-row lanes and leave tails
        np.testing.assert_array_equal(forest.beliefs(X, 2, block_rows), expected)


def test_native_forest_members_missing_a_class(monkeypatch):
    # A member that never saw a class has a shorter classes_ (scikit-learn's
    # bagging passes bootstrap counts as weights, so its own members keep
    # every class; a member refitted by hand does not): its votes must be
    # mapped through its classes_.
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 3))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 1)
    teacher = BaggingClassifier(DecisionTreeClassifier(max_depth=3), n_estimators=6, random_state=0).fit(X, y)
    keep = y != 0
    teacher.estimators_[2].fit(X[keep], y[keep])
    assert list(teacher.estimators_[2].classes_) == [1, 2]
    expected = numpy_vote_shares(teacher, X)
    _no_member_predict(monkeypatch)
    np.testing.assert_array_equal(teacher_beliefs(teacher, X), expected)


def test_native_forest_missing_values(noisy):
    X, y = noisy
    Xn = X.copy()
    Xn[::7, 0] = np.nan
    Xn[::5, 3] = np.nan
    teacher = RandomForestClassifier(n_estimators=8, random_state=0).fit(Xn[:2000], y[:2000])
    expected = numpy_vote_shares(teacher, Xn)
    # teacher_beliefs leaves NaN to scikit-learn; the native forest follows
    # each node's missing_go_to_left and must agree with it.
    np.testing.assert_array_equal(teacher_beliefs(teacher, Xn), expected)
    forest = _teachers._native_forest(teacher, teacher.estimators_)
    np.testing.assert_array_equal(forest.beliefs(Xn), expected)
    # NaN in some row blocks only: each block is walked by the step for what
    # it holds (the NaN-free step never sends a value left past a NaN test),
    # with contiguous rows and with strided ones.
    Xp = X.copy()
    Xp[150:160, 0] = np.nan
    Xp[2500, 3] = np.nan
    expected_p = numpy_vote_shares(teacher, Xp)
    assert not np.array_equal(expected_p, numpy_vote_shares(teacher, np.nan_to_num(Xp, nan=1e9)))
    for block_rows in (0, 100, 1000):
        np.testing.assert_array_equal(forest.beliefs(Xp, 2, block_rows), expected_p)
        np.testing.assert_array_equal(forest.beliefs(np.asfortranarray(Xp), 2, block_rows), expected_p)


def test_native_forest_is_cached_until_refit(noisy):
    X, y = noisy
    teacher = RandomForestClassifier(n_estimators=5, max_depth=6, random_state=0).fit(X, y)
    first = _teachers._native_forest(teacher, teacher.estimators_)
    assert _teachers._native_forest(teacher, teacher.estimators_) is first
    teacher.set_params(random_state=1).fit(X[:1000], y[:1000])
    second = _teachers._native_forest(teacher, teacher.estimators_)
    assert second is not first
    np.testing.assert_array_equal(teacher_beliefs(teacher, X), numpy_vote_shares(teacher, X))


def test_native_forest_bad_input(noisy):
    X, y = noisy
    teacher = RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="X has 5 features, but the forest was built for 6"):
        _teachers._native_forest(teacher, teacher.estimators_).beliefs(X[:, :5])
    with pytest.raises(ValueError, match="features"):
        teacher_beliefs(teacher, X[:, :5])  # scikit-learn's own message
    with pytest.raises(ValueError, match="infinity|too large"):
        teacher_beliefs(teacher, np.full((3, 6), np.inf))

    empty = _core.VoteForest(2, 2)
    with pytest.raises(ValueError, match="no trees"):
        empty.beliefs(np.zeros((1, 2)))
    with pytest.raises(ValueError, match="n_classes"):
        _core.VoteForest(2, 0)
    stump = dict(
        children_left=[1, -1, -1],
        children_right=[2, -1, -1],
        feature=[0, -2, -2],
        threshold=[0.5, -2.0, -2.0],
        leaf_class=[-1, 0, 1],
    )
    good = _core.VoteForest(2, 2)
    good.add_tree(**stump)
    np.testing.assert_array_equal(good.beliefs(np.array([[0.0, 9.0], [1.0, 9.0]])), [[1.0, 0.0], [0.0, 1.0]])
    cases = [
        (dict(leaf_class=[-1, 0, 2]), "leaf class outside"),
        (dict(threshold=[np.nan, -2.0, -2.0]), "NaN threshold"),
        (dict(feature=[2, -2, -2]), "split feature outside"),
        (dict(children_left=[0, -1, -1]), "stored after their parent"),
        (dict(children_left=[1, -1, 1], children_right=[2, -1, -1]), "a leaf must have"),
        (dict(children_right=[1, -1, -1]), "distinct"),
        (dict(threshold=[0.5, -2.0]), "one per node"),
    ]
    for change, message in cases:
        bad = _core.VoteForest(2, 2)
        with pytest.raises(ValueError, match=message):
            bad.add_tree(**dict(stump, **change))
        assert bad.n_trees == 0 and bad.node_count == 0  # a rejected tree leaves nothing behind
    unreachable = _core.VoteForest(2, 2)
    with pytest.raises(ValueError, match="not reachable"):
        unreachable.add_tree(
            children_left=[1, -1, -1, -1],
            children_right=[2, -1, -1, -1],
            feature=[0, -2, -2, -2],
            threshold=[0.5, -2, -2, -2],
            leaf_class=[-1, 0, 1, 0],
        )


def test_teacher_beliefs_checks_the_device(wine):
    X, y = wine
    teacher = RandomForestClassifier(n_estimators=3, max_depth=2, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="device"):
        teacher_beliefs(teacher, X, device="gpu")


def test_forest_beliefs_check_column_names_like_predict(wine):
    X, y = wine
    df = pd.DataFrame(X, columns=[f"f{j}" for j in range(X.shape[1])])
    teacher = RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0).fit(df, y)
    np.testing.assert_array_equal(teacher_beliefs(teacher, df), numpy_vote_shares(teacher, X))
    with pytest.raises(ValueError, match="feature names"):
        teacher_beliefs(teacher, df[df.columns[::-1]])  # same count, other order: predict refuses it too


def test_weighted_and_soft_voting(wine):
    X, y = wine
    members = [
        ("a", DecisionTreeClassifier(max_depth=1, random_state=0)),
        ("b", DecisionTreeClassifier(max_depth=2, random_state=0)),
        ("c", DecisionTreeClassifier(max_depth=3, random_state=0)),
    ]
    weighted = VotingClassifier(members, weights=[10, 1, 1]).fit(X, y)
    P = teacher_beliefs(weighted, X)
    votes = np.array([m.predict(X) for m in weighted.estimators_]).astype(int)
    expected = np.zeros((len(X), 3))
    for k, w in enumerate([10, 1, 1]):
        expected[np.arange(len(X)), votes[k]] += w / 12
    np.testing.assert_allclose(P, expected)
    np.testing.assert_array_equal(weighted.classes_[P.argmax(axis=1)], weighted.predict(X))
    soft = VotingClassifier(members, voting="soft").fit(X, y)
    assert not is_voting_ensemble(soft)
    np.testing.assert_allclose(teacher_beliefs(soft, X), soft.predict_proba(X))


def test_frozen_forest_is_read_through_its_members(wine):
    from sklearn.frozen import FrozenEstimator

    X, y = wine
    forest = RandomForestClassifier(n_estimators=7, max_depth=3, random_state=0).fit(X, y)
    frozen = FrozenEstimator(forest)
    assert is_voting_ensemble(frozen)
    np.testing.assert_array_equal(teacher_beliefs(frozen, X), teacher_beliefs(forest, X))
    np.testing.assert_array_equal(teacher_classes(frozen), forest.classes_)


def test_normalize_errors_name_the_teacher(wine):
    X, _ = wine
    with pytest.raises(ValueError, match=r"teacher\(X\): row 1 cannot be normalised"):
        teacher_beliefs(lambda Z: np.array([[1.0, 1.0]] + [[0.0, 0.0]] * (len(Z) - 1)), X, normalize=True)
