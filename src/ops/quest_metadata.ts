// quest_metadata (SPEC section 1): per-block key max/min from a paged K cache, written in place.
import type { Tensor } from '../backends.js';
import { rangeError, typeError } from '../errors.js';
import { type CallOptions, Checker } from '../validate.js';
import { callAsync, callSync, callTimed } from './common.js';

export type Layout = 'NHD' | 'HND';

export interface QuestMetadataArgs {
  /** [numBlocks, blockSize, N, D] (NHD) or [numBlocks, N, blockSize, D] (HND); f32 | f16 | bf16 */
  kCache: Tensor;
  /** [B, MKBPR] i32 physical block ids */
  blockTables: Tensor;
  /** [B] i32 tokens per sequence */
  seqLens: Tensor;
  /** [B, MMBPR] i32 physical metadata-page ids */
  metaBlockTables: Tensor;
  /** [numMetaPages, metaRows, N, D], dtype of kCache; written in place */
  maxMeta: Tensor;
  /** [numMetaPages, metaRows, N, D], dtype of kCache; written in place */
  minMeta: Tensor;
  /** [B] i32 first logical block to refresh per sequence (default all 0) */
  startBlocks?: Tensor;
  /** Cache layout (default NHD). */
  layout?: Layout;
}

function prepare(a: QuestMetadataArgs, opts?: CallOptions): { ch: Checker; scalars: Record<string, unknown> } {
  const ch = new Checker('quest_metadata', (a ?? {}) as unknown as Record<string, unknown>, opts);
  if (typeof a !== 'object' || a === null) throw typeError(ch.ctx, 'arguments', 'an object', a === null ? 'null' : typeof a);
  const layout = ch.oneOf('layout', a.layout ?? 'NHD', ['NHD', 'HND'] as const);
  const k = ch.tensor('kCache', a.kCache, { dtypes: ['f32', 'f16', 'bf16'], rank: 4 })!;
  const [numBlocks, d1, d2, D] = k.shape;
  const [bs, N] = layout === 'NHD' ? [d1, d2] : [d2, d1];
  if (bs < 1 || N < 1 || D < 1) throw rangeError(ch.ctx, 'kCache.shape', `non-zero blockSize, head and channel dimensions (${layout})`, `[${k.shape}]`);
  const bt = ch.tensor('blockTables', a.blockTables, { dtypes: ['i32'], rank: 2 })!;
  const B = bt.shape[0];
  const MKBPR = bt.shape[1];
  ch.tensor('seqLens', a.seqLens, { dtypes: ['i32'], rank: 1, shape: [B] });
  const mbt = ch.tensor('metaBlockTables', a.metaBlockTables, { dtypes: ['i32'], rank: 2, shape: [B] })!;
  const MMBPR = mbt.shape[1];
  const mx = ch.output('maxMeta', a.maxMeta, { dtypes: [k.dtype], rank: 4, shape: [undefined, undefined, N, D] })!;
  const [numMetaPages, metaRows] = mx.shape;
  if (metaRows < 1) throw rangeError(ch.ctx, 'maxMeta.shape[1]', 'metaRows >= 1', `${metaRows} (shape [${mx.shape}])`);
  ch.output('minMeta', a.minMeta, { dtypes: [k.dtype], rank: 4, shape: mx.shape });
  ch.tensor('startBlocks', a.startBlocks, { dtypes: ['i32'], rank: 1, shape: [B] }, true);

  const lens = ch.seqLens('seqLens', 'blockTables', MKBPR, bs);
  if (lens) {
    ch.seqLens('seqLens', 'metaBlockTables', MMBPR, bs * metaRows);
    const start = ch.ints('startBlocks');
    start?.forEach((s, b) => {
      if (s < 0) throw rangeError(ch.ctx, `startBlocks[${b}]`, 'a non-negative block index', String(s));
    });
    ch.tableIds('blockTables', MKBPR, (b) => Math.ceil(lens[b] / bs), numBlocks);
    ch.tableIds('metaBlockTables', MMBPR, (b) => Math.ceil(lens[b] / (bs * metaRows)), numMetaPages);
  }
  const scalars = {
    dtype: k.dtype, layout, numSeqs: B, numKvHeads: N, headDim: D, blockSize: bs, metaRows,
    maxBlocksPerSeq: MKBPR, maxMetaPagesPerSeq: MMBPR, numBlocks, numMetaPages,
  };
  return { ch, scalars };
}

/**
 * Builds Quest metadata (per block, head and channel key max/min) in place into maxMeta/minMeta.
 * @throws TypeError on a wrong kind of argument (not a tensor, wrong dtype or rank).
 * @throws RangeError on a wrong value (shape disagreement, tables too narrow, ids outside a pool).
 * @throws SelectAttnError SA_ERR_UNSUPPORTED / SA_ERR_DEVICE from the backend.
 */
export function questMetadata(args: QuestMetadataArgs, opts?: CallOptions): void {
  const { ch, scalars } = prepare(args, opts);
  callSync(ch, 'questMetadata', scalars);
}

/** questMetadata off the event loop (an AsyncWorker on cpu). @throws as questMetadata */
export async function questMetadataAsync(args: QuestMetadataArgs, opts?: CallOptions): Promise<void> {
  const { ch, scalars } = prepare(args, opts);
  await callAsync(ch, 'questMetadata', scalars);
}

/** Milliseconds per call over `reps` calls, for benchmarks. @throws as questMetadata */
export function timeQuestMetadata(args: QuestMetadataArgs, reps: number, opts?: CallOptions): number {
  const { ch, scalars } = prepare(args, opts);
  return callTimed(ch, 'questMetadata', scalars, reps);
}

/** Seed name (select_attn_ops.quest_prefill_metadata). */
export const questPrefillMetadata = questMetadata;
