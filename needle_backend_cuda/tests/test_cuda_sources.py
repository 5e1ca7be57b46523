"""Kernel source rendering and host-side marshalling of the cuda backend (no GPU).

The kernel parameter lists are parsed from the rendered CUDA source and compared
with the ``prepare`` formats the wrappers pack arguments with, so an argument
added on one side only fails here, before any GPU sees it.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

pytest.importorskip("needle_backend_cuda", reason="needle-backend-cuda is not installed")

from needle_backend_cuda.runtime import SIGNATURES, elementwise_signature  # noqa: E402
from needle_core.kernels import ELEMENTWISE, ElementwiseKernel  # noqa: E402

from needle_backend_cuda import layout, render  # noqa: E402

pytestmark = pytest.mark.absent_device

_PARAM_CHARS = {"float*": "P", "longlong": "q", "int": "i", "float": "f", "NdlLayout": "q" * 16}


def _param_format(source: str, kernel: str) -> str:
    """The pycuda ``prepare`` format implied by a kernel's C parameter list."""
    match = re.search(r"__global__ void\s+(?:__launch_bounds__\([^)]*\)\s*)?" + kernel + r"\s*\(([^)]*)\)", source)
    assert match, f"kernel {kernel} not found"
    chars = []
    for param in match.group(1).split(","):
        words = param.replace("*", " * ").split()[:-1]  # drop the parameter name
        ctype = "".join(w for w in words if w not in ("const", "__restrict__"))
        assert ctype in _PARAM_CHARS, f"{kernel}: unexpected parameter type {param!r}"
        chars.append(_PARAM_CHARS[ctype])
    return "".join(chars)


def test_every_table_row_is_rendered_as_a_kernel():
    src = render.module_source("elementwise")
    names = render.kernel_names(src)
    assert names == ["fill", *(k.name for k in ELEMENTWISE)]
    for k in ELEMENTWISE:
        assert f"return ({k.expr});" in src


def test_a_new_row_is_one_line_of_table():
    row = ElementwiseKernel("ewise_softplus", 1, "log(1.0f + exp(a))", np.logaddexp, False)
    src = render.render_elementwise((row,))
    assert render.kernel_names(src) == ["fill", "ewise_softplus"]
    assert "return (log(1.0f + exp(a)));" in src


@pytest.mark.parametrize("row", ELEMENTWISE, ids=lambda k: k.name)
def test_elementwise_parameters_match_the_packing(row):
    src = render.module_source("elementwise")
    assert _param_format(src, row.name) == elementwise_signature(row.arity, row.is_scalar)


@pytest.mark.parametrize("kernel", sorted(SIGNATURES))
def test_kernel_parameters_match_the_packing(kernel):
    module, fmt = SIGNATURES[kernel]
    src = render.module_source(module)
    assert kernel in render.kernel_names(src)
    assert _param_format(src, kernel) == fmt


@pytest.mark.parametrize("kernel", sorted(SIGNATURES))
def test_packed_arguments_need_no_padding(kernel):
    # 8-byte arguments come first, so native packing equals the CUDA parameter layout
    # without relying on alignment rules.
    fmt = SIGNATURES[kernel][1]
    sizes = [{"P": 8, "q": 8, "i": 4, "f": 4}[c] for c in fmt]
    assert sizes == sorted(sizes, reverse=True)


def test_modules_are_self_contained():
    for name, src in render.all_sources().items():
        assert "#include" not in src, f"{name}: SourceModule gets one string; inline headers instead"
        assert src.count("struct NdlLayout {") == 1


def test_unknown_module_is_a_clear_error():
    with pytest.raises(KeyError, match="expected one of"):
        render.module_source("nope")


# -- host-side view packing (the view math itself: needle_core.views, tests/test_views.py) --
def test_pack_layout_pads_to_max_dims_and_rejects_more():
    assert layout.pack_layout([3, 4], [4, 1]) == [3, 4, 0, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0, 0]
    with pytest.raises(ValueError, match="at most 8"):
        layout.pack_layout([2] * 9, [1] * 9)
