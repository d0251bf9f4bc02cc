// The quest_decode checks shared by vitest and `select-attn verify`: the whole loop (prefill, per step
// cacheWrite + questMetadataAppend, questSelect, sparse and dense pagedAttention) on small problems,
// judged against the float64 oracle; each check is one case so a failure names what broke.
import type { BackendName } from '../../src/backends.js';
import type { FloatDType, HostTensor } from '../../src/tensor.js';
import type { Case, CaseResult, FamilySuite } from '../../src/testing/harness.js';
import { type DecodeConfig, genDecode } from './gen_data.js';
import { type LoopReport, type SelectOptions, DecodeSession, NEEDLE_MIN_MASS, runDecodeLoop } from './loop.js';

/** SPEC section 3 tolerance of attention outputs, max|out - ref| / max|ref|. */
export const TOL: Record<FloatDType, number> = { f32: 1e-5, f16: 2e-3, bf16: 1e-2 };

export interface DecodeCaseConfig {
  name: string;
  problem: Omit<DecodeConfig, 'steps'> & { steps?: number };
  select: SelectOptions;
  /** a budget (tokens) at which every needle block must be selected */
  needleBudget: number;
}

export const CONFIGS: DecodeCaseConfig[] = [
  { name: 'gqa4', problem: { dtype: 'bf16', B: 2, H: 8, N: 2, D: 64, bs: 16, promptLens: [700, 1029] }, select: {}, needleBudget: 256 },
  { name: 'mha-hnd-metaRows4', problem: { dtype: 'f32', B: 2, H: 4, N: 4, D: 32, bs: 8, metaRows: 4, layout: 'HND', promptLens: [613, 480] },
    select: { windowBlocks: 1 }, needleBudget: 256 },
  // perHead: each query head scores alone (no averaging of the group's query noise), so it needs more budget
  { name: 'gqa8-perHead', problem: { dtype: 'f16', B: 3, H: 16, N: 2, D: 64, bs: 16, promptLens: [1100, 917, 842] },
    select: { groupReduce: 'perHead', sinkBlocks: 1, windowBlocks: 2 }, needleBudget: 384 },
];

/** Budgets (tokens) of a config: 4, 16 and 32 blocks, and one covering every block of every sequence. */
export function budgetsOf(c: DecodeCaseConfig): number[] {
  const all = Math.max(...c.problem.promptLens.map((l) => Math.ceil((l + STEPS) / c.problem.bs))) * c.problem.bs;
  return [4 * c.problem.bs, c.needleBudget, 32 * c.problem.bs, all].sort((a, b) => a - b).filter((x, i, a) => a.indexOf(x) === i);
}

const STEPS = 3;

function problemOf(c: DecodeCaseConfig, seed: number) {
  return genDecode({ steps: STEPS, ...c.problem }, seed);
}

// One loop run serves the four checks that read its report (cases of a config run one after another).
const reports = new Map<string, LoopReport>();
function loopReport(backend: BackendName, c: DecodeCaseConfig, seed: number): LoopReport {
  const key = `${backend}:${seed}:${c.name}`;
  let r = reports.get(key);
  if (!r) {
    reports.clear();
    r = runDecodeLoop(backend, problemOf(c, seed), budgetsOf(c), c.select);
    reports.set(key, r);
  }
  return r;
}

const ok = (detail: string): CaseResult => ({ pass: true, detail });
const fail = (detail: string): CaseResult => ({ pass: false, detail });
const e = (x: number) => x.toExponential(2);

/** Full budget: every block selected, recall and mass 1, sparse output = dense within the SPEC tolerance. */
export function checkFullBudget(r: LoopReport, c: DecodeCaseConfig): CaseResult {
  const tol = TOL[c.problem.dtype];
  const full = r.budgets[r.budgets.length - 1];
  for (const [si, sel] of full.selections.entries())
    for (let b = 0; b < c.problem.B; b++)
      for (let row = 0; row < r.rows; row++) {
        const got = Array.from(sel.subarray((b * r.rows + row) * full.k, (b * r.rows + row + 1) * full.k)).filter((j) => j >= 0);
        const lenNow = c.problem.promptLens[b] + si + 1;
        const want = Array.from({ length: Math.ceil(lenNow / c.problem.bs) }, (_, j) => j);
        if (got.join() !== want.join()) return fail(`step ${si} seq ${b} row ${row}: selected [${got}] instead of every block 0..${want.length - 1}`);
      }
  if (Math.abs(full.recall - 1) > 1e-9 || Math.abs(full.massFraction - 1) > 1e-9 || Math.abs(full.minMassFraction - 1) > 1e-9)
    return fail(`full budget: recall ${full.recall}, mass ${full.massFraction} (min ${full.minMassFraction}), expected 1`);
  if (!(full.errVsDense <= tol)) return fail(`full budget: sparse vs dense maxRelErr ${e(full.errVsDense)} > ${e(tol)}`);
  if (!(r.denseErrVsRef <= tol)) return fail(`dense vs float64 reference maxRelErr ${e(r.denseErrVsRef)} > ${e(tol)}`);
  return ok(`every block selected; sparse vs dense ${e(full.errVsDense)}, dense vs ref ${e(r.denseErrVsRef)} <= ${e(tol)}`);
}

/** Every needle block, the sink block and the window blocks are selected at the needle budget. */
export function checkNeedles(r: LoopReport, c: DecodeCaseConfig): CaseResult {
  const m = r.budgets.find((x) => x.budget === c.needleBudget)!;
  // the generator aims at 7.5% of the attention per needle; at least half the needle rows must be real targets
  if (m.needleTargets < 0.5 * m.needleRows) return fail(`only ${m.needleTargets} of ${m.needleRows} needle rows hold >= ${NEEDLE_MIN_MASS} of the attention`);
  if (m.needleRecall !== 1) return fail(`budget ${m.budget} (k ${m.k}): only ${(m.needleRecall * 100).toFixed(1)}% of ${m.needleTargets} needle targets selected`);
  const sink = c.select.sinkBlocks ?? 1;
  const win = c.select.windowBlocks ?? 2;
  for (const [si, sel] of m.selections.entries())
    for (let b = 0; b < c.problem.B; b++) {
      const L = Math.ceil((c.problem.promptLens[b] + si + 1) / c.problem.bs);
      const forced = [...Array.from({ length: sink }, (_, j) => j), ...Array.from({ length: win }, (_, i) => L - 1 - i)];
      for (let row = 0; row < r.rows; row++) {
        const got = new Set(sel.subarray((b * r.rows + row) * m.k, (b * r.rows + row + 1) * m.k));
        const miss = forced.filter((j) => !got.has(j));
        if (miss.length) return fail(`step ${si} seq ${b} row ${row}: forced blocks [${miss}] not selected`);
      }
    }
  return ok(`budget ${m.budget}: all ${m.needleTargets} of ${m.needleRows} needle rows that are targets, every sink and window block selected (recall ${m.recall.toFixed(4)})`);
}

/** Selections nest as the budget grows, captured mass grows, and the sparse output error shrinks to the tolerance. */
export function checkBudgetSweep(r: LoopReport, c: DecodeCaseConfig): CaseResult {
  const tol = TOL[c.problem.dtype];
  const bs = r.budgets;
  for (let i = 1; i < bs.length; i++) {
    const [lo, hi] = [bs[i - 1], bs[i]];
    for (let s = 0; s < lo.selections.length; s++)
      for (let row = 0; row < lo.selections[s].length / lo.k; row++) {
        const big = new Set(hi.selections[s].subarray(row * hi.k, (row + 1) * hi.k));
        for (const j of lo.selections[s].subarray(row * lo.k, (row + 1) * lo.k))
          if (j >= 0 && !big.has(j)) return fail(`step ${s} row ${row}: block ${j} selected at budget ${lo.budget} but not at ${hi.budget}`);
      }
    if (hi.massFraction < lo.massFraction - 1e-12) return fail(`mass fraction fell from ${lo.massFraction} (budget ${lo.budget}) to ${hi.massFraction} (${hi.budget})`);
    // the error may wobble a little between close budgets, never grow beyond it
    if (hi.errVsDense > lo.errVsDense * 1.1 + tol) return fail(`sparse vs dense error grew from ${e(lo.errVsDense)} (budget ${lo.budget}) to ${e(hi.errVsDense)} (${hi.budget})`);
  }
  const [first, last] = [bs[0], bs[bs.length - 1]];
  if (!(first.errVsDense > 10 * Math.max(last.errVsDense, tol / 10))) return fail(`error at the smallest budget ${e(first.errVsDense)} is not well above the full budget's ${e(last.errVsDense)}`);
  const mid = bs.find((x) => x.budget === c.needleBudget)!;
  if (!(mid.recall >= 0.95)) return fail(`recall ${mid.recall.toFixed(4)} < 0.95 at budget ${mid.budget}`);
  return ok(`errVsDense ${bs.map((x) => `${x.budget}:${e(x.errVsDense)}`).join(' ')}; mass ${bs.map((x) => x.massFraction.toFixed(3)).join(' ')}`);
}

/** At every budget and step, the sparse output matches the float64 attention over the same selection. */
export function checkSparseVsRef(r: LoopReport, c: DecodeCaseConfig): CaseResult {
  const tol = TOL[c.problem.dtype];
  for (const m of r.budgets) if (!(m.errVsRef <= tol)) return fail(`budget ${m.budget}: sparse vs float64 reference over the same selection ${e(m.errVsRef)} > ${e(tol)}`);
  return ok(`sparse vs reference <= ${e(Math.max(...r.budgets.map((m) => m.errVsRef)))} at every budget (tol ${e(tol)})`);
}

/** After prefill and the steps, the appended metadata equals a fresh questMetadata build, bit for bit. */
export function checkMetadata(backend: BackendName, c: DecodeCaseConfig, seed: number): CaseResult {
  const p = problemOf(c, seed);
  const s = new DecodeSession(backend, p, c.select);
  try {
    s.prefill();
    for (let i = 0; i < p.cfg.steps; i++) s.append();
    const { kept, fresh } = s.metadataPair();
    const { N, D, metaRows } = p.cfg;
    const row = N * D;
    const words = (t: HostTensor) => (t.data instanceof Float32Array ? new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.length) : t.data);
    for (let b = 0; b < p.cfg.B; b++) {
      const L = Math.ceil(s.lens[b] / p.cfg.bs);
      for (let j = 0; j < L; j++) {
        const page = p.metaTables[b * p.metaWidth + Math.floor(j / metaRows)];
        const o = (page * metaRows + (j % metaRows)) * row;
        for (let t = 0; t < 2; t++) {
          const [a, f] = [words(kept[t]), words(fresh[t])];
          for (let i = 0; i < row; i++)
            if (a[o + i] !== f[o + i]) return fail(`${t ? 'min' : 'max'}Meta seq ${b} block ${j} element ${i}: kept word ${a[o + i]}, fresh build ${f[o + i]}`);
        }
      }
    }
    return ok(`appended metadata of ${p.cfg.steps} steps equals questMetadata bit for bit`);
  } finally {
    s.dispose();
  }
}

export const suite: FamilySuite = {
  family: 'quest_decode',
  requires: ['quest_select', 'quest_metadata', 'paged_attention', 'kv_cache'],
  cases(): Case[] {
    const out: Case[] = [];
    for (const c of CONFIGS) {
      const budgets = budgetsOf(c);
      const shape = `${c.name},dtype=${c.problem.dtype},B=${c.problem.B},H=${c.problem.H},N=${c.problem.N},D=${c.problem.D},bs=${c.problem.bs}`;
      const loop = (backend: BackendName, seed: number) => loopReport(backend, c, seed);
      out.push({ id: `quest_decode.fullBudget(${shape})`, family: 'quest_decode', run: (be, seed) => checkFullBudget(loop(be, seed), c) });
      out.push({ id: `quest_decode.needles(${shape},budget=${c.needleBudget})`, family: 'quest_decode', run: (be, seed) => checkNeedles(loop(be, seed), c) });
      out.push({ id: `quest_decode.budgetSweep(${shape},budgets=${budgets.join('/')})`, family: 'quest_decode', run: (be, seed) => checkBudgetSweep(loop(be, seed), c) });
      out.push({ id: `quest_decode.sparseVsRef(${shape})`, family: 'quest_decode', run: (be, seed) => checkSparseVsRef(loop(be, seed), c) });
      out.push({ id: `quest_decode.metadata(${shape})`, family: 'quest_decode', run: (be, seed) => checkMetadata(be, c, seed) });
    }
    return out;
  },
};
