"""The data-parallel tree's native pieces (crembo._core.hist_node_histograms,
hist_split_nodes): histograms add up over partitions to the whole's, and bad
input is a clear ValueError."""

import numpy as np
import pytest

from crembo import _core


def _inputs(n=200, d=3, C=3, seed=0):
    rng = np.random.RandomState(seed)
    n_bins = np.array([5, 7, 4], dtype=np.int32)[:d]
    codes = np.stack([rng.randint(0, nb + 1, n) for nb in n_bins]).astype(np.uint8)
    labels = rng.randint(0, C, n).astype(np.int32)
    omega = rng.rand(n) + 0.1
    slot = rng.randint(-1, 2, n).astype(np.int32)
    return codes, n_bins, slot, labels, omega


def test_partition_histograms_add_up_to_the_whole():
    codes, n_bins, slot, labels, omega = _inputs()
    whole = _core.hist_node_histograms(codes, n_bins, slot, 2, labels, omega, 3)
    assert whole.shape == (2, int((n_bins + 1).sum()) * 5)
    a = _core.hist_node_histograms(
        np.ascontiguousarray(codes[:, :80]), n_bins, slot[:80], 2, labels[:80], omega[:80], 3
    )
    b = _core.hist_node_histograms(
        np.ascontiguousarray(codes[:, 80:]), n_bins, slot[80:], 2, labels[80:], omega[80:], 3
    )
    np.testing.assert_allclose(a + b, whole)
    # Rows per node: every feature's slots count each row of the node once.
    for k in range(2):
        assert whole[k].reshape(-1, 5)[: n_bins[0] + 1, 1].sum() == np.sum(slot == k)


def test_bad_input_is_a_clear_error():
    codes, n_bins, slot, labels, omega = _inputs()
    with pytest.raises(ValueError, match="slot"):
        _core.hist_node_histograms(codes, n_bins, np.full_like(slot, 5), 2, labels, omega, 3)
    with pytest.raises(ValueError, match="labels"):
        _core.hist_node_histograms(codes, n_bins, slot, 2, np.full_like(labels, 7), omega, 3)
    with pytest.raises(ValueError, match="codes"):
        _core.hist_node_histograms(codes + 9, n_bins, slot, 2, labels, omega, 3)
    with pytest.raises(ValueError, match="omega"):
        _core.hist_node_histograms(codes, n_bins, slot, 2, labels, omega[:-1], 3)
    with pytest.raises(ValueError, match="n_bins"):
        _core.hist_node_histograms(codes, np.array([5, 300, 4], dtype=np.int32), slot, 2, labels, omega, 3)
    lo = np.zeros((3, 256), dtype=np.float32)
    W, cnt = np.ones(1), np.array([10])
    ch, allow = np.ones((1, 3)), np.ones((1, 3), dtype=np.int64)
    with pytest.raises(ValueError, match="hist"):
        _core.hist_split_nodes(np.zeros((1, 5)), W, cnt, ch, allow, np.zeros(1, np.int32), n_bins, lo, lo, 3)
    with pytest.raises(ValueError, match="channel"):
        _core.hist_split_nodes(None, W, cnt, ch[:, :2], allow, np.zeros(1, np.int32), n_bins, lo, lo, 3)
    with pytest.raises(ValueError, match="criterion"):
        _core.hist_split_nodes(None, W, cnt, ch, allow, np.zeros(1, np.int32), n_bins, lo, lo, 3, criterion="x")
    with pytest.raises(ValueError, match="min_samples_leaf"):
        _core.hist_split_nodes(None, W, cnt, ch, allow, np.zeros(1, np.int32), n_bins, lo, lo, 3, min_samples_leaf=0)


def test_node_rules_without_a_histogram():
    codes, n_bins, slot, labels, omega = _inputs()
    lo = np.zeros((3, 256), dtype=np.float32)
    # A pure node (one label at every row) and a node at the depth limit may not split.
    out = _core.hist_split_nodes(
        None,
        np.array([3.0, 3.0, 3.0]),
        np.array([3, 3, 3]),
        np.array([[3.0, 0, 0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]),
        np.array([[3, 0, 0], [1, 1, 1], [1, 1, 1]]),
        np.array([0, 0, 2], dtype=np.int32),
        n_bins,
        lo,
        lo,
        3,
        max_depth=2,
    )
    assert out["splittable"].tolist() == [0, 1, 0]
    assert out["found"].tolist() == [0, 0, 0]
    np.testing.assert_allclose(out["impurity"], [0.0, 2 / 3, 2 / 3])
