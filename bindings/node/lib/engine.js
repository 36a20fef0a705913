'use strict';
// The internal side of a Router, shared by router.js, call.js and health.js: the native router,
// its slot in the shared buffer, the provider names, and the router's clock.

const native = require('../native.js');
const { CLOCK, pick, readTicket, watch, checkEvents, eventsTotal } = require('./io.js');
const { checkTime } = require('./errors.js');

const { monotonicNow } = native;

class Engine {
  constructor(providers, policy, clock) {
    this.n = new native.NativeRouter(providers, policy);
    this.slot = this.n.slot;
    this.names = Object.freeze(this.n.names());
    /**
     * The names again, in an ordinary (unfrozen) array for the hot lookups by index: V8 loads an
     * element of a frozen array with a double index (the shared buffer holds doubles) through a
     * generic IC.
     */
    this.byIndex = [...this.names];
    this.index = new Map(this.names.map((n, i) => [n, i]));
    /** The default time source (a function returning ms), or undefined for the native clock. */
    this.clock = clock;
    /** Set once a caller passes its own `nowMs`: events then carry no wall-clock time. */
    this.explicit = false;
    /** Listeners by event kind (`'event'`: every event; `'error'`: a listener that threw). */
    this.listeners = new Map();
    /** The core's `queued_total` when new events were last collected. */
    this.seen = 0;
    /** Events collected and not yet emitted (they are emitted in a microtask). */
    this.pending = [];
    this.scheduled = false;
    this.flushBound = () => this.flush();
    /**
     * The attempt observer (`failover-core/otel`), or null (one check per report): after every
     * attempt a request records, `counted()` (it reads the codes with io.js `reportCodes`) and,
     * if its `perAttempt` is true, `attempt(facts)` (io.js `readReport`'s array; streams call
     * `attempt` alone, with `NativeRequest.lastAttempt()`'s facts).
     */
    this.observer = null;
  }

  /** A validated `nowMs`, or the router's clock (CLOCK: the native clock) when omitted. */
  now(nowMs) {
    if (nowMs === undefined || nowMs === null) {
      return this.clock === undefined ? CLOCK : checkTime(this.clock(), 'nowMs');
    }
    this.explicit = true;
    return checkTime(nowMs, 'nowMs');
  }

  /** Adds a listener for `kind`; the first one makes the fast path report this router's events. */
  on(kind, fn) {
    const list = this.listeners.get(kind);
    if (list === undefined) this.listeners.set(kind, [fn]);
    else list.push(fn);
    if (this.listeners.size === 1 && list === undefined) {
      // Only events queued from now on are pushed.
      this.seen = this.n.queuedTotal();
      watch(this.slot, this);
    }
  }

  /** Removes one registration of `fn` for `kind`; the last one stops the reporting. */
  off(kind, fn) {
    const list = this.listeners.get(kind);
    if (list === undefined) return;
    const i = list.lastIndexOf(fn);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.listeners.delete(kind);
    if (this.listeners.size === 0) watch(this.slot, null);
  }

  /** After a native call made outside io.js (a method of the native router or request). */
  after() {
    if (this.listeners.size !== 0) checkEvents();
  }

  /**
   * Collects the events queued since the last collection, right after the native call that
   * queued them (before another call can move the buffer), and schedules their emission.
   */
  collect() {
    const evs = this.n.eventsSince(this.seen);
    this.seen = eventsTotal();
    for (const ev of evs) this.pending.push(ev);
    if (!this.scheduled && this.pending.length !== 0) {
      this.scheduled = true;
      queueMicrotask(this.flushBound);
    }
  }

  /**
   * Catches up with events queued by calls io.js does not see (a stream's `NativeRequest`), by
   * asking the router directly. Cheap when there are none.
   */
  sync() {
    if (this.listeners.size !== 0 && this.n.queuedTotal() !== this.seen) this.collect();
  }

  /** Emits the collected events, oldest first, to the listeners of their kind and of `'event'`. */
  flush() {
    this.scheduled = false;
    const evs = this.pending;
    this.pending = [];
    // On the router's own clock (native, aligned with Unix ms at load), the wall-clock time is
    // the event's time plus the clocks' current difference.
    const offset = this.explicit || this.clock !== undefined ? null : Date.now() - monotonicNow();
    for (const ev of evs) {
      ev.unix_ms = offset === null ? null : Math.round(ev.at_ms + offset);
      this.emit(ev.kind, ev);
      this.emit('event', ev);
    }
  }

  emit(kind, ev) {
    const list = this.listeners.get(kind);
    if (list === undefined) return;
    for (const fn of list.slice()) {
      try {
        fn(ev);
      } catch (err) {
        const onError = this.listeners.get('error');
        if (onError !== undefined && kind !== 'error') for (const h of onError.slice()) h(err, ev);
        else process.emitWarning(err instanceof Error ? err : new Error(String(err)), 'FailoverCoreListenerError');
      }
    }
  }

  /** Picks (through the shared buffer without a key); returns null or the failure, not thrown. */
  tryPick(now, key, tried) {
    if (key === undefined || key === null) return pick(this.slot, now, tried);
    try {
      this.n.pickKeyed(now, key, tried);
      return null;
    } catch (e) {
      return e;
    }
  }

  /** `new Make(…)` (a Ticket or CallContext) of the ticket the last pick or pollAction wrote. */
  ticket(Make, attempt, signal) {
    return readTicket(Make, this.slot, this.byIndex, attempt, signal);
  }
}

module.exports = { Engine };
