'use strict';
// The native `classify(facts)`: the core's one classification table (the golden rows are in
// fixtures/scenarios/classification-table.json, replayed by scenario-runner.js).
const test = require('node:test');
const assert = require('node:assert/strict');
const pkg = require('./package.js');
const native = pkg.load('native.js');

test('classify(facts) is the core table', () => {
  assert.deepEqual(native.classify({}), { outcome: 'cancelled', retry_after_ms: null });
  assert.deepEqual(native.classify({ status: 401 }), { outcome: 'credentials_rejected', retry_after_ms: null });
  assert.deepEqual(native.classify({ status: 429, error_code: 'insufficient_quota' }), { outcome: 'quota_exhausted', retry_after_ms: null });
  assert.deepEqual(native.classify({ status: 429, error_type: 'rate_limit_error', retry_after: '3' }), { outcome: 'rate_limited', retry_after_ms: 3000 });
  assert.deepEqual(native.classify({ status: 200, transport: 'timeout' }), { outcome: 'timeout', retry_after_ms: null });
  assert.deepEqual(native.classify({ status: 400, message: 'maximum context length is 8192' }), { outcome: 'refused', retry_after_ms: null });
  assert.deepEqual(native.classify({ status: 429, retry_after_ms: '1500.2', retry_after: '9' }), { outcome: 'rate_limited', retry_after_ms: 1501 });
  assert.deepEqual(native.classify({ status: 429, error_code: null, retry_after: null }), { outcome: 'rate_limited', retry_after_ms: null });
  assert.deepEqual(native.transports(), ['timeout', 'connection', 'malformed', 'protocol', 'aborted']);
});

test('classify(facts) refuses bad facts', () => {
  assert.throws(() => native.classify({ status: 65536 }), { name: 'RangeError', message: /status/ });
  assert.throws(() => native.classify({ status: 1.5 }), { name: 'RangeError', message: /status/ });
  assert.throws(() => native.classify({ transport: 'socket' }), { name: 'RangeError', message: /transport/ });
  assert.throws(() => native.classify({ now_unix_ms: -1 }), { name: 'RangeError', message: /now_unix_ms/ });
  assert.throws(() => native.classify({ status: '429' }));
  assert.throws(() => native.classify({ error_code: 5 }));
});

test('headroom(headers, nowUnixMs) reads the rate-limit headers (golden rows: ratelimit-headers-table.json)', () => {
  const h = native.headroom([
    ['x-ratelimit-limit-requests', '60'],
    ['x-ratelimit-remaining-requests', '6'],
    ['x-ratelimit-reset-requests', '6m0s'],
    ['content-type', 'application/json'],
  ]);
  assert.deepEqual(h.requests, { limit: 60, remaining: 6, reset_in_ms: 360000 });
  assert.deepEqual(h.tokens, { limit: null, remaining: null, reset_in_ms: null });
  assert.equal(h.headroom_ppm, 100000);
  assert.equal(h.recognised, 3);
  const a = native.headroom([['anthropic-ratelimit-tokens-reset', '2024-04-16T23:00:00Z'], ['x-ratelimit-remaining-requests', '0']], 1713308399000);
  assert.equal(a.tokens.reset_in_ms, 1000);
  assert.equal(a.requests.remaining, null);
  assert.equal(native.headroom([]).headroom_ppm, null);
});

test('headroom refuses what is not header pairs', () => {
  assert.throws(() => native.headroom([['a']]), { name: 'RangeError', message: /headers/ });
  assert.throws(() => native.headroom([['a', 'b', 'c']]), { name: 'RangeError', message: /headers/ });
  assert.throws(() => native.headroom([], -1), { name: 'RangeError', message: /nowUnixMs/ });
  assert.throws(() => native.headroom([['a', 1]]));
  assert.throws(() => native.headroom('x'));
});
