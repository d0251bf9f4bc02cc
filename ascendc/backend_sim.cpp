// The ascend-sim backend: validates like the cpu backend, tiles for the 910B Unified Buffer, and runs
// the Ascend C kernels on the twin (48 emulated vector cores). Host pointers; twin errors come back as
// SA_ERR_DEVICE statuses naming the core and the broken rule, never as exceptions.
#include <algorithm>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "ascend_sim.h"
#include "select_attn/backend.h"
#include "select_attn/host_checks.h"
#include "sim_kernels.h"
#include "tiling.h"
#include "twin/twin_core.h"

namespace select_attn::ascend_sim {

namespace {

std::mutex g_stats_mu;
LaunchStats g_stats;

using ascendc::kDefaultBlockDim;

uint8_t* gm(const void* p) { return const_cast<uint8_t*>(static_cast<const uint8_t*>(p)); }

twin::GmRegion region(const char* name, const void* p, uint64_t bytes, bool writable) {
  return twin::GmRegion{name, static_cast<const uint8_t*>(p), bytes, writable};
}


// Runs fn(ctx) on block_dim twin cores with the given GM regions plus the status words and the tiling.
template <class Tiling, class Call>
Status launch(const char* family, const char* kernel, const Tiling& tiling, uint32_t block_dim,
              std::vector<twin::GmRegion> regions, Call call) {
  std::vector<int32_t> status(block_dim, 0);
  regions.push_back(region("status", status.data(), status.size() * sizeof(int32_t), true));
  regions.push_back(region("tiling", &tiling, sizeof(Tiling), false));
  struct Ctx {
    Call* call;
    uint8_t* status;
    uint8_t* tiling;
  } ctx{&call, reinterpret_cast<uint8_t*>(status.data()), gm(&tiling)};
  twin::LaunchSpec spec;
  spec.kernel = kernel;
  spec.block_dim = (int)block_dim;
  spec.regions = std::move(regions);
  spec.ctx = &ctx;
  spec.entry = [](void* c) {
    Ctx* x = static_cast<Ctx*>(c);
    (*x->call)(x->status, x->tiling);
  };
  twin::LaunchResult r = twin::launch(spec);
  if (!r.ok) return Status::device(std::string(family) + " (ascend-sim): " + r.error);
  {
    std::lock_guard<std::mutex> lock(g_stats_mu);
    g_stats.kernel = kernel;
    g_stats.block_dim = (int)block_dim;
    g_stats.launches++;
    g_stats.gm_to_ub_bytes = r.totals.gm_to_ub_bytes;
    g_stats.ub_to_gm_bytes = r.totals.ub_to_gm_bytes;
    g_stats.gm_scalar_bytes = r.totals.gm_scalar_read_bytes + r.totals.gm_scalar_write_bytes;
    g_stats.dma_instrs = r.totals.dma_instrs;
    g_stats.vector_instrs = r.totals.vector_instrs;
    g_stats.vector_repeats = r.totals.vector_repeats;
    g_stats.ub_peak_bytes = r.totals.ub_peak_bytes;
  }
  for (uint32_t i = 0; i < block_dim; ++i)
    if (status[i] != 0)
      return Status::invalid(std::string(family) + " (ascend-sim): the kernel found " + ascendc::kernel_status_text(status[i]) + " (core " +
                             std::to_string(i) + ")");
  return Status::Ok();
}

class AscendSimBackend final : public Backend {
 public:
  const char* name() const override { return "ascend-sim"; }
  std::vector<std::string> families() const override { return {"quest_metadata", "quest_select", "kv_cache"}; }
  std::string device_info() const override {
    return "Ascend C kernels on the twin of a 910B: " + std::to_string(kDefaultBlockDim) + " vector cores, " +
           std::to_string(ascendc::kUbBudget) + " B usable UB each";
  }

  // ------------------------------------------------------------------ quest_metadata
  Status supports(const QuestMetadataParams& p) const override {
    ascendc::QuestMetadataTiling t;
    return ascendc::tile_quest_metadata(p, kDefaultBlockDim, &t);
  }
  Status run(const QuestMetadataParams& p) override {
    ascendc::QuestMetadataTiling t;
    SA_RETURN_IF_ERROR(ascendc::tile_quest_metadata(p, kDefaultBlockDim, &t));
    SA_RETURN_IF_ERROR(check_table("quest_metadata", "ascend-sim", "blockTables", p.block_tables, p.num_seqs, p.max_blocks_per_seq,
                                   p.seq_lens, p.block_size, p.num_blocks));
    SA_RETURN_IF_ERROR(check_table("quest_metadata", "ascend-sim", "metaBlockTables", p.meta_block_tables, p.num_seqs,
                                   p.max_meta_pages_per_seq, p.seq_lens, (int64_t)p.block_size * p.meta_rows, p.num_meta_pages));
    if (p.maybe_start_blocks)
      for (int b = 0; b < p.num_seqs; ++b)
        if (p.maybe_start_blocks[b] < 0)
          return Status::invalid("quest_metadata (ascend-sim): startBlocks[" + std::to_string(b) + "] = " +
                                 std::to_string(p.maybe_start_blocks[b]) + " is negative");
    const uint64_t es = dtype_size(p.dtype), B = p.num_seqs;
    std::vector<twin::GmRegion> regions = {
        region("kCache", p.k_cache, t.kCacheElems * es, false),
        region("blockTables", p.block_tables, B * p.max_blocks_per_seq * 4, false),
        region("seqLens", p.seq_lens, B * 4, false),
        region("metaBlockTables", p.meta_block_tables, B * p.max_meta_pages_per_seq * 4, false),
        region("maxMeta", p.max_meta, t.metaElems * es, true),
        region("minMeta", p.min_meta, t.metaElems * es, true)};
    if (p.maybe_start_blocks) regions.push_back(region("startBlocks", p.maybe_start_blocks, B * 4, false));
    const QuestMetadataKernel fn = quest_metadata_kernel(p.dtype);
    static const char* names[3] = {"sa_quest_metadata_f32", "sa_quest_metadata_f16", "sa_quest_metadata_bf16"};
    return launch("quest_metadata", names[(int)p.dtype], t, t.blockDim, std::move(regions), [&](uint8_t* st, uint8_t* tl) {
      fn(gm(p.k_cache), gm(p.block_tables), gm(p.seq_lens), gm(p.meta_block_tables), gm(p.maybe_start_blocks),
         gm(p.max_meta), gm(p.min_meta), st, tl);
    });
  }

  // ------------------------------------------------------------------ quest_select
  Status supports(const QuestSelectParams& p) const override {
    ascendc::QuestSelectTiling t;
    return ascendc::tile_quest_select(p, kDefaultBlockDim, &t);
  }
  Status run(const QuestSelectParams& p) override {
    ascendc::QuestSelectTiling t;
    SA_RETURN_IF_ERROR(ascendc::tile_quest_select(p, kDefaultBlockDim, &t));
    SA_RETURN_IF_ERROR(check_table("quest_select", "ascend-sim", "metaBlockTables", p.meta_block_tables, p.num_seqs, p.max_meta_pages_per_seq,
                                   p.seq_lens, (int64_t)p.block_size * p.meta_rows, p.num_meta_pages));
    for (int b = 0; b < p.num_seqs; ++b) {
      const int64_t seq = p.seq_lens[b], tsu = p.tokens_since_update[b];
      if (tsu < 0 || tsu > seq)
        return Status::invalid("quest_select (ascend-sim): tokensSinceMetadataUpdate[" + std::to_string(b) + "] = " +
                               std::to_string(tsu) + " is outside [0, seqLens[b] = " + std::to_string(seq) + "]");
    }
    const uint64_t esq = dtype_size(p.query_dtype), esm = dtype_size(p.meta_dtype), B = p.num_seqs;
    std::vector<twin::GmRegion> regions = {
        region("query", p.query, t.queryElems * esq, false),
        region("maxMeta", p.max_meta, t.metaElems * esm, false),
        region("minMeta", p.min_meta, t.metaElems * esm, false),
        region("metaBlockTables", p.meta_block_tables, B * p.max_meta_pages_per_seq * 4, false),
        region("seqLens", p.seq_lens, B * 4, false),
        region("tokensSinceMetadataUpdate", p.tokens_since_update, B * 4, false),
        region("selected", p.selected, t.selectedElems * 4, true)};
    if (p.maybe_num_selected) regions.push_back(region("numSelected", p.maybe_num_selected, B * t.rows * 4, true));
    const QuestSelectKernel fn = quest_select_kernel(p.query_dtype, p.meta_dtype);
    static const char* dn[3] = {"f32", "f16", "bf16"};
    const std::string kname = std::string("sa_quest_select_") + dn[(int)p.query_dtype] + "_" + dn[(int)p.meta_dtype];
    return launch("quest_select", kname.c_str(), t, t.blockDim, std::move(regions), [&](uint8_t* st, uint8_t* tl) {
      fn(gm(p.query), gm(p.max_meta), gm(p.min_meta), gm(p.meta_block_tables), gm(p.seq_lens), gm(p.tokens_since_update),
         gm(p.selected), gm(p.maybe_num_selected), st, tl);
    });
  }

  // ------------------------------------------------------------------ kv_cache
  Status supports(const CacheWriteParams& p) const override {
    ascendc::CacheWriteTiling t;
    return ascendc::tile_cache_write(p, kDefaultBlockDim, &t);
  }
  Status run(const CacheWriteParams& p) override {
    ascendc::CacheWriteTiling t;
    SA_RETURN_IF_ERROR(ascendc::tile_cache_write(p, kDefaultBlockDim, &t));
    SA_RETURN_IF_ERROR(check_slots("ascend-sim", p));
    const uint64_t es = dtype_size(p.dtype);
    std::vector<twin::GmRegion> regions = {
        region("key", p.key, t.tokenElems * es, false), region("value", p.value, t.tokenElems * es, false),
        region("kCache", p.k_cache, t.cacheElems * es, true), region("vCache", p.v_cache, t.cacheElems * es, true),
        region("slotMapping", p.slot_mapping, (uint64_t)p.num_tokens * 4, false)};
    const CacheWriteKernel fn = cache_write_kernel(p.dtype);
    static const char* names[3] = {"sa_cache_write_f32", "sa_cache_write_f16", "sa_cache_write_bf16"};
    return launch("kv_cache", names[(int)p.dtype], t, t.blockDim, std::move(regions), [&](uint8_t* st, uint8_t* tl) {
      fn(gm(p.key), gm(p.value), gm(p.k_cache), gm(p.v_cache), gm(p.slot_mapping), st, tl);
    });
  }

  Status supports(const QuestMetadataAppendParams& p) const override {
    ascendc::MetadataAppendTiling t;
    return ascendc::tile_metadata_append(p, kDefaultBlockDim, &t);
  }
  Status run(const QuestMetadataAppendParams& p) override {
    ascendc::MetadataAppendTiling t;
    SA_RETURN_IF_ERROR(ascendc::tile_metadata_append(p, kDefaultBlockDim, &t));
    SA_RETURN_IF_ERROR(check_append("ascend-sim", p));
    const uint64_t es = dtype_size(p.dtype);
    std::vector<twin::GmRegion> regions = {
        region("key", p.key, t.tokenElems * es, false),
        region("maxMeta", p.max_meta, t.metaElems * es, true),
        region("minMeta", p.min_meta, t.metaElems * es, true),
        region("metaBlockTables", p.meta_block_tables, (uint64_t)p.num_seqs * p.max_meta_pages_per_seq * 4, false),
        region("seqIdx", p.seq_idx, (uint64_t)p.num_tokens * 4, false),
        region("positions", p.positions, (uint64_t)p.num_tokens * 4, false)};
    const MetadataAppendKernel fn = metadata_append_kernel(p.dtype);
    static const char* names[3] = {"sa_metadata_append_f32", "sa_metadata_append_f16", "sa_metadata_append_bf16"};
    return launch("kv_cache", names[(int)p.dtype], t, t.blockDim, std::move(regions), [&](uint8_t* st, uint8_t* tl) {
      fn(gm(p.key), gm(p.max_meta), gm(p.min_meta), gm(p.meta_block_tables), gm(p.seq_idx), gm(p.positions), st, tl);
    });
  }
};

}  // namespace

LaunchStats last_launch_stats() {
  std::lock_guard<std::mutex> lock(g_stats_mu);
  return g_stats;
}

Backend* make_ascend_sim_backend() {
  static AscendSimBackend b;
  return &b;
}

}  // namespace select_attn::ascend_sim
