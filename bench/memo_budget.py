"""MEMO's depth within its default budget (issue: "MEMO reaches its depth").

For each data set and teacher seed, the paper's forest teacher gives beliefs
on all rows, and MEMO searches them with the scikit-learn student and with
crembo's histogram tree under three settings:

* ``old``: 8 rounds per threshold, fixed growth, every probe from scratch
  (the defaults before ``warm_start`` and ``adaptive_eta``);
* ``default``: today's defaults (8 rounds, warm start, adaptive growth);
* ``30 rounds``: the old setting with 30 rounds per threshold;
* ``gallop``: the defaults with ``search="gallop"``.

It prints the threshold each reaches and the student fits each spends.

    python bench/memo_budget.py [--seeds 5]
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
from sklearn.datasets import make_classification

import crembo
from crembo.evaluation.datasets import load_dataset
from crembo.compress.estimators import default_teacher
from crembo.compress.memo import default_student

SETTINGS = {
    "old": dict(warm_start=False, adaptive_eta=False),
    "default": dict(),
    "30 rounds": dict(warm_start=False, adaptive_eta=False, max_rounds=30),
    "gallop": dict(search="gallop"),
}


def data(name):
    if name == "synthetic":
        return make_classification(2000, 20, n_informative=8, n_classes=4, n_clusters_per_class=2, random_state=0)
    d = load_dataset(name)
    return d.X, d.y


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--datasets", default="iris,breast_cancer,synthetic")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    rows = []
    for name in args.datasets.split(","):
        X, y = data(name)
        for student_name, student in (("scikit-learn", default_student(0)), ("hist", "tree:4")):
            res = {k: ([], []) for k in SETTINGS}
            for seed in range(args.seeds):
                P = crembo.teacher_beliefs(default_teacher(seed).fit(X, y), X)
                for k, kw in SETTINGS.items():
                    r = crembo.memo(X, P, student, random_state=seed, **kw)
                    res[k][0].append(0.0 if r.threshold is None else r.threshold)
                    res[k][1].append(r.n_fits)
            rows.append((name, student_name, res))
    print(
        f"Mean MEMO threshold (0 when none is found) and mean student fits over {args.seeds} teacher seeds; "
        "'reached': seeds where the default reached at least the 30-round threshold.\n"
    )
    print(
        "| data set | student | old: threshold / fits | default: threshold / fits | 30 rounds: threshold / fits "
        "| gallop: threshold / fits | reached: default, gallop |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, student_name, res in rows:
        cells = [f"{np.mean(res[k][0]):.3f} / {np.mean(res[k][1]):.1f}" for k in SETTINGS]
        n = len(res["default"][0])
        reached = [sum(d >= t - 1e-12 for d, t in zip(res[k][0], res["30 rounds"][0])) for k in ("default", "gallop")]
        print(f"| {name} | {student_name} | " + " | ".join(cells) + f" | {reached[0]}/{n}, {reached[1]}/{n} |")


if __name__ == "__main__":
    main()
