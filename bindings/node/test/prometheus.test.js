'use strict';
// examples/prometheus.js (OpenTelemetry's Prometheus exporter) on a free 127.0.0.1 port, scraped
// over HTTP, then stopped: the names docs/otel.md gives for Prometheus are what it serves.

const test = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const path = require('node:path');
const { Router } = require('failover-core');

// The example sits next to this folder (test.sh copies both).
const { serve, traffic } = require(path.join(__dirname, '..', 'examples', 'prometheus.js'));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

test('the Prometheus example serves the metrics over HTTP', async () => {
  const router = new Router(['openai', 'anthropic'], { consecutive_failures: 1 });
  const { url, stop } = await serve(router, { port: await freePort() });
  let text;
  try {
    assert.equal(await traffic(router), 'answered by anthropic');
    const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
    assert.equal(res.status, 200);
    text = await res.text();
  } finally {
    await stop();
  }
  const lines = text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
  const has = (prefix, ...parts) => lines.some((l) => l.startsWith(prefix) && parts.every((p) => l.includes(p)));
  assert.ok(has('failover_attempts_total{', 'gen_ai_provider_name="openai"', 'failover_outcome="server_error"'), text);
  assert.ok(has('failover_attempts_total{', 'gen_ai_provider_name="anthropic"', 'failover_outcome="success"'), text);
  assert.ok(has('failover_circuit_state{', 'gen_ai_provider_name="openai"', 'failover_state="open"'), text);
  // (The JS exporter appends no unit to the name, unlike Python's: not `_seconds_bucket`.)
  assert.ok(has('failover_attempt_duration_bucket{', 'gen_ai_provider_name="anthropic"', 'le="+Inf"'), text);
  assert.ok(has('failover_fallbacks_total{', 'gen_ai_provider_name="anthropic"'), text);
  // Stopped: the port no longer answers.
  await assert.rejects(fetch(url, { signal: AbortSignal.timeout(5_000) }));
});
