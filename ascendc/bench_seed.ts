// Runs the quest benchmarks on ascend-sim for the seed's shapes (H=32, N=8, D=128, blockSize 128,
// B in {10, 20, 32}, seqLen 16384 and 98304, k 8 and 64) and prints a markdown table: DMA bytes the
// twin counted against the minimum, and the bandwidth-bound 910B estimate beside the seed's times.
// Usage: npx tsc -p ascendc/tsconfig.bench.json && SA_ADDON=$PWD/build/Release/select_attn.node \
//        node build/bench/ascendc/bench_seed.js [dtype=f16,bf16] [family=quest_select|quest_metadata]
import { ASCEND_910B_EFFECTIVE_TBPS, ASCEND_910B_NOMINAL_TBPS } from '../src/ascend_sim.js';
import type { BenchFamily, ParamValue } from '../src/testing/bench.js';
import { bench as metaBench } from '../experiments/2_quest_metadata/benchmark.js';
import { bench as selectBench } from '../experiments/3_quest_select/benchmark.js';

// Seed 003 section 4.6: measured microseconds on an Ascend 910B4 (quest_block_select_paged and the
// _in_out_w variant, H=32, N=8, k=8; prefill metadata N=8), keyed by family, dtype, B, seqLen, k.
const seedUs: Record<string, string> = {
  'quest_select,f16,10,16384,8': '16.78',
  'quest_select,f16,20,16384,8': '23.57 (w: 24.43)',
  'quest_select,f16,32,98304,8': '177.74 (w: 183.00; 910B2 w: 161.68)',
  'quest_select,bf16,20,16384,8': '36.05',
  'quest_select,bf16,32,98304,8': '285.37 (910B2 w: 244.11)',
  'quest_metadata,f16,20,16384,0': '1325.8',
  'quest_metadata,bf16,20,16384,0': '1209.9',
};

async function row(fam: BenchFamily, over: Record<string, ParamValue>): Promise<string> {
  const params: Record<string, ParamValue> = {};
  for (const s of fam.params) params[s.name] = s.default;
  Object.assign(params, over);
  const t0 = Date.now();
  const c = await fam.setup(params, 'ascend-sim');
  await c.time(1);
  const x = (await c.extra?.()) ?? {};
  c.dispose?.();
  const key = `${fam.family},${params.dtype},${params.batch},${params.seqLen},${params.k ?? 0}`;
  const us = (b: number, tbps: number) => ((b / (tbps * 1e12)) * 1e6).toFixed(1);
  return `| ${params.dtype} | ${params.batch} | ${params.seqLen} | ${params.k ?? '-'} | ${(x.bytesMoved / 1e6).toFixed(3)} | ` +
    `${(x.bytesMinimum / 1e6).toFixed(3)} | ${x.movedOverMinimum.toFixed(4)} | ${us(x.bytesMoved, ASCEND_910B_EFFECTIVE_TBPS)} | ` +
    `${us(x.bytesMoved, ASCEND_910B_NOMINAL_TBPS)} | ${seedUs[key] ?? ''} | ${((Date.now() - t0) / 1e3).toFixed(1)} |`;
}

const args = Object.fromEntries(process.argv.slice(2).map((s) => s.split('=') as [string, string]));
const dtypes = (args.dtype ?? 'f16,bf16').split(',');
const family = args.family ?? 'quest_select';
console.log(`${family} on ascend-sim (H=32, N=8, D=128, blockSize 128); estimates at ${ASCEND_910B_EFFECTIVE_TBPS} TB/s ` +
  `effective and ${ASCEND_910B_NOMINAL_TBPS} TB/s nominal`);
console.log('| dtype | B | seqLen | k | MB moved | MB minimum | moved/min | est. us @0.55 | est. us @0.8 | seed us (910B4) | sim s |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|');
for (const dtype of dtypes)
  for (const batch of [10, 20, 32])
    for (const seqLen of [16384, 98304])
      if (family === 'quest_select') {
        for (const k of [8, 64])
          console.log(await row(selectBench, { dtype, batch, seqLen, k, heads: 32, kvHeads: 8, headDim: 128, blockSize: 128 }));
      } else if (seqLen === 16384) {  // the whole K cache lives in host memory: the seed's 16k point only
        console.log(await row(metaBench, { dtype, batch, seqLen, kvHeads: 8, headDim: 128, blockSize: 128 }));
      }
