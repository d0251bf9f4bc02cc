// Literal float64 reference of quest_select (SPEC section 2), written for clarity, not speed: scores,
// the forced-block rule, and the selection (ties to the smaller id, ascending output, -1 padding).

export type GroupReduce = 'mean' | 'perHead';

export interface SelectRefInput {
  B: number;
  H: number;
  N: number;
  D: number;
  blockSize: number;
  metaRows: number;
  /** decoded query values [B, H, D] */
  query: Float64Array;
  /** decoded metadata values [numMetaPages, metaRows, N, D] */
  maxMeta: Float64Array;
  minMeta: Float64Array;
  metaBlockTables: Int32Array; // [B, MMBPR]
  maxMetaPagesPerSeq: number;
  seqLens: Int32Array; // [B]
  k: number;
  groupReduce: GroupReduce;
  sinkBlocks: number;
  windowBlocks: number;
  tokensSinceUpdate: Int32Array; // [B]
}

/** Per (sequence, output row): what the reference decided and why. */
export interface RowRef {
  L: number;
  /** min(k, L) */
  count: number;
  /** forced blocks in priority order (stale/window newest first, then sinks from 0) */
  forcedPriority: number[];
  /** the forced blocks that are selected (all of them unless more than k are forced) */
  forced: number[];
  /** non-forced candidate ids (real blocks only) */
  candidates: number[];
  /** f64 score, and magnitude A = sum_d mean_g|q_gd| max(|M_d|, |m_d|) (bounds any evaluation's
   *  rounding error: |q̄_d| <= mean_g |q_gd|), per block id (length L) */
  scores: Float64Array;
  magnitude: Float64Array;
  /** expected output row (ascending, -1 padded to k) */
  selected: Int32Array;
}

/** The query vector(s) of a sequence: q̄ (mean of the G heads) per KV head, or each query head;
 *  with the mean of the absolute values (for the error bound). */
export function refQueries(x: SelectRefInput, b: number): { q: Float64Array; qa: Float64Array }[] {
  const G = x.H / x.N;
  const rows: { q: Float64Array; qa: Float64Array }[] = [];
  if (x.groupReduce === 'perHead') {
    for (let h = 0; h < x.H; h++) {
      const q = x.query.slice((b * x.H + h) * x.D, (b * x.H + h + 1) * x.D);
      rows.push({ q, qa: q.map(Math.abs) });
    }
    return rows;
  }
  for (let n = 0; n < x.N; n++) {
    const q = new Float64Array(x.D);
    const qa = new Float64Array(x.D);
    for (let g = 0; g < G; g++) {
      for (let d = 0; d < x.D; d++) {
        const v = x.query[(b * x.H + n * G + g) * x.D + d];
        q[d] += v;
        qa[d] += Math.abs(v);
      }
    }
    for (let d = 0; d < x.D; d++) {
      q[d] /= G;
      qa[d] /= G;
    }
    rows.push({ q, qa });
  }
  return rows;
}

/** Forced blocks of sequence b in priority order (SPEC: stale and window newest first, then sinks). */
export function forcedPriority(L: number, seqLen: number, t: number, bs: number, sinkBlocks: number, windowBlocks: number): number[] {
  const mru = seqLen - t;
  const staleFrom = Math.floor(mru / bs);
  const out: number[] = [];
  for (let j = L - 1; j >= 0; j--) if (j >= staleFrom || j >= L - windowBlocks) out.push(j);
  for (let j = 0; j < Math.min(sinkBlocks, L); j++) if (!out.includes(j)) out.push(j);
  return out;
}

export function refQuestSelect(x: SelectRefInput): RowRef[][] {
  const rowsPerSeq = x.groupReduce === 'mean' ? x.N : x.H;
  const G = x.H / x.N;
  const out: RowRef[][] = [];
  for (let b = 0; b < x.B; b++) {
    const len = x.seqLens[b];
    const L = Math.ceil(len / x.blockSize);
    const count = Math.min(x.k, L);
    const prio = forcedPriority(L, len, x.tokensSinceUpdate[b], x.blockSize, x.sinkBlocks, x.windowBlocks);
    const forced = prio.slice(0, count);
    const isForced = new Set(prio);
    const candidates: number[] = [];
    for (let j = 0; j < L; j++) if (!isForced.has(j)) candidates.push(j);
    const qs = refQueries(x, b);
    const seqRows: RowRef[] = [];
    for (let r = 0; r < rowsPerSeq; r++) {
      const n = x.groupReduce === 'mean' ? r : Math.floor(r / G);
      const { q, qa } = qs[r];
      const scores = new Float64Array(L);
      const magnitude = new Float64Array(L);
      for (let j = 0; j < L; j++) {
        const page = x.metaBlockTables[b * x.maxMetaPagesPerSeq + Math.floor(j / x.metaRows)];
        const o = ((page * x.metaRows + (j % x.metaRows)) * x.N + n) * x.D;
        let s = 0;
        let a = 0;
        for (let d = 0; d < x.D; d++) {
          const M = x.maxMeta[o + d];
          const m = x.minMeta[o + d];
          s += Math.max(q[d] * M, q[d] * m);
          a += qa[d] * Math.max(Math.abs(M), Math.abs(m));
        }
        scores[j] = s;
        magnitude[j] = a;
      }
      const chosen = new Set(forced);
      const ranked = [...candidates].sort((i, j) => scores[j] - scores[i] || i - j);
      for (const j of ranked.slice(0, count - forced.length)) chosen.add(j);
      const selected = new Int32Array(x.k).fill(-1);
      [...chosen].sort((i, j) => i - j).forEach((j, i) => (selected[i] = j));
      seqRows.push({ L, count, forcedPriority: prio, forced, candidates, scores, magnitude, selected });
    }
    out.push(seqRows);
  }
  return out;
}
