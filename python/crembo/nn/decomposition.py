"""Interpolative decomposition of a layer's activations, and its folding.

The maths of :mod:`crembo.nn.prune` (Chee, Renz, Damle and De Sa, *Model
Preserving Compression for Neural Networks*, NeurIPS 2022), apart from any
network: a matrix ``Z`` (``n x h``, a layer's activations on a calibration
set) is approximated by a few of its own columns, ``Z ~ Z[:, J] @ T``
(:func:`interpolative_decomposition`), and the layer that reads ``Z`` gets
the weights that read ``Z[:, J]`` instead (:func:`fold_interpolation`).

The decomposition is the column-pivoted QR ``Z P = Q R``. The rows of all
calibration batches are never held at once: each batch is folded into a
small triangular factor ``R0`` with ``Z^T Z = R0^T R0`` (a TSQR,
:class:`_RowFactor`), and the pivoted QR of ``R0`` has the same pivots and
``|R|`` as that of ``Z``. Sizes from a tolerance: keep the ``k`` pivots
with ``|R_ii| > tolerance * |R_11|`` (at least one).
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import TYPE_CHECKING

import numpy as np
import scipy.linalg
import torch
from torch import nn

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["InterpolativeDecomposition", "interpolative_decomposition", "fold_interpolation"]


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
    def rank(self) -> int:
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


def interpolative_decomposition(
    Z: ArrayLike | torch.Tensor, rank: int | None = None, *, tolerance: float | None = None
) -> InterpolativeDecomposition:
    """Column interpolative decomposition ``Z ~ Z[:, J] @ T`` by column-pivoted QR.

    Parameters
    ----------
    Z : array-like or tensor of shape (n, h)
    rank : int, default=None
        Number ``k`` of columns to keep.
    tolerance : float, default=None
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

    def update(self, rows: torch.Tensor) -> None:
        rows = rows.detach().to("cpu", torch.float64).numpy()
        if not np.all(np.isfinite(rows)):
            raise ValueError("calibration activations have non-finite values (NaN or inf)")
        self.n += rows.shape[0]
        self.total += rows.sum(axis=0)
        block = np.vstack([self.R, np.hstack([np.ones((rows.shape[0], 1)), rows])])
        self.R = np.linalg.qr(block, mode="r")

    def factor(self, center: bool = False) -> np.ndarray:
        return self.R[1:, 1:] if center else self.R[:, 1:]

    @property
    def mean(self) -> np.ndarray:
        return self.total / max(self.n, 1)


def _new_param(old, value):
    return nn.Parameter(value.to(dtype=old.dtype, device=old.device).contiguous(), requires_grad=old.requires_grad)


@torch.no_grad()
def fold_interpolation(
    consumer: nn.Module, T: ArrayLike | torch.Tensor, offset: ArrayLike | torch.Tensor | None = None
) -> nn.Module:
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
    offset : array-like of shape (C,), default=None
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


def _can_center(consumer):
    if isinstance(consumer, nn.Linear):
        return True
    padding = consumer.padding
    return padding == "valid" or (not isinstance(padding, str) and not any(padding))
