#!/usr/bin/env bash
# One-shot GPU check, for a machine with an NVIDIA GPU and the CUDA toolkit
# (nvcc). In its own venv (.venv-gpu) and build folder (build/gpu-check):
#
#   1. builds crembo with CREMBO_CUDA=ON (for the GPU present:
#      CMAKE_CUDA_ARCHITECTURES=native);
#   2. runs tests/test_cuda.py and the CUDA self-test (crembo_cuda_selftest);
#   3. runs the kernel benchmark on device memory at 10^8 belief entries
#      (crembo_cuda_bench: GB/s against the device's own copy bandwidth);
#   4. runs CREMBO end to end with device="cuda" (and "cpu", to compare);
#
# then prints one summary. Budget: under 8 minutes. Exits 2 with a message
# when no GPU is visible, 1 when a step fails, 0 when all pass.
#
# Usage: bash bench/gpu_check.sh [--entries 1e8]
#   PYTHON=python3.X   interpreter for the venv (default python3)
#   CUDACXX=...        the CUDA compiler, when nvcc is not on PATH
set -uo pipefail
cd "$(dirname "$0")/.."
entries=1e8
if [ "${1:-}" = "--entries" ] && [ -n "${2:-}" ]; then entries=$2; fi
py=${PYTHON:-python3}
build=build/gpu-check
log=$build/logs
t0=$SECONDS

die() { echo "gpu_check: $1" >&2; exit "${2:-1}"; }
elapsed() { echo "$((SECONDS - t0)) s"; }

# ------------------------------------------------------------ a GPU at all?
if ! command -v nvidia-smi >/dev/null 2>&1; then
  die "no NVIDIA GPU: nvidia-smi is not installed. This check needs a machine with an NVIDIA GPU \
(without one, the CUDA tests skip and CREMBO_CUDA=AUTO builds no kernels)." 2
fi
if ! gpus=$(nvidia-smi -L 2>&1) || ! grep -q "GPU" <<<"$gpus"; then
  die "no NVIDIA GPU: nvidia-smi -L lists none ($gpus)" 2
fi
gpu=$(head -1 <<<"$gpus")
if [ -z "${CUDACXX:-}" ] && ! command -v nvcc >/dev/null 2>&1; then
  for c in /usr/local/cuda/bin/nvcc; do [ -x "$c" ] && export CUDACXX=$c; done
  [ -n "${CUDACXX:-}" ] || die "a GPU is present but no CUDA compiler: put nvcc on PATH or set CUDACXX"
fi
mkdir -p "$log"
echo "gpu_check: $gpu"

declare -A result
status=0
record() {  # record NAME RC TEXT
  if [ "$2" = 0 ]; then result[$1]="PASS  $3"; else result[$1]="FAIL  $3"; status=1; fi
}

# ------------------------------------------------------------ 1. build
echo "== [$(elapsed)] build with CREMBO_CUDA=ON (log: $log/build.log)"
start=$SECONDS
{
  [ -x .venv-gpu/bin/python ] || "$py" -m venv .venv-gpu
  .venv-gpu/bin/pip install -q --upgrade pip
  .venv-gpu/bin/pip install -q scikit-build-core pybind11 ninja cmake
  CREMBO_CUDA=ON .venv-gpu/bin/pip install -v ".[test]" --no-build-isolation \
    -Cbuild-dir="$build" -Ccmake.define.CMAKE_CUDA_ARCHITECTURES=native
} >"$log/build.log" 2>&1
rc=$?
record build $rc "built in $((SECONDS - start)) s"
[ $rc = 0 ] || { tail -30 "$log/build.log"; die "the CUDA build failed (see $log/build.log)"; }
py_gpu=.venv-gpu/bin/python
"$py_gpu" -c "import crembo, sys; sys.exit(0 if crembo._core.cuda_built and crembo.cuda_available() else 1)" \
  || die "crembo was built but reports cuda_built=$("$py_gpu" -c 'import crembo; print(crembo._core.cuda_built)'), \
cuda_available=$("$py_gpu" -c 'import crembo; print(crembo.cuda_available())')"

# ------------------------------------------------------------ 2. tests, self-test
echo "== [$(elapsed)] tests/test_cuda.py"
"$py_gpu" -m pytest -q -p no:cacheprovider tests/test_cuda.py >"$log/test_cuda.log" 2>&1
rc=$?
record test_cuda $rc "$(tail -1 "$log/test_cuda.log")"
if grep -q "skipped" <<<"$(tail -1 "$log/test_cuda.log")" && ! grep -q "passed" <<<"$(tail -1 "$log/test_cuda.log")"; then
  record test_cuda 1 "all skipped: $(tail -1 "$log/test_cuda.log")"
fi

echo "== [$(elapsed)] CUDA self-test and kernel benchmark build"
cmake --build "$build" --target crembo_cuda_selftest crembo_cuda_bench >"$log/targets.log" 2>&1
rc=$?
if [ $rc = 0 ]; then
  "$build/crembo_cuda_selftest" >"$log/selftest.log" 2>&1
  rc=$?
  record selftest $rc "$(grep -c '^PASS' "$log/selftest.log") functions PASS, $(grep -c '^FAIL' "$log/selftest.log") FAIL"
else
  record selftest $rc "the targets did not build (see $log/targets.log)"
fi

# ------------------------------------------------------------ 3. kernel benchmark
echo "== [$(elapsed)] kernel benchmark on device memory, $entries belief entries"
if [ -x "$build/crembo_cuda_bench" ]; then
  "$build/crembo_cuda_bench" --entries "$entries" >"$log/bench.log" 2>&1
  rc=$?
  record bench $rc "$(grep -c '^| [0-9]' "$log/bench.log") kernel rows (table below)"
else
  record bench 1 "crembo_cuda_bench was not built"
fi

# ------------------------------------------------------------ 4. CREMBO end to end
echo "== [$(elapsed)] CREMBO end to end, device=\"cuda\" and \"cpu\""
"$py_gpu" - >"$log/crembo.log" 2>&1 <<'PY'
import time

from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier

import crembo

X, y = make_classification(n_samples=60000, n_features=20, n_informative=10, n_classes=4, random_state=0)
Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0)
teacher = RandomForestClassifier(n_estimators=100, max_depth=12, n_jobs=-1, random_state=0).fit(Xtr, ytr)
out = {}
for device in ("cuda", "cpu"):
    t = time.perf_counter()
    model = crembo.CREMBOClassifier(teacher, DecisionTreeClassifier(max_depth=4), device=device,
                                    random_state=0).fit(Xtr, ytr)
    out[device] = (time.perf_counter() - t, model.threshold_, model.depth_, model.score(Xte, yte))
    print(f"{device}: fit {out[device][0]:.1f} s, threshold {out[device][1]:.4f}, depth {out[device][2]:.4f}, "
          f"test accuracy {out[device][3]:.4f}")
same = out["cuda"][1:] == out["cpu"][1:]
print(f"RESULT cuda fit {out['cuda'][0]:.1f} s (cpu {out['cpu'][0]:.1f} s), test accuracy {out['cuda'][3]:.4f}, "
      f"same threshold/depth/accuracy as cpu: {same}")
raise SystemExit(0 if same else 1)
PY
rc=$?
record crembo $rc "$(grep '^RESULT' "$log/crembo.log" | cut -c8- || tail -1 "$log/crembo.log")"

# ------------------------------------------------------------ summary
echo
echo "================ gpu_check summary ($gpu; $(elapsed) in all; logs in $log)"
for k in build test_cuda selftest bench crembo; do printf '%-10s %s\n' "$k" "${result[$k]:-not run}"; done
if [ -s "$log/bench.log" ]; then echo; cat "$log/bench.log"; fi
if [ "$status" = 0 ]; then echo "gpu_check: all passed"; else echo "gpu_check: FAILED (see the logs)"; fi
exit "$status"
