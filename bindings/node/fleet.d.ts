// Types of `failover-core/fleet` (lib/fleet.js). Needs `ioredis` (an optional peer dependency of
// failover-core) installed, unless a `client` is passed.
import type { FleetEvent, Router } from './index';

export type { FleetEvent } from './index';

/**
 * The part of an ioredis client `FleetSync` uses (an `ioredis` `Redis` satisfies it). A client of
 * your own must not retry or resend commands: a retried round could count its deltas twice.
 */
export interface FleetRedisClient {
  readonly status: string;
  evalsha(sha: string, numKeys: number, ...keysAndArgs: string[]): Promise<unknown>;
  script(subcommand: 'LOAD', script: string): Promise<unknown>;
  on(event: 'error', listener: (err: Error) => void): unknown;
  connect(): Promise<void>;
  disconnect(): void;
}

export interface FleetSyncOptions {
  /** Redis URL for the client `FleetSync` builds (default `redis://127.0.0.1:6379/0`). */
  url?: string;
  /** An ioredis client of your own instead of `url` (no retries; `stop()` leaves it open). */
  client?: FleetRedisClient;
  /** This instance's id, a u32 unique in the fleet (default: random). */
  instance?: number;
  /** Connect timeout of the client built from `url`, ms (default 500). */
  connectTimeoutMs?: number;
  /** Command timeout of the client built from `url`, ms (default 250). */
  commandTimeoutMs?: number;
  /** Time between rounds, ms: 250–5000 (default 1000). */
  periodMs?: number;
  /** Each period is jittered by up to ± this fraction, 0–0.5 (default 0.1). */
  jitter?: number;
  /** Seeds the jitter (default 0). */
  seed?: number;
  /** An instance is live while its last round is at most this many periods old (default 3). */
  livePeriods?: number;
  /** Failed rounds in a row after which the instance is degraded (default 3). */
  degradedAfter?: number;
  /** The quorum's share of the live instances, (0, 1] (default 0.3). */
  quorum?: number;
  /** The smallest quorum (default 2). */
  quorumMin?: number;
  /** How long the probe lease lasts, ms: more than a jittered period (default 3000). */
  leaseMs?: number;
  /** Simulates an instance whose wall clock is off by this much, ms (tests only; default 0). */
  clockSkewMs?: number;
  /** Called with each fleet event (also emitted on the router as `'fleet'`). */
  onEvent?: (event: FleetEvent) => void;
}

/** A provider's circuit as the fleet shares it, times on the router's clock (0: unset). */
export interface FleetRegister {
  epoch: number;
  open_until_ms: number;
  ramp_start_ms: number;
}

/**
 * Runs a router's fleet rounds against Redis on unref'd timers, off the request path: one
 * `EVALSHA` of the round script per period, never retried. @throws ConfigError (the core's
 * `code`) for a configuration the core refuses.
 */
export declare class FleetSync {
  constructor(router: Router, service: string, options?: FleetSyncOptions);
  /** The ioredis client the rounds use. */
  readonly client: FleetRedisClient;
  /** Every fleet event so far. */
  readonly events: FleetEvent[];
  /** The last round's error, if it failed; null after a round that succeeded. */
  readonly lastError: unknown;
  /** The round script's key, `fo:{<service>}:hb`. */
  readonly key: string;
  /** This instance's id. */
  readonly instance: number;
  /** Whether the instance runs on local knowledge alone. */
  readonly degraded: boolean;
  /** Failed rounds in a row. */
  readonly failures: number;
  /** Live instances at the last successful round (this one included). */
  readonly liveInstances: number;
  /** The quorum among the live instances. */
  readonly quorum: number;
  /** Rounds answered and handed to the core so far. */
  readonly roundsOk: number;
  /** Rounds that failed so far. */
  readonly roundsFailed: number;
  /** `provider`'s register as this instance last saw it. @throws RangeError for an unknown provider. */
  register(provider: string): FleetRegister;
  /** When the next round is due (router clock, ms); null while one is in flight. */
  pollTimeout(): number | null;
  /** Makes the next round due now. */
  syncNow(): void;
  /** Starts the timers (once). */
  start(): this;
  /** Stops the timers, waits for a round in flight and closes the client built from `url`. */
  stop(): Promise<void>;
  /** Runs one round if one is due: true (succeeded), false (failed) or null (none due). */
  runRound(): Promise<boolean | null>;
}

/** The Lua round script every binding runs (docs/fleet.md). */
export declare const FLEET_SCRIPT: string;
