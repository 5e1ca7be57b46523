// Fused LSTM cell (optional kernels lstm_cell / lstm_cell_backward, docs/backends.md §3):
// the elementwise part of a step after the one matmul of the concatenated weights.
// `gates` (batch, 4*hidden) holds the pre-activations in blocks i, f, g, o. The backward
// recomputes the activations from `gates` instead of keeping them (cheap next to the
// matmuls, and the graph holds no extra buffer per step).
#include <algorithm>
#include <initializer_list>
#include <type_traits>
#include <utility>

#include "bindings.h"
#include "parallel.h"
#include "prelude.h"

namespace needle {

namespace {

template <class T>
T load(const float* p) {
  if constexpr (std::is_same_v<T, float>) return *p; else return vload(p);
}
inline void store(float* p, float x) { *p = x; }
inline void store(float* p, vfloat x) { vstore(p, x); }

// the table's ewise_sigmoid expression, for float and vfloat
template <class T>
T sigmoid(T a) {
  return 1.0f / (1.0f + prelude::exp(-a));
}

struct Gates {
  template <class T>
  struct Of {
    T i, f, g, o;
  };
  template <class T>
  static Of<T> at(const float* row, int64_t hidden, int64_t j) {
    return {sigmoid(load<T>(row + j)), sigmoid(load<T>(row + hidden + j)), prelude::tanh(load<T>(row + 2 * hidden + j)),
            sigmoid(load<T>(row + 3 * hidden + j))};
  }
};

// Each body below is called as body(a, b, j, k) for row b and column j of the step, with
// `a` the gates activated at (b, j) and k = b * hidden + j the index of (b, j) in the
// (batch, hidden) arrays; T (float or vfloat) comes from `a`.

// c = f * c_prev + i * g; h = o * tanh(c)
struct Forward {
  const float* c_prev;
  float *h, *c;
  template <class T>
  void operator()(const Gates::Of<T>& a, int64_t, int64_t, int64_t k) const {
    T cn = a.f * load<T>(c_prev + k) + a.i * a.g;
    store(c + k, cn);
    store(h + k, a.o * prelude::tanh(cn));
  }
};

// adjoints of the pre-activations and of c_prev, given those of h and c
struct Backward {
  const float *c_prev, *dh, *dc;
  float *dgates, *dc_prev;
  int64_t hidden;
  template <class T>
  void operator()(const Gates::Of<T>& a, int64_t b, int64_t j, int64_t k) const {
    const T cp = load<T>(c_prev + k), gh = load<T>(dh + k);
    const T tc = prelude::tanh(a.f * cp + a.i * a.g);
    const T gc = load<T>(dc + k) + gh * a.o * (1.0f - tc * tc);
    float* row = dgates + b * 4 * hidden + j;
    store(row, gc * a.g * (a.i * (1.0f - a.i)));
    store(row + hidden, gc * cp * (a.f * (1.0f - a.f)));
    store(row + 2 * hidden, gc * a.i * (1.0f - a.g * a.g));
    store(row + 3 * hidden, gh * tc * (a.o * (1.0f - a.o)));
    store(dc_prev + k, gc * a.f);
  }
};

// body over every (b, j) of a step's `gates`: SIMD bodies, scalar tails
template <class Body>
void over_cells(const float* gates, int64_t batch, int64_t hidden, const Body& body) {
  ReleaseGIL nogil(batch * hidden * 8);
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 14) / std::max<int64_t>(hidden, 1));
  parallel_for(batch, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t b = lo; b < hi; ++b) {
      const float* row = gates + b * 4 * hidden;
      int64_t j = 0;
      for (; j + VL <= hidden; j += VL) body(Gates::at<vfloat>(row, hidden, j), b, j, b * hidden + j);
      for (; j < hidden; ++j) body(Gates::at<float>(row, hidden, j), b, j, b * hidden + j);
    }
  }, 1);
}

using Named = std::initializer_list<std::pair<const char*, const Array*>>;

// gates-shaped arrays hold 4 * batch * hidden elements, the others batch * hidden
void check_all(const char* k, int64_t batch, int64_t hidden, Named wide, Named narrow) {
  if (batch < 0 || hidden < 0)
    throw std::invalid_argument(std::string(k) + ": batch and hidden must be >= 0, got " + std::to_string(batch) +
                                " and " + std::to_string(hidden));
  for (auto& [name, arr] : wide) check_size(k, name, arr->size, 4 * batch * hidden);
  for (auto& [name, arr] : narrow) check_size(k, name, arr->size, batch * hidden);
}

void lstm_cell(const Array& gates, const Array& c_prev, Array& h, Array& c, int64_t batch, int64_t hidden) {
  check_all("lstm_cell", batch, hidden, {{"gates", &gates}}, {{"c_prev", &c_prev}, {"h", &h}, {"c", &c}});
  over_cells(gates.ptr, batch, hidden, Forward{c_prev.ptr, h.ptr, c.ptr});
}

void lstm_cell_backward(const Array& gates, const Array& c_prev, const Array& dh, const Array& dc, Array& dgates,
                        Array& dc_prev, int64_t batch, int64_t hidden) {
  check_all("lstm_cell_backward", batch, hidden, {{"gates", &gates}, {"dgates", &dgates}},
            {{"c_prev", &c_prev}, {"dh", &dh}, {"dc", &dc}, {"dc_prev", &dc_prev}});
  over_cells(gates.ptr, batch, hidden, Backward{c_prev.ptr, dh.ptr, dc.ptr, dgates.ptr, dc_prev.ptr, hidden});
}

}  // namespace

void register_recurrent(py::module_& m) {
  m.def("lstm_cell", &lstm_cell, py::arg("gates"), py::arg("c_prev"), py::arg("h"), py::arg("c"), py::arg("batch"),
        py::arg("hidden"));
  m.def("lstm_cell_backward", &lstm_cell_backward, py::arg("gates"), py::arg("c_prev"), py::arg("dh"), py::arg("dc"),
        py::arg("dgates"), py::arg("dc_prev"), py::arg("batch"), py::arg("hidden"));
}

}  // namespace needle
