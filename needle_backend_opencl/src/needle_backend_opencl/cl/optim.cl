// Fused optimiser steps (docs/backends.md §3): one pass over the parameters instead
// of about ten elementwise kernels and temporaries per parameter.

__kernel void sgd_update(__global float* w, __global const float* g, __global float* u, const int n,
                         const float lr, const float momentum, const float weight_decay) {
    const int i = get_global_id(0);
    if (i >= n) return;
    const float grad = g[i] + weight_decay * w[i];
    const float vel = momentum * u[i] + (1.0f - momentum) * grad;
    u[i] = vel;
    w[i] = w[i] - lr * vel;
}

// inv_c1 = 1/(1-beta1^t), inv_c2 = 1/(1-beta2^t), computed on the host in double.
__kernel void adam_update(__global float* w, __global const float* g, __global float* m, __global float* v,
                          const int n, const float lr, const float beta1, const float beta2, const float eps,
                          const float weight_decay, const float inv_c1, const float inv_c2) {
    const int i = get_global_id(0);
    if (i >= n) return;
    const float grad = g[i] + weight_decay * w[i];
    const float mi = beta1 * m[i] + (1.0f - beta1) * grad;
    const float vi = beta2 * v[i] + (1.0f - beta2) * grad * grad;
    m[i] = mi;
    v[i] = vi;
    w[i] = w[i] - lr * (mi * inv_c1) / (sqrt(vi * inv_c2) + eps);
}
