// paged_attention on cpu (placeholder until the kernel lands: reports unsupported, never computes).
#include "isa.h"

namespace select_attn::cpu::SA_ISA {
Status paged_attention(const PagedAttentionParams&) {
  return Status::unsupported("paged_attention (cpu): not implemented yet");
}
}  // namespace select_attn::cpu::SA_ISA
