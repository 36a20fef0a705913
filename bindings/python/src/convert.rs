//! Python values into the core's values: timestamps (with the monotonic clock as default),
//! latencies, `Retry-After` hints, outcome kinds, and policy values for `Policy::set`. Only type
//! and sign checks of the *arguments* happen here; every policy rule is the core's. And the
//! core's values out: events and views as dicts, built from the core's own field list
//! ([`Fields`]).

use std::cell::Cell;
use std::sync::OnceLock;
use std::time::Instant;

use failover_core::policy::hand_over;
use failover_core::{
    ConfigError as CoreConfigError, Entries, Field, Fields, Items, OutcomeKind, Policy, Value,
    Visitor, hash_key,
};
use pyo3::exceptions::{PyOverflowError, PyTypeError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

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

/// The wall clock in Unix milliseconds (for Anthropic's absolute reset times).
pub fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
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

/// Unix milliseconds minus the default clock's milliseconds, now: added to a time on the default
/// clock, it gives the wall-clock time (for events, so they line up with logs).
pub fn unix_offset_ms() -> i128 {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i128);
    unix - i128::from(monotonic_ms())
}

/// A core event as a dict: the scenario files' shape ([`to_dict`]) plus `description` (the core's
/// words for it, [`failover_core::Event::describe`]) and `unix_ms` (its wall-clock time when
/// `offset` is given: the router runs on the default clock; else `None`).
pub fn event_dict<'py>(
    py: Python<'py>,
    e: &failover_core::Event,
    names: &[Py<PyString>],
    offset: Option<i128>,
) -> PyResult<Bound<'py, PyDict>> {
    let d = to_dict(py, e, names)?;
    d.set_item(intern!(py, "description"), e.describe().to_string())?;
    let unix = offset.and_then(|o| u64::try_from(i128::from(e.at_ms) + o).ok());
    d.set_item(intern!(py, "unix_ms"), unix)?;
    Ok(d)
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

/// A sticky key (`str` or `bytes`), hashed with the core's `hash_key`.
pub fn key(k: &Bound<'_, PyAny>) -> PyResult<u64> {
    if let Ok(s) = k.cast::<PyString>() {
        Ok(hash_key(s.to_cow()?.as_bytes()))
    } else if let Ok(b) = k.cast::<PyBytes>() {
        Ok(hash_key(b.as_bytes()))
    } else {
        Err(error::arg_type("key", "str or bytes", k))
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

/// Where an error raised while reading an element of a list or dict is kept: the core sees the
/// element as unsupported, and the Python error is raised instead of the core's.
type Pending = Cell<Option<PyErr>>;

/// Calls `f` with a Python value as a core policy value. Lists, tuples and dicts are handed to
/// the core as they are ([`Value::ListOf`], [`Value::MapOf`]), their elements converted when the
/// core asks for them.
fn with_value<R>(
    obj: &Bound<'_, PyAny>,
    pending: &Pending,
    f: impl FnOnce(Value<'_>) -> R,
) -> PyResult<R> {
    if obj.is_none() {
        return Ok(f(Value::Null));
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(f(Value::Bool(b.is_true())));
    }
    if obj.is_instance_of::<PyInt>() {
        return Ok(f(Value::Int(match obj.extract::<i128>() {
            Ok(i) => i,
            // Beyond i128: the core's range checks refuse it either way.
            Err(_) if obj.gt(0i32)? => i128::MAX,
            Err(_) => i128::MIN,
        })));
    }
    if let Ok(x) = obj.cast::<PyFloat>() {
        return Ok(f(Value::Float(x.value())));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(f(Value::Str(&s.to_cow()?)));
    }
    let items: Option<Vec<Bound<'_, PyAny>>> = if let Ok(l) = obj.cast::<PyList>() {
        Some(l.iter().collect())
    } else {
        obj.cast::<PyTuple>().ok().map(|t| t.iter().collect())
    };
    if let Some(items) = items {
        return Ok(f(Value::ListOf(&PyItems { items, pending })));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        return Ok(f(Value::MapOf(&PyEntries { d, pending })));
    }
    Ok(f(Value::Unsupported))
}

/// A Python list or tuple as the core's [`Items`].
struct PyItems<'a, 'py> {
    items: Vec<Bound<'py, PyAny>>,
    pending: &'a Pending,
}

impl Items for PyItems<'_, '_> {
    fn len(&self) -> usize {
        self.items.len()
    }

    fn item(&self, index: usize, f: &mut dyn FnMut(Value<'_>)) {
        let p = self.pending;
        hand_over(Ok(self.items.get(index)), p, f, |v, f| with_value(v, p, f));
    }
}

/// A Python dict as the core's [`Entries`].
struct PyEntries<'a, 'py> {
    d: &'a Bound<'py, PyDict>,
    pending: &'a Pending,
}

impl Entries for PyEntries<'_, '_> {
    fn entry(&self, key: &str, f: &mut dyn FnMut(Value<'_>)) {
        let p = self.pending;
        hand_over(self.d.get_item(key), p, f, |v, f| with_value(&v, p, f));
    }
}

/// Where a policy error comes from: the core's, or a Python error raised while reading the value.
pub enum PolicyError {
    /// The core refused it.
    Core(CoreConfigError),
    /// Reading the Python value failed.
    Py(PyErr),
}

/// Sets one field on `p` through the core's `Policy::set` (which judges the value, names the
/// field, or reports an unknown one).
pub fn set_field(p: &mut Policy, field: &str, obj: &Bound<'_, PyAny>) -> Result<(), PolicyError> {
    let pending = Pending::new(None);
    let set = with_value(obj, &pending, |v| p.set(field, v)).map_err(PolicyError::Py)?;
    match pending.into_inner() {
        Some(e) => Err(PolicyError::Py(e)),
        None => set.map_err(PolicyError::Core),
    }
}

/// Builds a dict from a core value's [`Fields`]: the scenario files' shapes
/// (`fixtures/README.md`), providers by name, and a fraction given in ppm (`share`) also as the
/// integer `<name>_ppm`.
struct DictOut<'a, 'py> {
    d: Bound<'py, PyDict>,
    names: &'a [Py<PyString>],
}

impl Visitor for DictOut<'_, '_> {
    type Error = PyErr;

    fn field(&mut self, name: &'static str, value: Field<'_>) -> PyResult<()> {
        let py = self.d.py();
        match value {
            Field::Null => self.d.set_item(name, py.None()),
            Field::U64(x) => self.d.set_item(name, x),
            Field::U32(x) => self.d.set_item(name, x),
            Field::Bool(b) => self.d.set_item(name, b),
            Field::Str(s) => self.d.set_item(name, s),
            Field::Ppm(ppm) => {
                self.d.set_item(name, Field::fraction(ppm))?;
                self.d.set_item(format!("{name}_ppm"), ppm)
            }
            Field::Provider(id) => self.d.set_item(name, self.names[id.index()].bind(py)),
            Field::F64(x) => self.d.set_item(name, x),
        }
    }

    fn list<F: Fields>(&mut self, name: &'static str, values: &[F]) -> PyResult<()> {
        let l = PyList::empty(self.d.py());
        for x in values {
            l.append(to_dict(self.d.py(), x, self.names)?)?;
        }
        self.d.set_item(name, l)
    }

    fn nested<F: Fields + ?Sized>(&mut self, name: &'static str, value: &F) -> PyResult<()> {
        let d = to_dict(self.d.py(), value, self.names)?;
        self.d.set_item(name, d)
    }
}

/// A core event, view, ticket, request step, finish or report as a dict; `names` are the
/// router's provider names by index.
pub fn to_dict<'py, F: Fields + ?Sized>(
    py: Python<'py>,
    value: &F,
    names: &[Py<PyString>],
) -> PyResult<Bound<'py, PyDict>> {
    let mut out = DictOut {
        d: PyDict::new(py),
        names,
    };
    value.visit(&mut out)?;
    Ok(out.d)
}
