// Merges bench.mjs output (ours) and experiments/peers/peers.py output into one markdown table:
// times, fractions of the copy ceiling, TFLOP/s, and ratios to each peer.
// Usage: node cuda/tools/report.mjs OURS.json PEERS.json > report.md
import { readFileSync } from 'node:fs';

const ours = JSON.parse(readFileSync(process.argv[2], 'utf8'));
let peers = { results: [], device: '?', torch: '?' };
try { peers = JSON.parse(readFileSync(process.argv[3], 'utf8')); } catch { /* peers missing */ }
const us = (ms) => (ms == null ? '-' : (ms * 1e3).toFixed(1));
const lines = [];
lines.push(`Device: ${ours.device}; torch ${peers.torch}; date ${ours.date}`);
lines.push(`Copy ceiling (device-to-device, read+write): ${(ours.ceiling / 1e12).toFixed(3)} TB/s\n`);
const peerOf = (id) => peers.results.filter((r) => r.id === id && r.ms != null);
// SDPA peers of decode are measured once per (B, L) (on the bs=16 case).
const sdpaOf = (r) => peers.results.filter((p) => p.id === `decode_B${r.B}_L${r.seqLen}_bs16` && p.peer.startsWith('sdpa') && p.ms != null);

lines.push('| case | ours (us) | of ceiling | TB/s | best SDPA (us) | ours vs SDPA | flex paged (us) | ours vs flex |');
lines.push('|---|---|---|---|---|---|---|---|');
for (const r of ours.results.filter((x) => x.kind === 'decode')) {
  const s = sdpaOf(r).sort((a, b) => a.ms - b.ms)[0];
  const f = peerOf(r.id).find((p) => p.peer === 'flex_paged');
  lines.push(`| ${r.id} | ${us(r.ms)} | ${r.frac.toFixed(3)} | ${(r.bytes / r.ms / 1e9).toFixed(2)} | ${s ? `${us(s.ms)} (${s.peer})` : '-'} | ${s ? (s.ms / r.ms).toFixed(2) + 'x' : '-'} | ${f ? us(f.ms) : '-'} | ${f ? (f.ms / r.ms).toFixed(2) + 'x' : '-'} |`);
}
lines.push('\n| quest_select | ours (us) | metadata of ceiling | torch ops (us) | ours vs torch |');
lines.push('|---|---|---|---|---|');
for (const r of ours.results.filter((x) => x.kind === 'select')) {
  const t = peerOf(r.id).find((p) => p.peer === 'torch_select');
  lines.push(`| ${r.id} | ${us(r.ms)} | ${r.frac.toFixed(3)} | ${t ? us(t.ms) : '-'} | ${t ? (t.ms / r.ms).toFixed(1) + 'x' : '-'} |`);
}
lines.push('\n| sparse decode | select + attn (us) | dense (us) | vs dense | flex block-sparse + torch select (us) | vs flex |');
lines.push('|---|---|---|---|---|---|');
for (const r of ours.results.filter((x) => x.kind === 'sparse')) {
  const f = peerOf(r.id).filter((p) => p.peer.startsWith('flex_sparse')).sort((a, b) => a.ms - b.ms)[0];
  const fa = f ? `${us(f.ms)} (attn ${us(f.msAttn)}, ${f.peer})` : '-';
  lines.push(`| ${r.id} | ${us(r.msSelect)} + ${us(r.msAttn)} = ${us(r.ms)} | ${us(r.msDense)} | ${r.speedup.toFixed(2)}x | ${fa} | ${f ? (f.ms / r.ms).toFixed(2) + 'x' : '-'} |`);
}
lines.push('\n| prefill | ours (ms) | TFLOP/s | best SDPA TFLOP/s | ours / SDPA |');
lines.push('|---|---|---|---|---|');
for (const r of ours.results.filter((x) => x.kind === 'prefill')) {
  const s = peerOf(r.id).filter((p) => p.tflops).sort((a, b) => b.tflops - a.tflops)[0];
  lines.push(`| ${r.id} | ${r.ms.toFixed(3)} | ${r.tflops.toFixed(1)} | ${s ? `${s.tflops.toFixed(1)} (${s.peer})` : '-'} | ${s ? (r.tflops / s.tflops).toFixed(2) : '-'} |`);
}
console.log(lines.join('\n'));
