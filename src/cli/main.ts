#!/usr/bin/env node
// The `select-attn` command line (yargs): info, verify, bench, run. main() is exported so tests run
// commands in-process; families are discovered at run time from experiments/*/{cases,benchmark}.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import yargs, { type Argv } from 'yargs';
import { setNumThreads } from '../backends.js';
import { SelectAttnError } from '../errors.js';
import type { BenchFamily } from '../testing/bench.js';
import { type Registry, discover, resolveFamily } from '../testing/registry.js';
import { BENCH_RESERVED, type BenchArgs, benchCommand, kebab } from './commands/bench.js';
import { type InfoArgs, infoCommand } from './commands/info.js';
import { type RunArgs, runCommand } from './commands/run.js';
import { type VerifyArgs, verifyCommand } from './commands/verify.js';
import { type Io, UsageError, parseBytes, processIo } from './format.js';

export interface CliDeps {
  io?: Io;
  /** families to use instead of discovering experiments/ (tests) */
  registry?: Registry;
  /** folder holding experiments/ to discover from (default: SA_EXPERIMENTS_ROOT, else this package's) */
  root?: string;
}

// Global flags that take a value, so the pre-scan below can skip their values.
const VALUE_FLAGS = new Set(['--threads']);

/** The family named after `bench`, found before yargs runs because its flags depend on it. */
function benchFamilyArg(argv: readonly string[]): string | undefined {
  const pos: string[] = [];
  for (let i = 0; i < argv.length && pos.length < 2; i++) {
    const t = argv[i];
    if (t === '--') break;
    if (t.startsWith('-')) {
      if (VALUE_FLAGS.has(t)) i++;
      continue;
    }
    pos.push(t);
  }
  return pos[0] === 'bench' ? pos[1] : undefined;
}

function addBenchFlags(y: Argv, bench: BenchFamily | undefined): Argv {
  if (!bench) return y;
  for (const p of bench.params) {
    if (BENCH_RESERVED.has(p.name)) continue;
    const type = p.type === 'int' || p.type === 'float' ? 'number' : p.type === 'bool' ? 'boolean' : 'string';
    y = y.option(kebab(p.name), { type, describe: p.describe, default: p.default, ...(p.choices ? { choices: [...p.choices] } : {}), group: `${bench.family} parameters:` });
  }
  return y;
}

/**
 * Runs the CLI on `argv` (without node and the script) and resolves to the exit code: 0 success,
 * 1 a failed verification / benchmark point / kernel call, 2 a usage error.
 * @throws never: every error becomes a message on stderr and an exit code
 */
export async function main(argv: string[], deps: CliDeps = {}): Promise<number> {
  // yargs reads a lone '-' as a positional; `--json -` means stdout
  argv = argv.flatMap((t, i) => (t === '-' && argv[i - 1]?.startsWith('--') ? [] : t.startsWith('--') && argv[i + 1] === '-' ? [`${t}=-`] : [t]));
  const io = deps.io ?? processIo();
  let registry: Registry | undefined = deps.registry;
  const reg = async (): Promise<Registry> => {
    registry ??= await discover(deps.root ?? (io.env.SA_EXPERIMENTS_ROOT || undefined));
    return registry;
  };
  let code = 0;
  try {
    let bench: BenchFamily | undefined;
    const fam = benchFamilyArg(argv);
    if (fam !== undefined) {
      const r = await reg();
      const key = resolveFamily(r.benches.keys(), r.folders, fam);
      bench = key ? r.benches.get(key) : undefined;
      if (!bench) {
        for (const p of r.problems) io.err(`warning: ${p.file}: ${p.message}`);
        throw new UsageError(`bench: no benchmark named ${fam}; found: ${[...r.benches.keys()].join(', ') || `none (no experiments/*/benchmark under ${r.root})`}`);
      }
    }
    const y = yargs(argv)
      .scriptName('select-attn')
      .usage('$0 <command> [options]\n\nSparse-attention kernels: Quest metadata and selection, paged attention, KV cache writes.')
      .exitProcess(false)
      .strict()
      .wrap(Math.min(110, process.stdout.columns || 100))
      .option('threads', { type: 'number', describe: 'cpu backend threads (default: all cores)', global: true })
      .middleware((a) => {
        if (a.threads !== undefined) {
          if (!(Number.isSafeInteger(a.threads) && (a.threads as number) >= 1)) throw new UsageError(`--threads: expected a positive integer, received ${a.threads}`);
          setNumThreads(a.threads as number);
        }
      })
      .command(
        'info',
        'backends (and why any is unavailable), CPU features, threads; --ceiling measures the streaming-read ceiling',
        (yy) =>
          yy
            .option('json', { type: 'boolean', describe: 'print JSON' })
            .option('ceiling', { type: 'boolean', describe: 'measure the streaming-read ceiling (ms per pass, GB/s)' })
            .option('backend', { type: 'string', describe: 'backend for --ceiling', default: 'cpu' })
            .option('bytes', { type: 'string', describe: 'bytes read per pass for --ceiling (4096, 64k, 256M, 1G)', default: '256M' })
            .option('reps', { type: 'number', describe: 'passes per sample for --ceiling (default: calibrated)' })
            .example('$0 info --json', '')
            .example('$0 info --ceiling --bytes 1G', ''),
        (a) => {
          code = infoCommand({ ...(a as unknown as InfoArgs), bytes: parseBytes(a.bytes as string) }, io);
        },
      )
      .command(
        'verify',
        'run every case of the shared sweeps against the references; exit 1 on any failure',
        (yy) =>
          yy
            .option('backend', { type: 'string', describe: 'backend(s), comma-separated (default: every available backend implementing each family)' })
            .option('family', { type: 'string', describe: 'families, comma-separated (default: all)' })
            .option('seed', { type: 'number', describe: 'seed for the inputs (default: random, printed)' })
            .option('filter', { type: 'string', describe: 'only cases whose id contains this' })
            .option('json', { type: 'string', describe: 'write {backends, seed, cases: [{id, family, backend, pass, detail}]} to FILE' })
            .option('list', { type: 'boolean', describe: 'list case ids and exit' })
            .option('verbose', { type: 'boolean', alias: 'v', describe: 'print passing cases too' })
            .example('$0 verify --backend cpu', '')
            .example('$0 verify --family quest_select --seed 1234 --json verify.json', ''),
        async (a) => {
          code = await verifyCommand(a as unknown as VerifyArgs, await reg(), io);
        },
      )
      .command(
        'bench <family>',
        'benchmark a family: median/p10/p90 us, bytes, GB/s and the fraction of the streaming-read ceiling',
        (yy) =>
          addBenchFlags(
            yy
              .positional('family', { type: 'string', describe: 'family (e.g. quest_select, paged_attention, quest_decode)' })
              .option('backend', { type: 'string', describe: 'backend(s), comma-separated', default: 'cpu' })
              .option('sweep', { type: 'string', array: true, describe: 'name=v1,v2,... or name=a..b (doubling); repeat for a grid' })
              .option('reps', { type: 'number', describe: 'calls per timed sample (default: calibrated to ~25 ms)' })
              .option('samples', { type: 'number', describe: 'timed samples per point', default: 11 })
              .option('ceiling', { type: 'boolean', describe: 'measure the streaming-read ceiling (--no-ceiling skips it)', default: true })
              .option('json', { type: 'string', describe: 'write the results as JSON to FILE (- for stdout)' })
              .option('plot', { type: 'string', describe: 'with --sweep: write an SVG of GB/s (or time) against the swept parameter' })
              .option('plot-y', { choices: ['gbps', 'time'] as const, describe: 'y axis of --plot', default: 'gbps' as const })
              .option('peers', { type: 'string', describe: 'merge peer results {cases: [{params, peer, medianUs}]} by params' })
              .example('$0 bench quest_select --seq-len 32768 --dtype f16', '')
              .example('$0 bench paged_attention --sweep seq-len=1024..32768 --plot pa.svg', '')
              .epilogue(bench ? '' : 'Family parameters appear as flags once a family is named: select-attn bench <family> --help'),
            bench,
          ),
        async (a) => {
          if (!bench) throw new UsageError('bench: name a family');
          code = await benchCommand(bench, a as unknown as BenchArgs, io);
        },
      )
      .command(
        'run <family>',
        'call a kernel on tensors from DIR/<name>.npy (+ DIR/options.json); write OUT/<name>.npy',
        (yy) =>
          yy
            .positional('family', { type: 'string', describe: 'family (e.g. quest_metadata, quest_select, paged_attention, kv_cache)' })
            .option('inputs', { type: 'string', demandOption: true, describe: 'directory of <name>.npy inputs and options.json' })
            .option('out', { type: 'string', demandOption: true, describe: 'directory for the <name>.npy outputs' })
            .option('backend', { type: 'string', describe: 'backend', default: 'cpu' })
            .example('$0 run quest_select --inputs dump/ --out result/', '')
            .epilogue('.npy dtypes: <f4 f32, <f2 f16, <u2 bf16 (raw words), <i4 i32; <f8 and <i8 are converted. options.json may hold {"dtypes": {"maxMeta": "bf16"}} to read a file as another dtype.'),
        async (a) => {
          code = await runCommand(a as unknown as RunArgs, await reg(), io);
        },
      )
      .demandCommand(1, 'name a command: info, verify, bench or run')
      .recommendCommands()
      .help()
      .alias('h', 'help')
      .fail((msg, err) => {
        throw err ?? new UsageError(msg);
      });
    await y.parseAsync();
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`select-attn: ${e.message}\n(see select-attn --help)`);
      return 2;
    }
    if (e instanceof SelectAttnError) io.err(`select-attn: ${e.code} (${e.family}, ${e.backend}): ${e.message}`);
    else if (e instanceof Error) io.err(`select-attn: ${e.name}: ${e.message}${io.env.SA_DEBUG ? '\n' + e.stack : ''}`);
    else io.err(`select-attn: ${String(e)}`);
    return 1;
  }
  return code;
}

// Run when executed as the bin (node dist/src/cli/main.js or the npm bin symlink), not when imported.
function isEntry(): boolean {
  try {
    return !!process.argv[1] && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntry()) {
  main(process.argv.slice(2)).then(
    (c) => {
      process.exitCode = c;
    },
    (e) => {
      process.stderr.write(`select-attn: ${e instanceof Error ? e.stack : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
