// Host tiling for the Ascend C kernels: picks tile sizes that fit the Unified Buffer for any
// supported shape, and reports the exact UB bytes each kernel will carve (the sum of its
// 32-byte-rounded InitBuffer calls, in the kernel's order). Plain C++, shared by ascend and ascend-sim.
#pragma once
#include <cstdint>

#include "select_attn/common.h"
#include "select_attn/kv_cache.h"
#include "select_attn/quest_metadata.h"
#include "select_attn/quest_select.h"
#include "tiling_data.h"

namespace select_attn::ascendc {

// UB a kernel may carve: 192 KB minus the runtime's 256 B and the framework's 8 KB reserve.
constexpr uint32_t kUbBudget = 192 * 1024 - 256 - 8 * 1024;
// Vector cores (AIV) of an Ascend 910B: 24 AI cores with 2 vector cores each.
constexpr int kDefaultBlockDim = 48;
// Largest headDim the select kernel takes: a metadata row stride of D floats must fit the 8-bit
// repeat stride (255 blocks of 32 bytes).
constexpr int kMaxHeadDim = 2040;
// MrgSort lists hold at most 4095 pairs: the running top list is capped below that.
constexpr uint32_t kMaxTopCap = 4064;

inline uint32_t round_up(uint64_t x, uint64_t m) { return (uint32_t)((x + m - 1) / m * m); }
inline uint32_t ub_round(uint64_t bytes) { return round_up(bytes, 32); }

// Each returns ok and fills *t, or unsupported with the reason (e.g. a shape that cannot fit).
Status tile_quest_metadata(const QuestMetadataParams& p, int block_dim, QuestMetadataTiling* t);
Status tile_quest_select(const QuestSelectParams& p, int block_dim, QuestSelectTiling* t);
Status tile_cache_write(const CacheWriteParams& p, int block_dim, CacheWriteTiling* t);
Status tile_metadata_append(const QuestMetadataAppendParams& p, int block_dim, MetadataAppendTiling* t);

// What a kernel status word (KernelStatus) means, for error messages.
const char* kernel_status_text(int32_t code);

// UB bytes the kernel carves for a tiling (mirrors its InitBuffer calls).
uint32_t ub_bytes(const QuestMetadataTiling& t, DType dtype);
uint32_t ub_bytes(const QuestSelectTiling& t, DType query_dtype, DType meta_dtype);
uint32_t ub_bytes(const CacheWriteTiling& t, DType dtype);
uint32_t ub_bytes(const MetadataAppendTiling& t, DType dtype);

}  // namespace select_attn::ascendc
