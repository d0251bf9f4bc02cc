// vitest: the kv_cache sweep (cases.ts) on every backend that implements the family, plus bad input
// (SPEC section 5: the right error class and code, nothing written) and the async paths.
import { describe, expect, it } from 'vitest';
import { cacheWrite, cacheWriteAsync, questMetadataAppend, questMetadataAppendAsync } from '../../src/ops/kv_cache.js';
import { type HostTensor, tensor } from '../../src/tensor.js';
import { runSeed, testBackends } from '../../src/testing/harness.js';
import { suite } from './cases.js';
import { genAppend, genWrite } from './gen_data.js';

const seed = runSeed();
const backends = testBackends('kv_cache');

describe('kv_cache sweep', () => {
  for (const backend of backends)
    describe(backend, () => {
      for (const c of suite.cases())
        it(c.id, async () => {
          const r = await c.run(backend, seed);
          expect(r.pass, `${c.id} on ${backend}: ${r.detail} (replay with SA_SEED=${seed})`).toBe(true);
        });
    });
});

function snapshot(...ts: HostTensor[]): number[][] {
  return ts.map((t) => Array.from(t.data));
}

describe.each(backends.filter((b) => b === 'cpu'))('kv_cache bad input on %s', (backend) => {
  const w = () => genWrite({ dtype: 'bf16', layout: 'NHD', N: 2, D: 8, bs: 4, numBlocks: 3, T: 5 }, seed);
  const writeBad: [string, (g: ReturnType<typeof w>) => Record<string, unknown>, string][] = [
    ['slot past the pool', (g) => ({ ...g, slotMapping: tensor('i32', [5], [0, 1, 2, 12, 3]) }), 'RangeError'],
    ['slot < -1', (g) => ({ ...g, slotMapping: tensor('i32', [5], [0, -2, 2, 3, 4]) }), 'RangeError'],
    ['slotMapping length', (g) => ({ ...g, slotMapping: tensor('i32', [4], [0, 1, 2, 3]) }), 'RangeError'],
    ['value dtype', (g) => ({ ...g, value: tensor('f16', [5, 2, 8]) }), 'TypeError'],
    ['value shape', (g) => ({ ...g, value: tensor('bf16', [5, 2, 7]) }), 'RangeError'],
    ['cache head count', (g) => ({ ...g, kCache: tensor('bf16', [3, 4, 3, 8]), vCache: tensor('bf16', [3, 4, 3, 8]) }), 'RangeError'],
    ['vCache shape', (g) => ({ ...g, vCache: tensor('bf16', [2, 4, 2, 8]) }), 'RangeError'],
    ['key rank', (g) => ({ ...g, key: tensor('bf16', [5, 16]) }), 'TypeError'],
    ['layout', (g) => ({ ...g, layout: 'XYZ' }), 'RangeError'],
  ];
  for (const [name, make, kind] of writeBad)
    it(`cacheWrite: ${name}`, () => {
      const g = w();
      const before = snapshot(g.kCache, g.vCache);
      const args = make(g);
      expect(() => cacheWrite(args as never, { backend })).toThrow(expect.objectContaining({ name: kind, code: 'SA_ERR_INVALID_ARG' }));
      expect(snapshot(g.kCache, g.vCache)).toEqual(before);
    });

  const ap = () => genAppend({ dtype: 'f32', N: 2, D: 8, bs: 4, metaRows: 4, seqLens: [3, 9], newTokens: [2, 2] }, seed);
  const appendBad: [string, (g: ReturnType<typeof ap>) => Record<string, unknown>, string][] = [
    ['seqIdx outside [0, B)', (g) => ({ ...g, seqIdx: tensor('i32', [4], [0, 1, 2, 0]) }), 'RangeError'],
    ['negative position', (g) => ({ ...g, positions: tensor('i32', [4], [3, -1, 9, 10]) }), 'RangeError'],
    ['position past the table', (g) => ({ ...g, positions: tensor('i32', [4], [3, 4, 9, 400]) }), 'RangeError'],
    ['page id outside the pool', (g) => {
      const t = Int32Array.from(g.metaBlockTables.data as Int32Array);
      t[0] = 99;
      return { ...g, metaBlockTables: tensor('i32', g.metaBlockTables.shape, t) };
    }, 'RangeError'],
    ['minMeta shape', (g) => ({ ...g, minMeta: tensor('f32', [1, 4, 2, 8]) }), 'RangeError'],
    ['maxMeta dtype', (g) => ({ ...g, maxMeta: tensor('bf16', g.maxMeta.shape) }), 'TypeError'],
    ['blockSize 0', (g) => ({ ...g, blockSize: 0 }), 'RangeError'],
    ['blockSize fractional', (g) => ({ ...g, blockSize: 2.5 }), 'RangeError'],
  ];
  for (const [name, make, kind] of appendBad)
    it(`questMetadataAppend: ${name}`, () => {
      const g = ap();
      const before = snapshot(g.maxMeta, g.minMeta);
      expect(() => questMetadataAppend(make(g) as never, { backend })).toThrow(expect.objectContaining({ name: kind, code: 'SA_ERR_INVALID_ARG' }));
      expect(snapshot(g.maxMeta, g.minMeta)).toEqual(before);
    });

  it('the backend re-checks ids without the TS layer', async () => {
    const { native } = await import('../../src/native.js');
    const g = w();
    const before = snapshot(g.kCache);
    expect(() => native().cacheWrite(backend, { dtype: 'bf16', layout: 'NHD', numTokens: 5, numKvHeads: 2, headDim: 8, blockSize: 4, numBlocks: 3,
      key: g.key.data, value: g.value.data, kCache: g.kCache.data, vCache: g.vCache.data, slotMapping: Int32Array.from([0, 1, 2, 3, 12]) })).toThrow(/slotMapping\[4\]/);
    expect(snapshot(g.kCache)).toEqual(before);
  });

  it('async variants give the sync results', async () => {
    const g1 = w();
    const g2 = w();
    cacheWrite(g1, { backend });
    await cacheWriteAsync(g2, { backend });
    expect(snapshot(g2.kCache, g2.vCache)).toEqual(snapshot(g1.kCache, g1.vCache));
    const a1 = ap();
    const a2 = ap();
    questMetadataAppend({ ...a1, blockSize: 4 }, { backend });
    await questMetadataAppendAsync({ ...a2, blockSize: 4 }, { backend });
    expect(snapshot(a2.maxMeta, a2.minMeta)).toEqual(snapshot(a1.maxMeta, a1.minMeta));
  });
});

describe.each(backends.filter((b) => b === 'cpu'))('kv_cache benchmark on %s', (backend) => {
  it('sets up and times both ops', async () => {
    const { bench } = await import('./benchmark.js');
    for (const op of ['cacheWrite', 'append']) {
      const c = await bench.setup({ op, tokens: 64, batch: 4, kvHeads: 2, headDim: 32, poolBlocks: 64 }, backend);
      expect(c.time(2)).toBeGreaterThan(0);
      expect(c.bytes).toBeGreaterThan(0);
      c.dispose?.();
    }
  });
});
