// Kernel-level tests on the twin, bypassing the backend's host checks: the UB each kernel carves equals
// ub_bytes() of its tiling, and the device-side guards (ids outside a pool, tables too narrow) stop the
// kernel from reading past a table or a pool and raise the status word instead.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "../sim_kernels.h"
#include "../tiling.h"
#include "test_failure.h"
#include "../twin/twin_core.h"

namespace tw = select_attn::twin;
namespace sa = select_attn;
namespace sim = select_attn::ascend_sim;
using sim::Gm;

namespace {

using Failure = TestFailure;
#define KCHECK(cond)                                                                                \
  do {                                                                                              \
    if (!(cond)) throw Failure{std::string(__FILE__) + ":" + std::to_string(__LINE__) + ": " #cond}; \
  } while (0)

template <class T>
tw::GmRegion reg(const char* name, std::vector<T>& v, bool writable) {
  return tw::GmRegion{name, reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(T), writable};
}
template <class T>
Gm gp(std::vector<T>& v) {
  return reinterpret_cast<Gm>(v.data());
}

struct Launched {
  tw::LaunchResult r;
  std::vector<int32_t> status;
};

// Runs call(status, tiling) on tiling.blockDim cores, as the backend does, without its host checks.
template <class Tiling, class Call>
Launched launch(const Tiling& t, std::vector<tw::GmRegion> regions, Call call) {
  Launched out;
  out.status.assign(t.blockDim, 0);
  regions.push_back(reg("status", out.status, true));
  regions.push_back(tw::GmRegion{"tiling", reinterpret_cast<const uint8_t*>(&t), sizeof(Tiling), false});
  struct Ctx {
    Call* call;
    Gm st, tl;
  } ctx{&call, gp(out.status), (Gm)&t};
  tw::LaunchSpec s;
  s.kernel = "kernel";
  s.block_dim = (int)t.blockDim;
  s.regions = std::move(regions);
  s.ctx = &ctx;
  s.entry = [](void* c) {
    Ctx* x = static_cast<Ctx*>(c);
    (*x->call)(x->st, x->tl);
  };
  out.r = tw::launch(s);
  return out;
}

// A small quest_select problem: B sequences of up to `maxSeq` tokens, metadata of ones.
struct SelectCase {
  sa::QuestSelectParams p{};
  std::vector<uint16_t> query, meta_max, meta_min;
  std::vector<int32_t> mbt, seq, tsu, sel, ns;
  sa::ascendc::QuestSelectTiling t;
  SelectCase(int B, int N, int G, int D, int bs, int k, int mmbpr, int pages, int seqlen) {
    p.query_dtype = p.meta_dtype = sa::DType::f16;
    p.num_seqs = B;
    p.num_kv_heads = N;
    p.num_qo_heads = N * G;
    p.head_dim = D;
    p.block_size = bs;
    p.meta_rows = bs;
    p.max_meta_pages_per_seq = mmbpr;
    p.num_meta_pages = pages;
    p.k = k;
    query.assign((size_t)B * N * G * D, 0x3c00);
    meta_max.assign((size_t)pages * bs * N * D, 0x3c00);
    meta_min.assign((size_t)pages * bs * N * D, 0x3800);
    mbt.assign((size_t)B * mmbpr, 0);
    for (size_t i = 0; i < mbt.size(); ++i) mbt[i] = (int32_t)(i % pages);
    seq.assign(B, seqlen);
    tsu.assign(B, 0);
    sel.assign((size_t)B * N * k, -77);
    ns.assign((size_t)B * N, -77);
  }
  void bind() {
    p.query = query.data();
    p.max_meta = meta_max.data();
    p.min_meta = meta_min.data();
    p.meta_block_tables = mbt.data();
    p.seq_lens = seq.data();
    p.tokens_since_update = tsu.data();
    p.selected = sel.data();
    p.maybe_num_selected = ns.data();
  }
  // cap: force a smaller running top list (multi-round selection), 0 keeps the tiling's.
  Launched run(uint32_t cap = 0) {
    bind();
    sa::Status st = sa::ascendc::tile_quest_select(p, 48, &t);
    if (!st.ok()) throw Failure{st.message};
    if (cap) {
      t.topCap = cap;
      t.sortCap = std::max(t.tileRowsPad, cap);
    }
    auto fn = sim::quest_select_kernel(p.query_dtype, p.meta_dtype);
    return launch(t,
                  {reg("query", query, false), reg("maxMeta", meta_max, false), reg("minMeta", meta_min, false),
                   reg("metaBlockTables", mbt, false), reg("seqLens", seq, false), reg("tsu", tsu, false),
                   reg("selected", sel, true), reg("numSelected", ns, true)},
                  [&](Gm st, Gm tl) {
                    fn(gp(query), gp(meta_max), gp(meta_min), gp(mbt), gp(seq), gp(tsu), gp(sel), gp(ns), st, tl);
                  });
  }
};

void select_ub_matches_tiling() {
  for (int D : {64, 128, 256, 5})
    for (int k : {3, 64, 600}) {
      SelectCase c(2, 2, 4, D, 16, k, 4, 8, 16 * 40);
      Launched l = c.run();
      if (!l.r.ok) throw Failure{l.r.error};
      KCHECK(l.r.totals.ub_peak_bytes == sa::ascendc::ub_bytes(c.t, c.p.query_dtype, c.p.meta_dtype));
    }
}

void select_guard_bad_meta_page() {
  SelectCase c(2, 1, 1, 64, 16, 4, 4, 8, 16 * 40);
  c.mbt[1] = 9999;  // page 1 of sequence 0 outside the pool of 8
  Launched l = c.run();
  if (!l.r.ok) throw Failure{l.r.error};  // no twin error: nothing was read outside the pool
  bool raised = false;
  for (int32_t s : l.status) raised |= s == sa::ascendc::kStatusBadMetaPage;
  KCHECK(raised);
}

void select_guard_table_too_narrow() {
  // 2 table columns of 16 blocks x 16 tokens cover 512 tokens; the sequence claims 5000.
  SelectCase c(2, 1, 1, 64, 16, 4, 2, 8, 5000);
  Launched l = c.run();
  if (!l.r.ok) throw Failure{l.r.error};
  bool raised = false;
  for (int32_t s : l.status) raised |= s == sa::ascendc::kStatusTableTooNarrow;
  KCHECK(raised);
  for (int32_t v : c.sel) KCHECK(v == -1);  // rows still written: all -1
  for (int32_t v : c.ns) KCHECK(v == 0);
}

void select_k_not_multiple_of_8_many_cores() {
  // 48 cores writing 5-int rows next to each other: no core writes into another's row (the twin
  // would report the race), every slot is written.
  SelectCase c(24, 4, 2, 64, 16, 5, 4, 8, 16 * 50);
  Launched l = c.run();
  if (!l.r.ok) throw Failure{l.r.error};
  KCHECK(c.t.blockDim == 48);
  for (int32_t v : c.sel) KCHECK(v >= 0 && v < 50);
  for (int32_t v : c.ns) KCHECK(v == 5);
}

// Rows needing more picks than the running list holds go through rounds and a final ascending pass:
// the result must equal the single-round one exactly, with random scores and with many ties.
void select_multi_round_matches_single_round() {
  for (int ties = 0; ties < 2; ++ties) {
    SelectCase c(2, 2, 2, 64, 8, 300, 88, 176, 8 * 700);
    uint32_t s = 12345 + ties;
    auto rnd = [&] {
      s = s * 1664525u + 1013904223u;
      return s >> 8;
    };
    const uint16_t few[3] = {0xbc00, 0x0000, 0x3c00};  // -1, 0, 1 in f16: ties everywhere
    for (auto& v : c.query) v = ties ? few[rnd() % 3] : (uint16_t)(0x3000 + rnd() % 0x0c00) ^ (rnd() % 2 ? 0x8000 : 0);
    for (auto& v : c.meta_max) v = ties ? few[rnd() % 3] : (uint16_t)(0x3000 + rnd() % 0x0c00) ^ (rnd() % 2 ? 0x8000 : 0);
    for (auto& v : c.meta_min) v = ties ? few[rnd() % 3] : (uint16_t)(0x3000 + rnd() % 0x0c00) ^ (rnd() % 2 ? 0x8000 : 0);
    c.seq = {8 * 700, 8 * 333};
    Launched one = c.run();
    if (!one.r.ok) throw Failure{one.r.error};
    for (int32_t st : one.status) KCHECK(st == 0);
    KCHECK(c.t.topCap >= 300);
    KCHECK(c.sel[0] >= 0 && c.sel[299] >= 0);
    const std::vector<int32_t> ref = c.sel;
    std::fill(c.sel.begin(), c.sel.end(), -77);
    Launched many = c.run(32);  // 300 picks in rounds of 32
    if (!many.r.ok) throw Failure{many.r.error};
    for (int32_t st : many.status) KCHECK(st == 0);
    for (size_t i = 0; i < ref.size(); ++i)
      if (ref[i] != c.sel[i]) throw Failure{"slot " + std::to_string(i) + ": single round " + std::to_string(ref[i]) + ", rounds " + std::to_string(c.sel[i])};
  }
}

void metadata_ub_and_guard() {
  const int N = 2, D = 64, bs = 16, B = 2, mkb = 8, pages = 4;
  sa::QuestMetadataParams p{};
  p.dtype = sa::DType::bf16;
  p.layout = sa::Layout::HND;
  p.num_seqs = B;
  p.num_kv_heads = N;
  p.head_dim = D;
  p.block_size = bs;
  p.meta_rows = 4;
  p.max_blocks_per_seq = mkb;
  p.max_meta_pages_per_seq = 2;
  p.num_blocks = 20;
  p.num_meta_pages = pages;
  std::vector<uint16_t> k((size_t)20 * bs * N * D, 0x3f80), mx((size_t)pages * 4 * N * D), mn(mx.size());
  std::vector<int32_t> bt = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, seq = {100, 70};
  std::vector<int32_t> mbt = {0, 1, 2, 3};
  sa::ascendc::QuestMetadataTiling t;
  if (!sa::ascendc::tile_quest_metadata(p, 48, &t).ok()) throw Failure{"tiling"};
  auto fn = sim::quest_metadata_kernel(p.dtype);
  auto go = [&] {
    return launch(t,
                  {reg("kCache", k, false), reg("blockTables", bt, false), reg("seqLens", seq, false),
                   reg("metaBlockTables", mbt, false), reg("maxMeta", mx, true), reg("minMeta", mn, true)},
                  [&](Gm st, Gm tl) { fn(gp(k), gp(bt), gp(seq), gp(mbt), nullptr, gp(mx), gp(mn), st, tl); });
  };
  Launched l = go();
  if (!l.r.ok) throw Failure{l.r.error};
  KCHECK(l.r.totals.ub_peak_bytes == sa::ascendc::ub_bytes(t, p.dtype));
  for (int32_t s : l.status) KCHECK(s == 0);
  bt[3] = 20;  // block id outside the pool of 20
  l = go();
  if (!l.r.ok) throw Failure{l.r.error};
  bool raised = false;
  for (int32_t s : l.status) raised |= s == sa::ascendc::kStatusBadBlockId;
  KCHECK(raised);
  bt[3] = 3;
  seq[1] = 16 * 9;  // 9 blocks > 8 table columns: never read past the row
  l = go();
  if (!l.r.ok) throw Failure{l.r.error};
  raised = false;
  for (int32_t s : l.status) raised |= s == sa::ascendc::kStatusTableTooNarrow;
  KCHECK(raised);
}

void kv_cache_ub_and_guards() {
  sa::CacheWriteParams c{};
  c.dtype = sa::DType::f16;
  c.layout = sa::Layout::NHD;
  c.num_tokens = 3;
  c.num_kv_heads = 2;
  c.head_dim = 24;
  c.block_size = 8;
  c.num_blocks = 4;
  std::vector<uint16_t> key(3 * 2 * 24, 0x3c00), val(key.size(), 0x4000), kc(4 * 8 * 2 * 24), vc(kc.size());
  std::vector<int32_t> slots = {3, -1, 40};  // 40 >= 32 slots
  sa::ascendc::CacheWriteTiling t;
  if (!sa::ascendc::tile_cache_write(c, 48, &t).ok()) throw Failure{"tiling"};
  auto fn = sim::cache_write_kernel(c.dtype);
  Launched l = launch(t,
                      {reg("key", key, false), reg("value", val, false), reg("kCache", kc, true), reg("vCache", vc, true),
                       reg("slotMapping", slots, false)},
                      [&](Gm st, Gm tl) { fn(gp(key), gp(val), gp(kc), gp(vc), gp(slots), st, tl); });
  if (!l.r.ok) throw Failure{l.r.error};
  KCHECK(l.r.totals.ub_peak_bytes == sa::ascendc::ub_bytes(t, c.dtype));
  bool raised = false;
  for (int32_t s : l.status) raised |= s == sa::ascendc::kStatusBadSlot;
  KCHECK(raised);
  KCHECK(kc[3 * 2 * 24] == 0x3c00 && vc[3 * 2 * 24 + 47] == 0x4000);
}

void append_ub_and_guards() {
  for (sa::DType dt : {sa::DType::f32, sa::DType::f16, sa::DType::bf16}) {
    sa::QuestMetadataAppendParams a{};
    a.dtype = dt;
    a.num_tokens = 3;
    a.num_seqs = 2;
    a.num_kv_heads = 3;
    a.head_dim = 40;
    a.block_size = 4;
    a.meta_rows = 4;
    a.max_meta_pages_per_seq = 2;
    a.num_meta_pages = 4;
    const size_t es = sa::dtype_size(dt);
    std::vector<uint8_t> key(3 * 3 * 40 * es, 0), mx(4 * 4 * 3 * 40 * es, 0), mn(mx.size(), 0);
    std::vector<int32_t> mbt = {0, 1, 2, 3}, seq = {0, 1, 7}, pos = {0, 5, 33};  // token 2: seqIdx 7 of 2 sequences
    sa::ascendc::MetadataAppendTiling t;
    if (!sa::ascendc::tile_metadata_append(a, 48, &t).ok()) throw Failure{"tiling"};
    auto fn = sim::metadata_append_kernel(dt);
    Launched l = launch(t,
                        {reg("key", key, false), reg("maxMeta", mx, true), reg("minMeta", mn, true),
                         reg("metaBlockTables", mbt, false), reg("seqIdx", seq, false), reg("positions", pos, false)},
                        [&](Gm st, Gm tl) { fn(gp(key), gp(mx), gp(mn), gp(mbt), gp(seq), gp(pos), st, tl); });
    if (!l.r.ok) throw Failure{l.r.error};
    KCHECK(l.r.totals.ub_peak_bytes == sa::ascendc::ub_bytes(t, dt));
    bool bad_seq = false;
    for (int32_t s : l.status) bad_seq |= s == sa::ascendc::kStatusBadSeqIdx;
    KCHECK(bad_seq);  // seqIdx 7 >= 2 sequences: skipped and reported
  }
}

}  // namespace

void register_kernel_tests(std::vector<std::pair<const char*, void (*)()>>& out) {
  auto wrap = [](void (*f)()) { return f; };
  out.push_back({"kernel_select_ub_matches_tiling", wrap(select_ub_matches_tiling)});
  out.push_back({"kernel_select_guard_bad_meta_page", wrap(select_guard_bad_meta_page)});
  out.push_back({"kernel_select_guard_table_too_narrow", wrap(select_guard_table_too_narrow)});
  out.push_back({"kernel_select_k5_48_cores_no_race", wrap(select_k_not_multiple_of_8_many_cores)});
  out.push_back({"kernel_select_multi_round_matches_single_round", wrap(select_multi_round_matches_single_round)});
  out.push_back({"kernel_metadata_ub_and_guards", wrap(metadata_ub_and_guard)});
  out.push_back({"kernel_cache_write_ub_and_guards", wrap(kv_cache_ub_and_guards)});
  out.push_back({"kernel_metadata_append_ub_and_guards", wrap(append_ub_and_guards)});
}
