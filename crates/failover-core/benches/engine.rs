//! The engine's hot paths, on a fake clock: every timestamp is pre-generated (a ring of small
//! increments added to a running time), so no clock is read while measuring.
//!
//! The workload is a pre-generated ring of 4 096 outcomes: 95 % successes (300–1 500 ms), 3 %
//! server errors, 1 % timeouts, 1 % client errors, never more than two hard failures in a row for
//! a provider, so no circuit opens and the steady state is measured. Windows use one-second
//! buckets; each provider sees about 100 outcomes a second (a bucket boundary every ~100
//! outcomes, so the cold path of rolling the window is in the figure).
//!
//! - `record/{P}p_{B}b`: `Router::record` alone, outcomes spread round-robin over all P providers;
//! - `pick/{P}p_{B}b`: `Router::pick` alone (all healthy: the primary is chosen);
//! - `pick_record/{P}p_{B}b`: a pick and the record of its outcome, one request;
//! - `pick/ramping_25pct`: a pick while the primary ramps at 25 % (the credit split);
//! - `scaling_window/...`: cost per event for 12, 600 and 3 600 buckets (must be flat);
//! - `scaling_providers/...`: cost per event for 2, 16 and 64 providers;
//! - `request/one_attempt_{P}p_{B}b`: a whole [`failover_core::Request`] with one successful
//!   attempt (new, poll, report, poll), next to `request/pick_record_success_{P}p_{B}b`, the same
//!   successes (latency 0, opaque to the compiler as a measured one is) through a bare pick and
//!   record, measured in the same run (the bar is a ratio).
//!
//! - `headroom/{openai_6,anthropic_12}`: reading one answer's full set of rate-limit headers
//!   (OpenAI: 6; Anthropic: 12) into a [`failover_core::Headroom`], next to `headroom/record_2p_12b`
//!   in the same run (the bar is at most 10x `record`), and `headroom/observe_2p_60b`:
//!   `Router::observe_headroom` of such a set (pacing on and off in turn).
//!
//! `cargo bench -p failover-core --bench engine -- --warm-up-time 1 --measurement-time 2` prints
//! a summary table of the medians at the end.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkGroup, Criterion, measurement::WallTime};
use failover_core::{
    CircuitState, Finish, Headroom, Outcome, OutcomeKind, Policy, Request, RequestOptions, Router,
    Step, Ticket, TicketKind,
};
use failover_testkit::bench::{FakeClock, criterion_dir, fresh_median};
use failover_testkit::{NAMES, Rng};

/// Length of the pre-generated ring (a power of two, and a multiple of every provider count).
const RING: usize = 4_096;
const MASK: usize = RING - 1;

/// The pre-generated workload for `providers` providers.
struct Workload {
    outcomes: Vec<Outcome>,
    /// Time increments in microseconds; the mean gives each provider ~100 outcomes a second
    /// when the outcomes are spread over all providers (`spread`), or 100 requests a second in
    /// all otherwise.
    dt_us: Vec<u64>,
}

fn workload(providers: usize, spread: bool) -> Workload {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut outcomes = Vec::with_capacity(RING);
    // Who receives outcome k: provider k % P when spread, the primary otherwise.
    let lanes = if spread { providers } else { 1 };
    let mut run = vec![0u32; lanes];
    for k in 0..RING {
        let r = rng.next() % 100;
        let latency = 300 + (rng.next() % 1_200) as u32;
        let mut kind = match r {
            0..=94 => OutcomeKind::Success,
            95..=97 => OutcomeKind::ServerError,
            98 => OutcomeKind::Timeout,
            _ => OutcomeKind::ClientError,
        };
        // Never three hard failures in a row for one provider (five trip the circuit).
        let p = k % lanes;
        if kind.is_hard_failure() {
            run[p] += 1;
            if run[p] > 2 {
                kind = OutcomeKind::Success;
                run[p] = 0;
            }
        } else if kind == OutcomeKind::Success {
            run[p] = 0;
        }
        outcomes.push(Outcome::new(kind, latency));
    }
    // Mean increment: 10 ms per provider-outcome, i.e. 10 / P ms when spread.
    let mean_us = if spread {
        10_000 / providers as u64
    } else {
        10_000
    };
    let dt_us = (0..RING).map(|_| rng.next() % (2 * mean_us + 1)).collect();
    Workload { outcomes, dt_us }
}

fn policy(buckets: usize) -> Policy {
    Policy {
        bucket_ms: 1_000,
        window_ms: 1_000 * buckets as u64,
        ..Policy::default()
    }
}

/// A router of `P` providers with a window of exactly `B` buckets, on the heap, warmed up with a
/// full window of the workload so that the window is full and the latency baseline established.
fn router<const P: usize, const B: usize>(w: &Workload) -> (Box<Router<P, B>>, u64) {
    let mut r = Box::new(Router::<P, B>::new(&policy(B), &NAMES[..P]).unwrap());
    let tickets = tickets(&r);
    let mut t_us = 1_764_000_000_000_000u64;
    let end = t_us + (B as u64 + 5) * 1_000_000;
    let mut k = 0;
    while t_us < end {
        t_us += w.dt_us[k & MASK];
        r.record(&tickets[k % P], w.outcomes[k & MASK], t_us / 1_000);
        k += 1;
    }
    assert_healthy(&mut r);
    (r, t_us)
}

fn tickets<const P: usize, const B: usize>(r: &Router<P, B>) -> Vec<Ticket> {
    (0..P)
        .map(|i| Ticket {
            provider: r.provider_at(i).unwrap(),
            kind: TicketKind::Request,
            generation: 0,
            probe_seq: 0,
            degraded: false,
            retry_after_ms: None,
            issued_at_ms: 0,
        })
        .collect()
}

/// The workload must not trip anything: the steady state is what is measured.
fn assert_healthy<const P: usize, const B: usize>(r: &mut Router<P, B>) {
    if let Some(e) = r.poll_event() {
        panic!("the bench workload changed a circuit: {e:?}");
    }
    assert!(
        r.views()
            .all(|v| v.state == CircuitState::Healthy && v.generation == 0)
    );
}

/// `record` alone, spread round-robin over all providers.
fn record<const P: usize, const B: usize>(g: &mut BenchmarkGroup<WallTime>, id: &str) {
    let w = workload(P, true);
    let (mut r, t_us) = router::<P, B>(&w);
    let tickets = tickets(&r);
    let mut clock = FakeClock::new(&w.dt_us, t_us);
    g.bench_function(id, |b| {
        b.iter(|| {
            let (k, now) = clock.tick();
            black_box(r.record(&tickets[k % P], w.outcomes[k], now))
        })
    });
    assert_healthy(&mut r);
}

/// `pick` alone.
fn pick<const P: usize, const B: usize>(g: &mut BenchmarkGroup<WallTime>, id: &str) {
    let w = workload(P, false);
    let (mut r, t_us) = router::<P, B>(&w);
    let mut clock = FakeClock::new(&w.dt_us, t_us);
    g.bench_function(id, |b| b.iter(|| black_box(r.pick(clock.tick().1))));
    assert_healthy(&mut r);
}

/// One request: a pick and the record of its outcome.
fn pick_record<const P: usize, const B: usize>(g: &mut BenchmarkGroup<WallTime>, id: &str) {
    let w = workload(P, false);
    let (mut r, t_us) = router::<P, B>(&w);
    let mut clock = FakeClock::new(&w.dt_us, t_us);
    g.bench_function(id, |b| {
        b.iter(|| {
            let (k, now) = clock.tick();
            match r.pick(now) {
                Ok(ticket) => black_box(r.record(&ticket, w.outcomes[k], now)),
                Err(e) => panic!("{e}"),
            }
        })
    });
    assert_healthy(&mut r);
}

/// Successes only, through a bare pick and record: the baseline of the request benchmark. The
/// latency is the request's (0 ms: the attempt answers at the time it starts), hidden from the
/// compiler as a measured latency is: a literal would let it fold the latency histogram's bin
/// into a constant, a saving no caller that measures its calls gets (and the request measures
/// its own).
fn pick_record_success<const P: usize, const B: usize>(g: &mut BenchmarkGroup<WallTime>, id: &str) {
    let w = workload(P, false);
    let (mut r, t_us) = router::<P, B>(&w);
    let mut clock = FakeClock::new(&w.dt_us, t_us);
    g.bench_function(id, |b| {
        b.iter(|| {
            let (_, now) = clock.tick();
            match r.pick(now) {
                Ok(ticket) => black_box(r.record(&ticket, Outcome::success(black_box(0)), now)),
                Err(e) => panic!("{e}"),
            }
        })
    });
    assert_healthy(&mut r);
}

/// A whole request with one successful attempt: `Request::new`, `poll` (the attempt),
/// `handle_outcome` (the success) and `poll` (done).
fn request_one_attempt<const P: usize, const B: usize>(g: &mut BenchmarkGroup<WallTime>, id: &str) {
    let w = workload(P, false);
    let (mut r, t_us) = router::<P, B>(&w);
    let mut clock = FakeClock::new(&w.dt_us, t_us);
    let options = RequestOptions::default();
    g.bench_function(id, |b| {
        b.iter(|| {
            let (_, now) = clock.tick();
            let mut req = Request::new(&r, black_box(&options), now);
            let Step::Attempt(_) = req.poll(&mut r, now) else {
                panic!("no attempt")
            };
            let _ = req.handle_outcome(&mut r, Outcome::success(0), now);
            match req.poll(&mut r, now) {
                // What a driver reads: the finish and who answered.
                Step::Done(Finish::Success { provider }) => black_box(provider),
                other => panic!("{other:?}"),
            }
        })
    });
    assert_healthy(&mut r);
}

/// A pick while the primary ramps at 25 %: three requests in four spill to the secondary.
fn pick_ramping(g: &mut BenchmarkGroup<WallTime>) {
    let p = Policy {
        bucket_ms: 1_000,
        window_ms: 12_000,
        open_jitter: 0.0,
        ..Policy::default()
    };
    let mut r = Box::new(Router::<2, 12>::new(&p, &["primary", "secondary"]).unwrap());
    let primary = r.provider_at(0).unwrap();
    for k in 0..5 {
        r.observe(primary, Outcome::server_error(1), k);
    }
    let until = r.view(primary).unwrap().open_until_ms.unwrap();
    for k in 0..3 {
        let t = r.pick(until + k).unwrap();
        r.record(&t, Outcome::success(5), until + k);
    }
    let mut t = until + 10;
    for _ in 0..10 {
        r.observe(primary, Outcome::success(5), t);
    }
    t += 400_000;
    r.handle_timeout(t);
    assert_eq!(r.view(primary).unwrap().share_ppm, 250_000);
    while r.poll_event().is_some() {}
    // The stage lasts 400 s; the bench stays within it at 1 µs per pick.
    let mut t_us = t * 1_000;
    g.bench_function("ramping_25pct_2p_12b", |b| {
        b.iter(|| {
            t_us += 1;
            black_box(r.pick(t_us / 1_000))
        })
    });
    assert_eq!(
        r.view(primary).unwrap().share_ppm,
        250_000,
        "the bench outlived the stage"
    );
}

/// One answer's rate-limit headers as OpenAI sends them.
const OPENAI: [(&str, &str); 6] = [
    ("x-ratelimit-limit-requests", "10000"),
    ("x-ratelimit-limit-tokens", "2000000"),
    ("x-ratelimit-remaining-requests", "9999"),
    ("x-ratelimit-remaining-tokens", "1999863"),
    ("x-ratelimit-reset-requests", "6ms"),
    ("x-ratelimit-reset-tokens", "4ms"),
];

/// One answer's rate-limit headers as Anthropic sends them.
const ANTHROPIC: [(&str, &str); 12] = [
    ("anthropic-ratelimit-requests-limit", "4000"),
    ("anthropic-ratelimit-requests-remaining", "3999"),
    ("anthropic-ratelimit-requests-reset", "2025-06-01T12:00:01Z"),
    ("anthropic-ratelimit-tokens-limit", "480000"),
    ("anthropic-ratelimit-tokens-remaining", "480000"),
    ("anthropic-ratelimit-tokens-reset", "2025-06-01T12:00:00Z"),
    ("anthropic-ratelimit-input-tokens-limit", "400000"),
    ("anthropic-ratelimit-input-tokens-remaining", "400000"),
    (
        "anthropic-ratelimit-input-tokens-reset",
        "2025-06-01T12:00:00Z",
    ),
    ("anthropic-ratelimit-output-tokens-limit", "80000"),
    ("anthropic-ratelimit-output-tokens-remaining", "80000"),
    (
        "anthropic-ratelimit-output-tokens-reset",
        "2025-06-01T12:00:00.250Z",
    ),
];

fn parse_set(g: &mut BenchmarkGroup<'_, WallTime>, id: &str, set: &'static [(&str, &str)]) {
    let now = Some(1_748_779_200_000);
    g.bench_function(id, |b| {
        b.iter(|| {
            let mut h = Headroom::default();
            for &(name, value) in black_box(set) {
                h.header(name, value, now);
            }
            black_box(h)
        });
    });
}

fn observe_headroom(g: &mut BenchmarkGroup<'_, WallTime>) {
    let mut r: Router<2, 60> = Router::new(&Policy::default(), &NAMES[..2]).unwrap();
    let id = r.provider_at(0).unwrap();
    let (mut low, mut full) = (Headroom::default(), Headroom::default());
    for (h, left) in [(&mut low, "500"), (&mut full, "9000")] {
        h.header("x-ratelimit-limit-requests", "10000", None);
        h.header("x-ratelimit-remaining-requests", left, None);
        h.header("x-ratelimit-reset-requests", "1s", None);
    }
    let dt_us = [700u64; 8];
    let mut clock = FakeClock::new(&dt_us, 1_000_000);
    let mut flip = false;
    g.bench_function("observe_2p_60b", |b| {
        b.iter(|| {
            flip = !flip;
            let h = if flip { &low } else { &full };
            black_box(r.observe_headroom(id, black_box(h), clock.tick().1));
            while r.poll_event().is_some() {}
        });
    });
}

fn benches(c: &mut Criterion) {
    // Reading the rate-limit headers against `record`, in the same run (the bar is 10x).
    let mut g = c.benchmark_group("headroom");
    record::<2, 12>(&mut g, "record_2p_12b");
    parse_set(&mut g, "openai_6", &OPENAI);
    parse_set(&mut g, "anthropic_12", &ANTHROPIC);
    observe_headroom(&mut g);
    g.finish();

    let mut g = c.benchmark_group("record");
    record::<2, 12>(&mut g, "2p_12b");
    record::<2, 600>(&mut g, "2p_600b");
    record::<4, 12>(&mut g, "4p_12b");
    record::<4, 600>(&mut g, "4p_600b");
    record::<16, 12>(&mut g, "16p_12b");
    record::<16, 600>(&mut g, "16p_600b");
    g.finish();

    let mut g = c.benchmark_group("pick");
    pick::<2, 12>(&mut g, "2p_12b");
    pick::<2, 600>(&mut g, "2p_600b");
    pick::<4, 12>(&mut g, "4p_12b");
    pick::<4, 600>(&mut g, "4p_600b");
    pick::<16, 12>(&mut g, "16p_12b");
    pick::<16, 600>(&mut g, "16p_600b");
    pick_ramping(&mut g);
    g.finish();

    let mut g = c.benchmark_group("pick_record");
    pick_record::<2, 12>(&mut g, "2p_12b");
    pick_record::<2, 600>(&mut g, "2p_600b");
    pick_record::<4, 12>(&mut g, "4p_12b");
    pick_record::<4, 600>(&mut g, "4p_600b");
    pick_record::<16, 12>(&mut g, "16p_12b");
    pick_record::<16, 600>(&mut g, "16p_600b");
    g.finish();

    // A whole request against the bare pick and record it wraps, in the same run.
    let mut g = c.benchmark_group("request");
    pick_record_success::<2, 12>(&mut g, "pick_record_success_2p_12b");
    request_one_attempt::<2, 12>(&mut g, "one_attempt_2p_12b");
    pick_record_success::<4, 600>(&mut g, "pick_record_success_4p_600b");
    request_one_attempt::<4, 600>(&mut g, "one_attempt_4p_600b");
    g.finish();

    // Cost per event as the window grows: must be flat.
    let mut g = c.benchmark_group("scaling_window");
    record::<16, 12>(&mut g, "record_16p_12b");
    record::<16, 600>(&mut g, "record_16p_600b");
    record::<16, 3_600>(&mut g, "record_16p_3600b");
    pick_record::<4, 12>(&mut g, "pick_record_4p_12b");
    pick_record::<4, 600>(&mut g, "pick_record_4p_600b");
    pick_record::<4, 3_600>(&mut g, "pick_record_4p_3600b");
    g.finish();

    // Cost per event as providers grow (each provider keeps its ~100 outcomes a second).
    let mut g = c.benchmark_group("scaling_providers");
    record::<2, 600>(&mut g, "record_2p_600b");
    record::<16, 600>(&mut g, "record_16p_600b");
    record::<64, 600>(&mut g, "record_64p_600b");
    pick_record::<2, 600>(&mut g, "pick_record_2p_600b");
    pick_record::<16, 600>(&mut g, "pick_record_16p_600b");
    pick_record::<64, 600>(&mut g, "pick_record_64p_600b");
    g.finish();
}

/// The medians criterion wrote during this run (since `start`), as `(id, ns)`, read back from
/// its `estimates.json` files.
fn medians(start: std::time::SystemTime) -> Vec<(String, f64)> {
    let Some(dir) = criterion_dir() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for group in [
        "headroom",
        "record",
        "pick",
        "pick_record",
        "request",
        "scaling_window",
        "scaling_providers",
    ] {
        let Ok(entries) = std::fs::read_dir(dir.join(group)) else {
            continue;
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n != "report")
            .collect();
        ids.sort_by_key(|id| sort_key(id));
        for id in ids {
            let file = dir.join(group).join(&id).join("new/estimates.json");
            if let Some(ns) = fresh_median(&file, start) {
                out.push((format!("{group}/{id}"), ns));
            }
        }
    }
    out
}

/// Orders `4p_600b` after `2p_600b` and `16p_12b` after `4p_600b`.
fn sort_key(id: &str) -> (String, Vec<u64>) {
    let numbers = id
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse().ok())
        .collect();
    let letters = id.chars().filter(|c| !c.is_ascii_digit()).collect();
    (letters, numbers)
}

fn main() {
    let start = std::time::SystemTime::now();
    // Up to 64 routers of 64 × 600 or 16 × 3 600 buckets are built on the stack before they are
    // boxed: give the benches a thread with room for that.
    let handle = std::thread::Builder::new()
        .stack_size(512 << 20)
        .spawn(|| {
            let mut c = Criterion::default()
                .warm_up_time(Duration::from_secs(1))
                .measurement_time(Duration::from_secs(2))
                .configure_from_args();
            benches(&mut c);
            c.final_summary();
        })
        .unwrap();
    handle.join().unwrap();
    let test_mode = std::env::args().any(|a| a == "--test" || a == "--list");
    if test_mode {
        return;
    }
    let figures = medians(start);
    if figures.is_empty() {
        return;
    }
    println!("\nfailover-core engine, median ns per operation:");
    println!("| benchmark | median (ns) |\n|---|---:|");
    for (id, ns) in figures {
        println!("| {id} | {ns:.2} |");
    }
}
