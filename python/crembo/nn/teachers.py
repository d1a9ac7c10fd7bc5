"""Network teachers: beliefs ``p(y|x)`` from PyTorch modules.

* ``"softmax"``: the softmax of one module;
* ``"mc_dropout"``: the mean softmax (or the share of votes) of ``n_passes``
  stochastic passes with the dropout layers active (batch norm stays in
  evaluation mode);
* ``"ensemble"``: several modules, as the mean of their softmaxes
  (``vote="mean"``) or the share of members voting each class
  (``vote="votes"``, the members as sampled hypotheses).

Everything runs batched, without gradients, on the modules' device.
:class:`TorchTeacher` wraps these for :class:`crembo.CREMBOClassifier` and
the distillers: it has ``predict_proba``, ``predict``, ``classes_`` and
``predict_logits``, and it is callable.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassifierMixin
from torch import nn

from .losses import logits_from_proba
from .train import eval_mode, module_device, predict_logits

__all__ = ["TorchTeacher", "torch_beliefs", "enable_mc_dropout", "TEACHER_METHODS"]

TEACHER_METHODS = ("auto", "softmax", "mc_dropout", "ensemble")

_DROPOUT = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)


def enable_mc_dropout(module: nn.Module) -> int:
    """Evaluation mode everywhere except the dropout layers; returns how many dropout layers were switched on."""
    module.eval()
    k = 0
    for m in module.modules():
        if isinstance(m, _DROPOUT):
            m.train()
            k += 1
    return k


@torch.no_grad()
def _softmax_passes(module, X, *, passes, batch_size, device, votes=False):
    """Mean softmax (or, with ``votes``, the share of argmax votes) of
    ``passes`` stochastic forward passes; one pass in evaluation mode when
    ``passes`` is 0. Softmax in float64, so confident rows do not round to
    exactly 1."""
    with eval_mode(module):
        if passes:
            enable_mc_dropout(module)
        out = []
        for i in range(0, len(X), batch_size):
            xb = X[i : i + batch_size].to(device, torch.float32)
            acc = None
            for _ in range(max(passes, 1)):
                z = module(xb).double()
                if votes:
                    p = torch.zeros_like(z).scatter_(1, z.argmax(dim=1, keepdim=True), 1.0)
                else:
                    p = torch.softmax(z, dim=1)
                acc = p if acc is None else acc + p
            out.append((acc / max(passes, 1)).cpu())
    return torch.cat(out)


def _device_of(module: nn.Module, device: str | torch.device | None) -> torch.device:
    """``"auto"`` (and the older None): the module's own device; else ``device``."""
    if device is None or (isinstance(device, str) and device == "auto"):
        return module_device(module)
    return torch.device(device)


def torch_beliefs(
    modules: nn.Module | Sequence[nn.Module],
    X: ArrayLike | torch.Tensor,
    *,
    method: str = "auto",
    n_passes: int = 20,
    vote: str = "mean",
    batch_size: int = 1024,
    device: str | torch.device | None = "auto",
    seed: int | None = None,
) -> np.ndarray:
    """Belief of one module or an ensemble of modules on ``X``.

    Parameters
    ----------
    modules : nn.Module or sequence of nn.Module
    X : array-like or tensor of shape (n, ...)
    method : {"auto", "softmax", "mc_dropout", "ensemble"}, default="auto"
        "auto": "ensemble" for a sequence of modules, else "softmax".
    n_passes : int, default=20
        Stochastic passes of MC dropout (one module only).
    vote : {"mean", "votes"}, default="mean"
        How ensemble members (or MC dropout passes) combine: mean
        probabilities, or the share of members voting each class (the
        members as sampled hypotheses; few distinct belief values, so the
        CREMBO threshold sweep can walk them all).
    batch_size : int, default=1024
    device : "auto", "cpu", "cuda" or torch.device, default="auto"
        ``"auto"``: each module's own device (where it already lives; None,
        the former default, means the same).
    seed : int or None, default=None
        Seeds the dropout masks of MC dropout.

    Returns
    -------
    ndarray of shape (n, C), float64, rows summing to one.
    """
    if isinstance(modules, nn.Module):
        modules = [modules]
    modules = list(modules)
    if not modules or not all(isinstance(m, nn.Module) for m in modules):
        raise TypeError("modules: expected a torch.nn.Module or a non-empty sequence of them")
    if method not in TEACHER_METHODS:
        raise ValueError(f"method: expected one of {TEACHER_METHODS}, got {method!r}")
    if vote not in ("mean", "votes"):
        raise ValueError(f"vote: expected 'mean' or 'votes', got {vote!r}")
    if method == "auto":
        method = "ensemble" if len(modules) > 1 else "softmax"
    if method != "ensemble" and len(modules) > 1:
        raise ValueError(f"method={method!r} takes one module, got {len(modules)}; use method='ensemble'")
    X = X if isinstance(X, torch.Tensor) else torch.as_tensor(np.asarray(X, dtype=np.float32))
    if method == "mc_dropout":
        if int(n_passes) < 1:
            raise ValueError(f"n_passes: expected an integer >= 1, got {n_passes!r}")
        m = modules[0]
        dev = _device_of(m, device)
        n_drop = sum(isinstance(k, _DROPOUT) for k in m.modules())
        if n_drop == 0:
            raise ValueError("method='mc_dropout': the module has no dropout layer, every pass would be the same")
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
            if seed is not None:
                torch.manual_seed(int(seed))
            P = _softmax_passes(m, X, passes=int(n_passes), batch_size=batch_size, device=dev, votes=vote == "votes")
    elif method == "softmax":
        m = modules[0]
        dev = _device_of(m, device)
        P = _softmax_passes(m, X, passes=0, batch_size=batch_size, device=dev)
    else:
        members = []
        for m in modules:
            dev = _device_of(m, device)
            members.append(_softmax_passes(m, X, passes=0, batch_size=batch_size, device=dev))
        C = {p.shape[1] for p in members}
        if len(C) > 1:
            raise ValueError(f"ensemble: members disagree on the number of classes ({sorted(C)})")
        if vote == "mean":
            P = sum(members) / len(members)
        else:
            votes = torch.stack([p.argmax(dim=1) for p in members], dim=1)  # (n, M)
            P = torch.zeros_like(members[0])
            P.scatter_add_(1, votes, torch.ones_like(votes, dtype=P.dtype))
            P /= len(members)
    P = P.numpy()
    return P / P.sum(axis=1, keepdims=True)


class TorchTeacher(ClassifierMixin, BaseEstimator):
    """A trained network (or ensemble) as a teacher with ``predict_proba``.

    Parameters
    ----------
    module : nn.Module, fitted NetClassifier, or a sequence of them
        Used as given (never trained here).
    method : {"auto", "softmax", "mc_dropout", "ensemble"}, default="auto"
    n_passes : int, default=20
        MC dropout passes.
    vote : {"mean", "votes"}, default="mean"
        How an ensemble's members, or the MC dropout passes, combine.
    classes : array-like of shape (C,) or None
        Labels of the output columns; default those of a wrapped
        NetClassifier, else ``0..C-1`` (then ``classes_`` is only known
        after the first prediction, and CREMBO takes the classes of ``y``).
    batch_size : int, default=1024
    device : "auto", "cpu", "cuda" or torch.device, default="auto"
        ``"auto"``: the module's own device (where it already lives; None,
        the former default, means the same).
    random_state : int or None
        Seeds the MC dropout masks (the same masks on every call).

    Notes
    -----
    Callable (``teacher(X)`` is ``predict_proba(X)``) and without ``fit``, so
    :class:`crembo.CREMBOClassifier` uses it as it is.
    """

    def __init__(
        self,
        module,
        *,
        method="auto",
        n_passes=20,
        vote="mean",
        classes=None,
        batch_size=1024,
        device="auto",
        random_state=None,
    ):
        self.module = module
        self.method = method
        self.n_passes = n_passes
        self.vote = vote
        self.classes = classes
        self.batch_size = batch_size
        self.device = device
        self.random_state = random_state

    def _modules(self):
        items = self.module if isinstance(self.module, (list, tuple)) else [self.module]
        mods = []
        for m in items:
            inner = getattr(m, "module_", None)
            mods.append(inner if isinstance(inner, nn.Module) else m)
        return mods

    def _classes(self):
        if self.classes is not None:
            return np.asarray(self.classes)
        items = self.module if isinstance(self.module, (list, tuple)) else [self.module]
        c = getattr(items[0], "classes_", None)
        return None if c is None else np.asarray(c)

    def __sklearn_is_fitted__(self):
        return True

    @property
    def classes_(self) -> np.ndarray:
        c = self._classes()
        if c is None:
            c = getattr(self, "_seen_classes", None)
        if c is None:
            raise AttributeError("classes_: unknown until the first prediction (pass classes=)")
        return c

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Belief ``(n, C)`` on ``X``."""
        P = torch_beliefs(
            self._modules(),
            X,
            method=self.method,
            n_passes=self.n_passes,
            vote=self.vote,
            batch_size=self.batch_size,
            device=self.device,
            seed=self.random_state,
        )
        c = self._classes()
        if c is not None and len(c) != P.shape[1]:
            raise ValueError(f"classes: {len(c)} labels for a teacher with {P.shape[1]} outputs")
        if c is None:
            self._seen_classes = np.arange(P.shape[1])
        return P

    __call__ = predict_proba

    def predict_logits(self, X: ArrayLike) -> np.ndarray:
        """Logits of a single module (``method="softmax"``), else row-centered ``log`` of the belief."""
        mods = self._modules()
        method = self.method
        if method == "auto":
            method = "ensemble" if len(mods) > 1 else "softmax"
        if method == "softmax":
            z = predict_logits(mods[0], X, batch_size=self.batch_size, device=_device_of(mods[0], self.device))
            return z.double().numpy()
        return logits_from_proba(torch.as_tensor(self.predict_proba(X), dtype=torch.float64)).numpy()

    def predict(self, X: ArrayLike) -> np.ndarray:
        P = self.predict_proba(X)
        return self.classes_[np.argmax(P, axis=1)]
