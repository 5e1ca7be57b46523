// Fused optimiser updates (in place on the parameter and its state; the gradient is
// only read). Scalar coefficients are derived in double, then rounded to float once,
// as the NDArray fallback in needle.optim does with Python floats.
#include <cmath>
#include <type_traits>

#include "bindings.h"
#include "parallel.h"
#include "prelude.h"

namespace needle {

namespace {

constexpr int64_t kGrain = 1 << 15;  // elements per thread: smaller updates stay on the caller

void check_all(const char* k, int64_t size, std::initializer_list<std::pair<const char*, const Array*>> arrays) {
  if (size < 0) throw std::invalid_argument(std::string(k) + ": size must be >= 0");
  for (auto& [name, arr] : arrays) check_size(k, name, arr->size, size);
}

void sgd_update(Array& w, const Array& g, Array& u, int64_t size, double lr, double momentum, double weight_decay) {
  check_all("sgd_update", size, {{"w", &w}, {"g", &g}, {"u", &u}});
  const float flr = (float)lr, fm = (float)momentum, f1m = (float)(1.0 - momentum), fwd = (float)weight_decay;
  float* __restrict pw = w.ptr;
  float* __restrict pu = u.ptr;
  const float* __restrict pg = g.ptr;
  ReleaseGIL nogil(size);
  parallel_for(size, kGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      float gi = pg[i] + fwd * pw[i];
      float ui = fm * pu[i] + f1m * gi;
      pu[i] = ui;
      pw[i] = pw[i] - flr * ui;
    }
  });
}

// One Adam update, the same expression for float (tails) and vfloat (SIMD bodies).
struct AdamStep {
  float lr, b1, one_b1, b2, one_b2, eps, wd, bc1, bc2;
  template <class T>
  void operator()(float* w, const float* g, float* m, float* v) const {
    T wi = load<T>(w), gi = load<T>(g) + wd * wi;
    T mi = b1 * load<T>(m) + one_b1 * gi;
    T vi = b2 * load<T>(v) + one_b2 * (gi * gi);
    store(m, mi);
    store(v, vi);
    store(w, wi - (lr * (mi / bc1)) / (prelude::sqrt(vi / bc2) + eps));
  }
  template <class T>
  static T load(const float* p) {
    if constexpr (std::is_same_v<T, float>) return *p; else return vload(p);
  }
  static void store(float* p, float x) { *p = x; }
  static void store(float* p, vfloat x) { vstore(p, x); }
};

void adam_update(Array& w, const Array& g, Array& m, Array& v, int64_t size, double lr, double beta1, double beta2,
                 double eps, double weight_decay, int64_t t) {
  check_all("adam_update", size, {{"w", &w}, {"g", &g}, {"m", &m}, {"v", &v}});
  if (t < 1) throw std::invalid_argument("adam_update: t counts steps from 1 (already incremented), got " + std::to_string(t));
  const float flr = (float)lr, fb1 = (float)beta1, f1b1 = (float)(1.0 - beta1), fb2 = (float)beta2,
              f1b2 = (float)(1.0 - beta2), feps = (float)eps, fwd = (float)weight_decay,
              bc1 = (float)(1.0 - std::pow(beta1, (double)t)), bc2 = (float)(1.0 - std::pow(beta2, (double)t));
  const AdamStep step{flr, fb1, f1b1, fb2, f1b2, feps, fwd, bc1, bc2};
  float* pw = w.ptr;
  float* pm = m.ptr;
  float* pv = v.ptr;
  const float* pg = g.ptr;
  ReleaseGIL nogil(size);
  parallel_for(size, kGrain, [&](int64_t lo, int64_t hi) {
    int64_t i = lo;
    for (; i + VL <= hi; i += VL) step.operator()<vfloat>(pw + i, pg + i, pm + i, pv + i);
    for (; i < hi; ++i) step.operator()<float>(pw + i, pg + i, pm + i, pv + i);
  });
}

}  // namespace

void register_optim(py::module_& m) {
  m.def("sgd_update", &sgd_update, py::arg("w"), py::arg("g"), py::arg("u"), py::arg("size"), py::arg("lr"),
        py::arg("momentum"), py::arg("weight_decay"));
  m.def("adam_update", &adam_update, py::arg("w"), py::arg("g"), py::arg("m"), py::arg("v"), py::arg("size"),
        py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"), py::arg("weight_decay"), py::arg("t"));
}

}  // namespace needle
