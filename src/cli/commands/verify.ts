// `select-attn verify`: every case of the discovered suites on the chosen backends against the
// references; one line per failure (case id, backend, seed, detail), then "N passed, N failed".
import { writeFileSync } from 'node:fs';
import { BACKENDS, type BackendName } from '../../backends.js';
import type { FamilySuite } from '../../testing/harness.js';
import { type Registry, resolveFamily } from '../../testing/registry.js';
import { runVerify } from '../../testing/verify.js';
import { type Io, Progress, UsageError } from '../format.js';

export interface VerifyArgs {
  backend?: string;
  family?: string;
  json?: string;
  seed?: number;
  filter?: string;
  list?: boolean;
  verbose?: boolean;
}

/** Splits "a,b" flags; checks backend names. @throws UsageError */
export function parseBackends(s: string | undefined): BackendName[] | undefined {
  if (s === undefined || s === '') return undefined;
  const list = s.split(',').map((x) => x.trim()).filter(Boolean);
  for (const b of list) if (!BACKENDS.includes(b as BackendName)) throw new UsageError(`--backend: unknown backend ${b}; known: ${BACKENDS.join(', ')}`);
  return list as BackendName[];
}

/** The suites named by --family (all when absent). @throws UsageError on an unknown family */
export function pickSuites(reg: Registry, family: string | undefined): FamilySuite[] {
  if (!family) return [...reg.suites.values()];
  return family.split(',').map((f) => {
    const key = resolveFamily(reg.suites.keys(), reg.folders, f.trim());
    if (!key) throw new UsageError(`--family: no suite named ${f}; found: ${[...reg.suites.keys()].join(', ') || `none (no experiments/*/cases under ${reg.root})`}`);
    return reg.suites.get(key)!;
  });
}

/**
 * Runs the suites and prints failures and the counts; writes --json.
 * @returns 0 when every case passed, 1 on any failure or when nothing ran
 * @throws UsageError on an unknown family or backend or a bad --seed
 */
export async function verifyCommand(a: VerifyArgs, reg: Registry, io: Io): Promise<number> {
  const suites = pickSuites(reg, a.family);
  const backends = parseBackends(a.backend);
  if (a.seed !== undefined && !(Number.isSafeInteger(a.seed) && a.seed >= 0)) throw new UsageError(`--seed: expected a non-negative integer, received ${a.seed}`);
  const seed = a.seed ?? ((Date.now() ^ (process.pid << 8)) >>> 0);
  if (a.list) {
    for (const s of suites) for (const c of s.cases()) if (!a.filter || c.id.includes(a.filter)) io.out(c.id);
    return 0;
  }
  io.out(`select-attn verify: seed ${seed} (replay with --seed ${seed}), families: ${suites.map((s) => s.family).join(', ') || 'none'}`);
  const bar = new Progress(io, 'verify');
  const report = await runVerify(suites, {
    seed,
    backends,
    filter: a.filter,
    onCase: (done, total, r) => {
      if (r && (!r.pass || a.verbose)) {
        if (bar.enabled) bar.end();
        io.out(`${r.pass ? 'ok  ' : 'FAIL'} ${r.id} backend=${r.backend} seed=${r.seed}: ${r.detail}`);
      }
      bar.update(done, total, r?.id ?? '');
    },
  });
  bar.end();
  for (const s of report.skipped) io.out(`skipped ${s.family} on ${s.backend}: ${s.reason}`);
  for (const p of reg.problems) io.err(`warning: ${p.file}: ${p.message}`);
  if (a.json) {
    const out = {
      ...(report.backends.length === 1 ? { backend: report.backends[0] } : {}),
      backends: report.backends,
      seed: report.seed,
      passed: report.passed,
      failed: report.failed,
      skipped: report.skipped,
      cases: report.cases.map((c) => ({ id: c.id, family: c.family, backend: c.backend, pass: c.pass, detail: c.detail, ms: Number(c.ms.toFixed(3)) })),
    };
    writeFileSync(a.json, JSON.stringify(out, null, 2) + '\n');
  }
  if (report.cases.length === 0) io.out('no cases ran');
  io.out(`${report.passed} passed, ${report.failed} failed`);
  return report.failed > 0 || report.cases.length === 0 ? 1 : 0;
}
