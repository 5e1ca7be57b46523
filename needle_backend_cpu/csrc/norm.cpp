// Training-mode batch normalisation forward (optional kernel batchnorm_forward,
// docs/backends.md §3) over channels-last rows: the statistics of each channel (a
// column of the (rows, channels) input) and the normalised output in three passes,
// where core's composition takes about ten kernels and as many temporaries.
// Column sums go in float over blocks of rows, then into double, so long columns keep
// float accuracy; one thread (the passes are memory bound and the arrays small).
#include <cmath>
#include <vector>

#include "bindings.h"

namespace needle {

namespace {

constexpr int64_t kBlock = 64;  // rows summed in float before going into the double total

// total[c] = sum over rows of f(x[r, c], c), float within blocks of rows, double across
template <class F>
void column_sums(const float* x, int64_t rows, int64_t C, std::vector<double>& total, F f) {
  std::vector<float> part(C);
  std::fill(total.begin(), total.end(), 0.0);
  for (int64_t r0 = 0; r0 < rows; r0 += kBlock) {
    std::fill(part.begin(), part.end(), 0.0f);
    for (int64_t r = r0; r < std::min(rows, r0 + kBlock); ++r) {
      const float* row = x + r * C;
      for (int64_t c = 0; c < C; ++c) part[c] += f(row[c], c);
    }
    for (int64_t c = 0; c < C; ++c) total[c] += part[c];
  }
}

void batchnorm_forward(const Array& x, const Array& weight, const Array& bias, Array& out, Array& xhat, Array& mean,
                       Array& var, Array& inv_std, int64_t rows, int64_t channels, double eps) {
  const char* k = "batchnorm_forward";
  if (rows < 1 || channels < 0)
    throw std::invalid_argument("batchnorm_forward: expected rows >= 1 and channels >= 0, got " +
                                std::to_string(rows) + " and " + std::to_string(channels));
  const int64_t n = checked_numel(k, {rows, channels});
  for (auto [name, a] : {std::pair{"x", &x}, {"out", &out}, {"xhat", &xhat}}) check_size(k, name, a->size, n);
  for (auto [name, a] : {std::pair{"weight", &weight}, {"bias", &bias}, {"mean", &mean}, {"var", &var},
                         {"inv_std", &inv_std}})
    check_size(k, name, a->size, channels);
  ReleaseGIL nogil(n);
  const int64_t C = channels;
  std::vector<double> total(C);
  column_sums(x.ptr, rows, C, total, [](float v, int64_t) { return v; });
  for (int64_t c = 0; c < C; ++c) mean.ptr[c] = (float)(total[c] / (double)rows);
  const float* m = mean.ptr;
  column_sums(x.ptr, rows, C, total, [m](float v, int64_t c) {
    const float d = v - m[c];
    return d * d;
  });
  for (int64_t c = 0; c < C; ++c) {
    var.ptr[c] = (float)(total[c] / (double)rows);
    inv_std.ptr[c] = 1.0f / std::sqrt(var.ptr[c] + (float)eps);
  }
  const float *s = inv_std.ptr, *w = weight.ptr, *b = bias.ptr;
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x.ptr + r * C;
    float *xh = xhat.ptr + r * C, *o = out.ptr + r * C;
    for (int64_t c = 0; c < C; ++c) {
      const float v = (row[c] - m[c]) * s[c];
      xh[c] = v;
      o[c] = v * w[c] + b[c];
    }
  }
}

}  // namespace

void register_norm(py::module_& m) {
  m.def("batchnorm_forward", &batchnorm_forward, py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("out"),
        py::arg("xhat"), py::arg("mean"), py::arg("var"), py::arg("inv_std"), py::arg("rows"), py::arg("channels"),
        py::arg("eps"));
}

}  // namespace needle
