//! `NativeFleet`: one instance's side of fleet mode (`failover_core::fleet::Fleet`) for a
//! `NativeRouter`, the twin of Python's `_native.Fleet`. The round script's arguments, the
//! decoding of its reply and the clock mapping are the shared `failover_core::fleet::wire` (Python
//! uses the same); every decision is the core's. The Redis I/O is `lib/fleet.js`'s (`FleetSync`,
//! ioredis, timers off the request path).
//!
//! Every method that touches the router takes it as an argument and checks it is the one the
//! fleet was built for (as `NativeRequest` does), then runs under `hot::with_router`: a panic
//! closes the router, and the router's event counters in the shared buffer are updated, so the
//! JS layer's `after()` emits the events a merge queued.

use std::sync::Arc;

use failover_core::fleet::wire::{Clock, HeartbeatKey, KeyPrefix, Reply, Wire, fraction_ppm};
use failover_core::fleet::{Export, Fleet as CoreFleet, FleetConfig, FleetEvent, Snapshot};
use failover_core::{DefaultRouter, ProviderId};
use napi::bindgen_prelude::{Env, FromNapiValue, JsObjectValue, Object, Unknown};
use napi::{JsValue, ValueType};
use napi_derive::napi;

use crate::convert::js_num;
use crate::error::{Failure, Res};
use crate::{NativeRouter, hot};

const P: usize = 16;
const B: usize = 120;
type Core = CoreFleet<P, B>;

/// A fleet instance's configuration (every field optional: the core's defaults). Fractions are
/// numbers in [0, 1].
#[napi(object)]
pub struct NativeFleetOptions {
    /// Time between rounds, ms (250–5000, default 1000).
    #[napi(js_name = "period_ms")]
    pub period_ms: Option<f64>,
    /// Each period is jittered by up to ± this fraction (0–0.5, default 0.1).
    pub jitter: Option<f64>,
    /// Seeds the jitter (an integer, default 0).
    pub seed: Option<f64>,
    /// An instance is live while its last round is at most this many periods old (default 3).
    #[napi(js_name = "live_periods")]
    pub live_periods: Option<f64>,
    /// Failed rounds in a row after which the instance is degraded (default 3).
    #[napi(js_name = "degraded_after")]
    pub degraded_after: Option<f64>,
    /// The quorum's share of the live instances (default 0.3).
    pub quorum: Option<f64>,
    /// The smallest quorum (default 2).
    #[napi(js_name = "quorum_min")]
    pub quorum_min: Option<f64>,
    /// How long the probe lease lasts, ms (default 3000).
    #[napi(js_name = "lease_ms")]
    pub lease_ms: Option<f64>,
}

/// A round to send: `EVALSHA(script, 1, key, ...args)`, once.
#[napi(object)]
pub struct NativeFleetRound {
    /// The round's number (hand it back to `handleReply` or `handleFailure`).
    pub round: f64,
    /// The script's arguments.
    pub args: Vec<String>,
}

/// A fleet event: `degraded` (with `failures`) or `resumed`, at `at_ms` on the router's clock.
#[napi(object)]
pub struct NativeFleetEvent {
    /// `"degraded"` or `"resumed"`.
    pub kind: String,
    /// When, ms (the router's clock).
    #[napi(js_name = "at_ms")]
    pub at_ms: f64,
    /// Failed rounds in a row (`degraded` only).
    pub failures: Option<u32>,
}

/// A value of the script's reply as ioredis gives it (arrays, numbers, strings or Buffers).
#[derive(Clone, Copy)]
struct JsReply<'e>(Unknown<'e>);

impl JsReply<'_> {
    fn object(&self) -> Option<Object<'_>> {
        if self.0.get_type().ok()? != ValueType::Object {
            return None;
        }
        Object::from_unknown(self.0).ok()
    }
}

impl<'e> Reply for JsReply<'e> {
    fn array_len(&self) -> Option<usize> {
        if !self.0.is_array().ok()? {
            return None;
        }
        self.object()?.get_array_length().ok().map(|n| n as usize)
    }

    fn item(&self, i: usize) -> Option<Self> {
        if !self.0.is_array().ok()? {
            return None;
        }
        let o = self.object()?;
        let i = u32::try_from(i).ok()?;
        if i >= o.get_array_length().ok()? {
            return None;
        }
        // A handle in the same scope as the reply's (this native call's).
        let v: Unknown<'e> = o.get_element(i).ok()?;
        Some(JsReply(v))
    }

    fn integer(&self) -> Option<i64> {
        if self.0.get_type().ok()? != ValueType::Number {
            return None;
        }
        let x = f64::from_unknown(self.0).ok()?;
        // An integer reply is exact below 2^53; anything else (a fraction) is no integer: -1
        // makes the decoder refuse it.
        Some(if x.fract() == 0.0 && x.abs() < 9.0e15 {
            x as i64
        } else {
            -1
        })
    }

    fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        match self.0.get_type().ok()? {
            ValueType::String => String::from_unknown(self.0).ok().map(|s| f(s.as_bytes())),
            ValueType::Null | ValueType::Undefined => Some(f(b"")),
            ValueType::Object if self.0.is_buffer().ok()? => {
                let b = napi::bindgen_prelude::BufferSlice::from_unknown(self.0).ok()?;
                Some(f(&b))
            }
            _ => None,
        }
    }
}

/// One instance of a fleet for a router (see the module doc).
#[napi]
pub struct NativeFleet {
    core: Box<Core>,
    export: Box<Export<P>>,
    snapshot: Box<Snapshot<P>>,
    /// The id of the router it was built for.
    router: u64,
    names: Arc<[String]>,
    service: String,
    prefix: String,
    instance: u32,
    wire: Wire,
    rounds_ok: u64,
    rounds_failed: u64,
}

fn count(arg: &str, v: Option<f64>, default: u64, max: u64) -> Res<u64> {
    match v {
        None => Ok(default),
        Some(x) => hot::int_in(x, max as f64)
            .ok_or_else(|| Failure::range(arg, format!("must be an integer between 0 and {max}"))),
    }
}

fn fraction(arg: &str, v: Option<f64>, default: u32) -> Res<u32> {
    match v {
        None => Ok(default),
        Some(x) => {
            fraction_ppm(x).ok_or_else(|| Failure::range(arg, "must be a fraction in [0, 1]"))
        }
    }
}

impl NativeFleet {
    /// Runs `f` on the fleet and the router it was built for.
    fn drive<T>(
        &mut self,
        router: &NativeRouter,
        f: impl FnOnce(&mut Self, &mut DefaultRouter) -> T,
    ) -> Res<T> {
        if router.id != self.router {
            return Err(Failure::ForeignRouter);
        }
        hot::with_router(router.slot as usize, |r| Ok(f(self, r)))
    }
}

#[napi]
impl NativeFleet {
    /// Instance `instance` (a u32, unique in the fleet) of the fleet `service` for `router`.
    /// `wallMs` is the wall clock (Unix ms, plus any simulated skew) and `routerMs` the router's
    /// clock read at the same moment (-1: the native default clock); their difference, rounded
    /// to whole buckets, maps the router's times to the fleet's (`wire::Clock`). Throws
    /// `ConfigError` with the core's code for a configuration it refuses.
    #[napi(constructor)]
    pub fn new(
        env: Env,
        router: &NativeRouter,
        service: String,
        instance: u32,
        options: Option<NativeFleetOptions>,
        wall_ms: f64,
        router_ms: f64,
    ) -> napi::Result<Self> {
        let r = (|| {
            let o = options.unwrap_or(NativeFleetOptions {
                period_ms: None,
                jitter: None,
                seed: None,
                live_periods: None,
                degraded_after: None,
                quorum: None,
                quorum_min: None,
                lease_ms: None,
            });
            let d = FleetConfig::default();
            let u32max = u64::from(u32::MAX);
            let config = FleetConfig {
                period_ms: count("period_ms", o.period_ms, d.period_ms, 1 << 53)?,
                jitter_ppm: fraction("jitter", o.jitter, d.jitter_ppm)?,
                seed: count("seed", o.seed, d.seed, (1 << 53) - 1)?,
                live_periods: count(
                    "live_periods",
                    o.live_periods,
                    d.live_periods.into(),
                    u32max,
                )? as u32,
                degraded_after: count(
                    "degraded_after",
                    o.degraded_after,
                    d.degraded_after.into(),
                    u32max,
                )? as u32,
                quorum_ppm: fraction("quorum", o.quorum, d.quorum_ppm)?,
                quorum_min: count("quorum_min", o.quorum_min, d.quorum_min.into(), u32max)? as u32,
                lease_ms: count("lease_ms", o.lease_ms, d.lease_ms, 1 << 53)?,
            };
            let wall = hot::time("wallMs", wall_ms)?;
            let h = hot::hot();
            let local = hot::now_arg(h, "routerMs", router_ms)?;
            let (core, bucket_ms, window_ms) = hot::with_router(router.slot as usize, |r| {
                let p = r.policy_in_force();
                Ok((
                    Core::new(config, instance, r).map(Box::new),
                    p.bucket_ms,
                    p.window_ms,
                ))
            })?;
            let core = core.map_err(Failure::FleetConfig)?;
            let clock = Clock::new(
                bucket_ms,
                i64::try_from(wall).unwrap_or(i64::MAX),
                i64::try_from(local).unwrap_or(i64::MAX),
            );
            Ok(NativeFleet {
                core,
                export: Box::default(),
                snapshot: Box::default(),
                router: router.id,
                names: router.names.clone(),
                prefix: KeyPrefix(&service).to_string(),
                service,
                instance,
                wire: Wire::new(&config, window_ms, clock),
                rounds_ok: 0,
                rounds_failed: 0,
            })
        })();
        Failure::check(&env, r)
    }

    /// The round script's one key, `fo:{<service>}:hb`.
    #[napi(getter)]
    pub fn key(&self) -> String {
        HeartbeatKey(&self.service).to_string()
    }

    /// This instance's id.
    #[napi(getter)]
    pub fn instance(&self) -> u32 {
        self.instance
    }

    /// When the next round is due, on the router's clock (ms); null while one is in flight. The
    /// core's `Fleet::watch` looks at the router first: a local open or ramp rollback not yet
    /// exported makes it due at once, and so does a hard failure that begins or lengthens a run on
    /// a healthy provider (then every half period while the run lasts, at most two rounds a
    /// period), so the fleet hears of it without waiting a period.
    #[napi]
    pub fn poll_timeout(&mut self, env: Env, router: &NativeRouter) -> napi::Result<Option<f64>> {
        let r = self.drive(router, |f, r| f.core.watch(r).map(js_num));
        Failure::check(&env, r)
    }

    /// Makes the next round due at `nowMs` (-1: now, on the native clock).
    #[napi]
    pub fn sync_now(&mut self, env: Env, now_ms: f64) -> napi::Result<()> {
        let r = hot::now_arg(hot::hot(), "nowMs", now_ms).map(|now| self.core.sync_now(now));
        Failure::check(&env, r)
    }

    /// Starts a round if one is due at `nowMs` (-1: the native clock): `{round, args}` for
    /// `EVALSHA(script, 1, key, ...args)`, or null. The round's deltas are handed out now, once:
    /// send them once and never retry.
    #[napi]
    pub fn poll_transmit(
        &mut self,
        env: Env,
        router: &NativeRouter,
        now_ms: f64,
    ) -> napi::Result<Option<NativeFleetRound>> {
        let r = hot::now_arg(hot::hot(), "nowMs", now_ms).and_then(|now| {
            self.drive(router, |f, r| {
                let round = f.core.poll_transmit(r, now, &mut f.export)?;
                let mut args = Vec::with_capacity(16 + f.export.len * 24);
                f.wire.encode(&f.prefix, &f.names, &f.export, |a| {
                    args.push(a.to_string());
                });
                Some(NativeFleetRound {
                    round: js_num(round),
                    args,
                })
            })
        });
        Failure::check(&env, r)
    }

    /// Hands round `round`'s reply (the script's return value, as ioredis gives it) to the core:
    /// false when the round is not the one in flight. A reply of the wrong shape counts as a
    /// failed round and throws a `TypeError` with code `ERR_FLEET_REPLY`.
    #[napi(ts_args_type = "router: NativeRouter, round: number, reply: unknown, nowMs: number")]
    pub fn handle_reply(
        &mut self,
        env: Env,
        router: &NativeRouter,
        round: f64,
        reply: Unknown,
        now_ms: f64,
    ) -> napi::Result<bool> {
        let r = (|| {
            let now = hot::now_arg(hot::hot(), "nowMs", now_ms)?;
            let round = hot::time("round", round)?;
            let providers = self.names.len().min(P);
            let decoded = self
                .wire
                .decode(&JsReply(reply), providers, &mut self.snapshot);
            self.drive(router, |f, r| match decoded {
                Ok(()) => {
                    let ok = f.core.handle_snapshot(r, round, &f.snapshot, now);
                    f.rounds_ok += u64::from(ok);
                    Ok(ok)
                }
                Err(e) => {
                    if f.core.handle_failure(r, round, now) {
                        f.rounds_failed += 1;
                    }
                    Err(Failure::FleetReply(e.0))
                }
            })?
        })();
        Failure::check(&env, r)
    }

    /// Round `round` failed (timeout, connection lost, an error reply): false when it is not the
    /// round in flight.
    #[napi]
    pub fn handle_failure(
        &mut self,
        env: Env,
        router: &NativeRouter,
        round: f64,
        now_ms: f64,
    ) -> napi::Result<bool> {
        let r = (|| {
            let now = hot::now_arg(hot::hot(), "nowMs", now_ms)?;
            let round = hot::time("round", round)?;
            self.drive(router, |f, r| {
                let ok = f.core.handle_failure(r, round, now);
                f.rounds_failed += u64::from(ok);
                ok
            })
        })();
        Failure::check(&env, r)
    }

    /// The next fleet event, or null.
    #[napi]
    pub fn poll_event(&mut self) -> Option<NativeFleetEvent> {
        self.core.poll_event().map(|e| match e {
            FleetEvent::Degraded { at_ms, failures } => NativeFleetEvent {
                kind: "degraded".into(),
                at_ms: js_num(at_ms),
                failures: Some(failures),
            },
            FleetEvent::Resumed { at_ms } => NativeFleetEvent {
                kind: "resumed".into(),
                at_ms: js_num(at_ms),
                failures: None,
            },
        })
    }

    /// Whether the instance runs on local knowledge alone (too many failed rounds in a row).
    #[napi(getter)]
    pub fn degraded(&self) -> bool {
        self.core.degraded()
    }

    /// Failed rounds in a row.
    #[napi(getter)]
    pub fn failures(&self) -> u32 {
        self.core.failures()
    }

    /// Live instances at the last successful round (this one included).
    #[napi(getter)]
    pub fn live_instances(&self) -> u32 {
        self.core.live_instances()
    }

    /// The quorum among the live instances.
    #[napi(getter)]
    pub fn quorum(&self) -> u32 {
        self.core.quorum()
    }

    /// Rounds answered and handed to the core so far.
    #[napi(getter)]
    pub fn rounds_ok(&self) -> f64 {
        js_num(self.rounds_ok)
    }

    /// Rounds that failed so far.
    #[napi(getter)]
    pub fn rounds_failed(&self) -> f64 {
        js_num(self.rounds_failed)
    }

    /// Provider `index`'s register as this instance last saw it: `[epoch, open_until_ms,
    /// ramp_start_ms]`, times on the router's clock (0: unset); null for an index the router does
    /// not have.
    #[napi]
    pub fn register(
        &mut self,
        env: Env,
        router: &NativeRouter,
        index: u32,
    ) -> napi::Result<Option<Vec<f64>>> {
        let r = self.drive(router, |f, r| {
            let id: ProviderId = r.provider_at(index as usize)?;
            let g = f.core.register(id)?;
            Some(vec![
                js_num(g.epoch),
                js_num(g.open_until_ms),
                js_num(g.ramp_start_ms),
            ])
        });
        Failure::check(&env, r)
    }
}

/// The round script (Lua) every binding runs: `failover_core::fleet::REDIS_ROUND_SCRIPT`.
#[napi]
pub fn fleet_script() -> &'static str {
    failover_core::fleet::REDIS_ROUND_SCRIPT
}
