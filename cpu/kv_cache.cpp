// kv_cache on cpu (SPEC section 4): cacheWrite copies new tokens' K/V rows into their slots;
// questMetadataAppend folds new keys into the Quest max/min rows. Both are deterministic under
// repeated targets: a slot written twice keeps the last token, and tokens of one metadata row are
// applied in position order (ties in token order) by a single thread. Compiled once per ISA (isa.h).
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "isa.h"
#include "simd.h"
#include "thread_pool.h"
#include "util.h"

namespace select_attn::cpu::SA_ISA {
namespace {

constexpr int64_t kSerialBytes = 1 << 18;  // below this a call is cheaper on the calling thread alone

// A token of a questMetadataAppend call, ordered by (metadata row, position, token index).
struct Tok {
  int64_t row;  // page * metaRows + row in page
  int32_t pos;
  int32_t t;
};
inline bool tok_less(const Tok& a, const Tok& b) {
  if (a.row != b.row) return a.row < b.row;
  if (a.pos != b.pos) return a.pos < b.pos;
  return a.t < b.t;
}

// Float order as unsigned integers: -0 just below +0, NaNs beyond +-inf, the same total order
// quest_metadata uses, so an appended row equals a fresh build bit for bit.
inline uint32_t order_key(uint32_t u, uint32_t sign) { return (u & sign) ? ~u & (sign | (sign - 1)) : u | sign; }

// row := key (start of a block) or elementwise max/min(row, key). Values are copied bit for bit, so
// the result is exact in every dtype.
template <DType T>
inline void fold_row(void* mx, void* mn, int64_t row_off, const void* key, int64_t key_off, int64_t n, bool reset) {
  using E = typename std::conditional<T == DType::f32, uint32_t, uint16_t>::type;
  constexpr uint32_t sign = T == DType::f32 ? 0x80000000u : 0x8000u;
  E* a = static_cast<E*>(mx) + row_off;
  E* b = static_cast<E*>(mn) + row_off;
  const E* k = static_cast<const E*>(key) + key_off;
  if (reset) {
    std::memcpy(a, k, sizeof(E) * n);
    std::memcpy(b, k, sizeof(E) * n);
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t kk = order_key(k[i], sign);
    if (kk > order_key(a[i], sign)) a[i] = k[i];
    if (kk < order_key(b[i], sign)) b[i] = k[i];
  }
}

}  // namespace

Status cache_write(const CacheWriteParams& p) {
  const int N = p.num_kv_heads, D = p.head_dim, bs = p.block_size;
  const int64_t T = p.num_tokens;
  const size_t es = dtype_size(p.dtype), row = (size_t)D * es;
  const char* key = static_cast<const char*>(p.key);
  const char* val = static_cast<const char*>(p.value);
  char* kc = static_cast<char*>(p.k_cache);
  char* vc = static_cast<char*>(p.v_cache);
  // One task per KV head, each walking the tokens in order: slots written twice keep the last token,
  // and no two threads ever write the same bytes.
  auto head = [&](int64_t n, int) {
    for (int64_t t = 0; t < T; ++t) {
      const int32_t s = p.slot_mapping[t];
      if (s < 0) continue;
      const int64_t dst = paged_offset(p.layout, s / bs, s % bs, n, bs, N, D) * (int64_t)es;
      const int64_t src = (t * N + n) * (int64_t)row;
      std::memcpy(kc + dst, key + src, row);
      std::memcpy(vc + dst, val + src, row);
    }
  };
  if ((int64_t)(2 * T * N * row) < kSerialBytes || N == 1) {
    for (int n = 0; n < N; ++n) head(n, 0);
  } else {
    parallel_for(N, head);
  }
  return Status::Ok();
}

Status quest_metadata_append(const QuestMetadataAppendParams& p) {
  const int64_t T = p.num_tokens;
  if (T == 0) return Status::Ok();
  const int N = p.num_kv_heads, D = p.head_dim, bs = p.block_size, R = p.meta_rows;
  const int64_t row_elems = (int64_t)N * D;
  Buf toks_buf(sizeof(Tok) * (size_t)T);
  Tok* toks = toks_buf.as<Tok>();
  if (!toks) return Status::oom("kv_cache (cpu): out of memory");
  for (int64_t t = 0; t < T; ++t) {
    const int32_t b = p.seq_idx[t], pos = p.positions[t];
    const int64_t j = pos / bs;
    const int64_t page = p.meta_block_tables[(int64_t)b * p.max_meta_pages_per_seq + j / R];
    toks[t] = Tok{page * R + j % R, pos, (int32_t)t};
  }
  heap_sort(toks, T, tok_less);  // (row, position, token): a total order
  // Groups of tokens on one physical row: each applied in order by one task.
  Buf starts_buf(sizeof(int64_t) * (size_t)(T + 1));
  int64_t* starts = starts_buf.as<int64_t>();
  if (!starts) return Status::oom("kv_cache (cpu): out of memory");
  int64_t ng = 0;
  for (int64_t i = 0; i < T; ++i)
    if (i == 0 || toks[i].row != toks[i - 1].row) starts[ng++] = i;
  starts[ng] = T;
  auto group = [&](int64_t g, int) {
    for (int64_t i = starts[g]; i < starts[g + 1]; ++i) {
      const Tok& k = toks[i];
      const bool reset = k.pos % bs == 0;
      const int64_t ro = k.row * row_elems, ko = (int64_t)k.t * row_elems;
      switch (p.dtype) {
        case DType::f16: fold_row<DType::f16>(p.max_meta, p.min_meta, ro, p.key, ko, row_elems, reset); break;
        case DType::bf16: fold_row<DType::bf16>(p.max_meta, p.min_meta, ro, p.key, ko, row_elems, reset); break;
        default: fold_row<DType::f32>(p.max_meta, p.min_meta, ro, p.key, ko, row_elems, reset); break;
      }
    }
  };
  if ((int64_t)(T * row_elems * dtype_size(p.dtype)) < kSerialBytes || ng == 1) {
    for (int64_t g = 0; g < ng; ++g) group(g, 0);
  } else {
    parallel_for(ng, group);
  }
  return Status::Ok();
}

}  // namespace select_attn::cpu::SA_ISA
