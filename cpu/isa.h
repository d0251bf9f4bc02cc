// Runtime CPU dispatch. Kernel files (cpu/<family>.cpp) are compiled once per ISA (generic, avx2, avx512)
// with SA_ISA set to that namespace; backend.cpp picks a table at load time (SA_CPU_ISA overrides).
#pragma once
#include "select_attn/kv_cache.h"
#include "select_attn/paged_attention.h"
#include "select_attn/quest_metadata.h"
#include "select_attn/quest_select.h"

namespace select_attn::cpu {

struct KernelTable {
  const char* isa;
  Status (*quest_metadata)(const QuestMetadataParams&);
  Status (*quest_select)(const QuestSelectParams&);
  Status (*paged_attention)(const PagedAttentionParams&);
  Status (*cache_write)(const CacheWriteParams&);
  Status (*quest_metadata_append)(const QuestMetadataAppendParams&);
  float (*stream_read)(const void* p, size_t bytes);  // sum of the floats, so the read is not elided
};

#define SA_DECLARE_ISA(ns)                                            \
  namespace ns {                                                      \
  Status quest_metadata(const QuestMetadataParams&);                  \
  Status quest_select(const QuestSelectParams&);                      \
  Status paged_attention(const PagedAttentionParams&);                \
  Status cache_write(const CacheWriteParams&);                        \
  Status quest_metadata_append(const QuestMetadataAppendParams&);     \
  float stream_read(const void* p, size_t bytes);                     \
  extern const KernelTable table;                                     \
  }
SA_DECLARE_ISA(generic)
#if defined(__x86_64__) || defined(_M_X64)
#define SA_HAVE_X86_ISAS 1
SA_DECLARE_ISA(avx2)
SA_DECLARE_ISA(avx512)
#endif
#undef SA_DECLARE_ISA

const KernelTable& kernels();  // the table chosen for this CPU

}  // namespace select_attn::cpu
