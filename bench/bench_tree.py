"""Benchmarks of the histogram tree (crembo.HistTreeClassifier).

Parts (``--part``, default all):

fit       Single-fit time against scikit-learn's DecisionTreeClassifier at
          depth 4 and 8 on 10^4, 10^5 and 10^6 rows x 20 features x 10
          classes (make_classification, n_informative=10, n_redundant=5,
          random_state=0): wall time (median of the runs) and CPU time of
          scikit-learn, of HistTreeClassifier.fit on the raw array (binning
          included) on 1 thread and on the default threads, of a refit on a
          BinnedData (binning excluded), and of the binning alone; test
          accuracy on 20% held-out rows.
parity    Test accuracy of HistTreeClassifier against DecisionTreeClassifier
          (depth 4, balanced classes: the paper's student) on the paper's five
          data sets and a synthetic one, 10-fold cross-validation x 2
          repeats (crembo.evaluation.protocol.generalization, the same folds and the
          same teacher for both students): BM (the tree on the true labels)
          and CREMBO (default settings). Mean accuracy, paired difference and
          its standard error over the folds.
criteria  The set-valued criteria (gini, coverage, spread_gini) against the
          paper's multi-output scikit-learn tree (depth 4, no class weights,
          plus the paper's balanced one for reference), all with oracle="single"
          (one fit on the allowed-label matrix per threshold): MEMO's
          threshold (the depth it certifies on the transfer set), the CREMBO
          student's depth and test accuracy and the fitted tree's depth; 5
          stratified 70/30 splits per data set, the teacher (100 trees, depth
          12, balanced) shared.
crembo    CREMBO end to end at 100,000 rows x 20 x 10 classes with a fitted
          50-tree random forest (the configuration of bench/bench_crembo.py
          part b; forest fitted outside the timing, beliefs inside) and
          depth-4 tree students: scikit-learn's exhaustive sweep (reused from
          bench/results/crembo_exhaustive.json when its data settings match,
          else run with --exhaustive) against HistTreeClassifier configs.

Usage::

    python bench/bench_tree.py                    # everything (~15-25 min on 2 busy cores)
    python bench/bench_tree.py --part fit --sizes 1e4 1e5
    python bench/bench_tree.py --part crembo --repeats 3
    python bench/bench_tree.py --quick            # small sizes, for a smoke test

Writes bench/results/tree_<part>.md and .json. Timings on a shared machine
are noisy: the load average at the start of each part is recorded.
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
import sklearn
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import StratifiedShuffleSplit, train_test_split
from sklearn.tree import DecisionTreeClassifier

import crembo
from crembo import BinnedData, HistTreeClassifier, _core
from crembo.evaluation.datasets import DATASETS, load_dataset
from crembo.evaluation.protocol import generalization

from _common import crembo_data, data_key, loadavg, log  # noqa: E402  (bench/ is on sys.path as a script)

RESULTS = Path(__file__).resolve().parent / "results"
CACHE = Path(os.environ.get("CREMBO_BENCH_CACHE", "/tmp/crembo_bench_tree"))


def header(part):
    return (
        f"{part}: crembo {crembo.__version__}, scikit-learn {sklearn.__version__}, numpy {np.__version__}, "
        f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), crembo threads "
        f"{_core.get_num_threads()}; load average at start {loadavg()}."
    )


def timed(fn, repeats):
    """(median wall, min wall, median CPU) seconds over repeats runs of fn."""
    walls, cpus = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), min(walls), statistics.median(cpus)


def synthetic(n, seed=0, classes=10):
    return make_classification(
        n_samples=n,
        n_features=20,
        n_informative=10,
        n_redundant=5,
        n_classes=classes,
        n_clusters_per_class=1,
        random_state=seed,
    )


# ------------------------------------------------------------------- fit
def part_fit(args):
    rows = []
    for n in args.sizes:
        n = int(n)
        X, y = synthetic(int(n / 0.8))
        Xtr, Xte, ytr, yte = train_test_split(X, y, train_size=n, random_state=0, stratify=y)
        reps_sk = 3 if n <= 2e4 else (2 if n <= 2e5 else 1)
        reps = 5 if n <= 2e5 else 3
        t_bin = timed(lambda: BinnedData(Xtr), reps)
        binned = BinnedData(Xtr)
        for depth in (4, 8):
            sk = DecisionTreeClassifier(max_depth=depth, random_state=0)
            t_sk = timed(lambda: sk.fit(Xtr, ytr), reps_sk)
            acc_sk = sk.score(Xte, yte)
            h1 = HistTreeClassifier(max_depth=depth, n_jobs=1)
            t_h1 = timed(lambda: h1.fit(Xtr, ytr), reps)
            hd = HistTreeClassifier(max_depth=depth)
            t_hd = timed(lambda: hd.fit(Xtr, ytr), reps)
            acc_h = hd.score(Xte, yte)
            t_rb = timed(lambda: hd.fit(binned, ytr), reps)
            row = dict(
                n=n,
                depth=depth,
                sk_wall=t_sk[0],
                sk_cpu=t_sk[2],
                h1_wall=t_h1[0],
                h1_min=t_h1[1],
                h1_cpu=t_h1[2],
                hd_wall=t_hd[0],
                hd_min=t_hd[1],
                refit_wall=t_rb[0],
                refit_min=t_rb[1],
                bin_wall=t_bin[0],
                speedup_1t=t_sk[0] / t_h1[0],
                speedup_dt=t_sk[0] / t_hd[0],
                speedup_cpu_1t=t_sk[2] / t_h1[2],
                speedup_refit=t_sk[0] / t_rb[0],
                sk_acc=acc_sk,
                hist_acc=acc_h,
                sk_leaves=int(sk.get_n_leaves()),
                hist_leaves=int(hd.get_n_leaves()),
                reps_sk=reps_sk,
                reps=reps,
            )
            rows.append(row)
            log(
                f"fit: n={n:.0e} depth={depth}: sklearn {t_sk[0]:.3f}s, hist 1t {t_h1[0]:.4f}s, "
                f"hist {t_hd[0]:.4f}s, refit {t_rb[0]:.4f}s, bin {t_bin[0]:.4f}s, acc {acc_sk:.4f}/{acc_h:.4f}"
            )
    return rows


def render_fit(rows):
    out = [
        "| rows | depth | sklearn s (CPU s) | hist, 1 thread s (CPU s) | hist, default threads s | refit on BinnedData s "
        "| binning s | speedup 1 thread (wall / CPU) | speedup default threads | speedup refit | test acc sklearn / hist |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        out.append(
            f"| {r['n']:,.0f} | {r['depth']} | {r['sk_wall']:.3f} ({r['sk_cpu']:.3f}) "
            f"| {r['h1_wall']:.4f} ({r['h1_cpu']:.4f}) | {r['hd_wall']:.4f} | {r['refit_wall']:.4f} "
            f"| {r['bin_wall']:.4f} | {r['speedup_1t']:.0f}x / {r['speedup_cpu_1t']:.0f}x "
            f"| {r['speedup_dt']:.0f}x | {r['speedup_refit']:.0f}x "
            f"| {r['sk_acc']:.4f} / {r['hist_acc']:.4f} |"
        )
    return out


# ---------------------------------------------------------------- parity
def parity_data(quick):
    names = list(DATASETS)
    out = []
    for name in names:
        ds = load_dataset(name)
        out.append((name, np.asarray(ds.X, dtype=float), np.asarray(ds.y)))
    X, y = make_classification(
        n_samples=1500 if quick else 4000,
        n_features=20,
        n_informative=8,
        n_redundant=4,
        n_classes=5,
        n_clusters_per_class=2,
        flip_y=0.05,
        random_state=0,
    )
    out.append(("synthetic (4k x 20, 5 cl.)" if not quick else "synthetic (1.5k)", X, y))
    return out


def part_parity(args):
    rows = []
    repeats = 1 if args.quick else 2
    for name, X, y in parity_data(args.quick):
        res = {}
        # "sklearn": the tree seeded per fold (CREMBO seeds students whose
        # random_state is None); "sklearn'": seeded 123 throughout. They differ
        # only in how scikit-learn breaks ties between equally good splits
        # (a random feature order): the yardstick of "within noise".
        for kind, student in (
            ("sklearn", DecisionTreeClassifier(max_depth=4, class_weight="balanced")),
            ("sklearn2", DecisionTreeClassifier(max_depth=4, class_weight="balanced", random_state=123)),
            ("hist", HistTreeClassifier(max_depth=4, class_weight="balanced")),
        ):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t0 = time.perf_counter()
                res[kind] = generalization(
                    X,
                    y,
                    methods=("BM", "CREMBO"),
                    student=student,
                    n_splits=10,
                    n_repeats=repeats,
                    random_state=0,
                    n_jobs=2,
                )
                res[kind + "_s"] = time.perf_counter() - t0
        row = dict(dataset=name, n=len(y), d=X.shape[1], classes=int(len(np.unique(y))), folds=10 * repeats)
        for m in ("BM", "CREMBO"):
            a, b, a2 = res["sklearn"].scores[m], res["hist"].scores[m], res["sklearn2"].scores[m]
            diff, diff2 = b - a, a2 - a
            row[m] = dict(
                sklearn=float(a.mean()),
                hist=float(b.mean()),
                diff=float(diff.mean()),
                se=float(diff.std(ddof=1) / np.sqrt(len(diff))),
                sklearn2=float(a2.mean()),
                seed_diff=float(diff2.mean()),
                seed_se=float(diff2.std(ddof=1) / np.sqrt(len(diff2))),
                sk_std=float(a.std()),
                hist_std=float(b.std()),
                sk_seconds=res["sklearn"].summary[m]["seconds"],
                hist_seconds=res["hist"].summary[m]["seconds"],
            )
        rows.append(row)
        log(
            f"parity: {name}: BM {row['BM']['sklearn']:.4f}/{row['BM']['hist']:.4f}, "
            f"CREMBO {row['CREMBO']['sklearn']:.4f}/{row['CREMBO']['hist']:.4f}"
        )
    return rows


def render_parity(rows):
    out = [
        "| data set | n x d, classes | BM sklearn | BM hist | hist - sklearn (± SE) | sklearn' - sklearn "
        "(± SE) | CREMBO sklearn | CREMBO hist | hist - sklearn (± SE) | sklearn' - sklearn (± SE) "
        "| CREMBO fit s sklearn / hist |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        b, c = r["BM"], r["CREMBO"]
        out.append(
            f"| {r['dataset']} | {r['n']} x {r['d']}, {r['classes']} | {b['sklearn']:.4f} | {b['hist']:.4f} "
            f"| {b['diff']:+.4f} (± {b['se']:.4f}) | {b['seed_diff']:+.4f} (± {b['seed_se']:.4f}) "
            f"| {c['sklearn']:.4f} | {c['hist']:.4f} | {c['diff']:+.4f} (± {c['se']:.4f}) "
            f"| {c['seed_diff']:+.4f} (± {c['seed_se']:.4f}) "
            f"| {c['sk_seconds']:.2f} / {c['hist_seconds']:.2f} |"
        )
    return out


# -------------------------------------------------------------- criteria
def part_criteria(args):
    from sklearn.ensemble import RandomForestClassifier as RF

    # No class weights: balanced weights mean different things for the
    # multi-output tree (per binary output, multiplied over the outputs) and
    # for allowed sets (per class column), which would confound the criteria.
    # The paper's balanced multi-output student is kept as a reference row.
    students = [
        ("sklearn multi-output tree, balanced (paper)", DecisionTreeClassifier(max_depth=4, class_weight="balanced")),
        ("sklearn multi-output tree", DecisionTreeClassifier(max_depth=4)),
        ("hist gini", HistTreeClassifier(max_depth=4, criterion="gini")),
        ("hist coverage", HistTreeClassifier(max_depth=4, criterion="coverage")),
        ("hist spread_gini", HistTreeClassifier(max_depth=4, criterion="spread_gini")),
    ]
    rows = []
    n_splits = 2 if args.quick else 5
    for name, X, y in parity_data(args.quick):
        per = {s: dict(memo_t=[], memo_found=0, depth=[], acc=[], tree_depth=[], seconds=[]) for s, _ in students}
        splits = StratifiedShuffleSplit(n_splits=n_splits, test_size=0.3, random_state=0)
        _, counts = np.unique(y, return_counts=True)
        if counts.min() < 2:
            keep = np.isin(y, np.unique(y)[counts >= 2])
            X, y = X[keep], y[keep]
        for k, (tr, te) in enumerate(splits.split(X, y)):
            teacher = RF(n_estimators=100, max_depth=12, class_weight="balanced", random_state=k, n_jobs=2).fit(
                X[tr], y[tr]
            )
            for sname, student in students:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    t0 = time.perf_counter()
                    clf = crembo.CREMBOClassifier(
                        teacher=teacher, student=student, oracle="single", random_state=k
                    ).fit(X[tr], y[tr])
                    secs = time.perf_counter() - t0
                p = per[sname]
                p["memo_found"] += clf.memo_threshold_ is not None
                p["memo_t"].append(clf.memo_threshold_ if clf.memo_threshold_ is not None else 0.0)
                p["depth"].append(clf.depth_)
                p["acc"].append(float(np.mean(clf.predict(X[te]) == y[te])))
                inner = getattr(clf.student_, "estimator", clf.student_)
                p["tree_depth"].append(inner.get_depth() if hasattr(inner, "get_depth") else None)
                p["seconds"].append(secs)
        row = dict(dataset=name, splits=n_splits)
        for sname, _ in students:
            p = per[sname]
            row[sname] = dict(
                memo_threshold=float(np.mean(p["memo_t"])),
                memo_found=p["memo_found"],
                depth=float(np.mean(p["depth"])),
                acc=float(np.mean(p["acc"])),
                tree_depth=float(np.mean([d for d in p["tree_depth"] if d is not None] or [np.nan])),
                acc_std=float(np.std(p["acc"])),
                seconds=float(np.mean(p["seconds"])),
            )
        rows.append(row)
        log(
            f"criteria: {name}: "
            + ", ".join(
                f"{s}: memo t {row[s]['memo_threshold']:.3f}, depth {row[s]['depth']:.3f}, acc {row[s]['acc']:.4f}"
                for s, _ in students
            )
        )
    return rows, [s for s, _ in students]


def render_criteria(rows, names):
    out = [
        "| data set | student | MEMO threshold (mean; found in) | CREMBO student depth on S | test acc "
        "| tree levels | fit s |",
        "|---|---|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        for s in names:
            v = r[s]
            out.append(
                f"| {r['dataset']} | {s} | {v['memo_threshold']:.3f} ({v['memo_found']}/{r['splits']}) "
                f"| {v['depth']:.3f} | {v['acc']:.4f} ± {v['acc_std']:.4f} | {v['tree_depth']:.1f} "
                f"| {v['seconds']:.2f} |"
            )
    return out


# ---------------------------------------------------------------- crembo
def fitted_forest(Xtr, ytr, rows):
    import joblib

    path = CACHE / f"forest_{rows}.joblib"
    if path.exists():
        return joblib.load(path), None
    t0 = time.perf_counter()
    rf = RandomForestClassifier(n_estimators=50, n_jobs=2, random_state=0).fit(Xtr, ytr)
    secs = time.perf_counter() - t0
    CACHE.mkdir(parents=True, exist_ok=True)
    joblib.dump(rf, path)
    return rf, secs


HIST_CONFIGS = [
    ("hist, defaults (reweight oracle, labels, K=32, rounds=8)", dict(), {}),
    (
        "hist, the defaults before the study (student leaves, MEMO without warm start or adaptive growth)",
        dict(),
        dict(leaf_values="student", warm_start=False, adaptive_eta=False),
    ),
    ("hist, exhaustive (K=all)", dict(), dict(n_thresholds=None)),
    ("hist gini, oracle=single (allowed sets), K=32", dict(criterion="gini"), dict(oracle="single")),
    ("hist coverage, oracle=single, K=32", dict(criterion="coverage"), dict(oracle="single")),
    ("hist spread_gini, oracle=single, K=32", dict(criterion="spread_gini"), dict(oracle="single")),
    ("hist coverage, oracle=single, K=8", dict(criterion="coverage"), dict(oracle="single", n_thresholds=8)),
    (
        "hist coverage, oracle=single, K=8, sub=20k",
        dict(criterion="coverage"),
        dict(oracle="single", n_thresholds=8, search_subsample=20_000),
    ),
]


def run_crembo(name, student, kw, rf, data, repeats):
    Xtr, Xte, ytr, yte = data
    walls, clf = [], None
    for _ in range(repeats):
        clf = crembo.CREMBOClassifier(teacher=rf, student=student, random_state=0, n_jobs=2, **kw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            t0 = time.perf_counter()
            clf.fit(Xtr, ytr)
            walls.append(time.perf_counter() - t0)
    acc = float(np.mean(clf.predict(Xte) == yte))
    inner = getattr(clf.student_, "estimator", clf.student_)
    row = dict(
        config=name,
        wall_s=statistics.median(walls),
        wall_min=min(walls),
        wall_runs=walls,
        fits=int(clf.n_student_fits_),
        test_acc=acc,
        threshold=clf.threshold_,
        memo_threshold=clf.memo_threshold_,
        tree_depth=int(inner.get_depth()),
        timings={k: float(v) for k, v in clf.timings_.items()},
    )
    log(
        f"crembo: {name}: wall {row['wall_s']:.2f}s (min {row['wall_min']:.2f}), {row['fits']} fits, "
        f"acc {acc:.4f}, timings {json.dumps({k: round(v, 3) for k, v in clf.timings_.items()})}"
    )
    return row


def part_crembo(args):
    data = crembo_data(args.rows)
    Xtr, Xte, ytr, yte = data
    rf, rf_s = fitted_forest(Xtr, ytr, args.rows)
    rows = []
    exhaustive = None
    cache = RESULTS / "crembo_exhaustive.json"
    if not args.exhaustive and cache.exists():
        saved = json.loads(cache.read_text())
        if saved.get("data") == data_key(args.rows):
            exhaustive = dict(saved["row"], config="sklearn exhaustive (K=all), from bench_crembo.py")
            log(f"crembo: sklearn exhaustive reused from {cache}")
    if exhaustive is None:
        exhaustive = run_crembo(
            "sklearn exhaustive (K=all)",
            DecisionTreeClassifier(max_depth=4, random_state=0),
            dict(n_thresholds=None),
            rf,
            data,
            1,
        )
    rows.append(exhaustive)
    rows.append(
        run_crembo(
            "sklearn defaults (K=32, rounds=8)", DecisionTreeClassifier(max_depth=4, random_state=0), {}, rf, data, 1
        )
    )
    for name, tree_kw, kw in HIST_CONFIGS:
        rows.append(run_crembo(name, HistTreeClassifier(max_depth=4, **tree_kw), kw, rf, data, args.repeats))
    # The teacher's share: beliefs on the transfer set alone, counted by the
    # native forest (what CREMBO uses) and by the members' own predict.
    from crembo.compress.teachers import _member_votes

    Xs = Xtr[: int(0.85 * len(Xtr))]
    t = timed(lambda: crembo.teacher_beliefs(rf, Xs, n_jobs=2), args.repeats)
    t_members = timed(lambda: crembo.beliefs_from_votes(_member_votes(rf, Xs, 2), len(rf.classes_)), args.repeats)
    ref = exhaustive["test_acc"]
    for r in rows:
        r["delta_vs_exhaustive"] = r["test_acc"] - ref
    return dict(
        rows=rows,
        beliefs_alone_s=t[0],
        beliefs_members_s=t_members[0],
        forest_fit_s=rf_s,
        rows_fit=len(Xtr),
        rows_test=len(Xte),
    )


def render_crembo(res):
    out = [
        "| config | wall s (median; min) | student fits | test acc | vs sklearn exhaustive | beliefs s | memo s "
        "| sweep s | refit s | student fits s |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in res["rows"]:
        t = r["timings"]
        wmin = r.get("wall_min", r["wall_s"])
        out.append(
            f"| {r['config']} | {r['wall_s']:.2f}; {wmin:.2f} | {r['fits']} | {r['test_acc']:.4f} "
            f"| {r['delta_vs_exhaustive']:+.4f} | {t['beliefs']:.2f} | {t['memo']:.2f} | {t['sweep']:.2f} "
            f"| {t['refit']:.2f} | {t['student_fits']:.2f} |"
        )
    out.append("")
    out.append(
        f"Teacher beliefs alone (50 trees voting on the 85,000-row transfer set, n_jobs=2): "
        f"{res['beliefs_alone_s']:.2f} s (median) with crembo's native forest, "
        f"{res['beliefs_members_s']:.2f} s with the members' own predict."
    )
    return out


# ------------------------------------------------------------------ main
def save(part, payload, lines, args):
    RESULTS.mkdir(parents=True, exist_ok=True)
    suffix = "_quick" if args.quick else ""
    (RESULTS / f"tree_{part}{suffix}.json").write_text(json.dumps(payload, indent=1, default=float))
    text = "\n".join(lines) + "\n"
    (RESULTS / f"tree_{part}{suffix}.md").write_text(text)
    print(text)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=("fit", "parity", "criteria", "crembo", "all"), default="all")
    ap.add_argument("--sizes", type=float, nargs="+", default=[1e4, 1e5, 1e6])
    ap.add_argument("--rows", type=int, default=100_000, help="fitting rows of the crembo part")
    ap.add_argument("--repeats", type=int, default=3, help="runs per hist config in the crembo part")
    ap.add_argument("--exhaustive", action="store_true", help="rerun scikit-learn's exhaustive sweep")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes = [1e4, 3e4]
        args.rows = 20_000
        args.repeats = 1
    parts = ("fit", "parity", "criteria", "crembo") if args.part == "all" else (args.part,)
    for part in parts:
        head = header(part)
        log(head)
        if part == "fit":
            rows = part_fit(args)
            save(part, dict(rows=rows, header=head), [head, ""] + render_fit(rows), args)
        elif part == "parity":
            rows = part_parity(args)
            save(part, dict(rows=rows, header=head), [head, ""] + render_parity(rows), args)
        elif part == "criteria":
            rows, names = part_criteria(args)
            save(part, dict(rows=rows, header=head), [head, ""] + render_criteria(rows, names), args)
        else:
            res = part_crembo(args)
            save(part, dict(res, header=head), [head, ""] + render_crembo(res), args)


if __name__ == "__main__":
    main()
