"""Registry behaviour two independent backend authors tripped over, each in a fresh interpreter."""

from __future__ import annotations

import textwrap
from pathlib import Path

from registry_support import clean_env, isolated_env, run_module, run_python


def test_asking_for_a_device_of_a_plugin_that_broke_names_the_plugin_and_its_error():
    # needle_fixture_wrong_api declares device "wrong_api" with api_version=2: rolled back
    run_python(
        """
        import warnings
        warnings.simplefilter("ignore")
        import needle as ndl
        from registry_support import error_text
        text = error_text(lambda: ndl.device("wrong_api"), ndl.backends.BackendError, "no error")
        assert "needle_fixture_wrong_api" in text and "built for API 2" in text, text
        """,
        isolated_env("needle_fixture_wrong_api"),
    )


def test_blocking_an_entry_point_also_blocks_its_module_loaded_through_NEEDLE_PLUGINS():
    run_python(
        """
        import needle as ndl
        from needle_core.registry.state import STATE
        names = [r.name for r in ndl.devices()]
        assert "cpu_numpy" not in names, names
        assert "needle_backend_numpy.plugin" in STATE.blocked, STATE.blocked
        assert ndl.device("tiny").enabled()
        """,
        isolated_env("needle_fixture_tiny", NEEDLE_BLOCK_PLUGINS="numpy"),
    )


def test_provenance_names_the_module_actually_loaded_not_a_shadowed_installed_release(tmp_path):
    # a source tree on PYTHONPATH that shadows the installed needle_backend_numpy package
    package = tmp_path / "needle_backend_numpy"
    package.mkdir()
    import needle_backend_numpy as real  # the shadow's other modules (kernels) come from the real package

    (package / "__init__.py").write_text(f"__path__.append({str(Path(real.__file__).parent)!r})\n")
    (package / "plugin.py").write_text(
        textwrap.dedent(
            """
            from needle_core.hookspecs import DeviceSpec, hookimpl
            import needle_fixture_tiny as tiny

            @hookimpl
            def needle_declare_devices():
                return [DeviceSpec(name="shadow", factory=lambda index: tiny)]
            """
        )
    )
    env = clean_env(NEEDLE_DISABLE_PLUGIN_AUTOLOAD="1", NEEDLE_PLUGINS="needle_backend_numpy.plugin")
    env["PYTHONPATH"] = f"{tmp_path}:{env['PYTHONPATH']}"
    run_python(
        f"""
        import needle as ndl
        import needle_backend_numpy.plugin as loaded
        assert loaded.__file__.startswith({str(tmp_path)!r}), loaded.__file__
        dev = ndl.device("shadow")
        source = dev.kernel_source("ewise_add")
        assert source == "needle_backend_numpy.plugin", source
        """,
        env,
    )


def test_the_installed_release_keeps_its_distribution_provenance_through_NEEDLE_PLUGINS():
    run_python(
        """
        import needle as ndl
        assert ndl.cpu_numpy().kernel_source("ewise_add").startswith("needle-backend-numpy "), \\
            ndl.cpu_numpy().kernel_source("ewise_add")
        """,
        clean_env(NEEDLE_DISABLE_PLUGIN_AUTOLOAD="1", NEEDLE_PLUGINS="needle_backend_numpy.plugin"),
    )


def test_devices_and_the_listing_name_kernels_another_package_overrides():
    env = isolated_env("needle_fixture_tiny", "needle_fixture_fast_a")
    run_python(
        """
        import needle as ndl
        tiny = {r.name: r for r in ndl.devices(verify=True)}["tiny"]
        assert tiny.overrides == (("ewise_add", "needle_fixture_fast_a"),), tiny.overrides
        assert "ewise_add \\u2190 needle_fixture_fast_a" in str(tiny), str(tiny)
        plain = {r.name: r for r in ndl.devices()}["cpu_numpy"]
        assert plain.overrides == (), plain.overrides
        """,
        env,
    )
    listing = run_module(["needle", "devices"], env)
    assert listing.returncode == 0, listing.stdout + listing.stderr
    tiny_row = next(line for line in listing.stdout.splitlines() if line.startswith("tiny"))
    assert "overrides: ewise_add \u2190 needle_fixture_fast_a" in tiny_row, listing.stdout
