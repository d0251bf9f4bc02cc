// quest_select on cpu (SPEC section 2): scores every real block of every (sequence, head) in one pass
// over the metadata, then picks the forced blocks plus the top scores (sampled threshold + radix
// select), written in ascending id order with -1 padding. Compiled once per ISA (see isa.h).
#include <sched.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "isa.h"
#include "simd.h"
#include "thread_pool.h"
#include "util.h"

namespace select_attn::cpu::SA_ISA {
namespace {

thread_local CallBuffer call_buffer;  // see util.h

template <DType MT> inline V mload(const void* base, int64_t i) {
  if (MT == DType::f32) return vload(static_cast<const float*>(base) + i);
  return vload(static_cast<const uint16_t*>(base) + i, MT);
}
template <DType MT> inline V mload_n(const void* base, int64_t i, int n) {
  if (MT == DType::f32) return vload_n(static_cast<const float*>(base) + i, n);
  return vload_n(static_cast<const uint16_t*>(base) + i, MT, n);
}

// Score term: max(q M, q m) = q * (q < 0 ? m : M), since maxMeta >= minMeta (quest_metadata and
// the kv_cache append keep it so). Picking the element by the sign of q before the multiply needs
// one widening and one FMA per channel instead of two of each. `Neg` is the per-chunk sign of q.
#if defined(__AVX512F__)
using Neg = __mmask16;  // bit i: q[d + i] has its sign bit set (precomputed per query row)
inline Neg neg_of(const float*, const uint16_t* qk, int d) { return (Neg)qk[d / W]; }
inline V vblend(Neg k, V a, V b) { return {_mm512_mask_blend_ps(k, a.v, b.v)}; }
template <DType MT> inline V widen16(__m256i x) {
  if (MT == DType::f16) return {_mm512_cvtph_ps(x)};
  return {_mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(x), 16))};
}
// The W elements at i of (k ? m : M): 16-bit elements are chosen before widening.
template <DType MT> inline V msel(const void* M, const void* m, int64_t i, Neg k) {
  if (MT == DType::f32)
    return {_mm512_mask_blend_ps(k, _mm512_loadu_ps(static_cast<const float*>(M) + i), _mm512_loadu_ps(static_cast<const float*>(m) + i))};
  const __m256i x = _mm256_loadu_si256((const __m256i*)(static_cast<const uint16_t*>(M) + i));
  const __m256i y = _mm256_loadu_si256((const __m256i*)(static_cast<const uint16_t*>(m) + i));
  return widen16<MT>(_mm256_mask_blend_epi16(k, x, y));
}
template <DType MT> inline V msel_n(const void* M, const void* m, int64_t i, Neg k, int n) {
  const __mmask16 live = (__mmask16)((1u << n) - 1);
  if (MT == DType::f32)
    return {_mm512_mask_blend_ps(k, _mm512_maskz_loadu_ps(live, static_cast<const float*>(M) + i),
                                 _mm512_maskz_loadu_ps(live, static_cast<const float*>(m) + i))};
  const __m256i x = _mm256_maskz_loadu_epi16(live, static_cast<const uint16_t*>(M) + i);
  const __m256i y = _mm256_maskz_loadu_epi16(live, static_cast<const uint16_t*>(m) + i);
  return widen16<MT>(_mm256_mask_blend_epi16(k, x, y));
}
// out[0..3] = horizontal sums of a, b, c, d (one shuffle tree instead of four).
inline void hsum4(V a, V b, V c, V d, float* out) {
  const __m512 ab = _mm512_add_ps(_mm512_shuffle_f32x4(a.v, b.v, 0x44), _mm512_shuffle_f32x4(a.v, b.v, 0xEE));
  const __m512 cd = _mm512_add_ps(_mm512_shuffle_f32x4(c.v, d.v, 0x44), _mm512_shuffle_f32x4(c.v, d.v, 0xEE));
  __m512 x = _mm512_add_ps(_mm512_shuffle_f32x4(ab, cd, 0x88), _mm512_shuffle_f32x4(ab, cd, 0xDD));
  x = _mm512_add_ps(x, _mm512_permute_ps(x, 0x4E));
  x = _mm512_add_ps(x, _mm512_permute_ps(x, 0xB1));
  const __m512 r = _mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), x);
  _mm_storeu_ps(out, _mm512_castps512_ps128(r));
}
#else
using Neg = V;  // the q chunk itself: its sign bits choose
inline Neg neg_of(const float* q, const uint16_t*, int d) { return vload(q + d); }
#if defined(__AVX2__)
inline V vblend(Neg k, V a, V b) { return {_mm256_blendv_ps(a.v, b.v, k.v)}; }
#else
inline V vblend(Neg k, V a, V b) {
  V r;
  for (int i = 0; i < W; ++i) r.v[i] = std::signbit(k.v[i]) ? b.v[i] : a.v[i];
  return r;
}
#endif
template <DType MT> inline V msel(const void* M, const void* m, int64_t i, Neg k) {
  return vblend(k, mload<MT>(M, i), mload<MT>(m, i));
}
template <DType MT> inline V msel_n(const void* M, const void* m, int64_t i, Neg k, int n) {
  return vblend(k, mload_n<MT>(M, i, n), mload_n<MT>(m, i, n));
}
inline void hsum4(V a, V b, V c, V d, float* out) {
  out[0] = vsum(a); out[1] = vsum(b); out[2] = vsum(c); out[3] = vsum(d);
}
#endif

template <int NQ> inline void hsum_n(const V* acc, float* out) {
  int i = 0;
  for (; i + 4 <= NQ; i += 4) hsum4(acc[i], acc[i + 1], acc[i + 2], acc[i + 3], out + i);
  for (; i < NQ; ++i) out[i] = vsum(acc[i]);
}

// One query row (q: [Dp] f32, zero beyond D; qk: [Dp / 16] sign masks) against the metadata row at
// element offset off: the unsummed accumulator vector. NC = D / W full chunks when known at compile
// time (fully unrolled, few live registers), else 0 (runtime loop with a masked tail).
template <DType MT, int NC>
inline V score_vec(const void* M, const void* m, int64_t off, const float* q, const uint16_t* qk, int D) {
  V a0 = vzero(), a1 = vzero();
  if (NC > 0) {
    for (int c = 0; c < NC; c += 2) {
      a0 = vfma(vload(q + c * W), msel<MT>(M, m, off + c * W, neg_of(q, qk, c * W)), a0);
      if (c + 1 < NC) a1 = vfma(vload(q + (c + 1) * W), msel<MT>(M, m, off + (c + 1) * W, neg_of(q, qk, (c + 1) * W)), a1);
    }
    return vadd(a0, a1);
  }
  int d = 0;
  for (; d + W <= D; d += W) a0 = vfma(vload(q + d), msel<MT>(M, m, off + d, neg_of(q, qk, d)), a0);
  if (d < D) a1 = vfma(vload(q + d), msel_n<MT>(M, m, off + d, neg_of(q, qk, d), D - d), a1);
  return vadd(a0, a1);
}

// mean: scores of the N KV heads of one block row (base: element offset of head 0), 4 heads per
// horizontal-sum tree. q: [N][Dp], qk: [N][Dp / 16]; out[n * L] receives head n's score.
template <DType MT, int NC>
inline void score_row_mean(const void* M, const void* m, int64_t base, const float* q, const uint16_t* qk, int N, int D,
                           int Dp, float* out, int64_t L) {
  const int nk = Dp / 16;
  int n = 0;
  for (; n + 4 <= N; n += 4) {
    const V r0 = score_vec<MT, NC>(M, m, base + (int64_t)n * D, q + (int64_t)n * Dp, qk + n * nk, D);
    const V r1 = score_vec<MT, NC>(M, m, base + (int64_t)(n + 1) * D, q + (int64_t)(n + 1) * Dp, qk + (n + 1) * nk, D);
    const V r2 = score_vec<MT, NC>(M, m, base + (int64_t)(n + 2) * D, q + (int64_t)(n + 2) * Dp, qk + (n + 2) * nk, D);
    const V r3 = score_vec<MT, NC>(M, m, base + (int64_t)(n + 3) * D, q + (int64_t)(n + 3) * Dp, qk + (n + 3) * nk, D);
    float s[4];
    hsum4(r0, r1, r2, r3, s);
    for (int i = 0; i < 4; ++i) out[(int64_t)(n + i) * L] = s[i];
  }
  for (; n < N; ++n) out[(int64_t)n * L] = vsum(score_vec<MT, NC>(M, m, base + (int64_t)n * D, q + (int64_t)n * Dp, qk + n * nk, D));
}

// perHead: NQ query rows against the same metadata row (offset off): widened once, chosen per query.
template <DType MT, int NQ>
inline void score_shared(const void* M, const void* m, int64_t off, const float* q, const uint16_t* qk, int D, int Dp,
                         float* out) {
  V acc[NQ];
  for (int i = 0; i < NQ; ++i) acc[i] = vzero();
  int d = 0;
  for (; d + W <= D; d += W) {
    const V x = mload<MT>(M, off + d), y = mload<MT>(m, off + d);
    for (int i = 0; i < NQ; ++i) {
      const float* qi = q + (int64_t)i * Dp;
      acc[i] = vfma(vload(qi + d), vblend(neg_of(qi, qk + i * (Dp / 16), d), x, y), acc[i]);
    }
  }
  if (d < D) {
    const V x = mload_n<MT>(M, off + d, D - d), y = mload_n<MT>(m, off + d, D - d);
    for (int i = 0; i < NQ; ++i) {
      const float* qi = q + (int64_t)i * Dp;
      acc[i] = vfma(vload(qi + d), vblend(neg_of(qi, qk + i * (Dp / 16), d), x, y), acc[i]);
    }
  }
  hsum_n<NQ>(acc, out);
}

// Total order on f32 scores as unsigned integers (-0 is folded into +0 first; NaNs sort beyond
// +-inf, so odd inputs still give a deterministic answer).
inline uint32_t ord_score(float s) {
  s = s + 0.0f;
  uint32_t u;
  std::memcpy(&u, &s, 4);
  return u ^ ((uint32_t)((int32_t)u >> 31) | 0x80000000u);  // branch-free: scores' signs are random
}

// Keys of sc[0..C) with key >= min_key, compacted: K[ns], S[ns] = index; returns ns. K and S need 16
// slots of slack (the vector path stores whole vectors).
inline int64_t keys_at_least(const float* sc, int64_t C, uint32_t min_key, uint32_t* K, uint32_t* S) {
  int64_t ns = 0, i = 0;
#if defined(__AVX512F__)
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i sign = _mm512_set1_epi32((int)0x80000000u), thr = _mm512_set1_epi32((int)min_key);
  for (; i + 16 <= C; i += 16) {
    const __m512i u = _mm512_castps_si512(_mm512_add_ps(_mm512_loadu_ps(sc + i), _mm512_setzero_ps()));
    const __m512i k = _mm512_xor_si512(u, _mm512_or_si512(_mm512_srai_epi32(u, 31), sign));
    const __mmask16 keep = _mm512_cmpge_epu32_mask(k, thr);
    _mm512_storeu_si512(K + ns, _mm512_maskz_compress_epi32(keep, k));
    _mm512_storeu_si512(S + ns, _mm512_maskz_compress_epi32(keep, _mm512_add_epi32(lane, _mm512_set1_epi32((int)i))));
    ns += __builtin_popcount((unsigned)keep);
  }
#endif
  for (; i < C; ++i) {
    const uint32_t k = ord_score(sc[i]);
    K[ns] = k;
    S[ns] = (uint32_t)i;
    ns += k >= min_key;
  }
  return ns;
}

// Radix select on ordered 32-bit score keys K[0..n): 4- to 8-bit digits from the highest bit in which
// the keys differ, counting only keys that share the digits fixed so far. Result: take every key > key
// plus the first take_eq keys == key in index order (or, when ge, every key >= key) - exactly `need`.
struct Threshold {
  uint32_t key;
  int64_t take_eq;
  bool ge;
};
inline Threshold radix_select(const uint32_t* K, int64_t n, int64_t need, uint32_t* hist) {
  uint32_t all_and = ~0u, any_or = 0;
  for (int64_t i = 0; i < n; ++i) {
    all_and &= K[i];
    any_or |= K[i];
  }
  if (all_and == any_or) return {all_and, need, false};  // n equal keys: the first `need`
  const int top = 31 - __builtin_clz(all_and ^ any_or);
  uint32_t mask = ~((2u << top) - 1u);  // the bits above `top`, shared by all keys (none when top = 31)
  uint32_t prefix = all_and & mask;
  // Digit width by n: clearing and scanning 2^bits buckets per level should cost less than the pass.
  const int bits = n <= 96 ? 4 : n <= 384 ? 6 : 8;
  const uint32_t dmask = (1u << bits) - 1u;
  for (int sh = top + 1 - bits;; sh -= bits) {
    const int shift = sh < 0 ? 0 : sh;  // a last, overlapping digit re-reads fixed bits: harmless
    // Four interleaved histograms: keys that share a bucket do not wait on each other's increment.
    const int nb = 1 << bits;
    std::memset(hist, 0, sizeof(uint32_t) * 4 * nb);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
      for (int u = 0; u < 4; ++u) hist[u * nb + ((K[i + u] >> shift) & dmask)] += (K[i + u] & mask) == prefix;
    for (; i < n; ++i) hist[(K[i] >> shift) & dmask] += (K[i] & mask) == prefix;
    for (int d = 0; d < nb; ++d) hist[d] += hist[nb + d] + hist[2 * nb + d] + hist[3 * nb + d];
    int t = (int)dmask;
    int64_t above = 0;
    while (t > 0 && above + hist[t] < need) above += hist[t--];
    need -= above;
    prefix = (prefix & ~(dmask << shift)) | ((uint32_t)t << shift);
    mask |= dmask << shift;
    if (hist[t] == need) return {prefix, 0, true};
    if (shift == 0) break;
  }
  return {prefix, need, false};
}

// Writes, in ascending order, base + i for the m best of sc[0..C) (score order, ties to the smaller i);
// returns m. A threshold estimated on a strided sample first drops most candidates in one
// branch-free pass (survivor keys and indices compacted), then an exact radix select runs on them.
inline int64_t select_top(const float* sc, int64_t C, int64_t m, int64_t base, uint32_t* work, int32_t* out) {
  uint32_t* K = work;          // [C + 16] survivor keys
  uint32_t* S = K + C + 16;    // [C + 16] survivor indices
  uint32_t* hist = S + C + 16; // [4 x 256]
  uint32_t* sample = hist + 1024;  // [256]
  int64_t ns = 0;
  // Sample 1 candidate in 8, at most 256 (a larger sample would cost more than it saves).
  const int kSample = C / 8 < 256 ? (int)(C / 8) : 256;
  if (kSample >= 32 && m * 4 <= C) {
    const int64_t stride = C / kSample;  // >= 8
    for (int i = 0; i < kSample; ++i) sample[i] = ord_score(sc[i * stride]);
    // Rank r in the sample so that about 1.25 m + 8 C / kSample candidates survive.
    const int64_t r0 = (m * 5 * kSample) / (4 * C) + 8, r = r0 < kSample ? r0 : kSample;
    const Threshold est = radix_select(sample, kSample, r, hist);
    ns = keys_at_least(sc, C, est.key, K, S);
  }
  if (ns < m) ns = keys_at_least(sc, C, 0, K, S);  // no sampling, or the estimate was too high
  const Threshold th = radix_select(K, ns, m, hist);
  int64_t c = 0, eq_left = th.take_eq;
  for (int64_t i = 0; i < ns; ++i) {
    const uint32_t k = K[i];
    const bool above = th.ge ? k >= th.key : k > th.key;
    const bool eq = !th.ge && k == th.key && eq_left > 0;
    eq_left -= eq;
    S[c] = S[i];  // in-place compaction (c <= i): out may hold only m entries
    c += above | eq;
  }
  if (c > m) c = m;  // exactly m by construction; never write past the row
  for (int64_t i = 0; i < c; ++i) out[i] = (int32_t)(base + S[i]);
  return c;
}

// Error text without std::to_string (inline std helpers compiled per ISA could be shared by the linker).
inline char* put(char* o, const char* s) {
  while (*s) *o++ = *s++;
  return o;
}
inline char* put(char* o, int64_t v) {
  char t[24];
  int n = 0;
  uint64_t u = v < 0 ? (uint64_t)(-(v + 1)) + 1 : (uint64_t)v;
  do { t[n++] = (char)('0' + u % 10); u /= 10; } while (u);
  if (v < 0) *o++ = '-';
  while (n) *o++ = t[--n];
  return o;
}

struct Shape {
  int B, H, N, D, G, rows, bs, R, k;
  bool per_head;
};

// f32 query rows for sequence b: q [rows][Dp] (zero beyond D) and sign masks qk [rows][Dp / 16].
// mean: q̄ = (sum of the G heads, in head order) / G, in f32.
inline void build_queries(const QuestSelectParams& p, const Shape& s, int b, int Dp, float* q, uint16_t* qk, float* tmp) {
  const int64_t qoff = (int64_t)b * s.H * s.D;
  for (int r = 0; r < s.rows; ++r) {
    float* qr = q + (int64_t)r * Dp;
    if (s.per_head) {
      widen(qr, p.query, p.query_dtype, qoff + (int64_t)r * s.D, s.D);
    } else {
      widen(qr, p.query, p.query_dtype, qoff + (int64_t)r * s.G * s.D, s.D);
      for (int g = 1; g < s.G; ++g) {
        widen(tmp, p.query, p.query_dtype, qoff + ((int64_t)r * s.G + g) * s.D, s.D);
        for (int d = 0; d < s.D; ++d) qr[d] += tmp[d];
      }
      const float G = (float)s.G;
      for (int d = 0; d < s.D; ++d) qr[d] = qr[d] / G;
    }
    for (int d = s.D; d < Dp; ++d) qr[d] = 0.0f;
    for (int c = 0; c < Dp / 16; ++c) {
      unsigned k = 0;
      for (int i = 0; i < 16; ++i) k |= (unsigned)std::signbit(qr[c * 16 + i]) << i;
      qk[(int64_t)r * (Dp / 16) + c] = (uint16_t)k;
    }
  }
}

// score_shared with D = NC * W known at compile time (Dp == D): every query and mask access is a
// constant offset from one base pointer, so the G queries need no extra registers.
template <DType MT, int NQ, int NC>
inline void score_shared_fixed(const void* M, const void* m, int64_t off, const float* q, const uint16_t* qk, float* out) {
  constexpr int Dp = NC * W;
  V acc[NQ];
  for (int i = 0; i < NQ; ++i) acc[i] = vzero();
  for (int c = 0; c < NC; ++c) {
    const V x = mload<MT>(M, off + c * W), y = mload<MT>(m, off + c * W);
    for (int i = 0; i < NQ; ++i)
      acc[i] = vfma(vload(q + i * Dp + c * W), vblend(neg_of(q + i * Dp, qk + i * (Dp / 16), c * W), x, y), acc[i]);
  }
  hsum_n<NQ>(acc, out);
}

// perHead: every query head of every KV head against rows [j0, j1).
template <DType MT, int NC>
inline void score_rows_per_head(const QuestSelectParams& p, const Shape& s, const int32_t* mbt, int64_t j0, int64_t j1,
                                int64_t L, const float* q, const uint16_t* qk, int Dp, float* sc);

// Walks rows [j0, j1) of a sequence page by page (no division per row): fn(j, element offset of the
// row). Rows are contiguous inside a page, and the hardware prefetchers follow them (software
// prefetch of the next rows measured no better).
template <class F>
inline void for_rows(const int32_t* mbt, int R, int64_t rowel, int64_t j0, int64_t j1, F&& fn) {
  int64_t page = j0 / R, r = j0 % R;
  int64_t base = ((int64_t)mbt[page] * R + r) * rowel;
  for (int64_t j = j0; j < j1; ++j) {
    fn(j, base);
    if (++r == R) {
      r = 0;
      if (j + 1 < j1) base = (int64_t)mbt[++page] * R * rowel;
    } else {
      base += rowel;
    }
  }
}

template <DType MT, int NC>
inline void score_rows_mean(const QuestSelectParams& p, const Shape& s, const int32_t* mbt, int64_t j0, int64_t j1,
                            int64_t L, const float* q, const uint16_t* qk, int Dp, float* sc) {
  for_rows(mbt, s.R, (int64_t)s.N * s.D, j0, j1, [&](int64_t j, int64_t base) {
    score_row_mean<MT, NC>(p.max_meta, p.min_meta, base, q, qk, s.N, s.D, Dp, sc + j, L);
  });
}

// Scores of rows [j0, j1) of sequence b for every query row into sc[row * L + j].
template <DType MT>
inline void score_blocks(const QuestSelectParams& p, const Shape& s, int b, int64_t j0, int64_t j1, int64_t L,
                         const float* q, const uint16_t* qk, int Dp, float* sc) {
  const int32_t* mbt = p.meta_block_tables + (int64_t)b * p.max_meta_pages_per_seq;
  if (!s.per_head) {
    // Common head dims get a fully unrolled chunk loop (16-lane chunks only: the AVX-512 build).
    if (W == 16 && s.D == 64) score_rows_mean<MT, 4 * (W == 16)>(p, s, mbt, j0, j1, L, q, qk, Dp, sc);
    else if (W == 16 && s.D == 96) score_rows_mean<MT, 6 * (W == 16)>(p, s, mbt, j0, j1, L, q, qk, Dp, sc);
    else if (W == 16 && s.D == 128) score_rows_mean<MT, 8 * (W == 16)>(p, s, mbt, j0, j1, L, q, qk, Dp, sc);
    else if (W == 16 && s.D == 256) score_rows_mean<MT, 16 * (W == 16)>(p, s, mbt, j0, j1, L, q, qk, Dp, sc);
    else score_rows_mean<MT, 0>(p, s, mbt, j0, j1, L, q, qk, Dp, sc);
    return;
  }
  if (W == 16 && s.D == 64) score_rows_per_head<MT, 4 * (W == 16)>(p, s, mbt, j0, j1, L, q, qk, Dp, sc);
  else if (W == 16 && s.D == 96) score_rows_per_head<MT, 6 * (W == 16)>(p, s, mbt, j0, j1, L, q, qk, Dp, sc);
  else if (W == 16 && s.D == 128) score_rows_per_head<MT, 8 * (W == 16)>(p, s, mbt, j0, j1, L, q, qk, Dp, sc);
  else if (W == 16 && s.D == 256) score_rows_per_head<MT, 16 * (W == 16)>(p, s, mbt, j0, j1, L, q, qk, Dp, sc);
  else score_rows_per_head<MT, 0>(p, s, mbt, j0, j1, L, q, qk, Dp, sc);
}

template <DType MT, int NC>
inline void score_rows_per_head(const QuestSelectParams& p, const Shape& s, const int32_t* mbt, int64_t j0, int64_t j1,
                                int64_t L, const float* q, const uint16_t* qk, int Dp, float* sc) {
  for_rows(mbt, s.R, (int64_t)s.N * s.D, j0, j1, [&](int64_t j, int64_t base) {
    for (int n = 0; n < s.N; ++n) {
      const int64_t off = base + (int64_t)n * s.D;
      for (int g = 0; g < s.G;) {
        const int h = n * s.G + g, left = s.G - g;
        const int nq = left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
        const float* qh = q + (int64_t)h * Dp;
        const uint16_t* kh = qk + (int64_t)h * (Dp / 16);
        float out[8];
        if (NC > 0) {
          switch (nq) {
            case 8: score_shared_fixed<MT, 8, NC>(p.max_meta, p.min_meta, off, qh, kh, out); break;
            case 4: score_shared_fixed<MT, 4, NC>(p.max_meta, p.min_meta, off, qh, kh, out); break;
            case 2: score_shared_fixed<MT, 2, NC>(p.max_meta, p.min_meta, off, qh, kh, out); break;
            default: score_shared_fixed<MT, 1, NC>(p.max_meta, p.min_meta, off, qh, kh, out); break;
          }
        } else {
          switch (nq) {
            case 8: score_shared<MT, 8>(p.max_meta, p.min_meta, off, qh, kh, s.D, Dp, out); break;
            case 4: score_shared<MT, 4>(p.max_meta, p.min_meta, off, qh, kh, s.D, Dp, out); break;
            case 2: score_shared<MT, 2>(p.max_meta, p.min_meta, off, qh, kh, s.D, Dp, out); break;
            default: out[0] = vsum(score_vec<MT, 0>(p.max_meta, p.min_meta, off, qh, kh, s.D)); break;
          }
        }
        for (int i = 0; i < nq; ++i) sc[(int64_t)(h + i) * L + j] = out[i];
        g += nq;
      }
    }
  });
}

// Selection for one (sequence, output row): forced blocks (stale/window suffix newest first, then
// sinks from 0) plus the best-scoring remaining blocks; ascending ids, -1 padding.
inline void select_row(const QuestSelectParams& p, const Shape& s, int b, int row, int64_t L, const float* sc,
                       uint32_t* work) {
  int32_t* out = p.selected + ((int64_t)b * s.rows + row) * s.k;
  const int64_t kk = L < s.k ? L : s.k;
  if (p.maybe_num_selected) p.maybe_num_selected[(int64_t)b * s.rows + row] = (int32_t)kk;
  if (kk == 0) {
    for (int i = 0; i < s.k; ++i) out[i] = -1;
    return;
  }
  const int64_t len = p.seq_lens[b];
  const int64_t mru = len - p.tokens_since_update[b];
  int64_t fs = mru / s.bs;                                   // first stale block
  if (L - p.window_blocks < fs) fs = L - p.window_blocks;    // window
  if (fs < 0) fs = 0;
  const int64_t S = L - fs;                                  // forced suffix [fs, L)
  const int64_t se = p.sink_blocks < L ? p.sink_blocks : L;
  const int64_t Sx = se < fs ? se : fs;                      // sinks outside the suffix [0, Sx)
  // Output = sinks [0, Sx) < chosen candidates in [Sx, fs) < suffix [fs, L): already ascending.
  int64_t c = 0;
  auto emit = [&](int64_t from, int64_t to) {
    for (int64_t j = from; j < to; ++j) out[c++] = (int32_t)j;
  };
  if (S + Sx >= kk) {  // more forced than slots: suffix newest first, then sinks from 0
    const int64_t a = kk < S ? kk : S;
    emit(0, kk - a);
    emit(L - a, L);
  } else {
    emit(0, Sx);
    const int64_t m = kk - S - Sx;
    if (m == fs - Sx) emit(Sx, fs);
    else c += select_top(sc + Sx, fs - Sx, m, Sx, work, out + c);
    emit(fs, L);
  }
  for (int64_t i = c; i < s.k; ++i) out[i] = -1;
}

template <DType MT>
Status run(const QuestSelectParams& p) {
  Shape s;
  s.B = p.num_seqs; s.H = p.num_qo_heads; s.N = p.num_kv_heads; s.D = p.head_dim;
  s.G = s.H / s.N; s.per_head = p.group_reduce == GroupReduce::per_head; s.rows = s.per_head ? s.H : s.N;
  s.bs = p.block_size; s.R = p.meta_rows; s.k = p.k;
  const int B = s.B;
  if (B == 0) return Status::Ok();

  // Blocks per scoring task: about 64 KiB of metadata (max + min rows of all heads).
  const int64_t row_bytes = 2 * (int64_t)s.N * s.D * (int64_t)dtype_size(MT);
  const int64_t per_task = row_bytes >= (64 << 10) ? 1 : (64 << 10) / row_bytes;
  // Scores of a wave of sequences are kept (rows x blocks f32); waves bound that buffer.
  const int64_t cap = int64_t(1) << 21;
  int64_t max_wave = 0, max_L = 0, acc = 0;
  for (int b = 0; b < B; ++b) {  // the same waves as the loop below: [b0, b1) grows while it fits
    const int64_t L = ((int64_t)p.seq_lens[b] + s.bs - 1) / s.bs, n = (int64_t)s.rows * L;
    if (L > max_L) max_L = L;
    acc = (acc + n > cap) ? n : acc + n;
    if (acc > max_wave) max_wave = acc;
  }
  // Call memory (thread-local to the calling OS thread): per sequence [B + 1] score offsets, [B + 1]
  // scoring-task prefix, [B] finished scoring tasks, [B] queries ready; per wave (at most kWaveSeqs
  // sequences) the segment table, the f32 query rows and sign masks; then the scores of one wave.
  constexpr int kWaveSeqs = 64;
  const int Dp = (s.D + 15) / 16 * 16;  // query rows padded with zeros to whole 16-lane chunks
  const size_t q_floats = (size_t)s.rows * Dp, qk_elems = (size_t)s.rows * (Dp / 16);
  const size_t head_bytes = sizeof(int64_t) * (4 * (size_t)B + 2 + 3 * (2 * kWaveSeqs + 2));
  const size_t q_at = (head_bytes + 63) / 64 * 64;
  const size_t qk_at = q_at + (kWaveSeqs * q_floats * sizeof(float) + 63) / 64 * 64;
  const size_t sc_at = qk_at + (kWaveSeqs * qk_elems * sizeof(uint16_t) + 63) / 64 * 64;
  char* buf = static_cast<char*>(call_buffer.get(sc_at + sizeof(float) * (size_t)max_wave + 64));
  if (!buf) return Status::oom("quest_select (cpu): cannot allocate the score buffer");
  int64_t* score_at = reinterpret_cast<int64_t*>(buf);   // [B + 1] score offsets (rows * L prefix)
  int64_t* task_at = score_at + B + 1;                     // [B + 1] scoring-task prefix
  int64_t* done = task_at + B + 1;                         // [B] scoring tasks finished
  int64_t* qready = done + B;                              // [B] query rows built
  int64_t* seg_at = qready + B;                            // [2 kWaveSeqs + 2] segment starts
  int64_t* seg_seq = seg_at + 2 * kWaveSeqs + 2;           // [2 kWaveSeqs + 1] segment sequence
  int64_t* seg_kind = seg_seq + 2 * kWaveSeqs + 2;         // [2 kWaveSeqs + 1] 0 queries, 1 scoring, 2 selection
  float* qall = reinterpret_cast<float*>(buf + q_at);      // [kWaveSeqs][rows][Dp]
  uint16_t* qkall = reinterpret_cast<uint16_t*>(buf + qk_at);  // [kWaveSeqs][rows][Dp / 16]
  float* scores = reinterpret_cast<float*>(buf + sc_at);
  score_at[0] = task_at[0] = 0;
  for (int b = 0; b < B; ++b) {
    const int64_t L = ((int64_t)p.seq_lens[b] + s.bs - 1) / s.bs;
    score_at[b + 1] = score_at[b] + (int64_t)s.rows * L;
    task_at[b + 1] = task_at[b] + (L + per_task - 1) / per_task;
  }
  // Per-thread memory: one query row of scratch, then the selection's keys and indices.
  const size_t tmp_bytes = ((size_t)Dp * sizeof(float) + 63) / 64 * 64;
  const size_t private_bytes = tmp_bytes + sizeof(uint32_t) * (size_t)(2 * (max_L + 16) + 1024 + 256);
  auto spin = [](const int64_t* flag, int64_t target) {
    for (int n = 0; __atomic_load_n(flag, __ATOMIC_ACQUIRE) < target; ++n) {
      if (n > 2000) sched_yield();  // more threads than cores: let the awaited task run
#if defined(__x86_64__) || defined(_M_X64)
      else __builtin_ia32_pause();
#endif
    }
  };

  for (int b0 = 0; b0 < B;) {
    int b1 = b0 + 1;  // at least one sequence
    while (b1 < B && b1 - b0 < kWaveSeqs && score_at[b1 + 1] - score_at[b0] <= cap) ++b1;
    // One parallel_for per wave (each one wakes the pool). Task order: the query rows of every
    // sequence, scoring of sequence 0, then scoring of i and selection of i - 1 alternately, then the
    // last selection. Tasks are claimed in order, so a task that needs an earlier one's result
    // (queries, all scores of its sequence) at most waits for a task that is already running, and
    // selection runs while other threads keep streaming metadata.
    const int nb = b1 - b0;
    int ns = 0;
    seg_at[0] = 0;
    auto add_seg = [&](int64_t kind, int64_t seq, int64_t count) {
      seg_kind[ns] = kind;
      seg_seq[ns] = seq;
      seg_at[ns + 1] = seg_at[ns] + count;
      ++ns;
    };
    add_seg(0, b0, nb);
    for (int i = 0; i < nb; ++i) {
      add_seg(1, b0 + i, task_at[b0 + i + 1] - task_at[b0 + i]);
      if (i > 0) add_seg(2, b0 + i - 1, s.rows);
    }
    add_seg(2, b1 - 1, s.rows);
    for (int b = b0; b < b1; ++b) done[b] = qready[b] = 0;
    parallel_for(seg_at[ns], [&](int64_t task, int tid) {
      int lo = 0, hi = ns;  // the segment with seg_at[lo] <= task < seg_at[lo + 1]
      while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        (seg_at[mid] <= task ? lo : hi) = mid;
      }
      const int64_t local = task - seg_at[lo];
      char* mem = static_cast<char*>(scratch(tid, private_bytes));
      if (seg_kind[lo] == 0) {
        const int b = b0 + (int)local;
        build_queries(p, s, b, Dp, qall + (size_t)(b - b0) * q_floats, qkall + (size_t)(b - b0) * qk_elems,
                      reinterpret_cast<float*>(mem));
        __atomic_store_n(&qready[b], 1, __ATOMIC_RELEASE);
        return;
      }
      const int b = (int)seg_seq[lo];
      const int64_t L = (score_at[b + 1] - score_at[b]) / s.rows;
      float* sc = scores + (score_at[b] - score_at[b0]);
      if (seg_kind[lo] == 1) {
        spin(&qready[b], 1);
        const int64_t j0 = local * per_task, j1 = j0 + per_task < L ? j0 + per_task : L;
        score_blocks<MT>(p, s, b, j0, j1, L, qall + (size_t)(b - b0) * q_floats, qkall + (size_t)(b - b0) * qk_elems, Dp, sc);
        __atomic_add_fetch(&done[b], 1, __ATOMIC_RELEASE);
        return;
      }
      spin(&done[b], task_at[b + 1] - task_at[b]);
      select_row(p, s, b, (int)local, L, sc + local * L, reinterpret_cast<uint32_t*>(mem + tmp_bytes));
    });
    b0 = b1;
  }
  return Status::Ok();
}

}  // namespace

Status quest_select(const QuestSelectParams& p) {
  // t outside [0, seqLens[b]] has no meaning; rejected before anything is written. (The message is
  // formatted by hand: inline std helpers compiled per ISA could be shared by the linker.)
  for (int b = 0; b < p.num_seqs; ++b) {
    const int32_t t = p.tokens_since_update[b], len = p.seq_lens[b];
    if (len < 0 || t < 0 || t > len) {
      char msg[192];
      char* e = put(msg, "quest_select (cpu): tokensSinceMetadataUpdate[");
      e = put(put(put(e, (int64_t)b), "] = "), (int64_t)t);
      e = put(put(put(e, " is outside [0, seqLens["), (int64_t)b), "] = ");
      e = put(put(e, (int64_t)len), "]");
      return Status::invalid(std::string(msg, e));
    }
  }
  switch (p.meta_dtype) {
    case DType::f32: return run<DType::f32>(p);
    case DType::f16: return run<DType::f16>(p);
    default: return run<DType::bf16>(p);
  }
}

}  // namespace select_attn::cpu::SA_ISA
