// fill and the three strided-view kernels: one work-item per element of the view.

__kernel void fill(__global float* out, const float val, const int n) {
    const int i = get_global_id(0);
    if (i < n) out[i] = val;
}

__kernel void compact(__global const float* a, __global float* out, const view_t v, const int n) {
    const int i = get_global_id(0);
    if (i < n) out[i] = a[view_offset32(&v, i)];
}

__kernel void ewise_setitem(__global const float* a, __global float* out, const view_t v, const int n) {
    const int i = get_global_id(0);
    if (i < n) out[view_offset32(&v, i)] = a[i];
}

__kernel void scalar_setitem(const float val, __global float* out, const view_t v, const int n) {
    const int i = get_global_id(0);
    if (i < n) out[view_offset32(&v, i)] = val;
}
