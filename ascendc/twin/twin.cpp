// The twin's runtime: per-core state, GM region checks, and the launcher that runs blockDim
// emulated vector cores on host threads and reports the first broken rule as a message.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>

#include "twin_core.h"

namespace select_attn::twin {

namespace {
thread_local Core* t_core = nullptr;
}

void Counters::add(const Counters& o) {
  gm_to_ub_bytes += o.gm_to_ub_bytes;
  ub_to_gm_bytes += o.ub_to_gm_bytes;
  gm_scalar_read_bytes += o.gm_scalar_read_bytes;
  gm_scalar_write_bytes += o.gm_scalar_write_bytes;
  dma_instrs += o.dma_instrs;
  vector_instrs += o.vector_instrs;
  vector_repeats += o.vector_repeats;
  ub_peak_bytes = std::max(ub_peak_bytes, o.ub_peak_bytes);
}

void fail(const char* call, const std::string& what) { throw Error{std::string(call) + ": " + what}; }

Core& cur() {
  if (!t_core) throw Error{"twin: an Ascend C call ran outside a twin launch (no current core)"};
  return *t_core;
}

Core* cur_or_null() { return t_core; }

const std::string& check_gm(const char* call, const void* p, uint64_t bytes, bool write) {
  Core& c = cur();
  static const std::string none = "?";
  const uint8_t* a = static_cast<const uint8_t*>(p);
  if (!c.regions) return none;
  for (const GmRegion& r : *c.regions) {
    if (a >= r.lo && a <= r.lo + r.bytes) {
      if (a + bytes > r.lo + r.bytes)
        fail(call, "GM " + std::string(write ? "write" : "read") + " of " + std::to_string(bytes) +
                       " bytes at byte " + std::to_string(a - r.lo) + " of " + r.name + " runs past its end (" +
                       std::to_string(r.bytes) + " bytes)");
      if (write && !r.writable) fail(call, "GM write into the read-only input " + r.name);
      return r.name;
    }
  }
  fail(call, "GM address outside every kernel argument (" + std::to_string(bytes) + " bytes)");
}

void log_gm_write(const void* p, uint64_t bytes) {
  if (bytes == 0) return;
  uintptr_t lo = reinterpret_cast<uintptr_t>(p);
  auto& w = cur().writes;
  // Consecutive writes are often adjacent: merge them to keep the log short.
  if (!w.empty() && w.back().second == lo) {
    w.back().second = lo + bytes;
    return;
  }
  w.emplace_back(lo, lo + bytes);
}

static const char* state_name(BufState s) {
  switch (s) {
    case BufState::tbuf: return "TBuf";
    case BufState::free: return "free";
    case BufState::alloc: return "allocated";
    case BufState::enqueued: return "enqueued";
    case BufState::dequeued: return "dequeued";
  }
  return "?";
}

void check_ub(const char* call, const char* operand, const BufSlot* slot, uint64_t addr, uint64_t bytes) {
  if (!slot) fail(call, std::string(operand) + " is not a tensor from TQue::AllocTensor/DeQue or TBuf::Get");
  if (slot->state == BufState::free)
    fail(call, std::string(operand) + " uses a queue buffer after FreeTensor (or before AllocTensor)");
  if (slot->state == BufState::enqueued)
    fail(call, std::string(operand) + " uses a queue buffer between EnQue and DeQue");
  if (addr < slot->base || addr + bytes > (uint64_t)slot->base + slot->size)
    fail(call, std::string(operand) + " touches UB bytes [" + std::to_string(addr) + ", " + std::to_string(addr + bytes) +
                   ") outside its buffer [" + std::to_string(slot->base) + ", " +
                   std::to_string(slot->base + slot->size) + ") (" + state_name(slot->state) + ")");
}

void check_init(const char* call, const char* operand, uint64_t addr, uint64_t bytes) {
  const uint8_t* p = cur().init + addr;
  const void* z = std::memchr(p, 0, bytes);
  if (z)
    fail(call, std::string(operand) + " reads UB byte " +
                   std::to_string(addr + (static_cast<const uint8_t*>(z) - p)) + " that was never written");
}

namespace {

int thread_count(int requested, int cores) {
  int n = requested;
  if (n <= 0) {
    const char* e = std::getenv("SA_TWIN_THREADS");
    n = e ? std::atoi(e) : (int)std::thread::hardware_concurrency();
  }
  return std::max(1, std::min(n, cores));
}

}  // namespace

LaunchResult launch(const LaunchSpec& spec) {
  LaunchResult res;
  const int B = spec.block_dim;
  if (B < 1) {
    res.ok = false;
    res.error = std::string(spec.kernel) + ": blockDim " + std::to_string(B) + " < 1";
    return res;
  }
  std::vector<std::string> errors(B);
  std::vector<Counters> counters(B);
  std::vector<std::vector<std::pair<uintptr_t, uintptr_t>>> writes(B);
  std::atomic<int> next{0};
  // Fault injection for tests: a smaller UB makes any kernel's InitBuffer fail like an overflow would.
  uint32_t ub_limit = kUbUsable;
  if (const char* lim = std::getenv("SA_TWIN_UB_LIMIT")) ub_limit = std::min<uint32_t>(kUbUsable, (uint32_t)std::strtoul(lim, nullptr, 10));
  auto worker = [&] {
    std::unique_ptr<uint8_t[]> ub(new uint8_t[kUbBytes]);
    std::unique_ptr<uint8_t[]> init(new uint8_t[kUbBytes]);
    for (int i = next++; i < B; i = next++) {
      Core core;
      core.idx = i;
      core.num = B;
      core.ub = ub.get();
      core.init = init.get();
      core.regions = &spec.regions;
      core.ub_limit = ub_limit;
      // UB content is undefined at kernel start: a fixed pattern, and no byte counts as written.
      std::memset(core.ub, 0xA5, kUbBytes);
      std::memset(core.init, 0, kUbBytes);
      t_core = &core;
      try {
        spec.entry(spec.ctx);
        if (core.pipes != 0) core.deferred.push_back("TPipe still alive at kernel end");
        for (int e = 0; e < 16; ++e)
          for (int id = 0; id < 8; ++id)
            if (core.events[e][id] > 0)
              core.deferred.push_back("SetFlag for event " + std::to_string(e) + " id " + std::to_string(id) +
                                      " was never waited on");
        if (!core.deferred.empty()) errors[i] = core.deferred.front();
      } catch (const Error& e) {
        errors[i] = e.msg;
      } catch (const std::exception& e) {
        errors[i] = std::string("host exception: ") + e.what();
      } catch (...) {
        errors[i] = "unknown host exception";
      }
      t_core = nullptr;
      counters[i] = core.c;
      writes[i] = std::move(core.writes);
    }
  };
  const int T = thread_count(spec.threads, B);
  if (T == 1) {
    worker();
  } else {
    std::vector<std::thread> ts;
    for (int t = 0; t < T; ++t) ts.emplace_back(worker);
    for (auto& t : ts) t.join();
  }
  for (int i = 0; i < B; ++i) {
    res.totals.add(counters[i]);
    if (res.ok && !errors[i].empty()) {
      res.ok = false;
      res.error = std::string(spec.kernel) + " core " + std::to_string(i) + ": " + errors[i];
    }
  }
  if (!res.ok) return res;
  // Two cores writing the same GM bytes is a race on the hardware (the seed's 32-byte output
  // writes did this when k % 8 != 0): report it instead of letting one core silently win.
  struct W { uintptr_t lo, hi; int core; };
  std::vector<W> all;
  for (int i = 0; i < B; ++i)
    for (auto& w : writes[i]) all.push_back({w.first, w.second, i});
  std::sort(all.begin(), all.end(), [](const W& a, const W& b) { return a.lo < b.lo; });
  uintptr_t hi = 0;
  int hi_core = -1;
  for (const W& w : all) {
    if (hi_core >= 0 && w.lo < hi && w.core != hi_core) {
      std::string name = "?";
      uint64_t off = 0;
      for (const GmRegion& r : spec.regions)
        if (w.lo >= (uintptr_t)r.lo && w.lo < (uintptr_t)r.lo + r.bytes) {
          name = r.name;
          off = w.lo - (uintptr_t)r.lo;
        }
      res.ok = false;
      res.error = std::string(spec.kernel) + ": cores " + std::to_string(hi_core) + " and " + std::to_string(w.core) +
                  " both write " + name + " bytes from " + std::to_string(off) + " (a race on the hardware)";
      return res;
    }
    if (w.hi > hi) {
      hi = w.hi;
      hi_core = w.core;
    }
  }
  return res;
}

}  // namespace select_attn::twin
