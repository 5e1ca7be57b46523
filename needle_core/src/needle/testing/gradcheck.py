"""Gradient checks for the conformance suite.

The reference is always a central difference computed in float64 on ``cpu_numpy``
(the oracle) from needle's own forward pass. The device under test computes the
analytic gradient by backpropagation: in float64 where it holds float64 (tight
tolerances, the course's 1e-6-style checks), else in float32 (looser tolerances).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import needle as ndl

Fn = Callable[..., "ndl.Tensor"]


def work_dtype(device: Any) -> str:
    return "float64" if "float64" in device.dtypes else "float32"


def numerical_gradients(fn: Fn, arrays: Sequence[np.ndarray], weights: np.ndarray, eps: float = 1e-6) -> list:
    """d/dx_k sum(fn(*x) * weights) by central differences, float64 on cpu_numpy."""
    oracle = ndl.cpu_numpy()
    xs = [np.array(a, dtype=np.float64) for a in arrays]

    def loss() -> float:
        tensors = [ndl.Tensor(x, device=oracle, dtype="float64") for x in xs]
        return float((fn(*tensors).numpy().astype(np.float64) * weights).sum())

    grads = []
    for x in xs:
        grad = np.zeros_like(x)
        flat, gflat = x.reshape(-1), grad.reshape(-1)
        for j in range(flat.size):
            keep = flat[j]
            flat[j] = keep + eps
            up = loss()
            flat[j] = keep - eps
            down = loss()
            flat[j] = keep
            gflat[j] = (up - down) / (2 * eps)
        grads.append(grad)
    return grads


def analytic_gradients(fn: Fn, arrays: Sequence[np.ndarray], weights: np.ndarray, device: Any) -> list:
    dtype = work_dtype(device)
    tensors = [ndl.Tensor(np.asarray(a, dtype=dtype), device=device, dtype=dtype) for a in arrays]
    out = fn(*tensors)
    out.backward(ndl.Tensor(weights.astype(dtype), device=device, dtype=dtype))
    for t in tensors:
        assert t.grad is not None, "backward left an input without .grad"
        assert t.grad.shape == t.shape, f"gradient shape {t.grad.shape} != input shape {t.shape}"
    return [t.grad.numpy() for t in tensors]


def check_gradients(
    fn: Fn, *arrays: np.ndarray, device: Any, seed: int = 0, rtol: float | None = None, atol: float | None = None
) -> None:
    """Assert backprop through ``fn`` on ``device`` matches float64 central differences."""
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    probe = fn(*[ndl.Tensor(a, device=ndl.cpu_numpy(), dtype="float64") for a in arrays])
    weights = np.random.default_rng(seed).standard_normal(probe.shape)
    reference = numerical_gradients(fn, arrays, weights)
    got = analytic_gradients(fn, arrays, weights, device)
    precise = work_dtype(device) == "float64"
    rtol = rtol if rtol is not None else (1e-5 if precise else 2e-3)
    for k, (g, r) in enumerate(zip(got, reference, strict=False)):
        scale = max(1.0, float(np.abs(r).max(initial=0.0)))
        tol = atol if atol is not None else (1e-6 if precise else 2e-3) * scale
        np.testing.assert_allclose(g, r, rtol=rtol, atol=tol, err_msg=f"gradient of input {k}")
