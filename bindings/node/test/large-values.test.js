'use strict';
// The 2^53 rule: every number the engine hands to JavaScript that would exceed 2^53 − 1 (a
// deadline after a huge open or throttle duration, a retry hint) is clamped to
// Number.MAX_SAFE_INTEGER, on every output path; and a clamped value is a valid `nowMs` again.

const test = require('node:test');
const assert = require('node:assert/strict');
const { Router, UnavailableError, AllProvidersFailedError, parseRetryAfter, classifyHttp } = require('failover-core');

const MAX = Number.MAX_SAFE_INTEGER;
const HUGE = 2n ** 60n;
const policy = {
  consecutive_failures: 1,
  open_jitter: 0,
  open_base_ms: HUGE,
  open_max_ms: HUGE,
  throttle_base_ms: HUGE,
  throttle_max_ms: HUGE,
  max_retry_after_ms: HUGE,
};
const T0 = MAX - 1000;

test('deadlines beyond 2^53 read as Number.MAX_SAFE_INTEGER in views, events and pollTimeout', () => {
  const r = new Router(['a', 'b'], policy);
  r.record(r.pick(T0), 'server_error', T0); // a opens until T0 + 2^60
  const b = r.pick(T0);
  assert.equal(b.provider, 'b');
  r.record(b, { outcome: 'rate_limited', retry_after_ms: MAX }, T0); // b throttled until T0 + MAX
  const [opened, throttled] = r.drainEvents();
  assert.equal(opened.kind, 'opened');
  assert.equal(opened.until_ms, MAX);
  assert.equal(throttled.kind, 'throttled');
  assert.equal(throttled.until_ms, MAX);
  const [va, vb] = r.views();
  assert.equal(va.open_until_ms, MAX);
  assert.equal(va.next_transition_ms, MAX);
  assert.equal(vb.throttled_until_ms, MAX);
  assert.equal(vb.next_transition_ms, MAX);
  assert.equal(r.pollTimeout(), MAX);
  // A clamped deadline is a valid input.
  r.handleTimeout(r.pollTimeout());
  assert.equal(r.now, MAX);
  assert.equal(r.invariantViolation(), null);
});

test('retry hints beyond 2^53 are clamped: degraded tickets, UnavailableError, router.call', async () => {
  const soonest = new Router(['a'], policy);
  soonest.record(soonest.pick(T0), 'server_error', T0);
  const t = soonest.pick(T0);
  assert.equal(t.degraded, true);
  assert.equal(t.retry_after_ms, MAX);
  assert.equal(t.issued_at_ms, T0);

  const fail = new Router(['a'], { ...policy, when_all_down: 'fail' });
  fail.record(fail.pick(T0), 'server_error', T0);
  assert.throws(() => fail.pick(T0), (e) => e instanceof UnavailableError && e.retry_after_ms === MAX);
  await assert.rejects(fail.call(async () => 1), (e) => e instanceof AllProvidersFailedError && e.retry_after_ms === MAX);
});

test('Retry-After values beyond 2^53 ms are clamped', () => {
  assert.equal(parseRetryAfter('99999999999999999999'), MAX);
  assert.equal(classifyHttp(429, '9007199254740993').retry_after_ms, MAX);
});
