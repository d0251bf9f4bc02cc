// paged_attention (SPEC section 3): decode, multi-query, chunked prefill and block-sparse attention on
// a paged KV cache. Validates every argument (SPEC section 5) before the backend sees a pointer.
import { DeviceTensor, type BackendName, type Tensor } from '../backends.js';
import { rangeError, typeError } from '../errors.js';
import { type HostTensor, tensor } from '../tensor.js';
import { type CallOptions, Checker } from '../validate.js';
import { callAsync, callSync, callTimed } from './common.js';
import type { Layout } from './quest_metadata.js';

export interface PagedAttentionArgs {
  /** [totalQ, H, D] f32 | f16 | bf16: the queries of all sequences, concatenated */
  q: Tensor;
  /** [numBlocks, blockSize, N, D] (NHD) or [numBlocks, N, blockSize, D] (HND); f32 | f16 | bf16 (may differ from q) */
  kCache: Tensor;
  /** same shape and dtype as kCache */
  vCache: Tensor;
  /** [B, MKBPR] i32 physical block ids; entries past ceil(seqLens[b] / blockSize) are ignored */
  blockTables: Tensor;
  /** [B] i32 tokens in the cache per sequence, including its queries (already written) */
  seqLens: Tensor;
  /** [B + 1] i32 query offsets (default [0, 1, .., B]: one decode query per sequence) */
  cuSeqlensQ?: Tensor;
  /** max over b of qLen_b; only needed (to skip a download) when cuSeqlensQ is a DeviceTensor */
  maxQLen?: number;
  /** [totalQ, H, D], dtype of q; allocated when absent */
  out?: Tensor;
  /** [totalQ, H] f32 natural-log sum of exp of the logits; written when given */
  lse?: Tensor;
  /** allocate and return lse when `lse` is not given (default false) */
  returnLse?: boolean;
  /** softmax scale (default 1 / sqrt(D)) */
  scale?: number;
  /** keys at positions <= the query's position only (default true) */
  causal?: boolean;
  /** W >= 1: keys in [p - W + 1, p] only */
  slidingWindow?: number;
  /** S >= 0: keys < S stay visible whatever the window */
  sinkTokens?: number;
  /** [H] f32 per-head logit joining the softmax denominator only (gpt-oss) */
  sinkLogits?: Tensor;
  /** [H] f32 ALiBi slopes: logit += slope_h * (keyPos - p) */
  alibiSlopes?: Tensor;
  /** c > 0: logit x becomes c * tanh(x / c) (after scaling, before ALiBi and masking) */
  softcap?: number;
  /** [B, N, kSel] or [B, H, kSel] i32 logical blocks visible per KV head or query head; -1 skipped */
  blockSelection?: Tensor;
  /** cache layout (default NHD) */
  layout?: Layout;
}

export interface PagedAttentionResult {
  /** [totalQ, H, D], dtype of q */
  out: Tensor;
  /** [totalQ, H] f32, when `lse` was given or `returnLse` set */
  lse?: Tensor;
}

// Default cuSeqlensQ on device backends, kept per (backend, B) so a decode loop uploads it once.
const defaultCu = new Map<string, DeviceTensor>();

function iota(n: number): HostTensor {
  return tensor('i32', [n + 1], Int32Array.from({ length: n + 1 }, (_, i) => i));
}

function allocate(backend: BackendName, device: boolean, dtype: 'f32' | 'f16' | 'bf16', shape: number[]): Tensor {
  return device ? DeviceTensor.empty(backend, dtype, shape) : tensor(dtype, shape);
}

interface Prepared {
  ch: Checker;
  scalars: Record<string, unknown>;
  result: PagedAttentionResult;
}

function prepare(a: PagedAttentionArgs, opts?: CallOptions): Prepared {
  const ch = new Checker('paged_attention', (a ?? {}) as unknown as Record<string, unknown>, opts);
  if (typeof a !== 'object' || a === null) throw ch.fail('arguments must be an object');
  const floats = ['f32', 'f16', 'bf16'] as const;
  const layout = ch.oneOf('layout', a.layout ?? 'NHD', ['NHD', 'HND'] as const);
  const q = ch.tensor('q', a.q, { dtypes: floats, rank: 3 })!;
  const [totalQ, H, D] = q.shape;
  if (H < 1 || D < 1) throw ch.fail(`q shape [${q.shape}] has an empty head or channel dimension`);
  const k = ch.tensor('kCache', a.kCache, { dtypes: floats, rank: 4 })!;
  const [numBlocks, d1, d2, kD] = k.shape;
  const [bs, N] = layout === 'NHD' ? [d1, d2] : [d2, d1];
  if (bs < 1 || N < 1) throw ch.fail(`kCache shape [${k.shape}] has an empty blockSize or head dimension`);
  ch.num('kCache.shape[3]', kD, (x) => x === D, `headDim ${D} (q.shape[2])`);
  ch.tensor('vCache', a.vCache, { dtypes: [k.dtype], rank: 4, shape: k.shape });
  ch.num('q.shape[1]', H, (x) => x % N === 0, `a multiple of numKvHeads ${N} (query heads per KV head)`);
  const bt = ch.tensor('blockTables', a.blockTables, { dtypes: ['i32'], rank: 2 })!;
  const [B, MKBPR] = bt.shape;
  ch.tensor('seqLens', a.seqLens, { dtypes: ['i32'], rank: 1, shape: [B] });

  // cuSeqlensQ (default one query per sequence) and maxQLen
  let maxQLen: number;
  if (a.cuSeqlensQ === undefined || a.cuSeqlensQ === null) {
    ch.num('q.shape[0]', totalQ, (x) => x === B, `${B} (one query per sequence when cuSeqlensQ is omitted)`);
    let cu: Tensor = iota(B);
    if (ch.device) {
      const key = `${ch.backend}:${B}`;
      let d = defaultCu.get(key);
      if (!d || !d.handle) defaultCu.set(key, (d = DeviceTensor.upload(cu as HostTensor, ch.backend)));
      cu = d;
    }
    ch.tensor('cuSeqlensQ', cu, { dtypes: ['i32'], rank: 1, shape: [B + 1] });
    maxQLen = B > 0 ? 1 : 0;
  } else {
    const cuT = ch.tensor('cuSeqlensQ', a.cuSeqlensQ, { dtypes: ['i32'], rank: 1, shape: [B + 1] })!;
    let cu = ch.ints('cuSeqlensQ');
    if (!cu) {
      if (a.maxQLen !== undefined) cu = undefined;
      else cu = (cuT as DeviceTensor).download().data as Int32Array;
    }
    if (cu) {
      if (cu[0] !== 0) throw rangeError(ch.ctx, 'cuSeqlensQ[0]', '0', String(cu[0]));
      maxQLen = 0;
      for (let b = 0; b < B; b++) {
        const ql = cu[b + 1] - cu[b];
        if (ql < 0) throw rangeError(ch.ctx, `cuSeqlensQ[${b + 1}]`, `>= cuSeqlensQ[${b}] = ${cu[b]} (non-decreasing)`, String(cu[b + 1]));
        maxQLen = Math.max(maxQLen, ql);
      }
      if (cu[B] !== totalQ) throw rangeError(ch.ctx, `cuSeqlensQ[${B}]`, `totalQ = ${totalQ} (q.shape[0])`, String(cu[B]));
      if (a.maxQLen !== undefined) ch.int('maxQLen', a.maxQLen, maxQLen, maxQLen);
    } else {
      maxQLen = ch.int('maxQLen', a.maxQLen, 0, totalQ);
    }
  }

  // lengths, tables, ids
  const lens = ch.seqLens('seqLens', 'blockTables', MKBPR, bs);
  if (lens) {
    const cu = ch.ints('cuSeqlensQ');
    if (cu)
      for (let b = 0; b < B; b++) {
        const ql = cu[b + 1] - cu[b];
        if (ql > lens[b])
          throw rangeError(ch.ctx, `seqLens[${b}]`, `>= qLen = ${ql} (the queries are the sequence's last tokens)`, String(lens[b]));
      }
    ch.tableIds('blockTables', MKBPR, (b) => Math.ceil(lens[b] / bs), numBlocks);
  }

  // options
  const scale = a.scale === undefined ? 1 / Math.sqrt(D) : ch.num('scale', a.scale, Number.isFinite, 'a finite number');
  if (a.causal !== undefined && typeof a.causal !== 'boolean') throw typeError(ch.ctx, 'causal', 'a boolean', typeof a.causal);
  const causal = a.causal ?? true;
  const slidingWindow = a.slidingWindow === undefined || a.slidingWindow === null ? 0 : ch.int('slidingWindow', a.slidingWindow, 1);
  const sinkTokens = a.sinkTokens === undefined ? 0 : ch.int('sinkTokens', a.sinkTokens, 0);
  const softcap = a.softcap === undefined || a.softcap === null ? 0 : ch.num('softcap', a.softcap, (x) => x > 0 && Number.isFinite(x), 'a finite number > 0');
  ch.tensor('sinkLogits', a.sinkLogits, { dtypes: ['f32'], rank: 1, shape: [H] }, true);
  ch.tensor('alibiSlopes', a.alibiSlopes, { dtypes: ['f32'], rank: 1, shape: [H] }, true);
  const sel = ch.tensor('blockSelection', a.blockSelection, { dtypes: ['i32'], rank: 3, shape: [B] }, true);
  let selRows = 0;
  let selK = 0;
  if (sel) {
    [, selRows, selK] = sel.shape;
    if (selRows !== N && selRows !== H)
      throw rangeError(ch.ctx, 'blockSelection.shape[1]', `numKvHeads ${N} or numQoHeads ${H}`, `${selRows} (shape [${sel.shape}])`);
    if (selK < 1) throw rangeError(ch.ctx, 'blockSelection.shape[2]', 'kSel >= 1', String(selK));
    const ids = ch.ints('blockSelection');
    if (ids && lens)
      for (let i = 0; i < ids.length; i++) {
        const b = Math.floor(i / (selRows * selK));
        const L = Math.ceil(lens[b] / bs);
        if (ids[i] < -1 || ids[i] >= L)
          throw rangeError(ch.ctx, `blockSelection[${b}, ${Math.floor(i / selK) % selRows}, ${i % selK}]`, `-1 or a logical block in [0, ${L})`, String(ids[i]));
      }
  }

  // outputs
  const out = a.out ?? allocate(ch.backend, ch.device, q.dtype as 'f32', [totalQ, H, D]);
  ch.output('out', out, { dtypes: [q.dtype], rank: 3, shape: [totalQ, H, D] });
  if (a.returnLse !== undefined && typeof a.returnLse !== 'boolean') throw typeError(ch.ctx, 'returnLse', 'a boolean', typeof a.returnLse);
  const lse = a.lse ?? (a.returnLse ? allocate(ch.backend, ch.device, 'f32', [totalQ, H]) : undefined);
  ch.output('lse', lse, { dtypes: ['f32'], rank: 2, shape: [totalQ, H] }, true);

  const scalars = {
    qDtype: q.dtype, kvDtype: k.dtype, layout, numSeqs: B, numQoHeads: H, numKvHeads: N, headDim: D, blockSize: bs,
    maxBlocksPerSeq: MKBPR, numBlocks, totalQ, maxQLen, scale, causal, slidingWindow, sinkTokens, softcap, selRows, selK,
  };
  return { ch, scalars, result: lse ? { out, lse } : { out } };
}

/**
 * Attention of each query over the visible keys of its sequence in a paged KV cache (SPEC section 3):
 * decode (one query per sequence), speculative multi-query and chunked prefill via cuSeqlensQ, GQA/MQA,
 * sliding window, sink tokens, sink logits, ALiBi, softcap and Quest-style block selection.
 * A query with no visible key gets out = 0 and lse = -inf.
 * @returns out [totalQ, H, D] (dtype of q) and, when asked for, lse [totalQ, H] f32.
 * @throws TypeError on a wrong kind of argument (not a tensor, wrong dtype or rank, non-boolean flag).
 * @throws RangeError on a wrong value (shape disagreement, cuSeqlensQ not monotone or not ending at totalQ,
 *   qLen_b > seqLens[b], tables too narrow, ids outside the pool, a bad blockSelection id, option ranges).
 * @throws SelectAttnError SA_ERR_UNSUPPORTED / SA_ERR_INVALID_ARG / SA_ERR_DEVICE / SA_ERR_OOM from the backend.
 */
export function pagedAttention(args: PagedAttentionArgs, opts?: CallOptions): PagedAttentionResult {
  const { ch, scalars, result } = prepare(args, opts);
  callSync(ch, 'pagedAttention', scalars);
  return result;
}

/** pagedAttention off the event loop (an AsyncWorker on cpu). @throws as pagedAttention */
export async function pagedAttentionAsync(args: PagedAttentionArgs, opts?: CallOptions): Promise<PagedAttentionResult> {
  const { ch, scalars, result } = prepare(args, opts);
  await callAsync(ch, 'pagedAttention', scalars);
  return result;
}

/** Milliseconds per call over `reps` calls, for benchmarks (outputs allocated once). @throws as pagedAttention */
export function timePagedAttention(args: PagedAttentionArgs, reps: number, opts?: CallOptions): number {
  const { ch, scalars } = prepare(args, opts);
  return callTimed(ch, 'pagedAttention', scalars, reps);
}
