"""Image data for the network benchmarks.

* :func:`load_digits_images`: scikit-learn's 8x8 digits scaled to [0, 1].
* :func:`load_cifar10`: the standard CIFAR-10 "python version" pickle
  batches (``data_batch_1`` .. ``data_batch_5``, ``test_batch``,
  ``batches.meta``) from a folder the user already has; nothing is
  downloaded.
* :func:`random_crop_flip`: the usual CIFAR augmentation, on a batch tensor.
"""

from __future__ import annotations

import os
import pickle
from typing import Any

import numpy as np
import torch

__all__ = ["load_digits_images", "load_cifar10", "read_cifar_batch", "random_crop_flip", "CIFAR10_MEAN", "CIFAR10_STD"]

#: Per-channel mean and standard deviation of the CIFAR-10 training images (in [0, 1]).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


def load_digits_images(flatten: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The digits data set (1797 images, 10 classes) with pixels in [0, 1].

    Returns
    -------
    X : float32 array of shape (1797, 64), or (1797, 1, 8, 8) with ``flatten=False``
    y : int64 array of shape (1797,)
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    X = (d.data / 16.0).astype(np.float32)
    if not flatten:
        X = X.reshape(-1, 1, 8, 8)
    return X, d.target.astype(np.int64)


def _find_batches_dir(data_dir):
    for cand in (data_dir, os.path.join(data_dir, "cifar-10-batches-py")):
        if os.path.isfile(os.path.join(cand, "data_batch_1")) or os.path.isfile(os.path.join(cand, "test_batch")):
            return cand
    raise FileNotFoundError(
        f"CIFAR-10: no 'data_batch_1' or 'test_batch' in {data_dir!r} (or its 'cifar-10-batches-py' folder). "
        "Download the python version from https://www.cs.toronto.edu/~kriz/cifar.html and extract it there."
    )


def read_cifar_batch(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR pickle batch: ``(images uint8 (N, 3, 32, 32), labels int64 (N,))``."""
    with open(path, "rb") as f:
        d = pickle.load(f, encoding="bytes")
    d = {(k.decode() if isinstance(k, bytes) else k): v for k, v in d.items()}
    if "data" not in d or ("labels" not in d and "fine_labels" not in d):
        raise ValueError(f"{path}: not a CIFAR batch (keys {sorted(d)})")
    data = np.asarray(d["data"], dtype=np.uint8)
    labels = np.asarray(d.get("labels", d.get("fine_labels")), dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
        raise ValueError(
            f"{path}: expected data of shape (N, 3072) and N labels, got {data.shape} and {len(labels)} labels"
        )
    return data.reshape(-1, 3, 32, 32), labels


def load_cifar10(
    data_dir: str | os.PathLike[str], *, normalize: bool = True, flatten: bool = False, limit: int | None = None
) -> dict[str, Any]:
    """CIFAR-10 from the standard python pickle batches in ``data_dir``.

    Parameters
    ----------
    data_dir : str
        The folder holding ``data_batch_1`` .. ``data_batch_5`` and
        ``test_batch`` (or its parent with ``cifar-10-batches-py``). Missing
        training batches are skipped; at least one file must be there.
    normalize : bool, default=True
        Standardize each channel with :data:`CIFAR10_MEAN` / :data:`CIFAR10_STD`
        (else pixels are in [0, 1]).
    flatten : bool, default=False
        Rows of 3072 values (what scikit-learn-style estimators take) instead of (3, 32, 32) images.
    limit : int or None
        Keep only the first ``limit`` rows of the training and of the test part.

    Returns
    -------
    dict with X_train, y_train, X_test, y_test (float32 / int64 arrays) and
    label_names (from ``batches.meta`` when present, else "0" .. "9").
    """
    root = _find_batches_dir(os.fspath(data_dir))
    parts = {"train": [], "test": []}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        path = os.path.join(root, name)
        if os.path.isfile(path):
            parts["test" if name == "test_batch" else "train"].append(read_cifar_batch(path))
    out = {}
    for split, batches in parts.items():
        if batches:
            X = np.concatenate([b[0] for b in batches]).astype(np.float32) / 255.0
            y = np.concatenate([b[1] for b in batches])
        else:
            X, y = np.zeros((0, 3, 32, 32), np.float32), np.zeros(0, np.int64)
        if limit is not None:
            X, y = X[:limit], y[:limit]
        if normalize:
            X = (X - np.asarray(CIFAR10_MEAN, np.float32)[:, None, None]) / np.asarray(CIFAR10_STD, np.float32)[
                :, None, None
            ]
        out[f"X_{split}"] = X.reshape(len(X), -1) if flatten else X
        out[f"y_{split}"] = y
    names = [str(i) for i in range(10)]
    meta = os.path.join(root, "batches.meta")
    if os.path.isfile(meta):
        with open(meta, "rb") as f:
            m = pickle.load(f, encoding="bytes")
        raw = m.get(b"label_names", m.get("label_names"))
        if raw is not None:
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in raw]
    out["label_names"] = names
    return out


def random_crop_flip(x: torch.Tensor, padding: int = 4, shape: tuple[int, ...] = (3, 32, 32)) -> torch.Tensor:
    """Random crop after zero padding and random horizontal flip, per image, on a batch tensor.

    Flat rows are reshaped to ``shape`` and returned flat.
    """
    flat = x.dim() == 2
    img = x.reshape(x.shape[0], *shape) if flat else x
    n, _, h, w = img.shape
    padded = torch.nn.functional.pad(img, (padding, padding, padding, padding))
    dy = torch.randint(0, 2 * padding + 1, (n,), device=x.device)
    dx = torch.randint(0, 2 * padding + 1, (n,), device=x.device)
    rows = dy[:, None] + torch.arange(h, device=x.device)[None, :]  # (n, h)
    cols = dx[:, None] + torch.arange(w, device=x.device)[None, :]  # (n, w)
    flip = torch.rand(n, device=x.device) < 0.5
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    idx_n = torch.arange(n, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[idx_n, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    return out.reshape(x.shape) if flat else out.contiguous()
