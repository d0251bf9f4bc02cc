// Seeded data for the Quest families: sequence lengths, shuffled paged tables inside larger pools,
// and keys (uniform, or realistic: a few large-magnitude outlier channels and a high-norm first token).
import type { Rng } from '../../src/testing/harness.js';
import { type FloatDType, type HostTensor, bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits, tensor } from '../../src/tensor.js';
import { type Layout, pagedOffset } from './ref.js';

/** uniform: U(-1, 1); realistic: outlier channels + high-norm first token; signs: values from {-1, -0, +0, 1} (max/min of signed zeros). */
export type KeyKind = 'uniform' | 'realistic' | 'signs';

/** Rounds v to dtype and returns the stored element (f32 value or 16-bit pattern) and its value. */
export function roundTo(dtype: FloatDType, v: number): { bits: number; value: number } {
  if (dtype === 'f16') {
    const bits = f32ToF16Bits(v);
    return { bits, value: f16BitsToF32(bits) };
  }
  if (dtype === 'bf16') {
    const bits = f32ToBf16Bits(v);
    return { bits, value: bf16BitsToF32(bits) };
  }
  const f = Math.fround(v);
  return { bits: f, value: f };
}

/** Poison element per dtype (a NaN): shows up in max/min or scores if a kernel reads what it must not. */
export function nanElement(dtype: FloatDType): number {
  return dtype === 'f16' ? 0x7e00 : dtype === 'bf16' ? 0x7fc0 : NaN;
}

/**
 * B lengths up to maxLen covering the edge cases: 0, exact multiples of bs, partial last blocks, 1.
 * The first entries are the edge cases (as many as fit in B), the rest random.
 */
export function randomLens(rng: Rng, B: number, maxLen: number, bs: number): number[] {
  const edges = [maxLen, 0, bs * Math.max(1, Math.floor(maxLen / bs / 2)), 1, Math.max(1, maxLen - 1)];
  const out: number[] = [];
  for (let b = 0; b < B; b++) out.push(b < edges.length && b < B - 1 ? Math.min(edges[b], maxLen) : rng.int(0, maxLen + 1));
  return rng.shuffle(out);
}

export interface Tables {
  blockTables: Int32Array; // [B, MKBPR]
  maxBlocksPerSeq: number;
  numBlocks: number;
  metaBlockTables: Int32Array; // [B, MMBPR]
  maxMetaPagesPerSeq: number;
  numMetaPages: number;
}

export interface TableSpec {
  lens: number[];
  blockSize: number;
  metaRows: number;
  /** extra (unused) blocks / pages in the pools */
  extraBlocks: number;
  extraPages: number;
  /** extra table columns beyond what the longest sequence needs */
  extraColumns: number;
  /** physical ids in shuffled order (else sequential) */
  shuffle: boolean;
  /** sequence 1 shares its first blocks with sequence 0 (prefix caching), when both are long enough */
  sharePrefix?: boolean;
}

/** Paged tables: distinct physical ids (except a shared prefix), unused entries -1 or garbage ids. */
export function makeTables(rng: Rng, s: TableSpec): Tables {
  const B = s.lens.length;
  const Ls = s.lens.map((l) => Math.ceil(l / s.blockSize));
  const Ps = Ls.map((L) => Math.ceil(L / s.metaRows));
  const MKBPR = Math.max(0, ...Ls) + s.extraColumns;
  const MMBPR = Math.max(0, ...Ps) + s.extraColumns;
  const totalBlocks = Ls.reduce((a, b) => a + b, 0);
  const totalPages = Ps.reduce((a, b) => a + b, 0);
  const numBlocks = totalBlocks + s.extraBlocks;
  const numMetaPages = totalPages + s.extraPages;
  const ids = (n: number) => {
    const a = Array.from({ length: n }, (_, i) => i);
    return s.shuffle ? rng.shuffle(a) : a;
  };
  const blockIds = ids(numBlocks);
  const pageIds = ids(numMetaPages);
  const junk = (pool: number) => (rng.next() < 0.5 ? -1 : pool + rng.int(0, 1000));
  const blockTables = new Int32Array(B * MKBPR);
  const metaBlockTables = new Int32Array(B * MMBPR);
  let nb = 0;
  let np = 0;
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < MKBPR; j++) blockTables[b * MKBPR + j] = j < Ls[b] ? blockIds[nb++] : junk(numBlocks);
    for (let m = 0; m < MMBPR; m++) metaBlockTables[b * MMBPR + m] = m < Ps[b] ? pageIds[np++] : junk(numMetaPages);
  }
  if (s.sharePrefix && B >= 2) {
    const shared = Math.min(Ls[0], Ls[1]) - 1; // full blocks only: the last block of seq 0 may be partial
    for (let j = 0; j < shared; j++) blockTables[MKBPR + j] = blockTables[j];
  }
  return { blockTables, maxBlocksPerSeq: MKBPR, numBlocks, metaBlockTables, maxMetaPagesPerSeq: MMBPR, numMetaPages };
}

/** Per-(head, channel) structure of realistic keys: a few outlier channels with a fixed sign and size. */
export interface KeyStructure {
  outlier: Float64Array; // [N, D]: 0 or the channel's signed magnitude
}

export function keyStructure(rng: Rng, N: number, D: number): KeyStructure {
  const outlier = new Float64Array(N * D);
  const per = Math.max(1, Math.min(4, Math.floor(D / 16)));
  for (let n = 0; n < N; n++) {
    for (let i = 0; i < per; i++) {
      const d = rng.int(0, D);
      outlier[n * D + d] = (rng.next() < 0.5 ? -1 : 1) * rng.uniform(6, 14);
    }
  }
  return { outlier };
}

/** One key element for token position `pos` of a sequence, head n, channel d. */
export function keyValue(rng: Rng, kind: KeyKind, ks: KeyStructure | undefined, pos: number, n: number, d: number, D: number): number {
  if (kind === 'uniform') return rng.uniform(-1, 1);
  if (kind === 'signs') {
    const r = rng.int(0, 4);
    return r === 0 ? -1 : r === 1 ? -0 : r === 2 ? 0 : 1;
  }
  const o = ks!.outlier[n * D + d];
  let v = 0.7 * rng.normal() + (o !== 0 ? o * rng.uniform(0.8, 1.2) : 0);
  if (pos === 0) v *= 6; // the attention-sink token: a much larger norm
  return v;
}

export interface KeyCache {
  kCache: HostTensor;
  /** decoded values in the cache's layout; NaN where nothing valid lives */
  values: Float64Array;
}

/**
 * A paged K cache holding every sequence's keys at its table's blocks; slots past seqLens and unused
 * blocks hold NaN poison. Shared prefix blocks are written once (by sequence 0).
 */
export function makeKeyCache(rng: Rng, kind: KeyKind, dtype: FloatDType, layout: Layout, lens: number[], t: Tables,
  bs: number, N: number, D: number, ks?: KeyStructure): KeyCache {
  const n = t.numBlocks * bs * N * D;
  const stored = dtype === 'f32' ? new Float32Array(n) : new Uint16Array(n);
  stored.fill(nanElement(dtype));
  const values = new Float64Array(n).fill(NaN);
  const structure = ks ?? (kind === 'realistic' ? keyStructure(rng, N, D) : undefined);
  const seen = new Uint8Array(t.numBlocks);
  lens.forEach((len, b) => {
    const L = Math.ceil(len / bs);
    for (let j = 0; j < L; j++) {
      const p = t.blockTables[b * t.maxBlocksPerSeq + j];
      if (seen[p]) continue; // shared prefix block, already written
      seen[p] = 1;
      const valid = Math.min(bs, len - j * bs);
      for (let s = 0; s < valid; s++) {
        for (let h = 0; h < N; h++) {
          const o = pagedOffset(layout, p, s, h, bs, N, D);
          for (let d = 0; d < D; d++) {
            const r = roundTo(dtype, keyValue(rng, kind, structure, j * bs + s, h, d, D));
            stored[o + d] = r.bits;
            values[o + d] = r.value;
          }
        }
      }
    }
  });
  const shape = layout === 'NHD' ? [t.numBlocks, bs, N, D] : [t.numBlocks, N, bs, D];
  return { kCache: tensor(dtype, shape, stored), values };
}
