'use strict';
// The fast path's protocol with the native module (see src/hot.rs): the names behind its codes,
// the default clock, the shared Float64Array through which `hotPick` / `hotRecord` take their
// inputs and give their results, and the packed ticket handle.

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
} = native.ioLayout();

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
  return io[STATUS] === 0 ? null : pendingError();
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
  if (r < 0) throwPending();
  return r;
}

/** Milliseconds from `t0` to `t1` as a latency the core takes (0..MAX_LATENCY). */
const elapsed = (t0, t1) => Math.max(0, Math.min(MAX_LATENCY, t1 - t0));

module.exports = {
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
};
