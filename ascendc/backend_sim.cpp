// The ascend-sim backend (placeholder until the Ascend C kernels and the twin land: reports unsupported).
#include "select_attn/backend.h"

namespace select_attn::ascend_sim {
namespace {
class AscendSimBackend final : public Backend {
 public:
  const char* name() const override { return "ascend-sim"; }
};
}  // namespace
Backend* make_ascend_sim_backend() {
  static AscendSimBackend b;
  return &b;
}
}  // namespace select_attn::ascend_sim
