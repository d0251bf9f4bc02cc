// Pieces shared by the paged-attention kernels (tensor-core and CUDA-core) and their split merge:
// per-sequence validation, the visible key range, per-key gathering (block table or Quest block
// selection), and the logit/mask rule of SPEC section 3.
#pragma once
#include "launch.h"

namespace select_attn::cuda {

// Host-chosen launch shape shared by the kernels of one call.
struct AttnPlan {
  int hp;            // query heads per thread block (G, or 1 with per-query-head block selection)
  int head_groups;   // H / hp
  int splits;        // KV splits per (query tile, head group); > 1 -> partials + merge
  float* ws_o;       // [splits, totalQ, H, D] f32 partial outputs (normalized), when splits > 1
  float* ws_lse;     // [splits, totalQ, H] f32 partial log2-sum-exp, when splits > 1
  int* counters;     // [B * head groups] finished splits (decode kernel's in-kernel merge), zeroed
};

struct SeqInfo {
  int qstart, qlen, len, L;  // first query row, queries, keys, logical blocks
  bool ok;
};

// Reads and checks sequence b's lengths; reports (when `reporter`) and returns ok=false on bad input,
// so no thread block reads a table row past its width or writes rows of a malformed sequence.
__device__ __forceinline__ SeqInfo seq_info(const PagedAttentionParams& p, int b, bool reporter, DevError* err) {
  SeqInfo s;
  s.qstart = p.cu_seqlens_q[b];
  const int qend = p.cu_seqlens_q[b + 1];
  s.len = p.seq_lens[b];
  s.qlen = qend - s.qstart;
  s.L = 0;
  s.ok = false;
  if (s.len < 0) {
    if (reporter) report(err, kErrNegSeqLen, kFamPagedAttention, 0, b, 0, 0, s.len, 0);
  } else if (s.qstart < 0 || qend < s.qstart || qend > p.total_q || (b == 0 && s.qstart != 0) ||
             (b == p.num_seqs - 1 && qend != p.total_q)) {
    if (reporter) report(err, kErrCuSeqlens, kFamPagedAttention, 0, b, s.qstart, 0, qend, p.total_q);
  } else if (s.qlen > s.len) {
    if (reporter) report(err, kErrQLen, kFamPagedAttention, 0, b, s.len, 0, s.qlen, 0);
  } else if (s.qlen > p.max_q_len) {
    if (reporter) report(err, kErrMaxQLen, kFamPagedAttention, 0, b, 0, 0, s.qlen, p.max_q_len);
  } else {
    s.L = (int)(((int64_t)s.len + p.block_size - 1) / p.block_size);
    if (s.L > p.max_blocks_per_seq) {
      if (reporter) report(err, kErrTableWidth, kFamPagedAttention, kTabBlock, b, 0, 0, s.L, p.max_blocks_per_seq);
    } else {
      s.ok = true;
    }
  }
  return s;
}

// Keys visible to query positions [p_lo, p_hi] without block selection: an optional sink range
// [0, sink_end) plus the main range [lo, hi). Ranges are in keys; `unit` (a tile size, or 1)
// rounds them to units, merged so no unit is visited twice.
struct KeyRange {
  int64_t n1;      // units [0, n1): sink units
  int64_t start2;  // units [start2, start2 + n2): main units
  int64_t n2;
  __device__ __forceinline__ int64_t count() const { return n1 + n2; }
  __device__ __forceinline__ int64_t unit(int64_t v) const { return v < n1 ? v : start2 + (v - n1); }
};

__device__ __forceinline__ KeyRange key_range(const PagedAttentionParams& p, int len, int64_t p_lo, int64_t p_hi, int unit) {
  const bool upper = p.causal || p.sliding_window > 0;
  const int64_t hi = upper ? min64(len, p_hi + 1) : len;
  int64_t lo = 0;
  if (p.sliding_window > 0) lo = max64(0, p_lo - p.sliding_window + 1);
  KeyRange r;
  r.start2 = lo / unit;
  const int64_t end2 = (hi + unit - 1) / unit;
  r.n2 = max64(0, end2 - r.start2);
  const int64_t sink_end = p.sliding_window > 0 ? min64(p.sink_tokens, hi) : 0;
  r.n1 = min64((sink_end + unit - 1) / unit, r.start2);
  if (hi <= 0) r.n1 = r.n2 = 0;
  return r;
}

// Whether a block-selection row can hold no duplicate id: its non-negative ids strictly increase
// and every -1 comes after them (the quest_select format). Block-wide (contains a barrier).
__device__ __forceinline__ bool selection_sorted(const int32_t* selrow, int sel_k) {
  int ok = 1;
  for (int e = threadIdx.x + 1; e < sel_k; e += blockDim.x) {
    const int a = selrow[e - 1], c = selrow[e];
    if (!(c == -1 || (a != -1 && c > a))) ok = 0;
  }
  return __syncthreads_and(ok) != 0;
}

// The id of selection entry e, or -1 when an earlier entry lists the same block (the selection is a
// set: a block listed twice counts once; SPEC section 3, "only the listed blocks are visible").
__device__ __forceinline__ int selection_entry(const int32_t* selrow, int e, bool sorted) {
  const int id = selrow[e];
  if (sorted || id < 0) return id;
  for (int e2 = 0; e2 < e; ++e2)
    if (selrow[e2] == id) return -1;
  return id;
}

// Physical element offset of key `pos` (head n) through the block table, or -1 when the block id
// lies outside the pool (reported, never dereferenced).
__device__ __forceinline__ int64_t key_offset(const PagedAttentionParams& p, int b, int64_t pos, int n, DevError* err) {
  const int64_t lb = pos / p.block_size;
  const int tok = (int)(pos - lb * p.block_size);
  const int32_t blk = p.block_tables[(int64_t)b * p.max_blocks_per_seq + lb];
  if (blk < 0 || blk >= p.num_blocks) {
    report(err, kErrTableId, kFamPagedAttention, kTabBlock, b, (int)lb, 0, blk, p.num_blocks);
    return -1;
  }
  return paged_off(p.layout, blk, tok, n, p.block_size, p.num_kv_heads, p.head_dim);
}

// Online-softmax step of the mma.sync kernels (attn_tc.cuh, attn_decode.cuh) over a tile of scores
// in the m16n8 C layout: sc[j][0..1] are row g's, sc[j][2..3] row g + 8's logits (log2 units, -inf
// masked), mx the thread's maxima including the running max. Reduces mx over the row's 4 lanes,
// replaces the logits by p = exp2(logit - max), updates m_run and l_run (this lane's partial sum)
// and rescales O when a running max moved.
template <int NJ, int NO>
__device__ __forceinline__ void softmax_m16(float (&sc)[NJ][4], float (&o)[NO][4], float (&mx)[2], float (&m_run)[2],
                                            float (&l_run)[2]) {
#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    mx[hr] = fmaxf(mx[hr], __shfl_xor_sync(0xffffffffu, mx[hr], 1));
    mx[hr] = fmaxf(mx[hr], __shfl_xor_sync(0xffffffffu, mx[hr], 2));
  }
  float alpha[2];
#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    const float mref = mx[hr] == -INFINITY ? 0.f : mx[hr];
    alpha[hr] = mx[hr] == m_run[hr] ? 1.f : exp2f(m_run[hr] - mref);  // 0 when m_run was -inf
    m_run[hr] = mx[hr];
    l_run[hr] *= alpha[hr];
#pragma unroll
    for (int j = 0; j < NJ; ++j) {
      const float p0 = exp2f(sc[j][2 * hr] - mref), p1 = exp2f(sc[j][2 * hr + 1] - mref);
      sc[j][2 * hr] = p0;
      sc[j][2 * hr + 1] = p1;
      l_run[hr] += p0 + p1;
    }
  }
  if (__any_sync(0xffffffffu, alpha[0] != 1.f || alpha[1] != 1.f)) {  // the running max moved
#pragma unroll
    for (int i = 0; i < NO; ++i) {
      o[i][0] *= alpha[0];
      o[i][1] *= alpha[0];
      o[i][2] *= alpha[1];
      o[i][3] *= alpha[1];
    }
  }
}

// Row resolution of the tensor-core kernels (attn_tc.cuh, attn_decode.cuh), in three steps that
// they pipeline in registers: logical() gives the logical block of virtual key vk (arithmetic, or a
// load from the block-selection row), physical() its pool block (a table load), resolve() the key
// position and element offset (-1 for a row without a key; a selection id or table id out of range
// is reported, never dereferenced).
template <int D>
struct RowResolver {
  const PagedAttentionParams& p;
  const SeqInfo& s;
  const int32_t* table;   // this sequence's block-table row
  const int32_t* selrow;  // its block-selection row, or nullptr
  bool sel_sorted;        // selrow has no duplicates (selection_sorted)
  int b, sel_row, n;      // sequence, selection row, KV head
  DevError* err;

  __device__ __forceinline__ int logical(int vk) const {
    const int e = vk / p.block_size;
    if (!selrow) return e;
    return e < p.sel_k ? selection_entry(selrow, e, sel_sorted) : -1;
  }
  __device__ __forceinline__ int physical(int id) const { return id >= 0 && id < s.L ? table[id] : -1; }
  __device__ __forceinline__ void resolve(int vk, int id, int blk, int* pos_out, int64_t* off_out) const {
    const int bs = p.block_size;
    int pos = -1;
    int64_t off = -1;
    const int e = vk / bs, tok = vk - e * bs;
    if (selrow && (id < -1 || id >= s.L)) {
      report(err, kErrSelection, kFamPagedAttention, 0, b, sel_row % (p.sel_rows ? p.sel_rows : 1), e, id, s.L);
    } else if (id >= 0) {
      pos = id * bs + tok;
      if (pos >= s.len) {
        pos = -1;
      } else if (blk < 0 || blk >= p.num_blocks) {
        report(err, kErrTableId, kFamPagedAttention, kTabBlock, b, id, 0, blk, p.num_blocks);
        pos = -1;
      } else {
        off = paged_off(p.layout, blk, tok, n, bs, p.num_kv_heads, D);
      }
    }
    *pos_out = pos;
    *off_out = off;
  }
};

// Key position of virtual key v of the block-selection row (entry v / bs, token v % bs), or -1.
__device__ __forceinline__ int64_t selected_pos(const PagedAttentionParams& p, int b, int sel_row, const SeqInfo& s,
                                                int64_t v, DevError* err) {
  const int64_t e = v / p.block_size;
  if (e >= p.sel_k) return -1;
  const int32_t id = selection_entry(p.maybe_block_selection + (int64_t)sel_row * p.sel_k, (int)e, false);
  if (id == -1) return -1;
  if (id < -1 || id >= s.L) {
    report(err, kErrSelection, kFamPagedAttention, 0, b, sel_row % (p.sel_rows ? p.sel_rows : 1), (int)e, id, s.L);
    return -1;
  }
  const int64_t pos = (int64_t)id * p.block_size + (v - e * p.block_size);
  return pos < s.len ? pos : -1;
}

// Scaled, soft-capped, ALiBi-biased logit of raw score q.k for key `kpos` seen from query
// position `qpos` by head h, in log2 units; -inf when the key is not visible (SPEC section 3).
// Positions are int32 (seqLens are int32).
__device__ __forceinline__ float logit2(const PagedAttentionParams& p, float raw, int kpos, int qpos, int h) {
  if (kpos < 0) return -INFINITY;
  if ((p.causal || p.sliding_window > 0) && kpos > qpos) return -INFINITY;
  if (p.sliding_window > 0 && kpos <= qpos - p.sliding_window && kpos >= p.sink_tokens) return -INFINITY;
  float x = raw * p.scale;
  if (p.softcap > 0.f) x = p.softcap * tanhf(x / p.softcap);
  if (p.maybe_alibi_slopes) x += p.maybe_alibi_slopes[h] * (float)(kpos - qpos);
  return x * kLog2e;
}

// Writes one finished row: out (dtype of q) and lse (natural log), from the normalized output
// `o` (f32, D values), its log2-sum-exp `lse2` (-inf when no key was visible) and the sink logit.
// Without visible keys the output is 0 and lse -inf whatever the sink (SPEC: "no visible key").
__device__ __forceinline__ float final_scale(const PagedAttentionParams& p, int h, float lse2, float* lse_out) {
  if (lse2 == -INFINITY) {
    *lse_out = -INFINITY;
    return 0.f;
  }
  float f = 1.f;
  float l2 = lse2;
  if (p.maybe_sink_logits) {
    const float s2 = p.maybe_sink_logits[h] * kLog2e;
    const float m = fmaxf(lse2, s2);
    const float den = exp2f(lse2 - m) + exp2f(s2 - m);
    l2 = m + log2f(den);
    f = exp2f(lse2 - l2);  // the share of the mass that the keys keep
  }
  *lse_out = l2 * kLn2;
  return f;
}

Status launch_attn_merge(const PagedAttentionParams& p, const AttnPlan& plan, const Launch& l);

}  // namespace select_attn::cuda
