// Seeded synthetic decode problem with the attention structure Quest relies on: a high-norm sink token,
// local attention (recent keys lean toward the query), a few "needle" keys far back aligned with the
// query, and Gaussian noise everywhere else. GQA: query heads of a group share their KV head's direction.
import type { Layout } from '../1_paged_attention/ref.js';
import { type FloatDType, type HostTensor, type TypedData, f32ToBf16, f32ToF16, tensor } from '../../src/tensor.js';
import { Rng } from '../../src/testing/harness.js';

export interface DecodeConfig {
  /** dtype of the queries, the K/V caches and the metadata */
  dtype: FloatDType;
  B: number;
  H: number;
  N: number;
  D: number;
  /** tokens per KV block */
  bs: number;
  /** rows per metadata page (default bs) */
  metaRows?: number;
  layout?: Layout;
  /** tokens per sequence before decoding (may differ per sequence; partial last blocks are fine) */
  promptLens: number[];
  /** decode steps: one new token per sequence per step */
  steps: number;
  /** needle tokens per (sequence, KV head) (default 4) */
  needles?: number;
  /** expected attention-mass shares at the end of the prompt, for a typical query: the sink token,
   *  all needles together, the local window; the noise tokens get the rest (defaults 0.3, 0.3, 0.25) */
  sinkMass?: number;
  needleMass?: number;
  localMass?: number;
  /** tokens before the query that lean toward it (default 48), and their decay length (default 16) */
  localTokens?: number;
  localDecay?: number;
  /** the query/key direction of a head leans on a few "outlier" channels, as in trained models: this
   *  fraction of channels (default 1/8) gets `outlierWeight` (default 8) times the weight of the others */
  outlierFraction?: number;
  outlierWeight?: number;
  /** unused physical blocks / metadata pages added to the pools (default 3) */
  poolSlack?: number;
  /** physical ids in random order (default true, a fragmented pool); false: each sequence's blocks are
   *  consecutive and in order */
  shuffleTables?: boolean;
}

export type ResolvedConfig = Required<DecodeConfig>;

export interface DecodeProblem {
  cfg: ResolvedConfig;
  /** [T, N, D] keys and values of every prompt token, sequence after sequence (T = sum of promptLens) */
  promptKey: HostTensor;
  promptValue: HostTensor;
  /** row of the first prompt token of each sequence in promptKey */
  promptOffset: number[];
  /** per decode step: [B, N, D] the new token of every sequence, and [B, H, D] its queries */
  stepKey: HostTensor[];
  stepValue: HostTensor[];
  stepQuery: HostTensor[];
  /** [B, N, needles] needle positions (sorted per row) */
  needlePos: Int32Array;
  /** [B, width] physical block ids (shuffled pool of numBlocks; -1 past each sequence's final length) */
  blockTables: Int32Array;
  blockWidth: number;
  numBlocks: number;
  /** [B, metaWidth] physical metadata-page ids in a shuffled pool of numMetaPages */
  metaTables: Int32Array;
  metaWidth: number;
  numMetaPages: number;
}

/** Tokens of sequence b after `steps` decode steps. */
export function finalLen(cfg: ResolvedConfig, b: number): number {
  return cfg.promptLens[b] + cfg.steps;
}

export function resolve(c: DecodeConfig): ResolvedConfig {
  const r: ResolvedConfig = {
    metaRows: c.bs, layout: 'NHD', needles: 4, sinkMass: 0.3, needleMass: 0.3, localMass: 0.25, localTokens: 48, localDecay: 16,
    outlierFraction: 1 / 8, outlierWeight: 8, poolSlack: 3, shuffleTables: true, ...c,
  } as ResolvedConfig;
  if (r.promptLens.length !== r.B) throw new RangeError(`promptLens: expected ${r.B} lengths, received ${r.promptLens.length}`);
  if (r.H % r.N !== 0) throw new RangeError(`H ${r.H} is not a multiple of N ${r.N}`);
  if (r.sinkMass + r.needleMass + r.localMass >= 1) throw new RangeError('sinkMass + needleMass + localMass must leave mass to the noise (< 1)');
  return r;
}

/** Standard normals: exact draws up to 2^20 values; beyond, a 2^20 pattern tiled with a random phase
 *  per 2^16-value tile (the 32K-token benchmark would spend seconds in Box-Muller otherwise). */
export function fillNormal(rng: Rng, out: Float32Array): void {
  const P = 1 << 20;
  if (out.length <= P) {
    for (let i = 0; i < out.length; i++) out[i] = rng.normal();
    return;
  }
  const pat = new Float32Array(P);
  for (let i = 0; i < P; i++) pat[i] = rng.normal();
  const tile = 1 << 16;
  for (let i = 0; i < out.length; i += tile) {
    const len = Math.min(tile, out.length - i);
    const ph = rng.int(0, P - len + 1);
    out.set(pat.subarray(ph, ph + len), i);
  }
}

function encode(dt: FloatDType, v: Float32Array): TypedData {
  return dt === 'f32' ? v : dt === 'f16' ? f32ToF16(v) : f32ToBf16(v);
}

function storage(dt: FloatDType, n: number): Float32Array | Uint16Array {
  return dt === 'f32' ? new Float32Array(n) : new Uint16Array(n);
}

/** Query coefficient along the head's direction (in units of sqrt(D)) and the per-channel query noise. */
export const Q_ALIGN = 0.7;
export const Q_NOISE = 0.5;

/**
 * Coefficient c so that a key c*u + noise gets, in expectation, `share / noiseShare` times the summed
 * exp-logit of `len` noise keys. With q = Q_ALIGN*sqrt(D)*u + Q_NOISE*xi and scale 1/sqrt(D), the logit
 * of c*u + eps is Q_ALIGN*c + noise of the same variance as a noise key's, so
 * c = ln(len * share / noiseShare) / Q_ALIGN (0 when that is negative).
 */
export function alignCoeff(len: number, share: number, noiseShare: number): number {
  return Math.max(0, Math.log((len * share) / noiseShare) / Q_ALIGN);
}

/** Local-window weights w[delta] (delta = 0 for the newest token), summing to 1. */
function localWeights(cfg: ResolvedConfig): number[] {
  const w = Array.from({ length: cfg.localTokens }, (_, d) => Math.exp(-d / cfg.localDecay));
  const s = w.reduce((a, x) => a + x, 0);
  return w.map((x) => x / s);
}

/** Builds the whole problem from a seed. */
export function genDecode(c: DecodeConfig, seed: number): DecodeProblem {
  const cfg = resolve(c);
  const rng = new Rng(seed);
  const { B, H, N, D, bs, dtype } = cfg;
  const G = H / N;
  const noiseShare = 1 - cfg.sinkMass - cfg.needleMass - cfg.localMass;
  const wLocal = localWeights(cfg);

  // unit direction per (sequence, KV head)
  const dir = new Float32Array(B * N * D);
  const nOut = Math.round(D * cfg.outlierFraction);
  for (let i = 0; i < B * N; i++) {
    const outliers = new Set(rng.shuffle(Array.from({ length: D }, (_, d) => d)).slice(0, nOut));
    let s = 0;
    for (let d = 0; d < D; d++) s += (dir[i * D + d] = rng.normal() * (outliers.has(d) ? cfg.outlierWeight : 1)) ** 2;
    const inv = 1 / Math.sqrt(s);
    for (let d = 0; d < D; d++) dir[i * D + d] *= inv;
  }

  // needles: distinct blocks in [1, 3/4 of the prompt's blocks), away from the sink and the local window
  const nN = cfg.needles;
  const needlePos = new Int32Array(B * N * nN);
  for (let b = 0; b < B; b++) {
    const len = cfg.promptLens[b];
    const hiBlk = Math.floor(Math.max(0, len - cfg.localTokens) / bs * 0.75);
    for (let n = 0; n < N; n++) {
      const blocks = rng.shuffle(Array.from({ length: Math.max(0, hiBlk - 1) }, (_, j) => j + 1)).slice(0, nN);
      if (blocks.length < nN) throw new RangeError(`promptLens[${b}] = ${len} is too short for ${nN} needles in distinct blocks`);
      const pos = blocks.map((j) => j * bs + rng.int(0, bs)).sort((x, y) => x - y);
      needlePos.set(pos, (b * N + n) * nN);
    }
  }

  // prompt keys and values, one sequence at a time
  const T = cfg.promptLens.reduce((a, x) => a + x, 0);
  const row = N * D;
  const kData = storage(dtype, T * row);
  const vData = storage(dtype, T * row);
  const promptOffset: number[] = [];
  let off = 0;
  for (let b = 0; b < B; b++) {
    const len = cfg.promptLens[b];
    promptOffset.push(off);
    const k = new Float32Array(len * row);
    const v = new Float32Array(len * row);
    fillNormal(rng, k);
    fillNormal(rng, v);
    const addDir = (pos: number, n: number, coeff: number) => {
      const o = pos * row + n * D;
      const u = (b * N + n) * D;
      for (let d = 0; d < D; d++) k[o + d] += coeff * dir[u + d];
    };
    for (let n = 0; n < N; n++) {
      // the sink: position 0, high norm along the query, a small value (it absorbs attention, adds little)
      if (len > 0) {
        addDir(0, n, alignCoeff(len, cfg.sinkMass, noiseShare));
        for (let d = 0; d < D; d++) v[n * D + d] *= 0.1;
      }
      for (let i = 0; i < nN; i++) addDir(needlePos[(b * N + n) * nN + i], n, alignCoeff(len, cfg.needleMass / nN, noiseShare));
      for (let delta = 0; delta < Math.min(cfg.localTokens, len - 1); delta++)
        addDir(len - 1 - delta, n, alignCoeff(len, cfg.localMass * wLocal[delta], noiseShare));
    }
    kData.set(encode(dtype, k), off * row);
    vData.set(encode(dtype, v), off * row);
    off += len;
  }

  // decode steps: the new token is the newest local token; queries lean toward their group's direction
  const stepKey: HostTensor[] = [];
  const stepValue: HostTensor[] = [];
  const stepQuery: HostTensor[] = [];
  const a = Q_ALIGN * Math.sqrt(D);
  for (let s = 0; s < cfg.steps; s++) {
    const k = new Float32Array(B * row);
    const v = new Float32Array(B * row);
    const q = new Float32Array(B * H * D);
    fillNormal(rng, k);
    fillNormal(rng, v);
    for (let b = 0; b < B; b++) {
      const coeff = alignCoeff(cfg.promptLens[b], cfg.localMass * wLocal[0], noiseShare);
      for (let n = 0; n < N; n++)
        for (let d = 0; d < D; d++) k[(b * N + n) * D + d] += coeff * dir[(b * N + n) * D + d];
      for (let h = 0; h < H; h++) {
        const u = (b * N + Math.floor(h / G)) * D;
        for (let d = 0; d < D; d++) q[(b * H + h) * D + d] = a * dir[u + d] + Q_NOISE * rng.normal();
      }
    }
    stepKey.push(tensor(dtype, [B, N, D], encode(dtype, k)));
    stepValue.push(tensor(dtype, [B, N, D], encode(dtype, v)));
    stepQuery.push(tensor(dtype, [B, H, D], encode(dtype, q)));
  }

  // paged layout: blocks and metadata pages drawn from shuffled pools larger than needed, tables one
  // column wider than needed (-1 there and past each sequence's blocks)
  const L = cfg.promptLens.map((_, b) => Math.ceil(finalLen(cfg, b) / bs));
  const blockWidth = Math.max(1, ...L) + 1;
  const numBlocks = L.reduce((x, y) => x + y, 0) + cfg.poolSlack;
  const order = (n: number) => {
    const a = Array.from({ length: n }, (_, i) => i);
    return cfg.shuffleTables ? rng.shuffle(a) : a;
  };
  const ids = order(numBlocks);
  const blockTables = new Int32Array(B * blockWidth).fill(-1);
  let next = 0;
  for (let b = 0; b < B; b++) for (let j = 0; j < L[b]; j++) blockTables[b * blockWidth + j] = ids[next++];
  const P = L.map((l) => Math.ceil(l / cfg.metaRows));
  const metaWidth = Math.max(1, ...P) + 1;
  const numMetaPages = P.reduce((x, y) => x + y, 0) + cfg.poolSlack;
  const pids = order(numMetaPages);
  const metaTables = new Int32Array(B * metaWidth).fill(-1);
  next = 0;
  for (let b = 0; b < B; b++) for (let j = 0; j < P[b]; j++) metaTables[b * metaWidth + j] = pids[next++];

  return {
    cfg, promptOffset, stepKey, stepValue, stepQuery, needlePos, blockTables, blockWidth, numBlocks, metaTables, metaWidth, numMetaPages,
    promptKey: tensor(dtype, [T, N, D], kData),
    promptValue: tensor(dtype, [T, N, D], vData),
  };
}

/** Where the key/value row [N, D] of token `pos` of sequence `b` lives: the data and its element offset. */
export function tokenRow(p: DecodeProblem, b: number, pos: number): { k: TypedData; v: TypedData; off: number } {
  const row = p.cfg.N * p.cfg.D;
  const len = p.cfg.promptLens[b];
  if (pos < len) return { k: p.promptKey.data, v: p.promptValue.data, off: (p.promptOffset[b] + pos) * row };
  const s = pos - len;
  return { k: p.stepKey[s].data, v: p.stepValue[s].data, off: b * row };
}
