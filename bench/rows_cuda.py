"""CUDA (needle-backend-cuda) against PyTorch on the same GPU, same run.

Figures (docs: docs/design.md §6 and the CUDA issue):
* SGEMM 4096 fp32 vs cuBLAS through PyTorch with TF32 off (target: time ÷ torch
  ≤ 2, i.e. ≥ 0.5× cuBLAS);
* ewise add 2^26 into a preallocated output vs a device-to-device copy moving the
  same number of bytes (1.5 × 2^26 floats): time ÷ copy = copy bandwidth ÷ add
  bandwidth (target ≤ 1.43, i.e. ≥ 0.7× the measured copy bandwidth);
* reduce_sum over the last axis and compact of a transposed view, 4096², and the
  launch overhead of a 16-element add.

Kernel rows call the device's ABI kernels on device buffers and synchronise after
each sample, so a figure is GPU time plus launch cost. Without a usable cuda
device (or without CUDA PyTorch) the rows are skipped with the reason.
"""

from __future__ import annotations

import numpy as np
from harness import Row

N_MM = 4096
N_ADD = 1 << 26
N_RED = 4096
SGEMM = f"CUDA SGEMM {N_MM} fp32"
ADD = "CUDA ewise add 2^26 into out"
RED = f"CUDA reduce_sum last axis {N_RED}²"
COMPACT = f"CUDA compact of a transposed {N_RED}² view"
LAUNCH = "CUDA launch overhead, 16-element add + sync"
GROUPS = (SGEMM, ADD, RED, COMPACT, LAUNCH)
NEEDLE = "needle cuda"
TORCH = "torch cuda"


def _torch_rows() -> list[Row]:
    try:
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError("torch.cuda.is_available() is False")
    except Exception as exc:
        skip = f"CUDA PyTorch unavailable: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        return [Row(g, TORCH, None, skip=skip) for g in GROUPS] + [Row(ADD, "device copy, same bytes", None, skip=skip)]

    torch.backends.cuda.matmul.allow_tf32 = False  # plain fp32 SGEMM, as needle computes
    torch.backends.cudnn.allow_tf32 = False
    gen = torch.Generator(device="cuda").manual_seed(0)
    a = torch.randn(N_MM, N_MM, device="cuda", generator=gen)
    b = torch.randn(N_MM, N_MM, device="cuda", generator=gen)
    c = torch.empty(N_MM, N_MM, device="cuda")
    x, y = torch.randn(N_ADD, device="cuda", generator=gen), torch.randn(N_ADD, device="cuda", generator=gen)
    out = torch.empty(N_ADD, device="cuda")
    src, dst = torch.randn(N_ADD * 3 // 2, device="cuda", generator=gen), torch.empty(N_ADD * 3 // 2, device="cuda")
    r = torch.randn(N_RED, N_RED, device="cuda", generator=gen)
    r_out = torch.empty(N_RED, device="cuda")
    t_out = torch.empty(N_RED, N_RED, device="cuda")
    s1, s2, s3 = torch.ones(16, device="cuda"), torch.ones(16, device="cuda"), torch.empty(16, device="cuda")
    sync = torch.cuda.synchronize

    def small_synced() -> None:
        torch.add(s1, s2, out=s3)
        sync()

    return [
        Row(SGEMM, f"{TORCH} (cuBLAS, TF32 off)", lambda: torch.mm(a, b, out=c), key="cuda-rows torch sgemm",
            sync=sync, work=2 * N_MM**3 / 1e9, work_unit="GFLOP/s"),
        Row(ADD, "device copy, same bytes", lambda: dst.copy_(src), key="cuda-rows copy", sync=sync,
            work=12 * N_ADD / 1e9, work_unit="GB/s", note="1.5·2^26 floats: the bytes an add moves"),
        Row(ADD, TORCH, lambda: torch.add(x, y, out=out), key="cuda-rows torch add", sync=sync,
            compare=("cuda-rows copy",), work=12 * N_ADD / 1e9, work_unit="GB/s"),
        Row(RED, TORCH, lambda: torch.sum(r, dim=1, out=r_out), key="cuda-rows torch reduce", sync=sync,
            work=4 * N_RED * N_RED / 1e9, work_unit="GB/s"),
        Row(COMPACT, TORCH, lambda: t_out.copy_(r.t()), key="cuda-rows torch compact", sync=sync,
            work=8 * N_RED * N_RED / 1e9, work_unit="GB/s"),
        Row(LAUNCH, TORCH, small_synced, key="cuda-rows torch launch"),
    ]


def _needle_rows() -> list[Row]:
    try:
        import needle as ndl

        records = {r.name: r for r in ndl.devices()}
        if "cuda" not in records:
            raise RuntimeError("needle-backend-cuda is not installed")
        if records["cuda"].status != "available":
            raise RuntimeError(records["cuda"].reason or records["cuda"].status)
        dev = ndl.device("cuda")
    except Exception as exc:
        skip = f"cuda unavailable: {str(exc).splitlines()[0]}"
        return [Row(g, NEEDLE, None, skip=skip) for g in GROUPS]

    sync = dev.synchronize
    rng = np.random.default_rng(0)

    def put(array: np.ndarray):
        buf = dev.Array(array.size)
        dev.from_numpy(np.ascontiguousarray(array, dtype=np.float32).reshape(-1), buf)
        return buf

    a = put(rng.standard_normal(N_MM * N_MM, dtype=np.float32))
    b = put(rng.standard_normal(N_MM * N_MM, dtype=np.float32))
    c = dev.Array(N_MM * N_MM)
    x, y = put(rng.standard_normal(N_ADD, dtype=np.float32)), put(rng.standard_normal(N_ADD, dtype=np.float32))
    out = dev.Array(N_ADD)
    r = put(rng.standard_normal(N_RED * N_RED, dtype=np.float32))
    r_out, t_out = dev.Array(N_RED), dev.Array(N_RED * N_RED)
    s1, s2, s3 = put(np.ones(16)), put(np.ones(16)), dev.Array(16)

    def small_synced() -> None:
        dev.ewise_add(s1, s2, s3)
        sync()

    return [
        Row(SGEMM, NEEDLE, lambda: dev.matmul(a, b, c, N_MM, N_MM, N_MM), sync=sync,
            compare=("cuda-rows torch sgemm",), work=2 * N_MM**3 / 1e9, work_unit="GFLOP/s"),
        Row(ADD, NEEDLE, lambda: dev.ewise_add(x, y, out), sync=sync,
            compare=("cuda-rows copy", "cuda-rows torch add"), work=12 * N_ADD / 1e9, work_unit="GB/s"),
        Row(RED, NEEDLE, lambda: dev.reduce_sum(r, r_out, N_RED), sync=sync,
            compare=("cuda-rows torch reduce",), work=4 * N_RED * N_RED / 1e9, work_unit="GB/s"),
        Row(COMPACT, NEEDLE, lambda: dev.compact(r, t_out, (N_RED, N_RED), (1, N_RED), 0), sync=sync,
            compare=("cuda-rows torch compact",), work=8 * N_RED * N_RED / 1e9, work_unit="GB/s"),
        Row(LAUNCH, NEEDLE, small_synced, compare=("cuda-rows torch launch",)),
    ]


def rows() -> list[Row]:
    return _torch_rows() + _needle_rows()
