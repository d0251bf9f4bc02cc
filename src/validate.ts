// Argument validation shared by every op (SPEC section 5): checks run before any memory is touched.
import { type BackendName, BACKENDS, DeviceTensor, type Tensor, isDeviceBackend } from './backends.js';
import { type ErrorContext, rangeError, typeError, unsupported } from './errors.js';
import { type DType, type HostTensor, type TypedData, contiguousData, isContiguous, numel } from './tensor.js';

export interface CallOptions {
  /** Backend to run on. Default: the backend of the device tensors, else 'cpu'. */
  backend?: BackendName;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `array(${v.length})`;
  if (ArrayBuffer.isView(v)) return v.constructor.name;
  if (typeof v === 'object') return 'object' + ('dtype' in (v as object) ? ` dtype=${String((v as { dtype: unknown }).dtype)}` : '');
  return `${typeof v} ${String(v)}`;
}

const ARRAY_OF: Record<DType, string> = { f32: 'Float32Array', f16: 'Uint16Array', bf16: 'Uint16Array', i32: 'Int32Array' };

export interface TensorSpec {
  dtypes: readonly DType[];
  rank: number;
  /** expected dims; undefined entries are free */
  shape?: readonly (number | undefined)[];
}

/** One call's validation state: its error context, the chosen backend and the arguments for native. */
export class Checker {
  readonly ctx: ErrorContext;
  readonly native: Record<string, unknown> = {};

  constructor(family: string, tensors: Record<string, unknown>, opts: CallOptions | undefined) {
    const dev = Object.values(tensors).filter((t): t is DeviceTensor => t instanceof DeviceTensor);
    let backend: BackendName = opts?.backend ?? (dev.length ? dev[0].backend : 'cpu');
    // String(): the error must carry a string backend even when a caller passed something else
    this.ctx = { family, backend: String(backend) };
    if (opts !== undefined && (typeof opts !== 'object' || opts === null)) throw typeError(this.ctx, 'options', 'an object', describe(opts));
    if (typeof backend !== 'string') throw typeError(this.ctx, 'backend', BACKENDS.join(' | '), describe(backend));
    if (!BACKENDS.includes(backend)) throw rangeError(this.ctx, 'backend', BACKENDS.join(' | '), String(backend));
    for (const [name, t] of Object.entries(tensors)) {
      if (t instanceof DeviceTensor && t.backend !== backend)
        throw typeError(this.ctx, name, `a tensor on backend ${backend}`, `a tensor on ${t.backend}`);
    }
    backend = this.ctx.backend as BackendName;
    this.device = isDeviceBackend(backend);
  }

  readonly device: boolean;

  get backend(): BackendName {
    return this.ctx.backend as BackendName;
  }

  /** The call's argument object must be an object (TypeError otherwise). */
  argsObject(a: unknown): void {
    if (typeof a !== 'object' || a === null || Array.isArray(a)) throw typeError(this.ctx, 'arguments', 'an object of named tensors and options', describe(a));
  }

  /** Checks kind, dtype, rank and dims; records the value for native under `name`. */
  tensor(name: string, t: unknown, spec: TensorSpec, optional = false): Tensor | undefined {
    if (t === undefined || t === null) {
      if (optional) return undefined;
      throw typeError(this.ctx, name, 'a tensor', describe(t));
    }
    const isDev = t instanceof DeviceTensor;
    if (!isDev) {
      const h = t as Partial<HostTensor>;
      if (typeof h !== 'object' || !Array.isArray(h.shape) || !ArrayBuffer.isView(h.data) || typeof h.dtype !== 'string')
        throw typeError(this.ctx, name, 'a tensor {dtype, shape, strides, data}', describe(t));
    }
    const tt = t as Tensor;
    if (!spec.dtypes.includes(tt.dtype)) throw typeError(this.ctx, `${name}.dtype`, spec.dtypes.join(' | '), String(tt.dtype));
    if (tt.shape.length !== spec.rank) throw typeError(this.ctx, `${name}`, `rank ${spec.rank}`, `rank ${tt.shape.length} [${tt.shape}]`);
    tt.shape.forEach((d, i) => {
      if (!Number.isSafeInteger(d) || d < 0) throw rangeError(this.ctx, `${name}.shape[${i}]`, 'a non-negative integer', String(d));
    });
    spec.shape?.forEach((d, i) => {
      if (d !== undefined && tt.shape[i] !== d) throw rangeError(this.ctx, `${name}.shape[${i}]`, String(d), `${tt.shape[i]} (shape [${tt.shape}])`);
    });
    if (tt instanceof DeviceTensor) {
      if (!this.device) throw typeError(this.ctx, name, `a host tensor for backend ${this.backend}`, `a device tensor on ${tt.backend}`);
      if (!tt.handle) throw typeError(this.ctx, name, 'a live device tensor', 'a disposed one');
      this.native[name] = tt.handle;
      return tt;
    }
    const h = tt as HostTensor;
    if (this.device) throw typeError(this.ctx, name, `a DeviceTensor on ${this.backend}`, 'a host tensor');
    if (h.data.constructor.name !== ARRAY_OF[h.dtype]) throw typeError(this.ctx, `${name}.data`, ARRAY_OF[h.dtype], h.data.constructor.name);
    if (!Array.isArray(h.strides) || h.strides.length !== h.shape.length || !h.strides.every((s) => Number.isSafeInteger(s)))
      throw typeError(this.ctx, `${name}.strides`, `${h.shape.length} integers`, describe(h.strides));
    const off = h.offset ?? 0;
    let last = off;
    let first = off;
    h.shape.forEach((d, i) => {
      if (d > 0) (h.strides[i] >= 0 ? (last += (d - 1) * h.strides[i]) : (first += (d - 1) * h.strides[i]));
    });
    if (numel(h.shape) > 0 && (first < 0 || last >= h.data.length || !Number.isSafeInteger(off)))
      throw rangeError(this.ctx, `${name}.data`, `at least ${last + 1} elements from offset ${off}`, `${h.data.length}`);
    this.native[name] = numel(h.shape) === 0 ? h.data.subarray(0, 0) : contiguousData(h);
    return h;
  }

  /** Like tensor(), for outputs written in place: host outputs must be contiguous (no copy-back). */
  output(name: string, t: unknown, spec: TensorSpec, optional = false): Tensor | undefined {
    const r = this.tensor(name, t, spec, optional);
    if (r && !(r instanceof DeviceTensor) && !isContiguous(r)) throw rangeError(this.ctx, name, 'a contiguous tensor (written in place)', `strides [${r.strides}]`);
    return r;
  }

  /** Host int32 contents of a tensor already checked, or undefined on a device backend. */
  ints(name: string): Int32Array | undefined {
    const v = this.native[name];
    return v instanceof Int32Array ? v : undefined;
  }

  int(name: string, v: unknown, min: number, max = 2 ** 31 - 1): number {
    if (typeof v !== 'number') throw typeError(this.ctx, name, 'an integer', describe(v));
    if (!Number.isInteger(v) || v < min || v > max) throw rangeError(this.ctx, name, `an integer in [${min}, ${max}]`, String(v));
    return v;
  }

  num(name: string, v: unknown, ok: (x: number) => boolean, expected: string): number {
    if (typeof v !== 'number') throw typeError(this.ctx, name, 'a number', describe(v));
    if (!ok(v)) throw rangeError(this.ctx, name, expected, String(v));
    return v;
  }

  oneOf<T extends string>(name: string, v: unknown, options: readonly T[]): T {
    if (typeof v !== 'string') throw typeError(this.ctx, name, options.join(' | '), describe(v));
    if (!options.includes(v as T)) throw rangeError(this.ctx, name, options.join(' | '), v);
    return v as T;
  }

  /** seqLens must be >= 0 and fit their table: ceil(len / per) <= width. Returns host lengths or undefined on device. */
  seqLens(name: string, tableName: string, width: number, per: number): Int32Array | undefined {
    const lens = this.ints(name);
    if (!lens) return undefined;
    lens.forEach((l, b) => {
      if (l < 0) throw rangeError(this.ctx, `${name}[${b}]`, 'a non-negative length', String(l));
      const need = Math.ceil(l / per);
      if (need > width) throw rangeError(this.ctx, tableName, `at least ${need} columns for ${name}[${b}] = ${l}`, `${width} columns`);
    });
    return lens;
  }

  /** Ids of the used entries (first count(b) of each row) must lie in [0, pool). Host tables only. */
  tableIds(name: string, width: number, count: (b: number) => number, pool: number): void {
    const t = this.ints(name);
    if (!t) return;
    const rows = width === 0 ? 0 : t.length / width;
    for (let b = 0; b < rows; b++) {
      const n = count(b);
      for (let j = 0; j < n; j++) {
        const id = t[b * width + j];
        if (id < 0 || id >= pool) throw rangeError(this.ctx, `${name}[${b}, ${j}]`, `a block id in [0, ${pool})`, String(id));
      }
    }
  }

  fail(message: string): never {
    throw unsupported(this.ctx, message);
  }
}

export function hostData(t: Tensor): TypedData | undefined {
  return t instanceof DeviceTensor ? undefined : (t as HostTensor).data;
}
