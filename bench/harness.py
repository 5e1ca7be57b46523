"""The benchmark harness: rows, timing (median of several samples) and one Markdown
table of figures and ratios, every figure of a table measured in the same run.

A row module (``bench/rows_<topic>.py``) exposes ``rows() -> list[Row]``; ``run.py``
discovers them. A ``Row`` times one callable; ``compare`` names the keys of other
rows it is compared with, and the table prints ``time / baseline time`` for each
(below 1 means faster than the baseline). A row whose work runs elsewhere (in other
processes, e.g. under ``mpirun``) gives ``measured`` instead of ``fn``: it returns the
median seconds per call and the samples it was taken from. Rows that cannot run here (PyTorch not
installed, device unavailable) carry ``skip`` and show up as such.
"""

from __future__ import annotations

import contextlib
import gc
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field


@dataclass
class Row:
    group: str  # what is measured, e.g. "Tensor 4x4 add, requires_grad"
    subject: str  # who runs it, e.g. "needle cpu_numpy", "numpy", "torch"
    fn: Callable[[], object] | None  # one call = one measured operation
    key: str = ""  # how other rows refer to this one (default: "group|subject")
    compare: tuple[str, ...] = ()  # keys of baseline rows
    work: float | None = None  # amount of work per call, in work_unit * seconds
    work_unit: str = ""  # e.g. "GFLOP/s", "GB/s" (work is in GFLOP / GB)
    number: int | None = None  # calls per sample; None: calibrated
    sync: Callable[[], object] | None = None  # e.g. a device synchronise, after each sample
    # what a sample's time is read from: wall time, or e.g. time.thread_time for the
    # calling thread's own CPU time (a host cost while other threads share its cores)
    clock: Callable[[], float] = time.perf_counter
    skip: str = ""  # why this row cannot run here
    note: str = ""
    measured: Callable[[], tuple[float, list[float]]] | None = None  # timed elsewhere: (median, samples)
    # "time": fn is timed; "bytes": fn() returns a byte count (one call), e.g. a peak RSS
    measures: str = "time"
    # sampled in turns with the other interleaved rows of its group (a sample of each per
    # round), so a slow spell of a shared machine hits all of them, not one: their
    # ratios then hold from run to run
    interleave: bool = False

    def __post_init__(self) -> None:
        if not self.key:
            self.key = f"{self.group}|{self.subject}"


@dataclass
class Result:
    row: Row
    seconds: float | None  # median seconds per call (bytes for a "bytes" row)
    samples: list[float] = field(default_factory=list)
    error: str = ""


def time_calls(fn: Callable[[], object], number: int, sync: Callable[[], object] | None = None,
               clock: Callable[[], float] = time.perf_counter) -> float:
    """Seconds per call of ``number`` back-to-back calls (then ``sync``), read from ``clock``."""
    start = clock()
    for _ in range(number):
        fn()
    if sync:
        sync()
    return (clock() - start) / number


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """As timeit: the garbage collector's pauses are not the measured op's cost."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def measure(
    fn: Callable[[], object],
    *,
    number: int | None = None,
    repeat: int = 7,
    min_sample: float = 0.05,
    sync: Callable[[], object] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[float, list[float]]:
    """Median seconds per call over ``repeat`` samples of ``number`` calls each."""
    fn()  # warm up (first-call allocations, kernel builds)
    if sync:
        sync()
    if number is None:
        number = calibrate(fn, min_sample, sync)
    with collector_paused():
        samples = [time_calls(fn, number, sync, clock) for _ in range(repeat)]
    return statistics.median(samples), samples


def calibrate(fn: Callable[[], object], min_sample: float, sync: Callable[[], object] | None = None) -> int:
    """Calls per sample: doubled until one sample takes ``min_sample`` seconds."""
    number = 1
    while time_calls(fn, number, sync) * number < min_sample and number < 1 << 24:
        number *= 2
    return number


SETTLE_S = 0.1  # before each interleaved sample: OpenBLAS's idle threads spin ~2^28 cycles


def measure_interleaved(rows: Sequence[Row], *, repeat: int = 7, min_sample: float = 0.05,
                        settle: float = SETTLE_S) -> list[Result]:
    """Each row's median seconds per call, its samples taken in rounds (one sample of
    every row per round). Before each sample: ``settle`` seconds of sleep, so the
    previous row's library threads (still spinning after its last call) have stopped
    taking a core, then one untimed call that wakes this row's own threads."""
    numbers, samples, errors = {}, {id(r): [] for r in rows}, {}
    for row in rows:
        try:
            row.fn()
            numbers[id(row)] = row.number or calibrate(row.fn, min_sample, row.sync)
        except Exception as exc:
            errors[id(row)] = f"{type(exc).__name__}: {exc}"
    live = [r for r in rows if id(r) in numbers]
    with collector_paused():
        for _ in range(repeat):
            for row in live:
                if id(row) in errors:
                    continue
                try:
                    time.sleep(settle)
                    time_calls(row.fn, 1, row.sync)
                    samples[id(row)].append(time_calls(row.fn, numbers[id(row)], row.sync, row.clock))
                except Exception as exc:
                    errors[id(row)] = f"{type(exc).__name__}: {exc}"
    return [
        Result(r, None, error=errors[id(r)]) if id(r) in errors else
        Result(r, statistics.median(samples[id(r)]), samples[id(r)])
        for r in rows
    ]


def run_rows(
    rows: Sequence[Row], *, repeat: int = 7, min_sample: float = 0.05, progress: Callable[[str], None] | None = None
) -> list[Result]:
    results = []
    interleaved: dict[int, Result] = {}  # id(row) -> its result, measured with its group
    for row in rows:
        if row.skip or (row.fn is None and row.measured is None):
            results.append(Result(row, None, error=row.skip or "no callable"))
            continue
        if row.interleave and row.fn is not None and row.measures == "time":
            if id(row) not in interleaved:
                turns = [r for r in rows if r.group == row.group and r.interleave and r.fn is not None
                         and not r.skip and r.measures == "time"]
                if progress:
                    progress(f"{row.group} / {', '.join(r.subject for r in turns)} (in turns)")
                for r, res in zip(turns, measure_interleaved(turns, repeat=repeat, min_sample=min_sample), strict=True):
                    interleaved[id(r)] = res
            results.append(interleaved[id(row)])
            continue
        if progress:
            progress(f"{row.group} / {row.subject}")
        try:
            if row.measures == "bytes":
                value = float(row.fn())
                results.append(Result(row, value, [value]))
                continue
            if row.measured is not None:
                median, samples = row.measured()
            else:
                median, samples = measure(row.fn, number=row.number, repeat=repeat, min_sample=min_sample,
                                          sync=row.sync, clock=row.clock)
            results.append(Result(row, median, samples))
        except Exception as exc:  # one failing row must not sink the table
            results.append(Result(row, None, error=f"{type(exc).__name__}: {exc}"))
    return results


def format_time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def format_bytes(n: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


def markdown_table(results: Sequence[Result]) -> str:
    """One table: time per call, throughput, and ratios to each baseline of the row."""
    by_key: dict[str, Result] = {}
    for r in results:
        if r.row.key in by_key:  # two row modules claiming one key would compare against the wrong row
            raise ValueError(f"bench rows share the key {r.row.key!r}: give one of them its own key=")
        by_key[r.row.key] = r
    lines = [
        "| benchmark | subject | time / call (or bytes) | throughput | ÷ baseline |",
        "|---|---|---:|---:|---|",
    ]
    for res in results:
        row = res.row
        if res.seconds is None:
            lines.append(f"| {row.group} | {row.subject} | n/a | | {res.error} |")
            continue
        rate = f"{row.work / res.seconds:.3g} {row.work_unit}" if row.work and row.measures == "time" else ""
        shown = format_bytes(res.seconds) if row.measures == "bytes" else format_time(res.seconds)
        ratios = []
        for key in row.compare:
            base = by_key.get(key)
            if base is not None and base.seconds:
                ratios.append(f"{res.seconds / base.seconds:.2f}× {base.row.subject}")
        note = f" ({row.note})" if row.note else ""
        lines.append(
            f"| {row.group} | {row.subject} | {shown} | {rate} | {', '.join(ratios)}{note} |"
        )
    return "\n".join(lines)
