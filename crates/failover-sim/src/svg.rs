//! `--svg FILE` / `--png FILE`: one picture of a run, outcomes first. The title block states the
//! policy's key parameters and each strategy's availability and failed requests. Panels, on one
//! time axis: the policy's traffic share per provider (stacked); the circuit state of each
//! provider with its stages labelled and the transitions marked; failed requests per strategy;
//! latency of served requests; requests arriving; the policy's failed calls by kind (5xx,
//! timeouts, 429); and, last, each provider's error rate (the input: what the fault model or trace
//! made it answer). Shapes and palette: `charts.rs`.

use std::fmt::Write;

use crate::app::Report;
use crate::charts::{
    Anchor, Canvas, Run, TimeAxis, around, esc, frame, outcome_panels, policy_block,
    provider_color, state_bands, strategy_style, text_width, thousands,
};
use crate::input::{clock, dur};

const W: f64 = 1000.0;
const LEFT: f64 = 96.0;
const RIGHT: f64 = 24.0;

fn fmt_pct(x: f64) -> String {
    format!("{:.3} %", x * 100.0)
}

/// The title block: title, each strategy's outcome, the policy's key parameters, the providers.
/// Returns the y below it.
fn title_block(c: &mut Canvas, r: &Report) -> f64 {
    c.text(
        LEFT,
        28.0,
        17.0,
        Anchor::Start,
        r##"font-weight="bold" fill="#222""##,
        &format!("{} · policy: {}", r.title, r.policy_label),
    );
    // One line of strategies, wrapped where the next would not fit (a trace adds "as logged").
    let (mut x, mut y) = (LEFT, 50.0);
    for st in &r.strategies {
        let (col, _) = strategy_style(st.key);
        let text = format!(
            "{}: {}, {} failed",
            st.label,
            fmt_pct(st.stats.availability()),
            thousands(st.stats.failed)
        );
        if x > LEFT && x + text_width(&text, 12.0) > W - RIGHT {
            x = LEFT;
            y += 16.0;
        }
        c.text(
            x,
            y,
            12.0,
            Anchor::Start,
            &format!(r#"fill="{col}" font-weight="bold""#),
            &text,
        );
        x += text_width(&text, 12.0) + 18.0;
    }
    y += 18.0;
    y = policy_block(
        c,
        LEFT,
        y,
        &r.policy,
        &format!(
            "{} requests over {}, up to {} attempts each; naive failover cools a provider down {} after {} failures in a row",
            thousands(r.strat("policy").map_or(0, |p| p.stats.requests)),
            dur(r.duration_ms),
            r.attempts,
            dur(r.naive_cooldown_ms),
            r.naive_fails
        ),
    );
    y += 18.0;
    let mut lx = LEFT;
    for (p, name) in r.names.iter().enumerate() {
        c.raw(&format!(
            r#"<rect x="{lx:.1}" y="{:.1}" width="12" height="12" fill="{}"/>"#,
            y - 10.0,
            provider_color(p)
        ));
        c.text(lx + 16.0, y, 12.0, Anchor::Start, r##"fill="#333""##, name);
        lx += 30.0 + text_width(name, 12.0);
    }
    y + 36.0
}

/// The chart as an SVG document.
#[must_use]
pub fn render(r: &Report) -> String {
    let Some(pol) = r.strat("policy") else {
        return String::new();
    };
    let s = &pol.stats.series;
    let np = s.providers;
    let end = (s.bucket_ms * s.buckets as u64).max(1);
    let ax = TimeAxis {
        t0: 0,
        t1: end,
        x0: LEFT,
        x1: W - RIGHT,
    };
    let mut c = Canvas::new(W);
    let share_top = title_block(&mut c, r);
    let share_h = 150.0;

    // Traffic share, stacked in priority order from the bottom. Each point takes in neighbouring
    // buckets (up to 10 each side) until it covers at least 50 requests, so that a 5 % ramp does
    // not show as spikes; a bucket with none carries the last known split.
    let ticks: Vec<(f64, String)> = [0.0, 0.5, 1.0]
        .iter()
        .map(|&g| (g, format!("{:.0} %", g * 100.0)))
        .collect();
    frame(
        &mut c,
        &ax,
        share_top,
        share_h,
        "Traffic share under the policy",
        "requests sent first to each provider",
        &ticks,
    );
    let total = |b: usize| -> u64 { (0..np).map(|p| u64::from(s.first[b * np + p])).sum() };
    let mut shares = vec![vec![0.0f64; np]; s.buckets];
    let mut last = vec![0.0; np];
    if np > 0 {
        last[0] = 1.0;
    }
    for (b, row) in shares.iter_mut().enumerate() {
        let (lo, hi) = around(&total, s.buckets, b, 50, 10);
        let sum: u64 = (lo..=hi).map(total).sum();
        if total(b) > 0 && sum > 0 {
            for (p, l) in last.iter_mut().enumerate() {
                let mine: u64 = (lo..=hi).map(|k| u64::from(s.first[k * np + p])).sum();
                *l = mine as f64 / sum as f64;
            }
        }
        row.copy_from_slice(&last);
    }
    let y_share = |v: f64| share_top + share_h * (1.0 - v.min(1.0));
    for p in 0..np {
        let mut d = String::new();
        let bw = s.bucket_ms;
        for (b, row) in shares.iter().enumerate() {
            let top: f64 = row[..=p].iter().sum();
            let (x0, x1) = (ax.x(b as u64 * bw), ax.x((b as u64 + 1) * bw));
            let y = y_share(top);
            let _ = write!(
                d,
                "{}{x0:.1},{y:.1} L{x1:.1},{y:.1} ",
                if b == 0 { "M" } else { "L" }
            );
        }
        for (b, row) in shares.iter().enumerate().rev() {
            let bottom: f64 = row[..p].iter().sum();
            let (x0, x1) = (ax.x(b as u64 * bw), ax.x((b as u64 + 1) * bw));
            let y = y_share(bottom);
            let _ = write!(d, "L{x1:.1},{y:.1} L{x0:.1},{y:.1} ");
        }
        c.raw(&format!(
            r#"<path class="share" data-provider="{}" d="{}Z" fill="{}" fill-opacity="0.8" stroke="none"><title>{}: share of requests</title></path>"#,
            esc(&r.names[p]),
            d.trim_end(),
            provider_color(p),
            esc(&r.names[p])
        ));
    }

    let band_top = share_top + share_h + 40.0;
    let below = state_bands(
        &mut c,
        &ax,
        band_top,
        &r.names,
        &r.events,
        share_top,
        &|t| clock(t),
    );

    let runs: Vec<Run> = r
        .strategies
        .iter()
        .map(|st| Run {
            key: st.key,
            label: st.label,
            series: &st.stats.series,
        })
        .collect();
    let err_top = outcome_panels(&mut c, &ax, below + 40.0, &runs, 0, s.buckets);

    // Error rate of each provider's answers (the input).
    let err_h = 100.0;
    let source = if r.source_kind == "trace" {
        "as logged in the trace"
    } else {
        "from the fault model"
    };
    let ticks: Vec<(f64, String)> = [0.0, 0.5, 1.0]
        .iter()
        .map(|&g| (g, format!("{:.0} %", g * 100.0)))
        .collect();
    frame(
        &mut c,
        &ax,
        err_top,
        err_h,
        "Error rate of each provider (the input)",
        &format!("share of its answers that fail, {source}"),
        &ticks,
    );
    let y_err = |v: f64| err_top + err_h * (1.0 - v.clamp(0.0, 1.0));
    for p in 0..np {
        let mut d = String::new();
        let mut pen = false;
        for (b, v) in r.error_rates[p].iter().enumerate() {
            match v {
                Some(v) => {
                    let xm = ax.x(b as u64 * s.bucket_ms + s.bucket_ms / 2);
                    let _ = write!(
                        d,
                        "{}{xm:.1},{:.1} ",
                        if pen { "L" } else { "M" },
                        y_err(*v)
                    );
                    pen = true;
                }
                None => pen = false,
            }
        }
        if d.is_empty() {
            let _ = write!(d, "M{LEFT},{:.1}", y_err(0.0));
        }
        c.raw(&format!(
            r#"<path class="error" data-provider="{}" d="{}" fill="none" stroke="{}" stroke-width="1.6" stroke-linejoin="round"><title>{}: error rate</title></path>"#,
            esc(&r.names[p]),
            d.trim_end(),
            provider_color(p),
            esc(&r.names[p])
        ));
    }

    let axis_y = err_top + err_h;
    ax.draw(&mut c, share_top, axis_y, &|t| clock(t));
    c.text(
        LEFT + (W - LEFT - RIGHT) / 2.0,
        axis_y + 36.0,
        11.0,
        Anchor::Middle,
        r##"fill="#777""##,
        &format!(
            "time since the start (h:mm:ss){}",
            match r.start_unix_ms {
                Some(ms) => format!(", from {}", crate::report::utc(ms)),
                None => String::new(),
            }
        ),
    );
    c.finish(
        axis_y + 52.0,
        &format!("failover-sim: {} · policy {}", r.title, r.policy_label),
    )
}
