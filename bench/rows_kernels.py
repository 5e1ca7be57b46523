"""Kernel-level rows: SGEMM 1024/2048, ewise add 2^24 into a preallocated output,
compact of a transposed 4096² view, reduce_sum over the last axis of 4096², and the
small shapes of the MLP training step (SGEMM 100×784 @ 784×100, compact of a
transposed 784×100 view, a (1, 100) bias broadcast to (100, 100)), where per-call and
threading overheads dominate.

Each figure runs on NumPy, PyTorch CPU (when importable) and every synchronous
needle CPU device (``cpu``, ``cpu_numpy``) calling its ABI kernel on device buffers,
so a needle figure is the kernel's time plus one Python call. Ratios are
time ÷ NumPy time and time ÷ PyTorch time (below 1: faster). Throughput counts
bytes read + written (GB/s) or FLOPs (GFLOP/s).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from harness import Row

N_ADD, N_SQ = 1 << 24, 4096
TORCH_HINT = "PyTorch not installed (pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu)"
DEVICES = ("cpu", "cpu_numpy")  # synchronous devices: the call returns when the kernel is done


def _figures() -> list[tuple[str, str, float, str]]:
    """(group, key stem, work per call, unit) for every figure."""
    figs = [(f"SGEMM {n} fp32", f"sgemm{n}", 2 * n**3 / 1e9, "GFLOP/s") for n in (1024, 2048)]
    figs.append(("ewise add 2^24 into out", "add", 12 * N_ADD / 1e9, "GB/s"))
    figs.append(("compact of a transposed 4096² view", "compactT", 8 * N_SQ**2 / 1e9, "GB/s"))
    figs.append(("reduce_sum over the last axis, 4096²", "sumlast", 4 * N_SQ**2 / 1e9, "GB/s"))
    figs.append(("SGEMM 100×784 @ 784×100 fp32", "sgemm_mlp", 2 * 100 * 784 * 100 / 1e9, "GFLOP/s"))
    figs.append(("compact of a transposed 784×100 view", "compactT_mlp", 8 * 784 * 100 / 1e9, "GB/s"))
    figs.append(("broadcast (1, 100) → (100, 100)", "bcast_mlp", 4 * 100 * 101 / 1e9, "GB/s"))
    return figs


def _host_data() -> dict[str, tuple[np.ndarray, ...]]:
    rng = np.random.default_rng(0)

    def mat(n: int) -> np.ndarray:
        return rng.standard_normal((n, n), dtype=np.float32)

    return {
        "sgemm1024": (mat(1024), mat(1024)),
        "sgemm2048": (mat(2048), mat(2048)),
        "add": (rng.standard_normal(N_ADD, dtype=np.float32), rng.standard_normal(N_ADD, dtype=np.float32)),
        "compactT": (mat(N_SQ),),
        "sumlast": (mat(N_SQ),),
        "sgemm_mlp": (rng.standard_normal((100, 784), dtype=np.float32),
                      rng.standard_normal((784, 100), dtype=np.float32)),
        "compactT_mlp": (rng.standard_normal((784, 100), dtype=np.float32),),
        "bcast_mlp": (rng.standard_normal((1, 100), dtype=np.float32),),
    }


def _numpy_calls(data) -> dict[str, Callable[[], object]]:
    a1, b1 = data["sgemm1024"]
    a2, b2 = data["sgemm2048"]
    c1, c2 = np.empty_like(a1), np.empty_like(a2)
    x, y = data["add"]
    z = np.empty_like(x)
    (t,) = data["compactT"]
    tout = np.empty_like(t)
    (s,) = data["sumlast"]
    sout = np.empty(N_SQ, np.float32)
    ma, mb = data["sgemm_mlp"]
    mc = np.empty((100, 100), np.float32)
    (mt,) = data["compactT_mlp"]
    mtout = np.empty((100, 784), np.float32)
    (bias,) = data["bcast_mlp"]
    bout = np.empty((100, 100), np.float32)
    return {
        "sgemm1024": lambda: np.matmul(a1, b1, out=c1),
        "sgemm2048": lambda: np.matmul(a2, b2, out=c2),
        "add": lambda: np.add(x, y, out=z),
        "compactT": lambda: np.copyto(tout, t.T),
        "sumlast": lambda: np.sum(s, axis=1, out=sout),
        "sgemm_mlp": lambda: np.matmul(ma, mb, out=mc),
        "compactT_mlp": lambda: np.copyto(mtout, mt.T),
        "bcast_mlp": lambda: np.copyto(bout, bias),
    }


def _torch_calls(data) -> dict[str, Callable[[], object]] | str:
    try:
        import torch
    except ImportError:
        return TORCH_HINT
    a1, b1 = (torch.from_numpy(v) for v in data["sgemm1024"])
    a2, b2 = (torch.from_numpy(v) for v in data["sgemm2048"])
    c1, c2 = torch.empty_like(a1), torch.empty_like(a2)
    x, y = (torch.from_numpy(v) for v in data["add"])
    z = torch.empty_like(x)
    t = torch.from_numpy(data["compactT"][0])
    tout = torch.empty_like(t)
    s = torch.from_numpy(data["sumlast"][0])
    sout = torch.empty(N_SQ)
    ma, mb = (torch.from_numpy(v) for v in data["sgemm_mlp"])
    mc = torch.empty(100, 100)
    mt = torch.from_numpy(data["compactT_mlp"][0])
    mtout = torch.empty(100, 784)
    bias = torch.from_numpy(data["bcast_mlp"][0])
    bout = torch.empty(100, 100)
    return {
        "sgemm1024": lambda: torch.matmul(a1, b1, out=c1),
        "sgemm2048": lambda: torch.matmul(a2, b2, out=c2),
        "add": lambda: torch.add(x, y, out=z),
        "compactT": lambda: tout.copy_(t.t()),
        "sumlast": lambda: torch.sum(s, dim=1, out=sout),
        "sgemm_mlp": lambda: torch.matmul(ma, mb, out=mc),
        "compactT_mlp": lambda: mtout.copy_(mt.t()),
        "bcast_mlp": lambda: bout.copy_(bias.expand(100, 100)),
    }


def _needle_calls(dev, data) -> dict[str, Callable[[], object]]:
    def put(array: np.ndarray):
        buf = dev.Array(array.size)
        dev.from_numpy(np.ascontiguousarray(array, dtype=np.float32), buf)
        return buf

    a1, b1 = (put(v) for v in data["sgemm1024"])
    a2, b2 = (put(v) for v in data["sgemm2048"])
    c1, c2 = dev.Array(1024 * 1024), dev.Array(2048 * 2048)
    x, y = (put(v) for v in data["add"])
    z = dev.Array(N_ADD)
    t, tout = put(data["compactT"][0]), dev.Array(N_SQ * N_SQ)
    s, sout = put(data["sumlast"][0]), dev.Array(N_SQ)
    ma, mb = (put(v) for v in data["sgemm_mlp"])
    mc = dev.Array(100 * 100)
    mt, mtout = put(data["compactT_mlp"][0]), dev.Array(784 * 100)
    bias, bout = put(data["bcast_mlp"][0]), dev.Array(100 * 100)
    return {
        "sgemm1024": lambda: dev.matmul(a1, b1, c1, 1024, 1024, 1024),
        "sgemm2048": lambda: dev.matmul(a2, b2, c2, 2048, 2048, 2048),
        "add": lambda: dev.ewise_add(x, y, z),
        "compactT": lambda: dev.compact(t, tout, (N_SQ, N_SQ), (1, N_SQ), 0),
        "sumlast": lambda: dev.reduce_sum(s, sout, N_SQ),
        "sgemm_mlp": lambda: dev.matmul(ma, mb, mc, 100, 784, 100),
        "compactT_mlp": lambda: dev.compact(mt, mtout, (100, 784), (1, 100), 0),
        "bcast_mlp": lambda: dev.compact(bias, bout, (100, 100), (0, 1), 0),
    }


def rows() -> list[Row]:
    data = _host_data()
    subjects: list[tuple[str, dict | str]] = [("numpy", _numpy_calls(data)), ("torch", _torch_calls(data))]
    for name in DEVICES:
        try:
            import needle as ndl

            dev = ndl.device(name)
            calls: dict | str = _needle_calls(dev, data) if dev.enabled() else f"device {name} unavailable"
        except Exception as exc:  # not installed or broken: the row says why
            calls = f"device {name} unavailable: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        subjects.append((f"needle {name}", calls))

    out: list[Row] = []
    for group, stem, work, unit in _figures():
        for subject, calls in subjects:
            baselines = tuple(f"kernels {b} {stem}" for b in ("numpy", "torch") if b != subject)
            key = f"kernels {subject} {stem}"
            if isinstance(calls, str):
                out.append(Row(group, subject, None, key=key, skip=calls))
            else:
                out.append(Row(group, subject, calls[stem], key=key, work=work, work_unit=unit,
                               compare=baselines if subject != "numpy" else (), interleave=True))
    return out
