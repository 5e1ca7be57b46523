"""The MPI world: this process's rank, the number of ranks, and a world of one without MPI.

``init()`` joins MPI only when the process was started by an MPI launcher (``mpirun``,
``mpiexec``, ``srun``), or when ``NEEDLE_DISTRIBUTED=mpi`` asks for it; otherwise it is a
world of one that works everywhere and says why in ``describe()``.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any

#: Variables MPI launchers set in every process they start (Open MPI, MPICH/Hydra, PMIx, PMI-2).
LAUNCHER_SIZE_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS")
LAUNCHER_VARS = (*LAUNCHER_SIZE_VARS, "PMIX_RANK", "PMI_RANK")
INSTALL_HINT = "pip install 'needle-distributed[mpi]' (mpi4py and Open MPI wheels)"


class DistributedWarning(UserWarning):
    """needle.distributed runs as a world of one where the user may have expected more."""


@dataclass(frozen=True)
class World:
    rank: int
    size: int
    local_rank: int
    comm: Any  # an mpi4py communicator; None in a world of one
    library: str  # e.g. "Open MPI v5.0.11"; "" without MPI
    reason: str = ""  # why this is a world of one ("" under MPI)

    def describe(self) -> str:
        if self.comm is None:
            return f"world of one process ({self.reason})"
        return f"rank {self.rank} of {self.size} over MPI ({self.library}), local rank {self.local_rank}"


_world: World | None = None


def launched_by_mpi() -> bool:
    """True when an MPI launcher started this process (or ``NEEDLE_DISTRIBUTED=mpi``)."""
    mode = os.environ.get("NEEDLE_DISTRIBUTED", "").strip().lower()
    if mode in ("off", "0", "none"):
        return False
    return mode == "mpi" or any(v in os.environ for v in LAUNCHER_VARS)


def _launcher_size() -> int:
    for var in LAUNCHER_SIZE_VARS:
        try:
            return int(os.environ[var])
        except (KeyError, ValueError):
            continue
    return 1


def _single(reason: str, warn: bool) -> World:
    if warn:
        warnings.warn(f"needle.distributed: running as a world of one process: {reason}", DistributedWarning,
                      stacklevel=3)
    return World(0, 1, 0, None, "", reason)


def init(*, warn: bool = True) -> World:
    """Join the MPI world (once; later calls return the same ``World``).

    A world of one when not launched by an MPI launcher or when mpi4py is missing
    (with a ``DistributedWarning`` saying so, unless ``warn=False``). Launched as one
    of several processes without mpi4py is an error: each would train alone.
    """
    global _world
    if _world is not None:
        return _world
    if not launched_by_mpi():
        why = ("NEEDLE_DISTRIBUTED=off" if os.environ.get("NEEDLE_DISTRIBUTED", "").strip().lower() in
               ("off", "0", "none") else "not launched by mpirun/mpiexec/srun")
        _world = _single(why, warn)
        return _world
    try:
        from mpi4py import MPI
    except ImportError as exc:
        if _launcher_size() > 1:
            raise RuntimeError(
                f"this process was started by an MPI launcher as one of {_launcher_size()} processes, but mpi4py "
                f"cannot be imported ({exc}); without it every process would train alone. Install it: "
                f"{INSTALL_HINT}") from exc
        _world = _single(f"mpi4py is not installed: {INSTALL_HINT}", warn)
        return _world
    comm = MPI.COMM_WORLD
    local = comm.Split_type(MPI.COMM_TYPE_SHARED, key=comm.rank)
    local_rank = local.rank
    local.Free()
    library = MPI.Get_library_version().split(",")[0].strip()
    _world = World(comm.rank, comm.size, local_rank, comm, library)
    if comm.size > 1:
        from . import faults

        faults.install(_world)
    return _world


def world() -> World:
    """The current world, joining it first if needed (without a warning)."""
    return _world if _world is not None else init(warn=False)


def rank() -> int:
    """This process's rank (0 in a world of one)."""
    return world().rank


def world_size() -> int:
    """The number of ranks (1 in a world of one)."""
    return world().size


def local_rank() -> int:
    """This process's rank among the ranks on its host (pick ``cuda:<local_rank>`` with it)."""
    return world().local_rank


def is_main() -> bool:
    """True on rank 0: the rank that prints, plots and writes checkpoints."""
    return world().rank == 0


def barrier() -> None:
    """Wait until every rank gets here (bounded by ``NEEDLE_DISTRIBUTED_TIMEOUT``)."""
    w = world()
    if w.comm is not None and w.size > 1:
        from .faults import guarded

        with guarded("barrier"):
            w.comm.Barrier()
