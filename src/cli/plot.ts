// A small self-contained SVG line chart (axes, ticks, legend; no dependencies) for `bench --plot`.
// Numeric x values spanning 8x or more use a log2 axis (typical sweeps double seqLen or batch).

export interface Series {
  name: string;
  points: { x: number | string; y: number }[];
  dashed?: boolean;
  /** series with the same group share a colour (e.g. a backend and its dashed ceiling) */
  group?: string;
}

export interface ChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  width?: number;
  height?: number;
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** "Nice" linear ticks from 0 (or the data minimum when negative) to at least max. */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!(max > min)) max = min + 1;
  const raw = (max - min) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const lo = Math.floor(min / step) * step;
  const out: number[] = [];
  for (let v = lo; v < max + step * 0.999; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function tickLabel(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6 && Number.isInteger(v) && v % 1024 ** 2 === 0) return `${v / 1024 ** 2}Mi`;
  if (Number.isInteger(v) && a < 1e6) return String(v);
  if (a >= 1e6 || (a > 0 && a < 1e-3)) return v.toExponential(1);
  return String(Number(v.toPrecision(4)));
}

/** Renders the chart as an SVG document. */
export function lineChartSvg(spec: ChartSpec): string {
  // the legend sits right of the plot so it never hides a line
  const lw = Math.max(...spec.series.map((s) => s.name.length), 4) * 7 + 40;
  const W = (spec.width ?? 760) + lw;
  const H = spec.height ?? 460;
  const m = { l: 70, r: lw + 16, t: 40, b: 56 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;

  const xsAll = spec.series.flatMap((s) => s.points.map((p) => p.x));
  const numeric = xsAll.every((x) => typeof x === 'number' && Number.isFinite(x));
  const cats = [...new Set(xsAll.map(String))];
  const xnums = numeric ? [...new Set(xsAll as number[])].sort((a, b) => a - b) : [];
  const log = numeric && xnums.length > 1 && xnums[0] > 0 && xnums[xnums.length - 1] / xnums[0] >= 8;
  const pad = 0.04 * pw; // end points off the axes
  const fx = (x: number | string): number => {
    if (!numeric) return cats.length === 1 ? pw / 2 : pad + (cats.indexOf(String(x)) / (cats.length - 1)) * (pw - 2 * pad);
    const [a, b] = [xnums[0], xnums[xnums.length - 1]];
    if (a === b) return pw / 2;
    const t = log ? (Math.log2(x as number) - Math.log2(a)) / (Math.log2(b) - Math.log2(a)) : ((x as number) - a) / (b - a);
    return pad + t * (pw - 2 * pad);
  };
  const ys = spec.series.flatMap((s) => s.points.map((p) => p.y)).filter((y) => Number.isFinite(y));
  const ymax = ys.length ? Math.max(...ys) : 1;
  const ymin = Math.min(0, ...ys);
  const yt = niceTicks(ymin, ymax * 1.05);
  const [y0, y1] = [yt[0], yt[yt.length - 1]];
  const fy = (y: number): number => ph - ((y - y0) / (y1 - y0)) * ph;

  const o: string[] = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  o.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  o.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${esc(spec.title)}</text>`);
  o.push(`<g transform="translate(${m.l},${m.t})">`);
  // grid and y ticks
  for (const v of yt) {
    const y = fy(v).toFixed(1);
    o.push(`<line x1="0" x2="${pw}" y1="${y}" y2="${y}" stroke="#e5e5e5"/>`);
    o.push(`<text x="-8" y="${y}" text-anchor="end" dominant-baseline="middle">${esc(tickLabel(v))}</text>`);
  }
  // x ticks: at the data values (sweeps are discrete)
  const xt: (number | string)[] = numeric ? xnums : cats;
  for (const v of xt) {
    const x = fx(v).toFixed(1);
    o.push(`<line x1="${x}" x2="${x}" y1="${ph}" y2="${ph + 5}" stroke="black"/>`);
    o.push(`<text x="${x}" y="${ph + 18}" text-anchor="middle">${esc(typeof v === 'number' ? tickLabel(v) : v)}</text>`);
  }
  o.push(`<line x1="0" x2="${pw}" y1="${ph}" y2="${ph}" stroke="black"/>`);
  o.push(`<line x1="0" x2="0" y1="0" y2="${ph}" stroke="black"/>`);
  o.push(`<text x="${pw / 2}" y="${ph + 42}" text-anchor="middle">${esc(spec.xLabel + (log ? ' (log scale)' : ''))}</text>`);
  o.push(`<text transform="translate(-52,${ph / 2}) rotate(-90)" text-anchor="middle">${esc(spec.yLabel)}</text>`);
  // series; a group keeps one colour
  const groups = [...new Set(spec.series.map((s) => s.group ?? s.name))];
  const color = (s: Series) => COLORS[groups.indexOf(s.group ?? s.name) % COLORS.length];
  spec.series.forEach((s) => {
    const c = color(s);
    const pts = s.points.filter((p) => Number.isFinite(p.y)).sort((a, b) => fx(a.x) - fx(b.x));
    if (pts.length > 1)
      o.push(`<polyline fill="none" stroke="${c}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''} points="${pts.map((p) => `${fx(p.x).toFixed(1)},${fy(p.y).toFixed(1)}`).join(' ')}"/>`);
    for (const p of pts) o.push(`<circle cx="${fx(p.x).toFixed(1)}" cy="${fy(p.y).toFixed(1)}" r="3" fill="${c}"><title>${esc(`${s.name}: ${p.x} -> ${Number(p.y.toPrecision(4))}`)}</title></circle>`);
  });
  // legend
  o.push(`<g transform="translate(${pw + 12},0)">`);
  o.push(`<rect width="${lw}" height="${spec.series.length * 18 + 8}" fill="white" fill-opacity="0.85" stroke="#ccc"/>`);
  spec.series.forEach((s, i) => {
    const c = color(s);
    const y = 14 + i * 18;
    o.push(`<line x1="8" x2="28" y1="${y}" y2="${y}" stroke="${c}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    o.push(`<text x="34" y="${y}" dominant-baseline="middle">${esc(s.name)}</text>`);
  });
  o.push('</g></g></svg>');
  return o.join('\n') + '\n';
}
