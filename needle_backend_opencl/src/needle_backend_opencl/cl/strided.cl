// fill and the three strided-view kernels. Each work-item takes `chunk` consecutive
// elements of one row of the view's last axis (view_piece): the index arithmetic of
// view_offset32 runs once per piece, then the piece steps by the last axis's stride.
// The host picks chunk: 64 on CPUs (a loop per work-item), 1 on GPUs (neighbouring
// work-items touch neighbouring elements, so accesses coalesce).

__kernel void fill(__global float* out, const float val, const int n) {
    const int i = get_global_id(0);
    if (i < n) out[i] = val;
}

// The piece of work-item idx: sets *lin0 (row-major index of its first element) and
// returns its length, 0 past the end. n = rows * inner elements in all.
int view_piece(const int idx, const int n, const int inner, const int chunk, int* lin0) {
    const int chunks = (inner + chunk - 1) / chunk;
    const int r = idx / chunks, c = idx - r * chunks;
    *lin0 = r * inner + c * chunk;
    return (*lin0 < n) ? min(chunk, inner - c * chunk) : 0;
}

__kernel void compact(__global const float* a, __global float* out, const view_t v, const int n, const int inner,
                      const int chunk) {
    int lin0;
    const int len = view_piece(get_global_id(0), n, inner, chunk, &lin0);
    if (len <= 0) return;
    const int off = view_offset32(&v, lin0), st = (int)v.strides[v.ndim - 1];
    for (int j = 0; j < len; ++j) out[lin0 + j] = a[off + j * st];
}

__kernel void ewise_setitem(__global const float* a, __global float* out, const view_t v, const int n,
                            const int inner, const int chunk) {
    int lin0;
    const int len = view_piece(get_global_id(0), n, inner, chunk, &lin0);
    if (len <= 0) return;
    const int off = view_offset32(&v, lin0), st = (int)v.strides[v.ndim - 1];
    for (int j = 0; j < len; ++j) out[off + j * st] = a[lin0 + j];
}

__kernel void scalar_setitem(const float val, __global float* out, const view_t v, const int n, const int inner,
                             const int chunk) {
    int lin0;
    const int len = view_piece(get_global_id(0), n, inner, chunk, &lin0);
    if (len <= 0) return;
    const int off = view_offset32(&v, lin0), st = (int)v.strides[v.ndim - 1];
    for (int j = 0; j < len; ++j) out[off + j * st] = val;
}
