// ascend-sim family tests beyond the shared sweeps: quest_metadata bit-exact against cpu, quest_select
// and kv_cache against float64 references written here, with the coverage the Ascend kernels need
// (headDim 64..256 and odd, blockSize 8..256, G up to 16, more than 6 metadata pages, k % 8 != 0,
// every sink/window/stale combination, mixed dtypes), bad input, guards, and the launch counters.
import { describe, expect, it } from 'vitest';
import { ascendSimLastLaunch } from '../src/ascend_sim.js';
import { listBackends } from '../src/backends.js';
import { native } from '../src/native.js';
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../src/tensor.js';
import { Rng, runSeed } from '../src/testing/harness.js';

type F = 'f32' | 'f16' | 'bf16';
type Arr = Float32Array | Uint16Array;
const SIM = 'ascend-sim';
const SEED = runSeed();
const available = listBackends().some((b) => b.name === SIM && b.available);

// Random floats in [lo, hi) stored in dtype dt, with their exact values as float64.
function floats(dt: F, n: number, rng: Rng, lo = -2, hi = 2): { data: Arr; vals: Float64Array } {
  const vals = new Float64Array(n);
  if (dt === 'f32') {
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      data[i] = rng.uniform(lo, hi);
      vals[i] = data[i];
    }
    return { data, vals };
  }
  const data = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    const x = rng.uniform(lo, hi);
    data[i] = dt === 'f16' ? f32ToF16Bits(x) : f32ToBf16Bits(x);
    vals[i] = dt === 'f16' ? f16BitsToF32(data[i]) : bf16BitsToF32(data[i]);
  }
  return { data, vals };
}
function poisoned(dt: F, n: number): Arr {
  return dt === 'f32' ? new Float32Array(n).fill(NaN) : new Uint16Array(n).fill(dt === 'f16' ? 0x7e00 : 0x7fc0);
}
function bits(a: Arr): Uint32Array | Uint16Array {
  return a instanceof Float32Array ? new Uint32Array(a.buffer, a.byteOffset, a.length) : a;
}
function valueOf(dt: F, a: Arr, i: number): number {
  return dt === 'f32' ? a[i] : dt === 'f16' ? f16BitsToF32(a[i]) : bf16BitsToF32(a[i]);
}
// A permutation of [0, pool) as the table source: tables point anywhere in a pool bigger than needed.
function shuffledIds(rng: Rng, pool: number): number[] {
  return rng.shuffle([...Array(pool).keys()]);
}
function seqLensFor(rng: Rng, B: number, maxLen: number): Int32Array {
  const s = new Int32Array(B);
  for (let b = 0; b < B; b++) s[b] = rng.int(0, maxLen + 1);
  if (B > 1) s[1] = 0;  // an empty sequence
  if (B > 2) s[2] = maxLen;  // a full one
  return s;
}
function expectNativeError(fn: () => unknown, code: string, text: string): void {
  let caught: { saCode?: string; message?: string } | undefined;
  try {
    fn();
  } catch (e) {
    caught = e as { saCode?: string; message?: string };
  }
  expect(caught, 'expected an error').toBeDefined();
  expect(caught?.saCode).toBe(code);
  expect(caught?.message).toContain(text);
}

// ---------------------------------------------------------------------------- quest_metadata
interface MetaCase {
  dt: F;
  layout: 'NHD' | 'HND';
  B: number;
  N: number;
  D: number;
  bs: number;
  R: number;
  maxLen: number;
  start?: boolean;
}
function runMetadata(c: MetaCase, seed: number): string {
  const rng = new Rng(seed);
  const MKB = Math.ceil(c.maxLen / c.bs);
  const MMB = Math.ceil(MKB / c.R) + 1;
  const numBlocks = c.B * MKB + 5;
  const numMeta = c.B * MMB + 3;
  const seqLens = seqLensFor(rng, c.B, c.maxLen);
  const ids = shuffledIds(rng, numBlocks);
  const blockTables = new Int32Array(c.B * MKB).map((_, i) => ids[i]);
  const mids = shuffledIds(rng, numMeta);
  const metaBlockTables = new Int32Array(c.B * MMB).map((_, i) => mids[i]);
  const startBlocks = c.start ? new Int32Array(c.B).map((_, b) => rng.int(0, Math.ceil(seqLens[b] / c.bs) + 2)) : undefined;
  const k = floats(c.dt, numBlocks * c.bs * c.N * c.D, rng).data;
  const metaN = numMeta * c.R * c.N * c.D;
  const out: Record<string, [Arr, Arr]> = {};
  for (const be of ['cpu', SIM]) {
    const maxMeta = poisoned(c.dt, metaN);
    const minMeta = poisoned(c.dt, metaN);
    native().questMetadata(be, {
      dtype: c.dt, layout: c.layout, numSeqs: c.B, numKvHeads: c.N, headDim: c.D, blockSize: c.bs, metaRows: c.R,
      maxBlocksPerSeq: MKB, maxMetaPagesPerSeq: MMB, numBlocks, numMetaPages: numMeta, kCache: k, blockTables, seqLens,
      metaBlockTables, startBlocks, maxMeta, minMeta,
    });
    out[be] = [maxMeta, minMeta];
  }
  for (let w = 0; w < 2; w++) {
    const a = bits(out.cpu[w]);
    const b = bits(out[SIM][w]);
    for (let i = 0; i < a.length; i++)
      if (a[i] !== b[i]) return `${w ? 'minMeta' : 'maxMeta'}[${i}]: cpu bits ${a[i]}, ascend-sim bits ${b[i]}`;
  }
  return '';
}

const metaCases: MetaCase[] = [];
for (const dt of ['f32', 'f16', 'bf16'] as F[])
  for (const layout of ['NHD', 'HND'] as const) {
    metaCases.push({ dt, layout, B: 3, N: 2, D: 64, bs: 16, R: 16, maxLen: 300 });
    metaCases.push({ dt, layout, B: 2, N: 3, D: 96, bs: 8, R: 4, maxLen: 260, start: true });  // > 6 pages
    metaCases.push({ dt, layout, B: 2, N: 1, D: 5, bs: 16, R: 16, maxLen: 90 });
  }
metaCases.push({ dt: 'f16', layout: 'NHD', B: 2, N: 8, D: 128, bs: 128, R: 128, maxLen: 700 });
metaCases.push({ dt: 'bf16', layout: 'HND', B: 2, N: 2, D: 256, bs: 256, R: 8, maxLen: 3000 });
metaCases.push({ dt: 'f32', layout: 'NHD', B: 2, N: 4, D: 256, bs: 32, R: 2, maxLen: 500, start: true });  // 8 pages
metaCases.push({ dt: 'f16', layout: 'HND', B: 4, N: 2, D: 128, bs: 64, R: 1, maxLen: 500 });
// Rows longer than one UB chunk: N*D = 5120 (NHD) and D = 5000 (HND) are reduced in channel chunks.
metaCases.push({ dt: 'f32', layout: 'NHD', B: 2, N: 40, D: 128, bs: 16, R: 16, maxLen: 40 });
metaCases.push({ dt: 'bf16', layout: 'HND', B: 2, N: 1, D: 5000, bs: 8, R: 8, maxLen: 30 });

describe.skipIf(!available)('ascend-sim quest_metadata: bit-exact against cpu', () => {
  for (const c of metaCases) {
    const id = `quest_metadata(dtype=${c.dt},layout=${c.layout},B=${c.B},N=${c.N},D=${c.D},bs=${c.bs},R=${c.R},len<=${c.maxLen}${c.start ? ',startBlocks' : ''})`;
    it(id, () => {
      expect(runMetadata(c, SEED), `seed ${SEED}`).toBe('');
    });
  }
  it('rejects an id outside the pool before writing anything', () => {
    const maxMeta = poisoned('f16', 4 * 8 * 64);
    const minMeta = poisoned('f16', 4 * 8 * 64);
    const call = () =>
      native().questMetadata(SIM, {
        dtype: 'f16', layout: 'NHD', numSeqs: 1, numKvHeads: 1, headDim: 64, blockSize: 8, metaRows: 8, maxBlocksPerSeq: 2,
        maxMetaPagesPerSeq: 1, numBlocks: 4, numMetaPages: 4, kCache: new Uint16Array(4 * 8 * 64),
        blockTables: new Int32Array([1, 7]), seqLens: new Int32Array([12]), metaBlockTables: new Int32Array([0]), maxMeta, minMeta,
      });
    expectNativeError(call, 'SA_ERR_INVALID_ARG', 'blockTables[0, 1] = 7 is outside the pool [0, 4)');
    expect(maxMeta.every((x) => x === 0x7e00) && minMeta.every((x) => x === 0x7e00)).toBe(true);
  });
});

// ---------------------------------------------------------------------------- quest_select
interface SelectCase {
  qd: F;
  md: F;
  B: number;
  N: number;
  G: number;
  D: number;
  bs: number;
  R: number;
  k: number;
  maxLen: number;
  perHead?: boolean;
  sink?: number;
  window?: number;
  stale?: boolean;
}

// Checks one output row against the float64 model of SPEC 2 (tie-aware); returns '' when it matches.
function checkRow(c: SelectCase, got: number[], nsel: number, seq: number, tsu: number, score: (j: number) => [number, number]): string {
  const L = Math.ceil(seq / c.bs);
  const kk = Math.min(c.k, L);
  const sink = c.sink ?? 0;
  const win = c.window ?? 0;
  const stale = Math.floor((seq - tsu) / c.bs);
  const suf = Math.max(0, Math.min(stale, L - win));
  const forced: number[] = [];
  for (let j = L - 1; j >= suf; j--) forced.push(j);
  for (let j = 0; j < Math.min(sink, suf); j++) forced.push(j);
  const taken = new Set(forced.slice(0, kk));
  const want = kk - taken.size;
  if (nsel !== kk) return `numSelected ${nsel}, expected ${kk}`;
  for (let i = 0; i < c.k; i++) {
    if (i >= kk && got[i] !== -1) return `slot ${i} = ${got[i]}, expected -1`;
    if (i < kk && (got[i] < 0 || got[i] >= L)) return `slot ${i} = ${got[i]} is not a block of the sequence (L=${L})`;
    if (i > 0 && i < kk && got[i] <= got[i - 1]) return `ids not strictly ascending at slot ${i}: ${got.slice(0, kk)}`;
  }
  const sel = new Set(got.slice(0, kk));
  for (const f of taken) if (!sel.has(f)) return `forced block ${f} missing from ${got.slice(0, kk)}`;
  if (want === 0) return sel.size === taken.size ? '' : `extra blocks beyond the forced ones: ${got.slice(0, kk)}`;
  // Scored part: every pick has a reference score within the tie band of the want-th best, and every
  // candidate clearly above it is picked.
  const cands: { j: number; s: number; bound: number }[] = [];
  for (let j = Math.min(sink, suf); j < suf; j++) {
    const [s, bound] = score(j);
    cands.push({ j, s, bound });
  }
  cands.sort((a, b) => b.s - a.s || a.j - b.j);
  const thr = cands[want - 1].s;
  const tol = 2e-5 * Math.max(...cands.map((x) => x.bound)) + 1e-30;
  const picked = [...sel].filter((j) => !taken.has(j));
  if (picked.length !== want) return `${picked.length} scored picks, expected ${want}`;
  const byId = new Map(cands.map((x) => [x.j, x]));
  for (const j of picked) {
    const x = byId.get(j);
    if (!x) return `pick ${j} is not a candidate`;
    if (x.s < thr - tol) return `pick ${j} scores ${x.s}, below the cut ${thr} (tol ${tol})`;
  }
  for (const x of cands) if (x.s > thr + tol && !sel.has(x.j)) return `block ${x.j} scores ${x.s} above the cut ${thr} but is missing`;
  return '';
}

function runSelect(c: SelectCase, seed: number): string {
  const rng = new Rng(seed);
  const H = c.N * c.G;
  const rows = c.perHead ? H : c.N;
  const maxBlocks = Math.ceil(c.maxLen / c.bs);
  const MMB = Math.ceil(maxBlocks / c.R) + 1;
  const numMeta = c.B * MMB + 4;
  const seqLens = seqLensFor(rng, c.B, c.maxLen);
  const mids = shuffledIds(rng, numMeta);
  const metaBlockTables = new Int32Array(c.B * MMB).map((_, i) => mids[i]);
  const tsu = new Int32Array(c.B).map((_, b) => (c.stale ? rng.int(0, Math.min(seqLens[b], 3 * c.bs) + 1) : 0));
  const q = floats(c.qd, c.B * H * c.D, rng, -1, 1);
  const mx = floats(c.md, numMeta * c.R * c.N * c.D, rng, -1, 1);
  const mn = floats(c.md, numMeta * c.R * c.N * c.D, rng, -1, 1);
  const guard = 16;
  const selected = new Int32Array(c.B * rows * c.k + guard).fill(-0x55555556);
  const numSelected = new Int32Array(c.B * rows + guard).fill(-0x55555556);
  native().questSelect(SIM, {
    queryDtype: c.qd, metaDtype: c.md, numSeqs: c.B, numQoHeads: H, numKvHeads: c.N, headDim: c.D, blockSize: c.bs,
    metaRows: c.R, maxMetaPagesPerSeq: MMB, numMetaPages: numMeta, k: c.k, groupReduce: c.perHead ? 'perHead' : 'mean',
    sinkBlocks: c.sink ?? 0, windowBlocks: c.window ?? 0, query: q.data, maxMeta: mx.data, minMeta: mn.data, metaBlockTables,
    seqLens, tokensSinceUpdate: tsu, selected, numSelected,
  });
  for (let i = 0; i < guard; i++) {
    if (selected[c.B * rows * c.k + i] !== -0x55555556) return `selected guard element ${i} was written`;
    if (numSelected[c.B * rows + i] !== -0x55555556) return `numSelected guard element ${i} was written`;
  }
  for (let b = 0; b < c.B; b++)
    for (let r = 0; r < rows; r++) {
      const n = c.perHead ? Math.floor(r / c.G) : r;
      const heads = c.perHead ? [r] : [...Array(c.G).keys()].map((g) => n * c.G + g);
      const qbar = new Float64Array(c.D);
      for (const h of heads) for (let d = 0; d < c.D; d++) qbar[d] += q.vals[(b * H + h) * c.D + d] / heads.length;
      const score = (j: number): [number, number] => {
        const pid = metaBlockTables[b * MMB + Math.floor(j / c.R)];
        const off = ((pid * c.R + (j % c.R)) * c.N + n) * c.D;
        let s = 0;
        let bound = 0;
        for (let d = 0; d < c.D; d++) {
          s += Math.max(qbar[d] * mx.vals[off + d], qbar[d] * mn.vals[off + d]);
          bound += Math.abs(qbar[d]) * Math.max(Math.abs(mx.vals[off + d]), Math.abs(mn.vals[off + d]));
        }
        return [s, bound];
      };
      const row = b * rows + r;
      const why = checkRow(c, Array.from(selected.subarray(row * c.k, (row + 1) * c.k)), numSelected[row], seqLens[b], tsu[b], score);
      if (why) return `b=${b} row=${r} seqLen=${seqLens[b]} tsu=${tsu[b]}: ${why}`;
    }
  return '';
}

const selectCases: SelectCase[] = [];
const dts: F[] = ['f32', 'f16', 'bf16'];
for (const qd of dts)
  for (const md of dts) selectCases.push({ qd, md, B: 3, N: 2, G: 4, D: 64, bs: 16, R: 16, k: 8, maxLen: 1200 });
for (const D of [64, 96, 128, 256, 5, 130])
  selectCases.push({ qd: 'f16', md: 'f16', B: 3, N: 2, G: 2, D, bs: 16, R: 16, k: 13, maxLen: 900 });
for (const bs of [8, 16, 32, 64, 128, 256])
  selectCases.push({ qd: 'bf16', md: 'bf16', B: 3, N: 1, G: 8, D: 128, bs, R: bs, k: 5, maxLen: bs * 40 });
for (const G of [1, 4, 8, 16])
  for (const perHead of [false, true])
    selectCases.push({ qd: 'f16', md: 'f16', B: 2, N: 2, G, D: 128, bs: 16, R: 16, k: 7, maxLen: 700, perHead });
// More than 6 metadata pages (the seed's limit): 8-row pages, thousands of tokens.
selectCases.push({ qd: 'f16', md: 'f16', B: 3, N: 2, G: 4, D: 128, bs: 16, R: 8, k: 64, maxLen: 16 * 8 * 9 });
selectCases.push({ qd: 'f32', md: 'bf16', B: 2, N: 1, G: 16, D: 64, bs: 8, R: 4, k: 37, maxLen: 8 * 4 * 12 });
// Every sink / window / stale combination, k not a multiple of 8, k above and below the forced count.
for (const sink of [0, 2])
  for (const window of [0, 3])
    for (const stale of [false, true])
      for (const k of [3, 13])
        selectCases.push({ qd: 'f16', md: 'f32', B: 4, N: 2, G: 2, D: 64, bs: 8, R: 8, k, maxLen: 400, sink, window, stale });
// Large k: more than fits in one Sort tile, k > L for short sequences, and more picks by score than
// the running top list holds (4064): exact rounds plus an ascending final pass.
selectCases.push({ qd: 'f32', md: 'f32', B: 3, N: 1, G: 1, D: 64, bs: 8, R: 64, k: 4500, maxLen: 8 * 5000 });
selectCases.push({ qd: 'f32', md: 'f32', B: 3, N: 1, G: 1, D: 64, bs: 8, R: 16, k: 300, maxLen: 8 * 500 });
selectCases.push({ qd: 'f16', md: 'f16', B: 2, N: 1, G: 2, D: 64, bs: 16, R: 16, k: 1, maxLen: 2000, sink: 1, window: 1 });

describe.skipIf(!available)('ascend-sim quest_select: against a float64 model', () => {
  for (const c of selectCases) {
    const id = `quest_select(q=${c.qd},m=${c.md},B=${c.B},N=${c.N},G=${c.G},D=${c.D},bs=${c.bs},R=${c.R},k=${c.k},len<=${c.maxLen}` +
      `${c.perHead ? ',perHead' : ''}${c.sink ? `,sink=${c.sink}` : ''}${c.window ? `,window=${c.window}` : ''}${c.stale ? ',stale' : ''})`;
    it(id, () => {
      expect(runSelect(c, SEED), `seed ${SEED}`).toBe('');
    });
  }
  it('counts its DMA traffic and uses all 48 vector cores', () => {
    const c: SelectCase = { qd: 'f16', md: 'f16', B: 12, N: 8, G: 4, D: 128, bs: 16, R: 16, k: 8, maxLen: 1600 };
    expect(runSelect(c, SEED)).toBe('');
    const s = ascendSimLastLaunch();
    expect(s.kernel).toBe('sa_quest_select_f16_f16');
    expect(s.blockDim).toBe(48);
    expect(s.gmToUbBytes).toBeGreaterThan(0);
    expect(s.ubToGmBytes).toBe((12 * 8 * 8 + 12 * 8) * 4);  // selected plus numSelected, exact bytes
  });
  it('a hardware rule broken inside a kernel comes back as SA_ERR_DEVICE naming the core and the call', () => {
    const c: SelectCase = { qd: 'f16', md: 'f16', B: 2, N: 1, G: 1, D: 64, bs: 16, R: 16, k: 4, maxLen: 300 };
    process.env.SA_TWIN_UB_LIMIT = '4096';  // fault injection: a 4 KB Unified Buffer
    try {
      expectNativeError(() => runSelect(c, SEED), 'SA_ERR_DEVICE', 'sa_quest_select_f16_f16 core 0: TPipe::InitBuffer: UB overflow');
    } finally {
      delete process.env.SA_TWIN_UB_LIMIT;
    }
    expect(runSelect(c, SEED)).toBe('');
  });
  it('rejects tokensSinceMetadataUpdate > seqLen and ids outside the pool, writing nothing', () => {
    const base = {
      queryDtype: 'f32', metaDtype: 'f32', numSeqs: 1, numQoHeads: 1, numKvHeads: 1, headDim: 8, blockSize: 4, metaRows: 4,
      maxMetaPagesPerSeq: 1, numMetaPages: 2, k: 2, query: new Float32Array(8), maxMeta: new Float32Array(64),
      minMeta: new Float32Array(64), seqLens: new Int32Array([10]),
    };
    const selected = new Int32Array(2).fill(-7);
    expectNativeError(
      () => native().questSelect(SIM, { ...base, metaBlockTables: new Int32Array([0]), tokensSinceUpdate: new Int32Array([11]), selected }),
      'SA_ERR_INVALID_ARG', 'tokensSinceMetadataUpdate[0] = 11');
    expectNativeError(
      () => native().questSelect(SIM, { ...base, metaBlockTables: new Int32Array([5]), tokensSinceUpdate: new Int32Array([0]), selected }),
      'SA_ERR_INVALID_ARG', 'metaBlockTables[0, 0] = 5 is outside the pool [0, 2)');
    expect(Array.from(selected)).toEqual([-7, -7]);
  });
});

// ---------------------------------------------------------------------------- kv_cache
function runCacheWrite(dt: F, layout: 'NHD' | 'HND', T: number, N: number, D: number, bs: number, seed: number): string {
  const rng = new Rng(seed);
  const numBlocks = Math.ceil(T / bs) + 6;
  const slots = numBlocks * bs;
  const slotMapping = new Int32Array(T).map(() => (rng.next() < 0.15 ? -1 : rng.int(0, slots)));
  if (T > 3) slotMapping[T - 1] = slotMapping[0] >= 0 ? slotMapping[0] : 5;  // a duplicate: the later token wins
  const key = floats(dt, T * N * D, rng);
  const value = floats(dt, T * N * D, rng);
  const cacheN = numBlocks * bs * N * D;
  const kCache = floats(dt, cacheN, rng).data;
  const vCache = floats(dt, cacheN, rng).data;
  const refK = kCache.slice();
  const refV = vCache.slice();
  for (let t = 0; t < T; t++) {
    const s = slotMapping[t];
    if (s < 0) continue;
    const blk = Math.floor(s / bs);
    const off = s % bs;
    for (let n = 0; n < N; n++) {
      const dst = layout === 'NHD' ? ((blk * bs + off) * N + n) * D : ((blk * N + n) * bs + off) * D;
      for (let d = 0; d < D; d++) {
        refK[dst + d] = key.data[(t * N + n) * D + d];
        refV[dst + d] = value.data[(t * N + n) * D + d];
      }
    }
  }
  native().cacheWrite(SIM, {
    dtype: dt, layout, numTokens: T, numKvHeads: N, headDim: D, blockSize: bs, numBlocks, key: key.data, value: value.data,
    kCache, vCache, slotMapping,
  });
  const a = [bits(kCache), bits(vCache)];
  const b = [bits(refK), bits(refV)];
  for (let w = 0; w < 2; w++) for (let i = 0; i < a[w].length; i++) if (a[w][i] !== b[w][i]) return `${w ? 'vCache' : 'kCache'}[${i}] differs`;
  return '';
}

function runAppend(dt: F, T: number, B: number, N: number, D: number, bs: number, R: number, seed: number): string {
  const rng = new Rng(seed);
  const maxPos = bs * R * 3;
  const MMB = Math.ceil(maxPos / (bs * R)) + 1;
  const numMeta = B * MMB + 2;
  const mids = shuffledIds(rng, numMeta);
  const metaBlockTables = new Int32Array(B * MMB).map((_, i) => mids[i]);
  const seqIdx = new Int32Array(T);
  const positions = new Int32Array(T);
  for (let t = 0; t < T; t++) {
    seqIdx[t] = rng.int(0, B);
    // Cluster positions so several tokens share a block, some at a block's first position.
    const blk = rng.int(0, Math.ceil(maxPos / bs) / 4);
    positions[t] = blk * bs + (rng.next() < 0.3 ? 0 : rng.int(0, bs));
  }
  const key = floats(dt, T * N * D, rng);
  const metaN = numMeta * R * N * D;
  const mx = floats(dt, metaN, rng);
  const mn = floats(dt, metaN, rng);
  const refMax = Float64Array.from(mx.vals);
  const refMin = Float64Array.from(mn.vals);
  // One call per token in position order (ties: token order) - SPEC 4.
  const order = [...Array(T).keys()].sort((x, y) => positions[x] - positions[y] || x - y);
  for (const t of order) {
    const b = seqIdx[t];
    const j = Math.floor(positions[t] / bs);
    const pid = metaBlockTables[b * MMB + Math.floor(j / R)];
    const row = (pid * R + (j % R)) * N * D;
    for (let i = 0; i < N * D; i++) {
      const v = key.vals[t * N * D + i];
      if (positions[t] % bs === 0) refMax[row + i] = refMin[row + i] = v;
      else {
        refMax[row + i] = Math.max(refMax[row + i], v);
        refMin[row + i] = Math.min(refMin[row + i], v);
      }
    }
  }
  native().questMetadataAppend(SIM, {
    dtype: dt, numTokens: T, numSeqs: B, numKvHeads: N, headDim: D, blockSize: bs, metaRows: R, maxMetaPagesPerSeq: MMB,
    numMetaPages: numMeta, key: key.data, maxMeta: mx.data, minMeta: mn.data, metaBlockTables, seqIdx, positions,
  });
  for (let i = 0; i < metaN; i++) {
    if (valueOf(dt, mx.data, i) !== refMax[i]) return `maxMeta[${i}] = ${valueOf(dt, mx.data, i)}, expected ${refMax[i]}`;
    if (valueOf(dt, mn.data, i) !== refMin[i]) return `minMeta[${i}] = ${valueOf(dt, mn.data, i)}, expected ${refMin[i]}`;
  }
  return '';
}

describe.skipIf(!available)('ascend-sim kv_cache: against references', () => {
  for (const dt of dts)
    for (const layout of ['NHD', 'HND'] as const)
      for (const [T, N, D, bs] of [[9, 2, 64, 8], [40, 3, 5, 16], [17, 8, 128, 128], [3, 24, 2040, 4]] as const)
        it(`cacheWrite(dtype=${dt},layout=${layout},T=${T},N=${N},D=${D},bs=${bs})`, () => {
          expect(runCacheWrite(dt, layout, T, N, D, bs, SEED), `seed ${SEED}`).toBe('');
        });
  for (const dt of dts)
    for (const [T, B, N, D, bs, R] of [[12, 3, 2, 64, 8, 8], [60, 2, 1, 5, 4, 2], [30, 4, 4, 128, 16, 16], [7, 1, 2, 256, 128, 128], [9, 2, 40, 128, 4, 4]] as const)
      it(`questMetadataAppend(dtype=${dt},T=${T},B=${B},N=${N},D=${D},bs=${bs},R=${R})`, () => {
        expect(runAppend(dt, T, B, N, D, bs, R, SEED), `seed ${SEED}`).toBe('');
      });
  it('rejects a slot outside the cache and a negative position, writing nothing', () => {
    const kCache = new Float32Array(2 * 4 * 8).fill(3);
    expectNativeError(
      () => native().cacheWrite(SIM, {
        dtype: 'f32', layout: 'NHD', numTokens: 2, numKvHeads: 1, headDim: 8, blockSize: 4, numBlocks: 2, key: new Float32Array(16),
        value: new Float32Array(16), kCache, vCache: new Float32Array(64), slotMapping: new Int32Array([1, 8]),
      }),
      'SA_ERR_INVALID_ARG', 'slotMapping[1] = 8 is outside [-1, 8)');
    expect(kCache.every((x) => x === 3)).toBe(true);
    expectNativeError(
      () => native().questMetadataAppend(SIM, {
        dtype: 'f32', numTokens: 1, numSeqs: 1, numKvHeads: 1, headDim: 8, blockSize: 4, metaRows: 4, maxMetaPagesPerSeq: 1,
        numMetaPages: 1, key: new Float32Array(8), maxMeta: new Float32Array(32), minMeta: new Float32Array(32),
        metaBlockTables: new Int32Array([0]), seqIdx: new Int32Array([0]), positions: new Int32Array([-3]),
      }),
      'SA_ERR_INVALID_ARG', 'positions[0] = -3 is negative');
  });
});
