// The paged_attention sweep shared by vitest and `select-attn verify`: every option alone and in
// combination, odd lengths, partial blocks, empty sequences, GQA 1/4/8/16, decode, speculative
// multi-query and chunked prefill, shuffled tables into larger pools, all dtypes and both layouts.
import type { BackendName } from '../../src/backends.js';
import { isDeviceBackend } from '../../src/backends.js';
import { type PagedAttentionArgs, pagedAttention } from '../../src/ops/paged_attention.js';
import { type FloatDType, type HostTensor, arrayFor, contiguousStrides, toF32 } from '../../src/tensor.js';
import { type Case, type CaseResult, type FamilySuite, Rng, maxRelErr, place, poison, refusedOutsideMinimum } from '../../src/testing/harness.js';
import { type AttnConfig, genAttn } from './gen_data.js';
import { refPagedAttention } from './ref.js';

/** SPEC tolerance of max|out - ref| / max|ref| by output (q) dtype. */
export const TOL: Record<FloatDType, number> = { f32: 1e-5, f16: 2e-3, bf16: 1e-2 };

export function caseId(c: AttnConfig): string {
  const parts = [`q=${c.qDtype}`, `kv=${c.kvDtype}`, c.layout, `D=${c.D}`, `bs=${c.bs}`, `H=${c.H}`, `N=${c.N}`,
    `seqLens=${c.seqLens.join('/')}`, `qLens=${c.qLens.join('/')}`];
  if (c.causal === false) parts.push('causal=false');
  if (c.window) parts.push(`window=${c.window}`);
  if (c.sinks !== undefined) parts.push(`sinks=${c.sinks}`);
  if (c.sinkLogits) parts.push('sinkLogits');
  if (c.alibi) parts.push('alibi');
  if (c.softcap) parts.push(`softcap=${c.softcap}`);
  if (c.scale !== undefined) parts.push(`scale=${c.scale}`);
  if (c.sel) parts.push(`sel=${c.sel.rows}:${c.sel.k}${c.sel.dupes ? ':dupes' : ''}${c.sel.unsorted ? ':unsorted' : ''}`);
  if (c.slack) parts.push(`slack=${c.slack}`);
  if (c.omitCu) parts.push('defaultCu');
  if (c.lse === false) parts.push('noLse');
  if (c.qStd) parts.push(`qStd=${c.qStd}`);
  if (c.kRamp) parts.push(`kRamp=${c.kRamp}`);
  return `paged_attention(${parts.join(',')})`;
}

/** A per-case seed derived from the run seed and the case id, so cases differ but replay together. */
function caseSeed(seed: number, id: string): number {
  let h = seed >>> 0;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x9e3779b1) >>> 0;
  return h;
}

/** A poisoned output with one poisoned guard row before and after it (host backends check the guards). */
function guarded(dtype: FloatDType | 'f32', shape: number[], guard: number): { t: HostTensor; data: Float32Array | Uint16Array } {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = arrayFor(dtype, n + 2 * guard) as Float32Array | Uint16Array;
  poison(data, dtype);
  return { t: { dtype, shape, strides: contiguousStrides(shape), data, offset: guard }, data };
}

function guardsIntact(data: Float32Array | Uint16Array, dtype: FloatDType, n: number, guard: number): boolean {
  const probe = arrayFor(dtype, 1) as Float32Array | Uint16Array;
  poison(probe, dtype);
  const same = (x: number) => (dtype === 'f32' ? Number.isNaN(x) : x === probe[0]);
  for (let i = 0; i < guard; i++) if (!same(data[i]) || !same(data[guard + n + i])) return false;
  return true;
}

export function runAttnCase(cfg: AttnConfig, backend: BackendName, seed: number): CaseResult {
  const g = genAttn(cfg, seed);
  const ref = refPagedAttention(g.problem);
  const P = g.problem;
  const totalQ = P.cuSeqlensQ[P.B];
  const wantLse = cfg.lse ?? true;
  const out = guarded(cfg.qDtype, [totalQ, P.H, P.D], P.H * P.D);
  const lse = guarded('f32', [totalQ, P.H], P.H);
  const placed = place(backend, { ...g.tensors, out: out.t, lse: wantLse ? lse.t : undefined });
  try {
    let res;
    try {
      res = pagedAttention({ ...placed.args, ...g.options } as unknown as PagedAttentionArgs, { backend });
    } catch (e) {
      const refused = refusedOutsideMinimum(backend, cfg, e);
      if (refused) return refused;
      throw e;
    }
    if (res.out !== placed.args.out) return { pass: false, detail: 'out was not written in place' };
    if (!wantLse && res.lse !== undefined) return { pass: false, detail: 'lse returned without being asked for' };
    const o = toF32(placed.fetch('out'));
    const err = maxRelErr(o, ref.out);
    const tol = TOL[cfg.qDtype];
    let detail = `out maxRelErr ${err.toExponential(2)} <= ${tol}`;
    if (!(err <= tol)) return { pass: false, detail: `out maxRelErr ${err.toExponential(2)} > ${tol}` };
    if (wantLse) {
      const l = toF32(placed.fetch('lse'));
      let worst = 0;
      for (let i = 0; i < ref.lse.length; i++) {
        const r = ref.lse[i];
        if (r === -Infinity) {
          if (l[i] !== -Infinity) return { pass: false, detail: `lse[${i}] = ${l[i]}, expected -inf (no visible key)` };
          continue;
        }
        const e = Math.abs(l[i] - r) / Math.max(1, Math.abs(r));
        if (!(e <= tol)) return { pass: false, detail: `lse[${i}] = ${l[i]}, expected ${r} (rel err ${e.toExponential(2)} > ${tol})` };
        worst = Math.max(worst, e);
      }
      detail += `; lse relErr ${worst.toExponential(2)}`;
    }
    if (!isDeviceBackend(backend)) {
      if (!guardsIntact(out.data, cfg.qDtype, totalQ * P.H * P.D, P.H * P.D)) return { pass: false, detail: 'write outside out (guard rows changed)' };
      if (!guardsIntact(lse.data, 'f32', totalQ * P.H, P.H)) return { pass: false, detail: 'write outside lse (guard rows changed)' };
    }
    return { pass: true, detail };
  } finally {
    placed.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// The sweep

const DT_PAIRS: [FloatDType, FloatDType][] = [['f32', 'f32'], ['f16', 'f16'], ['bf16', 'bf16'], ['f32', 'bf16'], ['f32', 'f16'], ['bf16', 'f16']];

/** Cost of the float64 reference (multiply-adds), to keep the suite fast. */
function refCost(c: AttnConfig): number {
  let s = 0;
  c.seqLens.forEach((l, b) => (s += c.qLens[b] * l));
  return s * c.H * c.D * 2;
}

function base(over: Partial<AttnConfig>): AttnConfig {
  return { qDtype: 'f32', kvDtype: 'f32', layout: 'NHD', H: 8, N: 2, D: 64, bs: 16, seqLens: [37, 1, 100], qLens: [1, 1, 1], ...over };
}

export function configs(): AttnConfig[] {
  const out: AttnConfig[] = [];
  // 1. decode: dtype pairs x layouts x GQA 1/4/8 (odd lengths, a one-token sequence, partial blocks)
  for (const [qd, kd] of DT_PAIRS)
    for (const layout of ['NHD', 'HND'] as const)
      for (const G of [1, 4, 8]) out.push(base({ qDtype: qd, kvDtype: kd, layout, N: 2, H: 2 * G, omitCu: G === 4 }));

  // 2. head dims x block sizes (33 and 80: odd and non-power-of-two dims the cpu backend accepts)
  const dims = [64, 96, 128, 256, 33, 80];
  const sizes = [8, 16, 32, 64, 128, 256];
  dims.forEach((D, i) =>
    sizes.forEach((bs, j) => {
      const [qd, kd] = DT_PAIRS[(i + j) % DT_PAIRS.length];
      const seqLens = [2 * bs + 3, (i * 7 + j * 5) % bs + 1, 0];
      const qLens = [1, (i + j) % 2 ? Math.min(3, seqLens[1]) : 1, 0];
      out.push(base({ qDtype: qd, kvDtype: kd, layout: (i + j) % 2 ? 'HND' : 'NHD', D, bs, N: 1 + (j % 2), H: (1 + (j % 2)) * 4, seqLens, qLens }));
    }),
  );

  // 3. every option alone, in decode, speculative multi-query and chunked prefill, f32 and bf16
  const options: [string, Partial<AttnConfig>][] = [
    ['noncausal', { causal: false }],
    ['window1', { window: 1 }],
    ['window7', { window: 7 }],
    ['window50', { window: 50 }],
    ['sinks+window', { sinks: 4, window: 16 }],
    ['sinksOnly', { sinks: 3 }],
    ['sinkLogits', { sinkLogits: true }],
    ['alibi', { alibi: true }],
    ['softcap5', { softcap: 5, qStd: 3 }],
    ['softcap30', { softcap: 30 }],
    ['scale', { scale: 0.3 }],
    ['noLse', { lse: false }],
    ['selKv', { sel: { rows: 'kv', k: 3 } }],
    ['selHead', { sel: { rows: 'head', k: 2 } }],
    ['selDupes', { sel: { rows: 'kv', k: 4, dupes: true } }],
    ['selUnsorted', { sel: { rows: 'head', k: 5, unsorted: true } }],
  ];
  const shapes: Partial<AttnConfig>[] = [
    { seqLens: [37, 1, 100], qLens: [1, 1, 1] },
    { seqLens: [45, 9, 71], qLens: [4, 2, 5] },
    { seqLens: [120, 70], qLens: [40, 70] },
  ];
  for (const [, o] of options)
    shapes.forEach((s, si) =>
      (['f32', 'bf16'] as const).forEach((dt, di) =>
        out.push(base({ ...s, ...o, qDtype: dt, kvDtype: dt, layout: (si + di) % 2 ? 'HND' : 'NHD', H: 8, N: si === 2 ? 1 : 2 })),
      ),
    );

  // 4. multi-query and chunked prefill sweep: qLen x GQA, context before the queries or none
  const qls = [2, 3, 7, 16, 33, 64, 130, 257];
  qls.forEach((ql, i) =>
    [1, 4, 8].forEach((G, j) => {
      const ctx = [0, 5, 29][(i + j) % 3];
      const big = ql > 100;
      out.push(base({
        qDtype: DT_PAIRS[(i + j) % 3][0], kvDtype: DT_PAIRS[(i + j) % 3][1], layout: j % 2 ? 'HND' : 'NHD',
        H: big ? G : 2 * G, N: big ? 1 : 2, D: big ? 32 : 64, bs: [8, 16, 32][i % 3],
        seqLens: [ql + ctx, 3, 50], qLens: [ql, 1, 2],
      }));
    }),
  );

  // 5. edges: empty sequences, no queries at all, queries that see nothing, every query a full prefill
  out.push(base({ seqLens: [0, 0], qLens: [0, 0] }));
  out.push(base({ seqLens: [], qLens: [] }));
  out.push(base({ seqLens: [0, 17, 0, 5], qLens: [0, 1, 0, 5] }));
  out.push(base({ seqLens: [40, 33], qLens: [0, 2] }));
  out.push(base({ seqLens: [1, 1, 1], qLens: [1, 1, 1], sinkLogits: true }));
  out.push(base({ seqLens: [64, 64], qLens: [64, 64], bs: 16 }));
  out.push(base({ seqLens: [50, 30], qLens: [3, 1], sel: { rows: 'kv', k: 1 }, window: 4 }));           // selected block often outside the window
  out.push(base({ seqLens: [50, 30], qLens: [3, 1], sel: { rows: 'head', k: 1 }, window: 2, sinkLogits: true }));
  out.push(base({ seqLens: [16, 32, 48], qLens: [1, 1, 1], bs: 16 }));                                   // exactly full blocks
  out.push(base({ seqLens: [300, 7], qLens: [1, 1], slack: 200, widthPad: 9 }));                        // large pool, wide table

  // 6. larger: KV split across threads and merged, MQA and G = 16, long prefill with a window
  out.push(base({ qDtype: 'bf16', kvDtype: 'bf16', H: 16, N: 2, seqLens: [5000, 3001], qLens: [1, 1] }));
  out.push(base({ qDtype: 'f32', kvDtype: 'f32', layout: 'HND', H: 8, N: 1, seqLens: [6000], qLens: [1], sinkLogits: true, alibi: true }));
  out.push(base({ qDtype: 'f16', kvDtype: 'f16', H: 16, N: 1, D: 128, bs: 32, seqLens: [4099, 17], qLens: [2, 1] }));
  out.push(base({ qDtype: 'f32', kvDtype: 'bf16', H: 8, N: 2, seqLens: [4500, 2000], qLens: [1, 1], window: 1000, sinks: 20 }));
  out.push(base({ qDtype: 'bf16', kvDtype: 'bf16', H: 32, N: 8, D: 128, seqLens: [2048, 1500], qLens: [1, 1], sel: { rows: 'kv', k: 16 } }));
  out.push(base({ qDtype: 'f32', kvDtype: 'f32', H: 4, N: 1, D: 64, seqLens: [350], qLens: [300], window: 64, sinks: 4 }));
  out.push(base({ qDtype: 'bf16', kvDtype: 'bf16', layout: 'HND', H: 4, N: 2, D: 128, bs: 64, seqLens: [400], qLens: [200], softcap: 20, alibi: true }));
  out.push(base({ qDtype: 'f32', kvDtype: 'f16', H: 8, N: 8, seqLens: [260, 260], qLens: [260, 4], causal: false }));

  // multi-query / prefill at the tensor-core head dims with 16-bit q and KV, every GQA group size
  // (the shapes of cuda's warpgroup-MMA kernel: 64-key tiles, 32 at headDim 256, 128 packed rows)
  out.push(base({ qDtype: 'bf16', kvDtype: 'bf16', H: 8, N: 2, D: 256, bs: 16, seqLens: [70, 33], qLens: [20, 33] }));
  out.push(base({ qDtype: 'f16', kvDtype: 'f16', layout: 'HND', H: 4, N: 1, D: 256, bs: 32, seqLens: [100], qLens: [40], window: 30, sinks: 2 }));
  out.push(base({ qDtype: 'bf16', kvDtype: 'bf16', H: 8, N: 1, D: 128, bs: 8, seqLens: [150, 0, 77], qLens: [150, 0, 10], sinkLogits: true }));
  out.push(base({ qDtype: 'f16', kvDtype: 'f16', layout: 'HND', H: 16, N: 16, D: 128, bs: 128, seqLens: [200], qLens: [130], causal: false }));
  out.push(base({ qDtype: 'bf16', kvDtype: 'bf16', H: 16, N: 4, D: 64, bs: 5, seqLens: [300, 257], qLens: [100, 257], slack: 40 }));
  // keys growing along the sequence with a peaky q: the running max keeps jumping by more than 2^8 in p
  // (cuda's warpgroup kernel: lazy rescaling and its fast path's fallback to the exact softmax)
  out.push(base({ qDtype: 'bf16', kvDtype: 'bf16', H: 8, N: 2, D: 128, bs: 16, seqLens: [600, 333], qLens: [300, 333], kRamp: 12, qStd: 3 }));
  out.push(base({ qDtype: 'f16', kvDtype: 'f16', layout: 'HND', H: 16, N: 4, D: 64, bs: 32, seqLens: [520], qLens: [520], kRamp: 8, qStd: 2 }));

  // selection on per-KV-head units (many rows), selections covering every block, > 16 KV heads
  out.push(base({ qDtype: 'bf16', kvDtype: 'bf16', H: 32, N: 4, D: 64, seqLens: [100, 61], qLens: [40, 9], sel: { rows: 'kv', k: 4 } }));
  out.push(base({ qDtype: 'f32', kvDtype: 'f16', layout: 'HND', H: 32, N: 4, D: 64, seqLens: [100, 61], qLens: [40, 9], sel: { rows: 'head', k: 3 } }));
  out.push(base({ qDtype: 'f32', kvDtype: 'f32', H: 8, N: 2, seqLens: [90, 33], qLens: [1, 1], sel: { rows: 'kv', k: 20 } }));
  out.push(base({ qDtype: 'f16', kvDtype: 'f16', layout: 'HND', H: 16, N: 4, seqLens: [90, 33], qLens: [2, 1], sel: { rows: 'head', k: 8 } }));
  out.push(base({ qDtype: 'f32', kvDtype: 'bf16', H: 20, N: 20, D: 32, bs: 8, seqLens: [70, 41], qLens: [1, 1], sel: { rows: 'kv', k: 3 } }));
  out.push(base({ qDtype: 'bf16', kvDtype: 'bf16', layout: 'HND', H: 40, N: 20, D: 32, bs: 8, seqLens: [70, 41], qLens: [1, 1], sel: { rows: 'head', k: 2 } }));

  // extremes: one channel, one-token blocks, G = 64, a wide head
  out.push(base({ D: 1, bs: 1, H: 4, N: 2, seqLens: [9, 1, 4], qLens: [3, 1, 2] }));
  out.push(base({ qDtype: 'bf16', kvDtype: 'f32', layout: 'HND', D: 8, bs: 1, H: 64, N: 1, seqLens: [23], qLens: [5], window: 6, sinks: 2 }));
  out.push(base({ qDtype: 'f16', kvDtype: 'bf16', D: 512, bs: 16, H: 4, N: 2, seqLens: [45, 17], qLens: [3, 1], sel: { rows: 'head', k: 2 } }));
  out.push(base({ qDtype: 'f32', kvDtype: 'f32', D: 16, bs: 64, H: 64, N: 64, seqLens: [130], qLens: [1], alibi: true, softcap: 10 }));

  // 7. random combinations of everything (fixed generator: the list is the same in every run)
  const rng = new Rng(0x5e1ec7);
  for (let made = 0; made < 130; ) {
    const G = [1, 2, 4, 8, 16][rng.int(0, 5)];
    const N = [1, 2, 3][rng.int(0, 3)];
    const bs = [8, 16, 32, 64, 128, 256, 5][rng.int(0, 7)];
    const D = [64, 96, 128, 256, 40, 17][rng.int(0, 6)];
    const B = rng.int(1, 5);
    const seqLens: number[] = [];
    const qLens: number[] = [];
    const mode = rng.int(0, 3);  // decode, speculative, chunked prefill
    for (let b = 0; b < B; b++) {
      const s = rng.next() < 0.1 ? 0 : rng.int(1, 300);
      seqLens.push(s);
      qLens.push(s === 0 ? 0 : mode === 0 ? 1 : mode === 1 ? Math.min(s, rng.int(1, 6)) : Math.min(s, rng.int(1, 80)));
    }
    const [qd, kd] = DT_PAIRS[rng.int(0, DT_PAIRS.length)];
    const c: AttnConfig = {
      qDtype: qd, kvDtype: kd, layout: rng.next() < 0.5 ? 'NHD' : 'HND', H: G * N, N, D, bs, seqLens, qLens,
      slack: rng.int(0, 20),
    };
    if (rng.next() < 0.25) c.causal = false;
    if (rng.next() < 0.35) c.window = rng.int(1, 120);
    if (rng.next() < 0.3) c.sinks = rng.int(0, 10);
    if (rng.next() < 0.3) c.sinkLogits = true;
    if (rng.next() < 0.3) c.alibi = true;
    if (rng.next() < 0.25) c.softcap = [3, 10, 50][rng.int(0, 3)];
    if (rng.next() < 0.2) c.scale = rng.uniform(0.02, 0.4);
    if (rng.next() < 0.35)
      c.sel = { rows: rng.next() < 0.5 ? 'kv' : 'head', k: rng.int(1, 12), dupes: rng.next() < 0.2, unsorted: rng.next() < 0.2 };
    if (rng.next() < 0.15) c.lse = false;
    if (refCost(c) > 4e6) continue;
    out.push(c);
    made++;
  }
  return out;
}

const RUN_OPTIONS = ['scale', 'causal', 'slidingWindow', 'sinkTokens', 'softcap', 'layout', 'maxQLen'] as const;

export const suite: FamilySuite = {
  family: 'paged_attention',
  run: {
    inputs: ['q', 'kCache', 'vCache', 'blockTables', 'seqLens'],
    optionalInputs: ['cuSeqlensQ', 'sinkLogits', 'alibiSlopes', 'blockSelection'],
    outputs: ['out', 'lse'],
    call(tensors, options, backend) {
      const placed = place(backend, tensors);
      try {
        const opts: Record<string, unknown> = {};
        for (const k of RUN_OPTIONS) if (options[k] !== undefined) opts[k] = options[k];
        const r = pagedAttention({ ...placed.args, ...opts, returnLse: true } as unknown as PagedAttentionArgs, { backend });
        const fetch = (t: unknown) => (isDeviceBackend(backend) ? (t as { download(): HostTensor }).download() : (t as HostTensor));
        return { out: fetch(r.out), lse: fetch(r.lse) };
      } finally {
        placed.dispose();
      }
    },
  },
  cases(): Case[] {
    const seen = new Set<string>();
    const cases: Case[] = [];
    for (const cfg of configs()) {
      let id = caseId(cfg);
      for (let k = 2; seen.has(id); k++) id = `${caseId(cfg)}#${k}`;
      seen.add(id);
      cases.push({ id, family: 'paged_attention', run: (backend, seed) => runAttnCase(cfg, backend, caseSeed(seed, id)) });
    }
    return cases;
  },
};
