// quest_metadata (SPEC section 1): per KV block, per KV head, per channel max/min of the keys.
#pragma once
#include "select_attn/common.h"

namespace select_attn {

struct QuestMetadataParams {
  DType dtype;                  // of kCache, maxMeta and minMeta
  Layout layout;                // of kCache
  int num_seqs;                 // B
  int num_kv_heads;             // N
  int head_dim;                 // D
  int block_size;               // bs
  int meta_rows;                // rows per metadata page (default bs)
  int max_blocks_per_seq;       // MKBPR: width of block_tables
  int max_meta_pages_per_seq;   // MMBPR: width of meta_block_tables
  int64_t num_blocks;           // KV pool size
  int64_t num_meta_pages;       // metadata pool size
  const void* k_cache;                 // [numBlocks, bs, N, D] (NHD) or [numBlocks, N, bs, D] (HND)
  const int32_t* block_tables;         // [B, MKBPR]
  const int32_t* seq_lens;             // [B]
  const int32_t* meta_block_tables;    // [B, MMBPR]
  const int32_t* maybe_start_blocks;   // [B] or null (all 0)
  void* max_meta;                      // [numMetaPages, metaRows, N, D]
  void* min_meta;                      // [numMetaPages, metaRows, N, D]
};

}  // namespace select_attn
