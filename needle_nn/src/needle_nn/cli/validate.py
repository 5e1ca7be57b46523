"""Checks on ``needle train``'s arguments, run before any data is read or model built.

A mistake should cost the user a second, not a training run: every check here is
cheap (numbers, paths, an import probe) and raises :class:`UsageError` with what
was given and what to do.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
from collections.abc import Mapping
from typing import Any

from .errors import UsageError, warn
from .tasks import data_files, data_folder

PROG = "needle train"


def check_numbers(args: argparse.Namespace) -> None:
    """Counts must be positive; a learning rate that cannot train is warned about."""
    for option, value in (("--epochs", args.epochs), ("--batch-size", args.batch_size),
                          ("--limit-train", args.limit_train), ("--max-steps", args.max_steps)):
        if value is not None and value <= 0:
            raise UsageError(f"{option} must be a positive whole number, got {value}")
    if not 0 <= args.seed < 2**32:
        raise UsageError(f"--seed must be between 0 and 2**32 - 1, got {args.seed}")
    if not 0 <= args.momentum < 1:
        raise UsageError(f"--momentum must be in [0, 1), got {args.momentum}")
    if args.lr < 0:
        warn(PROG, f"--lr {args.lr} is negative: the optimiser will climb the loss instead of descending it")
    elif args.lr == 0:
        warn(PROG, "--lr 0: the weights will not change")
    if args.weight_decay < 0:
        warn(PROG, f"--weight-decay {args.weight_decay} is negative: it pushes the weights to grow")


def check_output_file(option: str, path: str) -> None:
    """``path`` can be written: its folder exists and it is not itself a folder."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise UsageError(f"{option} {path}: that is a folder; give a file name, e.g. {os.path.join(path, 'x')}")
    if not os.path.isdir(folder):
        raise UsageError(f"{option} {path}: the folder {folder} does not exist; create it first (mkdir -p {folder})")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"{option} {path}: the folder {folder} is not writable")


def check_plot(path: str, install_hint: str) -> None:
    """Writable, matplotlib importable, and a file type matplotlib can write."""
    check_output_file("--plot", path)
    if importlib.util.find_spec("matplotlib") is None:
        raise UsageError(f"--plot needs matplotlib, which is not installed: {install_hint}")
    from matplotlib.figure import Figure

    kinds = Figure().canvas.get_supported_filetypes()
    ext = os.path.splitext(path)[1].lstrip(".").lower()
    if ext and ext not in kinds:
        raise UsageError(f"--plot {path}: matplotlib cannot write .{ext} files; use one of "
                         + ", ".join(f".{k}" for k in sorted(kinds)))


def check_data_dir(model: str, data_dir: str) -> None:
    """The folder exists and holds every file ``model`` reads (all missing ones are named)."""
    if not os.path.exists(data_dir):
        raise UsageError(f"--data-dir {data_dir} does not exist")
    if not os.path.isdir(data_dir):
        raise UsageError(f"--data-dir {data_dir} is a file, not a folder")
    folder = data_folder(model, data_dir)
    needed = data_files(model)
    missing = [name for name in needed if not os.path.isfile(os.path.join(folder, name))]
    where = data_dir if folder == data_dir else f"{data_dir} (read from {folder})"
    if len(missing) == len(needed):
        raise UsageError(f"--data-dir {where} holds none of the files --model {model} reads: {', '.join(needed)}")
    if missing:
        raise UsageError(f"--data-dir {where} lacks {', '.join(missing)} (--model {model} reads "
                         f"{', '.join(needed)})")


def check_resume(path: str, model: str | None, state: Mapping[str, Any]) -> None:
    """``state`` (loaded from ``path``) is a ``needle train`` checkpoint (of ``model`` when one is given)."""
    absent = [k for k in ("model", "position", "config", "history") if k not in state]
    if absent:
        raise UsageError(f"--resume {path}: not a checkpoint written by needle train --save (no "
                         f"{', '.join(repr(k) for k in absent)} entry)")
    saved_model = state["config"].get("model")
    if model is not None and saved_model != model:
        raise UsageError(f"--resume {path}: the checkpoint trained --model {saved_model}, not {model}; "
                         f"add --model {saved_model}")


def check_resume_has_work(path: str, position: Mapping[str, Any], epochs: int) -> None:
    """A finished run resumes only with a larger ``--epochs``."""
    done = int(position["epoch"])
    if int(position["batch"]) == 0 and done >= epochs:
        raise UsageError(f"--resume {path}: that run already trained {done} epoch{'' if done == 1 else 's'} "
                         f"(--epochs {epochs}); pass a larger --epochs, e.g. --epochs {done + 1}, to train further")
