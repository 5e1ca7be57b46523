// SGEMM, batched over dimension 2 of the NDRange: C[b] (M x P) = A[b] (M x N) @ B[b] (N x P).
//
// Two variants; runtime.py picks one per device (kernels.py picks matmul_direct over
// pack_b + matmul_packed when B is small):
//   * "packed" for devices whose local memory is ordinary cached RAM (CPUs, PoCL):
//     B is first repacked into zero-padded panels of 16 columns, k-major, so the main
//     kernel streams one contiguous panel (no 4 KiB-strided rows, no TLB misses) and
//     keeps an RM x 16 block of C in registers (RM float16 accumulators), reading RM
//     rows of A. Padding makes the inner loop branch-free for any M, N, P; only the
//     stores check. No barriers: PoCL spills values that live across a barrier.
//   * "local" for devices with dedicated local memory (GPUs): 64 x 64 tiles of C per
//     work-group, A and B tiles staged in local memory, 4 x 4 outputs per work-item.

#if RM != 8
#error "matmul_packed spells out 8 rows (RM_ROWS); source.MATMUL_RM must be 8"
#endif

// Bp[b][jb][k][c] = B[b][k][jb*16 + c], zero past column P.
__kernel void pack_b(__global const float* B, __global float* Bp, const int N, const int P) {
    const int k = get_global_id(0), jb = get_global_id(1), b = get_global_id(2);
    if (k >= N) return;
    const int njb = get_global_size(1);
    __global const float* src = B + ((size_t)b * N + k) * P + jb * 16;
    __global float* dst = Bp + (((size_t)b * njb + jb) * N + k) * 16;
    if (jb * 16 + 16 <= P) {
        vstore16(vload16(0, src), 0, dst);
    } else {
        for (int c = 0; c < 16; ++c) dst[c] = (jb * 16 + c < P) ? src[c] : 0.0f;
    }
}

// The RM = 8 rows of a block, spelled out: drivers (PoCL's LLVM) do not unroll a loop
// over a private array of vectors, which then lives on the stack and every multiply-add
// goes through memory; eight named accumulators stay in registers.
#define RM_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)

void store_row16(__global float* c, const int row, const int M, const int P, const int col, const float16 v) {
    if (row >= M) return;
    if (col + 16 <= P) {
        vstore16(v, 0, c + (size_t)row * P + col);
    } else {
        float vals[16];
        vstore16(v, 0, vals);
        for (int j = 0; col + j < P; ++j) c[(size_t)row * P + col + j] = vals[j];
    }
}

// The RM x 16 block of C at (row block ib, column panel jb) of batch b; LOAD_B(k) is
// the 16 values of row k of B in the panel (zero past column P).
#define MATMUL_BLOCK(LOAD_B)                                                                  \
    __global const float* a = A + (size_t)b * M * N;                                          \
    RM_ROWS(ROW_PTR)                                                                          \
    RM_ROWS(ACC_INIT)                                                                         \
    for (int k = 0; k < N; ++k) {                                                             \
        const float16 bv = LOAD_B(k);                                                         \
        RM_ROWS(ACC_STEP)                                                                     \
    }                                                                                         \
    __global float* c = C + (size_t)b * M * P;                                                \
    RM_ROWS(STORE)
// rows past M re-read row M-1 (always in bounds); their results are never stored
#define ROW_PTR(r) __global const float* a##r = a + (size_t)min(ib * RM + r, M - 1) * N;
#define ACC_INIT(r) float16 acc##r = (float16)(0.0f);
#define ACC_STEP(r) acc##r = MAC((float16)(a##r[k]), bv, acc##r);
#define STORE(r) store_row16(c, ib * RM + r, M, P, jb * 16, acc##r);

__kernel void matmul_packed(__global const float* A, __global const float* Bp, __global float* C,
                            const int M, const int N, const int P, const int njb) {
    const int jb = get_global_id(0), ib = get_global_id(1), b = get_global_id(2);
    if (jb >= njb) return;
    __global const float* bp = Bp + ((size_t)b * njb + jb) * N * 16;
#define PACKED_ROW(k) vload16((k), bp)
    MATMUL_BLOCK(PACKED_ROW)
}

// Up to 16 values of a row of B from col on, zero past P.
float16 load_b16(__global const float* row, const int cols) {
    if (cols >= 16) return vload16(0, row);
    float vals[16];
    for (int j = 0; j < 16; ++j) vals[j] = (j < cols) ? row[j] : 0.0f;
    return vload16(0, vals);
}

// The same block reading B in place: for a small B (it stays in cache) this saves the
// pack_b launch, which costs more than the strided reads.
__kernel void matmul_direct(__global const float* A, __global const float* B, __global float* C,
                            const int M, const int N, const int P, const int njb) {
    const int jb = get_global_id(0), ib = get_global_id(1), b = get_global_id(2);
    if (jb >= njb) return;
    __global const float* bb = B + (size_t)b * N * P + jb * 16;
    const int cols = P - jb * 16;
    if (cols >= 16) {  // a full panel: the loop without a branch
#define DIRECT_ROW(k) vload16(0, bb + (size_t)(k) * P)
        MATMUL_BLOCK(DIRECT_ROW)
    } else {
#define EDGE_ROW(k) load_b16(bb + (size_t)(k) * P, cols)
        MATMUL_BLOCK(EDGE_ROW)
    }
}

#define TILE 64
#define TK 16
#define WI 16  // work-items per tile side: each computes (TILE/WI)^2 = 16 outputs

__kernel void matmul_local(__global const float* A, __global const float* B, __global float* C,
                           const int M, const int N, const int P) {
    __local float As[TK][TILE + 1];
    __local float Bs[TK][TILE + 1];
    const int tx = get_local_id(0), ty = get_local_id(1), b = get_global_id(2);
    const int row0 = get_group_id(1) * TILE, col0 = get_group_id(0) * TILE;
    const int lid = ty * WI + tx;
    A += (size_t)b * M * N;
    B += (size_t)b * N * P;
    float acc[TILE / WI][TILE / WI];
    for (int i = 0; i < TILE / WI; ++i)
        for (int j = 0; j < TILE / WI; ++j) acc[i][j] = 0.0f;
    for (int k0 = 0; k0 < N; k0 += TK) {
        for (int t = lid; t < TILE * TK; t += WI * WI) {
            const int r = t / TK, c = t % TK;  // A tile: TILE rows x TK columns
            As[c][r] = (row0 + r < M && k0 + c < N) ? A[(size_t)(row0 + r) * N + k0 + c] : 0.0f;
            const int br = t / TILE, bc = t % TILE;  // B tile: TK rows x TILE columns
            Bs[br][bc] = (k0 + br < N && col0 + bc < P) ? B[(size_t)(k0 + br) * P + col0 + bc] : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int k = 0; k < TK; ++k) {
            float av[TILE / WI], bv[TILE / WI];
            for (int i = 0; i < TILE / WI; ++i) av[i] = As[k][ty + WI * i];
            for (int j = 0; j < TILE / WI; ++j) bv[j] = Bs[k][tx + WI * j];
            for (int i = 0; i < TILE / WI; ++i)
                for (int j = 0; j < TILE / WI; ++j) acc[i][j] = MAC(av[i], bv[j], acc[i][j]);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    __global float* c = C + (size_t)b * M * P;
    for (int i = 0; i < TILE / WI; ++i) {
        const int row = row0 + ty + WI * i;
        for (int j = 0; j < TILE / WI; ++j) {
            const int col = col0 + tx + WI * j;
            if (row < M && col < P) c[(size_t)row * P + col] = acc[i][j];
        }
    }
}
