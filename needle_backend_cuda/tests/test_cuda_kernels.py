"""Every cuda kernel wrapper against NumPy, on two executors of the same code:

* ``emulated``: the real CUDA sources and Python wrappers on a fake pycuda that
  compiles the kernels with g++ and runs each block's threads as fibers with real
  barrier/shuffle semantics (needle_backend_cuda/tests/fakecuda). It checks index
  math, launch configurations, argument packing and bounds on any Linux machine.
* ``gpu``: the same tests on a real GPU through pycuda; skipped with the probe's
  reason where there is none (failed instead when NEEDLE_REQUIRE_DEVICES names cuda).

References are NumPy formulas in float64, independent of the kernels.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("needle_backend_cuda", reason="needle-backend-cuda is not installed")

from needle.testing._reference import np_conv_nhwc  # noqa: E402
from needle_core.kernels import ELEMENTWISE  # noqa: E402

from needle_backend_cuda import kernels, layout, plugin, probe  # noqa: E402

FAKE_DIR = Path(__file__).resolve().parent / "fakecuda"
# absent_device: the emulated half needs no GPU, so it runs where cuda is unavailable too
pytestmark = pytest.mark.absent_device


def _load_emulation():
    # Loaded by path: putting FAKE_DIR on sys.path would make the fake pycuda
    # importable everywhere and fool the real probe.
    spec = importlib.util.spec_from_file_location("needle_cuda_emulated", FAKE_DIR / "needle_cuda_emulated.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _required() -> bool:
    return "cuda" in {d.strip() for d in os.environ.get("NEEDLE_REQUIRE_DEVICES", "").split(",")}


@pytest.fixture(scope="module", params=["emulated", "gpu"])
def ns(request):
    if request.param == "emulated":
        emulation = _load_emulation()
        reason = emulation.emulator_unavailable_reason()
        if reason:
            pytest.skip(reason)
        old = os.environ.get("FAKECUDA_SM_COUNT")
        os.environ["FAKECUDA_SM_COUNT"] = "1"  # few blocks: grid-stride loops really loop
        try:
            yield emulation.make_namespace(0)
        finally:
            if old is None:
                os.environ.pop("FAKECUDA_SM_COUNT", None)
            else:
                os.environ["FAKECUDA_SM_COUNT"] = old
        return
    result = probe.probe()
    if not result.ok:
        if _required():
            pytest.fail(f"cuda is required (NEEDLE_REQUIRE_DEVICES) but unavailable: {result.reason}")
        pytest.skip(f"cuda unavailable: {result.reason}")
    yield plugin.make_device(0)


def put(ns, array) -> object:
    host = np.ascontiguousarray(array, dtype=np.float32)
    buf = ns["Array"](host.size)
    ns["from_numpy"](host.reshape(-1), buf)
    return buf


def get(ns, buf, shape) -> np.ndarray:
    shape = tuple(shape)
    strides = tuple(int(np.prod(shape[i + 1:])) for i in range(len(shape)))
    return ns["to_numpy"](buf, shape, strides, 0)


rng = np.random.default_rng(0)


# -- elementwise family -----------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 3, 4, 1027, 40003])
@pytest.mark.parametrize("row", ELEMENTWISE, ids=lambda k: k.name)
def test_elementwise_rows(ns, row, n):
    a = rng.standard_normal(n).astype(np.float32) * 2
    b = rng.standard_normal(n).astype(np.float32) * 2
    b[::5] = a[::5]  # ties for eq/ge
    out = ns["Array"](n)
    with np.errstate(all="ignore"):
        if row.arity == 1:
            ns[row.name](put(ns, a), out)
            expected = row.numpy(a.astype(np.float64))
        elif row.is_scalar:
            val = 1.5 if row.name != "scalar_eq" else float(a[0])
            ns[row.name](put(ns, a), val, out)
            expected = row.numpy(a.astype(np.float64), val)
        else:
            ns[row.name](put(ns, a), put(ns, b), out)
            expected = row.numpy(a.astype(np.float64), b.astype(np.float64))
    np.testing.assert_allclose(get(ns, out, (n,)), expected.astype(np.float32), rtol=1e-5, atol=1e-6, equal_nan=True)


def test_elementwise_may_write_in_place(ns):
    a = rng.standard_normal(1001).astype(np.float32)
    buf = put(ns, a)
    ns["ewise_mul"](buf, buf, buf)
    np.testing.assert_allclose(get(ns, buf, (1001,)), a * a, rtol=1e-6)


def test_fill_and_empty_buffers(ns):
    buf = ns["Array"](5001)
    ns["fill"](buf, -2.25)
    assert (get(ns, buf, (5001,)) == -2.25).all()
    empty = ns["Array"](0)
    ns["fill"](empty, 1.0)
    ns["ewise_add"](empty, empty, empty)
    assert get(ns, empty, (0,)).shape == (0,)


def test_buffer_checks(ns):
    with pytest.raises(TypeError, match="float32 only"):
        ns["Array"](4, "float64")
    with pytest.raises(ValueError, match="3 elements, the buffer 4"):
        ns["from_numpy"](np.zeros(3, np.float32), ns["Array"](4))
    with pytest.raises(ValueError, match="exactly 8 elements, but a has 4"):
        ns["ewise_add"](ns["Array"](4), ns["Array"](8), ns["Array"](8))
    with pytest.raises(ValueError, match="exactly 8 elements, but a has 12"):  # larger operands too
        ns["ewise_add"](ns["Array"](12), ns["Array"](8), ns["Array"](8))


# -- strided views ------------------------------------------------------------------------
def _views():
    base = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    yield "transpose", base, base.transpose(3, 1, 0, 2)
    yield "slice_step_offset", base, base[1:, ::2, 1:4, ::3]
    yield "broadcast", base, np.broadcast_to(base[:, :1, :, 2:3], (2, 7, 4, 3))
    yield "contiguous_tail", base, base[1, 2:]
    yield "scalar_like", base, base[1:2, 2:3, 3:4, 4:5]
    big = np.arange(9 * 1000, dtype=np.float32).reshape(9, 1000)
    yield "many_blocks", big, big.T[::3]
    nine = np.arange(2**9, dtype=np.float32).reshape((2,) * 9)
    yield "eight_axes", nine, nine.transpose(8, 0, 7, 1, 6, 2, 5, 3, 4)[0]


def _strided(base, view):
    strides = tuple(s // 4 for s in view.strides)
    offset = (view.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // 4
    return view.shape, strides, offset


@pytest.fixture(params=["i32", "i64"])
def index_width(request, monkeypatch):
    if request.param == "i64":
        monkeypatch.setattr(layout, "INT32_LIMIT", 0)  # every view takes the 64-bit kernels
    return request.param


@pytest.mark.parametrize("name,base,view", list(_views()), ids=[v[0] for v in _views()])
def test_compact(ns, index_width, name, base, view):
    shape, strides, offset = _strided(base, view)
    out = ns["Array"](view.size)
    ns["compact"](put(ns, base), out, shape, strides, offset)
    np.testing.assert_array_equal(get(ns, out, shape), view)
    np.testing.assert_array_equal(ns["to_numpy"](put(ns, base), shape, strides, offset), view)


_WRITABLE_VIEWS = [v for v in _views() if v[0] != "broadcast"]  # a broadcast target has no single value


@pytest.mark.parametrize("name,base,view", _WRITABLE_VIEWS, ids=[v[0] for v in _WRITABLE_VIEWS])
def test_setitem(ns, index_width, name, base, view):
    shape, strides, offset = _strided(base, view)
    values = rng.standard_normal(view.size).astype(np.float32)
    out = put(ns, base)
    ns["ewise_setitem"](put(ns, values), out, shape, strides, offset)
    expected = base.copy()
    positions = offset + sum(np.indices(shape)[k] * strides[k] for k in range(len(shape)))
    expected.reshape(-1)[positions.reshape(-1)] = values
    np.testing.assert_array_equal(get(ns, out, base.shape), expected)

    out = put(ns, base)
    ns["scalar_setitem"](view.size, 7.5, out, shape, strides, offset)
    expected = base.copy()
    np.lib.stride_tricks.as_strided(expected.reshape(-1)[offset:], shape, view.strides)[...] = 7.5
    np.testing.assert_array_equal(get(ns, out, base.shape), expected)


def test_views_outside_the_buffer_are_rejected(ns):
    buf = ns["Array"](10)
    with pytest.raises(ValueError, match="reaches element 10, but the buffer has 10"):
        ns["compact"](buf, ns["Array"](10), (10,), (1,), 1)
    with pytest.raises(ValueError, match="reaches element 10, but the buffer has 10"):
        ns["scalar_setitem"](4, 1.0, buf, (2, 2), (6, 1), 3)
    with pytest.raises(ValueError, match="does not match"):
        ns["scalar_setitem"](5, 1.0, buf, (2, 2), (2, 1), 0)


# -- reductions ---------------------------------------------------------------------------
# (rows, R): thread-per-row, warp-per-row (rows > resident warps), block-per-row, and
# block-per-row with more rows than blocks
REDUCE_SHAPES = [(50, 7), (300, 100), (5, 5000), (40, 600), (1, 1), (3, 0), (0, 5)]


@pytest.mark.parametrize("rows,size", REDUCE_SHAPES)
def test_reductions(ns, rows, size):
    a = rng.standard_normal((rows, size)).astype(np.float32)
    for name, ref, empty in (("reduce_sum", np.sum, 0.0), ("reduce_max", np.max, -np.inf)):
        out = ns["Array"](rows)
        ns[name](put(ns, a), out, size)
        expected = ref(a.astype(np.float64), axis=1) if size else np.full(rows, empty)
        np.testing.assert_allclose(get(ns, out, (rows,)), expected, rtol=1e-5, atol=1e-5 * max(size, 1) ** 0.5)


@pytest.mark.parametrize("rows,size", [(4, 9), (4, 100), (4, 5000)])
def test_reduce_max_propagates_nan_and_handles_inf(ns, rows, size):
    a = rng.standard_normal((rows, size)).astype(np.float32)
    a[0, size // 2] = np.nan
    a[1, :] = -np.inf
    a[2, -1] = np.inf
    out = ns["Array"](rows)
    ns["reduce_max"](put(ns, a), out, size)
    np.testing.assert_array_equal(get(ns, out, (rows,)), a.max(axis=1))


@pytest.mark.parametrize("rows,size", [(6, 5), (300, 100), (6, 5000), (40, 600)])
def test_logsumexp(ns, rows, size):
    a = (rng.standard_normal((rows, size)) * 30).astype(np.float32)
    a[0, :] = -np.inf  # all -inf: -inf
    a[1, : size // 2] = -np.inf  # partly -inf: finite
    a64 = a.astype(np.float64)
    m = a64.max(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = (m + np.log(np.exp(a64 - np.where(np.isfinite(m), m, 0)).sum(axis=1, keepdims=True)))[:, 0]
    expected[0] = -np.inf
    out = ns["Array"](rows)
    ns["logsumexp"](put(ns, a), out, size)
    np.testing.assert_allclose(get(ns, out, (rows,)), expected, rtol=1e-5)


# -- matmul family --------------------------------------------------------------------------
MATMUL_SHAPES = [
    (1, 1, 1), (5, 7, 3), (16, 16, 16), (130, 70, 150), (128, 64, 256), (200, 8, 36), (33, 0, 17), (3, 257, 5)
]


@pytest.fixture(params=["tiled16", "128x128"])
def gemm_kernel(request, ns, monkeypatch):
    rt = ns["Array"].runtime
    # the wrapper picks the 128x128 kernel when its tiles fill half the SMs
    monkeypatch.setattr(rt, "sm_count", 10**9 if request.param == "tiled16" else 1)
    return request.param


@pytest.mark.parametrize("m,n,p", MATMUL_SHAPES)
def test_matmul(ns, gemm_kernel, m, n, p):
    a = rng.standard_normal((m, n)).astype(np.float32)
    b = rng.standard_normal((n, p)).astype(np.float32)
    out = ns["Array"](m * p)
    ns["matmul"](put(ns, a), put(ns, b), out, m, n, p)
    expected = a.astype(np.float64) @ b.astype(np.float64)
    np.testing.assert_allclose(get(ns, out, (m, p)), expected, rtol=1e-4, atol=1e-5 * max(n, 1))


def test_batched_matmul_with_launch_chunks(ns, gemm_kernel, monkeypatch):
    monkeypatch.setattr(kernels, "MAX_GRID_YZ", 2)  # forces chunking over the batch and the rows
    batch, m, n, p = 5, 300 if gemm_kernel == "128x128" else 40, 20, 36
    a = rng.standard_normal((batch, m, n)).astype(np.float32)
    b = rng.standard_normal((batch, n, p)).astype(np.float32)
    out = ns["Array"](batch * m * p)
    ns["batched_matmul"](put(ns, a), put(ns, b), out, batch, m, n, p)
    np.testing.assert_allclose(get(ns, out, (batch, m, p)), a.astype(np.float64) @ b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("stride", [1, 2])
def test_conv2d_nhwc(ns, stride):
    N, H, W, C, K, C_out = 2, 7, 6, 3, 3, 4
    a = rng.standard_normal((N, H, W, C)).astype(np.float32)
    w = rng.standard_normal((K, K, C, C_out)).astype(np.float32)
    expected = np_conv_nhwc(a, w, stride)
    out = ns["Array"](expected.size)
    ns["conv2d_nhwc"](put(ns, a), put(ns, w), out, a.shape, w.shape, stride)
    np.testing.assert_allclose(get(ns, out, expected.shape), expected, rtol=1e-4, atol=1e-4)


def test_matmul_size_checks(ns):
    with pytest.raises(ValueError, match="matmul"):
        ns["matmul"](ns["Array"](5), ns["Array"](6), ns["Array"](4), 2, 3, 2)
    with pytest.raises(ValueError, match="weight shape"):
        ns["conv2d_nhwc"](ns["Array"](48), ns["Array"](36), ns["Array"](8), (1, 4, 4, 3), (3, 3, 2, 2), 1)


# -- fused optimiser updates -----------------------------------------------------------------
def test_sgd_update(ns):
    n = 3001
    w, g, u = (rng.standard_normal(n).astype(np.float32) for _ in range(3))
    lr, momentum, wd = 0.1, 0.9, 0.01
    bw, bg, bu = put(ns, w), put(ns, g), put(ns, u)
    ns["sgd_update"](bw, bg, bu, n, lr, momentum, wd)
    g2 = g.astype(np.float64) + wd * w
    u2 = momentum * u + (1 - momentum) * g2
    np.testing.assert_allclose(get(ns, bu, (n,)), u2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(get(ns, bw, (n,)), w - lr * u2, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(get(ns, bg, (n,)), g)  # the gradient is read only


def test_adam_update(ns):
    n, t = 3001, 3
    w, g = (rng.standard_normal(n).astype(np.float32) for _ in range(2))
    m = rng.standard_normal(n).astype(np.float32) * 0.1
    v = np.abs(rng.standard_normal(n)).astype(np.float32) * 0.1
    lr, b1, b2, eps, wd = 0.01, 0.9, 0.999, 1e-8, 0.001
    bw, bg, bm, bv = put(ns, w), put(ns, g), put(ns, m), put(ns, v)
    ns["adam_update"](bw, bg, bm, bv, n, lr, b1, b2, eps, wd, t)
    g2 = g.astype(np.float64) + wd * w
    m2 = b1 * m + (1 - b1) * g2
    v2 = b2 * v + (1 - b2) * g2**2
    w2 = w - lr * (m2 / (1 - b1**t)) / (np.sqrt(v2 / (1 - b2**t)) + eps)
    np.testing.assert_allclose(get(ns, bm, (n,)), m2, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(get(ns, bv, (n,)), v2, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(get(ns, bw, (n,)), w2, rtol=1e-5, atol=1e-6)


def _reduce_views():
    a = rng.standard_normal((300, 50)).astype(np.float32)
    yield "columns_via_compact", a, a.T, 1  # few outputs: compact + warp/block kernels
    b = rng.standard_normal((40, 700)).astype(np.float32)
    yield "columns_direct", b, b.T, 1  # many outputs: one thread per output
    c = rng.standard_normal((6, 300, 7)).astype(np.float32)
    yield "two_axes", c, c.transpose(1, 0, 2), 2  # reduced axes do not merge
    d = rng.standard_normal((1, 300)).astype(np.float32)
    yield "broadcast", d, np.broadcast_to(d, (5, 300)).T, 1
    e = rng.standard_normal((4, 8, 9)).astype(np.float32)
    yield "all_axes_offset", e, e[1:, ::2, 3:], 3
    e2 = rng.standard_normal((400, 9)).astype(np.float32)
    e2[7, 3] = np.nan
    yield "nan", e2, e2[:, ::2], 1
    f = rng.standard_normal((3, 1, 40)).astype(np.float32)
    yield "repeat_between_reduced", f, np.broadcast_to(f, (3, 6, 40)), 2  # a stride-0 axis among reduced ones
    yield "only_repeats", d, np.broadcast_to(d[:, :1], (300, 9)), 1  # every axis repeats one element
    g = rng.standard_normal((1, 2, 300)).astype(np.float32)
    yield "kept_repeats_long_rows", g, np.broadcast_to(g, (50, 2, 300)), 1  # few outputs, long rows: reduced once
    yield "kept_repeats_all", g, np.broadcast_to(g[:, :1, :1], (70, 3, 40)), 1


def test_matmul_dimensions_beyond_32_bits_are_refused(ns):
    a, b, out = ns["Array"](0), ns["Array"](0), ns["Array"](0)
    with pytest.raises(ValueError, match=r"m = 2147483648 exceeds .*32-bit"):
        ns["matmul"](a, b, out, 2**31, 0, 0)
    with pytest.raises(ValueError, match=r"p = 4294967296 exceeds"):
        ns["batched_matmul"](a, b, out, 1, 0, 0, 2**32)


def test_reduce_views_never_expand_a_repeated_axis(ns):
    """2 x 5e9 elements: expanding the stride-0 axis would need 40 GB."""
    base = put(ns, np.array([-1.5, 2.0], np.float32))
    for kernel, expected in (("reduce_sum_view", [-7.5e9, 1e10]), ("reduce_max_view", [-1.5, 2.0])):
        out = ns["Array"](2)
        ns[kernel](base, out, (2, 5 * 10**9), (1, 0), 0, 1)
        np.testing.assert_allclose(get(ns, out, (2,)), expected, rtol=1e-6)


@pytest.mark.parametrize("name,base,view,k", list(_reduce_views()), ids=[v[0] for v in _reduce_views()])
def test_reduce_views(ns, index_width, name, base, view, k):
    shape, strides, offset = _strided(base, view)
    rows = int(np.prod(shape[: len(shape) - k]))
    axes = tuple(range(len(shape) - k, len(shape)))
    for kernel, ref in (("reduce_sum_view", np.sum), ("reduce_max_view", np.max)):
        out = ns["Array"](rows)
        ns[kernel](put(ns, base), out, shape, strides, offset, k)
        expected = ref(view.astype(np.float64), axis=axes).reshape(-1)
        np.testing.assert_allclose(get(ns, out, (rows,)), expected, rtol=1e-5, atol=1e-5, equal_nan=True)
