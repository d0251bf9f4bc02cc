// Helpers for the cuda check and bench scripts: the addon, device buffers, seeded random data,
// f16/bf16 conversion. Plain ESM JavaScript so it runs with a bare `node` on the GPU machine.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
export const addon = require(process.env.SA_ADDON ?? join(here, '..', '..', 'build', 'Release', 'select_attn.node'));

export class Rng {
  constructor(seed) { this.s = seed >>> 0 || 0x9e3779b9; }
  next() {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(lo, hi) { return lo + Math.floor(this.next() * (hi - lo)); }
  normal() {
    const u = 1 - this.next(), v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  shuffle(a) {
    for (let i = a.length - 1; i > 0; i--) { const j = this.int(0, i + 1); [a[i], a[j]] = [a[j], a[i]]; }
    return a;
  }
}

const f32 = new Float32Array(1), u32 = new Uint32Array(f32.buffer);
export function toBf16(x) {
  f32[0] = x;
  const u = u32[0];
  if ((u & 0x7f800000) === 0x7f800000) return (u >>> 16) | ((u & 0xffff) ? 0x40 : 0);
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}
export function fromBf16(h) { u32[0] = h << 16; return f32[0]; }
export function toF16(x) {
  f32[0] = x; const v = f32[0];
  const s = v < 0 || Object.is(v, -0) ? 0x8000 : 0, a = Math.abs(v);
  if (Number.isNaN(v)) return 0x7e00;
  if (a >= 65520) return s | 0x7c00;
  if (a < 2 ** -24 * 0.5) return s;
  if (a < 2 ** -14) { // subnormal: round to nearest even multiple of 2^-24
    const m = a / 2 ** -24, r = Math.floor(m), f = m - r;
    const q = f > 0.5 || (f === 0.5 && (r & 1)) ? r + 1 : r;
    return s | q;
  }
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--; if (2 ** (e + 1) <= a) e++;
  const m = a / 2 ** e - 1, mm = m * 1024, r = Math.floor(mm), f = mm - r;
  let q = f > 0.5 || (f === 0.5 && (r & 1)) ? r + 1 : r;
  if (q === 1024) { q = 0; e++; }
  if (e > 15) return s | 0x7c00;
  return s | ((e + 15) << 10) | q;
}
export function fromF16(h) {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 31, m = h & 1023;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** A float tensor of n values drawn by gen(), stored as dtype; returns {data (typed), vals (rounded f64)}. */
export function floats(dtype, n, gen) {
  const data = dtype === 'f32' ? new Float32Array(n) : new Uint16Array(n);
  const vals = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const x = gen(i);
    if (dtype === 'f32') { data[i] = x; vals[i] = data[i]; }
    else if (dtype === 'bf16') { data[i] = toBf16(x); vals[i] = fromBf16(data[i]); }
    else { data[i] = toF16(x); vals[i] = fromF16(data[i]); }
  }
  return { data, vals };
}
export function decode(dtype, data) {
  const out = new Float64Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = dtype === 'f32' ? data[i] : dtype === 'bf16' ? fromBf16(data[i]) : fromF16(data[i]);
  return out;
}
export const POISON = { f32: NaN, f16: 0x7e00, bf16: 0x7fc0, i32: -0x55555556 };

/** Device buffer holding a typed array's bytes (plus optional guard words around it). */
export function dev(arr) {
  const h = addon.deviceAlloc('cuda', arr.byteLength);
  if (arr.byteLength) addon.deviceCopy(h, arr, 0, 'upload');
  return h;
}
/** quest_select arguments on device (bf16 query and metadata, groupReduce 'mean', no forced blocks)
 * for B sequences of `len` tokens (L for the metadata's size): metadata pages filled from `chunk`
 * (bf16 bits) and shuffled by `rng`. `_metaBytes` is the max + min metadata a call reads. */
export function questSelectArgs(rng, chunk, { B, L, len = L, H, N, D, bs, k }) {
  const ES = 2, R = bs, Lb = Math.ceil(L / bs), pages = Math.ceil(Lb / R), numMeta = B * pages, E = numMeta * R * N * D;
  const mx = addon.deviceAlloc('cuda', E * ES), mn = addon.deviceAlloc('cuda', E * ES);
  for (const h of [mx, mn]) for (let off = 0; off < E * ES; off += chunk.byteLength) addon.deviceCopy(h, chunk.subarray(0, Math.min(chunk.length, (E * ES - off) / 2)), off, 'upload');
  const ids = rng.shuffle([...Array(numMeta).keys()]);
  return {
    queryDtype: 'bf16', metaDtype: 'bf16', numSeqs: B, numQoHeads: H, numKvHeads: N, headDim: D, blockSize: bs, metaRows: R,
    maxMetaPagesPerSeq: pages, numMetaPages: numMeta, k, groupReduce: 'mean', sinkBlocks: 0, windowBlocks: 0,
    query: dev(floats('bf16', B * H * D, () => rng.normal()).data), maxMeta: mx, minMeta: mn, metaBlockTables: dev(Int32Array.from(ids)),
    seqLens: dev(new Int32Array(B).fill(len)), tokensSinceUpdate: dev(new Int32Array(B)), selected: addon.deviceAlloc('cuda', B * N * k * 4),
    _metaBytes: 2 * B * N * Lb * D * ES,
  };
}
export function fetch(h, like) {
  const out = new like.constructor(like.length);
  addon.synchronize('cuda');
  if (out.byteLength) addon.deviceCopy(h, out, 0, 'download');
  return out;
}
