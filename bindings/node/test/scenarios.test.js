'use strict';
// One test per file in fixtures/scenarios, replayed through the public JS API with the Rust
// runner's semantics (see scenario-runner.js). FAILOVER_SCENARIO_DUMP=1 prints the compact JSON
// line of every step, the same lines as the Rust runner's `observe` example.

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const fs = require('node:fs');
const runner = require('./scenario-runner.js');

const scenarios = runner.loadDir();

test('the scenario suite is found in the repository and is not empty', () => {
  assert.ok(fs.existsSync(runner.SCENARIO_DIR), runner.SCENARIO_DIR);
  assert.ok(scenarios.length >= 1);
  for (const s of scenarios) {
    assert.equal(s.doc.name, path.basename(s.file, '.json'), `${s.file}: \`name\` must match the file name`);
  }
});

for (const s of scenarios) {
  const reason = runner.skipReason(s);
  test(`scenario ${path.basename(s.file, '.json')}`, { skip: reason ?? false }, () => {
    runner.check(s);
  });
}

test('a broken expectation names the file and step', (t) => {
  const dir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'failover-scenario-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'broken.json');
  fs.writeFileSync(
    file,
    JSON.stringify({
      name: 'broken',
      description: 'a scratch scenario whose second step is wrong',
      providers: ['a', 'b'],
      steps: [
        { at: 0, pick: {}, expect: { provider: 'a' } },
        { at: 1, pick: {}, expect: { provider: 'b' } },
      ],
    }),
  );
  assert.throws(() => runner.check(runner.load(file)), (e) => e.step === 1 && e.message.includes('broken.json: step 1'));
});

test('the exact-integer JSON reader keeps integers beyond 2^53 as BigInt', () => {
  const v = runner.parseJson('{"a": 18446744073709551615, "b": [1, 2.5, -3, 9007199254740991], "c": "x\\"y"}');
  assert.equal(v.a, 18446744073709551615n);
  assert.deepEqual(v.b, [1, 2.5, -3, 9007199254740991]);
  assert.equal(v.c, 'x"y');
});

test('matching follows the Rust runner: subset objects, exact arrays, numbers by value', () => {
  assert.ok(runner.matches({ a: 1 }, { a: 1.0, b: 2 }));
  assert.ok(!runner.matches({ a: null }, {}));
  assert.ok(!runner.matches([1], [1, 2]));
  assert.ok(runner.matches([{ k: 'x' }], [{ k: 'x', z: 1 }]));
  assert.ok(!runner.matches('1', 1));
});

// Fleet scenarios (fixtures/fleet): several routers sharing a store model (Rust's MemStore). The
// package drives fleet mode against a real Redis only (test/fleet.test.js), so each is listed and
// skipped with the reason; Rust replays them (cargo test -p failover-scenario --test fleet).
const FLEET_DIR = path.join(path.dirname(runner.SCENARIO_DIR), 'fleet');
for (const f of fs.existsSync(FLEET_DIR) ? fs.readdirSync(FLEET_DIR).filter((n) => n.endsWith('.json')).sort() : []) {
  test(`fleet scenario ${path.basename(f, '.json')}`, {
    skip: 'several routers sharing a store model: the Node package drives fleet mode against a real Redis only (test/fleet.test.js); Rust replays it',
  }, () => {});
}
