"""The CPU emulator behind the ``emulated`` kernel tests catches what a GPU would
punish: divergent barriers, partial-warp shuffles, argument buffers that do not
match the kernel's parameters, invalid launch shapes; and, through g++'s
instrumentation wired to its own checks, out-of-bounds reads and writes next to an
allocation, misaligned vector accesses, indexes outside a ``__shared__`` array,
wrapped 32-bit index math and races on ``__shared__`` memory between two barriers."""

from __future__ import annotations

import importlib.util
import os
import struct
from pathlib import Path

import numpy as np
import pytest

FAKE_DIR = Path(__file__).resolve().parent / "fakecuda"
pytestmark = pytest.mark.absent_device

if not (FAKE_DIR / "needle_cuda_emulated.py").exists():
    pytest.skip("needle_backend_cuda/tests/fakecuda is not in this checkout", allow_module_level=True)


@pytest.fixture(scope="module")
def fake():
    spec = importlib.util.spec_from_file_location("needle_cuda_emulated", FAKE_DIR / "needle_cuda_emulated.py")
    emulation = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(emulation)
    reason = emulation.emulator_unavailable_reason()
    if reason:
        pytest.skip(reason)
    with emulation.fake_pycuda() as pycuda:
        import pycuda.compiler
        import pycuda.driver

        yield pycuda.driver, pycuda.compiler


SOURCE = r"""
extern "C" __global__ void divergent_barrier(float* out) {
    if (threadIdx.x < 16) __syncthreads();
    out[threadIdx.x] = 1.0f;
}
extern "C" __global__ void partial_warp_shuffle(float* out) {
    float v = threadIdx.x;
    if (threadIdx.x < 16) v = __shfl_down_sync(0xffffffffu, v, 1);
    out[threadIdx.x] = v;
}
extern "C" __global__ void write_past_end(float* out, long long n) {
    out[n] = 1.0f;
}
extern "C" __global__ void read_at(const float* a, float* out, long long i) {
    out[0] = a[i];
}
extern "C" __global__ void load_float4(const float* a, float* out, int first) {
    const float4 v = reinterpret_cast<const float4*>(a + first)[0];
    out[0] = v.x + v.y + v.z + v.w;
}
extern "C" __global__ void shared_index(float* out, int i) {
    __shared__ float s[32];
    s[threadIdx.x] = 1.0f;
    __syncthreads();
    out[threadIdx.x] = s[i];
}
extern "C" __global__ void scaled_index(float* out, int row, int cols) {
    const int at = row * cols;  // wraps on a GPU once row * cols >= 2^31
    if (threadIdx.x == 0) out[0] = (float)at;
}
extern "C" __global__ void read_before_barrier(const float* a, float* out) {
    __shared__ float s[64];
    s[threadIdx.x] = a[threadIdx.x];
    out[threadIdx.x] = s[63 - threadIdx.x];  // needs a __syncthreads() before it
}
extern "C" __global__ void overwrite_while_read(const float* a, float* out) {
    __shared__ float s[64];
    s[threadIdx.x] = a[threadIdx.x];
    __syncthreads();
    const float v = s[(threadIdx.x + 1) % 64];
    s[threadIdx.x] = 2.0f * v;  // a neighbour may not have read the old value yet
    __syncthreads();
    out[threadIdx.x] = s[threadIdx.x];
}
template <int N>
__device__ float rotate_in_template(float v) {
    __shared__ float s[N];
    s[threadIdx.x] = v;
    return s[(threadIdx.x + 1) % N];  // needs a __syncthreads() before it
}
extern "C" __global__ void race_in_template(const float* a, float* out) {
    out[threadIdx.x] = rotate_in_template<64>(a[threadIdx.x]);
}
extern "C" __global__ void block_sum(const float* a, float* out) {
    __shared__ float s[64];
    s[threadIdx.x] = a[blockIdx.x * 64 + threadIdx.x];
    __syncthreads();
    for (int half = 32; half > 0; half >>= 1) {
        if ((int)threadIdx.x < half) s[threadIdx.x] += s[threadIdx.x + half];
        __syncthreads();
    }
    float v = __shfl_xor_sync(0xffffffffu, s[0], 1);
    if (threadIdx.x == 0) out[blockIdx.x] = v;
}
"""


@pytest.fixture(scope="module")
def module(fake):
    return fake[1].SourceModule(SOURCE, no_extern_c=True)


def _buffer(drv, n):
    return drv.mem_alloc(4 * n)


def test_a_correct_kernel_runs(fake, module):
    drv, _ = fake
    a = np.arange(3 * 64, dtype=np.float32)
    buf_a, buf_out = _buffer(drv, a.size), _buffer(drv, 3)
    drv.memcpy_htod(int(buf_a), a)
    module.get_function("block_sum").prepare("PP").prepared_call((3, 1, 1), (64, 1, 1), int(buf_a), int(buf_out))
    out = np.empty(3, np.float32)
    drv.memcpy_dtoh(out, int(buf_out))
    np.testing.assert_array_equal(out, a.reshape(3, 64).sum(axis=1))


def test_divergent_barrier_is_reported(fake, module):
    drv, _ = fake
    fn = module.get_function("divergent_barrier").prepare("P")
    with pytest.raises(drv.LogicError, match="__syncthreads|deadlock"):
        fn.prepared_call((1, 1, 1), (32, 1, 1), int(_buffer(drv, 32)))


def test_partial_warp_shuffle_is_reported(fake, module):
    drv, _ = fake
    fn = module.get_function("partial_warp_shuffle").prepare("P")
    with pytest.raises(drv.LogicError, match="shuffle|deadlock"):
        fn.prepared_call((1, 1, 1), (32, 1, 1), int(_buffer(drv, 32)))


def test_out_of_bounds_write_is_reported(fake, module):
    drv, _ = fake
    fn = module.get_function("write_past_end").prepare("Pq")
    buf = _buffer(drv, 8)
    with pytest.raises(drv.LogicError, match="out-of-bounds"):
        fn.prepared_call((1, 1, 1), (1, 1, 1), int(buf), 8)
    del buf  # the corrupted allocation must not fail later checks


@pytest.mark.parametrize("index,where", [(8, "0 bytes past the end"), (-1, "4 bytes before")])
def test_out_of_bounds_read_is_reported(fake, module, index, where):
    drv, _ = fake
    a, out = _buffer(drv, 8), _buffer(drv, 1)
    fn = module.get_function("read_at").prepare("PPq")
    fn.prepared_call((1, 1, 1), (1, 1, 1), int(a), int(out), 7)  # the last element: fine
    with pytest.raises(drv.LogicError, match=f"out-of-bounds read of 4 bytes at {where} .* allocation of 32 bytes"):
        fn.prepared_call((1, 1, 1), (1, 1, 1), int(a), int(out), index)


def test_argument_buffer_must_match_parameters(fake, module):
    drv, _ = fake
    fn = module.get_function("write_past_end").prepare("Pi")  # the kernel takes (float*, long long)
    with pytest.raises(drv.LogicError, match="argument buffer has 12 bytes"):
        fn.prepared_call((1, 1, 1), (1, 1, 1), int(_buffer(drv, 8)), 0)
    assert struct.calcsize("@Pq") == 16


def _run(drv, module, name, fmt, *args, block=(32, 1, 1)):
    out = _buffer(drv, 32)
    module.get_function(name).prepare(fmt).prepared_call((1, 1, 1), block, int(out), *args)
    result = np.empty(32, np.float32)
    drv.memcpy_dtoh(result, int(out))
    return result


def test_misaligned_float4_access_is_reported(fake, module):
    drv, _ = fake
    a = _buffer(drv, 16)
    drv.memcpy_htod(int(a), np.arange(16, dtype=np.float32))
    fn = module.get_function("load_float4").prepare("PPi")
    out = _buffer(drv, 1)
    fn.prepared_call((1, 1, 1), (1, 1, 1), int(a), int(out), 4)  # 16-byte aligned: fine
    got = np.empty(1, np.float32)
    drv.memcpy_dtoh(got, int(out))
    assert got[0] == 4 + 5 + 6 + 7
    with pytest.raises(drv.LogicError, match=r"not aligned to 16 bytes.*line \d+: const float4 v"):
        fn.prepared_call((1, 1, 1), (1, 1, 1), int(a), int(out), 1)


def test_shared_array_index_out_of_bounds_is_reported(fake, module):
    drv, _ = fake
    assert (_run(drv, module, "shared_index", "Pi", 31) == 1.0).all()
    with pytest.raises(drv.LogicError, match="array index out of bounds"):
        _run(drv, module, "shared_index", "Pi", 32)


def test_wrapped_32_bit_index_math_is_reported(fake, module):
    drv, _ = fake
    assert _run(drv, module, "scaled_index", "Pii", 1 << 15, 1 << 15)[0] == float(1 << 30)
    with pytest.raises(drv.LogicError, match=r"signed integer overflow in \*"):
        _run(drv, module, "scaled_index", "Pii", 1 << 16, 1 << 15)


@pytest.mark.parametrize("kernel", ["read_before_barrier", "overwrite_while_read", "race_in_template"])
def test_shared_memory_race_is_reported_whatever_the_order(fake, module, kernel):
    drv, _ = fake
    a = _buffer(drv, 64)
    drv.memcpy_htod(int(a), np.arange(64, dtype=np.float32))
    fn = module.get_function(kernel).prepare("PP")
    with pytest.raises(drv.LogicError, match=r"shared-memory race \((read|write) after (read|write)\): threads"):
        fn.prepared_call((1, 1, 1), (64, 1, 1), int(a), int(_buffer(drv, 64)))


BAD_SHAPES = [((0, 1, 1), (32, 1, 1)), ((1, 70000, 1), (32, 1, 1)), ((1, 1, 1), (2048, 1, 1))]


@pytest.mark.parametrize("grid,block", BAD_SHAPES)
def test_invalid_launch_shapes_are_reported(fake, module, grid, block):
    drv, _ = fake
    fn = module.get_function("block_sum").prepare("PP")
    with pytest.raises(drv.LogicError, match="invalid"):
        fn.prepared_call(grid, block, int(_buffer(drv, 64)), int(_buffer(drv, 1)))


def test_two_gpus_switch_contexts_and_a_missing_index_is_clear(monkeypatch):
    spec = importlib.util.spec_from_file_location("needle_cuda_emulated", FAKE_DIR / "needle_cuda_emulated.py")
    emulation = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(emulation)
    if emulation.emulator_unavailable_reason():
        pytest.skip(emulation.emulator_unavailable_reason())
    monkeypatch.setenv("FAKECUDA_DEVICES", "2")
    ns0, ns1 = emulation.make_namespace(0), emulation.make_namespace(1)
    rt0, rt1 = ns0["Array"].runtime, ns1["Array"].runtime
    x = np.arange(10, dtype=np.float32)
    a0, a1 = ns0["Array"](10), ns1["Array"](10)
    for _ in range(2):  # alternate devices: exactly one context is current at a time
        ns0["from_numpy"](x, a0)
        ns0["scalar_add"](a0, 1.0, a0)
        assert (rt0.context.pushes, rt1.context.pushes) == (1, 0)
        ns1["from_numpy"](ns0["to_numpy"](a0, (10,), (1,), 0), a1)  # cuda:0 -> cuda:1 through the host
        ns1["scalar_mul"](a1, 2.0, a1)
        assert (rt0.context.pushes, rt1.context.pushes) == (0, 1)
    np.testing.assert_array_equal(ns1["to_numpy"](a1, (10,), (1,), 0), (x + 1) * 2)
    with pytest.raises(ValueError, match=r"cuda:2 does not exist: the driver reports 2 CUDA GPU\(s\)"):
        emulation.make_namespace(2)


def test_transfers_through_the_registry_both_ways():
    """``to(device)`` between the emulated cuda device and every other usable one,
    cuda_emulated:0 <-> :1 among them, and a clear error for an index past the last."""
    from registry_support import clean_env, run_python

    env = clean_env(NEEDLE_PLUGINS="needle_cuda_emulated", FAKECUDA_DEVICES="2")
    env["PYTHONPATH"] = os.pathsep.join((str(FAKE_DIR), env["PYTHONPATH"]))
    proc = run_python(
        """
        import numpy as np, needle as ndl
        from needle import backend_ndarray as nd

        def usable(name):
            try:
                return ndl.device(name).enabled()
            except Exception:
                return False

        emu = ndl.device("cuda_emulated")
        x = np.random.default_rng(1).standard_normal((17, 33)).astype(np.float32)
        peers = [n for n in ("cpu_numpy", "cpu", "opencl", "cuda_emulated:1") if usable(n)]
        for name in peers:
            peer = ndl.device(name)
            on_emu = nd.array(x, device=peer).to(emu)
            assert on_emu.device == emu
            np.testing.assert_array_equal(on_emu.numpy(), x)
            back = (on_emu.permute((1, 0)) + 1.0).to(peer)  # a strided view travels compacted
            assert back.device == peer
            np.testing.assert_allclose(back.numpy(), x.T + 1.0, rtol=1e-6)
        try:
            ndl.device("cuda_emulated:2")
        except Exception as exc:
            print("missing:", exc)
        print("peers:", ",".join(peers))
        """,
        env,
    )
    peers = proc.stdout.split("peers:")[1].strip().split(",")
    assert "cpu_numpy" in peers and "cuda_emulated:1" in peers, proc.stdout
    assert "cuda_emulated:2 does not exist" in proc.stdout, proc.stdout
