'use strict';
// failover-core/otel with the SDK's in-memory readers, checked against the golden list of names
// and attributes shared with Python (fixtures/otel/names.json, documented in docs/otel.md); and
// no @opentelemetry import when it is not used.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { MeterProvider, MetricReader, DataPointType, AggregationTemporality } = require('@opentelemetry/sdk-metrics');
const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { SpanKind, SpanStatusCode } = require('@opentelemetry/api');
const { Router } = require('failover-core');
const { instrument } = require('failover-core/otel');

// The repository's fixtures (test.sh runs this suite outside the repository and says where).
const FIXTURES = process.env.FAILOVER_SCENARIO_DIR
  ? path.dirname(process.env.FAILOVER_SCENARIO_DIR)
  : path.join(__dirname, '..', '..', '..', 'fixtures');
const GOLDEN = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'otel', 'names.json'), 'utf8'));
const METRICS = new Map(GOLDEN.metrics.map((m) => [m.name, m]));

class Reader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  onForceFlush() {
    return Promise.resolve();
  }
  onShutdown() {
    return Promise.resolve();
  }
}

const KIND = {
  counter: DataPointType.SUM,
  observable_counter: DataPointType.SUM,
  histogram: DataPointType.HISTOGRAM,
  observable_gauge: DataPointType.GAUGE,
};

const tok = (t) => ({ choices: [{ delta: { content: t }, finish_reason: null }] });
const stop = () => ({ choices: [{ delta: {}, finish_reason: 'stop' }] });

function setup() {
  const reader = new Reader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const router = new Router(['openai', 'anthropic'], { consecutive_failures: 1 });
  const handle = instrument(router, { meterProvider, tracerProvider, models: { openai: 'gpt-4o' } });
  return { router, handle, reader, exporter };
}

/** A failover (openai 503, then anthropic answers: opens openai), then a stream. */
async function drive(router) {
  const v = await router.call(async (a) => {
    if (a.provider === 'openai') throw Object.assign(new Error('HTTP 503'), { status: 503 });
    return 'ok';
  });
  assert.equal(v, 'ok');
  const got = [];
  for await (const c of router.stream(async function* () {
    yield tok('Hel');
    yield tok('lo');
    yield stop();
  })) got.push(c);
  assert.equal(got.length, 3);
  // Events are emitted in a microtask.
  await new Promise((r) => setImmediate(r));
}

async function metrics(reader) {
  const { resourceMetrics, errors } = await reader.collect();
  assert.deepEqual(errors, []);
  const out = new Map();
  for (const sm of resourceMetrics.scopeMetrics) {
    assert.equal(sm.scope.name, GOLDEN.meter);
    for (const m of sm.metrics) out.set(m.descriptor.name, m);
  }
  return out;
}

test('metrics match the golden list', async () => {
  const { router, handle, reader } = setup();
  await drive(router);
  const got = await metrics(reader);
  assert.deepEqual([...got.keys()].sort(), [...METRICS.keys()].sort(), 'every golden metric is produced, and no other');
  for (const [name, m] of got) {
    const g = METRICS.get(name);
    assert.equal(m.descriptor.unit, g.unit, name);
    assert.equal(m.dataPointType, KIND[g.instrument], name);
    if (g.instrument.endsWith('counter')) assert.equal(m.isMonotonic, true, name);
    assert.ok(m.dataPoints.length > 0, name);
    for (const p of m.dataPoints) {
      // The core's boundaries, not the SDK's millisecond defaults.
      if (g.boundaries) assert.deepEqual(p.value.buckets.boundaries, g.boundaries, name);
      const keys = Object.keys(p.attributes);
      for (const k of keys) assert.ok(g.attributes.includes(k), `${name}: ${k}`);
      for (const k of g.always) assert.ok(keys.includes(k), `${name}: ${k} missing`);
    }
  }
  const pts = (name) => got.get(name).dataPoints;
  const attempts = Object.fromEntries(pts('failover.attempts').map((p) => [`${p.attributes['gen_ai.provider.name']} ${p.attributes['failover.outcome']}`, p.value]));
  assert.deepEqual(attempts, { 'openai server_error': 1, 'anthropic success': 2 });
  assert.deepEqual(pts('failover.fallbacks').map((p) => [p.attributes['gen_ai.provider.name'], p.value]), [['anthropic', 1]]);
  assert.equal(pts('failover.attempt.duration').reduce((s, p) => s + p.value.count, 0), 3);
  assert.equal(pts('failover.time_to_first_token').reduce((s, p) => s + p.value.count, 0), 1);
  const opened = pts('failover.transitions').filter((p) => p.attributes['failover.event'] === 'opened');
  assert.deepEqual(opened.map((p) => [p.attributes['gen_ai.provider.name'], p.attributes['failover.trigger'], p.value]), [['openai', 'consecutive_failures', 1]]);
  const states = Object.fromEntries(pts('failover.circuit.state').map((p) => [p.attributes['gen_ai.provider.name'], p.attributes['failover.state']]));
  assert.deepEqual(states, { openai: 'open', anthropic: 'healthy' });
  const shares = Object.fromEntries(pts('failover.share').map((p) => [p.attributes['gen_ai.provider.name'], p.value]));
  assert.deepEqual(shares, { openai: 0, anthropic: 1 });
  handle.uninstrument();
});

test('one span per attempt with the golden attributes', async () => {
  const { router, handle, exporter } = setup();
  await drive(router);
  const spans = exporter.getFinishedSpans();
  assert.equal(spans.length, 3);
  for (const s of spans) {
    const keys = Object.keys(s.attributes);
    for (const k of keys) assert.ok(GOLDEN.span.attributes.includes(k), k);
    for (const k of GOLDEN.span.always) assert.ok(keys.includes(k), `${k} missing`);
    assert.equal(s.kind, SpanKind.CLIENT);
    assert.equal((s.instrumentationScope ?? s.instrumentationLibrary).name, GOLDEN.tracer);
  }
  const [first, second, streamed] = spans;
  assert.equal(first.name, 'chat gpt-4o');
  assert.equal(first.attributes['gen_ai.provider.name'], 'openai');
  assert.equal(first.attributes['gen_ai.request.model'], 'gpt-4o');
  assert.equal(first.attributes['error.type'], 'server_error');
  assert.equal(first.attributes['failover.attempt'], 1);
  assert.equal(first.attributes['failover.ticket_kind'], 'request');
  assert.equal(first.attributes['failover.result'], 'accepted');
  assert.equal(first.status.code, SpanStatusCode.ERROR);
  assert.equal(second.name, 'chat');
  assert.deepEqual(
    [second.attributes['gen_ai.provider.name'], second.attributes['failover.attempt'], second.attributes['failover.outcome']],
    ['anthropic', 2, 'success'],
  );
  assert.ok(!('error.type' in second.attributes) && !('gen_ai.request.model' in second.attributes));
  assert.ok('failover.time_to_first_token_ms' in streamed.attributes);
  // Why the providers ahead were passed over, from the core: none for a first choice; openai
  // tried by this request, then (the stream's attempt) open.
  assert.ok(!('failover.excluded' in first.attributes));
  assert.deepEqual(second.attributes['failover.excluded'], ['openai=tried']);
  assert.deepEqual(streamed.attributes['failover.excluded'], ['openai=open']);
  handle.uninstrument();
});

test('uninstrument stops recording', async () => {
  const { router, handle, reader, exporter } = setup();
  handle.uninstrument();
  await router.call(async () => 1);
  assert.equal(exporter.getFinishedSpans().length, 0);
  const got = await metrics(reader);
  assert.ok(!got.has('failover.attempts') || got.get('failover.attempts').dataPoints.length === 0);
});

test('require("failover-core") loads no @opentelemetry module', () => {
  const code = [
    "const { Router } = require('failover-core');",
    "const r = new Router(['a', 'b']); r.on('event', () => {});",
    "r.call(async () => 1).then(() => console.log(JSON.stringify(Object.keys(require.cache).filter((k) => k.includes('@opentelemetry')))));",
  ].join('\n');
  const out = execFileSync(process.execPath, ['-e', code], { cwd: path.join(__dirname, '..'), encoding: 'utf8' });
  assert.equal(out.trim(), '[]');
});
