//! `classify` over arbitrary facts: it never panics, and for the status-only and transport-only
//! cases (and the transports that win over everything) it agrees with an independent reading of
//! the table in the core's `classify` module. The retry hint is checked against its own rule too.
//!
//! Input: one byte of flags (which fields are present), two bytes of status, one byte of
//! transport, eight bytes of wall clock, then seven strings (code, type, message, the three
//! retry headers, spare) separated by `\0` (lossy UTF-8).

#![no_main]

use failover_core::{Facts, OutcomeKind, Transport, classify, classify_status, parse_retry_after};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 12 {
        return;
    }
    let flags = u16::from(data[0]) | (u16::from(data[3] & 0xf0) << 4);
    let status = u16::from_be_bytes([data[1], data[2]]);
    let transport = Transport::ALL[usize::from(data[3] & 0x0f) % Transport::ALL.len()];
    let clock = u64::from_le_bytes(data[4..12].try_into().unwrap());
    let text = String::from_utf8_lossy(&data[12..]);
    let mut parts = text.split('\0');
    let mut next = || parts.next().unwrap_or("");
    let (code, ty, msg, ra, ra_ms, x_ms) = (next(), next(), next(), next(), next(), next());
    let on = |bit: u16| flags & (1 << bit) != 0;

    let f = Facts {
        status: on(0).then_some(status),
        transport: on(1).then_some(transport),
        error_code: on(2).then_some(code),
        error_type: on(3).then_some(ty),
        message: on(4).then_some(msg),
        retry_after: on(5).then_some(ra),
        retry_after_ms: on(6).then_some(ra_ms),
        x_ms_retry_after_ms: on(7).then_some(x_ms),
        now_unix_ms: on(8).then_some(clock),
    };
    let c = classify(&f);
    assert_eq!(OutcomeKind::from_name(c.kind.name()), Some(c.kind));
    assert!(!matches!(
        c.kind,
        OutcomeKind::StreamCut | OutcomeKind::Stalled
    ));

    // Status only: the status column.
    let body = f.error_code.is_some() || f.error_type.is_some() || f.message.is_some();
    if let (Some(s), None, false) = (f.status, f.transport, body) {
        assert_eq!(c.kind, status_column(s), "status {s}");
        assert_eq!(classify_status(s), status_column(s), "status {s}");
    }
    // Transport only, and the transports that win over everything.
    if let Some(t) = f.transport {
        let wins = match t {
            Transport::Aborted => Some(OutcomeKind::Cancelled),
            Transport::Timeout => Some(OutcomeKind::Timeout),
            Transport::Connection => Some(OutcomeKind::ConnectionError),
            _ => None,
        };
        if let Some(k) = wins {
            assert_eq!(c.kind, k, "{t:?} wins");
        } else if f.status.is_none() && !body {
            assert_eq!(c.kind, OutcomeKind::ServerError, "{t:?} alone");
        }
    }
    // Nothing at all.
    if f.status.is_none()
        && f.transport.is_none()
        && f.error_code.is_none()
        && f.error_type.is_none()
    {
        assert!(
            matches!(c.kind, OutcomeKind::Cancelled | OutcomeKind::Refused),
            "{:?}",
            c.kind
        );
    }

    // The retry hint: the first of retry-after-ms, x-ms-retry-after-ms, retry-after that parses.
    let want = f
        .retry_after_ms
        .and_then(millis)
        .or_else(|| f.x_ms_retry_after_ms.and_then(millis))
        .or_else(|| {
            f.retry_after
                .and_then(|v| parse_retry_after(v, f.now_unix_ms))
        });
    assert_eq!(c.retry_after_ms, want);
});

/// Rows 16–24 of the table, read independently.
fn status_column(s: u16) -> OutcomeKind {
    if (200..400).contains(&s) {
        OutcomeKind::Success
    } else if [408, 504, 524, 598].contains(&s) {
        OutcomeKind::Timeout
    } else if s == 429 {
        OutcomeKind::RateLimited
    } else if s == 499 {
        OutcomeKind::Cancelled
    } else if s == 401 || s == 403 {
        OutcomeKind::CredentialsRejected
    } else if s == 404 || s == 413 {
        OutcomeKind::Refused
    } else if (400..500).contains(&s) {
        OutcomeKind::ClientError
    } else {
        OutcomeKind::ServerError
    }
}

/// `"1500"` → 1500, `"1500.2"` → 1501 (a non-zero fraction rounds up), saturating; a sign, an
/// empty side of the point or any other character → `None`.
fn millis(v: &str) -> Option<u64> {
    let v = v.trim();
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
    if let Some(f) = frac {
        if f.is_empty() || !f.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        if f.chars().any(|c| c != '0') {
            ms += 1;
        }
    }
    Some(ms.min(u128::from(u64::MAX)) as u64)
}
