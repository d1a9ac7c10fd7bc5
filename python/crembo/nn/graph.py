"""Which layers of a network can be pruned: a torch.fx analysis.

:func:`prunable_layers` traces a model with torch.fx and pairs each
``Linear`` or ``Conv2d`` layer whose outputs may be pruned (the producer)
with the next layer, which reads them (the consumer). Between the two only
per-channel operations may stand: BatchNorm (pruned with the layer),
elementwise activations (ReLU and friends; LMA, whose per-channel
parameters are pruned), dropout, max/avg/adaptive pooling, a flatten to
``(N, C*H*W)`` or a global spatial mean, so that every kept channel reaches
the consumer unchanged. Anything else (residual additions,
concatenations, LayerNorm, grouped convolutions, a reshape to a hard-coded
size, a layer called twice, the output layer) leaves the layer as it is,
with the reason.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Tuple

import torch.fx as fx
from torch import nn

__all__ = ["prunable_layers"]


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

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
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


def prunable_layers(model: nn.Module) -> tuple[dict, dict]:
    """The layers compress_network can prune, and those it leaves alone.

    Returns
    -------
    layers : dict  ``producer name -> next layer's name``, in forward order
    skipped : dict ``layer name -> reason``
    """
    pairs, skipped = _analyse(model)
    return {p.producer: p.consumer for p in pairs}, skipped


def _channel_count(module):
    for attr in ("num_features", "num_parameters"):
        value = getattr(module, attr, None)
        if isinstance(value, int):
            return value
    return None
