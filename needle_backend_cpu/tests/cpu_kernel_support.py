"""What the cpu backend's own tests share: float32 copies between NumPy and the C++
extension's buffers, and counting the kernel calls a needle computation makes.

``K`` is the extension module device ``cpu`` loads. The buffer copies go through
``needle.testing._reference`` (the conformance suite's own
helpers) with the extension module standing in for a device: it has the kernel ABI's
``Array`` / ``from_numpy`` / ``to_numpy``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from needle.testing._reference import read, to_device



def _kernel_module() -> Any:
    """The compiled module device ``cpu`` uses here: ``NEEDLE_CPU_ISA=avx2`` runs these
    tests against the AVX2 variant (``test_isa.py`` does, for each variant built)."""
    try:
        from needle_backend_cpu import runtime

        return runtime.load_kernels()
    except ImportError as e:
        pytest.skip(f"the C++ extension is not built ({e})", allow_module_level=True)


K = _kernel_module()


def dev(x: np.ndarray) -> Any:
    """A new extension buffer holding ``x`` as compact float32."""
    return to_device(K, np.asarray(x, dtype=np.float32).reshape(-1))


def host(buf: Any, shape: tuple[int, ...]) -> np.ndarray:
    """A compact extension buffer read back as a NumPy array of ``shape``."""
    return read(K, buf, tuple(shape))


@contextlib.contextmanager
def counting_calls(device: Any, *names: str) -> Iterator[dict[str, int]]:
    """Count the calls of the kernels ``names`` of a needle ``device`` while the block runs
    (the device's kernel table is plain instance attributes; the originals come back after)."""
    calls = dict.fromkeys(names, 0)
    saved = {name: device.__dict__[name] for name in names}

    def counting(name: str) -> Any:
        def kernel(*args: Any) -> Any:
            calls[name] += 1
            return saved[name](*args)

        return kernel

    try:
        for name in names:
            device.__dict__[name] = counting(name)
        yield calls
    finally:
        device.__dict__.update(saved)
