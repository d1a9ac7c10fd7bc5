"""Regression tests for the hardening audit (issue 15): one test per finding,
built from its reproducer. Bad input must give a ValueError or TypeError
naming the argument, never a crash or a silent wrong answer."""

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from sklearn.ensemble import BaggingClassifier, ExtraTreesClassifier, RandomForestClassifier
from sklearn.tree import DecisionTreeClassifier

import crembo
from crembo import _core
from crembo.trees.export import FastTree

# The reproducer: a root split with two leaves, missing_go_to_left omitted.
SMALL = dict(
    children_left=[1, -1, -1],
    children_right=[2, -1, -1],
    feature=[0, -2, -2],
    threshold=[0.0, -2, -2],
    leaf_class=np.array([0, 0, 1], np.int32),
    proba=[[1, 0], [1, 0], [0, 1]],
    n_features=1,
    classes=np.array([0, 1]),
)


# ------------------------------------------------- 1. missing_go_to_left over-read
def test_omitted_missing_go_to_left_sends_nan_right_every_time():
    nan_rows = np.full((64, 1), np.nan)
    for _ in range(50):  # the flags used to be whatever lay past a 1-byte buffer
        tree = _core.FastTree(**SMALL)
        assert not tree._state()["missing_go_to_left"].any()
        np.testing.assert_array_equal(tree.apply(nan_rows), 2)  # a failed comparison goes right
        np.testing.assert_array_equal(tree.predict(nan_rows), 1)


def _big_tree():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(4000, 6))
    y = (X[:, 0] + rng.normal(scale=1.5, size=4000) > 0).astype(int)
    model = DecisionTreeClassifier(random_state=0).fit(X, y)
    assert model.tree_.node_count > 500
    return model


def test_omitted_flags_on_a_large_tree_are_all_false():
    model = _big_tree()
    t = model.tree_
    value = t.value[:, 0, :]
    proba = value / value.sum(axis=1, keepdims=True)
    tree = _core.FastTree(
        children_left=t.children_left,
        children_right=t.children_right,
        feature=t.feature,
        threshold=t.threshold,
        leaf_class=np.argmax(value, axis=1).astype(np.int32),
        proba=proba,
        n_features=6,
        classes=model.classes_,
    )
    assert not tree._state()["missing_go_to_left"].any()
    # every all-NaN row takes the right branch all the way down
    node = 0
    while t.children_left[node] >= 0:
        node = t.children_right[node]
    np.testing.assert_array_equal(tree.apply(np.full((10, 6), np.nan)), node)


def test_vote_forest_without_flags_matches_explicit_zero_flags():
    model = _big_tree()
    t = model.tree_
    leaf_class = np.argmax(t.value[:, 0, :], axis=1).astype(np.int64)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 6))
    X[rng.random(X.shape) < 0.3] = np.nan
    beliefs = []
    for flags in (None, np.zeros(t.node_count, np.uint8)):
        forest = _core.VoteForest(6, 2)
        for _ in range(3):
            forest.add_tree(t.children_left, t.children_right, t.feature, t.threshold, leaf_class, flags)
        beliefs.append(forest.beliefs(X))
    np.testing.assert_array_equal(beliefs[0], beliefs[1])


# --------------------------------------------------- 2. values beyond float32
def test_hist_tree_refuses_values_beyond_float32_at_fit():
    X = np.r_[np.full(5, -1e39), np.full(5, 1e39)][:, None]
    with pytest.raises(ValueError, match=r"X\[0, 0\].*float32"):
        crembo.HistTreeClassifier().fit(X, [0] * 5 + [1] * 5)
    with pytest.raises(ValueError, match="float32"):
        crembo.BinnedData(X)
    # the largest float32 is fine, and so are NaNs
    big = float(np.finfo(np.float32).max)
    X = np.r_[np.full(5, -big), np.full(5, big), [np.nan]][:, None]
    y = [0] * 5 + [1] * 5 + [1]
    clf = crembo.HistTreeClassifier().fit(X, y)
    np.testing.assert_array_equal(clf.predict(X[:10]), y[:10])


# ------------------------------------------------------- 3. hostile tree files
def _memory_of(code):
    """Peak resident memory (MB) a fresh interpreter adds while running code."""
    script = (
        "import resource, sys, crembo\n"
        "from crembo import _core\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        f"{code}\n"
        "unit = 2**20 if sys.platform == 'darwin' else 2**10\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / unit)"
    )
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return float(res.stdout.split()[-1])


HUGE_HEADER = "crembo-fast-tree 1\nprecision float32\nfeatures 1\nclasses 2\nnodes 200000000\nleaf 0 1 0\nend\n"


def test_load_checks_the_header_against_the_file_size(tmp_path):
    assert len(HUGE_HEADER) < 100  # a tiny file declaring 200 million nodes
    with pytest.raises(ValueError, match="nodes: 200000000 nodes .* cannot fit in the"):
        _core.fast_tree_text_state(HUGE_HEADER)
    path = tmp_path / "huge.txt"
    path.write_text(HUGE_HEADER)
    with pytest.raises(ValueError, match="cannot fit"):
        FastTree.load(path)
    many_classes = HUGE_HEADER.replace("classes 2", "classes 16777216").replace("200000000", "1073741824")
    with pytest.raises(ValueError, match="cannot fit"):
        _core.fast_tree_text_state(many_classes)


def test_hostile_headers_use_little_memory():
    # passes the size check (1.2 million nodes of 8 classes fit in 10 MB),
    # then ends after one node: nothing may be sized from the 1.2 million
    # nodes declared (about 120 MB of arrays)
    padded = HUGE_HEADER.replace("classes 2", "classes 8").replace("200000000", "1200000") + " " * 10_000_000
    with pytest.raises(ValueError, match="unexpected end of input|expected"):
        _core.fast_tree_text_state(padded)
    code = (
        f"text = {HUGE_HEADER!r}\n"
        "padded = text.replace('classes 2', 'classes 8').replace('200000000', '1200000') + ' ' * 10_000_000\n"
        "for t in (text, padded, text.replace('classes 2', 'classes 16777216')):\n"
        "    try:\n"
        "        _core.fast_tree_text_state(t)\n"
        "    except ValueError:\n"
        "        pass\n"
        "    else:\n"
        "        raise SystemExit('accepted')"
    )
    used = _memory_of(code)
    if "asan" not in os.environ.get("LD_PRELOAD", ""):  # the sanitizer's allocator keeps more
        assert used < 70, used  # the text and its two copies in C++ are 30 MB


@pytest.mark.parametrize(
    "row, match",
    [
        ([-1.0, 2.0], "outside"),
        ([999999.0, 0.0], "outside"),
        ([0.5, 0.6], "do not sum to 1"),
        ([0.2, 0.3], "do not sum to 1"),
        ([np.nan, 1.0], "outside"),
        ([np.inf, 0.0], "outside"),
    ],
)
def test_bad_leaf_probabilities_are_refused(row, match):
    proba = np.array([[1.0, 0.0], row, [0.0, 1.0]])
    with pytest.raises(ValueError, match=f"tree node 1: leaf probabilit.*{match}"):
        FastTree(**{**SMALL, "proba": proba})
    text = FastTree(**SMALL).to_text().replace("leaf 0 1 0", "leaf 0 " + " ".join(repr(float(p)) for p in row), 1)
    with pytest.raises(ValueError, match=match):
        _core.fast_tree_text_state(text)


def test_good_leaf_probabilities_still_load(tmp_path):
    proba = np.array([[0.0, 0.0], [0.3, 0.7], [0.0, 0.0]])  # all-zero rows: scikit-learn's empty leaf
    tree = FastTree(**{**SMALL, "proba": proba})
    path = tmp_path / "t.txt"
    tree.save(path)
    back = FastTree.load(path)
    np.testing.assert_array_equal(back.predict_proba([[-1.0], [1.0]]), [[0.3, 0.7], [0.0, 0.0]])
    # a file written by hand with fewer digits
    text = tree.to_text().replace("leaf 0 0.29999999999999999 0.69999999999999996", "leaf 0 0.333333 0.666667")
    assert "0.333333" in text
    _core.fast_tree_text_state(text)


def test_load_refuses_a_node_count_that_no_tree_has():
    text = FastTree(**SMALL).to_text()
    # 3 nodes declared, but one is a split line pointing at no child: not 2L - 1 nodes
    bad = text.replace("leaf 0 1 0", "split 0 0.5 1 2 0", 1)
    with pytest.raises(ValueError, match="2L - 1"):
        _core.fast_tree_text_state(bad)


# ------------------------------------------------------------- 4. bad scalars
P = np.array([[0.2, 0.8], [0.6, 0.4], [0.5, 0.5]])


@pytest.mark.parametrize(
    "call",
    [
        lambda: crembo.candidate_thresholds(P, lo=np.nan),
        lambda: crembo.candidate_thresholds(P, hi=np.nan),
        lambda: crembo.budgeted_thresholds(P, 3, lo=np.nan),
        lambda: crembo.budgeted_thresholds(P, 3, hi=float("nan")),
    ],
)
def test_nan_bounds_are_refused(call):
    with pytest.raises(ValueError, match=r"^(lo|hi): expected a number, got nan"):
        call()


def test_nan_bounds_are_refused_natively_too():
    with pytest.raises(ValueError, match="lo: expected a number"):
        _core.candidate_thresholds(P, np.nan, 1.0)
    with pytest.raises(ValueError, match="hi: expected a number"):
        _core.budgeted_thresholds(P, 2, 0.0, np.nan)
    # infinite bounds are a range, not an error
    np.testing.assert_array_equal(crembo.candidate_thresholds(P, lo=-np.inf, hi=np.inf), [0.2, 0.4, 0.5, 0.6, 0.8])


def _memo_data(n=40):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(n, 3))
    p = 1 / (1 + np.exp(-3 * X[:, 0]))
    return X, np.c_[1 - p, p]


def test_all_zero_sample_weight_is_an_error():
    X, Pm = _memo_data()
    with pytest.raises(ValueError, match="sample_weight: every weight is zero"):
        crembo.memo(X, Pm, sample_weight=np.zeros(len(X)))
    with pytest.raises(ValueError, match="sample_weight: expected at least one positive weight"):
        _core.consistency_oracle(Pm, 0.1, fit_labels=lambda t, w: t, sample_weight=np.zeros(len(X)))
    with pytest.raises(TypeError, match="sample_weight: expected real numbers"):
        crembo.memo(X, Pm, sample_weight=np.ones(len(X)) * 1j)
    # one positive weight is enough
    w = np.zeros(len(X))
    w[0] = 1.0
    assert crembo.memo(X, Pm, sample_weight=w).n_fits >= 1


@pytest.mark.parametrize(
    "X", [np.array([[1 + 5j], [-1 + 0j]]), np.array([["0.5"], ["-1"]]), np.array([[b"1"], [b"2"]])]
)
def test_fast_tree_refuses_complex_and_text_input(X):
    tree = FastTree(**SMALL)
    for method in (tree.predict, tree.predict_proba, tree.apply):
        with pytest.raises(TypeError, match="X: expected real numbers"):
            method(X)
    forest = _core.VoteForest(1, 2)
    forest.add_tree(
        SMALL["children_left"], SMALL["children_right"], SMALL["feature"], SMALL["threshold"], np.array([0, 0, 1])
    )
    with pytest.raises(TypeError, match="X: expected real numbers"):
        forest.beliefs(X)
    with pytest.raises(TypeError, match="X: expected real numbers"):
        _core.hist_bin(X)


@pytest.mark.parametrize(
    "key, value, exc, match",
    [
        ("threshold", ["a", "b", "c"], TypeError, "threshold: expected real numbers"),
        ("threshold", np.array([0j, 0, 0]), TypeError, "threshold: expected real numbers"),
        ("proba", np.array([[1, 0], [1, 0], [0, 1]], dtype=complex), TypeError, "proba: expected real numbers"),
        ("children_left", [1.5, -1, -1], ValueError, r"children_left\[0\] is not an integer"),
        ("children_right", np.array([2**63, 2**64 - 1, 1], dtype=np.uint64), ValueError, r"children_right\[0\]"),
        ("feature", [0.0, np.nan, -2], ValueError, r"feature\[1\] is not an integer"),
        ("leaf_class", np.array([0, 2**32, 1]), ValueError, r"leaf_class\[1\] is not an integer"),
    ],
)
def test_tree_arrays_are_converted_exactly(key, value, exc, match):
    with pytest.raises(exc, match=match):
        _core.FastTree(**{**SMALL, key: value})
    # integral floats are fine
    _core.FastTree(**{**SMALL, "children_left": [1.0, -1.0, -1.0], "leaf_class": [0.0, 0.0, 1.0]})


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: crembo.allowed_labels(P, "a"), "threshold: expected a real number"),
        (lambda: crembo.count_violations(P, [0, 1, 0], "0.3"), "threshold: expected a real number"),
        (lambda: crembo.is_consistent(P, [0, 1, 0], None), "threshold: expected a real number"),
        (lambda: crembo.allowed_labels(P, 0.5 + 0j), "threshold: expected a real number"),
        (lambda: crembo.depth_profile(P, [0, 1, 0], thresholds=["a"]), "thresholds: expected real numbers"),
        (lambda: crembo.candidate_thresholds(P, lo="0"), "lo: expected a real number"),
        (lambda: crembo.budgeted_thresholds(P, 2, hi=[1.0]), "hi: expected a real number"),
        (lambda: crembo.memo(*_memo_data(), eta="1"), "eta: expected a positive number"),
        (lambda: crembo.CREMBOClassifier(eta="1").fit(*_memo_data()[:1], [0, 1] * 20), "eta: expected"),
    ],
)
def test_non_numeric_scalars_are_type_errors_naming_the_argument(call, match):
    with pytest.raises(TypeError, match=match):
        call()


class NonePredictor(DecisionTreeClassifier):
    def predict(self, X):
        return None


class ShortPredictor(DecisionTreeClassifier):
    def predict(self, X):
        return super().predict(X)[:-1]


def test_a_student_predicting_none_is_a_clear_error():
    X, Pm = _memo_data()
    with pytest.raises(TypeError, match="student: NonePredictor.predict returned None"):
        crembo.memo(X, Pm, NonePredictor(max_depth=2))
    with pytest.raises(ValueError, match=r"student: ShortPredictor.predict returned an array of shape \(39,\)"):
        crembo.memo(X, Pm, ShortPredictor(max_depth=2))
    y = (X[:, 0] > 0).astype(int)
    with pytest.raises(TypeError, match="predict returned None"):
        crembo.CREMBOClassifier(student=NonePredictor(max_depth=2), n_thresholds=2).fit(X, y)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: crembo.HistTreeClassifier(max_depth=2**40).fit([[0.0], [1.0]], [0, 1]), "max_depth"),
        (lambda: crembo.HistTreeClassifier(max_leaf_nodes=2**63).fit([[0.0], [1.0]], [0, 1]), "max_leaf_nodes"),
        (lambda: crembo.HistTreeClassifier(min_samples_leaf=2**70).fit([[0.0], [1.0]], [0, 1]), "min_samples_leaf"),
        (lambda: crembo.budgeted_thresholds(P, 2**70), "n_thresholds"),
        (lambda: crembo.memo(*_memo_data(), max_rounds=2**40), "max_rounds"),
        (lambda: crembo.memo(*_memo_data(), patience=2**31), "patience"),
        (lambda: crembo.beliefs_from_votes([[0, 1]], 2**40), "n_classes"),
        (lambda: crembo.beliefs_from_votes([[0, 1]], 2**24 + 1), "n_classes"),  # 2 x 2^24 doubles is the most
        (lambda: crembo.CREMBOClassifier(n_thresholds=2**64).fit(*_memo_data()[:1], [0, 1] * 20), "n_thresholds"),
    ],
)
def test_huge_integers_are_value_errors_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=f"{match}: expected .*an integer in"):
        call()


def test_huge_budget_within_int64_is_still_capped():
    np.testing.assert_array_equal(crembo.budgeted_thresholds(P, 2**63 - 1), [0.2, 0.4, 0.5, 0.6, 0.8])


@pytest.mark.parametrize(
    "make",
    [
        lambda: RandomForestClassifier(n_estimators=7, random_state=0),
        lambda: ExtraTreesClassifier(n_estimators=5, random_state=0),
        lambda: BaggingClassifier(n_estimators=5, max_features=2, random_state=0),
    ],
)
@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_teacher_beliefs_on_sparse_input(make, fmt):
    sp = pytest.importorskip("scipy.sparse")
    rng = np.random.default_rng(0)
    X = rng.random((200, 4))
    X[X < 0.3] = 0.0
    y = (X[:, 0] + X[:, 1] > 0.8).astype(int)
    teacher = make().fit(sp.csr_matrix(X), y)
    Xs = sp.csr_matrix(X) if fmt == "csr" else sp.csc_matrix(X)
    got = crembo.teacher_beliefs(teacher, Xs)
    # the native forest (dense) and the members' votes (sparse) count the same votes
    np.testing.assert_allclose(got, crembo.teacher_beliefs(teacher, X), rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.sum(axis=1), 1.0)


# ------------------------------------------------------- 6. the thread count
def test_thread_count_set_while_kernels_run(restore_threads):
    rng = np.random.default_rng(0)
    Pb = rng.dirichlet(np.ones(4), size=300_000)
    pred = rng.integers(0, 4, size=300_000)
    expected = crembo.count_violations(Pb, pred, 0.2)
    errors = []

    def run():
        try:
            for _ in range(5):
                assert crembo.count_violations(Pb, pred, 0.2) == expected
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    workers = [threading.Thread(target=run) for _ in range(3)]
    for w in workers:
        w.start()
    for k in range(200):  # 0 (the default) and 1: .ci/tsan runs this with OpenMP held to one thread
        _core.set_num_threads(k % 2)
        assert _core.get_num_threads() >= 1
    for w in workers:
        w.join()
    assert not errors
