// Shared plumbing for ops: calling a native family function in sync, async or timed mode.
import { fromNative } from '../errors.js';
import { native, type NativeAddon } from '../native.js';
import type { Checker } from '../validate.js';

export type NativeFamily = 'questMetadata' | 'questSelect' | 'pagedAttention' | 'cacheWrite' | 'questMetadataAppend';

export function callSync(ch: Checker, fn: NativeFamily, scalars: Record<string, unknown>): void {
  const addon: NativeAddon = native();
  try {
    addon[fn](ch.backend, { ...scalars, ...ch.native }, 'sync');
  } catch (e) {
    throw fromNative(e, ch.ctx);
  }
}

export async function callAsync(ch: Checker, fn: NativeFamily, scalars: Record<string, unknown>): Promise<void> {
  const addon: NativeAddon = native();
  try {
    await (addon[fn](ch.backend, { ...scalars, ...ch.native }, 'async') as Promise<void>);
  } catch (e) {
    throw fromNative(e, ch.ctx);
  }
}

/** Milliseconds per call over `reps` back-to-back calls (device events on device backends). */
export function callTimed(ch: Checker, fn: NativeFamily, scalars: Record<string, unknown>, reps: number): number {
  const addon: NativeAddon = native();
  try {
    return addon[fn](ch.backend, { ...scalars, ...ch.native }, 'time', reps) as number;
  } catch (e) {
    throw fromNative(e, ch.ctx);
  }
}

/** How an op runs: 'sync' (default), 'async' (Promise, CPU work off the event loop) or 'time'. */
export type RunMode = { mode: 'sync' } | { mode: 'async' } | { mode: 'time'; reps: number };
