// The thread pool behind parallel_run (see parallel.h for the contract).
//
// Every worker takes part in every run (those with tid >= team return at once), so no
// worker can lag a generation behind and misread the next run's task. Idle workers
// spin briefly (a training step issues kernels every few microseconds), then sleep
// on a futex (C++20 atomic wait).
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

// spin on `a` while it equals `old`, then sleep until it changes
template <class T>
void await_change(const std::atomic<T>& a, T old) {
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; a.load(std::memory_order_acquire) == old; ++i) {
    if ((i & 63) == 63 && std::chrono::steady_clock::now() - start > kSpin) {
      a.wait(old, std::memory_order_acquire);
    } else {
      NEEDLE_PAUSE();
    }
  }
}

struct Pool {
  explicit Pool(int n) : size(n) {
    for (int tid = 1; tid < n; ++tid) workers.emplace_back([this, tid] { work(tid); });
  }

  void work(int tid) {
    uint64_t seen = 0;
    for (;;) {
      await_change(generation, seen);
      seen = generation.load(std::memory_order_acquire);
      if (stop.load(std::memory_order_acquire)) return;
      int n = team.load(std::memory_order_relaxed);
      if (tid < n) execute(tid, n);
      if (remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) remaining.notify_all();
    }
  }

  void execute(int tid, int n);

  void run(int n, const Task& f) {
    task = &f;
    team.store(n, std::memory_order_relaxed);
    remaining.store(size - 1, std::memory_order_relaxed);
    generation.fetch_add(1, std::memory_order_acq_rel);
    generation.notify_all();
    execute(0, n);
    for (int left; (left = remaining.load(std::memory_order_acquire)) != 0;) await_change(remaining, left);
    task = nullptr;
    if (error) {
      std::exception_ptr e = error;
      error = nullptr;
      std::rethrow_exception(e);
    }
  }

  void shutdown() {
    stop.store(true, std::memory_order_release);
    generation.fetch_add(1, std::memory_order_acq_rel);
    generation.notify_all();
    for (auto& w : workers) w.join();
  }

  const int size;
  std::vector<std::thread> workers;
  std::atomic<uint64_t> generation{0};
  std::atomic<int> remaining{0};
  std::atomic<int> team{1};
  std::atomic<bool> stop{false};
  const Task* task = nullptr;
  std::mutex busy;  // held by the thread driving a run
  std::mutex error_mu;
  std::exception_ptr error;
  std::atomic<int> bar_count{0};
  std::atomic<uint64_t> bar_gen{0};
};

thread_local int t_team = 1;       // team size of the run this thread is in
thread_local bool t_in_run = false;

void Pool::execute(int tid, int n) {
  t_team = n;
  t_in_run = true;
  try {
    (*task)(tid, n);
  } catch (...) {
    std::lock_guard<std::mutex> lock(error_mu);
    if (!error) error = std::current_exception();
  }
  t_in_run = false;
  t_team = 1;
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

}  // namespace

int num_threads() { return g_threads.load(std::memory_order_relaxed); }

void set_num_threads(int n) {
  g_threads.store(std::max(1, n));
}

void parallel_run(int nt, const std::function<void(int, int)>& f) {
  nt = std::min(nt, num_threads());
  if (nt <= 1 || t_in_run) {
    f(0, 1);
    return;
  }
  Pool* p = pool_for(num_threads());
  std::unique_lock<std::mutex> lock(p->busy, std::try_to_lock);
  if (!lock.owns_lock() || p->stop.load()) {  // another Python thread (GIL released) drives it
    f(0, 1);
    return;
  }
  p->run(std::min(nt, p->size), f);
}

void team_barrier() {
  int n = t_team;
  if (n <= 1) return;
  Pool* p = g_pool.load(std::memory_order_acquire);
  uint64_t g = p->bar_gen.load(std::memory_order_acquire);
  if (p->bar_count.fetch_add(1, std::memory_order_acq_rel) == n - 1) {
    p->bar_count.store(0, std::memory_order_relaxed);
    p->bar_gen.fetch_add(1, std::memory_order_acq_rel);
    p->bar_gen.notify_all();
  } else {
    await_change(p->bar_gen, g);
  }
}

}  // namespace needle
