// `select-attn run <family> --inputs DIR --out DIR`: calls a kernel on tensors read from
// DIR/<name>.npy (names from the suite's RunSpec) with scalar options from DIR/options.json, and
// writes the outputs to OUT/<name>.npy, so users can check the kernels on tensors from their models.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BackendName } from '../../backends.js';
import { readNpy, writeNpy } from '../../npy.js';
import { DTYPES, type DType, type HostTensor } from '../../tensor.js';
import { type Registry, resolveFamily } from '../../testing/registry.js';
import { type Io, UsageError } from '../format.js';
import { parseBackends } from './verify.js';

export interface RunArgs {
  family: string;
  inputs: string;
  out: string;
  backend?: string;
}

function readOptions(dir: string): { options: Record<string, unknown>; dtypes: Record<string, DType> } {
  const path = join(dir, 'options.json');
  if (!existsSync(path)) return { options: {}, dtypes: {} };
  let j: unknown;
  try {
    j = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UsageError(`${path}: ${(e as Error).message}`);
  }
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new UsageError(`${path}: expected a JSON object of scalar options`);
  const { dtypes = {}, ...options } = j as Record<string, unknown>;
  if (typeof dtypes !== 'object' || dtypes === null) throw new UsageError(`${path}: "dtypes" must map tensor names to ${DTYPES.join(' | ')}`);
  for (const [k, v] of Object.entries(dtypes)) if (!DTYPES.includes(v as DType)) throw new UsageError(`${path}: dtypes.${k}: expected ${DTYPES.join(' | ')}, received ${String(v)}`);
  return { options, dtypes: dtypes as Record<string, DType> };
}

/**
 * Reads the inputs, calls the family's RunSpec and writes the outputs.
 * @returns 0 on success
 * @throws UsageError on a missing or unreadable input, a bad options.json or an unknown family;
 *   the kernel call's own TypeError / RangeError / SelectAttnError propagate (main exits 1)
 */
export async function runCommand(a: RunArgs, reg: Registry, io: Io): Promise<number> {
  const key = resolveFamily(reg.suites.keys(), reg.folders, a.family);
  const suite = key ? reg.suites.get(key) : undefined;
  const withRun = [...reg.suites.values()].filter((s) => s.run).map((s) => s.family);
  if (!suite) throw new UsageError(`run: no family ${a.family}; families with a run spec: ${withRun.join(', ') || 'none'}`);
  const spec = suite.run;
  if (!spec) throw new UsageError(`run: ${suite.family} has no run spec; families with one: ${withRun.join(', ') || 'none'}`);
  const backend = (parseBackends(a.backend) ?? ['cpu'])[0] as BackendName;
  if (!existsSync(a.inputs)) throw new UsageError(`--inputs: no directory ${a.inputs}`);
  const { options, dtypes } = readOptions(a.inputs);
  const tensors: Record<string, HostTensor> = {};
  const load = (name: string, required: boolean) => {
    const path = join(a.inputs, `${name}.npy`);
    if (!existsSync(path)) {
      if (required) throw new UsageError(`run ${suite.family}: missing input ${path} (inputs: ${spec.inputs.join(', ')}; optional: ${(spec.optionalInputs ?? []).join(', ') || 'none'})`);
      return;
    }
    try {
      tensors[name] = readNpy(readFileSync(path), { dtype: dtypes[name], name: path });
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  };
  for (const n of spec.inputs) load(n, true);
  for (const n of spec.optionalInputs ?? []) load(n, false);
  for (const n of Object.keys(dtypes)) if (!(n in tensors)) io.err(`warning: options.json dtypes.${n} names no input that was read`);
  const outputs = await spec.call(tensors, options, backend);
  mkdirSync(a.out, { recursive: true });
  for (const name of spec.outputs) {
    const t = outputs[name];
    if (!t) continue;
    const path = join(a.out, `${name}.npy`);
    writeFileSync(path, writeNpy(t));
    io.out(`${path}: ${t.dtype} [${t.shape.join(', ')}]`);
  }
  return 0;
}
