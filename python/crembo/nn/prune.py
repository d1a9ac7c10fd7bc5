"""Model-preserving structured compression by interpolative decomposition.

Chee, Renz, Damle and De Sa, *Model Preserving Compression for Neural
Networks*, NeurIPS 2022. A hidden layer whose activations ``Z`` (``n x h`` on
a calibration set) are well approximated by a few of their own columns,
``Z ~ Z[:, J] @ T``, can keep only the neurons (or channels) ``J``: the next
layer, which computes ``Z @ W.T + b``, gets the weights ``W @ T.T`` and sees
almost the same input. The network keeps its structure (a Linear stays a
Linear, a Conv2d a Conv2d, only narrower), needs no retraining, and its
per-example outputs change little.

What is supported, and how (``producer`` is the layer whose outputs are
pruned, ``consumer`` the next layer, whose inputs are corrected):

* producer ``Linear`` or ``Conv2d`` (``groups=1``); consumer ``Linear`` or
  ``Conv2d`` (``groups=1``), with a flatten in between for conv -> linear;
* between them, per-channel operations only: BatchNorm (its channels are
  pruned too), elementwise activations (ReLU and friends, LMA, whose
  per-channel parameters are pruned), dropout, max/avg/adaptive pooling, a
  flatten to ``(N, C*H*W)`` or a global spatial mean. Every kept channel then
  reaches the consumer unchanged, so the decomposition is computed on the
  consumer's *input*, after pooling, where the folding is exact up to the
  decomposition's own error;
* for convolutions the decomposition is channel-wise, on the activations
  seen as ``(n*H*W, C)`` rows; through a flatten each channel is a block of
  the Linear's input features and ``T`` is folded per spatial position.

Anything else (residual additions, concatenations, LayerNorm, grouped
convolutions, a reshape to a hard-coded size, a layer called twice, the
output layer) leaves the layer as it is, and the report says which layer and
why.

This module is the driver; it builds on :mod:`crembo.nn.decomposition`
(the interpolative decomposition and its folding), :mod:`crembo.nn.graph`
(which layers can be pruned) and :mod:`crembo.nn.accounting` (parameters,
FLOPs and the report), and re-exports their public names.

The decomposition is the column-pivoted QR ``Z P = Q R``. The rows of all
calibration batches are never held at once: each batch is folded into a
small triangular factor ``R0`` with ``Z^T Z = R0^T R0`` (a TSQR), and the
pivoted QR of ``R0`` has the same pivots and ``|R|`` as that of ``Z``.
Per-layer sizes from one global ``tolerance``: a layer keeps the ``k``
pivots with ``|R_ii| > tolerance * |R_11|`` (at least one).

Layers are processed in forward order and each decomposition is computed on
the activations of the network compressed so far, so later layers correct
for the error of earlier ones.
"""

from __future__ import annotations

import copy
import numbers
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch import nn

from . import accounting
from .accounting import CompressionReport, LayerCompression, _outputs, compare_outputs, count_flops
from .decomposition import (
    InterpolativeDecomposition,
    _can_center,
    _check_tolerance,
    _id_from_factor,
    _new_param,
    _RowFactor,
    fold_interpolation,
    interpolative_decomposition,
)
from .graph import _analyse, _channel_count, prunable_layers

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "InterpolativeDecomposition",
    "LayerCompression",
    "CompressionReport",
    "interpolative_decomposition",
    "fold_interpolation",
    "prunable_layers",
    "compress_network",
    "magnitude_prune",
    "count_parameters",
    "count_flops",
]

#: Layers up to this width are factorized with single-threaded BLAS.
_SERIAL_BLAS_WIDTH = 1024


def count_parameters(model: nn.Module) -> int:
    """Number of parameters, all of them (trainable or not).

    Deprecated (it warns): use ``crembo.nn.count_parameters(model,
    trainable_only=False)``, which counts the same. crembo has one
    ``count_parameters`` (:mod:`crembo.nn.accounting`), whose
    ``trainable_only`` (default True) says which parameters it counts.
    """
    warnings.warn(
        "crembo.nn.prune.count_parameters is deprecated: use crembo.nn.count_parameters(model, "
        "trainable_only=False), which counts the same (all parameters); crembo.nn.count_parameters "
        "alone counts the trainable ones",
        DeprecationWarning,
        stacklevel=2,
    )
    return accounting.count_parameters(model, trainable_only=False)


# ---------------------------------------------------------------------------
# Pruning a network's modules in place
# ---------------------------------------------------------------------------


@torch.no_grad()
def _keep_outputs(producer, index):
    producer.weight = _new_param(producer.weight, producer.weight.detach()[index])
    if producer.bias is not None:
        producer.bias = _new_param(producer.bias, producer.bias.detach()[index])
    if isinstance(producer, nn.Linear):
        producer.out_features = len(index)
    else:
        producer.out_channels = len(index)


@torch.no_grad()
def _keep_channels(model, name, index):
    """Prune a per-channel module (BatchNorm, LMA, PReLU) to the channels ``index``."""
    module = model.get_submodule(name)
    if hasattr(module, "select_channels"):
        # LMA knows its own layout; its values are copied again from the
        # original tensors so that no precision is lost on the way (the new
        # module may be built in the default dtype).
        new = module.select_channels(index)
        dtype = next((t.dtype for t in module.parameters() if t.is_floating_point()), None)
        if dtype is not None:
            new = new.to(dtype=dtype)
        old = dict(module.named_parameters(recurse=False))
        old.update(module.named_buffers(recurse=False))
        fresh = list(new.named_parameters(recurse=False)) + list(new.named_buffers(recurse=False))
        for tname, t in fresh:
            src = old.get(tname)
            if src is None or t.dtype != src.dtype:
                continue
            if t.shape == src.shape:
                t.copy_(src)
            elif t.dim() >= 1 and src.dim() >= 1 and t.shape[0] == len(index) and t.shape[1:] == src.shape[1:]:
                t.copy_(src[index])
            if isinstance(src, nn.Parameter):
                t.requires_grad_(src.requires_grad)
        _set_submodule(model, name, new.train(module.training))
        return
    C = _channel_count(module)
    for pname, p in list(module.named_parameters(recurse=False)):
        if p is not None and p.dim() >= 1 and p.shape[0] == C:
            setattr(module, pname, _new_param(p, p.detach()[index]))
    for bname, b in list(module.named_buffers(recurse=False)):
        if b is not None and b.dim() >= 1 and b.shape[0] == C:
            setattr(module, bname, b[index].clone())
    for attr in ("num_features", "num_parameters"):
        if getattr(module, attr, None) == C:
            setattr(module, attr, len(index))


def _set_submodule(model, name, module):
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


# ---------------------------------------------------------------------------
# Calibration data
# ---------------------------------------------------------------------------


def _model_device_dtype(model):
    for p in model.parameters():
        if p.is_floating_point():
            return p.device, p.dtype
    return torch.device("cpu"), torch.get_default_dtype()


def _batches(data, batch_size, device, dtype):
    """The calibration inputs as a list of tensors on the model's device."""
    if data is None:
        raise ValueError("calibration_data: expected a tensor, an array or an iterable of batches, got None")
    if isinstance(data, np.ndarray) or (hasattr(data, "to_numpy") and not isinstance(data, torch.Tensor)):
        data = torch.as_tensor(np.asarray(data.to_numpy() if hasattr(data, "to_numpy") else data))
    if isinstance(data, torch.Tensor):
        if data.dim() == 0 or data.shape[0] == 0:
            raise ValueError(f"calibration_data: expected a non-empty batch of inputs, got shape {tuple(data.shape)}")
        items = list(torch.split(data, batch_size))
    else:
        items = []
        for item in data:
            if isinstance(item, (tuple, list)):
                item = item[0]
            if isinstance(item, dict):
                raise TypeError("calibration_data: batches must be tensors or (inputs, ...) tuples, not dicts")
            items.append(torch.as_tensor(item))
        if not items:
            raise ValueError("calibration_data: the iterable yielded no batches")
    # Float inputs follow the model's dtype; other dtypes (indices) are left alone.
    return [x.to(device=device, dtype=dtype) if x.is_floating_point() else x.to(device) for x in items]


# ---------------------------------------------------------------------------
# Whole network
# ---------------------------------------------------------------------------


def _resolve_sizes(sizes, pairs):
    """``{producer: k}`` from an int/float (every layer), a dict, or a sequence in forward order."""
    names = [p.producer for p in pairs]
    widths = {p.producer: p.channels for p in pairs}
    if isinstance(sizes, (numbers.Real,)) and not isinstance(sizes, bool):
        spec = {n: sizes for n in names}
    elif isinstance(sizes, dict):
        unknown = [n for n in sizes if n not in widths]
        if unknown:
            raise ValueError(f"sizes: {unknown} are not prunable layers; prunable: {names}")
        spec = dict(sizes)
    elif isinstance(sizes, (list, tuple)):
        if len(sizes) != len(names):
            raise ValueError(f"sizes: expected {len(names)} sizes (one per prunable layer {names}), got {len(sizes)}")
        spec = dict(zip(names, sizes))
    else:
        raise TypeError(f"sizes: expected an int, a float fraction, a dict or a sequence, got {type(sizes).__name__}")
    out = {}
    for name, s in spec.items():
        C = widths[name]
        if isinstance(s, bool) or not isinstance(s, numbers.Real):
            raise TypeError(f"sizes[{name!r}]: expected an int or a float, got {s!r}")
        if isinstance(s, numbers.Integral):
            if not 1 <= s <= C:
                raise ValueError(f"sizes[{name!r}]: expected a count in [1, {C}], got {s}")
            out[name] = int(s)
        else:
            if not 0 < s <= 1:
                raise ValueError(f"sizes[{name!r}]: expected a fraction in (0, 1], got {s}")
            out[name] = max(1, min(C, int(round(s * C))))
    return out


def _consumer_rows(pair, x):
    """The consumer's input as (rows, C) channel-wise samples."""
    C = pair.channels
    if x.dim() == 4:  # conv consumer: (N, C, H, W)
        return x.permute(0, 2, 3, 1).reshape(-1, C)
    x = x.reshape(-1, x.shape[-1])  # linear consumer: (..., C*S)
    S = x.shape[1] // C
    if S == 1:
        return x
    return x.reshape(-1, C, S).permute(0, 2, 1).reshape(-1, C)


class _Collected(Exception):
    """Raised by the hook once the consumer's input is seen: the rest of the forward pass is not needed."""


@torch.no_grad()
def _collect(model, pair, batches):
    consumer = model.get_submodule(pair.consumer)
    acc = _RowFactor(pair.channels)

    def hook(m, inputs):
        acc.update(_consumer_rows(pair, inputs[0]))
        raise _Collected

    handle = consumer.register_forward_pre_hook(hook)
    try:
        for x in batches:
            try:
                model(x)
            except _Collected:
                pass
    finally:
        handle.remove()
    if acc.n == 0:
        raise RuntimeError(f"layer {pair.consumer} was not reached by a forward pass on the calibration data")
    return acc


@torch.no_grad()
def _apply(model, pair, keep, T, offset=None):
    device = model.get_submodule(pair.producer).weight.device
    index = torch.as_tensor(np.asarray(keep, dtype=np.int64), device=device)
    _keep_outputs(model.get_submodule(pair.producer), index)
    for name in pair.between:
        _keep_channels(model, name, index)
    fold_interpolation(model.get_submodule(pair.consumer), T, offset=offset)


def _magnitude_keep(producer, k):
    W = producer.weight.detach().to(torch.float64)
    score = W.abs().reshape(W.shape[0], -1).sum(dim=1).cpu().numpy()
    order = np.argsort(-score, kind="stable")
    return np.sort(order[:k])


def _compress_pairs(compressed, pairs, batches, targets, tolerance, method, center):
    layers = []
    for pair in pairs:
        if targets is not None and pair.producer not in targets:
            continue
        rdiag, centered, offset = None, False, None
        if method == "magnitude":
            k = targets[pair.producer]
            keep = _magnitude_keep(compressed.get_submodule(pair.producer), k)
            T = np.eye(pair.channels)[keep]
        else:
            acc = _collect(compressed, pair, batches)
            centered = bool(center) and _can_center(compressed.get_submodule(pair.consumer))
            rank = targets[pair.producer] if targets is not None else None
            dec = _id_from_factor(acc.factor(centered), rank=rank, tolerance=tolerance)
            keep, T, rdiag = dec.columns, dec.T, dec.rdiag
            if centered:
                mu = acc.mean
                offset = mu - T.T @ mu[keep]
        _apply(compressed, pair, keep, T, offset)
        layers.append(
            LayerCompression(
                pair.producer,
                pair.consumer,
                pair.kind,
                pair.channels,
                len(keep),
                pair.between,
                np.asarray(keep),
                rdiag,
                centered,
            )
        )
    return layers


def compress_network(
    model: nn.Module,
    calibration_data: Any,
    tolerance: float | None = None,
    sizes: int | float | Mapping[str, int | float] | Sequence[int | float] | None = None,
    *,
    method: str = "id",
    center: bool = False,
    batch_size: int = 256,
) -> tuple[nn.Module, CompressionReport]:
    """Compress a trained MLP or CNN into a smaller one of the same structure, without retraining.

    Parameters
    ----------
    model : nn.Module
        Not modified: a deep copy is compressed.
    calibration_data : tensor, array or iterable of batches
        Inputs (a batch tensor, a NumPy array, or an iterable such as a
        DataLoader yielding tensors or ``(inputs, targets)`` tuples) on which
        activations are decomposed and outputs compared.
    tolerance : float in [0, 1), default=None
        One tolerance for the whole network: each layer keeps the pivots with
        ``|R_ii| > tolerance * |R_11|`` of its activations' pivoted QR.
    sizes : int, float, dict or sequence, default=None
        Explicit sizes instead: a count or a fraction of every layer, a dict
        ``{layer name: count or fraction}`` (other layers untouched), or one
        size per prunable layer in forward order (``report.sizes`` of another
        run works). Exactly one of ``tolerance`` and ``sizes``.
    method : {"id", "magnitude"}, default="id"
        ``"magnitude"`` is the baseline: keep the neurons/channels whose
        incoming weights have the largest L1 norm (Li et al. 2017) and drop the
        rest of the next layer's inputs; it needs ``sizes``.
    center : bool, default=False
        ID only: decompose the activations minus their means and fold the
        means of the dropped channels into the next layer's bias (a Linear
        or an unpadded Conv2d; others fall back to plain ID).
    batch_size : int, default=256
        Batch size when ``calibration_data`` is one tensor/array; it also
        bounds the memory of one decomposition step (a batch's activations
        in float64).

    Returns
    -------
    compressed : nn.Module
        A new module, same class and structure, narrower layers, same dtype,
        device and training mode as ``model``.
    report : CompressionReport
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    if method not in ("id", "magnitude"):
        raise ValueError(f"method: expected 'id' or 'magnitude', got {method!r}")
    if (tolerance is None) == (sizes is None):
        raise ValueError("give exactly one of tolerance and sizes")
    if tolerance is not None:
        if method == "magnitude":
            raise ValueError(
                "tolerance: magnitude pruning has no tolerance; give sizes (e.g. report.sizes of an ID run)"
            )
        tolerance = _check_tolerance(tolerance)
    if not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size!r}")

    device, dtype = _model_device_dtype(model)
    batches = _batches(calibration_data, int(batch_size), device, dtype)
    compressed = copy.deepcopy(model)
    was_training = model.training
    compressed.eval()
    pairs, skipped = _analyse(compressed)
    targets = _resolve_sizes(sizes, pairs) if sizes is not None else None
    # The factorizations are small (width x width); threaded BLAS only adds
    # synchronisation there, and a lot of it on a busy machine.
    widest = max((p.channels for p in pairs), default=0)
    with threadpool_limits(limits=1 if widest <= _SERIAL_BLAS_WIDTH else None, user_api="blas"):
        layers = _compress_pairs(compressed, pairs, batches, targets, tolerance, method, center)

    ref = _outputs(model, batches)
    out = _outputs(compressed, batches)
    if out.shape != ref.shape:  # pragma: no cover - would mean a structure we failed to follow
        raise RuntimeError(f"compressed model returns shape {tuple(out.shape)}, the original {tuple(ref.shape)}")
    agreement, rel = compare_outputs(ref, out)
    example = batches[0][:1]
    report = CompressionReport(
        method=method,
        layers=layers,
        skipped=skipped,
        params_before=accounting.count_parameters(model, trainable_only=False),
        params_after=accounting.count_parameters(compressed, trainable_only=False),
        flops_before=count_flops(model, example),
        flops_after=count_flops(compressed, example),
        agreement=agreement,
        relative_error=rel,
        n_calibration=int(sum(len(x) for x in batches)),
        tolerance=tolerance,
    )
    compressed.train(was_training)
    return compressed, report


def magnitude_prune(
    model: nn.Module,
    calibration_data: Any,
    sizes: int | float | Mapping[str, int | float] | Sequence[int | float],
    *,
    batch_size: int = 256,
) -> tuple[nn.Module, CompressionReport]:
    """Baseline: magnitude pruning of neurons/channels to ``sizes``; same output as :func:`compress_network`.

    Keeps the neurons/channels whose incoming weights have the largest L1
    norm, slices the next layer's inputs, no folding, no retraining.
    ``calibration_data`` is only used for the report (output agreement).
    """
    return compress_network(model, calibration_data, sizes=sizes, method="magnitude", batch_size=batch_size)
