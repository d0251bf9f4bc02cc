// paged_attention on cpu (SPEC section 3): fused attention over a paged KV cache with online softmax,
// never materializing the attention matrix. Work units are (sequence, query tile, KV heads); a unit's
// list of KV blocks is split across threads and the partial results are merged by log-sum-exp.
// Compiled once per ISA (see isa.h); backend.cpp has checked every id and length before this runs.
#include <cstdlib>
#include <cstring>
#include <limits>

#include "attn_math.h"
#include "isa.h"
#include "simd.h"
#include "thread_pool.h"
#include "util.h"

namespace select_attn::cpu::SA_ISA {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr int kTileTokens = 32;  // KV tokens per tile (a block larger than this is cut into sub-tiles)

// One (sequence, query tile, KV head range) and its list of logical KV blocks.
struct Unit {
  int b;            // sequence
  int q0, nq;       // query rows [q0, q0 + nq) of the sequence (0-based within its qLen)
  int n0, nn;       // KV heads [n0, n0 + nn)
  int64_t items;    // blocks in the list
  int64_t sink_end; // dense list: blocks [0, sink_end) then [dense_lo, dense_lo + items - sink_end)
  int64_t dense_lo;
  int splits;       // tasks over the list; > 1: partials merged in a second pass
  int64_t part;     // float offset of its partials in Ctx::partials (when splits > 1)
};

struct Task {
  int unit;
  int split;
  int64_t i0, i1;  // item range
};

struct Ctx {
  const PagedAttentionParams* p;
  int G, D, Dp, Tt, Tp;
  int64_t kv_row_stride;   // elements between consecutive tokens of one head in a block
  // Selection: per (sequence, group of sel_heads KV heads) the sorted union of the blocks its rows
  // list, and per listed block one byte per query head of the group (1 = that head selected it).
  int sel_heads;           // KV heads per group: N (all-heads units) or 1
  int32_t* sel_list;       // [B, N / sel_heads, cap]
  int32_t* sel_count;      // [B, N / sel_heads]
  uint8_t* sel_mask;       // [B, N / sel_heads, cap, sel_heads * G]
  int64_t sel_cap;
  float* partials;         // per split unit: [splits, rows, Dp + 2] (m, l, acc) per row
};

inline int64_t q_len_of(const PagedAttentionParams& p, int b) { return (int64_t)p.cu_seqlens_q[b + 1] - p.cu_seqlens_q[b]; }

// Visible key positions of a query at position `pos`: kp <= hi and (kp >= lo or kp < sinks).
struct Vis {
  int64_t lo, hi;
};
inline Vis vis_of(const PagedAttentionParams& p, int64_t pos, int64_t seq_len) {
  Vis v;
  v.hi = (p.causal || p.sliding_window > 0) ? pos : seq_len - 1;
  v.lo = p.sliding_window > 0 ? pos - p.sliding_window + 1 : 0;
  return v;
}

inline int64_t sel_group(const Ctx& c, const Unit& u) {
  return (int64_t)u.b * (c.p->num_kv_heads / c.sel_heads) + u.n0 / c.sel_heads;
}
inline int64_t item_block(const Ctx& c, const Unit& u, int64_t i) {
  if (c.sel_list) return c.sel_list[sel_group(c, u) * c.sel_cap + i];
  return i < u.sink_end ? i : u.dense_lo + (i - u.sink_end);
}
// The G-byte head mask of item i for the unit's KV head hn (null: every head reads every block).
inline const uint8_t* item_mask(const Ctx& c, const Unit& u, int64_t i, int hn) {
  if (!c.sel_mask) return nullptr;
  return c.sel_mask + ((sel_group(c, u) * c.sel_cap + i) * c.sel_heads + hn) * c.G;
}
inline bool head_reads(const uint8_t* mask, int G) {
  if (!mask) return true;
  for (int g = 0; g < G; ++g)
    if (mask[g]) return true;
  return false;
}

// ---- micro-kernels: f32 query/accumulator rows padded to Dp (a multiple of W); K/V rows read in
// their own dtype (widened in registers) at element offset off + t * stride ----

template <DType KT> inline V ldkv(const void* base, int64_t off);
template <> inline V ldkv<DType::f32>(const void* b, int64_t off) { return vload(static_cast<const float*>(b) + off); }
template <> inline V ldkv<DType::f16>(const void* b, int64_t off) { return vload(static_cast<const uint16_t*>(b) + off, DType::f16); }
template <> inline V ldkv<DType::bf16>(const void* b, int64_t off) { return vload(static_cast<const uint16_t*>(b) + off, DType::bf16); }

constexpr int RB = 4;       // query rows per register block
constexpr int TB = W / RB;  // key tokens per register block: RB x TB = W accumulators, reduced together

// S[r * ldS + t] = Q[rows[r]] . K_t for r < nr4 (a multiple of RB: the caller pads rows with repeats)
// and t < round_up(nt, TB) (tokens past nt repeat token nt - 1, so every read stays inside the tile).
template <DType KT>
inline void qk_block(const float* Q, const int* rows, int nr4, const void* kb, int64_t koff, int64_t ks, int nt, int Dp,
                     float* S, int ldS, Prefetcher* pf) {
  alignas(64) float tmp[W];
  for (int r = 0; r < nr4; r += RB) {
    const float* q[RB];
    for (int i = 0; i < RB; ++i) q[i] = Q + (int64_t)rows[r + i] * Dp;
    for (int t = 0; t < nt; t += TB) {
      int64_t ko[TB];
      for (int i = 0; i < TB; ++i) ko[i] = koff + (t + i < nt ? t + i : nt - 1) * ks;
      V acc[W];
      for (int i = 0; i < W; ++i) acc[i] = vzero();
      for (int d = 0; d < Dp; d += W) {
        if (pf) pf->tick();
        V k[TB];
        for (int i = 0; i < TB; ++i) k[i] = ldkv<KT>(kb, ko[i] + d);
        for (int j = 0; j < RB; ++j) {
          const V qv = vload(q[j] + d);
          for (int i = 0; i < TB; ++i) acc[j * TB + i] = vfma(qv, k[i], acc[j * TB + i]);
        }
      }
      if (pf) pf->tick();
      vstore(tmp, reduce_w(acc));
      for (int j = 0; j < RB; ++j)
        for (int i = 0; i < TB; ++i) S[(int64_t)(r + j) * ldS + t + i] = tmp[j * TB + i];
    }
  }
}

// ACC[rows[r]] += sum_{t < nt} P[r * ldP + t] * V_t for r < nr (P holds exp'd scores, 0 where masked).
template <DType KT>
inline void pv_block(float* ACC, const int* rows, int nr, const float* P, int ldP, const void* vb, int64_t voff, int64_t vs,
                     int nt, int Dp, Prefetcher* pf) {
  constexpr int CB = 4;  // W-wide column chunks per pass: 4 rows x 4 chunks = 16 accumulators
  int r = 0;
  for (; r + 4 <= nr; r += 4) {
    float* c[4];
    const float* p[4];
    for (int i = 0; i < 4; ++i) {
      c[i] = ACC + (int64_t)rows[r + i] * Dp;
      p[i] = P + (int64_t)(r + i) * ldP;
    }
    int d = 0;
    for (; d + CB * W <= Dp; d += CB * W) {
      V a[4][CB];
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < CB; ++j) a[i][j] = vload(c[i] + d + j * W);
      for (int t = 0; t < nt; ++t) {
        if (pf) pf->tick();
        const int64_t o = voff + t * vs + d;
        V x[CB];
        for (int j = 0; j < CB; ++j) x[j] = ldkv<KT>(vb, o + j * W);
        for (int i = 0; i < 4; ++i) {
          const V w = vset1(p[i][t]);
          for (int j = 0; j < CB; ++j) a[i][j] = vfma(w, x[j], a[i][j]);
        }
      }
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < CB; ++j) vstore(c[i] + d + j * W, a[i][j]);
    }
    for (; d < Dp; d += W) {
      V a[4];
      for (int i = 0; i < 4; ++i) a[i] = vload(c[i] + d);
      for (int t = 0; t < nt; ++t) {
        const V x = ldkv<KT>(vb, voff + t * vs + d);
        for (int i = 0; i < 4; ++i) a[i] = vfma(vset1(p[i][t]), x, a[i]);
      }
      for (int i = 0; i < 4; ++i) vstore(c[i] + d, a[i]);
    }
  }
  for (; r < nr; ++r) {
    float* c0 = ACC + (int64_t)rows[r] * Dp;
    const float* p0 = P + (int64_t)r * ldP;
    int d = 0;
    for (; d + CB * W <= Dp; d += CB * W) {
      V a[CB];
      for (int j = 0; j < CB; ++j) a[j] = vload(c0 + d + j * W);
      for (int t = 0; t < nt; ++t) {
        const V w = vset1(p0[t]);
        const int64_t o = voff + t * vs + d;
        for (int j = 0; j < CB; ++j) a[j] = vfma(w, ldkv<KT>(vb, o + j * W), a[j]);
      }
      for (int j = 0; j < CB; ++j) vstore(c0 + d + j * W, a[j]);
    }
    for (; d < Dp; d += W) {
      V a = vload(c0 + d);
      for (int t = 0; t < nt; ++t) a = vfma(vset1(p0[t]), ldkv<KT>(vb, voff + t * vs + d), a);
      vstore(c0 + d, a);
    }
  }
}

// Widens `nt` rows of D elements (row stride `stride` elements) into f32 rows of Dp (pad stays 0).
inline void load_rows(float* dst, int Dp, const void* src, DType t, int64_t off, int64_t stride, int nt, int D) {
  for (int i = 0; i < nt; ++i) widen(dst + (int64_t)i * Dp, src, t, off + i * stride, D);
}

// Per-thread state of one task: its rows' query, running max/sum and accumulators, and tile buffers.
struct State {
  int rows;      // nn * nq * G, ordered (head, query, group member)
  float* q;      // [rows, Dp] query * scale
  float* acc;    // [rows, Dp]
  float* m;      // [rows]
  float* l;      // [rows]
  float* kt;     // [Tt, Dp]
  float* vt;     // [Tt, Dp]
  float* s;      // [nq * G + RB, Tp] scores, then probabilities, per active row
  int* act;      // [nq * G + RB] active rows of the current tile (indices within the head), padded to RB
  int64_t* lo;   // [nq] visibility per query row
  int64_t* hi;   // [nq]
};

inline size_t state_bytes(int rows, int rows_head, int nq, int Dp, int Tt, int Tp) {
  return sizeof(float) * ((size_t)2 * rows * Dp + 2 * (size_t)rows + (size_t)2 * Tt * Dp + (size_t)(rows_head + RB) * Tp) +
         sizeof(int) * (size_t)(rows_head + RB) + sizeof(int64_t) * 2 * (size_t)nq + 64 * 12;  // 64: per-take alignment (11 takes)
}

inline State make_state(void* mem, int rows, int rows_head, int nq, int Dp, int Tt, int Tp) {
  char* c = static_cast<char*>(mem);
  auto take = [&](size_t bytes) {
    void* r = c;
    c += (bytes + 63) / 64 * 64;
    return r;
  };
  State s;
  s.rows = rows;
  s.q = static_cast<float*>(take(sizeof(float) * (size_t)rows * Dp));
  s.acc = static_cast<float*>(take(sizeof(float) * (size_t)rows * Dp));
  s.m = static_cast<float*>(take(sizeof(float) * rows));
  s.l = static_cast<float*>(take(sizeof(float) * rows));
  s.kt = static_cast<float*>(take(sizeof(float) * (size_t)Tt * Dp));
  s.vt = static_cast<float*>(take(sizeof(float) * (size_t)Tt * Dp));
  s.s = static_cast<float*>(take(sizeof(float) * (size_t)(rows_head + RB) * Tp));  // + RB: rows padded to RB
  s.act = static_cast<int*>(take(sizeof(int) * (rows_head + RB)));
  s.lo = static_cast<int64_t*>(take(sizeof(int64_t) * nq));
  s.hi = static_cast<int64_t*>(take(sizeof(int64_t) * nq));
  return s;
}

// One KV tile (tokens [t0, t0 + nt) of logical block j, KV head n) against the rows of head n.
inline void attend_tile(const Ctx& c, const Unit& u, State& st, int hn, int n, int64_t blk, int64_t j, int t0, int nt,
                        const uint8_t* mask, Prefetcher* pf) {
  const PagedAttentionParams& p = *c.p;
  const int G = c.G, Dp = c.Dp, Tp = c.Tp, nq = u.nq, rh = nq * G;
  const int64_t kb = j * p.block_size + t0, ke = kb + nt - 1;  // key positions of the tile
  const int S = p.sink_tokens;
  // Active rows: some key of the tile visible to that query (and the head selected the block).
  int na = 0;
  bool all_full = true;
  for (int i = 0; i < nq; ++i) {
    const int64_t lo = st.lo[i], hi = st.hi[i];
    if (kb > hi || (ke < lo && kb >= S)) continue;
    const bool full = ke <= hi && (kb >= lo || ke < S);
    for (int g = 0; g < G; ++g) {
      if (mask && !mask[g]) continue;
      st.act[na++] = i * G + g;
      all_full = all_full && full;
    }
  }
  if (na == 0) return;
  const int64_t off = paged_offset(p.layout, blk, t0, n, p.block_size, p.num_kv_heads, p.head_dim);
  float* qh = st.q + (int64_t)hn * rh * Dp;
  float* acc = st.acc + (int64_t)hn * rh * Dp;
  float* mrow = st.m + (int64_t)hn * rh;
  float* lrow = st.l + (int64_t)hn * rh;
  // K and V straight from the cache when rows are whole vectors and few row blocks read them; else
  // widened once into f32 tiles (also the only way for heads whose dims are not whole vectors).
  const bool direct = p.head_dim == Dp && (p.kv_dtype == DType::f32 || na <= 2 * RB);
  const void* ksrc = direct ? p.k_cache : st.kt;
  const void* vsrc = direct ? p.v_cache : st.vt;
  const int64_t koff = direct ? off : 0, kstride = direct ? c.kv_row_stride : Dp;
  const DType kt = direct ? p.kv_dtype : DType::f32;
  if (!direct) {
    load_rows(st.kt, Dp, p.k_cache, p.kv_dtype, off, c.kv_row_stride, nt, p.head_dim);
    load_rows(st.vt, Dp, p.v_cache, p.kv_dtype, off, c.kv_row_stride, nt, p.head_dim);
  }
  const int na4 = round_up(na, RB);
  for (int a = na; a < na4; ++a) st.act[a] = st.act[na - 1];
  switch (kt) {
    case DType::f16: qk_block<DType::f16>(qh, st.act, na4, ksrc, koff, kstride, nt, Dp, st.s, Tp, pf); break;
    case DType::bf16: qk_block<DType::bf16>(qh, st.act, na4, ksrc, koff, kstride, nt, Dp, st.s, Tp, pf); break;
    default: qk_block<DType::f32>(qh, st.act, na4, ksrc, koff, kstride, nt, Dp, st.s, Tp, pf); break;
  }
  const float cap = p.softcap;
  const float* alibi = p.maybe_alibi_slopes;
  const int64_t seq_len = p.seq_lens[u.b];
  const int64_t first_pos = seq_len - q_len_of(p, u.b) + u.q0;  // position of the unit's first query
  for (int a = 0; a < na; ++a) {
    const int r = st.act[a], i = r / G, h = n * G + r % G;
    float* s = st.s + (int64_t)a * Tp;
    const int64_t qp = first_pos + i;
    if (pf) pf->tick();
    // softcap after scaling, then ALiBi, then masking (SPEC order)
    if (cap > 0)
      for (int t = 0; t < nt; ++t) s[t] = cap * std::tanh(s[t] / cap);
    if (alibi) {
      const float slope = alibi[h];
      for (int t = 0; t < nt; ++t) s[t] += slope * (float)(kb + t - qp);
    }
    if (!all_full) {
      const int64_t lo = st.lo[i], hi = st.hi[i];
      for (int t = 0; t < nt; ++t) {
        const int64_t kp = kb + t;
        if (!(kp <= hi && (kp >= lo || kp < S))) s[t] = kNegInf;
      }
    }
    for (int t = nt; t < Tp; ++t) s[t] = kNegInf;
    V mx = vset1(kNegInf);
    for (int t = 0; t < Tp; t += W) mx = vmax(mx, vload(s + t));
    const float tile_max = vhmax(mx);
    // An active row always has a visible key with a finite logit, so tile_max is finite.
    const float m_old = mrow[r];
    const float m_new = m_old > tile_max ? m_old : tile_max;
    const V mv = vset1(m_new);
    V sum = vzero();
    for (int t = 0; t < Tp; t += W) {
      const V e = vexp_neg(vsub(vload(s + t), mv));
      vstore(s + t, e);
      sum = vadd(sum, e);
    }
    if (m_old != m_new) {
      const float alpha = m_old == kNegInf ? 0.0f : std::exp(m_old - m_new);
      lrow[r] *= alpha;
      float* ar = acc + (int64_t)r * Dp;
      const V av = vset1(alpha);
      for (int d = 0; d < Dp; d += W) vstore(ar + d, vmul(vload(ar + d), av));
      mrow[r] = m_new;
    }
    lrow[r] += vsum(sum);
  }
  switch (kt) {
    case DType::f16: pv_block<DType::f16>(acc, st.act, na, st.s, Tp, vsrc, koff, kstride, nt, Dp, pf); break;
    case DType::bf16: pv_block<DType::bf16>(acc, st.act, na, st.s, Tp, vsrc, koff, kstride, nt, Dp, pf); break;
    default: pv_block<DType::f32>(acc, st.act, na, st.s, Tp, vsrc, koff, kstride, nt, Dp, pf); break;
  }
}

template <DType T>
inline void store_out_row(void* out, int64_t off, const float* acc, float f, int D) {
  for (int d = 0; d < D; ++d) from_f32<T>(out, off + d, acc[d] * f);
}

// Writes out (q dtype) and lse for one row from its (m, l, acc); sink logit joins the denominator.
inline void finalize_row(const PagedAttentionParams& p, int64_t qrow, int h, float m, float l, const float* acc) {
  const int D = p.head_dim;
  const int64_t off = (qrow * p.num_qo_heads + h) * D;
  float f = 0, lse = kNegInf;
  if (l > 0) {
    if (p.maybe_sink_logits) {
      const float sk = p.maybe_sink_logits[h];
      const float m2 = m > sk ? m : sk;
      const float l2 = l * std::exp(m - m2) + std::exp(sk - m2);
      f = std::exp(m - m2) / l2;
      lse = m2 + std::log(l2);
    } else {
      f = 1.0f / l;
      lse = m + std::log(l);
    }
  }
  switch (p.q_dtype) {
    case DType::f16: store_out_row<DType::f16>(p.out, off, acc, f, D); break;
    case DType::bf16: store_out_row<DType::bf16>(p.out, off, acc, f, D); break;
    default: store_out_row<DType::f32>(p.out, off, acc, f, D); break;
  }
  if (p.maybe_lse) p.maybe_lse[qrow * p.num_qo_heads + h] = lse;
}

void run_task(const Ctx& c, const Unit* units, const Task& task, int tid) {
  const PagedAttentionParams& p = *c.p;
  const Unit& u = units[task.unit];
  const int G = c.G, Dp = c.Dp, D = p.head_dim, nq = u.nq, rh = nq * G, rows = u.nn * rh;
  State st = make_state(scratch(tid, state_bytes(rows, rh, nq, Dp, c.Tt, c.Tp)), rows, rh, nq, Dp, c.Tt, c.Tp);
  const int64_t seq_len = p.seq_lens[u.b];
  const int64_t q_len = q_len_of(p, u.b);
  const int64_t qrow0 = p.cu_seqlens_q[u.b] + u.q0;  // global q row of the unit's first query
  for (int i = 0; i < nq; ++i) {
    const Vis v = vis_of(p, seq_len - q_len + u.q0 + i, seq_len);
    st.lo[i] = v.lo;
    st.hi[i] = v.hi;
  }
  // Query rows (head, query, member) scaled once; pad columns and tile pads zero.
  std::memset(st.q, 0, sizeof(float) * (size_t)rows * Dp);
  std::memset(st.acc, 0, sizeof(float) * (size_t)rows * Dp);
  std::memset(st.kt, 0, sizeof(float) * (size_t)c.Tt * Dp);
  std::memset(st.vt, 0, sizeof(float) * (size_t)c.Tt * Dp);
  const V sc = vset1(p.scale);
  for (int hn = 0; hn < u.nn; ++hn)
    for (int i = 0; i < nq; ++i)
      for (int g = 0; g < G; ++g) {
        float* dst = st.q + ((int64_t)(hn * nq + i) * G + g) * Dp;
        widen(dst, p.q, p.q_dtype, ((qrow0 + i) * p.num_qo_heads + (int64_t)(u.n0 + hn) * G + g) * D, D);
        for (int d = 0; d < Dp; d += W) vstore(dst + d, vmul(vload(dst + d), sc));
      }
  for (int r = 0; r < rows; ++r) {
    st.m[r] = kNegInf;
    st.l[r] = 0;
  }
  const int bs = p.block_size;
  const int64_t es = dtype_size(p.kv_dtype);
  const int32_t* table = p.block_tables + (int64_t)u.b * p.max_blocks_per_seq;
  // Per-head Quest-sparse decode units (one KV head, one query) read one K and one V slice per block
  // (4 KiB each in HND bf16 at D=128), each at an unrelated place in the pool. Prefetching only the
  // next block keeps two pages in flight; instead the blocks are taken in groups of kGroupBlocks and,
  // during one group, the next group's slices are prefetched round robin across the blocks (piece i of
  // every block in turn, K/V paired), so misses to 6-8 pages overlap the compute (cold quest_decode
  // step, experiments/5_quest_decode README "Fourth pass": sparse attention 2.3-2.4 -> 2.0-2.1 ms HND
  // huge pages, 2.9-3.0 -> 2.4 ms HND default allocation, 5.3 -> 4.8 ms NHD).
  constexpr int kGroupBlocks = 3;
  // Inner-loop ticks of one block whose `valid` tokens are read by `active` heads: qk (row blocks x
  // token groups x (chunks + reduce)) + softmax (rows) + pv (row groups x chunk passes x tokens); the
  // prefetches are paced over them so no phase of a tile runs without prefetches in flight.
  auto block_ticks = [&](int valid, int active) -> double {
    const int64_t chunks = Dp / W, cb = (Dp / W + 3) / 4 + (Dp / W) % 4;
    const int64_t tiles = (int64_t)imax(active, 1) * ((valid + c.Tt - 1) / c.Tt);
    const int64_t tok = imin(valid, c.Tt);
    const int64_t ticks = tiles * (((rh + RB - 1) / RB) * ((tok + TB - 1) / TB) * (chunks + 1) + rh + ((rh + 3) / 4) * cb * tok);
    return (double)(ticks > 0 ? ticks : 1);
  };
  const bool grouped = c.sel_list && u.nn == 1 && nq == 1;
  Prefetcher grp;
  auto fill_group = [&](int64_t g0, int64_t g1) {  // slices of items [g0, min(g1, i1)) of head u.n0
    const char* kc = static_cast<const char*>(p.k_cache);
    const char* vc = static_cast<const char*>(p.v_cache);
    // the full block's slice (a partial last block prefetches a few lines past its tokens)
    if (p.layout == Layout::NHD) grp.shape(bs, (int64_t)p.num_kv_heads * D * es, (int64_t)D * es);
    else grp.shape(1, 0, (int64_t)bs * D * es);
    for (int64_t nit = g0; nit < g1 && nit < task.i1; ++nit)
      grp.add(kc + paged_offset(p.layout, table[item_block(c, u, nit)], 0, u.n0, bs, p.num_kv_heads, D) * es);
    grp.pair = vc - kc;
    grp.interleave_pages(true);
  };
  if (grouped && task.i0 + 1 < task.i1) {  // the rest of the first group, at once
    fill_group(task.i0 + 1, task.i0 + kGroupBlocks);
    grp.start(1.0);
    grp.drain();
  }
  for (int64_t it = task.i0; it < task.i1; ++it) {
    const int64_t j = item_block(c, u, it);
    const int64_t blk = table[j];
    const int valid = (int)imin(bs, seq_len - j * bs);
    if (grouped) {
      const int64_t k0 = (it - task.i0) % kGroupBlocks;
      if (k0 == 0 && it + kGroupBlocks < task.i1) {
        fill_group(it + kGroupBlocks, it + 2 * kGroupBlocks);
        grp.start((double)grp.lines() / (kGroupBlocks * block_ticks(valid, 1)));  // paced over the group
      }
      const uint8_t* mask = item_mask(c, u, it, 0);
      if (head_reads(mask, G))
        for (int t0 = 0; t0 < valid; t0 += c.Tt)
          attend_tile(c, u, st, 0, u.n0, blk, j, t0, (int)imin(c.Tt, valid - t0), mask, &grp);
      if (k0 == kGroupBlocks - 1) grp.drain();  // the next group must be on its way before it is used
      continue;
    }
    Prefetcher pfr;
    Prefetcher* pf = nullptr;
    if (it + 1 < task.i1) {
      // The next block of the list, in address order or page-interleaved (below), for the heads that
      // will read it (NHD rows are tokens with the heads side by side, HND rows are heads with their
      // tokens side by side), spread over the innermost loops of this block's tiles.
      const int64_t nit = it + 1;
      const int64_t nj = item_block(c, u, nit);
      const int64_t nblk = table[nj];
      const int nvalid = (int)imin(bs, seq_len - nj * bs);
      const bool nhd = p.layout == Layout::NHD;
      const char* kc = static_cast<const char*>(p.k_cache);
      const char* vc = static_cast<const char*>(p.v_cache);
      int readers = 0;
      for (int hn = 0; hn < u.nn; ++hn) readers += head_reads(item_mask(c, u, nit, hn), G);
      if (readers == u.nn) {  // every head: one region per cache
        const int64_t o = paged_offset(p.layout, nblk, 0, u.n0, bs, p.num_kv_heads, D) * es;
        if (nhd) pfr.shape(nvalid, (int64_t)p.num_kv_heads * D * es, (int64_t)u.nn * D * es);
        else pfr.shape(u.nn, (int64_t)bs * D * es, (int64_t)nvalid * D * es);
        // K and V line by line side by side (one region, each line also at the V offset): two
        // address-ordered streams in step keep more lines in flight than all of K, then all of V
        // (and page-interleaved below when the block is memory-bound)
        pfr.add(kc + o);
        pfr.pair = vc - kc;
      } else {  // some heads: their slices
        if (nhd) pfr.shape(nvalid, (int64_t)p.num_kv_heads * D * es, (int64_t)D * es);
        else pfr.shape(1, 0, (int64_t)nvalid * D * es);
        for (int hn = 0; hn < u.nn; ++hn) {
          if (!head_reads(item_mask(c, u, nit, hn), G)) continue;
          const int64_t o = paged_offset(p.layout, nblk, 0, u.n0 + hn, bs, p.num_kv_heads, D) * es;
          if (!pfr.add(kc + o) || !pfr.add(vc + o)) break;
        }
      }
      int active = 0;
      for (int hn = 0; hn < u.nn; ++hn) active += head_reads(item_mask(c, u, it, hn), G);
      // Memory-bound blocks (at least one line per two ticks: decode) take the lines round robin
      // over a few 4 KiB pages at a time: on a shuffled table a block is a few pages of its own,
      // and misses to several pages at once keep more lines in flight than one ascending stream
      // (target decode 23.6 -> 21.1 ms). Compute-bound blocks (multi-query) keep address order,
      // which measured ~5% faster there.
      const double nticks = block_ticks(valid, active);
      if (readers == u.nn && (double)pfr.lines() >= 0.5 * nticks) pfr.interleave_pages();
      pfr.start((double)pfr.lines() / nticks);
      pf = &pfr;
    }
    for (int hn = 0; hn < u.nn; ++hn) {
      const uint8_t* mask = item_mask(c, u, it, hn);
      if (!head_reads(mask, G)) continue;
      for (int t0 = 0; t0 < valid; t0 += c.Tt)
        attend_tile(c, u, st, hn, u.n0 + hn, blk, j, t0, (int)imin(c.Tt, valid - t0), mask, pf);
    }
    if (pf) pf->drain();
  }
  if (u.splits == 1) {
    for (int hn = 0; hn < u.nn; ++hn)
      for (int i = 0; i < nq; ++i)
        for (int g = 0; g < G; ++g) {
          const int r = (hn * nq + i) * G + g;
          finalize_row(p, qrow0 + i, (u.n0 + hn) * G + g, st.m[r], st.l[r], st.acc + (int64_t)r * Dp);
        }
    return;
  }
  float* part = c.partials + u.part + task.split * (int64_t)rows * (Dp + 2);
  for (int r = 0; r < rows; ++r) {
    float* dst = part + (int64_t)r * (Dp + 2);
    dst[0] = st.m[r];
    dst[1] = st.l[r];
    std::memcpy(dst + 2, st.acc + (int64_t)r * Dp, sizeof(float) * D);
  }
}

// Merges the splits of one unit's rows [r0, r1) by log-sum-exp and writes them.
void merge_rows(const Ctx& c, const Unit& u, int r0, int r1, int tid) {
  const PagedAttentionParams& p = *c.p;
  const int G = c.G, Dp = c.Dp, D = p.head_dim, nq = u.nq, rows = u.nn * nq * G;
  float* acc = static_cast<float*>(scratch(tid, sizeof(float) * (size_t)Dp));
  const int64_t qrow0 = p.cu_seqlens_q[u.b] + u.q0;
  const int64_t stride = (int64_t)rows * (Dp + 2);
  const float* base = c.partials + u.part;
  for (int r = r0; r < r1; ++r) {
    float m = kNegInf;
    for (int s = 0; s < u.splits; ++s) {
      const float ms = base[s * stride + (int64_t)r * (Dp + 2)];
      m = ms > m ? ms : m;
    }
    float l = 0;
    std::memset(acc, 0, sizeof(float) * Dp);
    if (m != kNegInf) {
      for (int s = 0; s < u.splits; ++s) {
        const float* src = base + s * stride + (int64_t)r * (Dp + 2);
        if (src[0] == kNegInf) continue;
        const float w = std::exp(src[0] - m);
        l += src[1] * w;
        for (int d = 0; d < D; ++d) acc[d] += w * src[2 + d];
      }
    }
    const int hn = r / (nq * G), i = (r / G) % nq, g = r % G;
    finalize_row(p, qrow0 + i, (u.n0 + hn) * G + g, m, l, acc);
  }
}

}  // namespace

Status paged_attention(const PagedAttentionParams& p) {
  const int B = p.num_seqs, H = p.num_qo_heads, N = p.num_kv_heads, D = p.head_dim, bs = p.block_size;
  if (B == 0 || p.total_q == 0) return Status::Ok();
  Ctx c{};
  c.p = &p;
  c.G = H / N;
  c.D = D;
  c.Dp = round_up(D, W);
  c.Tt = (int)imin(bs, kTileTokens);
  c.Tp = round_up(c.Tt, W);
  c.kv_row_stride = p.layout == Layout::NHD ? (int64_t)N * D : D;
  const int G = c.G;

  // ---- unit shape: all KV heads in one unit when the rows stay few (decode, short speculation), so
  // each block is read once, contiguously in NHD, for every head that needs it ----
  auto q_tile = [&](int64_t ql) { return ql == 1 ? 1 : (int)imax(1, imin(ql, 64 / G)); };
  int64_t maxL = 0;  // most logical blocks of any sequence
  for (int b = 0; b < B; ++b) maxL = imax(maxL, ((int64_t)p.seq_lens[b] + bs - 1) / bs);
  bool all_heads = true;
  if (p.maybe_block_selection && N > 1) {
    // With a selection, one unit for all heads pays off when the heads share blocks (sinks, the local
    // window): then a shared block is read once, contiguously. Measure the sharing: (block, KV head)
    // pairs per distinct block; below 2 per block, per-head units keep each head's rows in registers.
    Buf seen_buf((size_t)maxL + 1);
    uint8_t* seen = seen_buf.as<uint8_t>();
    if (!seen) return Status::oom("paged_attention (cpu): out of memory");
    int64_t pairs = 0, distinct = 0;
    for (int b = 0; b < B; ++b) {
      if (q_len_of(p, b) == 0) continue;
      std::memset(seen, 0, (size_t)maxL + 1);
      const int32_t* sel = p.maybe_block_selection + (int64_t)b * p.sel_rows * p.sel_k;
      for (int64_t i = 0; i < (int64_t)p.sel_rows * p.sel_k; ++i) {
        if (sel[i] < 0) continue;
        ++pairs;
        if (!seen[sel[i]]) {
          seen[sel[i]] = 1;
          ++distinct;
        }
      }
    }
    if (p.sel_rows == H) pairs /= G;  // query-head rows: G of them make one KV head's pass
    all_heads = pairs >= 2 * distinct;
  }
  for (int b = 0; b < B; ++b) {
    const int64_t ql = q_len_of(p, b);
    if (ql > 0 && (int64_t)q_tile(ql) * H > 128) all_heads = false;
  }

  // ---- selection lists: per (b, head group) the distinct selected blocks in ascending order, with
  // one byte per query head of the group saying whether that head listed the block ----
  c.sel_heads = all_heads ? N : 1;
  const int NG = N / c.sel_heads;
  const int64_t k = p.maybe_block_selection ? p.sel_k : 0;
  // selection rows feeding one group: its KV heads' rows, or their query heads' rows
  const int rows_in = p.sel_rows == H ? c.sel_heads * G : c.sel_heads;
  c.sel_cap = imin((int64_t)rows_in * k, maxL);  // a union never lists more blocks than a sequence has
  Buf sel_list_buf(sizeof(int32_t) * (size_t)B * NG * c.sel_cap);
  Buf sel_count_buf(p.maybe_block_selection ? sizeof(int32_t) * (size_t)B * NG : 0);
  Buf sel_mask_buf((size_t)B * NG * c.sel_cap * c.sel_heads * G);
  if (p.maybe_block_selection) {
    c.sel_list = sel_list_buf.as<int32_t>();
    c.sel_count = sel_count_buf.as<int32_t>();
    c.sel_mask = sel_mask_buf.as<uint8_t>();
    if (!c.sel_list || !c.sel_count || !c.sel_mask) return Status::oom("paged_attention (cpu): out of memory");
    const int mb = c.sel_heads * G;  // mask bytes per listed block
    parallel_for((int64_t)B * NG, [&](int64_t bg, int tid) {
      const int64_t b = bg / NG, n0 = (bg % NG) * c.sel_heads;
      int64_t* keys = static_cast<int64_t*>(scratch(tid, sizeof(int64_t) * (size_t)rows_in * k));
      int64_t cnt = 0;
      for (int r = 0; r < rows_in; ++r) {
        const int64_t row = p.sel_rows == H ? n0 * G + r : n0 + r;
        const int32_t* sel = p.maybe_block_selection + (b * p.sel_rows + row) * k;
        for (int64_t i = 0; i < k; ++i)
          if (sel[i] >= 0) keys[cnt++] = (int64_t)sel[i] * rows_in + r;
      }
      heap_sort(keys, cnt, [](int64_t x, int64_t y) { return x < y; });
      int32_t* list = c.sel_list + bg * c.sel_cap;
      uint8_t* mask = c.sel_mask + bg * c.sel_cap * mb;
      int64_t m = 0;
      for (int64_t i = 0; i < cnt; ++i) {
        const int32_t blk = (int32_t)(keys[i] / rows_in);
        const int r = (int)(keys[i] % rows_in);
        if (m == 0 || list[m - 1] != blk) {
          list[m] = blk;
          std::memset(mask + m * mb, 0, mb);
          ++m;
        }
        if (p.sel_rows == H) mask[(m - 1) * mb + r] = 1;                        // one query head
        else std::memset(mask + (m - 1) * mb + (int64_t)r * G, 1, G);            // a KV head's G heads
      }
      c.sel_count[bg] = (int32_t)m;
    });
  }

  // ---- units: (sequence, query tile, KV heads) ----
  int64_t max_units = 0;
  for (int b = 0; b < B; ++b) {
    const int64_t ql = q_len_of(p, b);
    if (ql == 0) continue;
    const int qt = q_tile(ql);
    max_units += (ql + qt - 1) / qt * N;
  }
  Buf units_buf(sizeof(Unit) * (size_t)max_units);
  Unit* units = units_buf.as<Unit>();
  if (max_units && !units) return Status::oom("paged_attention (cpu): out of memory");
  int64_t nu = 0;
  double total_work = 0;
  for (int b = 0; b < B; ++b) {
    const int64_t ql = q_len_of(p, b), seq_len = p.seq_lens[b];
    if (ql == 0) continue;
    const int64_t L = (seq_len + bs - 1) / bs;
    const int qt = q_tile(ql);
    for (int64_t q0 = 0; q0 < ql; q0 += qt) {
      const int nq = (int)imin(qt, ql - q0);
      const Vis first = vis_of(p, seq_len - ql + q0, seq_len);
      const Vis last = vis_of(p, seq_len - ql + q0 + nq - 1, seq_len);
      // dense list: [0, sink_end) U [lo_blk, hi_blk)
      const int64_t hi_blk = imin(L, last.hi / bs + 1);
      const int64_t lo_blk = imin(hi_blk, imax(0, first.lo) / bs);
      const int64_t sink_end = imin(lo_blk, ((int64_t)p.sink_tokens + bs - 1) / bs);
      const int hpu = all_heads ? N : 1;
      for (int n = 0; n < N; n += hpu) {
        Unit& u = units[nu++];
        u.b = b;
        u.q0 = (int)q0;
        u.nq = nq;
        u.n0 = n;
        u.nn = hpu;
        u.sink_end = sink_end;
        u.dense_lo = lo_blk;
        u.items = p.maybe_block_selection ? c.sel_count[(int64_t)b * NG + n / c.sel_heads] : sink_end + (hi_blk - lo_blk);
        u.splits = 1;
        u.part = 0;
        total_work += (double)u.items * bs * nq * G * u.nn;
      }
    }
  }

  // ---- split long lists so every thread has work; partials merged by log-sum-exp ----
  const int T = num_threads();
  const double min_work = 16.0 * 256 * 4;  // ~16 blocks x 16 tokens x 4 rows: below this a split costs more than it saves
  const double chunk = imax((int64_t)(total_work / (8.0 * T)), (int64_t)min_work);
  int64_t ntasks = 0, part_floats = 0;
  for (int64_t i = 0; i < nu; ++i) {
    Unit& u = units[i];
    const double w = (double)u.items * bs * u.nq * G * u.nn;
    int64_t s = T > 1 ? (int64_t)(w / chunk + 0.5) : 1;
    s = imax(1, imin(s, imin(u.items, 4096)));
    u.splits = (int)s;
    if (s > 1) {
      u.part = part_floats;
      part_floats += s * (int64_t)u.nn * u.nq * G * (c.Dp + 2);
    }
    ntasks += s;
  }
  Buf tasks_buf(sizeof(Task) * (size_t)ntasks);
  Task* tasks = tasks_buf.as<Task>();
  if (ntasks && !tasks) return Status::oom("paged_attention (cpu): out of memory");
  for (int64_t i = 0, t = 0; i < nu; ++i) {
    const Unit& u = units[i];
    for (int s = 0; s < u.splits; ++s) tasks[t++] = Task{(int)i, s, u.items * s / u.splits, u.items * (s + 1) / u.splits};
  }
  Buf part_buf(sizeof(float) * (size_t)part_floats);
  c.partials = part_buf.as<float>();
  if (part_floats && !c.partials) return Status::oom("paged_attention (cpu): out of memory");

  parallel_for(ntasks, [&](int64_t t, int tid) { run_task(c, units, tasks[t], tid); });

  // ---- merge: one task per (unit, chunk of rows) with splits ----
  if (part_floats) {
    int64_t nm = 0;
    for (int64_t i = 0; i < nu; ++i)
      if (units[i].splits > 1) units[nm++] = units[i];
    parallel_for(nm, [&](int64_t i, int tid) {
      const Unit& u = units[i];
      merge_rows(c, u, 0, u.nn * u.nq * G, tid);
    });
  }
  return Status::Ok();
}

}  // namespace select_attn::cpu::SA_ISA
