"""Run under ``mpirun -n 2``: every check that needs two ranks and should succeed.

Writes ``rank<r>.npz`` (final parameters per device and sampler, hashes of starting
parameters, BatchNorm buffers) and ``rank<r>.json`` (messages, counts) into OUTDIR.
"""

from __future__ import annotations

import hashlib
import json
import sys

import needle as ndl
import needle.distributed as dist
import numpy as np
from needle_distributed import host
from training import make_model, train

out_dir = sys.argv[1]
w = dist.init()
assert w.size == 2, w.describe()
arrays: dict[str, np.ndarray] = {}
info: dict[str, object] = {"describe": w.describe(), "rank": dist.rank(), "size": dist.world_size(),
                           "is_main": dist.is_main()}


def digest(model) -> str:
    h = hashlib.sha256()
    for name, p in model.named_parameters():
        h.update(name.encode() + p.numpy().tobytes())
    return h.hexdigest()


def ddp(model, opt):
    model = dist.DistributedDataParallel(model)
    info["buckets"] = model.num_buckets
    return model, model.wrap(opt)


for device in ("cpu_numpy", "cpu"):
    # same seed: bit-identical parameters on every rank before any broadcast
    np.random.seed(0)
    info[f"seeded_{device}"] = digest(make_model(ndl.device(device)))
    # different seeds: broadcast_parameters makes them rank 0's
    np.random.seed(100 + w.rank)
    m = make_model(ndl.device(device))
    info[f"unseeded_before_{device}"] = digest(m)
    dist.broadcast_parameters(m)
    info[f"unseeded_after_{device}"] = digest(m)
    for mode, seed in (("global", None), ("seeded", 7)):
        for optimizer in ("sgd", "adam"):
            params = train(device, sampler=dist.DistributedSampler(seed=seed), wrap=ddp, optimizer=optimizer)
            arrays.update({f"{device}/{mode}/{optimizer}/{k}": v for k, v in params.items()})

# small buckets (a 1 KiB cap: 3 of them), and the two weights of >= 8 KiB reduced in place: the same result
def ddp_small_buckets(model, opt):
    model = dist.DistributedDataParallel(model, bucket_mb=1 / 1024, inplace_mb=8 / 1024)
    info["small_buckets"] = model.num_buckets
    info["in_place"] = len(model._large)
    return model, model.wrap(opt)


for device in ("cpu_numpy", "cpu"):
    params = train(device, sampler=dist.DistributedSampler(), wrap=ddp_small_buckets, optimizer="sgd")
    arrays.update({f"{device}/small-buckets/sgd/{k}": v for k, v in params.items()})

# every gradient large (inplace_mb=0): no bucket, the presence flags travel alone
def ddp_all_in_place(model, opt):
    model = dist.DistributedDataParallel(model, inplace_mb=0)
    info["all_in_place_messages"] = model.num_buckets
    return model, model.wrap(opt)


params = train("cpu", sampler=dist.DistributedSampler(), wrap=ddp_all_in_place, optimizer="sgd")
arrays.update({f"all-in-place/sgd/{k}": v for k, v in params.items()})


# a parameter only rank 0 uses counts as a zero gradient on rank 1; one nobody uses keeps grad None
class Partial(ndl.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.used = ndl.nn.Parameter(np.zeros(3, np.float32))
        self.rank0_only = ndl.nn.Parameter(np.zeros(3, np.float32))
        self.unused = ndl.nn.Parameter(np.zeros(3, np.float32))


for inplace_mb in (1.0, 0.0):  # through a bucket, then in place
    partial = Partial()
    model = dist.DistributedDataParallel(partial, inplace_mb=inplace_mb)
    c = ndl.Tensor(np.array([1.0, 2.0, 4.0], np.float32) * (w.rank + 1), requires_grad=False)
    loss = (partial.used * c).sum() + ((partial.rank0_only * c).sum() if w.rank == 0 else 0.0)
    loss.backward()
    model.average_gradients()
    info[f"partial_{inplace_mb}"] = [partial.used.grad.numpy().tolist(), partial.rank0_only.grad.numpy().tolist(),
                                     partial.unused.grad is None]

# as for a GPU: no buffer is host memory, every gradient is staged through host copies
host_view = host.host_view
host.host_view = lambda arr: None
params = train("cpu_numpy", sampler=dist.DistributedSampler(), wrap=ddp_small_buckets, optimizer="sgd")
arrays.update({f"staged/small-buckets/sgd/{k}": v for k, v in params.items()})
staged = ndl.backend_ndarray.array(np.full(4, w.rank + 1.0, np.float32), device=ndl.cpu_numpy())
dist.all_reduce(staged)
info["all_reduce_staged"] = staged.numpy().tolist()
host.host_view = host_view

# BatchNorm: per-rank statistics, running statistics averaged every step -> identical on every rank
np.random.seed(0)
nn = ndl.nn
bn_model = nn.Sequential(nn.Linear(8, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3))
bn = dist.DistributedDataParallel(bn_model)
opt = bn.wrap(ndl.optim.SGD(bn.parameters(), lr=0.1))
rng = np.random.default_rng(w.rank)  # different data on each rank
for _ in range(3):
    x = ndl.Tensor(rng.standard_normal((4, 8)).astype(np.float32) + w.rank, requires_grad=False)
    y = ndl.Tensor(rng.integers(0, 3, 4).astype(np.float32), requires_grad=False)
    opt.reset_grad()
    nn.SoftmaxLoss()(bn(x), y).backward()
    opt.step()
arrays["bn/running_mean"] = bn_model.modules[1].running_mean.numpy()
arrays["bn/running_var"] = bn_model.modules[1].running_var.numpy()

# models that differ: every rank raises, naming the first differing parameter
different = nn.Sequential(nn.Linear(8, 6 if w.rank == 0 else 5), nn.ReLU(), nn.Linear(6 if w.rank == 0 else 5, 3))
try:
    dist.broadcast_parameters(different)
    info["mismatch"] = "no error"
except ValueError as exc:
    info["mismatch"] = str(exc)

# all_reduce on device arrays, in place
for device in ("cpu_numpy", "cpu"):
    a = ndl.backend_ndarray.array(np.full(5, w.rank + 1.0, np.float32), device=ndl.device(device))
    dist.all_reduce(a, op="mean")
    info[f"all_reduce_{device}"] = a.numpy().tolist()

dist.barrier()
np.savez(f"{out_dir}/rank{w.rank}.npz", **arrays)
with open(f"{out_dir}/rank{w.rank}.json", "w") as f:
    json.dump(info, f)
