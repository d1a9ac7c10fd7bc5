"""Kernel throughput through Python: crembo against plain NumPy.

For each size n (default 1e4, 1e6, 1e7), C = 10 classes and m = 100 sampled
hypotheses, times three implementations of each kernel:

* ``core``   -- the pybind11 binding ``crembo._core.<kernel>`` called directly
  (the native kernel plus the binding's argument handling);
* ``public`` -- the public ``crembo.<function>`` (adds the Python layer's
  argument validation: label range, finiteness, row sums); with
  ``--validated`` it is given ``crembo.Beliefs(P)``, validated once before
  the timing, as a loop over one belief matrix would;
* ``numpy``  -- the vectorised NumPy code a user would write.

Kernels and their NumPy counterparts (``r = np.arange(n)``):

=====================  ==============================================================
beliefs_from_votes     per-member ``np.bincount(r*C + votes[j], minlength=n*C)``
                       summed, or per-class ``np.count_nonzero(votes == c, axis=0)``
                       (whichever is faster at that size is the baseline)
point_depth            ``P[r, pred]``
empirical_depth        ``P[r, pred].min()``
count_violations       ``np.count_nonzero(P[r, pred] < t)``
allowed_labels         ``P >= t``
max_achievable_depth   ``P.max(axis=1).min()``
=====================  ==============================================================

Bytes touched (the same definition as ``bench/bench_core.cpp``): inputs read +
outputs written, s = itemsize of the beliefs; the belief matrix is counted in
full for the row gathers (rows are C*s = 40 or 80 bytes, so every cache line
of the matrix is fetched)::

    beliefs_from_votes    4*m*n + n*C*s        point_depth       n*C*s + 4*n + n*s
    empirical_depth       n*C*s + 4*n          count_violations  n*C*s + 4*n
    allowed_labels        n*C*s + n*C          max_achievable_depth  n*C*s

The memcpy reference copies B/2 bytes with ``np.copyto`` (B/2 read + B/2
written = B bytes touched) in the same run, once on one thread and once split
over the kernel threads; the faster of the two is the reference.

Each time is the median of ``--repeats`` timed runs after one warm-up call;
for each kernel the runs of core, public, NumPy and the memcpy references are
interleaved, so that load from other processes affects them alike (calls
faster than 10 ms are looped to fill 10 ms per run; a callable gets at most
``--numpy-budget`` seconds of runs, and one slower than that is timed once).

Usage::

    python bench/bench_kernels.py                      # 1e4, 1e6, 1e7
    python bench/bench_kernels.py --quick              # 1e4, 1e6, fewer repeats
    python bench/bench_kernels.py --sizes 1e6 --dtype f64 --threads 2

Writes a markdown table to stdout and ``bench/results/kernels.md``, and JSON
to ``bench/results/kernels.json``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

import crembo
from crembo import _core

RESULTS = Path(__file__).resolve().parent / "results"
KERNELS = (
    "beliefs_from_votes",
    "point_depth",
    "empirical_depth",
    "count_violations",
    "allowed_labels",
    "max_achievable_depth",
)
THRESHOLD = 0.3


# ---------------------------------------------------------------- timing
def time_group(fns, repeats, *, min_time=0.01, budget=20.0):
    """{name: (median, fastest)} seconds per call for each callable in ``fns``.

    Every callable gets one warm-up call; then the timed runs are interleaved
    (run r of each callable in turn) so that load from other processes on the
    machine hits them alike. Calls under ``min_time`` are looped to fill it;
    a callable gets at most ``budget`` seconds of timed runs, and one whose
    warm-up call took longer than ``budget`` is not rerun (its warm-up time is
    the result).
    """
    first, number, reps, samples = {}, {}, {}, {}
    for name, f in fns.items():
        t0 = time.perf_counter()
        f()
        first[name] = time.perf_counter() - t0
        number[name] = max(1, int(min_time / first[name])) if first[name] < min_time else 1
        reps[name] = 0 if first[name] > budget else max(1, min(repeats, int(budget / max(first[name], 1e-9))))
        samples[name] = []
    for r in range(repeats):
        for name, f in fns.items():
            if r >= reps[name]:
                continue
            k = number[name]
            t0 = time.perf_counter()
            for _ in range(k):
                f()
            samples[name].append((time.perf_counter() - t0) / k)
    return {name: (statistics.median(v), min(v)) if v else (first[name], first[name]) for name, v in samples.items()}


class Copier:
    """np.copyto of a given byte count, on one thread and split over threads."""

    def __init__(self, threads):
        self.threads = max(1, threads)
        self.pool = ThreadPoolExecutor(self.threads) if self.threads > 1 else None
        self.src = self.dst = np.empty(0, np.uint8)

    def ensure(self, nbytes):
        if self.src.size < nbytes:
            self.src = self.dst = None
            gc.collect()
            self.src = np.ones(nbytes, np.uint8)
            self.dst = np.zeros(nbytes, np.uint8)

    def functions(self, nbytes):
        """{"memcpy_1t": ..., "memcpy_nt": ...}: copy nbytes on one / on all threads."""
        self.ensure(nbytes)
        src, dst = self.src[:nbytes], self.dst[:nbytes]
        out = {"memcpy_1t": lambda: np.copyto(dst, src)}
        if self.pool is not None:
            edges = np.linspace(0, nbytes, self.threads + 1).astype(np.int64)
            chunks = [(dst[a:b], src[a:b]) for a, b in zip(edges[:-1], edges[1:])]
            out["memcpy_nt"] = lambda: list(self.pool.map(lambda c: np.copyto(c[0], c[1]), chunks))
        return out

    def release(self):
        self.src = self.dst = np.empty(0, np.uint8)
        gc.collect()


# ---------------------------------------------------------------- data
def make_data(n, C, m, seed):
    """Votes (m x n int32): each point has a true class that a member picks
    with probability ~0.6, else a random class. pred: mostly member 0's vote."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, C, n, dtype=np.int32)
    votes = np.empty((m, n), np.int32)
    for j in range(m):
        row = votes[j]
        row[...] = rng.integers(0, C, n, dtype=np.int32)
        keep = rng.integers(0, 256, n, dtype=np.uint8) < 154
        row[keep] = truth[keep]
    pred = votes[0].copy()
    flip = rng.integers(0, 16, n, dtype=np.uint8) >= 12
    pred[flip] = rng.integers(0, C, int(flip.sum()), dtype=np.int32)
    return votes, pred


def numpy_votes_bincount(votes, C, dtype):
    m, n = votes.shape
    base = np.arange(n, dtype=np.int64) * C
    counts = np.zeros(n * C, np.int64)
    for j in range(m):
        counts += np.bincount(base + votes[j], minlength=n * C)
    return (counts.reshape(n, C) / m).astype(dtype, copy=False)


def numpy_votes_classes(votes, C, dtype):
    m, n = votes.shape
    P = np.empty((n, C), dtype)
    for c in range(C):
        P[:, c] = np.count_nonzero(votes == c, axis=0)
    P /= m
    return P


def kernel_bytes(kernel, n, C, m, s):
    return {
        "beliefs_from_votes": 4 * m * n + n * C * s,
        "point_depth": n * C * s + 4 * n + n * s,
        "empirical_depth": n * C * s + 4 * n,
        "count_violations": n * C * s + 4 * n,
        "allowed_labels": n * C * s + n * C,
        "max_achievable_depth": n * C * s,
    }[kernel]


def implementations(kernel, votes, P, pred, C, dtype, validated=False):
    """(core, public, numpy) callables of one kernel; numpy may be a dict of variants.
    With ``validated`` the public functions get P as a ``crembo.Beliefs``."""
    f32 = dtype == np.float32
    Pp = crembo.Beliefs(P) if validated else P
    n = P.shape[0]
    r = np.arange(n)
    t = THRESHOLD
    if kernel == "beliefs_from_votes":
        return (
            lambda: _core.beliefs_from_votes(votes, C, f32),
            lambda: crembo.beliefs_from_votes(votes, C, dtype=dtype),
            {
                "bincount": lambda: numpy_votes_bincount(votes, C, dtype),
                "per-class": lambda: numpy_votes_classes(votes, C, dtype),
            },
        )
    if kernel == "point_depth":
        return (lambda: _core.point_depth(P, pred), lambda: crembo.point_depth(Pp, pred), lambda: P[r, pred])
    if kernel == "empirical_depth":
        return (lambda: _core.empirical_depth(P, pred, 0.0), lambda: crembo.depth(Pp, pred), lambda: P[r, pred].min())
    if kernel == "count_violations":
        return (
            lambda: _core.count_violations(P, pred, t),
            lambda: crembo.count_violations(Pp, pred, t),
            lambda: np.count_nonzero(P[r, pred] < t),
        )
    if kernel == "allowed_labels":
        return (lambda: _core.allowed_labels(P, t), lambda: crembo.allowed_labels(Pp, t), lambda: P >= t)
    if kernel == "max_achievable_depth":
        return (
            lambda: _core.max_achievable_depth(P),
            lambda: crembo.max_achievable_depth(Pp),
            lambda: P.max(axis=1).min(),
        )
    raise ValueError(kernel)


def check_agree(kernel, core, public, ref):
    """The three implementations must give the same answer."""
    a, b, c = (np.asarray(x) for x in (core, public, ref))
    ok = np.array_equal(a, b) and np.allclose(a.astype(np.float64), c.astype(np.float64), atol=1e-6)
    if not ok:
        raise AssertionError(f"{kernel}: crembo and NumPy disagree")


# ---------------------------------------------------------------- run
def run(args):
    threads = args.threads or _core.get_num_threads()
    _core.set_num_threads(threads)
    copier = Copier(threads)
    dtypes = {"both": (np.float64, np.float32), "f64": (np.float64,), "f32": (np.float32,)}[args.dtype]
    kernels = args.kernels or KERNELS
    rows = []
    print(
        f"crembo {crembo.__version__}: C = {args.classes}, m = {args.members}, {threads} kernel thread(s), "
        f"OpenMP {_core.built_with_openmp()}, median of {args.repeats}",
        flush=True,
    )
    for n in args.sizes:
        t0 = time.perf_counter()
        votes, pred = make_data(n, args.classes, args.members, args.seed)
        print(f"n = {n}: data in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
        for dtype in dtypes:
            s = np.dtype(dtype).itemsize
            P = _core.beliefs_from_votes(votes, args.classes, dtype == np.float32)
            for kernel in kernels:
                core_f, public_f, numpy_f = implementations(
                    kernel, votes, P, pred, args.classes, dtype, validated=args.validated
                )
                numpy_variants = numpy_f if isinstance(numpy_f, dict) else {"numpy": numpy_f}
                if args.check:
                    first = next(iter(numpy_variants.values()))
                    check_agree(kernel, core_f(), public_f(), first())
                    gc.collect()
                nbytes = kernel_bytes(kernel, n, args.classes, args.members, s)
                fns = {"core": core_f, "public": public_f}
                fns.update({"numpy:" + k: f for k, f in numpy_variants.items()})
                fns.update(copier.functions(nbytes // 2))
                # The NumPy votes baselines take seconds per call at 1e7: give
                # every callable the NumPy budget there.
                res = time_group(fns, args.repeats, budget=args.numpy_budget)
                t_core, b_core = res["core"]
                t_public, b_public = res["public"]
                numpy_name = min((k for k in res if k.startswith("numpy:")), key=lambda k: res[k][0])
                t_numpy, b_numpy = res[numpy_name]
                numpy_name = numpy_name.split(":", 1)[1]
                c1 = res["memcpy_1t"]
                cT = res.get("memcpy_nt", c1)
                t_copy, b_copy = min(c1[0], cT[0]), min(c1[1], cT[1])
                gc.collect()
                row = dict(
                    n=n,
                    dtype=np.dtype(dtype).name,
                    kernel=kernel,
                    bytes=nbytes,
                    core_s=t_core,
                    public_s=t_public,
                    numpy_s=t_numpy,
                    numpy_variant=numpy_name,
                    memcpy_1t_s=c1[0],
                    memcpy_nt_s=cT[0],
                    memcpy_s=t_copy,
                    best_core_s=b_core,
                    best_public_s=b_public,
                    best_numpy_s=b_numpy,
                    best_memcpy_s=b_copy,
                    best_core_vs_memcpy=b_copy / b_core,
                    best_speedup_core=b_numpy / b_core,
                    core_gbps=nbytes / t_core / 1e9,
                    public_gbps=nbytes / t_public / 1e9,
                    numpy_gbps=nbytes / t_numpy / 1e9,
                    memcpy_gbps=nbytes / t_copy / 1e9,
                )
                row["core_vs_memcpy"] = row["core_gbps"] / row["memcpy_gbps"]
                row["public_vs_memcpy"] = row["public_gbps"] / row["memcpy_gbps"]
                row["speedup_core"] = t_numpy / t_core
                row["speedup_public"] = t_numpy / t_public
                rows.append(row)
                print(md_row(row), file=sys.stderr, flush=True)
            del P
            gc.collect()
        del votes, pred
        copier.release()
    return rows, threads


def fmt_t(s):
    if s < 1e-3:
        return f"{s * 1e6:.1f} us"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def fmt_b(b):
    if b < 1e6:
        return f"{b / 1e3:.0f} KB"
    if b < 1e9:
        return f"{b / 1e6:.0f} MB"
    return f"{b / 1e9:.2f} GB"


HEADER = (
    "| n | dtype | kernel | bytes | core | public | numpy | core GB/s | public GB/s | numpy GB/s "
    "| memcpy GB/s | core/memcpy | public/memcpy | speed-up core | speed-up public "
    "| best: core/memcpy | best: speed-up core |\n"
    "|--:|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
)


def md_row(r):
    return (
        f"| {r['n']:.0e} | {r['dtype']} | {r['kernel']} | {fmt_b(r['bytes'])} | {fmt_t(r['core_s'])} "
        f"| {fmt_t(r['public_s'])} | {fmt_t(r['numpy_s'])} | {r['core_gbps']:.2f} | {r['public_gbps']:.2f} "
        f"| {r['numpy_gbps']:.2f} | {r['memcpy_gbps']:.2f} | {r['core_vs_memcpy']:.2f} "
        f"| {r['public_vs_memcpy']:.2f} | {r['speedup_core']:.1f}x | {r['speedup_public']:.1f}x "
        f"| {r['best_core_vs_memcpy']:.2f} | {r['best_speedup_core']:.1f}x |"
    )


TARGET_KERNELS = ("point_depth", "empirical_depth", "count_violations", "allowed_labels", "max_achievable_depth")


def targets(rows):
    """The stated targets at the largest size: >= 0.5 memcpy bandwidth and >= 5x NumPy."""
    big = max(r["n"] for r in rows)
    out = []
    for r in rows:
        if r["n"] != big or r["kernel"] not in TARGET_KERNELS:
            continue
        out.append(
            dict(
                n=big,
                dtype=r["dtype"],
                kernel=r["kernel"],
                core_half_memcpy=r["core_vs_memcpy"] >= 0.5,
                core_5x_numpy=r["speedup_core"] >= 5,
                public_half_memcpy=r["public_vs_memcpy"] >= 0.5,
                public_5x_numpy=r["speedup_public"] >= 5,
                best_core_half_memcpy=r["best_core_vs_memcpy"] >= 0.5,
                best_core_5x_numpy=r["best_speedup_core"] >= 5,
            )
        )
    return out


def render(rows, threads, args):
    lines = [
        f"Kernels through Python: C = {args.classes}, m = {args.members}, {threads} kernel thread(s); "
        f"times are medians of {args.repeats} runs; load average at start {args.load_start}, "
        f"at end {loadavg()}.",
        "core = crembo._core binding, public = crembo.* function ("
        + ("given crembo.Beliefs(P), validated once before timing" if args.validated else "with validation")
        + "), numpy = plain NumPy; "
        "bytes = inputs read + outputs written; memcpy = np.copyto of bytes/2 (faster of 1 and "
        f"{threads} threads), same run; best = the same from the fastest run of each.",
        "",
        HEADER,
    ]
    lines += [md_row(r) for r in rows]
    tg = targets(rows)
    if tg:
        yes = lambda b: "yes" if b else "**no**"  # noqa: E731
        lines += [
            "",
            f"Targets at n = {tg[0]['n']:.0e} (>= 0.5 x memcpy bandwidth, >= 5x NumPy):",
            "",
            "| dtype | kernel | core >= 0.5 memcpy | core >= 5x numpy | public >= 0.5 memcpy "
            "| public >= 5x numpy | best runs: core >= 0.5 memcpy | best runs: core >= 5x numpy |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for t in tg:
            lines.append(
                f"| {t['dtype']} | {t['kernel']} | {yes(t['core_half_memcpy'])} | "
                f"{yes(t['core_5x_numpy'])} | {yes(t['public_half_memcpy'])} | {yes(t['public_5x_numpy'])} "
                f"| {yes(t['best_core_half_memcpy'])} | {yes(t['best_core_5x_numpy'])} |"
            )
    return "\n".join(lines) + "\n"


def loadavg():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def parse_size(s):
    return int(round(float(s)))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--sizes",
        type=lambda s: [parse_size(x) for x in s.split(",") if x],
        default=[10_000, 1_000_000, 10_000_000],
        help="comma-separated n (default 1e4,1e6,1e7)",
    )
    p.add_argument("--quick", action="store_true", help="sizes 1e4,1e6 and 3 repeats")
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--members", type=int, default=100)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=0, help="kernel threads (default: the core's default)")
    p.add_argument("--dtype", choices=("both", "f64", "f32"), default="both")
    p.add_argument("--kernels", type=lambda s: [k for k in s.split(",") if k], default=None)
    p.add_argument(
        "--numpy-budget",
        type=float,
        default=20.0,
        help="seconds per NumPy measurement; slower calls are timed once (default 20)",
    )
    p.add_argument("--no-check", dest="check", action="store_false", help="skip the agreement check")
    p.add_argument(
        "--validated",
        action="store_true",
        help="give the public functions crembo.Beliefs(P), validated once before timing",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(RESULTS / "kernels"), help="output stem (.md and .json are added)")
    args = p.parse_args(argv)
    if args.quick:
        args.sizes = [10_000, 1_000_000]
        args.repeats = min(args.repeats, 3)
    for k in args.kernels or ():
        if k not in KERNELS:
            p.error(f"unknown kernel {k!r}; expected some of {', '.join(KERNELS)}")

    args.load_start = loadavg()
    rows, threads = run(args)
    text = render(rows, threads, args)
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(text)
    meta = dict(
        crembo=crembo.__version__,
        numpy=np.__version__,
        python=platform.python_version(),
        machine=platform.machine(),
        cpus=os.cpu_count(),
        threads=threads,
        openmp=bool(_core.built_with_openmp()),
        classes=args.classes,
        members=args.members,
        repeats=args.repeats,
        threshold=THRESHOLD,
        loadavg_start=args.load_start,
        loadavg_end=loadavg(),
    )
    out.with_suffix(".json").write_text(json.dumps(dict(meta=meta, rows=rows, targets=targets(rows)), indent=1))
    print(f"wrote {out.with_suffix('.md')} and {out.with_suffix('.json')}", file=sys.stderr)


if __name__ == "__main__":
    main()
