// The N-API export table: one entry per family (sync, async or timed), device memory, backend info.
#include <napi.h>

#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "../ascendc/ascend_sim.h"
#include "../cpu/thread_pool.h"
#include "families.h"

namespace select_attn::napi {
namespace {

Backend* backend_arg(const Napi::CallbackInfo& info, const char* family) {
  Napi::Env env = info.Env();
  std::string name = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  for (const BackendEntry& e : backends()) {
    if (name != e.name) continue;
    if (!e.backend) throw make_error(env, Code::unsupported, family, name, std::string(family) + ": backend " + name + " is not available: " + e.why_not);
    Status st = e.backend->available();
    if (!st.ok()) throw make_error(env, Code::unsupported, family, name, std::string(family) + ": backend " + name + " is not available: " + st.message);
    return e.backend;
  }
  throw make_error(env, Code::invalid_arg, family, name, std::string(family) + ": unknown backend '" + name + "'");
}

template <class P>
class Worker : public Napi::AsyncWorker {
 public:
  Worker(Napi::Env env, Backend* be, P p, std::vector<Napi::Reference<Napi::Value>> keep, const char* family)
      : Napi::AsyncWorker(env), be_(be), p_(p), keep_(std::move(keep)), family_(family), deferred_(env) {}
  void Execute() override { st_ = be_->run(p_); }
  void OnOK() override {
    if (st_.ok()) deferred_.Resolve(Env().Undefined());
    else deferred_.Reject(make_error(Env(), st_.code, family_, be_->name(), st_.message).Value());
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }
  Napi::Promise promise() { return deferred_.Promise(); }

 private:
  Backend* be_;
  P p_;
  std::vector<Napi::Reference<Napi::Value>> keep_;
  const char* family_;
  Napi::Promise::Deferred deferred_;
  Status st_;
};

// fn(backend, args, mode, reps): mode "sync" (default), "async" (a Promise) or "time" (ms per call).
template <class P, P (*Parse)(Args&, Napi::Object)>
Napi::Value call(const Napi::CallbackInfo& info, const char* family) {
  Napi::Env env = info.Env();
  Backend* be = backend_arg(info, family);
  if (info.Length() < 2 || !info[1].IsObject()) throw make_error(env, Code::invalid_arg, family, be->name(), std::string(family) + ": expected an argument object");
  Napi::Object obj = info[1].As<Napi::Object>();
  std::string mode = info.Length() > 2 && info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "sync";
  Args a(env, obj, be, family);
  P p;
  try {
    p = Parse(a, obj);
  } catch (const ArgError& e) {
    throw make_error(env, e.code, family, be->name(), e.message);
  }
  Status sup = be->supports(p);
  if (!sup.ok()) throw make_error(env, sup.code, family, be->name(), sup.message);
  if (mode == "async" && !be->is_device()) {
    auto* w = new Worker<P>(env, be, p, std::move(a.keep()), family);
    Napi::Promise pr = w->promise();
    w->Queue();
    return pr;
  }
  if (mode == "time") {
    int reps = info.Length() > 3 && info[3].IsNumber() ? info[3].As<Napi::Number>().Int32Value() : 10;
    Status st = be->run(p);  // warm-up and validation
    if (st.ok()) st = be->synchronize();
    if (!st.ok()) throw make_error(env, st.code, family, be->name(), st.message);
    struct Ctx { Backend* be; P* p; Status st; } ctx{be, &p, {}};
    double ms = 0;
    st = be->elapsed_ms([](void* c) {
      Ctx* x = static_cast<Ctx*>(c);
      Status s = x->be->run(*x->p);
      if (!s.ok()) x->st = s;
    }, &ctx, reps < 1 ? 1 : reps, &ms);
    if (st.ok()) st = ctx.st;
    if (!st.ok()) throw make_error(env, st.code, family, be->name(), st.message);
    return Napi::Number::New(env, ms);
  }
  Status st = be->run(p);
  if (!st.ok()) throw make_error(env, st.code, family, be->name(), st.message);
  if (mode == "async") {
    auto d = Napi::Promise::Deferred::New(env);
    d.Resolve(env.Undefined());
    return d.Promise();
  }
  return env.Undefined();
}

Napi::Value QuestMetadata(const Napi::CallbackInfo& i) { return call<QuestMetadataParams, parse_quest_metadata>(i, "quest_metadata"); }
Napi::Value QuestSelect(const Napi::CallbackInfo& i) { return call<QuestSelectParams, parse_quest_select>(i, "quest_select"); }
Napi::Value PagedAttention(const Napi::CallbackInfo& i) { return call<PagedAttentionParams, parse_paged_attention>(i, "paged_attention"); }
Napi::Value CacheWrite(const Napi::CallbackInfo& i) { return call<CacheWriteParams, parse_cache_write>(i, "kv_cache"); }
Napi::Value QuestMetadataAppend(const Napi::CallbackInfo& i) {
  return call<QuestMetadataAppendParams, parse_quest_metadata_append>(i, "kv_cache");
}

Napi::Value ListBackends(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array arr = Napi::Array::New(env);
  uint32_t i = 0;
  for (const BackendEntry& e : backends()) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", e.name);
    o.Set("compiled", e.backend != nullptr);
    Status st = e.backend ? e.backend->available() : Status::unsupported(e.why_not);
    o.Set("available", st.ok());
    o.Set("reason", st.message);
    o.Set("device", e.backend ? e.backend->is_device() : false);
    o.Set("info", e.backend && st.ok() ? e.backend->device_info() : "");
    Napi::Array fams = Napi::Array::New(env);
    if (e.backend) {
      uint32_t k = 0;
      for (const std::string& f : e.backend->families()) fams.Set(k++, f);
    }
    o.Set("families", fams);
    arr.Set(i++, o);
  }
  return arr;
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  if (info.Length() > 0 && info[0].IsNumber()) cpu::set_num_threads(info[0].As<Napi::Number>().Int32Value());
  return Napi::Number::New(info.Env(), cpu::num_threads());
}

DeviceBuffer* buffer_arg(const Napi::CallbackInfo& info, int i) {
  if ((int)info.Length() <= i || !info[i].IsExternal())
    throw make_error(info.Env(), Code::invalid_arg, "device", "", "expected a device tensor handle");
  return info[i].As<Napi::External<DeviceBuffer>>().Data();
}

Napi::Value DeviceAlloc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Backend* be = backend_arg(info, "device");
  double bytes = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : -1;
  if (!(bytes >= 0 && bytes <= 9007199254740991.0)) throw make_error(env, Code::invalid_arg, "device", be->name(), "deviceAlloc: bytes must be a non-negative integer");
  void* ptr = nullptr;
  Status st = be->alloc((size_t)bytes, &ptr);
  if (!st.ok()) throw make_error(env, st.code, "device", be->name(), st.message);
  auto* d = new DeviceBuffer{be, ptr, (size_t)bytes};
  return Napi::External<DeviceBuffer>::New(env, d, [](Napi::Env, DeviceBuffer* d) {
    if (d->ptr) d->backend->free(d->ptr);
    delete d;
  });
}

Napi::Value DeviceFree(const Napi::CallbackInfo& info) {
  DeviceBuffer* d = buffer_arg(info, 0);
  if (d->ptr) d->backend->free(d->ptr);
  d->ptr = nullptr;
  return info.Env().Undefined();
}

// deviceCopy(handle, typedArray, byteOffset, "upload" | "download")
Napi::Value DeviceCopy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DeviceBuffer* d = buffer_arg(info, 0);
  if (!d->ptr) throw make_error(env, Code::invalid_arg, "device", d->backend->name(), "device tensor was disposed");
  if (info.Length() < 4 || !info[1].IsTypedArray() || !info[2].IsNumber() || !info[3].IsString())
    throw make_error(env, Code::invalid_arg, "device", d->backend->name(), "deviceCopy(handle, typedArray, byteOffset, direction)");
  Napi::TypedArray ta = info[1].As<Napi::TypedArray>();
  char* host = static_cast<char*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  double off = info[2].As<Napi::Number>().DoubleValue();
  size_t n = ta.ByteLength();
  if (!(off >= 0) || off + n > d->bytes)
    throw make_error(env, Code::invalid_arg, "device", d->backend->name(), "deviceCopy: range [" + std::to_string((size_t)off) + ", +" + std::to_string(n) + ") exceeds the device tensor's " + std::to_string(d->bytes) + " bytes");
  char* dev = static_cast<char*>(d->ptr) + (size_t)off;
  std::string dir = info[3].As<Napi::String>().Utf8Value();
  Status st = dir == "upload" ? d->backend->upload(dev, host, n) : d->backend->download(host, dev, n);
  if (!st.ok()) throw make_error(env, st.code, "device", d->backend->name(), st.message);
  return env.Undefined();
}

Napi::Value Synchronize(const Napi::CallbackInfo& info) {
  Backend* be = backend_arg(info, "synchronize");
  Status st = be->synchronize();
  if (!st.ok()) throw make_error(info.Env(), st.code, "synchronize", be->name(), st.message);
  return info.Env().Undefined();
}

}  // namespace

// allocHost(bytes, hugePages) -> a zeroed ArrayBuffer in native memory, 2 MiB-aligned and advised
// for transparent huge pages when asked (large KV pools: fewer TLB misses on scattered blocks).
Napi::Value AllocHost(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double bytes = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
  bool huge = info.Length() > 1 && info[1].ToBoolean().Value();
  if (!(bytes >= 0 && bytes <= 1e13) || bytes != (double)(size_t)bytes)
    throw make_error(env, Code::invalid_arg, "allocHost", "cpu", "allocHost: bytes must be a non-negative integer");
  const size_t align = huge ? (size_t)2 << 20 : 64;
  const size_t size = std::max<size_t>(align, ((size_t)bytes + align - 1) / align * align);
  void* p = std::aligned_alloc(align, size);
  if (!p) throw make_error(env, Code::oom, "allocHost", "cpu", "allocHost: cannot allocate " + std::to_string(size) + " bytes");
#ifdef MADV_HUGEPAGE
  if (huge) madvise(p, size, MADV_HUGEPAGE);  // advice only: without THP the pages stay 4 KiB
#endif
  std::memset(p, 0, size);
  return Napi::ArrayBuffer::New(env, p, (size_t)bytes, [](Napi::Env, void* d) { std::free(d); });
}

// measureCeiling(backend, bytes, reps) -> ms per streaming pass (see Backend::measure_ceiling)
Napi::Value MeasureCeiling(const Napi::CallbackInfo& info) {
  Backend* be = backend_arg(info, "ceiling");
  double bytes = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : 0;
  int reps = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : 10;
  if (!(bytes >= 4096 && bytes <= 1e12)) throw make_error(info.Env(), Code::invalid_arg, "ceiling", be->name(), "measureCeiling: bytes must be in [4096, 1e12]");
  double ms = 0;
  Status st = be->measure_ceiling((size_t)bytes, reps < 1 ? 1 : reps, &ms);
  if (!st.ok()) throw make_error(info.Env(), st.code, "ceiling", be->name(), st.message);
  return Napi::Number::New(info.Env(), ms);
}

// ascendSimStats() -> counters of the last ascend-sim kernel launch (bytes moved, repeats, UB peak).
Napi::Value AscendSimStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const ascend_sim::LaunchStats s = ascend_sim::last_launch_stats();
  Napi::Object o = Napi::Object::New(env);
  o.Set("kernel", s.kernel);
  o.Set("blockDim", s.block_dim);
  o.Set("launches", (double)s.launches);
  o.Set("gmToUbBytes", (double)s.gm_to_ub_bytes);
  o.Set("ubToGmBytes", (double)s.ub_to_gm_bytes);
  o.Set("gmScalarBytes", (double)s.gm_scalar_bytes);
  o.Set("dmaInstrs", (double)s.dma_instrs);
  o.Set("vectorInstrs", (double)s.vector_instrs);
  o.Set("vectorRepeats", (double)s.vector_repeats);
  o.Set("ubPeakBytes", (double)s.ub_peak_bytes);
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("questMetadata", Napi::Function::New(env, QuestMetadata));
  exports.Set("questSelect", Napi::Function::New(env, QuestSelect));
  exports.Set("pagedAttention", Napi::Function::New(env, PagedAttention));
  exports.Set("cacheWrite", Napi::Function::New(env, CacheWrite));
  exports.Set("questMetadataAppend", Napi::Function::New(env, QuestMetadataAppend));
  exports.Set("listBackends", Napi::Function::New(env, ListBackends));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads));
  exports.Set("deviceAlloc", Napi::Function::New(env, DeviceAlloc));
  exports.Set("deviceFree", Napi::Function::New(env, DeviceFree));
  exports.Set("deviceCopy", Napi::Function::New(env, DeviceCopy));
  exports.Set("synchronize", Napi::Function::New(env, Synchronize));
  exports.Set("measureCeiling", Napi::Function::New(env, MeasureCeiling));
  exports.Set("allocHost", Napi::Function::New(env, AllocHost));
  exports.Set("ascendSimStats", Napi::Function::New(env, AscendSimStats));
  return exports;
}

}  // namespace select_attn::napi

static Napi::Object SaInit(Napi::Env env, Napi::Object exports) { return select_attn::napi::Init(env, exports); }
NODE_API_MODULE(select_attn, SaInit)
