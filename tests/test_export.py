"""Export of tree students: FastTree (native predictor), rules, Graphviz dot,
ONNX, generated C++ and the header-only evaluator. Every exported form must
predict exactly what the tree predicts."""

import os
import pickle
import re
import shutil
import subprocess
import threading
import types
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from crembo import _core
from crembo.trees.export import (
    FastTree,
    FlatTree,
    export_cpp,
    export_dot,
    export_native,
    export_onnx,
    export_rules,
    flatten_tree,
    rules_predict,
    short_threshold,
    tree_rules,
)

ROOT = Path(__file__).resolve().parents[1]
D = 12


def make_data(n, seed, nan_share=0.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, D))
    X[:, 5] = np.round(X[:, 5] * 4) / 4  # a feature with ties and round thresholds
    score = X[:, 0] + X[:, 1] * X[:, 2] + 0.5 * np.sin(3 * X[:, 3])
    y = (score > 0).astype(int) + (X[:, 4] > 0.8) + (X[:, 5] > 1)
    if nan_share:
        X[rng.random(X.shape) < nan_share] = np.nan
    return X, y


@pytest.fixture(scope="module")
def data():
    return make_data(4000, 1)


@pytest.fixture(scope="module", params=[4, 8])
def tree(request, data):
    X, y = data
    labels = np.array(["low", "mid", "high", "top"])[y]
    return DecisionTreeClassifier(max_depth=request.param, random_state=0).fit(X, labels)


def boundary_points(tree, X):
    """Rows whose split features sit exactly at, just below and just above
    each threshold as float32 (and float64), where rounding decides."""
    t = tree.tree_
    rows = []
    base = X[:50]
    for node in np.flatnonzero(t.children_left >= 0):
        f, thr = t.feature[node], t.threshold[node]
        t32 = np.float32(thr)
        for v in (
            thr,
            float(t32),
            float(np.nextafter(t32, np.float32(-np.inf))),
            float(np.nextafter(t32, np.float32(np.inf))),
            np.nextafter(thr, np.inf),
            np.nextafter(thr, -np.inf),
        ):
            if not np.isfinite(v) or abs(v) > np.finfo(np.float32).max:
                continue  # (a split of finite values from NaN has threshold inf)
            Z = base.copy()
            Z[:, f] = v
            rows.append(Z)
    return np.concatenate(rows)


# --------------------------------------------------------------------------- FastTree
def test_fast_tree_matches_sklearn(tree, data):
    X, _ = data
    Xt, _ = make_data(20000, 2)
    Xt = np.concatenate([Xt, boundary_points(tree, X)])
    ft = FastTree.from_sklearn(tree)
    assert flatten_tree(tree).depth() == tree.get_depth()
    assert ft.node_count == tree.tree_.node_count and ft.max_depth == tree.get_depth()
    assert ft.n_leaves == tree.get_n_leaves() and ft.n_features_in_ == D
    np.testing.assert_array_equal(ft.classes_, tree.classes_)
    for Z in (Xt, Xt.astype(np.float32), np.asfortranarray(Xt), Xt[::2], Xt[:, :][::-1]):
        expected = tree.predict(Z)
        got = ft.predict(Z)
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(ft.apply(Z), tree.apply(Z.astype(np.float32)))
        np.testing.assert_array_equal(ft.predict_proba(Z), tree.predict_proba(Z))


def test_fast_tree_one_million_rows_identical(data):
    X, y = data
    tree = DecisionTreeClassifier(max_depth=8, random_state=0).fit(X, y)
    Xt, _ = make_data(1_000_000, 3)
    ft = FastTree.from_sklearn(tree)
    np.testing.assert_array_equal(ft.predict(Xt), tree.predict(Xt))
    np.testing.assert_array_equal(ft.apply(Xt), tree.apply(Xt))


def test_fast_tree_integer_input_and_lists(tree, data):
    X, _ = data
    Xi = np.round(X[:500] * 3).astype(np.int64)
    ft = FastTree.from_sklearn(tree)
    np.testing.assert_array_equal(ft.predict(Xi), tree.predict(Xi))
    np.testing.assert_array_equal(ft.predict(X[:3].tolist()), tree.predict(X[:3]))
    assert ft.predict(X[:0]).shape == (0,)
    assert ft.predict_proba(X[:0]).shape == (0, len(tree.classes_))


@pytest.mark.parametrize(
    "labels",
    [
        np.array([3, 7, 10, 42]),
        np.array([1.0, 2.0, 4.0, 8.0]),
        np.array([-1, 0, 1, 2], dtype=np.int8),
        np.array(["a b", "c", "d%", "é"]),
    ],
)
def test_fast_tree_label_types(data, labels):
    X, y = data
    tree = DecisionTreeClassifier(max_depth=5, random_state=0).fit(X, labels[y])
    ft = FastTree.from_sklearn(tree)
    got, expected = ft.predict(X), tree.predict(X)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


def test_fast_tree_bool_labels(data):
    X, y = data
    tree = DecisionTreeClassifier(max_depth=4, random_state=0).fit(X, y > 1)
    got = FastTree.from_sklearn(tree).predict(X)
    assert got.dtype == np.bool_
    np.testing.assert_array_equal(got, tree.predict(X))


def test_fast_tree_missing_values():
    X, y = make_data(3000, 4, nan_share=0.1)
    tree = DecisionTreeClassifier(max_depth=6, random_state=0).fit(X, y)
    assert tree.tree_.missing_go_to_left.any() and not tree.tree_.missing_go_to_left.all()
    Xt, _ = make_data(20000, 5, nan_share=0.2)
    ft = FastTree.from_sklearn(tree)
    np.testing.assert_array_equal(ft.predict(Xt), tree.predict(Xt))
    np.testing.assert_array_equal(ft.predict(Xt.astype(np.float32)), tree.predict(Xt))
    rules = tree_rules(tree)
    np.testing.assert_array_equal(rules_predict(rules, Xt), tree.predict(Xt))


def test_fast_tree_threads_agree(data, restore_threads):
    X, y = data
    tree = DecisionTreeClassifier(max_depth=8, random_state=0).fit(X, y)
    ft = FastTree.from_sklearn(tree)
    Xt, _ = make_data(200_000, 6)
    expected = tree.predict(Xt)
    _core.set_num_threads(1)
    np.testing.assert_array_equal(ft.predict(Xt), expected)
    _core.set_num_threads(2)
    # Python threads call in at once: the GIL is released during the walk.
    results = [None] * 4

    def work(k):
        results[k] = ft.predict(Xt)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        np.testing.assert_array_equal(r, expected)


def test_fast_tree_float64_precision():
    # One split at a threshold between two float64 values that round to the
    # same float32: float32 (scikit-learn) and float64 comparison disagree.
    flat = FlatTree(
        children_left=np.array([1, -1, -1]),
        children_right=np.array([2, -1, -1]),
        feature=np.array([0, -2, -2]),
        threshold=np.array([1.0 + 1e-12, -2, -2]),
        missing_go_to_left=np.zeros(3, np.uint8),
        leaf_class=np.array([-1, 0, 1], np.int32),
        proba=np.array([[0.5, 0.5], [1.0, 0.0], [0.0, 1.0]]),
        classes=np.array([10, 20]),
        n_features=1,
    )
    x = np.array([[1.0 + 2e-12], [1.0], [0.5], [2.0]])
    f32 = FastTree.from_flat(flat)
    np.testing.assert_array_equal(f32.predict(x), [10, 10, 10, 20])
    flat.precision = "float64"
    f64 = FastTree.from_flat(flat)
    np.testing.assert_array_equal(f64.predict(x), [20, 10, 10, 20])
    assert f64.precision == "float64"


def test_fast_tree_pickle_and_file_round_trip(tree, data, tmp_path):
    X, _ = data
    ft = FastTree.from_sklearn(tree)
    again = pickle.loads(pickle.dumps(ft))
    assert type(again) is FastTree
    np.testing.assert_array_equal(again.predict(X), tree.predict(X))
    ft.save(tmp_path / "t.txt")
    loaded = FastTree.load(tmp_path / "t.txt")
    np.testing.assert_array_equal(loaded.predict(X), tree.predict(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), tree.predict_proba(X))
    # integer class names come back as integers
    X2, y2 = data
    t2 = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X2, y2 * 5)
    FastTree.from_sklearn(t2).save(tmp_path / "t2.txt")
    l2 = FastTree.load(tmp_path / "t2.txt")
    assert l2.classes_.dtype.kind == "i"
    np.testing.assert_array_equal(l2.predict(X2), t2.predict(X2))


@pytest.mark.filterwarnings("ignore:MEMO found no consistent student")
def test_fast_tree_from_crembo_and_allowed_label_students(data):
    from crembo import CREMBOClassifier
    from sklearn.ensemble import RandomForestClassifier

    X, y = data
    X, y = X[:1200], np.array(["a", "b", "c", "d"])[y[:1200]]
    teacher = RandomForestClassifier(n_estimators=20, max_depth=6, random_state=0).fit(X, y)
    for kw in ({}, {"oracle": "single", "mode": "memo"}):
        model = CREMBOClassifier(
            teacher, DecisionTreeClassifier(max_depth=4), n_thresholds=4, random_state=0, **kw
        ).fit(X, y)
        ft = FastTree.from_sklearn(model)
        np.testing.assert_array_equal(ft.predict(X), model.predict(X))
        np.testing.assert_array_equal(ft.predict_proba(X), model.predict_proba(X))
        np.testing.assert_array_equal(rules_predict(tree_rules(model), X), model.predict(X))


class DuckTree:
    """A model that is not scikit-learn's but exposes its flat arrays (like
    crembo's own hist trees): FastTree must read it."""

    def __init__(self, sk, flip=False):
        t = sk.tree_
        self.tree_ = types.SimpleNamespace(
            children_left=t.children_left.copy(),
            children_right=t.children_right.copy(),
            feature=t.feature.copy(),
            threshold=t.threshold.copy(),
            value=t.value[:, 0, :].copy(),
        )
        self.classes_ = sk.classes_
        self.n_features_in_ = sk.n_features_in_
        self.flip = flip

    def predict(self, X):
        X = np.asarray(X, dtype=np.float32)
        t = self.tree_
        out = []
        for row in X:
            i = 0
            while t.children_left[i] >= 0:
                left = row[t.feature[i]] <= t.threshold[i]
                i = t.children_left[i] if left != self.flip else t.children_right[i]
            out.append(self.classes_[np.argmax(t.value[i])])
        return np.asarray(out)


def test_fast_tree_reads_duck_typed_trees(data):
    X, y = data
    sk = DecisionTreeClassifier(max_depth=5, random_state=0).fit(X, y)
    duck = DuckTree(sk)
    ft = FastTree.from_sklearn(duck)
    np.testing.assert_array_equal(ft.predict(X), duck.predict(X))
    with pytest.raises(ValueError, match="disagrees with the model's own predict"):
        FastTree.from_sklearn(DuckTree(sk, flip=True))


def test_fast_tree_bad_input_is_an_error_not_a_crash(tree, data):
    X, _ = data
    ft = FastTree.from_sklearn(tree)
    with pytest.raises(ValueError, match="2-d"):
        ft.predict(X[0])
    with pytest.raises(ValueError, match="2-d"):
        ft.predict(X[None])
    with pytest.raises(ValueError, match=f"has {D - 1} features, but the tree was built for {D}"):
        ft.predict(X[:, :-1])
    with pytest.raises(TypeError, match="numbers"):
        ft.predict(np.array([["a"] * D]))
    with pytest.raises(ValueError):
        ft.predict_proba(X[:, :3])


def test_flatten_rejects_what_it_cannot_export(data):
    X, y = data
    with pytest.raises(TypeError, match="not a fitted tree"):
        FastTree.from_sklearn(LogisticRegression().fit(X, y))
    with pytest.raises(TypeError, match="regression tree"):
        FastTree.from_sklearn(DecisionTreeRegressor(max_depth=2).fit(X, y))
    with pytest.raises(ValueError, match="multi-output"):
        FastTree.from_sklearn(DecisionTreeClassifier(max_depth=2).fit(X, np.c_[y, y]))
    from crembo import CREMBOClassifier

    with pytest.raises(ValueError, match="not fitted"):
        FastTree.from_sklearn(CREMBOClassifier())
    with pytest.raises(ValueError, match="precision"):
        FastTree.from_sklearn(DecisionTreeClassifier(max_depth=2).fit(X, y), precision="half")


def test_corrupt_trees_are_rejected():
    ok = dict(
        children_left=[1, -1, -1],
        children_right=[2, -1, -1],
        feature=[0, -2, -2],
        threshold=[0.0, -2, -2],
        leaf_class=np.array([-1, 0, 1], np.int32),
        proba=[[0.5, 0.5], [1, 0], [0, 1]],
        n_features=1,
        classes=np.array([0, 1]),
    )
    FastTree(**ok)
    for key, value, match in [
        ("children_left", [0, -1, -1], "after their parent"),
        ("children_right", [1, -1, -1], "distinct"),
        ("feature", [3, -2, -2], "split feature"),
        ("threshold", [np.nan, -2, -2], "NaN threshold"),
        ("leaf_class", np.array([-1, 0, 2], np.int32), "leaf class"),
        ("proba", [[0.5, 0.5], [1, 0]], "proba"),
        ("classes", np.array([0, 1, 2]), "classes"),
        ("children_left", [1, -1], "children_right"),
    ]:
        with pytest.raises(ValueError, match=match):
            FastTree(**{**ok, key: value})
    text = FastTree(**ok).to_text()
    for bad in (
        text.replace("split 0", "split 9"),
        text.replace("leaf 1", "leaf 7"),
        text[:40],
        text.replace("crembo-fast-tree 1", "crembo-fast-tree 2"),
        "garbage",
    ):
        with pytest.raises(ValueError, match="fast tree file|tree node"):
            _core.fast_tree_text_state(bad)


# --------------------------------------------------------------------------- rules, dot
def test_short_threshold_splits_like_the_tree():
    rng = np.random.default_rng(0)
    for t in np.concatenate([rng.normal(size=300) * 10.0 ** rng.integers(-6, 6, size=300), [16.829999923706055, 0.0]]):
        s = float(short_threshold(t))
        lo = np.float32(t)
        if float(lo) > t:
            lo = np.nextafter(lo, np.float32(-np.inf))
        for x in (lo, np.nextafter(lo, np.float32(np.inf)), np.nextafter(lo, np.float32(-np.inf))):
            assert (float(x) <= s) == (float(x) <= t)
    assert short_threshold(16.829999923706055) == "16.83"


def parse_rules(text, names):
    """Read export_rules' text back: (conditions, label) per line."""
    index = {n: k for k, n in enumerate(names)}
    num = r"(-?[0-9.eE+-]+|-?inf)"
    rules = []
    for line in text.splitlines():
        if not line.startswith("rule "):
            continue
        m = re.match(r"rule \d+: IF (.*) THEN (\S+)  \(", line)
        conds = []
        for part in m.group(1).split(" AND "):
            if c := re.fullmatch(num + r" < (\w+) <= " + num, part):
                conds.append((index[c.group(2)], float(c.group(1)), float(c.group(3))))
            elif c := re.fullmatch(r"(\w+) <= " + num, part):
                conds.append((index[c.group(1)], None, float(c.group(2))))
            elif c := re.fullmatch(r"(\w+) > " + num, part):
                conds.append((index[c.group(1)], float(c.group(2)), None))
            else:
                raise AssertionError(f"unparsed condition {part!r}")
        rules.append((conds, m.group(2)))
    return rules


def test_rules_predict_like_the_tree(tree, data):
    X, _ = data
    Xt, _ = make_data(20000, 7)
    Xt = np.concatenate([Xt, boundary_points(tree, X)])
    rules = tree_rules(tree)
    assert len(rules) == tree.get_n_leaves()
    np.testing.assert_array_equal(rules_predict(rules, Xt), tree.predict(Xt))
    # The printed rules, read back and applied to float32 features, too.
    names = [f"f{j}" for j in range(D)]
    text = export_rules(tree, feature_names=names)
    assert text.startswith(f"# {len(rules)} rules from DecisionTreeClassifier")
    parsed = parse_rules(text, names)
    X32 = Xt.astype(np.float32).astype(np.float64)
    pred = np.full(len(Xt), None, dtype=object)
    hits = np.zeros(len(Xt), dtype=int)
    for conds, label in parsed:
        match = np.ones(len(Xt), dtype=bool)
        for f, lo, hi in conds:
            if lo is not None:
                match &= X32[:, f] > lo
            if hi is not None:
                match &= X32[:, f] <= hi
        pred[match] = label
        hits += match
    assert np.all(hits == 1)
    np.testing.assert_array_equal(pred.astype(str), tree.predict(Xt))


def test_rules_argument_errors(tree):
    with pytest.raises(ValueError, match="feature_names"):
        export_rules(tree, feature_names=["a"])
    with pytest.raises(ValueError, match="class_names"):
        export_rules(tree, class_names=["a"])
    assert "or x[" in export_rules(tree, show_missing=True) or not tree.tree_.missing_go_to_left.any()


def test_dot_argument_errors(tree):
    # The same checks as the rules (a list of the wrong length was an
    # IndexError, or silently ignored when too long).
    for kw in (dict(feature_names=["a"]), dict(feature_names=[f"f{j}" for j in range(D + 1)])):
        with pytest.raises(ValueError, match="feature_names"):
            export_dot(tree, **kw)
    with pytest.raises(ValueError, match="class_names"):
        export_dot(tree, class_names=["a"])


def test_dot_has_every_node_and_edge(tree):
    dot = export_dot(tree, feature_names=[f"f{j}" for j in range(D)])
    n = tree.tree_.node_count
    assert dot.startswith("digraph Tree {") and dot.rstrip().endswith("}")
    assert len(re.findall(r"^  \d+ \[label=", dot, flags=re.M)) == n
    assert len(re.findall(r"^  \d+ -> \d+", dot, flags=re.M)) == n - 1
    if shutil.which("dot"):
        svg = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True, check=True).stdout
        assert "<svg" in svg


# --------------------------------------------------------------------------- ONNX
def test_onnx_predicts_like_the_tree(tree, data, tmp_path):
    pytest.importorskip("skl2onnx")
    ort = pytest.importorskip("onnxruntime")
    X, _ = data
    Xt, _ = make_data(20000, 8)
    Xt = np.concatenate([Xt, boundary_points(tree, X)]).astype(np.float32)
    onx = export_onnx(tree, tmp_path / "tree.onnx")
    assert (tmp_path / "tree.onnx").stat().st_size > 0
    sess = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    label, proba = sess.run(None, {"X": Xt})
    np.testing.assert_array_equal(np.asarray(label).astype(str), tree.predict(Xt))
    np.testing.assert_allclose(proba, tree.predict_proba(Xt), atol=1e-6)


def test_onnx_rejects_non_trees(data):
    pytest.importorskip("skl2onnx")
    X, y = data
    with pytest.raises(TypeError, match="not a scikit-learn tree"):
        export_onnx(LogisticRegression().fit(X, y))


# --------------------------------------------------------------------------- C++
def compiler():
    for name in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def compile_ok(cmd):
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, f"{' '.join(cmd)}\n{res.stderr[-3000:]}"


CPP_MAIN = r"""
#include <cstdio>
#include <fstream>
#include <vector>
#include "crembo/fast_tree.hpp"
#include "gen_tree.hpp"

int main(int argc, char** argv) {
    if (argc != 4) return 2;
    std::ifstream f(argv[1], std::ios::binary | std::ios::ate);
    const long bytes = static_cast<long>(f.tellg());
    std::vector<double> X(bytes / 8);
    f.seekg(0);
    f.read(reinterpret_cast<char*>(X.data()), bytes);
    const long d = gen::n_features, n = static_cast<long>(X.size()) / d;
    std::vector<float> X32(X.begin(), X.end());
    crembo::FastTree tree = crembo::FastTree::load(std::string(argv[2]));
    std::vector<int> batch(n);
    gen::predict_batch(X32.data(), n, batch.data());
    std::vector<std::int32_t> fast(n);
    tree.predict(X.data(), n, fast.data(), 2);
    for (long i = 0; i < n; ++i) {
        const int a = gen::predict(X.data() + i * d);     // double input
        const int b = gen::predict(X32.data() + i * d);   // float input
        const int leaf = tree.leaf(X.data() + i * d);
        const double* p = gen::predict_proba(X.data() + i * d);
        std::printf("%d %d %d %d %d %.17g\n", a, b, batch[i], fast[i], tree.leaf_class(leaf), p[a]);
    }
    try {
        std::ifstream bad(argv[3]);
        crembo::FastTree::load(bad);
        return 3;
    } catch (const std::invalid_argument&) {
    }
    return 0;
}
"""


@pytest.mark.skipif(compiler() is None, reason="no C++ compiler")
def test_generated_cpp_and_header_evaluator_agree_with_the_tree(tmp_path):
    X, y = make_data(3000, 9, nan_share=0.05)
    tree = DecisionTreeClassifier(max_depth=7, random_state=0).fit(X, np.array(["p", "q", "r", "s"])[y])
    Xt, _ = make_data(5000, 10, nan_share=0.05)
    Xt = np.concatenate([Xt, boundary_points(tree, np.nan_to_num(X))])
    src = export_cpp(tree, name="gen")
    (tmp_path / "gen_tree.hpp").write_text(src)
    export_native(tree, tmp_path / "tree.txt")
    (tmp_path / "bad.txt").write_text("crembo-fast-tree 1\nprecision float16\n")
    (tmp_path / "main.cpp").write_text(CPP_MAIN)
    np.ascontiguousarray(Xt, dtype="<f8").tofile(tmp_path / "X.f64")
    exe = tmp_path / "check"
    cxx = compiler()
    compile_ok(
        [
            cxx,
            "-std=c++17",
            "-O1",
            "-Wall",
            "-Wextra",
            "-Werror",
            f"-I{ROOT / 'cpp' / 'include'}",
            f"-I{tmp_path}",
            str(tmp_path / "main.cpp"),
            "-o",
            str(exe),
        ]
    )
    # The generated header alone is plain C++11.
    (tmp_path / "only.cpp").write_text(
        '#include "gen_tree.hpp"\nint main() { float x[%d] = {0}; return gen::predict(x) < 0; }\n' % D
    )
    compile_ok(
        [
            cxx,
            "-std=c++11",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            f"-I{tmp_path}",
            str(tmp_path / "only.cpp"),
            "-o",
            str(tmp_path / "only"),
        ]
    )
    run = subprocess.run(
        [str(exe), str(tmp_path / "X.f64"), str(tmp_path / "tree.txt"), str(tmp_path / "bad.txt")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    out = np.loadtxt(run.stdout.splitlines())
    expected = np.searchsorted(tree.classes_, tree.predict(Xt))
    for col in range(5):
        np.testing.assert_array_equal(out[:, col].astype(int), expected)
    proba = tree.predict_proba(Xt)[np.arange(len(Xt)), expected]
    np.testing.assert_array_equal(out[:, 5], proba)


def test_export_cpp_checks_its_name(tree):
    with pytest.raises(ValueError, match="C\\+\\+ identifier"):
        export_cpp(tree, name="not valid")
    assert "namespace my_tree {" in export_cpp(tree, name="my_tree")


def test_fast_tree_reads_crembo_hist_trees():
    tree_mod = pytest.importorskip("crembo.trees.hist")
    if not hasattr(tree_mod, "HistTreeClassifier"):
        pytest.skip("no HistTreeClassifier")
    X, y = make_data(4000, 11, nan_share=0.05)
    hist = tree_mod.HistTreeClassifier(max_depth=6).fit(X, y)
    Xt, _ = make_data(50000, 12, nan_share=0.05)
    ft = FastTree.from_sklearn(hist)
    np.testing.assert_array_equal(ft.predict(Xt), hist.predict(Xt))
    np.testing.assert_array_equal(ft.predict_proba(Xt), hist.predict_proba(Xt))
    np.testing.assert_array_equal(ft.apply(Xt), hist.apply(Xt))


def test_fast_tree_takes_data_frames(tree, data):
    pd = pytest.importorskip("pandas")
    X, _ = data
    df = pd.DataFrame(X[:100], columns=[f"c{j}" for j in range(D)])
    np.testing.assert_array_equal(FastTree.from_sklearn(tree).predict(df), tree.predict(X[:100]))


# --------------------------------------------------------------------------- layout (crembo.trees)
def test_representation_lives_in_crembo_trees_and_export_reexports_it():
    import crembo
    import crembo.trees.export as export
    import crembo.trees.export_regression as export_regression
    from crembo.trees import representation

    assert export.FastTree is representation.FastTree is crembo.FastTree
    assert export.FlatTree is representation.FlatTree
    assert export.flatten_tree is representation.flatten_tree
    assert export.PRECISIONS == representation.PRECISIONS
    assert export_regression.flatten_regression_tree is representation.flatten_regression_tree
    assert export_regression.regression_fast_tree is representation.regression_fast_tree
    assert export_regression.is_regression_model is representation.is_regression_model
    for name in export.__all__:
        assert hasattr(export, name), name


def _package_dir():
    import crembo

    return Path(crembo.__file__).resolve().parent  # the installed package (a wheel's, in the release check)


def _crembo_imports(path):
    """Absolute names of the crembo modules (and names) a file imports."""
    import ast

    tree = ast.parse(Path(path).read_text())
    package = "crembo." + ".".join(Path(path).relative_to(_package_dir()).parts[:-1])
    package = package.rstrip(".")
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".")
            base = base[: len(base) - (node.level - 1)]
            mod = ".".join(base + ([node.module] if node.module else []))
            out.update(f"{mod}.{a.name}" if not node.module else mod for a in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("crembo"):
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("crembo"))
    return out


def test_trees_package_imports_nothing_above_it():
    # The representation is the bottom layer of the tree code: it may use the
    # native core and its own siblings, never the exporters, the students or
    # the estimators that build on it.
    for path in (_package_dir() / "trees" / name for name in ("representation.py", "codegen.py")):
        for mod in _crembo_imports(path):
            assert mod in ("crembo._native", "crembo.__version__") or mod.startswith("crembo.trees"), (path.name, mod)
    # ... and nothing imports the exporters' private helpers any more.
    for path in sorted(_package_dir().rglob("*.py")):
        text = path.read_text()
        assert not re.search(r"from \.+export import _|export\._[a-z]", text), path


def test_old_fast_tree_pickles_still_load(tree, data):
    # Pickles written when FastTree lived in crembo.trees.export name it there.
    X, _ = data
    blob = pickle.dumps(FastTree.from_sklearn(tree), protocol=2)
    assert b"crembo.trees.representation\n" in blob
    old = blob.replace(b"crembo.trees.representation\n", b"crembo.trees.export\n")
    again = pickle.loads(old)
    assert type(again) is FastTree
    np.testing.assert_array_equal(again.predict(X), tree.predict(X))


def test_fast_tree_to_cpp_is_export_cpp(tree):
    ft = FastTree.from_sklearn(tree)
    assert ft.to_cpp("t1") == export_cpp(ft, name="t1") == export_cpp(tree, name="t1")
    assert ft.to_cpp("t2", feature_names=[f"f{j}" for j in range(D)]) == export_cpp(
        tree, name="t2", feature_names=[f"f{j}" for j in range(D)]
    )
    with pytest.raises(ValueError, match="C\\+\\+ identifier"):
        ft.to_cpp("not valid")


def test_allowed_label_leaves_follow_the_students_own_arithmetic(data):
    # The flattening reads the leaves through the student's allowed_scores and
    # predict_proba, so a student with other arithmetic is flattened with it.
    from crembo.compress.students import AllowedLabelStudent

    class Sharpened(AllowedLabelStudent):
        def allowed_scores(self, X):
            return super().allowed_scores(X) ** 3

    X, y = data
    X, y = X[:1500], y[:1500]
    classes = np.unique(y)
    mask = (y[:, None] == classes[None, :]) | (np.roll(y, 1)[:, None] == classes[None, :])
    est = DecisionTreeClassifier(max_depth=4, random_state=0).fit(X, mask.astype(np.int8))
    for student in (AllowedLabelStudent(est, classes), Sharpened(est, classes)):
        flat = flatten_tree(student)
        ft = FastTree.from_flat(flat)
        np.testing.assert_array_equal(ft.predict(X), student.predict(X))
        np.testing.assert_allclose(ft.predict_proba(X), student.predict_proba(X), rtol=0, atol=1e-15)
    a, b = flatten_tree(AllowedLabelStudent(est, classes)), flatten_tree(Sharpened(est, classes))
    assert not np.allclose(a.proba, b.proba)
