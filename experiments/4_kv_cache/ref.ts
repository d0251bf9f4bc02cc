// Literal reference of kv_cache (SPEC section 4) on raw element arrays. Both ops move or compare values
// without arithmetic, so the reference works on the stored words and every backend must match it bit
// for bit.
import { pagedOffset, type Layout } from '../1_paged_attention/ref.js';

/** Copies token t's rows into slot slotMapping[t] (block floor(s / bs), offset s % bs), in token order:
 *  a slot listed twice keeps the last token; -1 skips. Returns new caches. */
export function refCacheWrite<A extends Float32Array | Uint16Array>(
  key: A, value: A, kCache: A, vCache: A, slotMapping: Int32Array, N: number, D: number, bs: number, layout: Layout,
): { kCache: A; vCache: A } {
  const k = kCache.slice() as A;
  const v = vCache.slice() as A;
  for (let t = 0; t < slotMapping.length; t++) {
    const s = slotMapping[t];
    if (s === -1) continue;
    for (let n = 0; n < N; n++) {
      const dst = pagedOffset(layout, Math.floor(s / bs), s % bs, n, bs, N, D);
      const src = (t * N + n) * D;
      for (let d = 0; d < D; d++) {
        k[dst + d] = key[src + d];
        v[dst + d] = value[src + d];
      }
    }
  }
  return { kCache: k, vCache: v };
}

/**
 * Folds keys into the metadata rows: tokens in position order (ties in token order); the row of
 * logical block floor(pos / bs) of sequence seqIdx[t] becomes the key at a block start, else the
 * elementwise max/min with -0 < +0. `decode` turns a stored word into its value (identity for f32). Returns new
 * metadata arrays (stored words).
 */
export function refQuestMetadataAppend<A extends Float32Array | Uint16Array>(
  key: A, maxMeta: A, minMeta: A, metaBlockTables: Int32Array, mmbpr: number, seqIdx: Int32Array, positions: Int32Array,
  N: number, D: number, bs: number, metaRows: number, decode: (w: number) => number,
): { maxMeta: A; minMeta: A } {
  const mx = maxMeta.slice() as A;
  const mn = minMeta.slice() as A;
  const order = Array.from(seqIdx, (_, t) => t).sort((a, b) => positions[a] - positions[b] || a - b);
  const rowLen = N * D;
  for (const t of order) {
    const pos = positions[t];
    const j = Math.floor(pos / bs);
    const page = metaBlockTables[seqIdx[t] * mmbpr + Math.floor(j / metaRows)];
    const row = (page * metaRows + (j % metaRows)) * rowLen;
    for (let e = 0; e < rowLen; e++) {
      const kw = key[t * rowLen + e];
      if (pos % bs === 0) {
        mx[row + e] = kw;
        mn[row + e] = kw;
      } else {
        // JavaScript's Math.max/Math.min order (-0 < +0), as quest_metadata's reference
        const kv = decode(kw);
        const cmx = decode(mx[row + e]);
        const cmn = decode(mn[row + e]);
        if (!Object.is(cmx, kv) && Object.is(Math.max(cmx, kv), kv)) mx[row + e] = kw;
        if (!Object.is(cmn, kv) && Object.is(Math.min(cmn, kv), kv)) mn[row + e] = kw;
      }
    }
  }
  return { maxMeta: mx, minMeta: mn };
}
