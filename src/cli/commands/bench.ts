// `select-attn bench <family>`: shape flags generated from the family's BenchFamily params
// (kebab-case), sweeps, the table (median/p10/p90 us, bytes, GB/s, ceiling), JSON, peers and plots.
import { readFileSync, writeFileSync } from 'node:fs';
import { type BackendName, listBackends } from '../../backends.js';
import type { BenchFamily, BenchParamSpec, ParamValue } from '../../testing/bench.js';
import { type BenchReport, type BenchResult, type BenchSweep, runBench } from '../../testing/benchrun.js';
import { type Io, Progress, UsageError, fmt, fmtBytes, table } from '../format.js';
import { type Series, lineChartSvg } from '../plot.js';
import { parseBackends } from './verify.js';

/** camelCase -> kebab-case flag name (kvHeads -> kv-heads). */
export function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
}

/** kebab-case or snake_case -> camelCase (seq-len, seq_len -> seqLen). */
export function camel(name: string): string {
  return name.replace(/[-_]([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** Flags of the bench command itself; a family parameter with one of these names gets no flag. */
export const BENCH_RESERVED = new Set(['backend', 'sweep', 'reps', 'samples', 'json', 'plot', 'plotY', 'peers', 'ceiling', 'threads', 'help', 'version', 'family']);

/** Converts a flag or sweep value to the parameter's type. @throws UsageError naming the flag */
export function parseParam(spec: BenchParamSpec, v: unknown, where = `--${kebab(spec.name)}`): ParamValue {
  const s = String(v).trim();
  switch (spec.type) {
    case 'int': {
      const n = typeof v === 'number' ? v : Number(s);
      if (!Number.isSafeInteger(n)) throw new UsageError(`${where}: expected an integer, received ${s}`);
      return n;
    }
    case 'float': {
      const n = typeof v === 'number' ? v : Number(s);
      if (!Number.isFinite(n) || s === '') throw new UsageError(`${where}: expected a number, received ${s}`);
      return n;
    }
    case 'bool':
      if (v === true || s === 'true' || s === '1') return true;
      if (v === false || s === 'false' || s === '0') return false;
      throw new UsageError(`${where}: expected true or false, received ${s}`);
    default:
      if (spec.choices && !spec.choices.includes(s)) throw new UsageError(`${where}: expected one of ${spec.choices.join(', ')}, received ${s}`);
      return s;
  }
}

/**
 * Parses `--sweep name=v1,v2,...` (name in camelCase or kebab-case). Integer ranges: `a..b` doubles
 * from a up to b, `a..bxF` multiplies by F, `a..b+S` adds S. @throws UsageError
 */
export function parseSweep(bench: BenchFamily, s: string): BenchSweep {
  const eq = s.indexOf('=');
  if (eq < 1) throw new UsageError(`--sweep: expected name=v1,v2,..., received ${s}`);
  const name = camel(s.slice(0, eq).trim());
  const spec = bench.params.find((p) => p.name === name);
  if (!spec) throw new UsageError(`--sweep: ${bench.family} has no parameter ${s.slice(0, eq)}; parameters: ${bench.params.map((p) => kebab(p.name)).join(', ')}`);
  const raw = s.slice(eq + 1).trim();
  const range = /^(\d+)\.\.(\d+)(?:([x+])(\d+))?$/.exec(raw);
  let items: string[];
  if (range && (spec.type === 'int' || spec.type === 'float')) {
    const [a, b, op, f] = [Number(range[1]), Number(range[2]), range[3] ?? 'x', Number(range[4] ?? 2)];
    if ((op === 'x' && (f < 2 || a < 1)) || (op === '+' && f < 1) || b < a) throw new UsageError(`--sweep: bad range ${raw}`);
    items = [];
    for (let v = a; v <= b && items.length < 10_000; v = op === 'x' ? v * f : v + f) items.push(String(v));
  } else items = raw.split(',').map((x) => x.trim()).filter((x) => x !== '');
  if (items.length === 0) throw new UsageError(`--sweep ${name}: no values`);
  return { name, values: items.map((x) => parseParam(spec, x, `--sweep ${kebab(name)}`)) };
}

// ---- peers: results of a peer library (e.g. a python script on the GPU machine) merged by params ----
export interface PeerEntry {
  params: Record<string, unknown>;
  peer: string;
  medianUs: number;
  backend?: string;
  [k: string]: unknown;
}

/** Reads a peers JSON {cases: [{params, peer, medianUs, ...}]}. @throws UsageError on a malformed file */
export function loadPeers(path: string): PeerEntry[] {
  let j: unknown;
  try {
    j = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UsageError(`--peers ${path}: ${(e as Error).message}`);
  }
  const cases = (j as { cases?: unknown }).cases;
  if (!Array.isArray(cases)) throw new UsageError(`--peers ${path}: expected {cases: [{params, peer, medianUs}]}`);
  return cases.map((c, i) => {
    const e = c as PeerEntry;
    if (!e || typeof e.params !== 'object' || e.params === null || typeof e.peer !== 'string' || typeof e.medianUs !== 'number')
      throw new UsageError(`--peers ${path}: cases[${i}] needs params (object), peer (string) and medianUs (number)`);
    const params: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(e.params)) params[camel(k)] = v;
    return { ...e, params };
  });
}

function sameValue(a: unknown, b: unknown): boolean {
  if (typeof a === 'number' || typeof b === 'number') return Number(a) === Number(b);
  return String(a) === String(b);
}

/** Peer entries whose params all agree with the case's (a peer may leave parameters out). */
export function matchPeers(r: BenchResult, peers: readonly PeerEntry[]): PeerEntry[] {
  return peers.filter((p) => (p.backend === undefined || p.backend === r.backend) && Object.entries(p.params).every(([k, v]) => k in r.params && sameValue(r.params[k], v)));
}

export interface BenchArgs {
  family: string;
  backend?: string;
  sweep?: string[];
  reps?: number;
  samples?: number;
  json?: string;
  plot?: string;
  plotY?: 'gbps' | 'time';
  peers?: string;
  ceiling?: boolean;
  [flag: string]: unknown;
}

/**
 * Runs `bench` and prints the table (or JSON); writes --json / --plot files.
 * @returns 0, or 1 when a point of the sweep failed
 * @throws UsageError on a bad flag, sweep, backend or peers file
 */
export async function benchCommand(bench: BenchFamily, a: BenchArgs, io: Io): Promise<number> {
  const backends = parseBackends(a.backend) ?? ['cpu' as BackendName];
  const infos = listBackends();
  for (const b of backends) {
    const info = infos.find((x) => x.name === b)!;
    if (!info.available) throw new UsageError(`--backend: ${b} is not available here: ${info.reason}`);
    if (bench.backends.length && !bench.backends.includes(b)) throw new UsageError(`--backend: the ${bench.family} benchmark runs on ${bench.backends.join(', ')}, not ${b}`);
  }
  const base: Record<string, ParamValue> = {};
  for (const p of bench.params) base[p.name] = a[p.name] === undefined || BENCH_RESERVED.has(p.name) ? p.default : parseParam(p, a[p.name]);
  const sweep = (a.sweep ?? []).map((s) => parseSweep(bench, String(s)));
  if (new Set(sweep.map((s) => s.name)).size !== sweep.length) throw new UsageError('--sweep: a parameter is swept twice');
  for (const [k, v] of [['reps', a.reps], ['samples', a.samples]] as const)
    if (v !== undefined && !(Number.isSafeInteger(v) && (v as number) >= 1)) throw new UsageError(`--${k}: expected a positive integer, received ${v}`);
  if (a.plot && sweep.length === 0) throw new UsageError('--plot needs a --sweep (the x axis)');
  const peers = a.peers ? loadPeers(a.peers) : [];

  const bar = new Progress(io, `bench ${bench.family}`);
  const report = await runBench(bench, {
    backends,
    base,
    sweep,
    reps: a.reps,
    samples: a.samples,
    ceiling: a.ceiling !== false,
    onProgress: (d, t, l) => bar.update(d, t, l),
  });
  bar.end();

  const peerNames = [...new Set(peers.map((p) => p.peer))];
  const withPeers = report.cases.map((r) => {
    const m = matchPeers(r, peers);
    return m.length ? { ...r, peers: m.map((p) => ({ peer: p.peer, medianUs: p.medianUs, speedup: p.medianUs / r.medianUs })) } : r;
  });
  const out: BenchReport = { ...report, cases: withPeers };
  if (a.json === '-') io.out(JSON.stringify(out, null, 2));
  else {
    printTable(io, bench, out, sweep, peerNames);
    if (a.json) writeFileSync(a.json, JSON.stringify(out, null, 2) + '\n');
  }
  if (a.plot) {
    writeFileSync(a.plot, plotReport(out, sweep, a.plotY ?? 'gbps', peers));
    if (a.json !== '-') io.out(`plot written to ${a.plot}`);
  }
  const errors = out.cases.filter((c) => c.error);
  return errors.length ? 1 : 0;
}

function printTable(io: Io, bench: BenchFamily, rep: BenchReport, sweep: BenchSweep[], peerNames: string[]): void {
  const swept = sweep.map((s) => s.name);
  const fixed = bench.params.filter((p) => !swept.includes(p.name)).map((p) => `${kebab(p.name)}=${rep.cases[0]?.params[p.name] ?? p.default}`);
  io.out(`${rep.family} on ${rep.backend}: ${rep.device}`);
  if (fixed.length) io.out(fixed.join(' '));
  const std = new Set(['params', 'backend', 'medianUs', 'p10Us', 'p90Us', 'bytes', 'gbps', 'ceilingGbps', 'fractionOfCeiling', 'tflops', 'reps', 'samples', 'error', 'peers']);
  const extras = [...new Set(rep.cases.flatMap((c) => Object.keys(c).filter((k) => !std.has(k))))];
  const hasFlops = rep.cases.some((c) => c.tflops !== undefined);
  const multi = rep.backends.length > 1;
  const header = [
    ...swept.map(kebab),
    ...(multi ? ['backend'] : []),
    'median us', 'p10 us', 'p90 us', 'bytes', 'GB/s', 'ceiling GB/s', 'of ceiling',
    ...(hasFlops ? ['TFLOP/s'] : []),
    ...extras,
    ...peerNames.flatMap((p) => [`${p} us`, `vs ${p}`]),
  ];
  const rows = rep.cases.map((c) => {
    if (c.error) return [...swept.map((k) => String(c.params[k])), ...(multi ? [c.backend] : []), `error: ${c.error}`];
    const pe = (c as { peers?: { peer: string; medianUs: number; speedup: number }[] }).peers ?? [];
    return [
      ...swept.map((k) => String(c.params[k])),
      ...(multi ? [c.backend] : []),
      fmt(c.medianUs), fmt(c.p10Us), fmt(c.p90Us), fmtBytes(c.bytes), fmt(c.gbps), fmt(c.ceilingGbps), fmt(c.fractionOfCeiling),
      ...(hasFlops ? [fmt(c.tflops)] : []),
      ...extras.map((k) => (typeof c[k] === 'number' ? fmt(c[k] as number) : String(c[k] ?? '-'))),
      ...peerNames.flatMap((p) => {
        const m = pe.find((x) => x.peer === p);
        return m ? [fmt(m.medianUs), `${fmt(m.speedup)}x`] : ['-', '-'];
      }),
    ];
  });
  io.out(table(header, rows));
}

/** GB/s (or median time) against the first swept parameter; one line per backend (and per value of other swept parameters), peers and ceilings too. */
export function plotReport(rep: BenchReport, sweep: BenchSweep[], y: 'gbps' | 'time', peers: readonly PeerEntry[] = []): string {
  const xName = sweep[0].name;
  const others = sweep.slice(1).map((s) => s.name);
  const series = new Map<string, Series>();
  const add = (name: string, x: ParamValue, v: number, dashed = false, group = name) => {
    if (!series.has(name)) series.set(name, { name, points: [], dashed, group });
    series.get(name)!.points.push({ x: typeof x === 'boolean' ? String(x) : x, y: v });
  };
  for (const c of rep.cases) {
    if (c.error) continue;
    const suffix = others.map((k) => ` ${kebab(k)}=${c.params[k]}`).join('');
    add(`${c.backend}${suffix}`, c.params[xName], y === 'gbps' ? c.gbps : c.medianUs);
    if (y === 'gbps' && c.ceilingGbps !== null) add(`${c.backend} ceiling${suffix}`, c.params[xName], c.ceilingGbps, true, `${c.backend}${suffix}`);
    for (const p of matchPeers(c, peers)) add(`${p.peer}${suffix}`, c.params[xName], y === 'gbps' ? c.bytes / (p.medianUs * 1e3) : p.medianUs);
  }
  return lineChartSvg({
    title: `${rep.family} (${rep.backend}): ${y === 'gbps' ? 'GB/s' : 'median time'} vs ${kebab(xName)}`,
    xLabel: kebab(xName),
    yLabel: y === 'gbps' ? 'GB/s' : 'median us per call',
    series: [...series.values()],
  });
}
