// paged_attention on cuda (SPEC section 3): the dispatch (tensor-core path for f16/bf16, CUDA-core
// path for f32 and mixed dtypes), the CUDA-core kernel, and the merge of split-KV partials.
#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "attn_common.cuh"

namespace select_attn::cuda {

Status launch_tc_f16(const PagedAttentionParams& p, const Launch& l, AttnPlan plan);
Status launch_tc_bf16(const PagedAttentionParams& p, const Launch& l, AttnPlan plan);

namespace {

constexpr int kGenThreads = 128;
constexpr int kGenWarps = 4;
constexpr int kGenMaxHeads = 8;  // query heads per thread block on the CUDA-core path
constexpr int kGenUnroll = 2;    // keys per warp in flight

// Grid: (maxQLen query tokens, B * head groups, splits); block: 128 threads (4 warps).
// One thread block = one query token and hp (<= 8) query heads of one KV group. Each warp takes
// every 4th visible key of the split; lanes own D/32 channels; scores are warp-reduced.
// Used for f32, for q/KV dtype mixes and for head dims other than 64/96/128/256; the tensor-core
// kernels cover f16/bf16 at those four.
// DT = 0: headDim known at run time (any D <= 256); lane l then owns channels l, l + 32, ...
template <class KT, int DT>
__global__ void __launch_bounds__(kGenThreads) attn_generic_kernel(PagedAttentionParams p, AttnPlan plan, DevError* err) {
  constexpr int CH = DT ? DT / 32 : 8;
  constexpr int DS = DT ? DT : 256;  // shared row length
  const int D = DT ? DT : p.head_dim;
  const int lane_ = threadIdx.x & 31;
  auto chan = [&](int c) { return DT ? lane_ * CH + c : c * 32 + lane_; };
  auto has = [&](int c) { return DT ? true : c * 32 + lane_ < D; };
  __shared__ float sO[kGenWarps][kGenMaxHeads][DS];
  __shared__ float sM[kGenWarps][kGenMaxHeads], sL[kGenWarps][kGenMaxHeads];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int i = blockIdx.x;
  const int b = blockIdx.y / plan.head_groups, hg = blockIdx.y % plan.head_groups, split = blockIdx.z;
  const int H = p.num_qo_heads, N = p.num_kv_heads, G = H / N, hp = plan.hp;
  const int h0 = hg * hp, n = h0 / G;
  const SeqInfo s = seq_info(p, b, i == 0 && hg == 0 && split == 0 && tid == 0, err);
  if (!s.ok || i >= s.qlen) return;
  const int64_t qrow = s.qstart + i;
  const int64_t qpos = (int64_t)s.len - s.qlen + i;
  const int sel_row = p.maybe_block_selection ? (p.sel_rows == N ? b * N + n : b * H + h0) : 0;
  KeyRange kr;
  if (p.maybe_block_selection) {
    kr.n1 = 0;
    kr.start2 = 0;
    kr.n2 = (int64_t)p.sel_k * p.block_size;
  } else {
    kr = key_range(p, s.len, qpos, qpos, 1);
  }
  const int64_t nk = kr.count();
  const int64_t v0 = nk * split / plan.splits, v1 = nk * (split + 1) / plan.splits;

  float q[kGenMaxHeads][CH], acc[kGenMaxHeads][CH], m[kGenMaxHeads], l[kGenMaxHeads];
#pragma unroll
  for (int hh = 0; hh < kGenMaxHeads; ++hh) {
    m[hh] = -INFINITY;
    l[hh] = 0.f;
#pragma unroll
    for (int c = 0; c < CH; ++c) {
      acc[hh][c] = 0.f;
      q[hh][c] = hh < hp && has(c) ? load_any(p.q, p.q_dtype, (qrow * H + h0 + hh) * D + chan(c)) : 0.f;
    }
  }
  const KT* kc = static_cast<const KT*>(p.k_cache);
  const KT* vc = static_cast<const KT*>(p.v_cache);
  for (int64_t vb = v0 + warp; vb < v1; vb += kGenWarps * kGenUnroll) {
    int64_t pos[kGenUnroll], off[kGenUnroll];
    float kf[kGenUnroll][CH], vf[kGenUnroll][CH];
#pragma unroll
    for (int u = 0; u < kGenUnroll; ++u) {
      const int64_t v = vb + (int64_t)u * kGenWarps;
      pos[u] = -1;
      off[u] = -1;
      if (v < v1) {
        pos[u] = p.maybe_block_selection ? selected_pos(p, b, sel_row, s, v, err) : kr.unit(v);
        if (pos[u] >= s.len) pos[u] = -1;
        if (pos[u] >= 0) off[u] = key_offset(p, b, pos[u], n, err);
        if (off[u] < 0) pos[u] = -1;
      }
#pragma unroll
      for (int c = 0; c < CH; ++c) {
        kf[u][c] = pos[u] >= 0 && has(c) ? to_f32(kc[off[u] + chan(c)]) : 0.f;
        vf[u][c] = pos[u] >= 0 && has(c) ? to_f32(vc[off[u] + chan(c)]) : 0.f;
      }
    }
#pragma unroll
    for (int u = 0; u < kGenUnroll; ++u) {
      if (pos[u] < 0) continue;  // warp-uniform: one key per warp
#pragma unroll
      for (int hh = 0; hh < kGenMaxHeads; ++hh) {
        if (hh >= hp) break;
        float d = 0.f;
#pragma unroll
        for (int c = 0; c < CH; ++c) d = fmaf(q[hh][c], kf[u][c], d);
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) d += __shfl_xor_sync(0xffffffffu, d, o);
        const float x = logit2(p, d, (int)pos[u], (int)qpos, h0 + hh);
        if (x == -INFINITY) continue;
        const float mn = fmaxf(m[hh], x);
        const float alpha = exp2f(m[hh] - mn), pr = exp2f(x - mn);
        m[hh] = mn;
        l[hh] = l[hh] * alpha + pr;
#pragma unroll
        for (int c = 0; c < CH; ++c) acc[hh][c] = acc[hh][c] * alpha + pr * vf[u][c];
      }
    }
  }
  // Merge the 4 warps, then write the row (or this split's partial).
#pragma unroll
  for (int hh = 0; hh < kGenMaxHeads; ++hh) {
    if (hh >= hp) break;
#pragma unroll
    for (int c = 0; c < CH; ++c)
      if (has(c)) sO[warp][hh][chan(c)] = acc[hh][c];
    if (lane == 0) {
      sM[warp][hh] = m[hh];
      sL[warp][hh] = l[hh];
    }
  }
  __syncthreads();
  for (int idx = tid; idx < hp * D; idx += kGenThreads) {
    const int hh = idx / D, d = idx % D, h = h0 + hh;
    float mstar = -INFINITY;
    for (int w = 0; w < kGenWarps; ++w) mstar = fmaxf(mstar, sM[w][hh]);
    float lsum = 0.f, a = 0.f;
    if (mstar != -INFINITY) {
      for (int w = 0; w < kGenWarps; ++w) {
        const float f = exp2f(sM[w][hh] - mstar);
        lsum += sL[w][hh] * f;
        a += sO[w][hh][d] * f;
      }
    }
    const float lse2 = (mstar == -INFINITY || lsum <= 0.f) ? -INFINITY : mstar + log2f(lsum);
    const float inv = lse2 == -INFINITY ? 0.f : 1.f / lsum;
    if (plan.splits > 1) {
      const int64_t pr = ((int64_t)split * p.total_q + qrow) * H + h;
      plan.ws_o[pr * D + d] = a * inv;
      if (d == 0) plan.ws_lse[pr] = lse2;
    } else {
      float lse;
      const float f = final_scale(p, h, lse2, &lse) * inv;
      store_any(p.out, p.q_dtype, (qrow * H + h) * D + d, a * f);
      if (d == 0 && p.maybe_lse) p.maybe_lse[qrow * H + h] = lse;
    }
  }
}

// Grid: (totalQ query rows, ceil(H * D / 256)); block: 256 threads, one (head, channel) each.
// Combines the splits' normalized partials by their log2-sum-exp, adds the sink logit to the
// denominator, writes out (dtype of q) and lse. Loads are unrolled so many are in flight.
__global__ void __launch_bounds__(256) attn_merge_kernel(PagedAttentionParams p, AttnPlan plan) {
  const int64_t qrow = blockIdx.x;
  const int H = p.num_qo_heads, D = p.head_dim, S = plan.splits;
  const int e = blockIdx.y * 256 + threadIdx.x;  // (head, channel)
  if (e >= H * D) return;
  const int h = e / D, d = e - h * D;
  // The sequence of this row: the largest b with cuSeqlensQ[b] <= qrow.
  int lo = 0, hi = p.num_seqs;
  while (lo < hi) {
    const int mid = (lo + hi + 1) >> 1;
    if (p.cu_seqlens_q[mid] <= qrow) lo = mid;
    else hi = mid - 1;
  }
  if (lo >= p.num_seqs) return;
  const SeqInfo s = seq_info(p, lo, false, nullptr);
  if (!s.ok || qrow < s.qstart || qrow >= s.qstart + s.qlen) return;
  const float* lse_p = plan.ws_lse + qrow * H + h;       // stride totalQ * H per split
  const float* o_p = plan.ws_o + (qrow * H + h) * D + d;  // stride totalQ * H * D per split
  const int64_t ls = p.total_q * H, os = ls * D;
  float mstar = -INFINITY;
#pragma unroll 8
  for (int sp = 0; sp < S; ++sp) mstar = fmaxf(mstar, lse_p[sp * ls]);
  float wsum = 0.f, a = 0.f;
  if (mstar != -INFINITY) {
#pragma unroll 8
    for (int sp = 0; sp < S; ++sp) {
      const float x = lse_p[sp * ls];
      const float w = x == -INFINITY ? 0.f : exp2f(x - mstar);
      wsum += w;
      a += w == 0.f ? 0.f : w * o_p[sp * os];
    }
  }
  const float lse2 = (mstar == -INFINITY || wsum <= 0.f) ? -INFINITY : mstar + log2f(wsum);
  float lse;
  const float f = final_scale(p, h, lse2, &lse);
  store_any(p.out, p.q_dtype, (qrow * H + h) * D + d, lse2 == -INFINITY ? 0.f : a / wsum * f);
  if (d == 0 && p.maybe_lse) p.maybe_lse[qrow * H + h] = lse;
}

using GenKernel = void (*)(PagedAttentionParams, AttnPlan, DevError*);

template <class KT>
GenKernel pick_generic_d(int D) {
  switch (D) {
    case 64: return attn_generic_kernel<KT, 64>;
    case 96: return attn_generic_kernel<KT, 96>;
    case 128: return attn_generic_kernel<KT, 128>;
    case 256: return attn_generic_kernel<KT, 256>;
    default: return D >= 1 && D <= 256 ? attn_generic_kernel<KT, 0> : nullptr;
  }
}

GenKernel pick_generic(const PagedAttentionParams& p) {
  switch (p.kv_dtype) {
    case DType::f32: return pick_generic_d<float>(p.head_dim);
    case DType::f16: return pick_generic_d<__half>(p.head_dim);
    case DType::bf16: return pick_generic_d<__nv_bfloat16>(p.head_dim);
    default: return nullptr;
  }
}

bool use_tc(const PagedAttentionParams& p) {
  if (std::getenv("SA_CUDA_NO_TC")) return false;  // testing aid: force the CUDA-core path
  const int D = p.head_dim;
  return p.q_dtype == p.kv_dtype && (p.q_dtype == DType::f16 || p.q_dtype == DType::bf16) &&
         (D == 64 || D == 96 || D == 128 || D == 256);
}

bool is_float(DType t) { return t == DType::f32 || t == DType::f16 || t == DType::bf16; }

Status launch_generic(const PagedAttentionParams& p, const Launch& l, AttnPlan plan) {
  // Heads per thread block: the largest divisor of hp (G or 1) that is at most 8.
  int hp = plan.hp;
  while (hp > kGenMaxHeads) {
    int d = kGenMaxHeads;
    while (hp % d) --d;
    hp = d;
  }
  plan.hp = hp;
  plan.head_groups = p.num_qo_heads / hp;
  const int64_t ys = (int64_t)p.num_seqs * plan.head_groups;
  const int64_t base = (int64_t)p.max_q_len * ys;
  const int64_t max_keys = p.maybe_block_selection ? (int64_t)p.sel_k * p.block_size : (int64_t)p.max_blocks_per_seq * p.block_size;
  // About 8 thread blocks per SM, at least 256 keys per split.
  const int64_t target = 8LL * l.num_sms;
  plan.splits = 1;
  if (base < target && max_keys >= 512)
    plan.splits = (int)std::max<int64_t>(1, std::min<int64_t>({(target + base - 1) / base, max_keys / 256, 512}));
  if (const char* f = std::getenv("SA_CUDA_SPLITS")) plan.splits = std::max(1, std::atoi(f));
  SA_RETURN_IF_ERROR(check_grid("paged_attention", p.max_q_len, ys, plan.splits));
  if (p.max_q_len == 0 || ys == 0) return Status::Ok();
  if (plan.splits > 1) {
    void* ws = nullptr;
    const size_t rows = (size_t)plan.splits * p.total_q * p.num_qo_heads;
    SA_RETURN_IF_ERROR(l.ws->get(rows * (p.head_dim + 1) * sizeof(float), &ws));
    plan.ws_o = static_cast<float*>(ws);
    plan.ws_lse = plan.ws_o + rows * p.head_dim;
  }
  pick_generic(p)<<<dim3((unsigned)p.max_q_len, (unsigned)ys, (unsigned)plan.splits), kGenThreads, 0, l.stream>>>(p, plan, l.err);
  SA_CUDA_LAUNCH_CHECK();
  if (plan.splits > 1) return launch_attn_merge(p, plan, l);
  return Status::Ok();
}

}  // namespace

Status launch_attn_merge(const PagedAttentionParams& p, const AttnPlan& plan, const Launch& l) {
  if (p.total_q == 0) return Status::Ok();
  const int64_t ys = ((int64_t)p.num_qo_heads * p.head_dim + 255) / 256;
  SA_RETURN_IF_ERROR(check_grid("paged_attention", p.total_q, ys, 1));
  attn_merge_kernel<<<dim3((unsigned)p.total_q, (unsigned)ys), 256, 0, l.stream>>>(p, plan);
  SA_CUDA_LAUNCH_CHECK();
  return Status::Ok();
}

Status supports_paged_attention(const PagedAttentionParams& p) {
  const char* fam = "paged_attention (cuda): ";
  if (!is_float(p.q_dtype))
    return Status::unsupported(std::string(fam) + "q dtype " + dtype_name(p.q_dtype) + " unsupported; supported: f32, f16, bf16");
  if (!is_float(p.kv_dtype))
    return Status::unsupported(std::string(fam) + "kCache dtype " + dtype_name(p.kv_dtype) + " unsupported; supported: f32, f16, bf16");
  if (!pick_generic(p))
    return Status::unsupported(std::string(fam) + "headDim " + std::to_string(p.head_dim) +
                               " unsupported; supported: 1 to 256 (tensor cores for f16/bf16 at 64, 96, 128, 256)");
  if (!std::isfinite(p.scale)) return Status::invalid(std::string(fam) + "scale must be finite, got " + std::to_string(p.scale));
  if (!(p.softcap >= 0) || !std::isfinite(p.softcap))
    return Status::invalid(std::string(fam) + "softcap must be 0 (off) or a finite value > 0, got " + std::to_string(p.softcap));
  if (p.maybe_block_selection && p.sel_k < 1)
    return Status::invalid(std::string(fam) + "blockSelection must have kSel >= 1 columns, got " + std::to_string(p.sel_k));
  return Status::Ok();
}

Status launch_paged_attention(const PagedAttentionParams& p, const Launch& l) {
  if (p.num_seqs == 0 || p.total_q == 0) return Status::Ok();
  AttnPlan plan{};
  const int G = p.num_qo_heads / p.num_kv_heads;
  plan.hp = p.maybe_block_selection && p.sel_rows == p.num_qo_heads && G > 1 ? 1 : G;
  plan.head_groups = p.num_qo_heads / plan.hp;
  plan.splits = 1;
  if (use_tc(p)) return p.q_dtype == DType::f16 ? launch_tc_f16(p, l, plan) : launch_tc_bf16(p, l, plan);
  return launch_generic(p, l, plan);
}

}  // namespace select_attn::cuda
