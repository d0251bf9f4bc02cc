// quest_metadata benchmark (`select-attn bench quest_metadata`): one metadata build of a whole batch.
// Bytes = the K cache tokens read + the metadata rows written (max and min, zero rows included).
import { ascendSimBenchExtra } from '../../src/ascend_sim.js';
import type { BackendName } from '../../src/backends.js';
import { questMetadata, timeQuestMetadata } from '../../src/ops/quest_metadata.js';
import type { BenchCase, BenchFamily, ParamValue } from '../../src/testing/bench.js';
import { Rng, place } from '../../src/testing/harness.js';
import { type FloatDType, type HostTensor, dtypeSize, f32ToBf16Bits, f32ToF16Bits, tensor } from '../../src/tensor.js';
import type { Layout } from './ref.js';

/** A large float tensor filled fast: a random pattern of finite values in [-2, 2], tiled with a prime
 *  period (so rows and pages of any power-of-two size do not repeat each other). */
export function fastRandom(dtype: FloatDType, shape: number[], rng: Rng): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const t = tensor(dtype, shape);
  const P = Math.min(n, 1048573);
  for (let i = 0; i < P; i++) {
    const v = rng.uniform(-2, 2);
    t.data[i] = dtype === 'f16' ? f32ToF16Bits(v) : dtype === 'bf16' ? f32ToBf16Bits(v) : v;
  }
  for (let filled = P; filled < n; filled *= 2) t.data.copyWithin(filled, 0, Math.min(filled, n - filled));
  return t;
}

/** Shuffled physical ids: table [B, per] over a pool of exactly B * per ids. */
export function shuffledTable(rng: Rng, B: number, per: number): Int32Array {
  return Int32Array.from(rng.shuffle(Array.from({ length: B * per }, (_, i) => i)));
}

export const bench: BenchFamily = {
  family: 'quest_metadata',
  backends: ['cpu', 'cuda', 'ascend', 'ascend-sim', 'metal'],
  params: [
    { name: 'batch', type: 'int', default: 8, describe: 'sequences B' },
    { name: 'kvHeads', type: 'int', default: 8, describe: 'KV heads N' },
    { name: 'headDim', type: 'int', default: 128, describe: 'head dimension D' },
    { name: 'blockSize', type: 'int', default: 16, describe: 'tokens per KV block' },
    { name: 'seqLen', type: 'int', default: 32768, describe: 'tokens per sequence (all equal)' },
    { name: 'dtype', type: 'string', default: 'f16', describe: 'kCache/metadata dtype', choices: ['f32', 'f16', 'bf16'] },
    { name: 'layout', type: 'string', default: 'NHD', describe: 'kCache layout', choices: ['NHD', 'HND'] },
    { name: 'metaRows', type: 'int', default: 0, describe: 'rows per metadata page (0: blockSize)' },
    { name: 'startBlock', type: 'int', default: 0, describe: 'startBlocks[b] for every sequence (incremental refresh)' },
  ],
  setup(p: Record<string, ParamValue>, backend: BackendName): BenchCase {
    const B = p.batch as number, N = p.kvHeads as number, D = p.headDim as number, bs = p.blockSize as number;
    const len = p.seqLen as number, dtype = p.dtype as FloatDType, layout = p.layout as Layout;
    const R = (p.metaRows as number) || bs, start = p.startBlock as number;
    const rng = new Rng(1234);
    const L = Math.ceil(len / bs), pages = Math.ceil(L / R);
    const kShape = layout === 'NHD' ? [B * L, bs, N, D] : [B * L, N, bs, D];
    const placed = place(backend, {
      kCache: fastRandom(dtype, kShape, rng),
      blockTables: tensor('i32', [B, L], shuffledTable(rng, B, L)),
      seqLens: tensor('i32', [B], new Int32Array(B).fill(len)),
      metaBlockTables: tensor('i32', [B, pages], shuffledTable(rng, B, pages)),
      maxMeta: tensor(dtype, [B * pages, R, N, D]),
      minMeta: tensor(dtype, [B * pages, R, N, D]),
      startBlocks: start ? tensor('i32', [B], new Int32Array(B).fill(start)) : undefined,
    });
    const a = placed.args;
    const args = { kCache: a.kCache, blockTables: a.blockTables, seqLens: a.seqLens, metaBlockTables: a.metaBlockTables,
      maxMeta: a.maxMeta, minMeta: a.minMeta, startBlocks: a.startBlocks, layout };
    questMetadata(args, { backend }); // warm-up (faults the output pages in)
    const es = dtypeSize(dtype);
    const rebuilt = Math.max(0, L - start);
    const zeroRows = rebuilt > 0 ? pages * R - L : 0;
    const readTokens = rebuilt > 0 ? len - Math.min(len, start * bs) : 0;
    const bytes = B * (readTokens * N * D * es + 2 * (rebuilt + zeroRows) * N * D * es);
    return {
      bytes,
      time: (reps: number) => timeQuestMetadata(args, reps, { backend }),
      // ascend-sim: DMA bytes the twin counted against this minimum, and the 910B estimate.
      extra: backend === 'ascend-sim' ? () => ascendSimBenchExtra(bytes) : undefined,
      dispose: () => placed.dispose(),
    };
  },
};
