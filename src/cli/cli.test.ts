// The CLI run in-process through main(): info, verify (pass, fail, throw, JSON, seed), bench (flags
// from params, sweeps, JSON fields, ceiling, extras, peers, plot, progress bar), run on .npy files for
// quest_metadata against a direct call, and family discovery from an experiments folder.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { writeNpy, readNpy } from '../npy.js';
import { questMetadata } from '../ops/quest_metadata.js';
import { type HostTensor, f32ToBf16, tensor, toF32 } from '../tensor.js';
import type { BenchFamily } from '../testing/bench.js';
import type { FamilySuite } from '../testing/harness.js';
import { Rng } from '../testing/harness.js';
import { type Registry, discover, resolveFamily } from '../testing/registry.js';
import { parseSweep } from './commands/bench.js';
import type { Io } from './format.js';
import { main } from './main.js';
import { lineChartSvg } from './plot.js';

const here = dirname(fileURLToPath(import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'sa-cli-'));

function capture(tty = false, env: Record<string, string> = {}) {
  const o = { out: '', err: '' };
  const io: Io = { out: (s) => void (o.out += s + '\n'), err: (s) => void (o.err += s), errIsTTY: tty, env };
  return { io, o };
}

function registry(suites: FamilySuite[], benches: BenchFamily[] = []): Registry {
  return {
    root: '(test)',
    suites: new Map(suites.map((s) => [s.family, s])),
    benches: new Map(benches.map((b) => [b.family, b])),
    folders: new Map([...suites.map((s) => [s.family, `9_${s.family}`] as [string, string]), ...benches.map((b) => [b.family, `9_${b.family}`] as [string, string])]),
    problems: [],
  };
}

const seen: number[] = [];
const fakeSuite = (failing: boolean): FamilySuite => ({
  family: 'fake',
  cases: () => [
    { id: 'fake(a=1)', family: 'fake', run: (_b, seed) => (seen.push(seed), { pass: true, detail: 'maxRelErr 0' }) },
    { id: 'fake(a=2)', family: 'fake', run: () => ({ pass: !failing, detail: failing ? 'maxRelErr 1 > 1e-5' : 'ok' }) },
    {
      id: 'fake(a=3)',
      family: 'fake',
      run: async () => {
        if (failing) throw new RangeError('boom');
        return { pass: true, detail: 'ok' };
      },
    },
  ],
});

// A benchmark that really reads memory, so timings and the ceiling are real numbers.
const setups: Record<string, unknown>[] = [];
const fakeBench: BenchFamily = {
  family: 'fake_bench',
  backends: ['cpu'],
  params: [
    { name: 'seqLen', type: 'int', default: 1024, describe: 'tokens' },
    { name: 'kvHeads', type: 'int', default: 2, describe: 'KV heads' },
    { name: 'dtype', type: 'string', default: 'f32', choices: ['f32', 'f16'], describe: 'dtype' },
    { name: 'causal', type: 'bool', default: true, describe: 'causal' },
  ],
  setup(p) {
    setups.push({ ...p });
    if (p.seqLen === 13) throw new RangeError('seqLen 13 is unlucky');
    const a = new Float32Array((p.seqLen as number) * (p.kvHeads as number) * 16).fill(1);
    return {
      bytes: a.byteLength,
      flops: a.length * 2,
      time(reps: number) {
        const t0 = performance.now();
        let s = 0;
        for (let r = 0; r < reps; r++) for (let i = 0; i < a.length; i++) s += a[i];
        if (s < 0) throw new Error('unreachable');
        return (performance.now() - t0) / reps;
      },
      extra: () => ({ recall: 0.75 }),
    };
  },
};

describe('select-attn info', () => {
  it('lists every backend with availability and the CPU', async () => {
    const { io, o } = capture();
    expect(await main(['info', '--json'], { io, registry: registry([]) })).toBe(0);
    const j = JSON.parse(o.out);
    expect(j.backends.map((b: { name: string }) => b.name)).toEqual(['cpu', 'cuda', 'ascend', 'ascend-sim', 'metal']);
    const cpu = j.backends.find((b: { name: string }) => b.name === 'cpu');
    expect(cpu.available).toBe(true);
    expect(j.cpu.threads).toBeGreaterThanOrEqual(1);
    if (process.arch === 'x64') expect(j.cpu.isa).toMatch(/generic|avx2|avx512/);
    for (const b of j.backends) if (!b.available) expect(b.reason.length).toBeGreaterThan(0);
    const t = capture();
    expect(await main(['info'], { io: t.io })).toBe(0);
    expect(t.o.out).toMatch(/^cpu\s+yes\s+yes/m);
    expect(t.o.out).toMatch(/threads\s+\d+/);
  });

  it('measures the streaming ceiling', async () => {
    const { io, o } = capture();
    expect(await main(['info', '--ceiling', '--bytes', '1M', '--reps', '20', '--json'], { io })).toBe(0);
    const j = JSON.parse(o.out);
    expect(j.bytes).toBe(1024 * 1024);
    expect(j.gbps).toBeGreaterThan(0.1);
    expect(await main(['info', '--ceiling', '--bytes', 'lots'], { io: capture().io })).toBe(2);
    expect(await main(['info', '--ceiling', '--backend', 'metal'], { io: capture().io })).toBe(2);
  });
});

describe('select-attn verify', () => {
  it('passes, prints the counts and passes the seed to every case', async () => {
    const { io, o } = capture();
    seen.length = 0;
    const json = join(tmp, 'v-pass.json');
    expect(await main(['verify', '--backend', 'cpu', '--seed', '42', '--json', json], { io, registry: registry([fakeSuite(false)]) })).toBe(0);
    expect(o.out.trim().split('\n').at(-1)).toBe('3 passed, 0 failed');
    expect(o.out).toMatch(/seed 42/);
    expect(seen).toEqual([42]);
    const j = JSON.parse(readFileSync(json, 'utf8'));
    expect(j.backend).toBe('cpu');
    expect(j.seed).toBe(42);
    expect(j.cases).toHaveLength(3);
    expect(j.cases[0]).toMatchObject({ id: 'fake(a=1)', family: 'fake', backend: 'cpu', pass: true, detail: 'maxRelErr 0' });
  });

  it('prints one line per failure (id, backend, seed, detail) and exits 1', async () => {
    const { io, o } = capture();
    const json = join(tmp, 'v-fail.json');
    expect(await main(['verify', '--backend', 'cpu', '--seed', '7', '--json', json], { io, registry: registry([fakeSuite(true)]) })).toBe(1);
    expect(o.out).toContain('FAIL fake(a=2) backend=cpu seed=7: maxRelErr 1 > 1e-5');
    expect(o.out).toContain('FAIL fake(a=3) backend=cpu seed=7: threw RangeError: boom');
    expect(o.out).not.toContain('FAIL fake(a=1)');
    expect(o.out.trim().split('\n').at(-1)).toBe('1 passed, 2 failed');
    const j = JSON.parse(readFileSync(json, 'utf8'));
    expect(j.cases.filter((c: { pass: boolean }) => !c.pass).map((c: { id: string }) => c.id)).toEqual(['fake(a=2)', 'fake(a=3)']);
  });

  it('filters, lists, rejects unknown families and backends, and fails when nothing ran', async () => {
    const reg = registry([fakeSuite(true)]);
    const l = capture();
    expect(await main(['verify', '--list', '--filter', 'a=2'], { io: l.io, registry: reg })).toBe(0);
    expect(l.o.out.trim()).toBe('fake(a=2)');
    const f = capture();
    expect(await main(['verify', '--backend', 'cpu', '--filter', 'a=1', '--seed', '1'], { io: f.io, registry: reg })).toBe(0);
    expect(f.o.out).toContain('1 passed, 0 failed');
    const u = capture();
    expect(await main(['verify', '--family', 'nope'], { io: u.io, registry: reg })).toBe(2);
    expect(u.o.err).toMatch(/no suite named nope; found: fake/);
    expect(await main(['verify', '--backend', 'gpu9'], { io: capture().io, registry: reg })).toBe(2);
    // an unavailable backend fails the cases instead of passing silently
    const m = capture();
    expect(await main(['verify', '--backend', 'metal', '--seed', '1'], { io: m.io, registry: reg })).toBe(1);
    expect(m.o.out).toMatch(/FAIL fake\(a=1\) backend=metal seed=1: backend metal is not available/);
    const e = capture();
    expect(await main(['verify'], { io: e.io, registry: registry([]) })).toBe(1);
    expect(e.o.out).toContain('0 passed, 0 failed');
  });
});

describe('select-attn bench', () => {
  it('sweeps, reports the documented JSON fields, merges peers and plots', async () => {
    const peers = join(tmp, 'peers.json');
    writeFileSync(peers, JSON.stringify({ cases: [{ params: { seq_len: 512, kv_heads: 3 }, peer: 'torch', medianUs: 1e6 }, { params: { seqLen: 999 }, peer: 'torch', medianUs: 1 }] }));
    const json = join(tmp, 'b.json');
    const svg = join(tmp, 'b.svg');
    const { io, o } = capture(true, {});
    setups.length = 0;
    const code = await main(
      ['bench', 'fake_bench', '--kv-heads', '3', '--dtype', 'f16', '--no-causal', '--sweep', 'seq-len=256,512', '--samples', '3', '--json', json, '--plot', svg, '--peers', peers],
      { io, registry: registry([], [fakeBench]) },
    );
    expect(o.err).toContain('] 2/2 seqLen=512');
    expect(code).toBe(0);
    expect(setups).toEqual([
      { seqLen: 256, kvHeads: 3, dtype: 'f16', causal: false },
      { seqLen: 512, kvHeads: 3, dtype: 'f16', causal: false },
    ]);
    const j = JSON.parse(readFileSync(json, 'utf8'));
    expect(j).toMatchObject({ family: 'fake_bench', backend: 'cpu' });
    expect(j.device).toMatch(/isa=/);
    expect(j.cases).toHaveLength(2);
    for (const c of j.cases) {
      expect(c.medianUs).toBeGreaterThan(0);
      expect(c.p10Us).toBeLessThanOrEqual(c.medianUs);
      expect(c.p90Us).toBeGreaterThanOrEqual(c.medianUs);
      expect(c.bytes).toBe(c.params.seqLen * 3 * 16 * 4);
      expect(c.gbps).toBeCloseTo(c.bytes / (c.medianUs * 1e3), 6);
      expect(c.ceilingGbps).toBeGreaterThan(0);
      expect(c.fractionOfCeiling).toBeCloseTo(c.gbps / c.ceilingGbps, 9);
      expect(c.tflops).toBeCloseTo((c.bytes / 2) / (c.medianUs * 1e6), 9);
      expect(c.recall).toBe(0.75);
    }
    expect(j.cases[0].peers).toBeUndefined();
    expect(j.cases[1].peers[0]).toMatchObject({ peer: 'torch', medianUs: 1e6 });
    expect(j.cases[1].peers[0].speedup).toBeCloseTo(1e6 / j.cases[1].medianUs, 6);
    // the table: header, swept column, extras and peer columns
    expect(o.out).toMatch(/seq-len\s+median us\s+p10 us\s+p90 us\s+bytes\s+GB\/s\s+ceiling GB\/s\s+of ceiling\s+TFLOP\/s\s+recall\s+torch us\s+vs torch/);
    expect(o.out).toMatch(/kv-heads=3 dtype=f16 causal=false/);
    const s = readFileSync(svg, 'utf8');
    expect(s.startsWith('<svg')).toBe(true);
    expect(s.trim().endsWith('</svg>')).toBe(true);
    expect(s.match(/<polyline/g)).toHaveLength(2); // cpu and its ceiling; the peer has one point
    expect(s).toContain('>cpu ceiling<');
    expect(s).toContain('>torch<');
    expect(s).toContain('>256<');
  });

  it('draws the progress bar only on a terminal without NO_COLOR or CI', async () => {
    const reg = registry([], [fakeBench]);
    const args = ['bench', 'fake_bench', '--sweep', 'seq-len=64,128', '--samples', '1', '--reps', '1', '--no-ceiling'];
    const tty = capture(true, {});
    expect(await main(args, { io: tty.io, registry: reg })).toBe(0);
    expect(tty.o.err).toContain('] 2/2');
    for (const env of [{ CI: '1' }, { NO_COLOR: '1' }]) {
      const c = capture(true, env);
      expect(await main(args, { io: c.io, registry: reg })).toBe(0);
      expect(c.o.err).toBe('');
    }
    const pipe = capture(false, {});
    expect(await main([...args, '--json', '-'], { io: pipe.io, registry: reg })).toBe(0);
    expect(pipe.o.err).toBe('');
    const j = JSON.parse(pipe.o.out);
    expect(j.cases.map((c: { ceilingGbps: unknown }) => c.ceilingGbps)).toEqual([null, null]);
  });

  it('reports a failing point, rejects bad flags and unknown families', async () => {
    const reg = registry([], [fakeBench]);
    const f = capture();
    expect(await main(['bench', 'fake_bench', '--sweep', 'seq-len=13,64', '--samples', '1', '--json', '-'], { io: f.io, registry: reg })).toBe(1);
    const j = JSON.parse(f.o.out);
    expect(j.cases[0].error).toMatch(/unlucky/);
    expect(j.cases[1].error).toBeUndefined();
    for (const bad of [
      ['bench', 'fake_bench', '--dtype', 'f64'],
      ['bench', 'fake_bench', '--seq-len', '1.5'],
      ['bench', 'fake_bench', '--head-dim', '64'],
      ['bench', 'fake_bench', '--sweep', 'headDim=1,2'],
      ['bench', 'fake_bench', '--sweep', 'seqLen=a,b'],
      ['bench', 'fake_bench', '--plot', join(tmp, 'x.svg')],
      ['bench', 'fake_bench', '--backend', 'metal'],
      ['bench', 'fake_bench', '--threads', '0'],
      ['bench', 'nope'],
      ['bench'],
      ['frobnicate'],
      [],
    ]) {
      const c = capture();
      expect(await main(bad, { io: c.io, registry: reg }), bad.join(' ')).toBe(2);
      expect(c.o.err, bad.join(' ')).toMatch(/select-attn: /);
    }
  });

  it('parses sweep lists and ranges', () => {
    expect(parseSweep(fakeBench, 'seq-len=1024..8192').values).toEqual([1024, 2048, 4096, 8192]);
    expect(parseSweep(fakeBench, 'seqLen=1..10+3').values).toEqual([1, 4, 7, 10]);
    expect(parseSweep(fakeBench, 'seq_len=3..81x3').values).toEqual([3, 9, 27, 81]);
    expect(parseSweep(fakeBench, 'dtype=f32,f16')).toEqual({ name: 'dtype', values: ['f32', 'f16'] });
    expect(parseSweep(fakeBench, 'causal=true,false').values).toEqual([true, false]);
  });
});

describe('plot', () => {
  it('writes a self-contained SVG for numeric and categorical x', () => {
    const s = lineChartSvg({ title: 'a<b', xLabel: 'x', yLabel: 'y', series: [{ name: 'cpu', points: [{ x: 1024, y: 3 }, { x: 32768, y: 9 }] }, { name: 'one', points: [{ x: 4096, y: NaN }] }] });
    expect(s).toContain('a&lt;b');
    expect(s).toContain('(log scale)');
    expect(s).toContain('>32768<');
    const c = lineChartSvg({ title: 't', xLabel: 'dtype', yLabel: 'GB/s', series: [{ name: 'cpu', points: [{ x: 'f32', y: 1 }, { x: 'bf16', y: 2 }] }] });
    expect(c).toContain('>bf16<');
    expect(c).not.toContain('NaN');
  });
});

/** A quest_metadata call's inputs on a small random paged cache (bf16, shuffled table, partial block, an empty sequence). */
function questMetadataInputs(seed: number): Record<string, HostTensor> {
  const rng = new Rng(seed);
  const [bs, N, D, metaRows, numBlocks, numMetaPages] = [8, 2, 16, 4, 12, 5];
  const lens = [19, 0, 8];
  const B = lens.length;
  const vals = Array.from({ length: numBlocks * bs * N * D }, () => rng.normal());
  const ids = rng.shuffle(Array.from({ length: numBlocks }, (_, i) => i));
  const pages = rng.shuffle(Array.from({ length: numMetaPages }, (_, i) => i));
  const meta = () => tensor('bf16', [numMetaPages, metaRows, N, D], f32ToBf16(Array.from({ length: numMetaPages * metaRows * N * D }, () => 7)));
  return {
    kCache: tensor('bf16', [numBlocks, bs, N, D], f32ToBf16(vals)),
    blockTables: tensor('i32', [B, 3], Int32Array.from(ids.slice(0, 3 * B))),
    seqLens: tensor('i32', [B], Int32Array.from(lens)),
    metaBlockTables: tensor('i32', [B, 1], Int32Array.from(pages.slice(0, B))),
    maxMeta: meta(),
    minMeta: meta(),
  };
}

const qmSuite: FamilySuite = {
  family: 'quest_metadata',
  cases: () => [],
  run: {
    inputs: ['kCache', 'blockTables', 'seqLens', 'metaBlockTables', 'maxMeta', 'minMeta'],
    optionalInputs: ['startBlocks'],
    outputs: ['maxMeta', 'minMeta'],
    call(t, o, backend) {
      questMetadata({ ...(t as never), layout: (o.layout as 'NHD' | 'HND' | undefined) ?? 'NHD' }, { backend });
      return { maxMeta: t.maxMeta, minMeta: t.minMeta };
    },
  },
};

describe('select-attn run', () => {
  it('runs quest_metadata on .npy inputs and matches a direct call', async () => {
    // the family's own run spec once experiments/2_quest_metadata exists, else the same spec inline
    const found = await discover();
    const reg = found.suites.get('quest_metadata')?.run ? found : registry([qmSuite]);
    const inputs = questMetadataInputs(1234);
    const inDir = join(tmp, 'qm-in');
    const outDir = join(tmp, 'qm-out');
    mkdirSync(inDir, { recursive: true });
    for (const [k, t] of Object.entries(inputs)) writeFileSync(join(inDir, `${k}.npy`), writeNpy(t));
    writeFileSync(join(inDir, 'options.json'), JSON.stringify({ layout: 'NHD' }));
    const { io, o } = capture();
    expect(await main(['run', 'quest_metadata', '--inputs', inDir, '--out', outDir], { io, registry: reg })).toBe(0);
    expect(o.out).toContain('maxMeta.npy: bf16 [5, 4, 2, 16]');
    const direct = questMetadataInputs(1234);
    questMetadata(direct as never);
    for (const k of ['maxMeta', 'minMeta']) {
      const got = readNpy(readFileSync(join(outDir, `${k}.npy`)), { name: k });
      expect(got.dtype).toBe('bf16');
      expect(Array.from(got.data)).toEqual(Array.from(direct[k].data));
      // the call did write something (rows of real blocks differ from the initial 7s)
      expect(Array.from(got.data).some((v, i) => v !== inputs[k].data[i])).toBe(true);
    }
  });

  it('reads f32 files as bf16 through options.json dtypes and explains missing inputs', async () => {
    const reg = registry([qmSuite]);
    const inputs = questMetadataInputs(99);
    const inDir = join(tmp, 'qm-in32');
    mkdirSync(inDir, { recursive: true });
    for (const [k, t] of Object.entries(inputs)) writeFileSync(join(inDir, `${k}.npy`), writeNpy(t.dtype === 'bf16' ? tensor('f32', t.shape, toF32(t)) : t));
    writeFileSync(join(inDir, 'options.json'), JSON.stringify({ dtypes: { kCache: 'bf16', maxMeta: 'bf16', minMeta: 'bf16' } }));
    const outDir = join(tmp, 'qm-out32');
    expect(await main(['run', '9_quest_metadata', '--inputs', inDir, '--out', outDir], { io: capture().io, registry: reg })).toBe(0);
    const direct = questMetadataInputs(99);
    questMetadata(direct as never);
    expect(Array.from(readNpy(readFileSync(join(outDir, 'maxMeta.npy'))).data)).toEqual(Array.from(direct.maxMeta.data));
    // without the override the f32 files meet a dtype check of the op: exit 1 with the op's message
    writeFileSync(join(inDir, 'options.json'), JSON.stringify({ dtypes: { kCache: 'bf16' } }));
    const e = capture();
    expect(await main(['run', 'quest_metadata', '--inputs', inDir, '--out', outDir], { io: e.io, registry: reg })).toBe(1);
    expect(e.o.err).toMatch(/TypeError: quest_metadata \(cpu\): maxMeta\.dtype: expected bf16, received f32/);
    const m = capture();
    expect(await main(['run', 'quest_metadata', '--inputs', join(tmp, 'nowhere'), '--out', outDir], { io: m.io, registry: reg })).toBe(2);
    const d = join(tmp, 'qm-missing');
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'kCache.npy'), writeNpy(inputs.kCache));
    const n = capture();
    expect(await main(['run', 'quest_metadata', '--inputs', d, '--out', outDir], { io: n.io, registry: reg })).toBe(2);
    expect(n.o.err).toMatch(/missing input .*blockTables\.npy/);
    writeFileSync(join(inDir, 'options.json'), JSON.stringify({ dtypes: { kCache: 'f8' } }));
    expect(await main(['run', 'quest_metadata', '--inputs', inDir, '--out', outDir], { io: capture().io, registry: reg })).toBe(2);
    expect(await main(['run', 'nope', '--inputs', inDir, '--out', outDir], { io: capture().io, registry: reg })).toBe(2);
  });
});

describe('family discovery', () => {
  it('imports cases and benchmark modules by folder and keys them by family', async () => {
    const root = join(tmp, 'pkg');
    const ex = (f: string, file: string, body: string) => {
      mkdirSync(join(root, 'experiments', f), { recursive: true });
      writeFileSync(join(root, 'experiments', f, file), body);
    };
    ex('1_alpha', 'cases.js', "export const suite = { family: 'alpha', cases: () => [{ id: 'alpha(x=1)', family: 'alpha', run: () => ({ pass: true, detail: 'ok' }) }] };");
    ex('1_alpha', 'benchmark.js', "export const bench = { family: 'alpha_decode', params: [], backends: ['cpu'], setup() { throw new Error('x'); } };");
    ex('2_broken', 'cases.js', "throw new Error('cannot load');");
    ex('3_empty', 'cases.js', 'export const nothing = 1;');
    ex('4_notes', 'README.md', '# no modules here');
    const reg = await discover(root, '.js');
    expect([...reg.suites.keys()]).toEqual(['alpha']);
    expect([...reg.benches.keys()]).toEqual(['alpha_decode']);
    expect(reg.problems.map((p) => p.message)).toEqual(['cannot load', 'exports no `suite: FamilySuite`']);
    expect(resolveFamily(reg.suites.keys(), reg.folders, '1_alpha')).toBe('alpha');
    expect(resolveFamily(reg.benches.keys(), reg.folders, 'alpha_decode')).toBe('alpha_decode');
    expect(resolveFamily(reg.suites.keys(), reg.folders, 'beta')).toBeUndefined();
    const { io, o } = capture();
    expect(await main(['verify', '--backend', 'cpu', '--seed', '3'], { io, root })).toBe(0);
    expect(o.out).toContain('1 passed, 0 failed');
    expect(o.err).toContain('cannot load');
    // this package's own experiments load without problems
    const own = await discover();
    expect(own.problems).toEqual([]);
  });

  it('is a bin with a shebang (and runs from dist/ when built)', () => {
    expect(readFileSync(join(here, 'main.ts'), 'utf8').split('\n')[0]).toBe('#!/usr/bin/env node');
    const bin = resolve(here, '..', '..', 'dist', 'src', 'cli', 'main.js');
    if (!existsSync(bin)) return; // `npm test` builds dist/ before vitest; a bare vitest run may not have
    const out = execFileSync(process.execPath, [bin, 'info', '--json'], { encoding: 'utf8' });
    expect(JSON.parse(out).backends[0].name).toBe('cpu');
  });
});
