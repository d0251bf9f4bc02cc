// Bad-input fuzz over every public op (SPEC section 5): start from a valid call, apply one mutation,
// and check the call throws (sync, async and timed forms) the right class with family and backend,
// and that no byte of any buffer changed. Valid edge calls (B = 0, seqLen 0) must succeed and keep
// the guard regions around their outputs intact. A family joins by adding an OpFactory below.
import { describe, expect, it } from 'vitest';
import * as api from './index.js';
import { listBackends } from './backends.js';
import { SelectAttnError } from './errors.js';
import { type DType, type HostTensor, type TypedData, contiguousStrides, f32ToBf16, f32ToF16, numel } from './tensor.js';
import { Rng } from './testing/harness.js';

type ErrClass = 'TypeError' | 'RangeError' | 'SelectAttnError';

interface TensorDesc {
  name: string;
  /** dtypes under which the call would stay valid (given its data class and the other arguments) */
  ok: readonly DType[];
  /** dims that must agree with another argument: changing one alone is a shape disagreement */
  tied: readonly number[];
  output?: boolean;
  optional?: boolean;
}

type ScalarDesc =
  | { name: string; kind: 'int'; min: number }
  | { name: string; kind: 'float'; min?: number }
  | { name: string; kind: 'enum'; values: readonly string[] }
  | { name: string; kind: 'bool' };

interface Mutation {
  what: string;
  expect: readonly ErrClass[];
  apply(args: Record<string, unknown>): void;
}

interface ValidCall {
  args: Record<string, unknown>;
  tensors: TensorDesc[];
  scalars: ScalarDesc[];
  /** family-specific invalid values (ids outside a pool, tables too narrow, ...) */
  semantic: Mutation[];
}

/** How a family joins the fuzz: its exported function names and a generator of valid calls. */
interface OpFactory {
  family: string;
  sync: string;
  async?: string;
  time?: string;
  /** a random valid call; `edge` asks for empty batches and empty sequences */
  make(rng: Rng, edge: boolean): ValidCall;
}

// ---------------------------------------------------------------- tensors with guard regions
const GUARD = 16;

/** A contiguous tensor whose data is a view into a larger buffer with poisoned guard regions on both sides. */
function guarded(dtype: DType, shape: number[], values: ArrayLike<number>): HostTensor {
  const n = numel(shape);
  const big: TypedData = dtype === 'f32' ? new Float32Array(n + 2 * GUARD) : dtype === 'i32' ? new Int32Array(n + 2 * GUARD) : new Uint16Array(n + 2 * GUARD);
  big.fill(dtype === 'f32' ? NaN : dtype === 'i32' ? -0x55555556 : 0x7e01);
  const body = dtype === 'f16' ? f32ToF16(values) : dtype === 'bf16' ? f32ToBf16(values) : values;
  big.set(body as ArrayLike<number>, GUARD);
  return { dtype, shape: [...shape], strides: contiguousStrides(shape), data: big.subarray(GUARD, GUARD + n), offset: 0 };
}

function randn(rng: Rng, n: number): number[] {
  return Array.from({ length: n }, () => rng.normal());
}

function ints(shape: number[], values: ArrayLike<number>): HostTensor {
  return guarded('i32', shape, values);
}

function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[rng.int(0, xs.length)];
}

/** Distinct ids from a shuffled pool for used entries; unused entries hold anything (SPEC: ignored). */
function table(rng: Rng, rows: number, width: number, used: (b: number) => number, pool: number[], junk: () => number): number[] {
  const out: number[] = [];
  let next = 0;
  for (let b = 0; b < rows; b++) for (let j = 0; j < width; j++) out.push(j < used(b) ? pool[next++] : junk());
  return out;
}

const FLOATS: readonly DType[] = ['f32', 'f16', 'bf16'];
const sameClass = (dt: DType): DType[] => (dt === 'f32' ? ['f32'] : dt === 'i32' ? ['i32'] : ['f16', 'bf16']);

// ---------------------------------------------------------------- factories, one per family (SPEC sections 1-4)
const questMetadataFactory: OpFactory = {
  family: 'quest_metadata',
  sync: 'questMetadata',
  async: 'questMetadataAsync',
  time: 'timeQuestMetadata',
  make(rng, edge) {
    const dtype = pick(rng, FLOATS);
    const layout = pick(rng, ['NHD', 'HND'] as const);
    const [N, D, bs, metaRows] = [rng.int(1, 4), rng.int(1, 9), rng.int(1, 9), rng.int(1, 5)];
    const B = edge && rng.next() < 0.4 ? 0 : rng.int(1, 5);
    const MKBPR = rng.int(edge ? 0 : 1, 6);
    const lens = Array.from({ length: B }, (_, b) => (edge && rng.next() < 0.7 ? 0 : b === 0 && !edge ? rng.int(1, MKBPR * bs + 1) : rng.int(0, MKBPR * bs + 1)));
    const L = lens.map((l) => Math.ceil(l / bs));
    const P = L.map((l) => Math.ceil(l / metaRows));
    const MMBPR = Math.max(0, ...P) + rng.int(0, 2);
    const numBlocks = L.reduce((a, b) => a + b, 0) + rng.int(0, 4);
    const numMetaPages = P.reduce((a, b) => a + b, 0) + rng.int(0, 3);
    const blocks = rng.shuffle(Array.from({ length: numBlocks }, (_, i) => i));
    const pages = rng.shuffle(Array.from({ length: numMetaPages }, (_, i) => i));
    const kShape = layout === 'NHD' ? [numBlocks, bs, N, D] : [numBlocks, N, bs, D];
    const mShape = [numMetaPages, metaRows, N, D];
    const args: Record<string, unknown> = {
      kCache: guarded(dtype, kShape, randn(rng, numel(kShape))),
      blockTables: ints([B, MKBPR], table(rng, B, MKBPR, (b) => L[b], blocks, () => rng.int(-5, numBlocks + 5))),
      seqLens: ints([B], lens),
      metaBlockTables: ints([B, MMBPR], table(rng, B, MMBPR, (b) => P[b], pages, () => -1)),
      maxMeta: guarded(dtype, mShape, randn(rng, numel(mShape))),
      minMeta: guarded(dtype, mShape, randn(rng, numel(mShape))),
      layout,
    };
    const tensors: TensorDesc[] = [
      { name: 'kCache', ok: [dtype], tied: layout === 'NHD' ? [2, 3] : [1, 3] },
      { name: 'blockTables', ok: ['i32'], tied: [0] },
      { name: 'seqLens', ok: ['i32'], tied: [0] },
      { name: 'metaBlockTables', ok: ['i32'], tied: [0] },
      { name: 'maxMeta', ok: [dtype], tied: [2, 3], output: true },
      { name: 'minMeta', ok: [dtype], tied: [0, 1, 2, 3], output: true },
    ];
    if (rng.next() < 0.3) {
      args.startBlocks = ints([B], L.map((l) => rng.int(0, l + 2)));
      tensors.push({ name: 'startBlocks', ok: ['i32'], tied: [0], optional: true });
    }
    const used = lens.findIndex((l) => l > 0);
    const semantic: Mutation[] = [];
    if (used >= 0) {
      const at = (t: string, b: number, j: number, w: number, v: number) => (a: Record<string, unknown>) => void (((a[t] as HostTensor).data as Int32Array)[b * w + j] = v);
      for (const v of [numBlocks, -1, 2 ** 31 - 1, -(2 ** 31)])
        semantic.push({ what: `blockTables id ${v} outside the pool`, expect: ['RangeError'], apply: at('blockTables', used, rng.int(0, L[used]), MKBPR, v) });
      for (const v of [numMetaPages, -1])
        semantic.push({ what: `metaBlockTables id ${v} outside the pool`, expect: ['RangeError'], apply: at('metaBlockTables', used, rng.int(0, P[used]), MMBPR, v) });
    }
    const b = rng.int(0, Math.max(B, 1));
    if (B > 0) {
      semantic.push({ what: 'seqLens too long for blockTables', expect: ['RangeError'], apply: (a) => void (((a.seqLens as HostTensor).data as Int32Array)[b] = MKBPR * bs + rng.int(1, 40)) });
      semantic.push({ what: 'seqLens negative', expect: ['RangeError'], apply: (a) => void (((a.seqLens as HostTensor).data as Int32Array)[b] = -rng.int(1, 1000)) });
      if (MKBPR * bs > MMBPR * metaRows * bs)
        semantic.push({ what: 'seqLens too long for metaBlockTables', expect: ['RangeError'], apply: (a) => void (((a.seqLens as HostTensor).data as Int32Array)[b] = MMBPR * metaRows * bs + 1) });
      if (args.startBlocks)
        semantic.push({ what: 'startBlocks negative', expect: ['RangeError'], apply: (a) => void (((a.startBlocks as HostTensor).data as Int32Array)[b] = -1) });
    }
    return { args, tensors, scalars: [{ name: 'layout', kind: 'enum', values: ['NHD', 'HND'] }], semantic };
  },
};

// The factories below follow SPEC sections 2-4 argument names; they run once their ops are exported
// (the lead adjusts them to the final signatures after merging).
const questSelectFactory: OpFactory = {
  family: 'quest_select',
  sync: 'questSelect',
  async: 'questSelectAsync',
  time: 'timeQuestSelect',
  make(rng, edge) {
    const qd = pick(rng, FLOATS);
    const md = qd; // quest_select takes query and metadata in one dtype
    const [N, G, D, metaRows, bs] = [rng.int(1, 4), pick(rng, [1, 2, 4]), rng.int(1, 9), rng.int(1, 5), rng.int(1, 9)];
    const H = N * G;
    const B = edge && rng.next() < 0.4 ? 0 : rng.int(1, 5);
    const MMBPR = rng.int(edge ? 0 : 1, 4);
    const lens = Array.from({ length: B }, () => (edge && rng.next() < 0.7 ? 0 : rng.int(0, MMBPR * metaRows * bs + 1)));
    const P = lens.map((l) => Math.ceil(Math.ceil(l / bs) / metaRows));
    const numMetaPages = P.reduce((a, b) => a + b, 0) + rng.int(0, 3);
    const pages = rng.shuffle(Array.from({ length: numMetaPages }, (_, i) => i));
    const groupReduce = pick(rng, ['mean', 'perHead'] as const);
    const rows = groupReduce === 'mean' ? N : H;
    const k = rng.int(1, 10);
    const mShape = [numMetaPages, metaRows, N, D];
    const mx = randn(rng, numel(mShape));
    const args: Record<string, unknown> = {
      query: guarded(qd, [B, H, D], randn(rng, B * H * D)),
      maxMeta: guarded(md, mShape, mx.map((v) => Math.abs(v))),
      minMeta: guarded(md, mShape, mx.map((v) => -Math.abs(v))),
      metaBlockTables: ints([B, MMBPR], table(rng, B, MMBPR, (b) => P[b], pages, () => -1)),
      seqLens: ints([B], lens),
      k,
      selected: ints([B, rows, k], new Array(B * rows * k).fill(-7)),
      blockSize: bs,
      groupReduce,
      sinkBlocks: rng.int(0, 3),
      windowBlocks: rng.int(0, 3),
      tokensSinceMetadataUpdate: rng.int(0, Math.min(...lens, 5) + 1),
    };
    const tensors: TensorDesc[] = [
      { name: 'query', ok: [qd], tied: [0, 2] },
      { name: 'maxMeta', ok: [md], tied: [3] },
      { name: 'minMeta', ok: [md], tied: [0, 1, 2, 3] },
      { name: 'metaBlockTables', ok: ['i32'], tied: [0] },
      { name: 'seqLens', ok: ['i32'], tied: [0] },
      { name: 'selected', ok: ['i32'], tied: [0, 1, 2], output: true, optional: true },
    ];
    if (rng.next() < 0.5) {
      args.numSelected = ints([B, rows], new Array(B * rows).fill(-7));
      tensors.push({ name: 'numSelected', ok: ['i32'], tied: [0, 1], output: true, optional: true });
    }
    const semantic: Mutation[] = [];
    const used = lens.findIndex((l) => l > 0);
    if (used >= 0)
      for (const v of [numMetaPages, -1])
        semantic.push({ what: `metaBlockTables id ${v} outside the pool`, expect: ['RangeError'], apply: (a) => void (((a.metaBlockTables as HostTensor).data as Int32Array)[used * MMBPR + rng.int(0, P[used])] = v) });
    if (B > 0) {
      const b = rng.int(0, B);
      semantic.push({ what: 'seqLens too long for metaBlockTables', expect: ['RangeError'], apply: (a) => void (((a.seqLens as HostTensor).data as Int32Array)[b] = MMBPR * metaRows * bs + rng.int(1, 50)) });
      semantic.push({ what: 'seqLens negative', expect: ['RangeError'], apply: (a) => void (((a.seqLens as HostTensor).data as Int32Array)[b] = -1) });
      semantic.push({ what: 'tokensSinceMetadataUpdate > seqLens', expect: ['RangeError'], apply: (a) => void (a.tokensSinceMetadataUpdate = Math.max(...lens) + 1) });
    }
    return {
      args,
      tensors,
      scalars: [
        { name: 'k', kind: 'int', min: 1 },
        { name: 'blockSize', kind: 'int', min: 1 },
        { name: 'groupReduce', kind: 'enum', values: ['mean', 'perHead'] },
        { name: 'sinkBlocks', kind: 'int', min: 0 },
        { name: 'windowBlocks', kind: 'int', min: 0 },
        { name: 'tokensSinceMetadataUpdate', kind: 'int', min: 0 },
      ],
      semantic,
    };
  },
};

const pagedAttentionFactory: OpFactory = {
  family: 'paged_attention',
  sync: 'pagedAttention',
  async: 'pagedAttentionAsync',
  time: 'timePagedAttention',
  make(rng, edge) {
    const qd = pick(rng, FLOATS);
    const kvd = pick(rng, FLOATS);
    const layout = pick(rng, ['NHD', 'HND'] as const);
    const [N, G, D, bs] = [rng.int(1, 3), pick(rng, [1, 2, 4]), rng.int(1, 9), rng.int(1, 9)];
    const H = N * G;
    const B = edge && rng.next() < 0.4 ? 0 : rng.int(1, 4);
    const cap = rng.int(1, 5) * bs;
    const qLens = Array.from({ length: B }, () => (edge && rng.next() < 0.5 ? 0 : rng.int(1, 4)));
    const lens = qLens.map((q) => rng.int(q, Math.max(q, cap) + 1));
    const MKBPR = Math.max(1, ...lens.map((l) => Math.ceil(l / bs)));
    const L = lens.map((l) => Math.ceil(l / bs));
    const numBlocks = L.reduce((a, b) => a + b, 0) + rng.int(0, 4);
    const blocks = rng.shuffle(Array.from({ length: numBlocks }, (_, i) => i));
    const cu = [0];
    for (const q of qLens) cu.push(cu[cu.length - 1] + q);
    const T = cu[B];
    const cShape = layout === 'NHD' ? [numBlocks, bs, N, D] : [numBlocks, N, bs, D];
    const args: Record<string, unknown> = {
      q: guarded(qd, [T, H, D], randn(rng, T * H * D)),
      kCache: guarded(kvd, cShape, randn(rng, numel(cShape))),
      vCache: guarded(kvd, cShape, randn(rng, numel(cShape))),
      blockTables: ints([B, MKBPR], table(rng, B, MKBPR, (b) => L[b], blocks, () => -1)),
      seqLens: ints([B], lens),
      cuSeqlensQ: ints([B + 1], cu),
      out: guarded(qd, [T, H, D], new Array(T * H * D).fill(0)),
      layout,
      causal: rng.next() < 0.7,
    };
    const tensors: TensorDesc[] = [
      { name: 'q', ok: [qd], tied: [0, 1, 2] },
      { name: 'kCache', ok: [kvd], tied: [0, 1, 2, 3] },
      { name: 'vCache', ok: [kvd], tied: [0, 1, 2, 3] },
      { name: 'blockTables', ok: ['i32'], tied: [0] },
      { name: 'seqLens', ok: ['i32'], tied: [0] },
      { name: 'cuSeqlensQ', ok: ['i32'], tied: [0], optional: true },
      { name: 'out', ok: [qd], tied: [0, 1, 2], output: true, optional: true },
    ];
    if (rng.next() < 0.5) {
      args.lse = guarded('f32', [T, H], new Array(T * H).fill(0));
      tensors.push({ name: 'lse', ok: ['f32'], tied: [0, 1], output: true, optional: true });
    }
    if (rng.next() < 0.3) {
      args.sinkLogits = guarded('f32', [H], randn(rng, H));
      tensors.push({ name: 'sinkLogits', ok: ['f32'], tied: [0], optional: true });
    }
    if (rng.next() < 0.3) {
      args.alibiSlopes = guarded('f32', [H], randn(rng, H));
      tensors.push({ name: 'alibiSlopes', ok: ['f32'], tied: [0], optional: true });
    }
    const scalars: ScalarDesc[] = [{ name: 'layout', kind: 'enum', values: ['NHD', 'HND'] }, { name: 'causal', kind: 'bool' }];
    for (const [name, v] of [['scale', 0.3], ['softcap', 20]] as const)
      if (rng.next() < 0.4) {
        args[name] = v;
        // scale may be any finite number; softcap must be >= 0 (0 = off)
        scalars.push(name === 'scale' ? { name, kind: 'float' } : { name, kind: 'float', min: 0 });
      }
    for (const name of ['slidingWindow', 'sinkTokens'])
      if (rng.next() < 0.4) {
        args[name] = rng.int(1, 8);
        scalars.push({ name, kind: 'int', min: 0 });
      }
    const semantic: Mutation[] = [];
    const used = lens.findIndex((l) => l > 0);
    if (used >= 0)
      for (const v of [numBlocks, -1])
        semantic.push({ what: `blockTables id ${v} outside the pool`, expect: ['RangeError'], apply: (a) => void (((a.blockTables as HostTensor).data as Int32Array)[used * MKBPR + rng.int(0, L[used])] = v) });
    if (B > 0) {
      const b = rng.int(0, B);
      semantic.push({ what: 'seqLens too long for blockTables', expect: ['RangeError'], apply: (a) => void (((a.seqLens as HostTensor).data as Int32Array)[b] = MKBPR * bs + 1) });
      semantic.push({ what: 'seqLens negative', expect: ['RangeError'], apply: (a) => void (((a.seqLens as HostTensor).data as Int32Array)[b] = -1) });
      semantic.push({ what: 'cuSeqlensQ does not end at totalQ', expect: ['RangeError'], apply: (a) => void (((a.cuSeqlensQ as HostTensor).data as Int32Array)[B] = T + 1) });
      semantic.push({ what: 'cuSeqlensQ decreasing', expect: ['RangeError'], apply: (a) => void (((a.cuSeqlensQ as HostTensor).data as Int32Array)[0] = T + 1) });
    }
    return { args, tensors, scalars, semantic };
  },
};

const cacheWriteFactory: OpFactory = {
  family: 'kv_cache',
  sync: 'cacheWrite',
  async: 'cacheWriteAsync',
  time: 'timeCacheWrite',
  make(rng, edge) {
    const dt = pick(rng, FLOATS);
    const layout = pick(rng, ['NHD', 'HND'] as const);
    const [N, D, bs, numBlocks] = [rng.int(1, 4), rng.int(1, 9), rng.int(1, 9), rng.int(1, 6)];
    const T = edge ? rng.int(0, 2) : rng.int(1, Math.min(8, numBlocks * bs) + 1);
    const slots = rng.shuffle(Array.from({ length: numBlocks * bs }, (_, i) => i)).slice(0, T).map((s) => (rng.next() < 0.2 ? -1 : s));
    const cShape = layout === 'NHD' ? [numBlocks, bs, N, D] : [numBlocks, N, bs, D];
    const args: Record<string, unknown> = {
      key: guarded(dt, [T, N, D], randn(rng, T * N * D)),
      value: guarded(dt, [T, N, D], randn(rng, T * N * D)),
      kCache: guarded(dt, cShape, randn(rng, numel(cShape))),
      vCache: guarded(dt, cShape, randn(rng, numel(cShape))),
      slotMapping: ints([T], slots),
      layout,
    };
    const semantic: Mutation[] = [];
    if (T > 0)
      for (const v of [numBlocks * bs, -2, 2 ** 31 - 1])
        semantic.push({ what: `slotMapping ${v} outside the cache`, expect: ['RangeError'], apply: (a) => void (((a.slotMapping as HostTensor).data as Int32Array)[rng.int(0, T)] = v) });
    return {
      args,
      tensors: [
        { name: 'key', ok: [dt], tied: [0, 1, 2] },
        { name: 'value', ok: [dt], tied: [0, 1, 2] },
        { name: 'kCache', ok: [dt], tied: [0, 1, 2, 3], output: true },
        { name: 'vCache', ok: [dt], tied: [0, 1, 2, 3], output: true },
        { name: 'slotMapping', ok: ['i32'], tied: [0] },
      ],
      scalars: [{ name: 'layout', kind: 'enum', values: ['NHD', 'HND'] }],
      semantic,
    };
  },
};

const questMetadataAppendFactory: OpFactory = {
  family: 'kv_cache',
  sync: 'questMetadataAppend',
  async: 'questMetadataAppendAsync',
  time: 'timeQuestMetadataAppend',
  make(rng, edge) {
    const dt = pick(rng, FLOATS);
    const [N, D, bs, metaRows] = [rng.int(1, 4), rng.int(1, 9), rng.int(1, 9), rng.int(1, 5)];
    const B = rng.int(1, 4);
    const MMBPR = rng.int(1, 4);
    const numMetaPages = B * MMBPR + rng.int(0, 3);
    const pages = rng.shuffle(Array.from({ length: numMetaPages }, (_, i) => i));
    const T = edge ? rng.int(0, 2) : rng.int(1, 6);
    const seqIdx = Array.from({ length: T }, () => rng.int(0, B));
    const positions = Array.from({ length: T }, () => rng.int(0, MMBPR * metaRows * bs));
    const mShape = [numMetaPages, metaRows, N, D];
    const args: Record<string, unknown> = {
      key: guarded(dt, [T, N, D], randn(rng, T * N * D)),
      maxMeta: guarded(dt, mShape, randn(rng, numel(mShape))),
      minMeta: guarded(dt, mShape, randn(rng, numel(mShape))),
      metaBlockTables: ints([B, MMBPR], pages.slice(0, B * MMBPR)),
      seqIdx: ints([T], seqIdx),
      positions: ints([T], positions),
      blockSize: bs,
    };
    const semantic: Mutation[] = [];
    if (T > 0) {
      const t = rng.int(0, T);
      const set = (name: string, v: number) => (a: Record<string, unknown>) => void (((a[name] as HostTensor).data as Int32Array)[t] = v);
      semantic.push({ what: 'seqIdx outside the batch', expect: ['RangeError'], apply: set('seqIdx', pick(rng, [B, -1])) });
      semantic.push({ what: 'positions negative', expect: ['RangeError'], apply: set('positions', -1) });
      semantic.push({ what: 'positions beyond metaBlockTables', expect: ['RangeError'], apply: set('positions', MMBPR * metaRows * bs) });
      semantic.push({
        what: 'metaBlockTables id outside the pool',
        expect: ['RangeError'],
        apply: (a) => void (((a.metaBlockTables as HostTensor).data as Int32Array)[seqIdx[t] * MMBPR + Math.floor(Math.floor(positions[t] / bs) / metaRows)] = numMetaPages),
      });
    }
    return {
      args,
      tensors: [
        { name: 'key', ok: [dt], tied: [0, 1, 2] },
        { name: 'maxMeta', ok: [dt], tied: [2, 3], output: true },
        { name: 'minMeta', ok: [dt], tied: [0, 1, 2, 3], output: true },
        { name: 'metaBlockTables', ok: ['i32'], tied: [] },
        { name: 'seqIdx', ok: ['i32'], tied: [0] },
        { name: 'positions', ok: ['i32'], tied: [0] },
      ],
      scalars: [{ name: 'blockSize', kind: 'int', min: 1 }],
      semantic,
    };
  },
};

const ALL: OpFactory[] = [questMetadataFactory, questSelectFactory, pagedAttentionFactory, cacheWriteFactory, questMetadataAppendFactory];
const fns = api as unknown as Record<string, unknown>;
const OPS = ALL.filter((f) => typeof fns[f.sync] === 'function');

// ---------------------------------------------------------------- generic mutations
const WRONG_ARRAYS = [
  (n: number) => new Float64Array(n),
  (n: number) => new Uint8Array(n),
  (n: number) => new Int16Array(n),
  (n: number) => new BigInt64Array(n),
  (n: number) => new DataView(new ArrayBuffer(n * 4)),
  (n: number) => Array.from({ length: n }, () => 0),
];
const NON_TENSORS: unknown[] = [5, 'kCache', true, {}, [], new Float32Array(4), () => 0, Symbol('t'), { dtype: 'f32', shape: [2], strides: [1] }];

type Kind = 'dtype' | 'rank' | 'tiedDim' | 'badDim' | 'strides' | 'offset' | 'short' | 'arrayClass' | 'notTensor' | 'missing' | 'scalar' | 'semantic' | 'options' | 'args';
const KINDS: Kind[] = ['dtype', 'rank', 'tiedDim', 'badDim', 'strides', 'offset', 'short', 'arrayClass', 'notTensor', 'missing', 'scalar', 'semantic', 'options', 'args'];

interface Planned {
  what: string;
  expect: readonly ErrClass[];
  /** backend the error must name */
  backend: string;
  opts?: unknown;
  /** replaces the whole argument object */
  args?: unknown;
}

function resize(t: HostTensor, shape: number[]): void {
  const n = numel(shape);
  const C = t.data.constructor as new (n: number) => TypedData;
  t.shape = shape;
  t.strides = contiguousStrides(shape);
  t.data = new C(n);
  t.offset = 0;
}

/** Applies one mutation of the given kind, or returns undefined when it does not apply to this call. */
function mutate(kind: Kind, call: ValidCall, rng: Rng, family: string): Planned | undefined {
  const a = call.args;
  const t = pick(rng, call.tensors);
  const ht = a[t.name] as HostTensor;
  const n = numel(ht.shape);
  const base = { backend: 'cpu' };
  switch (kind) {
    case 'dtype': {
      const wrong = [...(['f32', 'f16', 'bf16', 'i32'] as DType[]).filter((d) => !t.ok.includes(d)), 'f64', 'int8', 'F32'];
      const v = pick(rng, wrong);
      ht.dtype = v as DType;
      return { ...base, what: `${t.name}.dtype = ${v}`, expect: ['TypeError'] };
    }
    case 'rank':
      if (rng.next() < 0.5 || ht.shape.length === 0) {
        ht.shape = [...ht.shape, 1];
        ht.strides = [...ht.strides, 1];
        return { ...base, what: `${t.name} one rank more`, expect: ['TypeError'] };
      }
      ht.shape = ht.shape.slice(1);
      ht.strides = ht.strides.slice(1);
      return { ...base, what: `${t.name} one rank less`, expect: ['TypeError'] };
    case 'tiedDim': {
      if (t.tied.length === 0) return undefined;
      const d = pick(rng, t.tied);
      const shape = [...ht.shape];
      shape[d] = shape[d] + (shape[d] > 0 && rng.next() < 0.5 ? -1 : 1);
      resize(ht, shape);
      return { ...base, what: `${t.name}.shape[${d}] disagrees (${shape})`, expect: ['RangeError'] };
    }
    case 'badDim': {
      if (ht.shape.length === 0) return undefined;
      const d = rng.int(0, ht.shape.length);
      const v = pick(rng, [-1, -7, NaN, Infinity, -Infinity, 2.5, 0.5, 2 ** 53, 2 ** 40, 2 ** 31]);
      ht.shape = [...ht.shape];
      ht.shape[d] = v;
      return { ...base, what: `${t.name}.shape[${d}] = ${v}`, expect: ['RangeError'] };
    }
    case 'strides': {
      const big = ht.shape.map((s, i) => (s > 1 ? i : -1)).filter((i) => i >= 0);
      const r = rng.int(0, 5);
      if (r === 0) {
        ht.strides = ht.strides.slice(0, -1).concat(ht.strides.length === 0 ? [1] : []);
        return { ...base, what: `${t.name}.strides of the wrong length`, expect: ['TypeError'] };
      }
      if (r === 1 && ht.strides.length > 0) {
        const v = pick(rng, [NaN, 1.5, Infinity, '1', null]);
        ht.strides = [...ht.strides];
        ht.strides[rng.int(0, ht.strides.length)] = v as number;
        return { ...base, what: `${t.name}.strides holds ${String(v)}`, expect: ['TypeError'] };
      }
      if (r === 2) {
        (ht as { strides: unknown }).strides = pick(rng, [undefined, 'C', 3]);
        return { ...base, what: `${t.name}.strides not an array`, expect: ['TypeError'] };
      }
      if (big.length === 0 || n === 0) return undefined;
      const d = pick(rng, big);
      ht.strides = [...ht.strides];
      if (r === 3) {
        ht.strides[d] = pick(rng, [2 ** 31, -(2 ** 31), ht.data.length, -1]);
        return { ...base, what: `${t.name}.strides[${d}] = ${ht.strides[d]} leaves the buffer`, expect: ['RangeError'] };
      }
      if (!t.output) return undefined;
      // an output must be contiguous; a reversed or overlapping view is rejected
      ht.strides[d] = pick(rng, [0, -ht.strides[d]]);
      return { ...base, what: `output ${t.name} not contiguous (strides ${ht.strides})`, expect: ['RangeError'] };
    }
    case 'offset': {
      if (n === 0) return undefined;
      const v = pick(rng, [-1, 0.5, ht.data.length, 2 ** 40, NaN]);
      ht.offset = v;
      return { ...base, what: `${t.name}.offset = ${v}`, expect: ['RangeError'] };
    }
    case 'short':
      if (n === 0) return undefined;
      ht.data = ht.data.subarray(0, rng.int(0, n));
      return { ...base, what: `${t.name}.data shorter than its shape`, expect: ['RangeError'] };
    case 'arrayClass': {
      const mk = pick(rng, [...WRONG_ARRAYS, (k: number) => (ht.dtype === 'i32' ? new Float32Array(k) : new Int32Array(k))]);
      (ht as { data: unknown }).data = mk(Math.max(n, 1));
      return { ...base, what: `${t.name}.data is a ${(ht as { data: object }).data.constructor.name}`, expect: ['TypeError'] };
    }
    case 'notTensor': {
      const v = pick(rng, t.optional ? NON_TENSORS : [...NON_TENSORS, null]);
      a[t.name] = v;
      return { ...base, what: `${t.name} = ${typeof v === 'symbol' ? 'Symbol' : Array.isArray(v) ? '[]' : typeof v === 'object' && v ? (v.constructor?.name ?? 'object') : String(v)}`, expect: ['TypeError'] };
    }
    case 'missing': {
      const req = call.tensors.filter((x) => !x.optional);
      const m = pick(rng, req);
      delete a[m.name];
      return { ...base, what: `${m.name} missing`, expect: ['TypeError'] };
    }
    case 'scalar': {
      if (call.scalars.length === 0) return undefined;
      const s = pick(rng, call.scalars);
      const wrongKind: unknown[] = s.kind === 'enum' ? [5, true, {}, ['NHD']] : s.kind === 'bool' ? ['yes', 1, {}] : ['3', true, {}, [1]];
      const wrongValue: unknown[] =
        s.kind === 'enum' ? ['nhd', 'XYZ', '', `${s.values[0]} `] : s.kind === 'bool' ? [] : s.kind === 'int' ? [s.min - 1, -(2 ** 31), NaN, Infinity, 2.5, 2 ** 53] : [NaN, Infinity, -Infinity, ...(s.min !== undefined ? [s.min - 1] : [])];
      const useValue = wrongValue.length > 0 && rng.next() < 0.6;
      const v = useValue ? pick(rng, wrongValue) : pick(rng, wrongKind);
      a[s.name] = v;
      return { ...base, what: `${s.name} = ${JSON.stringify(v) ?? String(v)}`, expect: [useValue ? 'RangeError' : 'TypeError'] };
    }
    case 'semantic': {
      if (call.semantic.length === 0) return undefined;
      const m = pick(rng, call.semantic);
      m.apply(a);
      return { ...base, what: m.what, expect: m.expect };
    }
    case 'options': {
      const infos = listBackends();
      const foreign = infos.filter((b) => !b.available || !b.families.includes(family));
      const r = rng.int(0, 4);
      if (r === 0) return { backend: 'nope', what: 'backend nope', expect: ['RangeError'], opts: { backend: 'nope' } };
      if (r === 1) {
        const v = pick(rng, [5, {}, true]);
        return { backend: String(v), what: `backend ${JSON.stringify(v)}`, expect: ['TypeError'], opts: { backend: v } };
      }
      if (r === 2) {
        const v = pick(rng, [5, 'cpu', null, true]);
        return { ...base, what: `options = ${String(v)}`, expect: ['TypeError'], opts: v };
      }
      if (foreign.length === 0) return undefined;
      const b = pick(rng, foreign);
      // a device backend sees host tensors (TypeError) or reports itself unavailable (SelectAttnError)
      return { backend: b.name, what: `backend ${b.name} (${b.available ? 'lacks the family' : 'unavailable'})`, expect: b.device ? ['TypeError', 'SelectAttnError'] : ['SelectAttnError'], opts: { backend: b.name } };
    }
    case 'args': {
      const v = pick(rng, [null, undefined, 5, 'args', true]);
      return { ...base, what: `arguments = ${String(v)}`, expect: ['TypeError'], args: v };
    }
  }
}

// ---------------------------------------------------------------- checking a call
function views(args: unknown): ArrayBufferView[] {
  if (typeof args !== 'object' || args === null) return [];
  const out: ArrayBufferView[] = [];
  for (const v of Object.values(args)) {
    if (ArrayBuffer.isView(v)) out.push(v);
    else if (v && typeof v === 'object' && ArrayBuffer.isView((v as { data?: unknown }).data)) out.push((v as { data: ArrayBufferView }).data);
  }
  return out;
}

/** A copy of every buffer reachable from the arguments, whole (so guard regions are included). */
function snapshot(args: unknown): { buf: ArrayBufferLike; bytes: Uint8Array }[] {
  const seen = new Set<ArrayBufferLike>();
  return views(args)
    .filter((v) => !seen.has(v.buffer) && seen.add(v.buffer))
    .map((v) => ({ buf: v.buffer, bytes: new Uint8Array(v.buffer.slice(0)) }));
}

function unchanged(snap: { buf: ArrayBufferLike; bytes: Uint8Array }[]): boolean {
  return snap.every(({ buf, bytes }) => {
    const now = new Uint8Array(buf);
    if (now.length !== bytes.length) return false;
    for (let i = 0; i < now.length; i++) if (now[i] !== bytes[i]) return false;
    return true;
  });
}

function classOf(e: unknown): ErrClass | string {
  if (e instanceof SelectAttnError) return 'SelectAttnError';
  if (e instanceof TypeError) return 'TypeError';
  if (e instanceof RangeError) return 'RangeError';
  return e instanceof Error ? `${e.constructor.name}: ${e.message}` : typeof e;
}

type Variant = 'sync' | 'async' | 'time';

async function invoke(op: OpFactory, variant: Variant, args: unknown, opts: unknown): Promise<unknown> {
  const name = variant === 'sync' ? op.sync : variant === 'async' ? op.async! : op.time!;
  const fn = fns[name] as (...x: unknown[]) => unknown;
  const r = variant === 'time' ? fn(args, 2, opts) : fn(args, opts);
  if (r instanceof Promise) {
    let timer: NodeJS.Timeout | undefined;
    const hang = new Promise((_, rej) => (timer = setTimeout(() => rej(new Error(`${name}: no answer within 10 s`)), 10_000)));
    try {
      return await Promise.race([r, hang]);
    } finally {
      clearTimeout(timer);
    }
  }
  return r;
}

const seed = process.env.SA_SEED ? Number(process.env.SA_SEED) : (Date.now() ^ (process.pid << 8)) >>> 0;
const MALFORMED = 2400;
const EDGE = 300;

describe(`bad-input fuzz (seed ${seed}; replay with SA_SEED=${seed})`, () => {
  it('covers every op exported from src/index.ts that has a factory', () => {
    console.log(`fuzz seed ${seed}; ops: ${OPS.map((o) => o.sync).join(', ')}`);
    expect(OPS.map((o) => o.sync)).toContain('questMetadata');
    // every exported op with a factory name is fuzzed; nothing exported is forgotten
    for (const f of ALL) expect(OPS.includes(f)).toBe(typeof fns[f.sync] === 'function');
  });

  for (const op of OPS) {
    const per = Math.ceil(MALFORMED / OPS.length);
    it(`${op.sync}: ${per} malformed calls throw the right error and write nothing`, async () => {
      const rng = new Rng(seed ^ op.sync.length * 0x9e3779b1);
      const variants: Variant[] = ['sync', ...(op.async && typeof fns[op.async] === 'function' ? ['async' as const] : []), ...(op.time && typeof fns[op.time] === 'function' ? ['time' as const] : [])];
      const tally = new Map<string, number>();
      const problems: string[] = [];
      let done = 0;
      for (let i = 0; done < per; i++) {
        const call = op.make(rng, false);
        // the unmutated call must succeed, or a "rejected" mutation would prove nothing
        try {
          await invoke(op, 'sync', call.args, undefined);
        } catch (e) {
          throw new Error(`seed ${seed}: the valid ${op.sync} call was rejected: ${(e as Error).message}`);
        }
        const kind = KINDS[i % KINDS.length];
        const p = mutate(kind, call, rng, op.family);
        if (!p) continue;
        done++;
        const args = 'args' in p ? p.args : call.args;
        const variant = pick(rng, variants);
        const snap = snapshot(args);
        let err: unknown;
        let threw = false;
        try {
          await invoke(op, variant, args, p.opts);
        } catch (e) {
          threw = true;
          err = e;
        }
        tally.set(kind, (tally.get(kind) ?? 0) + 1);
        const where = `${op.sync} [${variant}] ${p.what}`;
        if (!threw) {
          problems.push(`${where}: did not throw`);
          continue;
        }
        const cls = classOf(err);
        const e = err as { family?: string; backend?: string; code?: string; message?: string };
        if (!p.expect.includes(cls as ErrClass)) problems.push(`${where}: threw ${cls} (${e.message}), expected ${p.expect.join(' | ')}`);
        else if (e.family !== op.family || String(e.backend) !== p.backend) problems.push(`${where}: error carries family ${e.family} backend ${e.backend}, expected ${op.family} ${p.backend}`);
        else if (cls === 'SelectAttnError' && !['SA_ERR_INVALID_ARG', 'SA_ERR_UNSUPPORTED', 'SA_ERR_DEVICE', 'SA_ERR_OOM'].includes(e.code ?? '')) problems.push(`${where}: code ${e.code}`);
        else if (!e.message || !e.message.includes(op.family)) problems.push(`${where}: message does not name the family: ${e.message}`);
        if (!unchanged(snap)) problems.push(`${where}: a buffer changed on a rejected call`);
        if (problems.length > 20) break;
      }
      console.log(`${op.sync}: ${done} malformed calls by kind ${JSON.stringify(Object.fromEntries(tally))}`);
      expect(problems, `seed ${seed}`).toEqual([]);
      expect(done).toBeGreaterThanOrEqual(per);
      // every kind of mutation was exercised
      for (const k of KINDS) expect(tally.get(k) ?? 0, `${k} never applied`).toBeGreaterThan(0);
    });

    it(`${op.sync}: ${EDGE} valid edge calls (B = 0, seqLen 0, empty tables) succeed inside their buffers`, async () => {
      const rng = new Rng(seed ^ 0x51ed);
      let empties = 0;
      for (let i = 0; i < EDGE; i++) {
        const call = op.make(rng, true);
        const guards = views(call.args).map((v) => {
          const all = new Uint8Array(v.buffer);
          return { all, before: all.slice(0, v.byteOffset), after: all.slice(v.byteOffset + v.byteLength), off: v.byteOffset, len: v.byteLength };
        });
        const snap = snapshot(call.args);
        const lens = (call.args.seqLens as HostTensor | undefined)?.data;
        const allEmpty = lens !== undefined && lens.every((l) => l === 0);
        // in-place metadata builds write nothing for empty sequences; quest_select writes rows of -1
        const nothing = allEmpty && op.family === 'quest_metadata';
        try {
          await invoke(op, pick(rng, ['sync', ...(op.async && fns[op.async] ? ['async' as const] : [])]), call.args, undefined);
        } catch (e) {
          throw new Error(`seed ${seed}: edge call ${i} of ${op.sync} threw ${(e as Error).message}`);
        }
        for (const g of guards) {
          expect(Array.from(g.all.subarray(0, g.off))).toEqual(Array.from(g.before));
          expect(Array.from(g.all.subarray(g.off + g.len))).toEqual(Array.from(g.after));
        }
        // with no token anywhere nothing may be written at all
        if (nothing) {
          empties++;
          expect(unchanged(snap), `seed ${seed}: edge call ${i} wrote with every seqLen 0`).toBe(true);
        }
        if (allEmpty && op.family === 'quest_select') {
          const sel = (call.args.selected as HostTensor).data;
          expect(Array.from(sel).every((v) => v === -1), `seed ${seed}: edge call ${i}: empty sequences must select -1 only`).toBe(true);
          const ns = call.args.numSelected as HostTensor | undefined;
          if (ns) expect(Array.from(ns.data).every((v) => v === 0)).toBe(true);
        }
      }
      if (op.sync === 'questMetadata') expect(empties).toBeGreaterThan(10);
    });
  }
});
