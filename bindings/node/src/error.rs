//! Every conversion of a failure into a JavaScript error happens in this file: the core's
//! [`ConfigError`] and [`Unavailable`], panics caught at the boundary, and bad arguments.
//!
//! | failure | JavaScript error | `code` |
//! |---|---|---|
//! | [`ConfigError`] | `ConfigError` (the JS layer's `Error` subclass) | the core's `ConfigError::code()`, e.g. `"unknown_field"` |
//! | [`Unavailable`] | `UnavailableError` | `"unavailable"`, plus `retry_after_ms` |
//! | a Rust panic | `InternalError` | `"internal_panic"`; the router is closed afterwards |
//! | a call on a router closed by a panic | `InternalError` | `"router_poisoned"` |
//! | a bad argument type | `TypeError` | `"ERR_INVALID_ARG_TYPE"` |
//! | an argument out of range (timestamps, counts, names) | `RangeError` | `"ERR_OUT_OF_RANGE"` |
//!
//! The message is always the core's `Display` text for core errors, so Rust, Python and Node
//! report a broken policy in the same words. The JS layer registers its error classes once with
//! [`register_error_classes`]; until it does (someone using the raw native module), the class
//! errors are plain `Error`s with the same `name`, `code` and message.

use std::cell::{Cell, RefCell};
use std::ptr;

use failover_core::{ConfigError, Unavailable};
use napi::bindgen_prelude::{Env, Unknown};
use napi::{JsValue, Status, ValueType, sys};
use napi_derive::napi;

/// Why a native call failed, before it becomes a JavaScript error.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The core refused the configuration.
    Config(ConfigError),
    /// No provider may be called.
    Unavailable(Unavailable),
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
}

impl Class {
    const fn name(self) -> &'static str {
        match self {
            Class::Config => "ConfigError",
            Class::Unavailable => "UnavailableError",
            Class::Internal => "InternalError",
        }
    }
}

thread_local! {
    /// Strong references to the registered constructors (null until registered). Each Node
    /// environment lives on its own thread, so thread-local is per environment. The references
    /// are never deleted: they live as long as the environment, which frees them itself.
    static CLASSES: [Cell<sys::napi_ref>; 3] = const {
        [Cell::new(ptr::null_mut()), Cell::new(ptr::null_mut()), Cell::new(ptr::null_mut())]
    };
    /// A failure of a zero-argument hot call (`hotPick`, `hotRecord`), thrown by `throwPending`.
    static PENDING: RefCell<Option<Failure>> = const { RefCell::new(None) };
}

impl Failure {
    /// A timestamp argument that is not an integer number of milliseconds in 0..=2^53 − 1.
    pub(crate) fn time(arg: &str, value: f64) -> Failure {
        Failure::Range(
            arg.to_string(),
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
    /// pending exception.
    pub(crate) fn throw(self, env: &Env) -> napi::Error {
        let raw = env.raw();
        let (class, code, message) = self.parts();
        // SAFETY: `raw` is the live environment of the current call; every napi value created
        // here is used within this call's handle scope.
        let error = unsafe {
            let code_v = string(raw, code);
            let msg_v = string(raw, &message);
            let mut err = ptr::null_mut();
            match (&self, class) {
                (Failure::Type(..), _) => {
                    sys::napi_create_type_error(raw, code_v, msg_v, &mut err);
                }
                (Failure::Range(..), _) => {
                    sys::napi_create_range_error(raw, code_v, msg_v, &mut err);
                }
                (_, Some(c)) => {
                    let ctor = CLASSES.with(|cl| cl[c as usize].get());
                    let mut f = ptr::null_mut();
                    if !ctor.is_null() {
                        sys::napi_get_reference_value(raw, ctor, &mut f);
                    }
                    if f.is_null()
                        || sys::napi_new_instance(raw, f, 1, [msg_v].as_ptr(), &mut err)
                            != sys::Status::napi_ok
                    {
                        let mut pending = false;
                        sys::napi_is_exception_pending(raw, &mut pending);
                        if pending {
                            // The registered constructor threw: let that exception surface.
                            return napi::Error::new(Status::PendingException, String::new());
                        }
                        sys::napi_create_error(raw, code_v, msg_v, &mut err);
                        set(raw, err, "name", string(raw, c.name()));
                    }
                    set(raw, err, "code", code_v);
                }
                (_, None) => {
                    sys::napi_create_error(raw, code_v, msg_v, &mut err);
                }
            }
            if let Failure::Config(e) = &self {
                let field = match e.field() {
                    Some(f) => string(raw, f),
                    None => {
                        let mut null = ptr::null_mut();
                        sys::napi_get_null(raw, &mut null);
                        null
                    }
                };
                set(raw, err, "field", field);
            }
            if let Failure::Unavailable(u) = &self {
                set(
                    raw,
                    err,
                    "retry_after_ms",
                    number(raw, u.retry_after_ms as f64),
                );
            }
            err
        };
        // SAFETY: as above; `error` is a valid value of this call.
        unsafe { sys::napi_throw(raw, error) };
        napi::Error::new(Status::PendingException, message)
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
    for (c, v, _) in classes {
        let mut r = ptr::null_mut();
        // SAFETY: `v` is a live function value of this call; a reference count of 1 keeps it alive
        // for the environment's lifetime.
        unsafe {
            sys::napi_create_reference(env.raw(), v.raw(), 1, &mut r);
        }
        CLASSES.with(|cl| {
            let old = cl[c as usize].replace(r);
            if !old.is_null() {
                // SAFETY: `old` was created by this environment (same thread) and is live.
                unsafe { sys::napi_delete_reference(env.raw(), old) };
            }
        });
    }
    Ok(())
}

/// How a JS number prints in messages (integers without `.0`).
fn js_number(x: f64) -> String {
    if x.is_finite() && x == x.trunc() && x.abs() < 1e21 {
        format!("{x:.0}")
    } else {
        format!("{x}")
    }
}

unsafe fn string(env: sys::napi_env, s: &str) -> sys::napi_value {
    let mut v = ptr::null_mut();
    // SAFETY: the caller passes a live environment; the pointer and length describe `s`.
    unsafe { sys::napi_create_string_utf8(env, s.as_ptr().cast(), s.len() as isize, &mut v) };
    v
}

unsafe fn number(env: sys::napi_env, x: f64) -> sys::napi_value {
    let mut v = ptr::null_mut();
    // SAFETY: the caller passes a live environment.
    unsafe { sys::napi_create_double(env, x, &mut v) };
    v
}

unsafe fn set(env: sys::napi_env, obj: sys::napi_value, key: &str, value: sys::napi_value) {
    let mut k = key.as_bytes().to_vec();
    k.push(0);
    // SAFETY: the caller passes live values of the environment; `k` is NUL-terminated.
    unsafe { sys::napi_set_named_property(env, obj, k.as_ptr().cast(), value) };
}
