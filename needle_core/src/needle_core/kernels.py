"""The backend ABI as data: every kernel a backend provides, as rows.

``KERNEL_SPECS`` declares every primitive and optional kernel (name, parameters,
one-line semantics, required or optional, special values). Two families carry more:
``ELEMENTWISE`` (an explicit ``kind`` and a C expression each backend renders: NumPy
maps the ``numpy`` column to ufuncs, OpenCL/CUDA render ``expr`` into kernel source,
the C++ backend compiles a committed header generated from it) and ``REDUCTIONS``
(identity and combine expression). Adding an elementwise op is one row here plus
one row in ``needle_core/ops/mathematic.py`` (docs/backends.md, "Adding an
elementwise op"). docs/backends.md documents every name; a test checks the page
against these rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

#: Version of the registry/kernel ABI this core implements. A backend declares the
#: version it was built for; a plain module with no declaration counts as 1.
API_VERSION = 1

#: The three shapes of an elementwise kernel (what a renderer dispatches on).
ELEMENTWISE_KINDS: dict[str, tuple[str, ...]] = {
    "unary": ("a", "out"),  # out[i] = f(a[i])
    "binary": ("a", "b", "out"),  # out[i] = f(a[i], b[i])
    "scalar": ("a", "val", "out"),  # out[i] = f(a[i], val)
}


@dataclass(frozen=True)
class Special:
    """One special-value case of a kernel's semantics: ``args`` give ``expected``
    (IEEE 754, as C99). For an elementwise row ``args`` are its operands; for a
    reduction (and ``logsumexp``) ``args`` is one block of values."""

    args: tuple
    expected: float


@dataclass(frozen=True)
class KernelSpec:
    """One kernel of the ABI: its call signature and what it computes."""

    name: str
    params: tuple[str, ...]
    semantics: str
    required: bool
    special: tuple[Special, ...] = ()

    @property
    def signature(self) -> str:
        return f"{self.name}({', '.join(self.params)})"


@dataclass(frozen=True)
class ElementwiseKernel:
    """One row of the elementwise family.

    ``kind`` is ``"unary"`` (``out = f(a)``), ``"binary"`` (``out = f(a, b)`` over two
    arrays) or ``"scalar"`` (``b`` is a Python float). ``expr`` is a C-family
    expression over ``a`` and ``b`` using overloaded math names (``exp``, ``log``,
    ``tanh``, ``pow``, ``fmax``, ``sqrt``, ``sin``) that each backend's prelude maps for
    its element type. ``numpy`` is the reference, called as ``numpy(a, out=out)`` or
    ``numpy(a, b, out=out)`` (comparisons write 0/1). ``arity`` is implied by
    ``kind``; it stays a field so ``ElementwiseKernel(name, arity, expr, numpy,
    required)`` keeps working (``kind`` then follows from arity and the name).
    """

    name: str
    arity: int  # 1: out = f(a); 2: out = f(a, b)
    expr: str
    numpy: Callable[..., np.ndarray]
    required: bool
    kind: str = ""
    special: tuple[Special, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        kind = self.kind or ("unary" if self.arity == 1 else "scalar" if self.name.startswith("scalar_") else "binary")
        if kind not in ELEMENTWISE_KINDS:
            raise ValueError(f"elementwise row {self.name!r}: kind {kind!r} is not one of {sorted(ELEMENTWISE_KINDS)}")
        if (kind == "unary") != (self.arity == 1):
            raise ValueError(f"elementwise row {self.name!r}: kind {kind!r} does not match arity {self.arity}")
        object.__setattr__(self, "kind", kind)

    @property
    def is_scalar(self) -> bool:
        return self.kind == "scalar"

    @property
    def spec(self) -> KernelSpec:
        return KernelSpec(self.name, ELEMENTWISE_KINDS[self.kind], f"out[i] = {self.expr}", self.required,
                          self.special)  # fmt: skip


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


_INF, _NAN = math.inf, math.nan
# C pow, not sqrt: the cases NumPy's scalar-0.5 shortcut gets wrong (docs/backends.md §7)
_POW_HALF = (Special((-_INF, 0.5), _INF), Special((-0.0, 0.5), 0.0), Special((-1.0, 0.5), _NAN))


def _unary(name: str, expr: str, ref: Callable, required: bool = True, special: tuple = ()) -> ElementwiseKernel:
    return ElementwiseKernel(name, 1, expr, ref, required, "unary", special)


def _binary(name: str, expr: str, ref: Callable, required: bool = True, special: tuple = ()) -> ElementwiseKernel:
    return ElementwiseKernel(name, 2, expr, ref, required, "binary", special)


def _scalar(name: str, expr: str, ref: Callable, required: bool = True, special: tuple = ()) -> ElementwiseKernel:
    return ElementwiseKernel(name, 2, expr, ref, required, "scalar", special)


ELEMENTWISE: tuple[ElementwiseKernel, ...] = (
    # required primitives (the course's backend interface)
    _binary("ewise_add", "a + b", np.add),
    _scalar("scalar_add", "a + b", np.add),
    _binary("ewise_mul", "a * b", np.multiply),
    _scalar("scalar_mul", "a * b", np.multiply),
    _binary("ewise_div", "a / b", np.divide),
    _scalar("scalar_div", "a / b", np.divide),
    _binary("ewise_maximum", "fmax(a, b)", np.fmax, special=(Special((_NAN, 1.0), 1.0),)),  # fmax: NaN loses
    _scalar("scalar_maximum", "fmax(a, b)", np.fmax, special=(Special((_NAN, 1.0), 1.0),)),
    _binary("ewise_eq", "(a == b) ? 1.0f : 0.0f", np.equal),
    _scalar("scalar_eq", "(a == b) ? 1.0f : 0.0f", np.equal),
    _binary("ewise_ge", "(a >= b) ? 1.0f : 0.0f", np.greater_equal),
    _scalar("scalar_ge", "(a >= b) ? 1.0f : 0.0f", np.greater_equal),
    _scalar("scalar_power", "pow(a, b)", _pow, special=_POW_HALF),
    _unary("ewise_log", "log(a)", np.log, special=(Special((0.0,), -_INF), Special((-0.0,), -_INF))),
    _unary("ewise_exp", "exp(a)", np.exp, special=(Special((-_INF,), 0.0),)),
    _unary("ewise_tanh", "tanh(a)", np.tanh, special=(Special((_INF,), 1.0), Special((-0.0,), -0.0))),
    # optional rows: ops fall back to compositions of the primitives above
    _binary("ewise_power", "pow(a, b)", _pow, False, _POW_HALF),
    _unary("ewise_neg", "-a", np.negative, False, (Special((0.0,), -0.0),)),
    _unary("ewise_sqrt", "sqrt(a)", np.sqrt, False, (Special((-0.0,), -0.0), Special((_INF,), _INF))),
    _unary("ewise_sigmoid", "1.0f / (1.0f + exp(-a))", _sigmoid, False, (Special((-_INF,), 0.0),)),
    _unary("ewise_relu", "fmax(a, 0.0f)", _relu, False, (Special((_NAN,), 0.0),)),
    # no primitive composition: a device without it raises (docs/backends.md §3)
    _unary("ewise_sin", "sin(a)", np.sin, False, (Special((-0.0,), -0.0), Special((_INF,), _NAN))),
)

ELEMENTWISE_BY_NAME: dict[str, ElementwiseKernel] = {k.name: k for k in ELEMENTWISE}


@dataclass(frozen=True)
class ReductionKernel:
    """One reduction over contiguous blocks (``name``) and over the last axes of a
    strided view (``view_name``). ``combine`` is a C expression over the accumulator
    ``acc`` and the next element ``x`` (also valid on SIMD vectors in the cpu and
    cuda backends); ``identity`` starts the accumulator; ``numpy`` is the reference
    ufunc reduction, called as ``numpy(x, axes, out=out)``."""

    name: str
    identity: float
    combine: str
    numpy: Callable[..., np.ndarray]
    nan_rule: str
    special: tuple[Special, ...] = field(default=(), compare=False)

    @property
    def view_name(self) -> str:
        return f"{self.name}_view"

    @property
    def c_identity(self) -> str:
        """``identity`` as a C float literal."""
        if math.isinf(self.identity):
            return "-INFINITY" if self.identity < 0 else "INFINITY"
        return f"{self.identity!r}f"


#: The NaN rule of max, stated once: a reduction (``reduce_max``, ``max`` over axes)
#: propagates NaN like ``np.max``; the elementwise ``maximum`` is C's ``fmax`` (a NaN
#: operand loses), like ``np.fmax``. ReLU follows ``fmax`` (``relu(NaN) = 0``).
MAX_NAN_RULE = "a NaN anywhere in the block gives NaN (np.max); the elementwise maximum is fmax instead"

REDUCTIONS: tuple[ReductionKernel, ...] = (
    ReductionKernel("reduce_sum", 0.0, "acc + x", np.add.reduce, "NaN propagates (IEEE addition)",
                    (Special(((1.0, _INF),), _INF), Special(((_INF, -_INF),), _NAN))),
    ReductionKernel("reduce_max", -_INF, "(x > acc || x != x) ? x : acc", np.maximum.reduce, MAX_NAN_RULE,
                    (Special(((1.0, _NAN, 2.0),), _NAN), Special(((-_INF, -_INF),), -_INF))),
)  # fmt: skip

REDUCTIONS_BY_NAME: dict[str, ReductionKernel] = {r.name: r for r in REDUCTIONS}

def _specs(table: str, required: bool) -> tuple[KernelSpec, ...]:
    """Rows ``name(params) | semantics`` of a text table (the form docs/backends.md uses)."""
    rows = []
    for line in table.strip().splitlines():
        signature, semantics = (part.strip() for part in line.split("|"))
        name, params = signature.rstrip(")").split("(")
        rows.append(KernelSpec(name, tuple(p.strip() for p in params.split(",")), semantics, required))
    return tuple(rows)


def _reduction_specs(view: bool) -> tuple[KernelSpec, ...]:
    if view:
        return tuple(
            KernelSpec(r.view_name, ("a", "out", "shape", "strides", "offset", "reduce_ndim"),
                       f"{r.name} over the last reduce_ndim axes of a strided view; {r.nan_rule}", False, r.special)
            for r in REDUCTIONS
        )  # fmt: skip
    return tuple(
        KernelSpec(r.name, ("a", "out", "reduce_size"), f"out[i] = {r.combine} folded from {r.c_identity} over "
                   f"block i; {r.nan_rule}", True, r.special)
        for r in REDUCTIONS
    )  # fmt: skip


_LOGSUMEXP_SPECIAL = (Special(((1.0, _INF),), _INF), Special(((-_INF, -_INF),), -_INF), Special(((0.0, _NAN),), _NAN))

#: Every kernel of the ABI, primitives first (the course's backend interface).
KERNEL_SPECS: tuple[KernelSpec, ...] = (
    *_specs("""
        Array(size, dtype)                     | allocate an uninitialised buffer of size elements
        to_numpy(a, shape, strides, offset)    | the strided view as a NumPy array
        from_numpy(np_array, out)              | copy a C-contiguous NumPy array into out
        fill(out, val)                         | every element of out = val
        compact(a, out, shape, strides, offset) | compact out = the strided view of a, row-major
        ewise_setitem(a, out, shape, strides, offset) | the strided view of out = compact a
        scalar_setitem(size, val, out, shape, strides, offset) | every element of the strided view of out = val
    """, required=True),
    *(k.spec for k in ELEMENTWISE if k.required),
    *_specs("matmul(a, b, out, m, n, p) | compact a (m, n) @ b (n, p) into out (m, p)", required=True),
    *_reduction_specs(view=False),
    # optional: looked up on the device (None when absent); core falls back
    *(k.spec for k in ELEMENTWISE if not k.required),
    *_specs("""
        ewise_strided(name, a, a_strides, a_offset, b, b_strides, b_offset, out, shape) | a binary row over two views
        batched_matmul(a, b, out, batch, m, n, p) | compact (batch, m, n) @ (batch, n, p) into (batch, m, p)
        matmul_t(a, b, out, m, n, p, trans_a, trans_b) | op(a) (m, n) @ op(b) (n, p), an operand read transposed
    """, required=False),
    *_reduction_specs(view=True),
    KernelSpec("logsumexp", ("a", "out", "reduce_size"), "stable log(sum(exp(x))) over each block; all -inf gives "
               "-inf, +inf and NaN propagate", False, _LOGSUMEXP_SPECIAL),
    *_specs("""
        conv2d_nhwc(a, w, out, shape_a, shape_w, stride) | convolution of a zero-padded NHWC input
        conv2d_nhwc_padded(x, w, out, shape_x, shape_w, stride, padding) | conv2d_nhwc of x zero-padded by padding
        conv2d_nhwc_grad_input(g, w, out, shape_x, shape_w, stride, padding) | the input adjoint of conv2d_nhwc
        conv2d_nhwc_grad_weight(x, g, out, shape_x, shape_w, stride, padding) | the kernel adjoint of conv2d_nhwc
        batchnorm_forward(x, weight, bias, out, xhat, mean, var, inv_std, rows, channels, eps) | training-mode \
batch statistics and normalised output of a channels-last (rows, channels) input
        batchnorm_backward(g, xhat, weight, inv_std, dx, dweight, dbias, rows, channels) | the adjoints of \
batchnorm_forward's input, weight and bias
        lstm_cell(gates, c_prev, h, c, batch, hidden) | one LSTM step's elementwise part
        lstm_cell_backward(gates, c_prev, dh, dc, dgates, dc_prev, batch, hidden) | the adjoints of lstm_cell
        take_rows(table, index, out, count, width) | out[k] = table[index[k]]
        scatter_add_rows(src, index, out, count, width) | out = 0, then out[index[k]] += src[k] in order
        softmax_cross_entropy(logits, labels, out, rows, classes) | per-row logsumexp(x) - x[label]
        softmax_cross_entropy_backward(logits, labels, out_grad, dlogits, rows, classes) | its adjoint
        sgd_update(w, g, u, size, lr, momentum, weight_decay) | one SGD step in place on w and u
        adam_update(w, g, m, v, size, lr, beta1, beta2, eps, weight_decay, t) | one Adam step in place on w, m, v
        matmul_tiled(a, b, out, m, n, p) | the course's tiled matmul over tile-major operands
    """, required=False),
)  # fmt: skip

KERNEL_SPECS_BY_NAME: dict[str, KernelSpec] = {s.name: s for s in KERNEL_SPECS}

#: Primitive kernels every backend must provide (course names).
PRIMITIVE_KERNELS: tuple[str, ...] = tuple(s.name for s in KERNEL_SPECS if s.required)

#: Optional kernels: looked up on the device (``None`` when absent); core falls back
#: to a composition of primitives. Signatures in docs/backends.md.
OPTIONAL_KERNELS: tuple[str, ...] = tuple(s.name for s in KERNEL_SPECS if not s.required)

#: Optional hooks for tools (profiler, DLPack), not kernels: absent means "not
#: supported" (no fallback, no conformance comparison). Semantics in docs/backends.md §8.
TOOL_HOOKS: tuple[str, ...] = ("synchronize", "host_array", "from_host_array", "dlpack_device")

#: Attributes a backend may export onto its device object besides kernels.
DEVICE_ATTRIBUTES: tuple[str, ...] = ("__tile_size__", *TOOL_HOOKS)

ALL_KERNELS: tuple[str, ...] = PRIMITIVE_KERNELS + OPTIONAL_KERNELS
