// Measures one paged_attention configuration against the streaming-read ceiling of the same run, and
// the onnxruntime-node peer when present. Usage (after `npx tsc -p tsconfig.json`):
//   node dist/experiments/1_paged_attention/perf.js [key=value ...] [rounds=5] [reps=3]
// Keys are the benchmark's params (benchmark.ts). Prints one JSON object.
import { listBackends } from '../../src/backends.js';
import { native } from '../../src/native.js';
import { timePagedAttention } from '../../src/ops/paged_attention.js';
import { benchInputs, benchParams, peerFigures } from './benchmark.js';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function main(): Promise<void> {
  const raw: Record<string, string | number | boolean> = {};
  let rounds = 5;
  let reps = 3;
  for (const a of process.argv.slice(2)) {
    const [k, v] = a.split('=');
    if (k === 'rounds') rounds = Number(v);
    else if (k === 'reps') reps = Number(v);
    else raw[k] = v === 'true' ? true : v === 'false' ? false : Number.isNaN(Number(v)) ? v : Number(v);
  }
  const p = benchParams(raw);
  const inp = benchInputs(p);
  const args = { ...inp.tensors, ...inp.options };
  const times: number[] = [];
  const ceil: number[] = [];
  timePagedAttention(args as never, 1);  // warm the pages and the pool
  for (let r = 0; r < rounds; r++) {
    times.push(timePagedAttention(args as never, reps));
    ceil.push(native().measureCeiling('cpu', inp.bytes, reps));
  }
  const ms = median(times);
  const cms = median(ceil);
  const best = Math.min(...times);
  const cbest = Math.min(...ceil);
  const result: Record<string, unknown> = {
    date: new Date().toISOString().slice(0, 10),
    device: listBackends().find((b) => b.name === 'cpu')?.info,
    params: p,
    ms, msAll: times.map((x) => +x.toFixed(2)),
    gbs: inp.bytes / ms / 1e6,
    kvGbs: inp.kvBytes / ms / 1e6,
    tflops: inp.flops / ms / 1e9,
    ceilingGbs: inp.bytes / cms / 1e6,
    ceilingAll: ceil.map((x) => +(inp.bytes / x / 1e6).toFixed(2)),
    fractionOfCeiling: cms / ms,
    // best of the rounds for both: contention from other processes only ever adds time
    bestMs: best,
    bestCeilingGbs: inp.bytes / cbest / 1e6,
    bestFraction: cbest / best,
  };
  if (p.peer) {
    const peer = await peerFigures(p);
    if (peer.peerMs !== undefined) {
      result.peerMs = peer.peerMs;
      result.speedupVsPeer = peer.peerMs / ms;
    }
  }
  console.log(JSON.stringify(result, (_, v) => (typeof v === 'number' && !Number.isInteger(v) ? +v.toPrecision(4) : v)));
}

void main();
