// Times one kv_cache configuration (median of rounds) beside the streaming-read ceiling on the same
// byte count. Usage (after `npx tsc -p tsconfig.json`):
//   node dist/experiments/4_kv_cache/perf.js [op=cacheWrite|append] [tokens=4096] [key=value ...]
import { native } from '../../src/native.js';
import { bench } from './benchmark.js';

async function main(): Promise<void> {
  const raw: Record<string, string | number> = {};
  for (const a of process.argv.slice(2)) {
    const [k, v] = a.split('=');
    raw[k] = Number.isNaN(Number(v)) ? v : Number(v);
  }
  const c = await bench.setup(raw, 'cpu');
  const reps = Number(raw.reps ?? 20);
  const ts: number[] = [];
  for (let i = 0; i < 5; i++) ts.push(await c.time(reps));
  ts.sort((a, b) => a - b);
  const ms = ts[2];
  const cms = native().measureCeiling('cpu', Math.max(c.bytes, 4096), reps);
  console.log(JSON.stringify({ params: raw, ms: +ms.toPrecision(3), gbs: +(c.bytes / ms / 1e6).toPrecision(3), ceilingGbs: +(c.bytes / cms / 1e6).toPrecision(3) }));
  c.dispose?.();
}

void main();
