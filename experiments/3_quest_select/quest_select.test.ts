// vitest: every quest_select case on every backend that implements the family, plus bad-input checks.
import { describe, expect, it } from 'vitest';
import { runSeed, testBackends } from '../../src/testing/harness.js';
import { suite } from './cases.js';

const backends = testBackends('quest_select');
const seed = runSeed();

describe('quest_select sweep', () => {
  it('has backends to test', () => expect(backends.length).toBeGreaterThan(0));
  for (const backend of backends) {
    for (const c of suite.cases()) {
      it(`${c.id} [${backend}]`, async () => {
        const r = await c.run(backend, seed);
        expect(r.pass, `${r.detail} (replay: SA_SEED=${seed})`).toBe(true);
      });
    }
  }
});

import {
  questBlockSelectPaged, questBlockSelectPagedInOut, questBlockSelectPagedInOutW, questSelect, questSelectAsync, timeQuestSelect,
} from '../../src/ops/quest_select.js';
import { SelectAttnError } from '../../src/errors.js';
import { type HostTensor, tensor } from '../../src/tensor.js';

describe('quest_select API (cpu)', () => {
  // B=2, H=4, N=2, D=4, metaRows=blockSize=4; lens [30, 9] -> 8 and 3 blocks; 3 metadata pages of 4 rows.
  const valid = () => {
    const max = new Float32Array(3 * 4 * 2 * 4);
    const min = new Float32Array(max.length);
    for (let i = 0; i < max.length; i++) {
      const a = Math.sin(i * 1.7) * 2;
      const b = Math.cos(i * 0.9) * 2;
      max[i] = Math.max(a, b);
      min[i] = Math.min(a, b);
    }
    return {
      query: tensor('f32', [2, 4, 4], Float32Array.from({ length: 32 }, (_, i) => Math.sin(i))),
      maxMeta: tensor('f32', [3, 4, 2, 4], max),
      minMeta: tensor('f32', [3, 4, 2, 4], min),
      metaBlockTables: tensor('i32', [2, 2], [2, 0, 1, -1]),
      seqLens: tensor('i32', [2], [30, 9]),
      k: 3,
    };
  };
  const rows = (t: HostTensor) => Array.from(t.data as Int32Array);

  it('allocates outputs, pads with -1, counts numSelected', () => {
    const r = questSelect({ ...valid(), k: 5 });
    const sel = r.selected as HostTensor;
    expect(sel.shape).toEqual([2, 2, 5]);
    expect(rows(r.numSelected as HostTensor)).toEqual([5, 5, 3, 3]);
    const s = rows(sel);
    expect(s.slice(10, 15)).toEqual([0, 1, 2, -1, -1]); // sequence 1 has 3 blocks
    expect(s.slice(0, 5).every((v, i, a) => v >= 0 && v < 8 && (i === 0 || v > a[i - 1]))).toBe(true);
    expect(s.slice(0, 5)).toContain(7); // partial last block (30 = 7 * 4 + 2) is stale at t = 0
  });
  it('a number t and the same t as a tensor agree; preallocated outputs are filled in place', () => {
    const a = questSelect({ ...valid(), tokensSinceMetadataUpdate: 6, sinkBlocks: 1 });
    const selected = tensor('i32', [2, 2, 3]);
    const numSelected = tensor('i32', [2, 2]);
    const b = questSelect({ ...valid(), tokensSinceMetadataUpdate: tensor('i32', [2], [6, 6]), sinkBlocks: 1, selected, numSelected });
    expect(b.selected).toBe(selected);
    expect(b.numSelected).toBe(numSelected);
    expect(rows(selected)).toEqual(rows(a.selected as HostTensor));
    // t = 6 on seqLen 30: mru 24 -> blocks 6, 7 stale; sink 0: all three forced
    expect(rows(selected).slice(0, 3)).toEqual([0, 6, 7]);
  });
  it('perHead gives H rows; async and timed variants run', async () => {
    const r = await questSelectAsync({ ...valid(), groupReduce: 'perHead' });
    expect((r.selected as HostTensor).shape).toEqual([2, 4, 3]);
    expect(timeQuestSelect(valid(), 3)).toBeGreaterThan(0);
  });
  it('seed aliases map to questSelect', () => {
    const v = valid();
    const ref = questSelect(v).selected as HostTensor;
    const out = questBlockSelectPaged(v.query, v.maxMeta, v.minMeta, v.metaBlockTables, v.seqLens, 3) as HostTensor;
    expect(rows(out)).toEqual(rows(ref));
    const io = tensor('i32', [2, 2, 3]);
    questBlockSelectPagedInOut(v.query, v.maxMeta, v.minMeta, v.metaBlockTables, v.seqLens, io);
    expect(rows(io)).toEqual(rows(ref));
    const w = tensor('i32', [2, 2, 3]);
    questBlockSelectPagedInOutW(v.query, v.maxMeta, v.minMeta, v.metaBlockTables, v.seqLens, 2, w);
    expect(rows(w)).toEqual(rows(questSelect({ ...v, sinkBlocks: 1, tokensSinceMetadataUpdate: 2 }).selected as HostTensor));
    expect(rows(w).slice(0, 3)).toContain(0);
  });

  const bad: [string, (v: ReturnType<typeof valid>) => unknown, unknown][] = [
    ['k = 0', (v) => ({ ...v, k: 0 }), RangeError],
    ['k = 2.5', (v) => ({ ...v, k: 2.5 }), RangeError],
    ['k as a string', (v) => ({ ...v, k: '3' }), TypeError],
    ['k too large for the output', (v) => ({ ...v, k: 2 ** 30 }), RangeError],
    ['t above seqLens', (v) => ({ ...v, tokensSinceMetadataUpdate: 10 }), RangeError],
    ['t negative', (v) => ({ ...v, tokensSinceMetadataUpdate: -1 }), RangeError],
    ['t tensor above seqLens', (v) => ({ ...v, tokensSinceMetadataUpdate: tensor('i32', [2], [0, 10]) }), RangeError],
    ['t tensor of f32', (v) => ({ ...v, tokensSinceMetadataUpdate: tensor('f32', [2]) }), TypeError],
    ['t tensor of the wrong length', (v) => ({ ...v, tokensSinceMetadataUpdate: tensor('i32', [3]) }), RangeError],
    ['query rank 2', (v) => ({ ...v, query: tensor('f32', [2, 16]) }), TypeError],
    ['query dtype i32', (v) => ({ ...v, query: tensor('i32', [2, 4, 4]) }), TypeError],
    ['maxMeta dtype differs from query', (v) => ({ ...v, maxMeta: tensor('f16', [3, 4, 2, 4]) }), TypeError],
    ['minMeta shape differs', (v) => ({ ...v, minMeta: tensor('f32', [3, 4, 2, 5]) }), RangeError],
    ['head dim differs', (v) => ({ ...v, maxMeta: tensor('f32', [3, 4, 2, 5]), minMeta: tensor('f32', [3, 4, 2, 5]) }), RangeError],
    ['H not a multiple of N', (v) => ({ ...v, maxMeta: tensor('f32', [3, 4, 3, 4]), minMeta: tensor('f32', [3, 4, 3, 4]) }), RangeError],
    ['metaBlockTables too narrow', (v) => ({ ...v, seqLens: tensor('i32', [2], [33, 9]) }), RangeError],
    ['metadata page outside the pool', (v) => ({ ...v, metaBlockTables: tensor('i32', [2, 2], [2, 3, 1, -1]) }), RangeError],
    ['negative seqLens', (v) => ({ ...v, seqLens: tensor('i32', [2], [30, -4]) }), RangeError],
    ['seqLens of the wrong length', (v) => ({ ...v, seqLens: tensor('i32', [3], [1, 1, 1]) }), RangeError],
    ['groupReduce unknown', (v) => ({ ...v, groupReduce: 'max' }), RangeError],
    ['sinkBlocks negative', (v) => ({ ...v, sinkBlocks: -1 }), RangeError],
    ['windowBlocks fractional', (v) => ({ ...v, windowBlocks: 1.5 }), RangeError],
    ['blockSize 0', (v) => ({ ...v, blockSize: 0 }), RangeError],
    ['selected of the wrong shape', (v) => ({ ...v, selected: tensor('i32', [2, 2, 4]) }), RangeError],
    ['selected of f32', (v) => ({ ...v, selected: tensor('f32', [2, 2, 3]) }), TypeError],
    ['numSelected of the wrong shape', (v) => ({ ...v, numSelected: tensor('i32', [2, 4]) }), RangeError],
    ['query data too short', (v) => ({ ...v, query: { ...v.query, data: new Float32Array(8) } }), RangeError],
    ['not an object', () => 42, TypeError],
  ];
  for (const [name, mutate, cls] of bad) {
    it(`rejects ${name} without writing`, () => {
      const v = valid();
      const selected = tensor('i32', [2, 2, 3], new Int32Array(12).fill(-7));
      const args = mutate(v);
      const withOut = typeof args === 'object' && args !== null && !('selected' in (args as object)) ? { ...(args as object), selected } : args;
      expect(() => questSelect(withOut as never)).toThrow(cls as never);
      expect(rows(selected).every((x) => x === -7)).toBe(true);
    });
  }
  it('async rejects with the same class; errors carry code, family and backend', async () => {
    await expect(questSelectAsync({ ...valid(), k: 0 })).rejects.toThrow(RangeError);
    try {
      questSelect({ ...valid(), tokensSinceMetadataUpdate: 99 });
      expect.unreachable();
    } catch (e) {
      expect((e as { code: string }).code).toBe('SA_ERR_INVALID_ARG');
      expect((e as { family: string }).family).toBe('quest_select');
      expect((e as { backend: string }).backend).toBe('cpu');
      expect((e as Error).message).toMatch(/tokensSinceMetadataUpdate\[0\]/);
    }
    expect(() => questSelect(valid(), { backend: 'nope' as never })).toThrow(RangeError);
    expect(SelectAttnError).toBeDefined();
  });
  it('the native layer rejects t outside [0, seqLens] too (a backend-level check)', async () => {
    const { native } = await import('../../src/native.js');
    const v = valid();
    const sel = new Int32Array(12).fill(-7);
    expect(() => native().questSelect('cpu', {
      queryDtype: 'f32', metaDtype: 'f32', numSeqs: 2, numQoHeads: 4, numKvHeads: 2, headDim: 4, blockSize: 4, metaRows: 4,
      maxMetaPagesPerSeq: 2, numMetaPages: 3, k: 3, query: v.query.data, maxMeta: v.maxMeta.data, minMeta: v.minMeta.data,
      metaBlockTables: v.metaBlockTables.data, seqLens: v.seqLens.data, tokensSinceUpdate: Int32Array.from([0, 10]), selected: sel,
    }, 'sync')).toThrow(/tokensSinceMetadataUpdate\[1\] = 10/);
    expect(Array.from(sel).every((x) => x === -7)).toBe(true);
  });
});

describe('README worked example (Migrating from select_attn_ops)', () => {
  // One sequence of 18 tokens, blockSize 4 -> 5 blocks (the last holds 2 tokens); D = 2, one head.
  // Block j's metadata: M = max keys, m = min keys; query q = (1, -1).
  const M = [[3, 1], [0.5, 0], [2, 2], [1, 0], [4, 4]];
  const m = [[1, -2], [-1, -1], [0, 1], [0, -3], [4, 4]];
  // Two metadata pages of 4 rows (metaRows = blockSize = 4), stored in the pool as pages 1 and 0.
  const pool = (rows: number[][]) => tensor('f32', [2, 4, 1, 2], [...rows[4], 0, 0, 0, 0, 0, 0, ...rows.slice(0, 4).flat()]);
  const args = {
    query: tensor('f32', [1, 1, 2], [1, -1]),
    maxMeta: pool(M), minMeta: pool(m),
    metaBlockTables: tensor('i32', [1, 2], [1, 0]),
    seqLens: tensor('i32', [1], [18]),
  };
  const sel = (o: object) => Array.from(questSelect({ ...args, k: 3, ...o } as never).selected.data as Int32Array);
  it('scores are 5, 1.5, 1, 4, 0; block 4 (partial) is stale at t = 0', () => {
    expect(sel({ k: 3 })).toEqual([0, 3, 4]);
    expect(sel({ k: 8 })).toEqual([0, 1, 2, 3, 4, -1, -1, -1]);
    expect(sel({ k: 2, tokensSinceMetadataUpdate: 3 })).toEqual([3, 4]);
    expect(sel({ k: 2, tokensSinceMetadataUpdate: 3, sinkBlocks: 1 })).toEqual([3, 4]);
    expect(sel({ k: 3, tokensSinceMetadataUpdate: 3, sinkBlocks: 1 })).toEqual([0, 3, 4]);
    expect(sel({ k: 3, windowBlocks: 3 })).toEqual([2, 3, 4]);
    expect(sel({ k: 4, tokensSinceMetadataUpdate: 2, sinkBlocks: 1 })).toEqual([0, 1, 3, 4]);
    const io = tensor('i32', [1, 1, 8]);
    questBlockSelectPagedInOutW(args.query, args.maxMeta, args.minMeta, args.metaBlockTables, args.seqLens, 3, io);
    expect(Array.from(io.data as Int32Array)).toEqual([0, 1, 2, 3, 4, -1, -1, -1]);
  });
});
