// conv2d_nhwc. Few output channels (<= 8, e.g. the input gradient of a first layer;
// or <= 16 with long windows, e.g. a weight gradient): direct dot products over each
// K x K x C_in window, vectorised along the window, no im2col copy (a GEMM would
// waste most of its NR-wide tile). Otherwise the packed SGEMM over chunks of output
// pixels, its A panels packed straight from the windows in the input (no im2col copy):
// per-thread chunks small enough for L2, as many per thread (a 3:2 split of 5 chunks
// over 2 threads idled one a fifth of the time), else (very few rows) im2col into one
// chunk and a multithreaded SGEMM. conv2d_nhwc_padded pads x itself (one pass, only as
// far as the windows reach) and drops the kernel taps that only meet padding.
#include <cstring>

#include "bindings.h"
#include "conv.h"
#include "gemm.h"
#include "parallel.h"
#include "simd.h"

namespace needle {

namespace {

constexpr int64_t kColFloats = int64_t{1} << 22;   // shared im2col chunk: at most 16 MB
constexpr int64_t kL2Floats = int64_t{1} << 16;    // per-thread im2col chunk: 256 KB
constexpr int64_t kMinChunkRows = 32;              // fewer rows per thread: one threaded SGEMM instead

// out[row, j] = <window(row), wt[j]> for j < P; wt is the kernel transposed to (P, KH*KW*C).
// Rows go in blocks of R whose partial sums stay in memory while the loop walks the
// window one kernel row (KW*C contiguous floats) at a time, so the slice of wt in use
// stays in L2 even when all of wt does not fit.
template <int P>
void conv_dot(const float* a, const float* wt, float* out, const ConvDims& d) {
  constexpr int64_t R = 32;
  const int64_t L = d.KW * d.C, kdim = d.KH * L, rows = d.N * d.Ho * d.Wo;
  parallel_for(rows, std::max<int64_t>(1, (1 << 16) / (kdim * P)), [&](int64_t lo, int64_t hi) {
    std::vector<float> part(R * P * VL);  // partial sums, VL lanes per (row, output)
    std::vector<float> tails(R * P);
    for (int64_t r0 = lo; r0 < hi; r0 += R) {
      const int64_t nr = std::min(R, hi - r0);
      std::fill(part.begin(), part.end(), 0.0f);
      std::fill(tails.begin(), tails.end(), 0.0f);
      for (int64_t kh = 0; kh < d.KH; ++kh) {
        const float* w = wt + kh * L;
        for (int64_t r = 0; r < nr; ++r) {
          const float* seg = window(a, r0 + r, d) + kh * d.W * d.C;
          vfloat acc[P];
          for (int j = 0; j < P; ++j) acc[j] = vload(&part[(r * P + j) * VL]);
          int64_t t = 0;
          for (; t + VL <= L; t += VL) {
            vfloat x = vload(seg + t);
            for (int j = 0; j < P; ++j) acc[j] = vfma(x, vload(w + j * kdim + t), acc[j]);
          }
          for (int j = 0; j < P; ++j) vstore(&part[(r * P + j) * VL], acc[j]);
          for (; t < L; ++t)
            for (int j = 0; j < P; ++j) tails[r * P + j] += seg[t] * w[j * kdim + t];
        }
      }
      for (int64_t r = 0; r < nr; ++r)
        for (int j = 0; j < P; ++j) out[(r0 + r) * P + j] = hsum(vload(&part[(r * P + j) * VL])) + tails[r * P + j];
    }
  }, 1);
}

template <int P>
void conv_dot_dispatch(int64_t co, const float* a, const float* wt, float* out, const ConvDims& d) {
  if constexpr (P > 0) {
    if (co == P) return conv_dot<P>(a, wt, out, d);
    return conv_dot_dispatch<P - 1>(co, a, wt, out, d);
  }
}

}  // namespace

void conv_forward(const float* a, const float* w, float* out, const ConvDims& d) {
  const int64_t rows = d.rows(), kdim = d.kdim(), C = d.C, Co = d.Co;
  if (rows == 0 || Co == 0) return;
  if (d.KH == 1 && d.KW == 1 && d.stride == 1 && d.H == d.Ho && d.W == d.Wo)  // the input is the GEMM's A
    return sgemm(rows, C, Co, a, C, w, Co, out, Co);
  if (Co <= 8 || (Co <= 16 && kdim >= 2048)) {  // few outputs, or few outputs per long window
    std::vector<float> wt(Co * kdim);  // (K, K, C, Co) -> (Co, K*K*C)
    for (int64_t k2 = 0; k2 < kdim; ++k2)
      for (int64_t j = 0; j < Co; ++j) wt[j * kdim + k2] = w[k2 * Co + j];
    return conv_dot_dispatch<16>(Co, a, wt.data(), out, d);
  }
  const int64_t small = std::max<int64_t>(56, kL2Floats / kdim), nt = num_threads();
  if (rows >= 2 * kMinChunkRows * nt) {  // L2-sized chunks, the same number per thread
    const int64_t per_thread = (rows + small * nt - 1) / (small * nt);
    const int64_t chunk = (rows + per_thread * nt - 1) / (per_thread * nt), chunks = (rows + chunk - 1) / chunk;
    const WindowRows windows(d);
    for_each_chunk(chunks, 0, [&](int64_t c, float*) {
      const int64_t r0 = c * chunk, nr = std::min(chunk, rows - r0);
      thread_local std::vector<const float*> ptrs;
      sgemm_gathered_serial(false, nr, kdim, Co, windows.rows(a, r0, nr, ptrs), w, Co, out + r0 * Co, Co);
    });
    return;
  }
  const int64_t chunk = std::max<int64_t>(1, std::min(rows, kColFloats / std::max<int64_t>(1, kdim)));
  std::vector<float> col(chunk * kdim);
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t nr = std::min(chunk, rows - r0);
    parallel_for(nr, std::max<int64_t>(1, (1 << 14) / kdim), [&](int64_t lo, int64_t hi) {
      im2col(a, col.data() + lo * kdim, r0 + lo, hi - lo, d);
    }, 1);
    sgemm(nr, kdim, Co, col.data(), kdim, w, Co, out + r0 * Co, Co);
  }
}

namespace {

void conv2d_nhwc(const Array& a, const Array& w, Array& out, const Shape& sa, const Shape& sw, int64_t stride) {
  const char* k = "conv2d_nhwc";
  if (sa.size() != 4 || sw.size() != 4)
    throw std::invalid_argument("conv2d_nhwc: shape_a must be (N, H, W, C_in) and shape_w (K, K, C_in, C_out), got " +
                                fmt_tuple(sa) + " and " + fmt_tuple(sw));
  const int64_t N = sa[0], H = sa[1], W = sa[2], C = sa[3], KH = sw[0], KW = sw[1], Co = sw[3];
  if (sw[2] != C)
    throw std::invalid_argument("conv2d_nhwc: the kernel's C_in (" + std::to_string(sw[2]) +
                                ") differs from the input's channels (" + std::to_string(C) + ")");
  if (stride < 1) throw std::invalid_argument("conv2d_nhwc: stride must be >= 1, got " + std::to_string(stride));
  check_size(k, "a", a.size, checked_numel(k, sa));
  check_size(k, "w", w.size, checked_numel(k, sw));
  if (KH < 1 || KW < 1 || KH > H || KW > W)
    throw std::invalid_argument("conv2d_nhwc: the kernel " + fmt_tuple(sw) + " does not fit the (padded) input " +
                                fmt_tuple(sa));
  const int64_t Ho = (H - KH) / stride + 1, Wo = (W - KW) / stride + 1;
  const int64_t rows = N * Ho * Wo, kdim = KH * KW * C;
  check_size(k, "out", out.size, checked_numel(k, {N, Ho, Wo, Co}));
  ReleaseGIL nogil(rows * kdim);
  conv_forward(a.ptr, w.ptr, out.ptr, ConvDims{N, H, W, C, KH, KW, Co, stride, 0, 0, Ho, Wo});
}

// conv2d_nhwc of x zero-padded by `padding` (not in memory): the padded copy holds only
// the rows and columns the live taps' windows read, so it costs one pass over x (core's
// fallback fills a padded buffer, then copies x into it, in two kernels)
void conv2d_nhwc_padded(const Array& x, const Array& w, Array& out, const Shape& sx, const Shape& sw,
                        int64_t stride, int64_t padding) {
  const char* k = "conv2d_nhwc_padded";
  const ConvDims d = check_dims(k, sx, sw, stride, padding);
  check_size(k, "x", x.size, checked_numel(k, sx));
  check_size(k, "w", w.size, checked_numel(k, sw));
  check_size(k, "out", out.size, checked_numel(k, {d.N, d.Ho, d.Wo, d.Co}));
  ReleaseGIL nogil(d.rows() * d.kdim());
  if (d.rows() == 0 || d.Co == 0) return;
  const Trim tr = trim(d);
  if (tr.t.kdim() == 0) {  // every window is padding
    std::fill_n(out.ptr, out.size, 0.0f);
    return;
  }
  std::vector<float> live;  // the rows of w for the live taps, when some are dropped
  const bool trimmed_taps = tr.t.KH != d.KH || tr.t.KW != d.KW;
  if (trimmed_taps) {
    live.resize(tr.t.kdim() * d.Co);
    for (int64_t k2 = 0; k2 < tr.t.kdim(); ++k2) std::copy_n(w.ptr + tr.offset(k2) * d.Co, d.Co, &live[k2 * d.Co]);
  }
  const PaddedInput in = pad_input(x.ptr, tr.t);
  conv_forward(in.base, trimmed_taps ? live.data() : w.ptr, out.ptr, in.d);
}

}  // namespace

void register_conv_grad(py::module_& m);  // conv_grad.cpp

void register_conv(py::module_& m) {
  m.def("conv2d_nhwc", &conv2d_nhwc, py::arg("a"), py::arg("w"), py::arg("out"), py::arg("shape_a"),
        py::arg("shape_w"), py::arg("stride"));
  m.def("conv2d_nhwc_padded", &conv2d_nhwc_padded, py::arg("x"), py::arg("w"), py::arg("out"), py::arg("shape_x"),
        py::arg("shape_w"), py::arg("stride"), py::arg("padding"));
  register_conv_grad(m);
}

}  // namespace needle
