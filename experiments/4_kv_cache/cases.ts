// The kv_cache sweep shared by vitest and `select-attn verify`: cacheWrite (both layouts, skips, repeated
// slots, empty calls, the threaded path) and questMetadataAppend (decode steps, prefill appends in
// shuffled order, metaRows != blockSize, repeated positions, shared pages), compared bit for bit with
// the reference; plus "one call == one call per token" and "append == quest_metadata from the cache".
import type { BackendName } from '../../src/backends.js';
import { type CacheWriteArgs, type QuestMetadataAppendArgs, cacheWrite, questMetadataAppend } from '../../src/ops/kv_cache.js';
import { questMetadata } from '../../src/ops/quest_metadata.js';
import { type FloatDType, type HostTensor, bf16BitsToF32, contiguousData, f16BitsToF32, tensor } from '../../src/tensor.js';
import { type Case, type CaseResult, type FamilySuite, Rng, place } from '../../src/testing/harness.js';
import type { Layout } from '../1_paged_attention/ref.js';
import { type AppendConfig, type WriteConfig, genAppend, genWrite, randomTensor } from './gen_data.js';
import { refCacheWrite, refQuestMetadataAppend } from './ref.js';

type Words = Float32Array | Uint16Array;

function words(t: HostTensor): Words {
  return contiguousData(t) as Words;
}

export function decoder(dt: FloatDType): (w: number) => number {
  return dt === 'f32' ? (x) => x : dt === 'f16' ? f16BitsToF32 : bf16BitsToF32;
}

/** Index of the first differing stored word (NaN words compare by bits), or -1. */
function firstDiff(a: Words, b: Words): number {
  if (a.length !== b.length) return 0;
  if (a instanceof Float32Array) {
    const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
    const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
    for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return i;
    return -1;
  }
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

function same(name: string, got: Words, want: Words): CaseResult | undefined {
  const i = firstDiff(got, want);
  return i < 0 ? undefined : { pass: false, detail: `${name}[${i}] = ${got[i]}, expected ${want[i]} (stored words)` };
}

export function runWrite(c: WriteConfig, backend: BackendName, seed: number): CaseResult {
  const g = genWrite(c, seed);
  const want = refCacheWrite(words(g.key), words(g.value), words(g.kCache), words(g.vCache), g.slotMapping.data as Int32Array, c.N, c.D, c.bs, c.layout);
  const placed = place(backend, g);
  try {
    cacheWrite({ ...placed.args, layout: c.layout } as unknown as CacheWriteArgs, { backend });
    return same('kCache', words(placed.fetch('kCache')), want.kCache) ?? same('vCache', words(placed.fetch('vCache')), want.vCache) ??
      { pass: true, detail: `caches bit-exact (${c.T} tokens)` };
  } finally {
    placed.dispose();
  }
}

export function runAppend(c: AppendConfig, backend: BackendName, seed: number, mode: 'one' | 'perToken' = 'one'): CaseResult {
  const g = genAppend(c, seed);
  const want = refQuestMetadataAppend(words(g.key), words(g.maxMeta), words(g.minMeta), g.metaBlockTables.data as Int32Array, g.mmbpr,
    g.seqIdx.data as Int32Array, g.positions.data as Int32Array, c.N, c.D, c.bs, c.metaRows, decoder(c.dtype));
  const { mmbpr: _m, ...tensors } = g;
  const placed = place(backend, tensors);
  try {
    if (mode === 'one') {
      questMetadataAppend({ ...placed.args, blockSize: c.bs } as unknown as QuestMetadataAppendArgs, { backend });
    } else {
      // one call per token, in position order (ties in token order): must equal the single call
      const seq = g.seqIdx.data as Int32Array;
      const pos = g.positions.data as Int32Array;
      const rowLen = c.N * c.D;
      const order = Array.from(seq, (_, t) => t).sort((a, b) => pos[a] - pos[b] || a - b);
      const kw = words(g.key);
      for (const t of order) {
        const key = tensor(c.dtype, [1, c.N, c.D], kw.slice(t * rowLen, (t + 1) * rowLen) as Words);
        const one = place(backend, { key, seqIdx: tensor('i32', [1], [seq[t]]), positions: tensor('i32', [1], [pos[t]]) });
        try {
          questMetadataAppend({ ...(one.args as never as Record<string, never>), maxMeta: placed.args.maxMeta, minMeta: placed.args.minMeta,
            metaBlockTables: placed.args.metaBlockTables, blockSize: c.bs } as never, { backend });
        } finally {
          one.dispose();
        }
      }
    }
    return same('maxMeta', words(placed.fetch('maxMeta')), want.maxMeta) ?? same('minMeta', words(placed.fetch('minMeta')), want.minMeta) ??
      { pass: true, detail: `metadata bit-exact (${g.seqIdx.shape[0]} tokens, ${mode === 'one' ? 'one call' : 'one call per token'})` };
  } finally {
    placed.dispose();
  }
}

/** A prompt and decode steps written with cacheWrite + questMetadataAppend give the metadata that
 *  questMetadata builds from the final cache (rows of existing blocks; both exact). */
export function runDecodeLoop(dtype: FloatDType, layout: Layout, backend: BackendName, seed: number): CaseResult {
  const rng = new Rng(seed);
  const N = 2, D = 32, bs = 8, B = 3, steps = 3, width = 4;
  const prompt = [13, 8, 1];
  const final = prompt.map((l) => l + steps);
  const L = final.map((l) => Math.ceil(l / bs));
  const numBlocks = L.reduce((a, b) => a + b, 0) + 2;
  const ids = rng.shuffle(Array.from({ length: numBlocks }, (_, i) => i));
  const table = new Int32Array(B * width).fill(-1);
  let next = 0;
  for (let b = 0; b < B; b++) for (let j = 0; j < L[b]; j++) table[b * width + j] = ids[next++];
  const cacheShape = layout === 'NHD' ? [numBlocks, bs, N, D] : [numBlocks, N, bs, D];
  const metaShape = [B, bs, N, D];  // metaRows = bs: one metadata page per sequence
  const pages = Int32Array.from(rng.shuffle([0, 1, 2]));
  const placed = place(backend, {
    kCache: randomTensor(rng, dtype, cacheShape), vCache: randomTensor(rng, dtype, cacheShape),
    maxMeta: randomTensor(rng, dtype, metaShape), minMeta: randomTensor(rng, dtype, metaShape),
    refMax: tensor(dtype, metaShape), refMin: tensor(dtype, metaShape),
    metaBlockTables: tensor('i32', [B, 1], pages), blockTables: tensor('i32', [B, width], table),
    seqLens: tensor('i32', [B], final),
  });
  const a = placed.args;
  try {
    const len = new Array<number>(B).fill(0);
    const calls = [prompt, ...Array.from({ length: steps }, () => [1, 1, 1])];
    for (const counts of calls) {
      const seq: number[] = [];
      const pos: number[] = [];
      counts.forEach((n, b) => {
        for (let i = 0; i < n; i++) { seq.push(b); pos.push(len[b]++); }
      });
      const T = seq.length;
      const slots = Int32Array.from(seq, (b, i) => table[b * width + Math.floor(pos[i] / bs)] * bs + (pos[i] % bs));
      const step = place(backend, {
        key: randomTensor(rng, dtype, [T, N, D]), value: randomTensor(rng, dtype, [T, N, D]),
        slotMapping: tensor('i32', [T], slots), seqIdx: tensor('i32', [T], seq), positions: tensor('i32', [T], pos),
      });
      try {
        cacheWrite({ key: step.args.key, value: step.args.value, kCache: a.kCache, vCache: a.vCache, slotMapping: step.args.slotMapping, layout }, { backend });
        questMetadataAppend({ key: step.args.key, maxMeta: a.maxMeta, minMeta: a.minMeta, metaBlockTables: a.metaBlockTables,
          seqIdx: step.args.seqIdx, positions: step.args.positions, blockSize: bs }, { backend });
      } finally {
        step.dispose();
      }
    }
    questMetadata({ kCache: a.kCache, blockTables: a.blockTables, seqLens: a.seqLens, metaBlockTables: a.metaBlockTables,
      maxMeta: a.refMax, minMeta: a.refMin, layout }, { backend });
    const got = [words(placed.fetch('maxMeta')), words(placed.fetch('minMeta'))];
    const want = [words(placed.fetch('refMax')), words(placed.fetch('refMin'))];
    const row = N * D;
    for (let b = 0; b < B; b++)
      for (let j = 0; j < L[b]; j++)
        for (let k = 0; k < 2; k++) {
          const o = (pages[b] * bs + j) * row;
          const d = firstDiff(got[k].subarray(o, o + row) as Words, want[k].subarray(o, o + row) as Words);
          if (d >= 0) return { pass: false, detail: `${k ? 'min' : 'max'}Meta of sequence ${b} block ${j} differs from quest_metadata at element ${d}` };
        }
    return { pass: true, detail: 'appended metadata equals quest_metadata over the written cache' };
  } finally {
    placed.dispose();
  }
}

const DTYPES: FloatDType[] = ['f32', 'f16', 'bf16'];

export const suite: FamilySuite = {
  family: 'kv_cache',
  // `select-attn run kv_cache`: with slotMapping, cacheWrite (outputs the updated kCache, vCache); with
  // seqIdx and positions, questMetadataAppend (outputs the updated maxMeta, minMeta; options.blockSize).
  run: {
    inputs: ['key'],
    optionalInputs: ['value', 'kCache', 'vCache', 'slotMapping', 'maxMeta', 'minMeta', 'metaBlockTables', 'seqIdx', 'positions'],
    outputs: ['kCache', 'vCache', 'maxMeta', 'minMeta'],
    call(tensors, options, backend): Record<string, HostTensor> {
      const placed = place(backend, tensors);
      try {
        if (tensors.slotMapping) {
          cacheWrite({ ...placed.args, layout: options.layout ?? 'NHD' } as unknown as CacheWriteArgs, { backend });
          return { kCache: placed.fetch('kCache'), vCache: placed.fetch('vCache') };
        }
        questMetadataAppend({ ...placed.args, blockSize: options.blockSize } as unknown as QuestMetadataAppendArgs, { backend });
        return { maxMeta: placed.fetch('maxMeta'), minMeta: placed.fetch('minMeta') };
      } finally {
        placed.dispose();
      }
    },
  },
  cases(): Case[] {
    const cases: Case[] = [];
    const add = (id: string, run: Case['run']) => cases.push({ id, family: 'kv_cache', run });
    for (const dtype of DTYPES)
      for (const layout of ['NHD', 'HND'] as const) {
        const writes: [string, WriteConfig][] = [
          ['decode', { dtype, layout, N: 8, D: 128, bs: 16, numBlocks: 40, T: 4 }],
          ['prefill', { dtype, layout, N: 2, D: 64, bs: 16, numBlocks: 40, T: 300, skip: 0.1 }],
          ['repeats', { dtype, layout, N: 3, D: 32, bs: 8, numBlocks: 20, T: 60, repeats: true, skip: 0.2 }],
          ['allSkipped', { dtype, layout, N: 2, D: 16, bs: 4, numBlocks: 5, T: 7, skip: 1 }],
        ['empty', { dtype, layout, N: 2, D: 16, bs: 4, numBlocks: 5, T: 0 }],
          ['oddShapes', { dtype, layout, N: 3, D: 33, bs: 5, numBlocks: 11, T: 29, skip: 0.1 }],
          ['threaded', { dtype, layout, N: 8, D: 128, bs: 16, numBlocks: 80, T: 600, repeats: true }],
        ];
        for (const [name, c] of writes)
          add(`kv_cache.cacheWrite(${name},dtype=${dtype},${layout},N=${c.N},D=${c.D},bs=${c.bs},T=${c.T})`, (be, seed) => runWrite(c, be, seed));
        add(`kv_cache.decodeLoop(dtype=${dtype},${layout})`, (be, seed) => runDecodeLoop(dtype, layout, be, seed));
      }
    for (const dtype of DTYPES) {
      const appends: [string, AppendConfig][] = [
        ['decodeStep', { dtype, N: 8, D: 128, bs: 16, metaRows: 16, seqLens: [16, 17, 31, 0, 200], newTokens: [1, 1, 1, 1, 1] }],
        ['prefill', { dtype, N: 2, D: 64, bs: 16, metaRows: 16, seqLens: [0, 5], newTokens: [40, 37] }],
        ['specDecode', { dtype, N: 2, D: 32, bs: 8, metaRows: 8, seqLens: [6, 14, 23], newTokens: [4, 3, 5] }],
        ['metaRows4', { dtype, N: 2, D: 32, bs: 16, metaRows: 4, seqLens: [60, 3], newTokens: [70, 9] }],
        ['blockSize5', { dtype, N: 3, D: 17, bs: 5, metaRows: 3, seqLens: [4, 0, 11], newTokens: [12, 7, 1] }],
        ['repeats', { dtype, N: 2, D: 32, bs: 8, metaRows: 8, seqLens: [7, 16], newTokens: [10, 9], repeats: true }],
        ['sharedPage', { dtype, N: 2, D: 16, bs: 4, metaRows: 4, seqLens: [3, 5], newTokens: [6, 4], shared: true }],
        ['signedZeros', { dtype, N: 2, D: 32, bs: 8, metaRows: 8, seqLens: [5, 16, 0], newTokens: [12, 9, 20], signedZeros: true }],
        ['empty', { dtype, N: 2, D: 16, bs: 4, metaRows: 4, seqLens: [3], newTokens: [0] }],
        ['threaded', { dtype, N: 8, D: 128, bs: 16, metaRows: 16, seqLens: [0, 100, 37, 512], newTokens: [300, 200, 150, 90] }],
      ];
      for (const [name, c] of appends) {
        const shape = `dtype=${dtype},N=${c.N},D=${c.D},bs=${c.bs},metaRows=${c.metaRows},seqLens=${c.seqLens.join('/')},new=${c.newTokens.join('/')}`;
        add(`kv_cache.questMetadataAppend(${name},${shape})`, (be, seed) => runAppend(c, be, seed));
        if (name !== 'threaded' && name !== 'empty')
          add(`kv_cache.questMetadataAppend(${name},perToken,${shape})`, (be, seed) => runAppend(c, be, seed, 'perToken'));
      }
    }
    return cases;
  },
};
