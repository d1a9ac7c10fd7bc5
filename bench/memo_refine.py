"""Issue 11, item 4, fourth round: MEMO's reweighting fits refined by exact
node steps (tree alternating optimisation, Carreira-Perpinan and Tavallali,
NeurIPS 2018) before their violations are counted.

Every student fit of the reweighting oracle (the paper's depth-4
scikit-learn tree) is followed by a refinement of that tree at the probe's
threshold t, which costs no student fit: with the tree's shape fixed,

* each leaf takes the label that minimises the weight of its points for
  which that label is not allowed (belief < t);
* each split node, deepest first, is replaced by the axis-aligned split
  (any feature, any midpoint) that minimises the same weighted violations
  of the points reaching it, each point sent to the side whose fixed
  subtree serves it better; a node changes only when that is strictly
  better,

for up to ``passes`` sweeps, so a refinement never adds violations. The
search around it mirrors ``crembo.memo``'s binary search (``probe_lowest``
with its hopeless rule, warm start carrying a success's weights, the best
student's predictions as preferred targets), with options for the growth
rule, certificates ("cert": a success moves the search past the level its
student actually reaches) and the galloping search.

Pure Python: a measurement, not a feature (see docs/defaults_study.md, "A
fourth round for item 4"). Teachers, data sets and the 30-round reference
are bench/memo_item4.py's.

    python bench/memo_refine.py                 # teacher seeds 0-4 (tune)
    python bench/memo_refine.py --first-seed 5  # seeds 5-9 (confirm)
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
from memo_budget import data
from memo_item4 import allowed_targets

import crembo
from crembo import _core
from crembo.compress.estimators import default_teacher
from crembo.compress.memo import default_student
from crembo.compress.students import StudentTrainer


class Tree:
    """A fitted scikit-learn tree's shape, with leaf labels as label indices."""

    def __init__(self, est, X, pred):
        t = est.tree_
        self.left, self.right = t.children_left.copy(), t.children_right.copy()
        self.feat, self.thr = t.feature.copy(), t.threshold.copy()
        self.label = np.zeros(t.node_count, dtype=np.int64)
        self.label[est.apply(X)] = pred
        self.depth = np.zeros(t.node_count, dtype=np.int64)
        for v in range(t.node_count):  # parents come before their children
            if self.left[v] >= 0:
                self.depth[self.left[v]] = self.depth[self.right[v]] = self.depth[v] + 1

    def leaves_from(self, X, rows, v):
        node = np.full(len(rows), v)
        active = self.left[node] >= 0
        while active.any():
            a = np.flatnonzero(active)
            nv = node[a]
            node[a] = np.where(X[rows[a], self.feat[nv]] <= self.thr[nv], self.left[nv], self.right[nv])
            active = self.left[node] >= 0
        return node

    def reaching(self, X):
        rows = [None] * len(self.left)
        rows[0] = np.arange(X.shape[0])
        for v in range(len(self.left)):
            if self.left[v] >= 0 and rows[v] is not None:
                r = rows[v]
                go_left = X[r, self.feat[v]] <= self.thr[v]
                rows[self.left[v]], rows[self.right[v]] = r[go_left], r[~go_left]
        return rows

    def predict(self, X):
        return self.label[self.leaves_from(X, np.arange(X.shape[0]), 0)]


def refine(tree, X, cost, passes=3):
    """Lower sum_i cost[i, label(leaf(x_i))] by exact leaf and node steps."""
    internal = np.flatnonzero(tree.left >= 0)
    internal = internal[np.argsort(-tree.depth[internal], kind="stable")]
    for _ in range(passes):
        changed = False
        rows = tree.reaching(X)
        for v in np.flatnonzero(tree.left < 0):
            if rows[v] is None or len(rows[v]) == 0:
                continue
            c = cost[rows[v]].sum(axis=0)
            y = int(np.argmin(c))
            if c[y] < c[tree.label[v]] - 1e-12:
                tree.label[v], changed = y, True
        for v in internal:
            r = tree.reaching(X)[v]
            if r is None or len(r) < 2:
                continue
            c_left = cost[r, tree.label[tree.leaves_from(X, r, tree.left[v])]]
            c_right = cost[r, tree.label[tree.leaves_from(X, r, tree.right[v])]]
            d = c_left - c_right
            if not d.any():
                continue
            best = np.where(X[r, tree.feat[v]] <= tree.thr[v], c_left, c_right).sum() - 1e-9
            base, choice = c_right.sum(), None
            for f in range(X.shape[1]):
                order = np.argsort(X[r, f], kind="stable")
                xs, gain = X[r, f][order], np.cumsum(d[order])
                cut = np.flatnonzero(xs[:-1] < xs[1:])
                if len(cut) == 0:
                    continue
                k = cut[np.argmin(gain[cut])]
                if base + gain[k] < best:
                    best, choice = base + gain[k], (f, (xs[k] + xs[k + 1]) / 2)
            if choice is not None:
                (tree.feat[v], tree.thr[v]), changed = choice, True
        if not changed:
            break


class Search:
    def __init__(
        self, X, P, trainer, refine=True, eta=1.0, adaptive=True, cap=1e6, warm=True, passes=3, unit=False, give_up=None
    ):
        self.X, self.P, self.tr = X, P, trainer
        self.n = P.shape[0]
        self.rows = np.arange(self.n)
        self.cand = _core.candidate_thresholds(P, 0.0, float(np.min(P.max(axis=1))))
        self.refine, self.eta, self.adaptive, self.cap = refine, eta, adaptive, cap
        self.warm, self.passes, self.fits = warm, passes, 0
        # unit: refine on violation counts, not the reweighting's weights;
        # give_up=(share, floor): the hopeless rule for every probe, not only the first
        self.unit, self.give_up = unit, give_up
        self.compound_from = 0  # adaptive growth only from this round (1-based) of a probe on

    def level_of(self, pred):
        return int(np.searchsorted(self.cand, self.P[self.rows, pred].min(), side="right")) - 1

    def fit(self, targets, w, t):
        est = self.tr.fit_labels(self.X, targets, w)
        self.fits += 1
        pred = self.tr.predict_index(est, self.X)
        if self.refine:
            tree = Tree(est, self.X, pred)
            refine(tree, self.X, (self.P < t) * (1.0 if self.unit else w[:, None]), self.passes)
            pred = tree.predict(self.X)
        return pred

    def oracle(self, j, rounds, w0, prefer, first):
        t = self.cand[j]
        targets, empty = allowed_targets(self.P, t, None if prefer is None else prefer.astype(np.int32))
        if empty:
            return False, None, None
        w = np.ones(self.n) if w0 is None else w0.copy()
        allowed = self.P >= t
        grow, best_viol, first_viol = 1 + self.eta, self.n + 1, 0
        for r in range(rounds):
            pred = self.fit(targets, w, t)
            ok = allowed[self.rows, pred]
            targets = np.where(ok, pred, targets).astype(np.int32)
            viol = int((~ok).sum())
            if viol == 0:
                return True, pred, w
            first_viol = viol if r == 0 else first_viol
            share, floor = (0.05, 100) if first or self.give_up is None else self.give_up
            if (
                (first or self.give_up)
                and r >= max(2, rounds // 4 - 1)
                and viol >= first_viol
                and viol > max(floor, share * self.n)
            ):
                return False, pred, w  # crembo.memo's hopeless rule (for the feasibility probe)
            progress = viol < best_viol
            best_viol = min(best_viol, viol)
            if self.adaptive and r + 1 >= self.compound_from:
                grow = 1 + self.eta if progress else min(grow * (1 + self.eta), self.cap)
            w[~ok] *= grow
            w *= self.n / w.sum()
        return False, pred, w

    def binary(self, rounds=8, cert=False):
        lo, hi, first, best, best_pred, carried = 0, len(self.cand) - 1, True, -1, None, None
        prefer = False  # as crembo.memo: the feasibility probe's student is not a preferred target
        while lo <= hi:
            mid = 0 if first else lo + (hi - lo) // 2
            ok, pred, w = self.oracle(mid, rounds, carried, best_pred if prefer else None, first)
            if ok:
                carried = w if self.warm else None
                best = max(mid, self.level_of(pred)) if cert else mid
                best_pred, lo, prefer = pred, best + 1, not first
            elif first:
                break
            else:
                hi = mid - 1
            first = False
        return best

    def gallop(self, rounds=8):
        k, best, hi, step, carried, best_pred = len(self.cand), -1, len(self.cand), 1, None, None
        while k > 0:
            mid = 0 if best < 0 else min(best + step, hi - 1)
            if mid <= best:
                break
            ok, pred, w = self.oracle(mid, rounds, carried, best_pred, best < 0)
            if ok:
                carried = w if self.warm else None
                best, best_pred, step = max(mid, self.level_of(pred)), pred, min(2 * step, k)
            elif best < 0:
                break
            else:
                hi, step = mid, max(1, (mid - best) // 2)
        return best


def native(**kw):
    def run(X, P, y, seed):
        r = crembo.memo(X, P, default_student(0), random_state=seed, **kw)
        return (r.threshold or 0.0), r.n_fits

    return run


def mirror(method="binary", search_kw=None, compound_from=0, **kw):
    def run(X, P, y, seed):
        s = Search(X, P, StudentTrainer(default_student(0), np.unique(y), seed=seed), **kw)
        s.compound_from = compound_from
        j = getattr(s, method)(**(search_kw or {}))
        return (float(s.cand[j]) if j >= 0 else 0.0), s.fits

    return run


REFERENCE = native(warm_start=False, adaptive_eta=False, max_rounds=30)
VARIANTS = {
    "old (crembo.memo)": native(warm_start=False, adaptive_eta=False),
    "default (crembo.memo)": native(),
    "mirror of the default, no refinement": mirror(refine=False),
    "refined, default growth (adaptive)": mirror(),
    "refined, adaptive, certificates": mirror(search_kw=dict(cert=True)),
    "refined, fixed growth": mirror(adaptive=False),
    "refined, fixed growth, eta=2": mirror(adaptive=False, eta=2.0),
    "refined, fixed growth, eta=7": mirror(adaptive=False, eta=7.0),
    "refined, adaptive capped at 16": mirror(cap=16.0),
    "refined, gallop": mirror("gallop"),
    "refined, unit costs": mirror(unit=True),
    "refined, 6 passes": mirror(passes=6),
    "refined, every probe can give up": mirror(give_up=(0.02, 10)),
}
for _k in (2, 3, 4, 5):
    VARIANTS[f"refined, compounding from round {_k}"] = mirror(compound_from=_k)
    VARIANTS[f"refined, compounding from round {_k}, certificates"] = mirror(
        compound_from=_k, search_kw=dict(cert=True)
    )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--datasets", default="iris,breast_cancer,synthetic")
    ap.add_argument("--variants", default=";".join(VARIANTS), help="names from VARIANTS, separated by semicolons")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    for name in args.datasets.split(","):
        X, y = data(name)
        Ps = [crembo.teacher_beliefs(default_teacher(s).fit(X, y), X) for s in seeds]
        ref = [REFERENCE(X, P, y, s) for s, P in zip(seeds, Ps)]
        print(f"## {name}, teacher seeds {seeds.start}-{seeds.stop - 1}")
        print("| variant | mean threshold | mean fits | seeds reaching the 30-round threshold | per seed (t/fits) |")
        print("|---|---|---|---|---|")
        for label, run in [("30 rounds (crembo.memo), the reference", REFERENCE)] + [
            (k, VARIANTS[k]) for k in args.variants.split(";")
        ]:
            res = ref if run is REFERENCE else [run(X, P, y, s) for s, P in zip(seeds, Ps)]
            ts, fs = [t for t, _ in res], [f for _, f in res]
            reached = sum(t >= r - 1e-12 for t, (r, _) in zip(ts, ref))
            per = " ".join(f"{t:.3f}/{f}" for t, f in res)
            print(f"| {label} | {np.mean(ts):.3f} | {np.mean(fs):.1f} | {reached}/{len(ts)} | {per} |", flush=True)


if __name__ == "__main__":
    main()
