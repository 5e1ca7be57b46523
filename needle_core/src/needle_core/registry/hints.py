"""``pip install`` commands that work where needle runs.

From a source checkout the distributions are folders of the repository
(``pip install ./needle_backend_opencl``, no index has them); from an index install
they are package names. The checkout is recognised by needle-core's install record
(PEP 610 ``direct_url.json``: installed from a local folder, editable or not) or by
needle_core running from ``<repo>/needle_core/src``.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import os
from pathlib import Path
from urllib.parse import unquote, urlparse


def _installed_from_folder() -> Path | None:
    try:
        record = importlib.metadata.distribution("needle-core").read_text("direct_url.json")
    except importlib.metadata.PackageNotFoundError:
        return None
    if not record:
        return None
    url = json.loads(record).get("url", "")
    parsed = urlparse(url)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else None


@functools.lru_cache(maxsize=1)
def checkout_root() -> Path | None:
    """The repository root needle was installed from, if it is still there."""
    here = Path(__file__).resolve().parents[3]  # <repo>/needle_core/src/needle_core/registry/hints.py
    for core_folder in (_installed_from_folder(), here):
        if core_folder is None:
            continue
        root = core_folder.parent
        if (root / "needle_core" / "pyproject.toml").is_file():
            return root
    return None


def install_command(distribution: str, extra: str | None = None) -> str:
    """``pip install`` for ``distribution`` (e.g. ``needle-backend-opencl``), optionally with ``[extra]``."""
    root = checkout_root()
    folder = distribution.replace("-", "_")
    suffix = f"[{extra}]" if extra else ""
    if root is None or not (root / folder / "pyproject.toml").is_file():
        target = distribution + suffix
        return f"pip install '{target}'" if extra else f"pip install {target}"
    target = f"./{folder}{suffix}"
    command = f"pip install '{target}'" if extra else f"pip install {target}"
    if Path(os.getcwd()).resolve() != root.resolve():
        command += f" (from the repository root, {root})"
    return command
