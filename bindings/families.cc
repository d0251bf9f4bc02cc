// Per-family parsing: JS argument object -> params struct, with every buffer's size checked
// against the shapes before any backend sees a pointer.
#include "families.h"

namespace select_attn::napi {
namespace {

size_t mul(Args& a, std::initializer_list<int64_t> xs) {
  unsigned __int128 r = 1;
  for (int64_t x : xs) {
    if (x < 0) throw ArgError{Code::invalid_arg, std::string(a.family()) + ": negative size"};
    r *= (unsigned __int128)x;
    if (r > ((unsigned __int128)1 << 62)) throw ArgError{Code::invalid_arg, std::string(a.family()) + ": tensor size overflows"};
  }
  return (size_t)r;
}

int positive(Args& a, const char* name) {
  int v = a.i32(name);
  if (v < 1) throw ArgError{Code::invalid_arg, std::string(a.family()) + ": " + name + " must be >= 1, got " + std::to_string(v)};
  return v;
}
int nonneg(Args& a, const char* name, int def = 0, bool required = true) {
  int v = a.i32(name, def, required);
  if (v < 0) throw ArgError{Code::invalid_arg, std::string(a.family()) + ": " + name + " must be >= 0, got " + std::to_string(v)};
  return v;
}

Layout layout_of(Args& a, Napi::Object o) {
  Napi::Value v = o.Get("layout");
  std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "NHD";
  if (s == "NHD") return Layout::NHD;
  if (s == "HND") return Layout::HND;
  throw ArgError{Code::invalid_arg, std::string(a.family()) + ": layout must be NHD or HND, got " + s};
}

}  // namespace

QuestMetadataParams parse_quest_metadata(Args& a, Napi::Object o) {
  QuestMetadataParams p{};
  p.dtype = a.dtype("dtype");
  p.layout = layout_of(a, o);
  p.num_seqs = nonneg(a, "numSeqs");
  p.num_kv_heads = positive(a, "numKvHeads");
  p.head_dim = positive(a, "headDim");
  p.block_size = positive(a, "blockSize");
  p.meta_rows = positive(a, "metaRows");
  p.max_blocks_per_seq = nonneg(a, "maxBlocksPerSeq");
  p.max_meta_pages_per_seq = nonneg(a, "maxMetaPagesPerSeq");
  p.num_blocks = a.i64("numBlocks");
  p.num_meta_pages = a.i64("numMetaPages");
  const int64_t es = dtype_size(p.dtype), B = p.num_seqs;
  p.k_cache = a.ptr("kCache", mul(a, {p.num_blocks, p.block_size, p.num_kv_heads, p.head_dim, es}));
  p.block_tables = a.typed<int32_t>("blockTables", mul(a, {B, p.max_blocks_per_seq}));
  p.seq_lens = a.typed<int32_t>("seqLens", mul(a, {B}));
  p.meta_block_tables = a.typed<int32_t>("metaBlockTables", mul(a, {B, p.max_meta_pages_per_seq}));
  p.maybe_start_blocks = a.typed<int32_t>("startBlocks", mul(a, {B}), false);
  const size_t meta = mul(a, {p.num_meta_pages, p.meta_rows, p.num_kv_heads, p.head_dim, es});
  p.max_meta = a.ptr("maxMeta", meta);
  p.min_meta = a.ptr("minMeta", meta);
  return p;
}

QuestSelectParams parse_quest_select(Args& a, Napi::Object o) {
  QuestSelectParams p{};
  p.query_dtype = a.dtype("queryDtype");
  p.meta_dtype = a.dtype("metaDtype");
  p.num_seqs = nonneg(a, "numSeqs");
  p.num_qo_heads = positive(a, "numQoHeads");
  p.num_kv_heads = positive(a, "numKvHeads");
  if (p.num_qo_heads % p.num_kv_heads != 0)
    throw ArgError{Code::invalid_arg, "quest_select: numQoHeads must be a multiple of numKvHeads"};
  p.head_dim = positive(a, "headDim");
  p.block_size = positive(a, "blockSize");
  p.meta_rows = positive(a, "metaRows");
  p.max_meta_pages_per_seq = nonneg(a, "maxMetaPagesPerSeq");
  p.num_meta_pages = a.i64("numMetaPages");
  p.k = positive(a, "k");
  Napi::Value gr = o.Get("groupReduce");
  std::string g = gr.IsString() ? gr.As<Napi::String>().Utf8Value() : "mean";
  if (g != "mean" && g != "perHead") throw ArgError{Code::invalid_arg, "quest_select: groupReduce must be mean or perHead"};
  p.group_reduce = g == "mean" ? GroupReduce::mean : GroupReduce::per_head;
  p.sink_blocks = nonneg(a, "sinkBlocks", 0, false);
  p.window_blocks = nonneg(a, "windowBlocks", 0, false);
  const int64_t B = p.num_seqs, rows = g == "mean" ? p.num_kv_heads : p.num_qo_heads;
  p.query = a.ptr("query", mul(a, {B, p.num_qo_heads, p.head_dim, (int64_t)dtype_size(p.query_dtype)}));
  const size_t meta = mul(a, {p.num_meta_pages, p.meta_rows, p.num_kv_heads, p.head_dim, (int64_t)dtype_size(p.meta_dtype)});
  p.max_meta = a.ptr("maxMeta", meta);
  p.min_meta = a.ptr("minMeta", meta);
  p.meta_block_tables = a.typed<int32_t>("metaBlockTables", mul(a, {B, p.max_meta_pages_per_seq}));
  p.seq_lens = a.typed<int32_t>("seqLens", mul(a, {B}));
  p.tokens_since_update = a.typed<int32_t>("tokensSinceUpdate", mul(a, {B}));
  p.selected = a.typed<int32_t>("selected", mul(a, {B, rows, p.k}));
  p.maybe_num_selected = a.typed<int32_t>("numSelected", mul(a, {B, rows}), false);
  return p;
}

PagedAttentionParams parse_paged_attention(Args& a, Napi::Object o) {
  PagedAttentionParams p{};
  p.q_dtype = a.dtype("qDtype");
  p.kv_dtype = a.dtype("kvDtype");
  p.layout = layout_of(a, o);
  p.num_seqs = nonneg(a, "numSeqs");
  p.num_qo_heads = positive(a, "numQoHeads");
  p.num_kv_heads = positive(a, "numKvHeads");
  if (p.num_qo_heads % p.num_kv_heads != 0)
    throw ArgError{Code::invalid_arg, "paged_attention: numQoHeads must be a multiple of numKvHeads"};
  p.head_dim = positive(a, "headDim");
  p.block_size = positive(a, "blockSize");
  p.max_blocks_per_seq = nonneg(a, "maxBlocksPerSeq");
  p.num_blocks = a.i64("numBlocks");
  p.total_q = a.i64("totalQ");
  p.max_q_len = nonneg(a, "maxQLen");
  p.scale = (float)a.f64("scale", 1.0 / std::sqrt((double)p.head_dim));
  p.causal = a.flag("causal", true);
  p.sliding_window = nonneg(a, "slidingWindow", 0, false);
  p.sink_tokens = nonneg(a, "sinkTokens", 0, false);
  p.softcap = (float)a.f64("softcap", 0.0);
  if (!(p.softcap >= 0)) throw ArgError{Code::invalid_arg, "paged_attention: softcap must be >= 0"};
  p.sel_rows = nonneg(a, "selRows", 0, false);
  p.sel_k = nonneg(a, "selK", 0, false);
  const int64_t B = p.num_seqs, H = p.num_qo_heads, D = p.head_dim;
  const int64_t qes = dtype_size(p.q_dtype), kes = dtype_size(p.kv_dtype);
  p.q = a.ptr("q", mul(a, {p.total_q, H, D, qes}));
  const size_t cache = mul(a, {p.num_blocks, p.block_size, p.num_kv_heads, D, kes});
  p.k_cache = a.ptr("kCache", cache);
  p.v_cache = a.ptr("vCache", cache);
  p.block_tables = a.typed<int32_t>("blockTables", mul(a, {B, p.max_blocks_per_seq}));
  p.seq_lens = a.typed<int32_t>("seqLens", mul(a, {B}));
  p.cu_seqlens_q = a.typed<int32_t>("cuSeqlensQ", mul(a, {B + 1}));
  p.maybe_sink_logits = a.typed<float>("sinkLogits", mul(a, {H}), false);
  p.maybe_alibi_slopes = a.typed<float>("alibiSlopes", mul(a, {H}), false);
  p.maybe_block_selection = a.typed<int32_t>("blockSelection", mul(a, {B, p.sel_rows, p.sel_k}), false);
  if (p.maybe_block_selection && p.sel_rows != p.num_kv_heads && p.sel_rows != p.num_qo_heads)
    throw ArgError{Code::invalid_arg, "paged_attention: blockSelection rows must be numKvHeads or numQoHeads"};
  if (!p.maybe_block_selection) p.sel_rows = p.sel_k = 0;
  p.out = a.ptr("out", mul(a, {p.total_q, H, D, qes}));
  p.maybe_lse = a.typed<float>("lse", mul(a, {p.total_q, H}), false);
  return p;
}

CacheWriteParams parse_cache_write(Args& a, Napi::Object o) {
  CacheWriteParams p{};
  p.dtype = a.dtype("dtype");
  p.layout = layout_of(a, o);
  p.num_tokens = a.i64("numTokens");
  p.num_kv_heads = positive(a, "numKvHeads");
  p.head_dim = positive(a, "headDim");
  p.block_size = positive(a, "blockSize");
  p.num_blocks = a.i64("numBlocks");
  const int64_t es = dtype_size(p.dtype);
  const size_t kv = mul(a, {p.num_tokens, p.num_kv_heads, p.head_dim, es});
  p.key = a.ptr("key", kv);
  p.value = a.ptr("value", kv);
  const size_t cache = mul(a, {p.num_blocks, p.block_size, p.num_kv_heads, p.head_dim, es});
  p.k_cache = a.ptr("kCache", cache);
  p.v_cache = a.ptr("vCache", cache);
  p.slot_mapping = a.typed<int32_t>("slotMapping", mul(a, {p.num_tokens}));
  return p;
}

QuestMetadataAppendParams parse_quest_metadata_append(Args& a, Napi::Object) {
  QuestMetadataAppendParams p{};
  p.dtype = a.dtype("dtype");
  p.num_tokens = a.i64("numTokens");
  p.num_seqs = nonneg(a, "numSeqs");
  p.num_kv_heads = positive(a, "numKvHeads");
  p.head_dim = positive(a, "headDim");
  p.block_size = positive(a, "blockSize");
  p.meta_rows = positive(a, "metaRows");
  p.max_meta_pages_per_seq = nonneg(a, "maxMetaPagesPerSeq");
  p.num_meta_pages = a.i64("numMetaPages");
  const int64_t es = dtype_size(p.dtype);
  p.key = a.ptr("key", mul(a, {p.num_tokens, p.num_kv_heads, p.head_dim, es}));
  const size_t meta = mul(a, {p.num_meta_pages, p.meta_rows, p.num_kv_heads, p.head_dim, es});
  p.max_meta = a.ptr("maxMeta", meta);
  p.min_meta = a.ptr("minMeta", meta);
  p.meta_block_tables = a.typed<int32_t>("metaBlockTables", mul(a, {(int64_t)p.num_seqs, p.max_meta_pages_per_seq}));
  p.seq_idx = a.typed<int32_t>("seqIdx", mul(a, {p.num_tokens}));
  p.positions = a.typed<int32_t>("positions", mul(a, {p.num_tokens}));
  return p;
}

}  // namespace select_attn::napi
