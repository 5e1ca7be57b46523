// matmul, batched_matmul and the course's matmul_tiled.
#include "bindings.h"
#include "gemm.h"
#include "parallel.h"

namespace needle {

namespace {

constexpr int kTile = 8;  // the course's TILE: matmul_tiled operands are (rows/8, cols/8, 8, 8)

void check_dims(const char* kernel, std::initializer_list<int64_t> dims) {
  for (int64_t d : dims)
    if (d < 0) throw std::invalid_argument(std::string(kernel) + ": dimensions must be >= 0, got " + std::to_string(d));
}

void matmul(const Array& a, const Array& b, Array& out, int64_t m, int64_t n, int64_t p) {
  check_dims("matmul", {m, n, p});
  check_size("matmul", "a", a.size, checked_numel("matmul", {m, n}));
  check_size("matmul", "b", b.size, checked_numel("matmul", {n, p}));
  check_size("matmul", "out", out.size, checked_numel("matmul", {m, p}));
  ReleaseGIL nogil(m * n * p / 16);
  sgemm(m, n, p, a.ptr, n, b.ptr, p, out.ptr, p);
}

// matmul_t: a holds A (m x n) or, with trans_a, A^T (n x m); b holds B (n x p) or, with
// trans_b, B^T (p x n); both compact. The transposed operand is read while packing.
void matmul_t(const Array& a, const Array& b, Array& out, int64_t m, int64_t n, int64_t p, bool trans_a,
              bool trans_b) {
  check_dims("matmul_t", {m, n, p});
  check_size("matmul_t", "a", a.size, checked_numel("matmul_t", {m, n}));
  check_size("matmul_t", "b", b.size, checked_numel("matmul_t", {n, p}));
  check_size("matmul_t", "out", out.size, checked_numel("matmul_t", {m, p}));
  ReleaseGIL nogil(m * n * p / 16);
  sgemm_trans(trans_a, trans_b, m, n, p, a.ptr, trans_a ? m : n, b.ptr, trans_b ? n : p, out.ptr, p);
}

void batched_matmul(const Array& a, const Array& b, Array& out, int64_t batch, int64_t m, int64_t n, int64_t p) {
  const char* k = "batched_matmul";
  check_dims(k, {batch, m, n, p});
  check_size(k, "a", a.size, checked_numel(k, {batch, m, n}));
  check_size(k, "b", b.size, checked_numel(k, {batch, n, p}));
  check_size(k, "out", out.size, checked_numel(k, {batch, m, p}));
  ReleaseGIL nogil(batch * m * n * p / 16);
  if (m * n * p >= 64 * 64 * 64 || batch == 1) {  // big products: thread inside each
    for (int64_t i = 0; i < batch; ++i) sgemm(m, n, p, a.ptr + i * m * n, n, b.ptr + i * n * p, p, out.ptr + i * m * p, p);
    return;
  }
  parallel_for(batch, std::max<int64_t>(1, (1 << 18) / std::max<int64_t>(1, m * n * p)), [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i)
      sgemm_serial(m, n, p, a.ptr + i * m * n, n, b.ptr + i * n * p, p, out.ptr + i * m * p, p);
  }, 1);
}

// out tile (i, j) = sum_k a tile (i, k) @ b tile (k, j); every tile is a compact 8x8 block
void matmul_tiled(const Array& a, const Array& b, Array& out, int64_t m, int64_t n, int64_t p) {
  const char* k = "matmul_tiled";
  check_dims(k, {m, n, p});
  if (m % kTile || n % kTile || p % kTile)
    throw std::invalid_argument("matmul_tiled: m, n, p must be multiples of __tile_size__ = 8, got " +
                                std::to_string(m) + ", " + std::to_string(n) + ", " + std::to_string(p));
  check_size(k, "a", a.size, checked_numel(k, {m, n}));
  check_size(k, "b", b.size, checked_numel(k, {n, p}));
  check_size(k, "out", out.size, checked_numel(k, {m, p}));
  const int64_t mt = m / kTile, nt = n / kTile, pt = p / kTile, T2 = kTile * kTile;
  ReleaseGIL nogil(m * n * p / 16);
  parallel_for(mt * pt, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, nt)), [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      int64_t i = t / pt, j = t % pt;
      float acc[kTile][kTile] = {};
      for (int64_t q = 0; q < nt; ++q) {
        const float* at = a.ptr + (i * nt + q) * T2;
        const float* bt = b.ptr + (q * pt + j) * T2;
        for (int r = 0; r < kTile; ++r)
          for (int s = 0; s < kTile; ++s)
            for (int c = 0; c < kTile; ++c) acc[r][c] += at[r * kTile + s] * bt[s * kTile + c];
      }
      std::copy(&acc[0][0], &acc[0][0] + T2, out.ptr + t * T2);
    }
  }, 1);
}

}  // namespace

void register_matmul(py::module_& m) {
  m.def("matmul", &matmul, py::arg("a"), py::arg("b"), py::arg("out"), py::arg("m"), py::arg("n"), py::arg("p"));
  m.def("matmul_t", &matmul_t, py::arg("a"), py::arg("b"), py::arg("out"), py::arg("m"), py::arg("n"), py::arg("p"),
        py::arg("trans_a"), py::arg("trans_b"));
  m.def("batched_matmul", &batched_matmul, py::arg("a"), py::arg("b"), py::arg("out"), py::arg("batch"), py::arg("m"),
        py::arg("n"), py::arg("p"));
  m.def("matmul_tiled", &matmul_tiled, py::arg("a"), py::arg("b"), py::arg("out"), py::arg("m"), py::arg("n"),
        py::arg("p"));
  m.attr("__tile_size__") = kTile;
}

}  // namespace needle
