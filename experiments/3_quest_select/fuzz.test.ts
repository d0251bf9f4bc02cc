// Malformed-call fuzz for the Quest ops (cpu): random mutations of a valid call must either run or
// throw TypeError / RangeError / SelectAttnError, never crash, and a rejected call writes nothing.
import { describe, expect, it } from 'vitest';
import { SelectAttnError } from '../../src/errors.js';
import { questMetadata } from '../../src/ops/quest_metadata.js';
import { questSelect } from '../../src/ops/quest_select.js';
import { Rng, runSeed } from '../../src/testing/harness.js';
import { type HostTensor, tensor } from '../../src/tensor.js';

const seed = runSeed();
type Args = Record<string, unknown>;

function randomValue(rng: Rng): unknown {
  const pool = [0, -1, 1, 2.5, NaN, Infinity, -Infinity, 2 ** 31, 2 ** 53, -(2 ** 31), '3', null, undefined, {}, [], true, 'NHD', 'perHead'];
  return pool[rng.int(0, pool.length)];
}

/** One random mutation of a tensor argument: dtype, rank, a dim, short data, strides, offset, or not a tensor. */
function mutateTensor(rng: Rng, t: HostTensor): unknown {
  const r = rng.int(0, 9);
  const dt = (['f32', 'f16', 'bf16', 'i32'] as const)[rng.int(0, 4)];
  switch (r) {
    case 0: return { ...t, dtype: dt };
    case 1: return { ...t, shape: [...t.shape, 1], strides: [...t.strides, 1] };
    case 2: return { ...t, shape: t.shape.slice(1), strides: t.strides.slice(1) };
    case 3: {
      const shape = [...t.shape];
      const i = rng.int(0, shape.length || 1);
      shape[i] = [0, 1, (shape[i] ?? 1) + 1, (shape[i] ?? 1) * 3, -1][rng.int(0, 5)];
      return { ...t, shape };
    }
    case 4: return { ...t, data: t.data.subarray(0, Math.max(0, t.data.length - rng.int(1, 5))) };
    case 5: return { ...t, strides: t.strides.map((s) => s * [0, -1, 2][rng.int(0, 3)]) };
    case 6: return { ...t, offset: [-1, t.data.length, 1.5][rng.int(0, 3)] };
    case 7: return randomValue(rng);
    default: {  // same shape, random contents (ids/lengths outside their ranges for i32)
      const d = t.data.slice();
      for (let k = 0; k < Math.min(3, d.length); k++) d[rng.int(0, d.length)] = [-7, 2 ** 31 - 1, 1e6, 0, 5][rng.int(0, 5)];
      return { ...t, data: d };
    }
  }
}

function check(call: () => void, untouched: () => boolean): 'ok' | 'rejected' {
  try {
    call();
    return 'ok';
  } catch (e) {
    if (!(e instanceof TypeError || e instanceof RangeError || e instanceof SelectAttnError)) throw e;
    if (!untouched()) throw new Error(`rejected call wrote its output: ${(e as Error).message}`);
    return 'rejected';
  }
}

describe('quest ops fuzz (cpu)', () => {
  it('quest_select: 1000 malformed calls', () => {
    const rng = new Rng(seed);
    let rejected = 0;
    for (let n = 0; n < 1000; n++) {
      const meta = () => {
        const a = new Float32Array(3 * 4 * 2 * 4).map((_, i) => Math.sin(i));
        return tensor('f32', [3, 4, 2, 4], a);
      };
      const base: Args = {
        query: tensor('f32', [2, 4, 4], new Float32Array(32).fill(0.5)), maxMeta: meta(), minMeta: meta(),
        metaBlockTables: tensor('i32', [2, 2], [2, 0, 1, -1]), seqLens: tensor('i32', [2], [30, 9]), k: 3,
      };
      const selected = tensor('i32', [2, 2, 3], new Int32Array(12).fill(-9));
      const args: Args = { ...base, selected };
      const keys = ['query', 'maxMeta', 'minMeta', 'metaBlockTables', 'seqLens', 'k', 'blockSize', 'groupReduce', 'sinkBlocks',
        'windowBlocks', 'tokensSinceMetadataUpdate', 'numSelected'];
      for (let m = 0, count = rng.int(1, 4); m < count; m++) {
        const key = keys[rng.int(0, keys.length)];
        const v = args[key];
        args[key] = v && typeof v === 'object' && 'dtype' in (v as object) ? mutateTensor(rng, v as HostTensor)
          : key === 'tokensSinceMetadataUpdate' && rng.next() < 0.5 ? mutateTensor(rng, tensor('i32', [2], [1, 1])) : randomValue(rng);
      }
      const out = args.selected as HostTensor;
      if (check(() => questSelect(args as never), () => (out.data as Int32Array).every((x) => x === -9)) === 'rejected') rejected++;
    }
    expect(rejected).toBeGreaterThan(500);
  });

  it('quest_metadata: 1000 malformed calls', () => {
    const rng = new Rng(seed ^ 0x5bd1e995);
    let rejected = 0;
    for (let n = 0; n < 1000; n++) {
      const maxMeta = tensor('f32', [2, 8, 1, 4], new Float32Array(64).fill(7));
      const minMeta = tensor('f32', [2, 8, 1, 4], new Float32Array(64).fill(7));
      const args: Args = {
        kCache: tensor('f32', [6, 8, 1, 4], new Float32Array(192).map((_, i) => Math.cos(i))),
        blockTables: tensor('i32', [2, 3], [0, 1, 2, 3, -1, -1]), seqLens: tensor('i32', [2], [20, 5]),
        metaBlockTables: tensor('i32', [2, 1], [0, 1]), maxMeta, minMeta,
      };
      const keys = ['kCache', 'blockTables', 'seqLens', 'metaBlockTables', 'maxMeta', 'minMeta', 'startBlocks', 'layout'];
      for (let m = 0, count = rng.int(1, 4); m < count; m++) {
        const key = keys[rng.int(0, keys.length)];
        const v = args[key];
        args[key] = v && typeof v === 'object' && 'dtype' in (v as object) ? mutateTensor(rng, v as HostTensor)
          : key === 'startBlocks' ? mutateTensor(rng, tensor('i32', [2], [0, 1])) : randomValue(rng);
      }
      const untouched = () => [maxMeta, minMeta].every((t) => (t.data as Float32Array).every((x) => x === 7));
      if (check(() => questMetadata(args as never), untouched) === 'rejected') rejected++;
    }
    expect(rejected).toBeGreaterThan(500);
  });
});
