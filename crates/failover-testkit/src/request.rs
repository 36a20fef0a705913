//! The request engine's promises, checked while a byte string drives requests against a router:
//! used alike by `tests/request.rs` (a property test) and the `request` fuzz target.
//!
//! The bytes decode into a small policy (short durations, so every state is reached) and a
//! sequence of operations: start a request (any options), poll it, report any outcome kind with
//! or without a `Retry-After`, stream inputs (first token, chunk, complete or cut end), cancel,
//! outcomes observed outside any request (to open, throttle and bench providers), rate-limit
//! headers (`observe_headroom`, to pace providers and exhaust their quota), timers, and time
//! moving forwards, standing still or backwards.
//!
//! After every operation:
//! - an attempt never goes to a provider that is open, throttled or benched at that time, nor to
//!   one paced at zero headroom before its hint expires (a probing provider only with a probe
//!   ticket);
//! - a request never starts more attempts than its budget, never starts one at or after its
//!   deadline, and no attempt's deadline passes the request's;
//! - a wait is in the future, within the caller's wait limit and before the deadline;
//! - a finished request stays finished (the same finish from every poll; every input refused
//!   with `Finished`), and every attempt it started was recorded exactly once;
//! - inputs the request cannot take are refused without recording anything;
//! - the router's own invariants hold ([`run`]: after every operation; [`run_sampled`], for the
//!   fuzz target: after the operations a [`Sample`] picks, and after the last one).

use failover_core::{
    CircuitState, Finish, Outcome, OutcomeKind, Policy, ProviderId, Request, RequestError,
    RequestOptions, Router, Step, TicketKind,
};

use crate::check::{Check, Sample, Violation};

/// The router the driver uses.
pub type R = Router<4, 16, 32>;

/// A byte reader that yields zeros once the input is exhausted.
struct Bytes<'a> {
    data: &'a [u8],
    at: usize,
}

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    fn done(&self) -> bool {
        self.at >= self.data.len()
    }
}

/// A small valid policy from two bytes: short open periods, throttles, benches and deadlines.
fn policy(b: &mut Bytes) -> Policy {
    let x = b.u8();
    let y = b.u8();
    Policy {
        bucket_ms: 100,
        window_ms: 1_600,
        min_volume: 1 + u32::from(x & 7),
        consecutive_failures: Some(1 + u32::from(x >> 5)),
        open_base_ms: 200 + u64::from(y & 15) * 100,
        open_max_ms: 20_000,
        open_jitter: 0.0,
        probe_timeout_ms: 500,
        probe_successes: 1 + u32::from(y >> 6),
        throttle_base_ms: 100,
        throttle_max_ms: 1_000,
        max_retry_after_ms: 5_000,
        bench_ms: 1_000 + u64::from(y >> 4) * 500,
        request_timeout_ms: 2_000 + u64::from(x & 3) * 1_000,
        attempt_timeout_ms: 300 + u64::from(y & 3) * 200,
        max_wait_ms: u64::from(x >> 6) * 400,
        same_provider_retries: u32::from((x >> 3) & 3),
        first_token_timeout_ms: 400,
        first_token_min_ms: 100,
        first_token_factor: 3,
        stream_idle_ms: 300,
        pace_max_age_ms: 400 + u64::from(y & 12) * 100,
        ..Policy::default()
    }
}

/// How often each kind of step was seen during a run (so a test can show the driver reaches
/// every rule).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// Attempts handed out (of which probes, and streamed).
    pub attempts: u64,
    /// Probe attempts.
    pub probes: u64,
    /// Attempts of streamed requests.
    pub streamed: u64,
    /// Waits.
    pub waits: u64,
    /// Finishes: success, caller error, cancelled, gave up.
    pub finishes: [u64; 4],
    /// Give-ups by reason: no provider, attempts, deadline, stream broken.
    pub give_ups: [u64; 4],
    /// Inputs refused.
    pub refused: u64,
    /// Operations run.
    pub steps: u64,
}

/// One request under test, with what the driver knows about it.
struct Live {
    req: Request,
    budget: u8,
    max_wait: u64,
    attempts_seen: u8,
    finished: Option<Finish>,
}

fn err(msg: String) -> Check {
    Err(Violation(msg))
}

/// Whether provider `id` may take a request at `now`: not open, not throttled or benched, not
/// paced at zero headroom, and when probing, with a probe permit free (the driver's policy allows
/// one probe in flight).
fn available(r: &R, id: ProviderId, now: u64) -> bool {
    let v = r.view(id).expect("an id from this router");
    let permit = v.state != CircuitState::Probing || v.probes_in_flight == 0;
    let quota = v.paced_headroom_ppm != Some(0) || v.paced_until_ms.is_none_or(|t| t <= now);
    v.state != CircuitState::Open
        && permit
        && quota
        && v.throttled_until_ms.is_none_or(|t| t <= now)
}

/// Checks one step's answer against what the request promised.
fn check_step(r: &R, l: &mut Live, s: Step, now: u64, seen: &mut Seen) -> Check {
    let deadline = l.req.deadline_ms();
    match s {
        Step::Attempt(a) if l.finished.is_none() => {
            seen.attempts += 1;
            seen.probes += u64::from(a.ticket.kind == TicketKind::Probe);
            seen.streamed += u64::from(a.idle_ms.is_some());
        }
        Step::Wait { .. } => seen.waits += 1,
        Step::Done(f) if l.finished.is_none() => {
            let i = ["success", "caller_error", "cancelled", "gave_up"]
                .iter()
                .position(|n| *n == f.name())
                .unwrap_or(0);
            seen.finishes[i] += 1;
            if let Finish::GaveUp { reason, .. } = f {
                let j = ["no_provider", "attempts", "deadline", "stream_broken"]
                    .iter()
                    .position(|n| *n == reason.name())
                    .unwrap_or(0);
                seen.give_ups[j] += 1;
            }
        }
        _ => {}
    }
    if let Some(f) = l.finished {
        return match s {
            Step::Done(g) if g == f => Ok(()),
            other => err(format!("a finished request ({f:?}) answered {other:?}")),
        };
    }
    match s {
        Step::Attempt(a) => {
            let id = a.ticket.provider;
            l.attempts_seen += 1;
            if l.attempts_seen > l.budget {
                return err(format!("attempt {} past the budget {}", a.number, l.budget));
            }
            if a.number != l.attempts_seen {
                return err(format!(
                    "attempt numbered {} is the {}th",
                    a.number, l.attempts_seen
                ));
            }
            if now >= deadline {
                return err(format!("attempt started at {now}, deadline {deadline}"));
            }
            if a.deadline_ms > deadline || a.deadline_ms <= now {
                return err(format!(
                    "attempt deadline {} (now {now}, request {deadline})",
                    a.deadline_ms
                ));
            }
            if a.timeout_ms != a.deadline_ms - now {
                return err(format!(
                    "timeout {} for deadline {} at {now}",
                    a.timeout_ms, a.deadline_ms
                ));
            }
            let v = r.view(id).expect("an id from this router");
            if v.state == CircuitState::Open || v.throttled_until_ms.is_some_and(|t| t > now) {
                return err(format!(
                    "attempt to an unavailable provider: {v:?} at {now}"
                ));
            }
            if v.paced_headroom_ppm == Some(0) && v.paced_until_ms.is_some_and(|t| t > now) {
                return err(format!(
                    "attempt to a provider paced at zero headroom: {v:?} at {now}"
                ));
            }
            let probing = v.state == CircuitState::Probing;
            if probing != (a.ticket.kind == TicketKind::Probe) {
                return err(format!(
                    "attempt kind {:?} to a {:?} provider",
                    a.ticket.kind, v.state
                ));
            }
            if a.ticket.degraded {
                return err("a request handed out a degraded ticket".into());
            }
        }
        Step::InFlight { deadline_ms } => {
            if l.req.in_flight().is_none() || deadline_ms <= now || deadline_ms > deadline {
                return err(format!(
                    "in flight until {deadline_ms} at {now} (request {deadline})"
                ));
            }
        }
        Step::Wait { until_ms, provider } => {
            if until_ms <= now || until_ms - now > l.max_wait || until_ms >= deadline {
                return err(format!(
                    "wait until {until_ms} at {now} (limit {}, deadline {deadline})",
                    l.max_wait
                ));
            }
            if available(r, provider, now) {
                let v = r.view(provider).expect("an id from this router");
                return err(format!(
                    "waits for {provider:?}, which is available now: {v:?}"
                ));
            }
        }
        Step::Done(f) => {
            l.finished = Some(f);
            let (_, reports) = l.req.last_report();
            if reports != l.attempts_seen {
                return err(format!(
                    "{} attempts but {reports} recordings",
                    l.attempts_seen
                ));
            }
        }
    }
    Ok(())
}

/// Drives requests from `data` and checks every promise after every operation. Never panics on
/// any input; returns the first violation, or what was seen.
pub fn run(data: &[u8]) -> Result<Seen, Violation> {
    run_sampled(data, Sample::every(1))
}

/// [`run`], with the router's O(P · B) `invariant_violation` after the operations `sample` picks
/// (every n-th, every one that changed a circuit, and the last) instead of after every one; the
/// request's promises are still checked after every operation.
pub fn run_sampled(data: &[u8], mut sample: Sample) -> Result<Seen, Violation> {
    let mut seen = Seen::default();
    let mut b = Bytes { data, at: 0 };
    let p = policy(&mut b);
    let n = 1 + usize::from(b.u8() % 4);
    let names = &crate::NAMES[..n];
    let mut r: Box<R> = Box::new(R::new(&p, names).map_err(|e| Violation(format!("{e}")))?);
    let _ = &mut seen;
    let mut now: u64 = 0;
    let mut live: Vec<Live> = Vec::new();
    let mut steps: u64 = 0;
    while !b.done() && steps < 2_000 {
        steps += 1;
        let op = b.u8();
        // Time: mostly forwards by a little, sometimes a lot, sometimes backwards.
        match op >> 5 {
            0 => now = now.saturating_add(u64::from(b.u8())),
            1 => now = now.saturating_add(u64::from(b.u16())),
            2 => now = now.saturating_sub(u64::from(b.u8())),
            _ => {}
        }
        let pick_live = |b: &mut Bytes, len: usize| usize::from(b.u8()) % len.max(1);
        match op & 15 {
            0 | 1 => {
                let o = b.u8();
                let options = RequestOptions {
                    max_attempts: (o & 1 == 1).then(|| b.u8() % 6),
                    deadline_ms: (o & 2 == 2).then(|| now.saturating_add(u64::from(b.u16()))),
                    max_wait_ms: (o & 4 == 4).then(|| u64::from(b.u16())),
                    stream: o & 8 == 8,
                    key: (o & 16 == 16).then(|| u64::from(b.u16())),
                };
                let req = Request::new(&r, &options, now);
                let budget = options
                    .max_attempts
                    .unwrap_or((n as u8).saturating_add(p.same_provider_retries as u8))
                    .max(1);
                live.push(Live {
                    req,
                    budget,
                    max_wait: options.max_wait_ms.unwrap_or(p.max_wait_ms),
                    attempts_seen: 0,
                    finished: None,
                });
                if live.len() > 8 {
                    live.remove(0);
                }
            }
            2..=5 if !live.is_empty() => {
                let i = pick_live(&mut b, live.len());
                let l = &mut live[i];
                let s = l.req.poll(&mut r, now);
                // The request's time: the latest it has seen (its own clock never goes back).
                let t = now.max(r.now());
                check_step(&r, l, s, t, &mut seen).map_err(|v| v.at(&format!("poll at {now}")))?;
            }
            6..=8 if !live.is_empty() => {
                let i = pick_live(&mut b, live.len());
                let k = OutcomeKind::ALL[usize::from(b.u8()) % OutcomeKind::ALL.len()];
                let ra = (b.u8() & 3 == 0).then(|| u64::from(b.u16()));
                let o = Outcome {
                    kind: k,
                    latency_ms: 0,
                    retry_after_ms: ra,
                };
                let l = &mut live[i];
                input(l, &mut seen, |req| req.handle_outcome(&mut r, o, now))?;
            }
            9 if !live.is_empty() => {
                let i = pick_live(&mut b, live.len());
                input(&mut live[i], &mut seen, |req| req.handle_first_token(now))?;
            }
            10 if !live.is_empty() => {
                let i = pick_live(&mut b, live.len());
                input(&mut live[i], &mut seen, |req| req.handle_chunk(now))?;
            }
            11 if !live.is_empty() => {
                let i = pick_live(&mut b, live.len());
                let complete = b.u8() & 1 == 1;
                input(&mut live[i], &mut seen, |req| {
                    req.handle_end(&mut r, complete, now)
                })?;
            }
            12 if !live.is_empty() => {
                let i = pick_live(&mut b, live.len());
                input(&mut live[i], &mut seen, |req| {
                    req.handle_cancel(&mut r, now)
                })?;
            }
            13 | 14 => {
                let id = r.provider_at(usize::from(b.u8()) % n).expect("in range");
                let k = OutcomeKind::ALL[usize::from(b.u8()) % OutcomeKind::ALL.len()];
                let ra = (b.u8() & 3 == 0).then(|| u64::from(b.u8()) * 20);
                let o = Outcome {
                    kind: k,
                    latency_ms: 10,
                    retry_after_ms: ra,
                };
                let _ = r.observe(id, o, now);
            }
            15 if op & 16 == 16 => {
                let id = r.provider_at(usize::from(b.u8()) % n).expect("in range");
                let h = crate::headers::headroom(&crate::headers::decode(|| b.u8()));
                let _ = r.observe_headroom(id, &h, now);
            }
            _ => r.handle_timeout(now),
        }
        let full = sample.full(&*r) || b.done() || steps == 2_000;
        while r.poll_event().is_some() {}
        sample.drained(&*r);
        if full && let Some(v) = r.invariant_violation() {
            return Err(Violation(format!("router invariant: {v}")));
        }
    }
    seen.steps = steps;
    Ok(seen)
}

/// Applies an input to a request and checks how it was taken: refused inputs record nothing, and
/// a finished request refuses every input.
fn input(
    l: &mut Live,
    seen: &mut Seen,
    f: impl FnOnce(&mut Request) -> Result<(), RequestError>,
) -> Check {
    let (_, before) = l.req.last_report();
    let was_done = l.req.finish().is_some();
    let res = f(&mut l.req);
    seen.refused += u64::from(res.is_err());
    let (_, after) = l.req.last_report();
    match res {
        Err(e) if after != before => err(format!("refused input ({e}) recorded something")),
        Err(RequestError::Finished) if !was_done => err("`finished` before the end".into()),
        Ok(()) if was_done => err("a finished request took an input".into()),
        Err(e) if was_done && e != RequestError::Finished => {
            err(format!("a finished request refused an input with {e}"))
        }
        _ => Ok(()),
    }
}
