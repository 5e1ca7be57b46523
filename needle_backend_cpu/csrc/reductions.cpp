// Reductions: reduce_sum/max over contiguous blocks, over the last axes of any
// strided view (no separate compact when the view allows), and logsumexp.
//
// Sums accumulate SIMD partials in float over blocks of kBlock elements and the
// block results in double: accurate for long rows, and the order is fixed (no
// dependence on the thread count), so results are deterministic.
#include <cmath>
#include <limits>

#include "bindings.h"
#include "elementwise_table.h"
#include "parallel.h"
#include "prelude.h"
#include "reductions.h"
#include "strided.h"

namespace needle {

namespace {

constexpr int64_t kBlock = 2048;      // float-accumulated run inside a row
constexpr int64_t kChunk = 1 << 16;   // a long row is split into chunks of this many elements
constexpr int64_t kGrain = 1 << 15;   // elements per thread below which reductions stay serial
constexpr float kInf = std::numeric_limits<float>::infinity();

// The operators come from needle_core.kernels.REDUCTIONS (elementwise_table.h):
// reduce_sum_op / reduce_max_op hold the identity and the combine step, the same
// expression on floats and SIMD vectors. Max propagates NaN like np.max.
#define NEEDLE_REDUCTION_OP(name, identity, combine)          \
  struct name##_op {                                          \
    static constexpr float init = identity;                   \
    template <class T>                                        \
    static T step(T acc, T x) { return combine; }             \
  };
NEEDLE_REDUCTION_TABLE(NEEDLE_REDUCTION_OP)
#undef NEEDLE_REDUCTION_OP

struct Sum : reduce_sum_op {
  using Acc = double;
  static constexpr bool kScalesWithRepeats = true;  // a sum over a repeated element is a multiply
  static float fold(vfloat v) { return hsum(v); }
  static Acc join(Acc acc, float part) { return acc + part; }
};

struct Max : reduce_max_op {
  using Acc = float;
  static constexpr bool kScalesWithRepeats = false;  // the max of repeats is the element
  static float fold(vfloat v) {
    float m = init;
    for (int i = 0; i < VL; ++i) m = step(m, v[i]);
    return m;
  }
  static Acc join(Acc acc, float part) { return step(acc, part); }
};

// One block (<= kBlock elements) with four SIMD accumulators.
template <class R>
float reduce_block(const float* p, int64_t n) {
  float r = R::init;
  int64_t i = 0;
  if (n >= VL) {
    vfloat a0 = vsplat(R::init), a1 = a0, a2 = a0, a3 = a0;
    for (; i + 4 * VL <= n; i += 4 * VL) {
      a0 = R::step(a0, vload(p + i));
      a1 = R::step(a1, vload(p + i + VL));
      a2 = R::step(a2, vload(p + i + 2 * VL));
      a3 = R::step(a3, vload(p + i + 3 * VL));
    }
    for (; i + VL <= n; i += VL) a0 = R::step(a0, vload(p + i));
    r = R::fold(R::step(R::step(a0, a1), R::step(a2, a3)));
  }
  for (; i < n; ++i) r = R::step(r, p[i]);
  return r;
}

template <class R>
typename R::Acc reduce_run(const float* p, int64_t n) {
  typename R::Acc acc = R::init;
  for (int64_t i = 0; i < n; i += kBlock) acc = R::join(acc, reduce_block<R>(p + i, std::min(kBlock, n - i)));
  return acc;
}

// out[r] = R over p[r * len : (r + 1) * len] for r < rows.
template <class R>
void reduce_rows(const float* p, float* out, int64_t rows, int64_t len) {
  if (len == 0) {
    std::fill_n(out, rows, R::init);
    return;
  }
  if (len <= kChunk || rows >= 4 * num_threads()) {
    parallel_for(rows, std::max<int64_t>(1, kGrain / len), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) out[r] = (float)reduce_run<R>(p + r * len, len);
    }, 1);
    return;
  }
  // few long rows: fixed-size chunks in parallel, then joined in order
  int64_t chunks = (len + kChunk - 1) / kChunk;
  std::vector<typename R::Acc> part(rows * chunks);
  parallel_for(rows * chunks, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      int64_t r = t / chunks, c = t % chunks;
      part[t] = reduce_run<R>(p + r * len + c * kChunk, std::min(kChunk, len - c * kChunk));
    }
  }, 1);
  for (int64_t r = 0; r < rows; ++r) {
    typename R::Acc acc = R::init;
    for (int64_t c = 0; c < chunks; ++c) acc = R::join(acc, part[r * chunks + c]);
    out[r] = (float)acc;
  }
}

template <class R>
void reduce_contiguous(const char* kernel, const Array& a, Array& out, int64_t reduce_size) {
  if (reduce_size < 0) throw std::invalid_argument(std::string(kernel) + ": reduce_size must be >= 0");
  check_size(kernel, "a", a.size, out.size * reduce_size);
  ReleaseGIL nogil(a.size);
  reduce_rows<R>(a.ptr, out.ptr, out.size, reduce_size);
}

// Drop size-1 dims and merge dims that step exactly over each other.
void simplify(Shape& shape, Shape& strides) {
  Shape s2, st2;
  for (size_t k = 0; k < shape.size(); ++k) {
    if (shape[k] == 1) continue;
    if (!s2.empty() && st2.back() == strides[k] * shape[k]) {
      s2.back() *= shape[k];
      st2.back() = strides[k];
    } else {
      s2.push_back(shape[k]);
      st2.push_back(strides[k]);
    }
  }
  shape.swap(s2);
  strides.swap(st2);
}

// Offsets of every multi-index of (shape, strides), row-major.
std::vector<int64_t> offsets(const Shape& shape, const Shape& strides) {
  std::vector<int64_t> offs{0};
  for (size_t k = 0; k < shape.size(); ++k) {
    std::vector<int64_t> next;
    next.reserve(offs.size() * shape[k]);
    for (int64_t o : offs)
      for (int64_t i = 0; i < shape[k]; ++i) next.push_back(o + i * strides[k]);
    offs.swap(next);
  }
  return offs;
}

// out[o] = R over the reduced axes (rs, rst) at the o-th multi-index of the kept axes
// (ks, kst), row-major; no stride is 0 here, so `kept * red` elements are distinct.
template <class R>
void reduce_strided(const float* base, float* out, Shape ks, Shape kst, Shape rs, Shape rst, int64_t kept,
                    int64_t red) {
  simplify(ks, kst);
  simplify(rs, rst);

  if (rs.size() == 1 && rst[0] == 1) {  // each output reduces one contiguous run
    int64_t len = rs[0];
    parallel_for(kept, std::max<int64_t>(1, kGrain / len), [&](int64_t lo, int64_t hi) {
      std::vector<int64_t> idx(ks.size(), 0);
      for (int64_t o = lo; o < hi; ++o) {
        int64_t rem = o, off = 0;
        for (int k = (int)ks.size() - 1; k >= 0; --k) {
          off += (rem % ks[k]) * kst[k];
          rem /= ks[k];
        }
        out[o] = (float)reduce_run<R>(base + off, len);
      }
    }, 1);
    return;
  }
  if (!ks.empty() && kst.back() == 1 && ks.back() >= VL) {
    // kept axis contiguous: accumulate whole rows of outputs across the reduced offsets
    std::vector<int64_t> roffs = offsets(rs, rst);
    int64_t inner = ks.back(), outer = kept / inner;
    constexpr int64_t W = 512;  // outputs per task: an accumulator row that stays in L1
    int64_t per = (inner + W - 1) / W;
    parallel_for(outer * per, std::max<int64_t>(1, kGrain / (W * red)), [&](int64_t lo, int64_t hi) {
      float acc[W];
      for (int64_t t = lo; t < hi; ++t) {
        int64_t o = t / per, j0 = (t % per) * W, w = std::min(W, inner - j0);
        int64_t rem = o, off = 0;
        for (int k = (int)ks.size() - 2; k >= 0; --k) {
          off += (rem % ks[k]) * kst[k];
          rem /= ks[k];
        }
        const float* p = base + off + j0;
        std::fill_n(acc, w, R::init);
        for (int64_t ro : roffs)
          for (int64_t j = 0; j < w; ++j) acc[j] = R::step(acc[j], p[ro + j]);
        std::copy_n(acc, w, out + o * inner + j0);
      }
    }, 1);
    return;
  }
  // otherwise: gather the view kept-major into a compact temporary, reduce its rows
  std::vector<float> tmp(kept * red);
  Shape all(ks), allst(kst);
  all.insert(all.end(), rs.begin(), rs.end());
  allst.insert(allst.end(), rst.begin(), rst.end());
  strided_copy(base, tmp.data(), plan_copy(all, allst, compact_strides(all)));
  reduce_rows<R>(tmp.data(), out, kept, red);
}

// Split off the axes that repeat one element (stride 0, length > 1).
int64_t drop_repeats(Shape& shape, Shape& strides, Shape* kept_flags = nullptr) {
  int64_t repeats = 1;
  Shape s2, st2;
  for (size_t k = 0; k < shape.size(); ++k) {
    bool repeat = strides[k] == 0 && shape[k] > 1;
    if (kept_flags) kept_flags->push_back(repeat ? 0 : 1);
    if (repeat) {
      repeats *= shape[k];
    } else {
      s2.push_back(shape[k]);
      st2.push_back(strides[k]);
    }
  }
  shape.swap(s2);
  strides.swap(st2);
  return repeats;
}

// Broadcast (stride-0) axes are never expanded: a reduced one is dropped (a sum is then
// scaled by its length, a max unchanged) and a kept one is reduced once and repeated
// into `out`. A 2 x 10^10 broadcast view costs what its 2 distinct elements cost.
template <class R>
void reduce_view(const char* kernel, const Array& a, Array& out, const Shape& shape, const Shape& strides,
                 int64_t offset, int64_t reduce_ndim) {
  int64_t n = check_view(kernel, "a", a.size, shape, strides, offset);
  if (reduce_ndim < 0 || reduce_ndim > (int64_t)shape.size())
    throw std::invalid_argument(std::string(kernel) + ": reduce_ndim must be in [0, " + std::to_string(shape.size()) +
                                "], got " + std::to_string(reduce_ndim));
  size_t split = shape.size() - reduce_ndim;
  Shape ks(shape.begin(), shape.begin() + split), kst(strides.begin(), strides.begin() + split);
  Shape rs(shape.begin() + split, shape.end()), rst(strides.begin() + split, strides.end());
  int64_t kept = checked_numel(kernel, ks), red = checked_numel(kernel, rs);
  check_size(kernel, "out", out.size, kept);
  ReleaseGIL nogil(n);
  if (kept == 0) return;
  if (red == 0) {
    std::fill_n(out.ptr, kept, R::init);
    return;
  }
  const float* base = a.ptr + offset;
  int64_t repeats = drop_repeats(rs, rst);
  Shape ku(ks), kust(kst), distinct;  // distinct[k]: kept axis k is not a repeat
  bool kept_repeats = drop_repeats(ku, kust, &distinct) > 1;
  int64_t kept_u = checked_numel(kernel, ku), red_u = checked_numel(kernel, rs);
  std::vector<float> uniq(kept_repeats ? kept_u : 0);
  float* dst = kept_repeats ? uniq.data() : out.ptr;
  reduce_strided<R>(base, dst, ku, kust, rs, rst, kept_u, red_u);
  if (R::kScalesWithRepeats && repeats > 1) {
    float scale = (float)repeats;
    parallel_for(kept_u, kGrain, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) dst[i] *= scale;
    }, 1);
  }
  if (kept_repeats) {  // out = the distinct results, repeated along the broadcast kept axes
    Shape ustrides = compact_strides(ku), src(ks.size(), 0);
    for (size_t k = 0, j = 0; k < ks.size(); ++k)
      if (distinct[k]) src[k] = ustrides[j++];
    strided_copy(uniq.data(), out.ptr, plan_copy(ks, src, compact_strides(ks)));
  }
}

}  // namespace

// (declared in reductions.h: the fused softmax-cross-entropy reuses them, so its loss
// has the bits of logsumexp's)
float row_max(const float* p, int64_t n) { return (float)reduce_run<Max>(p, n); }

float logsumexp_row(const float* p, int64_t n) {
  float m = (float)reduce_run<Max>(p, n);
  if (std::isnan(m) || std::isinf(m)) return m;  // all -inf gives -inf; NaN and +inf propagate
  using namespace prelude;
  vfloat vm = vsplat(m), acc = vsplat(0.0f);
  int64_t i = 0;
  for (; i + VL <= n; i += VL) acc += exp(vload(p + i) - vm);
  float s = hsum(acc);
  for (; i < n; ++i) s += std::exp(p[i] - m);
  return m + std::log(s);
}

namespace {

void logsumexp(const Array& a, Array& out, int64_t reduce_size) {
  if (reduce_size < 1) throw std::invalid_argument("logsumexp: reduce_size must be >= 1, got " + std::to_string(reduce_size));
  check_size("logsumexp", "a", a.size, out.size * reduce_size);
  ReleaseGIL nogil(a.size);
  parallel_for(out.size, std::max<int64_t>(1, (kGrain / 4) / reduce_size), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) out.ptr[r] = logsumexp_row(a.ptr + r * reduce_size, reduce_size);
  }, 1);
}

}  // namespace

void register_reductions(py::module_& m) {
  m.def("reduce_sum", [](const Array& a, Array& out, int64_t n) { reduce_contiguous<Sum>("reduce_sum", a, out, n); },
        py::arg("a"), py::arg("out"), py::arg("reduce_size"));
  m.def("reduce_max", [](const Array& a, Array& out, int64_t n) { reduce_contiguous<Max>("reduce_max", a, out, n); },
        py::arg("a"), py::arg("out"), py::arg("reduce_size"));
  m.def("reduce_sum_view",
        [](const Array& a, Array& out, const Shape& shape, const Shape& strides, int64_t offset, int64_t rn) {
          reduce_view<Sum>("reduce_sum_view", a, out, shape, strides, offset, rn);
        },
        py::arg("a"), py::arg("out"), py::arg("shape"), py::arg("strides"), py::arg("offset"), py::arg("reduce_ndim"));
  m.def("reduce_max_view",
        [](const Array& a, Array& out, const Shape& shape, const Shape& strides, int64_t offset, int64_t rn) {
          reduce_view<Max>("reduce_max_view", a, out, shape, strides, offset, rn);
        },
        py::arg("a"), py::arg("out"), py::arg("shape"), py::arg("strides"), py::arg("offset"), py::arg("reduce_ndim"));
  m.def("logsumexp", &logsumexp, py::arg("a"), py::arg("out"), py::arg("reduce_size"));
}

}  // namespace needle
