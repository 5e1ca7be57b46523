"""docs/writing-a-backend.md: its complete example is short and passes the suite."""

from __future__ import annotations

import re
from pathlib import Path

from registry_support import clean_env, isolated_env, run_module, run_python

DOC = Path(__file__).resolve().parents[1] / "docs" / "writing-a-backend.md"
MARKER = "# needle_backend_mini/plugin.py"


def _example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    [example] = [b for b in blocks if b.startswith(MARKER)]
    return example


def test_example_is_complete_and_at_most_100_lines():
    code = _example()
    assert len(code.splitlines()) <= 100
    compile(code, "needle_backend_mini.py", "exec")


def test_backends_doc_links_the_guide():
    assert "(writing-a-backend.md)" in (DOC.parent / "backends.md").read_text()


def test_example_registers_and_passes_the_conformance_suite(tmp_path):
    (tmp_path / "needle_backend_mini.py").write_text(_example())
    env = isolated_env("needle_backend_mini", PYTHONPATH=f"{tmp_path}:{isolated_env()['PYTHONPATH']}")
    run_python(
        """
        import numpy as np, needle as ndl
        assert {r.name: r.status for r in ndl.devices()}["mini"] == "available"
        a = np.arange(6, dtype="float32").reshape(2, 3)
        x = ndl.Tensor(a, device=ndl.device("mini"))
        np.testing.assert_allclose((x @ x.transpose()).numpy(), a @ a.T)
        """,
        env,
    )
    proc = run_module(
        ["pytest", "--pyargs", "needle.testing", "--needle-device", "mini", "-q", "-p", "no:cacheprovider"],
        {**env, "NEEDLE_REQUIRE_DEVICES": "mini"},
        cwd=str(tmp_path),
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and " failed" not in proc.stdout


def test_without_packaging_snippet_registers_the_example_laid_out_as_the_doc_says(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    [snippet] = [b for b in blocks if "ndl.backends.register(needle_backend_mini" in b]
    package = tmp_path / "needle_backend_mini"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "plugin.py").write_text(_example())
    env = clean_env(NEEDLE_DISABLE_PLUGIN_AUTOLOAD="1", NEEDLE_PLUGINS="needle_backend_numpy.plugin")
    env["PYTHONPATH"] = f"{tmp_path}:{env['PYTHONPATH']}"
    run_python(snippet + "\nassert ndl.device('mini').enabled()\n", env)
