"""The noxfile's device probe decides by exit status, never by what lands on stderr.

On CPUs without AVX-512, PoCL logs an ABI note on every build and pyopencl turns it
into a ``CompilerWarning`` on stderr; the old probe took any output for a failure
reason and skipped (or, under NEEDLE_REQUIRE_DEVICES, failed) the OpenCL session.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import nox_probe  # noqa: E402


@pytest.fixture
def noisy_env(tmp_path: Path) -> dict[str, str]:
    """An environment whose interpreter writes a compiler warning to stderr at start-up."""
    (tmp_path / "sitecustomize.py").write_text(
        "import sys\n"
        "sys.stderr.write('pyopencl/__init__.py:570: CompilerWarning: Non-empty compiler output encountered.\\n'"
        " \"warning: AVX vector return of type 'float16' without 'avx512f' enabled changes the ABI\\n\")\n"
    )
    return {"PYTHONPATH": str(tmp_path)}


def test_stderr_noise_does_not_make_a_device_unusable(noisy_env):
    usable, reason, stderr = nox_probe.probe(sys.executable, "cpu_numpy", noisy_env)
    assert "CompilerWarning" in stderr  # the noise really was there
    assert usable, reason
    assert reason == ""


def test_unknown_device_is_unusable_with_the_reason_line_only(noisy_env):
    usable, reason, _ = nox_probe.probe(sys.executable, "no_such_device_xyz", noisy_env)
    assert not usable
    assert "no_such_device_xyz" in reason
    assert "CompilerWarning" not in reason


def test_verdict_rules():
    assert nox_probe.verdict(0, "anything at all\n", "warnings") == (True, "")
    line = f"{nox_probe.REASON} no driver\n"
    assert nox_probe.verdict(3, "chatter\n" + line, "CompilerWarning") == (False, "no driver")
    usable, reason = nox_probe.verdict(-6, "", "boom\nAssertion failed\n")
    assert not usable and "status -6" in reason and "Assertion failed" in reason
