'use strict';
// The public Router: argument checks around the native router (engine.js) and the fast path
// (io.js); `call` and `startHealthChecks` live in call.js and health.js.

const { describe, withCode, typeError, rangeError, checkTime } = require('./errors.js');
const { OUTCOME_KINDS, OUTCOME_CODE, RECORDED, MAX_LATENCY, slotOf, record } = require('./io.js');
const { Ticket, ticketHandle } = require('./ticket.js');
const { Engine } = require('./engine.js');
const { call } = require('./call.js');
const { rateLimitPairs } = require('./facts.js');
const { stream } = require('./stream.js');
const { startHealthChecks } = require('./health.js');

/** Event kinds `logEvents` logs at info level (the rest at debug). */
const LOG_INFO = new Set(['opened', 'recovered', 'benched']);

function outcomeKindError(arg, v) {
  const expected = `one of ${OUTCOME_KINDS.map((k) => `"${k}"`).join(', ')}`;
  if (typeof v !== 'string') return typeError(arg, expected, v);
  return withCode(new RangeError(`\`${arg}\` must be ${expected}, got ${describe(v)}`), 'ERR_INVALID_ARG_VALUE');
}

/** The code of an outcome kind name. */
function outcomeCode(v, arg) {
  const code = OUTCOME_CODE.get(v);
  if (code === undefined) throw outcomeKindError(arg, v);
  return code;
}

/** Parses an outcome argument into [code, latency, retryAfter (-1 for none)]. */
function outcomeParts(o, arg) {
  if (typeof o === 'string') return [outcomeCode(o, arg), 0, -1];
  if (typeof o !== 'object' || o === null) {
    throw typeError(arg, 'an outcome kind or {outcome, latency_ms?, retry_after_ms?}', o);
  }
  const code = outcomeCode(o.outcome, `${arg}.outcome`);
  let latency = o.latency_ms;
  if (latency === undefined || latency === null) latency = 0;
  else if (typeof latency !== 'number') {
    throw typeError(`${arg}.latency_ms`, 'a number of milliseconds', latency);
  } else {
    latency = Math.round(latency);
    if (!(latency >= 0 && latency <= MAX_LATENCY)) {
      throw rangeError(
        `${arg}.latency_ms`,
        `must be a number of milliseconds between 0 and ${MAX_LATENCY}, got ${describe(o.latency_ms)}`,
      );
    }
  }
  const ra = o.retry_after_ms;
  return [code, latency, ra === undefined || ra === null ? -1 : checkTime(ra, `${arg}.retry_after_ms`)];
}

/**
 * The `NativeRouter` behind a Router: package-internal (not exported by index.js), for the request
 * engine (`NativeRequest`), which is driven against it, and the request scenario runner.
 */
let nativeRouter;
/** The Engine behind a Router: package-internal, for `failover-core/otel`. */
let engineOf;

/**
 * The failover engine over up to 16 providers in priority order (the first is the primary).
 *
 * Per request: `pick()`, call the provider, `record(ticket, outcome)` — or let `call(fn)` do all
 * of it. Every time-taking method takes an optional `nowMs` (integer ms); without it the router's
 * clock is read (`options.clock`, by default the native monotonic clock, `monotonicNowMs`).
 */
class Router {
  /** The native side (engine.js). */
  #e;

  static {
    nativeRouter = (router) => router.#e.n;
    engineOf = (router) => (#e in router ? router.#e : null);
  }

  /**
   * @param providers provider names in priority order
   * @param policy policy fields by the core's names (`{consecutive_failures: 3, ramp: [...]}`);
   *   omitted fields keep their defaults. Throws `ConfigError` (the core's code and message).
   * @param options `{clock}`: the default time source, a function returning integer ms.
   */
  constructor(providers, policy, options) {
    if (options !== undefined && (typeof options !== 'object' || options === null)) {
      throw typeError('options', 'an object', options);
    }
    const clock = options?.clock;
    if (clock !== undefined && typeof clock !== 'function') {
      throw typeError('options.clock', 'a function returning ms', clock);
    }
    this.#e = new Engine(providers, policy, clock);
  }

  /** Provider names in priority order. */
  get providers() {
    return this.#e.names;
  }

  /** The latest time the engine has seen, ms. */
  get now() {
    return this.#e.n.now();
  }

  /** Events dropped because the queue (64) was full; drain it with `pollEvent`/`drainEvents`. */
  get droppedEvents() {
    return this.#e.n.droppedEvents();
  }

  /** Events waiting in the queue. */
  get pendingEvents() {
    return this.#e.n.pendingEvents();
  }

  #mask(tried) {
    if (tried === undefined || tried === null) return 0;
    if (typeof tried !== 'object' || typeof tried[Symbol.iterator] !== 'function') {
      throw typeError('options.tried', 'an array or set of provider names', tried);
    }
    let mask = 0;
    for (const name of tried) {
      const i = this.#e.index.get(name);
      if (i === undefined) {
        if (typeof name !== 'string') throw typeError('options.tried[]', 'a provider name', name);
        throw rangeError('options.tried', `names an unknown provider ${describe(name)}`);
      }
      mask |= 1 << i;
    }
    return mask;
  }

  /**
   * Which provider to call: `pick(nowMs?)` or `pick({nowMs?, key?, tried?})`. `key` keeps a
   * session on the same provider through a ramp; `tried` (names) are skipped. Throws
   * `UnavailableError` (with `retry_after_ms`) when no provider may be called.
   */
  pick(options) {
    const e = this.#e;
    let now;
    let tried = 0;
    let key;
    if (typeof options === 'number' || options === undefined) now = e.now(options);
    else if (typeof options === 'object' && options !== null) {
      now = e.now(options.nowMs);
      key = options.key;
      tried = this.#mask(options.tried);
      if (key !== undefined && key !== null && typeof key !== 'string') {
        throw typeError('options.key', 'a string', key);
      }
    } else {
      throw typeError('nowMs', 'a number of milliseconds or {nowMs?, key?, tried?}', options);
    }
    const failure = e.tryPick(now, key, tried);
    if (failure !== null) throw failure;
    return e.ticket(Ticket);
  }

  /**
   * Records the outcome of the call `ticket` decided: an outcome kind (`"success"`, …) or
   * `{outcome, latency_ms?, retry_after_ms?}`. Returns `"accepted"`, `"stale"` (the ticket is
   * from an earlier circuit generation or its probe expired: ignored) or `"unknown_provider"`.
   */
  record(ticket, outcome, nowMs) {
    const e = this.#e;
    const h = ticketHandle(ticket);
    if (h < 0) throw typeError('ticket', 'a Ticket from pick() or pollAction()', ticket);
    if (slotOf(h) !== e.slot) {
      throw withCode(new TypeError('`ticket` was issued by another router'), 'ERR_INVALID_ARG_VALUE');
    }
    let code;
    let latency = 0;
    let ra = -1;
    // An outcome kind is parsed inline: the common case allocates nothing.
    if (typeof outcome === 'string') code = outcomeCode(outcome, 'outcome');
    else [code, latency, ra] = outcomeParts(outcome, 'outcome');
    const now = nowMs === undefined ? e.now() : checkTime(nowMs, 'nowMs');
    return RECORDED[record(h, ticket.generation, ticket.probe_seq, code, latency, ra, now, 0)];
  }

  /**
   * Records an outcome for `provider` (a name) without a ticket: a call made outside the router,
   * a replayed log line. Returns `"unknown_provider"` for a name the router does not have.
   */
  observe(provider, outcome, nowMs) {
    if (typeof provider !== 'string') throw typeError('provider', 'a provider name', provider);
    const [code, latency, ra] = outcomeParts(outcome, 'outcome');
    const e = this.#e;
    const now = e.now(nowMs);
    const r = RECORDED[e.n.observe(e.index.get(provider) ?? e.names.length, code, latency, ra, now)];
    e.after();
    return r;
  }

  #manual(action, provider, nowMs) {
    if (typeof provider !== 'string') throw typeError('provider', 'a provider name', provider);
    const e = this.#e;
    const i = e.index.get(provider);
    if (i === undefined) throw rangeError('provider', `names an unknown provider ${describe(provider)}`);
    const changed = e.n.manual(action, i, e.now(nowMs));
    e.after();
    return changed;
  }

  /**
   * Isolates `provider` by hand (an operator's decision during an incident): never picked, not
   * even when every other provider is down, no probes or health checks, until `release`; its
   * view says `isolated` (share 0) and an `isolated` event is emitted. Returns false if it
   * already was.
   */
  isolate(provider, nowMs) {
    return this.#manual(0, provider, nowMs);
  }

  /** Ends an isolation: the provider takes traffic again as its circuit allows. Returns false if it was not isolated. */
  release(provider, nowMs) {
    return this.#manual(1, provider, nowMs);
  }

  /**
   * Clears `provider`'s state by hand: window, latency baseline, circuit, strikes and backoff as
   * new; tickets issued before are stale; an isolation is kept. Returns true.
   */
  reset(provider, nowMs) {
    return this.#manual(2, provider, nowMs);
  }

  /**
   * The policy in force: every field (defaults included) by the names policy objects use, with
   * the values they take (`ramp` an array of `{share, dwell_ms}`); `new Router(names,
   * router.policy())` builds the same policy.
   */
  policy() {
    return this.#e.n.policy();
  }

  /** Whether `provider` is isolated by hand. */
  isIsolated(provider) {
    const i = this.#e.index.get(provider);
    return i !== undefined && this.#e.n.isIsolated(i);
  }

  /**
   * Feeds one answer's rate-limit headers for `provider` (any answer: success, 429 or error) to
   * the core's pacing: below the policy's `pace_watermark` of quota left, the provider takes a
   * smaller share, none at zero, until the quota resets. `headers` is a fetch `Headers`, a plain
   * object or an array of `[name, value]` pairs; other headers are ignored. `nowUnixMs` (the wall
   * clock, default `Date.now()`) is needed only for Anthropic's reset times. `call` does this for
   * you. Returns `"accepted"`, or `"unknown_provider"` for a name the router does not have.
   */
  observeHeadroom(provider, headers, nowMs, nowUnixMs) {
    if (typeof provider !== 'string') throw typeError('provider', 'a provider name', provider);
    const e = this.#e;
    const now = e.now(nowMs);
    const wall = nowUnixMs === undefined || nowUnixMs === null ? Date.now() : checkTime(nowUnixMs, 'nowUnixMs');
    const pairs = rateLimitPairs(headers);
    return RECORDED[e.n.observeHeadroom(e.index.get(provider) ?? e.names.length, pairs, now, wall)];
  }

  /** Performs every transition due at `nowMs` (spurious calls are harmless). */
  handleTimeout(nowMs) {
    const e = this.#e;
    e.n.handleTimeout(e.now(nowMs));
    e.after();
  }

  /**
   * When `handleTimeout` next has something to do, or a health check is due (then the latest time
   * seen), in ms; null when nothing is scheduled. Changes only after an input.
   */
  pollTimeout() {
    return this.#e.n.pollTimeout();
  }

  /**
   * With `probe_mode: "health_checks"`: the next health check due at `nowMs`, as a ticket of kind
   * `"health_check"` (send a check to `ticket.provider` and record its outcome), or null. Call
   * until null.
   */
  pollAction(nowMs) {
    const e = this.#e;
    if (!e.n.pollAction(e.now(nowMs))) {
      e.after();
      return null;
    }
    const t = e.ticket(Ticket);
    e.after();
    return t;
  }

  /**
   * Calls `fn(event)` for every event of kind `kind` (`"opened"`, `"probing"`, `"ramp_stage"`,
   * `"recovered"`, `"throttled"`, `"benched"`, …) or, with `"event"`, of every kind, including
   * those of `call`, `stream` and the health checks. Events are emitted in order, in a microtask
   * right after the call that produced them, whether or not anyone drains the queue
   * (`pollEvent`/`drainEvents` still see every event the queue holds). Each event is a plain
   * object with the core's `description` and, when the router runs on its own clock, `unix_ms`
   * (its wall-clock time; null otherwise). A listener that throws is reported to the `"error"`
   * listeners as `(error, event)`, or as a process warning. Returns the router.
   */
  on(kind, fn) {
    if (typeof kind !== 'string') throw typeError('kind', 'an event kind, "event" or "error"', kind);
    if (typeof fn !== 'function') throw typeError('listener', 'a function', fn);
    this.#e.on(kind, fn);
    return this;
  }

  /** Removes a listener added with `on`. Returns the router. */
  off(kind, fn) {
    this.#e.off(kind, fn);
    return this;
  }

  /**
   * Opt-in logging of every event through the emitter: `logger.info(line)` for opens (rollbacks
   * included), recoveries and benches, `logger.debug(line)` for the rest when `debug` is set;
   * `line` is `"failover-core: <provider> <kind>: <description>"`. `logger` defaults to
   * `console` (pino, winston and bunyan loggers work too). Returns a function that stops it.
   */
  logEvents(logger = console, options = {}) {
    if (typeof logger !== 'object' || logger === null || typeof logger.info !== 'function') {
      throw typeError('logger', 'an object with info() and debug() (console, pino, ...)', logger);
    }
    const debug = options?.debug === true;
    const fn = (ev) => {
      const line = `failover-core: ${ev.provider} ${ev.kind}: ${ev.description}`;
      if (LOG_INFO.has(ev.kind)) logger.info(line);
      else if (debug && typeof logger.debug === 'function') logger.debug(line);
    };
    this.on('event', fn);
    return () => this.off('event', fn);
  }

  /** The oldest queued event, or null. */
  pollEvent() {
    return this.#e.n.pollEvent();
  }

  /** Every queued event, oldest first. */
  drainEvents() {
    return this.#e.n.drainEvents();
  }

  /** A provider's state as a plain object (window figures as of the last input), or null. */
  view(provider) {
    if (typeof provider !== 'string') throw typeError('provider', 'a provider name', provider);
    const i = this.#e.index.get(provider);
    return i === undefined ? null : this.#e.n.view(i);
  }

  /** Every provider's view, in priority order. */
  views() {
    return this.#e.n.views();
  }

  /** The core's internal consistency check: null when every invariant holds. For tests. */
  invariantViolation() {
    return this.#e.n.invariantViolation();
  }

  /**
   * Runs one request on the core's request engine: awaits `fn({provider, attempt, signal,
   * timeoutMs, probe})` for each attempt the engine asks for, classifies what came back with the
   * core's table, reports it, and goes on as the engine decides (fail over, retry the same
   * provider, wait out a short `Retry-After`, give up). Client errors are re-thrown at once, the
   * caller's own errors unchanged and counted nowhere; when the engine gives up it throws one
   * `AllProvidersFailedError` (an `AggregateError`) with every cause, the reason and the engine's
   * retry-after hint. A returned fetch-like `Response` is classified too: a failing status fails
   * over (its cause is an `HttpStatusError`), any other is returned.
   *
   * Options: `key` (sticky key), `maxAttempts`, `requestTimeoutMs`, `maxWaitMs`, `signal` (the
   * caller's AbortSignal).
   *
   * Cost: when the first attempt succeeds, two native calls (one starts the request on the core's
   * request engine and polls its first step, one reports the success), reading the monotonic
   * clock natively (no clock call from JavaScript unless the router has its own clock).
   */
  call(fn, options) {
    // Like an async function: anything thrown here (a bad argument) rejects the returned promise.
    try {
      return call(this.#e, fn, options);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * A streamed request on the core's request engine: an async iterable of the answer's chunks.
   * `fn(attempt)` opens the provider's stream (an async iterable, or a promise of one: the
   * openai / anthropic SDKs' `create({stream: true})`). Chunks before the first content are held
   * back, so a failure before content fails over unseen; the first-token and idle deadlines abort
   * `attempt.signal`. After content, a cut, a stall or an error throws `StreamBrokenError` with
   * the chunks already delivered. Breaking out of the loop cancels the request.
   *
   * Options: those of `call`, and `isContent` / `isTerminal` for other chunk shapes.
   */
  stream(fn, options) {
    const e = this.#e;
    const s = stream(e, fn, options);
    if (e.listeners.size === 0) return s;
    // The stream drives its request through `NativeRequest` methods, which io.js does not see:
    // catch up with the router's events after each step of the iteration.
    return {
      [Symbol.asyncIterator]() {
        const it = s[Symbol.asyncIterator]();
        const step = (p) => p.finally(() => e.sync());
        return {
          next: (v) => step(it.next(v)),
          return: (v) => step(typeof it.return === 'function' ? it.return(v) : Promise.resolve({ done: true, value: v })),
          throw: (err) => step(typeof it.throw === 'function' ? it.throw(err) : Promise.reject(err)),
        };
      },
    };
  }

  /**
   * Starts the active health-check loop: whenever the engine says a check is due
   * (`probe_mode: "health_checks"`), runs `check(provider, {ticket, signal})` and records its
   * result (resolving: success, or a fetch `Response` / outcome kind / `{outcome, …}` it returns;
   * throwing: classified like `call`). Sleeps until `pollTimeout()` (at most `maxSleepMs`,
   * default 1000) and calls `handleTimeout`, so events are prompt; `onEvent` receives drained
   * events. The timer is unref'd. Returns `{stop(): Promise<void>}`, which aborts checks in flight
   * (a check should honour its `signal`), records them as cancelled (freeing their probe permits)
   * and waits for them to settle.
   */
  startHealthChecks(check, options) {
    return startHealthChecks(this, this.#e.clock, check, options);
  }
}

module.exports = { Router, nativeRouter, engineOf: (router) => engineOf(router) };
