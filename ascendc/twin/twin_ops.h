// The twin's instructions: DataCopy/DataCopyPad, element-wise vector ops in count and mask/repeat
// forms, Cast, Duplicate, CreateVecIndex, WholeReduceSum, Sort, MrgSort, GatherMask. Each checks the
// rules the hardware relies on and counts repeats and DMA bytes. Included by kernel_operator.h.
#pragma once

namespace AscendC {
namespace twin_detail {

namespace tw = select_attn::twin;

template <typename T>
constexpr int kEpr = 256 / (int)sizeof(T);  // elements per repeat
template <typename T>
constexpr int kEpb = 32 / (int)sizeof(T);  // elements per 32-byte block

template <typename T>
constexpr bool is_f16 = std::is_same<T, half>::value;
template <typename T>
constexpr bool is_bf16 = std::is_same<T, bfloat16_t>::value;

inline std::string num(uint64_t v) { return std::to_string(v); }

// Values in the arithmetic the hardware uses: f32 for float, f16 (rounded once) for half.
template <typename T>
struct Arith {
  static T add(T a, T b) { return a + b; }
  static T sub(T a, T b) { return a - b; }
  static T mul(T a, T b) { return a * b; }
  static T max(T a, T b) { return a > b ? a : b; }
  static T min(T a, T b) { return a < b ? a : b; }
};
template <>
struct Arith<half> {
  static half r(double x) { return half::from_bits(tw::f64_to_f16_rne(x)); }
  static half add(half a, half b) { return r((double)(float)a + (double)(float)b); }
  static half sub(half a, half b) { return r((double)(float)a - (double)(float)b); }
  static half mul(half a, half b) { return r((double)(float)a * (double)(float)b); }
  static half max(half a, half b) { return (float)a > (float)b ? a : b; }
  static half min(half a, half b) { return (float)a < (float)b ? a : b; }
};
template <>
struct Arith<int32_t> {
  static int32_t add(int32_t a, int32_t b) { return (int32_t)((uint32_t)a + (uint32_t)b); }
  static int32_t sub(int32_t a, int32_t b) { return (int32_t)((uint32_t)a - (uint32_t)b); }
  static int32_t mul(int32_t a, int32_t b) { return (int32_t)((uint32_t)a * (uint32_t)b); }
  static int32_t max(int32_t a, int32_t b) { return a > b ? a : b; }
  static int32_t min(int32_t a, int32_t b) { return a < b ? a : b; }
};

template <typename T>
void require_vector_type(const char* call) {
  static_assert(std::is_same<T, float>::value || std::is_same<T, half>::value || std::is_same<T, int32_t>::value ||
                    std::is_same<T, int16_t>::value || std::is_same<T, uint16_t>::value || std::is_same<T, uint32_t>::value,
                "this twin instruction supports half, float and 16/32-bit integers (bfloat16_t has no vector arithmetic on Atlas A2)");
  (void)call;
}

inline void count_vec(uint64_t repeats) {
  tw::Core& c = tw::cur();
  c.c.vector_instrs++;
  c.c.vector_repeats += repeats;
}

template <typename T>
void aligned(const char* call, const char* operand, const LocalTensor<T>& t, uint64_t align = 32) {
  if (!t.slot_) tw::fail(call, std::string(operand) + " is not a tensor from TQue::AllocTensor/DeQue or TBuf::Get");
  if (t.addr_ % align)
    tw::fail(call, std::string(operand) + " UB address " + num(t.addr_) + " is not " + num(align) + "-byte aligned");
}

inline void check_repeat(const char* call, int64_t repeat) {
  if (repeat < 0 || repeat > 255) tw::fail(call, "repeatTime " + num((uint64_t)repeat) + " outside [0, 255]");
}
inline void check_stride(const char* call, const char* name, uint64_t v, uint64_t limit = 255) {
  if (v > limit) tw::fail(call, std::string(name) + " " + num(v) + " > " + num(limit) + " (the hardware field would truncate it)");
}

struct Lanes {
  uint64_t lo = 0, hi = 0;
  bool on(int e) const { return e < 64 ? (lo >> e) & 1 : (hi >> (e - 64)) & 1; }
};
template <typename T>
Lanes mask_cont(const char* call, uint64_t mask) {
  const int epr = kEpr<T>;
  if (mask < 1 || mask > (uint64_t)epr)
    tw::fail(call, "mask " + num(mask) + " outside [1, " + num(epr) + "] for " + num(8 * sizeof(T)) + "-bit elements");
  Lanes l;
  l.lo = mask >= 64 ? ~0ull : ((1ull << mask) - 1);
  l.hi = mask > 64 ? (mask == 128 ? ~0ull : ((1ull << (mask - 64)) - 1)) : 0;
  return l;
}
template <typename T>
Lanes mask_bits(const char* call, const uint64_t mask[]) {
  Lanes l{mask[0], sizeof(T) == 2 ? mask[1] : 0};
  if (sizeof(T) == 4 && mask[1] != 0) tw::fail(call, "mask[1] must be 0 for 32-bit elements (64 lanes per repeat)");
  if (!l.lo && !l.hi) tw::fail(call, "mask selects no element");
  return l;
}

// Byte address of element e (0..epr-1) of repeat r for an operand with the given strides (32-byte units).
template <typename T>
inline uint64_t lane_addr(uint64_t base, int r, int e, uint32_t blk, uint32_t rep) {
  return base + ((uint64_t)r * rep + (uint64_t)(e / kEpb<T>) * blk) * 32 + (uint64_t)(e % kEpb<T>) * sizeof(T);
}

template <typename T>
inline T load(uint64_t addr) {
  T v;
  std::memcpy(&v, tw::cur().ub + addr, sizeof(T));
  return v;
}
template <typename T>
inline void store(uint64_t addr, T v) {
  std::memcpy(tw::cur().ub + addr, &v, sizeof(T));
  tw::mark_init(addr, sizeof(T));
}

// Within one repeat, a source and the destination must overlap completely or not at all.
inline void overlap_rule(const char* call, const char* name, uint64_t dlo, uint64_t dhi, uint64_t slo, uint64_t shi, bool same) {
  if (dlo < shi && slo < dhi && !same)
    tw::fail(call, std::string(name) + " partially overlaps dst within a repeat (must overlap 100% or not at all)");
}

// count form: the first `count` elements, contiguous (counter mode).
template <typename T>
void count_checks(const char* call, const char* operand, const LocalTensor<T>& t, int64_t count, bool read) {
  aligned(call, operand, t);
  if ((uint64_t)count > t.len_)
    tw::fail(call, "count " + num(count) + " exceeds " + std::string(operand) + "'s " + num(t.len_) + " elements");
  tw::check_ub(call, operand, t.slot_, t.addr_, (uint64_t)count * sizeof(T));
  if (read) tw::check_init(call, operand, t.addr_, (uint64_t)count * sizeof(T));
}
template <typename T, typename S>
void count_overlap(const char* call, const char* name, const LocalTensor<T>& d, const LocalTensor<S>& s, int64_t count) {
  const uint64_t dhi = d.addr_ + count * sizeof(T), shi = s.addr_ + count * sizeof(S);
  if (d.addr_ < shi && s.addr_ < dhi && !(d.addr_ == s.addr_ && sizeof(T) == sizeof(S)))
    tw::fail(call, std::string(name) + " partially overlaps dst (must overlap 100% or not at all)");
}

template <typename T, typename F>
void binary_count(const char* call, const LocalTensor<T>& d, const LocalTensor<T>& a, const LocalTensor<T>& b, int32_t count, F f) {
  require_vector_type<T>(call);
  if (count < 0) tw::fail(call, "count " + std::to_string(count) + " < 0");
  count_vec(((uint64_t)count * sizeof(T) + 255) / 256);
  if (count == 0) return;
  count_checks(call, "src0", a, count, true);
  count_checks(call, "src1", b, count, true);
  count_checks(call, "dst", d, count, false);
  count_overlap(call, "src0", d, a, count);
  count_overlap(call, "src1", d, b, count);
  T* pd = d.ptr();
  const T* pa = a.ptr();
  const T* pb = b.ptr();
  for (int32_t i = 0; i < count; ++i) pd[i] = f(pa[i], pb[i]);
  tw::mark_init(d.addr_, (uint64_t)count * sizeof(T));
}

template <typename T, typename F>
void binary_repeat(const char* call, const LocalTensor<T>& d, const LocalTensor<T>& a, const LocalTensor<T>& b, Lanes m,
                   int32_t repeat, const BinaryRepeatParams& p, F f) {
  require_vector_type<T>(call);
  check_repeat(call, repeat);
  check_stride(call, "dstBlkStride", p.dstBlkStride);
  check_stride(call, "src0BlkStride", p.src0BlkStride);
  check_stride(call, "src1BlkStride", p.src1BlkStride);
  check_stride(call, "dstRepStride", p.dstRepStride);
  check_stride(call, "src0RepStride", p.src0RepStride);
  check_stride(call, "src1RepStride", p.src1RepStride);
  if (p.dstBlkStride == 0) tw::fail(call, "dstBlkStride 0 is undefined");
  aligned(call, "dst", d);
  aligned(call, "src0", a);
  aligned(call, "src1", b);
  count_vec(repeat);
  constexpr int epr = kEpr<T>;
  T tmp[epr];
  for (int r = 0; r < repeat; ++r) {
    uint64_t dlo = ~0ull, dhi = 0, alo = ~0ull, ahi = 0, blo = ~0ull, bhi = 0;
    for (int e = 0; e < epr; ++e) {
      if (!m.on(e)) continue;
      const uint64_t xa = lane_addr<T>(a.addr_, r, e, p.src0BlkStride, p.src0RepStride);
      const uint64_t xb = lane_addr<T>(b.addr_, r, e, p.src1BlkStride, p.src1RepStride);
      const uint64_t xd = lane_addr<T>(d.addr_, r, e, p.dstBlkStride, p.dstRepStride);
      tw::check_ub(call, "src0", a.slot_, xa, sizeof(T));
      tw::check_ub(call, "src1", b.slot_, xb, sizeof(T));
      tw::check_ub(call, "dst", d.slot_, xd, sizeof(T));
      tw::check_init(call, "src0", xa, sizeof(T));
      tw::check_init(call, "src1", xb, sizeof(T));
      tmp[e] = f(load<T>(xa), load<T>(xb));
      alo = std::min(alo, xa), ahi = std::max(ahi, xa + sizeof(T));
      blo = std::min(blo, xb), bhi = std::max(bhi, xb + sizeof(T));
      dlo = std::min(dlo, xd), dhi = std::max(dhi, xd + sizeof(T));
    }
    const bool same_a = a.addr_ + (uint64_t)r * p.src0RepStride * 32 == d.addr_ + (uint64_t)r * p.dstRepStride * 32 && p.src0BlkStride == p.dstBlkStride;
    const bool same_b = b.addr_ + (uint64_t)r * p.src1RepStride * 32 == d.addr_ + (uint64_t)r * p.dstRepStride * 32 && p.src1BlkStride == p.dstBlkStride;
    overlap_rule(call, "src0", dlo, dhi, alo, ahi, same_a);
    overlap_rule(call, "src1", dlo, dhi, blo, bhi, same_b);
    for (int e = 0; e < epr; ++e)
      if (m.on(e)) store<T>(lane_addr<T>(d.addr_, r, e, p.dstBlkStride, p.dstRepStride), tmp[e]);
  }
}

template <typename T, typename F>
void unary_count(const char* call, const LocalTensor<T>& d, const LocalTensor<T>& s, int32_t count, F f) {
  require_vector_type<T>(call);
  if (count < 0) tw::fail(call, "count " + std::to_string(count) + " < 0");
  count_vec(((uint64_t)count * sizeof(T) + 255) / 256);
  if (count == 0) return;
  count_checks(call, "src", s, count, true);
  count_checks(call, "dst", d, count, false);
  count_overlap(call, "src", d, s, count);
  T* pd = d.ptr();
  const T* ps = s.ptr();
  for (int32_t i = 0; i < count; ++i) pd[i] = f(ps[i]);
  tw::mark_init(d.addr_, (uint64_t)count * sizeof(T));
}

template <typename T, typename F>
void unary_repeat(const char* call, const LocalTensor<T>& d, const LocalTensor<T>& s, Lanes m, int32_t repeat,
                  const UnaryRepeatParams& p, F f) {
  require_vector_type<T>(call);
  check_repeat(call, repeat);
  check_stride(call, "dstBlkStride", p.dstBlkStride);
  check_stride(call, "srcBlkStride", p.srcBlkStride);
  check_stride(call, "dstRepStride", p.dstRepStride);
  check_stride(call, "srcRepStride", p.srcRepStride);
  if (p.dstBlkStride == 0) tw::fail(call, "dstBlkStride 0 is undefined");
  aligned(call, "dst", d);
  aligned(call, "src", s);
  count_vec(repeat);
  constexpr int epr = kEpr<T>;
  T tmp[epr];
  for (int r = 0; r < repeat; ++r) {
    uint64_t dlo = ~0ull, dhi = 0, slo = ~0ull, shi = 0;
    for (int e = 0; e < epr; ++e) {
      if (!m.on(e)) continue;
      const uint64_t xs = lane_addr<T>(s.addr_, r, e, p.srcBlkStride, p.srcRepStride);
      const uint64_t xd = lane_addr<T>(d.addr_, r, e, p.dstBlkStride, p.dstRepStride);
      tw::check_ub(call, "src", s.slot_, xs, sizeof(T));
      tw::check_ub(call, "dst", d.slot_, xd, sizeof(T));
      tw::check_init(call, "src", xs, sizeof(T));
      tmp[e] = f(load<T>(xs));
      slo = std::min(slo, xs), shi = std::max(shi, xs + sizeof(T));
      dlo = std::min(dlo, xd), dhi = std::max(dhi, xd + sizeof(T));
    }
    const bool same = s.addr_ + (uint64_t)r * p.srcRepStride * 32 == d.addr_ + (uint64_t)r * p.dstRepStride * 32 && p.srcBlkStride == p.dstBlkStride;
    overlap_rule(call, "src", dlo, dhi, slo, shi, same);
    for (int e = 0; e < epr; ++e)
      if (m.on(e)) store<T>(lane_addr<T>(d.addr_, r, e, p.dstBlkStride, p.dstRepStride), tmp[e]);
  }
}

// Binary tree of adjacent pairs over the epr lanes of one repeat (masked lanes count as 0). f16 sums
// saturate at +-65504, as documented for the reduction instructions.
template <typename T>
T tree_sum(T* v, int n) {
  for (int w = n; w > 1; w /= 2)
    for (int i = 0; i < w / 2; ++i) {
      if constexpr (is_f16<T>) {
        double s = (double)(float)v[2 * i] + (double)(float)v[2 * i + 1];
        if (s > 65504.0) s = 65504.0;
        if (s < -65504.0) s = -65504.0;
        v[i] = half::from_bits(tw::f64_to_f16_rne(s));
      } else {
        v[i] = v[2 * i] + v[2 * i + 1];
      }
    }
  return v[0];
}

}  // namespace twin_detail

namespace td = twin_detail;

inline std::string num_bytes_msg(uint64_t bytes) {
  return "length " + std::to_string(bytes) + " bytes is not a multiple of 32 (the hardware would round it down; use DataCopyPad)";
}

// ---------------------------------------------------------------- data movement
template <typename T>
void DataCopy(const LocalTensor<T>& dst, const GlobalTensor<T>& src, uint32_t count) {
  const char* call = "DataCopy(GM->UB)";
  const uint64_t bytes = (uint64_t)count * sizeof(T);
  if (bytes % 32) tw::fail(call, num_bytes_msg(bytes));
  td::aligned(call, "dst", dst);
  src.check(call, 0, count, false);
  tw::check_ub(call, "dst", dst.slot_, dst.addr_, bytes);
  std::memcpy(dst.ptr(), src.GetPhyAddr(), bytes);
  tw::mark_init(dst.addr_, bytes);
  tw::cur().c.gm_to_ub_bytes += bytes;
  tw::cur().c.dma_instrs++;
}
template <typename T>
void DataCopy(const GlobalTensor<T>& dst, const LocalTensor<T>& src, uint32_t count) {
  const char* call = "DataCopy(UB->GM)";
  const uint64_t bytes = (uint64_t)count * sizeof(T);
  if (bytes % 32) tw::fail(call, num_bytes_msg(bytes));
  td::aligned(call, "src", src);
  dst.check(call, 0, count, true);
  tw::check_ub(call, "src", src.slot_, src.addr_, bytes);
  tw::check_init(call, "src", src.addr_, bytes);
  std::memcpy(dst.GetPhyAddr(), src.ptr(), bytes);
  tw::log_gm_write(dst.GetPhyAddr(), bytes);
  tw::cur().c.ub_to_gm_bytes += bytes;
  tw::cur().c.dma_instrs++;
}
// UB -> UB copy (count elements, a multiple of 32 bytes).
template <typename T>
void DataCopy(const LocalTensor<T>& dst, const LocalTensor<T>& src, uint32_t count) {
  const char* call = "DataCopy(UB->UB)";
  const uint64_t bytes = (uint64_t)count * sizeof(T);
  if (bytes % 32) tw::fail(call, num_bytes_msg(bytes));
  td::aligned(call, "dst", dst);
  td::aligned(call, "src", src);
  tw::check_ub(call, "src", src.slot_, src.addr_, bytes);
  tw::check_ub(call, "dst", dst.slot_, dst.addr_, bytes);
  tw::check_init(call, "src", src.addr_, bytes);
  std::memmove(dst.ptr(), src.ptr(), bytes);
  tw::mark_init(dst.addr_, bytes);
  tw::cur().c.dma_instrs++;
}
// Strided forms: blockLen and both gaps in 32-byte units.
template <typename T>
void DataCopy(const LocalTensor<T>& dst, const GlobalTensor<T>& src, const DataCopyParams& p) {
  const char* call = "DataCopy(GM->UB, DataCopyParams)";
  if (p.blockCount < 1 || p.blockCount > 4095) tw::fail(call, "blockCount " + std::to_string(p.blockCount) + " outside [1, 4095]");
  if (p.blockLen < 1 || p.blockLen > 65535) tw::fail(call, "blockLen " + std::to_string(p.blockLen) + " outside [1, 65535]");
  if (p.srcStride > 65535 || p.dstStride > 65535) tw::fail(call, "stride > 65535");
  td::aligned(call, "dst", dst);
  const uint64_t len = (uint64_t)p.blockLen * 32;
  if (len % sizeof(T)) tw::fail(call, "block length is not a whole number of elements");
  for (uint32_t i = 0; i < p.blockCount; ++i) {
    const uint64_t so = i * (len + (uint64_t)p.srcStride * 32), d = dst.addr_ + i * (len + (uint64_t)p.dstStride * 32);
    src.check(call, so / sizeof(T), len / sizeof(T), false);
    tw::check_ub(call, "dst", dst.slot_, d, len);
    std::memcpy(tw::cur().ub + d, reinterpret_cast<const uint8_t*>(src.GetPhyAddr()) + so, len);
    tw::mark_init(d, len);
  }
  tw::cur().c.gm_to_ub_bytes += len * p.blockCount;
  tw::cur().c.dma_instrs++;
}
template <typename T>
void DataCopy(const GlobalTensor<T>& dst, const LocalTensor<T>& src, const DataCopyParams& p) {
  const char* call = "DataCopy(UB->GM, DataCopyParams)";
  if (p.blockCount < 1 || p.blockCount > 4095) tw::fail(call, "blockCount " + std::to_string(p.blockCount) + " outside [1, 4095]");
  if (p.blockLen < 1 || p.blockLen > 65535) tw::fail(call, "blockLen " + std::to_string(p.blockLen) + " outside [1, 65535]");
  if (p.srcStride > 65535 || p.dstStride > 65535) tw::fail(call, "stride > 65535");
  td::aligned(call, "src", src);
  const uint64_t len = (uint64_t)p.blockLen * 32;
  if (len % sizeof(T)) tw::fail(call, "block length is not a whole number of elements");
  for (uint32_t i = 0; i < p.blockCount; ++i) {
    const uint64_t s = src.addr_ + i * (len + (uint64_t)p.srcStride * 32), dof = i * (len + (uint64_t)p.dstStride * 32);
    tw::check_ub(call, "src", src.slot_, s, len);
    tw::check_init(call, "src", s, len);
    dst.check(call, dof / sizeof(T), len / sizeof(T), true);
    uint8_t* g = reinterpret_cast<uint8_t*>(dst.GetPhyAddr()) + dof;
    std::memcpy(g, tw::cur().ub + s, len);
    tw::log_gm_write(g, len);
  }
  tw::cur().c.ub_to_gm_bytes += len * p.blockCount;
  tw::cur().c.dma_instrs++;
}

// GM -> UB, any byte length: each block lands 32-byte aligned in UB, padded on the right (and left).
template <typename T>
void DataCopyPad(const LocalTensor<T>& dst, const GlobalTensor<T>& src, const DataCopyExtParams& p, const DataCopyPadExtParams<T>& pad) {
  const char* call = "DataCopyPad(GM->UB)";
  if (p.blockCount < 1 || p.blockCount > 4095) tw::fail(call, "blockCount " + std::to_string(p.blockCount) + " outside [1, 4095]");
  if (p.blockLen < 1 || p.blockLen > 2097151) tw::fail(call, "blockLen " + std::to_string(p.blockLen) + " bytes outside [1, 2097151]");
  if (p.blockLen % sizeof(T)) tw::fail(call, "blockLen " + std::to_string(p.blockLen) + " is not a whole number of elements");
  if (pad.leftPadding * sizeof(T) > 32 || pad.rightPadding * sizeof(T) > 32) tw::fail(call, "left/right padding over 32 bytes");
  td::aligned(call, "dst", dst);
  const uint64_t lb = pad.leftPadding * sizeof(T), rb = pad.rightPadding * sizeof(T);
  const uint64_t span = (lb + p.blockLen + rb + 31) / 32 * 32;
  const bool nopad = pad.leftPadding == 0 && pad.rightPadding == 0;
  tw::Core& c = tw::cur();
  for (uint32_t i = 0; i < p.blockCount; ++i) {
    const uint64_t so = (uint64_t)i * (p.blockLen + (uint64_t)p.srcStride);
    const uint64_t d = dst.addr_ + (uint64_t)i * (span + (uint64_t)p.dstStride * 32);
    if (so % sizeof(T)) tw::fail(call, "srcStride is not a whole number of elements");
    src.check(call, so / sizeof(T), p.blockLen / sizeof(T), false);
    tw::check_ub(call, "dst", dst.slot_, d, span);
    const uint8_t* g = reinterpret_cast<const uint8_t*>(src.GetPhyAddr()) + so;
    std::memcpy(c.ub + d + lb, g, p.blockLen);
    tw::mark_init(d + lb, p.blockLen);
    // Left/right padding: the pad value when isPad, else undefined. The filler up to 32 bytes: with no
    // padding requested it repeats the block's first element (documented); else as the padding.
    auto fill = [&](uint64_t at, uint64_t bytes, bool first_elem) {
      if (!bytes) return;
      if (first_elem || pad.isPad) {
        T v = pad.paddingValue;
        if (first_elem) std::memcpy(&v, g, sizeof(T));
        for (uint64_t k = 0; k < bytes; k += sizeof(T)) std::memcpy(c.ub + at + k, &v, sizeof(T));
        tw::mark_init(at, bytes);
      } else {
        tw::mark_uninit(at, bytes);
      }
    };
    fill(d, lb, false);
    fill(d + lb + p.blockLen, rb, false);
    fill(d + lb + p.blockLen + rb, span - lb - p.blockLen - rb, nopad);
  }
  c.c.gm_to_ub_bytes += (uint64_t)p.blockLen * p.blockCount;
  c.c.dma_instrs++;
}
// UB -> GM, any byte length: exactly blockLen bytes per block reach GM (the alignment filler is dropped).
template <typename T>
void DataCopyPad(const GlobalTensor<T>& dst, const LocalTensor<T>& src, const DataCopyExtParams& p) {
  const char* call = "DataCopyPad(UB->GM)";
  if (p.blockCount < 1 || p.blockCount > 4095) tw::fail(call, "blockCount " + std::to_string(p.blockCount) + " outside [1, 4095]");
  if (p.blockLen < 1 || p.blockLen > 2097151) tw::fail(call, "blockLen " + std::to_string(p.blockLen) + " bytes outside [1, 2097151]");
  if (p.blockLen % sizeof(T)) tw::fail(call, "blockLen " + std::to_string(p.blockLen) + " is not a whole number of elements");
  td::aligned(call, "src", src);
  const uint64_t span = ((uint64_t)p.blockLen + 31) / 32 * 32;
  tw::Core& c = tw::cur();
  for (uint32_t i = 0; i < p.blockCount; ++i) {
    const uint64_t s = src.addr_ + (uint64_t)i * (span + (uint64_t)p.srcStride * 32);
    const uint64_t dof = (uint64_t)i * (p.blockLen + (uint64_t)p.dstStride);
    if (dof % sizeof(T)) tw::fail(call, "dstStride is not a whole number of elements");
    tw::check_ub(call, "src", src.slot_, s, p.blockLen);
    tw::check_init(call, "src", s, p.blockLen);
    dst.check(call, dof / sizeof(T), p.blockLen / sizeof(T), true);
    uint8_t* g = reinterpret_cast<uint8_t*>(dst.GetPhyAddr()) + dof;
    std::memcpy(g, c.ub + s, p.blockLen);
    tw::log_gm_write(g, p.blockLen);
  }
  c.c.ub_to_gm_bytes += (uint64_t)p.blockLen * p.blockCount;
  c.c.dma_instrs++;
}

// ---------------------------------------------------------------- element-wise
#define SA_TWIN_BINARY(Name, fn)                                                                                          \
  template <typename T>                                                                                                   \
  void Name(const LocalTensor<T>& dst, const LocalTensor<T>& src0, const LocalTensor<T>& src1, const int32_t& count) {   \
    td::binary_count(#Name, dst, src0, src1, count, [](T a, T b) { return td::Arith<T>::fn(a, b); });                     \
  }                                                                                                                       \
  template <typename T, bool isSetMask = true>                                                                            \
  void Name(const LocalTensor<T>& dst, const LocalTensor<T>& src0, const LocalTensor<T>& src1, uint64_t mask,            \
            int32_t repeatTime, const BinaryRepeatParams& p) {                                                            \
    td::binary_repeat(#Name, dst, src0, src1, td::mask_cont<T>(#Name, mask), repeatTime, p,                               \
                      [](T a, T b) { return td::Arith<T>::fn(a, b); });                                                   \
  }                                                                                                                       \
  template <typename T, bool isSetMask = true>                                                                            \
  void Name(const LocalTensor<T>& dst, const LocalTensor<T>& src0, const LocalTensor<T>& src1, const uint64_t mask[],    \
            int32_t repeatTime, const BinaryRepeatParams& p) {                                                            \
    td::binary_repeat(#Name, dst, src0, src1, td::mask_bits<T>(#Name, mask), repeatTime, p,                               \
                      [](T a, T b) { return td::Arith<T>::fn(a, b); });                                                   \
  }
SA_TWIN_BINARY(Add, add)
SA_TWIN_BINARY(Sub, sub)
SA_TWIN_BINARY(Mul, mul)
SA_TWIN_BINARY(Max, max)
SA_TWIN_BINARY(Min, min)
#undef SA_TWIN_BINARY

#define SA_TWIN_SCALAR(Name, fn)                                                                                    \
  template <typename T>                                                                                             \
  void Name(const LocalTensor<T>& dst, const LocalTensor<T>& src, const T& scalar, const int32_t& count) {         \
    const T s = scalar;                                                                                             \
    td::unary_count(#Name, dst, src, count, [s](T a) { return td::Arith<T>::fn(a, s); });                           \
  }                                                                                                                 \
  template <typename T, bool isSetMask = true>                                                                      \
  void Name(const LocalTensor<T>& dst, const LocalTensor<T>& src, const T& scalar, uint64_t mask, int32_t repeatTime, \
            const UnaryRepeatParams& p) {                                                                           \
    const T s = scalar;                                                                                             \
    td::unary_repeat(#Name, dst, src, td::mask_cont<T>(#Name, mask), repeatTime, p,                                 \
                     [s](T a) { return td::Arith<T>::fn(a, s); });                                                  \
  }
SA_TWIN_SCALAR(Adds, add)
SA_TWIN_SCALAR(Muls, mul)
SA_TWIN_SCALAR(Maxs, max)
SA_TWIN_SCALAR(Mins, min)
#undef SA_TWIN_SCALAR

// Bitwise ops: 16-bit integers only on Atlas A2 (reinterpret wider data as int16 pairs).
template <typename T>
void And(const LocalTensor<T>& dst, const LocalTensor<T>& src0, const LocalTensor<T>& src1, const int32_t& count) {
  static_assert(std::is_same<T, int16_t>::value || std::is_same<T, uint16_t>::value, "And: int16_t/uint16_t on Atlas A2");
  td::binary_count("And", dst, src0, src1, count, [](T a, T b) { return (T)(a & b); });
}
template <typename T, bool isSetMask = true>
void And(const LocalTensor<T>& dst, const LocalTensor<T>& src0, const LocalTensor<T>& src1, uint64_t mask, int32_t repeatTime,
         const BinaryRepeatParams& p) {
  static_assert(std::is_same<T, int16_t>::value || std::is_same<T, uint16_t>::value, "And: int16_t/uint16_t on Atlas A2");
  td::binary_repeat("And", dst, src0, src1, td::mask_cont<T>("And", mask), repeatTime, p, [](T a, T b) { return (T)(a & b); });
}
template <typename T>
void Or(const LocalTensor<T>& dst, const LocalTensor<T>& src0, const LocalTensor<T>& src1, const int32_t& count) {
  static_assert(std::is_same<T, int16_t>::value || std::is_same<T, uint16_t>::value, "Or: int16_t/uint16_t on Atlas A2");
  td::binary_count("Or", dst, src0, src1, count, [](T a, T b) { return (T)(a | b); });
}
// Right shift by a scalar: arithmetic for signed types, logical for unsigned (documented).
template <typename T>
void ShiftRight(const LocalTensor<T>& dst, const LocalTensor<T>& src, const T& scalarValue, const int32_t& count) {
  static_assert(std::is_same<T, int16_t>::value || std::is_same<T, uint16_t>::value || std::is_same<T, int32_t>::value ||
                    std::is_same<T, uint32_t>::value,
                "ShiftRight: int16_t/uint16_t/int32_t/uint32_t");
  if ((int64_t)scalarValue < 0 || (int64_t)scalarValue > (int64_t)(8 * sizeof(T)))
    tw::fail("ShiftRight", "shift " + std::to_string((int64_t)scalarValue) + " outside [0, " + std::to_string(8 * sizeof(T)) + "]");
  const int sh = (int)scalarValue;
  td::unary_count("ShiftRight", dst, src, count, [sh](T a) -> T {
    if (sh >= (int)(8 * sizeof(T))) return std::is_signed<T>::value && a < 0 ? (T)-1 : (T)0;
    return (T)(a >> sh);  // >> on a negative signed value is arithmetic with gcc/clang
  });
}

template <typename T>
void Duplicate(const LocalTensor<T>& dst, const T& scalar, const int32_t& count) {
  static_assert(sizeof(T) == 2 || sizeof(T) == 4, "Duplicate: 16- or 32-bit elements");
  const char* call = "Duplicate";
  if (count < 0) tw::fail(call, "count " + std::to_string(count) + " < 0");
  td::count_vec(((uint64_t)count * sizeof(T) + 255) / 256);
  if (count == 0) return;
  td::count_checks(call, "dst", dst, count, false);
  T* p = dst.ptr();
  for (int32_t i = 0; i < count; ++i) p[i] = scalar;
  tw::mark_init(dst.addr_, (uint64_t)count * sizeof(T));
}
template <typename T, bool isSetMask = true>
void Duplicate(const LocalTensor<T>& dst, const T& scalar, uint64_t mask, int32_t repeatTime, uint32_t dstBlockStride,
               uint32_t dstRepeatStride) {
  const char* call = "Duplicate";
  td::check_repeat(call, repeatTime);
  td::check_stride(call, "dstBlockStride", dstBlockStride, 65535);
  td::check_stride(call, "dstRepeatStride", dstRepeatStride);
  td::aligned(call, "dst", dst);
  const td::Lanes m = td::mask_cont<T>(call, mask);
  td::count_vec(repeatTime);
  for (int r = 0; r < repeatTime; ++r)
    for (int e = 0; e < td::kEpr<T>; ++e) {
      if (!m.on(e)) continue;
      const uint64_t x = td::lane_addr<T>(dst.addr_, r, e, dstBlockStride, dstRepeatStride);
      tw::check_ub(call, "dst", dst.slot_, x, sizeof(T));
      td::store<T>(x, scalar);
    }
}

// dst[i] = firstValue + i. Like CANN's implementation, at least one 32-byte block is written.
template <typename T>
void CreateVecIndex(LocalTensor<T> dst, const T& firstValue, uint32_t count) {
  static_assert(std::is_same<T, int32_t>::value || std::is_same<T, float>::value || std::is_same<T, half>::value ||
                    std::is_same<T, int16_t>::value,
                "CreateVecIndex: int16_t, int32_t, half or float");
  const char* call = "CreateVecIndex";
  const uint32_t n = std::max<uint32_t>(count, td::kEpb<T>);
  td::count_vec(((uint64_t)n * sizeof(T) + 255) / 256);
  td::count_checks(call, "dst", dst, n, false);
  for (uint32_t i = 0; i < n; ++i) {
    T v;
    if constexpr (std::is_integral<T>::value) v = (T)((int64_t)firstValue + (int64_t)i);
    else v = T((float)firstValue + (float)i);
    std::memcpy(dst.ptr() + i, &v, sizeof(T));
  }
  tw::mark_init(dst.addr_, (uint64_t)n * sizeof(T));
}

// ---------------------------------------------------------------- Cast
template <typename D, typename S>
void Cast(const LocalTensor<D>& dst, const LocalTensor<S>& src, const RoundMode& mode, const uint32_t count) {
  const char* call = "Cast";
  constexpr bool f16_f32 = std::is_same<D, float>::value && std::is_same<S, half>::value;
  constexpr bool bf16_f32 = std::is_same<D, float>::value && std::is_same<S, bfloat16_t>::value;
  constexpr bool f32_f16 = std::is_same<D, half>::value && std::is_same<S, float>::value;
  constexpr bool f32_bf16 = std::is_same<D, bfloat16_t>::value && std::is_same<S, float>::value;
  constexpr bool i32_f32 = std::is_same<D, float>::value && std::is_same<S, int32_t>::value;
  static_assert(f16_f32 || bf16_f32 || f32_f16 || f32_bf16 || i32_f32,
                "Cast pair not emulated (half/bfloat16_t <-> float, int32_t -> float)");
  // Allowed rounding modes per pair on Atlas A2 (CANN's vconv table).
  if ((f16_f32 || bf16_f32) && mode != RoundMode::CAST_NONE) tw::fail(call, "widening to float takes CAST_NONE only");
  if (f32_bf16 && (mode == RoundMode::CAST_NONE || mode == RoundMode::CAST_ODD)) tw::fail(call, "float -> bfloat16_t takes CAST_RINT/FLOOR/CEIL/ROUND/TRUNC");
  if (i32_f32 && mode == RoundMode::CAST_ODD) tw::fail(call, "int32_t -> float does not take CAST_ODD");
  td::count_vec(((uint64_t)count * std::max(sizeof(D), sizeof(S)) + 255) / 256);
  if (count == 0) return;
  td::count_checks(call, "src", src, count, true);
  td::count_checks(call, "dst", dst, count, false);
  td::count_overlap(call, "src", dst, src, count);
  const tw::Round r = (tw::Round)(int)mode;
  std::vector<S> in(src.ptr(), src.ptr() + count);  // dst may alias src
  for (uint32_t i = 0; i < count; ++i) {
    D v;
    if constexpr (f16_f32 || bf16_f32) {
      v = (float)in[i];
    } else if constexpr (f32_f16) {
      v = half::from_bits(tw::f32_to_16(in[i], r, true));
    } else if constexpr (f32_bf16) {
      v = bfloat16_t::from_bits(tw::f32_to_16(in[i], r, false));
    } else {
      const double x = (double)in[i];
      float f = (float)x;  // exact below 2^24; RINT elsewhere
      if (mode == RoundMode::CAST_FLOOR && (double)f > x) f = std::nextafter(f, -INFINITY);
      if (mode == RoundMode::CAST_CEIL && (double)f < x) f = std::nextafter(f, INFINITY);
      if (mode == RoundMode::CAST_TRUNC && std::fabs((double)f) > std::fabs(x)) f = std::nextafter(f, 0.0f);
      v = f;
    }
    std::memcpy(dst.ptr() + i, &v, sizeof(D));
  }
  tw::mark_init(dst.addr_, (uint64_t)count * sizeof(D));
}

// ---------------------------------------------------------------- reductions
// One sum per repeat: dst[r * dstRepStride] = tree sum of the first `mask` lanes of repeat r.
template <typename T, bool isSetMask = true>
void WholeReduceSum(const LocalTensor<T>& dst, const LocalTensor<T>& src, const int32_t mask, const int32_t repeatTime,
                    const int32_t dstRepStride, const int32_t srcBlkStride, const int32_t srcRepStride) {
  static_assert(std::is_same<T, float>::value || std::is_same<T, half>::value, "WholeReduceSum: half or float");
  const char* call = "WholeReduceSum";
  td::check_repeat(call, repeatTime);
  td::check_stride(call, "srcBlkStride", srcBlkStride);
  td::check_stride(call, "srcRepStride", srcRepStride);
  if (dstRepStride < 0) tw::fail(call, "dstRepStride < 0");
  td::aligned(call, "src", src);
  td::aligned(call, "dst", dst, sizeof(T));
  const td::Lanes m = td::mask_cont<T>(call, (uint64_t)mask);
  td::count_vec(repeatTime);
  constexpr int epr = td::kEpr<T>;
  T v[epr];
  for (int r = 0; r < repeatTime; ++r) {
    for (int e = 0; e < epr; ++e) {
      if (!m.on(e)) {
        v[e] = T(0.0f);
        continue;
      }
      const uint64_t x = td::lane_addr<T>(src.addr_, r, e, srcBlkStride, srcRepStride);
      tw::check_ub(call, "src", src.slot_, x, sizeof(T));
      tw::check_init(call, "src", x, sizeof(T));
      v[e] = td::load<T>(x);
    }
    const T s = td::tree_sum(v, epr);
    const uint64_t xd = dst.addr_ + (uint64_t)r * dstRepStride * sizeof(T);
    tw::check_ub(call, "dst", dst.slot_, xd, sizeof(T));
    td::store<T>(xd, s);
  }
}

// ---------------------------------------------------------------- sorting (Atlas A2 layout)
// Sorted data are (score, index) pairs of 8 bytes: float score in the low word, uint32 index in the high.
template <typename T, bool isFullSort>
void Sort(const LocalTensor<T>& dst, const LocalTensor<T>& concat, const LocalTensor<uint32_t>& index, LocalTensor<T>& tmp,
          const int32_t repeatTime) {
  static_assert(std::is_same<T, float>::value, "the twin's Sort takes float scores");
  const char* call = "Sort";
  td::check_repeat(call, repeatTime);
  td::aligned(call, "dst", dst);
  td::aligned(call, "concat", concat);
  td::aligned(call, "index", index);
  td::aligned(call, "tmp", tmp);
  const uint64_t n = 32ull * repeatTime;  // Sort32 sorts groups of 32: the caller pads the scores
  if (n == 0) return;
  if (concat.len_ < n || index.len_ < n)
    tw::fail(call, "concat holds " + std::to_string(concat.len_) + " scores and index " + std::to_string(index.len_) +
                       " ids, but repeatTime " + std::to_string(repeatTime) + " sorts " + std::to_string(n) +
                       " (pad the scores to a multiple of 32)");
  tw::check_ub(call, "concat", concat.slot_, concat.addr_, n * 4);
  tw::check_ub(call, "index", index.slot_, index.addr_, n * 4);
  tw::check_ub(call, "dst", dst.slot_, dst.addr_, n * 8);
  tw::check_ub(call, "tmp", tmp.slot_, tmp.addr_, n * 8);
  tw::check_init(call, "concat", concat.addr_, n * 4);
  tw::check_init(call, "index", index.addr_, n * 4);
  auto disjoint = [&](uint64_t a, uint64_t an, uint64_t b, uint64_t bn, const char* what) {
    if (a < b + bn && b < a + an) tw::fail(call, std::string(what) + " overlap");
  };
  disjoint(dst.addr_, n * 8, concat.addr_, n * 4, "dst and concat");
  disjoint(dst.addr_, n * 8, index.addr_, n * 4, "dst and index");
  disjoint(tmp.addr_, n * 8, dst.addr_, n * 8, "tmp and dst");
  struct P {
    float s;
    uint32_t i;
  };
  std::vector<P> v(n);
  for (uint64_t k = 0; k < n; ++k) {
    std::memcpy(&v[k].s, tw::cur().ub + concat.addr_ + 4 * k, 4);
    std::memcpy(&v[k].i, tw::cur().ub + index.addr_ + 4 * k, 4);
  }
  // Sort32 then 4-way merges: descending by score, equal scores keep input order (documented).
  if (isFullSort) std::stable_sort(v.begin(), v.end(), [](const P& a, const P& b) { return a.s > b.s; });
  else
    for (uint64_t g = 0; g < n; g += 32)
      std::stable_sort(v.begin() + g, v.begin() + g + 32, [](const P& a, const P& b) { return a.s > b.s; });
  std::memcpy(tw::cur().ub + dst.addr_, v.data(), n * 8);
  std::memcpy(tw::cur().ub + tmp.addr_, v.data(), n * 8);  // tmp ends with merge scratch
  tw::mark_init(dst.addr_, n * 8);
  tw::mark_init(tmp.addr_, n * 8);
  // Sort32 plus ceil(log4(repeat)) merge passes over the data.
  int passes = 0;
  for (int q = repeatTime; q > 1; q = (q + 3) / 4) ++passes;
  td::count_vec(repeatTime + (uint64_t)passes * ((n * 8 + 255) / 256));
}

// Merges 2..4 lists of sorted pairs (validBit 0b11, 0b111, 0b1111); equal scores: earlier list first.
template <typename T>
void MrgSort(const LocalTensor<T>& dst, const MrgSortSrcList<T>& src, const MrgSort4Info& info) {
  static_assert(std::is_same<T, float>::value, "the twin's MrgSort takes float pairs");
  const char* call = "MrgSort";
  int lists = info.validBit == 0b11 ? 2 : info.validBit == 0b111 ? 3 : info.validBit == 0b1111 ? 4 : 0;
  if (!lists) tw::fail(call, "validBit must be 0b11, 0b111 or 0b1111");
  if (info.repeatTimes != 1) tw::fail(call, "the twin emulates repeatTimes 1 only");
  if (info.ifExhaustedSuspension) tw::fail(call, "the twin does not emulate ifExhaustedSuspension");
  const LocalTensor<T>* in[4] = {&src.src1, &src.src2, &src.src3, &src.src4};
  struct P {
    float s;
    uint32_t i;
  };
  std::vector<std::vector<P>> L(lists);
  uint64_t total = 0;
  td::aligned(call, "dst", dst);
  for (int l = 0; l < lists; ++l) {
    const uint64_t len = info.elementLengths[l];
    if (len > 4095) tw::fail(call, "list length " + std::to_string(len) + " > 4095");
    td::aligned(call, "src", *in[l]);
    tw::check_ub(call, "src", in[l]->slot_, in[l]->addr_, len * 8);
    tw::check_init(call, "src", in[l]->addr_, len * 8);
    L[l].resize(len);
    std::memcpy(L[l].data(), tw::cur().ub + in[l]->addr_, len * 8);
    for (uint64_t k = 1; k < len; ++k)
      if (L[l][k].s > L[l][k - 1].s) tw::fail(call, "list " + std::to_string(l + 1) + " is not sorted descending");
    total += len;
  }
  tw::check_ub(call, "dst", dst.slot_, dst.addr_, total * 8);
  for (int l = 0; l < lists; ++l) {
    const uint64_t len = info.elementLengths[l];
    if (len && dst.addr_ < in[l]->addr_ + len * 8 && in[l]->addr_ < dst.addr_ + total * 8)
      tw::fail(call, "dst overlaps source list " + std::to_string(l + 1));
  }
  std::vector<P> out;
  out.reserve(total);
  std::vector<size_t> at(lists, 0);
  while (out.size() < total) {
    int best = -1;
    for (int l = 0; l < lists; ++l)
      if (at[l] < L[l].size() && (best < 0 || L[l][at[l]].s > L[best][at[best]].s)) best = l;
    out.push_back(L[best][at[best]++]);
  }
  if (total) {
    std::memcpy(tw::cur().ub + dst.addr_, out.data(), total * 8);
    tw::mark_init(dst.addr_, total * 8);
  }
  td::count_vec((total * 8 + 255) / 256);
}

// Normal mode: per repeat, the 256 bytes of src0 are filtered by a built-in pattern (1: even
// elements, 2: odd, 3..6: element 0..3 of every 4, 7: all) and compacted into dst.
template <typename T>
void GatherMask(const LocalTensor<T>& dst, const LocalTensor<T>& src0, const uint8_t pattern, const bool reduceMode,
                const uint32_t mask, const GatherMaskParams& p, uint64_t& rsvdCnt) {
  static_assert(sizeof(T) == 2 || sizeof(T) == 4, "GatherMask: 16- or 32-bit elements");
  const char* call = "GatherMask";
  (void)mask;  // ignored in normal mode
  if (reduceMode) tw::fail(call, "the twin emulates normal mode (reduceMode false) only");
  if (pattern < 1 || pattern > 7) tw::fail(call, "built-in pattern " + std::to_string(pattern) + " outside [1, 7]");
  td::check_stride(call, "repeatTimes", p.repeatTimes);
  td::check_stride(call, "src0BlockStride", p.src0BlockStride);
  td::check_stride(call, "src0RepeatStride", p.src0RepeatStride, 65535);
  td::aligned(call, "dst", dst);
  td::aligned(call, "src0", src0);
  td::count_vec(p.repeatTimes);
  uint64_t n = 0;
  for (uint32_t r = 0; r < p.repeatTimes; ++r)
    for (int e = 0; e < td::kEpr<T>; ++e) {
      const bool on = pattern == 7 || (pattern == 1 && e % 2 == 0) || (pattern == 2 && e % 2 == 1) ||
                      (pattern >= 3 && pattern <= 6 && e % 4 == pattern - 3);
      if (!on) continue;
      const uint64_t xs = td::lane_addr<T>(src0.addr_, (int)r, e, p.src0BlockStride, p.src0RepeatStride);
      tw::check_ub(call, "src0", src0.slot_, xs, sizeof(T));
      tw::check_init(call, "src0", xs, sizeof(T));
      const uint64_t xd = dst.addr_ + n * sizeof(T);
      tw::check_ub(call, "dst", dst.slot_, xd, sizeof(T));
      td::store<T>(xd, td::load<T>(xs));
      ++n;
    }
  rsvdCnt = n;
}

}  // namespace AscendC
