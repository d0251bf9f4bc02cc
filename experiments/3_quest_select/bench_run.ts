// Small benchmark driver for the Quest families until/besides `select-attn bench`: times a family's
// BenchCase and the streaming-read ceiling of the same bytes, interleaved, and prints medians.
// Usage (after tsc): node dist/experiments/3_quest_select/bench_run.js quest_select|quest_metadata [name=value ...] [rounds=N]
import { native } from '../../src/native.js';
import type { BenchFamily, ParamValue } from '../../src/testing/bench.js';
import { bench as metaBench } from '../2_quest_metadata/benchmark.js';
import { bench as selectBench } from './benchmark.js';

const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

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
  const reps = Math.max(3, Math.min(200, Math.round(100 / once)));
  const kernel: number[] = [];
  const ceil: number[] = [];
  for (let r = 0; r < rounds; r++) {
    kernel.push(await c.time(reps));
    ceil.push(native().measureCeiling('cpu', c.bytes, reps));
  }
  c.dispose?.();
  const k = median(kernel), m = median(ceil);
  const gbps = c.bytes / k / 1e6, cg = c.bytes / m / 1e6;
  const ps = Object.entries(params).map(([a, b]) => `${a}=${b}`).join(' ');
  return `${fam.family} ${ps}\n  bytes ${(c.bytes / 1e6).toFixed(1)} MB, kernel median ${(k * 1e3).toFixed(0)} us ` +
    `(${kernel.map((x) => (x * 1e3).toFixed(0)).join(' ')}), ${gbps.toFixed(1)} GB/s; ceiling ${cg.toFixed(1)} GB/s ` +
    `(${ceil.map((x) => (c.bytes / x / 1e6).toFixed(1)).join(' ')}); fraction ${(gbps / cg).toFixed(3)}`;
}

if (process.argv[1]?.endsWith('bench_run.js')) {
  const [family, ...rest] = process.argv.slice(2);
  const kv = Object.fromEntries(rest.map((s) => s.split('=') as [string, string]));
  const rounds = Number(kv.rounds ?? 7);
  delete kv.rounds;
  const fam = family === 'quest_metadata' ? metaBench : selectBench;
  console.log(await runBench(fam, kv, rounds));
}
