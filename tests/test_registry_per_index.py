"""A verify or factory failure of one device index leaves the provider's other indices usable.

Fixture: ``fixtures/plugins/needle_fixture_per_index.py`` (two indices per type,
one failing). Each test runs in a fresh interpreter (registry_support).
"""

from __future__ import annotations

from registry_support import isolated_env, run_module, run_python

PLUGIN = "needle_fixture_per_index"

# Shared by the subprocess snippets: a small computation checked against NumPy, and
# the check that a type's index 0 (also its bare name) works whatever index 1 does.
COMPUTES = """
import numpy as np
def computes(dev):
    a = np.linspace(-1.0, 2.0, 6, dtype="float32").reshape(2, 3)
    b = np.arange(6, dtype="float32").reshape(2, 3)
    x, y = ndl.Tensor(a, device=dev), ndl.Tensor(b, device=dev)
    got = (x * y + x).sum(axes=(1,)).numpy()
    np.testing.assert_allclose(got, (a * b + a).sum(axis=1), rtol=1e-6)
    assert (x + y).device == dev
def index_0_usable(kind):
    dev = ndl.device(kind + ":0")
    assert dev.enabled() and dev is ndl.device(kind) and dev.index == 0, dev
    computes(dev)
"""


def _run(code: str) -> None:
    prelude = "import needle as ndl\nfrom registry_support import device_row, error_text\n"
    run_python(prelude + COMPUTES + code, isolated_env(PLUGIN))


def test_verify_failure_of_index_1_leaves_index_0_usable():
    _run(
        """
import needle_fixture_per_index as fx
# fails first: it must not poison index 0
text = error_text(lambda: ndl.device("halfverify:1"), ndl.backends.DeviceUnavailableError,
                  "halfverify:1 fails its verify step and must be unusable")
assert "verify() failed: card 1 failed its self-test" in text, text
assert fx.HINT in text, text
index_0_usable("halfverify")
# asked again: same answer, verify not rerun
text = error_text(lambda: ndl.device("halfverify:1"), ndl.backends.DeviceUnavailableError,
                  "halfverify:1 must stay unusable")
assert "card 1 failed its self-test" in text, text
assert fx.VERIFY_CALLS == {"halfverify:1": 1, "halfverify:0": 1}, fx.VERIFY_CALLS
        """
    )


def test_listing_shows_the_type_as_index_0_and_the_failed_index_on_its_own_row():
    _run(
        """
import needle_fixture_per_index as fx
try:
    ndl.device("halfverify:1")
except ndl.backends.DeviceUnavailableError:
    pass
assert device_row("halfverify", "available").reason == ""
bad = device_row("halfverify:1", "unavailable", "verify() failed: card 1 failed its self-test")
assert not bad.usable and bad.hint == fx.HINT, bad
assert bad.plugin == "needle_fixture_per_index" and bad.active, bad
assert "halfverify:1: unavailable (verify() failed: card 1 failed its self-test)" in str(bad), str(bad)
rows = {r.name for r in ndl.devices()}
assert "halffactory:1" not in rows and "firstbad:1" not in rows  # never tried: nothing to report
computes(ndl.device("halfverify"))
        """
    )


def test_factory_exception_for_index_1_leaves_index_0_usable():
    _run(
        """
import needle_fixture_per_index as fx
text = error_text(lambda: ndl.device("halffactory:1"), ndl.backends.BackendError,
                  "factory(1) raises: halffactory:1 must be unusable")
assert "factory(1) raised RuntimeError: cannot open card 1: context creation failed" in text, text
index_0_usable("halffactory")
device_row("halffactory", "available")
bad = device_row("halffactory:1", "broken", "factory(1) raised RuntimeError: cannot open card 1")
assert "NEEDLE_BLOCK_PLUGINS=needle_fixture_per_index" in bad.hint, bad
assert fx.FACTORY_CALLS == {"halffactory:1": 1, "halffactory:0": 1}, fx.FACTORY_CALLS
        """
    )


def test_bare_name_reflects_index_0_only():
    _run(
        """
text = error_text(lambda: ndl.device("firstbad"), ndl.backends.DeviceUnavailableError,
                  "firstbad (index 0) fails its verify step")
assert "card 0 failed its self-test" in text, text
dev = ndl.device("firstbad:1")
assert dev.enabled() and dev.index == 1
computes(dev)
device_row("firstbad", "unavailable", "card 0")
assert device_row("firstbad:1", "available").usable
        """
    )


def test_verify_listing_checks_every_index_and_the_command_shows_failed_ones():
    proc = run_module(["needle", "devices"], isolated_env(PLUGIN))
    lines = proc.stdout.strip().splitlines()
    assert lines[0].split()[:3] == ["DEVICE", "STATUS", "CHECK"], proc.stdout
    rows = {line.split()[0]: line for line in lines[1:]}
    assert rows["halfverify"].split()[1:3] == ["available", "PASS"], proc.stdout
    assert rows["halfverify:1"].split()[1:3] == ["unavailable", "-"], proc.stdout
    assert "card 1 failed its self-test" in rows["halfverify:1"], proc.stdout
    assert "install the fixture driver for the second card" in rows["halfverify:1"], proc.stdout
    assert rows["halffactory"].split()[1:3] == ["available", "PASS"], proc.stdout
    assert rows["halffactory:1"].split()[1:3] == ["broken", "-"] and "cannot open card 1" in rows["halffactory:1"]
    assert rows["firstbad"].split()[1:3] == ["unavailable", "-"], proc.stdout
    assert rows["firstbad:1"].split()[1:3] == ["available", "PASS"], proc.stdout
    assert proc.returncode == 0, proc.stdout + proc.stderr  # failed indices are listed, not smoke-failed


def test_listing_without_verify_builds_nothing_and_adds_no_index_rows():
    _run(
        """
import needle_fixture_per_index as fx
names = [r.name for r in ndl.devices()]
assert not fx.FACTORY_CALLS and not fx.VERIFY_CALLS, (fx.FACTORY_CALLS, fx.VERIFY_CALLS)
assert not [n for n in names if ":" in n], names
        """
    )
