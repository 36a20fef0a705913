'use strict';
// The fast path's protocol with the native module (see src/hot.rs): the names behind its codes,
// the default clock, the shared Float64Array through which `hotPick` / `hotRecord` and the request
// engine's `hotBegin` / `hotPoll` / `hotOutcome` / `hotCancel` take their inputs and give their
// results, and the packed ticket handle.

const native = require('../native.js');
const { InternalError } = require('./errors.js');

const OUTCOME_KINDS = Object.freeze(native.outcomeKinds());
const TICKET_KINDS = Object.freeze(native.ticketKinds());
const RECORDED = Object.freeze(native.recordedNames());
const OUTCOME_CODE = new Map(OUTCOME_KINDS.map((k, i) => [k, i]));
/** The largest latency the core takes, ms (u32). */
const MAX_LATENCY = 4294967295;
/** `nowMs` of a native call that should read the default clock. */
const CLOCK = -1;

// The native default clock reads CLOCK_MONOTONIC, the clock performance.now() reads; align it
// with performance.timeOrigin + performance.now() so both agree and read like Unix ms.
native.calibrateClock(performance.timeOrigin + performance.now());

const io = native.ioBuffer();
const { hotPick, hotRecord, throwPending } = native;
const { hotBegin, hotPoll, hotOutcome, hotCancel, hotFree, requestKey } = native;
const REQUEST_CODES = native.requestCodes();
const STEP_NAMES = Object.freeze(REQUEST_CODES.steps);
const FINISH_NAMES = Object.freeze(REQUEST_CODES.finishes);
const GIVE_UP_NAMES = Object.freeze(REQUEST_CODES.giveUps);
const {
  router: ROUTER,
  now: NOW,
  tried: TRIED,
  provider: PROVIDER,
  kind: KIND,
  generation: GEN,
  probeSeq: SEQ,
  degraded: DEGRADED,
  ticketRetryAfter: TICKET_RA,
  issuedAt: ISSUED,
  outcome: OUTCOME,
  latency: LATENCY,
  retryAfter: RA,
  usedNow: USED_NOW,
  t0: T0,
  status: STATUS,
  eventsRouter: EV_ROUTER,
  eventsTotal: EV_TOTAL,
} = native.ioLayout();

// Event listeners (router.on): every engine call writes its router's slot and that router's count
// of events ever queued into the buffer; after a call, a router with listeners whose count moved
// collects the new events (engine.js). Two loads and a compare when no router listens.

/** The engines with listeners, by router slot. */
const watched = [];
let nWatched = 0;

/** Registers (or with null removes) the engine with listeners of router `slot`. */
function watch(slot, engine) {
  if (engine !== null && watched[slot] === undefined) nWatched++;
  if (engine === null && watched[slot] !== undefined) nWatched--;
  watched[slot] = engine === null ? undefined : engine;
}

/** After a native call: hands its router's new events to its engine, if it listens. */
function checkEvents() {
  const w = watched[io[EV_ROUTER]];
  if (w !== undefined && io[EV_TOTAL] !== w.seen) w.collect();
}

/** The count of events ever queued by the router of the latest native call. */
const eventsTotal = () => io[EV_TOTAL];

const {
  request: REQUEST,
  pollNow: POLL_NOW,
  maxAttempts: MAX_ATTEMPTS,
  requestDeadline: REQUEST_DEADLINE,
  maxWait: MAX_WAIT,
  keyHi: KEY_HI,
  live: LIVE,
  step: STEP,
  number: NUMBER,
  deadline: DEADLINE,
  timeout: TIMEOUT,
  idle: IDLE,
  last: LAST,
  finish: FINISH,
  reason: REASON,
  lastOutcome: LAST_OUTCOME,
  hint: HINT,
  recorded: RECORDED_AT,
  reportLatency: REPORT_LATENCY,
  reported: REPORTED,
  reportProvider: REPORT_PROVIDER,
  reportKind: REPORT_KIND,
  reportNumber: REPORT_NUMBER,
  reportOutcome: REPORT_OUTCOME,
  reportResult: REPORT_RESULT,
  reportStarted: REPORT_STARTED,
  reportEnded: REPORT_ENDED,
  reportFirstToken: REPORT_FIRST_TOKEN,
  reportRetryAfter: REPORT_RETRY_AFTER,
  clockAt: CLOCK_AT,
  reportExcluded: REPORT_EXCLUDED,
} = native.requestLayout();

/** Whether the latest request call (begin, poll, outcome, cancel) recorded an attempt. */
const reported = () => io[REPORTED] === 1;

/**
 * The codes of the attempt the latest request call recorded, with no allocation:
 * `[provider index, outcome code, ticket kind code, number]` written into `out`.
 */
function reportCodes(out) {
  out[0] = io[REPORT_PROVIDER];
  out[1] = io[REPORT_OUTCOME];
  out[2] = io[REPORT_KIND];
  out[3] = io[REPORT_NUMBER];
}

/**
 * The facts of the attempt the latest request call recorded (the core's `Report`), for an
 * attempt observer (`failover-core/otel`): `[provider, ticketKind, number, outcome, result,
 * startedMs, endedMs, firstTokenMs | null, retryAfterMs | null, excluded]`, engine times in ms;
 * `excluded` the core's `"<provider>=<reason>"` entries for the providers passed over.
 */
function readReport(byIndex) {
  const first = io[REPORT_FIRST_TOKEN];
  const ra = io[REPORT_RETRY_AFTER];
  const x0 = io[REPORT_EXCLUDED];
  const x1 = io[REPORT_EXCLUDED + 1];
  const x2 = io[REPORT_EXCLUDED + 2];
  return [
    byIndex[io[REPORT_PROVIDER]],
    TICKET_KINDS[io[REPORT_KIND]],
    io[REPORT_NUMBER],
    OUTCOME_KINDS[io[REPORT_OUTCOME]],
    RECORDED[io[REPORT_RESULT]],
    io[REPORT_STARTED],
    io[REPORT_ENDED],
    first < 0 ? null : first,
    ra < 0 ? null : ra,
    x0 === 0 && x1 === 0 && x2 === 0 ? NONE : native.exclusionEntries([x0, x1, x2], byIndex),
  ];
}

/** No provider passed over. */
const NONE = Object.freeze([]);

// A ticket's hidden handle packs its router slot, kind code and provider index into one number:
// slot × 256 + kind × 64 + index (a router has at most 16 providers, kinds are 0..2).
const pack = (slot, kind, index) => slot * 256 + kind * 64 + index;
const slotOf = (h) => h >> 8;
const kindOf = (h) => (h >> 6) & 3;
const indexOf = (h) => h & 63;

/** The failure the last hot call parked, as an error object (not thrown). */
function pendingError() {
  try {
    throwPending();
  } catch (e) {
    return e;
  }
  return new InternalError('a native call failed without saying why', 'internal_panic');
}

/** Picks without a key (`tried` a bit mask); returns null, or the failure (not thrown). */
function pick(slot, now, tried) {
  io[ROUTER] = slot;
  io[NOW] = now;
  io[TRIED] = tried;
  hotPick();
  const failed = io[STATUS] !== 0;
  if (nWatched !== 0) checkEvents();
  return failed ? pendingError() : null;
}

/** The provider index of the ticket the last pick or pollAction wrote. */
const pickedIndex = () => io[PROVIDER];

/** The timestamp the last pick or record used (its `nowMs`, or the clock reading for CLOCK). */
const usedNow = () => io[USED_NOW];

/**
 * `new Make(handle, provider, generation, probeSeq, degraded, retryAfter, issuedAt, usedNow,
 * ...rest)` for the ticket the last pick or pollAction wrote (`names`: the router's names).
 */
function readTicket(Make, slot, names, attempt, signal) {
  const index = io[PROVIDER];
  const ra = io[TICKET_RA];
  return new Make(
    pack(slot, io[KIND], index),
    names[index],
    io[GEN],
    io[SEQ],
    io[DEGRADED] === 1,
    ra < 0 ? null : ra,
    io[ISSUED],
    io[USED_NOW],
    attempt,
    signal,
  );
}

/**
 * Records an outcome for ticket handle `h`: `latency` -1 measures it natively from `t0` (with
 * `now` CLOCK), `retryAfter` -1 for none. Returns the `Recorded` code; throws a parked failure.
 */
function record(h, generation, probeSeq, outcome, latency, retryAfter, now, t0) {
  io[ROUTER] = slotOf(h);
  io[PROVIDER] = indexOf(h);
  io[KIND] = kindOf(h);
  io[GEN] = generation;
  io[SEQ] = probeSeq;
  io[OUTCOME] = outcome;
  io[LATENCY] = latency;
  io[RA] = retryAfter;
  io[NOW] = now;
  io[T0] = t0;
  hotRecord();
  const r = io[STATUS];
  if (nWatched !== 0) checkEvents();
  if (r < 0) throwPending();
  return r;
}

// The request engine's fast path (src/hot_request.rs): requests kept natively, every step
// exchanged as numbers through the shared buffer. A `pollNow` of NO_POLL makes the call poll not.

/** `pollNow` of a call that should not poll (the caller polls later, at its own time). */
const NO_POLL = -2;
/** Step codes (`step()`). */
const STEP_ATTEMPT = STEP_NAMES.indexOf('attempt');
const STEP_WAIT = STEP_NAMES.indexOf('wait');
const STEP_DONE = STEP_NAMES.indexOf('done');
/** Finish codes (`finishCode()`). */
const FINISH_SUCCESS = FINISH_NAMES.indexOf('success');
const FINISH_CALLER_ERROR = FINISH_NAMES.indexOf('caller_error');
const FINISH_GAVE_UP = FINISH_NAMES.indexOf('gave_up');
/** The ticket kind code of a probe. */
const PROBE = TICKET_KINDS.indexOf('probe');

/**
 * Starts a request on the router in `slot` at `now` (CLOCK: the native clock) and, unless
 * `pollNow` is NO_POLL, polls it: the step is then in the buffer. `o`: null or the options
 * (`max_attempts`, `deadline_ms`, `max_wait_ms`, `key`, each null for the policy's). Returns the
 * request's handle; throws a parked failure. `live()` says whether it is still live.
 */
function begin(slot, now, pollNow, o) {
  if (o !== null && o.key !== null) requestKey(o.key);
  else io[KEY_HI] = -1;
  io[ROUTER] = slot;
  io[NOW] = now;
  io[POLL_NOW] = pollNow;
  io[MAX_ATTEMPTS] = o === null || o.max_attempts === null ? -1 : o.max_attempts;
  io[REQUEST_DEADLINE] = o === null || o.deadline_ms === null ? -1 : o.deadline_ms;
  io[MAX_WAIT] = o === null || o.max_wait_ms === null ? -1 : o.max_wait_ms;
  hotBegin();
  if (nWatched !== 0) checkEvents();
  if (io[STATUS] !== 0) throwPending();
  return io[REQUEST];
}

/** Polls request `h` at `now`: the step is in the buffer. Throws a parked failure. */
function poll(h, now) {
  io[REQUEST] = h;
  io[NOW] = now;
  hotPoll();
  if (nWatched !== 0) checkEvents();
  if (io[STATUS] !== 0) throwPending();
}

/**
 * Reports the attempt's outcome (a code) and `retryAfter` (-1 for none) at `now`, then polls at
 * `pollNow` unless NO_POLL or the request finished. `reportLatency()` is the latency of the
 * request's last report (0 if none). Throws a parked failure.
 */
function outcome(h, code, retryAfter, now, pollNow) {
  io[REQUEST] = h;
  io[OUTCOME] = code;
  io[RA] = retryAfter;
  io[NOW] = now;
  io[POLL_NOW] = pollNow;
  hotOutcome();
  if (nWatched !== 0) checkEvents();
  if (io[STATUS] !== 0) throwPending();
}

/** The caller cancelled request `h` at `now`. Throws a parked failure. */
function cancel(h, now) {
  io[REQUEST] = h;
  io[NOW] = now;
  hotCancel();
  if (nWatched !== 0) checkEvents();
  if (io[STATUS] !== 0) throwPending();
}

/** Forgets request `h` (a no-op once it finished). */
function free(h) {
  io[REQUEST] = h;
  hotFree();
}

/** Whether the request of the last call is still live (a finished one is freed natively). */
const live = () => io[LIVE] === 1;
/** The step's code (STEP_ATTEMPT, STEP_WAIT, STEP_DONE, or in flight). */
const step = () => io[STEP];
/** The attempt's (or the wait's, or the success's) provider index. */
const stepProvider = () => io[PROVIDER];
const stepNumber = () => io[NUMBER];
const stepTimeout = () => io[TIMEOUT];
const stepProbe = () => io[KIND] === PROBE;
/** The wait's `until_ms`. */
const stepUntil = () => io[DEADLINE];
const finishCode = () => io[FINISH];
const finishName = () => FINISH_NAMES[io[FINISH]];
/** The give-up's reason name and `retry_after_ms`. */
const giveUpReason = () => GIVE_UP_NAMES[io[REASON]];
const giveUpHint = () => io[HINT];
const reportLatency = () => (io[RECORDED_AT] === -1 ? 0 : io[REPORT_LATENCY]);

const TIME_ORIGIN = performance.timeOrigin;
/**
 * After `begin` on the native clock (CLOCK): the clock reading it used, as `performance.now()`
 * would have read it then (µs resolution; the native clock is calibrated on it above), so the
 * caller times the first attempt's deadline with no clock reading of its own.
 */
const beganAt = () => io[CLOCK_AT] - TIME_ORIGIN;

/**
 * The step in the buffer as `NativeRequest.poll` gives it (for messages and tests; `names` by
 * index). The attempt's ticket also left DEGRADED and TICKET_RETRY_AFTER in the buffer.
 */
function stepObject(names) {
  const opt = (x) => (x === -1 ? null : x);
  switch (STEP_NAMES[io[STEP]]) {
    case 'attempt':
      return {
        attempt: {
          provider: names[io[PROVIDER]],
          kind: TICKET_KINDS[io[KIND]],
          number: io[NUMBER],
          deadline_ms: io[DEADLINE],
          timeout_ms: io[TIMEOUT],
          idle_ms: opt(io[IDLE]),
          last: io[LAST] === 1,
        },
      };
    case 'in_flight':
      return { in_flight: { deadline_ms: io[DEADLINE] } };
    case 'wait':
      return { wait: { until_ms: io[DEADLINE], provider: names[io[PROVIDER]] } };
    default: {
      const d = { finish: FINISH_NAMES[io[FINISH]] };
      if (io[PROVIDER] !== -1) d.provider = names[io[PROVIDER]];
      if (io[REASON] !== -1) {
        d.reason = GIVE_UP_NAMES[io[REASON]];
        d.last = io[LAST_OUTCOME] === -1 ? null : OUTCOME_KINDS[io[LAST_OUTCOME]];
        d.retry_after_ms = io[HINT];
      }
      return { done: d };
    }
  }
}

/** Milliseconds from `t0` to `t1` as a latency the core takes (0..MAX_LATENCY). */
const elapsed = (t0, t1) => Math.max(0, Math.min(MAX_LATENCY, t1 - t0));

module.exports = {
  reported,
  readReport,
  reportCodes,
  watch,
  checkEvents,
  eventsTotal,
  OUTCOME_KINDS,
  TICKET_KINDS,
  RECORDED,
  OUTCOME_CODE,
  MAX_LATENCY,
  CLOCK,
  slotOf,
  kindOf,
  indexOf,
  pick,
  pickedIndex,
  usedNow,
  readTicket,
  record,
  elapsed,
  NO_POLL,
  STEP_ATTEMPT,
  STEP_WAIT,
  STEP_DONE,
  FINISH_SUCCESS,
  FINISH_CALLER_ERROR,
  FINISH_GAVE_UP,
  begin,
  poll,
  outcome,
  cancel,
  free,
  live,
  step,
  stepProvider,
  stepNumber,
  stepTimeout,
  stepProbe,
  stepUntil,
  finishCode,
  finishName,
  giveUpReason,
  giveUpHint,
  reportLatency,
  beganAt,
  stepObject,
};
