//! Every conversion of a failure into a JavaScript error happens in this file: the core's
//! [`ConfigError`], [`Unavailable`] and [`RequestError`], panics caught at the boundary, and bad
//! arguments.
//!
//! | failure | JavaScript error | `code` |
//! |---|---|---|
//! | [`ConfigError`] | `ConfigError` (the JS layer's `Error` subclass) | the core's `ConfigError::code()`, e.g. `"unknown_field"` |
//! | [`Unavailable`] | `UnavailableError` | `"unavailable"`, plus `retry_after_ms` |
//! | [`RequestError`] | an `Error` named `RequestError` (no JS class yet) | the core's name: `"no_attempt"`, `"not_streamed"`, `"finished"` |
//! | a Rust panic | `InternalError` | `"internal_panic"`; the router is closed afterwards |
//! | a call on a router closed by a panic | `InternalError` | `"router_poisoned"` |
//! | a bad argument type | `TypeError` | `"ERR_INVALID_ARG_TYPE"` |
//! | a request or fleet driven with another router than its own | `TypeError` | `"ERR_INVALID_ARG_VALUE"` |
//! | a fleet configuration the core refuses | `ConfigError` | the core's `FleetConfigError::code()`, e.g. `"period_out_of_range"` |
//! | a fleet round's reply of the wrong shape | `TypeError` | `"ERR_FLEET_REPLY"` |
//! | an argument out of range (timestamps, counts, names) | `RangeError` | `"ERR_OUT_OF_RANGE"` |
//!
//! The message is always the core's `Display` text for core errors, so Rust, Python and Node
//! report a broken policy in the same words. The JS layer registers its error classes once with
//! [`register_error_classes`]; until it does (someone using the raw native module), the class
//! errors are plain `Error`s with the same `name`, `code` and message.

use std::cell::RefCell;
use std::mem::ManuallyDrop;

use failover_core::{ConfigError, RequestError, Unavailable};
use napi::bindgen_prelude::{Env, FromNapiValue, Function, FunctionRef, Null, Object, Unknown};
use napi::{Status, ValueType};
use napi_derive::napi;

use crate::convert::js_num;

/// Why a native call failed, before it becomes a JavaScript error.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The core refused the configuration.
    Config(ConfigError),
    /// No provider may be called.
    Unavailable(Unavailable),
    /// A request (`NativeRequest`) cannot take this input in its current state.
    Request(RequestError),
    /// A request or fleet driven with a router other than the one it was started on.
    ForeignRouter,
    /// The core refused a fleet configuration.
    FleetConfig(failover_core::fleet::FleetConfigError),
    /// A fleet round's reply that does not have the round script's shape.
    FleetReply(&'static str),
    /// The engine panicked inside this call (the message of the panic).
    Panic(String),
    /// The router panicked earlier and is closed.
    Poisoned,
    /// A handle that names no live router (only reachable through the raw native module).
    Closed,
    /// An argument of the wrong type: the argument's name and what it takes.
    Type(String, &'static str),
    /// An argument of the right type but outside its range: the argument's name and the rule.
    Range(String, String),
}

/// The result of every fallible native operation.
pub(crate) type Res<T> = Result<T, Failure>;

/// The error classes the JS layer defines, in registration order.
#[derive(Clone, Copy)]
enum Class {
    Config = 0,
    Unavailable = 1,
    Internal = 2,
    /// Not registered by the JS layer (no public class until the request drivers exist): always
    /// a plain `Error` with this name.
    Request = 3,
}

impl Class {
    const fn name(self) -> &'static str {
        match self {
            Class::Config => "ConfigError",
            Class::Unavailable => "UnavailableError",
            Class::Internal => "InternalError",
            Class::Request => "RequestError",
        }
    }
}

/// A registered error class: a constructor taking the message.
type ClassRef = ManuallyDrop<FunctionRef<String, ()>>;

thread_local! {
    /// Strong references to the registered constructors (none until registered). Each Node
    /// environment lives on its own thread, so thread-local is per environment. The references
    /// are never dropped with the thread (`ManuallyDrop`): the environment is gone by then and
    /// frees them itself; deleting them afterwards would touch a dead environment.
    static CLASSES: RefCell<[Option<ClassRef>; 4]> =
        const { RefCell::new([None, None, None, None]) };
    /// A failure of a zero-argument hot call (`hotPick`, `hotRecord`), thrown by `throwPending`.
    static PENDING: RefCell<Option<Failure>> = const { RefCell::new(None) };
}

impl Failure {
    /// An argument of the right type outside its range: `\`arg\` rule`.
    pub(crate) fn range(arg: &str, rule: impl Into<String>) -> Failure {
        Failure::Range(arg.to_string(), rule.into())
    }

    /// A timestamp argument that is not an integer number of milliseconds in 0..=2^53 − 1.
    pub(crate) fn time(arg: &str, value: f64) -> Failure {
        Failure::range(
            arg,
            format!(
                "must be an integer number of milliseconds between 0 and 2^53 - 1 \
                 (Number.MAX_SAFE_INTEGER), got {}",
                js_number(value)
            ),
        )
    }

    fn parts(&self) -> (Option<Class>, &'static str, String) {
        match self {
            Failure::Config(e) => (Some(Class::Config), e.code(), e.to_string()),
            Failure::Unavailable(u) => (Some(Class::Unavailable), "unavailable", u.to_string()),
            Failure::Request(e) => (Some(Class::Request), e.name(), e.to_string()),
            Failure::ForeignRouter => (
                None,
                "ERR_INVALID_ARG_VALUE",
                "the request was started on another router: drive it with the router it was \
                 started on"
                    .to_string(),
            ),
            Failure::FleetConfig(e) => (Some(Class::Config), e.code(), e.to_string()),
            Failure::FleetReply(what) => (
                None,
                "ERR_FLEET_REPLY",
                format!("fleet round reply: {what}"),
            ),
            Failure::Panic(m) => (
                Some(Class::Internal),
                "internal_panic",
                format!(
                    "failover-core panicked: {m}; this router is closed (please report this bug)"
                ),
            ),
            Failure::Poisoned => (
                Some(Class::Internal),
                "router_poisoned",
                "this router was closed by an earlier internal panic".to_string(),
            ),
            Failure::Closed => (
                Some(Class::Internal),
                "router_closed",
                "the handle names no live router".to_string(),
            ),
            Failure::Type(arg, expected) => (
                None,
                "ERR_INVALID_ARG_TYPE",
                format!("`{arg}` must be {expected}"),
            ),
            Failure::Range(arg, rule) => (None, "ERR_OUT_OF_RANGE", format!("`{arg}` {rule}")),
        }
    }

    /// Throws this failure as a JavaScript error and returns the error napi-rs expects for a
    /// pending exception (or, if even throwing failed, the error napi-rs should throw instead).
    pub(crate) fn throw(self, env: &Env) -> napi::Error {
        let (class, code, message) = self.parts();
        let thrown = match (&self, class) {
            (Failure::Type(..) | Failure::ForeignRouter | Failure::FleetReply(_), _) => {
                env.throw_type_error(&message, Some(code))
            }
            (_, None) => env.throw_range_error(&message, Some(code)),
            (_, Some(c)) => self
                .class_error(env, c, code, &message)
                .and_then(|e| env.throw(e)),
        };
        match thrown {
            Ok(()) => napi::Error::new(Status::PendingException, message),
            Err(e) => e,
        }
    }

    /// A new instance of the registered class `c` (a plain `Error` named like it until the JS
    /// layer registers its classes), with `code` and the failure's own fields. If the class's
    /// constructor throws, that exception is left pending and reported as the error.
    fn class_error<'e>(
        &self,
        env: &'e Env,
        c: Class,
        code: &str,
        message: &str,
    ) -> napi::Result<Object<'e>> {
        let ctor = CLASSES.with(|cl| cl.borrow()[c as usize].as_ref().map(|f| f.borrow_back(env)));
        let instance = match ctor.transpose()? {
            Some(f) => match f.new_instance(message.to_string()) {
                Ok(v) => Some(Object::from_unknown(v)?),
                Err(e) if e.status == Status::PendingException => return Err(e),
                Err(_) => None,
            },
            None => None,
        };
        let mut err = match instance {
            Some(o) => o,
            None => {
                let mut o = env.create_error(napi::Error::from_reason(message))?;
                o.set("name", c.name())?;
                o
            }
        };
        err.set("code", code)?;
        match self {
            Failure::Config(e) => err.set("field", e.field())?,
            Failure::FleetConfig(_) => err.set("field", Null)?,
            Failure::Unavailable(u) => err.set("retry_after_ms", js_num(u.retry_after_ms))?,
            _ => {}
        }
        Ok(err)
    }

    /// Converts a `Res` into the `napi::Result` of a `#[napi]` function, throwing on failure.
    pub(crate) fn check<T>(env: &Env, r: Res<T>) -> napi::Result<T> {
        r.map_err(|f| f.throw(env))
    }

    /// Remembers the failure of a zero-argument hot call; `throwPending` throws it.
    pub(crate) fn park(self) {
        PENDING.with(|p| *p.borrow_mut() = Some(self));
    }
}

/// The failure a panic payload describes.
pub(crate) fn panic_failure(payload: Box<dyn std::any::Any + Send>) -> Failure {
    let msg = if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    };
    Failure::Panic(msg)
}

/// Throws the failure the last hot call parked (the JS layer calls this when `hotPick` or
/// `hotRecord` leaves a status of -1 in the shared buffer).
#[napi]
pub fn throw_pending(env: Env) -> napi::Result<()> {
    match PENDING.with(|p| p.borrow_mut().take()) {
        Some(f) => Err(f.throw(&env)),
        None => Ok(()),
    }
}

/// Registers the JS layer's error classes: each is constructed with the message as its only
/// argument; `code` (and `retry_after_ms` for `UnavailableError`) are set afterwards.
#[napi(ts_args_type = "configError: Function, unavailableError: Function, internalError: Function")]
pub fn register_error_classes(
    env: Env,
    config_error: Unknown,
    unavailable_error: Unknown,
    internal_error: Unknown,
) -> napi::Result<()> {
    let classes = [
        (Class::Config, config_error, "configError"),
        (Class::Unavailable, unavailable_error, "unavailableError"),
        (Class::Internal, internal_error, "internalError"),
    ];
    for (_, v, name) in &classes {
        if v.get_type()? != ValueType::Function {
            return Err(
                Failure::Type((*name).to_string(), "a class (constructor function)").throw(&env),
            );
        }
    }
    CLASSES.with(|cl| -> napi::Result<()> {
        let mut cl = cl.borrow_mut();
        for (c, v, _) in classes {
            let f = Function::<String, ()>::from_unknown(v)?.create_ref()?;
            if let Some(old) = cl[c as usize].replace(ManuallyDrop::new(f)) {
                // Replaced during a call on this environment's thread: safe to release now.
                drop(ManuallyDrop::into_inner(old));
            }
        }
        Ok(())
    })
}

/// How a JS number prints in messages (integers without `.0`).
fn js_number(x: f64) -> String {
    if x.is_finite() && x == x.trunc() && x.abs() < 1e21 {
        format!("{x:.0}")
    } else {
        format!("{x}")
    }
}
