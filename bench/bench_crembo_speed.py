"""CREMBO end to end on one machine, stage by stage (issue 17, item 5).

Two problems, both ``make_classification`` with 20 features and 10 classes
(``bench/_common.py``'s ``crembo_data``) and a fitted forest of 50 trees
(scikit-learn's defaults otherwise, 2 jobs):

* ``100k``: 100,000 fitting rows, the forest fitted on all of them (the
  ``--part crembo`` problem of ``bench/bench_tree.py``), student
  ``HistTreeClassifier(max_depth=4)``;
* ``1m``: 1,000,000 fitting rows, the forest fitted on the first 100,000 of
  them, ``student="tree:4"``.

Each runs ``CREMBOClassifier(teacher=forest, student=..., random_state=0,
n_jobs=2)`` with the defaults otherwise and reports the wall time (minimum
and median of ``--repeats`` fits), the stages of ``timings_`` (beliefs,
MEMO, sweep, refit, the student fits among them), the student fits, MEMO's
threshold and the test accuracy, next to one plain fit of the same student
on the true labels.

    python bench/bench_crembo_speed.py [--problems 100k,1m] [--repeats 3]

Writes bench/results/crembo_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
from _common import crembo_data  # bench/ is on sys.path as a script
from sklearn.ensemble import RandomForestClassifier

import crembo
from crembo import HistTreeClassifier

RESULTS = Path(__file__).resolve().parent / "results"
PROBLEMS = {
    "100k": (100_000, 100_000, lambda: HistTreeClassifier(max_depth=4)),
    "1m": (1_000_000, 100_000, lambda: "tree:4"),
}


def run(name, repeats):
    rows, teacher_rows, student = PROBLEMS[name]
    t0 = time.perf_counter()
    Xtr, Xte, ytr, yte = crembo_data(rows)
    gen_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    forest = RandomForestClassifier(n_estimators=50, n_jobs=2, random_state=0).fit(
        Xtr[:teacher_rows], ytr[:teacher_rows]
    )
    forest_s = time.perf_counter() - t0
    walls, clf = [], None
    for _ in range(repeats):
        clf = crembo.CREMBOClassifier(teacher=forest, student=student(), random_state=0, n_jobs=2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            t0 = time.perf_counter()
            clf.fit(Xtr, ytr)
            walls.append(time.perf_counter() - t0)
    plain = crembo.compress.students.resolve_student(student())
    t0 = time.perf_counter()
    plain.fit(Xtr, ytr)
    plain_s = time.perf_counter() - t0
    row = dict(
        problem=name,
        rows=rows,
        teacher_rows=teacher_rows,
        wall_min=min(walls),
        wall_median=statistics.median(walls),
        walls=walls,
        timings={k: round(float(v), 4) for k, v in clf.timings_.items()},
        fits=int(clf.n_student_fits_),
        memo_threshold=clf.memo_threshold_,
        threshold=clf.threshold_,
        test_acc=float(np.mean(clf.predict(Xte) == yte)),
        teacher_test_acc=float(forest.score(Xte, yte)),
        plain_fit_s=plain_s,
        plain_test_acc=float(plain.score(Xte, yte)),
        generate_s=gen_s,
        forest_fit_s=forest_s,
    )
    t = row["timings"]
    print(
        f"{name}: wall min {row['wall_min']:.3f} s (median {row['wall_median']:.3f}); beliefs {t['beliefs']:.3f}, "
        f"memo {t['memo']:.3f}, sweep {t['sweep']:.3f}, refit {t['refit']:.3f}, student fits {t['student_fits']:.3f} "
        f"({row['fits']} fits); MEMO threshold {row['memo_threshold']}, test acc {row['test_acc']:.4f} "
        f"(teacher {row['teacher_test_acc']:.4f}; one plain fit {plain_s:.3f} s, acc {row['plain_test_acc']:.4f})",
        flush=True,
    )
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", default="100k,1m")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=RESULTS / "crembo_speed.json")
    args = ap.parse_args(argv)
    rows = [run(name, args.repeats) for name in args.problems.split(",")]
    out = dict(
        rows=rows,
        machine=dict(
            python=platform.python_version(), cpus=os.cpu_count(), crembo=crembo.__version__, loadavg=os.getloadavg()
        ),
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
