// Streaming-read kernel for the benchmark ceiling: SIMD loads of every byte, summed so they are not elided.
#include "isa.h"
#include "simd.h"

namespace select_attn::cpu::SA_ISA {
float stream_read(const void* p, size_t bytes) {
  const float* f = static_cast<const float*>(p);
  const size_t n = bytes / sizeof(float);
  V a0 = vzero(), a1 = vzero(), a2 = vzero(), a3 = vzero();
  size_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    a0 = vadd(a0, vload(f + i));
    a1 = vadd(a1, vload(f + i + W));
    a2 = vadd(a2, vload(f + i + 2 * W));
    a3 = vadd(a3, vload(f + i + 3 * W));
  }
  float s = vsum(vadd(vadd(a0, a1), vadd(a2, a3)));
  for (; i < n; ++i) s += f[i];
  return s;
}
}  // namespace select_attn::cpu::SA_ISA
