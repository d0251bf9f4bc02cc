// quest_select on cpu (SPEC section 2): scores every real block of every (sequence, head) in one pass
// over the metadata, then picks forced blocks plus the top scores with a bounded heap, written in
// ascending id order with -1 padding. Compiled once per ISA (see isa.h).
#include <cstdlib>
#include <cstring>
#include <string>

#include "isa.h"
#include "simd.h"
#include "thread_pool.h"

namespace select_attn::cpu::SA_ISA {
namespace {

// Per-call memory of the calling OS thread (the pool's scratch(0) is only safe inside parallel_for:
// two async calls run their setup on different libuv threads concurrently). Kept across calls.
struct CallBuffer {
  void* p = nullptr;
  size_t n = 0;
  ~CallBuffer() { std::free(p); }
  void* get(size_t bytes) {
    if (bytes > n) {
      std::free(p);
      n = (bytes + 4095) / 4096 * 4096;
      p = std::aligned_alloc(64, n);
      if (!p) n = 0;
    }
    return p;
  }
};
thread_local CallBuffer call_buffer;

template <DType MT> inline V mload(const void* base, int64_t i) {
  if (MT == DType::f32) return vload(static_cast<const float*>(base) + i);
  return vload(static_cast<const uint16_t*>(base) + i, MT);
}
template <DType MT> inline V mload_n(const void* base, int64_t i, int n) {
  if (MT == DType::f32) return vload_n(static_cast<const float*>(base) + i, n);
  return vload_n(static_cast<const uint16_t*>(base) + i, MT, n);
}

// Score terms: max(q M, q m) = q+ max(M, m) + q- min(M, m) with q+ = max(q, 0), q- = min(q, 0)
// precomputed per query (exact per term for finite values, and independent of which of M/m is larger).

// One query against one metadata row. qp/qn: [D] f32 q+ and q-.
template <DType MT>
inline float score1(const void* M, const void* m, int64_t off, const float* qp, const float* qn, int D) {
  V a0 = vzero(), a1 = vzero(), a2 = vzero(), a3 = vzero();
  int d = 0;
  for (; d + 2 * W <= D; d += 2 * W) {
    const V x0 = mload<MT>(M, off + d), y0 = mload<MT>(m, off + d);
    const V x1 = mload<MT>(M, off + d + W), y1 = mload<MT>(m, off + d + W);
    a0 = vfma(vload(qp + d), vmax(x0, y0), a0);
    a1 = vfma(vload(qn + d), vmin(x0, y0), a1);
    a2 = vfma(vload(qp + d + W), vmax(x1, y1), a2);
    a3 = vfma(vload(qn + d + W), vmin(x1, y1), a3);
  }
  for (; d + W <= D; d += W) {
    const V x = mload<MT>(M, off + d), y = mload<MT>(m, off + d);
    a0 = vfma(vload(qp + d), vmax(x, y), a0);
    a1 = vfma(vload(qn + d), vmin(x, y), a1);
  }
  if (d < D) {  // the loaded tails are zero beyond D, so they add nothing
    const V x = mload_n<MT>(M, off + d, D - d), y = mload_n<MT>(m, off + d, D - d);
    a2 = vfma(vload_n(qp + d, D - d), vmax(x, y), a2);
    a3 = vfma(vload_n(qn + d, D - d), vmin(x, y), a3);
  }
  return vsum(vadd(vadd(a0, a2), vadd(a1, a3)));
}

// NQ queries (q: [NQ][2][D], q+ then q-) against one metadata row: each widened metadata vector is
// used NQ times (perHead: the G query heads of one KV head).
template <DType MT, int NQ>
inline void score_n(const void* M, const void* m, int64_t off, const float* q, int D, float* out) {
  V acc[NQ];
  for (int i = 0; i < NQ; ++i) acc[i] = vzero();
  int d = 0;
  for (; d + W <= D; d += W) {
    const V x = mload<MT>(M, off + d), y = mload<MT>(m, off + d);
    const V hi = vmax(x, y), lo = vmin(x, y);
    for (int i = 0; i < NQ; ++i) {
      acc[i] = vfma(vload(q + (2 * i) * D + d), hi, acc[i]);
      acc[i] = vfma(vload(q + (2 * i + 1) * D + d), lo, acc[i]);
    }
  }
  if (d < D) {
    const V x = mload_n<MT>(M, off + d, D - d), y = mload_n<MT>(m, off + d, D - d);
    const V hi = vmax(x, y), lo = vmin(x, y);
    for (int i = 0; i < NQ; ++i) {
      acc[i] = vfma(vload_n(q + (2 * i) * D + d, D - d), hi, acc[i]);
      acc[i] = vfma(vload_n(q + (2 * i + 1) * D + d, D - d), lo, acc[i]);
    }
  }
  for (int i = 0; i < NQ; ++i) out[i] = vsum(acc[i]);
}

// Total order on f32 scores as unsigned integers (-0 is folded into +0 first; NaNs sort beyond
// +-inf, so odd inputs still give a deterministic answer).
inline uint32_t ord_score(float s) {
  s = s + 0.0f;
  uint32_t u;
  std::memcpy(&u, &s, 4);
  return u ^ ((u >> 31) ? 0xffffffffu : 0x80000000u);
}

inline void sift_down(uint64_t* h, int64_t n, int64_t i) {  // min-heap
  const uint64_t x = h[i];
  for (;;) {
    int64_t c = 2 * i + 1;
    if (c >= n) break;
    if (c + 1 < n && h[c + 1] < h[c]) ++c;
    if (h[c] >= x) break;
    h[i] = h[c];
    i = c;
  }
  h[i] = x;
}

inline void mark_range(uint64_t* bits, int64_t lo, int64_t hi) {
  for (int64_t j = lo; j < hi; ++j) bits[j >> 6] |= uint64_t(1) << (j & 63);
}

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

// The sequence b with prefix[b] <= task < prefix[b + 1] among [lo, hi).
inline int find_seq(const int64_t* prefix, int lo, int hi, int64_t task) {
  while (hi - lo > 1) {
    int mid = (lo + hi) / 2;
    (prefix[mid] <= task ? lo : hi) = mid;
  }
  return lo;
}

// f32 query rows for sequence b: [rows][2][D] (q+ then q-). mean: q̄ = (sum of the G heads) / G.
inline void build_queries(const QuestSelectParams& p, const Shape& s, int b, float* q) {
  const int64_t qoff = (int64_t)b * s.H * s.D;  // q̄ is built in the q+ slot, then split
  for (int r = 0; r < s.rows; ++r) {
    float* qp = q + (int64_t)(2 * r) * s.D;
    float* qn = qp + s.D;
    if (s.per_head) {
      widen(qp, p.query, p.query_dtype, qoff + (int64_t)r * s.D, s.D);
    } else {
      widen(qp, p.query, p.query_dtype, qoff + (int64_t)r * s.G * s.D, s.D);
      for (int g = 1; g < s.G; ++g) {
        widen(qn, p.query, p.query_dtype, qoff + ((int64_t)r * s.G + g) * s.D, s.D);
        for (int d = 0; d < s.D; ++d) qp[d] += qn[d];
      }
      const float inv = (float)s.G;
      for (int d = 0; d < s.D; ++d) qp[d] = qp[d] / inv;
    }
    for (int d = 0; d < s.D; ++d) {
      const float x = qp[d];
      qp[d] = x > 0.0f ? x : 0.0f;
      qn[d] = x < 0.0f ? x : 0.0f;
    }
  }
}

// Scores of rows [j0, j1) of sequence b for every query row into sc[row * L + j].
template <DType MT>
inline void score_blocks(const QuestSelectParams& p, const Shape& s, int b, int64_t j0, int64_t j1, int64_t L,
                         const float* q, float* sc) {
  const int64_t rowel = (int64_t)s.N * s.D;
  const int32_t* mbt = p.meta_block_tables + (int64_t)b * p.max_meta_pages_per_seq;
  for (int64_t j = j0; j < j1; ++j) {
    const int64_t base = ((int64_t)mbt[j / s.R] * s.R + j % s.R) * rowel;
    for (int n = 0; n < s.N; ++n) {
      const int64_t off = base + (int64_t)n * s.D;
      if (!s.per_head) {
        const float* qp = q + (int64_t)(2 * n) * s.D;
        sc[(int64_t)n * L + j] = score1<MT>(p.max_meta, p.min_meta, off, qp, qp + s.D, s.D);
        continue;
      }
      float out[8];
      int g = 0;
      while (g < s.G) {
        const int h = n * s.G + g;
        const float* qh = q + (int64_t)(2 * h) * s.D;
        const int left = s.G - g;
        const int nq = left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
        switch (nq) {
          case 8: score_n<MT, 8>(p.max_meta, p.min_meta, off, qh, s.D, out); break;
          case 4: score_n<MT, 4>(p.max_meta, p.min_meta, off, qh, s.D, out); break;
          case 2: score_n<MT, 2>(p.max_meta, p.min_meta, off, qh, s.D, out); break;
          default: out[0] = score1<MT>(p.max_meta, p.min_meta, off, qh, qh + s.D, s.D); break;
        }
        for (int i = 0; i < nq; ++i) sc[(int64_t)(h + i) * L + j] = out[i];
        g += nq;
      }
    }
  }
}

// Selection for one (sequence, output row): forced blocks (stale/window suffix newest first, then
// sinks from 0) plus the best-scoring remaining blocks; ascending ids, -1 padding.
inline void select_row(const QuestSelectParams& p, const Shape& s, int b, int row, int64_t L, const float* sc,
                       uint64_t* work) {
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
  const int64_t words = (L + 63) / 64;
  uint64_t* bits = work;
  uint64_t* heap = work + words;
  std::memset(bits, 0, sizeof(uint64_t) * words);
  if (S + Sx >= kk) {
    const int64_t a = kk < S ? kk : S;
    mark_range(bits, L - a, L);
    mark_range(bits, 0, kk - a);
  } else {
    mark_range(bits, fs, L);
    mark_range(bits, 0, Sx);
    const int64_t m = kk - S - Sx, lo = Sx, hi = fs;
    if (m == hi - lo) {
      mark_range(bits, lo, hi);
    } else {
      // Keys: score order in the high half, ~id in the low half (ties go to the smaller id).
      int64_t n = 0;
      for (int64_t j = lo; j < lo + m; ++j) heap[n++] = ((uint64_t)ord_score(sc[j]) << 32) | (uint32_t)~(uint32_t)j;
      for (int64_t i = m / 2 - 1; i >= 0; --i) sift_down(heap, m, i);
      for (int64_t j = lo + m; j < hi; ++j) {
        const uint64_t key = ((uint64_t)ord_score(sc[j]) << 32) | (uint32_t)~(uint32_t)j;
        if (key > heap[0]) {
          heap[0] = key;
          sift_down(heap, m, 0);
        }
      }
      for (int64_t i = 0; i < m; ++i) {
        const int64_t j = (uint32_t)~(uint32_t)heap[i];
        bits[j >> 6] |= uint64_t(1) << (j & 63);
      }
    }
  }
  int64_t c = 0;
  for (int64_t w = 0; w < words; ++w) {
    uint64_t x = bits[w];
    while (x) {
      out[c++] = (int32_t)(w * 64 + __builtin_ctzll(x));
      x &= x - 1;
    }
  }
  for (int64_t i = c; i < s.k; ++i) out[i] = -1;
}

template <DType MT>
Status run(const QuestSelectParams& p) {
  Shape s;
  s.B = p.num_seqs; s.H = p.num_qo_heads; s.N = p.num_kv_heads; s.D = p.head_dim;
  s.G = s.H / s.N; s.per_head = p.group_reduce == GroupReduce::per_head; s.rows = s.per_head ? s.H : s.N;
  s.bs = p.block_size; s.R = p.meta_rows; s.k = p.k;
  const int B = s.B, T = num_threads();
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
  const size_t head_bytes = sizeof(int64_t) * (2 * ((size_t)B + 1) + (size_t)T);
  char* buf = static_cast<char*>(call_buffer.get(head_bytes + sizeof(float) * (size_t)max_wave + 64));
  if (!buf) return Status::oom("quest_select (cpu): cannot allocate the score buffer");
  int64_t* score_at = reinterpret_cast<int64_t*>(buf);   // [B + 1] score offsets (rows * L prefix)
  int64_t* task_at = score_at + B + 1;                     // [B + 1] scoring-task prefix
  int64_t* cached_b = task_at + B + 1;                     // [T] sequence whose queries a thread holds
  float* scores = reinterpret_cast<float*>(buf + (head_bytes + 63) / 64 * 64);
  score_at[0] = task_at[0] = 0;
  for (int b = 0; b < B; ++b) {
    const int64_t L = ((int64_t)p.seq_lens[b] + s.bs - 1) / s.bs;
    score_at[b + 1] = score_at[b] + (int64_t)s.rows * L;
    task_at[b + 1] = task_at[b] + (L + per_task - 1) / per_task;
  }
  // Per-thread memory: the query rows of one sequence, then the selection bitmap and heap.
  const size_t q_floats = (size_t)2 * s.rows * s.D;
  const size_t private_bytes = (q_floats * sizeof(float) + 63) / 64 * 64 + sizeof(uint64_t) * (size_t)(2 * max_L + 64);

  for (int b0 = 0; b0 < B;) {
    int b1 = b0 + 1;
    while (b1 < B && score_at[b1 + 1] - score_at[b0] <= cap) ++b1;  // at least one sequence
    for (int t = 0; t < T; ++t) cached_b[t] = -1;
    parallel_for(task_at[b1] - task_at[b0], [&](int64_t task, int tid) {
      char* mem = static_cast<char*>(scratch(tid, private_bytes));
      float* q = reinterpret_cast<float*>(mem);
      const int64_t gt = task + task_at[b0];
      const int b = find_seq(task_at, b0, b1, gt);
      if (cached_b[tid] != b) {
        build_queries(p, s, b, q);
        cached_b[tid] = b;
      }
      const int64_t L = (score_at[b + 1] - score_at[b]) / s.rows;
      const int64_t j0 = (gt - task_at[b]) * per_task, j1 = j0 + per_task < L ? j0 + per_task : L;
      score_blocks<MT>(p, s, b, j0, j1, L, q, scores + (score_at[b] - score_at[b0]));
    });
    parallel_for((int64_t)(b1 - b0) * s.rows, [&](int64_t task, int tid) {
      char* mem = static_cast<char*>(scratch(tid, private_bytes));
      uint64_t* work = reinterpret_cast<uint64_t*>(mem + (q_floats * sizeof(float) + 63) / 64 * 64);
      const int b = b0 + (int)(task / s.rows), row = (int)(task % s.rows);
      const int64_t L = (score_at[b + 1] - score_at[b]) / s.rows;
      select_row(p, s, b, row, L, scores + (score_at[b] - score_at[b0]) + (int64_t)row * L, work);
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
