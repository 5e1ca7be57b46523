"""Fixtures of the opencl backend's own tests: its kernel table, built once per session.

The tests call the kernels directly (no needle-core NDArray), comparing with NumPy.
Without an OpenCL driver they skip with the probe's reason, unless
NEEDLE_REQUIRE_DEVICES names opencl (as CI does): then they fail.
"""

from __future__ import annotations

import os

import numpy as np
import pytest


def _required() -> bool:
    return "opencl" in [d.strip() for d in os.environ.get("NEEDLE_REQUIRE_DEVICES", "").split(",")]


@pytest.fixture(scope="session")
def runtime_and_kernels():
    from needle_backend_opencl import plugin, probe, runtime

    result = probe.probe()
    if not result.ok:
        (pytest.fail if _required() else pytest.skip)(f"opencl cannot run here: {result.reason}. {result.hint}")
    kernels = plugin.factory(0)
    return runtime.OPENED[0], kernels


@pytest.fixture(scope="session")
def kernels(runtime_and_kernels):
    return runtime_and_kernels[1]


@pytest.fixture(scope="session")
def runtime(runtime_and_kernels):
    return runtime_and_kernels[0]


class Host:
    """Moves NumPy arrays in and out of device buffers through the ABI kernels."""

    def __init__(self, kernels):
        self.k = kernels

    def put(self, array) -> object:
        array = np.ascontiguousarray(array, dtype=np.float32)
        buf = self.k["Array"](array.size)
        self.k["from_numpy"](array, buf)
        return buf

    def empty(self, size: int) -> object:
        return self.k["Array"](size)

    def get(self, buf, shape) -> np.ndarray:
        shape = tuple(shape)
        strides = tuple(int(np.prod(shape[i + 1 :])) for i in range(len(shape)))
        return self.k["to_numpy"](buf, shape, strides, 0)


@pytest.fixture(scope="session")
def host(kernels) -> Host:
    return Host(kernels)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
