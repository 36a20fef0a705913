//! JavaScript values in (policy objects, provider lists), plain objects out (views, events), in the
//! shapes of `fixtures/README.md`. The policy is applied field by field through the core's
//! `Policy::set` and `Policy::push_ramp_stage`: this file converts values and never judges them.

use failover_core::{DefaultRouter, Event, EventKind, OutcomeKind, Policy, ProviderView, Value};
use napi::bindgen_prelude::JsObjectValue;
use napi::bindgen_prelude::{BigInt, Env, FromNapiValue, Object, Unknown};
use napi::{JsValue, ValueType};
use napi_derive::napi;

use crate::error::{Failure, Res};

/// A JS policy value, owned, before it becomes a core [`Value`].
enum Scalar {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
}

impl Scalar {
    fn value(&self) -> Value<'_> {
        match self {
            Scalar::Null => Value::Null,
            Scalar::Bool(b) => Value::Bool(*b),
            Scalar::Int(i) => Value::Int(*i),
            Scalar::Float(x) => Value::Float(*x),
            Scalar::Str(s) => Value::Str(s),
        }
    }
}

/// A failure to read a JS value (a throwing getter, a revoked proxy): the policy is unusable. If
/// JavaScript already has an exception pending, that exception is the one that surfaces.
fn napi_failure(_: napi::Error) -> Failure {
    Failure::Type("policy".to_string(), "a plain object of policy fields")
}

/// A scalar, or `None` for objects, arrays, functions and symbols. `undefined` is `Null`.
/// Integral numbers are integers (as JSON `1` would be); others, NaN and infinities are floats, so
/// the core reports them by its own rules.
fn scalar(v: &Unknown) -> Res<Option<Scalar>> {
    let t = v.get_type().map_err(napi_failure)?;
    Ok(Some(match t {
        ValueType::Undefined | ValueType::Null => Scalar::Null,
        ValueType::Boolean => Scalar::Bool(bool::from_unknown(*v).map_err(napi_failure)?),
        ValueType::Number => {
            let x = f64::from_unknown(*v).map_err(napi_failure)?;
            if x.is_finite() && x == x.trunc() && x.abs() < 1e38 {
                Scalar::Int(x as i128)
            } else {
                Scalar::Float(x)
            }
        }
        ValueType::BigInt => {
            let b = BigInt::from_unknown(*v).map_err(napi_failure)?;
            let (i, lossless) = b.get_i128();
            Scalar::Int(match (lossless, b.sign_bit) {
                (true, _) => i,
                (false, true) => i128::MIN,
                (false, false) => i128::MAX,
            })
        }
        ValueType::String => Scalar::Str(String::from_unknown(*v).map_err(napi_failure)?),
        _ => return Ok(None),
    }))
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
/// `ramp` is an array of `{share, dwell_ms}`. `undefined` or `null` gives the default policy;
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
        if k == "ramp" {
            if val.get_type().map_err(napi_failure)? != ValueType::Object || !is_array(&val)? {
                return Err(Failure::Config(failover_core::ConfigError::WrongType {
                    field: "ramp",
                    expected: "a list of {share, dwell_ms} stages",
                    got: type_desc(&val),
                }));
            }
            let arr = Object::from_unknown(val).map_err(napi_failure)?;
            let len = arr.get_array_length().map_err(napi_failure)?;
            p.clear_ramp();
            for i in 0..len {
                let st: Unknown = arr.get_element(i).map_err(napi_failure)?;
                let (share, dwell) = if st.get_type().map_err(napi_failure)? == ValueType::Object {
                    let so = Object::from_unknown(st).map_err(napi_failure)?;
                    (stage_field(&so, "share")?, stage_field(&so, "dwell_ms")?)
                } else {
                    (Scalar::Null, Scalar::Null)
                };
                p.push_ramp_stage(share.value(), dwell.value())
                    .map_err(Failure::Config)?;
            }
            continue;
        }
        // The core judges the value (and names the field, or reports an unknown one).
        let scalar = scalar(&val)?;
        let value = match &scalar {
            Some(s) => s.value(),
            None if is_array(&val)? => Value::List,
            None if val.get_type().map_err(napi_failure)? == ValueType::Object => Value::Map,
            None => Value::Unsupported,
        };
        p.set(&k, value).map_err(Failure::Config)?;
    }
    Ok(p)
}

/// A ramp stage's field: missing, `undefined`, an object or an array are `null` (the core then
/// says which type it wanted), as in the Rust runner.
fn stage_field(o: &Object, name: &str) -> Res<Scalar> {
    Ok(match o.get::<Unknown>(name).map_err(napi_failure)? {
        None => Scalar::Null,
        Some(v) => scalar(&v)?.unwrap_or(Scalar::Null),
    })
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

/// A provider's window figures.
#[napi(object)]
pub struct NativeWindow {
    pub volume: f64,
    pub successes: f64,
    pub failures: f64,
    pub timeouts: f64,
    pub slow: f64,
    #[napi(js_name = "rate_limited")]
    pub rate_limited: f64,
    #[napi(js_name = "client_errors")]
    pub client_errors: f64,
}

/// A provider's state, in the shape of `fixtures/README.md` ("The view").
#[napi(object, use_nullable = true)]
pub struct NativeView {
    pub name: String,
    pub state: String,
    pub share: f64,
    #[napi(js_name = "throttled_until_ms")]
    pub throttled_until_ms: Option<f64>,
    #[napi(js_name = "open_until_ms")]
    pub open_until_ms: Option<f64>,
    #[napi(js_name = "ramp_stage")]
    pub ramp_stage: Option<u32>,
    pub strikes: u32,
    pub trips: u32,
    pub generation: u32,
    #[napi(js_name = "probes_in_flight")]
    pub probes_in_flight: u32,
    #[napi(js_name = "probe_successes")]
    pub probe_successes: u32,
    #[napi(js_name = "consecutive_failures")]
    pub consecutive_failures: u32,
    #[napi(js_name = "latency_ms")]
    pub latency_ms: Option<u32>,
    #[napi(js_name = "baseline_ms")]
    pub baseline_ms: Option<u32>,
    #[napi(js_name = "next_transition_ms")]
    pub next_transition_ms: Option<f64>,
    pub window: NativeWindow,
}

impl NativeView {
    pub(crate) fn from_view(v: &ProviderView<'_>) -> NativeView {
        let w = &v.window;
        NativeView {
            name: v.name.to_string(),
            state: v.state.name().to_string(),
            share: f64::from(v.share_ppm) / 1e6,
            throttled_until_ms: v.throttled_until_ms.map(js_num),
            open_until_ms: v.open_until_ms.map(js_num),
            ramp_stage: v.ramp_stage.map(u32::from),
            strikes: v.strikes,
            trips: v.trips,
            generation: v.generation,
            probes_in_flight: v.probes_in_flight,
            probe_successes: v.probe_successes,
            consecutive_failures: v.consecutive_failures,
            latency_ms: v.latency_ms,
            baseline_ms: v.baseline_ms,
            next_transition_ms: v.next_transition_ms.map(js_num),
            window: NativeWindow {
                volume: js_num(w.volume),
                successes: js_num(w.successes),
                failures: js_num(w.failures),
                timeouts: js_num(w.timeouts),
                slow: js_num(w.slow),
                rate_limited: js_num(w.rate_limited),
                client_errors: js_num(w.client_errors),
            },
        }
    }
}

/// An event, with its provider's name, before it becomes a JS object.
pub(crate) struct EventOut {
    pub event: Event,
    pub provider: String,
}

impl EventOut {
    /// Event `event` of router `r`, with its provider's name.
    pub(crate) fn new(r: &DefaultRouter, event: Event) -> EventOut {
        EventOut {
            provider: r.name(event.provider).to_string(),
            event,
        }
    }

    /// The event as a plain object in the shape of `fixtures/README.md` ("Events"): `at_ms`,
    /// `provider`, `kind` and the kind's own fields only.
    pub(crate) fn to_js<'e>(&self, env: &'e Env) -> napi::Result<Object<'e>> {
        let mut o = Object::new(env)?;
        let e = &self.event;
        o.set("at_ms", js_num(e.at_ms))?;
        o.set("provider", self.provider.as_str())?;
        o.set("kind", e.kind.name())?;
        match e.kind {
            EventKind::Opened {
                reason,
                from,
                until_ms,
                strikes,
            } => {
                o.set("trigger", reason.trigger.name())?;
                o.set("observed", js_num(reason.observed))?;
                o.set("threshold", js_num(reason.threshold))?;
                o.set("volume", js_num(reason.volume))?;
                o.set("outcome", reason.outcome.map(OutcomeKind::name))?;
                o.set("from", from.name())?;
                o.set("until_ms", js_num(until_ms))?;
                o.set("strikes", strikes)?;
            }
            EventKind::RampStage { stage, share_ppm } => {
                o.set("stage", u32::from(stage))?;
                o.set("share", f64::from(share_ppm) / 1e6)?;
            }
            EventKind::Throttled {
                until_ms,
                retry_after,
            } => {
                o.set("until_ms", js_num(until_ms))?;
                o.set("retry_after", retry_after)?;
            }
            EventKind::BackoffDecayed { strikes } => {
                o.set("strikes", strikes)?;
            }
            EventKind::Benched { until_ms, cause } => {
                o.set("until_ms", js_num(until_ms))?;
                o.set("cause", cause.name())?;
            }
            EventKind::Probing
            | EventKind::ProbeExpired
            | EventKind::Recovered
            | EventKind::Unthrottled => {}
        }
        Ok(o)
    }
}
