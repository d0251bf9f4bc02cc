// kv_cache (SPEC 4) as Ascend C vector kernels: cacheWrite copies new tokens' keys and values into the
// paged caches; questMetadataAppend folds new keys into their metadata rows (reset at a block's first
// token), so tokensSinceMetadataUpdate can stay 0 while decoding.
// Grid (both): tiling.blockDim vector cores. cacheWrite: a token goes to core (block % blockDim), tokens
// of one core in token order, so duplicate slots end as a sequential loop would leave them.
// questMetadataAppend: the tokens of one physical metadata row go to core (row % blockDim).
#include "../kernel_common.h"

namespace sa_kernels {

using select_attn::ascendc::CacheWriteTiling;
using select_attn::ascendc::MetadataAppendTiling;

template <typename T>
class KernelCacheWrite {
 public:
  __aicore__ inline void Init(GM_ADDR key, GM_ADDR value, GM_ADDR kCache, GM_ADDR vCache, GM_ADDR slotMapping,
                              GM_ADDR status, const CacheWriteTiling& t, TPipe* pipe) {
    t_ = t;
    keyGm_.SetGlobalBuffer((__gm__ T*)key, t.tokenElems);
    valGm_.SetGlobalBuffer((__gm__ T*)value, t.tokenElems);
    kcGm_.SetGlobalBuffer((__gm__ T*)kCache, t.cacheElems);
    vcGm_.SetGlobalBuffer((__gm__ T*)vCache, t.cacheElems);
    slotGm_.SetGlobalBuffer((__gm__ int32_t*)slotMapping, t.numTokens);
    status_.Init(status, t.blockDim);
    pipe->InitBuffer(inQ_, 2, t.headsPerChunk * t.rowStride * sizeof(T));
  }

  __aicore__ inline void Process() {
    const uint64_t slots = (uint64_t)t_.numBlocks * t_.blockSize;
    const uint32_t idx = (uint32_t)GetBlockIdx(), nc = (uint32_t)GetBlockNum();
    for (uint32_t tok = 0; tok < t_.numTokens; ++tok) {
      const int32_t slot = slotGm_.GetValue(tok);
      if (slot == -1) continue;
      if (slot < -1 || (uint64_t)slot >= slots) {
        status_.Raise(select_attn::ascendc::kStatusBadSlot);
        continue;
      }
      const uint32_t blk = (uint32_t)slot / t_.blockSize, off = (uint32_t)slot % t_.blockSize;
      if (blk % nc != idx) continue;
      for (uint32_t h0 = 0; h0 < t_.numKvHeads; h0 += t_.headsPerChunk) {
        const uint32_t hc = Min32(t_.headsPerChunk, t_.numKvHeads - h0);
        CopyRows(keyGm_, kcGm_, tok, blk, off, h0, hc);
        CopyRows(valGm_, vcGm_, tok, blk, off, h0, hc);
      }
    }
  }

 private:
  // Heads [h0, h0 + hc) of token tok into (blk, off): one DMA in (a 32-byte row per head), one out.
  __aicore__ inline void CopyRows(GlobalTensor<T>& src, GlobalTensor<T>& dst, uint32_t tok, uint32_t blk, uint32_t off,
                                  uint32_t h0, uint32_t hc) {
    const uint32_t N = t_.numKvHeads, D = t_.headDim, bs = t_.blockSize;
    LocalTensor<T> x = inQ_.template AllocTensor<T>();
    DataCopyPad(x, src[((uint64_t)tok * N + h0) * D], DataCopyExtParams(hc, D * sizeof(T), 0, 0, 0),
                DataCopyPadExtParams<T>(false, 0, 0, T(0)));
    inQ_.EnQue(x);
    x = inQ_.template DeQue<T>();
    if (t_.layoutHnd) {  // [numBlocks, N, bs, D]: head rows bs * D apart
      DataCopyPad(dst[(((uint64_t)blk * N + h0) * bs + off) * D], x,
                  DataCopyExtParams(hc, D * sizeof(T), 0, (bs - 1) * D * sizeof(T), 0));
    } else {  // [numBlocks, bs, N, D]: the token's heads are contiguous
      DataCopyPad(dst[(((uint64_t)blk * bs + off) * N + h0) * D], x, DataCopyExtParams(hc, D * sizeof(T), 0, 0, 0));
    }
    inQ_.FreeTensor(x);
  }

  CacheWriteTiling t_;
  GlobalTensor<T> keyGm_, valGm_, kcGm_, vcGm_;
  GlobalTensor<int32_t> slotGm_;
  StatusWord status_;
  TQue<TPosition::VECIN, 2> inQ_;
};

template <typename T>
class KernelMetadataAppend {
  // Max/min on integer order keys (FlipNegatives): exact for every dtype, -0 below +0.
  using K = typename Cond<sizeof(T) == 2, int16_t, int32_t>::type;
  static constexpr K kLowest = sizeof(K) == 2 ? (K)-32768 : (K)(-2147483647 - 1);
  static constexpr K kHighest = (K) ~kLowest;

 public:
  __aicore__ inline void Init(GM_ADDR key, GM_ADDR maxMeta, GM_ADDR minMeta, GM_ADDR metaBlockTables, GM_ADDR seqIdx,
                              GM_ADDR positions, GM_ADDR status, const MetadataAppendTiling& t, TPipe* pipe) {
    t_ = t;
    keyGm_.SetGlobalBuffer((__gm__ T*)key, t.tokenElems);
    maxGm_.SetGlobalBuffer((__gm__ T*)maxMeta, t.metaElems);
    minGm_.SetGlobalBuffer((__gm__ T*)minMeta, t.metaElems);
    mbtGm_.SetGlobalBuffer((__gm__ int32_t*)metaBlockTables, (uint64_t)t.numSeqs * t.maxMetaPagesPerSeq);
    seqGm_.SetGlobalBuffer((__gm__ int32_t*)seqIdx, t.numTokens);
    posGm_.SetGlobalBuffer((__gm__ int32_t*)positions, t.numTokens);
    status_.Init(status, t.blockDim);
    const uint32_t CS = t.chunkStride;
    // Order and sizes mirror ub_bytes(MetadataAppendTiling) in tiling.cpp.
    pipe->InitBuffer(inQ_, 2, CS * sizeof(T));
    pipe->InitBuffer(rowQ_, 1, 2 * CS * sizeof(T));
    pipe->InitBuffer(acc_, 2 * CS * sizeof(T));
    pipe->InitBuffer(tmpA_, CS * sizeof(T));
    pipe->InitBuffer(tmpB_, CS * sizeof(T));
    pipe->InitBuffer(outQ_, 1, 2 * CS * sizeof(T));
    pipe->InitBuffer(pattern_, 256);
    FillMagnitudePattern(pattern_.Get<int16_t>(), sizeof(T));
  }

  __aicore__ inline void Process() {
    const uint64_t idx = (uint64_t)GetBlockIdx(), nc = (uint64_t)GetBlockNum();
    const uint32_t ND = t_.numKvHeads * t_.headDim;
    for (uint32_t tok = 0; tok < t_.numTokens; ++tok) {
      int32_t pos;
      const int64_t row = RowOf(tok, true, pos);
      if (row < 0 || (uint64_t)row % nc != idx) continue;
      // The first token of a metadata row in this call handles the row; later ones are folded in.
      bool first = true;
      for (uint32_t u = 0; u < tok && first; ++u) first = RowOf(u, false, pos) != row;
      if (!first) continue;
      // One call per token in position order (ties in token order): the last token at a block's first
      // position restarts the row and only tokens after it count; with no restart, every token is
      // folded into the row as it is. Rows are physical, so sequences sharing a page share the order.
      int64_t reset = -1, resetPos = -1;
      for (uint32_t u = tok; u < t_.numTokens; ++u)
        if (RowOf(u, false, pos) == row && pos % t_.blockSize == 0 && pos >= resetPos) {
          reset = u;
          resetPos = pos;
        }
      const uint64_t base = (uint64_t)row * ND;
      for (uint32_t c0 = 0; c0 < ND; c0 += t_.chunk) FoldChunk(tok, row, reset, resetPos, base, c0, Min32(t_.chunk, ND - c0));
    }
  }

 private:
  // Physical metadata row (page * metaRows + row in page) of token u, or -1 for a bad token (reported
  // by its own iteration when `report`); pos gets the token's position.
  __aicore__ inline int64_t RowOf(uint32_t u, bool report, int32_t& pos) {
    const int32_t s = seqGm_.GetValue(u);
    pos = posGm_.GetValue(u);
    if (s < 0 || (uint32_t)s >= t_.numSeqs || pos < 0) {
      if (report) status_.Raise(select_attn::ascendc::kStatusBadSeqIdx);
      return -1;
    }
    const uint64_t j = (uint64_t)pos / t_.blockSize, page = j / t_.metaRows;
    if (page >= t_.maxMetaPagesPerSeq) {
      if (report) status_.Raise(select_attn::ascendc::kStatusTableTooNarrow);
      return -1;
    }
    const int32_t pid = mbtGm_.GetValue((uint64_t)s * t_.maxMetaPagesPerSeq + page);
    if (pid < 0 || (uint32_t)pid >= t_.numMetaPages) {
      if (report) status_.Raise(select_attn::ascendc::kStatusBadMetaPage);
      return -1;
    }
    return (int64_t)pid * t_.metaRows + (int64_t)(j % t_.metaRows);
  }

  __aicore__ inline void FoldChunk(uint32_t tok, int64_t rowId, int64_t reset, int64_t resetPos, uint64_t row, uint32_t c0,
                                   uint32_t cl) {
    const uint32_t CS = t_.chunkStride, S = RoundUp(cl, 32 / sizeof(T)), ND = t_.numKvHeads * t_.headDim;
    const DataCopyExtParams p(1, cl * sizeof(T), 0, 0, 0);
    const DataCopyPadExtParams<T> pad(true, 0, S - cl, T(0));
    LocalTensor<K> accMax = acc_.Get<K>(), accMin = accMax[CS];
    Duplicate(accMax, kLowest, (int32_t)S);
    Duplicate(accMin, kHighest, (int32_t)S);
    if (reset < 0) {  // start from the row as it is
      LocalTensor<T> r = rowQ_.template AllocTensor<T>();
      DataCopyPad(r, maxGm_[row + c0], p, pad);
      DataCopyPad(r[CS], minGm_[row + c0], p, pad);
      rowQ_.EnQue(r);
      r = rowQ_.template DeQue<T>();
      LocalTensor<K> rk = r.template ReinterpretCast<K>();
      Fold(rk, cl);
      Max(accMax, accMax, rk, (int32_t)cl);
      Fold(rk[CS], cl);
      Min(accMin, accMin, rk[CS], (int32_t)cl);
      rowQ_.FreeTensor(r);
    }
    for (uint32_t u = tok; u < t_.numTokens; ++u) {
      int32_t pos;
      if (RowOf(u, false, pos) != rowId) continue;
      if (reset >= 0 && (pos < resetPos || (pos == resetPos && (int64_t)u < reset))) continue;  // before the restart
      LocalTensor<T> x = inQ_.template AllocTensor<T>();
      DataCopyPad(x, keyGm_[(uint64_t)u * ND + c0], p, pad);
      inQ_.EnQue(x);
      x = inQ_.template DeQue<T>();
      LocalTensor<K> xk = x.template ReinterpretCast<K>();
      Fold(xk, cl);
      Max(accMax, accMax, xk, (int32_t)cl);
      Min(accMin, accMin, xk, (int32_t)cl);
      inQ_.FreeTensor(x);
    }
    LocalTensor<T> out = outQ_.template AllocTensor<T>();
    LocalTensor<K> ok = out.template ReinterpretCast<K>();
    DataCopy(ok, accMax, S);
    DataCopy(ok[CS], accMin, S);
    Fold(ok, cl);  // keys back to float bits
    Fold(ok[CS], cl);
    outQ_.EnQue(out);
    out = outQ_.template DeQue<T>();
    DataCopyPad(maxGm_[row + c0], out, p);
    DataCopyPad(minGm_[row + c0], out[CS], p);
    outQ_.FreeTensor(out);
  }

  // Float bits <-> order keys, in place on n elements.
  __aicore__ inline void Fold(const LocalTensor<K>& v, uint32_t n) {
    FlipNegatives(v, tmpA_.Get<K>(), tmpB_.Get<K>(), pattern_.Get<int16_t>(), n);
  }

  MetadataAppendTiling t_;
  GlobalTensor<T> keyGm_, maxGm_, minGm_;
  GlobalTensor<int32_t> mbtGm_, seqGm_, posGm_;
  StatusWord status_;
  TQue<TPosition::VECIN, 2> inQ_;
  TQue<TPosition::VECIN, 1> rowQ_;
  TQue<TPosition::VECOUT, 1> outQ_;
  TBuf<TPosition::VECCALC> acc_, tmpA_, tmpB_, pattern_;
};

template <typename T>
__aicore__ inline void RunCacheWrite(GM_ADDR key, GM_ADDR value, GM_ADDR kCache, GM_ADDR vCache, GM_ADDR slotMapping,
                                     GM_ADDR status, GM_ADDR tiling) {
  CacheWriteTiling t;
  CopyTiling(&t, tiling);
  TPipe pipe;
  KernelCacheWrite<T> op;
  op.Init(key, value, kCache, vCache, slotMapping, status, t, &pipe);
  op.Process();
}

template <typename T>
__aicore__ inline void RunMetadataAppend(GM_ADDR key, GM_ADDR maxMeta, GM_ADDR minMeta, GM_ADDR metaBlockTables,
                                         GM_ADDR seqIdx, GM_ADDR positions, GM_ADDR status, GM_ADDR tiling) {
  MetadataAppendTiling t;
  CopyTiling(&t, tiling);
  TPipe pipe;
  KernelMetadataAppend<T> op;
  op.Init(key, maxMeta, minMeta, metaBlockTables, seqIdx, positions, status, t, &pipe);
  op.Process();
}

}  // namespace sa_kernels

#define SA_CACHE_WRITE_ENTRY(name, T)                                                                              \
  extern "C" __global__ __aicore__ void name(GM_ADDR key, GM_ADDR value, GM_ADDR kCache, GM_ADDR vCache,          \
                                             GM_ADDR slotMapping, GM_ADDR status, GM_ADDR tiling) {               \
    sa_kernels::RunCacheWrite<T>(key, value, kCache, vCache, slotMapping, status, tiling);                       \
  }
SA_CACHE_WRITE_ENTRY(sa_cache_write_f32, float)
SA_CACHE_WRITE_ENTRY(sa_cache_write_f16, half)
SA_CACHE_WRITE_ENTRY(sa_cache_write_bf16, bfloat16_t)
#undef SA_CACHE_WRITE_ENTRY

#define SA_METADATA_APPEND_ENTRY(name, T)                                                                             \
  extern "C" __global__ __aicore__ void name(GM_ADDR key, GM_ADDR maxMeta, GM_ADDR minMeta, GM_ADDR metaBlockTables, \
                                             GM_ADDR seqIdx, GM_ADDR positions, GM_ADDR status, GM_ADDR tiling) {  \
    sa_kernels::RunMetadataAppend<T>(key, maxMeta, minMeta, metaBlockTables, seqIdx, positions, status, tiling);    \
  }
SA_METADATA_APPEND_ENTRY(sa_metadata_append_f32, float)
SA_METADATA_APPEND_ENTRY(sa_metadata_append_f16, half)
SA_METADATA_APPEND_ENTRY(sa_metadata_append_bf16, bfloat16_t)
#undef SA_METADATA_APPEND_ENTRY
