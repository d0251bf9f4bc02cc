// Memory probe (not built with the addon): reads the K and V slices of one Quest-sparse decode step in
// HND (B*N*k random 4 KiB slices per cache, page-aligned pools, 2 threads, 1 GiB flush per pass), with I
// slices read interleaved (line by line round robin) and the first line of the slices A ahead touched.
// Build: g++ -O2 -mavx512f -std=c++17 -pthread slice_probe.cpp -o /tmp/slice_probe
// Run:   /tmp/slice_probe <hugepages 0|1> I A [I A ...]
#include <immintrin.h>
#include <sys/mman.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>
#include <vector>
int main(int argc, char** argv) {
  const int B = 4, N = 8, D = 128, bs = 16, L = 2048, k = 128, es = 2;
  const size_t blk = (size_t)bs * N * D * es, pool = (size_t)B * L * blk;
  const bool huge = atoi(argv[1]);
  std::vector<std::pair<int,int>> modes;  // (interleave, ahead)
  for (int a = 2; a + 1 < argc; a += 2) modes.push_back({atoi(argv[a]), atoi(argv[a + 1])});
  char* kc = (char*)mmap(nullptr, pool + (2 << 20), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  char* vc = (char*)mmap(nullptr, pool + (2 << 20), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  kc = (char*)(((uintptr_t)kc + (2 << 20) - 1) & ~((uintptr_t)(2 << 20) - 1));
  vc = (char*)(((uintptr_t)vc + (2 << 20) - 1) & ~((uintptr_t)(2 << 20) - 1));
  if (huge) { madvise(kc, pool, MADV_HUGEPAGE); madvise(vc, pool, MADV_HUGEPAGE); }
  memset(kc, 1, pool); memset(vc, 1, pool);
  std::vector<char> flush(1u << 30);
  std::mt19937 rng(1);
  std::vector<int> phys(B * L);
  for (int i = 0; i < B * L; i++) phys[i] = i;
  std::shuffle(phys.begin(), phys.end(), rng);
  std::vector<size_t> off(B * N * k);  // byte offset of each slice
  std::vector<int> all(L);
  for (int bn = 0; bn < B * N; bn++) {
    for (int j = 0; j < L; j++) all[j] = j;
    std::shuffle(all.begin(), all.end(), rng);
    std::sort(all.begin(), all.begin() + k);
    for (int i = 0; i < k; i++) off[bn * k + i] = (size_t)phys[(bn / N) * L + all[i]] * blk + (size_t)(bn % N) * bs * D * es;
  }
  const int T = 2;
  const size_t slice = (size_t)bs * D * es;  // 4096
  std::atomic<int> go{0}, fin{0};
  int cur_mode = 0;
  float sums[T];
  auto worker = [&](int t, int gen) {
    const int I = modes[cur_mode].first, A = modes[cur_mode].second;
    __m512 acc = _mm512_setzero_ps();
    const int n = B * N * k / T;
    const size_t* o = off.data() + (size_t)t * n;
    for (int s0 = 0; s0 < n; s0 += I) {
      const int ni = std::min(I, n - s0);
      if (A) for (int a = 0; a < ni; a++) if (s0 + A + a < n) {
        _mm_prefetch(kc + o[s0 + A + a], _MM_HINT_T1); _mm_prefetch(vc + o[s0 + A + a], _MM_HINT_T1);
      }
      for (size_t c = 0; c < slice; c += 64)
        for (int a = 0; a < ni; a++) {
          acc = _mm512_add_ps(acc, _mm512_loadu_ps(kc + o[s0 + a] + c));
          acc = _mm512_add_ps(acc, _mm512_loadu_ps(vc + o[s0 + a] + c));
        }
    }
    sums[t] = _mm512_reduce_add_ps(acc);
  };
  std::vector<std::vector<double>> times(modes.size());
  for (int r = 0; r < 9; r++)
    for (size_t m = 0; m < modes.size(); m++) {
      memset(flush.data(), r + m, flush.size());
      cur_mode = m;
      auto t0 = std::chrono::steady_clock::now();
      std::thread th(worker, 1, 0);
      worker(0, 0);
      th.join();
      times[m].push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
  for (size_t m = 0; m < modes.size(); m++) {
    std::sort(times[m].begin(), times[m].end());
    printf("huge=%d interleave=%d ahead=%d: median %.2f ms (%.2f-%.2f) %.1f GB/s [%g]\n", huge, modes[m].first, modes[m].second, times[m][4], times[m][0], times[m][8],
           2.0 * B * N * k * slice / times[m][4] / 1e6, sums[0] + sums[1]);
  }
}
