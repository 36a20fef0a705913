//! Fleet mode's cost per round: one instance's export and merge for 8 providers, on a fake clock
//! (one round per simulated second; no clock is read while measuring).
//!
//! Each iteration moves the clock one second, records one outcome per provider (so every
//! provider has a fresh bucket delta to export), asks for the round, builds the snapshot a binding
//! would have read (the fleet's sums: this instance's delta plus as much again from the others,
//! the register, the voters, the lease) and merges it.
//!
//! - `fleet/records_only_8p`: the 8 records alone (to subtract);
//! - `fleet/export_merge_8p`: the same records plus `poll_transmit`, the snapshot and
//!   `handle_snapshot`.
//!
//! `cargo bench -p failover-core --bench fleet -- --warm-up-time 1 --measurement-time 2`.

use std::hint::black_box;

use criterion::Criterion;
use failover_core::fleet::{Export, Fleet, FleetConfig, ProviderSnapshot, Snapshot};
use failover_core::{Outcome, Policy, ProviderId, Router};
use failover_testkit::NAMES;

const P: usize = 8;
type R = Router<P, 120, 64>;

fn setup() -> (Box<R>, Box<Fleet<P, 120>>, Vec<ProviderId>) {
    let policy = Policy {
        window_ms: 120_000,
        ..Policy::default()
    };
    let r: Box<R> = Box::new(Router::new(&policy, &NAMES[..P]).unwrap());
    let f = Box::new(Fleet::new(FleetConfig::default(), 0, &r).unwrap());
    let ids = (0..P).map(|i| r.provider_at(i).unwrap()).collect();
    (r, f, ids)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("fleet");
    let t0 = 1_764_000_000_000u64;

    let (mut r, _, ids) = setup();
    let mut now = t0;
    g.bench_function("records_only_8p", |b| {
        b.iter(|| {
            now += 1_000;
            for &id in &ids {
                black_box(r.observe(id, Outcome::success(400), now));
            }
        });
    });

    let (mut r, mut f, ids) = setup();
    let mut export: Box<Export<P>> = Box::default();
    let mut snap: Box<Snapshot<P>> = Box::default();
    let mut now = t0;
    g.bench_function("export_merge_8p", |b| {
        b.iter(|| {
            now += 1_000;
            for &id in &ids {
                black_box(r.observe(id, Outcome::success(400), now));
            }
            f.sync_now(now);
            let round = f.poll_transmit(&mut r, now, &mut export).expect("due");
            snap.live_instances = 8;
            snap.len = export.len;
            for (ps, pe) in snap.providers.iter_mut().zip(export.providers.iter()) {
                *ps = ProviderSnapshot::EMPTY;
                for d in pe.deltas() {
                    let mut sum = *d;
                    sum.add(d);
                    ps.push_sum(sum);
                }
            }
            black_box(f.handle_snapshot(&mut r, round, &snap, now));
        });
    });
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
