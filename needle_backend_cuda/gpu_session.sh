#!/usr/bin/env bash
# Everything GPU_CHECKLIST.md asks for, as named stages, for a machine with an
# NVIDIA GPU, nvcc and Python 3.12 but no package index. Run from the repository
# root with needle_backend_cuda/wheelhouse present (see GPU_CHECKLIST.md §1):
#
#   bash needle_backend_cuda/gpu_session.sh setup probe unit suite
#   bash needle_backend_cuda/gpu_session.sh setup devtests slow bench sanitize
#
# `setup` must come first in every call on a fresh machine: it makes the venv
# /tmp/needle-venv that later stages use (~30 s once a pycuda wheel is in the
# wheelhouse; the first time it builds one, a few minutes, and leaves it in $OUT
# to copy into the wheelhouse). Each stage runs
# under a time limit, appends to $OUT/log.txt and adds a line to
# $OUT/summary.txt, so a call killed at its limit still returns what finished.
# A failing stage does not stop the next; the exit status is the number of
# stages that failed.
set -u
ROOT=$(pwd)
WHEELS=$ROOT/needle_backend_cuda/wheelhouse
OUT=${OUT:-/tmp/needle-gpu-out}
VENV=/tmp/needle-venv
STAGE_LIMIT=${STAGE_LIMIT:-540}
mkdir -p "$OUT"
LOG=$OUT/log.txt
SUMMARY=$OUT/summary.txt
export PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# pycuda's setup derives CUDA_ROOT from nvcc's folder: the toolkit's own bin first
for d in /usr/local/cuda/bin /usr/local/cuda-*/bin; do [ -x "$d/nvcc" ] && PATH=$d:$PATH && break; done
export PATH

pip_offline() { python -m pip install -q --no-index --find-links "$WHEELS" "$@"; }

stage_setup() {
    [ -x $VENV/bin/python ] || python3 -m venv --system-site-packages $VENV || return 1
    . $VENV/bin/activate
    if ! ls "$WHEELS"/pycuda-*.whl >/dev/null 2>&1; then
        echo "building a pycuda wheel from the sdist (once; copy $OUT/pycuda-*.whl into the wheelhouse)"
        # pycuda's build reads ~/.aksetup-defaults.py: name the toolkit, skip cuRAND
        # (needle does not use it; minimal toolkits lack its headers)
        local home=/tmp/pycuda-build-home cuda_root libdirs link=/tmp/pycuda-build-home/lib
        cuda_root=$(dirname "$(dirname "$(command -v nvcc)")")
        libdirs="'$cuda_root/lib64', '$cuda_root/lib64/stubs', '$cuda_root/lib/stubs'"
        # -lcuda needs an unversioned libcuda.so: the toolkit's stub, else the driver's .so.1
        if ! ls "$cuda_root"/lib64/libcuda.so "$cuda_root"/lib64/stubs/libcuda.so "$cuda_root"/lib/stubs/libcuda.so >/dev/null 2>&1; then
            local so1
            so1=$(ldconfig -p | awk '/libcuda\.so\.1 /{print $NF; exit}')
            [ -n "$so1" ] || so1=$(find / -xdev -name 'libcuda.so*' 2>/dev/null | head -n 1)
            [ -n "$so1" ] || { echo "no libcuda.so anywhere: is the NVIDIA driver installed?"; return 1; }
            mkdir -p $link && ln -sf "$so1" $link/libcuda.so && libdirs="$libdirs, '$link'"
        fi
        mkdir -p $home && printf 'CUDA_ROOT = "%s"\nCUDA_ENABLE_CURAND = False\nCUDADRV_LIB_DIR = [%s]\n' \
            "$cuda_root" "$libdirs" >$home/.aksetup-defaults.py
        HOME=$home python -m pip wheel -q --no-deps --no-index --find-links "$WHEELS" pycuda -w "$OUT" || return 1
        cp "$OUT"/pycuda-*.whl "$WHEELS"/
    fi
    pip_offline './needle_core[testing]' ./needle_backend_numpy ./needle_nn './needle_backend_cuda[pycuda]' || return 1
    # the C++ backend too (transfers cpu <-> cuda); optional: its absence skips those tests
    NEEDLE_CPU_PORTABLE=1 pip_offline ./needle_backend_cpu || echo "needle_backend_cpu did not build: cpu transfer tests will skip"
    python -c "import pycuda.driver as d; d.init(); print('pycuda', d.VERSION, 'driver', d.get_driver_version(), d.Device(0).name())"
}

stage_probe() {
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
    python -c "import torch; print('torch', torch.__version__, torch.cuda.is_available())" || echo "no PyTorch: the bench has no baseline"
    python -m needle devices || return 1
    python -m needle_backend_cuda.compile_check
}

PYTEST=(python -m pytest -q -p no:cacheprovider -o addopts= -rfEs)  # addopts= drops pytest.ini's -m "not slow"
stage_unit() {
    NEEDLE_REQUIRE_DEVICES=cuda "${PYTEST[@]}" needle_backend_cuda/tests  # the backend's own tests (test_cuda_*.py)
}
stage_suite() { NEEDLE_REQUIRE_DEVICES=cuda "${PYTEST[@]}" --pyargs needle.testing --needle-device cuda; }
stage_devtests() {
    NEEDLE_REQUIRE_DEVICES=cuda "${PYTEST[@]}" -m "not slow" --pyargs needle_nn.testing --needle-device cuda
}
stage_slow() { NEEDLE_REQUIRE_DEVICES=cuda NEEDLE_TEST_DEVICES=cuda "${PYTEST[@]}" -m slow tests; }
stage_bench() { python bench/run.py -m cuda -m training -m cnn -o "$OUT/bench.txt"; }
stage_sanitize() {
    local rc=0 tool
    for tool in memcheck racecheck synccheck; do
        compute-sanitizer --tool $tool --error-exitcode 9 "${PYTEST[@]}" needle_backend_cuda/tests/test_cuda_kernels.py -k gpu || rc=1
    done
    return $rc
}

if [ "${1:-}" = --one ]; then  # one stage, in a child process run under `timeout`
    [ -x $VENV/bin/python ] && . $VENV/bin/activate
    "stage_$2"
    exit $?
fi

failed=0
for stage in "$@"; do
    if ! declare -F "stage_$stage" >/dev/null; then
        echo "unknown stage '$stage' (setup probe unit suite devtests slow bench sanitize)" | tee -a "$SUMMARY"
        failed=$((failed + 1)); continue
    fi
    echo "===== $stage $(date -u +%T)" | tee -a "$LOG"
    start=$SECONDS
    timeout "$STAGE_LIMIT" bash "$0" --one "$stage" >>"$LOG" 2>&1
    rc=$?
    [ $rc -eq 0 ] || failed=$((failed + 1))
    echo "$stage rc=$rc $((SECONDS - start))s" | tee -a "$SUMMARY"
    tail -n 30 "$LOG" | grep -E "passed|failed|rror|FAIL|GFLOP|GB/s" | tail -n 6
done
exit $failed
