// The backend interface: every backend (cpu, cuda, ascend, ascend-sim, metal) implements it.
#pragma once
#include <vector>

#include "select_attn/common.h"
#include "select_attn/kv_cache.h"
#include "select_attn/paged_attention.h"
#include "select_attn/quest_metadata.h"
#include "select_attn/quest_select.h"

namespace select_attn {

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;
  // Device backends take device pointers in every params struct; host backends take host pointers.
  virtual bool is_device() const { return false; }
  // Ok when usable on this machine; otherwise the reason (no GPU, driver missing...).
  virtual Status available() const { return Status::Ok(); }
  // Families this backend implements (quest_metadata, quest_select, paged_attention, kv_cache);
  // tests and verify run a family on every available backend that lists it.
  virtual std::vector<std::string> families() const { return {}; }
  // One-line description of the device (model, memory) or CPU features.
  virtual std::string device_info() const { return ""; }

  // supports(p) and run(p) must share one dispatch table, so "supported" and "dispatched" agree.
  virtual Status supports(const QuestMetadataParams&) const { return unsupported_family("quest_metadata"); }
  virtual Status run(const QuestMetadataParams&) { return unsupported_family("quest_metadata"); }
  virtual Status supports(const QuestSelectParams&) const { return unsupported_family("quest_select"); }
  virtual Status run(const QuestSelectParams&) { return unsupported_family("quest_select"); }
  virtual Status supports(const PagedAttentionParams&) const { return unsupported_family("paged_attention"); }
  virtual Status run(const PagedAttentionParams&) { return unsupported_family("paged_attention"); }
  virtual Status supports(const CacheWriteParams&) const { return unsupported_family("kv_cache"); }
  virtual Status run(const CacheWriteParams&) { return unsupported_family("kv_cache"); }
  virtual Status supports(const QuestMetadataAppendParams&) const { return unsupported_family("kv_cache"); }
  virtual Status run(const QuestMetadataAppendParams&) { return unsupported_family("kv_cache"); }

  // Device memory (device backends only). Pointers returned by alloc go into params structs.
  virtual Status alloc(size_t /*bytes*/, void** /*ptr*/) { return Status::unsupported(std::string(name()) + " has no device memory"); }
  virtual Status free(void* /*ptr*/) { return Status::Ok(); }
  virtual Status upload(void* /*dst*/, const void* /*src*/, size_t /*bytes*/) { return Status::unsupported("no device memory"); }
  virtual Status download(void* /*dst*/, const void* /*src*/, size_t /*bytes*/) { return Status::unsupported("no device memory"); }
  // Waits for queued work; reports errors the kernels recorded on the device (e.g. ids outside a pool).
  virtual Status synchronize() { return Status::Ok(); }
  // The bandwidth ceiling for benchmarks: ms per pass of a plain streaming read of `bytes` bytes (cpu:
  // all threads, SIMD loads; device backends: a device-to-device copy, read+write counted, of bytes/2).
  virtual Status measure_ceiling(size_t /*bytes*/, int /*reps*/, double* /*ms_per_rep*/) {
    return Status::unsupported(std::string(name()) + ": no ceiling measurement");
  }
  // Device-event timing of fn(), for benchmarks; host backends use a monotonic clock.
  virtual Status elapsed_ms(void (*fn)(void*), void* ctx, int reps, double* ms_per_rep);

 protected:
  Status unsupported_family(const char* family) const {
    return Status::unsupported(std::string(family) + " (" + name() + "): not implemented on this backend");
  }
};

struct BackendEntry {
  const char* name;
  Backend* backend;      // null when not compiled in
  const char* why_not;   // reason when backend is null
};

// All backends known to this build, compiled in or not (registry.cc).
const std::vector<BackendEntry>& backends();
Backend* find_backend(const std::string& name);

}  // namespace select_attn
