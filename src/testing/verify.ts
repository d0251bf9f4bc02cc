// The verify engine behind `select-attn verify`: every case of every suite on each chosen backend,
// one seed for the run (printed, replayable with --seed), failures and thrown errors collected.
import { type BackendName, listBackends } from '../backends.js';
import { type FamilySuite, testBackends } from './harness.js';

export interface VerifyCaseResult {
  id: string;
  family: string;
  backend: BackendName;
  seed: number;
  pass: boolean;
  detail: string;
  ms: number;
}

export interface VerifySkip {
  family: string;
  backend: string;
  reason: string;
}

export interface VerifyReport {
  seed: number;
  backends: BackendName[];
  passed: number;
  failed: number;
  skipped: VerifySkip[];
  cases: VerifyCaseResult[];
}

export interface VerifyOptions {
  seed: number;
  /** backends to run on; default: per family, every available backend implementing it (testBackends) */
  backends?: BackendName[];
  /** only cases whose id contains this string */
  filter?: string;
  /** called before each case (for a progress bar) and after it */
  onCase?: (done: number, total: number, result?: VerifyCaseResult) => void;
}

/**
 * Backends a suite runs on: testBackends() of its family, or of the families a composite suite
 * requires (e.g. quest_decode needs quest_select, quest_metadata, paged_attention and kv_cache).
 */
export function defaultBackends(suite: FamilySuite): BackendName[] {
  return testBackends(suite.requires ?? suite.family);
}

function errorDetail(e: unknown): string {
  if (e instanceof Error) return `threw ${e.name}${(e as { code?: string }).code ? ` ${(e as { code?: string }).code}` : ''}: ${e.message}`;
  return `threw ${String(e)}`;
}

/**
 * Runs the suites. With explicit backends, a backend that does not implement a native family is
 * reported in `skipped` (not a failure); a backend that is not available fails every case it was
 * asked to run, so `verify --backend cuda` on a machine without a GPU cannot pass silently.
 * @throws never for case failures (they are results); only for a bug in the suites' cases() lists.
 */
export async function runVerify(suites: FamilySuite[], opts: VerifyOptions): Promise<VerifyReport> {
  const infos = listBackends();
  const plan: { suite: FamilySuite; backend: BackendName; unavailable?: string }[] = [];
  const skipped: VerifySkip[] = [];
  for (const suite of suites) {
    const native = infos.some((b) => b.families.includes(suite.family));
    const chosen = opts.backends ?? defaultBackends(suite);
    if (chosen.length === 0) skipped.push({ family: suite.family, backend: '-', reason: 'no available backend implements it' });
    for (const b of chosen) {
      const info = infos.find((x) => x.name === b);
      if (!info || !info.available) plan.push({ suite, backend: b, unavailable: info ? info.reason : `unknown backend ${b}` });
      else if (native && !info.families.includes(suite.family)) skipped.push({ family: suite.family, backend: b, reason: `${b} does not implement ${suite.family}` });
      else if (suite.requires && !suite.requires.every((f) => info.families.includes(f)))
        skipped.push({ family: suite.family, backend: b, reason: `${b} does not implement all of ${suite.requires.join(', ')}` });
      else plan.push({ suite, backend: b });
    }
  }
  const work = plan.flatMap((p) =>
    p.suite
      .cases()
      .filter((c) => !opts.filter || c.id.includes(opts.filter))
      .map((c) => ({ ...p, c })),
  );
  const cases: VerifyCaseResult[] = [];
  let done = 0;
  for (const { c, backend, unavailable } of work) {
    opts.onCase?.(done, work.length);
    const t0 = performance.now();
    let pass = false;
    let detail: string;
    if (unavailable !== undefined) detail = `backend ${backend} is not available: ${unavailable}`;
    else {
      try {
        const r = await c.run(backend, opts.seed);
        pass = r.pass === true;
        detail = r.detail;
      } catch (e) {
        detail = errorDetail(e);
      }
    }
    const res: VerifyCaseResult = { id: c.id, family: c.family, backend, seed: opts.seed, pass, detail, ms: performance.now() - t0 };
    cases.push(res);
    done++;
    opts.onCase?.(done, work.length, res);
  }
  const backends = [...new Set(plan.map((p) => p.backend))];
  const passed = cases.filter((r) => r.pass).length;
  return { seed: opts.seed, backends, passed, failed: cases.length - passed, skipped, cases };
}
