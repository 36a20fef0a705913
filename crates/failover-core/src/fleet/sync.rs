//! The sync state machine: when a round is due, what it writes ([`Fleet::poll_transmit`]), what
//! a round's answer changes in the router ([`Fleet::handle_snapshot`]) and what a failed round
//! does ([`Fleet::handle_failure`]).

use super::{
    BucketCounts, Export, FleetConfig, FleetConfigError, FleetEvent, Register, SYNC_BUCKETS,
    Snapshot,
};
use crate::event::{CircuitState, ProviderId, Reason, Trigger};
use crate::ramp::splitmix64;
use crate::router::Router;
use crate::window::{Addend, LATENCY_BINS};

/// The fleet's counts at one grid index, less this instance's own exports.
#[derive(Clone, Copy, Debug)]
struct Slot {
    /// Grid index (`u64::MAX`: unused).
    stamp: u64,
    counts: BucketCounts,
}

const UNUSED: Slot = Slot {
    stamp: u64::MAX,
    counts: BucketCounts::ZERO,
};

/// What this instance knows and remembers about one provider.
#[derive(Clone, Debug)]
struct Shared<const B: usize> {
    /// Export cursor: every bucket before `sent_stamp` was exported whole, and `sent` of it.
    sent_stamp: u64,
    sent: BucketCounts,
    /// This instance's own exports of the latest grid indexes (to take out of the fleet's sums).
    own: [Slot; SYNC_BUCKETS],
    /// The other instances' counts per grid index, over the window.
    others: [Slot; B],
    /// The sum of the `others` slots with a grid index from `others_from` on (kept as slots are
    /// replaced and expire, so a merge costs O(what changed), not O(B)).
    others_total: Addend,
    others_from: u64,
    /// The fleet's register as last seen, joined with this instance's writes.
    register: Register,
    /// The epoch whose open this instance follows (its own or adopted).
    followed: u64,
    /// The store's register was behind this instance's at the last round (a restarted, empty
    /// store): the next round writes this instance's back, so epochs never go back.
    store_behind: bool,
    /// The circuit generation after this instance last looked (a change is a local transition).
    seen_generation: u32,
    /// This instance's vote: the epoch it opened on its own evidence, until when.
    vote: Option<(u64, u64)>,
    lease_holder: Option<u32>,
    /// The start of the last run of hard failures that made a round due early.
    pushed_run: Option<(u64, u32)>,
    /// Whether the router had the provider isolated when this instance last looked (a change is
    /// an isolation or a release by hand here, which the next round publishes).
    isolated: bool,
    /// The epoch of the isolation this instance published or follows (0: none).
    isolation: u64,
}

impl<const B: usize> Shared<B> {
    const NEW: Self = Shared {
        sent_stamp: 0,
        sent: BucketCounts::ZERO,
        own: [UNUSED; SYNC_BUCKETS],
        others: [UNUSED; B],
        others_total: Addend::ZERO,
        others_from: 0,
        register: Register {
            epoch: 0,
            open_until_ms: 0,
            ramp_start_ms: 0,
        },
        followed: 0,
        store_behind: false,
        seen_generation: 0,
        vote: None,
        lease_holder: None,
        pushed_run: None,
        isolated: false,
        isolation: 0,
    };

    fn note_own(&mut self, d: &BucketCounts) {
        let s = &mut self.own[(d.stamp % SYNC_BUCKETS as u64) as usize];
        if s.stamp != d.stamp {
            *s = Slot {
                stamp: d.stamp,
                counts: BucketCounts {
                    stamp: d.stamp,
                    ..BucketCounts::ZERO
                },
            };
        }
        s.counts.add(d);
    }

    /// Forgets the other instances' counts.
    fn clear_others(&mut self) {
        self.others = [UNUSED; B];
        self.others_total = Addend::ZERO;
        self.others_from = 0;
    }

    /// Moves the start of the counted grid indexes to `from`, taking expired slots out of the
    /// total. O(grid indexes passed), at most O(B).
    fn expire_others(&mut self, from: u64) {
        if from <= self.others_from {
            return;
        }
        if from - self.others_from >= B as u64 {
            self.clear_others();
        } else {
            for stamp in self.others_from..from {
                let s = &self.others[(stamp % B as u64) as usize];
                if s.stamp == stamp {
                    self.others_total.sub(&s.counts.counts, &s.counts.hist);
                }
            }
        }
        self.others_from = from;
    }

    /// Sets the other instances' counts at one grid index (at or after `others_from`, less than
    /// B indexes ahead of it), keeping the total.
    fn set_others(&mut self, mut c: BucketCounts) {
        // Slow calls are successes (a store's sums less a lost write of ours could say otherwise).
        c.counts.slow = c.counts.slow.min(c.counts.success);
        let slot = &mut self.others[(c.stamp % B as u64) as usize];
        if slot.stamp == c.stamp {
            self.others_total
                .sub(&slot.counts.counts, &slot.counts.hist);
        } else if slot.stamp != u64::MAX && slot.stamp >= self.others_from {
            // (Cannot happen while indexes stay within B of `others_from`; kept exact anyway.)
            self.others_total
                .sub(&slot.counts.counts, &slot.counts.hist);
        }
        *slot = Slot {
            stamp: c.stamp,
            counts: c,
        };
        self.others_total.add(&c.counts, &c.hist);
    }

    fn own_at(&self, stamp: u64) -> BucketCounts {
        let s = &self.own[(stamp % SYNC_BUCKETS as u64) as usize];
        if s.stamp == stamp {
            s.counts
        } else {
            BucketCounts::ZERO
        }
    }
}

/// One instance's side of fleet mode for a router of up to `P` providers with windows of up to
/// `B` buckets: the sync state machine and what the instance remembers of the fleet. Plain data,
/// no allocation: `P × (B + 2·SYNC_BUCKETS) × 170` bytes or so (about 330 KB at 16 × 120; keep it
/// on the heap in bindings).
///
/// # Calling order
///
/// Sleep until [`Fleet::poll_timeout`]; then [`Fleet::poll_transmit`] fills an [`Export`] (what to
/// write) and returns its round; perform the writes and the reads it asks for in one pipelined
/// round trip and hand what was read to [`Fleet::handle_snapshot`], or report the round's failure
/// (timeout, connection lost) with [`Fleet::handle_failure`]. Drain [`Fleet::poll_event`] and the
/// router's events afterwards. One round is in flight at a time. Every input carries `now`, Unix
/// ms (the same clock as the router's inputs).
#[derive(Clone, Debug)]
pub struct Fleet<const P: usize, const B: usize> {
    config: FleetConfig,
    instance: u32,
    /// Grid indexes read back per provider and round.
    reads: u64,
    /// No round succeeded yet, or none since the instance was degraded: the next reads back as
    /// many grid indexes as a snapshot holds, to fill more of the window at once.
    fresh: bool,
    next_at: u64,
    /// When the round before the last one began.
    prev_at: u64,
    /// When the last round began.
    last_at: u64,
    round: u64,
    in_flight: Option<u64>,
    failures: u32,
    degraded: bool,
    live: u32,
    shared: [Shared<B>; P],
    events: heapless::Deque<FleetEvent, 8>,
}

impl<const P: usize, const B: usize> Fleet<P, B> {
    /// Instance `instance` (unique in the fleet) of a fleet, for `router`. Checks `config` and
    /// that the grid indexes a round reads back (`⌈2 × longest period / bucket⌉ + 3`) fit in
    /// `SYNC_BUCKETS`. The first round is
    /// due at once. Cost: O(P · B).
    pub fn new<const RP: usize, const RB: usize, const E: usize>(
        config: FleetConfig,
        instance: u32,
        router: &Router<RP, RB, E>,
    ) -> Result<Self, FleetConfigError> {
        config.validate()?;
        // A grid index can still grow until every instance's round after its bucket ended, up to
        // one longest period later; since the previous read (up to one longest period ago) the
        // indexes that may have grown are those of the last 2 × that, plus the current one and
        // one ahead (clock skew).
        let reads = (2 * config.max_period_ms()).div_ceil(router.policy.bucket_ms) + 3;
        if reads > SYNC_BUCKETS as u64 {
            return Err(FleetConfigError::PeriodTooLongForBuckets);
        }
        Ok(Fleet {
            config,
            instance,
            reads,
            fresh: true,
            next_at: 0,
            prev_at: 0,
            last_at: 0,
            round: 0,
            in_flight: None,
            failures: 0,
            degraded: false,
            live: 1,
            shared: [const { Shared::NEW }; P],
            events: heapless::Deque::new(),
        })
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &FleetConfig {
        &self.config
    }

    /// Whether the instance runs on local knowledge alone (too many failed rounds in a row).
    #[must_use]
    pub fn degraded(&self) -> bool {
        self.degraded
    }

    /// Failed rounds in a row.
    #[must_use]
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Live instances at the last successful round (this one included; 1 before any).
    #[must_use]
    pub fn live_instances(&self) -> u32 {
        self.live
    }

    /// The current quorum among the live instances.
    #[must_use]
    pub fn quorum(&self) -> u32 {
        self.config.quorum(self.live)
    }

    /// Provider `id`'s register as this instance last saw it.
    #[must_use]
    pub fn register(&self, id: ProviderId) -> Option<Register> {
        self.shared.get(id.index()).map(|s| s.register)
    }

    /// Who held provider `id`'s probe lease at the last round.
    #[must_use]
    pub fn lease_holder(&self, id: ProviderId) -> Option<u32> {
        self.shared.get(id.index()).and_then(|s| s.lease_holder)
    }

    /// When the next round is due (`None` while one is in flight). Changes only after an input.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        self.in_flight.is_none().then_some(self.next_at)
    }

    /// Makes the next round due at `now` (call it on a local open or rollback, so the fleet
    /// hears of it at once rather than a period later).
    pub fn sync_now(&mut self, now: u64) {
        self.next_at = self.next_at.min(now);
    }

    /// Looks at the router for news the fleet should hear of soon, and makes the next round due
    /// earlier for it:
    ///
    /// - an open of this instance's own (a trip or a ramp's rollback) that no round has exported
    ///   yet, or an isolation or a release by hand not yet published: due at once;
    /// - a hard failure that began or lengthened a run on a healthy provider: due at once, and
    ///   every half period while the run lasts (the fleet's merged consecutive-failure run then
    ///   counts this instance's failures, and this instance reads the others', a period sooner).
    ///
    /// Failure runs never make two rounds begin less than a period apart from the round before
    /// the last one, so at most two rounds begin in any one period; and they bring no round
    /// forward while rounds fail (the backoff stands). Call it before sleeping until
    /// [`Fleet::poll_timeout`], and again whenever requests may have been recorded since;
    /// returns `poll_timeout`. O(P).
    pub fn watch<const RP: usize, const RB: usize, const E: usize>(
        &mut self,
        router: &Router<RP, RB, E>,
    ) -> Option<u64> {
        if self.degraded {
            return self.poll_timeout();
        }
        let now = router.now;
        let period = self.config.period_ms;
        let cap = self.prev_at.saturating_add(period);
        for (i, (pr, sh)) in router
            .providers
            .iter()
            .zip(self.shared.iter_mut())
            .enumerate()
        {
            let c = &pr.circuit;
            let isolation_changed = router.isolated().contains_index(i) != sh.isolated;
            if isolation_changed
                || (c.generation != sh.seen_generation && c.state == CircuitState::Open)
            {
                self.next_at = self.next_at.min(now);
            } else if c.state == CircuitState::Healthy
                && pr.health.runs.hard > 0
                && self.failures == 0
            {
                let run = (pr.health.hard_run_since, pr.health.runs.hard);
                let due = if sh.pushed_run == Some(run) {
                    self.last_at.saturating_add(period / 2)
                } else {
                    sh.pushed_run = Some(run);
                    now
                };
                self.next_at = self.next_at.min(due.max(cap));
            }
        }
        self.poll_timeout()
    }

    /// Takes the next event, oldest first.
    pub fn poll_event(&mut self) -> Option<FleetEvent> {
        self.events.pop_front()
    }

    fn push(&mut self, e: FleetEvent) {
        if self.events.is_full() {
            self.events.pop_front();
        }
        let _ = self.events.push_back(e);
    }

    /// The jittered period after round `round`.
    fn period(&self, round: u64) -> u64 {
        let j = u64::from(self.config.jitter_ppm);
        if j == 0 {
            return self.config.period_ms;
        }
        let r = splitmix64(
            self.config.seed
                ^ u64::from(self.instance).wrapping_mul(0xA24B_AED4_963E_E407)
                ^ round.wrapping_mul(0x9FB2_1C65_1E98_DF25),
        ) % (2 * j + 1);
        self.config.period_ms * (1_000_000 - j + r) / 1_000_000
    }

    /// Starts a round if one is due at `now` and none is in flight: fills `out` with what to
    /// write and read, and returns the round's number. Every bucket delta in `out` is handed out
    /// once: the cursor moves now, whether or not the write succeeds. Cost: O(P · SYNC_BUCKETS).
    pub fn poll_transmit<const RP: usize, const RB: usize, const E: usize>(
        &mut self,
        router: &mut Router<RP, RB, E>,
        now: u64,
        out: &mut Export<P>,
    ) -> Option<u64> {
        if self.in_flight.is_some() || now < self.next_at {
            return None;
        }
        let now = router.clock(now);
        router.catch_up(now);
        self.round += 1;
        self.prev_at = self.last_at;
        self.last_at = now;
        self.in_flight = Some(self.round);
        self.next_at = now.saturating_add(self.period(self.round));
        let width = router.policy.bucket_ms;
        let idx = now / width;
        out.instance = self.instance;
        out.round = self.round;
        out.at_ms = now;
        out.read_to = idx + 1;
        let reads = if self.fresh {
            SYNC_BUCKETS as u64
        } else {
            self.reads
        };
        out.read_from = (idx + 2).saturating_sub(reads);
        out.live_since_ms = now.saturating_sub(
            self.config
                .period_ms
                .saturating_mul(u64::from(self.config.live_periods)),
        );
        out.len = router.providers.len().min(P);
        let next_round = self.next_at;
        for i in 0..out.len {
            let learn = router.providers[i].circuit.state == CircuitState::Healthy;
            router.providers[i]
                .health
                .advance(&router.policy, now, learn);
            let isolated = router.isolated().contains_index(i);
            let pr = &router.providers[i];
            let sh = &mut self.shared[i];
            let o = &mut out.providers[i];
            // (Field by field: the bucket array is only read up to `len`.)
            o.len = 0;
            o.register = None;
            o.vote = None;
            o.want_lease = false;
            for (stamp, counts, hist) in pr.health.window.buckets_from(sh.sent_stamp) {
                let mut content = BucketCounts {
                    stamp,
                    counts: *counts,
                    hist: [0; LATENCY_BINS],
                };
                for (h, &n) in content.hist.iter_mut().zip(hist.iter()) {
                    *h = u32::from(n);
                }
                // A bucket that lost counts was cleared (a ramp began): all it holds is new.
                let prev = if stamp == sh.sent_stamp && !content.any_below(&sh.sent) {
                    sh.sent
                } else {
                    BucketCounts::ZERO
                };
                let mut delta = content.minus(&prev);
                delta.stamp = stamp;
                if !delta.is_empty() {
                    if o.len == SYNC_BUCKETS {
                        break;
                    }
                    o.buckets[o.len] = delta;
                    o.len += 1;
                    sh.note_own(&delta);
                }
                sh.sent_stamp = stamp;
                sh.sent = content;
            }
            if isolated != sh.isolated {
                // Isolated or released by hand here since the last round: a new epoch tells the
                // fleet, which follows it without quorum (an operator's decision).
                sh.isolated = isolated;
                let epoch = sh.register.epoch + 1;
                let (reg, followed) = if isolated {
                    (Register::isolation(epoch), epoch)
                } else {
                    (Register::release(epoch), 0)
                };
                sh.register = sh.register.join(reg);
                sh.isolation = followed;
                o.register = Some(sh.register);
            }
            let c = &pr.circuit;
            if c.generation != sh.seen_generation {
                sh.seen_generation = c.generation;
                match c.state {
                    // An open while the fleet isolates the provider (a call made before the
                    // isolation) publishes nothing: the isolation stands until released.
                    CircuitState::Open if sh.register.is_isolation() => {}
                    CircuitState::Open => {
                        // Opened here, on this instance's evidence: join the open in force, or
                        // begin a new epoch.
                        let epoch = if sh.register.open_in_force(now) {
                            sh.register.epoch
                        } else {
                            sh.register.epoch + 1
                        };
                        sh.register = sh.register.join(Register {
                            epoch,
                            open_until_ms: c.open_until,
                            ramp_start_ms: 0,
                        });
                        sh.followed = epoch;
                        sh.vote = Some((epoch, c.open_until));
                        o.register = Some(sh.register);
                    }
                    CircuitState::Ramping
                        if sh.register.epoch == sh.followed
                            && sh.register.epoch > 0
                            && sh.register.ramp_start_ms == 0 =>
                    {
                        // This instance's probes confirmed recovery: the fleet ramps from here.
                        sh.register.ramp_start_ms = c.ramp.since.max(1);
                        o.register = Some(sh.register);
                    }
                    _ => {}
                }
            }
            if sh.store_behind && o.register.is_none() {
                o.register = Some(sh.register);
            }
            if let Some((epoch, until)) = sh.vote {
                if until > now && epoch == sh.register.epoch {
                    o.vote = Some(epoch);
                } else {
                    sh.vote = None;
                }
            }
            o.want_lease = !self.degraded
                && match c.state {
                    CircuitState::Probing => true,
                    CircuitState::Open => c.open_until <= next_round,
                    _ => false,
                };
        }
        Some(self.round)
    }

    /// The round `round` failed (the store did not answer in time, or the connection broke).
    /// After `degraded_after` failures in a row the instance is degraded: the fleet's counts are
    /// dropped from every window and every probe hold is released, and a [`FleetEvent::Degraded`]
    /// is queued. The next round is due after a backoff (one period, doubling per failure past
    /// the limit, at most 8 periods). A round that is not in flight is ignored (false).
    pub fn handle_failure<const RP: usize, const RB: usize, const E: usize>(
        &mut self,
        router: &mut Router<RP, RB, E>,
        round: u64,
        now: u64,
    ) -> bool {
        if self.in_flight != Some(round) {
            return false;
        }
        self.in_flight = None;
        self.failures = self.failures.saturating_add(1);
        let past = self
            .failures
            .saturating_sub(self.config.degraded_after)
            .min(3);
        self.next_at = now.saturating_add(self.period(self.round) << past);
        if self.failures >= self.config.degraded_after && !self.degraded {
            self.degraded = true;
            self.fresh = true;
            self.live = 1;
            let now = router.clock(now);
            for i in 0..router.providers.len().min(P) {
                let pr = &mut router.providers[i];
                pr.health.set_remote(&router.policy, &Addend::ZERO);
                pr.health.set_fleet_run(0, 0);
                pr.circuit.probe_hold = false;
                self.shared[i].clear_others();
                router.refresh(i, now);
            }
            self.push(FleetEvent::Degraded {
                at_ms: now,
                failures: self.failures,
            });
        }
        true
    }

    /// The answer of round `round`: merges what the fleet learned into the router. Per provider:
    /// the fleet's sums (less this instance's own exports) become the other instances' part of
    /// the window, and sums older than the window are dropped; the register is joined; an open
    /// in force is adopted when the merged window trips or a quorum of live instances voted for
    /// it (or at once when this instance is not healthy itself); the shared ramp is followed;
    /// the probe permits are held unless this instance holds the lease. Finally the rate
    /// triggers judge the merged window; and an isolation by hand published anywhere is followed
    /// (a newer isolation isolates the provider here, a newer release releases it, with their
    /// events). A round that is not in flight is ignored (false).
    /// Cost: O(P · (B + SYNC_BUCKETS · 32)).
    pub fn handle_snapshot<const RP: usize, const RB: usize, const E: usize>(
        &mut self,
        router: &mut Router<RP, RB, E>,
        round: u64,
        snapshot: &Snapshot<P>,
        now: u64,
    ) -> bool {
        if self.in_flight != Some(round) {
            return false;
        }
        self.in_flight = None;
        self.failures = 0;
        self.fresh = false;
        let now = router.clock(now);
        router.catch_up(now);
        if self.degraded {
            self.degraded = false;
            self.push(FleetEvent::Resumed { at_ms: now });
        }
        self.live = snapshot.live_instances.max(1);
        let quorum = self.config.quorum(self.live);
        let n = router.providers.len().min(P).min(snapshot.len);
        for i in 0..n {
            self.merge_one(router, i, &snapshot.providers[i], quorum, now);
            router.refresh(i, now);
            self.follow_isolation(router, i, now);
        }
        true
    }

    /// Follows the register's isolation by hand: a newer isolation than the one this instance
    /// follows isolates the provider here ([`Router::isolate`], with its `isolated` event); a
    /// newer epoch that is not one ends the isolation ([`Router::release`], `released`). O(P)
    /// when it changes something, else O(1).
    fn follow_isolation<const RP: usize, const RB: usize, const E: usize>(
        &mut self,
        router: &mut Router<RP, RB, E>,
        i: usize,
        now: u64,
    ) {
        let sh = &mut self.shared[i];
        let reg = sh.register;
        let id = ProviderId(i as u8);
        if reg.is_isolation() {
            if reg.epoch > sh.isolation {
                sh.isolation = reg.epoch;
                sh.isolated = true;
                // (False when already isolated by hand here: then nothing changes.)
                router.isolate(id, now);
            }
        } else if sh.isolation != 0 && reg.epoch > sh.isolation {
            sh.isolation = 0;
            sh.isolated = false;
            router.release(id, now);
        }
    }

    fn merge_one<const RP: usize, const RB: usize, const E: usize>(
        &mut self,
        router: &mut Router<RP, RB, E>,
        i: usize,
        snap: &super::ProviderSnapshot,
        quorum: u32,
        now: u64,
    ) {
        let id = ProviderId(i as u8);
        let p = &router.policy;
        let pr = &mut router.providers[i];
        let sh = &mut self.shared[i];
        let ev = &mut router.events;
        let learn = pr.circuit.state == CircuitState::Healthy;
        pr.health.advance(p, now, learn);
        let (_, width, len) = pr.health.window.grid();
        let len = (len as u64).min(B as u64);
        let idx = now / width;
        // Grid indexes in the merged window: (idx − len, idx + 1] (one ahead for clock skew),
        // and never more than B of them.
        let oldest = (idx + 1)
            .saturating_sub(len)
            .max((idx + 2).saturating_sub(B as u64));
        sh.expire_others(oldest);
        for sum in &snap.sums[..snap.len.min(SYNC_BUCKETS)] {
            if sum.stamp < oldest || sum.stamp > idx + 1 {
                // Older than the window (a late write, a replay): dropped.
                continue;
            }
            let mut others = sum.minus(&sh.own_at(sum.stamp));
            others.stamp = sum.stamp;
            sh.set_others(others);
        }
        #[cfg(debug_assertions)]
        {
            let mut recount = Addend::ZERO;
            for s in &sh.others {
                if s.stamp != u64::MAX && s.stamp >= sh.others_from {
                    recount.add(&s.counts.counts, &s.counts.hist);
                }
            }
            debug_assert_eq!(
                recount, sh.others_total,
                "fleet counts drifted from their slots"
            );
        }
        let addend = if pr.circuit.state == CircuitState::Healthy {
            sh.others_total
        } else {
            Addend::ZERO
        };
        pr.health.set_remote(p, &addend);
        // The merged consecutive-failure run: the others' hard failures in the buckets since this
        // instance's own run began, newest first, up to the newest bucket where the others had a
        // success (whose order against the failures a sum cannot tell).
        let mut run = 0u32;
        if pr.circuit.state == CircuitState::Healthy
            && pr.health.runs.hard > 0
            && let Some(n) = p.consecutive_failures
        {
            let since = pr.health.hard_run_since;
            let first = since / width;
            let from = first.max(oldest);
            let mut stamp = idx + 1;
            while stamp >= from {
                let s = &sh.others[(stamp % B as u64) as usize];
                if s.stamp == stamp {
                    let c = &s.counts.counts;
                    let client = if p.count_client_errors {
                        c.client_error
                    } else {
                        0
                    };
                    let failed = c
                        .server_error
                        .saturating_add(c.connection_error)
                        .saturating_add(client);
                    if c.success > 0 {
                        if stamp == first {
                            // The bucket where this run began: its successes may all precede
                            // the run. At even traffic the part after the run's start holds
                            // `tail / width` of its calls: if that leaves no success, count that
                            // share of its failures.
                            let tail = (stamp + 1) * width
                                - since.clamp(stamp * width, (stamp + 1) * width);
                            let share = |n: u32| (u64::from(n) * tail / width) as u32;
                            if share(c.success) == 0 {
                                run = run.saturating_add(share(failed));
                            }
                        }
                        break;
                    }
                    run = run.saturating_add(failed);
                }
                if stamp == 0 {
                    break;
                }
                stamp -= 1;
            }
            pr.health.set_fleet_run(run, quorum.saturating_mul(n));
        } else {
            pr.health.set_fleet_run(0, 0);
        }
        sh.register = sh.register.join(snap.register);
        sh.store_behind = sh.register != snap.register;
        sh.lease_holder = snap.lease_holder;
        let reg = sh.register;
        let live = self.live;
        let fleet_reason = Reason {
            trigger: Trigger::FleetOpen,
            observed: u64::from(snap.voters),
            threshold: u64::from(quorum),
            volume: u64::from(live),
            outcome: None,
        };
        let state = pr.circuit.state;
        if reg.open_in_force(now) && reg.epoch > sh.followed {
            let reason = if state != CircuitState::Healthy {
                Some(fleet_reason)
            } else if let Some(r) = pr.health.judge(p, now) {
                Some(r)
            } else if snap.voters >= quorum {
                Some(fleet_reason)
            } else {
                None
            };
            if let Some(r) = reason {
                pr.health.timeout_breach_since = None;
                pr.circuit.adopt_open(p, id, r, reg.open_until_ms, now, ev);
                sh.followed = reg.epoch;
                sh.seen_generation = pr.circuit.generation;
            }
        } else if reg.epoch == sh.followed
            && reg.open_in_force(now)
            && pr.circuit.state == CircuitState::Open
            && reg.open_until_ms > pr.circuit.open_until
        {
            // Within an epoch the later open-until wins.
            pr.circuit.open_until = reg.open_until_ms;
        }
        if reg.epoch > 0 && reg.ramp_start_ms != 0 && reg.epoch >= sh.followed {
            let follow = match pr.circuit.state {
                CircuitState::Open | CircuitState::Probing => true,
                CircuitState::Ramping => reg.epoch == sh.followed,
                CircuitState::Healthy => false,
            };
            if follow {
                let was = pr.circuit.state;
                if pr.circuit.follow_ramp(p, id, reg.ramp_start_ms, now, ev)
                    && was != CircuitState::Ramping
                {
                    pr.health.reset(p);
                }
                sh.followed = reg.epoch;
                sh.seen_generation = pr.circuit.generation;
            }
        }
        pr.circuit.probe_hold = sh.lease_holder != Some(self.instance);
        if pr.circuit.state == CircuitState::Healthy
            && let Some(r) = pr.health.judge(p, now)
        {
            // The merged window trips a rate trigger no single instance saw: an open of this
            // instance's own (exported, with its vote, on the next round).
            pr.health.timeout_breach_since = None;
            pr.circuit.trip(p, id, r, now, ev);
        }
    }
}
