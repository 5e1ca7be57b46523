"""The backend ABI as data: kernel names, and the elementwise/scalar family table.

Every backend renders the elementwise family from ``ELEMENTWISE`` (NumPy maps the
``numpy`` column to ufuncs; OpenCL/CUDA render ``expr`` into kernel source; the C++
backend compiles a committed header generated from it). Adding an elementwise op is
one row here. See ``docs/backends.md`` for the exact semantics of every name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: Version of the registry/kernel ABI this core implements. A backend declares the
#: version it was built for; a plain module with no declaration counts as 1.
API_VERSION = 1


@dataclass(frozen=True)
class ElementwiseKernel:
    """One row of the elementwise family.

    ``expr`` is a C-family expression over ``a`` (first operand) and ``b`` (second
    array for ``ewise_*`` binaries, the scalar for ``scalar_*``), using overloaded
    math names (``exp``, ``log``, ``tanh``, ``pow``, ``fmax``, ``sqrt``) that each
    backend's prelude maps for its element type. ``numpy`` is the reference, called
    as ``numpy(a, out=out)`` or ``numpy(a, b, out=out)`` (comparisons write 0/1).
    """

    name: str
    arity: int  # 1: out = f(a); 2: out = f(a, b)
    expr: str
    numpy: Callable[..., np.ndarray]
    required: bool

    @property
    def is_scalar(self) -> bool:
        return self.name.startswith("scalar_")


def _sigmoid(a, out=None):
    out = np.negative(a, out=out)
    np.exp(out, out=out)
    np.add(out, 1, out=out)
    return np.reciprocal(out, out=out)


def _pow(a, b, out=None):
    """C's ``pow`` (IEEE 754): NumPy computes ``x ** 0.5`` as ``sqrt(x)`` when the
    exponent is one scalar (or a stride-0 view of one), which gives ``(-0) ** 0.5 =
    -0`` and ``(-inf) ** 0.5 = nan`` where ``pow`` gives ``+0`` and ``+inf`` (as NumPy
    itself does for an exponent array). Only those two inputs are patched."""
    out = np.power(a, b, out=out)
    if np.ndim(b) == 0:
        if b == 0.5:
            np.add(out, 0.0, out=out)  # -0 + 0 = +0; every other value unchanged
            np.copyto(out, np.inf, where=np.equal(a, -np.inf))
    elif 0 in np.shape(b) or 0 in b.strides:  # a broadcast exponent: NumPy may take the shortcut
        half = np.equal(b, 0.5)
        np.copyto(out, np.inf, where=half & np.equal(a, -np.inf))
        np.copyto(out, 0.0, where=half & np.equal(out, 0.0))
    return out


def _relu(a, out=None):
    return np.fmax(a, 0, out=out)  # fmax, as the expr: relu(NaN) = 0


K = ElementwiseKernel
ELEMENTWISE: tuple[ElementwiseKernel, ...] = (
    # required primitives (the course's backend interface)
    K("ewise_add", 2, "a + b", np.add, True),
    K("scalar_add", 2, "a + b", np.add, True),
    K("ewise_mul", 2, "a * b", np.multiply, True),
    K("scalar_mul", 2, "a * b", np.multiply, True),
    K("ewise_div", 2, "a / b", np.divide, True),
    K("scalar_div", 2, "a / b", np.divide, True),
    K("ewise_maximum", 2, "fmax(a, b)", np.fmax, True),
    K("scalar_maximum", 2, "fmax(a, b)", np.fmax, True),
    K("ewise_eq", 2, "(a == b) ? 1.0f : 0.0f", np.equal, True),
    K("scalar_eq", 2, "(a == b) ? 1.0f : 0.0f", np.equal, True),
    K("ewise_ge", 2, "(a >= b) ? 1.0f : 0.0f", np.greater_equal, True),
    K("scalar_ge", 2, "(a >= b) ? 1.0f : 0.0f", np.greater_equal, True),
    K("scalar_power", 2, "pow(a, b)", _pow, True),
    K("ewise_log", 1, "log(a)", np.log, True),
    K("ewise_exp", 1, "exp(a)", np.exp, True),
    K("ewise_tanh", 1, "tanh(a)", np.tanh, True),
    # optional rows: ops fall back to compositions of the primitives above
    K("ewise_power", 2, "pow(a, b)", _pow, False),
    K("ewise_neg", 1, "-a", np.negative, False),
    K("ewise_sqrt", 1, "sqrt(a)", np.sqrt, False),
    K("ewise_sigmoid", 1, "1.0f / (1.0f + exp(-a))", _sigmoid, False),
    K("ewise_relu", 1, "fmax(a, 0.0f)", _relu, False),
)
del K

ELEMENTWISE_BY_NAME: dict[str, ElementwiseKernel] = {k.name: k for k in ELEMENTWISE}

#: Primitive kernels every backend must provide (course names).
PRIMITIVE_KERNELS: tuple[str, ...] = (
    "Array",
    "to_numpy",
    "from_numpy",
    "fill",
    "compact",
    "ewise_setitem",
    "scalar_setitem",
    *(k.name for k in ELEMENTWISE if k.required),
    "matmul",
    "reduce_sum",
    "reduce_max",
)

#: Optional kernels: looked up on the device (``None`` when absent); core falls back
#: to a composition of primitives. Signatures in docs/backends.md.
OPTIONAL_KERNELS: tuple[str, ...] = (
    *(k.name for k in ELEMENTWISE if not k.required),
    "ewise_strided",
    "batched_matmul",
    "matmul_t",
    "reduce_sum_view",
    "reduce_max_view",
    "logsumexp",
    "conv2d_nhwc",
    "lstm_cell",
    "lstm_cell_backward",
    "take_rows",
    "scatter_add_rows",
    "softmax_cross_entropy",
    "softmax_cross_entropy_backward",
    "sgd_update",
    "adam_update",
    "matmul_tiled",
)

#: Optional hooks for tools (profiler, DLPack), not kernels: absent means "not
#: supported" (no fallback, no conformance comparison). Semantics in docs/backends.md §8.
TOOL_HOOKS: tuple[str, ...] = ("synchronize", "host_array", "from_host_array", "dlpack_device")

#: Attributes a backend may export onto its device object besides kernels.
DEVICE_ATTRIBUTES: tuple[str, ...] = ("__tile_size__", *TOOL_HOOKS)

ALL_KERNELS: tuple[str, ...] = PRIMITIVE_KERNELS + OPTIONAL_KERNELS
