// Literal float64 reference of paged_attention (SPEC section 3): one query, one head, one key at a time.
// Every backend is compared against this model; it favours being obviously right over being fast.

export type Layout = 'NHD' | 'HND';

export interface AttnProblem {
  B: number;
  H: number;
  N: number;
  D: number;
  bs: number;
  layout: Layout;
  /** [totalQ, H, D] query values (already rounded to the q dtype) */
  q: Float64Array;
  /** paged caches in `layout`, values rounded to the kv dtype */
  k: Float64Array;
  v: Float64Array;
  /** [B, mkbpr] physical block ids */
  blockTables: Int32Array;
  mkbpr: number;
  seqLens: Int32Array;
  /** [B + 1] */
  cuSeqlensQ: Int32Array;
  scale: number;
  causal: boolean;
  /** 0 = none */
  slidingWindow: number;
  sinkTokens: number;
  sinkLogits?: Float64Array;
  alibiSlopes?: Float64Array;
  /** 0 = none */
  softcap: number;
  /** [B, selRows, selK] logical block ids, -1 skipped */
  blockSelection?: Int32Array;
  selRows: number;
  selK: number;
}

export interface AttnRef {
  /** [totalQ, H, D] */
  out: Float64Array;
  /** [totalQ, H] natural log of the softmax denominator (sink logit included); -inf with no visible key */
  lse: Float64Array;
}

/** Element offset of token `tok` of physical block `blk`, KV head `n`, channel 0. */
export function pagedOffset(layout: Layout, blk: number, tok: number, n: number, bs: number, N: number, D: number): number {
  return layout === 'NHD' ? ((blk * bs + tok) * N + n) * D : ((blk * N + n) * bs + tok) * D;
}

/**
 * Whether the key at position kp is visible to the query at position p (before block selection):
 * causal (or a window) bounds keys above by p, non-causal by the sequence end; the window bounds them
 * below by p - W + 1 except for the first S (sink) tokens.
 */
export function keyVisible(P: AttnProblem, kp: number, p: number, seqLen: number): boolean {
  const hi = P.causal || P.slidingWindow > 0 ? p : seqLen - 1;
  const lo = P.slidingWindow > 0 ? p - P.slidingWindow + 1 : 0;
  return kp >= 0 && kp <= hi && (kp >= lo || kp < P.sinkTokens);
}

export function refPagedAttention(P: AttnProblem): AttnRef {
  const { B, H, N, D, bs } = P;
  const G = H / N;
  const totalQ = P.cuSeqlensQ[B];
  const out = new Float64Array(totalQ * H * D);
  const lse = new Float64Array(totalQ * H).fill(-Infinity);
  for (let b = 0; b < B; b++) {
    const seqLen = P.seqLens[b];
    const qLen = P.cuSeqlensQ[b + 1] - P.cuSeqlensQ[b];
    for (let i = 0; i < qLen; i++) {
      const row = P.cuSeqlensQ[b] + i;
      const p = seqLen - qLen + i;
      for (let h = 0; h < H; h++) {
        const n = Math.floor(h / G);
        // blocks this head may see: all, or the listed ones of its KV head / query head
        let allowed: Set<number> | undefined;
        if (P.blockSelection) {
          const r = P.selRows === H ? h : n;
          allowed = new Set();
          for (let s = 0; s < P.selK; s++) {
            const j = P.blockSelection[(b * P.selRows + r) * P.selK + s];
            if (j >= 0) allowed.add(j);
          }
        }
        const logits: number[] = [];
        const keys: number[] = [];
        for (let kp = 0; kp < seqLen; kp++) {
          const j = Math.floor(kp / bs);
          if (allowed && !allowed.has(j)) continue;
          if (!keyVisible(P, kp, p, seqLen)) continue;
          const off = pagedOffset(P.layout, P.blockTables[b * P.mkbpr + j], kp % bs, n, bs, N, D);
          let dot = 0;
          for (let d = 0; d < D; d++) dot += P.q[(row * H + h) * D + d] * P.k[off + d];
          let x = dot * P.scale;
          if (P.softcap > 0) x = P.softcap * Math.tanh(x / P.softcap);
          if (P.alibiSlopes) x += P.alibiSlopes[h] * (kp - p);
          logits.push(x);
          keys.push(off);
        }
        if (logits.length === 0) continue;  // out stays 0, lse -inf
        const sink = P.sinkLogits ? P.sinkLogits[h] : -Infinity;
        let m = sink;
        for (const x of logits) m = Math.max(m, x);
        let den = sink === -Infinity ? 0 : Math.exp(sink - m);
        for (const x of logits) den += Math.exp(x - m);
        const o = (row * H + h) * D;
        for (let t = 0; t < logits.length; t++) {
          const w = Math.exp(logits[t] - m) / den;
          for (let d = 0; d < D; d++) out[o + d] += w * P.v[keys[t] + d];
        }
        lse[row * H + h] = m + Math.log(den);
      }
    }
  }
  return { out, lse };
}
