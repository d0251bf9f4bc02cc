// Correctness check of the cuda backend against float64 references written from SPEC (this script
// predates the family test sweeps; they replace it once merged). Random seeded cases for every
// family, outputs poisoned with guard words behind them, device-side id errors.
// Usage: node cuda/tools/check.mjs [--seed N] [--quick] [--select (quest_select cases only)]
import { addon, Rng, floats, decode, POISON, dev, fetch } from './lib.mjs';

const args = process.argv.slice(2);
const seed0 = args.includes('--seed') ? Number(args[args.indexOf('--seed') + 1]) : (Date.now() % 1e9) >>> 0;
const quick = args.includes('--quick');
const selectOnly = args.includes('--select');
let passed = 0, failed = 0;
const failures = [];
function record(id, ok, detail) {
  if (ok) passed++;
  else { failed++; failures.push(`${id}: ${detail}`); console.log(`FAIL ${id}: ${detail}`); }
}
const GUARD = 64;
function outBuf(dtype, n) {
  const arr = dtype === 'f32' ? new Float32Array(n + GUARD) : dtype === 'i32' ? new Int32Array(n + GUARD) : new Uint16Array(n + GUARD);
  arr.fill(POISON[dtype]);
  return arr;
}
function guardOk(arr, n, dtype) {
  for (let i = n; i < arr.length; i++) {
    const v = arr[i];
    if (dtype === 'f32' ? !Number.isNaN(v) : v !== POISON[dtype]) return false;
  }
  return true;
}
const ES = { f32: 4, f16: 2, bf16: 2, i32: 4 };
function pagedOff(layout, blk, tok, n, bs, N, D) {
  return layout === 'NHD' ? ((blk * bs + tok) * N + n) * D : ((blk * N + n) * bs + tok) * D;
}

// A paged cache for sequences of `lens`: shuffled block ids in a pool with spare blocks; table
// columns past L_b hold garbage; slots past a sequence's end hold NaN (must never be read into a result).
function makePaged(rng, { dtype, layout, lens, bs, N, D, extraCols = 2, spare = 5, nanTail = true }) {
  const B = lens.length, Ls = lens.map((l) => Math.ceil(l / bs));
  const need = Ls.reduce((a, b) => a + b, 0), numBlocks = need + spare;
  const ids = rng.shuffle([...Array(numBlocks).keys()]);
  const W = Math.max(1, ...Ls) + extraCols;
  const table = new Int32Array(B * W);
  let k = 0;
  for (let b = 0; b < B; b++) for (let j = 0; j < W; j++) table[b * W + j] = j < Ls[b] ? ids[k++] : (j % 2 ? -1 : 1 << 30);
  const n = numBlocks * bs * N * D;
  const K = floats(dtype, n, () => rng.normal()), V = floats(dtype, n, () => rng.normal());
  if (nanTail) {
    const nan = dtype === 'f32' ? NaN : POISON[dtype];
    for (let b = 0; b < B; b++) {
      const L = Ls[b];
      if (!L) continue;
      const blk = table[b * W + L - 1];
      for (let t = lens[b] - (L - 1) * bs; t < bs; t++)
        for (let h = 0; h < N; h++)
          for (let d = 0; d < D; d++) { const o = pagedOff(layout, blk, t, h, bs, N, D) + d; K.data[o] = nan; V.data[o] = nan; }
    }
  }
  return { table, W, numBlocks, K, V, Ls };
}

// ---------------- quest_metadata ----------------
let checkQuestMetadata = function checkQuestMetadata(seed, o) {
  const rng = new Rng(seed);
  const { dtype, layout, bs, N, D, lens, R } = o;
  const pc = makePaged(rng, { dtype, layout, lens, bs, N, D, nanTail: false });
  const B = lens.length;
  const MMBPR = Math.max(1, ...pc.Ls.map((L) => Math.ceil(L / R))) + 1;
  const numMeta = B * MMBPR + 3;
  const mids = rng.shuffle([...Array(numMeta).keys()]);
  const mbt = new Int32Array(B * MMBPR);
  for (let i = 0; i < mbt.length; i++) mbt[i] = mids[i];
  const start = new Int32Array(B).map(() => rng.int(0, 3));
  const E = numMeta * R * N * D;
  const mx = outBuf(dtype, E), mn = outBuf(dtype, E);
  const ref = { mx: decode(dtype, mx.subarray(0, E)), mn: decode(dtype, mn.subarray(0, E)) };  // poison decodes to NaN
  for (let b = 0; b < B; b++) {
    const L = pc.Ls[b];
    if (start[b] >= L) continue;
    for (let j = start[b]; j < L; j++) {
      const page = mbt[b * MMBPR + Math.floor(j / R)];
      const valid = Math.min(bs, lens[b] - j * bs), blk = pc.table[b * pc.W + j];
      for (let h = 0; h < N; h++) for (let d = 0; d < D; d++) {
        let a = -Infinity, c = Infinity;
        for (let t = 0; t < valid; t++) { const x = pc.K.vals[pagedOff(layout, blk, t, h, bs, N, D) + d]; a = Math.max(a, x); c = Math.min(c, x); }
        const oo = ((page * R + (j % R)) * N + h) * D + d;
        ref.mx[oo] = a; ref.mn[oo] = c;
      }
    }
    const lp = Math.floor((L - 1) / R), page = mbt[b * MMBPR + lp];
    for (let j = L; j < (lp + 1) * R; j++) for (let e = 0; e < N * D; e++) {
      const oo = (page * R + (j % R)) * N * D + e;
      ref.mx[oo] = 0; ref.mn[oo] = 0;
    }
  }
  const h = { k: dev(pc.K.data), bt: dev(pc.table), sl: dev(Int32Array.from(lens)), mbt: dev(mbt), st: dev(start), mx: dev(mx), mn: dev(mn) };
  addon.questMetadata('cuda', {
    dtype, layout, numSeqs: B, numKvHeads: N, headDim: D, blockSize: bs, metaRows: R, maxBlocksPerSeq: pc.W,
    maxMetaPagesPerSeq: MMBPR, numBlocks: pc.numBlocks, numMetaPages: numMeta,
    kCache: h.k, blockTables: h.bt, seqLens: h.sl, metaBlockTables: h.mbt, startBlocks: h.st, maxMeta: h.mx, minMeta: h.mn,
  });
  const gx = fetch(h.mx, mx), gn = fetch(h.mn, mn);
  Object.values(h).forEach((x) => addon.deviceFree(x));
  const dx = decode(dtype, gx.subarray(0, E)), dn = decode(dtype, gn.subarray(0, E));
  let bad = 0, first = '';
  for (let i = 0; i < E; i++) {
    const want = [ref.mx[i], ref.mn[i]], got = [dx[i], dn[i]];
    for (let q = 0; q < 2; q++) {
      const w = want[q], g = got[q];
      const same = Number.isNaN(w) ? Number.isNaN(g) : g === w;
      if (!same) { if (!bad) first = `elem ${i} ${q ? 'min' : 'max'} got ${g} want ${w}`; bad++; }
    }
  }
  const id = `quest_metadata(${dtype},${layout},bs=${bs},N=${N},D=${D},R=${R},lens=${lens})`;
  record(id, bad === 0 && guardOk(gx, E, dtype) && guardOk(gn, E, dtype), bad ? `${bad} mismatches, first ${first} (seed ${seed})` : `guard overwritten (seed ${seed})`);
}

// ---------------- quest_select ----------------
function questSelectRef(o, qv, mxv, mnv, mbt, MMBPR) {
  const { B, H, N, D, bs, R, k, perHead, sink, window, tsu, lens } = o;
  const G = H / N, RG = perHead ? G : 1;
  const rows = [];
  for (let b = 0; b < B; b++) for (let n = 0; n < N; n++) for (let r = 0; r < RG; r++) {
    const len = lens[b], L = Math.ceil(len / bs);
    const qb = new Float64Array(D);
    if (perHead) for (let d = 0; d < D; d++) qb[d] = qv[((b * H) + n * G + r) * D + d];
    else for (let d = 0; d < D; d++) { let s = 0; for (let g = 0; g < G; g++) s += qv[(b * H + n * G + g) * D + d]; qb[d] = s / G; }
    const scores = new Float64Array(L);
    for (let j = 0; j < L; j++) {
      const page = mbt[b * MMBPR + Math.floor(j / R)];
      const off = ((page * R + (j % R)) * N + n) * D;
      let s = 0;
      for (let d = 0; d < D; d++) s += Math.max(qb[d] * mxv[off + d], qb[d] * mnv[off + d]);
      scores[j] = s;
    }
    const mru = len - tsu[b], stale = Math.floor(mru / bs);
    const forcedOrder = [];
    const isForced = new Uint8Array(L);
    for (let j = L - 1; j >= 0; j--) if (j >= stale || j >= L - window) { forcedOrder.push(j); isForced[j] = 1; }
    for (let j = 0; j < Math.min(sink, L); j++) if (!isForced[j]) { forcedOrder.push(j); isForced[j] = 1; }
    const sel = new Set(forcedOrder.slice(0, Math.min(k, forcedOrder.length)));
    const cands = [];
    for (let j = 0; j < L; j++) if (!isForced[j]) cands.push(j);
    cands.sort((a, c) => scores[c] - scores[a] || a - c);
    const nc = Math.min(k - sel.size, cands.length);
    const chosen = cands.slice(0, Math.max(0, nc));
    chosen.forEach((j) => sel.add(j));
    const boundary = nc > 0 && nc < cands.length ? scores[cands[nc - 1]] : null;
    rows.push({ sel, scores, isForced, boundary, count: Math.min(k, L), maxAbs: scores.reduce((a, x) => Math.max(a, Math.abs(x)), 0) });
  }
  return rows;
}

let checkQuestSelect = function checkQuestSelect(seed, o) {
  const rng = new Rng(seed);
  const { qdtype, mdtype, B, H, N, D, bs, R, k, perHead, sink, window, lens } = o;
  const tsu = lens.map((l) => (o.tsuMax ? rng.int(0, Math.min(l, o.tsuMax) + 1) : 0));
  const Ls = lens.map((l) => Math.ceil(l / bs));
  const MMBPR = Math.max(1, ...Ls.map((L) => Math.ceil(L / R))) + 1;
  const numMeta = B * MMBPR + 2;
  const mids = rng.shuffle([...Array(numMeta).keys()]);
  const mbt = new Int32Array(B * MMBPR).map((_, i) => mids[i]);
  const E = numMeta * R * N * D;
  // max >= min per element, as real metadata
  const a = floats(mdtype, E, () => rng.normal()), c = floats(mdtype, E, () => rng.normal());
  for (let i = 0; i < E; i++) if (a.vals[i] < c.vals[i]) { [a.data[i], c.data[i]] = [c.data[i], a.data[i]]; [a.vals[i], c.vals[i]] = [c.vals[i], a.vals[i]]; }
  const q = floats(qdtype, B * H * D, () => rng.normal());
  const RG = perHead ? H / N : 1, rows = B * N * RG;
  const selected = outBuf('i32', rows * k), numSel = outBuf('i32', rows);
  const h = { q: dev(q.data), mx: dev(a.data), mn: dev(c.data), mbt: dev(mbt), sl: dev(Int32Array.from(lens)), t: dev(Int32Array.from(tsu)), sel: dev(selected), ns: dev(numSel) };
  addon.questSelect('cuda', {
    queryDtype: qdtype, metaDtype: mdtype, numSeqs: B, numQoHeads: H, numKvHeads: N, headDim: D, blockSize: bs, metaRows: R,
    maxMetaPagesPerSeq: MMBPR, numMetaPages: numMeta, k, groupReduce: perHead ? 'perHead' : 'mean', sinkBlocks: sink, windowBlocks: window,
    query: h.q, maxMeta: h.mx, minMeta: h.mn, metaBlockTables: h.mbt, seqLens: h.sl, tokensSinceUpdate: h.t, selected: h.sel, numSelected: h.ns,
  });
  const got = fetch(h.sel, selected), gotN = fetch(h.ns, numSel);
  Object.values(h).forEach((x) => addon.deviceFree(x));
  const ref = questSelectRef({ ...o, tsu }, q.vals, a.vals, c.vals, mbt, MMBPR);
  const id = `quest_select(q=${qdtype},meta=${mdtype},B=${B},H=${H},N=${N},D=${D},bs=${bs},R=${R},k=${k},${perHead ? 'perHead' : 'mean'},sink=${sink},win=${window},lens=${lens})`;
  let err = '';
  for (let r = 0; r < rows && !err; r++) {
    const rr = ref[r], row = Array.from(got.subarray(r * k, r * k + k));
    if (gotN[r] !== rr.count) { err = `row ${r}: numSelected ${gotN[r]} want ${rr.count}`; break; }
    for (let i = 0; i < k; i++) {
      if (i < rr.count) { if (row[i] < 0 || (i > 0 && row[i] <= row[i - 1])) { err = `row ${r}: not ascending/distinct: ${row.slice(0, 16)}`; break; } }
      else if (row[i] !== -1) { err = `row ${r}: slot ${i} = ${row[i]}, want -1`; break; }
    }
    if (err) break;
    const gs = new Set(row.slice(0, rr.count));
    const band = 1e-4 * (rr.maxAbs + 1e-9);
    for (const j of gs) if (!rr.sel.has(j) && !(j < rr.scores.length && !rr.isForced[j] && rr.boundary !== null && Math.abs(rr.scores[j] - rr.boundary) <= band)) { err = `row ${r}: selected ${j} (score ${rr.scores[j]}) not in ref (boundary ${rr.boundary})`; break; }
    for (const j of rr.sel) if (!gs.has(j) && !(rr.boundary !== null && !rr.isForced[j] && Math.abs(rr.scores[j] - rr.boundary) <= band)) { err = `row ${r}: missed ${j} (score ${rr.scores[j]}, boundary ${rr.boundary})`; break; }
  }
  if (!err && (!guardOk(got, rows * k, 'i32') || !guardOk(gotN, rows, 'i32'))) err = 'guard overwritten';
  record(id, !err, `${err} (seed ${seed})`);
}

// ---------------- paged_attention ----------------
function attnRef(o, qv, pc, sel, sinkLogits, alibi) {
  const { H, N, D, bs, layout, lens, cu, causal, window: W, sinkTokens: S, softcap, scale, selRows } = o;
  const G = H / N, B = lens.length, totalQ = cu[B];
  const out = new Float64Array(totalQ * H * D), lse = new Float64Array(totalQ * H);
  for (let b = 0; b < B; b++) {
    const len = lens[b], qlen = cu[b + 1] - cu[b];
    for (let i = 0; i < qlen; i++) {
      const p = len - qlen + i, qrow = cu[b] + i;
      for (let h = 0; h < H; h++) {
        const n = Math.floor(h / G);
        let allowed = null;
        if (sel) {
          allowed = new Set();
          const srow = selRows === N ? b * N + n : b * H + h;
          for (let e = 0; e < o.selK; e++) { const id = sel[srow * o.selK + e]; if (id >= 0) allowed.add(id); }
        }
        const logits = [], poss = [];
        for (let pos = 0; pos < len; pos++) {
          if (allowed && !allowed.has(Math.floor(pos / bs))) continue;
          if ((causal || W > 0) && pos > p) continue;
          if (W > 0 && pos < p - W + 1 && pos >= S) continue;
          const blk = pc.table[b * pc.W + Math.floor(pos / bs)];
          const off = pagedOff(layout, blk, pos % bs, n, bs, N, D);
          let dot = 0;
          for (let d = 0; d < D; d++) dot += qv[(qrow * H + h) * D + d] * pc.K.vals[off + d];
          let x = dot * scale;
          if (softcap > 0) x = softcap * Math.tanh(x / softcap);
          if (alibi) x += alibi[h] * (pos - p);
          logits.push(x); poss.push(off);
        }
        const ob = (qrow * H + h) * D;
        if (!logits.length) { lse[qrow * H + h] = -Infinity; continue; }
        let m = Math.max(...logits);
        if (sinkLogits) m = Math.max(m, sinkLogits[h]);
        let den = 0;
        const w = logits.map((x) => Math.exp(x - m));
        w.forEach((x) => (den += x));
        if (sinkLogits) den += Math.exp(sinkLogits[h] - m);
        for (let t = 0; t < w.length; t++) for (let d = 0; d < D; d++) out[ob + d] += (w[t] / den) * pc.V.vals[poss[t] + d];
        lse[qrow * H + h] = m + Math.log(den);
      }
    }
  }
  return { out, lse };
}

let checkAttention = function checkAttention(seed, o) {
  const rng = new Rng(seed);
  const { qdtype, kvdtype, layout, H, N, D, bs, lens } = o;
  const B = lens.length, G = H / N;
  const qlens = o.qlens ?? lens.map((l) => Math.min(1, l));
  const cu = [0];
  qlens.forEach((q) => cu.push(cu[cu.length - 1] + q));
  const totalQ = cu[B];
  const maxQLen = Math.max(0, ...qlens);
  const pc = makePaged(rng, { dtype: kvdtype, layout, lens, bs, N, D });
  const q = floats(qdtype, totalQ * H * D, () => rng.normal());
  const scale = o.scale ?? 1 / Math.sqrt(D);
  let sel = null, selRows = 0, selK = 0;
  if (o.selection) {
    selRows = o.selection === 'head' ? H : N;
    selK = o.selK;
    sel = new Int32Array(B * selRows * selK);
    for (let b = 0; b < B; b++) for (let r = 0; r < selRows; r++) {
      const L = pc.Ls[b];
      const ids = rng.shuffle([...Array(L).keys()]).slice(0, Math.min(selK, L));
      if (o.sortSel) ids.sort((x, y) => x - y);
      for (let e = 0; e < selK; e++) sel[(b * selRows + r) * selK + e] = e < ids.length ? ids[e] : -1;
      if (ids.length > 1 && rng.next() < 0.3) sel[(b * selRows + r) * selK] = -1;  // a hole
      if (o.dupes && ids.length > 1 && selK > 2) sel[(b * selRows + r) * selK + selK - 1] = ids[1];  // a block listed twice
    }
  }
  const sinkLogits = o.sinkLogits ? Float32Array.from({ length: H }, () => rng.normal()) : null;
  const alibi = o.alibi ? Float32Array.from({ length: H }, (_, h) => 2 ** (-(h + 1) * 8 / H)) : null;
  const out = outBuf(qdtype, totalQ * H * D), lse = outBuf('f32', totalQ * H);
  const h = {
    q: dev(q.data), k: dev(pc.K.data), v: dev(pc.V.data), bt: dev(pc.table), sl: dev(Int32Array.from(lens)), cu: dev(Int32Array.from(cu)),
    out: dev(out), lse: dev(lse),
  };
  if (sel) h.sel = dev(sel);
  if (sinkLogits) h.sink = dev(sinkLogits);
  if (alibi) h.alibi = dev(alibi);
  const callArgs = {
    qDtype: qdtype, kvDtype: kvdtype, layout, numSeqs: B, numQoHeads: H, numKvHeads: N, headDim: D, blockSize: bs,
    maxBlocksPerSeq: pc.W, numBlocks: pc.numBlocks, totalQ, maxQLen, scale, causal: o.causal ?? true,
    slidingWindow: o.window ?? 0, sinkTokens: o.sinkTokens ?? 0, softcap: o.softcap ?? 0,
    q: h.q, kCache: h.k, vCache: h.v, blockTables: h.bt, seqLens: h.sl, cuSeqlensQ: h.cu, out: h.out, lse: h.lse,
  };
  if (sel) Object.assign(callArgs, { selRows, selK, blockSelection: h.sel });
  if (sinkLogits) callArgs.sinkLogits = h.sink;
  if (alibi) callArgs.alibiSlopes = h.alibi;
  addon.pagedAttention('cuda', callArgs);
  const go = fetch(h.out, out), gl = fetch(h.lse, lse);
  Object.values(h).forEach((x) => addon.deviceFree(x));
  const ref = attnRef({ ...o, cu, causal: o.causal ?? true, window: o.window ?? 0, sinkTokens: o.sinkTokens ?? 0, softcap: o.softcap ?? 0, scale, selRows, selK }, q.vals, pc, sel, sinkLogits, alibi);
  const dout = decode(qdtype, go.subarray(0, totalQ * H * D));
  let num = 0, den = 0, nonfinite = 0;
  for (let i = 0; i < dout.length; i++) {
    if (!Number.isFinite(dout[i])) { nonfinite++; continue; }
    num = Math.max(num, Math.abs(dout[i] - ref.out[i]));
    den = Math.max(den, Math.abs(ref.out[i]));
  }
  let lseErr = 0;
  for (let i = 0; i < totalQ * H; i++) {
    const r = ref.lse[i], g = gl[i];
    if (r === -Infinity) { if (g !== -Infinity) lseErr = Infinity; }
    else if (!Number.isFinite(g)) lseErr = Infinity;
    else lseErr = Math.max(lseErr, Math.abs(g - r) / Math.max(1, Math.abs(r)));
  }
  const rel = den === 0 ? num : num / den;
  const worst = qdtype === 'f32' && kvdtype === 'f32' ? 1e-5 : qdtype === 'bf16' || kvdtype === 'bf16' ? 1e-2 : 2e-3;
  const ok = nonfinite === 0 && rel <= worst && lseErr <= worst && guardOk(go, totalQ * H * D, qdtype) && guardOk(gl, totalQ * H, 'f32');
  const tag = Object.entries(o).filter(([k2]) => !['qdtype', 'kvdtype', 'layout', 'H', 'N', 'D', 'bs', 'lens'].includes(k2)).map(([k2, v]) => `${k2}=${v}`).join(',');
  const id = `paged_attention(${qdtype}/${kvdtype},${layout},H=${H},N=${N},D=${D},bs=${bs},lens=${lens}${tag ? ',' + tag : ''})`;
  record(id, ok, `maxRelErr ${rel.toExponential(2)} (tol ${worst}), lse err ${lseErr.toExponential?.(2) ?? lseErr}, nonfinite ${nonfinite} (seed ${seed})`);
}

// ---------------- kv_cache ----------------
let checkCacheWrite = function checkCacheWrite(seed, o) {
  const rng = new Rng(seed);
  const { dtype, layout, N, D, bs, T } = o;
  const numBlocks = Math.ceil(T / bs) + 3;
  const slots = rng.shuffle([...Array(numBlocks * bs).keys()]).slice(0, T).map((s, i) => (i % 5 === 3 ? -1 : s));
  if (T > 4) slots[T - 1] = slots[0];  // a slot listed twice: the last token wins
  const key = floats(dtype, T * N * D, () => rng.normal()), val = floats(dtype, T * N * D, () => rng.normal());
  const n = numBlocks * bs * N * D;
  const kc = floats(dtype, n, () => rng.normal()), vc = floats(dtype, n, () => rng.normal());
  const refK = Array.from(kc.data), refV = Array.from(vc.data);
  for (let t = 0; t < T; t++) {
    const s = slots[t];
    if (s < 0) continue;
    for (let h = 0; h < N; h++) for (let d = 0; d < D; d++) {
      const o2 = pagedOff(layout, Math.floor(s / bs), s % bs, h, bs, N, D) + d;
      refK[o2] = key.data[(t * N + h) * D + d]; refV[o2] = val.data[(t * N + h) * D + d];
    }
  }
  const h = { k: dev(key.data), v: dev(val.data), kc: dev(kc.data), vc: dev(vc.data), s: dev(Int32Array.from(slots)) };
  addon.cacheWrite('cuda', { dtype, layout, numTokens: T, numKvHeads: N, headDim: D, blockSize: bs, numBlocks, key: h.k, value: h.v, kCache: h.kc, vCache: h.vc, slotMapping: h.s });
  const gk = fetch(h.kc, kc.data), gv = fetch(h.vc, vc.data);
  Object.values(h).forEach((x) => addon.deviceFree(x));
  let bad = 0;
  for (let i = 0; i < n; i++) if (!Object.is(gk[i], refK[i]) || !Object.is(gv[i], refV[i])) bad++;
  record(`cacheWrite(${dtype},${layout},N=${N},D=${D},bs=${bs},T=${T})`, bad === 0, `${bad} mismatches (seed ${seed})`);
}

let checkMetaAppend = function checkMetaAppend(seed, o) {
  const rng = new Rng(seed);
  const { dtype, N, D, bs, R, B, T } = o;
  const start0 = Array.from({ length: B }, () => rng.int(0, 3 * bs * R));
  const MMBPR = Math.ceil((3 * bs * R + T) / (bs * R)) + 1, numMeta = B * MMBPR + 1;
  const mids = rng.shuffle([...Array(numMeta).keys()]);
  const mbt = new Int32Array(B * MMBPR).map((_, i) => mids[i]);
  const E = numMeta * R * N * D;
  const mx = floats(dtype, E, () => rng.normal() + 1), mn = floats(dtype, E, () => rng.normal() - 1);
  const key = floats(dtype, T * N * D, () => rng.normal() * 2);
  // Tokens: runs of consecutive positions per sequence (some starting a block), shuffled.
  const seqIdx = [], positions = [];
  const cursor = start0;
  for (let t = 0; t < T; t++) { const b = rng.int(0, B); seqIdx.push(b); positions.push(cursor[b]++); }
  const order = rng.shuffle([...Array(T).keys()]);
  const sI = Int32Array.from(order.map((i) => seqIdx[i])), pI = Int32Array.from(order.map((i) => positions[i]));
  const rmx = Array.from(mx.vals), rmn = Array.from(mn.vals);
  const byPos = [...Array(T).keys()].sort((a, c) => pI[a] - pI[c] || a - c);
  for (const t of byPos) {
    const b = sI[t], pos = pI[t], j = Math.floor(pos / bs);
    const page = mbt[b * MMBPR + Math.floor(j / R)], row = (page * R + (j % R)) * N * D;
    for (let e = 0; e < N * D; e++) {
      const x = key.vals[t * N * D + e];
      if (pos % bs === 0) { rmx[row + e] = x; rmn[row + e] = x; }
      else { rmx[row + e] = Math.max(rmx[row + e], x); rmn[row + e] = Math.min(rmn[row + e], x); }
    }
  }
  const h = { k: dev(key.data), mx: dev(mx.data), mn: dev(mn.data), mbt: dev(mbt), si: dev(sI), po: dev(pI) };
  addon.questMetadataAppend('cuda', { dtype, numTokens: T, numSeqs: B, numKvHeads: N, headDim: D, blockSize: bs, metaRows: R, maxMetaPagesPerSeq: MMBPR, numMetaPages: numMeta, key: h.k, maxMeta: h.mx, minMeta: h.mn, metaBlockTables: h.mbt, seqIdx: h.si, positions: h.po });
  const gx = decode(dtype, fetch(h.mx, mx.data)), gn = decode(dtype, fetch(h.mn, mn.data));
  Object.values(h).forEach((x) => addon.deviceFree(x));
  let bad = 0;
  for (let i = 0; i < E; i++) if (gx[i] !== rmx[i] || gn[i] !== rmn[i]) bad++;
  record(`questMetadataAppend(${dtype},N=${N},D=${D},bs=${bs},R=${R},B=${B},T=${T})`, bad === 0, `${bad} mismatches (seed ${seed})`);
}

// ---------------- device-side id errors ----------------
function expectDeviceError(id, fn, needle) {
  let msg = null, code = null;
  try { fn(); addon.synchronize('cuda'); } catch (e) { msg = e.message; code = e.saCode; }
  record(id, code === 'SA_ERR_INVALID_ARG' && msg.includes(needle), `got ${code}: ${msg}`);
  try { addon.synchronize('cuda'); record(`${id} (cleared)`, true, ''); } catch (e) { record(`${id} (cleared)`, false, e.message); }
}

function checkErrors(seed) {
  const rng = new Rng(seed);
  const lens = [40, 33], bs = 16, N = 2, H = 4, D = 64;
  const pc = makePaged(rng, { dtype: 'bf16', layout: 'NHD', lens, bs, N, D });
  pc.table[1] = pc.numBlocks + 7;  // sequence 0, block 1: outside the pool
  const q = floats('bf16', 2 * H * D, () => rng.normal());
  const out = outBuf('bf16', 2 * H * D);
  const h = { q: dev(q.data), k: dev(pc.K.data), v: dev(pc.V.data), bt: dev(pc.table), sl: dev(Int32Array.from(lens)), cu: dev(Int32Array.from([0, 1, 2])), out: dev(out) };
  expectDeviceError('paged_attention bad block id', () => addon.pagedAttention('cuda', {
    qDtype: 'bf16', kvDtype: 'bf16', layout: 'NHD', numSeqs: 2, numQoHeads: H, numKvHeads: N, headDim: D, blockSize: bs, maxBlocksPerSeq: pc.W,
    numBlocks: pc.numBlocks, totalQ: 2, maxQLen: 1, q: h.q, kCache: h.k, vCache: h.v, blockTables: h.bt, seqLens: h.sl, cuSeqlensQ: h.cu, out: h.out,
  }), `blockTables[0, 1] = ${pc.numBlocks + 7} is outside the pool`);
  const cu2 = dev(Int32Array.from([0, 1, 3]));
  const sl2 = dev(Int32Array.from([16, 1]));  // sequence 0 reads only its (valid) block 0
  expectDeviceError('paged_attention qLen > seqLen', () => addon.pagedAttention('cuda', {
    qDtype: 'bf16', kvDtype: 'bf16', layout: 'NHD', numSeqs: 2, numQoHeads: H, numKvHeads: N, headDim: D, blockSize: bs, maxBlocksPerSeq: pc.W,
    numBlocks: pc.numBlocks, totalQ: 3, maxQLen: 2, q: dev(floats('bf16', 3 * H * D, () => rng.normal()).data), kCache: h.k, vCache: h.v,
    blockTables: h.bt, seqLens: sl2, cuSeqlensQ: cu2, out: dev(outBuf('bf16', 3 * H * D)),
  }), 'sequence 1 has 2 queries but seqLens[1] = 1');
  const slots = dev(Int32Array.from([0, 5000]));
  const kv = dev(new Uint16Array(2 * N * D));
  expectDeviceError('cacheWrite bad slot', () => addon.cacheWrite('cuda', { dtype: 'bf16', layout: 'NHD', numTokens: 2, numKvHeads: N, headDim: D, blockSize: bs, numBlocks: pc.numBlocks, key: kv, value: kv, kCache: h.k, vCache: h.v, slotMapping: slots }), 'slotMapping[1] = 5000');
  Object.values(h).forEach((x) => addon.deviceFree(x));
  addon.deviceFree(slots); addon.deviceFree(kv);
}

// ---------------- the sweep ----------------
// A thrown error fails the case and the sweep goes on (the device error record is cleared).
function guard(fn) {
  return (sd, o) => {
    try { fn(sd, o); } catch (e) {
      record(`${fn.name}(${JSON.stringify(o)})`, false, `threw ${e.saCode ?? ''} ${e.message} (seed ${sd})`);
      try { addon.synchronize('cuda'); } catch { /* cleared */ }
    }
  };
}
checkQuestMetadata = guard(checkQuestMetadata);
checkQuestSelect = guard(checkQuestSelect);
checkAttention = guard(checkAttention);
checkCacheWrite = guard(checkCacheWrite);
checkMetaAppend = guard(checkMetaAppend);
let seed = seed0;
const next = () => (seed = (seed * 1103515245 + 12345) >>> 0);
console.log(`cuda check, seed ${seed0}; devices: ${JSON.stringify(addon.listBackends().filter((b) => b.name === 'cuda'))}`);
const t0 = Date.now();
for (const dtype of ['f32', 'f16', 'bf16'])
  for (const layout of ['NHD', 'HND'])
    for (const [bs, N, D, R] of [[16, 2, 128, 16], [8, 1, 64, 5], [32, 3, 96, 32], [128, 2, 256, 128], [16, 4, 100, 16]])
      checkQuestMetadata(next(), { dtype, layout, bs, N, D, R, lens: [37, 0, bs * 3, 1, 5 * bs + 3] });

for (const [qdtype, mdtype] of [['bf16', 'bf16'], ['f16', 'f16'], ['f32', 'f32'], ['f32', 'bf16']])
  for (const [B, H, N, D, bs, R] of [[3, 8, 2, 128, 16, 16], [2, 4, 4, 64, 8, 8], [2, 32, 4, 256, 32, 7], [1, 6, 2, 96, 16, 16]])
    for (const [k, perHead, sink, win, tsuMax] of [[1, false, 0, 0, 0], [13, false, 1, 2, 0], [64, true, 0, 0, 0], [200, false, 3, 4, 40], [5, true, 2, 1, 20], [30, false, 4, 30, 0]])
      checkQuestSelect(next(), { qdtype, mdtype, B, H, N, D, bs, R, k, perHead, sink, window: win, tsuMax, lens: B === 1 ? [2500] : [bs * 40 + 3, 0, 1, 777].slice(0, B) });
// a long row (global-memory path of the radix select) and B=32
checkQuestSelect(next(), { qdtype: 'bf16', mdtype: 'bf16', B: 1, H: 8, N: 2, D: 64, bs: 4, R: 16, k: 128, perHead: false, sink: 0, window: 0, lens: [60000] });
if (!quick) checkQuestSelect(next(), { qdtype: 'bf16', mdtype: 'bf16', B: 8, H: 32, N: 8, D: 128, bs: 16, R: 16, k: 128, perHead: false, sink: 1, window: 1, lens: [32768, 1000, 17, 4096, 32768, 0, 2049, 9999] });
if (selectOnly) {
  checkQuestSelect(next(), { qdtype: 'bf16', mdtype: 'bf16', B: 1, H: 32, N: 8, D: 128, bs: 16, R: 16, k: 128, perHead: false, sink: 0, window: 0, lens: [32768] });
  checkQuestSelect(next(), { qdtype: 'bf16', mdtype: 'bf16', B: 2, H: 8, N: 2, D: 64, bs: 8, R: 8, k: 100, perHead: false, sink: 2, window: 3, lens: [32000, 20000] });
  console.log(`\ncuda check (quest_select only): ${passed} passed, ${failed} failed in ${((Date.now() - t0) / 1000).toFixed(1)} s (seed ${seed0})`);
  if (failures.length) console.log(failures.slice(0, 40).join('\n'));
  process.exit(failed ? 1 : 0);
}

const attnShapes = [
  // decode: GQA 1/4/8, odd lengths, empty sequence
  { H: 8, N: 8, D: 128, bs: 16, lens: [1, 300, 0, 1025] },
  { H: 32, N: 8, D: 128, bs: 16, lens: [2500, 17, 4000] },
  { H: 16, N: 2, D: 64, bs: 8, lens: [333, 64] },
  { H: 8, N: 2, D: 96, bs: 32, lens: [200, 1] },
  { H: 4, N: 1, D: 256, bs: 64, lens: [700, 129] },
  { H: 12, N: 4, D: 128, bs: 256, lens: [600, 257] },
  { H: 4, N: 2, D: 40, bs: 8, lens: [77, 3] },      // head dims off the tensor-core set: CUDA-core path
  { H: 3, N: 1, D: 17, bs: 5, lens: [50, 0, 9] },
];
for (const [qdtype, kvdtype] of [['bf16', 'bf16'], ['f16', 'f16'], ['f32', 'f32'], ['f32', 'bf16'], ['bf16', 'f32']])
  for (const layout of ['NHD', 'HND'])
    for (const sh of attnShapes) {
      if (qdtype !== kvdtype && sh.D !== 128) continue;
      checkAttention(next(), { qdtype, kvdtype, layout, ...sh });
    }
for (const dt of ['bf16', 'f16', 'f32']) {
  const base = { qdtype: dt, kvdtype: dt, layout: 'NHD', H: 8, N: 2, D: 128, bs: 16, lens: [900, 31, 0, 2000] };
  checkAttention(next(), { ...base, window: 100 });
  checkAttention(next(), { ...base, window: 64, sinkTokens: 4 });
  checkAttention(next(), { ...base, softcap: 5 });
  checkAttention(next(), { ...base, alibi: true });
  checkAttention(next(), { ...base, sinkLogits: true });
  checkAttention(next(), { ...base, scale: 0.3, softcap: 3, alibi: true, sinkLogits: true, window: 300, sinkTokens: 2, layout: 'HND' });
  checkAttention(next(), { ...base, selection: 'kv', selK: 9 });
  checkAttention(next(), { ...base, selection: 'head', selK: 5, layout: 'HND' });
  checkAttention(next(), { ...base, selection: 'kv', selK: 200, sortSel: true });
  checkAttention(next(), { ...base, selection: 'kv', selK: 7, dupes: true });
  checkAttention(next(), { ...base, selection: 'head', selK: 9, dupes: true, lens: [300, 40], qlens: [20, 3] });
  // multi-query / chunked prefill (causal and not)
  checkAttention(next(), { ...base, lens: [300, 77, 64, 0], qlens: [40, 77, 1, 0] });
  checkAttention(next(), { ...base, lens: [300, 77], qlens: [130, 3], causal: false });
  checkAttention(next(), { ...base, H: 4, N: 4, D: 64, bs: 8, lens: [200, 513], qlens: [200, 100], window: 50, sinkTokens: 3 });
  checkAttention(next(), { ...base, H: 32, N: 4, D: 256, bs: 64, lens: [260, 100], qlens: [5, 100], softcap: 4, sinkLogits: true });
  checkAttention(next(), { ...base, D: 96, lens: [150, 90], qlens: [150, 2], alibi: true, selection: 'kv', selK: 4 });
  checkAttention(next(), { ...base, lens: [500], qlens: [3], selection: 'head', selK: 6 });
}
for (const dtype of ['f32', 'f16', 'bf16'])
  for (const layout of ['NHD', 'HND']) {
    checkCacheWrite(next(), { dtype, layout, N: 4, D: 128, bs: 16, T: 37 });
    checkCacheWrite(next(), { dtype, layout, N: 1, D: 100, bs: 8, T: 5 });
  }
for (const dtype of ['f32', 'f16', 'bf16']) {
  checkMetaAppend(next(), { dtype, N: 2, D: 64, bs: 4, R: 4, B: 3, T: 50 });
  checkMetaAppend(next(), { dtype, N: 8, D: 128, bs: 16, R: 16, B: 5, T: 5 });
  checkMetaAppend(next(), { dtype, N: 1, D: 256, bs: 2, R: 3, B: 1, T: 700 });
}
checkErrors(next());
console.log(`\ncuda check: ${passed} passed, ${failed} failed in ${((Date.now() - t0) / 1000).toFixed(1)} s (seed ${seed0})`);
if (failures.length) console.log(failures.slice(0, 40).join('\n'));
process.exitCode = failed ? 1 : 0;
