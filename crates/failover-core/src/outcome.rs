//! What happened to one call: the outcome kinds and the `Retry-After` parser. The classification
//! every binding shares is in [`crate::classify`](mod@crate::classify); [`classify_status`] is
//! re-exported here.

pub use crate::classify::classify_status;

/// The kind of result a call to a provider had.
///
/// Only some kinds say something about the provider's health; see each variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OutcomeKind {
    /// The call succeeded. Its latency feeds the slow-call and latency-degradation triggers.
    Success = 0,
    /// The provider refused the call for now (HTTP 429). Never a circuit trip: the provider is
    /// throttled until its `Retry-After` (or a growing backoff) and then gets its full share back.
    RateLimited = 1,
    /// The provider failed (HTTP 5xx, 529 overloaded). A hard failure.
    ServerError = 2,
    /// The connection was refused or reset. A hard failure.
    ConnectionError = 3,
    /// The call timed out (HTTP 408, 504, or the caller's own deadline). Counted by the sustained
    /// timeout trigger, not by the consecutive-failure trigger.
    Timeout = 4,
    /// The caller's fault (400, 422, content policy). Says nothing about the provider's health
    /// and is not counted unless the policy's `count_client_errors` is set.
    ClientError = 5,
    /// The caller gave up before an answer (HTTP 499, an aborted request), or the call failed in a
    /// way nobody can attribute to the provider (a bug in the caller's own code). Ignored, but it
    /// releases a probe permit.
    Cancelled = 6,
    /// This provider refused this request for a reason another provider may not share: the
    /// context length is exceeded, the model is not found or not offered here, the payload is
    /// too large (413). Says nothing about the provider's health: counted nowhere (it releases a
    /// probe permit); a request goes on to the next provider.
    Refused = 7,
    /// The provider rejected this application's credentials (HTTP 401/403). Not a trip: the
    /// provider is benched for the policy's `bench_ms` (no strike, no probe, no ramp on return,
    /// like a throttle), because a rejected key is fixed by a person, not in seconds.
    CredentialsRejected = 8,
    /// The account's quota or spend limit is exhausted (a 429 such as OpenAI's
    /// `insufficient_quota`, with no `Retry-After`). Benched like [`OutcomeKind::CredentialsRejected`]:
    /// retrying will not help until someone pays.
    QuotaExhausted = 9,
    /// A stream was cut: it ended (EOF, an in-band `error` event) after a 200 without its terminal
    /// event. A hard failure, counted like a server error.
    StreamCut = 10,
    /// A stream went quiet: no chunk within the attempt's idle deadline, or no first token within
    /// its first-token deadline. Counted like a timeout.
    Stalled = 11,
}

impl OutcomeKind {
    /// Every kind, in declaration order (handy for exhaustive tests and bindings).
    pub const ALL: [OutcomeKind; 12] = [
        OutcomeKind::Success,
        OutcomeKind::RateLimited,
        OutcomeKind::ServerError,
        OutcomeKind::ConnectionError,
        OutcomeKind::Timeout,
        OutcomeKind::ClientError,
        OutcomeKind::Cancelled,
        OutcomeKind::Refused,
        OutcomeKind::CredentialsRejected,
        OutcomeKind::QuotaExhausted,
        OutcomeKind::StreamCut,
        OutcomeKind::Stalled,
    ];

    /// The stable snake_case name used by the scenario files and the Python and Node bindings.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            OutcomeKind::Success => "success",
            OutcomeKind::RateLimited => "rate_limited",
            OutcomeKind::ServerError => "server_error",
            OutcomeKind::ConnectionError => "connection_error",
            OutcomeKind::Timeout => "timeout",
            OutcomeKind::ClientError => "client_error",
            OutcomeKind::Cancelled => "cancelled",
            OutcomeKind::Refused => "refused",
            OutcomeKind::CredentialsRejected => "credentials_rejected",
            OutcomeKind::QuotaExhausted => "quota_exhausted",
            OutcomeKind::StreamCut => "stream_cut",
            OutcomeKind::Stalled => "stalled",
        }
    }

    /// Parses a name produced by [`OutcomeKind::name`].
    #[must_use]
    pub fn from_name(name: &str) -> Option<OutcomeKind> {
        OutcomeKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Server and connection errors and cut streams: the failures that the consecutive-failure
    /// and error-rate triggers count.
    #[must_use]
    pub const fn is_hard_failure(self) -> bool {
        matches!(
            self,
            OutcomeKind::ServerError | OutcomeKind::ConnectionError | OutcomeKind::StreamCut
        )
    }

    /// Timeouts and stalled streams: what the sustained-timeout trigger counts.
    #[must_use]
    pub const fn is_timeout(self) -> bool {
        matches!(self, OutcomeKind::Timeout | OutcomeKind::Stalled)
    }

    /// Credentials rejected or quota exhausted: the provider is benched for `bench_ms`.
    #[must_use]
    pub const fn benches(self) -> bool {
        matches!(
            self,
            OutcomeKind::CredentialsRejected | OutcomeKind::QuotaExhausted
        )
    }
}

/// One call's result as the engine records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Outcome {
    /// What happened.
    pub kind: OutcomeKind,
    /// How long the call took, in milliseconds. Only successes use it (slow calls, latency
    /// baseline); for other kinds it is informational.
    pub latency_ms: u32,
    /// The provider's `Retry-After`, in milliseconds from the outcome's timestamp, if it sent one.
    /// Honoured for every kind (a 503 with `Retry-After` is both a server error and a throttle),
    /// capped by the policy's `max_retry_after_ms`.
    pub retry_after_ms: Option<u64>,
}

impl Outcome {
    /// An outcome of `kind` with the given latency and no `Retry-After`.
    #[must_use]
    pub const fn new(kind: OutcomeKind, latency_ms: u32) -> Outcome {
        Outcome {
            kind,
            latency_ms,
            retry_after_ms: None,
        }
    }

    /// A success that took `latency_ms`.
    #[must_use]
    pub const fn success(latency_ms: u32) -> Outcome {
        Outcome::new(OutcomeKind::Success, latency_ms)
    }

    /// A 429, with the provider's `Retry-After` in milliseconds if it sent one.
    #[must_use]
    pub const fn rate_limited(retry_after_ms: Option<u64>) -> Outcome {
        Outcome {
            kind: OutcomeKind::RateLimited,
            latency_ms: 0,
            retry_after_ms,
        }
    }

    /// A server error (5xx).
    #[must_use]
    pub const fn server_error(latency_ms: u32) -> Outcome {
        Outcome::new(OutcomeKind::ServerError, latency_ms)
    }

    /// A refused or reset connection.
    #[must_use]
    pub const fn connection_error(latency_ms: u32) -> Outcome {
        Outcome::new(OutcomeKind::ConnectionError, latency_ms)
    }

    /// A timeout after `latency_ms`.
    #[must_use]
    pub const fn timeout(latency_ms: u32) -> Outcome {
        Outcome::new(OutcomeKind::Timeout, latency_ms)
    }

    /// The caller's fault (4xx other than 408/429).
    #[must_use]
    pub const fn client_error(latency_ms: u32) -> Outcome {
        Outcome::new(OutcomeKind::ClientError, latency_ms)
    }

    /// The caller cancelled the call.
    #[must_use]
    pub const fn cancelled() -> Outcome {
        Outcome::new(OutcomeKind::Cancelled, 0)
    }

    /// Classifies an HTTP status (see [`classify_status`]) and keeps the latency and `Retry-After`.
    #[must_use]
    pub const fn from_http(status: u16, latency_ms: u32, retry_after_ms: Option<u64>) -> Outcome {
        Outcome {
            kind: classify_status(status),
            latency_ms,
            retry_after_ms,
        }
    }
}

/// Parses an HTTP `Retry-After` header value into milliseconds from now.
///
/// Accepts delta-seconds (`"120"`, also a decimal such as `"1.5"` as some providers send) and an
/// HTTP-date in IMF-fixdate form (`"Sun, 06 Nov 1994 08:49:37 GMT"`), which needs the caller's
/// wall clock as Unix milliseconds in `now_unix_ms` (the engine never reads a clock). A date in the
/// past gives `Some(0)`. Returns `None` for anything it cannot parse, for a date when
/// `now_unix_ms` is `None`, and for negative numbers. Huge values saturate at `u64::MAX`.
///
/// Cost: linear in the length of `value`, no allocation.
#[must_use]
pub fn parse_retry_after(value: &str, now_unix_ms: Option<u64>) -> Option<u64> {
    let v = value.trim();
    if v.is_empty() {
        return None;
    }
    if v.as_bytes()[0].is_ascii_digit() {
        return parse_seconds(v);
    }
    let date_ms = parse_imf_fixdate(v)?;
    let now = now_unix_ms?;
    Some(date_ms.saturating_sub(now))
}

fn parse_seconds(v: &str) -> Option<u64> {
    let (int_part, frac_part) = match v.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (v, None),
    };
    if int_part.is_empty() || !int_part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut secs: u64 = 0;
    for b in int_part.bytes() {
        secs = secs.saturating_mul(10).saturating_add(u64::from(b - b'0'));
    }
    let mut ms = secs.saturating_mul(1000);
    if let Some(f) = frac_part {
        if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut scale = 100u64;
        for b in f.bytes().take(3) {
            ms = ms.saturating_add(u64::from(b - b'0') * scale);
            scale /= 10;
        }
    }
    Some(ms)
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` → Unix milliseconds.
fn parse_imf_fixdate(v: &str) -> Option<u64> {
    let b = v.as_bytes();
    if b.len() != 29 || &b[3..5] != b", " || &b[25..] != b" GMT" {
        return None;
    }
    const DAYS: [&[u8]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];
    if !DAYS.contains(&&b[0..3]) {
        return None;
    }
    const MONTHS: [&[u8]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let num = |s: &[u8]| -> Option<u64> {
        let mut n = 0u64;
        for &c in s {
            if !c.is_ascii_digit() {
                return None;
            }
            n = n * 10 + u64::from(c - b'0');
        }
        Some(n)
    };
    let day = num(&b[5..7])?;
    if b[7] != b' ' || b[11] != b' ' || b[16] != b' ' || b[19] != b':' || b[22] != b':' {
        return None;
    }
    let month = MONTHS.iter().position(|m| *m == &b[8..11])? as u64 + 1;
    let year = num(&b[12..16])?;
    let (hh, mm, ss) = (num(&b[17..19])?, num(&b[20..22])?, num(&b[23..25])?);
    if !(1970..=9999).contains(&year) || day == 0 || day > 31 || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1000)
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm), for
/// years ≥ 1970.
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in OutcomeKind::ALL {
            assert_eq!(OutcomeKind::from_name(k.name()), Some(k));
        }
        assert_eq!(OutcomeKind::from_name("nope"), None);
    }

    #[test]
    fn retry_after_seconds() {
        assert_eq!(parse_retry_after("120", None), Some(120_000));
        assert_eq!(parse_retry_after(" 0 ", None), Some(0));
        assert_eq!(parse_retry_after("1.5", None), Some(1_500));
        assert_eq!(parse_retry_after("0.0015", None), Some(1));
        assert_eq!(parse_retry_after("-1", None), None);
        assert_eq!(parse_retry_after("1.", None), None);
        assert_eq!(parse_retry_after("abc", None), None);
        assert_eq!(parse_retry_after("", None), None);
        assert_eq!(
            parse_retry_after("99999999999999999999999999", None),
            Some(u64::MAX)
        );
    }

    #[test]
    fn retry_after_dates() {
        // 1994-11-06T08:49:37Z = 784111777 s.
        let d = "Sun, 06 Nov 1994 08:49:37 GMT";
        assert_eq!(parse_imf_fixdate(d), Some(784_111_777_000));
        assert_eq!(parse_retry_after(d, Some(784_111_767_000)), Some(10_000));
        assert_eq!(parse_retry_after(d, Some(784_111_787_000)), Some(0));
        assert_eq!(parse_retry_after(d, None), None);
        // 2000-02-29 (leap day) 00:00:00 = 951782400 s.
        assert_eq!(
            parse_imf_fixdate("Tue, 29 Feb 2000 00:00:00 GMT"),
            Some(951_782_400_000)
        );
        assert_eq!(parse_imf_fixdate("Sun, 06 Nov 1994 08:49:37 UTC"), None);
        assert_eq!(parse_imf_fixdate("Sun, 06 Foo 1994 08:49:37 GMT"), None);
        assert_eq!(parse_imf_fixdate("Sun, 06 Nov 1994 24:49:37 GMT"), None);
    }

    /// Each field of an HTTP-date at its largest and its smallest is read (the last second of
    /// a year, a leap second, the first and the last day the format allows), one past it is not,
    /// and each separator is checked on its own.
    #[test]
    fn retry_after_dates_at_each_limit() {
        assert_eq!(
            parse_imf_fixdate("Sun, 31 Dec 1995 23:59:59 GMT"),
            Some(820_454_399_000)
        );
        // 2016's leap second reads as the next year's first second.
        assert_eq!(
            parse_imf_fixdate("Sat, 31 Dec 2016 23:59:60 GMT"),
            Some(1_483_228_800_000)
        );
        assert_eq!(parse_imf_fixdate("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_imf_fixdate("Fri, 31 Dec 9999 23:59:59 GMT"),
            Some(253_402_300_799_000)
        );
        for bad in [
            "Wed, 31 Dec 1969 23:59:59 GMT",
            "Sun, 00 Dec 1995 23:59:59 GMT",
            "Sun, 32 Dec 1995 23:59:59 GMT",
            "Sun, 31 Dec 1995 23:60:59 GMT",
            "Sun, 31 Dec 1995 23:59:61 GMT",
            // One separator wrong at a time: after the day, the month, the year, the hour, the
            // minute.
            "Sun, 31-Dec 1995 23:59:59 GMT",
            "Sun, 31 Dec-1995 23:59:59 GMT",
            "Sun, 31 Dec 1995-23:59:59 GMT",
            "Sun, 31 Dec 1995 23-59:59 GMT",
            "Sun, 31 Dec 1995 23:59-59 GMT",
        ] {
            assert_eq!(parse_imf_fixdate(bad), None, "{bad}");
            assert_eq!(parse_retry_after(bad, Some(0)), None, "{bad}");
        }
    }

    /// Delta-seconds are digits, then at most a fraction of digits: anything else after the
    /// first digit is not a number.
    #[test]
    fn retry_after_seconds_are_digits_only() {
        for bad in ["1a", "12 s", "1.5x", "1.-5", "3e2"] {
            assert_eq!(parse_retry_after(bad, None), None, "{bad}");
        }
    }
}
