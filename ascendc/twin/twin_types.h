// The twin's 16-bit float types (`half`, `bfloat16_t`, global names as in CANN kernels) and exact
// conversions with every Ascend C rounding mode; f16 arithmetic is done in double and rounded once,
// which equals the hardware's f16 result for add/sub/mul (one IEEE rounding of the exact value).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

namespace select_attn::twin {

enum class Round : int { none = 0, rint, floor, ceil, round, trunc, odd };

inline float f16_bits_to_f32(uint16_t h) {
  const uint32_t s = (uint32_t)(h & 0x8000) << 16;
  const uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff;
  float f;
  if (e == 0) {
    f = std::ldexp((float)m, -24);
    if (s) f = -f;
    return f;
  }
  uint32_t u = e == 31 ? (s | 0x7f800000u | (m << 13)) : (s | ((e + 112) << 23) | (m << 13));
  std::memcpy(&f, &u, 4);
  return f;
}
inline float bf16_bits_to_f32(uint16_t b) {
  uint32_t u = (uint32_t)b << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Round-to-nearest-even f64 -> f16 bits (overflow to inf, subnormals kept).
inline uint16_t f64_to_f16_rne(double x) {
  if (std::isnan(x)) return 0x7e00;
  const uint16_t sign = std::signbit(x) ? 0x8000 : 0;
  double a = std::fabs(x);
  if (a >= 65520.0) return sign | 0x7c00;  // rounds to inf
  if (a < std::ldexp(1.0, -25)) return sign;  // below half the smallest subnormal (tie rounds to even 0)
  int e;
  std::frexp(a, &e);  // a = f * 2^e, f in [0.5, 1)
  int exp = e - 1;     // a in [2^exp, 2^(exp+1))
  if (exp < -14) exp = -14;  // subnormal range: fixed quantum 2^-24
  const double q = std::ldexp(1.0, exp - 10);
  double n = std::nearbyint(a / q);  // current rounding mode is to-nearest-even
  double r = n * q;
  if (r >= 65520.0) return sign | 0x7c00;
  // Encode r.
  if (r < std::ldexp(1.0, -14)) return sign | (uint16_t)(r / std::ldexp(1.0, -24));
  int re;
  double rf = std::frexp(r, &re);  // r = rf * 2^re
  uint16_t ebits = (uint16_t)(re - 1 + 15);
  uint16_t mbits = (uint16_t)std::lround((rf * 2.0 - 1.0) * 1024.0);
  return sign | (uint16_t)(ebits << 10) | mbits;
}

inline uint16_t f32_to_bf16_rne(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
  u += 0x7fff + ((u >> 16) & 1);
  return (uint16_t)(u >> 16);
}

// Neighbours of a 16-bit float bit pattern toward +inf / -inf (finite or inf inputs).
inline uint16_t next_up16(uint16_t b, bool is_f16) {
  const uint16_t inf = is_f16 ? 0x7c00 : 0x7f80;
  if (b == 0x8000) return 1;
  if (b & 0x8000) return b - 1;
  return b == inf ? b : b + 1;
}
inline uint16_t next_down16(uint16_t b, bool is_f16) {
  const uint16_t ninf = is_f16 ? 0xfc00 : 0xff80;
  if (b == 0) return 0x8001;
  if (b & 0x8000) return b == ninf ? b : b + 1;
  return b - 1;
}

// f32 -> 16-bit float with an Ascend C rounding mode (CAST_NONE rounds like CAST_RINT when inexact).
inline uint16_t f32_to_16(float f, Round mode, bool is_f16) {
  const uint16_t rne = is_f16 ? f64_to_f16_rne(f) : f32_to_bf16_rne(f);
  if (std::isnan(f) || mode == Round::none || mode == Round::rint) return rne;
  auto val = [&](uint16_t b) { return is_f16 ? (double)f16_bits_to_f32(b) : (double)bf16_bits_to_f32(b); };
  const double x = f, v = val(rne);
  if (v == x) return rne;
  uint16_t lo = v < x ? rne : next_down16(rne, is_f16);
  uint16_t hi = v < x ? next_up16(rne, is_f16) : rne;
  switch (mode) {
    case Round::floor: return lo;
    case Round::ceil: return hi;
    case Round::trunc: return x > 0 ? lo : hi;
    case Round::round: {
      double dl = x - val(lo), dh = val(hi) - x;
      if (dl < dh) return lo;
      if (dh < dl) return hi;
      return x > 0 ? hi : lo;  // ties away from zero
    }
    case Round::odd: {
      const int shift = 0;
      (void)shift;
      return (lo & 1) ? lo : hi;  // the neighbour whose last mantissa bit is 1
    }
    default: return rne;
  }
}

}  // namespace select_attn::twin

// The 16-bit float types kernels name unqualified, as with CANN's bisheng compiler.
struct half {
  uint16_t bits = 0;
  half() = default;
  half(float f) : bits(select_attn::twin::f64_to_f16_rne(f)) {}
  operator float() const { return select_attn::twin::f16_bits_to_f32(bits); }
  static half from_bits(uint16_t b) {
    half h;
    h.bits = b;
    return h;
  }
};
struct bfloat16_t {
  uint16_t bits = 0;
  bfloat16_t() = default;
  bfloat16_t(float f) : bits(select_attn::twin::f32_to_bf16_rne(f)) {}
  operator float() const { return select_attn::twin::bf16_bits_to_f32(bits); }
  static bfloat16_t from_bits(uint16_t b) {
    bfloat16_t h;
    h.bits = b;
    return h;
  }
};
