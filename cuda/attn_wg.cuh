// Paged attention for multi-query and chunked prefill on Hopper warpgroup MMA (sm_90a wgmma): a
// thread block owns M = 128 packed query rows (query token x query head of one KV group, so each
// K/V tile is read once per group) and walks all visible keys in tiles of 64 (32 at headDim 256).
// Warp-specialized: a producer warpgroup resolves each tile's rows through the block table (any
// blockSize, NHD or HND) and copies K and V with cp.async into 128-byte-swizzled shared memory;
// two compute warpgroups of 64 rows each, handed the stages through mbarriers (no block-wide
// barrier per tile, so they run out of step), compute S = Q K^T and O += P V with wgmma (P from
// registers: the S accumulators re-packed; V N-major) and the online softmax in f32, base 2. Block
// selection and short calls take attn_tc.cuh / attn_decode.cuh (this kernel has no KV splits).
#pragma once
#include <cstdlib>

#include "attn_common.cuh"
#include "wgmma.cuh"

#ifndef SA_WG_FAST
// Full tiles exponentiate against the running max first (see the loop). OFF: the first version
// (GPU runs S7-S10: 1.359 ms against 1.469 on the prefill bench) decided its fallback per warp and
// hung the warpgroup's wgmma when warps disagreed (S15, the kRamp cases); the warpgroup-voted fix
// below compiles but has not run on a GPU yet. Verify with gpu_wg.sh abl WG_BUILDS="fast:-DSA_WG_FAST=1"
// WG_SWEEP=fast before turning it on.
#define SA_WG_FAST 0
#endif
#ifndef SA_WG_ABL
#define SA_WG_ABL 0  // timing ablations (wrong results): 8 no K/V copies, 16 no softmax, 32 no wgmma
#endif

namespace select_attn::cuda {

template <int D>
struct WgCfg {
  static constexpr int kWG = 2;                       // compute warpgroups, 64 packed rows each
  static constexpr int kThreads = 128 * (kWG + 1);    // + the producer warpgroup
  static constexpr int M = 64 * kWG;                  // packed query rows per thread block
  // Keys per tile. 96 and 128 were measured slower at headDim 128 (S, P, O and the operands of
  // both GEMMs no longer fit the 232 registers; 2.25 / 2.19 ms against 1.52 on the prefill bench).
  static constexpr int TN = D >= 256 ? 32 : 64;
  // K/V stages: the producer fills up to STAGES - 2 ahead while one tile is in S and one in P V
  // (6 stages with 3 copy groups in flight measured no faster).
  static constexpr int STAGES = D >= 256 ? 4 : 5;
  static constexpr int LAG = 2;                       // copy groups a producer thread keeps in flight
  static constexpr int Q_BYTES = M * D * 2;
  static constexpr int TILE_BYTES = TN * D * 2;
  static constexpr int STAGE_BYTES = 2 * TILE_BYTES;  // K and V
  static constexpr int SMEM = 1024 + Q_BYTES + STAGES * STAGE_BYTES;  // + 1 KB to align the swizzle atoms
  static_assert(D % 64 == 0, "rows are whole 128-byte swizzle lines");
  // Tile t is marked loaded once tile t + LAG is issued, while the consumers may still hold t - 1.
  static_assert(LAG <= STAGES - 2, "the producer must be able to run LAG tiles ahead");
};

// Byte offset of 16-byte chunk c of row r in a tile of R rows stored as D/64 slabs of [R][128 B]
// with the 128-byte swizzle (chunk ^ row % 8), the layout wgmma's SWIZZLE_128B descriptors name.
__device__ __forceinline__ uint32_t wg_off(int R, int r, int c) {
  return (uint32_t)((c >> 3) * (R * 128) + r * 128 + (((c & 7) ^ (r & 7)) << 4));
}

// Named barriers 1 and 2 order the two compute warpgroups' GEMM issue (ping-pong): 256 threads,
// one warpgroup syncing, the other arriving.
__device__ __forceinline__ void named_sync(int id) { asm volatile("bar.sync %0, 256;\n" ::"r"(id) : "memory"); }
__device__ __forceinline__ void named_arrive(int id) { asm volatile("bar.arrive %0, 256;\n" ::"r"(id) : "memory"); }

// Whether x holds for any thread of this warpgroup (named barrier id over its 128 threads; all of
// them must reach it).
__device__ __forceinline__ bool wg_any(bool x, int id) {
  int r;
  asm volatile(
      "{\n.reg .pred p, q;\nsetp.ne.u32 q, %1, 0;\nbar.red.or.pred p, %2, 128, q;\nselp.u32 %0, 1, 0, p;\n}\n"
      : "=r"(r)
      : "r"((int)x), "r"(id)
      : "memory");
  return r != 0;
}

// Shared-memory matrix descriptor, 128-byte swizzle (PTX "matrix-descriptor-encode").
__device__ __forceinline__ uint64_t wg_desc(uint32_t saddr, uint32_t lbo, uint32_t sbo) {
  return (uint64_t)((saddr & 0x3FFFF) >> 4) | ((uint64_t)((lbo >> 4) & 0x3FFF) << 16) |
         ((uint64_t)((sbo >> 4) & 0x3FFF) << 32) | (1ull << 62);
}

__device__ __forceinline__ void wg_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wg_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wg_wait() { asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory"); }
// Keeps the compiler from touching (or reusing) a wgmma's registers before the wgmma has completed.
template <int N>
__device__ __forceinline__ void wg_fence_regs(float* d) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(d[i])::"memory");
}
template <int N>
__device__ __forceinline__ void wg_fence_regs(uint32_t* d) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+r"(d[i])::"memory");
}
__device__ __forceinline__ float fast_exp2(float x) {  // ex2.approx.ftz: exp2(-inf) = 0
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}
// Makes this thread's generic-proxy shared-memory writes (st.shared, cp.async) visible to wgmma.
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
__device__ __forceinline__ void mbar_init(uint64_t* bar, int count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_u32(bar)), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint64_t* bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smem_u32(bar)) : "memory");
}
__device__ __forceinline__ void mbar_wait(uint64_t* bar, int parity) {
  asm volatile(
      "{\n.reg .pred P1;\nWAIT:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 P1, [%0], %1;\n"
      "@!P1 bra WAIT;\n}\n" ::"r"(smem_u32(bar)),
      "r"(parity)
      : "memory");
}

// Grid: (query tiles of M packed rows, B * head groups); block: 384 threads (2 compute warpgroups,
// then the producer warpgroup). Dynamic shared memory: WgCfg::SMEM (Q tile, then STAGES x (K tile,
// V tile)).
template <class T, int D>
__global__ void __launch_bounds__(WgCfg<D>::kThreads, 1) attn_wg_kernel(PagedAttentionParams p, AttnPlan plan, DevError* err) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using C = WgCfg<D>;
  // Per stage: the tile's masks and the stage's barriers. They are static shared memory, whose size
  // tells the host that this body was compiled (an sm_80 or sm_90 build has an empty kernel).
  __shared__ int sKpos[C::STAGES][C::TN];    // key position of each row, -1 = masked (zero-filled row)
  __shared__ unsigned sBad[C::STAGES][4];    // per producer warp: a ballot of its masked rows
  __shared__ uint64_t full_bar[C::STAGES];   // the stage's tile has landed (128 producer arrivals)
  __shared__ uint64_t empty_bar[C::STAGES];  // the stage's tile is no longer read (8 compute warps)
  extern __shared__ unsigned char smem_raw[];
  const uint32_t raw_a = smem_u32(smem_raw);
  unsigned char* smem = smem_raw + (((raw_a + 1023u) & ~1023u) - raw_a);
  unsigned char* sQ = smem;
  unsigned char* pipe = smem + C::Q_BYTES;
  const uint32_t sQa = smem_u32(sQ), pipe_a = smem_u32(pipe);

  const int tid = threadIdx.x, lane = tid & 31, wg = tid >> 7, warp = (tid >> 5) & 3;
  const int qtile = gridDim.x - 1 - blockIdx.x;  // heaviest (latest) query tiles first
  const int b = blockIdx.y / plan.head_groups, hg = blockIdx.y % plan.head_groups;
  const int H = p.num_qo_heads, N = p.num_kv_heads, G = H / N, hp = plan.hp;
  const int h0 = hg * hp, n = h0 / G;
  const bool reporter = blockIdx.x == 0 && hg == 0 && tid == 0;

  const SeqInfo s = seq_info(p, b, reporter, err);
  if (!s.ok) return;
  const int rows = s.qlen * hp;
  const int r0 = qtile * C::M;
  if (r0 >= rows) return;
  const int64_t first_q = s.len - s.qlen;
  const int i_lo = r0 / hp, i_hi = min(rows - 1, r0 + C::M - 1) / hp;
  const KeyRange kr = key_range(p, s.len, first_q + i_lo, first_q + i_hi, C::TN);
  const int ntiles = (int)kr.count();  // keys < 2^31

  // ---- Q tile: rows r -> (token r / hp, head h0 + r % hp); rows past the sequence are zero ----
  for (int idx = tid; idx < C::M * (D / 8); idx += C::kThreads) {
    const int r = idx / (D / 8), c = idx % (D / 8);
    const int rr = r0 + r;
    uint4 v = make_uint4(0, 0, 0, 0);
    if (rr < rows) {
      const int64_t qrow = s.qstart + rr / hp;
      v = *reinterpret_cast<const uint4*>(static_cast<const T*>(p.q) + (qrow * H + h0 + rr % hp) * D + c * 8);
    }
    *reinterpret_cast<uint4*>(sQ + wg_off(C::M, r, c)) = v;
  }

  const T* kc = static_cast<const T*>(p.k_cache);
  const T* vc = static_cast<const T*>(p.v_cache);
  const int bs = p.block_size;
  const int32_t* table = p.block_tables + (int64_t)b * p.max_blocks_per_seq;

  // ---- stage barriers, then the roles split ----
  if (tid == 0) {
    for (int i = 0; i < C::STAGES; ++i) {
      mbar_init(&full_bar[i], 128);  // every producer thread, once its copies of the tile landed
      mbar_init(&empty_bar[i], 8);   // every compute warp, once its P V of the tile finished
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();  // Q tile written, barriers initialized; no block-wide barrier after this
  if (wg == 2) {
    // ---- producer warpgroup: for tile t (stage t % STAGES) wait until the stage is free, resolve
    // its rows (table entry loaded one tile ahead), write the masks, copy K and V, and mark tile
    // t - LAG loaded once its copies have landed (cp.async wait, then the proxy fence, so wgmma
    // sees them).
    asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n" ::: "memory");
    // (TMA loads of the tiles without masked rows, through tensor maps over the pools, were built
    // and passed the sweep but were 1% slower on the prefill bench: 1.510 vs 1.494 ms; commit a98e5ef.)
    // Warp w copies tile rows [w * RPW, (w + 1) * RPW): lane i < RPW resolves row w * RPW + i, and
    // each copy instruction takes whole rows (consecutive lanes on consecutive 16-byte chunks; with
    // two lanes per row and a row's chunks spread over 8 instructions the prefill bench took 1.66
    // instead of 1.55 ms: each instruction touched 16 rows).
    constexpr int RPW = C::TN / 4;
    constexpr int CPASS = RPW * (D / 8) / 32;  // copy instructions per warp and tile, for K and for V
    constexpr int LAG = C::LAG;
    const int ptid = tid - 256, pwarp = ptid >> 5;
    const bool resolver = lane < RPW;
    const int r = pwarp * RPW + (resolver ? lane : 0);
    auto row_pos = [&](int t) -> int {
      if (t >= ntiles) return -1;
      const int64_t pos = kr.unit(t) * C::TN + r;
      return pos < s.len ? (int)pos : -1;
    };
    int posN = row_pos(0);
    int blkN = posN >= 0 ? table[posN / bs] : -1;
    for (int t = 0; t < ntiles; ++t) {
      const int st = t % C::STAGES;
      if (t >= C::STAGES) mbar_wait(&empty_bar[st], ((t / C::STAGES) - 1) & 1);
      int pos = posN;
      const int blk = blkN;
      posN = row_pos(t + 1);
      blkN = posN >= 0 ? table[posN / bs] : -1;
      int64_t off = -1;
      if (!resolver) pos = INT32_MAX;
      if (pos >= 0 && pos != INT32_MAX) {
        if (blk < 0 || blk >= p.num_blocks) {
          report(err, kErrTableId, kFamPagedAttention, kTabBlock, b, pos / bs, 0, blk, p.num_blocks);
          pos = -1;
        } else {
          off = paged_off(p.layout, blk, pos % bs, n, bs, N, D);
        }
      }
      if (resolver) sKpos[st][r] = pos;
      const unsigned badrows = __ballot_sync(0xffffffffu, pos < 0);  // resolving lanes only (others INT32_MAX)
      if (lane == 0) sBad[st][pwarp] = badrows;
      unsigned char* kd = pipe + st * C::STAGE_BYTES;
      unsigned char* vd = kd + C::TILE_BYTES;
#pragma unroll
      for (int k = 0; k < CPASS; ++k) {
        const int idx = k * 32 + lane, rl = idx / (D / 8), c = idx % (D / 8);
        const int64_t o = __shfl_sync(0xffffffffu, off, rl);
        if (SA_WG_ABL & 8) continue;
        const int row = pwarp * RPW + rl;
        const int64_t src = o < 0 ? 0 : o + c * 8;
        cp_async16(kd + wg_off(C::TN, row, c), kc + src, o < 0 ? 0 : 16);
        cp_async16(vd + wg_off(C::TN, row, c), vc + src, o < 0 ? 0 : 16);
      }
      cp_async_commit();
      if (t >= LAG) {
        cp_async_wait<LAG>();
        fence_proxy_async();
        mbar_arrive(&full_bar[(t - LAG) % C::STAGES]);
      }
    }
    cp_async_wait<0>();
    fence_proxy_async();
    for (int t = max(0, ntiles - LAG); t < ntiles; ++t) mbar_arrive(&full_bar[t % C::STAGES]);
    return;
  }
  // Compute warpgroups: the registers the producer gave up (setmaxnreg.dec 40) become theirs
  // (128 x 40 + 256 x 232 = 384 x 168, the launch's allocation).
  asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n" ::: "memory");

  // ---- per-thread rows g and g + 8 of its warp's 16 ----
  const int g = lane >> 2, cq = lane & 3;
  const int wrow = wg * 64 + warp * 16;  // first row of this warp in the tile
  int qpos[2], head[2];
#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    const int rr = r0 + wrow + g + hr * 8;
    qpos[hr] = (int)first_q + rr / hp;
    head[hr] = h0 + rr % hp;
  }
  const int qmin = (int)first_q + (r0 + wrow) / hp;  // earliest query position among the warp's rows
  float o[D / 2];
#pragma unroll
  for (int i = 0; i < D / 2; ++i) o[i] = 0.f;
  constexpr int NS = C::TN / 2;   // S accumulators per thread
  constexpr int KB = C::TN / 16;  // k16 steps of P V
  float sc[NS];
#pragma unroll
  for (int i = 0; i < NS; ++i) sc[i] = 0.f;
  uint32_t pa[KB][4];  // P of the previous tile, the A operand of its P V
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.f, 0.f};
  const bool plain = !(p.softcap > 0.f) && !p.maybe_alibi_slopes && p.sliding_window == 0;
  const bool upper = p.causal || p.sliding_window > 0;
  const float c2 = p.scale * kLog2e;
  const bool fold = c2 > 0.f;  // full tiles: the scale goes into the exponent's FMA (c2 > 0 keeps the max)

  // Q as the A operand: in registers for headDim <= 128 (loaded once; each S wgmma then reads only K
  // from shared memory, which at TN = 64 is the limit: A and B from shared memory would need the
  // full 128 B/cycle), else from shared memory through a descriptor (registers run out at 256).
  constexpr bool kQReg = D <= 128;
  uint32_t qa[kQReg ? D / 16 : 1][4];
  if constexpr (kQReg) {
    const int mi = lane >> 3, ri = lane & 7;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk)
      ldmatrix_x4(qa[kk], sQ + wg_off(C::M, wrow + ri + (mi & 1) * 8, kk * 2 + (mi >> 1)));
  }
  const uint64_t q_desc0 = wg_desc(sQa + wg * 64 * 128, 16, 1024);
  auto rescale = [&](const float* a) {
    if (__any_sync(0xffffffffu, a[0] != 1.f || a[1] != 1.f)) {  // the running max moved
#pragma unroll
      for (int i = 0; i < D / 8; ++i) {
        o[i * 4 + 0] *= a[0];
        o[i * 4 + 1] *= a[0];
        o[i * 4 + 2] *= a[1];
        o[i * 4 + 3] *= a[1];
      }
    }
  };
  auto issue_s = [&](int u) {  // S = Q K^T for tile u
    const uint32_t k_a = pipe_a + (uint32_t)(u % C::STAGES) * C::STAGE_BYTES;
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < ((SA_WG_ABL & 32) ? 0 : D / 16); ++kk) {
      const uint32_t koff = (uint32_t)(kk & 3) * 32u;  // k16 step inside a 128-byte line
      const uint64_t db = wg_desc(k_a + (kk >> 2) * (C::TN * 128) + koff, 16, 1024);
      if constexpr (kQReg) {
        wgmma_rsk<T, C::TN>(sc, qa[kk], db, kk > 0 ? 1 : 0);
      } else {
        const uint64_t da = q_desc0 + (((uint64_t)((kk >> 2) * C::M * 128) + koff) >> 4);
        wgmma_ss<T, C::TN>(sc, da, db, kk > 0 ? 1 : 0);
      }
    }
    wg_commit();
  };
  auto issue_pv = [&](int u) {  // O += P V for tile u (P in pa)
    const uint32_t v_a = pipe_a + (uint32_t)(u % C::STAGES) * C::STAGE_BYTES + C::TILE_BYTES;
    if constexpr ((SA_WG_ABL & 32) == 0) {
#pragma unroll
      for (int kb = 0; kb < KB; ++kb) wgmma_rs<T, D>(o, pa[kb], wg_desc(v_a + kb * 16 * 128, C::TN * 128, 1024), 1);
    }
    wg_commit();
  };
  // ---- the loop. Iteration v: once tile v has landed, its S = Q K^T and tile v-1's O += P V are
  // issued together; tile v's softmax runs while the tensor cores do P V, then O is rescaled and
  // tile v-1's stage goes back to the producer.
  // Ping-pong: the warpgroups take turns issuing their GEMMs (named barriers 1 and 2), so one's
  // softmax runs under the other's GEMMs (+1% on the prefill bench).
  if (wg == 1 && ntiles > 0) named_arrive(1);  // warpgroup 0 issues first
  for (int v = 0; v < ntiles; ++v) {
    mbar_wait(&full_bar[v % C::STAGES], (v / C::STAGES) & 1);
    named_sync(1 + wg);  // my turn to issue: the other warpgroup has issued its GEMMs

    // Issue S = Q K^T (64 rows x TN keys per warpgroup), then the previous tile's P V.
    issue_s(v);
    if (v > 0) issue_pv(v - 1);
    if (v > 0) {
      wg_wait<1>();  // S done; P V may still run
    } else {
      wg_wait<0>();
    }
    // The other warpgroup's turn: its GEMMs queue behind this one's P V on the tensor cores while
    // this one runs the softmax (arriving before the wait makes ptxas serialize the wgmmas, C7514).
    if (!(wg == 1 && v == ntiles - 1)) named_arrive(2 - wg);
    wg_fence_regs<NS>(sc);

    float alpha[2] = {1.f, 1.f};
    if constexpr ((SA_WG_ABL & 16) == 0) {
    // Logits, masks, online softmax (rows g and g+8; a row's 4 owners are lanes 4g..4g+3).
    const int slot = v % C::STAGES;
    const int kb0 = (int)(kr.unit(v) * C::TN);
    unsigned bad = 0;
#pragma unroll
    for (int w = 0; w < 4; ++w) bad |= sBad[slot][w];
    const bool full = plain && bad == 0u && (!upper || kb0 + C::TN - 1 <= qmin);
    bool done = false;
    if constexpr (SA_WG_FAST != 0) {
      // Fast path: exponentiate against the running max straight away (no max pass, no shuffles).
      // It stands if every p <= 2^8 (each lane's partial row sums <= 2^8), which is exactly when the
      // lazy rule below would keep the running max. Otherwise S is computed again (K is still in its
      // stage) and the tile takes the exact path; wgmma is warpgroup-wide, so whether any warp needs
      // that is voted over the warpgroup (bar.red; a per-warp decision hung the warpgroup), and then
      // every warp of it takes the exact path.
      const bool tried = full && fold && __all_sync(0xffffffffu, m_run[0] != -INFINITY && m_run[1] != -INFINITY);
      float ls0 = 0.f, ls1 = 0.f;
      bool ok = false;
      if (tried) {
#pragma unroll
        for (int i = 0; i < NS; ++i) {
          const int hr = (i >> 1) & 1;
          const float pv = fast_exp2(fmaf(sc[i], c2, -m_run[hr]));
          sc[i] = pv;
          if (hr) ls1 += pv; else ls0 += pv;
        }
        ok = __all_sync(0xffffffffu, ls0 <= 256.f && ls1 <= 256.f);
      }
      if (wg_any(tried && !ok, 3 + wg)) {
        issue_s(v);
        wg_wait<0>();
        wg_fence_regs<NS>(sc);
      } else if (ok) {
        l_run[0] += ls0;
        l_run[1] += ls1;
        done = true;
      }
    }
    if (!done) {
    float mx[2] = {m_run[0], m_run[1]};
    float mul = 1.f;  // logit = mul * sc
    if (full && fold) {
      float rm[2] = {-INFINITY, -INFINITY};
#pragma unroll
      for (int i = 0; i < NS; ++i) rm[(i >> 1) & 1] = fmaxf(rm[(i >> 1) & 1], sc[i]);
      mx[0] = fmaxf(mx[0], rm[0] * c2);
      mx[1] = fmaxf(mx[1], rm[1] * c2);
      mul = c2;
    } else if (full) {
#pragma unroll
      for (int i = 0; i < NS; ++i) {
        sc[i] *= c2;
        mx[(i >> 1) & 1] = fmaxf(mx[(i >> 1) & 1], sc[i]);
      }
    } else {
#pragma unroll
      for (int j = 0; j < NS / 4; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int hr = e >> 1;
          const int kp = sKpos[slot][j * 8 + 2 * cq + (e & 1)];
          const float x = sc[j * 4 + e];
          const float y = plain ? ((kp >= 0 && (!upper || kp <= qpos[hr])) ? x * c2 : -INFINITY) : logit2(p, x, kp, qpos[hr], head[hr]);
          sc[j * 4 + e] = y;
          mx[hr] = fmaxf(mx[hr], y);
        }
      }
    }
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) {
      mx[hr] = fmaxf(mx[hr], __shfl_xor_sync(0xffffffffu, mx[hr], 1));
      mx[hr] = fmaxf(mx[hr], __shfl_xor_sync(0xffffffffu, mx[hr], 2));
    }
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) {
      // Lazy rescaling: the running max stays put while the tile's max exceeds it by at most 8 (so
      // p <= 2^8; l, O and lse use the same reference, so the result is unchanged) and O is rescaled
      // only on a larger jump (1.538 -> 1.512 ms on the prefill bench).
      if (m_run[hr] != -INFINITY && mx[hr] <= m_run[hr] + 8.f) mx[hr] = m_run[hr];
      const float mref = mx[hr] == -INFINITY ? 0.f : mx[hr];
      alpha[hr] = mx[hr] == m_run[hr] ? 1.f : fast_exp2(m_run[hr] - mref);  // 0 when m_run was -inf
      m_run[hr] = mx[hr];
      float ls = 0.f;
#pragma unroll
      for (int j = 0; j < NS / 4; ++j) {
        const float p0 = fast_exp2(fmaf(sc[j * 4 + 2 * hr], mul, -mref));
        const float p1 = fast_exp2(fmaf(sc[j * 4 + 2 * hr + 1], mul, -mref));
        sc[j * 4 + 2 * hr] = p0;
        sc[j * 4 + 2 * hr + 1] = p1;
        ls += p0 + p1;
      }
      l_run[hr] = l_run[hr] * alpha[hr] + ls;
    }
    }
    }
    // The previous P V has finished: O, pa and tile v-1's stage are free.
    wg_wait<0>();
    wg_fence_regs<D / 2>(o);
    wg_fence_regs<KB * 4>(&pa[0][0]);
    if (v > 0) {
      __syncwarp();
      if (lane == 0) mbar_arrive(&empty_bar[(v - 1) % C::STAGES]);
    }
    rescale(alpha);
    // P as the A operand (the C layout of two n8 blocks is an A fragment).
#pragma unroll
    for (int kb = 0; kb < KB; ++kb) {
      pa[kb][0] = pack2<T>(sc[8 * kb + 0], sc[8 * kb + 1]);
      pa[kb][1] = pack2<T>(sc[8 * kb + 2], sc[8 * kb + 3]);
      pa[kb][2] = pack2<T>(sc[8 * kb + 4], sc[8 * kb + 5]);
      pa[kb][3] = pack2<T>(sc[8 * kb + 6], sc[8 * kb + 7]);
    }
  }
  if (ntiles > 0) {  // the last tile's P V
    wg_fence();
    issue_pv(ntiles - 1);
    wg_wait<0>();
    wg_fence_regs<D / 2>(o);
    wg_fence_regs<KB * 4>(&pa[0][0]);
  }

  // ---- epilogue: normalized rows straight from the accumulators ----
#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    l_run[hr] += __shfl_xor_sync(0xffffffffu, l_run[hr], 1);
    l_run[hr] += __shfl_xor_sync(0xffffffffu, l_run[hr], 2);
  }
  T* out = static_cast<T*>(p.out);
#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    const int rr = r0 + wrow + g + hr * 8;
    if (rr >= rows) continue;
    const float lse2 = (m_run[hr] == -INFINITY || l_run[hr] <= 0.f) ? -INFINITY : m_run[hr] + log2f(l_run[hr]);
    float lse;
    const float f = final_scale(p, head[hr], lse2, &lse) * (lse2 == -INFINITY ? 0.f : 1.f / l_run[hr]);
    const int64_t qrow = s.qstart + rr / hp;
    T* orow = out + (qrow * H + head[hr]) * D;
#pragma unroll
    for (int i = 0; i < D / 8; ++i)
      *reinterpret_cast<uint32_t*>(orow + i * 8 + 2 * cq) = pack2<T>(o[i * 4 + 2 * hr] * f, o[i * 4 + 2 * hr + 1] * f);
    if (cq == 0 && p.maybe_lse) p.maybe_lse[qrow * H + head[hr]] = lse;
  }
#endif
}

// Whether the Hopper kernel runs this call, and the launch. It needs the sm_90a body (a build
// with 90a in SA_CUDA_ARCHS, running on sm_90), q and KV of one 16-bit dtype, headDim 64/128/256,
// no block selection, and at least one full wave of thread blocks (it has no KV splits; smaller
// calls keep the split-KV kernel). SA_CUDA_WG=0 turns it off, SA_CUDA_WG=1 takes it whenever
// it can run (tests use both).
template <class T, int D>
Status launch_wg_shape(const PagedAttentionParams& p, const Launch& l, const AttnPlan& plan, bool* taken) {
  using C = WgCfg<D>;
  auto kern = attn_wg_kernel<T, D>;
  static int state = 0;  // 0 unknown, 1 usable, -1 not compiled for this device / too little shared memory
  *taken = false;
  if (state == 0) {
    cudaFuncAttributes attr{};
    int dev = 0, major = 0;
    state = -1;
    if (cudaGetDevice(&dev) == cudaSuccess && cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess &&
        major == 9 && cudaFuncGetAttributes(&attr, kern) == cudaSuccess && attr.sharedSizeBytes > 0 &&
        C::SMEM + (int)attr.sharedSizeBytes <= l.smem_optin &&
        cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, C::SMEM) == cudaSuccess)
      state = 1;
    cudaGetLastError();  // a refused query leaves no sticky error behind
  }
  const char* env = std::getenv("SA_CUDA_WG");
  if (state != 1 || (env && env[0] == '0') || p.maybe_block_selection) return Status::Ok();

  const int64_t qtiles = ((int64_t)p.max_q_len * plan.hp + C::M - 1) / C::M;
  const int64_t ys = (int64_t)p.num_seqs * plan.head_groups;
  if (!(env && env[0] == '1') && qtiles * ys < l.num_sms) return Status::Ok();
  SA_RETURN_IF_ERROR(check_grid("paged_attention", qtiles, ys, 1));
  *taken = true;
  kern<<<dim3((unsigned)qtiles, (unsigned)ys, 1), C::kThreads, C::SMEM, l.stream>>>(p, plan, l.err);
  SA_CUDA_LAUNCH_CHECK();
  return Status::Ok();
}

// Runs the call on the Hopper kernel when it can take it (*taken), see launch_wg_shape.
template <class T>
Status launch_wg(const PagedAttentionParams& p, const Launch& l, const AttnPlan& plan, bool* taken) {
  *taken = false;
  if ((int64_t)p.max_q_len * plan.hp <= 16) return Status::Ok();  // decode: attn_decode.cuh
  switch (p.head_dim) {
    case 64: return launch_wg_shape<T, 64>(p, l, plan, taken);
    case 128: return launch_wg_shape<T, 128>(p, l, plan, taken);
    case 256: return launch_wg_shape<T, 256>(p, l, plan, taken);
    default: return Status::Ok();
  }
}

}  // namespace select_attn::cuda
