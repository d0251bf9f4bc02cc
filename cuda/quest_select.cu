// quest_select on cuda (SPEC section 2), no host sync. groupReduce 'mean' with rows of at most 4096
// blocks: ONE launch (quest_select_fused_kernel) whose thread blocks score chunks of a row and whose
// last block per row selects its top-k. Otherwise two kernels: a scores kernel that splits each
// sequence's blocks over many thread blocks reading whole metadata rows (all KV heads, 16-byte
// loads), and a top-k kernel (one thread block per output row, launched as a programmatic dependent
// on sm_90). The top-k applies the forced blocks (stale, window, sinks), radix-selects the best
// candidates, and writes the ids in ascending order.
#include <cstdlib>

#include "launch.h"

namespace select_attn::cuda {
namespace {

constexpr int kThreads = 256;     // scores kernel
constexpr int kMeanThreads = 256; // scores kernel, mean fast path
constexpr int kSelThreads = 512;   // top-k kernel
constexpr int kSelWarps = kSelThreads / 32;
constexpr int kFusedThreads = 256;  // fused scores + top-k kernel (groupReduce mean, rows <= 4096 blocks)
constexpr int kUnroll = 4;        // blocks per team in flight
constexpr int kMaxChunksAll = 2;  // 16-byte chunks per lane per metadata row (template: 1 or 2)
constexpr int kKeyCache = 16384;  // candidate keys staged in shared memory (64 KB)

// Order-preserving map of an f32 score to uint32 (larger score -> larger key).
__device__ __forceinline__ uint32_t fkey(float f) {
  const uint32_t u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// Programmatic dependent launch (sm_90): the scores kernels let the top-k kernel launch early; the
// top-k kernel waits for the scores (all of them, flushed) before reading them. No-ops elsewhere.
__device__ __forceinline__ void pdl_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// Block-wide exclusive scan of v over WARPS warps; *total gets the sum. Two barriers; s_warp holds
// WARPS + 1 words.
template <int WARPS>
__device__ __forceinline__ int block_excl_scan(int v, int* s_warp, int* total) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  int x = v;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const int y = __shfl_up_sync(0xffffffffu, x, o);
    if (lane >= o) x += y;
  }
  if (lane == 31) s_warp[warp] = x;
  __syncthreads();
  if (warp == 0) {
    const int t = lane < WARPS ? s_warp[lane] : 0;
    int y = t;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const int z = __shfl_up_sync(0xffffffffu, y, o);
      if (lane >= o) y += z;
    }
    if (lane < WARPS) s_warp[lane] = y - t;
    if (lane == 31) s_warp[WARPS] = y;
  }
  __syncthreads();
  const int r = s_warp[warp] + x - v;
  *total = s_warp[WARPS];
  __syncthreads();  // s_warp is reused by the next scan
  return r;
}

// Grid: (chunks, B); block: kThreads. Scores blocks [x*chunk_blocks, (x+1)*chunk_blocks) of
// sequence b = blockIdx.y for every KV head n and row r (r < RG; RG = 1 for groupReduce mean, G for
// perHead) into scores[((b*N + n)*RG + r) * lcap + j]. The thread block reads whole metadata rows
// (all heads of a block are contiguous), a team of TL lanes per (block, head) unit.
// Dynamic shared memory: N*RG*D floats (the query rows).
template <class T, int kMaxChunks>
__global__ void __launch_bounds__(kThreads, 2) quest_scores_kernel(QuestSelectParams p, float* scores, int chunk_blocks,
                                                                int64_t lcap, DevError* err) {
  extern __shared__ float sq[];
  constexpr int VE = 16 / sizeof(T);
  const int b = blockIdx.y;
  const int H = p.num_qo_heads, N = p.num_kv_heads, G = H / N, D = p.head_dim, bs = p.block_size, R = p.meta_rows;
  const bool per_head = p.group_reduce == GroupReduce::per_head;
  const int RG = per_head ? G : 1;
  const bool reporter = blockIdx.x == 0 && threadIdx.x == 0;
  pdl_trigger();
  const int len = p.seq_lens[b];
  const int tsu = p.tokens_since_update[b];
  if (len < 0) {
    if (reporter) report(err, kErrNegSeqLen, kFamQuestSelect, 0, b, 0, 0, len, 0);
    return;
  }
  if (tsu < 0 || tsu > len) {
    if (reporter) report(err, kErrTokensSince, kFamQuestSelect, 0, b, 0, 0, tsu, len);
    return;
  }
  const int64_t L = ((int64_t)len + bs - 1) / bs;
  if (L > lcap) {
    if (reporter) report(err, kErrTableWidth, kFamQuestSelect, kTabMeta, b, 0, 0, (L + R - 1) / R, p.max_meta_pages_per_seq);
    return;
  }
  const int64_t j0 = (int64_t)blockIdx.x * chunk_blocks;
  const int64_t j1 = min64(j0 + chunk_blocks, L);
  if (j0 >= j1) return;
  for (int i = threadIdx.x; i < N * RG * D; i += kThreads) {
    const int row = i / D, d = i % D, n = row / RG, r = row % RG;
    float v;
    if (per_head) {
      v = load_any(p.query, p.query_dtype, ((int64_t)b * H + n * G + r) * D + d);
    } else {
      float acc = 0.f;
      for (int g = 0; g < G; ++g) acc += load_any(p.query, p.query_dtype, ((int64_t)b * H + n * G + g) * D + d);
      v = acc / (float)G;
    }
    sq[i] = v;
  }
  __syncthreads();
  const int cpr = D / VE;
  const int TL = cpr > 16 ? 32 : cpr > 8 ? 16 : cpr > 4 ? 8 : cpr > 2 ? 4 : cpr > 1 ? 2 : 1;
  const int cpt = (cpr + TL - 1) / TL;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int tpw = 32 / TL, team_in_warp = lane / TL, lt = lane % TL;
  const int nteams = kThreads / TL;
  const T* maxm = static_cast<const T*>(p.max_meta);
  const T* minm = static_cast<const T*>(p.min_meta);
  const int64_t row_elems = (int64_t)N * D;
  const int32_t* mbt = p.meta_block_tables + (int64_t)b * p.max_meta_pages_per_seq;
  // Units u = (j - j0) * N + n: consecutive teams read consecutive heads of one metadata row.
  // 32-bit unit and block indices (a chunk holds fewer than 2^31 units; lcap * N < 2^31 is checked
  // at launch), so no 64-bit division sits in the loop.
  const int U = (int)((j1 - j0) * N);
  const int jbase = (int)j0;
  // The loop bound is the warp's first unit, so every lane of a warp runs the same iterations (the
  // team reductions are warp-wide shuffles).
  for (int uw = warp * tpw; uw < U; uw += nteams * kUnroll) {
    uint4 vmx[kUnroll][kMaxChunks], vmn[kUnroll][kMaxChunks];
    int jj[kUnroll], nn[kUnroll];
    bool ok[kUnroll];
#pragma unroll
    for (int k = 0; k < kUnroll; ++k) {
      const int u = uw + team_in_warp + k * nteams;
      ok[k] = false;
      jj[k] = jbase + u / N;
      nn[k] = u - (jj[k] - jbase) * N;
      if (u < U) {
        const int j = jj[k], n = nn[k];
        const int pj = j / R;
        const int32_t page = mbt[pj];
        if (page < 0 || page >= p.num_meta_pages) {
          if (lt == 0 && n == 0) report(err, kErrTableId, kFamQuestSelect, kTabMeta, b, pj, 0, page, p.num_meta_pages);
        } else {
          ok[k] = true;
          const int64_t off = ((int64_t)page * R + (j - pj * R)) * row_elems + (int64_t)n * D;
#pragma unroll
          for (int c = 0; c < kMaxChunks; ++c) {
            const int ch = lt + c * TL;
            if (c < cpt && ch < cpr) {
              vmx[k][c] = __ldg(reinterpret_cast<const uint4*>(maxm + off + ch * VE));
              vmn[k][c] = __ldg(reinterpret_cast<const uint4*>(minm + off + ch * VE));
            }
          }
        }
      }
    }
#pragma unroll
    for (int k = 0; k < kUnroll; ++k) {
      if (uw + k * nteams >= U) break;  // warp-uniform
      const bool valid = uw + team_in_warp + k * nteams < U;
      const int j = jj[k], n = valid ? nn[k] : 0;
      float fmx[kMaxChunks][VE], fmn[kMaxChunks][VE];
#pragma unroll
      for (int c = 0; c < kMaxChunks; ++c) {
        if (c < cpt && ok[k] && lt + c * TL < cpr) {
          Vec16<T>::widen(vmx[k][c], fmx[c]);
          Vec16<T>::widen(vmn[k][c], fmn[c]);
        } else {
#pragma unroll
          for (int e = 0; e < VE; ++e) fmx[c][e] = fmn[c][e] = 0.f;
        }
      }
      for (int r = 0; r < RG; ++r) {
        const float* q = sq + (n * RG + r) * D;
        float acc = 0.f;
#pragma unroll
        for (int c = 0; c < kMaxChunks; ++c) {
          const int ch = lt + c * TL;
          if (c < cpt && ch < cpr) {
#pragma unroll
            for (int e = 0; e < VE; ++e) {
              const float qd = q[ch * VE + e];
              acc += fmaxf(qd * fmx[c][e], qd * fmn[c][e]);
            }
          }
        }
        for (int o = TL >> 1; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
        if (lt == 0 && valid) scores[(((int64_t)b * N + n) * RG + r) * lcap + j] = ok[k] ? acc : -INFINITY;
      }
    }
  }
}

// Grid: (chunks, B); block: kMeanThreads. groupReduce 'mean' with N dividing the team count: team T
// (TL lanes) owns KV head n = T % N and blocks j0 + T / N, + nteams / N, ...; its lanes keep their
// channels of q-bar in registers, split by sign (max(q*M, q*m) = q+ * M + q- * m since M >= m), so a
// channel costs two FMAs. Same output as quest_scores_kernel.
template <class T, int CPL>
__global__ void __launch_bounds__(kMeanThreads, 2) quest_scores_mean_kernel(QuestSelectParams p, float* scores, int chunk_blocks,
                                                                         int64_t lcap, int TL, DevError* err) {
  constexpr int VE = 16 / sizeof(T);
  constexpr int U = 2;  // blocks per team in flight
  const int b = blockIdx.y;
  const int H = p.num_qo_heads, N = p.num_kv_heads, G = H / N, D = p.head_dim, bs = p.block_size, R = p.meta_rows;
  const bool reporter = blockIdx.x == 0 && threadIdx.x == 0;
  pdl_trigger();
  const int len = p.seq_lens[b];
  const int tsu = p.tokens_since_update[b];
  if (len < 0) {
    if (reporter) report(err, kErrNegSeqLen, kFamQuestSelect, 0, b, 0, 0, len, 0);
    return;
  }
  if (tsu < 0 || tsu > len) {
    if (reporter) report(err, kErrTokensSince, kFamQuestSelect, 0, b, 0, 0, tsu, len);
    return;
  }
  const int64_t L = ((int64_t)len + bs - 1) / bs;
  if (L > lcap) {
    if (reporter) report(err, kErrTableWidth, kFamQuestSelect, kTabMeta, b, 0, 0, (L + R - 1) / R, p.max_meta_pages_per_seq);
    return;
  }
  const int j0 = (int)((int64_t)blockIdx.x * chunk_blocks);
  const int j1 = (int)min64((int64_t)j0 + chunk_blocks, L);
  if (j0 >= j1) return;
  const int lane = threadIdx.x & 31;
  const int team = threadIdx.x / TL, lt = threadIdx.x % TL, nteams = kMeanThreads / TL;
  const unsigned tmask = TL == 32 ? 0xffffffffu : (((1u << TL) - 1u) << (lane & ~(TL - 1)));
  const int n = team % N, SJ = nteams / N;
  const int cpr = D / VE;
  // q-bar (mean over the group) for this lane's channels, sign-split.
  float qp[CPL][VE], qn[CPL][VE];
#pragma unroll
  for (int c = 0; c < CPL; ++c) {
    const int ch = lt * CPL + c;
    float acc[VE];
#pragma unroll
    for (int e = 0; e < VE; ++e) acc[e] = 0.f;
    if (ch < cpr)
      for (int g = 0; g < G; ++g) {
        float x[VE];
        load_any_vec<VE>(p.query, p.query_dtype, ((int64_t)b * H + n * G + g) * D + ch * VE, x);
#pragma unroll
        for (int e = 0; e < VE; ++e) acc[e] += x[e];
      }
#pragma unroll
    for (int e = 0; e < VE; ++e) {
      const float q = acc[e] / (float)G;
      qp[c][e] = fmaxf(q, 0.f);
      qn[c][e] = fminf(q, 0.f);
    }
  }
  const T* maxm = static_cast<const T*>(p.max_meta);
  const T* minm = static_cast<const T*>(p.min_meta);
  const int64_t row_elems = (int64_t)N * D;
  const int32_t* mbt = p.meta_block_tables + (int64_t)b * p.max_meta_pages_per_seq;
  float* srow = scores + ((int64_t)b * N + n) * lcap;
  for (int j = j0 + team / N; j < j1; j += SJ * U) {
    uint4 vmx[U][CPL], vmn[U][CPL];
    bool ok[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int ju = j + u * SJ;
      ok[u] = false;
      if (ju < j1) {
        const int pj = ju / R;
        const int32_t page = mbt[pj];
        if (page < 0 || page >= p.num_meta_pages) {
          if (lt == 0 && n == 0) report(err, kErrTableId, kFamQuestSelect, kTabMeta, b, pj, 0, page, p.num_meta_pages);
        } else {
          ok[u] = true;
          const int64_t off = ((int64_t)page * R + (ju - pj * R)) * row_elems + (int64_t)n * D;
#pragma unroll
          for (int c = 0; c < CPL; ++c) {
            const int ch = lt * CPL + c;
            if (ch < cpr) {
              vmx[u][c] = __ldg(reinterpret_cast<const uint4*>(maxm + off + ch * VE));
              vmn[u][c] = __ldg(reinterpret_cast<const uint4*>(minm + off + ch * VE));
            }
          }
        }
      }
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int ju = j + u * SJ;
      if (ju >= j1) break;  // uniform across the team
      float acc = 0.f;
      if (ok[u]) {
#pragma unroll
        for (int c = 0; c < CPL; ++c) {
          if (lt * CPL + c < cpr) {
            float fx[VE], fn[VE];
            Vec16<T>::widen(vmx[u][c], fx);
            Vec16<T>::widen(vmn[u][c], fn);
#pragma unroll
            for (int e = 0; e < VE; ++e) acc = fmaf(qp[c][e], fx[e], fmaf(qn[c][e], fn[e], acc));
          }
        }
      }
      for (int o = TL >> 1; o > 0; o >>= 1) acc += __shfl_xor_sync(tmask, acc, o);
      if (lt == 0) srow[ju] = ok[u] ? acc : -INFINITY;
    }
  }
}

// The forced part of a row's selection (both top-k kernels): writes numSelected, the -1 padding
// and the forced blocks (the stale/window suffix [fs, L) newest first, then the first sink blocks).
// Returns true when that completes the row; otherwise the candidates are blocks [npre, npre + C),
// of which `need` go between the prefix and the suffix. L = ceil(len / bs); NT threads stride.
template <int NT>
__device__ __forceinline__ bool topk_forced(const QuestSelectParams& p, int64_t orow, int len, int tsu, int* npre_out,
                                            int* c_out, int* need_out) {
  const int bs = p.block_size;
  const int L = (int)(((int64_t)len + bs - 1) / bs), k = p.k;
  const int stale = (len - tsu) / bs;
  const int fs = L > 0 ? max(0, min(L - p.window_blocks, stale)) : 0;  // forced suffix [fs, L)
  const int npre = min(p.sink_blocks, fs);                           // forced prefix [0, npre)
  const int count = min(k, L), nsuf = L - fs;
  int32_t* out = p.selected + orow * k;
  if (p.maybe_num_selected && threadIdx.x == 0) p.maybe_num_selected[orow] = count;
  for (int i = threadIdx.x + count; i < k; i += NT) out[i] = -1;
  if (nsuf >= k) {  // only stale/window blocks, newest first
    for (int i = threadIdx.x; i < k; i += NT) out[i] = L - k + i;
    return true;
  }
  if (nsuf + npre >= k) {  // the suffix plus the first sink blocks
    const int take = k - nsuf;
    for (int i = threadIdx.x; i < k; i += NT) out[i] = i < take ? i : fs + (i - take);
    return true;
  }
  const int C = fs - npre, need = k - nsuf - npre;
  if (need >= C) {  // every block
    for (int i = threadIdx.x; i < L; i += NT) out[i] = i;
    return true;
  }
  for (int i = threadIdx.x; i < npre; i += NT) out[i] = i;
  for (int i = threadIdx.x; i < nsuf; i += NT) out[npre + need + i] = fs + i;
  *npre_out = npre;
  *c_out = C;
  *need_out = need;
  return false;
}

// Grid: (B * N * RG output rows); block: kSelThreads. Picks row's top-k: forced blocks (stale and
// window newest first, then sinks), then the best-scoring candidates by a radix select over the
// order-preserving keys of their scores (8 bits per pass, stopping as soon as the k-th key's bucket
// is taken whole; ties at the threshold go to smaller ids), written in ascending id order.
// Dynamic shared memory: min(lcap, kKeyCache) keys.
__global__ void __launch_bounds__(kSelThreads) quest_topk_kernel(QuestSelectParams p, const float* scores, int64_t lcap) {
  extern __shared__ uint32_t keys[];
  __shared__ int s_warp[kSelWarps + 1];
  __shared__ int s_hist[256];
  __shared__ int s_misc[3];
  const int N = p.num_kv_heads, G = p.num_qo_heads / N, bs = p.block_size;
  const int RG = p.group_reduce == GroupReduce::per_head ? G : 1;
  const int64_t orow = blockIdx.x;
  const int b = (int)(orow / ((int64_t)N * RG));
  const int len = p.seq_lens[b], tsu = p.tokens_since_update[b];
  pdl_wait();  // every thread block waits, so this grid never completes before the scores
  if (len < 0 || tsu < 0 || tsu > len) return;  // reported by the scores kernel
  const int64_t L64 = ((int64_t)len + bs - 1) / bs;
  if (L64 > lcap) return;
  const int k = p.k;
  int32_t* out = p.selected + orow * k;
  const float* srow = scores + orow * lcap;
  int npre, C, need;
  if (topk_forced<kSelThreads>(p, orow, len, tsu, &npre, &C, &need)) return;
  const bool cached = C <= kKeyCache;
  if (cached)
    for (int i = threadIdx.x; i < C; i += kSelThreads) keys[i] = fkey(srow[npre + i]);
  __syncthreads();
  auto key_at = [&](int i) -> uint32_t { return cached ? keys[i] : fkey(srow[npre + i]); };
  // The digits start at the highest bit where the row's keys differ (the common high bits form the
  // initial prefix), so the first histogram spreads over the bins instead of piling into one or
  // two (scores of a row share sign and exponent bits) and shared atomics do not serialize.
  __shared__ uint32_t s_range[2 * kSelWarps];
  uint32_t kmin = 0xffffffffu, kmax = 0u;
  for (int i = threadIdx.x; i < C; i += kSelThreads) {
    const uint32_t u = key_at(i);
    kmin = min(kmin, u);
    kmax = max(kmax, u);
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    kmin = min(kmin, __shfl_xor_sync(0xffffffffu, kmin, o));
    kmax = max(kmax, __shfl_xor_sync(0xffffffffu, kmax, o));
  }
  if ((threadIdx.x & 31) == 0) {
    s_range[threadIdx.x >> 5] = kmin;
    s_range[kSelWarps + (threadIdx.x >> 5)] = kmax;
  }
  __syncthreads();
  kmin = s_range[0];
  kmax = s_range[kSelWarps];
  for (int w = 1; w < kSelWarps; ++w) {
    kmin = min(kmin, s_range[w]);
    kmax = max(kmax, s_range[kSelWarps + w]);
  }
  int top = kmin == kmax ? -1 : 31 - __clz(kmin ^ kmax);  // highest differing bit
  const uint32_t low = top >= 31 ? 0xffffffffu : top < 0 ? 0u : ((1u << (top + 1)) - 1u);
  uint32_t prefix = kmax & ~low, mask = ~low;
  int remaining = need;
  while (top >= 0) {
    const int width = min(8, top + 1), shift = top + 1 - width;
    const uint32_t dmask = (1u << width) - 1u;
    if (threadIdx.x < 256) s_hist[threadIdx.x] = 0;
    __syncthreads();
    for (int base = 0; base < C; base += kSelThreads) {
      const int i = base + threadIdx.x;
      const uint32_t u = i < C ? key_at(i) : 0u;
      const bool in = i < C && (u & mask) == prefix;
      const unsigned act = __ballot_sync(0xffffffffu, in);
      if (in) {
        const int bin = (u >> shift) & dmask;
        const unsigned peers = __match_any_sync(act, bin);
        if ((int)(threadIdx.x & 31) == __ffs(peers) - 1) atomicAdd(&s_hist[bin], __popc(peers));
      }
    }
    __syncthreads();
    if (threadIdx.x < 32) {
      // Lane l owns bins 255-8l down to 248-8l; an inclusive scan from the top finds the bin
      // holding the remaining-th largest key.
      const int l = threadIdx.x;
      int cnt[8], local = 0;
#pragma unroll
      for (int q = 0; q < 8; ++q) {
        cnt[q] = s_hist[255 - 8 * l - q];
        local += cnt[q];
      }
      int incl = local;
#pragma unroll
      for (int o = 1; o < 32; o <<= 1) {
        const int y = __shfl_up_sync(0xffffffffu, incl, o);
        if (l >= o) incl += y;
      }
      const int before = incl - local;
      if (before < remaining && remaining <= incl) {
        int rem = remaining - before;
#pragma unroll
        for (int q = 0; q < 8; ++q) {
          if (rem <= cnt[q]) {
            s_misc[0] = 255 - 8 * l - q;
            s_misc[1] = rem;
            s_misc[2] = cnt[q];
            break;
          }
          rem -= cnt[q];
        }
      }
    }
    __syncthreads();
    prefix |= (uint32_t)s_misc[0] << shift;
    mask |= dmask << shift;
    remaining = s_misc[1];
    const bool whole = s_misc[2] == remaining;  // the bucket is taken whole: threshold found
    __syncthreads();
    if (whole) break;
    top -= width;
  }
  // Selected: (key & mask) above prefix, or equal and among the first `remaining` such ids. Each
  // thread takes a contiguous run of candidates, so two block scans give every output position.
  const int per = (C + kSelThreads - 1) / kSelThreads;
  const int i0 = min(C, (int)threadIdx.x * per), i1 = min(C, i0 + per);
  int n_eq = 0;
  for (int i = i0; i < i1; ++i) n_eq += (key_at(i) & mask) == prefix;
  int tot;
  int eq_rank = block_excl_scan<kSelWarps>(n_eq, s_warp, &tot);
  int n_sel = 0;
  for (int i = i0; i < i1; ++i) {
    const uint32_t u = key_at(i) & mask;
    n_sel += u > prefix || (u == prefix && eq_rank++ < remaining);
  }
  int pos = block_excl_scan<kSelWarps>(n_sel, s_warp, &tot);
  eq_rank -= n_eq;  // back to this thread's first equal key
  for (int i = i0; i < i1; ++i) {
    const uint32_t u = key_at(i) & mask;
    if (u > prefix || (u == prefix && eq_rank++ < remaining)) out[npre + pos++] = npre + i;
  }
}

// The top-k of one output row by a block of NT threads, for rows of at most NT * KPT candidates
// (the same selection as quest_topk_kernel): the candidates' keys sit in registers (thread t owns
// candidates [t*KPT, t*KPT + KPT), so output positions follow from one block scan) and each radix
// pass costs one barrier: every pass counts into its own histogram (all zeroed up front; plain
// shared atomics: warp aggregation with match.any measured 1.5 us slower per row) and every warp
// finds the threshold bucket itself. At most 6 barriers per row. The scores are read through L2 (__ldcg): in the fused kernel other thread blocks wrote them
// during this grid. (One histogram per warp instead, 32 KB of shared memory, measured slower: the
// scores kernel uses none, and the SMs' shared-memory carve-out then changes between the kernels.)
// len, tsu: the row's validated seqLens / tokensSinceMetadataUpdate; L = ceil(len / bs) <= lcap.
template <int NT, int KPT>
__device__ __forceinline__ void topk_row_reg(const QuestSelectParams& p, const float* srow, int64_t orow, int len, int tsu) {
  constexpr int NW = NT / 32;
  __shared__ __align__(16) int s_hist[4][256];  // one per 8-bit pass (32-bit keys)
  __shared__ uint32_t s_range[2 * NW];
  __shared__ int s_scan[NW];
  const int k = p.k;
  int32_t* out = p.selected + orow * k;
  int npre, C, need;
  if (topk_forced<NT>(p, orow, len, tsu, &npre, &C, &need)) return;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int i0 = threadIdx.x * KPT;
  const int nval = max(0, min(KPT, C - i0));  // this thread's candidates
  uint32_t key[KPT];
#pragma unroll
  for (int m = 0; m < KPT; ++m) key[m] = m < nval ? fkey(__ldcg(srow + npre + i0 + m)) : 0u;
  for (int i = threadIdx.x; i < 4 * 256 / 4; i += NT) reinterpret_cast<int4*>(&s_hist[0][0])[i] = make_int4(0, 0, 0, 0);
  // The digits start at the highest bit where the row's keys differ (see quest_topk_kernel).
  uint32_t kmin = 0xffffffffu, kmax = 0u;
#pragma unroll
  for (int m = 0; m < KPT; ++m)
    if (m < nval) {
      kmin = min(kmin, key[m]);
      kmax = max(kmax, key[m]);
    }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    kmin = min(kmin, __shfl_xor_sync(0xffffffffu, kmin, o));
    kmax = max(kmax, __shfl_xor_sync(0xffffffffu, kmax, o));
  }
  if (lane == 0) {
    s_range[warp] = kmin;
    s_range[NW + warp] = kmax;
  }
  __syncthreads();
  kmin = s_range[0];
  kmax = s_range[NW];
#pragma unroll
  for (int w = 1; w < NW; ++w) {
    kmin = min(kmin, s_range[w]);
    kmax = max(kmax, s_range[NW + w]);
  }
  int top = kmin == kmax ? -1 : 31 - __clz(kmin ^ kmax);  // highest differing bit
  const uint32_t low = top >= 31 ? 0xffffffffu : top < 0 ? 0u : ((1u << (top + 1)) - 1u);
  uint32_t prefix = kmax & ~low, mask = ~low;
  int remaining = need;
  for (int pass = 0; top >= 0; ++pass) {  // at most 4 passes
    const int width = min(8, top + 1), shift = top + 1 - width;
    const uint32_t dmask = (1u << width) - 1u;
    int* hist = s_hist[pass];
#pragma unroll
    for (int m = 0; m < KPT; ++m)
      if (m < nval && (key[m] & mask) == prefix) atomicAdd(&hist[(key[m] >> shift) & dmask], 1);
    __syncthreads();
    // Every warp scans the histogram from the top: lane l owns bins 255-8l down to 248-8l.
    int cnt[8], local = 0;
#pragma unroll
    for (int q = 0; q < 8; ++q) {
      cnt[q] = hist[255 - 8 * lane - q];
      local += cnt[q];
    }
    int incl = local;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const int y = __shfl_up_sync(0xffffffffu, incl, o);
      if (lane >= o) incl += y;
    }
    const int before = incl - local;
    const bool mine = before < remaining && remaining <= incl;  // exactly one lane
    int bin = 0, rem = remaining - before, c = 0;
    if (mine) {
#pragma unroll
      for (int q = 0; q < 8; ++q) {
        if (c == 0) {
          if (rem <= cnt[q]) {
            bin = 255 - 8 * lane - q;
            c = cnt[q];
          } else {
            rem -= cnt[q];
          }
        }
      }
    }
    const int src = __ffs(__ballot_sync(0xffffffffu, mine)) - 1;
    bin = __shfl_sync(0xffffffffu, bin, src);
    rem = __shfl_sync(0xffffffffu, rem, src);
    c = __shfl_sync(0xffffffffu, c, src);
    prefix |= (uint32_t)bin << shift;
    mask |= dmask << shift;
    remaining = rem;
    if (c == remaining) break;  // the bucket is taken whole: threshold found
    top -= width;
  }
  // Selected: (key & mask) above prefix, or equal and among the first `remaining` such ids. One
  // block scan of (above, equal) counts packed in 16-bit halves gives every output position.
  int n_gt = 0, n_eq = 0;
#pragma unroll
  for (int m = 0; m < KPT; ++m)
    if (m < nval) {
      const uint32_t u = key[m] & mask;
      n_gt += u > prefix;
      n_eq += u == prefix;
    }
  const int v = (n_gt << 16) | n_eq;
  int x = v;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const int y = __shfl_up_sync(0xffffffffu, x, o);
    if (lane >= o) x += y;
  }
  if (lane == 31) s_scan[warp] = x;
  __syncthreads();
  int excl = x - v;
  for (int w = 0; w < warp; ++w) excl += s_scan[w];
  int eq_rank = excl & 0xffff;
  int pos = (excl >> 16) + min(eq_rank, remaining);
#pragma unroll
  for (int m = 0; m < KPT; ++m)
    if (m < nval) {
      const uint32_t u = key[m] & mask;
      if (u > prefix || (u == prefix && eq_rank++ < remaining)) out[npre + pos++] = npre + i0 + m;
    }
}

// Grid: (B * N * RG output rows); block: NT threads. The two-kernel path's top-k for rows of at
// most NT * KPT candidates (topk_row_reg), launched as a programmatic dependent of the scores.
template <int NT, int KPT>
__global__ void __launch_bounds__(NT) quest_topk_reg_kernel(QuestSelectParams p, const float* scores, int64_t lcap) {
  const int N = p.num_kv_heads, G = p.num_qo_heads / N, bs = p.block_size;
  const int RG = p.group_reduce == GroupReduce::per_head ? G : 1;
  const int64_t orow = blockIdx.x;
  const int b = (int)(orow / ((int64_t)N * RG));
  const int len = p.seq_lens[b], tsu = p.tokens_since_update[b];
  pdl_wait();  // every thread block waits, so this grid never completes before the scores
  if (len < 0 || tsu < 0 || tsu > len) return;  // reported by the scores kernel
  if (((int64_t)len + bs - 1) / bs > lcap) return;
  topk_row_reg<NT, KPT>(p, scores + orow * lcap, orow, len, tsu);
}

// Grid: (B * N rows x splits), 1-D, the splits of a row adjacent; block: kFusedThreads.
// groupReduce 'mean' in ONE launch (no memset, no second kernel): thread block x scores blocks
// [s*chunk_blocks, (s+1)*chunk_blocks) of row (b, n) = x / splits (s = x % splits) into
// scores[row * lcap + j]; the last thread block of the row to finish (atomic counter, reset by that
// block, so the counters stay zero between calls) selects the row's top-k from the scores, which
// sit in L2. Every thread issues all its independent loads (seqLens, its table entry, its q rows)
// before using any, so a block's prologue costs one memory round trip and the metadata a second.
// A team of TL lanes owns a metadata block (one 16-byte chunk of max and one of min per lane; TL is
// the power of two >= D / chunk, at most 32) with q-bar in registers split by sign (max(q*M, q*m) =
// q+ * M + q- * m since M >= m); U = 2 blocks per team in flight (4 measured slower: more registers,
// fewer blocks per SM). KPT: candidate keys per thread in the top-k (lcap <= kFusedThreads * KPT).
// At B=1 (H200) the call costs about 3 us of launch, 3.5 us for the first (table, query, seqLens)
// and 4.8 us for the second (metadata) DRAM round trip plus the arrival, and 4.6 us of top-k.
__device__ __forceinline__ int atomic_add_acq_rel(int* p, int v) {
  int old;
  asm volatile("atom.acq_rel.gpu.global.add.s32 %0, [%1], %2;" : "=r"(old) : "l"(p), "r"(v) : "memory");
  return old;
}

template <class T, int KPT>
__global__ void __launch_bounds__(kFusedThreads) quest_select_fused_kernel(QuestSelectParams p, float* scores, int* counters,
                                                                           int splits, int chunk_blocks, int lcap, int TL,
                                                                           DevError* err) {
  constexpr int VE = 16 / sizeof(T), NT = kFusedThreads, U = 2;
  __shared__ int s_page[NT];  // this chunk's metadata pages, -1 where the id is outside the pool
  __shared__ int s_last;
  const int H = p.num_qo_heads, N = p.num_kv_heads, G = H / N, D = p.head_dim, bs = p.block_size, R = p.meta_rows;
  const int row = blockIdx.x / splits, split = blockIdx.x - row * splits;
  const int b = row / N, n = row - b * N;
  const int lane = threadIdx.x & 31, team = threadIdx.x / TL, lt = threadIdx.x % TL, nteams = NT / TL;
  const unsigned tmask = TL == 32 ? 0xffffffffu : (((1u << TL) - 1u) << (lane & ~(TL - 1)));
  const int cpr = D / VE;
  // This chunk's logical blocks by table capacity [j0, jcap) and their pages [pg0, pg0 + npg):
  // npg <= NT by the host's choice of chunk_blocks; the table entries exist whatever seqLens says.
  const int j0 = split * chunk_blocks, jcap = min(lcap, j0 + chunk_blocks);
  const int pg0 = j0 / R, npg = jcap > j0 ? (jcap - 1) / R - pg0 + 1 : 0;
  const int32_t* mbt = p.meta_block_tables + (int64_t)b * p.max_meta_pages_per_seq;
  const int len = __ldg(p.seq_lens + b);
  const int tsu = __ldg(p.tokens_since_update + b);
  const int page_in = (int)threadIdx.x < npg ? __ldg(mbt + pg0 + threadIdx.x) : -1;
  // q-bar: the G query rows of KV head n, 4 rows' loads in flight at a time, summed in row order.
  const bool has_ch = lt < cpr;  // lanes past the row's chunks idle (D / chunk not a power of two)
  float qs[VE];
#pragma unroll
  for (int e = 0; e < VE; ++e) qs[e] = 0.f;
  const int64_t qrow0 = (int64_t)b * H + (int64_t)n * G;
  for (int g0 = 0; g0 < G; g0 += 4) {
    float x[4][VE];
#pragma unroll
    for (int gg = 0; gg < 4; ++gg) {
      if (g0 + gg < G && has_ch) {
        load_any_vec<VE>(p.query, p.query_dtype, (qrow0 + g0 + gg) * D + lt * VE, x[gg]);
      } else {
#pragma unroll
        for (int e = 0; e < VE; ++e) x[gg][e] = 0.f;
      }
    }
#pragma unroll
    for (int gg = 0; gg < 4; ++gg)
#pragma unroll
      for (int e = 0; e < VE; ++e) qs[e] += x[gg][e];
  }
  // Length checks: every block of a row takes the same early return, so none of them arrives on
  // the row's counter and it stays zero.
  const bool reporter = split == 0 && n == 0 && threadIdx.x == 0;
  if (len < 0) {
    if (reporter) report(err, kErrNegSeqLen, kFamQuestSelect, 0, b, 0, 0, len, 0);
    return;
  }
  if (tsu < 0 || tsu > len) {
    if (reporter) report(err, kErrTokensSince, kFamQuestSelect, 0, b, 0, 0, tsu, len);
    return;
  }
  const int64_t L64 = ((int64_t)len + bs - 1) / bs;
  if (L64 > lcap) {
    if (reporter) report(err, kErrTableWidth, kFamQuestSelect, kTabMeta, b, 0, 0, (L64 + R - 1) / R, p.max_meta_pages_per_seq);
    return;
  }
  const int j1 = min(jcap, (int)L64);  // this block scores [j0, j1)
  if ((int)threadIdx.x < npg) {
    const bool bad = page_in < 0 || page_in >= p.num_meta_pages;
    if (bad && j1 > j0 && pg0 + (int)threadIdx.x <= (j1 - 1) / R)
      report(err, kErrTableId, kFamQuestSelect, kTabMeta, b, pg0 + threadIdx.x, 0, page_in, p.num_meta_pages);
    s_page[threadIdx.x] = bad ? -1 : page_in;
  }
  float qp[VE], qn[VE];
#pragma unroll
  for (int e = 0; e < VE; ++e) {
    const float q = qs[e] / (float)G;
    qp[e] = fmaxf(q, 0.f);
    qn[e] = fminf(q, 0.f);
  }
  __syncthreads();
  const T* maxm = static_cast<const T*>(p.max_meta);
  const T* minm = static_cast<const T*>(p.min_meta);
  const int64_t row_elems = (int64_t)N * D;
  float* srow = scores + (int64_t)row * lcap;
  for (int j = j0 + team; j < j1; j += nteams * U) {
    uint4 vmx[U], vmn[U];
    bool ok[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int ju = j + u * nteams;
      ok[u] = false;
      if (ju < j1) {
        const int pj = ju / R;
        const int page = s_page[pj - pg0];
        if (page >= 0) {
          ok[u] = true;
          const int64_t off = ((int64_t)page * R + (ju - pj * R)) * row_elems + (int64_t)n * D + lt * VE;
          if (has_ch) {
            vmx[u] = __ldg(reinterpret_cast<const uint4*>(maxm + off));
            vmn[u] = __ldg(reinterpret_cast<const uint4*>(minm + off));
          }
        }
      }
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int ju = j + u * nteams;
      if (ju >= j1) break;  // uniform across the team
      float acc = 0.f;
      if (ok[u] && has_ch) {
        float fx[VE], fn[VE];
        Vec16<T>::widen(vmx[u], fx);
        Vec16<T>::widen(vmn[u], fn);
#pragma unroll
        for (int e = 0; e < VE; ++e) acc = fmaf(qp[e], fx[e], fmaf(qn[e], fn[e], acc));
      }
      for (int o = TL >> 1; o > 0; o >>= 1) acc += __shfl_xor_sync(tmask, acc, o);
      if (lt == 0) srow[ju] = ok[u] ? acc : -INFINITY;
    }
  }
  // Arrive on the row's counter: thread 0's acq_rel atomic releases the block's score stores
  // (ordered before it by the barrier) and, in the last block, acquires every other block's; the
  // scores are then read through L2. (A __threadfence before a relaxed atomic and one after it in
  // every thread of the last block measured 0.6 us slower at B=1.) The last arrival resets it.
  __syncthreads();
  if (threadIdx.x == 0) {
    const bool last = atomic_add_acq_rel(counters + row, 1) == splits - 1;
    if (last) counters[row] = 0;
    s_last = last;
  }
  __syncthreads();
  if (!s_last) return;
  topk_row_reg<NT, KPT>(p, srow, row, len, tsu);
}

using ScoresKernel = void (*)(QuestSelectParams, float*, int, int64_t, DevError*);

// The dispatch table shared by supports() and launch(): metadata dtype; the query dtype is read
// at run time (it is a few hundred bytes).
// One 16-byte chunk per lane when a metadata row fits 32 lanes (fewer registers, more blocks/SM).
ScoresKernel pick(const QuestSelectParams& p) {
  const bool one = p.head_dim / (16 / (int)dtype_size(p.meta_dtype)) <= 32;
  switch (p.meta_dtype) {
    case DType::f32: return one ? quest_scores_kernel<float, 1> : quest_scores_kernel<float, 2>;
    case DType::f16: return one ? quest_scores_kernel<__half, 1> : quest_scores_kernel<__half, 2>;
    case DType::bf16: return one ? quest_scores_kernel<__nv_bfloat16, 1> : quest_scores_kernel<__nv_bfloat16, 2>;
    default: return nullptr;
  }
}

using MeanKernel = void (*)(QuestSelectParams, float*, int, int64_t, int, DevError*);

// The 'mean' fast path: chunks per lane (CPL) and team width (TL, a power of two); null when the
// team count is not a multiple of N (then the general kernel runs).
MeanKernel pick_mean(const QuestSelectParams& p, int* TL) {
  if (p.group_reduce != GroupReduce::mean) return nullptr;
  const int ve = 16 / (int)dtype_size(p.meta_dtype), cpr = p.head_dim / ve;
  const int cpl = cpr >= 4 ? 2 : 1;
  const int need = (cpr + cpl - 1) / cpl;
  int tl = 1;
  while (tl < need) tl <<= 1;
  if (tl > 32 || (kMeanThreads / tl) % p.num_kv_heads != 0) return nullptr;
  *TL = tl;
  switch (p.meta_dtype) {
    case DType::f32: return cpl == 2 ? quest_scores_mean_kernel<float, 2> : quest_scores_mean_kernel<float, 1>;
    case DType::f16: return cpl == 2 ? quest_scores_mean_kernel<__half, 2> : quest_scores_mean_kernel<__half, 1>;
    case DType::bf16: return cpl == 2 ? quest_scores_mean_kernel<__nv_bfloat16, 2> : quest_scores_mean_kernel<__nv_bfloat16, 1>;
    default: return nullptr;
  }
}

using FusedKernel = void (*)(QuestSelectParams, float*, int*, int, int, int, int, DevError*);

template <class T>
FusedKernel fused_by_kpt(int64_t lcap) {
  return lcap <= kFusedThreads * 8 ? quest_select_fused_kernel<T, 8> : quest_select_fused_kernel<T, 16>;
}

// The one-launch path: groupReduce 'mean', metadata rows of at most 32 16-byte chunks per head
// (one per lane of a team of TL, a power of two), rows of at most kFusedThreads * 16 blocks (the
// top-k keeps them in registers). Null otherwise, or with SA_CUDA_QS_FUSED=0 (the two-kernel path,
// for A/B runs).
FusedKernel pick_fused(const QuestSelectParams& p, int64_t lcap, int* TL) {
  const int ve = 16 / (int)dtype_size(p.meta_dtype), cpr = p.head_dim / ve;
  if (p.group_reduce != GroupReduce::mean || lcap > kFusedThreads * 16 || cpr > 32) return nullptr;
  const char* fe = std::getenv("SA_CUDA_QS_FUSED");
  if (fe && std::string(fe) == "0") return nullptr;
  int tl = 1;
  while (tl < cpr) tl <<= 1;
  *TL = tl;
  switch (p.meta_dtype) {
    case DType::f32: return fused_by_kpt<float>(lcap);
    case DType::f16: return fused_by_kpt<__half>(lcap);
    case DType::bf16: return fused_by_kpt<__nv_bfloat16>(lcap);
    default: return nullptr;
  }
}

size_t query_smem(const QuestSelectParams& p) {
  const int G = p.num_qo_heads / p.num_kv_heads;
  const int RG = p.group_reduce == GroupReduce::per_head ? G : 1;
  return (size_t)p.num_kv_heads * RG * p.head_dim * 4;
}

}  // namespace

Status supports_quest_select(const QuestSelectParams& p) {
  const char* fam = "quest_select (cuda): ";
  if (p.query_dtype != DType::f32 && p.query_dtype != DType::f16 && p.query_dtype != DType::bf16)
    return Status::unsupported(std::string(fam) + "query dtype " + dtype_name(p.query_dtype) + " unsupported; supported: f32, f16, bf16");
  if (!pick(p))
    return Status::unsupported(std::string(fam) + "maxMeta dtype " + dtype_name(p.meta_dtype) + " unsupported; supported: f32, f16, bf16");
  const int ve = 16 / (int)dtype_size(p.meta_dtype);
  const int maxd = ve * 32 * kMaxChunksAll;
  if (p.head_dim % ve != 0 || p.head_dim > maxd)
    return Status::unsupported(std::string(fam) + "headDim " + std::to_string(p.head_dim) + " unsupported with " +
                               dtype_name(p.meta_dtype) + " metadata; supported: multiples of " + std::to_string(ve) +
                               " up to " + std::to_string(maxd));
  if (query_smem(p) > 200 * 1024)
    return Status::unsupported(std::string(fam) + "query rows of " + std::to_string(query_smem(p)) +
                               " bytes exceed shared memory; supported: rows x headDim x 4 <= 200 KiB (rows = numKvHeads, or numQoHeads with perHead)");
  return Status::Ok();
}

Status launch_topk(const QuestSelectParams& p, const float* scores, int64_t lcap, int64_t rows, const Launch& l);

Status launch_quest_select(const QuestSelectParams& p, const Launch& l) {
  if (p.num_seqs == 0) return Status::Ok();
  const int64_t lcap = (int64_t)p.max_meta_pages_per_seq * p.meta_rows;  // most logical blocks a row can have
  const int G = p.num_qo_heads / p.num_kv_heads;
  const int RG = p.group_reduce == GroupReduce::per_head ? G : 1;
  const int64_t rows = (int64_t)p.num_seqs * p.num_kv_heads * RG;
  // Chunk so that the whole GPU reads the metadata: about 4 thread blocks per SM, at least 8 blocks
  // (8 whole metadata rows) each.
  const int64_t total = (int64_t)p.num_seqs * std::max<int64_t>(lcap, 1);
  int64_t chunk = (total + 4LL * l.num_sms - 1) / (4LL * l.num_sms);
  chunk = std::min<int64_t>(std::max<int64_t>(chunk, 8), 1 << 20);
  const int64_t chunks = std::max<int64_t>((lcap + chunk - 1) / chunk, 1);
  SA_RETURN_IF_ERROR(check_grid("quest_select", chunks, p.num_seqs, 1));
  SA_RETURN_IF_ERROR(check_grid("quest_select", rows, 1, 1));
  if (lcap * p.num_kv_heads >= (1LL << 31))
    return Status::unsupported("quest_select (cuda): metaBlockTables columns x metaRows x numKvHeads must stay below 2^31");
  void* ws = nullptr;
  SA_RETURN_IF_ERROR(l.ws->get((size_t)(rows * std::max<int64_t>(lcap, 1)) * sizeof(float), &ws));
  float* scores = static_cast<float*>(ws);
  int TL = 0;
  if (FusedKernel fk = pick_fused(p, lcap, &TL)) {
    // As many blocks as fit one wave (occupancy), rounded down to whole rows (SA_CUDA_QS_BPS=n:
    // about n blocks per SM instead); a chunk's metadata pages must fit the kernel's page table
    // (kFusedThreads entries).
    const char* be = std::getenv("SA_CUDA_QS_BPS");
    const int64_t bps = be ? std::max(0, std::atoi(be)) : 0;
    const int64_t cap = std::max<int64_t>(lcap, 1);
    int64_t splits = std::max<int64_t>((bps * l.num_sms + rows - 1) / rows, 1);
    if (bps == 0) {
      int occ = 1;
      SA_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, fk, kFusedThreads, 0));
      splits = std::max<int64_t>((int64_t)std::max(occ, 1) * l.num_sms / rows, 1);
    }
    int64_t fchunk = (cap + splits - 1) / splits;
    fchunk = std::max<int64_t>(std::min<int64_t>(fchunk, (int64_t)(kFusedThreads - 1) * p.meta_rows), 1);
    splits = (cap + fchunk - 1) / fchunk;
    SA_RETURN_IF_ERROR(check_grid("quest_select", rows * splits, 1, 1));
    int* counters = nullptr;
    SA_RETURN_IF_ERROR(l.ws->counters((size_t)rows, &counters));
    fk<<<(unsigned)(rows * splits), kFusedThreads, 0, l.stream>>>(p, scores, counters, (int)splits, (int)fchunk, (int)lcap, TL, l.err);
    SA_CUDA_LAUNCH_CHECK();
    return Status::Ok();
  }
  if (MeanKernel mk = pick_mean(p, &TL); mk && !std::getenv("SA_CUDA_QS_GENERIC")) {
    mk<<<dim3((unsigned)chunks, (unsigned)p.num_seqs), kMeanThreads, 0, l.stream>>>(p, scores, (int)chunk, lcap, TL, l.err);
    SA_CUDA_LAUNCH_CHECK();
    return launch_topk(p, scores, lcap, rows, l);
  }
  ScoresKernel sk = pick(p);
  const size_t qs = query_smem(p);
  if (qs > 48 * 1024) {
    if ((int)qs > l.smem_optin) return Status::unsupported("quest_select (cuda): query rows need " + std::to_string(qs) + " bytes of shared memory");
    SA_CUDA_CHECK(cudaFuncSetAttribute(sk, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)qs));
  }
  sk<<<dim3((unsigned)chunks, (unsigned)p.num_seqs), kThreads, qs, l.stream>>>(p, scores, (int)chunk, lcap, l.err);
  SA_CUDA_LAUNCH_CHECK();
  return launch_topk(p, scores, lcap, rows, l);
}

Status launch_topk(const QuestSelectParams& p, const float* scores, int64_t lcap, int64_t rows, const Launch& l) {
  // Programmatic dependent launch on sm_90+ (SA_CUDA_NO_PDL=1 turns it off): the top-k blocks are
  // scheduled while the scores finish and wait for them on the device (pdl_wait).
  int dev = 0, major = 0;
  SA_CUDA_CHECK(cudaGetDevice(&dev));
  SA_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
  const bool pdl = major >= 9 && !std::getenv("SA_CUDA_NO_PDL");
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3((unsigned)rows);
  cfg.blockDim = dim3(kSelThreads);
  cfg.stream = l.stream;
  cfg.attrs = pdl ? attr : nullptr;
  cfg.numAttrs = pdl ? 1 : 0;
  const char* te = std::getenv("SA_CUDA_QS_TOPK");
  const bool old = te && std::string(te) == "old";
  // Candidates of a row: at most lcap (the forced blocks only shrink it); longer rows (or
  // SA_CUDA_QS_TOPK=old) take the shared-memory kernel.
  if (!old && lcap <= kSelThreads * 8) {
    auto kern = lcap <= kSelThreads * 4 ? quest_topk_reg_kernel<kSelThreads, 4> : quest_topk_reg_kernel<kSelThreads, 8>;
    SA_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kern, p, scores, lcap));
    return Status::Ok();
  }
  const size_t ks = (size_t)std::min<int64_t>(lcap, kKeyCache) * 4;
  static bool configured = false;
  if (!configured) {
    SA_CUDA_CHECK(cudaFuncSetAttribute(quest_topk_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kKeyCache * 4));
    configured = true;
  }
  cfg.dynamicSmemBytes = ks;
  SA_CUDA_CHECK(cudaLaunchKernelEx(&cfg, quest_topk_kernel, p, scores, lcap));
  return Status::Ok();
}

}  // namespace select_attn::cuda
