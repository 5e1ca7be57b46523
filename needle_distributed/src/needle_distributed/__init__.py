"""needle.distributed: data-parallel training over MPI (mpi4py).

    import needle.distributed as dist
    dist.init()                                   # a world of one without mpirun
    model = dist.DistributedDataParallel(model)   # rank 0's parameters on every rank
    opt = model.wrap(ndl.optim.Adam(model.parameters(), lr=1e-3))  # step() averages gradients
    loader = ndl.data.DataLoader(ds, batch_size=B, shuffle=True, sampler=dist.DistributedSampler())

Importing this package does not import mpi4py; ``init()`` (or the first call that needs
the world) does, and only when an MPI launcher started the process.
"""

from .faults import DEFAULT_TIMEOUT_S
from .collectives import all_reduce, broadcast_parameters
from .ddp import DistributedDataParallel, DistributedOptimizer
from .sampler import DistributedSampler
from .world import (
    DistributedWarning,
    World,
    barrier,
    init,
    is_main,
    launched_by_mpi,
    local_rank,
    rank,
    world,
    world_size,
)

__version__ = "0.1.0"
__all__ = [
    "DEFAULT_TIMEOUT_S", "DistributedDataParallel", "DistributedOptimizer", "DistributedSampler",
    "DistributedWarning", "World", "all_reduce", "barrier", "broadcast_parameters", "init", "is_main",
    "launched_by_mpi", "local_rank", "rank", "world", "world_size",
]
