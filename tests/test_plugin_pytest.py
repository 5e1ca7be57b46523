"""The needle pytest plugin: device selection, required devices, declared strict xfails.

Each case runs pytest in a subprocess on a small test file written to tmp_path.
"""

from __future__ import annotations

import re

import pytest
from registry_support import isolated_env, run_module, run_python

TESTS = """
import pytest

def test_plain():
    pass

@pytest.mark.parametrize("device", ["a", "b"])
def test_course_style(device):
    pass

def test_uses_device(needle_device):
    assert needle_device.enabled()

def test_known_bad(needle_device):
    assert needle_device.name not in ("xfail_dev", "fakegpu")

def test_claimed_bad_but_passes(needle_device):
    pass
"""


def _pytest(tmp_path, env, *args: str) -> tuple[int, dict[str, str], str]:
    (tmp_path / "test_sample.py").write_text(TESTS)
    proc = run_module(
        ["pytest", "test_sample.py", "-v", "-rA", "-p", "no:cacheprovider", *args], env, cwd=str(tmp_path)
    )
    outcomes = dict(re.findall(r"^test_sample\.py::(\S+) (PASSED|FAILED|SKIPPED|XFAIL|XPASS|ERROR)", proc.stdout, re.M))
    return proc.returncode, outcomes, proc.stdout


def test_only_tests_requesting_needle_device_are_parametrised_and_xfails_are_strict(tmp_path):
    env = isolated_env("needle_fixture_xfail")
    rc, outcomes, out = _pytest(tmp_path, env, "--needle-device", "cpu_numpy", "--needle-device", "xfail_dev")
    assert outcomes == {
        "test_plain": "PASSED",
        "test_course_style[a]": "PASSED",
        "test_course_style[b]": "PASSED",
        "test_uses_device[cpu_numpy]": "PASSED",
        "test_uses_device[xfail_dev]": "PASSED",
        "test_known_bad[cpu_numpy]": "PASSED",  # declared for xfail_dev only
        "test_known_bad[xfail_dev]": "XFAIL",
        "test_claimed_bad_but_passes[cpu_numpy]": "PASSED",
        "test_claimed_bad_but_passes[xfail_dev]": "FAILED",  # XPASS(strict)
    }, out
    assert rc == 1 and "XPASS(strict)" in out and "this backend's known bug" in out


def test_a_run_without_needle_device_tests_never_loads_the_registry(tmp_path):
    (tmp_path / "test_untouched.py").write_text(
        "import pytest\n"
        "@pytest.mark.parametrize('device', ['x'])\n"
        "def test_plain(device):\n"
        "    from needle_core.registry.state import STATE\n"
        "    assert not STATE.loaded\n"
    )
    proc = run_module(
        ["pytest", "test_untouched.py", "-q", "-p", "no:cacheprovider"], isolated_env(), cwd=str(tmp_path)
    )
    assert proc.returncode == 0 and "1 passed" in proc.stdout, proc.stdout


def test_xfail_list_declared_on_the_device_spec(tmp_path):
    rc, outcomes, out = _pytest(tmp_path, isolated_env("needle_fixture_fakegpu"), "--needle-device", "fakegpu")
    assert outcomes["test_known_bad[fakegpu]"] == "XFAIL" and "declared on the DeviceSpec" in out
    assert rc == 0, out


def test_needle_test_devices_narrows_the_selection(tmp_path):
    rc, outcomes, out = _pytest(tmp_path, isolated_env("needle_fixture_xfail", NEEDLE_TEST_DEVICES="numpy"))
    assert rc == 0, out
    assert {k for k in outcomes if "[" in k and "course" not in k} == {
        "test_uses_device[numpy]",
        "test_known_bad[numpy]",
        "test_claimed_bad_but_passes[numpy]",
    }


def test_default_selection_is_every_installed_device(tmp_path):
    rc, outcomes, out = _pytest(
        tmp_path, isolated_env("needle_fixture_tiny", "needle_fixture_fakegpu"), "-k", "uses_device"
    )
    assert outcomes["test_uses_device[cpu_numpy]"] == "PASSED" and outcomes["test_uses_device[tiny]"] == "PASSED"
    assert outcomes["test_uses_device[cuda]"] == "SKIPPED" and outcomes["test_uses_device[fakegpu]"] == "PASSED"
    assert rc == 0, out


@pytest.mark.parametrize("required", [False, True])
def test_unusable_device_skips_with_reason_unless_required(tmp_path, required):
    extra = {"NEEDLE_REQUIRE_DEVICES": "cuda"} if required else {}
    env = isolated_env("needle_fixture_fakegpu", **extra)
    rc, outcomes, out = _pytest(tmp_path, env, "--needle-device", "cuda", "-k", "uses_device")
    assert "no NVIDIA driver found" in out
    if required:
        assert rc == 1 and outcomes["test_uses_device[cuda]"] == "ERROR", out
        assert "required device 'cuda' (NEEDLE_REQUIRE_DEVICES)" in out
    else:
        assert rc == 0 and outcomes["test_uses_device[cuda]"] == "SKIPPED", out


def test_a_required_device_that_is_not_installed_cannot_pass_silently(tmp_path):
    rc, outcomes, out = _pytest(tmp_path, isolated_env(NEEDLE_REQUIRE_DEVICES="opencl"), "-k", "uses_device")
    assert rc == 1 and outcomes["test_uses_device[opencl]"] == "ERROR", out
    assert outcomes["test_uses_device[cpu_numpy]"] == "PASSED"


def test_known_failures_are_read_from_the_device_spec_only():
    """One place: a hooks module's CONFORMANCE_XFAIL (the older spelling) is folded into each
    DeviceSpec.conformance_xfail it declares (the spec's keys win), with a DeprecationWarning."""
    proc = run_python(
        """
        import types, warnings
        import needle as ndl
        import needle_backend_numpy.kernels as k
        from needle_core.hookspecs import DeviceSpec, hookimpl
        from needle_core.registry import conformance_xfail

        mod = types.ModuleType("needle_inline_xfail")
        mod.CONFORMANCE_XFAIL = {"test_a": "module", "test_b": "module"}

        @hookimpl
        def needle_declare_devices():
            return [DeviceSpec(name="xf_one", factory=lambda i: k, conformance_xfail={"test_b": "spec"}),
                    DeviceSpec(name="xf_two", factory=lambda i: k)]

        mod.needle_declare_devices = needle_declare_devices
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ndl.backends.register(mod)
        print(sorted(conformance_xfail("xf_one").items()))
        print(sorted(conformance_xfail("xf_two").items()))
        print(sorted(ndl.backends.STATE.providers["xf_one"][0].spec.conformance_xfail.items()))
        print([str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)])
        """,
        isolated_env(),
    )
    one, two, spec, warned = proc.stdout.strip().splitlines()
    assert one == spec == "[('test_a', 'module'), ('test_b', 'spec')]"
    assert two == "[('test_a', 'module'), ('test_b', 'module')]"
    assert "DeviceSpec(conformance_xfail" in warned and "needle_inline_xfail" in warned
