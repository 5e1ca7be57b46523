// Row reductions shared with other kernel files (defined in reductions.cpp).
#pragma once

#include <cstdint>

namespace needle {

// max of p[0:n], NaN propagating (as reduce_max); -inf for n = 0
float row_max(const float* p, int64_t n);

// stable log(sum(exp(p[0:n]))), as the logsumexp kernel: a row whose max is +-inf or
// NaN gives that max
float logsumexp_row(const float* p, int64_t n);

}  // namespace needle
