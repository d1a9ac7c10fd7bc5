"""The native kernels (``crembo._core``) and their public wrappers
(``crembo.core`` / ``crembo.*``) against the NumPy reference in
``tests/reference.py``: property tests on random inputs, edge cases and
argument validation."""

import math
import pickle

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import crembo
import crembo.core as cc
import reference as ref
from crembo import _core
from crembo._validation import as_beliefs
from reference import random_beliefs

PROPS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DTYPES = [np.float64, np.float32]


# ------------------------------------------------------------------ strategies
@st.composite
def belief_cases(draw, max_n=25, max_c=6):
    """(P, pred): a random belief matrix (distinct values or vote shares with
    ties and zeros, float32 or float64) and random label indices."""
    n = draw(st.integers(1, max_n))
    C = draw(st.integers(1, max_c))
    dtype = draw(st.sampled_from(DTYPES))
    kind = draw(st.sampled_from(["dirichlet", "votes"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    P = random_beliefs(rng, n, C, dtype=dtype, kind=kind, n_votes=draw(st.integers(1, 6)))
    pred = rng.integers(0, C, size=n).astype(np.int32)
    return P, pred


def _threshold_from(data, P):
    """A threshold: often an exact belief entry (>= semantics), else any float."""
    if data.draw(st.booleans()):
        flat = P.ravel()
        return float(flat[data.draw(st.integers(0, flat.size - 1))])
    return data.draw(st.floats(0.0, 1.0))


def _same(a, b):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


# ------------------------------------------------------- properties: beliefs
@PROPS
@given(
    m=st.integers(1, 9), n=st.integers(1, 20), C=st.integers(1, 5), f32=st.booleans(), seed=st.integers(0, 2**32 - 1)
)
def test_beliefs_from_votes_matches_reference(m, n, C, f32, seed):
    votes = np.random.default_rng(seed).integers(0, C, size=(m, n))
    dtype = np.float32 if f32 else np.float64
    want = ref.beliefs_from_votes(votes, C, dtype)
    got_core = _core.beliefs_from_votes(votes.astype(np.int32), C, f32)
    got = crembo.beliefs_from_votes(votes, C, dtype=dtype)
    for g in (got_core, got):
        assert g.dtype == dtype and g.shape == (n, C)
        _same(g, want)
    if votes.max() == C - 1:  # n_classes defaults to max + 1
        _same(crembo.beliefs_from_votes(votes, dtype=dtype), want)


# The vote counter has two paths: byte counters compared 16 points at a time
# (up to 32 classes, with spills of the byte counts past 248 members and a
# scattered tail for the last n % 16 points of a block) and scattered counts
# (more classes, or few members for many classes). These cases cross each
# boundary: member counts around the spill and the 8/16-bit count widths,
# class counts around the tile size (12) and the 32-class limit, and point
# counts around the 16-lane chunks and several blocks.
@pytest.mark.parametrize("m", [1, 63, 64, 65, 248, 249, 256, 300])
@pytest.mark.parametrize("C", [1, 2, 12, 13, 25, 32, 33])
@pytest.mark.parametrize("n", [15, 17, 5003])
@pytest.mark.parametrize("threads", [1, 2])
def test_beliefs_from_votes_paths(m, C, n, threads):
    rng = np.random.default_rng(m * 1000 + C * 10 + n)
    votes = rng.integers(0, C, size=(m, n)).astype(np.int32)
    old = _core.get_num_threads()
    _core.set_num_threads(threads)
    try:
        for f32 in (False, True):
            _same(
                _core.beliefs_from_votes(votes, C, f32),
                ref.beliefs_from_votes(votes, C, np.float32 if f32 else np.float64),
            )
        # Bad votes, including values that a byte narrowing would wrap onto a
        # class (256 + c, 2**16 + c) or saturate (127, 128, the int32 limits):
        # the first in (member, point) order is named.
        for value in (-1, C, 127, 128, 256, 256 + C - 1, 2**16, 2**31 - 1, -(2**31)):
            if 0 <= value < C:
                continue
            bad = votes.copy()
            flat = rng.choice(m * n, size=min(2, m * n), replace=False)
            bad.flat[flat] = value
            first = int(flat.min())
            msg = rf"votes\[{first // n}, {first % n}\] = {value} is outside the label range \[0, {C}\)"
            with pytest.raises(ValueError, match=msg):
                _core.beliefs_from_votes(bad, C, True)
    finally:
        _core.set_num_threads(old)


# --------------------------------------------------------- properties: depth
@PROPS
@given(case=belief_cases())
def test_point_depth_matches_reference(case):
    P, pred = case
    want = ref.point_depth(P, pred)
    for got in (_core.point_depth(P, pred), crembo.point_depth(P, pred), cc.point_depth(P, pred.astype(np.int64))):
        assert got.dtype == P.dtype
        _same(got, want)


@PROPS
@given(case=belief_cases(), delta=st.floats(0.0, 1.0, exclude_max=True))
def test_depth_matches_reference(case, delta):
    P, pred = case
    want = float(ref.empirical_depth(P, pred, delta))
    assert _core.empirical_depth(P, pred, delta) == want
    assert crembo.depth(P, pred, delta=delta) == want
    # delta = 0 is the plain empirical depth, the minimum point depth.
    assert crembo.depth(P, pred) == float(ref.point_depth(P, pred).min())
    # The delta-insensitive depth never decreases with delta.
    assert crembo.depth(P, pred, delta=delta) >= crembo.depth(P, pred)


@PROPS
@given(case=belief_cases(), data=st.data())
def test_depth_profile_matches_reference(case, data):
    P, pred = case
    d = ref.point_depth(P, pred)
    thr = np.array([_threshold_from(data, P) for _ in range(data.draw(st.integers(0, 6)))], dtype=np.float64)
    t_got, frac = crembo.depth_profile(P, pred, thr)
    _same(t_got, thr)
    _same(frac, ref.depth_profile(d, thr))
    _same(_core.depth_profile(d.astype(np.float64), thr), ref.depth_profile(d, thr))
    # Default thresholds: the distinct point depths, where the profile starts at 1.
    t_def, f_def = crembo.depth_profile(P, pred)
    _same(t_def, np.unique(d.astype(np.float64)))
    _same(f_def, ref.depth_profile(d, t_def))
    assert f_def[0] == 1.0 and np.all(np.diff(f_def) < 0)


@PROPS
@given(case=belief_cases())
def test_max_achievable_depth_and_row_argmax(case):
    P, pred = case
    want = float(ref.max_achievable_depth(P))
    assert _core.max_achievable_depth(P) == want
    assert crembo.max_achievable_depth(P) == want
    arg, mx = _core.row_argmax(P)
    want_arg, want_mx = ref.row_argmax(P)
    assert arg.dtype == np.int32 and mx.dtype == P.dtype
    _same(arg, want_arg)
    _same(mx, want_mx)
    # No student is deeper than max_achievable_depth; the row argmax attains it.
    assert crembo.depth(P, pred) <= want
    assert crembo.depth(P, arg) == want


# ---------------------------------------------------- properties: thresholds
@PROPS
@given(case=belief_cases(), data=st.data())
def test_candidate_thresholds_match_reference(case, data):
    P, _ = case
    lo = data.draw(st.floats(0.0, 1.0))
    hi = data.draw(st.floats(0.0, 1.0))
    want = ref.candidate_thresholds(P, lo, hi)
    for got in (_core.candidate_thresholds(P, lo, hi), crembo.candidate_thresholds(P, lo=lo, hi=hi)):
        assert got.dtype == P.dtype
        _same(got, want)
    full = crembo.candidate_thresholds(P)
    _same(full, ref.candidate_thresholds(P))
    assert np.all(np.diff(full) > 0) and np.all(full > 0)


@PROPS
@given(case=belief_cases(), K=st.integers(1, 12), data=st.data())
def test_budgeted_thresholds_match_reference(case, K, data):
    P, _ = case
    lo = data.draw(st.sampled_from([0.0, 0.1, 0.3, 0.5]))
    hi = data.draw(st.sampled_from([1.0, 0.9, 0.6]))
    want = ref.budgeted_thresholds(P, K, lo, hi)
    for got in (_core.budgeted_thresholds(P, K, lo, hi), crembo.budgeted_thresholds(P, K, lo=lo, hi=hi)):
        assert got.dtype == P.dtype
        _same(got, want)
    cand = ref.candidate_thresholds(P, lo, hi)
    got = crembo.budgeted_thresholds(P, K, lo=lo, hi=hi)
    assert len(got) <= K and np.all(np.isin(got, cand)) and np.all(np.diff(got) > 0)
    if cand.size:  # the smallest entry >= lo is always included
        assert got[0] == cand[0]


# ----------------------------------------- properties: allowed labels, counts
@PROPS
@given(case=belief_cases(), data=st.data())
def test_allowed_labels_and_violations_match_reference(case, data):
    P, pred = case
    t = _threshold_from(data, P)
    want_mask = ref.allowed_labels(P, t)
    for got in (_core.allowed_labels(P, t), crembo.allowed_labels(P, t)):
        assert got.dtype == bool and got.shape == P.shape
        _same(got, want_mask)
    want = ref.count_violations(P, pred, t)
    assert _core.count_violations(P, pred, t) == want
    assert crembo.count_violations(P, pred, t) == want
    # Violations are exactly the predictions outside the allowed sets.
    assert want == int(np.count_nonzero(~want_mask[np.arange(len(pred)), pred]))
    delta = data.draw(st.floats(0.0, 1.0, exclude_max=True))
    assert crembo.is_consistent(P, pred, t, delta=delta) == (want <= math.floor(delta * len(pred)))


@PROPS
@given(case=belief_cases(), data=st.data())
def test_allowed_targets_match_reference(case, data):
    P, pred = case
    t = _threshold_from(data, P)
    for prefer in (None, pred):
        targets, empty = _core.allowed_targets(P, t, prefer)
        want, want_empty = ref.allowed_targets(P, t, prefer)
        _same(targets, want)
        assert empty == want_empty
        ok = targets >= 0
        assert np.all(P[np.flatnonzero(ok), targets[ok]] >= P.dtype.type(t))


@PROPS
@given(case=belief_cases())
def test_depth_is_the_largest_consistent_threshold(case):
    """D_S(h) >= t exactly when h is consistent at t (docs/ALGORITHMS.md, section 1)."""
    P, pred = case
    d = crembo.depth(P, pred)
    assert crembo.count_violations(P, pred, d) == 0
    cand = crembo.candidate_thresholds(P)
    assert d in cand or d == 0.0  # candidates are the positive entries
    above = cand[cand > d]
    if above.size:
        assert crembo.count_violations(P, pred, above[0]) > 0
    # Some allowed set is empty exactly above the achievable depth.
    mad = crembo.max_achievable_depth(P)
    assert crembo.allowed_labels(P, mad).any(axis=1).all()
    if (cand > mad).any():
        assert not crembo.allowed_labels(P, cand[cand > mad][0]).any(axis=1).all()


# ----------------------------------------------------------------- edge cases
def _check_everything(P_in, pred_in, P, pred):
    """Every public wrapper on (possibly odd) inputs P_in/pred_in against the
    reference on the clean arrays P/pred."""
    dt = P.dtype
    d = crembo.point_depth(P_in, pred_in)
    assert d.dtype == dt
    _same(d, ref.point_depth(P, pred))
    assert crembo.depth(P_in, pred_in) == float(ref.empirical_depth(P, pred))
    assert crembo.depth(P_in, pred_in, delta=0.5) == float(ref.empirical_depth(P, pred, 0.5))
    assert crembo.max_achievable_depth(P_in) == float(ref.max_achievable_depth(P))
    cand = crembo.candidate_thresholds(P_in)
    assert cand.dtype == dt
    _same(cand, ref.candidate_thresholds(P))
    _same(crembo.budgeted_thresholds(P_in, 5), ref.budgeted_thresholds(P, 5))
    for t in list(cand[:3]) + [0.0, 0.5, 1.0]:
        _same(crembo.allowed_labels(P_in, t), ref.allowed_labels(P, t))
        assert crembo.count_violations(P_in, pred_in, t) == ref.count_violations(P, pred, t)
    thr, frac = crembo.depth_profile(P_in, pred_in)
    _same(frac, ref.depth_profile(ref.point_depth(P, pred), thr))


SHAPES = [(1, 1), (1, 4), (6, 1), (9, 2), (13, 3), (40, 100)]


@pytest.mark.parametrize("n,C", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["dirichlet", "votes"])
def test_shapes_and_dtypes(rng, n, C, dtype, kind):
    P = random_beliefs(rng, n, C, dtype=dtype, kind=kind)
    pred = rng.integers(0, C, size=n).astype(np.int32)
    _check_everything(P, pred, P, pred)
    # The raw core agrees on the same inputs.
    _same(_core.point_depth(P, pred), ref.point_depth(P, pred))
    _same(_core.row_argmax(P)[0], ref.row_argmax(P)[0])


@pytest.mark.parametrize("layout", ["fortran", "row_stride", "col_stride", "transposed"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_non_contiguous_input(rng, layout, dtype):
    P = random_beliefs(rng, 11, 4, dtype=dtype, kind="votes")
    pred = rng.integers(0, 4, size=11).astype(np.int32)
    if layout == "fortran":
        P_in = np.asfortranarray(P)
    elif layout == "row_stride":
        big = np.zeros((22, 4), dtype=dtype)
        big[::2] = P
        P_in = big[::2]
    elif layout == "col_stride":
        big = np.zeros((11, 12), dtype=dtype)
        big[:, ::3] = P
        P_in = big[:, ::3]
    else:
        P_in = np.ascontiguousarray(P.T).T
    assert not P_in.flags.c_contiguous
    big_pred = np.zeros(33, dtype=np.int64)
    big_pred[::3] = pred
    pred_in = big_pred[::3]
    _check_everything(P_in, pred_in, P, pred)
    # The raw core copies non-contiguous input as well.
    _same(_core.point_depth(P_in, pred_in), ref.point_depth(P, pred))
    assert _core.point_depth(P_in, pred_in).dtype == dtype
    _same(_core.allowed_labels(P_in, 0.3), ref.allowed_labels(P, 0.3))
    assert _core.count_violations(P_in, pred_in, 0.5) == ref.count_violations(P, pred, 0.5)
    _same(_core.candidate_thresholds(P_in), ref.candidate_thresholds(P))


def test_integer_and_bool_beliefs_are_accepted():
    onehot = np.eye(3, dtype=np.int64)[[0, 2, 1, 2]]
    pred = np.array([0, 2, 0, 2])
    P = onehot.astype(np.float64)
    _check_everything(onehot, pred, P, pred)
    _check_everything(onehot.astype(bool), pred, P, pred)
    assert crembo.point_depth(onehot, pred).dtype == np.float64
    assert crembo.depth(onehot, pred) == 0.0
    # The raw core takes other numeric dtypes too (as float64).
    _same(_core.point_depth(onehot, pred.astype(np.int32)), ref.point_depth(P, pred))


@pytest.mark.parametrize("pred_dtype", [np.int8, np.uint8, np.int16, np.int64, np.uint64, np.float64, np.float32])
def test_label_dtypes_are_accepted(rng, pred_dtype):
    P = random_beliefs(rng, 8, 3)
    pred = rng.integers(0, 3, size=8)
    got = crembo.point_depth(P, pred.astype(pred_dtype))
    _same(got, ref.point_depth(P, pred))
    assert crembo.count_violations(P, list(pred.astype(pred_dtype)), 0.3) == ref.count_violations(P, pred, 0.3)


@pytest.mark.parametrize("dtype", DTYPES)
def test_pandas_input_is_accepted(rng, dtype):
    P = random_beliefs(rng, 10, 3, dtype=dtype)
    pred = rng.integers(0, 3, size=10).astype(np.int32)
    df = pd.DataFrame(P, columns=["a", "b", "c"], index=np.arange(100, 110))
    s = pd.Series(pred, index=np.arange(50, 60))
    _check_everything(df, s, P, pred)
    votes = pd.DataFrame(np.vstack([pred, pred, (pred + 1) % 3]))
    _same(crembo.beliefs_from_votes(votes, 3), ref.beliefs_from_votes(votes.to_numpy(), 3))


def test_float32_stays_float32(rng):
    P = random_beliefs(rng, 12, 4, dtype=np.float32)
    pred = rng.integers(0, 4, size=12)
    assert crembo.point_depth(P, pred).dtype == np.float32
    assert crembo.candidate_thresholds(P).dtype == np.float32
    assert crembo.budgeted_thresholds(P, 3).dtype == np.float32
    assert _core.row_argmax(P)[1].dtype == np.float32
    assert _core.normalize_beliefs(P).dtype == np.float32
    assert as_beliefs(P).dtype == np.float32
    assert as_beliefs(P * 2, normalize=True).dtype == np.float32
    assert crembo.beliefs_from_votes(np.zeros((2, 3), int), 2, dtype=np.float32).dtype == np.float32
    # Everything else numeric becomes float64.
    exact = np.array([[0.25, 0.75, 0, 0], [0.5, 0.125, 0.125, 0.25]])  # sums exact in float16
    assert crembo.point_depth(exact.astype(np.float16), [1, 0]).dtype == np.float64
    assert crembo.point_depth(P.astype(np.float64), pred).dtype == np.float64
    assert _core.point_depth(exact.astype(np.float16), np.array([1, 0], np.int32)).dtype == np.float64


def test_float32_survives_pickling_in_the_wrapper(rng):
    P = pickle.loads(pickle.dumps(random_beliefs(rng, 5, 3, dtype=np.float32)))
    assert crembo.point_depth(P, [0, 1, 2, 0, 1]).dtype == np.float32


def test_core_keeps_unpickled_float32(rng):
    P = pickle.loads(pickle.dumps(random_beliefs(rng, 5, 3, dtype=np.float32)))
    assert P.dtype == np.float32
    assert _core.point_depth(P, np.array([0, 1, 2, 0, 1], np.int32)).dtype == np.float32


def test_big_endian_float32_stays_float32(rng):
    P = random_beliefs(rng, 5, 3, dtype=np.float32).astype(">f4")
    assert crembo.point_depth(P, [0, 1, 2, 0, 1]).dtype == np.float32


def test_n_equals_one():
    P = np.array([[0.2, 0.5, 0.3]])
    assert crembo.depth(P, [1]) == 0.5
    assert crembo.depth(P, [0], delta=0.99) == 0.2  # floor(0.99 * 1) = 0 ignored points
    assert crembo.max_achievable_depth(P) == 0.5
    _same(crembo.candidate_thresholds(P), [0.2, 0.3, 0.5])
    _same(crembo.budgeted_thresholds(P, 1), [0.2])
    _same(crembo.budgeted_thresholds(P, 2), [0.2, 0.5])
    _same(crembo.allowed_labels(P, 0.3), [[False, True, True]])
    _same(crembo.beliefs_from_votes([[2]], 3), [[0.0, 0.0, 1.0]])
    _same(crembo.depth_profile(P, [2])[1], [1.0])


def test_single_class():
    P = np.ones((5, 1))
    pred = np.zeros(5, int)
    assert crembo.depth(P, pred) == 1.0
    assert crembo.max_achievable_depth(P) == 1.0
    _same(crembo.candidate_thresholds(P), [1.0])
    _same(crembo.budgeted_thresholds(P, 4), [1.0])
    assert crembo.allowed_labels(P, 1.0).all()
    assert crembo.count_violations(P, pred, 1.0) == 0
    _same(_core.row_argmax(P)[0], np.zeros(5))
    _same(crembo.beliefs_from_votes(np.zeros((3, 5), int), 1), P)
    with pytest.raises(ValueError, match=r"pred\[0\] = 1"):
        crembo.point_depth(P, [1, 0, 0, 0, 0])


def test_ties():
    P = np.array([[0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3], [0.0, 0.5, 0.5]])
    arg, mx = _core.row_argmax(P)
    _same(arg, [0, 0, 1])  # the smallest index among the maxima
    _same(mx, [0.5, 1 / 3, 0.5])
    targets, empty = _core.allowed_targets(P, 1 / 3)
    _same(targets, [0, 0, 1])
    assert empty == 0
    targets, _ = _core.allowed_targets(P, 1 / 3, np.array([1, 2, 2], np.int32))
    _same(targets, [1, 2, 2])  # allowed preferences win over ties
    # Repeated values are one candidate; ties in point depths in the profile.
    _same(crembo.candidate_thresholds(P), [1 / 3, 0.5])
    thr, frac = crembo.depth_profile(P, [0, 1, 1])
    _same(thr, [1 / 3, 0.5])
    _same(frac, [1.0, 2 / 3])
    votes = np.array([[0, 1], [1, 0], [0, 0], [1, 1]])
    _same(crembo.beliefs_from_votes(votes), [[0.5, 0.5], [0.5, 0.5]])


def test_empty_allowed_sets():
    P = np.array([[0.6, 0.4], [0.3, 0.7], [0.5, 0.5]])
    t = 0.6  # above row 2's maximum
    mask = crembo.allowed_labels(P, t)
    _same(mask, [[True, False], [False, True], [False, False]])
    targets, empty = _core.allowed_targets(P, t)
    _same(targets, [0, 1, -1])
    assert empty == 1
    assert crembo.count_violations(P, [0, 1, 0], t) == 1
    assert not crembo.is_consistent(P, [0, 1, 0], t)
    assert crembo.is_consistent(P, [0, 1, 0], t, delta=0.34)  # floor(0.34 * 3) = 1
    # Above every entry: nothing allowed anywhere.
    assert not crembo.allowed_labels(P, 0.71).any()
    assert crembo.count_violations(P, [0, 1, 1], 0.71) == 3
    _same(_core.allowed_targets(P, 0.71)[0], [-1, -1, -1])
    assert crembo.candidate_thresholds(P, lo=0.71).size == 0
    assert crembo.budgeted_thresholds(P, 3, lo=0.71).size == 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_thresholds_equal_to_beliefs_use_ge(dtype):
    P = np.array([[0.1, 0.2, 0.7], [0.3, 0.3, 0.4], [0.05, 0.9, 0.05]], dtype=dtype)
    pred = np.array([1, 0, 0])
    for t in np.unique(P):
        t = float(t)  # exact: a float32 entry converts to float64 and back unchanged
        mask = crembo.allowed_labels(P, t)
        _same(mask, P >= P.dtype.type(t))
        assert mask[P == P.dtype.type(t)].all()
        assert crembo.count_violations(P, pred, t) == int(np.sum(P[np.arange(3), pred] < P.dtype.type(t)))
    d = crembo.depth(P, pred)
    assert d == float(P[2, 0])
    assert crembo.count_violations(P, pred, d) == 0  # D(h) >= D(h)
    assert crembo.is_consistent(P, pred, d)
    _same(crembo.depth_profile(P, pred, [d])[1], [1.0])
    # The smallest float above the depth makes the shallowest point a violation.
    up = float(np.nextafter(P.dtype.type(d), P.dtype.type(1)))
    assert crembo.count_violations(P, pred, up) == 1
    lo_t = float(P[0, 1])
    assert _core.candidate_thresholds(P, lo_t, lo_t)[0] == P[0, 1]  # [lo, hi] is inclusive


# --------------------------------------------------------------- parallel path
N_PAR = 40_000  # > 2**15: the kernels use their OpenMP team


@pytest.fixture(scope="module")
def large_case():
    rng = np.random.default_rng(7)
    P = random_beliefs(rng, N_PAR, 4, kind="votes", n_votes=9)
    pred = rng.integers(0, 4, size=N_PAR).astype(np.int32)
    votes = rng.integers(0, 5, size=(9, N_PAR)).astype(np.int32)
    return P, pred, votes


def _all_kernels(P, pred, votes):
    return {
        "votes64": _core.beliefs_from_votes(votes, 5, False),
        "votes32": _core.beliefs_from_votes(votes, 5, True),
        "point_depth": _core.point_depth(P, pred),
        "depth0": _core.empirical_depth(P, pred, 0.0),
        "depth_d": _core.empirical_depth(P, pred, 0.3),
        "mad": _core.max_achievable_depth(P),
        "argmax": _core.row_argmax(P)[0],
        "mask": _core.allowed_labels(P, 4 / 9),
        "viol": _core.count_violations(P, pred, 4 / 9),
        "targets": _core.allowed_targets(P, 4 / 9, pred)[0],
        "empty": _core.allowed_targets(P, 4 / 9)[1],
        "normalized": _core.normalize_beliefs(P * 3),
    }


@pytest.mark.parametrize("dtype", DTYPES)
def test_parallel_path_matches_reference(large_case, dtype, restore_threads):
    P, pred, votes = large_case
    P = P.astype(dtype)
    _core.set_num_threads(2)
    got = _all_kernels(P, pred, votes)
    _same(got["votes64"], ref.beliefs_from_votes(votes, 5, np.float64))
    _same(got["votes32"], ref.beliefs_from_votes(votes, 5, np.float32))
    _same(got["point_depth"], ref.point_depth(P, pred))
    assert got["depth0"] == float(ref.empirical_depth(P, pred))
    assert got["depth_d"] == float(ref.empirical_depth(P, pred, 0.3))
    assert got["mad"] == float(ref.max_achievable_depth(P))
    _same(got["argmax"], ref.row_argmax(P)[0])
    _same(got["mask"], ref.allowed_labels(P, 4 / 9))
    assert got["viol"] == ref.count_violations(P, pred, 4 / 9)
    _same(got["targets"], ref.allowed_targets(P, 4 / 9, pred)[0])
    assert got["empty"] == ref.allowed_targets(P, 4 / 9)[1] > 0
    np.testing.assert_allclose(got["normalized"], P, rtol=1e-6)
    _core.check_beliefs(P, 1e-4)
    # The public wrappers on the same sizes.
    assert crembo.depth(P, pred, delta=0.1) == float(ref.empirical_depth(P, pred, 0.1))
    _same(crembo.budgeted_thresholds(P, 7), ref.budgeted_thresholds(P, 7))


def test_parallel_results_do_not_depend_on_thread_count(large_case, restore_threads):
    P, pred, votes = large_case
    _core.set_num_threads(1)
    assert _core.get_num_threads() == 1
    one = _all_kernels(P, pred, votes)
    _core.set_num_threads(2)
    assert _core.get_num_threads() == (2 if _core.built_with_openmp() else 1)
    two = _all_kernels(P, pred, votes)
    for key in one:
        _same(one[key], two[key])
    _core.set_num_threads(0)
    assert _core.get_num_threads() >= 1


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("members", [7, 50, 3_000, 60_000, None])
def test_threshold_tables_on_every_path(members, dtype, restore_threads):
    """Vote shares with a few, some thousands (the hash tables grow and
    merge) and over 16,384 distinct values (sorted instead), and continuous
    beliefs, on 1 and 2 threads: the same answers as NumPy's."""
    rng = np.random.default_rng(members or 0)
    n, C = 40_000, 5
    if members is None:
        P = random_beliefs(rng, n, C)
    else:
        # Uniform cut points of [0, members]: counts k summing to members.
        cuts = np.sort(rng.integers(0, members + 1, size=(n, C - 1)), axis=1)
        edges = np.hstack([np.zeros((n, 1), np.int64), cuts, np.full((n, 1), members)])
        P = np.diff(edges, axis=1) / members
    P = P.astype(dtype)
    for threads in (1, 2):
        _core.set_num_threads(threads)
        for lo, hi in ((0.0, 1.0), (0.1, 0.6)):
            _same(_core.candidate_thresholds(P, lo, hi), ref.candidate_thresholds(P, lo, hi))
            for K in (1, 9, 40_000):
                _same(_core.budgeted_thresholds(P, K, lo, hi), ref.budgeted_thresholds(P, K, lo, hi))


def test_parallel_validation_names_the_first_bad_row(large_case, restore_threads):
    P, pred, votes = large_case
    _core.set_num_threads(2)
    bad = P.copy()
    bad[35_000] *= 2
    bad[20_000, 1] = np.nan
    with pytest.raises(ValueError, match=r"beliefs: row 20000 has a non-finite value"):
        _core.check_beliefs(bad, 1e-6)
    bad[20_000] = P[20_000]
    with pytest.raises(ValueError, match=r"beliefs: row 35000 sums to 2"):
        _core.check_beliefs(bad, 1e-6)
    bad[35_000] = 0
    with pytest.raises(ValueError, match=r"beliefs: row 35000 cannot be normalised"):
        _core.normalize_beliefs(bad)
    bad_pred = pred.copy()
    bad_pred[30_000] = 9
    with pytest.raises(ValueError, match=r"pred\[30000\] = 9"):
        _core.count_violations(P, bad_pred, 0.5)
    bad_votes = votes.copy()
    bad_votes[3, 33_000] = 5
    with pytest.raises(ValueError, match=r"votes\[3, 33000\] = 5 is outside"):
        _core.beliefs_from_votes(bad_votes, 5, False)


# ------------------------------------------------------------- normalization
def test_normalize_fixes_row_sums():
    raw = np.array([[1.0, 3.0], [2.0, 2.0], [0.0, 5.0]])
    with pytest.raises(ValueError, match=r"beliefs: row 0 sums to 4.*normalize=True"):
        crembo.point_depth(raw, [0, 1, 1])
    P = as_beliefs(raw, normalize=True)
    _same(P, [[0.25, 0.75], [0.5, 0.5], [0.0, 1.0]])
    _same(_core.normalize_beliefs(raw), P)
    _same(raw, [[1.0, 3.0], [2.0, 2.0], [0.0, 5.0]])  # the input is left alone
    assert crembo.depth(P, [1, 0, 1]) == 0.5


def test_zero_row_cannot_be_normalised():
    raw = np.array([[0.2, 0.8], [0.0, 0.0]])
    with pytest.raises(ValueError, match=r"beliefs: row 1 cannot be normalised"):
        as_beliefs(raw, normalize=True)
    with pytest.raises(ValueError, match=r"beliefs: row 1 cannot be normalised"):
        _core.normalize_beliefs(raw)


def test_row_sum_tolerances():
    P = np.array([[0.5, 0.5 + 5e-7]])
    as_beliefs(P)  # within 1e-6
    with pytest.raises(ValueError, match="beliefs: row 0 sums to"):
        as_beliefs(np.array([[0.5, 0.5 + 5e-6]]))
    as_beliefs(np.array([[0.5, 0.5 + 5e-5]], dtype=np.float32))  # float32: 1e-4
    with pytest.raises(ValueError, match="beliefs: row 0 sums to"):
        as_beliefs(np.array([[0.5, 0.5 + 5e-4]], dtype=np.float32))


# ------------------------------------------------------------------ bad input
GOOD_P = np.array([[0.2, 0.8], [0.6, 0.4], [0.5, 0.5]])
GOOD_PRED = np.array([1, 0, 0])
GOOD_PRED32 = GOOD_PRED.astype(np.int32)


def _with(i, j, value):
    P = GOOD_P.copy()
    P[i, j] = value
    return P


BAD_BELIEFS = [
    pytest.param(_with(1, 0, np.nan), ValueError, r"beliefs: row 1 has a non-finite value", id="nan"),
    pytest.param(_with(2, 1, np.inf), ValueError, r"beliefs: row 2 has a non-finite value", id="inf"),
    pytest.param(_with(0, 0, -np.inf), ValueError, r"beliefs: row 0 has a non-finite value", id="-inf"),
    pytest.param(
        np.array([[1.2, -0.2], [0.5, 0.5]]), ValueError, r"beliefs: row 0 has a negative value", id="negative"
    ),
    pytest.param(np.array([[0.5, 0.5], [0.5, 0.4]]), ValueError, r"beliefs: row 1 sums to 0\.9", id="row-sum"),
    pytest.param(np.zeros((0, 3)), ValueError, r"beliefs: expected a non-empty array", id="no-rows"),
    pytest.param(np.zeros((3, 0)), ValueError, r"beliefs: expected a non-empty array", id="no-columns"),
    pytest.param(np.array([0.5, 0.5]), ValueError, r"beliefs: expected a 2-d array", id="1-d"),
    pytest.param(np.full((2, 2, 2), 0.5), ValueError, r"beliefs: expected a 2-d array", id="3-d"),
    pytest.param(np.array(0.5), ValueError, r"beliefs: expected a 2-d array", id="0-d"),
    pytest.param(np.array([["0.5", "0.5"]]), TypeError, r"beliefs: expected a numeric array", id="str"),
    pytest.param(np.array([[0.5, None]], dtype=object), TypeError, r"beliefs: expected a numeric array", id="object"),
]


@pytest.mark.parametrize("P,exc,match", BAD_BELIEFS)
@pytest.mark.parametrize(
    "fn",
    [
        lambda P: crembo.point_depth(P, GOOD_PRED[: len(P)] if np.ndim(P) == 2 else GOOD_PRED),
        lambda P: crembo.depth(P, GOOD_PRED[: len(P)] if np.ndim(P) == 2 else GOOD_PRED),
        lambda P: crembo.max_achievable_depth(P),
        lambda P: crembo.candidate_thresholds(P),
        lambda P: crembo.budgeted_thresholds(P, 3),
        lambda P: crembo.allowed_labels(P, 0.5),
        lambda P: crembo.count_violations(P, GOOD_PRED[: len(P)] if np.ndim(P) == 2 else GOOD_PRED, 0.5),
    ],
    ids=[
        "point_depth",
        "depth",
        "max_achievable_depth",
        "candidate_thresholds",
        "budgeted_thresholds",
        "allowed_labels",
        "count_violations",
    ],
)
def test_bad_beliefs_raise(fn, P, exc, match):
    with pytest.raises(exc, match=match):
        fn(P)


@pytest.mark.parametrize(
    "pred,exc,match",
    [
        pytest.param([1, -1, 0], ValueError, r"pred\[1\] = -1 is outside the label range \[0, 2\)", id="negative"),
        pytest.param([1, 0, 2], ValueError, r"pred\[2\] = 2 is outside the label range \[0, 2\)", id="too-large"),
        pytest.param(np.array([1, 0, 2**40]), ValueError, r"pred\[2\] = 1099511627776 is outside", id="huge"),
        pytest.param([1, 0], ValueError, r"pred: expected 3 labels", id="too-short"),
        pytest.param([1, 0, 0, 1], ValueError, r"pred: expected 3 labels", id="too-long"),
        pytest.param([], ValueError, r"pred: expected 3 labels", id="empty"),
        pytest.param([[1, 0, 0]], ValueError, r"pred: expected a 1-d array", id="2-d"),
        pytest.param(1, ValueError, r"pred: expected a 1-d array", id="scalar"),
        pytest.param([1.0, 0.5, 0.0], TypeError, r"pred: expected integer label indices", id="fraction"),
        pytest.param([1.0, np.nan, 0.0], TypeError, r"pred: expected integer label indices", id="nan"),
        pytest.param(np.array(["a", "b", "a"]), TypeError, r"pred: expected integer label indices", id="str"),
        pytest.param(np.array([True, False, True]), TypeError, r"pred: expected integer label indices", id="bool"),
    ],
)
@pytest.mark.parametrize(
    "fn",
    [
        lambda p: crembo.point_depth(GOOD_P, p),
        lambda p: crembo.depth(GOOD_P, p),
        lambda p: crembo.depth_profile(GOOD_P, p),
        lambda p: crembo.count_violations(GOOD_P, p, 0.5),
        lambda p: crembo.is_consistent(GOOD_P, p, 0.5),
    ],
    ids=["point_depth", "depth", "depth_profile", "count_violations", "is_consistent"],
)
def test_bad_labels_raise(fn, pred, exc, match):
    with pytest.raises(exc, match=match):
        fn(pred)


@pytest.mark.parametrize(
    "call,exc,match",
    [
        pytest.param(
            lambda: crembo.depth(GOOD_P, GOOD_PRED, delta=1.0),
            ValueError,
            r"delta: expected a value in \[0\.0, 1\.0\)",
            id="delta=1",
        ),
        pytest.param(
            lambda: crembo.depth(GOOD_P, GOOD_PRED, delta=-0.1), ValueError, r"delta: expected a value", id="delta<0"
        ),
        pytest.param(lambda: crembo.depth(GOOD_P, GOOD_PRED, delta=np.nan), TypeError, r"delta", id="delta=nan"),
        pytest.param(lambda: crembo.depth(GOOD_P, GOOD_PRED, delta="0.1"), TypeError, r"delta", id="delta=str"),
        pytest.param(
            lambda: crembo.is_consistent(GOOD_P, GOOD_PRED, 0.5, delta=1.5),
            ValueError,
            r"delta",
            id="is_consistent-delta",
        ),
        pytest.param(
            lambda: crembo.budgeted_thresholds(GOOD_P, 0),
            ValueError,
            r"n_thresholds: expected an integer >= 1",
            id="K=0",
        ),
        pytest.param(lambda: crembo.budgeted_thresholds(GOOD_P, -3), ValueError, r"n_thresholds", id="K<0"),
        pytest.param(lambda: crembo.budgeted_thresholds(GOOD_P, 2.5), TypeError, r"n_thresholds", id="K=float"),
        pytest.param(
            lambda: crembo.allowed_labels(GOOD_P, np.nan),
            ValueError,
            r"threshold: expected a finite number",
            id="t=nan",
        ),
        pytest.param(lambda: crembo.count_violations(GOOD_P, GOOD_PRED, np.inf), ValueError, r"threshold", id="t=inf"),
        pytest.param(
            lambda: crembo.depth_profile(GOOD_P, GOOD_PRED, [[0.5]]),
            ValueError,
            r"thresholds: expected a 1-d array",
            id="profile-2d",
        ),
        pytest.param(
            lambda: crembo.depth_profile(GOOD_P, GOOD_PRED, [np.nan]),
            ValueError,
            r"thresholds: expected finite",
            id="profile-nan",
        ),
        pytest.param(
            lambda: crembo.beliefs_from_votes([[0, 1, 2]], 2),
            ValueError,
            r"votes\[0, 2\] = 2 is outside the label range \[0, 2\)",
            id="vote-too-large",
        ),
        pytest.param(
            lambda: crembo.beliefs_from_votes([[0, 1], [-1, 0]]),
            ValueError,
            r"votes\[1, 0\] = -1 is outside",
            id="vote-negative",
        ),
        pytest.param(
            lambda: crembo.beliefs_from_votes([[0.5, 1.0]]),
            TypeError,
            r"votes: expected integer label indices",
            id="votes-float",
        ),
        pytest.param(
            lambda: crembo.beliefs_from_votes([0, 1, 1]), ValueError, r"votes: expected a 2-d array", id="votes-1d"
        ),
        pytest.param(
            lambda: crembo.beliefs_from_votes(np.zeros((2, 0), int), 2),
            ValueError,
            r"votes: expected a non-empty array",
            id="votes-empty",
        ),
        pytest.param(
            lambda: crembo.beliefs_from_votes([[0, 1]], 0),
            ValueError,
            r"n_classes: expected an integer >= 1",
            id="n_classes=0",
        ),
        pytest.param(lambda: crembo.beliefs_from_votes([[0, 1]], 2.0), TypeError, r"n_classes", id="n_classes=float"),
        pytest.param(
            lambda: crembo.beliefs_from_votes([[0, 1]], 2, dtype=np.int32),
            ValueError,
            r"dtype: expected float32 or float64",
            id="votes-dtype",
        ),
    ],
)
def test_bad_arguments_raise(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


DEVICE_CALLS = {
    "beliefs_from_votes": lambda d: crembo.beliefs_from_votes([[0, 1]], 2, device=d),
    "point_depth": lambda d: crembo.point_depth(GOOD_P, GOOD_PRED, device=d),
    "depth": lambda d: crembo.depth(GOOD_P, GOOD_PRED, device=d),
    "depth_profile": lambda d: crembo.depth_profile(GOOD_P, GOOD_PRED, device=d),
    "max_achievable_depth": lambda d: crembo.max_achievable_depth(GOOD_P, device=d),
    "allowed_labels": lambda d: crembo.allowed_labels(GOOD_P, 0.5, device=d),
    "count_violations": lambda d: crembo.count_violations(GOOD_P, GOOD_PRED, 0.5, device=d),
    "is_consistent": lambda d: crembo.is_consistent(GOOD_P, GOOD_PRED, 0.5, device=d),
}


@pytest.mark.parametrize("name", list(DEVICE_CALLS))
@pytest.mark.parametrize("device", ["gpu", "CPU", "cuda:0", None])
def test_bad_device_raises(name, device):
    with pytest.raises(ValueError, match=r"device: expected one of 'cpu', 'cuda'"):
        DEVICE_CALLS[name](device)


@pytest.mark.parametrize("name", list(DEVICE_CALLS))
def test_cuda_device_without_cuda_raises(name):
    if crembo.cuda_available():
        pytest.skip("a CUDA device is available: device='cuda' works here (see test_cuda.py)")
    why = "has no CUDA kernels" if not _core.cuda_built else "no CUDA device is available"
    with pytest.raises(ValueError, match=rf"device='cuda': .*{why}"):
        DEVICE_CALLS[name]("cuda")
    DEVICE_CALLS[name]("cpu")  # the CPU path is always there


def test_cuda_flags_are_consistent():
    assert isinstance(_core.cuda_built, bool)
    assert crembo.cuda_available() == (_core.cuda_built and _core.cuda_available())
    if not _core.cuda_built:
        assert _core.cuda_available() is False
        assert not hasattr(_core, "cuda_point_depth")


# --------------------------------------------- the raw core validates as well
@pytest.mark.parametrize(
    "call,match",
    [
        pytest.param(
            lambda: _core.point_depth(GOOD_P, np.array([1, 0, 2], np.int32)), r"pred\[2\] = 2 is outside", id="pd-label"
        ),
        pytest.param(
            lambda: _core.point_depth(GOOD_P, np.array([1, -1, 0], np.int32)), r"pred\[1\] = -1 is outside", id="pd-neg"
        ),
        pytest.param(
            lambda: _core.point_depth(GOOD_P, np.array([1, 0], np.int32)),
            r"pred: expected 3 values, got 2",
            id="pd-len",
        ),
        pytest.param(
            lambda: _core.point_depth(GOOD_P, np.zeros((3, 1), np.int32)), r"pred: expected a 1-d array", id="pd-2d"
        ),
        pytest.param(
            lambda: _core.point_depth(GOOD_P[0], GOOD_PRED32), r"beliefs: expected a 2-d array, got 1", id="pd-1d"
        ),
        pytest.param(
            lambda: _core.point_depth(np.full((2, 2, 2), 0.5), GOOD_PRED32),
            r"beliefs: expected a 2-d array, got 3",
            id="pd-3d",
        ),
        pytest.param(
            lambda: _core.point_depth(np.zeros((0, 2)), np.zeros(0, np.int32)),
            r"beliefs: expected at least one point",
            id="pd-empty",
        ),
        pytest.param(
            lambda: _core.max_achievable_depth(np.zeros((2, 0))),
            r"beliefs: expected at least one class",
            id="mad-no-class",
        ),
        pytest.param(
            lambda: _core.empirical_depth(GOOD_P, GOOD_PRED32, 1.0),
            r"delta: expected a fraction in \[0, 1\)",
            id="delta=1",
        ),
        pytest.param(lambda: _core.empirical_depth(GOOD_P, GOOD_PRED32, -0.5), r"delta", id="delta<0"),
        pytest.param(lambda: _core.empirical_depth(GOOD_P, GOOD_PRED32, float("nan")), r"delta", id="delta=nan"),
        pytest.param(
            lambda: _core.count_violations(GOOD_P, np.array([1, 0, 5], np.int32), 0.5), r"pred\[2\] = 5", id="cv-label"
        ),
        pytest.param(
            lambda: _core.allowed_targets(GOOD_P, 0.5, np.array([0, 7, 0], np.int32)),
            r"prefer\[1\] = 7",
            id="at-prefer",
        ),
        pytest.param(
            lambda: _core.check_beliefs(_with(1, 1, np.nan), 1e-6),
            r"beliefs: row 1 has a non-finite value at column 1",
            id="cb-nan",
        ),
        pytest.param(
            lambda: _core.check_beliefs(np.array([[1.5, -0.5]]), 1e-6),
            r"beliefs: row 0 has a negative value",
            id="cb-neg",
        ),
        pytest.param(
            lambda: _core.check_beliefs(np.array([[0.5, 0.6]]), 1e-6), r"beliefs: row 0 sums to 1\.1", id="cb-sum"
        ),
        pytest.param(lambda: _core.check_beliefs(GOOD_P, -1.0), r"tol: expected a non-negative tolerance", id="cb-tol"),
        pytest.param(lambda: _core.budgeted_thresholds(GOOD_P, 0), r"n_thresholds: expected at least 1", id="K=0"),
        pytest.param(
            lambda: _core.beliefs_from_votes(np.array([[0, 3]], np.int32), 3, False),
            r"votes\[0, 1\] = 3 is outside the label range \[0, 3\)",
            id="votes-label",
        ),
        pytest.param(
            lambda: _core.beliefs_from_votes(np.array([0, 1], np.int32), 2, False),
            r"votes: expected a 2-d array",
            id="votes-1d",
        ),
        pytest.param(
            lambda: _core.beliefs_from_votes(np.zeros((0, 3), np.int32), 2, False),
            r"votes: expected at least one hypothesis",
            id="votes-m0",
        ),
        pytest.param(
            lambda: _core.beliefs_from_votes(np.zeros((2, 3), np.int32), 0, False), r"at least one class", id="votes-C0"
        ),
        pytest.param(
            lambda: _core.depth_profile(np.zeros(0), np.array([0.5])),
            r"depth: expected at least one point",
            id="profile-empty",
        ),
    ],
)
def test_core_bad_input_raises_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize(
    "fn",
    [
        lambda pred: _core.point_depth(GOOD_P, pred),
        lambda pred: _core.count_violations(GOOD_P, pred, 0.5),
    ],
    ids=["point_depth", "count_violations"],
)
def test_core_rejects_labels_beyond_int32(fn):
    with pytest.raises(ValueError, match="pred"):
        fn(np.array([1, 0, 2**32], dtype=np.int64))


@pytest.mark.filterwarnings("ignore::numpy.exceptions.ComplexWarning")
def test_complex_beliefs_are_rejected():
    with pytest.raises(TypeError, match="beliefs"):
        crembo.point_depth(np.array([[0.5 + 0.3j, 0.5], [0.5, 0.5]]), [0, 1])


def test_budget_at_least_the_number_of_entries_gives_every_candidate(rng):
    P = random_beliefs(rng, 6, 3, kind="votes")
    cand = ref.candidate_thresholds(P)
    N = int(np.count_nonzero(P > 0))  # entries counted with repeats
    for K in (N, N + 1, 10 * P.size):
        _same(crembo.budgeted_thresholds(P, K), cand)


def test_huge_budget_is_capped_at_the_number_of_entries():
    P = np.array([[0.2, 0.8], [0.5, 0.5]])
    _same(crembo.budgeted_thresholds(P, 2**62), [0.2, 0.5, 0.8])


# ----------------------------------------------------- validated beliefs
def test_validated_beliefs_skip_the_check_and_give_the_same_answers(rng, monkeypatch):
    P = random_beliefs(rng, 300, 4)
    pred = rng.integers(0, 4, size=300)
    B = crembo.Beliefs(P)
    assert B.shape == (300, 4) and B.dtype == np.float64 and len(B) == 300
    assert np.asarray(B) is B.array and np.shares_memory(B.array, P)
    expected = (
        crembo.depth(P, pred),
        crembo.count_violations(P, pred, 0.2),
        crembo.allowed_labels(P, 0.2),
        crembo.point_depth(P, pred),
        crembo.max_achievable_depth(P),
    )
    calls = []
    real = _core.check_beliefs
    monkeypatch.setattr(_core, "check_beliefs", lambda *a: (calls.append(1), real(*a))[1])
    got = (
        crembo.depth(B, pred),
        crembo.count_violations(B, pred, 0.2),
        crembo.allowed_labels(B, 0.2),
        crembo.point_depth(B, pred),
        crembo.max_achievable_depth(B),
    )
    assert calls == []  # validated once, when B was made
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)
    crembo.depth(P, pred)
    assert calls == [1]  # a plain array is still checked on every call
    # The wrapped matrix is read-only and float32 stays float32.
    with pytest.raises(ValueError, match="read-only"):
        B.array[0, 0] = 1.0
    assert crembo.Beliefs(P.astype(np.float32)).dtype == np.float32


def test_validated_beliefs_reject_bad_input_when_made(rng):
    P = random_beliefs(rng, 5, 3)
    bad = P.copy()
    bad[2, 0] += 0.5
    with pytest.raises(ValueError, match="row 2"):
        crembo.Beliefs(bad)
    np.testing.assert_allclose(crembo.Beliefs(bad, normalize=True).array.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="2-d"):
        crembo.Beliefs(P[0])
    with pytest.raises(TypeError, match="numeric"):
        crembo.Beliefs(np.array([["a", "b"]]))


def test_validated_beliefs_as_precomputed_teacher(rng):
    X = rng.normal(size=(120, 3))
    y = (X[:, 0] > 0).astype(int)
    P = np.where(np.c_[y == 0, y == 1], 0.9, 0.1)
    plain = crembo.CREMBOClassifier(P, random_state=0).fit(X, y)
    wrapped = crembo.CREMBOClassifier(crembo.Beliefs(P), random_state=0).fit(X, y)
    assert wrapped.threshold_ == plain.threshold_
    np.testing.assert_array_equal(wrapped.predict(X), plain.predict(X))


def test_validated_beliefs_in_memo(rng):
    X = rng.normal(size=(80, 3))
    P = random_beliefs(rng, 80, 3)
    plain = crembo.memo(X, P, random_state=0)
    wrapped = crembo.memo(X, crembo.Beliefs(P), random_state=0)
    assert wrapped.threshold == plain.threshold
    np.testing.assert_array_equal(wrapped.pred, plain.pred)


def test_first_bad_vote_is_reported_whatever_the_thread_count(restore_threads):
    # Blocks of points are split over threads; the message must still name
    # the first bad vote in (member, point) order, as the CUDA kernel does.
    votes = np.zeros((128, 8192), np.int32)
    votes[0, 5] = 9
    votes[100, 7000] = 9
    for threads in (1, 2, 4):
        _core.set_num_threads(threads)
        with pytest.raises(ValueError, match=r"votes\[0, 5\] = 9"):
            crembo.beliefs_from_votes(votes, 3)


# ------------------------------------------------------------ native gateway
def test_only_the_gateway_imports_the_native_core():
    # Issue 14, item 7: crembo._native is the one module that imports _core;
    # every other module calls native code through it.
    import ast
    from pathlib import Path

    importers = []
    for path in sorted(Path(crembo.__file__).parent.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = {a.name for a in node.names}
                if node.module in ("_core", "crembo._core") or "_core" in names and node.module in (None, "crembo"):
                    importers.append(path.name)
            elif isinstance(node, ast.Import) and any(a.name == "crembo._core" for a in node.names):
                importers.append(path.name)
    assert sorted(set(importers)) == ["_native.py"]


def test_gateway_exposes_every_binding_and_picks_kernels():
    from crembo import _native

    public = [n for n in dir(_core) if not n.startswith("_")]
    assert all(getattr(_native, n) is getattr(_core, n) for n in public if n != "cuda_built")
    assert _native.cuda_built is bool(_core.cuda_built)
    assert _native.version == crembo.__version__ == _core.__version__
    assert _native.kernel("point_depth") is _core.point_depth
    if _core.cuda_built:
        assert _native.kernel("point_depth", "cuda") is _core.cuda_point_depth
    assert _native.resolve_device("auto") == "cpu"
    assert _native.resolve_device("cuda") == "cuda"
    assert crembo.cuda_available() == (bool(_core.cuda_built) and bool(_core.cuda_available()))


# ------------------------------------------------------ one device default
@pytest.mark.parametrize("name", list(DEVICE_CALLS))
def test_auto_device_is_the_cpu_for_numpy_inputs(name):
    def same(a, b):
        if isinstance(a, tuple):
            return all(same(x, y) for x, y in zip(a, b))
        return np.array_equal(np.asarray(a), np.asarray(b))

    assert same(DEVICE_CALLS[name]("auto"), DEVICE_CALLS[name]("cpu"))


def test_device_has_one_default_across_crembo():
    # Issue 14, item 6: "auto" everywhere; it runs where the inputs live
    # (NumPy arrays: the CPU; a given torch module: its own device) and a
    # network an estimator builds trains on CUDA when PyTorch sees one.
    import inspect

    import crembo.compress.regression as cr
    from crembo.compress.teachers import teacher_beliefs

    funcs = [getattr(cc, n) for n in DEVICE_CALLS] + [teacher_beliefs]
    funcs += [cr.regression_point_depth, cr.regression_depth, cr.regression_violations]
    funcs += [crembo.CREMBOClassifier, crembo.LabelDistiller]
    try:
        from crembo.nn import NetClassifier, TorchTeacher
        from crembo.nn.teachers import torch_beliefs

        funcs += [NetClassifier, TorchTeacher, torch_beliefs]
    except ImportError:  # torch is optional
        pass
    defaults = {f.__name__: inspect.signature(f).parameters["device"].default for f in funcs}
    assert set(defaults.values()) == {"auto"}, defaults
    assert crembo.CREMBOClassifier().get_params()["device"] == "auto"


@pytest.mark.parametrize("distinct", [51, 3000, 16384, 16385, 60000])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_thresholds_hashed_and_sorted_paths_agree_with_the_reference(distinct, dtype):
    # Few distinct values are gathered in a hash table, many are sorted (the
    # switch comes at 2^14 distinct values, possibly after many repeats).
    rng = np.random.default_rng(distinct)
    grid = np.sort(rng.uniform(0.0, 1.0, size=distinct)).astype(dtype)
    P = grid[rng.integers(0, distinct, size=(30000, 3))]
    P[rng.random(P.shape) < 0.1] = 0  # zeros never count
    for lo, hi in [(0.0, 1.0), (0.2, 0.7), (0.5, 0.5)]:
        np.testing.assert_array_equal(_core.candidate_thresholds(P, lo, hi), ref.candidate_thresholds(P, lo, hi))
        for K in (1, 2, 33, 10**6):
            np.testing.assert_array_equal(
                _core.budgeted_thresholds(P, K, lo, hi), ref.budgeted_thresholds(P, K, lo, hi)
            )


# ------------------------------------------------------------- leaf sums
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("cols", [None, [2, 0], [1, 1, 3]])
def test_leaf_sums_equal_bincounts(dtype, weighted, cols):
    from crembo import _native

    rng = np.random.default_rng(3)
    n, C, nodes = 5003, 4, 23
    P = rng.dirichlet(np.ones(C), size=n).astype(dtype)
    leaves = rng.integers(0, nodes, size=n)
    leaves[leaves == 5] = 6  # a node no row reaches
    w = rng.random(n) * 3 if weighted else None
    cols = np.arange(C) if cols is None else np.asarray(cols)
    got = _native.leaf_sums(P, leaves, w, cols, nodes)
    P64 = P.astype(np.float64)
    want = np.column_stack(
        [np.bincount(leaves, weights=P64[:, c] if w is None else P64[:, c] * w, minlength=nodes) for c in cols]
    )
    np.testing.assert_array_equal(got, want)  # the same sums in the same order
    assert got.shape == (nodes, len(cols)) and not got[5].any()
    # int32 leaves are taken too
    np.testing.assert_array_equal(_native.leaf_sums(P, leaves.astype(np.int32), w, cols, nodes), want)


def test_leaf_sums_bad_input():
    from crembo import _native

    P = np.full((4, 2), 0.5)
    leaves, cols = np.array([0, 1, 2, 1]), np.array([0, 1])
    with pytest.raises(ValueError, match=r"leaves\[2\] = 2 is outside \[0, 2\)"):
        _native.leaf_sums(P, leaves, None, cols, 2)
    with pytest.raises(ValueError, match=r"leaves\[0\] = -1"):
        _native.leaf_sums(P, np.array([-1, 0, 0, 0]), None, cols, 3)
    with pytest.raises(ValueError, match=r"cols\[1\] = 2 is outside \[0, 2\)"):
        _native.leaf_sums(P, leaves, None, np.array([0, 2]), 3)
    with pytest.raises(TypeError, match="leaves: expected integers"):
        _native.leaf_sums(P, leaves.astype(float), None, cols, 3)
    with pytest.raises(ValueError, match="leaves: expected 4 values, got 3"):
        _native.leaf_sums(P, leaves[:3], None, cols, 3)
    with pytest.raises(ValueError, match="sample_weight: expected 4 values"):
        _native.leaf_sums(P, leaves, np.ones(5), cols, 3)
    with pytest.raises(ValueError, match="n_nodes"):
        _native.leaf_sums(P, leaves, None, cols, -1)
