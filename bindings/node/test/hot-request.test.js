'use strict';
// The request engine's fast path (src/hot_request.rs, lib/io.js): the same decisions as the
// object-returning NativeRequest, handles that go stale once a request finishes, and no request
// left behind by router.call.

const test = require('node:test');
const assert = require('node:assert/strict');
const pkg = require('./package.js');
const { Router } = require('failover-core');
const native = pkg.load('native.js');
const io = pkg.load('lib/io.js');
const { nativeRouter } = pkg.load('lib/router.js');

const names = ['a', 'b', 'c', 'd'];
const SUCCESS = io.OUTCOME_CODE.get('success');
const SERVER_ERROR = io.OUTCOME_CODE.get('server_error');

test('hot requests: steps as numbers match NativeRequest step by step (keyed, with options)', () => {
  const fast = nativeRouter(new Router(names, { open_jitter: 0 }));
  const twin = nativeRouter(new Router(names, { open_jitter: 0 }));
  for (const key of ['user-1', 'user-2', 'conversation-9', null]) {
    const o = { key, max_attempts: 3, deadline_ms: 5_000, max_wait_ms: null };
    const h = io.begin(fast.slot, 100, 100, o);
    const req = new native.NativeRequest(twin, o, 100);
    let now = 100;
    for (;;) {
      const step = req.poll(twin, now);
      assert.deepEqual(io.stepObject(names), step);
      if (step.done !== undefined) {
        assert.equal(io.live(), false);
        break;
      }
      assert.ok(step.attempt, JSON.stringify(step));
      now += 10;
      req.handleOutcome(twin, 'server_error', null, now);
      io.outcome(h, SERVER_ERROR, -1, now, now);
      const [rep] = req.lastReport();
      assert.equal(io.reportLatency(), rep.latency_ms);
    }
    // A finished request's handle is stale.
    assert.throws(() => io.poll(h, now), { name: 'RangeError' });
    io.free(h); // idempotent
  }
});

test('hot requests: a success finishes and frees; the handle is reused with a new generation', () => {
  const n = nativeRouter(new Router(names));
  const h1 = io.begin(n.slot, io.CLOCK, io.CLOCK, null);
  assert.equal(io.step(), io.STEP_ATTEMPT);
  assert.equal(io.stepNumber(), 1);
  io.outcome(h1, SUCCESS, -1, io.CLOCK, io.NO_POLL);
  assert.equal(io.live(), false);
  assert.equal(io.step(), io.STEP_DONE);
  assert.equal(io.finishCode(), io.FINISH_SUCCESS);
  const h2 = io.begin(n.slot, io.CLOCK, io.NO_POLL, null);
  assert.notEqual(h2, h1);
  assert.throws(() => io.outcome(h1, SUCCESS, -1, io.CLOCK, io.NO_POLL), { name: 'RangeError' });
  // No attempt in flight yet: the engine refuses the report and the request stays live.
  assert.throws(() => io.outcome(h2, SUCCESS, -1, io.CLOCK, io.NO_POLL), { code: 'no_attempt' });
  io.poll(h2, io.CLOCK);
  assert.equal(io.live(), true);
  io.cancel(h2, io.CLOCK);
  assert.equal(io.live(), false);
  assert.equal(io.finishName(), 'cancelled');
});

test('hot requests: router.call frees every request it starts', async () => {
  const router = new Router(['p', 'q'], { open_jitter: 0 });
  const n = nativeRouter(router);
  const before = io.begin(n.slot, io.CLOCK, io.NO_POLL, null);
  io.free(before);
  for (let i = 0; i < 50; i++) {
    await router.call(async () => i);
    await router.call(async ({ provider }) => {
      if (provider === 'p') throw Object.assign(new Error('503'), { status: 503 });
      return provider;
    }).catch(() => {});
    await router.call(() => {
      throw new TypeError('a bug');
    }).catch(() => {});
  }
  // Every request was freed, so the slab's first free index comes back.
  const after = io.begin(n.slot, io.CLOCK, io.NO_POLL, null);
  assert.equal(after % 2 ** 24, before % 2 ** 24);
  io.free(after);
});
