"""LMA: continuity, ReLU equivalence, statistics, swapping it into a model."""

import functools

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from crembo.nn import LMA, MLP, LeNet, ResNet18, count_lma, swap_relu_for_lma  # noqa: E402


def _random_lma(C=5, K=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    m = LMA(C, K).double()
    with torch.no_grad():
        m.neg_slope.copy_(torch.randn(C, K, generator=g))
        m.pos_slope.copy_(torch.randn(C, K, generator=g))
        m.running_mean.copy_(torch.randn(C, generator=g))
        m.running_var.copy_(torch.rand(C, generator=g) + 0.3)
    return m.eval()


def test_lma_is_continuous_at_its_breakpoints():
    m = _random_lma()
    b = m.boundaries()  # (C, K-1)
    C = b.shape[0]
    eps = 1e-7
    # Every statistic-driven boundary and the fixed breakpoint at 0.
    points = torch.cat([b, torch.zeros(C, 1, dtype=b.dtype)], dim=1)
    for k in range(points.shape[1]):
        x = points[:, k][None, :]
        left, right, at = m(x - eps), m(x + eps), m(x)
        assert torch.allclose(left, right, atol=1e-5), (k, left, right)
        assert torch.allclose(at, left, atol=1e-5)
    # f(0) = 0 and the slopes really differ across a breakpoint (not a linear function).
    assert torch.allclose(m(torch.zeros(1, C, dtype=b.dtype)), torch.zeros(1, C, dtype=b.dtype))
    x = torch.linspace(-6, 6, 4001, dtype=b.dtype)[:, None].repeat(1, C)
    y = m(x)
    slopes = torch.diff(y, dim=0) / torch.diff(x, dim=0)
    assert (slopes.max(0).values - slopes.min(0).values > 0.1).all()
    # Piecewise linear: the slope between grid points takes only the learnable values.
    allowed = torch.cat([m.neg_slope, m.pos_slope], dim=1).detach()
    for c in range(C):
        d = (slopes[:, c, None] - allowed[c][None, :]).abs().min(1).values
        # Grid cells that straddle a breakpoint mix two slopes; all others match one.
        assert (d < 1e-6).float().mean() > 0.99


def test_fast_forward_equals_integral_form():
    m = _random_lma(C=4, K=5, seed=1)
    x = torch.randn(3, 4, 6, 6, dtype=torch.float64) * 3
    lo, hi = m._pieces(m.boundaries(), x.dtype)
    want = m.integral_form(x.movedim(1, -1), lo, hi).movedim(-1, 1)
    assert torch.allclose(m(x), want, atol=1e-10)


@pytest.mark.parametrize("shape", [(50, 7), (8, 7, 5, 5)])
def test_lma_with_relu_slopes_is_relu(shape):
    m = LMA(7, 6)
    x = torch.randn(*shape) * 4 + 0.5
    for mode in ("train", "eval"):
        m.train(mode == "train")
        assert torch.allclose(m(x), torch.relu(x), atol=1e-5)
    # ... wherever the statistics put the boundaries.
    with torch.no_grad():
        m.running_mean.fill_(3.0)
        m.running_var.fill_(0.01)
    m.eval()
    assert torch.allclose(m(x), torch.relu(x), atol=1e-5)
    lin = LMA(7, 6, init="linear").eval()
    assert torch.allclose(lin(x), x, atol=1e-5)


def test_running_statistics_follow_the_inputs():
    m = LMA(3, 4, momentum=0.5)
    x = torch.randn(4000, 3) * torch.tensor([1.0, 2.0, 0.5]) + torch.tensor([1.0, -2.0, 0.0])
    for _ in range(20):
        m(x)
    assert torch.allclose(m.running_mean, torch.tensor([1.0, -2.0, 0.0]), atol=0.1)
    assert torch.allclose(m.running_var.sqrt(), torch.tensor([1.0, 2.0, 0.5]), atol=0.1)
    # Boundaries at standard-normal quantiles scaled by the statistics: equal mass per segment.
    b = m.boundaries()
    share = torch.stack([(x[:, c, None] < b[c]).float().mean(0) for c in range(3)])
    assert torch.allclose(share, torch.tensor([0.25, 0.5, 0.75]).expand(3, 3), atol=0.03)


def test_lma_gradients_reach_the_slopes():
    m = _random_lma(seed=2).float().train()
    x = torch.randn(64, 5, requires_grad=True)
    m(x).pow(2).sum().backward()
    assert m.neg_slope.grad.abs().sum() > 0 and m.pos_slope.grad.abs().sum() > 0
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_swap_relu_for_lma_keeps_the_function():
    torch.manual_seed(0)
    for model, x in [
        (MLP(20, 3, hidden=(16, 8)), torch.randn(10, 20)),
        (LeNet(64, 10, channels=(4, 6), hidden=(12,)), torch.randn(10, 64)),
    ]:
        model.eval()
        before = model(x)
        n_relu = sum(isinstance(m, nn.ReLU) for m in model.modules())
        swap_relu_for_lma(model)
        assert count_lma(model) == n_relu and not any(isinstance(m, nn.ReLU) for m in model.modules())
        assert torch.allclose(model(x), before, atol=1e-5)
    # Models whose ReLUs are not in a Sequential need an example input.
    net = ResNet18(n_classes=4, input_shape=(3, 8, 8), width=4).eval()
    x = torch.randn(2, 3 * 8 * 8)
    before = net(x)
    with pytest.raises(ValueError, match="example_input"):
        swap_relu_for_lma(ResNet18(n_classes=4, input_shape=(3, 8, 8), width=4))
    swap_relu_for_lma(net, example_input=x, n_segments=4)
    assert count_lma(net) > 0
    assert torch.allclose(net(x), before, atol=1e-5)


def test_activation_option_and_select_channels():
    net = MLP(10, 3, hidden=(6,), activation=functools.partial(LMA, n_segments=3))
    lma = [m for m in net.modules() if isinstance(m, LMA)]
    assert len(lma) == 1 and lma[0].n_segments == 3 and lma[0].num_features == 6
    m = _random_lma(C=5, seed=3)
    sub = m.select_channels([4, 1])
    x = torch.randn(9, 5, dtype=torch.float64)
    assert torch.allclose(sub.double().eval()(x[:, [4, 1]]), m(x)[:, [4, 1]])
    with pytest.raises(ValueError, match="channels"):
        m(torch.randn(3, 4, dtype=torch.float64))
    with pytest.raises(ValueError):
        LMA(3, n_segments=1)
