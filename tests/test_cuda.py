"""The CUDA kernels give the CPU results (skipped without a CUDA build and device)."""

import numpy as np
import pytest

import crembo
import reference as ref
from crembo import _core
from reference import random_beliefs

pytestmark = pytest.mark.skipif(
    not crembo.cuda_available(),
    reason=("crembo was built without CUDA kernels" if not _core.cuda_built else "no CUDA device is available"),
)

DTYPES = [np.float64, np.float32]
SIZES = [1, 7, 1000, 300_001]  # the last one spans many thread blocks


@pytest.fixture(scope="module", params=SIZES, ids=lambda n: f"n={n}")
def case(request):
    n = request.param
    rng = np.random.default_rng(n)
    P = random_beliefs(rng, n, 5, kind="votes" if n % 2 else "dirichlet", n_votes=9)
    pred = rng.integers(0, 5, size=n).astype(np.int32)
    votes = rng.integers(0, 5, size=(9, n)).astype(np.int32)
    return P, pred, votes


def test_device_name():
    assert isinstance(_core.cuda_device_name(), str) and _core.cuda_device_name()


@pytest.mark.parametrize("dtype", DTYPES)
def test_beliefs_from_votes(case, dtype):
    _, _, votes = case
    cpu = crembo.beliefs_from_votes(votes, 5, dtype=dtype)
    gpu = crembo.beliefs_from_votes(votes, 5, dtype=dtype, device="cuda")
    assert gpu.dtype == dtype
    np.testing.assert_array_equal(gpu, cpu)
    np.testing.assert_array_equal(gpu, ref.beliefs_from_votes(votes, 5, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [1, 2, 100, 400])  # 400 classes: counts no longer fit shared memory
def test_beliefs_from_votes_many_classes(C, dtype):
    votes = np.random.default_rng(C).integers(0, C, size=(11, 5000))
    gpu = crembo.beliefs_from_votes(votes, C, dtype=dtype, device="cuda")
    np.testing.assert_array_equal(gpu, crembo.beliefs_from_votes(votes, C, dtype=dtype))
    pred = votes[0].astype(np.int32)
    assert crembo.depth(gpu, pred, device="cuda") == crembo.depth(gpu, pred)
    assert crembo.max_achievable_depth(gpu, device="cuda") == crembo.max_achievable_depth(gpu)


@pytest.mark.parametrize("dtype", DTYPES)
def test_point_depth(case, dtype):
    P, pred, _ = case
    P = P.astype(dtype)
    gpu = crembo.point_depth(P, pred, device="cuda")
    assert gpu.dtype == dtype
    np.testing.assert_array_equal(gpu, crembo.point_depth(P, pred))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("delta", [0.0, 0.01, 0.3, 0.999])
def test_depth(case, dtype, delta):
    P, pred, _ = case
    P = P.astype(dtype)
    want = crembo.depth(P, pred, delta=delta)
    assert crembo.depth(P, pred, delta=delta, device="cuda") == want
    assert want == float(ref.empirical_depth(P, pred, delta))
    # The row argmax attains the achievable depth on the GPU as well.
    arg = ref.row_argmax(P)[0]
    assert crembo.depth(P, arg, device="cuda") == crembo.max_achievable_depth(P)


@pytest.mark.parametrize("dtype", DTYPES)
def test_allowed_labels_and_count_violations(case, dtype):
    P, pred, _ = case
    P = P.astype(dtype)
    thresholds = [0.0, float(P[0, pred[0]]), float(np.median(P)), 1 / 3, 0.5, 1.0, 1.5]
    for t in thresholds:
        gpu = crembo.allowed_labels(P, t, device="cuda")
        assert gpu.dtype == bool
        np.testing.assert_array_equal(gpu, crembo.allowed_labels(P, t))
        assert crembo.count_violations(P, pred, t, device="cuda") == crembo.count_violations(P, pred, t)
        assert crembo.is_consistent(P, pred, t, delta=0.2, device="cuda") == crembo.is_consistent(P, pred, t, delta=0.2)


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_achievable_depth(case, dtype):
    P, _, _ = case
    P = P.astype(dtype)
    assert crembo.max_achievable_depth(P, device="cuda") == crembo.max_achievable_depth(P)


def test_depth_profile(case):
    P, pred, _ = case
    t_gpu, f_gpu = crembo.depth_profile(P, pred, device="cuda")
    t_cpu, f_cpu = crembo.depth_profile(P, pred)
    np.testing.assert_array_equal(t_gpu, t_cpu)
    np.testing.assert_array_equal(f_gpu, f_cpu)


def test_cuda_kernels_validate_labels():
    P = np.array([[0.2, 0.8], [0.5, 0.5]])
    with pytest.raises(ValueError, match=r"pred\[1\] = 2"):
        _core.cuda_point_depth(P, np.array([0, 2], np.int32))
    with pytest.raises(ValueError, match=r"pred\[0\] = -1"):
        _core.cuda_count_violations(P, np.array([-1, 0], np.int32), 0.5)
    with pytest.raises(ValueError, match=r"votes\[0, 1\] = 4"):
        _core.cuda_beliefs_from_votes(np.array([[0, 4]], np.int32), 2, False)
    with pytest.raises(ValueError, match="delta"):
        _core.cuda_empirical_depth(P, np.array([0, 1], np.int32), 1.0)
