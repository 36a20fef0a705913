//! `Headroom::header` over arbitrary header names and values: it never panics, keeps its
//! documented invariants (no limit of 0, a remaining of 0 only with a positive limit, headroom at
//! most 1 000 000 and the minimum of the dimensions'), and agrees with independent readings of
//! the rules: the counts (rule 4) against `str::parse`, OpenAI's reset (rule 7) against a second
//! parser of the Go duration grammar written differently (split on the number, longest unit
//! first, fractions padded to nine digits), and Anthropic's reset (rule 8) against itself one
//! second later (one second less, or still 0) and without a clock (unknown).
//!
//! Input: eight bytes of wall clock, then records separated by `\0`: a byte choosing the header
//! name, then the value (lossy UTF-8).

#![no_main]

use failover_core::{Dimension, Headroom};
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 34] = [
    "x-ratelimit-limit-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
    "anthropic-ratelimit-requests-limit",
    "anthropic-ratelimit-requests-remaining",
    "anthropic-ratelimit-requests-reset",
    "anthropic-ratelimit-tokens-limit",
    "anthropic-ratelimit-tokens-remaining",
    "anthropic-ratelimit-tokens-reset",
    "anthropic-ratelimit-input-tokens-limit",
    "anthropic-ratelimit-input-tokens-remaining",
    "anthropic-ratelimit-input-tokens-reset",
    "anthropic-ratelimit-output-tokens-limit",
    "anthropic-ratelimit-output-tokens-remaining",
    "anthropic-ratelimit-output-tokens-reset",
    "X-RateLimit-Remaining-Tokens",
    "Anthropic-RateLimit-Tokens-Reset",
    "x-ratelimit-limit-input-tokens",
    "x-ratelimit-limit",
    "anthropic-ratelimit-requests",
    "anthropic-ratelimit--limit",
    "retry-after",
    "",
    "x-ratelimit-reset-requestss",
    "anthropic-ratelimit-tokens-resets",
    "x-ratelimit-",
    "anthropic-ratelimit-",
    "content-type",
    "x-ratelimit-reset-",
    "-requests",
    "anthropic-ratelimit-input-tokens-",
];

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let clock = u64::from_le_bytes(data[..8].try_into().unwrap());
    let text = String::from_utf8_lossy(&data[8..]);
    let mut all = Headroom::default();
    for record in text.split('\0') {
        let mut chars = record.chars();
        let Some(pick) = chars.next() else { continue };
        let value = chars.as_str();
        // A name from the table, or (for picks past it) the value's first line as a name.
        let (name, value) = match NAMES.get(pick as usize % 40) {
            Some(n) => (*n, value),
            None => value.split_once('\n').unwrap_or((value, "")),
        };
        let known = all.header(name, value, Some(clock));
        check(&all);

        let lower = name.to_ascii_lowercase();
        let dim = if lower.contains("input-tokens") {
            Dimension::InputTokens
        } else if lower.contains("output-tokens") {
            Dimension::OutputTokens
        } else if lower.contains("tokens") {
            Dimension::Tokens
        } else {
            Dimension::Requests
        };
        let mut one = Headroom::default();
        assert_eq!(one.header(name, value, Some(clock)), known);
        let q = one.quota(dim);
        if !known {
            assert!(one.is_empty());
            continue;
        }
        // The field: after `x-ratelimit-` for OpenAI, the last word for Anthropic.
        let field = match lower.strip_prefix("x-ratelimit-") {
            Some(r) => r.split('-').next(),
            None => lower.rsplit('-').next(),
        };
        if field == Some("limit") {
            assert_eq!(q.limit, count(value).filter(|&n| n > 0), "limit {value:?}");
        } else if field == Some("remaining") {
            // Alone, a remaining of 0 has no limit: unknown.
            assert_eq!(
                q.remaining,
                count(value).filter(|&n| n > 0),
                "remaining {value:?}"
            );
        } else if lower.starts_with("x-ratelimit-reset") {
            assert_eq!(q.reset_in_ms, go_duration_ms(value), "duration {value:?}");
        } else {
            // Anthropic's absolute reset.
            let mut none = Headroom::default();
            none.header(name, value, None);
            assert_eq!(none.quota(dim).reset_in_ms, None);
            if let (Some(ms), Some(later)) = (q.reset_in_ms, clock.checked_add(1000)) {
                let mut l = Headroom::default();
                l.header(name, value, Some(later));
                assert_eq!(
                    l.quota(dim).reset_in_ms,
                    Some(ms.saturating_sub(1000)),
                    "{value:?}"
                );
            }
        }
    }
});

fn check(h: &Headroom) {
    let mut min = None;
    for d in Dimension::ALL {
        let q = h.quota(d);
        assert_ne!(q.limit, Some(0));
        if q.remaining == Some(0) {
            assert!(q.limit.is_some());
        }
        let ppm = h.dimension_ppm(d);
        assert_eq!(ppm.is_some(), q.limit.is_some() && q.remaining.is_some());
        if let Some(p) = ppm {
            assert!(p <= 1_000_000);
            min = Some(min.map_or(p, |m: u32| m.min(p)));
        }
    }
    assert_eq!(h.headroom_ppm(), min);
}

fn ows(v: &str) -> &str {
    v.trim_matches(|c| c == ' ' || c == '\t')
}

/// Rule 4, read with `str::parse` (which also takes a `+`, refused here).
fn count(v: &str) -> Option<u64> {
    let v = ows(v);
    if v.starts_with('+') {
        return None;
    }
    v.parse().ok()
}

/// Rule 7, written independently of the core: the number is everything up to the first
/// character that is neither a digit nor a dot; the unit is the longest that follows.
fn go_duration_ms(v: &str) -> Option<u64> {
    let v = ows(v);
    if v == "0" {
        return Some(0);
    }
    if v.is_empty() {
        return None;
    }
    const UNITS: [(&str, u128); 8] = [
        ("ns", 1),
        ("us", 1_000),
        ("\u{b5}s", 1_000),
        ("\u{3bc}s", 1_000),
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
        ("m", 60_000_000_000),
        ("h", 3_600_000_000_000),
    ];
    let mut total: u128 = 0;
    let mut rest = v;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at(n);
        let (whole, frac) = match num.split_once('.') {
            Some((w, f)) => (w, f),
            None => (num, "0"),
        };
        if whole.is_empty() || frac.is_empty() || frac.contains('.') {
            return None;
        }
        let (unit, ns) = UNITS
            .iter()
            .filter(|(u, _)| after.starts_with(u))
            .max_by_key(|(u, _)| u.len())?;
        let whole: u128 = whole.parse::<u64>().unwrap_or(u64::MAX).into();
        let mut nine = String::from(&frac[..frac.len().min(9)]);
        while nine.len() < 9 {
            nine.push('0');
        }
        let frac: u128 = nine.parse().unwrap();
        total = total.saturating_add(whole * ns + frac * ns / 1_000_000_000);
        rest = &after[unit.len()..];
    }
    Some(u64::try_from(total.div_ceil(1_000_000)).unwrap_or(u64::MAX))
}
