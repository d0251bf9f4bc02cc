// The cuda backend: one stream per backend, device memory (cudaMalloc), event timing, the device
// error record read back by synchronize(), the copy-bandwidth ceiling, and the per-family dispatch.
// "No device" is a normal state: the addon loads and available() says why.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "launch.h"
#include "select_attn/backend.h"

namespace select_attn::cuda {

Status cuda_status(cudaError_t e, const char* what, const char* file, int line) {
  const char* base = std::strrchr(file, '/');
  std::string msg = std::string("cuda: ") + what + " failed: " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) +
                    ") at " + (base ? base + 1 : file) + ":" + std::to_string(line);
  if (e == cudaErrorMemoryAllocation) return Status::oom(msg);
  return Status::device(msg);
}

std::string describe_error(const DevError& e) {
  static const char* fams[] = {"quest_metadata", "quest_select", "paged_attention", "kv_cache", "kv_cache"};
  const char* fam = e.family >= 0 && e.family < 5 ? fams[e.family] : "cuda";
  const char* table = e.table == kTabMeta ? "metaBlockTables" : "blockTables";
  std::string p = std::string(fam) + " (cuda): ";
  auto s = [](long long v) { return std::to_string(v); };
  switch (e.code) {
    case kErrTableId:
      return p + table + "[" + s(e.a) + ", " + s(e.b) + "] = " + s(e.value) + " is outside the pool [0, " + s(e.bound) + ")";
    case kErrTableWidth:
      return p + table + " has " + s(e.bound) + " columns but sequence " + s(e.a) + " needs " + s(e.value);
    case kErrNegSeqLen: return p + "seqLens[" + s(e.a) + "] = " + s(e.value) + " is negative";
    case kErrSlot:
      return p + "slotMapping[" + s(e.a) + "] = " + s(e.value) + " is outside [-1, " + s(e.bound) + ")";
    case kErrSeqIdx: return p + "seqIdx[" + s(e.a) + "] = " + s(e.value) + " is outside [0, " + s(e.bound) + ")";
    case kErrNegPos: return p + "positions[" + s(e.a) + "] = " + s(e.value) + " is negative";
    case kErrPosPage:
      return p + "positions[" + s(e.a) + "] = " + s(e.value) + " needs metadata page " + s(e.b) +
             " but metaBlockTables has " + s(e.bound) + " columns";
    case kErrTokensSince:
      return p + "tokensSinceMetadataUpdate[" + s(e.a) + "] = " + s(e.value) + " is outside [0, seqLens[" + s(e.a) +
             "] = " + s(e.bound) + "]";
    case kErrCuSeqlens:
      return p + "cuSeqlensQ must rise from 0 to totalQ = " + s(e.bound) + ", got cuSeqlensQ[" + s(e.a) + "] = " + s(e.b) +
             ", cuSeqlensQ[" + s(e.a + 1) + "] = " + s(e.value);
    case kErrQLen:
      return p + "sequence " + s(e.a) + " has " + s(e.value) + " queries but seqLens[" + s(e.a) + "] = " + s(e.b) +
             " (the queries are the last qLen tokens of the sequence)";
    case kErrMaxQLen:
      return p + "maxQLen = " + s(e.bound) + " but sequence " + s(e.a) + " has " + s(e.value) + " queries";
    case kErrSelection:
      return p + "blockSelection[" + s(e.a) + ", " + s(e.b) + ", " + s(e.c) + "] = " + s(e.value) +
             " is outside [-1, " + s(e.bound) + ") (the sequence's logical blocks)";
    case kErrNegStart: return p + "startBlocks[" + s(e.a) + "] = " + s(e.value) + " is negative";
    default: return p + "unknown device-side error " + s(e.code);
  }
}

namespace {

class CudaBackend final : public Backend, public Workspace {
 public:
  const char* name() const override { return "cuda"; }
  bool is_device() const override { return true; }

  Status available() const override {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) return Status::unsupported(std::string("no CUDA device: ") + cudaGetErrorString(e));
    if (n == 0) return Status::unsupported("no CUDA device: cudaGetDeviceCount found 0 devices");
    return Status::Ok();
  }

  std::vector<std::string> families() const override {
    return {"quest_metadata", "quest_select", "paged_attention", "kv_cache"};
  }

  std::string device_info() const override {
    if (!const_cast<CudaBackend*>(this)->init().ok()) return "";
    char buf[256];
    std::snprintf(buf, sizeof buf, "%s, sm_%d%d, %d SMs, %.1f GiB, L2 %d MiB", prop_.name, prop_.major, prop_.minor,
                  prop_.multiProcessorCount, prop_.totalGlobalMem / 1073741824.0, prop_.l2CacheSize >> 20);
    return buf;
  }

  // ---- families: supports() and run() share each family's dispatch (cuda/<family>.cu) ----
  Status supports(const QuestMetadataParams& p) const override { return supports_quest_metadata(p); }
  Status run(const QuestMetadataParams& p) override { return go(p, supports_quest_metadata, launch_quest_metadata); }
  Status supports(const QuestSelectParams& p) const override { return supports_quest_select(p); }
  Status run(const QuestSelectParams& p) override { return go(p, supports_quest_select, launch_quest_select); }
  Status supports(const PagedAttentionParams& p) const override { return supports_paged_attention(p); }
  Status run(const PagedAttentionParams& p) override { return go(p, supports_paged_attention, launch_paged_attention); }
  Status supports(const CacheWriteParams& p) const override { return supports_cache_write(p); }
  Status run(const CacheWriteParams& p) override { return go(p, supports_cache_write, launch_cache_write); }
  Status supports(const QuestMetadataAppendParams& p) const override { return supports_meta_append(p); }
  Status run(const QuestMetadataAppendParams& p) override { return go(p, supports_meta_append, launch_meta_append); }

  // ---- device memory ----
  Status alloc(size_t bytes, void** ptr) override {
    SA_RETURN_IF_ERROR(init());
    // A zero-byte tensor still gets a distinct non-null handle (null means "disposed" to the bindings).
    SA_CUDA_CHECK(cudaMalloc(ptr, std::max<size_t>(bytes, 256)));
    return Status::Ok();
  }
  Status free(void* ptr) override {
    if (!ptr || !ready_) return Status::Ok();
    SA_CUDA_CHECK(cudaFree(ptr));
    return Status::Ok();
  }
  // Ordered with the kernels on the backend's stream; returns when the host buffer may be reused.
  Status upload(void* dst, const void* src, size_t bytes) override {
    SA_RETURN_IF_ERROR(init());
    if (bytes == 0) return Status::Ok();
    SA_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_));
    SA_CUDA_CHECK(cudaStreamSynchronize(stream_));
    return Status::Ok();
  }
  Status download(void* dst, const void* src, size_t bytes) override {
    SA_RETURN_IF_ERROR(init());
    if (bytes == 0) return Status::Ok();
    SA_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
    SA_CUDA_CHECK(cudaStreamSynchronize(stream_));
    return Status::Ok();
  }

  // Waits for the stream, then reads (and clears) the device error record.
  Status synchronize() override {
    if (!ready_) return init();
    SA_CUDA_CHECK(cudaStreamSynchronize(stream_));
    DevError e{};
    SA_CUDA_CHECK(cudaMemcpyAsync(&e, err_, sizeof e, cudaMemcpyDeviceToHost, stream_));
    SA_CUDA_CHECK(cudaStreamSynchronize(stream_));
    if (e.code == 0) return Status::Ok();
    SA_CUDA_CHECK(cudaMemsetAsync(err_, 0, sizeof(DevError), stream_));
    SA_CUDA_CHECK(cudaStreamSynchronize(stream_));
    return Status::invalid(describe_error(e));
  }

  // A device-to-device copy of bytes/2 (read + write = bytes), ms per copy.
  Status measure_ceiling(size_t bytes, int reps, double* ms) override {
    SA_RETURN_IF_ERROR(init());
    size_t half = bytes / 2 / 256 * 256;
    void *a = nullptr, *b = nullptr;
    SA_CUDA_CHECK(cudaMalloc(&a, half));
    Status st = Status::Ok();
    if (cudaMalloc(&b, half) != cudaSuccess) {
      cudaFree(a);
      cudaGetLastError();
      return Status::oom("cuda: cannot allocate the ceiling buffers (2 x " + std::to_string(half) + " bytes)");
    }
    auto body = [&]() -> Status {
      SA_CUDA_CHECK(cudaMemsetAsync(a, 0x3c, half, stream_));
      SA_CUDA_CHECK(cudaMemcpyAsync(b, a, half, cudaMemcpyDeviceToDevice, stream_));  // warm-up
      SA_CUDA_CHECK(cudaEventRecord(ev0_, stream_));
      for (int i = 0; i < reps; ++i) SA_CUDA_CHECK(cudaMemcpyAsync(i & 1 ? a : b, i & 1 ? b : a, half, cudaMemcpyDeviceToDevice, stream_));
      SA_CUDA_CHECK(cudaEventRecord(ev1_, stream_));
      SA_CUDA_CHECK(cudaEventSynchronize(ev1_));
      float t = 0;
      SA_CUDA_CHECK(cudaEventElapsedTime(&t, ev0_, ev1_));
      *ms = (double)t / reps;
      return Status::Ok();
    };
    st = body();
    cudaFree(a);
    cudaFree(b);
    return st;
  }

  // Device-event timing. Default ("cold"): before each call the L2 is flushed by a memset of twice
  // its size, and the call alone is timed with an event pair; the median over reps is returned.
  // That is what a decode step sees (KV not in cache) and what triton's do_bench measures for the
  // peers. SA_CUDA_TIMING=warm times reps back-to-back calls on one event pair instead.
  Status elapsed_ms(void (*fn)(void*), void* ctx, int reps, double* ms_per_rep) override {
    SA_RETURN_IF_ERROR(init());
    const char* mode = std::getenv("SA_CUDA_TIMING");
    if (mode && std::string(mode) == "warm") {
      SA_CUDA_CHECK(cudaEventRecord(ev0_, stream_));
      for (int i = 0; i < reps; ++i) fn(ctx);
      SA_CUDA_CHECK(cudaEventRecord(ev1_, stream_));
      SA_CUDA_CHECK(cudaEventSynchronize(ev1_));
      float t = 0;
      SA_CUDA_CHECK(cudaEventElapsedTime(&t, ev0_, ev1_));
      *ms_per_rep = (double)t / reps;
      return synchronize();
    }
    if (!flush_) {
      flush_bytes_ = std::max<size_t>(2 * (size_t)prop_.l2CacheSize, 64u << 20);
      SA_CUDA_CHECK(cudaMalloc(&flush_, flush_bytes_));
    }
    std::vector<float> times;
    for (int i = 0; i < reps; ++i) {
      SA_CUDA_CHECK(cudaMemsetAsync(flush_, i & 0xff, flush_bytes_, stream_));
      SA_CUDA_CHECK(cudaEventRecord(ev0_, stream_));
      fn(ctx);
      SA_CUDA_CHECK(cudaEventRecord(ev1_, stream_));
      SA_CUDA_CHECK(cudaEventSynchronize(ev1_));
      float t = 0;
      SA_CUDA_CHECK(cudaEventElapsedTime(&t, ev0_, ev1_));
      times.push_back(t);
    }
    std::sort(times.begin(), times.end());
    *ms_per_rep = times.empty() ? 0 : (double)times[times.size() / 2];
    return synchronize();
  }

  // ---- Workspace ----
  Status get(size_t bytes, void** p) override {
    if (bytes > ws_bytes_) {
      if (ws_) SA_CUDA_CHECK(cudaFree(ws_));  // waits for queued kernels that may still use it
      ws_ = nullptr;
      ws_bytes_ = 0;
      size_t want = std::max<size_t>(bytes + bytes / 4, 1u << 20);
      SA_CUDA_CHECK(cudaMalloc(&ws_, want));
      ws_bytes_ = want;
    }
    *p = ws_;
    return Status::Ok();
  }
  Status counters(size_t n, int** p) override {
    if (n > cnt_n_) {
      if (cnt_) SA_CUDA_CHECK(cudaFree(cnt_));
      cnt_ = nullptr;
      cnt_n_ = 0;
      size_t want = std::max<size_t>(n, 4096);
      SA_CUDA_CHECK(cudaMalloc(&cnt_, want * sizeof(int)));
      SA_CUDA_CHECK(cudaMemsetAsync(cnt_, 0, want * sizeof(int), stream_));
      cnt_n_ = want;
    }
    *p = cnt_;
    return Status::Ok();
  }

 private:
  template <class P>
  Status go(const P& p, Status (*sup)(const P&), Status (*launch)(const P&, const Launch&)) {
    SA_RETURN_IF_ERROR(sup(p));
    SA_RETURN_IF_ERROR(init());
    Launch l{stream_, err_, prop_.multiProcessorCount, (int)prop_.sharedMemPerBlockOptin, this};
    return launch(p, l);
  }

  // First use: pick the device (SA_CUDA_DEVICE, default 0), make the stream, events, error record.
  Status init() {
    if (ready_) return Status::Ok();
    if (!init_error_.ok()) return init_error_;
    Status av = available();
    if (!av.ok()) return init_error_ = av;
    const char* dev = std::getenv("SA_CUDA_DEVICE");
    int d = dev ? std::atoi(dev) : 0;
    auto body = [&]() -> Status {
      SA_CUDA_CHECK(cudaSetDevice(d));
      SA_CUDA_CHECK(cudaGetDeviceProperties(&prop_, d));
      SA_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
      SA_CUDA_CHECK(cudaEventCreate(&ev0_));
      SA_CUDA_CHECK(cudaEventCreate(&ev1_));
      SA_CUDA_CHECK(cudaMalloc(&err_, sizeof(DevError)));
      SA_CUDA_CHECK(cudaMemsetAsync(err_, 0, sizeof(DevError), stream_));
      SA_CUDA_CHECK(cudaStreamSynchronize(stream_));
      return Status::Ok();
    };
    Status st = body();
    if (!st.ok()) return init_error_ = st;
    ready_ = true;
    return Status::Ok();
  }

  bool ready_ = false;
  Status init_error_;
  cudaDeviceProp prop_{};
  cudaStream_t stream_ = nullptr;
  cudaEvent_t ev0_ = nullptr, ev1_ = nullptr;
  DevError* err_ = nullptr;
  void* ws_ = nullptr;
  size_t ws_bytes_ = 0;
  int* cnt_ = nullptr;
  size_t cnt_n_ = 0;
  void* flush_ = nullptr;
  size_t flush_bytes_ = 0;
};

}  // namespace

Backend* make_cuda_backend() {
  static CudaBackend b;
  return &b;
}

}  // namespace select_attn::cuda
