// Tensor-core paged attention instances for f16 (kept apart from bf16 so the two compile in parallel).
#include "attn_decode.cuh"

namespace select_attn::cuda {
Status launch_tc_f16(const PagedAttentionParams& p, const Launch& l, AttnPlan plan) { return launch_tc<__half>(p, l, plan); }
}  // namespace select_attn::cuda
