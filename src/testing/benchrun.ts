// The benchmark engine behind `select-attn bench`: for each point of a sweep and each backend, warm
// up, time samples of back-to-back calls, and measure the streaming-read ceiling of the same bytes
// on the same backend in the same run (samples interleaved with the kernel's, so drift hits both).
import type { BackendName } from '../backends.js';
import { native } from '../native.js';
import { deviceDescription } from '../cli/sysinfo.js';
import type { BenchFamily, ParamValue } from './bench.js';

export interface BenchSweep {
  name: string;
  values: ParamValue[];
}

export interface BenchOptions {
  backends: BackendName[];
  /** a value for every parameter of the family (defaults already applied) */
  base: Record<string, ParamValue>;
  /** swept parameters; several give their cartesian product (first one outermost) */
  sweep?: BenchSweep[];
  /** calls per timed sample; default: calibrated so a sample takes about targetSampleMs */
  reps?: number;
  /** timed samples per case (default 11) */
  samples?: number;
  targetSampleMs?: number;
  /** measure the streaming-read ceiling (default true) */
  ceiling?: boolean;
  onProgress?: (done: number, total: number, label: string) => void;
}

export interface BenchResult {
  params: Record<string, ParamValue>;
  backend: BackendName;
  medianUs: number;
  p10Us: number;
  p90Us: number;
  bytes: number;
  gbps: number;
  /** GB/s of a plain streaming read of `bytes` bytes on the same backend; null when it has none */
  ceilingGbps: number | null;
  fractionOfCeiling: number | null;
  tflops?: number;
  reps: number;
  samples: number;
  /** set when setup or timing failed for this point; the numbers are then NaN */
  error?: string;
  [extra: string]: unknown;
}

export interface BenchReport {
  family: string;
  /** the backend, or the backends joined by ',' */
  backend: string;
  backends: BackendName[];
  /** the device of each backend, joined by '; ' when several */
  device: string;
  devices: Record<string, string>;
  date: string;
  cases: BenchResult[];
}

/** Linear-interpolated quantile of sorted values. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/** Every combination of the swept values over `base` (base alone when nothing is swept). */
export function expandSweep(base: Record<string, ParamValue>, sweep: readonly BenchSweep[] = []): Record<string, ParamValue>[] {
  let out: Record<string, ParamValue>[] = [{ ...base }];
  for (const s of sweep) out = out.flatMap((p) => s.values.map((v) => ({ ...p, [s.name]: v })));
  return out;
}

/** Ms per streaming pass over `bytes` (at least 4096) on a backend, or null when the backend has no ceiling. */
function ceilingMs(backend: BackendName, bytes: number, reps: number): number | null {
  try {
    return native().measureCeiling(backend, Math.max(4096, Math.round(bytes)), reps);
  } catch {
    return null;
  }
}

const STD_KEYS = new Set(['params', 'backend', 'medianUs', 'p10Us', 'p90Us', 'bytes', 'gbps', 'ceilingGbps', 'fractionOfCeiling', 'tflops', 'reps', 'samples', 'error']);

/**
 * Runs a family's benchmark over the sweep on each backend.
 * @throws only for programming errors; a point whose setup or timing throws is reported with `error`.
 */
export async function runBench(bench: BenchFamily, opts: BenchOptions): Promise<BenchReport> {
  const points = expandSweep(opts.base, opts.sweep);
  const samples = Math.max(1, opts.samples ?? 11);
  const target = opts.targetSampleMs ?? 25;
  const swept = (opts.sweep ?? []).map((s) => s.name);
  const total = points.length * opts.backends.length;
  const cases: BenchResult[] = [];
  let done = 0;
  for (const params of points) {
    for (const backend of opts.backends) {
      const label = [...swept.map((k) => `${k}=${params[k]}`), opts.backends.length > 1 ? backend : ''].filter(Boolean).join(' ');
      opts.onProgress?.(done, total, label);
      cases.push(await runPoint(bench, backend, params, opts, samples, target));
      done++;
      opts.onProgress?.(done, total, label);
    }
  }
  const devices: Record<string, string> = {};
  for (const b of opts.backends) devices[b] = deviceDescription(b);
  return {
    family: bench.family,
    backend: opts.backends.join(','),
    backends: [...opts.backends],
    device: opts.backends.map((b) => devices[b]).join('; '),
    devices,
    date: new Date().toISOString(),
    cases,
  };
}

async function runPoint(bench: BenchFamily, backend: BackendName, params: Record<string, ParamValue>, opts: BenchOptions, samples: number, target: number): Promise<BenchResult> {
  const failed = (error: string, bytes = NaN): BenchResult => ({
    params, backend, medianUs: NaN, p10Us: NaN, p90Us: NaN, bytes, gbps: NaN, ceilingGbps: null, fractionOfCeiling: null, reps: 0, samples: 0, error,
  });
  let bc;
  try {
    bc = await bench.setup({ ...params }, backend);
  } catch (e) {
    return failed(e instanceof Error ? e.message : String(e));
  }
  try {
    // warm-up: at least 3 calls and 20 ms, which also estimates one call's time
    let est = Infinity;
    const w0 = performance.now();
    for (let i = 0; i < 50 && (i < 3 || performance.now() - w0 < 20); i++) est = Math.min(est, await bc.time(1));
    const reps = opts.reps ?? Math.min(100_000, Math.max(1, Math.ceil(target / Math.max(est, 1e-4))));
    const useCeiling = opts.ceiling !== false && bc.bytes > 0;
    let cReps = 0; // 0: no ceiling samples
    if (useCeiling) {
      const c1 = ceilingMs(backend, bc.bytes, 1);
      cReps = c1 === null ? 0 : Math.min(100_000, Math.max(1, Math.ceil(target / Math.max(c1, 1e-4))));
    }
    const times: number[] = [];
    const ceil: number[] = [];
    for (let s = 0; s < samples; s++) {
      times.push(await bc.time(reps));
      if (cReps > 0) {
        const c = ceilingMs(backend, bc.bytes, cReps);
        if (c !== null) ceil.push(c);
      }
    }
    times.sort((a, b) => a - b);
    ceil.sort((a, b) => a - b);
    const medianMs = quantile(times, 0.5);
    const gbps = bc.bytes / (medianMs * 1e6);
    const ceilingGbps = ceil.length ? Math.max(4096, bc.bytes) / (quantile(ceil, 0.5) * 1e6) : null;
    const r: BenchResult = {
      params,
      backend,
      medianUs: medianMs * 1e3,
      p10Us: quantile(times, 0.1) * 1e3,
      p90Us: quantile(times, 0.9) * 1e3,
      bytes: bc.bytes,
      gbps,
      ceilingGbps,
      fractionOfCeiling: ceilingGbps ? gbps / ceilingGbps : null,
      reps,
      samples,
    };
    if (bc.flops !== undefined) r.tflops = bc.flops / (medianMs * 1e9);
    if (bc.extra) {
      const extra = await bc.extra();
      for (const [k, v] of Object.entries(extra)) r[STD_KEYS.has(k) ? `extra_${k}` : k] = v;
    }
    return r;
  } catch (e) {
    return failed(e instanceof Error ? e.message : String(e), bc.bytes);
  } finally {
    try {
      bc.dispose?.();
    } catch {
      /* a failing dispose must not hide the result */
    }
  }
}
