// The machine's FMA peak at this module's vector width: independent FMA chains, enough
// of them to cover the FMA latency on every pipe, on `threads` threads at once. The
// bench reports SGEMM as a fraction of it (bench/rows_kernels.py).
#include <stdexcept>
#include <string>
#include <vector>

#include "bindings.h"
#include "parallel.h"
#include "simd.h"

namespace needle {

namespace {

// 4-cycle FMA latency x 2 pipes needs >= 8 chains; more hides issue jitter, within the
// register file (32 zmm with AVX-512, 16 ymm/xmm otherwise)
constexpr int kChains = VL == 16 ? 24 : 12;

// kChains * iters FMAs on one thread; the sum keeps the chains alive (no fast-math:
// the compiler may neither fold nor reassociate them)
float fma_chains(int64_t iters) {
  vfloat acc[kChains];
  const vfloat a = vsplat(0.999f), b = vsplat(1e-6f);
  for (int c = 0; c < kChains; ++c) acc[c] = vsplat((float)c);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 32
    for (int c = 0; c < kChains; ++c) acc[c] = vfma(acc[c], a, b);
  }
  vfloat total = acc[0];
  for (int c = 1; c < kChains; ++c) total += acc[c];
  return hsum(total);
}

// FLOPs done (2 per lane of every FMA), over `threads` parts of `iters` iterations each
double fma_peak(int64_t iters, int threads) {
  if (iters < 1 || threads < 1)
    throw std::invalid_argument("_fma_peak: expected iters >= 1 and threads >= 1, got " + std::to_string(iters) +
                                " and " + std::to_string(threads));
  std::vector<float> sink(threads);
  {
    py::gil_scoped_release nogil;
    parallel_run(threads, [&](int part, int) { sink[part] = fma_chains(iters); });
  }
  volatile float keep = sink[0];
  (void)keep;
  return 2.0 * VL * kChains * (double)iters * threads;
}

}  // namespace

void register_peak(py::module_& m) {
  m.def("_fma_peak", &fma_peak, py::arg("iters"), py::arg("threads"),
        "Run `threads` parts of `iters` x (independent vector FMA chains); returns the FLOPs done "
        "(time it for the FMA peak at this module's vector width).");
}

}  // namespace needle
