//! The request engine's fast path: requests kept natively, driven by bare napi callbacks through
//! the shared buffer (as `hotPick` / `hotRecord`, see [`crate::hot`]).
//!
//! `NativeRequest` costs a napi-rs object per request and builds a JS object per step (2–4 µs a
//! poll); `router.call` instead keeps its requests here, in a per-thread slab of the core's
//! `Request` values (a small `Copy` struct), and exchanges every input and output as numbers:
//!
//! - `hotBegin()` reads ROUTER, NOW, MAX_ATTEMPTS, REQUEST_DEADLINE, MAX_WAIT, KEY_HI/KEY_LO
//!   (`requestKey(key)` writes them) and POLL_NOW; starts a request (the core's `Request::new`),
//!   writes its handle to REQUEST (and, with NOW -1, the clock reading to CLOCK_AT), and unless
//!   POLL_NOW is -2 polls it and writes the step.
//! - `hotPoll()` reads REQUEST and NOW; polls and writes the step.
//! - `hotOutcome()` reads REQUEST, OUTCOME, RETRY_AFTER, NOW and POLL_NOW; reports the outcome
//!   (latency: the request's own measure), writes RECORDED and REPORT_LATENCY (the request's last
//!   report) and, unless POLL_NOW is -2, polls and writes the step.
//! - `hotCancel()` reads REQUEST and NOW: the caller cancelled (`handle_cancel`).
//! - `hotFree()` reads REQUEST and forgets the request (idempotent).
//!
//! The step (see `requestLayout()`): STEP (0 attempt, 1 in flight, 2 wait, 3 done); an attempt's
//! PROVIDER, KIND, DEGRADED, TICKET_RETRY_AFTER, NUMBER, DEADLINE, TIMEOUT, IDLE, LAST; an in-flight
//! attempt's DEADLINE; a wait's DEADLINE (`until_ms`) and PROVIDER; a finish's FINISH, PROVIDER,
//! REASON, LAST_OUTCOME and HINT. Once a request finishes (whatever call finished it), the call
//! writes the `done` step, frees the handle and leaves LIVE at 0: the caller polls no more.
//! STATUS is 0, or -1 with the failure parked for `throwPending()` (an input the request cannot
//! take changes nothing and leaves it live). Every decision is the core's; numbers above 2^53 are
//! clamped by [`js_num`].

use failover_core::{
    DefaultRouter, Excluded, Finish, GiveUp, Outcome, OutcomeKind, Request, RequestOptions, Step,
};
use napi::bindgen_prelude::{Env, Object};
use napi_derive::napi;

use crate::convert::js_num;
use crate::error::{Failure, Res};
use crate::hot::{self, Hot, MAX_SAFE, slot};

/// A live request and the router slot it was started on.
#[derive(Clone, Copy)]
struct Live {
    req: Request,
    router: usize,
}

struct Entry {
    generation: u32,
    live: Option<Live>,
}

/// Handles are `generation × 2^24 + index`: a stale handle (its request finished, the index
/// reused) names no live request.
const INDEX_SPAN: u64 = 1 << 24;
const GENERATIONS: u32 = 1 << 28;

/// The live requests of this thread.
pub(crate) struct Slab {
    entries: Vec<Entry>,
    free: Vec<usize>,
}

impl Slab {
    pub(crate) const fn new() -> Slab {
        Slab {
            entries: Vec::new(),
            free: Vec::new(),
        }
    }

    /// A vacant index for a new request (not live yet: [`Slab::release`] gives it back unless a
    /// request is stored in it). Fails when no handle is left for another request.
    fn reserve(&mut self) -> Res<usize> {
        if let Some(i) = self.free.pop() {
            return Ok(i);
        }
        if self.entries.len() as u64 >= INDEX_SPAN {
            return Err(Failure::range("request", "too many requests in flight"));
        }
        self.entries.push(Entry {
            generation: 0,
            live: None,
        });
        Ok(self.entries.len() - 1)
    }

    /// Gives back an index [`Slab::reserve`] gave, forgetting the request stored in it, if any.
    fn release(&mut self, i: usize) {
        let e = &mut self.entries[i];
        if e.live.take().is_some() {
            e.generation = (e.generation + 1) % GENERATIONS;
        }
        self.free.push(i);
    }

    /// The handle of index `i` (as long as its request is live).
    fn handle(&self, i: usize) -> f64 {
        (u64::from(self.entries[i].generation) * INDEX_SPAN + i as u64) as f64
    }

    /// The index and the request of a live handle, in place.
    fn get_mut(&mut self, handle: f64) -> Res<(usize, &mut Live)> {
        let not_live = || Failure::range("request", "is not a live request");
        let h = hot::int_in(handle, MAX_SAFE).ok_or_else(not_live)?;
        let i = (h % INDEX_SPAN) as usize;
        let e = self.entries.get_mut(i).ok_or_else(not_live)?;
        match &mut e.live {
            Some(l) if u64::from(e.generation) == h / INDEX_SPAN => Ok((i, l)),
            _ => Err(not_live()),
        }
    }
}

/// Codes of [`Step`]s, [`Finish`]es and [`GiveUp`] reasons, in the order of `requestCodes()`.
const STEPS: [&str; 4] = ["attempt", "in_flight", "wait", "done"];
const FINISHES: [&str; 4] = ["success", "caller_error", "cancelled", "gave_up"];
const GIVE_UPS: [GiveUp; 4] = [
    GiveUp::NoProvider,
    GiveUp::Attempts,
    GiveUp::Deadline,
    GiveUp::StreamBroken,
];

/// The code of an outcome kind: its index in `OutcomeKind::ALL` (`outcomeKinds()`), which is its
/// discriminant (checked at compile time below).
fn outcome_code(k: OutcomeKind) -> f64 {
    f64::from(k as u8)
}

const _: () = {
    let mut i = 0;
    while i < OutcomeKind::ALL.len() {
        assert!(OutcomeKind::ALL[i] as usize == i);
        i += 1;
    }
};

#[inline(always)]
fn write_finish(h: &Hot, f: Finish) {
    let io = &h.io;
    io[slot::STEP].set(3.0);
    let (code, provider) = match f {
        Finish::Success { provider } => (0.0, provider.index() as f64),
        Finish::CallerError { provider } => (1.0, provider.index() as f64),
        Finish::Cancelled => (2.0, -1.0),
        Finish::GaveUp { .. } => (3.0, -1.0),
    };
    io[slot::FINISH].set(code);
    io[slot::PROVIDER].set(provider);
    match f {
        Finish::GaveUp {
            reason,
            last,
            retry_after_ms,
        } => {
            let r = GIVE_UPS
                .iter()
                .position(|g| *g == reason)
                .map_or(-1.0, |i| i as f64);
            io[slot::REASON].set(r);
            io[slot::LAST_OUTCOME].set(last.map_or(-1.0, outcome_code));
            io[slot::HINT].set(js_num(retry_after_ms));
        }
        _ => {
            io[slot::REASON].set(-1.0);
            io[slot::LAST_OUTCOME].set(-1.0);
            io[slot::HINT].set(-1.0);
        }
    }
}

#[inline(always)]
fn write_step(h: &Hot, s: Step) {
    let io = &h.io;
    match s {
        Step::Attempt(a) => {
            io[slot::STEP].set(0.0);
            io[slot::PROVIDER].set(a.ticket.provider.index() as f64);
            io[slot::KIND].set(hot::kind_code(a.ticket.kind));
            io[slot::DEGRADED].set(if a.ticket.degraded { 1.0 } else { 0.0 });
            io[slot::TICKET_RETRY_AFTER].set(a.ticket.retry_after_ms.map_or(-1.0, js_num));
            io[slot::NUMBER].set(f64::from(a.number));
            io[slot::DEADLINE].set(js_num(a.deadline_ms));
            io[slot::TIMEOUT].set(js_num(a.timeout_ms));
            io[slot::IDLE].set(a.idle_ms.map_or(-1.0, js_num));
            io[slot::LAST].set(if a.last { 1.0 } else { 0.0 });
        }
        Step::InFlight { deadline_ms } => {
            io[slot::STEP].set(1.0);
            io[slot::DEADLINE].set(js_num(deadline_ms));
        }
        Step::Wait { until_ms, provider } => {
            io[slot::STEP].set(2.0);
            io[slot::DEADLINE].set(js_num(until_ms));
            io[slot::PROVIDER].set(provider.index() as f64);
        }
        Step::Done(f) => write_finish(h, f),
    }
}

/// `nowMs` of the poll made in the same call: None for -2 (no poll).
fn poll_now(h: &Hot) -> Res<Option<u64>> {
    let x = h.io[slot::POLL_NOW].get();
    if x == -2.0 {
        Ok(None)
    } else {
        hot::now_arg(h, "nowMs", x).map(Some)
    }
}

/// Runs `f` on the request REQUEST names and its router (panics caught as in
/// `hot::with_router_in`), then polls at `poll` unless `f` failed or the request finished. The
/// request is updated in place in the slab (no copy of it in or out). A finished request's `done`
/// step is written and its handle freed; a request whose update panicked is dropped. Sets LIVE.
fn with_request(
    h: &Hot,
    poll: Option<u64>,
    f: impl FnOnce(&mut Request, &mut DefaultRouter) -> Res<()>,
) -> Res<()> {
    h.io[slot::LIVE].set(0.0);
    // Held across the router's update: nothing in it touches the slab.
    let mut slab = h.requests.borrow_mut();
    let (i, live) = slab.get_mut(h.io[slot::REQUEST].get())?;
    let req = &mut live.req;
    let before = req.last_report().1;
    let out = hot::with_router_in(h, live.router, |r| {
        f(req, r)?;
        if let Some(now) = poll
            && req.finish().is_none()
        {
            write_step(h, req.poll(r, now));
        }
        Ok(())
    });
    write_report(h, req, before);
    if matches!(out, Err(Failure::Panic(_))) {
        slab.release(i);
    } else if let Some(fin) = req.finish() {
        write_finish(h, fin);
        slab.release(i);
    } else {
        h.io[slot::LIVE].set(1.0);
    }
    out
}

/// Writes REPORTED and, if `req` recorded an outcome since it had `before` reports, the
/// REPORT_* slots (a few stores: the JS observer of `failover-core/otel` reads them).
#[inline]
pub(crate) fn write_report(h: &Hot, req: &Request, before: u8) {
    let io = &h.io;
    match req.last_report() {
        (Some(rep), n) if n != before => {
            io[slot::REPORTED].set(1.0);
            io[slot::REPORT_PROVIDER].set(rep.provider.index() as f64);
            io[slot::REPORT_KIND].set(hot::kind_code(rep.kind));
            io[slot::REPORT_NUMBER].set(f64::from(rep.number));
            io[slot::REPORT_OUTCOME].set(outcome_code(rep.outcome.kind));
            io[slot::REPORT_RESULT].set(f64::from(hot::recorded_code(rep.recorded)));
            io[slot::REPORT_STARTED].set(rep.started_ms as f64);
            io[slot::REPORT_ENDED].set(rep.ended_ms as f64);
            io[slot::REPORT_FIRST_TOKEN].set(rep.first_token_ms.map_or(-1.0, |t| t as f64));
            io[slot::REPORT_RETRY_AFTER].set(rep.outcome.retry_after_ms.map_or(-1.0, |t| t as f64));
            for (k, plane) in rep.excluded.planes().into_iter().enumerate() {
                io[slot::REPORT_EXCLUDED + k].set(plane as f64);
            }
        }
        _ => io[slot::REPORTED].set(0.0),
    }
}

/// `hotBegin`: see the module's documentation.
fn hot_begin(h: &Hot) -> Res<f64> {
    let io = &h.io;
    io[slot::LIVE].set(0.0);
    let router = hot::router_slot(io)?;
    let max_attempts =
        match io[slot::MAX_ATTEMPTS].get() {
            -1.0 => None,
            n => Some(hot::int_in(n, 255.0).ok_or_else(|| {
                Failure::range("max_attempts", "must be an integer between 0 and 255")
            })? as u8),
        };
    let key = match io[slot::KEY_HI].get() {
        -1.0 => None,
        hi => {
            let half = |x: f64| {
                hot::int_in(x, f64::from(u32::MAX))
                    .ok_or_else(|| Failure::range("key", "is not a key hash"))
            };
            Some(half(hi)? << 32 | half(io[slot::KEY_LO].get())?)
        }
    };
    let options = RequestOptions {
        max_attempts,
        deadline_ms: hot::opt_ms("deadline_ms", io[slot::REQUEST_DEADLINE].get())?,
        max_wait_ms: hot::opt_ms("max_wait_ms", io[slot::MAX_WAIT].get())?,
        stream: false,
        key,
    };
    let now_in = io[slot::NOW].get();
    let now = if now_in == -1.0 {
        // The default clock: CLOCK_AT gets the reading with its fraction (see `slot::CLOCK_AT`).
        let ns = hot::clock_ns(h);
        io[slot::CLOCK_AT].set(hot::fine_ms(ns));
        hot::ms_of(ns)
    } else {
        hot::time("nowMs", now_in)?
    };
    // Both on the default clock: one reading serves the start and the first poll (25 ns less).
    let poll = if now_in == -1.0 && io[slot::POLL_NOW].get() == -1.0 {
        Some(now)
    } else {
        poll_now(h)?
    };
    // Held across the router's update: nothing in it touches the slab.
    let mut slab = h.requests.borrow_mut();
    // Room first, so that a request that cannot be kept never polls (a poll picks).
    let i = slab.reserve()?;
    let entry = &mut slab.entries[i];
    // Started, polled and reported under one borrow of the router, built in its slab entry (the
    // core's `Request` is 248 bytes: moving it from `Request::new` into the slab cost a few
    // copies of it per call).
    let out = hot::with_router_in(h, router, |r| {
        let req = &mut entry
            .live
            .insert(Live {
                req: Request::new(r, &options, now),
                router,
            })
            .req;
        if let Some(p) = poll {
            let before = req.last_report().1;
            write_step(h, req.poll(r, p));
            write_report(h, req, before);
        }
        Ok(req.finish())
    });
    match out {
        Ok(fin) => {
            io[slot::REQUEST].set(slab.handle(i));
            if let Some(fin) = fin {
                write_finish(h, fin);
                slab.release(i);
            } else {
                io[slot::LIVE].set(1.0);
            }
            Ok(0.0)
        }
        Err(f) => {
            // No handle was handed out: a request half-built by a panic is dropped.
            slab.release(i);
            Err(f)
        }
    }
}

/// `hotPoll`: see the module's documentation.
fn hot_poll(h: &Hot) -> Res<f64> {
    let now = hot::now_arg(h, "nowMs", h.io[slot::NOW].get())?;
    with_request(h, Some(now), |_, _| Ok(())).map(|()| 0.0)
}

/// `hotOutcome`: see the module's documentation.
fn hot_outcome(h: &Hot) -> Res<f64> {
    let io = &h.io;
    let o = Outcome {
        kind: hot::outcome_kind(io[slot::OUTCOME].get())?,
        latency_ms: 0,
        retry_after_ms: hot::opt_ms("retry_after_ms", io[slot::RETRY_AFTER].get())?,
    };
    let now = hot::now_arg(h, "nowMs", io[slot::NOW].get())?;
    let poll = poll_now(h)?;
    with_request(h, poll, |q, r| {
        q.handle_outcome(r, o, now).map_err(Failure::Request)?;
        let (rep, _) = q.last_report();
        io[slot::RECORDED].set(rep.map_or(-1.0, |rep| f64::from(hot::recorded_code(rep.recorded))));
        io[slot::REPORT_LATENCY].set(rep.map_or(0.0, |rep| f64::from(rep.outcome.latency_ms)));
        Ok(())
    })
    .map(|()| 0.0)
}

/// `hotCancel`: see the module's documentation.
fn hot_cancel(h: &Hot) -> Res<f64> {
    let now = hot::now_arg(h, "nowMs", h.io[slot::NOW].get())?;
    with_request(h, None, |q, r| {
        q.handle_cancel(r, now).map_err(Failure::Request)
    })
    .map(|()| 0.0)
}

/// `hotFree`: forgets the request REQUEST names, if it is live.
fn hot_free(h: &Hot) -> Res<f64> {
    let mut slab = h.requests.borrow_mut();
    if let Ok((i, _)) = slab.get_mut(h.io[slot::REQUEST].get()) {
        slab.release(i);
    }
    h.io[slot::LIVE].set(0.0);
    Ok(0.0)
}

/// The bare napi callback of each hot request call (see `hot::hot_callback`).
extern "C" fn callback<const OP: u8>(
    _env: napi::sys::napi_env,
    _info: napi::sys::napi_callback_info,
) -> napi::sys::napi_value {
    hot::run_hot(match OP {
        0 => hot_begin,
        1 => hot_poll,
        2 => hot_outcome,
        3 => hot_cancel,
        _ => hot_free,
    });
    std::ptr::null_mut()
}

/// Adds `hotBegin`, `hotPoll`, `hotOutcome`, `hotCancel` and `hotFree` to the exports.
pub(crate) fn export(exports: &mut Object, env: &Env) -> napi::Result<()> {
    exports.set(
        "hotBegin",
        env.create_function::<(), ()>("hotBegin", callback::<0>)?,
    )?;
    exports.set(
        "hotPoll",
        env.create_function::<(), ()>("hotPoll", callback::<1>)?,
    )?;
    exports.set(
        "hotOutcome",
        env.create_function::<(), ()>("hotOutcome", callback::<2>)?,
    )?;
    exports.set(
        "hotCancel",
        env.create_function::<(), ()>("hotCancel", callback::<3>)?,
    )?;
    exports.set(
        "hotFree",
        env.create_function::<(), ()>("hotFree", callback::<4>)?,
    )?;
    Ok(())
}

/// Writes the core's hash of a sticky key (as in `pickKeyed`) into KEY_HI / KEY_LO for the next
/// `hotBegin`.
#[napi]
pub fn request_key(key: String) {
    let k = failover_core::hash_key(key.as_bytes());
    let io = &hot::hot().io;
    io[slot::KEY_HI].set((k >> 32) as f64);
    io[slot::KEY_LO].set((k & 0xffff_ffff) as f64);
}

/// The names behind the fast path's codes.
#[napi(object)]
pub struct RequestCodes {
    pub steps: Vec<String>,
    pub finishes: Vec<String>,
    pub give_ups: Vec<String>,
}

/// The span attribute `failover.excluded` of a report: the core's `"<provider>=<reason>"` entry
/// (`Report::excluded`) for each provider passed over, in priority order, from the three planes
/// of the REPORT_EXCLUDED slots and the router's provider names (`names[i]` is provider `i`'s).
#[napi]
pub fn exclusion_entries(planes: Vec<f64>, names: Vec<String>) -> Vec<String> {
    let plane = |k: usize| planes.get(k).map_or(0, |&p| p as u64);
    Excluded::from_planes([plane(0), plane(1), plane(2)])
        .entries(&names)
        .map(|e| e.to_string())
        .collect()
}

/// The names behind STEP, FINISH and REASON codes.
#[napi]
pub fn request_codes() -> RequestCodes {
    let v = |xs: &[&str]| xs.iter().map(|s| (*s).to_string()).collect();
    RequestCodes {
        steps: v(&STEPS),
        finishes: v(&FINISHES),
        give_ups: GIVE_UPS.iter().map(|g| g.name().to_string()).collect(),
    }
}

/// Positions of the fast path's slots in the shared buffer.
#[napi(object)]
pub struct RequestLayout {
    pub request: u32,
    pub poll_now: u32,
    pub max_attempts: u32,
    pub request_deadline: u32,
    pub max_wait: u32,
    pub key_hi: u32,
    pub live: u32,
    pub step: u32,
    pub number: u32,
    pub deadline: u32,
    pub timeout: u32,
    pub idle: u32,
    pub last: u32,
    pub finish: u32,
    pub reason: u32,
    pub last_outcome: u32,
    pub hint: u32,
    pub recorded: u32,
    pub report_latency: u32,
    pub reported: u32,
    pub report_provider: u32,
    pub report_kind: u32,
    pub report_number: u32,
    pub report_outcome: u32,
    pub report_result: u32,
    pub report_started: u32,
    pub report_ended: u32,
    pub report_first_token: u32,
    pub report_retry_after: u32,
    pub clock_at: u32,
    pub report_excluded: u32,
}

/// Where the fast path's inputs and outputs sit in the shared buffer.
#[napi]
pub fn request_layout() -> RequestLayout {
    let u = |x: usize| x as u32;
    RequestLayout {
        request: u(slot::REQUEST),
        poll_now: u(slot::POLL_NOW),
        max_attempts: u(slot::MAX_ATTEMPTS),
        request_deadline: u(slot::REQUEST_DEADLINE),
        max_wait: u(slot::MAX_WAIT),
        key_hi: u(slot::KEY_HI),
        live: u(slot::LIVE),
        step: u(slot::STEP),
        number: u(slot::NUMBER),
        deadline: u(slot::DEADLINE),
        timeout: u(slot::TIMEOUT),
        idle: u(slot::IDLE),
        last: u(slot::LAST),
        finish: u(slot::FINISH),
        reason: u(slot::REASON),
        last_outcome: u(slot::LAST_OUTCOME),
        hint: u(slot::HINT),
        recorded: u(slot::RECORDED),
        report_latency: u(slot::REPORT_LATENCY),
        reported: u(slot::REPORTED),
        report_provider: u(slot::REPORT_PROVIDER),
        report_kind: u(slot::REPORT_KIND),
        report_number: u(slot::REPORT_NUMBER),
        report_outcome: u(slot::REPORT_OUTCOME),
        report_result: u(slot::REPORT_RESULT),
        report_started: u(slot::REPORT_STARTED),
        report_ended: u(slot::REPORT_ENDED),
        report_first_token: u(slot::REPORT_FIRST_TOKEN),
        report_retry_after: u(slot::REPORT_RETRY_AFTER),
        clock_at: u(slot::CLOCK_AT),
        report_excluded: u(slot::REPORT_EXCLUDED),
    }
}
