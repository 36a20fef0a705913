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

test('call: success on the primary records a success with the measured latency', async () => {
  const { router, clock } = fixture();
  const seen = [];
  const out = await router.call(async (provider, ctx) => {
    seen.push([provider, ctx.attempt, ctx.ticket.kind]);
    clock.now += 850;
    return `answer from ${provider}`;
  });
  assert.equal(out, 'answer from primary');
  assert.deepEqual(seen, [['primary', 0, 'request']]);
  const v = router.view('primary');
  assert.equal(v.window.successes, 1);
  assert.equal(v.latency_ms !== null, true);
  assert.equal(router.now, 1_850);
});

test('call: a server error fails over to the next provider', async () => {
  const { router } = fixture();
  const seen = [];
  const out = await router.call(async (provider) => {
    seen.push(provider);
    if (provider === 'primary') throw new APIError(503, {});
    return 'ok';
  });
  assert.equal(out, 'ok');
  assert.deepEqual(seen, ['primary', 'secondary']);
  assert.equal(router.view('primary').window.failures, 1);
  assert.equal(router.view('secondary').window.successes, 1);
});

test('call: a client error is re-thrown at once, without failover', async () => {
  const { router } = fixture();
  const seen = [];
  const err = new APIError(400, {});
  await assert.rejects(
    router.call(async (provider) => {
      seen.push(provider);
      throw err;
    }),
    (e) => e === err,
  );
  assert.deepEqual(seen, ['primary']);
  assert.equal(router.view('primary').window.client_errors, 1);
});

test('call: a cancellation is re-thrown at once and releases nothing else', async () => {
  const { router } = fixture();
  const abort = new DOMException('stop', 'AbortError');
  await assert.rejects(router.call(async () => { throw abort; }), (e) => e === abort);
});

test('call: when every attempt fails, one AllProvidersFailedError with every cause and the hint', async () => {
  const { router } = fixture({ consecutive_failures: 1 });
  const errs = { primary: new APIError(500, {}), secondary: Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }) };
  const e = await router.call(async (p) => { throw errs[p]; }).catch((x) => x);
  assert.ok(e instanceof AllProvidersFailedError);
  assert.ok(e instanceof AggregateError);
  assert.equal(e.code, 'all_providers_failed');
  assert.deepEqual(e.errors, [errs.primary, errs.secondary]);
  assert.deepEqual(e.attempts.map((a) => [a.provider, a.outcome]), [['primary', 'server_error'], ['secondary', 'connection_error']]);
  // Both opened for open_base_ms = 30 s: the soonest is back in 30 s.
  assert.equal(e.retry_after_ms, 30_000);
  assert.match(e.message, /retry after 30000 ms/);
});

test('call: the attempt budget is respected', async () => {
  const { router } = fixture({}, ['a', 'b', 'c']);
  let calls = 0;
  const e = await router.call(async () => { calls++; throw new APIError(502, {}); }, { maxAttempts: 2 }).catch((x) => x);
  assert.equal(calls, 2);
  assert.equal(e.errors.length, 2);
  assert.equal(e.retry_after_ms, 0); // `c` could take the request now
  await assert.rejects(router.call(async () => 1, { maxAttempts: 0 }), RangeError);
  await assert.rejects(router.call('nope'), TypeError);
});

test('call: a rate limit throttles the provider and carries its Retry-After', async () => {
  const { router } = fixture({}, ['only']);
  const e = await router.call(async () => { throw new APIError(429, { 'retry-after': '20' }); }).catch((x) => x);
  assert.ok(e instanceof AllProvidersFailedError);
  assert.equal(e.attempts[0].retry_after_ms, 20_000);
  assert.equal(e.retry_after_ms, 20_000);
  assert.equal(router.view('only').throttled_until_ms, 21_000);
});

test('call: nothing available (when_all_down = fail) throws at once with the hint and no attempts', async () => {
  const { router } = fixture({ consecutive_failures: 1, when_all_down: 'fail' }, ['only']);
  router.record(router.pick(), 'server_error');
  let called = false;
  const e = await router.call(async () => { called = true; }).catch((x) => x);
  assert.equal(called, false);
  assert.ok(e instanceof AllProvidersFailedError);
  assert.equal(e.attempts.length, 0);
  assert.ok(e.errors[0] instanceof fc.UnavailableError);
  assert.equal(e.retry_after_ms, 30_000);
});

test('call: returned Responses are classified; failing statuses fail over', async () => {
  const { router } = fixture();
  const out = await router.call(async (p) => (p === 'primary' ? new Response('busy', { status: 503 }) : new Response('ok')));
  assert.equal(await out.text(), 'ok');
  assert.equal(router.view('primary').window.failures, 1);
  const bad = await router.call(async () => new Response('nope', { status: 400 }));
  assert.equal(bad.status, 400);
  const e = await router.call(async () => new Response(null, { status: 500 })).catch((x) => x);
  assert.ok(e.errors[0] instanceof HttpStatusError);
  assert.equal(e.errors[0].status, 500);
});

test('call: timeoutMs aborts a slow attempt, counts it as a timeout and fails over', async () => {
  const router = new Router(['slow', 'fast']);
  let signalSeen;
  const out = await router.call(
    async (p, ctx) => {
      if (p === 'slow') {
        signalSeen = ctx.signal;
        await new Promise((r) => setTimeout(r, 1_000).unref());
        return 'late';
      }
      return 'fast answer';
    },
    { timeoutMs: 30 },
  );
  assert.equal(out, 'fast answer');
  assert.equal(signalSeen.aborted, true);
  assert.equal(signalSeen.reason.name, 'TimeoutError');
  assert.equal(router.view('slow').window.timeouts, 1);
});

test("call: the caller's signal stops the call", async () => {
  const router = new Router(['a', 'b']);
  const ac = new AbortController();
  const seen = [];
  const p = router.call(
    async (provider, ctx) => {
      seen.push(provider);
      await new Promise((r) => setTimeout(r, 1_000).unref());
      return ctx;
    },
    { signal: ac.signal },
  );
  setTimeout(() => ac.abort(new Error('user left')), 10);
  await assert.rejects(p, /user left/);
  assert.deepEqual(seen, ['a']);
  const pre = AbortSignal.abort(new Error('already'));
  await assert.rejects(router.call(async () => 1, { signal: pre }), /already/);
});

test('call: sticky keys are passed to the engine', async () => {
  const { router } = fixture();
  assert.equal(await router.call(async (p) => p, { key: 'user-42' }), 'primary');
  await assert.rejects(router.call(async (p) => p, { key: 42 }), TypeError);
});

// The fast path of `call` (default clock, no options): every way out of it.

test('call (default clock, no options): a success is recorded; ctx carries the whole ticket', async () => {
  const router = new Router(['primary', 'secondary']);
  const twin = new Router(['primary', 'secondary']);
  let ctxSeen;
  const out = await router.call((provider, ctx) => {
    ctxSeen = ctx;
    return Promise.resolve(`answer from ${provider}`);
  });
  assert.equal(out, 'answer from primary');
  assert.equal(ctxSeen.attempt, 0);
  assert.equal(ctxSeen.signal, undefined);
  assert.deepEqual(Object.keys(ctxSeen), ['attempt', 'signal']);
  const t = ctxSeen.ticket;
  assert.ok(t instanceof fc.Ticket);
  assert.equal(ctxSeen.ticket, t);
  assert.deepEqual(
    { ...t.toJSON(), issued_at_ms: 0 },
    { ...twin.pick().toJSON(), issued_at_ms: 0 },
  );
  assert.equal(Number.isSafeInteger(t.issued_at_ms), true);
  assert.equal(router.view('primary').window.successes, 1);
  // The ticket is a real one: recording it again is accepted by the engine like any ticket.
  assert.equal(router.record(t, 'success'), 'accepted');
  assert.equal(router.view('primary').window.successes, 2);
});

test('call (default clock, no options): plain values and thenables are awaited like promises', async () => {
  const router = new Router(['a', 'b']);
  assert.equal(await router.call(() => 7), 7);
  assert.equal(await router.call(() => ({ then: (resolve) => resolve('thenable') })), 'thenable');
  assert.equal(await router.call(() => undefined), undefined);
  const rejecting = { then: (_resolve, reject) => reject(new APIError(503, {})) };
  const seen = [];
  const out = await router.call((p) => {
    seen.push(p);
    return p === 'a' ? rejecting : 'from b';
  });
  assert.equal(out, 'from b');
  assert.deepEqual(seen, ['a', 'b']);
  assert.equal(router.view('a').window.successes, 3);
  assert.equal(router.view('a').window.failures, 1);
});

test('call (default clock, no options): a synchronous throw or a rejection fails over', async () => {
  const router = new Router(['a', 'b', 'c']);
  const seen = [];
  const out = await router.call((p, ctx) => {
    seen.push([p, ctx.attempt]);
    if (p === 'a') throw new APIError(502, {});
    if (p === 'b') return Promise.reject(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }));
    return 'from c';
  });
  assert.equal(out, 'from c');
  assert.deepEqual(seen, [['a', 0], ['b', 1], ['c', 2]]);
  assert.equal(router.view('a').window.failures, 1);
  assert.equal(router.view('b').window.failures, 1);
  assert.equal(router.view('c').window.successes, 1);
});

test('call (default clock, no options): client errors and Responses leave the fast path correctly', async () => {
  const router = new Router(['a', 'b']);
  const err = new APIError(400, {});
  await assert.rejects(router.call(() => { throw err; }), (e) => e === err);
  await assert.rejects(router.call(async () => { throw err; }), (e) => e === err);
  assert.equal(router.view('a').window.client_errors, 2);
  const out = await router.call(async (p) => (p === 'a' ? new Response('busy', { status: 503 }) : new Response('ok')));
  assert.equal(await out.text(), 'ok');
  assert.equal(router.view('a').window.failures, 1);
  const e = await router.call(async () => new Response(null, { status: 500 })).catch((x) => x);
  assert.ok(e instanceof AllProvidersFailedError);
  assert.deepEqual(e.attempts.map((a) => [a.provider, a.outcome]), [['a', 'server_error'], ['b', 'server_error']]);
});

test('call (default clock, no options): bad arguments and an unavailable router reject, never throw', async () => {
  const router = new Router(['only'], { consecutive_failures: 1, when_all_down: 'fail', open_jitter: 0 });
  for (const bad of ['nope', undefined, null, 42]) {
    const p = router.call(bad);
    assert.ok(p instanceof Promise);
    await assert.rejects(p, TypeError);
  }
  const p = router.call(async () => 1, 'not options');
  assert.ok(p instanceof Promise);
  await assert.rejects(p, TypeError);
  const { call } = router;
  for (const self of [undefined, {}]) {
    const unbound = call.call(self, async () => 1);
    assert.ok(unbound instanceof Promise);
    await assert.rejects(unbound, TypeError);
  }
  router.record(router.pick(), 'server_error');
  let called = false;
  const e = await router.call(async () => { called = true; }).catch((x) => x);
  assert.equal(called, false);
  assert.ok(e instanceof AllProvidersFailedError);
  assert.ok(e.errors[0] instanceof fc.UnavailableError);
});

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
