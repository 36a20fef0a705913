// Type-checks `failover-core/fleet` with a real ioredis client (not run; test/fleet.test.js runs it).
import Redis from 'ioredis';
import { Router, type FleetEvent } from 'failover-core';
import { FleetSync, FLEET_SCRIPT, type FleetRegister, type FleetSyncOptions } from 'failover-core/fleet';

const router = new Router(['openai', 'anthropic']);
router.on('fleet', (ev: FleetEvent) => {
  const kind: 'degraded' | 'resumed' = ev.kind;
  void kind;
  console.warn(ev.description, ev.failures ?? 0, ev.at_ms, ev.instance);
});
const options: FleetSyncOptions = {
  url: 'redis://127.0.0.1:6379/0',
  instance: 7,
  periodMs: 1000,
  quorum: 0.3,
  onEvent: (ev) => void ev.kind,
};
const sync = new FleetSync(router, 'svc', options).start();
const own = new FleetSync(router, 'svc', {
  client: new Redis({ lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false }),
});
const reg: FleetRegister = sync.register('openai');
const due: number | null = sync.pollTimeout();
const ok: Promise<boolean | null> = own.runRound();
const n: number = sync.roundsOk + sync.roundsFailed + sync.liveInstances + sync.quorum + sync.failures;
const degraded: boolean = sync.degraded;
const key: string = sync.key;
const script: string = FLEET_SCRIPT;
void [reg.epoch, reg.open_until_ms, reg.ramp_start_ms, due, ok, n, degraded, key, script];
void sync.stop();
