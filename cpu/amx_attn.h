// AMX (bf16 tile) micro-kernels of the cpu paged_attention path for bf16 q and bf16 KV: Q.K^T of a
// KV tile straight from the cache, and P.V with P split into two bf16 terms (hi + lo, so no rounding
// beyond f32-level is added). Internal linkage; only in the avx512 ISA build compiled with AMX flags.
#pragma once
#if defined(__AMX_TILE__) && defined(__AMX_BF16__) && defined(__AVX512BW__)
#define SA_AMX_KERNELS 1
#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace select_attn::cpu {
namespace {

// Tile registers of the attention path (one configuration per task, see AmxShape::configure).
// Plain numbers: GCC's tile intrinsics paste the argument into the register name.
#define kTqkC 0   // S subtile: [mqk tokens, ncols rows] f32
#define kTqkA 1   // K rows: [mqk tokens, 32 dims] bf16, loaded from the cache with its row stride
#define kTqkB 2   // q^T chunk: [16 dim pairs, ncols rows x 2] bf16 (VNNI)
#define kTpvC 3   // P.V: [mpv, 16 dims] f32 (rows: hi terms of mpv/2 query rows, then their lo terms)
#define kTpvA 4   // P: [mpv, kp tokens] bf16
#define kTpvB 5   // V: [kp / 2 token pairs, 16 dims x 2] bf16 (VNNI)
#define kTpvC2 6  // second P.V accumulator and V operand (two 16-dim tiles in flight)
#define kTpvB2 7

struct alignas(64) TileConfig {
  uint8_t palette;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};
static_assert(sizeof(TileConfig) == 64, "ldtilecfg takes 64 bytes");

// Shapes of one call's tiles: D % 32 == 0, tokens per tile tt <= 32, tt a multiple of 16 or < 16.
struct AmxShape {
  int D;      // head dim (multiple of 32)
  int mqk;    // tokens per Q.K subtile: min(tt, 16)
  int ncols;  // query rows per Q.K column group: min(rows per head, 16)
  int ncg;    // column groups: ceil(rows per head / ncols)
  int mpv;    // P.V tile rows (even): 2 x query rows per group
  int kp;     // tokens per P.V tile (tt rounded up to even)

  void configure() const {
    TileConfig c;
    std::memset(&c, 0, sizeof(c));
    c.palette = 1;
    c.rows[kTqkC] = (uint8_t)mqk;
    c.colsb[kTqkC] = (uint16_t)(ncols * 4);
    c.rows[kTqkA] = (uint8_t)mqk;
    c.colsb[kTqkA] = 64;
    c.rows[kTqkB] = 16;
    c.colsb[kTqkB] = (uint16_t)(ncols * 4);
    c.rows[kTpvC] = c.rows[kTpvC2] = (uint8_t)mpv;
    c.colsb[kTpvC] = c.colsb[kTpvC2] = 64;
    c.rows[kTpvA] = (uint8_t)mpv;
    c.colsb[kTpvA] = (uint16_t)(kp * 2);
    c.rows[kTpvB] = c.rows[kTpvB2] = (uint8_t)(kp / 2);
    c.colsb[kTpvB] = c.colsb[kTpvB2] = 64;
    _tile_loadconfig(&c);
  }
  // Packed q of one KV head: [D / 32 chunks, ncg, 16 dim pairs, ncols] 32-bit pairs.
  int64_t q_words_per_head() const { return (int64_t)(D / 32) * ncg * 16 * ncols; }
  int64_t vbuf_elems() const { return (int64_t)D * kp; }         // [D / 16, kp / 2, 32] bf16
  int64_t cbuf_floats() const { return (int64_t)(D / 16) * mpv * 16; }  // [D / 16, mpv, 16] f32
  int64_t ctmp_floats() const { return (int64_t)ncg * 16 * ncols; }     // [ncg, mqk, ncols] f32
};

// Packs rows [0, rh) of one KV head (bf16 rows of D, row r at q + qoff(r)) as the B operand of
// Q.K: word [(c * ncg + cg) * 16 + i] * ncols + col = dims (32c + 2i, 32c + 2i + 1) of row cg * ncols + col.
template <class RowOff>
inline void amx_pack_q(uint32_t* dst, const AmxShape& s, const uint16_t* q, int rh, RowOff qoff) {
  std::memset(dst, 0, sizeof(uint32_t) * (size_t)s.q_words_per_head());
  for (int r = 0; r < rh; ++r) {
    const int cg = r / s.ncols, col = r % s.ncols;
    const uint16_t* src = q + qoff(r);
    for (int c = 0; c < s.D / 32; ++c)
      for (int i = 0; i < 16; ++i) {
        uint32_t w;
        std::memcpy(&w, src + 32 * c + 2 * i, 4);
        dst[(((int64_t)c * s.ncg + cg) * 16 + i) * s.ncols + col] = w;
      }
  }
}

// S[a * ldS + t] = scale * q[act[a]] . K_t for the na active rows and t < nt; K row t at element
// koff + t * ks of the cache. Rows of a subtile past nt are computed from whatever the block holds
// there (the caller guarantees they lie inside the block) and never read back.
template <class Tick>
inline void amx_qk(const AmxShape& s, const uint32_t* qb, const int* act, int na, const uint16_t* kc, int64_t koff,
                   int64_t ks, int nt, float scale, float* ctmp, float* S, int ldS, Tick tick) {
  const int chunks = s.D / 32;
  const __m512 sc = _mm512_set1_ps(scale);
  for (int t0 = 0; t0 < nt; t0 += s.mqk) {
    const uint16_t* kr = kc + koff + t0 * ks;
    for (int cg = 0; cg < s.ncg; ++cg) {
      _tile_zero(kTqkC);
      for (int c = 0; c < chunks; ++c) {
        _tile_loadd(kTqkA, kr + 32 * c, ks * 2);
        _tile_loadd(kTqkB, qb + ((int64_t)c * s.ncg + cg) * 16 * s.ncols, s.ncols * 4);
        _tile_dpbf16ps(kTqkC, kTqkA, kTqkB);
        tick();
      }
      _tile_stored(kTqkC, ctmp + (int64_t)cg * s.mqk * s.ncols, s.ncols * 4);
    }
    const int n = nt - t0 < s.mqk ? nt - t0 : s.mqk;
    if (s.mqk == 16) {
      const __m512i lane = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                              _mm512_set1_epi32(s.ncols));
      for (int a = 0; a < na; ++a) {
        const int r = act[a];
        const float* base = ctmp + (int64_t)(r / s.ncols) * 16 * s.ncols + r % s.ncols;
        const __m512 v = _mm512_mul_ps(_mm512_i32gather_ps(lane, base, 4), sc);
        _mm512_mask_storeu_ps(S + (int64_t)a * ldS + t0, (__mmask16)((1u << n) - 1), v);
      }
    } else {
      for (int a = 0; a < na; ++a) {
        const int r = act[a];
        const float* base = ctmp + (int64_t)(r / s.ncols) * s.mqk * s.ncols + r % s.ncols;
        for (int t = 0; t < n; ++t) S[(int64_t)a * ldS + t0 + t] = scale * base[(int64_t)t * s.ncols];
      }
    }
  }
}

// Re-lays V rows t < nt (row t at element voff + t * vs) as VNNI token pairs for the B operand of
// P.V; tokens in [nt, kp) are zero. A 32-dim chunk c becomes B tiles 2c (dims 32c + 8L + {0..3}
// in column 4L + {0..3}) and 2c + 1 (dims 32c + 8L + {4..7}): the in-lane order of unpack; the
// columns are put back in order by amx_pv_add.
template <class Tick>
inline void amx_v_pairs(const AmxShape& s, uint16_t* vbuf, const uint16_t* vc, int64_t voff, int64_t vs, int nt,
                        Tick tick) {
  const int chunks = s.D / 32, kp2 = s.kp / 2;
  for (int tp = 0; tp < kp2; ++tp) {
    const int t = 2 * tp;
    const uint16_t* r0 = vc + voff + t * vs;
    const uint16_t* r1 = r0 + vs;
    const bool h0 = t < nt, h1 = t + 1 < nt;
    for (int c = 0; c < chunks; ++c) {
      const __m512i a = h0 ? _mm512_loadu_si512(r0 + 32 * c) : _mm512_setzero_si512();
      const __m512i b = h1 ? _mm512_loadu_si512(r1 + 32 * c) : _mm512_setzero_si512();
      _mm512_storeu_si512(vbuf + ((int64_t)(2 * c) * kp2 + tp) * 32, _mm512_unpacklo_epi16(a, b));
      _mm512_storeu_si512(vbuf + ((int64_t)(2 * c + 1) * kp2 + tp) * 32, _mm512_unpackhi_epi16(a, b));
    }
    tick();
  }
}

// P (f32 rows of ldP, zero past the visible tokens) of the active rows [a0, a0 + h) as two bf16
// terms: rows [0, h) hold hi = the top 16 bits of p (truncation), rows [h, 2h) lo = p - hi truncated
// the same way, so hi + lo is p to ~2^-16 relative. Rows past na are zero.
inline void amx_pack_p(const AmxShape& s, uint16_t* pbuf, const float* P, int ldP, int a0, int na) {
  const int h = s.mpv / 2;
  for (int i = 0; i < h; ++i) {
    uint16_t* hi_row = pbuf + (int64_t)i * s.kp;
    uint16_t* lo_row = pbuf + (int64_t)(h + i) * s.kp;
    const int a = a0 + i;
    for (int t = 0; t < s.kp; t += 16) {
      const int n = s.kp - t < 16 ? s.kp - t : 16;
      const __mmask16 m = (__mmask16)((1u << n) - 1);
      __m512i x = _mm512_setzero_si512();
      if (a < na) x = _mm512_castps_si512(_mm512_maskz_loadu_ps(m, P + (int64_t)a * ldP + t));
      const __m512i hi = _mm512_and_si512(x, _mm512_set1_epi32((int)0xffff0000u));
      const __m512 lo = _mm512_sub_ps(_mm512_castsi512_ps(x), _mm512_castsi512_ps(hi));
      _mm256_mask_storeu_epi16(hi_row + t, m, _mm512_cvtepi32_epi16(_mm512_srli_epi32(x, 16)));
      _mm256_mask_storeu_epi16(lo_row + t, m, _mm512_cvtepi32_epi16(_mm512_srli_epi32(_mm512_castps_si512(lo), 16)));
    }
  }
}

// C[j] = P (pbuf) x V pairs (B tile j) for every 16-dim tile j: [D / 16, mpv, 16] f32.
template <class Tick>
inline void amx_pv(const AmxShape& s, const uint16_t* pbuf, const uint16_t* vbuf, float* cbuf, Tick tick) {
  const int nj = s.D / 16, kp2 = s.kp / 2;
  _tile_loadd(kTpvA, pbuf, s.kp * 2);
  for (int j = 0; j < nj; j += 2) {  // D / 16 is even (D % 32 == 0): two accumulators in flight
    _tile_zero(kTpvC);
    _tile_zero(kTpvC2);
    _tile_loadd(kTpvB, vbuf + (int64_t)j * kp2 * 32, 64);
    _tile_loadd(kTpvB2, vbuf + (int64_t)(j + 1) * kp2 * 32, 64);
    _tile_dpbf16ps(kTpvC, kTpvA, kTpvB);
    _tile_dpbf16ps(kTpvC2, kTpvA, kTpvB2);
    _tile_stored(kTpvC, cbuf + (int64_t)j * s.mpv * 16, 64);
    _tile_stored(kTpvC2, cbuf + (int64_t)(j + 1) * s.mpv * 16, 64);
    tick();
  }
}

// acc[d] += hi + lo terms of group row i, the columns of tiles 2c / 2c + 1 put back in dim order.
inline void amx_pv_add(const AmxShape& s, const float* cbuf, int i, float* acc) {
  const int h = s.mpv / 2;
  const __m512i idx0 = _mm512_set_epi32(23, 22, 21, 20, 7, 6, 5, 4, 19, 18, 17, 16, 3, 2, 1, 0);
  const __m512i idx1 = _mm512_set_epi32(31, 30, 29, 28, 15, 14, 13, 12, 27, 26, 25, 24, 11, 10, 9, 8);
  for (int c = 0; c < s.D / 32; ++c) {
    const float* t0 = cbuf + (int64_t)(2 * c) * s.mpv * 16;
    const float* t1 = t0 + (int64_t)s.mpv * 16;
    const __m512 lo = _mm512_add_ps(_mm512_loadu_ps(t0 + i * 16), _mm512_loadu_ps(t0 + (h + i) * 16));
    const __m512 hi = _mm512_add_ps(_mm512_loadu_ps(t1 + i * 16), _mm512_loadu_ps(t1 + (h + i) * 16));
    float* a = acc + 32 * c;
    _mm512_storeu_ps(a, _mm512_add_ps(_mm512_loadu_ps(a), _mm512_permutex2var_ps(lo, idx0, hi)));
    _mm512_storeu_ps(a + 16, _mm512_add_ps(_mm512_loadu_ps(a + 16), _mm512_permutex2var_ps(lo, idx1, hi)));
  }
}

}  // namespace
}  // namespace select_attn::cpu
#endif
