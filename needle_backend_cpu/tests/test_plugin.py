"""The cpu plugin: registration, probe, NEEDLE_NUM_THREADS (plugin.py, probe.py, runtime.py)."""

from __future__ import annotations

import types

import pytest

from needle_backend_cpu import plugin, probe, runtime


def test_declares_cpu_above_the_numpy_backend():
    (spec,) = plugin.needle_declare_devices()
    assert spec.name == "cpu" and spec.priority > 0 and spec.count() == 1


def test_registry_device_has_tiled_matmul():
    import needle as ndl

    dev = ndl.cpu()
    if not dev.enabled():
        pytest.skip(dev.unavailable_message())
    assert hasattr(dev, "matmul_tiled") and dev.__tile_size__ == 8
    assert dev.kernel_source("matmul").startswith("needle-backend-cpu")


def test_probe_refuses_a_cpu_without_the_built_instructions(monkeypatch):
    fake = types.SimpleNamespace(CPU_FLAGS=("avx512f", "made_up_flag"))
    import needle_backend_cpu

    monkeypatch.setitem(__import__("sys").modules, "needle_backend_cpu._build_info", fake)
    monkeypatch.setattr(needle_backend_cpu, "_build_info", fake, raising=False)
    monkeypatch.setattr(runtime, "_cpu_flags", lambda: {"avx512f", "sse2"})
    monkeypatch.delenv("NEEDLE_CPU_ISA", raising=False)  # a forced module gets another hint
    result = probe.probe()
    assert not result.ok and "made_up_flag" in result.reason and "pip install" in result.hint


@pytest.mark.parametrize("value,expected", [("3", 3), ("1", 1)])
def test_threads_from_env(monkeypatch, value, expected):
    monkeypatch.setenv("NEEDLE_NUM_THREADS", value)
    assert runtime.threads_from_env() == expected


@pytest.mark.parametrize("value", ["zero", "-2", "1.5"])
def test_bad_threads_value_warns_and_uses_the_default(monkeypatch, value):
    monkeypatch.delenv("NEEDLE_NUM_THREADS", raising=False)
    default = runtime.threads_from_env()
    monkeypatch.setenv("NEEDLE_NUM_THREADS", value)
    with pytest.warns(UserWarning, match="NEEDLE_NUM_THREADS"):
        assert runtime.threads_from_env() == default


def test_factory_rejects_other_indices():
    with pytest.raises(ValueError, match="cpu:1"):
        plugin.factory(1)
