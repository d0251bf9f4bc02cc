// Quest-sparse decoding with select-attn, as a serving engine would run it for one layer: a paged KV
// cache and its Quest metadata; per step cacheWrite + questMetadataAppend, questSelect, sparse attention.
// Run: npx tsc -p tsconfig.json && node dist/examples/quest_decode.js
import { fileURLToPath } from 'node:url';
import { type HostTensor, type Tensor, cacheWrite, fromF32, pagedAttention, questMetadata, questMetadataAppend, questSelect, tensor } from '../src/index.js';

export interface ExampleOptions { batch?: number; heads?: number; kvHeads?: number; headDim?: number; blockSize?: number;
  promptLen?: number; steps?: number; tokenBudget?: number }

// stand-in for the model's K/V/query projections: bf16 noise
const rand = (shape: number[]): HostTensor =>
  fromF32('bf16', shape, Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => Math.random() * 2 - 1));
const ids = (n: number, f: (i: number) => number = (i) => i) => Int32Array.from({ length: n }, (_, i) => f(i));

/** Prefills `batch` prompts, then decodes `steps` tokens attending to `tokenBudget` tokens per KV head. @throws as the ops */
export function main(o: ExampleOptions = {}): { out: Tensor; selected: Tensor; k: number; msPerStep: number } {
  const { batch: B = 4, heads: H = 32, kvHeads: N = 8, headDim: D = 128, blockSize: bs = 16, promptLen = 8192, steps = 8, tokenBudget = 1024 } = o;
  const blocks = Math.ceil((promptLen + steps) / bs); // KV blocks per sequence
  const pages = Math.ceil(blocks / bs); // metadata pages per sequence: one row per KV block, bs rows per page
  const k = Math.ceil(tokenBudget / bs); // blocks attended per KV head
  const kCache = tensor('bf16', [B * blocks, bs, N, D]); // NHD pages
  const vCache = tensor('bf16', [B * blocks, bs, N, D]);
  const maxMeta = tensor('bf16', [B * pages, bs, N, D]); // per block, head and channel: max / min of the keys
  const minMeta = tensor('bf16', [B * pages, bs, N, D]);
  // page tables (an engine's allocator would hand out any free pages; here sequence b owns a range)
  const blockTables = tensor('i32', [B, blocks], ids(B * blocks));
  const metaBlockTables = tensor('i32', [B, pages], ids(B * pages));
  const slot = (b: number, pos: number) => (blockTables.data[b * blocks + Math.floor(pos / bs)] as number) * bs + (pos % bs);
  const seqLens = tensor('i32', [B], new Int32Array(B).fill(promptLen));

  // prefill: write every prompt token's K/V, then build the metadata once
  const T = B * promptLen;
  const slotMapping = tensor('i32', [T], ids(T, (t) => slot(Math.floor(t / promptLen), t % promptLen)));
  cacheWrite({ key: rand([T, N, D]), value: rand([T, N, D]), kCache, vCache, slotMapping });
  questMetadata({ kCache, blockTables, seqLens, metaBlockTables, maxMeta, minMeta });

  let out: Tensor = tensor('bf16', [B, H, D]);
  let selected: Tensor = tensor('i32', [B, N, k]);
  let ms = 0;
  for (let s = 0; s < steps; s++) {
    const [key, value, q] = [rand([B, N, D]), rand([B, N, D]), rand([B, H, D])]; // this step's token per sequence
    const positions = tensor('i32', [B], Int32Array.from(seqLens.data)); // where the new tokens go
    const t0 = performance.now(); // (the stand-in projections above are not timed)
    cacheWrite({ key, value, kCache, vCache, slotMapping: tensor('i32', [B], ids(B, (b) => slot(b, positions.data[b]))) });
    // fold the new keys into their blocks' max/min, so the metadata stays exact without a rebuild
    questMetadataAppend({ key, maxMeta, minMeta, metaBlockTables, seqIdx: tensor('i32', [B], ids(B)), positions });
    for (let b = 0; b < B; b++) seqLens.data[b]++; // the new token is part of its sequence now
    // k blocks per KV head by Quest's upper bound; block 0 (attention sink) and the 2 newest are always kept
    selected = questSelect({ query: q, maxMeta, minMeta, metaBlockTables, seqLens, k, sinkBlocks: 1, windowBlocks: 2 }).selected;
    out = pagedAttention({ q, kCache, vCache, blockTables, seqLens, blockSelection: selected }).out;
    ms += performance.now() - t0;
  }
  return { out, selected, k, msPerStep: ms / steps };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const o = { batch: 4, promptLen: 8192, steps: 8, tokenBudget: 1024 };
  const r = main(o);
  console.log(`${o.batch} sequences x ${o.promptLen} tokens: ${r.msPerStep.toFixed(2)} ms per decode step (write, append, select,`,
    `sparse attention over ${r.k} blocks per KV head, e.g. [${Array.from((r.selected as HostTensor).data.subarray(0, 6))}, ...])`);
}
