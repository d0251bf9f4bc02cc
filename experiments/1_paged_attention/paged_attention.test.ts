// vitest: the paged_attention sweep (cases.ts) on every backend that implements the family, plus bad
// input (SPEC section 5: the right error class and code, nothing written) and the async/default paths.
import { describe, expect, it } from 'vitest';
import { pagedAttention, pagedAttentionAsync, timePagedAttention } from '../../src/ops/paged_attention.js';
import { type HostTensor, tensor, toF32 } from '../../src/tensor.js';
import { Rng, maxRelErr, poison, runSeed, testBackends } from '../../src/testing/harness.js';
import { suite } from './cases.js';
import { genAttn } from './gen_data.js';
import { refPagedAttention } from './ref.js';

const seed = runSeed();
const backends = testBackends('paged_attention');
const cases = suite.cases();

describe('paged_attention sweep', () => {
  it('has at least 300 cases with distinct ids', () => {
    expect(cases.length).toBeGreaterThanOrEqual(300);
    expect(new Set(cases.map((c) => c.id)).size).toBe(cases.length);
  });
  for (const backend of backends)
    describe(backend, () => {
      for (const c of cases)
        it(c.id, async () => {
          const r = await c.run(backend, seed);
          expect(r.pass, `${c.id} on ${backend}: ${r.detail} (replay with SA_SEED=${seed})`).toBe(true);
        });
    });
});

// Bad input: errors before anything is written.
function small(over: Record<string, unknown> = {}) {
  const g = genAttn({ qDtype: 'f32', kvDtype: 'f32', layout: 'NHD', H: 4, N: 2, D: 16, bs: 4, seqLens: [9, 5], qLens: [2, 1] }, seed);
  const out = tensor('f32', [3, 4, 16]);
  poison(out.data as Float32Array, 'f32');
  return { args: { ...g.tensors, ...g.options, out, ...over } as Record<string, unknown>, out, g };
}

/** A poisoned output tensor (so a test can tell that nothing was written). */
function pout(dtype: 'f32' | 'f16', shape: number[]): HostTensor {
  const t = tensor(dtype, shape);
  poison(t.data as Float32Array, dtype);
  return t;
}

function expectUnwritten(out: HostTensor) {
  const isPoison = out.dtype === 'f16' ? (x: number) => x === 0x7e00 : (x: number) => Number.isNaN(x);
  expect((out.data as Float32Array).every(isPoison)).toBe(true);
}

describe.each(backends.filter((b) => b === 'cpu'))('paged_attention bad input on %s', (backend) => {
  const bad: [string, (s: ReturnType<typeof small>) => Record<string, unknown>, 'TypeError' | 'RangeError' | 'SelectAttnError'][] = [
    ['q dtype i32', (s) => ({ ...s.args, q: tensor('i32', [3, 4, 16]) }), 'TypeError'],
    ['q rank 2', (s) => ({ ...s.args, q: tensor('f32', [3, 64]) }), 'TypeError'],
    ['headDim mismatch', (s) => ({ ...s.args, q: tensor('f32', [3, 4, 8]), out: pout('f32', [3, 4, 8]) }), 'RangeError'],
    ['H not a multiple of N', (s) => ({ ...s.args, q: tensor('f32', [3, 3, 16]), out: pout('f32', [3, 3, 16]) }), 'RangeError'],
    ['vCache shape', (s) => ({ ...s.args, vCache: tensor('f32', [1, 4, 2, 16]) }), 'RangeError'],
    ['vCache dtype', (s) => ({ ...s.args, vCache: tensor('f16', (s.args.kCache as HostTensor).shape) }), 'TypeError'],
    ['cuSeqlensQ not from 0', (s) => ({ ...s.args, cuSeqlensQ: tensor('i32', [3], [1, 2, 3]) }), 'RangeError'],
    ['cuSeqlensQ decreasing', (s) => ({ ...s.args, cuSeqlensQ: tensor('i32', [3], [0, 3, 2]) }), 'RangeError'],
    ['cuSeqlensQ last != totalQ', (s) => ({ ...s.args, cuSeqlensQ: tensor('i32', [3], [0, 1, 2]) }), 'RangeError'],
    ['qLen > seqLen', (s) => ({ ...s.args, seqLens: tensor('i32', [2], [9, 0]) }), 'RangeError'],
    ['negative seqLen', (s) => ({ ...s.args, seqLens: tensor('i32', [2], [-1, 5]) }), 'RangeError'],
    ['table too narrow', (s) => ({ ...s.args, seqLens: tensor('i32', [2], [900, 5]) }), 'RangeError'],
    ['block id outside pool', (s) => {
      const t = tensor('i32', (s.args.blockTables as HostTensor).shape, Int32Array.from((s.args.blockTables as HostTensor).data));
      (t.data as Int32Array)[0] = 10_000;
      return { ...s.args, blockTables: t };
    }, 'RangeError'],
    ['omitted cuSeqlensQ with totalQ != B', (s) => ({ ...s.args, cuSeqlensQ: undefined }), 'RangeError'],
    ['scale NaN', (s) => ({ ...s.args, scale: NaN }), 'RangeError'],
    ['scale string', (s) => ({ ...s.args, scale: '1' }), 'TypeError'],
    ['causal number', (s) => ({ ...s.args, causal: 1 }), 'TypeError'],
    ['window 0', (s) => ({ ...s.args, slidingWindow: 0 }), 'RangeError'],
    ['window fractional', (s) => ({ ...s.args, slidingWindow: 1.5 }), 'RangeError'],
    ['sinks negative', (s) => ({ ...s.args, sinkTokens: -1 }), 'RangeError'],
    ['softcap 0', (s) => ({ ...s.args, softcap: 0 }), 'RangeError'],
    ['softcap negative', (s) => ({ ...s.args, softcap: -3 }), 'RangeError'],
    ['softcap Infinity', (s) => ({ ...s.args, softcap: Infinity }), 'RangeError'],
    ['sinkLogits shape', (s) => ({ ...s.args, sinkLogits: tensor('f32', [3]) }), 'RangeError'],
    ['alibiSlopes dtype', (s) => ({ ...s.args, alibiSlopes: tensor('f16', [4]) }), 'TypeError'],
    ['blockSelection rows', (s) => ({ ...s.args, blockSelection: tensor('i32', [2, 3, 1]) }), 'RangeError'],
    ['blockSelection kSel 0', (s) => ({ ...s.args, blockSelection: tensor('i32', [2, 2, 0]) }), 'RangeError'],
    ['blockSelection id >= L_b', (s) => ({ ...s.args, blockSelection: tensor('i32', [2, 2, 1], [0, 1, 2, 0]) }), 'RangeError'],
    ['blockSelection id < -1', (s) => ({ ...s.args, blockSelection: tensor('i32', [2, 2, 1], [0, -2, 0, 0]) }), 'RangeError'],
    ['out dtype', (s) => ({ ...s.args, out: pout('f16', [3, 4, 16]) }), 'TypeError'],
    ['out shape', (s) => ({ ...s.args, out: pout('f32', [3, 4, 15]) }), 'RangeError'],
    ['lse shape', (s) => ({ ...s.args, lse: tensor('f32', [3, 5]) }), 'RangeError'],
    ['layout', (s) => ({ ...s.args, layout: 'HDN' }), 'RangeError'],
    ['maxQLen wrong', (s) => ({ ...s.args, maxQLen: 1 }), 'RangeError'],
  ];
  for (const [name, make, kind] of bad)
    it(name, () => {
      const s = small();
      const args = make(s);
      let err: unknown;
      try {
        pagedAttention(args as never, { backend });
      } catch (e) {
        err = e;
      }
      expect(err, name).toBeDefined();
      expect((err as Error).name).toBe(kind);
      expect((err as { code?: string }).code).toBe('SA_ERR_INVALID_ARG');
      expect((err as Error).message).toMatch(/paged_attention \(cpu\)/);
      expectUnwritten(args.out as HostTensor);
    });

  it('native checks hold without the TS layer (bad cuSeqlensQ reaches the backend)', async () => {
    const { native } = await import('../../src/native.js');
    const s = small();
    const t = s.args;
    const call = () =>
      native().pagedAttention(backend, {
        qDtype: 'f32', kvDtype: 'f32', layout: 'NHD', numSeqs: 2, numQoHeads: 4, numKvHeads: 2, headDim: 16, blockSize: 4,
        maxBlocksPerSeq: (t.blockTables as HostTensor).shape[1], numBlocks: (t.kCache as HostTensor).shape[0], totalQ: 3, maxQLen: 2,
        q: (t.q as HostTensor).data, kCache: (t.kCache as HostTensor).data, vCache: (t.vCache as HostTensor).data,
        blockTables: (t.blockTables as HostTensor).data, seqLens: (t.seqLens as HostTensor).data,
        cuSeqlensQ: Int32Array.from([0, 3, 3]), out: (s.out.data as Float32Array),
        blockSelection: Int32Array.from([0, 7, 0, 0]), selRows: 2, selK: 1,
      });
    expect(call).toThrow(/cuSeqlensQ|blockSelection|queries/);
    expectUnwritten(s.out);
  });
});

describe.each(backends.filter((b) => b === 'cpu'))('paged_attention API on %s', (backend) => {
  it('allocates out and lse, defaults cuSeqlensQ, and async gives the same result', async () => {
    const g = genAttn({ qDtype: 'f16', kvDtype: 'bf16', layout: 'HND', H: 8, N: 2, D: 64, bs: 16, seqLens: [70, 3], qLens: [1, 1], omitCu: true }, seed);
    const ref = refPagedAttention(g.problem);
    const r1 = pagedAttention({ ...(g.tensors as never), ...g.options, returnLse: true }, { backend });
    const r2 = await pagedAttentionAsync({ ...(g.tensors as never), ...g.options, returnLse: true }, { backend });
    expect(maxRelErr(toF32(r1.out as HostTensor), ref.out)).toBeLessThanOrEqual(2e-3);
    expect(Array.from((r2.out as HostTensor).data)).toEqual(Array.from((r1.out as HostTensor).data));
    expect(Array.from((r2.lse as HostTensor).data)).toEqual(Array.from((r1.lse as HostTensor).data));
    const ms = timePagedAttention({ ...(g.tensors as never), ...g.options }, 2, { backend });
    expect(ms).toBeGreaterThan(0);
  });

  it('rejects a wrong call asynchronously with the same error', async () => {
    const s = small({ softcap: -1 });
    await expect(pagedAttentionAsync(s.args as never, { backend })).rejects.toThrow(RangeError);
    expectUnwritten(s.out);
  });
});

describe.each(backends.filter((b) => b === 'cpu'))('paged_attention benchmark on %s', (backend) => {
  it('sets up, times and counts a small decode and a small sparse case', async () => {
    const { bench } = await import('./benchmark.js');
    for (const extra of [{}, { selBlocks: 3 }, { qLen: 3, layout: 'HND' }]) {
      const c = await bench.setup({ batch: 2, heads: 8, kvHeads: 2, headDim: 64, blockSize: 16, seqLen: 100, ...extra }, backend);
      expect(c.time(2)).toBeGreaterThan(0);
      expect(c.bytes).toBeGreaterThan(0);
      expect(c.flops).toBeGreaterThan(0);
      c.dispose?.();
    }
  });
  it('encodes a GroupQueryAttention model for the onnxruntime peer', async () => {
    const { gqaModel } = await import('./peer_ort.js');
    const m = gqaModel(2, 8, 2, 64, 100, true, 0.125);
    expect(m.length).toBeGreaterThan(200);
    expect(new TextDecoder().decode(m)).toContain('GroupQueryAttention');
  });
});

describe.each(backends.filter((b) => b === 'cpu'))('paged_attention robustness on %s', (backend) => {
  it('concurrent async calls each get their own result', async () => {
    const cfgs = [1, 2, 3, 4, 5, 6].map((i) => genAttn({
      qDtype: 'f32', kvDtype: i % 2 ? 'bf16' : 'f32', layout: i % 3 ? 'NHD' : 'HND', H: 8, N: 2, D: 64, bs: 16,
      seqLens: [300 + 37 * i, 90], qLens: [i, 1], sel: i === 3 ? { rows: 'head', k: 4 } : undefined,
    }, seed + i));
    const results = await Promise.all(cfgs.map((g) => pagedAttentionAsync({ ...(g.tensors as never), ...g.options, returnLse: true }, { backend })));
    results.forEach((r, i) => {
      const ref = refPagedAttention(cfgs[i].problem);
      expect(maxRelErr(toF32(r.out as HostTensor), ref.out)).toBeLessThanOrEqual(1e-5);
    });
  });

  it('malformed arguments give a typed error or a correct result, never a crash', () => {
    const rng = new Rng(seed ^ 0x5a5a);
    const kinds = new Set<string>();
    for (let iter = 0; iter < 200; iter++) {
      const g = genAttn({ qDtype: 'f32', kvDtype: 'f16', layout: rng.next() < 0.5 ? 'NHD' : 'HND', H: 4, N: 2, D: 8, bs: 4, seqLens: [9, 5, 0], qLens: [2, 1, 0],
        sel: rng.next() < 0.3 ? { rows: 'kv', k: 2 } : undefined }, seed + iter);
      const args: Record<string, unknown> = { ...g.tensors, ...g.options };
      // mutate one or two things at random
      for (let m = 0; m < 1 + rng.int(0, 2); m++) {
        const keys = Object.keys(args);
        const key = keys[rng.int(0, keys.length)];
        const v = args[key] as HostTensor | number | string;
        const pick = rng.int(0, 6);
        if (typeof v === 'object' && v && 'data' in v) {
          const d = v.data;
          if (pick === 0 && d.length) d[rng.int(0, d.length)] = [-1, 1e6, -7, 2 ** 31 - 1, 0][rng.int(0, 5)];
          else if (pick === 1) args[key] = { ...v, shape: v.shape.map((x) => x + rng.int(-1, 2)) };
          else if (pick === 2) args[key] = { ...v, dtype: ['f32', 'f16', 'bf16', 'i32'][rng.int(0, 4)] };
          else if (pick === 3) args[key] = tensor('i32', [rng.int(0, 4)]);
          else if (pick === 4) args[key] = undefined;
          else args[key] = { ...v, data: d.subarray(0, Math.max(0, d.length - 3)) };
        } else {
          args[key] = [NaN, -1, 0, 1.5, 'x', null, Infinity, 3][rng.int(0, 8)];
        }
      }
      try {
        pagedAttention(args as never, { backend });
        kinds.add('ok');
      } catch (e) {
        const err = e as Error & { code?: string };
        expect(['TypeError', 'RangeError', 'SelectAttnError'], `${err.name}: ${err.message}`).toContain(err.name);
        expect(err.code).toMatch(/^SA_ERR_/);
        kinds.add(err.name);
      }
    }
    expect(kinds.size).toBeGreaterThan(1);
  });
});
