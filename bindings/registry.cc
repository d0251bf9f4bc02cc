// The backends compiled into this build, in the order listBackends() reports them.
#include <chrono>

#include "select_attn/backend.h"

namespace select_attn {
namespace cpu { Backend* make_cpu_backend(); }
namespace ascend_sim { Backend* make_ascend_sim_backend(); }
#ifdef SA_WITH_CUDA
namespace cuda { Backend* make_cuda_backend(); }
#endif
#ifdef SA_WITH_ASCEND
namespace ascend { Backend* make_ascend_backend(); }
#endif
#ifdef SA_WITH_METAL
namespace metal { Backend* make_metal_backend(); }
#endif

const std::vector<BackendEntry>& backends() {
  static const std::vector<BackendEntry> list = {
      {"cpu", cpu::make_cpu_backend(), ""},
#ifdef SA_WITH_CUDA
      {"cuda", cuda::make_cuda_backend(), ""},
#else
      {"cuda", nullptr, "not compiled: nvcc was not found when the addon was built"},
#endif
#ifdef SA_WITH_ASCEND
      {"ascend", ascend::make_ascend_backend(), ""},
#else
      {"ascend", nullptr, "not compiled: the CANN toolkit (ASCEND_HOME_PATH) was not found when the addon was built"},
#endif
      {"ascend-sim", ascend_sim::make_ascend_sim_backend(), ""},
#ifdef SA_WITH_METAL
      {"metal", metal::make_metal_backend(), ""},
#else
      {"metal", nullptr, "not implemented yet: select-attn has no Metal kernels so far"},
#endif
  };
  return list;
}

Backend* find_backend(const std::string& name) {
  for (const BackendEntry& e : backends())
    if (name == e.name) return e.backend;
  return nullptr;
}

// Host backends: a monotonic clock around reps calls.
Status Backend::elapsed_ms(void (*fn)(void*), void* ctx, int reps, double* ms_per_rep) {
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) fn(ctx);
  Status st = synchronize();
  auto t1 = std::chrono::steady_clock::now();
  *ms_per_rep = std::chrono::duration<double, std::milli>(t1 - t0).count() / reps;
  return st;
}

}  // namespace select_attn
