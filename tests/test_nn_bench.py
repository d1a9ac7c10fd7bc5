"""The network benchmark's command line runs end to end (CIFAR path on fake pickle batches)."""

import importlib.util
import json
import os
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench", "bench_nets.py")


def _load_bench():
    spec = importlib.util.spec_from_file_location("bench_nets", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _fake_cifar(root, n_train, n_test):
    rng = np.random.default_rng(0)
    for name, n in (("data_batch_1", n_train), ("test_batch", n_test)):
        labels = np.arange(n) % 10
        # Class-dependent brightness so that there is something to learn.
        data = np.clip(rng.normal(20 * labels[:, None] + 30, 20, size=(n, 3072)), 0, 255).astype(np.uint8)
        with open(root / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": labels.tolist()}, f)


def test_cifar_command_runs_on_fake_batches(tmp_path):
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _fake_cifar(tmp_path, 60, 20)
        bench = _load_bench()
        summary = bench.main(
            [
                "cifar",
                "--data-dir",
                str(tmp_path),
                "--folds",
                "2",
                "--teacher-epochs",
                "1",
                "--student-epochs",
                "1",
                "--teacher-width",
                "4",
                "--n-thresholds",
                "2",
                "--search-subsample",
                "20",
                "--jobs",
                "1",
                "--device",
                "cpu",
                "--no-plot",
                "--out-dir",
                str(tmp_path / "out"),
            ]
        )
    finally:
        torch.set_num_threads(n)
    assert set(summary["LeNet-5"]) == set(bench.METHODS)
    for _method, s in summary["LeNet-5"].items():
        assert 0 <= s["acc_mean"] <= 1 and 0 <= s["agreement"] <= 1 and len(s["accs"]) == 2
    saved = json.loads((tmp_path / "out" / "nets_cifar.json").read_text())
    assert saved["meta"]["config"]["teacher"][0] == "ResNet18"
    assert (tmp_path / "out" / "nets_cifar.md").read_text().count("| LeNet-5 |") == 1
