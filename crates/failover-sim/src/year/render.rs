//! The year's report as text: the incident model's figures, each provider alone, the strategies
//! side by side, and the worst incident.

#[allow(clippy::wildcard_imports)]
use super::*;

/// `day 123 (Tue) 14:05`.
fn when(t: u64) -> String {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let d = t / DAY_MS;
    let s = (t % DAY_MS) / 1000;
    format!(
        "day {} ({}) {:02}:{:02}",
        d + 1,
        DAYS[(d % 7) as usize],
        s / 3600,
        s / 60 % 60
    )
}

fn pct3(x: f64) -> String {
    format!("{:.4} %", x * 100.0)
}

fn count(x: f64) -> String {
    thousands(x.round() as u64)
}

/// The report as text (deterministic: no timing in it).
#[must_use]
pub fn render(r: &YearReport) -> String {
    let p = &r.plan;
    let s = &p.settings;
    let mut o = String::new();
    let n = p.model.providers.len();
    let _ = writeln!(
        o,
        "failover-sim year · seed {} · {} providers · {} days",
        s.seed, n, s.days
    );
    let _ = writeln!(
        o,
        "  Generated incidents (one every {MEAN_DAYS_BETWEEN} days per provider on average, weekends ×{WEEKEND_WEIGHT},"
    );
    let _ = writeln!(
        o,
        "  {:.0} % with a follow-up on the same provider, log-normal durations with a median of {DURATION_MEDIAN_MIN:.0} min),",
        FOLLOW_UP_P * 100.0
    );
    let _ = writeln!(
        o,
        "  calibrated on Chu et al., ICPE 2025 (arXiv 2501.12469); see `failover-sim year --help`."
    );
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "  traffic    {} requests: Poisson arrivals at {}/s on average, ×{:.1} at 03:00 to ×{:.1} at 15:00 UTC",
        count(p.expected_requests),
        s.rate_per_s,
        1.0 - CYCLE,
        1.0 + CYCLE
    );
    let _ = writeln!(
        o,
        "  retries    up to {} attempts per request, each on another provider",
        s.attempts
    );
    let mut first = true;
    for line in policy_summary(&s.policy) {
        let head = if first {
            format!("policy     {}: ", s.policy_label)
        } else {
            "           ".to_string()
        };
        first = false;
        let _ = writeln!(o, "  {head}{line}");
    }
    let _ = writeln!(o);
    let w = 16;
    let _ = write!(o, "Incidents{:22}", "");
    for pm in &p.model.providers {
        let _ = write!(o, "{:>w$}", pm.name);
    }
    let _ = writeln!(o);
    let row = |o: &mut String, label: &str, f: &dyn Fn(&Alone) -> String| {
        let _ = write!(o, "  {label:<29}");
        for a in &p.alone {
            let _ = write!(o, "{:>w$}", f(a));
        }
        let _ = writeln!(o);
    };
    row(&mut o, "incidents", &|a| a.count().to_string());
    for (k, kind) in Kind::ALL.iter().enumerate() {
        row(&mut o, &format!("  {}", kind.label()), &|a| {
            a.by_kind[k].to_string()
        });
    }
    row(&mut o, "duration: median", &|a| dur(a.median_ms()));
    row(&mut o, "duration: mean", &|a| dur(a.mean_ms()));
    row(&mut o, "duration: longest", &|a| {
        dur(a.durations.last().copied().unwrap_or(0))
    });
    row(&mut o, "alone: availability", &|a| pct3(a.availability));
    row(&mut o, "alone: downtime (hours)", &|a| {
        format!("{:.1}", a.down_hours)
    });
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "Same year, same traffic, three strategies      no failover  naive failover          policy"
    );
    let srow = |o: &mut String, label: &str, f: &dyn Fn(&YearStats) -> String| {
        let _ = write!(o, "  {label:<40}");
        for (_, st) in &r.strategies {
            let _ = write!(o, "{:>w$}", f(st));
        }
        let _ = writeln!(o);
    };
    srow(&mut o, "availability", &|st| pct3(st.availability()));
    srow(&mut o, "downtime (hours with ≥ 5 % failed)", &|st| {
        format!("{:.1}", st.down_minutes as f64 / 60.0)
    });
    srow(&mut o, "requests failed", &|st| count(st.failed));
    srow(&mut o, "wasted calls", &|st| count(st.wasted));
    srow(&mut o, "time on fallbacks (hours)", &|st| {
        format!("{:.1}", st.fallback_minutes / 60.0)
    });
    let _ = writeln!(o);
    let _ = writeln!(o, "Worst incident per strategy (most failed requests)");
    for (label, st) in &r.strategies {
        match st.worst {
            None => {
                let _ = writeln!(
                    o,
                    "  {label:<15} none: no request failed around any incident"
                );
            }
            Some((i, failed, down)) => {
                let (a, b) = p.windows[i];
                let what = p.incidents_in(a, b);
                let _ = writeln!(
                    o,
                    "  {label:<15} {}: {} failed, {} min down; {}",
                    when(a + BEFORE_MS.min(b - a)),
                    thousands(failed),
                    down,
                    what.join(", ")
                );
            }
        }
    }
    let _ = writeln!(o);
    let sim_ms: u64 = p.windows.iter().map(|(a, b)| b - a).sum();
    let _ = writeln!(
        o,
        "Simulated request by request: {} windows around the primary's incidents, {} hours, {} requests;",
        p.windows.len(),
        sim_ms / HOUR_MS,
        thousands(r.simulated_requests)
    );
    let _ = writeln!(
        o,
        "the rest of the year in aggregate (expected requests, background failure rates, retries on the"
    );
    let _ = writeln!(
        o,
        "next provider at its failure rate). Wasted calls: calls that served no request (failures, health checks)."
    );
    let _ = writeln!(o, "The policy made {} transitions.", r.events.len());
    for (label, st) in &r.strategies {
        if st.unsettled > 0 {
            let _ = writeln!(
                o,
                "{label}: {} of {} windows ended with requests still sent first to a fallback.",
                st.unsettled,
                p.windows.len()
            );
        }
    }
    o
}
