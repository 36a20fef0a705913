'use strict';
/**
 * `require('failover-core/otel')`: OpenTelemetry metrics and spans for a Router, through
 * `@opentelemetry/api` (an optional peer dependency: install it, and an SDK, to use this file;
 * `require('failover-core')` never loads it).
 *
 *   const { instrument } = require('failover-core/otel');
 *   const handle = instrument(router, { meterProvider, tracerProvider, models: { openai: 'gpt-4o' } });
 *   handle.uninstrument();
 *
 * The names, units and attributes are those of docs/otel.md (fixtures/otel/names.json), the same
 * as Python's `failover_core.otel`. The facts come from the core: after every attempt a request
 * records (`router.call`, `router.stream`), the driver hands this module the report the core
 * keeps (provider, ticket kind, attempt number, outcome, start, first token and end, engine ms);
 * events come through `router.on('event')`; circuit state and share are read from the views when
 * a metric reader collects. Attempts are counted here and read by observable counters, so the
 * per-attempt cost with `histograms: false, spans: false` is a function call and a Map update.
 */

const api = require('@opentelemetry/api');
const native = require('./native.js');
const { engineOf } = require('./lib/router.js');
const { version } = require('./package.json');

const SCOPE = 'failover-core';
const PROVIDER = 'gen_ai.provider.name';

class Instrumentation {
  #router;
  #engine;
  #active = true;
  #previous;
  #onEvent;
  #attempts = new Map();
  #fallbacks = new Map();
  #attrs = new Map();
  #providerAttrs = new Map();
  #histograms;
  #tracer;
  #models;
  #operation;
  #duration;
  #ttft;

  constructor(router, options) {
    const e = engineOf(router);
    if (e === null) throw new TypeError('instrument(router): router must be a failover-core Router');
    const o = options ?? {};
    this.#router = router;
    this.#engine = e;
    this.#histograms = o.histograms ?? true;
    this.#models = new Map(Object.entries(o.models ?? {}));
    this.#operation = o.operation ?? 'chat';
    const meter = (o.meterProvider ?? api.metrics.getMeterProvider()).getMeter(SCOPE, version);
    const attempts = meter.createObservableCounter('failover.attempts', {
      unit: '{attempt}',
      description: 'Attempts made to providers, by outcome and ticket kind',
    });
    attempts.addCallback((r) => {
      if (!this.#active) return;
      for (const c of this.#attempts.values()) r.observe(c.n, c.attrs);
    });
    const fallbacks = meter.createObservableCounter('failover.fallbacks', {
      unit: '{attempt}',
      description: "Attempts after a request's first (a retry or a move to another provider)",
    });
    fallbacks.addCallback((r) => {
      if (!this.#active) return;
      for (const [p, n] of this.#fallbacks) r.observe(n, this.#of(p));
    });
    this.#duration = meter.createHistogram('failover.attempt.duration', {
      unit: 's',
      description: 'Attempt duration, start to outcome (streams: to the end)',
    });
    this.#ttft = meter.createHistogram('failover.time_to_first_token', {
      unit: 's',
      description: 'Streamed attempts: time to the first content',
    });
    const transitions = meter.createCounter('failover.transitions', {
      unit: '{event}',
      description: 'Circuit events, by kind and trigger',
    });
    const state = meter.createObservableGauge('failover.circuit.state', {
      unit: '1',
      description: "1 for each provider's current state (healthy, open, probing, ramping, isolated)",
    });
    state.addCallback((r) => {
      if (!this.#active) return;
      for (const v of router.views()) r.observe(1, { [PROVIDER]: v.name, 'failover.state': v.state });
    });
    const share = meter.createObservableGauge('failover.share', {
      unit: '1',
      description: 'Share of offered traffic each provider takes now (ramp stage, pacing; 0 when open)',
    });
    share.addCallback((r) => {
      if (!this.#active) return;
      for (const v of router.views()) r.observe(v.share, this.#of(v.name));
    });
    this.#tracer = (o.spans ?? true) ? (o.tracerProvider ?? api.trace.getTracerProvider()).getTracer(SCOPE, version) : null;
    this.#onEvent = (ev) => {
      const attrs = { [PROVIDER]: ev.provider, 'failover.event': ev.kind };
      if (ev.trigger !== undefined && ev.trigger !== null) attrs['failover.trigger'] = ev.trigger;
      transitions.add(1, attrs);
    };
    router.on('event', this.#onEvent);
    this.#previous = e.observer;
    e.observer = this;
  }

  /** One attempt's facts: `[provider, ticketKind, number, outcome, result, startedMs, endedMs, firstTokenMs, retryAfterMs]`. */
  attempt(f) {
    const key = `${f[0]}\u0000${f[3]}\u0000${f[1]}`;
    let c = this.#attempts.get(key);
    if (c === undefined) {
      c = { n: 0, attrs: { [PROVIDER]: f[0], 'failover.outcome': f[3], 'failover.ticket_kind': f[1] } };
      this.#attempts.set(key, c);
    }
    c.n++;
    if (f[2] > 1) this.#fallbacks.set(f[0], (this.#fallbacks.get(f[0]) ?? 0) + 1);
    if (this.#histograms) {
      this.#duration.record((f[6] - f[5]) / 1000, c.attrs);
      if (f[7] !== null) this.#ttft.record((f[7] - f[5]) / 1000, this.#of(f[0]));
    }
    if (this.#tracer !== null) this.#span(f);
  }

  #of(provider) {
    let a = this.#providerAttrs.get(provider);
    if (a === undefined) {
      a = { [PROVIDER]: provider };
      this.#providerAttrs.set(provider, a);
    }
    return a;
  }

  #span(f) {
    const [provider, kind, number, outcome, result, started, ended, first, retryAfter] = f;
    // Engine ms to Unix ms (the native clock is aligned with it; a custom clock is not).
    const offset = Date.now() - native.monotonicNow();
    const model = this.#models.get(provider);
    const attributes = {
      'gen_ai.operation.name': this.#operation,
      [PROVIDER]: provider,
      'failover.attempt': number,
      'failover.ticket_kind': kind,
      'failover.outcome': outcome,
      'failover.result': result,
    };
    if (model !== undefined) attributes['gen_ai.request.model'] = model;
    if (outcome !== 'success') attributes['error.type'] = outcome;
    if (retryAfter !== null) attributes['failover.retry_after_ms'] = retryAfter;
    if (first !== null) attributes['failover.time_to_first_token_ms'] = first - started;
    const name = model === undefined ? this.#operation : `${this.#operation} ${model}`;
    const span = this.#tracer.startSpan(name, { kind: api.SpanKind.CLIENT, attributes, startTime: started + offset });
    if (outcome !== 'success') span.setStatus({ code: api.SpanStatusCode.ERROR, message: outcome });
    span.end(ended + offset);
  }

  /** Stops recording (the router's observer goes back to what it was before). */
  uninstrument() {
    if (!this.#active) return;
    this.#active = false;
    this.#engine.observer = this.#previous;
    this.#router.off('event', this.#onEvent);
  }
}

/**
 * Records `router`'s metrics (and one span per attempt, unless `spans: false`) with the given
 * providers (default: the global ones). `models` maps provider names to the model they are asked
 * for (`gen_ai.request.model`); `operation` is `gen_ai.operation.name` (default `'chat'`);
 * `histograms: false` drops the duration and time-to-first-token histograms.
 */
function instrument(router, options) {
  return new Instrumentation(router, options);
}

module.exports = { instrument, Instrumentation, SCOPE };
