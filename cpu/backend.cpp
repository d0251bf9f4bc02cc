// The cpu backend: validates what memory safety needs (ids inside pools, table widths) and runs the
// kernel table chosen for this CPU at load time.
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>

#include "attn_check.h"
#include "isa.h"
#include "select_attn/backend.h"
#include "select_attn/host_checks.h"
#include "thread_pool.h"

namespace select_attn::cpu {

const KernelTable& kernels() {
  static const KernelTable* chosen = [] {
    const char* force = std::getenv("SA_CPU_ISA");
    std::string f = force ? force : "";
#ifdef SA_HAVE_X86_ISAS
    __builtin_cpu_init();
    bool has512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                  __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                  __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    bool has2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    if (f == "generic") return &generic::table;
    if (f == "avx2" && has2) return &avx2::table;
    if (has512 && (f.empty() || f == "avx512")) return &avx512::table;
    if (has2) return &avx2::table;
#endif
    return &generic::table;
  }();
  return *chosen;
}

namespace {

Status check_dtype_float(DType t, const char* fam, const char* arg) {
  if (t == DType::f32 || t == DType::f16 || t == DType::bf16) return Status::Ok();
  return Status::unsupported(std::string(fam) + " (cpu): " + arg + " dtype " + dtype_name(t) +
                             " unsupported; supported: f32, f16, bf16");
}

class CpuBackend final : public Backend {
 public:
  const char* name() const override { return "cpu"; }
  std::vector<std::string> families() const override {
    return {"quest_metadata", "quest_select", "paged_attention", "kv_cache"};
  }
  std::string device_info() const override {
    std::string s = std::string("isa=") + kernels().isa + " threads=" + std::to_string(num_threads());
    return s;
  }

  Status measure_ceiling(size_t bytes, int reps, double* ms) override {
    const int T = num_threads();
    const size_t chunk = (bytes / T + 4095) / 4096 * 4096;
    char* buf = static_cast<char*>(std::aligned_alloc(4096, chunk * T));
    if (!buf) return Status::oom("cpu: cannot allocate the ceiling buffer");
    parallel_for(T, [&](int64_t t, int) { std::memset(buf + t * chunk, 1, chunk); });  // fault pages in
    volatile float sink = 0;
    auto pass = [&] {
      parallel_for(T, [&](int64_t t, int) { sink = sink + kernels().stream_read(buf + t * chunk, chunk); });
    };
    pass();
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i) pass();
    auto t1 = std::chrono::steady_clock::now();
    std::free(buf);
    *ms = std::chrono::duration<double, std::milli>(t1 - t0).count() / reps;
    return Status::Ok();
  }

  // quest_metadata
  Status supports(const QuestMetadataParams& p) const override { return check_dtype_float(p.dtype, "quest_metadata", "kCache"); }
  Status run(const QuestMetadataParams& p) override {
    SA_RETURN_IF_ERROR(supports(p));
    SA_RETURN_IF_ERROR(check_table("quest_metadata", "cpu", "blockTables", p.block_tables, p.num_seqs, p.max_blocks_per_seq,
                                   p.seq_lens, p.block_size, p.num_blocks));
    SA_RETURN_IF_ERROR(check_table("quest_metadata", "cpu", "metaBlockTables", p.meta_block_tables, p.num_seqs,
                                   p.max_meta_pages_per_seq, p.seq_lens, (int64_t)p.block_size * p.meta_rows,
                                   p.num_meta_pages));
    return kernels().quest_metadata(p);
  }

  // quest_select
  Status supports(const QuestSelectParams& p) const override {
    SA_RETURN_IF_ERROR(check_dtype_float(p.query_dtype, "quest_select", "query"));
    return check_dtype_float(p.meta_dtype, "quest_select", "maxMeta");
  }
  Status run(const QuestSelectParams& p) override {
    SA_RETURN_IF_ERROR(supports(p));
    SA_RETURN_IF_ERROR(check_table("quest_select", "cpu", "metaBlockTables", p.meta_block_tables, p.num_seqs,
                                   p.max_meta_pages_per_seq, p.seq_lens, (int64_t)p.block_size * p.meta_rows,
                                   p.num_meta_pages));
    return kernels().quest_select(p);
  }

  // paged_attention
  Status supports(const PagedAttentionParams& p) const override {
    SA_RETURN_IF_ERROR(check_dtype_float(p.q_dtype, "paged_attention", "q"));
    return check_dtype_float(p.kv_dtype, "paged_attention", "kCache");
  }
  Status run(const PagedAttentionParams& p) override {
    SA_RETURN_IF_ERROR(supports(p));
    SA_RETURN_IF_ERROR(check_table("paged_attention", "cpu", "blockTables", p.block_tables, p.num_seqs, p.max_blocks_per_seq,
                                   p.seq_lens, p.block_size, p.num_blocks));
    SA_RETURN_IF_ERROR(check_paged_attention(p));
    return kernels().paged_attention(p);
  }

  // kv_cache
  Status supports(const CacheWriteParams& p) const override { return check_dtype_float(p.dtype, "kv_cache", "key"); }
  Status run(const CacheWriteParams& p) override {
    SA_RETURN_IF_ERROR(supports(p));
    SA_RETURN_IF_ERROR(check_slots("cpu", p));
    return kernels().cache_write(p);
  }
  Status supports(const QuestMetadataAppendParams& p) const override { return check_dtype_float(p.dtype, "kv_cache", "key"); }
  Status run(const QuestMetadataAppendParams& p) override {
    SA_RETURN_IF_ERROR(supports(p));
    SA_RETURN_IF_ERROR(check_append("cpu", p));
    return kernels().quest_metadata_append(p);
  }
};

}  // namespace

Backend* make_cpu_backend() {
  static CpuBackend b;
  return &b;
}

}  // namespace select_attn::cpu
