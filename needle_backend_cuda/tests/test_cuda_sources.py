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


# -- host-side view simplification -------------------------------------------------
def _offsets(shape, strides, offset):
    """Element offsets of a view in row-major order, by brute force."""
    idx = np.indices(shape).reshape(len(shape), -1) if shape else np.zeros((0, 1), dtype=int)
    return offset + (np.asarray(strides, dtype=np.int64)[:, None] * idx).sum(axis=0)


def _random_view(rng):
    ndim = int(rng.integers(1, 6))
    base = [int(rng.integers(1, 5)) for _ in range(ndim)]
    arr = np.arange(int(np.prod(base)) * 8).reshape([*base[:-1], base[-1] * 8])
    view = arr
    if rng.random() < 0.5:
        view = view.transpose(rng.permutation(ndim))
    slices = tuple(slice(int(rng.integers(0, 2)), None, int(rng.integers(1, 3))) for _ in range(view.ndim))
    view = view[slices]
    if rng.random() < 0.3:
        view = np.broadcast_to(view[:1], (3, *view.shape[1:]))
    strides = tuple(s // view.itemsize for s in view.strides)
    offset = (view.__array_interface__["data"][0] - arr.__array_interface__["data"][0]) // arr.itemsize
    return arr, view, strides, offset


@pytest.mark.parametrize("seed", range(40))
def test_coalesce_keeps_the_elements_and_their_order(seed):
    rng = np.random.default_rng(seed)
    arr, view, strides, offset = _random_view(rng)
    cshape, cstrides = layout.coalesce(view.shape, strides)
    assert len(cshape) <= view.ndim
    np.testing.assert_array_equal(arr.reshape(-1)[_offsets(cshape, cstrides, offset)], view.reshape(-1))
    assert layout.span(view.shape, strides, offset) == layout.span(cshape, cstrides, offset)


def test_coalesce_merges_contiguous_and_drops_unit_axes():
    assert layout.coalesce((2, 3, 4), (12, 4, 1)) == ([24], [1])
    assert layout.is_contiguous(*layout.coalesce((1, 5, 1), (99, 1, 7)))
    assert layout.coalesce((4, 3), (1, 4)) == ([4, 3], [1, 4])  # transposed: nothing to merge
    assert layout.coalesce((), ()) == ([], [])


def test_check_view_rejects_views_outside_the_buffer():
    assert layout.check_view(12, (3, 4), (4, 1), 0, "t") == 12
    with pytest.raises(IndexError, match="reaches elements 1..12 of a buffer of 12"):
        layout.check_view(12, (3, 4), (4, 1), 1, "t")
    assert layout.check_view(0, (0, 4), (4, 1), 5, "t") == 0  # empty views touch nothing


def test_pack_layout_pads_to_max_dims_and_rejects_more():
    assert layout.pack_layout([3, 4], [4, 1]) == [3, 4, 0, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0, 0]
    with pytest.raises(ValueError, match="at most 8"):
        layout.pack_layout([2] * 9, [1] * 9)
