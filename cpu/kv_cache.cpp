// kv_cache on cpu (placeholder until the kernel lands: reports unsupported, never computes).
#include "isa.h"

namespace select_attn::cpu::SA_ISA {
Status cache_write(const CacheWriteParams&) { return Status::unsupported("kv_cache (cpu): not implemented yet"); }
Status quest_metadata_append(const QuestMetadataAppendParams&) {
  return Status::unsupported("kv_cache (cpu): not implemented yet");
}
}  // namespace select_attn::cpu::SA_ISA
