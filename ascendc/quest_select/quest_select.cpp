// quest_select (SPEC 2) as an Ascend C vector kernel: per output row (sequence, KV head or query head),
// forced blocks (sinks, window, stale) plus the top-scoring rest by the Quest bound, ascending ids, -1 fill.
// Grid: tiling.blockDim vector cores; core c takes output rows [c*B*rows/blockDim, (c+1)*B*rows/blockDim).
#include "../kernel_common.h"

namespace sa_kernels {

using select_attn::ascendc::QuestSelectTiling;

// QT: query dtype, MT: metadata dtype (float, half or bfloat16_t). All scoring arithmetic is f32.
template <typename QT, typename MT>
class KernelQuestSelect {
 public:
  __aicore__ inline void Init(GM_ADDR query, GM_ADDR maxMeta, GM_ADDR minMeta, GM_ADDR metaBlockTables, GM_ADDR seqLens,
                              GM_ADDR tokensSinceUpdate, GM_ADDR selected, GM_ADDR numSelected, GM_ADDR status,
                              const QuestSelectTiling& t, TPipe* pipe) {
    t_ = t;
    ncol_ = (t.headDim + 63) / 64;
    queryGm_.SetGlobalBuffer((__gm__ QT*)query, t.queryElems);
    maxGm_.SetGlobalBuffer((__gm__ MT*)maxMeta, t.metaElems);
    minGm_.SetGlobalBuffer((__gm__ MT*)minMeta, t.metaElems);
    mbtGm_.SetGlobalBuffer((__gm__ int32_t*)metaBlockTables, (uint64_t)t.numSeqs * t.maxMetaPagesPerSeq);
    seqGm_.SetGlobalBuffer((__gm__ int32_t*)seqLens, t.numSeqs);
    tsuGm_.SetGlobalBuffer((__gm__ int32_t*)tokensSinceUpdate, t.numSeqs);
    selGm_.SetGlobalBuffer((__gm__ int32_t*)selected, t.selectedElems);
    if (t.hasNumSelected) nsGm_.SetGlobalBuffer((__gm__ int32_t*)numSelected, (uint64_t)t.numSeqs * t.rows);
    status_.Init(status, t.blockDim);

    const uint32_t TR = t.tileRows, TRp = t.tileRowsPad, DSm = t.metaStride, KP = t.topCap;
    // Order and sizes mirror ub_bytes(QuestSelectTiling) in tiling.cpp.
    pipe->InitBuffer(inQ_, 2, 2 * TR * DSm * sizeof(MT));  // [max rows | min rows], double-buffered
    pipe->InitBuffer(qInQ_, 1, t.queryRows * t.queryStride * sizeof(QT));
    if constexpr (sizeof(QT) == 2) pipe->InitBuffer(qWork_, t.queryRows * t.queryStride * sizeof(float));
    pipe->InitBuffer(qSum_, DSm * sizeof(float));
    if constexpr (sizeof(MT) == 2) pipe->InitBuffer(work_, 2 * TR * DSm * sizeof(float));
    if (ncol_ > 1) pipe->InitBuffer(part_, ncol_ * TRp * sizeof(float));
    pipe->InitBuffer(scores_, TRp * sizeof(float));
    pipe->InitBuffer(index_, TRp * sizeof(uint32_t));
    pipe->InitBuffer(sortDst_, t.sortCap * 8);
    pipe->InitBuffer(sortTmp_, t.sortCap * 8);
    pipe->InitBuffer(topA_, (KP + TRp) * 8);
    pipe->InitBuffer(topB_, (KP + TRp) * 8);
    pipe->InitBuffer(ids_, KP * sizeof(uint32_t));
    pipe->InitBuffer(keys_, KP * sizeof(float));
    pipe->InitBuffer(outQ_, 2, t.outChunk * sizeof(int32_t));
    pipe->InitBuffer(ns_, t.numSelChunk * sizeof(int32_t));
  }

  __aicore__ inline void Process() {
    const uint64_t total = (uint64_t)t_.numSeqs * t_.rows;
    const uint64_t idx = (uint64_t)GetBlockIdx(), nc = (uint64_t)GetBlockNum();
    const uint64_t lo = total * idx / nc, hi = total * (idx + 1) / nc;
    nsBase_ = lo;
    nsCount_ = 0;
    for (uint64_t item = lo; item < hi; ++item) ProcessRow(item);
    FlushNumSelected();
  }

 private:
  __aicore__ inline void ProcessRow(uint64_t item) {
    const uint32_t b = (uint32_t)(item / t_.rows), r = (uint32_t)(item % t_.rows);
    const uint32_t n = t_.perHead ? r / t_.group : r;
    const uint64_t outBase = item * t_.k;
    int32_t seq = seqGm_.GetValue(b);
    if (seq < 0) {  // never index with a negative length
      status_.Raise(select_attn::ascendc::kStatusNegative);
      seq = 0;
    }
    const uint64_t L = CeilDiv((uint64_t)seq, t_.blockSize);
    if (L == 0) {
      EmitFill(outBase, t_.k, -1);
      PushNumSelected(0);
      return;
    }
    if (CeilDiv(L, t_.metaRows) > t_.maxMetaPagesPerSeq) {  // never read past the table
      status_.Raise(select_attn::ascendc::kStatusTableTooNarrow);
      EmitFill(outBase, t_.k, -1);
      PushNumSelected(0);
      return;
    }
    int64_t tsu = tsuGm_.GetValue(b);
    if (tsu < 0 || tsu > seq) {  // clamp, and report: the contract says 0 <= t <= seqLen
      status_.Raise(select_attn::ascendc::kStatusBadTokensSince);
      tsu = tsu < 0 ? 0 : seq;
    }
    // Stale blocks: the metadata was refreshed at mru tokens, so blocks from floor(mru / bs) on are
    // forced, including the current partial block whatever mru % bs is.
    const uint64_t staleFrom = (uint64_t)(seq - tsu) / t_.blockSize;
    const uint64_t winStart = L > t_.windowBlocks ? L - t_.windowBlocks : 0;
    const uint64_t sufStart = staleFrom < winStart ? staleFrom : winStart;  // forced suffix [sufStart, L)
    const uint64_t nSuf = L - sufStart;
    const uint64_t nSink = Min64(t_.sinkBlocks, sufStart);                   // forced prefix [0, nSink)
    const uint64_t kk = Min64(t_.k, L);
    uint64_t sinkTake, sufTake, scored;
    if (kk <= nSuf) {  // newest forced blocks first
      sinkTake = 0, sufTake = kk, scored = 0;
    } else if (kk <= nSuf + nSink) {
      sinkTake = kk - nSuf, sufTake = nSuf, scored = 0;
    } else {
      sinkTake = nSink, sufTake = nSuf, scored = kk - nSuf - nSink;
    }
    uint64_t pos = 0;
    EmitRamp(outBase, 0, sinkTake);
    pos += sinkTake;
    if (scored > 0) {
      // Candidates are exactly the non-forced blocks [nSink, sufStart), all of them existing blocks.
      if (t_.perHead) LoadQuery(b, r, 1);
      else LoadQuery(b, n * t_.group, t_.group);
      if (scored <= t_.topCap) {
        EmitIds(outBase + pos, ScoreAndSelect(b, n, nSink, sufStart, (uint32_t)scored));
      } else {
        SelectMany(b, n, nSink, sufStart, scored, outBase + pos);
      }
      pos += scored;
    }
    EmitRamp(outBase + pos, L - sufTake, sufTake);
    pos += sufTake;
    EmitFill(outBase + pos, t_.k - pos, -1);
    PushNumSelected((int32_t)pos);
  }

  // The scoring query in qSum_: the sum of the row's query heads (mean mode: its G heads). The
  // mean's 1/G is a positive scale, which leaves every score's order unchanged, so it is skipped.
  __aicore__ inline void LoadQuery(uint32_t b, uint32_t head0, uint32_t heads) {
    const uint32_t D = t_.headDim, DSq = t_.queryStride;
    LocalTensor<float> q = qSum_.Get<float>();
    Duplicate(q, 0.0f, (int32_t)t_.metaStride);
    for (uint32_t g0 = 0; g0 < heads; g0 += t_.queryRows) {
      const uint32_t gc = Min32(t_.queryRows, heads - g0);
      LocalTensor<QT> x = qInQ_.template AllocTensor<QT>();
      DataCopyPad(x, queryGm_[((uint64_t)b * t_.numQoHeads + head0 + g0) * D],
                  DataCopyExtParams(gc, D * sizeof(QT), 0, 0, 0), DataCopyPadExtParams<QT>(true, 0, DSq - D, QT(0)));
      qInQ_.EnQue(x);
      x = qInQ_.template DeQue<QT>();
      if constexpr (sizeof(QT) == 2) {
        LocalTensor<float> w = qWork_.Get<float>();
        Cast(w, x, RoundMode::CAST_NONE, gc * DSq);
        for (uint32_t i = 0; i < gc; ++i) Add(q, q, w[i * DSq], (int32_t)D);
      } else {
        for (uint32_t i = 0; i < gc; ++i) Add(q, q, x[i * DSq], (int32_t)D);
      }
      qInQ_.FreeTensor(x);
    }
  }

  // Rows of the tile starting at candidate j (tiles never cross a metadata page).
  __aicore__ inline uint32_t TileRows(uint64_t j, uint64_t c1) {
    return (uint32_t)Min64(Min64(t_.tileRows, t_.metaRows - j % t_.metaRows), c1 - j);
  }
  // scores_[0, tr) for candidates [j, j + tr); a page id outside the pool reads nothing and scores -inf.
  __aicore__ inline void ScoreTile(uint32_t b, uint32_t n, uint64_t j, uint32_t tr) {
    const int32_t pid = mbtGm_.GetValue((uint64_t)b * t_.maxMetaPagesPerSeq + j / t_.metaRows);
    if (pid >= 0 && (uint32_t)pid < t_.numMetaPages) {
      CopyIn((uint32_t)pid, (uint32_t)(j % t_.metaRows), n, tr);
      Compute(tr);
    } else {
      status_.Raise(select_attn::ascendc::kStatusBadMetaPage);
      Duplicate(scores_.Get<float>(), NegInf(), (int32_t)t_.tileRowsPad);
    }
  }

  // The best candidates of [c0, c1) (score descending, ties to the smaller id) that come after the
  // boundary pair (sB, iB) in that order when haveBound; returns how many the running list holds
  // (<= topCap, a multiple of 32) and leaves them in topA_ or topB_ (inA).
  __aicore__ inline uint32_t TopAfter(uint32_t b, uint32_t n, uint64_t c0, uint64_t c1, bool haveBound, float sB, uint32_t iB,
                                      bool& inA) {
    uint32_t kcur = 0;
    inA = true;
    for (uint64_t j = c0; j < c1;) {
      const uint32_t tr = TileRows(j, c1);
      ScoreTile(b, n, j, tr);
      LocalTensor<int32_t> idx = index_.Get<int32_t>();
      CreateVecIndex(idx, (int32_t)j, t_.tileRowsPad);
      LocalTensor<float> sorted = sortDst_.Get<float>();
      LocalTensor<float> tmp = sortTmp_.Get<float>();
      Sort<float, true>(sorted, scores_.Get<float>(), index_.Get<uint32_t>(), tmp, (int32_t)(t_.tileRowsPad / 32));
      if (!haveBound || DropThrough(sB, iB)) kcur = Merge(kcur, inA);
      j += tr;
    }
    return kcur;
  }

  // Keeps the best `want` (<= topCap) candidates of [c0, c1) and leaves them in ids_ in ascending
  // id order; returns want.
  __aicore__ inline uint32_t ScoreAndSelect(uint32_t b, uint32_t n, uint64_t c0, uint64_t c1, uint32_t want) {
    bool inA = true;
    const uint32_t kcur = TopAfter(b, n, c0, c1, false, 0.0f, 0, inA);
    // Selected ids: the odd words of the first kcur (score, index) pairs.
    LocalTensor<float> top = inA ? topA_.Get<float>() : topB_.Get<float>();
    LocalTensor<uint32_t> ids = ids_.Get<uint32_t>();
    uint64_t cnt = 0;
    GatherMask(ids, top.template ReinterpretCast<uint32_t>(), (uint8_t)2, false, 0u, GatherMaskParams(1, kcur / 32, 8, 0), cnt);
    // Ascending ids: sort by -id (exact in f32 below 2^24 blocks); padding keys -inf sort last.
    const uint32_t wantPad = RoundUp(want, 32);
    LocalTensor<float> keys = keys_.Get<float>();
    Duplicate(keys, NegInf(), (int32_t)wantPad);
    Cast(keys, ids.template ReinterpretCast<int32_t>(), RoundMode::CAST_NONE, want);
    Muls(keys, keys, -1.0f, (int32_t)want);
    LocalTensor<float> sorted = sortDst_.Get<float>();
    LocalTensor<float> tmp = sortTmp_.Get<float>();
    Sort<float, true>(sorted, keys, ids, tmp, (int32_t)(wantPad / 32));
    GatherMask(ids, sorted.template ReinterpretCast<uint32_t>(), (uint8_t)2, false, 0u, GatherMaskParams(1, wantPad / 32, 8, 0), cnt);
    return want;
  }

  // More picks than the running list holds: rounds of topCap find the want-th candidate in (score
  // descending, id ascending) order, each round rescoring the candidates after the previous round's
  // last one; then a final pass writes, in ascending id order, every candidate at or before it.
  __aicore__ inline void SelectMany(uint32_t b, uint32_t n, uint64_t c0, uint64_t c1, uint64_t want, uint64_t gmOut) {
    bool haveBound = false;
    float sB = 0.0f;
    uint32_t iB = 0;
    for (uint64_t done = 0; done < want;) {
      const uint32_t kr = (uint32_t)Min64(t_.topCap, want - done);
      bool inA = true;
      TopAfter(b, n, c0, c1, haveBound, sB, iB, inA);
      LocalTensor<float> top = inA ? topA_.Get<float>() : topB_.Get<float>();
      SetFlag<HardEvent::V_S>(EVENT_ID0);
      WaitFlag<HardEvent::V_S>(EVENT_ID0);
      sB = top.GetValue(2 * (kr - 1));
      iB = top.template ReinterpretCast<uint32_t>().GetValue(2 * (kr - 1) + 1);
      haveBound = true;
      done += kr;
    }
    uint64_t written = 0;
    uint32_t staged = 0;
    LocalTensor<int32_t> o;
    for (uint64_t j = c0; j < c1;) {
      const uint32_t tr = TileRows(j, c1);
      ScoreTile(b, n, j, tr);
      LocalTensor<float> sc = scores_.Get<float>();
      SetFlag<HardEvent::V_S>(EVENT_ID0);
      WaitFlag<HardEvent::V_S>(EVENT_ID0);
      for (uint32_t i = 0; i < tr; ++i) {
        const float v = sc.GetValue(i);
        const uint32_t id = (uint32_t)(j + i);
        if (!(v > sB || (v == sB && id <= iB))) continue;
        if (staged == 0) o = outQ_.template AllocTensor<int32_t>();
        o.SetValue(staged++, (int32_t)id);
        if (staged == t_.outChunk) {
          FlushStaged(o, gmOut + written, staged);
          written += staged;
          staged = 0;
        }
      }
      SetFlag<HardEvent::S_V>(EVENT_ID0);  // the next tile's vector ops overwrite what was just read
      WaitFlag<HardEvent::S_V>(EVENT_ID0);
      j += tr;
    }
    if (staged) FlushStaged(o, gmOut + written, staged);
  }
  __aicore__ inline void FlushStaged(LocalTensor<int32_t>& o, uint64_t gmOff, uint32_t n) {
    SetFlag<HardEvent::S_MTE3>(EVENT_ID0);  // scalar writes land before the DMA reads them
    WaitFlag<HardEvent::S_MTE3>(EVENT_ID0);
    CopyOutInts(o, gmOff, n);
  }

  // After a Sort of one tile: drops the leading pairs that come at or before the boundary (equal
  // scores are in ascending id order, so they form a prefix), moving the rest to the front and padding
  // with (-inf, ~0) so the list stays sorted and 32-aligned. Returns false when nothing is left.
  __aicore__ inline bool DropThrough(float sB, uint32_t iB) {
    const uint32_t TRp = t_.tileRowsPad;
    LocalTensor<float> sv = sortDst_.Get<float>();
    LocalTensor<uint32_t> iv = sv.template ReinterpretCast<uint32_t>();
    SetFlag<HardEvent::V_S>(EVENT_ID0);
    WaitFlag<HardEvent::V_S>(EVENT_ID0);
    uint32_t lo = 0, hi = TRp;  // first pair strictly after the boundary
    while (lo < hi) {
      const uint32_t mid = (lo + hi) / 2;
      const float v = sv.GetValue(2 * mid);
      const bool before = v > sB || (v == sB && iv.GetValue(2 * mid + 1) <= iB);
      if (before) lo = mid + 1;
      else hi = mid;
    }
    if (lo == TRp) return false;
    if (lo > 0) {
      for (uint32_t m = 0; m + lo < TRp; ++m) {
        iv.SetValue(2 * m, iv.GetValue(2 * (m + lo)));
        iv.SetValue(2 * m + 1, iv.GetValue(2 * (m + lo) + 1));
      }
      for (uint32_t m = TRp - lo; m < TRp; ++m) {
        sv.SetValue(2 * m, NegInf());
        iv.SetValue(2 * m + 1, 0xffffffffu);
      }
      SetFlag<HardEvent::S_V>(EVENT_ID0);
      WaitFlag<HardEvent::S_V>(EVENT_ID0);
    }
    return true;
  }

  // Metadata rows [row0, row0 + tr) of page pid, KV head n: max rows then min rows, 32-byte rows.
  __aicore__ inline void CopyIn(uint32_t pid, uint32_t row0, uint32_t n, uint32_t tr) {
    const uint32_t D = t_.headDim, N = t_.numKvHeads, DSm = t_.metaStride;
    LocalTensor<MT> x = inQ_.template AllocTensor<MT>();
    const uint64_t off = ((uint64_t)pid * t_.metaRows + row0) * N * D + (uint64_t)n * D;
    const DataCopyExtParams p(tr, D * sizeof(MT), (N - 1) * D * sizeof(MT), 0, 0);
    const DataCopyPadExtParams<MT> pad(true, 0, DSm - D, MT(0));
    DataCopyPad(x, maxGm_[off], p, pad);
    DataCopyPad(x[t_.tileRows * DSm], minGm_[off], p, pad);
    inQ_.EnQue(x);
  }

  // scores_[0, tr) = sum_d max(q_d * max_d, q_d * min_d) per row; scores_[tr, TRp) = -inf.
  __aicore__ inline void Compute(uint32_t tr) {
    const uint32_t D = t_.headDim, DSm = t_.metaStride, TR = t_.tileRows, TRp = t_.tileRowsPad;
    const uint8_t rowBlocks = (uint8_t)(DSm / 8);  // f32 row stride in 32-byte blocks
    LocalTensor<MT> x = inQ_.template DeQue<MT>();
    LocalTensor<float> mx, mn;
    if constexpr (sizeof(MT) == 2) {
      LocalTensor<float> w = work_.Get<float>();
      mx = w;
      mn = w[TR * DSm];
      Cast(mx, x, RoundMode::CAST_NONE, tr * DSm);
      Cast(mn, x[TR * DSm], RoundMode::CAST_NONE, tr * DSm);
      inQ_.FreeTensor(x);
    } else {
      mx = x.template ReinterpretCast<float>();
      mn = mx[TR * DSm];
    }
    LocalTensor<float> q = qSum_.Get<float>();
    // One repeat per row: 64 channels of the row times the same 64 query channels (src0 repeat stride 0).
    for (uint32_t c = 0; c < ncol_; ++c) {
      const uint64_t lanes = Min32(64, D - 64 * c);
      Mul(mx[64 * c], q[64 * c], mx[64 * c], lanes, (int32_t)tr, BinaryRepeatParams(1, 1, 1, rowBlocks, 0, rowBlocks));
      Mul(mn[64 * c], q[64 * c], mn[64 * c], lanes, (int32_t)tr, BinaryRepeatParams(1, 1, 1, rowBlocks, 0, rowBlocks));
    }
    Max(mx, mx, mn, (int32_t)(tr * DSm));
    LocalTensor<float> s = scores_.Get<float>();
    Duplicate(s, NegInf(), (int32_t)TRp);
    if (ncol_ == 1) {
      WholeReduceSum(s, mx, (int32_t)Min32(64, D), (int32_t)tr, 1, 1, rowBlocks);
    } else {
      LocalTensor<float> part = part_.Get<float>();
      for (uint32_t c = 0; c < ncol_; ++c)
        WholeReduceSum(part[c * TRp], mx[64 * c], (int32_t)Min32(64, D - 64 * c), (int32_t)tr, 1, 1, rowBlocks);
      Add(s, part, part[TRp], (int32_t)tr);
      for (uint32_t c = 2; c < ncol_; ++c) Add(s, s, part[c * TRp], (int32_t)tr);
    }
    if constexpr (sizeof(MT) == 4) inQ_.FreeTensor(x);
  }

  // Merges the sorted tile (sortDst_) into the running top list; returns its new length (<= topCap,
  // a multiple of 32). Equal scores keep the earlier list first: the top list holds smaller ids.
  __aicore__ inline uint32_t Merge(uint32_t kcur, bool& inA) {
    const uint32_t TRp = t_.tileRowsPad;
    LocalTensor<float> sorted = sortDst_.Get<float>();
    LocalTensor<float> src = inA ? topA_.Get<float>() : topB_.Get<float>();
    if (kcur == 0) {
      DataCopy(src, sorted, TRp * 2);
      return Min32(t_.topCap, TRp);
    }
    LocalTensor<float> dst = inA ? topB_.Get<float>() : topA_.Get<float>();
    const uint16_t lens[4] = {(uint16_t)kcur, (uint16_t)TRp, 0, 0};
    MrgSort(dst, MrgSortSrcList<float>(src, sorted, src, src), MrgSort4Info(lens, false, 0b11, 1));
    inA = !inA;
    return Min32(t_.topCap, kcur + TRp);
  }

  __aicore__ inline void EmitIds(uint64_t gmOff, uint32_t count) {
    if (count == 0) return;
    SetFlag<HardEvent::V_MTE3>(EVENT_ID0);
    WaitFlag<HardEvent::V_MTE3>(EVENT_ID0);
    DataCopyPad(selGm_[gmOff], ids_.Get<int32_t>(), DataCopyExtParams(1, count * sizeof(int32_t), 0, 0, 0));
    SetFlag<HardEvent::MTE3_V>(EVENT_ID0);
    WaitFlag<HardEvent::MTE3_V>(EVENT_ID0);
  }

  // Writes first, first+1, ... (count ids) at selected[gmOff..]; exact bytes, never past the row.
  __aicore__ inline void EmitRamp(uint64_t gmOff, uint64_t first, uint64_t count) {
    for (uint64_t done = 0; done < count;) {
      const uint32_t n = (uint32_t)Min64(t_.outChunk, count - done);
      LocalTensor<int32_t> o = outQ_.template AllocTensor<int32_t>();
      CreateVecIndex(o, (int32_t)(first + done), n);
      CopyOutInts(o, gmOff + done, n);
      done += n;
    }
  }
  __aicore__ inline void EmitFill(uint64_t gmOff, uint64_t count, int32_t value) {
    for (uint64_t done = 0; done < count;) {
      const uint32_t n = (uint32_t)Min64(t_.outChunk, count - done);
      LocalTensor<int32_t> o = outQ_.template AllocTensor<int32_t>();
      Duplicate(o, value, (int32_t)n);
      CopyOutInts(o, gmOff + done, n);
      done += n;
    }
  }
  __aicore__ inline void CopyOutInts(LocalTensor<int32_t>& o, uint64_t gmOff, uint32_t n) {
    outQ_.EnQue(o);
    o = outQ_.template DeQue<int32_t>();
    DataCopyPad(selGm_[gmOff], o, DataCopyExtParams(1, n * sizeof(int32_t), 0, 0, 0));
    outQ_.FreeTensor(o);
  }

  __aicore__ inline void PushNumSelected(int32_t v) {
    if (!t_.hasNumSelected) return;
    if (nsCount_ == t_.numSelChunk) FlushNumSelected();
    ns_.Get<int32_t>().SetValue(nsCount_++, v);
  }
  __aicore__ inline void FlushNumSelected() {
    if (!t_.hasNumSelected || nsCount_ == 0) return;
    SetFlag<HardEvent::S_MTE3>(EVENT_ID0);
    WaitFlag<HardEvent::S_MTE3>(EVENT_ID0);
    DataCopyPad(nsGm_[nsBase_], ns_.Get<int32_t>(), DataCopyExtParams(1, nsCount_ * sizeof(int32_t), 0, 0, 0));
    SetFlag<HardEvent::MTE3_S>(EVENT_ID0);
    WaitFlag<HardEvent::MTE3_S>(EVENT_ID0);
    nsBase_ += nsCount_;
    nsCount_ = 0;
  }

  QuestSelectTiling t_;
  uint32_t ncol_ = 1;
  uint64_t nsBase_ = 0;
  uint32_t nsCount_ = 0;
  GlobalTensor<QT> queryGm_;
  GlobalTensor<MT> maxGm_, minGm_;
  GlobalTensor<int32_t> mbtGm_, seqGm_, tsuGm_, selGm_, nsGm_;
  StatusWord status_;
  TQue<TPosition::VECIN, 2> inQ_;
  TQue<TPosition::VECIN, 1> qInQ_;
  TQue<TPosition::VECOUT, 2> outQ_;
  TBuf<TPosition::VECCALC> qWork_, qSum_, work_, part_, scores_, index_, sortDst_, sortTmp_, topA_, topB_, ids_, keys_, ns_;
};

template <typename QT, typename MT>
__aicore__ inline void RunQuestSelect(GM_ADDR query, GM_ADDR maxMeta, GM_ADDR minMeta, GM_ADDR metaBlockTables,
                                      GM_ADDR seqLens, GM_ADDR tokensSinceUpdate, GM_ADDR selected, GM_ADDR numSelected,
                                      GM_ADDR status, GM_ADDR tiling) {
  QuestSelectTiling t;
  CopyTiling(&t, tiling);
  TPipe pipe;
  KernelQuestSelect<QT, MT> op;
  op.Init(query, maxMeta, minMeta, metaBlockTables, seqLens, tokensSinceUpdate, selected, numSelected, status, t, &pipe);
  op.Process();
}

}  // namespace sa_kernels

// Entry points, one per (query dtype, metadata dtype).
#define SA_QUEST_SELECT_ENTRY(name, QT, MT)                                                                              \
  extern "C" __global__ __aicore__ void name(GM_ADDR query, GM_ADDR maxMeta, GM_ADDR minMeta, GM_ADDR metaBlockTables, \
                                             GM_ADDR seqLens, GM_ADDR tokensSinceUpdate, GM_ADDR selected,             \
                                             GM_ADDR numSelected, GM_ADDR status, GM_ADDR tiling) {                    \
    sa_kernels::RunQuestSelect<QT, MT>(query, maxMeta, minMeta, metaBlockTables, seqLens, tokensSinceUpdate, selected, \
                                       numSelected, status, tiling);                                                  \
  }
SA_QUEST_SELECT_ENTRY(sa_quest_select_f32_f32, float, float)
SA_QUEST_SELECT_ENTRY(sa_quest_select_f32_f16, float, half)
SA_QUEST_SELECT_ENTRY(sa_quest_select_f32_bf16, float, bfloat16_t)
SA_QUEST_SELECT_ENTRY(sa_quest_select_f16_f32, half, float)
SA_QUEST_SELECT_ENTRY(sa_quest_select_f16_f16, half, half)
SA_QUEST_SELECT_ENTRY(sa_quest_select_f16_bf16, half, bfloat16_t)
SA_QUEST_SELECT_ENTRY(sa_quest_select_bf16_f32, bfloat16_t, float)
SA_QUEST_SELECT_ENTRY(sa_quest_select_bf16_f16, bfloat16_t, half)
SA_QUEST_SELECT_ENTRY(sa_quest_select_bf16_bf16, bfloat16_t, bfloat16_t)
#undef SA_QUEST_SELECT_ENTRY
