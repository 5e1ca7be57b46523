"""Plugin loading, isolation, status and switches, each in a fresh interpreter.

The fixture plugins live in fixtures/plugins (put on PYTHONPATH by registry_support)
and are loaded with NEEDLE_PLUGINS or ``ndl.backends.register``; entry points are
switched off (NEEDLE_DISABLE_PLUGIN_AUTOLOAD=1) unless a test is about them.
"""

from __future__ import annotations

import pytest
from registry_support import clean_env, isolated_env, run_python

# Every broken fixture at once: each must show its own status while the rest works.
BROKEN = {
    "needle_fixture_import_error": (
        "needle_fixture_import_error",
        "import failed: ImportError: needle_fixture_import_error needs libfoo.so",
    ),
    "needle_fixture_probe_error": ("probe_error", "probe() raised RuntimeError: probe exploded"),
    "needle_fixture_missing_kernel": ("needle_fixture_missing_kernel", "missing primitive kernels: matmul, reduce_max"),
    "needle_fixture_wrong_api": ("needle_fixture_wrong_api", "built for API 2, core is 1"),
    "needle_fixture_partial": ("needle_fixture_partial", "device names are lowercase identifiers"),
}


def test_import_needle_loads_no_plugin_and_first_lookup_does():
    run_python(
        """
        import sys
        import needle as ndl
        from needle_core.registry.state import STATE
        assert not STATE.loaded
        assert not [m for m in sys.modules if m.startswith("needle_backend_") or m.startswith("needle_fixture")]
        ndl.device("tiny")
        assert STATE.loaded and "needle_fixture_tiny" in sys.modules
        """,
        isolated_env("needle_fixture_tiny"),
    )


def test_each_broken_plugin_has_its_status_and_the_rest_keeps_working():
    code = """
        import warnings, numpy as np
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import needle as ndl
            records = {r.name: r for r in ndl.devices()}
            ndl.devices(); ndl.cpu_numpy(); ndl.device("tiny")  # nothing warns twice
        expected = EXPECTED
        for module, (name, error) in expected.items():
            assert records[name].status == "broken", records[name]
            assert error in records[name].reason, (error, records[name].reason)
            assert records[name].plugin == module
        plugin_warnings = [str(w.message) for w in caught if w.category is ndl.backends.PluginWarning]
        assert len(plugin_warnings) == len(expected), plugin_warnings
        for module in expected:
            assert sum(module in w for w in plugin_warnings) == 1, (module, plugin_warnings)
        # everything else keeps working
        assert records["cpu_numpy"].status == "available" and records["tiny"].status == "available"
        for dev in (ndl.cpu_numpy(), ndl.device("tiny")):
            x = ndl.Tensor(np.arange(3, dtype="float32"), device=dev)
            np.testing.assert_allclose((x + x).numpy(), 2 * np.arange(3))
        # a partially registered plugin is rolled back: no device, no override, no hooks
        assert "partial_ok" not in records
        assert ndl.cpu_numpy().kernel_source("ewise_exp") == "needle-backend-numpy 0.1.0"
        import needle_fixture_partial
        assert not ndl.backends.plugin_manager().is_registered(needle_fixture_partial)
    """.replace("EXPECTED", repr(BROKEN))
    run_python(code, isolated_env("needle_fixture_tiny", *BROKEN))


@pytest.mark.parametrize("module, name_and_error", sorted(BROKEN.items()))
def test_explicitly_asking_for_a_broken_device_raises_with_cause_and_remedy(module, name_and_error):
    name, error = name_and_error
    asked = {"needle_fixture_probe_error": "probe_error", "needle_fixture_wrong_api": "needle_fixture_wrong_api"}
    run_python(
        f"""
        import warnings; warnings.simplefilter("ignore")
        import needle as ndl
        from registry_support import error_text
        text = error_text(lambda: ndl.device({asked.get(module, module)!r}), ndl.backends.BackendError, "no error")
        assert {error!r} in text, text
        assert "NEEDLE_BLOCK_PLUGINS={module}" in text, text
        assert "installed backends:" in text and "cpu_numpy: available" in text, text
        """,
        isolated_env(module),
    )


def test_missing_kernel_in_a_factory_is_broken_on_first_use_with_names():
    run_python(
        """
        import needle as ndl
        from registry_support import device_row, error_text
        device_row("factory_missing", "available")  # probe only
        text = error_text(lambda: ndl.device("factory_missing"), ndl.backends.BackendError, "no error")
        assert "missing primitive kernels: matmul" in text, text
        device_row("factory_missing", "broken", "matmul")
        """,
        isolated_env("needle_fixture_factory_missing"),
    )


def test_unavailable_cuda_is_disabled_never_raises_and_explains():
    run_python(
        """
        import needle as ndl
        from registry_support import error_text
        rec = {r.name: r for r in ndl.devices()}["cuda"]
        assert (rec.status, rec.reason) == ("unavailable", "no NVIDIA driver found"), rec
        dev = ndl.cuda()
        assert not dev.enabled() and repr(dev) == "cuda()"
        assert ndl.cuda() is dev and ndl.cuda(1) != dev and repr(ndl.cuda(1)) == "cuda(1)"
        text = error_text(lambda: dev.Array(3), ndl.backends.DeviceUnavailableError,
                          "allocating on a disabled device must raise")
        assert "no NVIDIA driver found" in text and "ndl.cpu_numpy()" in text, text
        text = error_text(lambda: ndl.device("cuda:0"), ndl.backends.DeviceUnavailableError,
                          "ndl.device() must raise for an unavailable device")
        assert "no NVIDIA driver found" in text and "installed backends:" in text, text
        # cpu is not installed here: disabled, saying what to install
        assert not ndl.cpu().enabled() and "pip install ./needle_backend_cpu" in ndl.cpu().unavailable_message()
        assert [repr(d) for d in ndl.all_devices()][:3] == ["cpu()", "cuda()", "cpu_numpy()"]
        assert ndl.backend_ndarray.cuda() is ndl.cuda() and ndl.backend_ndarray.cpu_numpy() is ndl.cpu_numpy()
        """,
        isolated_env("needle_fixture_fakegpu"),
    )


def test_indices_are_distinct_devices_and_bounded_by_count():
    run_python(
        """
        import needle as ndl, needle_fixture_fakegpu as fx
        from registry_support import error_text
        d0, d1 = ndl.device("fakegpu"), ndl.device("fakegpu:1")
        assert d0 is ndl.device("fakegpu:0") and d0 != d1 and hash(d0) != hash(d1)
        assert (d1.name, d1.index, d1.canonical) == ("fakegpu", 1, "fakegpu:1")
        assert fx.FACTORY_CALLS == {"fakegpu:0": 1, "fakegpu:1": 1}  # one table per device
        text = error_text(lambda: ndl.device("fakegpu:2"), ndl.backends.DeviceUnavailableError,
                          "index beyond count() must raise")
        assert "fakegpu:2 does not exist: 2 fakegpu device(s) here (indices 0-1)" in text, text
        """,
        isolated_env("needle_fixture_fakegpu"),
    )


def test_experimental_device_has_its_status_and_warns_once_on_first_use():
    run_python(
        """
        import warnings
        import needle as ndl
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert {r.name: r.status for r in ndl.devices()}["experimental_dev"] == "experimental"
            assert not [w for w in caught if w.category is ndl.backends.ExperimentalDeviceWarning]
            for _ in range(3):
                dev = ndl.device("experimental_dev")
        warned = [w for w in caught if w.category is ndl.backends.ExperimentalDeviceWarning]
        assert len(warned) == 1 and "experimental" in str(warned[0].message), warned
        assert dev.enabled()
        """,
        isolated_env("needle_fixture_fakegpu"),
    )


def test_verify_step_runs_on_first_use_only_and_a_failure_disables_the_device():
    run_python(
        """
        import needle as ndl, needle_fixture_fakegpu as fx
        from registry_support import device_row, error_text
        ndl.devices()
        assert not fx.VERIFY_CALLS and not fx.FACTORY_CALLS  # listing builds nothing
        assert ndl.device("verified_ok").enabled() and ndl.device("verified_ok").enabled()
        assert fx.VERIFY_CALLS["verified_ok:0"] == 1
        text = error_text(lambda: ndl.device("verify_fails"), ndl.backends.DeviceUnavailableError,
                          "a failed verify must make the device unusable")
        assert "verify() failed: kernel 'add' did not compile" in text, text
        device_row("verify_fails", "unavailable", "did not compile")
        """,
        isolated_env("needle_fixture_fakegpu"),
    )


def test_unknown_device_lists_backends_with_reasons_and_suggests():
    run_python(
        """
        import needle as ndl
        from registry_support import error_text
        for typo, meant in [("cpu_nmupy", "'cpu_numpy'"), ("fakgpu:1", "'fakegpu'"), ("nmupy", "'numpy'")]:
            text = error_text(lambda: ndl.device(typo), ndl.backends.UnknownDeviceError, typo)
            assert f"Did you mean {meant}" in text or meant in text.split("Did you mean")[1].split("?")[0], text
            assert "cpu_numpy: available" in text and "cuda: unavailable (no NVIDIA driver found)" in text, text
        assert isinstance(ndl.backends.UnknownDeviceError("x"), ValueError)
        try:
            ndl.device("opencl")  # a well-known backend that is not installed: say which package
        except ndl.backends.UnknownDeviceError as exc:
            assert "pip install ./needle_backend_opencl" in str(exc), exc  # the tests run from a checkout
        else:
            raise AssertionError("opencl is not installed here")
        """,
        isolated_env("needle_fixture_fakegpu"),
    )


def test_aliases_are_the_same_device():
    run_python(
        """
        import needle as ndl
        assert ndl.device("numpy") is ndl.cpu_numpy() and ndl.device("numpy") == ndl.cpu_numpy()
        assert ndl.device("NUMPY:0") is ndl.device("cpu_numpy:0")
        assert repr(ndl.device("numpy")) == "cpu_numpy()" and ndl.device(None) is ndl.default_device()
        """,
        isolated_env(),
    )


@pytest.mark.parametrize(
    "plugins, env, expected",
    [
        ((), {}, "cpu_numpy()"),  # no cpu backend: the numpy one
        (("needle_fixture_cpu",), {}, "cpu()"),  # cpu when available
        (("needle_fixture_fakegpu",), {}, "cpu_numpy()"),  # accelerators never implicitly
        (("needle_fixture_cpu",), {"NEEDLE_DEVICE": "numpy"}, "cpu_numpy()"),
        (("needle_fixture_fakegpu",), {"NEEDLE_DEVICE": "fakegpu:1"}, "device('fakegpu:1')"),
    ],
)
def test_default_device(plugins, env, expected):
    run_python(
        f"""
        import needle as ndl
        assert repr(ndl.default_device()) == {expected!r}, ndl.default_device()
        assert ndl.default_device() is ndl.default_device()
        """,
        isolated_env(*plugins, **env),
    )


@pytest.mark.parametrize("value, error", [("bogus", "UnknownDeviceError"), ("cuda", "DeviceUnavailableError")])
def test_unusable_needle_device_fails_loudly(value, error):
    run_python(
        f"""
        import needle as ndl
        try:
            ndl.default_device()
        except Exception as exc:
            assert type(exc).__name__ == {error!r}, exc
            assert "NEEDLE_DEVICE={value!r}" in str(exc), exc
        else:
            raise AssertionError("no error")
        """,
        isolated_env("needle_fixture_fakegpu", NEEDLE_DEVICE=value),
    )


def test_disable_autoload_loads_no_entry_point():
    proc = run_python(
        """
        import needle as ndl
        print(sorted(r.name for r in ndl.devices()))
        assert not ndl.cpu_numpy().enabled()
        """,
        clean_env(NEEDLE_DISABLE_PLUGIN_AUTOLOAD="1"),
    )
    assert proc.stdout.strip() == "[]"


def test_block_plugins_skips_an_entry_point_and_says_so():
    proc = run_python(
        """
        import needle as ndl
        from registry_support import error_text
        assert "cpu_numpy" not in [r.name for r in ndl.devices()]
        text = error_text(lambda: ndl.device("cpu_numpy"), ndl.backends.UnknownDeviceError,
                          "blocked device still found")
        assert "blocked by NEEDLE_BLOCK_PLUGINS" in text, text
        """,
        clean_env(NEEDLE_BLOCK_PLUGINS="numpy"),
    )
    assert proc.returncode == 0


def test_block_plugins_also_applies_to_needle_plugins_modules():
    run_python(
        """
        import sys, needle as ndl
        assert "tiny" not in [r.name for r in ndl.devices()] and "needle_fixture_tiny" not in sys.modules
        """,
        isolated_env("needle_fixture_tiny", NEEDLE_BLOCK_PLUGINS="needle_fixture_tiny"),
    )


def test_trace_plugins_writes_pluggy_hook_calls_to_stderr():
    proc = run_python("import needle as ndl; ndl.devices()", isolated_env(NEEDLE_TRACE_PLUGINS="1"))
    assert "needle_declare_devices" in proc.stderr and "needle_backend_numpy.plugin" in proc.stderr


def test_register_plain_course_module_by_object_or_name():
    run_python(
        """
        import types, numpy as np
        import needle as ndl
        import needle_fixture_tiny
        [rec] = ndl.backends.register(needle_fixture_tiny)
        assert (rec.name, rec.status, rec.source) == ("tiny", "available", "register()"), rec
        dev = ndl.device("tiny")
        assert dev.ewise_add is needle_fixture_tiny.ewise_add
        x = ndl.Tensor(np.ones(3, "float32"), device=dev)
        np.testing.assert_allclose((x * 3).numpy(), [3, 3, 3])
        # no DEVICE_NAME: the module's last name component
        mod = types.ModuleType("course.ndarray_backend_mine")
        kernels = {k: v for k, v in vars(needle_fixture_tiny).items() if not k.startswith("__")}
        mod.__dict__.update({k: v for k, v in kernels.items() if k != "DEVICE_NAME"})
        [rec] = ndl.backends.register(mod)
        assert rec.name == "ndarray_backend_mine" and ndl.device("ndarray_backend_mine").enabled()
        [rec] = ndl.backends.register("needle_fixture_cpu")
        assert rec.name == "cpu" and ndl.cpu().enabled()
        """,
        isolated_env(),
    )


def test_register_broken_module_raises_and_records():
    run_python(
        """
        import needle as ndl
        from registry_support import error_text
        for target, text in [("needle_fixture_missing_kernel", "missing primitive kernels: matmul, reduce_max"),
                             ("needle_fixture_wrong_api", "built for API 2, core is 1"),
                             ("needle_fixture_import_error", "needs libfoo.so"),
                             ("needle_fixture_no_such_module", "ModuleNotFoundError")]:
            text = error_text(lambda: ndl.backends.register(target), ndl.backends.BackendError, target)
            assert text in text, text
            assert {r.plugin: r.status for r in ndl.devices()}[target] == "broken"
        assert ndl.cpu_numpy().enabled()
        try:  # a broken plugin named like a course device: cpu() is disabled and says why
            ndl.backends.register("needle_fixture_import_error", name="cpu")
        except ndl.backends.BackendError:
            pass
        assert not ndl.cpu().enabled() and "its plugin is broken" in ndl.cpu().unavailable_message()
        assert "libfoo.so" in ndl.cpu().unavailable_message() and ndl.default_device() == ndl.cpu_numpy()
        """,
        isolated_env(),
    )


def test_late_registration_rebuilds_existing_tables_in_place():
    run_python(
        """
        import numpy as np
        import needle as ndl
        import needle_fixture_tiny, needle_fixture_fast_b
        tiny, cpu = ndl.device("tiny"), ndl.cpu()
        x = ndl.Tensor(np.arange(3, dtype="float32"), device=tiny)
        assert tiny.kernel_source("ewise_add") == "needle_fixture_tiny" and not cpu.enabled()
        ndl.backends.register(needle_fixture_fast_b)
        assert ndl.device("tiny") is tiny and tiny.ewise_add is needle_fixture_fast_b.ewise_add
        assert tiny.kernel_source("ewise_mul") == "needle_fixture_fast_b"
        np.testing.assert_allclose((x + x).numpy(), 2 * np.arange(3))  # an array made before
        ndl.backends.register("needle_fixture_cpu")
        assert ndl.cpu() is cpu and cpu.enabled()  # the disabled device came alive in place
        """,
        isolated_env("needle_fixture_tiny"),
    )


@pytest.mark.parametrize(
    "order", ["needle_fixture_fast_a,needle_fixture_fast_b", "needle_fixture_fast_b,needle_fixture_fast_a"]
)
def test_override_conflicts_resolve_by_priority_then_name_not_order(order):
    run_python(
        """
        import needle as ndl, needle_fixture_fast_a as a, needle_fixture_fast_b as b
        tiny = ndl.device("tiny")
        assert tiny.ewise_add is a.ewise_add  # priority 5 both: provider 'fast_a' < 'fast_b'
        assert tiny.ewise_mul is b.ewise_mul  # only contributor
        assert tiny.kernel_source("ewise_add") == "needle_fixture_fast_a"
        assert tiny.kernel_source("matmul") == "needle_fixture_tiny"
        """,
        isolated_env("needle_fixture_tiny", *order.split(",")),
    )


def test_a_raising_kernel_plugin_is_broken_and_devices_still_build():
    run_python(
        """
        import warnings, needle as ndl
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            dev = ndl.device("tiny")
        assert dev.enabled() and dev.kernel_source("ewise_add") == "needle_fixture_tiny"
        rec = {r.plugin: r for r in ndl.devices()}["needle_fixture_contribute_error"]
        assert rec.status == "broken" and "ZeroDivisionError: bug in the kernel plugin" in rec.reason
        assert sum(w.category is ndl.backends.PluginWarning for w in caught) == 1
        """,
        isolated_env("needle_fixture_tiny", "needle_fixture_contribute_error"),
    )


def test_kernel_call_is_a_plain_attribute_after_lookup():
    run_python(
        """
        import needle as ndl
        dev = ndl.cpu_numpy()
        assert "ewise_add" in vars(dev) and dev.ewise_add is vars(dev)["ewise_add"]
        assert dev.conv2d_nhwc is None or callable(dev.conv2d_nhwc)
        assert type(dev).__getattribute__ is object.__getattribute__
        """,
        isolated_env(),
    )
