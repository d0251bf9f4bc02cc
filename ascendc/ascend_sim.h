// ascend-sim extras the bindings reach: counters of the last twin launch (bytes each way, vector
// repeats, UB peak), for benchmarks. No twin or N-API types here.
#pragma once
#include <cstdint>
#include <string>

namespace select_attn::ascend_sim {

struct LaunchStats {
  std::string kernel;             // entry point name, e.g. "sa_quest_select_f16_f16"
  int block_dim = 0;              // vector cores launched
  uint64_t launches = 0;          // kernel launches since the process started
  uint64_t gm_to_ub_bytes = 0;    // DMA GM -> UB payload
  uint64_t ub_to_gm_bytes = 0;    // DMA UB -> GM payload
  uint64_t gm_scalar_bytes = 0;   // scalar GM reads and writes (tables, lengths, tiling)
  uint64_t dma_instrs = 0;
  uint64_t vector_instrs = 0;
  uint64_t vector_repeats = 0;
  uint64_t ub_peak_bytes = 0;     // largest UB carve of any core
};

// Counters of the most recent successful launch of any ascend-sim kernel.
LaunchStats last_launch_stats();

}  // namespace select_attn::ascend_sim
