// Small benchmark driver for the Quest families until/besides `select-attn bench`: times a family's
// BenchCase and the streaming-read ceiling of the same bytes, interleaved, and prints medians.
// Usage (after tsc): node dist/experiments/3_quest_select/bench_run.js quest_select|quest_metadata [name=value ...] [rounds=N]
import { native } from '../../src/native.js';
import type { BenchFamily, ParamValue } from '../../src/testing/bench.js';
import { bench as metaBench } from '../2_quest_metadata/benchmark.js';
import { bench as selectBench } from './benchmark.js';

const pct = (a: number[], p: number) => [...a].sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(a.length * p))];
const median = (a: number[]) => pct(a, 0.5);

export async function runBench(fam: BenchFamily, overrides: Record<string, string>, rounds: number): Promise<string> {
  const params: Record<string, ParamValue> = {};
  for (const s of fam.params) params[s.name] = s.default;
  for (const [k, v] of Object.entries(overrides)) {
    const spec = fam.params.find((s) => s.name === k);
    if (!spec) throw new Error(`unknown parameter ${k}`);
    params[k] = spec.type === 'int' || spec.type === 'float' ? Number(v) : v;
  }
  const c = await fam.setup(params, 'cpu');
  const once = await c.time(1);
  // Short interleaved pairs (kernel, ceiling): other jobs on the machine shift both alike, so the
  // per-pair ratio is steadier than the ratio of separate medians.
  const reps = Math.max(2, Math.min(200, Math.round(25 / once)));
  const kernel: number[] = [];
  const ceil: number[] = [];
  const ratio: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const k = await c.time(reps);
    const m = native().measureCeiling('cpu', c.bytes, reps);
    kernel.push(k);
    ceil.push(m);
    ratio.push(m / k);
  }
  c.dispose?.();
  const k = median(kernel), m = median(ceil);
  const ps = Object.entries(params).map(([a, b]) => `${a}=${b}`).join(' ');
  return `${fam.family} ${ps}\n  bytes ${(c.bytes / 1e6).toFixed(1)} MB, kernel median ${(k * 1e3).toFixed(0)} us ` +
    `(p10 ${(pct(kernel, 0.1) * 1e3).toFixed(0)}, p90 ${(pct(kernel, 0.9) * 1e3).toFixed(0)}), ${(c.bytes / k / 1e6).toFixed(1)} GB/s; ` +
    `ceiling median ${(c.bytes / m / 1e6).toFixed(1)} GB/s; fraction of ceiling: median of ${rounds} pairs ${median(ratio).toFixed(3)} ` +
    `(p10 ${pct(ratio, 0.1).toFixed(3)}, p90 ${pct(ratio, 0.9).toFixed(3)}), ratio of medians ${(m / k).toFixed(3)}`;
}

if (process.argv[1]?.endsWith('bench_run.js')) {
  const [family, ...rest] = process.argv.slice(2);
  const kv = Object.fromEntries(rest.map((s) => s.split('=') as [string, string]));
  const rounds = Number(kv.rounds ?? 21);
  delete kv.rounds;
  const fam = family === 'quest_metadata' ? metaBench : selectBench;
  console.log(await runBench(fam, kv, rounds));
}
