'use strict';
// Property tests (fast-check): misuse of the API never crashes or corrupts the engine, and
// router.call behaves exactly like the pick/record loop it stands for.

const test = require('node:test');
const assert = require('node:assert/strict');
const fcheck = require('fast-check');
const failover = require('failover-core');
const { loadDir } = require('./scenario-runner.js');

const { Router, ConfigError, UnavailableError, AllProvidersFailedError } = failover;

const RUNS = Number(process.env.FAILOVER_PROPERTY_RUNS ?? 200);

/** The repository's scenario files (FAILOVER_SCENARIO_DIR), parsed. */
const SCENARIOS = loadDir().map((s) => s.doc);

/** Every policy field, by the core's names: the read-back that policy-read-back.json pins (the
 * scenario suites compare it with the core's list, so a new field reaches these properties too). */
const FIELDS = Object.keys(
  SCENARIOS.find((s) => s.name === 'policy-read-back').steps.find((s) => s.policy !== undefined).expect,
);

/** The stable configuration error codes: each has its scenario (a `config-*` file's
 * `expect_error`, fixtures/README.md "Error codes"). */
const CODES = new Set(SCENARIOS.filter((s) => s.expect_error !== undefined).map((s) => s.expect_error));

const anyValue = fcheck.oneof(
  fcheck.anything(),
  fcheck.double(),
  fcheck.integer(),
  fcheck.bigInt(),
  fcheck.constantFrom(0, -1, 1.5, NaN, Infinity, 2 ** 53, Number.MAX_SAFE_INTEGER, '5', null, undefined, true, [], {}),
);

/** Only the errors a misuse may produce: bad input (TypeError/RangeError) or the core's refusal. */
function expectedFailure(e) {
  if (e instanceof ConfigError) return CODES.has(e.code);
  if (e instanceof UnavailableError) return e.code === 'unavailable' && Number.isFinite(e.retry_after_ms);
  return (e instanceof TypeError || e instanceof RangeError) && typeof e.code === 'string' && e.message.includes('`');
}

function attempt(f) {
  try {
    return { ok: true, value: f() };
  } catch (e) {
    assert.ok(expectedFailure(e), `unexpected ${e?.name}: ${e?.message} (${e?.code})`);
    return { ok: false, error: e };
  }
}

const validPolicyValue = fcheck.oneof(
  fcheck.integer({ min: -5, max: 200_000 }),
  fcheck.double({ min: -1, max: 5, noNaN: false }),
  fcheck.constantFrom(null, true, false, 'requests', 'health_checks', 'soonest', 'fail', 0, 1, 0.5, 1000, 60_000),
  fcheck.array(fcheck.record({ share: fcheck.double({ min: 0, max: 1.2 }), dwell_ms: fcheck.integer({ min: 0, max: 1000 }) }), { maxLength: 10 }),
);

test('any policy object either builds a router or is refused with a ConfigError code', () => {
  fcheck.assert(
    fcheck.property(
      fcheck.dictionary(fcheck.oneof(fcheck.constantFrom(...FIELDS), fcheck.string()), fcheck.oneof(validPolicyValue, anyValue), { maxKeys: 6 }),
      fcheck.array(fcheck.oneof(fcheck.constantFrom('a', 'b', 'c', ''), fcheck.string({ maxLength: 70 })), { maxLength: 18 }),
      (policy, providers) => {
        const r = attempt(() => new Router(providers, policy));
        if (r.ok) {
          assert.equal(r.value.invariantViolation(), null);
          assert.deepEqual([...r.value.providers], providers);
        }
      },
    ),
    { numRuns: RUNS * 2 },
  );
});

test('any argument to any method is accepted or refused with TypeError/RangeError; the engine stays consistent', () => {
  const methods = ['pick', 'pickOptions', 'record', 'recordObject', 'observe', 'handleTimeout', 'pollAction', 'view'];
  fcheck.assert(
    fcheck.property(
      fcheck.array(fcheck.tuple(fcheck.constantFrom(...methods), anyValue, anyValue), { minLength: 1, maxLength: 30 }),
      (ops) => {
        const r = new Router(['a', 'b'], { consecutive_failures: 2, open_jitter: 0 });
        const t = r.pick(0);
        for (const [m, x, y] of ops) {
          switch (m) {
            case 'pick': attempt(() => r.pick(x)); break;
            case 'pickOptions': attempt(() => r.pick({ nowMs: x, key: y, tried: Array.isArray(y) ? y : undefined })); break;
            case 'record': attempt(() => r.record(x, y, 5)); attempt(() => r.record(t, x, y)); break;
            case 'recordObject': attempt(() => r.record(t, { outcome: 'success', latency_ms: x, retry_after_ms: y }, 5)); break;
            case 'observe': attempt(() => r.observe(x, 'server_error', y)); attempt(() => r.observe('a', x, 5)); break;
            case 'handleTimeout': attempt(() => r.handleTimeout(x)); break;
            case 'pollAction': attempt(() => r.pollAction(x)); break;
            case 'view': attempt(() => r.view(x)); break;
          }
        }
        assert.equal(r.invariantViolation(), null);
        // Still usable afterwards.
        attempt(() => r.record(r.pick(Number.MAX_SAFE_INTEGER), 'success', Number.MAX_SAFE_INTEGER));
      },
    ),
    { numRuns: RUNS },
  );
});

const OUTCOMES = failover.OUTCOME_KINDS;

test('valid random traffic keeps every engine invariant and records every ticket', () => {
  const op = fcheck.oneof(
    fcheck.record({ kind: fcheck.constant('pick'), dt: fcheck.integer({ min: 0, max: 5_000 }), key: fcheck.option(fcheck.constantFrom('u1', 'u2', 'u3')) }),
    fcheck.record({ kind: fcheck.constant('record'), dt: fcheck.integer({ min: 0, max: 5_000 }), which: fcheck.nat(), outcome: fcheck.constantFrom(...OUTCOMES), latency: fcheck.integer({ min: 0, max: 60_000 }), retry: fcheck.option(fcheck.integer({ min: 0, max: 120_000 })) }),
    fcheck.record({ kind: fcheck.constant('tick'), dt: fcheck.integer({ min: 0, max: 200_000 }) }),
    fcheck.record({ kind: fcheck.constant('poll'), dt: fcheck.integer({ min: 0, max: 5_000 }) }),
  );
  fcheck.assert(
    fcheck.property(
      fcheck.constantFrom('requests', 'health_checks'),
      fcheck.integer({ min: 1, max: 4 }),
      fcheck.array(op, { maxLength: 120 }),
      (probeMode, n, ops) => {
        const names = ['p0', 'p1', 'p2', 'p3'].slice(0, n);
        const r = new Router(names, { probe_mode: probeMode, consecutive_failures: 2, open_base_ms: 1_000, open_jitter: 0, probe_successes: 1, ramp: [{ share: 0.5, dwell_ms: 2_000 }, { share: 1, dwell_ms: 0 }], ramp_min_samples: 1 });
        let now = 0;
        const open = [];
        for (const o of ops) {
          now += o.dt;
          if (o.kind === 'pick') {
            const res = attempt(() => r.pick({ nowMs: now, key: o.key ?? undefined }));
            if (res.ok) {
              assert.ok(names.includes(res.value.provider));
              open.push(res.value);
            }
          } else if (o.kind === 'record' && open.length > 0) {
            const [t] = open.splice(o.which % open.length, 1);
            const got = r.record(t, { outcome: o.outcome, latency_ms: o.latency, retry_after_ms: o.retry }, now);
            assert.ok(got === 'accepted' || got === 'stale', got);
          } else if (o.kind === 'tick') {
            r.handleTimeout(now);
            const d = r.pollTimeout();
            assert.ok(d === null || d >= r.now || probeMode === 'health_checks');
          } else if (o.kind === 'poll') {
            for (let t = r.pollAction(now); t !== null; t = r.pollAction(now)) {
              assert.equal(t.kind, 'health_check');
              open.push(t);
            }
          }
          const v = r.invariantViolation();
          assert.equal(v, null, v);
          for (const e of r.drainEvents()) assert.ok(names.includes(e.provider) && Number.isSafeInteger(e.at_ms));
        }
        for (const view of r.views()) assert.ok(view.share >= 0 && view.share <= 1);
      },
    ),
    { numRuns: RUNS },
  );
});

/** What an attempt does in the generated plans for router.call. */
const behaviour = fcheck.record({
  act: fcheck.constantFrom('ok', 'status', 'refused', 'timeout', 'abort', 'response', 'weird'),
  status: fcheck.constantFrom(400, 401, 408, 429, 499, 500, 503, 504, 529),
  latency: fcheck.integer({ min: 0, max: 40_000 }),
  retryAfter: fcheck.option(fcheck.integer({ min: 0, max: 90 })),
});

/** Produces the attempt's effect: a value to return, or an error to throw. */
function perform(b) {
  const headers = b.retryAfter === null ? {} : { 'retry-after': String(b.retryAfter) };
  switch (b.act) {
    case 'ok':
      return { value: 'ok' };
    case 'status':
      return { error: Object.assign(new Error(`HTTP ${b.status}`), { status: b.status, headers }) };
    case 'refused':
      return { error: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) };
    case 'timeout':
      return { error: new DOMException('timed out', 'TimeoutError') };
    case 'abort':
      return { error: new DOMException('aborted', 'AbortError') };
    case 'response':
      return { value: new Response(null, { status: b.status === 499 ? 503 : b.status, headers }) };
    default:
      return { error: 'a thrown string' };
  }
}

// router.call against a hand-driven request engine twin: test/call-driver.test.js.
