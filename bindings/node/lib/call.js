'use strict';
// `router.call`: the request driver on the core's request engine (driven natively through the
// shared buffer, io.js; `NativeRequest` is the same engine behind objects). The engine
// decides everything — which provider, whether to retry or wait or give up, each attempt's
// deadline; this file only performs I/O: it calls the caller's function with an `Attempt`,
// enforces the attempt's deadline, sleeps through the engine's waits, reads facts off what came
// back (facts.js) and reports the core's classification of them.

const native = require('../native.js');
// The global `performance` is a lazy getter on every read: read once here.
const { performance } = require('node:perf_hooks');
const { AllProvidersFailedError, HttpStatusError, InternalError } = require('./errors.js');
const { typeError, checkPositive, checkTime } = require('./errors.js');
const { CLOCK, OUTCOME_CODE, NO_POLL, STEP_ATTEMPT, STEP_WAIT, STEP_DONE } = require('./io.js');
const { FINISH_SUCCESS, FINISH_CALLER_ERROR, FINISH_GAVE_UP } = require('./io.js');
const { begin, poll, outcome, cancel, free, live, step, stepProvider, stepNumber, stepTimeout } = require('./io.js');
const { reported, readReport, beganAt } = require('./io.js');
const { stepProbe, stepUntil, finishCode, finishName, giveUpReason, giveUpHint, reportLatency, stepObject } = require('./io.js');
const { errorFacts, responseFacts, isResponseLike, rateLimitPairs } = require('./facts.js');

const { classify: classifyFacts, monotonicNow } = native;
const SUCCESS = OUTCOME_CODE.get('success');

// How an attempt ended (the driver's own view, before classification).
const PENDING = 0;
const RETURNED = 1;
const THREW = 2;
const TIMED_OUT = 3;
const ABORTED = 4;

// Attempts in flight, with one shared timer for their deadlines: an attempt costs an array push
// and a swap-remove (its index kept on it: no identity hash, as a Set would make for each fresh
// attempt), not a timer of its own (the timer is re-armed only for an earlier deadline). The timer
// keeps the process alive only while an attempt is in flight, as a timer per attempt would.
const inFlight = [];
/**
 * How many of `inFlight`'s slots are attempts (the rest are undefined): the array never shrinks,
 * since `pop()` down to empty trims its backing store and the next `push` allocates a new one,
 * about 20 ns a call in a loop of calls.
 */
let nInFlight = 0;
/** Start order of the attempts in flight (deadlines due together expire in that order). */
let started = 0;
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

/**
 * The last attempt in flight settled: a pending (later) deadline no longer holds the process. The
 * timer is unref'd lazily, in an immediate (at most one per turn of the event loop), if no attempt
 * is in flight by then: a loop of calls would otherwise toggle node's count of ref'd timers, a
 * native call, twice per call. The immediate holds the process only until it runs, in this turn.
 */
function idle() {
  if (timerRefed && !unrefQueued) {
    unrefQueued = true;
    setImmediate(unrefIfIdle);
  }
}

let unrefQueued = false;
function unrefIfIdle() {
  unrefQueued = false;
  if (nInFlight === 0 && timerRefed && timer !== null) {
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
  const due = inFlight.slice(0, nInFlight).sort((x, y) => seqOf(x) - seqOf(y));
  for (const a of due) {
    if (deadlineOf(a) <= t) expire(a);
    else if (deadlineOf(a) < next) next = deadlineOf(a);
  }
  if (next !== Infinity) arm(next);
}

let settle;
let expire;
let abortAttempt;
let deadlineOf;
let seqOf;
let stateOf;
let valueOf;
let invoke;
let begin1;
let afterFirst;

/** The first attempt of the `call` whose promise `startFirst` is making (null otherwise). */
let firstAttempt = null;

/**
 * The executor of the fast path's promise: hands its resolve and reject to the first attempt and
 * runs it (no closure per call; the attempt is made by `call`, where its constructor is inlined).
 * `fn` is called synchronously, within `router.call`, as on every path.
 */
function startFirst(resolve, reject) {
  const a = firstAttempt;
  firstAttempt = null;
  begin1(a, resolve, reject);
}

/**
 * What `router.call` passes to its function: the provider to call, the attempt's number (1 for
 * the first), whether it is a probe of a recovering provider, the timeout to give the client
 * (`timeoutMs`, the time left until the attempt's deadline when it started) and an `AbortSignal`
 * that aborts at the deadline or when the caller's signal aborts (made on first read).
 */
class Attempt {
  #state = PENDING;
  /** The result, the error, or the deadline's or the caller's abort reason. */
  #value = undefined;
  /** `done(fromThen)` of `Attempt.start`, or the fast path's call's resolve (then `#e` is set). */
  #resolve;
  /** The fast path's first attempt (`call`): its engine, function, request and reject. */
  #e;
  #fn;
  #h;
  #reject;
  /** performance.now() of the deadline. */
  #at;
  #ac = null;
  /** Index in `inFlight` (-1: not in it), and start order. */
  #index = -1;
  #seq = 0;

  /** Every field set once (`e` null and `h` -1 but on the fast path; `resolve` set by `start`). */
  constructor(provider, attempt, timeoutMs, probe, at, e, fn, h, resolve, reject) {
    this.provider = provider;
    this.attempt = attempt;
    this.timeoutMs = timeoutMs;
    this.probe = probe;
    this.#at = at;
    this.#e = e;
    this.#fn = fn;
    this.#h = h;
    this.#resolve = resolve;
    this.#reject = reject;
  }

  /** Aborts at the attempt's deadline (a `TimeoutError`) or with the caller's signal's reason. */
  get signal() {
    if (this.#ac === null) {
      this.#ac = new AbortController();
      if (this.#state === TIMED_OUT || this.#state === ABORTED) this.#ac.abort(this.#value);
    }
    return this.#ac.signal;
  }

  static {
    /** `fromThen`: settled by `fn`'s promise, in a reaction of its own (nothing follows). */
    settle = (a, state, value, fromThen) => {
      if (a.#state !== PENDING) return;
      a.#state = state;
      a.#value = value;
      if (a.#index !== -1) {
        const moved = inFlight[--nInFlight];
        inFlight[nInFlight] = undefined;
        if (moved !== a) {
          inFlight[a.#index] = moved;
          moved.#index = a.#index;
        }
        a.#index = -1;
        if (nInFlight === 0) idle();
      }
      if (a.#e === null) a.#resolve(fromThen === true);
      // The fast path goes on at once in a reaction to `fn`'s promise, else in a microtask, as
      // after an await: not inside `fn`'s call, and after the attempt's signal aborted.
      else if (fromThen === true) afterFirst(a);
      else queueMicrotask(() => afterFirst(a));
    };
    expire = (a) => {
      if (a.#state !== PENDING) return;
      const reason = new DOMException(`attempt ${a.attempt} on ${a.provider} passed its deadline (${a.timeoutMs} ms)`, 'TimeoutError');
      settle(a, TIMED_OUT, reason);
      a.#ac?.abort(reason);
    };
    abortAttempt = (a, reason) => {
      if (a.#state !== PENDING) return;
      settle(a, ABORTED, reason);
      a.#ac?.abort(reason);
    };
    deadlineOf = (a) => a.#at;
    seqOf = (a) => a.#seq;
    stateOf = (a) => a.#state;
    valueOf = (a) => a.#value;
    /**
     * Calls `fn(a)` and follows what it gives: a throw or a plain value settles `a` now; a
     * thenable settles it in its reactions, and `a` joins the attempts in flight (its deadline
     * armed) until then.
     */
    invoke = (fn, a) => {
      let p;
      try {
        p = fn(a);
      } catch (error) {
        settle(a, THREW, error);
        return;
      }
      if (p !== null && (typeof p === 'object' || typeof p === 'function') && typeof p.then === 'function') {
        Promise.resolve(p).then(
          (v) => settle(a, RETURNED, v, true),
          (err) => settle(a, THREW, err, true),
        );
        if (a.#state === PENDING) {
          a.#index = nInFlight;
          a.#seq = started++;
          inFlight[nInFlight++] = a;
          arm(a.#at);
        }
      } else settle(a, RETURNED, p);
    };
    /**
     * Runs `fn(a)`; calls `done(fromThen)` once it settled, timed out or was aborted: `fromThen`
     * is true in a reaction to `fn`'s promise, false when `fn` threw or returned a plain value
     * (within this call) or the attempt timed out or was aborted (the abort follows the call).
     */
    Attempt.start = (fn, a, done) => {
      a.#resolve = done;
      invoke(fn, a);
    };
    /** Runs the fast path's first attempt `a`, which settles the call's promise (`afterFirst`). */
    begin1 = (a, resolve, reject) => {
      a.#resolve = resolve;
      a.#reject = reject;
      invoke(a.#fn, a);
    };
    /** Runs `fn(a)`; resolves (never rejects) once it settled, timed out or was aborted. */
    Attempt.run = (fn, a) => new Promise((resolve) => Attempt.start(fn, a, resolve));
    /** The fast path's first attempt `a` settled: report a plain success, or drive. */
    afterFirst = (a) => {
      const e = a.#e;
      const h = a.#h;
      try {
        if (a.#state === RETURNED) {
          const v = a.#value;
          if (!isResponseLike(v)) {
            pace(e, a.provider, v, CLOCK);
            outcome(h, SUCCESS, -1, CLOCK, NO_POLL);
            if (e.observer !== null) observe(e);
            // A success always finishes a (non-streamed) request: no poll to say so.
            if (live()) free(h);
            a.#resolve(v);
            return;
          }
        }
      } catch (err) {
        // A throwing getter on the result, or a failed report: the request is dropped (idempotent).
        free(h);
        a.#reject(err);
        return;
      }
      a.#resolve(drive(e, a.#fn, null, h, a));
    };
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
 *
 * The common case (no options, the native clock) starts straight-line, not as an async function:
 * one native crossing begins the request and polls its first step; the first attempt's promise is
 * chained with one `then`; a plain result (not a Response) is reported as a success in one more
 * crossing, which finishes the request. Anything else goes on in `drive` with the same request.
 */
function call(e, fn, options) {
  if (typeof fn !== 'function') return Promise.reject(typeError('fn', 'a function (attempt) => Promise', fn));
  if ((options !== undefined && options !== null) || e.clock !== undefined) {
    let o;
    try {
      o = callOptions(options);
    } catch (err) {
      return Promise.reject(err);
    }
    return drive(e, fn, o, -1, null);
  }
  let h;
  try {
    h = begin(e.slot, CLOCK, CLOCK, null);
  } catch (err) {
    return Promise.reject(err);
  }
  // Not an attempt (a wait, or done): `drive` reads the step from the buffer before any await.
  if (!live() || step() !== STEP_ATTEMPT) return drive(e, fn, null, h, null);
  const timeoutMs = stepTimeout();
  // The deadline is timed from the clock reading `begin` made (no `performance.now()` here).
  firstAttempt = new Attempt(e.byIndex[stepProvider()], stepNumber(), timeoutMs, stepProbe(), beganAt() + timeoutMs, e, fn, h, null, null);
  // One promise for the caller, settled from the attempt's settlement (no promise per attempt),
  // once `afterFirst` has reported it.
  return new Promise(startFirst);
}

/**
 * Feeds the rate-limit headers of an answer or an error `v` (its `headers`, or its
 * `response.headers`: a fetch Response, an SDK's APIError or raw response) for `provider` to the
 * core's pacing, so `call` users get pacing with no code. A value without them changes nothing,
 * and nothing here can fail the call.
 */
function pace(e, provider, v, now) {
  if (v === null || typeof v !== 'object') return;
  try {
    const pairs = rateLimitPairs(v.headers ?? v.response?.headers);
    if (pairs.length !== 0) e.n.observeHeadroom(e.index.get(provider), pairs, now, Date.now());
  } catch {
    // A throwing getter, headers of an odd shape: pacing is advice, the answer stands.
  }
}

/**
 * Hands the attempt the latest request call recorded, if any, to the router's observer: its
 * codes (`counted`, no allocation), then, if the observer wants them, its facts (`attempt`).
 */
function observe(e) {
  if (!reported()) return;
  try {
    const o = e.observer;
    o.counted();
    if (o.perAttempt) o.attempt(readReport(e.byIndex));
  } catch (err) {
    process.emitWarning(err instanceof Error ? err : new Error(String(err)), 'FailoverCoreObserverError');
  }
}

/**
 * The general driver: `h` is the request (-1: start one with options `o`) and `first` its first
 * attempt if it already settled (else the step to act on is in the buffer when `h` is given).
 */
async function drive(e, fn, o, h, first) {
  const clock = e.clock;
  /** The engine's time now: the router's clock, or CLOCK (the native clock read natively). */
  const now = clock === undefined ? () => CLOCK : () => checkTime(clock(), 'nowMs');
  const read = clock === undefined ? monotonicNow : now;
  /** With the native clock, a call that reports also polls (both read the clock natively). */
  const pollNow = clock === undefined ? CLOCK : NO_POLL;
  const signal = o?.signal;
  let isLive = true;
  let have = true; // the step to act on is in the buffer
  let a = first;
  if (h === -1) {
    if (signal?.aborted) throw signal.reason;
    if (o !== null && o.requestTimeoutMs !== undefined) o.deadline_ms = read() + o.requestTimeoutMs;
    h = begin(e.slot, now(), pollNow, o);
    have = pollNow !== NO_POLL || !live();
  }
  // A first attempt that already settled belongs to a live request (the buffer may have moved on).
  isLive = first !== null || live();
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
      if (a === null) {
        if (!have) {
          poll(h, now());
          isLive = live();
          if (e.observer !== null) observe(e);
        }
        have = false;
        const s = step();
        if (s === STEP_ATTEMPT) {
          const timeoutMs = stepTimeout();
          a = new Attempt(e.byIndex[stepProvider()], stepNumber(), timeoutMs, stepProbe(), performance.now() + timeoutMs, null, null, -1, null, null);
          current = a;
          await Attempt.run(fn, a);
          current = null;
        } else if (s === STEP_DONE) {
          const f = finishCode();
          if (f === FINISH_SUCCESS) return last;
          if (f === FINISH_CALLER_ERROR) {
            if (last instanceof Error || !isResponseLike(last)) throw last;
            return last;
          }
          if (f === FINISH_GAVE_UP) {
            throw new AllProvidersFailedError(errors ?? [], giveUpHint(), attempts ?? [], undefined, giveUpReason());
          }
          throw new InternalError(`the request ended as ${finishName()} with no error to re-throw`, 'internal_panic');
        } else if (s === STEP_WAIT) {
          await sleep(Math.max(0, stepUntil() - read()), signal);
          if (signal?.aborted) {
            cancel(h, now());
            isLive = live();
            throw signal.reason;
          }
          continue;
        } else {
          throw new InternalError(`unexpected step ${JSON.stringify(stepObject(e.byIndex))}`, 'internal_panic');
        }
      }
      const state = stateOf(a);
      last = valueOf(a);
      let kind = 'success';
      let ra = null;
      let error = null;
      if (state === RETURNED) {
        if (isResponseLike(last)) {
          ({ outcome: kind, retry_after_ms: ra } = classifyFacts(responseFacts(last)));
          if (kind !== 'success' && kind !== 'client_error') error = new HttpStatusError(last, { outcome: kind, retry_after_ms: ra });
        }
      } else if (state === TIMED_OUT) {
        kind = 'timeout';
        error = last;
      } else {
        const facts = state === ABORTED ? null : errorFacts(last);
        // Nothing attributable to the provider (a bug in the caller's callback), or the
        // caller's own abort: the request ends as cancelled and the error goes back unchanged.
        if (facts === null) kind = 'cancelled';
        else ({ outcome: kind, retry_after_ms: ra } = classifyFacts(facts));
        error = last;
      }
      if (kind === 'cancelled') {
        cancel(h, now());
        isLive = live();
        if (e.observer !== null) observe(e);
        throw last;
      }
      const success = kind === 'success';
      // A success always finishes a (non-streamed) request: no poll to say so.
      const pn = success ? NO_POLL : pollNow;
      // The answer's rate-limit headers first, so that the step the report polls sees them.
      if (state !== TIMED_OUT) pace(e, a.provider, last, now());
      outcome(h, OUTCOME_CODE.get(kind), ra ?? -1, now(), pn);
      isLive = live();
      if (e.observer !== null) observe(e);
      if (success) return last;
      (attempts ??= []).push({
        provider: a.provider,
        outcome: kind,
        error,
        latency_ms: reportLatency(),
        retry_after_ms: ra ?? null,
        number: a.attempt,
      });
      if (error !== null) (errors ??= []).push(error);
      // The next step is in the buffer if the call polled or the request finished.
      have = pn !== NO_POLL || !isLive;
      a = null;
    }
  } finally {
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort);
    if (isLive) free(h);
  }
}

module.exports = { call, Attempt, pace };
