// Backends and device tensors: listBackends(), DeviceTensor (upload/download/dispose), synchronize().
import { fromNative, typeError } from './errors.js';
import { native, type NativeBackendInfo } from './native.js';
import { type DType, type HostTensor, arrayFor, contiguousData, contiguousStrides, dtypeSize, numel } from './tensor.js';

export type BackendName = 'cpu' | 'cuda' | 'ascend' | 'ascend-sim' | 'metal';
export const BACKENDS: readonly BackendName[] = ['cpu', 'cuda', 'ascend', 'ascend-sim', 'metal'];

export type BackendInfo = NativeBackendInfo & { name: BackendName };

/** Every backend this build knows, with whether it is usable here and why not. */
export function listBackends(): BackendInfo[] {
  cachedList ??= native().listBackends() as BackendInfo[];
  return cachedList.map((b) => ({ ...b }));
}
let cachedList: BackendInfo[] | undefined;

export function isAvailable(b: BackendName): boolean {
  return listBackends().some((x) => x.name === b && x.available);
}

export function isDeviceBackend(b: BackendName): boolean {
  return listBackends().some((x) => x.name === b && x.device);
}

/** Sets the cpu backend's thread count (workers + caller); returns the count in effect. */
export function setNumThreads(n?: number): number {
  return native().setNumThreads(n);
}

const registry = new FinalizationRegistry<object>((h) => {
  try {
    native().deviceFree(h);
  } catch {
    /* already freed */
  }
});

/** A tensor in a device backend's memory. Kernels on that backend read and write it without host copies. */
export class DeviceTensor {
  readonly dtype: DType;
  readonly shape: number[];
  readonly strides: number[];
  readonly backend: BackendName;
  /** @internal native handle */
  handle: object | null;

  private constructor(backend: BackendName, dtype: DType, shape: number[], handle: object) {
    this.backend = backend;
    this.dtype = dtype;
    this.shape = [...shape];
    this.strides = contiguousStrides(shape);
    this.handle = handle;
    registry.register(this, handle, this);
  }

  get bytes(): number {
    return numel(this.shape) * dtypeSize(this.dtype);
  }

  /**
   * Allocates an uninitialized device tensor.
   * @throws SelectAttnError SA_ERR_UNSUPPORTED when the backend has no device memory, SA_ERR_OOM when full.
   */
  static empty(backend: BackendName, dtype: DType, shape: number[]): DeviceTensor {
    const ctx = { family: 'device', backend };
    if (!shape.every((n) => Number.isInteger(n) && n >= 0)) throw typeError(ctx, 'shape', 'non-negative integers', `[${shape}]`);
    try {
      const h = native().deviceAlloc(backend, numel(shape) * dtypeSize(dtype));
      return new DeviceTensor(backend, dtype, shape, h);
    } catch (e) {
      throw fromNative(e, ctx);
    }
  }

  /** Copies a host tensor to a new device tensor. @throws as empty() */
  static upload(t: HostTensor, backend: BackendName): DeviceTensor {
    const d = DeviceTensor.empty(backend, t.dtype, t.shape);
    d.write(t);
    return d;
  }

  /** Overwrites this tensor with a host tensor of the same size. @throws RangeError on a size mismatch. */
  write(t: HostTensor): void {
    const data = contiguousData(t);
    if (data.byteLength !== this.bytes) throw new RangeError(`DeviceTensor.write: ${data.byteLength} bytes into ${this.bytes}`);
    try {
      native().deviceCopy(this.live(), data, 0, 'upload');
    } catch (e) {
      throw fromNative(e, { family: 'device', backend: this.backend });
    }
  }

  /** Copies the tensor to the host (waits for queued work first). @throws SelectAttnError on device errors. */
  download(): HostTensor {
    const data = arrayFor(this.dtype, numel(this.shape));
    try {
      native().synchronize(this.backend);
      native().deviceCopy(this.live(), data, 0, 'download');
    } catch (e) {
      throw fromNative(e, { family: 'device', backend: this.backend });
    }
    return { dtype: this.dtype, shape: [...this.shape], strides: contiguousStrides(this.shape), data, offset: 0 };
  }

  /** Frees the device memory now (the finalizer does it otherwise). */
  dispose(): void {
    if (!this.handle) return;
    registry.unregister(this);
    native().deviceFree(this.handle);
    this.handle = null;
  }

  private live(): object {
    if (!this.handle) throw new Error('DeviceTensor: used after dispose()');
    return this.handle;
  }
}

export type Tensor = HostTensor | DeviceTensor;

/**
 * A zeroed contiguous host tensor in native memory. With `hugePages` the memory is 2 MiB-aligned and
 * advised for transparent huge pages (Linux): large KV pools read as scattered blocks then miss the
 * TLB far less (measured: dense cpu decode on shuffled blocks 29.0 -> 25.1 ms, see
 * experiments/1_paged_attention). Freed when the tensor is garbage collected.
 * @throws RangeError on a bad shape; SelectAttnError SA_ERR_OOM when the memory cannot be had.
 */
export function hostTensor(dtype: DType, shape: number[], opts: { hugePages?: boolean } = {}): HostTensor {
  if (!Array.isArray(shape) || !shape.every((n) => Number.isSafeInteger(n) && n >= 0))
    throw new RangeError(`hostTensor: shape must be non-negative integers, received ${JSON.stringify(shape)}`);
  const n = numel(shape);
  let buf: ArrayBuffer;
  try {
    buf = native().allocHost(n * dtypeSize(dtype), opts.hugePages === true);
  } catch (e) {
    throw fromNative(e, { family: 'hostTensor', backend: 'cpu' });
  }
  const data = dtype === 'f32' ? new Float32Array(buf) : dtype === 'i32' ? new Int32Array(buf) : new Uint16Array(buf);
  return { dtype, shape: [...shape], strides: contiguousStrides(shape), data, offset: 0 };
}

export function isDeviceTensor(t: unknown): t is DeviceTensor {
  return t instanceof DeviceTensor;
}

/**
 * Waits for every kernel queued on a device backend; reports errors recorded on the device.
 * @throws SelectAttnError SA_ERR_INVALID_ARG for ids outside a pool seen by a kernel, SA_ERR_DEVICE otherwise.
 */
export function synchronize(backend: BackendName): void {
  try {
    native().synchronize(backend);
  } catch (e) {
    throw fromNative(e, { family: 'synchronize', backend });
  }
}
