// Seeded inputs for paged_attention: shuffled block tables into a pool larger than needed (unused table
// entries hold -1 or ids outside the pool), Gaussian q/K/V rounded to their dtypes, option tensors.
import type { FloatDType, HostTensor } from '../../src/tensor.js';
import { fromF32, tensor, toF32 } from '../../src/tensor.js';
import { Rng } from '../../src/testing/harness.js';
import type { AttnProblem, Layout } from './ref.js';

export interface AttnConfig {
  qDtype: FloatDType;
  kvDtype: FloatDType;
  layout: Layout;
  H: number;
  N: number;
  D: number;
  bs: number;
  /** tokens in the cache per sequence (including its queries) */
  seqLens: number[];
  /** queries per sequence (the last qLens[b] tokens); all 1 = decode */
  qLens: number[];
  causal?: boolean;
  window?: number;
  sinks?: number;
  sinkLogits?: boolean;
  alibi?: boolean;
  softcap?: number;
  scale?: number;
  /** Quest-style selection per KV head ('kv') or per query head ('head') of k logical blocks */
  sel?: { rows: 'kv' | 'head'; k: number; dupes?: boolean; unsorted?: boolean };
  /** unused blocks in the pool (default 3) */
  slack?: number;
  /** table columns past the longest sequence (default 1) */
  widthPad?: number;
  /** leave cuSeqlensQ out (the default [0, 1, .., B]; every qLen must be 1) */
  omitCu?: boolean;
  /** ask for lse (default true) */
  lse?: boolean;
  /** standard deviation of q (default 1; larger gives peakier softmax) */
  qStd?: number;
  /** K rows grow along the sequence: position t scaled by 1 + kRamp * t / seqLen (default 0). Later
   * keys then keep raising the running max by large steps (online-softmax rescaling paths). */
  kRamp?: number;
}

export interface AttnData {
  problem: AttnProblem;
  /** q, kCache, vCache, blockTables, seqLens and the optional tensors that the config uses */
  tensors: Record<string, HostTensor>;
  /** scalar options for pagedAttention */
  options: { layout: Layout; scale?: number; causal?: boolean; slidingWindow?: number; sinkTokens?: number; softcap?: number };
}

function normals(rng: Rng, n: number, std = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * std;
  return a;
}

/** A float tensor of random values rounded to `dt`, with its exact values in float64. */
function randomTensor(rng: Rng, dt: FloatDType, shape: number[], std = 1): { t: HostTensor; v: Float64Array } {
  let n = 1;
  for (const d of shape) n *= d;
  const t = fromF32(dt, shape, normals(rng, n, std));
  return { t, v: Float64Array.from(toF32(t)) };
}

/** Random K cache whose rows are scaled by 1 + kRamp * position / seqLen (rows no sequence uses as is). */
function rampedKeys(rng: Rng, cfg: AttnConfig, shape: number[], table: Int32Array, mkbpr: number, L: number[]): { t: HostTensor; v: Float64Array } {
  const { N, D, bs, layout } = cfg;
  const a = normals(rng, shape.reduce((x, y) => x * y, 1));
  for (let b = 0; b < cfg.seqLens.length; b++)
    for (let j = 0; j < L[b]; j++)
      for (let tok = 0; tok < bs; tok++) {
        const f = 1 + (cfg.kRamp as number) * ((j * bs + tok) / Math.max(1, cfg.seqLens[b]));
        const blk = table[b * mkbpr + j];
        for (let n = 0; n < N; n++) {
          const o = layout === 'NHD' ? ((blk * bs + tok) * N + n) * D : ((blk * N + n) * bs + tok) * D;
          for (let d = 0; d < D; d++) a[o + d] *= f;
        }
      }
  const t = fromF32(cfg.kvDtype, shape, a);
  return { t, v: Float64Array.from(toF32(t)) };
}

export function genAttn(cfg: AttnConfig, seed: number): AttnData {
  const rng = new Rng(seed);
  const { H, N, D, bs, layout } = cfg;
  const B = cfg.seqLens.length;
  const L = cfg.seqLens.map((s) => Math.ceil(s / bs));
  const used = L.reduce((a, b) => a + b, 0);
  const numBlocks = used + (cfg.slack ?? 3);
  const mkbpr = Math.max(0, ...L) + (cfg.widthPad ?? 1);
  const ids = rng.shuffle(Array.from({ length: numBlocks }, (_, i) => i));
  const table = new Int32Array(B * mkbpr);
  let next = 0;
  for (let b = 0; b < B; b++)
    for (let j = 0; j < mkbpr; j++) table[b * mkbpr + j] = j < L[b] ? ids[next++] : j % 2 ? -1 : numBlocks + 7 + j;
  const cu = new Int32Array(B + 1);
  for (let b = 0; b < B; b++) cu[b + 1] = cu[b] + cfg.qLens[b];
  const totalQ = cu[B];
  const cacheShape = layout === 'NHD' ? [numBlocks, bs, N, D] : [numBlocks, N, bs, D];
  const q = randomTensor(rng, cfg.qDtype, [totalQ, H, D], cfg.qStd ?? 1);
  const k = cfg.kRamp ? rampedKeys(rng, cfg, cacheShape, table, mkbpr, L) : randomTensor(rng, cfg.kvDtype, cacheShape);
  const v = randomTensor(rng, cfg.kvDtype, cacheShape);

  const tensors: Record<string, HostTensor> = {
    q: q.t, kCache: k.t, vCache: v.t,
    blockTables: tensor('i32', [B, mkbpr], table),
    seqLens: tensor('i32', [B], Int32Array.from(cfg.seqLens)),
  };
  if (!cfg.omitCu) tensors.cuSeqlensQ = tensor('i32', [B + 1], cu);
  let sinkLogits: Float64Array | undefined;
  if (cfg.sinkLogits) {
    const s = Float32Array.from({ length: H }, () => rng.normal() * 2);
    tensors.sinkLogits = tensor('f32', [H], s);
    sinkLogits = Float64Array.from(s);
  }
  let alibi: Float64Array | undefined;
  if (cfg.alibi) {
    const s = Float32Array.from({ length: H }, (_, h) => 2 ** (-8 * (h + 1) / H) * rng.uniform(0.5, 1.5));
    tensors.alibiSlopes = tensor('f32', [H], s);
    alibi = Float64Array.from(s);
  }
  let selection: Int32Array | undefined;
  let selRows = 0;
  const selK = cfg.sel?.k ?? 0;
  if (cfg.sel) {
    selRows = cfg.sel.rows === 'kv' ? N : H;
    selection = new Int32Array(B * selRows * selK).fill(-1);
    for (let b = 0; b < B; b++)
      for (let r = 0; r < selRows; r++) {
        const pick = rng.shuffle(Array.from({ length: L[b] }, (_, j) => j)).slice(0, selK);
        if (!cfg.sel.unsorted) pick.sort((x, y) => x - y);
        const row = pick.concat(new Array<number>(selK - pick.length).fill(-1));
        if (cfg.sel.dupes && pick.length >= 1 && selK >= 2) row[rng.int(0, selK)] = pick[rng.int(0, pick.length)];
        if (cfg.sel.unsorted) rng.shuffle(row);
        selection.set(row, (b * selRows + r) * selK);
      }
    tensors.blockSelection = tensor('i32', [B, selRows, selK], selection);
  }
  const scale = cfg.scale ?? 1 / Math.sqrt(D);
  const problem: AttnProblem = {
    B, H, N, D, bs, layout, q: q.v, k: k.v, v: v.v, blockTables: table, mkbpr, seqLens: Int32Array.from(cfg.seqLens),
    cuSeqlensQ: cu, scale: Math.fround(scale), causal: cfg.causal ?? true, slidingWindow: cfg.window ?? 0,
    sinkTokens: cfg.sinks ?? 0, sinkLogits, alibiSlopes: alibi, softcap: cfg.softcap ?? 0,
    blockSelection: selection, selRows, selK,
  };
  const options: AttnData['options'] = { layout };
  if (cfg.scale !== undefined) options.scale = cfg.scale;
  if (cfg.causal !== undefined) options.causal = cfg.causal;
  if (cfg.window !== undefined) options.slidingWindow = cfg.window;
  if (cfg.sinks !== undefined) options.sinkTokens = cfg.sinks;
  if (cfg.softcap !== undefined) options.softcap = cfg.softcap;
  return { problem, tensors, options };
}
