// Strided views: dimension simplification and the copy/fill engine behind compact,
// ewise_setitem, scalar_setitem and to_numpy.
#pragma once

#include <cstdint>

#include "buffer.h"

namespace needle {

// A copy problem `dst[view] = src[view]` over a common shape, after dropping size-1
// dimensions and merging dimensions that are contiguous in both views.
struct CopyPlan {
  Shape shape, src, dst;  // per-dimension extent and strides (elements)
  int64_t numel = 0;
};

CopyPlan plan_copy(const Shape& shape, const Shape& src_strides, const Shape& dst_strides);

// dst[dst_off + i.dst] = src[src_off + i.src] for every multi-index i of the plan.
// Fast paths: contiguous rows (memcpy), broadcast rows (fill), permuted views
// (cache-blocked transposes); otherwise an odometer loop. Multithreaded.
void strided_copy(const float* src, float* dst, const CopyPlan& plan);

// Every element of the strided view of dst = val.
void strided_fill(float* dst, const Shape& shape, const Shape& strides, float val);

// Row-major strides of a compact array of `shape`.
Shape compact_strides(const Shape& shape);

}  // namespace needle
