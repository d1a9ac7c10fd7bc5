"""Variants of MEMO's search tried against the 30-round threshold (issue:
"MEMO reaches its depth within the default budget").

Part 1 runs ``crembo.memo`` with combinations of its own options (warm start,
adaptive growth, growth rate, rounds, patience, ``search="gallop"``). Part 2
runs a variant that is not in the library, a *climbing* search: one
reweighting trajectory whose threshold moves up to the first candidate above
the student's achieved depth whenever the student is consistent, with a
total budget of student fits. Both use the paper's forest teacher (beliefs on all rows) and
the paper's scikit-learn student, teacher seeds 0-4.

    python bench/memo_variants.py [--seeds 5] [--datasets iris,breast_cancer,synthetic] [--first-seed 0]

Each cell: mean threshold / mean student fits / seeds reaching at least
the 30-round threshold.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
from memo_budget import data

import crembo
from crembo import _core
from crembo.compress.estimators import default_teacher
from crembo.compress.memo import default_student
from crembo.compress.students import StudentTrainer

SETTINGS = {
    "30 rounds": dict(warm_start=False, adaptive_eta=False, max_rounds=30),
    "old": dict(warm_start=False, adaptive_eta=False),
    "default": dict(),
    "warm start only": dict(adaptive_eta=False),
    "adaptive only": dict(warm_start=False),
    "warm, eta=2": dict(adaptive_eta=False, eta=2.0),
    "warm, eta=0.5": dict(adaptive_eta=False, eta=0.5),
    "30 rounds, patience 2": dict(max_rounds=30, patience=2),
    "30 rounds, patience 3": dict(max_rounds=30, patience=3),
    "gallop": dict(search="gallop"),
}


def climb(X, P, trainer, budget, eta=1.0):
    """The climbing search; returns (threshold, fits)."""
    cand = _core.candidate_thresholds(P, 0.0, 1.0)
    n = len(P)
    rows = np.arange(n)
    w, fits, best, j = np.ones(n), 0, None, 0
    targets, empty = _core.allowed_targets(P, cand[0])
    if empty:
        return None, 0
    while fits < budget and j < len(cand):
        t = cand[j]
        pred = trainer.predict_index(trainer.fit_labels(X, targets, w), X)
        fits += 1
        ok = P[rows, pred] >= t
        targets = np.where(ok, pred, targets).astype(targets.dtype)
        if ok.all():
            d = P[rows, pred].min()
            best = cand[np.searchsorted(cand, d, side="right") - 1]
            j = np.searchsorted(cand, d, side="right")
            if j >= len(cand):
                break
            targets, empty = _core.allowed_targets(P, cand[j], pred)
            if empty:
                break
            continue
        w[~ok] *= 1 + eta
        w *= n / w.sum()
    return best, fits


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--datasets", default="iris,breast_cancer,synthetic")
    ap.add_argument("--first-seed", type=int, default=0, help="teacher seeds first-seed .. first-seed + seeds - 1")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    names = [*SETTINGS, "climb, 16 fits", "climb, 32 fits", "climb, 60 fits"]
    print("| data set | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for name in args.datasets.split(","):
        X, y = data(name)
        res = {k: [] for k in names}
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            P = crembo.teacher_beliefs(default_teacher(seed).fit(X, y), X)
            for k, kw in SETTINGS.items():
                r = crembo.memo(X, P, default_student(0), random_state=seed, **kw)
                res[k].append((r.threshold or 0.0, r.n_fits))
            for budget in (16, 32, 60):
                trainer = StudentTrainer(default_student(0), np.unique(y), seed=seed)
                t, f = climb(X, P, trainer, budget)
                res[f"climb, {budget} fits"].append((t or 0.0, f))
        ref = [t for t, _ in res["30 rounds"]]
        cells = []
        for k in names:
            ts = [t for t, _ in res[k]]
            reached = sum(a >= b - 1e-12 for a, b in zip(ts, ref))
            cells.append(f"{np.mean(ts):.3f} / {np.mean([f for _, f in res[k]]):.1f} / {reached}")
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
