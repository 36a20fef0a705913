'use strict';
// Events pushed to `router.on(kind, fn)` listeners and the opt-in logger, described by the core
// (issue 15).

const test = require('node:test');
const assert = require('node:assert/strict');
const { Router } = require('failover-core');

class APIError extends Error {
  constructor(status) {
    super(`${status} status code`);
    this.status = status;
  }
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

async function failPrimary(attempt) {
  if (attempt.provider === 'a') throw new APIError(503);
  return 'ok';
}

test('an event carries the core description', () => {
  const r = new Router(['a', 'b'], { consecutive_failures: 3, open_jitter: 0 });
  for (let t = 0; t < 3; t++) r.observe('a', 'server_error', 1000 + t);
  const [e] = r.drainEvents();
  assert.equal(e.kind, 'opened');
  assert.equal(e.description, '3 server errors in a row (limit 3) → open 30 s (strike 1)');
});

test('call pushes its events, with wall-clock time on the router clock', async () => {
  const got = [];
  const all = [];
  const r = new Router(['a', 'b'], { consecutive_failures: 2 });
  r.on('opened', (e) => got.push(e)).on('event', (e) => all.push(e));
  const before = Date.now();
  assert.equal(await r.call(failPrimary), 'ok');
  assert.equal(await r.call(failPrimary), 'ok');
  const after = Date.now();
  await tick();
  assert.deepEqual(got.map((e) => e.kind), ['opened']);
  assert.equal(all.length, 1);
  assert.match(got[0].description, /^2 server errors in a row \(limit 2\) → open/);
  assert.ok(got[0].unix_ms >= before - 5 && got[0].unix_ms <= after + 5, `${got[0].unix_ms}`);
  // The queue is independent: it still holds the event.
  assert.deepEqual(r.drainEvents().map((e) => e.kind), ['opened']);
});

test('no event is lost with 10,000 transitions', async () => {
  const got = [];
  const r = new Router(['a', 'b']);
  r.on('event', (e) => got.push(e));
  let t = 1000;
  for (let i = 0; i < 5000; i++) {
    r.observe('a', { outcome: 'rate_limited', retry_after_ms: 5 }, t); // throttled
    t += 10;
    r.handleTimeout(t); // unthrottled
  }
  await tick();
  assert.equal(got.length, 10000);
  assert.ok(got.every((e, i) => e.kind === (i % 2 === 0 ? 'throttled' : 'unthrottled')));
  assert.ok(got.every((e) => e.unix_ms === null), 'explicit timestamps: no wall-clock time');
  // Nobody drained the queue: it kept the newest 64 and counted the rest.
  assert.equal(r.pendingEvents, 64);
  assert.equal(r.droppedEvents, 10000 - 64);
  const kept = r.drainEvents();
  assert.equal(kept.length, 64);
  assert.equal(kept.at(-1).at_ms, got.at(-1).at_ms);
  assert.equal(kept.at(-1).kind, 'unthrottled');
});

test('pick and record on the fast path push events', async () => {
  const got = [];
  const r = new Router(['a', 'b'], { consecutive_failures: 1 });
  r.on('event', (e) => got.push(e.kind));
  const t = r.pick(1000);
  r.record(t, 'server_error', 1001);
  await tick();
  assert.deepEqual(got, ['opened']);
});

test('stream pushes its events', async () => {
  const got = [];
  const r = new Router(['a', 'b'], { consecutive_failures: 1 });
  r.on('opened', (e) => got.push(e.provider));
  const chunks = [];
  for await (const c of r.stream(async (attempt) => {
    if (attempt.provider === 'a') throw new APIError(503);
    return (async function* () {
      yield { choices: [{ delta: { content: 'hi' }, finish_reason: 'stop' }] };
    })();
  })) {
    chunks.push(c);
  }
  await tick();
  assert.equal(chunks.length, 1);
  assert.deepEqual(got, ['a']);
});

test('a listener may use the router, and one that throws goes to "error" listeners', async () => {
  const states = [];
  const errors = [];
  const r = new Router(['a', 'b'], { consecutive_failures: 1 });
  r.on('opened', (e) => states.push(r.view(e.provider).state));
  r.on('opened', () => {
    throw new Error('listener bug');
  });
  r.on('error', (err, e) => errors.push([err.message, e.kind]));
  assert.equal(await r.call(failPrimary), 'ok');
  await tick();
  assert.deepEqual(states, ['open']);
  assert.deepEqual(errors, [['listener bug', 'opened']]);
});

test('off removes a listener; logEvents logs through the emitter', async () => {
  const lines = [];
  const logger = { info: (l) => lines.push(['info', l]), debug: (l) => lines.push(['debug', l]) };
  const r = new Router(['a', 'b'], { consecutive_failures: 2, open_jitter: 0 });
  const seen = [];
  const fn = (e) => seen.push(e.kind);
  r.on('event', fn).off('event', fn);
  const stop = r.logEvents(logger, { debug: true });
  r.observe('a', 'server_error', 1000);
  r.observe('a', 'server_error', 1000);
  r.handleTimeout(31000);
  await tick();
  stop();
  r.observe('b', 'server_error', 31001);
  r.observe('b', 'server_error', 31001);
  await tick();
  assert.deepEqual(seen, []);
  assert.deepEqual(lines, [
    ['info', 'failover-core: a opened: 2 server errors in a row (limit 2) → open 30 s (strike 1)'],
    ['debug', 'failover-core: a probing: open period over: probing'],
  ]);
});

test('isolate, release and reset by hand', async () => {
  const got = [];
  const r = new Router(['a', 'b']);
  r.on('event', (e) => got.push([e.kind, e.provider]));
  assert.equal(r.isolate('a'), true);
  assert.equal(r.isolate('a'), false);
  assert.equal(r.isIsolated('a'), true);
  const v = r.view('a');
  assert.equal(v.isolated, true);
  assert.equal(v.share, 0);
  const called = [];
  assert.equal(await r.call(async (a) => called.push(a.provider)), 1);
  assert.deepEqual(called, ['b']);
  assert.equal(r.release('a'), true);
  assert.equal(r.reset('b'), true);
  assert.throws(() => r.isolate('zz'), RangeError);
  await tick();
  assert.deepEqual(got, [['isolated', 'a'], ['released', 'a'], ['reset', 'b']]);
});

test('the policy in force reads back and round-trips', () => {
  const r = new Router(['a', 'b'], { consecutive_failures: 4, error_rate_threshold: null });
  const p = r.policy();
  // Every field, in the core's order: the list the scenario policy-read-back.json pins.
  const { SCENARIO_DIR } = require('./scenario-runner.js');
  const pinned = JSON.parse(require('node:fs').readFileSync(require('node:path').join(SCENARIO_DIR, 'policy-read-back.json'), 'utf8'));
  assert.deepEqual(Object.keys(p), Object.keys(pinned.steps.find((s) => s.policy !== undefined).expect));
  assert.equal(p.consecutive_failures, 4);
  assert.equal(p.error_rate_threshold, null);
  assert.equal(p.when_all_down, 'soonest');
  assert.deepEqual(p.ramp.at(-1), { share: 1, dwell_ms: 0 });
  assert.deepEqual(new Router(['a'], p).policy(), p);
});
