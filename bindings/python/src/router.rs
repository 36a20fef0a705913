//! The `Router` and `Ticket` classes: a `failover_core::DefaultRouter` behind a mutex.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use failover_core::{
    Action, DefaultRouter, Event, Outcome, PickRequest, Policy, ProviderId, ProviderSet,
    ProviderView, Recorded, Ticket as CoreTicket, TicketKind,
};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use crate::convert::{self, PolicyError};
use crate::error;

/// Distinguishes routers, so a ticket cannot be recorded on a router that did not issue it.
static NEXT_ROUTER_ID: AtomicU64 = AtomicU64::new(1);

/// The Python function every router hands its new events to (`_router._dispatch(listener,
/// events)`: it logs them and calls the router's `on_event`), set once at import by
/// `_set_event_hook`. Unset (the native module used alone), events only wait in the queue.
static EVENT_HOOK: OnceLock<Py<PyAny>> = OnceLock::new();

/// Sets the function new events are pushed to (called once by `failover_core._router`).
#[pyfunction]
pub fn _set_event_hook(hook: Bound<'_, PyAny>) {
    let _ = EVENT_HOOK.set(hook.unbind());
}

/// A decision of [`Router::pick`] or [`Router::poll_action`]: which provider to call. Hand it back
/// to `Router.record` with the outcome.
#[pyclass(frozen, module = "failover_core._native", name = "Ticket")]
pub struct Ticket {
    pub(crate) t: CoreTicket,
    /// The issuing router's names (shared, so creating and dropping a ticket touches no Python
    /// reference count).
    names: Arc<[Py<PyString>]>,
    router: u64,
}

#[pymethods]
impl Ticket {
    /// The provider to call.
    #[getter]
    fn provider(&self, py: Python<'_>) -> Py<PyString> {
        self.names[self.t.provider.index()].clone_ref(py)
    }

    /// The provider's position in the router's list (0 is the primary).
    #[getter]
    fn provider_index(&self) -> usize {
        self.t.provider.index()
    }

    /// `"request"`, `"probe"` (a real request that probes a recovering provider) or
    /// `"health_check"` (asked for by `poll_action`).
    #[getter]
    fn kind(&self, py: Python<'_>) -> Py<PyString> {
        let s = match self.t.kind {
            TicketKind::Request => intern!(py, "request"),
            TicketKind::Probe => intern!(py, "probe"),
            TicketKind::HealthCheck => intern!(py, "health_check"),
        };
        s.clone().unbind()
    }

    /// Whether the call probes a recovering provider (a probe or a health check).
    #[getter]
    fn is_probe(&self) -> bool {
        self.t.is_probe()
    }

    /// Set when no provider could take the request normally and this is the all-down fallback
    /// (`when_all_down = "soonest"`).
    #[getter]
    fn degraded(&self) -> bool {
        self.t.degraded
    }

    /// With `degraded`: when the chosen provider is expected to take traffic again, ms from now.
    #[getter]
    fn retry_after_ms(&self) -> Option<u64> {
        self.t.retry_after_ms
    }

    /// When the decision was made (the engine's time), ms.
    #[getter]
    fn issued_at_ms(&self) -> u64 {
        self.t.issued_at_ms
    }

    /// The provider's circuit generation when the ticket was issued (an outcome from an earlier
    /// generation is stale).
    #[getter]
    fn generation(&self) -> u32 {
        self.t.generation
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Ticket(provider={:?}, kind={:?}, degraded={}, retry_after_ms={}, issued_at_ms={})",
            self.names[self.t.provider.index()].bind(py).to_string(),
            self.t.kind.name(),
            if self.t.degraded { "True" } else { "False" },
            self.t
                .retry_after_ms
                .map_or_else(|| "None".to_owned(), |v| v.to_string()),
            self.t.issued_at_ms,
        )
    }
}

/// The failover engine (`failover_core::DefaultRouter`: up to 16 providers, windows of up to 120
/// buckets). Every method takes the router's lock for the time of one engine call, so one router
/// can be shared by threads and asyncio tasks; no Python code runs while the lock is held.
#[pyclass(frozen, subclass, module = "failover_core._native", name = "Router")]
pub struct Router {
    inner: Mutex<Box<DefaultRouter>>,
    poisoned: AtomicBool,
    pub(crate) names: Arc<[Py<PyString>]>,
    plain_names: Box<[String]>,
    /// The core's ids of the providers, by index (from `provider_at`).
    ids: Box<[ProviderId]>,
    pub(crate) id: u64,
    /// The `on_event` callback, if any.
    listener: Mutex<Option<Py<PyAny>>>,
    /// The core's `queued_total` when new events were last copied out (written under the lock).
    seen_events: AtomicU64,
    /// Set once a caller passes its own `now_ms`: events then carry no wall-clock time.
    explicit_clock: AtomicBool,
    /// Added to the monotonic clock for the router's default time: 0 on `clock="monotonic"`;
    /// on `clock="unix"`, Unix ms − monotonic ms when the router was made (so its default time
    /// reads Unix ms and never steps).
    clock_offset: u64,
    /// The observer of attempts and events (`failover_core.otel`), if any: an object with
    /// `attempt(facts)` and `events(dicts)`. `has_observer` makes the disabled case one load.
    observer: Mutex<Option<Py<PyAny>>>,
    has_observer: AtomicBool,
    /// Whether the observer wants every attempt (`attempt(facts)`), not only events.
    per_attempt: AtomicBool,
    /// Attempt counters kept natively while `counting` (`failover_core.otel`'s counters: a
    /// Python call per attempt would cost more than the call itself).
    counts: Mutex<Counts>,
    counting: AtomicBool,
}

/// Attempts by provider, outcome and ticket kind, and attempts after a request's first by
/// provider, since counting was turned on.
#[derive(Default)]
struct Counts {
    attempts: Vec<u64>,
    fallbacks: Vec<u64>,
}

const N_OUTCOMES: usize = failover_core::OutcomeKind::ALL.len();
const TICKET_KINDS: [TicketKind; 3] = [
    TicketKind::Request,
    TicketKind::Probe,
    TicketKind::HealthCheck,
];

fn outcome_index(k: failover_core::OutcomeKind) -> usize {
    failover_core::OutcomeKind::ALL
        .iter()
        .position(|&o| o == k)
        .unwrap_or(0)
}

fn kind_index(k: TicketKind) -> usize {
    match k {
        TicketKind::Request => 0,
        TicketKind::Probe => 1,
        TicketKind::HealthCheck => 2,
    }
}

impl Router {
    /// Runs `f` on the engine under the lock; a panic poisons this router and becomes
    /// `InternalError` instead of unwinding into Python.
    #[inline]
    pub(crate) fn with<R>(
        &self,
        method: &'static str,
        f: impl FnOnce(&mut DefaultRouter) -> R,
    ) -> PyResult<R> {
        if self.poisoned.load(Ordering::Relaxed) {
            return Err(error::poisoned());
        }
        let mut guard = self.inner.lock().map_err(|_| error::poisoned())?;
        match catch_unwind(AssertUnwindSafe(|| f(&mut guard))) {
            Ok(r) => {
                // New events are copied out under the lock (so no other thread's drain or input
                // comes between) and pushed after it is released (so a callback may use the
                // router).
                let total = guard.queued_total();
                if total != self.seen_events.load(Ordering::Relaxed) {
                    let fresh = self.fresh_events(&guard, total);
                    drop(guard);
                    self.push_events(&fresh);
                }
                Ok(r)
            }
            Err(payload) => {
                self.poisoned.store(true, Ordering::Relaxed);
                Err(error::panicked(method, &*payload))
            }
        }
    }

    /// The events queued since the last copy (all of them: the callbacks run after every engine
    /// call, and one call queues far fewer than the queue holds).
    #[cold]
    fn fresh_events(&self, r: &DefaultRouter, total: u64) -> Vec<Event> {
        let seen = self.seen_events.swap(total, Ordering::Relaxed);
        let new = usize::try_from(total.wrapping_sub(seen)).unwrap_or(usize::MAX);
        if EVENT_HOOK.get().is_none() {
            return Vec::new();
        }
        r.newest_events(new).copied().collect()
    }

    /// Hands `events` to the Python hook (it logs them and calls `on_event`); an exception
    /// there is reported as unraisable, never raised into the call that caused the events.
    #[cold]
    fn push_events(&self, events: &[Event]) {
        let Some(hook) = EVENT_HOOK.get() else { return };
        if events.is_empty() {
            return;
        }
        Python::attach(|py| {
            let offset =
                (!self.explicit_clock.load(Ordering::Relaxed)).then(convert::unix_offset_ms);
            let res = (|| -> PyResult<()> {
                let list = PyList::empty(py);
                for e in events {
                    list.append(convert::event_dict(py, e, &self.names, offset)?)?;
                }
                let listener = match self.listener.lock() {
                    Ok(l) => l.as_ref().map(|l| l.clone_ref(py)),
                    Err(_) => None,
                };
                let observer = self.observer(py);
                hook.bind(py).call1((listener, list, observer))?;
                Ok(())
            })();
            if let Err(e) = res {
                e.write_unraisable(py, None);
            }
        });
    }

    /// A `now_ms` argument; one given by the caller marks the router as driven by the caller's
    /// clock (its events carry no wall-clock time).
    #[inline]
    fn now_arg(&self, v: Option<&Bound<'_, PyAny>>) -> PyResult<u64> {
        if v.is_some() && !self.explicit_clock.load(Ordering::Relaxed) {
            self.explicit_clock.store(true, Ordering::Relaxed);
        }
        self.time_arg(v)
    }

    /// A `now_ms` argument, `None` being the router's default clock now (does not mark the
    /// router as driven by the caller's clock).
    #[inline]
    pub(crate) fn time_arg(&self, v: Option<&Bound<'_, PyAny>>) -> PyResult<u64> {
        match v {
            None => Ok(self.clock_now()),
            Some(_) => convert::timestamp("now_ms", v),
        }
    }

    /// The router's default clock now, ms: the monotonic clock, or Unix ms on `clock="unix"`.
    #[inline]
    pub(crate) fn clock_now(&self) -> u64 {
        convert::monotonic_ms().saturating_add(self.clock_offset)
    }

    /// What the router's default clock adds to the monotonic clock, ms (0: monotonic).
    pub(crate) fn clock_offset_ms(&self) -> u64 {
        self.clock_offset
    }

    /// Marks the router as driven by the caller's clock (a `Request` started at the caller's
    /// `now_ms`).
    pub(crate) fn mark_explicit_clock(&self) {
        self.explicit_clock.store(true, Ordering::Relaxed);
    }

    /// The wall-clock offset for events read now, if the router runs on the default clock.
    fn clock_offset(&self) -> Option<i128> {
        (!self.explicit_clock.load(Ordering::Relaxed)).then(|| {
            if self.clock_offset == 0 {
                convert::unix_offset_ms()
            } else {
                0
            }
        })
    }

    /// The attempt observer, if one is set (one atomic load when none is).
    #[inline]
    pub(crate) fn observer(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        if !self.has_observer.load(Ordering::Relaxed) {
            return None;
        }
        match self.observer.lock() {
            Ok(o) => o.as_ref().map(|o| o.clone_ref(py)),
            Err(_) => None,
        }
    }

    /// Hands the facts of the attempt `report` (recorded by a request) to the observer:
    /// `(provider, ticket_kind, number, outcome, result, started_ms, ended_ms, first_token_ms,
    /// retry_after_ms, excluded)`, times in the engine's ms; `excluded` is a tuple of the core's
    /// `"<provider>=<reason>"` entries for the providers passed over (`Report::excluded`). An
    /// exception there is reported as unraisable.
    pub(crate) fn observe_attempt(&self, py: Python<'_>, report: &failover_core::Report) {
        if self.counting.load(Ordering::Relaxed)
            && let Ok(mut c) = self.counts.lock()
        {
            let p = report.provider.index();
            let i = (p * N_OUTCOMES + outcome_index(report.outcome.kind)) * TICKET_KINDS.len()
                + kind_index(report.kind);
            if let Some(n) = c.attempts.get_mut(i) {
                *n += 1;
            }
            if report.number > 1
                && let Some(n) = c.fallbacks.get_mut(p)
            {
                *n += 1;
            }
        }
        if self.per_attempt.load(Ordering::Relaxed) {
            self.call_observer(py, report);
        }
    }

    #[cold]
    fn call_observer(&self, py: Python<'_>, report: &failover_core::Report) {
        let Some(obs) = self.observer(py) else { return };
        let facts = (
            self.names[report.provider.index()].clone_ref(py),
            report.kind.name(),
            report.number,
            report.outcome.kind.name(),
            report.recorded.name(),
            report.started_ms,
            report.ended_ms,
            report.first_token_ms,
            report.outcome.retry_after_ms,
            PyTuple::new(
                py,
                report
                    .excluded
                    .entries(&self.plain_names)
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>(),
            )
            .ok(),
        );
        if let Err(e) = obs
            .bind(py)
            .call_method1(pyo3::intern!(py, "attempt"), (facts,))
        {
            e.write_unraisable(py, None);
        }
    }

    /// Whether attempts are observed (an observer, or counting).
    #[inline]
    pub(crate) fn observed(&self) -> bool {
        self.per_attempt.load(Ordering::Relaxed) || self.counting.load(Ordering::Relaxed)
    }

    /// Whether an engine panic has poisoned this router.
    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Relaxed)
    }

    fn ticket(&self, t: CoreTicket) -> Ticket {
        Ticket {
            t,
            names: Arc::clone(&self.names),
            router: self.id,
        }
    }

    /// The index of the provider named by `obj` (the core turns it into a `ProviderId` with
    /// `provider_at` under the lock).
    fn provider_index(&self, arg: &'static str, obj: &Bound<'_, PyAny>) -> PyResult<usize> {
        let Ok(s) = obj.cast::<PyString>() else {
            return Err(error::arg_type(arg, "a provider name (str)", obj));
        };
        // Fast path: the very string objects this router handed out.
        if let Some(i) = self.names.iter().position(|n| obj.is(n)) {
            return Ok(i);
        }
        let name = s.to_cow()?;
        match self.plain_names.iter().position(|n| *n == *name) {
            Some(i) => Ok(i),
            None => Err(error::unknown_provider(arg, &name, &self.plain_names)),
        }
    }

    /// The core's `PickRequest` for a `key` (str or bytes) and the names of providers `tried`.
    #[inline]
    fn pick_request(
        &self,
        key: Option<&Bound<'_, PyAny>>,
        tried: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PickRequest> {
        let mut req = PickRequest::default();
        if let Some(k) = key {
            req.key = Some(convert::key(k)?);
        }
        if let Some(tr) = tried {
            if tr.is_instance_of::<PyString>() {
                return Err(error::arg_type(
                    "tried",
                    "a collection of provider names (a bare string is not one)",
                    tr,
                ));
            }
            let Ok(iter) = tr.try_iter() else {
                return Err(error::arg_type(
                    "tried",
                    "a collection of provider names",
                    tr,
                ));
            };
            let mut set = ProviderSet::new();
            for item in iter {
                let i = self.provider_index("tried", &item?)?;
                // The index is this router's; `provider_at` turns it into the core's id.
                if let Some(id) = self.ids.get(i) {
                    set.insert(*id);
                }
            }
            req.tried = set;
        }
        Ok(req)
    }

    fn outcome(
        outcome: &Bound<'_, PyAny>,
        latency_ms: Option<&Bound<'_, PyAny>>,
        retry_after_ms: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Outcome> {
        Ok(Outcome {
            kind: convert::outcome_kind(outcome)?,
            latency_ms: convert::latency(latency_ms)?,
            retry_after_ms: convert::retry_after(retry_after_ms)?,
        })
    }
}

/// Builds a core policy from an optional mapping and keyword arguments, through `Policy::set`.
pub fn build_policy(
    py: Python<'_>,
    policy: Option<&Bound<'_, PyAny>>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<Policy> {
    let mut p = Policy::default();
    let mut apply = |items: Vec<(Bound<'_, PyAny>, Bound<'_, PyAny>)>| -> PyResult<()> {
        for (k, v) in items {
            let Ok(k) = k.cast::<PyString>() else {
                return Err(error::arg_type(
                    "policy keys",
                    "str (a policy field name)",
                    &k,
                ));
            };
            let field = k.to_cow()?;
            match convert::set_field(&mut p, &field, &v) {
                Ok(()) => {}
                Err(PolicyError::Core(e)) => return Err(error::config(py, &e)),
                Err(PolicyError::Py(e)) => return Err(e),
            }
        }
        Ok(())
    };
    if let Some(obj) = policy
        && !obj.is_none()
    {
        let items: Vec<(Bound<'_, PyAny>, Bound<'_, PyAny>)> = if let Ok(d) = obj.cast::<PyDict>() {
            d.iter().collect()
        } else if obj.hasattr(intern!(py, "items"))? && !obj.is_instance_of::<PyString>() {
            obj.call_method0(intern!(py, "items"))?
                .try_iter()?
                .map(|kv| kv.and_then(|kv| kv.extract()))
                .collect::<PyResult<_>>()?
        } else {
            return Err(error::arg_type(
                "policy",
                "a dict of policy fields (or None)",
                obj,
            ));
        };
        apply(items)?;
    }
    if let Some(kw) = kwargs {
        apply(kw.iter().collect())?;
    }
    Ok(p)
}

/// The interned name of a `Recorded` (`"accepted"`, `"stale"`, `"unknown_provider"`).
fn recorded(py: Python<'_>, rec: Recorded) -> Py<PyString> {
    let s = match rec {
        Recorded::Accepted => intern!(py, "accepted"),
        Recorded::Stale => intern!(py, "stale"),
        Recorded::UnknownProvider => intern!(py, "unknown_provider"),
    };
    s.clone().unbind()
}

/// An `on_event` argument: a callable or `None`.
fn listener_arg(cb: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Py<PyAny>>> {
    match cb {
        None => Ok(None),
        Some(c) if c.is_none() => Ok(None),
        Some(c) if c.is_callable() => Ok(Some(c.clone().unbind())),
        Some(c) => Err(error::arg_type(
            "on_event",
            "a callable taking one event (or None)",
            c,
        )),
    }
}

fn names_arg<'py>(providers: &Bound<'py, PyAny>) -> PyResult<Vec<Bound<'py, PyString>>> {
    if providers.is_instance_of::<PyString>() || providers.is_instance_of::<PyBytes>() {
        return Err(error::arg_type(
            "providers",
            "a list of provider names (a bare string is not a list)",
            providers,
        ));
    }
    let Ok(iter) = providers.try_iter() else {
        return Err(error::arg_type(
            "providers",
            "a list of provider names",
            providers,
        ));
    };
    let mut out = Vec::new();
    for (i, item) in iter.enumerate() {
        let item = item?;
        match item.cast_into::<PyString>() {
            Ok(s) => out.push(s),
            Err(e) => {
                let obj = e.into_inner();
                return Err(error::arg_type(
                    &format!("providers[{i}]"),
                    "a provider name (str)",
                    &obj,
                ));
            }
        }
    }
    Ok(out)
}

#[pymethods]
impl Router {
    /// `Router(providers, policy=None, /, *, on_event=None, **policy_fields)`: providers in
    /// priority order (the first is the primary); the policy as a dict and/or keyword arguments
    /// with the field names of the scenario files (keyword arguments are applied after the dict);
    /// `on_event` a callback for every event. Raises `ConfigError`
    /// with the core's code and message for a policy or names the core refuses.
    #[new]
    #[pyo3(signature = (providers, policy=None, /, *, on_event=None, clock=None, **policy_fields))]
    fn new(
        py: Python<'_>,
        providers: &Bound<'_, PyAny>,
        policy: Option<&Bound<'_, PyAny>>,
        on_event: Option<&Bound<'_, PyAny>>,
        clock: Option<&Bound<'_, PyAny>>,
        policy_fields: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let clock_offset = match clock {
            None => 0,
            Some(c) => match c.extract::<String>().ok().as_deref() {
                Some("monotonic") => 0,
                // Unix ms − monotonic ms, now (at least 1, so it marks the Unix clock).
                Some("unix") => convert::wall_ms()
                    .saturating_sub(convert::monotonic_ms())
                    .max(1),
                _ => return Err(error::arg_value("clock", "'monotonic' or 'unix'", c)),
            },
        };
        let names = names_arg(providers)?;
        let listener = listener_arg(on_event)?;
        let p = build_policy(py, policy, policy_fields)?;
        let plain: Vec<String> = names
            .iter()
            .map(|n| n.to_cow().map(|c| c.into_owned()))
            .collect::<PyResult<_>>()?;
        let refs: Vec<&str> = plain.iter().map(String::as_str).collect();
        let built = catch_unwind(|| DefaultRouter::new(&p, &refs).map(Box::new))
            .map_err(|payload| error::panicked("Router()", &*payload))?;
        let inner = built.map_err(|e| error::config(py, &e))?;
        let ids: Box<[ProviderId]> = (0..plain.len())
            .filter_map(|i| inner.provider_at(i))
            .collect();
        let interned: Arc<[Py<PyString>]> = plain
            .iter()
            .map(|n| PyString::intern(py, n).unbind())
            .collect();
        Ok(Router {
            inner: Mutex::new(inner),
            poisoned: AtomicBool::new(false),
            names: interned,
            plain_names: plain.into_boxed_slice(),
            ids,
            id: NEXT_ROUTER_ID.fetch_add(1, Ordering::Relaxed),
            listener: Mutex::new(listener),
            seen_events: AtomicU64::new(0),
            explicit_clock: AtomicBool::new(false),
            clock_offset,
            observer: Mutex::new(None),
            has_observer: AtomicBool::new(false),
            per_attempt: AtomicBool::new(false),
            counts: Mutex::new(Counts::default()),
            counting: AtomicBool::new(false),
        })
    }

    /// The provider names, in priority order.
    #[getter]
    fn providers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.names.iter().map(|n| n.bind(py)))
    }

    fn __len__(&self) -> usize {
        self.names.len()
    }

    /// The latest time the engine has seen, ms.
    #[getter]
    fn now_ms(&self) -> PyResult<u64> {
        self.with("now_ms", |r| r.now())
    }

    /// The router's default clock: `"monotonic"` (`time.monotonic_ns() // 1_000_000`) or
    /// `"unix"` (Unix ms when the router was made, advancing with the monotonic clock).
    #[getter]
    fn clock(&self) -> &'static str {
        if self.clock_offset == 0 {
            "monotonic"
        } else {
            "unix"
        }
    }

    /// The router's default clock now, ms: what a method given no `now_ms` uses.
    fn clock_ms(&self) -> u64 {
        self.clock_now()
    }

    /// The router's default clock less the monotonic clock, ms (0 on `clock="monotonic"`): for
    /// the package's own code that serves several routers on the monotonic clock.
    #[getter]
    fn _clock_offset_ms(&self) -> u64 {
        self.clock_offset
    }

    /// Events waiting in the queue (drain them with `poll_event`).
    #[getter]
    fn pending_events(&self) -> PyResult<usize> {
        self.with("pending_events", |r| r.pending_events())
    }

    /// Events dropped because the queue (64 events) was full: the oldest are dropped, so the
    /// queue holds the newest. Callbacks (`on_event`) get every event whether or not anyone
    /// drains the queue.
    #[getter]
    fn dropped_events(&self) -> PyResult<u64> {
        self.with("dropped_events", |r| r.dropped_events())
    }

    /// Sets (or with `None` removes) the callback called with every event as it happens,
    /// including those of `call`, `acall`, `stream`, `astream` and health checks; returns the
    /// previous one.
    fn set_on_event(&self, py: Python<'_>, callback: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let new = listener_arg(Some(callback))?;
        let mut l = self.listener.lock().map_err(|_| error::poisoned())?;
        let old = std::mem::replace(&mut *l, new);
        Ok(old.unwrap_or_else(|| py.None()))
    }

    /// Sets (or with `None` removes) the observer of attempts and events used by
    /// `failover_core.otel`: an object with `events(dicts)` (every event, as dicts, before
    /// `on_event`) and, with `per_attempt`, `attempt(facts)` (called after every attempt a
    /// request records, see `observe_attempt`). Returns the previous one. Unset, it costs two
    /// atomic loads per attempt.
    #[pyo3(signature = (observer, per_attempt=true))]
    fn _set_observer(
        &self,
        py: Python<'_>,
        observer: &Bound<'_, PyAny>,
        per_attempt: bool,
    ) -> PyResult<Py<PyAny>> {
        let new = (!observer.is_none()).then(|| observer.clone().unbind());
        let mut o = self.observer.lock().map_err(|_| error::poisoned())?;
        self.has_observer.store(new.is_some(), Ordering::Relaxed);
        self.per_attempt
            .store(new.is_some() && per_attempt, Ordering::Relaxed);
        let old = std::mem::replace(&mut *o, new);
        Ok(old.unwrap_or_else(|| py.None()))
    }

    /// Turns the native attempt counters on (from zero) or off (`failover_core.otel`).
    fn _count_attempts(&self, on: bool) -> PyResult<()> {
        let mut c = self.counts.lock().map_err(|_| error::poisoned())?;
        let n = self.names.len();
        *c = if on {
            Counts {
                attempts: vec![0; n * N_OUTCOMES * TICKET_KINDS.len()],
                fallbacks: vec![0; n],
            }
        } else {
            Counts::default()
        };
        self.counting.store(on, Ordering::Relaxed);
        Ok(())
    }

    /// `(attempts, fallbacks)` counted since `_count_attempts(True)`: `[(provider, outcome,
    /// ticket_kind, count)]` and `[(provider, count)]`, nonzero counts only.
    #[allow(clippy::type_complexity)]
    fn _attempt_counts(
        &self,
        py: Python<'_>,
    ) -> PyResult<(
        Vec<(Py<PyString>, &'static str, &'static str, u64)>,
        Vec<(Py<PyString>, u64)>,
    )> {
        let c = self.counts.lock().map_err(|_| error::poisoned())?;
        let mut attempts = Vec::new();
        for (i, &n) in c.attempts.iter().enumerate() {
            if n == 0 {
                continue;
            }
            let k = i % TICKET_KINDS.len();
            let o = (i / TICKET_KINDS.len()) % N_OUTCOMES;
            let p = i / TICKET_KINDS.len() / N_OUTCOMES;
            attempts.push((
                self.names[p].clone_ref(py),
                failover_core::OutcomeKind::ALL[o].name(),
                TICKET_KINDS[k].name(),
                n,
            ));
        }
        let fallbacks = c
            .fallbacks
            .iter()
            .enumerate()
            .filter(|&(_, &n)| n > 0)
            .map(|(p, &n)| (self.names[p].clone_ref(py), n))
            .collect();
        Ok((attempts, fallbacks))
    }

    /// The callback set by `on_event=` or `set_on_event`, or `None`.
    #[getter]
    fn on_event(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let l = self.listener.lock().map_err(|_| error::poisoned())?;
        Ok(l.as_ref().map_or_else(|| py.None(), |c| c.clone_ref(py)))
    }

    /// Which provider to call now: a `Ticket`. `key` (str or bytes) keeps a conversation on the
    /// same provider through a recovery ramp; `tried` names providers this request already tried.
    /// Raises `Unavailable` (with `retry_after_ms`) when no provider may be called.
    #[pyo3(signature = (now_ms=None, *, key=None, tried=None))]
    fn pick(
        &self,
        py: Python<'_>,
        now_ms: Option<&Bound<'_, PyAny>>,
        key: Option<&Bound<'_, PyAny>>,
        tried: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Ticket> {
        let now = self.now_arg(now_ms)?;
        let req = self.pick_request(key, tried)?;
        let picked = self.with("pick", |r| r.pick_with(now, &req))?;
        match picked {
            Ok(t) => Ok(self.ticket(t)),
            Err(u) => Err(error::unavailable(py, &u)),
        }
    }

    /// Records the outcome of the call `ticket` decided: `"accepted"`, or `"stale"` when the
    /// ticket is from before the provider's last trip (or its probe expired) and was ignored.
    /// `outcome` is one of `success`, `rate_limited`, `server_error`, `connection_error`,
    /// `timeout`, `client_error`, `cancelled`.
    #[pyo3(signature = (ticket, outcome, latency_ms=None, now_ms=None, *, retry_after_ms=None))]
    fn record(
        &self,
        py: Python<'_>,
        ticket: &Bound<'_, PyAny>,
        outcome: &Bound<'_, PyAny>,
        latency_ms: Option<&Bound<'_, PyAny>>,
        now_ms: Option<&Bound<'_, PyAny>>,
        retry_after_ms: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyString>> {
        let Ok(ticket) = ticket.cast::<Ticket>() else {
            return Err(error::arg_type(
                "ticket",
                "a Ticket from Router.pick or Router.poll_action",
                ticket,
            ));
        };
        let ticket = ticket.get();
        if ticket.router != self.id {
            return Err(error::foreign_ticket());
        }
        let o = Self::outcome(outcome, latency_ms, retry_after_ms)?;
        let now = self.now_arg(now_ms)?;
        let rec = self.with("record", |r| r.record(&ticket.t, o, now))?;
        Ok(recorded(py, rec))
    }

    /// Records an outcome for `provider` without a ticket (a call made outside the router, a
    /// replayed log line): counted like an ordinary request. Returns `"accepted"`.
    #[pyo3(signature = (provider, outcome, latency_ms=None, now_ms=None, *, retry_after_ms=None))]
    fn observe(
        &self,
        py: Python<'_>,
        provider: &Bound<'_, PyAny>,
        outcome: &Bound<'_, PyAny>,
        latency_ms: Option<&Bound<'_, PyAny>>,
        now_ms: Option<&Bound<'_, PyAny>>,
        retry_after_ms: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyString>> {
        let i = self.provider_index("provider", provider)?;
        let o = Self::outcome(outcome, latency_ms, retry_after_ms)?;
        let now = self.now_arg(now_ms)?;
        let id = self.ids[i];
        let rec = self.with("observe", |r| r.observe(id, o, now))?;
        Ok(recorded(py, rec))
    }

    /// Feeds one answer's rate-limit headers for `provider` (any answer: success, 429 or error)
    /// to the core's pacing: below the policy's `pace_watermark` of quota left, the provider
    /// takes a smaller share, none at zero, until the quota resets (see the core's
    /// `Router::observe_headroom`). `headers` is a mapping (dict, httpx/requests/aiohttp
    /// headers) or an iterable of `(name, value)` pairs; other headers are ignored. `now_unix_ms`
    /// (default: the wall clock) is needed only for Anthropic's absolute reset times. `call` and
    /// `acall` do this for you. Returns `"accepted"`.
    #[pyo3(signature = (provider, headers, now_ms=None, *, now_unix_ms=None))]
    fn observe_headroom(
        &self,
        py: Python<'_>,
        provider: &Bound<'_, PyAny>,
        headers: &Bound<'_, PyAny>,
        now_ms: Option<&Bound<'_, PyAny>>,
        now_unix_ms: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyString>> {
        let i = self.provider_index("provider", provider)?;
        let now_unix_ms = match now_unix_ms {
            Some(n) if !n.is_none() => Some(convert::u64_arg(
                "now_unix_ms",
                "an int of Unix milliseconds",
                n,
            )?),
            _ => Some(convert::wall_ms()),
        };
        let (h, _) = crate::read_headroom(headers, now_unix_ms)?;
        let now = self.time_arg(now_ms)?;
        let id = self.ids[i];
        let rec = self.with("observe_headroom", |r| r.observe_headroom(id, &h, now))?;
        Ok(recorded(py, rec))
    }

    /// `call(fn, /, *, key=None, max_attempts=None, timeout_ms=None, max_wait_ms=None,
    /// classify=None, classify_result=None)`: one request with failover, driven by the core's
    /// request engine; see the Python `Router.call` documentation (`Router._call_with_options`).
    /// Without options, the first attempt is made here (start the request, poll, call
    /// `fn(attempt)`, record a returned value as a success) and only a failed attempt or a step
    /// that is not an attempt goes on in Python (`Router._call_rest`).
    #[pyo3(signature = (fn_, /, **options))]
    fn call(
        slf: &Bound<'_, Self>,
        fn_: &Bound<'_, PyAny>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        if let Some(o) = options
            && !o.is_empty()
        {
            return Ok(slf
                .call_method(intern!(py, "_call_with_options"), (fn_,), Some(o))?
                .unbind());
        }
        match crate::request::Request::start(
            py,
            slf.get(),
            &failover_core::RequestOptions::default(),
            fn_,
        )? {
            crate::request::Started::Value(v) => Ok(v),
            crate::request::Started::Pending(p) => Ok(slf
                .call_method1(intern!(py, "_call_rest"), (p, fn_))?
                .unbind()),
        }
    }

    /// Isolates `provider` by hand at `now_ms`: never picked (not even when every other provider
    /// is down), no probes or health checks, until `release`; its view says `isolated`. Returns
    /// False if it already was.
    #[pyo3(signature = (provider, now_ms=None))]
    fn isolate(
        &self,
        provider: &Bound<'_, PyAny>,
        now_ms: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let i = self.provider_index("provider", provider)?;
        let now = self.now_arg(now_ms)?;
        let id = self.ids[i];
        self.with("isolate", |r| r.isolate(id, now))
    }

    /// Ends `provider`'s isolation at `now_ms`: it takes traffic again as its circuit allows.
    /// Returns False if it was not isolated.
    #[pyo3(signature = (provider, now_ms=None))]
    fn release(
        &self,
        provider: &Bound<'_, PyAny>,
        now_ms: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let i = self.provider_index("provider", provider)?;
        let now = self.now_arg(now_ms)?;
        let id = self.ids[i];
        self.with("release", |r| r.release(id, now))
    }

    /// Clears `provider`'s state by hand at `now_ms`: window, latency baseline, circuit, strikes
    /// and backoff as new; tickets issued before are stale. An isolation is kept. Returns True.
    #[pyo3(signature = (provider, now_ms=None))]
    fn reset(
        &self,
        provider: &Bound<'_, PyAny>,
        now_ms: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let i = self.provider_index("provider", provider)?;
        let now = self.now_arg(now_ms)?;
        let id = self.ids[i];
        self.with("reset", |r| r.reset(id, now))
    }

    /// The policy in force as a dict: every field (defaults included) by the names policy dicts
    /// and keyword arguments use, with the values they take (`ramp` a list of
    /// `{"share", "dwell_ms"}`). `Router(names, **router.policy())` builds the same policy.
    fn policy<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let p = self.with("policy", |r| r.policy_in_force().clone())?;
        convert::to_dict(py, &p, &self.names)
    }

    /// Whether `provider` is isolated by hand.
    fn is_isolated(&self, provider: &Bound<'_, PyAny>) -> PyResult<bool> {
        let i = self.provider_index("provider", provider)?;
        let id = self.ids[i];
        self.with("is_isolated", |r| r.is_isolated(id))
    }

    /// Performs every transition due at `now_ms`. Spurious or early calls are harmless.
    #[pyo3(signature = (now_ms=None))]
    fn handle_timeout(&self, now_ms: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let now = self.now_arg(now_ms)?;
        self.with("handle_timeout", |r| r.handle_timeout(now))
    }

    /// When `handle_timeout` next has something to do, or a health check is due (then the latest
    /// time seen), in ms of the router's clock; `None` when nothing is scheduled.
    fn poll_timeout(&self) -> PyResult<Option<u64>> {
        self.with("poll_timeout", |r| r.poll_timeout())
    }

    /// When a caller whose request every provider failed may try again: ms from the latest time
    /// the router has seen until the soonest provider is expected to take traffic (0 when one
    /// already can). Read-only: it changes no state and reads no clock.
    fn retry_hint(&self) -> PyResult<u64> {
        self.with("retry_hint", |r| r.retry_hint())
    }

    /// The next health check to send, as a ticket of kind `"health_check"`, or `None`: for each
    /// free probe permit of a probing provider (with `probe_mode="health_checks"`), and for each
    /// healthy provider idle for `health_check_interval_ms` (when set). Call until `None`; record
    /// each check's outcome; an unreported check expires after `probe_timeout_ms`.
    #[pyo3(signature = (now_ms=None))]
    fn poll_action(&self, now_ms: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Ticket>> {
        let now = self.now_arg(now_ms)?;
        let action = self.with("poll_action", |r| r.poll_action(now))?;
        Ok(action.map(|a| match a {
            Action::HealthCheck(t) => self.ticket(t),
        }))
    }

    /// The oldest queued event as a dict (the scenario files' shape), or `None`.
    fn _poll_event<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        match self.with("poll_event", |r| r.poll_event())? {
            Some(e) => Ok(Some(convert::event_dict(
                py,
                &e,
                &self.names,
                self.clock_offset(),
            )?)),
            None => Ok(None),
        }
    }

    /// Every queued event, oldest first, as dicts.
    fn _drain_events<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let events: Vec<Event> = self.with("drain_events", |r| {
            core::iter::from_fn(|| r.poll_event()).collect()
        })?;
        let out = PyList::empty(py);
        let offset = self.clock_offset();
        for e in &events {
            out.append(convert::event_dict(py, e, &self.names, offset)?)?;
        }
        Ok(out)
    }

    /// One provider's state as a dict (the scenario files' shape, plus `share_ppm`).
    fn _view<'py>(
        &self,
        py: Python<'py>,
        provider: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let i = self.provider_index("provider", provider)?;
        // Copied out without its name (which borrows the router), so no Python object is built
        // under the lock; `plain_names` has the name.
        let view = self.with("view", |r| {
            r.view(self.ids[i]).map(|v| ProviderView { name: "", ..v })
        })?;
        match view {
            Some(v) => convert::to_dict(
                py,
                &ProviderView {
                    name: &self.plain_names[i],
                    ..v
                },
                &self.names,
            ),
            None => Err(error::unknown_provider("provider", "?", &self.plain_names)),
        }
    }

    /// `None` when every internal invariant of the engine holds, else which one is broken
    /// (O(providers × buckets): for tests).
    fn invariant_violation(&self) -> PyResult<Option<&'static str>> {
        self.with("invariant_violation", |r| r.invariant_violation())
    }

    /// Test hook: panics inside the engine lock, to show a panic becomes `InternalError` and
    /// poisons this router instead of aborting the interpreter.
    fn _debug_panic(&self) -> PyResult<()> {
        self.with("_debug_panic", |_| {
            panic!("deliberate panic (Router._debug_panic)")
        })
    }

    fn __repr__(&self) -> String {
        format!("Router({:?})", self.plain_names)
    }
}
