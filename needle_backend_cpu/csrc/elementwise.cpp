// The elementwise and scalar kernel families, declared once by the generated table
// (elementwise_table.h): each row becomes a functor whose expression is compiled for
// `float` (tails) and `vfloat` (SIMD bodies), and one pybind11 binding.
#include <cstring>
#include <string_view>

#include "bindings.h"
#include "elementwise_table.h"
#include "parallel.h"
#include "prelude.h"

#if defined(__AVX512F__) || defined(__AVX__)
#include <immintrin.h>
#endif

namespace needle {

// Row functors live in the prelude namespace so the expression's names resolve there.
namespace prelude {
constexpr bool mentions(std::string_view expr, std::string_view name) { return expr.find(name) != expr.npos; }

#define NEEDLE_DEFINE_OP(NAME, ARITY, IS_SCALAR, REQUIRED, EXPR)                                           \
  struct NAME##_op {                                                                                      \
    static constexpr const char* name() { return #NAME; }                                                 \
    static constexpr int arity = ARITY;                                                                   \
    static constexpr bool is_scalar = IS_SCALAR;                                                          \
    /* calls into libm/libmvec cost ~10x a load/add: parallelise at smaller sizes */                     \
    static constexpr bool heavy = mentions(#EXPR, "exp(") || mentions(#EXPR, "log(") ||                    \
                                  mentions(#EXPR, "tanh(") || mentions(#EXPR, "pow(");                   \
    template <class T>                                                                                    \
    static inline T apply(T a, [[maybe_unused]] T b) {                                                    \
      return EXPR;                                                                                        \
    }                                                                                                     \
  };
NEEDLE_ELEMENTWISE_TABLE(NEEDLE_DEFINE_OP)
#undef NEEDLE_DEFINE_OP
}  // namespace prelude

namespace {

// Non-temporal stores skip the read-for-ownership of `out` when it is far larger than
// the cache (it will be evicted before anyone reads it anyway).
#ifndef NEEDLE_STREAM_MB
#define NEEDLE_STREAM_MB 16
#endif
constexpr int64_t kStreamBytes = int64_t{NEEDLE_STREAM_MB} << 20;

inline void stream_store(float* p, vfloat v) {
#if defined(__AVX512F__)
  _mm512_stream_ps(p, (__m512)v);
#elif defined(__AVX__)
  _mm256_stream_ps(p, (__m256)v);
#else
  _mm_stream_ps(p, (__m128)v);
#endif
}

// out[i] = Op(a[i], b) over [lo, hi); B is an array (ewise) or a broadcast scalar.
template <class Op, bool kArrayB, bool kStream>
void map_range(const float* a, const float* b, float s, float* out, int64_t lo, int64_t hi) {
  vfloat vs = vsplat(s);
  int64_t i = lo;
  for (; i + 2 * VL <= hi; i += 2 * VL) {
    vfloat r0 = Op::apply(vload(a + i), kArrayB ? vload(b + i) : vs);
    vfloat r1 = Op::apply(vload(a + i + VL), kArrayB ? vload(b + i + VL) : vs);
    if constexpr (kStream) {
      stream_store(out + i, r0);
      stream_store(out + i + VL, r1);
    } else {
      vstore(out + i, r0);
      vstore(out + i + VL, r1);
    }
  }
  for (; i + VL <= hi; i += VL) vstore(out + i, Op::apply(vload(a + i), kArrayB ? vload(b + i) : vs));
  for (; i < hi; ++i) out[i] = Op::apply(a[i], kArrayB ? b[i] : s);
}

template <class Op, bool kArrayB>
void map(const float* a, const float* b, float s, float* out, int64_t n) {
  bool stream = n * (int64_t)sizeof(float) >= kStreamBytes && reinterpret_cast<uintptr_t>(out) % (VL * 4) == 0;
  int64_t grain = Op::heavy ? (1 << 12) : (1 << 15);
  parallel_for(n, grain, [&](int64_t lo, int64_t hi) {
    if (stream) {
      map_range<Op, kArrayB, true>(a, b, s, out, lo, hi);
    } else {
      map_range<Op, kArrayB, false>(a, b, s, out, lo, hi);
    }
  });
#if defined(__SSE2__)
  if (stream) _mm_sfence();  // order the streaming stores before anyone reads `out`
#endif
}

template <class Op>
void bind(py::module_& m, const char* name) {
  if constexpr (Op::arity == 1) {
    m.def(name, [](const Array& a, Array& out) {
      check_size(Op::name(), "a", a.size, out.size);
      ReleaseGIL nogil(out.size);
      map<Op, false>(a.ptr, nullptr, 0.0f, out.ptr, out.size);
    }, py::arg("a"), py::arg("out"));
  } else if constexpr (Op::is_scalar) {
    m.def(name, [](const Array& a, float val, Array& out) {
      check_size(Op::name(), "a", a.size, out.size);
      ReleaseGIL nogil(out.size);
      map<Op, false>(a.ptr, nullptr, val, out.ptr, out.size);
    }, py::arg("a"), py::arg("val"), py::arg("out"));
  } else {
    m.def(name, [](const Array& a, const Array& b, Array& out) {
      check_size(Op::name(), "a", a.size, out.size);
      check_size(Op::name(), "b", b.size, out.size);
      ReleaseGIL nogil(out.size);
      map<Op, true>(a.ptr, b.ptr, 0.0f, out.ptr, out.size);
    }, py::arg("a"), py::arg("b"), py::arg("out"));
  }
}

}  // namespace

void register_elementwise(py::module_& m) {
#define NEEDLE_BIND_OP(NAME, ARITY, IS_SCALAR, REQUIRED, EXPR) bind<prelude::NAME##_op>(m, #NAME);
  NEEDLE_ELEMENTWISE_TABLE(NEEDLE_BIND_OP)
#undef NEEDLE_BIND_OP
}

}  // namespace needle
