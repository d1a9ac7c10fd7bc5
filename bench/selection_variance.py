"""How much of CREMBO's disagreement comes from the threshold its selection
picks (issue 11, item 3).

The stability protocol of ``crembo.evaluation.protocol.stability`` (a fixed
stratified 15% test split, 10 folds of the rest, the paper's forest teacher
fitted on each fold) with ``CREMBOClassifier``'s defaults; for each fold it
prints the threshold the cross-validated sweep chose and the sweep's
out-of-fold scores, then the agreement and test accuracy of

* the defaults (each fold's own choice),
* the same fits made to take the sweep candidate nearest a fixed threshold
  (the smallest, median and largest of the folds' choices), through a
  ``selection`` callable,
* the teachers.

If the fixed thresholds agree much more than the folds' own choices, the
selection's variance, not the student's, is what costs agreement.

    python bench/selection_variance.py [--dataset dermatology] [--seed 0]

Seed 0 is the study's tuning randomness (``bench/defaults_study.py``).
"""

from __future__ import annotations

import argparse
import itertools
import warnings

import numpy as np
from sklearn.model_selection import KFold, train_test_split

import crembo
from crembo.compress.estimators import default_teacher
from crembo.evaluation.datasets import load_dataset


def agreement(preds):
    return float(np.mean([np.mean(a == b) for a, b in itertools.combinations(preds, 2)]))


def nearest(target):
    def pick(result):
        return min(result.scored, key=lambda c: abs(c.threshold - target))

    return pick


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="dermatology")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    d = load_dataset(args.dataset, data_dir=args.data_dir)
    X, y = d.X, d.y
    rng = np.random.RandomState(args.seed)
    rest, test = train_test_split(np.arange(len(y)), test_size=0.15, random_state=rng.randint(2**31 - 1), stratify=y)
    folds, chosen, preds = [], [], []
    for k, (tr, _) in enumerate(KFold(n_splits=10).split(rest)):
        seed, rows = int(rng.randint(2**31 - 1)), rest[tr]
        teacher = default_teacher(seed).fit(X[rows], y[rows])
        est = crembo.CREMBOClassifier(teacher, random_state=seed).fit(X[rows], y[rows])
        folds.append((rows, seed, teacher))
        chosen.append(est.threshold_)
        preds.append(est.predict(X[test]))
        curve = " ".join(f"{c.threshold:.2f}:{c.score:.3f}" for c in est.sweep_.scored)
        print(f"fold {k}: chose {est.threshold_:.3f}; out-of-fold accuracy by threshold: {curve}")

    def line(name, P):
        acc = np.mean([np.mean(p == y[test]) for p in P])
        print(f"{name}: agreement {agreement(P):.3f}, test accuracy {acc:.3f}")

    print()
    line("defaults (each fold's choice)", preds)
    for target in sorted(set(np.round(np.quantile(chosen, [0.0, 0.5, 1.0]), 3))):
        P = [
            crembo.CREMBOClassifier(t, random_state=s, selection=nearest(target)).fit(X[r], y[r]).predict(X[test])
            for r, s, t in folds
        ]
        line(f"the candidate nearest {target:.3f} in every fold", P)
    line("teachers", [t.predict(X[test]) for _, _, t in folds])


if __name__ == "__main__":
    main()
