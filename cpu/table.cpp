// One KernelTable per ISA build of the kernel files (compiled once per ISA like them).
#include "isa.h"

namespace select_attn::cpu::SA_ISA {
const KernelTable table = {SA_ISA_NAME, &quest_metadata, &quest_select, &paged_attention, &cache_write,
                           &quest_metadata_append, &stream_read};
}
