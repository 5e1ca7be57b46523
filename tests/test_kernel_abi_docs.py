"""docs/backends.md's kernel tables agree with the rows of needle_core.kernels.

Each signature the page's §2/§3 tables give (`` `name(params)` ``) must match the
row's parameters and section (§2 primitives, §3 optional), every row must appear,
and the ELEMENTWISE and REDUCTIONS tables must list exactly the rows.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from needle_core.backend_ndarray.composite import FALLBACKS
from needle_core.kernels import ELEMENTWISE, KERNEL_SPECS, KERNEL_SPECS_BY_NAME, REDUCTIONS

DOC = (Path(__file__).resolve().parent.parent / "docs" / "backends.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = DOC.index(title)
    return DOC[start : DOC.index("\n## ", start + 1)]


def _signatures(section: str) -> dict[str, tuple[str, ...]]:
    """``name -> params`` for the table rows whose first cell is a concrete call."""
    found = {}
    for cell in re.findall(r"^\| `([^`|]+)` \|", section, flags=re.M):
        match = re.fullmatch(r"(\w+)\((.*)\)(?: -> .*)?", cell)
        if match:  # `ewise_<op>(...)` rows describe a family, not one kernel
            params = tuple(p.split("=")[0].strip() for p in match[2].split(",") if p.strip())
            found[match[1]] = params
    return found


PRIMITIVES = _signatures(_section("## 2. Primitive kernels"))
OPTIONALS = _signatures(_section("## 3. Optional kernels"))


def _table(marker: str) -> list[list[str]]:
    start = DOC.index(f"<!-- {marker} table")
    block = DOC[start : DOC.index(f"<!-- end of {marker} table -->", start)]
    rows = [line for line in block.splitlines() if line.startswith("| `")]
    cells = (re.split(r"(?<!\\)\|", row.strip().strip("|")) for row in rows)  # GFM: "\|" is a pipe in a cell
    return [[cell.strip().strip("`").replace("\\|", "|") for cell in row] for row in cells]


@pytest.mark.parametrize("spec", KERNEL_SPECS, ids=lambda s: s.name)
def test_every_kernel_row_is_documented_with_its_parameters(spec):
    documented = PRIMITIVES if spec.required else OPTIONALS
    other = OPTIONALS if spec.required else PRIMITIVES
    assert spec.name not in other, f"{spec.name} is documented in the wrong section of docs/backends.md"
    if spec.name in {k.name for k in ELEMENTWISE if k.required}:
        return  # the §2 family rows and the ELEMENTWISE table cover them
    assert spec.name in documented, f"docs/backends.md does not list {spec.signature}"
    assert documented[spec.name] == spec.params, (
        f"docs/backends.md gives {spec.name}{documented[spec.name]} but kernels.py declares {spec.signature}"
    )


def test_every_documented_signature_is_a_kernel_row():
    for name in (*PRIMITIVES, *OPTIONALS):
        assert name in KERNEL_SPECS_BY_NAME, f"docs/backends.md documents {name}, which kernels.py does not declare"


def test_the_elementwise_table_lists_exactly_the_rows():
    documented = _table("ELEMENTWISE")
    expected = [[k.name, k.kind, k.expr, "yes" if k.required else "no"] for k in ELEMENTWISE]
    assert documented == expected, "docs/backends.md's ELEMENTWISE table differs from kernels.py:\n" + "\n".join(
        f"| `{n}` | {kind} | `{e}` | {r} |" for n, kind, e, r in expected
    )


def test_the_reductions_table_lists_exactly_the_rows():
    expected = [[r.name, r.view_name, r.c_identity, r.combine] for r in REDUCTIONS]
    assert _table("REDUCTIONS") == expected


def test_every_optional_elementwise_row_has_a_fallback():
    assert {k.name for k in ELEMENTWISE if not k.required} <= set(FALLBACKS)
