//! The `Request` class: the core's request engine (`failover_core::Request`) for one request,
//! driven against the native `Router` it was started on. Internal for now (the call and stream
//! drivers of the Python package will be built on it): every decision is the core's, and every
//! value it hands out is a dict built from the core's own field list ([`failover_core::Fields`]),
//! in the shapes of the request scenario files (`fixtures/README.md`, "Request scenarios").
//!
//! Lock order: the request's, then the router's (inside `Router::with`).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use failover_core::{
    DefaultRouter, Outcome, OutcomeKind, Request as CoreRequest, RequestError as CoreRequestError,
    RequestOptions, Step, TicketKind,
};
use pyo3::PyTraverseError;
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyString};

use crate::convert;
use crate::error;
use crate::router::Router;

/// One request from start to finish (the core's `Request`): `poll` says what to do next, the
/// `handle_*` methods report what happened. Started on a router, and driven with that router
/// only. Values come back as dicts in the request scenario files' shapes; an input the request
/// cannot take raises `RequestError` with the core's `code` and changes nothing.
#[pyclass(frozen, module = "failover_core._native", name = "Request")]
pub struct Request {
    inner: Mutex<CoreRequest>,
    poisoned: AtomicBool,
    /// The id of the router it was started on.
    router: u64,
    names: Arc<[Py<PyString>]>,
    /// That router's default clock (added to the monotonic clock; see `Router::clock_now`).
    clock_offset: u64,
}

/// The native router argument.
fn router_arg<'a, 'py>(obj: &'a Bound<'py, PyAny>) -> PyResult<&'a Bound<'py, Router>> {
    obj.cast::<Router>()
        .map_err(|_| error::arg_type("router", "the native Router the request runs on", obj))
}

/// An optional non-negative int argument (`None` for the policy's default).
fn opt_ms(arg: &'static str, v: Option<&Bound<'_, PyAny>>) -> PyResult<Option<u64>> {
    v.map(|v| convert::u64_arg(arg, "an int number of milliseconds", v))
        .transpose()
}

fn bool_arg(arg: &'static str, v: &Bound<'_, PyAny>) -> PyResult<bool> {
    v.cast::<PyBool>()
        .map(|b| b.is_true())
        .map_err(|_| error::arg_type(arg, "a bool", v))
}

/// One attempt to make, as handed to the caller's function by `Router.call`/`acall`: the
/// provider, the attempt's number, whether it is also a probe, and its deadline (in the router's
/// clock, ms of `time.monotonic()`) and timeout (the time left until it, for the SDK call).
#[pyclass(frozen, module = "failover_core._native", name = "Attempt")]
pub struct PyAttempt {
    /// The provider to call.
    #[pyo3(get)]
    provider: Py<PyString>,
    /// 1 for the request's first attempt, 2 for the next, ...
    #[pyo3(get)]
    number: u8,
    /// Whether the attempt also probes a recovering provider.
    #[pyo3(get)]
    is_probe: bool,
    /// When the attempt must have answered (or, streamed, produced its first token), ms.
    #[pyo3(get)]
    deadline_ms: u64,
    /// `deadline_ms` from the attempt's start, ms: the timeout to give the SDK.
    #[pyo3(get)]
    timeout_ms: u64,
    /// For a stream: the longest gap between chunks once content has started, ms.
    #[pyo3(get)]
    idle_ms: Option<u64>,
    /// Whether this is the request's last candidate (given all the remaining time).
    #[pyo3(get)]
    last: bool,
}

#[pymethods]
impl PyAttempt {
    /// `timeout_ms` in seconds (what the openai, anthropic and httpx clients take).
    #[getter]
    fn timeout_s(&self) -> f64 {
        self.timeout_ms as f64 / 1000.0
    }

    /// `deadline_ms` in seconds of `time.monotonic()` (and of asyncio's `loop.time()`).
    #[getter]
    fn deadline_s(&self) -> f64 {
        self.deadline_ms as f64 / 1000.0
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Attempt(provider={:?}, number={}, is_probe={}, timeout_ms={}, deadline_ms={}, last={})",
            self.provider.bind(py).to_string(),
            self.number,
            if self.is_probe { "True" } else { "False" },
            self.timeout_ms,
            self.deadline_ms,
            if self.last { "True" } else { "False" },
        )
    }
}

/// What `Request._call`/`_call_first` return when they cannot return the function's value: the
/// request, and either the attempt whose call raised `error` (still in flight: classify and
/// report it) or the step that is not an attempt (`wait`, `in_flight` or `done`, as a dict).
#[pyclass(frozen, module = "failover_core._native", name = "_Pending")]
pub struct Pending {
    #[pyo3(get)]
    request: Py<Request>,
    #[pyo3(get)]
    attempt: Option<Py<PyAttempt>>,
    #[pyo3(get)]
    error: Option<Py<PyAny>>,
    #[pyo3(get)]
    step: Option<Py<PyDict>>,
}

#[pymethods]
impl Pending {
    /// The exception's traceback holds the caller's frame, whose locals hold this object.
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Some(e) = &self.error {
            visit.call(e)?;
        }
        Ok(())
    }
}

/// What `Request::start` came to.
pub(crate) enum Started {
    /// The first attempt's value (recorded as a success).
    Value(Py<PyAny>),
    /// A `_Pending`.
    Pending(Py<PyAny>),
}

/// What one native attempt came to.
enum Called {
    /// The function returned: recorded as a success.
    Value(Py<PyAny>),
    /// The function raised; the attempt is still in flight.
    Raised(Py<PyAttempt>, Py<PyAny>),
    /// The step was not an attempt.
    Step(Step),
}

impl Request {
    /// The Python object of core request `q`, started on router `r`.
    fn of(q: CoreRequest, r: &Router) -> Request {
        Request {
            inner: Mutex::new(q),
            poisoned: AtomicBool::new(false),
            router: r.id,
            names: Arc::clone(&r.names),
            clock_offset: r.clock_offset_ms(),
        }
    }

    /// A `now_ms` argument, `None` being the request's router's default clock now.
    fn now(&self, v: Option<&Bound<'_, PyAny>>) -> PyResult<u64> {
        match v {
            None => Ok(convert::monotonic_ms().saturating_add(self.clock_offset)),
            Some(_) => convert::timestamp("now_ms", v),
        }
    }

    fn attempt_obj(
        py: Python<'_>,
        names: &[Py<PyString>],
        a: &failover_core::Attempt,
    ) -> PyResult<Py<PyAttempt>> {
        Py::new(
            py,
            PyAttempt {
                provider: names[a.ticket.provider.index()].clone_ref(py),
                number: a.number,
                is_probe: a.ticket.kind == TicketKind::Probe,
                deadline_ms: a.deadline_ms,
                timeout_ms: a.timeout_ms,
                idle_ms: a.idle_ms,
                last: a.last,
            },
        )
    }

    /// Polls `q` at the native clock; on an attempt calls `fn_(attempt)` (with no lock held) and
    /// records a returned value as a success.
    fn call_with(
        py: Python<'_>,
        q: &Mutex<CoreRequest>,
        poisoned: &AtomicBool,
        router: &Router,
        names: &[Py<PyString>],
        fn_: &Bound<'_, PyAny>,
    ) -> PyResult<Called> {
        let lock = || {
            if poisoned.load(Ordering::Relaxed) {
                return Err(error::request_poisoned());
            }
            q.lock().map_err(|_| error::request_poisoned())
        };
        let now = router.clock_now();
        let step = {
            let mut g = lock()?;
            let before = router.observed().then(|| g.last_report().1);
            let step = router.with("Request.poll", |r| g.poll(r, now));
            if let Some(rep) = before.and_then(|b| new_report(&g, b)) {
                drop(g);
                router.observe_attempt(py, &rep);
            }
            step
        };
        let step = match step {
            Ok(s) => s,
            Err(e) => {
                if router.is_poisoned() {
                    poisoned.store(true, Ordering::Relaxed);
                }
                return Err(e);
            }
        };
        let Step::Attempt(a) = step else {
            return Ok(Called::Step(step));
        };
        let attempt = Self::attempt_obj(py, names, &a)?;
        match fn_.call1((attempt.clone_ref(py),)) {
            Ok(v) => {
                let end = router.clock_now();
                let o = Outcome {
                    kind: OutcomeKind::Success,
                    latency_ms: 0,
                    retry_after_ms: None,
                };
                let r = {
                    let mut g = lock()?;
                    let before = router.observed().then(|| g.last_report().1);
                    let r = router.with("Request.handle_outcome", |r| g.handle_outcome(r, o, end));
                    if let Some(rep) = before.and_then(|b| new_report(&g, b)) {
                        drop(g);
                        router.observe_attempt(py, &rep);
                    }
                    r
                };
                if r.is_err() && router.is_poisoned() {
                    poisoned.store(true, Ordering::Relaxed);
                }
                Self::input(py, r?)?;
                pace_from(router, a.ticket.provider, &v, end)?;
                Ok(Called::Value(v.unbind()))
            }
            Err(e) => Ok(Called::Raised(attempt, e.into_value(py).into_any())),
        }
    }

    fn pending(self_: Py<Request>, py: Python<'_>, c: Called) -> PyResult<Py<PyAny>> {
        let p = match c {
            Called::Value(v) => return Ok(v),
            Called::Raised(a, e) => Pending {
                request: self_,
                attempt: Some(a),
                error: Some(e),
                step: None,
            },
            Called::Step(s) => {
                let d = convert::to_dict(py, &s, &self_.get().names)?.unbind();
                Pending {
                    request: self_,
                    attempt: None,
                    error: None,
                    step: Some(d),
                }
            }
        };
        Ok(Py::new(py, p)?.into_any())
    }

    /// Starts a request on `r` at the native clock, polls it in the same engine call, and makes
    /// its first attempt: a returned value is recorded as a success and handed back (no request
    /// object is created); otherwise the request becomes a Python object inside a `_Pending`.
    pub(crate) fn start(
        py: Python<'_>,
        r: &Router,
        options: &RequestOptions,
        fn_: &Bound<'_, PyAny>,
    ) -> PyResult<Started> {
        let now = r.clock_now();
        let (mut q, step) = r.with("Request", |core| {
            let mut q = CoreRequest::new(core, options, now);
            let step = q.poll(core, now);
            (q, step)
        })?;
        let c = match step {
            Step::Attempt(a) => {
                let attempt = Self::attempt_obj(py, &r.names, &a)?;
                match fn_.call1((attempt.clone_ref(py),)) {
                    Ok(v) => {
                        let end = r.clock_now();
                        let o = Outcome {
                            kind: OutcomeKind::Success,
                            latency_ms: 0,
                            retry_after_ms: None,
                        };
                        let res = r.with("Request.handle_outcome", |core| {
                            q.handle_outcome(core, o, end)
                        })?;
                        if r.observed()
                            && let (Some(rep), _) = q.last_report()
                        {
                            r.observe_attempt(py, &rep);
                        }
                        Self::input(py, res)?;
                        pace_from(r, a.ticket.provider, &v, end)?;
                        return Ok(Started::Value(v.unbind()));
                    }
                    Err(e) => Called::Raised(attempt, e.into_value(py).into_any()),
                }
            }
            s => Called::Step(s),
        };
        let obj = Py::new(py, Request::of(q, r))?;
        Ok(Started::Pending(Self::pending(obj, py, c)?))
    }

    /// The request options from the constructor's arguments.
    fn options(
        max_attempts: Option<&Bound<'_, PyAny>>,
        deadline_ms: Option<&Bound<'_, PyAny>>,
        max_wait_ms: Option<&Bound<'_, PyAny>>,
        stream: Option<&Bound<'_, PyAny>>,
        key: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<RequestOptions> {
        let max_attempts =
            match max_attempts {
                None => None,
                Some(v) => {
                    let n = convert::u64_arg("max_attempts", "an int number of attempts", v)?;
                    Some(u8::try_from(n).map_err(|_| {
                        error::arg_value_u64("max_attempts", "an int in 0..=255", n)
                    })?)
                }
            };
        Ok(RequestOptions {
            max_attempts,
            deadline_ms: opt_ms("deadline_ms", deadline_ms)?,
            max_wait_ms: opt_ms("max_wait_ms", max_wait_ms)?,
            stream: stream
                .map(|s| bool_arg("stream", s))
                .transpose()?
                .unwrap_or(false),
            key: key.map(convert::key).transpose()?,
        })
    }

    fn lock(&self) -> PyResult<MutexGuard<'_, CoreRequest>> {
        if self.poisoned.load(Ordering::Relaxed) {
            return Err(error::request_poisoned());
        }
        self.inner.lock().map_err(|_| error::request_poisoned())
    }

    /// Runs `f` on the request and the router it was started on, under both locks; a panic
    /// poisons both (see `Router::with`).
    fn drive<R>(
        &self,
        router: &Bound<'_, PyAny>,
        method: &'static str,
        f: impl FnOnce(&mut CoreRequest, &mut DefaultRouter) -> R,
    ) -> PyResult<R> {
        let router_py = router.py();
        let router = router_arg(router)?.get();
        if router.id != self.router {
            return Err(error::foreign_request());
        }
        let mut q = self.lock()?;
        let before = router.observed().then(|| q.last_report().1);
        let out = router.with(method, |r| f(&mut q, r));
        if out.is_err() && router.is_poisoned() {
            self.poisoned.store(true, Ordering::Relaxed);
        }
        if let Some(before) = before {
            let report = new_report(&q, before);
            drop(q);
            if let Some(rep) = report {
                router.observe_attempt(router_py, &rep);
            }
        }
        out
    }

    /// Runs `f` on the request alone (no router); a panic poisons the request.
    fn alone<R>(&self, method: &'static str, f: impl FnOnce(&mut CoreRequest) -> R) -> PyResult<R> {
        let mut q = self.lock()?;
        catch_unwind(AssertUnwindSafe(|| f(&mut q))).map_err(|payload| {
            self.poisoned.store(true, Ordering::Relaxed);
            error::panicked(method, &*payload)
        })
    }

    /// The request's answer to an input: nothing, or `RequestError`.
    fn input(py: Python<'_>, r: Result<(), CoreRequestError>) -> PyResult<()> {
        r.map_err(|e| error::request(py, e))
    }
}

#[pymethods]
impl Request {
    /// `Request(router, now_ms=None, *, max_attempts=None, deadline_ms=None, max_wait_ms=None,
    /// stream=False, key=None)`: starts a request at `now_ms` on `router` (the core's
    /// `Request::new`). Options left `None` take the policy's defaults: one attempt per provider
    /// plus `same_provider_retries` (at most 255), a deadline `request_timeout_ms` from now, and
    /// the policy's `max_wait_ms`. `key` (str or bytes) is a sticky key, as in `Router.pick`.
    #[new]
    #[pyo3(signature = (
        router,
        now_ms=None,
        *,
        max_attempts=None,
        deadline_ms=None,
        max_wait_ms=None,
        stream=None,
        key=None,
    ))]
    fn new(
        router: &Bound<'_, PyAny>,
        now_ms: Option<&Bound<'_, PyAny>>,
        max_attempts: Option<&Bound<'_, PyAny>>,
        deadline_ms: Option<&Bound<'_, PyAny>>,
        max_wait_ms: Option<&Bound<'_, PyAny>>,
        stream: Option<&Bound<'_, PyAny>>,
        key: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let r = router_arg(router)?.get();
        let options = Self::options(max_attempts, deadline_ms, max_wait_ms, stream, key)?;
        if now_ms.is_some() {
            r.mark_explicit_clock();
        }
        let now = r.time_arg(now_ms)?;
        let req = r.with("Request", |core| CoreRequest::new(core, &options, now))?;
        Ok(Request::of(req, r))
    }

    /// What to do next at `now_ms` (the core's `poll`): `{"attempt": {...}}` (start it now),
    /// `{"in_flight": {"deadline_ms"}}`, `{"wait": {"until_ms", "provider"}}` or
    /// `{"done": {"finish", ...}}`.
    #[pyo3(signature = (router, now_ms=None))]
    fn poll<'py>(
        &self,
        py: Python<'py>,
        router: &Bound<'py, PyAny>,
        now_ms: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let now = self.now(now_ms)?;
        let step = self.drive(router, "Request.poll", |q, r| q.poll(r, now))?;
        convert::to_dict(py, &step, &self.names)
    }

    /// Reports the in-flight attempt's outcome kind (and the provider's `Retry-After`) at
    /// `now_ms`; the latency is the request's own measure. Raises `RequestError`.
    #[pyo3(signature = (router, outcome, now_ms=None, *, retry_after_ms=None))]
    fn handle_outcome(
        &self,
        py: Python<'_>,
        router: &Bound<'_, PyAny>,
        outcome: &Bound<'_, PyAny>,
        now_ms: Option<&Bound<'_, PyAny>>,
        retry_after_ms: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let o = Outcome {
            kind: convert::outcome_kind(outcome)?,
            latency_ms: 0,
            retry_after_ms: convert::retry_after(retry_after_ms)?,
        };
        let now = self.now(now_ms)?;
        let r = self.drive(router, "Request.handle_outcome", |q, r| {
            q.handle_outcome(r, o, now)
        })?;
        Self::input(py, r)
    }

    /// The stream's first content reached the caller at `now_ms`. Raises `RequestError`.
    #[pyo3(signature = (now_ms=None))]
    fn handle_first_token(
        &self,
        py: Python<'_>,
        now_ms: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let now = self.now(now_ms)?;
        let r = self.alone("Request.handle_first_token", |q| q.handle_first_token(now))?;
        Self::input(py, r)
    }

    /// A chunk of the stream arrived at `now_ms`. Raises `RequestError`.
    #[pyo3(signature = (now_ms=None))]
    fn handle_chunk(&self, py: Python<'_>, now_ms: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let now = self.now(now_ms)?;
        let r = self.alone("Request.handle_chunk", |q| q.handle_chunk(now))?;
        Self::input(py, r)
    }

    /// The stream ended at `now_ms`, `complete` (with its terminal event) or cut. Raises
    /// `RequestError`.
    #[pyo3(signature = (router, complete, now_ms=None))]
    fn handle_end(
        &self,
        py: Python<'_>,
        router: &Bound<'_, PyAny>,
        complete: &Bound<'_, PyAny>,
        now_ms: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let complete = bool_arg("complete", complete)?;
        let now = self.now(now_ms)?;
        let r = self.drive(router, "Request.handle_end", |q, r| {
            q.handle_end(r, complete, now)
        })?;
        Self::input(py, r)
    }

    /// The caller's own error, or the caller gave up: ends the request as cancelled. Raises
    /// `RequestError` after the request ended.
    #[pyo3(signature = (router, now_ms=None))]
    fn handle_cancel(
        &self,
        py: Python<'_>,
        router: &Bound<'_, PyAny>,
        now_ms: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let now = self.now(now_ms)?;
        let r = self.drive(router, "Request.handle_cancel", |q, r| {
            q.handle_cancel(r, now)
        })?;
        Self::input(py, r)
    }

    /// `(report, count)`: what the request last recorded at the router (`{"provider", "outcome",
    /// "latency_ms", "result"}`, or `None`) and how many outcomes it has recorded in all.
    fn last_report<'py>(&self, py: Python<'py>) -> PyResult<(Option<Bound<'py, PyDict>>, u8)> {
        let (report, n) = self.alone("Request.last_report", |q| q.last_report())?;
        let report = report
            .map(|rep| convert::to_dict(py, &rep, &self.names))
            .transpose()?;
        Ok((report, n))
    }

    /// How the request ended (`{"finish", ...}`, as in `poll`'s `done`), or `None`.
    fn finish<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let f = self.alone("Request.finish", |q| q.finish())?;
        f.map(|f| convert::to_dict(py, &f, &self.names)).transpose()
    }

    /// The attempt in flight (its ticket: `{"provider", "kind", "degraded", "retry_after_ms"}`),
    /// or `None`.
    fn in_flight<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let t = self.alone("Request.in_flight", |q| q.in_flight())?;
        t.map(|t| convert::to_dict(py, &t, &self.names)).transpose()
    }

    /// The request's deadline, ms.
    fn deadline_ms(&self) -> PyResult<u64> {
        self.alone("Request.deadline_ms", |q| q.deadline_ms())
    }

    /// Attempts started so far.
    fn attempts(&self) -> PyResult<u8> {
        self.alone("Request.attempts", |q| q.attempts())
    }

    /// Starts a request on `router` at the native clock and makes its first attempt: calls
    /// `fn_(attempt)` and records a returned value as a success, returning that value (the
    /// request object is never created then). Otherwise a `_Pending` with the request.
    #[staticmethod]
    #[pyo3(signature = (router, fn_, key=None, max_attempts=None, deadline_ms=None, max_wait_ms=None))]
    fn _call_first(
        py: Python<'_>,
        router: &Bound<'_, PyAny>,
        fn_: &Bound<'_, PyAny>,
        key: Option<&Bound<'_, PyAny>>,
        max_attempts: Option<&Bound<'_, PyAny>>,
        deadline_ms: Option<&Bound<'_, PyAny>>,
        max_wait_ms: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let r = router_arg(router)?.get();
        let options = Self::options(max_attempts, deadline_ms, max_wait_ms, None, key)?;
        match Self::start(py, r, &options, fn_)? {
            Started::Value(v) | Started::Pending(v) => Ok(v),
        }
    }

    /// `(request, step)`: starts a request on `router` at the native clock and polls it, in one
    /// engine call; the step is as `_next` gives it (an `Attempt`, or `poll`'s dict).
    #[staticmethod]
    #[pyo3(signature = (router, key=None, max_attempts=None, deadline_ms=None, max_wait_ms=None))]
    fn _begin(
        py: Python<'_>,
        router: &Bound<'_, PyAny>,
        key: Option<&Bound<'_, PyAny>>,
        max_attempts: Option<&Bound<'_, PyAny>>,
        deadline_ms: Option<&Bound<'_, PyAny>>,
        max_wait_ms: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<(Py<Request>, Py<PyAny>)> {
        let r = router_arg(router)?.get();
        let options = Self::options(max_attempts, deadline_ms, max_wait_ms, None, key)?;
        let now = r.clock_now();
        let (q, step) = r.with("Request", |core| {
            let mut q = CoreRequest::new(core, &options, now);
            let step = q.poll(core, now);
            (q, step)
        })?;
        let step = match step {
            Step::Attempt(a) => Self::attempt_obj(py, &r.names, &a)?.into_any(),
            s => convert::to_dict(py, &s, &r.names)?.into_any().unbind(),
        };
        let obj = Py::new(py, Request::of(q, r))?;
        Ok((obj, step))
    }

    /// The next attempt of this request at the native clock, as `_call_first` does it.
    fn _call(
        slf: &Bound<'_, Self>,
        router: &Bound<'_, PyAny>,
        fn_: &Bound<'_, PyAny>,
    ) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let this = slf.get();
        let r = router_arg(router)?.get();
        if r.id != this.router {
            return Err(error::foreign_request());
        }
        let c = Self::call_with(py, &this.inner, &this.poisoned, r, &this.names, fn_)?;
        Self::pending(slf.clone().unbind(), py, c)
    }

    /// `poll`, with an attempt handed out as an `Attempt` object (any other step as `poll`'s
    /// dict).
    #[pyo3(signature = (router, now_ms=None))]
    fn _next(
        &self,
        py: Python<'_>,
        router: &Bound<'_, PyAny>,
        now_ms: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let now = self.now(now_ms)?;
        let step = self.drive(router, "Request.poll", |q, r| q.poll(r, now))?;
        match step {
            Step::Attempt(a) => Ok(Self::attempt_obj(py, &self.names, &a)?.into_any()),
            s => Ok(convert::to_dict(py, &s, &self.names)?.into_any().unbind()),
        }
    }

    fn __repr__(&self) -> PyResult<String> {
        let (attempts, deadline, finish) = self.alone("Request.__repr__", |q| {
            (q.attempts(), q.deadline_ms(), q.finish().map(|f| f.name()))
        })?;
        Ok(format!(
            "Request(attempts={attempts}, deadline_ms={deadline}, finish={})",
            finish.map_or_else(|| "None".to_owned(), |f| format!("{f:?}"))
        ))
    }
}

/// The report `q` recorded since it had recorded `before` reports, if any.
fn new_report(q: &CoreRequest, before: u8) -> Option<failover_core::Report> {
    match q.last_report() {
        (Some(rep), n) if n != before => Some(rep),
        _ => None,
    }
}

/// The rate-limit headers of a returned answer `v` (its `headers`, or its `response.headers`:
/// an httpx or requests response, an SDK's raw response), fed to the router's pacing for
/// `provider`. A value without headers, or with headers of a shape that cannot be read, changes
/// nothing: a success must never fail for its headers.
pub(crate) fn pace_from(
    router: &Router,
    provider: failover_core::ProviderId,
    v: &Bound<'_, PyAny>,
    now: u64,
) -> PyResult<()> {
    let py = v.py();
    let headers = match v.getattr_opt(pyo3::intern!(py, "headers")) {
        Ok(Some(h)) if !h.is_none() => h,
        _ => match v.getattr_opt(pyo3::intern!(py, "response")) {
            Ok(Some(resp)) if !resp.is_none() => {
                match resp.getattr_opt(pyo3::intern!(py, "headers")) {
                    Ok(Some(h)) if !h.is_none() => h,
                    _ => return Ok(()),
                }
            }
            _ => return Ok(()),
        },
    };
    let Ok((h, recognised)) = crate::read_headroom(&headers, Some(convert::wall_ms())) else {
        return Ok(());
    };
    if recognised > 0 {
        router.with("observe_headroom", |r| {
            r.observe_headroom(provider, &h, now)
        })?;
    }
    Ok(())
}
