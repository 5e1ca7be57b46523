// The SIMD vector type of this build and its vectorised math functions.
//
// `vfloat` is a GCC vector of the widest float vector -march allows (16 lanes with
// AVX-512, 8 with AVX, 4 with SSE2). Arithmetic, comparisons and `c ? x : y` work on
// it lane-wise, so the C expressions of the elementwise table compile unchanged for
// `float` and for `vfloat`. exp/log/tanh/pow call glibc's libmvec vector variants
// when setup.py found them (exact IEEE special cases, <= 4 ulp, no fast-math);
// otherwise they loop over lanes with the scalar libm functions.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

// GCC 12 reports the `__Y = __Y` idiom inside AVX-512 intrinsics (_mm512_sqrt_ps,
// unpack, shuffle) as uninitialised: a known false positive, silenced in every file
// that includes this header
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#if defined(__AVX512F__)
#define NEEDLE_VL 16
#define NEEDLE_MVEC(name) _ZGVeN16v_##name
#define NEEDLE_MVEC2(name) _ZGVeN16vv_##name
#elif defined(__AVX2__)
#define NEEDLE_VL 8
#define NEEDLE_MVEC(name) _ZGVdN8v_##name
#define NEEDLE_MVEC2(name) _ZGVdN8vv_##name
#elif defined(__AVX__)
#define NEEDLE_VL 8
#define NEEDLE_MVEC(name) _ZGVcN8v_##name
#define NEEDLE_MVEC2(name) _ZGVcN8vv_##name
#else
#define NEEDLE_VL 4
#define NEEDLE_MVEC(name) _ZGVbN4v_##name
#define NEEDLE_MVEC2(name) _ZGVbN4vv_##name
#endif

constexpr int VL = NEEDLE_VL;
typedef float vfloat __attribute__((vector_size(NEEDLE_VL * 4), aligned(NEEDLE_VL * 4)));

#if NEEDLE_HAVE_LIBMVEC
extern "C" {
vfloat NEEDLE_MVEC(expf)(vfloat);
vfloat NEEDLE_MVEC(logf)(vfloat);
vfloat NEEDLE_MVEC(tanhf)(vfloat);
vfloat NEEDLE_MVEC2(powf)(vfloat, vfloat);
}
#endif

namespace needle {

inline vfloat vload(const float* p) {
  vfloat v;
  std::memcpy(&v, p, sizeof v);  // unaligned load
  return v;
}
inline void vstore(float* p, vfloat v) { std::memcpy(p, &v, sizeof v); }
// every lane = x (not `vfloat{} + x`: that adds +0.0, which turns -0.0 into +0.0)
inline vfloat vsplat(float x) {
#if defined(__AVX512F__)
  return (vfloat)_mm512_set1_ps(x);
#elif defined(__AVX__)
  return (vfloat)_mm256_set1_ps(x);
#else
  return (vfloat)_mm_set1_ps(x);
#endif
}

// a * b + c, fused where the ISA has FMA (GEMM and convolution inner loops)
inline vfloat vfma(vfloat a, vfloat b, vfloat c) {
#if defined(__AVX512F__)
  return (vfloat)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
#elif defined(__FMA__) && defined(__AVX__)
  return (vfloat)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
#else
  return a * b + c;
#endif
}

template <class F>
inline vfloat lanewise(vfloat x, F f) {
  for (int i = 0; i < VL; ++i) x[i] = f(x[i]);
  return x;
}

#if NEEDLE_HAVE_LIBMVEC
inline vfloat mvec_exp(vfloat x) { return NEEDLE_MVEC(expf)(x); }
inline vfloat mvec_log(vfloat x) { return NEEDLE_MVEC(logf)(x); }
inline vfloat mvec_tanh(vfloat x) { return NEEDLE_MVEC(tanhf)(x); }
inline vfloat mvec_pow(vfloat a, vfloat b) { return NEEDLE_MVEC2(powf)(a, b); }
#else
inline vfloat mvec_exp(vfloat x) { return lanewise(x, [](float v) { return std::exp(v); }); }
inline vfloat mvec_log(vfloat x) { return lanewise(x, [](float v) { return std::log(v); }); }
inline vfloat mvec_tanh(vfloat x) { return lanewise(x, [](float v) { return std::tanh(v); }); }
inline vfloat mvec_pow(vfloat a, vfloat b) {
  for (int i = 0; i < VL; ++i) a[i] = std::pow(a[i], b[i]);
  return a;
}
#endif

#if defined(__AVX512F__)
// In-register transpose: afterwards r[i][j] is the old r[j][i].
inline void transpose16x16(__m512 r[16]) {
  __m512 t[16];
  for (int j = 0; j < 16; j += 2) {
    t[j] = _mm512_unpacklo_ps(r[j], r[j + 1]);
    t[j + 1] = _mm512_unpackhi_ps(r[j], r[j + 1]);
  }
  for (int j = 0; j < 16; j += 4) {
    r[j] = _mm512_shuffle_ps(t[j], t[j + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[j + 1] = _mm512_shuffle_ps(t[j], t[j + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[j + 2] = _mm512_shuffle_ps(t[j + 1], t[j + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[j + 3] = _mm512_shuffle_ps(t[j + 1], t[j + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int j = 0; j < 16; j += 8) {
    for (int q = 0; q < 4; ++q) {
      t[j + q] = _mm512_shuffle_f32x4(r[j + q], r[j + q + 4], 0x88);
      t[j + q + 4] = _mm512_shuffle_f32x4(r[j + q], r[j + q + 4], 0xdd);
    }
  }
  for (int q = 0; q < 8; ++q) {
    r[q] = _mm512_shuffle_f32x4(t[q], t[q + 8], 0x88);
    r[q + 8] = _mm512_shuffle_f32x4(t[q], t[q + 8], 0xdd);
  }
}
#endif

// hsum/hmax fold a vector to a scalar in a fixed order (deterministic results)
inline float hsum(vfloat v) {
  float s = 0.0f;
  for (int i = 0; i < VL; ++i) s += v[i];
  return s;
}

}  // namespace needle
