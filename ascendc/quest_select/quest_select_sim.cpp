// The quest_select kernel compiled against the ascend-sim twin (the same source CANN compiles).
#include "../twin/kernel_operator.h"
#pragma GCC visibility push(hidden)
#include "quest_select.cpp"
#pragma GCC visibility pop
#include "../sim_kernels.h"

namespace select_attn::ascend_sim {

QuestSelectKernel quest_select_kernel(DType q, DType m) {
  static const QuestSelectKernel table[3][3] = {
      {sa_quest_select_f32_f32, sa_quest_select_f32_f16, sa_quest_select_f32_bf16},
      {sa_quest_select_f16_f32, sa_quest_select_f16_f16, sa_quest_select_f16_bf16},
      {sa_quest_select_bf16_f32, sa_quest_select_bf16_f16, sa_quest_select_bf16_bf16}};
  return table[(int)q][(int)m];
}

}  // namespace select_attn::ascend_sim
