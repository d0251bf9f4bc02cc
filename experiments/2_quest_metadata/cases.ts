// The shared quest_metadata sweep (vitest and `select-attn verify`): each case draws fresh seeded
// inputs, runs on a backend through place(), and compares every metadata element bit for bit.
import type { BackendName } from '../../src/backends.js';
import { questMetadata } from '../../src/ops/quest_metadata.js';
import { type Case, type CaseResult, type FamilySuite, Rng, place, refusedOutsideMinimum } from '../../src/testing/harness.js';
import { type FloatDType, type HostTensor, contiguousStrides, tensor } from '../../src/tensor.js';
import { type KeyKind, makeKeyCache, makeTables, randomLens } from './gen_data.js';
import { type Layout, refQuestMetadata } from './ref.js';

export interface MetaCaseParams {
  dtype: FloatDType;
  layout: Layout;
  D: number;
  N: number;
  bs: number;
  /** metaRows (rows per metadata page) */
  R: number;
  B: number;
  maxLen: number;
  keys: KeyKind;
  /** startBlocks: none (absent), random in [0, L], last (L-1), beyond (> L) */
  start: 'none' | 'random' | 'last' | 'beyond';
  shuffle: boolean;
  extraBlocks: number;
  extraPages: number;
  extraColumns: number;
  sharePrefix?: boolean;
}


export function metaCaseId(p: MetaCaseParams): string {
  const extra = `${p.shuffle ? '' : ',seqIds'}${p.sharePrefix ? ',sharedPrefix' : ''}${p.extraBlocks || p.extraPages ? ',bigPool' : ''}`;
  return `quest_metadata(dtype=${p.dtype},layout=${p.layout},D=${p.D},N=${p.N},bs=${p.bs},metaRows=${p.R},B=${p.B},` +
    `maxLen=${p.maxLen},keys=${p.keys},start=${p.start}${extra})`;
}

/** A tensor whose data has `guard` random elements on both sides (offset = guard): catches stray writes. */
function guarded(dtype: FloatDType, shape: number[], guard: number, rng: Rng): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const bits = new Uint32Array(Math.ceil(((n + 2 * guard) * (dtype === 'f32' ? 4 : 2)) / 4));
  for (let i = 0; i < bits.length; i++) bits[i] = (rng.next() * 2 ** 32) >>> 0;
  const data = dtype === 'f32' ? new Float32Array(bits.buffer, 0, n + 2 * guard) : new Uint16Array(bits.buffer, 0, n + 2 * guard);
  return { dtype, shape, strides: contiguousStrides(shape), data, offset: guard };
}

/** Raw bits of the elements [from, from + n) of a float data array (f32 as u32, f16/bf16 as u16). */
function rawBits(data: Float32Array | Uint16Array | Int32Array, from: number, n: number): Uint32Array | Uint16Array {
  return data instanceof Uint16Array
    ? data.subarray(from, from + n)
    : new Uint32Array(data.buffer, data.byteOffset + from * 4, n);
}

export function runMetaCase(p: MetaCaseParams, backend: BackendName, seed: number): CaseResult {
  const rng = new Rng(seed);
  const lens = randomLens(rng, p.B, p.maxLen, p.bs);
  const t = makeTables(rng, { lens, blockSize: p.bs, metaRows: p.R, extraBlocks: p.extraBlocks, extraPages: p.extraPages,
    extraColumns: p.extraColumns, shuffle: p.shuffle, sharePrefix: p.sharePrefix });
  const kc = makeKeyCache(rng, p.keys, p.dtype, p.layout, lens, t, p.bs, p.N, p.D);
  const Ls = lens.map((l) => Math.ceil(l / p.bs));
  let startBlocks: Int32Array | undefined;
  if (p.start !== 'none') {
    startBlocks = Int32Array.from(Ls, (L) =>
      p.start === 'random' ? rng.int(0, L + 1) : p.start === 'last' ? Math.max(0, L - 1) : L + rng.int(0, 3));
  }
  const metaShape = [t.numMetaPages, p.R, p.N, p.D];
  const n = metaShape.reduce((a, b) => a * b, 1);
  const guard = 67;
  const maxMeta = guarded(p.dtype, metaShape, guard, rng);
  const minMeta = guarded(p.dtype, metaShape, guard, rng);
  // Expected: the previous contents (guards included) with SPEC's writes applied.
  const expMax = maxMeta.data.slice() as Float32Array | Uint16Array;
  const expMin = minMeta.data.slice() as Float32Array | Uint16Array;
  refQuestMetadata({
    dtype: p.dtype, layout: p.layout, numBlocks: t.numBlocks, blockSize: p.bs, numKvHeads: p.N, headDim: p.D, metaRows: p.R,
    k: kc.values, blockTables: t.blockTables, maxBlocksPerSeq: t.maxBlocksPerSeq, seqLens: Int32Array.from(lens),
    metaBlockTables: t.metaBlockTables, maxMetaPagesPerSeq: t.maxMetaPagesPerSeq, startBlocks,
  }, expMax.subarray(guard, guard + n), expMin.subarray(guard, guard + n));

  const placed = place(backend, {
    kCache: kc.kCache,
    blockTables: tensor('i32', [p.B, t.maxBlocksPerSeq], t.blockTables),
    seqLens: tensor('i32', [p.B], Int32Array.from(lens)),
    metaBlockTables: tensor('i32', [p.B, t.maxMetaPagesPerSeq], t.metaBlockTables),
    startBlocks: startBlocks && tensor('i32', [p.B], startBlocks),
    maxMeta,
    minMeta,
  });
  try {
    const a = placed.args;
    try {
      questMetadata({ kCache: a.kCache, blockTables: a.blockTables, seqLens: a.seqLens, metaBlockTables: a.metaBlockTables,
        maxMeta: a.maxMeta, minMeta: a.minMeta, startBlocks: a.startBlocks, layout: p.layout }, { backend });
    } catch (e) {
      const refused = refusedOutsideMinimum(backend, p, e);
      if (refused) return refused;
      throw e;
    }
    const gotMax = placed.fetch('maxMeta');
    const gotMin = placed.fetch('minMeta');
    const device = gotMax !== maxMeta;
    const lo = device ? guard : 0;
    const cnt = device ? n : n + 2 * guard;
    for (const [name, got, exp] of [['maxMeta', gotMax, expMax], ['minMeta', gotMin, expMin]] as const) {
      const g = rawBits(got.data, device ? 0 : 0, cnt);
      const e = rawBits(exp, lo, cnt);
      for (let i = 0; i < cnt; i++) {
        if (g[i] !== e[i]) {
          const el = device ? i : i - guard;
          const where = el < 0 || el >= n ? `guard element ${el < 0 ? el : el - n} ${el < 0 ? 'before' : 'after'} the tensor`
            : `[page ${Math.floor(el / (p.R * p.N * p.D))}, row ${Math.floor(el / (p.N * p.D)) % p.R}, head ${Math.floor(el / p.D) % p.N}, d ${el % p.D}]`;
          return { pass: false, detail: `${name} ${where}: got bits 0x${g[i].toString(16)}, expected 0x${e[i].toString(16)} (seed ${seed}, lens [${lens}]${startBlocks ? `, startBlocks [${startBlocks}]` : ''})` };
        }
      }
    }
    const rows = Ls.reduce((s, L, b) => s + Math.max(0, L - (startBlocks ? startBlocks[b] : 0)), 0);
    return { pass: true, detail: `bit-exact over ${2 * n} elements (${rows} rows rebuilt, guards intact), lens [${lens}]` };
  } finally {
    placed.dispose();
  }
}

/** The sweep: every dtype x layout x head dim, block sizes 8..256, metaRows != blockSize, incremental refresh, data kinds, pools. */
export function metaCases(): MetaCaseParams[] {
  const out: MetaCaseParams[] = [];
  const base: MetaCaseParams = { dtype: 'f16', layout: 'NHD', D: 128, N: 2, bs: 16, R: 16, B: 4, maxLen: 150, keys: 'uniform',
    start: 'none', shuffle: true, extraBlocks: 5, extraPages: 3, extraColumns: 2 };
  const dtypes: FloatDType[] = ['f32', 'f16', 'bf16'];
  const layouts: Layout[] = ['NHD', 'HND'];
  // dtype x layout x headDim (with realistic keys on half of them)
  for (const dtype of dtypes) for (const layout of layouts) for (const D of [64, 96, 128, 256]) {
    out.push({ ...base, dtype, layout, D, N: D >= 256 ? 1 : 2, keys: D === 96 || D === 256 ? 'realistic' : 'uniform', maxLen: 100 });
  }
  // block sizes 8..256 x dtype x layout
  for (const dtype of dtypes) for (const layout of layouts) for (const bs of [8, 32, 64, 128, 256]) {
    out.push({ ...base, dtype, layout, D: 64, N: 2, bs, R: bs, B: 3, maxLen: Math.min(3 * bs + 5, 700) });
  }
  // metaRows != blockSize (small pages spread a sequence over many pages; large ones leave zero rows)
  for (const layout of layouts) for (const [bs, R] of [[16, 1], [16, 3], [8, 7], [16, 64], [32, 5], [8, 100]] as const) {
    out.push({ ...base, layout, D: 64, bs, R, maxLen: 200, dtype: R % 2 ? 'bf16' : 'f16' });
  }
  // incremental refresh (startBlocks)
  for (const dtype of dtypes) for (const layout of layouts) for (const start of ['random', 'last', 'beyond'] as const) {
    out.push({ ...base, dtype, layout, D: 64, start, R: start === 'random' ? 4 : 16, B: 5, maxLen: 180 });
  }
  // KV heads 1..8, realistic and signed-zero keys
  for (const N of [1, 4, 8]) for (const layout of layouts) out.push({ ...base, layout, N, D: 64, keys: 'realistic', maxLen: 80 });
  for (const dtype of dtypes) for (const layout of layouts) out.push({ ...base, dtype, layout, D: 64, keys: 'signs', maxLen: 60 });
  // pools: sequential ids, no slack; shared prefix blocks; batch of 1; many sequences
  for (const layout of layouts) {
    out.push({ ...base, layout, shuffle: false, extraBlocks: 0, extraPages: 0, extraColumns: 0, D: 64 });
    out.push({ ...base, layout, sharePrefix: true, D: 64, B: 3, maxLen: 120 });
    out.push({ ...base, layout, B: 1, D: 128, maxLen: 333, dtype: 'bf16' });
    out.push({ ...base, layout, B: 12, D: 64, N: 1, maxLen: 60, dtype: 'f32' });
    out.push({ ...base, layout, B: 3, D: 64, maxLen: 0 }); // every sequence empty: nothing written
  }
  // cpu-only shapes (outside SPEC's minimum; other backends may answer SA_ERR_UNSUPPORTED)
  for (const layout of layouts) {
    out.push({ ...base, layout, D: 80, bs: 16, maxLen: 90 });
    out.push({ ...base, layout, D: 7, N: 3, bs: 5, R: 6, maxLen: 70, dtype: 'f32' });
    out.push({ ...base, layout, D: 33, N: 2, bs: 3, R: 2, maxLen: 40, dtype: 'bf16', start: 'random' });
  }
  return out;
}

export const suite: FamilySuite = {
  family: 'quest_metadata',
  cases(): Case[] {
    return metaCases().map((p) => ({
      id: metaCaseId(p),
      family: 'quest_metadata',
      run: (backend: BackendName, seed: number) => runMetaCase(p, backend, seed),
    }));
  },
  run: {
    inputs: ['kCache', 'blockTables', 'seqLens', 'metaBlockTables', 'maxMeta', 'minMeta'],
    optionalInputs: ['startBlocks'],
    outputs: ['maxMeta', 'minMeta'],
    call(t, options, backend) {
      const placed = place(backend, t);
      try {
        const a = placed.args;
        questMetadata({ kCache: a.kCache, blockTables: a.blockTables, seqLens: a.seqLens, metaBlockTables: a.metaBlockTables,
          maxMeta: a.maxMeta, minMeta: a.minMeta, startBlocks: a.startBlocks, layout: options.layout as Layout | undefined }, { backend });
        return { maxMeta: placed.fetch('maxMeta'), minMeta: placed.fetch('minMeta') };
      } finally {
        placed.dispose();
      }
    },
  },
};
