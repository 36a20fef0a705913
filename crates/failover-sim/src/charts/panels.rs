//! The panels shared by the scenario chart and the year's zoomed incidents: outcomes per
//! strategy, and the policy's circuit states with their stages and transitions.

use std::fmt::Write as _;

use failover_core::{CircuitState, Event, EventKind, Trigger};

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::input::dur;
use crate::report::describe;
use crate::run::{FailureGroup, LATENCY_BINS, Series};

/// A step line through `(t, value)` points, one per bucket.
fn step_path(
    ax: &TimeAxis,
    s: &Series,
    b0: usize,
    b1: usize,
    y: &dyn Fn(usize) -> Option<f64>,
) -> String {
    let mut d = String::new();
    let mut pen = false;
    for b in b0..b1 {
        let t = s.origin + b as u64 * s.bucket_ms;
        match y(b) {
            Some(v) => {
                let (xa, xb) = (ax.x(t), ax.x(t + s.bucket_ms));
                let _ = write!(
                    d,
                    "{}{xa:.1},{v:.1} L{xb:.1},{v:.1} ",
                    if pen { "L" } else { "M" }
                );
                pen = true;
            }
            None => pen = false,
        }
    }
    d.trim_end().to_string()
}

/// One strategy's run over the span a set of panels shows.
pub struct Run<'a> {
    /// Stable key (`no_failover`, `naive`, `policy`, `as_logged`).
    pub key: &'a str,
    /// Legend text.
    pub label: &'a str,
    /// Its series (every run of a span has the same buckets).
    pub series: &'a Series,
}

/// The outcome panels over buckets `[b0, b1)` of `runs`: failed requests per strategy, latency of
/// served requests (p50 and p99 of the policy, p99 of naive failover), requests arriving, and the
/// policy's failed calls by kind. Returns the y below the last panel.
pub fn outcome_panels(
    c: &mut Canvas,
    ax: &TimeAxis,
    mut top: f64,
    runs: &[Run],
    b0: usize,
    b1: usize,
) -> f64 {
    let Some(pol) = runs.iter().find(|r| r.key == "policy") else {
        return top;
    };
    let s = pol.series;
    let per = dur(s.bucket_ms);
    let gap = 46.0;

    // Failed requests per strategy, on a log scale: no failover is often a thousand times the
    // others, which would otherwise lie flat on the axis.
    let h = 120.0;
    let max = runs
        .iter()
        .flat_map(|r| (b0..b1).map(|b| f64::from(r.series.failed[b])))
        .fold(1.0, f64::max);
    let decades = max.log10().ceil().max(1.0);
    let ticks: Vec<(f64, String)> = (0..=decades as i32)
        .map(|d| (f64::from(d) / decades, log_tick(d)))
        .collect();
    frame(
        c,
        ax,
        top,
        h,
        "Failed requests",
        &format!("per {per}, log scale; each strategy on the same traffic and faults"),
        &ticks,
    );
    let y_log = |v: f64| top + h * (1.0 - ((1.0 + v).log10() / decades).min(1.0));
    let mut items = Vec::new();
    let totals: Vec<String> = runs
        .iter()
        .map(|r| {
            let n: u64 = (b0..b1).map(|b| u64::from(r.series.failed[b])).sum();
            format!("{} {}", r.label, thousands(n))
        })
        .collect();
    for (r, total) in runs.iter().zip(&totals) {
        let (col, dash) = strategy_style(r.key);
        let d = step_path(ax, r.series, b0, b1, &|b| {
            Some(y_log(f64::from(r.series.failed[b])))
        });
        c.raw(&format!(
            r#"<path class="failed" data-strategy="{}" d="{d}" fill="none" stroke="{col}" stroke-width="1.6" stroke-dasharray="{dash}"><title>{}: failed requests per {per}</title></path>"#,
            r.key,
            esc(r.label)
        ));
        items.push((col, dash, total.as_str()));
    }
    c.legend(ax.x0 + 8.0, top + 16.0, &items);
    top += h + gap;

    // Latency of served requests.
    let h = 100.0;
    let naive = runs.iter().find(|r| r.key == "naive");
    let q = |r: &Series, b: usize, p: f64| {
        let (lo, hi) = around(
            &|k| {
                r.latency[k * LATENCY_BINS..(k + 1) * LATENCY_BINS]
                    .iter()
                    .map(|&n| u64::from(n))
                    .sum()
            },
            r.buckets,
            b,
            50,
            5,
        );
        r.latency_quantile(lo.max(b0), (hi + 1).min(b1), p)
    };
    let lines: Vec<(&Series, f64, &str, &str, &str)> = {
        let mut v = vec![
            (s, 0.5, BLUE, "none", "policy p50"),
            (s, 0.99, BLUE, "5 2", "policy p99"),
        ];
        if let Some(n) = naive {
            v.push((n.series, 0.99, ORANGE, "2 2", "naive p99"));
        }
        v
    };
    let values: Vec<Vec<Option<f64>>> = lines
        .iter()
        .map(|(ser, p, ..)| (b0..b1).map(|b| q(ser, b, *p)).collect())
        .collect();
    let max = values
        .iter()
        .flatten()
        .flatten()
        .copied()
        .fold(0.0, f64::max);
    let top_v = nice_max(max / 1000.0);
    let ticks: Vec<(f64, String)> = [0.0, 0.5, 1.0]
        .iter()
        .map(|&g| (g, format!("{} s", trim(g * top_v))))
        .collect();
    frame(
        c,
        ax,
        top,
        h,
        "Latency of served requests",
        "arrival to answer, retries included; read from bins 25 % wide",
        &ticks,
    );
    let mut items = Vec::new();
    for ((_, _, col, dash, label), vals) in lines.iter().zip(&values) {
        let d = step_path(ax, s, b0, b1, &|b| {
            vals[b - b0].map(|v| top + h * (1.0 - (v / 1000.0 / top_v).min(1.0)))
        });
        c.raw(&format!(
            r#"<path class="latency" d="{d}" fill="none" stroke="{col}" stroke-width="1.4" stroke-dasharray="{dash}"><title>{label}</title></path>"#
        ));
        items.push((*col, *dash, *label));
    }
    c.legend(ax.x0 + 8.0, top + 16.0, &items);
    top += h + gap;

    // Requests arriving.
    let h = 60.0;
    let max = (b0..b1)
        .map(|b| f64::from(s.requests[b]))
        .fold(0.0, f64::max);
    let top_v = nice_max(max);
    let ticks: Vec<(f64, String)> = [0.0, 1.0]
        .iter()
        .map(|&g| (g, short_num(g * top_v)))
        .collect();
    frame(
        c,
        ax,
        top,
        h,
        "Requests arriving",
        &format!("per {per}"),
        &ticks,
    );
    let mut d = step_path(ax, s, b0, b1, &|b| {
        Some(top + h * (1.0 - f64::from(s.requests[b]) / top_v))
    });
    if !d.is_empty() {
        let _ = write!(
            d,
            " L{:.1},{:.1} L{:.1},{:.1} Z",
            ax.x(s.origin + b1 as u64 * s.bucket_ms),
            top + h,
            ax.x(s.origin + b0 as u64 * s.bucket_ms),
            top + h
        );
        c.raw(&format!(r##"<path class="requests" d="{d}" fill="{GREY}" fill-opacity="0.45" stroke="#666" stroke-width="0.8"/>"##));
    }
    top += h + gap;

    // Failed calls by kind, under the policy.
    let h = 90.0;
    let ng = FailureGroup::ALL.len();
    let max = (b0..b1)
        .map(|b| {
            s.failures_by_group[b * ng..(b + 1) * ng]
                .iter()
                .map(|&n| f64::from(n))
                .sum::<f64>()
        })
        .fold(0.0, f64::max);
    let top_v = nice_max(max);
    let ticks: Vec<(f64, String)> = [0.0, 0.5, 1.0]
        .iter()
        .map(|&g| (g, short_num(g * top_v)))
        .collect();
    frame(
        c,
        ax,
        top,
        h,
        "Failed calls under the policy, by kind",
        &format!("per {per}, retries and probes included"),
        &ticks,
    );
    for (gi, g) in FailureGroup::ALL.iter().enumerate() {
        let mut d = String::new();
        for b in b0..b1 {
            let below: u32 = s.failures_by_group[b * ng..b * ng + gi].iter().sum();
            let mine = s.failures_by_group[b * ng + gi];
            if mine == 0 {
                continue;
            }
            let t = s.origin + b as u64 * s.bucket_ms;
            let (xa, xb) = (ax.x(t), ax.x(t + s.bucket_ms));
            let ya = top + h * (1.0 - f64::from(below + mine) / top_v);
            let yb = top + h * (1.0 - f64::from(below) / top_v);
            let _ = write!(
                d,
                "M{xa:.1},{ya:.1} H{:.1} V{yb:.1} H{xa:.1} Z ",
                xb.max(xa + 0.4)
            );
        }
        c.raw(&format!(
            r#"<path class="kind" data-kind="{}" d="{}" fill="{}" stroke="none"><title>{}</title></path>"#,
            g.label(),
            d.trim_end(),
            group_color(*g),
            g.label()
        ));
    }
    let mut x = ax.x0 + 8.0;
    let w: f64 = FailureGroup::ALL
        .iter()
        .map(|g| 30.0 + text_width(g.label(), 11.0))
        .sum();
    c.backdrop(x, top + 16.0, w);
    for g in FailureGroup::ALL {
        c.raw(&format!(
            r#"<rect x="{x:.1}" y="{:.1}" width="12" height="10" fill="{}"/>"#,
            top + 7.0,
            group_color(g)
        ));
        c.text(
            x + 16.0,
            top + 16.0,
            11.0,
            Anchor::Start,
            r##"fill="#333""##,
            g.label(),
        );
        x += 30.0 + text_width(g.label(), 11.0);
    }
    top + h + gap
}

#[derive(Clone, Copy, PartialEq)]
enum State {
    Healthy,
    Open,
    Probing,
    Ramping(u32),
}

struct Segment {
    from: u64,
    to: u64,
    state: State,
}

/// Circuit-state segments and throttle intervals of provider `p` within `[t0, t1)`, from every
/// event (those before `t0` set the state it starts in).
fn segments(events: &[Event], p: usize, t0: u64, t1: u64) -> (Vec<Segment>, Vec<(u64, u64)>) {
    let mut segs = Vec::new();
    let mut throttles = Vec::new();
    let mut state = State::Healthy;
    let mut since = 0u64;
    let mut throttled_since: Option<u64> = None;
    let push = |segs: &mut Vec<Segment>, from: u64, to: u64, state: State| {
        let (a, b) = (from.max(t0), to.min(t1));
        if state != State::Healthy && b > a {
            segs.push(Segment {
                from: a,
                to: b,
                state,
            });
        }
    };
    for e in events
        .iter()
        .filter(|e| e.provider.index() == p && e.at_ms < t1)
    {
        let next = match e.kind {
            EventKind::Opened { .. } => Some(State::Open),
            EventKind::Probing => Some(State::Probing),
            EventKind::RampStage { share_ppm, .. } => Some(State::Ramping(share_ppm)),
            EventKind::Recovered => Some(State::Healthy),
            EventKind::Throttled { .. } | EventKind::Benched { .. } => {
                throttled_since.get_or_insert(e.at_ms);
                None
            }
            EventKind::Unthrottled => {
                if let Some(s) = throttled_since.take()
                    && e.at_ms > t0
                {
                    throttles.push((s.max(t0), e.at_ms));
                }
                None
            }
            EventKind::ProbeExpired
            | EventKind::BackoffDecayed { .. }
            | EventKind::Paced { .. }
            | EventKind::Unpaced { .. }
            // The simulator never isolates or resets a provider by hand.
            | EventKind::Manual(_) => None,
        };
        if let Some(n) = next {
            push(&mut segs, since, e.at_ms, state);
            state = n;
            since = e.at_ms;
        }
    }
    push(&mut segs, since, t1, state);
    if let Some(s) = throttled_since {
        throttles.push((s.max(t0), t1.max(s)));
    }
    (segs, throttles)
}

/// The policy's circuit state per provider over the axis' span, each stage labelled where its
/// label fits, and transition lines (a trip from healthy, a rollback, a recovery) from `line_top`
/// down through the bands, labelled in up to three rows above `line_top`'s panel. Returns the y
/// below the bands.
#[allow(clippy::too_many_arguments)]
pub fn state_bands(
    c: &mut Canvas,
    ax: &TimeAxis,
    top: f64,
    names: &[String],
    events: &[Event],
    line_top: f64,
    clock: &dyn Fn(u64) -> String,
) -> f64 {
    let band_h = 16.0;
    let gap = 6.0;
    c.text(
        ax.x0,
        top - 8.0,
        12.0,
        Anchor::Start,
        r##"font-weight="bold" fill="#222""##,
        "Circuit state under the policy",
    );
    let mut kx = ax.x0 + 8.0 + text_width("Circuit state under the policy", 12.0) + 12.0;
    for (fill, label) in [
        (VERMILLION, "open"),
        (ORANGE, "probing"),
        (GREEN, "ramping (darker = larger share)"),
        ("url(#hatch)", "throttled / benched"),
    ] {
        c.raw(&format!(
            r##"<rect x="{kx:.1}" y="{:.1}" width="12" height="10" fill="{fill}" stroke="#999" stroke-width="0.5"/>"##,
            top - 17.0
        ));
        c.text(
            kx + 16.0,
            top - 8.0,
            11.0,
            Anchor::Start,
            r##"fill="#555""##,
            label,
        );
        kx += 30.0 + text_width(label, 11.0);
    }
    for (p, name) in names.iter().enumerate() {
        let y = top + p as f64 * (band_h + gap);
        c.text(
            ax.x0 - 6.0,
            y + band_h - 4.0,
            11.0,
            Anchor::End,
            &format!(r#"fill="{}" font-weight="bold""#, provider_color(p)),
            name,
        );
        c.raw(&format!(
            r##"<rect x="{:.1}" y="{y:.1}" width="{:.1}" height="{band_h}" fill="#eef3ee"/>"##,
            ax.x0,
            ax.x1 - ax.x0
        ));
        let (segs, throttles) = segments(events, p, ax.t0, ax.t1);
        let mut g = format!(r#"<g class="states" data-provider="{}">"#, esc(name));
        let mut labels = Vec::new();
        for sg in &segs {
            let (fill, opacity, what, short) = match sg.state {
                State::Open => (VERMILLION, 1.0, "open".to_string(), "open".to_string()),
                State::Probing => (ORANGE, 1.0, "probing".to_string(), "probing".to_string()),
                State::Ramping(share) => {
                    let pc = f64::from(share) / 1e4;
                    (
                        GREEN,
                        0.3 + 0.7 * f64::from(share) / 1e6,
                        format!("ramping at {pc:.0} %"),
                        format!("{pc:.0} %"),
                    )
                }
                State::Healthy => continue,
            };
            let (x0, x1) = (ax.x(sg.from), ax.x(sg.to));
            let _ = write!(
                g,
                r#"<rect x="{x0:.2}" y="{y:.1}" width="{:.2}" height="{band_h}" fill="{fill}" fill-opacity="{opacity:.2}"><title>{}: {what} {}–{}</title></rect>"#,
                (x1 - x0).max(0.6),
                esc(name),
                esc(&clock(sg.from)),
                esc(&clock(sg.to))
            );
            labels.push((x0, x1, short, sg.state));
        }
        for &(a, b) in &throttles {
            let (x0, x1) = (ax.x(a), ax.x(b));
            let _ = write!(
                g,
                r#"<rect x="{x0:.2}" y="{:.1}" width="{:.2}" height="{:.1}" fill="url(#hatch)"><title>{}: throttled {}–{}</title></rect>"#,
                y + band_h * 0.5,
                (x1 - x0).max(0.6),
                band_h * 0.5,
                esc(name),
                esc(&clock(a)),
                esc(&clock(b))
            );
        }
        g.push_str("</g>");
        c.raw(&g);
        // Stage labels inside their segment, where they fit.
        for (x0, x1, short, state) in labels {
            if text_width(&short, 9.0) + 1.0 <= x1 - x0 {
                let fill = if matches!(state, State::Ramping(s) if s < 400_000) {
                    "#222"
                } else {
                    "#fff"
                };
                c.text(
                    (x0 + x1) / 2.0,
                    y + band_h - 4.5,
                    9.0,
                    Anchor::Middle,
                    &format!(r#"fill="{fill}" class="stage""#),
                    &short,
                );
            }
        }
    }
    let bottom = top + names.len() as f64 * (band_h + gap);
    // Transition lines, labelled in the first of three rows where the label fits.
    for e in events
        .iter()
        .filter(|e| e.at_ms >= ax.t0 && e.at_ms < ax.t1)
    {
        let p = e.provider.index();
        let (label, col) = match e.kind {
            EventKind::Opened { reason, .. } if reason.trigger == Trigger::RampRollback => {
                (format!("{} rolled back", names[p]), VERMILLION)
            }
            EventKind::Opened {
                from: CircuitState::Healthy,
                ..
            } => (format!("{} opened", names[p]), VERMILLION),
            EventKind::Recovered => (format!("{} recovered", names[p]), GREEN),
            _ => continue,
        };
        let mx = ax.x(e.at_ms);
        let text = format!("{} {label}", clock(e.at_ms));
        let mut drawn = false;
        for row in 0..3 {
            let ty = line_top + 14.0 + 13.0 * row as f64;
            let (anchor, tx) = if mx + 4.0 + text_width(&text, 10.0) > ax.x1 {
                (Anchor::End, mx - 4.0)
            } else {
                (Anchor::Start, mx + 4.0)
            };
            if c.text(
                tx,
                ty,
                10.0,
                anchor,
                r##"fill="#222" class="mark" stroke="#fff" stroke-width="3" paint-order="stroke""##,
                &text,
            ) {
                drawn = true;
                break;
            }
        }
        c.raw(&format!(
            r#"<g class="transition" data-labelled="{drawn}"><line x1="{mx:.1}" y1="{line_top:.1}" x2="{mx:.1}" y2="{bottom:.1}" stroke="{col}" stroke-width="1.1" stroke-dasharray="4 3" stroke-opacity="0.8"/><title>{}: {}</title></g>"#,
            esc(&text),
            esc(&describe(e))
        ));
    }
    bottom
}
