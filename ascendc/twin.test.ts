// Builds the ascend-sim twin's C++ unit tests (ascendc/tests: every emulated call, broken kernels that
// must fail, tiling, device-side guards) with g++ and reports each C++ test as a vitest test.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'build', 'ascendc_twin_tests');
const sources = [
  'ascendc/tests/twin_tests.cpp',
  'ascendc/tests/twin_kernel_tests.cpp',
  'ascendc/twin/twin.cpp',
  'ascendc/tiling.cpp',
  'ascendc/quest_select/quest_select_sim.cpp',
  'ascendc/quest_metadata/quest_metadata_sim.cpp',
  'ascendc/kv_cache/kv_cache_sim.cpp',
];

// Newest modification time of everything the binary is built from.
function newestInput(): number {
  let newest = 0;
  const walk = (dir: string): void => {
    for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(h|cpp)$/.test(e.name)) newest = Math.max(newest, statSync(join(root, p)).mtimeMs);
    }
  };
  walk('ascendc');
  walk('include/select_attn');
  return newest;
}

let buildError = '';
if (!existsSync(bin) || statSync(bin).mtimeMs < newestInput()) {
  mkdirSync(dirname(bin), { recursive: true });
  try {
    execFileSync(process.env.CXX ?? 'g++', ['-std=c++17', '-O1', '-Iinclude', '-Iascendc', ...sources, '-o', bin, '-lpthread'], {
      cwd: root,
      stdio: 'pipe',
      encoding: 'utf8',
    });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    buildError = err.stderr || err.message;
  }
}
const run = buildError ? undefined : spawnSync(bin, [], { encoding: 'utf8', timeout: 120_000 });
const results = (run?.stdout ?? '')
  .split('\n')
  .map((l) => /^(ok|FAIL) ([\w]+)(?:: (.*))?$/.exec(l))
  .filter((m): m is RegExpExecArray => m !== null)
  .map((m) => ({ ok: m[1] === 'ok', name: m[2], why: m[3] ?? '' }));

describe('ascend-sim twin: C++ unit and negative tests', () => {
  it('builds and runs', () => {
    expect(buildError, buildError).toBe('');
    expect(run?.error, String(run?.error)).toBeUndefined();
    expect(results.length).toBeGreaterThan(30);
    expect(run?.status === 0).toBe(results.every((r) => r.ok));
  });
  for (const r of results) {
    it(r.name, () => {
      expect(r.ok, r.why).toBe(true);
    });
  }
});
