// Reductions over contiguous blocks: out[r] = op(a[r*R : (r+1)*R]) for r < rows.
// Three shapes of the same loop, picked on the host by R and the row count:
//   *_thread: one thread per row (R < 32: a warp per row would idle most lanes);
//   *_warp:   one warp per row, lanes stride the row, then warp shuffles;
//   *_block:  one block per row (long rows, few of them), warp shuffles + a tree
//             over the warps in shared memory.
// Every loop over rows is uniform across the threads that shuffle or synchronise
// together (row depends only on the warp or block index), as the full-mask
// shuffles and __syncthreads require.

template <class Op>
__device__ __forceinline__ void ndl_reduce_thread(const float* a, float* out, long long rows, long long R) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long r = (long long)blockIdx.x * blockDim.x + threadIdx.x; r < rows; r += stride) {
        const float* p = a + r * R;
        float v = Op::identity();
        for (long long j = 0; j < R; ++j) v = Op::apply(v, p[j]);
        out[r] = v;
    }
}

template <class Op>
__device__ __forceinline__ void ndl_reduce_warp(const float* a, float* out, long long rows, long long R) {
    const int lane = threadIdx.x & 31;
    const long long warps = (long long)gridDim.x * (blockDim.x >> 5);
    for (long long r = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5; r < rows; r += warps) {
        const float* p = a + r * R;
        float v = Op::identity();
        for (long long j = lane; j < R; j += 32) v = Op::apply(v, p[j]);
        v = ndl_warp_reduce<Op>(v);
        if (lane == 0) out[r] = v;
    }
}

template <class Op>
__device__ __forceinline__ void ndl_reduce_block(const float* a, float* out, long long rows, long long R) {
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        const float* p = a + r * R;
        float v = Op::identity();
        for (long long j = threadIdx.x; j < R; j += blockDim.x) v = Op::apply(v, p[j]);
        v = ndl_block_allreduce<Op>(v);
        if (threadIdx.x == 0) out[r] = v;
    }
}


// Stable log-sum-exp per row: m + log(sum(exp(x - m))), m the row max (NaN
// propagates); an all -inf row gives -inf, like the composed fallback's formula
// would after its guard.
__device__ __forceinline__ float ndl_lse_finish(float m, float s) { return m + logf(s); }

extern "C" __global__ void logsumexp_warp(const float* a, float* out, long long rows, long long R) {
    const int lane = threadIdx.x & 31;
    const long long warps = (long long)gridDim.x * (blockDim.x >> 5);
    for (long long r = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5; r < rows; r += warps) {
        const float* p = a + r * R;
        float m = -INFINITY;
        for (long long j = lane; j < R; j += 32) m = NdlMax::apply(m, p[j]);
        m = ndl_warp_allreduce<NdlMax>(m);  // every lane needs m: the branch below stays uniform
        if (!isfinite(m)) {  // all -inf gives -inf; +inf and NaN propagate (exp(inf - inf) would be NaN)
            if (lane == 0) out[r] = m;
            continue;
        }
        float s = 0.0f;
        for (long long j = lane; j < R; j += 32) s += expf(p[j] - m);
        s = ndl_warp_reduce<NdlSum>(s);
        if (lane == 0) out[r] = ndl_lse_finish(m, s);
    }
}

extern "C" __global__ void logsumexp_block(const float* a, float* out, long long rows, long long R) {
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        const float* p = a + r * R;
        float m = -INFINITY;
        for (long long j = threadIdx.x; j < R; j += blockDim.x) m = NdlMax::apply(m, p[j]);
        m = ndl_block_allreduce<NdlMax>(m);
        float s = 0.0f;
        if (isfinite(m))  // uniform: every thread holds the same m
            for (long long j = threadIdx.x; j < R; j += blockDim.x) s += expf(p[j] - m);
        s = ndl_block_allreduce<NdlSum>(s);
        if (threadIdx.x == 0) out[r] = isfinite(m) ? ndl_lse_finish(m, s) : m;
    }
}

// Reductions of a strided view over its trailing axes, without compacting it
// first: one thread per output element walks its reduced elements. Output rows are
// row-major over the kept axes, so neighbouring threads usually read neighbouring
// addresses (a column sum reads rows of memory). `kept` and `red` are the kept and
// reduced axes' layouts (host-coalesced; a single reduced axis skips the div/mod).
template <class Op, typename I>
__device__ __forceinline__ void ndl_reduce_view(const float* a, float* out, const NdlLayout& kept, const NdlLayout& red,
                                                long long offset, I rows, I R, int kdim, int rdim) {
    const I step = (I)gridDim.x * blockDim.x;
    for (I r = (I)blockIdx.x * blockDim.x + threadIdx.x; r < rows; r += step) {
        const long long base = ndl_view_offset<I>(r, kept, kdim, offset);
        float v = Op::identity();
        if (rdim == 1) {
            const long long s = red.stride[0];
            for (I j = 0; j < R; ++j) v = Op::apply(v, a[base + (long long)j * s]);
        } else {
            for (I j = 0; j < R; ++j) v = Op::apply(v, a[ndl_view_offset<I>(j, red, rdim, base)]);
        }
        out[r] = v;
    }
}

// The extern "C" entry points, one set per REDUCTIONS row, are rendered after this
// template (sources.py: render_reduction_kernels).
