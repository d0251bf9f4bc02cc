// quest_select (SPEC section 2): per sequence and KV head (or query head), the k most important KV
// blocks for one decode query, from the Quest metadata; ascending logical block ids, -1 padding.
import { DeviceTensor, type Tensor } from '../backends.js';
import { rangeError, typeError } from '../errors.js';
import { type HostTensor, tensor } from '../tensor.js';
import { type CallOptions, Checker } from '../validate.js';
import { callAsync, callSync, callTimed } from './common.js';

export type GroupReduce = 'mean' | 'perHead';

export interface QuestSelectArgs {
  /** [B, H, D] one decode query per sequence; f32 | f16 | bf16 */
  query: Tensor;
  /** [numMetaPages, metaRows, N, D] per-block key max (quest_metadata's output), dtype of query */
  maxMeta: Tensor;
  /** [numMetaPages, metaRows, N, D] per-block key min, dtype of query */
  minMeta: Tensor;
  /** [B, MMBPR] i32 physical metadata-page ids (logical block j lives in page j / metaRows, row j % metaRows) */
  metaBlockTables: Tensor;
  /** [B] i32 tokens per sequence */
  seqLens: Tensor;
  /** blocks to select per output row, any integer >= 1 (rows with fewer blocks are padded with -1) */
  k: number;
  /** tokens per KV block (default metaRows) */
  blockSize?: number;
  /** 'mean' (default): one selection per KV head from the mean of its G query heads, rows = N;
   *  'perHead': one selection per query head, rows = H */
  groupReduce?: GroupReduce;
  /** logical blocks 0 .. sinkBlocks-1 are always selected (default 0) */
  sinkBlocks?: number;
  /** the last windowBlocks logical blocks are always selected (default 0) */
  windowBlocks?: number;
  /** tokens appended since the metadata was last refreshed: a number for all sequences or an i32 [B]
   *  tensor; 0 <= t <= seqLens[b]. Blocks j >= floor((seqLens[b] - t) / blockSize) are always selected. */
  tokensSinceMetadataUpdate?: number | Tensor;
  /** optional preallocated output [B, rows, k] i32 (written in place) */
  selected?: Tensor;
  /** optional preallocated output [B, rows] i32: min(k, blocks of the sequence) */
  numSelected?: Tensor;
}

export interface QuestSelectResult {
  /** [B, rows, k] i32 logical block ids in ascending order, then -1 */
  selected: Tensor;
  /** [B, rows] i32 valid entries per row */
  numSelected: Tensor;
}

interface Prepared {
  ch: Checker;
  scalars: Record<string, unknown>;
  result: QuestSelectResult;
}

function prepare(a: QuestSelectArgs, opts?: CallOptions): Prepared {
  const ch = new Checker('quest_select', (a ?? {}) as unknown as Record<string, unknown>, opts);
  if (typeof a !== 'object' || a === null) throw typeError(ch.ctx, 'arguments', 'an object', a === null ? 'null' : typeof a);
  const q = ch.tensor('query', a.query, { dtypes: ['f32', 'f16', 'bf16'], rank: 3 })!;
  const [B, H, D] = q.shape;
  if (H < 1 || D < 1) throw rangeError(ch.ctx, 'query.shape', '[B, H >= 1, D >= 1]', `[${q.shape}]`);
  const mx = ch.tensor('maxMeta', a.maxMeta, { dtypes: [q.dtype], rank: 4, shape: [undefined, undefined, undefined, D] })!;
  const [numMetaPages, metaRows, N] = mx.shape;
  if (metaRows < 1) throw rangeError(ch.ctx, 'maxMeta.shape[1]', 'metaRows >= 1', `${metaRows} (shape [${mx.shape}])`);
  if (N < 1 || H % N !== 0)
    throw rangeError(ch.ctx, 'maxMeta.shape[2]', `a number of KV heads N >= 1 dividing the ${H} query heads`, `${N} (shape [${mx.shape}])`);
  ch.tensor('minMeta', a.minMeta, { dtypes: [q.dtype], rank: 4, shape: mx.shape });
  const mbt = ch.tensor('metaBlockTables', a.metaBlockTables, { dtypes: ['i32'], rank: 2, shape: [B] })!;
  const MMBPR = mbt.shape[1];
  ch.tensor('seqLens', a.seqLens, { dtypes: ['i32'], rank: 1, shape: [B] });
  const k = ch.int('k', a.k, 1);
  const bs = ch.int('blockSize', a.blockSize ?? metaRows, 1);
  const groupReduce = ch.oneOf('groupReduce', a.groupReduce ?? 'mean', ['mean', 'perHead'] as const);
  const sinkBlocks = ch.int('sinkBlocks', a.sinkBlocks ?? 0, 0);
  const windowBlocks = ch.int('windowBlocks', a.windowBlocks ?? 0, 0);
  const rows = groupReduce === 'mean' ? N : H;
  if (B * rows * k > 2 ** 31 - 1) throw rangeError(ch.ctx, 'k', `at most ${Math.floor((2 ** 31 - 1) / Math.max(1, B * rows))} for ${B} x ${rows} output rows`, String(k));

  // tokensSinceMetadataUpdate: a number is expanded to [B]; native reads it as `tokensSinceUpdate`.
  const t = a.tokensSinceMetadataUpdate ?? 0;
  let tHost: Int32Array | undefined;
  if (typeof t === 'number') {
    const v = ch.int('tokensSinceMetadataUpdate', t, 0);
    tHost = new Int32Array(B).fill(v);
  } else {
    ch.tensor('tokensSinceMetadataUpdate', t, { dtypes: ['i32'], rank: 1, shape: [B] });
    tHost = ch.ints('tokensSinceMetadataUpdate');
  }

  const lens = ch.seqLens('seqLens', 'metaBlockTables', MMBPR, bs * metaRows);
  if (lens) {
    ch.tableIds('metaBlockTables', MMBPR, (b) => Math.ceil(lens[b] / (bs * metaRows)), numMetaPages);
    if (tHost) {
      tHost.forEach((v, b) => {
        if (!(v >= 0 && v <= lens[b])) throw rangeError(ch.ctx, `tokensSinceMetadataUpdate[${b}]`, `an integer in [0, seqLens[${b}] = ${lens[b]}]`, String(v));
      });
    }
  }

  // Outputs: the caller's, or new ones (host tensors, or DeviceTensors on a device backend).
  const outShape = [B, rows, k];
  const selected = a.selected ?? (ch.device ? DeviceTensor.empty(ch.backend, 'i32', outShape) : tensor('i32', outShape));
  ch.output('selected', selected, { dtypes: ['i32'], rank: 3, shape: outShape });
  const numSelected = a.numSelected ?? (ch.device ? DeviceTensor.empty(ch.backend, 'i32', [B, rows]) : tensor('i32', [B, rows]));
  ch.output('numSelected', numSelected, { dtypes: ['i32'], rank: 2, shape: [B, rows] });

  if (typeof t === 'number') {
    ch.native.tokensSinceUpdate = ch.device ? deviceTokens(ch.backend, B, t) : tHost;
  } else {
    ch.native.tokensSinceUpdate = ch.native.tokensSinceMetadataUpdate;
    delete ch.native.tokensSinceMetadataUpdate;
  }
  const scalars = {
    queryDtype: q.dtype, metaDtype: mx.dtype, numSeqs: B, numQoHeads: H, numKvHeads: N, headDim: D, blockSize: bs,
    metaRows, maxMetaPagesPerSeq: MMBPR, numMetaPages, k, groupReduce, sinkBlocks, windowBlocks,
  };
  return { ch, scalars, result: { selected, numSelected } };
}

// On a device backend a number t is uploaded as an i32 [B] DeviceTensor. The last one per backend is
// kept: decode loops pass the same (B, t) every step, and a tensor still read by a queued kernel must
// not be freed under it.
const tokenTensors = new Map<string, { B: number; t: number; dev: DeviceTensor }>();
function deviceTokens(backend: Checker['backend'], B: number, t: number): object {
  const c = tokenTensors.get(backend);
  if (c && c.B === B && c.t === t && c.dev.handle) return c.dev.handle;
  const host: HostTensor = tensor('i32', [B], new Int32Array(B).fill(t));
  const dev = DeviceTensor.upload(host, backend);
  tokenTensors.set(backend, { B, t, dev });
  return dev.handle!;
}

/**
 * Selects, per sequence and KV head ('mean') or query head ('perHead'), the min(k, L_b) logical
 * blocks made of the forced ones (stale/window, then sinks) and the highest Quest upper-bound scores
 * (ties to the smaller id), in ascending order with -1 padding. Outputs are allocated unless given.
 * @throws TypeError on a wrong kind of argument (not a tensor, wrong dtype or rank, option of the wrong type).
 * @throws RangeError on a wrong value (shape disagreement, k < 1, tables too narrow, ids outside the
 *   metadata pool, tokensSinceMetadataUpdate outside [0, seqLens[b]], negative options).
 * @throws SelectAttnError SA_ERR_UNSUPPORTED / SA_ERR_DEVICE / SA_ERR_OOM from the backend.
 */
export function questSelect(args: QuestSelectArgs, opts?: CallOptions): QuestSelectResult {
  const { ch, scalars, result } = prepare(args, opts);
  callSync(ch, 'questSelect', scalars);
  return result;
}

/** questSelect off the event loop (an AsyncWorker on cpu). @throws as questSelect (as a rejection) */
export async function questSelectAsync(args: QuestSelectArgs, opts?: CallOptions): Promise<QuestSelectResult> {
  const { ch, scalars, result } = prepare(args, opts);
  await callAsync(ch, 'questSelect', scalars);
  return result;
}

/** Milliseconds per call over `reps` calls, for benchmarks (outputs allocated once). @throws as questSelect */
export function timeQuestSelect(args: QuestSelectArgs, reps: number, opts?: CallOptions): number {
  const { ch, scalars } = prepare(args, opts);
  return callTimed(ch, 'questSelect', scalars, reps);
}

/**
 * Seed name (select_attn_ops.quest_block_select_paged): questSelect with groupReduce 'mean' and no
 * sink/window; returns `selected` [B, N, k]. Differences from the seed: see
 * experiments/3_quest_select/README.md ("Migrating from select_attn_ops").
 * @throws as questSelect
 */
export function questBlockSelectPaged(query: Tensor, maxBlocks: Tensor, minBlocks: Tensor, metadataBlockTables: Tensor,
  seqLens: Tensor, k: number, opts?: CallOptions): Tensor {
  return questSelect({ query, maxMeta: maxBlocks, minMeta: minBlocks, metaBlockTables: metadataBlockTables, seqLens, k }, opts).selected;
}

/**
 * Seed name (quest_block_select_paged_in_out): as questBlockSelectPaged, written into the caller's
 * `selectedIndices` [B, N, k] (k is its last dimension; any k >= 1, not only multiples of 8).
 * @throws as questSelect
 */
export function questBlockSelectPagedInOut(query: Tensor, maxBlocks: Tensor, minBlocks: Tensor, metadataBlockTables: Tensor,
  seqLens: Tensor, selectedIndices: Tensor, opts?: CallOptions): void {
  questSelect({ query, maxMeta: maxBlocks, minMeta: minBlocks, metaBlockTables: metadataBlockTables, seqLens,
    k: lastDim(selectedIndices, opts), selected: selectedIndices }, opts);
}

/**
 * Seed name (quest_block_select_paged_in_out_w): the seed forces block 0 (sink) and the blocks the
 * metadata does not cover yet; here that is sinkBlocks: 1 and tokensSinceMetadataUpdate: t (with this
 * contract's stale rule: every stale block is forced, t may be any value in [0, seqLens[b]]).
 * @throws as questSelect
 */
export function questBlockSelectPagedInOutW(query: Tensor, maxBlocks: Tensor, minBlocks: Tensor, metadataBlockTables: Tensor,
  seqLens: Tensor, tokensSinceMetadataUpdate: number | Tensor, selectedIndices: Tensor, opts?: CallOptions): void {
  questSelect({ query, maxMeta: maxBlocks, minMeta: minBlocks, metaBlockTables: metadataBlockTables, seqLens,
    k: lastDim(selectedIndices, opts), selected: selectedIndices, sinkBlocks: 1, tokensSinceMetadataUpdate }, opts);
}

// k of an in/out call: the last dimension of the output (questSelect then checks the whole shape).
function lastDim(t: Tensor, opts?: CallOptions): number {
  const s = (t as { shape?: unknown } | null | undefined)?.shape;
  if (Array.isArray(s) && s.length === 3) return s[2] as number;
  const ctx = { family: 'quest_select', backend: String(opts?.backend ?? (t instanceof DeviceTensor ? t.backend : 'cpu')) };
  throw typeError(ctx, 'selectedIndices', 'an i32 tensor [B, N, k]', Array.isArray(s) ? `rank ${s.length}` : typeof t);
}
