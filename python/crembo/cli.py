"""The ``crembo`` command line.

``crembo demo`` runs the main job on a built-in data set: a random-forest
teacher compressed into depth-4 trees by BM, VT, MEMO and CREMBO, compared by
cross-validated accuracy and by the agreement of students trained on
different folds.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time

import numpy as np

__all__ = ["main"]


class CLIError(Exception):
    """An error reported as one line on stderr with a non-zero exit code."""


def _demo(args):
    from .datasets import DATASETS, load_dataset
    from .estimators import CREMBOClassifier
    from .evaluation import format_table, generalization, stability

    if args.dataset not in DATASETS:
        raise CLIError(f"unknown data set {args.dataset!r}; choose one of {', '.join(DATASETS)}")
    try:
        data = load_dataset(args.dataset, data_dir=args.data_dir)
    except FileNotFoundError as exc:
        raise CLIError(str(exc)) from None
    X, y = data.X, data.y
    print(f"crembo demo: {data.name}, {X.shape[0]} rows x {X.shape[1]} features, "
          f"{len(np.unique(y))} classes")
    print("teacher: random forest (100 trees, max depth 12, balanced); "
          "student: decision tree (max depth 4, balanced)\n")

    t0 = time.perf_counter()
    one = CREMBOClassifier(random_state=args.seed).fit(X, y)
    print(f"One CREMBO fit on all rows ({time.perf_counter() - t0:.2f} s, {one.n_student_fits_} student fits):")
    print(f"  MEMO's deepest consistent threshold: {one.memo_threshold_}  (student depth {one.memo_depth_})")
    print(f"  chosen threshold: {one.threshold_:.4g}  validation accuracy {one.validation_score_:.4f}  "
          f"depth on the transfer set {one.depth_:.4g}\n")

    gen = generalization(X, y, n_splits=args.folds, n_repeats=args.repeats, random_state=args.seed,
                         n_jobs=args.jobs)
    stab = stability(X, y, n_splits=args.folds, random_state=args.seed, n_jobs=args.jobs)
    print(f"{args.folds}-fold cross-validation x {args.repeats} (accuracy; folds won among the students) "
          f"and stability (agreement of the {args.folds} fold students on a fixed 15% test split):\n")
    print(format_table(gen, stab))
    print(f"\n({gen.seconds + stab.seconds:.1f} s)")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="crembo", description="Robust model compression with deep hypotheses.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="compress a random forest on a built-in data set and compare methods")
    demo.add_argument("--dataset", default="breast_cancer",
                      help="breast_cancer, iris (built in), heart, dermatology, arrhythmia (UCI files)")
    demo.add_argument("--data-dir", default=None, help="folder of the UCI CSV files")
    demo.add_argument("--folds", type=int, default=10)
    demo.add_argument("--repeats", type=int, default=1)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--jobs", type=int, default=None, help="parallel folds (default: 1)")
    demo.set_defaults(func=_demo)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(name)s: %(message)s")
    try:
        return args.func(args)
    except CLIError as exc:
        print(f"crembo: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
