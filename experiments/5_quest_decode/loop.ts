// The Quest decode loop on any backend (host tensors on cpu, DeviceTensors elsewhere, through place()):
// prefill (cacheWrite + questMetadata), then per step cacheWrite + questMetadataAppend of the new token,
// questSelect, sparse and dense pagedAttention; and its metrics against the float64 oracle (ref.ts).
import { type BackendName, type Tensor, DeviceTensor, hostTensor, synchronize, isDeviceBackend } from '../../src/backends.js';
import { type CacheWriteArgs, type QuestMetadataAppendArgs, cacheWrite, questMetadataAppend } from '../../src/ops/kv_cache.js';
import { type PagedAttentionArgs, pagedAttention } from '../../src/ops/paged_attention.js';
import { questMetadata } from '../../src/ops/quest_metadata.js';
import { type GroupReduce, type QuestSelectArgs, questSelect } from '../../src/ops/quest_select.js';
import { type HostTensor, tensor, toF32 } from '../../src/tensor.js';
import { type Placed, maxRelErr, place } from '../../src/testing/harness.js';
import type { DecodeProblem } from './gen_data.js';
import { type StepOracle, oracleTopMass, refOutput, refStep, rowMass } from './ref.js';

export interface SelectOptions {
  /** 'mean' (one selection per KV head, the default) or 'perHead' */
  groupReduce?: GroupReduce;
  /** always-selected first blocks (default 1: the attention sink lives in block 0) */
  sinkBlocks?: number;
  /** always-selected last blocks (default 2: the block being written and the one before) */
  windowBlocks?: number;
}

export const DEFAULT_SELECT: Required<SelectOptions> = { groupReduce: 'mean', sinkBlocks: 1, windowBlocks: 2 };

/**
 * One decode run's device state: paged K/V caches and metadata pools (shuffled, larger than needed),
 * block tables, current lengths. Works on every backend: host tensors on cpu, DeviceTensors elsewhere.
 */
export class DecodeSession {
  readonly backend: BackendName;
  readonly p: DecodeProblem;
  readonly sel: Required<SelectOptions>;
  /** tokens currently in each sequence's cache */
  readonly lens: number[];
  /** decode steps appended so far */
  stepsDone = 0;
  private readonly state: Placed;
  private readonly device: boolean;
  private readonly perStep: Placed[] = [];

  /** `hugePages`: host KV caches in native memory advised for transparent huge pages (hostTensor) */
  constructor(backend: BackendName, p: DecodeProblem, sel: SelectOptions = {}, opts: { hugePages?: boolean } = {}) {
    this.backend = backend;
    this.p = p;
    this.sel = { ...DEFAULT_SELECT, ...sel };
    this.device = isDeviceBackend(backend);
    const { B, H, N, D, bs, dtype, layout, metaRows } = p.cfg;
    const cacheShape = layout === 'NHD' ? [p.numBlocks, bs, N, D] : [p.numBlocks, N, bs, D];
    const metaShape = [p.numMetaPages, metaRows, N, D];
    this.lens = [...p.cfg.promptLens];
    this.state = place(backend, {
      kCache: opts.hugePages ? hostTensor(dtype, cacheShape, { hugePages: true }) : tensor(dtype, cacheShape),
      vCache: opts.hugePages ? hostTensor(dtype, cacheShape, { hugePages: true }) : tensor(dtype, cacheShape),
      maxMeta: tensor(dtype, metaShape),
      minMeta: tensor(dtype, metaShape),
      blockTables: tensor('i32', [B, p.blockWidth], p.blockTables),
      metaBlockTables: tensor('i32', [B, p.metaWidth], p.metaTables),
      seqLens: tensor('i32', [B], this.lens),
      denseOut: tensor(dtype, [B, H, D]),
      sparseOut: tensor(dtype, [B, H, D]),
    });
  }

  get args(): Record<string, Tensor> {
    return this.state.args;
  }

  /** Slot of token `pos` of sequence `b` in the paged cache. */
  slot(b: number, pos: number): number {
    const { bs } = this.p.cfg;
    return this.p.blockTables[b * this.p.blockWidth + Math.floor(pos / bs)] * bs + (pos % bs);
  }

  /** Writes every prompt token with one cacheWrite and builds the metadata with questMetadata. */
  prefill(): void {
    const { B, layout } = this.p.cfg;
    const slots: number[] = [];
    for (let b = 0; b < B; b++) for (let t = 0; t < this.p.cfg.promptLens[b]; t++) slots.push(this.slot(b, t));
    const inp = place(this.backend, { key: this.p.promptKey, value: this.p.promptValue, slotMapping: tensor('i32', [slots.length], slots) });
    try {
      const a = this.args;
      cacheWrite({ key: inp.args.key, value: inp.args.value, kCache: a.kCache, vCache: a.vCache, slotMapping: inp.args.slotMapping, layout }, { backend: this.backend });
      questMetadata({ kCache: a.kCache, blockTables: a.blockTables, seqLens: a.seqLens, metaBlockTables: a.metaBlockTables,
        maxMeta: a.maxMeta, minMeta: a.minMeta, layout }, { backend: this.backend });
      if (this.device) synchronize(this.backend);
    } finally {
      inp.dispose();
    }
  }

  /** Appends decode step `stepsDone`'s token of every sequence: cacheWrite + questMetadataAppend, lengths + 1. */
  append(): void {
    const s = this.stepsDone;
    if (s >= this.p.cfg.steps) throw new RangeError(`append: the problem has ${this.p.cfg.steps} steps`);
    const { B } = this.p.cfg;
    const pos = this.lens.slice();
    this.perStep.push(place(this.backend, {
      key: this.p.stepKey[s], value: this.p.stepValue[s], query: this.p.stepQuery[s],
      slotMapping: tensor('i32', [B], pos.map((t, b) => this.slot(b, t))),
      seqIdx: tensor('i32', [B], Array.from({ length: B }, (_, b) => b)),
      positions: tensor('i32', [B], pos),
    }));
    const { write, append } = this.appendArgs();
    cacheWrite(write, { backend: this.backend });
    questMetadataAppend(append, { backend: this.backend });
    for (let b = 0; b < B; b++) this.lens[b]++;
    const cur = this.args.seqLens;
    if (cur instanceof DeviceTensor) cur.write(tensor('i32', [B], this.lens));
    else (cur as HostTensor).data.set(this.lens);
    this.stepsDone++;
  }

  /** cacheWrite and questMetadataAppend arguments of the last appended step (repeating them is idempotent). */
  appendArgs(): { write: CacheWriteArgs; append: QuestMetadataAppendArgs } {
    const inp = this.perStep[this.perStep.length - 1].args;
    const a = this.args;
    return {
      write: { key: inp.key, value: inp.value, kCache: a.kCache, vCache: a.vCache, slotMapping: inp.slotMapping, layout: this.p.cfg.layout },
      append: { key: inp.key, maxMeta: a.maxMeta, minMeta: a.minMeta, metaBlockTables: a.metaBlockTables, seqIdx: inp.seqIdx,
        positions: inp.positions, blockSize: this.p.cfg.bs },
    };
  }

  /** The query of the last appended step ([B, H, D], placed). */
  query(): Tensor {
    if (this.stepsDone === 0) throw new RangeError('query: no decode step appended yet');
    return this.perStep[this.stepsDone - 1].args.query;
  }

  /** questSelect arguments for the current step with k blocks per row (outputs allocated by the caller when given). */
  selectArgs(k: number, outputs: { selected?: Tensor; numSelected?: Tensor } = {}): QuestSelectArgs {
    const a = this.args;
    return { query: this.query(), maxMeta: a.maxMeta, minMeta: a.minMeta, metaBlockTables: a.metaBlockTables, seqLens: a.seqLens, k,
      blockSize: this.p.cfg.bs, ...this.sel, ...outputs };
  }

  /** pagedAttention arguments for the current step: dense, or restricted to `selection`. */
  attnArgs(selection?: Tensor): PagedAttentionArgs {
    const a = this.args;
    return { q: this.query(), kCache: a.kCache, vCache: a.vCache, blockTables: a.blockTables, seqLens: a.seqLens, layout: this.p.cfg.layout,
      out: selection ? a.sparseOut : a.denseOut, ...(selection ? { blockSelection: selection } : {}) };
  }

  /** Selects k blocks per row for the current step. */
  select(k: number): Tensor {
    return questSelect(this.selectArgs(k), { backend: this.backend }).selected;
  }

  /** Attention of the current step's query: dense, or over `selection`; the output stays placed. */
  attend(selection?: Tensor): Tensor {
    return pagedAttention(this.attnArgs(selection), { backend: this.backend }).out;
  }

  /** A placed tensor on the host. */
  host(t: Tensor): HostTensor {
    return t instanceof DeviceTensor ? t.download() : (t as HostTensor);
  }

  /** The metadata kept by questMetadataAppend, and a fresh questMetadata build from the current cache. */
  metadataPair(): { kept: [HostTensor, HostTensor]; fresh: [HostTensor, HostTensor] } {
    const { dtype, layout } = this.p.cfg;
    const a = this.args;
    const shape = (a.maxMeta as HostTensor).shape;
    const fresh = place(this.backend, { maxMeta: tensor(dtype, shape), minMeta: tensor(dtype, shape) });
    try {
      questMetadata({ kCache: a.kCache, blockTables: a.blockTables, seqLens: a.seqLens, metaBlockTables: a.metaBlockTables,
        maxMeta: fresh.args.maxMeta, minMeta: fresh.args.minMeta, layout }, { backend: this.backend });
      return { kept: [this.host(a.maxMeta), this.host(a.minMeta)], fresh: [fresh.fetch('maxMeta'), fresh.fetch('minMeta')] };
    } finally {
      fresh.dispose();
    }
  }

  dispose(): void {
    for (const s of this.perStep) s.dispose();
    this.state.dispose();
  }
}

/** Budget in tokens -> blocks per selection row (k = ceil(budget / blockSize), at least 1). */
export function budgetBlocks(budgetTokens: number, bs: number): number {
  return Math.max(1, Math.ceil(budgetTokens / bs));
}

export interface BudgetMetrics {
  /** token budget and its k (blocks per row) */
  budget: number;
  k: number;
  /** mean over (step, sequence, row) of mass(selected) / mass(oracle top-k); and its minimum */
  recall: number;
  minRecall: number;
  /** mean over (step, sequence, row) of the attention mass captured by the selected blocks */
  massFraction: number;
  minMassFraction: number;
  /** fraction of (step, sequence, row, needle) with at least NEEDLE_MIN_MASS of the row's attention
   *  whose block was selected (1 when there is none) */
  needleRecall: number;
  /** how many (step, sequence, row, needle) were retrieval targets, and how many needle rows there were */
  needleTargets: number;
  needleRows: number;
  /** max over steps of maxRelErr(sparse kernel output, dense kernel output) over [B, H, D] */
  errVsDense: number;
  /** max over steps of maxRelErr(sparse kernel output, float64 reference of attention over the same selection) */
  errVsRef: number;
  /** every row's selection of every step (host copies), [B, rows, k] each */
  selections: Int32Array[];
}

export interface LoopReport {
  steps: number;
  rows: number;
  budgets: BudgetMetrics[];
  /** max over steps of maxRelErr(dense kernel output, float64 dense reference) */
  denseErrVsRef: number;
  /** sparse outputs per budget of the last step, and the dense one ([B, H, D] f32) */
  lastSparse: Float32Array[];
  lastDense: Float32Array;
}

/** A needle block counts as a retrieval target of a selection row when it holds at least this much of
 *  the row's true attention mass (the generator aims at needleMass / needles = 7.5% per needle). */
export const NEEDLE_MIN_MASS = 0.02;

/** Selection-quality metrics of one selection against the oracle of the same step. */
export function selectionMetrics(o: StepOracle, sel: Int32Array, rows: number, k: number, H: number, N: number, needlePos: Int32Array, needles: number, bs: number) {
  const B = o.lens.length;
  let recall = 0, minRecall = Infinity, mass = 0, minMass = Infinity, nHit = 0, nNeedle = 0;
  for (let b = 0; b < B; b++)
    for (let r = 0; r < rows; r++) {
      const m = rowMass(o, b, r, H, rows);
      let got = 0;
      for (let s = 0; s < k; s++) {
        const j = sel[(b * rows + r) * k + s];
        if (j >= 0) got += m[j];
      }
      const best = oracleTopMass(m, k);
      const rc = best > 0 ? got / best : 1;
      recall += rc;
      minRecall = Math.min(minRecall, rc);
      mass += got;
      minMass = Math.min(minMass, got);
    }
  for (let b = 0; b < B; b++)
    for (let n = 0; n < N; n++)
      for (let i = 0; i < needles; i++) {
        const j = Math.floor(needlePos[(b * N + n) * needles + i] / bs);
        const rs = rows === N ? [n] : Array.from({ length: H / N }, (_, g) => n * (H / N) + g);
        for (const r of rs) {
          // a needle whose query happens to ignore it at this step is no retrieval target
          if (rowMass(o, b, r, H, rows)[j] < NEEDLE_MIN_MASS) continue;
          let found = false;
          for (let s = 0; s < k; s++) if (sel[(b * rows + r) * k + s] === j) found = true;
          nHit += found ? 1 : 0;
          nNeedle++;
        }
      }
  const cnt = B * rows;
  return { recall: recall / cnt, minRecall, massFraction: mass / cnt, minMassFraction: minMass, needleHit: nHit, needleCount: nNeedle };
}

/**
 * Runs the whole loop: prefill, then every step of the problem with, per token budget, questSelect +
 * sparse pagedAttention, and dense pagedAttention; compares all of it with the float64 oracle.
 * @throws whatever the ops throw (bad configurations are programming errors here)
 */
export function runDecodeLoop(backend: BackendName, p: DecodeProblem, budgets: number[], sel: SelectOptions = {}): LoopReport {
  const { H, N, D, bs } = p.cfg;
  const s = new DecodeSession(backend, p, sel);
  const rows = s.sel.groupReduce === 'mean' ? N : H;
  const acc = budgets.map((budget) => ({
    budget, k: budgetBlocks(budget, bs), recall: 0, minRecall: Infinity, massFraction: 0, minMassFraction: Infinity,
    hit: 0, needles: 0, needleRows: 0, errVsDense: 0, errVsRef: 0, selections: [] as Int32Array[],
  }));
  let denseErrVsRef = 0;
  let lastSparse: Float32Array[] = [];
  let lastDense = new Float32Array(0);
  try {
    s.prefill();
    for (let step = 0; step < p.cfg.steps; step++) {
      s.append();
      const o = refStep(p, step, true);
      const dense = Float32Array.from(toF32(s.host(s.attend())));
      denseErrVsRef = Math.max(denseErrVsRef, maxRelErr(dense, refOutput(o, H, N, D, null)));
      lastSparse = [];
      for (const a of acc) {
        const selT = s.select(a.k);
        const selH = Int32Array.from(s.host(selT).data as Int32Array);
        const sparse = Float32Array.from(toF32(s.host(s.attend(selT))));
        if (selT instanceof DeviceTensor) selT.dispose();
        a.selections.push(selH);
        const m = selectionMetrics(o, selH, rows, a.k, H, N, p.needlePos, p.cfg.needles, bs);
        a.recall += m.recall / p.cfg.steps;
        a.minRecall = Math.min(a.minRecall, m.minRecall);
        a.massFraction += m.massFraction / p.cfg.steps;
        a.minMassFraction = Math.min(a.minMassFraction, m.minMassFraction);
        a.hit += m.needleHit;
        a.needles += m.needleCount;
        a.needleRows += p.cfg.B * rows * p.cfg.needles;
        a.errVsDense = Math.max(a.errVsDense, maxRelErr(sparse, dense));
        a.errVsRef = Math.max(a.errVsRef, maxRelErr(sparse, refOutput(o, H, N, D, selH, rows, a.k)));
        lastSparse.push(sparse);
      }
      lastDense = dense;
    }
  } finally {
    s.dispose();
  }
  return {
    steps: p.cfg.steps,
    rows,
    denseErrVsRef,
    lastSparse,
    lastDense,
    budgets: acc.map((a) => ({
      budget: a.budget, k: a.k, recall: a.recall, minRecall: a.minRecall, massFraction: a.massFraction, minMassFraction: a.minMassFraction,
      needleRecall: a.needles ? a.hit / a.needles : 1, needleTargets: a.needles, needleRows: a.needleRows, errVsDense: a.errVsDense, errVsRef: a.errVsRef, selections: a.selections,
    })),
  };
}
