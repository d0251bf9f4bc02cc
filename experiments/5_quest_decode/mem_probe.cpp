// Memory-system probe for the quest_decode profile (not part of the addon): reads exactly the K/V rows
// one Quest-sparse decode step reads (B*N*k (block, KV head) slices of 16 tokens x 128 bf16 from two
// 269 MB paged pools with shuffled block ids), NHD (16 rows of 256 B at a 2 KB stride) against HND (one
// 4 KB run), 4 KiB pages against transparent huge pages, caches flushed before every pass. No compute:
// the time is what the memory system alone needs.
// Build and run: g++ -O2 -mavx512f -std=c++17 -pthread mem_probe.cpp -o /tmp/mem_probe
//                /tmp/mem_probe <hugepages 0|1> <threads> <flush MiB (1024)> <prefetch distance in slices (0)>
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

int main(int argc, char** argv) {
  const int B = 4, N = 8, D = 128, bs = 16, L = 2048, k = 128, es = 2;  // the benchmark's shape, budget 2048
  const size_t blk = (size_t)bs * N * D * es, pool = (size_t)B * L * blk;  // bytes per block, per cache
  const bool huge = argc > 1 && atoi(argv[1]);
  const int threads = argc > 2 ? atoi(argv[2]) : 2;
  const size_t flush_mb = argc > 3 ? atoi(argv[3]) : 1024;
  const int pf = argc > 4 ? atoi(argv[4]) : 0;  // software prefetch of slice i + pf while reading slice i
  char* kc = static_cast<char*>(mmap(nullptr, pool, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  char* vc = static_cast<char*>(mmap(nullptr, pool, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (kc == MAP_FAILED || vc == MAP_FAILED) return 1;
  if (huge) {  // before the first touch, so the faults take 2 MiB pages
    madvise(kc, pool, MADV_HUGEPAGE);
    madvise(vc, pool, MADV_HUGEPAGE);
  }
  memset(kc, 1, pool);
  memset(vc, 1, pool);
  std::vector<char> flush(std::max<size_t>(64, flush_mb << 20));
  std::mt19937 rng(1);
  std::vector<int> phys(B * L);  // [B, L] physical block of each logical block
  for (int i = 0; i < B * L; i++) phys[i] = i;
  std::shuffle(phys.begin(), phys.end(), rng);
  std::vector<int> sel(B * N * k);  // [B, N, k] ascending logical blocks, as quest_select writes them
  std::vector<int> all(L);
  for (int bn = 0; bn < B * N; bn++) {
    for (int j = 0; j < L; j++) all[j] = j;
    std::shuffle(all.begin(), all.end(), rng);
    std::sort(all.begin(), all.begin() + k);
    std::copy(all.begin(), all.begin() + k, sel.begin() + bn * k);
  }
  for (int hnd = 0; hnd < 2; hnd++) {
    double checksum = 0;  // keeps the loads alive
    const int reps = 9;
    std::vector<double> times;
    for (int r = 0; r < reps; r++) {
      if (flush_mb) memset(flush.data(), r, flush.size());
      const auto t0 = std::chrono::steady_clock::now();
      std::vector<std::thread> pool_threads;
      std::vector<float> sums(threads);
      for (int t = 0; t < threads; t++)
        pool_threads.emplace_back([&, t] {
          __m512 acc = _mm512_setzero_ps();
          for (int bn = t; bn < B * N; bn += threads) {
            const int b = bn / N, n = bn % N;
            for (int i = 0; i < k; i++) {
              if (pf && i + pf < k) {
                const size_t pb = (size_t)phys[b * L + sel[bn * k + i + pf]] * blk;
                for (int row = 0; row < bs; row++) {
                  const size_t o = pb + (hnd ? ((size_t)n * bs + row) : ((size_t)row * N + n)) * D * es;
                  for (int c = 0; c < D * es; c += 64) {
                    _mm_prefetch(kc + o + c, _MM_HINT_T0);
                    _mm_prefetch(vc + o + c, _MM_HINT_T0);
                  }
                }
              }
              const size_t base = (size_t)phys[b * L + sel[bn * k + i]] * blk;
              for (int row = 0; row < bs; row++) {
                const size_t o = base + (hnd ? ((size_t)n * bs + row) : ((size_t)row * N + n)) * D * es;
                for (int c = 0; c < D * es; c += 64) {
                  acc = _mm512_add_ps(acc, _mm512_loadu_ps(kc + o + c));
                  acc = _mm512_add_ps(acc, _mm512_loadu_ps(vc + o + c));
                }
              }
            }
          }
          sums[t] = _mm512_reduce_add_ps(acc);
        });
      for (auto& th : pool_threads) th.join();
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      times.push_back(ms);
      for (float x : sums) checksum += x;
    }
    std::sort(times.begin(), times.end());
    const double bytes = 2.0 * B * N * k * bs * D * es, med = times[reps / 2];
    printf("%s hugepages=%d threads=%d prefetch=%d flush=%zu MiB: median %.2f ms (%.1f GB/s), best %.2f ms [checksum %g]\n", hnd ? "HND" : "NHD", huge,
           threads, pf, flush_mb, med, bytes / med / 1e6, times[0], checksum);
  }
  return 0;
}
