"""Network architectures for teachers and students.

Every model takes ``(in_features, n_classes, ...)`` so that the estimators can
build it from a class and keyword arguments, and accepts flat rows ``(N, d)``
(what scikit-learn-style estimators pass) as well as images: convolutional
models start with a :class:`Reshape` to their ``input_shape``.

The students (:class:`MLP`, :class:`LeNet`) and the digits teacher
(:class:`SmallCNN`) are plain ``nn.Sequential`` stacks of layers with
explicit activation modules, so structured pruning can walk them layer by
layer and LMA can replace their ReLUs. :class:`ResNet18` (the CIFAR-10
variant: 3x3 stem, no max-pool) has residual blocks.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from torch import nn

from .accounting import count_parameters  # noqa: F401 - crembo.nn.models.count_parameters, as before
from .lma import LMA

if TYPE_CHECKING:
    from collections.abc import Callable

    import torch

__all__ = ["Reshape", "MLP", "LeNet", "SmallCNN", "BasicBlock", "ResNet18", "make_activation", "count_parameters"]


class Reshape(nn.Module):
    """Reshape each row to ``shape`` (flat rows in, images out); a no-op on input already of that shape."""

    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(int(s) for s in shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


def make_activation(activation: str | Callable[[int], nn.Module], num_features: int) -> nn.Module:
    """An activation module for a layer of ``num_features`` channels.

    ``activation`` is "relu", "lma" (an :class:`LMA` with 6 segments), or a
    callable ``f(num_features) -> nn.Module`` (e.g.
    ``functools.partial(LMA, n_segments=8)``).
    """
    if activation == "relu":
        return nn.ReLU()
    if activation == "lma":
        return LMA(num_features)
    if callable(activation):
        return activation(num_features)
    raise ValueError(f"activation: expected 'relu', 'lma' or a callable, got {activation!r}")


def _check_in_features(in_features, input_shape, name):
    n = math.prod(input_shape)
    if in_features is not None and int(in_features) != n:
        raise ValueError(
            f"{name}: in_features={in_features} does not match input_shape={tuple(input_shape)} ({n} values per row)"
        )


class MLP(nn.Sequential):
    """Multi-layer perceptron: ``Flatten, [Linear, (BatchNorm), activation, (Dropout)] * len(hidden), Linear``.

    Parameters
    ----------
    in_features : int
    n_classes : int
    hidden : sequence of int, default=(64,)
    activation : "relu", "lma" or callable, default="relu"
    dropout : float, default=0.0
    batch_norm : bool, default=False
    """

    def __init__(self, in_features, n_classes, hidden=(64,), activation="relu", dropout=0.0, batch_norm=False):
        layers = [nn.Flatten()]
        prev = int(in_features)
        for h in hidden:
            layers.append(nn.Linear(prev, int(h)))
            if batch_norm:
                layers.append(nn.BatchNorm1d(int(h)))
            layers.append(make_activation(activation, int(h)))
            if dropout:
                layers.append(nn.Dropout(dropout))
            prev = int(h)
        layers.append(nn.Linear(prev, int(n_classes)))
        super().__init__(*layers)


class LeNet(nn.Sequential):
    """LeNet-style CNN: ``[Conv, activation, MaxPool] * len(channels)``, then an MLP head.

    ``LeNet(3 * 32 * 32, 10, input_shape=(3, 32, 32), channels=(6, 16), hidden=(120, 84), kernel_size=5,
    padding=0)`` is the classic LeNet-5 for CIFAR-10; the defaults fit 8x8 digits.

    Parameters
    ----------
    in_features : int or None
        Checked against ``input_shape`` when given.
    n_classes : int
    input_shape : (channels, height, width), default=(1, 8, 8)
    channels : sequence of int, default=(6, 16)
    hidden : sequence of int, default=(120, 84)
    kernel_size : int, default=3
    padding : int or None, default=None (``kernel_size // 2``, "same")
    activation : "relu", "lma" or callable, default="relu"
    dropout : float, default=0.0 (before each hidden Linear)
    """

    def __init__(
        self,
        in_features=None,
        n_classes=10,
        *,
        input_shape=(1, 8, 8),
        channels=(6, 16),
        hidden=(120, 84),
        kernel_size=3,
        padding=None,
        activation="relu",
        dropout=0.0,
    ):
        _check_in_features(in_features, input_shape, "LeNet")
        padding = kernel_size // 2 if padding is None else int(padding)
        layers = [Reshape(input_shape)]
        c_prev, h, w = input_shape
        for c in channels:
            layers += [nn.Conv2d(c_prev, int(c), kernel_size, padding=padding), make_activation(activation, int(c))]
            h, w = h + 2 * padding - kernel_size + 1, w + 2 * padding - kernel_size + 1
            if min(h, w) >= 2:
                layers.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            if min(h, w) < 1:
                raise ValueError(
                    f"LeNet: input_shape={tuple(input_shape)} is too small for {len(channels)} "
                    f"convolutions of kernel {kernel_size} with padding {padding}"
                )
            c_prev = int(c)
        layers.append(nn.Flatten())
        prev = c_prev * h * w
        for units in hidden:
            if dropout:
                layers.append(nn.Dropout(dropout))
            layers += [nn.Linear(prev, int(units)), make_activation(activation, int(units))]
            prev = int(units)
        layers.append(nn.Linear(prev, int(n_classes)))
        super().__init__(*layers)


class SmallCNN(nn.Sequential):
    """A small VGG-style CNN teacher with dropout (so MC dropout has something to sample).

    ``[Conv, BN, ReLU, Conv, BN, ReLU, MaxPool]`` twice (widths ``width`` and
    ``2 * width``), then ``Dropout, Linear(head), ReLU, Dropout, Linear``.
    """

    def __init__(self, in_features=None, n_classes=10, *, input_shape=(1, 8, 8), width=32, head=128, dropout=0.3):
        _check_in_features(in_features, input_shape, "SmallCNN")
        c, h, w = input_shape
        layers = [Reshape(input_shape)]
        for out in (width, 2 * width):
            layers += [
                nn.Conv2d(c, out, 3, padding=1, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(),
                nn.Conv2d(out, out, 3, padding=1, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(),
            ]
            if min(h, w) >= 2:
                layers.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            c = out
        layers += [
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(c * h * w, head),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(head, n_classes),
        ]
        super().__init__(*layers)


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convolutions with batch norm and an identity (or 1x1) shortcut."""

    expansion = 1

    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = nn.ReLU()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 for 32x32 images (CIFAR-10): 3x3 stem, four stages of two basic blocks.

    Parameters
    ----------
    in_features : int or None
        Checked against ``input_shape`` when given.
    n_classes : int, default=10
    input_shape : tuple, default=(3, 32, 32)
    width : int, default=64
        Channels of the first stage (64, 128, 256, 512 at the default);
        smaller widths make quick tests possible.
    """

    def __init__(self, in_features=None, n_classes=10, *, input_shape=(3, 32, 32), width=64):
        super().__init__()
        _check_in_features(in_features, input_shape, "ResNet18")
        self.reshape = Reshape(input_shape)
        self.stem = nn.Sequential(
            nn.Conv2d(input_shape[0], width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        stages, planes = [], width
        in_planes = width
        for i, stride in enumerate((1, 2, 2, 2)):
            planes = width * 2**i
            stages.append(nn.Sequential(BasicBlock(in_planes, planes, stride), BasicBlock(planes, planes, 1)))
            in_planes = planes
        self.layers = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(in_planes, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.stem(self.reshape(x)))
        return self.fc(self.flatten(self.pool(x)))
