// vitest: examples/quest_decode.ts runs on a tiny shape and returns a well-formed selection and output,
// so the example cannot rot (it is also compiled by tsc with the rest of the package).
import { describe, expect, it } from 'vitest';
import { main } from '../../examples/quest_decode.js';
import type { HostTensor } from '../../src/tensor.js';
import { toF32 } from '../../src/tensor.js';

describe('examples/quest_decode', () => {
  it('decodes a tiny batch with valid selections', () => {
    const [B, H, N, D, bs, promptLen, steps] = [3, 8, 2, 16, 4, 37, 3];
    const r = main({ batch: B, heads: H, kvHeads: N, headDim: D, blockSize: bs, promptLen, steps, tokenBudget: 20 });
    expect(r.k).toBe(5);
    const sel = r.selected as HostTensor;
    expect(sel.shape).toEqual([B, N, 5]);
    const L = Math.ceil((promptLen + steps) / bs);
    for (let row = 0; row < B * N; row++) {
      const ids = Array.from(sel.data.subarray(row * 5, row * 5 + 5));
      expect(ids.every((j, i) => j >= 0 && j < L && (i === 0 || j > ids[i - 1]))).toBe(true); // ascending, distinct, in range
      expect(ids).toContain(0); // sink block
      expect(ids).toContain(L - 1); // newest blocks (windowBlocks 2)
      expect(ids).toContain(L - 2);
    }
    const out = toF32(r.out as HostTensor);
    expect((r.out as HostTensor).shape).toEqual([B, H, D]);
    expect(out.every(Number.isFinite)).toBe(true);
    expect(out.some((x) => x !== 0)).toBe(true);
    expect(r.msPerStep).toBeGreaterThan(0);
  });
});
