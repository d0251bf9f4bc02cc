// Finds the families at run time: experiments/*/cases.{ts,js} (exporting `suite: FamilySuite`) and
// experiments/*/benchmark.{ts,js} (exporting `bench: BenchFamily`), from TS sources under vitest or
// from dist/ after tsc (dist/src/testing/registry.js -> dist/experiments/...).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BenchFamily } from './bench.js';
import type { FamilySuite } from './harness.js';

export interface Registry {
  /** experiments root that was searched */
  root: string;
  /** suites keyed by `suite.family` */
  suites: Map<string, FamilySuite>;
  /** benchmarks keyed by `bench.family` (may differ from the folder, e.g. quest_decode) */
  benches: Map<string, BenchFamily>;
  /** folder of each family key, e.g. quest_metadata -> 2_quest_metadata */
  folders: Map<string, string>;
  /** modules that failed to load or exported nothing usable (the CLI prints them as warnings) */
  problems: { file: string; message: string }[];
}

const here = dirname(fileURLToPath(import.meta.url));
/** '.ts' when running from sources (vitest), '.js' when running from dist/ */
const EXT = import.meta.url.endsWith('.ts') ? '.ts' : '.js';

/** The folder that holds `experiments/` next to `src/`: the package root, or dist/ for compiled code. */
export function experimentsRoot(): string {
  return resolve(here, '..', '..');
}

function isSuite(v: unknown): v is FamilySuite {
  const s = v as FamilySuite;
  return !!s && typeof s === 'object' && typeof s.family === 'string' && typeof s.cases === 'function';
}

function isBench(v: unknown): v is BenchFamily {
  const b = v as BenchFamily;
  return !!b && typeof b === 'object' && typeof b.family === 'string' && Array.isArray(b.params) && typeof b.setup === 'function';
}

/**
 * Imports every experiments/<folder>/cases and benchmark module under `root` (default: this
 * package's) and returns them keyed by family. A module that fails to import is recorded in
 * `problems` and skipped, so one broken family does not hide the others.
 * @throws Error when two folders claim the same family.
 */
export async function discover(root: string = experimentsRoot(), ext: string = EXT): Promise<Registry> {
  const reg: Registry = { root, suites: new Map(), benches: new Map(), folders: new Map(), problems: [] };
  const dir = join(root, 'experiments');
  if (!existsSync(dir)) return reg;
  const folders = readdirSync(dir)
    .filter((f) => statSync(join(dir, f)).isDirectory())
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  for (const folder of folders) {
    for (const [file, key] of [['cases', 'suite'], ['benchmark', 'bench']] as const) {
      // prefer the running flavour; also accept plain .js modules next to TS sources
      const path = [join(dir, folder, file + ext), join(dir, folder, file + '.js')].find((p) => existsSync(p));
      if (!path) continue;
      let mod: Record<string, unknown>;
      try {
        mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
      } catch (e) {
        reg.problems.push({ file: path, message: e instanceof Error ? e.message : String(e) });
        continue;
      }
      const v = mod[key];
      if (key === 'suite') {
        if (!isSuite(v)) {
          reg.problems.push({ file: path, message: 'exports no `suite: FamilySuite`' });
          continue;
        }
        if (reg.suites.has(v.family)) throw new Error(`registry: family ${v.family} is defined by both ${reg.folders.get(v.family)} and ${folder}`);
        reg.suites.set(v.family, v);
        if (!reg.folders.has(v.family)) reg.folders.set(v.family, folder);
      } else {
        if (!isBench(v)) {
          reg.problems.push({ file: path, message: 'exports no `bench: BenchFamily`' });
          continue;
        }
        if (reg.benches.has(v.family)) throw new Error(`registry: benchmark ${v.family} is defined twice (second in ${folder})`);
        reg.benches.set(v.family, v);
        if (!reg.folders.has(v.family)) reg.folders.set(v.family, folder);
      }
    }
  }
  return reg;
}

/**
 * Resolves what a user typed to a family key: the family itself, its folder ("2_quest_metadata"), or
 * the folder without its number. Returns undefined when nothing matches.
 */
export function resolveFamily(names: Iterable<string>, folders: Map<string, string>, typed: string): string | undefined {
  const list = [...names];
  if (list.includes(typed)) return typed;
  for (const f of list) {
    const folder = folders.get(f);
    if (folder && (folder === typed || folder.replace(/^\d+_/, '') === typed)) return f;
  }
  return undefined;
}
