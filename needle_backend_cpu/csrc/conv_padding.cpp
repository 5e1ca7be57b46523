// What the convolution kernels that take a padding share: the shape checks, the kernel
// taps that only ever meet padding, and the zero-padded copy their GEMMs read windows
// from in place.
#include <memory>

#include "bindings.h"
#include "conv.h"
#include "parallel.h"

namespace needle {

ConvDims check_dims(const char* k, const Shape& sx, const Shape& sw, int64_t stride, int64_t pad) {
  if (sx.size() != 4 || sw.size() != 4)
    throw std::invalid_argument(std::string(k) + ": shape_x must be (N, H, W, C_in) and shape_w (K, K, C_in, C_out), "
                                "got " + fmt_tuple(sx) + " and " + fmt_tuple(sw));
  if (sw[2] != sx[3])
    throw std::invalid_argument(std::string(k) + ": the kernel's C_in (" + std::to_string(sw[2]) +
                                ") differs from the input's channels (" + std::to_string(sx[3]) + ")");
  if (stride < 1 || pad < 0)
    throw std::invalid_argument(std::string(k) + ": expected stride >= 1 and padding >= 0, got " +
                                std::to_string(stride) + " and " + std::to_string(pad));
  const int64_t H = sx[1] + 2 * pad, W = sx[2] + 2 * pad;
  if (sw[0] < 1 || sw[1] < 1 || sw[0] > H || sw[1] > W)
    throw std::invalid_argument(std::string(k) + ": the kernel " + fmt_tuple(sw) + " does not fit the input " +
                                fmt_tuple(sx) + " padded by " + std::to_string(pad));
  checked_numel(k, sx);
  checked_numel(k, sw);
  return ConvDims{sx[0], sx[1], sx[2], sx[3], sw[0], sw[1], sw[3], stride, pad, pad, (H - sw[0]) / stride + 1,
                  (W - sw[1]) / stride + 1};
}

Trim trim(const ConvDims& d) {
  const TapRange th = live_taps(d.KH, d.H, d.pad_h, d.stride, d.Ho), tw = live_taps(d.KW, d.W, d.pad_w, d.stride, d.Wo);
  return Trim{trimmed(d, th, tw), th.lo, tw.lo, d.KW};
}

std::unique_ptr<float[]> pad_nhwc(const float* x, int64_t N, int64_t H, int64_t W, int64_t C, Pads p) {
  const int64_t Hp = H + p.top + p.bottom, Wp = W + p.left + p.right;
  std::unique_ptr<float[]> padded(new float[N * Hp * Wp * C]);
  float* dst = padded.get();
  parallel_for(N * Hp, std::max<int64_t>(1, 4096 / (Wp * C)), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {  // padded row r of image r / Hp
      float* row = dst + r * Wp * C;
      const int64_t y = r % Hp - p.top;
      if (y < 0 || y >= H) {
        std::fill_n(row, Wp * C, 0.0f);
        continue;
      }
      std::fill_n(row, p.left * C, 0.0f);
      std::copy_n(x + ((r / Hp) * H + y) * W * C, W * C, row + p.left * C);
      std::fill_n(row + (p.left + W) * C, p.right * C, 0.0f);
    }
  }, 1);
  return padded;
}

PaddedInput pad_input(const float* x, const ConvDims& t) {
  // the live windows start t.pad rows above the image and end where the last one does
  const Pads p{t.pad_h, std::max<int64_t>(0, (t.Ho - 1) * t.stride + t.KH - t.pad_h - t.H), t.pad_w,
               std::max<int64_t>(0, (t.Wo - 1) * t.stride + t.KW - t.pad_w - t.W)};
  ConvDims d = t;
  d.H = t.H + p.top + p.bottom, d.W = t.W + p.left + p.right, d.pad_h = d.pad_w = 0;
  PaddedInput in{nullptr, x, d};
  if (p.top || p.bottom || p.left || p.right) {
    in.copy = pad_nhwc(x, t.N, t.H, t.W, t.C, p);
    in.base = in.copy.get();
  }
  return in;
}

}  // namespace needle
