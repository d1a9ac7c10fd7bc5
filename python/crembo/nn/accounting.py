"""Accounting of a compression: parameters, FLOPs, output change, the report.

:func:`count_parameters` and :func:`count_flops` measure a network;
:class:`CompressionReport` (with one :class:`LayerCompression` per pruned
layer) is what :func:`crembo.nn.prune.compress_network` returns next to the
compressed network.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from .train import eval_mode

__all__ = ["count_parameters", "count_flops", "LayerCompression", "CompressionReport"]


def count_parameters(module: nn.Module, *, trainable_only: bool = True) -> int:
    """Number of parameters of a module.

    Parameters
    ----------
    module : torch.nn.Module
    trainable_only : bool, default=True
        Count only the parameters with ``requires_grad`` (what training
        updates); False counts all of them, frozen ones included (the size
        of the network, as :class:`CompressionReport` reports it).

    Returns
    -------
    int
    """
    return int(sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only))


@torch.no_grad()
def count_flops(model: nn.Module, example: torch.Tensor) -> int:
    """FLOPs of one forward pass on one example, counting Linear and Conv2d layers (2 per multiply-add).

    ``example`` is a batch; the count is divided by its size.
    """
    total = [0]

    def hook(m, inputs, output):
        if isinstance(m, nn.Linear):
            total[0] += 2 * output.numel() * m.in_features
        elif isinstance(m, nn.Conv2d):
            kh, kw = m.kernel_size
            total[0] += 2 * output.numel() * (m.in_channels // m.groups) * kh * kw

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    try:
        with eval_mode(model):
            model(example)
    finally:
        for h in handles:
            h.remove()
    return total[0] // max(int(example.shape[0]), 1)


@torch.no_grad()
def _outputs(model, batches):
    with eval_mode(model):
        return torch.cat([model(x).detach().to("cpu", torch.float64).reshape(len(x), -1) for x in batches])


def compare_outputs(ref: torch.Tensor, out: torch.Tensor) -> tuple[float | None, float]:
    """``(agreement, relative_error)`` of outputs ``out`` against ``ref`` (2-d,
    one row per example): the share of rows whose arg-max is unchanged (None
    for one output) and ``||out - ref||_F / ||ref||_F`` (the plain norm when
    ``ref`` is zero)."""
    agreement = None
    if ref.shape[1] > 1:
        agreement = float((ref.argmax(1) == out.argmax(1)).double().mean())
    denom = float(torch.linalg.norm(ref))
    rel = float(torch.linalg.norm(out - ref)) / denom if denom > 0 else float(torch.linalg.norm(out - ref))
    return agreement, rel


@dataclasses.dataclass
class LayerCompression:
    """One pruned layer: ``kept`` of ``total`` neurons/channels of ``name``, folded into ``consumer``.

    ``index`` lists the kept neurons/channels (original numbering),
    ``between`` the per-channel modules pruned with them (BatchNorm, LMA),
    ``rdiag`` the pivoted-QR diagonal ``|R_ii|`` of the ID (None for
    magnitude pruning), ``centered`` whether the means were folded into the
    next layer's bias.
    """

    name: str
    consumer: str
    kind: str
    total: int
    kept: int
    between: Tuple[str, ...] = ()
    index: Optional[np.ndarray] = None
    rdiag: Optional[np.ndarray] = None
    centered: bool = False

    @property
    def fraction(self) -> float:
        return self.kept / self.total


@dataclasses.dataclass
class CompressionReport:
    """What compress_network / magnitude_prune did.

    Attributes
    ----------
    method : "id" or "magnitude"
    layers : list of LayerCompression, forward order
    skipped : dict ``layer name -> reason`` for the Linear/Conv2d layers left as they are
        (and modules with parameters that are not Linear/Conv2d)
    params_before, params_after : int
    flops_before, flops_after : int, per example (Linear and Conv2d, 2 per multiply-add)
    agreement : float or None
        Share of calibration examples whose arg-max output is unchanged (None for one output).
    relative_error : float
        ``||f'(X) - f(X)||_F / ||f(X)||_F`` on the calibration set.
    n_calibration : int
    tolerance : float or None
    """

    method: str
    layers: List[LayerCompression]
    skipped: Dict[str, str]
    params_before: int
    params_after: int
    flops_before: int
    flops_after: int
    agreement: Optional[float]
    relative_error: float
    n_calibration: int
    tolerance: Optional[float] = None

    @property
    def sizes(self) -> Dict[str, int]:
        """``{layer name: kept}``; pass it as ``sizes=`` to compress another way to the same sizes."""
        return {layer.name: layer.kept for layer in self.layers}

    @property
    def param_fraction(self) -> float:
        return self.params_after / self.params_before if self.params_before else 1.0

    @property
    def flop_fraction(self) -> float:
        return self.flops_after / self.flops_before if self.flops_before else 1.0

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        for layer in d["layers"]:
            layer.pop("rdiag", None)
            layer["index"] = [int(i) for i in layer["index"]]
        d["param_fraction"] = self.param_fraction
        d["flop_fraction"] = self.flop_fraction
        return d

    def __str__(self):
        lines = [
            f"compression ({self.method}"
            + (f", tolerance={self.tolerance:g}" if self.tolerance is not None else "")
            + ")"
        ]
        width = max([len(x.name) for x in self.layers] + [5])
        for x in self.layers:
            lines.append(f"  {x.name:<{width}}  {x.kept:>5} / {x.total:<5} -> {x.consumer}")
        for name, why in self.skipped.items():
            lines.append(f"  {name:<{width}}  left as it is: {why}")
        lines.append(
            f"  parameters {self.params_before} -> {self.params_after} ({self.param_fraction:.1%}), "
            f"FLOPs/example {self.flops_before} -> {self.flops_after} ({self.flop_fraction:.1%})"
        )
        agree = "n/a" if self.agreement is None else f"{self.agreement:.2%}"
        lines.append(
            f"  on {self.n_calibration} calibration examples: arg-max agreement {agree}, "
            f"relative output error {self.relative_error:.3g}"
        )
        return "\n".join(lines)
