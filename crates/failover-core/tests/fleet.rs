//! Fleet mode by counting: eight instances, one store model, an outage of the primary at a known
//! time. Counts the calls wasted fleet-wide on the dead primary before every instance has it
//! open, with and without sharing.
//!
//! Issue #14 states a bound for this: at most (quorum × the consecutive-failure limit) + (the
//! fleet's request rate to the provider × one period) with sharing, 3 × 3 + 9 = 18 here, against
//! 8 × 3 = 24 alone. With traffic spread evenly (each instance one request a second) the votes of
//! a quorum of local opens come too late for it (the others have failed twice each by then); what
//! meets it is the merged consecutive-failure run (each instance counts the others' hard failures
//! since its own run began, and opens at quorum × limit) with failure runs pushed at once
//! (`Fleet::watch`).

use failover_core::fleet::{BucketCounts, Counts, Export, Fleet, FleetConfig, Snapshot};
use failover_core::{CircuitState, EventKind, Outcome, Policy, Router, Trigger};
use failover_testkit::fleet::MemStore;

const N: usize = 8;
type R = Router<4, 60, 64>;

/// Calls that failed on the primary from the outage until every instance had it open, and when
/// the last one opened it.
fn onset(share: bool, seed: u64, offset: u64) -> (u64, u64) {
    let policy = Policy {
        open_jitter: 0.0,
        consecutive_failures: Some(3),
        ..Policy::default()
    };
    let config = FleetConfig {
        seed,
        ..FleetConfig::default()
    };
    let mut routers: Vec<Box<R>> = (0..N)
        .map(|_| Box::new(Router::new(&policy, &["primary", "secondary"]).unwrap()))
        .collect();
    let mut fleets: Vec<Box<Fleet<4, 60>>> = (0..N)
        .map(|i| Box::new(Fleet::new(config, i as u32, &routers[i]).unwrap()))
        .collect();
    let mut store = MemStore::new();
    let mut export: Box<Export<4>> = Box::default();
    let mut snap: Box<Snapshot<4>> = Box::default();
    let t0 = 1_764_000_000_000u64;
    let outage = t0 + 60_000 + offset;
    let mut wasted = 0;
    // Each instance sends one request a second (the fleet: 8 a second), instance k at k × 125 ms.
    for tick in 0..200_000u64 {
        let now = t0 + tick * 5;
        for k in 0..N {
            let r = &mut routers[k];
            if (now - t0) % 1000 == k as u64 * 125
                && let Ok(t) = r.pick(now)
            {
                let dead = t.provider.index() == 0 && now >= outage;
                let o = if dead {
                    wasted += 1;
                    Outcome::server_error(20)
                } else {
                    Outcome::success(300)
                };
                r.record(&t, o, now);
            }
            if share
                && fleets[k].watch(r).is_some_and(|d| d <= now)
                && let Some(round) = fleets[k].poll_transmit(r, now, &mut export)
            {
                store.round(&export, config.lease_ms, &mut snap);
                fleets[k].handle_snapshot(r, round, &snap, now);
            }
            while r.poll_event().is_some() {}
        }
        let all_open = routers.iter().all(|r| {
            let id = r.provider_at(0).unwrap();
            r.view(id).unwrap().state == CircuitState::Open
        });
        if now >= outage && all_open {
            return (wasted, now - outage);
        }
    }
    panic!("the primary never opened everywhere");
}

#[test]
fn sharing_keeps_the_calls_wasted_at_outage_onset_within_the_issues_bound() {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(|| {
            let config = FleetConfig::default();
            let quorum = u64::from(config.quorum(N as u32));
            // The fleet sends 8 requests a second; one (longest, jittered) period of them.
            let per_period = (8 * config.max_period_ms()).div_ceil(1000);
            let bound = quorum * 3 + per_period;
            let mut worst = 0;
            let mut all = Vec::new();
            // The outage on a bucket boundary and at points inside a bucket (the sums cannot
            // order the calls of the bucket where it began); jitter seeds move every instance's
            // rounds.
            for offset in [0u64, 5, 200, 450, 750] {
                let (alone, _) = onset(false, 0, offset);
                assert_eq!(alone, 8 * 3, "alone, every instance pays the whole limit");
                for seed in 0..6 {
                    let (shared, ms) = onset(true, seed, offset);
                    assert!(
                        shared <= bound,
                        "outage at +{offset} ms, seed {seed}: sharing wasted {shared} calls \
                         (all open after {ms} ms), bound {bound}"
                    );
                    worst = worst.max(shared);
                    all.push(shared);
                }
            }
            all.sort_unstable();
            println!(
                "wasted at onset: alone 24; sharing median {}, worst {worst} over {} runs; \
                 bound {bound} = quorum {quorum} × 3 + {per_period}",
                all[all.len() / 2],
                all.len()
            );
        })
        .unwrap()
        .join()
        .unwrap();
}

/// Random traffic, outages, failed rounds and clock skew over three instances: every router's
/// invariants hold after every step, and after a last round of every instance (twice, so each
/// has read the others' writes) they all hold the same registers.
#[test]
fn random_rounds_keep_every_invariant_and_registers_converge() {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(|| {
            for seed in 1..=4u64 {
                random_run(seed);
            }
        })
        .unwrap()
        .join()
        .unwrap();
}

fn random_run(seed: u64) {
    const K: usize = 3;
    let policy = Policy {
        probe_successes: 2,
        min_volume: 5,
        window_ms: 20_000,
        ..Policy::default()
    };
    let config = FleetConfig {
        seed,
        ..FleetConfig::default()
    };
    let names = ["p0", "p1", "p2"];
    let mut routers: Vec<Box<R>> = (0..K)
        .map(|_| Box::new(Router::new(&policy, &names).unwrap()))
        .collect();
    let mut fleets: Vec<Box<Fleet<4, 60>>> = (0..K)
        .map(|i| Box::new(Fleet::new(config, i as u32, &routers[i]).unwrap()))
        .collect();
    let mut store = MemStore::new();
    let mut export: Box<Export<4>> = Box::default();
    let mut snap: Box<Snapshot<4>> = Box::default();
    let mut rng = failover_testkit::Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let skew = [0u64, 300, 150];
    let t0 = 1_764_000_000_000u64;
    let (mut opens, mut adopted, mut ramps) = (0u64, 0u64, 0u64);
    for step in 0..40_000u64 {
        let base = t0 + step * 20;
        let minute = step * 20 / 60_000;
        let k = rng.below(K as u64) as usize;
        let now = base + skew[k];
        let r = &mut routers[k];
        if let Ok(t) = r.pick(now) {
            let down = t.provider.index() == 0 && minute % 4 == 1;
            let o = match rng.below(100) {
                _ if down && rng.below(10) < 9 => Outcome::server_error(20),
                0..=2 => Outcome::timeout(30_000),
                3..=5 => Outcome::server_error(50),
                _ => Outcome::success(200 + rng.below(800) as u32),
            };
            r.record(&t, o, now + 5);
        }
        if fleets[k].watch(r).is_some_and(|d| d <= now)
            && let Some(round) = fleets[k].poll_transmit(r, now, &mut export)
        {
            if rng.below(20) == 0 {
                fleets[k].handle_failure(r, round, now);
            } else {
                store.round(&export, config.lease_ms, &mut snap);
                fleets[k].handle_snapshot(r, round, &snap, now);
            }
        }
        while let Some(e) = r.poll_event() {
            if let EventKind::Opened { reason, .. } = e.kind {
                opens += 1;
                adopted += u64::from(reason.trigger == Trigger::FleetOpen);
            }
            ramps += u64::from(matches!(e.kind, EventKind::RampStage { .. }));
        }
        if let Some(v) = r.invariant_violation() {
            panic!("seed {seed}, step {step}, instance {k}: {v}");
        }
    }
    assert!(
        opens > 0 && adopted > 0 && ramps > 0,
        "seed {seed}: opens {opens}, adopted {adopted}, ramp stages {ramps}"
    );
    let end = t0 + 40_000 * 20 + 1_000;
    for pass in 0..2 {
        for k in 0..K {
            let now = end + pass * 10 + skew[k];
            fleets[k].sync_now(now);
            let round = fleets[k]
                .poll_transmit(&mut routers[k], now, &mut export)
                .unwrap();
            store.round(&export, config.lease_ms, &mut snap);
            fleets[k].handle_snapshot(&mut routers[k], round, &snap, now);
        }
    }
    for i in 0..names.len() {
        let id = routers[0].provider_at(i).unwrap();
        let regs: Vec<_> = fleets.iter().map(|f| f.register(id).unwrap()).collect();
        assert!(regs.iter().all(|r| *r == regs[0]), "seed {seed}: {regs:?}");
        assert_eq!(regs[0], store.register(i), "seed {seed}");
    }
}

/// An instance that joins the fleet's shared ramp late still ends its stage when the fleet's does:
/// the stage began at the shared start, not when this instance learned of it. Instance a's probes
/// confirm recovery at `start`; b reads the register only 5 s later, takes its sample of ramped
/// traffic, and (with no round in between) recovers at `start` + the dwell, as a does.
#[test]
fn a_late_follower_ends_the_shared_stage_at_the_fleets_time() {
    const DWELL: u64 = 60_000;
    const LATE: u64 = 5_000;
    let mut ramp = heapless::Vec::new();
    for (share, dwell_ms) in [(0.5, DWELL), (1.0, 0)] {
        ramp.push(failover_core::RampStage { share, dwell_ms })
            .unwrap();
    }
    let policy = Policy {
        open_jitter: 0.0,
        consecutive_failures: Some(3),
        probe_successes: 2,
        ramp,
        ramp_min_samples: 1,
        ..Policy::default()
    };
    let config = FleetConfig {
        jitter_ppm: 0,
        ..FleetConfig::default()
    };
    let mut routers: Vec<Box<R>> = (0..2)
        .map(|_| Box::new(Router::new(&policy, &["primary", "secondary"]).unwrap()))
        .collect();
    let mut fleets: Vec<Box<Fleet<4, 60>>> = (0..2)
        .map(|i| Box::new(Fleet::new(config, i as u32, &routers[i]).unwrap()))
        .collect();
    let mut store = MemStore::new();
    let mut export: Box<Export<4>> = Box::default();
    let mut snap: Box<Snapshot<4>> = Box::default();
    let mut sync = |k: usize, now: u64, routers: &mut [Box<R>]| {
        fleets[k].sync_now(now);
        let round = fleets[k]
            .poll_transmit(&mut routers[k], now, &mut export)
            .expect("a round starts");
        store.round(&export, config.lease_ms, &mut snap);
        fleets[k].handle_snapshot(&mut routers[k], round, &snap, now);
    };
    let primary = routers[0].provider_at(0).unwrap();
    let t0 = 1_764_000_000_000u64;
    sync(0, t0, &mut routers);
    sync(1, t0, &mut routers);
    // Both instances see the primary fail three times in a row and open it.
    for r in routers.iter_mut() {
        for i in 0..3 {
            let now = t0 + 100 + i * 100;
            let t = r.pick(now).unwrap();
            assert_eq!(t.provider, primary);
            r.record(&t, Outcome::server_error(20), now);
        }
    }
    sync(0, t0 + 1_000, &mut routers);
    sync(1, t0 + 1_000, &mut routers);
    let until = routers[0].view(primary).unwrap().open_until_ms.unwrap();
    // Just before the open ends both ask for the probe lease: a, first, holds it.
    sync(0, until - 500, &mut routers);
    sync(1, until - 500, &mut routers);
    // a probes twice and starts ramping; b holds its permits.
    let mut now = until + 100;
    for _ in 0..2 {
        let t = routers[0].pick(now).unwrap();
        assert_eq!(t.provider, primary, "a probes");
        routers[0].record(&t, Outcome::success(100), now + 100);
        now += 200;
    }
    let start = now - 100;
    assert_eq!(
        routers[0].view(primary).unwrap().state,
        CircuitState::Ramping
    );
    sync(0, start + 100, &mut routers);
    // b reads the shared ramp late and joins its first stage.
    let late = start + LATE;
    sync(1, late, &mut routers);
    let b = &mut routers[1];
    assert_eq!(b.view(primary).unwrap().state, CircuitState::Ramping);
    assert_eq!(b.view(primary).unwrap().ramp_stage, Some(0));
    // b's ramped traffic: at a share of one half, one of two requests goes to the primary.
    let mut sampled = false;
    for i in 0..4 {
        let t = b.pick(late + 10 + i).unwrap();
        let ok = t.provider == primary;
        b.record(&t, Outcome::success(100), late + 10 + i);
        sampled |= ok;
    }
    assert!(sampled, "b sent ramped traffic to the primary");
    assert_eq!(
        b.poll_timeout(),
        Some(start + DWELL),
        "b's stage ends a dwell after the fleet's start, not after it joined"
    );
    while b.poll_event().is_some() {}
    b.handle_timeout(start + DWELL);
    assert_eq!(b.view(primary).unwrap().state, CircuitState::Healthy);
    assert!(
        std::iter::from_fn(|| b.poll_event()).any(|e| e.kind == EventKind::Recovered),
        "b announces its recovery"
    );
}

/// An empty reply for the two providers of these tests, from `live` live instances.
fn reply(live: u32) -> Box<Snapshot<4>> {
    let mut snap: Box<Snapshot<4>> = Box::default();
    snap.live_instances = live;
    snap.len = 2;
    snap
}

/// One instance, one store, rounds forced at the times a test names.
struct Solo {
    router: Box<R>,
    fleet: Box<Fleet<4, 60>>,
    store: MemStore,
    export: Box<Export<4>>,
    snap: Box<Snapshot<4>>,
}

impl Solo {
    fn new() -> Solo {
        Solo::with(Policy {
            open_jitter: 0.0,
            consecutive_failures: Some(3),
            probe_successes: 1,
            ..Policy::default()
        })
    }

    fn with(policy: Policy) -> Solo {
        let config = FleetConfig {
            jitter_ppm: 0,
            ..FleetConfig::default()
        };
        let router = Box::new(Router::new(&policy, &["primary", "secondary"]).unwrap());
        let fleet = Box::new(Fleet::new(config, 0, &router).unwrap());
        Solo {
            router,
            fleet,
            store: MemStore::new(),
            export: Box::default(),
            snap: Box::default(),
        }
    }

    /// Starts a round at `at`, forced, and writes its export to the store (whose reply is then
    /// in `self.snap`); returns the round, for `finish`.
    fn start(&mut self, at: u64) -> u64 {
        self.fleet.sync_now(at);
        let round = self
            .fleet
            .poll_transmit(&mut self.router, at, &mut self.export)
            .expect("a round starts");
        let lease_ms = self.fleet.config().lease_ms;
        self.store.round(&self.export, lease_ms, &mut self.snap);
        round
    }

    /// Handles `snap` as round `round`'s reply at `now`.
    fn finish(&mut self, round: u64, snap: &Snapshot<4>, now: u64) {
        assert!(
            self.fleet
                .handle_snapshot(&mut self.router, round, snap, now)
        );
    }

    /// A round at `now`, forced, through the store; returns what it exported for the primary.
    fn round(&mut self, now: u64) -> failover_core::fleet::ProviderExport {
        let round = self.start(now);
        let sent = self.export.providers[0];
        let snap = self.snap.clone();
        self.finish(round, &snap, now);
        sent
    }

    /// Three server errors in a row from the primary, from `at` on: it opens. Returns its
    /// open-until.
    fn open_primary(&mut self, at: u64) -> u64 {
        for i in 0..3 {
            let now = at + i * 100;
            let t = self.router.pick(now).unwrap();
            assert_eq!(t.provider.index(), 0);
            self.router.record(&t, Outcome::server_error(20), now);
        }
        let id = self.router.provider_at(0).unwrap();
        assert_eq!(self.router.view(id).unwrap().state, CircuitState::Open);
        self.router.view(id).unwrap().open_until_ms.unwrap()
    }

    /// A round started at `at` whose reply, handled at `now`, is `snap` (not the store's).
    fn merge(&mut self, at: u64, snap: &Snapshot<4>, now: u64) {
        let round = self.start(at);
        self.finish(round, snap, now);
    }

    /// `n` successes of `latency_ms` from the provider picked, 10 ms apart from `from` on.
    fn successes(&mut self, n: u32, from: u64, latency_ms: u32) {
        for i in 0..u64::from(n) {
            let now = from + 10 * i;
            let t = self.router.pick(now).unwrap();
            self.router.record(&t, Outcome::success(latency_ms), now);
        }
    }

    fn state(&self) -> CircuitState {
        let id = self.router.provider_at(0).unwrap();
        self.router.view(id).unwrap().state
    }
}

/// A ramp is shared only for an open the fleet had: an instance whose primary opened and
/// recovered before its first round (the fleet's register still at epoch 0, never opened)
/// publishes no ramp start, which would otherwise stand at an epoch no open ever had.
#[test]
fn a_ramp_the_fleet_never_saw_open_is_not_published() {
    let mut s = Solo::new();
    let t0 = 1_764_000_000_000u64;
    let until = s.open_primary(t0);
    let t = s.router.pick(until + 100).unwrap();
    assert_eq!(t.provider.index(), 0, "the probe");
    s.router.record(&t, Outcome::success(100), until + 200);
    assert_eq!(s.state(), CircuitState::Ramping);
    let sent = s.round(until + 300);
    assert_eq!(
        sent.register.map_or(0, |r| r.ramp_start_ms),
        0,
        "published {:?}",
        sent.register
    );
    let id = s.router.provider_at(0).unwrap();
    assert_eq!(s.fleet.register(id).unwrap().ramp_start_ms, 0);
}

/// An instance's vote for its own open lasts exactly while the open does (renewed each round,
/// gone in the round at its open-until), and once the open has ended the probing instance asks
/// for the probe lease.
#[test]
fn a_vote_lasts_while_the_open_does_and_probing_asks_for_the_lease() {
    let mut s = Solo::new();
    let t0 = 1_764_000_000_000u64;
    s.round(t0);
    let until = s.open_primary(t0 + 100);
    let first = s.round(t0 + 1_000);
    assert_eq!(first.register.map(|r| r.epoch), Some(1));
    assert_eq!(first.vote, Some(1));
    assert!(!first.want_lease, "the open ends rounds from now");
    let last = s.round(until - 1);
    assert_eq!(s.state(), CircuitState::Open);
    assert_eq!(last.vote, Some(1), "the open lasts 1 ms more");
    assert!(last.want_lease, "the open ends before the next round");
    let after = s.round(until);
    assert_eq!(s.state(), CircuitState::Probing);
    assert_eq!(after.vote, None, "the open ended");
    assert!(after.want_lease, "probing asks for the lease");
    let later = s.round(until + 1_000);
    assert_eq!(s.state(), CircuitState::Probing);
    assert_eq!(later.vote, None);
    assert!(later.want_lease, "probing renews the lease");
}

/// A release by hand made while a round is in flight stands: the round's snapshot still carries
/// the isolation this instance published (the epoch it already follows), which must not isolate
/// the provider again; the next round publishes the release.
#[test]
fn a_release_made_during_a_round_is_not_undone_by_its_snapshot() {
    let mut s = Solo::new();
    let t0 = 1_764_000_000_000u64;
    let id = s.router.provider_at(0).unwrap();
    s.round(t0);
    assert!(s.router.isolate(id, t0 + 100));
    let sent = s.round(t0 + 1_000);
    assert_eq!(sent.register.map(|r| r.is_isolation()), Some(true));
    assert!(s.router.is_isolated(id));

    let round = s.start(t0 + 2_000);
    assert!(s.router.release(id, t0 + 2_100), "released by hand");
    let reply = s.snap.clone();
    s.finish(round, &reply, t0 + 2_200);
    assert!(!s.router.is_isolated(id), "the release stands");

    let next = s.round(t0 + 3_000);
    let reg = next.register.expect("the release is published");
    assert!(!reg.is_isolation() && reg.epoch == 2, "{reg:?}");
    assert!(!s.router.is_isolated(id));
}

/// Likewise an isolation by hand made while a round is in flight stands: that round's snapshot
/// carries the fleet's register of an ordinary open (an epoch this instance never followed as an
/// isolation), which is no release; the next round publishes the isolation.
#[test]
fn an_isolation_made_during_a_round_is_not_undone_by_its_snapshot() {
    let mut s = Solo::new();
    let t0 = 1_764_000_000_000u64;
    let id = s.router.provider_at(0).unwrap();
    s.round(t0);
    s.open_primary(t0 + 100);
    let sent = s.round(t0 + 1_000);
    assert_eq!(
        sent.register.map(|r| (r.epoch, r.is_isolation())),
        Some((1, false))
    );

    let round = s.start(t0 + 2_000);
    assert!(s.router.isolate(id, t0 + 2_100), "isolated by hand");
    let reply = s.snap.clone();
    s.finish(round, &reply, t0 + 2_200);
    assert!(s.router.is_isolated(id), "the isolation stands");

    let next = s.round(t0 + 3_000);
    let reg = next.register.expect("the isolation is published");
    assert!(reg.is_isolation() && reg.epoch == 2, "{reg:?}");
    assert!(s.router.is_isolated(id));
}

/// The merged window takes the fleet's sums for its own grid indexes only, and never more than
/// the router's `B` slots (one of them ahead, for clock skew): a sum one bucket older is dropped,
/// one at the oldest index counted (there, a hundred server errors trip the error rate), and so
/// is one a bucket ahead, but not two. Both lower limits: a window shorter than `B` buckets, and
/// one of exactly `B`.
#[test]
fn the_fleets_sums_count_only_inside_the_merged_window() {
    const B: u64 = 60;
    let t0 = 1_764_000_000_000u64;
    let now = t0 + 500;
    let idx = now / 1000;
    for (window_ms, oldest) in [(30_000, idx + 1 - 30), (60_000, idx + 2 - B)] {
        let edges = [
            (oldest - 1, false),
            (oldest, true),
            (idx + 1, true),
            (idx + 2, false),
        ];
        for (stamp, trips) in edges {
            let mut s = Solo::with(Policy {
                window_ms,
                ..Policy::default()
            });
            let mut snap = reply(2);
            assert!(snap.providers[0].push_sum(BucketCounts {
                stamp,
                counts: Counts {
                    server_error: 100,
                    ..Counts::default()
                },
                ..BucketCounts::ZERO
            }));
            s.merge(now, &snap, now);
            let want = if trips {
                CircuitState::Open
            } else {
                CircuitState::Healthy
            };
            assert_eq!(
                s.state(),
                want,
                "window {window_ms} ms, a sum at {} buckets from now",
                stamp as i64 - idx as i64
            );
        }
    }
}

/// A round moved into a new bucket crosses the window's boundary (in `poll_transmit`), and so
/// does the merge of a round whose reply comes back in the next bucket: a healthy provider's
/// latency baseline learns there as it would anywhere.
#[test]
fn a_round_or_a_merge_that_crosses_a_bucket_teaches_the_baseline() {
    let t0 = 1_764_000_000_000u64;
    for (at, reply_at) in [(t0 + 1_100, t0 + 1_100), (t0 + 900, t0 + 1_100)] {
        let mut s = Solo::new();
        let id = s.router.provider_at(0).unwrap();
        s.successes(20, t0, 500);
        assert_eq!(s.router.baseline_ms(id), None);
        let snap = reply(1);
        s.merge(at, &snap, reply_at);
        assert_eq!(s.state(), CircuitState::Healthy);
        let base = s.router.baseline_ms(id).expect("the baseline learned");
        assert!((400..=700).contains(&base), "{base} (round at {at})");
    }
}

/// A round exports only buckets still in the window: calls recorded after a round, in a bucket
/// that has left the window by the next one (the instance was idle longer than the window), are
/// not sent then (the fleet's windows no longer hold that grid index either).
#[test]
fn a_round_exports_no_bucket_that_left_the_window() {
    let mut s = Solo::new();
    let t0 = 1_764_000_000_000u64;
    s.successes(1, t0 + 10, 100);
    let first = s.round(t0 + 15);
    assert_eq!(first.len, 1);
    assert_eq!(first.buckets[0].stamp, t0 / 1000);
    s.successes(1, t0 + 20, 100);
    // 61 buckets later: bucket t0 / 1000 left the 60-bucket window one bucket ago.
    let later = t0 + 61_000 + 10;
    s.successes(1, later, 100);
    let sent = s.round(later + 5);
    let stamps: Vec<u64> = sent.deltas().iter().map(|b| b.stamp).collect();
    assert_eq!(stamps, [later / 1000]);
    assert_eq!(sent.deltas()[0].counts.success, 1);
}

/// The merged consecutive-failure run reads the others' hard failures bucket by bucket, newest
/// first from one bucket ahead (clock skew), back to the bucket where this instance's run began,
/// and stops at the newest bucket where the others had a success; in the run's first bucket,
/// whose successes may all precede the run, it counts the share of its failures that falls after
/// the run began when that share of its successes is none. Here this instance's run is two
/// failures long, from 900 ms into a bucket, and the limit is quorum 2 × 3 = 6: a run of four
/// from the others trips the provider, three do not. (The error rate is off, so that only the
/// run can trip it.)
#[test]
fn the_merged_run_counts_the_others_failures_since_this_run_began() {
    let t0 = 1_764_000_000_000u64;
    let k0 = t0 / 1000;
    let now = t0 + 3_500;
    let idx = now / 1000;
    let sum = |stamp: u64, success: u32, server_error: u32| BucketCounts {
        stamp,
        counts: Counts {
            success,
            server_error,
            ..Counts::default()
        },
        ..BucketCounts::ZERO
    };
    let cases: [(&str, Vec<BucketCounts>, bool); 7] = [
        ("four, a bucket ahead", vec![sum(idx + 1, 0, 4)], true),
        ("three, now", vec![sum(idx, 0, 3)], false),
        (
            "four over two buckets",
            vec![sum(idx, 0, 2), sum(k0 + 1, 0, 2)],
            true,
        ),
        (
            "stopped by a success",
            vec![sum(idx, 0, 3), sum(k0 + 2, 5, 0), sum(k0 + 1, 0, 9)],
            false,
        ),
        // The first bucket: 100 ms of its 1000 after the run began; a tenth of the others' 40
        // failures is 4, and a tenth of one success is none. (The store's sum holds this
        // instance's own two failures too, which the merge takes away.)
        ("a tenth of the first bucket", vec![sum(k0, 1, 42)], true),
        ("a tenth of 39", vec![sum(k0, 1, 41)], false),
        ("before the run began", vec![sum(k0 - 1, 0, 40)], false),
    ];
    for (what, sums, trips) in cases {
        let mut s = Solo::with(Policy {
            open_jitter: 0.0,
            consecutive_failures: Some(3),
            error_rate_threshold: None,
            ..Policy::default()
        });
        for at in [t0 + 900, t0 + 950] {
            let t = s.router.pick(at).unwrap();
            assert_eq!(t.provider.index(), 0);
            s.router.record(&t, Outcome::server_error(20), at);
        }
        let mut snap = reply(2);
        for b in sums {
            assert!(snap.providers[0].push_sum(b));
        }
        s.merge(now, &snap, now);
        let want = if trips {
            CircuitState::Open
        } else {
            CircuitState::Healthy
        };
        assert_eq!(s.state(), want, "{what}");
    }
}

/// The others' counts read in one round stay in the merged window until their bucket leaves it,
/// though later rounds read back only the latest grid indexes.
#[test]
fn the_others_counts_stay_until_their_bucket_leaves_the_window() {
    let mut s = Solo::new();
    let id = s.router.provider_at(0).unwrap();
    let t0 = 1_764_000_000_000u64;
    let k0 = t0 / 1000;
    let mut snap = reply(2);
    assert!(snap.providers[0].push_sum(BucketCounts {
        stamp: k0,
        counts: Counts {
            success: 5,
            ..Counts::default()
        },
        ..BucketCounts::ZERO
    }));
    s.merge(t0 + 500, &snap, t0 + 500);
    assert_eq!(s.router.view(id).unwrap().window.successes, 5);
    let empty = reply(2);
    for (k, kept) in [(1, 5), (2, 5), (30, 5), (58, 5), (59, 0), (70, 0)] {
        let now = t0 + k * 1000 + 500;
        s.merge(now, &empty, now);
        assert_eq!(
            s.router.view(id).unwrap().window.successes,
            kept,
            "{k} buckets later"
        );
    }
}

/// A round sends the provider's register only when the store's differs from this instance's
/// (a change of its own, or a write of it that the store lost); once the store holds it, rounds
/// send none.
#[test]
fn the_register_is_sent_again_only_when_the_store_is_behind() {
    let mut s = Solo::new();
    let t0 = 1_764_000_000_000u64;
    s.round(t0);
    s.open_primary(t0 + 100);
    let reg = s.round(t0 + 1_000).register.expect("the open is published");
    assert_eq!(s.round(t0 + 2_000).register, None, "the store has it");
    // The store loses it (a failed write, a flushed store): the next reply says so, and the
    // round after that sends it again.
    let mut lost = reply(1);
    lost.providers[0].register = failover_core::fleet::Register::default();
    s.merge(t0 + 3_000, &lost, t0 + 3_000);
    assert_eq!(s.round(t0 + 4_000).register, Some(reg), "sent again");
    assert_eq!(s.round(t0 + 5_000).register, None);
}

/// Joining the fleet's ramp from an open starts the provider's window afresh (the failures that
/// opened it do not judge its recovery); moving on to a later stage of the fleet's ramp, which
/// this instance's own ramp had not reached (too few samples here), keeps the ramp's counts.
#[test]
fn joining_the_fleets_ramp_starts_a_fresh_window_and_a_later_stage_keeps_it() {
    let mut ramp = heapless::Vec::new();
    for (share, dwell_ms) in [(0.25, 30_000), (0.5, 30_000), (1.0, 0)] {
        ramp.push(failover_core::RampStage { share, dwell_ms })
            .unwrap();
    }
    let mut s = Solo::with(Policy {
        open_jitter: 0.0,
        consecutive_failures: Some(3),
        ramp,
        ramp_min_samples: 1000,
        ..Policy::default()
    });
    let id = s.router.provider_at(0).unwrap();
    let t0 = 1_764_000_000_000u64;
    s.round(t0);
    s.open_primary(t0 + 100);
    let reg = s.round(t0 + 1_000).register.expect("the open is published");
    assert_eq!(s.router.view(id).unwrap().window.failures, 3);
    let start = t0 + 2_000;
    let mut snap = reply(2);
    snap.providers[0].register = failover_core::fleet::Register {
        ramp_start_ms: start,
        ..reg
    };
    s.merge(start, &snap, start);
    let v = s.router.view(id).unwrap();
    assert_eq!((v.state, v.ramp_stage), (CircuitState::Ramping, Some(0)));
    assert_eq!(v.window.volume, 0, "a fresh window");
    for i in 0..2 {
        s.router.observe(id, Outcome::success(100), start + 100 + i);
    }
    let later = start + 30_500;
    s.merge(later, &snap, later);
    let v = s.router.view(id).unwrap();
    assert_eq!((v.state, v.ramp_stage), (CircuitState::Ramping, Some(1)));
    assert_eq!(v.window.successes, 2, "the ramp's counts are kept");
}

/// A register that never had an open (epoch 0) carries no ramp to follow, whatever its ramp
/// start says (no correct instance writes one): an instance whose provider opened while its
/// round was in flight stays open.
#[test]
fn a_ramp_start_at_epoch_zero_is_not_followed() {
    let mut s = Solo::new();
    let t0 = 1_764_000_000_000u64;
    s.round(t0);
    let round = s.start(t0 + 1_000);
    s.open_primary(t0 + 1_100);
    let mut snap = reply(2);
    snap.providers[0].register.ramp_start_ms = t0 + 1_400;
    s.finish(round, &snap, t0 + 1_500);
    assert_eq!(s.state(), CircuitState::Open);
}

/// `watch` brings the next round forward to now for an open the fleet has not heard of, not for
/// one it has; and for a run of failures it has already pushed, it asks again half a period after
/// the last round (unless the period since the round before comes later).
#[test]
fn watch_pushes_news_at_once_and_a_pushed_run_half_a_period_on() {
    let mut s = Solo::new();
    let t0 = 1_764_000_000_000u64;
    s.round(t0);
    s.round(t0 + 2_000);
    // A run of one failure, before the next round is due: new, so due now.
    let t = s.router.pick(t0 + 2_900).unwrap();
    s.router.record(&t, Outcome::server_error(20), t0 + 2_900);
    assert_eq!(s.fleet.watch(&s.router), Some(t0 + 2_900));
    s.round(t0 + 2_900);
    // The same run after the round that carried it: half a period after that round (later
    // than a period after the round before, at 3000).
    assert_eq!(s.fleet.watch(&s.router), Some(t0 + 3_400));

    let mut s = Solo::new();
    s.round(t0);
    s.open_primary(t0 + 100);
    assert_eq!(s.fleet.watch(&s.router), Some(t0 + 300), "a new open");
    s.round(t0 + 300);
    assert_eq!(
        s.fleet.watch(&s.router),
        Some(t0 + 1_300),
        "the open is published: the next round a period on"
    );
}

/// The rounds' jittered periods, pinned to exact values computed once, independently of the core
/// (Python integers masked to 64 bits), from the rule in `Fleet::period`:
///
/// ```text
/// r      = splitmix64(seed ^ instance × 0xA24BAED4963EE407 ^ round × 0x9FB21C651E98DF25) mod (2j + 1)
/// period = period_ms × (1 000 000 − j + r) / 1 000 000        (j = jitter_ppm)
/// ```
///
/// (wrapping u64 products; `round` counts from 1), here with a period of 1 s and a jitter of
/// ± 50 %. A weaker mix would let instances' rounds fall into step.
#[test]
fn the_rounds_jittered_periods_are_pinned() {
    const GOLDEN: [(u64, u32, [u64; 4]); 6] = [
        (0x0, 0, [730, 878, 985, 1471]),
        (0x0, 7, [1044, 1056, 837, 523]),
        (0x2a, 0, [903, 1269, 1029, 1093]),
        (0x2a, 7, [1192, 584, 606, 601]),
        (0xdeadbeef, 0, [1425, 780, 1183, 739]),
        (0xdeadbeef, 7, [1123, 607, 529, 1465]),
    ];
    let t0 = 1_764_000_000_000u64;
    for (seed, instance, want) in GOLDEN {
        let mut s = Solo::new();
        let config = FleetConfig {
            seed,
            jitter_ppm: 500_000,
            ..FleetConfig::default()
        };
        *s.fleet = Fleet::new(config, instance, &s.router).unwrap();
        let mut now = t0;
        let mut got = [0u64; 4];
        for g in &mut got {
            s.round(now);
            let next = s.fleet.poll_timeout().unwrap();
            *g = next - now;
            now = next;
        }
        assert_eq!(got, want, "seed {seed:#x}, instance {instance}");
    }
}

/// A round reads back the latest grid indexes, up to one ahead: all a snapshot holds on the
/// first round (`SYNC_BUCKETS`), then `⌈2 × longest period / bucket⌉ + 3` (5 here: a period of
/// 1 s without jitter, in 1 s buckets).
/// And it exports each bucket's counts once: what a bucket gained since the last round, a new
/// bucket whole (not less what the bucket before held).
#[test]
fn a_round_reads_the_latest_indexes_and_exports_each_count_once() {
    let mut s = Solo::new();
    let t0 = 1_764_000_000_000u64;
    let k0 = t0 / 1000;
    s.successes(5, t0 + 100, 100);
    let first = s.round(t0 + 200);
    let e = &s.export;
    assert_eq!((e.read_from, e.read_to), (k0 + 2 - 16, k0 + 1));
    assert_eq!(first.deltas().len(), 1);
    assert_eq!(first.deltas()[0].counts.success, 5);

    s.successes(2, t0 + 300, 100);
    s.successes(7, t0 + 1_100, 100);
    let second = s.round(t0 + 1_200);
    let e = &s.export;
    assert_eq!((e.read_from, e.read_to), (k0 + 1 + 2 - 5, k0 + 2));
    let got: Vec<(u64, u32)> = second
        .deltas()
        .iter()
        .map(|b| (b.stamp, b.counts.success))
        .collect();
    assert_eq!(got, [(k0, 2), (k0 + 1, 7)]);
}
