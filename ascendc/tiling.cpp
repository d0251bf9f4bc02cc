// Host tiling for the Ascend C kernels (see tiling.h). Each plan starts from generous tiles and halves
// them until the kernel's buffers fit the UB budget; ub_bytes() mirrors the kernels' InitBuffer order.
#include "tiling.h"

#include <algorithm>
#include <string>

namespace select_attn::ascendc {

namespace {

uint32_t esize(DType t) { return (uint32_t)dtype_size(t); }
// Elements of a 32-byte-aligned UB row holding n elements of size es.
uint32_t row_elems(uint64_t n, uint32_t es) { return round_up(n, 32 / es); }

Status float_dtype(DType t, const char* fam, const char* arg) {
  if (t == DType::f32 || t == DType::f16 || t == DType::bf16) return Status::Ok();
  return Status::unsupported(std::string(fam) + " (ascend-sim): " + arg + " dtype " + dtype_name(t) +
                             " unsupported; supported: f32, f16, bf16");
}

}  // namespace

const char* kernel_status_text(int32_t code) {
  switch (code) {
    case kStatusBadBlockId: return "a block table entry outside the KV pool";
    case kStatusBadMetaPage: return "a metadata table entry outside the metadata pool";
    case kStatusTableTooNarrow: return "a sequence longer than its table allows";
    case kStatusBadSeqIdx: return "a seqIdx outside [0, numSeqs) or a negative position";
    case kStatusBadSlot: return "a slotMapping entry outside the cache";
    case kStatusBadTokensSince: return "a tokensSinceMetadataUpdate entry outside [0, seqLen]";
    case kStatusTopCap: return "more blocks to choose by score than fit the Unified Buffer (lower k)";
    case kStatusNegative: return "a negative seqLens or startBlocks entry";
  }
  return "an unknown status";
}

// ------------------------------------------------------------------------------ quest_metadata
uint32_t ub_bytes(const QuestMetadataTiling& t, DType dtype) {
  const uint32_t es = esize(dtype), CS = t.chunkStride, TT = t.tileTokens;
  uint32_t b = 2 * ub_round((uint64_t)TT * CS * es);                    // inQ (double-buffered K tiles)
  b += 2 * ub_round((uint64_t)std::max<uint32_t>(TT, 2) * CS * es);     // tmpA, tmpB: order-key scratch
  b += ub_round((uint64_t)std::max<uint32_t>(1, TT / 2) * CS * es);     // half: max-tree scratch
  b += 2 * ub_round((uint64_t)2 * CS * es);                             // outQ: [max | min] rows
  b += ub_round((uint64_t)t.zeroElems * es);                            // zero row source
  b += 256;                                                             // magnitude-mask pattern
  return b;
}

Status tile_quest_metadata(const QuestMetadataParams& p, int block_dim, QuestMetadataTiling* t) {
  SA_RETURN_IF_ERROR(float_dtype(p.dtype, "quest_metadata", "kCache"));
  *t = QuestMetadataTiling{};
  const uint32_t es = esize(p.dtype), N = p.num_kv_heads, D = p.head_dim;
  t->kCacheElems = (uint64_t)p.num_blocks * p.block_size * N * D;
  t->metaElems = (uint64_t)p.num_meta_pages * p.meta_rows * N * D;
  t->numSeqs = p.num_seqs;
  t->numKvHeads = N;
  t->headDim = D;
  t->blockSize = p.block_size;
  t->metaRows = p.meta_rows;
  t->maxBlocksPerSeq = p.max_blocks_per_seq;
  t->maxMetaPagesPerSeq = p.max_meta_pages_per_seq;
  t->numBlocks = (uint32_t)p.num_blocks;
  t->numMetaPages = (uint32_t)p.num_meta_pages;
  t->layoutHnd = p.layout == Layout::HND;
  t->hasStartBlocks = p.maybe_start_blocks != nullptr;
  t->segLen = p.layout == Layout::NHD ? N * D : D;
  t->numSegs = p.layout == Layout::NHD ? 1 : N;
  t->zeroElems = row_elems(std::min<uint64_t>((uint64_t)N * D, 2048), es);
  t->blockDim = (uint32_t)std::max(1, block_dim);
  if (p.num_blocks > 0xffffffffll || p.num_meta_pages > 0xffffffffll)
    return Status::unsupported("quest_metadata (ascend-sim): pools over 2^32 blocks are unsupported");
  uint32_t C = std::min<uint32_t>(t->segLen, 4096);
  uint32_t TT = std::min<uint32_t>(p.block_size, 64);
  for (;;) {
    t->chunk = C;
    t->chunkStride = row_elems(C, es);
    t->tileTokens = TT;
    if (ub_bytes(*t, p.dtype) <= kUbBudget) return Status::Ok();
    if (TT > 8) TT = (TT + 1) / 2;
    else if (C > 64) C = round_up(C / 2, 64);
    else break;
  }
  return Status::unsupported("quest_metadata (ascend-sim): no tiling fits the 192 KB Unified Buffer for headDim " +
                             std::to_string(D));
}

// ------------------------------------------------------------------------------ quest_select
uint32_t ub_bytes(const QuestSelectTiling& t, DType qd, DType md) {
  const uint32_t esq = esize(qd), esm = esize(md), TR = t.tileRows, TRp = t.tileRowsPad, KP = t.topCap;
  const uint32_t DSm = t.metaStride, DSq = t.queryStride, GT = t.queryRows, ncol = (t.headDim + 63) / 64;
  uint32_t b = 2 * ub_round((uint64_t)2 * TR * DSm * esm);           // inQ: [max rows | min rows], double-buffered
  b += ub_round((uint64_t)GT * DSq * esq);                           // qIn: query rows
  if (esq == 2) b += ub_round((uint64_t)GT * DSq * 4);                // qWork: query rows widened
  b += ub_round((uint64_t)DSm * 4);                                  // qSum: the scoring query, f32
  if (esm == 2) b += ub_round((uint64_t)2 * TR * DSm * 4);            // work: metadata tile widened
  if (ncol > 1) b += ub_round((uint64_t)ncol * TRp * 4);              // part: per-64-channel row sums
  b += 2 * ub_round((uint64_t)TRp * 4);                              // scores, index
  b += 2 * ub_round((uint64_t)t.sortCap * 8);                        // sortDst, sortTmp
  b += 2 * ub_round((uint64_t)(KP + TRp) * 8);                       // topA, topB
  b += 2 * ub_round((uint64_t)KP * 4);                               // ids, keys
  b += 2 * ub_round((uint64_t)t.outChunk * 4);                       // outQ
  b += ub_round((uint64_t)t.numSelChunk * 4);                        // numSelected staging
  return b;
}

Status tile_quest_select(const QuestSelectParams& p, int block_dim, QuestSelectTiling* t) {
  SA_RETURN_IF_ERROR(float_dtype(p.query_dtype, "quest_select", "query"));
  SA_RETURN_IF_ERROR(float_dtype(p.meta_dtype, "quest_select", "maxMeta"));
  const uint32_t D = p.head_dim, N = p.num_kv_heads, H = p.num_qo_heads;
  if (D > (uint32_t)kMaxHeadDim)
    return Status::unsupported("quest_select (ascend-sim): headDim " + std::to_string(D) + " unsupported; supported: 1.." +
                               std::to_string(kMaxHeadDim));
  if (p.num_meta_pages > 0xffffffffll) return Status::unsupported("quest_select (ascend-sim): metadata pools over 2^32 pages are unsupported");
  *t = QuestSelectTiling{};
  const uint32_t esq = esize(p.query_dtype), esm = esize(p.meta_dtype);
  const bool per_head = p.group_reduce == GroupReduce::per_head;
  t->queryElems = (uint64_t)p.num_seqs * H * D;
  t->metaElems = (uint64_t)p.num_meta_pages * p.meta_rows * N * D;
  t->rows = per_head ? H : N;
  t->selectedElems = (uint64_t)p.num_seqs * t->rows * p.k;
  t->numSeqs = p.num_seqs;
  t->numQoHeads = H;
  t->numKvHeads = N;
  t->headDim = D;
  t->blockSize = p.block_size;
  t->metaRows = p.meta_rows;
  t->maxMetaPagesPerSeq = p.max_meta_pages_per_seq;
  t->numMetaPages = (uint32_t)p.num_meta_pages;
  t->k = p.k;
  t->perHead = per_head;
  t->group = H / N;
  t->sinkBlocks = p.sink_blocks;
  t->windowBlocks = p.window_blocks;
  t->hasNumSelected = p.maybe_num_selected != nullptr;
  t->metaStride = row_elems(D, esm);
  t->queryStride = row_elems(D, esq);
  t->queryRows = std::min<uint32_t>(per_head ? 1 : t->group, 16);
  t->outChunk = 256;
  t->numSelChunk = 64;
  const uint64_t items = (uint64_t)p.num_seqs * t->rows;
  t->blockDim = (uint32_t)std::max<uint64_t>(1, std::min<uint64_t>((uint64_t)std::max(1, block_dim), items));
  const uint32_t R = (uint32_t)p.meta_rows;
  // Prefer the largest top list (k), then the largest metadata tile, then more query rows per load.
  for (uint32_t GT = t->queryRows; GT >= 1; GT /= 2) {
    t->queryRows = GT;
    for (uint32_t KP = round_up(std::min<uint32_t>(p.k, kMaxTopCap), 32); KP >= 32; KP = KP > 32 ? round_up(KP / 2, 32) : 0) {
      for (uint32_t cand : {128u, 64u, 32u, 16u, 8u, 4u, 2u, 1u}) {
        const uint32_t TR = std::max<uint32_t>(1, std::min(cand, R));
        t->tileRows = TR;
        t->tileRowsPad = round_up(TR, 32);
        t->topCap = KP;
        t->sortCap = std::max(t->tileRowsPad, KP);
        if (ub_bytes(*t, p.query_dtype, p.meta_dtype) <= kUbBudget) return Status::Ok();
      }
      if (KP == 32) break;
    }
  }
  return Status::unsupported("quest_select (ascend-sim): no tiling fits the 192 KB Unified Buffer for headDim " +
                             std::to_string(D));
}

// ------------------------------------------------------------------------------ kv_cache
uint32_t ub_bytes(const CacheWriteTiling& t, DType dtype) {
  return 2 * ub_round((uint64_t)t.headsPerChunk * t.rowStride * esize(dtype));  // inQ
}

Status tile_cache_write(const CacheWriteParams& p, int block_dim, CacheWriteTiling* t) {
  SA_RETURN_IF_ERROR(float_dtype(p.dtype, "kv_cache", "key"));
  *t = CacheWriteTiling{};
  const uint32_t es = esize(p.dtype);
  if (p.num_blocks > 0xffffffffll || p.num_tokens > 0x7fffffffll)
    return Status::unsupported("kv_cache (ascend-sim): pools over 2^32 blocks are unsupported");
  t->tokenElems = (uint64_t)p.num_tokens * p.num_kv_heads * p.head_dim;
  t->cacheElems = (uint64_t)p.num_blocks * p.block_size * p.num_kv_heads * p.head_dim;
  t->numTokens = (uint32_t)p.num_tokens;
  t->numKvHeads = p.num_kv_heads;
  t->headDim = p.head_dim;
  t->blockSize = p.block_size;
  t->numBlocks = (uint32_t)p.num_blocks;
  t->layoutHnd = p.layout == Layout::HND;
  t->rowStride = row_elems(p.head_dim, es);
  t->blockDim = (uint32_t)std::max(1, block_dim);
  for (uint32_t hc = p.num_kv_heads; hc >= 1; hc = hc > 1 ? (hc + 1) / 2 : 0) {
    t->headsPerChunk = hc;
    if (ub_bytes(*t, p.dtype) <= kUbBudget && hc <= 4095) return Status::Ok();
    if (hc == 1) break;
  }
  return Status::unsupported("kv_cache (ascend-sim): headDim " + std::to_string(p.head_dim) + " does not fit the Unified Buffer");
}

uint32_t ub_bytes(const MetadataAppendTiling& t, DType dtype) {
  const uint32_t es = esize(dtype), CS = t.chunkStride;
  uint32_t b = 2 * ub_round((uint64_t)CS * es);  // inQ: key chunks
  b += ub_round((uint64_t)2 * CS * es);          // rowQ: the row's current max/min
  b += ub_round((uint64_t)2 * CS * es);          // acc: order keys of max/min
  b += 2 * ub_round((uint64_t)CS * es);          // tmpA, tmpB: order-key scratch
  b += ub_round((uint64_t)2 * CS * es);          // outQ
  b += 256;                                      // magnitude-mask pattern
  return b;
}

Status tile_metadata_append(const QuestMetadataAppendParams& p, int block_dim, MetadataAppendTiling* t) {
  SA_RETURN_IF_ERROR(float_dtype(p.dtype, "kv_cache", "key"));
  *t = MetadataAppendTiling{};
  const uint32_t es = esize(p.dtype);
  if (p.num_meta_pages > 0xffffffffll || p.num_tokens > 0x7fffffffll)
    return Status::unsupported("kv_cache (ascend-sim): metadata pools over 2^32 pages are unsupported");
  t->tokenElems = (uint64_t)p.num_tokens * p.num_kv_heads * p.head_dim;
  t->metaElems = (uint64_t)p.num_meta_pages * p.meta_rows * p.num_kv_heads * p.head_dim;
  t->numTokens = (uint32_t)p.num_tokens;
  t->numSeqs = p.num_seqs;
  t->numKvHeads = p.num_kv_heads;
  t->headDim = p.head_dim;
  t->blockSize = p.block_size;
  t->metaRows = p.meta_rows;
  t->maxMetaPagesPerSeq = p.max_meta_pages_per_seq;
  t->numMetaPages = (uint32_t)p.num_meta_pages;
  t->blockDim = (uint32_t)std::max(1, block_dim);
  uint32_t C = std::min<uint64_t>((uint64_t)p.num_kv_heads * p.head_dim, 4096);
  for (;;) {
    t->chunk = C;
    t->chunkStride = row_elems(C, es);
    if (ub_bytes(*t, p.dtype) <= kUbBudget) return Status::Ok();
    if (C <= 64) break;
    C = round_up(C / 2, 64);
  }
  return Status::unsupported("kv_cache (ascend-sim): no tiling fits the Unified Buffer");
}

}  // namespace select_attn::ascendc
