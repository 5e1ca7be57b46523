"""CUDA kernel source: the elementwise family rendered from needle-core's table,
the other families from the ``cuda/*.cu`` templates beside this file.

Each *module* is one self-contained source string (prelude inlined) that pycuda's
``SourceModule`` compiles on first use and ``compile_check`` compiles with nvcc.
Nothing here imports pycuda.
"""

from __future__ import annotations

from importlib import resources

from needle_core.kernels import ELEMENTWISE, REDUCTIONS, ElementwiseKernel, ReductionKernel

#: module name -> template file (None: rendered from the elementwise table)
MODULES: dict[str, str | None] = {
    "elementwise": None,
    "layout": "layout.cu",
    "reduce": "reduce.cu",
    "matmul": "matmul.cu",
    "optim": "optim.cu",
}


def _read(name: str) -> str:
    return resources.files(__package__).joinpath("cuda").joinpath(name).read_text(encoding="utf-8")


def prelude() -> str:
    return _read("prelude.cuh")


# The float4 body runs the expression on each lane of a 16-byte vector (buffers
# come from the pool, 256-byte aligned, and kernels get whole compact buffers);
# the scalar tail finishes n % 4 elements. Grid-stride loops in 64-bit indices.
_VECTOR_LOOP = """\
    const long long step = (long long)gridDim.x * blockDim.x;
    const long long first = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const long long n4 = n >> 2;
{vec_ptrs}
    for (long long i = first; i < n4; i += step) {{
{vec_loads}
        float4 r;
        r.x = {op}({lane_x});
        r.y = {op}({lane_y});
        r.z = {op}({lane_z});
        r.w = {op}({lane_w});
        o4[i] = r;
    }}
    for (long long i = (n4 << 2) + first; i < n; i += step) out[i] = {op}({scalar_args});
"""


# row kind -> (device function parameters, kernel parameters, array operands, one
# float4 lane's arguments, the scalar tail's arguments)
_KINDS: dict[str, tuple[str, str, tuple[str, ...], str, str]] = {
    "unary": ("float a", "const float* a, float* out, long long n", ("a",), "x.{c}", "a[i]"),
    "scalar": ("float a, float b", "const float* a, float* out, long long n, float b", ("a",), "x.{c}, b", "a[i], b"),
    "binary": ("float a, float b", "const float* a, const float* b, float* out, long long n", ("a", "b"),
               "x.{c}, y.{c}", "a[i], b[i]"),
}  # fmt: skip


def render_elementwise_kernel(k: ElementwiseKernel) -> str:
    """One ``extern "C"`` kernel for one table row.

    Signatures (pointers, then 64-bit, then 32-bit): unary ``(a, out, n)``, binary
    ``(a, b, out, n)``, scalar ``(a, out, n, b)``.
    """
    op = f"ndl_op_{k.name}"
    args, params, ptrs, lane, scalar_args = _KINDS[k.kind]
    fn = f"__device__ __forceinline__ float {op}({args}) {{ return ({k.expr}); }}"
    lane_args = {c: lane.format(c=c) for c in "xyzw"}
    vec_ptrs = "\n".join(
        f"    const float4* {p}4 = reinterpret_cast<const float4*>({p});" for p in ptrs
    ) + "\n    float4* o4 = reinterpret_cast<float4*>(out);"
    vec_loads = "\n".join(f"        const float4 {v} = {p}4[i];" for v, p in zip("xy", ptrs, strict=False))
    body = _VECTOR_LOOP.format(
        vec_ptrs=vec_ptrs,
        vec_loads=vec_loads,
        op=op,
        lane_x=lane_args["x"],
        lane_y=lane_args["y"],
        lane_z=lane_args["z"],
        lane_w=lane_args["w"],
        scalar_args=scalar_args,
    )
    return f'{fn}\nextern "C" __global__ void {k.name}({params}) {{\n{body}}}\n'


_FILL = """\
extern "C" __global__ void fill(float* out, long long n, float val) {
    const long long step = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) out[i] = val;
}
"""


def render_elementwise(rows: tuple[ElementwiseKernel, ...] = ELEMENTWISE) -> str:
    """The elementwise module body: ``fill`` plus one kernel per table row."""
    header = "// Rendered from needle_core.kernels.ELEMENTWISE: one kernel per row.\n"
    return header + _FILL + "\n" + "\n".join(render_elementwise_kernel(k) for k in rows)


def reduction_op(row: ReductionKernel) -> str:
    """The operator struct of one REDUCTIONS row (``reduce_sum`` -> ``NdlSum``)."""
    return "Ndl" + row.name.removeprefix("reduce_").capitalize()


_REDUCE_ENTRY = (
    'extern "C" __global__ void {name}_{shape}(const float* a, float* out, long long rows, long long R) '
    "{{ ndl_reduce_{shape}<{op}>(a, out, rows, R); }}\n"
)
_REDUCE_VIEW_ENTRY = """\
extern "C" __global__ void {name}_i{bits}(const float* a, float* out, NdlLayout kept, NdlLayout red, long long offset,
                                          long long rows, long long R, int kdim, int rdim) {{
    ndl_reduce_view<{op}, {index}>(a, out, kept, red, offset, ({index})rows, ({index})R, kdim, rdim);
}}
"""


def render_reduction_ops(rows: tuple[ReductionKernel, ...] = REDUCTIONS) -> str:
    """One operator struct per row: ``identity()`` and ``apply(acc, x)`` = the row's combine."""
    return "// Rendered from needle_core.kernels.REDUCTIONS: one operator per row.\n" + "".join(
        f"struct {reduction_op(r)} {{  // {r.nan_rule}\n"
        f"    static __device__ __forceinline__ float identity() {{ return {r.c_identity}; }}\n"
        f"    static __device__ __forceinline__ float apply(float acc, float x) {{ return ({r.combine}); }}\n"
        "};\n"
        for r in rows
    )


def render_reduction_kernels(rows: tuple[ReductionKernel, ...] = REDUCTIONS) -> str:
    """The entry points of each row: contiguous (thread/warp/block) and view (i32/i64)."""
    parts = []
    for r in rows:
        op = reduction_op(r)
        parts += [_REDUCE_ENTRY.format(name=r.name, shape=s, op=op) for s in ("thread", "warp", "block")]
        parts += [
            _REDUCE_VIEW_ENTRY.format(name=r.view_name, bits=bits, op=op, index=index)
            for bits, index in ((32, "unsigned int"), (64, "unsigned long long"))
        ]
    return "".join(parts)


def module_source(name: str) -> str:
    """The full source of module ``name`` (prelude + body)."""
    if name not in MODULES:
        raise KeyError(f"unknown CUDA module {name!r}; expected one of {sorted(MODULES)}")
    template = MODULES[name]
    body = render_elementwise() if template is None else _read(template)
    if name == "reduce":
        body = f"{render_reduction_ops()}\n{body}\n{render_reduction_kernels()}"
    return f"// needle CUDA module: {name}\n{prelude()}\n{body}"


def all_sources() -> dict[str, str]:
    """Every module's full source, by module name."""
    return {name: module_source(name) for name in MODULES}


def kernel_names(source: str) -> list[str]:
    """The ``extern "C"`` kernel names defined in a source string."""
    import re

    return re.findall(r'extern "C" __global__ void\s+(?:__launch_bounds__\([^)]*\)\s*)?(\w+)\s*\(', source)
