// Paged attention on tensor cores (mma.sync m16n8k16, f16/bf16; sm_80 and sm_90): the kernel for
// multi-query and chunked prefill (and block-sparse attention with many queries); calls whose
// packed rows fit 16 take attn_decode.cuh. A thread block owns M packed
// query rows (query token x query head of one KV group, so each K/V tile is read once per group)
// and one share (split) of the visible keys. K/V tiles of TN tokens are gathered row by row through
// the block table (any blockSize) or the Quest block selection with a cp.async pipeline into
// swizzled shared memory (rows resolved ahead in a register pipeline). Online softmax in f32 (FlashAttention-2 style). Decode (M = 16) splits
// each tile's keys over the 4 warps and merges them at the end; prefill (M = 64) gives each warp
// 16 rows. Splits > 1 write f32 partials that attn_merge combines.
#pragma once
#include <algorithm>
#include <cstdlib>

#include "attn_common.cuh"

namespace select_attn::cuda {

template <int D, int WM>
struct TcCfg {
  static constexpr int kThreads = 128;
  static constexpr int WN = 4 / WM;                          // warps sharing one tile's keys
  static constexpr int M = 16 * WM;                          // packed query rows per thread block
  static constexpr int TN = (D == 256 && WM == 4) ? 32 : 64; // keys per tile
  static constexpr int KW = TN / WN;                         // keys per warp per tile
  static constexpr int SD = (D + 63) / 64 * 64;              // smem row stride (elements), whole swizzle groups
  static constexpr int CPR = D / 8;                          // 16-byte chunks per K/V row
  static constexpr int TILE_BYTES = TN * SD * 2;
  static constexpr int STAGE_BYTES = 2 * TILE_BYTES;         // K and V
  // Decode (WM = 1) keeps 2 stages so 3 thread blocks fit an SM; prefill keeps 3.
  static constexpr int STAGES = (WM == 1 || STAGE_BYTES > 16384) ? 2 : 3;
  static constexpr int RSLOTS = STAGES + 1;                   // resolved-row ring (see the row pipeline)
  static constexpr int Q_BYTES = M * SD * 2;
  static constexpr int EPI_BYTES = 64 * D * 4 + 2 * 64 * 4;  // per-warp O [WN][16*WM][D] f32 + m, l
  static constexpr int PIPE_BYTES = STAGES * STAGE_BYTES > EPI_BYTES ? STAGES * STAGE_BYTES : EPI_BYTES;
  static constexpr int ROW_BYTES = RSLOTS * TN * 12;   // per row: element offset (int64) + key position (int32)
  static constexpr int SMEM = Q_BYTES + PIPE_BYTES + ROW_BYTES;
  static_assert(KW % 16 == 0, "each warp needs whole k16 steps of keys");
};

// Element offset of (row, 16-byte chunk) in a swizzled tile: chunk ^ (row % 8) keeps the 8 rows
// an ldmatrix reads in distinct banks.
template <int SD>
__device__ __forceinline__ int swz(int row, int chunk) {
  return row * SD + ((chunk ^ (row & 7)) << 3);
}

// Grid: (query tiles of M packed rows, B * head groups, splits); block: 128 threads (4 warps).
// Dynamic shared memory: TcCfg::SMEM.
template <class T, int D, int WM>
__global__ void __launch_bounds__(128) attn_tc_kernel(PagedAttentionParams p, AttnPlan plan, DevError* err) {
  using C = TcCfg<D, WM>;
  extern __shared__ __align__(128) unsigned char smem[];
  T* sQ = reinterpret_cast<T*>(smem);                                   // [M][SD] swizzled
  unsigned char* pipe = smem + C::Q_BYTES;                              // STAGES x (K [TN][SD], V [TN][SD])
  int64_t* sRowOff = reinterpret_cast<int64_t*>(smem + C::Q_BYTES + C::PIPE_BYTES);  // [RSLOTS][TN], -1 = no row
  int* sKpos = reinterpret_cast<int*>(sRowOff + C::RSLOTS * C::TN);                    // [RSLOTS][TN], -1 = masked

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = warp / C::WN, wn = warp % C::WN;
  const int qtile = gridDim.x - 1 - blockIdx.x;  // heaviest (latest) query tiles first
  const int b = blockIdx.y / plan.head_groups, hg = blockIdx.y % plan.head_groups;
  const int split = blockIdx.z;
  const int H = p.num_qo_heads, N = p.num_kv_heads, G = H / N, hp = plan.hp;
  const int h0 = hg * hp, n = h0 / G;
  const bool reporter = blockIdx.x == 0 && hg == 0 && split == 0 && tid == 0;

  const SeqInfo s = seq_info(p, b, reporter, err);
  if (!s.ok) return;
  const int rows = s.qlen * hp;  // packed rows of this sequence and head group
  const int r0 = qtile * C::M;
  if (r0 >= rows) return;
  const int sel_row = p.maybe_block_selection ? (p.sel_rows == N ? b * N + n : b * H + h0) : 0;

  // Visible keys of this tile's rows, in tiles of TN, and this split's share of them.
  const int64_t first_q = s.len - s.qlen;
  const int i_lo = r0 / hp, i_hi = min(rows - 1, r0 + C::M - 1) / hp;
  KeyRange kr;
  if (p.maybe_block_selection) {
    kr.n1 = 0;
    kr.start2 = 0;
    kr.n2 = ((int64_t)p.sel_k * p.block_size + C::TN - 1) / C::TN;
  } else {
    kr = key_range(p, s.len, first_q + i_lo, first_q + i_hi, C::TN);
  }
  const int64_t ntiles = kr.count();
  const int64_t v0 = ntiles * split / plan.splits, v1 = ntiles * (split + 1) / plan.splits;

  // ---- Q tile: rows r -> (token r / hp, head h0 + r % hp); rows past the sequence are zero ----
  for (int idx = tid; idx < C::M * C::CPR; idx += C::kThreads) {
    const int r = idx / C::CPR, c = idx % C::CPR;
    const int rr = r0 + r;
    uint4 v = make_uint4(0, 0, 0, 0);
    if (rr < rows) {
      const int64_t qrow = s.qstart + rr / hp;
      const T* src = static_cast<const T*>(p.q) + (qrow * H + h0 + rr % hp) * D + c * 8;
      v = *reinterpret_cast<const uint4*>(src);
    }
    *reinterpret_cast<uint4*>(sQ + swz<C::SD>(r, c)) = v;
  }

  // ---- row resolution, pipelined in registers: for row r of a tile, thread r (< TN) finds the
  // logical block (A: arithmetic, or a load from the selection), its physical block (B: a table
  // load) and the key position + element offset (C, into a ring of STAGES + 1 shared slots). A runs
  // two tiles ahead and B one tile ahead of C, so no table load sits on a tile's critical path.
  // Rows without a key are zero-filled (never read) and masked.
  const T* kc = static_cast<const T*>(p.k_cache);
  const T* vc = static_cast<const T*>(p.v_cache);
  const int32_t* table = p.block_tables + (int64_t)b * p.max_blocks_per_seq;
  const int32_t* selrow = p.maybe_block_selection ? p.maybe_block_selection + (int64_t)sel_row * p.sel_k : nullptr;
  const bool sel_sorted = selrow ? selection_sorted(selrow, p.sel_k) : true;  // barrier: every thread is here
  auto vkey = [&](int64_t v) { return (int)(kr.unit(v) * C::TN) + tid; };  // virtual key of this thread's row
  const RowResolver<D> res{p, s, table, selrow, sel_sorted, b, sel_row, n, err};
  auto stepA = [&](int64_t v) -> int { return v < v1 ? res.logical(vkey(v)) : -1; };
  auto stepB = [&](int id) -> int { return res.physical(id); };
  auto stepC = [&](int64_t v, int id, int blk) {
    int pos = -1;
    int64_t off = -1;
    if (v < v1 && id != -1) res.resolve(vkey(v), id, blk, &pos, &off);
    const int slot = (int)((v - v0) % C::RSLOTS);
    sRowOff[slot * C::TN + tid] = off;
    sKpos[slot * C::TN + tid] = pos;
  };
  // 16-byte copies of tile v into a stage, from the resolved rows of its slot.
  auto copy_tile = [&](int64_t v, int stage) {
    T* sK = reinterpret_cast<T*>(pipe + stage * C::STAGE_BYTES);
    T* sV = reinterpret_cast<T*>(pipe + stage * C::STAGE_BYTES + C::TILE_BYTES);
    const int64_t* ro = sRowOff + (int)((v - v0) % C::RSLOTS) * C::TN;
#pragma unroll
    for (int idx = tid; idx < C::TN * C::CPR; idx += C::kThreads) {
      const int r = idx / C::CPR, c = idx % C::CPR;
      const int64_t off = ro[r];
      const int64_t src = off < 0 ? 0 : off + c * 8;
      cp_async16(sK + swz<C::SD>(r, c), kc + src, off < 0 ? 0 : 16);
      cp_async16(sV + swz<C::SD>(r, c), vc + src, off < 0 ? 0 : 16);
    }
  };

  // ---- per-thread rows: g and g + 8 of the warp's 16 ----
  const int g = lane >> 2, cq = lane & 3;
  int qpos[2];
  int head[2];
#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    const int rr = r0 + wm * 16 + g + hr * 8;
    qpos[hr] = (int)first_q + rr / hp;
    head[hr] = h0 + rr % hp;
  }
  float o[D / 8][4];
#pragma unroll
  for (int i = 0; i < D / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.f, 0.f};
  // No softcap, ALiBi or window: a logit is the scaled score or -inf (the common case, cheap).
  const bool plain = !(p.softcap > 0.f) && !p.maybe_alibi_slopes && p.sliding_window == 0;
  const bool upper = p.causal || p.sliding_window > 0;
  const float c2 = p.scale * kLog2e;

  // ---- the pipeline ----
  int idA = -1, idB = -1, blkB = -1;
  if (tid < C::TN) {
    for (int st = 0; st < C::STAGES; ++st) {
      const int id = stepA(v0 + st);
      stepC(v0 + st, id, stepB(id));
    }
    idB = stepA(v0 + C::STAGES);
    blkB = stepB(idB);
    idA = stepA(v0 + C::STAGES + 1);
  }
  __syncthreads();
#pragma unroll
  for (int st = 0; st < C::STAGES - 1; ++st) {
    if (v0 + st < v1) copy_tile(v0 + st, st);
    cp_async_commit();
  }
  for (int64_t v = v0; v < v1; ++v) {
    const int it = (int)(v - v0);
    const int stage = it % C::STAGES;
    cp_async_wait<C::STAGES - 2>();
    __syncthreads();
    if (v + C::STAGES - 1 < v1) copy_tile(v + C::STAGES - 1, (it + C::STAGES - 1) % C::STAGES);
    cp_async_commit();

    const T* sK = reinterpret_cast<const T*>(pipe + stage * C::STAGE_BYTES);
    const T* sV = reinterpret_cast<const T*>(pipe + stage * C::STAGE_BYTES + C::TILE_BYTES);
    const int* kpos = sKpos + (it % C::RSLOTS) * C::TN + wn * C::KW;

    // S = Q K^T over this warp's KW keys.
    float sc[C::KW / 8][4];
#pragma unroll
    for (int j = 0; j < C::KW / 8; ++j) sc[j][0] = sc[j][1] = sc[j][2] = sc[j][3] = 0.f;
    const int mi = lane >> 3, ri = lane & 7;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      uint32_t a[4];
      ldmatrix_x4(a, sQ + swz<C::SD>(wm * 16 + ri + (mi & 1) * 8, kk * 2 + (mi >> 1)));
#pragma unroll
      for (int j2 = 0; j2 < C::KW / 16; ++j2) {
        uint32_t bb[4];
        ldmatrix_x4(bb, sK + swz<C::SD>(wn * C::KW + j2 * 16 + ri + (mi >> 1) * 8, kk * 2 + (mi & 1)));
        mma_16816<T>(sc[2 * j2], a, bb);
        mma_16816<T>(sc[2 * j2 + 1], a, bb + 2);
      }
    }
    // Logits, masks, online softmax (rows g and g+8; a row's 4 owners are lanes 4g..4g+3).
    float mx[2] = {m_run[0], m_run[1]};
#pragma unroll
    for (int j = 0; j < C::KW / 8; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int hr = e >> 1;
        const int kp = kpos[j * 8 + 2 * cq + (e & 1)];
        const float x = plain ? ((kp >= 0 && (!upper || kp <= qpos[hr])) ? sc[j][e] * c2 : -INFINITY)
                              : logit2(p, sc[j][e], kp, qpos[hr], head[hr]);
        sc[j][e] = x;
        mx[hr] = fmaxf(mx[hr], x);
      }
    }
    softmax_m16(sc, o, mx, m_run, l_run);
    // O += P V: P from the score registers (the C layout of two n-tiles is an A fragment).
#pragma unroll
    for (int kb = 0; kb < C::KW / 16; ++kb) {
      uint32_t a[4];
      a[0] = pack2<T>(sc[2 * kb][0], sc[2 * kb][1]);
      a[1] = pack2<T>(sc[2 * kb][2], sc[2 * kb][3]);
      a[2] = pack2<T>(sc[2 * kb + 1][0], sc[2 * kb + 1][1]);
      a[3] = pack2<T>(sc[2 * kb + 1][2], sc[2 * kb + 1][3]);
#pragma unroll
      for (int d2 = 0; d2 < D / 16; ++d2) {
        uint32_t bb[4];
        ldmatrix_x4_trans(bb, sV + swz<C::SD>(wn * C::KW + kb * 16 + ri + (mi & 1) * 8, d2 * 2 + (mi >> 1)));
        mma_16816<T>(o[2 * d2], a, bb);
        mma_16816<T>(o[2 * d2 + 1], a, bb + 2);
      }
    }
    // Advance the row pipeline: C for tile v + STAGES, B one tile behind A.
    if (tid < C::TN) {
      stepC(v + C::STAGES, idB, blkB);
      idB = idA;
      blkB = stepB(idB);
      idA = stepA(v + C::STAGES + 2);
    }
  }
  cp_async_wait<0>();
  __syncthreads();  // the pipeline buffers become the epilogue buffers

  // ---- epilogue: per-warp (O, m, l) -> shared memory -> merged, normalized rows ----
  float* sO = reinterpret_cast<float*>(pipe);                 // [WN][M][D]
  float* sM = sO + 64 * D;                                     // [WN][M]
  float* sL = sM + 64;                                         // [WN][M]
#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    l_run[hr] += __shfl_xor_sync(0xffffffffu, l_run[hr], 1);
    l_run[hr] += __shfl_xor_sync(0xffffffffu, l_run[hr], 2);
  }
  const int rowA = wm * 16 + g;
  float* ow = sO + (size_t)wn * C::M * D;
#pragma unroll
  for (int i = 0; i < D / 8; ++i) {
    const int col = i * 8 + 2 * cq;
    ow[rowA * D + col] = o[i][0];
    ow[rowA * D + col + 1] = o[i][1];
    ow[(rowA + 8) * D + col] = o[i][2];
    ow[(rowA + 8) * D + col + 1] = o[i][3];
  }
  if (cq == 0) {
    sM[wn * C::M + rowA] = m_run[0];
    sM[wn * C::M + rowA + 8] = m_run[1];
    sL[wn * C::M + rowA] = l_run[0];
    sL[wn * C::M + rowA + 8] = l_run[1];
  }
  __syncthreads();
  const bool partial = plan.splits > 1;
  T* out = static_cast<T*>(p.out);
  for (int idx = tid; idx < C::M * (D / 2); idx += C::kThreads) {
    const int r = idx / (D / 2), d = (idx % (D / 2)) * 2;
    const int rr = r0 + r;
    if (rr >= rows) continue;
    float mstar = -INFINITY;
#pragma unroll
    for (int w = 0; w < C::WN; ++w) mstar = fmaxf(mstar, sM[w * C::M + r]);
    float lsum = 0.f, a0 = 0.f, a1 = 0.f;
    if (mstar != -INFINITY) {
#pragma unroll
      for (int w = 0; w < C::WN; ++w) {
        const float f = exp2f(sM[w * C::M + r] - mstar);
        lsum += sL[w * C::M + r] * f;
        a0 += sO[((size_t)w * C::M + r) * D + d] * f;
        a1 += sO[((size_t)w * C::M + r) * D + d + 1] * f;
      }
    }
    const float lse2 = (mstar == -INFINITY || lsum <= 0.f) ? -INFINITY : mstar + log2f(lsum);
    const float inv = lse2 == -INFINITY ? 0.f : 1.f / lsum;
    const int64_t qrow = s.qstart + rr / hp;
    const int h = h0 + rr % hp;
    if (partial) {
      const int64_t pr = ((int64_t)split * p.total_q + qrow) * H + h;
      *reinterpret_cast<float2*>(plan.ws_o + pr * D + d) = make_float2(a0 * inv, a1 * inv);
      if (d == 0) plan.ws_lse[pr] = lse2;
    } else {
      float lse;
      const float f = final_scale(p, h, lse2, &lse) * inv;
      *reinterpret_cast<uint32_t*>(out + (qrow * H + h) * D + d) = pack2<T>(a0 * f, a1 * f);
      if (d == 0 && p.maybe_lse) p.maybe_lse[qrow * H + h] = lse;
    }
  }
}

// Splits per (query tile, head group): the fewest that fill at least 90% of one wave of thread
// blocks (occupancy from shared memory), with at least two tiles per split on average; the kernels
// divide each sequence's actual keys evenly among its splits.
inline int choose_splits(int64_t base_ctas, int64_t max_tiles, int ctas_per_sm, int num_sms) {
  const int64_t slots = (int64_t)ctas_per_sm * num_sms;
  if (base_ctas >= slots || max_tiles < 4) return 1;
  const int64_t smax = std::max<int64_t>(1, std::min<int64_t>(max_tiles / 2, 512));
  int64_t best = 1;
  double best_eff = 0;
  for (int64_t sp = 1; sp <= smax; ++sp) {
    const int64_t ctas = base_ctas * sp, waves = (ctas + slots - 1) / slots;
    const double eff = (double)ctas / (double)(waves * slots);
    if (eff >= 0.9) return (int)sp;
    if (eff > best_eff + 1e-9) {
      best_eff = eff;
      best = sp;
    }
  }
  return (int)best;
}

template <class T, int D, int WM>
Status launch_tc_shape(const PagedAttentionParams& p, const Launch& l, AttnPlan plan) {
  using C = TcCfg<D, WM>;
  auto kern = attn_tc_kernel<T, D, WM>;
  static bool configured = false;  // one attribute call per instance
  if (!configured) {
    if (C::SMEM > l.smem_optin)
      return Status::unsupported("paged_attention (cuda): headDim " + std::to_string(D) + " needs " + std::to_string(C::SMEM) +
                                 " bytes of shared memory per block, the device allows " + std::to_string(l.smem_optin));
    SA_CUDA_CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, C::SMEM));
    configured = true;
  }
  const int64_t rows_max = (int64_t)p.max_q_len * plan.hp;
  const int64_t qtiles = (rows_max + C::M - 1) / C::M;
  const int64_t max_keys = p.maybe_block_selection ? (int64_t)p.sel_k * p.block_size : (int64_t)p.max_blocks_per_seq * p.block_size;
  const int64_t max_tiles = (max_keys + C::TN - 1) / C::TN;
  const int64_t ys = (int64_t)p.num_seqs * plan.head_groups;
  const int per_sm = std::max(1, (228 * 1024) / (C::SMEM + 1024));
  plan.splits = choose_splits(qtiles * ys, max_tiles, per_sm, l.num_sms);
  if (const char* f = std::getenv("SA_CUDA_SPLITS")) plan.splits = std::max(1, std::atoi(f));  // tuning aid
  SA_RETURN_IF_ERROR(check_grid("paged_attention", qtiles, ys, plan.splits));
  if (qtiles == 0 || ys == 0) return Status::Ok();
  if (plan.splits > 1) {
    void* ws = nullptr;
    const size_t rows = (size_t)plan.splits * p.total_q * p.num_qo_heads;
    SA_RETURN_IF_ERROR(l.ws->get(rows * (D + 1) * sizeof(float), &ws));
    plan.ws_o = static_cast<float*>(ws);
    plan.ws_lse = plan.ws_o + rows * D;
  }
  kern<<<dim3((unsigned)qtiles, (unsigned)ys, (unsigned)plan.splits), C::kThreads, C::SMEM, l.stream>>>(p, plan, l.err);
  SA_CUDA_LAUNCH_CHECK();
  if (plan.splits > 1) return launch_attn_merge(p, plan, l);
  return Status::Ok();
}

}  // namespace select_attn::cuda
