"""An outside package adds a device and overrides a kernel through its entry point alone.

The fixture package tests/fixtures/needle_backend_counting is installed editable
(``pip install -e tests/fixtures/needle_backend_counting``; the nox session
``thirdparty`` does it). Without it these tests skip.
"""

from __future__ import annotations

import pytest
from registry_support import clean_env, installed_backend, run_module, run_python

pytestmark = [
    pytest.mark.thirdparty,
    pytest.mark.skipif(
        not installed_backend("counting"),
        reason="the fixture backend is not installed: pip install -e tests/fixtures/needle_backend_counting",
    ),
]


def test_counting_device_appears_and_works_through_the_entry_point():
    run_python(
        """
        import numpy as np
        import needle as ndl
        import needle_backend_counting as counting
        rec = {r.name: r for r in ndl.devices()}["counting"]
        assert (rec.status, rec.plugin, rec.distribution, rec.source) == (
            "available", "counting", "needle-backend-counting", "entry point"), rec
        dev = ndl.device("counting")
        assert ndl.device("counter") is dev and repr(dev) == "device('counting')"
        x = ndl.Tensor(np.arange(4, dtype="float32"), device=dev)
        np.testing.assert_allclose((x + x).numpy(), 2 * np.arange(4))
        assert counting.CALLS["ewise_add"] == 1 and counting.CALLS["Array"] >= 2
        assert dev.kernel_source("ewise_add") == "needle-backend-counting 0.1.0"
        """,
        clean_env(),
    )


def test_override_of_cpu_numpy_is_active_with_provenance():
    run_python(
        """
        import numpy as np
        import needle as ndl
        import needle_backend_counting as counting
        dev = ndl.cpu_numpy()
        assert dev.kernel_source("ewise_tanh") == "needle-backend-counting 0.1.0"
        assert dev.kernel_source("ewise_exp").startswith("needle-backend-numpy ")
        x = np.linspace(-3, 3, 7).astype("float32")
        np.testing.assert_allclose(ndl.tanh(ndl.Tensor(x, device=dev)).numpy(), np.tanh(x), rtol=1e-6)
        assert counting.OVERRIDE_CALLS["ewise_tanh"] == 1
        """,
        clean_env(),
    )


def test_blocked_counting_plugin_disappears_with_its_override():
    run_python(
        """
        import sys
        import needle as ndl
        assert "counting" not in [r.name for r in ndl.devices()]
        assert ndl.cpu_numpy().kernel_source("ewise_tanh").startswith("needle-backend-numpy ")
        assert "needle_backend_counting.plugin" not in sys.modules
        """,
        clean_env(NEEDLE_BLOCK_PLUGINS="counting"),
    )


def test_counting_device_passes_the_conformance_suite(tmp_path):
    proc = run_module(
        ["pytest", "--pyargs", "needle.testing", "--needle-device", "counting", "-q", "-p", "no:cacheprovider"],
        clean_env(NEEDLE_REQUIRE_DEVICES="counting"),
        cwd=str(tmp_path),
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and " failed" not in proc.stdout
