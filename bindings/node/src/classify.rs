//! `classify(facts)`: the core's one classification table (`failover_core::classify`), so the
//! JS layer never decides an outcome kind itself. The facts object takes the core's snake_case
//! field names, like every other data object of this package.

use failover_core::{Facts, Transport, classify as core_classify};
use napi::bindgen_prelude::Env;
use napi_derive::napi;

use crate::error::{Failure, Res};
use crate::{guarded, hot};

/// What the JS layer read off one attempt's answer or error. Every field is optional: missing,
/// `undefined` and `null` all mean "not known" (`headers.get()` answers `null`). Hence the
/// `Option<Option<_>>`: the outer `Option` is a missing field, the inner one `null`.
#[napi(object)]
pub struct NativeFacts {
    /// The HTTP status, an integer 0..=65535.
    pub status: Option<Option<f64>>,
    /// The body's `error.code`, e.g. `"context_length_exceeded"`, `"insufficient_quota"`.
    #[napi(js_name = "error_code")]
    pub error_code: Option<Option<String>>,
    /// The body's `error.type`, e.g. `"overloaded_error"`, `"rate_limit_error"`.
    #[napi(js_name = "error_type")]
    pub error_type: Option<Option<String>>,
    /// The error message, searched for context-length wording.
    pub message: Option<Option<String>>,
    /// What went wrong on the wire: `"timeout"`, `"connection"`, `"malformed"`, `"protocol"` or
    /// `"aborted"`.
    pub transport: Option<Option<String>>,
    /// The raw `retry-after` header: seconds or an HTTP-date.
    #[napi(js_name = "retry_after")]
    pub retry_after: Option<Option<String>>,
    /// The raw `retry-after-ms` header.
    #[napi(js_name = "retry_after_ms")]
    pub retry_after_ms: Option<Option<String>>,
    /// The raw `x-ms-retry-after-ms` header (Azure).
    #[napi(js_name = "x_ms_retry_after_ms")]
    pub x_ms_retry_after_ms: Option<Option<String>>,
    /// The wall clock as Unix milliseconds (`Date.now()`), for a `retry-after` HTTP-date.
    #[napi(js_name = "now_unix_ms")]
    pub now_unix_ms: Option<Option<f64>>,
}

/// The verdict: an outcome kind name and the provider's retry hint in ms (or null).
#[napi(object, use_nullable = true)]
pub struct NativeClassification {
    /// The outcome kind name, e.g. `"rate_limited"`.
    pub outcome: String,
    /// The provider's retry hint in milliseconds from now, or null.
    #[napi(js_name = "retry_after_ms")]
    pub retry_after_ms: Option<f64>,
}

/// A string field: missing, `undefined` and `null` are all `None`.
fn text(v: &Option<Option<String>>) -> Option<&str> {
    v.as_ref().and_then(|v| v.as_deref())
}

fn facts_of(f: &NativeFacts) -> Res<Facts<'_>> {
    let status = match f.status.flatten() {
        None => None,
        Some(s) => Some(hot::int_in(s, 65535.0).ok_or_else(|| {
            Failure::Range(
                "status".to_string(),
                "must be an integer HTTP status between 0 and 65535".to_string(),
            )
        })? as u16),
    };
    let transport = match text(&f.transport) {
        None => None,
        Some(t) => Some(Transport::from_name(t).ok_or_else(|| {
            Failure::Range(
                "transport".to_string(),
                "must be one of 'timeout', 'connection', 'malformed', 'protocol', 'aborted'"
                    .to_string(),
            )
        })?),
    };
    let now_unix_ms = f
        .now_unix_ms
        .flatten()
        .map(|n| hot::time("now_unix_ms", n))
        .transpose()?;
    Ok(Facts {
        status,
        error_code: text(&f.error_code),
        error_type: text(&f.error_type),
        message: text(&f.message),
        transport,
        retry_after: text(&f.retry_after),
        retry_after_ms: text(&f.retry_after_ms),
        x_ms_retry_after_ms: text(&f.x_ms_retry_after_ms),
        now_unix_ms,
    })
}

/// The core's `classify`: the outcome kind and retry hint of one attempt, from the facts read off
/// its answer or error (see the table in the core's `classify` module).
#[napi]
pub fn classify(env: Env, facts: NativeFacts) -> napi::Result<NativeClassification> {
    let r = guarded(|| {
        let c = core_classify(&facts_of(&facts)?);
        Ok(NativeClassification {
            outcome: c.kind.name().to_string(),
            retry_after_ms: c.retry_after_ms.map(|ms| ms as f64),
        })
    });
    Failure::check(&env, r)
}

/// Transport problem names, in the core's `Transport::ALL` order.
#[napi]
pub fn transports() -> Vec<&'static str> {
    Transport::ALL.iter().map(|t| t.name()).collect()
}
