'use strict';
// router.stream: with plain async generators (every rule of the driver), then with the real
// `openai` SDK's streams against the local fake provider (test/fake-provider.js), per stream fault.

const test = require('node:test');
const assert = require('node:assert/strict');
const OpenAI = require('openai');
const Anthropic = require('@anthropic-ai/sdk');
const { Router, AllProvidersFailedError, StreamBrokenError, ProviderStreamError, chunkKind } = require('failover-core');
const { FakeProvider } = require('./fake-provider.js');

const chunk = (text, finish = null) => ({ choices: [{ delta: text ? { content: text } : {}, finish_reason: finish }] });
const textOf = (cs) => cs.map((c) => c.choices?.[0]?.delta?.content ?? c.delta?.text ?? '').join('');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function collect(iterable) {
  const out = [];
  for await (const c of iterable) out.push(c);
  return out;
}

test('a complete stream is delivered; latency is the time to first content', async () => {
  const r = new Router(['a', 'b']);
  const got = await collect(
    r.stream(async function* () {
      yield chunk(''); // role-only: held back until content
      yield chunk('Hel');
      yield chunk('lo');
      yield chunk('', 'stop');
    }),
  );
  assert.equal(got.length, 4);
  assert.equal(textOf(got), 'Hello');
  assert.equal(r.view('a').window.successes, 1);
  assert.equal(r.view('b').window.volume, 0);
});

test('a cut before content fails over unseen; after content throws StreamBrokenError with the chunks', async () => {
  const r = new Router(['a', 'b'], { open_jitter: 0 });
  const calls = [];
  const got = await collect(
    r.stream(async function* ({ provider }) {
      calls.push(provider);
      yield chunk('');
      if (provider === 'a') return; // EOF before content
      yield chunk('ok');
      yield chunk('', 'stop');
    }),
  );
  assert.deepEqual(calls, ['a', 'b']);
  assert.equal(textOf(got), 'ok');
  assert.equal(got.length, 3); // b's held chunk, its content, its terminal: nothing of a's
  assert.equal(r.view('a').window.failures, 1);

  const seen = [];
  const e = await (async () => {
    for await (const c of r.stream(async function* () {
      yield chunk('Hel');
    })) seen.push(c);
  })().catch((x) => x);
  assert.ok(e instanceof StreamBrokenError, String(e));
  assert.equal(e.code, 'stream_broken');
  assert.equal(e.outcome, 'stream_cut');
  assert.deepEqual(e.chunks, seen);
  assert.equal(seen.length, 1);
});

test('an error before content fails over; a bug in the caller is re-thrown, nothing recorded', async () => {
  const r = new Router(['a', 'b']);
  const got = await collect(
    r.stream(async function* ({ provider }) {
      if (provider === 'a') throw Object.assign(new Error('overloaded'), { status: 503, headers: {} });
      yield chunk('hi', 'stop');
    }),
  );
  assert.equal(textOf(got), 'hi');
  assert.equal(r.view('a').window.failures, 1);

  const r2 = new Router(['a', 'b']);
  const e = await collect(
    r2.stream(async function* () {
      yield chunk('');
      null.oops; // eslint-disable-line no-unused-expressions
    }),
  ).catch((x) => x);
  assert.ok(e instanceof TypeError);
  assert.equal(r2.view('a').window.volume, 0);
  assert.equal(r2.view('b').window.volume, 0);
});

test('no content by the first-token deadline: the signal aborts, the next provider answers', async () => {
  const r = new Router(['slow', 'fast'], { first_token_timeout_ms: 100, first_token_min_ms: 100, attempt_timeout_ms: 100 });
  let aborted = null;
  const got = await collect(
    r.stream(async function* ({ provider, signal }) {
      if (provider === 'slow') {
        signal.addEventListener('abort', () => (aborted = signal.reason.name));
        await sleep(5_000); // ignores the signal: the driver does not wait for it
      }
      yield chunk('fast', 'stop');
    }),
  );
  assert.equal(textOf(got), 'fast');
  assert.equal(aborted, 'TimeoutError');
  assert.equal(r.view('slow').window.timeouts, 1);
});

test('a stall after content is caught by the idle deadline: StreamBrokenError stalled', async () => {
  const r = new Router(['a', 'b'], { stream_idle_ms: 100 });
  const seen = [];
  const t = performance.now();
  const e = await (async () => {
    for await (const c of r.stream(async function* () {
      yield chunk('Hel');
      await sleep(5_000);
      yield chunk('lo', 'stop');
    })) seen.push(c);
  })().catch((x) => x);
  assert.ok(e instanceof StreamBrokenError, String(e));
  assert.equal(e.outcome, 'stalled');
  assert.equal(e.provider, 'a');
  assert.equal(e.chunks.length, 1);
  assert.ok(performance.now() - t < 2_000);
});

test('a slow consumer is not a stall; breaking out cancels the request', async () => {
  const r = new Router(['a'], { stream_idle_ms: 100 });
  const got = [];
  for await (const c of r.stream(async function* () {
    yield chunk('a');
    yield chunk('b');
    yield chunk('', 'stop');
  })) {
    got.push(c);
    await sleep(150);
  }
  assert.equal(got.length, 3);
  let closed = false;
  for await (const c of r.stream(async function* () {
    try {
      yield chunk('a');
      yield chunk('b');
    } finally {
      closed = true;
    }
  })) {
    assert.ok(c);
    break;
  }
  assert.equal(closed, true);
});

test('every provider failing before content: AllProvidersFailedError', async () => {
  const r = new Router(['a', 'b'], { same_provider_retries: 0 });
  const e = await collect(
    r.stream(async function* () {
      yield chunk('');
    }),
  ).catch((x) => x);
  assert.ok(e instanceof AllProvidersFailedError, String(e));
  assert.deepEqual(e.attempts.map((x) => [x.provider, x.outcome]), [['a', 'stream_cut'], ['b', 'stream_cut']]);
});

test('bad arguments throw at once', () => {
  const r = new Router(['a']);
  assert.throws(() => r.stream(1), TypeError);
  assert.throws(() => r.stream(() => [], { timeoutMs: 1 }), TypeError);
});

// -- the openai SDK's streams against the fake provider -------------------------------------

let fake;
test.before(async () => {
  fake = await new FakeProvider().start();
});
test.after(async () => {
  await fake.close();
});

const MESSAGES = [{ role: 'user', content: 'hi' }];

async function sdkStream(r, script, sdk = 'openai') {
  fake.scripts.clear();
  fake.calls.length = 0;
  for (const [p, ...faults] of script) fake.script(p, ...faults);
  const oc = Object.fromEntries(['primary', 'secondary'].map((p) => [p, new OpenAI({ baseURL: fake.openaiUrl(p), apiKey: 'k', maxRetries: 0 })]));
  const ac = Object.fromEntries(['primary', 'secondary'].map((p) => [p, new Anthropic({ baseURL: fake.anthropicUrl(p), apiKey: 'k', maxRetries: 0 })]));
  const open =
    sdk === 'openai'
      ? ({ provider, signal, timeoutMs }) =>
          oc[provider].chat.completions.create({ model: 'gpt-test', messages: MESSAGES, stream: true }, { signal, timeout: timeoutMs })
      : ({ provider, signal, timeoutMs }) =>
          ac[provider].messages.create({ model: 'claude-test', max_tokens: 16, messages: MESSAGES, stream: true }, { signal, timeout: timeoutMs });
  const seen = [];
  try {
    for await (const c of r.stream(open)) seen.push(c);
    return { text: textOf(seen), seen };
  } catch (e) {
    return { error: e, seen };
  }
}

const streamRouter = () =>
  new Router(['primary', 'secondary'], { attempt_timeout_ms: 2_000, first_token_timeout_ms: 400, first_token_min_ms: 400, stream_idle_ms: 400, open_jitter: 0 });

for (const sdk of ['openai', 'anthropic']) {
test(`${sdk} SDK stream: complete`, async () => {
  const r = streamRouter();
  const { text, error } = await sdkStream(r, [], sdk);
  assert.equal(error, undefined);
  assert.equal(text, 'Hello');
  assert.deepEqual(fake.counts(), { primary: 1 });
  assert.equal(r.view('primary').window.successes, 1);
});

for (const [fault, outcome, counter] of [
  ['503', 'server_error', 'failures'],
  ['error_event', 'server_error', 'failures'],
  ['malformed_chunk', 'server_error', 'failures'],
  ['hang', 'timeout', 'timeouts'],
  ['slow_first_token', 'timeout', 'timeouts'],
  ['429_quota', 'quota_exhausted', null],
]) {
  test(`${sdk} SDK stream: ${fault} before content fails over unseen`, async () => {
    const r = streamRouter();
    const { text, error, seen } = await sdkStream(r, [['primary', fault]], sdk);
    assert.equal(error, undefined, error?.stack);
    assert.equal(text, 'Hello');
    // Only the secondary's events: OpenAI's role chunk, two tokens, its finish chunk; Anthropic's
    // message_start, content_block_start, two deltas, content_block_stop, message_delta,
    // message_stop (the SDK drops `ping`).
    assert.equal(seen.length, sdk === 'openai' ? 4 : 7);
    assert.deepEqual(fake.counts(), { primary: 1, secondary: 1 });
    if (counter !== null) assert.equal(r.view('primary').window[counter], 1, JSON.stringify(r.view('primary').window));
    else assert.deepEqual(r.drainEvents().filter((e) => e.provider === 'primary').map((e) => [e.kind, e.cause]), [['benched', outcome]]);
    assert.equal(r.invariantViolation(), null);
  });
}

for (const [fault, outcome] of [
  ['cut_after_tokens', null],
  ['missing_terminal', 'stream_cut'],
  ['stall', 'stalled'],
]) {
  test(`${sdk} SDK stream: ${fault} after content throws StreamBrokenError`, async () => {
    const r = streamRouter();
    const t = performance.now();
    const { error, seen } = await sdkStream(r, [['primary', fault]], sdk);
    assert.ok(error instanceof StreamBrokenError, String(error?.stack ?? error));
    if (outcome !== null) assert.equal(error.outcome, outcome);
    assert.equal(error.provider, 'primary');
    assert.deepEqual(error.chunks, seen);
    assert.equal(textOf(seen), fault === 'missing_terminal' ? 'Hello' : 'Hel');
    assert.deepEqual(fake.counts(), { primary: 1 });
    assert.ok(performance.now() - t < 3_000);
  });
}

test(`${sdk} SDK stream: 400 content filter is the caller's, no failover`, async () => {
  const r = streamRouter();
  const { error } = await sdkStream(r, [['primary', '400_content_filter']], sdk);
  assert.ok(error instanceof OpenAI.BadRequestError || error instanceof Anthropic.BadRequestError, String(error));
  assert.deepEqual(fake.counts(), { primary: 1 });
});
}

// The rest of issue 13's fault list, through router.stream with the real SDKs: the same
// verdicts as router.call (sdks.test.js), before any content so the caller sees only the
// secondary's stream.
const primaryEvents = (r) => r.drainEvents().filter((e) => e.provider === 'primary');
for (const sdk of ['openai', 'anthropic']) {
  for (const [fault, check] of [
    ['429_retry_after', (r) => {
      const ev = primaryEvents(r);
      assert.deepEqual(ev.map((e) => e.kind), ['throttled']);
      assert.equal(ev[0].retry_after, true);
      const span = ev[0].until_ms - ev[0].at_ms;
      assert.ok(span >= 4_900 && span <= 5_000, String(span)); // the server's Retry-After: 5
      assert.equal(r.view('primary').window.rate_limited, 1);
    }],
    ['400_context_length', (r) => {
      // Refused here, another provider may take it: counts nothing against the primary.
      const w = r.view('primary').window;
      assert.deepEqual([w.failures, w.client_errors, w.timeouts, w.rate_limited], [0, 0, 0, 0]);
      assert.deepEqual(primaryEvents(r), []);
    }],
    ['401', (r) => {
      assert.deepEqual(primaryEvents(r).map((e) => [e.kind, e.cause]), [['benched', 'credentials_rejected']]);
    }],
  ]) {
    test(`${sdk} SDK stream: ${fault} before content fails over unseen`, async () => {
      const r = streamRouter();
      const { text, error } = await sdkStream(r, [['primary', fault]], sdk);
      assert.equal(error, undefined, error?.stack);
      assert.equal(text, 'Hello');
      assert.deepEqual(fake.counts(), { primary: 1, secondary: 1 });
      check(r);
      assert.equal(r.invariantViolation(), null);
      // The next stream: the primary is out of rotation after a 429 or a 401, not after a refusal.
      const again = await sdkStream(r, [], sdk);
      assert.equal(again.text, 'Hello');
      assert.deepEqual(fake.counts(), fault === '400_context_length' ? { primary: 1 } : { secondary: 1 });
    });
  }

  test(`${sdk} SDK stream: a 503 burst opens the primary`, async () => {
    const r = new Router(['primary', 'secondary'], { first_token_timeout_ms: 400, first_token_min_ms: 400, stream_idle_ms: 400, open_jitter: 0, consecutive_failures: 3 });
    for (let i = 0; i < 3; i++) {
      const { text, error } = await sdkStream(r, [['primary', '503']], sdk);
      assert.equal(error, undefined, error?.stack);
      assert.equal(text, 'Hello');
      assert.deepEqual(fake.counts(), { primary: 1, secondary: 1 });
    }
    assert.equal(r.view('primary').state, 'open');
    assert.equal(r.view('primary').window.failures, 3);
    assert.deepEqual(primaryEvents(r).map((e) => e.kind), ['opened']);
    const { text } = await sdkStream(r, [], sdk);
    assert.equal(text, 'Hello');
    assert.deepEqual(fake.counts(), { secondary: 1 }); // open: straight to the secondary
  });
}

test('an in-band error chunk: before content it fails over; after content StreamBrokenError with a ProviderStreamError', async () => {
  const overloaded = { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } };
  const r = new Router(['a', 'b']);
  const got = await collect(r.stream(({ provider }) => (provider === 'a' ? [overloaded, chunk('never', 'stop')] : [chunk('ok', 'stop')])));
  assert.equal(got.length, 1);
  assert.equal(r.view('a').window.failures, 1);
  const limited = { error: { message: 'slow down', type: 'requests', code: 'rate_limit_exceeded' } };
  const seen = [];
  await assert.rejects(
    (async () => {
      for await (const c of r.stream(() => [chunk('Hel'), limited])) seen.push(c);
    })(),
    (e) => {
      assert.ok(e instanceof StreamBrokenError, String(e));
      assert.equal(e.outcome, 'rate_limited');
      assert.ok(e.error instanceof ProviderStreamError);
      assert.equal(e.error.kind, 'rate_limited');
      assert.equal(e.error.chunk, limited);
      return true;
    },
  );
  assert.equal(seen.length, 1);
});

test('chunkKind reads every shape', () => {
  assert.equal(chunkKind({ choices: [{ delta: { role: 'assistant', content: '' }, finish_reason: null }] }), 'other');
  assert.equal(chunkKind(chunk('x')), 'content');
  assert.equal(chunkKind({ choices: [{ delta: { content: 'x' }, finish_reason: 'length' }] }), 'last_content');
  assert.equal(chunkKind({ choices: [{ delta: { tool_calls: [{}] }, finish_reason: null }] }), 'content');
  assert.equal(chunkKind({ choices: [{ delta: { tool_calls: [] }, finish_reason: null }] }), 'other');
  assert.equal(chunkKind({ type: 'content_block_delta' }), 'content');
  assert.equal(chunkKind({ type: 'message_stop' }), 'terminal');
  assert.equal(chunkKind({ event: 'error', data: '{}' }), 'error');
  assert.equal(chunkKind('x'), 'content');
  assert.equal(chunkKind(new Uint8Array(0)), 'other');
  for (const c of [null, 3, {}, { choices: 'x' }, { choices: [null, 5] }, { type: 7 }, { choices: [{ delta: 'x', finish_reason: 1 }] }]) {
    assert.equal(chunkKind(c), 'other', JSON.stringify(c));
  }
});

test('chunkKind answers by the facts of each chunk, whatever the order chunks come in (the core\'s answers are kept per facts)', () => {
  // Chunks whose facts differ in one place each (type, content, finish_reason), with what the
  // chunk table says of them; asked in a different order each round, twice in a row too.
  const cases = [
    [chunk('x'), 'content'],
    [chunk(''), 'other'],
    [chunk('', 'stop'), 'terminal'],
    [chunk('x', 'stop'), 'last_content'],
    [chunk('x', 'length'), 'last_content'],
    [{ type: 'content_block_delta' }, 'content'],
    [{ type: 'content_block_delta', choices: [{ delta: { content: 'x' }, finish_reason: null }] }, 'content'],
    [{ type: 'message_stop' }, 'terminal'],
    [{ type: 'ping' }, 'other'],
    [{ type: 'error' }, 'error'],
  ];
  let seed = 7;
  for (let round = 0; round < 20; round++) {
    const order = cases.map((c) => [c, (seed = (seed * 48271) % 2147483647)]).sort((x, y) => x[1] - y[1]);
    for (const [[c, want]] of order) {
      assert.equal(chunkKind(c), want, JSON.stringify(c));
      assert.equal(chunkKind(c), want, JSON.stringify(c));
    }
  }
});

test('a sync iterable (an array) works too', async () => {
  const r = new Router(['a']);
  const got = await collect(r.stream(() => [chunk('x'), chunk('', 'stop')]));
  assert.equal(got.length, 2);
  assert.equal(r.view('a').window.successes, 1);
});

test('stream paces a provider from the rate-limit headers of every answer, success or failure', async () => {
  const r = new Router(['a', 'b']);
  const limits = (remaining) =>
    new Headers({
      'x-ratelimit-limit-requests': '100',
      'x-ratelimit-remaining-requests': String(remaining),
      'x-ratelimit-reset-requests': '30s',
    });
  // A stream object as the SDKs return it: async-iterable, with the answer's `response.headers`.
  const limited = (remaining) => ({
    response: { headers: limits(remaining) },
    async *[Symbol.asyncIterator]() {
      yield chunk('ok');
      yield chunk('', 'stop');
    },
  });
  assert.equal(textOf(await collect(r.stream(() => limited(0)))), 'ok');
  assert.deepEqual(r.drainEvents().filter((e) => e.kind === 'paced').map((e) => [e.provider, e.headroom]), [['a', 0]]);
  const calls = [];
  await collect(r.stream(({ provider }) => (calls.push(provider), limited(50))));
  assert.deepEqual(calls, ['b']);
  // An error's headers count too: every attempt answers 503 with 5 of 100 left.
  const failure = Object.assign(new Error('overloaded'), { status: 503, headers: limits(5) });
  await assert.rejects(
    collect(
      r.stream(() => {
        throw failure;
      }),
    ),
    AllProvidersFailedError,
  );
  assert.deepEqual(r.drainEvents().filter((e) => e.kind === 'paced').map((e) => [e.provider, e.headroom]), [['b', 0.05]]);
});
