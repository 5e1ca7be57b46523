"""Two ranks under ``mpirun -n 2`` on this host: equality with one process, identical
starting parameters, BatchNorm buffers, model checks, all_reduce."""

from __future__ import annotations

import json

import needle.distributed as dist
import numpy as np
import pytest
from mpi_launch import mpirun, python_worker
from training import train

EQUALITY_RTOL = 1e-5
DEVICES = ("cpu_numpy", "cpu")


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("two_ranks")
    res = mpirun(2, *python_worker("checks.py"), str(out), timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    ranks = [dict(np.load(out / f"rank{r}.npz")) for r in (0, 1)]
    infos = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    return ranks, infos


def relative_difference(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    """max over parameters of max|a - b| / max|b|"""
    return max(float(np.abs(a[k] - b[k]).max() / np.abs(b[k]).max()) for k in b)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("sampler_seed", [None, 7], ids=["global-rng-order", "seeded-order"])
def test_two_ranks_match_one_process_with_the_whole_batch(two_ranks, device, sampler_seed):
    (rank0, _), _ = two_ranks
    mode = "global" if sampler_seed is None else "seeded"
    # the reference: one process, batch 100, a plain DataLoader (or the sampler as a world of one)
    sampler = None if sampler_seed is None else dist.DistributedSampler(seed=sampler_seed, rank=0, world_size=1)
    reference = train(device, sampler=sampler, optimizer="sgd")
    got = {k: rank0[f"{device}/{mode}/sgd/{k}"] for k in reference}
    diff = relative_difference(got, reference)
    print(f"{device} {mode} sgd: max relative difference after 20 steps {diff:.3g}")
    assert diff < EQUALITY_RTOL
    # and the run really trained: the parameters moved from their initial values
    assert relative_difference(train(device, sampler=sampler, steps=0), reference) > 1e-2


@pytest.mark.parametrize("device,run", [("cpu_numpy", "cpu_numpy"), ("cpu", "cpu"), ("cpu_numpy", "staged")])
def test_small_buckets_and_in_place_gradients_give_the_same_result(two_ranks, device, run):
    """``staged``: host views disabled, as on a GPU, so everything goes through host copies."""
    (rank0, _), (info0, _) = two_ranks
    assert info0["small_buckets"] == 3 + 2 and info0["in_place"] == 2  # 3 buckets, 2 gradients in place
    reference = train(device, optimizer="sgd")
    got = {k: rank0[f"{run}/small-buckets/sgd/{k}"] for k in reference}
    assert relative_difference(got, reference) < EQUALITY_RTOL


def test_without_buckets_every_gradient_is_reduced_in_place(two_ranks):
    (rank0, _), (info0, _) = two_ranks
    assert info0["all_in_place_messages"] == 8 + 1  # 8 parameters, and the presence flags
    reference = train("cpu", optimizer="sgd")
    assert relative_difference({k: rank0[f"all-in-place/sgd/{k}"] for k in reference}, reference) < EQUALITY_RTOL


@pytest.mark.parametrize("inplace_mb", ["1.0", "0.0"], ids=["bucketed", "in-place"])
def test_a_gradient_missing_on_a_rank_counts_as_zero_there(two_ranks, inplace_mb):
    _, infos = two_ranks
    for info in infos:
        used, rank0_only, unused_is_none = info[f"partial_{inplace_mb}"]
        assert used == [1.5, 3.0, 6.0]  # (c + 2c) / 2
        assert rank0_only == [0.5, 1.0, 2.0]  # (c + 0) / 2
        assert unused_is_none


def test_every_rank_ends_with_bit_identical_parameters(two_ranks):
    (rank0, rank1), _ = two_ranks
    assert sorted(rank0) == sorted(rank1)
    for key in rank0:
        np.testing.assert_array_equal(rank0[key], rank1[key], err_msg=key)


@pytest.mark.parametrize("device", DEVICES)
def test_same_seed_gives_bit_identical_starting_parameters(two_ranks, device):
    _, (info0, info1) = two_ranks
    assert info0[f"seeded_{device}"] == info1[f"seeded_{device}"]
    # different seeds differ, until broadcast_parameters copies rank 0's
    assert info0[f"unseeded_before_{device}"] != info1[f"unseeded_before_{device}"]
    assert info1[f"unseeded_after_{device}"] == info0[f"unseeded_after_{device}"] == info0[f"unseeded_before_{device}"]


def test_world_of_two_describes_itself(two_ranks):
    _, infos = two_ranks
    assert [(i["rank"], i["size"], i["is_main"]) for i in infos] == [(0, 2, True), (1, 2, False)]
    assert "rank 1 of 2 over MPI" in infos[1]["describe"]
    assert infos[0]["buckets"] == 1  # a small model's gradients travel in one message


def test_batchnorm_running_statistics_agree_across_ranks(two_ranks):
    (rank0, rank1), _ = two_ranks
    for key in ("bn/running_mean", "bn/running_var"):
        np.testing.assert_array_equal(rank0[key], rank1[key])
    # ranks saw different data (shifted by their rank): the statistics moved from their initial 0 / 1
    assert np.abs(rank0["bn/running_mean"]).max() > 1e-3


def test_models_that_differ_fail_at_broadcast_naming_the_parameter(two_ranks):
    _, infos = two_ranks
    for info in infos:  # every rank raises, so none is left waiting
        assert "parameter 'modules.0.weight' is (8, 5) float32 on rank 1 but (8, 6) float32 on rank 0" in \
            info["mismatch"]


@pytest.mark.parametrize("device", DEVICES)
def test_all_reduce_mean_in_place(two_ranks, device):
    _, infos = two_ranks
    assert all(info[f"all_reduce_{device}"] == [1.5] * 5 for info in infos)


def test_all_reduce_staged_through_host_memory(two_ranks):
    _, infos = two_ranks
    assert all(info["all_reduce_staged"] == [3.0] * 4 for info in infos)  # 1 + 2, written back to the device
