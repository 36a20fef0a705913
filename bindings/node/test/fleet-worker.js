'use strict';
// One fleet instance in its own process, driven line by line over stdin (JSON in, JSON out) by
// fleet.test.js: a Router of providers "a" and "b" with a FleetSync to the test's Redis. The same
// protocol as bindings/python/tests/fleet_worker.py, so a test can mix Node and Python instances.
//
//   node fleet-worker.js <url> <instance> <period_ms> [<policy json, with clock_skew_ms>]

const readline = require('node:readline');
const { Router } = require('failover-core');
const { FleetSync } = require('failover-core/fleet');

const [url, instanceArg, periodArg, policyArg] = process.argv.slice(2);
const policy = policyArg ? JSON.parse(policyArg) : {};
const skew = policy.clock_skew_ms ?? 0;
delete policy.clock_skew_ms;
const router = new Router(['a', 'b'], policy);
const sync = new FleetSync(router, 'test', {
  url, instance: Number(instanceArg), periodMs: Number(periodArg), clockSkewMs: skew,
}).start();
const recorded = {};
const count = (k) => {
  recorded[k] = (recorded[k] ?? 0) + 1;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function state() {
  return {
    a: router.view('a').state,
    b: router.view('b').state,
    a_stage: router.view('a').ramp_stage,
    a_share: router.view('a').share,
    degraded: sync.degraded,
    rounds_ok: sync.roundsOk,
    rounds_failed: sync.roundsFailed,
    live: sync.liveInstances,
    events: sync.events.map((e) => e.kind),
    recorded,
  };
}

async function handle(cmd) {
  let out = {};
  switch (cmd.op) {
    case 'observe':
      for (let i = 0; i < cmd.n; i++) {
        router.observe(cmd.provider, { outcome: cmd.outcome, latency_ms: 100 });
        count(cmd.outcome);
      }
      break;
    case 'observe_seq':
      for (const o of cmd.outcomes) {
        router.observe(cmd.provider, { outcome: o, latency_ms: 100 });
        count(o);
      }
      break;
    case 'load': {
      // Requests (pick + record success) for `seconds`, at most `max` of them: the slowest one's
      // latency, on the request path only. Every `fail_every`-th one (if given) is a server
      // error, not a success; with `down` (a provider), every call to it is one. Only outcomes on
      // "a" are counted in `recorded` (as in Python). One request every `interval_ms` (default 2).
      const start = Date.now();
      const end = start + cmd.seconds * 1000;
      const max = cmd.max ?? 100000;
      const failEvery = cmd.fail_every ?? 0;
      const interval = cmd.interval_ms ?? 2;
      let n = 0;
      let worst = 0;
      let probes = 0;
      while (Date.now() < end && n < max) {
        const t0 = process.hrtime.bigint();
        const t = router.pick();
        const outcome = (failEvery && n % failEvery === failEvery - 1) || t.provider === cmd.down
          ? 'server_error' : 'success';
        if (t.provider === 'a' && t.kind === 'probe') probes++;
        router.record(t, { outcome, latency_ms: 50 });
        const dt = Number(process.hrtime.bigint() - t0) / 1e6;
        if (dt > worst) worst = dt;
        if (t.provider === 'a') count(outcome);
        n++;
        await sleep(interval);
      }
      out = { n, worst_ms: worst, probes, elapsed_ms: Date.now() - start };
      break;
    }
    case 'wait_rounds': {
      // Until `n` more rounds succeeded (bounded by `timeout` seconds).
      const start = sync.roundsOk;
      const end = Date.now() + cmd.timeout * 1000;
      while (sync.roundsOk < start + cmd.n && Date.now() < end) await sleep(10);
      out = { waited: sync.roundsOk - start };
      break;
    }
    case 'quit':
      await sync.stop();
      process.stdout.write(`${JSON.stringify({ ok: true })}\n`);
      process.exit(0);
      break;
    default:
      throw new Error(`unknown op ${cmd.op}`);
  }
  return { ...out, ...state() };
}

// One command at a time, in order.
let chain = Promise.resolve();
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  chain = chain.then(async () => {
    const out = await handle(JSON.parse(line));
    process.stdout.write(`${JSON.stringify(out)}\n`);
  });
});
process.stdin.on('end', () => {
  chain.then(() => sync.stop()).then(() => process.exit(0));
});
