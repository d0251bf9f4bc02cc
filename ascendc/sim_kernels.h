// Kernel entry points of the ascend-sim build (the Ascend C kernels compiled against the twin),
// looked up by dtype (DType order: f32, f16, bf16). Only float dtypes reach these tables.
#pragma once
#include <cstdint>

#include "select_attn/common.h"

namespace select_attn::ascend_sim {

using Gm = uint8_t*;
// (query, maxMeta, minMeta, metaBlockTables, seqLens, tokensSinceUpdate, selected, numSelected, status, tiling)
using QuestSelectKernel = void (*)(Gm, Gm, Gm, Gm, Gm, Gm, Gm, Gm, Gm, Gm);
// (kCache, blockTables, seqLens, metaBlockTables, startBlocks, maxMeta, minMeta, status, tiling)
using QuestMetadataKernel = void (*)(Gm, Gm, Gm, Gm, Gm, Gm, Gm, Gm, Gm);
// (key, value, kCache, vCache, slotMapping, status, tiling)
using CacheWriteKernel = void (*)(Gm, Gm, Gm, Gm, Gm, Gm, Gm);
// (key, maxMeta, minMeta, metaBlockTables, seqIdx, positions, status, tiling)
using MetadataAppendKernel = void (*)(Gm, Gm, Gm, Gm, Gm, Gm, Gm, Gm);

QuestSelectKernel quest_select_kernel(DType query, DType meta);
QuestMetadataKernel quest_metadata_kernel(DType t);
CacheWriteKernel cache_write_kernel(DType t);
MetadataAppendKernel metadata_append_kernel(DType t);

}  // namespace select_attn::ascend_sim
