"""Shared fixtures of the test suite."""

import sys

import numpy as np
import pytest

from crembo import _core


@pytest.fixture
def rng():
    return np.random.default_rng(20210314)


@pytest.fixture
def restore_threads():
    """Put the native thread count back to its default after the test."""
    yield
    _core.set_num_threads(0)


@pytest.fixture(autouse=True)
def torch_one_thread(request):
    """The network tests (test_nn_*) run torch on one thread: their models are
    tiny, and threads would only add contention with crembo's own."""
    if request.module.__name__.rpartition(".")[2].startswith("test_nn_") and "torch" in sys.modules:
        import torch

        n = torch.get_num_threads()
        torch.set_num_threads(1)
        yield
        torch.set_num_threads(n)
    else:
        yield
