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
    DefaultRouter, Outcome, Request as CoreRequest, RequestError as CoreRequestError,
    RequestOptions,
};
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

impl Request {
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
        let router = router_arg(router)?.get();
        if router.id != self.router {
            return Err(error::foreign_request());
        }
        let mut q = self.lock()?;
        let out = router.with(method, |r| f(&mut q, r));
        if out.is_err() && router.is_poisoned() {
            self.poisoned.store(true, Ordering::Relaxed);
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
        let options = RequestOptions {
            max_attempts,
            deadline_ms: opt_ms("deadline_ms", deadline_ms)?,
            max_wait_ms: opt_ms("max_wait_ms", max_wait_ms)?,
            stream: stream
                .map(|s| bool_arg("stream", s))
                .transpose()?
                .unwrap_or(false),
            key: key.map(convert::key).transpose()?,
        };
        let now = convert::timestamp("now_ms", now_ms)?;
        let req = r.with("Request", |core| CoreRequest::new(core, &options, now))?;
        Ok(Request {
            inner: Mutex::new(req),
            poisoned: AtomicBool::new(false),
            router: r.id,
            names: Arc::clone(&r.names),
        })
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
        let now = convert::timestamp("now_ms", now_ms)?;
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
        let now = convert::timestamp("now_ms", now_ms)?;
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
        let now = convert::timestamp("now_ms", now_ms)?;
        let r = self.alone("Request.handle_first_token", |q| q.handle_first_token(now))?;
        Self::input(py, r)
    }

    /// A chunk of the stream arrived at `now_ms`. Raises `RequestError`.
    #[pyo3(signature = (now_ms=None))]
    fn handle_chunk(&self, py: Python<'_>, now_ms: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let now = convert::timestamp("now_ms", now_ms)?;
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
        let now = convert::timestamp("now_ms", now_ms)?;
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
        let now = convert::timestamp("now_ms", now_ms)?;
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
