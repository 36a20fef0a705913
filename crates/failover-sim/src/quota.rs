//! `failover-sim quota`: a per-minute quota fault model, and what pacing from the rate-limit
//! headers does with it.
//!
//! Each provider has a quota of requests and of tokens per minute, on a fixed one-minute window
//! (reset at each whole minute). A call within the quota succeeds and uses one request and its
//! tokens; a call beyond it answers 429, without `Retry-After` by default (OpenAI's request
//! limits often send none; `--retry-after` sends the time to the reset). Every answer, success or
//! 429, carries OpenAI's `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` headers, as text,
//! read by the core's `Headroom`.
//!
//! The same arrivals (Poisson, each with its token count) and the same quotas run twice through
//! the real engine with the same policy: once feeding every answer's headers to
//! `Router::observe_headroom` (pacing), once not. A request makes up to `attempts` attempts, each
//! on another provider; it fails when they all answer 429 or no provider can take it.

use std::fmt::Write as _;

use failover_core::{
    DefaultRouter, EventKind, Headroom, Outcome, OutcomeKind, PickRequest, Policy, ProviderSet,
};

use crate::rng::Rng;

/// One provider's per-minute quota.
#[derive(Clone, Debug)]
pub struct Quota {
    /// Its name.
    pub name: String,
    /// Requests per minute.
    pub requests: u64,
    /// Tokens per minute.
    pub tokens: u64,
}

/// The model: providers in priority order, traffic and the attempt budget.
#[derive(Clone, Debug)]
pub struct QuotaModel {
    /// Providers and their quotas, in priority order.
    pub providers: Vec<Quota>,
    /// Average arrivals per second (Poisson).
    pub rate_per_s: f64,
    /// Simulated minutes.
    pub minutes: u64,
    /// Tokens per request, uniform in this range.
    pub tokens: (u64, u64),
    /// Attempts per request, each on another provider.
    pub attempts: u32,
    /// Whether a 429 carries `Retry-After` (the time to the reset).
    pub retry_after: bool,
    /// Seed of the arrivals and token counts.
    pub seed: u64,
}

impl Default for QuotaModel {
    fn default() -> Self {
        QuotaModel {
            providers: vec![
                Quota {
                    name: "primary".into(),
                    requests: 500,
                    tokens: 500_000,
                },
                Quota {
                    name: "secondary".into(),
                    requests: 300,
                    tokens: 300_000,
                },
            ],
            rate_per_s: 10.0,
            minutes: 30,
            tokens: (200, 2_000),
            attempts: 2,
            retry_after: false,
            seed: 17,
        }
    }
}

/// What one run gave.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QuotaStats {
    /// Requests offered.
    pub requests: u64,
    /// Requests that got no answer (every attempt 429, or no provider).
    pub failed: u64,
    /// Calls answered 429.
    pub rate_limited: u64,
    /// Calls made.
    pub calls: u64,
    /// Successful calls per provider.
    pub served: Vec<u64>,
    /// 429s per provider.
    pub limited: Vec<u64>,
    /// Times a provider started being paced.
    pub paced: u64,
    /// Times a provider was throttled after a 429.
    pub throttled: u64,
}

/// A provider's use of its current minute.
#[derive(Clone, Copy, Default)]
struct Used {
    minute: u64,
    requests: u64,
    tokens: u64,
}

/// Runs the model once, with or without pacing.
///
/// # Errors
/// When the policy or the provider names are refused by the core.
pub fn run(model: &QuotaModel, policy: &Policy, pacing: bool) -> Result<QuotaStats, String> {
    let names: Vec<&str> = model.providers.iter().map(|q| q.name.as_str()).collect();
    let mut router: Box<DefaultRouter> =
        Box::new(DefaultRouter::new(policy, &names).map_err(|e| e.to_string())?);
    let n = names.len();
    let mut used = vec![Used::default(); n];
    let mut stats = QuotaStats {
        served: vec![0; n],
        limited: vec![0; n],
        ..QuotaStats::default()
    };
    let mut rng = Rng::keyed(&[model.seed, 0x0009_007a]);
    let end = model.minutes.saturating_mul(60_000);
    let mut t = 0.0f64;
    loop {
        t += rng.exp(1000.0 / model.rate_per_s);
        let now = t as u64;
        if now >= end {
            break;
        }
        let tokens = rng.range(model.tokens.0, model.tokens.1);
        stats.requests += 1;
        let mut tried = ProviderSet::new();
        let mut ok = false;
        for _ in 0..model.attempts {
            let Ok(ticket) = router.pick_with(now, &PickRequest { key: None, tried }) else {
                break;
            };
            let i = ticket.provider.index();
            tried.insert(ticket.provider);
            stats.calls += 1;
            let (outcome, headers) = answer(&model.providers[i], &mut used[i], tokens, now, model);
            router.record(&ticket, outcome, now);
            if pacing {
                router.observe_headroom(ticket.provider, &headers, now);
            }
            if outcome.kind == OutcomeKind::Success {
                stats.served[i] += 1;
                ok = true;
                break;
            }
            stats.rate_limited += 1;
            stats.limited[i] += 1;
        }
        stats.failed += u64::from(!ok);
        while let Some(e) = router.poll_event() {
            match e.kind {
                EventKind::Paced { .. } => stats.paced += 1,
                EventKind::Throttled { .. } => stats.throttled += 1,
                _ => {}
            }
        }
    }
    Ok(stats)
}

/// The provider's answer to a call of `tokens` at `now`, and the headers it carries.
fn answer(q: &Quota, u: &mut Used, tokens: u64, now: u64, m: &QuotaModel) -> (Outcome, Headroom) {
    let minute = now / 60_000;
    if u.minute != minute {
        *u = Used {
            minute,
            ..Used::default()
        };
    }
    let reset_ms = (minute + 1) * 60_000 - now;
    let fits = u.requests < q.requests && u.tokens + tokens <= q.tokens;
    if fits {
        u.requests += 1;
        u.tokens += tokens;
    }
    let mut h = Headroom::default();
    let reset = format!("{reset_ms}ms");
    for (name, value) in [
        ("x-ratelimit-limit-requests", q.requests.to_string()),
        (
            "x-ratelimit-remaining-requests",
            (q.requests - u.requests).to_string(),
        ),
        ("x-ratelimit-reset-requests", reset.clone()),
        ("x-ratelimit-limit-tokens", q.tokens.to_string()),
        (
            "x-ratelimit-remaining-tokens",
            q.tokens.saturating_sub(u.tokens).to_string(),
        ),
        ("x-ratelimit-reset-tokens", reset),
    ] {
        h.header(name, &value, None);
    }
    let outcome = if fits {
        Outcome::success(800)
    } else {
        Outcome::rate_limited(m.retry_after.then_some(reset_ms))
    };
    (outcome, h)
}

/// The two runs side by side, as text.
#[must_use]
pub fn render(m: &QuotaModel, without: &QuotaStats, with: &QuotaStats) -> String {
    let mut s = String::new();
    let quotas: Vec<String> = m
        .providers
        .iter()
        .map(|q| format!("{} {} req + {} tokens", q.name, q.requests, q.tokens))
        .collect();
    let _ = writeln!(
        s,
        "Per-minute quotas: {}.\nTraffic: {:.1} requests/s (Poisson) for {} min, {}-{} tokens each, \
         seed {}; 429s {}; {} attempt(s) per request, each on another provider.\n",
        quotas.join(", "),
        m.rate_per_s,
        m.minutes,
        m.tokens.0,
        m.tokens.1,
        m.seed,
        if m.retry_after {
            "with Retry-After (the time to the reset)"
        } else {
            "without Retry-After"
        },
        m.attempts,
    );
    let pct = |a: u64, b: u64| {
        if b == 0 {
            0.0
        } else {
            a as f64 * 100.0 / b as f64
        }
    };
    let _ = writeln!(s, "{:<34}{:>16}{:>16}", "", "without pacing", "with pacing");
    let mut row = |label: &str, a: String, b: String| {
        let _ = writeln!(s, "{label:<34}{a:>16}{b:>16}");
    };
    row(
        "requests",
        without.requests.to_string(),
        with.requests.to_string(),
    );
    row(
        "failed requests",
        format!(
            "{} ({:.2} %)",
            without.failed,
            pct(without.failed, without.requests)
        ),
        format!("{} ({:.2} %)", with.failed, pct(with.failed, with.requests)),
    );
    row(
        "calls answered 429",
        without.rate_limited.to_string(),
        with.rate_limited.to_string(),
    );
    row(
        "calls per request",
        format!(
            "{:.3}",
            without.calls as f64 / without.requests.max(1) as f64
        ),
        format!("{:.3}", with.calls as f64 / with.requests.max(1) as f64),
    );
    for (i, q) in m.providers.iter().enumerate() {
        row(
            &format!("{}: served / 429", q.name),
            format!("{} / {}", without.served[i], without.limited[i]),
            format!("{} / {}", with.served[i], with.limited[i]),
        );
    }
    row(
        "throttled (after a 429)",
        without.throttled.to_string(),
        with.throttled.to_string(),
    );
    row(
        "paced (before a 429)",
        without.paced.to_string(),
        with.paced.to_string(),
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacing_shifts_traffic_before_the_429() {
        let m = QuotaModel {
            minutes: 10,
            ..QuotaModel::default()
        };
        let p = Policy::default();
        let without = run(&m, &p, false).unwrap();
        let with = run(&m, &p, true).unwrap();
        // Same arrivals.
        assert_eq!(without.requests, with.requests);
        assert!(without.rate_limited > 0 && without.paced == 0);
        assert!(with.paced > 0);
        assert!(
            with.rate_limited * 2 < without.rate_limited,
            "pacing should at least halve the 429s: {} against {}",
            with.rate_limited,
            without.rate_limited
        );
        assert!(with.failed <= without.failed);
        let text = render(&m, &without, &with);
        assert!(text.contains("calls answered 429"));
        // With one attempt per request, every 429 is a failed request: pacing avoids most.
        let one = QuotaModel { attempts: 1, ..m };
        let (without, with) = (run(&one, &p, false).unwrap(), run(&one, &p, true).unwrap());
        assert_eq!(without.failed, without.rate_limited);
        assert!(
            with.failed * 2 < without.failed,
            "{} against {}",
            with.failed,
            without.failed
        );
    }
}
