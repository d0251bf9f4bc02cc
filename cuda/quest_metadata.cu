// quest_metadata on cuda (SPEC section 1): one thread block per (sequence, logical block) reduces
// the block's valid tokens to per-(head, channel) max/min with 16-byte loads; rows of the last
// touched metadata page past the sequence's blocks are zeroed. Ids are checked on the device.
#include "launch.h"

namespace select_attn::cuda {
namespace {

constexpr int kThreads = 128;

// VE elements starting at p (16-byte aligned when VE * sizeof(T) == 16), widened to f32.
template <class T, int VE>
__device__ __forceinline__ void load_vec(const T* p, float* out) {
  if constexpr (VE * sizeof(T) == 16) {
    Vec16<T>::widen(__ldg(reinterpret_cast<const uint4*>(p)), out);
  } else {
#pragma unroll
    for (int i = 0; i < VE; ++i) out[i] = to_f32(p[i]);
  }
}
template <class T, int VE>
__device__ __forceinline__ void store_vec(T* p, const float* v) {
  if constexpr (VE * sizeof(T) == 16) {
    T tmp[VE];
#pragma unroll
    for (int i = 0; i < VE; ++i) tmp[i] = from_f32<T>(v[i]);
    *reinterpret_cast<uint4*>(p) = *reinterpret_cast<const uint4*>(tmp);
  } else {
#pragma unroll
    for (int i = 0; i < VE; ++i) p[i] = from_f32<T>(v[i]);
  }
}

// Grid: (J = max(MKBPR, MMBPR * metaRows) logical blocks, B sequences); block: kThreads.
// Each thread owns VE consecutive channels of one head ("chunks" of the N*D metadata row).
template <class T, int VE>
__global__ void __launch_bounds__(kThreads) quest_metadata_kernel(QuestMetadataParams p, DevError* err) {
  const int b = blockIdx.y;
  const int64_t j = blockIdx.x;
  const int bs = p.block_size, R = p.meta_rows, N = p.num_kv_heads, D = p.head_dim;
  const int len = p.seq_lens[b];
  if (len < 0) {
    if (j == 0 && threadIdx.x == 0) report(err, kErrNegSeqLen, kFamQuestMetadata, 0, b, 0, 0, len, 0);
    return;
  }
  const int64_t L = ((int64_t)len + bs - 1) / bs;
  const int start = p.maybe_start_blocks ? p.maybe_start_blocks[b] : 0;
  if (start < 0) {
    if (j == 0 && threadIdx.x == 0) report(err, kErrNegStart, kFamQuestMetadata, 0, b, 0, 0, start, 0);
    return;
  }
  const int64_t pages = (L + R - 1) / R;
  if (L > p.max_blocks_per_seq || pages > p.max_meta_pages_per_seq) {
    if (j == 0 && threadIdx.x == 0) {
      if (L > p.max_blocks_per_seq) report(err, kErrTableWidth, kFamQuestMetadata, kTabBlock, b, 0, 0, L, p.max_blocks_per_seq);
      else report(err, kErrTableWidth, kFamQuestMetadata, kTabMeta, b, 0, 0, pages, p.max_meta_pages_per_seq);
    }
    return;
  }
  if (start >= L || j < start || j >= pages * R) return;
  const int32_t page = p.meta_block_tables[(int64_t)b * p.max_meta_pages_per_seq + j / R];
  if (page < 0 || page >= p.num_meta_pages) {
    // One report per page: by the thread block of the page's first row that this call touches.
    if (threadIdx.x == 0 && (j % R == 0 || j == start))
      report(err, kErrTableId, kFamQuestMetadata, kTabMeta, b, (int)(j / R), 0, page, p.num_meta_pages);
    return;
  }
  const int64_t row_elems = (int64_t)N * D;
  T* mx = static_cast<T*>(p.max_meta) + ((int64_t)page * R + j % R) * row_elems;
  T* mn = static_cast<T*>(p.min_meta) + ((int64_t)page * R + j % R) * row_elems;
  const int chunks = (int)(row_elems / VE);

  if (j >= L) {  // a row of the last touched page that belongs to no block: zeroed, as the seed does
    float z[VE];
#pragma unroll
    for (int i = 0; i < VE; ++i) z[i] = 0.f;
    for (int c = threadIdx.x; c < chunks; c += kThreads) {
      store_vec<T, VE>(mx + (int64_t)c * VE, z);
      store_vec<T, VE>(mn + (int64_t)c * VE, z);
    }
    return;
  }
  const int32_t blk = p.block_tables[(int64_t)b * p.max_blocks_per_seq + j];
  if (blk < 0 || blk >= p.num_blocks) {
    if (threadIdx.x == 0) report(err, kErrTableId, kFamQuestMetadata, kTabBlock, b, (int)j, 0, blk, p.num_blocks);
    return;
  }
  const int valid = (int)min64(bs, len - j * bs);
  const T* k = static_cast<const T*>(p.k_cache);
  for (int c = threadIdx.x; c < chunks; c += kThreads) {
    const int e = c * VE, n = e / D, d = e % D;
    const T* base = k + paged_off(p.layout, blk, 0, n, bs, N, D) + d;
    // Token stride: N*D elements in NHD, D in HND.
    const int64_t ts = p.layout == Layout::NHD ? row_elems : D;
    float a[VE], lo[VE];
    load_vec<T, VE>(base, a);
#pragma unroll
    for (int i = 0; i < VE; ++i) lo[i] = a[i];
    int t = 1;
    for (; t + 3 < valid; t += 4) {  // four loads in flight per thread
      float x0[VE], x1[VE], x2[VE], x3[VE];
      load_vec<T, VE>(base + t * ts, x0);
      load_vec<T, VE>(base + (t + 1) * ts, x1);
      load_vec<T, VE>(base + (t + 2) * ts, x2);
      load_vec<T, VE>(base + (t + 3) * ts, x3);
#pragma unroll
      for (int i = 0; i < VE; ++i) {
        a[i] = max_js(max_js(a[i], x0[i]), max_js(x1[i], max_js(x2[i], x3[i])));
        lo[i] = min_js(min_js(lo[i], x0[i]), min_js(x1[i], min_js(x2[i], x3[i])));
      }
    }
    for (; t < valid; ++t) {
      float x[VE];
      load_vec<T, VE>(base + t * ts, x);
#pragma unroll
      for (int i = 0; i < VE; ++i) {
        a[i] = max_js(a[i], x[i]);
        lo[i] = min_js(lo[i], x[i]);
      }
    }
    store_vec<T, VE>(mx + e, a);
    store_vec<T, VE>(mn + e, lo);
  }
}

using Kernel = void (*)(QuestMetadataParams, DevError*);

// The dispatch table shared by supports() and launch(): dtype x (16-byte vectors when D allows).
Kernel pick(const QuestMetadataParams& p) {
  const bool vec = p.head_dim % (16 / (int)dtype_size(p.dtype)) == 0;
  switch (p.dtype) {
    case DType::f32: return vec ? quest_metadata_kernel<float, 4> : quest_metadata_kernel<float, 1>;
    case DType::f16: return vec ? quest_metadata_kernel<__half, 8> : quest_metadata_kernel<__half, 1>;
    case DType::bf16: return vec ? quest_metadata_kernel<__nv_bfloat16, 8> : quest_metadata_kernel<__nv_bfloat16, 1>;
    default: return nullptr;
  }
}

}  // namespace

Status supports_quest_metadata(const QuestMetadataParams& p) {
  if (!pick(p))
    return Status::unsupported(std::string("quest_metadata (cuda): kCache dtype ") + dtype_name(p.dtype) +
                               " unsupported; supported: f32, f16, bf16");
  return Status::Ok();
}

Status launch_quest_metadata(const QuestMetadataParams& p, const Launch& l) {
  const int64_t J = std::max<int64_t>(p.max_blocks_per_seq, (int64_t)p.max_meta_pages_per_seq * p.meta_rows);
  if (p.num_seqs == 0 || J == 0) return Status::Ok();
  SA_RETURN_IF_ERROR(check_grid("quest_metadata", J, p.num_seqs, 1));
  pick(p)<<<dim3((unsigned)J, p.num_seqs), kThreads, 0, l.stream>>>(p, l.err);
  SA_CUDA_LAUNCH_CHECK();
  return Status::Ok();
}

}  // namespace select_attn::cuda
