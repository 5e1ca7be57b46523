// CPU emulation of the CUDA execution model, for testing needle's kernels without
// a GPU. Each CUDA thread of a block is a fiber (ucontext); fibers switch only at
// __syncthreads() and warp shuffles, where the scheduler releases a barrier once
// every live thread of the block (or warp) waits at it. Blocks run one after the
// other, so `__shared__` maps to `static`. A barrier some threads never reach, or
// a shuffle with missing lanes, is reported as an error (it hangs or is undefined
// on a GPU). Kernel arguments arrive as one packed buffer, unpacked with CUDA's
// parameter alignment rules, so host-side packing mistakes show up here too.
#pragma once
#include <math.h>
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <tuple>
#include <type_traits>
#include <ucontext.h>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))

struct uint3 { unsigned int x, y, z; };
typedef uint3 dim3;
struct alignas(16) float4 { float x, y, z, w; };
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }

static uint3 threadIdx, blockIdx;
static dim3 blockDim, gridDim;
static const int warpSize = 32;

namespace emu {
enum State { READY, AT_BLOCK_BARRIER, AT_WARP_BARRIER, DONE, FAILED };
struct Thread { ucontext_t ctx; State state; uint3 idx; };

static std::vector<Thread> threads;
static std::vector<std::vector<char>> stacks;
static ucontext_t scheduler;
static int current = -1;
static std::function<void()> body;
static std::vector<float> slots;  // shuffle exchange, one per thread
static std::string error;
static unsigned epoch = 1;  // barrier interval of the running block, for the race checker
static const size_t STACK = 128 * 1024;

inline void fail(const std::string& msg) {
    if (error.empty()) error = msg;
    threads[current].state = FAILED;
    swapcontext(&threads[current].ctx, &scheduler);  // never resumed
}

inline void wait_at(State s) {
    threads[current].state = s;
    swapcontext(&threads[current].ctx, &scheduler);
}

static void entry() {
    body();
    threads[current].state = DONE;  // uc_link returns to the scheduler
}

inline int nthreads() { return (int)(blockDim.x * blockDim.y * blockDim.z); }

// Run one block to completion; 0 on success.
inline int run_block() {
    const int n = nthreads();
    if ((int)stacks.size() < n) stacks.resize(n, std::vector<char>(STACK));
    threads.assign(n, Thread{});
    slots.assign(n, 0.0f);
    ++epoch;  // a new block: shared memory starts unclaimed
    for (int t = 0; t < n; ++t) {
        Thread& th = threads[t];
        th.idx = uint3{(unsigned)(t % blockDim.x), (unsigned)((t / blockDim.x) % blockDim.y), (unsigned)(t / (blockDim.x * blockDim.y))};
        th.state = READY;
        getcontext(&th.ctx);
        th.ctx.uc_stack.ss_sp = stacks[t].data();
        th.ctx.uc_stack.ss_size = STACK;
        th.ctx.uc_link = &scheduler;
        makecontext(&th.ctx, entry, 0);
    }
    for (int pass = 0;; ++pass) {
        bool ran = false;
        for (int k = 0; k < n; ++k) {
            // alternate the order each pass: a missing barrier is more likely to
            // let one thread see another's unfinished work, as on a GPU
            const int t = (pass & 1) ? n - 1 - k : k;
            if (threads[t].state != READY) continue;
            current = t;
            threadIdx = threads[t].idx;
            swapcontext(&scheduler, &threads[t].ctx);
            ran = true;
            if (threads[t].state == FAILED) return 1;
        }
        int done = 0, at_block = 0;
        for (int t = 0; t < n; ++t) {
            done += threads[t].state == DONE;
            at_block += threads[t].state == AT_BLOCK_BARRIER;
        }
        if (done == n) return 0;
        bool released = false;
        if (at_block > 0 && at_block + done == n) {
            if (done > 0) { error = "__syncthreads() reached by only part of the block (others exited)"; return 1; }
            for (auto& th : threads) th.state = READY;
            ++epoch;  // accesses before the barrier cannot race with those after it
            released = true;
        }
        for (int w = 0; w * 32 < n; ++w) {  // warps whose live lanes all wait at a shuffle
            int waiting = 0, live = 0;
            for (int t = w * 32; t < n && t < (w + 1) * 32; ++t) {
                live += threads[t].state != DONE;
                waiting += threads[t].state == AT_WARP_BARRIER;
            }
            if (waiting > 0 && waiting == live) {
                if (live != 32) { error = "warp shuffle with " + std::to_string(live) + " live lanes (full mask needs 32)"; return 1; }
                for (int t = w * 32; t < (w + 1) * 32; ++t) threads[t].state = READY;
                released = true;
            }
        }
        if (!released && !ran) {
            error = "deadlock: threads wait at different barriers (divergent __syncthreads or shuffle)";
            return 1;
        }
    }
}

inline float shuffle(unsigned mask, float v, int partner_lane) {
    if (mask != 0xffffffffu) fail("only full-mask shuffles are emulated");
    if (nthreads() % 32 != 0) fail("shuffle in a block whose size is not a multiple of 32");
    const int me = current;
    slots[me] = v;
    wait_at(AT_WARP_BARRIER);  // every lane has written its value
    const float r = (partner_lane >= 0 && partner_lane < 32) ? slots[(me & ~31) + partner_lane] : v;
    wait_at(AT_WARP_BARRIER);  // every lane has read before the next shuffle writes
    return r;
}

template <class T>
T take(const char* buf, size_t len, size_t& off) {
    off = (off + alignof(T) - 1) / alignof(T) * alignof(T);
    T v{};
    if (off + sizeof(T) <= len) std::memcpy(&v, buf + off, sizeof(T));
    off += sizeof(T);
    return v;
}

template <class... Args>
int launch(void (*kernel)(Args...), dim3 grid, dim3 block, const char* buf, size_t len) {
    error.clear();
    size_t off = 0;
    std::tuple<std::decay_t<Args>...> args{take<std::decay_t<Args>>(buf, len, off)...};
    if (off != len) {
        error = "argument buffer has " + std::to_string(len) + " bytes, the kernel's parameters need " + std::to_string(off);
        return 1;
    }
    const unsigned long long nt = (unsigned long long)block.x * block.y * block.z;
    if (nt == 0 || nt > 1024 || block.z > 64) { error = "invalid block shape"; return 1; }
    if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535) {
        error = "invalid grid shape " + std::to_string(grid.x) + "x" + std::to_string(grid.y) + "x" + std::to_string(grid.z);
        return 1;
    }
    gridDim = grid;
    blockDim = block;
    body = [&] { std::apply(kernel, args); };
    for (unsigned z = 0; z < grid.z; ++z)
        for (unsigned y = 0; y < grid.y; ++y)
            for (unsigned x = 0; x < grid.x; ++x) {
                blockIdx = uint3{x, y, z};
                if (run_block() != 0) return 1;
            }
    return 0;
}
}  // namespace emu

// Undefined-behaviour checks. compiler.py builds kernels with g++ -fsanitize=
// alignment,bounds,signed-integer-overflow,shift,integer-divide-by-zero and links
// no libubsan: the handlers are defined here and fail the launch with the kernel's
// source line. They catch what a GPU faults on or corrupts silently and x86 does
// not: a misaligned float4 access, an index outside a __shared__ array, a wrapped
// 32-bit index.
namespace emu {
struct SourceLocation { const char* file; unsigned line, column; };
struct TypeMismatchData { SourceLocation loc; const void* type; unsigned char log_alignment, kind; };
inline void undefined(const SourceLocation* loc, const std::string& what) {
    if (current < 0) { std::fprintf(stderr, "emu: %s at line %u outside a kernel\n", what.c_str(), loc->line); std::abort(); }
    fail(what + " at source line " + std::to_string(loc->line));
}
}  // namespace emu
extern "C" {
void __ubsan_handle_type_mismatch_v1(emu::TypeMismatchData* d, void* ptr) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "access through a pointer not aligned to %u bytes (%p)", 1u << d->log_alignment, ptr);
    emu::undefined(&d->loc, buf);
}
void __ubsan_handle_out_of_bounds(emu::SourceLocation* loc, void*) { emu::undefined(loc, "array index out of bounds"); }
void __ubsan_handle_add_overflow(emu::SourceLocation* loc, void*, void*) { emu::undefined(loc, "signed integer overflow in +"); }
void __ubsan_handle_sub_overflow(emu::SourceLocation* loc, void*, void*) { emu::undefined(loc, "signed integer overflow in -"); }
void __ubsan_handle_mul_overflow(emu::SourceLocation* loc, void*, void*) { emu::undefined(loc, "signed integer overflow in *"); }
void __ubsan_handle_negate_overflow(emu::SourceLocation* loc, void*) { emu::undefined(loc, "signed integer overflow in unary -"); }
void __ubsan_handle_divrem_overflow(emu::SourceLocation* loc, void*, void*) { emu::undefined(loc, "integer division by zero or overflow"); }
void __ubsan_handle_shift_out_of_bounds(emu::SourceLocation* loc, void*, void*) { emu::undefined(loc, "shift out of range"); }
}

// Shared-memory race checker (what compute-sanitizer's racecheck reports). The
// fibers run each thread from one barrier to the next in a fixed order, so a race
// changes a result only for some orders; this finds it whatever the order.
// compiler.py builds with -fsanitize=thread and links no libtsan: g++ then calls
// the __tsan_* hooks below on every load and store. compiler.py finds the
// __shared__ variables in the symbol table and passes their address ranges to
// emu_watch. For each watched word, each barrier interval (epoch) records the thread
// that wrote it and the thread(s) that read it; a second thread reading a written
// word, or writing a word another thread read or wrote, in the same interval is a race.
namespace emu {
struct Cell { unsigned epoch; short writer, reader; bool watched; };  // reader: -1 none, -2 several
static Cell* cells;               // one per 4-byte word of [lo, hi)
static const char *lo, *hi;       // span of the watched variables
static const short NONE = -1, SEVERAL = -2;

__attribute__((no_sanitize_thread)) inline void race(const char* kind, unsigned word, int other) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "shared-memory race (%s): threads %d and %d access byte %u of __shared__ memory "
                  "between the same two __syncthreads()", kind, other, current, word * 4);
    fail(buf);
}

__attribute__((no_sanitize_thread)) inline void shared_access(void* addr, unsigned long size, bool write) {
    const char* p = static_cast<const char*>(addr);
    if (current < 0 || p + size <= lo || p >= hi) return;
    const unsigned first = (unsigned)((p - lo) / 4), last = (unsigned)((p + size - 1 - lo) / 4);
    const short me = (short)current;
    for (unsigned w = first; w <= last; ++w) {
        Cell& c = cells[w];
        if (!c.watched) continue;
        if (c.epoch != epoch) c = Cell{epoch, NONE, NONE, true};
        if (c.writer != NONE && c.writer != me) race(write ? "write after write" : "read after write", w, c.writer);
        if (write) {
            if (c.reader == SEVERAL || (c.reader != NONE && c.reader != me))
                race("write after read", w, c.reader == SEVERAL ? -1 : c.reader);
            c.writer = me;
        } else if (c.reader != me) {
            c.reader = c.reader == NONE ? me : SEVERAL;
        }
    }
}

// Guard bands (the fake driver's poisoned bytes before and after each buffer) of
// the allocations a launch's pointer arguments point into, sorted by address: a
// kernel access inside one is out of bounds. Writes there are also caught after the
// launch (the poison changes); reads only here. Set by emu_set_guards per launch.
struct Guard { unsigned long long begin, end, alloc, size; };
static Guard* guards;
static int nguards;

__attribute__((no_sanitize_thread)) inline void guard_access(const char* p, unsigned long size, bool write) {
    const unsigned long long a = (unsigned long long)p, b = a + size;
    int lo = 0, hi = nguards;  // first guard whose end > a
    while (lo < hi) {
        const int mid = (lo + hi) / 2;
        if (guards[mid].end <= a) lo = mid + 1; else hi = mid;
    }
    if (lo < nguards && guards[lo].begin < b) {
        const Guard& g = guards[lo];
        char buf[200];
        if (a >= g.alloc + g.size)
            std::snprintf(buf, sizeof buf, "out-of-bounds %s of %lu bytes at %llu bytes past the end of a device "
                          "allocation of %llu bytes", write ? "write" : "read", size, a - (g.alloc + g.size), g.size);
        else
            std::snprintf(buf, sizeof buf, "out-of-bounds %s of %lu bytes at %llu bytes before a device allocation "
                          "of %llu bytes", write ? "write" : "read", size, g.alloc - a, g.size);
        fail(buf);
    }
}

__attribute__((no_sanitize_thread)) inline void check_access(void* addr, unsigned long size, bool write) {
    if (current < 0) return;
    shared_access(addr, size, write);
    if (nguards) guard_access(static_cast<const char*>(addr), size, write);
}
}  // namespace emu

// ranges: `count` (begin, end, allocation, size) quadruples, sorted by begin
extern "C" __attribute__((no_sanitize_thread)) void emu_set_guards(const unsigned long long* ranges, int count) {
    std::free(emu::guards);
    emu::guards = static_cast<emu::Guard*>(std::malloc(sizeof(emu::Guard) * (count ? count : 1)));
    std::memcpy(emu::guards, ranges, sizeof(emu::Guard) * count);
    emu::nguards = count;
}

// ranges: `count` (address, size) pairs, the module's __shared__ variables
extern "C" __attribute__((no_sanitize_thread)) void emu_watch(const unsigned long long* ranges, int count) {
    if (count == 0 || emu::cells) return;
    unsigned long long a = ~0ull, b = 0;
    for (int i = 0; i < count; ++i) {
        a = std::min(a, ranges[2 * i] & ~3ull);
        b = std::max(b, ranges[2 * i] + ranges[2 * i + 1]);
    }
    emu::lo = reinterpret_cast<const char*>(a);
    emu::hi = reinterpret_cast<const char*>(b);
    emu::cells = static_cast<emu::Cell*>(std::calloc((b - a + 3) / 4, sizeof(emu::Cell)));
    for (int i = 0; i < count; ++i)
        for (unsigned long long w = ((ranges[2 * i] & ~3ull) - a) / 4; w < (ranges[2 * i] + ranges[2 * i + 1] - a + 3) / 4; ++w)
            emu::cells[w].watched = true;
}
#define EMU_TSAN_HOOKS(n)                                                                                   \
    extern "C" __attribute__((no_sanitize_thread)) void __tsan_read##n(void* a) { emu::check_access(a, n, false); } \
    extern "C" __attribute__((no_sanitize_thread)) void __tsan_write##n(void* a) { emu::check_access(a, n, true); }  \
    extern "C" __attribute__((no_sanitize_thread)) void __tsan_unaligned_read##n(void* a) { emu::check_access(a, n, false); } \
    extern "C" __attribute__((no_sanitize_thread)) void __tsan_unaligned_write##n(void* a) { emu::check_access(a, n, true); }
EMU_TSAN_HOOKS(1)
EMU_TSAN_HOOKS(2)
EMU_TSAN_HOOKS(4)
EMU_TSAN_HOOKS(8)
EMU_TSAN_HOOKS(16)
extern "C" __attribute__((no_sanitize_thread)) void __tsan_read_range(void* a, unsigned long n) { emu::check_access(a, n, false); }
extern "C" __attribute__((no_sanitize_thread)) void __tsan_write_range(void* a, unsigned long n) { emu::check_access(a, n, true); }
extern "C" __attribute__((no_sanitize_thread)) void __tsan_init() {}
extern "C" __attribute__((no_sanitize_thread)) void __tsan_func_entry(void*) {}
extern "C" __attribute__((no_sanitize_thread)) void __tsan_func_exit() {}

inline void __syncthreads() { emu::wait_at(emu::AT_BLOCK_BARRIER); }
inline float __shfl_down_sync(unsigned mask, float v, int delta) { return emu::shuffle(mask, v, (emu::current & 31) + delta); }
inline float __shfl_xor_sync(unsigned mask, float v, int lane_mask) { return emu::shuffle(mask, v, (emu::current & 31) ^ lane_mask); }

extern "C" const char* emu_last_error() { return emu::error.c_str(); }
