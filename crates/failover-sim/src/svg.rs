//! `--svg FILE`: one picture of the run. Top: the policy's traffic share per provider (stacked).
//! Middle: each provider's circuit state over time (open, probing, ramping, throttled), with the
//! transitions marked. Bottom: each provider's error rate (what the fault model or trace made it
//! answer). The three strategies' availability is in the title.

use std::fmt::Write;

use failover_core::{EventKind, Trigger};

use crate::app::Report;
use crate::input::{clock, dur};
use crate::report::describe;

const COLORS: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#ff9da7",
    "#bab0ac", "#e15759",
];

const W: f64 = 1000.0;
const LEFT: f64 = 96.0;
const RIGHT: f64 = 24.0;
const OPEN: &str = "#c0392b";
const PROBING: &str = "#f1948a";
const RAMP: &str = "#27ae60";
const THROTTLED: &str = "#7f8c8d";

/// Escapes text for XML.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => {}
            c => o.push(c),
        }
    }
    o
}

fn color(p: usize) -> &'static str {
    COLORS[p % COLORS.len()]
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

/// Circuit-state segments and throttle intervals of provider `p`, from the events.
fn segments(r: &Report, p: usize, end: u64) -> (Vec<Segment>, Vec<(u64, u64)>) {
    let mut segs = Vec::new();
    let mut throttles = Vec::new();
    let mut state = State::Healthy;
    let mut since = 0u64;
    let mut throttled_since: Option<u64> = None;
    for e in r.events.iter().filter(|e| e.provider.index() == p) {
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
                if let Some(s) = throttled_since.take() {
                    throttles.push((s, e.at_ms));
                }
                None
            }
            // The simulator never isolates or resets a provider by hand.
            EventKind::ProbeExpired | EventKind::BackoffDecayed { .. } | EventKind::Manual(_) => {
                None
            }
        };
        if let Some(n) = next {
            if state != State::Healthy && e.at_ms > since {
                segs.push(Segment {
                    from: since,
                    to: e.at_ms,
                    state,
                });
            }
            state = n;
            since = e.at_ms;
        }
    }
    if state != State::Healthy && end > since {
        segs.push(Segment {
            from: since,
            to: end,
            state,
        });
    }
    if let Some(s) = throttled_since {
        throttles.push((s, end.max(s)));
    }
    (segs, throttles)
}

/// Tick spacing giving about 8 labels.
fn tick_step(duration: u64) -> u64 {
    const STEPS: [u64; 14] = [
        10_000,
        30_000,
        60_000,
        300_000,
        600_000,
        900_000,
        1_800_000,
        3_600_000,
        7_200_000,
        10_800_000,
        21_600_000,
        43_200_000,
        86_400_000,
        604_800_000,
    ];
    STEPS
        .iter()
        .copied()
        .find(|&s| duration / s <= 10)
        .unwrap_or(604_800_000)
}

fn fmt_pct(x: f64) -> String {
    format!("{:.3} %", x * 100.0)
}

fn thousands(n: u64) -> String {
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

/// The chart as an SVG document.
#[must_use]
pub fn render(r: &Report) -> String {
    let Some(pol) = r.strat("policy") else {
        return String::new();
    };
    let s = &pol.stats.series;
    let np = s.providers;
    let end = (s.bucket_ms * s.buckets as u64).max(1);
    let pw = W - LEFT - RIGHT;
    let x = |t: u64| LEFT + pw * (t.min(end) as f64 / end as f64);

    let share_top = 130.0;
    let share_h = 190.0;
    let band_top = share_top + share_h + 34.0;
    let band_h = 16.0;
    let band_gap = 6.0;
    let bands_h = np as f64 * (band_h + band_gap);
    let err_top = band_top + bands_h + 40.0;
    let err_h = 130.0;
    let axis_y = err_top + err_h;
    let height = axis_y + 64.0;

    let mut o = String::new();
    let _ = writeln!(
        o,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height:.0}" viewBox="0 0 {W} {height:.0}" font-family="Helvetica, Arial, sans-serif" font-size="12">"##
    );
    let _ = writeln!(
        o,
        "<title>failover-sim: {} · policy {}</title>",
        esc(&r.title),
        esc(&r.policy_label)
    );
    let _ = writeln!(o, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let _ = writeln!(
        o,
        r##"<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#ffffff"/><rect width="3" height="6" fill="{THROTTLED}"/></pattern></defs>"##
    );

    // Title and the three strategies.
    let _ = writeln!(
        o,
        r##"<text x="{LEFT}" y="28" font-size="17" font-weight="bold" fill="#222">{} · policy: {}</text>"##,
        esc(&r.title),
        esc(&r.policy_label)
    );
    let mut avail = String::new();
    for (k, st) in r.strategies.iter().enumerate() {
        if k > 0 {
            avail.push_str("   ·   ");
        }
        let _ = write!(avail, "{} {}", st.label, fmt_pct(st.stats.availability()));
    }
    let _ = writeln!(
        o,
        r##"<text x="{LEFT}" y="50" font-size="13" fill="#333">availability: {}</text>"##,
        esc(&avail)
    );
    let _ = writeln!(
        o,
        r##"<text x="{LEFT}" y="68" font-size="11" fill="#777">{} requests over {}, up to {} attempts each; same traffic and faults for every strategy</text>"##,
        thousands(pol.stats.requests),
        esc(&dur(r.duration_ms)),
        r.attempts
    );

    // Legend: providers.
    let mut lx = LEFT;
    for (p, name) in r.names.iter().enumerate() {
        let _ = writeln!(
            o,
            r##"<rect x="{lx:.1}" y="84" width="12" height="12" fill="{}"/><text x="{:.1}" y="94.5" fill="#333">{}</text>"##,
            color(p),
            lx + 16.0,
            esc(name)
        );
        lx += 28.0 + 7.0 * name.chars().count() as f64;
    }

    // Panel A: traffic share, stacked in priority order from the bottom.
    let _ = writeln!(
        o,
        r##"<text x="{LEFT}" y="{:.1}" font-weight="bold" fill="#222">Traffic share under the policy<tspan dx="8" font-weight="normal" fill="#777">(requests sent first to each provider)</tspan></text>"##,
        share_top - 8.0
    );
    let y_share = |v: f64| share_top + share_h * (1.0 - v);
    for g in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let y = y_share(g);
        let _ = writeln!(
            o,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e5e5e5"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#777" font-size="11">{:.0} %</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            g * 100.0
        );
    }
    // Shares per bucket. With little traffic a bucket holds a handful of requests and a 5 % ramp
    // would show as spikes, so each point takes in neighbouring buckets (up to 10 each side) until
    // it covers at least 50 requests; a bucket with none carries the last known split.
    let totals: Vec<u64> = (0..s.buckets)
        .map(|b| (0..np).map(|p| u64::from(s.first[b * np + p])).sum())
        .collect();
    let mut shares = vec![vec![0.0f64; np]; s.buckets];
    let mut last = vec![0.0; np];
    if np > 0 {
        last[0] = 1.0;
    }
    for (b, row) in shares.iter_mut().enumerate() {
        let (mut lo, mut hi) = (b, b);
        let mut total = totals[b];
        while total < 50 && hi - lo < 20 && (lo > 0 || hi + 1 < s.buckets) {
            if lo > 0 {
                lo -= 1;
                total += totals[lo];
            }
            if hi + 1 < s.buckets {
                hi += 1;
                total += totals[hi];
            }
        }
        if totals[b] > 0 && total > 0 {
            for (p, l) in last.iter_mut().enumerate() {
                let mine: u64 = (lo..=hi).map(|k| u64::from(s.first[k * np + p])).sum();
                *l = mine as f64 / total as f64;
            }
        }
        row.copy_from_slice(&last);
    }
    for p in 0..np {
        let mut d = String::new();
        let bw = s.bucket_ms;
        for (b, row) in shares.iter().enumerate() {
            let top: f64 = row[..=p].iter().sum();
            let (x0, x1) = (x(b as u64 * bw), x((b as u64 + 1) * bw));
            let y = y_share(top.min(1.0));
            let _ = write!(
                d,
                "{}{x0:.1},{y:.1} L{x1:.1},{y:.1} ",
                if b == 0 { "M" } else { "L" }
            );
        }
        for (b, row) in shares.iter().enumerate().rev() {
            let bottom: f64 = row[..p].iter().sum();
            let (x0, x1) = (x(b as u64 * bw), x((b as u64 + 1) * bw));
            let y = y_share(bottom.min(1.0));
            let _ = write!(d, "L{x1:.1},{y:.1} L{x0:.1},{y:.1} ");
        }
        let _ = writeln!(
            o,
            r##"<path class="share" data-provider="{}" d="{}Z" fill="{}" fill-opacity="0.85" stroke="none"><title>{}: share of requests</title></path>"##,
            esc(&r.names[p]),
            d.trim_end(),
            color(p),
            esc(&r.names[p])
        );
    }
    let _ = writeln!(
        o,
        r##"<rect x="{LEFT}" y="{share_top}" width="{pw}" height="{share_h}" fill="none" stroke="#999"/>"##
    );

    // Panel B: circuit states.
    let _ = writeln!(
        o,
        r##"<text x="{LEFT}" y="{:.1}" font-weight="bold" fill="#222">Circuit state</text>"##,
        band_top - 8.0
    );
    let mut kx = LEFT + 100.0;
    for (fill, label) in [
        (OPEN, "open"),
        (PROBING, "probing"),
        (RAMP, "ramping (darker = larger share)"),
        ("url(#hatch)", "throttled (429 / Retry-After)"),
    ] {
        let _ = writeln!(
            o,
            r##"<rect x="{kx:.1}" y="{:.1}" width="12" height="10" fill="{fill}" stroke="#999" stroke-width="0.5"/><text x="{:.1}" y="{:.1}" fill="#555" font-size="11">{label}</text>"##,
            band_top - 17.0,
            kx + 16.0,
            band_top - 8.0
        );
        kx += 34.0 + 6.4 * label.len() as f64;
    }
    for p in 0..np {
        let y = band_top + p as f64 * (band_h + band_gap);
        let _ = writeln!(
            o,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="{}" font-weight="bold">{}</text><rect x="{LEFT}" y="{y:.1}" width="{pw}" height="{band_h}" fill="#eef5ee"/>"##,
            LEFT - 6.0,
            y + band_h - 4.0,
            color(p),
            esc(&r.names[p])
        );
        let (segs, throttles) = segments(r, p, end);
        let _ = writeln!(
            o,
            r##"<g class="states" data-provider="{}">"##,
            esc(&r.names[p])
        );
        for sg in &segs {
            let (fill, opacity, what) = match sg.state {
                State::Open => (OPEN, 1.0, "open".to_string()),
                State::Probing => (PROBING, 1.0, "probing".to_string()),
                State::Ramping(share) => (
                    RAMP,
                    0.3 + 0.7 * f64::from(share) / 1e6,
                    format!("ramping at {:.0} %", f64::from(share) / 1e4),
                ),
                State::Healthy => continue,
            };
            let (x0, x1) = (x(sg.from), x(sg.to));
            let _ = writeln!(
                o,
                r##"<rect x="{x0:.2}" y="{y:.1}" width="{:.2}" height="{band_h}" fill="{fill}" fill-opacity="{opacity:.2}"><title>{}: {what} {}–{}</title></rect>"##,
                (x1 - x0).max(0.6),
                esc(&r.names[p]),
                clock(sg.from),
                clock(sg.to)
            );
        }
        for &(a, b) in &throttles {
            let (x0, x1) = (x(a), x(b));
            let _ = writeln!(
                o,
                r##"<rect x="{x0:.2}" y="{:.1}" width="{:.2}" height="{:.1}" fill="url(#hatch)"><title>{}: throttled {}–{}</title></rect>"##,
                y + band_h * 0.5,
                (x1 - x0).max(0.6),
                band_h * 0.5,
                esc(&r.names[p]),
                clock(a),
                clock(b)
            );
        }
        let _ = writeln!(o, "</g>");
    }

    // Transitions worth a line across the chart: a trip from healthy, a rollback, a recovery.
    let mut marks: Vec<(u64, String, &str, String)> = Vec::new();
    for e in &r.events {
        let p = e.provider.index();
        let (label, col) = match e.kind {
            EventKind::Opened { reason, .. } if reason.trigger == Trigger::RampRollback => {
                (format!("{} rolled back", r.names[p]), OPEN)
            }
            EventKind::Opened {
                from: failover_core::CircuitState::Healthy,
                ..
            } => (format!("{} opened", r.names[p]), OPEN),
            EventKind::Recovered => (format!("{} recovered", r.names[p]), RAMP),
            _ => continue,
        };
        marks.push((e.at_ms, label, col, describe(e)));
    }
    // Labels go on the first of three rows where they do not overlap an earlier one.
    let mut row_end = [f64::NEG_INFINITY; 3];
    for (at, label, col, why) in &marks {
        let mx = x(*at);
        let width = 6.2 * (label.chars().count() + 8) as f64;
        let row = (0..3).find(|&k| row_end[k] + 6.0 < mx).unwrap_or(0);
        row_end[row] = mx + width;
        let ty = share_top + 14.0 + 13.0 * row as f64;
        let anchor = if mx > W - RIGHT - 120.0 {
            "end"
        } else {
            "start"
        };
        let tx = if anchor == "end" { mx - 4.0 } else { mx + 4.0 };
        let _ = writeln!(
            o,
            r##"<g class="transition"><line x1="{mx:.1}" y1="{share_top}" x2="{mx:.1}" y2="{:.1}" stroke="{col}" stroke-width="1.2" stroke-dasharray="4 3"/><line x1="{mx:.1}" y1="{:.1}" x2="{mx:.1}" y2="{:.1}" stroke="{col}" stroke-width="1.2" stroke-dasharray="4 3"/><text x="{tx:.1}" y="{ty:.1}" text-anchor="{anchor}" font-size="11" fill="#222" stroke="#fff" stroke-width="3" paint-order="stroke">{} {}</text><title>{} {}: {}</title></g>"##,
            share_top + share_h,
            band_top - 3.0,
            band_top + bands_h,
            esc(&clock(*at)),
            esc(label),
            esc(&clock(*at)),
            esc(label),
            esc(why)
        );
    }

    // Panel C: error rate of each provider's answers.
    let source = if r.source_kind == "trace" {
        "as logged in the trace"
    } else {
        "from the fault model"
    };
    let _ = writeln!(
        o,
        r##"<text x="{LEFT}" y="{:.1}" font-weight="bold" fill="#222">Error rate of each provider<tspan dx="8" font-weight="normal" fill="#777">(share of its answers that fail, {source})</tspan></text>"##,
        err_top - 8.0
    );
    let y_err = |v: f64| err_top + err_h * (1.0 - v.clamp(0.0, 1.0));
    for g in [0.0, 0.5, 1.0] {
        let y = y_err(g);
        let _ = writeln!(
            o,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e5e5e5"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#777" font-size="11">{:.0} %</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            g * 100.0
        );
    }
    for p in 0..np {
        let mut d = String::new();
        let mut pen = false;
        for (b, v) in r.error_rates[p].iter().enumerate() {
            match v {
                Some(v) => {
                    let xm = x(b as u64 * s.bucket_ms + s.bucket_ms / 2);
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
            d.push_str(&format!("M{LEFT},{:.1}", y_err(0.0)));
        }
        let _ = writeln!(
            o,
            r##"<path class="error" data-provider="{}" d="{}" fill="none" stroke="{}" stroke-width="1.8" stroke-linejoin="round"><title>{}: error rate</title></path>"##,
            esc(&r.names[p]),
            d.trim_end(),
            color(p),
            esc(&r.names[p])
        );
    }
    let _ = writeln!(
        o,
        r##"<rect x="{LEFT}" y="{err_top}" width="{pw}" height="{err_h}" fill="none" stroke="#999"/>"##
    );

    // Time axis.
    let step = tick_step(end);
    let mut t = 0;
    while t <= end {
        let tx = x(t);
        let _ = writeln!(
            o,
            r##"<line x1="{tx:.1}" y1="{axis_y}" x2="{tx:.1}" y2="{:.1}" stroke="#999"/><text x="{tx:.1}" y="{:.1}" text-anchor="middle" fill="#555" font-size="11">{}</text><line x1="{tx:.1}" y1="{share_top}" x2="{tx:.1}" y2="{:.1}" stroke="#000" stroke-opacity="0.06"/>"##,
            axis_y + 5.0,
            axis_y + 18.0,
            clock(t),
            axis_y
        );
        t += step;
    }
    let _ = writeln!(
        o,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#777" font-size="11">time since the start (h:mm:ss){}</text>"##,
        LEFT + pw / 2.0,
        axis_y + 36.0,
        match r.start_unix_ms {
            Some(ms) => format!(", from {}", crate::report::utc(ms)),
            None => String::new(),
        }
    );
    o.push_str("</svg>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(esc("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
        assert_eq!(tick_step(4 * 3_600_000), 1_800_000);
    }
}
