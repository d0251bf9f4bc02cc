// Backend listing and device-tensor rules that hold on every machine (GPU-less ones included).
import { describe, expect, it } from 'vitest';
import { DeviceTensor, SelectAttnError, listBackends, questMetadata, tensor } from './index.js';

describe('backends', () => {
  it('lists every backend with a reason when unavailable', () => {
    const bs = listBackends();
    expect(bs.map((b) => b.name).sort()).toEqual(['ascend', 'ascend-sim', 'cpu', 'cuda', 'metal']);
    const cpu = bs.find((b) => b.name === 'cpu')!;
    expect(cpu.available).toBe(true);
    expect(cpu.families).toContain('quest_metadata');
    for (const b of bs) if (!b.available) expect(b.reason.length).toBeGreaterThan(5);
  });
  it('refuses device memory on a host backend with SA_ERR_UNSUPPORTED', () => {
    let err: unknown;
    try {
      DeviceTensor.empty('cpu', 'f32', [4]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SelectAttnError);
    expect((err as SelectAttnError).code).toBe('SA_ERR_UNSUPPORTED');
  });
  it('names an unavailable backend and why', () => {
    const unavailable = listBackends().find((b) => !b.available)!;
    const k = tensor('f32', [1, 1, 1, 1]);
    const i = tensor('i32', [1, 1]);
    const m = tensor('f32', [1, 1, 1, 1]);
    let err: unknown;
    try {
      questMetadata({ kCache: k, blockTables: i, seqLens: tensor('i32', [1]), metaBlockTables: i, maxMeta: m, minMeta: tensor('f32', [1, 1, 1, 1]) }, { backend: unavailable.name });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(Error);
    expect(String((err as Error).message)).toContain(unavailable.name);
  });
});

describe('hostTensor', () => {
  it('allocates zeroed native memory, huge-page advised or not, usable by the kernels', async () => {
    const { hostTensor, questMetadata, tensor } = await import('./index.js');
    for (const hugePages of [false, true]) {
      const k = hostTensor('bf16', [4, 8, 2, 16], { hugePages });
      expect(k.data).toBeInstanceOf(Uint16Array);
      expect(k.data.length).toBe(4 * 8 * 2 * 16);
      expect(k.data.every((v) => v === 0)).toBe(true);
      k.data.fill(0x3f80); // 1.0
      const mx = hostTensor('bf16', [1, 8, 2, 16], { hugePages });
      const mn = tensor('bf16', [1, 8, 2, 16]);
      questMetadata({ kCache: k, blockTables: tensor('i32', [1, 4], [3, 2, 1, 0]), seqLens: tensor('i32', [1], [20]),
        metaBlockTables: tensor('i32', [1, 1], [0]), maxMeta: mx, minMeta: mn });
      expect(Array.from(mx.data.subarray(0, 3 * 32)).every((v) => v === 0x3f80)).toBe(true);
    }
    expect(() => hostTensor('f32', [-1])).toThrow(RangeError);
  });
});
