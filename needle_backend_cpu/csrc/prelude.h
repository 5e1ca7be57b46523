// The C++ prelude of the elementwise table: the overloaded names its expressions use
// (exp, log, tanh, pow, fmax, sqrt, sin), for `float` (scalar tails) and `vfloat` (SIMD
// bodies). Expressions are evaluated inside this namespace, so `exp(a)` picks
// std::exp for a float and the libmvec variant for a vector.
#pragma once

#include <cmath>

#include "simd.h"

#if defined(__AVX512F__) || defined(__AVX__) || defined(__SSE2__)
#include <immintrin.h>
#endif

namespace needle::prelude {

using std::exp;
using std::fmax;
using std::log;
using std::pow;
using std::sin;
using std::sqrt;
using std::tanh;

inline vfloat exp(vfloat a) { return mvec_exp(a); }
inline vfloat log(vfloat a) { return mvec_log(a); }
inline vfloat tanh(vfloat a) { return mvec_tanh(a); }
inline vfloat pow(vfloat a, vfloat b) { return mvec_pow(a, b); }
inline vfloat sin(vfloat a) { return lanewise(a, [](float v) { return std::sin(v); }); }

// C's fmax: a NaN operand is ignored (NumPy's np.fmax agrees)
inline vfloat fmax(vfloat a, vfloat b) { return (b != b) ? a : ((a > b) ? a : b); }
inline vfloat fmax(vfloat a, float b) { return fmax(a, vsplat(b)); }
inline vfloat fmax(float a, vfloat b) { return fmax(vsplat(a), b); }

inline vfloat sqrt(vfloat a) {
#if defined(__AVX512F__)
  return (vfloat)_mm512_sqrt_ps((__m512)a);
#elif defined(__AVX__)
  return (vfloat)_mm256_sqrt_ps((__m256)a);
#else
  return (vfloat)_mm_sqrt_ps((__m128)a);
#endif
}

}  // namespace needle::prelude
