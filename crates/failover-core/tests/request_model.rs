//! A second reference model, for the request engine: the rules documented on
//! `failover_core::Request`, written again the plain way (public router calls only: `pick_with`
//! refusing its degraded fallback, `soonest`, `retry_hint`, `record` with whole tickets; the finish
//! kept as a plain value; no fast paths), run in lockstep with the engine on random inputs. Each
//! side drives its own router with the same inputs; every answer, every refusal, every recording
//! and the two routers' views must agree after every operation.

use failover_core::{
    Attempt, Finish, GiveUp, Outcome, OutcomeKind, PickRequest, Policy, ProviderId, ProviderSet,
    Request, RequestError, RequestOptions, Router, Step, Ticket,
};
use proptest::prelude::*;

type R = Router<4, 16, 32>;

/// The model of one request.
#[derive(Clone, Debug)]
struct Model {
    now: u64,
    deadline: u64,
    max_wait: u64,
    key: Option<u64>,
    stream: bool,
    budget: u8,
    attempts: u8,
    excluded: ProviderSet,
    retry_same: Option<ProviderId>,
    same_left: u32,
    last: Option<OutcomeKind>,
    reports: u8,
    in_flight: Option<(Ticket, u64, u64, Option<u64>)>,
    done: Option<Finish>,
}

fn all_but(id: ProviderId) -> ProviderSet {
    ProviderSet::from_bits(!(1u64 << id.index()))
}

impl Model {
    fn new(r: &R, p: &Policy, o: &RequestOptions, now: u64) -> Model {
        let now = now.max(r.now());
        Model {
            now,
            // "Default: its start plus the policy's request_timeout_ms."
            deadline: o
                .deadline_ms
                .unwrap_or(now.saturating_add(p.request_timeout_ms)),
            max_wait: o.max_wait_ms.unwrap_or(p.max_wait_ms),
            key: o.key,
            stream: o.stream,
            // "one per provider plus the policy's same_provider_retries, at most 255. 0 is 1."
            budget: o
                .max_attempts
                .unwrap_or((r.len() as u64 + u64::from(p.same_provider_retries)).min(255) as u8)
                .max(1),
            attempts: 0,
            excluded: ProviderSet::new(),
            retry_same: None,
            same_left: p.same_provider_retries,
            last: None,
            reports: 0,
            in_flight: None,
            done: None,
        }
    }

    fn record(&mut self, r: &mut R, kind: OutcomeKind, ra: Option<u64>, now: u64) {
        let (t, started, _, first) = self.in_flight.take().expect("an attempt in flight");
        let latency = first
            .unwrap_or(now)
            .saturating_sub(started)
            .min(u64::from(u32::MAX));
        let o = Outcome {
            kind,
            latency_ms: latency as u32,
            retry_after_ms: ra,
        };
        r.record(&t, o, now);
        self.last = Some(kind);
        self.reports += 1;
        let id = t.provider;
        if first.is_some() && kind != OutcomeKind::Success {
            self.done = Some(Finish::GaveUp {
                reason: GiveUp::StreamBroken,
                last: Some(kind),
                retry_after_ms: r.retry_hint(),
            });
            return;
        }
        match kind {
            OutcomeKind::Success => self.done = Some(Finish::Success { provider: id }),
            OutcomeKind::ClientError => self.done = Some(Finish::CallerError { provider: id }),
            OutcomeKind::Cancelled => self.done = Some(Finish::Cancelled),
            OutcomeKind::RateLimited => {}
            OutcomeKind::ServerError | OutcomeKind::ConnectionError | OutcomeKind::StreamCut => {
                self.excluded.insert(id);
                self.retry_same = Some(id);
            }
            _ => {
                self.excluded.insert(id);
                if self.retry_same == Some(id) {
                    self.retry_same = None;
                }
            }
        }
    }

    fn give_up(&mut self, reason: GiveUp, hint: u64) -> Step {
        let f = Finish::GaveUp {
            reason,
            last: self.last,
            retry_after_ms: hint,
        };
        self.done = Some(f);
        Step::Done(f)
    }

    fn poll(&mut self, r: &mut R, p: &Policy, now: u64) -> Step {
        let now = self.now.max(now).max(r.now());
        self.now = now;
        if let Some(f) = self.done {
            return Step::Done(f);
        }
        if let Some((_, _, deadline, first)) = self.in_flight {
            if now < deadline {
                return Step::InFlight {
                    deadline_ms: deadline,
                };
            }
            let kind = if first.is_some() {
                OutcomeKind::Stalled
            } else {
                OutcomeKind::Timeout
            };
            self.record(r, kind, None, now);
            if let Some(f) = self.done {
                return Step::Done(f);
            }
        }
        if self.attempts >= self.budget {
            let h = r.retry_hint();
            return self.give_up(GiveUp::Attempts, h);
        }
        if now >= self.deadline {
            let h = r.retry_hint();
            return self.give_up(GiveUp::Deadline, h);
        }
        let req = PickRequest {
            key: self.key,
            tried: self.excluded,
        };
        if let Ok(t) = r.pick_with(now, &req)
            && !t.degraded
        {
            return self.start(r, p, t, now);
        }
        if let Some(id) = self.retry_same.take()
            && self.same_left > 0
            && r.soonest(all_but(id)) == Some((id, now))
        {
            let only = PickRequest {
                key: self.key,
                tried: all_but(id),
            };
            if let Ok(t) = r.pick_with(now, &only)
                && !t.degraded
            {
                self.same_left -= 1;
                return self.start(r, p, t, now);
            }
        }
        match r.soonest(self.excluded) {
            Some((id, at)) if at > now && at - now <= self.max_wait && at < self.deadline => {
                Step::Wait {
                    until_ms: at,
                    provider: id,
                }
            }
            Some((_, at)) => self.give_up(GiveUp::NoProvider, at - now),
            None => {
                let h = r.retry_hint();
                self.give_up(GiveUp::NoProvider, h)
            }
        }
    }

    fn start(&mut self, r: &R, p: &Policy, t: Ticket, now: u64) -> Step {
        self.attempts += 1;
        let remaining = self.deadline - now;
        let mut after = self.excluded;
        after.insert(t.provider);
        let last = self.attempts >= self.budget
            || (after.len() as usize >= r.len() && self.same_left == 0);
        let own = if self.stream {
            match r.baseline_ms(t.provider) {
                Some(b) => (u64::from(b) * u64::from(p.first_token_factor))
                    .clamp(p.first_token_min_ms, p.first_token_timeout_ms),
                None => p.first_token_timeout_ms,
            }
        } else {
            p.attempt_timeout_ms
        };
        let timeout = if last { remaining } else { own.min(remaining) };
        self.in_flight = Some((t, now, now + timeout, None));
        Step::Attempt(Attempt {
            ticket: t,
            number: self.attempts,
            deadline_ms: now + timeout,
            timeout_ms: timeout,
            idle_ms: self.stream.then_some(p.stream_idle_ms),
            last,
        })
    }

    fn check(&self, stream_input: bool) -> Result<(), RequestError> {
        if self.done.is_some() {
            return Err(RequestError::Finished);
        }
        if stream_input && !self.stream {
            return Err(RequestError::NotStreamed);
        }
        if self.in_flight.is_none() {
            return Err(RequestError::NoAttempt);
        }
        Ok(())
    }
}

#[derive(Clone, Debug)]
enum Op {
    Begin(u8, u16, u16, bool),
    Poll(u8, u16),
    Report(u8, u8, Option<u16>, u16),
    FirstToken(u8, u16),
    Chunk(u8, u16),
    End(u8, bool, u16),
    Cancel(u8, u16),
    Observe(u8, u8, u16),
    Back(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (any::<u8>(), any::<u16>(), any::<u16>(), any::<bool>())
            .prop_map(|(a, b, c, d)| Op::Begin(a, b, c, d)),
        6 => (any::<u8>(), 0..3_000u16).prop_map(|(a, b)| Op::Poll(a, b)),
        4 => (any::<u8>(), any::<u8>(), prop::option::of(0..3_000u16), 0..2_000u16)
            .prop_map(|(a, b, c, d)| Op::Report(a, b, c, d)),
        1 => (any::<u8>(), 0..2_000u16).prop_map(|(a, b)| Op::FirstToken(a, b)),
        1 => (any::<u8>(), 0..2_000u16).prop_map(|(a, b)| Op::Chunk(a, b)),
        1 => (any::<u8>(), any::<bool>(), 0..2_000u16).prop_map(|(a, b, c)| Op::End(a, b, c)),
        1 => (any::<u8>(), 0..500u16).prop_map(|(a, b)| Op::Cancel(a, b)),
        2 => (any::<u8>(), any::<u8>(), 0..500u16).prop_map(|(a, b, c)| Op::Observe(a, b, c)),
        1 => any::<u8>().prop_map(Op::Back),
    ]
}

fn policy(x: u8) -> Policy {
    Policy {
        bucket_ms: 100,
        window_ms: 1_600,
        min_volume: 2,
        consecutive_failures: Some(1 + u32::from(x & 3)),
        open_base_ms: 300,
        open_max_ms: 5_000,
        open_jitter: 0.0,
        probe_timeout_ms: 700,
        probe_successes: 1 + u32::from((x >> 2) & 1),
        throttle_base_ms: 100,
        throttle_max_ms: 800,
        max_retry_after_ms: 3_000,
        bench_ms: 2_000,
        request_timeout_ms: 3_000 + u64::from(x >> 6) * 2_000,
        attempt_timeout_ms: 400,
        max_wait_ms: u64::from((x >> 3) & 3) * 500,
        same_provider_retries: u32::from((x >> 5) & 1),
        first_token_timeout_ms: 600,
        first_token_min_ms: 100,
        first_token_factor: 3,
        stream_idle_ms: 300,
        ..Policy::default()
    }
}

fn kind(b: u8) -> OutcomeKind {
    OutcomeKind::ALL[usize::from(b) % OutcomeKind::ALL.len()]
}

fn lockstep(x: u8, n: usize, ops: &[Op]) -> Result<(), TestCaseError> {
    let p = policy(x);
    let names = ["a", "b", "c", "d"];
    let mut er = Box::new(R::new(&p, &names[..n]).unwrap());
    let mut mr = Box::new(R::new(&p, &names[..n]).unwrap());
    let mut reqs: Vec<(Request, Model)> = Vec::new();
    let mut now = 0u64;
    for (i, op) in ops.iter().enumerate() {
        let pick = |a: u8, len: usize| usize::from(a) % len.max(1);
        match *op {
            Op::Begin(o, dl, w, stream) => {
                let options = RequestOptions {
                    max_attempts: (o & 1 == 1).then_some(o >> 5),
                    deadline_ms: (o & 2 == 2).then(|| now + u64::from(dl)),
                    max_wait_ms: (o & 4 == 4).then_some(u64::from(w)),
                    stream,
                    key: (o & 8 == 8).then_some(u64::from(o)),
                };
                reqs.push((
                    Request::new(&er, &options, now),
                    Model::new(&mr, &p, &options, now),
                ));
            }
            _ if reqs.is_empty() => {}
            Op::Poll(a, dt) => {
                now += u64::from(dt);
                let len = reqs.len();
                let (e, m) = &mut reqs[pick(a, len)];
                let got = e.poll(&mut er, now);
                let want = m.poll(&mut mr, &p, now);
                prop_assert_eq!(got, want, "op {} poll at {}", i, now);
            }
            Op::Report(a, k, ra, dt) => {
                now += u64::from(dt);
                let len = reqs.len();
                let (e, m) = &mut reqs[pick(a, len)];
                let o = Outcome {
                    kind: kind(k),
                    latency_ms: 0,
                    retry_after_ms: ra.map(u64::from),
                };
                let got = e.handle_outcome(&mut er, o, now);
                let want = m.check(false).map(|()| {
                    let now = m.now.max(now);
                    m.now = now;
                    if m.stream && o.kind == OutcomeKind::Success {
                        end(m, &mut mr, true, now);
                    } else {
                        m.record(&mut mr, o.kind, o.retry_after_ms, now);
                    }
                });
                prop_assert_eq!(got, want, "op {} report at {}", i, now);
            }
            Op::FirstToken(a, dt) | Op::Chunk(a, dt) => {
                now += u64::from(dt);
                let first = matches!(op, Op::FirstToken(..));
                let len = reqs.len();
                let (e, m) = &mut reqs[pick(a, len)];
                let got = if first {
                    e.handle_first_token(now)
                } else {
                    e.handle_chunk(now)
                };
                let want = m.check(true).map(|()| {
                    let now = m.now.max(now);
                    m.now = now;
                    let (deadline, idle) = (m.deadline, p.stream_idle_ms);
                    if let Some((_, _, d, f)) = &mut m.in_flight
                        && (first || f.is_some())
                    {
                        f.get_or_insert(now);
                        *d = (now + idle).min(deadline);
                    }
                });
                prop_assert_eq!(got, want, "op {} stream input at {}", i, now);
            }
            Op::End(a, complete, dt) => {
                now += u64::from(dt);
                let len = reqs.len();
                let (e, m) = &mut reqs[pick(a, len)];
                let got = e.handle_end(&mut er, complete, now);
                let want = m.check(true).map(|()| {
                    let now = m.now.max(now);
                    m.now = now;
                    end(m, &mut mr, complete, now);
                });
                prop_assert_eq!(got, want, "op {} end at {}", i, now);
            }
            Op::Cancel(a, dt) => {
                now += u64::from(dt);
                let len = reqs.len();
                let (e, m) = &mut reqs[pick(a, len)];
                let got = e.handle_cancel(&mut er, now);
                let want = if m.done.is_some() {
                    Err(RequestError::Finished)
                } else {
                    let now = m.now.max(now);
                    m.now = now;
                    if m.in_flight.is_some() {
                        m.record(&mut mr, OutcomeKind::Cancelled, None, now);
                    }
                    m.done = Some(Finish::Cancelled);
                    Ok(())
                };
                prop_assert_eq!(got, want, "op {} cancel at {}", i, now);
            }
            Op::Observe(a, k, dt) => {
                now += u64::from(dt);
                let id = er.provider_at(usize::from(a) % n).unwrap();
                let o = Outcome::new(kind(k), 50);
                prop_assert_eq!(er.observe(id, o, now), mr.observe(id, o, now));
            }
            Op::Back(dt) => now = now.saturating_sub(u64::from(dt)),
        }
        for (e, m) in &reqs {
            prop_assert_eq!(e.last_report().1, m.reports, "op {}: recordings", i);
            prop_assert_eq!(e.attempts(), m.attempts, "op {}: attempts", i);
            prop_assert_eq!(e.finish(), m.done, "op {}: finish", i);
        }
        let ev: Vec<_> = er.views().map(|v| format!("{v:?}")).collect();
        let mv: Vec<_> = mr.views().map(|v| format!("{v:?}")).collect();
        prop_assert_eq!(ev, mv, "op {}: the routers differ", i);
        prop_assert_eq!(er.invariant_violation(), None);
    }
    Ok(())
}

/// "A complete stream is recorded as a success whose latency is the time to the first token; a
/// cut one as stream_cut."
fn end(m: &mut Model, r: &mut R, complete: bool, now: u64) {
    if complete {
        let (t, started, _, first) = m.in_flight.take().expect("in flight");
        let latency = first
            .unwrap_or(now)
            .saturating_sub(started)
            .min(u64::from(u32::MAX));
        r.record(&t, Outcome::success(latency as u32), now);
        m.last = Some(OutcomeKind::Success);
        m.reports += 1;
        m.done = Some(Finish::Success {
            provider: t.provider,
        });
    } else {
        m.record(r, OutcomeKind::StreamCut, None, now);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("FAILOVER_REQUEST_MODEL_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_500),
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_engine_agrees_with_the_request_model(
        x in any::<u8>(),
        n in 1..=4usize,
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        lockstep(x, n, &ops)?;
    }
}
