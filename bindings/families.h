// Per-family parsing of JS argument objects into params structs (families.cc).
#pragma once
#include <cmath>

#include "args.h"

namespace select_attn::napi {
QuestMetadataParams parse_quest_metadata(Args& a, Napi::Object o);
QuestSelectParams parse_quest_select(Args& a, Napi::Object o);
PagedAttentionParams parse_paged_attention(Args& a, Napi::Object o);
CacheWriteParams parse_cache_write(Args& a, Napi::Object o);
QuestMetadataAppendParams parse_quest_metadata_append(Args& a, Napi::Object o);
}  // namespace select_attn::napi
