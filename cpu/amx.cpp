// Runtime AMX check (see amx.h): compiled once, not per ISA; no AMX instruction is executed here.
#include "amx.h"

#include <cstdlib>

#if (defined(__x86_64__) || defined(_M_X64)) && defined(__linux__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#define SA_AMX_PROBE 1
#endif

namespace select_attn::cpu {
namespace {

struct AmxState {
  bool ok;
  const char* reason;
};

AmxState probe() {
  const char* env = std::getenv("SA_CPU_AMX");
  if (env && env[0] == '0') return {false, "SA_CPU_AMX=0"};
#ifdef SA_AMX_PROBE
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return {false, "no cpuid leaf 7"};
  const bool tile = (d >> 24) & 1, bf16 = (d >> 22) & 1;
  if (!tile || !bf16) return {false, "cpu has no AMX-BF16"};
  if (!__get_cpuid(1, &a, &b, &c, &d) || !((c >> 27) & 1)) return {false, "no OSXSAVE"};
  unsigned lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  if (((lo >> 17) & 3) != 3) return {false, "OS does not enable the tile state (XCR0)"};
  // Linux >= 5.16: the tile data state (XFEATURE 18) must be requested once per process.
  constexpr long kArchReqXcompPerm = 0x1023;
  constexpr long kXfeatureXtiledata = 18;
  if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) != 0) return {false, "arch_prctl(ARCH_REQ_XCOMP_PERM) refused"};
  return {true, ""};
#else
  return {false, "not x86-64 Linux"};
#endif
}

const AmxState& state() {
  static const AmxState s = probe();
  return s;
}

}  // namespace

bool amx_ready() { return state().ok; }
const char* amx_reason() { return state().reason; }

}  // namespace select_attn::cpu
