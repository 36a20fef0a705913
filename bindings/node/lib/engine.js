'use strict';
// The internal side of a Router, shared by router.js, call.js and health.js: the native router,
// its slot in the shared buffer, the provider names, and the router's clock.

const native = require('../native.js');
const { CLOCK, pick, readTicket } = require('./io.js');
const { checkTime } = require('./errors.js');

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
  }

  /** A validated `nowMs`, or the router's clock (CLOCK: the native clock) when omitted. */
  now(nowMs) {
    if (nowMs === undefined || nowMs === null) {
      return this.clock === undefined ? CLOCK : checkTime(this.clock(), 'nowMs');
    }
    return checkTime(nowMs, 'nowMs');
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
