//! failover-core against two Rust circuit breakers on one pre-generated workload: a ring of
//! 4 096 calls, ~95 % successes (the rest failures, never more than two in a row, so no breaker
//! opens and the steady state is measured), at increasing timestamps (10 ms apart on average),
//! one decision per request.
//!
//! - `failover-core`: `Router::pick` + `Router::record` (2 providers, the default policy: a 60 s
//!   window of 1 s buckets, every trigger on), on a fake clock (the time is an argument);
//! - `recloser`: `Recloser::call` (count-based ring buffer of 100 calls, no time window);
//! - `failsafe consecutive`: `StateMachine::call` with `consecutive_failures(5, ..)`;
//! - `failsafe default`: `Config::new().build()` (success rate over a 30 s time window or 5
//!   consecutive failures; it reads the clock on every call).
//!
//! `cargo bench -p failover-peers -- --warm-up-time 1 --measurement-time 2` prints the medians
//! and the ratios at the end.

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use failover_core::{Outcome, Policy, Router};
use failover_testkit::Rng;
use failover_testkit::bench::{FakeClock, criterion_dir, fresh_median};
use failsafe::{CircuitBreaker, Config, backoff, failure_policy};
use recloser::Recloser;

const RING: usize = 4_096;
const MASK: usize = RING - 1;

const CORE: &str = "failover-core pick+record";
const RECLOSER: &str = "recloser call";
const FAILSAFE_CONSECUTIVE: &str = "failsafe consecutive call";
const FAILSAFE_DEFAULT: &str = "failsafe default call";

struct Workload {
    ok: Vec<bool>,
    outcomes: Vec<Outcome>,
    /// Time increments, microseconds (10 ms on average).
    dt_us: Vec<u64>,
}

fn workload() -> Workload {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut ok, mut outcomes, mut dt_us) = (Vec::new(), Vec::new(), Vec::new());
    let mut run = 0;
    for _ in 0..RING {
        let mut success = rng.next() % 100 < 95;
        if !success {
            run += 1;
            if run > 2 {
                success = true;
            }
        }
        if success {
            run = 0;
        }
        let latency = 300 + (rng.next() % 1_200) as u32;
        ok.push(success);
        outcomes.push(if success {
            Outcome::success(latency)
        } else {
            Outcome::server_error(latency)
        });
        dt_us.push(rng.next() % 20_001);
    }
    Workload {
        ok,
        outcomes,
        dt_us,
    }
}

fn call(ok: bool) -> Result<(), ()> {
    if ok { Ok(()) } else { Err(()) }
}

fn benches(c: &mut Criterion, w: &Workload) {
    let mut g = c.benchmark_group("peers");

    {
        let mut r =
            Box::new(Router::<4, 60>::new(&Policy::default(), &["primary", "fallback"]).unwrap());
        let mut clock = FakeClock::new(&w.dt_us, 1_764_000_000_000_000);
        g.bench_function(CORE, |b| {
            b.iter(|| {
                let (k, now) = clock.tick();
                let ticket = r.pick(now).unwrap();
                black_box(r.record(&ticket, w.outcomes[k], now))
            })
        });
        assert!(
            r.poll_event().is_none(),
            "the workload tripped failover-core"
        );
    }

    {
        let r = Recloser::custom()
            .error_rate(0.5)
            .closed_len(100)
            .half_open_len(10)
            .open_wait(Duration::from_secs(30))
            .build();
        let mut k = 0usize;
        g.bench_function(RECLOSER, |b| {
            b.iter(|| {
                k = k.wrapping_add(1);
                black_box(r.call(|| call(w.ok[k & MASK])))
            })
        });
    }

    {
        let cb = Config::new()
            .failure_policy(failure_policy::consecutive_failures(
                5,
                backoff::constant(Duration::from_secs(30)),
            ))
            .build();
        let mut k = 0usize;
        g.bench_function(FAILSAFE_CONSECUTIVE, |b| {
            b.iter(|| {
                k = k.wrapping_add(1);
                black_box(cb.call(|| call(w.ok[k & MASK])))
            })
        });
        assert!(cb.is_call_permitted(), "the workload tripped failsafe");
    }

    {
        let cb = Config::new().build();
        let mut k = 0usize;
        g.bench_function(FAILSAFE_DEFAULT, |b| {
            b.iter(|| {
                k = k.wrapping_add(1);
                black_box(cb.call(|| call(w.ok[k & MASK])))
            })
        });
        assert!(cb.is_call_permitted(), "the workload tripped failsafe");
    }

    g.finish();
}

/// The median criterion wrote for `name` during this run.
fn read_median(name: &str, since: std::time::SystemTime) -> Option<f64> {
    // Criterion's directory names replace these characters (`make_filename_safe`).
    let dir_name = name.replace(['?', '"', '/', '\\', '*', '<', '>', ':', '|', '^'], "_");
    let file = criterion_dir()?
        .join("peers")
        .join(dir_name)
        .join("new/estimates.json");
    fresh_median(&file, since)
}

fn main() {
    let start = std::time::SystemTime::now();
    let w = workload();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    benches(&mut c, &w);
    c.final_summary();
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let figures: Vec<(&str, Option<f64>)> =
        [CORE, RECLOSER, FAILSAFE_CONSECUTIVE, FAILSAFE_DEFAULT]
            .into_iter()
            .map(|n| (n, read_median(n, start)))
            .collect();
    println!("\nPer request, median of criterion's samples (same workload, ~95 % success):");
    println!("| | median (ns) |\n|---|---:|");
    for (name, ns) in &figures {
        match ns {
            Some(ns) => println!("| {name} | {ns:.2} |"),
            None => println!("| {name} | (not measured) |"),
        }
    }
    let get = |n: &str| figures.iter().find(|f| f.0 == n).and_then(|f| f.1);
    if let Some(core) = get(CORE) {
        println!("\n| ratio | value | bar |\n|---|---:|---|");
        if let Some(x) = get(RECLOSER) {
            println!(
                "| failover-core / recloser | {:.2} | ≤ 1.0 (aim 0.7) |",
                core / x
            );
        }
        if let Some(x) = get(FAILSAFE_CONSECUTIVE) {
            println!(
                "| failover-core / failsafe consecutive | {:.2} | ≤ 1.0 (aim 0.7) |",
                core / x
            );
        }
        if let Some(x) = get(FAILSAFE_DEFAULT) {
            println!(
                "| failsafe default / failover-core | {:.2} | ≥ 5 |",
                x / core
            );
        }
    }
}
