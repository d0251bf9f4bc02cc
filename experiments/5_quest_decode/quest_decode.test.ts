// vitest: the quest_decode checks (cases.ts) on every backend that implements all the families the
// loop uses (quest_select, quest_metadata, paged_attention, kv_cache).
import { describe, expect, it } from 'vitest';
import { runSeed, testBackends } from '../../src/testing/harness.js';
import { suite } from './cases.js';

const backends = testBackends(suite.requires!);
const seed = runSeed();

describe('quest_decode', () => {
  it('has backends to test', () => expect(backends.length).toBeGreaterThan(0));
  for (const backend of backends)
    for (const c of suite.cases())
      it(`${c.id} [${backend}]`, async () => {
        const r = await c.run(backend, seed);
        expect(r.pass, `${r.detail} (replay: SA_SEED=${seed})`).toBe(true);
      });
});
