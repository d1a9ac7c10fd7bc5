"""Structured compression by interpolative decomposition (crembo.nn.prune)."""

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("scipy")
from torch import nn  # noqa: E402

from crembo.nn import decomposition, prune  # noqa: E402


def _seed(s=0):
    torch.manual_seed(s)
    return np.random.default_rng(s)


def _duplicate_channels(model, producer, between, distinct, scales=None):
    """Make the outputs of ``producer`` channels ``distinct..`` copies of channels ``< distinct``.

    Channel ``c >= distinct`` copies channel ``src[c]`` (optionally scaled by
    a positive factor, which ReLU passes through); per-channel modules
    between the layer and the next are copied alike.
    """
    layer = model.get_submodule(producer)
    width = layer.weight.shape[0]
    gen = torch.Generator().manual_seed(1)
    src = torch.cat([torch.arange(distinct), torch.randint(0, distinct, (width - distinct,), generator=gen)])
    scale = torch.ones(width, dtype=layer.weight.dtype)
    if scales is not None:
        scale[distinct:] = torch.empty(width - distinct).uniform_(*scales, generator=gen)
    with torch.no_grad():
        shape = (-1,) + (1,) * (layer.weight.dim() - 1)
        layer.weight.copy_(layer.weight[src] * scale.view(shape))
        if layer.bias is not None:
            layer.bias.copy_(layer.bias[src] * scale)
        for name in between:
            m = model.get_submodule(name)
            for t in list(m.parameters(recurse=False)) + list(m.buffers(recurse=False)):
                if t.dim() >= 1 and t.shape[0] == width:
                    t.copy_(t[src])
    return src


def _mlp(d=10, h=(24, 16), out=5):
    layers, prev = [], d
    for w in h:
        layers += [nn.Linear(prev, w), nn.ReLU()]
        prev = w
    layers.append(nn.Linear(prev, out))
    return nn.Sequential(*layers)


def _cnn(width=8, head=12, out=4):
    # conv -> BN -> ReLU -> conv -> BN -> ReLU -> maxpool -> flatten -> dropout -> linear -> ReLU -> linear
    return nn.Sequential(
        nn.Conv2d(2, width, 3, padding=1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.Conv2d(width, width, 3, padding=1),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.2),
        nn.Linear(width * 4 * 4, head),
        nn.ReLU(),
        nn.Linear(head, out),
    )


def _randomize_bn(model):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)


def _max_rel(a, b):
    return float((a - b).abs().max() / b.abs().max())


# ---------------------------------------------------------------------------
# The decomposition
# ---------------------------------------------------------------------------


def test_id_of_a_low_rank_matrix_is_exact():
    rng = _seed()
    Z = rng.standard_normal((50, 4)) @ rng.standard_normal((4, 12))
    dec = prune.interpolative_decomposition(Z, tolerance=1e-8)
    assert dec.rank == 4
    np.testing.assert_allclose(dec.T[:, dec.columns], np.eye(4), atol=1e-12)
    np.testing.assert_allclose(Z[:, dec.columns] @ dec.T, Z, atol=1e-9)
    assert np.all(np.diff(dec.rdiag) <= 1e-12)  # pivoted-QR diagonal does not increase


def test_id_with_more_columns_than_rank_is_still_exact():
    rng = _seed()
    Z = rng.standard_normal((6, 3)) @ rng.standard_normal((3, 10))  # rank 3, only 6 rows
    dec = prune.interpolative_decomposition(Z, rank=8)
    assert dec.rank == 8 and np.all(np.isfinite(dec.T))
    np.testing.assert_allclose(Z[:, dec.columns] @ dec.T, Z, atol=1e-8)


def test_id_rank_and_tolerance_are_exclusive_and_checked():
    Z = np.eye(5)
    with pytest.raises(ValueError, match="exactly one"):
        prune.interpolative_decomposition(Z)
    with pytest.raises(ValueError, match="exactly one"):
        prune.interpolative_decomposition(Z, 2, tolerance=0.1)
    with pytest.raises(ValueError, match="rank"):
        prune.interpolative_decomposition(Z, 6)
    with pytest.raises(ValueError, match="tolerance"):
        prune.interpolative_decomposition(Z, tolerance=1.5)
    with pytest.raises(ValueError, match="non-finite"):
        prune.interpolative_decomposition(np.full((3, 3), np.nan), 1)


def test_streamed_factor_gives_the_decomposition_of_all_rows():
    rng = _seed()
    Z = rng.standard_normal((300, 9)) * np.linspace(3, 0.01, 9) + 0.5
    acc = decomposition._RowFactor(9)
    for part in np.array_split(Z, 7):
        acc.update(torch.as_tensor(part))
    for center in (False, True):
        Zc = Z - Z.mean(0) if center else Z
        direct = prune.interpolative_decomposition(Zc, rank=5)
        streamed = decomposition._id_from_factor(acc.factor(center), rank=5)
        np.testing.assert_array_equal(direct.columns, streamed.columns)
        np.testing.assert_allclose(direct.T, streamed.T, atol=1e-9)
        np.testing.assert_allclose(direct.rdiag, streamed.rdiag, rtol=1e-9)
    np.testing.assert_allclose(acc.mean, Z.mean(0))


# ---------------------------------------------------------------------------
# Folding against a dense computation
# ---------------------------------------------------------------------------


def test_fold_into_linear_matches_dense():
    rng = _seed()
    lin = nn.Linear(7, 3).double()
    T = torch.as_tensor(rng.standard_normal((4, 7)))
    xJ = torch.as_tensor(rng.standard_normal((20, 4)))
    ref = lin(xJ @ T)
    folded = prune.fold_interpolation(copy.deepcopy(lin), T)
    assert folded.weight.shape == (3, 4) and folded.in_features == 4
    torch.testing.assert_close(folded(xJ), ref)


def test_fold_into_linear_after_flatten_matches_dense():
    rng = _seed()
    C, k, H, W = 6, 4, 3, 2
    lin = nn.Linear(C * H * W, 5).double()
    T = torch.as_tensor(rng.standard_normal((k, C)))
    xJ = torch.as_tensor(rng.standard_normal((10, k, H, W)))
    full = torch.einsum("njhw,jc->nchw", xJ, T)  # every position interpolated channel-wise
    d = torch.as_tensor(rng.standard_normal(C))
    ref = lin(full.flatten(1))
    ref_offset = lin((full + d.view(1, C, 1, 1)).flatten(1))
    folded = prune.fold_interpolation(copy.deepcopy(lin), T)
    assert folded.in_features == k * H * W
    torch.testing.assert_close(folded(xJ.flatten(1)), ref)
    folded = prune.fold_interpolation(copy.deepcopy(lin), T, offset=d.numpy())
    torch.testing.assert_close(folded(xJ.flatten(1)), ref_offset)


@pytest.mark.parametrize("padding,stride", [(1, 1), (2, 2), (0, 1)])
def test_fold_into_conv_matches_dense(padding, stride):
    rng = _seed()
    C, k = 6, 3
    conv = nn.Conv2d(C, 4, 3, padding=padding, stride=stride).double()
    T = torch.as_tensor(rng.standard_normal((k, C)))
    xJ = torch.as_tensor(rng.standard_normal((5, k, 9, 9)))
    full = torch.einsum("njhw,jc->nchw", xJ, T)
    folded = prune.fold_interpolation(copy.deepcopy(conv), T)
    assert folded.weight.shape == (4, k, 3, 3) and folded.in_channels == k
    torch.testing.assert_close(folded(xJ), conv(full))
    d = rng.standard_normal(C)
    if padding == 0:
        ref = conv(full + torch.as_tensor(d).view(1, C, 1, 1))
        torch.testing.assert_close(prune.fold_interpolation(copy.deepcopy(conv), T, offset=d)(xJ), ref)
    else:
        with pytest.raises(ValueError, match="padded"):
            prune.fold_interpolation(copy.deepcopy(conv), T, offset=d)


# ---------------------------------------------------------------------------
# Duplicated neurons: compress to the rank, outputs unchanged
# ---------------------------------------------------------------------------


def test_mlp_with_duplicated_neurons_compresses_to_rank():
    _seed()
    model = _mlp(10, (24, 16), 5)
    _duplicate_channels(model, "0", [], 9, scales=(0.5, 3.0))
    _duplicate_channels(model, "2", [], 6, scales=(0.5, 3.0))
    X = torch.randn(400, 10)
    small, report = prune.compress_network(model, X, tolerance=1e-6)
    assert report.sizes == {"0": 9, "2": 6}
    assert [m.out_features for m in small if isinstance(m, nn.Linear)] == [9, 6, 5]
    assert [m.in_features for m in small if isinstance(m, nn.Linear)] == [10, 9, 6]
    with torch.no_grad():
        Xt = torch.randn(200, 10)  # held-out inputs too: duplicates stay duplicates everywhere
        assert _max_rel(small(X), model(X)) < 1e-5
        assert _max_rel(small(Xt), model(Xt)) < 1e-5
    assert report.agreement == 1.0 and report.relative_error < 1e-5
    assert report.params_after < report.params_before
    assert report.params_after == sum(p.numel() for p in small.parameters())
    assert report.flops_after < report.flops_before
    # magnitude pruning to the same sizes keeps the larger (scaled) copies and does not fold: it changes outputs
    mag, mag_report = prune.magnitude_prune(model, X, report.sizes)
    assert mag_report.sizes == report.sizes and mag_report.params_after == report.params_after
    assert mag_report.relative_error > 1e-2


def test_cnn_with_duplicated_channels_compresses_to_rank():
    _seed()
    model = _cnn(width=8, head=12, out=4)
    _randomize_bn(model)
    _duplicate_channels(model, "0", ["1"], 5)
    _duplicate_channels(model, "3", ["4"], 3)
    _duplicate_channels(model, "9", [], 7, scales=(0.5, 2.0))
    model.eval()
    X = torch.randn(64, 2, 8, 8)
    small, report = prune.compress_network(model, X, tolerance=1e-6, batch_size=16)
    assert report.sizes == {"0": 5, "3": 3, "9": 7}
    assert small[0].out_channels == 5 and small[1].num_features == 5 and small[3].in_channels == 5
    assert small[3].out_channels == 3 and small[4].num_features == 3 and small[9].in_features == 3 * 16
    assert small[9].out_features == 7 and small[11].in_features == 7
    with torch.no_grad():
        assert _max_rel(small(X), model(X)) < 1e-5
        Xt = torch.randn(32, 2, 8, 8)
        assert _max_rel(small(Xt), model(Xt)) < 1e-5


def test_lma_activations_are_pruned_with_their_channels():
    lma = pytest.importorskip("crembo.nn.lma")
    _seed()
    model = nn.Sequential(
        nn.Linear(6, 12), nn.BatchNorm1d(12), lma.LMA(12), nn.Linear(12, 10), lma.LMA(10), nn.Linear(10, 3)
    ).double()
    X = torch.randn(300, 6, dtype=torch.float64)
    model.train()
    with torch.no_grad():
        for _ in range(5):
            model(X)  # running statistics
        for m in (model[2], model[4]):
            m.neg_slope.uniform_(-0.5, 0.5)
            m.pos_slope.uniform_(0.2, 1.5)
    model.eval()
    _duplicate_channels(model, "0", ["1", "2"], 5)
    _duplicate_channels(model, "3", ["4"], 4)
    small, report = prune.compress_network(model, X, tolerance=1e-6)
    assert report.sizes == {"0": 5, "3": 4}
    assert small[2].num_features == 5 and small[2].neg_slope.shape[0] == 5 and small[4].num_features == 4
    assert all(t.dtype == torch.float64 for t in small.parameters())
    assert small[2].running_mean.dtype == torch.float64
    with torch.no_grad():  # running statistics of the kept channels untouched by the calibration passes
        torch.testing.assert_close(small[4].running_mean, model[4].running_mean[report.layers[1].index])
        assert _max_rel(small(X), model(X)) < 1e-9


def test_centering_folds_constant_neurons_into_the_bias():
    _seed()
    model = _mlp(4, (10,), 3)
    with torch.no_grad():  # three neurons constant on the data: weight 0, positive bias
        model[0].weight[7:] = 0
        model[0].bias[7:] = torch.tensor([0.5, 1.0, 2.0])
    X = torch.randn(300, 4)
    small, report = prune.compress_network(model, X, sizes={"0": 7}, center=True)
    assert report.layers[0].centered
    with torch.no_grad():
        assert _max_rel(small(X), model(X)) < 1e-5
    plain, plain_report = prune.compress_network(model, X, sizes={"0": 7})
    assert plain_report.relative_error > report.relative_error


# ---------------------------------------------------------------------------
# The contract: new module, original untouched, dtype/device/mode kept
# ---------------------------------------------------------------------------


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_original_is_untouched_and_structure_kept():
    _seed()
    model = _cnn()
    _randomize_bn(model)
    model.train()
    before = _state(model)
    ids = {k: id(p) for k, p in model.named_parameters()}
    X = torch.randn(40, 2, 8, 8)
    small, report = prune.compress_network(model, X, sizes=0.5)
    after = _state(model)
    assert before.keys() == after.keys()
    for k in before:
        assert torch.equal(before[k], after[k]), k
    assert {k: id(p) for k, p in model.named_parameters()} == ids
    assert model.training and small.training  # modes kept, BN running stats not updated
    assert type(small) is type(model) and small is not model
    assert [type(m) for m in small] == [type(m) for m in model]
    assert report.sizes == {"0": 4, "3": 4, "9": 6}
    assert all(p.requires_grad for p in small.parameters())
    small.eval()
    assert small(X).shape == (40, 4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_and_device_kept(dtype):
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        _seed()
        model = _cnn().to(device=device, dtype=dtype).eval()
        X = np.random.default_rng(0).standard_normal((30, 2, 8, 8)).astype(np.float32)  # numpy input works
        small, report = prune.compress_network(model, X, tolerance=0.3)
        for p in list(small.parameters()) + list(small.buffers()):
            assert p.device.type == device
            if p.is_floating_point():
                assert p.dtype == dtype
        out = small(torch.as_tensor(X, dtype=dtype, device=device))
        assert out.dtype == dtype and out.shape == (30, 4)


def test_calibration_from_a_dataloader():
    _seed()
    model = _mlp().eval()
    X = torch.randn(100, 10)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, torch.zeros(100)), batch_size=32)
    a, ra = prune.compress_network(model, loader, sizes=[12, 8])
    b, rb = prune.compress_network(model, X, sizes=[12, 8])
    assert ra.n_calibration == 100 and ra.sizes == rb.sizes == {"0": 12, "2": 8}
    with torch.no_grad():
        torch.testing.assert_close(a(X), b(X), rtol=1e-4, atol=1e-5)


def test_tolerance_orders_sizes():
    _seed()
    model = _mlp(10, (32, 32), 5).eval()
    X = torch.randn(200, 10)
    kept = [sum(prune.compress_network(model, X, tolerance=t)[1].sizes.values()) for t in (0.0, 0.2, 0.6)]
    assert kept[0] >= kept[1] >= kept[2] and kept[0] > kept[2]


# ---------------------------------------------------------------------------
# Unsupported layers
# ---------------------------------------------------------------------------


class _Scale(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.s = nn.Parameter(torch.ones(n))

    def forward(self, x):
        return x * self.s


class _Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(6, 8)
        self.a = nn.Linear(8, 8)
        self.b = nn.Linear(8, 8)
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        h = torch.relu(self.inp(x))
        h = h + torch.relu(self.b(torch.relu(self.a(h))))
        return self.head(h)


def test_unsupported_layers_are_left_and_named():
    _seed()
    model = nn.Sequential(
        nn.Linear(6, 10),
        nn.LayerNorm(10),
        nn.ReLU(),  # LayerNorm mixes neurons
        nn.Linear(10, 10),
        nn.ReLU(),  # prunable
        nn.Linear(10, 10),
        _Scale(10),
        nn.ReLU(),  # unknown module
        nn.Linear(10, 3),
    )
    X = torch.randn(50, 6)
    small, report = prune.compress_network(model, X, sizes=0.5)
    assert report.sizes == {"3": 5}
    assert "LayerNorm" in report.skipped["0"]
    assert "_Scale" in report.skipped["5"] and "6" in report.skipped
    assert "output layer" in report.skipped["8"]
    assert small[0].out_features == 10 and small[5].out_features == 10
    for name in ("0", "1", "6", "8"):
        for (k, p), (_, q) in zip(
            model.get_submodule(name).named_parameters(), small.get_submodule(name).named_parameters()
        ):
            assert torch.equal(p, q), (name, k)
    assert "LayerNorm" in str(report)


def test_residual_network_prunes_only_inside_the_block():
    _seed()
    model = _Residual().eval()
    X = torch.randn(80, 6)
    layers, skipped = prune.prunable_layers(model)
    assert layers == {"a": "b"}
    assert "branches" in skipped["inp"] and "residual" in skipped["b"]
    small, report = prune.compress_network(model, X, sizes={"a": 4})
    assert small.a.out_features == 4 and small.b.in_features == 4 and small.b.out_features == 8
    assert type(small) is _Residual


def test_hard_coded_reshape_is_reported():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3, padding=1)
            self.fc = nn.Linear(4 * 16, 2)

        def forward(self, x):
            return self.fc(torch.relu(self.conv(x)).view(-1, 64))

    layers, skipped = prune.prunable_layers(Net())
    assert layers == {} and "reshape" in skipped["conv"]


def test_functional_forward_is_followed():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(1, 6, 3)
            self.c2 = nn.Conv2d(6, 8, 3)
            self.fc1 = nn.Linear(8, 10)
            self.fc2 = nn.Linear(10, 2)

        def forward(self, x):
            x = torch.nn.functional.max_pool2d(torch.relu(self.c1(x)), 2)
            x = torch.relu(self.c2(x)).mean((2, 3))
            x = torch.nn.functional.dropout(torch.relu(self.fc1(x)), 0.1, self.training)
            return self.fc2(x.view(x.size(0), -1))

    _seed()
    model = Net().eval()
    assert prune.prunable_layers(model)[0] == {"c1": "c2", "c2": "fc1", "fc1": "fc2"}
    X = torch.randn(40, 1, 10, 10)
    small, report = prune.compress_network(model, X, sizes=[3, 4, 5])
    assert (small.c1.out_channels, small.c2.in_channels, small.fc1.in_features) == (3, 3, 4)
    assert small(X).shape == (40, 2)


def test_bad_arguments():
    model = _mlp()
    X = torch.randn(20, 10)
    with pytest.raises(ValueError, match="exactly one"):
        prune.compress_network(model, X)
    with pytest.raises(ValueError, match="tolerance"):
        prune.compress_network(model, X, tolerance=-0.1)
    with pytest.raises(ValueError, match="not prunable"):
        prune.compress_network(model, X, sizes={"4": 2})
    with pytest.raises(ValueError, match="count"):
        prune.compress_network(model, X, sizes={"0": 100})
    with pytest.raises(ValueError, match="magnitude"):
        prune.compress_network(model, X, tolerance=0.1, method="magnitude")
    with pytest.raises(TypeError, match="model"):
        prune.compress_network("model", X, tolerance=0.1)
    with pytest.raises(ValueError, match="calibration_data"):
        prune.compress_network(model, torch.empty(0, 10), tolerance=0.1)


# --------------------------------------------------------------------------- layout and count_parameters
def test_prune_keeps_its_public_names_from_the_split_modules():
    from crembo.nn import accounting, graph

    assert prune.interpolative_decomposition is decomposition.interpolative_decomposition
    assert prune.InterpolativeDecomposition is decomposition.InterpolativeDecomposition
    assert prune.fold_interpolation is decomposition.fold_interpolation
    assert prune.prunable_layers is graph.prunable_layers
    assert prune.count_flops is accounting.count_flops
    assert prune.CompressionReport is accounting.CompressionReport
    assert prune.LayerCompression is accounting.LayerCompression
    for name in prune.__all__:
        assert hasattr(prune, name), name


def _partly_frozen():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3))
    net[0].weight.requires_grad_(False)  # 35 frozen of 5*7 + 7 + 7*3 + 3 = 66
    return net


def test_one_count_parameters_with_an_explicit_argument():
    import crembo.nn
    from crembo.nn import accounting, models

    assert crembo.nn.count_parameters is models.count_parameters is accounting.count_parameters
    net = _partly_frozen()
    assert accounting.count_parameters(net) == 31  # trainable only, the default (as crembo.nn's was)
    assert accounting.count_parameters(net, trainable_only=True) == 31
    assert accounting.count_parameters(net, trainable_only=False) == 66
    assert isinstance(accounting.count_parameters(net), int)


def test_prune_count_parameters_is_deprecated_and_counts_all():
    net = _partly_frozen()
    with pytest.warns(DeprecationWarning, match="trainable_only=False"):
        assert prune.count_parameters(net) == 66


def test_report_counts_all_parameters_frozen_ones_included():
    net = _partly_frozen()
    X = torch.randn(64, 5)
    small, report = prune.compress_network(net, X, sizes={"0": 4})
    assert report.params_before == 66
    assert report.params_after == 5 * 4 + 4 + 4 * 3 + 3
    assert report.params_after == sum(p.numel() for p in small.parameters())
