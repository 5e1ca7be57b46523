"""The OpenCL C program of the backend, rendered once per process.

The elementwise family comes from the shared table ``needle_core.kernels.ELEMENTWISE``
(one kernel per row) and the reductions' identities and combine steps from
``needle_core.kernels.REDUCTIONS``; everything else is a hand-written template under ``cl/``.
"""

from __future__ import annotations

import functools
import re
from importlib import resources
from string import Template

from needle_core.kernels import ELEMENTWISE, REDUCTIONS_BY_NAME, ElementwiseKernel, ReductionKernel

#: Work-group size of the tree reductions (a power of two).
REDUCE_LOCAL = 64
#: Rows of C per work-item in the packed matmul (RM float16 accumulators).
MATMUL_RM = 8
#: Elements of B (all batches) up to which the packed matmul reads B in place
#: (``matmul_direct``, one launch) instead of repacking it first (it stays in cache).
MATMUL_DIRECT_MAX = 1 << 15

_PARAMS = {
    "unary": "__global const float* A, __global float* OUT, const int n",
    "ewise": "__global const float* A, __global const float* B, __global float* OUT, const int n",
    "scalar": "__global const float* A, const float b, __global float* OUT, const int n",
}
_LOADS = {
    "unary": "const float a = A[i];",
    "ewise": "const float a = A[i], b = B[i];",
    "scalar": "const float a = A[i];",
}

#: Bytes of a reduction's partial state (what ``*_split`` writes per work-group).
STATE_BYTES = {"reduce_sum": 8, "reduce_max": 4}


def _combine(row: ReductionKernel, acc: str, x: str) -> str:
    """The row's combine expression with its ``acc`` and ``x`` renamed."""
    return re.sub(r"\b(acc|x)\b", lambda m: acc if m[1] == "acc" else x, row.combine)


_SUM, _MAX = REDUCTIONS_BY_NAME["reduce_sum"], REDUCTIONS_BY_NAME["reduce_max"]
# kernel-name prefix -> (state type, identity, add element, merge states, finish) of the
# reductions, from the REDUCTIONS rows
_REDUCTIONS = {
    # the row's acc + x, compensated (state: sum and carry): a 150,000-element row sums
    # to within a rounding or two
    "reduce_sum": (
        "float2",
        f"(float2)({_SUM.c_identity}, 0.0f)",
        "return kahan_add(s, x);",
        "float2 m = kahan_add(s, o.x); m.y += o.y; return m;",
        "return kahan_result(s) * scale;",
    ),
    "reduce_max": (
        "float",
        _MAX.c_identity,
        f"return {_combine(_MAX, 's', 'x')};",
        f"return {_combine(_MAX, 's', 'o')};",
        "return s;",
    ),
}
# (name suffix, operand parameters, j-th element of output row r, the run macro of
# reduce.cl's serial shape); 64-bit indices
_LAYOUTS = {
    "": ("__global const float* a", "a[(long)r * size + j]", "CONTIGUOUS_RUN"),
    "_view": ("__global const float* a, const view_t v", "a[view_offset(&v, (long)r * size + j)]", "VIEW_RUN"),
}


def _kind(row: ElementwiseKernel) -> str:
    return "ewise" if row.kind == "binary" else row.kind


def render_elementwise(row: ElementwiseKernel) -> str:
    """``out[i] = expr(a[i], b[i] | b)`` for one row of the shared table."""
    kind = _kind(row)
    return (
        f"__kernel void {row.name}({_PARAMS[kind]}) {{\n"
        f"    const int i = get_global_id(0);\n"
        f"    if (i < n) {{ {_LOADS[kind]} OUT[i] = (float)({row.expr}); }}\n"
        f"}}\n"
    )


def strided_rows() -> tuple[ElementwiseKernel, ...]:
    """The rows ``ewise_strided`` serves: the binary array rows of the table."""
    return tuple(row for row in ELEMENTWISE if row.kind == "binary")


def render_strided(row: ElementwiseKernel) -> str:
    """``out[i] = expr(a_view[i], b_view[i])``: operands read in place through views
    (broadcast, permuted, sliced), so no compact kernel runs first; pieces as strided.cl."""
    return (
        f"__kernel void {row.name}_strided(__global const float* A, const view_t va, "
        f"__global const float* B, const view_t vb, __global float* OUT, const int n, const int inner, "
        f"const int chunk) {{\n"
        f"    int lin0;\n"
        f"    const int len = view_piece(get_global_id(0), n, inner, chunk, &lin0);\n"
        f"    if (len <= 0) return;\n"
        f"    const int oa = view_offset32(&va, lin0), sa = (int)va.strides[va.ndim - 1];\n"
        f"    const int ob = view_offset32(&vb, lin0), sb = (int)vb.strides[vb.ndim - 1];\n"
        f"    for (int j = 0; j < len; ++j) {{\n"
        f"        const float a = A[oa + j * sa], b = B[ob + j * sb];\n"
        f"        OUT[lin0 + j] = (float)({row.expr});\n"
        f"    }}\n"
        f"}}\n"
    )


def _template(name: str) -> str:
    return resources.files(__package__).joinpath("cl").joinpath(name).read_text(encoding="utf-8")


def render_reductions() -> str:
    template = Template(_template("reduce.cl"))
    parts = []
    for prefix, (state, init, add, merge, finish) in _REDUCTIONS.items():
        for suffix, (args, load, run) in _LAYOUTS.items():
            parts.append(
                template.substitute(
                    NAME=prefix + suffix,
                    STATE=state,
                    INIT=init,
                    ADD=add,
                    MERGE=merge,
                    FINISH=finish,
                    ARGS=args,
                    LOAD=load,
                    RUN=run,
                )
            )
    return "\n".join(parts)


@functools.cache
def program_source() -> str:
    """The whole program: prelude, elementwise table, strided, reductions, logsumexp, softmax
    cross-entropy, matmul, optim, norm."""
    return "\n".join(
        [
            f"#define RL {REDUCE_LOCAL}\n#define RM {MATMUL_RM}\n",
            _template("prelude.cl"),
            "// ---- elementwise family, rendered from needle_core.kernels.ELEMENTWISE ----",
            *(render_elementwise(row) for row in ELEMENTWISE),
            _template("strided.cl"),
            "// ---- ewise_strided: the binary rows over two strided views ----",
            *(render_strided(row) for row in strided_rows()),
            render_reductions(),
            _template("logsumexp.cl"),
            _template("softmax_loss.cl"),
            _template("matmul.cl"),
            _template("optim.cl"),
            _template("norm.cl"),
        ]
    )


#: Kernel names the program defines (the runtime fetches each once).
KERNEL_NAMES: tuple[str, ...] = (
    *(row.name for row in ELEMENTWISE),
    "fill",
    "compact",
    "ewise_setitem",
    "scalar_setitem",
    *(f"{row.name}_strided" for row in strided_rows()),
    *(f"{p}{s}_{shape}" for p in _REDUCTIONS for s in _LAYOUTS for shape in ("serial", "tree", "split", "join")),
    "logsumexp_serial",
    "logsumexp_tree",
    "softmax_cross_entropy",
    "softmax_cross_entropy_backward",
    "pack_b",
    "matmul_packed",
    "matmul_direct",
    "matmul_local",
    "sgd_update",
    "adam_update",
    "batchnorm_stats",
    "batchnorm_apply",
    "batchnorm_grad_sums",
    "batchnorm_grad_input",
)


_SCALAR_TYPES = {"int": "int32", "long": "int64", "float": "float32", "uint": "uint32", "ulong": "uint64"}
# structs passed by value, as raw bytes of this size (pyopencl then copies them as a
# buffer: an undeclared struct argument costs about 20 us per launch to convert)
_STRUCT_TYPES = {"view_t": f"V{8 * (2 + 2 * 8)}"}  # views.pack: ndim, offset, shape[8], strides[8] (int64)


def scalar_arg_dtypes(source: str) -> dict[str, list[str | None]]:
    """Each kernel's parameters as pyopencl's ``set_scalar_arg_dtypes`` wants them: the
    NumPy dtype name of a by-value scalar or struct (``V144`` for ``view_t``), ``None``
    for buffers. Read from
    the program text, so a kernel's Python call can never disagree with its signature;
    pyopencl then packs arguments in compiled code (several times cheaper per launch
    than ``set_args``)."""
    found = {}
    for name, params in re.findall(r"__kernel\s+void\s+(\w+)\s*\(([^)]*)\)", source):
        dtypes: list[str | None] = []
        for param in params.split(","):
            words = param.replace("*", " * ").split()
            types = {**_SCALAR_TYPES, **_STRUCT_TYPES}
            scalar = [w for w in words if w in types]
            by_value = "*" not in words and "__global" not in words and "__local" not in words
            dtypes.append(types[scalar[0]] if by_value and scalar else None)
        found[name] = dtypes
    return found
