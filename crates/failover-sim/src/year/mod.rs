//! The year mode (`failover-sim year`): a seeded, deterministic year of provider incidents, and
//! what no failover, naive failover and the policy make of it.
//!
//! # The incident model
//!
//! Calibrated on the measurement study of OpenAI and Anthropic incidents by Chu et al. (ICPE 2025,
//! arXiv 2501.12469, as summarised in the project's DOMAIN.md): mean daily availability around
//! 99.8–99.9 %, incidents every few days per service, heavy-tailed durations (a median under an
//! hour, a mean of a few hours; the study's samples run 37–168 minutes), weekly periodicity (more
//! incidents on weekdays) and correlated incidents across one provider's services. The figures
//! below are this simulator's calibration to those findings, not numbers read off the paper:
//!
//! - **Frequency**: one incident every [`MEAN_DAYS_BETWEEN`] days per provider on average,
//!   follow-ups included (about 73 a year).
//! - **Weekday bias**: a weekend day gets [`WEEKEND_WEIGHT`] of a weekday's incidents.
//! - **Correlation**: with probability [`FOLLOW_UP_P`] an incident is followed, within
//!   [`FOLLOW_UP_WITHIN_MS`], by another one of the same provider (another of its services or
//!   components failing: a fresh kind and duration). Providers fail independently of each other.
//! - **Durations**: log-normal with a median of [`DURATION_MEDIAN_MIN`] minutes and sigma
//!   [`DURATION_SIGMA`] (a mean of about 1 h 20 min; 1 in 10 lasts over 3 h), clamped to
//!   5 min – 12 h. The study's means are longer (a few hours); a longer tail would put most
//!   years above 44 hours of downtime, so the calibration keeps the median and the availability
//!   band and shortens the tail.
//! - **Kinds** (shares): hard outage 1/6 (5xx or connection errors on 95–100 % of calls); elevated
//!   error rate 1/3 (5xx on 0.3–8 % of calls, log-uniform); latency degradation 1/4 (median and
//!   p99 ×1.5–×6, log-uniform: slow calls, a few past the caller's 30 s timeout); 429 storm 1/6
//!   (429 on 0.5–15 % of calls, `Retry-After` 5–60 s); silent hang 1/12 (0.5–10 % of calls hang
//!   until the caller's timeout). Everything but the hard outage is partial.
//! - **Providers**: 2–4 (default 2), latency medians 0.9–1.3 s with p99 6–8 s, a background 5xx
//!   rate of 0.05 %, a caller timeout of 30 s.
//! - **Traffic**: Poisson arrivals at 20 requests/s on average with a daily cycle (×0.4 at 03:00
//!   UTC, ×1.6 at 15:00 UTC). The year starts on a Monday, 00:00 UTC.
//!
//! With this calibration each provider alone is available 99.5–99.9 % of a year, with 9–44 hours
//! of user-visible downtime (minutes in which at least 5 % of requests failed): seeds 1–11 and
//! the default 2025 all land in both bands for all three providers (99.60–99.89 %, 13–37 h), with
//! 49–95 incidents and medians of 24–53 minutes. The tests check it for the default seed.
//!
//! # How the year is simulated
//!
//! Request by request through the core, where it matters: every incident of the primary, from
//! [`BEFORE_MS`] before it starts to [`AFTER_MS`] after it ends (time for the policy's probes and
//! ramp to bring the primary back), windows that overlap merged. Every provider's incidents that
//! overlap a window are in it. The same three strategy objects (and so the same engine) run through
//! every window in order; between windows the engine sees no outcome, and its timers due in the gap
//! run at their own times (`handle_timeout`) before the window's first request.
//!
//! Quiet periods (everything outside the windows) in aggregate: the expected number of requests
//! (the daily cycle's integral) is sent to the primary; a fraction equal to the primary's failure
//! probability fails (its background rate, since its incidents are all inside windows). No
//! failover stops there. Naive failover and the policy retry that fraction on the next provider,
//! which fails with its own failure probability at that time (its incidents included), and so on
//! within the attempt budget. Their circuits never trip on a 0.05 % background, so no time is spent
//! on fallbacks there, and no minute of a quiet period reaches 5 % failed. Counts are rounded at
//! the end.
//!
//! # Outputs
//!
//! The text report (`render.rs`), the same figures as JSON (`--json`, `json.rs`), two policies on
//! the same year side by side (`--compare A B`, `json.rs`), and a chart (`--svg`/`--png`,
//! `chart.rs`): failed requests per day per strategy, every incident by kind, and the worst
//! incidents zoomed in from the windows' one-minute series.
//!
//! Each provider's standalone figures (availability and downtime if it alone took all the traffic)
//! are computed the same statistical way over the whole year, minute by minute of expected failure
//! probability, so that all providers can be compared; the no-failover column is the simulated
//! counterpart for the primary.

use std::fmt::Write as _;

use failover_core::{DefaultRouter, OutcomeKind, Policy};

use crate::faults::{Fault, FaultModel, Latency, ProviderModel, Traffic};
use crate::input::{InputError, dur};
use crate::progress::Progress;
use crate::report::{policy_summary, thousands};
use crate::rng::{Rng, mix};
use crate::run::{Naive, NoFailover, Options, PolicyStrategy, RunStats, Series, Strategy, run};

/// A day, ms.
pub const DAY_MS: u64 = 86_400_000;

mod chart;
mod json;
mod render;

pub use chart::chart;
pub use json::{compare_json, compare_text, report_json};
pub use render::render;

const HOUR_MS: u64 = 3_600_000;
const MINUTE_MS: u64 = 60_000;
/// Mean days between two incidents of one provider (follow-ups included).
pub const MEAN_DAYS_BETWEEN: f64 = 5.0;
/// A weekend day's incident rate relative to a weekday's.
pub const WEEKEND_WEIGHT: f64 = 0.5;
/// Probability that an incident has a correlated follow-up on the same provider.
pub const FOLLOW_UP_P: f64 = 0.25;
/// A follow-up starts within this long after its incident starts, ms.
pub const FOLLOW_UP_WITHIN_MS: u64 = 3 * HOUR_MS;
/// Median incident duration, minutes.
pub const DURATION_MEDIAN_MIN: f64 = 35.0;
/// Log-normal sigma of incident durations.
pub const DURATION_SIGMA: f64 = 1.3;
/// Simulated request by request from this long before a primary incident, ms.
pub const BEFORE_MS: u64 = 5 * MINUTE_MS;
/// ... to this long after it, ms.
pub const AFTER_MS: u64 = 45 * MINUTE_MS;
/// Daily cycle amplitude: the rate swings between ×(1 − A) and ×(1 + A).
const CYCLE: f64 = 0.6;
/// Hour (UTC) of the daily peak.
const PEAK_HOUR: u64 = 15;
/// Background 5xx rate of every provider.
const BACKGROUND: f64 = 0.0005;
const TIMEOUT_MS: u64 = 30_000;
/// A minute counts as downtime when at least this fraction of its requests failed.
pub const DOWN_FRACTION: f64 = 0.05;

const NAMES: [&str; 4] = ["primary", "secondary", "tertiary", "quaternary"];
const LATENCY: [(f64, f64); 4] = [
    (900.0, 6000.0),
    (1100.0, 7000.0),
    (1300.0, 8000.0),
    (1000.0, 7000.0),
];

/// What the user asked for.
#[derive(Clone, Debug)]
pub struct YearSettings {
    /// Seed of the incidents, the traffic and the answers.
    pub seed: u64,
    /// Providers, 2 to 4.
    pub providers: usize,
    /// Average requests per second.
    pub rate_per_s: f64,
    /// Days simulated (365 for a year).
    pub days: u64,
    /// The policy run, and its label.
    pub policy: Policy,
    /// `default` or the policy file.
    pub policy_label: String,
    /// Attempts per request.
    pub attempts: u32,
    /// Naive baseline: failures in a row that start a cooldown.
    pub naive_fails: u32,
    /// Naive baseline: cooldown, ms.
    pub naive_cooldown_ms: u64,
    /// No progress on stderr.
    pub quiet: bool,
}

impl YearSettings {
    /// The default year with `seed`.
    #[must_use]
    pub fn default_with_seed(seed: u64) -> YearSettings {
        YearSettings {
            seed,
            providers: 2,
            rate_per_s: 20.0,
            days: 365,
            policy: Policy::default(),
            policy_label: "default".to_string(),
            attempts: 3,
            naive_fails: 3,
            naive_cooldown_ms: 60_000,
            quiet: true,
        }
    }
}

/// The default seed.
pub const DEFAULT_SEED: u64 = 2025;

/// The kinds of incident.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// 5xx or connection errors on nearly every call.
    Outage,
    /// 5xx on a fraction of calls.
    Errors,
    /// Slow calls (and timeouts).
    Latency,
    /// 429s with Retry-After.
    RateLimit,
    /// Calls that hang until the caller's timeout.
    Hang,
}

impl Kind {
    const ALL: [Kind; 5] = [
        Kind::Outage,
        Kind::Errors,
        Kind::Latency,
        Kind::RateLimit,
        Kind::Hang,
    ];

    fn label(self) -> &'static str {
        match self {
            Kind::Outage => "hard outage",
            Kind::Errors => "elevated errors",
            Kind::Latency => "latency",
            Kind::RateLimit => "429 storm",
            Kind::Hang => "silent hang",
        }
    }
}

/// One generated incident.
#[derive(Clone, Debug)]
pub struct Incident {
    /// Its kind.
    pub kind: Kind,
    /// The fault it injects.
    pub fault: Fault,
}

impl Incident {
    /// Duration, ms.
    #[must_use]
    pub fn duration_ms(&self) -> u64 {
        self.fault.to - self.fault.from
    }
}

fn log_uniform(rng: &mut Rng, lo: f64, hi: f64) -> f64 {
    (lo.ln() + rng.f64() * (hi.ln() - lo.ln())).exp()
}

fn make_incident(rng: &mut Rng, provider: usize, from: u64, end: u64) -> Incident {
    let u = rng.f64();
    let kind = if u < 1.0 / 6.0 {
        Kind::Outage
    } else if u < 0.5 {
        Kind::Errors
    } else if u < 0.75 {
        Kind::Latency
    } else if u < 11.0 / 12.0 {
        Kind::RateLimit
    } else {
        Kind::Hang
    };
    let minutes = (DURATION_MEDIAN_MIN * (DURATION_SIGMA * rng.normal()).exp()).clamp(5.0, 720.0);
    let to = (from + (minutes * MINUTE_MS as f64) as u64).min(end);
    let (median, p99) = LATENCY[provider];
    let mut fault = Fault {
        from,
        to,
        kind: None,
        rate: 1.0,
        retry_after: None,
        latency: None,
        note: Some(kind.label().to_string()),
    };
    match kind {
        Kind::Outage => {
            fault.kind = Some(if rng.f64() < 2.0 / 3.0 {
                OutcomeKind::ServerError
            } else {
                OutcomeKind::ConnectionError
            });
            fault.rate = 0.95 + 0.05 * rng.f64();
        }
        Kind::Errors => {
            fault.kind = Some(OutcomeKind::ServerError);
            fault.rate = log_uniform(rng, 0.003, 0.08);
        }
        Kind::Latency => {
            let x = log_uniform(rng, 1.5, 6.0);
            fault.latency = Some(latency(median * x, p99 * x));
        }
        Kind::RateLimit => {
            fault.kind = Some(OutcomeKind::RateLimited);
            fault.rate = log_uniform(rng, 0.005, 0.15);
            fault.retry_after = Some((5_000, 60_000));
        }
        Kind::Hang => {
            fault.kind = Some(OutcomeKind::Timeout);
            fault.rate = log_uniform(rng, 0.005, 0.10);
        }
    }
    Incident { kind, fault }
}

fn latency(median: f64, p99: f64) -> Latency {
    Latency {
        median,
        sigma: (p99 / median).ln() / 2.326_3,
    }
}

/// Whether `t` falls on a weekend (the year starts on a Monday).
fn weekend(t: u64) -> bool {
    (t / DAY_MS) % 7 >= 5
}

/// Every provider's incidents, sorted by start.
#[must_use]
pub fn incidents(seed: u64, providers: usize, end: u64) -> Vec<Vec<Incident>> {
    let mean_weight = (5.0 + 2.0 * WEEKEND_WEIGHT) / 7.0;
    // Candidate starts before thinning by weekday, per ms.
    let per_ms = 1.0 / (MEAN_DAYS_BETWEEN * DAY_MS as f64) / (1.0 + FOLLOW_UP_P) / mean_weight;
    (0..providers)
        .map(|p| {
            let mut rng = Rng::keyed(&[seed, 0x1C1D_E575, p as u64]);
            let mut out = Vec::new();
            let mut t = 0f64;
            loop {
                t += rng.exp(1.0 / per_ms);
                if t >= end as f64 {
                    break;
                }
                let at = t as u64;
                let keep = if weekend(at) { WEEKEND_WEIGHT } else { 1.0 };
                if rng.f64() >= keep {
                    continue;
                }
                out.push(make_incident(&mut rng, p, at, end));
                if rng.f64() < FOLLOW_UP_P {
                    let f = at + rng.range(5 * MINUTE_MS, FOLLOW_UP_WITHIN_MS);
                    if f < end {
                        out.push(make_incident(&mut rng, p, f, end));
                    }
                }
            }
            out.sort_by_key(|i| i.fault.from);
            out
        })
        .collect()
}

/// The traffic rate at `t`, requests per ms.
fn rate_at(avg_per_s: f64, t: u64) -> f64 {
    let theta = std::f64::consts::TAU * ((t + DAY_MS - PEAK_HOUR * HOUR_MS) % DAY_MS) as f64
        / DAY_MS as f64;
    avg_per_s / 1000.0 * (1.0 + CYCLE * theta.cos())
}

/// Expected requests in `[a, b)`: the daily cycle's integral.
fn expected(avg_per_s: f64, a: u64, b: u64) -> f64 {
    let w = std::f64::consts::TAU / DAY_MS as f64;
    let th = |t: u64| w * (t as f64 - (PEAK_HOUR * HOUR_MS) as f64);
    avg_per_s / 1000.0 * ((b - a) as f64 + CYCLE / w * (th(b).sin() - th(a).sin()))
}

/// Poisson arrivals in `[a, b)` (thinning at the daily peak's rate).
fn arrivals(seed: u64, avg_per_s: f64, a: u64, b: u64) -> Vec<u64> {
    let mut rng = Rng::keyed(&[seed, 0xA881_7A15, a]);
    let max = avg_per_s / 1000.0 * (1.0 + CYCLE);
    let mut out = Vec::with_capacity(expected(avg_per_s, a, b) as usize + 16);
    let mut t = a as f64;
    loop {
        t += rng.exp(1.0 / max);
        if t >= b as f64 {
            break;
        }
        if rng.f64() * max < rate_at(avg_per_s, t as u64) {
            out.push(t as u64);
        }
    }
    out
}

/// Probability that a call to `m` at `t` fails (as [`FaultModel`] answers it).
fn failure_p(m: &ProviderModel, t: u64) -> f64 {
    let mut ok = 1.0 - m.error_rate;
    let mut lat = m.latency;
    for f in &m.faults {
        if f.from > t {
            break;
        }
        if t < f.to {
            if let Some(l) = f.latency {
                lat = l;
            }
            if f.kind.is_some() {
                ok *= 1.0 - f.rate;
            }
        }
    }
    1.0 - ok * (1.0 - lat.tail(TIMEOUT_MS as f64))
}

/// One strategy's year.
#[derive(Clone, Debug, Default)]
pub struct YearStats {
    /// Requests offered.
    pub requests: f64,
    /// Requests failed.
    pub failed: f64,
    /// Calls that served no request (failed attempts, health checks).
    pub wasted: f64,
    /// Minutes in which at least 5 % of requests failed.
    pub down_minutes: u64,
    /// Minutes on fallbacks, weighted by the share of requests sent first to a fallback.
    pub fallback_minutes: f64,
    /// The window with the most failed requests: (window index, failed, downtime minutes).
    pub worst: Option<(usize, u64, u64)>,
    /// Windows whose last minute still sent requests first to a fallback (the aggregate that
    /// follows assumes the primary takes everything again).
    pub unsettled: usize,
    /// Requests failed per day of the year (windows counted minute by minute, quiet periods in
    /// aggregate), for the overview chart.
    pub daily_failed: Vec<f64>,
    /// Each window's series (one-minute buckets), in window order, for the zoomed charts.
    pub windows: Vec<Series>,
}

impl YearStats {
    /// Served / offered.
    #[must_use]
    pub fn availability(&self) -> f64 {
        if self.requests == 0.0 {
            1.0
        } else {
            1.0 - self.failed / self.requests
        }
    }

    fn add_day(&mut self, t: u64, failed: f64) {
        let d = (t / DAY_MS) as usize;
        if self.daily_failed.len() <= d {
            self.daily_failed.resize(d + 1, 0.0);
        }
        self.daily_failed[d] += failed;
    }

    fn add_window(&mut self, i: usize, st: RunStats) {
        self.requests += st.requests as f64;
        self.failed += st.failed as f64;
        self.wasted += (st.attempts + st.health_checks).saturating_sub(st.served) as f64;
        let s = &st.series;
        let mut down = 0;
        for b in 0..s.buckets {
            let req = s.requests[b];
            if req == 0 {
                continue;
            }
            if f64::from(s.failed[b]) >= DOWN_FRACTION * f64::from(req) {
                down += 1;
            }
            let off: u32 = (1..s.providers).map(|p| s.first[b * s.providers + p]).sum();
            self.fallback_minutes +=
                f64::from(off) / f64::from(req) * s.bucket_ms as f64 / MINUTE_MS as f64;
        }
        self.down_minutes += down;
        if s.buckets > 0 {
            let b = s.buckets - 1;
            if (1..s.providers).any(|p| s.first[b * s.providers + p] > 0) {
                self.unsettled += 1;
            }
        }
        if st.failed > 0 && self.worst.is_none_or(|(_, f, _)| st.failed > f) {
            self.worst = Some((i, st.failed, down));
        }
        for b in 0..s.buckets {
            if s.failed[b] > 0 {
                self.add_day(s.origin + b as u64 * s.bucket_ms, f64::from(s.failed[b]));
            }
        }
        self.windows.push(st.series);
    }
}

/// A provider's year on its own.
#[derive(Clone, Debug, Default)]
pub struct Alone {
    /// Incidents by kind (in [`Kind::ALL`] order).
    pub by_kind: [usize; 5],
    /// Incident durations, ms, sorted.
    pub durations: Vec<u64>,
    /// Availability if it alone took all the traffic.
    pub availability: f64,
    /// Hours in which at least 5 % of its calls would fail.
    pub down_hours: f64,
}

impl Alone {
    /// Number of incidents.
    #[must_use]
    pub fn count(&self) -> usize {
        self.durations.len()
    }

    /// Median duration, ms.
    #[must_use]
    pub fn median_ms(&self) -> u64 {
        let n = self.durations.len();
        match n {
            0 => 0,
            _ if n % 2 == 1 => self.durations[n / 2],
            _ => (self.durations[n / 2 - 1] + self.durations[n / 2]) / 2,
        }
    }

    /// Mean duration, ms.
    #[must_use]
    pub fn mean_ms(&self) -> u64 {
        if self.durations.is_empty() {
            0
        } else {
            self.durations.iter().sum::<u64>() / self.durations.len() as u64
        }
    }
}

/// The generated year, before any request is simulated.
pub struct Plan {
    /// The settings.
    pub settings: YearSettings,
    /// The year's end, ms.
    pub end: u64,
    /// The whole year as a fault model.
    pub model: FaultModel,
    /// Incidents per provider.
    pub incidents: Vec<Vec<Incident>>,
    /// Windows simulated request by request, `[from, to)`, sorted and disjoint.
    pub windows: Vec<(u64, u64)>,
    /// Each provider alone.
    pub alone: Vec<Alone>,
    /// Expected requests of the year.
    pub expected_requests: f64,
}

impl Plan {
    /// Every incident that overlaps `[a, b)`, as "provider kind duration" (for the window labels
    /// of the text report and the chart).
    #[must_use]
    pub fn incidents_in(&self, a: u64, b: u64) -> Vec<String> {
        let mut what = Vec::new();
        for (pi, list) in self.incidents.iter().enumerate() {
            for inc in list.iter().filter(|x| x.fault.from < b && x.fault.to > a) {
                what.push(format!(
                    "{} {} {}",
                    self.model.providers[pi].name,
                    inc.kind.label(),
                    dur(inc.duration_ms())
                ));
            }
        }
        what
    }
}

/// Generates the year's incidents, windows and standalone figures.
#[must_use]
pub fn plan(settings: &YearSettings) -> Plan {
    let end = settings.days * DAY_MS;
    let incidents = incidents(settings.seed, settings.providers, end);
    let providers: Vec<ProviderModel> = (0..settings.providers)
        .map(|p| ProviderModel {
            name: NAMES[p].to_string(),
            latency: latency(LATENCY[p].0, LATENCY[p].1),
            error_rate: BACKGROUND,
            faults: incidents[p].iter().map(|i| i.fault.clone()).collect(),
        })
        .collect();
    let traffic = Traffic {
        rate_per_s: settings.rate_per_s,
        poisson: true,
        periodic: None,
        bursts: Vec::new(),
    };
    let model = FaultModel::from_parts(
        "a year of incidents",
        settings.seed,
        end,
        TIMEOUT_MS,
        traffic,
        providers,
    );
    let mut windows: Vec<(u64, u64)> = Vec::new();
    for i in &incidents[0] {
        let a = i.fault.from.saturating_sub(BEFORE_MS) / MINUTE_MS * MINUTE_MS;
        let b = ((i.fault.to + AFTER_MS).div_ceil(MINUTE_MS) * MINUTE_MS).min(end);
        match windows.last_mut() {
            Some(w) if a <= w.1 => w.1 = w.1.max(b),
            _ => windows.push((a, b)),
        }
    }
    // Standalone figures, minute by minute (failure probabilities change only at minute
    // boundaries or inside one minute at an incident's edge; the minute's midpoint decides).
    let mut alone: Vec<Alone> = incidents
        .iter()
        .map(|list| {
            let mut a = Alone::default();
            for i in list {
                let k = Kind::ALL.iter().position(|&k| k == i.kind).unwrap_or(0);
                a.by_kind[k] += 1;
                a.durations.push(i.duration_ms());
            }
            a.durations.sort_unstable();
            a
        })
        .collect();
    let expected_requests = expected(settings.rate_per_s, 0, end);
    for (p, a) in alone.iter_mut().enumerate() {
        let m = &model.providers[p];
        // Outside incidents: the background only.
        let bg = failure_p(m, end);
        let mut failed = bg * expected_requests;
        let mut down = 0u64;
        // Minutes touched by an incident, each once.
        let mut last_minute = None;
        for f in &m.faults {
            let first = (f.from / MINUTE_MS).max(last_minute.map_or(0, |l: u64| l + 1));
            let last = (f.to - 1) / MINUTE_MS;
            for minute in first..=last {
                let t0 = minute * MINUTE_MS;
                let t1 = (t0 + MINUTE_MS).min(end);
                let pf = failure_p(m, t0 + (t1 - t0) / 2);
                failed += (pf - bg) * expected(settings.rate_per_s, t0, t1);
                if pf >= DOWN_FRACTION {
                    down += 1;
                }
            }
            last_minute = Some(last_minute.map_or(last, |l: u64| l.max(last)));
        }
        a.availability = 1.0 - failed / expected_requests;
        a.down_hours = down as f64 / 60.0;
    }
    Plan {
        settings: settings.clone(),
        end,
        model,
        incidents,
        windows,
        alone,
        expected_requests,
    }
}

/// A simulated year.
pub struct YearReport {
    /// What was generated.
    pub plan: Plan,
    /// Requests simulated one by one (per strategy).
    pub simulated_requests: u64,
    /// No failover, naive failover, the policy.
    pub strategies: [(&'static str, YearStats); 3],
    /// The policy's transitions (events) over the year, in order.
    pub events: Vec<failover_core::Event>,
}

/// Quiet-period accounting of one strategy over `[a, b)` (no primary incident inside).
fn quiet(plan: &Plan, st: &mut YearStats, retries: bool, a: u64, b: u64) {
    if b <= a {
        return;
    }
    let s = &plan.settings;
    // Split at the other providers' incident edges: failure probabilities are constant between.
    let mut cuts = vec![a, b];
    // And at midnights, for the daily figures.
    cuts.extend((a / DAY_MS + 1..=b.saturating_sub(1) / DAY_MS).map(|d| d * DAY_MS));
    for p in 1..plan.model.providers.len() {
        for f in &plan.model.providers[p].faults {
            for t in [f.from, f.to] {
                if t > a && t < b {
                    cuts.push(t);
                }
            }
        }
    }
    cuts.sort_unstable();
    cuts.dedup();
    for w in cuts.windows(2) {
        let (x, y) = (w[0], w[1]);
        let n = expected(s.rate_per_s, x, y);
        let mid = x + (y - x) / 2;
        st.requests += n;
        let tries = if retries {
            (s.attempts as usize).min(plan.model.providers.len())
        } else {
            1
        };
        let mut left = n;
        for p in 0..tries {
            left *= failure_p(&plan.model.providers[p], mid);
            st.wasted += left;
        }
        st.failed += left;
        st.add_day(x, left);
    }
}

fn run_window<S: Strategy>(
    plan: &Plan,
    world: &FaultModel,
    arrivals: &[u64],
    i: usize,
    s: &mut S,
    st: &mut YearStats,
    progress: &mut Progress,
) {
    let (a, b) = plan.windows[i];
    let opt = Options {
        attempts: plan.settings.attempts,
        bucket_ms: MINUTE_MS,
        start_ms: a,
        end_ms: b,
    };
    let r = run(world, arrivals, s, opt, progress);
    st.add_window(i, r);
}

/// Simulates the year.
pub fn simulate(settings: &YearSettings) -> Result<YearReport, InputError> {
    let plan = plan(settings);
    let names: Vec<&str> = plan
        .model
        .providers
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    let router = DefaultRouter::new(&settings.policy, &names)
        .map_err(|e| InputError::file(&settings.policy_label, e.to_string()))?;
    let mut progress = Progress::new(true);
    let mut stats: [YearStats; 3] = Default::default();
    let mut nf = NoFailover;
    let mut naive = Naive::new(
        names.len(),
        settings.naive_fails,
        settings.naive_cooldown_ms,
    );
    let mut ps = PolicyStrategy::new(Box::new(router));
    let mut simulated = 0u64;
    let mut prev = 0u64;
    for (i, &(a, b)) in plan.windows.iter().enumerate() {
        for (k, st) in stats.iter_mut().enumerate() {
            quiet(&plan, st, k > 0, prev, a);
        }
        prev = b;
        // The window's world: its faults only, with a seed of its own.
        let mut world = plan.model.clone();
        world.seed = mix(settings.seed ^ a);
        for p in &mut world.providers {
            p.faults.retain(|f| f.from < b && f.to > a);
        }
        let arr = arrivals(settings.seed, settings.rate_per_s, a, b);
        simulated += arr.len() as u64;
        run_window(
            &plan,
            &world,
            &arr,
            i,
            &mut nf,
            &mut stats[0],
            &mut progress,
        );
        run_window(
            &plan,
            &world,
            &arr,
            i,
            &mut naive,
            &mut stats[1],
            &mut progress,
        );
        run_window(
            &plan,
            &world,
            &arr,
            i,
            &mut ps,
            &mut stats[2],
            &mut progress,
        );
    }
    for (k, st) in stats.iter_mut().enumerate() {
        quiet(&plan, st, k > 0, prev, plan.end);
    }
    let [s0, s1, s2] = stats;
    Ok(YearReport {
        simulated_requests: simulated,
        strategies: [("no failover", s0), ("naive failover", s1), ("policy", s2)],
        events: ps.events,
        plan,
    })
}

#[cfg(test)]
mod tests;
