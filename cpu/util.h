// Helpers the cpu kernel files share: per-call memory, per-OS-thread reusable memory and an in-place
// heap sort. Internal linkage (one copy per ISA build) and no std containers, as isa.h requires.
#pragma once
#include <cstdint>
#include <cstdlib>

namespace select_attn::cpu {
namespace {

// malloc'd memory freed on scope exit.
struct Buf {
  void* p = nullptr;
  explicit Buf(size_t bytes) : p(bytes ? std::malloc(bytes) : nullptr) {}
  ~Buf() { std::free(p); }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  template <class T> T* as() const { return static_cast<T*>(p); }
};

// Memory of the calling OS thread, kept across calls (the pool's scratch(0) is only safe inside
// parallel_for: two async calls run their setup on different libuv threads concurrently).
struct CallBuffer {
  void* p = nullptr;
  size_t n = 0;
  ~CallBuffer() { std::free(p); }
  void* get(size_t bytes) {
    if (bytes > n) {
      std::free(p);
      n = (bytes + 4095) / 4096 * 4096;
      p = std::aligned_alloc(64, n);
      if (!p) n = 0;
    }
    return p;
  }
};

// In-place heap sort, ascending by less(a, b) (no std::sort in ISA files). With a total order the
// result is deterministic.
template <class T, class Less>
inline void heap_sort(T* a, int64_t n, Less less) {
  auto sift = [&](int64_t i, int64_t end) {
    for (;;) {
      int64_t c = 2 * i + 1;
      if (c >= end) return;
      if (c + 1 < end && less(a[c], a[c + 1])) ++c;
      if (!less(a[i], a[c])) return;
      T t = a[i]; a[i] = a[c]; a[c] = t;
      i = c;
    }
  };
  for (int64_t i = n / 2 - 1; i >= 0; --i) sift(i, n);
  for (int64_t e = n - 1; e > 0; --e) {
    T t = a[0]; a[0] = a[e]; a[e] = t;
    sift(0, e);
  }
}

}  // namespace
}  // namespace select_attn::cpu
