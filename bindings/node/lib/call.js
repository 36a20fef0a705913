'use strict';
// `router.call`: the request driver. Picks, awaits the caller's function, measures, classifies,
// records, and fails over while the attempt budget lasts.

const { UnavailableError, HttpStatusError, AllProvidersFailedError } = require('./errors.js');
const { typeError, checkPositive, checkTime } = require('./errors.js');
const { OUTCOME_KINDS, OUTCOME_CODE, CLOCK, indexOf, pick, pickedIndex, usedNow, record, elapsed } = require('./io.js');
const { classifyError, classifyResponse, isResponseLike } = require('./classify.js');
const { Ticket } = require('./ticket.js');

const SUCCESS = OUTCOME_CODE.get('success');
const CLIENT_ERROR = OUTCOME_CODE.get('client_error');
const CANCELLED = OUTCOME_CODE.get('cancelled');
const SERVER_ERROR = OUTCOME_CODE.get('server_error');
const TIMEOUT = OUTCOME_CODE.get('timeout');

/** Records the outcome of the attempt `ctx` belongs to (see io.js `record`). */
let recordAttempt;
/** The clock reading of the pick of the attempt `ctx` belongs to. */
let pickedAt;
/** The provider index of the attempt `ctx` belongs to. */
let providerIndex;

/**
 * What `router.call` passes to its function with the provider name: `attempt`, `signal` and the
 * attempt's `ticket` (made on first use from the fields kept here).
 */
class CallContext {
  #ticket = null;
  /** As a Ticket's (io.js). */
  #h;
  #provider;
  #generation;
  #probeSeq;
  #degraded;
  #retryAfter;
  #issuedAt;
  /** The clock reading of the pick (the native clock's, or the router's clock). */
  #t0;

  /** Built by `readTicket` (io.js), whose argument order it shares with Ticket. */
  constructor(h, provider, generation, probeSeq, degraded, retryAfter, issuedAt, t0, attempt, signal) {
    /** 0 for the first attempt. */
    this.attempt = attempt;
    /** Aborted when the attempt times out (`timeoutMs`) or the caller's signal aborts. */
    this.signal = signal;
    this.#h = h;
    this.#provider = provider;
    this.#generation = generation;
    this.#probeSeq = probeSeq;
    this.#degraded = degraded;
    this.#retryAfter = retryAfter;
    this.#issuedAt = issuedAt;
    this.#t0 = t0;
  }

  static {
    recordAttempt = (ctx, code, ra, now, latency) =>
      record(ctx.#h, ctx.#generation, ctx.#probeSeq, code, latency, ra, now, ctx.#t0);
    pickedAt = (ctx) => ctx.#t0;
    providerIndex = (ctx) => indexOf(ctx.#h);
  }

  /** The attempt's ticket (made on first use). */
  get ticket() {
    this.#ticket ??= new Ticket(
      this.#h,
      this.#provider,
      this.#generation,
      this.#probeSeq,
      this.#degraded,
      this.#retryAfter,
      this.#issuedAt,
    );
    return this.#ticket;
  }
}

/** Validates `router.call` options. */
function callOptions(fn, options, providers) {
  if (typeof fn !== 'function') throw typeError('fn', 'a function (provider) => Promise', fn);
  const o = { maxAttempts: providers, classify: classifyError, timeoutMs: undefined, signal: undefined, key: undefined };
  if (options === undefined || options === null) return o;
  if (typeof options !== 'object') throw typeError('options', 'an object', options);
  const { timeoutMs, signal, key } = options;
  o.maxAttempts = checkPositive(options.maxAttempts ?? providers, 'options.maxAttempts');
  o.classify = options.classify ?? classifyError;
  if (typeof o.classify !== 'function') throw typeError('options.classify', 'a function', o.classify);
  if (timeoutMs !== undefined) checkPositive(timeoutMs, 'options.timeoutMs');
  if (key !== undefined && key !== null && typeof key !== 'string') throw typeError('options.key', 'a string', key);
  if (signal !== undefined && signal !== null && !(signal instanceof AbortSignal)) {
    throw typeError('options.signal', 'an AbortSignal', signal);
  }
  o.timeoutMs = timeoutMs;
  o.signal = signal ?? undefined;
  o.key = key ?? undefined;
  return o;
}

/** What happened to one attempt (`failure`: its pick failed). */
const attempt = (provider, ctx) => ({
  provider,
  ctx,
  result: undefined,
  error: undefined,
  failed: false,
  timedOut: false,
  failure: null,
});

function failedWith(a, error) {
  a.error = error;
  a.failed = true;
  return a;
}

/**
 * `router.call` on engine `e` (engine.js), which may also throw. The common case (default
 * options and clock) runs straight-line: not as an async function but chaining the attempt's
 * promise with one `then`, which costs less than an async frame and settles in as many microtask
 * turns. Any other outcome of that attempt (a throw, a rejection, a fetch-like Response) goes to
 * callLoop.
 */
function call(e, fn, options) {
  if (options !== undefined || e.clock !== undefined || typeof fn !== 'function') {
    return callLoop(e, fn, callOptions(fn, options, e.names.length), null);
  }
  const failure = pick(e.slot, CLOCK, 0);
  if (failure !== null) return failover(e, fn, { failure });
  const provider = e.byIndex[pickedIndex()];
  const ctx = e.ticket(CallContext, 0, undefined);
  let p;
  try {
    p = fn(provider, ctx);
  } catch (error) {
    return failover(e, fn, failedWith(attempt(provider, ctx), error));
  }
  return Promise.resolve(p).then(
    (result) => {
      if (typeof result === 'object' && result !== null && isResponseLike(result)) {
        const a = attempt(provider, ctx);
        a.result = result;
        return failover(e, fn, a);
      }
      recordAttempt(ctx, SUCCESS, -1, CLOCK, -1);
      return result;
    },
    (error) => failover(e, fn, failedWith(attempt(provider, ctx), error)),
  );
}

/** Hands the fast path's first attempt `a` to callLoop. */
function failover(e, fn, a) {
  return callLoop(e, fn, callOptions(fn, undefined, e.names.length), a);
}

/**
 * The general path of `call`: attempts until one succeeds, a client error or cancellation ends
 * the call, or the budget or the providers run out. `first` is an attempt the fast path already
 * made (or its failed pick), or null.
 */
async function callLoop(e, fn, o, first) {
  const { maxAttempts, classify: classifyFn, timeoutMs, signal, key } = o;
  const clock = e.clock;
  const errors = [];
  const attempts = [];
  let tried = 0;
  let hint = null;
  let unavailable = false;
  for (let n = 0; n < maxAttempts; n++) {
    let a;
    if (n === 0 && first !== null) a = first;
    else {
      if (signal !== undefined && signal.aborted) throw signal.reason;
      const failure = e.tryPick(e.now(), key, tried);
      if (failure !== null) a = { failure };
      else {
        a = attempt(e.byIndex[pickedIndex()], e.ticket(CallContext, n, signal));
        if (timeoutMs === undefined && signal === undefined) {
          try {
            a.result = await fn(a.provider, a.ctx);
          } catch (error) {
            failedWith(a, error);
          }
        } else {
          Object.assign(a, await guardedAttempt(fn, a.provider, a.ctx, timeoutMs, signal));
        }
      }
    }
    if (a.failure !== null) {
      if (!(a.failure instanceof UnavailableError)) throw a.failure;
      hint = a.failure.retry_after_ms;
      unavailable = true;
      if (errors.length === 0) errors.push(a.failure);
      break;
    }
    const { result, error, failed, timedOut, ctx } = a;
    // Classify.
    let code = SUCCESS;
    let ra = -1;
    let cls;
    if (timedOut) code = TIMEOUT;
    else if (failed) {
      cls = classifyFn(error);
      code = cls === null || typeof cls !== 'object' ? undefined : OUTCOME_CODE.get(cls.outcome);
      if (code === undefined || code === SUCCESS) code = SERVER_ERROR;
      const r = cls?.retry_after_ms;
      if (Number.isSafeInteger(r) && r >= 0) ra = r;
    } else if (isResponseLike(result)) {
      cls = classifyResponse(result);
      code = OUTCOME_CODE.get(cls.outcome);
      if (cls.retry_after_ms !== null) ra = cls.retry_after_ms;
    }
    // Record: with the default clock the native side reads it and measures from the pick.
    let now = CLOCK;
    let latency = -1;
    if (clock !== undefined) {
      now = checkTime(clock(), 'nowMs');
      latency = elapsed(pickedAt(ctx), now);
    }
    recordAttempt(ctx, code, ra, now, latency);
    if (!failed && !timedOut && (code === SUCCESS || code === CLIENT_ERROR || code === CANCELLED)) {
      return result;
    }
    if (failed && !timedOut && (code === CLIENT_ERROR || code === CANCELLED)) throw error;
    if (signal !== undefined && signal.aborted) throw signal.reason;
    errors.push(failed || timedOut ? error : new HttpStatusError(result, cls));
    attempts.push({
      provider: a.provider,
      outcome: OUTCOME_KINDS[code],
      latency_ms: clock === undefined ? usedNow() - pickedAt(ctx) : latency,
      retry_after_ms: ra < 0 ? null : ra,
    });
    tried |= 1 << providerIndex(ctx);
  }
  if (!unavailable) hint = retryHint(e);
  throw new AllProvidersFailedError(
    errors,
    hint,
    attempts,
    attempts.length === 0
      ? `no provider available${hint === null ? '' : `; retry after ${hint} ms`}`
      : undefined,
  );
}

/** The engine's hint after every provider was tried: when the soonest is expected back. */
function retryHint(e) {
  const failure = e.tryPick(e.now(), null, (1 << e.names.length) - 1);
  if (failure === null) return null;
  if (failure instanceof UnavailableError) return failure.retry_after_ms;
  throw failure;
}

/**
 * One attempt of `call` with a timeout and/or the caller's signal: resolves with what happened,
 * never rejects. On timeout it stops waiting (the attempt's signal aborts with a TimeoutError).
 */
async function guardedAttempt(fn, provider, ctx, timeoutMs, signal) {
  const ac = new AbortController();
  ctx.signal = ac.signal;
  let timer;
  let onAbort;
  let timedOut = false;
  const stop = new Promise((resolve) => {
    if (timeoutMs !== undefined) {
      timer = setTimeout(() => {
        timedOut = true;
        const e = new DOMException(`attempt on ${provider} timed out after ${timeoutMs} ms`, 'TimeoutError');
        ac.abort(e);
        resolve({ error: e, failed: true, timedOut: true });
      }, timeoutMs);
    }
    if (signal !== undefined) {
      onAbort = () => {
        ac.abort(signal.reason);
        resolve({ error: signal.reason, failed: true, timedOut: false });
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    }
  });
  const run = (async () => fn(provider, ctx))().then(
    (result) => ({ result, failed: false, timedOut: false }),
    (error) => ({ error, failed: true, timedOut }),
  );
  try {
    return await Promise.race([run, stop]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}

module.exports = { call };
