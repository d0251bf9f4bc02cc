// ascend-sim twin of the Ascend C API subset the select-attn kernels use (CANN's kernel_operator.h):
// the same kernel source compiles against this header on any host, with the 910B's documented
// semantics (256-byte repeats, masks, strides, f16 arithmetic in f16, tree sums, stable Sort) and its
// rules checked as errors that name the call (UB overflow, alignment, repeat > 255, masks, queue misuse,
// reads of UB never written, GM accesses outside the kernel arguments).
#pragma once
#define SA_ASCEND_TWIN 1
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "twin_core.h"
#include "twin_types.h"

#define __aicore__
#define __global__
#define __gm__
#define GM_ADDR uint8_t*

namespace AscendC {

namespace tw = select_attn::twin;

// ---------------------------------------------------------------- positions, events, modes
enum class TPosition : int { GM = 0, VECIN = 1, VECOUT = 2, VECCALC = 3, A1 = 4, B1 = 5, C1 = 6, MAX = 7 };
using QuePosition = TPosition;
enum class HardEvent : int { MTE2_V = 0, V_MTE2, MTE3_V, V_MTE3, S_V, V_S, S_MTE3, MTE3_S, S_MTE2, MTE2_S, MTE3_MTE2, MTE2_MTE3 };
enum pipe_t : int { PIPE_S = 0, PIPE_V, PIPE_MTE2, PIPE_MTE3, PIPE_ALL };
enum TEventID : int { EVENT_ID0 = 0, EVENT_ID1, EVENT_ID2, EVENT_ID3, EVENT_ID4, EVENT_ID5, EVENT_ID6, EVENT_ID7 };
enum class RoundMode : int { CAST_NONE = 0, CAST_RINT, CAST_FLOOR, CAST_CEIL, CAST_ROUND, CAST_TRUNC, CAST_ODD };

constexpr int32_t ONE_BLK_SIZE = 32;
constexpr int32_t ONE_REPEAT_BYTE_SIZE = 256;
constexpr int32_t MAX_REPEAT_TIMES = 255;

// ---------------------------------------------------------------- system variables
inline int64_t GetBlockIdx() { return tw::cur().idx; }
inline int64_t GetBlockNum() { return tw::cur().num; }
inline int64_t GetTaskRation() { return 1; }  // vector-only kernels
inline void SetAtomicNone() {}

// Cross-pipe events. The twin runs pipes in program order, so a wait never blocks; it still checks
// pairing: a WaitFlag with no SetFlag before it would hang the hardware.
template <HardEvent E>
inline void SetFlag(int32_t id) {
  if (id < 0 || id > 7) tw::fail("SetFlag", "event id " + std::to_string(id) + " outside [0, 7]");
  tw::cur().events[(int)E][id]++;
}
template <HardEvent E>
inline void WaitFlag(int32_t id) {
  if (id < 0 || id > 7) tw::fail("WaitFlag", "event id " + std::to_string(id) + " outside [0, 7]");
  int& n = tw::cur().events[(int)E][id];
  if (n <= 0) tw::fail("WaitFlag", "event " + std::to_string((int)E) + " id " + std::to_string(id) + " was never set (the hardware would hang)");
  --n;
}
template <pipe_t P>
inline void PipeBarrier() {}

enum class CacheLine : int { SINGLE_CACHE_LINE = 0, ENTIRE_DATA_CACHE };
enum class DcciDst : int { CACHELINE_ALL = 0, CACHELINE_UB, CACHELINE_OUT, CACHELINE_ATOMIC };
template <typename T>
class GlobalTensor;
// The twin has no data cache: scalar GM writes land immediately.
template <typename T, CacheLine L, DcciDst D>
inline void DataCacheCleanAndInvalid(const GlobalTensor<T>&) {}

// ---------------------------------------------------------------- GlobalTensor
template <typename T>
class GlobalTensor {
 public:
  // size: elements the kernel may touch from buffer on (the twin checks every access against it).
  void SetGlobalBuffer(__gm__ T* buffer, uint64_t size) {
    base_ = buffer;
    size_ = size;
  }
  void SetGlobalBuffer(__gm__ T* buffer) {
    base_ = buffer;
    size_ = 0;
  }
  GlobalTensor operator[](uint64_t off) const {
    if (size_ && off > size_) tw::fail("GlobalTensor::operator[]", "offset " + std::to_string(off) + " > size " + std::to_string(size_));
    GlobalTensor g;
    g.base_ = base_ + off;
    g.size_ = size_ ? size_ - off : 0;
    return g;
  }
  T GetValue(uint64_t i) const {
    check("GlobalTensor::GetValue", i, 1, false);
    tw::cur().c.gm_scalar_read_bytes += sizeof(T);
    T v;
    std::memcpy(&v, base_ + i, sizeof(T));
    return v;
  }
  void SetValue(uint64_t i, T v) const {
    check("GlobalTensor::SetValue", i, 1, true);
    tw::cur().c.gm_scalar_write_bytes += sizeof(T);
    std::memcpy(base_ + i, &v, sizeof(T));
    tw::log_gm_write(base_ + i, sizeof(T));
  }
  __gm__ T* GetPhyAddr() const { return base_; }
  uint64_t GetSize() const { return size_; }

  // twin: every GM access goes through here.
  void check(const char* call, uint64_t off_elems, uint64_t n_elems, bool write) const {
    if (!base_) tw::fail(call, "GlobalTensor without SetGlobalBuffer");
    if (!size_) tw::fail(call, "GlobalTensor set without a size (the twin checks every GM access against it)");
    if (off_elems + n_elems > size_)
      tw::fail(call, "GM " + std::string(write ? "write" : "read") + " of elements [" + std::to_string(off_elems) + ", " +
                         std::to_string(off_elems + n_elems) + ") past the GlobalTensor's " + std::to_string(size_));
    tw::check_gm(call, base_ + off_elems, n_elems * sizeof(T), write);
  }

 private:
  T* base_ = nullptr;
  uint64_t size_ = 0;
};

// ---------------------------------------------------------------- LocalTensor
template <typename T>
class LocalTensor {
 public:
  LocalTensor() = default;
  LocalTensor operator[](uint32_t off) const {
    if (off > len_) tw::fail("LocalTensor::operator[]", "offset " + std::to_string(off) + " > size " + std::to_string(len_));
    LocalTensor t = *this;
    t.addr_ = addr_ + (uint64_t)off * sizeof(T);
    t.len_ = len_ - off;
    return t;
  }
  // Scalar UB access (the scalar unit; needs S<->V syncs on the hardware).
  T GetValue(uint32_t i) const {
    if (i >= len_) tw::fail("LocalTensor::GetValue", "index " + std::to_string(i) + " >= size " + std::to_string(len_));
    tw::check_ub("LocalTensor::GetValue", "tensor", slot_, addr_ + (uint64_t)i * sizeof(T), sizeof(T));
    tw::check_init("LocalTensor::GetValue", "tensor", addr_ + (uint64_t)i * sizeof(T), sizeof(T));
    T v;
    std::memcpy(&v, tw::cur().ub + addr_ + (uint64_t)i * sizeof(T), sizeof(T));
    return v;
  }
  void SetValue(uint32_t i, T v) const {
    if (i >= len_) tw::fail("LocalTensor::SetValue", "index " + std::to_string(i) + " >= size " + std::to_string(len_));
    tw::check_ub("LocalTensor::SetValue", "tensor", slot_, addr_ + (uint64_t)i * sizeof(T), sizeof(T));
    std::memcpy(tw::cur().ub + addr_ + (uint64_t)i * sizeof(T), &v, sizeof(T));
    tw::mark_init(addr_ + (uint64_t)i * sizeof(T), sizeof(T));
  }
  uint32_t GetSize() const { return len_; }
  uint64_t GetPhyAddr() const { return addr_; }
  template <typename U>
  LocalTensor<U> ReinterpretCast() const {
    LocalTensor<U> t;
    t.addr_ = addr_;
    t.len_ = (uint32_t)((uint64_t)len_ * sizeof(T) / sizeof(U));
    t.slot_ = slot_;
    return t;
  }

  // twin internals (public so the free functions and other instantiations can reach them)
  uint64_t addr_ = 0;           // UB byte offset
  uint32_t len_ = 0;            // elements
  tw::BufSlot* slot_ = nullptr;  // owning buffer
  T* ptr() const { return reinterpret_cast<T*>(tw::cur().ub + addr_); }
};

// ---------------------------------------------------------------- TPipe, TQue, TBuf
class TPipe;

template <TPosition P>
class TBuf {
 public:
  template <typename T>
  LocalTensor<T> Get() const {
    if (!slot_.size) tw::fail("TBuf::Get", "TBuf used before TPipe::InitBuffer");
    LocalTensor<T> t;
    t.addr_ = slot_.base;
    t.len_ = slot_.size / sizeof(T);
    t.slot_ = const_cast<tw::BufSlot*>(&slot_);
    return t;
  }
  template <typename T>
  LocalTensor<T> Get(uint32_t len) const {
    if ((uint64_t)len * sizeof(T) > slot_.size)
      tw::fail("TBuf::Get", std::to_string(len) + " elements of " + std::to_string(sizeof(T)) + " bytes exceed the buffer's " +
                                std::to_string(slot_.size) + " bytes");
    LocalTensor<T> t = Get<T>();
    t.len_ = len;
    return t;
  }
  tw::BufSlot slot_;
};

template <TPosition P, int32_t DEPTH>
class TQue {
 public:
  template <typename T>
  LocalTensor<T> AllocTensor() {
    if (slots_.empty()) tw::fail("TQue::AllocTensor", "queue used before TPipe::InitBuffer");
    for (size_t k = 0; k < slots_.size(); ++k) {
      tw::BufSlot& s = slots_[(next_ + k) % slots_.size()];
      if (s.state != tw::BufState::free) continue;
      next_ = (next_ + k + 1) % slots_.size();
      s.state = tw::BufState::alloc;
      // A freshly allocated block holds whatever the previous user left: not "written" for this use.
      std::memset(tw::cur().init + s.base, 0, s.size);
      LocalTensor<T> t;
      t.addr_ = s.base;
      t.len_ = s.size / sizeof(T);
      t.slot_ = &s;
      return t;
    }
    tw::fail("TQue::AllocTensor", "all " + std::to_string(slots_.size()) + " buffers of the queue are in use (FreeTensor missing?)");
  }
  template <typename T>
  bool EnQue(const LocalTensor<T>& t) {
    tw::BufSlot* s = own("TQue::EnQue", t.slot_);
    if (s->state != tw::BufState::alloc) tw::fail("TQue::EnQue", "tensor is not freshly allocated (EnQue twice, or after DeQue)");
    if ((int32_t)fifo_.size() >= DEPTH) tw::fail("TQue::EnQue", "queue full (depth " + std::to_string(DEPTH) + ")");
    s->state = tw::BufState::enqueued;
    fifo_.push_back(s);
    return true;
  }
  template <typename T>
  LocalTensor<T> DeQue() {
    if (fifo_.empty()) tw::fail("TQue::DeQue", "queue is empty (the hardware would wait forever)");
    tw::BufSlot* s = fifo_.front();
    fifo_.erase(fifo_.begin());
    s->state = tw::BufState::dequeued;
    LocalTensor<T> t;
    t.addr_ = s->base;
    t.len_ = s->size / sizeof(T);
    t.slot_ = s;
    return t;
  }
  template <typename T>
  void FreeTensor(const LocalTensor<T>& t) {
    tw::BufSlot* s = own("TQue::FreeTensor", t.slot_);
    if (s->state == tw::BufState::free) tw::fail("TQue::FreeTensor", "buffer freed twice");
    if (s->state == tw::BufState::enqueued) tw::fail("TQue::FreeTensor", "buffer freed while enqueued (DeQue missing)");
    s->state = tw::BufState::free;
  }

  TQue() = default;
  TQue(const TQue&) = delete;
  TQue& operator=(const TQue&) = delete;
  // Leaks are reported when the queue dies (inside the kernel entry, while the core is current).
  ~TQue() {
    tw::Core* c = tw::cur_or_null();
    if (!c) return;
    for (const tw::BufSlot& s : slots_)
      if (s.state == tw::BufState::enqueued)
        c->deferred.push_back("TQue: a tensor was enqueued and never dequeued at kernel end");
      else if (s.state == tw::BufState::alloc || s.state == tw::BufState::dequeued)
        c->deferred.push_back("TQue: a tensor was never freed at kernel end");
  }

  std::vector<tw::BufSlot> slots_;
  std::vector<tw::BufSlot*> fifo_;
  size_t next_ = 0;
  int id_ = -1;

 private:
  tw::BufSlot* own(const char* call, tw::BufSlot* s) {
    if (!s || s->que != id_ || s < slots_.data() || s >= slots_.data() + slots_.size())
      tw::fail(call, "tensor does not belong to this queue");
    return s;
  }
};

class TPipe {
 public:
  TPipe() {
    tw::Core& c = tw::cur();
    if (c.pipes++ != 0) tw::fail("TPipe", "a second TPipe on one core");
    c.pipe_used = 0;
    c.buffers = 0;
    for (int& q : c.que_buffers) q = 0;
  }
  ~TPipe() {
    if (tw::Core* c = tw::cur_or_null()) c->pipes--;
  }
  TPipe(const TPipe&) = delete;
  TPipe& operator=(const TPipe&) = delete;

  template <TPosition P, int32_t D>
  bool InitBuffer(TQue<P, D>& que, uint8_t num, uint32_t len) {
    if (!que.slots_.empty()) tw::fail("TPipe::InitBuffer", "queue initialized twice");
    if (num < 1) tw::fail("TPipe::InitBuffer", "num must be >= 1");
    tw::Core& c = tw::cur();
    c.que_buffers[(int)P] += num;
    if (c.que_buffers[(int)P] > tw::kMaxQueBuffersPerPosition)
      tw::fail("TPipe::InitBuffer", std::to_string(c.que_buffers[(int)P]) + " queue buffers on one TPosition (at most " +
                                        std::to_string(tw::kMaxQueBuffersPerPosition) + " on Atlas A2)");
    que.id_ = c.next_que_id++;
    que.slots_.resize(num);
    for (auto& s : que.slots_) {
      carve(s, len);
      s.state = tw::BufState::free;
      s.que = que.id_;
    }
    return true;
  }
  template <TPosition P>
  bool InitBuffer(TBuf<P>& buf, uint32_t len) {
    if (buf.slot_.size) tw::fail("TPipe::InitBuffer", "TBuf initialized twice");
    carve(buf.slot_, len);
    buf.slot_.state = tw::BufState::tbuf;
    return true;
  }

 private:
  void carve(tw::BufSlot& s, uint32_t len) {
    tw::Core& c = tw::cur();
    if (len == 0) tw::fail("TPipe::InitBuffer", "zero-byte buffer");
    const uint64_t size = ((uint64_t)len + 31) / 32 * 32;  // rounded up to 32 bytes, as the runtime does
    if (++c.buffers > tw::kMaxBuffers) tw::fail("TPipe::InitBuffer", "more than 64 buffers in one kernel");
    if (c.pipe_used + size > c.ub_limit)
      tw::fail("TPipe::InitBuffer", "UB overflow: " + std::to_string(c.pipe_used) + " bytes in use + " + std::to_string(size) +
                                        " requested > " + std::to_string(c.ub_limit) + " usable (192 KB minus the runtime's reserve)");
    s.base = c.pipe_used;
    s.size = (uint32_t)size;
    c.pipe_used += (uint32_t)size;
    if (c.pipe_used > c.c.ub_peak_bytes) c.c.ub_peak_bytes = c.pipe_used;
  }
};

// ---------------------------------------------------------------- parameter structs (CANN names)
// Fields are wider than on the hardware so the twin can report values the hardware would truncate.
struct DataCopyParams {
  DataCopyParams() = default;
  DataCopyParams(uint32_t count, uint32_t len, uint32_t srcStrideIn, uint32_t dstStrideIn)
      : blockCount(count), blockLen(len), srcStride(srcStrideIn), dstStride(dstStrideIn) {}
  uint32_t blockCount = 1;  // [1, 4095]
  uint32_t blockLen = 0;    // 32-byte units
  uint32_t srcStride = 0;   // gap, 32-byte units
  uint32_t dstStride = 0;   // gap, 32-byte units
};
struct DataCopyExtParams {
  DataCopyExtParams() = default;
  DataCopyExtParams(uint32_t count, uint32_t len, uint32_t srcStrideIn, uint32_t dstStrideIn, uint32_t rsvIn)
      : blockCount(count), blockLen(len), srcStride(srcStrideIn), dstStride(dstStrideIn), rsv(rsvIn) {}
  uint32_t blockCount = 1;  // [1, 4095]
  uint32_t blockLen = 0;    // bytes, [1, 2097151]
  uint32_t srcStride = 0;   // gap: bytes on GM, 32-byte blocks on UB
  uint32_t dstStride = 0;   // gap: bytes on GM, 32-byte blocks on UB
  uint32_t rsv = 0;
};
template <typename T>
struct DataCopyPadExtParams {
  DataCopyPadExtParams() = default;
  DataCopyPadExtParams(bool isPadIn, uint32_t left, uint32_t right, T value)
      : isPad(isPadIn), leftPadding(left), rightPadding(right), paddingValue(value) {}
  bool isPad = false;
  uint32_t leftPadding = 0;   // elements
  uint32_t rightPadding = 0;  // elements
  T paddingValue = T(0);
};
struct BinaryRepeatParams {
  BinaryRepeatParams() = default;
  BinaryRepeatParams(uint32_t dB, uint32_t s0B, uint32_t s1B, uint32_t dR, uint32_t s0R, uint32_t s1R)
      : dstBlkStride(dB), src0BlkStride(s0B), src1BlkStride(s1B), dstRepStride(dR), src0RepStride(s0R), src1RepStride(s1R) {}
  uint32_t dstBlkStride = 1, src0BlkStride = 1, src1BlkStride = 1;
  uint32_t dstRepStride = 8, src0RepStride = 8, src1RepStride = 8;
};
struct UnaryRepeatParams {
  UnaryRepeatParams() = default;
  UnaryRepeatParams(uint32_t dB, uint32_t sB, uint32_t dR, uint32_t sR)
      : dstBlkStride(dB), srcBlkStride(sB), dstRepStride(dR), srcRepStride(sR) {}
  uint32_t dstBlkStride = 1, srcBlkStride = 1;
  uint32_t dstRepStride = 8, srcRepStride = 8;
};
struct GatherMaskParams {
  GatherMaskParams() = default;
  GatherMaskParams(uint32_t s0Blk, uint32_t repeats, uint32_t s0Rep, uint32_t s1Rep)
      : src0BlockStride(s0Blk), repeatTimes(repeats), src0RepeatStride(s0Rep), src1RepeatStride(s1Rep) {}
  uint32_t src0BlockStride = 1;
  uint32_t repeatTimes = 0;
  uint32_t src0RepeatStride = 8;
  uint32_t src1RepeatStride = 8;
};
constexpr int MRG_SORT_ELEMENT_LEN = 4;
struct MrgSort4Info {
  MrgSort4Info() = default;
  MrgSort4Info(const uint16_t lengths[4], bool exhausted, uint16_t valid, uint16_t repeats)
      : ifExhaustedSuspension(exhausted), validBit(valid), repeatTimes(repeats) {
    for (int i = 0; i < 4; ++i) elementLengths[i] = lengths[i];
  }
  uint16_t elementLengths[4] = {0, 0, 0, 0};
  bool ifExhaustedSuspension = false;
  uint16_t validBit = 0;
  uint16_t repeatTimes = 1;
};
template <typename T>
struct MrgSortSrcList {
  MrgSortSrcList() = default;
  MrgSortSrcList(const LocalTensor<T>& a, const LocalTensor<T>& b, const LocalTensor<T>& c, const LocalTensor<T>& d)
      : src1(a), src2(b), src3(c), src4(d) {}
  LocalTensor<T> src1, src2, src3, src4;
};

}  // namespace AscendC

#include "twin_ops.h"
