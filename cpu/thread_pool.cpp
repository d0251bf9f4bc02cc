// Persistent CPU thread pool: N-1 workers sleep on a condition variable; the caller works too.
#include "thread_pool.h"

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace select_attn::cpu {
namespace {

struct Pool {
  std::mutex call_mu;  // one parallel_for at a time
  std::mutex mu;
  std::condition_variable cv_work, cv_done;
  std::vector<std::thread> workers;
  int threads = 1;
  // current job
  uint64_t generation = 0;
  int64_t n = 0;
  void (*fn)(void*, int64_t, int) = nullptr;
  void* ctx = nullptr;
  std::atomic<int64_t> next{0};
  int active = 0;
  bool stop = false;
  std::vector<void*> scratch_ptr;
  std::vector<size_t> scratch_size;

  Pool() {
    int n = (int)std::thread::hardware_concurrency();
    if (const char* e = std::getenv("SA_NUM_THREADS")) n = std::atoi(e);
    resize(n < 1 ? 1 : n);
  }
  ~Pool() { shutdown(); for (void* p : scratch_ptr) std::free(p); }

  void shutdown() {
    { std::lock_guard<std::mutex> g(mu); stop = true; }
    cv_work.notify_all();
    for (auto& t : workers) t.join();
    workers.clear();
    stop = false;
  }

  void resize(int n) {
    shutdown();
    threads = n;
    scratch_ptr.resize(n, nullptr);
    scratch_size.resize(n, 0);
    for (int i = 1; i < n; ++i) workers.emplace_back([this, i] { loop(i); });
  }

  void drain(int tid) {
    for (;;) {
      int64_t i = next.fetch_add(1, std::memory_order_relaxed);
      if (i >= n) break;
      fn(ctx, i, tid);
    }
  }

  void loop(int tid) {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> g(mu);
        cv_work.wait(g, [&] { return stop || generation != seen; });
        if (stop) return;
        seen = generation;
      }
      drain(tid);
      {
        std::lock_guard<std::mutex> g(mu);
        if (--active == 0) cv_done.notify_one();
      }
    }
  }

  void run(int64_t count, void (*f)(void*, int64_t, int), void* c) {
    std::lock_guard<std::mutex> call(call_mu);
    if (threads == 1 || count == 1) {
      for (int64_t i = 0; i < count; ++i) f(c, i, 0);
      return;
    }
    {
      std::lock_guard<std::mutex> g(mu);
      n = count; fn = f; ctx = c;
      next.store(0, std::memory_order_relaxed);
      active = threads - 1;
      ++generation;
    }
    cv_work.notify_all();
    drain(0);
    std::unique_lock<std::mutex> g(mu);
    cv_done.wait(g, [&] { return active == 0; });
  }
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: workers may outlive static destruction order
  return *p;
}

}  // namespace

int num_threads() { return pool().threads; }

void set_num_threads(int n) {
  Pool& p = pool();
  std::lock_guard<std::mutex> call(p.call_mu);
  p.resize(n < 1 ? 1 : n);
}

void parallel_for_raw(int64_t n, void (*fn)(void*, int64_t, int), void* ctx) {
  if (n <= 0) return;
  pool().run(n, fn, ctx);
}

void* scratch(int thread, size_t bytes) {
  Pool& p = pool();
  if (p.scratch_size[thread] < bytes) {
    std::free(p.scratch_ptr[thread]);
    size_t sz = (bytes + 63) / 64 * 64;
    p.scratch_ptr[thread] = std::aligned_alloc(64, sz);
    p.scratch_size[thread] = p.scratch_ptr[thread] ? sz : 0;
  }
  return p.scratch_ptr[thread];
}

}  // namespace select_attn::cpu
