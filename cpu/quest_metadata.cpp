// quest_metadata on cpu: one task per (sequence, logical block); each task streams the block once and
// reduces its valid tokens to per-(head, channel) max/min. Compiled once per ISA (see isa.h).
#include <algorithm>

#include "isa.h"
#include "simd.h"
#include "thread_pool.h"

namespace select_attn::cpu::SA_ISA {
namespace {

// Reduces `rows` rows of `len` elements (row stride `stride` elements) into f32 max/min.
inline void reduce_rows(const void* src, DType t, int64_t off, int rows, int64_t stride, int len, float* mx, float* mn) {
  for (int c = 0; c < len; c += W) {
    int n = std::min(W, len - c);
    V a, b;
    if (t == DType::f32) {
      const float* p = static_cast<const float*>(src) + off + c;
      a = b = n == W ? vload(p) : vload_n(p, n);
      for (int r = 1; r < rows; ++r) {
        V x = n == W ? vload(p + r * stride) : vload_n(p + r * stride, n);
        a = vmax(a, x);
        b = vmin(b, x);
      }
    } else {
      const uint16_t* p = static_cast<const uint16_t*>(src) + off + c;
      a = b = n == W ? vload(p, t) : vload_n(p, t, n);
      for (int r = 1; r < rows; ++r) {
        V x = n == W ? vload(p + r * stride, t) : vload_n(p + r * stride, t, n);
        a = vmax(a, x);
        b = vmin(b, x);
      }
    }
    if (n == W) {
      vstore(mx + c, a);
      vstore(mn + c, b);
    } else {
      vstore_n(mx + c, a, n);
      vstore_n(mn + c, b, n);
    }
  }
}

inline void store_row(void* dst, DType t, int64_t off, const float* v, int n) {
  switch (t) {
    case DType::f32: std::copy(v, v + n, static_cast<float*>(dst) + off); break;
    case DType::f16: for (int i = 0; i < n; ++i) static_cast<uint16_t*>(dst)[off + i] = f32_to_f16(v[i]); break;
    default: for (int i = 0; i < n; ++i) static_cast<uint16_t*>(dst)[off + i] = f32_to_bf16(v[i]); break;
  }
}

}  // namespace

Status quest_metadata(const QuestMetadataParams& p) {
  const int N = p.num_kv_heads, D = p.head_dim, bs = p.block_size, R = p.meta_rows;
  const int64_t row = (int64_t)N * D;  // elements of one metadata row
  const size_t es = dtype_size(p.dtype);
  auto blocks_of = [&](int b) { return ((int64_t)p.seq_lens[b] + bs - 1) / bs; };
  auto start_of = [&](int b) { return p.maybe_start_blocks ? (int64_t)p.maybe_start_blocks[b] : int64_t(0); };

  parallel_for((int64_t)p.num_seqs * p.max_blocks_per_seq, [&](int64_t task, int tid) {
    const int b = (int)(task / p.max_blocks_per_seq);
    const int64_t j = task % p.max_blocks_per_seq;
    if (j < start_of(b) || j >= blocks_of(b)) return;
    const int valid = (int)std::min<int64_t>(bs, p.seq_lens[b] - j * bs);
    const int64_t blk = p.block_tables[(int64_t)b * p.max_blocks_per_seq + j];
    const int64_t page = p.meta_block_tables[(int64_t)b * p.max_meta_pages_per_seq + j / R];
    const int64_t out = (page * R + j % R) * row;
    float* mx = static_cast<float*>(scratch(tid, 2 * row * sizeof(float)));
    float* mn = mx + row;
    if (p.layout == Layout::NHD) {
      reduce_rows(p.k_cache, p.dtype, blk * bs * row, valid, row, (int)row, mx, mn);
    } else {
      for (int n = 0; n < N; ++n)
        reduce_rows(p.k_cache, p.dtype, paged_offset(Layout::HND, blk, 0, n, bs, N, D), valid, D, D, mx + n * D, mn + n * D);
    }
    store_row(p.max_meta, p.dtype, out, mx, (int)row);
    store_row(p.min_meta, p.dtype, out, mn, (int)row);
  });

  // Rows of the last touched page that belong to no existing block are zeroed, as the seed does.
  for (int b = 0; b < p.num_seqs; ++b) {
    const int64_t L = blocks_of(b);
    if (start_of(b) >= L) continue;
    const int64_t last_page = (L - 1) / R;
    const int64_t page = p.meta_block_tables[(int64_t)b * p.max_meta_pages_per_seq + last_page];
    const int64_t first_row = L - last_page * R;
    const size_t bytes = (size_t)((R - first_row) * row) * es;
    const int64_t off = (page * R + first_row) * row * (int64_t)es;
    std::fill_n(static_cast<char*>(p.max_meta) + off, bytes, 0);
    std::fill_n(static_cast<char*>(p.min_meta) + off, bytes, 0);
  }
  return Status::Ok();
}

}  // namespace select_attn::cpu::SA_ISA
