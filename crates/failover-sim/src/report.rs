//! The terminal report: the input, the timeline of transitions with their reasons, the traffic
//! share over time as a chart, and the strategies side by side.

use std::fmt::Write;

use failover_core::{Event, EventKind, Trigger};

use crate::app::{Report, pct};
use crate::input::{clock, dur};

/// Width the timeline's lines wrap at.
const TIMELINE_WIDTH: usize = 118;

/// Characters for eight levels of a bar (index 0 is empty).
const LEVELS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// Why and what, in words, for one event (the name of the provider not included): the core's
/// one description of every event.
#[must_use]
pub fn describe(e: &Event) -> String {
    e.describe().to_string()
}

/// A short upper-case tag for the timeline.
fn tag(e: &Event) -> &'static str {
    match e.kind {
        EventKind::Opened { reason, .. } => match reason.trigger {
            Trigger::ProbeFailed => "reopened",
            Trigger::RampRollback => "ROLLBACK",
            _ => "OPENED",
        },
        EventKind::Probing => "probing",
        EventKind::ProbeExpired => "probe lost",
        EventKind::RampStage { .. } => "ramp",
        EventKind::Recovered => "RECOVERED",
        EventKind::Throttled { .. } => "throttled",
        EventKind::Benched { .. } => "BENCHED",
        EventKind::Unthrottled => "unthrottled",
        EventKind::BackoffDecayed { .. } => "decay",
        EventKind::Paced { .. } => "paced",
        EventKind::Unpaced { .. } => "unpaced",
        EventKind::Manual(m) => m.name(),
    }
}

fn is_probe_failure(e: &Event) -> bool {
    matches!(e.kind, EventKind::Opened { reason, .. } if reason.trigger == Trigger::ProbeFailed)
}

fn is_throttle(e: &Event) -> bool {
    matches!(
        e.kind,
        EventKind::Throttled { .. } | EventKind::Benched { .. } | EventKind::Unthrottled
    )
}

/// Timeline lines, in time order. To keep a long outage readable, repeated things are collapsed:
/// a run of throttles of one provider is one line, a run of three or more failed probes is one
/// line with the growing open periods, a run of backoff decays is one line; `probing` (always
/// followed at once by a probe's verdict or the ramp) is left out.
#[must_use]
pub fn timeline(r: &Report) -> Vec<String> {
    let w = r.names.iter().map(String::len).max().unwrap_or(8).max(8);
    let ev = &r.events;
    let mut used = vec![false; ev.len()];
    let mut items: Vec<(u64, usize, String)> = Vec::new();
    // Long texts wrap under themselves, so the time and provider columns stay clear.
    let line = |at: u64, p: usize, tag: &str, text: &str| {
        let head = format!("{:>8}  {:<w$}  {tag:<11} ", clock(at), r.names[p]);
        let indent = head.chars().count();
        let lines = wrap(text, TIMELINE_WIDTH.saturating_sub(indent).max(40));
        let pad = format!("\n  {:indent$}", "");
        format!("{head}{}", lines.join(&pad))
    };
    for i in 0..ev.len() {
        if used[i] {
            continue;
        }
        used[i] = true;
        let e = &ev[i];
        let p = e.provider;
        let pi = p.index();
        match e.kind {
            EventKind::Probing | EventKind::Unthrottled => {}
            EventKind::Throttled { .. } => {
                let start = e.at_ms;
                let (mut count, mut told, mut lo, mut hi) = (0u64, 0u64, u64::MAX, 0u64);
                let (mut benched, mut bench_start, mut end) = (0u64, None::<u64>, start);
                for j in i..ev.len() {
                    let f = &ev[j];
                    if f.provider != p || !is_throttle(f) {
                        continue;
                    }
                    match f.kind {
                        EventKind::Throttled {
                            until_ms,
                            retry_after,
                        } => {
                            if bench_start.is_none() && count > 0 && f.at_ms > end + 60_000 {
                                break;
                            }
                            count += 1;
                            told += u64::from(retry_after);
                            let d = until_ms.saturating_sub(f.at_ms);
                            lo = lo.min(d);
                            hi = hi.max(d);
                            bench_start.get_or_insert(f.at_ms);
                            end = end.max(until_ms);
                        }
                        _ => {
                            if let Some(s) = bench_start.take() {
                                benched += f.at_ms - s;
                            }
                            end = f.at_ms;
                        }
                    }
                    used[j] = true;
                }
                if let Some(s) = bench_start {
                    benched += end.saturating_sub(s);
                }
                let text = if count == 1 {
                    describe(e)
                } else {
                    let range = if lo == hi {
                        dur(lo)
                    } else {
                        format!("{}–{}", dur(lo), dur(hi))
                    };
                    let how = if told == count {
                        format!("Retry-After {range}")
                    } else {
                        format!("{told} with Retry-After; benched {range} each")
                    };
                    format!(
                        "{count} × 429 ({how}) until {}: benched {} of {}; \
                         back at full share each time, no trip, no ramp",
                        clock(end),
                        dur(benched),
                        dur(end - start)
                    )
                };
                items.push((start, i, line(start, pi, "throttled", &text)));
            }
            _ if is_probe_failure(e) => {
                let mut run = vec![i];
                for (j, f) in ev.iter().enumerate().skip(i + 1) {
                    if f.provider != p || is_throttle(f) {
                        continue;
                    }
                    if is_probe_failure(f) {
                        run.push(j);
                    } else if !matches!(f.kind, EventKind::Probing | EventKind::ProbeExpired) {
                        break;
                    }
                }
                if run.len() < 3 {
                    items.push((e.at_ms, i, line(e.at_ms, pi, tag(e), &describe(e))));
                    continue;
                }
                let last = &ev[*run.last().expect("not empty")];
                for &j in &run {
                    used[j] = true;
                }
                let mut opens = Vec::new();
                let (mut s0, mut s1) = (u32::MAX, 0);
                let mut kinds: Vec<&str> = Vec::new();
                let mut until = 0;
                for &j in &run {
                    if let EventKind::Opened {
                        reason,
                        until_ms,
                        strikes,
                        ..
                    } = ev[j].kind
                    {
                        opens.push(until_ms - ev[j].at_ms);
                        s0 = s0.min(strikes);
                        s1 = s1.max(strikes);
                        until = until_ms;
                        let k = reason.outcome.map_or("failure", |k| k.name());
                        if !kinds.contains(&k) {
                            kinds.push(k);
                        }
                    }
                }
                let max = opens.iter().copied().max().unwrap_or(0);
                // Durations within 10 % of the policy's cap (jitter included) have reached it.
                let cap = r.policy.open_max_ms;
                let mut growth: Vec<String> = Vec::new();
                for d in &opens {
                    if u128::from(*d) * 10 >= u128::from(cap) * 9 {
                        break;
                    }
                    growth.push(dur(*d));
                }
                let capped = growth.len() < opens.len();
                let text = format!(
                    "{} probes failed ({}) until {}, each reopening it for longer: {}{}; \
                     open until {} (strikes {s0}–{s1})",
                    run.len(),
                    kinds.join(", "),
                    clock(last.at_ms),
                    growth.join(", "),
                    if capped {
                        format!(", then about {} (the cap)", dur(max))
                    } else {
                        String::new()
                    },
                    clock(until)
                );
                items.push((e.at_ms, i, line(e.at_ms, pi, "reopened", &text)));
            }
            EventKind::BackoffDecayed { .. } => {
                let mut run = vec![i];
                for (j, f) in ev.iter().enumerate().skip(i + 1) {
                    if f.provider != p || is_throttle(f) {
                        continue;
                    }
                    if matches!(f.kind, EventKind::BackoffDecayed { .. }) {
                        run.push(j);
                    } else {
                        break;
                    }
                }
                for &j in &run {
                    used[j] = true;
                }
                let last = &ev[*run.last().expect("not empty")];
                let text = match (e.kind, last.kind) {
                    (
                        EventKind::BackoffDecayed { strikes: a },
                        EventKind::BackoffDecayed { strikes: b },
                    ) if run.len() > 1 => format!(
                        "healthy: trip count decayed {} → {b} by {} (a new trip opens for less)",
                        a + 1,
                        clock(last.at_ms)
                    ),
                    _ => describe(e),
                };
                items.push((e.at_ms, i, line(e.at_ms, pi, "decay", &text)));
            }
            _ => items.push((e.at_ms, i, line(e.at_ms, pi, tag(e), &describe(e)))),
        }
    }
    items.sort_by_key(|x| (x.0, x.1));
    items.into_iter().map(|x| x.2).collect()
}

/// Groups of chart columns: `width` columns over the run's buckets.
fn columns(buckets: usize, width: usize) -> Vec<(usize, usize)> {
    let width = width.clamp(10, buckets.max(10));
    (0..width)
        .map(|c| {
            (
                c * buckets / width,
                ((c + 1) * buckets / width).max(c * buckets / width + 1),
            )
        })
        .filter(|(a, _)| *a < buckets)
        .collect()
}

fn level(x: f64) -> char {
    if x <= 0.0 {
        return ' ';
    }
    LEVELS[((x * 8.0).ceil() as usize).clamp(1, 8)]
}

/// The traffic-share chart of the policy run (and the failed requests of each strategy).
#[must_use]
pub fn chart(r: &Report, width: usize) -> Vec<String> {
    let Some(pol) = r.strat("policy") else {
        return Vec::new();
    };
    let s = &pol.stats.series;
    let cols = columns(s.buckets, width);
    let w = r
        .names
        .iter()
        .map(String::len)
        .chain(r.strategies.iter().map(|s| s.label.len()))
        .max()
        .unwrap_or(8)
        .max(12);
    let col_ms = (s.bucket_ms * s.buckets as u64) / cols.len() as u64;
    let mut out = Vec::new();
    // Time axis: a label every ~12 columns.
    let mut axis = vec![' '; cols.len() + 12];
    let mut ticks = vec![' '; cols.len()];
    let step = (cols.len() / 6).max(1);
    // Runs under an hour are labelled to the second (H:MM:SS, as in the timeline), longer ones
    // to the minute (H:MM).
    let short_run = s.bucket_ms * s.buckets as u64 <= 3_600_000;
    for c in (0..cols.len()).step_by(step) {
        let at = cols[c].0 as u64 * s.bucket_ms;
        let label = if short_run {
            clock(at)
        } else {
            short_clock(at)
        };
        for (k, ch) in label.chars().enumerate() {
            if c + k < axis.len() {
                axis[c + k] = ch;
            }
        }
        ticks[c] = '╵';
    }
    out.push(format!(
        "  {:<w$} {}",
        "",
        axis.iter().collect::<String>().trim_end()
    ));
    for p in 0..s.providers {
        let mut row = String::new();
        for &(a, b) in &cols {
            let (mut mine, mut all) = (0u64, 0u64);
            for k in a..b {
                for q in 0..s.providers {
                    all += u64::from(s.first[k * s.providers + q]);
                }
                mine += u64::from(s.first[k * s.providers + p]);
            }
            row.push(if all == 0 {
                ' '
            } else {
                level(mine as f64 / all as f64)
            });
        }
        out.push(format!("  {:<w$}│{row}│", r.names[p]));
    }
    out.push(format!("  {:<w$} {}", "", ticks.iter().collect::<String>()));
    out.push(format!(
        "  {:<w$} failed requests (blank below 0.1 %, █ = 100 %):",
        ""
    ));
    for st in &r.strategies {
        let ss = &st.stats.series;
        let mut row = String::new();
        for &(a, b) in &cols {
            let (mut f, mut n) = (0u64, 0u64);
            for k in a..b.min(ss.buckets) {
                f += u64::from(ss.failed[k]);
                n += u64::from(ss.requests[k]);
            }
            let x = if n == 0 { 0.0 } else { f as f64 / n as f64 };
            row.push(if x < 0.001 { ' ' } else { level(x) });
        }
        out.push(format!("  {:<w$}│{row}│", st.label));
    }
    // Transition marks of the policy run.
    let mut marks = vec![' '; cols.len()];
    let rank = |c: char| match c {
        '!' => 4,
        'R' => 3,
        '+' => 2,
        '/' => 1,
        _ => 0,
    };
    for e in &r.events {
        let m = match e.kind {
            EventKind::Opened { reason, .. } if reason.trigger == Trigger::RampRollback => 'R',
            EventKind::Opened {
                from: failover_core::CircuitState::Healthy,
                ..
            } => '!',
            EventKind::RampStage { .. } => '/',
            EventKind::Recovered => '+',
            _ => continue,
        };
        let b = ((e.at_ms / s.bucket_ms) as usize).min(s.buckets - 1);
        if let Some(c) = cols.iter().position(|&(a, z)| (a..z).contains(&b))
            && rank(m) > rank(marks[c])
        {
            marks[c] = m;
        }
    }
    out.push(format!(
        "  {:<w$}│{}│",
        "transitions",
        marks.iter().collect::<String>()
    ));
    out.push(format!(
        "  {:<w$} ! opened  R ramp rolled back  / ramp stage  + recovered   one column = {}",
        "",
        dur(col_ms)
    ));
    out
}

fn short_clock(ms: u64) -> String {
    let m = ms / 60_000;
    format!("{}:{:02}", m / 60, m % 60)
}

pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn secs(ms: Option<u32>) -> String {
    match ms {
        None => "–".to_string(),
        Some(ms) if ms < 10_000 => format!("{:.2} s", f64::from(ms) / 1000.0),
        Some(ms) => format!("{:.1} s", f64::from(ms) / 1000.0),
    }
}

/// The whole terminal report.
#[must_use]
pub fn terminal(r: &Report, width: usize) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "failover-sim · {} · seed {}", r.title, r.seed);
    if !r.description.is_empty() {
        for l in wrap(&r.description, 100) {
            let _ = writeln!(o, "  {l}");
        }
    }
    let _ = writeln!(o);
    let _ = writeln!(o, "  providers  {}  (priority order)", r.names.join(", "));
    let _ = writeln!(
        o,
        "  traffic    {}, {} requests: {}",
        dur(r.duration_ms),
        thousands(r.strategies[0].stats.requests),
        r.traffic_note
    );
    let _ = writeln!(
        o,
        "  retries    up to {} attempts per request, each on another provider",
        r.attempts
    );
    if let Some(ms) = r.start_unix_ms {
        let _ = writeln!(
            o,
            "  start      {} (the timeline counts from here)",
            utc(ms)
        );
    }
    let pl = policy_summary(&r.policy);
    let _ = writeln!(o, "  policy     {}: {}", r.policy_label, pl[0]);
    for l in &pl[1..] {
        let _ = writeln!(o, "             {l}");
    }
    let w = r.names.iter().map(String::len).max().unwrap_or(8);
    for (k, f) in r.faults.iter().enumerate() {
        let _ = writeln!(
            o,
            "  {}  {:<w$}  {}–{}  {}{}",
            if k == 0 { "faults   " } else { "         " },
            r.names[f.provider],
            clock(f.from),
            clock(f.to),
            f.what,
            f.note
                .as_ref()
                .map(|n| format!("  ({n})"))
                .unwrap_or_default()
        );
    }
    if let Some((b, n)) = r.borrowed {
        let _ = writeln!(
            o,
            "  replay     a call the log never made is answered with one of that provider's logged\n\
             \x20            answers in the same {} window; {} of {} answers ({}) came from a nearby window",
            dur(r.trace_bucket_ms),
            thousands(b),
            thousands(n),
            pct(if n == 0 { 0.0 } else { b as f64 / n as f64 })
        );
    }

    let _ = writeln!(o);
    let _ = writeln!(o, "Timeline of the policy's transitions");
    let tl = timeline(r);
    if tl.is_empty() {
        let _ = writeln!(o, "  (none: every provider stayed healthy)");
    }
    for l in tl {
        let _ = writeln!(o, "  {l}");
    }
    if r.dropped_events > 0 {
        let _ = writeln!(
            o,
            "  ({} events were dropped by the engine's queue)",
            r.dropped_events
        );
    }

    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "Traffic share under the policy (requests sent first to each provider; █ = 100 %)"
    );
    for l in chart(r, width) {
        let _ = writeln!(o, "{l}");
    }

    let _ = writeln!(o);
    let _ = writeln!(o, "Same traffic, same faults, three strategies");
    let colw = 16;
    let mut head = format!("  {:<24}", "");
    for s in &r.strategies {
        let _ = write!(head, "{:>colw$}", s.label);
    }
    let _ = writeln!(o, "{head}");
    let row = |o: &mut String, label: &str, f: &dyn Fn(&crate::run::RunStats) -> String| {
        let mut line = format!("  {label:<24}");
        for s in &r.strategies {
            let _ = write!(line, "{:>colw$}", f(&s.stats));
        }
        let _ = writeln!(o, "{line}");
    };
    row(&mut o, "availability", &|s| {
        format!("{:.3} %", s.availability() * 100.0)
    });
    row(&mut o, "requests served", &|s| thousands(s.served));
    row(&mut o, "requests failed", &|s| thousands(s.failed));
    row(&mut o, "requests retried", &|s| thousands(s.retried));
    row(&mut o, "calls (incl. retries)", &|s| thousands(s.attempts));
    row(&mut o, "calls that failed", &|s| {
        thousands(s.failed_attempts)
    });
    if r.strategies.iter().any(|s| s.stats.health_checks > 0) {
        row(&mut o, "health checks", &|s| thousands(s.health_checks));
    }
    row(&mut o, "refused (none to call)", &|s| {
        thousands(s.unavailable)
    });
    row(&mut o, "latency p50 (served)", &|s| {
        secs(s.latency_quantile(0.5))
    });
    row(&mut o, "latency p99 (served)", &|s| {
        secs(s.latency_quantile(0.99))
    });
    for (p, name) in r.names.iter().enumerate() {
        row(&mut o, &format!("served by {name}"), &|s| {
            thousands(s.providers.get(p).map_or(0, |x| x.served))
        });
    }
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "  no failover: every request goes to {} once.",
        r.names[0]
    );
    let _ = writeln!(
        o,
        "  naive failover: on a failure try the next provider; {} failures in a row (429s included)",
        r.naive_fails
    );
    let _ = writeln!(
        o,
        "    cool a provider down for {}, then it takes its full traffic again at once.",
        dur(r.naive_cooldown_ms)
    );
    let _ = writeln!(
        o,
        "  policy: failover-core with the {} policy, retrying within the same attempt budget.",
        if r.policy_label == "default" {
            "default".to_string()
        } else {
            format!("`{}`", r.policy_label)
        }
    );
    if let Some(st) = r.strat("as_logged") {
        let _ = writeln!(
            o,
            "  as logged: what the log itself shows ({} requests, {} served).",
            thousands(st.stats.requests),
            thousands(st.stats.served)
        );
    }
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "{} {} of traffic {} times in {:.2} s.",
        if r.source_kind == "trace" {
            "Replayed"
        } else {
            "Simulated"
        },
        dur(r.duration_ms),
        if r.strategies.len() == 3 {
            "three"
        } else {
            "three more"
        },
        r.elapsed_s
    );
    o
}

/// The policy's main settings in two lines.
#[must_use]
pub fn policy_summary(p: &failover_core::Policy) -> Vec<String> {
    let mut rates = Vec::new();
    if let Some(x) = p.error_rate_threshold {
        rates.push(format!("{} errors", pct(x)));
    }
    if let Some(x) = p.timeout_rate_threshold {
        rates.push(format!(
            "{} timeouts for {}",
            pct(x),
            dur(p.timeout_sustain_ms)
        ));
    }
    if let Some(x) = p.slow_call_rate_threshold {
        rates.push(format!(
            "{} slow (≥ {})",
            pct(x),
            dur(u64::from(p.slow_call_ms))
        ));
    }
    if let Some(x) = p.latency_factor {
        rates.push(format!("latency ×{x} baseline"));
    }
    let mut out = Vec::new();
    match (p.consecutive_failures, rates.is_empty()) {
        (Some(n), false) => {
            out.push(format!(
                "opens on {n} server errors in a row, or with ≥ {} calls in {} on",
                p.min_volume,
                dur(p.window_ms)
            ));
            out.push(format!("{};", rates.join(" · ")));
        }
        (Some(n), true) => out.push(format!("opens on {n} server errors in a row;")),
        (None, false) => {
            out.push(format!(
                "opens with ≥ {} calls in {} on",
                p.min_volume,
                dur(p.window_ms)
            ));
            out.push(format!("{};", rates.join(" · ")));
        }
        (None, true) => out.push("never opens (every trigger is off);".to_string()),
    }
    let ramp: Vec<String> = p.ramp.iter().map(|s| pct(s.share)).collect();
    let total: u64 = p.ramp.iter().map(|s| s.dwell_ms).sum();
    out.push(format!(
        "open {}, ×{} per trip up to {}; {} probe{} by {}; ramp {} over {}",
        dur(p.open_base_ms),
        p.open_multiplier,
        dur(p.open_max_ms),
        p.probe_successes,
        if p.probe_successes == 1 { "" } else { "s" },
        p.probe_mode.name().replace('_', " "),
        ramp.join(" → "),
        dur(total)
    ));
    out
}

/// Unix ms as `2026-11-20 14:03:22 UTC` (Howard Hinnant's civil-from-days).
pub fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_numbers() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(784_111_777_000), "1994-11-06 08:49:37 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(12), "12");
    }
}
