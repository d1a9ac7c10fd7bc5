"""Losses for network students: CREMBO's allowed-label loss, Hinton KD,
noisy-teacher distillation and plain cross-entropy.

Two layers:

* functions on tensors (``allowed_label_loss``, ``kd_loss``,
  ``logit_regression_loss``, ``perturb_logits``, ``noisy_teacher_loss``,
  ``soft_cross_entropy``), each the batch mean of a per-sample loss, weighted
  when ``weight`` is given (``sum(w_i * l_i) / sum(w_i)``);
* loss objects the :class:`~crembo.nn.train.Trainer` calls as
  ``loss(logits, batch)``, where ``batch`` maps names ("y", "allowed",
  "beliefs", "teacher_logits", "weight") to the rows of the current
  mini-batch; ``loss.keys`` names the targets it needs.

Teachers that only give probabilities are distilled through
``log p`` (centered per row), a valid logit vector: ``softmax(log p / T)`` is
the tempered teacher and the row centering removes the arbitrary shift that
L2 logit regression would otherwise see.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from collections.abc import Mapping

    from numpy.typing import ArrayLike

__all__ = [
    "AllowedLabelLoss",
    "CrossEntropyLoss",
    "KDLoss",
    "NoisyTeacherLoss",
    "allowed_label_loss",
    "kd_loss",
    "logit_regression_loss",
    "logits_from_proba",
    "noisy_teacher_loss",
    "perturb_logits",
    "soft_cross_entropy",
]


def _reduce(per_sample, weight):
    if weight is None:
        return per_sample.mean()
    weight = weight.to(per_sample.dtype)
    return (per_sample * weight).sum() / weight.sum().clamp_min(torch.finfo(per_sample.dtype).tiny)


def logits_from_proba(proba: ArrayLike | torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Row-centered ``log p``: logits whose softmax is ``p`` (up to ``eps``)."""
    z = torch.log(torch.as_tensor(proba).clamp_min(eps))
    return z - z.mean(dim=1, keepdim=True)


def soft_cross_entropy(
    logits: torch.Tensor, target_proba: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """``-sum_y q(y) log softmax(z)_y``, the cross-entropy to a distribution ``q``."""
    return _reduce(-(target_proba * F.log_softmax(logits, dim=1)).sum(dim=1), weight)


def allowed_label_loss(logits: torch.Tensor, allowed: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """CREMBO's loss for network students: one sigmoid per class against the allowed-label matrix.

    ``sum_y BCE(sigmoid(z_y), [y allowed])`` per sample, so the network learns
    to put mass on any allowed label; its prediction is ``argmax_y z_y``.

    Parameters
    ----------
    logits : (N, C) tensor
    allowed : (N, C) bool or 0/1 tensor
    weight : (N,) tensor, optional
    """
    target = allowed.to(logits.dtype)
    per = F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(dim=1)
    return _reduce(per, weight)


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    y: torch.Tensor | None = None,
    *,
    temperature: float = 4.0,
    alpha: float = 0.9,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Hinton, Vinyals and Dean's distillation loss.

    ``alpha * T^2 * KL(softmax(z_t / T) || softmax(z_s / T)) + (1 - alpha) * CE(y, z_s)``.
    Rows whose label is negative (unlabelled transfer points) get only the
    first term. With ``T = 1`` and ``alpha = 1`` this is the cross-entropy to
    the teacher's probabilities minus the teacher's entropy (a constant): the
    same gradients.
    """
    T = float(temperature)
    log_q = F.log_softmax(teacher_logits / T, dim=1)
    log_p = F.log_softmax(student_logits / T, dim=1)
    kl = (log_q.exp() * (log_q - log_p)).sum(dim=1)
    loss = float(alpha) * T * T * _reduce(kl, weight)
    if alpha < 1:
        if y is None:
            raise ValueError("kd_loss: alpha < 1 needs the true labels y")
        labelled = y >= 0
        if labelled.any():
            ce = F.cross_entropy(student_logits[labelled], y[labelled], reduction="none")
            w = None if weight is None else weight[labelled]
            loss = loss + (1.0 - float(alpha)) * _reduce(ce, w)
    return loss


def logit_regression_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Ba and Caruana's L2 logit regression: ``0.5 * ||z_s - z_t||^2`` per sample."""
    return _reduce(0.5 * (student_logits - teacher_logits).pow(2).sum(dim=1), weight)


def perturb_logits(
    teacher_logits: torch.Tensor, sigma: float, fraction: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Sau and Balasubramanian's noisy teacher: ``z' = (1 + xi) * z`` elementwise,
    ``xi ~ N(0, sigma^2)``, on a random ``fraction`` of the rows (the paper's
    alpha); the other rows are left as they are.
    """
    z = teacher_logits
    n = z.shape[0]
    k = int(round(float(fraction) * n))
    if sigma == 0 or k == 0:
        return z
    dev = generator.device if generator is not None else z.device
    rows = torch.randperm(n, generator=generator, device=dev)[:k].to(z.device)
    xi = torch.randn((k, z.shape[1]), generator=generator, device=dev).to(z.device, z.dtype)
    out = z.clone()
    out[rows] = z[rows] * (1.0 + float(sigma) * xi)
    return out


def noisy_teacher_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    y: torch.Tensor | None = None,
    *,
    sigma: float = 0.5,
    fraction: float = 0.5,
    mode: str = "l2",
    temperature: float = 4.0,
    alpha: float = 0.9,
    weight: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Distillation from a noisy teacher.

    The teacher's logits are perturbed (:func:`perturb_logits`), then the
    student regresses them (``mode="l2"``, the paper's loss) or learns them
    with the KD loss (``mode="kd"``, the combination the paper mentions).
    """
    noisy = perturb_logits(teacher_logits, sigma, fraction, generator)
    if mode == "l2":
        return logit_regression_loss(student_logits, noisy, weight)
    if mode == "kd":
        return kd_loss(student_logits, noisy, y, temperature=temperature, alpha=alpha, weight=weight)
    raise ValueError(f"mode: expected 'l2' or 'kd', got {mode!r}")


# ------------------------------------------------------------------ loss objects
class _Loss:
    keys = ()
    optional_keys = ("weight",)

    def eval_loss(self, logits: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The loss without randomness (used on validation data)."""
        return self(logits, batch)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class CrossEntropyLoss(_Loss):
    """Cross-entropy on the true labels (the BM baseline), sample-weighted."""

    keys = ("y",)

    def __call__(self, logits, batch):
        ce = F.cross_entropy(logits, batch["y"], reduction="none")
        return _reduce(ce, batch.get("weight"))


class AllowedLabelLoss(_Loss):
    """:func:`allowed_label_loss` on ``batch["allowed"]``, or on the labels
    allowed at ``threshold`` (``beliefs >= threshold``) when a threshold is
    given and the batch carries ``"beliefs"``."""

    def __init__(self, threshold=None):
        self.threshold = threshold
        self.keys = ("allowed",) if threshold is None else ("beliefs",)

    def __call__(self, logits, batch):
        if self.threshold is None:
            allowed = batch["allowed"]
        else:
            allowed = batch["beliefs"] >= self.threshold
        return allowed_label_loss(logits, allowed, batch.get("weight"))


class KDLoss(_Loss):
    """:func:`kd_loss` with ``batch["teacher_logits"]`` and ``batch["y"]`` (optional when ``alpha == 1``)."""

    keys = ("teacher_logits",)
    optional_keys = ("weight", "y")

    def __init__(self, temperature=4.0, alpha=0.9):
        self.temperature = float(temperature)
        self.alpha = float(alpha)

    def __call__(self, logits, batch):
        return kd_loss(
            logits,
            batch["teacher_logits"],
            batch.get("y"),
            temperature=self.temperature,
            alpha=self.alpha,
            weight=batch.get("weight"),
        )


class NoisyTeacherLoss(_Loss):
    """:func:`noisy_teacher_loss`; the noise is drawn from ``generator``
    (the trainer seeds one on the training device when it is left None)."""

    keys = ("teacher_logits",)
    optional_keys = ("weight", "y")

    def __init__(self, sigma=0.5, fraction=0.5, mode="l2", temperature=4.0, alpha=0.9, generator=None):
        if mode not in ("l2", "kd"):
            raise ValueError(f"mode: expected 'l2' or 'kd', got {mode!r}")
        if not 0 <= fraction <= 1:
            raise ValueError(f"fraction: expected a value in [0, 1], got {fraction!r}")
        if sigma < 0:
            raise ValueError(f"sigma: expected a non-negative number, got {sigma!r}")
        self.sigma = float(sigma)
        self.fraction = float(fraction)
        self.mode = mode
        self.temperature = float(temperature)
        self.alpha = float(alpha)
        self.generator = generator

    def __call__(self, logits, batch):
        return noisy_teacher_loss(
            logits,
            batch["teacher_logits"],
            batch.get("y"),
            sigma=self.sigma,
            fraction=self.fraction,
            mode=self.mode,
            temperature=self.temperature,
            alpha=self.alpha,
            weight=batch.get("weight"),
            generator=self.generator,
        )

    def eval_loss(self, logits: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        z = batch["teacher_logits"]
        if self.mode == "l2":
            return logit_regression_loss(logits, z, batch.get("weight"))
        return kd_loss(
            logits, z, batch.get("y"), temperature=self.temperature, alpha=self.alpha, weight=batch.get("weight")
        )
