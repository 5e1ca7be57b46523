"""OpenCL (PoCL on a CPU-only machine) against NumPy, same run: SGEMM 1024, ewise add
2^24 into a preallocated output, the launch overhead of one small op, and the first use
of the device in a new process with a warm program cache (subtract the "import needle"
row from the "first opencl use" row: the device's share of start-up).

Kernel-level rows call the device's ABI kernels on device buffers and wait for the
queue after each sample, so a figure is the device's time, not the enqueue time.
"""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
from harness import Row

SGEMM = "SGEMM 1024 fp32"
ADD = "ewise add 2^24 into out"
LAUNCH = "opencl launch overhead, 16-element add"
FIRST_USE = "new process: python + import needle (+ first opencl op)"
N_MM, N_ADD = 1024, 1 << 24
_IMPORT = "import numpy as np, needle as ndl"
_FIRST_OP = _IMPORT + "; (ndl.Tensor(np.ones(4, 'float32'), device=ndl.device('opencl')) + 1.0).numpy()"


def _python(code: str):
    def run() -> None:
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)

    return run


def _numpy_rows() -> list[Row]:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((N_MM, N_MM), dtype=np.float32), rng.standard_normal((N_MM, N_MM), dtype=np.float32)
    x, y = rng.standard_normal(N_ADD, dtype=np.float32), rng.standard_normal(N_ADD, dtype=np.float32)
    out = np.empty_like(x)
    return [
        Row(SGEMM, "numpy", lambda: a @ b, key="opencl-rows numpy sgemm", work=2 * N_MM**3 / 1e9, work_unit="GFLOP/s"),
        Row(
            ADD,
            "numpy",
            lambda: np.add(x, y, out=out),
            key="opencl-rows numpy add",
            work=12 * N_ADD / 1e9,
            work_unit="GB/s",
        ),
    ]


def _opencl_rows() -> list[Row]:
    subject = "needle opencl"
    try:
        import needle as ndl

        dev = ndl.device("opencl")
        from needle_backend_opencl import plugin
    except Exception as exc:
        skip = f"opencl device unavailable: {type(exc).__name__}: {str(exc).splitlines()[0]}"
        return [Row(g, subject, None, skip=skip) for g in (SGEMM, ADD, LAUNCH, FIRST_USE)]

    def sync() -> None:
        plugin.synchronize(dev.index)

    def put(array: np.ndarray):
        buf = dev.Array(array.size)
        dev.from_numpy(np.ascontiguousarray(array, dtype=np.float32), buf)
        return buf

    rng = np.random.default_rng(0)
    a, b = put(rng.standard_normal(N_MM * N_MM)), put(rng.standard_normal(N_MM * N_MM))
    c = dev.Array(N_MM * N_MM)
    x, y, out = put(rng.standard_normal(N_ADD)), put(rng.standard_normal(N_ADD)), dev.Array(N_ADD)
    s1, s2, s3 = put(np.ones(16)), put(np.ones(16)), dev.Array(16)

    def small_synced() -> None:
        dev.ewise_add(s1, s2, s3)
        sync()

    return [
        Row(
            SGEMM,
            subject,
            lambda: dev.matmul(a, b, c, N_MM, N_MM, N_MM),
            sync=sync,
            compare=("opencl-rows numpy sgemm",),
            work=2 * N_MM**3 / 1e9,
            work_unit="GFLOP/s",
        ),
        Row(
            ADD,
            subject,
            lambda: dev.ewise_add(x, y, out),
            sync=sync,
            compare=("opencl-rows numpy add",),
            work=12 * N_ADD / 1e9,
            work_unit="GB/s",
        ),
        Row(
            LAUNCH,
            f"{subject} (queued, waited per sample)",
            lambda: dev.ewise_add(s1, s2, s3),
            sync=sync,
            note="enqueue cost and PoCL throughput of tiny ops",
        ),
        Row(
            LAUNCH,
            f"{subject} (enqueue only)",
            lambda: dev.ewise_add(s1, s2, s3),
            note="the host's cost per op (target <= 8 us), wall time while PoCL runs the queue on the same cores",
        ),
        Row(
            LAUNCH,
            f"{subject} (enqueue only, host thread CPU time)",
            lambda: dev.ewise_add(s1, s2, s3),
            clock=time.thread_time,
            note="the host thread's CPU per op: no time descheduled, but time spinning on the driver's locks",
        ),
        Row(LAUNCH, f"{subject} (waited per op)", small_synced, note="enqueue + run + wait: the latency of one op"),
        Row(FIRST_USE, "import needle only", _python(_IMPORT), key="opencl-rows import needle", number=1),
        Row(
            FIRST_USE,
            f"{subject}: first op, warm cache",
            _python(_FIRST_OP),
            compare=("opencl-rows import needle",),
            number=1,
            note="target: at most 0.5 s more than import needle",
        ),
    ]


def rows() -> list[Row]:
    return _numpy_rows() + _opencl_rows()
