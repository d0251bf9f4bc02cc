// .npy files (NumPy format versions 1, 2 and 3, C order) to and from host tensors, for `select-attn run`.
// bf16 has no NumPy dtype: it travels as `<u2` (the raw 16-bit words), and `<u2` reads as bf16 unless
// the caller asks for another dtype. `<f8` and `<i8` read into f32 / i32 with range checks.
import { type DType, type HostTensor, arrayFor, contiguousData, f32ToBf16Bits, f32ToF16Bits, f16BitsToF32, numel, tensor } from './tensor.js';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/** NumPy descr written for each dtype (bf16 as raw words). */
export const NPY_DESCR: Readonly<Record<DType, string>> = { f32: '<f4', f16: '<f2', bf16: '<u2', i32: '<i4' };

export interface ReadNpyOptions {
  /** dtype wanted; default from the file (`<u2` means bf16). See readNpy for the conversions allowed. */
  dtype?: DType;
  /** name used in error messages (e.g. the file name) */
  name?: string;
}

export interface NpyHeader {
  version: [number, number];
  descr: string;
  fortranOrder: boolean;
  shape: number[];
  /** byte offset of the data */
  dataOffset: number;
}

const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// ---- the header: a Python dict literal such as {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } ----
type PyValue = string | number | boolean | PyValue[] | { [k: string]: PyValue };

function parsePyLiteral(src: string, where: string): PyValue {
  let i = 0;
  const fail = (what: string): never => {
    throw new Error(`${where}: malformed header (${what} at character ${i}): ${JSON.stringify(src.trim())}`);
  };
  const ws = () => {
    while (i < src.length && /\s/.test(src[i])) i++;
  };
  const value = (): PyValue => {
    ws();
    const c = src[i];
    if (c === "'" || c === '"') {
      const end = src.indexOf(c, i + 1);
      if (end < 0) fail('unterminated string');
      const s = src.slice(i + 1, end);
      i = end + 1;
      return s;
    }
    if (c === '{' || c === '(' || c === '[') {
      const close = c === '{' ? '}' : c === '(' ? ')' : ']';
      i++;
      const obj: Record<string, PyValue> = {};
      const arr: PyValue[] = [];
      for (;;) {
        ws();
        if (src[i] === close) {
          i++;
          break;
        }
        const v = value();
        if (c === '{') {
          ws();
          if (src[i] !== ':') fail("expected ':'");
          i++;
          if (typeof v !== 'string') fail('non-string key');
          obj[v as string] = value();
        } else arr.push(v);
        ws();
        if (src[i] === ',') i++;
        else if (src[i] !== close) fail(`expected ',' or '${close}'`);
      }
      return c === '{' ? obj : arr;
    }
    const m = /^(True|False|-?\d+L?)/.exec(src.slice(i));
    if (!m) return fail('unexpected token');
    i += m[0].length;
    if (m[0] === 'True' || m[0] === 'False') return m[0] === 'True';
    return Number(m[0].replace('L', ''));
  };
  const v = value();
  ws();
  if (i !== src.length) fail('trailing characters');
  return v;
}

/**
 * Parses the header of a .npy file.
 * @throws Error on a file that is not .npy or a malformed header.
 */
export function readNpyHeader(bytes: Uint8Array, name = 'npy'): NpyHeader {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) throw new Error(`${name}: not a .npy file (missing the \\x93NUMPY magic)`);
  const major = bytes[6];
  const minor = bytes[7];
  if (major < 1 || major > 3) throw new Error(`${name}: .npy format version ${major}.${minor} is not supported (1, 2 or 3)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lenBytes = major === 1 ? 2 : 4;
  if (bytes.length < 8 + lenBytes) throw new Error(`${name}: truncated header`);
  const hlen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  const start = 8 + lenBytes;
  if (start + hlen > bytes.length) throw new Error(`${name}: truncated header (${hlen} bytes announced, ${bytes.length - start} present)`);
  const raw = bytes.subarray(start, start + hlen);
  const text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(raw);
  const h = parsePyLiteral(text, name);
  if (typeof h !== 'object' || Array.isArray(h)) throw new Error(`${name}: malformed header: not a dict`);
  const d = h as Record<string, PyValue>;
  if (typeof d.descr !== 'string') throw new TypeError(`${name}: structured or missing descr ${JSON.stringify(d.descr)}; only plain dtypes are supported`);
  if (typeof d.fortran_order !== 'boolean') throw new Error(`${name}: malformed header: fortran_order missing`);
  if (!Array.isArray(d.shape) || !d.shape.every((n) => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0))
    throw new Error(`${name}: malformed header: shape ${JSON.stringify(d.shape)}`);
  return { version: [major, minor], descr: d.descr, fortranOrder: d.fortran_order, shape: d.shape as number[], dataOffset: start + hlen };
}

interface Descr {
  kind: 'f' | 'i' | 'u';
  size: number;
  little: boolean;
}

function parseDescr(descr: string, name: string): Descr {
  const m = /^([<>|=]?)([fiu])(\d+)$/.exec(descr);
  const ok = '<f4 (f32), <f2 (f16), <u2 (bf16 words), <i4 (i32), <f8 and <i8 (converted)';
  if (!m) throw new TypeError(`${name}: dtype ${descr} is not supported; supported: ${ok}`);
  const size = Number(m[3]);
  const key = m[2] + size;
  if (!['f4', 'f2', 'f8', 'u2', 'i4', 'i8'].includes(key)) throw new TypeError(`${name}: dtype ${descr} is not supported; supported: ${ok}`);
  return { kind: m[2] as Descr['kind'], size, little: m[1] === '>' ? false : m[1] === '=' ? HOST_LE : true };
}

const F32_MAX = 3.4028234663852886e38;

/**
 * Reads a .npy file into a contiguous host tensor.
 *
 * File dtype to tensor dtype: `<f4` f32, `<f2` f16, `<u2` bf16 (raw words), `<i4` i32; `<f8` to f32
 * and `<i8` to i32 after range checks; big-endian files are byte-swapped. With `options.dtype`:
 * any float file converts by value to f32/f16/bf16 (round to nearest even), `<u2` may also be read
 * as f16 words, integer files only as i32.
 * @throws Error on a malformed or truncated file; TypeError on an unsupported dtype, Fortran order
 *   or a conversion that makes no sense; RangeError on values outside the target's range.
 */
export function readNpy(bytes: Uint8Array, options: ReadNpyOptions = {}): HostTensor {
  const name = options.name ?? 'npy';
  const h = readNpyHeader(bytes, name);
  if (h.fortranOrder && h.shape.filter((n) => n > 1).length > 1)
    throw new TypeError(`${name}: fortran_order arrays are not supported; save a C-order array (numpy.ascontiguousarray)`);
  const d = parseDescr(h.descr, name);
  const n = numel(h.shape);
  const need = n * d.size;
  const avail = bytes.length - h.dataOffset;
  if (avail < need) throw new Error(`${name}: truncated data: shape [${h.shape}] ${h.descr} needs ${need} bytes, file holds ${avail}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset + h.dataOffset, need);
  const le = d.little;
  const target = options.dtype ?? (d.kind === 'f' ? (d.size === 2 ? 'f16' : 'f32') : d.kind === 'u' ? 'bf16' : 'i32');
  const shape = [...h.shape];

  if (d.kind === 'i') {
    if (target !== 'i32') throw new TypeError(`${name}: an integer array (${h.descr}) cannot be read as ${target}`);
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      if (d.size === 4) out[i] = dv.getInt32(4 * i, le);
      else {
        const v = dv.getBigInt64(8 * i, le);
        if (v < -2147483648n || v > 2147483647n) throw new RangeError(`${name}: element ${i} = ${v} does not fit in int32`);
        out[i] = Number(v);
      }
    }
    return tensor('i32', shape, out);
  }
  if (d.kind === 'u') {
    // raw 16-bit words: bf16 by default, f16 on request
    if (target !== 'bf16' && target !== 'f16') throw new TypeError(`${name}: ${h.descr} holds raw bf16/f16 words and cannot be read as ${target}`);
    const out = new Uint16Array(n);
    for (let i = 0; i < n; i++) out[i] = dv.getUint16(2 * i, le);
    return tensor(target, shape, out);
  }
  // floats
  if (target === 'i32') throw new TypeError(`${name}: a float array (${h.descr}) cannot be read as i32`);
  const get = d.size === 2 ? (i: number) => f16BitsToF32(dv.getUint16(2 * i, le)) : d.size === 4 ? (i: number) => dv.getFloat32(4 * i, le) : (i: number) => dv.getFloat64(8 * i, le);
  if (d.size === 2 && target === 'f16') {
    const out = new Uint16Array(n);
    for (let i = 0; i < n; i++) out[i] = dv.getUint16(2 * i, le);
    return tensor('f16', shape, out);
  }
  const out = arrayFor(target, n);
  for (let i = 0; i < n; i++) {
    const v = get(i);
    if (d.size === 8 && Number.isFinite(v) && Math.abs(v) > F32_MAX) throw new RangeError(`${name}: element ${i} = ${v} overflows float32`);
    out[i] = target === 'f32' ? v : target === 'f16' ? f32ToF16Bits(v) : f32ToBf16Bits(v);
  }
  return tensor(target, shape, out);
}

/**
 * Encodes a host tensor as a .npy file (version 1.0, C order, little-endian; bf16 as `<u2`).
 * @throws TypeError on an unknown dtype.
 */
export function writeNpy(t: HostTensor): Uint8Array {
  const descr = NPY_DESCR[t.dtype];
  if (!descr) throw new TypeError(`writeNpy: unknown dtype ${String(t.dtype)}`);
  const shapeStr = t.shape.length === 1 ? `(${t.shape[0]},)` : `(${t.shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeStr}, }`;
  const major = header.length + 11 > 65535 ? 2 : 1;
  const pre = major === 1 ? 10 : 12;
  const total = Math.ceil((pre + header.length + 1) / 64) * 64;
  header = header.padEnd(total - pre - 1, ' ') + '\n';
  const data = contiguousData(t);
  const size = t.dtype === 'f32' || t.dtype === 'i32' ? 4 : 2;
  const n = numel(t.shape);
  const out = new Uint8Array(total + n * size);
  out.set(MAGIC, 0);
  out[6] = major;
  out[7] = 0;
  const dv = new DataView(out.buffer);
  if (major === 1) dv.setUint16(8, header.length, true);
  else dv.setUint32(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[pre + i] = header.charCodeAt(i);
  if (HOST_LE) out.set(new Uint8Array(data.buffer, data.byteOffset, n * size), total);
  else
    for (let i = 0; i < n; i++) {
      if (t.dtype === 'f32') dv.setFloat32(total + 4 * i, data[i], true);
      else if (t.dtype === 'i32') dv.setInt32(total + 4 * i, data[i], true);
      else dv.setUint16(total + 2 * i, data[i], true);
    }
  return out;
}
