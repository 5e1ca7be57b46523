// A small fork-safe thread pool (not OpenMP: libgomp deadlocks in a child forked
// after it ran, and Python's multiprocessing forks by default on Linux).
//
// `parallel_run(nt, f)` calls f(tid, team) for tid in [0, team), tid 0 on the caller,
// and returns when all are done. `team` is nt, or 1 when the call comes from inside a
// team or while another Python thread drives the pool (then it runs serially): f must
// split its work by `team`, not by nt. `team_barrier()` synchronises the team inside
// f; a task that uses it must not throw. Work is split statically, so results are
// deterministic for a fixed thread count.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>

namespace needle {

int num_threads();            // threads kernels use (NEEDLE_NUM_THREADS, set by the plugin)
void set_num_threads(int n);  // n >= 1

void parallel_run(int nt, const std::function<void(int, int)>& f);
void team_barrier();

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
  parallel_run(nt, [&](int tid, int team) {
    int64_t per = (n + team - 1) / team;
    per = (per + align - 1) / align * align;
    int64_t lo = std::min<int64_t>(n, per * tid), hi = std::min<int64_t>(n, lo + per);
    if (lo < hi) f(lo, hi);
  });
}

}  // namespace needle
