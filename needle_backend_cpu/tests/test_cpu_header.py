"""The cpu backend's committed elementwise header matches needle_core's kernel table.

pip builds needle_backend_cpu in isolation (it cannot import needle-core), so the
table is rendered into ``needle_backend_cpu/csrc/elementwise_table.h`` by
``needle_backend_cpu/tools/gen_header.py`` and committed; this test fails when a row
is added or changed without regenerating it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from needle_core.kernels import ELEMENTWISE, ElementwiseKernel

ROOT = Path(__file__).resolve().parents[2]  # the repository root
TOOL = ROOT / "needle_backend_cpu" / "tools" / "gen_header.py"
HEADER = ROOT / "needle_backend_cpu" / "csrc" / "elementwise_table.h"


def load_tool():
    spec = importlib.util.spec_from_file_location("needle_cpu_gen_header", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_header_is_the_rendered_table_byte_for_byte():
    rendered = load_tool().render().encode()
    assert HEADER.read_bytes() == rendered, (
        f"{HEADER.relative_to(ROOT)} is stale: run python {TOOL.relative_to(ROOT)} and commit the result"
    )


def test_every_table_row_appears_once_with_its_expression():
    text = HEADER.read_text()
    for k in ELEMENTWISE:
        assert text.count(f"X({k.name}, ") == 1
        assert f"({k.expr}))" in text


def test_a_new_row_changes_the_rendering():
    tool = load_tool()
    extra = ElementwiseKernel("ewise_square", 1, "a * a", lambda a, out=None: a * a, False)
    assert "X(ewise_square, 1, 0, 0, (a * a))" in tool.render((*ELEMENTWISE, extra))
    assert tool.render((*ELEMENTWISE, extra)) != tool.render()


def test_expressions_that_would_break_the_macro_are_refused():
    tool = load_tool()
    bad = ElementwiseKernel("ewise_bad", 1, "a \\\n + 1", lambda a, out=None: a, False)
    with pytest.raises(ValueError, match="cannot go into a C macro"):
        tool.render((bad,))


def test_check_mode_agrees_with_the_committed_file():
    assert load_tool().main(["--check"]) == 0
