// N-API glue helpers (see args.h).
#include "args.h"

namespace select_attn::napi {

const char* code_name(Code c) {
  switch (c) {
    case Code::invalid_arg: return "SA_ERR_INVALID_ARG";
    case Code::unsupported: return "SA_ERR_UNSUPPORTED";
    case Code::device: return "SA_ERR_DEVICE";
    case Code::oom: return "SA_ERR_OOM";
    default: return "SA_OK";
  }
}

Napi::Error make_error(Napi::Env env, Code code, const std::string& family, const std::string& backend,
                       const std::string& message) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Value().Set("saCode", code_name(code));
  e.Value().Set("family", family);
  e.Value().Set("backend", backend);
  return e;
}

static void fail(const char* family, const std::string& msg) { throw ArgError{Code::invalid_arg, std::string(family) + ": " + msg}; }

int Args::i32(const char* name, int def, bool required) {
  Napi::Value v = obj_.Get(name);
  if (v.IsUndefined() || v.IsNull()) {
    if (required) fail(family_, std::string("missing integer argument ") + name);
    return def;
  }
  if (!v.IsNumber()) fail(family_, std::string(name) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= -2147483648.0 && d <= 2147483647.0) || d != (double)(int64_t)d)
    fail(family_, std::string(name) + " must be an int32, got " + std::to_string(d));
  return (int)d;
}

int64_t Args::i64(const char* name) {
  Napi::Value v = obj_.Get(name);
  if (!v.IsNumber()) fail(family_, std::string("missing integer argument ") + name);
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 9007199254740991.0) || d != (double)(int64_t)d)
    fail(family_, std::string(name) + " must be a non-negative integer, got " + std::to_string(d));
  return (int64_t)d;
}

double Args::f64(const char* name, double def) {
  Napi::Value v = obj_.Get(name);
  if (v.IsUndefined() || v.IsNull()) return def;
  if (!v.IsNumber()) fail(family_, std::string(name) + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

bool Args::flag(const char* name, bool def) {
  Napi::Value v = obj_.Get(name);
  if (v.IsUndefined() || v.IsNull()) return def;
  return v.ToBoolean().Value();
}

DType Args::dtype(const char* name) {
  Napi::Value v = obj_.Get(name);
  std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  if (s == "f32") return DType::f32;
  if (s == "f16") return DType::f16;
  if (s == "bf16") return DType::bf16;
  if (s == "i32") return DType::i32;
  fail(family_, std::string(name) + " must be one of f32, f16, bf16, i32");
  return DType::f32;
}

void* Args::ptr(const char* name, size_t bytes, bool required) {
  Napi::Value v = obj_.Get(name);
  if (v.IsUndefined() || v.IsNull()) {
    if (required) fail(family_, std::string("missing tensor ") + name);
    return nullptr;
  }
  void* data = nullptr;
  size_t have = 0;
  bool device = false;
  if (v.IsTypedArray()) {
    Napi::TypedArray ta = v.As<Napi::TypedArray>();
    data = static_cast<char*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    have = ta.ByteLength();
  } else if (v.IsExternal()) {
    DeviceBuffer* d = v.As<Napi::External<DeviceBuffer>>().Data();
    if (!d || !d->ptr) fail(family_, std::string(name) + " is a disposed device tensor");
    if (d->backend != be_)
      fail(family_, std::string(name) + " lives on backend " + d->backend->name() + ", not " + be_->name());
    data = d->ptr;
    have = d->bytes;
    device = true;
  } else {
    fail(family_, std::string(name) + " must be a TypedArray or a device tensor");
  }
  if (device != be_->is_device())
    fail(family_, std::string(name) + (device ? " is a device tensor but backend " : " is a host array but backend ") +
                      be_->name() + (be_->is_device() ? " needs device tensors" : " takes host arrays"));
  if (have < bytes)
    fail(family_, std::string(name) + " holds " + std::to_string(have) + " bytes, needs " + std::to_string(bytes));
  keep_.push_back(Napi::Persistent(v));
  return data;
}

}  // namespace select_attn::napi
