"""The benchmark harness compares each row with the baseline it names, and only that one."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("bench_harness", Path(__file__).parents[1] / "bench" / "harness.py")
harness = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = harness  # dataclasses look their module up while the class is built
_spec.loader.exec_module(harness)


def _result(group, subject, seconds, key="", compare=()):
    return harness.Result(harness.Row(group, subject, None, key=key, compare=compare), seconds)


def test_ratio_is_time_over_the_named_baseline():
    table = harness.markdown_table([
        _result("add", "numpy", 2e-6, key="np"),
        _result("add", "needle", 3e-6, compare=("np",)),
    ])
    assert "1.50× numpy" in table


def test_two_rows_with_one_key_are_an_error():
    with pytest.raises(ValueError, match="share the key 'torch'"):
        harness.markdown_table([_result("a", "torch", 1e-6, key="torch"), _result("b", "torch", 1e-3, key="torch")])


def test_median_of_samples():
    seconds, samples = harness.measure(lambda: None, number=10, repeat=5, min_sample=0.0)
    assert len(samples) == 5 and min(samples) <= seconds <= max(samples)


def test_a_row_measured_elsewhere_reports_its_own_median():
    row = harness.Row("allreduce", "mpi", None, measured=lambda: (2.0, [1.0, 2.0, 3.0]))
    (result,) = harness.run_rows([row])
    assert result.seconds == 2.0 and result.samples == [1.0, 2.0, 3.0]


def test_interleaved_rows_of_a_group_are_sampled_in_turns():
    calls = []

    def row(subject, **kw):
        return harness.Row("step", subject, lambda: calls.append(subject), number=2, interleave=True, **kw)

    def broken():
        raise RuntimeError("no device")

    rows = [row("torch", key="t"), row("needle", compare=("t",)), harness.Row("other", "x", lambda: None, number=1),
            harness.Row("step", "opencl", broken, number=1, interleave=True)]
    results = harness.run_rows(rows, repeat=3)
    assert [r.row.subject for r in results] == ["torch", "needle", "x", "opencl"]  # table order kept
    rounds = calls[2:]  # after one warm-up call each: rounds of (1 untimed + 2 timed) calls per row
    assert rounds == (["torch"] * 3 + ["needle"] * 3) * 3
    assert all(len(r.samples) == 3 and r.seconds is not None for r in results[:2])
    assert results[3].seconds is None and "no device" in results[3].error


def test_the_header_reports_the_share_of_cpu_time_the_host_stole():
    spec = importlib.util.spec_from_file_location("bench_run", Path(__file__).parents[1] / "bench" / "run.py")
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    assert run.stolen_share((1000, 50), (2000, 250)) == "; CPU time stolen by the host during the run: 20.0%"
    assert run.stolen_share(None, (2000, 250)) == ""
    ticks = run.cpu_ticks()
    if Path("/proc/stat").exists():
        assert ticks is not None and ticks[0] >= ticks[1] >= 0


def test_a_row_is_timed_with_its_own_clock():
    ticks = iter(range(0, 1000, 2))  # each reading 2 "seconds" after the previous one
    row = harness.Row("enqueue", "host cpu", lambda: None, number=4, clock=lambda: float(next(ticks)))
    (result,) = harness.run_rows([row], repeat=3)
    assert result.samples == [0.5, 0.5, 0.5]  # (end - start) / number per sample, from the row's clock
