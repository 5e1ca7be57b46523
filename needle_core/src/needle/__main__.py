"""``python -m needle <command>``: dispatch to commands registered by packages.

Packages register commands in the entry-point group ``needle.commands`` (core
registers ``devices``; needle-nn registers ``train``). Each entry point names a
function ``main(argv: list[str]) -> int``.
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
from collections.abc import Callable


def run_command(command: Callable[[list[str]], int | None], argv: list[str]) -> int:
    """``command(argv)`` as a process would end it: a closed pipe (``| head``) ends it quietly."""
    try:
        status = int(command(argv) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit flush
        return status
    except BrokenPipeError:
        # The reader stopped reading: send the rest of stdout nowhere and stop, as
        # command-line tools do, instead of printing a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 1


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {ep.name: ep for ep in importlib.metadata.entry_points(group="needle.commands")}
    # core's own command works even where package metadata is missing (a source checkout)
    own = importlib.metadata.EntryPoint("devices", "needle_core.registry.cli:main", "needle.commands")
    commands.setdefault("devices", own)
    known = ", ".join(sorted(commands)) or "none installed"
    usage = (f"usage: needle <command> [args]  (or python -m needle <command>)\ncommands: {known}\n"
             "needle <command> --help describes a command")
    if argv and argv[0] in ("-h", "--help"):
        print(usage)
        return 0
    if not argv:
        print(usage, file=sys.stderr)
        return 2
    if argv[0] not in commands:
        print(f"needle: unknown command {argv[0]!r} (available: {known})", file=sys.stderr)
        return 2
    return run_command(commands[argv[0]].load(), argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
