"""The elementwise family of ``needle_core.kernels.ELEMENTWISE`` bound to NumPy ufuncs.

Each row names its NumPy reference (``row.numpy``); this module wraps it in the
kernel signature of the row's kind (unary ``(a, out)``, scalar ``(a, val, out)``,
binary ``(a, b, out)``) writing straight into the output buffer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from needle_core.kernels import ELEMENTWISE, ElementwiseKernel

from .runtime import quiet

# Rows whose ufunc never raises a floating-point flag (fmax, comparisons, tanh and
# negation, max-reduction: NaN in gives NaN out quietly) run bare. Every other row (add, mul, div,
# pow, log, exp, sqrt, sigmoid, and any row added later) can give NaN/inf, which NumPy
# warns about where C is silent, so it runs with NumPy's warnings muted (runtime.py,
# ~0.15 us per call). add/mul are muted too: float32 overflow (3e38 * 10) and inf - inf
# happen in diverging training runs, and a -W error run must then behave as on the
# compiled backends rather than raise on cpu_numpy only.
NEVER_WARNS = frozenset(
    {"ewise_maximum", "scalar_maximum", "ewise_eq", "scalar_eq", "ewise_ge", "scalar_ge", "ewise_tanh",
     "ewise_neg", "ewise_relu", "reduce_max"}
)  # fmt: skip


def render(row: ElementwiseKernel) -> Callable[..., None]:
    """The kernel of one table row over buffers holding a 1-D NumPy ``array``."""
    ref = row.numpy
    if row.kind == "unary":

        def unary(a: Any, out: Any) -> None:
            ref(a.array, out=out.array)

        kernel = unary
    elif row.kind == "scalar":

        def scalar(a: Any, val: float, out: Any) -> None:
            ref(a.array, val, out=out.array)

        kernel = scalar
    else:

        def binary(a: Any, b: Any, out: Any) -> None:
            ref(a.array, b.array, out=out.array)

        kernel = binary
    if row.name not in NEVER_WARNS:
        kernel = quiet(kernel)
    kernel.__name__ = kernel.__qualname__ = row.name
    kernel.__doc__ = f"out[i] = {row.expr}"
    return kernel


def elementwise_kernels(rows: tuple[ElementwiseKernel, ...] = ELEMENTWISE) -> dict[str, Callable[..., None]]:
    """``{row name: kernel}`` for every row of the table."""
    return {row.name: render(row) for row in rows}


def strided_ufuncs(rows: tuple[ElementwiseKernel, ...] = ELEMENTWISE) -> dict[str, Callable[..., Any]]:
    """``{row name: ufunc}`` of the binary array rows ``ewise_strided`` accepts."""
    return {row.name: row.numpy for row in rows if row.kind == "binary"}
