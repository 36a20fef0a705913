//! `failover_core._native`: the Python extension module of failover-core. A thin layer over the
//! core's `DefaultRouter` and its request engine (`Request`, internal until the drivers are built
//! on it); the idiomatic API (`call`, `acall`, typed events, views as dataclasses, exception
//! classification) is the Python package around it (`python/failover_core`).
//!
//! Every conversion of a core error into a Python exception is in [`error`]; every conversion of
//! a Python value into a core value is in [`convert`]. Validation is the core's.
#![forbid(unsafe_code)]

mod chunk;
mod convert;
mod error;
mod fleet;
mod request;
mod router;

use failover_core::policy::FIELDS;
use failover_core::{
    Dimension, Facts, Headroom, OutcomeKind, Transport, classify as core_classify,
    classify_status as core_classify_status, hash_key as core_hash_key,
};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString, PyTuple};

/// Classifies an HTTP status with the core's `classify_status` (the status column of the core's
/// classification table): an outcome kind name such as `"success"` or `"credentials_rejected"`.
#[pyfunction]
fn classify_status(status: &Bound<'_, PyAny>) -> PyResult<&'static str> {
    Ok(core_classify_status(status_arg(status)?).name())
}

fn status_arg(status: &Bound<'_, PyAny>) -> PyResult<u16> {
    let s = convert::u64_arg("status", "an int HTTP status code", status)?;
    u16::try_from(s)
        .map_err(|_| error::arg_value_u64("status", "an int HTTP status code in 0..=65535", s))
}

/// A `str` argument, or `None`.
fn text_arg(arg: &str, v: Option<&Bound<'_, PyAny>>) -> PyResult<Option<String>> {
    match v {
        None => Ok(None),
        Some(v) if v.is_none() => Ok(None),
        Some(v) => match v.cast::<PyString>() {
            Ok(s) => Ok(Some(s.to_cow()?.into_owned())),
            Err(_) => Err(error::arg_type(arg, "a str", v)),
        },
    }
}

/// A header value (`str`, or `bytes` read as UTF-8 with replacement), or `None`.
fn header_arg(arg: &str, v: Option<&Bound<'_, PyAny>>) -> PyResult<Option<String>> {
    match v {
        None => Ok(None),
        Some(v) if v.is_none() => Ok(None),
        Some(v) => {
            if let Ok(s) = v.cast::<PyString>() {
                Ok(Some(s.to_cow()?.into_owned()))
            } else if let Ok(b) = v.cast::<PyBytes>() {
                Ok(Some(String::from_utf8_lossy(b.as_bytes()).into_owned()))
            } else {
                Err(error::arg_type(arg, "a header value (str or bytes)", v))
            }
        }
    }
}

/// Classifies one attempt with the core's `classify`, the one classification table every
/// language shares, from the facts read off its answer or error (every argument optional):
/// `status`, the body's `error_code` and `error_type`, the error `message`, the `transport`
/// problem (`"timeout"`, `"connection"`, `"malformed"`, `"protocol"`, `"aborted"`), the raw
/// `retry_after`, `retry_after_ms` and `x_ms_retry_after_ms` headers, and `now_unix_ms` (the wall
/// clock, for a `retry-after` HTTP-date). Returns `(outcome kind name, retry_after_ms or None)`.
#[pyfunction]
#[pyo3(signature = (
    *,
    status=None,
    error_code=None,
    error_type=None,
    message=None,
    transport=None,
    retry_after=None,
    retry_after_ms=None,
    x_ms_retry_after_ms=None,
    now_unix_ms=None,
))]
#[allow(clippy::too_many_arguments)]
fn classify(
    status: Option<&Bound<'_, PyAny>>,
    error_code: Option<&Bound<'_, PyAny>>,
    error_type: Option<&Bound<'_, PyAny>>,
    message: Option<&Bound<'_, PyAny>>,
    transport: Option<&Bound<'_, PyAny>>,
    retry_after: Option<&Bound<'_, PyAny>>,
    retry_after_ms: Option<&Bound<'_, PyAny>>,
    x_ms_retry_after_ms: Option<&Bound<'_, PyAny>>,
    now_unix_ms: Option<&Bound<'_, PyAny>>,
) -> PyResult<(&'static str, Option<u64>)> {
    let status = match status {
        Some(s) if !s.is_none() => Some(status_arg(s)?),
        _ => None,
    };
    let transport = match (text_arg("transport", transport)?, transport) {
        (Some(name), Some(obj)) => Some(Transport::from_name(&name).ok_or_else(|| {
            error::arg_value(
                "transport",
                "one of 'timeout', 'connection', 'malformed', 'protocol', 'aborted'",
                obj,
            )
        })?),
        _ => None,
    };
    let now_unix_ms = match now_unix_ms {
        Some(n) if !n.is_none() => Some(convert::u64_arg(
            "now_unix_ms",
            "an int of Unix milliseconds",
            n,
        )?),
        _ => None,
    };
    let (code, ty, msg) = (
        text_arg("error_code", error_code)?,
        text_arg("error_type", error_type)?,
        text_arg("message", message)?,
    );
    let (ra, ra_ms, x_ms) = (
        header_arg("retry_after", retry_after)?,
        header_arg("retry_after_ms", retry_after_ms)?,
        header_arg("x_ms_retry_after_ms", x_ms_retry_after_ms)?,
    );
    let c = core_classify(&Facts {
        status,
        error_code: code.as_deref(),
        error_type: ty.as_deref(),
        message: msg.as_deref(),
        transport,
        retry_after: ra.as_deref(),
        retry_after_ms: ra_ms.as_deref(),
        x_ms_retry_after_ms: x_ms.as_deref(),
        now_unix_ms,
    });
    Ok((c.kind.name(), c.retry_after_ms))
}

/// Parses a `Retry-After` header value with the core's `parse_retry_after`: milliseconds from now,
/// or `None` when it cannot be parsed. An HTTP-date needs `now_unix_ms` (the wall clock, Unix ms):
/// without it a date gives `None`.
#[pyfunction]
#[pyo3(signature = (value, now_unix_ms=None))]
fn parse_retry_after(
    value: &Bound<'_, PyAny>,
    now_unix_ms: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<u64>> {
    let text = if let Ok(s) = value.cast::<PyString>() {
        s.to_cow()?.into_owned()
    } else if let Ok(b) = value.cast::<PyBytes>() {
        String::from_utf8_lossy(b.as_bytes()).into_owned()
    } else {
        return Err(error::arg_type(
            "value",
            "a header value (str or bytes)",
            value,
        ));
    };
    let now = match now_unix_ms {
        None => None,
        Some(n) => Some(convert::u64_arg(
            "now_unix_ms",
            "an int of Unix milliseconds",
            n,
        )?),
    };
    Ok(failover_core::parse_retry_after(&text, now))
}

/// The core's stable 64-bit hash of a sticky key (FNV-1a), as `pick(key=...)` uses it.
#[pyfunction]
fn hash_key(key: &Bound<'_, PyAny>) -> PyResult<u64> {
    if let Ok(s) = key.cast::<PyString>() {
        Ok(core_hash_key(s.to_cow()?.as_bytes()))
    } else if let Ok(b) = key.cast::<PyBytes>() {
        Ok(core_hash_key(b.as_bytes()))
    } else {
        Err(error::arg_type("key", "str or bytes", key))
    }
}

/// Reads one answer's rate-limit headers with the core's `Headroom` (the rules are in the core's
/// `headroom` module): `headers` is an iterable of `(name, value)` pairs (`str` or `bytes`, such
/// as `response.headers.items()`); other headers are ignored. `now_unix_ms` (the wall clock) is
/// needed only for Anthropic's reset times. Returns a dict: for each of `requests`, `tokens`,
/// `input_tokens`, `output_tokens` a dict `{limit, remaining, reset_in_ms}` (each an int or
/// None), `headroom_ppm` (the smallest remaining/limit in parts per million, or None) and
/// `recognised` (how many pairs were rate-limit headers).
#[pyfunction]
#[pyo3(signature = (headers, now_unix_ms=None))]
fn headroom<'py>(
    py: Python<'py>,
    headers: &Bound<'py, PyAny>,
    now_unix_ms: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let now_unix_ms = match now_unix_ms {
        Some(n) if !n.is_none() => Some(convert::u64_arg(
            "now_unix_ms",
            "an int of Unix milliseconds",
            n,
        )?),
        _ => None,
    };
    let (h, recognised) = read_headroom(headers, now_unix_ms)?;
    let out = PyDict::new(py);
    for d in Dimension::ALL {
        let q = h.quota(d);
        let dq = PyDict::new(py);
        dq.set_item("limit", q.limit)?;
        dq.set_item("remaining", q.remaining)?;
        dq.set_item("reset_in_ms", q.reset_in_ms)?;
        out.set_item(d.name(), dq)?;
    }
    out.set_item("headroom_ppm", h.headroom_ppm())?;
    out.set_item("recognised", recognised)?;
    Ok(out)
}

/// Reads `headers` (an iterable of `(name, value)` pairs of `str` or `bytes`, or a mapping such
/// as a dict or httpx/requests/aiohttp headers, whose `items()` are read) into one `Headroom`;
/// returns it and how many pairs were rate-limit headers.
pub(crate) fn read_headroom(
    headers: &Bound<'_, PyAny>,
    now_unix_ms: Option<u64>,
) -> PyResult<(Headroom, u64)> {
    const WANT: &str = "an iterable of (name, value) pairs of str or bytes, or a mapping";
    let py = headers.py();
    let pairs = if !headers.is_instance_of::<PyString>()
        && let Some(items) = headers.getattr_opt(pyo3::intern!(py, "items"))?
        && items.is_callable()
    {
        items.call0()?
    } else {
        headers.clone()
    };
    let mut h = Headroom::default();
    let mut recognised = 0u64;
    let items = pairs
        .try_iter()
        .map_err(|_| error::arg_type("headers", WANT, headers))?;
    for item in items {
        let item = item?;
        let pair = || error::arg_type("headers", WANT, &item);
        if item.is_instance_of::<PyString>()
            || item.is_instance_of::<PyBytes>()
            || item.len().ok() != Some(2)
        {
            return Err(pair());
        }
        let name = header_arg("headers", Some(&item.get_item(0)?))?.ok_or_else(pair)?;
        let value = header_arg("headers", Some(&item.get_item(1)?))?.ok_or_else(pair)?;
        recognised += u64::from(h.header(&name, &value, now_unix_ms));
    }
    Ok((h, recognised))
}

/// The default clock of every `now_ms` argument: `time.monotonic_ns() // 1_000_000`, read natively.
#[pyfunction]
fn monotonic_ms() -> u64 {
    convert::monotonic_ms()
}

/// Checks a policy (a dict and/or keyword arguments) with the core's rules, without building a
/// router. Raises `ConfigError`.
#[pyfunction]
#[pyo3(signature = (policy=None, /, **policy_fields))]
fn validate_policy(
    py: Python<'_>,
    policy: Option<&Bound<'_, PyAny>>,
    policy_fields: Option<&Bound<'_, PyDict>>,
) -> PyResult<()> {
    let p = router::build_policy(py, policy, policy_fields)?;
    p.validate(120).map_err(|e| error::config(py, &e))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    convert::init_clock(py)?;
    error::register(m)?;
    m.add_class::<router::Router>()?;
    m.add_class::<router::Ticket>()?;
    m.add_class::<request::Request>()?;
    m.add_class::<fleet::Fleet>()?;
    m.add("FLEET_SCRIPT", fleet::SCRIPT)?;
    m.add(
        "DURATION_BUCKETS_S",
        pyo3::types::PyTuple::new(m.py(), failover_core::DURATION_BUCKETS_S)?,
    )?;
    m.add_class::<request::PyAttempt>()?;
    m.add_class::<request::Pending>()?;
    m.add_function(wrap_pyfunction!(classify, m)?)?;
    m.add_function(wrap_pyfunction!(classify_status, m)?)?;
    m.add_function(wrap_pyfunction!(chunk::chunk_kind_of, m)?)?;
    m.add_function(wrap_pyfunction!(headroom, m)?)?;
    m.add_function(wrap_pyfunction!(parse_retry_after, m)?)?;
    m.add_function(wrap_pyfunction!(hash_key, m)?)?;
    m.add_function(wrap_pyfunction!(monotonic_ms, m)?)?;
    m.add_function(wrap_pyfunction!(validate_policy, m)?)?;
    m.add_function(wrap_pyfunction!(router::_set_event_hook, m)?)?;
    m.add(
        "OUTCOMES",
        PyTuple::new(py, OutcomeKind::ALL.iter().map(|k| k.name()))?,
    )?;
    m.add("POLICY_FIELDS", PyTuple::new(py, FIELDS)?)?;
    m.add(
        "TRANSPORTS",
        PyTuple::new(py, Transport::ALL.iter().map(|t| t.name()))?,
    )?;
    m.add("MAX_PROVIDERS", 16)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
