//! The `Fleet` class: one instance's side of fleet mode (`failover_core::fleet::Fleet`), for a
//! `Router`. The round script's arguments and the decoding of its reply are the shared
//! `failover_core::fleet::wire` (the Node binding uses the same); every decision is the core's.
//! The Redis I/O itself is Python's (`failover_core.fleet.FleetSync`, redis-py, a background
//! thread).
//!
//! # Clocks
//!
//! A router runs on `time.monotonic_ns()` by default; the fleet on Unix ms. At construction the
//! fleet takes a `wire::Clock` from the wall clock (plus `clock_skew_ms`) and the router's clock:
//! their difference rounded to whole buckets, fixed for the fleet's lifetime (docs/fleet.md). A
//! router on `clock="unix"` already reads Unix ms: its fleet uses `Clock::UNIX` (no shift, no
//! rounding), unless `clock_skew_ms` simulates a skew.

use std::sync::Mutex;

use failover_core::fleet::wire::{Clock, HeartbeatKey, KeyPrefix, Reply, Wire, fraction_ppm};
use failover_core::fleet::{Export, Fleet as CoreFleet, FleetConfig, FleetEvent, Snapshot};
use failover_core::{DefaultRouter, ProviderId};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyInt, PyList, PyString};

use crate::convert;
use crate::error;
use crate::router::Router;

const P: usize = 16;
const B: usize = 120;
type Core = CoreFleet<P, B>;

/// A value of the round script's reply as redis-py gives it (lists, `int`, `bytes`, or `str`
/// with `decode_responses`; `None` reads as an empty string), for the shared decoder.
struct PyReply<'py>(Bound<'py, PyAny>);

impl Reply for PyReply<'_> {
    fn array_len(&self) -> Option<usize> {
        self.0.cast::<PyList>().ok().map(|l| l.len())
    }

    fn item(&self, i: usize) -> Option<Self> {
        let l = self.0.cast::<PyList>().ok()?;
        (i < l.len())
            .then(|| l.get_item(i).ok().map(PyReply))
            .flatten()
    }

    fn integer(&self) -> Option<i64> {
        if self.0.is_instance_of::<PyInt>() {
            // An int beyond i64 reads as a negative one: an error for the decoder.
            Some(self.0.extract::<i64>().unwrap_or(-1))
        } else {
            None
        }
    }

    fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        if let Ok(b) = self.0.cast::<PyBytes>() {
            Some(f(b.as_bytes()))
        } else if let Ok(s) = self.0.cast::<PyString>() {
            s.to_cow().ok().map(|s| f(s.as_bytes()))
        } else if self.0.is_none() {
            Some(f(b""))
        } else {
            None
        }
    }
}

struct State {
    core: Box<Core>,
    export: Box<Export<P>>,
    snapshot: Box<Snapshot<P>>,
    rounds_ok: u64,
    rounds_failed: u64,
}

/// One instance of a fleet for a `Router` (see the module doc). Every method takes the router's
/// lock, then the fleet's, for the time of one core call: no I/O happens under either.
#[pyclass(frozen, module = "failover_core._native", name = "Fleet")]
pub struct Fleet {
    router: Py<Router>,
    state: Mutex<State>,
    service: String,
    prefix: String,
    instance: u32,
    names: Box<[String]>,
    /// The shared encoder and decoder of the round script, with this instance's clock shift.
    wire: Wire,
}

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

    /// A `now_ms` argument, `None` being the router's default clock now.
    fn now(&self, py: Python<'_>, v: Option<&Bound<'_, PyAny>>) -> PyResult<u64> {
        self.router.bind(py).get().time_arg(v)
    }

    /// The script's arguments for an export.
    fn encode(&self, e: &Export<P>) -> Vec<String> {
        let mut a: Vec<String> = Vec::with_capacity(16 + e.len * 24);
        self.wire
            .encode(&self.prefix, &self.names, e, |arg| a.push(arg.to_string()));
        a
    }
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
            fraction_ppm(v).ok_or_else(|| error::arg_value_u64(name, "a fraction in [0, 1]", 0))
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
        let wall = i64::try_from(convert::wall_ms())
            .unwrap_or(i64::MAX)
            .saturating_add(clock_skew_ms);
        let rt = router.get();
        let router_now = i64::try_from(rt.clock_now()).unwrap_or(i64::MAX);
        // A router on the Unix clock (`Router(clock="unix")`) writes its own times: no shift, no
        // rounding. On the monotonic clock (or to simulate a skew), the wall-clock offset in
        // whole buckets (docs/fleet.md).
        let clock = if rt.clock_offset_ms() != 0 && clock_skew_ms == 0 {
            Clock::UNIX
        } else {
            Clock::new(bucket_ms, wall, router_now)
        };
        Ok(Fleet {
            router: router.unbind(),
            state: Mutex::new(State {
                core,
                export: Box::new(Export::new()),
                snapshot: Box::new(Snapshot::new()),
                rounds_ok: 0,
                rounds_failed: 0,
            }),
            prefix: KeyPrefix(service).to_string(),
            service: service.to_owned(),
            instance,
            names: names.into_boxed_slice(),
            wire: Wire::new(&config, window_ms, clock),
        })
    }

    /// The round script's first key, `fo:{<service>}:hb` (every key of the fleet shares its hash
    /// tag).
    #[getter]
    fn key(&self) -> String {
        HeartbeatKey(&self.service).to_string()
    }

    /// This instance's id.
    #[getter]
    fn instance(&self) -> u32 {
        self.instance
    }

    /// When the next round is due, on the router's clock (ms); `None` while one is in flight.
    /// First looks at the router (`failover_core::fleet::Fleet::watch`): a local open or ramp
    /// rollback not yet sent makes it due at once, and so does a hard
    /// failure that begins or lengthens a run on a healthy provider (then every half period while
    /// the run lasts, at most two rounds a period), so the fleet hears of it without waiting a
    /// period. Cost: O(providers).
    fn poll_timeout(&self, py: Python<'_>) -> PyResult<Option<u64>> {
        self.with(py, "Fleet.poll_timeout", |st, r| st.core.watch(r))
    }

    /// Makes the next round due at `now_ms` (default: now).
    #[pyo3(signature = (now_ms=None))]
    fn sync_now(&self, py: Python<'_>, now_ms: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let now = self.now(py, now_ms)?;
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
        let now = self.now(py, now_ms)?;
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
        let now = self.now(py, now_ms)?;
        let providers = self.names.len().min(P);
        let mut snap = Box::new(Snapshot::<P>::new());
        if let Err(e) = self
            .wire
            .decode(&PyReply(reply.clone()), providers, &mut snap)
            .map_err(|e| error::fleet_reply(e.0))
        {
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
        let now = self.now(py, now_ms)?;
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
