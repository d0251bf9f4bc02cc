// In-process A/B of kernel variants on the cold quest_decode step (B=4, H=32, N=8, D=128, bs 16, 32K, k=128,
// bf16): one problem, per round every (select variant, attention variant) pair in a random order, each
// after a 1 GiB flush; the variant names go to env SA_QD_SEL / SA_QD_ATT for a build that reads them
// (none in the committed kernels). Rounds in which other processes used more than 80 ms of CPU are
// dropped and re-run. Selections must stay identical; output differences are reported.
// usage (after npx tsc): node experiments/5_quest_decode/ab_cold.mjs <repo dir> <NHD|HND> <alloc js|host|huge|hugeall>
//          <rounds> <selVariants,comma> <attVariants,comma> [dense 0|1]
// alloc: js = JS ArrayBuffers (16 bytes past a 4 KiB page here), host = hostTensor for caches and metadata,
// huge = KV caches on hostTensor hugePages, hugeall = metadata too.
const [dir, layout, alloc, roundsS, selV, attV, denseS] = process.argv.slice(2);
const m = (p) => import(`${dir}/dist/${p}`);
const { genDecode } = await m('experiments/5_quest_decode/gen_data.js');
const { DecodeSession } = await m('experiments/5_quest_decode/loop.js');
const { questSelect } = await m('src/ops/quest_select.js');
const { pagedAttention } = await m('src/ops/paged_attention.js');
const { hostTensor } = await m('src/backends.js');
const B = 4, H = 32, N = 8, D = 128, bs = 16, seqLen = 32768, steps = 2, k = 128;
const p = genDecode({ dtype: 'bf16', B, H, N, D, bs, layout, promptLens: new Array(B).fill(seqLen - steps), steps, shuffleTables: true }, 20240611);
const s = new DecodeSession('cpu', p, { groupReduce: 'mean', sinkBlocks: 1, windowBlocks: 2 }, { hugePages: alloc === 'huge' || alloc === 'hugeall' });
if (alloc === 'host' || alloc === 'hugeall') {
  // replace the KV caches by 4 KiB-aligned native tensors (hostTensor without huge pages)
  for (const name of alloc === 'host' ? ['kCache', 'vCache', 'maxMeta', 'minMeta'] : ['maxMeta', 'minMeta']) {
    const t = s.args[name];
    const n = hostTensor(t.dtype, t.shape, { hugePages: alloc === 'hugeall' });
    s.args[name] = n;
  }
}
s.prefill();
for (let i = 0; i < steps; i++) s.append();
const opts = { backend: 'cpu' };
const first = questSelect(s.selectArgs(k), opts);
const selArgs = s.selectArgs(k, first);
const sparseArgs = s.attnArgs(first.selected);
const denseArgs = s.attnArgs();
const ref = Int32Array.from(first.selected.data);
const refOut = Float32Array.from(pagedAttention(sparseArgs, opts).out.data);
const flushBuf = new Uint8Array(1 << 30);
let fv = 0;
const flush = () => flushBuf.fill((fv = (fv + 1) & 0xff));
const sels = selV.split(','), atts = attV.split(',');
const res = {};
const rounds = +roundsS;
import { readFileSync } from 'node:fs';
const jiff = () => {
  const v = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const busy = v.reduce((a, b) => a + b, 0) - v[3] - v[4];
  const me = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  return [busy, +me[11] + +me[12]];
};
let discarded = 0;
for (let r = 0; r < rounds; r++) {
  const [b0, m0] = jiff();
  const snapshot = JSON.stringify(res);
  const combos = [];
  for (const sv of sels) for (const av of atts) combos.push([sv, av]);
  for (let i = combos.length - 1; i > 0; i--) { const j = Math.floor(Math.random() * (i + 1)); [combos[i], combos[j]] = [combos[j], combos[i]]; }
  for (const [sv, av] of combos) {
    process.env.SA_QD_SEL = sv;
    process.env.SA_QD_ATT = av; process.env.SA_QD_OFF = av;
    flush();
    const t0 = performance.now();
    questSelect(selArgs, opts);
    const t1 = performance.now();
    pagedAttention(sparseArgs, opts);
    const t2 = performance.now();
    const key = `sel${sv}/att${av}`;
    (res[key] ??= { sel: [], att: [], tot: [], dense: [] });
    res[key].sel.push((t1 - t0) * 1e3); res[key].att.push((t2 - t1) * 1e3); res[key].tot.push((t2 - t0) * 1e3);
    const sd = first.selected.data;
    if (!sv.startsWith('x')) for (let i = 0; i < ref.length; i++) if (sd[i] !== ref[i]) { console.log('SELECTION MISMATCH', key, i); process.exit(1); }
    const od = sparseArgs.out.data;
    if (!sv.startsWith('x')) for (let i = 0; i < refOut.length; i++) if (od[i] !== refOut[i]) { console.log('OUTPUT DIFFERS', key, i, od[i], refOut[i]); break; }
  }
  if (denseS === '1') {
    flush();
    const t0 = performance.now();
    pagedAttention(denseArgs, opts);
    (res.dense ??= []).push((performance.now() - t0) * 1e3);
  }
  const [b1, m1] = jiff();
  if ((b1 - b0) - (m1 - m0) > 8 && discarded < 40) {  // someone else ran: drop the round
    discarded++;
    const back = JSON.parse(snapshot);
    for (const k of Object.keys(res)) delete res[k];
    Object.assign(res, back);
    r--;
    await new Promise((ok) => setTimeout(ok, 2000));
  }
}
console.log('discarded rounds', discarded);
const med = (v) => { const a = [...v].sort((x, y) => x - y); const h = a.length >> 1; return a.length % 2 ? a[h] : (a[h - 1] + a[h]) / 2; };
const rng = (v) => `${Math.round(Math.min(...v))}-${Math.round(Math.max(...v))}`;
console.log(`layout=${layout} alloc=${alloc} rounds=${rounds}`);
for (const [key, v] of Object.entries(res)) {
  if (key === 'dense') { console.log(`dense ${Math.round(med(v))} (${rng(v)})`); continue; }
  console.log(`${key}: select ${Math.round(med(v.sel))} (${rng(v.sel)})  attn ${Math.round(med(v.att))} (${rng(v.att)})  total ${Math.round(med(v.tot))} (${rng(v.tot)})`);
}
s.dispose();
