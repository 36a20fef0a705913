//! `year --svg` / `--png`: the year as a readable overview (failed requests per day per strategy
//! on a log scale, every provider's incidents by kind) and the worst incidents zoomed in, each
//! with the outcome panels and the policy's circuit states of `charts.rs`.

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::charts::{
    Anchor, Canvas, GREY, ORANGE, PURPLE, Run, SKY, TimeAxis, VERMILLION, esc, outcome_panels,
    policy_block, provider_color, state_bands, strategy_style, text_width, thousands,
};
use crate::year::json::KEYS;

const W: f64 = 1000.0;
const LEFT: f64 = 96.0;
const RIGHT: f64 = 24.0;
/// Incidents zoomed in, at most.
const ZOOMS: usize = 3;

fn kind_color(k: Kind) -> &'static str {
    match k {
        Kind::Outage => VERMILLION,
        Kind::Errors => ORANGE,
        Kind::Latency => PURPLE,
        Kind::RateLimit => SKY,
        Kind::Hang => "#000000",
    }
}

/// `day 123 14:05`.
fn day_clock(t: u64) -> String {
    let s = (t % DAY_MS) / 1000;
    format!("day {} {:02}:{:02}", t / DAY_MS + 1, s / 3600, s / 60 % 60)
}

/// `14:05` (the day is in the panel's title).
fn hm(t: u64) -> String {
    let s = (t % DAY_MS) / 1000;
    format!("{:02}:{:02}", s / 3600, s / 60 % 60)
}

/// The windows to zoom into: the worst of naive failover, of the policy and of no failover (in
/// that order, each once), then the windows where no failover failed most, up to [`ZOOMS`].
fn zoomed(r: &YearReport) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    for k in [1, 2, 0] {
        if let Some((i, ..)) = r.strategies[k].1.worst
            && !out.contains(&i)
        {
            out.push(i);
        }
    }
    let nf = &r.strategies[0].1.windows;
    let mut by_failed: Vec<usize> = (0..nf.len()).collect();
    by_failed.sort_by_key(|&i| {
        std::cmp::Reverse(nf[i].failed.iter().map(|&n| u64::from(n)).sum::<u64>())
    });
    for i in by_failed {
        if out.len() >= ZOOMS {
            break;
        }
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out.truncate(ZOOMS);
    out
}

/// The chart as an SVG document.
#[must_use]
pub fn chart(r: &YearReport) -> String {
    let p = &r.plan;
    let s = &p.settings;
    let mut c = Canvas::new(W);
    c.text(
        LEFT,
        28.0,
        17.0,
        Anchor::Start,
        r##"font-weight="bold" fill="#222""##,
        &format!(
            "A year of incidents · seed {} · {} providers · {}/s · policy: {}",
            s.seed,
            p.model.providers.len(),
            s.rate_per_s,
            s.policy_label
        ),
    );
    let mut y = 50.0;
    for (key, (label, st)) in KEYS.iter().zip(&r.strategies) {
        let (col, _) = strategy_style(key);
        let text = format!(
            "{label}: {:.4} % available, {} requests failed, {:.1} h of downtime, {} wasted calls",
            st.availability() * 100.0,
            thousands(st.failed.round() as u64),
            st.down_minutes as f64 / 60.0,
            thousands(st.wasted.round() as u64)
        );
        c.text(
            LEFT,
            y,
            12.0,
            Anchor::Start,
            &format!(r#"fill="{col}" font-weight="bold""#),
            &text,
        );
        y += 16.0;
    }
    y += 4.0;
    let y = policy_block(
        &mut c,
        LEFT,
        y,
        &s.policy,
        &format!(
            "up to {} attempts per request; naive failover cools a provider down {} after {} failures in a row; downtime = minutes with ≥ 5 % failed",
            s.attempts,
            dur(s.naive_cooldown_ms),
            s.naive_fails
        ),
    );

    // Overview: failed requests per day, log scale.
    let top = y + 44.0;
    let h = 170.0;
    let ax = TimeAxis {
        t0: 0,
        t1: p.end,
        x0: LEFT,
        x1: W - RIGHT,
    };
    let max = r
        .strategies
        .iter()
        .flat_map(|(_, st)| st.daily_failed.iter().copied())
        .fold(1.0, f64::max);
    let decades = max.log10().ceil().max(1.0);
    let yv = |v: f64| top + h * (1.0 - ((1.0 + v).log10() / decades).min(1.0));
    let ticks: Vec<(f64, String)> = (0..=decades as i32)
        .map(|d| {
            (
                (f64::from(d)) / decades,
                crate::charts::short_num(10f64.powi(d) - if d == 0 { 1.0 } else { 0.0 }),
            )
        })
        .collect();
    crate::charts::frame(
        &mut c,
        &ax,
        top,
        h,
        "Failed requests per day",
        "log scale; each strategy on the same incidents and traffic",
        &ticks,
    );
    let days = (p.end / DAY_MS) as usize;
    let mut items = Vec::new();
    for (key, (label, st)) in KEYS.iter().zip(&r.strategies) {
        let (col, dash) = strategy_style(key);
        let mut d = String::new();
        for day in 0..days {
            let v = st.daily_failed.get(day).copied().unwrap_or(0.0);
            let (xa, xb) = (ax.x(day as u64 * DAY_MS), ax.x((day as u64 + 1) * DAY_MS));
            let yy = yv(v);
            let _ = write!(
                d,
                "{}{xa:.1},{yy:.1} L{xb:.1},{yy:.1} ",
                if day == 0 { "M" } else { "L" }
            );
        }
        c.raw(&format!(
            r#"<path class="daily" data-strategy="{key}" d="{}" fill="none" stroke="{col}" stroke-width="1.3" stroke-dasharray="{dash}"><title>{label}: failed requests per day</title></path>"#,
            d.trim_end()
        ));
        items.push((col, dash, *label));
    }
    c.legend(LEFT + 8.0, top + 16.0, &items);

    // Incidents per provider, by kind.
    let strip_top = top + h + 40.0;
    c.text(
        LEFT,
        strip_top - 8.0,
        12.0,
        Anchor::Start,
        r##"font-weight="bold" fill="#222""##,
        "Incidents",
    );
    let mut kx = LEFT + text_width("Incidents", 12.0) + 16.0;
    for k in Kind::ALL {
        c.raw(&format!(
            r#"<rect x="{kx:.1}" y="{:.1}" width="12" height="10" fill="{}"/>"#,
            strip_top - 17.0,
            kind_color(k)
        ));
        c.text(
            kx + 16.0,
            strip_top - 8.0,
            11.0,
            Anchor::Start,
            r##"fill="#555""##,
            k.label(),
        );
        kx += 30.0 + text_width(k.label(), 11.0);
    }
    let band = 14.0;
    for (pi, list) in p.incidents.iter().enumerate() {
        let yy = strip_top + pi as f64 * (band + 5.0);
        c.text(
            LEFT - 6.0,
            yy + band - 3.0,
            11.0,
            Anchor::End,
            &format!(r#"fill="{}" font-weight="bold""#, provider_color(pi)),
            &p.model.providers[pi].name,
        );
        let mut g = format!(
            r##"<g class="incidents" data-provider="{}"><rect x="{LEFT}" y="{yy:.1}" width="{:.1}" height="{band}" fill="#f2f2f2"/>"##,
            esc(&p.model.providers[pi].name),
            W - LEFT - RIGHT
        );
        for i in list {
            let (xa, xb) = (ax.x(i.fault.from), ax.x(i.fault.to));
            let _ = write!(
                g,
                r#"<rect x="{xa:.2}" y="{yy:.1}" width="{:.2}" height="{band}" fill="{}"><title>{} {} {}</title></rect>"#,
                (xb - xa).max(1.2),
                kind_color(i.kind),
                esc(i.kind.label()),
                day_clock(i.fault.from),
                dur(i.duration_ms())
            );
        }
        g.push_str("</g>");
        c.raw(&g);
    }
    let strip_bottom = strip_top + p.incidents.len() as f64 * (band + 5.0);
    let zooms = zoomed(r);
    // Letters over the zoomed windows.
    for (z, &i) in zooms.iter().enumerate() {
        let (a, b) = p.windows[i];
        let xm = ax.x(a + (b - a) / 2);
        let letter = ((b'A' + z as u8) as char).to_string();
        c.raw(&format!(
            r##"<line x1="{xm:.1}" y1="{top:.1}" x2="{xm:.1}" y2="{strip_bottom:.1}" stroke="#222" stroke-width="0.8" stroke-dasharray="2 2"/>"##
        ));
        for dy in [0.0, 12.0, 24.0] {
            if c.text(
                xm,
                top - 2.0 - dy,
                11.0,
                Anchor::Middle,
                r##"font-weight="bold" fill="#222" class="zoom-mark""##,
                &letter,
            ) {
                break;
            }
        }
    }
    let axis_y = strip_bottom + 4.0;
    ax.draw(&mut c, top, axis_y, &|t| format!("day {}", t / DAY_MS + 1));

    // The zoomed windows.
    let mut top = axis_y + 70.0;
    for (z, &i) in zooms.iter().enumerate() {
        let (a, b) = p.windows[i];
        let what = p.incidents_in(a, b);
        let letter = (b'A' + z as u8) as char;
        c.text(
            LEFT,
            top,
            14.0,
            Anchor::Start,
            r##"font-weight="bold" fill="#222" class="zoom-title""##,
            &format!("{letter} · {} – {}", day_clock(a), day_clock(b)),
        );
        let mut line = String::new();
        let mut ly = top + 16.0;
        for w in &what {
            let next = if line.is_empty() {
                w.clone()
            } else {
                format!("{line}; {w}")
            };
            if text_width(&next, 11.0) > W - LEFT - RIGHT && !line.is_empty() {
                c.text(LEFT, ly, 11.0, Anchor::Start, r##"fill="#444""##, &line);
                ly += 14.0;
                line = w.clone();
            } else {
                line = next;
            }
        }
        if !line.is_empty() {
            c.text(LEFT, ly, 11.0, Anchor::Start, r##"fill="#444""##, &line);
        }
        let zax = TimeAxis {
            t0: a,
            t1: b,
            x0: LEFT,
            x1: W - RIGHT,
        };
        let first = ly + 44.0;
        let runs: Vec<Run> = KEYS
            .iter()
            .zip(&r.strategies)
            .map(|(key, (label, st))| Run {
                key,
                label,
                series: &st.windows[i],
            })
            .collect();
        let panels_top = first;
        let bottom = outcome_panels(&mut c, &zax, panels_top, &runs, 0, runs[0].series.buckets);
        let names: Vec<String> = p.model.providers.iter().map(|m| m.name.clone()).collect();
        let below = state_bands(&mut c, &zax, bottom, &names, &r.events, panels_top, &|t| {
            day_clock(t)
        });
        zax.draw(&mut c, panels_top, below, &hm);
        top = below + 70.0;
    }
    c.text(
        LEFT,
        top - 30.0,
        11.0,
        Anchor::Start,
        &format!(r#"fill="{GREY}""#),
        "Zoomed windows are simulated request by request (5 min before to 45 min after the primary's incidents); the rest of the year in aggregate.",
    );
    c.finish(top - 10.0, &format!("failover-sim year · seed {}", s.seed))
}
