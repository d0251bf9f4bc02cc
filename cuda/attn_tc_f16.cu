// Tensor-core paged attention instances for f16 (kept apart from bf16 so the two compile in parallel).
#include "attn_decode.cuh"
#include "attn_wg.cuh"

namespace select_attn::cuda {
Status launch_tc_f16(const PagedAttentionParams& p, const Launch& l, AttnPlan plan) {
  bool taken = false;  // the Hopper prefill kernel first (attn_wg.cuh), else mma.sync
  SA_RETURN_IF_ERROR(launch_wg<__half>(p, l, plan, &taken));
  return taken ? Status::Ok() : launch_tc<__half>(p, l, plan);
}
}  // namespace select_attn::cuda
