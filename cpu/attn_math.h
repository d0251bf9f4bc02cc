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

// Transpose-reduce of W accumulators: lane i of the result is the sum of the lanes of a[i]. Cheaper
// than W separate horizontal sums (one shuffle tree shared by all of them).
#if defined(__AVX512F__)
inline V reduce_w(const V* a) {
  __m512 l1[8], l2[4];
  for (int i = 0; i < 8; ++i)
    l1[i] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * i].v, a[2 * i + 1].v), _mm512_unpackhi_ps(a[2 * i].v, a[2 * i + 1].v));
  for (int i = 0; i < 4; ++i)
    l2[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(l1[2 * i]), _mm512_castps_pd(l1[2 * i + 1]))),
                          _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(l1[2 * i]), _mm512_castps_pd(l1[2 * i + 1]))));
  // l2[k] holds, per 128-bit lane L, the lane-L partial sums of a[4k .. 4k+3]; add the four lanes.
  const __m512 c0 = _mm512_add_ps(_mm512_shuffle_f32x4(l2[0], l2[1], _MM_SHUFFLE(1, 0, 1, 0)),
                                  _mm512_shuffle_f32x4(l2[0], l2[1], _MM_SHUFFLE(3, 2, 3, 2)));
  const __m512 c1 = _mm512_add_ps(_mm512_shuffle_f32x4(l2[2], l2[3], _MM_SHUFFLE(1, 0, 1, 0)),
                                  _mm512_shuffle_f32x4(l2[2], l2[3], _MM_SHUFFLE(3, 2, 3, 2)));
  return {_mm512_add_ps(_mm512_shuffle_f32x4(c0, c1, _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_f32x4(c0, c1, _MM_SHUFFLE(3, 1, 3, 1)))};
}
#elif defined(__AVX2__)
inline V reduce_w(const V* a) {
  __m256 l1[4], l2[2];
  for (int i = 0; i < 4; ++i)
    l1[i] = _mm256_add_ps(_mm256_unpacklo_ps(a[2 * i].v, a[2 * i + 1].v), _mm256_unpackhi_ps(a[2 * i].v, a[2 * i + 1].v));
  for (int i = 0; i < 2; ++i)
    l2[i] = _mm256_add_ps(_mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(l1[2 * i]), _mm256_castps_pd(l1[2 * i + 1]))),
                          _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(l1[2 * i]), _mm256_castps_pd(l1[2 * i + 1]))));
  return {_mm256_add_ps(_mm256_permute2f128_ps(l2[0], l2[1], 0x20), _mm256_permute2f128_ps(l2[0], l2[1], 0x31))};
}
#else
inline V reduce_w(const V* a) {
  V r;
  for (int i = 0; i < W; ++i) r.v[i] = vsum(a[i]);
  return r;
}
#endif

// Issues software prefetches for a few regions (the next KV block's K and V rows of the heads that
// will read it), a few lines per tick(), spread through the compute so the misses overlap it instead
// of stalling in one burst. Two orders: ascending addresses within each region (rows one after the
// other), or, after interleave_pages(), one line from each 4 KiB page piece in turn (see there).
struct Prefetcher {
  static constexpr int kMaxRegions = 32;
  static constexpr int kMaxPieces = 256;
  static constexpr int kPageWindow = 4;  // pieces in the round robin at a time (x2 pages with pair)
  const char* base[kMaxRegions];
  int regions = 0;
  int rows = 0;
  int64_t stride = 0, row_bytes = 0;
  int region = 0, row = 0;
  const char* cur = nullptr;  // next line to prefetch
  const char* end = nullptr;  // end of the current row
  uint32_t rate = 0, credit = 0;  // lines per tick, in 1/256ths
  int64_t pair = 0;  // when nonzero, every line is also prefetched at +pair bytes (K and V side by side)
  // page-interleaved order: pieces of the rows cut at 4 KiB boundaries, [pcur, pend) still to issue
  int pieces = 0;  // 0: address order
  int live = 0, next = 0, lo = 0;  // unfinished pieces, next piece, first unfinished piece
  const char* pcur[kMaxPieces];
  const char* pend[kMaxPieces];

  // Regions (added with add()) of `nrows` rows of `bytes` bytes, `row_stride` apart.
  void shape(int nrows, int64_t row_stride, int64_t bytes) {
    rows = nrows;
    stride = row_stride;
    row_bytes = bytes;
    regions = 0;
    pair = 0;
    pieces = 0;
  }
  bool add(const char* p) {
    if (regions >= kMaxRegions) return false;
    base[regions++] = p;
    return true;
  }
  // Switches to page-interleaved order: the rows of every region are cut at 4 KiB page boundaries
  // and each tick step takes the next line of the next unfinished piece among the first
  // kPageWindow unfinished ones, round robin. With scattered blocks on 4 KiB pages this keeps
  // misses to several pages (and their V twins) in flight at once instead of one page at a time
  // (dense bf16 decode 23.6 -> 21.1 ms); more pages at once is slower (all 33 pages of a 128 KB
  // block: 2x slower than address order, likely past what the L2 streamer can track at once).
  // Returns false, leaving address order, when there are more than kMaxPieces pieces.
  // across_regions: the pieces are taken region by region in turn (piece 0 of every region, then
  // piece 1 of every region, ...), so the window spans several regions (several blocks' slices).
  bool interleave_pages(bool across_regions = false) {
    // rows back to back (a whole NHD block, a full HND block) are one span, so each page's lines
    // are visited in ascending order
    const bool joined = stride == row_bytes;
    const int nrows = joined ? 1 : rows;
    const int64_t span = joined ? rows * row_bytes : row_bytes;
    int n = 0;
    for (int r = 0; r < regions; ++r)
      for (int i = 0; i < nrows; ++i) {
        const char* a = base[r] + i * stride;
        const char* e = a + span;
        while (a < e) {
          if (n >= kMaxPieces) return false;
          const char* pe = reinterpret_cast<const char*>((reinterpret_cast<uintptr_t>(a) | 4095) + 1);
          pcur[n] = reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(a) & ~uintptr_t(63));
          pend[n++] = pe < e ? pe : e;
          a = pe;
        }
      }
    pieces = n;
    if (across_regions && regions > 1 && n % regions == 0) {
      // only when every region is cut the same way (same page offsets: blocks of one pool); otherwise
      // region-major order stays (any order of the pieces covers the same lines)
      const char* tc[kMaxPieces];
      const char* te[kMaxPieces];
      const int per = n / regions;
      bool same = true;
      for (int r = 0; r < regions && same; ++r)
        for (int i = 0; i < per; ++i)
          if ((pend[r * per + i] - pcur[r * per + i]) != (pend[i] - pcur[i])) same = false;
      if (same) {
        for (int i = 0; i < per; ++i)
          for (int r = 0; r < regions; ++r) {
            tc[i * regions + r] = pcur[r * per + i];
            te[i * regions + r] = pend[r * per + i];
          }
        for (int i = 0; i < n; ++i) {
          pcur[i] = tc[i];
          pend[i] = te[i];
        }
      }
    }
    return true;
  }
  // Prefetch steps (a step issues two lines when pair is set).
  int64_t lines() const {
    if (pieces) {
      int64_t n = 0;
      for (int i = 0; i < pieces; ++i) n += (pend[i] - pcur[i] + 63) / 64;
      return n;
    }
    return (int64_t)regions * rows * ((row_bytes + 63) / 64 + 1);
  }
  // Starts issuing; `lines_per_tick` may be fractional.
  void start(double lines_per_tick) {
    region = 0;
    row = 0;
    rate = (uint32_t)(lines_per_tick * 256.0 + 1.0);
    credit = 0;
    if (pieces) {
      live = pieces;
      next = 0;
      lo = 0;
      return;
    }
    if (regions > 0 && rows > 0) open_row();
    else region = regions;
  }
  void open_row() {
    const char* a = base[region] + row * stride;
    cur = reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(a) & ~uintptr_t(63));
    end = a + row_bytes;
  }
  inline void issue(const char* p) const {
    __builtin_prefetch(p, 0, 2);
    if (pair) __builtin_prefetch(p + pair, 0, 2);
  }
  inline void tick_pieces() {
    while (credit >= 256) {
      credit -= 256;
      if (live == 0) return;
      while (pcur[lo] >= pend[lo]) ++lo;  // live > 0: some piece at or after lo is unfinished
      const int hi = lo + kPageWindow < pieces ? lo + kPageWindow : pieces;
      if (next < lo || next >= hi) next = lo;
      while (pcur[next] >= pend[next])
        if (++next >= hi) next = lo;
      issue(pcur[next]);
      pcur[next] += 64;
      if (pcur[next] >= pend[next]) --live;
      ++next;
    }
  }
  inline void tick() {
    credit += rate;
    if (pieces) return tick_pieces();
    while (credit >= 256) {
      credit -= 256;
      if (region >= regions) return;
      issue(cur);
      cur += 64;
      if (cur >= end) {
        if (++row >= rows) {
          row = 0;
          if (++region >= regions) return;
        }
        open_row();
      }
    }
  }
  // Issues whatever is left (the next block must be on its way before it is used).
  void drain() {
    if (pieces) {
      credit = 256u * 1024u * 1024u;
      tick_pieces();
      return;
    }
    while (region < regions) {
      credit = 256;
      tick();
    }
  }
};

}  // namespace
}  // namespace select_attn::cpu
