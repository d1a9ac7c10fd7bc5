"""Data helpers: digits as images, the CIFAR-10 pickle loader (on a fake batch), augmentation."""

import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from crembo.nn import load_cifar10, load_digits_images, random_crop_flip  # noqa: E402
from crembo.nn.data import CIFAR10_MEAN, CIFAR10_STD, read_cifar_batch  # noqa: E402


def _write_batch(path, n, seed, bytes_keys=True):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n).tolist()
    k = (lambda s: s.encode()) if bytes_keys else (lambda s: s)
    with open(path, "wb") as f:
        pickle.dump(
            {
                k("batch_label"): k("fake"),
                k("data"): data,
                k("labels"): labels,
                k("filenames"): [k(f"img{i}.png") for i in range(n)],
            },
            f,
        )
    return data, np.asarray(labels)


def test_digits_images():
    X, y = load_digits_images()
    assert X.shape == (1797, 64) and X.dtype == np.float32 and 0 <= X.min() and X.max() <= 1
    Xi, yi = load_digits_images(flatten=False)
    assert Xi.shape == (1797, 1, 8, 8) and np.array_equal(Xi.reshape(1797, -1), X) and np.array_equal(y, yi)


def test_cifar_loader_on_fake_batches(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    d1, l1 = _write_batch(root / "data_batch_1", 7, 0)
    d2, l2 = _write_batch(root / "data_batch_2", 5, 1, bytes_keys=False)
    dt, lt = _write_batch(root / "test_batch", 4, 2)
    with open(root / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [f"class{i}".encode() for i in range(10)], b"num_vis": 3072}, f)
    for where in (tmp_path, root):  # the folder itself or its parent
        data = load_cifar10(where, normalize=False)
        assert data["X_train"].shape == (12, 3, 32, 32) and data["X_test"].shape == (4, 3, 32, 32)
        assert np.array_equal(data["y_train"], np.concatenate([l1, l2])) and np.array_equal(data["y_test"], lt)
        # Row layout of the pickles: 1024 red, then green, then blue values, each row-major.
        assert data["X_train"][0, 1, 2, 3] == pytest.approx(d1[0, 1024 + 2 * 32 + 3] / 255.0)
        assert data["X_train"][8, 2, 31, 0] == pytest.approx(d2[1, 2048 + 31 * 32] / 255.0)
        assert data["label_names"][3] == "class3"
    norm = load_cifar10(root, flatten=True, limit=3)
    assert norm["X_train"].shape == (3, 3072) and norm["X_test"].shape == (3, 3072)
    want = (d1[0, 5] / 255.0 - CIFAR10_MEAN[0]) / CIFAR10_STD[0]
    assert norm["X_train"][0, 5] == pytest.approx(want, rel=1e-5)
    imgs, labels = read_cifar_batch(root / "test_batch")
    assert imgs.dtype == np.uint8 and imgs.shape == (4, 3, 32, 32) and np.array_equal(labels, lt)


def test_cifar_loader_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="data_batch_1"):
        load_cifar10(tmp_path)
    with open(tmp_path / "data_batch_1", "wb") as f:
        pickle.dump({b"something": 1}, f)
    with pytest.raises(ValueError, match="not a CIFAR batch"):
        load_cifar10(tmp_path)


def test_random_crop_flip():
    torch.manual_seed(0)
    x = torch.rand(16, 3, 32, 32)
    out = random_crop_flip(x, padding=4)
    assert out.shape == x.shape
    # No padding: each image is itself or its mirror image.
    same = random_crop_flip(x, padding=0)
    for a, b in zip(same, x):
        assert torch.equal(a, b) or torch.equal(a, b.flip(-1))
    # Padding: each image is a 32x32 window of the zero-padded input, possibly mirrored.
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    shifts = set()
    for a, p in zip(out, padded):
        hits = [
            (dy, dx)
            for dy in range(9)
            for dx in range(9)
            if torch.equal(a, p[:, dy : dy + 32, dx : dx + 32])
            or torch.equal(a.flip(-1), p[:, dy : dy + 32, dx : dx + 32])
        ]
        assert hits
        shifts.add(hits[0])
    assert len(shifts) > 1  # random, not one fixed window
    flat = random_crop_flip(x.reshape(16, -1), padding=4)
    assert flat.shape == (16, 3072)
