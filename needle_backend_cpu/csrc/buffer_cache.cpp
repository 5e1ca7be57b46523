// The cache behind buffer_alloc/buffer_free (buffer.h): freed blocks of >= 256 KiB are
// kept by exact (page-rounded) size and handed to the next Array of that size, up to
// NEEDLE_CPU_CACHE_MB in all (default: 1024, or a quarter of RAM if less; 0 disables).
// Smaller blocks go straight to malloc, whose free lists already reuse them.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "bindings.h"

namespace needle {

namespace {

constexpr size_t kMinCached = size_t{256} << 10;
constexpr size_t kPage = 4096;
// Large blocks are 2 MiB aligned and advised for transparent huge pages (as NumPy does from
// 4 MiB): fewer TLB misses for kernels and for MPI copying gradients out of them.
constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kMinHuge = size_t{4} << 20;

size_t limit_from_env() {
  size_t ram = (size_t)sysconf(_SC_PHYS_PAGES) * (size_t)sysconf(_SC_PAGESIZE);
  size_t limit = std::min<size_t>(size_t{1} << 30, ram / 4);
  if (const char* raw = std::getenv("NEEDLE_CPU_CACHE_MB")) {
    char* end = nullptr;
    long long mb = std::strtoll(raw, &end, 10);
    if (end != raw && *end == '\0' && mb >= 0) limit = (size_t)mb << 20;  // else: keep the default
  }
  return limit;
}

struct Cache {
  std::mutex mu;
  std::unordered_map<size_t, std::vector<float*>> free_blocks;  // by byte size
  size_t cached = 0, limit = limit_from_env();
  uint64_t hits = 0, misses = 0;

  void clear() {
    for (auto& [bytes, blocks] : free_blocks)
      for (float* p : blocks) std::free(p);
    free_blocks.clear();
    cached = 0;
  }
};

// never destroyed: Arrays freed while the interpreter shuts down still find it
Cache& cache() {
  static Cache* c = new Cache();
  return *c;
}

size_t rounded(size_t bytes) {
  if (bytes < kMinCached) return bytes;
  const size_t unit = bytes >= kMinHuge ? kHugePage : kPage;
  return (bytes + unit - 1) / unit * unit;
}

}  // namespace

float* buffer_alloc(size_t bytes) {
  bytes = rounded(bytes);
  if (bytes >= kMinCached) {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.free_blocks.find(bytes);
    if (it != c.free_blocks.end() && !it->second.empty()) {
      float* p = it->second.back();
      it->second.pop_back();
      c.cached -= bytes;
      ++c.hits;
      return p;
    }
    ++c.misses;
  }
  const bool huge = bytes >= kMinHuge;
  auto* p = static_cast<float*>(std::aligned_alloc(huge ? kHugePage : 64, bytes));
  if (!p) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
  if (huge) madvise(p, bytes, MADV_HUGEPAGE);  // advice only: failure changes nothing
#endif
  return p;
}

void buffer_free(float* p, size_t bytes) {
  bytes = rounded(bytes);
  if (bytes >= kMinCached) {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mu);
    if (c.cached + bytes <= c.limit) {
      c.free_blocks[bytes].push_back(p);
      c.cached += bytes;
      return;
    }
  }
  std::free(p);
}

void register_buffer_cache(py::module_& m) {
  m.def("_buffer_cache_info", [] {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mu);
    py::dict info;
    info["cached_bytes"] = c.cached;
    info["limit_bytes"] = c.limit;
    info["hits"] = c.hits;
    info["misses"] = c.misses;
    return info;
  }, "The cpu buffer cache: bytes held, its limit (NEEDLE_CPU_CACHE_MB), hits and misses.");
  m.def("_buffer_cache_clear", [] {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mu);
    c.clear();
  }, "Return every cached buffer to the system.");
}

}  // namespace needle
