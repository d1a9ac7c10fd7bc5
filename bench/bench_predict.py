"""Prediction latency of deployed tree students: crembo.FastTree against
scikit-learn's predict (and ONNX Runtime when installed), and the generated
C++ in the C++ benchmark.

    python bench/bench_predict.py                 # depth-4 and depth-8 trees, 10^6 rows
    python bench/bench_predict.py --no-cpp --rows 200000 --json out.json

For each depth it fits a DecisionTreeClassifier on synthetic data (20
features, 3 classes, a target the trees cannot fit exactly, so they grow to
full depth) and measures

* single-row latency from Python: one ``predict`` call on a (1, d) array,
  over --single-rows different rows, median of --repeats runs;
* batch prediction of --rows rows (float64 input): scikit-learn, FastTree on
  one thread and on every thread;
* identity on the --rows rows: predict, predict_proba and apply of FastTree
  against scikit-learn (the number of differing rows must be 0);
* with a C++ compiler and CMake (default): writes each tree as a FastTree
  file and as generated C++ (crembo.trees.export.export_cpp), builds the CMake
  target ``crembo_bench_predict`` with them compiled in, and runs it on the
  same rows (float32): the header-only evaluator and the generated code,
  per call and per batch, and their disagreement count.

Timings are wall-clock on whatever machine runs this; the load average is
recorded next to them because other work on the machine skews them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.tree import DecisionTreeClassifier

from crembo import _core
from crembo.trees.export import FastTree, export_cpp

ROOT = Path(__file__).resolve().parents[1]


def make_data(n, d, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    score = X[:, 0] + np.sin(2 * X[:, 1]) * X[:, 2] + 0.5 * X[:, 3] * X[:, 4] + 0.3 * rng.normal(size=n)
    y = (score > -0.5).astype(int) + (score > 0.7)
    return X, y


def per_call(fn, rows, repeats):
    """Median over repeats of the mean seconds per call of fn(row)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for r in rows:
            fn(r)
        times.append((time.perf_counter() - t0) / len(rows))
    return float(np.median(times))


def once(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def onnx_session(tree):
    try:
        import onnxruntime as ort

        from crembo.trees.export import export_onnx
    except ImportError:
        return None
    try:
        onx = export_onnx(tree)
    except ImportError:
        return None
    opts = ort.SessionOptions()
    return ort.InferenceSession(onx.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def bench_python(tree, X, singles, args):
    ft = FastTree.from_sklearn(tree)
    res = {"nodes": int(tree.tree_.node_count), "depth": int(tree.get_depth()), "leaves": int(tree.get_n_leaves())}
    # single rows
    res["single_sklearn_us"] = 1e6 * per_call(tree.predict, singles[: args.sklearn_single_rows], args.repeats)
    res["single_fasttree_us"] = 1e6 * per_call(ft.predict, singles, args.repeats)
    res["single_fasttree_proba_us"] = 1e6 * per_call(ft.predict_proba, singles, args.repeats)
    sess = onnx_session(tree)
    if sess is not None:
        singles32 = [r.astype(np.float32) for r in singles[: args.sklearn_single_rows]]
        res["single_onnx_us"] = 1e6 * per_call(lambda r: sess.run(["label"], {"X": r}), singles32, args.repeats)
    # batches
    reps = max(1, args.repeats // 2)
    res["batch_sklearn_s"] = once(lambda: tree.predict(X), reps)
    _core.set_num_threads(1)
    res["batch_fasttree_1thread_s"] = once(lambda: ft.predict(X), reps)
    _core.set_num_threads(0)
    res["threads"] = int(_core.get_num_threads())
    res["batch_fasttree_all_s"] = once(lambda: ft.predict(X), reps)
    if sess is not None:
        X32 = X.astype(np.float32)
        res["batch_onnx_s"] = once(lambda: sess.run(["label"], {"X": X32}), reps)
    # identity on every row
    res["rows"] = int(len(X))
    res["differ_predict"] = int(np.sum(ft.predict(X) != tree.predict(X)))
    res["differ_proba"] = int(np.sum(np.any(ft.predict_proba(X) != tree.predict_proba(X), axis=1)))
    res["differ_apply"] = int(np.sum(ft.apply(X) != tree.apply(X)))
    return ft, res


def bench_cpp(trees, X, args, workdir):
    """Build crembo_bench_predict with the generated code of the trees and run it."""
    if shutil.which("cmake") is None:
        return None, "cmake not found: C++ benchmark skipped"
    gen = workdir / "generated"
    gen.mkdir(parents=True, exist_ok=True)
    files, includes, entries = [], [], []
    for depth, ft in trees:
        ns = f"tree_d{depth}"
        (gen / f"{ns}.hpp").write_text(export_cpp(ft, name=ns))
        ft.save(gen / f"{ns}.fasttree.txt")
        files.append(gen / f"{ns}.fasttree.txt")
        includes.append(f'#include "{ns}.hpp"')
        entries.append(f'    {{"depth {depth}", &{ns}::predict<float>, &{ns}::predict_batch<float>}},')
    (gen / "crembo_bench_trees.hpp").write_text(
        "\n".join(
            [
                "// Written by bench/bench_predict.py: the generated trees crembo_bench_predict times.",
                "#pragma once",
                *includes,
                "",
                "struct GeneratedTree {",
                "    const char* name;",
                "    int (*predict)(const float*);",
                "    void (*batch)(const float*, long, int*);",
                "};",
                "",
                "static const GeneratedTree kGenerated[] = {",
                *entries,
                "};",
                f"static const int kNumGenerated = {len(entries)};",
                "",
            ]
        )
    )
    data = gen / "X.f32"
    np.ascontiguousarray(X, dtype="<f4").tofile(data)
    build = workdir / "build"
    cfg = [
        "cmake",
        "-S",
        str(ROOT),
        "-B",
        str(build),
        "-DCMAKE_BUILD_TYPE=Release",
        "-DCREMBO_CUDA=OFF",
        "-DCREMBO_BUILD_PYTHON=OFF",
        "-DCREMBO_BUILD_BENCH=ON",
        f"-DCREMBO_BENCH_GENERATED={gen}",
    ]
    for cmd in (cfg, ["cmake", "--build", str(build), "--target", "crembo_bench_predict", "-j", "2"]):
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            return None, f"C++ build failed ({' '.join(cmd[:3])} ...):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    exe = build / "crembo_bench_predict"
    cmd = [str(exe), "--data", str(data), "--repeats", str(args.repeats)]
    for f in files:
        cmd += ["--tree", str(f)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        return None, f"crembo_bench_predict failed:\n{r.stdout}\n{r.stderr}"
    return r.stdout, None


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000, help="rows of the batch and identity checks")
    p.add_argument("--train-rows", type=int, default=100_000)
    p.add_argument("--features", type=int, default=20)
    p.add_argument("--depths", default="4,8")
    p.add_argument("--single-rows", type=int, default=20_000, help="single-row calls per FastTree run")
    p.add_argument("--sklearn-single-rows", type=int, default=1_000, help="single-row calls per scikit-learn run")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--no-cpp", action="store_true", help="skip the C++ benchmark")
    p.add_argument("--workdir", default=str(ROOT / "build" / "bench_predict"))
    p.add_argument("--json", default=None, help="write the raw numbers here")
    args = p.parse_args(argv)
    depths = [int(s) for s in args.depths.split(",") if s.strip()]

    load0 = os.getloadavg() if hasattr(os, "getloadavg") else None
    Xtr, ytr = make_data(args.train_rows, args.features, 0)
    X, _ = make_data(args.rows, args.features, 1)
    singles = [X[i : i + 1] for i in range(min(args.single_rows, len(X)))]
    results, trees = {}, []
    for depth in depths:
        tree = DecisionTreeClassifier(max_depth=depth, random_state=0).fit(Xtr, ytr)
        ft, res = bench_python(tree, X, singles, args)
        results[depth] = res
        trees.append((depth, ft))
        print(f"depth {depth}: done", file=sys.stderr)
    cpp_out, cpp_note = (None, "skipped (--no-cpp)") if args.no_cpp else bench_cpp(trees, X, args, Path(args.workdir))
    load1 = os.getloadavg() if hasattr(os, "getloadavg") else None

    have_onnx = all("single_onnx_us" in r for r in results.values())
    print(
        f"# crembo bench_predict: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average {load0[0]:.1f} -> {load1[0]:.1f}"
        if load0
        else ""
    )
    print(
        f"# {args.rows} rows x {args.features} features (float64), trees fitted on {args.train_rows} rows; "
        f"medians of {args.repeats} runs\n"
    )
    print("Single-row latency from Python (one predict call on a (1, d) array):\n")
    head = "| tree | nodes | scikit-learn predict | FastTree.predict | speed-up | FastTree.predict_proba |"
    sep = "|---|---|---|---|---|---|"
    if have_onnx:
        head += " ONNX Runtime run |"
        sep += "---|"
    print(head)
    print(sep)
    for _depth, r in results.items():
        line = (
            f"| depth {r['depth']} | {r['nodes']} | {r['single_sklearn_us']:.1f} us | "
            f"{r['single_fasttree_us']:.2f} us | {r['single_sklearn_us'] / r['single_fasttree_us']:.0f}x | "
            f"{r['single_fasttree_proba_us']:.2f} us |"
        )
        if have_onnx:
            line += f" {r['single_onnx_us']:.1f} us |"
        print(line)
    print(f"\nBatch of {args.rows} rows (float64 input) and identity with scikit-learn:\n")
    head = (
        f"| tree | scikit-learn | FastTree, 1 thread | FastTree, {results[depths[0]]['threads']} threads |"
        + (" ONNX Runtime (float32) |" if have_onnx else "")
        + " rows differing: predict / proba / apply |"
    )
    print(head)
    print("|---|---|---|---|" + ("---|" if have_onnx else "") + "---|")
    for _depth, r in results.items():
        line = (
            f"| depth {r['depth']} | {r['batch_sklearn_s'] * 1e3:.0f} ms | "
            f"{r['batch_fasttree_1thread_s'] * 1e3:.0f} ms | {r['batch_fasttree_all_s'] * 1e3:.0f} ms |"
        )
        if have_onnx:
            line += f" {r['batch_onnx_s'] * 1e3:.0f} ms |"
        line += f" {r['differ_predict']} / {r['differ_proba']} / {r['differ_apply']} |"
        print(line)
    print("\nC++ (crembo_bench_predict, float32 rows, no Python):\n")
    print(cpp_out if cpp_out else cpp_note)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "args": vars(args),
                    "load_average": [load0, load1],
                    "python": {str(k): v for k, v in results.items()},
                    "cpp": cpp_out,
                    "cpp_note": cpp_note,
                },
                indent=2,
            )
        )
    bad = any(r["differ_predict"] or r["differ_proba"] or r["differ_apply"] for r in results.values())
    return 1 if bad or (cpp_note and not args.no_cpp) else 0


if __name__ == "__main__":
    sys.exit(main())
