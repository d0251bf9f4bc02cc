// paged_attention benchmark (`select-attn bench paged_attention`): decode, multi-query, chunked prefill
// and Quest-sparse attention on a shuffled paged cache. bytes = KV actually read + q + out; flops =
// 4 * D * visible keys * H per query row. With peer=true, onnxruntime-node's GroupQueryAttention on a
// contiguous cache of the same shape runs in the same process when installed (skipped otherwise).
import type { BackendName } from '../../src/backends.js';
import { native } from '../../src/native.js';
import { timePagedAttention } from '../../src/ops/paged_attention.js';
import { type FloatDType, type HostTensor, dtypeSize, f32ToBf16, f32ToF16, tensor } from '../../src/tensor.js';
import type { BenchCase, BenchFamily, ParamValue } from '../../src/testing/bench.js';
import { Rng, place } from '../../src/testing/harness.js';
import { keyVisible, type AttnProblem } from './ref.js';

export interface AttnBenchParams {
  batch: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  blockSize: number;
  seqLen: number;
  qLen: number;
  dtype: FloatDType;
  kvDtype: FloatDType;
  layout: 'NHD' | 'HND';
  causal: boolean;
  slidingWindow: number;
  sinkTokens: number;
  softcap: number;
  selBlocks: number;
  /** fraction of each KV head's selection that all heads share (Quest on real attention: sinks, the
   *  local window and common needles); the rest is drawn per head */
  selShared: number;
  /** distinct physical blocks (0 = every logical block its own): a small pool stays in cache, which
   *  times the compute alone */
  poolBlocks: number;
  /** block tables in random order (default) or each sequence's blocks contiguous and in order */
  shuffle: boolean;
  /** KV caches in native memory advised for transparent huge pages (allocHost) */
  hugePages: boolean;
  peer: boolean;
}

const DEFAULTS: AttnBenchParams = {
  batch: 4, heads: 32, kvHeads: 8, headDim: 128, blockSize: 16, seqLen: 32768, qLen: 1, dtype: 'bf16', kvDtype: 'bf16',
  layout: 'NHD', causal: true, slidingWindow: 0, sinkTokens: 0, softcap: 0, selBlocks: 0, selShared: 0, poolBlocks: 0, shuffle: true, hugePages: false, peer: false,
};

/** Random values of dtype dt, fast: a 64K-element random pattern tiled with a random phase per tile. */
function fill(dt: FloatDType, n: number, rng: Rng, std = 1, hugePages = false): Float32Array | Uint16Array {
  const P = 1 << 16;
  const base = Float32Array.from({ length: P }, () => rng.normal() * std);
  const pat = dt === 'f32' ? base : dt === 'f16' ? f32ToF16(base) : f32ToBf16(base);
  const buf = hugePages ? native().allocHost(n * dtypeSize(dt), true) : undefined;
  const out = dt === 'f32' ? (buf ? new Float32Array(buf) : new Float32Array(n)) : buf ? new Uint16Array(buf) : new Uint16Array(n);
  for (let i = 0; i < n; i += P) {
    const len = Math.min(P, n - i);
    const ph = rng.int(0, P - len + 1);
    out.set((pat as Float32Array).subarray(ph, ph + len), i);
  }
  return out;
}

/** Visible key positions per query row and the distinct KV tokens read per (sequence, KV head). */
function countWork(p: AttnBenchParams, sel: Int32Array | undefined): { visiblePerRow: number; kvTokens: number } {
  const prob = { causal: p.causal, slidingWindow: p.slidingWindow, sinkTokens: p.sinkTokens } as AttnProblem;
  const L = Math.ceil(p.seqLen / p.blockSize);
  const allowed = (j: number, n: number, b: number) => {
    if (!sel) return true;
    for (let s = 0; s < p.selBlocks; s++) if (sel[(b * p.kvHeads + n) * p.selBlocks + s] === j) return true;
    return false;
  };
  let visible = 0;
  let kv = 0;
  for (let b = 0; b < p.batch; b++)
    for (let n = 0; n < p.kvHeads; n++) {
      const blocks: boolean[] = new Array<boolean>(L).fill(false);
      for (let j = 0; j < L; j++) blocks[j] = allowed(j, n, b);
      const seen = new Uint8Array(p.seqLen);
      for (let i = 0; i < p.qLen; i++) {
        const pos = p.seqLen - p.qLen + i;
        // visible keys form at most two ranges; count block by block
        for (let j = 0; j < L; j++) {
          if (!blocks[j]) continue;
          const k0 = j * p.blockSize;
          const k1 = Math.min(p.seqLen, k0 + p.blockSize);
          if (!keyVisible(prob, k0, pos, p.seqLen) && !keyVisible(prob, k1 - 1, pos, p.seqLen) && k0 > pos) continue;
          for (let kp = k0; kp < k1; kp++)
            if (keyVisible(prob, kp, pos, p.seqLen)) {
              visible += p.heads / p.kvHeads;
              seen[kp] = 1;
            }
        }
      }
      kv += seen.reduce((a, x) => a + x, 0);
    }
  return { visiblePerRow: visible, kvTokens: kv };
}

/** Inputs of one benchmark configuration (host tensors) and its byte and flop counts. */
export function benchInputs(p: AttnBenchParams, seed = 1) {
  const rng = new Rng(seed);
  const { batch: B, heads: H, kvHeads: N, headDim: D, blockSize: bs, seqLen, qLen } = p;
  const L = Math.ceil(seqLen / bs);
  const numBlocks = p.poolBlocks > 0 ? p.poolBlocks : B * L + 16;
  const ids = Array.from({ length: numBlocks }, (_, i) => i);
  if (p.shuffle) rng.shuffle(ids);
  const table = Int32Array.from({ length: B * L }, (_, i) => ids[i % numBlocks]);
  const cacheShape = p.layout === 'NHD' ? [numBlocks, bs, N, D] : [numBlocks, N, bs, D];
  const cacheN = numBlocks * bs * N * D;
  const tensors: Record<string, HostTensor> = {
    q: tensor(p.dtype, [B * qLen, H, D], fill(p.dtype, B * qLen * H * D, rng)),
    kCache: tensor(p.kvDtype, cacheShape, fill(p.kvDtype, cacheN, rng, 1, p.hugePages)),
    vCache: tensor(p.kvDtype, cacheShape, fill(p.kvDtype, cacheN, rng, 1, p.hugePages)),
    blockTables: tensor('i32', [B, L], table),
    seqLens: tensor('i32', [B], new Int32Array(B).fill(seqLen)),
    cuSeqlensQ: tensor('i32', [B + 1], Int32Array.from({ length: B + 1 }, (_, b) => b * qLen)),
    out: tensor(p.dtype, [B * qLen, H, D]),
  };
  let sel: Int32Array | undefined;
  if (p.selBlocks > 0) {
    // a Quest-like selection: first block, the last two, the rest spread at random
    sel = new Int32Array(B * N * p.selBlocks).fill(-1);
    const nShared = Math.min(L, Math.round(p.selShared * p.selBlocks));
    for (let r = 0; r < B * N; r++) {
      const b = Math.floor(r / N);
      const shared = new Rng(1000 + b);  // the same draw for every head of sequence b
      const pick = new Set<number>([0, L - 1, Math.max(0, L - 2)]);
      while (pick.size < Math.min(Math.max(nShared, 3), L)) pick.add(shared.int(0, L));
      while (pick.size < Math.min(p.selBlocks, L)) pick.add(rng.int(0, L));
      const row = [...pick].slice(0, p.selBlocks).sort((a, b) => a - b);
      sel.set(row, r * p.selBlocks);
    }
    tensors.blockSelection = tensor('i32', [B, N, p.selBlocks], sel);
  }
  const work = countWork(p, sel);
  const kvES = dtypeSize(p.kvDtype);
  const qES = dtypeSize(p.dtype);
  const bytes = work.kvTokens * D * kvES * 2 + 2 * B * qLen * H * D * qES;
  const flops = 4 * D * work.visiblePerRow;
  const options = {
    layout: p.layout, causal: p.causal,
    ...(p.slidingWindow > 0 ? { slidingWindow: p.slidingWindow } : {}),
    ...(p.sinkTokens > 0 ? { sinkTokens: p.sinkTokens } : {}),
    ...(p.softcap > 0 ? { softcap: p.softcap } : {}),
  };
  return { tensors, options, bytes, flops, kvBytes: work.kvTokens * D * kvES * 2 };
}

export function benchParams(raw: Record<string, ParamValue>): AttnBenchParams {
  return { ...DEFAULTS, ...(raw as Partial<AttnBenchParams>) };
}

export const bench: BenchFamily = {
  family: 'paged_attention',
  backends: ['cpu', 'cuda', 'ascend-sim', 'ascend', 'metal'],
  params: [
    { name: 'batch', type: 'int', default: DEFAULTS.batch, describe: 'sequences B' },
    { name: 'heads', type: 'int', default: DEFAULTS.heads, describe: 'query heads H' },
    { name: 'kvHeads', type: 'int', default: DEFAULTS.kvHeads, describe: 'KV heads N (H % N == 0)' },
    { name: 'headDim', type: 'int', default: DEFAULTS.headDim, describe: 'head dimension D' },
    { name: 'blockSize', type: 'int', default: DEFAULTS.blockSize, describe: 'tokens per KV block' },
    { name: 'seqLen', type: 'int', default: DEFAULTS.seqLen, describe: 'tokens in the cache per sequence (queries included)' },
    { name: 'qLen', type: 'int', default: DEFAULTS.qLen, describe: 'queries per sequence (1 = decode)' },
    { name: 'dtype', type: 'string', default: DEFAULTS.dtype, describe: 'q/out dtype', choices: ['f32', 'f16', 'bf16'] },
    { name: 'kvDtype', type: 'string', default: DEFAULTS.kvDtype, describe: 'KV cache dtype', choices: ['f32', 'f16', 'bf16'] },
    { name: 'layout', type: 'string', default: DEFAULTS.layout, describe: 'cache layout', choices: ['NHD', 'HND'] },
    { name: 'causal', type: 'bool', default: DEFAULTS.causal, describe: 'causal mask' },
    { name: 'slidingWindow', type: 'int', default: DEFAULTS.slidingWindow, describe: 'window W (0 = none)' },
    { name: 'sinkTokens', type: 'int', default: DEFAULTS.sinkTokens, describe: 'sink tokens S' },
    { name: 'softcap', type: 'float', default: DEFAULTS.softcap, describe: 'logit softcap (0 = none)' },
    { name: 'selBlocks', type: 'int', default: DEFAULTS.selBlocks, describe: 'Quest-sparse: selected blocks per KV head (0 = dense)' },
    { name: 'selShared', type: 'float', default: DEFAULTS.selShared, describe: 'fraction of the selection shared by all KV heads' },
    { name: 'poolBlocks', type: 'int', default: DEFAULTS.poolBlocks, describe: 'distinct physical blocks (0 = one per logical block; small = cache-resident, compute only)' },
    { name: 'shuffle', type: 'bool', default: DEFAULTS.shuffle, describe: 'block tables in random order (false: contiguous, in order)' },
    { name: 'hugePages', type: 'bool', default: DEFAULTS.hugePages, describe: 'KV caches on transparent huge pages (allocHost; the ceiling buffer gets them too)' },
    { name: 'peer', type: 'bool', default: DEFAULTS.peer, describe: 'also time onnxruntime-node GroupQueryAttention (decode, when installed)' },
  ],
  async setup(raw: Record<string, ParamValue>, backend: BackendName): Promise<BenchCase> {
    const p = benchParams(raw);
    const inp = benchInputs(p);
    const placed = place(backend, inp.tensors);
    const args = { ...(placed.args as never as Record<string, never>), ...inp.options };
    return {
      bytes: inp.bytes,
      flops: inp.flops,
      time: (reps: number) => timePagedAttention(args as never, reps, { backend }),
      extra: p.peer ? () => peerFigures(p) : undefined,
      dispose: () => placed.dispose(),
    };
  },
};

/** The onnxruntime-node peer on the same decode shape: ms per call, or a note when it cannot run. */
export async function peerFigures(p: AttnBenchParams, reps = 3): Promise<Record<string, number>> {
  const { loadOrt, ortDecode } = await import('./peer_ort.js');
  const ort = await loadOrt();
  if (!ort) {
    console.log('peer: onnxruntime-node is not installed; skipped (npm install onnxruntime-node with onnxruntime-node-install=skip)');
    return {};
  }
  if (p.qLen !== 1 || p.selBlocks > 0 || p.slidingWindow > 0 || p.softcap > 0 || !p.causal) {
    console.log('peer: GroupQueryAttention comparison covers dense causal decode only; skipped');
    return {};
  }
  const fp16 = p.kvDtype !== 'f32';
  const { setNumThreads } = await import('../../src/backends.js');
  const all = setNumThreads();
  // ORT's intra-op threading is not always faster on 2 cores: take its best of 1 and all threads.
  const out: Record<string, number> = {};
  for (const threads of all > 1 ? [1, all] : [1]) {
    const rng = new Rng(7);
    const s = await ortDecode(ort, p.batch, p.heads, p.kvHeads, p.headDim, p.seqLen, fp16, threads, (q, k, v, nk, nv) => {
      for (const a of [q, k, v, nk, nv]) a.set(fill(fp16 ? 'f16' : 'f32', a.length, rng));
    });
    try {
      const ms = await s.time(reps);
      out[`peerMsThreads${threads}`] = ms;
      out.peerMs = Math.min(out.peerMs ?? Infinity, ms);
    } finally {
      await s.release();
    }
  }
  return out;
}
