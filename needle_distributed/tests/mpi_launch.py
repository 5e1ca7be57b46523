"""Launch a command under ``mpirun -n N`` on this host only, for the tests."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from needle_distributed import loopback

WORKERS = Path(__file__).resolve().parent / "workers"


def mpirun_or_skip() -> str:
    """The ``mpirun`` to use; skips the test (fails under ``NEEDLE_REQUIRE_MPI=1``) without one."""
    exe = shutil.which("mpirun", path=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]))
    missing = ("mpirun not found" if exe is None else
               "mpi4py not installed" if importlib.util.find_spec("mpi4py") is None else "")
    if missing:
        message = f"{missing}: pip install './needle_distributed[mpi]'"
        if os.environ.get("NEEDLE_REQUIRE_MPI") == "1":
            pytest.fail(f"NEEDLE_REQUIRE_MPI=1 but {message}")
        pytest.skip(message)
    return exe


def env(**extra: str) -> dict[str, str]:
    e = dict(os.environ)
    e.update({
        # CI runs as root; Open MPI refuses that unless told
        "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
        # this host only: ranks talk through shared memory, never a network interface
        "OMPI_MCA_btl": "self,sm",
        "OPENBLAS_NUM_THREADS": "1", "NEEDLE_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(WORKERS), os.environ.get("PYTHONPATH", "")])),
    })
    e.update(extra)
    return e


def mpirun(n: int, *cmd: str, timeout: float = 120, cwd: str | None = None,
           **extra_env: str) -> subprocess.CompletedProcess:
    exe = mpirun_or_skip()
    # in a loopback-only network namespace where one can be made (root, as in CI)
    args = loopback.command([exe, "-n", str(n), "--oversubscribe", "--bind-to", "none", *cmd])
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env(**extra_env), cwd=cwd)


def python_worker(name: str) -> list[str]:
    return [sys.executable, str(WORKERS / name)]


def needle_train() -> list[str]:
    return [sys.executable, "-m", "needle", "train"]
