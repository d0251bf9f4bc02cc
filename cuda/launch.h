// What the cuda backend hands each family's launcher: its stream, the device error record, device
// facts, and a growing workspace. Each cuda/<family>.cu defines supports_* and launch_* (one
// dispatch table per family, so "supported" and "dispatched" agree).
#pragma once
#include "common.cuh"
#include "select_attn/kv_cache.h"
#include "select_attn/paged_attention.h"
#include "select_attn/quest_metadata.h"
#include "select_attn/quest_select.h"

namespace select_attn::cuda {

// Scratch device memory owned by the backend; grows on demand (growing frees the old buffer, which
// waits for queued work). Counters are int32 words that start at zero; kernels leave them at zero.
class Workspace {
 public:
  virtual ~Workspace() = default;
  virtual Status get(size_t bytes, void** p) = 0;
  virtual Status counters(size_t n, int** p) = 0;
};

struct Launch {
  cudaStream_t stream;
  DevError* err;       // device pointer
  int num_sms;
  int smem_optin;      // max dynamic shared memory per block (bytes)
  Workspace* ws;
};

Status supports_quest_metadata(const QuestMetadataParams& p);
Status launch_quest_metadata(const QuestMetadataParams& p, const Launch& l);
Status supports_quest_select(const QuestSelectParams& p);
Status launch_quest_select(const QuestSelectParams& p, const Launch& l);
Status supports_paged_attention(const PagedAttentionParams& p);
Status launch_paged_attention(const PagedAttentionParams& p, const Launch& l);
Status supports_cache_write(const CacheWriteParams& p);
Status launch_cache_write(const CacheWriteParams& p, const Launch& l);
Status supports_meta_append(const QuestMetadataAppendParams& p);
Status launch_meta_append(const QuestMetadataAppendParams& p, const Launch& l);

// Grid dimensions must fit: y and z at most 65535.
inline Status check_grid(const char* fam, long long x, long long y, long long z) {
  if (x > 2147483647LL || y > 65535 || z > 65535)
    return Status::unsupported(std::string(fam) + " (cuda): problem too large for one launch (grid " + std::to_string(x) +
                               " x " + std::to_string(y) + " x " + std::to_string(z) + ")");
  return Status::Ok();
}

}  // namespace select_attn::cuda
