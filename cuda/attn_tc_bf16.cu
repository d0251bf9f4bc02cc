// Tensor-core paged attention instances for bf16 (kept apart from f16 so the two compile in parallel).
#include "attn_decode.cuh"
#include "attn_wg.cuh"

namespace select_attn::cuda {
Status launch_tc_bf16(const PagedAttentionParams& p, const Launch& l, AttnPlan plan) {
  bool taken = false;  // the Hopper prefill kernel first (attn_wg.cuh), else mma.sync
  SA_RETURN_IF_ERROR(launch_wg<__nv_bfloat16>(p, l, plan, &taken));
  return taken ? Status::Ok() : launch_tc<__nv_bfloat16>(p, l, plan);
}
}  // namespace select_attn::cuda
