// The package works through `import` as well as `require`, and both give the same objects.
import test from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import failover, { Router, ConfigError, classifyResponse, OUTCOME_KINDS } from 'failover-core';

const require = createRequire(import.meta.url);

test('import gives the same classes as require', () => {
  const cjs = require('failover-core');
  assert.equal(Router, cjs.Router);
  assert.equal(ConfigError, cjs.ConfigError);
  assert.equal(failover.Router, Router);
  assert.deepEqual(Object.keys(failover).sort(), Object.keys(cjs).sort());
  assert.ok(OUTCOME_KINDS.includes('rate_limited'));
});

test('a router through import', async () => {
  const r = new Router(['a', 'b']);
  assert.equal(await r.call(async ({ provider }) => provider), 'a');
  assert.equal(classifyResponse(new Response(null, { status: 429 })).outcome, 'rate_limited');
  assert.throws(() => new Router(['a'], { nope: 1 }), ConfigError);
});

test('failover-core/fleet through import (named exports of the CommonJS file)', async () => {
  // Loading the file does not need ioredis (a client is built only when no `client` is given).
  const fleet = await import('failover-core/fleet');
  assert.equal(fleet.FleetSync, require('failover-core/fleet').FleetSync);
  assert.equal(typeof fleet.FLEET_SCRIPT, 'string');
  assert.match(fleet.FLEET_SCRIPT, /HINCRBY/);
});
