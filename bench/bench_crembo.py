"""End-to-end CREMBO benchmarks.

Part a -- "a full CREMBO fit adds little over the student fits it makes":
    CREMBOClassifier (default settings, default teacher fitted inside, one
    thread) on breast cancer and on a synthetic set; the fit's ``timings_``
    split into teacher_fit, augment (MUNGE's synthetic rows), beliefs, memo,
    sweep, refit, student_fits and overhead (= total - teacher_fit -
    student_fits: synthetic rows, beliefs, thresholds, oracle bookkeeping,
    validation scoring, data copies).

Part b -- the headline: compress a fitted 50-tree RandomForestClassifier
    into a depth-4 DecisionTreeClassifier on 100,000 rows x 20 features x 10
    classes (make_classification, n_informative=10, random_state=0; 25,000
    more rows held out as the test set) end to end (teacher beliefs included,
    the forest fitted outside the timing) on 2 cores, against the exhaustive
    sweep (``n_thresholds=None``, no subsample), BM (the tree on the true
    labels) and VT (``crembo.LabelDistiller``: the tree on the forest's
    argmax labels).

Usage::

    python bench/bench_crembo.py                     # parts a and b
    python bench/bench_crembo.py --part b --skip-exhaustive
    python bench/bench_crembo.py --part b --grid      # also a wider config grid
    python bench/bench_crembo.py --quick              # 20,000 rows, for a smoke test

Writes ``bench/results/crembo.md`` and ``bench/results/crembo.json``
(``crembo_quick.*`` with ``--quick``); the exhaustive reference is also kept
in ``bench/results/crembo_exhaustive.json`` and reused by
``--skip-exhaustive`` when its data settings match.
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
from sklearn.datasets import load_breast_cancer, make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.tree import DecisionTreeClassifier

import crembo
from crembo import _core

from _common import crembo_data, data_key, loadavg, log  # noqa: E402  (bench/ is on sys.path as a script)

RESULTS = Path(__file__).resolve().parent / "results"
TIMING_KEYS = ("teacher_fit", "augment", "beliefs", "memo", "sweep", "refit", "student_fits", "overhead", "total")

# Part b configurations: (name, CREMBOClassifier keyword arguments).
EXHAUSTIVE = ("exhaustive", dict(n_thresholds=None, search_subsample=None, max_rounds=8, n_jobs=2))
CONFIGS = [
    ("headline: sub=10k, K=all, rounds=2", dict(search_subsample=10_000, n_thresholds=None, max_rounds=2, n_jobs=2)),
    ("sub=10k, K=all, rounds=8", dict(search_subsample=10_000, n_thresholds=None, max_rounds=8, n_jobs=2)),
    ("sub=10k, K=8, rounds=4", dict(search_subsample=10_000, n_thresholds=8, max_rounds=4, n_jobs=2)),
    ("sub=5k, K=16, rounds=2", dict(search_subsample=5_000, n_thresholds=16, max_rounds=2, n_jobs=2)),
    (
        "sub=10k, K=all, rounds=8, patience=1",
        dict(search_subsample=10_000, n_thresholds=None, max_rounds=8, patience=1, n_jobs=2),
    ),
]
# Run once each, with the exhaustive sweep (skipped by --skip-exhaustive): all rows, no subsample.
SLOW = [
    ("defaults (K=32, rounds=8, no subsample)", dict(n_jobs=2)),
    ("exhaustive, patience=1", dict(n_thresholds=None, search_subsample=None, max_rounds=8, patience=1, n_jobs=2)),
]
GRID = [
    (f"sub={s // 1000}k, K={k or 'all'}, rounds={r}", dict(search_subsample=s, n_thresholds=k, max_rounds=r, n_jobs=2))
    for s in (5_000, 10_000, 20_000)
    for k in (4, 8, 16, None)
    for r in (2, 4, 8)
]


# ---------------------------------------------------------------- part a
def part_a(args):
    datasets = []
    X, y = load_breast_cancer(return_X_y=True)
    datasets.append(("breast_cancer", X, y))
    n_syn = 4_000 if args.quick else 20_000
    X, y = make_classification(
        n_samples=n_syn,
        n_features=20,
        n_informative=10,
        n_redundant=5,
        n_classes=5,
        n_clusters_per_class=1,
        random_state=0,
    )
    datasets.append((f"synthetic_{n_syn // 1000}k_20f_5c", X, y))
    rows = []
    for name, X, y in datasets:
        runs = []
        for _rep in range(args.repeats_a):
            clf = crembo.CREMBOClassifier(random_state=0, n_jobs=1)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                t0 = time.perf_counter()
                clf.fit(X, y)
                wall = time.perf_counter() - t0
            runs.append(dict(clf.timings_, wall=wall, fits=clf.n_student_fits_))
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        search = med["total"] - med["teacher_fit"]
        row = dict(
            dataset=name,
            n=len(X),
            d=X.shape[1],
            classes=len(np.unique(y)),
            repeats=args.repeats_a,
            fits=int(med["fits"]),
            **{k: med[k] for k in TIMING_KEYS},
            overhead_share=med["overhead"] / search if search > 0 else None,
            overhead_rest=med["overhead"] - med["beliefs"] - med["augment"],
            per_fit=med["student_fits"] / max(med["fits"], 1),
        )
        rows.append(row)
        log(f"part a: {name}: {json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()})}")
    return rows


def render_a(rows):
    out = [
        "### a. Where a CREMBO fit spends its time",
        "",
        "CREMBOClassifier() defaults (default 100-tree teacher fitted inside, n_thresholds=32, max_rounds=8, "
        "n_jobs=1), median of the runs; seconds. overhead = total - teacher_fit - student_fits "
        "(it includes augment and beliefs); rest = overhead - augment - beliefs; "
        "share = overhead / (total - teacher_fit).",
        "",
        "| data set | n x d, C | fits | teacher_fit | augment | beliefs | memo | sweep | refit | student_fits "
        "| overhead | rest | total | share | s/fit |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        out.append(
            f"| {r['dataset']} | {r['n']} x {r['d']}, {r['classes']} | {r['fits']} | {r['teacher_fit']:.3f} "
            f"| {r['augment']:.3f} | {r['beliefs']:.3f} | {r['memo']:.3f} | {r['sweep']:.3f} | {r['refit']:.3f} "
            f"| {r['student_fits']:.3f} | {r['overhead']:.3f} | {r['overhead_rest']:.3f} "
            f"| {r['total']:.3f} | {100 * r['overhead_share']:.1f}% | {r['per_fit'] * 1e3:.1f} ms |"
        )
    return out


# ---------------------------------------------------------------- part b
def make_data(args):
    return crembo_data(args.rows)


def student():
    return DecisionTreeClassifier(max_depth=4, random_state=0)


def run_crembo(name, kw, rf, data, P_test, repeats):
    Xtr, Xte, ytr, yte = data
    walls = []
    for _ in range(repeats):
        clf = crembo.CREMBOClassifier(teacher=rf, student=student(), random_state=0, **kw)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            t0 = time.perf_counter()
            clf.fit(Xtr, ytr)
            walls.append(time.perf_counter() - t0)
        memo_failed = any("MEMO found no consistent" in str(w.message) for w in caught)
    pred = clf.predict(Xte)
    pred_idx = np.searchsorted(clf.classes_, pred).astype(np.int32)
    row = dict(
        config=name,
        kind="crembo",
        params={k: v for k, v in kw.items()},
        wall_s=statistics.median(walls),
        wall_runs=walls,
        fits=int(clf.n_student_fits_),
        test_acc=float(np.mean(pred == yte)),
        threshold=clf.threshold_,
        memo_threshold=clf.memo_threshold_,
        memo_failed=memo_failed,
        depth=clf.depth_,
        test_median_depth=crembo.depth(P_test, pred_idx, delta=0.5),
        test_mean_depth=float(crembo.point_depth(P_test, pred_idx).mean()),
        tree_depth=int(clf.student_.get_depth()) if hasattr(clf.student_, "get_depth") else None,
        timings={k: clf.timings_.get(k) for k in TIMING_KEYS},
    )
    log(
        f"part b: {name}: wall {row['wall_s']:.2f} s, {row['fits']} fits, test acc {row['test_acc']:.4f}, "
        f"threshold {row['threshold']}, timings {json.dumps({k: round(v, 2) for k, v in row['timings'].items()})}"
    )
    return row


def part_b(args):
    data = make_data(args)
    Xtr, Xte, ytr, yte = data
    t0 = time.perf_counter()
    rf = RandomForestClassifier(n_estimators=50, n_jobs=2, random_state=0).fit(Xtr, ytr)
    rf_fit = time.perf_counter() - t0
    log(f"part b: forest fitted in {rf_fit:.1f} s (not timed in the rows)")
    # Test-set beliefs, to score how deep each student is on unseen points.
    P_test = crembo.teacher_beliefs(rf, Xte, n_jobs=2)
    rows = [
        dict(
            config="teacher: RandomForest(50)",
            kind="teacher",
            wall_s=rf_fit,
            fits=None,
            test_acc=float(rf.score(Xte, yte)),
        )
    ]

    # BM: the student on the true labels.
    t0 = time.perf_counter()
    bm = student().fit(Xtr, ytr)
    wall = time.perf_counter() - t0
    bm_idx = np.searchsorted(rf.classes_, bm.predict(Xte)).astype(np.int32)
    rows.append(
        dict(
            config="BM: tree on true labels",
            kind="bm",
            wall_s=wall,
            fits=1,
            test_acc=float(bm.score(Xte, yte)),
            test_median_depth=crembo.depth(P_test, bm_idx, delta=0.5),
            test_mean_depth=float(crembo.point_depth(P_test, bm_idx).mean()),
            tree_depth=int(bm.get_depth()),
        )
    )
    # VT: the student on the forest's argmax labels (beliefs included).
    t0 = time.perf_counter()
    vt = crembo.LabelDistiller(teacher=rf, student=student(), n_jobs=2, random_state=0).fit(Xtr, ytr)
    wall = time.perf_counter() - t0
    vt_idx = np.searchsorted(rf.classes_, vt.predict(Xte)).astype(np.int32)
    rows.append(
        dict(
            config="VT: LabelDistiller",
            kind="vt",
            wall_s=wall,
            fits=1,
            test_acc=float(vt.score(Xte, yte)),
            test_median_depth=crembo.depth(P_test, vt_idx, delta=0.5),
            test_mean_depth=float(crembo.point_depth(P_test, vt_idx).mean()),
            tree_depth=int(vt.student_.get_depth()),
        )
    )
    for r in rows:
        log(f"part b: {r['config']}: wall {r['wall_s']:.2f} s, test acc {r['test_acc']:.4f}")

    configs = list(CONFIGS)
    if args.grid:
        names = {c[0] for c in configs}
        configs += [c for c in GRID if c[0] not in names]
    exhaustive = None
    cache = Path(args.out + "_exhaustive.json")
    if not args.skip_exhaustive:
        exhaustive = run_crembo(EXHAUSTIVE[0], EXHAUSTIVE[1], rf, data, P_test, 1)
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(dict(data=data_key(args.rows), row=exhaustive, loadavg=loadavg()), indent=1))
    elif cache.exists():
        saved = json.loads(cache.read_text())
        if saved.get("data") == data_key(args.rows):
            exhaustive = dict(saved["row"], config=saved["row"]["config"] + " (cached)")
            log(f"part b: exhaustive reused from {cache}")
    if exhaustive is not None:
        rows.append(exhaustive)
    if not args.skip_exhaustive:
        for name, kw in SLOW:
            rows.append(run_crembo(name, kw, rf, data, P_test, 1))
    for name, kw in configs:
        rows.append(run_crembo(name, kw, rf, data, P_test, args.repeats))
    ref = exhaustive["test_acc"] if exhaustive else None
    for r in rows:
        r["delta_vs_exhaustive"] = None if ref is None else r["test_acc"] - ref
    return dict(rows=rows, forest_fit_s=rf_fit, rows_fit=len(Xtr), rows_test=len(Xte))


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def render_b(res, args):
    rows = res["rows"]
    out = [
        f"### b. 50-tree random forest -> depth-4 tree, {res['rows_fit'] // 1000}k rows",
        "",
        f"{res['rows_fit']} fitting rows x 20 features x 10 classes (make_classification, n_informative=10, "
        f"random_state=0), {res['rows_test']} test rows; RandomForestClassifier(50 trees, n_jobs=2) fitted "
        f"outside the timing ({res['forest_fit_s']:.1f} s). Wall = CREMBOClassifier.fit end to end (teacher "
        f"beliefs included), median of {args.repeats} runs (the no-subsample rows: 1 run). K = n_thresholds, "
        "sub = search_subsample, rounds = max_rounds, patience = stop a MEMO threshold after that many rounds "
        "without fewer violations (default 0: off); all configs n_jobs=2. median / mean depth = median / "
        "mean over the test set of p(student's label | x) under the forest's beliefs (the empirical depth, a "
        "minimum, is 0 for every student here).",
        "",
        "| config | wall s | student fits | test acc | vs exhaustive | threshold | median depth "
        "| mean depth | beliefs s | memo s | sweep s | refit s |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        t = r.get("timings") or {}
        d = r.get("delta_vs_exhaustive")
        out.append(
            f"| {r['config']} | {r['wall_s']:.2f} | {fmt(r.get('fits'), 'd')} | {r['test_acc']:.4f} "
            f"| {'-' if d is None or r['kind'] == 'teacher' else format(d, '+.4f')} "
            f"| {fmt(r.get('threshold'), '.3f')} | {fmt(r.get('test_median_depth'), '.3f')} "
            f"| {fmt(r.get('test_mean_depth'), '.3f')} | {fmt(t.get('beliefs'), '.2f')} "
            f"| {fmt(t.get('memo'), '.2f')} | {fmt(t.get('sweep'), '.2f')} | {fmt(t.get('refit'), '.2f')} |"
        )
    failed = [r["config"] for r in rows if r.get("memo_failed")]
    if failed:
        out += [
            "",
            f"MEMO found no consistent student (delta = 0) in: {', '.join(failed)}; the sweep then starts "
            "at the smallest belief value.",
        ]
    head = next((r for r in rows if r["config"].startswith("headline")), None)
    exh = next(
        (
            r
            for r in rows
            if r["kind"] == "crembo" and r["config"].startswith("exhaustive") and "patience" not in r["config"]
        ),
        None,
    )
    if head:
        ok_time = head["wall_s"] < 10
        line = f"Headline target: wall {head['wall_s']:.2f} s < 10 s: {'met' if ok_time else 'NOT met'}"
        if exh:
            ok_acc = head["test_acc"] >= exh["test_acc"]
            line += (
                f"; test accuracy {head['test_acc']:.4f} vs exhaustive {exh['test_acc']:.4f} "
                f"({'not lower: met' if ok_acc else 'lower: NOT met'}); "
                f"{exh['wall_s'] / head['wall_s']:.1f}x faster than the exhaustive sweep"
            )
        out += ["", line + "."]
    return out


# ---------------------------------------------------------------- main
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--part", choices=("a", "b", "all"), default="all")
    p.add_argument("--rows", type=int, default=100_000, help="fitting rows of part b (test rows: a quarter more)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per part-b config (median reported)")
    p.add_argument("--repeats-a", type=int, default=3, help="runs per part-a data set")
    p.add_argument(
        "--skip-exhaustive",
        action="store_true",
        help="do not run the exhaustive sweep (reuse bench/results/crembo_exhaustive.json if it matches)",
    )
    p.add_argument("--grid", action="store_true", help="also run a 36-config grid of search settings")
    p.add_argument("--quick", action="store_true", help="20,000 rows, 1 repeat: a smoke test")
    p.add_argument(
        "--out",
        default=None,
        help="output stem: .md, .json and _exhaustive.json are added (default bench/results/crembo, "
        "bench/results/crembo_quick with --quick)",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.rows = min(args.rows, 20_000)
        args.repeats = args.repeats_a = 1
    if args.out is None:
        args.out = str(RESULTS / ("crembo_quick" if args.quick else "crembo"))

    meta = dict(
        crembo=crembo.__version__,
        sklearn=sklearn.__version__,
        numpy=np.__version__,
        python=platform.python_version(),
        cpus=os.cpu_count(),
        kernel_threads=_core.get_num_threads(),
        loadavg_start=loadavg(),
    )
    lines = [
        f"CREMBO end to end: crembo {crembo.__version__}, scikit-learn {sklearn.__version__}, "
        f"{os.cpu_count()} CPUs; load average at start {meta['loadavg_start']}.",
        "",
    ]
    result = dict(meta=meta)
    if args.part in ("a", "all"):
        result["a"] = part_a(args)
        lines += render_a(result["a"]) + [""]
    if args.part in ("b", "all"):
        result["b"] = part_b(args)
        lines += render_b(result["b"], args) + [""]
    meta["loadavg_end"] = loadavg()
    lines.append(f"Load average at end: {meta['loadavg_end']}.")
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(text)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1, default=float))
    log(f"wrote {out.with_suffix('.md')} and {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
