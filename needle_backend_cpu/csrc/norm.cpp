// Training-mode batch normalisation forward and backward (optional kernels
// batchnorm_forward / batchnorm_backward, docs/backends.md §3) over channels-last rows:
// each channel is a column of a (rows, channels) matrix. The forward takes the
// statistics and the normalised output in three passes, the backward the parameter
// adjoints and the input adjoint in two, where core's compositions take about ten
// kernels and as many temporaries each.
// Column sums go in float over blocks of rows, then into double, so long columns keep
// float accuracy. The forward runs on one thread; the backward sums its row blocks in
// parallel, each block into its own slot, and adds the slots in block order, so its
// result does not depend on the thread count.
#include <cmath>
#include <vector>

#include "bindings.h"
#include "parallel.h"

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

// dbias = Σ g, dweight = Σ g·x̂ (per column), then
// dx = weight·inv_std/rows · (rows·g - dbias - x̂·dweight)
void batchnorm_backward(const Array& g, const Array& xhat, const Array& weight, const Array& inv_std, Array& dx,
                        Array& dweight, Array& dbias, int64_t rows, int64_t channels) {
  const char* k = "batchnorm_backward";
  if (rows < 1 || channels < 0)
    throw std::invalid_argument("batchnorm_backward: expected rows >= 1 and channels >= 0, got " +
                                std::to_string(rows) + " and " + std::to_string(channels));
  const int64_t n = checked_numel(k, {rows, channels});
  for (auto [name, a] : {std::pair{"g", &g}, {"xhat", &xhat}, {"dx", &dx}}) check_size(k, name, a->size, n);
  for (auto [name, a] : {std::pair{"weight", &weight}, {"inv_std", &inv_std}, {"dweight", &dweight},
                         {"dbias", &dbias}})
    check_size(k, name, a->size, channels);
  ReleaseGIL nogil(n);
  const int64_t C = channels, blocks = (rows + kBlock - 1) / kBlock;
  // per block: C partial sums of g, then C of g·x̂
  std::vector<float> part(blocks * 2 * C);
  const float *gp = g.ptr, *hp = xhat.ptr;
  parallel_for(blocks, std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(1, kBlock * C)), [&](int64_t lo, int64_t hi) {
    for (int64_t b = lo; b < hi; ++b) {
      float *sg = part.data() + b * 2 * C, *sgh = sg + C;
      std::fill(sg, sg + 2 * C, 0.0f);
      for (int64_t r = b * kBlock; r < std::min(rows, (b + 1) * kBlock); ++r) {
        const float *gr = gp + r * C, *hr = hp + r * C;
        for (int64_t c = 0; c < C; ++c) {
          sg[c] += gr[c];
          sgh[c] += gr[c] * hr[c];
        }
      }
    }
  }, 1);
  std::vector<double> total(2 * C, 0.0);
  for (int64_t b = 0; b < blocks; ++b)
    for (int64_t c = 0; c < 2 * C; ++c) total[c] += part[b * 2 * C + c];
  std::vector<float> scale(C);
  for (int64_t c = 0; c < C; ++c) {
    dbias.ptr[c] = (float)total[c];
    dweight.ptr[c] = (float)total[C + c];
    scale[c] = weight.ptr[c] * inv_std.ptr[c] / (float)rows;
  }
  const float *db = dbias.ptr, *dw = dweight.ptr, *sc = scale.data();
  const float nr = (float)rows;
  parallel_for(rows, std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(1, C)), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const float *gr = gp + r * C, *hr = hp + r * C;
      float* o = dx.ptr + r * C;
      for (int64_t c = 0; c < C; ++c) o[c] = sc[c] * (nr * gr[c] - db[c] - hr[c] * dw[c]);
    }
  }, 1);
}

}  // namespace

void register_norm(py::module_& m) {
  m.def("batchnorm_forward", &batchnorm_forward, py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("out"),
        py::arg("xhat"), py::arg("mean"), py::arg("var"), py::arg("inv_std"), py::arg("rows"), py::arg("channels"),
        py::arg("eps"));
  m.def("batchnorm_backward", &batchnorm_backward, py::arg("g"), py::arg("xhat"), py::arg("weight"),
        py::arg("inv_std"), py::arg("dx"), py::arg("dweight"), py::arg("dbias"), py::arg("rows"),
        py::arg("channels"));
}

}  // namespace needle
