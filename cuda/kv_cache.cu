// kv_cache on cuda (SPEC section 4): cacheWrite scatters new tokens into the paged caches;
// questMetadataAppend keeps Quest metadata exact with the sequential per-row semantics of the SPEC
// (the tokens of one metadata row are folded by the row's lowest token, "the leader").
#include "launch.h"

namespace select_attn::cuda {
namespace {

constexpr int kThreads = 128;

template <class T>
constexpr int vec_elems() { return 16 / (int)sizeof(T); }

// Grid: (T tokens); block: kThreads threads over the N*D elements of the token, 16 bytes each
// (VEC) or one element each. Slot -1 is skipped; other slots outside the pool are reported; a
// token whose slot a later token also names is skipped (the last one wins).
template <class T, bool VEC>
__global__ void __launch_bounds__(kThreads) cache_write_kernel(CacheWriteParams p, DevError* err) {
  const int64_t t = blockIdx.x;
  const int32_t slot = p.slot_mapping[t];
  const int64_t slots = p.num_blocks * p.block_size;
  if (slot == -1) return;
  if (slot < -1 || slot >= slots) {
    if (threadIdx.x == 0) report(err, kErrSlot, kFamCacheWrite, 0, (int)t, 0, 0, slot, slots);
    return;
  }
  // A slot listed twice keeps the last token (as one write per token in token order would).
  int later = 0;
  for (int64_t u = t + 1 + threadIdx.x; u < p.num_tokens; u += kThreads) later |= p.slot_mapping[u] == slot;
  if (__syncthreads_or(later)) return;
  const int N = p.num_kv_heads, D = p.head_dim, bs = p.block_size;
  const int64_t blk = slot / bs;
  const int off = slot % bs;
  constexpr int VE = VEC ? vec_elems<T>() : 1;
  const int chunks = N * D / VE;
  const T* k = static_cast<const T*>(p.key) + t * N * D;
  const T* v = static_cast<const T*>(p.value) + t * N * D;
  T* kc = static_cast<T*>(p.k_cache);
  T* vc = static_cast<T*>(p.v_cache);
  for (int c = threadIdx.x; c < chunks; c += kThreads) {
    const int e = c * VE, n = e / D, d = e % D;
    const int64_t dst = paged_off(p.layout, blk, off, n, bs, N, D) + d;
    if constexpr (VEC) {
      const uint4 kv = __ldg(reinterpret_cast<const uint4*>(k + e));
      const uint4 vv = __ldg(reinterpret_cast<const uint4*>(v + e));
      *reinterpret_cast<uint4*>(kc + dst) = kv;
      *reinterpret_cast<uint4*>(vc + dst) = vv;
    } else {
      kc[dst] = k[e];
      vc[dst] = v[e];
    }
  }
}

// Grid: ceil(T / 256) blocks of 256 threads, one thread per token: validates seqIdx, positions
// and the metadata page, and writes the token's metadata row (page * metaRows + row) or -1.
__global__ void meta_row_kernel(QuestMetadataAppendParams p, int64_t* rows, DevError* err) {
  const int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= p.num_tokens) return;
  int64_t row = -1;
  const int32_t b = p.seq_idx[t], pos = p.positions[t];
  const int R = p.meta_rows;
  if (b < 0 || b >= p.num_seqs) {
    report(err, kErrSeqIdx, kFamMetaAppend, 0, (int)t, 0, 0, b, p.num_seqs);
  } else if (pos < 0) {
    report(err, kErrNegPos, kFamMetaAppend, 0, (int)t, 0, 0, pos, 0);
  } else {
    const int64_t j = pos / p.block_size, page_idx = j / R;
    if (page_idx >= p.max_meta_pages_per_seq) {
      report(err, kErrPosPage, kFamMetaAppend, 0, (int)t, (int)page_idx, 0, pos, p.max_meta_pages_per_seq);
    } else {
      const int32_t page = p.meta_block_tables[(int64_t)b * p.max_meta_pages_per_seq + page_idx];
      if (page < 0 || page >= p.num_meta_pages)
        report(err, kErrTableId, kFamMetaAppend, kTabMeta, b, (int)page_idx, 0, page, p.num_meta_pages);
      else
        row = (int64_t)page * R + j % R;
    }
  }
  rows[t] = row;
}

// Grid: (T tokens); block: kThreads. The thread block of token t does nothing unless t is the
// lowest token of its metadata row (the leader). The leader folds every token of the row in one
// pass: if some token starts its block (pos % bs == 0) the row restarts from the last such token
// (in token order) and takes the max/min of the others; otherwise the stored row is the start.
// This equals one call per token in position order, because every other position of the block
// comes after the block's first position.
template <class T>
__global__ void __launch_bounds__(kThreads) meta_append_kernel(QuestMetadataAppendParams p, const int64_t* rows) {
  __shared__ int s_flag;
  __shared__ int s_members[kThreads];
  __shared__ int s_count;
  const int64_t t = blockIdx.x;
  const int64_t row = rows[t];
  if (row < 0) return;
  const int64_t T_ = p.num_tokens;
  if (threadIdx.x == 0) s_flag = 0;
  __syncthreads();
  for (int64_t u = threadIdx.x; u < t; u += kThreads)
    if (rows[u] == row) s_flag = 1;  // an earlier token owns this row
  __syncthreads();
  if (s_flag) return;

  // Pass 1: the last token (in token order) that restarts the row, or -1.
  __shared__ int s_reset;
  if (threadIdx.x == 0) s_reset = -1;
  __syncthreads();
  for (int64_t u = t + threadIdx.x; u < T_; u += kThreads)
    if (rows[u] == row && p.positions[u] % p.block_size == 0) atomicMax(&s_reset, (int)u);
  __syncthreads();
  const int reset = s_reset;

  const int N = p.num_kv_heads, D = p.head_dim;
  const int64_t E = (int64_t)N * D;
  T* mx = static_cast<T*>(p.max_meta) + row * E;
  T* mn = static_cast<T*>(p.min_meta) + row * E;
  const T* key = static_cast<const T*>(p.key);
  // Each thread owns elements e = threadIdx.x + i * kThreads; at most kMaxPer per thread per sweep.
  constexpr int kMaxPer = 8;
  for (int64_t e0 = 0; e0 < E; e0 += (int64_t)kThreads * kMaxPer) {
    float a[kMaxPer], lo[kMaxPer];
#pragma unroll
    for (int i = 0; i < kMaxPer; ++i) {
      const int64_t e = e0 + threadIdx.x + (int64_t)i * kThreads;
      if (e < E) {
        if (reset >= 0) {
          a[i] = lo[i] = to_f32(key[(int64_t)reset * E + e]);
        } else {
          a[i] = to_f32(mx[e]);
          lo[i] = to_f32(mn[e]);
        }
      }
    }
    // Pass 2, in batches of member tokens gathered into shared memory (max/min commute, so the
    // order inside a batch does not matter).
    for (int64_t base = t; base < T_; base += kThreads) {
      __syncthreads();
      if (threadIdx.x == 0) s_count = 0;
      __syncthreads();
      const int64_t u = base + threadIdx.x;
      const bool member = u < T_ && rows[u] == row && (int)u != reset &&
                          !(reset >= 0 && p.positions[u] % p.block_size == 0);
      if (member) s_members[atomicAdd(&s_count, 1)] = (int)u;
      __syncthreads();
      const int cnt = s_count;
      for (int m = 0; m < cnt; ++m) {
        const int64_t src = (int64_t)s_members[m] * E;
#pragma unroll
        for (int i = 0; i < kMaxPer; ++i) {
          const int64_t e = e0 + threadIdx.x + (int64_t)i * kThreads;
          if (e < E) {
            const float x = to_f32(key[src + e]);
            a[i] = max_js(a[i], x);  // -0 < +0, NaN wins (the reference's Math.max/min order)
            lo[i] = min_js(lo[i], x);
          }
        }
      }
    }
#pragma unroll
    for (int i = 0; i < kMaxPer; ++i) {
      const int64_t e = e0 + threadIdx.x + (int64_t)i * kThreads;
      if (e < E) {
        mx[e] = from_f32<T>(a[i]);
        mn[e] = from_f32<T>(lo[i]);
      }
    }
  }
}

using WriteKernel = void (*)(CacheWriteParams, DevError*);
WriteKernel pick_write(const CacheWriteParams& p) {
  const bool vec = p.head_dim % (16 / (int)dtype_size(p.dtype)) == 0;
  switch (p.dtype) {
    case DType::f32: return vec ? cache_write_kernel<float, true> : cache_write_kernel<float, false>;
    case DType::f16: return vec ? cache_write_kernel<__half, true> : cache_write_kernel<__half, false>;
    case DType::bf16: return vec ? cache_write_kernel<__nv_bfloat16, true> : cache_write_kernel<__nv_bfloat16, false>;
    default: return nullptr;
  }
}
using AppendKernel = void (*)(QuestMetadataAppendParams, const int64_t*);
AppendKernel pick_append(const QuestMetadataAppendParams& p) {
  switch (p.dtype) {
    case DType::f32: return meta_append_kernel<float>;
    case DType::f16: return meta_append_kernel<__half>;
    case DType::bf16: return meta_append_kernel<__nv_bfloat16>;
    default: return nullptr;
  }
}

}  // namespace

Status supports_cache_write(const CacheWriteParams& p) {
  if (!pick_write(p))
    return Status::unsupported(std::string("kv_cache (cuda): key dtype ") + dtype_name(p.dtype) + " unsupported; supported: f32, f16, bf16");
  return Status::Ok();
}

Status launch_cache_write(const CacheWriteParams& p, const Launch& l) {
  if (p.num_tokens == 0) return Status::Ok();
  SA_RETURN_IF_ERROR(check_grid("kv_cache", p.num_tokens, 1, 1));
  pick_write(p)<<<(unsigned)p.num_tokens, kThreads, 0, l.stream>>>(p, l.err);
  SA_CUDA_LAUNCH_CHECK();
  return Status::Ok();
}

Status supports_meta_append(const QuestMetadataAppendParams& p) {
  if (!pick_append(p))
    return Status::unsupported(std::string("kv_cache (cuda): key dtype ") + dtype_name(p.dtype) + " unsupported; supported: f32, f16, bf16");
  return Status::Ok();
}

Status launch_meta_append(const QuestMetadataAppendParams& p, const Launch& l) {
  if (p.num_tokens == 0) return Status::Ok();
  SA_RETURN_IF_ERROR(check_grid("kv_cache", p.num_tokens, 1, 1));
  if (p.num_tokens > 2147483647LL) return Status::unsupported("kv_cache (cuda): more than 2^31 tokens in one call");
  void* ws = nullptr;
  SA_RETURN_IF_ERROR(l.ws->get((size_t)p.num_tokens * sizeof(int64_t), &ws));
  int64_t* rows = static_cast<int64_t*>(ws);
  meta_row_kernel<<<(unsigned)((p.num_tokens + 255) / 256), 256, 0, l.stream>>>(p, rows, l.err);
  SA_CUDA_LAUNCH_CHECK();
  pick_append(p)<<<(unsigned)p.num_tokens, kThreads, 0, l.stream>>>(p, rows);
  SA_CUDA_LAUNCH_CHECK();
  return Status::Ok();
}

}  // namespace select_attn::cuda
