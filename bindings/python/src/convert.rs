//! Python values into the core's values: timestamps (with the monotonic clock as default),
//! latencies, `Retry-After` hints, outcome kinds, and policy values for `Policy::set`. Only type
//! and sign checks of the *arguments* happen here; every policy rule is the core's.

use std::sync::OnceLock;
use std::time::Instant;

use failover_core::{ConfigError as CoreConfigError, OutcomeKind, Policy, Value};
use pyo3::exceptions::{PyOverflowError, PyTypeError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::error;

/// `time.monotonic_ns()` when the module was loaded, and the `Instant` taken right after it: the
/// default clock is `time.monotonic_ns()` read without calling into Python (both are
/// `CLOCK_MONOTONIC` on Linux, the same uptime clock on macOS).
static CLOCK_BASE: OnceLock<(u64, Instant)> = OnceLock::new();

/// Anchors the default clock to Python's `time.monotonic_ns()`. Called once at import.
pub fn init_clock(py: Python<'_>) -> PyResult<()> {
    let ns: u64 = py
        .import(intern!(py, "time"))?
        .call_method0(intern!(py, "monotonic_ns"))?
        .extract()?;
    let _ = CLOCK_BASE.set((ns, Instant::now()));
    Ok(())
}

/// Milliseconds of `time.monotonic_ns()`, read natively (one `clock_gettime`).
#[inline]
pub fn monotonic_ms() -> u64 {
    ms_at(Instant::now())
}

/// `time.monotonic_ns() // 1_000_000` at `at`.
#[inline]
pub fn ms_at(at: Instant) -> u64 {
    let (base_ns, base) = *CLOCK_BASE.get_or_init(|| (0, Instant::now()));
    let elapsed = u64::try_from(at.saturating_duration_since(base).as_nanos()).unwrap_or(u64::MAX);
    base_ns.saturating_add(elapsed) / 1_000_000
}

/// A timestamp argument: `None` means "now" on the monotonic clock; otherwise an `int` of
/// milliseconds in [0, 2**64). Refuses `bool`, `float` and other types with a `TypeError` and
/// negative or too large integers with a `ValueError`, naming `arg`.
#[inline]
pub fn timestamp(arg: &'static str, v: Option<&Bound<'_, PyAny>>) -> PyResult<u64> {
    match v {
        None => Ok(monotonic_ms()),
        Some(obj) => u64_arg(arg, "an int number of milliseconds", obj),
    }
}

/// A non-negative integer argument below 2**64 (`bool` and `float` refused).
#[inline]
pub fn u64_arg(arg: &'static str, expected: &str, obj: &Bound<'_, PyAny>) -> PyResult<u64> {
    if obj.is_exact_instance_of::<PyInt>() {
        if let Ok(v) = obj.extract::<u64>() {
            return Ok(v);
        }
        return Err(error::arg_value(
            arg,
            "a non-negative integer below 2**64",
            obj,
        ));
    }
    if obj.is_instance_of::<PyBool>() || obj.is_instance_of::<PyFloat>() {
        return Err(error::arg_type(arg, expected, obj));
    }
    // int subclasses and objects with `__index__` (numpy integers).
    match obj.extract::<u64>() {
        Ok(v) => Ok(v),
        Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => Err(error::arg_value(
            arg,
            "a non-negative integer below 2**64",
            obj,
        )),
        Err(e) if e.is_instance_of::<PyTypeError>(obj.py()) => {
            Err(error::arg_type(arg, expected, obj))
        }
        Err(e) => Err(e),
    }
}

/// A duration in ms given as an int or a float (a measured latency): finite, not negative; floats
/// are rounded to the nearest ms; values above `max` saturate at `max`.
#[inline]
pub fn millis(arg: &'static str, obj: &Bound<'_, PyAny>, max: u64) -> PyResult<u64> {
    if obj.is_exact_instance_of::<PyInt>() {
        return match obj.extract::<u64>() {
            Ok(v) => Ok(v.min(max)),
            Err(_) if obj.gt(0i32).unwrap_or(false) => Ok(max),
            Err(_) => Err(error::arg_value(
                arg,
                "a finite, non-negative number of milliseconds",
                obj,
            )),
        };
    }
    if obj.is_instance_of::<PyBool>() {
        return Err(error::arg_type(arg, "an int or float of milliseconds", obj));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        let x = f.value();
        if !(x.is_finite() && x >= 0.0) {
            return Err(error::arg_value(
                arg,
                "a finite, non-negative number of milliseconds",
                obj,
            ));
        }
        let r = x.round();
        return Ok(if r >= max as f64 { max } else { r as u64 });
    }
    match obj.extract::<u64>() {
        Ok(v) => Ok(v.min(max)),
        Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => {
            if obj.gt(0i32).unwrap_or(false) {
                Ok(max)
            } else {
                Err(error::arg_value(
                    arg,
                    "a finite, non-negative number of milliseconds",
                    obj,
                ))
            }
        }
        Err(_) => Err(error::arg_type(arg, "an int or float of milliseconds", obj)),
    }
}

/// A latency in ms (saturates at `u32::MAX`, about 49 days).
#[inline]
pub fn latency(obj: Option<&Bound<'_, PyAny>>) -> PyResult<u32> {
    match obj {
        None => Ok(0),
        Some(o) => millis("latency_ms", o, u64::from(u32::MAX)).map(|v| v as u32),
    }
}

/// An optional `Retry-After` in ms.
#[inline]
pub fn retry_after(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<u64>> {
    match obj {
        None => Ok(None),
        Some(o) => millis("retry_after_ms", o, u64::MAX).map(Some),
    }
}

/// Every outcome name, for messages.
pub fn outcome_names() -> String {
    OutcomeKind::ALL
        .iter()
        .map(|k| k.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// An outcome kind given by its name (`"success"`, `"server_error"`, …). Literal strings in Python
/// code are interned, so the common case is a pointer comparison.
#[inline]
pub fn outcome_kind(obj: &Bound<'_, PyAny>) -> PyResult<OutcomeKind> {
    let py = obj.py();
    let names = OUTCOME_NAMES.get_or_init(py, || {
        OutcomeKind::ALL.map(|k| PyString::intern(py, k.name()).unbind())
    });
    for (s, k) in names.iter().zip(OutcomeKind::ALL) {
        if obj.is(s) {
            return Ok(k);
        }
    }
    let Ok(s) = obj.cast::<PyString>() else {
        return Err(error::arg_type("outcome", "an outcome name (str)", obj));
    };
    let name = s.to_cow()?;
    OutcomeKind::from_name(&name)
        .ok_or_else(|| error::arg_value("outcome", &format!("one of {}", outcome_names()), obj))
}

/// The interned outcome names, in `OutcomeKind::ALL` order.
static OUTCOME_NAMES: PyOnceLock<[Py<PyString>; OutcomeKind::ALL.len()]> = PyOnceLock::new();

/// A Python value converted for [`Value`] (which borrows its string).
enum Owned {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    /// A type no policy field takes; the name of what was given.
    Other(&'static str),
}

impl Owned {
    fn from_py(obj: &Bound<'_, PyAny>) -> PyResult<Owned> {
        if obj.is_none() {
            return Ok(Owned::Null);
        }
        if let Ok(b) = obj.cast::<PyBool>() {
            return Ok(Owned::Bool(b.is_true()));
        }
        if obj.is_instance_of::<PyInt>() {
            return Ok(Owned::Int(match obj.extract::<i128>() {
                Ok(i) => i,
                // Beyond i128: the core's range checks refuse it either way.
                Err(_) if obj.gt(0i32)? => i128::MAX,
                Err(_) => i128::MIN,
            }));
        }
        if let Ok(f) = obj.cast::<PyFloat>() {
            return Ok(Owned::Float(f.value()));
        }
        if let Ok(s) = obj.cast::<PyString>() {
            return Ok(Owned::Str(s.to_cow()?.into_owned()));
        }
        Ok(Owned::Other(
            if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
                "a list"
            } else if obj.is_instance_of::<PyDict>() {
                "a dict"
            } else {
                "another type"
            },
        ))
    }

    fn value(&self) -> Option<Value<'_>> {
        Some(match self {
            Owned::Null => Value::Null,
            Owned::Bool(b) => Value::Bool(*b),
            Owned::Int(i) => Value::Int(*i),
            Owned::Float(x) => Value::Float(*x),
            Owned::Str(s) => Value::Str(s),
            Owned::Other(_) => return None,
        })
    }
}

/// Where a policy error comes from: the core's, or a Python error raised while reading the value.
pub enum PolicyError {
    /// The core refused it.
    Core(CoreConfigError),
    /// Reading the Python value failed.
    Py(PyErr),
}

impl From<CoreConfigError> for PolicyError {
    fn from(e: CoreConfigError) -> Self {
        PolicyError::Core(e)
    }
}

impl From<PyErr> for PolicyError {
    fn from(e: PyErr) -> Self {
        PolicyError::Py(e)
    }
}

/// Sets one field on `p` through the core's `Policy::set` / `push_ramp_stage`.
pub fn set_field(p: &mut Policy, field: &str, obj: &Bound<'_, PyAny>) -> Result<(), PolicyError> {
    if field == "ramp" {
        return set_ramp(p, obj);
    }
    let owned = Owned::from_py(obj)?;
    let value = owned.value().unwrap_or_else(|| {
        if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
            Value::List
        } else if obj.is_instance_of::<PyDict>() {
            Value::Map
        } else {
            Value::Unsupported
        }
    });
    // The core judges the value (and names the field, or reports an unknown one).
    Ok(p.set(field, value)?)
}

fn ramp_shape_error(got: &'static str) -> PolicyError {
    CoreConfigError::WrongType {
        field: "ramp",
        expected: "a list of {share, dwell_ms} stages",
        got,
    }
    .into()
}

fn set_ramp(p: &mut Policy, obj: &Bound<'_, PyAny>) -> Result<(), PolicyError> {
    let stages: Vec<Bound<'_, PyAny>> = if let Ok(l) = obj.cast::<PyList>() {
        l.iter().collect()
    } else if let Ok(t) = obj.cast::<PyTuple>() {
        t.iter().collect()
    } else {
        return Err(ramp_shape_error(match Owned::from_py(obj)? {
            Owned::Null => "null",
            Owned::Bool(_) => "bool",
            Owned::Int(_) => "integer",
            Owned::Float(_) => "float",
            Owned::Str(_) => "string",
            Owned::Other(g) => g,
        }));
    };
    p.clear_ramp();
    for st in stages {
        // As in the scenario files: a stage is a mapping with `share` and `dwell_ms`; a missing
        // key, a value of no policy type, or a stage that is not a mapping gives `None`, which the
        // core refuses with its own `wrong_type` message.
        let (share, dwell) = match st.cast::<PyDict>() {
            Ok(d) => (d.get_item("share")?, d.get_item("dwell_ms")?),
            Err(_) => (None, None),
        };
        let share = share.map(|v| Owned::from_py(&v)).transpose()?;
        let dwell = dwell.map(|v| Owned::from_py(&v)).transpose()?;
        let sv = share.as_ref().and_then(Owned::value).unwrap_or(Value::Null);
        let dv = dwell.as_ref().and_then(Owned::value).unwrap_or(Value::Null);
        p.push_ramp_stage(sv, dv)?;
    }
    Ok(())
}
