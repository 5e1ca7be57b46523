// SGEMM (fp32, no TF32): C (M x N) = A (M x K) @ B (K x N), all row-major and
// compact. The course's matmul(a, b, out, m, n, p) maps to M=m, K=n, N=p.
// blockIdx.z walks a batch: operand z starts at z * stride{A,B,C} elements.
// Parameters: pointers, then 64-bit, then 32-bit (no padding in the arg buffer).

// --- small or skinny products: one 16x16 shared-memory tile per block ----------
#define NDL_T16 16

extern "C" __global__ void sgemm_tiled16(const float* A, const float* B, float* C,
                                         long long strideA, long long strideB, long long strideC,
                                         int M, int K, int N) {
    __shared__ float As[NDL_T16][NDL_T16 + 1];  // +1: no bank conflicts on column reads
    __shared__ float Bs[NDL_T16][NDL_T16 + 1];
    A += blockIdx.z * strideA;
    B += blockIdx.z * strideB;
    C += blockIdx.z * strideC;
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int row = blockIdx.y * NDL_T16 + ty;
    const int col = blockIdx.x * NDL_T16 + tx;
    float acc = 0.0f;
    for (int k0 = 0; k0 < K; k0 += NDL_T16) {
        As[ty][tx] = (row < M && k0 + tx < K) ? A[(long long)row * K + k0 + tx] : 0.0f;
        Bs[ty][tx] = (k0 + ty < K && col < N) ? B[(long long)(k0 + ty) * N + col] : 0.0f;
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < NDL_T16; ++kk) acc += As[ty][kk] * Bs[kk][tx];
        __syncthreads();
    }
    if (row < M && col < N) C[(long long)row * N + col] = acc;
}

// --- large products: 128x128 block tile, 8-deep k slices, 8x8 per thread ---------
// 256 threads as a 16x16 grid (ty, tx). Thread rows: ty*4 + {0..3} and 64 + ty*4 +
// {0..3}; columns likewise with tx. The split halves make the float4 reads of the
// shared tiles conflict-free. A's slice is stored transposed (As[k][m]) so both
// operands are read as float4 along the output axes. Shared tiles are double
// buffered: the next slice is fetched into registers while this one is multiplied,
// so one barrier per slice suffices.
#define NDL_BM 128
#define NDL_BN 128
#define NDL_BK 8
#define NDL_APAD 4  // As row padding: the transposed stores hit distinct banks

// Four consecutive elements p[col..col+3] of one row, zeros outside the matrix.
// `vec`: the row start is 16-byte aligned (row length % 4 == 0), so a float4 load
// is legal when all four are inside.
__device__ __forceinline__ float4 ndl_load_row4(const float* p, bool row_ok, int col, int ncols, bool vec) {
    float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (!row_ok) return v;
    if (vec && col + 3 < ncols) return *reinterpret_cast<const float4*>(p + col);
    if (col + 0 < ncols) v.x = p[col + 0];
    if (col + 1 < ncols) v.y = p[col + 1];
    if (col + 2 < ncols) v.z = p[col + 2];
    if (col + 3 < ncols) v.w = p[col + 3];
    return v;
}

extern "C" __global__ void __launch_bounds__(256)
sgemm_128x128(const float* A, const float* B, float* C,
              long long strideA, long long strideB, long long strideC,
              int M, int K, int N) {
    __shared__ __align__(16) float As[2][NDL_BK][NDL_BM + NDL_APAD];
    __shared__ __align__(16) float Bs[2][NDL_BK][NDL_BN];
    A += blockIdx.z * strideA;
    B += blockIdx.z * strideB;
    C += blockIdx.z * strideC;

    const int tid = threadIdx.x;
    const int tx = tid & 15, ty = tid >> 4;
    const int row0 = blockIdx.y * NDL_BM, col0 = blockIdx.x * NDL_BN;
    const bool vecA = (K & 3) == 0, vecB = (N & 3) == 0, vecC = (N & 3) == 0;

    // Global -> shared mapping: A slice 128x8 as 256 float4 (row tid/2, k 0 or 4);
    // B slice 8x128 as 256 float4 (k tid/32, columns 4*(tid%32)).
    const int a_row = tid >> 1, a_k = (tid & 1) << 2;
    const int b_k = tid >> 5, b_col = (tid & 31) << 2;
    const float* a_ptr = A + (long long)(row0 + a_row) * K;
    const bool a_ok = row0 + a_row < M;

    float acc[8][8];
#pragma unroll
    for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[i][j] = 0.0f;

    float4 ra = ndl_load_row4(a_ptr, a_ok, a_k, K, vecA);
    float4 rb = ndl_load_row4(B + (long long)b_k * N, b_k < K, col0 + b_col, N, vecB);
    As[0][a_k + 0][a_row] = ra.x;
    As[0][a_k + 1][a_row] = ra.y;
    As[0][a_k + 2][a_row] = ra.z;
    As[0][a_k + 3][a_row] = ra.w;
    *reinterpret_cast<float4*>(&Bs[0][b_k][b_col]) = rb;
    __syncthreads();

    int cur = 0;
    for (int k0 = 0; k0 < K; k0 += NDL_BK) {
        const bool more = k0 + NDL_BK < K;
        if (more) {  // prefetch the next slice; it lands in shared memory after the math
            const int kn = k0 + NDL_BK;
            ra = ndl_load_row4(a_ptr, a_ok, kn + a_k, K, vecA);
            rb = ndl_load_row4(B + (long long)(kn + b_k) * N, kn + b_k < K, col0 + b_col, N, vecB);
        }
#pragma unroll
        for (int kk = 0; kk < NDL_BK; ++kk) {
            const float4 a0 = *reinterpret_cast<const float4*>(&As[cur][kk][ty * 4]);
            const float4 a1 = *reinterpret_cast<const float4*>(&As[cur][kk][64 + ty * 4]);
            const float4 b0 = *reinterpret_cast<const float4*>(&Bs[cur][kk][tx * 4]);
            const float4 b1 = *reinterpret_cast<const float4*>(&Bs[cur][kk][64 + tx * 4]);
            const float af[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
            const float bf[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
            for (int i = 0; i < 8; ++i)
#pragma unroll
                for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(af[i], bf[j], acc[i][j]);
        }
        if (more) {  // the other buffer: nobody reads it until after the barrier
            const int nxt = cur ^ 1;
            As[nxt][a_k + 0][a_row] = ra.x;
            As[nxt][a_k + 1][a_row] = ra.y;
            As[nxt][a_k + 2][a_row] = ra.z;
            As[nxt][a_k + 3][a_row] = ra.w;
            *reinterpret_cast<float4*>(&Bs[nxt][b_k][b_col]) = rb;
        }
        __syncthreads();
        cur ^= 1;
    }

#pragma unroll
    for (int i = 0; i < 8; ++i) {
        const int row = row0 + (i < 4 ? ty * 4 + i : 64 + ty * 4 + (i - 4));
        if (row >= M) continue;
        float* c = C + (long long)row * N;
#pragma unroll
        for (int half = 0; half < 2; ++half) {
            const int col = col0 + half * 64 + tx * 4;
            const float* v = &acc[i][half * 4];
            if (vecC && col + 3 < N) {
                *reinterpret_cast<float4*>(c + col) = make_float4(v[0], v[1], v[2], v[3]);
            } else {
#pragma unroll
                for (int q = 0; q < 4; ++q)
                    if (col + q < N) c[col + q] = v[q];
            }
        }
    }
}

// --- convolution: im2col for NHWC input (already zero-padded) ------------------
// col is (Nb*Ho*Wo) x (K*K*C): row (n, ho, wo), column (kh, kw, c), matching the
// weight's (K, K, C_in, C_out) layout seen as a (K*K*C_in) x C_out matrix, so
// conv = col @ w lands directly in the NHWC output.
extern "C" __global__ void im2col_nhwc(const float* a, float* col, long long total,
                                       int H, int W, int C, int K, int Ho, int Wo, int stride) {
    const long long step = (long long)gridDim.x * blockDim.x;
    for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += step) {
        long long t = idx;
        const int c = (int)(t % C); t /= C;
        const int kw = (int)(t % K); t /= K;
        const int kh = (int)(t % K); t /= K;
        const int wo = (int)(t % Wo); t /= Wo;
        const int ho = (int)(t % Ho); t /= Ho;  // t is now the image index n
        const long long src = ((t * H + (long long)ho * stride + kh) * W + (long long)wo * stride + kw) * C + c;
        col[idx] = a[src];
    }
}
