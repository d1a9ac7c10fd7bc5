"""Shared fixtures of the test suite."""
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

