// `select-attn info`: backends (compiled, available, why not, families, device), CPU features and
// threads; `--ceiling` measures the streaming-read ceiling the benchmarks compare against.
import { type BackendName, listBackends } from '../../backends.js';
import { native } from '../../native.js';
import { quantile } from '../../testing/benchrun.js';
import { type Io, UsageError, fmt, fmtBytes, table } from '../format.js';
import { cpuInfo } from '../sysinfo.js';

export interface InfoArgs {
  json?: boolean;
  ceiling?: boolean;
  backend?: string;
  bytes?: number;
  reps?: number;
}

/**
 * Prints backends and host facts, or with --ceiling the measured streaming-read ceiling.
 * @returns the exit code
 * @throws UsageError on an unknown or unavailable --backend or a bad --bytes
 */
export function infoCommand(a: InfoArgs, io: Io): number {
  if (a.ceiling) return ceilingCommand(a, io);
  const backends = listBackends();
  const cpu = cpuInfo();
  if (a.json) {
    io.out(JSON.stringify({ backends, cpu, node: process.version, platform: `${process.platform}-${process.arch}` }, null, 2));
    return 0;
  }
  io.out('Backends');
  io.out(
    table(
      ['backend', 'compiled', 'available', 'families', 'device / reason'],
      backends.map((b) => [b.name, b.compiled ? 'yes' : 'no', b.available ? 'yes' : 'no', b.families.join(',') || '-', b.available ? b.info || '-' : b.reason]),
    ),
  );
  io.out('');
  io.out(`CPU      ${cpu.model} (${cpu.arch}, ${cpu.logicalCores} logical cores)`);
  io.out(`flags    ${cpu.flags.join(' ') || '(none of interest, or no /proc/cpuinfo)'}`);
  io.out(`isa      ${cpu.isa || 'unknown'} (the cpu backend's runtime dispatch)`);
  io.out(`threads  ${cpu.threads} (set with --threads N)`);
  io.out(`node     ${process.version} on ${process.platform}-${process.arch}`);
  return 0;
}

function ceilingCommand(a: InfoArgs, io: Io): number {
  const backend = (a.backend ?? 'cpu') as BackendName;
  const info = listBackends().find((b) => b.name === backend);
  if (!info) throw new UsageError(`--backend: unknown backend ${backend}; known: ${listBackends().map((b) => b.name).join(', ')}`);
  if (!info.available) throw new UsageError(`--backend: ${backend} is not available here: ${info.reason}`);
  const bytes = a.bytes ?? 256 * 1024 * 1024;
  if (!(bytes >= 4096 && bytes <= 1e12)) throw new UsageError(`--bytes: expected 4096 .. 1e12, received ${bytes}`);
  const first = native().measureCeiling(backend, bytes, 1);
  const reps = a.reps ?? Math.max(1, Math.ceil(50 / Math.max(first, 1e-3)));
  const ms = Array.from({ length: 5 }, () => native().measureCeiling(backend, bytes, reps)).sort((x, y) => x - y);
  const med = quantile(ms, 0.5);
  const gbps = bytes / (med * 1e6);
  if (a.json) io.out(JSON.stringify({ backend, bytes, reps, samples: ms.length, msPerPass: med, gbps, msSamples: ms }, null, 2));
  else io.out(`ceiling (${backend}): streaming read of ${fmtBytes(bytes)}: ${fmt(med)} ms per pass, ${fmt(gbps)} GB/s (median of ${ms.length} samples x ${reps} passes)`);
  return 0;
}
