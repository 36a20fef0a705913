'use strict';
// `router.stream`: a streamed request on the core's request engine (`NativeRequest`, stream
// inputs). The engine decides (which provider, fail over or not, the first-token and idle
// deadlines); this file iterates the provider's stream, tells the engine when the first *content*
// arrived and how the stream ended, and enforces the deadlines it gets.
//
// Failing over is safe only before the caller has seen anything: chunks that are not content (a
// role-only delta, `message_start`, `ping`) are held back until the first content chunk and then
// delivered with it, so a stream that fails before content is replaced by the next provider's
// without the caller noticing. After the first content a failure is the caller's:
// `StreamBrokenError` carries the chunks already delivered.
//
// Deadlines: one timer per attempt, re-armed lazily (a chunk only moves a number). Each read of
// the provider's stream (and the call that opens it) is wrapped in a promise the timer can reject,
// and the timer also aborts the attempt's `signal`, so an SDK stream is torn down too. The idle deadline
// runs while the stream is being read, not while the caller's code runs between chunks.

const native = require('../native.js');
// The global `performance` is a lazy getter on every read: read once here.
const { performance } = require('node:perf_hooks');
const { AllProvidersFailedError, StreamBrokenError, ProviderStreamError, InternalError } = require('./errors.js');
const { typeError, checkPositive, checkTime, checkFunction } = require('./errors.js');
const { errorFacts } = require('./facts.js');
const { pace } = require('./call.js');

const { NativeRequest, classify: classifyFacts, monotonicNow, chunkKind: nativeChunkKind, chunkKindOf: nativeChunkKindOf } = native;
/** Outcome kind names by index: an error chunk's number is 16 + its outcome's index. */
const OUTCOMES = native.outcomeKinds();

/**
 * Whether a delta's member holds something, as Python reads it: a non-empty string, array or
 * object, `true`, a non-zero number.
 */
function given(v) {
  if (v === null || typeof v !== 'object') return Boolean(v);
  if (Array.isArray(v)) return v.length > 0;
  for (const _ in v) return true;
  return false;
}

/**
 * What `chunk` is by the core's chunk table (`failover_core::classify_chunk`): a number (bit 1
 * content, bit 2 terminal) or, for an in-band error, the outcome kind name. Only reads facts: the
 * `type`, the SSE `event` name (without a string `type`), each choice's `delta` (whether `content`,
 * `tool_calls` or `refusal` holds something) and `finish_reason`, and an `error` member's `code`,
 * `type` and `message` (a string error is its message); a string or byte array's length.
 */
function kindOf(chunk) {
  const k = kindCode(chunk);
  return k < 16 ? k : OUTCOMES[k - 16];
}

function kindCode(chunk) {
  if (typeof chunk === 'string') return nativeChunkKind(undefined, undefined, chunk.length);
  if (chunk === null || typeof chunk !== 'object') return nativeChunkKindOf(undefined, false, undefined); // no facts
  if (ArrayBuffer.isView(chunk)) return nativeChunkKind(undefined, undefined, chunk.byteLength);
  const type = typeof chunk.type === 'string' ? chunk.type : undefined;
  const event = type === undefined && typeof chunk.event === 'string' ? chunk.event : undefined;
  let content = false;
  let finish;
  const choices = chunk.choices;
  if (Array.isArray(choices)) {
    for (const c of choices) {
      if (c === null || typeof c !== 'object') continue;
      const d = c.delta;
      if (!content && d !== null && typeof d === 'object' && (given(d.content) || given(d.tool_calls) || given(d.refusal))) content = true;
      if (finish === undefined && c.finish_reason !== null && c.finish_reason !== undefined) finish = c.finish_reason;
    }
  }
  if (typeof finish !== 'string') finish = undefined;
  const err = chunk.error;
  if (err === null || err === undefined) {
    // The common chunk: the three-argument call, asked once per distinct facts.
    if (event === undefined) return commonKind(type, content, finish);
    return nativeChunkKind(type, event, undefined, content, finish);
  }
  if (typeof err !== 'object') return nativeChunkKind(type, event, undefined, content, finish, true, undefined, undefined, typeof err === 'string' ? err : undefined);
  const str = (v) => (typeof v === 'string' ? v : undefined);
  return nativeChunkKind(type, event, undefined, content, finish, true, str(err.code), str(err.type), str(err.message));
}

// The core's answer for a common chunk (`chunkKindOf`: no SSE event name, no error member) is a
// pure function of its three facts (`failover_core::classify_chunk` reads nothing else, and
// nothing else changes it), and a stream's chunks mostly repeat the same facts: each distinct
// `(type, content, finish_reason)` is asked of the core once and its answer kept, the last one
// in three variables, the others in a map (at most COMMON_MAX of them; past that, every new
// combination is asked each time). No rule is written here: every answer is the core's.
const COMMON_MAX = 256;
/** type → finish_reason → [answer without content, answer with content] (-1: not asked yet). */
const common = new Map();
let commonSize = 0;
let lastType;
let lastContent = false;
let lastFinish;
let lastKind = -1;

function commonKind(type, content, finish) {
  if (lastKind !== -1 && type === lastType && content === lastContent && finish === lastFinish) return lastKind;
  let byFinish = common.get(type);
  let pair = byFinish?.get(finish);
  if (pair === undefined) {
    if (commonSize >= COMMON_MAX) return nativeChunkKindOf(type, content, finish);
    if (byFinish === undefined) common.set(type, (byFinish = new Map()));
    byFinish.set(finish, (pair = [-1, -1]));
    commonSize++;
  }
  const i = content ? 1 : 0;
  let k = pair[i];
  if (k === -1) k = pair[i] = nativeChunkKindOf(type, content, finish);
  lastType = type;
  lastContent = content;
  lastFinish = finish;
  lastKind = k;
  return k;
}

const KIND_NAMES = ['other', 'content', 'terminal', 'last_content'];

/** What a chunk is by the core's chunk table: `'content'`, `'last_content'`, `'terminal'`, `'error'` or `'other'`. */
function chunkKind(chunk) {
  const k = kindOf(chunk);
  return typeof k === 'string' ? 'error' : KIND_NAMES[k];
}

/** Whether a chunk is content the caller sees (the core's chunk table). */
function isContent(chunk) {
  const k = kindOf(chunk);
  return typeof k === 'number' && (k & 1) !== 0;
}

/** Whether a chunk ends the stream complete (the core's chunk table). */
function isTerminal(chunk) {
  const k = kindOf(chunk);
  return typeof k === 'number' && (k & 2) !== 0;
}

/** What `router.stream` passes to its function (the same fields as `router.call`'s attempt). */
class StreamAttempt {
  #ac = null;
  #reason = undefined;
  constructor(provider, attempt, timeoutMs, probe) {
    this.provider = provider;
    this.attempt = attempt;
    this.timeoutMs = timeoutMs;
    this.probe = probe;
  }

  get signal() {
    if (this.#ac === null) {
      this.#ac = new AbortController();
      if (this.#reason !== undefined) this.#ac.abort(this.#reason);
    }
    return this.#ac.signal;
  }

  /** Aborts the signal (once). */
  abort(reason) {
    if (this.#reason !== undefined) return;
    this.#reason = reason;
    this.#ac?.abort(reason);
  }
}

const OPTION_KEYS = new Set(['key', 'maxAttempts', 'requestTimeoutMs', 'maxWaitMs', 'signal', 'isContent', 'isTerminal']);

function streamOptions(options) {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object') throw typeError('options', 'an object', options);
  for (const k of Object.keys(options)) {
    if (!OPTION_KEYS.has(k)) throw typeError(`options.${k}`, `absent (not an option of stream; options are ${[...OPTION_KEYS].join(', ')})`, options[k]);
  }
  const { key, signal, maxAttempts, requestTimeoutMs, maxWaitMs } = options;
  if (key !== undefined && key !== null && typeof key !== 'string') throw typeError('options.key', 'a string', key);
  if (signal !== undefined && signal !== null && !(signal instanceof AbortSignal)) throw typeError('options.signal', 'an AbortSignal', signal);
  if (maxAttempts !== undefined) checkPositive(maxAttempts, 'options.maxAttempts');
  if (requestTimeoutMs !== undefined) checkPositive(requestTimeoutMs, 'options.requestTimeoutMs');
  if (maxWaitMs !== undefined) checkTime(maxWaitMs, 'options.maxWaitMs');
  checkFunction(options.isContent, 'options.isContent');
  checkFunction(options.isTerminal, 'options.isTerminal');
  return options;
}

/** The resolve and reject functions of the latest `new Promise(capture)` (no closure per read). */
let capturedResolve;
let capturedReject;
function capture(resolve, reject) {
  capturedResolve = resolve;
  capturedReject = reject;
}

/** The reason a deadline's race rejects with (never reaches the caller). */
const LATE = Symbol('late');

/** Sleeps `ms`, or until `signal` aborts. */
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

/** Opens `fn`'s stream: an async iterable, a sync iterable, or a promise of one. */
function iteratorOf(src) {
  if (src !== null && src !== undefined) {
    if (typeof src[Symbol.asyncIterator] === 'function') return src[Symbol.asyncIterator]();
    if (typeof src.next === 'function') return src;
    if (typeof src[Symbol.iterator] === 'function' && typeof src !== 'string') return src[Symbol.iterator]();
  }
  throw typeError('fn(attempt)', 'an async iterable (or a promise of one)', src);
}

/**
 * `router.stream` on engine `e` (engine.js): an async iterable of the answer's chunks. Argument
 * errors are thrown here; everything else when iterating.
 */
function stream(e, fn, options) {
  if (typeof fn !== 'function') throw typeError('fn', 'a function (attempt) => AsyncIterable', fn);
  const o = streamOptions(options);
  let used = false;
  return {
    [Symbol.asyncIterator]() {
      if (used) throw new TypeError('a router.stream(...) result can be iterated only once');
      used = true;
      return chunks(e, fn, o);
    },
  };
}

async function* chunks(e, fn, o) {
  const router = e.n;
  const clock = e.clock;
  /** The engine's time now (ms): the router's clock, or the native clock. */
  const now = clock === undefined ? monotonicNow : () => checkTime(clock(), 'nowMs');
  // The core's chunk table, or the caller's own tests (which know no error chunks).
  const custom = o.isContent !== undefined || o.isTerminal !== undefined;
  const content = o.isContent ?? isContent;
  const terminal = o.isTerminal ?? isTerminal;
  const kind = custom ? (c) => (content(c) ? 1 : 0) | (terminal(c) ? 2 : 0) : kindCode;
  const signal = o.signal ?? undefined;
  if (signal?.aborted) throw signal.reason;
  const t0 = now();
  const req = new NativeRequest(
    router,
    {
      key: o.key ?? null,
      max_attempts: o.maxAttempts ?? null,
      max_wait_ms: o.maxWaitMs ?? null,
      deadline_ms: o.requestTimeoutMs === undefined ? null : t0 + o.requestTimeoutMs,
      stream: true,
    },
    t0,
  );
  /** Chunks given to the caller. */
  const delivered = [];
  const errors = [];
  const attempts = [];
  let finished = false;
  let a = null; // the attempt in flight
  let it = null; // its iterator
  let onAbort;
  if (signal !== undefined) {
    onAbort = () => a?.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  }
  const failed = (provider, outcome, error, retryAfterMs = null) => {
    const [rep] = req.lastReport();
    attempts.push({ provider, outcome, error, latency_ms: rep?.latency_ms ?? 0, retry_after_ms: retryAfterMs ?? null, number: a?.attempt ?? 0 });
    if (error !== null && error !== undefined) errors.push(error);
  };
  /** Reports recorded so far and handed to the router's observer (failover-core/otel). */
  let observed = 0;
  const observe = () => {
    const f = req.lastAttempt();
    if (f === null || f[0] === observed) return;
    observed = f[0];
    try {
      e.observer.attempt(f.slice(1), false);
    } catch (err) {
      process.emitWarning(err instanceof Error ? err : new Error(String(err)), 'FailoverCoreObserverError');
    }
  };
  try {
    let step = req.poll(router, now());
    for (;;) {
      if (e.observer !== null) observe();
      if (step.done !== undefined) {
        finished = true;
        const d = step.done;
        if (d.finish === 'success') return;
        if (d.finish === 'gave_up') throw new AllProvidersFailedError(errors, d.retry_after_ms ?? null, attempts, undefined, d.reason ?? null);
        if (d.finish === 'caller_error' && errors.length > 0) throw errors[errors.length - 1];
        throw new InternalError(`the stream ended as ${d.finish} with no error to re-throw`, 'internal_panic');
      }
      if (step.wait !== undefined || step.in_flight !== undefined) {
        const until = step.wait?.until_ms ?? step.in_flight.deadline_ms;
        await sleep(Math.max(0, until - now()), signal);
        if (signal?.aborted) throw signal.reason;
        step = req.poll(router, now());
        continue;
      }
      const s = step.attempt;
      a = new StreamAttempt(s.provider, s.number, s.timeout_ms, s.kind === 'probe');
      const idle = s.idle_ms ?? 0;
      // Timers run on performance.now(); the engine's deadlines are converted once.
      const p0 = performance.now();
      const e0 = now();
      /** performance.now() of the current deadline: the first token's, then each read's idle one. */
      let dl = p0 + (s.deadline_ms - e0);
      let reading = true;
      let late = false;
      /** Rejects the read (or open) in progress: a deadline passed. */
      let rejectRead = null;
      /** `p` (a read or the open), settled early by rejectRead: one promise per read, no race. */
      const bounded = (p) => {
        const read = new Promise(capture);
        rejectRead = capturedReject;
        p.then(capturedResolve, capturedReject);
        return read;
      };
      let timer = null;
      let timerAt = 0;
      let started = false;
      const arm = () => {
        timerAt = dl;
        timer = setTimeout(onTimer, Math.max(1, Math.ceil(dl - performance.now())));
      };
      function onTimer() {
        timer = null;
        if (!reading) return; // re-armed at the next read
        if (performance.now() + 1 < dl) {
          arm();
          return;
        }
        late = true;
        const reason = new DOMException(`attempt ${a.attempt} on ${a.provider} passed its ${started ? 'idle' : 'first-token'} deadline`, 'TimeoutError');
        a.abort(reason);
        rejectRead?.(LATE);
      }
      arm();
      let complete = false;
      /** performance.now() of the last read's start after content (the engine's last chunk). */
      let lastRead = 0;
      const held = [];
      const engineAt = (p) => Math.max(e0, Math.floor(now() - (performance.now() - p)));
      try {
        try {
          let src = fn(a);
          if (src !== null && typeof src === 'object' && typeof src.then === 'function' && typeof src[Symbol.asyncIterator] !== 'function') {
            src = await bounded(Promise.resolve(src));
          }
          // The stream's rate-limit headers (an SDK stream's `response.headers`) to pacing.
          pace(e, a.provider, src, now());
          it = iteratorOf(src);
          for (;;) {
            if (started) {
              lastRead = performance.now();
              dl = lastRead + idle;
              // The timer is re-armed lazily when the deadline moved later, at once when earlier.
              if (timer !== null && timerAt > dl + 1) {
                clearTimeout(timer);
                timer = null;
              }
              if (timer === null) arm();
            }
            reading = true;
            const n = it.next();
            // A sync iterator's result is used as is (a blocking read cannot be interrupted).
            const r = typeof n?.then === 'function' ? await bounded(n) : n;
            reading = false;
            if (r.done) break;
            const chunk = r.value;
            const k = kind(chunk);
            if (k >= 16) throw new ProviderStreamError(a.provider, OUTCOMES[k - 16], chunk);
            if ((k & 2) !== 0) complete = true;
            if (started) {
              delivered.push(chunk);
              yield chunk;
            } else if ((k & 1) !== 0) {
              req.handleFirstToken(now());
              started = true;
              for (const h of held) {
                delivered.push(h);
                yield h;
              }
              held.length = 0;
              delivered.push(chunk);
              yield chunk;
            } else held.push(chunk);
            if (complete) break;
          }
        } catch (err) {
          reading = false;
          if (late || err === LATE) {
            // A deadline passed: poll at it, which records the timeout (before content) or the
            // stall (after).
            if (started) req.handleChunk(engineAt(lastRead));
            const at = started ? engineAt(lastRead) + idle : s.deadline_ms;
            const next = req.poll(router, Math.max(now(), at));
            const outcome = started ? 'stalled' : 'timeout';
            const error = new DOMException(`${a.provider}'s stream ${started ? `stalled (no chunk within ${idle} ms)` : `sent no content within ${a.timeoutMs} ms`}`, 'TimeoutError');
            failed(a.provider, outcome, error);
            if (started) {
              finished = true;
              throw new StreamBrokenError(a.provider, outcome, delivered, error);
            }
            step = next;
            continue;
          }
          let facts = err instanceof ProviderStreamError ? null : errorFacts(err);
          // A chunk the SDK could not parse is the provider's (a protocol error), not the caller's.
          if (facts === null && it !== null && err instanceof SyntaxError) facts = { transport: 'protocol' };
          if (err instanceof ProviderStreamError) {
            // An in-band error chunk: the core's chunk table already gave its outcome.
          } else if (facts === null) {
            // Nothing attributable to the provider (a bug in the caller's code): cancelled.
            req.handleCancel(router, now());
            finished = true;
            throw err;
          }
          const { outcome, retry_after_ms: ra } = err instanceof ProviderStreamError ? { outcome: err.kind, retry_after_ms: null } : classifyFacts(facts);
          if (outcome === 'cancelled') {
            req.handleCancel(router, now());
            finished = true;
            throw err;
          }
          if (started) req.handleChunk(engineAt(lastRead));
          pace(e, a.provider, err, now());
          req.handleOutcome(router, outcome, ra, now());
          failed(a.provider, outcome, err, ra);
          if (started) {
            finished = true;
            throw new StreamBrokenError(a.provider, outcome, delivered, err);
          }
          step = req.poll(router, now());
          continue;
        }
        if (started && lastRead !== 0) req.handleChunk(engineAt(lastRead));
        if (complete && !started) {
          // Complete with no content: deliver what it sent.
          for (const h of held) {
            delivered.push(h);
            yield h;
          }
        }
        req.handleEnd(router, complete, now());
        if (complete) {
          finished = true;
          return;
        }
        const cut = new Error(`${a.provider}'s stream ended without its terminal event`);
        failed(a.provider, 'stream_cut', cut);
        if (started) {
          finished = true;
          throw new StreamBrokenError(a.provider, 'stream_cut', delivered, cut);
        }
        step = req.poll(router, now());
      } finally {
        if (timer !== null) clearTimeout(timer);
        reading = false;
        const i = it;
        it = null;
        a = null;
        if (i !== null && typeof i.return === 'function') {
          if (late) {
            // Its read is still pending (an async generator would finish it before closing):
            // close without waiting; the aborted signal tears an SDK stream down.
            Promise.resolve()
              .then(() => i.return())
              .catch(() => {});
          } else {
            try {
              await i.return();
            } catch {
              // closing a broken stream may fail again; nothing to add
            }
          }
        }
      }
    }
  } finally {
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort);
    if (!finished && req.finish() === null) {
      // The caller stopped early, or its code threw: the request is cancelled.
      try {
        req.handleCancel(router, now());
      } catch {
        // already over
      }
    }
    if (e.observer !== null) observe();
  }
}

module.exports = { stream, chunkKind, kindOf, isContent, isTerminal };
