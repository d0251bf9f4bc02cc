// CPU peer for the paged_attention benchmark: onnxruntime-node's com.microsoft.GroupQueryAttention on a
// contiguous KV cache, decode (one new token per sequence). Loaded only when the package is present
// (dynamic import; SA_ORT_DIR may point at a folder whose node_modules holds it). The ONNX model is
// encoded here by hand (a few protobuf fields), so no onnx tooling is needed.
import { createRequire } from 'node:module';
import { join } from 'node:path';

// ---- minimal protobuf writer ----
class Pb {
  private bytes: number[] = [];
  private varint(v: number): void {
    let x = BigInt(v);
    if (x < 0n) x += 1n << 64n;
    do {
      let b = Number(x & 0x7fn);
      x >>= 7n;
      if (x > 0n) b |= 0x80;
      this.bytes.push(b);
    } while (x > 0n);
  }
  private key(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }
  int(field: number, v: number): this {
    this.key(field, 0);
    this.varint(v);
    return this;
  }
  float(field: number, v: number): this {
    this.key(field, 5);
    const b = new Uint8Array(new Float32Array([v]).buffer);
    this.bytes.push(...b);
    return this;
  }
  bytesField(field: number, data: Uint8Array): this {
    this.key(field, 2);
    this.varint(data.length);
    for (const x of data) this.bytes.push(x);
    return this;
  }
  str(field: number, s: string): this {
    return this.bytesField(field, new TextEncoder().encode(s));
  }
  msg(field: number, m: Pb): this {
    return this.bytesField(field, m.done());
  }
  done(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

const ONNX_FLOAT = 1;
const ONNX_INT32 = 6;
const ONNX_FLOAT16 = 10;

function valueInfo(name: string, elem: number, dims: (number | string)[]): Pb {
  const shape = new Pb();
  for (const d of dims) shape.msg(1, typeof d === 'number' ? new Pb().int(1, d) : new Pb().str(2, d));
  return new Pb().str(1, name).msg(2, new Pb().msg(1, new Pb().int(1, elem).msg(2, shape)));
}

/** ModelProto bytes: one GroupQueryAttention node, decode with past/present sharing one buffer. */
export function gqaModel(B: number, H: number, N: number, D: number, maxSeq: number, fp16: boolean, scale: number): Uint8Array {
  const et = fp16 ? ONNX_FLOAT16 : ONNX_FLOAT;
  const node = new Pb();
  for (const i of ['query', 'key', 'value', 'past_key', 'past_value', 'seqlens_k', 'total_sequence_length']) node.str(1, i);
  for (const o of ['output', 'present_key', 'present_value']) node.str(2, o);
  node.str(3, 'gqa').str(4, 'GroupQueryAttention').str(7, 'com.microsoft');
  node.msg(5, new Pb().str(1, 'num_heads').int(3, H).int(20, 2));
  node.msg(5, new Pb().str(1, 'kv_num_heads').int(3, N).int(20, 2));
  node.msg(5, new Pb().str(1, 'scale').float(2, scale).int(20, 1));
  const graph = new Pb().msg(1, node).str(2, 'decode');
  graph.msg(11, valueInfo('query', et, [B, 1, H * D]));
  graph.msg(11, valueInfo('key', et, [B, 1, N * D]));
  graph.msg(11, valueInfo('value', et, [B, 1, N * D]));
  graph.msg(11, valueInfo('past_key', et, [B, N, maxSeq, D]));
  graph.msg(11, valueInfo('past_value', et, [B, N, maxSeq, D]));
  graph.msg(11, valueInfo('seqlens_k', ONNX_INT32, [B]));
  graph.msg(11, valueInfo('total_sequence_length', ONNX_INT32, []));
  graph.msg(12, valueInfo('output', et, [B, 1, H * D]));
  graph.msg(12, valueInfo('present_key', et, [B, N, maxSeq, D]));
  graph.msg(12, valueInfo('present_value', et, [B, N, maxSeq, D]));
  return new Pb()
    .int(1, 8)
    .str(2, 'select-attn-bench')
    .msg(7, graph)
    .msg(8, new Pb().str(1, '').int(2, 17))
    .msg(8, new Pb().str(1, 'com.microsoft').int(2, 1))
    .done();
}

// onnxruntime-node's API, as much of it as this file uses (the package may be absent).
interface OrtTensor {
  dims: readonly number[];
  data: unknown;
}
interface OrtSession {
  run(feeds: Record<string, OrtTensor>, fetches?: Record<string, OrtTensor | null> | string[]): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}
export interface Ort {
  Tensor: new (type: string, data: unknown, dims: readonly number[]) => OrtTensor;
  InferenceSession: { create(model: Uint8Array, opts?: Record<string, unknown>): Promise<OrtSession> };
  env: { versions?: { common?: string }; [k: string]: unknown };
}

/** onnxruntime-node when installed (or under SA_ORT_DIR), else undefined. */
export async function loadOrt(): Promise<Ort | undefined> {
  const name = 'onnxruntime-node';
  try {
    return (await import(name)) as Ort;
  } catch {
    /* not installed beside select-attn */
  }
  const dir = process.env.SA_ORT_DIR;
  if (dir) {
    try {
      return createRequire(join(dir, 'noop.js'))(name) as Ort;
    } catch {
      /* not there either */
    }
  }
  return undefined;
}

export interface OrtDecode {
  /** ms per session.run (mean over reps) */
  time(reps: number): Promise<number>;
  /** output [B, H * D] as f32 values, for a sanity check against select-attn */
  output(): Promise<Float32Array>;
  release(): Promise<void>;
  version: string;
}

/**
 * A GQA decode session over a contiguous cache of maxSeq tokens per sequence, every sequence holding
 * seqLen tokens after this step. The past and present caches are one pre-allocated buffer, so the op
 * appends in place instead of copying the cache (timing the attention, not a 2x cache copy).
 * kv values are produced by fill(k, v) in [B, N, maxSeq, D] order.
 */
export async function ortDecode(
  ort: Ort, B: number, H: number, N: number, D: number, seqLen: number, fp16: boolean, threads: number,
  fill: (q: Float32Array | Uint16Array, k: Float32Array | Uint16Array, v: Float32Array | Uint16Array, newK: Float32Array | Uint16Array, newV: Float32Array | Uint16Array) => void,
): Promise<OrtDecode> {
  const scale = 1 / Math.sqrt(D);
  const session = await ort.InferenceSession.create(gqaModel(B, H, N, D, seqLen, fp16, scale), {
    intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionProviders: ['cpu'],
  });
  const et = fp16 ? 'float16' : 'float32';
  const arr = (n: number) => (fp16 ? new Uint16Array(n) : new Float32Array(n));
  const q = arr(B * H * D);
  const k = arr(B * N * seqLen * D);
  const v = arr(B * N * seqLen * D);
  const nk = arr(B * N * D);
  const nv = arr(B * N * D);
  fill(q, k, v, nk, nv);
  const pk = new ort.Tensor(et, k, [B, N, seqLen, D]);
  const pv = new ort.Tensor(et, v, [B, N, seqLen, D]);
  const feeds = {
    query: new ort.Tensor(et, q, [B, 1, H * D]),
    key: new ort.Tensor(et, nk, [B, 1, N * D]),
    value: new ort.Tensor(et, nv, [B, 1, N * D]),
    past_key: pk,
    past_value: pv,
    seqlens_k: new ort.Tensor('int32', new Int32Array(B).fill(seqLen - 1), [B]),
    total_sequence_length: new ort.Tensor('int32', new Int32Array([seqLen]), []),
  };
  const out = new ort.Tensor(et, arr(B * H * D), [B, 1, H * D]);
  const fetches = { output: out, present_key: pk, present_value: pv };
  await session.run(feeds, fetches);  // warm-up
  return {
    async time(reps: number) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < reps; i++) await session.run(feeds, fetches);
      return Number(process.hrtime.bigint() - t0) / 1e6 / reps;
    },
    async output() {
      const r = await session.run(feeds, fetches);
      const d = r.output.data as Float32Array | Uint16Array;
      if (d instanceof Float32Array) return Float32Array.from(d);
      const { f16ToF32 } = await import('../../src/tensor.js');
      return f16ToF32(d);
    },
    release: () => session.release(),
    version: String((ort.env.versions as { common?: string } | undefined)?.common ?? 'unknown'),
  };
}
