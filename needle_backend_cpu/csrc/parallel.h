// A small fork-safe thread pool (not OpenMP: libgomp deadlocks in a child forked
// after it ran, and Python's multiprocessing forks by default on Linux).
//
// `parallel_run(nt, f)` calls f(part, nt) exactly once for every part in [0, nt) and
// returns when all are done. Parts are claimed by whoever is free: the caller, then
// pool workers as they wake. The caller never waits for a worker that has not started
// (on a shared machine a descheduled worker would otherwise stall the whole kernel);
// it waits only for parts already claimed. A part's result depends only on (part, nt),
// never on the thread that ran it, so results are deterministic for a fixed nt. Calls
// from inside a run, or while another Python thread drives the pool, run every part
// on the caller.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>

namespace needle {

int num_threads();            // threads kernels use (NEEDLE_NUM_THREADS, set by the plugin)
void set_num_threads(int n);  // n >= 1

void parallel_run(int nt, const std::function<void(int, int)>& f);

// f(begin, end) over [0, n) in at most num_threads() contiguous chunks of >= grain
// items; chunk starts are multiples of `align` items.
template <class F>
void parallel_for(int64_t n, int64_t grain, F&& f, int64_t align = 64) {
  if (n <= 0) return;
  int64_t chunks = grain > 0 ? n / grain : n;
  int nt = (int)std::min<int64_t>(num_threads(), std::max<int64_t>(chunks, 1));
  if (nt <= 1) {
    f(int64_t{0}, n);
    return;
  }
  parallel_run(nt, [&](int part, int parts) {
    int64_t per = (n + parts - 1) / parts;
    per = (per + align - 1) / align * align;
    int64_t lo = std::min<int64_t>(n, per * part), hi = std::min<int64_t>(n, lo + per);
    if (lo < hi) f(lo, hi);
  });
}

}  // namespace needle
