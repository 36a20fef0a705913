//! Every Python exception the native module raises is made here: the exception types, the
//! conversion of the core's errors ([`failover_core::ConfigError`], [`failover_core::Unavailable`],
//! [`failover_core::RequestError`], a panic inside the engine), and the `TypeError`/`ValueError`
//! messages for bad arguments, so the wording is the same for every method.

use failover_core::{
    ConfigError as CoreConfigError, RequestError as CoreRequestError,
    Unavailable as CoreUnavailable,
};
use pyo3::exceptions::{PyException, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyType;
use pyo3::{IntoPyObjectExt, create_exception};

create_exception!(
    failover_core,
    FailoverError,
    PyException,
    "Base class of the errors failover-core raises at run time (not of `ConfigError`)."
);
create_exception!(
    failover_core,
    ConfigError,
    PyValueError,
    "The core refused a policy or the provider names. `code` is the core's stable identifier of \
     the broken rule (the same in Rust, Python and Node), `message` the core's wording."
);
create_exception!(
    failover_core,
    Unavailable,
    FailoverError,
    "No provider may be called now. `retry_after_ms` says when the soonest provider is expected \
     to take traffic again (0 when one already can but every provider was tried)."
);
create_exception!(
    failover_core,
    RequestError,
    FailoverError,
    "A request (`_native.Request`) cannot take this input in its current state; the input changed \
     nothing. `code` is the core's name: `no_attempt`, `not_streamed` or `finished`."
);
create_exception!(
    failover_core,
    InternalError,
    FailoverError,
    "The engine panicked (a bug in failover-core). The interpreter keeps running; the router \
     that panicked is poisoned and raises this on every later call: build a new one."
);

/// The exception types, for the module to export.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("FailoverError", py.get_type::<FailoverError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("Unavailable", py.get_type::<Unavailable>())?;
    m.add("InternalError", py.get_type::<InternalError>())?;
    m.add("RequestError", py.get_type::<RequestError>())?;
    Ok(())
}

/// Builds an exception instance of `ty` with `message` and sets `attrs` on it.
fn with_attrs<'py>(
    ty: Bound<'py, PyType>,
    message: String,
    attrs: &[(&str, Bound<'py, PyAny>)],
) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let exc = ty.call1((message.clone(),))?;
        exc.setattr("message", message.clone())?;
        for (k, v) in attrs {
            exc.setattr(*k, v)?;
        }
        Ok(PyErr::from_value(exc))
    };
    build().unwrap_or_else(|e| e)
}

/// The core refused the configuration: `ConfigError(message)` with `.code`, `.field` (the policy
/// field at fault, or `None`) and `.message`.
pub fn config(py: Python<'_>, e: &CoreConfigError) -> PyErr {
    let code = pyo3::types::PyString::new(py, e.code()).into_any();
    let field = match e.field() {
        Some(f) => pyo3::types::PyString::new(py, f).into_any(),
        None => py.None().into_bound(py),
    };
    with_attrs(
        py.get_type::<ConfigError>(),
        e.to_string(),
        &[("code", code), ("field", field)],
    )
}

/// No provider may be called: `Unavailable(message)` with `.retry_after_ms`.
pub fn unavailable(py: Python<'_>, u: &CoreUnavailable) -> PyErr {
    let ms = match u.retry_after_ms.into_bound_py_any(py) {
        Ok(v) => v,
        Err(e) => return e,
    };
    with_attrs(
        py.get_type::<Unavailable>(),
        u.to_string(),
        &[("retry_after_ms", ms)],
    )
}

/// A request refused an input: `RequestError(message)` with `.code` (the core's name).
pub fn request(py: Python<'_>, e: CoreRequestError) -> PyErr {
    let code = pyo3::types::PyString::new(py, e.name()).into_any();
    with_attrs(
        py.get_type::<RequestError>(),
        e.to_string(),
        &[("code", code)],
    )
}

/// A request used with a router other than the one it was started on.
pub fn foreign_request() -> PyErr {
    PyValueError::new_err(
        "the request was started on another router: drive it with the router it was started on",
    )
}

/// A request whose state was left half-updated by a panic inside the engine.
pub fn request_poisoned() -> PyErr {
    InternalError::new_err(
        "this request is poisoned: an earlier call panicked inside failover-core; start a new one",
    )
}

/// The engine panicked while serving `method`.
pub fn panicked(method: &str, payload: &(dyn core::any::Any + Send)) -> PyErr {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned());
    InternalError::new_err(format!(
        "failover-core panicked in `{method}`: {what} (this router is now poisoned; please report \
         the bug)"
    ))
}

/// A router that panicked earlier.
pub fn poisoned() -> PyErr {
    InternalError::new_err(
        "this router is poisoned: an earlier call panicked inside failover-core; build a new router",
    )
}

/// An argument of the wrong Python type: `TypeError("{arg} must be {expected}, not {got}")`.
pub fn arg_type(arg: &str, expected: &str, got: &Bound<'_, PyAny>) -> PyErr {
    let ty = got
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".to_owned());
    PyTypeError::new_err(format!("{arg} must be {expected}, not {ty}"))
}

/// An argument of the right type but a refused value: `ValueError("{arg} must be {rule}, got {v!r}")`.
pub fn arg_value(arg: &str, rule: &str, got: &Bound<'_, PyAny>) -> PyErr {
    let repr = got
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| "?".to_owned());
    PyValueError::new_err(format!("{arg} must be {rule}, got {repr}"))
}

/// A provider name this router does not have.
pub fn unknown_provider(arg: &str, name: &str, known: &[String]) -> PyErr {
    PyValueError::new_err(format!(
        "{arg}: unknown provider {name:?}; this router's providers are {known:?}"
    ))
}

/// A ticket from another router.
pub fn foreign_ticket() -> PyErr {
    PyValueError::new_err(
        "ticket was issued by another router: record an outcome with the router that picked it",
    )
}

/// Like [`arg_value`] for a value already converted to an integer.
pub fn arg_value_u64(arg: &str, rule: &str, got: u64) -> PyErr {
    PyValueError::new_err(format!("{arg} must be {rule}, got {got}"))
}

/// The core refused a fleet configuration: `ConfigError(message)` with `.code` (the rule's name,
/// e.g. `"period_out_of_range"`), `.field` `None` and `.message`.
pub fn fleet_config(py: Python<'_>, e: failover_core::fleet::FleetConfigError) -> PyErr {
    let code = e.code();
    with_attrs(
        py.get_type::<ConfigError>(),
        e.to_string(),
        &[
            ("code", pyo3::types::PyString::new(py, code).into_any()),
            ("field", py.None().into_bound(py)),
        ],
    )
}

/// A round's reply that does not have the round script's shape.
pub fn fleet_reply(what: &str) -> PyErr {
    PyValueError::new_err(format!("fleet round reply: {what}"))
}
