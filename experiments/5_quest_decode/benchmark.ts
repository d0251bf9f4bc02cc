// quest_decode benchmark (`select-attn bench quest_decode --token-budget N`): one decode step of the
// Quest loop on the synthetic problem of gen_data.ts. time = sparse step (questSelect + sparse
// pagedAttention); extra: dense decode time, speedup, selection recall and output error.
import { type BackendName, DeviceTensor, isDeviceBackend, synchronize } from '../../src/backends.js';
import { native } from '../../src/native.js';
import { timeCacheWrite, timeQuestMetadataAppend } from '../../src/ops/kv_cache.js';
import { pagedAttention, timePagedAttention } from '../../src/ops/paged_attention.js';
import { type GroupReduce, questSelect, timeQuestSelect } from '../../src/ops/quest_select.js';
import { type FloatDType, dtypeSize, toF32 } from '../../src/tensor.js';
import type { BenchCase, BenchFamily, ParamValue } from '../../src/testing/bench.js';
import { maxRelErr } from '../../src/testing/harness.js';
import type { Layout } from '../1_paged_attention/ref.js';
import { genDecode } from './gen_data.js';
import { DecodeSession, budgetBlocks, selectionMetrics } from './loop.js';
import { refStep } from './ref.js';

export const bench: BenchFamily = {
  family: 'quest_decode',
  backends: ['cpu', 'cuda', 'ascend', 'ascend-sim', 'metal'],
  params: [
    { name: 'batch', type: 'int', default: 4, describe: 'sequences B' },
    { name: 'heads', type: 'int', default: 32, describe: 'query heads H' },
    { name: 'kvHeads', type: 'int', default: 8, describe: 'KV heads N' },
    { name: 'headDim', type: 'int', default: 128, describe: 'head dimension D' },
    { name: 'blockSize', type: 'int', default: 16, describe: 'tokens per KV block (and per metadata row)' },
    { name: 'seqLen', type: 'int', default: 32768, describe: 'tokens per sequence at the timed step (prompt + decode steps)' },
    { name: 'tokenBudget', type: 'int', default: 2048, describe: 'tokens attended per selection row: k = ceil(budget / blockSize) blocks' },
    { name: 'dtype', type: 'string', default: 'bf16', describe: 'query, KV cache and metadata dtype', choices: ['f32', 'f16', 'bf16'] },
    { name: 'layout', type: 'string', default: 'NHD', describe: 'KV cache layout', choices: ['NHD', 'HND'] },
    { name: 'groupReduce', type: 'string', default: 'mean', describe: 'selection per KV head (mean) or per query head (perHead)', choices: ['mean', 'perHead'] },
    { name: 'sinkBlocks', type: 'int', default: 1, describe: 'always-selected first blocks' },
    { name: 'windowBlocks', type: 'int', default: 2, describe: 'always-selected last blocks' },
    { name: 'shuffle', type: 'bool', default: true, describe: 'block and metadata page ids in random order (false: each sequence contiguous, in order)' },
    { name: 'hugePages', type: 'bool', default: false, describe: 'KV caches on transparent huge pages (hostTensor; cpu)' },
    { name: 'steps', type: 'int', default: 2, describe: 'decode steps run (and scored against the oracle) before the timed step' },
    { name: 'cache', type: 'string', default: 'cold', describe: 'cold: caches flushed before every timed step (a real model runs other layers in between); warm: back-to-back calls', choices: ['cold', 'warm'] },
    { name: 'flushMb', type: 'int', default: 1024, describe: 'MiB written to evict the caches before a cold step (cpu; device backends stream a device buffer)' },
  ],
  setup(raw: Record<string, ParamValue>, backend: BackendName): BenchCase {
    const B = raw.batch as number, H = raw.heads as number, N = raw.kvHeads as number, D = raw.headDim as number;
    const bs = raw.blockSize as number, seqLen = raw.seqLen as number, steps = raw.steps as number;
    const dtype = raw.dtype as FloatDType, layout = raw.layout as Layout, cold = raw.cache === 'cold';
    if (steps < 1) throw new RangeError('steps: at least 1 (the timed step is the last decode step)');
    const k = budgetBlocks(raw.tokenBudget as number, bs);
    const p = genDecode({ dtype, B, H, N, D, bs, layout, promptLens: new Array<number>(B).fill(seqLen - steps), steps,
      shuffleTables: raw.shuffle as boolean }, 20240611);
    const s = new DecodeSession(backend, p, {
      groupReduce: raw.groupReduce as GroupReduce, sinkBlocks: raw.sinkBlocks as number, windowBlocks: raw.windowBlocks as number,
    }, { hugePages: raw.hugePages as boolean });
    const rows = s.sel.groupReduce === 'mean' ? N : H;
    const opts = { backend };
    try {
      s.prefill();
      // scored steps: selection recall against the float64 oracle, output error against dense
      let recall = 0, minRecall = Infinity, massFraction = 0, needleHit = 0, needleCount = 0, errVsDense = 0;
      for (let step = 0; step < steps; step++) {
        s.append();
        const sel = s.select(k);
        const selH = s.host(sel).data as Int32Array;
        const m = selectionMetrics(refStep(p, step, false), selH, rows, k, H, N, p.needlePos, p.cfg.needles, bs);
        recall += m.recall / steps;
        minRecall = Math.min(minRecall, m.minRecall);
        massFraction += m.massFraction / steps;
        needleHit += m.needleHit;
        needleCount += m.needleCount;
        const sparse = Float32Array.from(toF32(s.host(s.attend(sel))));
        errVsDense = Math.max(errVsDense, maxRelErr(sparse, toF32(s.host(s.attend()))));
        if (sel instanceof DeviceTensor) sel.dispose();
      }

      // the timed step: select into preallocated outputs, then attend over that selection
      const first = questSelect(s.selectArgs(k), opts);
      const selArgs = s.selectArgs(k, first);
      const sparseArgs = s.attnArgs(first.selected);
      const denseArgs = s.attnArgs();
      const selH = s.host(first.selected).data as Int32Array;
      const bytes = sparseBytes(p.cfg.promptLens.map((l) => l + steps), selH, rows, k, H, N, D, bs, dtypeSize(dtype));
      const device = isDeviceBackend(backend);
      const flush = makeFlush(backend, (raw.flushMb as number) * 2 ** 20);
      const sync = () => { if (device) synchronize(backend); };

      // one cold step: flush (not timed), then the calls, timed to completion
      const coldStep = (sparse: boolean): [number, number] => {
        flush();
        sync();
        const t0 = performance.now();
        if (!sparse) {
          pagedAttention(denseArgs, opts);
          sync();
          return [0, performance.now() - t0];
        }
        questSelect(selArgs, opts);
        sync();
        const t1 = performance.now();
        pagedAttention(sparseArgs, opts);
        sync();
        return [t1 - t0, performance.now() - t1];
      };
      return {
        bytes,
        time(reps: number): number {
          if (!cold) return timeQuestSelect(selArgs, reps, opts) + timePagedAttention(sparseArgs, reps, opts);
          let t = 0;
          for (let r = 0; r < reps; r++) {
            const [a, b] = coldStep(true);
            t += a + b;
          }
          return t / reps;
        },
        extra(): Record<string, number> {
          // dense and sparse steps interleaved, so drift and neighbours' load hit both alike
          const sel: number[] = [], att: number[] = [], sparse: number[] = [], dense: number[] = [];
          const rounds = cold ? 9 : 5;
          for (let r = 0; r < rounds; r++) {
            if (cold) {
              const [a, b] = coldStep(true);
              sel.push(a);
              att.push(b);
              sparse.push(a + b);
              dense.push(coldStep(false)[1]);
            } else {
              const reps = 3;
              const a = timeQuestSelect(selArgs, reps, opts);
              const b = timePagedAttention(sparseArgs, reps, opts);
              sel.push(a);
              att.push(b);
              sparse.push(a + b);
              dense.push(timePagedAttention(denseArgs, 2, opts));
            }
          }
          const us = (v: number[]) => median(v) * 1e3;
          // the per-step writes both paths share (not part of `time`): warm, back to back
          const w = s.appendArgs();
          const appendUs = (timeCacheWrite(w.write, 20, opts) + timeQuestMetadataAppend(w.append, 20, opts)) * 1e3;
          return {
            k, appendUs, selectUs: us(sel), sparseAttnUs: us(att), sparseUs: us(sparse), denseUs: us(dense), speedup: median(dense) / median(sparse),
            recall, minRecall, massFraction, needleRecall: needleCount ? needleHit / needleCount : 1, errVsDense,
          };
        },
        dispose() {
          for (const t of [first.selected, first.numSelected]) if (t instanceof DeviceTensor) t.dispose();
          s.dispose();
        },
      };
    } catch (e) {
      s.dispose();
      throw e;
    }
  },
};

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Bytes one sparse step must read: every metadata row of every real block (max and min), the query,
 * the K and V rows of the distinct selected blocks per (sequence, KV head) (valid tokens only), the
 * selection it writes and reads back, and the output it writes.
 */
export function sparseBytes(lens: number[], sel: Int32Array, rows: number, k: number, H: number, N: number, D: number, bs: number, es: number): number {
  const B = lens.length;
  const G = H / N;
  let bytes = 0;
  for (let b = 0; b < B; b++) {
    const L = Math.ceil(lens[b] / bs);
    bytes += 2 * L * N * D * es + 2 * H * D * es + 2 * rows * k * 4;
    for (let n = 0; n < N; n++) {
      const blocks = new Set<number>();
      const rs = rows === N ? [n] : Array.from({ length: G }, (_, g) => n * G + g);
      for (const r of rs) for (let i = 0; i < k; i++) {
        const j = sel[(b * rows + r) * k + i];
        if (j >= 0) blocks.add(j);
      }
      for (const j of blocks) bytes += 2 * Math.min(bs, lens[b] - j * bs) * D * es;
    }
  }
  return bytes;
}

/**
 * Evicts the caches between cold steps. cpu: writes a persistent host buffer of `bytes` (larger than
 * the last-level cache; the writes allocate lines and push everything else out). Device backends:
 * one streaming pass over a device buffer of that size (measureCeiling), which sweeps the device L2.
 */
function makeFlush(backend: BackendName, bytes: number): () => void {
  if (bytes <= 0) return () => {};
  if (isDeviceBackend(backend)) return () => void native().measureCeiling(backend, bytes, 1);
  const buf = new Uint8Array(bytes);
  let v = 0;
  return () => void buf.fill((v = (v + 1) & 0xff));
}
