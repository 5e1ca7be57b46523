// Row gather and scatter-add (optional kernels take_rows / scatter_add_rows,
// docs/backends.md §3): an embedding lookup and its weight adjoint without a one-hot
// matrix. Row numbers arrive as float32 values (the device holds float32 only).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "bindings.h"
#include "parallel.h"

namespace needle {

namespace {

// index[k] as a row number, or a ValueError naming it
int64_t row_of(const char* kernel, const float* index, int64_t k, int64_t rows) {
  const float v = index[k];
  if (!(v >= 0.0f) || v >= (float)rows || v != std::floor(v))
    throw std::invalid_argument(std::string(kernel) + ": index[" + std::to_string(k) + "] = " + std::to_string(v) +
                                " is not a row number in [0, " + std::to_string(rows) + ")");
  return (int64_t)v;
}

// rows of `width` floats in a buffer of `size` elements
int64_t rows_in(const char* kernel, const char* arg, int64_t size, int64_t width) {
  if (size % width)
    throw std::invalid_argument(std::string(kernel) + ": `" + arg + "` of " + std::to_string(size) +
                                " elements is not a whole number of rows of width " + std::to_string(width));
  return size / width;
}

void check_counts(const char* kernel, int64_t count, int64_t width) {
  if (count < 0 || width < 0)
    throw std::invalid_argument(std::string(kernel) + ": count and width must be >= 0, got " + std::to_string(count) +
                                " and " + std::to_string(width));
}

// out[k, :] = table[index[k], :]
void take_rows(const Array& table, const Array& index, Array& out, int64_t count, int64_t width) {
  check_counts("take_rows", count, width);
  check_size("take_rows", "index", index.size, count);
  check_size("take_rows", "out", out.size, count * width);
  if (width == 0 || count == 0) return;
  const int64_t rows = rows_in("take_rows", "table", table.size, width);
  for (int64_t k = 0; k < count; ++k) row_of("take_rows", index.ptr, k, rows);  // all checked before any write
  ReleaseGIL nogil(count * width);
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 14) / width);
  parallel_for(count, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t k = lo; k < hi; ++k)
      std::memcpy(out.ptr + k * width, table.ptr + (int64_t)index.ptr[k] * width, width * sizeof(float));
  }, 1);
}

// out (rows, width) = 0, then out[index[k], :] += src[k, :] for k = 0, 1, ... in order
void scatter_add_rows(const Array& src, const Array& index, Array& out, int64_t count, int64_t width) {
  check_counts("scatter_add_rows", count, width);
  check_size("scatter_add_rows", "index", index.size, count);
  check_size("scatter_add_rows", "src", src.size, count * width);
  if (width == 0) return;
  const int64_t rows = rows_in("scatter_add_rows", "out", out.size, width);
  for (int64_t k = 0; k < count; ++k) row_of("scatter_add_rows", index.ptr, k, rows);
  ReleaseGIL nogil(out.size + count * width);
  std::memset(out.ptr, 0, out.size * sizeof(float));
  // columns split across threads: each element's sum keeps the order k = 0, 1, ... (deterministic)
  parallel_for(width, 256, [&](int64_t lo, int64_t hi) {
    for (int64_t k = 0; k < count; ++k) {
      float* dst = out.ptr + (int64_t)index.ptr[k] * width;
      const float* s = src.ptr + k * width;
      for (int64_t j = lo; j < hi; ++j) dst[j] += s[j];
    }
  }, 16);
}

}  // namespace

void register_gather(py::module_& m) {
  m.def("take_rows", &take_rows, py::arg("table"), py::arg("index"), py::arg("out"), py::arg("count"),
        py::arg("width"));
  m.def("scatter_add_rows", &scatter_add_rows, py::arg("src"), py::arg("index"), py::arg("out"), py::arg("count"),
        py::arg("width"));
}

}  // namespace needle
