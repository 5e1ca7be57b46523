// The extension module needle_backend_cpu._kernels: the kernel namespace of device cpu.
// setup.py compiles the same sources once per ISA variant (_kernels_avx2, ...), each
// under its own module name; the plugin loads one of them.
#include "bindings.h"
#include "parallel.h"
#include "simd.h"

#ifndef NEEDLE_MODULE_NAME
#define NEEDLE_MODULE_NAME _kernels
#endif
#ifndef NEEDLE_ISA_NAME
#define NEEDLE_ISA_NAME "native"
#endif

PYBIND11_MODULE(NEEDLE_MODULE_NAME, m) {
  m.doc() = "needle's C++ CPU kernels (see docs/backends.md for every signature)";
#define NEEDLE_CALL_REGISTER(family) needle::register_##family(m);
  NEEDLE_KERNEL_FAMILIES(NEEDLE_CALL_REGISTER)
#undef NEEDLE_CALL_REGISTER
  m.def("set_num_threads", [](int n) {
    if (n < 1) throw std::invalid_argument("set_num_threads: expected a thread count >= 1, got " + std::to_string(n));
    needle::set_num_threads(n);
  }, py::arg("n"), "Threads the kernels use (default: NEEDLE_NUM_THREADS or the available cores).");
  m.def("get_num_threads", &needle::num_threads);
  m.attr("_simd_width") = VL;
  m.attr("_isa") = NEEDLE_ISA_NAME;  // which build variant this module is
}
