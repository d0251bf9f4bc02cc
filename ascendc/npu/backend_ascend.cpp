// The ascend backend (real NPU): AscendCL device memory, one stream, event timing, and the Ascend C
// kernels launched through the aclrtlaunch_<kernel>() functions CANN's ascendc_library() generates.
// Built only with the CANN toolkit (ascendc/ascend.cmake); never compiled on machines without it, so it
// is kept small and was reviewed call by call against the public AscendCL documentation (README).
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "acl/acl.h"
#include "aclrtlaunch_sa_cache_write_bf16.h"
#include "aclrtlaunch_sa_cache_write_f16.h"
#include "aclrtlaunch_sa_cache_write_f32.h"
#include "aclrtlaunch_sa_metadata_append_bf16.h"
#include "aclrtlaunch_sa_metadata_append_f16.h"
#include "aclrtlaunch_sa_metadata_append_f32.h"
#include "aclrtlaunch_sa_quest_metadata_bf16.h"
#include "aclrtlaunch_sa_quest_metadata_f16.h"
#include "aclrtlaunch_sa_quest_metadata_f32.h"
#include "aclrtlaunch_sa_quest_select_bf16_bf16.h"
#include "aclrtlaunch_sa_quest_select_bf16_f16.h"
#include "aclrtlaunch_sa_quest_select_bf16_f32.h"
#include "aclrtlaunch_sa_quest_select_f16_bf16.h"
#include "aclrtlaunch_sa_quest_select_f16_f16.h"
#include "aclrtlaunch_sa_quest_select_f16_f32.h"
#include "aclrtlaunch_sa_quest_select_f32_bf16.h"
#include "aclrtlaunch_sa_quest_select_f32_f16.h"
#include "aclrtlaunch_sa_quest_select_f32_f32.h"
#include "select_attn/backend.h"
#include "../tiling.h"

namespace select_attn::ascend {

namespace {

// One checking macro for AscendCL calls: the failing call, its error code and the runtime's message.
Status acl_status(aclError e, const char* what, int line) {
  const char* recent = aclGetRecentErrMsg();
  return Status::device(std::string("ascend: ") + what + " failed with aclError " + std::to_string(e) + " at backend_ascend.cpp:" +
                        std::to_string(line) + (recent ? std::string(": ") + recent : std::string()));
}
#define SA_ACL_CHECK(call)                                          \
  do {                                                              \
    aclError _e = (call);                                           \
    if (_e != ACL_SUCCESS) return acl_status(_e, #call, __LINE__);  \
  } while (0)
// The generated launchers return 0 on success.
#define SA_LAUNCH_CHECK(call)                                                                  \
  do {                                                                                         \
    uint32_t _r = (call);                                                                      \
    if (_r != 0) return Status::device(std::string("ascend: kernel launch ") + #call + " returned " + std::to_string(_r)); \
  } while (0)

constexpr int kSlots = 256;       // tiling slots in flight before the ring waits for the stream
constexpr size_t kSlotBytes = 256;
constexpr int kMaxCores = 64;     // status words (one per launched vector core)

class AscendBackend final : public Backend {
 public:
  const char* name() const override { return "ascend"; }
  bool is_device() const override { return true; }
  std::vector<std::string> families() const override { return {"quest_metadata", "quest_select", "kv_cache"}; }

  Status available() const override { return const_cast<AscendBackend*>(this)->init(); }
  std::string device_info() const override {
    if (!const_cast<AscendBackend*>(this)->init().ok()) return "";
    const char* soc = aclrtGetSocName();
    return std::string(soc ? soc : "Ascend NPU") + ", " + std::to_string(cores_) + " vector cores used";
  }

  // ---- families (tiling and checks shared with ascend-sim; ids on the device are checked by the kernels) ----
  Status supports(const QuestMetadataParams& p) const override {
    ascendc::QuestMetadataTiling t;
    return ascendc::tile_quest_metadata(p, cores_, &t);
  }
  Status run(const QuestMetadataParams& p) override {
    ascendc::QuestMetadataTiling t;
    SA_RETURN_IF_ERROR(ascendc::tile_quest_metadata(p, cores_, &t));
    void* tl = nullptr;
    SA_RETURN_IF_ERROR(stage_tiling(&t, sizeof t, &tl));
    void* args[] = {(void*)p.k_cache, (void*)p.block_tables, (void*)p.seq_lens, (void*)p.meta_block_tables,
                    (void*)p.maybe_start_blocks, p.max_meta, p.min_meta, status_, tl};
    switch (p.dtype) {
      case DType::f32: SA_LAUNCH_CHECK(aclrtlaunch_sa_quest_metadata_f32(t.blockDim, stream_, args[0], args[1], args[2], args[3], args[4], args[5], args[6], args[7], args[8])); break;
      case DType::f16: SA_LAUNCH_CHECK(aclrtlaunch_sa_quest_metadata_f16(t.blockDim, stream_, args[0], args[1], args[2], args[3], args[4], args[5], args[6], args[7], args[8])); break;
      default: SA_LAUNCH_CHECK(aclrtlaunch_sa_quest_metadata_bf16(t.blockDim, stream_, args[0], args[1], args[2], args[3], args[4], args[5], args[6], args[7], args[8])); break;
    }
    return Status::Ok();
  }

  Status supports(const QuestSelectParams& p) const override {
    ascendc::QuestSelectTiling t;
    return ascendc::tile_quest_select(p, cores_, &t);
  }
  Status run(const QuestSelectParams& p) override {
    ascendc::QuestSelectTiling t;
    SA_RETURN_IF_ERROR(ascendc::tile_quest_select(p, cores_, &t));
    void* tl = nullptr;
    SA_RETURN_IF_ERROR(stage_tiling(&t, sizeof t, &tl));
    void* a0 = (void*)p.query;
    void* a1 = (void*)p.max_meta;
    void* a2 = (void*)p.min_meta;
    void* a3 = (void*)p.meta_block_tables;
    void* a4 = (void*)p.seq_lens;
    void* a5 = (void*)p.tokens_since_update;
    void* a6 = p.selected;
    void* a7 = p.maybe_num_selected;
    const uint32_t bd = t.blockDim;
#define SA_SELECT(q, m)                                                                                        \
  if (p.query_dtype == DType::q && p.meta_dtype == DType::m) {                                                 \
    SA_LAUNCH_CHECK(aclrtlaunch_sa_quest_select_##q##_##m(bd, stream_, a0, a1, a2, a3, a4, a5, a6, a7, status_, tl)); \
    return Status::Ok();                                                                                       \
  }
    SA_SELECT(f32, f32) SA_SELECT(f32, f16) SA_SELECT(f32, bf16)
    SA_SELECT(f16, f32) SA_SELECT(f16, f16) SA_SELECT(f16, bf16)
    SA_SELECT(bf16, f32) SA_SELECT(bf16, f16) SA_SELECT(bf16, bf16)
#undef SA_SELECT
    return Status::unsupported("quest_select (ascend): dtype pair not compiled");
  }

  Status supports(const CacheWriteParams& p) const override {
    ascendc::CacheWriteTiling t;
    return ascendc::tile_cache_write(p, cores_, &t);
  }
  Status run(const CacheWriteParams& p) override {
    ascendc::CacheWriteTiling t;
    SA_RETURN_IF_ERROR(ascendc::tile_cache_write(p, cores_, &t));
    void* tl = nullptr;
    SA_RETURN_IF_ERROR(stage_tiling(&t, sizeof t, &tl));
    void* k = (void*)p.key;
    void* v = (void*)p.value;
    void* sm = (void*)p.slot_mapping;
    switch (p.dtype) {
      case DType::f32: SA_LAUNCH_CHECK(aclrtlaunch_sa_cache_write_f32(t.blockDim, stream_, k, v, p.k_cache, p.v_cache, sm, status_, tl)); break;
      case DType::f16: SA_LAUNCH_CHECK(aclrtlaunch_sa_cache_write_f16(t.blockDim, stream_, k, v, p.k_cache, p.v_cache, sm, status_, tl)); break;
      default: SA_LAUNCH_CHECK(aclrtlaunch_sa_cache_write_bf16(t.blockDim, stream_, k, v, p.k_cache, p.v_cache, sm, status_, tl)); break;
    }
    return Status::Ok();
  }

  Status supports(const QuestMetadataAppendParams& p) const override {
    ascendc::MetadataAppendTiling t;
    return ascendc::tile_metadata_append(p, cores_, &t);
  }
  Status run(const QuestMetadataAppendParams& p) override {
    ascendc::MetadataAppendTiling t;
    SA_RETURN_IF_ERROR(ascendc::tile_metadata_append(p, cores_, &t));
    void* tl = nullptr;
    SA_RETURN_IF_ERROR(stage_tiling(&t, sizeof t, &tl));
    void* k = (void*)p.key;
    void* mbt = (void*)p.meta_block_tables;
    void* si = (void*)p.seq_idx;
    void* pos = (void*)p.positions;
    switch (p.dtype) {
      case DType::f32: SA_LAUNCH_CHECK(aclrtlaunch_sa_metadata_append_f32(t.blockDim, stream_, k, p.max_meta, p.min_meta, mbt, si, pos, status_, tl)); break;
      case DType::f16: SA_LAUNCH_CHECK(aclrtlaunch_sa_metadata_append_f16(t.blockDim, stream_, k, p.max_meta, p.min_meta, mbt, si, pos, status_, tl)); break;
      default: SA_LAUNCH_CHECK(aclrtlaunch_sa_metadata_append_bf16(t.blockDim, stream_, k, p.max_meta, p.min_meta, mbt, si, pos, status_, tl)); break;
    }
    return Status::Ok();
  }

  // ---- device memory (aclrtMalloc / aclrtMemcpy, ordered after the kernels on our stream) ----
  Status alloc(size_t bytes, void** ptr) override {
    SA_RETURN_IF_ERROR(init());
    aclError e = aclrtMalloc(ptr, bytes < 512 ? 512 : bytes, ACL_MEM_MALLOC_HUGE_FIRST);
    if (e != ACL_SUCCESS) return Status::oom("ascend: aclrtMalloc of " + std::to_string(bytes) + " bytes failed (aclError " + std::to_string(e) + ")");
    return Status::Ok();
  }
  Status free(void* ptr) override {
    if (!ptr || !ready_) return Status::Ok();
    SA_ACL_CHECK(aclrtFree(ptr));
    return Status::Ok();
  }
  Status upload(void* dst, const void* src, size_t bytes) override {
    SA_RETURN_IF_ERROR(init());
    if (bytes == 0) return Status::Ok();
    SA_ACL_CHECK(aclrtSynchronizeStream(stream_));  // kernels still reading dst finish first
    SA_ACL_CHECK(aclrtMemcpy(dst, bytes, src, bytes, ACL_MEMCPY_HOST_TO_DEVICE));
    return Status::Ok();
  }
  Status download(void* dst, const void* src, size_t bytes) override {
    SA_RETURN_IF_ERROR(init());
    if (bytes == 0) return Status::Ok();
    SA_ACL_CHECK(aclrtSynchronizeStream(stream_));  // kernels writing src finish first
    SA_ACL_CHECK(aclrtMemcpy(dst, bytes, src, bytes, ACL_MEMCPY_DEVICE_TO_HOST));
    return Status::Ok();
  }

  // Waits for the stream, then reads and clears the kernels' status words (ids outside a pool...).
  Status synchronize() override {
    SA_RETURN_IF_ERROR(init());
    SA_ACL_CHECK(aclrtSynchronizeStream(stream_));
    int32_t words[kMaxCores];
    SA_ACL_CHECK(aclrtMemcpy(words, sizeof words, status_, sizeof words, ACL_MEMCPY_DEVICE_TO_HOST));
    for (int i = 0; i < kMaxCores; ++i)
      if (words[i] != 0) {
        SA_ACL_CHECK(aclrtMemset(status_, sizeof words, 0, sizeof words));
        return Status::invalid(std::string("ascend: a kernel found ") + ascendc::kernel_status_text(words[i]) + " (core " +
                               std::to_string(i) + "); its outputs are not valid");
      }
    return Status::Ok();
  }

  // A device-to-device copy of bytes/2 (read + write = bytes), ms per copy.
  Status measure_ceiling(size_t bytes, int reps, double* ms) override {
    SA_RETURN_IF_ERROR(init());
    const size_t half = bytes / 2 / 512 * 512;
    void *a = nullptr, *b = nullptr;
    SA_ACL_CHECK(aclrtMalloc(&a, half, ACL_MEM_MALLOC_HUGE_FIRST));
    if (aclrtMalloc(&b, half, ACL_MEM_MALLOC_HUGE_FIRST) != ACL_SUCCESS) {
      aclrtFree(a);
      return Status::oom("ascend: cannot allocate the ceiling buffers");
    }
    Status st = [&]() -> Status {
      SA_ACL_CHECK(aclrtMemsetAsync(a, half, 0x3c, half, stream_));
      SA_ACL_CHECK(aclrtMemcpyAsync(b, half, a, half, ACL_MEMCPY_DEVICE_TO_DEVICE, stream_));  // warm-up
      SA_ACL_CHECK(aclrtRecordEvent(ev0_, stream_));
      for (int i = 0; i < reps; ++i)
        SA_ACL_CHECK(aclrtMemcpyAsync(i & 1 ? a : b, half, i & 1 ? b : a, half, ACL_MEMCPY_DEVICE_TO_DEVICE, stream_));
      SA_ACL_CHECK(aclrtRecordEvent(ev1_, stream_));
      SA_ACL_CHECK(aclrtSynchronizeStream(stream_));  // the documented order: record, sync stream, elapsed
      float t = 0;
      SA_ACL_CHECK(aclrtEventElapsedTime(&t, ev0_, ev1_));
      *ms = (double)t / reps;
      return Status::Ok();
    }();
    aclrtFree(a);
    aclrtFree(b);
    return st;
  }

  // Device-event timing of reps back-to-back calls.
  Status elapsed_ms(void (*fn)(void*), void* ctx, int reps, double* ms_per_rep) override {
    SA_RETURN_IF_ERROR(init());
    SA_ACL_CHECK(aclrtRecordEvent(ev0_, stream_));
    for (int i = 0; i < reps; ++i) fn(ctx);
    SA_ACL_CHECK(aclrtRecordEvent(ev1_, stream_));
    SA_ACL_CHECK(aclrtSynchronizeStream(stream_));  // the documented order: record, sync stream, elapsed
    float t = 0;
    SA_ACL_CHECK(aclrtEventElapsedTime(&t, ev0_, ev1_));
    *ms_per_rep = (double)t / reps;
    return synchronize();
  }

 private:
  // aclInit, device 0 (SA_ASCEND_DEVICE), one stream, two events, the status words and the tiling ring.
  Status init() {
    std::lock_guard<std::mutex> lock(mu_);
    if (ready_) return Status::Ok();
    if (!init_error_.ok()) return init_error_;
    init_error_ = [&]() -> Status {
      aclError e = aclInit(nullptr);
      if (e != ACL_SUCCESS && e != ACL_ERROR_REPEAT_INITIALIZE) return acl_status(e, "aclInit", __LINE__);
      uint32_t n = 0;
      SA_ACL_CHECK(aclrtGetDeviceCount(&n));
      if (n == 0) return Status::unsupported("ascend: no NPU device (aclrtGetDeviceCount found 0)");
      const char* dev = std::getenv("SA_ASCEND_DEVICE");
      device_ = dev ? std::atoi(dev) : 0;
      SA_ACL_CHECK(aclrtSetDevice(device_));
      SA_ACL_CHECK(aclrtCreateStream(&stream_));
      SA_ACL_CHECK(aclrtCreateEvent(&ev0_));
      SA_ACL_CHECK(aclrtCreateEvent(&ev1_));
      SA_ACL_CHECK(aclrtMalloc(&status_, kMaxCores * sizeof(int32_t), ACL_MEM_MALLOC_HUGE_FIRST));
      SA_ACL_CHECK(aclrtMemset(status_, kMaxCores * sizeof(int32_t), 0, kMaxCores * sizeof(int32_t)));
      SA_ACL_CHECK(aclrtMalloc(&ring_dev_, kSlots * kSlotBytes, ACL_MEM_MALLOC_HUGE_FIRST));
      SA_ACL_CHECK(aclrtMallocHost(&ring_host_, kSlots * kSlotBytes));
      const char* cores = std::getenv("SA_ASCEND_CORES");  // vector cores (2 per AI core on a 910B)
      cores_ = cores ? std::atoi(cores) : ascendc::kDefaultBlockDim;
      if (cores_ < 1 || cores_ > kMaxCores) return Status::invalid("ascend: SA_ASCEND_CORES must be in [1, 64]");
      return Status::Ok();
    }();
    ready_ = init_error_.ok();
    return init_error_;
  }

  // Copies a tiling struct into the next device slot, ordered on the stream before the kernel that
  // reads it. After kSlots launches the ring waits for the stream so no slot is overwritten in use.
  Status stage_tiling(const void* t, size_t bytes, void** dev) {
    SA_RETURN_IF_ERROR(init());
    if (next_slot_ == kSlots) {
      SA_ACL_CHECK(aclrtSynchronizeStream(stream_));
      next_slot_ = 0;
    }
    uint8_t* h = static_cast<uint8_t*>(ring_host_) + next_slot_ * kSlotBytes;
    uint8_t* d = static_cast<uint8_t*>(ring_dev_) + next_slot_ * kSlotBytes;
    std::memcpy(h, t, bytes);
    SA_ACL_CHECK(aclrtMemcpyAsync(d, kSlotBytes, h, bytes, ACL_MEMCPY_HOST_TO_DEVICE, stream_));
    ++next_slot_;
    *dev = d;
    return Status::Ok();
  }

  std::mutex mu_;
  bool ready_ = false;
  Status init_error_;
  int32_t device_ = 0;
  int cores_ = ascendc::kDefaultBlockDim;
  aclrtStream stream_ = nullptr;
  aclrtEvent ev0_ = nullptr, ev1_ = nullptr;
  void* status_ = nullptr;
  void* ring_dev_ = nullptr;
  void* ring_host_ = nullptr;
  int next_slot_ = 0;
};

}  // namespace

Backend* make_ascend_backend() {
  static AscendBackend b;
  return &b;
}

}  // namespace select_attn::ascend
