// quest_select benchmark (`select-attn bench quest_select`): one decode step's block selection.
// Bytes = the metadata rows read (max and min of every real block) + the query + the outputs.
import { ascendSimBenchExtra } from '../../src/ascend_sim.js';
import type { BackendName } from '../../src/backends.js';
import { type GroupReduce, type QuestSelectArgs, questSelect, timeQuestSelect } from '../../src/ops/quest_select.js';
import type { BenchCase, BenchFamily, ParamValue } from '../../src/testing/bench.js';
import { Rng, place } from '../../src/testing/harness.js';
import { type FloatDType, dtypeSize, tensor } from '../../src/tensor.js';
import { fastRandom, shuffledTable } from '../2_quest_metadata/benchmark.js';

export const bench: BenchFamily = {
  family: 'quest_select',
  backends: ['cpu', 'cuda', 'ascend', 'ascend-sim', 'metal'],
  params: [
    { name: 'batch', type: 'int', default: 8, describe: 'sequences B' },
    { name: 'heads', type: 'int', default: 32, describe: 'query heads H' },
    { name: 'kvHeads', type: 'int', default: 8, describe: 'KV heads N' },
    { name: 'headDim', type: 'int', default: 128, describe: 'head dimension D' },
    { name: 'blockSize', type: 'int', default: 16, describe: 'tokens per KV block' },
    { name: 'seqLen', type: 'int', default: 32768, describe: 'tokens per sequence (all equal)' },
    { name: 'k', type: 'int', default: 128, describe: 'blocks selected per row' },
    { name: 'dtype', type: 'string', default: 'f16', describe: 'query/metadata dtype', choices: ['f32', 'f16', 'bf16'] },
    { name: 'metaRows', type: 'int', default: 0, describe: 'rows per metadata page (0: blockSize)' },
    { name: 'groupReduce', type: 'string', default: 'mean', describe: 'mean (rows = kvHeads) or perHead (rows = heads)', choices: ['mean', 'perHead'] },
    { name: 'sinkBlocks', type: 'int', default: 0, describe: 'always-selected first blocks' },
    { name: 'windowBlocks', type: 'int', default: 0, describe: 'always-selected last blocks' },
    { name: 'tokensSinceMetadataUpdate', type: 'int', default: 0, describe: 'tokens since the metadata refresh (stale blocks are forced)' },
  ],
  setup(p: Record<string, ParamValue>, backend: BackendName): BenchCase {
    const B = p.batch as number, H = p.heads as number, N = p.kvHeads as number, D = p.headDim as number;
    const bs = p.blockSize as number, len = p.seqLen as number, k = p.k as number, dtype = p.dtype as FloatDType;
    const R = (p.metaRows as number) || bs, groupReduce = p.groupReduce as GroupReduce;
    const rng = new Rng(4321);
    const L = Math.ceil(len / bs), pages = Math.ceil(L / R);
    const placed = place(backend, {
      query: fastRandom(dtype, [B, H, D], rng),
      maxMeta: fastRandom(dtype, [B * pages, R, N, D], rng),
      minMeta: fastRandom(dtype, [B * pages, R, N, D], rng),
      metaBlockTables: tensor('i32', [B, pages], shuffledTable(rng, B, pages)),
      seqLens: tensor('i32', [B], new Int32Array(B).fill(len)),
    });
    const a = placed.args;
    const rows = groupReduce === 'mean' ? N : H;
    const args: QuestSelectArgs = { query: a.query, maxMeta: a.maxMeta, minMeta: a.minMeta, metaBlockTables: a.metaBlockTables,
      seqLens: a.seqLens, k, blockSize: bs, groupReduce, sinkBlocks: p.sinkBlocks as number, windowBlocks: p.windowBlocks as number,
      tokensSinceMetadataUpdate: p.tokensSinceMetadataUpdate as number };
    const out = questSelect(args, { backend }); // allocates the outputs once; timed calls reuse them
    const timedArgs = { ...args, selected: out.selected, numSelected: out.numSelected };
    const es = dtypeSize(dtype);
    const bytes = B * (2 * L * N * D * es + H * D * es + rows * (k + 1) * 4);
    return {
      bytes,
      time: (reps: number) => timeQuestSelect(timedArgs, reps, { backend }),
      // ascend-sim: DMA bytes the twin counted against this minimum, and the 910B estimate.
      extra: backend === 'ascend-sim' ? () => ascendSimBenchExtra(bytes) : undefined,
      dispose: () => placed.dispose(),
    };
  },
};
