// The adjoints of conv2d_nhwc, each the forward's multiply-adds once, as packed SGEMMs
// over chunks of output pixels (no full-size im2col buffer, no dilated copies), the
// GEMMs reading windows in place from a zero-padded copy where they can:
//
// - conv2d_nhwc_grad_weight: dW (K*K*C, Co) = im2col(X)^T @ G per chunk of rows, the
//   GEMM packing its panels straight from the windows of a padded copy of X (no window
//   copy, no transposed copy). Chunks have a fixed size that depends on the shapes only,
//   and their partial products are added in chunk order, so the result does not depend
//   on the thread count.
// - conv2d_nhwc_grad_input: at stride 1 with "same" padding, the forward convolution
//   of G padded by K-1-pad with the flipped kernel; otherwise dX = col2im(G @ W^T), chunks of whole images, so
//   threads never add into the same pixel.
#include <memory>
#include <vector>

#include "bindings.h"
#include "conv.h"
#include "gemm.h"
#include "parallel.h"

namespace needle {

namespace {

constexpr int64_t kChunkFloats = int64_t{1} << 17;  // one chunk's window copy: 512 KB, about half an L2
constexpr int64_t kMaxChunks = 64;                   // bounds the partial products of the weight gradient
constexpr int64_t kChunks = 8;  // weight gradient: chunks wanted (fixed, so results do not depend on the threads)

// out rows tr.offset(k2) = the weight gradient of the live taps
void grad_weight_rows(const float* xp, const float* gp, float* outp, const Trim& tr) {
  const ConvDims& d = tr.t;
  const int64_t rows = d.rows(), kdim = d.kdim(), Co = d.Co;
  // about kChunks chunks (enough to share among threads), each at most half an L2
  int64_t chunk = std::max<int64_t>(64, std::min((rows + kChunks - 1) / kChunks, kChunkFloats / kdim));
  chunk = std::max(chunk, (rows + kMaxChunks - 1) / kMaxChunks);
  const int64_t chunks = (rows + chunk - 1) / chunk, span = kdim * Co;
  // partial dW (kdim x Co) of each chunk = im2col(X)^T @ G, G as it is
  std::vector<float> part(chunks * span);
  if (chunks >= 2 * num_threads()) {  // windows read in place by each chunk's GEMM
    const PaddedInput in = pad_input(xp, tr.t);
    const WindowRows windows(in.d);
    for_each_chunk(chunks, 0, [&](int64_t c, float*) {
      const int64_t r0 = c * chunk, nr = std::min(chunk, rows - r0);
      thread_local std::vector<const float*> ptrs;
      sgemm_gathered_serial(true, kdim, nr, Co, windows.rows(in.base, r0, nr, ptrs), gp + r0 * Co, Co,
                            part.data() + c * span, Co);
    });
  } else {  // few chunks: a window copy each, and a threaded GEMM
    std::vector<float> col(chunk * kdim);
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t r0 = c * chunk, nr = std::min(chunk, rows - r0);
      im2col(xp, col.data(), r0, nr, d);
      sgemm_trans(true, false, kdim, nr, Co, col.data(), kdim, gp + r0 * Co, Co, part.data() + c * span, Co);
    }
  }
  // out row offset(k2) = the sum over chunks, in chunk order, of their row k2
  parallel_for(kdim, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, Co * chunks)), [&](int64_t lo, int64_t hi) {
    for (int64_t k2 = lo; k2 < hi; ++k2) {
      float* dst = outp + tr.offset(k2) * Co;
      const float* src = part.data() + k2 * Co;
      std::copy_n(src, Co, dst);
      for (int64_t c = 1; c < chunks; ++c)
        for (int64_t j = 0; j < Co; ++j) dst[j] += src[c * span + j];
    }
  }, 1);
}

void conv2d_nhwc_grad_weight(const Array& x, const Array& g, Array& out, const Shape& sx, const Shape& sw,
                             int64_t stride, int64_t padding) {
  const char* k = "conv2d_nhwc_grad_weight";
  const ConvDims d = check_dims(k, sx, sw, stride, padding);
  const int64_t rows = d.rows(), kdim = d.kdim(), Co = d.Co;
  check_size(k, "x", x.size, checked_numel(k, sx));
  check_size(k, "g", g.size, rows * Co);
  check_size(k, "out", out.size, kdim * Co);
  ReleaseGIL nogil(rows * kdim);
  if (kdim == 0 || Co == 0) return;
  const Trim tr = trim(d);
  const bool trimmed_taps = tr.t.KH != d.KH || tr.t.KW != d.KW;
  if (rows == 0 || tr.t.kdim() == 0 || trimmed_taps) std::fill_n(out.ptr, kdim * Co, 0.0f);  // dead taps: 0
  if (rows == 0 || tr.t.kdim() == 0) return;
  grad_weight_rows(x.ptr, g.ptr, out.ptr, tr);
}

// out (zeroed) += col2im(G @ W^T) over the live taps, in chunks of whole images
void grad_input_images(const float* gp, const float* wp, float* outp, const Trim& tr) {
  const ConvDims& d = tr.t;
  const int64_t kdim = d.kdim(), Co = d.Co, per_image = d.Ho * d.Wo;
  std::vector<float> wt(Co * kdim);  // W^T of the live taps: (Co, KH'*KW'*C)
  for (int64_t k2 = 0; k2 < kdim; ++k2) {
    const float* row = wp + tr.offset(k2) * Co;
    for (int64_t j = 0; j < Co; ++j) wt[j * kdim + k2] = row[j];
  }
  // chunks of whole images, the same number per thread (results do not depend on it:
  // each image's adds run in one fixed order)
  const int64_t nt = num_threads(), fit = std::max<int64_t>(1, kChunkFloats / (per_image * kdim));
  const int64_t per_thread = (d.N + fit * nt - 1) / (fit * nt);
  const int64_t images = (d.N + per_thread * nt - 1) / (per_thread * nt), chunks = (d.N + images - 1) / images;
  if (chunks >= 2 * nt || (chunks >= nt && fit > 1)) {  // a chunk per thread, or images that fit in L2
    for_each_chunk(chunks, images * per_image * kdim, [&](int64_t c, float* col) {
      const int64_t r0 = c * images * per_image, nr = std::min(images, d.N - c * images) * per_image;
      sgemm_serial(nr, Co, kdim, gp + r0 * Co, Co, wt.data(), kdim, col, kdim);
      col2im_add(col, outp, r0, nr, d);
    });
    return;
  }
  // few images, each large: one threaded GEMM per chunk, then its images added back in parallel
  std::vector<float> col(images * per_image * kdim);
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t n0 = c * images, nn = std::min(images, d.N - n0), r0 = n0 * per_image;
    sgemm(nn * per_image, Co, kdim, gp + r0 * Co, Co, wt.data(), kdim, col.data(), kdim);
    parallel_for(nn, 1, [&](int64_t lo, int64_t hi) {
      col2im_add(col.data() + lo * per_image * kdim, outp, r0 + lo * per_image, (hi - lo) * per_image, d);
    }, 1);
  }
}

// Stride 1: dX is the forward convolution of G zero-padded by K-1-pad, with the
// kernel flipped in space and its channel axes swapped. The forward reads G's windows
// in place and writes each pixel of dX once: no G @ W^T copy, no col2im scatter-add.
void grad_input_as_forward(const float* gp, const float* wp, float* outp, const ConvDims& d) {
  const int64_t qh = d.KH - 1 - d.pad_h, qw = d.KW - 1 - d.pad_w, C = d.C, Co = d.Co;
  const std::unique_ptr<float[]> padded = pad_nhwc(gp, d.N, d.Ho, d.Wo, Co, Pads{qh, qh, qw, qw});
  std::vector<float> flipped(d.KH * d.KW * Co * C);  // (KH, KW, Co, C)
  for (int64_t kh = 0; kh < d.KH; ++kh)
    for (int64_t kw = 0; kw < d.KW; ++kw) {
      const float* src = wp + ((d.KH - 1 - kh) * d.KW + (d.KW - 1 - kw)) * C * Co;  // (C, Co) block
      float* dst = flipped.data() + (kh * d.KW + kw) * Co * C;
      for (int64_t c = 0; c < C; ++c)
        for (int64_t o = 0; o < Co; ++o) dst[o * C + c] = src[c * Co + o];
    }
  conv_forward(padded.get(), flipped.data(), outp,
               ConvDims{d.N, d.Ho + 2 * qh, d.Wo + 2 * qw, Co, d.KH, d.KW, C, 1, 0, 0, d.H, d.W});
}

void conv2d_nhwc_grad_input(const Array& g, const Array& w, Array& out, const Shape& sx, const Shape& sw,
                            int64_t stride, int64_t padding) {
  const char* k = "conv2d_nhwc_grad_input";
  const ConvDims d = check_dims(k, sx, sw, stride, padding);
  const int64_t kdim = d.kdim(), Co = d.Co;
  check_size(k, "g", g.size, d.rows() * Co);
  check_size(k, "w", w.size, kdim * Co);
  check_size(k, "out", out.size, checked_numel(k, sx));
  ReleaseGIL nogil(d.rows() * kdim);
  const Trim tr = trim(d);
  // as a forward convolution when that does the same multiply-adds: stride 1, output as
  // large as the input ("same" padding: the forward of G adds no padding products), and
  // no tap skipped (skipping them saves more)
  const bool same = d.stride == 1 && d.Ho == d.H && d.Wo == d.W, every_tap_live = tr.t.KH == d.KH && tr.t.KW == d.KW;
  if (same && every_tap_live && d.rows() > 0 && Co > 0 && d.C > 0) return grad_input_as_forward(g.ptr, w.ptr, out.ptr, d);
  std::fill_n(out.ptr, out.size, 0.0f);
  if (d.rows() == 0 || kdim == 0 || Co == 0 || tr.t.kdim() == 0) return;
  grad_input_images(g.ptr, w.ptr, out.ptr, tr);
}

}  // namespace

void register_conv_grad(py::module_& m) {
  m.def("conv2d_nhwc_grad_weight", &conv2d_nhwc_grad_weight, py::arg("x"), py::arg("g"), py::arg("out"),
        py::arg("shape_x"), py::arg("shape_w"), py::arg("stride"), py::arg("padding"));
  m.def("conv2d_nhwc_grad_input", &conv2d_nhwc_grad_input, py::arg("g"), py::arg("w"), py::arg("out"),
        py::arg("shape_x"), py::arg("shape_w"), py::arg("stride"), py::arg("padding"));
}

}  // namespace needle
