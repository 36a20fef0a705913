//! `year --json`: the year's report for machines, and `year --compare`'s differences.

use serde_json::{Value as Json, json};

#[allow(clippy::wildcard_imports)]
use super::*;

fn round(x: f64) -> u64 {
    x.round() as u64
}

/// One strategy's figures, as the text report states them.
fn strategy_json(plan: &Plan, key: &str, st: &YearStats) -> Json {
    let worst = st.worst.map(|(i, failed, down)| {
        let (a, b) = plan.windows[i];
        json!({
            "window_from_ms": a,
            "window_to_ms": b,
            "failed": failed,
            "down_minutes": down,
            "incidents": incidents_in(plan, a, b),
        })
    });
    json!({
        "strategy": key,
        "availability": st.availability(),
        "downtime_hours": st.down_minutes as f64 / 60.0,
        "requests": round(st.requests),
        "failed": round(st.failed),
        "wasted_calls": round(st.wasted),
        "fallback_hours": st.fallback_minutes / 60.0,
        "worst_incident": worst,
        "unsettled_windows": st.unsettled,
    })
}

/// The incidents (of any provider) that overlap `[a, b)`.
fn incidents_in(plan: &Plan, a: u64, b: u64) -> Vec<Json> {
    let mut out = Vec::new();
    for (p, list) in plan.incidents.iter().enumerate() {
        for i in list.iter().filter(|x| x.fault.from < b && x.fault.to > a) {
            out.push(json!({
                "provider": plan.model.providers[p].name,
                "kind": i.kind.label(),
                "from_ms": i.fault.from,
                "to_ms": i.fault.to,
            }));
        }
    }
    out
}

/// Stable keys of the three strategies, in report order.
pub const KEYS: [&str; 3] = ["no_failover", "naive", "policy"];

/// The whole year report as JSON (deterministic, like the text).
#[must_use]
pub fn report_json(r: &YearReport) -> Json {
    let p = &r.plan;
    let s = &p.settings;
    let alone: Vec<Json> = p
        .alone
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let by_kind: serde_json::Map<String, Json> = Kind::ALL
                .iter()
                .enumerate()
                .map(|(k, kind)| (kind.label().to_string(), json!(a.by_kind[k])))
                .collect();
            json!({
                "name": p.model.providers[i].name,
                "incidents": a.count(),
                "by_kind": by_kind,
                "median_duration_ms": a.median_ms(),
                "mean_duration_ms": a.mean_ms(),
                "longest_duration_ms": a.durations.last().copied().unwrap_or(0),
                "availability": a.availability,
                "downtime_hours": a.down_hours,
            })
        })
        .collect();
    let strategies: Vec<Json> = r
        .strategies
        .iter()
        .zip(KEYS)
        .map(|((_, st), key)| strategy_json(p, key, st))
        .collect();
    let sim_ms: u64 = p.windows.iter().map(|(a, b)| b - a).sum();
    json!({
        "seed": s.seed,
        "providers": p.model.providers.iter().map(|m| m.name.clone()).collect::<Vec<_>>(),
        "days": s.days,
        "rate_per_s": s.rate_per_s,
        "attempts": s.attempts,
        "policy": s.policy_label,
        "naive": {"fails": s.naive_fails, "cooldown_ms": s.naive_cooldown_ms},
        "expected_requests": round(p.expected_requests),
        "alone": alone,
        "strategies": strategies,
        "simulated": {
            "windows": p.windows.len(),
            "hours": sim_ms as f64 / HOUR_MS as f64,
            "requests": r.simulated_requests,
        },
        "policy_transitions": r.events.len(),
    })
}

/// The metrics `--compare` sets side by side: label, JSON key, decimals.
const METRICS: [(&str, &str, usize); 6] = [
    ("availability (%)", "availability", 4),
    ("downtime (hours with ≥ 5 % failed)", "downtime_hours", 1),
    ("requests failed", "failed", 0),
    ("wasted calls", "wasted_calls", 0),
    ("time on fallbacks (hours)", "fallback_hours", 1),
    ("worst incident: failed", "worst", 0),
];

fn metric(st: &Json, key: &str) -> f64 {
    match key {
        "availability" => st[key].as_f64().unwrap_or(0.0) * 100.0,
        "worst" => st["worst_incident"]["failed"].as_f64().unwrap_or(0.0),
        _ => st[key].as_f64().unwrap_or(0.0),
    }
}

fn fmt(x: f64, decimals: usize) -> String {
    if decimals == 0 {
        let s = thousands(x.abs().round() as u64);
        if x < -0.5 { format!("-{s}") } else { s }
    } else {
        format!("{x:.decimals$}")
    }
}

fn signed(x: f64, decimals: usize) -> String {
    let s = fmt(x, decimals);
    if s.starts_with('-') || fmt(x.abs(), decimals) == fmt(0.0, decimals) {
        s
    } else {
        format!("+{s}")
    }
}

/// `--compare A B`: the two policies' figures on the same year, and B − A, as text.
#[must_use]
pub fn compare_text(a: &YearReport, b: &YearReport) -> String {
    let (ja, jb) = (report_json(a), report_json(b));
    let (la, lb) = (&a.plan.settings.policy_label, &b.plan.settings.policy_label);
    let mut o = String::new();
    let s = &a.plan.settings;
    let _ = writeln!(
        o,
        "failover-sim year --compare · seed {} · {} providers · {} days · {}/s",
        s.seed,
        a.plan.model.providers.len(),
        s.days,
        s.rate_per_s
    );
    let _ = writeln!(o, "  A = {la}");
    let _ = writeln!(o, "  B = {lb}");
    let _ = writeln!(
        o,
        "  Same incidents, traffic and answers for both; naive failover is the shared baseline."
    );
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "{:<40}{:>16}{:>16}{:>16}{:>14}",
        "", "naive failover", "policy A", "policy B", "B − A"
    );
    let w = 40;
    for (label, key, d) in METRICS {
        let naive = metric(&ja["strategies"][1], key);
        let va = metric(&ja["strategies"][2], key);
        let vb = metric(&jb["strategies"][2], key);
        let _ = writeln!(
            o,
            "  {label:<w2$}{:>16}{:>16}{:>16}{:>14}",
            fmt(naive, d),
            fmt(va, d),
            fmt(vb, d),
            signed(vb - va, d),
            w2 = w - 2
        );
    }
    let _ = writeln!(
        o,
        "  {:<38}{:>16}{:>16}{:>16}{:>14}",
        "transitions",
        "",
        thousands(a.events.len() as u64),
        thousands(b.events.len() as u64),
        signed(b.events.len() as f64 - a.events.len() as f64, 0)
    );
    o
}

/// `--compare A B --json`: both reports and the policy's differences (B − A).
#[must_use]
pub fn compare_json(a: &YearReport, b: &YearReport) -> Json {
    let (ja, jb) = (report_json(a), report_json(b));
    let diff: serde_json::Map<String, Json> = METRICS
        .iter()
        .map(|(_, key, _)| {
            let name = match *key {
                "availability" => "availability_percent_points",
                "worst" => "worst_incident_failed",
                k => k,
            };
            (
                name.to_string(),
                json!(metric(&jb["strategies"][2], key) - metric(&ja["strategies"][2], key)),
            )
        })
        .collect();
    json!({"a": ja, "b": jb, "b_minus_a": diff})
}
