//! The `Fleet` class: one instance's side of fleet mode (`failover_core::fleet::Fleet`), for a
//! `Router`. It only encodes what the core wants written into the round script's arguments and
//! decodes the script's reply into the core's `Snapshot`; every decision is the core's. The Redis
//! I/O itself is Python's (`failover_core.fleet.FleetSync`, redis-py, a background thread).
//!
//! # Clocks
//!
//! The fleet needs every instance on one time grid (Unix ms), but a router runs on
//! `time.monotonic_ns()` by default. At construction the fleet takes `shift`, the difference of
//! the wall clock and the router's clock rounded to a whole number of buckets, and adds it to every
//! time and grid index it writes (subtracting it from what it reads). Rounding keeps bucket
//! boundaries where the router has them, at the cost of up to half a bucket of skew per instance
//! (so two instances may disagree by up to a bucket plus their real skew: docs/fleet.md). The
//! shift is fixed for the fleet's lifetime, so a wall-clock step does not move it.

use std::sync::Mutex;

use failover_core::fleet::{
    BucketCounts, Export, Fleet as CoreFleet, FleetConfig, FleetEvent, ProviderSnapshot, Register,
    Snapshot,
};
use failover_core::{DefaultRouter, EventKind, Manual, ProviderId, Trigger};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyInt, PyList, PyString};

use crate::convert;
use crate::error;
use crate::router::Router;

const P: usize = 16;
const B: usize = 120;
type Core = CoreFleet<P, B>;

/// The hash fields of a bucket, in `BucketCounts` order: the 7 counts, then `h0`..`h31`.
const COUNT_FIELDS: [&str; 7] = [
    "success",
    "slow",
    "rate_limited",
    "server_error",
    "connection_error",
    "timeout",
    "client_error",
];

fn fields(b: &BucketCounts) -> [u32; 7] {
    let c = &b.counts;
    [
        c.success,
        c.slow,
        c.rate_limited,
        c.server_error,
        c.connection_error,
        c.timeout,
        c.client_error,
    ]
}

fn set_field(b: &mut BucketCounts, name: &str, n: u32) {
    let c = &mut b.counts;
    match name {
        "success" => c.success = n,
        "slow" => c.slow = n,
        "rate_limited" => c.rate_limited = n,
        "server_error" => c.server_error = n,
        "connection_error" => c.connection_error = n,
        "timeout" => c.timeout = n,
        "client_error" => c.client_error = n,
        h => {
            if let Some(i) = h.strip_prefix('h').and_then(|i| i.parse::<usize>().ok())
                && let Some(slot) = b.hist.get_mut(i)
            {
                *slot = n;
            }
        }
    }
}

struct State {
    core: Box<Core>,
    export: Box<Export<P>>,
    snapshot: Box<Snapshot<P>>,
    rounds_ok: u64,
    rounds_failed: u64,
    /// The router's `queued_total` when its events were last looked at (for local opens).
    seen_events: u64,
}

/// One instance of a fleet for a `Router` (see the module doc). Every method takes the router's
/// lock, then the fleet's, for the time of one core call: no I/O happens under either.
#[pyclass(frozen, module = "failover_core._native", name = "Fleet")]
pub struct Fleet {
    router: Py<Router>,
    state: Mutex<State>,
    prefix: String,
    instance: u32,
    names: Box<[String]>,
    bucket_ms: u64,
    /// Wall clock − router clock, a whole number of buckets (ms).
    shift: i64,
    ttl_hb: u64,
    ttl_bucket: u64,
    ttl_vote: u64,
    lease_ms: u64,
}

/// 24 h: the register outlives any open; renewed on every write.
const REGISTER_TTL_MS: u64 = 86_400_000;

impl Fleet {
    fn with<R>(
        &self,
        py: Python<'_>,
        method: &'static str,
        f: impl FnOnce(&mut State, &mut DefaultRouter) -> R,
    ) -> PyResult<R> {
        let router = self.router.bind(py).get();
        router.with(method, |r| {
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut st, r)
        })
    }

    fn to_store(&self, t: u64) -> u64 {
        u64::try_from(i128::from(t) + i128::from(self.shift)).unwrap_or(0)
    }

    fn store_to_local(&self, t: u64) -> u64 {
        u64::try_from(i128::from(t) - i128::from(self.shift)).unwrap_or(0)
    }

    fn grid_to_store(&self, g: u64) -> u64 {
        let k = self.shift / self.bucket_ms as i64;
        u64::try_from(i128::from(g) + i128::from(k)).unwrap_or(0)
    }

    fn grid_store_to_local(&self, g: u64) -> u64 {
        let k = self.shift / self.bucket_ms as i64;
        u64::try_from(i128::from(g) - i128::from(k)).unwrap_or(0)
    }

    /// A register time: 0 (unset) stays 0.
    fn reg_to_store(&self, t: u64) -> u64 {
        if t == 0 { 0 } else { self.to_store(t).max(1) }
    }

    fn reg_store_to_local(&self, t: u64) -> u64 {
        if t == 0 {
            0
        } else {
            self.store_to_local(t).max(1)
        }
    }

    /// The script's arguments for an export.
    fn encode(&self, e: &Export<P>) -> Vec<String> {
        let mut a: Vec<String> = Vec::with_capacity(16 + e.len * 24);
        a.push(self.prefix.clone());
        a.push(e.instance.to_string());
        a.push(self.to_store(e.at_ms).to_string());
        a.push(self.to_store(e.live_since_ms).to_string());
        a.push(self.grid_to_store(e.read_from).to_string());
        a.push(self.grid_to_store(e.read_to).to_string());
        a.push(self.lease_ms.to_string());
        a.push(self.ttl_hb.to_string());
        a.push(self.ttl_bucket.to_string());
        a.push(self.ttl_vote.to_string());
        a.push(REGISTER_TTL_MS.to_string());
        a.push(e.len.to_string());
        for (i, pe) in e.providers[..e.len].iter().enumerate() {
            a.push(self.names[i].clone());
            a.push(pe.deltas().len().to_string());
            for d in pe.deltas() {
                a.push(self.grid_to_store(d.stamp).to_string());
                let at = a.len();
                a.push(String::new());
                let mut nf = 0usize;
                for (name, n) in COUNT_FIELDS.iter().zip(fields(d)) {
                    if n > 0 {
                        a.push((*name).to_owned());
                        a.push(n.to_string());
                        nf += 1;
                    }
                }
                for (bin, &n) in d.hist.iter().enumerate() {
                    if n > 0 {
                        a.push(format!("h{bin}"));
                        a.push(n.to_string());
                        nf += 1;
                    }
                }
                a[at] = nf.to_string();
            }
            match pe.register {
                Some(r) => {
                    a.push("1".into());
                    a.push(r.epoch.to_string());
                    a.push(self.reg_to_store(r.open_until_ms).to_string());
                    a.push(self.reg_to_store(r.ramp_start_ms).to_string());
                }
                None => a.extend(["0", "0", "0", "0"].map(String::from)),
            }
            a.push(pe.vote.unwrap_or(0).to_string());
            a.push(if pe.want_lease { "1" } else { "0" }.into());
        }
        a
    }

    /// Decodes the script's reply into `snap` (for `providers` providers).
    fn decode(
        &self,
        reply: &Bound<'_, PyAny>,
        providers: usize,
        snap: &mut Snapshot<P>,
    ) -> PyResult<()> {
        let top = reply
            .cast::<PyList>()
            .map_err(|_| error::fleet_reply("not a list"))?;
        if top.len() != providers + 1 {
            return Err(error::fleet_reply("wrong number of providers"));
        }
        snap.live_instances = u32::try_from(num(&top.get_item(0)?)?).unwrap_or(u32::MAX);
        snap.len = providers;
        for i in 0..providers {
            let item = top.get_item(i + 1)?;
            let p = item
                .cast::<PyList>()
                .map_err(|_| error::fleet_reply("a provider is not a list"))?;
            if p.len() != 6 {
                return Err(error::fleet_reply("a provider has not 6 items"));
            }
            let mut ps = ProviderSnapshot::EMPTY;
            let sums = p.get_item(0)?;
            let sums = sums
                .cast::<PyList>()
                .map_err(|_| error::fleet_reply("sums are not a list"))?;
            for s in sums.iter() {
                let s = s
                    .cast::<PyList>()
                    .map_err(|_| error::fleet_reply("a sum is not a list"))?
                    .clone();
                if s.len() != 2 {
                    return Err(error::fleet_reply("a sum has not 2 items"));
                }
                let mut b = BucketCounts {
                    stamp: self.grid_store_to_local(num(&s.get_item(0)?)?),
                    ..BucketCounts::ZERO
                };
                let kv = s.get_item(1)?;
                let kv = kv
                    .cast::<PyList>()
                    .map_err(|_| error::fleet_reply("a hash is not a list"))?;
                let mut j = 0;
                while j + 1 < kv.len() {
                    let name = text(&kv.get_item(j)?)?;
                    let n = u32::try_from(num(&kv.get_item(j + 1)?)?).unwrap_or(u32::MAX);
                    set_field(&mut b, &name, n);
                    j += 2;
                }
                if !ps.push_sum(b) {
                    break;
                }
            }
            ps.register = Register {
                epoch: num(&p.get_item(1)?)?,
                open_until_ms: self.reg_store_to_local(num(&p.get_item(2)?)?),
                ramp_start_ms: self.reg_store_to_local(num(&p.get_item(3)?)?),
            };
            ps.voters = u32::try_from(num(&p.get_item(4)?)?).unwrap_or(u32::MAX);
            let holder = text(&p.get_item(5)?)?;
            ps.lease_holder = if holder.is_empty() {
                None
            } else {
                holder.parse().ok()
            };
            snap.providers[i] = ps;
        }
        Ok(())
    }
}

/// A reply value as text (`bytes` or `str`).
fn text(v: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(b) = v.cast::<PyBytes>() {
        Ok(String::from_utf8_lossy(b.as_bytes()).into_owned())
    } else if let Ok(s) = v.cast::<PyString>() {
        Ok(s.to_cow()?.into_owned())
    } else if v.is_none() {
        Ok(String::new())
    } else {
        Err(error::fleet_reply("expected bytes or str"))
    }
}

/// A reply value as a non-negative integer (`int`, or its decimal text).
fn num(v: &Bound<'_, PyAny>) -> PyResult<u64> {
    if v.is_instance_of::<PyInt>() {
        return v
            .extract::<u64>()
            .map_err(|_| error::fleet_reply("a negative or huge integer"));
    }
    let t = text(v)?;
    if t.is_empty() {
        return Ok(0);
    }
    t.parse()
        .map_err(|_| error::fleet_reply("a count is not a decimal integer"))
}

fn now(v: Option<&Bound<'_, PyAny>>) -> PyResult<u64> {
    convert::timestamp("now_ms", v)
}

#[pymethods]
impl Fleet {
    /// `Fleet(router, service, instance, *, period_ms=1000, jitter=0.1, seed=0, live_periods=3,
    /// degraded_after=3, quorum=0.3, quorum_min=2, lease_ms=3000, clock_skew_ms=0)`: instance
    /// `instance` (a u32, unique in the fleet) of the fleet `service` for `router` (on its
    /// default clock). The core validates the configuration (`ConfigError`). The first round is
    /// due at once. `clock_skew_ms` is added to the wall clock when the shift is taken: it lets a
    /// test run an instance whose clock is off; leave it 0.
    #[new]
    #[pyo3(signature = (router, service, instance, *, period_ms=1000, jitter=0.1, seed=0,
        live_periods=3, degraded_after=3, quorum=0.3, quorum_min=2, lease_ms=3000,
        clock_skew_ms=0))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        router: Bound<'_, Router>,
        service: &str,
        instance: u32,
        period_ms: u64,
        jitter: f64,
        seed: u64,
        live_periods: u32,
        degraded_after: u32,
        quorum: f64,
        quorum_min: u32,
        lease_ms: u64,
        clock_skew_ms: i64,
    ) -> PyResult<Self> {
        let ppm = |name: &str, v: f64| -> PyResult<u32> {
            if !(0.0..=1.0).contains(&v) {
                return Err(error::arg_value_u64(name, "a fraction in [0, 1]", 0));
            }
            Ok((v * 1_000_000.0).round() as u32)
        };
        let config = FleetConfig {
            period_ms,
            jitter_ppm: ppm("jitter", jitter)?,
            seed,
            live_periods,
            degraded_after,
            quorum_ppm: ppm("quorum", quorum)?,
            quorum_min,
            lease_ms,
        };
        let r = router.get();
        let built = r.with("Fleet()", |core| {
            let names: Vec<String> = (0..core.len())
                .filter_map(|i| core.provider_at(i).map(|id| core.name(id).to_owned()))
                .collect();
            let p = core.policy_in_force();
            (
                Core::new(config, instance, core).map(Box::new),
                names,
                p.bucket_ms,
                p.window_ms,
            )
        })?;
        let (core, names, bucket_ms, window_ms) = built;
        let core = core.map_err(|e| error::fleet_config(py, e))?;
        let wall = convert::wall_ms() as i128 + i128::from(clock_skew_ms);
        let mono = i128::from(convert::monotonic_ms());
        let b = i128::from(bucket_ms);
        let shift = ((wall - mono) + b / 2).div_euclid(b) * b;
        Ok(Fleet {
            router: router.unbind(),
            state: Mutex::new(State {
                core,
                export: Box::new(Export::new()),
                snapshot: Box::new(Snapshot::new()),
                rounds_ok: 0,
                rounds_failed: 0,
                seen_events: 0,
            }),
            prefix: format!("fo:{{{service}}}"),
            instance,
            names: names.into_boxed_slice(),
            bucket_ms,
            shift: i64::try_from(shift).unwrap_or(0),
            ttl_hb: 10 * period_ms,
            ttl_bucket: window_ms + 2 * config.max_period_ms(),
            ttl_vote: u64::from(live_periods) * period_ms,
            lease_ms,
        })
    }

    /// The round script's first key, `fo:{<service>}:hb` (every key of the fleet shares its hash
    /// tag).
    #[getter]
    fn key(&self) -> String {
        format!("{}:hb", self.prefix)
    }

    /// This instance's id.
    #[getter]
    fn instance(&self) -> u32 {
        self.instance
    }

    /// When the next round is due, on the router's clock (ms); `None` while one is in flight.
    /// A local open or ramp rollback since the last call (an `opened` event not caused by the
    /// fleet), an isolation or a release makes it due at once, so the fleet hears of it without
    /// waiting a period. Cost: O(new router events).
    fn poll_timeout(&self, py: Python<'_>) -> PyResult<Option<u64>> {
        self.with(py, "Fleet.poll_timeout", |st, r| {
            let total = r.queued_total();
            if total != st.seen_events {
                let new = usize::try_from(total.wrapping_sub(st.seen_events)).unwrap_or(usize::MAX);
                st.seen_events = total;
                let local_open = r.newest_events(new).find_map(|e| match e.kind {
                    EventKind::Opened { reason, .. } if reason.trigger != Trigger::FleetOpen => {
                        Some(e.at_ms)
                    }
                    // An isolation or a release by hand (or one this instance followed: then
                    // the extra round only confirms it).
                    EventKind::Manual(Manual::Isolated | Manual::Released) => Some(e.at_ms),
                    _ => None,
                });
                if let Some(at) = local_open {
                    st.core.sync_now(at);
                }
            }
            st.core.poll_timeout()
        })
    }

    /// Makes the next round due at `now_ms` (default: now).
    #[pyo3(signature = (now_ms=None))]
    fn sync_now(&self, py: Python<'_>, now_ms: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let now = now(now_ms)?;
        self.with(py, "Fleet.sync_now", |st, _| st.core.sync_now(now))
    }

    /// Starts a round if one is due: `(round, args)` for `EVALSHA(script, 1, key, *args)`, or
    /// `None`. The round's deltas are handed out now, once: send them once and never retry.
    #[pyo3(signature = (now_ms=None))]
    fn poll_transmit(
        &self,
        py: Python<'_>,
        now_ms: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Option<(u64, Vec<String>)>> {
        let now = now(now_ms)?;
        self.with(py, "Fleet.poll_transmit", |st, r| {
            let State { core, export, .. } = st;
            core.poll_transmit(r, now, export)
                .map(|round| (round, self.encode(export)))
        })
    }

    /// Hands round `round`'s reply (the script's return value, as redis-py gives it) to the core.
    /// False when the round is not the one in flight. A reply of the wrong shape raises
    /// `ValueError` and counts as a failed round.
    #[pyo3(signature = (round, reply, now_ms=None))]
    fn handle_reply(
        &self,
        py: Python<'_>,
        round: u64,
        reply: &Bound<'_, PyAny>,
        now_ms: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let now = now(now_ms)?;
        let providers = self.names.len().min(P);
        let mut snap = Box::new(Snapshot::<P>::new());
        if let Err(e) = self.decode(reply, providers, &mut snap) {
            self.with(py, "Fleet.handle_failure", |st, r| {
                if st.core.handle_failure(r, round, now) {
                    st.rounds_failed += 1;
                }
            })?;
            return Err(e);
        }
        self.with(py, "Fleet.handle_reply", |st, r| {
            *st.snapshot = *snap;
            let State { core, snapshot, .. } = st;
            let ok = core.handle_snapshot(r, round, snapshot, now);
            if ok {
                st.rounds_ok += 1;
            }
            ok
        })
    }

    /// Round `round` failed (timeout, connection lost, an error reply). False when it is not the
    /// round in flight.
    #[pyo3(signature = (round, now_ms=None))]
    fn handle_failure(
        &self,
        py: Python<'_>,
        round: u64,
        now_ms: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let now = now(now_ms)?;
        self.with(py, "Fleet.handle_failure", |st, r| {
            let ok = st.core.handle_failure(r, round, now);
            if ok {
                st.rounds_failed += 1;
            }
            ok
        })
    }

    /// The next fleet event as a dict (`{"kind": "degraded", "at_ms", "failures"}` or
    /// `{"kind": "resumed", "at_ms"}`, router clock), or `None`.
    fn poll_event<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let e = self.with(py, "Fleet.poll_event", |st, _| st.core.poll_event())?;
        let Some(e) = e else { return Ok(None) };
        let d = PyDict::new(py);
        match e {
            FleetEvent::Degraded { at_ms, failures } => {
                d.set_item("kind", "degraded")?;
                d.set_item("at_ms", at_ms)?;
                d.set_item("failures", failures)?;
            }
            FleetEvent::Resumed { at_ms } => {
                d.set_item("kind", "resumed")?;
                d.set_item("at_ms", at_ms)?;
            }
        }
        Ok(Some(d))
    }

    /// Whether the instance runs on local knowledge alone (too many failed rounds in a row).
    #[getter]
    fn degraded(&self, py: Python<'_>) -> PyResult<bool> {
        self.with(py, "Fleet.degraded", |st, _| st.core.degraded())
    }

    /// Failed rounds in a row.
    #[getter]
    fn failures(&self, py: Python<'_>) -> PyResult<u32> {
        self.with(py, "Fleet.failures", |st, _| st.core.failures())
    }

    /// Live instances at the last successful round (this one included).
    #[getter]
    fn live_instances(&self, py: Python<'_>) -> PyResult<u32> {
        self.with(py, "Fleet.live_instances", |st, _| st.core.live_instances())
    }

    /// The quorum among the live instances.
    #[getter]
    fn quorum(&self, py: Python<'_>) -> PyResult<u32> {
        self.with(py, "Fleet.quorum", |st, _| st.core.quorum())
    }

    /// Rounds answered and handed to the core so far.
    #[getter]
    fn rounds_ok(&self, py: Python<'_>) -> PyResult<u64> {
        self.with(py, "Fleet.rounds_ok", |st, _| st.rounds_ok)
    }

    /// Rounds that failed so far.
    #[getter]
    fn rounds_failed(&self, py: Python<'_>) -> PyResult<u64> {
        self.with(py, "Fleet.rounds_failed", |st, _| st.rounds_failed)
    }

    /// Provider `provider`'s register as this instance last saw it: `(epoch, open_until_ms,
    /// ramp_start_ms)`, times on the router's clock (0: unset).
    fn register(&self, py: Python<'_>, provider: &str) -> PyResult<(u64, u64, u64)> {
        let Some(i) = self.names.iter().position(|n| n == provider) else {
            return Err(error::unknown_provider("provider", provider, &self.names));
        };
        self.with(py, "Fleet.register", |st, core| {
            let r = core
                .provider_at(i)
                .and_then(|id: ProviderId| st.core.register(id))
                .unwrap_or_default();
            (r.epoch, r.open_until_ms, r.ramp_start_ms)
        })
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let (deg, live) = self.with(py, "Fleet.__repr__", |st, _| {
            (st.core.degraded(), st.core.live_instances())
        })?;
        Ok(format!(
            "Fleet(key={:?}, instance={}, live_instances={live}, degraded={})",
            self.key(),
            self.instance,
            if deg { "True" } else { "False" }
        ))
    }
}

/// The round script (Lua) every binding runs: `failover_core::fleet::REDIS_ROUND_SCRIPT`.
pub const SCRIPT: &str = failover_core::fleet::REDIS_ROUND_SCRIPT;
