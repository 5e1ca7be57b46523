"""CI's CUDA check: every kernel source compiles with ``nvcc -ptx`` for sm_80 and
sm_90, without double-precision math. Skipped (with the reason) where nvcc is
absent; needs no GPU and no pycuda.
"""

from __future__ import annotations

import pytest

pytest.importorskip("needle_backend_cuda", reason="needle-backend-cuda is not installed")

from needle_backend_cuda.probe import find_nvcc  # noqa: E402

from needle_backend_cuda import compile_check, render  # noqa: E402

NVCC = find_nvcc()
pytestmark = [
    pytest.mark.absent_device,
    pytest.mark.skipif(NVCC is None, reason="nvcc not found (PATH, $CUDA_HOME/bin, /usr/local/cuda/bin)"),
]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("cuda-ptx")
    return {(r.module, r.arch): r for r in compile_check.compile_all(out, compile_check.DEFAULT_ARCHS, NVCC)}


@pytest.mark.parametrize("arch", compile_check.DEFAULT_ARCHS)
@pytest.mark.parametrize("module", sorted(render.MODULES))
def test_module_compiles(results, module, arch):
    result = results[(module, arch)]
    assert result.ok, result.message
    ptx = result.ptx.read_text()
    for kernel in render.kernel_names(render.module_source(module)):
        assert f".entry {kernel}(" in ptx


def test_a_syntax_error_fails(tmp_path):
    cu = tmp_path / "broken.cu"
    cu.write_text('extern "C" __global__ void k(float* o) { o[0] = 1.0f }\n')
    result = compile_check.compile_module(NVCC, cu, "sm_80")
    assert not result.ok and "error" in result.message


def test_double_precision_is_rejected(tmp_path):
    cu = tmp_path / "double.cu"
    cu.write_text('extern "C" __global__ void k(float* o) { o[0] = o[0] * 0.1; }\n')
    result = compile_check.compile_module(NVCC, cu, "sm_80")
    assert not result.ok and "double precision" in result.message


def test_main_exit_status(tmp_path, capsys):
    assert compile_check.main(["--arch", "sm_80", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"{len(render.MODULES)} passed, 0 failed" in out
    assert sorted(p.name for p in tmp_path.glob("*.cu")) == sorted(f"{m}.cu" for m in render.MODULES)


# Every needle kernel launches 256-thread blocks (runtime.THREADS, 16x16 for
# sgemm_tiled16): a block fits an SM's 64K registers whenever a thread uses <= 255,
# and static shared memory must stay within 48 KiB. Spills mean local-memory traffic
# in a hot loop: none is expected, so a change that adds some shows up here.
@pytest.mark.parametrize("module", sorted(render.MODULES))
def test_kernels_fit_an_sm_without_spills(tmp_path, module):
    from needle_backend_cuda import runtime

    cu = compile_check.write_sources(tmp_path)[module]
    used = compile_check.resources(NVCC, cu, "sm_90")
    assert sorted(k.kernel for k in used) == sorted(render.kernel_names(cu.read_text()))
    for k in used:
        assert k.registers * runtime.THREADS <= 65536, k
        assert k.shared_bytes <= 48 * 1024, k
        assert k.spill_bytes == 0, k
