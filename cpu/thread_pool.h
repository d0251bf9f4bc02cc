// Persistent CPU thread pool shared by every cpu kernel. Calls from several JS threads are serialized.
#pragma once
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace select_attn::cpu {

int num_threads();           // workers + the calling thread; SA_NUM_THREADS overrides the core count
void set_num_threads(int n);

// Runs fn(ctx, task, thread) for every task in [0, n), tasks claimed dynamically; thread < num_threads().
void parallel_for_raw(int64_t n, void (*fn)(void*, int64_t, int), void* ctx);

template <class F>
inline void parallel_for(int64_t n, F&& f) {
  using Fn = typename std::remove_reference<F>::type;
  parallel_for_raw(n, [](void* c, int64_t i, int t) { (*static_cast<Fn*>(c))(i, t); }, &f);
}

// Per-thread scratch memory of at least `bytes`, 64-byte aligned, reused across calls (grows, never shrinks).
void* scratch(int thread, size_t bytes);

}  // namespace select_attn::cpu
