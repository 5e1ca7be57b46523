"""The ``needle`` console script: ``needle train ...``, and every other registered command.

``needle train`` runs :func:`needle_nn.cli.train.main`; other commands (``needle
devices``) go through the same dispatcher as ``python -m needle``.
"""

from __future__ import annotations

import sys


def console_main(argv: list[str] | None = None) -> int:
    from needle.__main__ import main as dispatch
    from needle.__main__ import run_command

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "train":
        from .train import main

        return run_command(main, argv[1:])
    return dispatch(argv)
