// kv_cache benchmark (`select-attn bench kv_cache`): cacheWrite of `tokens` new tokens into shuffled slots,
// or questMetadataAppend of `tokens` tokens spread over `batch` sequences. bytes: cacheWrite reads key
// and value and writes both caches (4 T N D es); append reads each key and reads and writes its max and
// min rows (5 T N D es).
import type { BackendName } from '../../src/backends.js';
import { timeCacheWrite, timeQuestMetadataAppend } from '../../src/ops/kv_cache.js';
import { type FloatDType, dtypeSize, tensor } from '../../src/tensor.js';
import type { BenchCase, BenchFamily, ParamValue } from '../../src/testing/bench.js';
import { Rng, place } from '../../src/testing/harness.js';
import { randomTensor } from './gen_data.js';

interface KvBenchParams {
  op: 'cacheWrite' | 'append';
  tokens: number;
  batch: number;
  kvHeads: number;
  headDim: number;
  blockSize: number;
  dtype: FloatDType;
  layout: 'NHD' | 'HND';
  poolBlocks: number;
}

const DEFAULTS: KvBenchParams = {
  op: 'cacheWrite', tokens: 4096, batch: 8, kvHeads: 8, headDim: 128, blockSize: 16, dtype: 'bf16', layout: 'NHD', poolBlocks: 4096,
};

export const bench: BenchFamily = {
  family: 'kv_cache',
  backends: ['cpu', 'cuda', 'ascend-sim', 'ascend', 'metal'],
  params: [
    { name: 'op', type: 'string', default: DEFAULTS.op, describe: 'cacheWrite or append (questMetadataAppend)', choices: ['cacheWrite', 'append'] },
    { name: 'tokens', type: 'int', default: DEFAULTS.tokens, describe: 'new tokens T in the call' },
    { name: 'batch', type: 'int', default: DEFAULTS.batch, describe: 'sequences the tokens belong to (append)' },
    { name: 'kvHeads', type: 'int', default: DEFAULTS.kvHeads, describe: 'KV heads N' },
    { name: 'headDim', type: 'int', default: DEFAULTS.headDim, describe: 'head dimension D' },
    { name: 'blockSize', type: 'int', default: DEFAULTS.blockSize, describe: 'tokens per KV block' },
    { name: 'dtype', type: 'string', default: DEFAULTS.dtype, describe: 'cache dtype', choices: ['f32', 'f16', 'bf16'] },
    { name: 'layout', type: 'string', default: DEFAULTS.layout, describe: 'cache layout (cacheWrite)', choices: ['NHD', 'HND'] },
    { name: 'poolBlocks', type: 'int', default: DEFAULTS.poolBlocks, describe: 'KV blocks (or metadata pages) in the pool' },
  ],
  async setup(raw: Record<string, ParamValue>, backend: BackendName): Promise<BenchCase> {
    const p = { ...DEFAULTS, ...(raw as Partial<KvBenchParams>) };
    const rng = new Rng(1);
    const { tokens: T, kvHeads: N, headDim: D, blockSize: bs } = p;
    const es = dtypeSize(p.dtype);
    if (p.op === 'cacheWrite') {
      const shape = p.layout === 'NHD' ? [p.poolBlocks, bs, N, D] : [p.poolBlocks, N, bs, D];
      const slots = rng.shuffle(Array.from({ length: p.poolBlocks * bs }, (_, i) => i)).slice(0, T);
      const placed = place(backend, {
        key: randomTensor(rng, p.dtype, [T, N, D]), value: randomTensor(rng, p.dtype, [T, N, D]),
        kCache: tensor(p.dtype, shape), vCache: tensor(p.dtype, shape), slotMapping: tensor('i32', [T], slots),
      });
      const args = { ...placed.args, layout: p.layout } as never;
      return { bytes: 4 * T * N * D * es, time: (reps) => timeCacheWrite(args, reps, { backend }), dispose: () => placed.dispose() };
    }
    // append: the batch's sequences continue from random lengths, tokens spread evenly
    const B = p.batch;
    const per = Math.ceil(T / B);
    const start = Array.from({ length: B }, () => rng.int(0, 4096));
    const pagesPer = Math.ceil((4096 + per) / (bs * bs)) + 1;
    const numPages = Math.max(p.poolBlocks, B * pagesPer);
    const ids = rng.shuffle(Array.from({ length: numPages }, (_, i) => i));
    const table = Int32Array.from({ length: B * pagesPer }, (_, i) => ids[i]);
    const seq = Int32Array.from({ length: T }, (_, t) => Math.floor(t / per));
    const pos = Int32Array.from({ length: T }, (_, t) => start[seq[t]] + (t % per));
    const placed = place(backend, {
      key: randomTensor(rng, p.dtype, [T, N, D]),
      maxMeta: tensor(p.dtype, [numPages, bs, N, D]), minMeta: tensor(p.dtype, [numPages, bs, N, D]),
      metaBlockTables: tensor('i32', [B, pagesPer], table), seqIdx: tensor('i32', [T], seq), positions: tensor('i32', [T], pos),
    });
    const args = { ...placed.args, blockSize: bs } as never;
    return { bytes: 5 * T * N * D * es, time: (reps) => timeQuestMetadataAppend(args, reps, { backend }), dispose: () => placed.dispose() };
  },
};
