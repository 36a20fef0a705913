//! The domain brief's outage story, played through the engine's run loop, printing every
//! transition: a primary's 5xx outage opens it at once, probes confirm its recovery, traffic returns
//! 5 % → 25 % → 50 % → 100 % over 20 minutes, a rate-limit storm on the secondary throttles it
//! (no trip, no ramp), and a relapse during the ramp rolls the primary back with a longer backoff.
//!
//! `cargo run --release -p failover-core --example outage`

use failover_core::{Event, EventKind, Outcome, Policy, Router, Ticket, Trigger, classify_status};

const MINUTE: u64 = 60_000;

/// What each provider answers at time `t` (ms since the start): the simulated world.
fn world(provider: usize, t: u64, n: u64) -> (u16, u32, Option<u64>) {
    match provider {
        // Primary: 5xx from minute 5 to minute 25; relapses at minute 31–33 (during its ramp).
        0 if (5 * MINUTE..25 * MINUTE).contains(&t) => (500, 40, None),
        0 if (31 * MINUTE..33 * MINUTE).contains(&t) => {
            // About one call in three fails, independently of the traffic split.
            let h = (t / 100).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60;
            (if h.is_multiple_of(3) { 503 } else { 200 }, 900, None)
        }
        // Secondary: a burst of 429s with Retry-After: 20 at minute 10.
        1 if (10 * MINUTE..10 * MINUTE + 2_000).contains(&t) => (429, 5, Some(20_000)),
        _ => (200, 800 + (n % 7) as u32 * 50, None),
    }
}

fn show(e: &Event, name: &str) {
    let t = e.at_ms as f64 / MINUTE as f64;
    let what = match e.kind {
        EventKind::Opened {
            reason,
            from,
            until_ms,
            strikes,
        } => format!(
            "OPENED from {} by {} (observed {}, threshold {}, over {} calls); open for {:.1} s, strike {}",
            from.name(),
            reason.trigger.name(),
            figure(reason.trigger, reason.observed),
            figure(reason.trigger, reason.threshold),
            reason.volume,
            (until_ms - e.at_ms) as f64 / 1000.0,
            strikes
        ),
        EventKind::RampStage { stage, share_ppm } => {
            format!(
                "ramp stage {stage}: {:.0} % of its traffic",
                f64::from(share_ppm) / 1e4
            )
        }
        EventKind::Throttled {
            until_ms,
            retry_after,
        } => format!(
            "throttled for {:.1} s ({})",
            (until_ms - e.at_ms) as f64 / 1000.0,
            if retry_after {
                "Retry-After"
            } else {
                "backoff"
            }
        ),
        other => other.name().replace('_', " "),
    };
    println!("{t:7.2} min  {name:<10} {what}");
}

/// A trigger's figure in its unit: rates arrive in parts per million, latencies in ms, the rest
/// are counts.
fn figure(trigger: Trigger, x: u64) -> String {
    match trigger {
        Trigger::ErrorRate
        | Trigger::SustainedTimeouts
        | Trigger::SlowCalls
        | Trigger::RampRollback => format!("{:.1} %", x as f64 / 1e4),
        Trigger::LatencyDegradation => format!("{x} ms"),
        _ => x.to_string(),
    }
}

/// Each provider's share of the traffic that reaches it (what it admits; the rest spills to the
/// next provider), not a split of all traffic.
fn shares(r: &Router<4, 120>) -> String {
    r.views()
        .map(|v| format!("{}={:.0}%", v.name, f64::from(v.share_ppm) / 1e4))
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() -> Result<(), failover_core::ConfigError> {
    let policy = Policy {
        seed: 7,
        ..Policy::default()
    };
    let mut router: Router<4, 120> = Router::new(&policy, &["primary", "secondary", "tertiary"])?;

    let (mut served, mut failed, mut attempts) = (0u64, 0u64, 0u64);
    let mut per_provider = [0u64; 3];
    let end = 70 * MINUTE;
    let mut n = 0u64;
    let mut t = 0u64;
    // One request every 100 ms (10 per second) for 70 minutes, each with up to 3 attempts.
    while t < end {
        let mut tried = failover_core::ProviderSet::new();
        let mut ok = false;
        for _ in 0..3 {
            let req = failover_core::PickRequest { key: None, tried };
            let Ok(ticket): Result<Ticket, _> = router.pick_with(t, &req) else {
                break;
            };
            attempts += 1;
            n += 1;
            let (status, latency, retry_after) = world(ticket.provider.index(), t, n);
            let outcome = Outcome {
                kind: classify_status(status),
                latency_ms: latency,
                retry_after_ms: retry_after,
            };
            router.record(&ticket, outcome, t);
            tried.insert(ticket.provider);
            if status < 400 {
                served += 1;
                per_provider[ticket.provider.index()] += 1;
                ok = true;
                break;
            }
        }
        failed += u64::from(!ok);
        // Drain events after every input.
        while let Some(e) = router.poll_event() {
            show(&e, router.name(e.provider));
        }
        // Run timers that fell due before the next request.
        let next = t + 100;
        while let Some(d) = router.poll_timeout() {
            if d >= next {
                break;
            }
            router.handle_timeout(d);
            while let Some(e) = router.poll_event() {
                show(&e, router.name(e.provider));
            }
        }
        if t.is_multiple_of(5 * MINUTE) {
            println!(
                "{:7.2} min  admits     {}",
                t as f64 / MINUTE as f64,
                shares(&router)
            );
        }
        t = next;
    }
    let total = served + failed;
    println!();
    println!(
        "{total} requests, {served} served ({:.3} %), {failed} failed, {attempts} attempts",
        100.0 * served as f64 / total as f64
    );
    println!(
        "served by primary {}, secondary {}, tertiary {}",
        per_provider[0], per_provider[1], per_provider[2]
    );
    Ok(())
}
