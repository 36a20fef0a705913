'use strict';
// `PolicyInForce` (index.d.ts, the type of `router.policy()`) against the core: its keys are the
// core's field list (the list `policy-read-back.json` pins), in the core's order, and every value
// read back has its declared type, with the optional triggers both on and off; `Policy` (the
// input) names the same fields. A field the core gains and a type lacks, or a value of another
// type, fails here. tsc checks the consumer's use of the types (test/consumer.ts).

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { Router } = require('failover-core');
const { dir } = require('./package.js');
const { SCENARIO_DIR } = require('./scenario-runner.js');

const dts = fs.readFileSync(path.join(dir, 'index.d.ts'), 'utf8');

/** The fields of `export interface <name>` in index.d.ts, as [name, type, optional]. */
function fields(name) {
  const start = dts.indexOf(`export interface ${name} {`);
  assert.notEqual(start, -1, `index.d.ts declares ${name}`);
  const body = dts.slice(start, dts.indexOf('\n}', start));
  return [...body.matchAll(/^ {2}(\w+)(\??): (.+);$/gm)].map((m) => [m[1], m[3], m[2] === '?']);
}

/** Whether `value` has the declared type `type` (the few forms the policy uses). */
function conforms(value, type) {
  return type.split(' | ').some((t) => {
    if (t === 'null') return value === null;
    if (t === 'number') return typeof value === 'number';
    if (t === 'boolean') return typeof value === 'boolean';
    if (/^'.*'$/.test(t)) return value === t.slice(1, -1);
    if (t === 'RampStage[]') {
      return Array.isArray(value) && value.every((s) =>
        Object.keys(s).join() === 'share,dwell_ms' && typeof s.share === 'number' && typeof s.dwell_ms === 'number');
    }
    throw new Error(`a type this test does not know: ${t}`);
  });
}

const inForce = fields('PolicyInForce');
const optional = inForce.filter(([, t]) => t.split(' | ').includes('null')).map(([k]) => k);

test('PolicyInForce: the core field list, in its order, none optional; Policy names the same', () => {
  const pinned = JSON.parse(fs.readFileSync(path.join(SCENARIO_DIR, 'policy-read-back.json'), 'utf8'));
  const core = Object.keys(pinned.steps.find((s) => s.policy !== undefined).expect);
  assert.deepEqual(inForce.map(([k]) => k), core);
  assert.deepEqual(Object.keys(new Router(['a']).policy()), core);
  assert.deepEqual(inForce.filter(([, , opt]) => opt), []);
  assert.deepEqual(fields('Policy').map(([k]) => k).sort(), [...core].sort());
});

for (const mode of ['off', 'on']) {
  test(`every value read back has its declared type (optional triggers ${mode})`, () => {
    const on = {
      error_rate_threshold: 0.4, consecutive_failures: 3, timeout_rate_threshold: 0.3,
      slow_call_rate_threshold: 0.5, latency_factor: 3, health_check_interval_ms: 5000,
      pace_watermark: 0.2,
    };
    assert.deepEqual(Object.keys(on).sort(), [...optional].sort()); // each exercised both ways
    const policy = mode === 'on' ? on : Object.fromEntries(optional.map((k) => [k, null]));
    const p = new Router(['a', 'b'], { ...policy, probe_mode: 'health_checks', when_all_down: 'fail' }).policy();
    const wrong = inForce.filter(([k, t]) => !conforms(p[k], t)).map(([k, t]) => `${k}=${JSON.stringify(p[k])} is not ${t}`);
    assert.deepEqual(wrong, []);
    for (const k of optional) assert.equal(p[k] === null, mode === 'off', k);
  });
}
