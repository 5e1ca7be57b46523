"""The cuda backend's probe: precise reasons, and nothing breaks without a GPU.

Runs everywhere (marked ``absent_device``: these tests are what a machine without
a GPU can check). The reasons are compared with independent facts about this
machine (ctypes, shutil.which, importlib), not with recorded strings.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import subprocess
import sys

import pytest

pytest.importorskip("needle_backend_cuda", reason="needle-backend-cuda is not installed")

from needle_backend_cuda.probe import DriverStatus, check  # noqa: E402

from needle_backend_cuda import plugin, probe  # noqa: E402

pytestmark = pytest.mark.absent_device


def _libcuda_loads() -> bool:
    try:
        ctypes.CDLL("libcuda.so.1")
        return True
    except OSError:
        return False


def _check(**overrides):
    """check() on a machine where everything is present, except ``overrides``."""
    sources = {
        "driver": lambda: DriverStatus(None, 1),
        "nvcc": lambda: "/opt/cuda/bin/nvcc",
        "pycuda_present": lambda: True,
        "pycuda_import_error": lambda: None,
    }
    sources.update(overrides)
    return check(**sources)


def test_everything_present_is_ok():
    result = _check()
    assert result.ok and result.reason == ""


def test_no_pycuda_is_named_with_install_hint():
    result = _check(pycuda_present=lambda: False)
    assert not result.ok
    assert result.reason == "pycuda is not installed"
    assert "./needle_backend_cuda[pycuda]" in result.hint and "2025.1.2" in result.hint  # tests run from a checkout


def test_no_driver_is_named():
    result = _check(driver=lambda: probe.query_driver(("libcuda-does-not-exist.so.9",)))
    assert not result.ok
    assert result.reason.startswith("no NVIDIA driver")
    assert "libcuda.so.1" in result.reason and "NVIDIA driver" in result.hint


def test_no_gpu_is_named():
    result = _check(driver=lambda: DriverStatus(None, 0))
    assert not result.ok and "no CUDA GPU" in result.reason and "0 devices" in result.reason


def test_driver_init_failure_is_named():
    error = "the CUDA driver failed to initialise: cuInit returned CUDA_ERROR_NO_DEVICE (100)"
    result = _check(driver=lambda: DriverStatus(error))
    assert not result.ok and "CUDA_ERROR_NO_DEVICE" in result.reason


def test_no_nvcc_is_named():
    result = _check(nvcc=lambda: None)
    assert not result.ok and result.reason.startswith("nvcc not found")
    assert "CUDA toolkit" in result.hint


def test_broken_pycuda_build_is_named():
    result = _check(pycuda_import_error=lambda: "pycuda is installed but does not import: ImportError: libcuda.so.1")
    assert not result.ok and "does not import" in result.reason


def test_every_missing_piece_is_listed():
    result = _check(driver=lambda: DriverStatus(None, 0), nvcc=lambda: None, pycuda_present=lambda: False)
    assert result.reason.split("; ") == [
        "no CUDA GPU: the driver reports 0 devices",
        "nvcc not found (pycuda compiles kernels with it at run time)",
        "pycuda is not installed",
    ]


def test_probe_never_raises(monkeypatch):
    def boom():
        raise RuntimeError("driver exploded")

    monkeypatch.setattr(probe, "check", lambda: boom())
    result = probe.probe()
    assert not result.ok and "driver exploded" in result.reason


def test_probe_matches_this_machine():
    result = probe.probe()
    has_driver = _libcuda_loads()
    has_nvcc = probe.find_nvcc() is not None
    has_pycuda = importlib.util.find_spec("pycuda") is not None
    if not has_driver:
        assert "no NVIDIA driver" in result.reason
    assert ("nvcc not found" in result.reason) == (not has_nvcc)
    assert ("pycuda is not installed" in result.reason) == (not has_pycuda)
    if not (has_driver and has_nvcc and has_pycuda):
        assert not result.ok


def test_find_nvcc_uses_cuda_home(tmp_path, monkeypatch):
    nvcc = tmp_path / "bin" / "nvcc"
    nvcc.parent.mkdir()
    nvcc.write_text("#!/bin/sh\n")
    nvcc.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setenv("CUDA_HOME", str(tmp_path))
    assert probe.find_nvcc() == str(nvcc)


def test_device_spec_declares_cuda():
    (spec,) = plugin.needle_declare_devices()
    assert spec.name == "cuda" and spec.dtypes == ("float32",)
    assert spec.probe is probe.probe and spec.count is probe.device_count
    expected = probe.query_driver().device_count if _libcuda_loads() else 0
    assert spec.count() == expected


def test_plugin_import_does_not_import_pycuda():
    code = (
        "import sys, needle as ndl\n"
        "import needle_backend_cuda.plugin, needle_backend_cuda.render, needle_backend_cuda.compile_check\n"
        "ndl.cuda().enabled(); ndl.devices()\n"
        "loaded = sorted(m for m in sys.modules if m == 'pycuda' or m.startswith('pycuda.'))\n"
        "assert not loaded, loaded\n"
    )
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if importlib.util.find_spec("pycuda") is not None and probe.probe().ok:
        pytest.skip("with a working GPU the probe legitimately imports pycuda")
    assert proc.returncode == 0, proc.stderr


@pytest.mark.skipif(probe.probe().ok, reason="a usable CUDA GPU is present")
def test_without_gpu_cuda_is_disabled_and_the_rest_works():
    import needle as ndl

    dev = ndl.cuda()
    assert not dev.enabled()
    reason = probe.probe().reason
    assert reason in dev.unavailable_message()
    records = {r.name: r for r in ndl.devices()}
    assert records["cuda"].status == "unavailable" and records["cuda"].reason == reason
    with pytest.raises(Exception, match="not available") as info:
        ndl.device("cuda")
    assert reason in str(info.value)
    # other devices are unaffected
    numpy_dev = ndl.cpu_numpy()
    assert numpy_dev.enabled()
    from needle import backend_ndarray as nd

    x = nd.array([1.0, 2.0, 3.0], device=numpy_dev)
    assert (x + x).numpy().tolist() == [2.0, 4.0, 6.0]


def test_devices_command_reports_cuda_reason():
    proc = subprocess.run([sys.executable, "-m", "needle", "devices"], capture_output=True, text=True)
    if probe.probe().ok:
        assert "cuda" in proc.stdout
    else:
        assert "cuda" in proc.stdout and probe.probe().reason in proc.stdout
