// quest_select on cuda (SPEC section 2): one fused kernel. Each (sequence, KV head) row's blocks
// are split over many thread blocks that score their share of the metadata (16-byte loads, the
// reads of one row spread over the whole GPU); the last thread block of a row to finish (an atomic
// counter) picks the top-k with a block-wide radix select over the row's scores, applies the forced
// blocks (stale, window, sinks), and writes the ids in ascending order. One launch, no host sync.
#include "launch.h"

namespace select_attn::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kUnroll = 4;        // blocks per team in flight
constexpr int kMaxChunks = 2;     // 16-byte chunks per lane per metadata row
constexpr int kKeyCache = 12288;  // candidate keys staged in shared memory (48 KB)

// Order-preserving map of an f32 score to uint32 (larger score -> larger key).
__device__ __forceinline__ uint32_t fkey(float f) {
  const uint32_t u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// Block-wide exclusive scan of v over kThreads threads; *total gets the sum. Contains barriers.
__device__ __forceinline__ int block_excl_scan(int v, int* s_warp, int* total) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  int x = v;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const int y = __shfl_up_sync(0xffffffffu, x, o);
    if (lane >= o) x += y;
  }
  __syncthreads();
  if (lane == 31) s_warp[warp] = x;
  __syncthreads();
  int before = 0, sum = 0;
#pragma unroll
  for (int w = 0; w < kWarps; ++w) {
    const int s = s_warp[w];
    if (w < warp) before += s;
    sum += s;
  }
  *total = sum;
  return before + x - v;
}

struct RowPlan {
  int L;       // logical blocks
  int fs;      // forced suffix [fs, L): stale and window blocks
  int npre;    // forced prefix [0, npre): sink blocks not in the suffix
  int count;   // min(k, L)
};

// Grid: (B*N rows, chunks); block: kThreads. blockIdx.y scores blocks
// [y*chunk_blocks, (y+1)*chunk_blocks) of row (b, n) = blockIdx.x into `scores` [B*N*RG, lcap]
// (RG = 1 for groupReduce mean, G for perHead); the row's last block to finish selects.
// Dynamic shared memory: max(RG*D floats (query rows), min(lcap, kKeyCache) keys).
template <class T>
__global__ void __launch_bounds__(kThreads) quest_select_kernel(QuestSelectParams p, float* scores, int* counters,
                                                                int chunk_blocks, int64_t lcap, DevError* err) {
  extern __shared__ float dyn[];
  __shared__ int s_warp[kWarps];
  __shared__ int s_hist[256];
  __shared__ int s_misc[2];
  __shared__ int s_last;
  constexpr int VE = 16 / sizeof(T);

  const int bn = blockIdx.x, b = bn / p.num_kv_heads, n = bn % p.num_kv_heads;
  const int H = p.num_qo_heads, G = H / p.num_kv_heads, D = p.head_dim, bs = p.block_size, R = p.meta_rows;
  const bool per_head = p.group_reduce == GroupReduce::per_head;
  const int RG = per_head ? G : 1;
  const bool reporter = blockIdx.y == 0 && n == 0 && threadIdx.x == 0;

  const int len = p.seq_lens[b];
  const int tsu = p.tokens_since_update[b];
  int L = 0;
  if (len < 0) {
    if (reporter) report(err, kErrNegSeqLen, kFamQuestSelect, 0, b, 0, 0, len, 0);
  } else if (tsu < 0 || tsu > len) {
    if (reporter) report(err, kErrTokensSince, kFamQuestSelect, 0, b, 0, 0, tsu, len);
  } else {
    L = (int)(((int64_t)len + bs - 1) / bs);
    if (L > lcap) {
      if (reporter) report(err, kErrTableWidth, kFamQuestSelect, kTabMeta, b, 0, 0, ((int64_t)L + R - 1) / R, p.max_meta_pages_per_seq);
      L = -1;  // nothing is read or written for this sequence
    }
  }

  // ---- phase 1: scores of this thread block's share of the row ----
  const int64_t j0 = (int64_t)blockIdx.y * chunk_blocks;
  const int64_t j1 = min64(j0 + chunk_blocks, L);
  if (j0 < j1) {
    const int qrows = RG * D;
    for (int i = threadIdx.x; i < qrows; i += kThreads) {
      const int r = i / D, d = i % D;
      float v;
      if (per_head) {
        v = load_any(p.query, p.query_dtype, ((int64_t)b * H + n * G + r) * D + d);
      } else {
        float s = 0.f;
        for (int g = 0; g < G; ++g) s += load_any(p.query, p.query_dtype, ((int64_t)b * H + n * G + g) * D + d);
        v = s / (float)G;
      }
      dyn[i] = v;
    }
    __syncthreads();
    // A team of TL lanes (power of two) scores one block; each lane owns up to kMaxChunks 16-byte
    // chunks of the block's max and min rows.
    const int cpr = D / VE;
    const int TL = cpr >= 32 ? 32 : (cpr > 16 ? 32 : cpr > 8 ? 16 : cpr > 4 ? 8 : cpr > 2 ? 4 : cpr > 1 ? 2 : 1);
    const int cpt = (cpr + TL - 1) / TL;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int tpw = 32 / TL, team_in_warp = lane / TL, lt = lane % TL;
    const int nteams = kThreads / TL;
    const T* maxm = static_cast<const T*>(p.max_meta);
    const T* minm = static_cast<const T*>(p.min_meta);
    const int64_t row_elems = (int64_t)p.num_kv_heads * D;
    float* srow = scores + (int64_t)bn * RG * lcap;
    // The loop bound is the warp's first block, so every lane of a warp runs the same iterations
    // (the team reductions below are warp-wide shuffles).
    for (int64_t jw = j0 + (int64_t)warp * tpw; jw < j1; jw += (int64_t)nteams * kUnroll) {
      uint4 vmx[kUnroll][kMaxChunks], vmn[kUnroll][kMaxChunks];
      bool ok[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t j = jw + team_in_warp + (int64_t)u * nteams;
        ok[u] = false;
        if (j < j1) {
          const int32_t page = p.meta_block_tables[(int64_t)b * p.max_meta_pages_per_seq + j / R];
          if (page < 0 || page >= p.num_meta_pages) {
            if (lt == 0) report(err, kErrTableId, kFamQuestSelect, kTabMeta, b, (int)(j / R), 0, page, p.num_meta_pages);
          } else {
            ok[u] = true;
            const int64_t off = ((int64_t)page * R + j % R) * row_elems + (int64_t)n * D;
#pragma unroll
            for (int c = 0; c < kMaxChunks; ++c) {
              const int ch = lt + c * TL;
              if (c < cpt && ch < cpr) {
                vmx[u][c] = __ldg(reinterpret_cast<const uint4*>(maxm + off + ch * VE));
                vmn[u][c] = __ldg(reinterpret_cast<const uint4*>(minm + off + ch * VE));
              }
            }
          }
        }
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t j = jw + team_in_warp + (int64_t)u * nteams;
        if (jw + (int64_t)u * nteams >= j1) break;  // warp-uniform
        float fmx[kMaxChunks][VE], fmn[kMaxChunks][VE];
#pragma unroll
        for (int c = 0; c < kMaxChunks; ++c) {
          if (c < cpt && ok[u] && lt + c * TL < cpr) {
            Vec16<T>::widen(vmx[u][c], fmx[c]);
            Vec16<T>::widen(vmn[u][c], fmn[c]);
          } else {
#pragma unroll
            for (int e = 0; e < VE; ++e) fmx[c][e] = fmn[c][e] = 0.f;
          }
        }
        for (int r = 0; r < RG; ++r) {
          const float* q = dyn + r * D;
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
          if (lt == 0 && j < j1) srow[(int64_t)r * lcap + j] = ok[u] ? acc : -INFINITY;
        }
      }
    }
  }

  // ---- the row's last thread block to finish selects ----
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) {
    const int done = atomicAdd(&counters[bn], 1);
    s_last = done == (int)gridDim.y - 1;
    if (s_last) atomicExch(&counters[bn], 0);  // ready for the next launch
  }
  __syncthreads();
  if (!s_last || L < 0) return;
  __threadfence();

  RowPlan pl;
  pl.L = L;
  if (L > 0) {
    const int stale = (len - tsu) / bs;
    pl.fs = max(0, min(L - p.window_blocks, stale));
    pl.npre = min(p.sink_blocks, pl.fs);
  } else {
    pl.fs = pl.npre = 0;
  }
  pl.count = min(p.k, L);
  const int k = p.k;
  const int nsuf = L - pl.fs;

  for (int r = 0; r < RG; ++r) {
    const int64_t orow = (int64_t)bn * RG + r;
    int32_t* out = p.selected + orow * k;
    const float* srow = scores + orow * lcap;
    if (p.maybe_num_selected && threadIdx.x == 0) p.maybe_num_selected[orow] = pl.count;
    // Pad first; the selected ids overwrite slots [0, count).
    for (int i = threadIdx.x + pl.count; i < k; i += kThreads) out[i] = -1;
    if (nsuf >= k) {  // only stale/window blocks, newest first
      for (int i = threadIdx.x; i < k; i += kThreads) out[i] = L - k + i;
      continue;
    }
    if (nsuf + pl.npre >= k) {  // suffix plus the first sink blocks
      const int take = k - nsuf;
      for (int i = threadIdx.x; i < k; i += kThreads) out[i] = i < take ? i : pl.fs + (i - take);
      continue;
    }
    const int C = pl.fs - pl.npre, need = k - nsuf - pl.npre;
    if (need >= C) {  // every block
      for (int i = threadIdx.x; i < L; i += kThreads) out[i] = i;
      continue;
    }
    // Candidates [npre, fs): radix-select the need-th largest key, 8 bits per pass.
    for (int i = threadIdx.x; i < pl.npre; i += kThreads) out[i] = i;
    for (int i = threadIdx.x; i < nsuf; i += kThreads) out[pl.npre + need + i] = pl.fs + i;
    const bool cached = C <= kKeyCache;
    uint32_t* keys = reinterpret_cast<uint32_t*>(dyn);
    __syncthreads();  // dyn held the query rows
    if (cached)
      for (int i = threadIdx.x; i < C; i += kThreads) keys[i] = fkey(__ldcg(srow + pl.npre + i));
    __syncthreads();
    auto key_at = [&](int i) -> uint32_t { return cached ? keys[i] : fkey(__ldcg(srow + pl.npre + i)); };
    uint32_t prefix = 0, mask = 0;
    int remaining = need;
    for (int pass = 0; pass < 4; ++pass) {
      const int shift = 24 - 8 * pass;
      for (int i = threadIdx.x; i < 256; i += kThreads) s_hist[i] = 0;
      __syncthreads();
      // Keys often share their high bits (scores of one row have similar exponents): aggregate
      // equal bins within the warp so one lane adds for all (no 32-way shared-atomic serialization).
      for (int base = 0; base < C; base += kThreads) {
        const int i = base + threadIdx.x;
        const uint32_t u = i < C ? key_at(i) : 0u;
        const bool in = i < C && (u & mask) == prefix;
        const unsigned act = __ballot_sync(0xffffffffu, in);
        if (in) {
          const int bin = (u >> shift) & 255;
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
              break;
            }
            rem -= cnt[q];
          }
        }
      }
      __syncthreads();
      prefix |= (uint32_t)s_misc[0] << shift;
      mask |= 0xffu << shift;
      remaining = s_misc[1];
      __syncthreads();
    }
    const uint32_t tau = prefix;
    const int need_eq = remaining;  // keys equal to tau still to take, smallest ids first
    int carry_eq = 0, carry_sel = 0;
    for (int base = 0; base < C; base += kThreads) {
      const int i = base + threadIdx.x;
      const uint32_t u = i < C ? key_at(i) : 0u;
      const int is_gt = i < C && u > tau, is_eq = i < C && u == tau;
      int tot_eq, tot_sel;
      const int eq_rank = carry_eq + block_excl_scan(is_eq, s_warp, &tot_eq);
      const int sel = is_gt || (is_eq && eq_rank < need_eq);
      const int pos = carry_sel + block_excl_scan(sel, s_warp, &tot_sel);
      if (sel) out[pl.npre + pos] = pl.npre + i;
      carry_eq += tot_eq;
      carry_sel += tot_sel;
    }
    __syncthreads();
  }
}

using Kernel = void (*)(QuestSelectParams, float*, int*, int, int64_t, DevError*);

// The dispatch table shared by supports() and launch(): metadata dtype; the query dtype is read
// at run time (it is a few hundred bytes).
Kernel pick(const QuestSelectParams& p) {
  switch (p.meta_dtype) {
    case DType::f32: return quest_select_kernel<float>;
    case DType::f16: return quest_select_kernel<__half>;
    case DType::bf16: return quest_select_kernel<__nv_bfloat16>;
    default: return nullptr;
  }
}

size_t dyn_smem(const QuestSelectParams& p, int64_t lcap) {
  const int G = p.num_qo_heads / p.num_kv_heads;
  const int RG = p.group_reduce == GroupReduce::per_head ? G : 1;
  return std::max<size_t>((size_t)RG * p.head_dim * 4, (size_t)std::min<int64_t>(lcap, kKeyCache) * 4);
}

}  // namespace

Status supports_quest_select(const QuestSelectParams& p) {
  const char* fam = "quest_select (cuda): ";
  if (p.query_dtype != DType::f32 && p.query_dtype != DType::f16 && p.query_dtype != DType::bf16)
    return Status::unsupported(std::string(fam) + "query dtype " + dtype_name(p.query_dtype) + " unsupported; supported: f32, f16, bf16");
  if (!pick(p))
    return Status::unsupported(std::string(fam) + "maxMeta dtype " + dtype_name(p.meta_dtype) + " unsupported; supported: f32, f16, bf16");
  const int ve = 16 / (int)dtype_size(p.meta_dtype);
  const int maxd = ve * 32 * kMaxChunks;
  if (p.head_dim % ve != 0 || p.head_dim > maxd)
    return Status::unsupported(std::string(fam) + "headDim " + std::to_string(p.head_dim) + " unsupported with " +
                               dtype_name(p.meta_dtype) + " metadata; supported: multiples of " + std::to_string(ve) +
                               " up to " + std::to_string(maxd));
  const int G = p.num_qo_heads / p.num_kv_heads;
  if (p.group_reduce == GroupReduce::per_head && (size_t)G * p.head_dim * 4 > 200 * 1024)
    return Status::unsupported(std::string(fam) + "groupReduce perHead with " + std::to_string(G) + " query heads per KV head x headDim " +
                               std::to_string(p.head_dim) + " exceeds shared memory; supported: G * headDim <= 51200");
  return Status::Ok();
}

Status launch_quest_select(const QuestSelectParams& p, const Launch& l) {
  const int64_t rows = (int64_t)p.num_seqs * p.num_kv_heads;
  const int64_t lcap = (int64_t)p.max_meta_pages_per_seq * p.meta_rows;  // most logical blocks a row can have
  if (rows == 0) return Status::Ok();
  const int G = p.num_qo_heads / p.num_kv_heads;
  const int RG = p.group_reduce == GroupReduce::per_head ? G : 1;
  // Chunk so that the whole GPU reads the metadata: about 4 thread blocks per SM in all.
  const int64_t total = rows * std::max<int64_t>(lcap, 1);
  int64_t chunk = (total + 4LL * l.num_sms - 1) / (4LL * l.num_sms);
  chunk = std::min<int64_t>(std::max<int64_t>((chunk + 15) / 16 * 16, 32), 4096);
  const int64_t chunks = std::max<int64_t>((lcap + chunk - 1) / chunk, 1);
  SA_RETURN_IF_ERROR(check_grid("quest_select", rows, chunks, 1));
  void* ws = nullptr;
  SA_RETURN_IF_ERROR(l.ws->get((size_t)(rows * RG * std::max<int64_t>(lcap, 1)) * sizeof(float), &ws));
  int* counters = nullptr;
  SA_RETURN_IF_ERROR(l.ws->counters((size_t)rows, &counters));
  Kernel k = pick(p);
  const size_t smem = dyn_smem(p, lcap);
  if (smem + 2048 > 48 * 1024) {  // dynamic + static (histogram, scan words) past the default limit
    if ((int)smem > l.smem_optin)
      return Status::unsupported("quest_select (cuda): needs " + std::to_string(smem) + " bytes of shared memory, the device has " +
                                 std::to_string(l.smem_optin));
    SA_CUDA_CHECK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
  }
  k<<<dim3((unsigned)rows, (unsigned)chunks), kThreads, smem, l.stream>>>(p, static_cast<float*>(ws), counters, (int)chunk, lcap, l.err);
  SA_CUDA_LAUNCH_CHECK();
  return Status::Ok();
}

}  // namespace select_attn::cuda
