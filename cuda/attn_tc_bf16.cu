// Tensor-core paged attention instances for bf16 (kept apart from f16 so the two compile in parallel).
#include "attn_decode.cuh"

namespace select_attn::cuda {
Status launch_tc_bf16(const PagedAttentionParams& p, const Launch& l, AttnPlan plan) { return launch_tc<__nv_bfloat16>(p, l, plan); }
}  // namespace select_attn::cuda
