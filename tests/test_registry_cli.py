"""``python -m needle devices``: the status table and the 3-element smoke check."""

from __future__ import annotations

from registry_support import isolated_env, run_module, run_python


def _rows(stdout: str) -> dict[str, list[str]]:
    lines = stdout.strip().splitlines()
    assert lines[0].split()[:5] == ["DEVICE", "STATUS", "CHECK", "PROVIDER", "NOTES"], lines[0]
    return {line.split()[0]: line.split() for line in lines[1:] if not line.startswith("blocked")}


def test_devices_command_passes_working_devices_and_lists_the_others():
    env = isolated_env("needle_fixture_tiny", "needle_fixture_fakegpu", "needle_fixture_import_error")
    proc = run_module(["needle", "devices"], env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = _rows(proc.stdout)
    assert rows["cpu_numpy"][1:4] == ["available", "PASS", "needle-backend-numpy"]
    assert rows["tiny"][1:3] == ["available", "PASS"]
    assert rows["experimental_dev"][1:3] == ["experimental", "PASS"]
    assert rows["cuda"][1:3] == ["unavailable", "-"] and "no NVIDIA driver found" in " ".join(rows["cuda"])
    assert rows["verify_fails"][1:3] == ["unavailable", "-"] and "did not compile" in " ".join(rows["verify_fails"])
    assert rows["needle_fixture_import_error"][1:3] == ["broken", "-"]
    assert "libfoo.so" in " ".join(rows["needle_fixture_import_error"])
    assert "PluginWarning" not in proc.stderr  # the table says it already


def test_devices_command_fails_a_device_whose_smoke_op_is_wrong():
    proc = run_module(["needle", "devices"], isolated_env("needle_fixture_wrong_add"))
    assert proc.returncode == 1
    row = " ".join(_rows(proc.stdout)["wrong_add"])
    assert "FAIL" in row and "expected [1.5, 2.0, 2.25]" in row
    assert _rows(proc.stdout)["cpu_numpy"][2] == "PASS"


def test_devices_command_without_verify_builds_nothing_and_shows_blocked():
    code = """
        import sys
        from needle_core.registry import cli
        import needle_fixture_fakegpu as fx
        assert cli.main(["--no-verify"]) == 0
        assert not fx.FACTORY_CALLS, fx.FACTORY_CALLS
        assert "needle_backend_numpy.kernels" not in sys.modules
        """
    proc = run_python(
        code, isolated_env("needle_fixture_fakegpu", "needle_fixture_tiny", NEEDLE_BLOCK_PLUGINS="needle_fixture_tiny")
    )
    rows = _rows(proc.stdout)
    assert rows["fakegpu"][1:3] == ["available", "-"]
    assert "blocked by NEEDLE_BLOCK_PLUGINS: needle_fixture_tiny" in proc.stdout


def test_devices_command_is_registered_for_python_dash_m_needle():
    proc = run_module(["needle", "--help"], isolated_env())
    assert proc.returncode == 0 and "devices" in proc.stdout
