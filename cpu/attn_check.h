// Host-side argument checks of paged_attention that memory safety needs (SPEC section 5), shared by the
// cpu backend before any kernel runs. Not an ISA file: included from cpu/backend.cpp only.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>

#include "select_attn/paged_attention.h"

namespace select_attn::cpu {

// cuSeqlensQ monotone from 0 to totalQ, qLen_b <= seqLens[b], maxQLen covering every qLen_b, block
// selection ids in [-1, L_b). Block table ids are checked separately (check_table in backend.cpp).
inline Status check_paged_attention(const PagedAttentionParams& p) {
  const std::string fam = "paged_attention (cpu): ";
  if (!std::isfinite(p.scale)) return Status::invalid(fam + "scale must be finite, got " + std::to_string(p.scale));
  if (!(p.softcap >= 0) || !std::isfinite(p.softcap))
    return Status::invalid(fam + "softcap must be 0 (off) or a finite value > 0, got " + std::to_string(p.softcap));
  if (p.sliding_window < 0) return Status::invalid(fam + "slidingWindow must be >= 0, got " + std::to_string(p.sliding_window));
  if (p.sink_tokens < 0) return Status::invalid(fam + "sinkTokens must be >= 0, got " + std::to_string(p.sink_tokens));
  const int32_t* cu = p.cu_seqlens_q;
  if (cu[0] != 0) return Status::invalid(fam + "cuSeqlensQ[0] must be 0, got " + std::to_string(cu[0]));
  for (int b = 0; b < p.num_seqs; ++b) {
    const int64_t q_len = (int64_t)cu[b + 1] - cu[b];
    if (q_len < 0)
      return Status::invalid(fam + "cuSeqlensQ must be non-decreasing, got cuSeqlensQ[" + std::to_string(b + 1) + "] = " +
                             std::to_string(cu[b + 1]) + " < cuSeqlensQ[" + std::to_string(b) + "] = " + std::to_string(cu[b]));
    if (q_len > p.seq_lens[b])
      return Status::invalid(fam + "sequence " + std::to_string(b) + " has " + std::to_string(q_len) +
                             " queries but seqLens[" + std::to_string(b) + "] = " + std::to_string(p.seq_lens[b]) +
                             " (the queries are the last qLen tokens of the sequence)");
    if (q_len > p.max_q_len)
      return Status::invalid(fam + "maxQLen = " + std::to_string(p.max_q_len) + " but sequence " + std::to_string(b) +
                             " has " + std::to_string(q_len) + " queries");
  }
  if (cu[p.num_seqs] != p.total_q)
    return Status::invalid(fam + "cuSeqlensQ[" + std::to_string(p.num_seqs) + "] must equal totalQ = " +
                           std::to_string(p.total_q) + ", got " + std::to_string(cu[p.num_seqs]));
  if (p.maybe_block_selection) {
    if (p.sel_rows != p.num_kv_heads && p.sel_rows != p.num_qo_heads)
      return Status::invalid(fam + "blockSelection rows must be numKvHeads or numQoHeads, got " + std::to_string(p.sel_rows));
    if (p.sel_k < 1) return Status::invalid(fam + "blockSelection must have kSel >= 1 columns, got " + std::to_string(p.sel_k));
    for (int b = 0; b < p.num_seqs; ++b) {
      const int64_t L = ((int64_t)p.seq_lens[b] + p.block_size - 1) / p.block_size;
      const int32_t* row = p.maybe_block_selection + (int64_t)b * p.sel_rows * p.sel_k;
      for (int64_t i = 0; i < (int64_t)p.sel_rows * p.sel_k; ++i) {
        if (row[i] < -1 || row[i] >= L)
          return Status::invalid(fam + "blockSelection[" + std::to_string(b) + ", " + std::to_string(i / p.sel_k) + ", " +
                                 std::to_string(i % p.sel_k) + "] = " + std::to_string(row[i]) +
                                 " is outside [-1, " + std::to_string(L) + ") (logical blocks of sequence " +
                                 std::to_string(b) + ")");
      }
    }
  }
  return Status::Ok();
}

}  // namespace select_attn::cpu
