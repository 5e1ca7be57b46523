"""The CUDA runtime for one GPU: context, memory pool, compiled modules, launches.

Everything that touches pycuda lives here (and only runs when a ``cuda`` device
is built). Modules are compiled by pycuda's ``SourceModule`` at the first launch
of one of their kernels (pycuda caches the cubin on disk, keyed by source and
options); buffers come from a ``DeviceMemoryPool``, so steady-state training does
not call cudaMalloc.
"""

from __future__ import annotations

import atexit
import importlib
from collections.abc import Callable
from typing import Any

from needle_core.kernels import REDUCTIONS

from .probe import find_nvcc
from .render import module_source

THREADS = 256  # threads per block of the 1-D kernels (NDL_THREADS in prelude.cuh)
BLOCKS_PER_SM = 32  # grid-stride kernels launch at most this many blocks per SM

#: kernel -> (module, pycuda ``prepare`` format: P pointer, q int64, i int32, f float32)
SIGNATURES: dict[str, tuple[str, str]] = {
    "fill": ("elementwise", "Pqf"),
    **{f"{k}_i{w}": ("layout", "PP" + "q" * 16 + "qqi") for k in ("compact", "ewise_setitem") for w in (32, 64)},
    **{f"scalar_setitem_i{w}": ("layout", "P" + "q" * 16 + "qqif") for w in (32, 64)},
    **{f"{r.name}_{s}": ("reduce", "PPqq") for r in REDUCTIONS for s in ("thread", "warp", "block")},
    **{f"{r.view_name}_i{w}": ("reduce", "PP" + "q" * 32 + "qqqii") for r in REDUCTIONS for w in (32, 64)},
    "logsumexp_warp": ("reduce", "PPqq"),
    "logsumexp_block": ("reduce", "PPqq"),
    "sgemm_tiled16": ("matmul", "PPPqqqiii"),
    "sgemm_128x128": ("matmul", "PPPqqqiii"),
    "im2col_nhwc": ("matmul", "PPq" + "i" * 7),
    "sgd_update": ("optim", "PPPqfff"),
    "adam_update": ("optim", "PPPPq" + "f" * 7),
}


def elementwise_signature(arity: int, is_scalar: bool) -> str:
    """``prepare`` format of a rendered elementwise kernel (see render.py)."""
    if arity == 1:
        return "PPq"
    return "PPqf" if is_scalar else "PPPq"


def import_pycuda() -> tuple[Any, Any, Any]:
    """(pycuda.driver, pycuda.compiler, pycuda.tools), imported now, not before."""
    return (
        importlib.import_module("pycuda.driver"),
        importlib.import_module("pycuda.compiler"),
        importlib.import_module("pycuda.tools"),
    )


_current: list[Any] = [None]  # the runtime whose context is current on this thread


class CudaRuntime:
    """One GPU: its primary context, memory pool and compiled kernels."""

    def __init__(self, index: int) -> None:
        drv, compiler, tools = import_pycuda()
        drv.init()
        count = drv.Device.count()
        if not 0 <= index < count:
            raise ValueError(
                f"cuda:{index} does not exist: the driver reports {count} CUDA GPU(s)"
                + (f" (cuda:0 to cuda:{count - 1})" if count > 1 else " (cuda:0 only)" if count else "")
                + ". Ask for an index below the GPU count, or set CUDA_VISIBLE_DEVICES."
            )
        self.index = index
        self.drv = drv
        self._compiler = compiler
        self.device = drv.Device(index)
        self.name = self.device.name()
        self.context = self.device.retain_primary_context()
        self._activate()
        self.pool = tools.DeviceMemoryPool()
        self.sm_count = int(self.device.get_attribute(drv.device_attribute.MULTIPROCESSOR_COUNT))
        self.max_blocks = self.sm_count * BLOCKS_PER_SM
        self.nvcc = find_nvcc() or "nvcc"
        self._modules: dict[str, Any] = {}
        self._functions: dict[str, Any] = {}
        atexit.register(self._release)

    # -- context ----------------------------------------------------------------
    def _activate(self) -> None:
        previous = _current[0]
        if previous is not None:
            previous.context.pop()
        self.context.push()
        _current[0] = self

    def ensure_current(self) -> None:
        """Make this GPU's context current (a no-op unless two GPUs are in use)."""
        if _current[0] is not self:
            self._activate()

    def _release(self) -> None:
        if _current[0] is self:
            self.context.synchronize()
            self.context.pop()
            _current[0] = None

    # -- memory -------------------------------------------------------------------
    def allocate(self, nbytes: int) -> Any:
        self.ensure_current()
        return self.pool.allocate(max(nbytes, 4))  # a zero-size buffer still needs a stable address

    def htod(self, dst_ptr: int, host) -> None:
        self.ensure_current()
        self.drv.memcpy_htod(dst_ptr, host)

    def dtoh(self, host, src_ptr: int) -> None:
        self.ensure_current()
        self.drv.memcpy_dtoh(host, src_ptr)

    def dtod(self, dst_ptr: int, src_ptr: int, nbytes: int) -> None:
        self.ensure_current()
        self.drv.memcpy_dtod(dst_ptr, src_ptr, nbytes)

    def synchronize(self) -> None:
        self.ensure_current()
        self.context.synchronize()

    # -- kernels ------------------------------------------------------------------
    def _module(self, name: str) -> Any:
        module = self._modules.get(name)
        if module is None:
            # No fast-math; pycuda picks -arch from the device's compute capability.
            module = self._compiler.SourceModule(module_source(name), nvcc=self.nvcc, no_extern_c=True)
            self._modules[name] = module
        return module

    def function(self, kernel: str, module: str, fmt: str) -> Any:
        """The prepared kernel, compiling its module on first use."""
        fn = self._functions.get(kernel)
        if fn is None:
            self.ensure_current()
            fn = self._module(module).get_function(kernel)
            fn.prepare(fmt)
            self._functions[kernel] = fn
        return fn

    def launcher(self, kernel: str, module: str | None = None, fmt: str | None = None) -> Callable[..., None]:
        """``launch(grid, block, *args)`` for one kernel; resolves it at the first call."""
        if module is None or fmt is None:
            module, fmt = SIGNATURES[kernel]
        rt = self

        def launch(grid: tuple[int, int, int], block: tuple[int, int, int], *args: Any) -> None:
            if _current[0] is not rt:
                rt._activate()
            rt.function(kernel, module, fmt).prepared_call(grid, block, *args)

        return launch

    def grid_1d(self, work_items: int) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        """(grid, block) of a grid-stride kernel over ``work_items`` thread-iterations."""
        blocks = min(max((work_items + THREADS - 1) // THREADS, 1), self.max_blocks)
        return (blocks, 1, 1), (THREADS, 1, 1)
