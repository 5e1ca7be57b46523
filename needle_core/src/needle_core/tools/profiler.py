"""``profile``: per-op and per-kernel timings with the plugin that provided each kernel.

Every Tensor op (forward and backward) and every kernel call is timed with
``perf_counter_ns``; after each kernel the device's optional ``synchronize`` hook runs
(asynchronous backends: OpenCL, CUDA), so a kernel's time is its execution, not its
enqueue. Aggregates are kept per (op, pass) and per (op, pass, kernel, device); the
event list feeds ``export_chrome_trace`` (capped at ``max_events``; aggregates are
never capped).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ._tap import TAP, KernelCall, OpFrame

OUTSIDE = "(outside ops)"


@dataclass
class Stat:
    calls: int = 0
    total_ns: int = 0
    bytes: int = 0
    kernel_ns: int = 0  # for op rows: time inside its kernels


class Table(str):
    """The Markdown table; shown as itself (not quoted) at a prompt."""

    def __repr__(self) -> str:
        return str(self)


class Profile:
    """Collects what ran inside ``with ndl.profile() as prof:``.

    ``ops``: ``{(op, pass, device): Stat}``; ``kernels``: ``{(op, pass, kernel, device,
    provider): Stat}`` (op ``"(outside ops)"`` for kernels called from NDArray code
    such as optimizer updates); ``wall_ns``; ``trace_events()`` (Chrome trace events).
    """

    synchronise = True
    begin_noop = True  # only *_end callbacks: the tap skips op_begin/kernel_begin

    def __init__(self, max_events: int = 1_000_000) -> None:
        self.ops: dict[tuple[str, str, str], Stat] = {}
        self.kernels: dict[tuple[str, str, str, str, str], Stat] = {}
        self.events: list[tuple[Any, ...]] = []  # compact records; trace_events() formats them
        self.max_events = max_events
        self.dropped_events = 0
        self.t_start = self.t_end = 0

    # -- the tap's callbacks -----------------------------------------------------------------
    def op_begin(self, frame: OpFrame) -> None:
        pass

    def op_end(self, frame: OpFrame, result: Any) -> None:
        data = result.cached_data
        first = data[0] if type(data) is tuple and data else data
        device = first.device.canonical if hasattr(first, "device") else "?"
        phase = "backward" if frame.phase[0] == "b" else "forward"
        key = (frame.name, phase, device)
        stat = self.ops.get(key)
        if stat is None:
            stat = self.ops[key] = Stat()
        t0, t1 = frame.t0, frame.t1
        stat.calls += 1
        stat.total_ns += t1 - t0
        for c in frame.kernels:
            stat.kernel_ns += c.t1 - c.t0
        if len(self.events) < self.max_events:
            self.events.append((key[0], "op", t0, t1, frame.phase, device, None, None, 0))
        else:
            self.dropped_events += 1

    def kernel_begin(self, call: KernelCall) -> None:
        pass

    def kernel_end(self, call: KernelCall) -> None:
        frame = call.frame
        if frame is None:
            op, phase = OUTSIDE, "-"
        else:
            op, phase = frame.name, "backward" if frame.phase[0] == "b" else "forward"
        device, provider = call.device.canonical, call.provider
        key = (op, phase, call.name, device, provider)
        stat = self.kernels.get(key)
        if stat is None:
            stat = self.kernels[key] = Stat()
        nbytes = bytes_moved(call.name, call.args)
        stat.calls += 1
        stat.total_ns += call.t1 - call.t0
        stat.bytes += nbytes
        if len(self.events) < self.max_events:
            self.events.append((call.name, "kernel", call.t0, call.t1, None, device, provider, op, nbytes))
        else:
            self.dropped_events += 1

    def trace_events(self) -> list[dict[str, Any]]:
        """The recorded calls as Chrome trace complete events (``"ph": "X"``, µs)."""
        pid, start, out = os.getpid(), self.t_start, []
        for name, cat, t0, t1, phase, device, provider, op, nbytes in self.events:
            args = ({"pass": phase, "device": device} if cat == "op"
                    else {"device": device, "provider": provider, "op": op, "bytes": nbytes})
            out.append({"name": name, "cat": cat, "ph": "X", "ts": (t0 - start) / 1e3, "dur": (t1 - t0) / 1e3,
                        "pid": pid, "tid": 1, "args": args})
        return out

    # -- results ---------------------------------------------------------------------------------
    @property
    def wall_ns(self) -> int:
        return (self.t_end or time.perf_counter_ns()) - self.t_start

    @property
    def kernel_ns(self) -> int:
        return sum(s.total_ns for s in self.kernels.values())

    @property
    def op_ns(self) -> int:
        return sum(s.total_ns for s in self.ops.values())

    def summary(self) -> dict[str, float]:
        """Seconds: ``wall_s`` (the block), ``ops_s`` (inside Tensor ops), ``kernels_s`` (inside
        every kernel), ``outside_ops_kernels_s`` (kernels called outside ops: optimizer
        updates, transfers), ``python_s`` (wall - kernels: all Python, the profiler's
        own bookkeeping included) and ``between_ops_s`` (wall - ops - kernels outside ops:
        the user's Python, graph and buffer freeing)."""
        wall, kernels, ops = self.wall_ns / 1e9, self.kernel_ns / 1e9, self.op_ns / 1e9
        outside = sum(s.total_ns for k, s in self.kernels.items() if k[0] == OUTSIDE) / 1e9
        return {"wall_s": wall, "ops_s": ops, "kernels_s": kernels, "outside_ops_kernels_s": outside,
                "python_s": wall - kernels, "between_ops_s": wall - ops - outside}

    def table(self, sort: str = "total", limit: int | None = None) -> Table:
        """A Markdown table: one row per (op, pass) with its kernels below it.

        ``sort``: ``"total"``, ``"calls"``, ``"mean"`` or ``"name"`` (op groups and the
        kernels in each). ``limit``: at most this many op groups (the rest summed).
        """
        keys = {"total": lambda s: -s.total_ns, "calls": lambda s: -s.calls,
                "mean": lambda s: -s.total_ns / max(s.calls, 1), "name": lambda s: 0}
        if sort not in keys:
            raise ValueError(f"table(sort=...) takes one of {sorted(keys)}, got {sort!r}")
        order = keys[sort]
        groups: dict[tuple[str, str], list[tuple[tuple, Stat]]] = {}
        for key, stat in self.kernels.items():
            groups.setdefault(key[:2], []).append((key, stat))
        heads: dict[tuple[str, str], tuple[str, Stat]] = {}
        for (op, phase, device), stat in self.ops.items():
            heads[(op, phase)] = (device, _merge(heads.get((op, phase), ("", Stat()))[1], stat))
        for key, rows in groups.items():
            if key not in heads:  # kernels outside ops: the group's row sums its kernels
                total = Stat()
                for _, s in rows:
                    total = _merge(total, s)
                heads[key] = (rows[0][0][3], total)
        ranked = sorted(heads.items(), key=lambda kv: (order(kv[1][1]), kv[0]))
        if limit is not None:
            ranked = ranked[:limit]
        wall = max(self.wall_ns, 1)
        out = ["| op | pass | kernel | device | provider | calls | total ms | mean µs | % wall | bytes |",
               "|---|---|---|---|---|---:|---:|---:|---:|---:|"]
        for (op, phase), (device, stat) in ranked:
            python = (stat.total_ns - stat.kernel_ns) / 1e6
            note = f" (Python {python:.3f} ms)" if op != OUTSIDE else ""
            out.append(f"| **{op}** | {phase} | all{note} | {device} | | {stat.calls} | {stat.total_ns / 1e6:.3f} | "
                       f"{stat.total_ns / 1e3 / max(stat.calls, 1):.1f} | {100 * stat.total_ns / wall:.1f} | |")
            for key, s in sorted(groups.get((op, phase), []), key=lambda kv: (order(kv[1]), kv[0])):
                out.append(f"| | | {key[2]} | {key[3]} | {key[4]} | {s.calls} | {s.total_ns / 1e6:.3f} | "
                           f"{s.total_ns / 1e3 / max(s.calls, 1):.1f} | {100 * s.total_ns / wall:.1f} | "
                           f"{_human(s.bytes)} |")
        t = self.summary()
        out.append(f"\nwall {t['wall_s'] * 1e3:.3f} ms: inside ops {t['ops_s'] * 1e3:.3f} ms, inside kernels "
                   f"{t['kernels_s'] * 1e3:.3f} ms, Python outside kernels {t['python_s'] * 1e3:.3f} ms "
                   f"(of which between ops {t['between_ops_s'] * 1e3:.3f} ms)"
                   + (f"; {self.dropped_events} trace events dropped" if self.dropped_events else ""))
        return Table("\n".join(out))

    def export_chrome_trace(self, path: str | os.PathLike) -> None:
        """Write the Chrome trace event format (JSON object with ``traceEvents``):
        complete events (``"ph": "X"``, times in µs from the start of profiling), ops
        with ``cat`` ``"op"`` and kernels (nested in their op) with ``cat`` ``"kernel"``.
        Perfetto (ui.perfetto.dev) and chrome://tracing open it."""
        meta = [{"name": "process_name", "ph": "M", "pid": os.getpid(), "tid": 1, "args": {"name": "needle"}},
                {"name": "thread_name", "ph": "M", "pid": os.getpid(), "tid": 1, "args": {"name": "ops and kernels"}}]
        doc = {"traceEvents": meta + self.trace_events(), "displayTimeUnit": "ms",
               "otherData": {"producer": "needle.profile", **{k: round(v, 9) for k, v in self.summary().items()},
                             "dropped_events": self.dropped_events}}
        with open(path, "w", encoding="utf-8") as f:
            json.dump(doc, f)


#: Kernels that take a strided view: the position of the view's ``shape`` argument.
_VIEW_SHAPE = {"to_numpy": 1, "compact": 2, "ewise_setitem": 2, "scalar_setitem": 3, "reduce_sum_view": 2,
               "reduce_max_view": 2, "ewise_strided": 9}


def bytes_moved(name: str, args: tuple[Any, ...]) -> int:
    """Bytes a kernel reads and writes, estimated from its buffer arguments: each buffer's
    elements times its item size, where a buffer read or written through a view counts
    only the view's elements. Zero when no argument is a buffer (unknown)."""
    total = 0
    at = _VIEW_SHAPE.get(name)
    view = math.prod(args[at]) if at is not None and at < len(args) else None
    for a in args:
        kind = type(a)
        if kind in _SCALARS:
            continue
        buffer = _IS_BUFFER.get(kind)
        if buffer is None:
            buffer = _IS_BUFFER[kind] = hasattr(a, "ptr") and hasattr(a, "size")
        if buffer:
            size = a.size
            item = 8 if str(getattr(a, "dtype", "float32")) == "float64" else 4
            total += item * (size if view is None or size < view else view)
    return total


_SCALARS = frozenset({int, float, str, tuple, bool, type(None)})
_IS_BUFFER: dict[type, bool] = {}  # per argument type: is it a device buffer (``ptr`` and ``size``)?


def _merge(a: Stat, b: Stat) -> Stat:
    return Stat(a.calls + b.calls, a.total_ns + b.total_ns, a.bytes + b.bytes, a.kernel_ns + b.kernel_ns)


def _human(n: int) -> str:
    if not n:
        return ""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def _synchronise_all() -> None:
    for device in list(TAP.wrapped.values()):
        sync = device.__dict__.get("synchronize")
        if sync is not None:
            sync()


@contextmanager
def profile(max_events: int = 1_000_000) -> Iterator[Profile]:
    """Profile the ops and kernels run inside the block (see ``Profile``)."""
    prof = Profile(max_events)
    TAP.add(prof)
    _synchronise_all()  # earlier queued work is not ours
    prof.t_start = time.perf_counter_ns()
    try:
        yield prof
    finally:
        _synchronise_all()
        prof.t_end = time.perf_counter_ns()
        TAP.remove(prof)
