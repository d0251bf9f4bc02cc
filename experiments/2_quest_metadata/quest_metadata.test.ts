// vitest: every quest_metadata case on every backend that implements the family, plus bad-input checks.
import { describe, expect, it } from 'vitest';
import { SelectAttnError } from '../../src/errors.js';
import { questMetadata, questMetadataAsync } from '../../src/ops/quest_metadata.js';
import { runSeed, testBackends } from '../../src/testing/harness.js';
import { tensor } from '../../src/tensor.js';
import { suite } from './cases.js';

const backends = testBackends('quest_metadata');
const seed = runSeed();

describe('quest_metadata sweep', () => {
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

describe('quest_metadata bad input (cpu)', () => {
  // A small valid problem: B=2, lens [20, 5], bs=8, N=1, D=4, metaRows=8.
  const valid = () => ({
    kCache: tensor('f32', [6, 8, 1, 4]),
    blockTables: tensor('i32', [2, 3], [0, 1, 2, 3, -1, -1]),
    seqLens: tensor('i32', [2], [20, 5]),
    metaBlockTables: tensor('i32', [2, 1], [0, 1]),
    maxMeta: tensor('f32', [2, 8, 1, 4], new Float32Array(64).fill(7)),
    minMeta: tensor('f32', [2, 8, 1, 4], new Float32Array(64).fill(7)),
  });
  const untouched = (a: ReturnType<typeof valid>) =>
    (a.maxMeta.data as Float32Array).every((v) => v === 7) && (a.minMeta.data as Float32Array).every((v) => v === 7);

  it('accepts the valid call', () => {
    const a = valid();
    questMetadata(a);
    expect(untouched(a)).toBe(false);
  });
  const bad: [string, (a: ReturnType<typeof valid>) => unknown, unknown][] = [
    ['kCache dtype i32', (a) => ({ ...a, kCache: tensor('i32', [6, 8, 1, 4]) }), TypeError],
    ['kCache rank 3', (a) => ({ ...a, kCache: tensor('f32', [6, 8, 4]) }), TypeError],
    ['maxMeta dtype differs', (a) => ({ ...a, maxMeta: tensor('f16', [2, 8, 1, 4]) }), TypeError],
    ['minMeta shape differs', (a) => ({ ...a, minMeta: tensor('f32', [2, 4, 1, 4]) }), RangeError],
    ['maxMeta head dim differs', (a) => ({ ...a, maxMeta: tensor('f32', [2, 8, 1, 5]) }), RangeError],
    ['seqLens negative', (a) => ({ ...a, seqLens: tensor('i32', [2], [20, -1]) }), RangeError],
    ['blockTables too narrow', (a) => ({ ...a, seqLens: tensor('i32', [2], [25, 5]) }), RangeError],
    ['block id outside pool', (a) => ({ ...a, blockTables: tensor('i32', [2, 3], [0, 1, 6, 3, -1, -1]) }), RangeError],
    ['meta page outside pool', (a) => ({ ...a, metaBlockTables: tensor('i32', [2, 1], [0, 2]) }), RangeError],
    ['metaBlockTables too narrow', (a) => ({ ...a, maxMeta: tensor('f32', [2, 1, 1, 4]), minMeta: tensor('f32', [2, 1, 1, 4]) }), RangeError],
    ['startBlocks negative', (a) => ({ ...a, startBlocks: tensor('i32', [2], [0, -2]) }), RangeError],
    ['startBlocks wrong length', (a) => ({ ...a, startBlocks: tensor('i32', [3], [0, 0, 0]) }), RangeError],
    ['layout unknown', (a) => ({ ...a, layout: 'NDH' }), RangeError],
    ['kCache not a tensor', (a) => ({ ...a, kCache: new Float32Array(4) }), TypeError],
    ['data too short', (a) => ({ ...a, kCache: { ...a.kCache, data: new Float32Array(10) } }), RangeError],
  ];
  for (const [name, mutate, cls] of bad) {
    it(`rejects ${name} before writing`, () => {
      const a = valid();
      expect(() => questMetadata(mutate(a) as never)).toThrow(cls as never);
      expect(untouched(a)).toBe(true);
    });
  }
  it('async rejects with the same error', async () => {
    const a = valid();
    await expect(questMetadataAsync({ ...a, seqLens: tensor('i32', [2], [20, -1]) })).rejects.toThrow(RangeError);
    expect(untouched(a)).toBe(true);
  });
  it('errors carry code, family and backend', () => {
    const a = valid();
    try {
      questMetadata({ ...a, blockTables: tensor('i32', [2, 3], [0, 1, 99, 3, -1, -1]) });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(RangeError);
      expect((e as { code: string }).code).toBe('SA_ERR_INVALID_ARG');
      expect((e as { family: string }).family).toBe('quest_metadata');
      expect((e as Error).message).toMatch(/blockTables\[0, 2\]/);
    }
    expect(SelectAttnError).toBeDefined();
  });
});
