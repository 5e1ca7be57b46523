"""How ``needle train`` reports a user's mistake: one message, exit status 2, no traceback.

A :class:`UsageError` is a mistake in the command line or in what it points at (a
missing data folder, a corrupt checkpoint, an unknown device). ``--debug`` or
``NEEDLE_DEBUG=1`` shows the traceback instead, for bug reports.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: Exit status for a usage mistake (argparse uses the same).
USAGE_EXIT = 2


class UsageError(Exception):
    """A mistake the user can fix; its message says what was expected and what to do."""


def debug_requested(flag: bool = False) -> bool:
    return flag or os.environ.get("NEEDLE_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


@contextmanager
def user_errors(what: str, *types: type[BaseException]) -> Iterator[None]:
    """Turn ``types`` raised inside the block into a UsageError prefixed with ``what``.

    Only wrap code whose failures are caused by the user's input (a path, a device
    name), so a bug elsewhere still shows its traceback.
    """
    try:
        yield
    except types as exc:
        message = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
        raise UsageError(f"{what}: {message}" if what else message) from exc


def report(prog: str, run: Callable[[], int], debug: bool) -> int:
    """``run()``, printing a UsageError once as ``prog: error: message`` (status 2) unless ``debug``."""
    try:
        return run()
    except UsageError as exc:
        if debug_requested(debug):
            raise
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return USAGE_EXIT


def warn(prog: str, message: str) -> None:
    print(f"{prog}: warning: {message}", file=sys.stderr)
