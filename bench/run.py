"""Run the needle benchmarks and print one Markdown table (``python bench/run.py``).

Row modules are discovered as ``bench/rows_*.py``; each exposes ``rows() -> list[Row]``
(see ``harness.py``). Every figure and ratio in the printed table comes from this run.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # row modules import ``harness`` by name

from harness import Row, markdown_table, run_rows  # noqa: E402


def discover(pattern: str = "rows_*.py") -> list[tuple[str, object]]:
    """Import every row module; a module that fails to import becomes a skipped row."""
    modules = []
    for path in sorted(HERE.glob(pattern)):
        name = path.stem
        try:
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            modules.append((name, module))
        except Exception as exc:
            modules.append((name, exc))
    return modules


def collect(modules: list[tuple[str, object]], only: list[str]) -> list[Row]:
    rows: list[Row] = []
    for name, module in modules:
        if only and not any(o in name for o in only):
            continue
        if isinstance(module, Exception):
            rows.append(Row(name, "-", None, skip=f"import failed: {type(module).__name__}: {module}"))
            continue
        try:
            rows.extend(module.rows())
        except Exception as exc:
            rows.append(Row(name, "-", None, skip=f"rows() failed: {type(exc).__name__}: {exc}"))
    return rows


def environment() -> str:
    import numpy as np

    parts = [
        f"Python {platform.python_version()}",
        f"NumPy {np.__version__}",
        f"{os.cpu_count()} CPUs",
        platform.machine(),
    ]
    try:
        import torch

        parts.append(f"PyTorch {torch.__version__} ({torch.get_num_threads()} threads)")
    except ImportError:
        parts.append("PyTorch not installed")
    try:
        import needle as ndl

        parts.append("needle devices: " + ", ".join(repr(d) for d in ndl.all_devices() if d.enabled()))
    except Exception as exc:  # the table still prints NumPy/PyTorch rows
        parts.append(f"needle import failed: {exc}")
    return "; ".join(parts)


def cpu_ticks() -> tuple[int, int] | None:
    """(all, stolen) CPU ticks so far from /proc/stat (Linux), else None. *Stolen* is
    time the hypervisor gave this VM's virtual CPUs to someone else."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        ticks = [int(f) for f in fields]
    except (OSError, ValueError):
        return None
    return sum(ticks[:8]), ticks[7] if len(ticks) > 7 else 0


def stolen_share(before: tuple[int, int] | None, after: tuple[int, int] | None) -> str:
    """The run's stolen share of CPU time, for the table header: a few percent or more
    means a busy host slowed some rows (ratios between interleaved rows hold better)."""
    if before is None or after is None or after[0] <= before[0]:
        return ""
    return f"; CPU time stolen by the host during the run: {100 * (after[1] - before[1]) / (after[0] - before[0]):.1f}%"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-m",
        "--module",
        action="append",
        default=[],
        help="only row modules whose name contains this (repeatable), e.g. -m overhead",
    )
    parser.add_argument("-k", "--filter", default="", help="only rows whose benchmark or subject contains this")
    parser.add_argument("--repeat", type=int, default=7, help="samples per row; the median is reported")
    parser.add_argument("--min-sample", type=float, default=0.05, help="seconds per sample when calibrating")
    parser.add_argument("--list", action="store_true", help="list rows without running them")
    parser.add_argument("-o", "--output", help="also write the table to this file")
    args = parser.parse_args(argv)

    rows = collect(discover(), args.module)
    if args.filter:
        rows = [r for r in rows if args.filter in r.group or args.filter in r.subject]
    if args.list:
        for r in rows:
            print(f"{r.group} | {r.subject}" + (f"  [skip: {r.skip}]" if r.skip else ""))
        return 0
    before = cpu_ticks()
    results = run_rows(
        rows,
        repeat=args.repeat,
        min_sample=args.min_sample,
        progress=lambda s: print(f"  running {s}", file=sys.stderr),
    )
    text = f"{environment()}{stolen_share(before, cpu_ticks())}\n\n{markdown_table(results)}\n"
    print(text)
    if args.output:
        Path(args.output).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
