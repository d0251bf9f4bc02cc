// Shared pieces of the cuda backend: the runtime-call checking macro, dtype conversions, the
// device-side error record (ids outside a pool are reported, never dereferenced), and thin wrappers
// over cp.async / ldmatrix / mma.sync. Included by every cuda/*.cu file; no N-API here.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "select_attn/common.h"

namespace select_attn::cuda {

// ---- host: one checking macro for CUDA runtime calls (records file and line) ----
Status cuda_status(cudaError_t e, const char* what, const char* file, int line);
#define SA_CUDA_CHECK(expr)                                                                \
  do {                                                                                     \
    cudaError_t _e = (expr);                                                               \
    if (_e != cudaSuccess) return ::select_attn::cuda::cuda_status(_e, #expr, __FILE__, __LINE__); \
  } while (0)
// After a launch: reports a bad configuration (grid, shared memory) at the launch site.
#define SA_CUDA_LAUNCH_CHECK() SA_CUDA_CHECK(cudaGetLastError())

// ---- the device-side error record ----
// Kernels that meet an id outside its pool (or a length that does not fit its table) skip the
// access and record the first such event here; Backend::synchronize() turns it into
// SA_ERR_INVALID_ARG with a message naming the argument, the index, the value and the bound.
enum ErrKind : int {
  kErrNone = 0,
  kErrTableId,      // table[a, b] = value outside [0, bound)
  kErrTableWidth,   // sequence a needs value columns of table, which has bound
  kErrNegSeqLen,    // seqLens[a] = value < 0
  kErrSlot,         // slotMapping[a] = value outside [-1, bound)
  kErrSeqIdx,       // seqIdx[a] = value outside [0, bound)
  kErrNegPos,       // positions[a] = value < 0
  kErrPosPage,      // positions[a] = value needs metadata page b, table has bound columns
  kErrTokensSince,  // tokensSinceMetadataUpdate[a] = value outside [0, bound = seqLens[a]]
  kErrCuSeqlens,    // cuSeqlensQ[a+1] = value is below cuSeqlensQ[a] = b or above totalQ = bound
  kErrQLen,         // sequence a has value queries but seqLens[a] = b
  kErrMaxQLen,      // sequence a has value queries but maxQLen = bound
  kErrSelection,    // blockSelection[a, b, c] = value outside [-1, bound)
  kErrNegStart,     // startBlocks[a] = value < 0
};
enum ErrTable : int { kTabBlock = 0, kTabMeta = 1 };
enum ErrFamily : int { kFamQuestMetadata = 0, kFamQuestSelect, kFamPagedAttention, kFamCacheWrite, kFamMetaAppend };

struct DevError {
  int code;     // ErrKind; 0 = none. The first writer wins (atomicCAS).
  int family;   // ErrFamily
  int table;    // ErrTable for kErrTableId / kErrTableWidth
  int a, b, c;  // indices
  long long value, bound;
};

__device__ __forceinline__ void report(DevError* e, int kind, int family, int table, int a, int b, int c,
                                       long long value, long long bound) {
  if (atomicCAS(&e->code, 0, -1) == 0) {  // claim, fill, then publish the kind
    e->family = family;
    e->table = table;
    e->a = a;
    e->b = b;
    e->c = c;
    e->value = value;
    e->bound = bound;
    __threadfence();
    atomicExch(&e->code, kind);
  }
}

std::string describe_error(const DevError& e);

// ---- dtypes ----
template <DType T> struct Elem;
template <> struct Elem<DType::f32> { using type = float; };
template <> struct Elem<DType::f16> { using type = __half; };
template <> struct Elem<DType::bf16> { using type = __nv_bfloat16; };

__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }
template <class T> __device__ __forceinline__ T from_f32(float x);
template <> __device__ __forceinline__ float from_f32<float>(float x) { return x; }
template <> __device__ __forceinline__ __half from_f32<__half>(float x) { return __float2half_rn(x); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

// Element i of a buffer whose dtype is known only at run time (small tensors: q, outputs).
__device__ __forceinline__ float load_any(const void* p, DType t, int64_t i) {
  switch (t) {
    case DType::f32: return static_cast<const float*>(p)[i];
    case DType::f16: return __half2float(static_cast<const __half*>(p)[i]);
    default: return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
  }
}
__device__ __forceinline__ void store_any(void* p, DType t, int64_t i, float v) {
  switch (t) {
    case DType::f32: static_cast<float*>(p)[i] = v; break;
    case DType::f16: static_cast<__half*>(p)[i] = __float2half_rn(v); break;
    default: static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(v); break;
  }
}

// VE consecutive elements of a run-time-dtype buffer from element i, widened to f32; the dtype
// switch sits outside the loads so they issue back to back.
template <int VE>
__device__ __forceinline__ void load_any_vec(const void* p, DType t, int64_t i, float* out) {
  switch (t) {
    case DType::f32: {
      const float* q = static_cast<const float*>(p) + i;
#pragma unroll
      for (int e = 0; e < VE; ++e) out[e] = q[e];
      break;
    }
    case DType::f16: {
      const __half* q = static_cast<const __half*>(p) + i;
#pragma unroll
      for (int e = 0; e < VE; ++e) out[e] = __half2float(q[e]);
      break;
    }
    default: {
      const __nv_bfloat16* q = static_cast<const __nv_bfloat16*>(p) + i;
#pragma unroll
      for (int e = 0; e < VE; ++e) out[e] = __bfloat162float(q[e]);
      break;
    }
  }
}

// 8 consecutive 16-bit or 4 f32 elements of a 16-byte vector, widened to f32.
template <class T> struct Vec16;
template <> struct Vec16<float> {
  static constexpr int N = 4;
  __device__ __forceinline__ static void widen(const uint4& v, float* out) {
    out[0] = __uint_as_float(v.x); out[1] = __uint_as_float(v.y);
    out[2] = __uint_as_float(v.z); out[3] = __uint_as_float(v.w);
  }
};
template <> struct Vec16<__half> {
  static constexpr int N = 8;
  __device__ __forceinline__ static void widen(const uint4& v, float* out) {
    const __half2* h = reinterpret_cast<const __half2*>(&v);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      float2 f = __half22float2(h[i]);
      out[2 * i] = f.x;
      out[2 * i + 1] = f.y;
    }
  }
};
template <> struct Vec16<__nv_bfloat16> {
  static constexpr int N = 8;
  __device__ __forceinline__ static void widen(const uint4& v, float* out) {
    const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      out[2 * i] = __uint_as_float(w[i] << 16);
      out[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
    }
  }
};

// max/min in the references' order (JavaScript Math.max/min): -0 < +0 and NaN wins, so every
// backend agrees bit for bit on quest_metadata and questMetadataAppend.
__device__ __forceinline__ float max_js(float a, float x) {
  if (a != a || x != x) return a + x;  // NaN
  return (x > a || (x == a && signbit(a) && !signbit(x))) ? x : a;
}
__device__ __forceinline__ float min_js(float a, float x) {
  if (a != a || x != x) return a + x;
  return (x < a || (x == a && !signbit(a) && signbit(x))) ? x : a;
}

// ---- paged addressing ----
__device__ __forceinline__ int64_t paged_off(Layout layout, int64_t block, int tok, int head, int bs, int N, int D) {
  return layout == Layout::NHD ? ((block * bs + tok) * N + head) * (int64_t)D
                               : ((block * N + head) * (int64_t)bs + tok) * D;
}

// ---- sm_80+ primitives ----
__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
// 16-byte async copy global -> shared; src_bytes 0 writes zeros and reads nothing.
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(smem)), "l"(gmem), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void ldmatrix_x4(uint32_t* r, const void* smem) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(smem)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t* r, const void* smem) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(smem)));
}

// D = A(16x16, row) * B(16x8, col) + D, f32 accumulators.
template <class T> __device__ __forceinline__ void mma_16816(float* d, const uint32_t* a, const uint32_t* b);
template <> __device__ __forceinline__ void mma_16816<__half>(float* d, const uint32_t* a, const uint32_t* b) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
template <> __device__ __forceinline__ void mma_16816<__nv_bfloat16>(float* d, const uint32_t* a, const uint32_t* b) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
// Two f32 -> one packed pair of 16-bit values (low = first).
template <class T> __device__ __forceinline__ uint32_t pack2(float lo, float hi);
template <> __device__ __forceinline__ uint32_t pack2<__half>(float lo, float hi) {
  __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&h);
}
template <> __device__ __forceinline__ uint32_t pack2<__nv_bfloat16>(float lo, float hi) {
  __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&h);
}

__host__ __device__ __forceinline__ int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
__host__ __device__ __forceinline__ int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

}  // namespace select_attn::cuda
