// Seeded inputs for kv_cache: random caches and metadata (so untouched data is checked too), slot
// mappings with skips and repeats, appends at block starts and inside blocks, in shuffled token order.
import type { FloatDType, HostTensor } from '../../src/tensor.js';
import { fromF32, tensor } from '../../src/tensor.js';
import { Rng } from '../../src/testing/harness.js';
import type { Layout } from '../1_paged_attention/ref.js';

export function randomTensor(rng: Rng, dt: FloatDType, shape: number[]): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = rng.normal();
  return fromF32(dt, shape, v);
}

export interface WriteConfig {
  dtype: FloatDType;
  layout: Layout;
  N: number;
  D: number;
  bs: number;
  numBlocks: number;
  T: number;
  /** fraction of tokens with slot -1 */
  skip?: number;
  /** some slots repeat (last token wins) */
  repeats?: boolean;
}

export function genWrite(c: WriteConfig, seed: number) {
  const rng = new Rng(seed);
  const shape = c.layout === 'NHD' ? [c.numBlocks, c.bs, c.N, c.D] : [c.numBlocks, c.N, c.bs, c.D];
  const pool = c.numBlocks * c.bs;
  const slots = rng.shuffle(Array.from({ length: pool }, (_, i) => i)).slice(0, c.T);
  const map = new Int32Array(c.T);
  for (let t = 0; t < c.T; t++) {
    map[t] = rng.next() < (c.skip ?? 0) ? -1 : slots[t % slots.length];
    if (c.repeats && t > 0 && rng.next() < 0.3) map[t] = map[rng.int(0, t)];
  }
  return {
    key: randomTensor(rng, c.dtype, [c.T, c.N, c.D]),
    value: randomTensor(rng, c.dtype, [c.T, c.N, c.D]),
    kCache: randomTensor(rng, c.dtype, shape),
    vCache: randomTensor(rng, c.dtype, shape),
    slotMapping: tensor('i32', [c.T], map),
  };
}

export interface AppendConfig {
  dtype: FloatDType;
  N: number;
  D: number;
  bs: number;
  metaRows: number;
  /** current lengths per sequence before the call */
  seqLens: number[];
  /** new tokens per sequence (positions seqLens[b] ..) */
  newTokens: number[];
  /** extra unused metadata pages in the pool */
  slack?: number;
  /** also repeat some (sequence, position) pairs within the call */
  repeats?: boolean;
  /** two sequences share their first metadata page (prefix sharing) */
  shared?: boolean;
  /** keys and metadata mostly -0 / +0, so max/min must order -0 below +0 (as quest_metadata does) */
  signedZeros?: boolean;
}

/** Values from {-0, +0, -1, +1}, mostly zeros of either sign. */
function signedZeroTensor(rng: Rng, dt: FloatDType, shape: number[]): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const r = rng.next();
    v[i] = r < 0.4 ? -0 : r < 0.8 ? 0 : r < 0.9 ? -1 : 1;
  }
  return fromF32(dt, shape, v);
}

export function genAppend(c: AppendConfig, seed: number) {
  const rng = new Rng(seed);
  const B = c.seqLens.length;
  const per = c.bs * c.metaRows;
  const pages = c.seqLens.map((l, b) => Math.max(1, Math.ceil((l + c.newTokens[b]) / per)));
  const used = pages.reduce((a, b) => a + b, 0);
  const numPages = used + (c.slack ?? 2);
  const ids = rng.shuffle(Array.from({ length: numPages }, (_, i) => i));
  const mmbpr = Math.max(1, ...pages) + 1;
  const table = new Int32Array(B * mmbpr).fill(-1);
  let next = 0;
  for (let b = 0; b < B; b++) for (let j = 0; j < pages[b]; j++) table[b * mmbpr + j] = ids[next++];
  if (c.shared && B >= 2) table[1 * mmbpr] = table[0];
  const seq: number[] = [];
  const pos: number[] = [];
  for (let b = 0; b < B; b++)
    for (let i = 0; i < c.newTokens[b]; i++) {
      seq.push(b);
      pos.push(c.seqLens[b] + i);
    }
  if (c.repeats)
    for (let i = 0, n = seq.length; i < n; i += 3) {
      seq.push(seq[i]);
      pos.push(pos[i]);
    }
  const order = rng.shuffle(Array.from({ length: seq.length }, (_, i) => i));
  const T = seq.length;
  const values = c.signedZeros ? signedZeroTensor : randomTensor;
  return {
    key: values(rng, c.dtype, [T, c.N, c.D]),
    maxMeta: values(rng, c.dtype, [numPages, c.metaRows, c.N, c.D]),
    minMeta: values(rng, c.dtype, [numPages, c.metaRows, c.N, c.D]),
    metaBlockTables: tensor('i32', [B, mmbpr], table),
    seqIdx: tensor('i32', [T], Int32Array.from(order, (i) => seq[i])),
    positions: tensor('i32', [T], Int32Array.from(order, (i) => pos[i])),
    mmbpr,
  };
}
