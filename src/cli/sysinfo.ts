// Host facts for `select-attn info` and benchmark reports: CPU model, the ISA flags that matter to the
// cpu backend's kernels, and the ISA and thread count the backend picked.
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { listBackends, setNumThreads } from '../backends.js';

/** /proc/cpuinfo flags the cpu backend or its future kernels can use (x86 and Arm spellings). */
export const RELEVANT_FLAGS = [
  'sse4_2', 'avx', 'avx2', 'fma', 'f16c', 'avx512f', 'avx512bw', 'avx512vl', 'avx512dq', 'avx512_vnni',
  'avx512_bf16', 'avx512_fp16', 'avx_vnni', 'amx_tile', 'amx_bf16', 'amx_int8',
  'asimd', 'asimdhp', 'fphp', 'asimddp', 'bf16', 'i8mm', 'sve', 'sve2',
] as const;

export interface CpuInfo {
  model: string;
  arch: string;
  logicalCores: number;
  /** relevant flags present on this CPU, in RELEVANT_FLAGS order */
  flags: string[];
  /** ISA variant the cpu backend dispatched to (generic | avx2 | avx512 ...), '' if unknown */
  isa: string;
  /** threads of the cpu backend's pool (workers + caller) */
  threads: number;
}

function parseBackendInfo(info: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of info.matchAll(/(\w+)=(\S+)/g)) out[m[1]] = m[2];
  return out;
}

let cached: { model: string; flags: string[] } | undefined;

function procCpu(): { model: string; flags: string[] } {
  if (cached) return cached;
  let text = '';
  try {
    text = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    /* not Linux */
  }
  const field = (re: RegExp) => re.exec(text)?.[1]?.trim() ?? '';
  const have = new Set(field(/^(?:flags|Features)\s*:\s*(.*)$/m).split(/\s+/));
  cached = {
    model: field(/^model name\s*:\s*(.*)$/m) || field(/^Hardware\s*:\s*(.*)$/m) || cpus()[0]?.model || 'unknown',
    flags: RELEVANT_FLAGS.filter((f) => have.has(f)),
  };
  return cached;
}

/** The host CPU and what the cpu backend made of it. */
export function cpuInfo(): CpuInfo {
  const { model, flags } = procCpu();
  const cpu = listBackends().find((b) => b.name === 'cpu');
  const kv = parseBackendInfo(cpu?.info ?? '');
  // the pool's size now (listBackends() is cached and may predate --threads)
  return { model, arch: process.arch, logicalCores: cpus().length, flags, isa: kv.isa ?? '', threads: setNumThreads() };
}

/** One line naming the device a backend runs on (for benchmark reports). */
export function deviceDescription(backend: string): string {
  const b = listBackends().find((x) => x.name === backend);
  if (!b) return backend;
  if (backend === 'cpu') {
    const c = cpuInfo();
    return `${c.model} (isa=${c.isa} threads=${c.threads})`;
  }
  return b.info || backend;
}
