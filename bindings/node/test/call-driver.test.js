'use strict';
// router.call on the core's request engine: the attempt object, facts read off SDK-shaped errors
// and Responses, the engine's decisions (failover, same-provider retry, give-up reasons), the
// attempt deadline and its signal, the caller's own errors, and a hand-driven NativeRequest twin.

const test = require('node:test');
const assert = require('node:assert/strict');
const pkg = require('./package.js');
const fc = require('failover-core');
const native = pkg.load('native.js');
const { nativeRouter } = pkg.load('lib/router.js');

const { Router, AllProvidersFailedError, HttpStatusError } = fc;

/** Shaped like the openai SDK's APIError: status, headers, the body's error object in `.error`. */
class APIError extends Error {
  constructor(status, body, headers = {}) {
    super(`${status} ${body?.message ?? 'status code (no body)'}`);
    this.status = status;
    this.headers = headers;
    this.error = body;
    this.code = body?.code;
    this.type = body?.type;
  }
}
class APIConnectionError extends Error {}
class APIConnectionTimeoutError extends APIConnectionError {}

/** A router with a controllable clock. */
function fixture(policy, providers = ['primary', 'secondary']) {
  const clock = { now: 1_000 };
  const router = new Router(providers, { open_jitter: 0, ...policy }, { clock: () => clock.now });
  return { router, clock };
}

test('call: fn receives an attempt object; a success is recorded with the measured latency', async () => {
  const { router, clock } = fixture({ attempt_timeout_ms: 5_000 });
  const seen = [];
  const out = await router.call(async (a) => {
    seen.push({ ...a });
    clock.now += 850;
    return `answer from ${a.provider}`;
  });
  assert.equal(out, 'answer from primary');
  assert.deepEqual(seen, [{ provider: 'primary', attempt: 1, timeoutMs: 5_000, probe: false }]);
  assert.equal(router.view('primary').window.successes, 1);
  assert.notEqual(router.view('primary').latency_ms, null);
  // Plain values and thenables are awaited like promises.
  assert.equal(await router.call(() => 7), 7);
  assert.equal(await router.call(() => ({ then: (resolve) => resolve('thenable') })), 'thenable');
});

test('call: a server error fails over; the engine retries the same provider only when none other can', async () => {
  const { router } = fixture();
  const seen = [];
  assert.equal(
    await router.call(async ({ provider, attempt }) => {
      seen.push([provider, attempt]);
      if (provider === 'primary') throw new APIError(503, null);
      return 'ok';
    }),
    'ok',
  );
  assert.deepEqual(seen, [['primary', 1], ['secondary', 2]]);
  assert.equal(router.view('primary').window.failures, 1);
  seen.length = 0;
  const e = await router.call(async ({ provider }) => {
    seen.push(provider);
    throw new APIError(500, null);
  }).catch((x) => x);
  assert.ok(e instanceof AllProvidersFailedError && e instanceof AggregateError);
  assert.equal(e.code, 'all_providers_failed');
  assert.equal(e.reason, 'attempts');
  // Two providers and one same-provider retry (the policy's default budget).
  assert.deepEqual(seen, ['primary', 'secondary', 'secondary']);
  assert.deepEqual(e.attempts.map((a) => [a.provider, a.outcome]), seen.map((p) => [p, 'server_error']));
  assert.deepEqual(e.errors, e.attempts.map((a) => a.error));
  // Python's FailedAttempt fields, the same names.
  for (const a of e.attempts) assert.deepEqual(Object.keys(a), ['provider', 'outcome', 'error', 'latency_ms', 'retry_after_ms', 'number']);
  assert.deepEqual(e.attempts.map((a) => a.number), [1, 2, 3]);
  assert.deepEqual(e.attempts.map((a) => a.retry_after_ms), [null, null, null]);
  assert.match(e.message, /all 3 attempt\(s\) failed \(attempts\); retry after \d+ ms/);
});

test("call: the caller's own bug is re-thrown unchanged and counts against no provider", async () => {
  const { router } = fixture();
  const seen = [];
  let bug;
  await assert.rejects(
    router.call(async ({ provider }) => {
      seen.push(provider);
      try {
        null.choices;
      } catch (e) {
        bug = e;
        throw e;
      }
    }),
    (e) => e === bug && e instanceof TypeError,
  );
  await assert.rejects(router.call(() => { throw new RangeError('bad index'); }), RangeError);
  await assert.rejects(router.call(async () => { throw 'a string'; }), (e) => e === 'a string');
  assert.deepEqual(seen, ['primary']);
  for (const v of router.views()) assert.equal(v.window.volume, 0, v.name);
});

test('call: facts of SDK errors go through the core table', async () => {
  const cases = [
    [new APIError(400, { code: 'context_length_exceeded', type: 'invalid_request_error', message: "This model's maximum context length is 8192 tokens" }), 'refused'],
    [new APIError(429, { code: 'insufficient_quota', type: 'insufficient_quota', message: 'You exceeded your current quota' }), 'quota_exhausted'],
    [new APIError(429, { code: null, type: 'requests', message: 'Rate limit reached' }, new Headers({ 'retry-after': '2' })), 'rate_limited'],
    [new APIError(401, { code: 'invalid_api_key', type: 'invalid_request_error', message: 'Incorrect API key' }), 'credentials_rejected'],
    [Object.assign(new Error('529'), { status: 529, headers: {}, error: { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } } }), 'server_error'],
    [new APIConnectionTimeoutError('Request timed out.'), 'timeout'],
    [new APIConnectionError('Connection error.', { cause: Object.assign(new Error('x'), { code: 'ECONNRESET' }) }), 'connection_error'],
    [new TypeError('fetch failed', { cause: Object.assign(new Error('c'), { code: 'UND_ERR_SOCKET' }) }), 'connection_error'],
    [Object.assign(new Error('x'), { code: 'UND_ERR_HEADERS_TIMEOUT' }), 'timeout'],
  ];
  for (const [err, outcome] of cases) {
    const { router } = fixture({}, ['only', 'other']);
    const e = await router.call(async ({ provider }) => {
      if (provider === 'only') throw err;
      throw new APIError(500, null);
    }).catch((x) => x);
    assert.ok(e instanceof AllProvidersFailedError, `${err.message}: ${e}`);
    assert.equal(e.attempts[0].outcome, outcome, err.message);
    assert.equal(e.attempts[0].error, err);
  }
  // A content filter is the caller's fault: the provider's error, at once, no failover.
  const { router } = fixture();
  const filtered = new APIError(400, { code: 'content_filter', type: 'invalid_request_error', message: 'filtered' });
  const seen = [];
  await assert.rejects(router.call(async ({ provider }) => { seen.push(provider); throw filtered; }), (e) => e === filtered);
  assert.deepEqual(seen, ['primary']);
  assert.equal(router.view('primary').window.client_errors, 1);
});

test('call: a rate limit throttles the provider; with nowhere else to go the engine gives up with the hint', async () => {
  const { router } = fixture({ max_wait_ms: 0 }, ['only']);
  const e = await router.call(async () => { throw new APIError(429, null, { 'retry-after': '20' }); }).catch((x) => x);
  assert.ok(e instanceof AllProvidersFailedError);
  assert.equal(e.reason, 'no_provider');
  assert.equal(e.retry_after_ms, 20_000);
  assert.equal(router.view('only').throttled_until_ms, 21_000);
  // Nothing available: no attempt at all.
  let called = false;
  const e2 = await router.call(async () => { called = true; }).catch((x) => x);
  assert.equal(called, false);
  assert.equal(e2.attempts.length, 0);
  assert.equal(e2.reason, 'no_provider');
  assert.match(e2.message, /^no provider available \(no_provider\); retry after 20000 ms$/);
});

test('call: a short Retry-After is waited out when the engine says so', async () => {
  const router = new Router(['only'], { open_jitter: 0 });
  let calls = 0;
  const t0 = performance.now();
  const out = await router.call(async () => {
    calls++;
    if (calls === 1) throw new APIError(429, null, { 'retry-after-ms': '40' });
    return 'after the wait';
  });
  assert.equal(out, 'after the wait');
  assert.equal(calls, 2);
  assert.ok(performance.now() - t0 >= 35, String(performance.now() - t0));
});

test('call: returned Responses are classified; failing statuses fail over, client errors are returned', async () => {
  const { router } = fixture();
  const out = await router.call(async ({ provider }) => (provider === 'primary' ? new Response('busy', { status: 503 }) : new Response('ok')));
  assert.equal(await out.text(), 'ok');
  assert.equal(router.view('primary').window.failures, 1);
  const bad = await router.call(async () => new Response('nope', { status: 400 }));
  assert.equal(bad.status, 400);
  const e = await router.call(async () => new Response(null, { status: 500 })).catch((x) => x);
  assert.ok(e.errors[0] instanceof HttpStatusError);
  assert.equal(e.errors[0].status, 500);
});

test("call: the attempt's signal aborts at its deadline, which counts as a timeout, and the next provider is tried", async () => {
  const router = new Router(['slow', 'fast'], { attempt_timeout_ms: 30 });
  let signalSeen;
  const t0 = performance.now();
  const out = await router.call(async ({ provider, signal, timeoutMs }) => {
    assert.equal(timeoutMs, 30);
    if (provider === 'slow') {
      signalSeen = signal;
      await new Promise((resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
      return 'late';
    }
    return 'fast answer';
  });
  assert.equal(out, 'fast answer');
  assert.ok(performance.now() - t0 >= 29);
  assert.equal(signalSeen.aborted, true);
  assert.equal(signalSeen.reason.name, 'TimeoutError');
  assert.equal(router.view('slow').window.timeouts, 1);
  // A function that ignores the signal is not waited for past the deadline either.
  const ignored = await router.call(async ({ provider }) => {
    if (provider === 'slow') await new Promise((r) => setTimeout(r, 500).unref());
    return provider;
  });
  assert.equal(ignored, 'fast');
});

/**
 * Runs `body` (a script's text, with `Router` in scope) in a child node process; resolves with
 * its exit code and stdout once it exits on its own, or rejects after `limitMs` (then kills it by
 * pid): a bound on the test, not a timing assertion.
 */
function runChild(body, limitMs = 60_000) {
  const { spawn } = require('node:child_process');
  const script = `'use strict';\nconst { Router } = require(${JSON.stringify(pkg.dir)});\n${body}`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    const timer = setTimeout(() => {
      process.kill(child.pid, 'SIGKILL');
      reject(new Error(`the child process did not exit within ${limitMs} ms; its output: ${out}`));
    }, limitMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

test('call: the shared deadline timer holds the process only while an attempt is in flight', async () => {
  // Attempt deadlines of 10 minutes: were the timer still holding the process after the calls
  // settled, the child would outlive the test's bound.
  const idle = await runChild(`
    const router = new Router(['a', 'b'], { attempt_timeout_ms: 600000, request_timeout_ms: 600000 });
    (async () => {
      let s = 0;
      for (let i = 0; i < 1000; i++) s += await router.call(async () => 1);
      // Settled in another turn of the event loop too.
      s += await router.call(() => new Promise((r) => setImmediate(() => r(1))));
      console.log(s);
    })();
  `);
  assert.deepEqual(idle, { code: 0, out: '1001\n' });
  // An attempt hung on a promise that never settles (it holds nothing by itself) keeps the process
  // alive until its deadline, which fails over; started in the turn in which an earlier call
  // settled, and in a later turn (once the timer was released).
  for (const later of [false, true]) {
    const hung = await runChild(`
      const router = new Router(['hung', 'ok'], { attempt_timeout_ms: 200 });
      (async () => {
        await router.call(async () => 'warm');
        ${later ? 'await new Promise((r) => setImmediate(r));' : ''}
        const seen = [];
        const out = await router.call(({ provider }) => {
          seen.push(provider);
          return provider === 'hung' ? new Promise(() => {}) : Promise.resolve('answer from ' + provider);
        });
        console.log(JSON.stringify({ out, seen, timeouts: router.view('hung').window.timeouts }));
      })();
    `);
    assert.equal(hung.code, 0);
    assert.deepEqual(JSON.parse(hung.out), { out: 'answer from ok', seen: ['hung', 'ok'], timeouts: 1 });
  }
});

test("call: the caller's signal stops the call and is re-thrown; nothing is counted", async () => {
  const router = new Router(['a', 'b']);
  const ac = new AbortController();
  const seen = [];
  const p = router.call(
    async ({ provider, signal }) => {
      seen.push(provider);
      await new Promise((resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
    },
    { signal: ac.signal },
  );
  setTimeout(() => ac.abort(new Error('user left')), 10);
  await assert.rejects(p, /user left/);
  assert.deepEqual(seen, ['a']);
  assert.equal(router.view('a').window.volume, 0);
  await assert.rejects(router.call(async () => 1, { signal: AbortSignal.abort(new Error('already')) }), /already/);
});

test('call: options are checked; the removed ones say where they went', async () => {
  const router = new Router(['a', 'b']);
  assert.equal(await router.call(async ({ provider }) => provider, { key: 'user-42', maxAttempts: 1, requestTimeoutMs: 1000, maxWaitMs: 0 }), 'a');
  for (const bad of [{ key: 42 }, { timeoutMs: 5 }, { classify: () => null }, { maxAtempts: 2 }, 'x']) {
    await assert.rejects(router.call(async () => 1, bad), TypeError, JSON.stringify(bad));
  }
  await assert.rejects(router.call(async () => 1, { maxAttempts: 0 }), RangeError);
  for (const bad of ['nope', undefined, null, 42]) {
    const p = router.call(bad);
    assert.ok(p instanceof Promise);
    await assert.rejects(p, TypeError);
  }
  const e = await router.call(async () => { throw new APIError(502, null); }, { maxAttempts: 1 }).catch((x) => x);
  assert.equal(e.attempts.length, 1);
  assert.equal(e.reason, 'attempts');
});

test('call makes exactly the decisions of a hand-driven NativeRequest twin', async () => {
  const script = [
    [['p0', 'server_error'], ['p1', 'success']],
    [['p0', 'rate_limited'], ['p1', 'refused'], ['p2', 'timeout']],
    [['p0', 'credentials_rejected'], ['p1', 'connection_error'], ['p2', 'success']],
    [['p1', 'client_error']],
  ];
  const errorOf = {
    server_error: () => new APIError(500, null),
    rate_limited: () => new APIError(429, null, { 'retry-after': '5' }),
    refused: () => new APIError(404, null),
    timeout: () => new APIConnectionTimeoutError('t'),
    credentials_rejected: () => new APIError(401, null),
    connection_error: () => Object.assign(new Error('r'), { code: 'ECONNREFUSED' }),
    client_error: () => new APIError(422, null),
  };
  const names = ['p0', 'p1', 'p2'];
  const policy = { open_jitter: 0, consecutive_failures: 1, max_wait_ms: 0 };
  let now = 0;
  const router = new Router(names, policy, { clock: () => now });
  const twin = new Router(names, policy);
  const tn = nativeRouter(twin);
  for (const plan of script) {
    now += 1_000;
    const req = new native.NativeRequest(tn, undefined, now);
    const calls = [];
    await router.call(async ({ provider }) => {
      const step = req.poll(tn, now);
      assert.equal(provider, step.attempt.provider);
      calls.push(provider);
      const outcome = plan.find(([p]) => p === provider)?.[1] ?? 'success';
      now += 10;
      req.handleOutcome(tn, outcome, outcome === 'rate_limited' ? 5_000 : null, now);
      if (outcome !== 'success') throw errorOf[outcome]();
      return 1;
    }).catch(() => {});
    assert.ok(calls.length > 0);
    assert.deepEqual(router.views(), twin.views());
    assert.deepEqual(router.drainEvents(), twin.drainEvents());
  }
});
