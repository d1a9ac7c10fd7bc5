"""The configuration study behind CREMBOClassifier's defaults.

Every configuration is run through the paper's protocol (``crembo.evaluation.protocol``:
10-fold cross-validated accuracy, and the agreement of the 10 fold-trained
students on a fixed 15% test split), next to the baselines BM and VT, which
use the paper's student (a depth-4 scikit-learn tree with balanced classes).

Two phases, on disjoint randomness, so that no default is chosen on the folds
that report it:

* ``--phase tune`` (seed 0, 2 repeats): every configuration, five paper data
  sets with the forest teacher and the synthetic set at 0% and 20% flipped
  labels. The defaults are picked from this table.
* ``--phase confirm`` (seed 1, 5 repeats: new fold orders, test splits,
  teachers and students): the chosen defaults against the old ones and the
  runners-up, with both teachers (forest, MLP), the five paper sets and the
  synthetic set at 0, 10 and 20% flipped labels.

Usage::

    python bench/defaults_study.py --phase tune --jobs 2
    python bench/defaults_study.py --phase confirm --jobs 2

Each run writes ``bench/results/study_<phase>.json`` and prints a markdown
table (``docs/defaults_study.md`` holds the committed results).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import make_classification

from crembo.evaluation.datasets import load_dataset
from crembo.evaluation.protocol import generalization, stability
from crembo.compress.memo import default_student
from crembo import specs
from crembo.evaluation.paper import teacher_label
from crembo.trees.hist import HistTreeClassifier

PAPER_SETS = ("iris", "breast_cancer", "heart", "dermatology", "arrhythmia")

SK = default_student()  # the paper's student (scikit-learn, depth 4, balanced)
HIST = "tree:4"  # crembo's histogram tree, depth 4, balanced
HIST_GINI = HistTreeClassifier(max_depth=4, class_weight="balanced", criterion="gini")

#: What every configuration below has unless it says otherwise: the
#: defaults before the study (one validation split, no synthetic rows, the
#: students' own leaves), so that a name means the same whatever today's
#: defaults are.
BEFORE = dict(cv=None, augment=0.0, leaf_values="student")

#: The configurations, by name. "old" is main's defaults before the study.
CONFIGS = {
    "old": dict(student=SK, warm_start=False, adaptive_eta=False),
    "sk-labels": dict(student=SK),
    "sk-multi": dict(student=SK, student_target="multioutput"),
    "sk-multi-single": dict(student=SK, student_target="multioutput", oracle="single"),
    "sk-multi-all": dict(student=SK, student_target="multioutput", n_thresholds=None),
    "hist-labels": dict(student=HIST),
    "hist-cov": dict(student=HIST, student_target="multioutput", oracle="single"),
    "hist-cov-reweight-memo": dict(student=HIST, student_target="multioutput"),
    "hist-gini": dict(student=HIST_GINI, student_target="multioutput", oracle="single"),
    "hist-cov-all": dict(student=HIST, student_target="multioutput", oracle="single", n_thresholds=None),
    "hist-cov-1se": dict(student=HIST, student_target="multioutput", oracle="single", selection="one_se"),
    "hist-cov-cv5": dict(student=HIST, student_target="multioutput", oracle="single", cv=5),
    "hist-cov-refit": dict(student=HIST, student_target="multioutput", oracle="single", refit=True),
    "hist-cov-aug3": dict(student=HIST, student_target="multioutput", oracle="single", augment=3.0),
    "hist-cov-aug3-refit": dict(student=HIST, student_target="multioutput", oracle="single", augment=3.0, refit=True),
    "hist-cov-aug3-cv5": dict(student=HIST, student_target="multioutput", oracle="single", augment=3.0, cv=5),
    "hist-cov-aug10": dict(student=HIST, student_target="multioutput", oracle="single", augment=10.0),
    "hist-cov-aug10-cv5": dict(student=HIST, student_target="multioutput", oracle="single", augment=10.0, cv=5),
    "hist-labels-aug3": dict(student=HIST, augment=3.0),
    "hist-labels-aug3-cv5": dict(student=HIST, augment=3.0, cv=5),
    "sk-multi-aug3": dict(student=SK, student_target="multioutput", augment=3.0),
    "hist-labels-aug3-cv5-belief": dict(student=HIST, augment=3.0, cv=5, leaf_values="belief"),
    "hist-labels-aug10-cv5": dict(student=HIST, augment=10.0, cv=5),
    "hist-labels-aug3-cv10": dict(student=HIST, augment=3.0, cv=10),
    "hist-cov-aug3-cv5-belief": dict(
        student=HIST, student_target="multioutput", oracle="single", augment=3.0, cv=5, leaf_values="belief"
    ),
    "hist-cov-belief": dict(student=HIST, student_target="multioutput", oracle="single", leaf_values="belief"),
    "sk-labels-aug3-cv5": dict(student=SK, augment=3.0, cv=5),
    "sk-multi-aug3-refit": dict(student=SK, student_target="multioutput", augment=3.0, refit=True),
    "VT-aug3": dict(estimator="vt", student=SK, augment=3.0),
    # The scikit-learn student with the new defaults (but MEMO's fixed growth).
    "sk-new": dict(student=SK, cv="auto", augment="auto", leaf_values="auto", warm_start=False, adaptive_eta=False),
    # The baselines with crembo's histogram tree, for a fair bar.
    "BM-hist": dict(estimator="bm", student=HIST),
    "VT-hist": dict(estimator="vt", student=HIST),
    # The shipped defaults after the study (CREMBOClassifier(teacher)).
    "defaults": dict(student=None),
    # Today's defaults with a smaller threshold budget (fewer, farther apart
    # candidates for the cross-validated selection to choose among).
    "defaults-k16": dict(student=None, n_thresholds=16),
    "defaults-k8": dict(student=None, n_thresholds=8),
    "defaults-k4": dict(student=None, n_thresholds=4),
    # Today's defaults with the cross-validation repeated on 2 or 3 fold
    # partitions (steadier out-of-fold scores for the selection).
    "defaults-cvx2": dict(student=None, cv_repeats=2),
    "defaults-cvx3": dict(student=None, cv_repeats=3),
}
for _name, _params in CONFIGS.items():
    if not _name.startswith("defaults") and _params.get("estimator") not in ("bm", "vt"):
        CONFIGS[_name] = {**BEFORE, **_params}


def synthetic(seed):
    """The synthetic set: 1,000 rows, 20 features (6 informative), 4 classes."""
    X, y = make_classification(
        n_samples=1000,
        n_features=20,
        n_informative=6,
        n_redundant=4,
        n_classes=4,
        n_clusters_per_class=2,
        flip_y=0.0,
        class_sep=1.0,
        random_state=seed,
    )
    return X, y


def cases(phase, datasets, teachers):
    """(data set, teacher, label noise) triples of a phase."""
    out = []
    for t in teachers:
        for ds in datasets:
            noises = (0.0,)
            if ds == "synthetic":
                noises = (0.0, 0.2) if phase == "tune" else (0.0, 0.1, 0.2)
            for nz in noises:
                out.append((ds, t, nz))
    return out


def run_case(ds, tname, noise, configs, repeats, seed, jobs, data_dir):
    if ds == "synthetic":
        X, y = synthetic(seed)
    else:
        d = load_dataset(ds, data_dir=data_dir)
        X, y = d.X, d.y
    teacher = specs.make(tname, "teacher", seed=seed)
    variants = {c: CONFIGS[c] for c in configs}
    methods = ("BM", "VT", *configs)
    common = dict(
        methods=methods,
        teacher=teacher,
        student=SK,
        random_state=seed,
        label_noise=noise,
        n_jobs=jobs,
        variants=variants,
    )
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = generalization(X, y, n_repeats=repeats, **common)
        s = stability(X, y, n_repeats=repeats, **common)
    out = {
        m: dict(
            accuracy=g.summary[m]["mean"],
            accuracy_std=g.summary[m]["std"],
            wins=g.summary[m]["wins"],
            agreement=s.summary[m]["agreement"],
            seconds=g.summary[m]["seconds"],
        )
        for m in methods
    }
    return out, time.perf_counter() - t0


def table(runs, configs):
    head = "| data set | teacher | noise | " + " | ".join(["BM", "VT", *configs]) + " |"
    lines = [
        "Accuracy / agreement (fit seconds). **Bold**: accuracy and agreement both at least the better of BM and VT.",
        "",
        head,
        "|---|---|---|" + "---|" * (2 + len(configs)),
    ]
    for r in runs:
        ms = r["methods"]
        acc_bar = max(ms["BM"]["accuracy"], ms["VT"]["accuracy"])
        agr_bar = max(ms["BM"]["agreement"], ms["VT"]["agreement"])
        cells = []
        for m in ["BM", "VT", *configs]:
            v = ms[m]
            cell = f"{v['accuracy']:.3f} / {v['agreement']:.3f} ({v['seconds']:.2f})"
            if m not in ("BM", "VT") and v["accuracy"] >= acc_bar - 1e-12 and v["agreement"] >= agr_bar - 1e-12:
                cell = f"**{cell}**"
            cells.append(cell)
        lines.append(f"| {r['dataset']} | {r['teacher']} | {r['noise']:.0%} | " + " | ".join(cells) + " |")
    # Mean rank of accuracy and agreement over the rows, per configuration.
    lines += [
        "",
        "| configuration | mean accuracy − best baseline | mean agreement − best baseline | "
        "rows meeting both bars | mean fit seconds |",
        "|---|---|---|---|---|",
    ]
    for m in configs:
        da = [
            r["methods"][m]["accuracy"] - max(r["methods"]["BM"]["accuracy"], r["methods"]["VT"]["accuracy"])
            for r in runs
        ]
        dg = [
            r["methods"][m]["agreement"] - max(r["methods"]["BM"]["agreement"], r["methods"]["VT"]["agreement"])
            for r in runs
        ]
        both = sum(a >= -1e-12 and g >= -1e-12 for a, g in zip(da, dg))
        secs = np.mean([r["methods"][m]["seconds"] for r in runs])
        lines.append(f"| {m} | {np.mean(da):+.4f} | {np.mean(dg):+.4f} | {both}/{len(runs)} | {secs:.2f} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--phase", choices=("tune", "confirm"))
    ap.add_argument("--configs", default=None, help="comma-separated names (default: the phase's list)")
    ap.add_argument("--datasets", default=None)
    ap.add_argument("--teachers", default=None)
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument("--report", default=None, metavar="JSON", help="print the tables of a saved run instead of running")
    args = ap.parse_args(argv)
    if args.report:
        saved = json.loads(Path(args.report).read_text())
        names = [m for m in saved["runs"][0]["methods"] if m not in ("BM", "VT")]
        print(
            f"{saved['settings']['command']}: {len(saved['runs'])} cases, {saved['settings']['repeats']} repeats, "
            f"seed {saved['settings']['seed']}, {saved.get('seconds', 0) / 60:.1f} min, "
            f"{saved['settings']['machine']}\n"
        )
        print(table(saved["runs"], names))
        return
    if args.phase is None:
        ap.error("--phase is required (or --report)")
    tune = args.phase == "tune"
    configs = (
        args.configs.split(",")
        if args.configs
        else (
            [c for c in CONFIGS if c not in ("defaults", "BM-hist", "VT-hist")]
            if tune
            else ["defaults", "old", "hist-cov-aug3-cv5-belief", "BM-hist", "VT-hist"]
        )
    )
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        ap.error(f"unknown configurations {unknown}; known: {list(CONFIGS)}")
    datasets = args.datasets.split(",") if args.datasets else [*PAPER_SETS, "synthetic"]
    teachers = args.teachers.split(",") if args.teachers else (["random_forest"] if tune else ["random_forest", "mlp"])
    try:
        teachers = [teacher_label(t) for t in teachers]  # any name of crembo.specs, labelled as in the paper
    except specs.SpecError as exc:
        ap.error(str(exc))
    repeats = args.repeats or (2 if tune else 5)
    seed = (0 if tune else 1) if args.seed is None else args.seed
    out_path = Path(args.out or Path(__file__).parent / "results" / f"study_{args.phase}.json")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    results = dict(
        settings=dict(
            phase=args.phase,
            configs={c: repr(CONFIGS[c]) for c in configs},
            repeats=repeats,
            seed=seed,
            jobs=args.jobs,
            machine=f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
            command="python bench/defaults_study.py " + " ".join(argv or sys.argv[1:]),
        ),
        runs=[],
    )
    start = time.perf_counter()
    for ds, tname, noise in cases(args.phase, datasets, teachers):
        methods, secs = run_case(ds, tname, noise, configs, repeats, seed, args.jobs, args.data_dir)
        results["runs"].append(dict(dataset=ds, teacher=tname, noise=noise, seconds=secs, methods=methods))
        best = max(configs, key=lambda c: (methods[c]["accuracy"], methods[c]["agreement"]))
        print(
            f"{ds:13s} {tname:13s} noise {noise:.1f}: BM {methods['BM']['accuracy']:.3f}/"
            f"{methods['BM']['agreement']:.3f} VT {methods['VT']['accuracy']:.3f}/{methods['VT']['agreement']:.3f}"
            f" best {best} {methods[best]['accuracy']:.3f}/{methods[best]['agreement']:.3f} ({secs:.0f} s)",
            flush=True,
        )
        results["seconds"] = time.perf_counter() - start
        out_path.write_text(json.dumps(results, indent=1))
    print(f"\ntotal {results['seconds'] / 60:.1f} min; {out_path}\n")
    print(table(results["runs"], configs))


if __name__ == "__main__":
    main()
