"""Without mpirun: a world of one that works and says so; the sampler's rules, simulated
per rank; host buffers read in place; bucketing."""

from __future__ import annotations

import importlib

import needle as ndl
import numpy as np
import pytest
from needle.data import DataLoader, NDArrayDataset
from needle_distributed import buckets, host
from training import train

world = importlib.import_module("needle_distributed.world")  # the module (the package's ``world`` is a function)


@pytest.fixture
def fresh_world(monkeypatch):
    """Forget the joined world, and any launcher variables of the shell running the tests."""
    monkeypatch.setattr(world, "_world", None)
    for var in (*world.LAUNCHER_VARS, "NEEDLE_DISTRIBUTED"):
        monkeypatch.delenv(var, raising=False)
    yield
    world._world = None


def test_not_launched_by_mpirun_is_a_world_of_one_that_says_so(fresh_world):
    import needle.distributed as dist

    with pytest.warns(dist.DistributedWarning, match="world of one process: not launched by mpirun"):
        w = dist.init()
    assert (dist.rank(), dist.world_size(), dist.local_rank(), dist.is_main()) == (0, 1, 0, True)
    assert w.describe() == "world of one process (not launched by mpirun/mpiexec/srun)"
    dist.barrier()
    a = ndl.backend_ndarray.array(np.ones(3, np.float32))
    dist.all_reduce(a, op="mean")
    np.testing.assert_array_equal(a.numpy(), np.ones(3))


def test_needle_namespace_exposes_the_package():
    import needle.distributed as dist

    assert ndl.distributed is dist and hasattr(dist, "DistributedDataParallel")


def test_launched_without_mpi4py_as_one_of_several_is_an_error(fresh_world, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_mpi4py(name, *args, **kwargs):
        if name.startswith("mpi4py"):
            raise ImportError("No module named 'mpi4py'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_mpi4py)
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    with pytest.raises(RuntimeError, match=r"one of 2 processes, but mpi4py cannot be imported.*distributed\[mpi\]"):
        world.init()
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "1")
    with pytest.warns(world.DistributedWarning, match="mpi4py is not installed"):
        assert world.init().size == 1


def test_ddp_in_a_world_of_one_is_plain_training(fresh_world):
    import needle.distributed as dist

    def wrap(model, opt):
        model = dist.DistributedDataParallel(model)
        return model, model.wrap(opt)

    a, b = train("cpu_numpy", steps=3), train("cpu_numpy", steps=3, wrap=wrap)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def _shards(n, batch, size, seed=None, epochs=1):
    """Every rank's batches, each rank's sampler drawing from the same NumPy state."""
    from needle.distributed import DistributedSampler

    out = []
    for r in range(size):
        np.random.seed(0)
        s = DistributedSampler(seed=seed, rank=r, world_size=size)
        out.append([s.batches(s.order(n, True), batch) for _ in range(epochs)])
    return out


@pytest.mark.parametrize("n,batch,size", [(1000, 100, 2), (1000, 96, 4), (103, 10, 2), (9, 4, 2)])
def test_shards_are_disjoint_and_together_are_the_one_process_batches(n, batch, size):
    ranks = _shards(n, batch, size)
    np.random.seed(0)
    order = np.random.permutation(n)
    one_process = np.array_split(order, range(batch, n, batch))
    counts = {len(r[0]) for r in ranks}
    assert len(counts) == 1  # every rank runs the same number of steps
    for k in range(counts.pop()):
        parts = [r[0][k] for r in ranks]
        assert len({len(p) for p in parts}) == 1  # equal per-rank batches
        joined = np.concatenate(parts)
        assert len(set(joined.tolist())) == len(joined)  # disjoint
        # batch k of N ranks is batch k of one process (trimmed to a multiple of N when it is the last, short one)
        np.testing.assert_array_equal(joined, one_process[k][:len(one_process[k]) // size * size])
    dropped = n - sum(len(b) for r in ranks for b in r[0])
    assert dropped == (n % batch) % size


def test_seeded_order_is_shared_and_reshuffled_every_epoch():
    from needle.distributed import DistributedSampler

    a, b = DistributedSampler(seed=5, rank=0, world_size=2), DistributedSampler(seed=5, rank=1, world_size=2)
    np.random.seed(1)
    e0, e1 = a.order(50, True), a.order(50, True)
    np.random.seed(2)  # the global generator plays no part
    np.testing.assert_array_equal(b.order(50, True), e0)
    assert not np.array_equal(e0, e1)
    b.set_epoch(0)
    np.testing.assert_array_equal(b.order(50, True), e0)
    np.testing.assert_array_equal(a.order(7, False), np.arange(7))


def test_batch_size_not_divisible_is_a_clear_error():
    from needle.distributed import DistributedSampler

    s = DistributedSampler(rank=0, world_size=3)
    with pytest.raises(ValueError, match="batch size 100 is the global batch, split over 3 ranks.*use 99 or 102"):
        s.batches(np.arange(10), 100)


def test_evaluation_shards_cover_every_sample_once():
    from needle.distributed import DistributedSampler

    seen = []
    for r in range(3):
        s = DistributedSampler(evaluation=True, rank=r, world_size=3)
        got = s.batches(s.order(20, False), 4)
        assert len(got) == s.num_batches(20, 4)
        seen.extend(np.concatenate(got).tolist())
    assert seen == list(range(20))


def test_dataloader_with_a_sampler_keeps_the_whole_order_and_resumes():
    from needle.distributed import DistributedSampler

    X = np.arange(40, dtype=np.float32).reshape(20, 2)
    loader = DataLoader(NDArrayDataset(X), 6, shuffle=True, sampler=DistributedSampler(rank=1, world_size=2))
    np.random.seed(3)
    batches = [b[0].numpy() for b in loader]
    assert len(loader) == len(batches) == 4  # 6,6,6 then 2 samples: 3+3+3+1 per rank
    assert sorted(loader.order.tolist()) == list(range(20))
    order = loader.order
    loader.resume(order, 2)
    rest = [b[0].numpy() for b in loader]
    for got, want in zip(rest, batches[2:], strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("device", ["cpu_numpy", "cpu"])
def test_host_buffers_are_read_and_written_in_place(device):
    dev = ndl.device(device)
    if not dev.enabled():
        pytest.skip(f"{device} not installed")
    a = ndl.backend_ndarray.array(np.arange(12, dtype=np.float32).reshape(3, 4), device=dev)
    view = host.host_view(a)
    view[1, 2] = -1.0  # same memory, no copy
    assert a.numpy()[1, 2] == -1.0
    np.testing.assert_array_equal(host.host_view(a.permute((1, 0))), a.numpy().T)  # strides and offset kept
    assert host.is_host(dev)
    dest = np.zeros(4, np.float32)
    host.pack(a[1:, 1:3], dest, scale=2.0)  # a strided view
    np.testing.assert_array_equal(dest, (a.numpy()[1:, 1:3] * 2).ravel())
    out = host.unpack(dest, (2, 2), "float32", dev, scale=0.5)
    np.testing.assert_array_equal(out.numpy(), a.numpy()[1:, 1:3])


def test_buffers_without_host_memory_are_staged(monkeypatch):
    a = ndl.backend_ndarray.array(np.arange(6, dtype=np.float32), device=ndl.cpu_numpy())
    monkeypatch.setattr(host, "host_view", lambda arr: None)  # as for a GPU buffer
    dest = np.zeros(6, np.float32)
    host.pack(a, dest, scale=3.0)
    np.testing.assert_array_equal(dest, np.arange(6) * 3)
    np.testing.assert_array_equal(host.unpack(dest, (6,), "float32", ndl.cpu_numpy(), 1 / 3).numpy(), np.arange(6))


def test_buckets_group_by_dtype_and_respect_the_cap():
    specs = [((256,), "float32"), ((256,), "float32"), ((10,), "float64"), ((1024,), "float32"), ((3,), "float32")]
    plan = buckets.plan(specs, cap_bytes=2048, flags=True)
    layout = [(str(b.dtype), [s[0] for s in b.slots]) for b in plan]
    assert layout == [("float32", [0, 1]), ("float32", [3]), ("float32", [4]), ("float64", [2])]
    assert plan[0].buffer.size == 512 + 2 + 1  # values, one flag per tensor, the weight
    with pytest.raises(ValueError, match="positive number of bytes"):
        buckets.plan(specs, cap_bytes=0)


def test_model_differences_are_described_by_their_first_parameter():
    from needle_distributed.collectives import _first_difference

    root = [("a.weight", (2, 3), "float32"), ("a.bias", (3,), "float32")]
    assert _first_difference(root, root, 1, 0) is None
    renamed = [("a.weight", (2, 3), "float32"), ("b.bias", (3,), "float32")]
    assert _first_difference(renamed, root, 1, 0) == \
        "parameter #1 differs in name: 'b.bias' on rank 1, 'a.bias' on rank 0"
    assert _first_difference(root[:1], root, 1, 0) == \
        "rank 1 has 1 parameters and buffers, rank 0 has 2; the first one only rank 0 has is 'a.bias'"
    retyped = [("a.weight", (2, 3), "float64"), root[1]]
    message = _first_difference(retyped, root, 1, 0)
    assert "'a.weight' is (2, 3) float64 on rank 1 but (2, 3) float32 on rank 0" in message
