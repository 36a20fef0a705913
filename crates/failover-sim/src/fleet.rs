//! `--instances N`: the same traffic and faults spread round-robin over N instances of the
//! service, each with its own engine, once with each instance alone and once sharing what they
//! learn through fleet mode (`failover_core::fleet`, rounds every second through a model of the
//! store, `failover_testkit::fleet::MemStore`). Health checks are not simulated in this mode.

use failover_core::fleet::{Export, Fleet, FleetConfig, Snapshot};
use failover_core::{DefaultRouter, Outcome, Policy};
use failover_testkit::fleet::MemStore;

use crate::app::{Settings, bucket_for, load_policy};
use crate::faults::FaultModel;
use crate::input::{InputError, read_text};
use crate::progress::Progress;
use crate::report::thousands;
use crate::run::{Call, Options, PolicyStrategy, RunStats, Strategy, run};
use crate::world::World;

/// N engines; request `r` goes to instance `r mod N`.
pub struct FleetStrategy {
    insts: Vec<PolicyStrategy>,
    fleets: Vec<Box<Fleet<16, 120>>>,
    store: MemStore,
    export: Box<Export<16>>,
    snap: Box<Snapshot<16>>,
    lease_ms: u64,
    scratch: Vec<Call>,
    /// Rounds run.
    pub rounds: u64,
}

impl FleetStrategy {
    /// `n` instances over `names`; with `share`, each also runs fleet mode.
    pub fn new(policy: &Policy, names: &[&str], n: usize, share: bool) -> Result<Self, String> {
        let mut insts = Vec::new();
        let mut fleets = Vec::new();
        let config = FleetConfig {
            seed: 7,
            ..FleetConfig::default()
        };
        for i in 0..n {
            let r = Box::new(DefaultRouter::new(policy, names).map_err(|e| e.to_string())?);
            if share {
                fleets.push(Box::new(
                    Fleet::new(config, i as u32, &r).map_err(|e| e.to_string())?,
                ));
            }
            insts.push(PolicyStrategy::new(r));
        }
        Ok(FleetStrategy {
            insts,
            fleets,
            store: MemStore::new(),
            export: Box::default(),
            snap: Box::default(),
            lease_ms: config.lease_ms,
            scratch: Vec::new(),
            rounds: 0,
        })
    }

    /// After a call recorded on instance `k`: its fleet side looks at the router (a local open
    /// or a failure run brings its next round forward), as the bindings' drivers do.
    fn watch(&mut self, k: usize) {
        if let Some(f) = self.fleets.get_mut(k) {
            f.watch(&self.insts[k].router);
        }
    }

    /// Circuit opens over all instances (each instance's own and adopted ones).
    pub fn opens(&self) -> usize {
        self.insts
            .iter()
            .map(|s| {
                s.events
                    .iter()
                    .filter(|e| matches!(e.kind, failover_core::EventKind::Opened { .. }))
                    .count()
            })
            .sum()
    }
}

impl Strategy for FleetStrategy {
    fn pick(&mut self, now: u64, tried: u64) -> Option<Call> {
        self.insts[0].pick(now, tried)
    }

    fn record(&mut self, call: &Call, outcome: &Outcome, now: u64) {
        self.insts[0].record(call, outcome, now);
        self.watch(0);
    }

    fn pick_for(&mut self, req: u32, now: u64, tried: u64) -> Option<Call> {
        let n = self.insts.len();
        self.insts[req as usize % n].pick(now, tried)
    }

    fn record_for(&mut self, req: Option<u32>, call: &Call, outcome: &Outcome, now: u64) {
        if let Some(r) = req {
            let n = self.insts.len();
            self.insts[r as usize % n].record(call, outcome, now);
            self.watch(r as usize % n);
        }
    }

    fn next_timer(&self) -> Option<u64> {
        let a = self.insts.iter().filter_map(Strategy::next_timer).min();
        let b = self.fleets.iter().filter_map(|f| f.poll_timeout()).min();
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn on_timer(&mut self, now: u64, _checks: &mut Vec<Call>) {
        for s in &mut self.insts {
            if s.next_timer().is_some_and(|t| t <= now) {
                s.on_timer(now, &mut self.scratch);
                self.scratch.clear();
            }
        }
        for (k, f) in self.fleets.iter_mut().enumerate() {
            if f.poll_timeout().is_some_and(|t| t <= now) {
                let r = &mut self.insts[k].router;
                if let Some(round) = f.poll_transmit(r, now, &mut self.export) {
                    self.store
                        .round(&self.export, self.lease_ms, &mut self.snap);
                    f.handle_snapshot(r, round, &self.snap, now);
                    self.rounds += 1;
                }
                while f.poll_event().is_some() {}
            }
        }
    }
}

/// Runs the fault model (built-in or `--faults`) with `n` instances, alone and sharing, and
/// renders the comparison.
pub fn compare(settings: &Settings, n: usize) -> Result<String, InputError> {
    if settings.trace.is_some() {
        return Err(InputError::file(
            "--instances",
            "a trace replays one service's log: use a fault model (built-in or --faults)",
        ));
    }
    let (policy, label, _) = load_policy(settings)?;
    let mut model = match &settings.faults {
        Some(f) => FaultModel::parse(&f.display().to_string(), &read_text(f)?)?,
        None => FaultModel::builtin(),
    };
    if let Some(s) = settings.seed {
        model.seed = s;
    }
    let names: Vec<String> = model.providers().to_vec();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let arrivals = model.arrivals();
    let opt = Options {
        attempts: settings.attempts,
        bucket_ms: bucket_for(model.duration_ms),
        start_ms: 0,
        end_ms: model.duration_ms,
    };
    let mut progress = Progress::new(settings.quiet);
    let mut results: Vec<(RunStats, usize, u64)> = Vec::new();
    for share in [false, true] {
        progress.phase(if share {
            "simulating: instances sharing"
        } else {
            "simulating: instances alone"
        });
        let mut fs = FleetStrategy::new(&policy, &refs, n, share)
            .map_err(|e| InputError::file("policy", e))?;
        let st = run(&model, &arrivals, &mut fs, opt, &mut progress);
        results.push((st, fs.opens(), fs.rounds));
    }
    progress.finish();
    let mut out = format!(
        "{n} instances of one service, requests spread round-robin (policy: {label})\n\
         {:<34}{:>16}{:>16}\n",
        "", "each alone", "sharing"
    );
    let row = |out: &mut String, name: &str, f: &dyn Fn(&(RunStats, usize, u64)) -> String| {
        out.push_str(&format!(
            "  {name:<32}{:>16}{:>16}\n",
            f(&results[0]),
            f(&results[1])
        ));
    };
    row(&mut out, "availability", &|r| {
        format!("{:.3} %", r.0.availability() * 100.0)
    });
    row(&mut out, "requests failed", &|r| thousands(r.0.failed));
    row(&mut out, "calls that failed (wasted)", &|r| {
        thousands(r.0.failed_attempts)
    });
    row(&mut out, "requests retried", &|r| thousands(r.0.retried));
    row(&mut out, "circuit opens (all instances)", &|r| {
        thousands(r.1 as u64)
    });
    row(&mut out, "sync rounds", &|r| thousands(r.2));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Progress;

    fn stats(n: usize, share: bool) -> RunStats {
        let model = FaultModel::builtin();
        let names: Vec<String> = model.providers().to_vec();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let opt = Options {
            attempts: 3,
            bucket_ms: bucket_for(model.duration_ms),
            start_ms: 0,
            end_ms: model.duration_ms,
        };
        let mut fs = FleetStrategy::new(&Policy::default(), &refs, n, share).unwrap();
        run(
            &model,
            &model.arrivals(),
            &mut fs,
            opt,
            &mut Progress::new(true),
        )
    }

    #[test]
    fn one_instance_is_the_plain_policy_and_sharing_wastes_fewer_calls() {
        // A fleet side is a few hundred KB, built on the stack before it is boxed (more than
        // once in a debug build): a roomy stack.
        std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn(check)
            .unwrap()
            .join()
            .unwrap();
    }

    fn check() {
        let model = FaultModel::builtin();
        let names: Vec<String> = model.providers().to_vec();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut plain = PolicyStrategy::new(Box::new(
            DefaultRouter::new(&Policy::default(), &refs).unwrap(),
        ));
        let opt = Options {
            attempts: 3,
            bucket_ms: bucket_for(model.duration_ms),
            start_ms: 0,
            end_ms: model.duration_ms,
        };
        let p = run(
            &model,
            &model.arrivals(),
            &mut plain,
            opt,
            &mut Progress::new(true),
        );
        let one = stats(1, false);
        assert_eq!(
            (one.failed, one.failed_attempts),
            (p.failed, p.failed_attempts)
        );
        let alone = stats(4, false);
        let shared = stats(4, true);
        assert!(
            shared.failed_attempts < alone.failed_attempts,
            "sharing {} vs alone {}",
            shared.failed_attempts,
            alone.failed_attempts
        );
        assert!(shared.failed <= alone.failed);
    }
}
