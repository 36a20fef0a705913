//! `NativeRequest`: the core's request engine (`failover_core::Request`) for one request, driven
//! against the `NativeRouter` it was started on. Internal for now (the call and stream drivers of
//! the package will be built on it): every decision is the core's, and every value it hands out
//! is a plain object built from the core's own field list ([`failover_core::Fields`], through
//! [`to_js`]; typed `Record<string, unknown>` as views are, so no field is listed twice), in the
//! shapes of the request scenario files (`fixtures/README.md`, "Request
//! scenarios"). Timestamps in and numbers out follow the router's rules (`hot::now_arg`,
//! [`js_num`]).

use std::sync::Arc;

use failover_core::{
    DefaultRouter, Outcome, OutcomeKind, Request, RequestError, RequestOptions, hash_key,
};
use napi::bindgen_prelude::{Array, Env, Object};
use napi_derive::napi;

use crate::convert::{js_num, to_js};
use crate::error::{Failure, Res};
use crate::{NativeRouter, guarded, hot};

/// A request's options; every field is optional (missing, `undefined` or `null`: the policy's
/// default). Snake_case, like the other data objects of this package.
#[napi(object)]
pub struct NativeRequestOptions {
    /// Attempts at most (0..=255), counting same-provider retries.
    #[napi(js_name = "max_attempts")]
    pub max_attempts: Option<Option<f64>>,
    /// The request's deadline, ms of the engine's time.
    #[napi(js_name = "deadline_ms")]
    pub deadline_ms: Option<Option<f64>>,
    /// The longest wait for a provider to come back, ms.
    #[napi(js_name = "max_wait_ms")]
    pub max_wait_ms: Option<Option<f64>>,
    /// The request is streamed.
    pub stream: Option<Option<bool>>,
    /// A sticky key (hashed with the core's `hash_key`), as in `pickKeyed`.
    pub key: Option<Option<String>>,
}

/// One request from start to finish (the core's `Request`): `poll` says what to do next, the
/// `handle*` methods report what happened. Started on a router, and driven with that router
/// only. An input the request cannot take throws an `Error` named `RequestError` whose `code` is
/// the core's name, and changes nothing. Internal: no public API yet.
#[napi]
pub struct NativeRequest {
    req: Request,
    /// The id of the router it was started on.
    router: u64,
    names: Arc<[String]>,
    /// Set when the engine panicked while this request was being updated.
    poisoned: bool,
}

fn opt_time(arg: &str, v: &Option<Option<f64>>) -> Res<Option<u64>> {
    v.flatten().map(|x| hot::time(arg, x)).transpose()
}

impl NativeRequest {
    /// Runs `f` on the request and the router it was started on (see `hot::with_router`).
    fn drive<T>(
        &mut self,
        router: &NativeRouter,
        f: impl FnOnce(&mut Request, &mut DefaultRouter) -> T,
    ) -> Res<T> {
        if self.poisoned {
            return Err(Failure::Poisoned);
        }
        if router.id != self.router {
            return Err(Failure::ForeignRouter);
        }
        let req = &mut self.req;
        let out = hot::with_router(router.slot as usize, |r| Ok(f(req, r)));
        if matches!(out, Err(Failure::Panic(_))) {
            self.poisoned = true;
        }
        out
    }

    /// Runs `f` on the request alone, catching a panic.
    fn alone<T>(&mut self, f: impl FnOnce(&mut Request) -> T) -> Res<T> {
        if self.poisoned {
            return Err(Failure::Poisoned);
        }
        let req = &mut self.req;
        let out = guarded(|| Ok(f(req)));
        if out.is_err() {
            self.poisoned = true;
        }
        out
    }

    fn now(now_ms: f64) -> Res<u64> {
        hot::now_arg(hot::hot(), "nowMs", now_ms)
    }

    /// The request's answer to an input: nothing, or its `RequestError`.
    fn input(env: &Env, r: Res<Result<(), RequestError>>) -> napi::Result<()> {
        Failure::check(env, r.and_then(|r| r.map_err(Failure::Request)))
    }
}

#[napi]
impl NativeRequest {
    /// Starts a request at `nowMs` (-1: the default clock) on `router` (the core's
    /// `Request::new`); options left out take the policy's defaults.
    #[napi(constructor)]
    pub fn new(
        env: Env,
        router: &NativeRouter,
        options: Option<NativeRequestOptions>,
        now_ms: f64,
    ) -> napi::Result<Self> {
        let r = (|| {
            let o = options.as_ref();
            let max_attempts = match o.and_then(|o| o.max_attempts.flatten()) {
                None => None,
                Some(n) => Some(hot::int_in(n, 255.0).ok_or_else(|| {
                    Failure::range("max_attempts", "must be an integer between 0 and 255")
                })? as u8),
            };
            let options = RequestOptions {
                max_attempts,
                deadline_ms: o.map_or(Ok(None), |o| opt_time("deadline_ms", &o.deadline_ms))?,
                max_wait_ms: o.map_or(Ok(None), |o| opt_time("max_wait_ms", &o.max_wait_ms))?,
                stream: o.and_then(|o| o.stream.flatten()).unwrap_or(false),
                key: o
                    .and_then(|o| o.key.as_ref())
                    .and_then(|k| k.as_deref())
                    .map(|k| hash_key(k.as_bytes())),
            };
            let now = Self::now(now_ms)?;
            hot::with_router(router.slot as usize, |r| Ok(Request::new(r, &options, now)))
        })();
        let req = Failure::check(&env, r)?;
        Ok(NativeRequest {
            req,
            router: router.id,
            names: Arc::clone(&router.names),
            poisoned: false,
        })
    }

    /// What to do next at `nowMs` (the core's `poll`): `{attempt: {...}}` (start it now),
    /// `{in_flight: {deadline_ms}}`, `{wait: {until_ms, provider}}` or `{done: {finish, ...}}`.
    #[napi(ts_return_type = "Record<string, Record<string, unknown>>")]
    pub fn poll<'e>(
        &mut self,
        env: &'e Env,
        router: &NativeRouter,
        now_ms: f64,
    ) -> napi::Result<Object<'e>> {
        let step = Failure::check(
            env,
            Self::now(now_ms).and_then(|now| self.drive(router, |q, r| q.poll(r, now))),
        )?;
        to_js(env, &step, &self.names)
    }

    /// Reports the in-flight attempt's outcome kind (a name, e.g. `"server_error"`) and the
    /// provider's `Retry-After` in ms (or null) at `nowMs`; the latency is the request's own
    /// measure.
    #[napi]
    pub fn handle_outcome(
        &mut self,
        env: Env,
        router: &NativeRouter,
        outcome: String,
        retry_after_ms: Option<f64>,
        now_ms: f64,
    ) -> napi::Result<()> {
        let r = (|| {
            let kind = OutcomeKind::from_name(&outcome).ok_or_else(|| {
                Failure::range("outcome", format!("is not an outcome kind: {outcome:?}"))
            })?;
            let o = Outcome {
                kind,
                latency_ms: 0,
                retry_after_ms: retry_after_ms
                    .map(|x| hot::time("retry_after_ms", x))
                    .transpose()?,
            };
            let now = Self::now(now_ms)?;
            self.drive(router, |q, r| q.handle_outcome(r, o, now))
        })();
        Self::input(&env, r)
    }

    /// The stream's first content reached the caller at `nowMs`.
    #[napi]
    pub fn handle_first_token(&mut self, env: Env, now_ms: f64) -> napi::Result<()> {
        let r = Self::now(now_ms).and_then(|now| self.alone(|q| q.handle_first_token(now)));
        Self::input(&env, r)
    }

    /// A chunk of the stream arrived at `nowMs`.
    #[napi]
    pub fn handle_chunk(&mut self, env: Env, now_ms: f64) -> napi::Result<()> {
        let r = Self::now(now_ms).and_then(|now| self.alone(|q| q.handle_chunk(now)));
        Self::input(&env, r)
    }

    /// The stream ended at `nowMs`: `complete` (with its terminal event) or cut.
    #[napi]
    pub fn handle_end(
        &mut self,
        env: Env,
        router: &NativeRouter,
        complete: bool,
        now_ms: f64,
    ) -> napi::Result<()> {
        let r = Self::now(now_ms)
            .and_then(|now| self.drive(router, |q, r| q.handle_end(r, complete, now)));
        Self::input(&env, r)
    }

    /// The caller's own error, or the caller gave up: ends the request as cancelled.
    #[napi]
    pub fn handle_cancel(
        &mut self,
        env: Env,
        router: &NativeRouter,
        now_ms: f64,
    ) -> napi::Result<()> {
        let r =
            Self::now(now_ms).and_then(|now| self.drive(router, |q, r| q.handle_cancel(r, now)));
        Self::input(&env, r)
    }

    /// `[report, count]`: what the request last recorded at the router (`{provider, outcome,
    /// latency_ms, result}`, or null) and how many outcomes it has recorded in all.
    #[napi(ts_return_type = "[Record<string, unknown> | null, number]")]
    pub fn last_report<'e>(&mut self, env: &'e Env) -> napi::Result<Array<'e>> {
        let (report, n) = Failure::check(env, self.alone(|q| q.last_report()))?;
        let mut out = env.create_array(2)?;
        out.set(
            0,
            report
                .map(|rep| to_js(env, &rep, &self.names))
                .transpose()?,
        )?;
        out.set(1, u32::from(n))?;
        Ok(out)
    }

    /// The facts of the attempt the request last recorded, for `failover-core/otel`:
    /// `[count, provider, ticketKind, number, outcome, result, startedMs, endedMs, firstTokenMs,
    /// retryAfterMs, excluded]` (`count` as in `lastReport`; `firstTokenMs` and `retryAfterMs`
    /// null when absent; `excluded` the core's `"<provider>=<reason>"` entries for the providers
    /// passed over, `Report::excluded`), or null before any. Engine times, ms.
    #[napi(
        ts_return_type = "[number, string, string, number, string, string, number, number, number | null, number | null, string[]] | null"
    )]
    pub fn last_attempt<'e>(&mut self, env: &'e Env) -> napi::Result<Option<Array<'e>>> {
        let (report, n) = Failure::check(env, self.alone(|q| q.last_report()))?;
        let Some(rep) = report else { return Ok(None) };
        let mut out = env.create_array(11)?;
        out.set(0, u32::from(n))?;
        out.set(1, self.names[rep.provider.index()].as_str())?;
        out.set(2, rep.kind.name())?;
        out.set(3, u32::from(rep.number))?;
        out.set(4, rep.outcome.kind.name())?;
        out.set(5, rep.recorded.name())?;
        out.set(6, js_num(rep.started_ms))?;
        out.set(7, js_num(rep.ended_ms))?;
        out.set(8, rep.first_token_ms.map(js_num))?;
        out.set(9, rep.outcome.retry_after_ms.map(js_num))?;
        let excluded: Vec<String> = rep
            .excluded
            .entries(&self.names)
            .map(|e| e.to_string())
            .collect();
        out.set(10, excluded)?;
        Ok(Some(out))
    }

    /// How the request ended (`{finish, ...}`, as in `poll`'s `done`), or null.
    #[napi(ts_return_type = "Record<string, unknown> | null")]
    pub fn finish<'e>(&mut self, env: &'e Env) -> napi::Result<Option<Object<'e>>> {
        let f = Failure::check(env, self.alone(|q| q.finish()))?;
        f.map(|f| to_js(env, &f, &self.names)).transpose()
    }

    /// The attempt in flight (its ticket: `{provider, kind, degraded, retry_after_ms}`), or null.
    #[napi(ts_return_type = "Record<string, unknown> | null")]
    pub fn in_flight<'e>(&mut self, env: &'e Env) -> napi::Result<Option<Object<'e>>> {
        let t = Failure::check(env, self.alone(|q| q.in_flight()))?;
        t.map(|t| to_js(env, &t, &self.names)).transpose()
    }

    /// The request's deadline, ms.
    #[napi]
    pub fn deadline_ms(&mut self, env: Env) -> napi::Result<f64> {
        Failure::check(&env, self.alone(|q| js_num(q.deadline_ms())))
    }

    /// Attempts started so far.
    #[napi]
    pub fn attempts(&mut self, env: Env) -> napi::Result<u32> {
        Failure::check(&env, self.alone(|q| u32::from(q.attempts())))
    }
}
