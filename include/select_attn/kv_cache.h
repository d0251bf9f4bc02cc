// kv_cache (SPEC section 4): writing new tokens into the paged caches and keeping Quest metadata exact.
#pragma once
#include "select_attn/common.h"

namespace select_attn {

struct CacheWriteParams {
  DType dtype;                  // of key, value and both caches
  Layout layout;
  int64_t num_tokens;           // T
  int num_kv_heads;             // N
  int head_dim;                 // D
  int block_size;               // bs
  int64_t num_blocks;           // pool size
  const void* key;              // [T, N, D]
  const void* value;            // [T, N, D]
  void* k_cache;                // paged
  void* v_cache;                // paged
  const int32_t* slot_mapping;  // [T], -1 = skip
};

struct QuestMetadataAppendParams {
  DType dtype;                  // of key and metadata
  int64_t num_tokens;           // T
  int num_seqs;                 // B (rows of meta_block_tables)
  int num_kv_heads;             // N
  int head_dim;                 // D
  int block_size;               // bs
  int meta_rows;                // rows per metadata page
  int max_meta_pages_per_seq;   // MMBPR
  int64_t num_meta_pages;       // metadata pool size
  const void* key;                     // [T, N, D]
  void* max_meta;                      // [numMetaPages, metaRows, N, D]
  void* min_meta;                      // [numMetaPages, metaRows, N, D]
  const int32_t* meta_block_tables;    // [B, MMBPR]
  const int32_t* seq_idx;              // [T]
  const int32_t* positions;            // [T]
};

}  // namespace select_attn
