//! The native half of the `failover-core` npm package: `NativeRouter`, a
//! [`failover_core::DefaultRouter`] behind napi-rs, plus the core's HTTP classification.
//!
//! This module is private to the package: `index.js` (the hand-written JS layer, with its own
//! `index.d.ts`) is the public API and the only caller. Its shape follows from one measurement:
//! a napi-rs class method costs a few hundred nanoseconds per call, a bare napi callback with no
//! arguments about 30 ns. So the calls every request makes, `pick` and `record`, and the request
//! engine's steps behind `router.call`, are bare callbacks (`hotPick`, `hotRecord`; `hotBegin`,
//! `hotPoll`, `hotOutcome`, `hotCancel`, `hotFree`) that exchange their inputs and outputs as
//! numbers through a shared `Float64Array` (see `hot`, `hot_request`); everything else is an
//! ordinary napi-rs method.
//!
//! - `error`: every conversion of a core error, a panic or a bad argument into a JS error.
//! - `convert`: policy objects in (through the core's `Policy::set`), views and events out.
//! - `hot`: this thread's routers, the default clock and the fast path.
//! - `classify`: the core's one classification table, `classify(facts)`.
//! - `hot_request`: the request engine's fast path, which `router.call` drives: requests kept in a
//!   per-thread slab, every step written into the shared buffer as numbers.
//! - `fleet`: `NativeFleet`, fleet mode's sans-IO side for a router (the Redis I/O is
//!   `lib/fleet.js`'s).
//! - `request`: `NativeRequest`, the same engine for one request behind an object (a plain object
//!   per step): internal, for tests and drivers other than `router.call`.
//!
//! No call can crash the process: every entry point runs the engine under `catch_unwind`, and a
//! router that panicked is closed (later calls throw `InternalError` with code
//! `router_poisoned`).

// Under `cfg(test)` napi-derive registers nothing, so the exported functions look unused.
#![cfg_attr(test, allow(dead_code))]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use failover_core::{
    Action, DefaultRouter, OutcomeKind, ProviderView, Recorded, classify_status, hash_key,
    parse_retry_after,
};
use napi::bindgen_prelude::{Env, Object, Unknown};
use napi_derive::napi;

mod classify;
mod convert;
mod error;
mod fleet;
mod hot;
mod hot_request;
mod request;

use convert::{js_num, to_js};
use error::{Failure, Res, panic_failure};
use hot::{slot, with_router};

/// Runs construction code that is not on a router under `catch_unwind`.
fn guarded<T>(f: impl FnOnce() -> Res<T>) -> Res<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| Err(panic_failure(p)))
}

/// A failover router over up to 16 providers (the capacity of `DefaultRouter`). Internal: use
/// `Router` from the package's `index.js`.
#[napi]
pub struct NativeRouter {
    slot: u32,
    names: Arc<[String]>,
    /// Unique in the process (slots are reused): a `NativeRequest` checks it is driven with the
    /// router it was started on.
    id: u64,
}

/// The next `NativeRouter::id`.
static NEXT_ROUTER_ID: AtomicU64 = AtomicU64::new(1);

impl Drop for NativeRouter {
    fn drop(&mut self) {
        hot::remove(self.slot as usize);
    }
}

impl NativeRouter {
    /// Runs `f` on this router (see [`with_router`]), throwing its failure.
    fn with<T>(&self, env: &Env, f: impl FnOnce(&mut DefaultRouter) -> Res<T>) -> napi::Result<T> {
        Failure::check(env, with_router(self.slot as usize, f))
    }
}

#[napi]
impl NativeRouter {
    /// Builds a router over `providers` (priority order) with `policy` (field names of
    /// `Policy::set`; `ramp` an array of `{share, dwell_ms}`). Throws `ConfigError` with the core's
    /// code and message for a policy or names the core refuses, `TypeError` for wrong shapes.
    #[napi(
        constructor,
        ts_args_type = "providers: string[], policy?: Record<string, unknown> | null"
    )]
    pub fn new(env: Env, providers: Unknown, policy: Option<Unknown>) -> napi::Result<Self> {
        let r = guarded(|| {
            let names = convert::providers(providers)?;
            let policy = convert::policy(policy)?;
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let router = DefaultRouter::new(&policy, &refs).map_err(Failure::Config)?;
            // `DefaultRouter` is about 200 KB: build it on the heap.
            Ok((names, Box::new(router)))
        });
        let (names, router) = Failure::check(&env, r)?;
        let slot = hot::insert(router);
        Ok(NativeRouter {
            slot: slot as u32,
            names: names.into(),
            id: NEXT_ROUTER_ID.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// The handle the JS layer writes into the shared buffer for `hotPick` / `hotRecord`.
    #[napi(getter)]
    pub fn slot(&self) -> u32 {
        self.slot
    }

    /// Provider names in priority order.
    #[napi]
    pub fn names(&self) -> Vec<String> {
        self.names.to_vec()
    }

    /// `pick_with` with a sticky key (hashed with the core's `hash_key`) and a tried mask; writes
    /// the ticket into the shared buffer. Throws `UnavailableError`.
    #[napi]
    pub fn pick_keyed(
        &self,
        env: Env,
        now_ms: f64,
        key: Option<String>,
        tried: f64,
    ) -> napi::Result<()> {
        let h = hot::hot();
        let r = hot::now_arg(h, "nowMs", now_ms).and_then(|now| {
            let key = key.as_deref().map(|k| hash_key(k.as_bytes()));
            hot::pick_into(h, self.slot as usize, now, key, hot::tried_mask(tried)?)
        });
        Failure::check(&env, r)
    }

    /// Records an outcome for provider `index` without a ticket. Returns the `Recorded` code.
    #[napi]
    pub fn observe(
        &self,
        env: Env,
        index: f64,
        outcome: f64,
        latency_ms: f64,
        retry_after_ms: f64,
        now_ms: f64,
    ) -> napi::Result<i32> {
        let r = (|| {
            let now = hot::now_arg(hot::hot(), "nowMs", now_ms)?;
            let o = hot::outcome(outcome, latency_ms, retry_after_ms)?;
            with_router(self.slot as usize, |r| {
                let id = hot::int_in(index, 63.0).and_then(|i| r.provider_at(i as usize));
                Ok(hot::recorded_code(match id {
                    Some(id) => r.observe(id, o, now),
                    None => {
                        // The core's `observe` advances the clock before it finds the id unknown.
                        r.handle_timeout(now);
                        Recorded::UnknownProvider
                    }
                }))
            })
        })();
        Failure::check(&env, r)
    }

    /// Feeds one answer's rate-limit headers (`[name, value]` string pairs) for provider
    /// `index` to the core's pacing (`Router::observe_headroom`), with the wall clock
    /// `nowUnixMs` for Anthropic's reset times. Returns the `Recorded` code.
    #[napi]
    pub fn observe_headroom(
        &self,
        env: Env,
        index: f64,
        headers: Vec<Vec<String>>,
        now_ms: f64,
        now_unix_ms: Option<f64>,
    ) -> napi::Result<i32> {
        let r = (|| {
            let now = hot::now_arg(hot::hot(), "nowMs", now_ms)?;
            let now_unix = now_unix_ms.map(|n| hot::time("nowUnixMs", n)).transpose()?;
            let h = classify::read_headroom(&headers, now_unix)?.0;
            with_router(self.slot as usize, |r| {
                let id = hot::int_in(index, 63.0).and_then(|i| r.provider_at(i as usize));
                Ok(hot::recorded_code(match id {
                    Some(id) => r.observe_headroom(id, &h, now),
                    None => {
                        r.handle_timeout(now);
                        Recorded::UnknownProvider
                    }
                }))
            })
        })();
        Failure::check(&env, r)
    }

    /// The core's `isolate`, `release` or `reset` (`action` 0, 1, 2) of provider `index` at
    /// `nowMs`. Returns whether it changed anything.
    #[napi]
    pub fn manual(&self, env: Env, action: u32, index: f64, now_ms: f64) -> napi::Result<bool> {
        let r = hot::now_arg(hot::hot(), "nowMs", now_ms).and_then(|now| {
            with_router(self.slot as usize, |r| {
                let Some(id) = hot::int_in(index, 63.0).and_then(|i| r.provider_at(i as usize))
                else {
                    return Ok(false);
                };
                Ok(match action {
                    0 => r.isolate(id, now),
                    1 => r.release(id, now),
                    _ => r.reset(id, now),
                })
            })
        });
        Failure::check(&env, r)
    }

    /// The policy in force, every field (defaults included), by the names policy objects use.
    #[napi(ts_return_type = "Record<string, unknown>")]
    pub fn policy<'e>(&self, env: &'e Env) -> napi::Result<Object<'e>> {
        let p = self.with(env, |r| Ok(r.policy_in_force().clone()))?;
        to_js(env, &p, &self.names)
    }

    /// Whether provider `index` is isolated by hand.
    #[napi]
    pub fn is_isolated(&self, env: Env, index: f64) -> napi::Result<bool> {
        self.with(&env, |r| {
            Ok(hot::int_in(index, 63.0)
                .and_then(|i| r.provider_at(i as usize))
                .is_some_and(|id| r.is_isolated(id)))
        })
    }

    /// Performs every transition due at `nowMs`.
    #[napi]
    pub fn handle_timeout(&self, env: Env, now_ms: f64) -> napi::Result<()> {
        let r = hot::now_arg(hot::hot(), "nowMs", now_ms).and_then(|now| {
            with_router(self.slot as usize, |r| {
                r.handle_timeout(now);
                Ok(())
            })
        });
        Failure::check(&env, r)
    }

    /// When `handleTimeout` next has something to do, or null.
    #[napi]
    pub fn poll_timeout(&self, env: Env) -> napi::Result<Option<f64>> {
        self.with(&env, |r| Ok(r.poll_timeout().map(js_num)))
    }

    /// The next health check due at `nowMs`: writes its ticket into the shared buffer and returns
    /// true, or returns false.
    #[napi]
    pub fn poll_action(&self, env: Env, now_ms: f64) -> napi::Result<bool> {
        let r = hot::now_arg(hot::hot(), "nowMs", now_ms).and_then(|now| {
            with_router(self.slot as usize, |r| {
                Ok(match r.poll_action(now) {
                    Some(Action::HealthCheck(t)) => {
                        hot::write_ticket(hot::hot(), &t);
                        true
                    }
                    None => false,
                })
            })
        });
        Failure::check(&env, r)
    }

    /// Takes the oldest event, or null.
    #[napi(ts_return_type = "NativeEvent | null")]
    pub fn poll_event<'e>(&self, env: &'e Env) -> napi::Result<Option<Object<'e>>> {
        let e = self.with(env, |r| Ok(r.poll_event()))?;
        e.map(|e| convert::event_js(env, &e, &self.names))
            .transpose()
    }

    /// Takes every queued event, oldest first.
    #[napi(ts_return_type = "NativeEvent[]")]
    pub fn drain_events<'e>(&self, env: &'e Env) -> napi::Result<Vec<Object<'e>>> {
        let events = self.with(env, |r| {
            Ok(std::iter::from_fn(|| r.poll_event()).collect::<Vec<_>>())
        })?;
        events
            .iter()
            .map(|e| convert::event_js(env, e, &self.names))
            .collect()
    }

    /// The events queued since the core's `queued_total` was `seen`, oldest first, without taking
    /// them from the queue (for the JS layer's listeners; the queue stays for `pollEvent`). Writes
    /// the new total into the shared buffer (EVENTS_TOTAL) like every call.
    #[napi(ts_return_type = "NativeEvent[]")]
    pub fn events_since<'e>(&self, env: &'e Env, seen: f64) -> napi::Result<Vec<Object<'e>>> {
        let events = self.with(env, |r| {
            let new = (r.queued_total() as f64 - seen).max(0.0) as usize;
            Ok(r.newest_events(new).copied().collect::<Vec<_>>())
        })?;
        events
            .iter()
            .map(|e| convert::event_js(env, e, &self.names))
            .collect()
    }

    /// Provider `index`'s view (the shape of `fixtures/README.md`, "The view"), or null.
    #[napi(ts_return_type = "Record<string, unknown> | null")]
    pub fn view<'e>(&self, env: &'e Env, index: f64) -> napi::Result<Option<Object<'e>>> {
        let v = self.with(env, |r| {
            // Copied out without its name (which borrows the router); `names` has it.
            Ok(hot::int_in(index, 63.0)
                .and_then(|i| r.provider_at(i as usize))
                .and_then(|id| r.view(id))
                .map(|v| ProviderView { name: "", ..v }))
        })?;
        v.map(|v| self.view_js(env, v)).transpose()
    }

    /// Every provider's view, in priority order.
    #[napi(ts_return_type = "Array<Record<string, unknown>>")]
    pub fn views<'e>(&self, env: &'e Env) -> napi::Result<Vec<Object<'e>>> {
        let views = self.with(env, |r| {
            Ok(r.views()
                .map(|v| ProviderView { name: "", ..v })
                .collect::<Vec<_>>())
        })?;
        views.into_iter().map(|v| self.view_js(env, v)).collect()
    }

    /// When a caller whose request every provider failed may try again: ms from the latest time
    /// seen until the soonest provider is expected to take traffic (0 when one already can).
    /// Read-only.
    #[napi]
    pub fn retry_hint(&self, env: Env) -> napi::Result<f64> {
        self.with(&env, |r| Ok(js_num(r.retry_hint())))
    }

    /// The latest time the engine has seen, ms.
    #[napi]
    pub fn now(&self, env: Env) -> napi::Result<f64> {
        self.with(&env, |r| Ok(js_num(r.now())))
    }

    /// Events dropped because the queue was full.
    #[napi]
    pub fn dropped_events(&self, env: Env) -> napi::Result<f64> {
        self.with(&env, |r| Ok(js_num(r.dropped_events())))
    }

    /// How many events were ever queued (the core's `queued_total`, exact below 2^53).
    #[napi]
    pub fn queued_total(&self, env: Env) -> napi::Result<f64> {
        self.with(&env, |r| Ok(r.queued_total() as f64))
    }

    /// Events waiting in the queue.
    #[napi]
    pub fn pending_events(&self, env: Env) -> napi::Result<u32> {
        self.with(&env, |r| Ok(r.pending_events() as u32))
    }

    /// The core's `invariant_violation()`: null when every internal invariant holds (O(P·B), for
    /// tests).
    #[napi]
    pub fn invariant_violation(&self, env: Env) -> napi::Result<Option<String>> {
        self.with(&env, |r| Ok(r.invariant_violation().map(str::to_string)))
    }

    /// Panics inside the engine boundary, to prove a panic becomes an `InternalError` and closes
    /// this router without crashing the process. For tests only.
    #[napi(js_name = "_panicForTest")]
    pub fn panic_for_test(&self, env: Env) -> napi::Result<()> {
        self.with(&env, |_| -> Res<()> {
            panic!("deliberate panic for the test suite")
        })
    }
}

impl NativeRouter {
    /// A view copied out of the router as a plain object, with its name put back.
    fn view_js<'e>(&self, env: &'e Env, v: ProviderView<'static>) -> napi::Result<Object<'e>> {
        let name = self.names[v.id.index()].as_str();
        to_js(env, &ProviderView { name, ..v }, &self.names)
    }
}

/// The core's `classify_status` (the status column of the core's classification table): the
/// outcome kind name of an HTTP status (an integer 0..=65535).
#[napi]
pub fn classify_status_code(env: Env, status: f64) -> napi::Result<&'static str> {
    let r = if let Some(s) = hot::int_in(status, 65535.0) {
        Ok(classify_status(s as u16).name())
    } else {
        Err(Failure::range(
            "status",
            "must be an integer HTTP status between 0 and 65535",
        ))
    };
    Failure::check(&env, r)
}

/// The core's `parse_retry_after`: a `Retry-After` value (delta-seconds or an HTTP-date, measured
/// against `nowUnixMs`) in ms from now, or null.
#[napi]
pub fn parse_retry_after_value(
    env: Env,
    value: String,
    now_unix_ms: Option<f64>,
) -> napi::Result<Option<f64>> {
    let r = now_unix_ms
        .map(|n| hot::time("nowUnixMs", n))
        .transpose()
        .map(|now| parse_retry_after(&value, now).map(js_num));
    Failure::check(&env, r)
}

/// Outcome kind names by code (the core's `OutcomeKind::ALL` order).
#[napi]
pub fn outcome_kinds() -> Vec<&'static str> {
    OutcomeKind::ALL.iter().map(|k| k.name()).collect()
}

/// Ticket kind names by code.
#[napi]
pub fn ticket_kinds() -> Vec<&'static str> {
    hot::TICKET_KINDS.iter().map(|k| k.name()).collect()
}

/// `Recorded` names by code.
#[napi]
pub fn recorded_names() -> Vec<&'static str> {
    hot::RECORDED.iter().map(|r| r.name()).collect()
}

/// Positions in the shared buffer (see `ioBuffer`). A `now` of -1 means "read the default clock"
/// (`monotonicNow()`), here and in every `nowMs` argument of `NativeRouter`.
#[napi(object)]
pub struct IoLayout {
    pub router: u32,
    pub now: u32,
    pub tried: u32,
    pub provider: u32,
    pub kind: u32,
    pub generation: u32,
    pub probe_seq: u32,
    pub degraded: u32,
    pub ticket_retry_after: u32,
    pub issued_at: u32,
    pub outcome: u32,
    pub latency: u32,
    pub retry_after: u32,
    pub used_now: u32,
    pub t0: u32,
    pub status: u32,
    pub events_router: u32,
    pub events_total: u32,
    pub len: u32,
}

/// Where each input and output sits in the shared buffer.
#[napi]
pub fn io_layout() -> IoLayout {
    let u = |x: usize| x as u32;
    IoLayout {
        router: u(slot::ROUTER),
        now: u(slot::NOW),
        tried: u(slot::TRIED),
        provider: u(slot::PROVIDER),
        kind: u(slot::KIND),
        generation: u(slot::GENERATION),
        probe_seq: u(slot::PROBE_SEQ),
        degraded: u(slot::DEGRADED),
        ticket_retry_after: u(slot::TICKET_RETRY_AFTER),
        issued_at: u(slot::ISSUED_AT),
        outcome: u(slot::OUTCOME),
        latency: u(slot::LATENCY),
        retry_after: u(slot::RETRY_AFTER),
        used_now: u(slot::USED_NOW),
        t0: u(slot::T0),
        status: u(slot::STATUS),
        events_router: u(slot::EVENTS_ROUTER),
        events_total: u(slot::EVENTS_TOTAL),
        len: u(slot::LEN),
    }
}

/// The shape of an event object (see `fixtures/README.md`, "Events"); fields beyond `at_ms`,
/// `provider` and `kind` depend on the kind.
#[napi(object, js_name = "NativeEvent")]
pub struct NativeEventShape {
    #[napi(js_name = "at_ms")]
    pub at_ms: f64,
    pub provider: String,
    pub kind: String,
    /// The core's words for it (`Event::describe`).
    pub description: String,
}

/// Bucket boundaries in seconds for the duration histograms of `failover-core/otel`: the core's
/// `DURATION_BUCKETS_S` (the OpenTelemetry GenAI conventions' advice, 10 ms to about 82 s).
#[napi]
pub fn duration_buckets() -> Vec<f64> {
    failover_core::DURATION_BUCKETS_S.to_vec()
}
