"""Run under ``mpirun -n 2``: rank 1 fails at step 3 of a training loop (``raise``,
``kill`` or ``stuck``); rank 0 keeps stepping and must not hang."""

from __future__ import annotations

import os
import signal
import sys
import time

import needle as ndl
import needle.distributed as dist
import numpy as np
from training import make_model

how = sys.argv[1]
w = dist.init()
np.random.seed(0)
model = dist.DistributedDataParallel(make_model(ndl.cpu_numpy()))
opt = model.wrap(ndl.optim.SGD(model.parameters(), lr=0.1))
x = ndl.Tensor(np.ones((4, 64), np.float32), device=ndl.cpu_numpy(), requires_grad=False)
for step in range(1000):
    if w.rank == 1 and step == 3:
        if how == "raise":
            raise RuntimeError("simulated failure in a training step")
        if how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if how == "stuck":
            time.sleep(3600)
    opt.reset_grad()
    model(x).sum().backward()
    opt.step()
print("rank", w.rank, "finished", flush=True)
