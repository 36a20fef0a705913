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
 * keeps (provider, ticket kind, attempt number, outcome, start, first token and end, engine ms,
 * and why the providers ahead were passed over);
 * events come through `router.on('event')`; circuit state and share are read from the views when
 * a metric reader collects. Attempts are counted here and read by observable counters, so the
 * per-attempt cost with `histograms: false, spans: false` is a function call and a Map update.
 */

const api = require('@opentelemetry/api');
const native = require('./native.js');
const { engineOf } = require('./lib/router.js');
const { reportCodes, OUTCOME_KINDS, TICKET_KINDS, OUTCOME_CODE } = require('./lib/io.js');

const N_OUTCOMES = OUTCOME_KINDS.length;
const N_KINDS = TICKET_KINDS.length;
const KIND_CODE = new Map(TICKET_KINDS.map((k, i) => [k, i]));
/** Scratch for `reportCodes`. */
const codes = new Float64Array(4);
const { version } = require('./package.json');

const SCOPE = 'failover-core';
const PROVIDER = 'gen_ai.provider.name';

class Instrumentation {
  #router;
  #engine;
  #active = true;
  #previous;
  #onEvent;
  /** Attempts by (provider × outcome × ticket kind) code, and fallbacks by provider index. */
  #attempts;
  #fallbacks;
  #names;
  /** Attribute objects by the same index, made on first use. */
  #attrs = [];
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
    this.#names = e.byIndex;
    this.#attempts = new Float64Array(e.byIndex.length * N_OUTCOMES * N_KINDS);
    this.#fallbacks = new Float64Array(e.byIndex.length);
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
      const a = this.#attempts;
      for (let i = 0; i < a.length; i++) if (a[i] !== 0) r.observe(a[i], this.#attrsAt(i));
    });
    const fallbacks = meter.createObservableCounter('failover.fallbacks', {
      unit: '{attempt}',
      description: "Attempts after a request's first (a retry or a move to another provider)",
    });
    fallbacks.addCallback((r) => {
      if (!this.#active) return;
      const f = this.#fallbacks;
      for (let p = 0; p < f.length; p++) if (f[p] !== 0) r.observe(f[p], this.#of(this.#names[p]));
    });
    // The core's boundaries (seconds; the SDK's defaults suit milliseconds). An API before 1.7
    // ignores `advice`.
    const advice = { explicitBucketBoundaries: native.durationBuckets() };
    this.#duration = meter.createHistogram('failover.attempt.duration', {
      unit: 's',
      description: 'Attempt duration, start to outcome (streams: to the end)',
      advice,
    });
    this.#ttft = meter.createHistogram('failover.time_to_first_token', {
      unit: 's',
      description: 'Streamed attempts: time to the first content',
      advice,
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
    /** Whether `attempt(facts)` is wanted after `counted()` (histograms or spans). */
    this.perAttempt = this.#histograms || this.#tracer !== null;
    this.#onEvent = (ev) => {
      const attrs = { [PROVIDER]: ev.provider, 'failover.event': ev.kind };
      if (ev.trigger !== undefined && ev.trigger !== null) attrs['failover.trigger'] = ev.trigger;
      transitions.add(1, attrs);
    };
    router.on('event', this.#onEvent);
    this.#previous = e.observer;
    e.observer = this;
  }

  /** Counts the attempt the latest request call recorded (from the shared buffer's codes). */
  counted() {
    reportCodes(codes);
    this.#attempts[(codes[0] * N_OUTCOMES + codes[1]) * N_KINDS + codes[2]]++;
    if (codes[3] > 1) this.#fallbacks[codes[0]]++;
  }

  /**
   * One attempt's facts: `[provider, ticketKind, number, outcome, result, startedMs, endedMs,
   * firstTokenMs, retryAfterMs, excluded]` (`excluded`: the core's `"<provider>=<reason>"`
   * entries, `failover.excluded`); `counted` says whether `counted()` already counted it.
   */
  attempt(f, counted = true) {
    const p = this.#names.indexOf(f[0]);
    const i = (p * N_OUTCOMES + OUTCOME_CODE.get(f[3])) * N_KINDS + KIND_CODE.get(f[1]);
    if (!counted) {
      this.#attempts[i]++;
      if (f[2] > 1) this.#fallbacks[p]++;
    }
    if (this.#histograms) {
      this.#duration.record((f[6] - f[5]) / 1000, this.#attrsAt(i));
      if (f[7] !== null) this.#ttft.record((f[7] - f[5]) / 1000, this.#of(f[0]));
    }
    if (this.#tracer !== null) this.#span(f);
  }

  #attrsAt(i) {
    let a = this.#attrs[i];
    if (a === undefined) {
      a = {
        [PROVIDER]: this.#names[Math.floor(i / (N_OUTCOMES * N_KINDS))],
        'failover.outcome': OUTCOME_KINDS[Math.floor(i / N_KINDS) % N_OUTCOMES],
        'failover.ticket_kind': TICKET_KINDS[i % N_KINDS],
      };
      this.#attrs[i] = a;
    }
    return a;
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
    const [provider, kind, number, outcome, result, started, ended, first, retryAfter, excluded] = f;
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
    if (excluded !== undefined && excluded.length > 0) attributes['failover.excluded'] = [...excluded];
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
