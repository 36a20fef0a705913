'use strict';
// router.call and router.stream with the real `openai` SDK against a local fake provider
// (test/fake-provider.js), used as a user would: `maxRetries: 0`, the attempt's `signal` and
// `timeoutMs` passed to each request. For each scripted fault: what the caller got, which
// providers were called how often, and what was recorded (views, events).

const test = require('node:test');
const assert = require('node:assert/strict');
const OpenAI = require('openai');
const Anthropic = require('@anthropic-ai/sdk');
const { Router, AllProvidersFailedError } = require('failover-core');
const { FakeProvider } = require('./fake-provider.js');

const PROVIDERS = ['primary', 'secondary'];
/** The attempt deadline for these tests (a `hang` lasts longer). */
const ATTEMPT_MS = 400;
const MESSAGES = [{ role: 'user', content: 'hi' }];

let fake;
test.before(async () => {
  fake = await new FakeProvider().start();
  // One plain request per SDK first: the first test's 400 ms attempt deadline must not measure
  // the SDKs' cold start (it did, at a load average of 10: the 401 became a timeout).
  await clients().primary.chat.completions.create({ model: 'gpt-test', messages: MESSAGES });
  await anthropicClients().primary.messages.create({ model: 'claude-test', max_tokens: 16, messages: MESSAGES });
});
test.after(async () => {
  await fake.close();
});
test.beforeEach(() => {
  fake.scripts.clear();
  fake.calls.length = 0;
});

const newRouter = (policy = {}) => new Router(PROVIDERS, { attempt_timeout_ms: ATTEMPT_MS, open_jitter: 0, ...policy });

function clients() {
  return Object.fromEntries(PROVIDERS.map((p) => [p, new OpenAI({ baseURL: fake.openaiUrl(p), apiKey: 'k', maxRetries: 0 })]));
}

function anthropicClients() {
  return Object.fromEntries(PROVIDERS.map((p) => [p, new Anthropic({ baseURL: fake.anthropicUrl(p), apiKey: 'k', maxRetries: 0 })]));
}

/** One request through router.call with the SDK as a user writes it: the text, or what was thrown. */
async function run(router, options, sdk = 'openai') {
  try {
    if (sdk === 'anthropic') {
      const ac = anthropicClients();
      return await router.call(async ({ provider, signal, timeoutMs }) => {
        const r = await ac[provider].messages.create({ model: 'claude-test', max_tokens: 16, messages: MESSAGES }, { signal, timeout: timeoutMs });
        return r.content[0].text;
      }, options);
    }
    const oc = clients();
    return await router.call(async ({ provider, signal, timeoutMs }) => {
      const r = await oc[provider].chat.completions.create({ model: 'gpt-test', messages: MESSAGES }, { signal, timeout: timeoutMs });
      return r.choices[0].message.content;
    }, options);
  } catch (e) {
    return e;
  }
}

const eventsOf = (router, provider) => router.drainEvents().filter((e) => e.provider === provider);

function failedOver(result) {
  assert.equal(result, 'hello from secondary', result instanceof Error ? result.stack : undefined);
  assert.deepEqual(fake.counts(), { primary: 1, secondary: 1 });
}

const CHECKS = {
  503(result, r) {
    failedOver(result);
    assert.equal(r.view('primary').window.failures, 1);
    assert.equal(r.view('secondary').window.successes, 1);
  },
  '429_retry_after'(result, r) {
    failedOver(result);
    const v = r.view('primary');
    assert.equal(v.window.rate_limited, 1);
    assert.equal(v.window.failures, 0);
    assert.notEqual(v.throttled_until_ms, null);
    const ev = eventsOf(r, 'primary');
    assert.deepEqual(ev.map((e) => e.kind), ['throttled']);
    assert.equal(ev[0].retry_after, true);
    const span = ev[0].until_ms - ev[0].at_ms;
    assert.ok(span >= 4_900 && span <= 5_000, String(span)); // the server's Retry-After: 5
  },
  '429_quota'(result, r) {
    failedOver(result);
    assert.deepEqual(eventsOf(r, 'primary').map((e) => [e.kind, e.cause]), [['benched', 'quota_exhausted']]);
    assert.equal(r.view('primary').window.failures, 0); // benched, not counted as an outage
  },
  hang(result, r) {
    // The attempt's signal aborted the SDK's request at the deadline: a timeout, then failover.
    failedOver(result);
    assert.equal(r.view('primary').window.timeouts, 1);
    assert.equal(r.view('secondary').window.successes, 1);
  },
  '400_content_filter'(result, r) {
    // The caller's fault: the SDK's own error, at once, no failover.
    assert.ok(result instanceof OpenAI.BadRequestError || result instanceof Anthropic.BadRequestError, String(result));
    assert.equal(result.status, 400);
    assert.deepEqual(fake.counts(), { primary: 1 });
    assert.equal(r.view('primary').window.client_errors, 1);
    assert.equal(r.view('primary').state, 'healthy');
    assert.deepEqual(eventsOf(r, 'primary'), []);
  },
  '400_context_length'(result, r) {
    // Refused here; another provider may take it. Counts nothing against the primary.
    failedOver(result);
    const w = r.view('primary').window;
    assert.deepEqual([w.failures, w.client_errors, w.timeouts, w.rate_limited], [0, 0, 0, 0]);
    assert.deepEqual(eventsOf(r, 'primary'), []);
  },
  401(result, r) {
    failedOver(result);
    assert.deepEqual(eventsOf(r, 'primary').map((e) => [e.kind, e.cause]), [['benched', 'credentials_rejected']]);
  },
};

/** Faults after which the primary is not called by the next request (throttled or benched). */
const SKIPPED_NEXT = new Set(['429_retry_after', '429_quota', '401']);

for (const sdk of ['openai', 'anthropic']) {
  for (const [fault, check] of Object.entries(CHECKS)) {
    test(`${sdk} SDK, router.call: ${fault} on the primary`, async () => {
      const r = newRouter();
      fake.script('primary', fault);
      check(await run(r, undefined, sdk), r);
      assert.equal(r.invariantViolation(), null);
      // The next request: the primary again, unless the fault took it out of rotation.
      fake.calls.length = 0;
      assert.equal(await run(r, undefined, sdk), SKIPPED_NEXT.has(fault) ? 'hello from secondary' : 'hello from primary');
      assert.equal(fake.counts().primary ?? 0, SKIPPED_NEXT.has(fault) ? 0 : 1);
    });
  }
}

test('openai SDK, router.call: a 503 burst opens the primary', async () => {
  const r = newRouter({ consecutive_failures: 3 });
  fake.script('primary', '503', '503', '503');
  for (let i = 0; i < 3; i++) assert.equal(await run(r), 'hello from secondary');
  assert.deepEqual(fake.counts(), { primary: 3, secondary: 3 });
  const v = r.view('primary');
  assert.equal(v.state, 'open');
  assert.equal(v.window.failures, 3);
  assert.deepEqual(eventsOf(r, 'primary').map((e) => e.kind), ['opened']);
  // Open: the next request goes straight to the secondary.
  assert.equal(await run(r), 'hello from secondary');
  assert.deepEqual(fake.counts(), { primary: 3, secondary: 4 });
});

test('openai SDK, router.call: both down gives AllProvidersFailedError with the SDK errors', async () => {
  const r = newRouter({ same_provider_retries: 0 });
  fake.script('primary', '503');
  fake.script('secondary', '503');
  const e = await run(r);
  assert.ok(e instanceof AllProvidersFailedError, String(e));
  assert.deepEqual(e.attempts.map((a) => [a.provider, a.outcome]), [['primary', 'server_error'], ['secondary', 'server_error']]);
  assert.ok(e.errors.every((x) => x instanceof OpenAI.InternalServerError && x.status === 503));
  assert.equal(e.reason, 'attempts');
  assert.deepEqual(fake.counts(), { primary: 1, secondary: 1 });
});

test('openai SDK, router.call: a 429 on the only provider gives up with its Retry-After', async () => {
  const r = new Router(['primary'], { attempt_timeout_ms: ATTEMPT_MS, same_provider_retries: 0 });
  fake.script('primary', '429_retry_after');
  const oc = new OpenAI({ baseURL: fake.openaiUrl('primary'), apiKey: 'k', maxRetries: 0 });
  const e = await r
    .call(({ signal, timeoutMs }) => oc.chat.completions.create({ model: 'm', messages: MESSAGES }, { signal, timeout: timeoutMs }), { maxAttempts: 2, maxWaitMs: 0 })
    .catch((x) => x);
  assert.ok(e instanceof AllProvidersFailedError, String(e));
  assert.equal(e.reason, 'no_provider');
  assert.deepEqual(e.attempts.map((a) => a.outcome), ['rate_limited']);
  assert.ok(e.retry_after_ms >= 4_500 && e.retry_after_ms <= 5_000, String(e.retry_after_ms));
});

test('openai SDK, router.call: a bug in the callback is re-thrown, nothing recorded', async () => {
  const r = newRouter();
  const oc = clients();
  const e = await r
    .call(async ({ provider, signal, timeoutMs }) => {
      const res = await oc[provider].chat.completions.create({ model: 'm', messages: MESSAGES }, { signal, timeout: timeoutMs });
      return res.choices[0].mesage.content; // the bug: a TypeError
    })
    .catch((x) => x);
  assert.ok(e instanceof TypeError, String(e));
  assert.deepEqual(fake.counts(), { primary: 1 });
  assert.equal(r.view('primary').window.volume, 0);
  assert.equal(r.view('secondary').window.volume, 0);
  assert.deepEqual(r.drainEvents(), []);
});

