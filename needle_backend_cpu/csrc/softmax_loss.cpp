// Fused softmax cross-entropy (optional kernels softmax_cross_entropy /
// softmax_cross_entropy_backward, docs/backends.md §3): the per-row loss
// logsumexp(x) - x[label] and its adjoint g * (softmax(x) - onehot(label)) in one
// pass over the logits each, with no (rows, classes) temporary: a language model's
// logits are rows x vocabulary, and the composed loss holds several of those at once.
// Both follow the composition's steps (docs/backends.md), so inf/NaN logits give what
// core's ops give; labels arrive as float32 values (the device holds float32 only).
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "bindings.h"
#include "parallel.h"
#include "prelude.h"
#include "reductions.h"

namespace needle {

namespace {

constexpr int64_t kGrain = 1 << 13;  // logits per thread below which rows stay on the caller

void check_shape(const char* kernel, int64_t rows, int64_t classes, const Array& logits, const Array& labels) {
  if (rows < 0 || classes < 1)
    throw std::invalid_argument(std::string(kernel) + ": expected rows >= 0 and classes >= 1, got " +
                                std::to_string(rows) + " and " + std::to_string(classes));
  check_size(kernel, "logits", logits.size, rows * classes);
  check_size(kernel, "labels", labels.size, rows);
  for (int64_t r = 0; r < rows; ++r) {  // all checked before anything is written
    const float v = labels.ptr[r];
    if (!(v >= 0.0f) || v >= (float)classes || v != std::floor(v))
      throw std::invalid_argument(std::string(kernel) + ": labels[" + std::to_string(r) + "] = " + std::to_string(v) +
                                  " is not a class number in [0, " + std::to_string(classes) + ")");
  }
}

int64_t grain_rows(int64_t classes) { return std::max<int64_t>(1, kGrain / classes); }

// out[r] = logsumexp(x[r]) - x[r, label[r]]
void softmax_cross_entropy(const Array& logits, const Array& labels, Array& out, int64_t rows, int64_t classes) {
  check_shape("softmax_cross_entropy", rows, classes, logits, labels);
  check_size("softmax_cross_entropy", "out", out.size, rows);
  ReleaseGIL nogil(rows * classes);
  parallel_for(rows, grain_rows(classes), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const float* x = logits.ptr + r * classes;
      out.ptr[r] = logsumexp_row(x, classes) - x[(int64_t)labels.ptr[r]];
    }
  }, 1);
}

// d[r] = g[r] * softmax(x[r]) - g[r] * onehot(label[r]), softmax as core's Softmax op:
// shift = fmax(max, lowest finite), e = exp(x - shift), p = e / fmax(sum e, 1)
void softmax_cross_entropy_backward(const Array& logits, const Array& labels, const Array& out_grad, Array& dlogits,
                                    int64_t rows, int64_t classes) {
  check_shape("softmax_cross_entropy_backward", rows, classes, logits, labels);
  check_size("softmax_cross_entropy_backward", "out_grad", out_grad.size, rows);
  check_size("softmax_cross_entropy_backward", "dlogits", dlogits.size, rows * classes);
  ReleaseGIL nogil(rows * classes);
  parallel_for(rows, grain_rows(classes), [&](int64_t lo, int64_t hi) {
    using namespace prelude;
    for (int64_t r = lo; r < hi; ++r) {
      const float* x = logits.ptr + r * classes;
      float* d = dlogits.ptr + r * classes;
      const float shift = std::fmax(row_max(x, classes), std::numeric_limits<float>::lowest());
      const vfloat vshift = vsplat(shift);
      vfloat acc = vsplat(0.0f);
      int64_t j = 0;
      for (; j + VL <= classes; j += VL) {
        const vfloat e = exp(vload(x + j) - vshift);
        vstore(d + j, e);
        acc += e;
      }
      float total = hsum(acc);
      for (; j < classes; ++j) total += (d[j] = std::exp(x[j] - shift));
      total = std::fmax(total, 1.0f);  // NaN (an inf or NaN logit) -> 1, as the composition's maximum(1.0)
      const float g = out_grad.ptr[r];
      const vfloat vtotal = vsplat(total), vg = vsplat(g);
      for (j = 0; j + VL <= classes; j += VL) vstore(d + j, vg * (vload(d + j) / vtotal));
      for (; j < classes; ++j) d[j] = g * (d[j] / total);
      d[(int64_t)labels.ptr[r]] += -g;
    }
  }, 1);
}

}  // namespace

void register_softmax_loss(py::module_& m) {
  m.def("softmax_cross_entropy", &softmax_cross_entropy, py::arg("logits"), py::arg("labels"), py::arg("out"),
        py::arg("rows"), py::arg("classes"));
  m.def("softmax_cross_entropy_backward", &softmax_cross_entropy_backward, py::arg("logits"), py::arg("labels"),
        py::arg("out_grad"), py::arg("dlogits"), py::arg("rows"), py::arg("classes"));
}

}  // namespace needle
