// The extension module needle_backend_cpu._kernels: the kernel namespace of device cpu.
#include "bindings.h"
#include "parallel.h"
#include "simd.h"

PYBIND11_MODULE(_kernels, m) {
  m.doc() = "needle's C++ CPU kernels (see docs/backends.md for every signature)";
  needle::register_arrays(m);
  needle::register_elementwise(m);
  needle::register_reductions(m);
  needle::register_matmul(m);
  needle::register_conv(m);
  needle::register_optim(m);
  m.def("set_num_threads", [](int n) {
    if (n < 1) throw std::invalid_argument("set_num_threads: expected a thread count >= 1, got " + std::to_string(n));
    needle::set_num_threads(n);
  }, py::arg("n"), "Threads the kernels use (default: NEEDLE_NUM_THREADS or the available cores).");
  m.def("get_num_threads", &needle::num_threads);
  m.attr("_simd_width") = VL;
}
