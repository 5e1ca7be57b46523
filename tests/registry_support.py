"""Helpers for the registry tests: run code in a fresh interpreter with a chosen env.

Registry behaviour depends on environment variables and on fresh import state, so
those tests run ``sys.executable -c CODE`` with the fixture plugins of
``fixtures/plugins`` (and this folder, for ``error_text`` and ``device_row``) on
``PYTHONPATH`` and every ``NEEDLE_*`` variable cleared.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

TESTS = Path(__file__).parent
FIXTURE_PLUGINS = TESTS / "fixtures" / "plugins"
NUMPY_PLUGIN = "needle_backend_numpy.plugin"


def clean_env(**env: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("NEEDLE_")}
    path = [str(FIXTURE_PLUGINS), str(TESTS), base.get("PYTHONPATH", "")]  # TESTS: error_text in snippets
    base["PYTHONPATH"] = os.pathsep.join(p for p in path if p)
    base.update(env)
    return base


def isolated_env(*plugins: str, **env: str) -> dict[str, str]:
    """No entry points: only the numpy backend and the named fixture plugins."""
    return clean_env(NEEDLE_DISABLE_PLUGIN_AUTOLOAD="1", NEEDLE_PLUGINS=",".join((NUMPY_PLUGIN, *plugins)), **env)


def error_text(call: Callable[[], object], expected: type[BaseException], absent: str) -> str:
    """The message of the ``expected`` error ``call()`` raises; AssertionError(absent) when it raises none.

    Snippets run by ``run_python`` import it (``from registry_support import error_text``).
    """
    try:
        call()
    except expected as exc:
        return str(exc)
    raise AssertionError(absent)


def device_row(name: str, status: str, reason: str = "") -> Any:
    """The row of ``needle.devices()`` named ``name``, asserted to have ``status`` and
    ``reason`` in its reason (snippets import it like ``error_text``)."""
    import needle

    row = {r.name: r for r in needle.devices()}[name]
    assert row.status == status and reason in row.reason, row
    return row


def run_python(
    code: str, env: dict[str, str], *, check: bool = True, args: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter; on ``check`` a failure shows its output."""
    cmd = [sys.executable, "-c", textwrap.dedent(code), *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"subprocess failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def run_module(args: list[str], env: dict[str, str], cwd: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], env=env, capture_output=True, text=True, timeout=600, cwd=cwd)


def installed_backend(entry_point: str) -> bool:
    return any(ep.name == entry_point for ep in importlib.metadata.entry_points(group="needle.backends"))
