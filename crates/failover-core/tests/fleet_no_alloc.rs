//! Fleet mode never allocates either: four routers, each with its fleet side, run an outage and
//! a recovery of their primary while they export, merge through a fixed-size store model, adopt
//! opens, hold probes for the lease holder and follow the shared ramp; a counting global
//! allocator (test-only, std) asserts that not one allocation happened on the thread meanwhile.
//!
//! A file of its own (one test) so nothing else runs beside it.

use failover_core::fleet::{
    BucketCounts, Export, Fleet, FleetConfig, ProviderSnapshot, Register, SYNC_BUCKETS, Snapshot,
};
use failover_core::{EventKind, Outcome, Policy, Router, Trigger};
use failover_testkit::Rng;
use failover_testkit::alloc::{Counting, arm, assert_counting};

#[global_allocator]
static GLOBAL: Counting = Counting;

const N: usize = 4;
const P: usize = 8;
const SLOTS: usize = 64;

/// The store, in fixed arrays (what `failover_testkit::fleet::MemStore` does, without a heap).
struct Store {
    sums: [[BucketCounts; SLOTS]; P],
    used: [[bool; SLOTS]; P],
    registers: [Register; P],
    votes: [[(u64, u64); N]; P],
    heartbeats: [u64; N],
    leases: [(u32, u64); P],
}

impl Store {
    fn round(&mut self, e: &Export<P>, lease_ms: u64, out: &mut Snapshot<P>) {
        let me = e.instance as usize;
        let now = e.at_ms;
        self.heartbeats[me] = now;
        for (i, pe) in e.providers[..e.len].iter().enumerate() {
            for d in pe.deltas() {
                let k = (d.stamp % SLOTS as u64) as usize;
                if !self.used[i][k] || self.sums[i][k].stamp != d.stamp {
                    self.sums[i][k] = BucketCounts {
                        stamp: d.stamp,
                        ..BucketCounts::ZERO
                    };
                    self.used[i][k] = true;
                }
                self.sums[i][k].add(d);
            }
            if let Some(r) = pe.register {
                self.registers[i] = self.registers[i].join(r);
            }
            if let Some(epoch) = pe.vote {
                self.votes[i][me] = (epoch, now);
            }
            let (holder, until) = self.leases[i];
            if pe.want_lease && (until <= now || holder == e.instance) {
                self.leases[i] = (e.instance, now + lease_ms);
            }
        }
        out.live_instances = self
            .heartbeats
            .iter()
            .filter(|&&t| t >= e.live_since_ms)
            .count() as u32;
        out.len = e.len;
        for i in 0..e.len {
            let mut ps = ProviderSnapshot::EMPTY;
            for stamp in e.read_from..=e.read_to {
                let k = (stamp % SLOTS as u64) as usize;
                if self.used[i][k] && self.sums[i][k].stamp == stamp {
                    ps.push_sum(self.sums[i][k]);
                }
            }
            ps.register = self.registers[i];
            ps.voters = self.votes[i]
                .iter()
                .filter(|&&(ep, t)| ep == ps.register.epoch && t >= e.live_since_ms)
                .count() as u32;
            let (holder, until) = self.leases[i];
            ps.lease_holder = (until > now).then_some(holder);
            out.providers[i] = ps;
        }
    }
}

#[test]
fn export_and_merge_allocate_nothing() {
    let names = ["p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7"];
    let policy = Policy {
        open_jitter: 0.0,
        probe_successes: 2,
        ..Policy::default()
    };
    let mut routers: Vec<Box<Router<P, 60, 64>>> = (0..N)
        .map(|_| Box::new(Router::new(&policy, &names).unwrap()))
        .collect();
    let config = FleetConfig::default();
    let mut fleets: Vec<Box<Fleet<P, 60>>> = (0..N)
        .map(|i| Box::new(Fleet::new(config, i as u32, &routers[i]).unwrap()))
        .collect();
    let mut store = Box::new(Store {
        sums: [[BucketCounts::ZERO; SLOTS]; P],
        used: [[false; SLOTS]; P],
        registers: [Register::default(); P],
        votes: [[(0, 0); N]; P],
        heartbeats: [0; N],
        leases: [(0, 0); P],
    });
    let mut export: Box<Export<P>> = Box::default();
    let mut snap: Box<Snapshot<P>> = Box::default();
    let mut rng = Rng(0x5EED);
    let (mut fleet_opens, mut ramps, mut rounds, mut failed) = (0u64, 0u64, 0u64, 0u64);
    let _ = SYNC_BUCKETS;

    assert_counting();
    let armed = arm();
    let t0 = 1_764_000_000_000u64;
    // 20 minutes in 50 ms steps; p0 fails for instances 0..3 between minutes 2 and 6.
    for step in 0..24_000u64 {
        let now = t0 + step * 50;
        let minute = step * 50 / 60_000;
        for k in 0..N {
            let r = &mut routers[k];
            if let Ok(t) = r.pick(now) {
                let bad = t.provider.index() == 0 && (2..6).contains(&minute) && k < 3;
                let o = if bad || rng.below(50) == 0 {
                    Outcome::server_error(30)
                } else {
                    Outcome::success(200 + rng.below(400) as u32)
                };
                r.record(&t, o, now + 1);
            }
            let f = &mut fleets[k];
            if f.watch(r).is_some_and(|d| d <= now)
                && let Some(round) = f.poll_transmit(r, now, &mut export)
            {
                rounds += 1;
                // Instance 3's store link drops for a while: it goes degraded and comes back.
                if k == 3 && (8..9).contains(&minute) {
                    f.handle_failure(r, round, now);
                    failed += 1;
                } else {
                    store.round(&export, config.lease_ms, &mut snap);
                    f.handle_snapshot(r, round, &snap, now);
                }
            }
            while let Some(e) = r.poll_event() {
                match e.kind {
                    EventKind::Opened { reason, .. } if reason.trigger == Trigger::FleetOpen => {
                        fleet_opens += 1
                    }
                    EventKind::RampStage { .. } => ramps += 1,
                    _ => {}
                }
            }
            while f.poll_event().is_some() {}
        }
    }
    let allocations = armed.finish();
    println!("rounds {rounds} (failed {failed}), fleet opens {fleet_opens}, ramp stages {ramps}");
    assert_eq!(allocations, 0, "fleet mode allocated {allocations} times");
    assert!(rounds > 4_000 && failed > 0);
    assert!(fleet_opens > 0, "the workload adopted no open");
    assert!(ramps > 0, "the workload ramped nothing");
}
