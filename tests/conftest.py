"""Shared fixtures of the test suite."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from crembo import _core
from crembo.evaluation.datasets import DATA_DIR_ENV

# The UCI data sets of the reference protocol: crembo reads them from its data
# home (data_dir, then CREMBO_DATA_DIR, then ~/crembo_data) and never searches
# for them. In a checkout they sit next to the repository, in ../shared/data:
# point the variable there unless it is set already (tests that need the
# files skip when they are absent).
_SIBLING_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if not os.environ.get(DATA_DIR_ENV, "").strip() and _SIBLING_DATA.is_dir():
    os.environ[DATA_DIR_ENV] = str(_SIBLING_DATA)


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
