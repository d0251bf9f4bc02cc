// Backend-neutral basics: dtypes, layouts, status codes. No N-API, CUDA or Ascend headers here.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace select_attn {

enum class DType : int { f32 = 0, f16 = 1, bf16 = 2, i32 = 3 };
// NHD: [numBlocks, blockSize, numKvHeads, headDim]; HND: [numBlocks, numKvHeads, blockSize, headDim]
enum class Layout : int { NHD = 0, HND = 1 };
// Codes shared with TS (SelectAttnError.code): SA_ERR_INVALID_ARG, SA_ERR_UNSUPPORTED, SA_ERR_DEVICE, SA_ERR_OOM.
enum class Code : int { ok = 0, invalid_arg = 1, unsupported = 2, device = 3, oom = 4 };

inline size_t dtype_size(DType t) { return t == DType::f32 || t == DType::i32 ? 4 : 2; }
inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "f32";
    case DType::f16: return "f16";
    case DType::bf16: return "bf16";
    case DType::i32: return "i32";
  }
  return "?";
}
inline const char* layout_name(Layout l) { return l == Layout::NHD ? "NHD" : "HND"; }

// Result of every backend call. C++ never throws across the backend boundary, aborts or prints.
struct Status {
  Code code = Code::ok;
  std::string message;
  bool ok() const { return code == Code::ok; }
  static Status Ok() { return {}; }
  static Status invalid(std::string m) { return {Code::invalid_arg, std::move(m)}; }
  static Status unsupported(std::string m) { return {Code::unsupported, std::move(m)}; }
  static Status device(std::string m) { return {Code::device, std::move(m)}; }
  static Status oom(std::string m) { return {Code::oom, std::move(m)}; }
};

#define SA_RETURN_IF_ERROR(expr)          \
  do {                                    \
    ::select_attn::Status _st = (expr);   \
    if (!_st.ok()) return _st;            \
  } while (0)

// Element offset of (block, token-in-block, kv head, channel 0) in a paged cache.
inline int64_t paged_offset(Layout layout, int64_t block, int64_t tok, int64_t head, int block_size,
                            int num_kv_heads, int head_dim) {
  return layout == Layout::NHD
             ? ((block * block_size + tok) * num_kv_heads + head) * head_dim
             : ((block * num_kv_heads + head) * block_size + tok) * head_dim;
}

}  // namespace select_attn
