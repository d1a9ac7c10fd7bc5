"""Plain NumPy reference implementations of the native core's functions.

Written from ``docs/ALGORITHMS.md`` sections 1 and 2 and the contracts in
``cpp/include/crembo/core.hpp``, independently of the C++ code. Every
function works in the belief matrix's own dtype (float32 stays float32),
casting thresholds to that dtype exactly as the core does, so results can be
compared for equality.
"""

from __future__ import annotations

import math

import numpy as np


def _dtype(P):
    return np.float32 if np.asarray(P).dtype == np.float32 else np.float64


def beliefs_from_votes(votes, n_classes, dtype=np.float64):
    """``out[i, y]`` = share of the ``m`` hypotheses voting ``y`` at point ``i``."""
    votes = np.asarray(votes)
    m, n = votes.shape
    if np.any(votes < 0) or np.any(votes >= n_classes):
        raise ValueError("votes: label outside [0, n_classes)")
    counts = np.zeros((n, n_classes), dtype=np.int64)
    for j in range(m):
        np.add.at(counts, (np.arange(n), votes[j]), 1)
    dt = np.dtype(dtype).type
    # count * (1/m) in the output dtype (the core's rounding).
    return counts.astype(dt) * (dt(1) / dt(m))


def point_depth(P, pred):
    P = np.asarray(P)
    pred = np.asarray(pred, dtype=np.int64)
    return P[np.arange(P.shape[0]), pred]


def insensitive_rank(n, delta):
    return min(int(math.floor(delta * n)), n - 1)


def empirical_depth(P, pred, delta=0.0):
    """The ``(floor(delta*n)+1)``-th smallest point depth."""
    d = np.sort(point_depth(P, pred))
    return d[insensitive_rank(d.shape[0], delta)]


def depth_profile(depth, thresholds):
    """Fraction of points with ``depth >= t`` for each threshold ``t``."""
    depth = np.asarray(depth, dtype=np.float64)
    thr = np.asarray(thresholds, dtype=np.float64)
    return np.array([np.count_nonzero(depth >= t) / depth.shape[0] for t in thr], dtype=np.float64)


def max_achievable_depth(P):
    return np.asarray(P).max(axis=1).min()


def row_argmax(P):
    """Smallest index attaining the row maximum, and the maximum."""
    P = np.asarray(P)
    arg = np.argmax(P, axis=1).astype(np.int32)  # the first maximum (finite input)
    return arg, P[np.arange(P.shape[0]), arg]


def _entries_in(P, lo, hi):
    P = np.asarray(P)
    dt = _dtype(P)
    v = P.ravel()
    lo, hi = dt(lo), dt(hi)
    return np.sort(v[(v > 0) & (v >= lo) & (v <= hi)])


def candidate_thresholds(P, lo=0.0, hi=1.0):
    """Sorted distinct entries of ``P`` that are > 0 and lie in ``[lo, hi]``."""
    return np.unique(_entries_in(P, lo, hi))


def budgeted_thresholds(P, K, lo=0.0, hi=1.0):
    """Entries at positions ``j*(N-1)//(K-1)`` of the sorted in-range entries, deduplicated."""
    if K < 1:
        raise ValueError("n_thresholds: expected at least 1")
    v = _entries_in(P, lo, hi)
    N = v.shape[0]
    if N == 0:
        return v
    pos = [0] if K == 1 else [(j * (N - 1)) // (K - 1) for j in range(K)]
    picked = v[pos]
    keep = np.ones(picked.shape[0], dtype=bool)
    keep[1:] = picked[1:] != picked[:-1]
    return picked[keep]


def allowed_labels(P, t):
    P = np.asarray(P)
    return P >= _dtype(P)(t)


def count_violations(P, pred, t):
    return int(np.count_nonzero(point_depth(P, pred) < _dtype(P)(t)))


def allowed_targets(P, t, prefer=None):
    """Per point: ``prefer[i]`` when allowed, else the allowed label of highest
    belief (smallest index on ties), else -1. Also returns the number of -1s."""
    P = np.asarray(P)
    t = _dtype(P)(t)
    arg, mx = row_argmax(P)
    out = np.where(mx >= t, arg, -1).astype(np.int32)
    if prefer is not None:
        prefer = np.asarray(prefer, dtype=np.int64)
        ok = P[np.arange(P.shape[0]), prefer] >= t
        out[ok] = prefer[ok]
    return out, int(np.count_nonzero(out < 0))


def tolerated_violations(n, delta):
    return int(math.floor(delta * n))


def binary_search(n_candidates, is_consistent, probe_lowest=True):
    """The probe order of MEMO's binary search: list of (index, consistent)
    and the best index (-1 when none). With ``probe_lowest`` index 0 is probed
    first and its failure ends the search."""
    lo, hi, best, probes = 0, n_candidates - 1, -1, []
    while lo <= hi:
        mid = 0 if probe_lowest and not probes else lo + (hi - lo) // 2
        ok = bool(is_consistent(mid))
        probes.append((mid, ok))
        if ok:
            best, lo = mid, mid + 1
        else:
            hi = mid - 1
    return probes, best


def consistency_oracle(
    P,
    t,
    *,
    fit_labels=None,
    fit_mask=None,
    oracle="reweight",
    max_rounds=8,
    eta=1.0,
    delta=0.0,
    sample_weight=None,
    prefer=None,
    feasibility=False,
):
    """One oracle call at threshold ``t`` (docs/ALGORITHMS.md, section 2; core.hpp).

    ``"single"``: one fit on the allowed-label mask. ``"reweight"``: targets
    are the allowed labels (``prefer`` when allowed, else the allowed label of
    highest belief; the row argmax where the set is empty), rounds of weighted
    fits; after each fit allowed predictions become the targets, violators'
    weights grow by ``1 + eta`` and the weights are rescaled to sum to ``n``.
    ``feasibility`` (the search's first probe under ``probe_lowest``): gives
    up once a round, from the third and from a quarter of ``max_rounds`` on,
    leaves more than 5% of the points and more than 100 points in violation,
    and no fewer than the first round.
    """
    P = np.asarray(P)
    n = P.shape[0]
    tol = tolerated_violations(n, delta)
    tt = _dtype(P)(t)
    if oracle == "single":
        pred = np.asarray(fit_mask(allowed_labels(P, t)), dtype=np.int64)
        viol = count_violations(P, pred, t)
        return {"consistent": viol <= tol, "violations": viol, "rounds": 1, "pred": pred}
    targets, empty = allowed_targets(P, t, prefer)
    if empty > tol:
        return {"consistent": False, "violations": empty, "rounds": 0, "pred": np.zeros(n, np.int64)}
    targets = np.where(targets < 0, row_argmax(P)[0], targets).astype(np.int32)
    w = np.ones(n) if sample_weight is None else np.array(sample_weight, dtype=np.float64)
    res = {}
    first_viol = 0
    hopeless_from, hopeless_count = max(2, max_rounds // 4 - 1), max(100, int(0.05 * n))
    for r in range(max_rounds):
        pred = np.asarray(fit_labels(targets.copy(), w.copy()), dtype=np.int64)
        ok = point_depth(P, pred) >= tt
        targets[ok] = pred[ok]
        w[~ok] *= 1.0 + eta
        viol = int(np.count_nonzero(~ok))
        res = {"consistent": viol <= tol, "violations": viol, "rounds": r + 1, "pred": pred}
        if res["consistent"]:
            return res
        if r == 0:
            first_viol = viol
        if feasibility and r >= hopeless_from and viol >= first_viol and viol > hopeless_count:
            return res
        total = 0.0
        for x in w:  # sequential, like the core
            total += float(x)
        if total > 0:
            w = w * (n / total)
    return res


def _record(j, candidates, r):
    """One probe's trace record."""
    keys = ("consistent", "violations", "rounds")
    return {"candidate": j, "threshold": float(candidates[j]), **{k: r[k] for k in keys}}


def memo_search(P, candidates, *, accept=None, probe_lowest=True, search="binary", **oracle_options):
    """MEMO: binary search over ``candidates`` with ``consistency_oracle``;
    ``prefer`` of each call is the best prediction so far, except the one of
    the first probe of ``probe_lowest`` (a feasibility check only).
    ``search="gallop"``: see ``gallop_memo_search``."""
    if search == "gallop":
        return gallop_memo_search(P, candidates, accept=accept, **oracle_options)
    candidates = np.asarray(candidates)
    best = {"best_candidate": -1, "best_threshold": None, "best_pred": np.zeros(0, np.int64), "trace": [], "n_fits": 0}
    prefer = {"pred": None}

    def probe(j):
        first = not best["trace"]
        r = consistency_oracle(
            P, candidates[j], prefer=prefer["pred"], feasibility=probe_lowest and first, **oracle_options
        )
        best["n_fits"] += r["rounds"]
        best["trace"].append(_record(j, candidates, r))
        if r["consistent"]:
            best.update(best_candidate=j, best_threshold=float(candidates[j]), best_pred=r["pred"])
            if not (probe_lowest and first):
                prefer["pred"] = r["pred"]
            if accept is not None:
                accept()
        return r["consistent"]

    binary_search(len(candidates), probe, probe_lowest)
    return best


def gallop_memo_search(P, candidates, *, accept=None, delta=0.0, **oracle_options):
    """MEMO's galloping search (docs/ALGORITHMS.md, section 2): the smallest
    candidate first (its failure ends the search); a success makes the
    deepest candidate its student reaches (at most floor(delta n) of its
    predictions below it) the best, and the next probe lies ``step``
    candidates above the best, ``step`` doubling after a success; a failure
    sets the upper end and halves the gap. ``prefer`` is the best student's
    predictions once there is one."""
    P = np.asarray(P)
    candidates = np.asarray(candidates)
    n, k = P.shape[0], len(candidates)
    out = {"best_candidate": -1, "best_threshold": None, "best_pred": np.zeros(0, np.int64), "trace": [], "n_fits": 0}
    best, hi, step = -1, k, 1
    rank = min(tolerated_violations(n, delta), n - 1)
    while k > 0:
        j = 0 if best < 0 else min(best + step, hi - 1)
        if j <= best:
            break
        r = consistency_oracle(
            P,
            candidates[j],
            prefer=out["best_pred"] if best >= 0 else None,
            feasibility=best < 0,
            delta=delta,
            **oracle_options,
        )
        out["n_fits"] += r["rounds"]
        out["trace"].append(_record(j, candidates, r))
        if r["consistent"]:
            level = np.sort(point_depth(P, r["pred"]))[rank]
            best = max(j, int(np.searchsorted(candidates, level, side="right")) - 1)
            out.update(best_candidate=best, best_threshold=float(candidates[best]), best_pred=r["pred"])
            if accept is not None:
                accept()
            step = k if step > k else 2 * step
        else:
            if best < 0:
                break
            hi = j
            step = max(1, (hi - best) // 2)
    return out


# ------------------------------------------------------------- test data
def random_beliefs(rng, n, C, *, dtype=np.float64, kind="dirichlet", n_votes=7):
    """An ``(n, C)`` row-stochastic matrix: ``"dirichlet"`` (distinct values)
    or ``"votes"`` (shares of ``n_votes`` hypotheses: many ties and zeros)."""
    if kind == "votes":
        counts = np.zeros((n, C))
        for _ in range(n_votes):
            counts[np.arange(n), rng.integers(0, C, size=n)] += 1
        P = counts / n_votes
    else:
        P = rng.dirichlet(np.full(C, 0.7), size=n)
        P = P / P.sum(axis=1, keepdims=True)
    return np.ascontiguousarray(P, dtype=dtype)
