// Device helpers shared by the Ascend C kernels (tiling copy, float bit constants, the per-core
// status word). Compiles with CANN's compiler and with the ascend-sim twin.
#pragma once
#ifndef SA_ASCEND_TWIN  // the ascend-sim build includes the twin's kernel_operator.h before this file
#include "kernel_operator.h"
#endif
#include "tiling_data.h"

namespace sa_kernels {

using namespace AscendC;

// Copies a tiling struct from GM word by word (kernel-direct launch passes it as a GM pointer).
template <typename T>
__aicore__ inline void CopyTiling(T* dst, GM_ADDR src) {
  GlobalTensor<uint32_t> g;
  g.SetGlobalBuffer((__gm__ uint32_t*)src, sizeof(T) / sizeof(uint32_t));
  uint32_t* d = reinterpret_cast<uint32_t*>(dst);
  for (uint32_t i = 0; i < sizeof(T) / sizeof(uint32_t); ++i) d[i] = g.GetValue(i);
}

template <typename A, typename B>
struct IsSame {
  static constexpr bool value = false;
};
template <typename A>
struct IsSame<A, A> {
  static constexpr bool value = true;
};
template <bool C, typename A, typename B>
struct Cond {
  using type = A;
};
template <typename A, typename B>
struct Cond<false, A, B> {
  using type = B;
};

__aicore__ inline float FloatFromBits(uint32_t u) {
  union {
    uint32_t u;
    float f;
  } x;
  x.u = u;
  return x.f;
}
__aicore__ inline float PosInf() { return FloatFromBits(0x7f800000u); }
__aicore__ inline float NegInf() { return FloatFromBits(0xff800000u); }

__aicore__ inline uint64_t CeilDiv(uint64_t a, uint64_t b) { return (a + b - 1) / b; }
__aicore__ inline uint32_t RoundUp(uint32_t a, uint32_t m) { return (a + m - 1) / m * m; }
__aicore__ inline uint32_t Min32(uint32_t a, uint32_t b) { return a < b ? a : b; }
__aicore__ inline uint64_t Min64(uint64_t a, uint64_t b) { return a < b ? a : b; }

// One status word per core: the first bad input this core meets (a KernelStatus code). Cores write
// only their own word, so there is no race; the host reads all of them after the kernel.
class StatusWord {
 public:
  __aicore__ inline void Init(GM_ADDR p, uint32_t blockDim) {
    g_.SetGlobalBuffer((__gm__ int32_t*)p, blockDim);
    raised_ = false;
  }
  __aicore__ inline void Raise(int32_t code) {
    if (raised_) return;
    raised_ = true;
    g_.SetValue((uint64_t)GetBlockIdx(), code);
    // Scalar GM writes sit in the data cache: flush the line so the host sees it.
    DataCacheCleanAndInvalid<int32_t, CacheLine::SINGLE_CACHE_LINE, DcciDst::CACHELINE_OUT>(g_[(uint64_t)GetBlockIdx()]);
  }

 private:
  GlobalTensor<int32_t> g_;
  bool raised_ = false;
};

}  // namespace sa_kernels
