//! Fleet scenario files (`fixtures/fleet/*.json`): two or more routers, each with its own
//! [`Fleet`] side, sharing one model of the store ([`MemStore`]). Pins the merge rules. The
//! format is documented in `fixtures/README.md` ("Fleet scenarios").

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use failover_core::fleet::{
    BucketCounts, Export, Fleet, FleetConfig, FleetEvent, Register, Snapshot,
};
use failover_core::{DefaultRouter, Ticket};
use failover_testkit::fleet::MemStore;
use serde_json::{Value as Json, json};

use crate::{Failure, Scenario, event_to_json, matches, requests};

/// Where the fleet scenario files live, from the workspace root.
pub const FLEET_DIR: &str = "fixtures/fleet";

/// The workspace's `fixtures/fleet` directory.
#[must_use]
pub fn fleet_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(FLEET_DIR)
}

/// The fleet side the runner gives each instance: as many providers and buckets as
/// [`DefaultRouter`].
pub type DefaultFleet = Fleet<16, 120>;

struct Instance {
    name: String,
    router: Box<DefaultRouter>,
    fleet: Box<DefaultFleet>,
    tickets: HashMap<String, Ticket>,
    requests: requests::Requests,
}

/// The fleet configuration of a file's `fleet` object: `period_ms`, `jitter` (a fraction),
/// `seed`, `live_periods`, `degraded_after`, `quorum` (a fraction), `quorum_min`, `lease_ms`;
/// omitted fields keep their defaults, except `jitter`, 0 unless given (scenarios pin times).
pub fn fleet_config(obj: Option<&Json>) -> Result<FleetConfig, String> {
    let mut c = FleetConfig {
        jitter_ppm: 0,
        ..FleetConfig::default()
    };
    let Some(obj) = obj else { return Ok(c) };
    let map = obj.as_object().ok_or("`fleet` must be an object")?;
    for (k, v) in map {
        let u = || {
            v.as_u64()
                .ok_or(format!("`fleet.{k}` must be an integer ≥ 0"))
        };
        let f = || v.as_f64().ok_or(format!("`fleet.{k}` must be a number"));
        match k.as_str() {
            "period_ms" => c.period_ms = u()?,
            "jitter" => c.jitter_ppm = (f()? * 1e6).round() as u32,
            "seed" => c.seed = u()?,
            "live_periods" => c.live_periods = u()? as u32,
            "degraded_after" => c.degraded_after = u()? as u32,
            "quorum" => c.quorum_ppm = (f()? * 1e6).round() as u32,
            "quorum_min" => c.quorum_min = u()? as u32,
            "lease_ms" => c.lease_ms = u()?,
            _ => return Err(format!("unknown `fleet` field `{k}`")),
        }
    }
    Ok(c)
}

/// A loaded fleet scenario.
#[derive(Debug, Clone)]
pub struct FleetScenario {
    inner: Scenario,
}

impl FleetScenario {
    /// Reads and parses a fleet scenario file.
    pub fn load(path: &Path) -> Result<FleetScenario, Failure> {
        Scenario::load(path).map(|inner| FleetScenario { inner })
    }

    /// Every fleet scenario in `dir`, sorted by file name.
    pub fn load_dir(dir: &Path) -> Result<Vec<FleetScenario>, Failure> {
        Ok(Scenario::load_dir(dir)?
            .into_iter()
            .map(|inner| FleetScenario { inner })
            .collect())
    }

    /// The parsed file.
    #[must_use]
    pub fn doc(&self) -> &Json {
        &self.inner.doc
    }

    /// The file it came from.
    #[must_use]
    pub fn file(&self) -> &str {
        &self.inner.file
    }

    /// Replays the steps and checks every expectation; the first difference fails, naming the
    /// file and step.
    pub fn check(&self) -> Result<(), Failure> {
        let s = &self.inner;
        let config = fleet_config(s.doc.get("fleet")).map_err(|m| s.fail(None, m))?;
        let names: Vec<String> = s
            .doc
            .get("instances")
            .and_then(Json::as_array)
            .ok_or_else(|| s.fail(None, "`instances` must be a list of names"))?
            .iter()
            .map(|n| n.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(|| s.fail(None, "instance names must be strings"))?;
        if names.len() < 2 {
            return Err(s.fail(None, "a fleet scenario needs at least two instances"));
        }
        let mut fleet: Vec<Instance> = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let router = s
                .build()?
                .map_err(|e| s.fail(None, format!("configuration error: {e}")))?;
            let f = DefaultFleet::new(config, i as u32, &router)
                .map_err(|e| s.fail(None, format!("fleet configuration error: {e}")))?;
            fleet.push(Instance {
                name: name.clone(),
                router,
                fleet: Box::new(f),
                tickets: HashMap::new(),
                requests: requests::Requests::default(),
            });
        }
        let mut store = MemStore::new();
        let steps = s
            .doc
            .get("steps")
            .and_then(Json::as_array)
            .ok_or_else(|| s.fail(None, "`steps` must be a list"))?;
        let mut export: Box<Export<16>> = Box::default();
        let mut snap: Box<Snapshot<16>> = Box::default();
        for (i, step) in steps.iter().enumerate() {
            let fail = |m: String| s.fail(Some(i), m);
            let at = step
                .get("at")
                .and_then(Json::as_u64)
                .ok_or_else(|| fail("`at` must be a non-negative integer".into()))?;
            let find = |fleet: &[Instance], n: &Json| -> Result<usize, String> {
                let n = n.as_str().ok_or("an instance must be a name")?;
                fleet
                    .iter()
                    .position(|x| x.name == n)
                    .ok_or_else(|| format!("unknown instance `{n}`"))
            };
            let result: Json = if let Some(on) = step.get("on") {
                let k = find(&fleet, on).map_err(fail)?;
                let x = &mut fleet[k];
                s.apply(&mut x.router, &mut x.tickets, &mut x.requests, step, at)
                    .map_err(fail)?
            } else if let Some(list) = step.get("sync").or_else(|| step.get("sync_fail")) {
                let ok = step.get("sync").is_some();
                for n in list
                    .as_array()
                    .ok_or_else(|| fail("`sync` takes a list".into()))?
                {
                    let k = find(&fleet, n).map_err(fail)?;
                    let x = &mut fleet[k];
                    x.fleet.sync_now(at);
                    let round = x
                        .fleet
                        .poll_transmit(&mut x.router, at, &mut export)
                        .ok_or_else(|| fail("no round could start (one in flight?)".into()))?;
                    if ok {
                        store.round(&export, config.lease_ms, &mut snap);
                        x.fleet.handle_snapshot(&mut x.router, round, &snap, at);
                    } else {
                        x.fleet.handle_failure(&mut x.router, round, at);
                    }
                }
                Json::Null
            } else if let Some(n) = step.get("fleet") {
                let k = find(&fleet, n).map_err(fail)?;
                fleet_view(&fleet[k], &names)
            } else if let Some(n) = step.get("watch") {
                let k = find(&fleet, n).map_err(fail)?;
                let x = &mut fleet[k];
                x.fleet.watch(&x.router);
                fleet_view(x, &names)
            } else if let Some(st) = step.get("store") {
                store_step(&fleet[0].router, &mut store, st).map_err(fail)?;
                Json::Null
            } else {
                return Err(fail(
                    "the step has no action (on, sync, sync_fail, fleet, watch, store)".into(),
                ));
            };
            if let Some(want) = step.get("expect")
                && !matches(want, &result)
            {
                return Err(fail(format!("expected {want}\n   observed {result}")));
            }
            // Events of every instance, keyed by name; an `on` step's expectations may list
            // them bare (that instance's).
            let mut events = serde_json::Map::new();
            let mut fleet_events = serde_json::Map::new();
            for x in &mut fleet {
                let drained: Vec<_> = std::iter::from_fn(|| x.router.poll_event()).collect();
                let evs: Vec<Json> = drained
                    .iter()
                    .map(|e| event_to_json(e, x.router.name(e.provider)))
                    .collect();
                events.insert(x.name.clone(), Json::Array(evs));
                let fevs: Vec<Json> = std::iter::from_fn(|| x.fleet.poll_event())
                    .map(|e| fleet_event_json(&e))
                    .collect();
                fleet_events.insert(x.name.clone(), Json::Array(fevs));
            }
            for (key, got) in [("events", &events), ("fleet_events", &fleet_events)] {
                let Some(want) = step.get(key) else { continue };
                let want = match (want, step.get("on").and_then(Json::as_str)) {
                    (Json::Array(_), Some(on)) => json!({ on: want }),
                    _ => want.clone(),
                };
                let got = Json::Object(got.clone());
                if !matches(&want, &got) {
                    return Err(fail(format!("expected {key} {want}\n   observed {got}")));
                }
            }
        }
        Ok(())
    }
}

fn fleet_view(x: &Instance, names: &[String]) -> Json {
    let r = &x.router;
    let mut registers = serde_json::Map::new();
    let mut leases = serde_json::Map::new();
    for v in r.views() {
        let reg = x.fleet.register(v.id).unwrap_or_default();
        registers.insert(v.name.to_string(), register_json(&reg));
        leases.insert(
            v.name.to_string(),
            json!(
                x.fleet
                    .lease_holder(v.id)
                    .and_then(|h| names.get(h as usize))
            ),
        );
    }
    json!({
        "degraded": x.fleet.degraded(),
        "failures": x.fleet.failures(),
        "live_instances": x.fleet.live_instances(),
        "quorum": x.fleet.quorum(),
        "next_sync_ms": x.fleet.poll_timeout(),
        "register": registers,
        "lease_holder": leases,
    })
}

fn register_json(r: &Register) -> Json {
    json!({"epoch": r.epoch, "open_until_ms": r.open_until_ms, "ramp_start_ms": r.ramp_start_ms})
}

fn fleet_event_json(e: &FleetEvent) -> Json {
    match *e {
        FleetEvent::Degraded { at_ms, failures } => {
            json!({"kind": "degraded", "at_ms": at_ms, "failures": failures})
        }
        FleetEvent::Resumed { at_ms } => json!({"kind": "resumed", "at_ms": at_ms}),
    }
}

/// `{"flush": true}` empties the store (a restarted Redis); `{"add": {"provider": name,
/// "stamp": n, <count field>: n, …}}` adds a delta directly (a late write of an instance outside
/// the scenario); `{"register": {"provider": name, "epoch", "open_until_ms", "ramp_start_ms"}}`
/// joins a register.
fn store_step(r: &DefaultRouter, store: &mut MemStore, st: &Json) -> Result<(), String> {
    if st.get("flush").is_some() {
        store.flush();
        return Ok(());
    }
    let provider = |o: &Json| -> Result<usize, String> {
        let n = o
            .get("provider")
            .and_then(Json::as_str)
            .ok_or("needs `provider`")?;
        r.provider(n)
            .map(|id| id.index())
            .ok_or_else(|| format!("unknown provider `{n}`"))
    };
    if let Some(a) = st.get("add") {
        let mut d = BucketCounts {
            stamp: a
                .get("stamp")
                .and_then(Json::as_u64)
                .ok_or("`add` needs `stamp`")?,
            ..BucketCounts::ZERO
        };
        let n = |k: &str| a.get(k).and_then(Json::as_u64).unwrap_or(0) as u32;
        d.counts.success = n("success");
        d.counts.server_error = n("server_error");
        d.counts.timeout = n("timeout");
        d.counts.connection_error = n("connection_error");
        store.add(provider(a)?, &d);
        return Ok(());
    }
    Err("unknown `store` action (flush, add)".into())
}
