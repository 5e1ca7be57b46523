// Stable log(sum(exp(x))) over each contiguous row: max first, then the shifted sum.
// An all -inf row gives -inf (its shifted terms would be NaN).

float lse_max(const float x, const float y) { return (y > x || isnan(y)) ? y : x; }

float lse_finish(const float m, const float s) { return (m == -INFINITY) ? m : m + log(s); }

__kernel void logsumexp_serial(__global const float* a, __global float* out, const int rows, const int size) {
    const int r = get_global_id(0);
    if (r >= rows) return;
    __global const float* p = a + (size_t)r * size;
    float m = -INFINITY;
    for (int j = 0; j < size; ++j) m = lse_max(m, p[j]);
    float s = 0.0f;
    for (int j = 0; j < size; ++j) s += exp(p[j] - m);
    out[r] = lse_finish(m, s);
}

__kernel void logsumexp_tree(__global const float* a, __global float* out, const int rows, const int size) {
    __local float part[RL];
    const int r = get_group_id(0), l = get_local_id(0);
    __global const float* p = a + (size_t)r * size;
    float m = -INFINITY;
    for (int j = l; j < size; j += RL) m = lse_max(m, p[j]);
    part[l] = m;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = RL / 2; s > 0; s >>= 1) {
        if (l < s) part[l] = lse_max(part[l], part[l + s]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    m = part[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    float acc = 0.0f;
    for (int j = l; j < size; j += RL) acc += exp(p[j] - m);
    part[l] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = RL / 2; s > 0; s >>= 1) {
        if (l < s) part[l] += part[l + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (l == 0) out[r] = lse_finish(m, part[0]);
}
