// quest_select (SPEC section 2): top-k KV blocks per (sequence, KV head or query head) for one decode query.
#pragma once
#include "select_attn/common.h"

namespace select_attn {

enum class GroupReduce : int { mean = 0, per_head = 1 };

struct QuestSelectParams {
  DType query_dtype;            // of query
  DType meta_dtype;             // of maxMeta/minMeta
  int num_seqs;                 // B
  int num_qo_heads;             // H
  int num_kv_heads;             // N
  int head_dim;                 // D
  int block_size;               // bs: tokens per KV block
  int meta_rows;                // rows per metadata page
  int max_meta_pages_per_seq;   // MMBPR
  int64_t num_meta_pages;       // metadata pool size
  int k;                        // >= 1
  GroupReduce group_reduce;     // mean: rows = N; per_head: rows = H
  int sink_blocks;              // >= 0
  int window_blocks;            // >= 0
  const void* query;                      // [B, H, D]
  const void* max_meta;                   // [numMetaPages, metaRows, N, D]
  const void* min_meta;                   // [numMetaPages, metaRows, N, D]
  const int32_t* meta_block_tables;       // [B, MMBPR]
  const int32_t* seq_lens;                // [B]
  const int32_t* tokens_since_update;     // [B] (TS expands a scalar)
  int32_t* selected;                      // [B, rows, k], ascending ids then -1
  int32_t* maybe_num_selected;            // [B, rows] or null
};

}  // namespace select_attn
