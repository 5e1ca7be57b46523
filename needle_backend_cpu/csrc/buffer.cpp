// Argument checks: reject sizes, shapes and strides that would leave the buffer.
#include "buffer.h"

namespace needle {

namespace {
constexpr int64_t kMaxElems = int64_t{1} << 50;  // far beyond memory; keeps products exact

[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument(msg); }
}  // namespace

std::string fmt_tuple(const Shape& v) {
  std::string s = "(";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + (v.size() == 1 ? ",)" : ")");
}

void check_size(const char* kernel, const char* arg, int64_t got, int64_t want) {
  if (got != want)
    fail(std::string(kernel) + ": expected `" + arg + "` to hold " + std::to_string(want) +
         " elements, got a buffer of " + std::to_string(got) + "; allocate it with Array(" +
         std::to_string(want) + ") or compact the operand first");
}

int64_t checked_numel(const char* kernel, const Shape& dims) {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0) fail(std::string(kernel) + ": dimensions must be >= 0, got " + fmt_tuple(dims));
    if (d != 0 && n > kMaxElems / d)
      fail(std::string(kernel) + ": the shape " + fmt_tuple(dims) + " has too many elements");
    n *= d;
  }
  return n;
}

int64_t check_view(const char* kernel, const char* arg, int64_t buffer_size, const Shape& shape,
                   const Shape& strides, int64_t offset) {
  // the message is built only on failure: this check runs on every strided kernel call
  auto where = [&] {
    return std::string(kernel) + ": the view `" + arg + "` (shape=" + fmt_tuple(shape) +
           ", strides=" + fmt_tuple(strides) + ", offset=" + std::to_string(offset) + ")";
  };
  if (shape.size() != strides.size()) fail(where() + " needs one stride per dimension");
  int64_t n = checked_numel(kernel, shape);
  if (n == 0) return 0;
  __int128 lo = offset, hi = offset;  // 128-bit: no overflow for any int64 input
  for (size_t k = 0; k < shape.size(); ++k) ((strides[k] >= 0) ? hi : lo) += (__int128)strides[k] * (shape[k] - 1);
  if (lo < 0 || hi >= buffer_size)
    fail(where() + " addresses elements " + std::to_string((long long)lo) + ".." +
         std::to_string((long long)(hi > kMaxElems ? kMaxElems : hi)) +
         " but the buffer holds " + std::to_string(buffer_size) +
         "; pass a shape/strides/offset that stay inside the buffer");
  return n;
}

}  // namespace needle
