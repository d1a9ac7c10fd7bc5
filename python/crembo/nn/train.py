"""The training loop shared by every network student and teacher.

:class:`Trainer` fits a module with a pluggable loss (see
:mod:`crembo.nn.losses`): optimizer, epochs, batch size, learning-rate
schedule, device, seed, a tqdm progress bar and early stopping on validation
data. Data are small enough here to live on the device whole, so batches are
slices of device tensors (no DataLoader).
"""

from __future__ import annotations

import copy
import logging
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .losses import AllowedLabelLoss, CrossEntropyLoss, KDLoss, NoisyTeacherLoss  # noqa: F401  (re-exported)

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from numpy.typing import ArrayLike

__all__ = [
    "Trainer",
    "TrainResult",
    "resolve_device",
    "as_tensors",
    "predict_logits",
    "OPTIMIZERS",
    "LR_SCHEDULES",
    "AllowedLabelLoss",
    "CrossEntropyLoss",
    "KDLoss",
    "NoisyTeacherLoss",
]

log = logging.getLogger("crembo")

OPTIMIZERS = ("adam", "adamw", "sgd")
LR_SCHEDULES = (None, "constant", "cosine", "step", "onecycle")

_DTYPES = {"y": torch.long, "allowed": torch.bool}


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` -> CUDA when present, else CPU; anything else as ``torch.device``."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r}: CUDA is not available to PyTorch on this machine")
    return dev


def as_tensors(data: Mapping[str, Any], device: str | torch.device) -> dict[str, torch.Tensor]:
    """Dict of arrays -> dict of tensors on ``device`` (labels long, masks bool, the rest float32)."""
    out = {}
    for key, value in data.items():
        if value is None:
            continue
        dtype = _DTYPES.get(key, torch.float32)
        t = value if isinstance(value, torch.Tensor) else torch.as_tensor(np.asarray(value))
        out[key] = t.to(device=device, dtype=dtype)
    n = {len(v) for v in out.values()}
    if len(n) > 1:
        raise ValueError(
            f"training data: every entry needs the same number of rows, got { {k: len(v) for k, v in out.items()} }"
        )
    return out


@contextmanager
def eval_mode(module: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """``module`` in evaluation mode inside the block; its own mode (of every
    submodule) is restored afterwards, also after an error."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


def module_device(module: torch.nn.Module) -> torch.device:
    """The device of the module's first parameter (CPU for a module without any)."""
    return next((p.device for p in module.parameters()), torch.device("cpu"))


@torch.no_grad()
def predict_logits(
    module: torch.nn.Module,
    X: ArrayLike | torch.Tensor,
    *,
    batch_size: int = 1024,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """Logits of ``module`` on ``X`` (array or tensor), in evaluation mode, batched, as a CPU float tensor."""
    if device is None:
        device = module_device(module)
    with eval_mode(module):
        X = X if isinstance(X, torch.Tensor) else torch.as_tensor(np.asarray(X, dtype=np.float32))
        outs = [
            module(X[i : i + batch_size].to(device, torch.float32)).float().cpu() for i in range(0, len(X), batch_size)
        ]
    return torch.cat(outs) if outs else torch.zeros((0, 0))


@dataclass
class TrainResult:
    """What a :meth:`Trainer.fit` did.

    ``history`` has one dict per epoch: epoch, loss (training mean),
    val_loss (or None), lr and seconds.
    """

    history: list = field(default_factory=list)
    best_epoch: int = 0
    n_epochs: int = 0
    stopped_early: bool = False
    seconds: float = 0.0


class Trainer:
    """Mini-batch training of a module with a pluggable loss.

    Parameters
    ----------
    epochs : int, default=30
    batch_size : int, default=64
    optimizer : {"adam", "adamw", "sgd"} or callable, default="adam"
        A callable gets the parameters and the learning rate and returns a
        ``torch.optim.Optimizer``. SGD uses Nesterov momentum ``momentum``.
    lr : float, default=1e-3
    weight_decay : float, default=0.0
    momentum : float, default=0.9
    lr_schedule : {"cosine", "step", "onecycle", "constant", None} or callable, default="cosine"
        Stepped after every batch: cosine annealing to 0, a x0.1 step at
        1/2 and 3/4 of training, one-cycle, or constant. A callable gets
        ``(optimizer, total_steps)`` and returns a scheduler.
    early_stopping : bool, default=False
        Stop when the validation loss has not improved by ``min_delta`` for
        ``patience`` epochs and restore the best weights (needs
        ``val_data`` in :meth:`fit`).
    patience : int, default=5
    min_delta : float, default=0.0
    grad_clip : float or None
        Clip the gradient norm.
    augment : callable or None
        Applied to each training batch of inputs on the device (e.g.
        :func:`crembo.nn.data.random_crop_flip`).
    device : "auto", "cpu", "cuda" or torch.device, default="auto"
    seed : int or None
        Seeds shuffling, dropout and noise (inside a forked RNG state, so
        the caller's global RNG is untouched).
    progress : bool, default=False
        A tqdm bar over epochs.
    desc : str
        The bar's label.
    """

    def __init__(
        self,
        *,
        epochs=30,
        batch_size=64,
        optimizer="adam",
        lr=1e-3,
        weight_decay=0.0,
        momentum=0.9,
        lr_schedule="cosine",
        early_stopping=False,
        patience=5,
        min_delta=0.0,
        grad_clip=None,
        augment=None,
        device="auto",
        seed=None,
        progress=False,
        desc="training",
    ):
        if int(epochs) < 1:
            raise ValueError(f"epochs: expected an integer >= 1, got {epochs!r}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size: expected an integer >= 1, got {batch_size!r}")
        if not (callable(optimizer) or optimizer in OPTIMIZERS):
            raise ValueError(f"optimizer: expected one of {OPTIMIZERS} or a callable, got {optimizer!r}")
        if not (callable(lr_schedule) or lr_schedule in LR_SCHEDULES):
            raise ValueError(f"lr_schedule: expected one of {LR_SCHEDULES} or a callable, got {lr_schedule!r}")
        if not lr > 0:
            raise ValueError(f"lr: expected a positive number, got {lr!r}")
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.optimizer = optimizer
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.momentum = float(momentum)
        self.lr_schedule = lr_schedule
        self.early_stopping = bool(early_stopping)
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.grad_clip = grad_clip
        self.augment = augment
        self.device = device
        self.seed = seed
        self.progress = progress
        self.desc = desc

    # ----------------------------------------------------------------- pieces
    def _optimizer(self, params):
        if callable(self.optimizer):
            return self.optimizer(params, self.lr)
        if self.optimizer == "adam":
            return torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        if self.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        return torch.optim.SGD(
            params, lr=self.lr, momentum=self.momentum, nesterov=self.momentum > 0, weight_decay=self.weight_decay
        )

    def _scheduler(self, opt, total_steps):
        s = self.lr_schedule
        if callable(s):
            return s(opt, total_steps)
        if s in (None, "constant"):
            return None
        if s == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(total_steps, 1))
        if s == "step":
            return torch.optim.lr_scheduler.MultiStepLR(
                opt, milestones=[max(1, total_steps // 2), max(2, 3 * total_steps // 4)], gamma=0.1
            )
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=self.lr, total_steps=max(total_steps, 1))

    def _batches(self, n, shuffle):
        order = torch.randperm(n) if shuffle else torch.arange(n)
        chunks = list(torch.split(order, self.batch_size))
        if len(chunks) > 1 and len(chunks[-1]) == 1:
            # A batch of one breaks batch normalization; fold it into the previous batch.
            chunks[-2] = torch.cat([chunks[-2], chunks.pop()])
        return chunks

    @staticmethod
    def _check_keys(loss, data, name):
        missing = [k for k in getattr(loss, "keys", ()) if k not in data]
        if "x" not in data:
            missing.insert(0, "x")
        if missing:
            raise ValueError(f"{name}: {type(loss).__name__} needs {missing}, got entries {sorted(data)}")

    @torch.no_grad()
    def evaluate(self, module: torch.nn.Module, loss: Any, data: Mapping[str, torch.Tensor]) -> float:
        """Mean validation loss (``loss.eval_loss``) of ``module`` on ``data`` (tensors on the device)."""
        total, count = 0.0, 0
        with eval_mode(module):
            for idx in self._batches(len(data["x"]), shuffle=False):
                idx = idx.to(data["x"].device)
                batch = {k: v[idx] for k, v in data.items()}
                value = (
                    loss.eval_loss(module(batch["x"]), batch)
                    if hasattr(loss, "eval_loss")
                    else loss(module(batch["x"]), batch)
                )
                total += float(value) * len(idx)
                count += len(idx)
        return total / max(count, 1)

    # -------------------------------------------------------------------- fit
    def fit(
        self,
        module: torch.nn.Module,
        loss: Any,
        data: Mapping[str, Any],
        val_data: Mapping[str, Any] | None = None,
    ) -> TrainResult:
        """Train ``module`` in place.

        Parameters
        ----------
        module : torch.nn.Module
            Moved to the trainer's device.
        loss : callable ``loss(logits, batch) -> scalar tensor``
            A loss object of :mod:`crembo.nn.losses` or any callable of that shape.
        data : dict
            ``"x"`` (the inputs) and the targets the loss needs ("y",
            "allowed", "beliefs", "teacher_logits", and optional "weight"),
            arrays or tensors with one row per sample.
        val_data : dict or None
            Same entries; its loss is recorded each epoch and drives early stopping.

        Returns
        -------
        TrainResult
        """
        t_start = time.perf_counter()
        device = resolve_device(self.device)
        self._check_keys(loss, data, "data")
        if self.early_stopping and val_data is None:
            raise ValueError("early_stopping=True needs val_data")
        module.to(device)
        data = as_tensors(data, device)
        n = len(data["x"])
        if n == 0:
            raise ValueError("data: no rows to train on")
        if val_data is not None:
            self._check_keys(loss, val_data, "val_data")
            val_data = as_tensors(val_data, device)
        steps_per_epoch = len(self._batches(n, shuffle=False))
        fork_devices = [device] if device.type == "cuda" else []
        result = TrainResult()
        with torch.random.fork_rng(devices=fork_devices):
            if self.seed is not None:
                torch.manual_seed(int(self.seed))
            opt = self._optimizer([p for p in module.parameters() if p.requires_grad])
            sched = self._scheduler(opt, self.epochs * steps_per_epoch)
            best, best_state, bad = math.inf, None, 0
            epochs = range(self.epochs)
            bar = None
            if self.progress:
                from tqdm.auto import tqdm

                bar = epochs = tqdm(epochs, desc=self.desc, unit="epoch", leave=False)
            module.train()
            for epoch in epochs:
                t0 = time.perf_counter()
                total, count = 0.0, 0
                for idx in self._batches(n, shuffle=True):
                    idx = idx.to(device)
                    batch = {k: v[idx] for k, v in data.items()}
                    x = batch["x"] if self.augment is None else self.augment(batch["x"])
                    value = loss(module(x), batch)
                    v = float(value.detach())  # one device sync per batch
                    if not math.isfinite(v):
                        raise FloatingPointError(
                            f"training loss became {v} at epoch {epoch + 1}; lower the learning rate"
                        )
                    opt.zero_grad(set_to_none=True)
                    value.backward()
                    if self.grad_clip is not None:
                        torch.nn.utils.clip_grad_norm_(module.parameters(), float(self.grad_clip))
                    opt.step()
                    if sched is not None:
                        sched.step()
                    total += v * len(idx)
                    count += len(idx)
                rec = dict(
                    epoch=epoch + 1,
                    loss=total / count,
                    val_loss=None,
                    lr=opt.param_groups[0]["lr"],
                    seconds=time.perf_counter() - t0,
                )
                if val_data is not None:
                    rec["val_loss"] = self.evaluate(module, loss, val_data)
                result.history.append(rec)
                result.n_epochs = epoch + 1
                if bar is not None:
                    bar.set_postfix(
                        loss=f"{rec['loss']:.4f}",
                        **({} if rec["val_loss"] is None else {"val": f"{rec['val_loss']:.4f}"}),
                    )
                if val_data is not None:
                    if rec["val_loss"] < best - self.min_delta:
                        best, bad, result.best_epoch = rec["val_loss"], 0, epoch + 1
                        if self.early_stopping:
                            best_state = copy.deepcopy(module.state_dict())
                    else:
                        bad += 1
                        if self.early_stopping and bad >= self.patience:
                            result.stopped_early = True
                            break
                else:
                    result.best_epoch = epoch + 1
            if bar is not None:
                bar.close()
            if best_state is not None:
                module.load_state_dict(best_state)
        module.eval()
        result.seconds = time.perf_counter() - t_start
        log.debug("trained %s for %d epochs in %.2fs", type(module).__name__, result.n_epochs, result.seconds)
        return result
