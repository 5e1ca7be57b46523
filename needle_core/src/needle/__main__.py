"""``python -m needle <command>``: dispatch to commands registered by packages.

Packages register commands in the entry-point group ``needle.commands`` (core
registers ``devices``; needle-nn registers ``train``). Each entry point names a
function ``main(argv: list[str]) -> int``.
"""

from __future__ import annotations

import importlib.metadata
import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {ep.name: ep for ep in importlib.metadata.entry_points(group="needle.commands")}
    # core's own command works even where package metadata is missing (a source checkout)
    own = importlib.metadata.EntryPoint("devices", "needle_core.registry.cli:main", "needle.commands")
    commands.setdefault("devices", own)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in commands:
        known = ", ".join(sorted(commands)) or "none installed"
        if argv and argv[0] not in ("-h", "--help"):
            print(f"needle: unknown command {argv[0]!r} (available: {known})", file=sys.stderr)
            return 2
        print(f"usage: python -m needle <command> [args]\ncommands: {known}")
        return 0
    return int(commands[argv[0]].load()(argv[1:]) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
