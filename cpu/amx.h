// Runtime AMX (Advanced Matrix Extensions, bf16 tiles) availability for the cpu kernels: CPU support,
// OS support and the Linux per-process permission for the tile data state, checked once and cached.
#pragma once

namespace select_attn::cpu {

// True when this process may execute AMX-TILE + AMX-BF16 instructions (cpuid, XCR0 and
// arch_prctl(ARCH_REQ_XCOMP_PERM) all succeeded) and SA_CPU_AMX is not "0". The first call makes the
// permission request (process-wide, so every pool thread may then use tiles); thread-safe.
bool amx_ready();

// Why AMX is off ("" when it is on): for the backend's info string.
const char* amx_reason();

}  // namespace select_attn::cpu
