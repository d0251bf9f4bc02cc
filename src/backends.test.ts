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
