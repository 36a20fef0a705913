//! `classify(facts)`: the core's one classification table (`failover_core::classify`), so the
//! JS layer never decides an outcome kind itself; `headroom(headers, nowUnixMs)`: the core's
//! reading of the rate-limit headers (`failover_core::Headroom`). The facts object takes the core's snake_case
//! field names, like every other data object of this package.

use failover_core::{
    ChunkFacts, ChunkKind, Dimension, Facts, Headroom, OutcomeKind, Quota, Transport,
    classify as core_classify, classify_chunk,
};
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

/// What the rate-limit headers said about one dimension; each field a number or null (unknown).
/// Counts above 2^53 lose precision as JS numbers.
#[napi(object, use_nullable = true)]
pub struct NativeQuota {
    /// The window's limit (never 0).
    pub limit: Option<f64>,
    /// What is left in the window (0 only with a known positive limit).
    pub remaining: Option<f64>,
    /// Milliseconds from now until the window resets.
    #[napi(js_name = "reset_in_ms")]
    pub reset_in_ms: Option<f64>,
}

impl From<Quota> for NativeQuota {
    fn from(q: Quota) -> Self {
        NativeQuota {
            limit: q.limit.map(|n| n as f64),
            remaining: q.remaining.map(|n| n as f64),
            reset_in_ms: q.reset_in_ms.map(|n| n as f64),
        }
    }
}

/// One answer's rate-limit headers, read by the core's `Headroom`.
#[napi(object, use_nullable = true)]
pub struct NativeHeadroom {
    /// Requests per window.
    pub requests: NativeQuota,
    /// Tokens per window.
    pub tokens: NativeQuota,
    /// Input tokens per window (Anthropic).
    #[napi(js_name = "input_tokens")]
    pub input_tokens: NativeQuota,
    /// Output tokens per window (Anthropic).
    #[napi(js_name = "output_tokens")]
    pub output_tokens: NativeQuota,
    /// The smallest remaining/limit over the dimensions reported, in parts per million, or null.
    #[napi(js_name = "headroom_ppm")]
    pub headroom_ppm: Option<f64>,
    /// How many of the pairs were rate-limit headers.
    pub recognised: f64,
}

/// The core's `Headroom`: reads one answer's headers, `[name, value]` string pairs (such as
/// `[...response.headers]`; other headers are ignored), with the wall clock `nowUnixMs`
/// (`Date.now()`, needed only for Anthropic's reset times). See the rules in the core's
/// `headroom` module.
#[napi]
pub fn headroom(
    env: Env,
    headers: Vec<Vec<String>>,
    now_unix_ms: Option<f64>,
) -> napi::Result<NativeHeadroom> {
    let r = guarded(|| {
        let now = now_unix_ms.map(|n| hot::time("nowUnixMs", n)).transpose()?;
        let (h, recognised) = read_headroom(&headers, now)?;
        let q = |d: Dimension| NativeQuota::from(h.quota(d));
        Ok(NativeHeadroom {
            requests: q(Dimension::Requests),
            tokens: q(Dimension::Tokens),
            input_tokens: q(Dimension::InputTokens),
            output_tokens: q(Dimension::OutputTokens),
            headroom_ppm: h.headroom_ppm().map(f64::from),
            recognised: f64::from(recognised),
        })
    });
    Failure::check(&env, r)
}

/// `[name, value]` string pairs fed in order to one `Headroom`; also how many were rate-limit
/// headers.
pub(crate) fn read_headroom(
    headers: &[Vec<String>],
    now_unix_ms: Option<u64>,
) -> Result<(Headroom, u32), Failure> {
    let mut h = Headroom::default();
    let mut recognised = 0u32;
    for pair in headers {
        let [name, value] = pair.as_slice() else {
            return Err(Failure::Range(
                "headers".to_string(),
                "must be a list of [name, value] string pairs".to_string(),
            ));
        };
        recognised += u32::from(h.header(name, value, now_unix_ms));
    }
    Ok((h, recognised))
}

/// A chunk's kind as one number: bit 1 content, bit 2 terminal (0 other, 1 content, 2 terminal,
/// 3 last content), or for an in-band error `16 +` the index of its outcome in `outcomeKinds()`.
/// A number, not a string, so the per-chunk call allocates nothing on either side.
fn chunk_code(k: ChunkKind) -> u32 {
    match k {
        ChunkKind::Error(c) => {
            16 + OutcomeKind::ALL
                .iter()
                .position(|o| *o == c.kind)
                .expect("every outcome kind is in ALL") as u32
        }
        k => u32::from(k.is_content()) | (u32::from(k.is_terminal()) << 1),
    }
}

/// The core's `classify_chunk` for the common chunk, in few arguments (each argument costs a type
/// check per chunk): the chunk's `type` (a string, or `undefined`), whether a choice's delta
/// carries content, and the first `finish_reason` (a string, or `undefined`). A chunk with an SSE
/// event name, an `error` member or plain text goes through `chunkKind`. Returns `chunkKind`'s
/// number.
#[napi]
pub fn chunk_kind_of(
    kind: Option<String>,
    delta_content: bool,
    finish_reason: Option<String>,
) -> u32 {
    chunk_code(classify_chunk(&ChunkFacts {
        kind: kind.as_deref(),
        delta_content,
        finish_reason: finish_reason.as_deref(),
        ..ChunkFacts::default()
    }))
}

/// The core's `classify_chunk` (the chunk table in the core's `chunk` module): what one chunk of a
/// provider's stream is, from the facts `lib/stream.js` read off it: the chunk's `type`, the SSE
/// event name, a plain text chunk's length, whether a choice's delta carries content, the first
/// `finish_reason`, whether it has an `error` member, and that error's code, type and message
/// (each missing, `undefined` or `null` when absent).
///
/// Returns a number: bit 1 content, bit 2 terminal (0 other, 1 content, 2 terminal, 3 last
/// content), or for an in-band error `16 +` the index of its outcome kind in `outcomeKinds()`.
#[napi]
#[allow(clippy::too_many_arguments)]
pub fn chunk_kind(
    kind: Option<String>,
    event: Option<String>,
    text_len: Option<f64>,
    delta_content: Option<bool>,
    finish_reason: Option<String>,
    error: Option<bool>,
    error_code: Option<String>,
    error_type: Option<String>,
    message: Option<String>,
) -> u32 {
    chunk_code(classify_chunk(&ChunkFacts {
        // A length is a count: anything not a finite number of at least 1 is read as empty.
        text_len: text_len.map(|n| {
            if n.is_finite() && n >= 1.0 {
                n as usize
            } else {
                0
            }
        }),
        kind: kind.as_deref(),
        event: event.as_deref(),
        delta_content: delta_content.unwrap_or(false),
        finish_reason: finish_reason.as_deref(),
        error: error.unwrap_or(false),
        error_code: error_code.as_deref(),
        error_type: error_type.as_deref(),
        message: message.as_deref(),
    }))
}
