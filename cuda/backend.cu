// The cuda backend (placeholder until the kernels land): device memory and availability only.
#include <cuda_runtime.h>

#include "select_attn/backend.h"

namespace select_attn::cuda {
namespace {
class CudaBackend final : public Backend {
 public:
  const char* name() const override { return "cuda"; }
  bool is_device() const override { return true; }
  Status available() const override {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) return Status::unsupported(std::string("no CUDA device: ") + cudaGetErrorString(e));
    return Status::Ok();
  }
};
}  // namespace
Backend* make_cuda_backend() {
  static CudaBackend b;
  return &b;
}
}  // namespace select_attn::cuda
