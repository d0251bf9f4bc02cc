// quest_select A/B timings on the issue-4 shape (bf16, H=32, N=8, D=128, L=32768, bs=16, k=128)
// for several settings of the kernel switches in ONE process (the addon reads them per call), plus
// the floor of a call whose sequences are all empty. Timed like bench.mjs (L2 flushed, median).
// Usage: node cuda/tools/bench_select.mjs 'name:ENV=v ENV2=w' ...   (no argument: default only)
import { addon, Rng, floats, questSelectArgs } from './lib.mjs';

const H = 32, N = 8, D = 128, L = 32768, bs = 16, k = 128, REPS = 30;
const rng = new Rng(99);
const chunk = floats('bf16', 1 << 22, () => rng.normal()).data;
const ceilBytes = 2 * 1024 ** 3;
const ceiling = ceilBytes / (addon.measureCeiling('cuda', ceilBytes, 20) * 1e-3);
console.log(`copy ceiling: ${(ceiling / 1e12).toFixed(3)} TB/s`);

const selectArgs = (B, len) => questSelectArgs(rng, chunk, { B, L, len, H, N, D, bs, k });
const cases = [1, 4, 16, 32].map((B) => [B, selectArgs(B, L)]);
const empty = selectArgs(1, 0);
const variants = process.argv.slice(2).length ? process.argv.slice(2) : ['default:'];
const keys = new Set();
for (const v of variants) for (const kv of v.slice(v.indexOf(':') + 1).split(' ').filter(Boolean)) keys.add(kv.split('=')[0]);
for (let round = 0; round < 2; round++)
  for (const v of variants) {
    const name = v.slice(0, v.indexOf(':'));
    for (const key of keys) delete process.env[key];
    for (const kv of v.slice(v.indexOf(':') + 1).split(' ').filter(Boolean)) { const [a, b] = kv.split('='); process.env[a] = b; }
    const parts = [];
    for (const [B, a] of cases) {
      const ms = addon.questSelect('cuda', a, 'time', REPS);
      parts.push(`B=${B} ${(ms * 1e3).toFixed(1)} us (${(a._metaBytes / (ms * 1e-3) / ceiling).toFixed(3)})`);
    }
    const msE = addon.questSelect('cuda', empty, 'time', REPS);
    console.log(`${name} [round ${round}]: ${parts.join(', ')}; empty B=1 ${(msE * 1e3).toFixed(1)} us`);
  }
