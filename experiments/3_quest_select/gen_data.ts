// Seeded quest_select inputs: queries and metadata pages (uniform, realistic from structured keys, or
// exactly representable "ties" data), metadata tables in a larger shuffled pool, staleness values.
import type { Rng } from '../../src/testing/harness.js';
import { type FloatDType, type HostTensor, tensor } from '../../src/tensor.js';
import { type KeyStructure, keyStructure, keyValue, makeTables, nanElement, roundTo, type Tables } from '../2_quest_metadata/gen_data.js';

/** uniform: U(-1, 1) pairs; realistic: max/min of structured keys (outlier channels, a high-norm
 *  first token) with queries leaning on the outlier channels; ties: small dyadic values, so every
 *  score is exact in f32 and ties are real (tie-breaking is then checked exactly); flat: every block
 *  has the same metadata (all scores tie: the smallest ids win). */
export type DataKind = 'uniform' | 'realistic' | 'ties' | 'flat';

export interface SelectData {
  query: HostTensor;
  maxMeta: HostTensor;
  minMeta: HostTensor;
  /** decoded values (NaN where poison lives) */
  queryValues: Float64Array;
  maxValues: Float64Array;
  minValues: Float64Array;
  tables: Tables;
}

export interface SelectDataSpec {
  dtype: FloatDType;
  B: number;
  H: number;
  N: number;
  D: number;
  blockSize: number;
  metaRows: number;
  lens: number[];
  kind: DataKind;
  extraPages: number;
  extraColumns: number;
  shuffle: boolean;
  /** first stale block per sequence: its rows and later ones hold NaN (metadata not built yet) */
  staleFrom?: number[];
}

function store(dtype: FloatDType, n: number): Float32Array | Uint16Array {
  const a = dtype === 'f32' ? new Float32Array(n) : new Uint16Array(n);
  a.fill(nanElement(dtype));
  return a;
}

const TIE_VALUES = [-2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2];

export function makeSelectData(rng: Rng, s: SelectDataSpec): SelectData {
  const { dtype, B, H, N, D, blockSize: bs, metaRows: R } = s;
  const tables = makeTables(rng, { lens: s.lens, blockSize: bs, metaRows: R, extraBlocks: 0, extraPages: s.extraPages,
    extraColumns: s.extraColumns, shuffle: s.shuffle });
  const ks: KeyStructure | undefined = s.kind === 'realistic' ? keyStructure(rng, N, D) : undefined;

  // Query [B, H, D]
  const qStore = store(dtype, B * H * D);
  const qVal = new Float64Array(B * H * D);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const n = Math.floor(h / (H / N));
      for (let d = 0; d < D; d++) {
        let v: number;
        if (s.kind === 'uniform') v = rng.uniform(-1, 1);
        else if (s.kind === 'ties' || s.kind === 'flat') v = [-1, -0.5, 0, 0.5, 1][rng.int(0, 5)];
        else v = rng.normal() + 0.3 * Math.sign(ks!.outlier[n * D + d]) * (ks!.outlier[n * D + d] !== 0 ? 3 : 0);
        const r = roundTo(dtype, v);
        qStore[(b * H + h) * D + d] = r.bits;
        qVal[(b * H + h) * D + d] = r.value;
      }
    }
  }

  // Metadata rows of every real block; NaN elsewhere (unowned pages, rows past the last block, stale rows).
  const metaN = tables.numMetaPages * R * N * D;
  const mxStore = store(dtype, metaN);
  const mnStore = store(dtype, metaN);
  const mxVal = new Float64Array(metaN).fill(NaN);
  const mnVal = new Float64Array(metaN).fill(NaN);
  s.lens.forEach((len, b) => {
    const L = Math.ceil(len / bs);
    const stale = s.staleFrom ? s.staleFrom[b] : L;
    for (let j = 0; j < Math.min(L, stale); j++) {
      const page = tables.metaBlockTables[b * tables.maxMetaPagesPerSeq + Math.floor(j / R)];
      const valid = Math.min(bs, len - j * bs);
      for (let n = 0; n < N; n++) {
        const o = ((page * R + (j % R)) * N + n) * D;
        for (let d = 0; d < D; d++) {
          let hi: number;
          let lo: number;
          if (s.kind === 'realistic') {
            hi = -Infinity;
            lo = Infinity;
            for (let t = 0; t < valid; t++) {
              const v = roundTo(dtype, keyValue(rng, 'realistic', ks, j * bs + t, n, d, D)).value;
              hi = Math.max(hi, v);
              lo = Math.min(lo, v);
            }
          } else if (s.kind === 'flat') {
            hi = d % 3 === 0 ? 1.5 : 0.5;
            lo = d % 2 === 0 ? -1 : 0;
          } else {
            const pick = () => (s.kind === 'ties' ? TIE_VALUES[rng.int(0, TIE_VALUES.length)] : roundTo(dtype, rng.uniform(-1, 1)).value);
            const a = pick();
            const c = pick();
            hi = Math.max(a, c);
            lo = Math.min(a, c);
          }
          const rh = roundTo(dtype, hi);
          const rl = roundTo(dtype, lo);
          mxStore[o + d] = rh.bits;
          mnStore[o + d] = rl.bits;
          mxVal[o + d] = rh.value;
          mnVal[o + d] = rl.value;
        }
      }
    }
  });
  const metaShape = [tables.numMetaPages, R, N, D];
  return {
    query: tensor(dtype, [B, H, D], qStore),
    maxMeta: tensor(dtype, metaShape, mxStore),
    minMeta: tensor(dtype, metaShape, mnStore),
    queryValues: qVal,
    maxValues: mxVal,
    minValues: mnVal,
    tables,
  };
}

/** Staleness per sequence, favouring the edges: 0, the whole sequence, mru at a block boundary, 1. */
export function randomStaleness(rng: Rng, lens: number[], bs: number): Int32Array {
  return Int32Array.from(lens, (len) => {
    const r = rng.int(0, 6);
    if (len === 0 || r === 0) return 0;
    if (r === 1) return len;
    if (r === 2) return len - Math.floor(len / bs) * bs; // mru is a multiple of bs
    if (r === 3) return Math.min(len, 1);
    return rng.int(0, len + 1);
  });
}
