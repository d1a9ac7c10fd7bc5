"""Light Multi-segment Activation (LMA; Xu, Ke, Zhang, Bian and Liu, AAAI 2020).

A cheap piecewise-linear activation with several segments per channel, a
drop-in for ``nn.ReLU`` in a small student. The segment boundaries follow the
statistics of the channel's pre-activations: a running mean ``mu`` and
standard deviation ``sigma`` kept like batch normalization's, boundaries at
``mu + sigma * q_k`` where ``q_k`` are the standard-normal quantiles that cut
N(0, 1) into ``n_segments`` equally likely pieces. Every segment has a
learnable slope; the intercepts follow from continuity.

Choices of ours:

* The function is anchored at ``f(0) = 0`` and every segment is also cut at
  0, so each segment has a slope on its negative part and one on its positive
  part (``2 * n_segments`` slopes per channel). With the "ReLU initial slopes"
  (0 left of 0, 1 right of it) the activation *is* ReLU, wherever the
  statistics put the boundaries, so swapping ReLU for LMA does not change a
  trained network until the slopes move.
* Defined as ``f(x) = integral from 0 to x of s(u) du`` with ``s`` the
  piecewise-constant slope (:meth:`LMA.integral_form`, by clamps), so it is
  continuous by construction. The forward pass finds each element's piece
  and applies that piece's slope and intercept, the intercepts being the
  integral form at the piece ends: the same function, without the
  ``2 * n_segments``-fold intermediate tensors.
* Training mode uses the batch statistics (detached: boundaries are not
  learned by gradient) and updates the running ones; evaluation mode uses
  the running statistics.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .train import eval_mode, module_device

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["LMA", "swap_relu_for_lma", "count_lma"]


class LMA(nn.Module):
    """Light multi-segment activation, one set of segments per channel.

    Parameters
    ----------
    num_features : int
        Number of channels ``C`` (dimension ``dim`` of the input).
    n_segments : int, default=6
        Segments cut by the ``n_segments - 1`` statistic-driven boundaries.
    init : {"relu", "linear"}, default="relu"
        Initial slopes: ReLU's (0 then 1) or the identity's (all 1).
    momentum : float, default=0.1
        Update rate of the running mean and variance.
    eps : float, default=1e-5
        Added to the variance before the square root.
    dim : int, default=1
        The channel dimension: 1 for ``(N, C)`` and ``(N, C, H, W)``.

    Shape
    -----
    Input ``(N, C, *)``, output the same shape.
    """

    def __init__(self, num_features, n_segments=6, *, init="relu", momentum=0.1, eps=1e-5, dim=1):
        super().__init__()
        if int(num_features) < 1:
            raise ValueError(f"num_features: expected a positive integer, got {num_features!r}")
        if int(n_segments) < 2:
            raise ValueError(f"n_segments: expected an integer >= 2, got {n_segments!r}")
        if init not in ("relu", "linear"):
            raise ValueError(f"init: expected 'relu' or 'linear', got {init!r}")
        self.num_features = int(num_features)
        self.n_segments = int(n_segments)
        self.momentum = float(momentum)
        self.eps = float(eps)
        self.dim = int(dim)
        probs = torch.arange(1, self.n_segments, dtype=torch.float64) / self.n_segments
        self.register_buffer("quantiles", torch.special.ndtri(probs).float())
        self.register_buffer("running_mean", torch.zeros(self.num_features))
        self.register_buffer("running_var", torch.ones(self.num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        neg = torch.zeros(self.num_features, self.n_segments)
        if init == "linear":
            neg += 1.0
        self.neg_slope = nn.Parameter(neg)
        self.pos_slope = nn.Parameter(torch.ones(self.num_features, self.n_segments))

    def extra_repr(self) -> str:
        return f"{self.num_features}, n_segments={self.n_segments}, momentum={self.momentum}"

    def _channels_last(self, x):
        return x.movedim(self.dim, -1)

    def boundaries(self, mean: torch.Tensor | None = None, var: torch.Tensor | None = None) -> torch.Tensor:
        """The ``(C, n_segments - 1)`` segment boundaries from the given (default: running) statistics."""
        mean = self.running_mean if mean is None else mean
        var = self.running_var if var is None else var
        return mean[:, None] + torch.sqrt(var + self.eps)[:, None] * self.quantiles[None, :]

    def _stats(self, x):
        if not self.training:
            return self.running_mean, self.running_var
        xc = self._channels_last(x.detach()).reshape(-1, self.num_features)
        mean = xc.mean(dim=0)
        var = xc.var(dim=0, unbiased=False) if xc.shape[0] > 0 else torch.ones_like(mean)
        with torch.no_grad():
            n = xc.shape[0]
            unbiased = var * (n / (n - 1)) if n > 1 else var
            self.running_mean.lerp_(mean, self.momentum)
            self.running_var.lerp_(unbiased, self.momentum)
            self.num_batches_tracked += 1
        return mean, var

    def _pieces(self, b, dtype):
        """Segment edges ``lo, hi`` (C, K) with the infinite outer ends, from boundaries ``b`` (C, K-1)."""
        b = b.to(dtype)
        inf = torch.full_like(b[:, :1], math.inf)
        return torch.cat([-inf, b], dim=1), torch.cat([b, inf], dim=1)

    def integral_form(self, x_cl: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
        """``f(x) = integral_0^x s(u) du`` by clamps; ``x_cl`` is channels-last ``(..., C)``.

        Each segment ``[lo, hi]`` is cut at 0 into a negative piece
        ``[lo, min(hi, 0)]`` and a positive piece ``[max(lo, 0), hi]``; an
        empty piece (lower end above the upper) clamps to a constant and
        contributes nothing. Exact and simple, but ``2 * n_segments`` times
        the memory of ``x``: the forward pass uses it only on the small
        tensor of piece anchors.
        """
        zero = torch.zeros((), dtype=x_cl.dtype, device=x_cl.device)
        n_hi = torch.minimum(hi, zero)
        p_lo = torch.maximum(lo, zero)
        xl = x_cl.unsqueeze(-1)  # (..., C, 1)
        neg = torch.clamp(xl, lo, n_hi) - torch.clamp(zero, lo, n_hi)
        pos = torch.clamp(xl, p_lo, hi) - torch.clamp(zero, p_lo, hi)
        return (neg * self.neg_slope.to(x_cl.dtype)).sum(-1) + (pos * self.pos_slope.to(x_cl.dtype)).sum(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2 or x.shape[self.dim] != self.num_features:
            raise ValueError(
                f"LMA: expected {self.num_features} channels in dimension {self.dim}, "
                f"got input of shape {tuple(x.shape)}"
            )
        mean, var = self._stats(x)
        b = self.boundaries(mean, var).to(x.dtype)  # (C, K-1)
        lo, hi = self._pieces(b, x.dtype)
        K = self.n_segments
        # On each piece f is linear, f(x) = slope * x + c; c follows from the
        # value of the integral form at an end of the piece (continuity).
        zero = torch.zeros((), dtype=x.dtype, device=x.device)
        a_neg, a_pos = torch.minimum(hi, zero), torch.maximum(lo, zero)  # finite piece anchors (C, K)
        f_neg = self.integral_form(a_neg.t(), lo, hi).t()
        f_pos = self.integral_form(a_pos.t(), lo, hi).t()
        neg, pos = self.neg_slope.to(x.dtype), self.pos_slope.to(x.dtype)
        slope = torch.stack([neg, pos], dim=2).reshape(self.num_features, 2 * K)
        icpt = torch.stack([f_neg - neg * a_neg, f_pos - pos * a_pos], dim=2).reshape(self.num_features, 2 * K)
        # Piece of every element: its segment (boundaries below it) and its side of 0.
        xl = self._channels_last(x)
        with torch.no_grad():
            seg = (xl.unsqueeze(-1) > b).sum(-1)
            piece = seg * 2 + (xl > 0).long() + torch.arange(self.num_features, device=x.device) * (2 * K)
        out = torch.take(slope, piece) * xl + torch.take(icpt, piece)
        return out.movedim(-1, self.dim)

    @torch.no_grad()
    def select_channels(self, index: torch.Tensor | Sequence[int]) -> LMA:
        """A new LMA keeping only the channels ``index`` (for structured pruning)."""
        index = torch.as_tensor(index, dtype=torch.long, device=self.running_mean.device)
        new = LMA(len(index), self.n_segments, momentum=self.momentum, eps=self.eps, dim=self.dim)
        new = new.to(self.running_mean.device)
        new.running_mean.copy_(self.running_mean[index])
        new.running_var.copy_(self.running_var[index])
        new.num_batches_tracked.copy_(self.num_batches_tracked)
        new.neg_slope.copy_(self.neg_slope[index])
        new.pos_slope.copy_(self.pos_slope[index])
        return new


def _width_of(module):
    for attr in ("out_features", "out_channels", "num_features"):
        value = getattr(module, attr, None)
        if isinstance(value, int):
            return value
    return None


def swap_relu_for_lma(
    model: nn.Module, example_input: torch.Tensor | None = None, n_segments: int = 6, **lma_kwargs: Any
) -> nn.Module:
    """Replace every ``nn.ReLU`` of ``model`` by an :class:`LMA`, in place.

    The channel count of each ReLU is read from a forward pass on
    ``example_input`` when given (any model), otherwise from the nearest
    preceding layer of the same ``nn.Sequential`` that has ``out_features``,
    ``out_channels`` or ``num_features`` (Linear, Conv, BatchNorm). The new
    activations start with ReLU slopes, so the model computes the same
    function until it is trained further.

    Returns
    -------
    model : the same module, with LMA activations.
    """
    widths = {}
    if example_input is not None:
        hooks = []
        for name, mod in model.named_modules():
            if isinstance(mod, nn.ReLU):

                def hook(m, inputs, output, name=name):
                    widths[name] = int(inputs[0].shape[1])

                hooks.append(mod.register_forward_hook(hook))
        try:
            with torch.no_grad(), eval_mode(model):
                model(example_input)
        finally:
            for h in hooks:
                h.remove()
    device = module_device(model)

    def visit(parent, prefix):
        last_width = None
        for child_name, child in list(parent.named_children()):
            full = f"{prefix}.{child_name}" if prefix else child_name
            if isinstance(child, nn.ReLU):
                width = widths.get(full, last_width if isinstance(parent, nn.Sequential) else None)
                if width is None:
                    raise ValueError(
                        f"swap_relu_for_lma: cannot tell the channel count of ReLU '{full}'; pass example_input"
                    )
                setattr(parent, child_name, LMA(width, n_segments, **lma_kwargs).to(device))
            else:
                visit(child, full)
                w = _width_of(child)
                if w is not None:
                    last_width = w

    visit(model, "")
    return model


def count_lma(model: nn.Module) -> int:
    """Number of LMA activations in ``model``."""
    return sum(isinstance(m, LMA) for m in model.modules())
