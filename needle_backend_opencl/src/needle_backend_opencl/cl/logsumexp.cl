// Stable log(sum(exp(x))) over each contiguous row: max first, then the shifted sum.
// A row whose max is infinite gives that max: -inf when all are -inf, +inf when one is
// +inf (their shifted terms would be NaN); a NaN anywhere gives NaN.

float lse_max(const float x, const float y) { return (y > x || isnan(y)) ? y : x; }

float lse_finish(const float m, const float s) { return isinf(m) ? m : m + log(s); }

// the NaN-propagating max of one row (also softmax_loss.cl's)
float row_max(__global const float* p, const long size) {
    float m = -INFINITY;
    for (long j = 0; j < size; ++j) m = lse_max(m, p[j]);
    return m;
}

// logsumexp of one row by one work-item (also softmax_loss.cl's)
float row_logsumexp(__global const float* p, const long size) {
    const float m = row_max(p, size);
    float2 s = (float2)(0.0f, 0.0f);
    for (long j = 0; j < size; ++j) s = kahan_add(s, exp(p[j] - m));
    return lse_finish(m, kahan_result(s));
}

__kernel void logsumexp_serial(__global const float* a, __global float* out, const int rows, const long size) {
    const int r = get_global_id(0);
    if (r >= rows) return;
    out[r] = row_logsumexp(a + (size_t)r * size, size);
}

__kernel void logsumexp_tree(__global const float* a, __global float* out, const int rows, const long size) {
    __local float part[RL];
    const int r = get_group_id(0), l = get_local_id(0);
    __global const float* p = a + (size_t)r * size;
    float m = -INFINITY;
    for (long j = l; j < size; j += RL) m = lse_max(m, p[j]);
    part[l] = m;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = RL / 2; s > 0; s >>= 1) {
        if (l < s) part[l] = lse_max(part[l], part[l + s]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    m = part[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    float acc = 0.0f;
    for (long j = l; j < size; j += RL) acc += exp(p[j] - m);
    part[l] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = RL / 2; s > 0; s >>= 1) {
        if (l < s) part[l] += part[l + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (l == 0) out[r] = lse_finish(m, part[0]);
}
