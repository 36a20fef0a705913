//! JavaScript values in (policy objects, provider lists), plain objects out (views, events), in the
//! shapes of `fixtures/README.md`, built from the core's own field list ([`Fields`]). The policy is
//! applied field by field through the core's `Policy::set`: this file converts values and never
//! judges them.

use std::cell::Cell;

use failover_core::policy::hand_over;
use failover_core::{Entries, Field, Fields, Items, Policy, Value, Visitor};
use napi::bindgen_prelude::JsObjectValue;
use napi::bindgen_prelude::{BigInt, Env, FromNapiValue, Null, Object, Unknown};
use napi::{JsValue, ValueType};

use crate::error::{Failure, Res};

/// A failure to read a JS value (a throwing getter, a revoked proxy): the policy is unusable. If
/// JavaScript already has an exception pending, that exception is the one that surfaces.
fn napi_failure(_: napi::Error) -> Failure {
    Failure::Type("policy".to_string(), "a plain object of policy fields")
}

/// Where a failure to read an element of an array or object is kept: the core sees the element
/// as unsupported, and the failure is reported instead of the core's error.
type Pending = Cell<Option<Failure>>;

/// Calls `f` with a JS value as a core policy value. `undefined` is `Null`. Integral numbers are
/// integers (as JSON `1` would be); others, NaN and infinities are floats, so the core reports
/// them by its own rules. Arrays and objects are handed to the core as they are
/// ([`Value::ListOf`], [`Value::MapOf`]), their elements converted when the core asks for them.
fn with_value<R>(v: &Unknown, pending: &Pending, f: impl FnOnce(Value<'_>) -> R) -> Res<R> {
    let t = v.get_type().map_err(napi_failure)?;
    Ok(match t {
        ValueType::Undefined | ValueType::Null => f(Value::Null),
        ValueType::Boolean => f(Value::Bool(bool::from_unknown(*v).map_err(napi_failure)?)),
        ValueType::Number => {
            let x = f64::from_unknown(*v).map_err(napi_failure)?;
            f(if x.is_finite() && x == x.trunc() && x.abs() < 1e38 {
                Value::Int(x as i128)
            } else {
                Value::Float(x)
            })
        }
        ValueType::BigInt => {
            let b = BigInt::from_unknown(*v).map_err(napi_failure)?;
            let (i, lossless) = b.get_i128();
            f(Value::Int(match (lossless, b.sign_bit) {
                (true, _) => i,
                (false, true) => i128::MIN,
                (false, false) => i128::MAX,
            }))
        }
        ValueType::String => f(Value::Str(&String::from_unknown(*v).map_err(napi_failure)?)),
        ValueType::Object => {
            let o = Object::from_unknown(*v).map_err(napi_failure)?;
            if is_array(v)? {
                let len = o.get_array_length().map_err(napi_failure)?;
                f(Value::ListOf(&JsItems { o, len, pending }))
            } else {
                f(Value::MapOf(&JsEntries { o, pending }))
            }
        }
        _ => f(Value::Unsupported),
    })
}

/// A JS array as the core's [`Items`].
struct JsItems<'a, 'e> {
    o: Object<'e>,
    len: u32,
    pending: &'a Pending,
}

impl Items for JsItems<'_, '_> {
    fn len(&self) -> usize {
        self.len as usize
    }

    fn item(&self, index: usize, f: &mut dyn FnMut(Value<'_>)) {
        let v = u32::try_from(index)
            .map_err(|_| napi::Error::from_reason("index"))
            .and_then(|i| self.o.get_element::<Unknown>(i));
        let p = self.pending;
        hand_over(v.map(Some).map_err(napi_failure), p, f, |v, f| {
            with_value(&v, p, f)
        });
    }
}

/// A JS object as the core's [`Entries`].
struct JsEntries<'a, 'e> {
    o: Object<'e>,
    pending: &'a Pending,
}

impl Entries for JsEntries<'_, '_> {
    fn entry(&self, key: &str, f: &mut dyn FnMut(Value<'_>)) {
        let p = self.pending;
        let v = self.o.get::<Unknown>(key).map_err(napi_failure);
        hand_over(v, p, f, |v, f| with_value(&v, p, f));
    }
}

fn is_array(v: &Unknown) -> Res<bool> {
    v.is_array().map_err(napi_failure)
}

fn type_desc(v: &Unknown) -> &'static str {
    match v.get_type() {
        Ok(ValueType::Boolean) => "a boolean",
        Ok(ValueType::Number) => "a number",
        Ok(ValueType::BigInt) => "a bigint",
        Ok(ValueType::String) => "a string",
        Ok(ValueType::Function) => "a function",
        Ok(ValueType::Symbol) => "a symbol",
        Ok(ValueType::Object) if is_array(v).unwrap_or(false) => "an array",
        _ => "another type",
    }
}

/// Builds a policy from a JS object whose keys are the core's field names (`Policy::set`);
/// `ramp` an array of `{share, dwell_ms}` or `[share, dwell_ms]`. `undefined` or `null` gives the default policy;
/// keys whose value is `undefined` are skipped. Keys are applied in sorted order, so the first
/// error reported does not depend on key order (the Rust scenario runner applies them sorted too).
pub(crate) fn policy(v: Option<Unknown>) -> Res<Policy> {
    let mut p = Policy::default();
    let Some(v) = v else { return Ok(p) };
    let t = v.get_type().map_err(napi_failure)?;
    if matches!(t, ValueType::Undefined | ValueType::Null) {
        return Ok(p);
    }
    if t != ValueType::Object || is_array(&v)? {
        return Err(Failure::Config(failover_core::ConfigError::WrongType {
            field: "policy",
            expected: "an object",
            got: type_desc(&v),
        }));
    }
    let obj = Object::from_unknown(v).map_err(napi_failure)?;
    let mut keys = Object::keys(&obj).map_err(napi_failure)?;
    keys.sort();
    for k in keys {
        let Some(val) = obj.get::<Unknown>(&k).map_err(napi_failure)? else {
            continue;
        };
        // The core judges the value (and names the field, or reports an unknown one).
        let pending = Pending::new(None);
        let set = with_value(&val, &pending, |v| p.set(&k, v))?;
        if let Some(e) = pending.into_inner() {
            return Err(e);
        }
        set.map_err(Failure::Config)?;
    }
    Ok(p)
}

/// Provider names: an array of strings (any other shape is a `TypeError`; empty, duplicate and
/// too long names are the core's `ConfigError`s when the router is built).
pub(crate) fn providers(v: Unknown) -> Res<Vec<String>> {
    let not_array = || Failure::Type("providers".into(), "an array of provider names");
    if v.get_type().map_err(|_| not_array())? != ValueType::Object || !is_array(&v)? {
        return Err(not_array());
    }
    let arr = Object::from_unknown(v).map_err(|_| not_array())?;
    let len = arr.get_array_length().map_err(|_| not_array())?;
    let mut names = Vec::with_capacity(len as usize);
    for i in 0..len {
        let e: Unknown = arr.get_element(i).map_err(|_| not_array())?;
        if e.get_type().map_err(|_| not_array())? != ValueType::String {
            return Err(Failure::Type(format!("providers[{i}]"), "a string"));
        }
        names.push(String::from_unknown(e).map_err(|_| not_array())?);
    }
    Ok(names)
}

/// The largest integer a JS number holds exactly, 2^53 − 1 (`Number.MAX_SAFE_INTEGER`).
pub(crate) const MAX_SAFE_INT: u64 = (1 << 53) - 1;

/// Every number the engine hands to JavaScript (timestamps, deadlines, durations, counts) goes
/// through this one function, whatever the path (views, events, tickets in the shared buffer,
/// `pollTimeout`, `retry_after_ms` of errors and of `parseRetryAfter`). The rule: values up to
/// 2^53 − 1 are exact; a larger one (a deadline beyond 2^53 ms, say after a huge `open_max_ms`)
/// is clamped to `Number.MAX_SAFE_INTEGER`, so it never rounds to a value that JavaScript would
/// read as a different, earlier time, and is still a valid `nowMs` input. Through i64: one
/// instruction each way on baseline x86-64, where u64 → f64 takes several.
pub(crate) fn js_num(x: u64) -> f64 {
    x.min(MAX_SAFE_INT) as i64 as f64
}

/// Builds a plain JS object from a core value's [`Fields`], in the shapes of `fixtures/README.md`
/// (a fraction in ppm as the number `ppm / 1e6`, providers by name). Every `u64` goes through
/// [`js_num`], so views, events and tickets follow the one rule for numbers beyond 2^53.
struct ObjOut<'e, 'n> {
    o: Object<'e>,
    env: &'e Env,
    names: &'n [String],
}

impl Visitor for ObjOut<'_, '_> {
    type Error = napi::Error;

    fn field(&mut self, name: &'static str, value: Field<'_>) -> napi::Result<()> {
        match value {
            Field::Null => self.o.set(name, Null),
            Field::U64(x) => self.o.set(name, js_num(x)),
            Field::U32(x) => self.o.set(name, x),
            Field::Bool(b) => self.o.set(name, b),
            Field::Str(s) => self.o.set(name, s),
            Field::Ppm(ppm) => self.o.set(name, Field::fraction(ppm)),
            Field::Provider(id) => self.o.set(name, self.names[id.index()].as_str()),
            Field::F64(x) => self.o.set(name, x),
        }
    }

    fn nested<F: Fields + ?Sized>(&mut self, name: &'static str, value: &F) -> napi::Result<()> {
        let inner = to_js(self.env, value, self.names)?;
        self.o.set(name, inner)
    }

    fn list<F: Fields>(&mut self, name: &'static str, values: &[F]) -> napi::Result<()> {
        let items = values
            .iter()
            .map(|x| to_js(self.env, x, self.names))
            .collect::<napi::Result<Vec<_>>>()?;
        self.o.set(name, items)
    }
}

/// A core event, view or ticket as a plain object; `names` are the router's provider names.
pub(crate) fn to_js<'e, F: Fields + ?Sized>(
    env: &'e Env,
    value: &F,
    names: &[String],
) -> napi::Result<Object<'e>> {
    let mut out = ObjOut {
        o: Object::new(env)?,
        env,
        names,
    };
    value.visit(&mut out)?;
    Ok(out.o)
}

/// A core event as a plain object ([`to_js`]) with `description`, the core's words for it
/// ([`failover_core::Event::describe`]).
pub(crate) fn event_js<'e>(
    env: &'e Env,
    e: &failover_core::Event,
    names: &[String],
) -> napi::Result<Object<'e>> {
    let mut o = to_js(env, e, names)?;
    o.set_named_property("description", e.describe().to_string())?;
    Ok(o)
}
