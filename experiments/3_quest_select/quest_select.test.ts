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
