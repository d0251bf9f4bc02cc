// Unit tests of the ascend-sim twin (one or more per emulated Ascend C call, against the documented
// semantics), negative tests (deliberately broken kernels must fail with the twin's error), tiling
// tests (every supported shape fits the UB; the kernels carve exactly what ub_bytes() says) and the
// kernels' device-side guards. Built and run by ascendc/twin.test.ts; prints "ok NAME" or "FAIL NAME: why".
#include "../twin/kernel_operator.h"

#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "../sim_kernels.h"
#include "../tiling.h"
#include "test_failure.h"

using namespace AscendC;
namespace tw = select_attn::twin;
namespace sa = select_attn;

namespace {

struct TestCase {
  const char* name;
  void (*fn)();
};
std::vector<TestCase>& registry() {
  static std::vector<TestCase> r;
  return r;
}
struct Reg {
  Reg(const char* n, void (*f)()) { registry().push_back({n, f}); }
};
#define TEST(name)                       \
  static void test_##name();             \
  static Reg reg_##name(#name, test_##name); \
  static void test_##name()

using Failure = TestFailure;
#define CHECK(cond)                                                                                 \
  do {                                                                                              \
    if (!(cond)) throw Failure{std::string(__FILE__) + ":" + std::to_string(__LINE__) + ": " #cond}; \
  } while (0)
#define CHECK_EQ(a, b)                                                                                          \
  do {                                                                                                          \
    auto _a = (a);                                                                                              \
    auto _b = (b);                                                                                              \
    if (!(_a == _b))                                                                                            \
      throw Failure{std::string(__FILE__) + ":" + std::to_string(__LINE__) + ": " #a " == " #b " (" + std::to_string(_a) + \
                    " vs " + std::to_string(_b) + ")"};                                                         \
  } while (0)

// Runs body on `cores` twin cores with the given GM regions.
tw::LaunchResult run(std::function<void()> body, std::vector<tw::GmRegion> regions = {}, int cores = 1) {
  tw::LaunchSpec s;
  s.kernel = "test";
  s.block_dim = cores;
  s.regions = std::move(regions);
  s.ctx = &body;
  s.threads = 1;
  s.entry = [](void* c) {
    try {
      (*static_cast<std::function<void()>*>(c))();
    } catch (const Failure& f) {  // a CHECK inside a kernel body: report it through the twin
      throw tw::Error{"CHECK failed: " + f.msg};
    }
  };
  return tw::launch(s);
}
void expect_ok(const tw::LaunchResult& r) {
  if (!r.ok) throw Failure{"unexpected twin error: " + r.error};
}
void expect_error(const tw::LaunchResult& r, const std::string& needle) {
  if (r.ok) throw Failure{"expected a twin error containing '" + needle + "', got none"};
  if (r.error.find(needle) == std::string::npos) throw Failure{"twin error '" + r.error + "' lacks '" + needle + "'"};
}
template <class T>
tw::GmRegion reg(const char* name, std::vector<T>& v, bool writable = true) {
  return tw::GmRegion{name, reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(T), writable};
}
float h(half x) { return (float)x; }

// A pipe with one TBuf of `bytes` per name, for the calls that need plain UB.
struct Bufs {
  TPipe pipe;
  TBuf<TPosition::VECCALC> a, b, c, d;
  explicit Bufs(uint32_t bytes = 4096) {
    pipe.InitBuffer(a, bytes);
    pipe.InitBuffer(b, bytes);
    pipe.InitBuffer(c, bytes);
    pipe.InitBuffer(d, bytes);
  }
};

// ------------------------------------------------------------------ DataCopy / DataCopyPad
TEST(datacopy_roundtrip_counts_bytes) {
  std::vector<float> in(64), out(64, -1);
  for (int i = 0; i < 64; ++i) in[i] = i;
  auto r = run([&] {
    Bufs u;
    GlobalTensor<float> gi, go;
    gi.SetGlobalBuffer(in.data(), 64);
    go.SetGlobalBuffer(out.data(), 64);
    auto t = u.a.Get<float>();
    DataCopy(t, gi, 64);
    DataCopy(go, t, 64);
  }, {reg("in", in, false), reg("out", out)});
  expect_ok(r);
  CHECK_EQ(r.totals.gm_to_ub_bytes, 256u);
  CHECK_EQ(r.totals.ub_to_gm_bytes, 256u);
  for (int i = 0; i < 64; ++i) CHECK(out[i] == i);
}

TEST(datacopy_length_not_multiple_of_32_fails) {
  std::vector<float> in(64);
  auto r = run([&] {
    Bufs u;
    GlobalTensor<float> gi;
    gi.SetGlobalBuffer(in.data(), 64);
    DataCopy(u.a.Get<float>(), gi, 5);  // 20 bytes: the hardware rounds down
  }, {reg("in", in, false)});
  expect_error(r, "not a multiple of 32");
}

TEST(datacopy_misaligned_ub_fails) {
  std::vector<float> in(64);
  auto r = run([&] {
    Bufs u;
    GlobalTensor<float> gi;
    gi.SetGlobalBuffer(in.data(), 64);
    DataCopy(u.a.Get<float>()[3], gi, 8);  // UB address 12 bytes into the buffer
  }, {reg("in", in, false)});
  expect_error(r, "not 32-byte aligned");
}

TEST(datacopy_strided_params) {
  // 3 blocks of 1 x 32 bytes, GM gap 1 block, UB gap 2 blocks (DataCopyParams units are 32 bytes).
  std::vector<int32_t> in(48), out(48, -1);
  for (int i = 0; i < 48; ++i) in[i] = i;
  auto r = run([&] {
    Bufs u;
    GlobalTensor<int32_t> gi, go;
    gi.SetGlobalBuffer(in.data(), 48);
    go.SetGlobalBuffer(out.data(), 48);
    auto t = u.a.Get<int32_t>();
    DataCopy(t, gi, DataCopyParams(3, 1, 1, 2));
    CHECK_EQ(t.GetValue(0), 0);
    CHECK_EQ(t.GetValue(24), 16);  // block 1 lands 3 blocks in, holds GM elements 16..23
    CHECK_EQ(t.GetValue(48), 32);
    DataCopy(go, t, DataCopyParams(3, 1, 2, 0));  // gather them back densely
  }, {reg("in", in, false), reg("out", out)});
  expect_ok(r);
  for (int i = 0; i < 8; ++i) {
    CHECK_EQ(out[i], i);
    CHECK_EQ(out[8 + i], 16 + i);
    CHECK_EQ(out[16 + i], 32 + i);
  }
}

TEST(datacopypad_dummy_is_first_element_without_padding) {
  // Documented: blockLen not 32-byte aligned and no left/right padding -> the filler repeats the
  // block's first element.
  std::vector<uint16_t> in(32);
  for (int i = 0; i < 32; ++i) in[i] = (uint16_t)(100 + i);
  auto r = run([&] {
    Bufs u;
    GlobalTensor<int16_t> gi;
    gi.SetGlobalBuffer(reinterpret_cast<int16_t*>(in.data()), 32);
    auto t = u.a.Get<int16_t>();
    DataCopyPad(t, gi, DataCopyExtParams(2, 10, 4, 0, 0), DataCopyPadExtParams<int16_t>(false, 0, 0, 0));
    // block 0: elements 0..4 then 11 fillers; block 1 starts at GM byte 14 (element 7), UB element 16
    CHECK_EQ(t.GetValue(4), 104);
    CHECK_EQ(t.GetValue(5), 100);
    CHECK_EQ(t.GetValue(15), 100);
    CHECK_EQ(t.GetValue(16), 107);
    CHECK_EQ(t.GetValue(21), 107);
  }, {reg("in", in, false)});
  expect_ok(r);
}

TEST(datacopypad_pad_value_and_undefined_padding) {
  std::vector<float> in(16);
  for (int i = 0; i < 16; ++i) in[i] = 1.5f * i;
  auto r = run([&] {
    Bufs u;
    GlobalTensor<float> gi;
    gi.SetGlobalBuffer(in.data(), 16);
    auto t = u.a.Get<float>();
    DataCopyPad(t, gi, DataCopyExtParams(1, 20, 0, 0, 0), DataCopyPadExtParams<float>(true, 0, 3, -7.0f));
    CHECK(t.GetValue(4) == 6.0f);
    CHECK(t.GetValue(5) == -7.0f && t.GetValue(7) == -7.0f);
  }, {reg("in", in, false)});
  expect_ok(r);
  auto bad = run([&] {
    Bufs u;
    GlobalTensor<float> gi;
    gi.SetGlobalBuffer(in.data(), 16);
    auto t = u.a.Get<float>();
    DataCopyPad(t, gi, DataCopyExtParams(1, 20, 0, 0, 0), DataCopyPadExtParams<float>(false, 0, 3, 0.0f));
    Add(u.b.Get<float>(), t, t, 8);  // the 3 padded floats are random on the hardware
  }, {reg("in", in, false)});
  expect_error(bad, "never written");
}

TEST(datacopypad_out_writes_exact_bytes) {
  // UB -> GM with blockLen 20 bytes, UB gap 1 block, GM gap 4 bytes: exactly 20 bytes per block land.
  std::vector<int32_t> out(24, -1);
  auto r = run([&] {
    Bufs u;
    GlobalTensor<int32_t> go;
    go.SetGlobalBuffer(out.data(), 24);
    auto t = u.a.Get<int32_t>();
    for (int i = 0; i < 32; ++i) t.SetValue(i, i);
    DataCopyPad(go, t, DataCopyExtParams(2, 20, 1, 4, 0));
  }, {reg("out", out)});
  expect_ok(r);
  CHECK_EQ(out[4], 4);
  CHECK_EQ(out[5], -1);   // the GM gap is untouched
  CHECK_EQ(out[6], 16);   // block 1 starts 2 UB blocks in (32-byte span + 1 gap block)
  CHECK_EQ(out[10], 20);
  CHECK_EQ(out[11], -1);  // nothing past blockLen
  CHECK_EQ(r.totals.ub_to_gm_bytes, 40u);
}

TEST(gm_read_past_tensor_fails) {
  std::vector<float> in(16);
  auto r = run([&] {
    Bufs u;
    GlobalTensor<float> gi;
    gi.SetGlobalBuffer(in.data(), 16);
    DataCopy(u.a.Get<float>(), gi[8], 16);
  }, {reg("in", in, false)});
  expect_error(r, "past the GlobalTensor");
}

TEST(gm_region_overrun_and_readonly_fail) {
  std::vector<float> in(16);
  auto r = run([&] {
    Bufs u;
    GlobalTensor<float> gi;
    gi.SetGlobalBuffer(in.data(), 64);  // claims more than the argument holds
    DataCopy(u.a.Get<float>(), gi, 32);
  }, {reg("in", in, false)});
  expect_error(r, "runs past its end");
  auto w = run([&] {
    Bufs u;
    GlobalTensor<float> gi;
    gi.SetGlobalBuffer(in.data(), 16);
    Duplicate(u.a.Get<float>(), 1.0f, 8);
    DataCopy(gi, u.a.Get<float>(), 8);
  }, {reg("in", in, false)});
  expect_error(w, "read-only input in");
}

// ------------------------------------------------------------------ element-wise
TEST(add_count_f32_and_f16_rounding) {
  auto r = run([&] {
    Bufs u;
    auto a = u.a.Get<half>(), b = u.b.Get<half>(), c = u.c.Get<half>();
    Duplicate(a, half(2048.0f), 16);
    Duplicate(b, half(1.0f), 16);
    Add(c, a, b, 16);
    CHECK(h(c.GetValue(0)) == 2048.0f);  // 2049 is a tie in f16: rounds to even, f16 arithmetic
    Add(c, c, b, 16);
    CHECK(h(c.GetValue(3)) == 2048.0f);  // f32 accumulation then rounding would give 2050
    auto x = u.d.Get<float>();
    Duplicate(x, 16777216.0f, 8);
    auto y = u.a.Get<float>();
    Duplicate(y, 1.0f, 8);
    Add(x, x, y, 8);  // f32: 2^24 + 1 rounds to 2^24
    CHECK(x.GetValue(7) == 16777216.0f);
  });
  expect_ok(r);
  CHECK_EQ(r.totals.vector_instrs, 7u);
}

TEST(binary_mask_and_strides) {
  // Add with mask 5 (first 5 lanes), 2 repeats, src1 block stride 2, dst repeat stride 8 blocks.
  auto r = run([&] {
    Bufs u;
    auto a = u.a.Get<float>(), b = u.b.Get<float>(), c = u.c.Get<float>();
    for (int i = 0; i < 256; ++i) {
      a.SetValue(i, (float)i);
      b.SetValue(i, 1000.0f * i);
    }
    Duplicate(c, -1.0f, 256);
    Add(c, a, b, 5, 2, BinaryRepeatParams(1, 1, 2, 8, 8, 16));
    CHECK(c.GetValue(0) == 0.0f);
    CHECK(c.GetValue(4) == 4.0f + 4000.0f);
    CHECK(c.GetValue(5) == -1.0f);                // masked-off lanes keep their value
    CHECK(c.GetValue(64) == 64.0f + 128000.0f);   // repeat 1: src1 16 blocks in = element 128
    // with block stride 2 the lanes of block 0 are contiguous; lane 8 would be block 1 -> element 16
    uint64_t bits[2] = {1ull << 9, 0};
    Add(c, a, b, bits, 1, BinaryRepeatParams(1, 1, 2, 8, 8, 16));
    CHECK(c.GetValue(9) == 9.0f + 17000.0f);
  });
  expect_ok(r);
}

TEST(repeat_over_255_fails) {
  auto r = run([&] {
    Bufs u(16384);
    auto a = u.a.Get<float>();
    Duplicate(a, 1.0f, 256);
    Add(a, a, a, 64, 300, BinaryRepeatParams());
  });
  expect_error(r, "repeatTime 300 outside [0, 255]");
}

TEST(mask_out_of_range_fails) {
  auto f32 = run([&] {
    Bufs u;
    auto a = u.a.Get<float>();
    Duplicate(a, 1.0f, 64);
    Add(a, a, a, 65, 1, BinaryRepeatParams());
  });
  expect_error(f32, "mask 65 outside [1, 64]");
  auto f16 = run([&] {
    Bufs u;
    auto a = u.a.Get<half>();
    Duplicate(a, half(1.0f), 128);
    Max(a, a, a, (uint64_t)0, 1, BinaryRepeatParams());
  });
  expect_error(f16, "mask 0 outside [1, 128]");
  auto hi = run([&] {
    Bufs u;
    auto a = u.a.Get<float>();
    Duplicate(a, 1.0f, 64);
    uint64_t m[2] = {1, 1};
    Mul(a, a, a, m, 1, BinaryRepeatParams());
  });
  expect_error(hi, "mask[1] must be 0");
}

TEST(partial_overlap_fails) {
  auto r = run([&] {
    Bufs u;
    auto a = u.a.Get<float>();
    Duplicate(a, 1.0f, 128);
    Add(a[8], a, a, 64);
  });
  expect_error(r, "partially overlaps");
}

TEST(read_of_unwritten_ub_fails) {
  auto r = run([&] {
    Bufs u;
    Max(u.c.Get<float>(), u.a.Get<float>(), u.b.Get<float>(), 8);
  });
  expect_error(r, "never written");
}

TEST(scalar_ops_and_duplicate_mask_form) {
  auto r = run([&] {
    Bufs u;
    auto a = u.a.Get<float>(), b = u.b.Get<float>();
    Duplicate(a, 3.0f, 70);
    Muls(b, a, -2.0f, 70);
    Adds(b, b, 1.0f, 70);
    CHECK(b.GetValue(69) == -5.0f);
    Maxs(b, b, 0.0f, 70);
    CHECK(b.GetValue(0) == 0.0f);
    Duplicate(a, 9.0f, 3, 2, 1, 8);  // mask 3, 2 repeats
    CHECK(a.GetValue(2) == 9.0f && a.GetValue(3) == 3.0f && a.GetValue(66) == 9.0f);
  });
  expect_ok(r);
}

TEST(create_vec_index) {
  auto r = run([&] {
    Bufs u;
    auto a = u.a.Get<int32_t>();
    CreateVecIndex(a, 40, 70);
    CHECK_EQ(a.GetValue(0), 40);
    CHECK_EQ(a.GetValue(69), 109);
    auto f = u.b.Get<float>();
    CreateVecIndex(f, 2.5f, 3);  // writes at least one 32-byte block
    CHECK(f.GetValue(7) == 9.5f);
  });
  expect_ok(r);
}

TEST(cast_rounding_modes) {
  auto r = run([&] {
    Bufs u;
    auto f = u.a.Get<float>();
    auto hh = u.b.Get<half>();
    const float tie = 1.0f + 1.0f / 2048;  // halfway between two f16 neighbours of 1
    f.SetValue(0, tie);
    f.SetValue(1, -tie);
    f.SetValue(2, 1.0f + 3.0f / 4096);  // nearer the upper neighbour
    f.SetValue(3, 70000.0f);            // overflows f16
    for (int i = 4; i < 8; ++i) f.SetValue(i, 0.0f);
    const uint16_t one = 0x3c00, up = 0x3c01;
    Cast(hh, f, RoundMode::CAST_RINT, 8);
    CHECK_EQ(hh.GetValue(0).bits, one);
    CHECK_EQ(hh.GetValue(1).bits, (uint16_t)(one | 0x8000));
    CHECK_EQ(hh.GetValue(2).bits, up);
    CHECK_EQ(hh.GetValue(3).bits, (uint16_t)0x7c00);
    Cast(hh, f, RoundMode::CAST_ROUND, 8);
    CHECK_EQ(hh.GetValue(0).bits, up);
    CHECK_EQ(hh.GetValue(1).bits, (uint16_t)(up | 0x8000));
    Cast(hh, f, RoundMode::CAST_FLOOR, 8);
    CHECK_EQ(hh.GetValue(0).bits, one);
    CHECK_EQ(hh.GetValue(1).bits, (uint16_t)(up | 0x8000));
    Cast(hh, f, RoundMode::CAST_CEIL, 8);
    CHECK_EQ(hh.GetValue(0).bits, up);
    Cast(hh, f, RoundMode::CAST_TRUNC, 8);
    CHECK_EQ(hh.GetValue(2).bits, one);
    CHECK_EQ(hh.GetValue(1).bits, (uint16_t)(one | 0x8000));
    Cast(hh, f, RoundMode::CAST_ODD, 8);
    CHECK_EQ(hh.GetValue(0).bits, up);  // round to odd: the neighbour with mantissa LSB 1
    auto b = u.c.Get<bfloat16_t>();
    Cast(b, f, RoundMode::CAST_RINT, 8);
    auto g = u.d.Get<float>();
    Cast(g, b, RoundMode::CAST_NONE, 8);
    CHECK(g.GetValue(3) == 70144.0f);  // 70000 to bf16 (8-bit mantissa) and back exactly
  });
  expect_ok(r);
  auto bad = run([&] {
    Bufs u;
    Duplicate(u.a.Get<half>(), half(1.0f), 16);
    Cast(u.b.Get<float>(), u.a.Get<half>(), RoundMode::CAST_RINT, 16);
  });
  expect_error(bad, "CAST_NONE only");
}

TEST(shift_and_or_bitwise) {
  auto r = run([&] {
    Bufs u;
    auto a = u.a.Get<int16_t>(), b = u.b.Get<int16_t>(), c = u.c.Get<int16_t>();
    a.SetValue(0, (int16_t)0xaaaa);  // the documented example: arithmetic shift copies the sign bit
    for (int i = 1; i < 16; ++i) a.SetValue(i, (int16_t)(i * 1000));
    ShiftRight(b, a, (int16_t)3, 16);
    CHECK_EQ((uint16_t)b.GetValue(0), (uint16_t)0xf555);
    auto ua = a.ReinterpretCast<uint16_t>(), ub = u.d.Get<uint16_t>();
    ShiftRight(ub, ua, (uint16_t)1, 16);
    CHECK_EQ(ub.GetValue(0), (uint16_t)0x5555);  // logical for unsigned
    Duplicate(c, (int16_t)0x0ff0, 16);
    And(b, a, c, 16);
    CHECK_EQ((uint16_t)b.GetValue(0), (uint16_t)0x0aa0);
    Or(b, a, c, 16);
    CHECK_EQ((uint16_t)b.GetValue(0), (uint16_t)0xaffa);
    auto w = u.d.Get<int32_t>();
    w.SetValue(0, -8);
    for (int i = 1; i < 8; ++i) w.SetValue(i, i);
    ShiftRight(w, w, 31, 8);
    CHECK_EQ(w.GetValue(0), -1);
    CHECK_EQ(w.GetValue(1), 0);
  });
  expect_ok(r);
  expect_error(run([&] {
    Bufs u;
    Duplicate(u.a.Get<int16_t>(), (int16_t)1, 16);
    ShiftRight(u.b.Get<int16_t>(), u.a.Get<int16_t>(), (int16_t)17, 16);
  }), "shift 17 outside [0, 16]");
}

// ------------------------------------------------------------------ reductions
TEST(whole_reduce_sum_is_a_binary_tree) {
  auto r = run([&] {
    Bufs u;
    auto a = u.a.Get<float>(), d = u.b.Get<float>();
    // Lanes: 1e8, 1, -1e8, 1, then zeros. A sequential sum gives 1 (1e8 + 1 loses the 1); the tree
    // pairs (1e8 + 1) and (-1e8 + 1), each rounding to +-1e8, and returns 0.
    for (int i = 0; i < 64; ++i) a.SetValue(i, 0.0f);
    a.SetValue(0, 1e8f);
    a.SetValue(1, 1.0f);
    a.SetValue(2, -1e8f);
    a.SetValue(3, 1.0f);
    for (int i = 64; i < 128; ++i) a.SetValue(i, 1.0f);
    WholeReduceSum(d, a, 64, 2, 1, 1, 8);
    CHECK(d.GetValue(0) == 0.0f);
    CHECK(d.GetValue(1) == 64.0f);
    WholeReduceSum(d[5], a[64], 10, 1, 1, 1, 8);  // dst needs element alignment only; mask 10
    CHECK(d.GetValue(5) == 10.0f);
    // f16 sums saturate at 65504 (documented: 60000 + 60000 -> 65504)
    auto hh = u.c.Get<half>(), hd = u.d.Get<half>();
    Duplicate(hh, half(0.0f), 128);
    hh.SetValue(0, half(60000.0f));
    hh.SetValue(1, half(60000.0f));
    WholeReduceSum(hd, hh, 128, 1, 1, 1, 8);
    CHECK(h(hd.GetValue(0)) == 65504.0f);
  });
  expect_ok(r);
}

// ------------------------------------------------------------------ sorting
TEST(sort_is_stable_descending) {
  auto r = run([&] {
    Bufs u;
    auto s = u.a.Get<float>();
    auto idx = u.b.Get<uint32_t>();
    auto dst = u.c.Get<float>();
    auto tmp = u.d.Get<float>();
    for (int i = 0; i < 64; ++i) {
      s.SetValue(i, (float)(i % 5));  // many ties
      idx.SetValue(i, (uint32_t)i);
    }
    Sort<float, true>(dst, s, idx, tmp, 2);
    auto pairs = dst.ReinterpretCast<uint32_t>();
    float prev = 1e9f;
    uint32_t prev_i = 0;
    for (int k = 0; k < 64; ++k) {
      const float sc = dst.GetValue(2 * k);
      const uint32_t id = pairs.GetValue(2 * k + 1);
      CHECK(sc <= prev);
      if (sc == prev) CHECK(id > prev_i);  // equal scores keep input order
      prev = sc;
      prev_i = id;
    }
    CHECK(dst.GetValue(0) == 4.0f && pairs.GetValue(1) == 4u);
  });
  expect_ok(r);
}

TEST(sort_length_must_be_padded_to_32) {
  auto r = run([&] {
    Bufs u;
    auto s = u.a.Get<float>(40);  // 40 scores: Sort32 groups need 64
    auto idx = u.b.Get<uint32_t>();
    auto tmp = u.d.Get<float>();
    Duplicate(s, 1.0f, 40);
    CreateVecIndex(idx.ReinterpretCast<int32_t>(), 0, 64);
    Sort<float, true>(u.c.Get<float>(), s, idx, tmp, 2);
  });
  expect_error(r, "multiple of 32");
}

TEST(mrgsort_merges_with_list_priority) {
  auto r = run([&] {
    Bufs u;
    auto l1 = u.a.Get<float>(), l2 = u.b.Get<float>(), dst = u.c.Get<float>();
    auto p1 = l1.ReinterpretCast<uint32_t>(), p2 = l2.ReinterpretCast<uint32_t>();
    const float s1[3] = {5, 3, 3}, s2[3] = {4, 3, 1};
    for (int k = 0; k < 3; ++k) {
      l1.SetValue(2 * k, s1[k]);
      p1.SetValue(2 * k + 1, 10 + k);
      l2.SetValue(2 * k, s2[k]);
      p2.SetValue(2 * k + 1, 20 + k);
    }
    const uint16_t lens[4] = {3, 3, 0, 0};
    MrgSort(dst, MrgSortSrcList<float>(l1, l2, l1, l1), MrgSort4Info(lens, false, 0b11, 1));
    auto pd = dst.ReinterpretCast<uint32_t>();
    const uint32_t want[6] = {10, 20, 11, 12, 21, 22};  // ties on 3: list 1 first
    for (int k = 0; k < 6; ++k) CHECK_EQ(pd.GetValue(2 * k + 1), want[k]);
  });
  expect_ok(r);
  auto unsorted = run([&] {
    Bufs u;
    auto l1 = u.a.Get<float>();
    for (int k = 0; k < 8; ++k) l1.SetValue(k, (float)k);
    const uint16_t lens[4] = {4, 0, 0, 0};
    MrgSort(u.c.Get<float>(), MrgSortSrcList<float>(l1, l1, l1, l1), MrgSort4Info(lens, false, 0b11, 1));
  });
  expect_error(unsorted, "not sorted descending");
}

TEST(gather_mask_patterns) {
  auto r = run([&] {
    Bufs u;
    auto s = u.a.Get<uint32_t>(), d = u.b.Get<uint32_t>();
    for (int i = 0; i < 128; ++i) s.SetValue(i, (uint32_t)i);
    uint64_t cnt = 0;
    GatherMask(d, s, (uint8_t)2, false, 0u, GatherMaskParams(1, 2, 8, 0), cnt);
    CHECK_EQ(cnt, 64u);
    CHECK_EQ(d.GetValue(0), 1u);
    CHECK_EQ(d.GetValue(63), 127u);
    GatherMask(d, s, (uint8_t)3, false, 0u, GatherMaskParams(1, 1, 8, 0), cnt);
    CHECK_EQ(cnt, 16u);
    CHECK_EQ(d.GetValue(1), 4u);
  });
  expect_ok(r);
}

// ------------------------------------------------------------------ TPipe / TQue / events
TEST(queue_protocol) {
  auto ok = run([&] {
    TPipe pipe;
    TQue<TPosition::VECIN, 2> q;
    pipe.InitBuffer(q, 2, 64);
    auto a = q.AllocTensor<float>();
    auto b = q.AllocTensor<float>();
    Duplicate(a, 1.0f, 16);
    Duplicate(b, 2.0f, 16);
    q.EnQue(a);
    q.EnQue(b);
    auto x = q.DeQue<float>();
    CHECK(x.GetValue(0) == 1.0f);  // FIFO
    q.FreeTensor(x);
    auto y = q.DeQue<float>();
    q.FreeTensor(y);
  });
  expect_ok(ok);
  expect_error(run([&] {
    TPipe pipe;
    TQue<TPosition::VECIN, 1> q;
    pipe.InitBuffer(q, 1, 64);
    q.DeQue<float>();
  }), "queue is empty");
  expect_error(run([&] {
    TPipe pipe;
    TQue<TPosition::VECIN, 1> q;
    pipe.InitBuffer(q, 1, 64);
    q.AllocTensor<float>();
    q.AllocTensor<float>();
  }), "buffers of the queue are in use");
  expect_error(run([&] {
    TPipe pipe;
    TQue<TPosition::VECIN, 1> q;
    pipe.InitBuffer(q, 1, 64);
    auto a = q.AllocTensor<float>();
    Duplicate(a, 1.0f, 16);
    q.EnQue(a);
    Duplicate(a, 2.0f, 16);  // touching it before DeQue races the consumer pipe
  }), "between EnQue and DeQue");
  expect_error(run([&] {
    TPipe pipe;
    TQue<TPosition::VECIN, 1> q;
    pipe.InitBuffer(q, 1, 64);
    auto a = q.AllocTensor<float>();
    q.FreeTensor(a);
    Duplicate(a, 1.0f, 16);
  }), "after FreeTensor");
  expect_error(run([&] {
    TPipe pipe;
    TQue<TPosition::VECOUT, 1> q;
    pipe.InitBuffer(q, 1, 64);
    auto a = q.AllocTensor<float>();
    Duplicate(a, 1.0f, 16);
    q.EnQue(a);  // CopyOut never ran
  }), "never dequeued");
  expect_error(run([&] {
    TPipe pipe;
    TQue<TPosition::VECIN, 1> q;
    pipe.InitBuffer(q, 1, 64);
    auto a = q.AllocTensor<float>();
    q.FreeTensor(a);
    q.FreeTensor(a);
  }), "freed twice");
  // A re-allocated block does not count as written: stale data from its last use is an error.
  expect_error(run([&] {
    TPipe pipe;
    TQue<TPosition::VECIN, 1> q;
    TBuf<TPosition::VECCALC> t;
    pipe.InitBuffer(q, 1, 64);
    pipe.InitBuffer(t, 64);
    auto a = q.AllocTensor<float>();
    Duplicate(a, 1.0f, 16);
    q.FreeTensor(a);
    auto b = q.AllocTensor<float>();
    Add(t.Get<float>(), b, b, 16);
    q.FreeTensor(b);
  }), "never written");
}

TEST(ub_overflow_and_buffer_limits) {
  expect_error(run([&] {
    TPipe pipe;
    TQue<TPosition::VECIN, 2> q;
    pipe.InitBuffer(q, 2, 100 * 1024);  // 200 KB > 192 KB
  }), "UB overflow");
  expect_error(run([&] {
    TPipe pipe;
    TQue<TPosition::VECIN, 1> q[9];
    for (auto& x : q) pipe.InitBuffer(x, 1, 32);
  }), "queue buffers on one TPosition");
  expect_error(run([&] {
    TPipe pipe;
    TBuf<TPosition::VECCALC> b[65];
    for (auto& x : b) pipe.InitBuffer(x, 32);
  }), "more than 64 buffers");
  // The usable budget is exactly 192 KB minus the reserve.
  expect_ok(run([&] {
    TPipe pipe;
    TBuf<TPosition::VECCALC> b;
    pipe.InitBuffer(b, tw::kUbUsable);
  }));
  expect_error(run([&] {
    TPipe pipe;
    TBuf<TPosition::VECCALC> b;
    pipe.InitBuffer(b, tw::kUbUsable + 32);
  }), "UB overflow");
}

TEST(events_must_pair) {
  expect_error(run([&] { WaitFlag<HardEvent::MTE2_V>(EVENT_ID0); }), "never set");
  expect_error(run([&] { SetFlag<HardEvent::V_MTE3>(EVENT_ID2); }), "never waited");
  expect_ok(run([&] {
    SetFlag<HardEvent::V_MTE3>(EVENT_ID2);
    WaitFlag<HardEvent::V_MTE3>(EVENT_ID2);
  }));
}

TEST(cores_have_their_own_ub_and_ids) {
  std::vector<int32_t> out(8 * 8, -1);
  auto r = run([&] {
    Bufs u;
    GlobalTensor<int32_t> go;
    go.SetGlobalBuffer(out.data(), out.size());
    auto t = u.a.Get<int32_t>();
    Duplicate(t, (int32_t)(GetBlockIdx() * 10 + GetBlockNum()), 8);
    DataCopy(go[GetBlockIdx() * 8], t, 8);
  }, {reg("out", out)}, 8);
  expect_ok(r);
  for (int c = 0; c < 8; ++c) CHECK_EQ(out[c * 8 + 7], c * 10 + 8);
  // A core never sees another core's UB: the buffer starts unwritten on every core.
  expect_error(run([&] {
    Bufs u;
    auto t = u.a.Get<int32_t>();
    if (GetBlockIdx() == 0) Duplicate(t, 1, 8);
    else Add(u.b.Get<int32_t>(), t, t, 8);
  }, {}, 2), "core 1");
}

// ------------------------------------------------------------------ deliberately broken kernels
// The seed's output store: k int32 per (b, n) row, moved as whole 32-byte blocks. With k % 8 != 0 the
// last block spills into the next row, which another core owns: the twin reports the race.
TEST(broken_kernel_seed_style_output_races) {
  const int k = 5, rows = 4;
  std::vector<int32_t> out(rows * k + 8, -1);
  auto r = run([&] {
    TPipe pipe;
    TQue<TPosition::VECOUT, 1> q;
    pipe.InitBuffer(q, 1, 64);
    GlobalTensor<int32_t> go;
    go.SetGlobalBuffer(out.data(), out.size());
    auto t = q.AllocTensor<int32_t>();
    CreateVecIndex(t, (int32_t)(GetBlockIdx() * 100), 8);
    q.EnQue(t);
    t = q.DeQue<int32_t>();
    DataCopy(go[GetBlockIdx() * k], t, 8);  // k8 = 8 elements, 3 past the row
    q.FreeTensor(t);
  }, {reg("selected", out)}, rows);
  expect_error(r, "both write selected bytes");
}

// A tile sized for headDim 512 f32 with 64 rows does not fit: InitBuffer must refuse it.
TEST(broken_kernel_ub_overflow) {
  auto r = run([&] {
    TPipe pipe;
    TQue<TPosition::VECIN, 2> in;
    pipe.InitBuffer(in, 2, 64 * 512 * sizeof(float));
  });
  expect_error(r, "TPipe::InitBuffer: UB overflow");
}

// Rows of headDim 24 f16 are 48 bytes: a kernel that moves one row per DataCopy asks for a length
// the DMA cannot do (the hardware silently drops the last 16 bytes). DataCopyPad is the fix.
TEST(broken_kernel_misaligned_copy) {
  std::vector<uint16_t> meta(4 * 24, 0x3c00);
  auto r = run([&] {
    Bufs u;
    GlobalTensor<half> g;
    g.SetGlobalBuffer(reinterpret_cast<half*>(meta.data()), meta.size());
    auto t = u.a.Get<half>();
    for (int row = 0; row < 4; ++row) DataCopy(t[row * 32], g[row * 24], 24);
  }, {reg("maxMeta", meta, false)});
  expect_error(r, "DataCopy(GM->UB): length 48 bytes is not a multiple of 32");
  auto fixed = run([&] {
    Bufs u;
    GlobalTensor<half> g;
    g.SetGlobalBuffer(reinterpret_cast<half*>(meta.data()), meta.size());
    auto t = u.a.Get<half>();
    DataCopyPad(t, g, DataCopyExtParams(4, 48, 0, 0, 0), DataCopyPadExtParams<half>(true, 0, 8, half(0.0f)));
    CHECK(h(t.GetValue(32 + 23)) == 1.0f && h(t.GetValue(32 + 24)) == 0.0f);
  }, {reg("maxMeta", meta, false)});
  expect_ok(fixed);
}

// ------------------------------------------------------------------ tiling
TEST(tiling_fits_every_supported_shape) {
  int plans = 0;
  const sa::DType dts[3] = {sa::DType::f32, sa::DType::f16, sa::DType::bf16};
  for (sa::DType qd : dts)
    for (sa::DType md : dts)
      for (int D : {1, 5, 64, 96, 128, 200, 256, 512, 1024, 2040})
        for (int bs : {1, 8, 16, 32, 64, 128, 256})
          for (int G : {1, 4, 16, 128})
            for (int k : {1, 7, 8, 64, 1000, 4064}) {
              sa::QuestSelectParams p{};
              p.query_dtype = qd;
              p.meta_dtype = md;
              p.num_seqs = 2;
              p.num_kv_heads = 2;
              p.num_qo_heads = 2 * G;
              p.head_dim = D;
              p.block_size = bs;
              p.meta_rows = bs;
              p.max_meta_pages_per_seq = 7;
              p.num_meta_pages = 20;
              p.k = k;
              p.group_reduce = G % 2 ? sa::GroupReduce::per_head : sa::GroupReduce::mean;
              sa::ascendc::QuestSelectTiling t;
              sa::Status st = sa::ascendc::tile_quest_select(p, 48, &t);
              if (!st.ok()) throw Failure{"select tiling failed: " + st.message};
              if (D <= 512 && t.topCap < (uint32_t)std::min(k, 2048))
                throw Failure{"topCap " + std::to_string(t.topCap) + " for D " + std::to_string(D) + " bs " + std::to_string(bs) +
                              " k " + std::to_string(k)};
              CHECK(sa::ascendc::ub_bytes(t, qd, md) <= sa::ascendc::kUbBudget);
              CHECK(t.tileRows >= 1 && t.tileRows <= 255 && t.topCap % 32 == 0);
              ++plans;
            }
  for (sa::DType dt : dts)
    for (int D : {1, 5, 64, 96, 128, 256, 512, 2040})
      for (int N : {1, 2, 8, 64})
        for (int bs : {1, 8, 16, 128, 256})
          for (sa::Layout lay : {sa::Layout::NHD, sa::Layout::HND}) {
            sa::QuestMetadataParams m{};
            m.dtype = dt;
            m.layout = lay;
            m.num_seqs = 1;
            m.num_kv_heads = N;
            m.head_dim = D;
            m.block_size = bs;
            m.meta_rows = bs;
            m.num_blocks = 10;
            m.num_meta_pages = 4;
            sa::ascendc::QuestMetadataTiling t;
            sa::Status st = sa::ascendc::tile_quest_metadata(m, 48, &t);
            if (!st.ok()) throw Failure{"metadata tiling failed: " + st.message};
            CHECK(sa::ascendc::ub_bytes(t, dt) <= sa::ascendc::kUbBudget);
            CHECK(t.tileTokens >= 1 && t.chunk >= 1);
            sa::CacheWriteParams c{};
            c.dtype = dt;
            c.layout = lay;
            c.num_tokens = 3;
            c.num_kv_heads = N;
            c.head_dim = D;
            c.block_size = bs;
            c.num_blocks = 10;
            sa::ascendc::CacheWriteTiling ct;
            st = sa::ascendc::tile_cache_write(c, 48, &ct);
            if (!st.ok()) throw Failure{"cacheWrite tiling failed: " + st.message};
            CHECK(sa::ascendc::ub_bytes(ct, dt) <= sa::ascendc::kUbBudget);
            sa::QuestMetadataAppendParams a{};
            a.dtype = dt;
            a.num_tokens = 3;
            a.num_seqs = 1;
            a.num_kv_heads = N;
            a.head_dim = D;
            a.block_size = bs;
            a.meta_rows = bs;
            a.max_meta_pages_per_seq = 2;
            a.num_meta_pages = 4;
            sa::ascendc::MetadataAppendTiling at;
            st = sa::ascendc::tile_metadata_append(a, 48, &at);
            if (!st.ok()) throw Failure{"append tiling failed: " + st.message};
            CHECK(sa::ascendc::ub_bytes(at, dt) <= sa::ascendc::kUbBudget);
            plans += 3;
          }
  CHECK(plans > 15000);
}

TEST(tiling_rejects_what_cannot_fit) {
  sa::QuestSelectParams p{};
  p.query_dtype = sa::DType::f32;
  p.meta_dtype = sa::DType::f32;
  p.num_seqs = 1;
  p.num_kv_heads = 1;
  p.num_qo_heads = 1;
  p.head_dim = 4096;  // repeat stride of one row would exceed 255 blocks
  p.block_size = 16;
  p.meta_rows = 16;
  p.k = 8;
  sa::ascendc::QuestSelectTiling t;
  sa::Status st = sa::ascendc::tile_quest_select(p, 48, &t);
  CHECK(st.code == sa::Code::unsupported);
  CHECK(st.message.find("headDim 4096") != std::string::npos);
}

}  // namespace

// Kernel-level tests (real kernels on the twin) live in twin_kernel_tests.cpp.
void register_kernel_tests(std::vector<std::pair<const char*, void (*)()>>& out);

int main(int argc, char** argv) {
  std::string only = argc > 1 ? argv[1] : "";
  std::vector<std::pair<const char*, void (*)()>> all;
  for (auto& t : registry()) all.push_back({t.name, t.fn});
  register_kernel_tests(all);
  int failed = 0;
  for (auto& [name, fn] : all) {
    if (!only.empty() && only != name) continue;
    try {
      fn();
      std::printf("ok %s\n", name);
    } catch (const Failure& f) {
      std::printf("FAIL %s: %s\n", name, f.msg.c_str());
      ++failed;
    } catch (const std::exception& e) {
      std::printf("FAIL %s: exception %s\n", name, e.what());
      ++failed;
    }
    std::fflush(stdout);
  }
  return failed ? 1 : 0;
}
