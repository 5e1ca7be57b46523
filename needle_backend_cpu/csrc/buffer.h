// The device buffer (`Array`) and the argument checks every kernel runs before it
// touches memory. Checks throw std::invalid_argument, which pybind11 turns into
// ValueError; a failed allocation throws std::bad_alloc (MemoryError).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

namespace needle {

using Shape = std::vector<int64_t>;

// Large buffers come from a cache of freed ones (buffer_cache.cpp): a training step
// allocates the same sizes every step, and a fresh mmap'ed block costs a page fault per
// 4 KiB on first touch. Both return 64-byte aligned storage of at least `bytes`.
float* buffer_alloc(size_t bytes);
void buffer_free(float* p, size_t bytes);

// 64-byte aligned float32 storage, uninitialised (course: `Array(size)`).
struct Array {
  explicit Array(int64_t n) : size(n) {
    if (n < 0) throw std::invalid_argument("Array: size must be >= 0, got " + std::to_string(n));
    if (n > (int64_t{1} << 40)) throw std::bad_alloc();
    ptr = buffer_alloc(bytes());
  }
  // A view of memory someone else owns (an array imported through DLPack): never freed here.
  Array(float* external, int64_t n) noexcept : ptr(external), size(n), owns(false) {}
  ~Array() {
    if (owns && ptr) buffer_free(ptr, bytes());
  }
  size_t bytes() const { return ((size_t)(size > 0 ? size : 1) * sizeof(float) + 63) / 64 * 64; }
  Array(const Array&) = delete;
  Array& operator=(const Array&) = delete;

  float* ptr = nullptr;
  int64_t size = 0;
  bool owns = true;
};

std::string fmt_tuple(const Shape& v);

// Throws unless `got == want`; names the kernel and argument in the message.
void check_size(const char* kernel, const char* arg, int64_t got, int64_t want);

// Throws unless every element of the strided view lies inside a buffer of
// `buffer_size` elements; returns prod(shape).
int64_t check_view(const char* kernel, const char* arg, int64_t buffer_size, const Shape& shape,
                   const Shape& strides, int64_t offset);

// prod(dims) with overflow and sign checks
int64_t checked_numel(const char* kernel, const Shape& dims);

}  // namespace needle
