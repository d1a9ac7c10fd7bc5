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
import dataclasses
import numbers
from typing import Dict, List, Optional, Tuple

import numpy as np
import scipy.linalg
import torch
import torch.fx as fx
from threadpoolctl import threadpool_limits
from torch import nn

from .train import eval_mode

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

# ---------------------------------------------------------------------------
# Interpolative decomposition
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class InterpolativeDecomposition:
    """``Z ~ Z[:, columns] @ T``.

    Attributes
    ----------
    columns : ndarray of int, shape (k,)
        The kept columns, in increasing order.
    T : ndarray of shape (k, h)
        The interpolation matrix; ``T[:, columns]`` is the identity.
    rdiag : ndarray of shape (min(n, h),)
        ``|R_ii|`` of the column-pivoted QR, non-increasing: the decay that
        sizes are chosen from.
    pivots : ndarray of int, shape (h,)
        Column order of the pivoted QR (most informative first).
    """

    columns: np.ndarray
    T: np.ndarray
    rdiag: np.ndarray
    pivots: np.ndarray

    @property
    def rank(self):
        return len(self.columns)


def _choose_rank(rdiag, rank, tolerance):
    if rank is not None:
        return int(rank)
    if rdiag.size == 0 or rdiag[0] <= 0:
        return 1
    return max(1, int(np.count_nonzero(rdiag > tolerance * rdiag[0])))


def _id_from_factor(R0, rank=None, tolerance=None):
    """Interpolative decomposition of any ``Z`` with ``Z^T Z = R0^T R0``."""
    h = R0.shape[1]
    _, R, piv = scipy.linalg.qr(R0, mode="economic", pivoting=True, check_finite=False)
    rdiag = np.abs(np.diag(R))
    k = min(_choose_rank(rdiag, rank, tolerance), h)
    T = np.zeros((k, h))
    T[:, piv[:k]] = np.eye(k)
    if k < h:
        R1, R2 = R[:, :k], R[:, k:]
        scale = rdiag[0] if rdiag.size and rdiag[0] > 0 else 1.0
        if k <= rdiag.size and rdiag[k - 1] > 1e-12 * scale:
            # Least squares of [R11; 0] X = [R12; R22]: X = R11^{-1} R12.
            X = scipy.linalg.solve_triangular(R1[:k], R2[:k], check_finite=False)
        else:
            # Numerically rank deficient (more columns asked for than the
            # data has directions): minimum-norm least squares.
            X = scipy.linalg.lstsq(R1, R2, cond=1e-12, check_finite=False)[0]
        T[:, piv[k:]] = X
    order = np.argsort(piv[:k], kind="stable")
    return InterpolativeDecomposition(columns=piv[:k][order], T=T[order], rdiag=rdiag, pivots=piv)


def interpolative_decomposition(Z, rank=None, *, tolerance=None):
    """Column interpolative decomposition ``Z ~ Z[:, J] @ T`` by column-pivoted QR.

    Parameters
    ----------
    Z : array-like or tensor of shape (n, h)
    rank : int, optional
        Number ``k`` of columns to keep.
    tolerance : float, optional
        Keep the pivots with ``|R_ii| > tolerance * |R_11|`` (at least one).
        Exactly one of ``rank`` and ``tolerance`` must be given.

    Returns
    -------
    InterpolativeDecomposition
    """
    if isinstance(Z, torch.Tensor):
        Z = Z.detach().cpu().double().numpy()
    Z = np.asarray(Z, dtype=np.float64)
    if Z.ndim != 2 or Z.shape[0] == 0 or Z.shape[1] == 0:
        raise ValueError(f"Z: expected a non-empty 2-d array (n, h), got shape {Z.shape}")
    if not np.all(np.isfinite(Z)):
        raise ValueError("Z: has non-finite values (NaN or inf)")
    rank, tolerance = _check_rank_tolerance(rank, tolerance, Z.shape[1])
    return _id_from_factor(Z, rank, tolerance)


def _check_rank_tolerance(rank, tolerance, h):
    if (rank is None) == (tolerance is None):
        raise ValueError("give exactly one of rank and tolerance")
    if rank is not None:
        if not isinstance(rank, numbers.Integral) or not 1 <= rank <= h:
            raise ValueError(f"rank: expected an integer in [1, {h}], got {rank!r}")
        return int(rank), None
    return None, _check_tolerance(tolerance)


def _check_tolerance(tolerance):
    if not isinstance(tolerance, numbers.Real) or isinstance(tolerance, bool) or not 0 <= tolerance < 1:
        raise ValueError(f"tolerance: expected a number in [0, 1), got {tolerance!r}")
    return float(tolerance)


class _RowFactor:
    """Streaming triangular factor of ``[1, Z]`` over batches of rows (TSQR).

    ``factor(center=False)`` has the Gram matrix of ``Z``; ``center=True``
    that of ``Z`` minus its column means.
    """

    def __init__(self, h):
        self.h = h
        self.R = np.zeros((0, h + 1))
        self.n = 0
        self.total = np.zeros(h)

    def update(self, rows):
        rows = rows.detach().to("cpu", torch.float64).numpy()
        if not np.all(np.isfinite(rows)):
            raise ValueError("calibration activations have non-finite values (NaN or inf)")
        self.n += rows.shape[0]
        self.total += rows.sum(axis=0)
        block = np.vstack([self.R, np.hstack([np.ones((rows.shape[0], 1)), rows])])
        self.R = np.linalg.qr(block, mode="r")

    def factor(self, center=False):
        return self.R[1:, 1:] if center else self.R[:, 1:]

    @property
    def mean(self):
        return self.total / max(self.n, 1)


# ---------------------------------------------------------------------------
# Folding
# ---------------------------------------------------------------------------


def _new_param(old, value):
    return nn.Parameter(value.to(dtype=old.dtype, device=old.device).contiguous(), requires_grad=old.requires_grad)


@torch.no_grad()
def fold_interpolation(consumer, T, offset=None):
    """Fold an interpolation matrix into the layer that reads the pruned channels, in place.

    The consumer read ``C`` channels ``Z``; it will read the ``k`` kept
    channels ``Z_J`` and compute (almost) what it computed on ``Z_J @ T``
    (per spatial position for convolutions).

    Parameters
    ----------
    consumer : nn.Linear or nn.Conv2d (groups=1)
        A Linear with ``in_features = C * S`` reads ``C`` channels of ``S``
        features each (a flattened ``(C, H, W)`` map, ``S = H * W``).
    T : array-like or tensor of shape (k, C)
    offset : array-like of shape (C,), optional
        A constant ``d`` with ``Z ~ Z_J @ T + d`` (per channel): folded into
        the bias (Linear, or Conv2d without padding only).

    Returns
    -------
    consumer
    """
    T = torch.as_tensor(
        np.asarray(T, dtype=np.float64) if not isinstance(T, torch.Tensor) else T,
        dtype=torch.float64,
        device=consumer.weight.device,
    )
    k, C = T.shape
    W = consumer.weight.detach().to(torch.float64)
    if isinstance(consumer, nn.Linear):
        out, F = W.shape
        if F % C:
            raise ValueError(f"T: {C} channels do not divide the {F} input features of the Linear")
        S = F // C
        W3 = W.reshape(out, C, S)
        new = torch.einsum("ocs,jc->ojs", W3, T).reshape(out, k * S)
        consumer.in_features = k * S
    elif isinstance(consumer, nn.Conv2d):
        if consumer.groups != 1:
            raise ValueError("consumer: grouped convolutions are not supported")
        if W.shape[1] != C:
            raise ValueError(f"T: has {C} columns but the Conv2d reads {W.shape[1]} channels")
        W3 = W
        new = torch.einsum("ochw,jc->ojhw", W, T)
        consumer.in_channels = k
    else:
        raise TypeError(f"consumer: expected nn.Linear or nn.Conv2d, got {type(consumer).__name__}")
    if offset is not None:
        d = torch.as_tensor(np.asarray(offset, dtype=np.float64), device=W.device)
        if not _can_center(consumer):
            raise ValueError("offset: cannot be folded into a padded convolution (the border sees zeros)")
        shift = torch.einsum("oc...,c->o", W3, d)
        if consumer.bias is None:
            consumer.bias = nn.Parameter(
                torch.zeros(W.shape[0], dtype=consumer.weight.dtype, device=consumer.weight.device),
                requires_grad=consumer.weight.requires_grad,
            )
        consumer.bias = _new_param(consumer.bias, consumer.bias.detach().to(torch.float64) + shift)
    consumer.weight = _new_param(consumer.weight, new)
    return consumer


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


def _channel_count(module):
    for attr in ("num_features", "num_parameters"):
        value = getattr(module, attr, None)
        if isinstance(value, int):
            return value
    return None


def _set_submodule(model, name, module):
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


# ---------------------------------------------------------------------------
# Finding the prunable layers
# ---------------------------------------------------------------------------

_ELEMENTWISE_MODULES = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Tanh,
    nn.Sigmoid,
    nn.Hardtanh,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Softplus,
    nn.Softsign,
    nn.Tanhshrink,
    nn.LogSigmoid,
    nn.Softshrink,
    nn.Hardshrink,
    nn.Threshold,
    nn.Identity,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
)
_ELEMENTWISE_NAMES = {
    "relu",
    "relu_",
    "relu6",
    "leaky_relu",
    "elu",
    "selu",
    "celu",
    "gelu",
    "silu",
    "mish",
    "tanh",
    "sigmoid",
    "hardtanh",
    "hardswish",
    "hardsigmoid",
    "softplus",
    "softsign",
    "logsigmoid",
    "tanhshrink",
    "dropout",
    "dropout1d",
    "dropout2d",
    "alpha_dropout",
    "feature_alpha_dropout",
    "contiguous",
    "clone",
}
_POOL_MODULES = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
_POOL_NAMES = {
    "max_pool2d",
    "_max_pool2d",
    "avg_pool2d",
    "adaptive_avg_pool2d",
    "adaptive_max_pool2d",
    "_adaptive_max_pool2d",
    "boolean_dispatch",
}
_JOIN_NAMES = {"add", "add_", "iadd", "__add__", "cat", "concat", "concatenate", "stack", "sub", "mul", "matmul"}
_SHAPE_ONLY = {"size", "dim", "shape", "ndim"}


def _is_lma(module):
    return type(module).__name__ == "LMA"


def _is_per_channel(module):
    """Per-channel modules with per-channel state to prune."""
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return True
    if isinstance(module, nn.PReLU) and module.num_parameters > 1:
        return True
    return _is_lma(module) and getattr(module, "dim", 1) == 1


class _Tracer(fx.Tracer):
    """Custom modules without children (activations such as LMA) stay whole nodes."""

    def is_leaf_module(self, m, qualname):
        return super().is_leaf_module(m, qualname) or _is_lma(m) or next(m.children(), None) is None


@dataclasses.dataclass
class _Pair:
    producer: str
    consumer: str
    between: Tuple[str, ...]  # per-channel modules to prune too
    kind: str  # "linear" or "conv"
    channels: int


def _fn_name(target):
    return getattr(target, "__name__", str(target))


def _arg(node, pos, key, default):
    if len(node.args) > pos:
        return node.args[pos]
    return node.kwargs.get(key, default)


def _real_users(node):
    return [
        u
        for u in node.users
        if not (
            (u.op == "call_method" and u.target in _SHAPE_ONLY)
            or (
                u.op == "call_function"
                and _fn_name(u.target) == "getattr"
                and len(u.args) > 1
                and u.args[1] in _SHAPE_ONLY
            )
        )
    ]


def _flatten_kind(node, modules):
    """ "flatten" for an (N, C, ...) -> (N, C*...) flatten, "bad" for a reshape we cannot follow, else None."""
    if node.op == "call_module":
        m = modules[node.target]
        if isinstance(m, nn.Flatten):
            return "flatten" if m.start_dim == 1 and m.end_dim == -1 else "bad"
        return None
    name = _fn_name(node.target) if node.op == "call_function" else node.target
    if name == "flatten":
        start = _arg(node, 1, "start_dim", 0)
        end = _arg(node, 2, "end_dim", -1)
        return "flatten" if start == 1 and end == -1 else "bad"
    if name in ("view", "reshape"):
        shape = list(node.args[1:])
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = list(shape[0])
        if "shape" in node.kwargs:
            shape = list(node.kwargs["shape"])
        if len(shape) == 2 and shape[1] == -1 and (isinstance(shape[0], fx.Node) or isinstance(shape[0], int)):
            return "flatten"
        return "bad"
    return None


def _global_pool(node):
    """Spatial mean/max of a 4-d map: ``x.mean((2, 3))``, ``torch.amax(x, dim=(-2, -1), keepdim=True)``.

    "pool" with keepdim, "global" (to ``(N, C)``) without, "mixes" for
    other dimensions, None for other operations.
    """
    name = _fn_name(node.target) if node.op == "call_function" else node.target
    if node.op not in ("call_function", "call_method") or name not in ("mean", "amax"):
        return None
    dims = _arg(node, 1, "dim", None)
    keep = _arg(node, 2, "keepdim", False)
    if not isinstance(dims, (tuple, list)) or sorted(d % 4 if d < 0 else d for d in dims) != [2, 3]:
        return "mixes"
    return "pool" if keep else "global"


def _classify(node, modules):
    """Classify a node between a producer and its consumer."""
    if node.op == "call_module":
        m = modules[node.target]
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            return "layer", m
        if isinstance(m, _ELEMENTWISE_MODULES) or (isinstance(m, nn.PReLU) and m.num_parameters == 1):
            return "elementwise", m
        if _is_per_channel(m):
            return "per_channel", m
        if isinstance(m, _POOL_MODULES):
            if getattr(m, "return_indices", False):
                return "unsupported", f"{node.target} ({type(m).__name__} with return_indices)"
            return "pool", m
        if isinstance(m, nn.Flatten):
            return _flatten_kind(node, modules), m
        return "unsupported", f"{node.target} ({type(m).__name__})"
    if node.op in ("call_function", "call_method"):
        name = _fn_name(node.target) if node.op == "call_function" else node.target
        extra_nodes = [a for a in list(node.args[1:]) + list(node.kwargs.values()) if isinstance(a, fx.Node)]
        fk = _flatten_kind(node, modules)
        if fk is not None:
            return fk, None
        gp = _global_pool(node)
        if gp == "mixes":
            return "unsupported", f"{name} over dimensions other than the spatial ones"
        if gp is not None:
            return gp, None
        if not extra_nodes and name in _ELEMENTWISE_NAMES:
            return "elementwise", None
        if not extra_nodes and name in _POOL_NAMES:
            if _arg(node, 5, "return_indices", False):
                return "unsupported", f"{name} with return_indices"
            return "pool", None
        if name in _JOIN_NAMES:
            return "unsupported", f"{name} (a residual addition or a concatenation)"
        return "unsupported", f"{name} ({node.op})"
    return "unsupported", f"{node.op} {node.target}"


def _trace(model):
    graph = _Tracer().trace(model)
    return graph, dict(model.named_modules())


def _analyse(model):
    """Prunable (producer, consumer) pairs in forward order, and the layers left alone with the reason."""
    skipped: Dict[str, str] = {}
    try:
        graph, modules = _trace(model)
    except Exception as exc:  # noqa: BLE001 - any tracing failure means "cannot analyse"
        reason = f"the model could not be traced by torch.fx ({type(exc).__name__}: {exc})"
        for name, m in model.named_modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                skipped[name] = reason
        return [], skipped
    calls: Dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    pairs: List[_Pair] = []
    seen = set()
    for node in graph.nodes:
        if node.op != "call_module" or node.target in seen:
            continue
        seen.add(node.target)
        m = modules[node.target]
        if not isinstance(m, (nn.Linear, nn.Conv2d)):
            if (
                any(True for _ in m.parameters(recurse=False))
                and not _is_per_channel(m)
                and not isinstance(m, nn.PReLU)
            ):
                skipped[node.target] = f"not a Linear or Conv2d layer ({type(m).__name__}); left as it is"
            continue
        pair, reason = _follow(node, m, modules, calls)
        if pair is None:
            skipped[node.target] = reason
        else:
            pairs.append(pair)
    # Layers never called in forward are not part of the network's function: not listed.
    return pairs, skipped


def _parametrized(m):
    return bool(getattr(m, "parametrizations", None))


def _follow(node, producer, modules, calls):
    name = node.target
    kind = "linear" if isinstance(producer, nn.Linear) else "conv"
    if calls.get(name, 0) > 1:
        return None, "called more than once in forward (shared weights)"
    if _parametrized(producer):
        return None, "has parametrizations (e.g. weight norm)"
    if kind == "conv" and producer.groups != 1:
        return None, f"grouped convolution (groups={producer.groups})"
    spatial = kind == "conv"
    between: List[str] = []
    cur = node
    while True:
        users = _real_users(cur)
        if not users:
            return None, "its outputs reach no further layer"
        if len(users) > 1:
            what = ", ".join(str(u.target if u.op == "call_module" else _fn_name(u.target)) for u in users)
            return None, f"its output branches (used by {what}); residual/concatenated channels are not supported"
        nxt = users[0]
        if nxt.op == "output":
            return None, "output layer (its outputs are the network's outputs)"
        cls, info = _classify(nxt, modules)
        if cls == "unsupported":
            return None, f"followed by an operation that mixes channels or is not known to act per channel: {info}"
        if nxt.args[:1] != (cur,):
            return None, f"its output is not the main input of {nxt.target}"
        if cls == "layer":
            consumer = info
            if calls.get(nxt.target, 0) > 1:
                return None, f"next layer {nxt.target} is called more than once"
            if _parametrized(consumer):
                return None, f"next layer {nxt.target} has parametrizations"
            if isinstance(consumer, nn.Conv2d):
                if not spatial:
                    return None, f"next layer {nxt.target} is a Conv2d fed by a Linear"
                if consumer.groups != 1:
                    return None, f"next layer {nxt.target} is a grouped convolution"
                if consumer.in_channels != _out_width(producer):
                    return None, (
                        f"next layer {nxt.target} reads {consumer.in_channels} channels, not {_out_width(producer)}"
                    )
            else:
                if spatial:
                    return None, f"next layer {nxt.target} is a Linear applied to a 4-d map without a flatten"
                if consumer.in_features % _out_width(producer):
                    return None, (
                        f"next layer {nxt.target} has {consumer.in_features} inputs, not a multiple "
                        f"of {_out_width(producer)}"
                    )
            return _Pair(name, nxt.target, tuple(between), kind, _out_width(producer)), ""
        if cls == "elementwise":
            pass
        elif cls == "per_channel":
            m = info
            channels = _channel_count(m)
            if channels != _out_width(producer):
                return None, f"{nxt.target} ({type(m).__name__}) does not act on this layer's channels"
            if kind == "conv" and not spatial:
                return None, f"{nxt.target} ({type(m).__name__}) after the flatten"
            if isinstance(m, nn.BatchNorm2d) != spatial:
                return None, f"{nxt.target} ({type(m).__name__}) does not match the layer's output shape"
            between.append(nxt.target)
        elif cls == "pool":
            if not spatial:
                return None, f"pooling {nxt.target} after a flatten or a Linear"
        elif cls == "flatten":
            spatial = False
        elif cls == "global":
            if not spatial:
                return None, f"spatial {nxt.target} after a flatten or a Linear"
            spatial = False
        elif cls == "bad":
            return None, f"{nxt.target}: a reshape or flatten that pruning cannot follow (fixed size or other dims)"
        cur = nxt


def _out_width(m):
    return m.out_features if isinstance(m, nn.Linear) else m.out_channels


def prunable_layers(model):
    """The layers compress_network can prune, and those it leaves alone.

    Returns
    -------
    layers : dict  ``producer name -> next layer's name``, in forward order
    skipped : dict ``layer name -> reason``
    """
    pairs, skipped = _analyse(model)
    return {p.producer: p.consumer for p in pairs}, skipped


# ---------------------------------------------------------------------------
# Calibration data, counting
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


def count_parameters(model):
    """Number of parameters (all of them, trainable or not)."""
    return int(sum(p.numel() for p in model.parameters()))


@torch.no_grad()
def count_flops(model, example):
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


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------


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
    def fraction(self):
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
    def sizes(self):
        """``{layer name: kept}``; pass it as ``sizes=`` to compress another way to the same sizes."""
        return {layer.name: layer.kept for layer in self.layers}

    @property
    def param_fraction(self):
        return self.params_after / self.params_before if self.params_before else 1.0

    @property
    def flop_fraction(self):
        return self.flops_after / self.flops_before if self.flops_before else 1.0

    def to_dict(self):
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


def _can_center(consumer):
    if isinstance(consumer, nn.Linear):
        return True
    padding = consumer.padding
    return padding == "valid" or (not isinstance(padding, str) and not any(padding))


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


def compress_network(model, calibration_data, tolerance=None, sizes=None, *, method="id", center=False, batch_size=256):
    """Compress a trained MLP or CNN into a smaller one of the same structure, without retraining.

    Parameters
    ----------
    model : nn.Module
        Not modified: a deep copy is compressed.
    calibration_data : tensor, array or iterable of batches
        Inputs (a batch tensor, a NumPy array, or an iterable such as a
        DataLoader yielding tensors or ``(inputs, targets)`` tuples) on which
        activations are decomposed and outputs compared.
    tolerance : float in [0, 1), optional
        One tolerance for the whole network: each layer keeps the pivots with
        ``|R_ii| > tolerance * |R_11|`` of its activations' pivoted QR.
    sizes : int, float, dict or sequence, optional
        Explicit sizes instead: a count or a fraction of every layer, a dict
        ``{layer name: count or fraction}`` (other layers untouched), or one
        size per prunable layer in forward order (``report.sizes`` of another
        run works). Exactly one of ``tolerance`` and ``sizes``.
    method : {"id", "magnitude"}, default "id"
        ``"magnitude"`` is the baseline: keep the neurons/channels whose
        incoming weights have the largest L1 norm (Li et al. 2017) and drop the
        rest of the next layer's inputs; it needs ``sizes``.
    center : bool, default False
        ID only: decompose the activations minus their means and fold the
        means of the dropped channels into the next layer's bias (a Linear
        or an unpadded Conv2d; others fall back to plain ID).
    batch_size : int, default 256
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
    agreement = None
    if ref.shape[1] > 1:
        agreement = float((ref.argmax(1) == out.argmax(1)).double().mean())
    denom = float(torch.linalg.norm(ref))
    rel = float(torch.linalg.norm(out - ref)) / denom if denom > 0 else float(torch.linalg.norm(out - ref))
    example = batches[0][:1]
    report = CompressionReport(
        method=method,
        layers=layers,
        skipped=skipped,
        params_before=count_parameters(model),
        params_after=count_parameters(compressed),
        flops_before=count_flops(model, example),
        flops_after=count_flops(compressed, example),
        agreement=agreement,
        relative_error=rel,
        n_calibration=int(sum(len(x) for x in batches)),
        tolerance=tolerance,
    )
    compressed.train(was_training)
    return compressed, report


def magnitude_prune(model, calibration_data, sizes, *, batch_size=256):
    """Baseline: magnitude pruning of neurons/channels to ``sizes``; same output as :func:`compress_network`.

    Keeps the neurons/channels whose incoming weights have the largest L1
    norm, slices the next layer's inputs, no folding, no retraining.
    ``calibration_data`` is only used for the report (output agreement).
    """
    return compress_network(model, calibration_data, sizes=sizes, method="magnitude", batch_size=batch_size)
