"""Network teachers and students in PyTorch (the optional extra ``crembo[torch]``).

* Teachers (:mod:`crembo.nn.teachers`): a module's softmax, MC dropout, an
  ensemble of modules (mean probabilities or votes), as
  :class:`TorchTeacher` with ``predict_proba``.
* Students (:mod:`crembo.nn.estimators`, :mod:`crembo.nn.train`,
  :mod:`crembo.nn.losses`): :class:`NetClassifier`, a scikit-learn
  classifier around any module, trained by :class:`Trainer` with CREMBO's
  allowed-label loss (``fit_allowed``: :class:`crembo.CREMBOClassifier`
  drives it like a tree), cross-entropy (BM), and :class:`KDClassifier` for
  Hinton KD and noisy-teacher distillation.
* LMA (:mod:`crembo.nn.lma`): the light multi-segment activation and
  :func:`swap_relu_for_lma`.
* Models (:mod:`crembo.nn.models`): MLP, LeNet-style CNNs, a small CNN
  teacher and a hand-written ResNet-18 for CIFAR-10; data loaders in
  :mod:`crembo.nn.data`.
* Structured compression (:mod:`crembo.nn.prune`): :func:`compress_network`
  keeps the neurons/channels that span a layer's activations (interpolative
  decomposition) and folds the rest into the next layer, no retraining;
  :func:`magnitude_prune` is the baseline. The driver builds on
  :mod:`crembo.nn.decomposition` (the maths), :mod:`crembo.nn.graph` (which
  layers can be pruned) and :mod:`crembo.nn.accounting` (parameters, FLOPs,
  the report; :func:`count_parameters`).

Importing this subpackage needs PyTorch (``pip install "crembo[torch]"``,
which pins torch==2.13.0); the rest of crembo does not.
"""

try:
    import torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError("crembo.nn needs PyTorch: pip install 'crembo[torch]' (torch==2.13.0)") from exc

from .accounting import count_parameters
from .data import load_cifar10, load_digits_images, random_crop_flip
from .estimators import KD_METHODS, KDClassifier, NetClassifier, TorchClassifier, teacher_logits
from .lma import LMA, count_lma, swap_relu_for_lma
from .losses import (
    AllowedLabelLoss,
    CrossEntropyLoss,
    KDLoss,
    NoisyTeacherLoss,
    allowed_label_loss,
    kd_loss,
    logit_regression_loss,
    logits_from_proba,
    noisy_teacher_loss,
    perturb_logits,
    soft_cross_entropy,
)
from .models import MLP, BasicBlock, LeNet, ResNet18, Reshape, SmallCNN, make_activation
from .prune import CompressionReport, compress_network, magnitude_prune
from .teachers import TorchTeacher, enable_mc_dropout, torch_beliefs
from .train import Trainer, TrainResult, predict_logits, resolve_device

__all__ = [
    "AllowedLabelLoss",
    "BasicBlock",
    "CrossEntropyLoss",
    "KDClassifier",
    "KDLoss",
    "KD_METHODS",
    "LMA",
    "LeNet",
    "MLP",
    "NetClassifier",
    "NoisyTeacherLoss",
    "ResNet18",
    "Reshape",
    "SmallCNN",
    "TorchClassifier",
    "TorchTeacher",
    "TrainResult",
    "Trainer",
    "allowed_label_loss",
    "count_lma",
    "count_parameters",
    "enable_mc_dropout",
    "kd_loss",
    "load_cifar10",
    "load_digits_images",
    "logit_regression_loss",
    "logits_from_proba",
    "make_activation",
    "noisy_teacher_loss",
    "perturb_logits",
    "predict_logits",
    "random_crop_flip",
    "resolve_device",
    "soft_cross_entropy",
    "swap_relu_for_lma",
    "teacher_logits",
    "torch_beliefs",
    "CompressionReport",
    "compress_network",
    "magnitude_prune",
]
