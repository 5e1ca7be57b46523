// Fused softmax cross-entropy (docs/backends.md §3), a work-item per row: the loss
// logsumexp(x) - x[label] and its adjoint g * (softmax(x) - onehot(label)), each in
// one kernel with no (rows, classes) temporary. Both follow the composition's steps,
// so inf/NaN logits give what core's ops give. Labels are whole float values in
// [0, classes), checked on the host before the launch.

__kernel void softmax_cross_entropy(__global const float* x, __global const float* labels, __global float* out,
                                    const int rows, const int classes) {
    const int r = get_global_id(0);
    if (r >= rows) return;
    __global const float* p = x + (size_t)r * classes;
    out[r] = row_logsumexp(p, classes) - p[(int)labels[r]];
}

// shift = fmax(max x, lowest finite) (the max NaN-propagating), e = exp(x - shift),
// p = e / fmax(sum e, 1): a NaN sum gives the denominator 1, as the composition's maximum
__kernel void softmax_cross_entropy_backward(__global const float* x, __global const float* labels,
                                             __global const float* out_grad, __global float* dlogits,
                                             const int rows, const int classes) {
    const int r = get_global_id(0);
    if (r >= rows) return;
    __global const float* p = x + (size_t)r * classes;
    __global float* d = dlogits + (size_t)r * classes;
    const float shift = fmax(row_max(p, classes), -FLT_MAX);
    float2 s = (float2)(0.0f, 0.0f);
    for (int j = 0; j < classes; ++j) {
        const float e = exp(p[j] - shift);
        d[j] = e;
        s = kahan_add(s, e);
    }
    const float total = fmax(kahan_result(s), 1.0f), g = out_grad[r];
    for (int j = 0; j < classes; ++j) d[j] = d[j] / total * g;
    d[(int)labels[r]] += -g;
}
