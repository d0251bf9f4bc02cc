// kv_cache (SPEC section 4): writing new tokens into the paged K/V caches (cacheWrite) and keeping the
// Quest metadata exact while decoding (questMetadataAppend). Both write in place after validation.
import type { Tensor } from '../backends.js';
import { rangeError } from '../errors.js';
import { type CallOptions, Checker } from '../validate.js';
import { callAsync, callSync, callTimed } from './common.js';
import type { Layout } from './quest_metadata.js';

export interface CacheWriteArgs {
  /** [T, N, D] f32 | f16 | bf16: keys of the new tokens */
  key: Tensor;
  /** [T, N, D], dtype of key */
  value: Tensor;
  /** [numBlocks, blockSize, N, D] (NHD) or [numBlocks, N, blockSize, D] (HND), dtype of key; written in place */
  kCache: Tensor;
  /** same shape and dtype as kCache; written in place */
  vCache: Tensor;
  /** [T] i32: token t goes to block floor(slot / blockSize), offset slot % blockSize; -1 skips it */
  slotMapping: Tensor;
  /** cache layout (default NHD) */
  layout?: Layout;
}

function prepareWrite(a: CacheWriteArgs, opts?: CallOptions): { ch: Checker; scalars: Record<string, unknown> } {
  const ch = new Checker('kv_cache', (a ?? {}) as unknown as Record<string, unknown>, opts);
  if (typeof a !== 'object' || a === null) throw ch.fail('arguments must be an object');
  const layout = ch.oneOf('layout', a.layout ?? 'NHD', ['NHD', 'HND'] as const);
  const key = ch.tensor('key', a.key, { dtypes: ['f32', 'f16', 'bf16'], rank: 3 })!;
  const [T, N, D] = key.shape;
  ch.tensor('value', a.value, { dtypes: [key.dtype], rank: 3, shape: key.shape });
  const shape = layout === 'NHD' ? [undefined, undefined, N, D] : [undefined, N, undefined, D];
  const kc = ch.output('kCache', a.kCache, { dtypes: [key.dtype], rank: 4, shape })!;
  const numBlocks = kc.shape[0];
  const bs = layout === 'NHD' ? kc.shape[1] : kc.shape[2];
  if (N < 1 || D < 1) throw ch.fail(`key shape [${key.shape}] has an empty head or channel dimension`);
  if (bs < 1) throw ch.fail(`kCache shape [${kc.shape}] has an empty blockSize dimension`);
  ch.output('vCache', a.vCache, { dtypes: [key.dtype], rank: 4, shape: kc.shape });
  ch.tensor('slotMapping', a.slotMapping, { dtypes: ['i32'], rank: 1, shape: [T] });
  const slots = ch.ints('slotMapping');
  const pool = numBlocks * bs;
  slots?.forEach((s, t) => {
    if (s < -1 || s >= pool) throw rangeError(ch.ctx, `slotMapping[${t}]`, `-1 or a slot in [0, ${pool}) (numBlocks ${numBlocks} x blockSize ${bs})`, String(s));
  });
  const scalars = { dtype: key.dtype, layout, numTokens: T, numKvHeads: N, headDim: D, blockSize: bs, numBlocks };
  return { ch, scalars };
}

/**
 * Writes each token's key and value rows into its slot of the paged caches (vLLM's reshape_and_cache).
 * Slot -1 skips a token; a slot listed twice keeps the last token's rows.
 * @throws TypeError on a wrong kind of argument (not a tensor, wrong dtype or rank).
 * @throws RangeError on a wrong value (shape disagreement, a slot outside [-1, numBlocks * blockSize)).
 * @throws SelectAttnError SA_ERR_UNSUPPORTED / SA_ERR_INVALID_ARG / SA_ERR_DEVICE from the backend.
 */
export function cacheWrite(args: CacheWriteArgs, opts?: CallOptions): void {
  const { ch, scalars } = prepareWrite(args, opts);
  callSync(ch, 'cacheWrite', scalars);
}

/** cacheWrite off the event loop (an AsyncWorker on cpu). @throws as cacheWrite */
export async function cacheWriteAsync(args: CacheWriteArgs, opts?: CallOptions): Promise<void> {
  const { ch, scalars } = prepareWrite(args, opts);
  await callAsync(ch, 'cacheWrite', scalars);
}

/** Milliseconds per call over `reps` calls, for benchmarks. @throws as cacheWrite */
export function timeCacheWrite(args: CacheWriteArgs, reps: number, opts?: CallOptions): number {
  const { ch, scalars } = prepareWrite(args, opts);
  return callTimed(ch, 'cacheWrite', scalars, reps);
}

/** Seed / vLLM name. */
export const reshapeAndCache = cacheWrite;

export interface QuestMetadataAppendArgs {
  /** [T, N, D] f32 | f16 | bf16: keys of the new tokens (dtype of the metadata) */
  key: Tensor;
  /** [numMetaPages, metaRows, N, D]; updated in place */
  maxMeta: Tensor;
  /** [numMetaPages, metaRows, N, D]; updated in place */
  minMeta: Tensor;
  /** [B, MMBPR] i32 physical metadata-page ids */
  metaBlockTables: Tensor;
  /** [T] i32 sequence of each token, in [0, B) */
  seqIdx: Tensor;
  /** [T] i32 position of each token in its sequence (>= 0) */
  positions: Tensor;
  /** tokens per KV block (default metaRows) */
  blockSize?: number;
}

function prepareAppend(a: QuestMetadataAppendArgs, opts?: CallOptions): { ch: Checker; scalars: Record<string, unknown> } {
  const ch = new Checker('kv_cache', (a ?? {}) as unknown as Record<string, unknown>, opts);
  if (typeof a !== 'object' || a === null) throw ch.fail('arguments must be an object');
  const key = ch.tensor('key', a.key, { dtypes: ['f32', 'f16', 'bf16'], rank: 3 })!;
  const [T, N, D] = key.shape;
  if (N < 1 || D < 1) throw ch.fail(`key shape [${key.shape}] has an empty head or channel dimension`);
  const mx = ch.output('maxMeta', a.maxMeta, { dtypes: [key.dtype], rank: 4, shape: [undefined, undefined, N, D] })!;
  const [numMetaPages, metaRows] = mx.shape;
  if (metaRows < 1) throw ch.fail('maxMeta has zero metaRows');
  ch.output('minMeta', a.minMeta, { dtypes: [key.dtype], rank: 4, shape: mx.shape });
  const mbt = ch.tensor('metaBlockTables', a.metaBlockTables, { dtypes: ['i32'], rank: 2 })!;
  const [B, MMBPR] = mbt.shape;
  ch.tensor('seqIdx', a.seqIdx, { dtypes: ['i32'], rank: 1, shape: [T] });
  ch.tensor('positions', a.positions, { dtypes: ['i32'], rank: 1, shape: [T] });
  const bs = a.blockSize === undefined ? metaRows : ch.int('blockSize', a.blockSize, 1);
  const seq = ch.ints('seqIdx');
  const pos = ch.ints('positions');
  const tables = ch.ints('metaBlockTables');
  if (seq && pos && tables)
    for (let t = 0; t < T; t++) {
      const b = seq[t];
      if (b < 0 || b >= B) throw rangeError(ch.ctx, `seqIdx[${t}]`, `a sequence in [0, ${B}) (rows of metaBlockTables)`, String(b));
      if (pos[t] < 0) throw rangeError(ch.ctx, `positions[${t}]`, 'a non-negative position', String(pos[t]));
      const page = Math.floor(Math.floor(pos[t] / bs) / metaRows);
      if (page >= MMBPR)
        throw rangeError(ch.ctx, 'metaBlockTables', `at least ${page + 1} columns for positions[${t}] = ${pos[t]} (blockSize ${bs}, metaRows ${metaRows})`, `${MMBPR} columns`);
      const id = tables[b * MMBPR + page];
      if (id < 0 || id >= numMetaPages) throw rangeError(ch.ctx, `metaBlockTables[${b}, ${page}]`, `a page id in [0, ${numMetaPages})`, String(id));
    }
  const scalars = {
    dtype: key.dtype, numTokens: T, numSeqs: B, numKvHeads: N, headDim: D, blockSize: bs, metaRows,
    maxMetaPagesPerSeq: MMBPR, numMetaPages,
  };
  return { ch, scalars };
}

/**
 * Folds new keys into the Quest metadata so it stays exact while decoding (tokensSinceMetadataUpdate
 * can stay 0): the row of token t (logical block floor(pos / blockSize) of sequence seqIdx[t]) becomes
 * the key itself when pos % blockSize == 0, else the elementwise max/min of the row and the key.
 * Tokens of one row apply in position order (ties in token order), so one call equals one call per
 * token in position order.
 * @throws TypeError on a wrong kind of argument (not a tensor, wrong dtype or rank).
 * @throws RangeError on a wrong value (shape disagreement, seqIdx outside [0, B), a negative position,
 *   a table too narrow for a position, a page id outside the pool).
 * @throws SelectAttnError SA_ERR_UNSUPPORTED / SA_ERR_INVALID_ARG / SA_ERR_DEVICE from the backend.
 */
export function questMetadataAppend(args: QuestMetadataAppendArgs, opts?: CallOptions): void {
  const { ch, scalars } = prepareAppend(args, opts);
  callSync(ch, 'questMetadataAppend', scalars);
}

/** questMetadataAppend off the event loop (an AsyncWorker on cpu). @throws as questMetadataAppend */
export async function questMetadataAppendAsync(args: QuestMetadataAppendArgs, opts?: CallOptions): Promise<void> {
  const { ch, scalars } = prepareAppend(args, opts);
  await callAsync(ch, 'questMetadataAppend', scalars);
}

/** Milliseconds per call over `reps` calls, for benchmarks. @throws as questMetadataAppend */
export function timeQuestMetadataAppend(args: QuestMetadataAppendArgs, reps: number, opts?: CallOptions): number {
  const { ch, scalars } = prepareAppend(args, opts);
  return callTimed(ch, 'questMetadataAppend', scalars, reps);
}
