// Shared by every needle CUDA module (render.py inlines it: SourceModule gets one
// self-contained string, and the compile check compiles the same text).
//
// The elementwise table writes exp/log/tanh/pow/fmax/sqrt: CUDA's device math
// library overloads those names for float (they call expf, logf, ...), so no
// mapping is needed here; the compile check greps the PTX for f64 instructions to
// catch an accidental promotion to double. No fast-math: nvcc's defaults keep IEEE
// division, square root and denormals.

#define NDL_THREADS 256       // threads per block of the 1-D kernels
#define NDL_MAX_DIMS 8        // strided views are coalesced to at most this many axes
#define NDL_FULL_MASK 0xffffffffu

// A strided view's shape and strides (elements), axes 0..ndim-1, passed by value.
struct NdlLayout {
    long long shape[NDL_MAX_DIMS];
    long long stride[NDL_MAX_DIMS];
};

// Element offset of the row-major position `linear` inside the view. `I` is the
// type of the div/mod chain: 32-bit when the view has < 2^31 elements (much cheaper
// on the GPU), 64-bit otherwise.
template <typename I>
__device__ __forceinline__ long long ndl_view_offset(I linear, const NdlLayout& L, int ndim, long long offset) {
    long long pos = offset;
#pragma unroll
    for (int k = 0; k < NDL_MAX_DIMS; ++k) {
        const int d = ndim - 1 - k;
        if (d < 0) break;
        const I extent = (I)L.shape[d];
        const I q = linear / extent;
        pos += (long long)(linear - q * extent) * L.stride[d];
        linear = q;
    }
    return pos;
}

// Reduction operators (NdlSum, NdlMax) are rendered from needle_core.kernels.REDUCTIONS
// at the top of the reduce module (sources.py).

// Sum/max over the 32 lanes of a warp; every lane must call it. Lane 0 holds the
// result (down variant) or every lane does (xor variant).
template <class Op>
__device__ __forceinline__ float ndl_warp_reduce(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = Op::apply(v, __shfl_down_sync(NDL_FULL_MASK, v, o));
    return v;
}
template <class Op>
__device__ __forceinline__ float ndl_warp_allreduce(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = Op::apply(v, __shfl_xor_sync(NDL_FULL_MASK, v, o));
    return v;
}

// Block-wide reduction (blockDim.x a multiple of 32, at most 1024); every thread
// must call it; every thread gets the result. Back-to-back calls are safe without a
// trailing barrier: a next call writes warp_vals/result only after its first
// barrier, which every thread reaches after reading this call's result.
template <class Op>
__device__ __forceinline__ float ndl_block_allreduce(float v) {
    __shared__ float warp_vals[32];
    __shared__ float result;
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    v = ndl_warp_reduce<Op>(v);
    if (lane == 0) warp_vals[warp] = v;
    __syncthreads();
    if (warp == 0) {
        const int nwarps = blockDim.x >> 5;
        v = (lane < nwarps) ? warp_vals[lane] : Op::identity();
        v = ndl_warp_reduce<Op>(v);
        if (lane == 0) result = v;
    }
    __syncthreads();
    return result;
}
