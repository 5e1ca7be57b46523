// Shared by every kernel of the program. The ELEMENTWISE table's expressions use
// OpenCL C's own overloaded float builtins (exp, log, tanh, pow, fmax, sqrt), so the
// prelude only adds the strided-view type, a multiply-add that never rounds worse
// than a*b+c (fma only where the device says it is fast: no fast-math anywhere), and
// fixes for builtins whose edge cases differ from IEEE/NumPy.

#ifdef FP_FAST_FMAF
#define MAC(a, b, c) fma((a), (b), (c))
#else
#define MAC(a, b, c) ((a) * (b) + (c))
#endif

// tanh rounds to exactly +-1 beyond |x| = 9.01 in float32 (and tanh(+-inf) is +-1 in
// IEEE), but some drivers' builtins (PoCL's) stop at +-0.99999994. The table's
// expression says tanh(a); this macro routes it here.
// (Some drivers define tanh as a macro themselves: undefined first, or the build warns.)
float needle_tanh(const float x) { return (fabs(x) > 9.1f) ? copysign(1.0f, x) : tanh(x); }
#undef tanh
#define tanh(x) needle_tanh(x)

#define MAX_DIMS 8

// A strided view, passed by value; counts elements, not bytes (docs/backends.md).
// The host packs it as 2 + 2 * MAX_DIMS int64 values in this order. 64-bit because a
// view (a broadcast, an overlapping as_strided window) may hold more than 2^31
// elements even though every buffer holds fewer.
typedef struct {
    long ndim;
    long offset;
    long shape[MAX_DIMS];
    long strides[MAX_DIMS];
} view_t;

// Buffer index of the lin-th element (row-major) of the view. Reductions use it: a row
// index times the row length can pass 2^31.
long view_offset(const view_t* v, long lin) {
    long off = v->offset;
    for (int d = (int)v->ndim - 1; d >= 0; --d) {
        const long s = v->shape[d];
        off += (lin % s) * v->strides[d];
        lin /= s;
    }
    return off;
}

// Runs of consecutive elements for reduce.cl's serial shape (see $RUN there): a compact
// operand is one run per row; a view's run ends with its last axis, along which the
// elements are v.strides[ndim - 1] apart.
#define CONTIGUOUS_RUN(lin, off, step, len) ((off) = (lin), (step) = 1, (len) = LONG_MAX)
#define VIEW_RUN(lin, off, step, len)                                                     \
    ((off) = view_offset(&v, (lin)), (step) = v.strides[v.ndim - 1],                     \
     (len) = v.shape[v.ndim - 1] - (lin) % v.shape[v.ndim - 1])

// The same in 32-bit arithmetic (a 64-bit division costs several 32-bit ones), for
// kernels with one work-item per element of an output buffer: there lin < 2^31, and
// every index the view reaches lies inside a buffer, so below 2^31 too.
int view_offset32(const view_t* v, int lin) {
    int off = (int)v->offset;
    for (int d = (int)v->ndim - 1; d >= 0; --d) {
        const int s = (int)v->shape[d];
        off += (lin % s) * (int)v->strides[d];
        lin /= s;
    }
    return off;
}

// Neumaier's compensated sum as (sum, compensation): the error of a long sum stays
// near one rounding instead of growing with its length. An infinite sum makes the
// compensation NaN; kahan_result then returns the sum itself.
float2 kahan_add(const float2 s, const float x) {
    const float t = s.x + x;
    const float c = (fabs(s.x) >= fabs(x)) ? (s.x - t) + x : (x - t) + s.x;
    return (float2)(t, s.y + c);
}

float kahan_result(const float2 s) { return isfinite(s.x) ? s.x + s.y : s.x; }
