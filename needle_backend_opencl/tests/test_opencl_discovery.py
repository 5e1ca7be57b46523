"""The probe tells the truth: platform enumeration, device selection, the one-line
kernel verdict, and what the plugin reports when no device is usable.

A fake pyopencl stands in for drivers this machine does not have (a PoCL whose
compiler fails, no platform at all); one test runs the real smoke kernel here.
"""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

from needle_backend_opencl import discovery, plugin, probe, runtime

GOOD = ("Portable Computing Language", "OpenCL 3.0 PoCL 3.1+debian  Linux, RELOC, LLVM 15.0.6", "pthread-znver5")
BAD = ("Portable Computing Language", "OpenCL 3.0 PoCL 3.0-rc2  Linux, Release, LLVM 14.0.6", "pthread-AMD EPYC")
BUILD_LOG = (
    "clBuildProgram failed: BUILD_PROGRAM_FAILURE - clBuildProgram failed: BUILD_PROGRAM_FAILURE\n\n"
    "Build on <pyopencl.Device 'pthread-AMD EPYC' on 'Portable Computing Language'>:\n\n"
    "error: unknown target CPU 'generic'\n(options: -I /x)\n"
)


class FakeCL:
    """Just enough of pyopencl for enumeration: platforms and their devices."""

    class Error(Exception):
        pass

    def __init__(self, platforms):
        self._platforms = [
            SimpleNamespace(name=name, version=version, get_devices=lambda d=tuple(devices): list(d))
            for name, version, devices in platforms
        ]

    def get_platforms(self):
        if not self._platforms:
            raise self.Error("clGetPlatformIDs failed: PLATFORM_NOT_FOUND_KHR")
        return self._platforms


def _device(name, fails=False):
    return SimpleNamespace(name=name, fails=fails)


def _fake_check_in_child(candidate):
    """Stands for the child process's one-line kernel and program build."""
    return discovery.failure_reason(RuntimeError(BUILD_LOG)) if discovery.cl_device(candidate).fails else ""


@pytest.fixture
def fake(monkeypatch):
    """Install a fake driver list: fake([(platform, version, [devices])...])."""

    def install(platforms):
        cl = FakeCL(platforms)
        monkeypatch.setattr(discovery, "opencl", lambda: cl)
        monkeypatch.setattr(discovery, "check_in_child", _fake_check_in_child)
        monkeypatch.setattr(discovery, "open_runtime", lambda c: SimpleNamespace(name=c.label))
        monkeypatch.setattr(discovery, "_VERDICTS", {})
        monkeypatch.setattr(runtime, "OPENED", {})
        monkeypatch.delenv(discovery.ENV_DEVICE, raising=False)
        return cl

    return install


def _two_pocls(fake):
    fake([(BAD[0], BAD[1], [_device(BAD[2], fails=True)]), (GOOD[0], GOOD[1], [_device(GOOD[2])])])


def test_environment_variable_tells_two_pocl_builds_apart(fake, monkeypatch):
    _two_pocls(fake)
    monkeypatch.setenv(discovery.ENV_DEVICE, "PoCL 3.0")  # not "OpenCL 3.0 PoCL 3.1"
    assert [c.version for c in discovery.selected(discovery.candidates())] == [BAD[1]]
    monkeypatch.setenv(discovery.ENV_DEVICE, "pocl 3.1")
    assert [c.version for c in discovery.usable()] == [GOOD[1]]


def test_no_platform_is_unavailable_with_an_install_hint(fake):
    fake([])
    result = probe.probe()
    assert not result.ok and "no OpenCL platform" in result.reason
    assert "pocl-opencl-icd" in result.hint


def test_missing_pyopencl_is_unavailable(monkeypatch):
    def no_pyopencl():
        raise ImportError("No module named 'pyopencl'")

    monkeypatch.setattr(discovery, "opencl", no_pyopencl)
    result = probe.probe()
    assert not result.ok and "pyopencl" in result.reason and result.hint == "pip install pyopencl"


def test_probe_builds_nothing(fake, monkeypatch):
    _two_pocls(fake)
    monkeypatch.setattr(discovery, "check_in_child", lambda *a: pytest.fail("probe must not compile"))
    monkeypatch.setattr(discovery, "open_runtime", lambda *a: pytest.fail("probe must not open a context"))
    assert probe.probe().ok


def test_failing_compiler_is_unusable_with_its_build_log_reason(fake):
    _two_pocls(fake)
    bad, good = discovery.candidates()
    verdict = discovery.verdict(bad)
    assert not verdict.ok and verdict.reason == "error: unknown target CPU 'generic'"
    assert discovery.usable() == [good]  # the working platform is the one used
    lines = discovery.describe()
    assert "unusable (error: unknown target CPU 'generic')" in lines[0] and "PoCL 3.0-rc2" in lines[0]
    assert lines[1].startswith("opencl:0") and "PoCL 3.1" in lines[1] and lines[1].endswith("usable")


def test_environment_variable_selects_by_name(fake, monkeypatch):
    fake([(GOOD[0], GOOD[1], [_device("gpu-a"), _device("cpu-b")])])
    monkeypatch.setenv(discovery.ENV_DEVICE, "CPU-B")
    assert [c.device for c in discovery.usable()] == ["cpu-b"]
    monkeypatch.setenv(discovery.ENV_DEVICE, "llvm 15.0")  # the full version counts too
    assert [c.device for c in discovery.usable()] == ["gpu-a", "cpu-b"]
    monkeypatch.setenv(discovery.ENV_DEVICE, "nvidia")
    result = probe.probe()
    assert not result.ok and "matches none" in result.reason and "gpu-a" in result.reason


def test_a_program_built_without_its_kernels_is_a_failure(monkeypatch):
    """PyPI's PoCL 3.0 (LLVM 14) on a Zen 5 CPU runs the one-liner, then builds needle's
    program into one with no kernels; the runtime must say so, not fail later."""
    from needle_backend_opencl.runtime import Runtime

    empty_program = SimpleNamespace(all_kernels=lambda: [])
    monkeypatch.setattr(runtime, "cached_program", lambda *args: empty_program)
    rt = Runtime.__new__(Runtime)
    rt.cl, rt.context, rt.device, rt.kernels = SimpleNamespace(), None, None, {}
    with pytest.raises(RuntimeError, match="lacks .* kernels"):
        rt.build()


def test_plugin_counts_usable_devices_and_explains_when_none_is(fake):
    fake([(BAD[0], BAD[1], [_device(BAD[2], fails=True)])])
    assert probe.probe().ok  # listed: the cheap probe cannot know
    assert plugin.count() == 1  # index 0 exists so that verify can say why
    plugin.factory(0)
    result = plugin.verify(SimpleNamespace(index=0))
    assert not result.ok and "unknown target CPU 'generic'" in result.reason and "PoCL 3.0-rc2" in result.reason


def test_index_past_the_usable_devices_is_an_error(fake):
    _two_pocls(fake)
    assert plugin.count() == 1
    with pytest.raises(IndexError, match="1 usable OpenCL device"):
        plugin.factory(1)


@pytest.mark.parametrize(
    "script, expected",
    [
        ("print('needle-opencl-verdict: ok')", ""),
        ("print('needle-opencl-verdict: fail error: unknown target CPU')", "error: unknown target CPU"),
        (  # PyPI's PoCL 3.0 here: a verdict, then an abort while releasing the context
            "import os, sys; print('needle-opencl-verdict: fail lacks 41 of its 41 kernels', flush=True); "
            "sys.stderr.write('still have references to IRs\\n'); sys.stderr.flush(); os.abort()",
            "lacks 41 of its 41 kernels; then the OpenCL driver killed the process (SIGABRT): still have references",
        ),
        (
            "print('needle-opencl-verdict: ok', flush=True); raise SystemExit(3)",
            "the verification process exited with status 3",
        ),
    ],
)
def test_child_verdicts_including_crashes(monkeypatch, script, expected):
    monkeypatch.setattr(discovery, "child_command", lambda c: [sys.executable, "-c", script])
    candidate = discovery.Candidate(0, 0, *BAD)
    reason = discovery.check_in_child(candidate)
    assert reason.startswith(expected) if expected else reason == ""


def test_failure_reason_prefers_the_compiler_line():
    assert discovery.failure_reason(RuntimeError(BUILD_LOG)) == "error: unknown target CPU 'generic'"
    assert discovery.failure_reason(RuntimeError("clCreateContext failed: OUT_OF_HOST_MEMORY")).startswith("clCreate")


def test_real_smoke_kernel_runs_here(runtime):
    discovery.smoke_test(runtime.cl, runtime.context, runtime.queue)
    assert plugin.verify(SimpleNamespace(index=0)).ok
