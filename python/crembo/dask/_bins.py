"""Bin edges from a mergeable quantile sketch, and binning where the rows live.

Each partition summarises every feature: its distinct float32 values with
their counts when it has at most ``sketch_size`` of them (exact), otherwise
``sketch_size`` evenly spaced order statistics, each standing for an equal
share of the partition's rows. Summaries merge by adding the weights of
equal values. The edges then follow the rule of the in-memory binning
(``crembo.trees.hist.BinnedData``): with at most ``max_bins`` distinct values in
all the data every value gets its own bin (exactly the in-memory bins);
otherwise bins of about equal row weight, a value never straddling two.

As in the in-memory binning from a row sample, a row goes to the first bin
whose edge (largest value of the sketch in it) is at least its value, the
last bin above every edge; each bin's ``lo``/``hi`` (which place the split
thresholds) are the smallest and largest value of the rows coded into it,
a min/max reduction over the partitions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..trees.hist import MAX_BINS, BinnedData

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import ArrayLike

    # Per feature: (distinct values, weights, exact).
    Sketch = list[tuple[np.ndarray, np.ndarray, bool]]

#: Slots per feature in the lo/hi tables (the native layout).
BIN_SLOTS = 256


def _as_f32(col):
    v = np.asarray(col, dtype=np.float32)
    if np.isinf(v).any():
        raise ValueError(
            "X: infinite or too large for float32 values; tree features are compared as float32 "
            f"(|x| > {np.finfo(np.float32).max})"
        )
    v = v[~np.isnan(v)]
    return v + np.float32(0.0)  # -0.0 -> 0.0


def sketch(X: np.ndarray, sketch_size: int) -> Sketch:
    """Per feature: (values, weights, exact) of one partition."""
    out = []
    for j in range(X.shape[1]):
        v = _as_f32(X[:, j])
        u, c = np.unique(v, return_counts=True)
        if u.size <= sketch_size:
            out.append((u, c.astype(np.float64), True))
            continue
        s = np.sort(v)
        pos = ((np.arange(sketch_size) + 0.5) * (len(s) / sketch_size)).astype(np.int64)
        q = s[np.minimum(pos, len(s) - 1)]
        q[-1] = s[-1]  # the largest value is always an edge candidate
        uq, cq = np.unique(q, return_counts=True)
        out.append((uq, cq * (len(s) / sketch_size), False))
    return out


def merge_sketches(a: Sketch, b: Sketch) -> Sketch:
    out = []
    for (va, wa, ea), (vb, wb, eb) in zip(a, b):
        v = np.concatenate([va, vb])
        w = np.concatenate([wa, wb])
        u, inv = np.unique(v, return_inverse=True)
        out.append((u, np.bincount(inv, weights=w, minlength=u.size), ea and eb))
    return out


def _weighted_bin_ends(w, max_bins):
    """Exclusive ends (indices into the sorted distinct values) of bins of
    about equal weight: the in-memory rule (``bin_ends``) on weighted runs."""
    cum = np.cumsum(w)
    N = cum[-1]
    ends = []
    pos_w, pos_i = 0.0, 0
    left = max_bins
    n = len(w)
    while pos_i < n:
        target = pos_w + (N - pos_w) / left
        if left == 1 or target >= N:
            ends.append(n)
            break
        # The run (value) holding the target weight: [rs_w, re_w).
        i = int(np.searchsorted(cum, target, side="right"))
        i = min(max(i, pos_i), n - 1)
        rs_w = cum[i - 1] if i > 0 else 0.0
        re_w = cum[i]
        end = i if (i > pos_i and target - rs_w <= re_w - target) else i + 1
        ends.append(end)
        pos_w, pos_i = (cum[end - 1] if end > 0 else 0.0), end
        left -= 1
    return np.asarray(ends, dtype=np.int64)


def edges_from_sketch(sk: Sketch, max_bins: int) -> list[np.ndarray]:
    """Per feature, the largest value of each bin (float32, increasing)."""
    edges = []
    for v, w, _exact in sk:
        if v.size == 0:
            edges.append(np.zeros(0, dtype=np.float32))
        elif v.size <= max_bins:
            edges.append(v.astype(np.float32))  # one bin per value (exact when the sketch is)
        else:
            ends = _weighted_bin_ends(w, max_bins)
            edges.append(v[ends - 1].astype(np.float32))
    return edges


def code_partition(X: ArrayLike, edges: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(codes d x n uint8, lo d x B, hi d x B): the bin codes of one
    partition and each bin's smallest and largest value there."""
    n, d = X.shape
    codes = np.empty((d, n), dtype=np.uint8)
    lo = np.full((d, BIN_SLOTS), np.inf, dtype=np.float32)
    hi = np.full((d, BIN_SLOTS), -np.inf, dtype=np.float32)
    for j in range(d):
        col = np.asarray(X[:, j], dtype=np.float32) + np.float32(0.0)
        e = edges[j]
        nb = e.size
        miss = np.isnan(col)
        if nb == 0:
            codes[j] = 0
            continue
        c = np.minimum(np.searchsorted(e, col, side="left"), nb - 1)
        c[miss] = nb
        codes[j] = c
        ok = ~miss
        if ok.any():
            np.minimum.at(lo[j], c[ok], col[ok])
            np.maximum.at(hi[j], c[ok], col[ok])
    return codes, lo, hi


def merge_lohi(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    return np.minimum(a[0], b[0]), np.maximum(a[1], b[1])


class BinEdges:
    """Bins of every feature, as the tree uses them.

    Attributes
    ----------
    edges : list of float32 arrays
        Largest sketch value of each bin, per feature.
    n_bins : ndarray of int32, shape (n_features,)
    lo, hi : ndarray of float32, shape (n_features, 256)
        Smallest and largest value of the rows in each bin (the edge for a
        bin no row reached).
    """

    def __init__(self, edges, lo, hi, max_bins=MAX_BINS):
        self.edges = [np.asarray(e, dtype=np.float32) for e in edges]
        self.max_bins = int(max_bins)
        self.n_bins = np.array([e.size for e in self.edges], dtype=np.int32)
        d = len(self.edges)
        self.lo = np.zeros((d, BIN_SLOTS), dtype=np.float32)
        self.hi = np.zeros((d, BIN_SLOTS), dtype=np.float32)
        for j, e in enumerate(self.edges):
            nb = e.size
            filled = lo[j, :nb] <= hi[j, :nb]
            self.lo[j, :nb] = np.where(filled, lo[j, :nb], e)
            self.hi[j, :nb] = np.where(filled, hi[j, :nb], e)

    @property
    def n_features(self) -> int:
        return len(self.edges)

    def binned(self, X: ArrayLike) -> BinnedData:
        """``X`` (a NumPy array) binned with these edges as a
        ``crembo.trees.hist.BinnedData``, for an in-memory ``HistTreeClassifier``
        to fit on the same bins as the distributed tree."""
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"X: expected a 2-d array with {self.n_features} columns, got shape {X.shape}")
        codes, _, _ = code_partition(X, self.edges)
        out = object.__new__(BinnedData)
        out.max_bins = self.max_bins
        out.n_features = self.n_features
        out._codes, out.n_bins, out._lo, out._hi = codes, self.n_bins.copy(), self.lo.copy(), self.hi.copy()
        out._rows = None
        out.n_samples = X.shape[0]
        return out
