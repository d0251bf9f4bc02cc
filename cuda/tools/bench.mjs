// Benchmarks of the cuda kernels on the issue-4 shapes, timed by the backend (device events, L2
// flushed before each call, median; see CudaBackend::elapsed_ms), with the copy ceiling measured in
// the same run. Writes the case list + our numbers as JSON (experiments/peers/peers.py reads the
// case list and times the torch peers on the same shapes; report.mjs merges both).
// Usage: node cuda/tools/bench.mjs OUT.json [--quick]
import { writeFileSync } from 'node:fs';
import { addon, Rng, floats, dev, questSelectArgs } from './lib.mjs';

const outPath = process.argv[2] ?? 'bench_ours.json';
const quick = process.argv.includes('--quick');
const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7);
const REPS = 30;
const rng = new Rng(1234);
const info = addon.listBackends().find((b) => b.name === 'cuda');
console.log(`device: ${info.info}`);

// ---- ceiling: device-to-device copy of 1 GiB (2 GiB moved) ----
const ceilBytes = 2 * 1024 ** 3;
const ceilMs = addon.measureCeiling('cuda', ceilBytes, 20);
const ceiling = ceilBytes / (ceilMs * 1e-3);  // bytes/s
console.log(`copy ceiling: ${(ceiling / 1e12).toFixed(3)} TB/s (read+write)`);

const results = [];
const H = 32, N = 8, D = 128, ES = 2;
const tokenKV = N * D * ES * 2;  // K+V bytes per token

// One big K and V pool (bf16), filled by tiling a random 32 MiB chunk; tables view it per block size.
const maxTokens = quick || only === 'ncu' ? 1 << 19 : 1 << 21;
const LAYOUT = process.env.SA_BENCH_LAYOUT ?? 'NHD';
const poolBytes = maxTokens * N * D * ES;
const chunk = floats('bf16', 16 * 1024 * 1024, () => rng.normal()).data;
function filled(bytes) {
  const h = addon.deviceAlloc('cuda', bytes);
  for (let off = 0; off < bytes; off += chunk.byteLength) {
    const n = Math.min(chunk.byteLength, bytes - off);
    addon.deviceCopy(h, n === chunk.byteLength ? chunk : chunk.subarray(0, n / 2), off, 'upload');
  }
  return h;
}
const K = filled(poolBytes), V = filled(poolBytes);

function pagedTables(B, L, bs) {
  const numBlocks = maxTokens / bs, per = Math.ceil(L / bs);
  const ids = rng.shuffle([...Array(numBlocks).keys()]);
  const t = new Int32Array(B * per);
  for (let i = 0; i < t.length; i++) t[i] = ids[i];
  return { table: dev(t), W: per, numBlocks };
}

function decodeArgs(B, L, bs, extra = {}) {
  const { table, W, numBlocks } = pagedTables(B, L, bs);
  const q = dev(floats('bf16', B * H * D, () => rng.normal()).data);
  const out = addon.deviceAlloc('cuda', B * H * D * 2);
  const cu = dev(Int32Array.from({ length: B + 1 }, (_, i) => i));
  const sl = dev(new Int32Array(B).fill(L));
  return {
    qDtype: 'bf16', kvDtype: 'bf16', layout: LAYOUT, numSeqs: B, numQoHeads: H, numKvHeads: N, headDim: D, blockSize: bs,
    maxBlocksPerSeq: W, numBlocks, totalQ: B, maxQLen: 1, q, kCache: K, vCache: V, blockTables: table, seqLens: sl, cuSeqlensQ: cu, out, ...extra,
  };
}
const time = (fn, args) => addon[fn]('cuda', args, 'time', REPS);

// --only=ncu: one call of each hot kernel, for a profiler run (ncu --kernel-name ...).
if (only === 'ncu') {
  addon.pagedAttention('cuda', decodeArgs(16, 32768, 16), 'sync');
  addon.pagedAttention('cuda', { ...decodeArgs(16, 32768, 16), layout: 'HND' }, 'sync');
  const { table, W, numBlocks } = pagedTables(1, 8192, 16);
  addon.pagedAttention('cuda', {
    qDtype: 'bf16', kvDtype: 'bf16', layout: 'NHD', numSeqs: 1, numQoHeads: H, numKvHeads: N, headDim: D, blockSize: 16,
    maxBlocksPerSeq: W, numBlocks, totalQ: 2048, maxQLen: 2048, q: dev(floats('bf16', 2048 * H * D, () => rng.normal()).data), kCache: K, vCache: V,
    blockTables: table, seqLens: dev(Int32Array.from([8192])), cuSeqlensQ: dev(Int32Array.from([0, 2048])), out: addon.deviceAlloc('cuda', 2048 * H * D * 2),
  }, 'sync');
  const sa = selectArgs(32, 32768, 16, 128);
  addon.questSelect('cuda', sa, 'sync');
  const s1 = selectArgs(1, 32768, 16, 128);
  addon.questSelect('cuda', s1, 'sync');
  addon.pagedAttention('cuda', decodeArgs(1, 32768, 16, { selRows: N, selK: 128, blockSelection: s1.selected }), 'sync');
  addon.pagedAttention('cuda', decodeArgs(1, 65536, 16), 'sync');
  addon.synchronize('cuda');
  process.exit(0);
}

// ---- dense paged decode ----
const decodeShapes = quick ? [[1, 65536], [16, 8192], [16, 32768]] : [[1, 65536], [16, 8192], [1, 262144], [64, 4096], [16, 32768], [32, 32768], [64, 32768]];
if (!only || only === 'decode')
  for (const bs of [16, 128])
    for (const [B, L] of decodeShapes) {
      const a = decodeArgs(B, L, bs);
      const ms = time('pagedAttention', a);
      const bytes = B * L * tokenKV + 2 * B * H * D * ES;
      results.push({ id: `decode_B${B}_L${L}_bs${bs}${LAYOUT === 'NHD' ? '' : '_' + LAYOUT}`, kind: 'decode', B, H, N, D, bs, seqLen: L, ms, bytes, frac: bytes / (ms * 1e-3) / ceiling });
      console.log(`decode ${LAYOUT} B=${B} L=${L} bs=${bs}: ${(ms * 1e3).toFixed(1)} us, ${(bytes / ms / 1e9).toFixed(3)} TB/s = ${(results.at(-1).frac).toFixed(3)} of ceiling`);
    }

// ---- quest_select ----
const selectArgs = (B, L, bs, k) => questSelectArgs(rng, chunk, { B, L, H, N, D, bs, k });
// --only=ncusel: one quest_select call at B=1 and at B=32 (profiler runs of the select kernels).
if (only === 'ncusel') {
  for (const B of [1, 32]) { const a = selectArgs(B, 32768, 16, 128); addon.questSelect('cuda', a, 'sync'); addon.questSelect('cuda', a, 'sync'); }
  addon.synchronize('cuda');
  process.exit(0);
}
const selectRes = {};
if (!only || only === 'select' || only === 'sparse')
  for (const B of [1, 16, 32]) {
    const a = selectArgs(B, 32768, 16, 128);
    const ms = time('questSelect', a);
    const bytes = a._metaBytes;
    selectRes[B] = { ms, args: a };
    results.push({ id: `select_B${B}_L32768_bs16_k128`, kind: 'select', B, H, N, D, bs: 16, seqLen: 32768, k: 128, ms, bytes, frac: bytes / (ms * 1e-3) / ceiling });
    console.log(`quest_select B=${B} L=32768 k=128: ${(ms * 1e3).toFixed(2)} us, metadata ${(bytes / ms / 1e9).toFixed(3)} TB/s = ${results.at(-1).frac.toFixed(3)} of ceiling`);
  }

// ---- sparse decode: select + attention on the selected blocks (budget 2048 of 32768) ----
if (!only || only === 'sparse')
  for (const B of [1, 16]) {
    const L = 32768, bs = 16, k = 128;
    const s = selectRes[B];
    addon.questSelect('cuda', s.args, 'sync');
    const a = decodeArgs(B, L, bs, { selRows: N, selK: k, blockSelection: s.args.selected });
    const msAttn = time('pagedAttention', a);
    const dense = decodeArgs(B, L, bs);
    const msDense = time('pagedAttention', dense);
    const total = s.ms + msAttn;
    results.push({ id: `sparse_B${B}_L${L}_bs${bs}_budget2048`, kind: 'sparse', B, H, N, D, bs, seqLen: L, k, ms: total, msSelect: s.ms, msAttn, msDense, speedup: msDense / total, bytes: B * k * bs * tokenKV });
    console.log(`sparse decode B=${B}: select ${(s.ms * 1e3).toFixed(1)} + attn ${(msAttn * 1e3).toFixed(1)} = ${(total * 1e3).toFixed(1)} us vs dense ${(msDense * 1e3).toFixed(1)} us: ${(msDense / total).toFixed(2)}x`);
  }

// ---- chunked prefill: 8192 tokens of one sequence in 2048-token chunks, causal ----
if (!only || only === 'prefill') {
  const chunkLen = 2048, total = 8192, bs = 16;
  let ms = 0;
  const q = dev(floats('bf16', chunkLen * H * D, () => rng.normal()).data);
  const out = addon.deviceAlloc('cuda', chunkLen * H * D * 2);
  const { table, W, numBlocks } = pagedTables(1, total, bs);
  for (let c = 0; c < total / chunkLen; c++) {
    const L = (c + 1) * chunkLen;
    ms += time('pagedAttention', {
      qDtype: 'bf16', kvDtype: 'bf16', layout: 'NHD', numSeqs: 1, numQoHeads: H, numKvHeads: N, headDim: D, blockSize: bs,
      maxBlocksPerSeq: W, numBlocks, totalQ: chunkLen, maxQLen: chunkLen, q, kCache: K, vCache: V, blockTables: table,
      seqLens: dev(Int32Array.from([L])), cuSeqlensQ: dev(Int32Array.from([0, chunkLen])), out,
    });
  }
  const flops = 4 * D * H * (total * (total + 1)) / 2;  // QK and PV over the causal triangle
  results.push({ id: `prefill_causal_T${total}_chunk${chunkLen}`, kind: 'prefill', B: 1, H, N, D, bs, seqLen: total, chunk: chunkLen, ms, flops, tflops: flops / (ms * 1e-3) / 1e12 });
  console.log(`chunked prefill 8192 in 2048 chunks: ${ms.toFixed(3)} ms, ${(flops / (ms * 1e-3) / 1e12).toFixed(1)} TFLOP/s`);
}

writeFileSync(outPath, JSON.stringify({ date: new Date().toISOString(), device: info.info, ceiling, results }, null, 1));
console.log(`wrote ${outPath}`);
