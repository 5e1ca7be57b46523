"""Single-host jobs run in a loopback-only network namespace where one can be made."""

from __future__ import annotations

import subprocess
import sys

import pytest

from needle_distributed import loopback

_LIST_INTERFACES = "import socket; print(sorted(name for _, name in socket.if_nameindex()))"


def test_wrapped_command_sees_only_an_up_loopback_interface():
    if not loopback.available():
        pytest.skip("cannot create a network namespace here (needs root or CAP_SYS_ADMIN)")
    code = _LIST_INTERFACES + "; import socket; s = socket.create_server(('127.0.0.1', 0)); print('lo up')"
    done = subprocess.run(loopback.command([sys.executable, "-c", code]), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    names, up = done.stdout.splitlines()
    assert names == "['lo']", names
    assert up == "lo up"


def test_without_a_namespace_the_command_is_unchanged(monkeypatch):
    monkeypatch.setattr(loopback, "available", lambda: False)
    assert loopback.command(["mpirun", "-n", "2", "x"]) == ["mpirun", "-n", "2", "x"]
