"""crembo.dask on a two-worker LocalCluster: CREMBO with the data-parallel
histogram tree at 10^6 and 10^7 rows x 20 features x 10 classes, a fitted
50-tree forest as the teacher, and one depth-4 tree next to xgboost.dask's
and LightGBM's Dask estimators on the same cluster and data.

    python bench/bench_dask.py --rows 1000000 10000000 --out bench/results/dask.json

The rows are generated on the workers (dask.array random; not persisted,
so every fit generates them as it reads them, as it would read them from
storage; generating alone is timed apart); the teacher is fitted on 10^5 rows of the same
distribution. Each worker gets ``--memory-limit`` bytes (default 1.5 GB,
below the 1.6 GB of X at 10^7 rows). Peak memory: each worker process's
resident set, sampled every 0.2 s. In-memory crembo (crembo.CREMBOClassifier
with the same settings, on the same rows gathered to one process) runs at
the sizes given by ``--local-rows``. xgboost and lightgbm are optional
(skipped when missing); with 10 classes each grows one tree per class in
its one boosting round.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import threading
import time

import numpy as np

D, C = 20, 10
SETTINGS = dict(student="tree:4", n_thresholds=8, max_rounds=4)


def make_data(rows, chunk, seed):
    import dask.array as da

    rs = da.random.RandomState(seed)
    X = rs.standard_normal((rows, D), chunks=(chunk, D))
    A = np.random.RandomState(1).standard_normal((D, C))
    noise = rs.standard_normal((rows, C), chunks=(chunk, C))
    y = da.argmax(X @ A + 1.5 * noise, axis=1).astype(np.int64)
    return X, y


class PeakMemory:
    """Each worker's largest resident set while running."""

    def __init__(self, client, every=0.2):
        self.client, self.every, self.peak = client, every, {}
        self._stop = threading.Event()
        self._th = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        import psutil

        def rss():
            return psutil.Process().memory_info().rss

        while not self._stop.is_set():
            try:
                for w, v in self.client.run(rss).items():
                    self.peak[w] = max(self.peak.get(w, 0), v)
            except Exception:  # a worker restarting: skip this sample
                pass
            self._stop.wait(self.every)

    def __enter__(self):
        self._th.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._th.join()

    def mb(self):
        return [round(v / 2**20) for _, v in sorted(self.peak.items())]


def one_tree_crembo(client, X, y, depth):
    """One distributed HistTree fit on (X, y): the bins (sketch and coding)
    and the fit, timed apart."""
    from crembo.dask import _bins
    from crembo.dask._tree import TreeFitter, _sum_tree
    from crembo.trees.hist import HistTreeClassifier

    from dask import delayed

    # Each partition is read (here: generated) as a task needs it and
    # dropped after: once for the sketch, once for the codes.
    parts = list(X.to_delayed().ravel())
    ys = client.compute(list(y.astype(np.int32).to_delayed().ravel()))
    t0 = time.perf_counter()
    sketches = client.compute([delayed(_bins.sketch)(p, 2048) for p in parts])
    sk = _sum_tree(client, sketches, _bins.merge_sketches)
    edges = _bins.edges_from_sketch(sk, 255)
    coded = client.compute([delayed(_bins.code_partition)(p, edges) for p in parts])
    lo, hi = _sum_tree(client, client.map(lambda c: (c[1], c[2]), coded), _bins.merge_lohi)
    codes = client.map(lambda c: c[0], coded)
    client.gather(client.map(lambda c: c.shape[1], codes))
    del coded
    bins = _bins.BinEdges(edges, lo, hi, 255)
    t_bins = time.perf_counter() - t0
    fitter = TreeFitter(client, HistTreeClassifier(max_depth=depth), bins, codes, C)
    t0 = time.perf_counter()
    est = fitter.fit(ys)
    t_fit = time.perf_counter() - t0
    return dict(bins_s=round(t_bins, 2), fit_s=round(t_fit, 2), nodes=est.tree_.node_count)


def one_tree_xgboost(client, X, y, depth):
    try:
        import xgboost as xgb
        import xgboost.dask  # noqa: F401
    except ImportError:
        return None
    m = xgb.dask.DaskXGBClassifier(n_estimators=1, max_depth=depth, tree_method="hist", max_bin=256, nthread=1)
    m.client = client
    t0 = time.perf_counter()
    m.fit(X, y)
    return dict(fit_s=round(time.perf_counter() - t0, 2), version=xgb.__version__)


def one_tree_lightgbm(client, X, y, depth):
    try:
        import lightgbm as lgb
    except ImportError:
        return None
    m = lgb.DaskLGBMClassifier(
        n_estimators=1, max_depth=depth, num_leaves=2**depth, max_bin=255, n_jobs=1, client=client, verbose=-1
    )
    t0 = time.perf_counter()
    m.fit(X, y)
    return dict(fit_s=round(time.perf_counter() - t0, 2), version=lgb.__version__)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--local-rows", type=int, nargs="*", default=[1_000_000])
    ap.add_argument("--partitions", type=int, default=8, help="partitions of the data (per size)")
    ap.add_argument("--memory-limit", default="1.5GB", help="per worker")
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--skip", nargs="*", default=[], choices=["crembo", "tree", "xgboost", "lightgbm", "local"])
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import dask
    import distributed
    from sklearn.ensemble import RandomForestClassifier

    from crembo import CREMBOClassifier as LocalCREMBO
    from crembo.dask import CREMBOClassifier

    dask.config.set(
        {
            "distributed.worker.memory.target": 0.85,
            "distributed.worker.memory.spill": 0.9,
            "distributed.worker.memory.pause": 0.92,
        }
    )
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, memory_limit=args.memory_limit, dashboard_address=None
    )
    client = distributed.Client(cluster)
    Xt, yt = make_data(100_000, 50_000, seed=7)
    Xt, yt = client.compute([Xt, yt], sync=True)  # the teacher's training rows (not the benchmark's)
    t0 = time.perf_counter()
    teacher = RandomForestClassifier(n_estimators=50, max_depth=12, n_jobs=2, random_state=0).fit(Xt, yt)
    result = dict(
        command="python bench/bench_dask.py " + " ".join(os.sys.argv[1:]),
        machine=f"{platform.machine()}, {os.cpu_count()} cores (shared with other agents)",
        cluster=f"LocalCluster: 2 worker processes x 1 thread, memory_limit={args.memory_limit} per worker",
        settings=SETTINGS,
        teacher=f"RandomForestClassifier(50 trees, max_depth=12) fitted on 10^5 rows in {time.perf_counter() - t0:.1f}s",
        runs=[],
    )
    for rows in args.rows:
        chunk = -(-rows // args.partitions)
        X, y = make_data(rows, chunk, seed=11)
        # Not persisted: each fit generates the rows on the workers as it
        # reads them (as it would read them from storage); generating them
        # alone takes generate_s.
        t0 = time.perf_counter()
        client.compute([X.sum(), y.sum()], sync=True)
        run = dict(rows=rows, data_gb=round(rows * D * 8 / 1e9, 2), generate_s=round(time.perf_counter() - t0, 1))
        print(run, flush=True)
        if "crembo" not in args.skip:
            est = CREMBOClassifier(teacher, random_state=0, client=client, **SETTINGS)
            with PeakMemory(client) as mem:
                t0 = time.perf_counter()
                est.fit(X, y)
                wall = time.perf_counter() - t0
            run["crembo_dask"] = dict(
                wall_s=round(wall, 1),
                peak_mb_per_worker=mem.mb(),
                timings={k: round(v, 2) for k, v in est.timings_.items()},
                n_fits=est.n_student_fits_,
                threshold=est.threshold_,
                validation_score=est.validation_score_,
            )
            print(run["crembo_dask"], flush=True)
        if "tree" not in args.skip:
            with PeakMemory(client) as mem:
                run["tree_crembo"] = one_tree_crembo(client, X, y, args.depth)
            run["tree_crembo"]["peak_mb_per_worker"] = mem.mb()
            print("crembo tree", run["tree_crembo"], flush=True)
        for name, fn in (("xgboost", one_tree_xgboost), ("lightgbm", one_tree_lightgbm)):
            if name in args.skip:
                continue
            try:
                with PeakMemory(client) as mem:
                    r = fn(client, X, y, args.depth)
                if r is not None:
                    r["peak_mb_per_worker"] = mem.mb()
            except Exception as exc:  # an anchor that fails is reported, not fatal
                r = dict(error=f"{type(exc).__name__}: {exc}"[:300])
            run[f"tree_{name}"] = r
            print(name, r, flush=True)
        if "local" not in args.skip and rows in args.local_rows:
            Xl, yl = client.compute([X, y], sync=True)
            local = LocalCREMBO(teacher, cv=None, augment=0, random_state=0, **SETTINGS)
            t0 = time.perf_counter()
            local.fit(Xl, yl)
            run["crembo_in_memory"] = dict(
                wall_s=round(time.perf_counter() - t0, 1),
                timings={k: round(v, 2) for k, v in local.timings_.items()},
                n_fits=local.n_student_fits_,
                threshold=local.threshold_,
            )
            print("in-memory", run["crembo_in_memory"], flush=True)
            del Xl, yl
        result["runs"].append(run)
        del X, y
    print(json.dumps(result, indent=1))
    if args.out:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    client.close()
    cluster.close()


if __name__ == "__main__":
    main()
