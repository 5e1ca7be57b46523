"""Where a training step's time goes: kernel time per kernel, and framework time.

``python bench/profile_step.py rows_lstm [--device cpu] [--steps 5]`` builds the row
module's model (``needle_model(dev)``, ``batch()``, ``OPTIMISER``, as the model rows
and ``rows_memory`` do), wraps every kernel of the device in a timer, runs the steps and
prints a Markdown table: per kernel, calls and milliseconds per step and the share of
the step; then *framework* = step time - kernel time (Python, graph, allocation).
A timer costs well under a microsecond per call; the wall time of the steps is
measured with the timers in place, so the two parts add up to it. ``--clock cpu``
times with this thread's CPU time instead (with ``NEEDLE_NUM_THREADS=1`` every kernel
runs on the calling thread): on a shared, busy machine time spent descheduled then
counts in neither part, so before/after comparisons stay meaningful.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))


def instrument(dev, clock: Callable[[], float] = time.perf_counter) -> dict[str, list[float]]:
    """Wrap each kernel of ``dev`` so its calls and seconds accumulate in the result."""
    from needle_core.kernels import ALL_KERNELS

    stats: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])

    def timed(name: str, fn: Callable) -> Callable:
        entry = stats[name]

        def call(*args, **kwargs):
            start = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                entry[0] += 1
                entry[1] += clock() - start

        return call

    for name in ALL_KERNELS:
        fn = dev.__dict__.get(name)
        if callable(fn) and name != "Array":
            dev.__dict__[name] = timed(name, fn)
    return stats


CLOCKS = {"wall": time.perf_counter, "cpu": time.thread_time}


def profile(module_name: str, device: str, steps: int, clock: str = "wall") -> str:
    import numpy as np
    from _steps import needle_step

    import needle as ndl

    spec = importlib.import_module(module_name)
    dev = ndl.device(device)
    if not dev.enabled():
        raise SystemExit(dev.unavailable_message())
    np.random.seed(0)
    X, y = spec.batch()
    step = needle_step(dev, spec.needle_model(dev), X, y, spec.OPTIMISER)
    step()  # warm up before the timers go in
    tick = CLOCKS[clock]
    stats = instrument(dev, tick)
    start = tick()
    for _ in range(steps):
        step()
    total = (tick() - start) / steps
    kernel_total = sum(s for _, s in stats.values()) / steps
    lines = [f"{module_name} on {device}: {total * 1e3:.2f} ms per step ({clock} clock) "
             f"(kernels {kernel_total * 1e3:.2f} ms, framework {(total - kernel_total) * 1e3:.2f} ms)", "",
             "| part | calls / step | ms / step | share |", "|---|---:|---:|---:|"]
    ranked = sorted(((s / steps, c / steps, name) for name, (c, s) in stats.items() if c), reverse=True)
    for seconds, calls, name in ranked:
        lines.append(f"| kernel `{name}` | {calls:.0f} | {seconds * 1e3:.2f} | {seconds / total:.1%} |")
    framework = total - kernel_total
    lines.append(f"| framework (Python, graph, allocation) | | {framework * 1e3:.2f} | {framework / total:.1%} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("module", help="a model row module: rows_training, rows_cnn or rows_lstm")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="wall time, or this thread's CPU time (use with NEEDLE_NUM_THREADS=1 on a busy machine)")
    args = parser.parse_args(argv)
    print(profile(args.module, args.device, args.steps, args.clock))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
