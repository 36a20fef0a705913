//! `--json`: the whole report for machines.

use failover_core::OutcomeKind;
use failover_scenario::event_to_json;
use serde_json::{Map, Value as Json, json};

use crate::app::Report;
use crate::run::RunStats;

fn stats_json(s: &RunStats, names: &[String]) -> Json {
    let providers: Vec<Json> = s
        .providers
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let by_kind: Map<String, Json> = OutcomeKind::ALL
                .iter()
                .filter(|k| p.by_kind[**k as usize] > 0)
                .map(|k| (k.name().to_string(), json!(p.by_kind[*k as usize])))
                .collect();
            json!({
                "name": names[i],
                "calls": p.calls,
                "first": p.first,
                "served": p.served,
                "answers": by_kind,
            })
        })
        .collect();
    json!({
        "availability": s.availability(),
        "requests": s.requests,
        "served": s.served,
        "failed": s.failed,
        "retried": s.retried,
        "refused": s.unavailable,
        "calls": s.attempts,
        "failed_calls": s.failed_attempts,
        "degraded_calls": s.degraded,
        "health_checks": s.health_checks,
        "latency_ms": {
            "p50": s.latency_quantile(0.5),
            "p90": s.latency_quantile(0.9),
            "p99": s.latency_quantile(0.99),
        },
        "providers": providers,
    })
}

fn series_json(s: &RunStats, names: &[String]) -> Json {
    let ser = &s.series;
    let np = ser.providers;
    let per = |v: &Vec<u32>| -> Map<String, Json> {
        (0..np)
            .map(|p| {
                (
                    names[p].clone(),
                    json!((0..ser.buckets).map(|b| v[b * np + p]).collect::<Vec<_>>()),
                )
            })
            .collect()
    };
    json!({
        "requests": ser.requests,
        "failed": ser.failed,
        "first": per(&ser.first),
        "calls": per(&ser.calls),
        "failed_calls": per(&ser.call_failures),
    })
}

/// The report as one JSON document.
#[must_use]
pub fn report_json(r: &Report) -> Json {
    let names = &r.names;
    let strategies: Map<String, Json> = r
        .strategies
        .iter()
        .map(|s| (s.key.to_string(), stats_json(&s.stats, names)))
        .collect();
    let series: Map<String, Json> = r
        .strategies
        .iter()
        .map(|s| (s.key.to_string(), series_json(&s.stats, names)))
        .collect();
    let error_rates: Map<String, Json> = names
        .iter()
        .enumerate()
        .map(|(p, n)| (n.clone(), json!(r.error_rates[p])))
        .collect();
    let faults: Vec<Json> = r
        .faults
        .iter()
        .map(|f| {
            json!({
                "provider": names[f.provider],
                "from_ms": f.from,
                "to_ms": f.to,
                "what": f.what,
                "note": f.note,
            })
        })
        .collect();
    json!({
        "input": {
            "kind": r.source_kind,
            "title": r.title,
            "file": r.source_file,
            "description": r.description,
            "seed": r.seed,
            "duration_ms": r.duration_ms,
            "start_unix_ms": r.start_unix_ms,
            "trace_lines": r.trace_lines,
            "borrowed_answers": r.borrowed.map(|(b, n)| json!({"borrowed": b, "answers": n})),
            "traffic": r.traffic_note,
            "providers": names,
            "faults": faults,
        },
        "settings": {
            "policy": r.policy_label,
            "attempts": r.attempts,
            "naive_fails_in_a_row": r.naive_fails,
            "naive_cooldown_ms": r.naive_cooldown_ms,
        },
        "strategies": strategies,
        "timeline": r.events.iter().map(|e| event_to_json(e, &names[e.provider.index()])).collect::<Vec<_>>(),
        "dropped_events": r.dropped_events,
        "final_state": r.final_views,
        "series": {
            "bucket_ms": r.bucket_ms,
            "buckets": r.strategies[0].stats.series.buckets,
            "error_rate": error_rates,
            "strategies": series,
        },
        "elapsed_s": r.elapsed_s,
    })
}
