// Loads the native addon (build/Release/select_attn.node) from the source tree or from dist/.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface NativeBackendInfo {
  name: string;
  compiled: boolean;
  available: boolean;
  reason: string;
  device: boolean;
  info: string;
  /** families the backend implements */
  families: string[];
}

type Mode = 'sync' | 'async' | 'time';
type FamilyFn = (backend: string, args: Record<string, unknown>, mode?: Mode, reps?: number) => unknown;

export interface NativeAddon {
  questMetadata: FamilyFn;
  questSelect: FamilyFn;
  pagedAttention: FamilyFn;
  cacheWrite: FamilyFn;
  questMetadataAppend: FamilyFn;
  listBackends(): NativeBackendInfo[];
  setNumThreads(n?: number): number;
  deviceAlloc(backend: string, bytes: number): object;
  deviceFree(handle: object): void;
  deviceCopy(handle: object, host: ArrayBufferView, byteOffset: number, dir: 'upload' | 'download'): void;
  synchronize(backend: string): void;
  measureCeiling(backend: string, bytes: number, reps: number): number;
  allocHost(bytes: number, hugePages: boolean): ArrayBuffer;
  /** counters of the last ascend-sim kernel launch (see src/ascend_sim.ts) */
  ascendSimStats(): AscendSimLaunchStats;
}

export interface AscendSimLaunchStats {
  kernel: string;
  blockDim: number;
  launches: number;
  gmToUbBytes: number;
  ubToGmBytes: number;
  gmScalarBytes: number;
  dmaInstrs: number;
  vectorInstrs: number;
  vectorRepeats: number;
  ubPeakBytes: number;
}

let cached: NativeAddon | undefined;

export function native(): NativeAddon {
  if (cached) return cached;
  const here = dirname(fileURLToPath(import.meta.url));
  const require = createRequire(import.meta.url);
  const candidates = [join(here, '..', 'build', 'Release', 'select_attn.node'), join(here, '..', '..', 'build', 'Release', 'select_attn.node')];
  if (process.env.SA_ADDON) candidates.unshift(process.env.SA_ADDON);
  const path = candidates.find((p) => existsSync(p));
  if (!path) throw new Error(`select-attn: native addon not built (looked in ${candidates.join(', ')}); run npm install`);
  cached = require(path) as NativeAddon;
  return cached;
}
