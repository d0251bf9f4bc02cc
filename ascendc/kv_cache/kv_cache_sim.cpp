// The kv_cache kernels compiled against the ascend-sim twin (the same source CANN compiles).
#include "../twin/kernel_operator.h"
#pragma GCC visibility push(hidden)
#include "kv_cache.cpp"
#pragma GCC visibility pop
#include "../sim_kernels.h"

namespace select_attn::ascend_sim {

CacheWriteKernel cache_write_kernel(DType t) {
  static const CacheWriteKernel table[3] = {sa_cache_write_f32, sa_cache_write_f16, sa_cache_write_bf16};
  return table[(int)t];
}
MetadataAppendKernel metadata_append_kernel(DType t) {
  static const MetadataAppendKernel table[3] = {sa_metadata_append_f32, sa_metadata_append_f16, sa_metadata_append_bf16};
  return table[(int)t];
}

}  // namespace select_attn::ascend_sim
