// Tiling structs passed to the Ascend C kernels through GM (plain PODs of 64-bit then 32-bit
// fields, shared by the kernels, the host tiling in tiling.cpp, and both backends).
#pragma once
#ifndef __CCE_AICORE__
#include <cstdint>  // the device compiler gets the integer types from kernel_operator.h
#endif

namespace select_attn::ascendc {

// quest_metadata (SPEC 1). Work items: per sequence, logical blocks [start, P*metaRows) where P is the
// number of touched metadata pages; items below L reduce a KV block, the rest zero a metadata row.
struct QuestMetadataTiling {
  uint64_t kCacheElems;       // numBlocks * bs * N * D
  uint64_t metaElems;         // numMetaPages * metaRows * N * D
  uint32_t numSeqs;           // B
  uint32_t numKvHeads;        // N
  uint32_t headDim;           // D
  uint32_t blockSize;         // bs
  uint32_t metaRows;          // R
  uint32_t maxBlocksPerSeq;   // MKBPR
  uint32_t maxMetaPagesPerSeq;// MMBPR
  uint32_t numBlocks;         // KV pool size
  uint32_t numMetaPages;      // metadata pool size
  uint32_t layoutHnd;         // 0 NHD, 1 HND
  uint32_t hasStartBlocks;    // startBlocks given
  uint32_t segLen;            // elements reduced per segment: N*D (NHD) or D (HND)
  uint32_t numSegs;           // 1 (NHD) or N (HND)
  uint32_t chunk;             // C: channels per chunk of a segment
  uint32_t chunkStride;       // CS: UB row stride of a chunk in elements (32-byte rows)
  uint32_t tileTokens;        // TT: tokens per K tile (double-buffered)
  uint32_t zeroElems;         // elements of the zero buffer used for rows of non-existing blocks
  uint32_t blockDim;          // vector cores launched
};

// quest_select (SPEC 2). Work items: output rows (b, N or H heads), a contiguous range per core.
struct QuestSelectTiling {
  uint64_t queryElems;        // B * H * D
  uint64_t metaElems;         // numMetaPages * metaRows * N * D
  uint64_t selectedElems;     // B * rows * k
  uint32_t numSeqs;           // B
  uint32_t numQoHeads;        // H
  uint32_t numKvHeads;        // N
  uint32_t headDim;           // D
  uint32_t blockSize;         // bs
  uint32_t metaRows;          // R
  uint32_t maxMetaPagesPerSeq;// MMBPR
  uint32_t numMetaPages;      // metadata pool size
  uint32_t k;                 // >= 1
  uint32_t perHead;           // 0: mean over the G query heads (rows = N); 1: rows = H
  uint32_t rows;              // N or H
  uint32_t group;             // G = H / N
  uint32_t sinkBlocks;
  uint32_t windowBlocks;
  uint32_t hasNumSelected;
  uint32_t tileRows;          // TR: metadata rows per tile (<= 255: one repeat per row)
  uint32_t tileRowsPad;       // TRp: TR rounded up to 32 (Sort32 groups)
  uint32_t metaStride;        // DSm: UB row stride of a metadata tile, elements of the metadata dtype
  uint32_t queryStride;       // DSq: UB row stride of query rows, elements of the query dtype
  uint32_t queryRows;         // GT: query rows loaded per chunk
  uint32_t topCap;            // KP: most scored selections kept (multiple of 32)
  uint32_t sortCap;           // SP = max(TRp, KP)
  uint32_t outChunk;          // OC: int32 output staging elements (multiple of 8)
  uint32_t numSelChunk;       // NS: numSelected staging elements (multiple of 8)
  uint32_t blockDim;
};

// kv_cache cacheWrite (SPEC 4): tokens go to the core that owns their KV block (block % blockDim),
// in token order, so duplicate slots resolve as a sequential loop would.
struct CacheWriteTiling {
  uint64_t tokenElems;        // T * N * D
  uint64_t cacheElems;        // numBlocks * bs * N * D
  uint32_t numTokens;         // T
  uint32_t numKvHeads;        // N
  uint32_t headDim;           // D
  uint32_t blockSize;         // bs
  uint32_t numBlocks;
  uint32_t layoutHnd;
  uint32_t headsPerChunk;     // heads moved per DMA
  uint32_t rowStride;         // UB stride of one head row, elements (32-byte rows)
  uint32_t blockDim;
};

// kv_cache questMetadataAppend (SPEC 4): rows (sequence, logical block) hashed to cores.
struct MetadataAppendTiling {
  uint64_t tokenElems;        // T * N * D
  uint64_t metaElems;         // numMetaPages * metaRows * N * D
  uint32_t numTokens;         // T
  uint32_t numSeqs;           // B
  uint32_t numKvHeads;
  uint32_t headDim;
  uint32_t blockSize;
  uint32_t metaRows;
  uint32_t maxMetaPagesPerSeq;
  uint32_t numMetaPages;
  uint32_t chunk;             // elements of a row (N*D) handled per pass
  uint32_t chunkStride;       // UB stride in elements (32-byte multiple)
  uint32_t blockDim;
};

// Status words, one per core: 0 ok, else a code the host turns into an error at synchronize.
enum KernelStatus : int32_t {
  kStatusOk = 0,
  kStatusBadBlockId = 1,      // a block table entry outside the KV pool
  kStatusBadMetaPage = 2,     // a metadata table entry outside the metadata pool
  kStatusTableTooNarrow = 3,  // a sequence needs more table columns than exist
  kStatusBadSeqIdx = 4,       // kv_cache: seqIdx outside [0, B) or position < 0
  kStatusBadSlot = 5,         // kv_cache: slot outside [-1, numBlocks * bs)
  kStatusBadTokensSince = 6,  // quest_select: tokensSinceMetadataUpdate outside [0, seqLen]
  kStatusTopCap = 7,          // quest_select: more blocks to pick by score than fit the UB (lower k)
  kStatusNegative = 8,        // a negative seqLen or startBlocks entry
};
static_assert(sizeof(QuestSelectTiling) <= 256 && sizeof(QuestMetadataTiling) <= 256, "one 256-byte tiling slot");

}  // namespace select_attn::ascendc
