// Strided views: compact (gather), ewise_setitem (scatter), scalar_setitem (fill a
// view). Each exists in a 32-bit index variant (views of < 2^31 elements: the
// div/mod chain is 32-bit) and a 64-bit one. `n` = prod(shape); grid-stride loops.

template <typename I>
__device__ __forceinline__ void ndl_compact(const float* a, float* out, const NdlLayout& L, long long offset, I n, int ndim) {
    const I stride = (I)gridDim.x * blockDim.x;
    for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        out[i] = a[ndl_view_offset<I>(i, L, ndim, offset)];
}

template <typename I>
__device__ __forceinline__ void ndl_ewise_setitem(const float* a, float* out, const NdlLayout& L, long long offset, I n, int ndim) {
    const I stride = (I)gridDim.x * blockDim.x;
    for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        out[ndl_view_offset<I>(i, L, ndim, offset)] = a[i];
}

template <typename I>
__device__ __forceinline__ void ndl_scalar_setitem(float* out, const NdlLayout& L, long long offset, I n, int ndim, float val) {
    const I stride = (I)gridDim.x * blockDim.x;
    for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        out[ndl_view_offset<I>(i, L, ndim, offset)] = val;
}

// Parameters are ordered 8-byte first, then 4-byte, so the packed argument buffer
// has no padding to get wrong on the host side.
extern "C" __global__ void compact_i32(const float* a, float* out, NdlLayout L, long long offset, long long n, int ndim) {
    ndl_compact<unsigned int>(a, out, L, offset, (unsigned int)n, ndim);
}
extern "C" __global__ void compact_i64(const float* a, float* out, NdlLayout L, long long offset, long long n, int ndim) {
    ndl_compact<unsigned long long>(a, out, L, offset, (unsigned long long)n, ndim);
}
extern "C" __global__ void ewise_setitem_i32(const float* a, float* out, NdlLayout L, long long offset, long long n, int ndim) {
    ndl_ewise_setitem<unsigned int>(a, out, L, offset, (unsigned int)n, ndim);
}
extern "C" __global__ void ewise_setitem_i64(const float* a, float* out, NdlLayout L, long long offset, long long n, int ndim) {
    ndl_ewise_setitem<unsigned long long>(a, out, L, offset, (unsigned long long)n, ndim);
}
extern "C" __global__ void scalar_setitem_i32(float* out, NdlLayout L, long long offset, long long n, int ndim, float val) {
    ndl_scalar_setitem<unsigned int>(out, L, offset, (unsigned int)n, ndim, val);
}
extern "C" __global__ void scalar_setitem_i64(float* out, NdlLayout L, long long offset, long long n, int ndim, float val) {
    ndl_scalar_setitem<unsigned long long>(out, L, offset, (unsigned long long)n, ndim, val);
}
