// paged_attention (SPEC section 3): decode, multi-query, chunked prefill and block-sparse attention on a paged KV cache.
#pragma once
#include "select_attn/common.h"

namespace select_attn {

struct PagedAttentionParams {
  DType q_dtype;                // of q and out
  DType kv_dtype;               // of kCache and vCache
  Layout layout;
  int num_seqs;                 // B
  int num_qo_heads;             // H
  int num_kv_heads;             // N
  int head_dim;                 // D
  int block_size;               // bs
  int max_blocks_per_seq;       // MKBPR
  int64_t num_blocks;           // KV pool size
  int64_t total_q;              // rows of q
  int max_q_len;                // max over b of qLen_b (host-computed)
  float scale;                  // softmax scale
  bool causal;
  int sliding_window;           // W > 0, or 0 for none
  int sink_tokens;              // S >= 0
  float softcap;                // c > 0, or 0 for none
  int sel_rows;                 // N or H when block selection is given, else 0
  int sel_k;                    // kSel
  const void* q;                          // [totalQ, H, D]
  const void* k_cache;                    // paged
  const void* v_cache;                    // paged
  const int32_t* block_tables;            // [B, MKBPR]
  const int32_t* seq_lens;                // [B]
  const int32_t* cu_seqlens_q;            // [B+1] (TS fills the default)
  const float* maybe_sink_logits;         // [H] or null
  const float* maybe_alibi_slopes;        // [H] or null
  const int32_t* maybe_block_selection;   // [B, sel_rows, kSel] or null
  void* out;                              // [totalQ, H, D], dtype q_dtype
  float* maybe_lse;                       // [totalQ, H] or null
};

}  // namespace select_attn
