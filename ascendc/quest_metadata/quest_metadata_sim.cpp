// The quest_metadata kernel compiled against the ascend-sim twin (the same source CANN compiles).
#include "../twin/kernel_operator.h"
#pragma GCC visibility push(hidden)
#include "quest_metadata.cpp"
#pragma GCC visibility pop
#include "../sim_kernels.h"

namespace select_attn::ascend_sim {

QuestMetadataKernel quest_metadata_kernel(DType t) {
  static const QuestMetadataKernel table[3] = {sa_quest_metadata_f32, sa_quest_metadata_f16, sa_quest_metadata_bf16};
  return table[(int)t];
}

}  // namespace select_attn::ascend_sim
