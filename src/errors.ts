// Error classes of SPEC section 5: TypeError (wrong kind of value), RangeError (wrong value),
// SelectAttnError (stable code). All three carry family and backend.

export type ErrorCode = 'SA_ERR_INVALID_ARG' | 'SA_ERR_UNSUPPORTED' | 'SA_ERR_DEVICE' | 'SA_ERR_OOM';

/** An error from a kernel call with a stable `code`, the family and the backend. */
export class SelectAttnError extends Error {
  readonly code: ErrorCode;
  readonly family: string;
  readonly backend: string;
  constructor(code: ErrorCode, family: string, backend: string, message: string) {
    super(message);
    this.name = 'SelectAttnError';
    this.code = code;
    this.family = family;
    this.backend = backend;
  }
}

export interface ErrorContext {
  family: string;
  backend: string;
}

function tag<E extends Error>(e: E, ctx: ErrorContext, code: ErrorCode): E {
  Object.assign(e, { code, family: ctx.family, backend: ctx.backend });
  return e;
}

/** A TypeError naming the argument, what was expected and what came in. */
export function typeError(ctx: ErrorContext, arg: string, expected: string, received: string): TypeError {
  return tag(new TypeError(`${ctx.family} (${ctx.backend}): ${arg}: expected ${expected}, received ${received}`), ctx, 'SA_ERR_INVALID_ARG');
}

/** A RangeError naming the argument, what was expected and what came in. */
export function rangeError(ctx: ErrorContext, arg: string, expected: string, received: string): RangeError {
  return tag(new RangeError(`${ctx.family} (${ctx.backend}): ${arg}: expected ${expected}, received ${received}`), ctx, 'SA_ERR_INVALID_ARG');
}

export function unsupported(ctx: ErrorContext, message: string): SelectAttnError {
  return new SelectAttnError('SA_ERR_UNSUPPORTED', ctx.family, ctx.backend, `${ctx.family} (${ctx.backend}): ${message}`);
}

/** Converts an error thrown by the native addon into a SelectAttnError. */
export function fromNative(e: unknown, ctx: ErrorContext): Error {
  const n = e as { saCode?: ErrorCode; message?: string; family?: string; backend?: string };
  if (n && typeof n.saCode === 'string') {
    const msg = n.message ?? String(e);
    return new SelectAttnError(n.saCode, n.family || ctx.family, n.backend || ctx.backend,
      msg.includes(`(${ctx.backend})`) ? msg : `${msg} [backend ${n.backend || ctx.backend}]`);
  }
  return e instanceof Error ? e : new Error(String(e));
}
