// Fused optimiser updates, in place over compact parameter/state buffers (one
// pass instead of the ~10 kernels of the NDArray fallback). Same formulas as
// needle.optim (docs/backends.md §3); the bias corrections 1 - beta^t arrive
// precomputed from the host.

extern "C" __global__ void sgd_update(float* w, const float* g, float* u, long long n,
                                      float lr, float momentum, float weight_decay) {
    const long long step = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
        const float wi = w[i];
        const float gi = g[i] + weight_decay * wi;
        const float ui = momentum * u[i] + (1.0f - momentum) * gi;
        u[i] = ui;
        w[i] = wi - lr * ui;
    }
}

extern "C" __global__ void adam_update(float* w, const float* g, float* m, float* v, long long n,
                                       float lr, float beta1, float beta2, float eps, float weight_decay,
                                       float bias1, float bias2) {
    const long long step = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
        const float wi = w[i];
        const float gi = g[i] + weight_decay * wi;
        const float mi = beta1 * m[i] + (1.0f - beta1) * gi;
        const float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        w[i] = wi - lr * (mi / bias1) / (sqrtf(vi / bias2) + eps);
    }
}
