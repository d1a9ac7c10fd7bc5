"""MEMO: ``crembo.compress.memo`` and the native ``_core.memo_search`` on constructed
cases with known answers, against the reference search in ``reference.py``."""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.dummy import DummyClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor, ExtraTreeClassifier

import crembo
import reference as ref
from crembo import _core
from reference import random_beliefs

PROPS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Boom(Exception):
    """Raised by test callbacks; must come back out of the native search unchanged."""


# -------------------------------------------------------------- exact oracles
def _stumps(n, C):
    """All threshold stumps on n sorted distinct points: (split, left, right)."""
    return [(s, a, b) for s in range(n + 1) for a in range(C) for b in range(C)]


def _stump_pred(n, s, a, b):
    return np.where(np.arange(n) < s, a, b).astype(np.int32)


def _deepest_stump_depth(P):
    n, C = P.shape
    return max(ref.empirical_depth(P, _stump_pred(n, *h)) for h in _stumps(n, C))


def _exact_stump_oracle(n, C):
    """fit_mask callback: a stump consistent with the mask when one exists."""

    def fit_mask(mask):
        assert mask.shape == (n, C) and mask.dtype == bool
        for h in _stumps(n, C):
            pred = _stump_pred(n, *h)
            if mask[np.arange(n), pred].all():
                return pred
        return _stump_pred(n, 0, 0, 0)  # none is consistent: any stump fails

    return fit_mask


@PROPS
@given(n=st.integers(1, 9), C=st.integers(1, 4), f32=st.booleans(), votes=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_exact_stump_oracle_finds_the_deepest_stump(n, C, f32, votes, seed):
    P = random_beliefs(
        np.random.default_rng(seed),
        n,
        C,
        dtype=np.float32 if f32 else np.float64,
        kind="votes" if votes else "dirichlet",
        n_votes=5,
    )
    cand = crembo.candidate_thresholds(P)
    res = _core.memo_search(P, cand, fit_mask=_exact_stump_oracle(n, C), oracle="single")
    best = _deepest_stump_depth(P)
    if best == 0:  # no stump is consistent at any positive threshold
        assert res["best_threshold"] is None and res["best_candidate"] == -1
        return
    assert res["best_threshold"] == float(best)
    assert cand[res["best_candidate"]] == best
    assert ref.empirical_depth(P, res["best_pred"]) == best
    assert len(res["trace"]) <= max_probes(len(cand))


@PROPS
@given(n=st.integers(1, 15), C=st.integers(1, 5), seed=st.integers(0, 2**32 - 1), votes=st.booleans())
def test_any_labeling_oracle_reaches_the_achievable_depth(n, C, seed, votes):
    """H = every labeling: the deepest hypothesis is the row argmax, of depth
    min_i max_y p(y|x_i). A memorising callback is an exact oracle."""
    P = random_beliefs(np.random.default_rng(seed), n, C, kind="votes" if votes else "dirichlet", n_votes=4)
    cand = crembo.candidate_thresholds(P)  # also thresholds above the achievable depth
    res = _core.memo_search(P, cand, fit_labels=lambda targets, w: targets, max_rounds=1)
    mad = crembo.max_achievable_depth(P)
    assert res["best_threshold"] == mad
    assert crembo.depth(P, res["best_pred"]) == mad
    assert res["n_fits"] <= len(res["trace"])  # probes above mad need no fit


@pytest.mark.parametrize("oracle", ["reweight", "single"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_memo_with_a_memorising_tree_reaches_the_achievable_depth(rng, oracle, dtype):
    X = rng.normal(size=(60, 3))
    P = random_beliefs(rng, 60, 4, dtype=dtype)
    res = crembo.memo(X, P, DecisionTreeClassifier(random_state=0), oracle=oracle)
    mad = crembo.max_achievable_depth(P)
    assert res.threshold == mad and res.depth == mad
    assert crembo.count_violations(P, res.pred, res.threshold) == 0
    np.testing.assert_array_equal(res.student.predict(X), res.pred)
    assert res.candidates.dtype == dtype and res.candidates[-1] == mad


# ------------------------------------------------ the search against reference
def _group_majority(groups, C):
    """A deterministic student: per group, the weighted majority target
    (smallest label on ties). Few groups = a small hypothesis class."""

    def fit(targets, w):
        pred = np.empty(len(targets), dtype=np.int32)
        for g in np.unique(groups):
            idx = groups == g
            score = np.bincount(targets[idx], weights=w[idx], minlength=C)
            pred[idx] = int(np.argmax(score))
        return pred

    return fit


def _hopeless_problem(n, seed=0, C=4, n_groups=8):
    """One-hot beliefs with random labels and a group-constant student: at
    every threshold (one candidate, 1.0) a quarter or so of the points can be
    fitted, and no reweighting brings the violations below the first round's
    (the unweighted majority per group violates least)."""
    rng = np.random.default_rng(seed)
    P = np.eye(C)[rng.integers(0, C, size=n)]
    return P, _group_majority(rng.integers(0, n_groups, size=n), C)


@pytest.mark.parametrize(
    "n, max_rounds, probe_lowest, rounds",
    [
        (3000, 8, True, 3),  # hopeless from the third round
        (3000, 30, True, 7),  # from a quarter of the rounds
        (3000, 8, False, 8),  # only the feasibility probe gives up
        (100, 8, True, 8),  # at most 100 violations: never "hopeless"
    ],
)
def test_hopeless_feasibility_probe_gives_up(n, max_rounds, probe_lowest, rounds):
    P, student = _hopeless_problem(n)
    cand = crembo.candidate_thresholds(P)
    assert cand.tolist() == [1.0]
    got = _core.memo_search(P, cand, fit_labels=student, max_rounds=max_rounds, probe_lowest=probe_lowest)
    assert got["best_threshold"] is None
    assert [r["rounds"] for r in got["trace"]] == [rounds]
    assert got["n_fits"] == rounds
    assert got["trace"][0]["violations"] > min(100, n // 4)
    want = ref.memo_search(P, cand, fit_labels=student, max_rounds=max_rounds, probe_lowest=probe_lowest)
    assert got["trace"] == want["trace"]
    assert (_core.HOPELESS_SHARE, _core.HOPELESS_MIN) == (0.05, 100)  # the rule the reference mirrors
    assert crembo.compress.memo.hopeless_rule(n, max_rounds) == (max(2, max_rounds // 4 - 1), max(100, n // 20))


def max_probes(k, probe_lowest=True):
    """Probes of MEMO's search over k candidates: a binary search, after one
    probe of the smallest candidate when ``probe_lowest``."""
    if probe_lowest:
        return 1 + math.ceil(math.log2(k)) if k else 0
    return math.ceil(math.log2(k + 1))


# The drawn cases both search tests share: beliefs of n points over C
# classes, a grouping oracle, the budget, delta, the oracle kind and weights.
SEARCH_CASES = dict(
    n=st.integers(1, 14),
    C=st.integers(1, 4),
    n_groups=st.integers(1, 5),
    seed=st.integers(0, 2**32 - 1),
    f32=st.booleans(),
    max_rounds=st.integers(1, 5),
    delta=st.sampled_from([0.0, 0.0, 0.1, 0.3]),
    oracle=st.sampled_from(["reweight", "single"]),
    weighted=st.booleans(),
)


def _search_case(n, C, n_groups, seed, f32, weighted):
    """(beliefs, candidate thresholds, weights or None, a group-majority
    student) of one drawn search case."""
    rng = np.random.default_rng(seed)
    P = random_beliefs(rng, n, C, dtype=np.float32 if f32 else np.float64, kind="votes", n_votes=5)
    groups = rng.integers(0, n_groups, size=n)
    cand = crembo.candidate_thresholds(P)
    sw = rng.uniform(0.5, 2.0, size=n) if weighted else None
    return P, cand, sw, _group_majority(groups, C)


@PROPS
@given(
    **SEARCH_CASES,
    eta=st.sampled_from([0.5, 1.0, 3.0]),
    probe_lowest=st.booleans(),
)
def test_memo_search_matches_reference(
    n, C, n_groups, seed, f32, max_rounds, eta, delta, oracle, weighted, probe_lowest
):
    P, cand, sw, student = _search_case(n, C, n_groups, seed, f32, weighted)

    calls, ref_calls = [], []

    def record(log):
        def fit_labels(targets, w):
            log.append(("labels", np.array(targets), np.array(w)))
            return student(targets, w)

        def fit_mask(mask):
            log.append(("mask", np.array(mask)))
            return student(np.argmax(mask, axis=1), np.ones(len(mask)))

        def accept():
            log.append(("accept",))

        return fit_labels, fit_mask, accept

    fl, fm, acc = record(calls)
    got = _core.memo_search(
        P,
        cand,
        fit_labels=fl,
        fit_mask=fm,
        accept=acc,
        oracle=oracle,
        max_rounds=max_rounds,
        eta=eta,
        delta=delta,
        sample_weight=sw,
        probe_lowest=probe_lowest,
    )
    rfl, rfm, racc = record(ref_calls)
    want = ref.memo_search(
        P,
        cand,
        accept=racc,
        fit_labels=rfl,
        fit_mask=rfm,
        oracle=oracle,
        max_rounds=max_rounds,
        eta=eta,
        delta=delta,
        sample_weight=sw,
        probe_lowest=probe_lowest,
    )

    assert got["trace"] == want["trace"]
    assert got["best_candidate"] == want["best_candidate"]
    assert got["best_threshold"] == want["best_threshold"]
    assert got["n_fits"] == want["n_fits"]
    np.testing.assert_array_equal(got["best_pred"], want["best_pred"])
    # The callbacks saw the same targets, weights and masks, in the same order.
    assert [c[0] for c in calls] == [c[0] for c in ref_calls]
    for c, r in zip(calls, ref_calls):
        for a, b in zip(c[1:], r[1:]):
            if a.dtype == np.float64:
                np.testing.assert_allclose(a, b, rtol=1e-12)
            else:
                np.testing.assert_array_equal(a, b)

    # Binary-search invariants.
    trace = got["trace"]
    assert len(trace) <= max_probes(len(cand), probe_lowest)
    tol = math.floor(delta * n)
    for rec in trace:
        assert rec["threshold"] == float(cand[rec["candidate"]])
        assert rec["consistent"] == (rec["violations"] <= tol)
    assert sum(c[0] == "accept" for c in calls) == sum(r["consistent"] for r in trace)
    assert got["n_fits"] == sum(c[0] != "accept" for c in calls) == sum(r["rounds"] for r in trace)
    ok = [r["threshold"] for r in trace if r["consistent"]]
    if ok:
        assert got["best_threshold"] == max(ok)
        assert crembo.count_violations(P, got["best_pred"], got["best_threshold"]) <= tol
        assert crembo.depth(P, got["best_pred"], delta=delta) >= np.float32(got["best_threshold"])
    else:
        assert got["best_candidate"] == -1 and got["best_threshold"] is None and got["best_pred"].size == 0


@PROPS
@given(**SEARCH_CASES)
def test_gallop_search_matches_reference(n, C, n_groups, seed, f32, max_rounds, delta, oracle, weighted):
    P, cand, sw, student = _search_case(n, C, n_groups, seed, f32, weighted)
    logs = ([], [])

    def callbacks(log):
        def fit_labels(targets, w):
            log.append(np.array(targets))
            return student(targets, w)

        return fit_labels, lambda mask: student(np.argmax(mask, axis=1), np.ones(len(mask))), lambda: log.append("a")

    kw = dict(oracle=oracle, max_rounds=max_rounds, delta=delta, sample_weight=sw)
    fl, fm, acc = callbacks(logs[0])
    got = _core.memo_search(P, cand, fit_labels=fl, fit_mask=fm, accept=acc, search="gallop", **kw)
    fl, fm, acc = callbacks(logs[1])
    want = ref.memo_search(P, cand, fit_labels=fl, fit_mask=fm, accept=acc, search="gallop", **kw)
    assert got["trace"] == want["trace"]
    assert (got["best_candidate"], got["best_threshold"], got["n_fits"]) == (
        want["best_candidate"],
        want["best_threshold"],
        want["n_fits"],
    )
    np.testing.assert_array_equal(got["best_pred"], want["best_pred"])
    assert len(logs[0]) == len(logs[1])
    for a, b in zip(*logs):
        assert (isinstance(a, str) and a == b) or np.array_equal(a, b)
    # The result is a real certificate: the best student is consistent at
    # the best threshold, which is at least every probed success.
    tol = math.floor(delta * n)
    ok = [r["threshold"] for r in got["trace"] if r["consistent"]]
    if ok:
        assert got["best_threshold"] >= max(ok)
        assert crembo.count_violations(P, got["best_pred"], got["best_threshold"]) <= tol
    else:
        assert got["best_candidate"] == -1 and got["best_threshold"] is None
    assert got["trace"] == [] or got["trace"][0]["candidate"] == 0


def test_gallop_reaches_a_deep_level_in_few_probes():
    """A student consistent everywhere it can be: galloping jumps straight to
    the level the first student reaches, where binary search bisects."""
    rng = np.random.default_rng(3)
    P = random_beliefs(rng, 400, 3)
    pred = np.argmax(P, axis=1).astype(np.int32)  # the deepest labelling
    cand = _core.candidate_thresholds(P, 0.0, float(P.max(axis=1).min()))
    got = _core.memo_search(P, cand, fit_labels=lambda t, w: pred, search="gallop")
    assert got["best_candidate"] == len(cand) - 1
    assert len(got["trace"]) == 1 and got["n_fits"] == 1
    binary = _core.memo_search(P, cand, fit_labels=lambda t, w: pred)
    assert binary["best_candidate"] == len(cand) - 1 and len(binary["trace"]) > 5


def test_crembo_with_the_gallop_search():
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier

    X, y = load_iris(return_X_y=True)
    teacher = RandomForestClassifier(n_estimators=20, max_depth=4, random_state=0).fit(X, y)
    kw = dict(cv=None, augment=0, random_state=0)
    clf = crembo.CREMBOClassifier(teacher, search="gallop", **kw).fit(X, y)
    memo = [r for r in clf.trace_ if r["stage"] == "memo"]
    assert memo[0]["threshold"] == min(r["threshold"] for r in memo)  # from the smallest up
    assert clf.memo_threshold_ is not None and clf.memo_depth_ >= clf.memo_threshold_
    assert clf.memo_threshold_ >= max(r["threshold"] for r in memo if r["consistent"])
    assert clf.score(X, y) > 0.8


def test_bad_search_is_rejected():
    P = np.array([[0.7, 0.3], [0.2, 0.8]])
    with pytest.raises(ValueError, match="search"):
        _core.memo_search(P, np.array([0.2]), fit_labels=lambda t, w: np.zeros(2, np.int32), search="linear")
    with pytest.raises(ValueError, match="search"):
        crembo.memo(np.eye(2), P, search="linear")
    with pytest.raises(ValueError, match="search"):
        crembo.CREMBOClassifier(search="linear").fit(np.random.rand(20, 2), np.arange(20) % 2)


@PROPS
@given(
    n=st.integers(1, 20),
    C=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
    delta=st.floats(0.0, 0.9),
    oracle=st.sampled_from(["reweight", "single"]),
)
def test_fixed_student_gives_its_delta_insensitive_threshold(n, C, seed, delta, oracle):
    """A student that always predicts the same labels is consistent at t exactly
    when it has at most floor(delta*n) violations there; MEMO returns the
    largest such candidate and makes one fit per probe."""
    rng = np.random.default_rng(seed)
    P = random_beliefs(rng, n, C, kind="votes", n_votes=6)
    pred = rng.integers(0, C, size=n).astype(np.int32)
    cand = crembo.candidate_thresholds(P)
    tol = math.floor(delta * n)
    res = _core.memo_search(
        P, cand, fit_labels=lambda t, w: pred, fit_mask=lambda m: pred, oracle=oracle, delta=delta, max_rounds=1
    )
    ok = [t for t in cand if ref.count_violations(P, pred, t) <= tol]
    # Monotone: consistency at t implies consistency below t.
    assert ok == list(cand[: len(ok)])
    if ok:
        assert res["best_threshold"] == ok[-1]
        assert res["best_threshold"] == crembo.depth(P, pred, delta=delta)
        np.testing.assert_array_equal(res["best_pred"], pred)
    else:
        assert res["best_threshold"] is None
    for rec in res["trace"]:
        assert rec["rounds"] <= 1
        if rec["rounds"] == 1:
            assert rec["violations"] == ref.count_violations(P, pred, rec["threshold"])


def test_probe_count_on_many_candidates():
    n = 200
    rng = np.random.default_rng(3)
    P = random_beliefs(rng, n, 5)
    cand = crembo.candidate_thresholds(P)  # about n * C distinct values
    assert len(cand) > 500
    res = _core.memo_search(P, cand, fit_labels=lambda t, w: t, max_rounds=1)
    assert len(res["trace"]) <= max_probes(len(cand))
    assert res["best_threshold"] == crembo.max_achievable_depth(P)


@pytest.mark.parametrize("consistent_from", [0, 1, 5, 17, 40])
def test_probe_order_and_early_stop(consistent_from):
    """A fixed student consistent exactly at the candidates below index
    ``consistent_from``: both search orders probe as the reference says and
    find the last consistent candidate; the default probes candidate 0 first
    and, when it fails, stops after that one probe."""
    k = 40
    cand = np.round(np.linspace(0.01, 0.40, k), 4)
    d = cand[consistent_from - 1] if consistent_from else 0.005
    P = np.array([[d, 1.0 - d]])
    pred = np.zeros(1, np.int32)  # its belief is d: consistent at t <= d
    probes = {}
    for probe_lowest in (True, False):
        res = _core.memo_search(P, cand, fit_labels=lambda t, w: pred, max_rounds=1, probe_lowest=probe_lowest)
        want, best = ref.binary_search(k, lambda j: j < consistent_from, probe_lowest)
        assert [(r["candidate"], r["consistent"]) for r in res["trace"]] == want
        assert res["best_candidate"] == best == consistent_from - 1
        assert len(res["trace"]) <= max_probes(k, probe_lowest)
        probes[probe_lowest] = len(res["trace"])
    if consistent_from == 0:
        assert probes == {True: 1, False: 5}  # plain search: candidates 19, 9, 4, 1, 0


def test_empty_candidates():
    P = np.array([[0.3, 0.7]])
    res = _core.memo_search(P, np.zeros(0), fit_labels=lambda t, w: t)
    assert res["best_candidate"] == -1 and res["best_threshold"] is None and res["trace"] == []
    out = crembo.memo(np.zeros((1, 1)), P, candidates=[])
    assert out.student is None and out.threshold is None and out.depth is None and out.pred is None
    assert out.n_fits == 0 and out.trace == []


# ------------------------------------------------- reweighting vs a single fit
def _stump_case():
    """10 points on a line. At t = 0.45 the only consistent depth-1 trees are
    "x0 -> 1, else 0"; the argmax targets (1,0,0,0,1,1,1,0,0,0) make a plain
    gini stump split at 6.5 and predict 1 on the must-be-0 points 1..3. Up-
    weighting those violators moves the split to 0.5, which is consistent."""
    X = np.arange(10.0).reshape(-1, 1)
    P = np.array([[0.2, 0.8]] + [[0.8, 0.2]] * 3 + [[0.45, 0.55]] * 3 + [[0.8, 0.2]] * 3)
    return X, P


def _deepest_depth1_tree(X, P):
    """Brute force over every depth-1 tree on the sorted 1-d X."""
    return _deepest_stump_depth(P)


def test_reweighting_finds_a_student_a_single_fit_misses():
    X, P = _stump_case()
    best = _deepest_depth1_tree(X, P)
    assert best == 0.45
    student = DecisionTreeClassifier(max_depth=1, random_state=0)
    plain = crembo.memo(X, P, student, max_rounds=1)
    rew = crembo.memo(X, P, student, max_rounds=8)
    assert rew.threshold == best > plain.threshold == 0.2
    assert rew.depth == 0.45
    np.testing.assert_array_equal(rew.pred, [1] + [0] * 9)
    np.testing.assert_array_equal(rew.student.predict(X), rew.pred)
    # The smallest candidate (0.2) is probed first; then the probe at 0.45:
    # one fit violates, the second (reweighted) does not.
    assert rew.trace[0]["threshold"] == plain.trace[0]["threshold"] == 0.2
    at = {r["threshold"]: r for r in rew.trace}
    assert at[0.45]["consistent"] and at[0.45]["rounds"] == 2
    at = {r["threshold"]: r for r in plain.trace}
    assert not at[0.45]["consistent"] and at[0.45]["violations"] == 3
    # The single (paper) oracle, a multi-output stump, is no better here.
    single = crembo.memo(X, P, student, oracle="single")
    assert single.threshold is None or single.threshold <= best


def test_reweighting_only_uses_allowed_targets():
    X, P = _stump_case()
    seen = []

    class Spy(DecisionTreeClassifier):
        def fit(self, X, y, sample_weight=None, **kw):
            seen.append((np.array(y), None if sample_weight is None else np.array(sample_weight)))
            return super().fit(X, y, sample_weight=sample_weight, **kw)

    res = crembo.memo(X, P, Spy(max_depth=1, random_state=0), max_rounds=8)
    k = 0
    for rec in res.trace:
        for _ in range(rec["rounds"]):
            y, w = seen[k]
            k += 1
            assert np.all(P[np.arange(10), y] >= rec["threshold"])  # every target is allowed
            if w is not None:
                assert np.isclose(w.mean(), 1.0) and np.all(w > 0)
    assert k == len(seen) == res.n_fits


# ---------------------------------------------------------- the single oracle
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_single_fit_oracle_returns_consistent_students(seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(120, 2))
    logits = np.c_[X[:, 0], X[:, 1], -X[:, 0] - X[:, 1]] * 2 + rng.normal(scale=0.5, size=(120, 3))
    P = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    res = crembo.memo(X, P, DecisionTreeClassifier(max_depth=3, random_state=0), oracle="single")
    assert all(rec["rounds"] == 1 for rec in res.trace)
    assert res.n_fits == len(res.trace)
    for rec in res.trace:
        assert rec["consistent"] == (rec["violations"] == 0)
    if res.threshold is not None:
        assert type(res.student).__name__ == "AllowedLabelStudent"
        pred = res.student.predict(X)
        np.testing.assert_array_equal(pred, res.pred)
        assert crembo.count_violations(P, pred, res.threshold) == 0
        assert res.depth == crembo.depth(P, pred) >= res.threshold
        assert res.threshold == max(r["threshold"] for r in res.trace if r["consistent"])


def test_single_oracle_gets_the_allowed_label_mask():
    X, P = _stump_case()
    masks = []

    class Spy(DecisionTreeClassifier):
        def fit(self, X, y, sample_weight=None, **kw):
            masks.append(np.array(y))
            return super().fit(X, y, sample_weight=sample_weight, **kw)

    res = crembo.memo(X, P, Spy(random_state=0), oracle="single")
    assert len(masks) == len(res.trace)
    for m, rec in zip(masks, res.trace):
        np.testing.assert_array_equal(m, crembo.allowed_labels(P, rec["threshold"]).astype(np.int8))
    assert res.threshold == crembo.max_achievable_depth(P)  # an unlimited tree memorises the mask


# ------------------------------------------------------------------ delta > 0
def test_delta_tolerates_floor_delta_n_violations():
    X = np.arange(10.0).reshape(-1, 1)
    P = np.array([[0.9, 0.1]] * 4 + [[0.05, 0.95]] + [[0.9, 0.1]] * 5)
    student = DummyClassifier(strategy="most_frequent")
    strict = crembo.memo(X, P, student)
    # No constant is consistent above 0.1; reweighting finds "always 1" at 0.1.
    assert strict.threshold == 0.1
    np.testing.assert_array_equal(strict.pred, np.ones(10))
    loose = crembo.memo(X, P, student, delta=0.1)  # floor(0.1 * 10) = 1 violation
    assert loose.threshold == 0.9
    np.testing.assert_array_equal(loose.pred, np.zeros(10))
    assert crembo.count_violations(P, loose.pred, 0.9) == 1
    assert crembo.depth(P, loose.pred, delta=0.1) == 0.9
    assert loose.depth == crembo.depth(P, loose.pred) == 0.05  # plain depth of that student
    # floor(0.09 * 10) = 0: no violation tolerated.
    assert crembo.memo(X, P, student, delta=0.09).threshold == 0.1


def test_delta_search_ceiling_skips_the_shallowest_rows():
    P = np.array([[0.5, 0.5], [0.9, 0.1], [0.8, 0.2], [0.7, 0.3]])
    X = np.arange(4.0).reshape(-1, 1)
    res = crembo.memo(X, P, DecisionTreeClassifier(random_state=0), delta=0.25)
    assert res.candidates[-1] == 0.7  # the 2nd smallest row maximum
    assert res.threshold == 0.7
    assert crembo.count_violations(P, res.pred, 0.7) == 1


# --------------------------------------------------------------- callbacks
def test_callback_exceptions_propagate():
    P = random_beliefs(np.random.default_rng(0), 6, 3)
    cand = crembo.candidate_thresholds(P)

    def raise_boom(*args):
        raise Boom("from the student")

    with pytest.raises(Boom, match="from the student"):
        _core.memo_search(P, cand, fit_labels=raise_boom)
    with pytest.raises(Boom, match="from the student"):
        _core.memo_search(P, cand, fit_mask=raise_boom, oracle="single")
    with pytest.raises(Boom, match="from the student"):
        _core.memo_search(P, cand, fit_labels=lambda t, w: t, accept=raise_boom)
    with pytest.raises(Boom):
        _core.consistency_oracle(P, float(cand[0]), fit_labels=raise_boom)

    # The search still works afterwards (no GIL or state left behind), and a
    # callback may call back into the (GIL-releasing) core.
    def reentrant(targets, w):
        assert crembo.count_violations(P, targets, cand[0]) == 0
        return crembo.allowed_labels(P, cand[0]).argmax(axis=1) * 0 + targets

    assert _core.memo_search(P, cand, fit_labels=reentrant)["best_threshold"] == crembo.max_achievable_depth(P)


def test_student_exceptions_propagate_through_memo(rng):
    class Broken(DecisionTreeClassifier):
        def fit(self, X, y, sample_weight=None, **kw):
            raise Boom("fit failed")

    X = rng.normal(size=(8, 2))
    P = random_beliefs(rng, 8, 3)
    for oracle in ("reweight", "single"):
        with pytest.raises(Boom, match="fit failed"):
            crembo.memo(X, P, Broken(), oracle=oracle)


@pytest.mark.parametrize(
    "bad,match",
    [
        pytest.param(lambda t, w: t[:-1], r"the fit callback returned 5 predictions, expected 6", id="short"),
        pytest.param(lambda t, w: np.r_[t, 0], r"the fit callback returned 7 predictions, expected 6", id="long"),
        pytest.param(lambda t, w: np.c_[t, t], r"the fit callback returned 12 predictions, expected 6", id="2-d"),
        pytest.param(
            lambda t, w: np.full(6, 3),
            r"the student predicted label index 3 at point 0, outside \[0, 3\)",
            id="too-large",
        ),
        pytest.param(lambda t, w: np.r_[t[:5], -1], r"the student predicted label index -1 at point 5", id="negative"),
        pytest.param(lambda t, w: None, r"the fit callback must return an array", id="none"),
        pytest.param(lambda t, w: ["a"] * 6, r"fit callback", id="strings"),
    ],
)
def test_bad_callback_results_raise(bad, match):
    P = random_beliefs(np.random.default_rng(1), 6, 3)
    cand = crembo.candidate_thresholds(P)
    with pytest.raises(ValueError, match=match):
        _core.memo_search(P, cand, fit_labels=bad)
    with pytest.raises(ValueError, match=match):
        _core.memo_search(P, cand, fit_mask=lambda m: bad(np.argmax(m, axis=1), None), oracle="single")


def test_callback_labels_beyond_int32_raise():
    P = random_beliefs(np.random.default_rng(1), 6, 3)
    with pytest.raises(ValueError, match="label"):
        _core.memo_search(P, crembo.candidate_thresholds(P), fit_labels=lambda t, w: np.full(6, 2**32, dtype=np.int64))


def test_callback_fractional_labels_raise():
    P = random_beliefs(np.random.default_rng(1), 6, 3)
    with pytest.raises((ValueError, TypeError)):
        _core.memo_search(P, crembo.candidate_thresholds(P), fit_labels=lambda t, w: np.full(6, 0.7))


def test_accept_is_called_once_per_new_best():
    P = random_beliefs(np.random.default_rng(5), 40, 4)
    cand = crembo.candidate_thresholds(P)
    events = []

    def fit(targets, w):
        events.append("fit")
        return targets

    res = _core.memo_search(P, cand, fit_labels=fit, accept=lambda: events.append("accept"), max_rounds=1)
    trace = res["trace"]
    assert events.count("accept") == sum(r["consistent"] for r in trace) >= 1
    # Each accept comes right after the fit that succeeded, and the thresholds
    # of the successes strictly increase.
    fits = iter([r for r in trace if r["rounds"]])  # probes above the achievable depth fit nothing
    for i, e in enumerate(events):
        if e == "fit":
            rec = next(fits)
            assert (events[i + 1 : i + 2] == ["accept"]) == rec["consistent"]
    ok = [r["threshold"] for r in trace if r["consistent"]]
    assert ok == sorted(set(ok)) and ok[-1] == res["best_threshold"]


def test_memo_keeps_the_accepted_student(rng):
    X = rng.normal(size=(80, 2))
    P = random_beliefs(rng, 80, 3)
    res = crembo.memo(X, P, DecisionTreeClassifier(max_depth=2, random_state=0))
    assert res.threshold is not None
    np.testing.assert_array_equal(res.student.predict(X), res.pred)
    assert crembo.count_violations(P, res.pred, res.threshold) == 0
    assert res.depth == crembo.depth(P, res.pred)
    assert res.n_fits == sum(r["rounds"] for r in res.trace)
    assert all(r["fit_seconds"] >= 0 for r in res.trace)


def test_memo_with_class_labels(rng):
    X = rng.normal(size=(30, 2))
    P = random_beliefs(rng, 30, 3)
    classes = np.array(["ant", "bee", "cat"])
    res = crembo.memo(X, P, DecisionTreeClassifier(random_state=0), classes=classes)
    np.testing.assert_array_equal(res.student.predict(X), classes[res.pred])
    assert res.threshold == crembo.max_achievable_depth(P)


# ------------------------------------------------------ students and options
def test_student_without_sample_weight():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(40, 2))
    P = random_beliefs(rng, 40, 3)
    knn = KNeighborsClassifier(n_neighbors=3)
    with pytest.raises(TypeError, match="sample_weight"):
        crembo.memo(X, P, knn, oracle="reweight")
    res = crembo.memo(X, P, knn, oracle="single")
    assert res.trace and all(r["rounds"] == 1 for r in res.trace)
    if res.threshold is not None:
        np.testing.assert_array_equal(res.student.predict(X), res.pred)
        assert crembo.count_violations(P, res.pred, res.threshold) == 0


def test_single_oracle_needs_a_multi_output_student():
    from sklearn.linear_model import LogisticRegression

    X = np.random.default_rng(0).normal(size=(10, 2))
    P = random_beliefs(np.random.default_rng(0), 10, 2)
    with pytest.raises(ValueError, match="multi-output"):
        crembo.memo(X, P, LogisticRegression(), oracle="single")


def test_random_state_makes_memo_reproducible(rng):
    X = rng.normal(size=(100, 4))
    P = random_beliefs(rng, 100, 3)
    student = ExtraTreeClassifier(max_depth=3)  # random splits; random_state left as None

    def run(seed, oracle):
        res = crembo.memo(X, P, student, oracle=oracle, random_state=seed)
        trace = [{k: v for k, v in r.items() if k != "fit_seconds"} for r in res.trace]
        return res, trace

    for oracle in ("reweight", "single"):
        a, ta = run(0, oracle)
        b, tb = run(0, oracle)
        assert ta == tb and a.threshold == b.threshold and a.n_fits == b.n_fits
        if a.threshold is not None:
            np.testing.assert_array_equal(a.pred, b.pred)
            np.testing.assert_array_equal(a.student.predict(X), b.student.predict(X))
    assert student.random_state is None  # the template is never modified
    c, _ = run(np.random.RandomState(7), "reweight")
    d, _ = run(np.random.RandomState(7), "reweight")
    assert c.threshold == d.threshold


def test_sample_weight_seeds_the_first_round():
    P = random_beliefs(np.random.default_rng(2), 7, 3)
    sw = np.arange(1.0, 8.0)
    seen = []

    def fit(targets, w):
        seen.append(np.array(w))
        return targets

    _core.memo_search(P, crembo.candidate_thresholds(P), fit_labels=fit, sample_weight=sw)
    np.testing.assert_array_equal(seen[0], sw)
    with pytest.raises(ValueError, match="sample_weight"):
        _core.memo_search(P, crembo.candidate_thresholds(P), fit_labels=fit, sample_weight=-sw)
    with pytest.raises(ValueError, match="sample_weight: expected 7 values"):
        _core.memo_search(P, crembo.candidate_thresholds(P), fit_labels=fit, sample_weight=sw[:3])


def test_normalize_in_memo(rng):
    X = rng.normal(size=(20, 2))
    P = random_beliefs(rng, 20, 3)
    student = DecisionTreeClassifier(max_depth=2, random_state=0)
    with pytest.raises(ValueError, match="beliefs: row 0 sums to"):
        crembo.memo(X, P * 3, student)
    a = crembo.memo(X, P * 3, student, normalize=True)
    b = crembo.memo(X, P, student)
    assert a.threshold == pytest.approx(b.threshold)
    np.testing.assert_array_equal(a.pred, b.pred)


# ---------------------------------------------------------------- bad input
P6 = random_beliefs(np.random.default_rng(9), 6, 3)
X6 = np.arange(12.0).reshape(6, 2)


@pytest.mark.parametrize(
    "call,exc,match",
    [
        pytest.param(
            lambda: _core.memo_search(P6, np.array([0.5, 0.3]), fit_labels=lambda t, w: t),
            ValueError,
            r"candidates: expected strictly increasing thresholds",
            id="core-decreasing",
        ),
        pytest.param(
            lambda: _core.memo_search(P6, np.array([0.3, 0.3]), fit_labels=lambda t, w: t),
            ValueError,
            r"candidates: expected strictly increasing",
            id="core-repeated",
        ),
        pytest.param(
            lambda: _core.memo_search(P6, np.array([0.0, 0.3]), fit_labels=lambda t, w: t),
            ValueError,
            r"candidates: expected finite, positive",
            id="core-zero",
        ),
        pytest.param(
            lambda: _core.memo_search(P6, np.array([0.3, np.nan]), fit_labels=lambda t, w: t),
            ValueError,
            r"candidates: expected finite, positive",
            id="core-nan",
        ),
        pytest.param(
            lambda: _core.memo_search(P6, np.ones((2, 2)), fit_labels=lambda t, w: t),
            ValueError,
            r"candidates: expected a 1-d array",
            id="core-2d",
        ),
        pytest.param(
            lambda: _core.memo_search(P6, np.array([0.3]), fit_labels=lambda t, w: t, max_rounds=0),
            ValueError,
            r"max_rounds: expected at least 1",
            id="core-rounds",
        ),
        pytest.param(
            lambda: _core.memo_search(P6, np.array([0.3]), fit_labels=lambda t, w: t, eta=0.0),
            ValueError,
            r"eta: expected a positive",
            id="core-eta",
        ),
        pytest.param(
            lambda: _core.memo_search(P6, np.array([0.3]), fit_labels=lambda t, w: t, delta=1.0),
            ValueError,
            r"delta: expected a fraction in \[0, 1\)",
            id="core-delta",
        ),
        pytest.param(
            lambda: _core.memo_search(P6, np.array([0.3]), fit_labels=lambda t, w: t, oracle="best"),
            ValueError,
            r"oracle: expected 'reweight' or 'single', got 'best'",
            id="core-oracle",
        ),
        pytest.param(
            lambda: _core.memo_search(P6, np.array([0.3]), fit_labels=lambda t, w: t, oracle="single"),
            ValueError,
            r"fit_mask: the single-fit oracle needs a mask fit",
            id="core-no-mask",
        ),
        pytest.param(
            lambda: _core.memo_search(P6, np.array([0.3])),
            ValueError,
            r"fit_labels: the reweighting oracle needs a label fit",
            id="core-no-labels",
        ),
        pytest.param(
            lambda: _core.memo_search(P6[0], np.array([0.3]), fit_labels=lambda t, w: t),
            ValueError,
            r"beliefs: expected a 2-d array",
            id="core-1d",
        ),
        pytest.param(
            lambda: crembo.memo(X6, P6, candidates=[0.5, 0.3]),
            ValueError,
            r"candidates: expected a 1-d array of positive, strictly increasing",
            id="decreasing",
        ),
        pytest.param(lambda: crembo.memo(X6, P6, candidates=[0.3, 0.3]), ValueError, r"candidates", id="repeated"),
        pytest.param(lambda: crembo.memo(X6, P6, candidates=[-0.1, 0.3]), ValueError, r"candidates", id="negative"),
        pytest.param(lambda: crembo.memo(X6, P6, oracle="best"), ValueError, r"oracle: expected one of", id="oracle"),
        pytest.param(lambda: crembo.memo(X6, P6, max_rounds=0), ValueError, r"max_rounds", id="rounds"),
        pytest.param(lambda: crembo.memo(X6, P6, eta=-1.0), ValueError, r"eta", id="eta"),
        pytest.param(lambda: crembo.memo(X6, P6, delta=1.0), ValueError, r"delta", id="delta"),
        pytest.param(lambda: crembo.memo(X6[:5], P6), ValueError, r"X: expected 6 rows", id="X-rows"),
        pytest.param(lambda: crembo.memo(X6[:, 0], P6), ValueError, r"X: expected 6 rows", id="X-1d"),
        pytest.param(
            lambda: crembo.memo(X6, P6, classes=[0, 1]), ValueError, r"classes: expected 3 labels", id="classes"
        ),
        pytest.param(
            lambda: crembo.memo(X6, P6, classes=[2, 1, 0]), ValueError, r"classes: expected sorted", id="unsorted"
        ),
        pytest.param(
            lambda: crembo.memo(X6, P6, sample_weight=-np.ones(6)), ValueError, r"sample_weight", id="weights"
        ),
        pytest.param(lambda: crembo.memo(X6, P6, student_target="x"), ValueError, r"student_target", id="target"),
        pytest.param(lambda: crembo.memo(X6, P6[:, :1] * 0 + np.nan), ValueError, r"beliefs: row 0", id="nan"),
        pytest.param(
            lambda: crembo.memo(X6, P6, student=DecisionTreeRegressor()),
            TypeError,
            r"student: expected a scikit-learn classifier, got DecisionTreeRegressor",
            id="regressor",
        ),
    ],
)
def test_bad_memo_arguments_raise(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_non_estimator_student_raises_type_error():
    with pytest.raises(TypeError, match=r"student: expected a scikit-learn classifier"):
        crembo.memo(X6, P6, student=object())


def test_oracle_errors_do_not_send_users_in_circles(rng):
    # A student without multi-output support and oracle="single": the advice
    # must lead somewhere that works (oracle="reweight" with labels), and the
    # mismatch oracle="single" + labels is named as such.
    from sklearn.linear_model import LogisticRegression

    X = rng.normal(size=(40, 2))
    P = random_beliefs(rng, 40, 3)
    with pytest.raises(ValueError, match="oracle='reweight'"):
        crembo.memo(X, P, LogisticRegression(), oracle="single")
    with pytest.raises(ValueError, match="oracle='single'.*needs student_target='multioutput'"):
        crembo.memo(X, P, LogisticRegression(), oracle="single", student_target="labels")
    res = crembo.memo(X, P, LogisticRegression(), oracle="reweight", student_target="labels")
    assert res.n_fits >= 1
