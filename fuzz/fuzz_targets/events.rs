//! A valid policy decoded from the input, then an arbitrary sequence of picks (keys, tried sets),
//! records (any kind, latency and Retry-After; stale, duplicated and forged tickets; unknown
//! providers), observations, rate-limit headers (`observe_headroom`: pacing, with random limit,
//! remaining and reset per dimension), health-check actions, timers and drains, at arbitrary
//! timestamps (backwards, equal, huge jumps, `u64::MAX`). Two routers run the same inputs in
//! lockstep.
//!
//! After every step: the two routers agree on every output and deadline, and the documented
//! promises of each step hold (time never goes backwards, an open provider is picked only as a
//! degraded pick, a probe only from a probing provider, no available provider of higher priority
//! is skipped, stale tickets are stale, events are stamped in order and carry sane figures;
//! pacing changes no circuit, ramp or throttle, its hint is what the rules make of the headers,
//! and a provider at zero headroom gets no request before its hint expires).
//! The O(P · B) checks (`Router::invariant_violation()` is `None`, with the engine's debug
//! recounts; every view consistent: shares in [0, 1] matching the state, deadlines ahead; the
//! two routers' views equal) run on a deterministic sample of steps: after every step that
//! changed a circuit (it queued or dropped an event), every 16th step
//! (`FAILOVER_FULL_CHECK_EVERY=1`: every step) and the last step of each input
//! (`failover_testkit::check::Sample`). Those promises are `failover_testkit::check`, the same
//! checks `tests/invariants` runs after every input.

#![no_main]

use failover_core::{
    Action, AllDown, Event, Outcome, OutcomeKind, PickRequest, Policy, ProbeMode, ProviderId,
    ProviderSet, RampStage, Recorded, Router, Ticket, TicketKind, Unavailable, Value,
};
use failover_testkit::check::{self, Sample, assert_holds};
use failover_testkit::headers;
use failover_testkit::{ids, stats};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

type R = Router<4, 12, 32>;

/// The full checks' sampling period in steps (see `Sample`).
const FULL_CHECK_EVERY: u32 = 16;

/// One rate-limit observation in this many gets the full pacing check (`check::headroom`: every
/// provider's circuit before and after, O(P · B)); every one with `FAILOVER_FULL_CHECK_EVERY=1`.
/// The others are still checked by the events they queue and the sampled views.
const HEADROOM_CHECK_EVERY: u32 = 8;

/// One input in this many also runs the lockstep witness (see `witnessed`).
const WITNESS_EVERY: u64 = 8;

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok((policy, n)) = decode_policy(&mut u) else {
        return stats::add(0);
    };
    let Ok(ops) = decode_ops(&mut u) else {
        return stats::add(0);
    };
    run(&policy, n, &ops, witnessed(data));
    stats::add(ops.len());
});

fn frac(u: &mut Unstructured) -> Result<f64> {
    Ok((f64::from(u.arbitrary::<u8>()?) + 1.0) / 256.0)
}

fn opt<T>(
    u: &mut Unstructured,
    f: impl FnOnce(&mut Unstructured) -> Result<T>,
) -> Result<Option<T>> {
    Ok(if u.ratio(1, 4)? { None } else { Some(f(u)?) })
}

/// A valid policy with small durations (so that every state is reached quickly), or now and then
/// with huge ones (so that saturation is exercised).
fn decode_policy(u: &mut Unstructured) -> Result<(Policy, usize)> {
    let n = u.int_in_range(1..=4usize)?;
    let huge = u.ratio(1, 16)?;
    let dur = |u: &mut Unstructured, max: u64| -> Result<u64> {
        if huge && u.arbitrary()? {
            Ok(u64::MAX - u.int_in_range(0..=1_000u64)?)
        } else {
            u.int_in_range(1..=max)
        }
    };
    let bucket_ms = u.int_in_range(1..=200u64)?;
    let buckets = u.int_in_range(1..=12u64)?;
    let mut ramp = Vec::new();
    let stages = u.int_in_range(0..=7usize)?;
    let mut share = 0.0f64;
    for _ in 0..stages {
        share += (1.0 - share) * frac(u)? * 0.9;
        if share >= 0.999 {
            break;
        }
        ramp.push(RampStage {
            share,
            dwell_ms: dur(u, 2_000)?,
        });
    }
    let last_dwell = if u.arbitrary()? { 0 } else { dur(u, 500)? };
    ramp.push(RampStage {
        share: 1.0,
        dwell_ms: last_dwell,
    });
    let open_base_ms = dur(u, 5_000)?;
    let throttle_base_ms = dur(u, 1_000)?;
    let mut p = Policy {
        bucket_ms,
        window_ms: bucket_ms * buckets,
        min_volume: u.int_in_range(1..=10)?,
        error_rate_threshold: opt(u, frac)?,
        consecutive_failures: opt(u, |u| u.int_in_range(1..=6))?,
        timeout_rate_threshold: opt(u, frac)?,
        timeout_sustain_ms: dur(u, 2_000)?,
        slow_call_ms: u.int_in_range(1..=3_000)?,
        slow_call_rate_threshold: opt(u, frac)?,
        latency_factor: opt(u, |u| Ok(1.01 + frac(u)? * 20.0))?,
        latency_quantile: frac(u)?,
        latency_baseline_ms: dur(u, 10_000)?,
        count_client_errors: u.arbitrary()?,
        open_base_ms,
        open_multiplier: 1.0 + frac(u)? * 7.0,
        open_max_ms: open_base_ms.saturating_add(dur(u, 20_000)?),
        open_jitter: frac(u)? * 0.99,
        seed: u.arbitrary()?,
        backoff_decay_ms: dur(u, 20_000)?,
        probe_mode: if u.ratio(1, 3)? {
            ProbeMode::HealthChecks
        } else {
            ProbeMode::Requests
        },
        probe_max_in_flight: u.int_in_range(1..=8)?,
        probe_successes: u.int_in_range(1..=4)?,
        probe_timeout_ms: dur(u, 2_000)?,
        health_check_interval_ms: if u.ratio(1, 3)? {
            Some(dur(u, 5_000)?)
        } else {
            None
        },
        ramp_min_samples: u.int_in_range(1..=8)?,
        ramp_rollback_threshold: frac(u)?,
        throttle_base_ms,
        throttle_max_ms: throttle_base_ms.saturating_add(dur(u, 10_000)?),
        max_retry_after_ms: dur(u, 20_000)?,
        when_all_down: if u.arbitrary()? {
            AllDown::Soonest
        } else {
            AllDown::Fail
        },
        ..Policy::default()
    };
    // Pacing's two fields come from the seed's bytes rather than bytes of their own, so the
    // policy's byte layout (and what the committed seeds and corpora decode to) is the one from
    // before pacing was fuzzed: no watermark one time in eight, else 1/256 to 1; a max age of
    // 1 ms to 16 s.
    let seed = p.seed;
    p.pace_watermark = (seed & 7 != 0).then(|| (f64::from((seed >> 8) as u8) + 1.0) / 256.0);
    p.pace_max_age_ms = 1 + (seed >> 16) % 16_384;
    p.clear_ramp();
    for st in ramp {
        p.push_ramp_stage(Value::Float(st.share), Value::Int(i128::from(st.dwell_ms)))
            .expect("at most eight stages");
    }
    p.validate(12).expect("the decoder builds valid policies");
    Ok((p, n))
}

#[derive(Clone, Copy, Debug)]
enum Time {
    Fwd(u16),
    Same,
    Back(u16),
    Jump(u32),
    At(u64),
    Max,
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Pick {
        t: Time,
        key: Option<u64>,
        tried: u64,
    },
    Record {
        t: Time,
        which: usize,
        keep: bool,
        o: Outcome,
    },
    Forged {
        t: Time,
        provider: usize,
        kind: TicketKind,
        generation: i64,
        seq: u32,
        o: Outcome,
    },
    Observe {
        t: Time,
        provider: usize,
        o: Outcome,
    },
    PollAction {
        t: Time,
        max: u8,
    },
    HandleTimeout {
        t: Time,
    },
    /// The quotas' bytes, decoded when the step runs (`[Quota; 4]` would make every `Op` four
    /// times larger, and the input's op list with it).
    Headroom {
        t: Time,
        provider: usize,
        quotas: [u8; 16],
    },
    Sleep,
    Drain,
}

fn decode_time(u: &mut Unstructured) -> Result<Time> {
    Ok(match u.int_in_range(0..=63u8)? {
        0..=44 => Time::Fwd(u.int_in_range(0..=200)?),
        45..=50 => Time::Same,
        51..=55 => Time::Back(u.arbitrary()?),
        56..=60 => Time::Jump(u.arbitrary()?),
        61 | 62 => Time::At(u.arbitrary()?),
        _ => Time::Max,
    })
}

fn decode_outcome(u: &mut Unstructured) -> Result<Outcome> {
    let kind = match u.int_in_range(0..=15u8)? {
        0..=6 => OutcomeKind::Success,
        k => OutcomeKind::ALL[usize::from(k - 7) % 7],
    };
    let latency_ms = match u.int_in_range(0..=7u8)? {
        0..=4 => u.int_in_range(0..=500)?,
        5 => u.int_in_range(0..=60_000)?,
        6 => u32::MAX,
        _ => u.arbitrary()?,
    };
    let retry_after_ms = match u.int_in_range(0..=15u8)? {
        0 => Some(0),
        1 => Some(u.int_in_range(1..=5_000)?),
        2 => Some(u.arbitrary()?),
        3 => Some(u64::MAX),
        _ => None,
    };
    Ok(Outcome {
        kind,
        latency_ms,
        retry_after_ms,
    })
}

fn decode_ops(u: &mut Unstructured) -> Result<Vec<Op>> {
    let mut ops = Vec::new();
    while !u.is_empty() && ops.len() < 2_000 {
        let op = match u.int_in_range(0..=31u8)? {
            0..=11 => Op::Pick {
                t: decode_time(u)?,
                key: if u.ratio(1, 5)? {
                    Some(
                        u.int_in_range(0..=15u64)?
                            .wrapping_mul(0x9E37_79B9_7F4A_7C15),
                    )
                } else {
                    None
                },
                tried: if u.ratio(1, 6)? { u.arbitrary()? } else { 0 },
            },
            12..=19 => Op::Record {
                t: decode_time(u)?,
                which: u.arbitrary()?,
                keep: u.ratio(1, 16)?,
                o: decode_outcome(u)?,
            },
            20 | 21 => Op::Forged {
                t: decode_time(u)?,
                provider: u.int_in_range(0..=7)?,
                kind: *u.choose(&[
                    TicketKind::Request,
                    TicketKind::Probe,
                    TicketKind::HealthCheck,
                ])?,
                generation: u.int_in_range(-2..=2)?,
                seq: u.int_in_range(0..=4)?,
                o: decode_outcome(u)?,
            },
            22..=24 => Op::Observe {
                t: decode_time(u)?,
                provider: u.int_in_range(0..=5)?,
                o: decode_outcome(u)?,
            },
            25 | 26 => Op::PollAction {
                t: decode_time(u)?,
                max: u.int_in_range(1..=8)?,
            },
            27 => Op::HandleTimeout { t: decode_time(u)? },
            28 | 29 => Op::Sleep,
            30 => Op::Drain,
            // Half of the last code: a drain as before, half rate-limit headers.
            _ if u.arbitrary::<bool>()? => Op::Drain,
            _ => Op::Headroom {
                t: decode_time(u)?,
                provider: u.int_in_range(0..=5)?,
                quotas: {
                    let mut raw = [0u8; 16];
                    u.fill_buffer(&mut raw)?;
                    raw
                },
            },
        };
        ops.push(op);
    }
    Ok(ops)
}

/// One step's visible result, compared between the two routers.
#[derive(Debug, PartialEq)]
enum Out {
    None,
    Pick(core::result::Result<Ticket, Unavailable>),
    Recorded(Recorded),
    Actions(Vec<Ticket>),
    Deadline(Option<u64>),
}

struct Driver {
    r: Box<R>,
    t: u64,
    latest: u64,
    tickets: Vec<Ticket>,
    last_event_at: u64,
    /// The engine's time at the last drain: every event drained since is stamped no earlier.
    drained_at: u64,
    /// Which steps get the full checks.
    sample: Sample,
    /// Rate-limit observations so far (every `HEADROOM_CHECK_EVERY`-th gets the full check).
    headroom_ops: u32,
    /// The second router of the lockstep pair: its outputs, deadlines and event counts are
    /// compared with the first's after every step and its views on the sampled steps, so the
    /// promises are checked on the first only (the same verdicts on the same state).
    witness: bool,
}

impl Driver {
    fn time(&mut self, t: Time) -> u64 {
        self.t = match t {
            Time::Fwd(d) => self.t.saturating_add(u64::from(d)),
            Time::Same => self.t,
            Time::Back(d) => self.t.saturating_sub(u64::from(d)),
            Time::Jump(d) => self.t.saturating_add(u64::from(d) * 1_000),
            Time::At(x) => x,
            Time::Max => u64::MAX,
        };
        self.latest = self.latest.max(self.t);
        self.t
    }

    /// Takes one step and checks it: the full checks too when `last` (the input's last step) or
    /// when the sample picks the step. Returns the output, the events drained and whether the
    /// full checks ran.
    fn step(
        &mut self,
        op: &Op,
        ids: &[ProviderId],
        p: &Policy,
        n: usize,
        last: bool,
    ) -> (Out, Vec<Event>, bool) {
        let out = match *op {
            Op::Pick { t, key, tried } => {
                let t = self.time(t);
                let req = PickRequest {
                    key,
                    tried: ProviderSet::from_bits(tried),
                };
                let res = self.r.pick_with(t, &req);
                if !self.witness {
                    assert_holds(check::pick(&*self.r, &res, tried, n, p));
                }
                if let Ok(ticket) = res {
                    self.tickets.push(ticket);
                }
                Out::Pick(res)
            }
            Op::Record { t, which, keep, o } => {
                let t = self.time(t);
                if self.tickets.is_empty() {
                    self.r.handle_timeout(t);
                    Out::None
                } else {
                    let k = which % self.tickets.len();
                    let ticket = if keep {
                        self.tickets[k]
                    } else {
                        self.tickets.swap_remove(k)
                    };
                    if self.witness {
                        Out::Recorded(self.r.record(&ticket, o, t))
                    } else {
                        let generation = self.r.generation(ticket.provider).unwrap();
                        let res = self.r.record(&ticket, o, t);
                        assert_holds(check::late_record(ticket.generation, generation, res));
                        Out::Recorded(res)
                    }
                }
            }
            Op::Forged {
                t,
                provider,
                kind,
                generation,
                seq,
                o,
            } => {
                let t = self.time(t);
                let id = ids[provider];
                let current = self.r.generation(id).unwrap_or(0);
                let ticket = Ticket {
                    provider: id,
                    kind,
                    generation: current.wrapping_add_signed(generation as i32),
                    probe_seq: seq,
                    degraded: false,
                    retry_after_ms: None,
                    issued_at_ms: t,
                };
                let res = self.r.record(&ticket, o, t);
                if provider >= n {
                    assert_eq!(res, Recorded::UnknownProvider);
                } else if generation != 0 && self.r.generation(id).unwrap() == current {
                    // (The input's catch-up may move the generation onto the forged one; judge
                    // only when it did not move.)
                    assert_eq!(res, Recorded::Stale, "a forged generation was accepted");
                }
                Out::Recorded(res)
            }
            Op::Observe { t, provider, o } => {
                let t = self.time(t);
                let res = self.r.observe(ids[provider], o, t);
                assert_holds(check::observed(provider, n, res));
                Out::Recorded(res)
            }
            Op::Headroom {
                t,
                provider,
                quotas,
            } => {
                let t = self.time(t);
                let mut raw = quotas.into_iter();
                let h = headers::headroom(&headers::decode(|| raw.next().unwrap_or(0)));
                // The first of an input, then every n-th (both routers of a lockstep pair take
                // the same inputs: the count is the same).
                let full = self.headroom_ops.is_multiple_of(headroom_check_every());
                self.headroom_ops += 1;
                if full {
                    // The input's catch-up first (as the call itself would do), so that what the
                    // call changes is pacing's alone.
                    self.r.handle_timeout(t);
                }
                if self.witness || !full {
                    let res = self.r.observe_headroom(ids[provider], &h, t);
                    if !self.witness {
                        assert_holds(check::observed(provider, n, res));
                    }
                    Out::Recorded(res)
                } else {
                    let before = check::circuits(&*self.r);
                    let was = self
                        .r
                        .view(ids[provider])
                        .map_or((None, None), |v| (v.paced_headroom_ppm, v.paced_until_ms));
                    let res = self.r.observe_headroom(ids[provider], &h, t);
                    assert_holds(check::observed(provider, n, res));
                    assert_holds(check::headroom(&*self.r, provider, &h, &before, was, p));
                    Out::Recorded(res)
                }
            }
            Op::PollAction { t, max } => {
                let t = self.time(t);
                let mut got = Vec::new();
                // Bounded: at u64::MAX the engine asks for a check on every call (reported).
                for _ in 0..max {
                    let Some(Action::HealthCheck(ticket)) = self.r.poll_action(t) else {
                        break;
                    };
                    if !self.witness {
                        assert_holds(check::action(&*self.r, &ticket, p));
                    }
                    self.tickets.push(ticket);
                    got.push(ticket);
                }
                Out::Actions(got)
            }
            Op::HandleTimeout { t } => {
                let t = self.time(t);
                self.r.handle_timeout(t);
                Out::None
            }
            Op::Sleep => {
                let d = self.r.poll_timeout();
                if let Some(d) = d {
                    assert_holds(check::deadline(d, self.r.now()));
                    self.t = d;
                    self.latest = self.latest.max(d);
                    self.r.handle_timeout(d);
                    let now = self.r.now();
                    if now != u64::MAX {
                        // Every timer due is done: what is left due now is a health check.
                        let next = self.r.poll_timeout();
                        let action = self.r.poll_action(now);
                        assert_holds(check::after_sleep(now, next, action.as_ref()));
                        if let Some(Action::HealthCheck(ticket)) = action {
                            if !self.witness {
                                assert_holds(check::action(&*self.r, &ticket, p));
                            }
                            self.tickets.push(ticket);
                        }
                    }
                }
                Out::Deadline(d)
            }
            Op::Drain => Out::None,
        };
        let full = self.sample.full(&*self.r) || last;
        // Drain only on `Drain` and after state changes now and then, so the queue also fills.
        let events: Vec<Event> = if matches!(op, Op::Drain | Op::Sleep) {
            std::iter::from_fn(|| self.r.poll_event()).collect()
        } else {
            Vec::new()
        };
        self.sample.drained(&*self.r);
        self.check(&events, p, n, full);
        if matches!(op, Op::Drain | Op::Sleep) {
            self.drained_at = self.r.now();
        }
        (out, events, full)
    }

    fn check(&mut self, events: &[Event], p: &Policy, n: usize, full: bool) {
        // The clock every step (O(1)); the engine's invariants and every view when sampled.
        assert_eq!(
            self.r.now(),
            self.latest,
            "the engine's time is the latest input"
        );
        if self.witness {
            return;
        }
        if full {
            assert_holds(check::state(&*self.r, self.latest, n, p));
        }
        let since = self.drained_at;
        assert_holds(check::events(
            &*self.r,
            events,
            n,
            p,
            since,
            &mut self.last_event_at,
        ));
    }
}

/// `HEADROOM_CHECK_EVERY`, or 1 with `FAILOVER_FULL_CHECK_EVERY=1`.
fn headroom_check_every() -> u32 {
    static EVERY: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *EVERY.get_or_init(|| {
        if std::env::var("FAILOVER_FULL_CHECK_EVERY").is_ok_and(|v| v == "1") {
            1
        } else {
            HEADROOM_CHECK_EVERY
        }
    })
}

/// Whether this input also runs the lockstep witness (a second router fed the same inputs, whose
/// outputs must match): every input with `FAILOVER_WITNESS_EVERY=1`, else one in
/// `WITNESS_EVERY`, chosen by a hash of the input's bytes (so a finding reproduces from its file;
/// minimize a determinism finding with `FAILOVER_WITNESS_EVERY=1`, since shrinking changes the
/// hash).
fn witnessed(data: &[u8]) -> bool {
    static EVERY: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let every = *EVERY.get_or_init(|| {
        std::env::var("FAILOVER_WITNESS_EVERY")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(WITNESS_EVERY)
            .max(1)
    });
    // FNV-1a.
    let h = data.iter().fold(0xCBF2_9CE4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3)
    });
    (h >> 32).is_multiple_of(every)
}

fn run(p: &Policy, n: usize, ops: &[Op], witness: bool) {
    let ids = ids();
    let names: Vec<String> = (0..n).map(|i| format!("p{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let new = |witness| Driver {
        r: Box::new(R::new(p, &names).expect("a valid policy")),
        t: 0,
        latest: 0,
        tickets: Vec::new(),
        last_event_at: 0,
        drained_at: 0,
        sample: Sample::from_env(FULL_CHECK_EVERY),
        headroom_ops: 0,
        witness,
    };
    let mut a = new(false);
    if !witness {
        for (k, op) in ops.iter().enumerate() {
            a.step(op, &ids, p, n, k + 1 == ops.len());
        }
        return;
    }
    let mut b = new(true);
    for (k, op) in ops.iter().enumerate() {
        let last = k + 1 == ops.len();
        let x = a.step(op, &ids, p, n, last);
        let y = b.step(op, &ids, p, n, last);
        assert_eq!(x, y, "identical inputs gave different outputs at {op:?}");
        if x.2 {
            assert!(
                a.r.views().eq(b.r.views()),
                "identical inputs gave different states"
            );
        }
        assert_eq!(a.r.poll_timeout(), b.r.poll_timeout());
        assert_eq!(a.r.dropped_events(), b.r.dropped_events());
        assert_eq!(a.r.pending_events(), b.r.pending_events());
    }
}
