// quest_select on cpu (placeholder until the kernel lands: reports unsupported, never computes).
#include "isa.h"

namespace select_attn::cpu::SA_ISA {
Status quest_select(const QuestSelectParams&) {
  return Status::unsupported("quest_select (cpu): not implemented yet");
}
}  // namespace select_attn::cpu::SA_ISA
