// The strided copy engine (see strided.h).
#include "strided.h"

#include <algorithm>
#include <cstring>

#include "odometer.h"
#include "parallel.h"
#include "simd.h"


namespace needle {

namespace {

constexpr int64_t kGrain = 1 << 15;  // elements per thread below which copies stay serial

// The plan without dims a and b (a < b or b < a), for iterating the outer dims of a
// transpose.
CopyPlan without(const CopyPlan& p, int a, int b) {
  CopyPlan q;
  q.numel = 1;
  for (int k = 0; k < (int)p.shape.size(); ++k) {
    if (k == a || k == b) continue;
    q.shape.push_back(p.shape[k]);
    q.src.push_back(p.src[k]);
    q.dst.push_back(p.dst[k]);
    q.numel *= p.shape[k];
  }
  return q;
}

// 16x16 tile: d[i * d_ld + j] = s[j * s_ld + i] for i, j < 16.
inline void transpose16(const float* s, int64_t s_ld, float* d, int64_t d_ld) {
#if defined(__AVX512F__)
  __m512 r[16];
  for (int j = 0; j < 16; ++j) r[j] = _mm512_loadu_ps(s + j * s_ld);
  transpose16x16(r);
  for (int i = 0; i < 16; ++i) _mm512_storeu_ps(d + i * d_ld, r[i]);
#else
  for (int j = 0; j < 16; ++j)
    for (int i = 0; i < 16; ++i) d[i * d_ld + j] = s[j * s_ld + i];
#endif
}

// Block of na x nb: d[i * d_ld + j] = s[j * s_ld + i].
void transpose_block(const float* s, int64_t s_ld, float* d, int64_t d_ld, int64_t na, int64_t nb) {
  int64_t i = 0;
  for (; i + 16 <= na; i += 16) {
    int64_t j = 0;
    for (; j + 16 <= nb; j += 16) transpose16(s + j * s_ld + i, s_ld, d + i * d_ld + j, d_ld);
    for (int64_t ii = i; ii < i + 16; ++ii)
      for (int64_t jj = j; jj < nb; ++jj) d[ii * d_ld + jj] = s[jj * s_ld + ii];
  }
  for (; i < na; ++i)
    for (int64_t j = 0; j < nb; ++j) d[i * d_ld + j] = s[j * s_ld + i];
}

// Copy where dim a is contiguous in src and dim b contiguous in dst: cache-blocked
// transposes of 64x64 blocks, every other dim an outer loop.
void copy_transposed(const float* src, float* dst, const CopyPlan& p, int a, int b) {
  constexpr int64_t B = 64;
  CopyPlan outer = without(p, a, b);
  int64_t na = p.shape[a], nb = p.shape[b];
  int64_t ba = (na + B - 1) / B, bb = (nb + B - 1) / B;
  int64_t s_ld = p.src[b], d_ld = p.dst[a];
  int64_t tasks = outer.numel * ba * bb;
  parallel_for(tasks, std::max<int64_t>(1, kGrain / (B * B)), [&](int64_t lo, int64_t hi) {
    Odometer od(outer.shape, outer.src, outer.dst, (int)outer.shape.size());
    int64_t cur = -1;
    for (int64_t t = lo; t < hi; ++t) {
      int64_t o = t / (ba * bb), blk = t % (ba * bb);
      if (o != cur) {
        od.seek(o);
        cur = o;
      }
      int64_t i0 = (blk / bb) * B, j0 = (blk % bb) * B;
      transpose_block(src + od.o0 + i0 + j0 * s_ld, s_ld, dst + od.o1 + i0 * d_ld + j0, d_ld,
                      std::min(B, na - i0), std::min(B, nb - j0));
    }
  }, 1);
}

// Copy row by row: the last dim is an inner loop with its own strides.
void copy_rows(const float* src, float* dst, const CopyPlan& p) {
  int nd = (int)p.shape.size();
  int64_t L = p.shape[nd - 1], sl = p.src[nd - 1], dl = p.dst[nd - 1];
  int64_t rows = p.numel / L;
  auto row = [&](const float* s, float* d, int64_t n) {
    if (sl == 1 && dl == 1) {
      std::memcpy(d, s, n * sizeof(float));
    } else if (sl == 0 && dl == 1) {
      std::fill_n(d, n, *s);
    } else {
      for (int64_t i = 0; i < n; ++i) d[i * dl] = s[i * sl];
    }
  };
  if (rows == 1) {  // one long row: split it
    parallel_for(L, kGrain, [&](int64_t lo, int64_t hi) { row(src + lo * sl, dst + lo * dl, hi - lo); });
    return;
  }
  parallel_for(rows, std::max<int64_t>(1, kGrain / L), [&](int64_t lo, int64_t hi) {
    Odometer od(p.shape, p.src, p.dst, nd - 1);
    od.seek(lo);
    for (int64_t r = lo; r < hi; ++r, od.next()) row(src + od.o0, dst + od.o1, L);
  }, 1);
}

}  // namespace

Shape compact_strides(const Shape& shape) {
  Shape s(shape.size());
  int64_t acc = 1;
  for (int k = (int)shape.size() - 1; k >= 0; --k) {
    s[k] = acc;
    acc *= shape[k];
  }
  return s;
}

CopyPlan plan_copy(const Shape& shape, const Shape& src, const Shape& dst) {
  CopyPlan p;
  p.numel = 1;
  for (int64_t d : shape) p.numel *= d;
  if (p.numel == 0) return p;
  for (size_t k = 0; k < shape.size(); ++k) {
    if (shape[k] == 1) continue;
    if (!p.shape.empty() && p.src.back() == src[k] * shape[k] && p.dst.back() == dst[k] * shape[k]) {
      p.shape.back() *= shape[k];  // outer dim k-1 steps exactly over dim k: merge
      p.src.back() = src[k];
      p.dst.back() = dst[k];
    } else {
      p.shape.push_back(shape[k]);
      p.src.push_back(src[k]);
      p.dst.push_back(dst[k]);
    }
  }
  return p;
}

void strided_copy(const float* src, float* dst, const CopyPlan& p) {
  if (p.numel == 0) return;
  int nd = (int)p.shape.size();
  if (nd == 0) {
    *dst = *src;
    return;
  }
  // a permuted view: some other dim is contiguous in the source while the last dim
  // is contiguous in the destination (compact), or the reverse (setitem)
  int last = nd - 1;
  if (nd >= 2 && p.shape[last] >= 8) {
    for (int k = 0; k < last; ++k) {
      if (p.shape[k] < 8) continue;
      if (p.dst[last] == 1 && p.src[k] == 1 && p.src[last] != 1) return copy_transposed(src, dst, p, k, last);
      if (p.src[last] == 1 && p.dst[k] == 1 && p.dst[last] != 1) return copy_transposed(src, dst, p, last, k);
    }
  }
  copy_rows(src, dst, p);
}

void strided_fill(float* dst, const Shape& shape, const Shape& strides, float val) {
  Shape zeros(shape.size(), 0);
  CopyPlan p = plan_copy(shape, zeros, strides);
  strided_copy(&val, dst, p);
}

}  // namespace needle
