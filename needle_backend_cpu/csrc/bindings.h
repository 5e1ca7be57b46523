// Shared by the files that bind kernels: pybind11, the GIL policy, registration hooks.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>

#include "array_type.h"
#include "buffer.h"

namespace py = pybind11;

namespace needle {

// Release the GIL only for work worth it: releasing costs more than a tiny kernel.
class ReleaseGIL {
 public:
  explicit ReleaseGIL(int64_t work) {
    if (work >= (int64_t{1} << 14)) release_.emplace();
  }

 private:
  std::optional<py::gil_scoped_release> release_;
};

// One per file: each adds its kernels to the module.
void register_arrays(py::module_& m);
void register_elementwise(py::module_& m);
void register_reductions(py::module_& m);
void register_matmul(py::module_& m);
void register_conv(py::module_& m);
void register_norm(py::module_& m);
void register_optim(py::module_& m);
void register_recurrent(py::module_& m);
void register_gather(py::module_& m);
void register_softmax_loss(py::module_& m);
void register_peak(py::module_& m);
void register_buffer_cache(py::module_& m);

}  // namespace needle
