'use strict';
// The native `classify(facts)`: the core's one classification table (the golden rows are in
// fixtures/scenarios/classification-table.json, replayed by scenario-runner.js).
const test = require('node:test');
const assert = require('node:assert/strict');
const native = require('../native.js');

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
