//! One classification table for every language: what kind of outcome one attempt's answer or
//! error was, from the facts a binding can read off it ([`Facts`]), and how long the provider
//! asked us to wait.
//!
//! The bindings extract facts (the HTTP status, the body's `error.code` and `error.type`, the
//! message, what went wrong on the wire, the three retry headers) and call [`classify`]; they never
//! decide a kind themselves, so Rust, Python and Node agree. [`classify_status`] is the status
//! column of the same table on its own.
//!
//! # The table
//!
//! Rows are tried top to bottom; the first that applies decides the kind.
//!
//! | # | facts | kind | why |
//! |---|---|---|---|
//! | 1 | transport `aborted` | `cancelled` | the caller gave up; nothing is known about the provider |
//! | 2 | transport `timeout` | `timeout` | no answer in time; a status or body seen before the deadline is superseded |
//! | 3 | transport `connection` (refused, reset, DNS) | `connection_error` | the provider could not be reached |
//! | 4 | code/type `context_length_exceeded`, `string_above_max_length`, `model_not_found`, `request_too_large`, `not_found_error` | `refused` | this provider will not take this request; another may |
//! | 5 | code/type `insufficient_quota`, `billing_hard_limit_reached`, `billing_not_active` | `quota_exhausted`; `rate_limited` if a retry header is present | the account is out of money: retrying will not help, unless the provider itself says when to come back |
//! | 6 | code/type `authentication_error`, `permission_error`, `invalid_api_key` | `credentials_rejected` | the key is wrong here; a person must fix it |
//! | 7 | code/type `overloaded_error`, `api_error`, `server_error` | `server_error` | the provider failed (Anthropic's 529 says `overloaded_error`) |
//! | 8 | code/type `rate_limit_exceeded` | `rate_limited` | not now |
//! | 9 | code/type `rate_limit_error` | `rate_limited` if a retry header is present, else `quota_exhausted` | Anthropic's exhausted spend limit is a `rate_limit_error` 429 without any retry header |
//! | 10 | code/type `timeout_error` | `timeout` | the provider timed out internally |
//! | 11 | code/type `content_filter`, `content_policy_violation` | `client_error` | the caller's content; another provider would likely refuse it too |
//! | 12 | message says "maximum context length", "context length", "prompt is too long" or "too many tokens", and the status is absent or an ordinary 4xx (row 22) | `refused` | servers that send only a 400 and a message (vLLM, proxies); a 429 "too many tokens per minute" stays a rate limit and a 5xx stays a server error |
//! | 13 | transport `malformed` or `protocol`, with a status that is not 2xx/3xx (rows 17–24) | that status's kind | the status already says what happened; the body just could not be read |
//! | 14 | transport `malformed` or `protocol` otherwise (2xx/3xx or no status) | `server_error` | a broken body, broken SSE framing or an in-band `error` event is the provider's fault |
//! | 15 | status 2xx/3xx with an error code or type no row above knows | `server_error` | an error inside a success answer (an in-band error after a 200) |
//! | 16 | status 200–399 | `success` | |
//! | 17 | status 408, 504, 524, 598 | `timeout` | request, gateway and proxy timeouts |
//! | 18 | status 429 | `rate_limited` | not now: throttled until `Retry-After` or a growing backoff |
//! | 19 | status 499 | `cancelled` | the client closed the request |
//! | 20 | status 401, 403 | `credentials_rejected` | this provider rejects our credentials: benched for the policy's `bench_ms` |
//! | 21 | status 404, 413 | `refused` | model not offered here, or a payload this provider will not take: try the next provider, count nothing |
//! | 22 | other status 400–499 | `client_error` | the caller's fault (400, 422, ...): says nothing about the provider |
//! | 23 | status 500–599 other than the timeouts, 529 included | `server_error` | the provider failed |
//! | 24 | any other status (a final 1xx, 0, ≥ 600) | `server_error` | the provider answered nonsense |
//! | 25 | no status, with an error code or type no row above knows | `server_error` | the provider sent an error body we cannot read more into |
//! | 26 | nothing at all (no status, transport, code or type; a message alone) | `cancelled` | a failure nobody can attribute to the provider, such as a bug in the caller's own code: counted nowhere, and the binding re-raises it unchanged |
//!
//! Codes and types are one vocabulary: the `error.code` is looked up first, then the
//! `error.type` (OpenAI puts the specific word in `code` and a generic one such as
//! `invalid_request_error` in `type`; Anthropic only has `type`). They match exactly, ignoring
//! ASCII case and surrounding whitespace. The message is searched ignoring ASCII case.
//!
//! Transport problems win over everything a body says for `aborted`, `timeout` and `connection`
//! (rows 1–3): the attempt did not end with an answer. For `malformed` and `protocol` a known
//! body code wins (rows 4–12): an in-band SSE `error` event carrying `overloaded_error` or
//! `rate_limit_error` says exactly what happened.
//!
//! A *retry header is present* (rows 5 and 9) when any of the three retry header fields is
//! given and not blank, whether or not its value parses: a provider that sends one at all means
//! "come back later".
//!
//! This table never says `stream_cut` or `stalled`: whether a broken stream is a cut depends on
//! whether content already reached the caller, which the stream's reader knows, not the facts.
//!
//! # Retry-After
//!
//! The first of these that parses wins; a missing, blank, negative (Azure's `-1`: unknown) or
//! unparseable value is skipped:
//!
//! 1. `retry-after-ms` (OpenAI, Anthropic, Azure): milliseconds, possibly with a fraction, which
//!    rounds up (`1500.2` → 1501).
//! 2. `x-ms-retry-after-ms` (Azure): the same format.
//! 3. `retry-after`: seconds or an HTTP-date, read by [`parse_retry_after`] with
//!    [`Facts::now_unix_ms`] as the wall clock.
//!
//! The result is returned for every kind: the engine honours a `Retry-After` on any outcome (a
//! 503 with `Retry-After` is both a server error and a throttle).

use crate::outcome::{Outcome, OutcomeKind, parse_retry_after};

/// What went wrong on the wire, when the attempt did not end with a readable answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// No answer within the deadline (the caller's, the client library's or the socket's).
    Timeout,
    /// The connection was refused or reset, or the host name did not resolve.
    Connection,
    /// An answer came but could not be read: invalid JSON, an undecodable body.
    Malformed,
    /// The stream broke its protocol: broken SSE framing, or an in-band SSE `error` event that
    /// carries no status.
    Protocol,
    /// The caller aborted the attempt.
    Aborted,
}

impl Transport {
    /// Every transport problem, in declaration order.
    pub const ALL: [Transport; 5] = [
        Transport::Timeout,
        Transport::Connection,
        Transport::Malformed,
        Transport::Protocol,
        Transport::Aborted,
    ];

    /// The stable snake_case name used by the scenario files and the bindings.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Transport::Timeout => "timeout",
            Transport::Connection => "connection",
            Transport::Malformed => "malformed",
            Transport::Protocol => "protocol",
            Transport::Aborted => "aborted",
        }
    }

    /// Parses a name produced by [`Transport::name`].
    #[must_use]
    pub fn from_name(name: &str) -> Option<Transport> {
        Transport::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// What a binding read off one attempt's answer or error. Every field is optional; leave out what
/// is not known. See the [module documentation](self) for how each is used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Facts<'a> {
    /// The HTTP status of the answer, if one came.
    pub status: Option<u16>,
    /// The body's `error.code`, e.g. `context_length_exceeded`, `insufficient_quota`.
    pub error_code: Option<&'a str>,
    /// The body's `error.type`, e.g. Anthropic's `overloaded_error`, `rate_limit_error`.
    pub error_type: Option<&'a str>,
    /// The error message, searched for context-length wording.
    pub message: Option<&'a str>,
    /// What went wrong on the wire, if anything.
    pub transport: Option<Transport>,
    /// The raw `retry-after` header: seconds or an HTTP-date.
    pub retry_after: Option<&'a str>,
    /// The raw `retry-after-ms` header: milliseconds.
    pub retry_after_ms: Option<&'a str>,
    /// The raw `x-ms-retry-after-ms` header (Azure): milliseconds.
    pub x_ms_retry_after_ms: Option<&'a str>,
    /// The caller's wall clock as Unix milliseconds, for a `retry-after` given as an HTTP-date.
    pub now_unix_ms: Option<u64>,
}

/// The verdict on one attempt: its kind and the provider's requested wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Classification {
    /// The outcome kind, by the table in the [module documentation](self).
    pub kind: OutcomeKind,
    /// The provider's retry hint in milliseconds from now, if it sent one that parses.
    pub retry_after_ms: Option<u64>,
}

impl Classification {
    /// The outcome to record for this attempt, which took `latency_ms`.
    #[must_use]
    pub const fn outcome(self, latency_ms: u32) -> Outcome {
        Outcome {
            kind: self.kind,
            latency_ms,
            retry_after_ms: self.retry_after_ms,
        }
    }
}

/// Classifies one attempt by the table in the [module documentation](self).
///
/// Cost: linear in the total length of the strings in `f`, no allocation; never panics.
#[must_use]
pub fn classify(f: &Facts<'_>) -> Classification {
    Classification {
        kind: kind(f),
        retry_after_ms: retry_after(f),
    }
}

/// The status column of the table (rows 16–24): what a status alone says. [`classify`] with only
/// a status gives the same kind. Every binding calls this one function.
///
/// | status | kind |
/// |---|---|
/// | 200–399 | `Success` |
/// | 408, 504, 524, 598 | `Timeout` (request, gateway and proxy timeouts) |
/// | 429 | `RateLimited` |
/// | 499 | `Cancelled` (client closed the request) |
/// | 401, 403 | `CredentialsRejected` (the provider rejects our credentials) |
/// | 404, 413 | `Refused` (model not offered here, payload too large for this provider) |
/// | other 400–499 | `ClientError` (bad request, unprocessable, content policy) |
/// | 500–599 other than the timeouts, including 529 overloaded | `ServerError` |
/// | anything else (1xx as a final status, 0, ≥ 600) | `ServerError`: the provider answered nonsense |
///
/// 401/403 and 404/413 used to be `ClientError`; they are about this provider, not the request,
/// so they now bench it (credentials) or move on to the next provider (refused).
#[must_use]
pub const fn classify_status(status: u16) -> OutcomeKind {
    match status {
        200..=399 => OutcomeKind::Success,
        408 | 504 | 524 | 598 => OutcomeKind::Timeout,
        429 => OutcomeKind::RateLimited,
        499 => OutcomeKind::Cancelled,
        401 | 403 => OutcomeKind::CredentialsRejected,
        404 | 413 => OutcomeKind::Refused,
        400..=498 => OutcomeKind::ClientError,
        _ => OutcomeKind::ServerError,
    }
}

/// What a known body code or type says (rows 4–11), or `None` for a word the table does not know.
/// `retry_header` is whether any retry header is present.
fn code_kind(code: &str, retry_header: bool) -> Option<OutcomeKind> {
    const REFUSED: [&str; 5] = [
        "context_length_exceeded",
        "string_above_max_length",
        "model_not_found",
        "request_too_large",
        "not_found_error",
    ];
    const QUOTA: [&str; 3] = [
        "insufficient_quota",
        "billing_hard_limit_reached",
        "billing_not_active",
    ];
    const CREDENTIALS: [&str; 3] = [
        "authentication_error",
        "permission_error",
        "invalid_api_key",
    ];
    const SERVER: [&str; 3] = ["overloaded_error", "api_error", "server_error"];
    const CLIENT: [&str; 2] = ["content_filter", "content_policy_violation"];
    let c = code.trim();
    let is = |words: &[&str]| words.iter().any(|w| w.eq_ignore_ascii_case(c));
    let later_or_exhausted = if retry_header {
        OutcomeKind::RateLimited
    } else {
        OutcomeKind::QuotaExhausted
    };
    if is(&REFUSED) {
        Some(OutcomeKind::Refused)
    } else if is(&QUOTA) || is(&["rate_limit_error"]) {
        Some(later_or_exhausted)
    } else if is(&CREDENTIALS) {
        Some(OutcomeKind::CredentialsRejected)
    } else if is(&SERVER) {
        Some(OutcomeKind::ServerError)
    } else if is(&["rate_limit_exceeded"]) {
        Some(OutcomeKind::RateLimited)
    } else if is(&["timeout_error"]) {
        Some(OutcomeKind::Timeout)
    } else if is(&CLIENT) {
        Some(OutcomeKind::ClientError)
    } else {
        None
    }
}

/// Whether `s` holds a value: given and not blank.
fn given(s: Option<&str>) -> bool {
    s.is_some_and(|v| !v.trim().is_empty())
}

/// Whether `haystack` contains `needle` (lowercase ASCII), ignoring ASCII case.
fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

/// Row 12's wording.
fn says_context_length(message: &str) -> bool {
    const WORDING: [&str; 4] = [
        "maximum context length",
        "context length",
        "prompt is too long",
        "too many tokens",
    ];
    WORDING.iter().any(|w| contains_ignore_case(message, w))
}

fn kind(f: &Facts<'_>) -> OutcomeKind {
    // Rows 1–3.
    match f.transport {
        Some(Transport::Aborted) => return OutcomeKind::Cancelled,
        Some(Transport::Timeout) => return OutcomeKind::Timeout,
        Some(Transport::Connection) => return OutcomeKind::ConnectionError,
        _ => {}
    }
    // Rows 4–11: the code first, then the type.
    let retry_header =
        given(f.retry_after) || given(f.retry_after_ms) || given(f.x_ms_retry_after_ms);
    let known = |c: Option<&str>| c.and_then(|c| code_kind(c, retry_header));
    if let Some(k) = known(f.error_code).or_else(|| known(f.error_type)) {
        return k;
    }
    let by_status = f.status.map(classify_status);
    // Row 12.
    if matches!(by_status, None | Some(OutcomeKind::ClientError))
        && f.message.is_some_and(says_context_length)
    {
        return OutcomeKind::Refused;
    }
    let error_body = given(f.error_code) || given(f.error_type);
    match (f.transport, by_status) {
        // Rows 13–14.
        (Some(_), Some(k)) if k != OutcomeKind::Success => k,
        (Some(_), _) => OutcomeKind::ServerError,
        // Row 15.
        (None, Some(OutcomeKind::Success)) if error_body => OutcomeKind::ServerError,
        // Rows 16–24.
        (None, Some(k)) => k,
        // Row 25.
        (None, None) if error_body => OutcomeKind::ServerError,
        // Row 26.
        (None, None) => OutcomeKind::Cancelled,
    }
}

/// Milliseconds, possibly with a fraction that rounds up; `None` for anything else (including a
/// sign, so Azure's `-1` is unknown). Saturates at `u64::MAX`.
fn parse_millis(value: &str) -> Option<u64> {
    let v = value.trim();
    let (int_part, frac_part) = match v.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (v, None),
    };
    if int_part.is_empty() || !int_part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut ms: u64 = 0;
    for b in int_part.bytes() {
        ms = ms.saturating_mul(10).saturating_add(u64::from(b - b'0'));
    }
    if let Some(f) = frac_part {
        if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if f.bytes().any(|b| b != b'0') {
            ms = ms.saturating_add(1);
        }
    }
    Some(ms)
}

fn retry_after(f: &Facts<'_>) -> Option<u64> {
    f.retry_after_ms
        .and_then(parse_millis)
        .or_else(|| f.x_ms_retry_after_ms.and_then(parse_millis))
        .or_else(|| {
            f.retry_after
                .and_then(|v| parse_retry_after(v, f.now_unix_ms))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use OutcomeKind as K;

    fn kind_of(f: Facts<'_>) -> OutcomeKind {
        classify(&f).kind
    }

    fn status(s: u16) -> Facts<'static> {
        Facts {
            status: Some(s),
            ..Facts::default()
        }
    }

    #[test]
    fn statuses() {
        for (s, k) in [
            (200, K::Success),
            (304, K::Success),
            (400, K::ClientError),
            (401, K::CredentialsRejected),
            (403, K::CredentialsRejected),
            (404, K::Refused),
            (408, K::Timeout),
            (413, K::Refused),
            (422, K::ClientError),
            (429, K::RateLimited),
            (499, K::Cancelled),
            (500, K::ServerError),
            (503, K::ServerError),
            (504, K::Timeout),
            (524, K::Timeout),
            (529, K::ServerError),
            (598, K::Timeout),
            (100, K::ServerError),
            (0, K::ServerError),
            (u16::MAX, K::ServerError),
        ] {
            assert_eq!(classify_status(s), k, "{s}");
        }
    }

    #[test]
    fn status_alone_is_the_status_column() {
        for s in 0..=u16::MAX {
            assert_eq!(kind_of(status(s)), classify_status(s), "{s}");
        }
    }

    #[test]
    fn transport() {
        let t = |t, s: Option<u16>, code: Option<&'static str>| {
            kind_of(Facts {
                transport: Some(t),
                status: s,
                error_code: code,
                ..Facts::default()
            })
        };
        assert_eq!(t(Transport::Timeout, None, None), K::Timeout);
        assert_eq!(t(Transport::Connection, None, None), K::ConnectionError);
        assert_eq!(t(Transport::Malformed, None, None), K::ServerError);
        assert_eq!(t(Transport::Protocol, None, None), K::ServerError);
        assert_eq!(t(Transport::Aborted, None, None), K::Cancelled);
        // Timeout, connection and abort win over a body.
        let quota = Some("insufficient_quota");
        assert_eq!(t(Transport::Timeout, Some(429), quota), K::Timeout);
        assert_eq!(t(Transport::Aborted, Some(500), quota), K::Cancelled);
        // A known code wins over a malformed or broken stream.
        assert_eq!(
            t(Transport::Protocol, None, Some("overloaded_error")),
            K::ServerError
        );
        assert_eq!(t(Transport::Protocol, Some(200), quota), K::QuotaExhausted);
        assert_eq!(t(Transport::Malformed, Some(200), None), K::ServerError);
        assert_eq!(t(Transport::Malformed, Some(429), None), K::RateLimited);
        assert_eq!(
            t(Transport::Malformed, Some(401), None),
            K::CredentialsRejected
        );
        assert_eq!(
            t(Transport::Malformed, Some(200), Some("weird")),
            K::ServerError
        );
        for tr in Transport::ALL {
            assert_eq!(Transport::from_name(tr.name()), Some(tr));
        }
        assert_eq!(Transport::from_name("Timeout"), None);
    }

    #[test]
    fn codes_and_types() {
        let c = |code: &'static str, ty: Option<&'static str>, s: u16, ra: Option<&'static str>| {
            kind_of(Facts {
                status: Some(s),
                error_code: Some(code),
                error_type: ty,
                retry_after: ra,
                ..Facts::default()
            })
        };
        assert_eq!(c("context_length_exceeded", None, 400, None), K::Refused);
        assert_eq!(c(" Model_Not_Found ", None, 404, None), K::Refused);
        assert_eq!(c("insufficient_quota", None, 429, None), K::QuotaExhausted);
        assert_eq!(
            c("insufficient_quota", None, 429, Some("20")),
            K::RateLimited
        );
        assert_eq!(
            c("insufficient_quota", None, 429, Some("soon")),
            K::RateLimited
        );
        assert_eq!(
            c("insufficient_quota", None, 429, Some("  ")),
            K::QuotaExhausted
        );
        assert_eq!(
            c("invalid_api_key", None, 401, None),
            K::CredentialsRejected
        );
        assert_eq!(c("rate_limit_exceeded", None, 429, None), K::RateLimited);
        assert_eq!(c("content_filter", None, 400, None), K::ClientError);
        assert_eq!(c("timeout_error", None, 500, None), K::Timeout);
        // The code first, the type only when the code is unknown.
        assert_eq!(
            c(
                "context_length_exceeded",
                Some("invalid_request_error"),
                400,
                None
            ),
            K::Refused
        );
        assert_eq!(
            c("mystery", Some("overloaded_error"), 529, None),
            K::ServerError
        );
        assert_eq!(
            c("mystery", Some("rate_limit_error"), 429, None),
            K::QuotaExhausted
        );
        assert_eq!(
            c("mystery", Some("rate_limit_error"), 429, Some("3")),
            K::RateLimited
        );
        // An in-band error after a 200.
        assert_eq!(c("api_error", None, 200, None), K::ServerError);
        assert_eq!(c("mystery", None, 200, None), K::ServerError);
        assert_eq!(c("mystery", None, 400, None), K::ClientError);
        assert_eq!(c("", None, 200, None), K::Success);
    }

    #[test]
    fn messages() {
        let m = |s: Option<u16>, msg: &'static str| {
            kind_of(Facts {
                status: s,
                message: Some(msg),
                ..Facts::default()
            })
        };
        let long = "This model's MAXIMUM CONTEXT LENGTH is 8192 tokens";
        assert_eq!(m(Some(400), long), K::Refused);
        assert_eq!(m(None, "prompt is too long: 210000 tokens"), K::Refused);
        assert_eq!(m(Some(429), "too many tokens per minute"), K::RateLimited);
        assert_eq!(m(Some(500), long), K::ServerError);
        assert_eq!(m(Some(200), long), K::Success);
        assert_eq!(m(Some(400), "bad"), K::ClientError);
        assert_eq!(m(None, "TypeError: x is undefined"), K::Cancelled);
        assert_eq!(m(None, ""), K::Cancelled);
        assert_eq!(m(None, "toomany"), K::Cancelled);
    }

    #[test]
    fn nothing_at_all_is_cancelled() {
        assert_eq!(kind_of(Facts::default()), K::Cancelled);
        let code_only = Facts {
            error_type: Some("mystery"),
            ..Facts::default()
        };
        assert_eq!(kind_of(code_only), K::ServerError);
    }

    #[test]
    fn retry_headers() {
        let r = |ra: Option<&'static str>, ms: Option<&'static str>, x: Option<&'static str>| {
            classify(&Facts {
                status: Some(429),
                retry_after: ra,
                retry_after_ms: ms,
                x_ms_retry_after_ms: x,
                now_unix_ms: Some(784_111_767_000),
                ..Facts::default()
            })
            .retry_after_ms
        };
        assert_eq!(r(Some("9"), Some("1500"), Some("700")), Some(1500));
        assert_eq!(r(Some("9"), Some("1500.2"), None), Some(1501));
        assert_eq!(r(Some("9"), Some("1500.000"), None), Some(1500));
        assert_eq!(r(Some("9"), Some("-1"), Some("700")), Some(700));
        assert_eq!(r(Some("9"), Some("-1"), Some("-1")), Some(9000));
        assert_eq!(r(None, Some("0"), None), Some(0));
        assert_eq!(r(None, Some("1."), Some(".5")), None);
        assert_eq!(
            r(None, Some("99999999999999999999999"), None),
            Some(u64::MAX)
        );
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        assert_eq!(r(Some(date), None, Some("")), Some(10_000));
        assert_eq!(r(None, None, None), None);
    }

    #[test]
    fn the_readme_shows_this_table() {
        let readme = include_str!("../../../README.md");
        let rows = include_str!("classify.rs")
            .lines()
            .filter_map(|l| l.strip_prefix("//! "))
            .filter(|l| l.starts_with("| "));
        for row in rows {
            assert!(readme.lines().any(|r| r == row), "the README lacks {row}");
        }
    }

    #[test]
    fn classification_outcome() {
        let c = classify(&Facts {
            status: Some(503),
            retry_after: Some("5"),
            ..Facts::default()
        });
        assert_eq!(
            c.outcome(12),
            Outcome {
                kind: K::ServerError,
                latency_ms: 12,
                retry_after_ms: Some(5000)
            }
        );
    }
}
