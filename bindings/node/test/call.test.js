'use strict';
// Classification helpers, router.call and the health-check loop.

const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const net = require('node:net');
const fc = require('failover-core');

const { Router, AllProvidersFailedError, HttpStatusError, classify, classifyError, classifyResponse, classifyHttp } = fc;

/** An error shaped like the openai / anthropic SDKs' APIError (no dependency on them). */
class APIError extends Error {
  constructor(status, headers) {
    super(`${status} status code`);
    this.status = status;
    this.headers = headers;
  }
}
class APIConnectionError extends Error {}
class APIConnectionTimeoutError extends APIConnectionError {}
class APIUserAbortError extends Error {}

test('classifyStatus and parseRetryAfter are the core functions', () => {
  const cases = { 200: 'success', 302: 'success', 400: 'client_error', 401: 'credentials_rejected', 403: 'credentials_rejected', 404: 'refused', 413: 'refused', 422: 'client_error', 408: 'timeout', 429: 'rate_limited', 499: 'cancelled', 500: 'server_error', 504: 'timeout', 529: 'server_error', 100: 'server_error', 0: 'server_error', 600: 'server_error' };
  for (const [status, kind] of Object.entries(cases)) assert.equal(fc.classifyStatus(Number(status)), kind, status);
  assert.throws(() => fc.classifyStatus(1.5), RangeError);
  assert.throws(() => fc.classifyStatus('500'), TypeError);
  assert.equal(fc.parseRetryAfter('120'), 120_000);
  assert.equal(fc.parseRetryAfter('1.5'), 1_500);
  assert.equal(fc.parseRetryAfter('soon'), null);
  assert.equal(fc.parseRetryAfter('Sun, 06 Nov 1994 08:49:37 GMT'), null);
  assert.equal(fc.parseRetryAfter('Sun, 06 Nov 1994 08:49:37 GMT', 784111767000), 10_000);
  assert.throws(() => fc.parseRetryAfter('1', -5), { name: 'RangeError', message: /nowUnixMs/ });
  assert.throws(() => fc.parseRetryAfter(5), TypeError);
  assert.deepEqual(classifyHttp(503, '5'), { outcome: 'server_error', retry_after_ms: 5000 });
  assert.deepEqual(classifyHttp(200), { outcome: 'success', retry_after_ms: null });
});

test('fetch Responses: status, Retry-After in seconds or as an HTTP-date, retry-after-ms', () => {
  assert.deepEqual(classifyResponse(new Response('ok')), { outcome: 'success', retry_after_ms: null });
  assert.deepEqual(classifyResponse(new Response(null, { status: 429, headers: { 'Retry-After': '2' } })), { outcome: 'rate_limited', retry_after_ms: 2000 });
  const date = new Date(Math.ceil(Date.now() / 1000) * 1000 + 10_000).toUTCString();
  const ms = classifyResponse(new Response(null, { status: 503, headers: { 'retry-after': date } })).retry_after_ms;
  assert.ok(ms > 8_000 && ms <= 11_000, String(ms));
  const fixed = new Response(null, { status: 429, headers: { 'retry-after': 'Sun, 06 Nov 1994 08:49:37 GMT' } });
  assert.deepEqual(classifyResponse(fixed, 784111767000), { outcome: 'rate_limited', retry_after_ms: 10_000 });
  assert.deepEqual(classifyResponse(new Response(null, { status: 429, headers: { 'retry-after-ms': '1500.2', 'retry-after': '9' } })), { outcome: 'rate_limited', retry_after_ms: 1501 });
  assert.deepEqual(classifyResponse({ status: 504, headers: { 'Retry-After': ['3'] } }), { outcome: 'timeout', retry_after_ms: 3000 });
  assert.deepEqual(classify(new Response(null, { status: 404 })), { outcome: 'refused', retry_after_ms: null });
  assert.deepEqual(classify(new Response(null, { status: 400 })), { outcome: 'client_error', retry_after_ms: null });
  assert.throws(() => classifyResponse({}), TypeError);
});

test('errors of common clients, by duck typing', () => {
  const h = new Headers({ 'retry-after': '7' });
  assert.deepEqual(classifyError(new APIError(429, h)), { outcome: 'rate_limited', retry_after_ms: 7000 });
  assert.deepEqual(classifyError(new APIError(429, { 'retry-after-ms': '250' })), { outcome: 'rate_limited', retry_after_ms: 250 });
  assert.equal(classifyError(new APIError(400, {})).outcome, 'client_error');
  assert.equal(classifyError(new APIError(401)).outcome, 'credentials_rejected');
  assert.equal(classifyError(new APIError(529, {})).outcome, 'server_error');
  assert.equal(classifyError(Object.assign(new Error('axios'), { response: { status: 503, headers: { 'retry-after': '1' } } })).retry_after_ms, 1000);
  assert.equal(classifyError(new APIConnectionTimeoutError('Request timed out.')).outcome, 'timeout');
  assert.equal(classifyError(new APIConnectionError('Connection error.')).outcome, 'connection_error');
  assert.equal(classifyError(new APIUserAbortError('Request was aborted.')).outcome, 'cancelled');
  assert.equal(classifyError(new DOMException('x', 'TimeoutError')).outcome, 'timeout');
  assert.equal(classifyError(new DOMException('x', 'AbortError')).outcome, 'cancelled');
  assert.equal(classifyError(Object.assign(new Error('x'), { name: 'AbortError', cause: new DOMException('t', 'TimeoutError') })).outcome, 'timeout');
  assert.equal(classifyError(Object.assign(new Error('x'), { code: 'ETIMEDOUT' })).outcome, 'timeout');
  assert.equal(classifyError(Object.assign(new Error('x'), { code: 'ECONNRESET' })).outcome, 'connection_error');
  assert.equal(classifyError(new TypeError('fetch failed', { cause: Object.assign(new Error('c'), { code: 'ECONNREFUSED' }) })).outcome, 'connection_error');
  assert.equal(classifyError(new Error('something else')).outcome, 'server_error');
  for (const weird of [null, undefined, 5, 'str', Symbol('s'), {}, [], Object.create(null)]) {
    assert.equal(classifyError(weird).outcome, 'server_error');
  }
  const loop = new Error('loop');
  loop.cause = loop;
  assert.equal(classifyError(loop).outcome, 'server_error');
});

async function listen(handler) {
  const server = http.createServer(handler);
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${server.address().port}/` };
}

test('real fetch failures on loopback: refused, reset, timed out, aborted', async (t) => {
  // A port nothing listens on: take a free one and close it.
  const probe = net.createServer();
  await new Promise((r) => probe.listen(0, '127.0.0.1', r));
  const closedPort = probe.address().port;
  await new Promise((r) => probe.close(r));
  const refused = await fetch(`http://127.0.0.1:${closedPort}/`).catch((e) => e);
  assert.equal(classifyError(refused).outcome, 'connection_error', String(refused.cause?.code));

  const { server, url } = await listen((req, res) => {
    if (req.url === '/reset') req.socket.destroy();
    else if (req.url === '/hang') setTimeout(() => res.end('late'), 2_000).unref();
    else res.end('ok');
  });
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const reset = await fetch(`${url}reset`).catch((e) => e);
  assert.equal(classifyError(reset).outcome, 'connection_error', String(reset.cause?.code));
  const timedOut = await fetch(`${url}hang`, { signal: AbortSignal.timeout(50) }).catch((e) => e);
  assert.equal(classifyError(timedOut).outcome, 'timeout', timedOut.name);
  const ac = new AbortController();
  const aborted = fetch(`${url}hang`, { signal: ac.signal }).catch((e) => e);
  setTimeout(() => ac.abort(), 10);
  assert.equal(classifyError(await aborted).outcome, 'cancelled');
});

/** A router with a controllable clock. */
function fixture(policy, providers = ['primary', 'secondary']) {
  const clock = { now: 1_000 };
  const router = new Router(providers, { open_jitter: 0, ...policy }, { clock: () => clock.now });
  return { router, clock };
}

// router.call: test/call-driver.test.js.

test('health-check loop: checks a benched provider until it ramps, then stops', async () => {
  const router = new Router(['primary', 'secondary'], {
    consecutive_failures: 1,
    open_jitter: 0,
    open_base_ms: 30,
    probe_mode: 'health_checks',
    probe_successes: 2,
    ramp: [{ share: 0.5, dwell_ms: 60_000 }, { share: 1, dwell_ms: 0 }],
  });
  router.record(router.pick(), 'server_error');
  assert.equal(router.view('primary').state, 'open');
  assert.deepEqual(router.drainEvents().map((e) => e.kind), ['opened']);
  const checked = [];
  const events = [];
  let resolveRamp;
  const ramped = new Promise((r) => (resolveRamp = r));
  const loop = router.startHealthChecks(
    async (provider, { ticket, signal }) => {
      checked.push([provider, ticket.kind, signal.aborted]);
      return new Response('pong');
    },
    {
      maxSleepMs: 20,
      onEvent: (e) => {
        events.push(e.kind);
        if (e.kind === 'ramp_stage') resolveRamp();
      },
    },
  );
  assert.equal(loop.running, true);
  await Promise.race([ramped, new Promise((_, rej) => setTimeout(() => rej(new Error(`no ramp; events ${events}`)), 3_000))]);
  await loop.stop();
  assert.equal(loop.running, false);
  assert.deepEqual(checked, [['primary', 'health_check', false], ['primary', 'health_check', false]]);
  assert.deepEqual(events.slice(0, 2), ['probing', 'ramp_stage']);
  assert.equal(router.view('primary').state, 'ramping');
  const n = checked.length;
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(checked.length, n);
});

test('health-check loop: failing checks are classified and recorded; stop aborts checks in flight', async () => {
  const router = new Router(['a'], { consecutive_failures: 1, open_jitter: 0, open_base_ms: 20, probe_mode: 'health_checks' });
  router.record(router.pick(), 'server_error');
  let signal;
  const errors = [];
  let first = true;
  const loop = router.startHealthChecks(
    async (p, ctx) => {
      if (first) {
        first = false;
        throw new APIError(500, {});
      }
      signal = ctx.signal;
      await new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));
    },
    { maxSleepMs: 10, onError: (e) => errors.push(e) },
  );
  for (let i = 0; i < 200 && signal === undefined; i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(signal, 'a second check started after the first failed');
  assert.equal(router.view('a').trips, 2); // the failed check reopened the circuit
  const stopping = loop.stop();
  assert.equal(signal.aborted, true);
  await Promise.race([stopping, new Promise((_, rej) => setTimeout(() => rej(new Error('stop hung')), 1_000))]);
  // The aborted check is recorded as cancelled, which frees its probe permit.
  assert.equal(router.view('a').probes_in_flight, 0);
  assert.equal(router.view('a').trips, 2);
  assert.deepEqual(errors, []);
  assert.throws(() => router.startHealthChecks(5), TypeError);
  assert.throws(() => router.startHealthChecks(async () => {}, { maxSleepMs: 0 }), RangeError);
});

test('call paces a provider from the rate-limit headers of every answer, success or failure', async () => {
  const r = new Router(['a', 'b']);
  const limits = (remaining) => ({
    'x-ratelimit-limit-requests': '100',
    'x-ratelimit-remaining-requests': String(remaining),
    'x-ratelimit-reset-requests': '30s',
    'content-type': 'application/json',
  });
  // A plain result carrying headers (an SDK's raw response, `{ data, response }`): quota gone.
  const out = await r.call(async () => ({ data: 1, response: { headers: new Headers(limits(0)) } }));
  assert.equal(out.data, 1);
  const paced = r.drainEvents().filter((e) => e.kind === 'paced');
  assert.deepEqual(paced.map((e) => [e.provider, e.headroom, e.share]), [['a', 0, 0]]);
  assert.equal(r.view('a').paced_headroom, 0);
  assert.equal(await r.call(async (at) => at.provider), 'b');
  // An SDK error's headers count too: "b" answers 503 with 5 of 100 left.
  await assert.rejects(
    r.call(async () => {
      throw new APIError(503, limits(5));
    }, { maxAttempts: 1 }),
    AllProvidersFailedError,
  );
  assert.deepEqual(r.drainEvents().filter((e) => e.kind === 'paced').map((e) => [e.provider, e.headroom]), [['b', 0.05]]);
  // A fresh answer with room ends pacing; answers without headers change nothing.
  assert.equal(r.observeHeadroom('a', [['x-ratelimit-limit-requests', '100'], ['x-ratelimit-remaining-requests', '90']]), 'accepted');
  assert.deepEqual(r.drainEvents().filter((e) => e.kind === 'unpaced').map((e) => [e.provider, e.headroom]), [['a', 0.9]]);
  assert.equal(await r.call(async () => 42), 42);
  assert.equal(r.observeHeadroom('zz', {}), 'unknown_provider');
});
