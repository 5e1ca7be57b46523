"""``python -m needle devices``: every backend, its status, and a smoke check of each usable device."""

from __future__ import annotations

import argparse
import sys
import warnings

from . import STATE, devices
from .errors import ExperimentalDeviceWarning, PluginWarning
from .course import PACKAGES, REFERENCE
from .hints import install_command
from .records import BackendRecord
from .resolve import resolve
from .state import short_error
from .table import smoke

_COLUMNS = ("DEVICE", "STATUS", "CHECK", "PROVIDER", "NOTES")


def check(record: BackendRecord) -> tuple[str, str]:
    """``("PASS", "")`` / ``("FAIL", reason)`` for a usable device; ``("-", "")`` otherwise."""
    if not (record.usable and record.active):
        return "-", ""
    try:
        device = resolve(STATE, record.name, soft=True)
        if not device.enabled():
            return "FAIL", device.unavailable_message()
        problem = smoke(device)
    except Exception as exc:
        return "FAIL", short_error(exc)
    return ("FAIL", problem) if problem else ("PASS", "")


def _notes(record: BackendRecord, failure: str) -> str:
    parts = [failure] if failure else []
    if record.reason and not failure:
        parts.append(record.reason + (f"; {record.hint}" if record.hint else ""))
    if record.aliases:
        parts.append("aliases: " + ", ".join(record.aliases))
    if not record.active:
        parts.append("standby: another provider of this device is used")
    if record.overrides:
        parts.append(record.overrides_text())
    return "; ".join(parts)


def _details(name: str) -> list[str]:
    """Extra lines a backend offers about itself (``DeviceSpec.describe``)."""
    lines: list[str] = []
    for provider in STATE.providers.get(name, ()):
        if provider.spec.describe is None:
            continue
        try:
            lines += [str(line) for line in provider.spec.describe()]
        except Exception as exc:  # a listing must never take the table down
            lines.append(f"(describe failed: {short_error(exc)})")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m needle devices", description=__doc__)
    parser.add_argument(
        "--no-verify", action="store_true", help="only the cheap probes: build no device, run no smoke op"
    )
    args = parser.parse_args(argv)
    rows, failed = [], False
    with warnings.catch_warnings():  # the table reports what these warnings would say
        warnings.simplefilter("ignore", PluginWarning)
        warnings.simplefilter("ignore", ExperimentalDeviceWarning)
        for record in devices(verify=not args.no_verify):
            result, failure = ("-", "") if args.no_verify else check(record)
            failed |= result == "FAIL"
            rows.append((record.name, record.status, result, record.provider, _notes(record, failure)))
    if not rows:
        print(f"no needle backend is installed: {install_command(PACKAGES[REFERENCE])} (see docs/backends.md)")
        return 1
    widths = [max(len(str(r[i])) for r in (*rows, _COLUMNS)) for i in range(len(_COLUMNS) - 1)]
    for row in (_COLUMNS, *rows):
        print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1])
        if row is not _COLUMNS:
            for line in _details(row[0]):
                print("    " + line)
    if STATE.blocked:
        print("blocked by NEEDLE_BLOCK_PLUGINS: " + ", ".join(STATE.blocked))
    sys.stdout.flush()
    return 1 if failed else 0
