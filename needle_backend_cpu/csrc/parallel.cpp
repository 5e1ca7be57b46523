// The thread pool behind parallel_run (see parallel.h for the contract).
//
// A run publishes one word, `claim` = (run id << 32) | (parts << 16) | next part, and
// bumps `generation` to wake the workers. Everyone (caller included) takes parts by a
// compare-and-swap on `claim`; a worker that wakes late finds another run id (or no
// part left) and goes back to waiting without touching the task. The caller returns
// when `done` reaches the part count, so it waits only for parts someone claimed.
// Idle workers spin briefly (a training step issues kernels every few microseconds),
// then sleep on a futex (C++20 atomic wait); the caller issues the wake-up syscall only
// when some worker sleeps.
#include "parallel.h"

#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define NEEDLE_PAUSE() _mm_pause()
#else
#define NEEDLE_PAUSE() ((void)0)
#endif

namespace needle {
namespace {

using Task = std::function<void(int, int)>;
constexpr auto kSpin = std::chrono::microseconds(50);
constexpr int kMaxParts = 0xffff;

struct Pool {
  explicit Pool(int n) : size(n) {
    for (int tid = 1; tid < n; ++tid) workers.emplace_back([this] { work(); });
  }

  void work() {
    uint64_t seen = 0;
    for (;;) {
      wait_for_run(seen);
      seen = generation.load();
      if (stop.load()) return;
      run_parts(seen);
    }
  }

  // spin while generation == old, then sleep (counted in `sleepers`) until it changes
  void wait_for_run(uint64_t old) {
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; generation.load(std::memory_order_acquire) == old; ++i) {
      if ((i & 63) == 63 && std::chrono::steady_clock::now() - start > kSpin) {
        sleepers.fetch_add(1);
        generation.wait(old);
        sleepers.fetch_sub(1);
      } else {
        NEEDLE_PAUSE();
      }
    }
  }

  // take and run parts of run `id` until none is left (or the run is over)
  void run_parts(uint64_t id) {
    const uint64_t tag = (id & 0xffffffffu) << 32;
    for (;;) {
      uint64_t c = claim.load();
      int parts = (int)((c >> 16) & 0xffff), next = (int)(c & 0xffff);
      if ((c & ~uint64_t{0xffffffff}) != tag || next >= parts) return;
      if (!claim.compare_exchange_weak(c, c + 1)) continue;
      execute(next, parts);  // `task` stays valid: the run cannot end before `done` counts this part
      done.fetch_add(1);
    }
  }

  void execute(int part, int parts);

  void run(int n, const Task& f) {
    task = &f;
    done.store(0);
    const uint64_t id = generation.load() + 1;
    claim.store(((id & 0xffffffffu) << 32) | ((uint64_t)n << 16));
    generation.store(id);
    if (sleepers.load() > 0) generation.notify_all();
    run_parts(id);
    // the remaining parts are running on workers that claimed them: spin, then yield
    for (int i = 0; done.load(std::memory_order_acquire) != n; ++i) {
      if (i < 4096) {
        NEEDLE_PAUSE();
      } else {
        std::this_thread::yield();
      }
    }
    task = nullptr;
    if (error) {
      std::exception_ptr e = error;
      error = nullptr;
      std::rethrow_exception(e);
    }
  }

  void shutdown() {
    stop.store(true);
    generation.fetch_add(1);
    generation.notify_all();
    for (auto& w : workers) w.join();
  }

  const int size;
  std::vector<std::thread> workers;
  std::atomic<uint64_t> generation{0};
  std::atomic<uint64_t> claim{0};
  std::atomic<int> done{0};
  std::atomic<int> sleepers{0};
  std::atomic<bool> stop{false};
  const Task* task = nullptr;
  std::mutex busy;  // held by the thread driving a run
  std::mutex error_mu;
  std::exception_ptr error;
};

thread_local bool t_in_run = false;

void Pool::execute(int part, int parts) {
  t_in_run = true;
  try {
    (*task)(part, parts);
  } catch (...) {
    std::lock_guard<std::mutex> lock(error_mu);
    if (!error) error = std::current_exception();
  }
  t_in_run = false;
}

int default_threads() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

std::atomic<int> g_threads{default_threads()};
std::atomic<Pool*> g_pool{nullptr};
std::mutex g_create_mu;

// In a forked child the workers do not exist: forget (leak) the parent's pool.
void forget_pool_in_child() {
  g_pool.store(nullptr);
  new (&g_create_mu) std::mutex();
}
const bool g_atfork_installed = [] { return pthread_atfork(nullptr, nullptr, forget_pool_in_child) == 0; }();

Pool* pool_for(int n) {
  Pool* p = g_pool.load(std::memory_order_acquire);
  if (p && p->size == n) return p;
  std::lock_guard<std::mutex> lock(g_create_mu);
  p = g_pool.load(std::memory_order_acquire);
  if (p && p->size == n) return p;
  if (p) {
    std::lock_guard<std::mutex> busy(p->busy);
    p->shutdown();  // leaked, not deleted: a racing caller may still hold the pointer
  }
  p = new Pool(n);  // never deleted at exit: joining there could hang interpreter shutdown
  g_pool.store(p, std::memory_order_release);
  return p;
}

// every part on the calling thread (same parts, so the same results)
void run_serially(int nt, const Task& f) {
  for (int part = 0; part < nt; ++part) f(part, nt);
}

}  // namespace

int num_threads() { return g_threads.load(std::memory_order_relaxed); }

void set_num_threads(int n) { g_threads.store(std::clamp(n, 1, kMaxParts)); }

void parallel_run(int nt, const std::function<void(int, int)>& f) {
  if (nt <= 1) return f(0, 1);
  nt = std::min(nt, kMaxParts);
  if (t_in_run || num_threads() <= 1) return run_serially(nt, f);
  Pool* p = pool_for(num_threads());
  std::unique_lock<std::mutex> lock(p->busy, std::try_to_lock);
  if (!lock.owns_lock() || p->stop.load()) return run_serially(nt, f);  // another Python thread drives it
  p->run(nt, f);
}

}  // namespace needle
