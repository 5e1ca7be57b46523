// The elementwise and scalar kernel families, declared once by the generated table
// (elementwise_table.h): each row becomes a functor whose expression is compiled for
// `float` (tails) and `vfloat` (SIMD bodies), and one pybind11 binding. The binary
// `ewise_*` rows are also reachable through `ewise_strided`, which reads strided
// (broadcast, permuted, offset) operand views directly instead of compacting them.
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_map>

#include "bindings.h"
#include "elementwise_table.h"
#include "odometer.h"
#include "parallel.h"
#include "prelude.h"
#include "strided.h"

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


// -- ewise_strided: out (compact) = Op(view a, view b) over a common shape --------------

// The two input views simplified as a copy plan (src = a's strides, dst = b's): size-1
// dims dropped, dims contiguous in both merged (out is compact, so any adjacent pair of
// its dims merges). At least one dim, so a single element is a row of one.
CopyPlan plan_strided(const Shape& shape, const Shape& sa, const Shape& sb) {
  CopyPlan p = plan_copy(shape, sa, sb);
  if (p.shape.empty()) p.shape = {1}, p.src = {0}, p.dst = {0};
  return p;
}

// One output row: kA/kB say whether that operand's row is contiguous (stride 1) or a
// repeated element (stride 0). The same SIMD body / scalar tail as the compact kernel.
template <class Op, bool kA, bool kB>
void row_simd(const float* a, const float* b, float* out, int64_t n) {
  vfloat va = vsplat(*a), vb = vsplat(*b);
  int64_t i = 0;
  for (; i + VL <= n; i += VL) vstore(out + i, Op::apply(kA ? vload(a + i) : va, kB ? vload(b + i) : vb));
  for (; i < n; ++i) out[i] = Op::apply(kA ? a[i] : *a, kB ? b[i] : *b);
}

template <class Op>
void row_any(const float* a, int64_t sa, const float* b, int64_t sb, float* out, int64_t n) {
  if (sa == 1 && sb == 1) return row_simd<Op, true, true>(a, b, out, n);
  if (sa == 1 && sb == 0) return row_simd<Op, true, false>(a, b, out, n);
  if (sa == 0 && sb == 1) return row_simd<Op, false, true>(a, b, out, n);
  for (int64_t i = 0; i < n; ++i) out[i] = Op::apply(a[i * sa], b[i * sb]);
}

template <class Op>
void map_strided(const float* a, const float* b, float* out, const CopyPlan& p) {
  int nd = (int)p.shape.size();
  int64_t L = p.shape[nd - 1], la = p.src[nd - 1], lb = p.dst[nd - 1];
  int64_t rows = p.numel / L;
  int64_t grain = Op::heavy ? (1 << 12) : (1 << 15);
  if (rows == 1) {  // one long row: split it
    parallel_for(L, grain, [&](int64_t lo, int64_t hi) {
      row_any<Op>(a + lo * la, la, b + lo * lb, lb, out + lo, hi - lo);
    });
    return;
  }
  parallel_for(rows, std::max<int64_t>(1, grain / L), [&](int64_t lo, int64_t hi) {
    Odometer od(p.shape, p.src, p.dst, nd - 1);  // the outer dims, with both input offsets
    od.seek(lo);
    for (int64_t r = lo; r < hi; ++r, od.next()) row_any<Op>(a + od.o0, la, b + od.o1, lb, out + r * L, L);
  }, 1);
}

using StridedFn = void (*)(const float*, const float*, float*, const CopyPlan&);

template <class Op>
void add_strided_row(std::unordered_map<std::string, StridedFn>& m) {
  if constexpr (Op::arity == 2 && !Op::is_scalar) m.emplace(Op::name(), &map_strided<Op>);
}

// name -> map_strided<row> for every binary array row of the table
const std::unordered_map<std::string, StridedFn>& strided_rows() {
  static const std::unordered_map<std::string, StridedFn> rows = [] {
    std::unordered_map<std::string, StridedFn> m;
#define NEEDLE_STRIDED_ROW(NAME, ARITY, IS_SCALAR, REQUIRED, EXPR) add_strided_row<prelude::NAME##_op>(m);
    NEEDLE_ELEMENTWISE_TABLE(NEEDLE_STRIDED_ROW)
#undef NEEDLE_STRIDED_ROW
    return m;
  }();
  return rows;
}

void ewise_strided(const std::string& name, const Array& a, const Shape& a_strides, int64_t a_offset, const Array& b,
                   const Shape& b_strides, int64_t b_offset, Array& out, const Shape& shape) {
  const auto& rows = strided_rows();
  auto it = rows.find(name);
  if (it == rows.end())
    throw std::invalid_argument("ewise_strided: expected the name of a binary ewise_* row of the elementwise "
                                "table (e.g. 'ewise_add'), got '" + name + "'");
  int64_t n = check_view("ewise_strided", "a", a.size, shape, a_strides, a_offset);
  check_view("ewise_strided", "b", b.size, shape, b_strides, b_offset);
  check_size("ewise_strided", "out", out.size, checked_numel("ewise_strided", shape));
  if (n == 0) return;
  CopyPlan p = plan_strided(shape, a_strides, b_strides);
  ReleaseGIL nogil(n);
  it->second(a.ptr + a_offset, b.ptr + b_offset, out.ptr, p);
}
}  // namespace

void register_elementwise(py::module_& m) {
#define NEEDLE_BIND_OP(NAME, ARITY, IS_SCALAR, REQUIRED, EXPR) bind<prelude::NAME##_op>(m, #NAME);
  NEEDLE_ELEMENTWISE_TABLE(NEEDLE_BIND_OP)
#undef NEEDLE_BIND_OP
  m.def("ewise_strided", &ewise_strided, py::arg("name"), py::arg("a"), py::arg("a_strides"), py::arg("a_offset"),
        py::arg("b"), py::arg("b_strides"), py::arg("b_offset"), py::arg("out"), py::arg("shape"));
}

}  // namespace needle
