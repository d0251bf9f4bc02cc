// quest_metadata (SPEC 1) as an Ascend C vector kernel: per KV block, per head and channel, the max and
// min of the valid tokens' keys, written as one metadata row; rows of non-existing blocks on the touched
// pages are zeroed. Grid: tiling.blockDim vector cores; core c takes a contiguous range of the work
// items (sequence, logical block) counted over all sequences, so every core gets the same share.
#include "../kernel_common.h"

namespace sa_kernels {

using select_attn::ascendc::QuestMetadataTiling;

// T: kCache/metadata dtype. Max and min run on integer order keys (see FlipNegatives): exact for every
// dtype, -0 below +0 as the contract orders them, and no bf16 widening (Atlas A2 has no bf16 max).
template <typename T>
class KernelQuestMetadata {
  using K = typename Cond<sizeof(T) == 2, int16_t, int32_t>::type;
  static constexpr K kLowest = sizeof(K) == 2 ? (K)-32768 : (K)(-2147483647 - 1);  // below every key
  static constexpr K kHighest = (K) ~kLowest;                       // above every key

 public:
  __aicore__ inline void Init(GM_ADDR kCache, GM_ADDR blockTables, GM_ADDR seqLens, GM_ADDR metaBlockTables,
                              GM_ADDR startBlocks, GM_ADDR maxMeta, GM_ADDR minMeta, GM_ADDR status,
                              const QuestMetadataTiling& t, TPipe* pipe) {
    t_ = t;
    kGm_.SetGlobalBuffer((__gm__ T*)kCache, t.kCacheElems);
    btGm_.SetGlobalBuffer((__gm__ int32_t*)blockTables, (uint64_t)t.numSeqs * t.maxBlocksPerSeq);
    seqGm_.SetGlobalBuffer((__gm__ int32_t*)seqLens, t.numSeqs);
    mbtGm_.SetGlobalBuffer((__gm__ int32_t*)metaBlockTables, (uint64_t)t.numSeqs * t.maxMetaPagesPerSeq);
    if (t.hasStartBlocks) startGm_.SetGlobalBuffer((__gm__ int32_t*)startBlocks, t.numSeqs);
    maxGm_.SetGlobalBuffer((__gm__ T*)maxMeta, t.metaElems);
    minGm_.SetGlobalBuffer((__gm__ T*)minMeta, t.metaElems);
    status_.Init(status, t.blockDim);
    const uint32_t CS = t.chunkStride, TT = t.tileTokens;
    // Order and sizes mirror ub_bytes(QuestMetadataTiling) in tiling.cpp.
    pipe->InitBuffer(inQ_, 2, TT * CS * sizeof(T));  // K tiles, double-buffered
    pipe->InitBuffer(tmpA_, (TT > 2 ? TT : 2) * CS * sizeof(T));
    pipe->InitBuffer(tmpB_, (TT > 2 ? TT : 2) * CS * sizeof(T));
    pipe->InitBuffer(half_, (TT / 2 > 0 ? TT / 2 : 1) * CS * sizeof(T));
    pipe->InitBuffer(outQ_, 2, 2 * CS * sizeof(T));  // [max | min] of one chunk
    pipe->InitBuffer(zero_, t.zeroElems * sizeof(T));
    pipe->InitBuffer(pattern_, 256);
    Duplicate(zero_.Get<K>(), (K)0, (int32_t)t.zeroElems);  // +0 in every dtype
    FillMagnitudePattern(pattern_.Get<int16_t>(), sizeof(T));
    SetFlag<HardEvent::V_MTE3>(EVENT_ID1);
    WaitFlag<HardEvent::V_MTE3>(EVENT_ID1);
  }

  __aicore__ inline void Process() {
    // Items of sequence b: logical blocks [start, P * R) when start < L (P touched pages), else none.
    uint64_t total = 0;
    for (uint32_t b = 0; b < t_.numSeqs; ++b) total += ItemsOf(b, true);
    const uint64_t idx = (uint64_t)GetBlockIdx(), nc = (uint64_t)GetBlockNum();
    const uint64_t lo = total * idx / nc, hi = total * (idx + 1) / nc;
    uint64_t base = 0;
    for (uint32_t b = 0; b < t_.numSeqs && base < hi; ++b) {
      const uint64_t cnt = ItemsOf(b, false);
      if (base + cnt > lo) {
        const uint64_t start = StartOf(b);
        const uint64_t from = lo > base ? lo - base : 0, to = Min64(cnt, hi - base);
        for (uint64_t i = from; i < to; ++i) ProcessItem(b, start + i);
      }
      base += cnt;
    }
  }

 private:
  __aicore__ inline uint64_t StartOf(uint32_t b) {
    if (!t_.hasStartBlocks) return 0;
    const int32_t s = startGm_.GetValue(b);
    if (s < 0) status_.Raise(select_attn::ascendc::kStatusNegative);
    return s > 0 ? (uint64_t)s : 0;
  }
  __aicore__ inline uint64_t BlocksOf(uint32_t b) {
    const int32_t seq = seqGm_.GetValue(b);
    if (seq < 0) status_.Raise(select_attn::ascendc::kStatusNegative);
    return seq > 0 ? CeilDiv((uint64_t)seq, t_.blockSize) : 0;
  }
  __aicore__ inline uint64_t ItemsOf(uint32_t b, bool report) {
    const uint64_t L = BlocksOf(b), start = StartOf(b);
    if (start >= L) return 0;
    const uint64_t pages = CeilDiv(L, t_.metaRows);
    if (L > t_.maxBlocksPerSeq || pages > t_.maxMetaPagesPerSeq) {  // never read past a table
      if (report) status_.Raise(select_attn::ascendc::kStatusTableTooNarrow);
      return 0;
    }
    return pages * t_.metaRows - start;
  }

  __aicore__ inline void ProcessItem(uint32_t b, uint64_t j) {
    const uint32_t N = t_.numKvHeads, D = t_.headDim;
    const uint64_t L = BlocksOf(b);
    const int32_t pid = mbtGm_.GetValue((uint64_t)b * t_.maxMetaPagesPerSeq + j / t_.metaRows);
    if (pid < 0 || (uint32_t)pid >= t_.numMetaPages) {
      status_.Raise(select_attn::ascendc::kStatusBadMetaPage);
      return;
    }
    const uint64_t outRow = ((uint64_t)pid * t_.metaRows + j % t_.metaRows) * N * D;
    if (j >= L) {  // a row of the last touched page past the sequence's end: zero
      WriteZeros(outRow, (uint64_t)N * D);
      return;
    }
    const int32_t phys = btGm_.GetValue((uint64_t)b * t_.maxBlocksPerSeq + j);
    if (phys < 0 || (uint32_t)phys >= t_.numBlocks) {
      status_.Raise(select_attn::ascendc::kStatusBadBlockId);
      return;
    }
    const int32_t seq = seqGm_.GetValue(b);
    const uint32_t valid = (uint32_t)Min64(t_.blockSize, (uint64_t)seq - j * t_.blockSize);
    const uint32_t tokStride = t_.layoutHnd ? D : N * D;
    for (uint32_t s = 0; s < t_.numSegs; ++s) {
      const uint64_t src = t_.layoutHnd ? ((uint64_t)phys * N + s) * t_.blockSize * D : (uint64_t)phys * t_.blockSize * N * D;
      for (uint32_t c0 = 0; c0 < t_.segLen; c0 += t_.chunk) {
        const uint32_t cl = Min32(t_.chunk, t_.segLen - c0);
        ReduceChunk(src + c0, tokStride, valid, cl, outRow + (uint64_t)s * t_.segLen + c0);
      }
    }
  }

  // Max/min over `valid` tokens of one chunk of cl channels, then the chunk's row to maxMeta/minMeta.
  __aicore__ inline void ReduceChunk(uint64_t src, uint32_t tokStride, uint32_t valid, uint32_t cl, uint64_t dst) {
    const uint32_t CS = t_.chunkStride;
    const uint32_t S = RoundUp(cl, 32 / sizeof(T));  // this chunk's 32-byte row stride
    LocalTensor<T> out = outQ_.template AllocTensor<T>();
    LocalTensor<K> accMax = out.template ReinterpretCast<K>();
    LocalTensor<K> accMin = accMax[CS];
    Duplicate(accMax, kLowest, (int32_t)cl);
    Duplicate(accMin, kHighest, (int32_t)cl);
    LocalTensor<K> tmpA = tmpA_.Get<K>(), tmpB = tmpB_.Get<K>();
    LocalTensor<int16_t> pattern = pattern_.Get<int16_t>();
    for (uint32_t t0 = 0; t0 < valid; t0 += t_.tileTokens) {
      const uint32_t tt = Min32(t_.tileTokens, valid - t0);
      LocalTensor<T> x = inQ_.template AllocTensor<T>();
      DataCopyPad(x, kGm_[src + (uint64_t)t0 * tokStride],
                  DataCopyExtParams(tt, cl * sizeof(T), (tokStride - cl) * sizeof(T), 0, 0),
                  DataCopyPadExtParams<T>(true, 0, S - cl, T(0)));
      inQ_.EnQue(x);
      x = inQ_.template DeQue<T>();
      LocalTensor<K> X = x.template ReinterpretCast<K>();
      FlipNegatives(X, tmpA, tmpB, pattern, tt * S);
      // Pairwise tree over the tile's rows: maxima gather in half_, minima in place in X.
      LocalTensor<K> Y = half_.Get<K>();
      LocalTensor<K> maxRow = X;
      if (tt > 1) {
        uint32_t n = tt;
        uint32_t h = n / 2;
        Max(Y, X, X[h * S], (int32_t)(h * S));
        Min(X, X, X[h * S], (int32_t)(h * S));
        if (n & 1) {
          Max(Y, Y, X[2 * h * S], (int32_t)S);
          Min(X, X, X[2 * h * S], (int32_t)S);
        }
        for (n = h; n > 1; n = h) {
          h = n / 2;
          Max(Y, Y, Y[h * S], (int32_t)(h * S));
          Min(X, X, X[h * S], (int32_t)(h * S));
          if (n & 1) {
            Max(Y, Y, Y[2 * h * S], (int32_t)S);
            Min(X, X, X[2 * h * S], (int32_t)S);
          }
        }
        maxRow = Y;
      }
      Max(accMax, accMax, maxRow, (int32_t)cl);
      Min(accMin, accMin, X, (int32_t)cl);
      inQ_.FreeTensor(x);
    }
    FlipNegatives(accMax, tmpA, tmpB, pattern, cl);  // keys back to float bits
    FlipNegatives(accMin, tmpA, tmpB, pattern, cl);
    outQ_.EnQue(out);
    out = outQ_.template DeQue<T>();
    const DataCopyExtParams p(1, cl * sizeof(T), 0, 0, 0);
    DataCopyPad(maxGm_[dst], out, p);
    DataCopyPad(minGm_[dst], out[CS], p);
    outQ_.FreeTensor(out);
  }

  __aicore__ inline void WriteZeros(uint64_t dst, uint64_t count) {
    for (uint64_t done = 0; done < count;) {
      const uint32_t n = (uint32_t)Min64(t_.zeroElems, count - done);
      const DataCopyExtParams p(1, n * sizeof(T), 0, 0, 0);
      DataCopyPad(maxGm_[dst + done], zero_.Get<T>(), p);
      DataCopyPad(minGm_[dst + done], zero_.Get<T>(), p);
      done += n;
    }
  }

  QuestMetadataTiling t_;
  GlobalTensor<T> kGm_, maxGm_, minGm_;
  GlobalTensor<int32_t> btGm_, seqGm_, mbtGm_, startGm_;
  StatusWord status_;
  TQue<TPosition::VECIN, 2> inQ_;
  TQue<TPosition::VECOUT, 2> outQ_;
  TBuf<TPosition::VECCALC> tmpA_, tmpB_, half_, zero_, pattern_;
};

template <typename T>
__aicore__ inline void RunQuestMetadata(GM_ADDR kCache, GM_ADDR blockTables, GM_ADDR seqLens, GM_ADDR metaBlockTables,
                                        GM_ADDR startBlocks, GM_ADDR maxMeta, GM_ADDR minMeta, GM_ADDR status,
                                        GM_ADDR tiling) {
  QuestMetadataTiling t;
  CopyTiling(&t, tiling);
  TPipe pipe;
  KernelQuestMetadata<T> op;
  op.Init(kCache, blockTables, seqLens, metaBlockTables, startBlocks, maxMeta, minMeta, status, t, &pipe);
  op.Process();
}

}  // namespace sa_kernels

#define SA_QUEST_METADATA_ENTRY(name, T)                                                                             \
  extern "C" __global__ __aicore__ void name(GM_ADDR kCache, GM_ADDR blockTables, GM_ADDR seqLens,                  \
                                             GM_ADDR metaBlockTables, GM_ADDR startBlocks, GM_ADDR maxMeta,        \
                                             GM_ADDR minMeta, GM_ADDR status, GM_ADDR tiling) {                     \
    sa_kernels::RunQuestMetadata<T>(kCache, blockTables, seqLens, metaBlockTables, startBlocks, maxMeta, minMeta,   \
                                    status, tiling);                                                               \
  }
SA_QUEST_METADATA_ENTRY(sa_quest_metadata_f32, float)
SA_QUEST_METADATA_ENTRY(sa_quest_metadata_f16, half)
SA_QUEST_METADATA_ENTRY(sa_quest_metadata_bf16, bfloat16_t)
#undef SA_QUEST_METADATA_ENTRY
