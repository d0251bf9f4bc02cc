// Literal float64 reference of quest_metadata (SPEC section 1), written for clarity, not speed.
// It updates a copy of the metadata buffers exactly where SPEC says and nowhere else.
import { f32ToBf16Bits, f32ToF16Bits, type FloatDType } from '../../src/tensor.js';

export type Layout = 'NHD' | 'HND';

export interface MetadataRefInput {
  dtype: FloatDType;
  layout: Layout;
  numBlocks: number;
  blockSize: number;
  numKvHeads: number;
  headDim: number;
  metaRows: number;
  /** decoded kCache values in the cache's own layout (NHD or HND) */
  k: Float64Array;
  blockTables: Int32Array; // [B, MKBPR]
  maxBlocksPerSeq: number;
  seqLens: Int32Array; // [B]
  metaBlockTables: Int32Array; // [B, MMBPR]
  maxMetaPagesPerSeq: number;
  startBlocks?: Int32Array; // [B]
}

/** Element offset of (physical block p, token slot t, head n, channel 0) in the paged cache. */
export function pagedOffset(layout: Layout, p: number, t: number, n: number, bs: number, N: number, D: number): number {
  return layout === 'NHD' ? ((p * bs + t) * N + n) * D : ((p * N + n) * bs + t) * D;
}

/** The stored element for value v (exact: every value written here is a max/min of stored values or 0). */
export function encode(dtype: FloatDType, v: number): number {
  return dtype === 'f16' ? f32ToF16Bits(v) : dtype === 'bf16' ? f32ToBf16Bits(v) : v;
}

/**
 * Applies quest_metadata to maxMeta/minMeta (stored elements: f32 values or f16/bf16 bit patterns,
 * [numMetaPages, metaRows, N, D]), in place. max/min over the valid tokens of each block, with -0 < +0
 * (JavaScript's Math.max/Math.min order); rows of touched pages past the last block are set to +0.
 */
export function refQuestMetadata(x: MetadataRefInput, maxMeta: Float32Array | Uint16Array, minMeta: Float32Array | Uint16Array): void {
  const { blockSize: bs, numKvHeads: N, headDim: D, metaRows: R } = x;
  const B = x.seqLens.length;
  const rowOf = (page: number, r: number, n: number) => ((page * R + r) * N + n) * D;
  for (let b = 0; b < B; b++) {
    const len = x.seqLens[b];
    const L = Math.ceil(len / bs);
    const start = x.startBlocks ? x.startBlocks[b] : 0;
    for (let j = start; j < L; j++) {
      const valid = Math.min(bs, len - j * bs);
      const p = x.blockTables[b * x.maxBlocksPerSeq + j];
      const page = x.metaBlockTables[b * x.maxMetaPagesPerSeq + Math.floor(j / R)];
      for (let n = 0; n < N; n++) {
        for (let d = 0; d < D; d++) {
          let mx = -Infinity;
          let mn = Infinity;
          for (let t = 0; t < valid; t++) {
            const v = x.k[pagedOffset(x.layout, p, t, n, bs, N, D) + d];
            mx = Math.max(mx, v);
            mn = Math.min(mn, v);
          }
          const o = rowOf(page, j % R, n) + d;
          maxMeta[o] = encode(x.dtype, mx);
          minMeta[o] = encode(x.dtype, mn);
        }
      }
    }
    // Zero rows of the touched pages that belong to no existing block (only the last page has any).
    if (start < L) {
      const lastPage = Math.floor((L - 1) / R);
      const page = x.metaBlockTables[b * x.maxMetaPagesPerSeq + lastPage];
      for (let j = L; j < (lastPage + 1) * R; j++) {
        for (let n = 0; n < N; n++) {
          for (let d = 0; d < D; d++) {
            const o = rowOf(page, j % R, n) + d;
            maxMeta[o] = 0;
            minMeta[o] = 0;
          }
        }
      }
    }
  }
}
