// Memory-access probe for dense decode (not part of the addon): reads the two 268 MB paged bf16 pools
// of the target shape (8192 shuffled 32 KB blocks per cache, B=4 x 2048) in several orders, with
// optional synthetic compute per 256 bytes (FM x 8 dependent-chain FMAs), 2 threads, median of REPS
// passes. Used for the "Decode, the target shape" notes in README.md.
// Build and run: g++ -O2 -mavx512f -pthread decode_probe.cpp -o /tmp/decode_probe
//                FM=4 REPS=7 /tmp/decode_probe <threads> <hugepages 0|1> [patterns ...]
#include <immintrin.h>
#include <sys/mman.h>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>
#include <vector>
// pattern: 0 seq ceiling, 1 block K then V, 2 K/V interleaved by line, 3 = 1 + sw prefetch next block (all lines, spread),
// 4 = 1 + prefetch first 2 lines of each page of next block, 5 head-major (current), 6 = 2 + prefetch next block all lines,
// 12-16 head-major demand with next-block prefetch variants (names in main)
static const size_t BLK = 16 * 8 * 128 * 2;  // 32 KB
int NB = 8192;
char *kc, *vc, *seqb;
std::vector<int> phys;
int FM = 0;
#define COMP { __m512 x = a0; for (int f = 0; f < FM; f++) { c0 = _mm512_fmadd_ps(c0, x, c1); c1 = _mm512_fmadd_ps(c1, x, c2); c2 = _mm512_fmadd_ps(c2, x, c3); c3 = _mm512_fmadd_ps(c3, x, c4); c4 = _mm512_fmadd_ps(c4, x, c5); c5 = _mm512_fmadd_ps(c5, x, c6); c6 = _mm512_fmadd_ps(c6, x, c7); c7 = _mm512_fmadd_ps(c7, x, c0);} }
static inline __m512 ld(const char* p) { return _mm512_load_ps((const float*)p); }
float work(int pat, int t, int T) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0; __m512 c0=a0,c1=a0,c2=a0,c3=a0,c4=a0,c5=a0,c6=a0,c7=a0;
  size_t per = (size_t)NB / T, b0 = per * t, b1 = b0 + per;
  if (pat == 0) {
    size_t bytes = per * BLK * 2;
    const char* p = seqb + t * bytes;
    for (size_t i = 0; i < bytes; i += 256) { a0 = _mm512_add_ps(a0, ld(p + i)); a1 = _mm512_add_ps(a1, ld(p + i + 64)); a2 = _mm512_add_ps(a2, ld(p + i + 128)); a3 = _mm512_add_ps(a3, ld(p + i + 192)); COMP }
  } else {
    for (size_t b = b0; b < b1; b++) {
      const char* k = kc + (size_t)phys[b] * BLK;
      const char* v = vc + (size_t)phys[b] * BLK;
      const char* nk = b + 1 < b1 ? kc + (size_t)phys[b + 1] * BLK : nullptr;
      const char* nv = b + 1 < b1 ? vc + (size_t)phys[b + 1] * BLK : nullptr;
      if (pat == 10 || pat == 11) {
        for (int c = 0; c < 2; c++) {
          const char* p = c ? v : k;
          for (size_t i = 0; i < BLK; i += 256) {
            if (pat == 10 && nk && c == 0) { for (int l = 0; l < 256; l += 64) { __builtin_prefetch(nk + i + l, 0, 2); __builtin_prefetch(nv + i + l, 0, 2); } }
            if (pat == 11) { const char* q = c == 0 ? v : nk; if (q) for (int l = 0; l < 256; l += 64) __builtin_prefetch(q + i + l, 0, 2); }
            a0 = _mm512_add_ps(a0, ld(p + i)); a1 = _mm512_add_ps(a1, ld(p + i + 64)); a2 = _mm512_add_ps(a2, ld(p + i + 128)); a3 = _mm512_add_ps(a3, ld(p + i + 192)); COMP
          }
        }
      } else if (pat == 1 || pat == 3 || pat == 4) {
        for (int c = 0; c < 2; c++) {
          const char* p = c ? v : k;
          for (size_t i = 0; i < BLK; i += 256) {
            if (pat == 3 && nk) { const char* q = c ? nv : nk; __builtin_prefetch(q + i, 0, 2); __builtin_prefetch(q + i + 64, 0, 2); __builtin_prefetch(q + i + 128, 0, 2); __builtin_prefetch(q + i + 192, 0, 2);}
            if (pat == 4 && nk && (i & 4095) == 0) { const char* q = c ? nv : nk; __builtin_prefetch(q + i, 0, 2); __builtin_prefetch(q + i + 64, 0, 2); }
            a0 = _mm512_add_ps(a0, ld(p + i)); a1 = _mm512_add_ps(a1, ld(p + i + 64)); a2 = _mm512_add_ps(a2, ld(p + i + 128)); a3 = _mm512_add_ps(a3, ld(p + i + 192)); COMP
          }
        }
      } else if (pat == 2 || pat == 6 || pat == 7) {
        for (size_t i = 0; i < BLK; i += 128) {
          if (pat == 6 && nk) { __builtin_prefetch(nk + i, 0, 2); __builtin_prefetch(nk + i + 64, 0, 2); __builtin_prefetch(nv + i, 0, 2); __builtin_prefetch(nv + i + 64, 0, 2); }
          if (pat == 7 && nk && (i & 4095) == 0) { __builtin_prefetch(nk + i, 0, 2); __builtin_prefetch(nv + i, 0, 2); }
          a0 = _mm512_add_ps(a0, ld(k + i)); a1 = _mm512_add_ps(a1, ld(k + i + 64)); a2 = _mm512_add_ps(a2, ld(v + i)); a3 = _mm512_add_ps(a3, ld(v + i + 64)); COMP
        }
      } else if (pat >= 12 && pat <= 16) {
        // head-major demand order (the kernel's), next-block prefetch variants
        const char* pk = pat == 15 ? (b + 2 < b1 ? kc + (size_t)phys[b + 2] * BLK : nullptr) : nk;
        const char* pv = pat == 15 ? (b + 2 < b1 ? vc + (size_t)phys[b + 2] * BLK : nullptr) : nv;
        if ((pat == 13 || pat == 14) && nk)
          for (size_t o = 0; o < BLK; o += 4096) { __builtin_prefetch(nk + o, 0, 2); __builtin_prefetch(nv + o, 0, 2); __builtin_prefetch(nk + o + 64, 0, 2); __builtin_prefetch(nv + o + 64, 0, 2); }
        if (pat == 16 && b + 2 < b1) {
          const char* qk = kc + (size_t)phys[b + 2] * BLK; const char* qv = vc + (size_t)phys[b + 2] * BLK;
          for (size_t o = 0; o < BLK; o += 4096) { __builtin_prefetch(qk + o, 0, 2); __builtin_prefetch(qv + o, 0, 2); }
        }
        if (pat == 15 && b == b0 && nk) for (size_t o = 0; o < BLK; o += 64) { __builtin_prefetch(nk + o, 0, 2); __builtin_prefetch(nv + o, 0, 2); }
        size_t line = 0;
        for (int h = 0; h < 8; h++)
          for (int c = 0; c < 2; c++) {
            const char* p = c ? v : k;
            for (int tok = 0; tok < 16; tok++) {
              const char* r = p + tok * 2048 + h * 256;
              if (pat != 14 && pk) { __builtin_prefetch(pk + line, 0, 2); __builtin_prefetch(pv + line, 0, 2); __builtin_prefetch(pk + line + 64, 0, 2); __builtin_prefetch(pv + line + 64, 0, 2); line += 128; }
              a0 = _mm512_add_ps(a0, ld(r)); a1 = _mm512_add_ps(a1, ld(r + 64)); a2 = _mm512_add_ps(a2, ld(r + 128)); a3 = _mm512_add_ps(a3, ld(r + 192)); COMP
            }
          }
      } else if (pat == 5 || pat == 8 || pat == 9) {
        if (pat == 9) { k = kc; v = vc; }
        for (int h = 0; h < 8; h++)
          for (int c = 0; c < 2; c++) {
            const char* p = c ? v : k;
            for (int tok = 0; tok < 16; tok++) {
              const char* r = p + tok * 2048 + h * 256;
              if (pat == 8 && nk) { const char* q = (c ? nv : nk) + (h * 16 + tok) * 256; __builtin_prefetch(q, 0, 2); __builtin_prefetch(q + 64, 0, 2); __builtin_prefetch(q + 128, 0, 2); __builtin_prefetch(q + 192, 0, 2); }
              a0 = _mm512_add_ps(a0, ld(r)); a1 = _mm512_add_ps(a1, ld(r + 64)); a2 = _mm512_add_ps(a2, ld(r + 128)); a3 = _mm512_add_ps(a3, ld(r + 192)); COMP
            }
          }
      }
    }
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3))) + _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(c0,c1),_mm512_add_ps(c7,c2)));
}
int main(int argc, char** argv) {
  FM = getenv("FM") ? atoi(getenv("FM")) : 0;
  int T = argc > 1 ? atoi(argv[1]) : 2;
  int huge = argc > 2 ? atoi(argv[2]) : 0;
  size_t pool = (size_t)NB * BLK;
  kc = (char*)aligned_alloc(4096, pool); vc = (char*)aligned_alloc(4096, pool); seqb = (char*)aligned_alloc(4096, 2 * pool);
  for (char* p : {kc, vc, seqb}) { madvise(p, p == seqb ? 2 * pool : pool, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE); }
  memset(kc, 1, pool); memset(vc, 1, pool); memset(seqb, 1, 2 * pool);
  std::vector<char> flush(1 << 30);
  phys.resize(NB); for (int i = 0; i < NB; i++) phys[i] = i;
  std::mt19937 rng(1); std::shuffle(phys.begin(), phys.end(), rng);
  const char* names[] = {"seq ceiling", "K then V per block", "K/V interleaved", "KthenV + pf next all", "KthenV + pf page heads", "head-major", "interleaved + pf all", "interleaved + pf page heads", "head-major + pf all", "compute only (cached)", "KthenV, pf K+V next during K", "KthenV, pf V during K, K next during V",
                         "head-major + pf next K/V paired", "12 + page heads next at start", "head-major + page heads only", "12 two blocks ahead", "12 + page heads 2 ahead"};
  std::vector<int> pats;
  for (int i = 3; i < argc; i++) pats.push_back(atoi(argv[i]));
  if (pats.empty()) pats = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  int reps = getenv("REPS") ? atoi(getenv("REPS")) : 7;
  bool fl = getenv("FLUSH") && atoi(getenv("FLUSH"));
  std::vector<std::vector<double>> res(17);
  for (int rep = 0; rep < reps; rep++)
    for (int pat : pats) {
      if (fl) memset(flush.data(), rep, flush.size());
      auto t0 = std::chrono::steady_clock::now();
      std::vector<std::thread> th; std::vector<float> s(T);
      for (int t = 0; t < T; t++) th.emplace_back([&, t] { s[t] = work(pat, t, T); });
      for (auto& x : th) x.join();
      double ms = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() * 1e3;
      res[pat].push_back(ms); if (s[0] == 12345) printf("x");
    }
  for (int pat : pats) { auto v = res[pat]; std::sort(v.begin(), v.end());
    printf("%-28s median %6.2f ms (%6.2f .. %6.2f)  %6.2f GB/s\n", names[pat], v[v.size()/2], v[0], v.back(), 2 * pool / v[v.size()/2] / 1e6); }
}
