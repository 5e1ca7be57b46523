// The CPython type behind `Array(size, dtype="float32")` (see array_type.h).
#include "array_type.h"

#include <cstring>
#include <pybind11/numpy.h>
#include <new>
#include <string>

namespace needle {

namespace {

// Array(size, dtype="float32"): vectorcall, so construction skips tuple/dict packing.
PyObject* array_vectorcall(PyObject* type, PyObject* const* args, size_t nargsf, PyObject* kwnames) {
  Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
  PyObject* size_obj = nargs > 0 ? args[0] : nullptr;
  PyObject* dtype_obj = nargs > 1 ? args[1] : nullptr;
  Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
  for (Py_ssize_t i = 0; i < nkw; ++i) {
    const char* key = PyUnicode_AsUTF8(PyTuple_GET_ITEM(kwnames, i));
    if (!key) return nullptr;
    if (!std::strcmp(key, "size") && !size_obj) {
      size_obj = args[nargs + i];
    } else if (!std::strcmp(key, "dtype") && !dtype_obj) {
      dtype_obj = args[nargs + i];
    } else {
      return PyErr_Format(PyExc_TypeError, "Array() got an unexpected or repeated keyword argument '%s'", key);
    }
  }
  if (!size_obj || nargs > 2) return PyErr_Format(PyExc_TypeError, "Array(size, dtype='float32') takes 1 or 2 arguments");
  if (dtype_obj && dtype_obj != Py_None) {
    PyObject* s = PyObject_Str(dtype_obj);
    if (!s) return nullptr;
    const char* d = PyUnicode_AsUTF8(s);
    bool ok = d && !std::strcmp(d, "float32");
    std::string given = d ? d : "?";
    Py_DECREF(s);
    if (!ok)
      return PyErr_Format(PyExc_ValueError,
                          "Array: the cpu device holds float32 only, got dtype '%s'; use ndl.cpu_numpy() for float64",
                          given.c_str());
  }
  long long n = PyLong_AsLongLong(size_obj);
  if (n == -1 && PyErr_Occurred()) return nullptr;
  if (n < 0) return PyErr_Format(PyExc_ValueError, "Array: size must be >= 0, got %lld", n);
  auto* self = reinterpret_cast<ArrayObject*>(reinterpret_cast<PyTypeObject*>(type)->tp_alloc(
      reinterpret_cast<PyTypeObject*>(type), 0));
  if (!self) return nullptr;
  try {
    new (&self->arr) Array(n);
  } catch (const std::bad_alloc&) {
    self->arr.ptr = nullptr;  // tp_dealloc frees nothing
    Py_DECREF(self);
    return PyErr_Format(PyExc_MemoryError, "Array: cannot allocate %lld float32 elements", n);
  }
  return reinterpret_cast<PyObject*>(self);
}

PyObject* array_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  // the slow path (e.g. a subclass): repack into a vectorcall
  Py_ssize_t nargs = PyTuple_GET_SIZE(args);
  if (kwargs && PyDict_GET_SIZE(kwargs)) {
    PyObject* size = nargs > 0 ? PyTuple_GET_ITEM(args, 0) : PyDict_GetItemString(kwargs, "size");
    PyObject* dtype = nargs > 1 ? PyTuple_GET_ITEM(args, 1) : PyDict_GetItemString(kwargs, "dtype");
    PyObject* pos[2] = {size, dtype};
    if (!size) return PyErr_Format(PyExc_TypeError, "Array(size, dtype='float32') needs a size");
    return array_vectorcall(reinterpret_cast<PyObject*>(type), pos, dtype ? 2 : 1, nullptr);
  }
  return array_vectorcall(reinterpret_cast<PyObject*>(type), &PyTuple_GET_ITEM(args, 0), nargs, nullptr);
}

void array_dealloc(PyObject* o) {
  auto* self = reinterpret_cast<ArrayObject*>(o);
  self->arr.~Array();
  if (self->has_source) PyBuffer_Release(&self->source);
  Py_TYPE(o)->tp_free(o);
}

// host_array(a): a 1-D float32 NumPy array over a's memory (shared, writable) that keeps a alive.
pybind11::object host_array(pybind11::handle a) {
  Array* arr = as_array(a.ptr());
  if (!arr) throw pybind11::type_error("host_array: expected a needle_backend_cpu.Array");
  return pybind11::array_t<float>({arr->size}, {(int64_t)sizeof(float)}, arr->ptr, a);
}

// from_host_array(obj): an Array over the memory of a writable, C-contiguous float32 buffer
// (a 1-D NumPy array); the memory is shared and obj's buffer is held until the Array dies.
pybind11::object from_host_array(pybind11::handle obj) {
  Py_buffer view;
  if (PyObject_GetBuffer(obj.ptr(), &view, PyBUF_WRITABLE | PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0)
    throw pybind11::error_already_set();
  const char* fmt = view.format ? view.format : "B";
  if (view.itemsize != (Py_ssize_t)sizeof(float) || !(fmt[0] == 'f' || (fmt[0] == '<' && fmt[1] == 'f') ||
                                                       (fmt[0] == '=' && fmt[1] == 'f'))) {
    std::string got = fmt;
    PyBuffer_Release(&view);
    throw pybind11::type_error("from_host_array: the cpu device holds float32 only, got buffer format '" + got + "'");
  }
  auto* self = reinterpret_cast<ArrayObject*>(ArrayType.tp_alloc(&ArrayType, 0));
  if (!self) {
    PyBuffer_Release(&view);
    throw pybind11::error_already_set();
  }
  new (&self->arr) Array(static_cast<float*>(view.buf), view.len / (Py_ssize_t)sizeof(float));
  self->source = view;
  self->has_source = true;
  return pybind11::reinterpret_steal<pybind11::object>(reinterpret_cast<PyObject*>(self));
}

PyObject* array_ptr(PyObject* o, PyObject*) {
  return PyLong_FromVoidPtr(reinterpret_cast<ArrayObject*>(o)->arr.ptr);
}

PyObject* array_repr(PyObject* o) {
  return PyUnicode_FromFormat("<needle_backend_cpu.Array size=%lld>", (long long)reinterpret_cast<ArrayObject*>(o)->arr.size);
}

PyObject* array_get_size(PyObject* o, void*) { return PyLong_FromLongLong(reinterpret_cast<ArrayObject*>(o)->arr.size); }
PyObject* array_get_dtype(PyObject*, void*) { return PyUnicode_FromString("float32"); }

// NumPy's array interface: the buffer is host memory, so NumPy (and MPI through
// mpi4py) can read and write it in place. np.asarray(buf) keeps `buf` alive.
PyObject* array_get_interface(PyObject* o, void*) {
  const Array& a = reinterpret_cast<ArrayObject*>(o)->arr;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  const char* typestr = ">f4";
#else
  const char* typestr = "<f4";
#endif
  return Py_BuildValue("{s:(L),s:s,s:(NO),s:i}", "shape", (long long)a.size, "typestr", typestr, "data",
                       PyLong_FromVoidPtr(a.ptr), Py_False, "version", 3);
}

PyMethodDef array_methods[] = {
    {"ptr", array_ptr, METH_NOARGS, "The buffer's address (equal for every view of it)."},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef array_getset[] = {
    {"size", array_get_size, nullptr, "Number of float32 elements.", nullptr},
    {"dtype", array_get_dtype, nullptr, "Always 'float32' on this device.", nullptr},
    {"__array_interface__", array_get_interface, nullptr, "The buffer as a 1-D float32 NumPy array (host memory).",
     nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

}  // namespace

PyTypeObject ArrayType = [] {
  PyTypeObject t{PyVarObject_HEAD_INIT(nullptr, 0)};
  t.tp_name = "needle_backend_cpu.Array";
  t.tp_basicsize = sizeof(ArrayObject);
  t.tp_dealloc = array_dealloc;
  t.tp_repr = array_repr;
  t.tp_flags = Py_TPFLAGS_DEFAULT;
  t.tp_doc = "Array(size, dtype='float32'): a 64-byte aligned float32 device buffer (uninitialised).";
  t.tp_methods = array_methods;
  t.tp_getset = array_getset;
  t.tp_new = array_new;
  t.tp_vectorcall = array_vectorcall;
  return t;
}();

void add_array_type(pybind11::module_& m) {
  if (PyType_Ready(&ArrayType) < 0) throw pybind11::error_already_set();
  Py_INCREF(&ArrayType);
  m.add_object("Array", reinterpret_cast<PyObject*>(&ArrayType));
  m.def("host_array", &host_array, pybind11::arg("a"));
  m.def("from_host_array", &from_host_array, pybind11::arg("obj"));
}

}  // namespace needle
