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

// Max/min in the order the contract uses (-0 < +0, then the usual float order), exact for every dtype:
// float bit patterns read as integers are ordered like the floats once the magnitude bits of negative
// values are flipped (x ^ 0x7fff.. when the sign is set). The map is its own inverse. Works in place on
// count elements of x (int16 for f16/bf16, int32 for f32); tmpA/tmpB hold count elements each;
// pattern is one 256-byte repeat of the magnitude mask as int16 lanes (0x7fff, or 0xffff 0x7fff pairs).
template <typename I>
__aicore__ inline void FlipNegatives(const LocalTensor<I>& x, const LocalTensor<I>& tmpA, const LocalTensor<I>& tmpB,
                                     const LocalTensor<int16_t>& pattern, uint32_t count) {
  ShiftRight(tmpA, x, (I)(sizeof(I) * 8 - 1), (int32_t)count);  // all ones where the sign bit is set
  const uint32_t n16 = count * (uint32_t)(sizeof(I) / 2);
  LocalTensor<int16_t> a = tmpA.template ReinterpretCast<int16_t>();
  LocalTensor<int16_t> b = tmpB.template ReinterpretCast<int16_t>();
  LocalTensor<int16_t> v = x.template ReinterpretCast<int16_t>();
  const uint32_t full = n16 / 128, tail = n16 % 128;  // 128 int16 lanes per repeat; pattern broadcast
  for (uint32_t r0 = 0; r0 < full; r0 += 255)
    And(a[r0 * 128], a[r0 * 128], pattern, (uint64_t)128, (int32_t)Min32(255, full - r0), BinaryRepeatParams(1, 1, 1, 8, 8, 0));
  if (tail) And(a[full * 128], a[full * 128], pattern, (uint64_t)tail, 1, BinaryRepeatParams(1, 1, 1, 8, 8, 0));
  Or(b, v, a, (int32_t)n16);   // x | m
  And(a, v, a, (int32_t)n16);  // x & m
  Sub(v, b, a, (int32_t)n16);  // (x | m) - (x & m) = x ^ m: x & m lies inside x | m, so no lane borrows
}
// Fills the 256-byte magnitude-mask pattern FlipNegatives needs for elements of `bytes` bytes.
__aicore__ inline void FillMagnitudePattern(const LocalTensor<int16_t>& pattern, uint32_t bytes) {
  if (bytes == 2) {
    Duplicate(pattern, (int16_t)0x7fff, 128);
  } else {
    Duplicate(pattern.template ReinterpretCast<int32_t>(), (int32_t)0x7fffffff, 64);  // little-endian: 0xffff, 0x7fff
  }
}

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
