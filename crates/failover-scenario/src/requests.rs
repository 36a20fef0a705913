//! The request steps of a scenario (`begin`, `next`, `report`, `first_token`, `chunk`, `end`,
//! `cancel`): a [`Request`] driven against the scenario's router. Format: `fixtures/README.md`,
//! "Request scenarios".

use std::collections::HashMap;

use failover_core::{DefaultRouter, Outcome, Request, RequestError, RequestOptions, hash_key};
use serde_json::{Value as Json, json};

/// Where the request scenario files live, from the workspace root.
pub const REQUEST_DIR: &str = "fixtures/requests";

/// The requests of one scenario, by the names their `begin` steps gave them.
#[derive(Default)]
pub(crate) struct Requests {
    by_name: HashMap<String, Request>,
}

fn name_of<'a>(v: &'a Json, action: &str) -> Result<&'a str, String> {
    v.as_str()
        .or_else(|| v.get("request").and_then(Json::as_str))
        .ok_or_else(|| format!("`{action}` needs a request name"))
}

fn opt_u64(obj: &Json, key: &str) -> Result<Option<u64>, String> {
    match obj.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("`{key}` must be a non-negative integer")),
    }
}

/// Any value the core describes by its [`failover_core::Fields`], with this router's names.
fn to_json<F: failover_core::Fields>(r: &DefaultRouter, value: &F) -> Json {
    crate::fields_to_json(value, &|id| r.name(id).to_string())
}

impl Requests {
    /// Applies `step` if it is a request step: `None` when it is not one.
    pub(crate) fn apply(
        &mut self,
        r: &mut DefaultRouter,
        step: &Json,
        at: u64,
        outcome: impl Fn(&Json) -> Result<Outcome, String>,
    ) -> Option<Result<Json, String>> {
        if let Some(b) = step.get("begin") {
            return Some(self.begin(r, b, step, at));
        }
        let (action, v) = ["next", "report", "first_token", "chunk", "end", "cancel"]
            .into_iter()
            .find_map(|a| step.get(a).map(|v| (a, v)))?;
        Some((|| {
            let name = name_of(v, action)?;
            let req = self
                .by_name
                .get_mut(name)
                .ok_or_else(|| format!("no request named `{name}`"))?;
            if action == "next" {
                let s = req.poll(r, at);
                return Ok(to_json(r, &s));
            }
            let (_, before) = req.last_report();
            let res: Result<(), RequestError> = match action {
                "report" => req.handle_outcome(r, outcome(v)?, at),
                "first_token" => req.handle_first_token(at),
                "chunk" => req.handle_chunk(at),
                "end" => {
                    let complete = v
                        .get("complete")
                        .and_then(Json::as_bool)
                        .ok_or("`end` needs `complete`: true or false")?;
                    req.handle_end(r, complete, at)
                }
                _ => req.handle_cancel(r, at),
            };
            if let Err(e) = res {
                return Ok(json!({"error": e.name()}));
            }
            let (report, after) = req.last_report();
            Ok(match report {
                Some(rep) if after != before => json!({"recorded": to_json(r, &rep)}),
                _ => json!({"recorded": null}),
            })
        })())
    }

    fn begin(&mut self, r: &DefaultRouter, b: &Json, step: &Json, at: u64) -> Result<Json, String> {
        let name = step
            .get("as")
            .and_then(Json::as_str)
            .ok_or("`begin` needs `as`: the request's name")?;
        let key = match b.get("key") {
            None | Some(Json::Null) => None,
            Some(k) => Some(hash_key(
                k.as_str().ok_or("`key` must be a string")?.as_bytes(),
            )),
        };
        let max_attempts = opt_u64(b, "max_attempts")?
            .map(|n| u8::try_from(n).map_err(|_| "`max_attempts` must be 0–255"))
            .transpose()?;
        let options = RequestOptions {
            max_attempts,
            deadline_ms: opt_u64(b, "deadline_ms")?,
            max_wait_ms: opt_u64(b, "max_wait_ms")?,
            stream: b.get("stream").and_then(Json::as_bool).unwrap_or(false),
            key,
        };
        let req = Request::new(r, &options, at);
        let out = json!({"deadline_ms": req.deadline_ms()});
        self.by_name.insert(name.to_string(), req);
        Ok(out)
    }
}
