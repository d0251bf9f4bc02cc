// Host tensor helpers: f16/bf16 conversion against exhaustive bit patterns, ndarray adapters, strides.
import ndarray from 'ndarray';
import { describe, expect, it } from 'vitest';
import {
  bf16BitsToF32, contiguousData, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits, fromNdarray, tensor, toNdarray,
} from './tensor.js';

describe('f16 conversion', () => {
  it('round-trips every finite f16 bit pattern', () => {
    for (let h = 0; h < 0x10000; h++) {
      const e = (h >> 10) & 0x1f;
      if (e === 31) continue;
      const f = f16BitsToF32(h);
      const back = f32ToF16Bits(f);
      // +0/-0 keep their sign bits; everything else returns exactly
      expect(back).toBe(h);
    }
  });
  it('rounds to nearest even between neighbours and saturates to inf', () => {
    const one = 0x3c00;
    const next = f16BitsToF32(one + 1);
    const mid = (1 + next) / 2;
    expect(f32ToF16Bits(mid)).toBe(one); // tie -> even mantissa
    expect(f32ToF16Bits(Math.fround(mid + 1e-7))).toBe(one + 1);
    expect(f32ToF16Bits(65520)).toBe(0x7c00);
    expect(f32ToF16Bits(65519)).toBe(0x7bff);
    expect(f32ToF16Bits(-1e9)).toBe(0xfc00);
    expect(f32ToF16Bits(2 ** -25)).toBe(0); // tie at half the smallest subnormal -> 0
    expect(f32ToF16Bits(2 ** -24)).toBe(1);
    expect(Number.isNaN(f16BitsToF32(f32ToF16Bits(NaN)))).toBe(true);
  });
});

describe('bf16 conversion', () => {
  it('round-trips every finite bf16 bit pattern', () => {
    for (let h = 0; h < 0x10000; h++) {
      if (((h >> 7) & 0xff) === 0xff) continue;
      expect(f32ToBf16Bits(bf16BitsToF32(h))).toBe(h);
    }
  });
  it('rounds to nearest even', () => {
    expect(f32ToBf16Bits(1 + 2 ** -8)).toBe(0x3f80); // tie -> even
    expect(f32ToBf16Bits(1 + 2 ** -8 + 2 ** -12)).toBe(0x3f81);
    expect(f32ToBf16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82); // tie -> even (up)
  });
});

describe('tensors and ndarray', () => {
  it('shares data with ndarray both ways', () => {
    const a = ndarray(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
    const t = fromNdarray(a);
    expect(t.shape).toEqual([2, 3]);
    expect(t.dtype).toBe('f32');
    t.data[4] = 9;
    expect(a.get(1, 1)).toBe(9);
    const back = toNdarray(t);
    expect(back.get(1, 1)).toBe(9);
  });
  it('compacts a transposed view', () => {
    const a = ndarray(new Int32Array([1, 2, 3, 4, 5, 6]), [2, 3]).transpose(1, 0);
    const t = fromNdarray(a);
    expect(Array.from(contiguousData(t))).toEqual([1, 4, 2, 5, 3, 6]);
  });
  it('rejects data shorter than its shape', () => {
    expect(() => tensor('f32', [4, 4], new Float32Array(15))).toThrow(RangeError);
  });
});
