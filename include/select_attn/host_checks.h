// Checks of host-resident ids and lengths shared by the host backends (cpu, ascend-sim): tables wide
// enough for seqLens, ids inside their pools, slots and positions in range. Each returns the first
// violation as SA_ERR_INVALID_ARG naming the family, the backend and the argument.
#pragma once
#include <string>

#include "select_attn/kv_cache.h"

namespace select_attn {

// The first ceil(seqLens[b] / per) entries of each row of `table` [rows, width] must lie in [0, pool).
inline Status check_table(const char* family, const char* backend, const char* arg, const int32_t* table, int rows,
                          int width, const int32_t* lens, int64_t per, int64_t pool) {
  const std::string where = std::string(family) + " (" + backend + "): ";
  for (int b = 0; b < rows; ++b) {
    const int64_t len = lens[b];
    if (len < 0) return Status::invalid(where + "seqLens[" + std::to_string(b) + "] = " + std::to_string(len) + " is negative");
    const int64_t used = (len + per - 1) / per;
    if (used > width)
      return Status::invalid(where + arg + " has " + std::to_string(width) + " columns but sequence " + std::to_string(b) +
                             " needs " + std::to_string(used));
    for (int64_t j = 0; j < used; ++j) {
      const int32_t id = table[(int64_t)b * width + j];
      if (id < 0 || id >= pool)
        return Status::invalid(where + arg + "[" + std::to_string(b) + ", " + std::to_string(j) + "] = " + std::to_string(id) +
                               " is outside the pool [0, " + std::to_string(pool) + ")");
    }
  }
  return Status::Ok();
}

// cacheWrite: every slot is -1 (skipped) or inside [0, numBlocks * blockSize).
inline Status check_slots(const char* backend, const CacheWriteParams& p) {
  const int64_t slots = p.num_blocks * p.block_size;
  for (int64_t t = 0; t < p.num_tokens; ++t) {
    const int32_t s = p.slot_mapping[t];
    if (s < -1 || s >= slots)
      return Status::invalid(std::string("kv_cache (") + backend + "): slotMapping[" + std::to_string(t) + "] = " +
                             std::to_string(s) + " is outside [-1, " + std::to_string(slots) + ")");
  }
  return Status::Ok();
}

// questMetadataAppend: sequence ids in range, positions non-negative and inside the metadata table,
// the metadata page ids they need inside the pool.
inline Status check_append(const char* backend, const QuestMetadataAppendParams& p) {
  const std::string where = std::string("kv_cache (") + backend + "): ";
  for (int64_t t = 0; t < p.num_tokens; ++t) {
    const int32_t b = p.seq_idx[t], pos = p.positions[t];
    if (b < 0 || b >= p.num_seqs)
      return Status::invalid(where + "seqIdx[" + std::to_string(t) + "] = " + std::to_string(b) + " is outside [0, " +
                             std::to_string(p.num_seqs) + ")");
    if (pos < 0) return Status::invalid(where + "positions[" + std::to_string(t) + "] = " + std::to_string(pos) + " is negative");
    const int64_t page = (int64_t)(pos / p.block_size) / p.meta_rows;
    if (page >= p.max_meta_pages_per_seq)
      return Status::invalid(where + "positions[" + std::to_string(t) + "] = " + std::to_string(pos) + " needs metadata page " +
                             std::to_string(page) + " but metaBlockTables has " + std::to_string(p.max_meta_pages_per_seq) +
                             " columns");
    const int32_t id = p.meta_block_tables[(int64_t)b * p.max_meta_pages_per_seq + page];
    if (id < 0 || id >= p.num_meta_pages)
      return Status::invalid(where + "metaBlockTables[" + std::to_string(b) + ", " + std::to_string(page) + "] = " +
                             std::to_string(id) + " is outside the pool [0, " + std::to_string(p.num_meta_pages) + ")");
  }
  return Status::Ok();
}

}  // namespace select_attn
