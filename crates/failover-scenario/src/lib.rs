//! Replays `fixtures/scenarios/*.json` against `failover-core` and checks every expectation; also
//! the JSON shapes of policies, views and events that std tools (the simulator) share.
//!
//! The file format is documented in `fixtures/README.md`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::cell::Cell;
use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::path::{Path, PathBuf};

use failover_core::{
    Action, ChunkFacts, ChunkKind, ConfigError, DefaultRouter, Dimension, Entries, Event, Facts,
    Field, Fields, Headroom, Items, Outcome, OutcomeKind, PickRequest, Policy, ProviderId,
    ProviderSet, ProviderView, Recorded, Ticket, Transport, Value, Visitor, classify,
    classify_chunk, hash_key,
};
use serde_json::{Map, Value as Json, json};

pub mod fleet;
mod requests;

pub use requests::REQUEST_DIR;

/// The workspace's `fixtures/requests` directory (request scenarios: the same format, with
/// request steps).
#[must_use]
pub fn request_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(REQUEST_DIR)
}

/// Where the scenario files live, from the workspace root.
pub const SCENARIO_DIR: &str = "fixtures/scenarios";

/// The workspace's `fixtures/scenarios` directory.
#[must_use]
pub fn scenario_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(SCENARIO_DIR)
}

/// Why a scenario failed: the file, the step (if any) and what differed.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The scenario file.
    pub file: String,
    /// The step's index in `steps` (None for file-level problems).
    pub step: Option<usize>,
    /// What went wrong.
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.step {
            Some(s) => write!(f, "{}: step {}: {}", self.file, s, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for Failure {}

/// Calls `f` with a JSON value as a core policy value. Arrays and objects are handed over on
/// demand ([`Value::ListOf`], [`Value::MapOf`]); `asked`, if given, keeps the index of the last
/// element of this (outermost) array the core asked for, so an error can name the ramp stage.
fn with_value<R>(
    v: &Json,
    asked: Option<&Cell<Option<usize>>>,
    f: impl FnOnce(Value<'_>) -> R,
) -> R {
    match v {
        Json::Null => f(Value::Null),
        Json::Bool(b) => f(Value::Bool(*b)),
        Json::Number(n) => f(if let Some(i) = n.as_i64() {
            Value::Int(i128::from(i))
        } else if let Some(u) = n.as_u64() {
            Value::Int(i128::from(u))
        } else {
            // Only a number JSON cannot represent as f64 is unsupported.
            n.as_f64().map_or(Value::Unsupported, Value::Float)
        }),
        Json::String(s) => f(Value::Str(s)),
        Json::Array(items) => f(Value::ListOf(&JsonItems { items, asked })),
        Json::Object(map) => f(Value::MapOf(&JsonEntries(map))),
    }
}

/// A JSON array as the core's [`Items`].
struct JsonItems<'a> {
    items: &'a [Json],
    asked: Option<&'a Cell<Option<usize>>>,
}

impl Items for JsonItems<'_> {
    fn len(&self) -> usize {
        self.items.len()
    }

    fn item(&self, index: usize, f: &mut dyn FnMut(Value<'_>)) {
        if let Some(a) = self.asked {
            a.set(Some(index));
        }
        with_value(self.items.get(index).unwrap_or(&Json::Null), None, f);
    }
}

/// A JSON object as the core's [`Entries`].
struct JsonEntries<'a>(&'a Map<String, Json>);

impl Entries for JsonEntries<'_> {
    fn entry(&self, key: &str, f: &mut dyn FnMut(Value<'_>)) {
        with_value(self.0.get(key).unwrap_or(&Json::Null), None, f);
    }
}

/// Builds a policy from a JSON object with the field names `Policy::set` accepts; `ramp` is a list
/// of `{"share", "dwell_ms"}`. Unknown fields and wrong types are the core's errors.
pub fn policy_from_json(obj: &Json) -> Result<Policy, ConfigError> {
    policy_from_json_at(obj).map_err(|e| e.error)
}

/// A policy-file error with where it is: the top-level key being applied when the core refused
/// it (and the ramp stage, for `ramp`), so a tool can point at the line.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyError {
    /// The policy key that was being set, if the error came from one.
    pub key: Option<String>,
    /// For `ramp`: the index of the stage being pushed.
    pub stage: Option<usize>,
    /// The core's error.
    pub error: ConfigError,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl std::error::Error for PolicyError {}

/// [`policy_from_json`], also saying which key (and ramp stage) the core refused. Applies the keys
/// in the same order and stops at the same first error.
pub fn policy_from_json_at(obj: &Json) -> Result<Policy, PolicyError> {
    fn at(key: Option<&str>, stage: Option<usize>) -> impl FnOnce(ConfigError) -> PolicyError {
        let key = key.map(str::to_string);
        move |error| PolicyError { key, stage, error }
    }
    let mut p = Policy::default();
    let Some(map) = obj.as_object() else {
        return Err(at(None, None)(ConfigError::WrongType {
            field: "policy",
            expected: "an object",
            got: "another JSON type",
        }));
    };
    for (k, v) in map {
        let asked = Cell::new(None);
        with_value(v, Some(&asked), |value| p.set(k, value)).map_err(|e| {
            // A refused element of `ramp` is the stage the core asked for last.
            let stage = asked.get().filter(|_| e.field() == Some("ramp"));
            at(Some(k), stage)(e)
        })?;
    }
    Ok(p)
}

/// Builds a JSON object from a core value's [`Fields`], writing providers by name.
struct JsonOut<'n> {
    map: Map<String, Json>,
    names: &'n dyn Fn(ProviderId) -> String,
}

impl Visitor for JsonOut<'_> {
    type Error = Infallible;

    fn field(&mut self, name: &'static str, value: Field<'_>) -> Result<(), Infallible> {
        let v = match value {
            Field::Null => Json::Null,
            Field::U64(x) => json!(x),
            Field::U32(x) => json!(x),
            Field::Bool(b) => json!(b),
            Field::Str(s) => json!(s),
            Field::Ppm(ppm) => json!(Field::fraction(ppm)),
            Field::Provider(id) => json!((self.names)(id)),
            Field::F64(x) => json!(x),
        };
        self.map.insert(name.into(), v);
        Ok(())
    }

    fn list<F: Fields>(&mut self, name: &'static str, values: &[F]) -> Result<(), Infallible> {
        let v = values
            .iter()
            .map(|x| fields_to_json(x, self.names))
            .collect();
        self.map.insert(name.into(), Json::Array(v));
        Ok(())
    }

    fn nested<F: Fields + ?Sized>(
        &mut self,
        name: &'static str,
        value: &F,
    ) -> Result<(), Infallible> {
        let v = fields_to_json(value, self.names);
        self.map.insert(name.into(), v);
        Ok(())
    }
}

/// Any core value that describes its [`Fields`] as a JSON object; `names` gives a provider's name.
pub fn fields_to_json<F: Fields + ?Sized>(value: &F, names: &dyn Fn(ProviderId) -> String) -> Json {
    let mut out = JsonOut {
        map: Map::new(),
        names,
    };
    let Ok(()) = value.visit(&mut out);
    Json::Object(out.map)
}

/// The JSON shape of a provider view (see `fixtures/README.md`).
#[must_use]
pub fn view_to_json(v: &ProviderView<'_>) -> Json {
    // A view names itself; it has no provider field.
    fields_to_json(v, &|_| String::new())
}

/// The JSON shape of an event, with the provider's name.
#[must_use]
pub fn event_to_json(e: &Event, provider_name: &str) -> Json {
    fields_to_json(e, &|_| provider_name.to_string())
}

/// `expected` matches `observed`: objects by the expected keys only (recursively), arrays element
/// by element with equal lengths, numbers by value (so `0` equals `0.0`), the rest exactly.
#[must_use]
pub fn matches(expected: &Json, observed: &Json) -> bool {
    match (expected, observed) {
        (Json::Object(e), Json::Object(o)) => e
            .iter()
            .all(|(k, ev)| o.get(k).is_some_and(|ov| matches(ev, ov))),
        (Json::Array(e), Json::Array(o)) => {
            e.len() == o.len() && e.iter().zip(o).all(|(a, b)| matches(a, b))
        }
        (Json::Number(a), Json::Number(b)) => match (a.as_u64(), b.as_u64()) {
            (Some(x), Some(y)) => x == y,
            _ => a.as_f64() == b.as_f64(),
        },
        (a, b) => a == b,
    }
}

/// One step's observed results.
#[derive(Debug, Clone)]
pub struct StepResult {
    /// The step's index.
    pub step: usize,
    /// The timestamp given.
    pub at: u64,
    /// What the action returned, in the shape of `expect`.
    pub result: Json,
    /// The events drained after the step.
    pub events: Vec<Json>,
    /// `poll_timeout()` after the step.
    pub next_deadline: Option<u64>,
}

impl StepResult {
    /// The compact JSON line for this step.
    #[must_use]
    pub fn to_json(&self) -> Json {
        json!({
            "step": self.step,
            "at": self.at,
            "result": self.result,
            "events": self.events,
            "next_deadline": self.next_deadline,
        })
    }
}

/// A loaded scenario file.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The file it came from.
    pub file: String,
    /// Its parsed contents.
    pub doc: Json,
}

impl Scenario {
    /// Reads and parses a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, Failure> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| Failure {
            file: file.clone(),
            step: None,
            message: format!("cannot read: {e}"),
        })?;
        let doc: Json = serde_json::from_str(&text).map_err(|e| Failure {
            file: file.clone(),
            step: None,
            message: format!(
                "invalid JSON at line {}, column {}: {e}",
                e.line(),
                e.column()
            ),
        })?;
        Ok(Scenario { file, doc })
    }

    /// Every scenario in `dir`, sorted by file name.
    pub fn load_dir(dir: &Path) -> Result<Vec<Scenario>, Failure> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| Failure {
                file: dir.display().to_string(),
                step: None,
                message: format!("cannot list: {e}"),
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        paths.iter().map(|p| Scenario::load(p)).collect()
    }

    fn fail(&self, step: Option<usize>, message: impl Into<String>) -> Failure {
        Failure {
            file: self.file.clone(),
            step,
            message: message.into(),
        }
    }

    /// Builds the router, or returns the configuration error it gives.
    pub fn build(&self) -> Result<Result<Box<DefaultRouter>, ConfigError>, Failure> {
        let policy = match self.doc.get("policy") {
            None => Ok(Policy::default()),
            Some(p) => policy_from_json(p),
        };
        let names: Vec<&str> = self
            .doc
            .get("providers")
            .and_then(Json::as_array)
            .ok_or_else(|| self.fail(None, "`providers` must be a list of names"))?
            .iter()
            .map(|n| {
                n.as_str()
                    .ok_or_else(|| self.fail(None, "provider names must be strings"))
            })
            .collect::<Result<_, _>>()?;
        Ok(policy.and_then(|p| DefaultRouter::new(&p, &names).map(Box::new)))
    }

    /// Replays the steps and returns what each observed, without checking.
    pub fn observe(&self) -> Result<Vec<StepResult>, Failure> {
        let mut router = match self.build()? {
            Ok(r) => r,
            Err(e) => {
                return Ok(vec![StepResult {
                    step: 0,
                    at: 0,
                    result: json!({"error": e.code(), "message": e.to_string()}),
                    events: vec![],
                    next_deadline: None,
                }]);
            }
        };
        let steps = self
            .doc
            .get("steps")
            .and_then(Json::as_array)
            .ok_or_else(|| self.fail(None, "`steps` must be a list"))?;
        let mut tickets: HashMap<String, Ticket> = HashMap::new();
        let mut requests = requests::Requests::default();
        let mut out = Vec::with_capacity(steps.len());
        for (i, step) in steps.iter().enumerate() {
            let at = step
                .get("at")
                .and_then(Json::as_u64)
                .ok_or_else(|| self.fail(Some(i), "`at` must be a non-negative integer"))?;
            let result = self
                .apply(&mut router, &mut tickets, &mut requests, step, at)
                .map_err(|m| self.fail(Some(i), m))?;
            let drained: Vec<Event> = std::iter::from_fn(|| router.poll_event()).collect();
            let events = drained
                .iter()
                .map(|e| event_to_json(e, router.name(e.provider)))
                .collect();
            out.push(StepResult {
                step: i,
                at,
                result,
                events,
                next_deadline: router.poll_timeout(),
            });
        }
        Ok(out)
    }

    fn apply(
        &self,
        r: &mut DefaultRouter,
        tickets: &mut HashMap<String, Ticket>,
        requests: &mut requests::Requests,
        step: &Json,
        at: u64,
    ) -> Result<Json, String> {
        if let Some(res) = requests.apply(r, step, at, outcome) {
            return res;
        }
        let provider =
            |r: &DefaultRouter, name: &Json| -> Result<failover_core::ProviderId, String> {
                let n = name.as_str().ok_or("provider must be a name")?;
                r.provider(n)
                    .ok_or_else(|| format!("unknown provider `{n}`"))
            };
        if let Some(pick) = step.get("pick") {
            let mut req = PickRequest::default();
            if let Some(k) = pick.get("key") {
                let k = k.as_str().ok_or("`key` must be a string")?;
                req.key = Some(hash_key(k.as_bytes()));
            }
            if let Some(tried) = pick.get("tried") {
                let mut set = ProviderSet::new();
                for n in tried.as_array().ok_or("`tried` must be a list")? {
                    set.insert(provider(r, n)?);
                }
                req.tried = set;
            }
            return Ok(match r.pick_with(at, &req) {
                Ok(t) => {
                    if let Some(name) = step.get("as").and_then(Json::as_str) {
                        tickets.insert(name.to_string(), t);
                    }
                    ticket_json(r, &t)
                }
                Err(u) => json!({"unavailable": true, "retry_after_ms": u.retry_after_ms}),
            });
        }
        if let Some(rec) = step.get("record") {
            let name = rec
                .get("ticket")
                .and_then(Json::as_str)
                .ok_or("`record` needs a `ticket` name")?;
            let t = *tickets
                .get(name)
                .ok_or_else(|| format!("no ticket named `{name}`"))?;
            let o = outcome(rec)?;
            return Ok(json!(r.record(&t, o, at).name()));
        }
        if let Some(obs) = step.get("observe") {
            let id = provider(r, obs.get("provider").unwrap_or(&Json::Null))?;
            let o = outcome(obs)?;
            return Ok(json!(r.observe(id, o, at).name()));
        }
        if step.get("policy").is_some() {
            return Ok(fields_to_json(r.policy_in_force(), &|_| String::new()));
        }
        for (op, f) in [
            (
                "isolate",
                DefaultRouter::isolate as fn(&mut DefaultRouter, ProviderId, u64) -> bool,
            ),
            ("release", DefaultRouter::release),
            ("reset", DefaultRouter::reset),
        ] {
            if let Some(name) = step.get(op) {
                let id = provider(r, name)?;
                return Ok(json!(f(r, id, at)));
            }
        }
        if let Some(h) = step.get("http") {
            let c = classify(&facts(h)?);
            return Ok(json!({"outcome": c.kind.name(), "retry_after_ms": c.retry_after_ms}));
        }
        if let Some(c) = step.get("stream_chunk") {
            let k = classify_chunk(&chunk_facts(c));
            let outcome = match k {
                ChunkKind::Error(c) => Some(c.kind.name()),
                _ => None,
            };
            return Ok(json!({"kind": k.name(), "outcome": outcome}));
        }
        if let Some(h) = step.get("headers") {
            return headers(h);
        }
        if let Some(h) = step.get("headroom") {
            let id = provider(r, h.get("provider").unwrap_or(&Json::Null))?;
            let (headroom, _) = read_headers(h, &["provider", "pairs", "now_unix_ms"], "headroom")?;
            return Ok(json!(r.observe_headroom(id, &headroom, at).name()));
        }
        if step.get("tick").is_some() {
            r.handle_timeout(at);
            return Ok(Json::Null);
        }
        if step.get("poll").is_some() {
            let names: Vec<&str> = step
                .get("as")
                .and_then(Json::as_array)
                .map(|a| a.iter().filter_map(Json::as_str).collect())
                .unwrap_or_default();
            let mut actions = vec![];
            while let Some(Action::HealthCheck(t)) = r.poll_action(at) {
                if let Some(n) = names.get(actions.len()) {
                    tickets.insert((*n).to_string(), t);
                }
                actions.push(json!({"provider": r.name(t.provider), "kind": t.kind.name()}));
            }
            return Ok(Json::Array(actions));
        }
        if let Some(name) = step.get("view") {
            let id = provider(r, name)?;
            return Ok(view_to_json(&r.view(id).expect("id from this router")));
        }
        if let Some(tr) = step.get("traffic") {
            return traffic(r, tr, at);
        }
        Err(
            "the step has no action (pick, record, observe, isolate, release, reset, policy, http, \
             stream_chunk, headers, headroom, tick, poll, view, traffic, begin, next, report, \
             first_token, chunk, end, cancel)"
                .into(),
        )
    }

    /// Replays the scenario and checks every expectation. The first difference fails, naming the
    /// file and step.
    pub fn check(&self) -> Result<(), Failure> {
        if let Some(code) = self.doc.get("expect_error") {
            return match self.build()? {
                Ok(_) => Err(self.fail(
                    None,
                    format!("expected configuration error {code}, got a router"),
                )),
                Err(e) if Some(e.code()) == code.as_str() => Ok(()),
                Err(e) => Err(self.fail(
                    None,
                    format!(
                        "expected configuration error {code}, got `{}` ({e})",
                        e.code()
                    ),
                )),
            };
        }
        if let Err(e) = self.build()? {
            return Err(self.fail(
                None,
                format!("unexpected configuration error `{}`: {e}", e.code()),
            ));
        }
        let observed = self.observe()?;
        let steps = self.doc["steps"].as_array().expect("checked by observe");
        for (res, step) in observed.iter().zip(steps) {
            let i = res.step;
            if let Some(want) = step.get("expect")
                && !matches(want, &res.result)
            {
                return Err(self.fail(
                    Some(i),
                    format!("expected {want}\n   observed {}", res.result),
                ));
            }
            if let Some(want) = step.get("events") {
                let got = Json::Array(res.events.clone());
                if !matches(want, &got) {
                    return Err(self.fail(
                        Some(i),
                        format!("expected events {want}\n   observed events {got}"),
                    ));
                }
            }
            if let Some(want) = step.get("next_deadline") {
                let got = json!(res.next_deadline);
                if !matches(want, &got) {
                    return Err(self.fail(
                        Some(i),
                        format!("expected next_deadline {want}, observed {got}"),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn ticket_json(r: &DefaultRouter, t: &Ticket) -> Json {
    fields_to_json(t, &|id| r.name(id).to_string())
}

/// The [`Facts`] of an `http` step: every field optional, strings as given, `now_unix_ms` any
/// u64. An unknown field, a field of the wrong type or an unknown `transport` is an error in the
/// scenario.
/// The facts of a `stream_chunk` step's raw chunk (any JSON value), read as the bindings read a
/// parsed chunk by duck typing: a string's length; an object's `type`, its SSE `event` (without a
/// string `type`), its `choices` (a delta's `content`, `tool_calls` or `refusal` holding something
/// as Python's truthiness says; the first `finish_reason` that is not null, if a string), and an
/// `error` member that is not null (a string is its message; an object gives `code`, `type`,
/// `message`). Any other value has no facts.
fn chunk_facts(c: &Json) -> ChunkFacts<'_> {
    fn truthy(v: &Json) -> bool {
        match v {
            Json::Null => false,
            Json::Bool(b) => *b,
            Json::Number(n) => n.as_f64() != Some(0.0),
            Json::String(s) => !s.is_empty(),
            Json::Array(a) => !a.is_empty(),
            Json::Object(o) => !o.is_empty(),
        }
    }
    fn text(v: Option<&Json>) -> Option<&str> {
        v.and_then(Json::as_str)
    }
    let o = match c {
        Json::String(s) => {
            return ChunkFacts {
                text_len: Some(s.len()),
                ..ChunkFacts::default()
            };
        }
        Json::Object(o) => o,
        _ => return ChunkFacts::default(),
    };
    let kind = text(o.get("type"));
    let event = if kind.is_none() {
        text(o.get("event"))
    } else {
        None
    };
    let mut delta_content = false;
    let mut finish: Option<&Json> = None;
    for choice in o
        .get("choices")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let Some(choice) = choice.as_object() else {
            continue;
        };
        if let Some(d) = choice.get("delta").and_then(Json::as_object) {
            delta_content |= ["content", "tool_calls", "refusal"]
                .iter()
                .any(|k| d.get(*k).is_some_and(truthy));
        }
        if finish.is_none() {
            finish = choice.get("finish_reason").filter(|f| !f.is_null());
        }
    }
    let err = o.get("error").filter(|e| !e.is_null());
    let (code, ty, message) = match err {
        Some(Json::String(m)) => (None, None, Some(m.as_str())),
        Some(Json::Object(e)) => (
            text(e.get("code")),
            text(e.get("type")),
            text(e.get("message")),
        ),
        _ => (None, None, None),
    };
    ChunkFacts {
        text_len: None,
        kind,
        event,
        delta_content,
        finish_reason: text(finish),
        error: err.is_some(),
        error_code: code,
        error_type: ty,
        message,
    }
}

fn facts(h: &Json) -> Result<Facts<'_>, String> {
    const FIELDS: [&str; 9] = [
        "status",
        "error_code",
        "error_type",
        "message",
        "transport",
        "retry_after",
        "retry_after_ms",
        "x_ms_retry_after_ms",
        "now_unix_ms",
    ];
    if let Some(k) = h
        .as_object()
        .ok_or("`http` must be an object")?
        .keys()
        .find(|k| !FIELDS.contains(&k.as_str()))
    {
        return Err(format!("unknown `http` field `{k}`"));
    }
    let text = |name: &str| -> Result<Option<&str>, String> {
        match h.get(name) {
            None | Some(Json::Null) => Ok(None),
            Some(Json::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(format!("`{name}` must be a string")),
        }
    };
    let status = match h.get("status") {
        None | Some(Json::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|s| u16::try_from(s).ok())
                .ok_or("`status` must be an integer 0–65535")?,
        ),
    };
    let transport = match text("transport")? {
        None => None,
        Some(t) => Some(Transport::from_name(t).ok_or_else(|| format!("unknown transport `{t}`"))?),
    };
    let now_unix_ms = match h.get("now_unix_ms") {
        None | Some(Json::Null) => None,
        Some(v) => Some(v.as_u64().ok_or("`now_unix_ms` must be an integer ≥ 0")?),
    };
    Ok(Facts {
        status,
        error_code: text("error_code")?,
        error_type: text("error_type")?,
        message: text("message")?,
        transport,
        retry_after: text("retry_after")?,
        retry_after_ms: text("retry_after_ms")?,
        x_ms_retry_after_ms: text("x_ms_retry_after_ms")?,
        now_unix_ms,
    })
}

/// A `headers` step: the `pairs` (`[name, value]` strings) fed in order to one
/// [`Headroom`] with the optional wall clock `now_unix_ms`; the result is every dimension's
/// quota, the headroom and how many headers were rate-limit headers.
fn headers(h: &Json) -> Result<Json, String> {
    let (headroom, recognised) = read_headers(h, &["pairs", "now_unix_ms"], "headers")?;
    Ok(headroom_json(&headroom, recognised))
}

/// The `pairs` of a `headers` or `headroom` step (whose other fields are `allowed`) fed to one
/// [`Headroom`], and how many were rate-limit headers.
fn read_headers(h: &Json, allowed: &[&str], step: &str) -> Result<(Headroom, u64), String> {
    let obj = h
        .as_object()
        .ok_or_else(|| format!("`{step}` must be an object"))?;
    if let Some(k) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(format!("unknown `{step}` field `{k}`"));
    }
    let now_unix_ms = match h.get("now_unix_ms") {
        None | Some(Json::Null) => None,
        Some(v) => Some(v.as_u64().ok_or("`now_unix_ms` must be an integer ≥ 0")?),
    };
    let mut headroom = Headroom::default();
    let mut recognised = 0u64;
    let pairs = h
        .get("pairs")
        .and_then(Json::as_array)
        .ok_or("`pairs` must be a list of [name, value]")?;
    for p in pairs {
        let (Some(name), Some(value), Some(2)) = (
            p.get(0).and_then(Json::as_str),
            p.get(1).and_then(Json::as_str),
            p.as_array().map(Vec::len),
        ) else {
            return Err("each of `pairs` must be [name, value], two strings".into());
        };
        recognised += u64::from(headroom.header(name, value, now_unix_ms));
    }
    Ok((headroom, recognised))
}

/// The result of a `headers` step, also what the Python and Node bindings' `headroom` returns.
fn headroom_json(h: &Headroom, recognised: u64) -> Json {
    let mut out = Map::new();
    for d in Dimension::ALL {
        let q = h.quota(d);
        out.insert(
            d.name().to_string(),
            json!({"limit": q.limit, "remaining": q.remaining, "reset_in_ms": q.reset_in_ms}),
        );
    }
    out.insert("headroom_ppm".into(), json!(h.headroom_ppm()));
    out.insert("recognised".into(), json!(recognised));
    Json::Object(out)
}

fn outcome(obj: &Json) -> Result<Outcome, String> {
    let kind_name = obj
        .get("outcome")
        .and_then(Json::as_str)
        .ok_or("`outcome` must be an outcome kind")?;
    let kind = OutcomeKind::from_name(kind_name)
        .ok_or_else(|| format!("unknown outcome `{kind_name}`"))?;
    let latency_ms = match obj.get("latency_ms") {
        None => 0,
        Some(v) => v
            .as_u64()
            .and_then(|l| u32::try_from(l).ok())
            .ok_or("`latency_ms` must be an integer 0–4294967295")?,
    };
    let retry_after_ms = match obj.get("retry_after_ms") {
        None | Some(Json::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or("`retry_after_ms` must be a non-negative integer")?,
        ),
    };
    Ok(Outcome {
        kind,
        latency_ms,
        retry_after_ms,
    })
}

fn traffic(r: &mut DefaultRouter, tr: &Json, from: u64) -> Result<Json, String> {
    let until = tr
        .get("until")
        .and_then(Json::as_u64)
        .ok_or("`traffic.until` must be a timestamp")?;
    let every = tr
        .get("every_ms")
        .and_then(Json::as_u64)
        .filter(|&e| e > 0)
        .ok_or("`traffic.every_ms` must be a positive integer")?;
    let outcomes = tr
        .get("outcomes")
        .and_then(Json::as_object)
        .ok_or("`traffic.outcomes` must map provider names (or \"*\") to outcomes")?;
    let mut by_provider: Vec<Option<Outcome>> = vec![None; r.len()];
    let mut default = None;
    for (name, o) in outcomes {
        let o = outcome(o)?;
        if name == "*" {
            default = Some(o);
        } else {
            let id = r
                .provider(name)
                .ok_or_else(|| format!("unknown provider `{name}`"))?;
            by_provider[id.index()] = Some(o);
        }
    }
    let req = PickRequest {
        key: tr
            .get("key")
            .and_then(Json::as_str)
            .map(|k| hash_key(k.as_bytes())),
        tried: ProviderSet::new(),
    };
    let mut picks = vec![0u64; r.len()];
    let (mut probes, mut degraded, mut unavailable) = (0u64, 0u64, 0u64);
    let mut t = from;
    while t < until {
        match r.pick_with(t, &req) {
            Ok(ticket) => {
                let i = ticket.provider.index();
                picks[i] += 1;
                probes += u64::from(ticket.is_probe());
                degraded += u64::from(ticket.degraded);
                let o = by_provider[i].or(default).ok_or_else(|| {
                    format!("no outcome for provider `{}`", r.name(ticket.provider))
                })?;
                let recorded: Recorded = r.record(&ticket, o, t);
                debug_assert_eq!(recorded, Recorded::Accepted);
            }
            Err(_) => unavailable += 1,
        }
        t = match t.checked_add(every) {
            Some(n) => n,
            None => break,
        };
    }
    let picks: Map<String, Json> = (0..r.len())
        .map(|i| {
            let id = r.provider_at(i).expect("in range");
            (r.name(id).to_string(), json!(picks[i]))
        })
        .collect();
    Ok(json!({"picks": picks, "probes": probes, "degraded": degraded, "unavailable": unavailable}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_errors_say_which_key() {
        let ok = policy_from_json_at(&json!({"consecutive_failures": 3})).unwrap();
        assert_eq!(ok.consecutive_failures, Some(3));
        let e = policy_from_json_at(&json!({"min_volume": 5, "window_ms": "long"})).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("window_ms"));
        assert_eq!(e.error.code(), "wrong_type");
        assert_eq!(e.to_string(), e.error.to_string());
        let e =
            policy_from_json_at(&json!({"ramp": [{"share": 0.5, "dwell_ms": 1}, {"share": "x"}]}))
                .unwrap_err();
        assert_eq!((e.key.as_deref(), e.stage), (Some("ramp"), Some(1)));
        let e = policy_from_json_at(&json!([1])).unwrap_err();
        assert_eq!(e.key, None);
        // The old entry point gives the same error.
        assert_eq!(
            policy_from_json(&json!({"seed": [1]})).unwrap_err(),
            policy_from_json_at(&json!({"seed": [1]}))
                .unwrap_err()
                .error
        );
    }
}
