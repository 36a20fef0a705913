'use strict';
// The public API: construction and its errors, timestamps, tickets, views, events, panics.

const test = require('node:test');
const assert = require('node:assert/strict');
const pkg = require('./package.js');
const fc = require('failover-core');
const native = pkg.load('native.js');

const { Router, ConfigError, UnavailableError, InternalError } = fc;

test('require and the package name give the same module', () => {
  assert.equal(pkg.load('index.js'), fc);
  assert.equal(typeof fc.Router, 'function');
});

test('a router picks the primary first and records outcomes', () => {
  const r = new Router(['primary', 'secondary']);
  assert.deepEqual(r.providers, ['primary', 'secondary']);
  const t = r.pick(1000);
  assert.equal(t.provider, 'primary');
  assert.equal(t.kind, 'request');
  assert.equal(t.degraded, false);
  assert.equal(t.retry_after_ms, null);
  assert.equal(t.issued_at_ms, 1000);
  assert.equal(t.isProbe, false);
  assert.equal(r.record(t, { outcome: 'success', latency_ms: 850 }, 1850), 'accepted');
  assert.equal(r.view('primary').window.successes, 1);
  assert.equal(r.now, 1850);
  assert.deepEqual(JSON.parse(JSON.stringify(t)), {
    provider: 'primary',
    kind: 'request',
    degraded: false,
    retry_after_ms: null,
    issued_at_ms: 1000,
    generation: 0,
    probe_seq: 0,
  });
});

test('policy errors are ConfigError with the core code and message', () => {
  const cases = [
    [['a'], { opne_jitter: 0 }, 'unknown_field', 'unknown policy field `opne_jitter`'],
    [['a'], { min_volume: 'x' }, 'wrong_type', '`min_volume` takes a non-negative integer, got a string'],
    [['a'], { seed: [1] }, 'wrong_type', '`seed` takes a non-negative integer, got a list'],
    [['a'], { error_rate_threshold: 1.5 }, 'threshold_out_of_range', '`error_rate_threshold` must be a fraction in (0, 1]'],
    [['a'], { bucket_ms: 0 }, 'zero_duration', undefined],
    [['a'], { min_volume: -1 }, 'out_of_range', undefined],
    [['a'], { window_ms: 1500 }, 'window_not_multiple_of_bucket', undefined],
    [['a'], { window_ms: 600_000 }, 'window_too_long', undefined],
    [['a'], { open_multiplier: 0.5 }, 'multiplier_out_of_range', undefined],
    [['a'], { probe_mode: 'sometimes' }, 'invalid_value', '`probe_mode` must be "requests" or "health_checks"'],
    [['a'], { ramp: [] }, 'empty_ramp', undefined],
    [['a'], { ramp: [{ share: 0.5, dwell_ms: 10 }, { share: 0.25, dwell_ms: 10 }, { share: 1, dwell_ms: 0 }] }, 'ramp_not_increasing', undefined],
    [['a'], { ramp: [{ share: 0.5 }] }, 'wrong_type', undefined],
    [['a'], { ramp: 'fast' }, 'wrong_type', undefined],
    [['a'], { min_volume: [1] }, 'wrong_type', undefined],
    [['a'], 'strict', 'wrong_type', undefined],
    [[], undefined, 'no_providers', 'at least one provider is needed'],
    [['a', 'a'], undefined, 'duplicate_name', 'provider name `a` is given twice'],
    [[''], undefined, 'empty_name', undefined],
    [['x'.repeat(65)], undefined, 'name_too_long', undefined],
    [Array.from({ length: 17 }, (_, i) => `p${i}`), undefined, 'too_many_providers', '17 providers given but this router holds at most 16'],
  ];
  for (const [providers, policy, code, message] of cases) {
    assert.throws(
      () => new Router(providers, policy),
      (e) => {
        assert.ok(e instanceof ConfigError, `${code}: ${e}`);
        assert.ok(e instanceof fc.FailoverError);
        assert.ok(e instanceof Error);
        assert.equal(e.name, 'ConfigError');
        assert.equal(e.code, code);
        if (message !== undefined) assert.equal(e.message, message);
        if (code === 'wrong_type' && policy !== null && typeof policy === 'object' && !Array.isArray(policy)) assert.equal(e.field, Object.keys(policy)[0]);
        if (code === 'duplicate_name' || code === 'no_providers') assert.equal(e.field, null);
        return true;
      },
    );
  }
});

test('policy values: defaults, null disables, bigint for big integers, undefined is skipped', () => {
  new Router(['a'], { consecutive_failures: null, error_rate_threshold: null, latency_factor: undefined });
  new Router(['a'], { seed: 18446744073709551615n, open_jitter: 0.2 });
  assert.throws(() => new Router(['a'], { seed: 18446744073709551616n }), (e) => e.code === 'out_of_range');
  new Router(['a'], null);
  new Router(['a'], {});
  // Integral floats are integers, as JSON `1.0` would be accepted for an integer field.
  new Router(['a'], { min_volume: 5.0, latency_factor: 2 });
  assert.throws(() => new Router(['a'], { min_volume: 5.5 }), (e) => e.code === 'wrong_type');
  assert.throws(() => new Router(['a'], { latency_quantile: NaN }), (e) => e.code === 'threshold_out_of_range');
});

test('the first error reported does not depend on key order', () => {
  const messages = [
    { zzz: 1, aaa: 2 },
    { aaa: 2, zzz: 1 },
  ].map((p) => {
    try {
      new Router(['a'], p);
      return null;
    } catch (e) {
      return e.message;
    }
  });
  assert.deepEqual(messages, ['unknown policy field `aaa`', 'unknown policy field `aaa`']);
});

test('bad provider lists are TypeErrors naming the argument', () => {
  assert.throws(() => new Router('a'), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: /`providers`/ });
  assert.throws(() => new Router(['a', 2]), { name: 'TypeError', message: /`providers\[1\]`/ });
  assert.throws(() => new Router(['a'], undefined, 5), { name: 'TypeError', message: /`options`/ });
  assert.throws(() => new Router(['a'], undefined, { clock: 5 }), { name: 'TypeError', message: /`options.clock`/ });
});

test('timestamps: integers 0..2^53-1 only, RangeError or TypeError naming nowMs', () => {
  const r = new Router(['a', 'b']);
  const t = r.pick(0);
  const calls = {
    pick: (v) => r.pick(v),
    pickOptions: (v) => r.pick({ nowMs: v }),
    record: (v) => r.record(t, 'success', v),
    observe: (v) => r.observe('a', 'success', v),
    handleTimeout: (v) => r.handleTimeout(v),
    pollAction: (v) => r.pollAction(v),
  };
  for (const [name, f] of Object.entries(calls)) {
    for (const bad of [-1, 1.5, NaN, Infinity, -Infinity, 2 ** 53, 2 ** 53 + 2, 1e300, -0.5]) {
      assert.throws(() => f(bad), (e) => e instanceof RangeError && e.code === 'ERR_OUT_OF_RANGE' && /`nowMs`/.test(e.message), `${name}(${bad})`);
    }
    for (const bad of ['5', 5n, {}, true]) {
      if (name === 'pick' && typeof bad === 'object') continue; // pick({}) is the options form
      assert.throws(() => f(bad), (e) => e instanceof TypeError && /`nowMs`/.test(e.message), `${name}(${String(bad)})`);
    }
    f(Number.MAX_SAFE_INTEGER);
  }
  assert.equal(r.invariantViolation(), null);
});

test('without nowMs the monotonic clock is used; a custom clock replaces it', () => {
  const before = fc.monotonicNowMs();
  const t = new Router(['a']).pick();
  const after = fc.monotonicNowMs();
  assert.ok(Number.isSafeInteger(t.issued_at_ms));
  assert.ok(t.issued_at_ms >= before && t.issued_at_ms <= after);
  let now = 42;
  const r = new Router(['a'], undefined, { clock: () => now });
  assert.equal(r.pick().issued_at_ms, 42);
  now = 50;
  r.handleTimeout();
  assert.equal(r.now, 50);
  now = 1.5;
  assert.throws(() => r.pick(), RangeError);
});

test('time going backwards is clamped to the latest time seen', () => {
  const r = new Router(['a']);
  r.pick(1000);
  assert.equal(r.pick(10).issued_at_ms, 1000);
});

test('record checks its ticket and outcome', () => {
  const r = new Router(['a', 'b']);
  const other = new Router(['a', 'b']);
  const t = r.pick(0);
  assert.throws(() => r.record({ provider: 'a', kind: 'request', generation: 0, probe_seq: 0 }, 'success', 1), {
    name: 'TypeError',
    message: /`ticket`/,
  });
  assert.throws(() => r.record(null, 'success', 1), TypeError);
  assert.throws(() => other.record(t, 'success', 1), { name: 'TypeError', message: /another router/ });
  assert.throws(() => r.record(t, 'great', 1), { name: 'RangeError', code: 'ERR_INVALID_ARG_VALUE', message: /`outcome`/ });
  assert.throws(() => r.record(t, 7, 1), { name: 'TypeError', message: /`outcome`/ });
  assert.throws(() => r.record(t, { outcome: 'success', latency_ms: -5 }, 1), { name: 'RangeError', message: /`outcome.latency_ms`/ });
  assert.throws(() => r.record(t, { outcome: 'success', retry_after_ms: 1.5 }, 1), { name: 'RangeError', message: /`outcome.retry_after_ms`/ });
  assert.equal(r.record(t, { outcome: 'success', latency_ms: 12.4 }, 1), 'accepted');
  assert.equal(r.view('a').latency_ms !== null, true);
});

test('a ticket from before a trip is stale', () => {
  const r = new Router(['a', 'b'], { consecutive_failures: 1, open_jitter: 0 });
  const early = r.pick(0);
  const t = r.pick(0);
  assert.equal(r.record(t, 'server_error', 1), 'accepted');
  assert.equal(r.view('a').state, 'open');
  assert.equal(r.record(early, 'success', 2), 'stale');
});

test('observe: by name, unknown names are unknown_provider', () => {
  const r = new Router(['a', 'b']);
  assert.equal(r.observe('b', { outcome: 'timeout', latency_ms: 30000 }, 5), 'accepted');
  assert.equal(r.view('b').window.timeouts, 1);
  assert.equal(r.observe('zzz', 'success', 7), 'unknown_provider');
  assert.equal(r.now, 7);
  assert.throws(() => r.observe(1, 'success', 8), TypeError);
});

test('pick options: tried names are skipped, unknown names are a RangeError, keys are sticky', () => {
  const r = new Router(['a', 'b', 'c']);
  assert.equal(r.pick({ nowMs: 0, tried: ['a'] }).provider, 'b');
  assert.equal(r.pick({ nowMs: 0, tried: new Set(['a', 'b']) }).provider, 'c');
  assert.throws(() => r.pick({ nowMs: 0, tried: ['zzz'] }), { name: 'RangeError', message: /options.tried/ });
  assert.throws(() => r.pick({ nowMs: 0, tried: 'a' }), TypeError);
  assert.throws(() => r.pick({ nowMs: 0, key: 5 }), { name: 'TypeError', message: /options.key/ });
  assert.throws(() => r.pick('now'), TypeError);
  assert.equal(r.pick({ nowMs: 0, key: 'session-1' }).provider, 'a');
  // Every provider tried: Unavailable with a hint of 0 (one could take traffic now).
  assert.throws(
    () => r.pick({ nowMs: 0, tried: ['a', 'b', 'c'] }),
    (e) => e instanceof UnavailableError && e.code === 'unavailable' && e.retry_after_ms === 0,
  );
});

test('when every provider is down: degraded ticket (soonest) or UnavailableError (fail)', () => {
  const soonest = new Router(['a'], { consecutive_failures: 1, open_jitter: 0 });
  soonest.record(soonest.pick(0), 'server_error', 0);
  const t = soonest.pick(10);
  assert.equal(t.degraded, true);
  assert.equal(t.retry_after_ms, 29_990);
  const fail = new Router(['a'], { consecutive_failures: 1, open_jitter: 0, when_all_down: 'fail' });
  fail.record(fail.pick(0), 'server_error', 0);
  assert.throws(() => fail.pick(10), (e) => e instanceof UnavailableError && e.retry_after_ms === 29_990 && /retry after 29990 ms/.test(e.message));
});

test('events are plain objects in the scenario shape; views of unknown names are null', () => {
  const r = new Router(['a', 'b'], { consecutive_failures: 2, open_jitter: 0 });
  r.record(r.pick(0), 'server_error', 1);
  assert.equal(r.pollEvent(), null);
  r.record(r.pick(2), 'connection_error', 3);
  assert.equal(r.pendingEvents, 1);
  assert.deepEqual(r.pollEvent(), {
    at_ms: 3,
    provider: 'a',
    kind: 'opened',
    trigger: 'consecutive_failures',
    observed: 2,
    threshold: 2,
    volume: 2,
    outcome: 'connection_error',
    from: 'healthy',
    until_ms: 30003,
    strikes: 1,
    description: '2 connection errors in a row (limit 2) → open 30 s (strike 1)',
  });
  assert.deepEqual(r.drainEvents(), []);
  assert.equal(r.droppedEvents, 0);
  assert.equal(r.pollTimeout(), 30003);
  assert.equal(r.view('nope'), null);
  assert.throws(() => r.view(0), TypeError);
  const views = r.views();
  assert.deepEqual(views.map((v) => [v.name, v.state, v.share]), [['a', 'open', 0], ['b', 'healthy', 1]]);
  r.handleTimeout(30003);
  assert.deepEqual(r.drainEvents().map((e) => e.kind), ['probing']);
});

test('health checks: pollAction hands out health-check tickets', () => {
  const r = new Router(['a', 'b'], { consecutive_failures: 1, open_jitter: 0, probe_mode: 'health_checks', probe_successes: 1 });
  r.record(r.pick(0), 'server_error', 0);
  assert.equal(r.pollAction(10), null);
  const hc = r.pollAction(30_000);
  assert.equal(hc.kind, 'health_check');
  assert.equal(hc.provider, 'a');
  assert.equal(hc.isProbe, true);
  assert.equal(r.pollAction(30_000), null);
  assert.equal(r.record(hc, { outcome: 'success', latency_ms: 100 }, 30_100), 'accepted');
  assert.equal(r.view('a').state, 'ramping');
});

test('a Rust panic becomes an InternalError and never crashes the process', () => {
  const n = new native.NativeRouter(['a', 'b'], null);
  assert.throws(() => n._panicForTest(), (e) => e instanceof InternalError && e.code === 'internal_panic' && /deliberate panic/.test(e.message));
  // The router is closed for good: its state may be half-updated.
  assert.throws(() => n.view(0), (e) => e instanceof InternalError && e.code === 'router_poisoned');
  assert.throws(() => n.handleTimeout(5), (e) => e.code === 'router_poisoned');
  // The fast path reports it too.
  const io = native.ioBuffer();
  const L = native.ioLayout();
  io[L.router] = n.slot;
  io[L.now] = 5;
  io[L.tried] = 0;
  native.hotPick();
  assert.equal(io[L.status], -1);
  assert.throws(() => native.throwPending(), (e) => e.code === 'router_poisoned');
  // Other routers are untouched.
  const r = new Router(['a']);
  assert.equal(r.pick(1).provider, 'a');
});

test('the raw native module validates its arguments too', () => {
  const n = new native.NativeRouter(['a'], null);
  assert.throws(() => n.handleTimeout(-2), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE', message: /`nowMs`/ });
  assert.throws(() => n.pickKeyed(1.5, null, 0), RangeError);
  assert.throws(() => n.observe(0, 99, 0, -1, 0), { name: 'RangeError', message: /`outcome`/ });
  assert.throws(() => native.classifyStatusCode(70000), { name: 'RangeError', message: /`status`/ });
  const io = native.ioBuffer();
  const L = native.ioLayout();
  io[L.router] = 1e9; // no such router
  native.hotPick();
  assert.equal(io[L.status], -1);
  assert.throws(() => native.throwPending(), (e) => e.code === 'router_closed');
  io[L.router] = n.slot;
  io[L.now] = NaN;
  native.hotRecord();
  assert.equal(io[L.status], -1);
  assert.throws(() => native.throwPending(), RangeError);
});

test('routers are freed when collected', { skip: typeof global.gc !== 'function' && 'run with --expose-gc' }, async () => {
  const slots = (() => Array.from({ length: 50 }, () => new native.NativeRouter(['a', 'b'], null).slot))();
  const high = Math.max(...slots);
  for (let i = 0; i < 5; i++) {
    global.gc();
    await new Promise((r) => setImmediate(r));
  }
  // Their slots are free again and get reused.
  const again = new native.NativeRouter(['a'], null);
  assert.ok(again.slot <= high, `slot ${again.slot} > ${high}`);
  assert.equal(new Router(['a']).pick(1).provider, 'a');
});
