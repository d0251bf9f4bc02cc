// Vector math for the fused attention kernels: exp over W lanes (for x <= 0, the softmax range),
// cache prefetch, small integer helpers. Internal linkage only, like simd.h (one copy per ISA build).
#pragma once
#include <cmath>
#include <cstdint>

#include "simd.h"

namespace select_attn::cpu {
namespace {

inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }
inline int round_up(int x, int m) { return (x + m - 1) / m * m; }

// exp(x) for x <= 0 (arguments are logit - running max): Cephes' expf polynomial on the reduced
// argument, 2^n through the exponent bits; x < -87 (including -inf) gives exactly 0. ~1 ulp.
#if defined(__AVX512F__)
inline V vexp_neg(V xv) {
  const __m512 x0 = xv.v;
  const __mmask16 tiny = _mm512_cmp_ps_mask(x0, _mm512_set1_ps(-87.0f), _CMP_LT_OQ);  // also -inf
  const __m512 x = _mm512_max_ps(x0, _mm512_set1_ps(-87.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 y = _mm512_set1_ps(1.9875691500E-4f);
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.3981999507E-3f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(8.3334519073E-3f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(4.1665795894E-2f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.6666665459E-1f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(5.0000001201E-1f));
  y = _mm512_fmadd_ps(y, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  y = _mm512_mul_ps(y, _mm512_castsi512_ps(e));
  return {_mm512_maskz_mov_ps((__mmask16)~tiny, y)};
}
#elif defined(__AVX2__)
inline V vexp_neg(V xv) {
  const __m256 x0 = xv.v;
  const __m256 keep = _mm256_cmp_ps(x0, _mm256_set1_ps(-87.0f), _CMP_GE_OQ);  // false for -inf and NaN
  const __m256 x = _mm256_max_ps(x0, _mm256_set1_ps(-87.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 y = _mm256_set1_ps(1.9875691500E-4f);
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.3981999507E-3f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.3334519073E-3f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.1665795894E-2f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.6666665459E-1f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(5.0000001201E-1f));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  y = _mm256_mul_ps(y, _mm256_castsi256_ps(e));
  return {_mm256_and_ps(y, keep)};
}
#else
inline V vexp_neg(V x) {
  V r;
  for (int i = 0; i < W; ++i) r.v[i] = x.v[i] < -87.0f ? 0.0f : std::exp(x.v[i]);
  return r;
}
#endif

// Prefetch `rows` rows of `row_bytes` bytes, `stride` bytes apart, into L2 (hides the DRAM latency of
// the next KV tile; blocks of a paged cache are scattered, so the hardware streamer restarts per block).
inline void prefetch_rows(const void* base, int rows, int64_t stride, int64_t row_bytes) {
  const char* p = static_cast<const char*>(base);
  for (int r = 0; r < rows; ++r, p += stride)
    for (int64_t o = 0; o < row_bytes; o += 64) __builtin_prefetch(p + o, 0, 2);
}

}  // namespace
}  // namespace select_attn::cpu
