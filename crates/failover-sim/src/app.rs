//! Loads the inputs, runs the strategies and gathers everything the outputs show.

use std::path::PathBuf;
use std::time::Instant;

use failover_core::{DefaultRouter, Event, Policy};
use failover_scenario::{policy_from_json_at, view_to_json};
use serde_json::Value as Json;

use crate::faults::FaultModel;
use crate::input::{Doc, InputError, Seg, dur, read_text};
use crate::progress::Progress;
use crate::run::{Naive, NoFailover, Options, PolicyStrategy, RunStats, run};
use crate::trace::Trace;
use crate::world::World;

/// What the user asked for (besides the output format).
#[derive(Clone, Debug)]
pub struct Settings {
    /// Policy file (JSON); the core's defaults without one.
    pub policy: Option<PathBuf>,
    /// Fault model file; the built-in model without one (and without a trace).
    pub faults: Option<PathBuf>,
    /// Trace file (CSV or JSONL).
    pub trace: Option<PathBuf>,
    /// Priority order of a trace's providers.
    pub providers: Option<Vec<String>>,
    /// Overrides the fault model's seed.
    pub seed: Option<u64>,
    /// Attempts per request.
    pub attempts: u32,
    /// Naive baseline: failures in a row that start a cooldown.
    pub naive_fails: u32,
    /// Naive baseline: cooldown, ms.
    pub naive_cooldown_ms: u64,
    /// Trace replay: the time bucket answers are drawn from, ms.
    pub trace_bucket_ms: u64,
    /// No progress on stderr.
    pub quiet: bool,
}

/// One strategy's results.
pub struct Strat {
    /// Stable key (`as_logged`, `no_failover`, `naive`, `policy`).
    pub key: &'static str,
    /// Column title.
    pub label: &'static str,
    /// What it achieved.
    pub stats: RunStats,
}

/// A fault interval, for the report header.
pub struct FaultLine {
    /// Provider index.
    pub provider: usize,
    /// Start, ms.
    pub from: u64,
    /// End, ms.
    pub to: u64,
    /// What happens (`server_error 97 %`, `latency 4 s median`).
    pub what: String,
    /// The model's note.
    pub note: Option<String>,
}

/// Everything the outputs show.
pub struct Report {
    /// Title of the input (the fault model's name or the trace's file).
    pub title: String,
    /// The fault model's description.
    pub description: String,
    /// `faults` or `trace`.
    pub source_kind: &'static str,
    /// The input file, if not built in.
    pub source_file: Option<String>,
    /// `default` or the policy file.
    pub policy_label: String,
    /// The policy run.
    pub policy: Policy,
    /// Provider names, priority order.
    pub names: Vec<String>,
    /// Seed of the run.
    pub seed: u64,
    /// Simulated time, ms.
    pub duration_ms: u64,
    /// Attempts per request.
    pub attempts: u32,
    /// Naive baseline settings.
    pub naive_fails: u32,
    /// Naive baseline cooldown, ms.
    pub naive_cooldown_ms: u64,
    /// How the traffic was made.
    pub traffic_note: String,
    /// The fault model's intervals.
    pub faults: Vec<FaultLine>,
    /// A trace's Unix start time.
    pub start_unix_ms: Option<u64>,
    /// A trace's lines.
    pub trace_lines: Option<usize>,
    /// A trace replay: answers drawn from another time bucket than the call's, of all drawn
    /// (policy run).
    pub borrowed: Option<(u64, u64)>,
    /// A trace replay: the time bucket answers are drawn from, ms.
    pub trace_bucket_ms: u64,
    /// The strategies, in column order.
    pub strategies: Vec<Strat>,
    /// The engine's events, in order.
    pub events: Vec<Event>,
    /// Events the engine's queue dropped (should be 0).
    pub dropped_events: u64,
    /// Provider views at the end, as JSON.
    pub final_views: Vec<Json>,
    /// Error rate of each provider's answers per bucket (from the fault model or the trace).
    pub error_rates: Vec<Vec<Option<f64>>>,
    /// Series bucket width, ms.
    pub bucket_ms: u64,
    /// Real time the simulation took, s.
    pub elapsed_s: f64,
}

impl Report {
    /// The strategy with `key`.
    #[must_use]
    pub fn strat(&self, key: &str) -> Option<&Strat> {
        self.strategies.iter().find(|s| s.key == key)
    }
}

/// A bucket width giving about 480 points over the run, rounded to a readable step.
#[must_use]
pub fn bucket_for(duration_ms: u64) -> u64 {
    const STEPS: [u64; 16] = [
        1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000,
        1_800_000, 3_600_000, 7_200_000, 21_600_000, 86_400_000,
    ];
    let want = duration_ms / 480;
    STEPS
        .iter()
        .copied()
        .find(|&s| s >= want)
        .unwrap_or(86_400_000)
}

pub(crate) struct PolicyFile {
    doc: Doc,
}

impl PolicyFile {
    fn error_at(&self, key: Option<&str>, stage: Option<usize>, message: String) -> InputError {
        let mut path = Vec::new();
        let mut field = None;
        if let Some(k) = key
            && self.doc.root().value.get(k).is_some()
        {
            path.push(Seg::Key(k.to_string()));
            field = Some(k.to_string());
            if let Some(i) = stage {
                path.push(Seg::Index(i));
                field = Some(format!("{k}[{i}]"));
            }
        }
        InputError {
            file: self.doc.file.clone(),
            line: Some(self.doc.line_of(&path)),
            field,
            message,
        }
    }
}

pub(crate) fn load_policy(
    settings: &Settings,
) -> Result<(Policy, String, Option<PolicyFile>), InputError> {
    let Some(path) = &settings.policy else {
        return Ok((Policy::default(), "default".to_string(), None));
    };
    let file = path.display().to_string();
    let doc = Doc::parse(&file, read_text(path)?)?;
    let pf = PolicyFile { doc };
    match policy_from_json_at(pf.doc.root().value) {
        Ok(p) => Ok((p, file, Some(pf))),
        Err(e) => Err(pf.error_at(e.key.as_deref(), e.stage, e.error.to_string())),
    }
}

/// Loads everything and runs the strategies.
pub fn simulate(settings: &Settings) -> Result<Report, InputError> {
    let mut progress = Progress::new(settings.quiet);
    let (policy, policy_label, policy_file) = load_policy(settings)?;

    enum Source {
        Faults(FaultModel, Option<String>),
        Trace(Trace),
    }
    let source = match (&settings.faults, &settings.trace) {
        (Some(_), Some(_)) => {
            return Err(InputError::file(
                "--trace",
                "give either --faults or --trace, not both",
            ));
        }
        (Some(f), None) => {
            let file = f.display().to_string();
            let mut m = FaultModel::parse(&file, &read_text(f)?)?;
            if let Some(s) = settings.seed {
                m.seed = s;
            }
            Source::Faults(m, Some(file))
        }
        (None, Some(t)) => {
            let file = t.display().to_string();
            let text = read_text(t)?;
            Source::Trace(Trace::load(
                &file,
                &text,
                settings.providers.as_deref(),
                settings.trace_bucket_ms,
                settings.seed.unwrap_or(0),
                &mut progress,
            )?)
        }
        (None, None) => {
            let mut m = FaultModel::builtin();
            if let Some(s) = settings.seed {
                m.seed = s;
            }
            Source::Faults(m, None)
        }
    };
    let world: &dyn World = match &source {
        Source::Faults(m, _) => m,
        Source::Trace(t) => t,
    };
    let names: Vec<String> = world.providers().to_vec();
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let router = match DefaultRouter::new(&policy, &name_refs) {
        Ok(r) => Box::new(r),
        Err(e) => {
            let msg = e.to_string();
            return Err(match (e.field(), &policy_file) {
                (Some(field), Some(pf)) => pf.error_at(Some(field), None, msg),
                (Some(_), None) => InputError::file("default policy", msg),
                (None, _) => match &source {
                    Source::Faults(m, f) => InputError::at(
                        f.as_deref().unwrap_or("built-in fault model"),
                        m.providers_line,
                        Some("providers"),
                        msg,
                    ),
                    Source::Trace(t) => InputError::file(&t.file, format!("providers: {msg}")),
                },
            });
        }
    };

    let (arrivals, duration_ms, seed) = match &source {
        Source::Faults(m, _) => {
            progress.phase("generating traffic");
            (m.arrivals(), m.duration_ms, m.seed)
        }
        Source::Trace(t) => (
            t.arrivals.clone(),
            t.duration_ms,
            settings.seed.unwrap_or(0),
        ),
    };
    let bucket_ms = bucket_for(duration_ms);
    let opt = Options {
        attempts: settings.attempts,
        bucket_ms,
        start_ms: 0,
        end_ms: duration_ms,
    };
    let started = Instant::now();
    let mut strategies = Vec::new();
    if let Source::Trace(t) = &source {
        strategies.push(Strat {
            key: "as_logged",
            label: "as logged",
            stats: t.as_logged(bucket_ms, duration_ms),
        });
    }
    progress.phase("simulating: no failover");
    let nf = run(world, &arrivals, &mut NoFailover, opt, &mut progress);
    strategies.push(Strat {
        key: "no_failover",
        label: "no failover",
        stats: nf,
    });
    progress.phase("simulating: naive failover");
    let mut naive = Naive::new(
        names.len(),
        settings.naive_fails,
        settings.naive_cooldown_ms,
    );
    let nv = run(world, &arrivals, &mut naive, opt, &mut progress);
    strategies.push(Strat {
        key: "naive",
        label: "naive failover",
        stats: nv,
    });
    if let Source::Trace(t) = &source {
        t.reset_counters();
    }
    progress.phase("simulating: policy");
    let mut ps = PolicyStrategy::new(router);
    let pol = run(world, &arrivals, &mut ps, opt, &mut progress);
    progress.finish();
    strategies.push(Strat {
        key: "policy",
        label: "policy",
        stats: pol,
    });
    let elapsed_s = started.elapsed().as_secs_f64();

    let buckets = strategies[0].stats.series.buckets;
    let error_rates = (0..names.len())
        .map(|p| {
            (0..buckets)
                .map(|b| {
                    let from = b as u64 * bucket_ms;
                    world.error_rate(p, from, (from + bucket_ms).min(duration_ms.max(from + 1)))
                })
                .collect()
        })
        .collect();
    let final_views = ps.router.views().map(|v| view_to_json(&v)).collect();

    let (
        title,
        description,
        source_kind,
        source_file,
        traffic_note,
        faults,
        start_unix_ms,
        trace_lines,
        borrowed,
    ) = match &source {
        Source::Faults(m, file) => (
            m.name.clone(),
            m.description.clone(),
            "faults",
            file.clone(),
            traffic_note(m),
            m.providers
                .iter()
                .enumerate()
                .flat_map(|(i, p)| {
                    p.faults.iter().map(move |f| FaultLine {
                        provider: i,
                        from: f.from,
                        to: f.to,
                        what: fault_what(f),
                        note: f.note.clone(),
                    })
                })
                .collect(),
            None,
            None,
            None,
        ),
        Source::Trace(t) => (
            format!("trace {}", t.file),
            String::new(),
            "trace",
            Some(t.file.clone()),
            format!(
                "{} logged calls; requests replayed at their logged times",
                crate::report::thousands(t.lines as u64)
            ),
            Vec::new(),
            t.start_unix_ms,
            Some(t.lines),
            Some(t.borrowed()),
        ),
    };
    Ok(Report {
        title,
        description,
        source_kind,
        source_file,
        policy_label,
        policy,
        names,
        seed,
        duration_ms,
        attempts: settings.attempts,
        naive_fails: settings.naive_fails,
        naive_cooldown_ms: settings.naive_cooldown_ms,
        traffic_note,
        faults,
        start_unix_ms,
        trace_lines,
        borrowed,
        trace_bucket_ms: settings.trace_bucket_ms,
        strategies,
        dropped_events: ps.router.dropped_events(),
        events: ps.events,
        final_views,
        error_rates,
        bucket_ms,
        elapsed_s,
    })
}

fn traffic_note(m: &FaultModel) -> String {
    let t = &m.traffic;
    let mut s = format!(
        "{} {}/s",
        if t.poisson {
            "Poisson arrivals at"
        } else {
            "one request every"
        },
        fmt_num(t.rate_per_s)
    );
    if !t.poisson {
        s = format!("uniform arrivals at {}/s", fmt_num(t.rate_per_s));
    }
    if let Some((every, length, factor)) = t.periodic {
        s.push_str(&format!(
            ", ×{} for {} every {}",
            fmt_num(factor),
            dur(length),
            dur(every)
        ));
    }
    for (from, to, factor) in &t.bursts {
        s.push_str(&format!(
            ", ×{} {}–{}",
            fmt_num(*factor),
            crate::input::clock(*from),
            crate::input::clock(*to)
        ));
    }
    s
}

fn fmt_num(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x}")
    }
}

fn fault_what(f: &crate::faults::Fault) -> String {
    let mut parts = Vec::new();
    if let Some(k) = f.kind {
        parts.push(format!("{} {}", k.name(), pct(f.rate)));
    }
    if let Some((lo, hi)) = f.retry_after {
        if lo == hi {
            parts.push(format!("Retry-After {}", dur(lo)));
        } else {
            parts.push(format!("Retry-After {}–{}", dur(lo), dur(hi)));
        }
    }
    if let Some(l) = f.latency {
        parts.push(format!("latency {} median", dur(l.median as u64)));
    }
    parts.join(", ")
}

/// A fraction as a percentage with sensible precision.
#[must_use]
pub fn pct(x: f64) -> String {
    let p = x * 100.0;
    if p.fract() == 0.0 {
        format!("{p:.0} %")
    } else if p >= 1.0 {
        format!("{p:.1} %")
    } else {
        format!("{p:.2} %")
    }
}
