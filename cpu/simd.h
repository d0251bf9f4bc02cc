// SIMD vocabulary for the cpu kernels, one definition per ISA build (AVX-512, AVX2+FMA+F16C, scalar).
// Everything here has internal linkage so ISA builds never share a symbol.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#include "select_attn/common.h"

namespace select_attn::cpu {
namespace {

// ---- scalar f16/bf16 <-> f32 (round to nearest even) ----
inline float bf16_to_f32(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}
inline float f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
  if (exp == 0) {
    if (man == 0) {
      u = sign;
    } else {  // subnormal
      int e = -1;
      do { man <<= 1; ++e; } while (!(man & 0x400));
      u = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
    }
  } else if (exp == 31) {
    u = sign | 0x7f800000u | (man << 13);
  } else {
    u = sign | ((exp + 127 - 15) << 23) | (man << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint16_t f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  uint32_t sign = (u >> 16) & 0x8000;
  uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00);
  if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00);  // overflow -> inf
  if (a < 0x38800000u) {                                     // subnormal or zero
    if (a < 0x33000000u) return (uint16_t)sign;
    uint32_t e = a >> 23, m = (a & 0x7fffff) | 0x800000;
    uint32_t shift = 126 - e;  // value = m * 2^(e-150); f16 subnormal unit is 2^-24
    uint32_t res = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (res & 1))) ++res;
    return (uint16_t)(sign | res);
  }
  uint32_t res = ((a - 0x38000000u) >> 13);
  uint32_t rem = a & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (res & 1))) ++res;
  return (uint16_t)(sign | res);
}

template <DType T> inline float to_f32(const void* p, int64_t i);
template <> inline float to_f32<DType::f32>(const void* p, int64_t i) { return static_cast<const float*>(p)[i]; }
template <> inline float to_f32<DType::f16>(const void* p, int64_t i) { return f16_to_f32(static_cast<const uint16_t*>(p)[i]); }
template <> inline float to_f32<DType::bf16>(const void* p, int64_t i) { return bf16_to_f32(static_cast<const uint16_t*>(p)[i]); }

template <DType T> inline void from_f32(void* p, int64_t i, float v);
template <> inline void from_f32<DType::f32>(void* p, int64_t i, float v) { static_cast<float*>(p)[i] = v; }
template <> inline void from_f32<DType::f16>(void* p, int64_t i, float v) { static_cast<uint16_t*>(p)[i] = f32_to_f16(v); }
template <> inline void from_f32<DType::bf16>(void* p, int64_t i, float v) { static_cast<uint16_t*>(p)[i] = f32_to_bf16(v); }

// ---- vector of W floats ----
#if defined(__AVX512F__)
constexpr int W = 16;
struct V { __m512 v; };
inline V vzero() { return {_mm512_setzero_ps()}; }
inline V vset1(float x) { return {_mm512_set1_ps(x)}; }
inline V vadd(V a, V b) { return {_mm512_add_ps(a.v, b.v)}; }
inline V vsub(V a, V b) { return {_mm512_sub_ps(a.v, b.v)}; }
inline V vmul(V a, V b) { return {_mm512_mul_ps(a.v, b.v)}; }
inline V vfma(V a, V b, V c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }  // a*b+c
inline V vmax(V a, V b) { return {_mm512_max_ps(a.v, b.v)}; }
inline V vmin(V a, V b) { return {_mm512_min_ps(a.v, b.v)}; }
inline float vsum(V a) { return _mm512_reduce_add_ps(a.v); }
inline float vhmax(V a) { return _mm512_reduce_max_ps(a.v); }
inline V vload(const float* p) { return {_mm512_loadu_ps(p)}; }
inline V vload(const uint16_t* p, DType t) {
  __m256i h = _mm256_loadu_si256((const __m256i*)p);
  if (t == DType::f16) return {_mm512_cvtph_ps(h)};
  return {_mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16))};
}
inline void vstore(float* p, V a) { _mm512_storeu_ps(p, a.v); }
// Partial forms: first n (< W) lanes, the rest zero / untouched.
inline V vload_n(const float* p, int n) { return {_mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), p)}; }
inline V vload_n(const uint16_t* p, DType t, int n) {
  __m256i h = _mm256_maskz_loadu_epi16((__mmask16)((1u << n) - 1), p);
  if (t == DType::f16) return {_mm512_cvtph_ps(h)};
  return {_mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16))};
}
inline void vstore_n(float* p, V a, int n) { _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1), a.v); }
#elif defined(__AVX2__)
constexpr int W = 8;
struct V { __m256 v; };
inline V vzero() { return {_mm256_setzero_ps()}; }
inline V vset1(float x) { return {_mm256_set1_ps(x)}; }
inline V vadd(V a, V b) { return {_mm256_add_ps(a.v, b.v)}; }
inline V vsub(V a, V b) { return {_mm256_sub_ps(a.v, b.v)}; }
inline V vmul(V a, V b) { return {_mm256_mul_ps(a.v, b.v)}; }
inline V vfma(V a, V b, V c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
inline V vmax(V a, V b) { return {_mm256_max_ps(a.v, b.v)}; }
inline V vmin(V a, V b) { return {_mm256_min_ps(a.v, b.v)}; }
inline float vsum(V a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline float vhmax(V a) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline V vload(const float* p) { return {_mm256_loadu_ps(p)}; }
inline V vload(const uint16_t* p, DType t) {
  __m128i h = _mm_loadu_si128((const __m128i*)p);
  if (t == DType::f16) return {_mm256_cvtph_ps(h)};
  return {_mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16))};
}
inline void vstore(float* p, V a) { _mm256_storeu_ps(p, a.v); }
inline V vload_n(const float* p, int n) {
  alignas(32) float t[8] = {0};
  for (int i = 0; i < n; ++i) t[i] = p[i];
  return {_mm256_load_ps(t)};
}
inline V vload_n(const uint16_t* p, DType t, int n) {
  alignas(16) uint16_t h[8] = {0};
  for (int i = 0; i < n; ++i) h[i] = p[i];
  return vload(h, t);
}
inline void vstore_n(float* p, V a, int n) {
  alignas(32) float t[8];
  _mm256_store_ps(t, a.v);
  for (int i = 0; i < n; ++i) p[i] = t[i];
}
#else
constexpr int W = 4;
struct V { float v[4]; };
inline V vzero() { return {{0, 0, 0, 0}}; }
inline V vset1(float x) { return {{x, x, x, x}}; }
#define SA_V_BINOP(name, expr) \
  inline V name(V a, V b) { V r; for (int i = 0; i < 4; ++i) { float x = a.v[i], y = b.v[i]; r.v[i] = (expr); } return r; }
SA_V_BINOP(vadd, x + y)
SA_V_BINOP(vsub, x - y)
SA_V_BINOP(vmul, x * y)
SA_V_BINOP(vmax, x > y ? x : y)
SA_V_BINOP(vmin, x < y ? x : y)
#undef SA_V_BINOP
inline V vfma(V a, V b, V c) { V r; for (int i = 0; i < 4; ++i) r.v[i] = std::fma(a.v[i], b.v[i], c.v[i]); return r; }
inline float vsum(V a) { return (a.v[0] + a.v[1]) + (a.v[2] + a.v[3]); }
inline float vhmax(V a) { float m = a.v[0]; for (int i = 1; i < 4; ++i) m = a.v[i] > m ? a.v[i] : m; return m; }
inline V vload(const float* p) { V r; for (int i = 0; i < 4; ++i) r.v[i] = p[i]; return r; }
inline V vload(const uint16_t* p, DType t) {
  V r;
  for (int i = 0; i < 4; ++i) r.v[i] = t == DType::f16 ? f16_to_f32(p[i]) : bf16_to_f32(p[i]);
  return r;
}
inline void vstore(float* p, V a) { for (int i = 0; i < 4; ++i) p[i] = a.v[i]; }
inline V vload_n(const float* p, int n) { V r = vzero(); for (int i = 0; i < n; ++i) r.v[i] = p[i]; return r; }
inline V vload_n(const uint16_t* p, DType t, int n) {
  V r = vzero();
  for (int i = 0; i < n; ++i) r.v[i] = t == DType::f16 ? f16_to_f32(p[i]) : bf16_to_f32(p[i]);
  return r;
}
inline void vstore_n(float* p, V a, int n) { for (int i = 0; i < n; ++i) p[i] = a.v[i]; }
#endif

// Widens n elements of dtype t at src (element offset off) into dst (f32).
inline void widen(float* dst, const void* src, DType t, int64_t off, int n) {
  if (t == DType::f32) {
    std::memcpy(dst, static_cast<const float*>(src) + off, sizeof(float) * n);
    return;
  }
  const uint16_t* s = static_cast<const uint16_t*>(src) + off;
  int i = 0;
  for (; i + W <= n; i += W) vstore(dst + i, vload(s + i, t));
  if (i < n) vstore_n(dst + i, vload_n(s + i, t, n - i), n - i);
}

}  // namespace
}  // namespace select_attn::cpu
