// Packed SGEMM in the Goto/BLIS style, for row-major operands.
//
// For each KC x NC block of B (packed, sized for L2) the thread packs MR x KC
// micro-panels of A (L1) and runs the register-blocked micro-kernel over NR-wide
// micro-panels of B. The micro-kernel keeps an MR x NR tile
// of C in registers: with AVX-512, 14 x 32 floats = 28 zmm accumulators, two B
// vectors and one broadcast A value per k step (28 FMAs per 16 loads). A reaches the
// packing as strided rows (plain or transposed) or as gathered rows (StridedA,
// GatheredA): the micro-kernel only ever sees packed panels.
#include "gemm.h"

#include <algorithm>
#include <array>
#include <utility>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>
#include <new>

#include "parallel.h"
#include "simd.h"

namespace needle {

namespace {

#if defined(NEEDLE_GEMM_MR)
constexpr int MR = NEEDLE_GEMM_MR, NV = NEEDLE_GEMM_NV;  // tuning experiments
#elif defined(__AVX512F__)
constexpr int MR = 14, NV = 2;  // 32 zmm registers
#else
constexpr int MR = 6, NV = 2;   // 16 ymm/xmm registers
#endif
constexpr int NR = NV * VL;
#ifndef NEEDLE_GEMM_KC
#define NEEDLE_GEMM_KC 256
#define NEEDLE_GEMM_NC 512
#endif
constexpr int64_t KC = NEEDLE_GEMM_KC;  // A micro-panel MR x KC (14 KB) stays in L1
constexpr int64_t NC = NEEDLE_GEMM_NC;  // B block KC x NC (512 KB) stays in L2

// The depth of each k block: n split into equal blocks of at most about KC (a multiple
// of 16, pack_a's transpose width), so n = 784 runs 4 x ~200 rather than 3 x 256 + 16,
// whose last pass reloads and stores every C tile for 16 FMAs per element.
int64_t k_block(int64_t n) {
  const int64_t blocks = (n + KC - 1) / KC;
  const int64_t even = ((n + blocks - 1) / blocks + 15) / 16 * 16;
  return std::min(n, even);
}

struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<float, FreeDeleter>;

Buffer alloc_floats(int64_t n) {
  auto* p = static_cast<float*>(std::aligned_alloc(64, ((size_t)n * sizeof(float) + 63) / 64 * 64));
  if (!p) throw std::bad_alloc();
  return Buffer(p);
}

// A thread's packing buffers, kept between calls up to 8 MB (pool threads live on): a
// GEMM then allocates nothing. Allocated per call, buffers above glibc's mmap threshold
// were fresh mappings, page-faulted in on every call.
class PackingSpace {
 public:
  explicit PackingSpace(int64_t floats) {
    constexpr int64_t kKeptFloats = int64_t{1} << 21;
    thread_local Buffer kept;
    thread_local int64_t kept_floats = 0;
    if (floats > kKeptFloats) {
      own_ = alloc_floats(floats);
      ptr_ = own_.get();
      return;
    }
    if (kept_floats < floats) kept = alloc_floats(kept_floats = floats);
    ptr_ = kept.get();
  }
  float* get() const { return ptr_; }

 private:
  Buffer own_;
  float* ptr_;
};

#if defined(__AVX512F__) || defined(__AVX2__)
// The first `lanes` lanes of a vector at an unaligned address, the others untouched:
// AVX-512 has lane-mask registers, AVX2 a per-lane sign mask.
#if defined(__AVX512F__)
using LaneMask = __mmask16;
inline LaneMask lane_mask(int lanes) { return (__mmask16)((1u << lanes) - 1); }
inline vfloat load_lanes(const float* p, LaneMask m) { return (vfloat)_mm512_maskz_loadu_ps(m, p); }
inline void store_lanes(float* p, LaneMask m, vfloat x) { _mm512_mask_storeu_ps(p, m, (__m512)x); }
#else
using LaneMask = __m256i;
inline LaneMask lane_mask(int lanes) {
  alignas(32) static constexpr int kLane[8] = {0, 1, 2, 3, 4, 5, 6, 7};
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes), _mm256_load_si256((const __m256i*)kLane));
}
inline vfloat load_lanes(const float* p, LaneMask m) { return (vfloat)_mm256_maskload_ps(p, m); }
inline void store_lanes(float* p, LaneMask m, vfloat x) { _mm256_maskstore_ps(p, m, (__m256)x); }
#endif
#endif

// dst[0, width) = src[0, n) then zeros, for n <= width <= NV * VL: one row of a packed
// micro-panel. Vectors with lane masks: a libc memcpy call per row of 14 or 32 floats
// costs more than the copy.
inline void copy_row(float* dst, int width, const float* src, int n) {
#if defined(__AVX512F__) || defined(__AVX2__)
  for (int v = 0; v * VL < width; ++v) {
    const int in = std::clamp(n - v * VL, 0, VL), out = std::min(VL, width - v * VL);
    const vfloat x = in == VL ? vload(src + v * VL) : in > 0 ? load_lanes(src + v * VL, lane_mask(in)) : vsplat(0.0f);
    if (out == VL)
      vstore(dst + v * VL, x);
    else
      store_lanes(dst + v * VL, lane_mask(out), x);
  }
#else
  std::memcpy(dst, src, n * sizeof(float));
  std::fill(dst + n, dst + width, 0.0f);
#endif
}

// An edge tile of C: only mr rows and nr columns are valid. AVX-512 and AVX2 write the
// partial vector with a lane mask (no tile round trip through memory, no scalar loop:
// the 4-column remainder of p = 100 and the p = 10 classifier are edge tiles).
template <int M, int V>
inline void store_edge(vfloat (&c)[M][V], float* C, int64_t ldc, int mr, int nr, bool accumulate) {
#if defined(__AVX512F__) || defined(__AVX2__)
  for (int v = 0; v < V; ++v) {
    const int lanes = std::min(VL, nr - v * VL);
    if (lanes <= 0) break;
    const LaneMask mask = lane_mask(lanes);
    for (int i = 0; i < mr; ++i) {
      float* dst = C + i * ldc + v * VL;
      const vfloat x = accumulate ? c[i][v] + load_lanes(dst, mask) : c[i][v];
      store_lanes(dst, mask, x);
    }
  }
#else
  alignas(64) float tile[M][V * VL];
  for (int i = 0; i < M; ++i)
    for (int v = 0; v < V; ++v) *reinterpret_cast<vfloat*>(&tile[i][v * VL]) = c[i][v];
  for (int i = 0; i < mr; ++i)
    for (int j = 0; j < nr; ++j) C[i * ldc + j] = accumulate ? C[i * ldc + j] + tile[i][j] : tile[i][j];
#endif
}

// C tile (mr x nr valid of M x V*VL) = or += Ap (k-major panel, row stride MR) @ Bp
// (k-major, row stride ldbp: NR for a packed panel, ldb for B read in place). M and V
// are the register block: MR x NV for full tiles, smaller for the edges of C, so a
// 2-row or 4-column remainder does not pay for a whole MR x NR tile of FMAs.
template <int M, int V>
void micro_kernel(int64_t kc, const float* __restrict Ap, const float* __restrict Bp, int64_t ldbp, float* C,
                  int64_t ldc, int mr, int nr, bool accumulate) {
  vfloat c[M][V];
#pragma GCC unroll 16
  for (int i = 0; i < M; ++i) {
    // the C tile is read/written after the k loop: start fetching it now
    __builtin_prefetch(C + i * ldc, 1, 3);
    __builtin_prefetch(C + i * ldc + V * VL - 1, 1, 3);
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) c[i][v] = vsplat(0.0f);
  }
#pragma GCC unroll 2
  for (int64_t k = 0; k < kc; ++k) {
    vfloat b[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) b[v] = vload(Bp + k * ldbp + v * VL);
#pragma GCC unroll 16
    for (int i = 0; i < M; ++i) {
      vfloat a = vsplat(Ap[k * MR + i]);
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) c[i][v] = vfma(a, b[v], c[i][v]);
    }
  }
  if (mr == M && nr == V * VL) {
#pragma GCC unroll 16
    for (int i = 0; i < M; ++i)
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) {
        float* dst = C + i * ldc + v * VL;
        vstore(dst, accumulate ? vload(dst) + c[i][v] : c[i][v]);
      }
    return;
  }
  store_edge<M, V>(c, C, ldc, mr, nr, accumulate);
}

using KernelFn = void (*)(int64_t, const float*, const float*, int64_t, float*, int64_t, int, int, bool);

template <int V, int... Ms>
constexpr std::array<KernelFn, sizeof...(Ms)> kernel_row(std::integer_sequence<int, Ms...>) {
  return {&micro_kernel<Ms + 1, V>...};
}

// kKernels[v][m - 1]: the kernel for m rows and v + 1 vectors of columns
template <int... Vs>
constexpr std::array<std::array<KernelFn, MR>, NV> kernel_table(std::integer_sequence<int, Vs...>) {
  return {kernel_row<Vs + 1>(std::make_integer_sequence<int, MR>{})...};
}
constexpr auto kKernels = kernel_table(std::make_integer_sequence<int, NV>{});

#if defined(__AVX512F__) && defined(__AVX512VL__)
// The last 1..8 columns of C with 8-lane vectors: a 512-bit FMA costs a 256-bit pair of
// issue slots (Zen 4), so a 16-lane kernel spends twice the FMA time on a remainder that
// fills at most half its lanes (p = 100 = 3 x 32 + 4: 16% of the FMAs for 4% of C).
template <int M>
void micro_kernel_narrow(int64_t kc, const float* __restrict Ap, const float* __restrict Bp, int64_t ldbp, float* C,
                         int64_t ldc, int mr, int nr, bool accumulate) {
  __m256 c[M];
#pragma GCC unroll 16
  for (int i = 0; i < M; ++i) c[i] = _mm256_setzero_ps();
#pragma GCC unroll 2
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b = _mm256_loadu_ps(Bp + k * ldbp);
#pragma GCC unroll 16
    for (int i = 0; i < M; ++i) c[i] = _mm256_fmadd_ps(_mm256_set1_ps(Ap[k * MR + i]), b, c[i]);
  }
  const __mmask8 mask = (__mmask8)((1u << nr) - 1);
  for (int i = 0; i < mr; ++i) {
    float* dst = C + i * ldc;
    __m256 x = c[i];
    if (accumulate) x = _mm256_add_ps(x, _mm256_maskz_loadu_ps(mask, dst));
    _mm256_mask_storeu_ps(dst, mask, x);
  }
}

template <int... Ms>
constexpr std::array<KernelFn, sizeof...(Ms)> narrow_row(std::integer_sequence<int, Ms...>) {
  return {&micro_kernel_narrow<Ms + 1>...};
}
constexpr auto kNarrow = narrow_row(std::make_integer_sequence<int, MR>{});
#endif

inline void run_tile(int64_t kc, const float* Ap, const float* Bp, int64_t ldbp, float* C, int64_t ldc, int mr, int nr,
                     bool accumulate) {
#if defined(__AVX512F__) && defined(__AVX512VL__)
  if (nr <= 8) return kNarrow[mr - 1](kc, Ap, Bp, ldbp, C, ldc, mr, nr, accumulate);
#endif
  kKernels[(nr + VL - 1) / VL - 1][mr - 1](kc, Ap, Bp, ldbp, C, ldc, mr, nr, accumulate);
}

// Bp[k * NR + j] = B[k, j] for k < kc, j < nr (zero beyond nr)
void pack_b(const float* B, int64_t ldb, int64_t kc, int nr, float* Bp) {
  for (int64_t k = 0; k < kc; ++k) copy_row(Bp + k * NR, NR, B + k * ldb, nr);
}

// Ap[k * MR + i] = rows[i][k] for i < mr, k < kc (zero beyond mr): row i's kc values
// are contiguous from rows[i] (a strided matrix's rows, or pieces of gathered rows)
void pack_a_rows(const float* const* rows, int mr, int64_t kc, float* Ap) {
#if defined(__AVX512F__)
  if constexpr (MR <= 16) {  // 16 k at a time: load MR row pieces, transpose, store MR-wide rows
    const __mmask16 keep = (__mmask16)((1u << MR) - 1);
    int64_t k0 = 0;
    for (; k0 + 16 <= kc; k0 += 16) {
      __m512 r[16];
      for (int i = 0; i < 16; ++i) r[i] = i < mr ? _mm512_loadu_ps(rows[i] + k0) : _mm512_setzero_ps();
      transpose16x16(r);
      for (int k = 0; k < 16; ++k) _mm512_mask_storeu_ps(Ap + (k0 + k) * MR, keep, r[k]);
    }
    for (int64_t k = k0; k < kc; ++k)
      for (int i = 0; i < MR; ++i) Ap[k * MR + i] = i < mr ? rows[i][k] : 0.0f;
    return;
  }
#endif
  for (int i = 0; i < mr; ++i)
    for (int64_t k = 0; k < kc; ++k) Ap[k * MR + i] = rows[i][k];
  for (int i = mr; i < MR; ++i)
    for (int64_t k = 0; k < kc; ++k) Ap[k * MR + i] = 0.0f;
}

void pack_a(const float* A, int64_t lda, int mr, int64_t kc, float* Ap) {
  const float* rows[MR];
  for (int i = 0; i < mr; ++i) rows[i] = A + i * lda;
  pack_a_rows(rows, mr, kc, Ap);
}

// The same panels from transposed operands (BLAS's trans flags): `At` holds A as n x m
// (At[k * lda + i] = A[i, k]), `Bt` holds B as p x n (Bt[j * ldb + k] = B[k, j]). A
// backward pass multiplies by transposes (x^T g, g W^T): reading them here saves
// materialising a transposed copy first.
void pack_b_t(const float* Bt, int64_t ldb, int64_t kc, int nr, float* Bp) {
  int j0 = 0;
#if defined(__AVX512F__)
  if constexpr (NR % 16 == 0) {  // 16 columns x 16 k at a time through a register transpose
    for (; j0 < nr; j0 += 16) {
      const int rows = std::min(16, nr - j0);
      int64_t k0 = 0;
      for (; k0 + 16 <= kc; k0 += 16) {
        __m512 r[16];
        for (int j = 0; j < 16; ++j) r[j] = j < rows ? _mm512_loadu_ps(Bt + (j0 + j) * ldb + k0) : _mm512_setzero_ps();
        transpose16x16(r);
        for (int k = 0; k < 16; ++k) _mm512_storeu_ps(Bp + (k0 + k) * NR + j0, r[k]);
      }
      for (int64_t k = k0; k < kc; ++k)
        for (int j = 0; j < 16; ++j) Bp[k * NR + j0 + j] = j < rows ? Bt[(j0 + j) * ldb + k] : 0.0f;
    }
  }
#endif
  for (int j = j0; j < nr; ++j)
    for (int64_t k = 0; k < kc; ++k) Bp[k * NR + j] = Bt[j * ldb + k];
  for (int64_t k = 0; k < kc; ++k)
    for (int j = std::max(j0, nr); j < NR; ++j) Bp[k * NR + j] = 0.0f;
}

// Which operands are stored transposed.
struct Trans {
  bool a = false, b = false;
};

// Small products: no packing, rows of C accumulated with SIMD over p.
void sgemm_small(int64_t m, int64_t n, int64_t p, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
                 int64_t ldc, Trans t) {
  if (t.a || t.b) {  // tiny products only (at most 16^3 multiply-adds): plain loops
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < p; ++j) {
        float acc = 0.0f;
        for (int64_t k = 0; k < n; ++k) acc += (t.a ? A[k * lda + i] : A[i * lda + k]) * (t.b ? B[j * ldb + k] : B[k * ldb + j]);
        C[i * ldc + j] = acc;
      }
    return;
  }
  for (int64_t i = 0; i < m; ++i) {
    float* c = C + i * ldc;
    std::fill_n(c, p, 0.0f);
    for (int64_t k = 0; k < n; ++k) {
      float a = A[i * lda + k];
      const float* b = B + k * ldb;
      int64_t j = 0;
      for (; j + VL <= p; j += VL) vstore(c + j, vfma(vsplat(a), vload(b + j), vload(c + j)));
      for (; j < p; ++j) c[j] += a * b[j];
    }
  }
}

// A copy from one row of a transposed A into its micro-panels: `len` floats from `src`
// (relative to the row) to `dst` (relative to the panels' row k), zeros up to `width`.
struct Move {
  int64_t src, dst;
  int len, width;
};

// All micro-panels of rows [0, m) of a transposed A, where `row(k)` is the start of
// stored row pc + k (A's column): rows are read in order, each scattered into the
// panels by `moves`. Reading panel by panel instead walks kc rows per panel, a cache
// miss per row when they are far apart.
template <class Row>
void pack_a_t_panels(Row&& row, const std::vector<Move>& moves, int64_t kc, float* apack) {
  int64_t k = 0;
#if defined(__AVX512F__) || defined(__AVX2__)
  if constexpr (MR <= VL) {
    // A whole vector per move, no store mask: the lanes past it land in this panel's
    // next two rows, which later moves (or rows) overwrite. Not in the last two rows.
    // Rows go 8 at a time, panel after panel: stores row by row would hop between
    // panels (MR * kc floats apart, often a multiple of 4 KB: the same L1 sets).
    constexpr int64_t kRows = 8;
    for (; k + kRows + 2 <= kc; k += kRows) {
      const float* r[kRows];
      for (int64_t q = 0; q < kRows; ++q) r[q] = row(k + q);
      for (size_t g0 = 0, g1; g0 < moves.size(); g0 = g1) {  // the moves into one panel, row by row
        for (g1 = g0 + 1; g1 < moves.size() && moves[g1].dst / (MR * kc) == moves[g0].dst / (MR * kc);) ++g1;
        for (int64_t q = 0; q < kRows; ++q)
          for (size_t m = g0; m < g1; ++m) {
            const Move& mv = moves[m];
            vstore(apack + mv.dst + (k + q) * MR, load_lanes(r[q] + mv.src, lane_mask(mv.len)));
          }
      }
    }
  }
#endif
  for (; k < kc; ++k) {
    const float* r = row(k);
    for (const Move& mv : moves) copy_row(apack + mv.dst + k * MR, mv.width, r + mv.src, mv.len);
  }
}

// Move for the columns [col, col + len) of A's rows [i0, i0 + m) that lie contiguously at
// `src` in a stored row, split at panel boundaries (the last panel's tail zeroed)
void add_moves(std::vector<Move>& out, int64_t i0, int64_t m, int64_t kc, int64_t col, int64_t len, int64_t src) {
  for (int64_t c = col; c < col + len;) {
    const int64_t i = c - i0, panel_end = std::min(m, (i / MR + 1) * MR), stop = std::min(col + len, i0 + panel_end);
    const int n = (int)(stop - c), width = stop - i0 == m ? (int)(MR - i % MR) : n;
    out.push_back(Move{src + (c - col), i / MR * MR * kc + i % MR, n, width});
    c = stop;
  }
}

// The A operands the packed GEMM reads: each packs the micro-panels of rows [i0, i0 + m)
// and columns [pc, pc + kc) into `apack` (panel after panel, each k-major, row stride MR).
struct StridedA {
  const float* A;
  int64_t lda;
  bool trans;
  void operator()(int64_t i0, int64_t m, int64_t pc, int64_t kc, float* apack) const {
    if (trans) {
      std::vector<Move> moves;
      add_moves(moves, i0, m, kc, i0, m, 0);
      return pack_a_t_panels([&](int64_t k) { return A + (pc + k) * lda + i0; }, moves, kc, apack);
    }
    for (int64_t ip = 0; ip * MR < m; ++ip)
      pack_a(A + (i0 + ip * MR) * lda + pc, lda, (int)std::min<int64_t>(MR, m - ip * MR), kc, apack + ip * MR * kc);
  }
};

// A run of gathered row columns that is contiguous in memory: columns [col, col + len)
// at `offset` from the row start.
struct Piece {
  int64_t col, len, offset;
};

// the pieces of gathered row columns [k0, k0 + len)
std::vector<Piece> pieces(const GatheredRows& g, int64_t k0, int64_t len) {
  std::vector<Piece> out;
  int s = (int)(std::upper_bound(g.starts, g.starts + g.segs, k0) - g.starts) - 1;
  for (int64_t k = k0, end = k0 + len; k < end; ++s) {
    const int64_t stop = std::min(end, g.starts[s + 1]);
    out.push_back(Piece{k, stop - k, g.offsets[s] + (k - g.starts[s])});
    k = stop;
  }
  return out;
}

struct GatheredA {
  const GatheredRows& g;
  bool trans;
  void operator()(int64_t i0, int64_t m, int64_t pc, int64_t kc, float* apack) const {
    if (trans) {  // stored row pc + k holds A's column pc + k
      std::vector<Move> moves;
      for (const Piece& q : pieces(g, i0, m)) add_moves(moves, i0, m, kc, q.col, q.len, q.offset);
      return pack_a_t_panels([&](int64_t k) { return g.rows[pc + k]; }, moves, kc, apack);
    }
    const std::vector<Piece> run = pieces(g, pc, kc);
    for (int64_t ip = 0; ip * MR < m; ++ip) {
      const int mr = (int)std::min<int64_t>(MR, m - ip * MR);
      for (const Piece& q : run) {  // rows i.. transposed piece by piece
        const float* rows[MR];
        for (int r = 0; r < mr; ++r) rows[r] = g.rows[i0 + ip * MR + r] + q.offset;
        pack_a_rows(rows, mr, q.len, apack + ip * MR * kc + (q.col - pc) * MR);
      }
    }
  }
};

// Rows of A at most this many, and B's rows at most a page apart: B's full NR-wide
// panels are read in place (row-major B) instead of packed. Each panel then serves few
// micro-panels of A, so packing it would cost a sizeable share of the products
// (100 x 784 @ 784 x 100 on 2 threads: 50 rows each, and both threads packed all of B).
// Rows further apart cost a TLB miss per k step (100 x 640 @ 640 x 10000: 25% slower).
constexpr int64_t kDirectBRows = 4 * MR, kDirectBStride = 4096 / sizeof(float);

// One thread's share: rows [i0, i0 + m) and the p columns of C (and B) given, with its
// own packing buffers. Each KC-slice of A is packed once (all its micro-panels, `apack`
// holds m x KC) and reused for every NC block of B; a micro-panel is pulled into L1 by
// its first use.
template <class PackA>
void gemm_block(const PackA& pack, int64_t i0, int64_t m, int64_t n, int64_t p, const float* B, int64_t ldb,
                bool trans_b, float* C, int64_t ldc, float* bpack, float* apack) {
  const int64_t mp = (m + MR - 1) / MR, kb = k_block(n);
  const bool direct_b = !trans_b && m <= kDirectBRows && ldb <= kDirectBStride;
  for (int64_t pc = 0; pc < n; pc += kb) {
    const int64_t kc = std::min(kb, n - pc);
    pack(i0, m, pc, kc, apack);
    for (int64_t jc = 0; jc < p; jc += NC) {
      const int64_t nc = std::min(NC, p - jc), np = (nc + NR - 1) / NR;
      for (int64_t jp = 0; jp < np; ++jp) {
        const int nr = (int)std::min<int64_t>(NR, nc - jp * NR);
        if (trans_b)
          pack_b_t(B + (jc + jp * NR) * ldb + pc, ldb, kc, nr, bpack + jp * NR * kc);
        else if (!direct_b || nr < NR)  // a partial panel is packed: in place, its loads would pass the row
          pack_b(B + pc * ldb + jc + jp * NR, ldb, kc, nr, bpack + jp * NR * kc);
      }
      for (int64_t ip = 0; ip < mp; ++ip) {
        const int mr = (int)std::min<int64_t>(MR, m - ip * MR);
        for (int64_t jp = 0; jp < np; ++jp) {
          const int nr = (int)std::min<int64_t>(NR, nc - jp * NR);
          const bool in_place = direct_b && nr == NR;
          run_tile(kc, apack + ip * MR * kc, in_place ? B + pc * ldb + jc + jp * NR : bpack + jp * NR * kc,
                   in_place ? ldb : NR, C + ip * MR * ldc + jc + jp * NR, ldc, mr, nr, pc > 0);
        }
      }
    }
  }
}

// Threads take disjoint blocks of C (a tr x tc grid) and run independently: no
// barrier, so a descheduled thread never stalls the others (the machine is shared).
// Rows split evenly (any row count: edge kernels take the remainder), columns in whole
// NR panels. The price is packing A (column split) or B (row split) once per thread.
template <class PackA>
void sgemm_packed(const PackA& pack, int64_t m, int64_t n, int64_t p, const float* B, int64_t ldb, bool trans_b,
                  float* C, int64_t ldc, int nt) {
  const int64_t pp = (p + NR - 1) / NR;
  int tr = 1;  // rows of the thread grid: the least work on the busiest thread
  double best = 1e300;
  for (int r = 1; r <= nt; ++r) {
    if (nt % r) continue;
    const int c = nt / r;
    const double rows = (double)((m + r - 1) / r), cols = (double)std::min(p, (pp + c - 1) / c * NR);
    // per k step: rows x cols multiply-adds (16 per cycle) and rows + cols floats packed
    // (about 4 per cycle)
    const double cost = rows * cols / 16 + (rows + cols) / 4;
    if (cost < best) best = cost, tr = r;
  }
  const int tc = nt / tr;
  const int64_t kc_max = k_block(n), nc_max = (std::min(NC, p) + NR - 1) / NR * NR;
  auto round64 = [](int64_t floats) { return (floats + 15) / 16 * 16; };  // keep apack 64B-aligned
  const int64_t rows_max = (m + tr - 1) / tr;
  const int64_t bsize = round64(kc_max * nc_max), asize = round64((rows_max + MR - 1) / MR * MR * kc_max);
  parallel_run(nt, [&](int tid, int) {
    const int r = tid / tc, c = tid % tc;
    const int64_t i0 = m * r / tr, i1 = m * (r + 1) / tr;
    const int64_t j0 = pp * c / tc * NR, j1 = std::min(p, pp * (c + 1) / tc * NR);
    if (i0 >= i1 || j0 >= j1) return;
    const PackingSpace space(bsize + asize);
    float* mine = space.get();
    gemm_block(pack, i0, i1 - i0, n, j1 - j0, trans_b ? B + j0 * ldb : B + j0, ldb, trans_b, C + i0 * ldc + j0, ldc,
               mine, mine + bsize);
  });
}

// C = 0 when the inner dimension is empty; false when there is nothing else to do
bool has_products(int64_t m, int64_t n, int64_t p, float* C, int64_t ldc) {
  if (m <= 0 || p <= 0) return false;
  if (n > 0) return true;
  for (int64_t i = 0; i < m; ++i) std::fill_n(C + i * ldc, p, 0.0f);
  return false;
}

void gemm(int64_t m, int64_t n, int64_t p, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
          int64_t ldc, int max_threads, Trans t = {}) {
  if (!has_products(m, n, p, C, ldc)) return;
  const double work = (double)m * n * p;
  if (work <= 16.0 * 16 * 16 || (m < 4 && !t.a && !t.b)) return sgemm_small(m, n, p, A, lda, B, ldb, C, ldc, t);
  // a thread per ~2 MFLOP at least: waking one costs a few microseconds
  int nt = (int)std::min<double>(max_threads, std::max(1.0, work / (1 << 20)));
  sgemm_packed(StridedA{A, lda, t.a}, m, n, p, B, ldb, t.b, C, ldc, nt);
}

}  // namespace

void sgemm(int64_t m, int64_t n, int64_t p, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
           int64_t ldc) {
  gemm(m, n, p, A, lda, B, ldb, C, ldc, num_threads());
}

void sgemm_serial(int64_t m, int64_t n, int64_t p, const float* A, int64_t lda, const float* B, int64_t ldb,
                  float* C, int64_t ldc) {
  gemm(m, n, p, A, lda, B, ldb, C, ldc, 1);
}

void sgemm_trans(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t p, const float* A, int64_t lda,
                 const float* B, int64_t ldb, float* C, int64_t ldc) {
  gemm(m, n, p, A, lda, B, ldb, C, ldc, num_threads(), Trans{trans_a, trans_b});
}

void sgemm_trans_serial(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t p, const float* A, int64_t lda,
                        const float* B, int64_t ldb, float* C, int64_t ldc) {
  gemm(m, n, p, A, lda, B, ldb, C, ldc, 1, Trans{trans_a, trans_b});
}

void sgemm_gathered_serial(bool trans_a, int64_t m, int64_t n, int64_t p, const GatheredRows& A, const float* B,
                           int64_t ldb, float* C, int64_t ldc) {
  if (has_products(m, n, p, C, ldc)) sgemm_packed(GatheredA{A, trans_a}, m, n, p, B, ldb, false, C, ldc, 1);
}

}  // namespace needle
