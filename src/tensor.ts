// Host tensors: plain {dtype, shape, strides, data} objects, ndarray adapters and f16/bf16 helpers.
import ndarray from 'ndarray';

export type DType = 'f32' | 'f16' | 'bf16' | 'i32';
export type FloatDType = 'f32' | 'f16' | 'bf16';
export type TypedData = Float32Array | Uint16Array | Int32Array;

/** A host tensor. f16/bf16 data are 16-bit words in a Uint16Array. Strides and offset count elements. */
export interface HostTensor {
  dtype: DType;
  shape: number[];
  strides: number[];
  data: TypedData;
  offset?: number;
}

export const DTYPES: readonly DType[] = ['f32', 'f16', 'bf16', 'i32'];

export function dtypeSize(dt: DType): number {
  return dt === 'f32' || dt === 'i32' ? 4 : 2;
}

export function arrayFor(dt: DType, n: number): TypedData {
  if (dt === 'f32') return new Float32Array(n);
  if (dt === 'i32') return new Int32Array(n);
  return new Uint16Array(n);
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function contiguousStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/**
 * Makes a contiguous host tensor; allocates zeroed data when none is given.
 * @throws RangeError when data is shorter than the shape needs.
 */
export function tensor(dtype: DType, shape: number[], data?: TypedData | number[]): HostTensor {
  const n = numel(shape);
  let d: TypedData;
  if (data === undefined) d = arrayFor(dtype, n);
  else if (Array.isArray(data)) {
    d = arrayFor(dtype, n);
    if (dtype === 'f16' || dtype === 'bf16') d.set(dtype === 'f16' ? f32ToF16(data) : f32ToBf16(data));
    else d.set(data);
  } else d = data;
  if (d.length < n) throw new RangeError(`tensor: data holds ${d.length} elements, shape [${shape}] needs ${n}`);
  return { dtype, shape: [...shape], strides: contiguousStrides(shape), data: d, offset: 0 };
}

export function isContiguous(t: HostTensor): boolean {
  const s = contiguousStrides(t.shape);
  return t.shape.every((n, i) => n <= 1 || t.strides[i] === s[i]);
}

/** The tensor's elements as one contiguous typed array (the same array when already contiguous and unoffset). */
export function contiguousData(t: HostTensor): TypedData {
  const n = numel(t.shape);
  const off = t.offset ?? 0;
  if (isContiguous(t)) return off === 0 && t.data.length === n ? t.data : t.data.subarray(off, off + n);
  const out = arrayFor(t.dtype, n);
  const idx = new Array<number>(t.shape.length).fill(0);
  for (let i = 0; i < n; i++) {
    let o = off;
    for (let d = 0; d < idx.length; d++) o += idx[d] * t.strides[d];
    out[i] = t.data[o];
    for (let d = idx.length - 1; d >= 0; d--) {
      if (++idx[d] < t.shape[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

// ---- f16 / bf16 conversion (round to nearest even) ----
const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

export function f32ToBf16Bits(x: number): number {
  f32buf[0] = x;
  const u = u32buf[0];
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 0x40) & 0xffff;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

export function bf16BitsToF32(h: number): number {
  u32buf[0] = (h & 0xffff) << 16;
  return f32buf[0];
}

export function f32ToF16Bits(x: number): number {
  f32buf[0] = x;
  const u = u32buf[0];
  const sign = (u >>> 16) & 0x8000;
  const a = u & 0x7fffffff;
  if (a > 0x7f800000) return sign | 0x7e00;
  if (a >= 0x477ff000) return sign | 0x7c00;
  if (a < 0x38800000) {
    if (a < 0x33000000) return sign;
    const e = a >>> 23;
    const m = (a & 0x7fffff) | 0x800000;
    const shift = 126 - e;
    let res = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (res & 1))) res++;
    return sign | res;
  }
  let res = (a - 0x38000000) >>> 13;
  const rem = a & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (res & 1))) res++;
  return sign | res;
}

export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

export function f32ToF16(src: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32ToF16Bits(src[i]);
  return out;
}
export function f16ToF32(src: ArrayLike<number>): Float32Array {
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f16BitsToF32(src[i]);
  return out;
}
export function f32ToBf16(src: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32ToBf16Bits(src[i]);
  return out;
}
export function bf16ToF32(src: ArrayLike<number>): Float32Array {
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = bf16BitsToF32(src[i]);
  return out;
}

/** Values of any host tensor as f32 (contiguous order). */
export function toF32(t: HostTensor): Float32Array {
  const d = contiguousData(t);
  if (t.dtype === 'f16') return f16ToF32(d);
  if (t.dtype === 'bf16') return bf16ToF32(d);
  return d instanceof Float32Array ? d : Float32Array.from(d);
}

/** Encodes f32 values into a new tensor of dtype dt (rounded to nearest even for f16/bf16). */
export function fromF32(dt: DType, shape: number[], values: ArrayLike<number>): HostTensor {
  if (dt === 'f16') return tensor(dt, shape, f32ToF16(values));
  if (dt === 'bf16') return tensor(dt, shape, f32ToBf16(values));
  if (dt === 'i32') return tensor(dt, shape, Int32Array.from(values));
  return tensor(dt, shape, Float32Array.from(values));
}

// ---- ndarray adapters ----
/** Wraps an ndarray (sharing its data). f16/bf16 ndarrays hold Uint16Array data; pass dtype to say which. */
export function fromNdarray(a: ndarray.NdArray, dtype?: DType): HostTensor {
  const d = a.data as unknown;
  const dt: DType = dtype ?? (d instanceof Float32Array ? 'f32' : d instanceof Int32Array ? 'i32' : d instanceof Uint16Array ? 'f16' : 'f32');
  if (!(d instanceof Float32Array || d instanceof Uint16Array || d instanceof Int32Array))
    throw new TypeError('fromNdarray: data must be a Float32Array, Uint16Array or Int32Array');
  return { dtype: dt, shape: [...a.shape], strides: [...a.stride], data: d, offset: a.offset };
}

/** An ndarray view of a host tensor (sharing its data). */
export function toNdarray(t: HostTensor): ndarray.NdArray<TypedData> {
  return ndarray(t.data, t.shape, t.strides, t.offset ?? 0);
}
