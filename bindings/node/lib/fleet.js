'use strict';
/**
 * `require('failover-core/fleet')`: fleet mode for Node. Many processes of one service share what
 * they learn about the providers through Redis, off the request path (issue #14; the key layout
 * and op budget are in docs/fleet.md).
 *
 *   const { FleetSync } = require('failover-core/fleet');
 *   const sync = new FleetSync(router, 'my-service', { url: 'redis://127.0.0.1:6379/0' }).start();
 *   router.on('fleet', (ev) => console.warn(ev.description)); // degraded / resumed
 *   await sync.stop();
 *
 * Every decision is the Rust core's (`NativeFleet`, over the same `failover_core::fleet::wire` as
 * Python): when a round is due, what it writes, what the answer changes, when the instance goes
 * degraded and how long it backs off. This module only performs the I/O with ioredis (an
 * optional peer dependency: install it to use this file; `require('failover-core')` never loads
 * it): one `EVALSHA` of the round script per period, from unref'd timers, so no request ever
 * waits on Redis and the process can exit.
 *
 * The same names and shapes as Python's `failover_core.fleet.FleetSync`, camelCased where they are
 * options or methods (docs/fleet.md lists the mapping).
 */

const { createHash, randomBytes } = require('node:crypto');
const native = require('./addon.js');
const { nativeRouter, engineOf, Router } = require('./router.js');
const { typeError, rangeError, describe } = require('./errors.js');

/** The Lua round script every binding runs (`failover_core::fleet::REDIS_ROUND_SCRIPT`). */
const FLEET_SCRIPT = native.fleetScript();
const SCRIPT_SHA = createHash('sha1').update(FLEET_SCRIPT).digest('hex');

/**
 * The longest the timer sleeps before it looks again at the core's schedule (a router on a clock
 * of its own may move faster than the timers), ms. A local open does not wait for it: the
 * router's `opened` events wake the loop at once.
 */
const MAX_SLEEP_MS = 100;

const DESCRIPTIONS = {
  degraded: (ev) => `fleet: degraded after ${ev.failures} failed rounds; running on local knowledge alone`,
  resumed: () => 'fleet: resumed; sharing with the fleet again',
};

function checkMs(v, arg, dflt) {
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number') throw typeError(arg, 'a number of milliseconds', v);
  if (!(Number.isFinite(v) && v > 0)) throw rangeError(arg, `must be a positive number of milliseconds, got ${describe(v)}`);
  return v;
}

/** The client `FleetSync` builds from a URL: no retries of any kind (a retried round would count
 * its deltas twice), timeouts on connecting and on every command, reconnection left to us. */
function makeClient(url, connectTimeoutMs, commandTimeoutMs) {
  let Redis;
  try {
    Redis = require('ioredis');
  } catch (e) {
    const err = new Error('failover-core/fleet needs ioredis (an optional peer dependency): npm install ioredis');
    err.cause = e;
    throw err;
  }
  Redis = Redis.default ?? Redis.Redis ?? Redis;
  return new Redis(url, {
    lazyConnect: true,
    connectTimeout: connectTimeoutMs,
    commandTimeout: commandTimeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    enableReadyCheck: false,
    // `disconnect()` destroys the socket at once instead of waiting (2 s by default) for a close
    // that a refused or stopped server may never send: the process can exit right after stop().
    disconnectTimeout: 0,
    // Never reconnect on its own: the next round reconnects, after the core's backoff.
    retryStrategy: () => null,
    reconnectOnError: () => false,
  });
}

/**
 * Runs a router's fleet rounds against Redis on timers (unref'd, off the request path).
 *
 * `new FleetSync(router, service, options?)` joins the fleet `service` (all instances of one
 * fleet must use the same provider names and window policy). Options:
 * - `url` (default `redis://127.0.0.1:6379/0`), or `client`: an ioredis client of your own; it
 *   must not retry or resend commands (a retried round could count its deltas twice; the client
 *   built from `url` has every retry off) and is not closed by `stop()`;
 * - `instance`: this instance's id, a u32 unique in the fleet (default: random);
 * - `connectTimeoutMs` (500) and `commandTimeoutMs` (250) bound each round (for `url` clients);
 *   a round that fails is reported to the core and the connection is dropped, so a late reply is
 *   never read as the next round's answer; the next round reconnects after the core's backoff;
 * - `onEvent(event)`: each fleet event (`{kind: "degraded" | "resumed", at_ms, failures?,
 *   instance, description}`), also emitted on the router as `router.on('fleet', fn)`;
 * - the core's configuration: `periodMs` (1000), `jitter` (0.1), `seed` (0), `livePeriods` (3),
 *   `degradedAfter` (3), `quorum` (0.3), `quorumMin` (2), `leaseMs` (3000); `clockSkewMs` only
 *   simulates an instance whose wall clock is off, for tests.
 */
class FleetSync {
  #router;
  #engine;
  #n;
  #fleet;
  #ownsClient;
  #onEvent;
  #timer = null;
  #inFlight = null;
  #started = false;
  #stopped = false;
  #connecting = null;
  /** A dropped connection's close (resolves on the client's `end`), or null. */
  #closing = null;
  #connectTimeoutMs;
  #onOpened;
  #tickBound;

  constructor(router, service, options = {}) {
    if (!(router instanceof Router)) throw typeError('router', 'a Router', router);
    if (typeof service !== 'string' || service === '') throw typeError('service', 'a non-empty string', service);
    if (typeof options !== 'object' || options === null) throw typeError('options', 'an object', options);
    const o = options;
    const connectTimeoutMs = checkMs(o.connectTimeoutMs, 'options.connectTimeoutMs', 500);
    const commandTimeoutMs = checkMs(o.commandTimeoutMs, 'options.commandTimeoutMs', 250);
    if (o.onEvent !== undefined && o.onEvent !== null && typeof o.onEvent !== 'function') {
      throw typeError('options.onEvent', 'a function', o.onEvent);
    }
    let instance = o.instance;
    if (instance === undefined || instance === null) instance = randomBytes(4).readUInt32LE(0);
    if (!Number.isInteger(instance) || instance < 0 || instance > 0xffffffff) {
      throw rangeError('options.instance', `must be an integer between 0 and 2^32 - 1, got ${describe(instance)}`);
    }
    const skew = o.clockSkewMs ?? 0;
    if (!Number.isInteger(skew)) throw typeError('options.clockSkewMs', 'an integer number of milliseconds', skew);
    this.#router = router;
    this.#engine = engineOf(router);
    this.#n = nativeRouter(router);
    this.#fleet = new native.NativeFleet(
      this.#n,
      service,
      instance,
      {
        period_ms: o.periodMs ?? undefined,
        jitter: o.jitter ?? undefined,
        seed: o.seed ?? undefined,
        live_periods: o.livePeriods ?? undefined,
        degraded_after: o.degradedAfter ?? undefined,
        quorum: o.quorum ?? undefined,
        quorum_min: o.quorumMin ?? undefined,
        lease_ms: o.leaseMs ?? undefined,
      },
      Date.now() + skew,
      this.#engine.now(),
    );
    this.#connectTimeoutMs = connectTimeoutMs;
    this.#ownsClient = o.client === undefined || o.client === null;
    /** The ioredis client the rounds use. */
    this.client = this.#ownsClient ? makeClient(o.url ?? 'redis://127.0.0.1:6379/0', connectTimeoutMs, commandTimeoutMs) : o.client;
    // A client's 'error' events (a refused connection) must not crash the process: the round
    // that saw the error reports it (its command or its connect rejects with it).
    this.client.on('error', () => {});
    this.#onEvent = o.onEvent ?? null;
    /** Every fleet event so far (also passed to `onEvent` and emitted on the router as `fleet`). */
    this.events = [];
    /** The last round's error, if it failed; null after a round that succeeded. */
    this.lastError = null;
    this.#tickBound = () => this.#tick();
    this.#onOpened = () => {
      if (this.#started && !this.#stopped) this.#schedule(0);
    };
  }

  /** The round script's key, `fo:{<service>}:hb`. */
  get key() {
    return this.#fleet.key;
  }

  /** This instance's id. */
  get instance() {
    return this.#fleet.instance;
  }

  /** Whether the instance runs on local knowledge alone (too many failed rounds in a row). */
  get degraded() {
    return this.#fleet.degraded;
  }

  /** Failed rounds in a row. */
  get failures() {
    return this.#fleet.failures;
  }

  /** Live instances at the last successful round (this one included). */
  get liveInstances() {
    return this.#fleet.liveInstances;
  }

  /** The quorum among the live instances. */
  get quorum() {
    return this.#fleet.quorum;
  }

  /** Rounds answered and handed to the core so far. */
  get roundsOk() {
    return this.#fleet.roundsOk;
  }

  /** Rounds that failed so far. */
  get roundsFailed() {
    return this.#fleet.roundsFailed;
  }

  /**
   * `provider`'s register as this instance last saw it: `{epoch, open_until_ms, ramp_start_ms}`,
   * times on the router's clock (0: unset). Throws a RangeError for an unknown provider.
   */
  register(provider) {
    const i = this.#engine.index.get(provider);
    if (i === undefined) throw rangeError('provider', `names an unknown provider ${describe(provider)}`);
    const [epoch, open_until_ms, ramp_start_ms] = this.#fleet.register(this.#n, i);
    return { epoch, open_until_ms, ramp_start_ms };
  }

  /**
   * When the next round is due, on the router's clock (ms); null while one is in flight. A local
   * open since the last look makes it due at once.
   */
  pollTimeout() {
    return this.#fleet.pollTimeout(this.#n);
  }

  /** Makes the next round due now (for example on a local open; `start()` does this itself). */
  syncNow() {
    this.#fleet.syncNow(this.#engine.now());
    if (this.#started && !this.#stopped) this.#schedule(0);
  }

  /** Starts the timers (once). Returns this. */
  start() {
    if (this.#stopped) throw new Error('FleetSync: stopped; build a new one');
    if (!this.#started) {
      this.#started = true;
      this.#router.on('opened', this.#onOpened);
      this.#schedule(0);
    }
    return this;
  }

  /**
   * Stops the timers, waits for a round in flight (at most its timeouts) and closes the client it
   * built from `url` (a `client` of your own stays open). Resolves when done; the process can
   * exit afterwards.
   */
  async stop() {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#started) this.#router.off('opened', this.#onOpened);
    if (this.#inFlight !== null) await this.#inFlight.catch(() => {});
    if (this.#ownsClient) this.client.disconnect();
  }

  /**
   * Runs one round if one is due: resolves to true if it succeeded, false if it failed, null if
   * none was due (or one is in flight). The timers call this; call it yourself only without
   * `start()`. Never retried: a failed round's deltas are lost (an undercount, which is safe).
   */
  runRound() {
    const e = this.#engine;
    const tx = this.#fleet.pollTransmit(this.#n, e.now());
    e.after();
    if (tx === null) return Promise.resolve(null);
    const p = this.#send(tx.args).then(
      (reply) => {
        let ok;
        try {
          ok = this.#fleet.handleReply(this.#n, tx.round, reply, e.now());
          this.lastError = null;
        } catch (err) {
          if (err?.code !== 'ERR_FLEET_REPLY') throw err;
          this.lastError = err;
          ok = false;
        }
        return ok;
      },
      (err) => {
        // Never retried: its deltas were handed out once. Drop the connection so a late reply
        // cannot be read as the next round's; the next round reconnects.
        this.lastError = err;
        this.#fleet.handleFailure(this.#n, tx.round, e.now());
        this.#drop();
        return false;
      },
    ).finally(() => {
      e.after();
      this.#drain();
    });
    return p;
  }

  /** Drops the connection of the client it built (a late reply must not answer the next round). */
  #drop() {
    if (!this.#ownsClient) return;
    const c = this.client;
    if (c.status !== 'end' && c.status !== 'wait' && this.#closing === null) {
      // The status changes only when the socket has closed (on a later turn of the loop).
      this.#closing = new Promise((resolve) => {
        c.once('end', resolve);
      });
    }
    c.disconnect();
  }

  /** Connects the client it built if it is not connected (a round after a failure reconnects). */
  async #connect() {
    const c = this.client;
    if (!this.#ownsClient) return; // the owner's client: its own policy
    if (this.#closing === null && c.status === 'ready') return;
    if (this.#connecting === null) {
      this.#connecting = (async () => {
        if (this.#closing !== null) {
          // Wait for the dropped connection to end (bounded: the connect timeout).
          let t;
          await Promise.race([this.#closing, new Promise((r) => {
            t = setTimeout(r, this.#connectTimeoutMs);
          })]);
          clearTimeout(t);
          this.#closing = null;
        }
        if (c.status === 'wait' || c.status === 'end') await c.connect();
      })().finally(() => {
        this.#connecting = null;
      });
    }
    await this.#connecting;
  }

  async #send(args) {
    await this.#connect();
    const c = this.client;
    try {
      return await c.evalsha(SCRIPT_SHA, 1, this.#fleet.key, ...args);
    } catch (err) {
      if (!String(err?.message).startsWith('NOSCRIPT')) throw err;
      // The script is not loaded (a new or restarted Redis): it did not run, so loading it and
      // sending the round again is not a retry of a round that may have counted.
      await c.script('LOAD', FLEET_SCRIPT);
      return await c.evalsha(SCRIPT_SHA, 1, this.#fleet.key, ...args);
    }
  }

  #drain() {
    for (;;) {
      const ev = this.#fleet.pollEvent();
      if (ev === null) return;
      const event = {
        kind: ev.kind,
        at_ms: ev.at_ms,
        ...(ev.failures === undefined || ev.failures === null ? {} : { failures: ev.failures }),
        instance: this.#fleet.instance,
        description: DESCRIPTIONS[ev.kind](ev),
      };
      this.events.push(event);
      this.#engine.emit('fleet', event);
      if (this.#onEvent !== null) {
        try {
          this.#onEvent(event);
        } catch (err) {
          // The callback's bug must not stop the sync.
          process.emitWarning(err instanceof Error ? err : new Error(String(err)), 'FailoverCoreFleetCallbackError');
        }
      }
    }
  }

  #routerNow() {
    const clock = this.#engine.clock;
    return clock === undefined ? native.monotonicNow() : clock();
  }

  #schedule(ms) {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = setTimeout(this.#tickBound, Math.max(0, Math.min(ms, MAX_SLEEP_MS)));
    this.#timer.unref();
  }

  #tick() {
    this.#timer = null;
    if (this.#stopped || this.#inFlight !== null) return;
    const due = this.pollTimeout();
    const wait = due === null ? MAX_SLEEP_MS : due - this.#routerNow();
    if (wait > 0) {
      this.#schedule(wait);
      return;
    }
    this.#inFlight = this.runRound()
      .catch((err) => {
        // A bug must not kill the loop silently.
        process.emitWarning(err instanceof Error ? err : new Error(String(err)), 'FailoverCoreFleetError');
      })
      .finally(() => {
        this.#inFlight = null;
        if (!this.#stopped) this.#schedule(0);
      });
  }
}

module.exports = { FleetSync, FLEET_SCRIPT };
