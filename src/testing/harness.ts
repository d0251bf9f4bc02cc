// One verification engine for vitest and `select-attn verify`: families register case lists; each
// case runs on a backend with fresh seeded inputs and compares against the family's reference.
import { type BackendName, DeviceTensor, type Tensor, isDeviceBackend, listBackends } from '../backends.js';
import type { HostTensor } from '../tensor.js';

export interface CaseResult {
  pass: boolean;
  /** what was compared and the worst deviation, e.g. "maxRelErr 3.1e-4 <= 2e-3" */
  detail: string;
}

export interface Case {
  /** stable id, e.g. "quest_select(dtype=f16,D=128,bs=16,k=64,G=4,B=3)" */
  id: string;
  family: string;
  /** runs with inputs drawn from `seed` (printed on failure so it can be replayed) */
  run(backend: BackendName, seed: number): CaseResult | Promise<CaseResult>;
}

export interface FamilySuite {
  family: string;
  cases(): Case[];
  /** how `select-attn run <family>` calls the kernel on tensors read from .npy files */
  run?: RunSpec;
  /** a composite family (no backend lists it, e.g. quest_decode): the kernel families it calls; it
   *  runs on the backends that implement all of them */
  requires?: readonly string[];
}

export interface RunSpec {
  /** tensor inputs read from DIR/<name>.npy (SPEC names, camelCase) */
  inputs: readonly string[];
  optionalInputs?: readonly string[];
  /** outputs written to OUT/<name>.npy */
  outputs: readonly string[];
  /** scalar options come from DIR/options.json */
  call(tensors: Record<string, HostTensor>, options: Record<string, unknown>, backend: BackendName): Record<string, HostTensor> | Promise<Record<string, HostTensor>>;
}

/**
 * Backends a family's tests run on: every available backend that implements the family (or all of
 * a composite family's required families), plus cuda when SA_REQUIRE_CUDA=1 (so a missing GPU fails instead of skipping). SA_BACKENDS=a,b narrows it.
 */
export function testBackends(family: string | readonly string[]): BackendName[] {
  const out: BackendName[] = [];
  const requireCuda = process.env.SA_REQUIRE_CUDA === '1';
  const needs = typeof family === 'string' ? [family] : family;
  for (const b of listBackends()) {
    if (b.available && needs.every((f) => b.families.includes(f))) out.push(b.name);
    else if (b.name === 'cuda' && requireCuda) out.push(b.name);
  }
  const only = process.env.SA_BACKENDS?.split(',').filter(Boolean);
  return only ? out.filter((b) => only.includes(b)) : out;
}

/** A seed per run (SA_SEED replays one). */
export function runSeed(): number {
  const s = process.env.SA_SEED;
  return s ? Number(s) : (Date.now() ^ (process.pid << 8)) >>> 0;
}

/** Deterministic PRNG (mulberry32) for data generators. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  /** uniform in [0, 1) */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }
  int(lo: number, hiExclusive: number): number {
    return lo + Math.floor(this.next() * (hiExclusive - lo));
  }
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  shuffle<T>(a: T[]): T[] {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(0, i + 1);
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a;
  }
}

/** Fills a Float32Array/Uint16Array/Int32Array with a poison pattern (NaN for floats, 0x7fc0/0x7e00 for 16-bit, -0x55555556 for ints). */
export function poison(a: Float32Array | Uint16Array | Int32Array, dtype: 'f32' | 'f16' | 'bf16' | 'i32'): void {
  if (dtype === 'f32') (a as Float32Array).fill(NaN);
  else if (dtype === 'f16') (a as Uint16Array).fill(0x7e00);
  else if (dtype === 'bf16') (a as Uint16Array).fill(0x7fc0);
  else (a as Int32Array).fill(-0x55555556);
}

/** Max relative error max|out - ref| / max|ref|; NaN/Inf in out give Infinity. */
export function maxRelErr(out: ArrayLike<number>, ref: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    const o = out[i];
    if (!Number.isFinite(o)) return Infinity;
    num = Math.max(num, Math.abs(o - ref[i]));
    den = Math.max(den, Math.abs(ref[i]));
  }
  return den === 0 ? num : num / den;
}

/**
 * Puts host tensors where a backend needs them: as they are for host backends, uploaded as
 * DeviceTensors for device backends. fetch() brings one back to the host; dispose() frees device copies.
 */
export function place(backend: BackendName, tensors: Record<string, HostTensor | undefined>): Placed {
  const device = isDeviceBackend(backend);
  const args: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(tensors)) if (t) args[k] = device ? DeviceTensor.upload(t, backend) : t;
  return {
    args,
    fetch(name: string): HostTensor {
      const t = args[name];
      return t instanceof DeviceTensor ? t.download() : (t as HostTensor);
    },
    dispose() {
      for (const t of Object.values(args)) if (t instanceof DeviceTensor) t.dispose();
    },
  };
}

export interface Placed {
  args: Record<string, Tensor>;
  fetch(name: string): HostTensor;
  dispose(): void;
}

/** SPEC's minimum support on every backend; cpu accepts any positive headDim and blockSize. */
export const SPEC_MIN_HEAD_DIMS: readonly number[] = [64, 96, 128, 256];
export const SPEC_MIN_BLOCK_SIZES: readonly number[] = [8, 16, 32, 64, 128, 256];

export function inSpecMinimum(p: { D: number; bs: number }): boolean {
  return SPEC_MIN_HEAD_DIMS.includes(p.D) && SPEC_MIN_BLOCK_SIZES.includes(p.bs);
}

/**
 * A passing result when a non-cpu backend refuses a shape outside SPEC's minimum with
 * SA_ERR_UNSUPPORTED (the refusal itself is the contract there); undefined otherwise, so the caller
 * rethrows. The cpu backend must run every positive shape.
 */
export function refusedOutsideMinimum(backend: BackendName, p: { D: number; bs: number }, e: unknown): CaseResult | undefined {
  const err = e as { name?: string; code?: string; message?: string };
  if (backend === 'cpu' || inSpecMinimum(p) || err?.name !== 'SelectAttnError' || err.code !== 'SA_ERR_UNSUPPORTED') return undefined;
  return { pass: true, detail: `rejected with SA_ERR_UNSUPPORTED (shape outside SPEC's minimum): ${err.message}` };
}
