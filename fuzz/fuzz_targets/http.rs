//! `classify_status` over every status code and `parse_retry_after` over arbitrary header values,
//! each checked against an independent reading of its documentation.
//!
//! Input: two bytes of status, one byte of flags, eight bytes of wall clock, then the header
//! value (lossy UTF-8).

#![no_main]

use failover_core::{Outcome, OutcomeKind, classify_status, parse_retry_after};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 11 {
        return;
    }
    let status = u16::from_be_bytes([data[0], data[1]]);
    let flags = data[2];
    let clock = u64::from_le_bytes(data[3..11].try_into().unwrap());
    let value = String::from_utf8_lossy(&data[11..]);

    // The classification table, as documented.
    let want = match status {
        200..=399 => OutcomeKind::Success,
        408 | 504 | 524 | 598 => OutcomeKind::Timeout,
        429 => OutcomeKind::RateLimited,
        499 => OutcomeKind::Cancelled,
        401 | 403 => OutcomeKind::CredentialsRejected,
        404 | 413 => OutcomeKind::Refused,
        400..=499 => OutcomeKind::ClientError,
        _ => OutcomeKind::ServerError,
    };
    assert_eq!(classify_status(status), want, "status {status}");
    let o = Outcome::from_http(status, clock as u32, Some(clock));
    assert_eq!(
        (o.kind, o.latency_ms, o.retry_after_ms),
        (want, clock as u32, Some(clock))
    );
    assert_eq!(OutcomeKind::from_name(want.name()), Some(want));

    let now = (flags & 1 == 1).then_some(clock);
    let got = parse_retry_after(&value, now);

    // Surrounding whitespace does not matter.
    assert_eq!(parse_retry_after(value.trim(), now), got);
    let padded = format!(" \t{value}\t ");
    assert_eq!(parse_retry_after(&padded, now), got);

    let v = value.trim();
    if v.starts_with(|c: char| c.is_ascii_digit()) {
        // Delta-seconds, possibly with a fraction: independent of the clock.
        assert_eq!(got, seconds(v), "{v:?}");
        assert_eq!(parse_retry_after(v, None), got);
    } else if let Some(date) = parse_retry_after(v, Some(0)) {
        // An HTTP-date: needs the clock; a date in the past gives 0.
        assert_eq!(parse_retry_after(v, None), None);
        assert_eq!(got, now.map(|n| date.saturating_sub(n)), "{v:?}");
        assert_eq!(date % 1000, 0);
        if let Some(reference) = imf_fixdate(v) {
            assert_eq!(date, reference, "{v:?}");
        }
    } else {
        assert_eq!(got, None, "{v:?} parsed but is neither seconds nor a date");
    }
});

/// `"120"` → 120 000, `"1.5"` → 1 500 (at most three decimals count), saturating; anything else
/// (`"1."`, `"1.x"`, `"-1"`, `"1 2"`) is `None`.
fn seconds(v: &str) -> Option<u64> {
    let (int, frac) = match v.find('.') {
        Some(i) => (&v[..i], Some(&v[i + 1..])),
        None => (v, None),
    };
    if int.is_empty() || !int.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut ms: u128 = 0;
    for c in int.chars() {
        ms = (ms * 10 + u128::from(c as u8 - b'0')).min(u128::from(u64::MAX));
    }
    ms = (ms * 1000).min(u128::from(u64::MAX));
    if let Some(f) = frac {
        if f.is_empty() || !f.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let mut scale = 100u128;
        for c in f.chars().take(3) {
            ms += u128::from(c as u8 - b'0') * scale;
            scale /= 10;
        }
    }
    Some(ms.min(u128::from(u64::MAX)) as u64)
}

/// A strict IMF-fixdate reader (`Sun, 06 Nov 1994 08:49:37 GMT`) for real calendar dates from
/// 1970 on, counting days the slow way. `None` when the text is not one (the engine may be more
/// lenient, for instance about the weekday).
fn imf_fixdate(v: &str) -> Option<u64> {
    let b = v.as_bytes();
    if b.len() != 29 || &b[3..5] != b", " || &b[25..] != b" GMT" {
        return None;
    }
    let num = |s: &[u8]| -> Option<u64> {
        s.iter().try_fold(0u64, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u64::from(c - b'0'))
        })
    };
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = months.iter().position(|m| m.as_bytes() == &b[8..11])? as u64 + 1;
    let (day, year) = (num(&b[5..7])?, num(&b[12..16])?);
    let (hh, mm, ss) = (num(&b[17..19])?, num(&b[20..22])?, num(&b[23..25])?);
    if b[7] != b' ' || b[11] != b' ' || b[16] != b' ' || b[19] != b':' || b[22] != b':' {
        return None;
    }
    let leap = |y: u64| (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let month_len = |y: u64, m: u64| match m {
        2 if leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if !(1970..=9999).contains(&year) || day == 0 || day > month_len(year, month) {
        return None;
    }
    if hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    let mut days = 0;
    for y in 1970..year {
        days += if leap(y) { 366 } else { 365 };
    }
    for m in 1..month {
        days += month_len(year, m);
    }
    days += day - 1;
    // The weekday must be the date's: 1970-01-01 was a Thursday.
    let weekdays = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    if weekdays[(days % 7) as usize].as_bytes() != &b[0..3] {
        return None;
    }
    Some((days * 86_400 + hh * 3_600 + mm * 60 + ss) * 1_000)
}
