// BatchNorm over the columns of a channels-last (rows, channels) block
// (docs/backends.md §3): a statistics pass per column (a work-item each: neighbouring
// work-items read neighbouring floats of a row), then one elementwise pass. Column
// sums are compensated (kahan_add), so they stay accurate over long columns without
// doubles, which not every device has.

__kernel void batchnorm_stats(__global const float* x, __global float* mean, __global float* var,
                              __global float* inv_std, const int rows, const int channels, const float eps) {
    const int c = get_global_id(0);
    if (c >= channels) return;
    float2 s = (float2)(0.0f, 0.0f);
    for (int r = 0; r < rows; ++r) s = kahan_add(s, x[(size_t)r * channels + c]);
    const float m = kahan_result(s) / rows;
    float2 q = (float2)(0.0f, 0.0f);
    for (int r = 0; r < rows; ++r) {
        const float d = x[(size_t)r * channels + c] - m;
        q = kahan_add(q, d * d);
    }
    const float v = kahan_result(q) / rows;
    mean[c] = m;
    var[c] = v;
    inv_std[c] = rsqrt(v + eps);
}

__kernel void batchnorm_apply(__global const float* x, __global const float* weight, __global const float* bias,
                              __global const float* mean, __global const float* inv_std, __global float* out,
                              __global float* xhat, const int n, const int channels) {
    const int i = get_global_id(0);
    if (i >= n) return;
    const int c = i % channels;
    const float h = (x[i] - mean[c]) * inv_std[c];
    xhat[i] = h;
    out[i] = h * weight[c] + bias[c];
}

__kernel void batchnorm_grad_sums(__global const float* g, __global const float* xhat, __global float* dweight,
                                  __global float* dbias, const int rows, const int channels) {
    const int c = get_global_id(0);
    if (c >= channels) return;
    float2 sb = (float2)(0.0f, 0.0f), sw = (float2)(0.0f, 0.0f);
    for (int r = 0; r < rows; ++r) {
        const size_t i = (size_t)r * channels + c;
        sb = kahan_add(sb, g[i]);
        sw = kahan_add(sw, g[i] * xhat[i]);
    }
    dbias[c] = kahan_result(sb);
    dweight[c] = kahan_result(sw);
}

__kernel void batchnorm_grad_input(__global const float* g, __global const float* xhat,
                                   __global const float* weight, __global const float* inv_std,
                                   __global const float* dweight, __global const float* dbias, __global float* dx,
                                   const int n, const int rows, const int channels) {
    const int i = get_global_id(0);
    if (i >= n) return;
    const int c = i % channels;
    dx[i] = weight[c] * inv_std[c] / rows * (rows * g[i] - dbias[c] - xhat[i] * dweight[c]);
}
