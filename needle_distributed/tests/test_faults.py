"""A failing rank ends the whole job within bounded time, and the output names it."""

from __future__ import annotations

import time

import pytest
from mpi_launch import mpirun, python_worker

BOUND_S = 60  # generous for a loaded 2-core machine; a hang would hit the subprocess timeout instead


def _run(how: str, **env: str):
    t0 = time.monotonic()
    res = mpirun(2, *python_worker("faults.py"), how, timeout=180, **env)
    return res, time.monotonic() - t0


def test_a_rank_that_raises_aborts_every_rank_and_is_named():
    res, took = _run("raise")
    out = res.stdout + res.stderr
    assert res.returncode != 0 and took < BOUND_S, out
    assert "needle.distributed: rank 1 of 2: failed with RuntimeError: simulated failure" in out
    assert "aborting all 2 ranks" in out
    assert "rank 0 finished" not in out


def test_a_killed_rank_ends_the_job_and_is_named():
    res, took = _run("kill")
    out = res.stdout + res.stderr
    assert res.returncode != 0 and took < BOUND_S, out
    assert "rank 1" in out and "signal 9" in out  # Open MPI's launcher reports it
    assert "rank 0 finished" not in out


def test_a_stuck_rank_is_caught_by_the_watchdog():
    res, took = _run("stuck", NEEDLE_DISTRIBUTED_TIMEOUT="4")
    out = res.stdout + res.stderr
    assert res.returncode != 0 and took < BOUND_S, out
    assert "rank 0 of 2: average_gradients has waited more than 4 s for the other ranks" in out


@pytest.mark.parametrize("value", ["abc"])
def test_bad_timeout_value_is_explained(value, monkeypatch):
    from needle_distributed import faults

    monkeypatch.setenv("NEEDLE_DISTRIBUTED_TIMEOUT", value)
    with pytest.raises(ValueError, match="NEEDLE_DISTRIBUTED_TIMEOUT must be a number of seconds, got 'abc'"):
        faults.timeout_seconds()
