//! `failover_core._native`: the Python extension module of failover-core. A thin layer over the
//! core's `DefaultRouter`; the idiomatic API (`call`, `acall`, typed events, views as dataclasses,
//! exception classification) is the Python package around it (`python/failover_core`).
//!
//! Every conversion of a core error into a Python exception is in [`error`]; every conversion of
//! a Python value into a core value is in [`convert`]. Validation is the core's.
#![forbid(unsafe_code)]

mod convert;
mod error;
mod router;

use failover_core::policy::FIELDS;
use failover_core::{OutcomeKind, classify_status as core_classify, hash_key as core_hash_key};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString, PyTuple};

/// Classifies an HTTP status with the core's `classify_status`: one of `"success"`,
/// `"rate_limited"`, `"server_error"`, `"timeout"`, `"client_error"`, `"cancelled"`.
#[pyfunction]
fn classify_status(status: &Bound<'_, PyAny>) -> PyResult<&'static str> {
    let s = convert::u64_arg("status", "an int HTTP status code", status)?;
    let s = u16::try_from(s)
        .map_err(|_| error::arg_value_u64("status", "an int HTTP status code in 0..=65535", s))?;
    Ok(core_classify(s).name())
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
    m.add_class::<router::Failure>()?;
    m.add_function(wrap_pyfunction!(classify_status, m)?)?;
    m.add_function(wrap_pyfunction!(parse_retry_after, m)?)?;
    m.add_function(wrap_pyfunction!(hash_key, m)?)?;
    m.add_function(wrap_pyfunction!(monotonic_ms, m)?)?;
    m.add_function(wrap_pyfunction!(validate_policy, m)?)?;
    m.add(
        "OUTCOMES",
        PyTuple::new(py, OutcomeKind::ALL.iter().map(|k| k.name()))?,
    )?;
    m.add("POLICY_FIELDS", PyTuple::new(py, FIELDS)?)?;
    m.add("MAX_PROVIDERS", 16)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
