'use strict';
// `router.call`: the request driver on the core's request engine (`NativeRequest`). The engine
// decides everything — which provider, whether to retry or wait or give up, each attempt's
// deadline; this file only performs I/O: it calls the caller's function with an `Attempt`,
// enforces the attempt's deadline, sleeps through the engine's waits, reads facts off what came
// back (facts.js) and reports the core's classification of them.

const native = require('../native.js');
const { AllProvidersFailedError, HttpStatusError, InternalError } = require('./errors.js');
const { typeError, checkPositive, checkTime } = require('./errors.js');
const { CLOCK } = require('./io.js');
const { errorFacts, responseFacts, isResponseLike } = require('./facts.js');

const { NativeRequest, classify: classifyFacts, monotonicNow } = native;

// How an attempt ended (the driver's own view, before classification).
const PENDING = 0;
const RETURNED = 1;
const THREW = 2;
const TIMED_OUT = 3;
const ABORTED = 4;

// Attempts in flight, with one shared timer for their deadlines: an attempt costs a Set insert
// and delete, not a timer of its own (the timer is re-armed only for an earlier deadline). The
// timer keeps the process alive only while an attempt is in flight, as a timer per attempt would.
const inFlight = new Set();
let timer = null;
let timerAt = Infinity;
let timerRefed = false;

function arm(at) {
  if (at < timerAt) {
    if (timer !== null) clearTimeout(timer);
    timerAt = at;
    timer = setTimeout(expireDue, Math.max(1, Math.ceil(at - performance.now())));
    timerRefed = true;
  } else if (!timerRefed) {
    timer.ref();
    timerRefed = true;
  }
}

/** The last attempt in flight settled: a pending (later) deadline no longer holds the process. */
function idle() {
  if (timerRefed && timer !== null) {
    timer.unref();
    timerRefed = false;
  }
}

/** Fires every deadline due (timers may wake a little early: 1 ms of slack). */
function expireDue() {
  timer = null;
  timerAt = Infinity;
  const t = performance.now() + 1;
  let next = Infinity;
  for (const a of inFlight) {
    if (deadlineOf(a) <= t) expire(a);
    else if (deadlineOf(a) < next) next = deadlineOf(a);
  }
  if (next !== Infinity) arm(next);
}

let settle;
let expire;
let abortAttempt;
let deadlineOf;
let stateOf;
let valueOf;

/**
 * What `router.call` passes to its function: the provider to call, the attempt's number (1 for
 * the first), whether it is a probe of a recovering provider, the timeout to give the client
 * (`timeoutMs`, the time left until the attempt's deadline when it started) and an `AbortSignal`
 * that aborts at the deadline or when the caller's signal aborts (made on first read).
 */
class Attempt {
  #state = PENDING;
  #value = undefined;
  #resolve = null;
  /** performance.now() of the deadline. */
  #at;
  #ac = null;
  #reason = undefined;

  constructor(provider, attempt, timeoutMs, probe, at) {
    this.provider = provider;
    this.attempt = attempt;
    this.timeoutMs = timeoutMs;
    this.probe = probe;
    this.#at = at;
  }

  /** Aborts at the attempt's deadline (a `TimeoutError`) or with the caller's signal's reason. */
  get signal() {
    if (this.#ac === null) {
      this.#ac = new AbortController();
      if (this.#state === TIMED_OUT || this.#state === ABORTED) this.#ac.abort(this.#reason);
    }
    return this.#ac.signal;
  }

  static {
    settle = (a, state, value) => {
      if (a.#state !== PENDING) return;
      a.#state = state;
      a.#value = value;
      if (inFlight.delete(a) && inFlight.size === 0) idle();
      a.#resolve();
    };
    expire = (a) => {
      if (a.#state !== PENDING) return;
      a.#reason = new DOMException(`attempt ${a.attempt} on ${a.provider} passed its deadline (${a.timeoutMs} ms)`, 'TimeoutError');
      settle(a, TIMED_OUT, a.#reason);
      a.#ac?.abort(a.#reason);
    };
    abortAttempt = (a, reason) => {
      if (a.#state !== PENDING) return;
      a.#reason = reason;
      settle(a, ABORTED, reason);
      a.#ac?.abort(reason);
    };
    deadlineOf = (a) => a.#at;
    stateOf = (a) => a.#state;
    valueOf = (a) => a.#value;
    /** Runs `fn(a)`; resolves (never rejects) once it settled, timed out or was aborted. */
    Attempt.run = (fn, a) =>
      new Promise((resolve) => {
        a.#resolve = resolve;
        let p;
        try {
          p = fn(a);
        } catch (error) {
          settle(a, THREW, error);
          return;
        }
        if (p !== null && (typeof p === 'object' || typeof p === 'function') && typeof p.then === 'function') {
          Promise.resolve(p).then(
            (v) => settle(a, RETURNED, v),
            (err) => settle(a, THREW, err),
          );
          if (a.#state === PENDING) {
            inFlight.add(a);
            arm(a.#at);
          }
        } else settle(a, RETURNED, p);
      });
  }
}

const OPTION_KEYS = new Set(['key', 'maxAttempts', 'requestTimeoutMs', 'maxWaitMs', 'signal']);

/** Validates `router.call` options into the engine's request options (or null: the policy's). */
function callOptions(options) {
  if (options === undefined || options === null) return null;
  if (typeof options !== 'object') throw typeError('options', 'an object', options);
  for (const k of Object.keys(options)) {
    if (OPTION_KEYS.has(k)) continue;
    if (k === 'timeoutMs') {
      throw typeError('options.timeoutMs', 'absent: attempt deadlines come from the policy (`attempt_timeout_ms`), the whole call\'s from `requestTimeoutMs`', options[k]);
    }
    if (k === 'classify') throw typeError('options.classify', 'absent: the core classifies every attempt', options[k]);
    throw typeError(`options.${k}`, `absent (not an option of call; options are ${[...OPTION_KEYS].join(', ')})`, options[k]);
  }
  const { key, signal, maxAttempts, requestTimeoutMs, maxWaitMs } = options;
  if (key !== undefined && key !== null && typeof key !== 'string') throw typeError('options.key', 'a string', key);
  if (signal !== undefined && signal !== null && !(signal instanceof AbortSignal)) {
    throw typeError('options.signal', 'an AbortSignal', signal);
  }
  if (maxAttempts !== undefined) checkPositive(maxAttempts, 'options.maxAttempts');
  if (requestTimeoutMs !== undefined) checkPositive(requestTimeoutMs, 'options.requestTimeoutMs');
  if (maxWaitMs !== undefined) checkTime(maxWaitMs, 'options.maxWaitMs');
  return {
    key: key ?? null,
    max_attempts: maxAttempts ?? null,
    requestTimeoutMs,
    max_wait_ms: maxWaitMs ?? null,
    deadline_ms: null,
    signal: signal ?? undefined,
  };
}

/** Sleeps `ms`, or until the caller's signal aborts. */
function sleep(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * `router.call` on engine `e` (engine.js): a promise of `fn`'s result. Errors: the caller's own
 * (re-thrown unchanged), a provider's client error (re-thrown), `AllProvidersFailedError`.
 */
function call(e, fn, options) {
  if (typeof fn !== 'function') return Promise.reject(typeError('fn', 'a function (attempt) => Promise', fn));
  let o;
  try {
    o = callOptions(options);
  } catch (err) {
    return Promise.reject(err);
  }
  return drive(e, fn, o);
}

async function drive(e, fn, o) {
  const n = e.n;
  const clock = e.clock;
  /** The engine's time now: the router's clock, or CLOCK (the native clock read natively). */
  const now = clock === undefined ? () => CLOCK : () => checkTime(clock(), 'nowMs');
  const read = clock === undefined ? monotonicNow : now;
  const signal = o?.signal;
  if (signal?.aborted) throw signal.reason;
  if (o !== null && o.requestTimeoutMs !== undefined) o.deadline_ms = read() + o.requestTimeoutMs;
  const req = new NativeRequest(n, o ?? undefined, now());
  let current = null;
  let onAbort;
  if (signal !== undefined) {
    onAbort = () => {
      if (current !== null) abortAttempt(current, signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  }
  try {
    let errors = null;
    let attempts = null;
    let last; // the last attempt's result or error
    for (;;) {
      const step = req.poll(n, now());
      const s = step.attempt;
      if (s !== undefined) {
        const a = new Attempt(s.provider, s.number, s.timeout_ms, s.kind === 'probe', performance.now() + s.timeout_ms);
        current = a;
        await Attempt.run(fn, a);
        current = null;
        const state = stateOf(a);
        last = valueOf(a);
        let outcome = 'success';
        let ra = null;
        let error = null;
        if (state === RETURNED) {
          if (isResponseLike(last)) {
            ({ outcome, retry_after_ms: ra } = classifyFacts(responseFacts(last)));
            if (outcome !== 'success' && outcome !== 'client_error') error = new HttpStatusError(last, { outcome, retry_after_ms: ra });
          }
        } else if (state === TIMED_OUT) {
          outcome = 'timeout';
          error = last;
        } else {
          const facts = state === ABORTED ? null : errorFacts(last);
          // Nothing attributable to the provider (a bug in the caller's callback), or the
          // caller's own abort: the request ends as cancelled and the error goes back unchanged.
          if (facts === null) outcome = 'cancelled';
          else ({ outcome, retry_after_ms: ra } = classifyFacts(facts));
          error = last;
        }
        if (outcome === 'cancelled') {
          req.handleCancel(n, now());
          throw last;
        }
        req.handleOutcome(n, outcome, ra, now());
        // A success always finishes a (non-streamed) request: skip the poll that would say so.
        if (outcome === 'success') return last;
        {
          const [rep] = req.lastReport();
          (attempts ??= []).push({
            provider: a.provider,
            outcome,
            error,
            latency_ms: rep === null ? 0 : rep.latency_ms,
          });
          if (error !== null) (errors ??= []).push(error);
        }
        continue;
      }
      const d = step.done;
      if (d !== undefined) {
        if (d.finish === 'success') return last;
        if (d.finish === 'caller_error') {
          if (last instanceof Error || !isResponseLike(last)) throw last;
          return last;
        }
        if (d.finish === 'gave_up') {
          const hint = d.retry_after_ms;
          throw new AllProvidersFailedError(errors ?? [], hint, attempts ?? [], undefined, d.reason);
        }
        throw new InternalError(`the request ended as ${d.finish} with no error to re-throw`, 'internal_panic');
      }
      const w = step.wait;
      if (w !== undefined) {
        await sleep(Math.max(0, w.until_ms - read()), signal);
        if (signal?.aborted) {
          req.handleCancel(n, now());
          throw signal.reason;
        }
        continue;
      }
      throw new InternalError(`unexpected step ${JSON.stringify(step)}`, 'internal_panic');
    }
  } finally {
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort);
  }
}

module.exports = { call, Attempt };
