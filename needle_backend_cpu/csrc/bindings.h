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

// The files that bind kernels, one row each: X(family) stands for the function
// register_<family>(py::module_&) that file defines to add its kernels to the module.
// This table declares them below and module.cpp calls them in this order, so a new
// file of kernels is one row here.
#define NEEDLE_KERNEL_FAMILIES(X) \
  X(arrays)                       \
  X(elementwise)                  \
  X(reductions)                   \
  X(matmul)                       \
  X(conv)                         \
  X(norm)                         \
  X(optim)                        \
  X(recurrent)                    \
  X(gather)                       \
  X(softmax_loss)                 \
  X(peak)                         \
  X(buffer_cache)

#define NEEDLE_DECLARE_REGISTER(family) void register_##family(py::module_& m);
NEEDLE_KERNEL_FAMILIES(NEEDLE_DECLARE_REGISTER)
#undef NEEDLE_DECLARE_REGISTER

}  // namespace needle
