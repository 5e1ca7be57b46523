// `Array` as a plain CPython type (not a pybind11 class): allocating one is on the
// per-op hot path of every Tensor op, and a pybind11 instance costs several times
// more to create and to unwrap. The type_caster below lets pybind11-bound kernels take
// `Array&` arguments with a single type check.
#pragma once

#include <Python.h>
#include <pybind11/pybind11.h>

#include "buffer.h"

namespace needle {

struct ArrayObject {
  PyObject_HEAD
  Array arr;
  Py_buffer source;  // for an Array over borrowed memory: the exporter's buffer, released on dealloc
  bool has_source;
};

extern PyTypeObject ArrayType;

// Ready the type and add it to module `m` as `Array`, with the DLPack hooks
// `host_array(a)` and `from_host_array(obj)` (docs/backends.md §8).
void add_array_type(pybind11::module_& m);

inline Array* as_array(PyObject* o) {
  return Py_TYPE(o) == &ArrayType || PyObject_TypeCheck(o, &ArrayType) ? &reinterpret_cast<ArrayObject*>(o)->arr
                                                                        : nullptr;
}

}  // namespace needle

namespace pybind11::detail {

template <>
struct type_caster<needle::Array> {
  needle::Array* value = nullptr;
  static constexpr auto name = const_name("needle_backend_cpu.Array");

  bool load(handle src, bool) {
    value = needle::as_array(src.ptr());
    return value != nullptr;
  }
  template <typename T>
  using cast_op_type = needle::Array&;
  operator needle::Array&() { return *value; }
};

}  // namespace pybind11::detail
