// Buffers and the strided-view primitives: Array, to_numpy, from_numpy, fill,
// compact, ewise_setitem, scalar_setitem.
#include <cstring>

#include "bindings.h"
#include "parallel.h"
#include "strided.h"

namespace needle {

namespace {

void copy_contiguous(const float* src, float* dst, int64_t n) {
  parallel_for(n, 1 << 16, [&](int64_t lo, int64_t hi) { std::memcpy(dst + lo, src + lo, (hi - lo) * sizeof(float)); });
}

void compact(const Array& a, Array& out, const Shape& shape, const Shape& strides, int64_t offset) {
  int64_t n = check_view("compact", "a", a.size, shape, strides, offset);
  check_size("compact", "out", out.size, n);
  ReleaseGIL nogil(n);
  strided_copy(a.ptr + offset, out.ptr, plan_copy(shape, strides, compact_strides(shape)));
}

void ewise_setitem(const Array& a, Array& out, const Shape& shape, const Shape& strides, int64_t offset) {
  int64_t n = check_view("ewise_setitem", "out", out.size, shape, strides, offset);
  check_size("ewise_setitem", "a", a.size, n);
  ReleaseGIL nogil(n);
  strided_copy(a.ptr, out.ptr + offset, plan_copy(shape, compact_strides(shape), strides));
}

void scalar_setitem(int64_t size, float val, Array& out, const Shape& shape, const Shape& strides, int64_t offset) {
  int64_t n = check_view("scalar_setitem", "out", out.size, shape, strides, offset);
  if (size != n)
    throw std::invalid_argument("scalar_setitem: `size` must equal prod(shape) = " + std::to_string(n) + ", got " +
                                std::to_string(size));
  ReleaseGIL nogil(n);
  strided_fill(out.ptr + offset, shape, strides, val);
}

void fill(Array& out, float val) {
  ReleaseGIL nogil(out.size);
  parallel_for(out.size, 1 << 16, [&](int64_t lo, int64_t hi) { std::fill(out.ptr + lo, out.ptr + hi, val); });
}

py::array_t<float> to_numpy(const Array& a, const Shape& shape, const Shape& strides, int64_t offset) {
  int64_t n = check_view("to_numpy", "a", a.size, shape, strides, offset);
  py::array_t<float> result(shape);
  float* dst = result.mutable_data();
  ReleaseGIL nogil(n);
  strided_copy(a.ptr + offset, dst, plan_copy(shape, strides, compact_strides(shape)));
  return result;
}

void from_numpy(py::array_t<float, py::array::c_style | py::array::forcecast> src, Array& out) {
  check_size("from_numpy", "out", out.size, (int64_t)src.size());
  const float* p = src.data();
  ReleaseGIL nogil(out.size);
  copy_contiguous(p, out.ptr, out.size);
}

}  // namespace

void register_arrays(py::module_& m) {
  add_array_type(m);
  m.def("to_numpy", &to_numpy, py::arg("a"), py::arg("shape"), py::arg("strides"), py::arg("offset"));
  m.def("from_numpy", &from_numpy, py::arg("a"), py::arg("out"));
  m.def("fill", &fill, py::arg("out"), py::arg("val"));
  m.def("compact", &compact, py::arg("a"), py::arg("out"), py::arg("shape"), py::arg("strides"), py::arg("offset"));
  m.def("ewise_setitem", &ewise_setitem, py::arg("a"), py::arg("out"), py::arg("shape"), py::arg("strides"),
        py::arg("offset"));
  m.def("scalar_setitem", &scalar_setitem, py::arg("size"), py::arg("val"), py::arg("out"), py::arg("shape"),
        py::arg("strides"), py::arg("offset"));
}

}  // namespace needle
