// ascend-sim counters of the last kernel launch and the bandwidth-bound Ascend 910B time estimate
// that benchmarks report beside them (bytesMoved, bytesMinimum, estimated910bUs).
import { type AscendSimLaunchStats, native } from './native.js';

export type { AscendSimLaunchStats } from './native.js';

/** Nominal HBM bandwidth of an Ascend 910B, TB/s. */
export const ASCEND_910B_NOMINAL_TBPS = 0.8;
/**
 * Effective bandwidth used for estimates, TB/s: the middle of what the seed's select kernels reached
 * on a 910B (0.45 to 0.62 TB/s at B >= 20, seed003 section 4.6).
 */
export const ASCEND_910B_EFFECTIVE_TBPS = 0.55;

/**
 * Counters of the most recent ascend-sim kernel launch in this process: DMA bytes each way, scalar GM
 * bytes, vector instructions and repeats, the UB peak of any core.
 * @throws Error when the native addon is not built.
 */
export function ascendSimLastLaunch(): AscendSimLaunchStats {
  return native().ascendSimStats();
}

/**
 * Microseconds a bandwidth-bound kernel moving `bytes` takes on a 910B at `tbps` TB/s.
 * @throws RangeError when bytes is negative or tbps is not positive.
 */
export function estimate910bUs(bytes: number, tbps: number = ASCEND_910B_EFFECTIVE_TBPS): number {
  if (!(bytes >= 0)) throw new RangeError(`estimate910bUs: bytes must be >= 0, received ${bytes}`);
  if (!(tbps > 0)) throw new RangeError(`estimate910bUs: tbps must be > 0, received ${tbps}`);
  return (bytes / (tbps * 1e12)) * 1e6;
}

/**
 * BenchCase.extra() figures for an ascend-sim case, read after the case ran: bytesMoved (DMA both ways
 * plus scalar GM traffic of the last launch), bytesMinimum (given, from the shapes), their ratio, and
 * estimated910bUs at the effective bandwidth (and at the nominal 0.8 TB/s).
 * @throws Error when the native addon is not built.
 */
export function ascendSimBenchExtra(bytesMinimum: number): Record<string, number> {
  const s = ascendSimLastLaunch();
  const bytesMoved = s.gmToUbBytes + s.ubToGmBytes + s.gmScalarBytes;
  return {
    bytesMoved,
    bytesMinimum,
    movedOverMinimum: bytesMinimum > 0 ? bytesMoved / bytesMinimum : 0,
    estimated910bUs: estimate910bUs(bytesMoved),
    estimated910bUsNominal: estimate910bUs(bytesMoved, ASCEND_910B_NOMINAL_TBPS),
    vectorRepeats: s.vectorRepeats,
    blockDim: s.blockDim,
  };
}
