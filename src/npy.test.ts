// .npy reader/writer: round trips for every dtype and odd shapes, files built byte by byte from the
// format spec (v1, v2, v3, big-endian, f8/i8 conversion), and the errors for what we reject.
import { describe, expect, it } from 'vitest';
import { readNpy, readNpyHeader, writeNpy } from './npy.js';
import { type DType, type HostTensor, f32ToBf16, f32ToF16, tensor, toF32 } from './tensor.js';

/** A .npy file assembled by hand: magic, version, little-endian header length, the dict padded to 64, data. */
function handMade(major: number, dict: string, data: Uint8Array): Uint8Array {
  const lenBytes = major === 1 ? 2 : 4;
  const pre = 8 + lenBytes;
  const total = Math.ceil((pre + dict.length + 1) / 64) * 64;
  const header = new TextEncoder().encode(dict.padEnd(total - pre - 1, ' ') + '\n');
  const out = new Uint8Array(pre + header.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]);
  const dv = new DataView(out.buffer);
  if (major === 1) dv.setUint16(8, header.length, true);
  else dv.setUint32(8, header.length, true);
  out.set(header, pre);
  out.set(data, pre + header.length);
  return out;
}

function bytesOf(fill: (dv: DataView) => void, n: number): Uint8Array {
  const b = new Uint8Array(n);
  fill(new DataView(b.buffer));
  return b;
}

describe('npy', () => {
  it('round-trips every dtype and odd shapes', () => {
    const cases: [DType, number[]][] = [
      ['f32', [2, 3]], ['f16', [5]], ['bf16', [3, 1, 4]], ['i32', [7]], ['f32', []], ['i32', [0, 3]], ['f16', [1, 0]], ['bf16', [2, 2, 2, 2, 2]],
    ];
    for (const [dt, shape] of cases) {
      const n = shape.reduce((a, b) => a * b, 1);
      const vals = Array.from({ length: n }, (_, i) => (i % 7) - 3.25 * (i % 3));
      const t = dt === 'f16' ? tensor(dt, shape, f32ToF16(vals)) : dt === 'bf16' ? tensor(dt, shape, f32ToBf16(vals)) : dt === 'i32' ? tensor(dt, shape, Int32Array.from(vals, Math.trunc)) : tensor(dt, shape, Float32Array.from(vals));
      const bytes = writeNpy(t);
      const h = readNpyHeader(bytes);
      expect(h.dataOffset % 64).toBe(0);
      expect(bytes[h.dataOffset - 1]).toBe(0x0a);
      const back = readNpy(bytes);
      expect(back.dtype).toBe(dt);
      expect(back.shape).toEqual(shape);
      expect(Array.from(back.data)).toEqual(Array.from(t.data));
    }
  });

  it('writes a strided (non-contiguous) tensor in C order', () => {
    // a 2x3 view of a 3x2 buffer, transposed
    const t: HostTensor = { dtype: 'f32', shape: [2, 3], strides: [1, 2], data: Float32Array.from([0, 1, 2, 3, 4, 5]), offset: 0 };
    expect(Array.from(readNpy(writeNpy(t)).data)).toEqual([0, 2, 4, 1, 3, 5]);
  });

  it('reads a hand-made v1 file (<i4, shape (2, 3))', () => {
    const data = bytesOf((dv) => [1, 2, 3, -4, 5, 2147483647].forEach((v, i) => dv.setInt32(4 * i, v, true)), 24);
    const f = handMade(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }", data);
    const t = readNpy(f);
    expect(t.dtype).toBe('i32');
    expect(t.shape).toEqual([2, 3]);
    expect(Array.from(t.data)).toEqual([1, 2, 3, -4, 5, 2147483647]);
  });

  it('reads v2 and v3 headers, double quotes, key order, 1-tuples and old long suffixes', () => {
    const data = bytesOf((dv) => [1.5, -2].forEach((v, i) => dv.setFloat32(4 * i, v, true)), 8);
    const v2 = handMade(2, '{"shape": (2,), "fortran_order": False, "descr": "<f4"}', data);
    expect(Array.from(readNpy(v2).data)).toEqual([1.5, -2]);
    const v3 = handMade(3, "{'descr': '<f4', 'fortran_order': False, 'shape': (1L, 2L), }", data);
    const t = readNpy(v3);
    expect(t.shape).toEqual([1, 2]);
    expect(Array.from(t.data)).toEqual([1.5, -2]);
  });

  it('reads big-endian files and converts <f8 and <i8 with range checks', () => {
    const be = handMade(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", bytesOf((dv) => [3.5, -1].forEach((v, i) => dv.setFloat32(4 * i, v, false)), 8));
    expect(Array.from(readNpy(be).data)).toEqual([3.5, -1]);
    const f8 = handMade(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", bytesOf((dv) => [0.1, 1e30, -Infinity].forEach((v, i) => dv.setFloat64(8 * i, v, true)), 24));
    const t = readNpy(f8);
    expect(t.dtype).toBe('f32');
    expect(Array.from(t.data)).toEqual([Math.fround(0.1), Math.fround(1e30), -Infinity]);
    const f8big = handMade(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", bytesOf((dv) => dv.setFloat64(0, 1e300, true), 8));
    expect(() => readNpy(f8big)).toThrow(RangeError);
    const i8 = handMade(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", bytesOf((dv) => [-7n, 2147483647n].forEach((v, i) => dv.setBigInt64(8 * i, v, true)), 16));
    expect(Array.from(readNpy(i8).data)).toEqual([-7, 2147483647]);
    const i8big = handMade(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }", bytesOf((dv) => dv.setBigInt64(0, 2n ** 31n, true), 8));
    expect(() => readNpy(i8big)).toThrow(/does not fit in int32/);
  });

  it('applies dtype overrides: <u2 as f16 words, floats to bf16/f16 by value, ints stay ints', () => {
    const u2 = writeNpy(tensor('bf16', [2], f32ToBf16([1, 2])));
    expect(readNpy(u2).dtype).toBe('bf16');
    const asF16 = readNpy(u2, { dtype: 'f16' });
    expect(asF16.dtype).toBe('f16');
    expect(Array.from(asF16.data)).toEqual(Array.from(f32ToBf16([1, 2])));
    const f4 = writeNpy(tensor('f32', [3], Float32Array.from([1, -0.5, 3.140625])));
    expect(toF32(readNpy(f4, { dtype: 'bf16' }))).toEqual(Float32Array.from([1, -0.5, 3.140625]));
    expect(toF32(readNpy(f4, { dtype: 'f16' }))).toEqual(Float32Array.from([1, -0.5, 3.140625]));
    expect(() => readNpy(f4, { dtype: 'i32' })).toThrow(TypeError);
    expect(() => readNpy(writeNpy(tensor('i32', [1], Int32Array.from([1]))), { dtype: 'f32' })).toThrow(TypeError);
    expect(() => readNpy(u2, { dtype: 'f32' })).toThrow(TypeError);
  });

  it('rejects Fortran order, unsupported dtypes, truncation and non-npy input with clear errors', () => {
    const data = new Uint8Array(24);
    const fortran = handMade(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", data);
    expect(() => readNpy(fortran, { name: 'k.npy' })).toThrow(/k\.npy: fortran_order arrays are not supported/);
    // a Fortran-order vector is the same bytes as C order
    expect(readNpy(handMade(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (6,), }", data)).shape).toEqual([6]);
    expect(() => readNpy(handMade(1, "{'descr': '<u1', 'fortran_order': False, 'shape': (2,), }", data))).toThrow(/dtype <u1 is not supported/);
    expect(() => readNpy(handMade(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", data))).toThrow(/structured/);
    expect(() => readNpy(handMade(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (7,), }", data))).toThrow(/truncated data/);
    expect(() => readNpy(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]))).toThrow(/not a \.npy file/);
    expect(() => readNpy(handMade(1, "{'descr': '<f4', 'shape': (2,) 'fortran_order': False}", data))).toThrow(/malformed header/);
    expect(() => readNpy(handMade(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", data))).toThrow(/malformed header: shape/);
    const v9 = handMade(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", data);
    v9[6] = 9;
    expect(() => readNpy(v9)).toThrow(/version 9/);
  });
});
