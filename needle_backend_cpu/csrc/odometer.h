// Row-major walk over the multi-indices of the first `n` dims of a shape, keeping
// the matching offsets into two strided operands (source/destination, or the two
// inputs of a binary op): seek() once per thread chunk, next() per step.
#pragma once

#include <cstdint>
#include <vector>

#include "buffer.h"

namespace needle {

struct Odometer {
  Odometer(const Shape& shape, const Shape& s0, const Shape& s1, int n)
      : shape(shape), s0(s0), s1(s1), n(n), idx(n, 0) {}

  void seek(int64_t r) {
    o0 = o1 = 0;
    for (int k = n - 1; k >= 0; --k) {
      idx[k] = r % shape[k];
      r /= shape[k];
      o0 += idx[k] * s0[k];
      o1 += idx[k] * s1[k];
    }
  }
  void next() {
    for (int k = n - 1; k >= 0; --k) {
      o0 += s0[k];
      o1 += s1[k];
      if (++idx[k] < shape[k]) return;
      idx[k] = 0;
      o0 -= s0[k] * shape[k];
      o1 -= s1[k] * shape[k];
    }
  }

  const Shape &shape, &s0, &s1;
  int n;
  std::vector<int64_t> idx;
  int64_t o0 = 0, o1 = 0;  // offsets into the operands of s0 and s1
};

}  // namespace needle
