// Float64 oracle of one decode step, read from the generator's logical token rows (not from the paged
// cache the kernels wrote): per query head, the true softmax probability mass of every KV block and
// the probability-weighted value sum of every block, from which dense and block-sparse outputs follow.
import { type FloatDType, type TypedData, bf16BitsToF32, f16BitsToF32 } from '../../src/tensor.js';
import { type DecodeProblem, tokenRow } from './gen_data.js';

/** Word -> value decoder for a dtype (16-bit words through a 64K-entry table). */
export function decoder(dt: FloatDType): (data: TypedData, i: number) => number {
  if (dt === 'f32') return (data, i) => data[i];
  const lut = new Float64Array(65536);
  for (let w = 0; w < 65536; w++) lut[w] = dt === 'f16' ? f16BitsToF32(w) : bf16BitsToF32(w);
  return (data, i) => lut[data[i]];
}

export interface StepOracle {
  /** tokens each sequence attends to at this step (its length, the query token included) */
  lens: number[];
  /** blocks per sequence (ceil(len / bs)) */
  L: number[];
  /** per sequence: [H, L] probability mass of each block (sums to 1 per head) */
  mass: Float64Array[];
  /** per sequence, when values were asked for: [H, L, D] sum over the block's tokens of p * v */
  wsum?: Float64Array[];
}

/**
 * The oracle of decode step `step` (0-based): the query of that step attends causally to all
 * promptLens[b] + step + 1 tokens (its own included), scale 1/sqrt(D), as SPEC section 3 defines
 * dense decode. `values` false skips the value sums (the benchmark only needs the masses).
 */
export function refStep(p: DecodeProblem, step: number, values = true): StepOracle {
  const { B, H, N, D, bs, dtype } = p.cfg;
  const G = H / N;
  const dec = decoder(dtype);
  const scale = 1 / Math.sqrt(D);
  const qData = p.stepQuery[step].data;
  const out: StepOracle = { lens: [], L: [], mass: [], wsum: values ? [] : undefined };
  const kRow = new Float64Array(D);
  const q = new Float64Array(H * D);
  for (let b = 0; b < B; b++) {
    const len = p.cfg.promptLens[b] + step + 1;
    const L = Math.ceil(len / bs);
    out.lens.push(len);
    out.L.push(L);
    for (let i = 0; i < H * D; i++) q[i] = dec(qData, b * H * D + i);
    // logits [H, len]
    const logit = new Float64Array(H * len);
    for (let t = 0; t < len; t++) {
      const { k, off } = tokenRow(p, b, t);
      for (let n = 0; n < N; n++) {
        for (let d = 0; d < D; d++) kRow[d] = dec(k, off + n * D + d);
        for (let g = 0; g < G; g++) {
          const h = n * G + g;
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[h * D + d] * kRow[d];
          logit[h * len + t] = dot * scale;
        }
      }
    }
    const mass = new Float64Array(H * L);
    const wsum = values ? new Float64Array(H * L * D) : undefined;
    const vRow = new Float64Array(D);
    for (let h = 0; h < H; h++) {
      let m = -Infinity;
      for (let t = 0; t < len; t++) m = Math.max(m, logit[h * len + t]);
      let z = 0;
      for (let t = 0; t < len; t++) z += (logit[h * len + t] = Math.exp(logit[h * len + t] - m));
      for (let t = 0; t < len; t++) {
        const pr = logit[h * len + t] / z;
        const j = Math.floor(t / bs);
        mass[h * L + j] += pr;
        if (wsum) {
          const { v, off } = tokenRow(p, b, t);
          const n = Math.floor(h / G);
          for (let d = 0; d < D; d++) vRow[d] = dec(v, off + n * D + d);
          const o = (h * L + j) * D;
          for (let d = 0; d < D; d++) wsum[o + d] += pr * vRow[d];
        }
      }
    }
    out.mass.push(mass);
    if (wsum) out.wsum!.push(wsum);
  }
  return out;
}

/**
 * Reference output [B, H, D] of attention restricted to the selected blocks (SPEC section 3,
 * blockSelection): per head, sum of p*v over its visible blocks divided by their mass. `selection`
 * is [B, rows, k] with rows = N (one list per KV head) or H; null means dense (every block).
 */
export function refOutput(o: StepOracle, H: number, N: number, D: number, selection: Int32Array | null, rows = N, k = 0): Float64Array {
  const B = o.lens.length;
  const G = H / N;
  const out = new Float64Array(B * H * D);
  for (let b = 0; b < B; b++) {
    const L = o.L[b];
    const wsum = o.wsum![b];
    for (let h = 0; h < H; h++) {
      const blocks: number[] = [];
      if (!selection) for (let j = 0; j < L; j++) blocks.push(j);
      else {
        const r = rows === H ? h : Math.floor(h / G);
        for (let s = 0; s < k; s++) {
          const j = selection[(b * rows + r) * k + s];
          if (j >= 0) blocks.push(j);
        }
      }
      let z = 0;
      for (const j of blocks) z += o.mass[b][h * L + j];
      if (z === 0) continue;
      for (const j of blocks) for (let d = 0; d < D; d++) out[(b * H + h) * D + d] += wsum[(h * L + j) * D + d] / z;
    }
  }
  return out;
}

/** Block mass of a selection row: the mean over its query heads (the G heads of a KV head, or one head). */
export function rowMass(o: StepOracle, b: number, r: number, H: number, rows: number): Float64Array {
  const L = o.L[b];
  const heads = rows === H ? [r] : Array.from({ length: H / rows }, (_, g) => r * (H / rows) + g);
  const m = new Float64Array(L);
  for (const h of heads) for (let j = 0; j < L; j++) m[j] += o.mass[b][h * L + j] / heads.length;
  return m;
}

/** Mass of the k heaviest blocks (the oracle top-k), k clipped to the block count. */
export function oracleTopMass(m: Float64Array, k: number): number {
  const s = Float64Array.from(m).sort().reverse();
  let t = 0;
  for (let i = 0; i < Math.min(k, s.length); i++) t += s[i];
  return t;
}
