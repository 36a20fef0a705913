//! The policy: every tunable, its default and the reason for that default, and the validation
//! that every binding shares.
//!
//! Rust users fill a [`Policy`] directly (`Policy { consecutive_failures: Some(3),
//! ..Policy::default() }`). Bindings, the simulator and the scenario files set fields by name with
//! [`Policy::set`] and [`Policy::push_ramp_stage`], so a field name means the same thing in every
//! language and an unknown or mistyped field is reported by the core in one wording.

pub(crate) use crate::compiled::{Compiled, MAX_STRIKES};
pub use crate::error::ConfigError;
use crate::error::truncated;

/// How many ramp stages a policy can hold.
pub const MAX_RAMP_STAGES: usize = 8;
/// The most probe permits a provider can hand out at once.
pub const MAX_PROBES: usize = 8;
/// The longest provider name, in bytes of UTF-8.
pub const MAX_NAME_LEN: usize = 64;

/// One step of the recovery ramp: the share of traffic the recovering provider takes, and how long
/// it stays at that share before the next step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RampStage {
    /// Fraction of the traffic that reaches this provider which it takes, in (0, 1].
    pub share: f64,
    /// Minimum time at this share, in milliseconds. Must be positive except for the final 100 %
    /// stage, where 0 means "healthy as soon as the ramp reaches it".
    pub dwell_ms: u64,
}

/// How a provider in the probing state is tested.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeMode {
    /// Real requests are sent as probes, at most `probe_max_in_flight` at a time. Works with no
    /// health-check loop at all.
    Requests,
    /// Only health checks probe: [`crate::Router::poll_action`] says when a check is due and the
    /// application reports its result. No user request is risked on a provider that is not yet
    /// confirmed.
    HealthChecks,
}

impl ProbeMode {
    /// The stable name used in policy files (`"requests"`, `"health_checks"`).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            ProbeMode::Requests => "requests",
            ProbeMode::HealthChecks => "health_checks",
        }
    }
}

/// What [`crate::Router::pick`] does when no provider can take a request normally.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllDown {
    /// Return the provider that becomes available soonest, with `degraded` set and a
    /// `retry_after_ms` hint saying when it is expected back. The caller may call it anyway or
    /// wait.
    Soonest,
    /// Return [`crate::Unavailable`] carrying the same hint, so the caller waits or fails fast.
    Fail,
}

impl AllDown {
    /// The stable name used in policy files (`"soonest"`, `"fail"`).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            AllDown::Soonest => "soonest",
            AllDown::Fail => "fail",
        }
    }
}

/// The whole failover policy. `Policy::default()` is the recommended starting point; each field's
/// doc gives its default and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// Width of one window bucket, ms. Default 1 000: one-second resolution is finer than any
    /// trigger needs and keeps the window small. Buckets sit on a fixed grid (`t / bucket_ms`), so
    /// windows of instances sharing a clock can be merged bucket by bucket.
    pub bucket_ms: u64,
    /// Length of the rolling window, ms; a multiple of `bucket_ms`. Default 60 000: a minute of
    /// traffic reacts within seconds to an outage yet smooths single bad requests.
    pub window_ms: u64,
    /// Minimum counted calls in the window before any rate trigger (error rate, timeouts, slow
    /// calls, latency) may trip. Default 20: a handful of requests never trips anything; the
    /// consecutive-failure trigger covers low traffic.
    pub min_volume: u32,
    /// Error-rate trigger: trips when a hard failure brings hard failures / counted calls in the
    /// window to this fraction (judged on hard failures only: a success never opens a circuit).
    /// `None` disables it. Default 0.5.
    pub error_rate_threshold: Option<f64>,
    /// Consecutive-failure trigger: this many server or connection errors in a row open the
    /// circuit at once, whatever the volume. The same count, held for `timeout_sustain_ms`, opens
    /// on a run of timeouts with no success between them (a provider that answers nothing). `None`
    /// disables both. Default 3: a provider that fails every call costs three failed calls before
    /// it is benched (five before 0.2).
    ///
    /// The trade-off: independent errors also make runs. At 1 % background errors a run of three
    /// comes once in about a million calls, so at 20 requests a second a healthy provider is
    /// opened about 0.3 times in 4 hours (measured: 3 openings in 10 simulated runs of 4 hours,
    /// `crates/failover-sim/faults/background-errors.json`; each costs 30 s open and a 20-minute
    /// ramp). Raise it for a provider with a high background error rate; lower it when every
    /// failed call is expensive (a slow provider, a sequential caller).
    pub consecutive_failures: Option<u32>,
    /// Timeout trigger: the timeout rate in the window that counts as a breach. `None` disables
    /// it. Default 0.3.
    pub timeout_rate_threshold: Option<f64>,
    /// How long the timeout rate must stay at or above its threshold before the circuit opens, ms.
    /// Default 30 000: a spike of a few seconds never trips; half a minute of timeouts does.
    pub timeout_sustain_ms: u64,
    /// A success that took at least this long is a slow call, ms. Default 30 000 (LLM calls are
    /// slow by nature; past 30 s an interactive caller has usually given up).
    pub slow_call_ms: u32,
    /// Slow-call trigger: trips when a slow call brings slow calls / counted calls to this
    /// fraction (judged on slow calls only). `None` disables it. Default 0.5.
    pub slow_call_rate_threshold: Option<f64>,
    /// Latency-degradation trigger: trips when the window's `latency_quantile` latency is at least
    /// this many times the provider's long-horizon baseline, judged on each success that is itself
    /// at least that slow. `None` disables it. Default 3.0.
    pub latency_factor: Option<f64>,
    /// Which quantile of successful-call latency the latency trigger compares, in (0, 1].
    /// Default 0.5 (the median, robust to a mix of short and long completions).
    pub latency_quantile: f64,
    /// Horizon of the latency baseline, ms: the baseline is an exponential average of the window
    /// quantile with weight `bucket_ms / latency_baseline_ms` per bucket. It starts judging once it
    /// has seen a full window's worth of updates. Default 1 800 000 (30 minutes).
    pub latency_baseline_ms: u64,
    /// Count client errors (400/401/403/…) as failures. Default `false`: they are the caller's
    /// fault and say nothing about the provider.
    pub count_client_errors: bool,
    /// Open duration after the first trip, ms. Default 30 000.
    pub open_base_ms: u64,
    /// Each further trip multiplies the open duration by this (≥ 1). Default 2.0.
    pub open_multiplier: f64,
    /// Cap on the open duration, ms. Default 600 000 (10 minutes). Once a trip reaches the cap,
    /// further trips no longer raise the strike count, so after a long outage the backoff decays
    /// back to the base within (strikes to reach the cap) × `backoff_decay_ms` (by default 6 × 10
    /// minutes) however many probes failed during it.
    pub open_max_ms: u64,
    /// Deterministic jitter on open durations, a fraction in [0, 1): the duration is scaled by a
    /// factor in [1 − jitter, 1 + jitter] drawn from `seed`, the provider and its trip count, then
    /// capped at `open_max_ms`. Default 0.1, so instances with different seeds do not probe in
    /// lockstep.
    pub open_jitter: f64,
    /// Seed for the jitter. Default 0. Same seed, same inputs: same decisions.
    pub seed: u64,
    /// After this long healthy, the trip count that sets the next open duration drops by one
    /// (repeatedly), ms. Default 600 000: a provider that failed once long ago is not punished
    /// forever, one that trips again soon after recovering stays out longer.
    pub backoff_decay_ms: u64,
    /// How probing providers are tested. Default [`ProbeMode::Requests`].
    pub probe_mode: ProbeMode,
    /// Probe permits a probing provider hands out at once. Default 1 (no thundering herd).
    pub probe_max_in_flight: u32,
    /// Successful probes needed before the ramp starts. Default 3.
    pub probe_successes: u32,
    /// A probe not reported within this long expires and frees its permit (it is not counted as a
    /// failure; report timeouts as timeouts), ms. Default 60 000.
    pub probe_timeout_ms: u64,
    /// Active checks of idle healthy providers: when a healthy provider has recorded no outcome for
    /// this long, [`crate::Router::poll_action`] asks for a health check of it, so a standby that
    /// died is found before user traffic needs it. Check results count like requests (a failing
    /// standby is opened by its triggers, typically `consecutive_failures`). `None` (the default)
    /// checks nothing: the engine cannot know what a check costs you.
    pub health_check_interval_ms: Option<u64>,
    /// The recovery ramp. Default 5 %, 25 %, 50 % for 400 s each, then 100 %: back to full traffic
    /// over 20 minutes.
    pub ramp: heapless::Vec<RampStage, MAX_RAMP_STAGES>,
    /// A ramp stage advances only after this many counted calls in the stage (and its dwell).
    /// With fewer it holds its share: a stage with too little traffic has no error rate to judge.
    /// Also the window volume from which the rollback rate is judged. Default 10.
    pub ramp_min_samples: u32,
    /// Rollback: during the ramp, failures (hard failures and timeouts) / counted calls in the
    /// rolling window at or above this fraction, with at least `ramp_min_samples` calls, reopen
    /// the circuit with the next, longer backoff. The window holds only ramped traffic (it is
    /// cleared when the ramp starts). Default 0.2: a recovering provider must prove itself, so the
    /// bar is lower than the trip's.
    pub ramp_rollback_threshold: f64,
    /// First throttle after a 429 without `Retry-After`, ms; doubles with each further 429 until a
    /// success. Default 1 000.
    pub throttle_base_ms: u64,
    /// Cap on that growing throttle, ms. Default 60 000.
    pub throttle_max_ms: u64,
    /// Cap on any `Retry-After` honoured, ms. Default 600 000: a provider cannot bench itself for
    /// a day by mistake.
    pub max_retry_after_ms: u64,
    /// How long a provider is benched after it rejects the credentials (401/403) or reports the
    /// quota exhausted, ms. Default 600 000: a person has to fix a key or a spend limit, so a
    /// check every 10 minutes costs one failed call and notices the fix soon enough. A bench is
    /// not a trip: no strike, no probe, no ramp when it ends.
    pub bench_ms: u64,
    /// A request's deadline when the caller gives none, ms from its start (see
    /// [`crate::Request`]). Default 120 000: long enough for a long completion and a failover,
    /// short enough that a caller is never left hanging on providers that answer nothing.
    pub request_timeout_ms: u64,
    /// A non-streamed attempt's deadline, ms from its start, unless it is the request's last
    /// candidate (which gets all the request's remaining time). Default 60 000. A fixed ceiling,
    /// not one derived from latency: a non-streamed call's duration grows with the length of the
    /// answer, so a latency-derived deadline would cut long answers; the ceiling only bounds a
    /// provider that hangs, so the next provider is still tried within the request's deadline.
    pub attempt_timeout_ms: u64,
    /// The longest a request waits for a provider to come back (the end of a `Retry-After`, an
    /// open period, a probe permit) when no provider can take it now, ms. Default 10 000: most
    /// `Retry-After`s are a few seconds, and waiting them out beats failing; a longer wait is the
    /// caller's decision (give it per request). 0 never waits.
    pub max_wait_ms: u64,
    /// How many times a request may retry the same provider after a transient failure (a server
    /// or connection error) when no other provider can take it. Default 1: another provider is a
    /// more independent retry than the same one, so it always goes first; a router whose other
    /// providers are unavailable still gets one retry of a transient error.
    pub same_provider_retries: u32,
    /// A streamed attempt's first-token deadline before the provider has a latency baseline, and
    /// the most it can be with one, ms. Default 15 000.
    pub first_token_timeout_ms: u64,
    /// The least a first-token deadline can be, ms. Default 2 000: a baseline of a few hundred ms
    /// must not cut a provider that is merely having a slow second.
    pub first_token_min_ms: u64,
    /// A streamed attempt's first-token deadline is this many times the provider's latency
    /// baseline (time to first token), within `first_token_min_ms..=first_token_timeout_ms`.
    /// Default 4: well above ordinary variation, well below a hang. The request's last candidate
    /// gets all the remaining time instead.
    pub first_token_factor: u32,
    /// The longest gap between two chunks of a stream once content has started, ms. Default
    /// 30 000. Past it the stream is stalled: a failure of its own kind.
    pub stream_idle_ms: u64,
    /// What to do when every provider is unavailable. Default [`AllDown::Soonest`].
    pub when_all_down: AllDown,
    /// Pacing's low watermark: when a provider's rate-limit headers
    /// ([`crate::Router::observe_headroom`]) put its headroom (the smallest remaining / limit)
    /// below this fraction, its share is multiplied by headroom / watermark, and at zero it takes
    /// no new traffic until the quota resets. Default 0.1: the last tenth of a quota is where a
    /// burst turns into 429s. `None` never paces. A fraction in (0, 1].
    pub pace_watermark: Option<f64>,
    /// A pacing hint expires this long after the header that set it when no fresh header
    /// arrives, or earlier at the quota's reset, ms. Default 60 000: providers' request windows
    /// are a minute, and a hint nobody refreshed is no longer evidence.
    pub pace_max_age_ms: u64,
}

impl Default for Policy {
    fn default() -> Self {
        let mut ramp = heapless::Vec::new();
        for (share, dwell_ms) in [(0.05, 400_000), (0.25, 400_000), (0.5, 400_000), (1.0, 0)] {
            let _ = ramp.push(RampStage { share, dwell_ms });
        }
        Policy {
            bucket_ms: 1_000,
            window_ms: 60_000,
            min_volume: 20,
            error_rate_threshold: Some(0.5),
            consecutive_failures: Some(3),
            timeout_rate_threshold: Some(0.3),
            timeout_sustain_ms: 30_000,
            slow_call_ms: 30_000,
            slow_call_rate_threshold: Some(0.5),
            latency_factor: Some(3.0),
            latency_quantile: 0.5,
            latency_baseline_ms: 1_800_000,
            count_client_errors: false,
            open_base_ms: 30_000,
            open_multiplier: 2.0,
            open_max_ms: 600_000,
            open_jitter: 0.1,
            seed: 0,
            backoff_decay_ms: 600_000,
            probe_mode: ProbeMode::Requests,
            probe_max_in_flight: 1,
            probe_successes: 3,
            probe_timeout_ms: 60_000,
            health_check_interval_ms: None,
            ramp,
            ramp_min_samples: 10,
            ramp_rollback_threshold: 0.2,
            throttle_base_ms: 1_000,
            throttle_max_ms: 60_000,
            max_retry_after_ms: 600_000,
            bench_ms: 600_000,
            request_timeout_ms: 120_000,
            attempt_timeout_ms: 60_000,
            max_wait_ms: 10_000,
            same_provider_retries: 1,
            first_token_timeout_ms: 15_000,
            first_token_min_ms: 2_000,
            first_token_factor: 4,
            stream_idle_ms: 30_000,
            when_all_down: AllDown::Soonest,
            pace_watermark: Some(0.1),
            pace_max_age_ms: 60_000,
        }
    }
}

/// A value given to [`Policy::set`] by a binding or a policy file.
#[derive(Clone, Copy)]
pub enum Value<'a> {
    /// `null` / `None`: disables an optional trigger.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer (wide enough for any u64 and any negative mistake).
    Int(i128),
    /// A floating-point number. Accepted for integer fields when it is integral.
    Float(f64),
    /// A string (enumerations such as `probe_mode`).
    Str(&'a str),
    /// A list given without its elements (JSON array, Python list or tuple, JS array): every
    /// field refuses it by its type alone, naming the field. Give `ramp` a [`Value::ListOf`].
    List,
    /// A mapping given without its entries (JSON object, Python dict, JS object): every field
    /// refuses it by its type alone.
    Map,
    /// A list with its elements, handed over one at a time: `ramp` takes one (a list of stages);
    /// every other field refuses it as [`Value::List`].
    ListOf(&'a dyn Items),
    /// A mapping with its entries (a ramp stage `{share, dwell_ms}`); a field refuses it as
    /// [`Value::Map`].
    MapOf(&'a dyn Entries),
    /// Any other value a language has (a function, a symbol, an arbitrary object).
    Unsupported,
}

/// The elements of a [`Value::ListOf`]: a binding implements it over its native list (converting
/// each element when asked, so nothing is copied up front); `[Value]` implements it for Rust.
pub trait Items {
    /// How many elements the list has.
    fn len(&self) -> usize;

    /// Whether the list is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `f` once with element `index` converted to a [`Value`] ([`Value::Null`] past the
    /// end; [`Value::Unsupported`] if the element cannot be read).
    fn item(&self, index: usize, f: &mut dyn FnMut(Value<'_>));
}

/// The entries of a [`Value::MapOf`]; `[(&str, Value)]` implements it for Rust.
pub trait Entries {
    /// Calls `f` once with the value under `key` ([`Value::Null`] when the key is missing).
    fn entry(&self, key: &str, f: &mut dyn FnMut(Value<'_>));
}

/// For bindings implementing [`Items`] and [`Entries`] over native values whose reading can fail:
/// hands `f` the `element` (`None`, a missing one, as [`Value::Null`]) through `convert`, or,
/// when reading or converting it fails, keeps the first failure in `pending` (for the binding to
/// report instead of the core's error) and hands `f` [`Value::Unsupported`].
pub fn hand_over<T, E>(
    element: Result<Option<T>, E>,
    pending: &core::cell::Cell<Option<E>>,
    f: &mut dyn FnMut(Value<'_>),
    convert: impl FnOnce(T, &mut dyn FnMut(Value<'_>)) -> Result<(), E>,
) {
    let read = element.and_then(|e| match e {
        Some(t) => convert(t, &mut *f),
        None => {
            f(Value::Null);
            Ok(())
        }
    });
    if let Err(e) = read {
        let first = pending.take().unwrap_or(e);
        pending.set(Some(first));
        f(Value::Unsupported);
    }
}

impl Items for [Value<'_>] {
    fn len(&self) -> usize {
        <[Value<'_>]>::len(self)
    }

    fn item(&self, index: usize, f: &mut dyn FnMut(Value<'_>)) {
        f(self.get(index).copied().unwrap_or(Value::Null));
    }
}

impl Entries for [(&str, Value<'_>)] {
    fn entry(&self, key: &str, f: &mut dyn FnMut(Value<'_>)) {
        f(self
            .iter()
            .find(|(k, _)| *k == key)
            .map_or(Value::Null, |(_, v)| *v));
    }
}

impl<const N: usize> Items for [Value<'_>; N] {
    fn len(&self) -> usize {
        N
    }

    fn item(&self, index: usize, f: &mut dyn FnMut(Value<'_>)) {
        self[..].item(index, f);
    }
}

impl<const N: usize> Entries for [(&str, Value<'_>); N] {
    fn entry(&self, key: &str, f: &mut dyn FnMut(Value<'_>)) {
        self[..].entry(key, f);
    }
}

impl core::fmt::Debug for Value<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Value::Null => f.write_str("Null"),
            Value::Bool(b) => f.debug_tuple("Bool").field(b).finish(),
            Value::Int(i) => f.debug_tuple("Int").field(i).finish(),
            Value::Float(x) => f.debug_tuple("Float").field(x).finish(),
            Value::Str(s) => f.debug_tuple("Str").field(s).finish(),
            Value::List => f.write_str("List"),
            Value::Map => f.write_str("Map"),
            Value::ListOf(l) => write!(f, "ListOf(<{} items>)", l.len()),
            Value::MapOf(_) => f.write_str("MapOf(..)"),
            Value::Unsupported => f.write_str("Unsupported"),
        }
    }
}

impl Value<'_> {
    /// The value's type as an error message names it.
    fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a fractional number",
            Value::Str(_) => "a string",
            Value::List | Value::ListOf(_) => "a list",
            Value::Map | Value::MapOf(_) => "a mapping",
            Value::Unsupported => "an unsupported value",
        }
    }
}

/// What `ramp` takes, as its errors say.
const RAMP_TAKES: &str = "a list of {share, dwell_ms} stages";
/// What one ramp stage is, as its errors say.
const STAGE_TAKES: &str = "a ramp stage ({share, dwell_ms} or [share, dwell_ms])";

/// One ramp stage: a mapping `{share, dwell_ms}` or a pair `[share, dwell_ms]`.
fn ramp_stage(v: Value<'_>) -> Result<RampStage, ConfigError> {
    let (mut s, mut d) = (Ok(0.0), Ok(0));
    match v {
        Value::ListOf(pair) if pair.len() == 2 => {
            pair.item(0, &mut |v| s = as_f64("ramp.share", v));
            pair.item(1, &mut |v| d = as_u64("ramp.dwell_ms", v));
        }
        Value::MapOf(m) => {
            m.entry("share", &mut |v| s = as_f64("ramp.share", v));
            m.entry("dwell_ms", &mut |v| d = as_u64("ramp.dwell_ms", v));
        }
        other => {
            return Err(ConfigError::WrongType {
                field: "ramp",
                expected: STAGE_TAKES,
                got: other.type_name(),
            });
        }
    }
    Ok(RampStage {
        share: s?,
        dwell_ms: d?,
    })
}

/// Every policy field name, as policy files and the bindings spell them, all set with
/// [`Policy::set`] (`ramp` as a [`Value::ListOf`] stages).
pub const FIELDS: [&str; 42] = [
    "bucket_ms",
    "window_ms",
    "min_volume",
    "error_rate_threshold",
    "consecutive_failures",
    "timeout_rate_threshold",
    "timeout_sustain_ms",
    "slow_call_ms",
    "slow_call_rate_threshold",
    "latency_factor",
    "latency_quantile",
    "latency_baseline_ms",
    "count_client_errors",
    "open_base_ms",
    "open_multiplier",
    "open_max_ms",
    "open_jitter",
    "seed",
    "backoff_decay_ms",
    "probe_mode",
    "probe_max_in_flight",
    "probe_successes",
    "probe_timeout_ms",
    "health_check_interval_ms",
    "ramp_min_samples",
    "ramp_rollback_threshold",
    "throttle_base_ms",
    "throttle_max_ms",
    "max_retry_after_ms",
    "bench_ms",
    "request_timeout_ms",
    "attempt_timeout_ms",
    "max_wait_ms",
    "same_provider_retries",
    "first_token_timeout_ms",
    "first_token_min_ms",
    "first_token_factor",
    "stream_idle_ms",
    "when_all_down",
    "pace_watermark",
    "pace_max_age_ms",
    "ramp",
];

fn as_u64(field: &'static str, v: Value<'_>) -> Result<u64, ConfigError> {
    match v {
        Value::Int(i) => u64::try_from(i).map_err(|_| ConfigError::OutOfRange { field }),
        Value::Float(x) if x.is_finite() && x == (x as i128) as f64 => {
            u64::try_from(x as i128).map_err(|_| ConfigError::OutOfRange { field })
        }
        other => Err(ConfigError::WrongType {
            field,
            expected: "a non-negative integer",
            got: other.type_name(),
        }),
    }
}

fn as_u32(field: &'static str, v: Value<'_>) -> Result<u32, ConfigError> {
    u32::try_from(as_u64(field, v)?).map_err(|_| ConfigError::OutOfRange { field })
}

fn as_f64(field: &'static str, v: Value<'_>) -> Result<f64, ConfigError> {
    match v {
        Value::Float(x) => Ok(x),
        Value::Int(i) => Ok(i as f64),
        other => Err(ConfigError::WrongType {
            field,
            expected: "a number",
            got: other.type_name(),
        }),
    }
}

fn opt<T>(
    field: &'static str,
    v: Value<'_>,
    f: fn(&'static str, Value<'_>) -> Result<T, ConfigError>,
) -> Result<Option<T>, ConfigError> {
    match v {
        Value::Null => Ok(None),
        other => f(field, other).map(Some),
    }
}

fn as_str<'a>(field: &'static str, v: Value<'a>) -> Result<&'a str, ConfigError> {
    match v {
        Value::Str(s) => Ok(s),
        other => Err(ConfigError::WrongType {
            field,
            expected: "a string",
            got: other.type_name(),
        }),
    }
}

impl Policy {
    /// Sets one field by its name (the names in [`FIELDS`], as used by policy files and the
    /// bindings). Checks the value's type and sign here; rules between fields are checked when the
    /// router is built. `ramp` takes a [`Value::ListOf`] stages, each a mapping `{share,
    /// dwell_ms}` or a pair `[share, dwell_ms]`; it replaces the whole ramp, or on an error leaves
    /// it as it was. Cost: O(1), O(stages) for `ramp`.
    pub fn set(&mut self, field: &str, value: Value<'_>) -> Result<(), ConfigError> {
        macro_rules! field {
            ($name:literal, $conv:expr, $slot:expr) => {{
                $slot = $conv($name, value)?;
                return Ok(());
            }};
        }
        match field {
            "bucket_ms" => field!("bucket_ms", as_u64, self.bucket_ms),
            "window_ms" => field!("window_ms", as_u64, self.window_ms),
            "min_volume" => field!("min_volume", as_u32, self.min_volume),
            "error_rate_threshold" => field!(
                "error_rate_threshold",
                |n, v| opt(n, v, as_f64),
                self.error_rate_threshold
            ),
            "consecutive_failures" => field!(
                "consecutive_failures",
                |n, v| opt(n, v, as_u32),
                self.consecutive_failures
            ),
            "timeout_rate_threshold" => field!(
                "timeout_rate_threshold",
                |n, v| opt(n, v, as_f64),
                self.timeout_rate_threshold
            ),
            "timeout_sustain_ms" => field!("timeout_sustain_ms", as_u64, self.timeout_sustain_ms),
            "slow_call_ms" => field!("slow_call_ms", as_u32, self.slow_call_ms),
            "slow_call_rate_threshold" => field!(
                "slow_call_rate_threshold",
                |n, v| opt(n, v, as_f64),
                self.slow_call_rate_threshold
            ),
            "latency_factor" => field!(
                "latency_factor",
                |n, v| opt(n, v, as_f64),
                self.latency_factor
            ),
            "latency_quantile" => field!("latency_quantile", as_f64, self.latency_quantile),
            "latency_baseline_ms" => {
                field!("latency_baseline_ms", as_u64, self.latency_baseline_ms)
            }
            "count_client_errors" => match value {
                Value::Bool(b) => {
                    self.count_client_errors = b;
                    Ok(())
                }
                other => Err(ConfigError::WrongType {
                    field: "count_client_errors",
                    expected: "a boolean",
                    got: other.type_name(),
                }),
            },
            "open_base_ms" => field!("open_base_ms", as_u64, self.open_base_ms),
            "open_multiplier" => field!("open_multiplier", as_f64, self.open_multiplier),
            "open_max_ms" => field!("open_max_ms", as_u64, self.open_max_ms),
            "open_jitter" => field!("open_jitter", as_f64, self.open_jitter),
            "seed" => field!("seed", as_u64, self.seed),
            "backoff_decay_ms" => field!("backoff_decay_ms", as_u64, self.backoff_decay_ms),
            "probe_mode" => {
                self.probe_mode = match as_str("probe_mode", value)? {
                    "requests" => ProbeMode::Requests,
                    "health_checks" => ProbeMode::HealthChecks,
                    _ => {
                        return Err(ConfigError::InvalidValue {
                            field: "probe_mode",
                        });
                    }
                };
                Ok(())
            }
            "probe_max_in_flight" => {
                field!("probe_max_in_flight", as_u32, self.probe_max_in_flight)
            }
            "probe_successes" => field!("probe_successes", as_u32, self.probe_successes),
            "probe_timeout_ms" => field!("probe_timeout_ms", as_u64, self.probe_timeout_ms),
            "health_check_interval_ms" => field!(
                "health_check_interval_ms",
                |n, v| opt(n, v, as_u64),
                self.health_check_interval_ms
            ),
            "ramp_min_samples" => field!("ramp_min_samples", as_u32, self.ramp_min_samples),
            "ramp_rollback_threshold" => field!(
                "ramp_rollback_threshold",
                as_f64,
                self.ramp_rollback_threshold
            ),
            "throttle_base_ms" => field!("throttle_base_ms", as_u64, self.throttle_base_ms),
            "throttle_max_ms" => field!("throttle_max_ms", as_u64, self.throttle_max_ms),
            "max_retry_after_ms" => field!("max_retry_after_ms", as_u64, self.max_retry_after_ms),
            "bench_ms" => field!("bench_ms", as_u64, self.bench_ms),
            "request_timeout_ms" => field!("request_timeout_ms", as_u64, self.request_timeout_ms),
            "attempt_timeout_ms" => field!("attempt_timeout_ms", as_u64, self.attempt_timeout_ms),
            "max_wait_ms" => field!("max_wait_ms", as_u64, self.max_wait_ms),
            "same_provider_retries" => {
                field!("same_provider_retries", as_u32, self.same_provider_retries)
            }
            "first_token_timeout_ms" => field!(
                "first_token_timeout_ms",
                as_u64,
                self.first_token_timeout_ms
            ),
            "first_token_min_ms" => field!("first_token_min_ms", as_u64, self.first_token_min_ms),
            "first_token_factor" => field!("first_token_factor", as_u32, self.first_token_factor),
            "stream_idle_ms" => field!("stream_idle_ms", as_u64, self.stream_idle_ms),
            "pace_watermark" => field!(
                "pace_watermark",
                |n, v| opt(n, v, as_f64),
                self.pace_watermark
            ),
            "pace_max_age_ms" => field!("pace_max_age_ms", as_u64, self.pace_max_age_ms),
            "when_all_down" => {
                self.when_all_down = match as_str("when_all_down", value)? {
                    "soonest" => AllDown::Soonest,
                    "fail" => AllDown::Fail,
                    _ => {
                        return Err(ConfigError::InvalidValue {
                            field: "when_all_down",
                        });
                    }
                };
                Ok(())
            }
            "ramp" => {
                let Value::ListOf(stages) = value else {
                    return Err(ConfigError::WrongType {
                        field: "ramp",
                        expected: RAMP_TAKES,
                        got: value.type_name(),
                    });
                };
                let mut ramp = heapless::Vec::new();
                for i in 0..stages.len() {
                    let mut stage = Err(ConfigError::RampTooLong);
                    stages.item(i, &mut |v| stage = ramp_stage(v));
                    ramp.push(stage?).map_err(|_| ConfigError::RampTooLong)?;
                }
                self.ramp = ramp;
                Ok(())
            }
            other => Err(ConfigError::UnknownField {
                field: truncated(other),
            }),
        }
    }

    /// Removes every ramp stage (before pushing new ones). [`Policy::set`] with `ramp` sets the
    /// whole ramp at once.
    pub fn clear_ramp(&mut self) {
        self.ramp.clear();
    }

    /// Appends a ramp stage given as policy-file values (`share`, `dwell_ms`). Fails with
    /// [`ConfigError::RampTooLong`] past [`MAX_RAMP_STAGES`]; other ramp rules are checked when the
    /// router is built.
    pub fn push_ramp_stage(
        &mut self,
        share: Value<'_>,
        dwell_ms: Value<'_>,
    ) -> Result<(), ConfigError> {
        let stage = RampStage {
            share: as_f64("ramp.share", share)?,
            dwell_ms: as_u64("ramp.dwell_ms", dwell_ms)?,
        };
        self.ramp.push(stage).map_err(|_| ConfigError::RampTooLong)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    fn err(p: &Policy) -> &'static str {
        p.compile(120).unwrap_err().code()
    }

    #[test]
    fn default_is_valid_and_ramps_over_twenty_minutes() {
        let c = Policy::default().compile(120).unwrap();
        let total: u64 = c.ramp.iter().map(|s| s.1).sum();
        assert_eq!(total, 1_200_000);
        assert_eq!(
            c.ramp.iter().map(|s| s.0).collect::<heapless::Vec<_, 8>>()[..],
            [50_000, 250_000, 500_000, 1_000_000]
        );
        assert_eq!(c.open_ladder[0], 30_000);
        assert_eq!(c.open_ladder[1], 60_000);
        assert_eq!(c.open_ladder[4], 480_000);
        assert_eq!(c.open_ladder[5], 600_000);
        assert_eq!(c.open_ladder[63], 600_000);
        assert_eq!(c.max_strikes, 6);
    }

    #[test]
    fn each_rule_has_its_error() {
        let d = Policy::default;
        assert_eq!(
            err(&Policy {
                bucket_ms: 0,
                ..d()
            }),
            "zero_duration"
        );
        assert_eq!(
            err(&Policy {
                window_ms: 1_500,
                ..d()
            }),
            "window_not_multiple_of_bucket"
        );
        assert_eq!(
            err(&Policy {
                window_ms: 121_000,
                ..d()
            }),
            "window_too_long"
        );
        assert_eq!(
            err(&Policy {
                min_volume: 0,
                ..d()
            }),
            "zero_count"
        );
        assert_eq!(
            err(&Policy {
                error_rate_threshold: Some(0.0),
                ..d()
            }),
            "threshold_out_of_range"
        );
        assert_eq!(
            err(&Policy {
                error_rate_threshold: Some(1.5),
                ..d()
            }),
            "threshold_out_of_range"
        );
        assert_eq!(
            err(&Policy {
                error_rate_threshold: Some(f64::NAN),
                ..d()
            }),
            "threshold_out_of_range"
        );
        assert_eq!(
            err(&Policy {
                consecutive_failures: Some(0),
                ..d()
            }),
            "zero_count"
        );
        assert_eq!(
            err(&Policy {
                latency_factor: Some(1.0),
                ..d()
            }),
            "factor_out_of_range"
        );
        assert_eq!(
            err(&Policy {
                open_multiplier: 0.5,
                ..d()
            }),
            "multiplier_out_of_range"
        );
        assert_eq!(
            err(&Policy {
                open_jitter: 1.0,
                ..d()
            }),
            "jitter_out_of_range"
        );
        assert_eq!(
            err(&Policy {
                open_max_ms: 1,
                ..d()
            }),
            "open_max_below_base"
        );
        assert_eq!(
            err(&Policy {
                throttle_max_ms: 1,
                ..d()
            }),
            "throttle_max_below_base"
        );
        assert_eq!(
            err(&Policy {
                probe_max_in_flight: 0,
                ..d()
            }),
            "probe_limit_out_of_range"
        );
        assert_eq!(
            err(&Policy {
                probe_max_in_flight: 9,
                ..d()
            }),
            "probe_limit_out_of_range"
        );
        let mut p = d();
        p.clear_ramp();
        assert_eq!(err(&p), "empty_ramp");
        p.push_ramp_stage(Value::Float(0.5), Value::Int(10))
            .unwrap();
        assert_eq!(err(&p), "ramp_not_ending_at_full");
        p.push_ramp_stage(Value::Float(0.4), Value::Int(10))
            .unwrap();
        assert_eq!(err(&p), "ramp_not_increasing");
        p.clear_ramp();
        p.push_ramp_stage(Value::Float(0.5), Value::Int(0)).unwrap();
        p.push_ramp_stage(Value::Float(1.0), Value::Int(0)).unwrap();
        assert_eq!(err(&p), "ramp_zero_dwell");
        for _ in 0..6 {
            p.push_ramp_stage(Value::Float(1.0), Value::Int(0)).unwrap();
        }
        assert_eq!(
            p.push_ramp_stage(Value::Float(1.0), Value::Int(0))
                .unwrap_err()
                .code(),
            "ramp_too_long"
        );
    }

    #[test]
    fn errors_name_their_field() {
        let d = Policy::default;
        let field = |p: Policy| p.compile(120).unwrap_err().field();
        let mut no_ramp = d();
        no_ramp.clear_ramp();
        assert_eq!(field(no_ramp), Some("ramp"));
        let mut p = d();
        p.window_ms = 1_500;
        assert_eq!(field(p), Some("window_ms"));
        let mut p = d();
        p.open_max_ms = 1;
        assert_eq!(field(p), Some("open_max_ms"));
        let mut p = d();
        p.min_volume = 0;
        assert_eq!(field(p), Some("min_volume"));
        assert_eq!(ConfigError::NoProviders.field(), None);
    }

    #[test]
    fn ramp_is_set_whole_from_pairs_or_mappings() {
        let mut p = Policy::default();
        let pair = [Value::Float(0.5), Value::Int(1_000)];
        let full: [(&str, Value<'_>); 2] = [("dwell_ms", Value::Int(0)), ("share", Value::Int(1))];
        let stages = [Value::ListOf(&pair), Value::MapOf(&full)];
        p.set("ramp", Value::ListOf(&stages)).unwrap();
        assert_eq!(
            p.ramp[..],
            [
                RampStage {
                    share: 0.5,
                    dwell_ms: 1_000
                },
                RampStage {
                    share: 1.0,
                    dwell_ms: 0
                }
            ]
        );
        p.compile(120).unwrap();
        // A refused ramp leaves the old one; the error names the stage's field.
        let bad: [(&str, Value<'_>); 1] = [("share", Value::Str("x"))];
        let e = p
            .set(
                "ramp",
                Value::ListOf(&[Value::ListOf(&pair), Value::MapOf(&bad)]),
            )
            .unwrap_err();
        assert_eq!(e.to_string(), "`ramp.share` takes a number, got a string");
        assert_eq!(e.field(), Some("ramp"));
        let missing: [(&str, Value<'_>); 1] = [("share", Value::Float(1.0))];
        let e = p.set("ramp", Value::ListOf(&[Value::MapOf(&missing)]));
        assert_eq!(
            e.unwrap_err().to_string(),
            "`ramp.dwell_ms` takes a non-negative integer, got null"
        );
        assert_eq!(p.ramp.len(), 2);
        for shape in [Value::Int(1), Value::ListOf(&[pair[0]]), Value::List] {
            let e = p.set("ramp", Value::ListOf(&[shape])).unwrap_err();
            assert_eq!(
                (e.code(), e.field()),
                ("wrong_type", Some("ramp")),
                "{shape:?}"
            );
        }
        let e = p.set("ramp", Value::Int(3)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "`ramp` takes a list of {share, dwell_ms} stages, got an integer"
        );
        let nine = [Value::ListOf(&pair); MAX_RAMP_STAGES + 1];
        assert_eq!(
            p.set("ramp", Value::ListOf(&nine)).unwrap_err(),
            ConfigError::RampTooLong
        );
        p.set("ramp", Value::ListOf(&[Value::Null; 0])).unwrap();
        assert_eq!(err(&p), "empty_ramp");
    }

    #[test]
    fn hand_over_keeps_the_first_failure() {
        let pending = core::cell::Cell::new(None);
        let mut seen = std::vec::Vec::new();
        let mut f = |v: Value<'_>| seen.push(std::format!("{v:?}"));
        let ok = |x: i128, f: &mut dyn FnMut(Value<'_>)| -> Result<(), &str> {
            f(Value::Int(x));
            Ok(())
        };
        hand_over(Ok(Some(1)), &pending, &mut f, ok);
        hand_over(Ok(None), &pending, &mut f, ok);
        hand_over(Err("first"), &pending, &mut f, ok);
        hand_over(Ok(Some(2)), &pending, &mut f, |_, _| Err("second"));
        assert_eq!(seen, ["Int(1)", "Null", "Unsupported", "Unsupported"]);
        assert_eq!(pending.into_inner(), Some("first"));
    }

    #[test]
    fn set_by_name() {
        let mut p = Policy::default();
        p.set("consecutive_failures", Value::Null).unwrap();
        assert_eq!(p.consecutive_failures, None);
        p.set("window_ms", Value::Float(30_000.0)).unwrap();
        assert_eq!(p.window_ms, 30_000);
        p.set("probe_mode", Value::Str("health_checks")).unwrap();
        assert_eq!(p.probe_mode, ProbeMode::HealthChecks);
        assert_eq!(
            p.set("window_ms", Value::Float(1.5)).unwrap_err().code(),
            "wrong_type"
        );
        assert_eq!(
            p.set("window_ms", Value::Int(-1)).unwrap_err().code(),
            "out_of_range"
        );
        assert_eq!(
            p.set("window_ms", Value::Str("x")).unwrap_err().code(),
            "wrong_type"
        );
        assert_eq!(
            p.set("min_volume", Value::Int(1 << 40)).unwrap_err().code(),
            "out_of_range"
        );
        assert_eq!(
            p.set("nope", Value::Int(1)).unwrap_err().code(),
            "unknown_field"
        );
        let e = p.set("seed", Value::List).unwrap_err();
        assert_eq!((e.code(), e.field()), ("wrong_type", Some("seed")));
        assert_eq!(
            e.to_string(),
            "`seed` takes a non-negative integer, got a list"
        );
        assert_eq!(p.set("ramp", Value::Map).unwrap_err().field(), Some("ramp"));
        assert_eq!(
            p.set("seed", Value::ListOf(&[Value::Null; 0])).unwrap_err(),
            e
        );
        assert_eq!(
            p.set("probe_mode", Value::Str("x")).unwrap_err().code(),
            "invalid_value"
        );
        assert_eq!(p.set("when_all_down", Value::Str("fail")), Ok(()));
        for f in FIELDS.iter().filter(|f| **f != "ramp") {
            // Every listed field is known (its value may be of the wrong type).
            let e = p.clone().set(f, Value::Null);
            assert!(!matches!(e, Err(ConfigError::UnknownField { .. })), "{f}");
        }
    }

    /// Each "at most"/"at least" rule accepts its limit itself: a cap equal to its base (a flat
    /// open ladder of one strike, a constant throttle), a first-token floor equal to its
    /// deadline, the most probes in flight there are slots for, a factor just above 1.
    #[test]
    fn each_rule_accepts_its_limit() {
        let d = Policy::default;
        let flat = Policy {
            open_max_ms: 30_000,
            ..d()
        }
        .compile(120)
        .unwrap();
        assert_eq!(flat.open_ladder[0], 30_000);
        assert_eq!(flat.max_strikes, 1);
        for p in [
            Policy {
                throttle_max_ms: 1_000,
                ..d()
            },
            Policy {
                first_token_min_ms: 15_000,
                ..d()
            },
            Policy {
                probe_max_in_flight: MAX_PROBES as u32,
                ..d()
            },
            Policy {
                latency_factor: Some(1.001),
                ..d()
            },
        ] {
            assert_eq!(p.compile(120).map(|_| ()), Ok(()), "{p:?}");
        }
    }

    /// Fractions become parts per million (and factors thousandths) rounded to the nearest, and
    /// the open ladder doubles from its base up to its cap.
    #[test]
    fn fractions_compile_to_the_nearest_unit() {
        let c = Policy {
            error_rate_threshold: Some(0.123_456_7),
            latency_factor: Some(2.5),
            open_jitter: 0.1,
            ..Policy::default()
        }
        .compile(120)
        .unwrap();
        assert_eq!(c.error_rate_ppm, Some(123_457));
        assert_eq!(c.latency_factor_milli, Some(2_500));
        assert_eq!(c.jitter_ppm, 100_000);
        assert_eq!(c.ramp[0].0, 50_000);
        assert_eq!(
            c.open_ladder[..7],
            [30_000, 60_000, 120_000, 240_000, 480_000, 600_000, 600_000]
        );
        assert_eq!(c.max_strikes, 6);
    }

    /// A word a choice does not know is refused with the words it knows.
    #[test]
    fn invalid_choices_name_the_choices() {
        let mut p = Policy::default();
        for (field, says) in [
            (
                "probe_mode",
                "`probe_mode` must be \"requests\" or \"health_checks\"",
            ),
            (
                "when_all_down",
                "`when_all_down` must be \"soonest\" or \"fail\"",
            ),
        ] {
            let e = p.set(field, Value::Str("sometimes")).unwrap_err();
            assert_eq!(e.code(), "invalid_value");
            assert_eq!(e.to_string(), says);
        }
    }

    /// An unknown field's error names it, cut to the first 64 bytes that end on a character.
    #[test]
    fn unknown_fields_are_named_up_to_64_bytes() {
        use std::string::String;
        let mut p = Policy::default();
        let e = p.set("eror_rate", Value::Float(0.5)).unwrap_err();
        assert_eq!(e.to_string(), "unknown policy field `eror_rate`");
        let long: String = "é".repeat(40);
        let ConfigError::UnknownField { field } = p.set(&long, Value::Int(1)).unwrap_err() else {
            panic!("an unknown field");
        };
        assert_eq!(field.as_str(), "é".repeat(32));
    }

    /// Every word of a choice reads as its variant, whatever was set before.
    #[test]
    fn choices_read_each_word() {
        let mut p = Policy::default();
        for (word, mode) in [
            ("health_checks", ProbeMode::HealthChecks),
            ("requests", ProbeMode::Requests),
            ("health_checks", ProbeMode::HealthChecks),
        ] {
            p.set("probe_mode", Value::Str(word)).unwrap();
            assert_eq!(p.probe_mode, mode);
            assert_eq!(p.probe_mode.name(), word);
        }
        for (word, down) in [
            ("fail", AllDown::Fail),
            ("soonest", AllDown::Soonest),
            ("fail", AllDown::Fail),
        ] {
            p.set("when_all_down", Value::Str(word)).unwrap();
            assert_eq!(p.when_all_down, down);
            assert_eq!(p.when_all_down.name(), word);
        }
    }

    /// Rust's own lists and mappings as `Items` and `Entries`: slices and arrays alike, with
    /// `Null` past the end and for a missing key.
    #[test]
    fn rust_lists_and_mappings_hand_over_their_values() {
        fn items<L: Items + ?Sized>(l: &L) -> (usize, bool, std::vec::Vec<std::string::String>) {
            let got = (0..=l.len())
                .map(|i| {
                    let mut got = std::string::String::new();
                    l.item(i, &mut |v| got = std::format!("{v:?}"));
                    got
                })
                .collect();
            (l.len(), l.is_empty(), got)
        }
        fn entries<M: Entries + ?Sized>(m: &M) -> std::vec::Vec<std::string::String> {
            let mut got = std::vec::Vec::new();
            for key in ["dwell_ms", "share", "nope"] {
                m.entry(key, &mut |v| got.push(std::format!("{v:?}")));
            }
            got
        }
        let array = [Value::Int(3), Value::Str("x")];
        let (len, empty, got) = items(&array);
        assert_eq!((len, empty), (2, false));
        assert_eq!(got, ["Int(3)", "Str(\"x\")", "Null"]);
        let (len, empty, got) = items(&array[..1]);
        assert_eq!((len, empty), (1, false));
        assert_eq!(got, ["Int(3)", "Null"]);
        let none: [Value<'_>; 0] = [];
        assert_eq!(items(&none), (0, true, std::vec!["Null".into()]));
        assert!(items(&none[..]).1);
        let map = [("share", Value::Float(0.5)), ("dwell_ms", Value::Int(10))];
        assert_eq!(entries(&map), ["Int(10)", "Float(0.5)", "Null"]);
        assert_eq!(entries(&map[..]), ["Int(10)", "Float(0.5)", "Null"]);
    }

    /// `Value`'s `Debug` names the variant and what it holds (a list by its length).
    #[test]
    fn values_print_as_their_variant() {
        let pair = [Value::Int(1), Value::Int(2)];
        let stage = [("share", Value::Float(1.0))];
        let cases = [
            (Value::Null, "Null"),
            (Value::Bool(true), "Bool(true)"),
            (Value::Int(-2), "Int(-2)"),
            (Value::Float(0.25), "Float(0.25)"),
            (Value::Str("soonest"), "Str(\"soonest\")"),
            (Value::List, "List"),
            (Value::Map, "Map"),
            (Value::ListOf(&pair), "ListOf(<2 items>)"),
            (Value::MapOf(&stage), "MapOf(..)"),
            (Value::Unsupported, "Unsupported"),
        ];
        for (v, want) in cases {
            assert_eq!(std::format!("{v:?}"), want);
        }
    }

    /// A ramp stage given as a list is a pair `[share, dwell_ms]`: one element or three are
    /// refused as a stage of the wrong shape, not read as far as they go (three would pass for a
    /// pair, one for a stage with no dwell), and the ramp is left as it was.
    #[test]
    fn a_ramp_stage_list_must_be_a_pair() {
        let mut p = Policy::default();
        let (share, dwell) = (Value::Float(0.5), Value::Int(1_000));
        let (one, three) = ([share], [share, dwell, dwell]);
        let stages: [&dyn super::Items; 2] = [&one, &three];
        for stage in stages {
            let e = p
                .set("ramp", Value::ListOf(&[Value::ListOf(stage)]))
                .unwrap_err();
            assert_eq!(
                e.to_string(),
                "`ramp` takes a ramp stage ({share, dwell_ms} or [share, dwell_ms]), got a list",
                "{} elements",
                stage.len()
            );
        }
        assert_eq!(p.ramp, Policy::default().ramp);
    }
}
