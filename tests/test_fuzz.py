"""Fuzz tests (hypothesis) of crembo's native entry points.

Random and mutated input to the tree-file reader, the FastTree constructor,
VoteForest.add_tree and every public kernel: each call must either return
a correct result (checked against a plain NumPy/Python reference) or raise
ValueError/TypeError. Anything else (a crash, another exception, a wrong
answer) fails. The sanitizer run (.ci/sanitize) runs this file under
AddressSanitizer and UndefinedBehaviorSanitizer.

The number of examples per test is modest so that CI stays fast; set
CREMBO_FUZZ_EXAMPLES (e.g. 5000) for a longer run.
"""

import math
import os
import sys

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

import crembo  # noqa: E402
from crembo import _core  # noqa: E402

EXAMPLES = int(os.environ.get("CREMBO_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not os.environ.get("CREMBO_FUZZ_RANDOM"),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
FEW = settings(FUZZ, max_examples=max(10, EXAMPLES // 5))
CLEAR = (ValueError, TypeError)  # what bad input may raise


@pytest.fixture(autouse=True)
def bounded_memory():
    """No example may make the process grow by more than 512 MB (input
    sizes are small here, so a large allocation means a size was taken on
    trust). Not checked under the sanitizer, whose allocator keeps more."""
    resource = pytest.importorskip("resource")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    yield
    unit = 2**20 if sys.platform == "darwin" else 2**10  # ru_maxrss: bytes on macOS, KiB on Linux
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / unit
    if "asan" not in os.environ.get("LD_PRELOAD", ""):
        assert grown_mb < 512, f"peak memory grew by {grown_mb:.0f} MB"


# ------------------------------------------------------------ building blocks
odd_floats = st.sampled_from(
    [0.0, -0.0, 1.0, -1.0, 0.5, 1e-300, 5e-324, 1e308, -1e308, 3.4028235e38, 1e39, math.inf, -math.inf, math.nan]
)
floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True), odd_floats)
odd_ints = st.sampled_from(
    [0, 1, -1, -2, 2, 3, 2**31 - 1, 2**31, -(2**31) - 1, 2**32, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 2**70, -(2**70)]
)
ints = st.one_of(st.integers(-5, 40), odd_ints)
scalars = st.one_of(
    floats,
    ints,
    st.booleans(),
    st.none(),
    st.text(max_size=3),
    st.complex_numbers(max_magnitude=10),
    st.just(complex(math.nan, 0)),
    st.just([0.5]),
    st.just(b"1"),
)


def any_array(max_dims=2, max_side=6):
    """Arrays of any dtype crembo might meet, odd values included."""
    shapes = hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=0, max_side=max_side)
    return st.one_of(
        hnp.arrays(np.float64, shapes, elements=floats),
        hnp.arrays(np.float32, shapes, elements=st.floats(width=32, allow_nan=True, allow_infinity=True)),
        hnp.arrays(np.int64, shapes, elements=st.integers(-3, 2**40)),
        hnp.arrays(np.int32, shapes),
        hnp.arrays(np.uint64, shapes),
        hnp.arrays(np.int8, shapes),
        hnp.arrays(np.bool_, shapes),
        hnp.arrays(np.complex128, shapes, elements=st.complex_numbers(max_magnitude=2)),
        hnp.arrays(np.dtype("U2"), shapes),
        hnp.arrays(object, shapes, elements=scalars),
    )


def beliefs(min_n=1, max_n=8, max_c=5, dtype=None):
    """Valid belief matrices: rows on the simplex, with repeated entries."""

    @st.composite
    def make(draw):
        n = draw(st.integers(min_n, max_n))
        C = draw(st.integers(1, max_c))
        raw = draw(hnp.arrays(np.int64, (n, C), elements=st.integers(0, 4)))
        raw[:, 0] += raw.sum(axis=1) == 0
        P = raw / raw.sum(axis=1, keepdims=True)
        dt = dtype or draw(st.sampled_from([np.float64, np.float32]))
        return P.astype(dt)

    return make()


def check_clear(fn, *args, **kwargs):
    """fn(...) or None when it raised a clear error (ValueError/TypeError)."""
    try:
        return fn(*args, **kwargs)
    except CLEAR as exc:
        assert str(exc), f"{type(exc).__name__} without a message"
        return None


# ------------------------------------------------------------------- trees
def walk(state, x):
    """Reference walk of a tree state: the leaf row x reaches (float32
    comparison, NaN to missing_go_to_left)."""
    left, right = state["children_left"], state["children_right"]
    feature, threshold, nan_left = state["feature"], state["threshold"], state["missing_go_to_left"]
    node = 0
    while left[node] >= 0:
        v = x[feature[node]]
        if state["precision"] == "float32":
            with np.errstate(over="ignore"):  # beyond float32: +-inf, as the C++ cast gives
                v = float(np.float32(v))
        if math.isnan(v):
            node = left[node] if nan_left[node] else right[node]
        else:
            node = left[node] if v <= threshold[node] else right[node]
    return node


@st.composite
def valid_trees(draw, max_leaves=12):
    """Random trees in scikit-learn's layout (children after their parent,
    numbered depth-first), leaf probabilities on the simplex."""
    d = draw(st.integers(1, 4))
    C = draw(st.integers(1, 4))
    n_leaves = draw(st.integers(1, max_leaves))
    left, right, feature, threshold = [], [], [], []

    def grow(leaves):
        node = len(left)
        for arr in (left, right, feature, threshold):
            arr.append(None)
        if leaves == 1:
            left[node], right[node], feature[node], threshold[node] = -1, -1, -2, -2.0
            return node
        k = draw(st.integers(1, leaves - 1))
        feature[node] = draw(st.integers(0, d - 1))
        threshold[node] = draw(st.one_of(st.floats(-3, 3), odd_floats.filter(lambda t: not math.isnan(t))))
        left[node] = grow(k)
        right[node] = grow(leaves - k)
        return node

    grow(n_leaves)
    n = len(left)
    raw = draw(hnp.arrays(np.int64, (n, C), elements=st.integers(0, 3)))
    raw[:, 0] += raw.sum(axis=1) == 0
    proba = raw / raw.sum(axis=1, keepdims=True)
    return dict(
        children_left=np.array(left),
        children_right=np.array(right),
        feature=np.array(feature),
        threshold=np.array(threshold, dtype=np.float64),
        leaf_class=np.argmax(proba, axis=1).astype(np.int32),
        proba=proba,
        n_features=d,
        classes=np.arange(C),
        missing_go_to_left=draw(hnp.arrays(np.uint8, n, elements=st.integers(0, 1))),
        precision=draw(st.sampled_from(["float32", "float64"])),
    )


def rows_for(d):
    return hnp.arrays(
        np.float64, st.tuples(st.integers(1, 12), st.just(d)), elements=st.one_of(st.floats(-4, 4), odd_floats)
    )


def check_tree_predicts(tree, X):
    """A tree that was accepted must evaluate like the reference walk."""
    state = tree._state()
    leaves = tree.apply(X)
    expected = [walk(state, x) for x in X]
    np.testing.assert_array_equal(leaves, expected)
    assert np.all(state["children_left"][leaves] == -1)
    proba = tree.predict_proba(X)
    assert np.all((proba >= 0) & (proba <= 1))
    sums = proba.sum(axis=1)
    assert np.all((np.abs(sums - 1) <= 1e-5) | (sums == 0))
    expected = np.asarray(tree.classes_)[state["leaf_class"][leaves]]
    for got, want in zip(tree.predict(X).tolist(), expected.tolist()):
        assert got == want or (got != got and want != want)  # labels may be NaN


@FUZZ
@given(valid_trees(), st.data())
def test_valid_trees_evaluate_like_the_reference(spec, data):
    tree = _core.FastTree(**spec)
    X = data.draw(rows_for(spec["n_features"]))
    check_tree_predicts(tree, X)
    # the text format reads back the same tree
    again = _core.FastTree(**{**_core.fast_tree_text_state(tree.to_text()), "classes": spec["classes"]})
    np.testing.assert_array_equal(again.apply(X), tree.apply(X))


@FUZZ
@given(valid_trees(), st.data())
def test_fast_tree_constructor_with_damaged_arrays(spec, data):
    keys = [
        "children_left",
        "children_right",
        "feature",
        "threshold",
        "leaf_class",
        "proba",
        "missing_go_to_left",
        "n_features",
        "classes",
        "precision",
    ]
    for key in data.draw(st.lists(st.sampled_from(keys), min_size=1, max_size=3, unique=True)):
        if key in ("n_features", "precision"):
            spec[key] = data.draw(st.one_of(scalars, st.sampled_from(["float32", "float64", "half"])))
        elif key == "missing_go_to_left" and data.draw(st.booleans()):
            spec[key] = None
        elif data.draw(st.booleans()):
            spec[key] = data.draw(any_array())
        else:  # one entry changed, the rest intact
            arr = np.array(spec[key], dtype=object if data.draw(st.booleans()) else None)
            if arr.size:
                idx = tuple(data.draw(st.integers(0, s - 1)) for s in arr.shape)
                try:
                    arr[idx] = data.draw(scalars)
                except (ValueError, TypeError, OverflowError):
                    arr = arr.astype(object)
                    arr[idx] = data.draw(scalars)
            spec[key] = arr
    tree = check_clear(_core.FastTree, **spec)
    if tree is not None:
        X = data.draw(rows_for(tree.n_features_in_)) if tree.n_features_in_ <= 8 else None
        if X is not None:
            check_tree_predicts(tree, X)


@FUZZ
@given(valid_trees(), st.data())
def test_vote_forest_add_tree_with_random_arrays(spec, data):
    d, C = spec["n_features"], len(spec["classes"])
    forest = _core.VoteForest(d, C)
    states = []
    for _ in range(data.draw(st.integers(1, 3))):
        args = [
            spec["children_left"],
            spec["children_right"],
            spec["feature"],
            spec["threshold"],
            spec["leaf_class"].astype(np.int64),
            spec["missing_go_to_left"],
        ]
        if data.draw(st.booleans()):
            k = data.draw(st.integers(0, 5))
            args[k] = data.draw(st.one_of(any_array(max_dims=1, max_side=30), st.none()))
        n_before = forest.n_trees
        if check_clear(forest.add_tree, *args) is None and forest.n_trees == n_before + 1:
            # accepted: the index arrays held exact integers
            states.append(
                dict(
                    children_left=np.asarray(args[0]).astype(np.int64),
                    children_right=np.asarray(args[1]).astype(np.int64),
                    feature=np.asarray(args[2]).astype(np.int64),
                    threshold=np.asarray(args[3]).astype(np.float64),
                    missing_go_to_left=np.zeros(len(args[0]), np.uint8)
                    if args[5] is None
                    else np.asarray(args[5]).astype(np.uint8) != 0,
                    leaf_class=np.asarray(args[4]).astype(np.int64),
                    precision="float32",
                )
            )
        else:
            assert forest.n_trees == n_before  # a refused tree leaves nothing behind
    if not states:
        return
    X = data.draw(rows_for(d))
    got = forest.beliefs(X)
    expected = np.zeros((len(X), C))
    for s in states:
        for i, x in enumerate(X):
            expected[i, s["leaf_class"][walk(s, x)]] += 1
    np.testing.assert_allclose(got, expected / len(states), rtol=0, atol=1e-12)


# --------------------------------------------------------------- tree files
@st.composite
def tree_texts(draw):
    spec = draw(valid_trees(max_leaves=6))
    spec["classes"] = np.array(
        [draw(st.sampled_from(["a", "b b", "%", "", "7", "x%y"])) + str(k) for k in range(len(spec["classes"]))]
    )
    return _core.FastTree(**spec).to_text()


TOKENS = [
    "0",
    "-1",
    "1",
    "2",
    "-2",
    "1e308",
    "-1e308",
    "nan",
    "inf",
    "-inf",
    "0.5",
    "2147483648",
    "1073741825",
    "9223372036854775808",
    "16777217",
    "999999",
    "1e-320",
    "0x10",
    "",
    "leaf",
    "split",
    "end",
    "nodes",
    "%",
    "%zz",
    "\x00",
    "float32",
    "float64",
    "classes",
    "1.5",
    "-0",
]


@FUZZ
@given(tree_texts(), st.data())
def test_fast_tree_load_mutated_files(text, data):
    tokens = text.split(" ")
    lines = text.split("\n")
    how = data.draw(st.sampled_from(["token", "tokens", "line", "truncate", "bytes", "duplicate"]))
    if how in ("token", "tokens"):
        for _ in range(1 if how == "token" else data.draw(st.integers(2, 6))):
            k = data.draw(st.integers(0, len(tokens) - 1))
            tokens[k] = data.draw(st.sampled_from(TOKENS))
        text = " ".join(tokens)
    elif how == "line":
        k = data.draw(st.integers(0, len(lines) - 1))
        del lines[k]
        text = "\n".join(lines)
    elif how == "duplicate":
        k = data.draw(st.integers(0, len(lines) - 1))
        lines.insert(k, lines[k])
        text = "\n".join(lines)
    elif how == "truncate":
        text = text[: data.draw(st.integers(0, len(text)))]
    else:
        raw = bytearray(text.encode())
        for _ in range(data.draw(st.integers(1, 4))):
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
        text = raw.decode("latin-1")
    state = check_clear(_core.fast_tree_text_state, text)
    if state is not None:
        tree = _core.FastTree(**state)  # what the reader accepts is a valid tree
        check_tree_predicts(
            tree,
            data.draw(rows_for(tree.n_features_in_))
            if tree.n_features_in_ <= 8
            else np.zeros((0, tree.n_features_in_)),
        )


@FUZZ
@given(st.binary(max_size=400))
def test_fast_tree_load_random_bytes(tmp_path_factory, raw):
    path = tmp_path_factory.getbasetemp() / "fuzz.fasttree.txt"
    path.write_bytes(b"crembo-fast-tree 1\n" + raw if raw[:1] == b"p" else raw)
    tree = check_clear(crembo.FastTree.load, path)  # UnicodeDecodeError is a ValueError
    if tree is not None:
        assert tree.node_count >= 1


@FUZZ
@given(st.integers(1, 2**62), st.integers(1, 2**40), st.integers(0, 3))
def test_fast_tree_load_huge_headers(nodes, classes, pad):
    text = (
        f"crembo-fast-tree 1\nprecision float32\nfeatures 1\nclasses {classes}\nnodes {nodes}\n"
        + "leaf 0 1\n" * pad
        + "end\n"
    )
    state = check_clear(_core.fast_tree_text_state, text)
    if state is not None:  # only a one-node, one-class tree fits these lines
        assert nodes == 1 and classes == 1 and pad == 1


# ------------------------------------------------------------------ kernels
def ref_allowed(P, t):
    return P >= P.dtype.type(t)


@FUZZ
@given(beliefs(), st.data())
def test_kernels_on_valid_beliefs_match_numpy(P, data):
    n, C = P.shape
    pred = data.draw(hnp.arrays(np.int64, n, elements=st.integers(0, C - 1)))
    t = data.draw(st.one_of(st.sampled_from(sorted(set(P.ravel().tolist()))), st.floats(0, 1)))
    depth_i = P[np.arange(n), pred]
    np.testing.assert_array_equal(crembo.point_depth(P, pred), depth_i)
    assert crembo.depth(P, pred) == float(depth_i.min())
    np.testing.assert_array_equal(crembo.allowed_labels(P, t), ref_allowed(P, t))
    assert crembo.count_violations(P, pred, t) == int(np.sum(depth_i < P.dtype.type(t)))
    assert crembo.max_achievable_depth(P) == float(P.max(axis=1).min())
    lo, hi = sorted(data.draw(st.tuples(st.floats(-1, 2), st.floats(-1, 2))))
    v = P.ravel()
    expected = np.unique(v[(v > 0) & (v >= P.dtype.type(lo)) & (v <= P.dtype.type(hi))])
    np.testing.assert_array_equal(crembo.candidate_thresholds(P, lo=lo, hi=hi), expected)
    K = data.draw(st.integers(1, 12))
    budget = crembo.budgeted_thresholds(P, K, lo=lo, hi=hi)
    assert len(budget) <= K and set(budget.tolist()) <= set(expected.tolist())
    assert np.all(np.diff(budget) > 0)
    if len(expected):
        assert budget[0] == expected[0]  # the smallest entry >= lo is always included
    thr, frac = crembo.depth_profile(P, pred)
    np.testing.assert_allclose(frac, [(depth_i.astype(np.float64) >= x).mean() for x in thr])


@FUZZ
@given(
    hnp.arrays(np.int64, st.tuples(st.integers(1, 5), st.integers(1, 8)), elements=st.integers(0, 4)),
    st.one_of(st.none(), st.integers(1, 7), scalars),
    st.sampled_from([np.float64, np.float32, "f2", int]),
)
def test_beliefs_from_votes(votes, n_classes, dtype):
    P = check_clear(crembo.beliefs_from_votes, votes, n_classes, dtype=dtype)
    if P is None:
        return
    C = int(votes.max()) + 1 if n_classes is None else n_classes
    expected = np.stack([np.bincount(votes[:, i], minlength=C) for i in range(votes.shape[1])]) / len(votes)
    np.testing.assert_allclose(P, expected, rtol=1e-6)


KERNELS = {
    "point_depth": lambda P, a, s: crembo.point_depth(P, a),
    "depth": lambda P, a, s: crembo.depth(P, a, delta=s),
    "depth_profile": lambda P, a, s: crembo.depth_profile(P, a, thresholds=s),
    "max_achievable_depth": lambda P, a, s: crembo.max_achievable_depth(P),
    "candidate_thresholds": lambda P, a, s: crembo.candidate_thresholds(P, lo=s),
    "candidate_thresholds_hi": lambda P, a, s: crembo.candidate_thresholds(P, hi=s),
    "budgeted_thresholds": lambda P, a, s: crembo.budgeted_thresholds(P, s),
    "budgeted_thresholds_lo": lambda P, a, s: crembo.budgeted_thresholds(P, 3, lo=s),
    "allowed_labels": lambda P, a, s: crembo.allowed_labels(P, s),
    "count_violations": lambda P, a, s: crembo.count_violations(P, a, s),
    "is_consistent": lambda P, a, s: crembo.is_consistent(P, a, 0.5, delta=s),
    "beliefs_from_votes": lambda P, a, s: crembo.beliefs_from_votes(a, s),
    "Beliefs": lambda P, a, s: crembo.Beliefs(P, normalize=bool(s) if isinstance(s, bool) else False),
}


@FUZZ
@given(
    st.sampled_from(sorted(KERNELS)),
    st.one_of(any_array(), beliefs()),
    st.one_of(any_array(max_dims=2), st.lists(ints, max_size=6)),
    scalars,
)
def test_kernel_input_checks(name, P, arg, scalar):
    """Any input: a clear error or an answer, never a crash or another exception."""
    check_clear(KERNELS[name], P, arg, scalar)


@FUZZ
@given(st.sampled_from(sorted(KERNELS)), beliefs(), st.data())
def test_kernel_input_checks_near_valid(name, P, data):
    """Valid beliefs with one odd argument: closer to the paths that compute."""
    n, C = P.shape
    arg = data.draw(
        st.one_of(
            hnp.arrays(np.int64, n, elements=st.integers(-1, C)),
            hnp.arrays(np.float64, n, elements=st.sampled_from([0.0, 1.0, 0.5, math.nan])),
            hnp.arrays(np.int64, (2, n), elements=st.integers(0, C)),
        )
    )
    scalar = data.draw(st.one_of(st.floats(-1, 2), scalars))
    if data.draw(st.booleans()):  # one damaged entry
        P = P.copy()
        with np.errstate(over="ignore"):  # a float64 beyond float32 becomes inf in float32 beliefs
            P.flat[data.draw(st.integers(0, P.size - 1))] = data.draw(floats)
    check_clear(KERNELS[name], P, arg, scalar)


def _cuda_ok():
    return bool(_core.cuda_built) and bool(_core.cuda_available())


@FEW
@given(beliefs(min_n=4, max_n=30, max_c=3), st.data())
def test_memo_with_odd_arguments(P, data):
    n = P.shape[0]
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    X = rng.normal(size=(n, 2))
    kwargs = {}
    for key in data.draw(
        st.lists(
            st.sampled_from(
                [
                    "eta",
                    "delta",
                    "max_rounds",
                    "patience",
                    "sample_weight",
                    "candidates",
                    "oracle",
                    "classes",
                    "probe_lowest",
                ]
            ),
            max_size=2,
            unique=True,
        )
    ):
        if key in ("sample_weight", "candidates", "classes"):
            kwargs[key] = data.draw(
                st.one_of(
                    any_array(max_dims=1, max_side=n + 1),
                    hnp.arrays(np.float64, n, elements=st.floats(0, 3)),
                    st.none(),
                )
            )
        else:
            kwargs[key] = data.draw(scalars)
    res = check_clear(crembo.compress.memo, X, P, **kwargs)
    if res is not None and res.student is not None:
        # the reported depth is the student's real depth on the transfer set
        pred = res.student.predict(X)
        classes = np.arange(P.shape[1]) if kwargs.get("classes") is None else np.asarray(kwargs["classes"])
        idx = np.searchsorted(classes, pred)
        assert res.depth == pytest.approx(float(P[np.arange(n), idx].min()))
        assert res.threshold <= res.depth + 1e-6


@FEW
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 30), st.integers(1, 3)), elements=floats), st.data())
def test_hist_tree_on_odd_values(X, data):
    y = data.draw(hnp.arrays(np.int64, X.shape[0], elements=st.integers(0, 2)))
    with np.errstate(invalid="ignore", over="ignore"):  # scikit-learn's finiteness check sums inf - inf
        clf = check_clear(crembo.HistTreeClassifier(max_depth=data.draw(st.integers(1, 4))).fit, X, y)
    if clf is None:
        # refused: infinities, or finite values beyond float32
        with np.errstate(over="ignore"):
            assert not np.all(np.isfinite(X.astype(np.float32)) | np.isnan(X))
        return
    pred = clf.predict(X)
    assert set(pred.tolist()) <= set(y.tolist())
    leaves = clf.apply(X)
    assert np.all(clf.tree_.children_left[leaves] == -1)
