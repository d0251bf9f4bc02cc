// The shared quest_select sweep (vitest and `select-attn verify`): each case draws fresh seeded inputs,
// runs on a backend through place(), and checks every output row against the float64 reference:
// structure exactly, the selected set exactly except inside the tie band (see README).
import { type BackendName, DeviceTensor } from '../../src/backends.js';
import { type GroupReduce, type QuestSelectArgs, questSelect } from '../../src/ops/quest_select.js';
import { type Case, type CaseResult, type FamilySuite, Rng, place, poison, refusedOutsideMinimum } from '../../src/testing/harness.js';
import { type FloatDType, type HostTensor, contiguousStrides, tensor } from '../../src/tensor.js';
import { randomLens } from '../2_quest_metadata/gen_data.js';
import { type DataKind, makeSelectData, randomStaleness } from './gen_data.js';
import { type RowRef, refQuestSelect } from './ref.js';

export interface SelectCaseParams {
  dtype: FloatDType;
  D: number;
  H: number;
  N: number;
  bs: number;
  /** metaRows; the blockSize option is passed explicitly when it differs (or when explicitBs) */
  R: number;
  explicitBs?: boolean;
  B: number;
  maxLen: number;
  k: number;
  groupReduce: GroupReduce;
  sink: number;
  window: number;
  /** tokensSinceMetadataUpdate: absent, one number for the batch, or an i32 [B] tensor */
  stale: 'none' | 'number' | 'tensor';
  data: DataKind;
  shuffle: boolean;
  extraPages: number;
  extraColumns: number;
  /** pass preallocated outputs (with guards) instead of letting the op allocate them */
  prealloc?: boolean;
}


export function selectCaseId(p: SelectCaseParams): string {
  const opts = [
    p.groupReduce !== 'mean' ? `groupReduce=${p.groupReduce}` : '',
    p.sink ? `sink=${p.sink}` : '',
    p.window ? `window=${p.window}` : '',
    p.stale !== 'none' ? `stale=${p.stale}` : '',
    p.R !== p.bs ? `metaRows=${p.R}` : '',
    p.data !== 'uniform' ? `data=${p.data}` : '',
    p.prealloc ? 'prealloc' : '',
    !p.shuffle ? 'seqIds' : '',
  ].filter(Boolean).join(',');
  return `quest_select(dtype=${p.dtype},D=${p.D},bs=${p.bs},k=${p.k},G=${p.H / p.N},N=${p.N},B=${p.B},maxLen=${p.maxLen}${opts ? ',' + opts : ''})`;
}

/** Tie band factor: a score difference below u * (A_x + A_y) may go either way (A: ref magnitude). */
export function tieBand(dtype: FloatDType, D: number, G: number, exact: boolean): number {
  if (exact) return 0;
  // Any f32 evaluation (q̄ as a sum of G heads, D products in any order) errs by at most
  // (D + G + 2) * 2^-24 * A; f16/bf16 data allow one rounding of the dtype on top (SPEC).
  const f32 = 2 * (D + G + 2) * 2 ** -24;
  return f32 + (dtype === 'f16' ? 2 ** -11 : dtype === 'bf16' ? 2 ** -8 : 0);
}

/** Checks one output row; returns an error message or '' (and counts swaps inside the band). */
export function checkRow(ref: RowRef, got: Int32Array, num: number | undefined, u: number, stats: { swaps: number; tied: number }): string {
  const k = got.length;
  if (num !== undefined && num !== ref.count) return `numSelected ${num}, expected ${ref.count}`;
  for (let i = 0; i < k; i++) {
    if (i < ref.count) {
      if (!(got[i] >= 0 && got[i] < ref.L)) return `slot ${i} holds ${got[i]}, expected a block id in [0, ${ref.L})`;
      if (i > 0 && got[i] <= got[i - 1]) return `slots ${i - 1}, ${i} hold ${got[i - 1]}, ${got[i]}: not strictly ascending`;
    } else if (got[i] !== -1) return `slot ${i} holds ${got[i]}, expected -1 padding (count ${ref.count})`;
  }
  const set = new Set(Array.from(got.subarray(0, ref.count)));
  for (const f of ref.forced) if (!set.has(f)) return `forced block ${f} missing (forced in priority order: [${ref.forcedPriority}])`;
  if (ref.forced.length === ref.count) return ''; // all slots forced: the set is exactly ref.forced
  const cand = new Set(ref.candidates);
  const forced = new Set(ref.forced);
  const X: number[] = [];
  for (const j of set) {
    if (forced.has(j)) continue;
    if (!cand.has(j)) return `block ${j} selected but it is neither forced nor a candidate`;
    X.push(j);
  }
  const Y = ref.candidates.filter((j) => !set.has(j));
  const s = ref.scores;
  const A = ref.magnitude;
  if (u === 0) {
    // exact: every chosen block beats every rejected one by (score desc, id asc)
    for (const x of X) for (const y of Y) {
      if (s[y] > s[x] || (s[y] === s[x] && y < x)) return `block ${y} (score ${s[y]}) should beat selected block ${x} (score ${s[x]})`;
    }
  } else {
    let worstX = -1;
    let bestY = -1;
    for (const x of X) if (worstX < 0 || s[x] + u * A[x] < s[worstX] + u * A[worstX]) worstX = x;
    for (const y of Y) if (bestY < 0 || s[y] - u * A[y] > s[bestY] - u * A[bestY]) bestY = y;
    if (worstX >= 0 && bestY >= 0 && s[bestY] - s[worstX] > u * (A[worstX] + A[bestY]))
      return `rejected block ${bestY} (score ${s[bestY]}) beats selected block ${worstX} (score ${s[worstX]}) by more than the tie band ${u * (A[worstX] + A[bestY])}`;
  }
  const refX = new Set(Array.from(ref.selected.subarray(0, ref.count)).filter((j) => !forced.has(j)));
  const swapped = X.filter((j) => !refX.has(j)).length;
  stats.swaps += swapped;
  if (swapped) stats.tied++;
  return '';
}

function guardedI32(shape: number[], guard: number): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Int32Array(n + 2 * guard);
  poison(data, 'i32');
  return { dtype: 'i32', shape, strides: contiguousStrides(shape), data, offset: guard };
}

export function runSelectCase(p: SelectCaseParams, backend: BackendName, seed: number): CaseResult {
  const rng = new Rng(seed);
  const lens = randomLens(rng, p.B, p.maxLen, p.bs);
  let tArr: Int32Array | undefined;
  let tArg: number | Int32Array | undefined;
  if (p.stale === 'number') {
    tArg = rng.int(0, Math.min(...lens) + 1);
    tArr = new Int32Array(p.B).fill(tArg);
  } else if (p.stale === 'tensor') {
    tArr = randomStaleness(rng, lens, p.bs);
    tArg = tArr;
  }
  const staleFrom = tArr ? lens.map((len, b) => Math.floor((len - tArr![b]) / p.bs)) : undefined;
  const d = makeSelectData(rng, { dtype: p.dtype, B: p.B, H: p.H, N: p.N, D: p.D, blockSize: p.bs, metaRows: p.R, lens,
    kind: p.data, extraPages: p.extraPages, extraColumns: p.extraColumns, shuffle: p.shuffle, staleFrom });
  const seqLens = Int32Array.from(lens);
  const ref = refQuestSelect({
    B: p.B, H: p.H, N: p.N, D: p.D, blockSize: p.bs, metaRows: p.R, query: d.queryValues, maxMeta: d.maxValues, minMeta: d.minValues,
    metaBlockTables: d.tables.metaBlockTables, maxMetaPagesPerSeq: d.tables.maxMetaPagesPerSeq, seqLens, k: p.k,
    groupReduce: p.groupReduce, sinkBlocks: p.sink, windowBlocks: p.window, tokensSinceUpdate: tArr ?? new Int32Array(p.B),
  });
  const rows = p.groupReduce === 'mean' ? p.N : p.H;
  const guard = 29;
  const outSel = p.prealloc ? guardedI32([p.B, rows, p.k], guard) : undefined;
  const outNum = p.prealloc ? guardedI32([p.B, rows], guard) : undefined;
  const placed = place(backend, {
    query: d.query, maxMeta: d.maxMeta, minMeta: d.minMeta,
    metaBlockTables: tensor('i32', [p.B, d.tables.maxMetaPagesPerSeq], d.tables.metaBlockTables),
    seqLens: tensor('i32', [p.B], seqLens),
    tokens: tArg instanceof Int32Array ? tensor('i32', [p.B], tArg) : undefined,
    selected: outSel, numSelected: outNum,
  });
  try {
    const a = placed.args;
    const args: QuestSelectArgs = {
      query: a.query, maxMeta: a.maxMeta, minMeta: a.minMeta, metaBlockTables: a.metaBlockTables, seqLens: a.seqLens, k: p.k,
      groupReduce: p.groupReduce === 'mean' && rng.next() < 0.5 ? undefined : p.groupReduce,
      blockSize: p.R !== p.bs || p.explicitBs ? p.bs : undefined,
      sinkBlocks: p.sink || undefined, windowBlocks: p.window || undefined,
      tokensSinceMetadataUpdate: typeof tArg === 'number' ? tArg : a.tokens,
      selected: a.selected, numSelected: a.numSelected,
    };
    let res;
    try {
      res = questSelect(args, { backend });
    } catch (e) {
      const refused = refusedOutsideMinimum(backend, p, e);
      if (refused) return refused;
      throw e;
    }
    // Device outputs come back to the host; those the op allocated are freed now.
    const onDevice = res.selected instanceof DeviceTensor;
    const selT = res.selected instanceof DeviceTensor ? res.selected.download() : res.selected;
    const numT = res.numSelected instanceof DeviceTensor ? res.numSelected.download() : res.numSelected;
    if (onDevice && !p.prealloc) {
      (res.selected as DeviceTensor).dispose();
      (res.numSelected as DeviceTensor).dispose();
    }
    if (!onDevice && p.prealloc) {
      for (const [name, t] of [['selected', selT], ['numSelected', numT]] as const) {
        const n = t.shape.reduce((x, y) => x * y, 1);
        const data = t.data as Int32Array;
        for (let i = 0; i < guard; i++) {
          if (data[i] !== -0x55555556 || data[guard + n + i] !== -0x55555556)
            return { pass: false, detail: `${name}: guard element ${data[i] !== -0x55555556 ? i - guard : i} overwritten (seed ${seed})` };
        }
      }
    }
    const sel = (selT.data as Int32Array).subarray(selT.offset ?? 0);
    const num = (numT.data as Int32Array).subarray(numT.offset ?? 0);
    const u = tieBand(p.dtype, p.D, p.H / p.N, p.data === 'ties' || p.data === 'flat');
    const stats = { swaps: 0, tied: 0 };
    for (let b = 0; b < p.B; b++) {
      for (let r = 0; r < rows; r++) {
        const i = b * rows + r;
        const msg = checkRow(ref[b][r], sel.subarray(i * p.k, (i + 1) * p.k), num[i], u, stats);
        if (msg) {
          return { pass: false, detail: `sequence ${b} (seqLen ${lens[b]}${tArr ? `, t ${tArr[b]}` : ''}), row ${r}: ${msg}; ` +
            `got [${Array.from(sel.subarray(i * p.k, Math.min((i + 1) * p.k, i * p.k + 40)))}], expected [${Array.from(ref[b][r].selected.subarray(0, 40))}] (seed ${seed})` };
        }
      }
    }
    return { pass: true, detail: `${p.B * rows} rows ok (lens [${lens}]${stats.swaps ? `; ${stats.swaps} choices inside the tie band in ${stats.tied} rows` : ''})` };
  } finally {
    placed.dispose();
  }
}

/** The sweep (see README: dtypes x head dims x GQA, block sizes, k, every option and their combinations, data kinds). */
export function selectCases(): SelectCaseParams[] {
  const out: SelectCaseParams[] = [];
  const base: SelectCaseParams = { dtype: 'f16', D: 128, H: 8, N: 2, bs: 16, R: 16, B: 4, maxLen: 400, k: 8, groupReduce: 'mean',
    sink: 0, window: 0, stale: 'none', data: 'uniform', shuffle: true, extraPages: 3, extraColumns: 1 };
  const dtypes: FloatDType[] = ['f32', 'f16', 'bf16'];
  // dtype x headDim x G (mean)
  for (const dtype of dtypes) for (const D of [64, 96, 128, 256]) for (const G of [1, 4, 8]) {
    out.push({ ...base, dtype, D, H: 2 * G, N: 2, k: [3, 8, 13][G % 3], data: D === 96 ? 'realistic' : 'uniform' });
  }
  // block sizes 8..256 (and metaRows != blockSize)
  for (const dtype of dtypes) for (const bs of [8, 32, 64, 128, 256]) {
    out.push({ ...base, dtype, D: 64, bs, R: bs, maxLen: bs * 20 + 3, k: 5, explicitBs: bs === 64 });
  }
  for (const [bs, R] of [[16, 1], [16, 5], [8, 64], [32, 8], [16, 200]] as const) out.push({ ...base, D: 64, bs, R, maxLen: 600, k: 9 });
  // k from 1 to beyond the block count
  for (const k of [1, 2, 7, 16, 31, 64, 100, 1000]) for (const dtype of ['f16', 'bf16'] as const) out.push({ ...base, dtype, D: 64, k, maxLen: 500 });
  // perHead x G (incl. 16) x dtype
  for (const dtype of dtypes) for (const G of [1, 4, 8, 16]) {
    out.push({ ...base, dtype, D: 64, H: G * 2, N: 2, groupReduce: 'perHead', k: 6, maxLen: 300 });
  }
  out.push({ ...base, D: 128, H: 12, N: 4, groupReduce: 'perHead', k: 11, data: 'realistic' });
  out.push({ ...base, D: 96, H: 10, N: 2, groupReduce: 'perHead', k: 4 }); // G = 5: groups of 4 + 1
  out.push({ ...base, D: 64, H: 14, N: 2, groupReduce: 'perHead', k: 4 }); // G = 7: 4 + 2 + 1
  // mean with G = 16 and KV heads not a multiple of 4
  out.push({ ...base, D: 64, H: 48, N: 3, k: 10 }, { ...base, D: 128, H: 16, N: 1, k: 12 }, { ...base, D: 64, H: 35, N: 5, k: 7 },
    { ...base, D: 64, H: 96, N: 6, k: 9 });
  // options: sink, window, staleness (number / tensor), and their combinations, incl. more forced than k
  for (const dtype of dtypes) {
    for (const [sink, window, stale, k] of [
      [1, 0, 'none', 8], [4, 0, 'none', 8], [0, 1, 'none', 8], [0, 3, 'none', 8], [0, 0, 'number', 8], [0, 0, 'tensor', 8],
      [2, 2, 'tensor', 8], [1, 1, 'number', 4], [3, 4, 'tensor', 5], [6, 6, 'tensor', 4], [50, 0, 'none', 7], [0, 60, 'none', 7],
      [2, 0, 'tensor', 1], [0, 2, 'tensor', 2],
    ] as const) {
      out.push({ ...base, dtype, D: dtype === 'f32' ? 64 : 128, sink, window, stale, k, maxLen: 300 });
    }
  }
  for (const G of [1, 4]) {
    out.push({ ...base, D: 64, H: 2 * G, groupReduce: 'perHead', sink: 2, window: 1, stale: 'tensor', k: 6 });
    out.push({ ...base, D: 64, H: 2 * G, groupReduce: 'perHead', sink: 1, window: 0, stale: 'number', k: 3, data: 'ties' });
  }
  // exact ties: tie-breaking to the smaller id is checked exactly (scores are exact in f32)
  for (const dtype of dtypes) for (const G of [1, 4]) {
    out.push({ ...base, dtype, D: 64, H: 2 * G, k: 10, data: 'ties' });
    out.push({ ...base, dtype, D: 128, H: 2 * G, k: 25, data: 'ties', bs: 8, R: 8, sink: 1, window: 2 });
  }
  // every score equal: the smallest candidate ids win (short and sampled-threshold lengths)
  out.push({ ...base, D: 64, k: 9, data: 'flat', sink: 1 }, { ...base, D: 64, B: 2, H: 4, N: 2, bs: 8, R: 8, maxLen: 12000, k: 77, data: 'flat' });
  // realistic data (outlier channels, high-norm first token)
  for (const dtype of dtypes) for (const G of [1, 4, 8]) out.push({ ...base, dtype, D: 128, H: 2 * G, k: 16, data: 'realistic', maxLen: 600 });
  // batches, pools, tables, preallocated outputs
  out.push({ ...base, D: 64, B: 1, maxLen: 2000, k: 32 });
  out.push({ ...base, D: 64, B: 16, maxLen: 100, k: 3, N: 1, H: 4 });
  out.push({ ...base, D: 64, B: 70, maxLen: 60, k: 2, N: 1, H: 2, stale: 'tensor' }); // more sequences than one wave (64)
  out.push({ ...base, D: 64, B: 5, maxLen: 0, k: 4 }); // every sequence empty: rows of -1
  out.push({ ...base, D: 64, shuffle: false, extraPages: 0, extraColumns: 0, k: 6 });
  out.push({ ...base, D: 64, extraPages: 40, extraColumns: 7, k: 6 });
  for (const dtype of dtypes) out.push({ ...base, dtype, D: 64, prealloc: true, k: 7, sink: 1, stale: 'tensor' });
  out.push({ ...base, D: 64, prealloc: true, groupReduce: 'perHead', H: 8, k: 70 });
  // long sequences split across threads (few rows, many blocks)
  out.push({ ...base, D: 128, B: 1, H: 1, N: 1, bs: 8, R: 8, maxLen: 20000, k: 100 });
  out.push({ ...base, dtype: 'bf16', D: 64, B: 2, H: 4, N: 1, bs: 8, R: 64, maxLen: 12000, k: 40, groupReduce: 'perHead', window: 2 });
  out.push({ ...base, D: 64, B: 2, H: 2, N: 1, bs: 8, R: 8, maxLen: 16000, k: 50, data: 'ties' }); // sampled threshold with ties
  out.push({ ...base, D: 64, B: 3, H: 4, N: 1, maxLen: 4100, k: 20, groupReduce: 'perHead' }); // smallest sample (32 of 256)
  out.push({ ...base, dtype: 'f32', D: 96, B: 3, H: 4, N: 2, bs: 4, R: 16, maxLen: 9000, k: 300, sink: 3, stale: 'tensor', data: 'realistic' });
  // cpu-only shapes (outside SPEC's minimum; other backends may answer SA_ERR_UNSUPPORTED)
  out.push({ ...base, D: 80, k: 8 }, { ...base, D: 80, dtype: 'bf16', groupReduce: 'perHead', H: 8, k: 5 });
  out.push({ ...base, D: 5, bs: 3, R: 3, maxLen: 100, k: 4, dtype: 'f32' }, { ...base, D: 33, bs: 7, R: 4, maxLen: 150, k: 6, sink: 1, stale: 'tensor' });
  out.push({ ...base, D: 17, bs: 1, R: 10, maxLen: 60, k: 5, dtype: 'bf16', H: 6, N: 3, groupReduce: 'perHead' });
  return out;
}

export const suite: FamilySuite = {
  family: 'quest_select',
  cases(): Case[] {
    return selectCases().map((p) => ({
      id: selectCaseId(p),
      family: 'quest_select',
      run: (backend: BackendName, seed: number) => runSelectCase(p, backend, seed),
    }));
  },
  run: {
    inputs: ['query', 'maxMeta', 'minMeta', 'metaBlockTables', 'seqLens'],
    optionalInputs: ['tokensSinceMetadataUpdate'],
    outputs: ['selected', 'numSelected'],
    call(t, options, backend) {
      const placed = place(backend, t);
      try {
        const a = placed.args;
        const o = options as Record<string, number | string | undefined>;
        const res = questSelect({
          query: a.query, maxMeta: a.maxMeta, minMeta: a.minMeta, metaBlockTables: a.metaBlockTables, seqLens: a.seqLens,
          k: o.k as number, blockSize: o.blockSize as number | undefined, groupReduce: o.groupReduce as GroupReduce | undefined,
          sinkBlocks: o.sinkBlocks as number | undefined, windowBlocks: o.windowBlocks as number | undefined,
          tokensSinceMetadataUpdate: a.tokensSinceMetadataUpdate ?? (o.tokensSinceMetadataUpdate as number | undefined),
        }, { backend });
        const get = (x: HostTensor | DeviceTensor) => (x instanceof DeviceTensor ? x.download() : x);
        const out = { selected: get(res.selected), numSelected: get(res.numSelected) };
        for (const v of [res.selected, res.numSelected]) if (v instanceof DeviceTensor) v.dispose();
        return out;
      } finally {
        placed.dispose();
      }
    },
  },
};
