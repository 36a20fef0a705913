'use strict';
// Tickets: the decisions `pick` and `pollAction` hand out and `record` takes back.

const { TICKET_KINDS, kindOf } = require('./io.js');

/** The packed handle of a Ticket (see io.js), or -1 for anything else (a forged or copied one). */
let ticketHandle;

/**
 * A decision: which provider to call. Hand it back to `router.record` with the outcome. Fields as
 * in the scenario files (`provider`, `kind`, `degraded`, `retry_after_ms`), plus `issued_at_ms`,
 * `generation` and `probe_seq`.
 */
class Ticket {
  #h;

  /** Built by `readTicket` (io.js) or a CallContext (call.js); not public. */
  constructor(h, provider, generation, probeSeq, degraded, retryAfter, issuedAt) {
    this.provider = provider;
    this.kind = TICKET_KINDS[kindOf(h)];
    this.degraded = degraded;
    this.retry_after_ms = retryAfter;
    this.issued_at_ms = issuedAt;
    this.generation = generation;
    this.probe_seq = probeSeq;
    this.#h = h;
  }

  static {
    ticketHandle = (t) => (typeof t === 'object' && t !== null && #h in t ? t.#h : -1);
  }

  /** Whether the call is a probe or health check of a recovering provider. */
  get isProbe() {
    return this.kind !== 'request';
  }

  [Symbol.for('nodejs.util.inspect.custom')](depth, options, inspect) {
    return `Ticket ${inspect(this.toJSON(), options)}`;
  }

  toJSON() {
    const { provider, kind, degraded, retry_after_ms, issued_at_ms, generation, probe_seq } = this;
    return { provider, kind, degraded, retry_after_ms, issued_at_ms, generation, probe_seq };
  }
}

module.exports = { Ticket, ticketHandle };
