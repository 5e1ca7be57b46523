"""ndl.check_against: a wrong kernel is caught at its op; comparison rules (the device runs are in
needle_nn.testing.test_check_against)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from needle_core.tools.compare import compare
from registry_support import isolated_env, run_python

# A small training loop on device "faulty" (tests/fixtures/plugins/needle_fixture_faulty.py).
# SIGNS flips some divisors negative: only then is the fixture's ewise_div wrong.
LOOP = """
import numpy as np, needle as ndl, needle.nn as nn
SIGNS = {signs}
dev = ndl.device("faulty")
np.random.seed(0)
model = nn.Sequential(nn.Linear(4, 6, device=dev), nn.ReLU(), nn.Linear(6, 3, device=dev))
opt = ndl.optim.Adam(model.parameters(), lr=0.01)
X = ndl.Tensor(np.random.randn(8, 4).astype("float32"), device=dev, requires_grad=False)
sign = np.where(np.arange(24).reshape(8, 3) % 5 == 3, SIGNS, 1.0)
D = ndl.Tensor(((np.random.rand(8, 3) + 0.5) * sign).astype("float32"), device=dev, requires_grad=False)
with ndl.check_against("cpu_numpy", report_dir={report!r}) as checker:
    for step in range(3):
        opt.reset_grad()
        h = model(X)
        loss = (h / D).sum() + (h * h).sum()
        loss.backward()
        opt.step()
print("clean after", checker.ops_checked, "ops and", checker.kernels_checked, "kernels")
"""


def _run(signs: float, tmp_path, fault: str = "ewise_div", env_extra: dict | None = None):
    env = isolated_env("needle_fixture_faulty", NEEDLE_FIXTURE_FAULT=fault, **(env_extra or {}))
    return run_python(LOOP.format(signs=signs, report=str(tmp_path)), env, check=False)


def test_positive_divisors_run_clean_on_the_faulty_backend(tmp_path):
    proc = _run(1.0, tmp_path)
    assert proc.returncode == 0, proc.stderr
    ops = int(proc.stdout.split("clean after ")[1].split()[0])
    assert ops > 30  # forward, backward and more than one step were compared


def test_wrong_ewise_div_is_caught_at_that_op_naming_its_provider(tmp_path):
    proc = _run(-1.0, tmp_path)
    assert proc.returncode == 1
    message = proc.stderr[proc.stderr.index("DivergenceError:"):]
    first = message.splitlines()[0]
    assert "EWiseDiv on faulty:0 diverged from the reference cpu_numpy:0 (rtol=0.0001, atol=1e-05)" in first
    assert "ewise_div on faulty:0 from needle_fixture_faulty" in message  # the kernel and its plugin
    assert "EWiseDiv(), forward" in message
    assert "#0 shape (8, 3) strides (3, 1) offset 0 float32 on faulty:0" in message
    assert "#1 shape (8, 3) strides (3, 1) offset 0 float32 on faulty:0" in message
    assert "max abs error" in message and "max rel error 2 " in message
    # the first divergent op of the first step: everything before it agreed
    assert "op #" in message and "called from <string>:" in message
    script = message.split("reproduce: python ")[1].split()[0]
    rerun = subprocess.run([sys.executable, script], env=isolated_env("needle_fixture_faulty"),
                           capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.startswith("output 0: max abs error")


def test_wrong_optimizer_kernel_is_caught(tmp_path):
    proc = _run(1.0, tmp_path, fault="adam_update")
    assert proc.returncode == 1
    message = proc.stderr[proc.stderr.index("DivergenceError:"):]
    assert "kernel adam_update on faulty:0 (outside any Tensor op" in message
    assert "adam_update on faulty:0 from needle_fixture_faulty" in message
    assert "adam.py" in message  # called from the optimizer's step


def test_a_correct_fixture_runs_clean(tmp_path):
    proc = _run(-1.0, tmp_path, fault="none")
    assert proc.returncode == 0, proc.stderr


def test_env_variable_checks_the_whole_run(tmp_path):
    code = LOOP.replace('with ndl.check_against("cpu_numpy", report_dir={report!r}) as checker:', "if True:")
    code = code.replace('print("clean after", checker.ops_checked, "ops and", checker.kernels_checked, "kernels")',
                        'print("no error")')
    env = isolated_env("needle_fixture_faulty", NEEDLE_CHECK_AGAINST="cpu_numpy", NEEDLE_CHECK_DIR=str(tmp_path))
    proc = run_python(code.format(signs=-1.0, report=""), env, check=False)
    assert proc.returncode == 1 and "EWiseDiv on faulty:0 diverged" in proc.stderr
    assert list(tmp_path.glob("divergence-*-EWiseDiv.py"))


@pytest.mark.parametrize(
    ("got", "want", "ok"),
    [
        ([1.0, np.nan], [1.0, np.nan], True),  # NaN agrees with NaN
        ([1.0, np.nan], [1.0, 2.0], False),  # ... and with nothing else
        ([1.0, 2.0], [1.0, np.nan], False),
        ([np.inf], [np.inf], True),
        ([np.inf], [-np.inf], False),
        ([np.inf], [1e38], False),
        ([1.0 + 1e-4], [1.0], True),  # within atol + rtol * |reference|
        ([1.0 + 1e-4 + 2e-5], [1.0], False),
    ],
)
def test_tolerance_and_nan_rules(got, want, ok):
    result = compare(np.array(got), np.array(want), rtol=1e-4, atol=1e-5)
    assert (result is None) == ok


def test_mismatch_reports_worst_element():
    got = np.array([[1.0, 2.0], [3.0, -4.0]], dtype=np.float32)
    want = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
    m = compare(got, want, rtol=1e-4, atol=1e-5)
    assert m.max_abs == 8.0 and m.max_abs_at == (1, 1) and m.max_rel == 2.0 and m.count == 1
    assert compare(got, want.astype(np.float64), 1e-4, 1e-5).what.startswith("dtype float32")
