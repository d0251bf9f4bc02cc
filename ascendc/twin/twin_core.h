// The twin's per-core runtime: Unified Buffer bytes with a written-bytes shadow, buffer slots, GM
// regions, counters, and the launcher that runs blockDim emulated vector cores. kernel_operator.h
// builds the Ascend C API on top of it. Nothing here throws past launch(): a broken rule raises
// twin::Error inside a core, and launch() turns it into a message.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace select_attn::twin {

// One 910B vector core (AIV): 192 KB Unified Buffer, of which the runtime keeps 256 B and the
// Ascend C framework reserves 8 KB for some APIs (CANN docs, "NPU architecture 2201").
constexpr uint32_t kUbBytes = 192 * 1024;
constexpr uint32_t kUbReserved = 256 + 8 * 1024;
constexpr uint32_t kUbUsable = kUbBytes - kUbReserved;  // 188160 bytes the kernels may InitBuffer
constexpr int kMaxBuffers = 64;             // all TQue/TBuf buffers of one TPipe
constexpr int kMaxQueBuffersPerPosition = 8; // queue buffers per TPosition on Atlas A2
constexpr int k910bVectorCores = 48;        // AIV count of an Ascend 910B (24 AI cores x 2 vector cores)

// A hardware rule broken inside a kernel; thrown inside a core only, caught by launch().
struct Error {
  std::string msg;
};
[[noreturn]] void fail(const char* call, const std::string& what);

struct Counters {
  uint64_t gm_to_ub_bytes = 0;        // DataCopy/DataCopyPad GM -> UB payload bytes
  uint64_t ub_to_gm_bytes = 0;        // DataCopy/DataCopyPad UB -> GM payload bytes
  uint64_t gm_scalar_read_bytes = 0;  // GlobalTensor::GetValue (scalar unit, through its cache)
  uint64_t gm_scalar_write_bytes = 0; // GlobalTensor::SetValue
  uint64_t dma_instrs = 0;            // DataCopy/DataCopyPad calls
  uint64_t vector_instrs = 0;         // vector instructions issued
  uint64_t vector_repeats = 0;        // 256-byte repeats those instructions ran
  uint64_t ub_peak_bytes = 0;         // largest TPipe allocation of any core
  void add(const Counters& o);
};

enum class BufState : uint8_t { tbuf, free, alloc, enqueued, dequeued };

// One UB buffer handed out by TPipe::InitBuffer (a TBuf, or one block of a TQue).
struct BufSlot {
  uint32_t base = 0;  // UB byte offset, 32-byte aligned
  uint32_t size = 0;  // bytes, multiple of 32
  BufState state = BufState::free;
  int que = -1;       // owning queue id, -1 for a TBuf
};

// A named GM allocation the kernel may touch (the backend registers every kernel argument).
struct GmRegion {
  std::string name;
  const uint8_t* lo = nullptr;
  uint64_t bytes = 0;
  bool writable = false;
};

struct Core {
  int idx = 0;
  int num = 1;
  uint8_t* ub = nullptr;    // [kUbBytes]
  uint8_t* init = nullptr;  // [kUbBytes], 1 where the byte was written during this launch
  Counters c;
  uint32_t pipe_used = 0;   // bytes carved by the live TPipe
  uint32_t ub_limit = kUbUsable;  // SA_TWIN_UB_LIMIT lowers it (fault injection for tests)
  int pipes = 0;            // live TPipe objects (one allowed)
  int buffers = 0;
  int que_buffers[8] = {};  // per TPosition
  int next_que_id = 0;
  int events[16][8] = {};   // SetFlag counts per (HardEvent, event id)
  std::vector<std::pair<uintptr_t, uintptr_t>> writes;  // GM byte ranges written [lo, hi)
  std::vector<std::string> deferred;                    // errors found in destructors
  const std::vector<GmRegion>* regions = nullptr;
};

// The core the calling thread is emulating (set by launch()).
Core& cur();
Core* cur_or_null();

// GM access checks: the range must lie inside one registered region (writable for writes).
// Returns the region's name for messages.
const std::string& check_gm(const char* call, const void* p, uint64_t bytes, bool write);
void log_gm_write(const void* p, uint64_t bytes);

// UB access checks on a buffer slot: state allows access, range inside the slot.
void check_ub(const char* call, const char* operand, const BufSlot* slot, uint64_t addr, uint64_t bytes);
// Every byte of [addr, addr+bytes) was written before (reads of UB never written are errors).
void check_init(const char* call, const char* operand, uint64_t addr, uint64_t bytes);
inline void mark_init(uint64_t addr, uint64_t bytes);

struct LaunchSpec {
  const char* kernel = "";       // for messages
  int block_dim = 1;
  std::vector<GmRegion> regions;
  void (*entry)(void* ctx) = nullptr;  // runs the kernel entry point once on the current core
  void* ctx = nullptr;
  int threads = 0;               // host threads running cores (0: SA_TWIN_THREADS or hardware concurrency)
};

struct LaunchResult {
  bool ok = true;
  std::string error;  // first error: "<kernel> core <i>: <call>: <what>"
  Counters totals;
};

// Runs entry() on block_dim emulated cores, each with its own UB. Never throws.
LaunchResult launch(const LaunchSpec& spec);

// Stats of the last launch on this process (for benchmarks).
struct LaunchStats {
  std::string kernel;
  int block_dim = 0;
  Counters totals;
};

inline void mark_init(uint64_t addr, uint64_t bytes) {
  uint8_t* p = cur().init + addr;
  for (uint64_t i = 0; i < bytes; ++i) p[i] = 1;
}
inline void mark_uninit(uint64_t addr, uint64_t bytes) {
  uint8_t* p = cur().init + addr;
  for (uint64_t i = 0; i < bytes; ++i) p[i] = 0;
}

}  // namespace select_attn::twin
