// Terminal output helpers for the CLI: the Io sink, aligned tables, number formats and the progress bar.

/** Where the CLI writes; main() takes one so tests can run commands in-process and read the output. */
export interface Io {
  out(s: string): void;
  err(s: string): void;
  /** whether stderr is a terminal (the progress bar is drawn only then) */
  errIsTTY: boolean;
  env: Record<string, string | undefined>;
}

export function processIo(): Io {
  return {
    out: (s) => process.stdout.write(s.endsWith('\n') ? s : s + '\n'),
    err: (s) => process.stderr.write(s.endsWith('\n') || s.startsWith('\r') ? s : s + '\n'),
    errIsTTY: !!process.stderr.isTTY,
    env: process.env,
  };
}

/** A user mistake (bad flag, unknown family, missing file): exit code 2 with the message and no stack. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Renders rows as aligned columns; columns whose cells all look numeric are right-aligned. */
export function table(header: string[], rows: string[][]): string {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const numeric = header.map((_, i) => rows.length > 0 && rows.every((r) => /^[-+]?[\d.,]+(e[-+]?\d+)?\s*([%x]|[kMGT]?B)?$|^-$|^NaN$/.test((r[i] ?? '').trim())));
  const line = (cells: string[]) => cells.map((c, i) => (numeric[i] ? (c ?? '').padStart(w[i]) : (c ?? '').padEnd(w[i]))).join('  ').trimEnd();
  return [line(header), line(w.map((n) => '-'.repeat(n))), ...rows.map(line)].join('\n');
}

/** A number with about 3-4 significant digits, '-' for null/NaN. */
export function fmt(x: number | null | undefined, digits = 3): string {
  if (x === null || x === undefined || Number.isNaN(x)) return '-';
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a !== 0 && (a >= 1e7 || a < 1e-3)) return x.toExponential(2);
  const dec = a >= 100 ? 0 : a >= 10 ? Math.max(0, digits - 2) : a >= 1 ? digits - 1 : digits;
  return x.toFixed(dec);
}

/** Bytes in decimal units (the GB/s columns use 1e9 too). */
export function fmtBytes(b: number): string {
  if (!Number.isFinite(b)) return '-';
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = b;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v >= 100 ? 0 : 1)} ${units[i]}`;
}

/** Parses 4096, 64k, 256M, 1G (binary multiples). @throws UsageError */
export function parseBytes(s: string | number): number {
  if (typeof s === 'number') return s;
  const m = /^(\d+(?:\.\d+)?)\s*([kKmMgG]?)i?[bB]?$/.exec(s.trim());
  if (!m) throw new UsageError(`--bytes: expected a size like 4096, 64k, 256M or 1G, received ${s}`);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2].toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Math.round(Number(m[1]) * mult);
}

/**
 * A progress bar on stderr, drawn only when stderr is a terminal and neither NO_COLOR nor CI is set
 * (so logs and pipes get clean output).
 */
export class Progress {
  private readonly on: boolean;
  private last = 0;
  constructor(private readonly io: Io, private readonly title: string) {
    this.on = io.errIsTTY && !io.env.NO_COLOR && !io.env.CI;
  }
  get enabled(): boolean {
    return this.on;
  }
  update(done: number, total: number, label = ''): void {
    if (!this.on || total <= 1) return;
    const now = Date.now();
    if (done < total && done > 0 && now - this.last < 50) return;
    this.last = now;
    const width = 24;
    const fill = Math.round((width * done) / total);
    this.io.err(`\r\x1b[K${this.title} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${done}/${total} ${label}`.slice(0, 200));
  }
  end(): void {
    if (this.on) this.io.err('\r\x1b[K');
  }
}
