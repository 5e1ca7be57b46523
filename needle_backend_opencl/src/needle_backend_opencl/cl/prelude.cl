// Shared by every kernel of the program. The ELEMENTWISE table's expressions use
// OpenCL C's own overloaded float builtins (exp, log, tanh, pow, fmax, sqrt), so the
// prelude only adds the strided-view type and a multiply-add that never rounds worse
// than a*b+c (fma only where the device says it is fast: no fast-math anywhere).

#ifdef FP_FAST_FMAF
#define MAC(a, b, c) fma((a), (b), (c))
#else
#define MAC(a, b, c) ((a) * (b) + (c))
#endif

#define MAX_DIMS 8

// A strided view, passed by value; counts elements, not bytes (docs/backends.md).
// The host packs it as 2 + 2 * MAX_DIMS int32 values in this order.
typedef struct {
    int ndim;
    int offset;
    int shape[MAX_DIMS];
    int strides[MAX_DIMS];
} view_t;

// Buffer index of the lin-th element (row-major) of the view.
int view_offset(const view_t* v, int lin) {
    int off = v->offset;
    for (int d = v->ndim - 1; d >= 0; --d) {
        const int s = v->shape[d];
        off += (lin % s) * v->strides[d];
        lin /= s;
    }
    return off;
}
