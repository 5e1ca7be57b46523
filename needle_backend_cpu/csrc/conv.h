// What the convolution kernels share: the geometry of an NHWC convolution and the
// window copy (im2col) both the forward and the weight gradient run over chunks of
// output pixels.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "gemm.h"
#include "parallel.h"

namespace needle {

// Input (N, H, W, C), kernel (KH, KW, C, Co), output (N, Ho, Wo, Co); output pixel
// (y, x)'s window starts at input row y*stride - pad_h and column x*stride - pad_w
// (negative: zero padding, not in memory).
struct ConvDims {
  int64_t N, H, W, C, KH, KW, Co, stride, pad_h, pad_w, Ho, Wo;
  int64_t rows() const { return N * Ho * Wo; }
  int64_t kdim() const { return KH * KW * C; }
};

// The kernel taps [lo, hi) along one axis that some window puts on the image: taps
// outside only ever meet padding (a 3x3 kernel over a 1x1 image padded by 1 has one
// live tap per axis), so the products can skip them.
struct TapRange {
  int64_t lo, hi;
};
inline TapRange live_taps(int64_t k, int64_t extent, int64_t pad, int64_t stride, int64_t out) {
  const int64_t lo = std::max<int64_t>(0, pad - (out - 1) * stride), hi = std::min<int64_t>(k, extent + pad);
  return {std::min(lo, hi), hi};
}

// `d` restricted to the live taps: the kernel shrinks to th x tw, the padding with it.
inline ConvDims trimmed(const ConvDims& d, TapRange th, TapRange tw) {
  ConvDims t = d;
  t.KH = th.hi - th.lo, t.KW = tw.hi - tw.lo;
  t.pad_h = d.pad_h - th.lo, t.pad_w = d.pad_w - tw.lo;
  return t;
}

// The geometry of a convolution of x (shape_x, unpadded) with a (K, K, C_in, C_out)
// kernel, zero padding `pad` on each side of H and W; clear errors for bad shapes.
ConvDims check_dims(const char* kernel, const std::vector<int64_t>& shape_x, const std::vector<int64_t>& shape_w,
                    int64_t stride, int64_t pad);

// `d` without the kernel taps that only meet padding, and where its rows sit in the
// full (K*K*C, Co) kernel: trimmed row k2 is full row offset(k2).
struct Trim {
  ConvDims t;
  int64_t lo_h, lo_w, KW;
  int64_t offset(int64_t k2) const {
    const int64_t L = t.KW * t.C, kh = k2 / L, rest = k2 % L;
    return ((kh + lo_h) * KW + lo_w) * t.C + rest;
  }
};
Trim trim(const ConvDims& d);

struct Pads {
  int64_t top, bottom, left, right;
};

// x (N, H, W, C) zero-padded by `p`
std::unique_ptr<float[]> pad_nhwc(const float* x, int64_t N, int64_t H, int64_t W, int64_t C, Pads p);

// An input zero-padded in memory as far as the windows of `t` (its padding applied)
// reach, and their geometry in it (pad 0): each window then is whole kernel rows of
// contiguous floats, which a GEMM reads in place. No copy when no window meets padding.
struct PaddedInput {
  std::unique_ptr<float[]> copy;  // empty when the windows meet no padding
  const float* base;              // the padded input
  ConvDims d;
};
PaddedInput pad_input(const float* x, const ConvDims& t);

// top-left of output pixel `row`'s window in an input without padding (`d`'s pad is 0)
inline const float* window(const float* a, int64_t row, const ConvDims& d) {
  const int64_t wo = row % d.Wo, ho = (row / d.Wo) % d.Ho, n = row / (d.Wo * d.Ho);
  return a + ((n * d.H + ho * d.stride) * d.W + wo * d.stride) * d.C;
}

// The windows of output pixels as GEMM rows gathered straight from an input without
// padding (`d`'s pad is 0): KH segments, one per kernel row, of KW*C contiguous floats,
// so the GEMM packs its panels from the input with no window copy.
class WindowRows {
 public:
  explicit WindowRows(const ConvDims& d) : d_(d), starts_(d.KH + 1), offsets_(d.KH) {
    for (int64_t kh = 0; kh <= d.KH; ++kh) starts_[kh] = kh * d.KW * d.C;
    for (int64_t kh = 0; kh < d.KH; ++kh) offsets_[kh] = kh * d.W * d.C;
  }
  // output pixels [r0, r0 + nr) of input `a`; `ptrs` holds the row starts
  GatheredRows rows(const float* a, int64_t r0, int64_t nr, std::vector<const float*>& ptrs) const {
    ptrs.resize(nr);
    for (int64_t r = 0; r < nr; ++r) ptrs[r] = window(a, r0 + r, d_);
    return GatheredRows{ptrs.data(), starts_.data(), offsets_.data(), (int)d_.KH};
  }

 private:
  ConvDims d_;
  std::vector<int64_t> starts_, offsets_;
};

// out (N, Ho, Wo, Co) = the convolution of `a` (N, H, W, C), already padded (`d`'s pad
// is 0), with w (KH, KW, C, Co) at d.stride: conv.cpp picks direct dot products, GEMMs
// over chunks of windows read in place, or one window copy and a threaded GEMM.
void conv_forward(const float* a, const float* w, float* out, const ConvDims& d);

// col[r, :] = the (KH, KW, C) window of output pixel r0 + r, r < nr, zeros where the
// window covers padding. Each kernel row is one contiguous run of KW*C floats in the
// input, clipped at the left and right edges.
inline void im2col(const float* a, float* col, int64_t r0, int64_t nr, const ConvDims& d) {
  const int64_t L = d.KW * d.C, kdim = d.KH * L;
  for (int64_t r = 0; r < nr; ++r) {
    const int64_t row = r0 + r, wo = row % d.Wo, ho = (row / d.Wo) % d.Ho, n = row / (d.Wo * d.Ho);
    const int64_t y0 = ho * d.stride - d.pad_h, x0 = wo * d.stride - d.pad_w;
    const int64_t kx0 = std::max<int64_t>(0, -x0), kx1 = std::min<int64_t>(d.KW, d.W - x0);
    float* dst = col + r * kdim;
    for (int64_t kh = 0; kh < d.KH; ++kh, dst += L) {
      const int64_t y = y0 + kh;
      if (y < 0 || y >= d.H || kx0 >= kx1) {
        std::fill_n(dst, L, 0.0f);
        continue;
      }
      std::fill_n(dst, kx0 * d.C, 0.0f);
      std::memcpy(dst + kx0 * d.C, a + ((n * d.H + y) * d.W + x0 + kx0) * d.C, (kx1 - kx0) * d.C * sizeof(float));
      std::fill(dst + kx1 * d.C, dst + L, 0.0f);
    }
  }
}

// The adjoint of im2col for the output pixels [r0, r0 + nr): adds col[r, :] back onto
// the input pixels its window read (padding dropped). Callers give each thread whole
// images, so no two threads add to one pixel.
inline void col2im_add(const float* col, float* a, int64_t r0, int64_t nr, const ConvDims& d) {
  const int64_t L = d.KW * d.C, kdim = d.KH * L;
  for (int64_t r = 0; r < nr; ++r) {
    const int64_t row = r0 + r, wo = row % d.Wo, ho = (row / d.Wo) % d.Ho, n = row / (d.Wo * d.Ho);
    const int64_t y0 = ho * d.stride - d.pad_h, x0 = wo * d.stride - d.pad_w;
    const int64_t kx0 = std::max<int64_t>(0, -x0), kx1 = std::min<int64_t>(d.KW, d.W - x0);
    if (kx0 >= kx1) continue;
    const float* src = col + r * kdim;
    for (int64_t kh = 0; kh < d.KH; ++kh) {
      const int64_t y = y0 + kh;
      if (y < 0 || y >= d.H) continue;
      float* dst = a + ((n * d.H + y) * d.W + x0 + kx0) * d.C;
      const float* s = src + kh * L + kx0 * d.C;
      const int64_t len = (kx1 - kx0) * d.C;
      for (int64_t t = 0; t < len; ++t) dst[t] += s[t];
    }
  }
}

// f(c, scratch) for every chunk c in [0, chunks), scratch holding `floats` floats of
// the running thread. Chunks are claimed one at a time by whichever thread is free, so
// a thread the machine deschedules holds the others up by one chunk at most. Each
// thread keeps its scratch between calls when small (no page faults per call).
template <class F>
void for_each_chunk(int64_t chunks, int64_t floats, F&& f) {
  constexpr int64_t kMaxParts = 4096, kKeptFloats = int64_t{1} << 20;
  const int64_t parts = std::min(chunks, kMaxParts);
  parallel_run((int)parts, [&](int part, int n) {
    thread_local std::vector<float> scratch;
    if ((int64_t)scratch.size() < floats) scratch.resize(floats);
    for (int64_t c = chunks * part / n; c < chunks * (part + 1) / n; ++c) f(c, scratch.data());
    if ((int64_t)scratch.size() > kKeptFloats) std::vector<float>().swap(scratch);
  });
}

}  // namespace needle
