// N-API glue helpers: read a family's params from a JS object, map Status to JS errors.
#pragma once
#include <napi.h>

#include <string>
#include <vector>

#include "select_attn/backend.h"

namespace select_attn::napi {

// A device allocation owned by a JS handle (External); freed by dispose() or the finalizer.
struct DeviceBuffer {
  Backend* backend;
  void* ptr;
  size_t bytes;
};

const char* code_name(Code c);
Napi::Error make_error(Napi::Env env, Code code, const std::string& family, const std::string& backend,
                       const std::string& message);

// Thrown inside parsing; converted to a JS exception by the entry point.
struct ArgError {
  Code code;
  std::string message;
};

class Args {
 public:
  Args(Napi::Env env, Napi::Object obj, Backend* be, const char* family) : env_(env), obj_(obj), be_(be), family_(family) {}
  int i32(const char* name, int def = 0, bool required = true);
  int64_t i64(const char* name);
  double f64(const char* name, double def);
  bool flag(const char* name, bool def);
  DType dtype(const char* name);
  // Data pointer of a host TypedArray or a device handle; checks at least `bytes` bytes and
  // that the kind matches the backend (host or device). Null when absent and !required.
  void* ptr(const char* name, size_t bytes, bool required = true);
  template <class T>
  T* typed(const char* name, size_t count, bool required = true) {
    return static_cast<T*>(ptr(name, count * sizeof(T), required));
  }
  // Values that must outlive an async call.
  std::vector<Napi::Reference<Napi::Value>>& keep() { return keep_; }
  const char* family() const { return family_; }

 private:
  Napi::Env env_;
  Napi::Object obj_;
  Backend* be_;
  const char* family_;
  std::vector<Napi::Reference<Napi::Value>> keep_;
};

}  // namespace select_attn::napi
