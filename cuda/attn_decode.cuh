// Paged decode on tensor cores (mma.sync m16n8k16, f16/bf16): the path for calls whose packed
// query rows (query tokens x query heads of one KV group) fit one 16-row tile, e.g. decode with
// G <= 16, or a few speculative tokens. Each of the 4 warps streams its own 16-key sub-tiles of
// the thread block's split with its own cp.async stages and resolved-row ring, with no block-wide
// barrier inside the loop, so warps drift freely and keep memory busy; the warps' (O, m, l) are
// merged at the end; with several splits the last one to finish merges them. Each K/V row is
// read once per KV group.
#pragma once
#include "attn_tc.cuh"

namespace select_attn::cuda {

template <int D>
struct DecCfg {
  static constexpr int kThreads = 128;
  static constexpr int WARPS = 4;
  static constexpr int M = 16;                                   // packed query rows
  static constexpr int TN = 16;                                  // keys per warp sub-tile
  static constexpr int SD = (D + 63) / 64 * 64;                  // smem row stride (elements)
  static constexpr int CPR = D / 8;                              // 16-byte chunks per row
  static constexpr int SUB_BYTES = TN * SD * 2;                  // one K or V sub-tile
  static constexpr int STAGE_BYTES = 2 * SUB_BYTES;
  static constexpr int SW = D <= 64 ? 4 : D <= 128 ? 3 : 2;       // stages per warp
  static constexpr int RS = SW + 1;                              // resolved-row ring slots per warp
  static constexpr int WARP_BYTES = SW * STAGE_BYTES;
  static constexpr int Q_BYTES = M * SD * 2;
  static constexpr int PIPE = WARPS * WARP_BYTES;
  static constexpr int EPI = 64 * D * 4 + 2 * 64 * 4;            // [WARPS][16][D] f32 + m, l
  static constexpr int BODY = PIPE > EPI ? PIPE : EPI;
  static constexpr int RING = WARPS * RS * TN * 12;
  static constexpr int SMEM = Q_BYTES + BODY + RING;
};

// Grid: (1, B * head groups, splits); block: 128 threads (4 warps). Dynamic shared memory:
// DecCfg::SMEM. Warp w takes sub-tiles v0 + w, v0 + w + 4, ... of the split's visible keys.
template <class T, int D>
__global__ void __launch_bounds__(128) attn_decode_kernel(PagedAttentionParams p, AttnPlan plan, DevError* err) {
  using C = DecCfg<D>;
  extern __shared__ __align__(128) unsigned char smem[];
  T* sQ = reinterpret_cast<T*>(smem);
  unsigned char* body = smem + C::Q_BYTES;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  unsigned char* wpipe = body + warp * C::WARP_BYTES;
  int64_t* sRowOff = reinterpret_cast<int64_t*>(smem + C::Q_BYTES + C::BODY) + warp * C::RS * C::TN;  // [RS][TN]
  int* sKpos = reinterpret_cast<int*>(reinterpret_cast<int64_t*>(smem + C::Q_BYTES + C::BODY) + C::WARPS * C::RS * C::TN) +
               warp * C::RS * C::TN;                                                                       // [RS][TN]

  const int b = blockIdx.y / plan.head_groups, hg = blockIdx.y % plan.head_groups, split = blockIdx.z;
  const int H = p.num_qo_heads, N = p.num_kv_heads, G = H / N, hp = plan.hp;
  const int h0 = hg * hp, n = h0 / G;
  const SeqInfo s = seq_info(p, b, hg == 0 && split == 0 && tid == 0, err);
  if (!s.ok) return;
  const int rows = s.qlen * hp;
  if (rows == 0) return;
  const int sel_row = p.maybe_block_selection ? (p.sel_rows == N ? b * N + n : b * H + h0) : 0;
  const int64_t first_q = (int64_t)s.len - s.qlen;
  KeyRange kr;
  if (p.maybe_block_selection) {
    kr.n1 = 0;
    kr.start2 = 0;
    kr.n2 = ((int64_t)p.sel_k * p.block_size + C::TN - 1) / C::TN;
  } else {
    kr = key_range(p, s.len, first_q, first_q + (rows - 1) / hp, C::TN);
  }
  const int64_t ntiles = kr.count();
  const int64_t v0 = ntiles * split / plan.splits, v1 = ntiles * (split + 1) / plan.splits;

  // Q (16 packed rows) by cp.async, overlapped with the first row resolutions below.
  for (int idx = tid; idx < C::M * C::CPR; idx += C::kThreads) {
    const int r = idx / C::CPR, c = idx % C::CPR;
    const bool ok = r < rows;
    const T* src = static_cast<const T*>(p.q) + ((s.qstart + (ok ? r / hp : 0)) * (int64_t)H + h0 + (ok ? r % hp : 0)) * D + c * 8;
    cp_async16(sQ + swz<C::SD>(r, c), src, ok ? 16 : 0);
  }
  cp_async_commit();

  // This warp's sub-tiles and its row pipeline (lanes 0..15 own one row each; see attn_tc.cuh).
  const int64_t nloc64 = v1 - v0 > warp ? (v1 - v0 - warp + C::WARPS - 1) / C::WARPS : 0;
  const int nloc = (int)nloc64;
  const T* kc = static_cast<const T*>(p.k_cache);
  const T* vc = static_cast<const T*>(p.v_cache);
  const int32_t* table = p.block_tables + (int64_t)b * p.max_blocks_per_seq;
  const int32_t* selrow = p.maybe_block_selection ? p.maybe_block_selection + (int64_t)sel_row * p.sel_k : nullptr;
  const bool sel_sorted = selrow ? selection_sorted(selrow, p.sel_k) : true;  // barrier: every thread is here
  auto vkey = [&](int it) { return (int)(kr.unit(v0 + warp + (int64_t)it * C::WARPS) * C::TN) + lane; };
  const RowResolver<D> res{p, s, table, selrow, sel_sorted, b, sel_row, n, err};
  auto stepA = [&](int it) -> int { return it < nloc ? res.logical(vkey(it)) : -1; };
  auto stepB = [&](int id) -> int { return res.physical(id); };
  auto stepC = [&](int it, int id, int blk) {
    int pos = -1;
    int64_t off = -1;
    if (it < nloc && id != -1) res.resolve(vkey(it), id, blk, &pos, &off);
    const int slot = it % C::RS;
    sRowOff[slot * C::TN + lane] = off;
    sKpos[slot * C::TN + lane] = pos;
  };
  auto copy_tile = [&](int it) {
    T* sK = reinterpret_cast<T*>(wpipe + (it % C::SW) * C::STAGE_BYTES);
    T* sV = reinterpret_cast<T*>(wpipe + (it % C::SW) * C::STAGE_BYTES + C::SUB_BYTES);
    const int64_t* ro = sRowOff + (it % C::RS) * C::TN;
#pragma unroll
    for (int idx = lane; idx < C::TN * C::CPR; idx += 32) {
      const int r = idx / C::CPR, c = idx % C::CPR;
      const int64_t off = ro[r];
      const int64_t src = off < 0 ? 0 : off + c * 8;
      cp_async16(sK + swz<C::SD>(r, c), kc + src, off < 0 ? 0 : 16);
      cp_async16(sV + swz<C::SD>(r, c), vc + src, off < 0 ? 0 : 16);
    }
  };
  int idA = -1, idB = -1, blkB = -1;
  if (lane < C::TN) {
    int ids[C::SW + 2];
#pragma unroll
    for (int st = 0; st < C::SW + 2; ++st) ids[st] = stepA(st);  // independent loads first
    int blks[C::SW + 1];
#pragma unroll
    for (int st = 0; st < C::SW + 1; ++st) blks[st] = stepB(ids[st]);
#pragma unroll
    for (int st = 0; st < C::SW; ++st) stepC(st, ids[st], blks[st]);
    idB = ids[C::SW];
    blkB = blks[C::SW];
    idA = ids[C::SW + 1];
  }
  cp_async_wait<0>();
  __syncthreads();  // Q and this warp's first resolved rows are visible
#pragma unroll
  for (int st = 0; st < C::SW - 1; ++st) {
    if (st < nloc) copy_tile(st);
    cp_async_commit();
  }

  const int g = lane >> 2, cq = lane & 3, mi = lane >> 3, ri = lane & 7;
  int qpos[2], head[2];
#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    const int r = g + hr * 8;
    qpos[hr] = (int)first_q + r / hp;
    head[hr] = h0 + r % hp;
  }
  const bool plain = !(p.softcap > 0.f) && !p.maybe_alibi_slopes && p.sliding_window == 0;
  const bool upper = p.causal || p.sliding_window > 0;
  const float c2 = p.scale * kLog2e;
  float o[D / 8][4];
#pragma unroll
  for (int i = 0; i < D / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.f, 0.f};

  for (int it = 0; it < nloc; ++it) {
    cp_async_wait<C::SW - 2>();
    __syncwarp();
    if (it + C::SW - 1 < nloc) copy_tile(it + C::SW - 1);
    cp_async_commit();
    const T* sK = reinterpret_cast<const T*>(wpipe + (it % C::SW) * C::STAGE_BYTES);
    const T* sV = reinterpret_cast<const T*>(wpipe + (it % C::SW) * C::STAGE_BYTES + C::SUB_BYTES);
    const int* kpos = sKpos + (it % C::RS) * C::TN;

    // S = Q K^T (16 x 16), two accumulator sets to halve the mma dependency chain.
    float sa[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
    float sb[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      uint32_t a[4], bb[4];
      ldmatrix_x4(a, sQ + swz<C::SD>(ri + (mi & 1) * 8, kk * 2 + (mi >> 1)));
      ldmatrix_x4(bb, sK + swz<C::SD>(ri + (mi >> 1) * 8, kk * 2 + (mi & 1)));
      float(*acc)[4] = (kk & 1) ? sb : sa;
      mma_16816<T>(acc[0], a, bb);
      mma_16816<T>(acc[1], a, bb + 2);
    }
    float sc[2][4];
    float mx[2] = {m_run[0], m_run[1]};
#pragma unroll
    for (int j = 0; j < 2; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int hr = e >> 1;
        const int kp = kpos[j * 8 + 2 * cq + (e & 1)];
        const float raw = sa[j][e] + sb[j][e];
        const float x = plain ? ((kp >= 0 && (!upper || kp <= qpos[hr])) ? raw * c2 : -INFINITY)
                              : logit2(p, raw, kp, qpos[hr], head[hr]);
        sc[j][e] = x;
        mx[hr] = fmaxf(mx[hr], x);
      }
    }
    softmax_m16(sc, o, mx, m_run, l_run);
    uint32_t a[4];
    a[0] = pack2<T>(sc[0][0], sc[0][1]);
    a[1] = pack2<T>(sc[0][2], sc[0][3]);
    a[2] = pack2<T>(sc[1][0], sc[1][1]);
    a[3] = pack2<T>(sc[1][2], sc[1][3]);
#pragma unroll
    for (int d2 = 0; d2 < D / 16; ++d2) {
      uint32_t bb[4];
      ldmatrix_x4_trans(bb, sV + swz<C::SD>(ri + (mi & 1) * 8, d2 * 2 + (mi >> 1)));
      mma_16816<T>(o[2 * d2], a, bb);
      mma_16816<T>(o[2 * d2 + 1], a, bb + 2);
    }
    if (lane < C::TN) {  // advance the row pipeline
      stepC(it + C::SW, idB, blkB);
      idB = idA;
      blkB = stepB(idB);
      idA = stepA(it + C::SW + 2);
    }
  }
  cp_async_wait<0>();
  __syncthreads();  // the stage buffers become the epilogue buffers

  // ---- epilogue: the 4 warps' (O, m, l) -> shared memory -> merged, normalized rows ----
  float* sO = reinterpret_cast<float*>(body);  // [4][16][D]
  float* sM = sO + 64 * D;                     // [4][16]
  float* sL = sM + 64;                         // [4][16]
#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    l_run[hr] += __shfl_xor_sync(0xffffffffu, l_run[hr], 1);
    l_run[hr] += __shfl_xor_sync(0xffffffffu, l_run[hr], 2);
  }
  float* ow = sO + warp * 16 * D;
#pragma unroll
  for (int i = 0; i < D / 8; ++i) {
    const int col = i * 8 + 2 * cq;
    *reinterpret_cast<float2*>(ow + g * D + col) = make_float2(o[i][0], o[i][1]);
    *reinterpret_cast<float2*>(ow + (g + 8) * D + col) = make_float2(o[i][2], o[i][3]);
  }
  if (cq == 0) {
    sM[warp * 16 + g] = m_run[0];
    sM[warp * 16 + g + 8] = m_run[1];
    sL[warp * 16 + g] = l_run[0];
    sL[warp * 16 + g + 8] = l_run[1];
  }
  __syncthreads();
  const bool partial = plan.splits > 1;
  T* out = static_cast<T*>(p.out);
  for (int idx = tid; idx < min(rows, C::M) * (D / 2); idx += C::kThreads) {
    const int r = idx / (D / 2), d = (idx % (D / 2)) * 2;
    float mstar = -INFINITY;
#pragma unroll
    for (int w = 0; w < C::WARPS; ++w) mstar = fmaxf(mstar, sM[w * 16 + r]);
    float lsum = 0.f, a0 = 0.f, a1 = 0.f;
    if (mstar != -INFINITY) {
#pragma unroll
      for (int w = 0; w < C::WARPS; ++w) {
        const float f = exp2f(sM[w * 16 + r] - mstar);
        lsum += sL[w * 16 + r] * f;
        const float2 ov = *reinterpret_cast<const float2*>(sO + (w * 16 + r) * D + d);
        a0 += ov.x * f;
        a1 += ov.y * f;
      }
    }
    const float lse2 = (mstar == -INFINITY || lsum <= 0.f) ? -INFINITY : mstar + log2f(lsum);
    const float inv = lse2 == -INFINITY ? 0.f : 1.f / lsum;
    const int64_t qrow = s.qstart + r / hp;
    const int h = h0 + r % hp;
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
  if (!partial) return;
  // ---- split merge by the last split to finish (an atomic count per (sequence, head group)), so
  // no second launch: combine the partials by their log2-sum-exp, add the sink logit ----
  __shared__ int s_last;
  __threadfence();
  __syncthreads();
  if (tid == 0) {
    const int done = atomicAdd(&plan.counters[blockIdx.y], 1);
    s_last = done == plan.splits - 1;
    if (s_last) plan.counters[blockIdx.y] = 0;  // ready for the next launch
  }
  __syncthreads();
  if (!s_last) return;
  __threadfence();
  const int S = plan.splits;
  const int64_t ls = p.total_q * H, os = ls * D;
  const int nr = min(rows, C::M);
  // Per-row weights of the splits: w_s = 2^(lse_s - max), staged in shared memory (the epilogue
  // buffers are free again), so the output loop below issues its loads without dependencies.
  float* sW = sO;                 // [nr][S]
  float* sRow = sO + nr * S;      // [nr]: 1 / sum_s w_s, and the log2-sum-exp
  float* sLse = sRow + nr;
  for (int idx = tid; idx < nr * S; idx += C::kThreads) {
    const int r = idx / S, sp = idx % S;
    sW[idx] = __ldcg(plan.ws_lse + sp * ls + (s.qstart + r / hp) * H + h0 + r % hp);
  }
  __syncthreads();
  if (tid < nr) {
    float mstar = -INFINITY;
    for (int sp = 0; sp < S; ++sp) mstar = fmaxf(mstar, sW[tid * S + sp]);
    float wsum = 0.f;
    for (int sp = 0; sp < S; ++sp) {
      const float x = sW[tid * S + sp];
      const float w = (mstar == -INFINITY || x == -INFINITY) ? 0.f : exp2f(x - mstar);
      sW[tid * S + sp] = w;
      wsum += w;
    }
    const bool none = mstar == -INFINITY || wsum <= 0.f;
    sRow[tid] = none ? 0.f : 1.f / wsum;
    sLse[tid] = none ? -INFINITY : mstar + log2f(wsum);
  }
  __syncthreads();
  for (int idx = tid; idx < nr * D; idx += C::kThreads) {
    const int r = idx / D, d = idx % D;
    const int64_t qrow = s.qstart + r / hp;
    const int h = h0 + r % hp;
    const float* op = plan.ws_o + (qrow * H + h) * D + d;
    const float* w = sW + r * S;
    float a = 0.f;
#pragma unroll 16
    for (int sp = 0; sp < S; ++sp) a += w[sp] * __ldcg(op + sp * os);  // empty splits hold 0 with weight 0
    float lse;
    const float f = final_scale(p, h, sLse[r], &lse);
    out[(qrow * H + h) * D + d] = from_f32<T>(a * sRow[r] * f);
    if (d == 0 && p.maybe_lse) p.maybe_lse[qrow * H + h] = lse;
  }
}

template <class T, int D>
Status launch_decode_shape(const PagedAttentionParams& p, const Launch& l, AttnPlan plan) {
  using C = DecCfg<D>;
  auto kern = attn_decode_kernel<T, D>;
  static bool configured = false;
  if (!configured) {
    if (C::SMEM > l.smem_optin)
      return Status::unsupported("paged_attention (cuda): headDim " + std::to_string(D) + " decode needs " + std::to_string(C::SMEM) +
                                 " bytes of shared memory per block, the device allows " + std::to_string(l.smem_optin));
    SA_CUDA_CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, C::SMEM));
    configured = true;
  }
  const int64_t max_keys = p.maybe_block_selection ? (int64_t)p.sel_k * p.block_size : (int64_t)p.max_blocks_per_seq * p.block_size;
  const int64_t max_tiles = (max_keys + C::TN - 1) / C::TN;  // 16-key sub-tiles
  const int64_t ys = (int64_t)p.num_seqs * plan.head_groups;
  const int per_sm = std::max(1, (228 * 1024) / (C::SMEM + 1024));
  // At least 8 sub-tiles (2 per warp) per split on average.
  plan.splits = choose_splits(ys, max_tiles / 4, per_sm, l.num_sms);
  plan.splits = std::min(plan.splits, 64 * D / 16 - 2);  // the merge weights [16][splits] fit the epilogue area
  if (const char* f = std::getenv("SA_CUDA_SPLITS")) plan.splits = std::max(1, std::min(std::atoi(f), 64 * D / 16 - 2));
  SA_RETURN_IF_ERROR(check_grid("paged_attention", 1, ys, plan.splits));
  if (ys == 0) return Status::Ok();
  if (plan.splits > 1) {
    void* ws = nullptr;
    const size_t rows = (size_t)plan.splits * p.total_q * p.num_qo_heads;
    SA_RETURN_IF_ERROR(l.ws->get(rows * (D + 1) * sizeof(float), &ws));
    plan.ws_o = static_cast<float*>(ws);
    plan.ws_lse = plan.ws_o + rows * D;
    SA_RETURN_IF_ERROR(l.ws->counters((size_t)ys, &plan.counters));
  }
  kern<<<dim3(1, (unsigned)ys, (unsigned)plan.splits), C::kThreads, C::SMEM, l.stream>>>(p, plan, l.err);
  SA_CUDA_LAUNCH_CHECK();
  return Status::Ok();
}

// Tensor-core path for q and K/V both f16 or both bf16; headDim 64, 96, 128 or 256. Calls whose
// packed rows fit 16 take the decode kernel, the rest the prefill kernel (attn_tc.cuh).
template <class T>
Status launch_tc(const PagedAttentionParams& p, const Launch& l, AttnPlan plan) {
  const bool small = (int64_t)p.max_q_len * plan.hp <= 16;
  switch (p.head_dim) {
    case 64: return small ? launch_decode_shape<T, 64>(p, l, plan) : launch_tc_shape<T, 64, 4>(p, l, plan);
    case 96: return small ? launch_decode_shape<T, 96>(p, l, plan) : launch_tc_shape<T, 96, 4>(p, l, plan);
    case 128: return small ? launch_decode_shape<T, 128>(p, l, plan) : launch_tc_shape<T, 128, 4>(p, l, plan);
    case 256: return small ? launch_decode_shape<T, 256>(p, l, plan) : launch_tc_shape<T, 256, 4>(p, l, plan);
    default: return Status::unsupported("paged_attention (cuda): headDim " + std::to_string(p.head_dim) + " unsupported; supported: 64, 96, 128, 256");
  }
}

}  // namespace select_attn::cuda
