"""Device names: ``type[:index]`` parsing, canonical form, "did you mean" hints."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def parse(name: str) -> tuple[str, int]:
    """``"cuda:1"`` -> ``("cuda", 1)``; ``"cpu"`` -> ``("cpu", 0)``."""
    if not isinstance(name, str):
        raise TypeError(f"a device name is a string like 'cpu' or 'cuda:1', got {type(name).__name__} {name!r}")
    type_name, sep, index = name.strip().lower().partition(":")
    if not type_name or (sep and not index.isdigit()):
        raise ValueError(
            f"expected a device name 'type' or 'type:index' with a non-negative integer index "
            f"(e.g. 'cpu', 'cuda:1'), got {name!r}"
        )
    return type_name, int(index) if sep else 0


def canonical(type_name: str, index: int) -> str:
    return f"{type_name}:{index}"


def suggest(word: str, known: Iterable[str]) -> str:
    """`` Did you mean 'cuda'?`` (with a leading space), or an empty string."""
    # never suggest the name itself back (e.g. a known but blocked plugin)
    close = difflib.get_close_matches(word, sorted(set(known) - {word}), n=3, cutoff=0.6)
    if not close:
        return ""
    return " Did you mean " + " or ".join(repr(c) for c in close) + "?"
