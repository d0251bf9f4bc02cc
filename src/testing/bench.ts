// The benchmark contract: each experiments/<n>_<family>/benchmark.ts exports `bench: BenchFamily`;
// `select-attn bench <family>` discovers it, sweeps parameters, measures the ceiling in the same run.
import type { BackendName } from '../backends.js';

export type ParamValue = number | string | boolean;

export interface BenchParamSpec {
  /** camelCase name, SPEC's words (batch, heads, kvHeads, headDim, blockSize, seqLen, k, dtype, layout...) */
  name: string;
  type: 'int' | 'float' | 'string' | 'bool';
  default: ParamValue;
  describe: string;
  choices?: readonly string[];
}

export interface BenchCase {
  /** ms per call over `reps` back-to-back calls (device events on device backends) */
  time(reps: number): number | Promise<number>;
  /** bytes the kernel must move at least (reads + writes), counted from the shapes */
  bytes: number;
  /** floating-point operations, for attention (TFLOP/s) */
  flops?: number;
  /** extra per-case figures (e.g. recall, speedup for quest_decode; bytesMoved for ascend-sim) */
  extra?: () => Record<string, number> | Promise<Record<string, number>>;
  dispose?(): void;
}

export interface BenchFamily {
  family: string;
  params: readonly BenchParamSpec[];
  /** backends this family's benchmark can run on */
  backends: readonly BackendName[];
  setup(params: Record<string, ParamValue>, backend: BackendName): BenchCase | Promise<BenchCase>;
}
