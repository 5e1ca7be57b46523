"""The on-disk program cache: a second process loads the binary instead of compiling,
and the key changes with the driver and the source."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

from needle_backend_opencl import build

_FIRST_USE = """
import json, time
t0 = time.perf_counter()
import needle as ndl, numpy as np
from needle_backend_opencl import build
dev = ndl.device("opencl")
a = ndl.Tensor(np.ones(4, np.float32), device=dev)
value = (a + 1.0).numpy().tolist()
print("STATS " + json.dumps({**build.STATS, "value": value, "seconds": time.perf_counter() - t0}))
"""


def _first_use(cache, env_extra=None) -> dict:
    import os

    env = {**os.environ, build.ENV_CACHE: str(cache), **(env_extra or {})}
    done = subprocess.run([sys.executable, "-c", _FIRST_USE], capture_output=True, text=True, env=env, timeout=600)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("STATS ")]
    assert done.returncode == 0 and lines, done.stdout + done.stderr
    return json.loads(lines[-1][len("STATS ") :])


def test_a_second_process_does_not_rebuild_the_program(runtime, tmp_path):
    first = _first_use(tmp_path)
    assert first["value"] == [2.0, 2.0, 2.0, 2.0]
    assert list(tmp_path.glob("*.bin")), "the first process stored no binary"
    second = _first_use(tmp_path)
    assert second["compiled"] == 0 and second["loaded"] == 1, second
    assert second["value"] == [2.0, 2.0, 2.0, 2.0]


def test_a_corrupt_cache_entry_is_rebuilt(runtime, tmp_path):
    _first_use(tmp_path)
    for path in tmp_path.glob("*.bin"):
        path.write_bytes(b"not a binary")
    again = _first_use(tmp_path)  # its verification child rebuilds and overwrites the entry
    assert again["value"] == [2.0, 2.0, 2.0, 2.0]
    assert all(path.read_bytes() != b"not a binary" for path in tmp_path.glob("*.bin"))


def _device(driver: str) -> SimpleNamespace:
    platform = SimpleNamespace(name="Portable Computing Language", version="OpenCL 3.0 PoCL 3.1")
    return SimpleNamespace(platform=platform, name="cpu", version="OpenCL 3.0", driver_version=driver)


def test_the_key_names_device_driver_and_source():
    base = build.program_key(_device("3.1"), "kernel source")
    assert build.program_key(_device("3.1"), "kernel source") == base
    assert build.program_key(_device("3.2"), "kernel source") != base
    assert build.program_key(_device("3.1"), "kernel source 2") != base
    assert build.program_key(_device("3.1"), "kernel source", "-cl-opt") != base


def test_cache_can_be_switched_off(monkeypatch):
    monkeypatch.setenv(build.ENV_CACHE, "off")
    assert build.cache_dir() is None
    monkeypatch.setenv(build.ENV_CACHE, "/some/where")
    assert str(build.cache_dir()) == "/some/where"
    assert json.dumps(build.STATS)  # plain counters
