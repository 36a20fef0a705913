'use strict';
// One test per file in fixtures/requests, replayed through the native request engine
// (`NativeRequest`, internal until the call and stream drivers are built on it) with the Rust
// runner's semantics (see scenario-runner.js); each step's compact JSON line is also compared,
// byte for byte, with the Rust runner's `observe` example when FAILOVER_RUST_OBSERVE names it
// (test.sh builds it). FAILOVER_SCENARIO_DUMP=1 prints the lines. Then the native class's own
// contract: errors, argument checks, one router per request.

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const fs = require('node:fs');
const { execFileSync } = require('node:child_process');
const runner = require('./scenario-runner.js');
const pkg = require('./package.js');
const fc = require('failover-core');
const native = pkg.load('native.js');
const { nativeRouter } = pkg.load('lib/router.js');

const requests = runner.loadDir(runner.REQUEST_DIR);
const rustObserve = process.env.FAILOVER_RUST_OBSERVE;

test('the request scenario suite is found in the repository and is not empty', () => {
  assert.ok(fs.existsSync(runner.REQUEST_DIR), runner.REQUEST_DIR);
  assert.ok(requests.length >= 1);
  for (const s of requests) {
    assert.equal(s.doc.name, path.basename(s.file, '.json'), `${s.file}: \`name\` must match the file name`);
  }
});

for (const s of requests) {
  const name = path.basename(s.file, '.json');
  const reason = runner.skipReason(s);
  test(`request scenario ${name}`, { skip: reason ?? false }, () => {
    runner.check(s);
  });
  test(
    `request scenario ${name}: the same lines as the Rust runner`,
    { skip: reason ?? (rustObserve ? false : 'set FAILOVER_RUST_OBSERVE to the Rust `observe` example') },
    () => {
      const rust = execFileSync(rustObserve, [s.file], { encoding: 'utf8' }).split('\n').filter((l) => l !== '');
      const js = runner.observe(s).map(runner.line);
      assert.equal(js.length, rust.length, `${js.length} JS lines, ${rust.length} Rust lines`);
      js.forEach((l, i) => assert.equal(l, rust[i], `step ${i}`));
    },
  );
}

/** A public router and its native side, with a request started on it at `at`. */
function start(providers, options, at, policy) {
  const r = new fc.Router(providers, policy);
  const n = nativeRouter(r);
  return { r, n, req: new native.NativeRequest(n, options, at) };
}

test('a request runs to its finish in the scenario shapes', () => {
  const { n, req } = start(['a', 'b'], undefined, 0);
  assert.equal(req.deadlineMs(), 120000);
  assert.equal(req.attempts(), 0);
  assert.deepEqual(req.poll(n, 0), {
    attempt: { provider: 'a', kind: 'request', number: 1, deadline_ms: 60000, timeout_ms: 60000, idle_ms: null, last: false },
  });
  assert.deepEqual(req.poll(n, 5), { in_flight: { deadline_ms: 60000 } });
  assert.deepEqual(req.inFlight(), { provider: 'a', kind: 'request', degraded: false, retry_after_ms: null });
  assert.deepEqual(req.lastReport(), [null, 0]);
  req.handleOutcome(n, 'server_error', null, 100);
  assert.deepEqual(req.lastReport(), [{ provider: 'a', outcome: 'server_error', latency_ms: 100, result: 'accepted' }, 1]);
  assert.equal(req.poll(n, 100).attempt.provider, 'b');
  req.handleOutcome(n, 'success', null, 150);
  assert.deepEqual(req.finish(), { finish: 'success', provider: 'b' });
  assert.deepEqual(req.poll(n, 150), { done: { finish: 'success', provider: 'b' } });
  assert.equal(req.attempts(), 2);
});

test('refused inputs throw a RequestError with the core name as code', () => {
  const { n, req } = start(['a'], {}, 0);
  const refused = (code) => (e) => e instanceof Error && e.name === 'RequestError' && e.code === code;
  assert.throws(() => req.handleOutcome(n, 'success', null, 0), refused('no_attempt'));
  assert.throws(() => req.handleFirstToken(0), refused('not_streamed'));
  req.handleCancel(n, 1);
  assert.deepEqual(req.finish(), { finish: 'cancelled' });
  assert.throws(() => req.handleChunk(2), (e) => refused('finished')(e) && e.message === 'the request is over');
});

test('a request is driven by its own router only', () => {
  const { req } = start(['a'], {}, 0);
  const other = nativeRouter(new fc.Router(['a']));
  assert.throws(() => req.poll(other, 0), (e) => e instanceof TypeError && e.code === 'ERR_INVALID_ARG_VALUE');
});

test('request arguments follow the timestamp rules', () => {
  const r = new fc.Router(['a', 'b'], { same_provider_retries: 0 });
  const n = nativeRouter(r);
  const range = (e) => e instanceof RangeError && e.code === 'ERR_OUT_OF_RANGE';
  assert.throws(() => new native.NativeRequest(n, { max_attempts: 256 }, 0), range);
  assert.throws(() => new native.NativeRequest(n, { deadline_ms: 1.5 }, 0), range);
  assert.throws(() => new native.NativeRequest(n, {}, 2 ** 53), range);
  assert.throws(() => new native.NativeRequest(n, {}, -2), range);
  assert.throws(() => new native.NativeRequest(n, {}, Number.NaN), range);
  const req = new native.NativeRequest(n, { max_attempts: 1, deadline_ms: 500, stream: true, key: 'conv', max_wait_ms: null }, 10);
  assert.equal(req.deadlineMs(), 500);
  const { attempt } = req.poll(n, 10);
  // The only attempt the budget allows gets all the remaining time.
  assert.equal(attempt.last, true);
  assert.equal(attempt.deadline_ms, 500);
  assert.throws(() => req.poll(n, 0.5), range);
  assert.throws(() => req.handleOutcome(n, 'fine', null, 20), range);
  assert.throws(() => req.handleOutcome(n, 'server_error', -5, 20), range);
  req.handleFirstToken(20);
  req.handleEnd(n, true, 30);
  assert.deepEqual(req.lastReport()[0], { provider: 'a', outcome: 'success', latency_ms: 10, result: 'accepted' });
});
