//! Fleet mode: many instances of one service share what they learn about the providers through a
//! store (Redis in the bindings), off the request path. Everything here is plain fixed-size data
//! and a sans-IO state machine: the core says what to write and when, the binding performs the
//! I/O and hands back what it read. `docs/fleet.md` gives the store's key layout (Redis, with hash
//! tags for Cluster and TTLs on every key) and the op budget.
//!
//! # What is shared
//!
//! - **Window counts, as deltas.** Each round an instance exports, per provider, what its window's
//!   grid-aligned buckets gained since its last export ([`BucketCounts`], keyed by the bucket's
//!   grid index `t / bucket_ms`). The store adds them up per grid index, so the fleet's window is
//!   the bucket-by-bucket sum. A delta is handed out once: the export moves its cursor whether or
//!   not the write then succeeds, so nothing is ever written twice (a lost write undercounts,
//!   which is safe; a replayed one would double count and trip circuits). Buckets older than the
//!   window are never exported, whatever happened before.
//! - **The circuit register** ([`Register`]): an epoch, an open-until and a ramp start. It merges
//!   as a join (commutative, associative, idempotent): the newer epoch wins; within one epoch the
//!   later open-until and the later ramp start win.
//! - **Votes**: an instance that opened a provider on its own evidence refreshes a vote for the
//!   register's epoch while its open lasts; the store counts the live voters.
//! - **A probe lease** per provider, held by one instance at a time for `lease_ms`.
//! - **Isolation by hand**, in the register: an isolation ([`crate::Router::isolate`]) on any
//!   instance publishes a new epoch whose open-until is [`ISOLATED`] ("until released"), and a
//!   release publishes a newer epoch with nothing in force ([`Register::release`]). Every instance
//!   follows the newest: it isolates or releases the provider on the round that reads it, without
//!   quorum (an operator's decision, not evidence). The last operator action anywhere wins.
//!
//! # What each instance decides from it
//!
//! - The rate triggers (error rate, sustained timeouts, slow calls, latency degradation) judge
//!   the merged window: this instance's own window plus what the others counted (the fleet's sums
//!   minus this instance's own exports). The merged figures are refreshed on every round, so
//!   they lag by at most one period.
//! - The consecutive-failure run merges too, as far as sums allow: an instance with a run of hard
//!   failures of its own counts, besides that run, the hard failures the others exported in the
//!   buckets since it began, newest first, up to the newest bucket where the others had a
//!   success (in the bucket where the run began, whose successes may all precede it, the share
//!   of its calls after the run's start, at even traffic, when that share holds no success). It
//!   opens when the sum reaches quorum × `consecutive_failures` (at the next failure, or at the
//!   round that brings the others' counts). It needs a run on this instance and failures on
//!   others: the others' failures never open an instance whose own calls succeed, and this
//!   instance's own run alone is the local trigger's. With [`Fleet::watch`] pushing each
//!   failure of a run at once, the calls wasted fleet-wide at an outage's onset stay within
//!   quorum × limit + the fleet's rate × one period (issue #14's bound; `tests/fleet.rs`).
//! - A healthy instance adopts an open in the register (a newer epoch than the one it follows,
//!   still in force) when the merged window trips it or when at least a quorum of the live
//!   instances voted for it: `max(quorum_min, ⌈quorum × live⌉)`, by default
//!   `max(2, ⌈30 % × live⌉)`. One instance that alone sees failures (its own network) does not
//!   open the others. An instance that is not healthy itself (open, probing, ramping) follows the
//!   register's newer epoch: a failed probe or a ramp rollback anywhere reopens everywhere.
//! - Only the holder of the probe lease probes; the others hold their probe permits. When the
//!   holder's probes confirm recovery it publishes the ramp start, and every instance computes the
//!   same ramp stage from it (each stage lasts its dwell from the shared start).
//! - After `degraded_after` failed rounds in a row the instance is degraded: it drops the fleet's
//!   counts, releases every probe hold and runs on local knowledge alone until a round succeeds.
//!
//! # Time
//!
//! Fleet mode needs wall-clock inputs (Unix milliseconds) in every router input, so that the
//! buckets of different instances line up on one grid. When that clock steps: backwards, the
//! router treats every input as its latest time until the clock catches up (its counts land in
//! the bucket of that latest time, at most the step early for the others); forwards, the window
//! jumps ahead (its older buckets expire early, as after an idle gap) and its exports land in
//! buckets the others reach later — still added, never lost, and the others count sums up to one
//! bucket ahead of their own clock so a skew below one bucket changes nothing. A timestamp-driven
//! open-until or ramp start written by an instance whose clock is off is off by that much for
//! everyone.

mod sync;
pub mod wire;

pub use crate::window::Counts;
use crate::window::LATENCY_BINS;
pub use sync::Fleet;

/// The Redis round script (Lua, for `EVAL`/`EVALSHA`) that performs one round's writes and
/// reads exactly as `docs/fleet.md` lays out the keys: the heartbeat, the counter deltas
/// (`HINCRBY`), the register's compare-and-set of [`Register::join`], the vote, the probe lease
/// (`SET NX PX`) and the reads, in one call. Shared by every binding so that they all write the
/// same keys; its header comment gives the argument and reply layout.
pub const REDIS_ROUND_SCRIPT: &str = include_str!("round.lua");

/// Buckets one provider's part of an export or a snapshot can hold: an export carries at most
/// this many bucket deltas per provider (the rest wait for the next round) and a snapshot the
/// fleet's sums of this many grid indexes (the latest ones).
pub const SYNC_BUCKETS: usize = 16;

/// One bucket's counts on the shared grid: a delta in an [`Export`], the fleet's sum in a
/// [`Snapshot`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BucketCounts {
    /// Grid index of the bucket: `bucket start ms / bucket_ms`.
    pub stamp: u64,
    /// Counts per outcome kind.
    pub counts: Counts,
    /// Latency histogram of the successes (the window's half-octave bins).
    pub hist: [u32; LATENCY_BINS],
}

impl BucketCounts {
    /// No counts at grid index 0.
    pub const ZERO: BucketCounts = BucketCounts {
        stamp: 0,
        counts: Counts {
            success: 0,
            slow: 0,
            rate_limited: 0,
            server_error: 0,
            connection_error: 0,
            timeout: 0,
            client_error: 0,
        },
        hist: [0; LATENCY_BINS],
    };

    /// Whether it counts nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.counts == Counts::default() && self.hist.iter().all(|&n| n == 0)
    }

    /// Adds `other`'s counts and histogram (saturating): what the store does with deltas.
    pub fn add(&mut self, other: &BucketCounts) {
        self.zip(other, u32::saturating_add);
    }

    /// `self − other`, field by field, saturating at zero.
    pub(crate) fn minus(&self, other: &BucketCounts) -> BucketCounts {
        let mut d = *self;
        d.zip(other, u32::saturating_sub);
        d
    }

    /// Whether some field of `self` is below `other`'s.
    pub(crate) fn any_below(&self, other: &BucketCounts) -> bool {
        let mut below = false;
        let mut probe = *self;
        probe.zip(other, |a, b| {
            below |= a < b;
            a
        });
        below
    }

    fn zip(&mut self, o: &BucketCounts, mut f: impl FnMut(u32, u32) -> u32) {
        let (c, d) = (&mut self.counts, &o.counts);
        c.success = f(c.success, d.success);
        c.slow = f(c.slow, d.slow);
        c.rate_limited = f(c.rate_limited, d.rate_limited);
        c.server_error = f(c.server_error, d.server_error);
        c.connection_error = f(c.connection_error, d.connection_error);
        c.timeout = f(c.timeout, d.timeout);
        c.client_error = f(c.client_error, d.client_error);
        for (h, &n) in self.hist.iter_mut().zip(o.hist.iter()) {
            *h = f(*h, n);
        }
    }
}

/// A provider's circuit as the fleet shares it. Merges as a join: see [`Register::join`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Register {
    /// Bumped by the instance that opens the provider when no open is in force (0: never
    /// opened). Instances that open it while an open is in force join that epoch.
    pub epoch: u64,
    /// Until when the provider is open in this epoch, Unix ms.
    pub open_until_ms: u64,
    /// When the lease holder's probes confirmed recovery and the ramp began, Unix ms (0: not
    /// yet).
    pub ramp_start_ms: u64,
}

impl Register {
    /// The merge of two registers: the newer epoch wins whole; within one epoch the later
    /// open-until and the later ramp start win. Commutative, associative and idempotent, so the
    /// order in which instances write does not matter. O(1).
    #[must_use]
    pub fn join(self, other: Register) -> Register {
        match self.epoch.cmp(&other.epoch) {
            core::cmp::Ordering::Less => other,
            core::cmp::Ordering::Greater => self,
            core::cmp::Ordering::Equal => Register {
                epoch: self.epoch,
                open_until_ms: self.open_until_ms.max(other.open_until_ms),
                ramp_start_ms: self.ramp_start_ms.max(other.ramp_start_ms),
            },
        }
    }

    /// An open is in force at `now`: open-until ahead and no ramp started. An isolation
    /// ([`Register::isolation`]) is not an open: it is never adopted as one.
    #[must_use]
    pub fn open_in_force(&self, now: u64) -> bool {
        self.epoch > 0
            && self.open_until_ms > now
            && self.open_until_ms < ISOLATED_FROM
            && self.ramp_start_ms == 0
    }

    /// The register of an isolation by hand ([`crate::Router::isolate`]) that `epoch` publishes:
    /// open-until is the sentinel [`ISOLATED`] ("until released"). Every instance isolates the
    /// provider when it reads it (no quorum: it is an operator's decision); within its epoch it
    /// wins every join (no open-until is later), so an open published at the same time cannot
    /// undo it. O(1).
    #[must_use]
    pub const fn isolation(epoch: u64) -> Register {
        Register {
            epoch,
            open_until_ms: ISOLATED,
            ramp_start_ms: 0,
        }
    }

    /// The register of a release ([`crate::Router::release`]) that `epoch` publishes: a newer
    /// epoch with nothing in force (open-until 0), which ends the isolation everywhere. O(1).
    #[must_use]
    pub const fn release(epoch: u64) -> Register {
        Register {
            epoch,
            open_until_ms: 0,
            ramp_start_ms: 0,
        }
    }

    /// Whether this register isolates the provider: its open-until is at least
    /// [`ISOLATED_FROM`] (the [`ISOLATED`] sentinel, moved by no more than a binding's clock
    /// translation).
    #[must_use]
    pub const fn is_isolation(&self) -> bool {
        self.epoch > 0 && self.open_until_ms >= ISOLATED_FROM
    }
}

/// The open-until of a register that isolates its provider by hand until released
/// ([`Register::isolation`]): 2^63 ms, a time no clock reaches. The store and the wire format
/// carry it like any other open-until. It is not `u64::MAX` because the bindings translate
/// register times between the router's clock and the store's Unix ms by adding and subtracting
/// an offset (`to_store`), which must neither overflow nor saturate it away: any such offset
/// (decades of ms at most) keeps it above [`ISOLATED_FROM`].
pub const ISOLATED: u64 = 1 << 63;

/// Every open-until from 2^62 ms on (about 146 million years) is an isolation
/// ([`Register::is_isolation`]): the [`ISOLATED`] sentinel after any clock translation.
pub const ISOLATED_FROM: u64 = 1 << 62;

/// What one round writes for one provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProviderExport {
    /// The bucket deltas, oldest first: `buckets[..len]`. Add each to the store's sum for its
    /// grid index (written once: never retry a failed write).
    pub buckets: [BucketCounts; SYNC_BUCKETS],
    /// How many of `buckets` are used.
    pub len: usize,
    /// A register to join into the store's (a compare-and-set: read, [`Register::join`], write
    /// if it changed). `None`: nothing to change.
    pub register: Option<Register>,
    /// Refresh this instance's vote for the open of this epoch (it opened the provider on its own
    /// evidence and the open lasts).
    pub vote: Option<u64>,
    /// Take or renew the probe lease for `lease_ms` (granted only if free or already ours).
    pub want_lease: bool,
}

impl ProviderExport {
    /// Nothing to write.
    pub const EMPTY: ProviderExport = ProviderExport {
        buckets: [BucketCounts::ZERO; SYNC_BUCKETS],
        len: 0,
        register: None,
        vote: None,
        want_lease: false,
    };

    /// The bucket deltas to add.
    #[must_use]
    pub fn deltas(&self) -> &[BucketCounts] {
        &self.buckets[..self.len]
    }
}

/// What one round writes: per provider (in the router's order) its [`ProviderExport`], plus this
/// instance's heartbeat. Fixed size; fill it with [`Fleet::poll_transmit`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Export<const P: usize> {
    /// This instance's id.
    pub instance: u32,
    /// The round this export belongs to.
    pub round: u64,
    /// When it was made, Unix ms (the heartbeat's score: the instance is live for
    /// `live_periods` periods after it).
    pub at_ms: u64,
    /// The fleet's sums to read back, by grid index: `read_from..=read_to`, the latest indexes,
    /// those that may have grown since the previous round (`⌈2 × longest period / bucket⌉ + 3`
    /// of them, at most [`SYNC_BUCKETS`]; 6 with the defaults). Older ones are kept from earlier
    /// rounds.
    pub read_from: u64,
    /// See `read_from`.
    pub read_to: u64,
    /// Live instances are those whose heartbeat is at or after this time, Unix ms.
    pub live_since_ms: u64,
    /// Per provider: `providers[..len]`.
    pub providers: [ProviderExport; P],
    /// How many providers.
    pub len: usize,
}

impl<const P: usize> Export<P> {
    /// An empty export.
    #[must_use]
    pub const fn new() -> Self {
        Export {
            instance: 0,
            round: 0,
            at_ms: 0,
            read_from: 0,
            read_to: 0,
            live_since_ms: 0,
            providers: [ProviderExport::EMPTY; P],
            len: 0,
        }
    }
}

impl<const P: usize> Default for Export<P> {
    fn default() -> Self {
        Self::new()
    }
}

/// What the fleet knows about one provider, as read back in a round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProviderSnapshot {
    /// The fleet's sums for the grid indexes asked for (`sums[..len]`, any order; an index with
    /// nothing stored may be left out).
    pub sums: [BucketCounts; SYNC_BUCKETS],
    /// How many of `sums` are used.
    pub len: usize,
    /// The store's register.
    pub register: Register,
    /// Live instances whose vote is for `register.epoch`.
    pub voters: u32,
    /// The instance holding the probe lease, if one does.
    pub lease_holder: Option<u32>,
}

impl ProviderSnapshot {
    /// Nothing known.
    pub const EMPTY: ProviderSnapshot = ProviderSnapshot {
        sums: [BucketCounts::ZERO; SYNC_BUCKETS],
        len: 0,
        register: Register {
            epoch: 0,
            open_until_ms: 0,
            ramp_start_ms: 0,
        },
        voters: 0,
        lease_holder: None,
    };

    /// Adds a sum; false (and nothing changed) when full.
    pub fn push_sum(&mut self, sum: BucketCounts) -> bool {
        if self.len == SYNC_BUCKETS {
            return false;
        }
        self.sums[self.len] = sum;
        self.len += 1;
        true
    }
}

/// What one round read back from the store: the live instances and per provider (in the router's
/// order) its [`ProviderSnapshot`]. Fixed size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot<const P: usize> {
    /// Instances whose heartbeat is at or after the export's `live_since_ms` (this one included).
    pub live_instances: u32,
    /// Per provider: `providers[..len]`.
    pub providers: [ProviderSnapshot; P],
    /// How many providers.
    pub len: usize,
}

impl<const P: usize> Snapshot<P> {
    /// An empty snapshot.
    #[must_use]
    pub const fn new() -> Self {
        Snapshot {
            live_instances: 0,
            providers: [ProviderSnapshot::EMPTY; P],
            len: 0,
        }
    }
}

impl<const P: usize> Default for Snapshot<P> {
    fn default() -> Self {
        Self::new()
    }
}

/// How an instance takes part in the fleet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FleetConfig {
    /// Time between rounds, ms: 250–5000, default 1000.
    pub period_ms: u64,
    /// Each round's period is jittered by up to ± this fraction, in ppm (deterministic from
    /// `seed`, the instance and the round): 0–500 000, default 100 000 (± 10 %).
    pub jitter_ppm: u32,
    /// Seeds the jitter.
    pub seed: u64,
    /// An instance is live while its last round is at most this many periods old: ≥ 1, default 3.
    pub live_periods: u32,
    /// Failed rounds in a row after which the instance is degraded: ≥ 1, default 3.
    pub degraded_after: u32,
    /// The quorum's share of the live instances, in ppm (rounded up): 1–1 000 000, default
    /// 300 000.
    pub quorum_ppm: u32,
    /// The smallest quorum: ≥ 1, default 2 (so one instance alone never opens the others).
    pub quorum_min: u32,
    /// How long the probe lease lasts, ms: more than a period plus its jitter, default 3000.
    pub lease_ms: u64,
}

impl Default for FleetConfig {
    fn default() -> Self {
        FleetConfig {
            period_ms: 1000,
            jitter_ppm: 100_000,
            seed: 0,
            live_periods: 3,
            degraded_after: 3,
            quorum_ppm: 300_000,
            quorum_min: 2,
            lease_ms: 3000,
        }
    }
}

/// A fleet configuration that breaks a rule (each variant says which).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FleetConfigError {
    /// `period_ms` must be 250–5000.
    PeriodOutOfRange,
    /// `jitter_ppm` must be at most 500 000.
    JitterOutOfRange,
    /// `live_periods`, `degraded_after` and `quorum_min` must be at least 1.
    ZeroCount,
    /// `quorum_ppm` must be 1–1 000 000.
    QuorumOutOfRange,
    /// `lease_ms` must be longer than the longest jittered period.
    LeaseTooShort,
    /// A round reads back more grid indexes than a snapshot holds: `⌈2 × longest jittered period
    /// / bucket_ms⌉ + 3` must be at most `SYNC_BUCKETS` (so the period at most 6.5 buckets).
    PeriodTooLongForBuckets,
}

impl core::fmt::Display for FleetConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            FleetConfigError::PeriodOutOfRange => "period_ms must be 250–5000",
            FleetConfigError::JitterOutOfRange => "jitter must be at most 50 %",
            FleetConfigError::ZeroCount => {
                "live_periods, degraded_after and quorum_min must be at least 1"
            }
            FleetConfigError::QuorumOutOfRange => "quorum must be in (0, 1]",
            FleetConfigError::LeaseTooShort => "lease_ms must exceed the longest jittered period",
            FleetConfigError::PeriodTooLongForBuckets => {
                "the longest jittered period must be at most 6.5 window buckets"
            }
        })
    }
}

impl core::error::Error for FleetConfigError {}

impl FleetConfigError {
    /// A stable snake_case name for the broken rule (`"period_out_of_range"`, …): the `code` the
    /// bindings give their configuration errors.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            FleetConfigError::PeriodOutOfRange => "period_out_of_range",
            FleetConfigError::JitterOutOfRange => "jitter_out_of_range",
            FleetConfigError::ZeroCount => "zero_count",
            FleetConfigError::QuorumOutOfRange => "quorum_out_of_range",
            FleetConfigError::LeaseTooShort => "lease_too_short",
            FleetConfigError::PeriodTooLongForBuckets => "period_too_long_for_buckets",
        }
    }
}

impl FleetConfig {
    /// The longest jittered period, ms.
    #[must_use]
    pub fn max_period_ms(&self) -> u64 {
        self.period_ms + self.period_ms * u64::from(self.jitter_ppm) / 1_000_000
    }

    /// Checks every rule (the bucket rule needs the router: see [`Fleet::new`]).
    pub fn validate(&self) -> Result<(), FleetConfigError> {
        if !(250..=5000).contains(&self.period_ms) {
            return Err(FleetConfigError::PeriodOutOfRange);
        }
        if self.jitter_ppm > 500_000 {
            return Err(FleetConfigError::JitterOutOfRange);
        }
        if self.live_periods == 0 || self.degraded_after == 0 || self.quorum_min == 0 {
            return Err(FleetConfigError::ZeroCount);
        }
        if self.quorum_ppm == 0 || self.quorum_ppm > 1_000_000 {
            return Err(FleetConfigError::QuorumOutOfRange);
        }
        if self.lease_ms <= self.max_period_ms() {
            return Err(FleetConfigError::LeaseTooShort);
        }
        Ok(())
    }

    /// The quorum among `live` instances: `max(quorum_min, ⌈quorum_ppm × live / 10⁶⌉)`.
    #[must_use]
    pub fn quorum(&self, live: u32) -> u32 {
        let share = (u64::from(live) * u64::from(self.quorum_ppm)).div_ceil(1_000_000);
        (share as u32).max(self.quorum_min)
    }
}

/// Something that happened to this instance's place in the fleet, drained with
/// [`Fleet::poll_event`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FleetEvent {
    /// `failures` rounds in a row failed: from now on the instance runs on local knowledge alone.
    Degraded {
        /// When, ms.
        at_ms: u64,
        /// Failed rounds in a row.
        failures: u32,
    },
    /// A round succeeded again after the instance was degraded.
    Resumed {
        /// When, ms.
        at_ms: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Outcome, Policy, Router};

    #[test]
    fn the_register_join_is_a_semilattice() {
        let regs = [
            Register::default(),
            Register {
                epoch: 1,
                open_until_ms: 500,
                ramp_start_ms: 0,
            },
            Register {
                epoch: 1,
                open_until_ms: 700,
                ramp_start_ms: 0,
            },
            Register {
                epoch: 1,
                open_until_ms: 600,
                ramp_start_ms: 900,
            },
            Register {
                epoch: 2,
                open_until_ms: 100,
                ramp_start_ms: 0,
            },
            Register::isolation(2),
            Register::release(3),
        ];
        for &a in &regs {
            assert_eq!(a.join(a), a, "idempotent");
            for &b in &regs {
                assert_eq!(a.join(b), b.join(a), "commutative");
                for &c in &regs {
                    assert_eq!(a.join(b).join(c), a.join(b.join(c)), "associative");
                }
            }
        }
        // A newer epoch wins whole, even with an earlier open-until.
        assert_eq!(regs[2].join(regs[4]), regs[4]);
        // Within an epoch, the later open-until and ramp start.
        assert_eq!(
            regs[2].join(regs[3]),
            Register {
                epoch: 1,
                open_until_ms: 700,
                ramp_start_ms: 900
            }
        );
        assert!(regs[2].open_in_force(600) && !regs[2].open_in_force(700));
        assert!(
            !regs[3].open_in_force(0),
            "a ramp started: no open in force"
        );
        // An isolation wins its epoch whatever the open-until; it is not an open in force; a
        // release (a newer epoch) ends it.
        assert_eq!(regs[4].join(regs[5]), regs[5]);
        assert!(regs[5].is_isolation() && !regs[5].open_in_force(0));
        assert_eq!(regs[5].join(regs[6]), regs[6]);
        assert!(!regs[6].is_isolation() && !regs[6].open_in_force(0));
    }

    #[test]
    fn quorum_rounds_up_with_a_floor_of_two() {
        let c = FleetConfig::default();
        assert_eq!(c.quorum(1), 2);
        assert_eq!(c.quorum(3), 2);
        assert_eq!(c.quorum(7), 3);
        assert_eq!(c.quorum(10), 3);
        assert_eq!(c.quorum(11), 4);
        assert_eq!(c.quorum(1000), 300);
    }

    #[test]
    fn config_rules() {
        let ok = FleetConfig::default();
        assert_eq!(ok.validate(), Ok(()));
        let bad = |f: fn(&mut FleetConfig)| {
            let mut c = ok;
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert_eq!(
            bad(|c| c.period_ms = 249),
            FleetConfigError::PeriodOutOfRange
        );
        assert_eq!(
            bad(|c| c.period_ms = 5001),
            FleetConfigError::PeriodOutOfRange
        );
        assert_eq!(
            bad(|c| c.jitter_ppm = 500_001),
            FleetConfigError::JitterOutOfRange
        );
        assert_eq!(bad(|c| c.quorum_min = 0), FleetConfigError::ZeroCount);
        assert_eq!(
            bad(|c| c.quorum_ppm = 0),
            FleetConfigError::QuorumOutOfRange
        );
        assert_eq!(bad(|c| c.lease_ms = 1100), FleetConfigError::LeaseTooShort);
        // 5 s rounds need buckets of at least 5.5 s / 14.
        let r: Router<2, 120> = Router::new(
            &Policy {
                bucket_ms: 100,
                window_ms: 10_000,
                ..Policy::default()
            },
            &["a", "b"],
        )
        .unwrap();
        let slow = FleetConfig {
            period_ms: 5000,
            lease_ms: 20_000,
            ..ok
        };
        assert_eq!(
            Fleet::<2, 120>::new(slow, 0, &r).unwrap_err(),
            FleetConfigError::PeriodTooLongForBuckets
        );
    }

    #[test]
    fn rounds_are_jittered_deterministically_within_bounds() {
        let r: Router<2, 60> = Router::new(&Policy::default(), &["a", "b"]).unwrap();
        let run = |seed: u64, instance: u32| {
            let mut f = Fleet::<2, 60>::new(
                FleetConfig {
                    seed,
                    ..FleetConfig::default()
                },
                instance,
                &r,
            )
            .unwrap();
            let mut r = r.clone();
            let mut e = Export::<2>::new();
            let mut gaps = [0u64; 20];
            let mut now = 1_000_000;
            for g in &mut gaps {
                let round = f.poll_transmit(&mut r, now, &mut e).unwrap();
                f.handle_snapshot(&mut r, round, &Snapshot::new(), now);
                let next = f.poll_timeout().unwrap();
                *g = next - now;
                assert!(
                    f.poll_transmit(&mut r, next - 1, &mut e).is_none(),
                    "not yet due"
                );
                now = next;
            }
            gaps
        };
        let a = run(7, 1);
        assert_eq!(a, run(7, 1), "same seed and instance, same schedule");
        assert_ne!(a, run(7, 2), "instances are spread apart");
        assert!(a.iter().all(|&g| (900..=1100).contains(&g)), "{a:?}");
        assert!(a.iter().any(|&g| g != 1000));
    }

    #[test]
    fn a_delta_is_handed_out_once_even_when_its_write_fails() {
        let mut r: Router<2, 60> = Router::new(&Policy::default(), &["a", "b"]).unwrap();
        let mut f = Fleet::<2, 60>::new(FleetConfig::default(), 0, &r).unwrap();
        let mut e = Export::<2>::new();
        let id = r.provider_at(0).unwrap();
        let t = 1_764_000_000_000u64;
        r.observe(id, Outcome::success(100), t);
        r.observe(id, Outcome::server_error(5), t + 10);
        let round = f.poll_transmit(&mut r, t + 20, &mut e).unwrap();
        let d = e.providers[0].deltas();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].stamp, t / 1000);
        assert_eq!((d[0].counts.success, d[0].counts.server_error), (1, 1));
        f.handle_failure(&mut r, round, t + 30);
        // The next round, in the same bucket: only what is new since.
        r.observe(id, Outcome::success(100), t + 40);
        f.sync_now(t + 50);
        f.poll_transmit(&mut r, t + 50, &mut e).unwrap();
        let d = e.providers[0].deltas();
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].counts.success, d[0].counts.server_error), (1, 0));
        assert_eq!(d[0].hist.iter().sum::<u32>(), 1);
        // A round with nothing new writes no delta.
        f.handle_failure(&mut r, 2, t + 60);
        f.sync_now(t + 60);
        f.poll_transmit(&mut r, t + 60, &mut e).unwrap();
        assert!(e.providers[0].deltas().is_empty());
        // A stale answer (not the round in flight) changes nothing.
        assert!(!f.handle_snapshot(&mut r, 1, &Snapshot::new(), t + 70));
        assert!(f.handle_snapshot(&mut r, 3, &Snapshot::new(), t + 70));
    }

    #[test]
    fn a_window_cleared_by_a_ramp_exports_only_what_came_after() {
        let mut c = BucketCounts::ZERO;
        c.counts.success = 3;
        let mut sent = BucketCounts::ZERO;
        sent.counts.success = 5;
        sent.counts.server_error = 1;
        assert!(c.any_below(&sent));
        assert_eq!(c.minus(&sent).counts.success, 0);
        assert!(!sent.any_below(&c));
    }

    /// Epoch 0 ("never opened") is neither an open in force nor an isolation, whatever its
    /// open-until says; the isolation threshold belongs to the isolations, from exactly
    /// `ISOLATED_FROM` on.
    #[test]
    fn registers_at_the_edges_of_an_open_and_an_isolation() {
        let reg = |epoch, open_until_ms| Register {
            epoch,
            open_until_ms,
            ramp_start_ms: 0,
        };
        assert!(reg(1, 700).open_in_force(600));
        assert!(!reg(0, 700).open_in_force(600), "epoch 0");
        assert!(!reg(0, ISOLATED).is_isolation(), "epoch 0");
        assert!(reg(1, ISOLATED_FROM).is_isolation());
        assert!(!reg(1, ISOLATED_FROM).open_in_force(0));
        assert!(!reg(1, ISOLATED_FROM - 1).is_isolation());
        assert!(reg(1, ISOLATED_FROM - 1).open_in_force(0));
    }

    /// Each rule accepts its limit and rejects one past it; every count of `ZeroCount` is
    /// checked on its own.
    #[test]
    fn config_rules_at_each_limit() {
        let ok = FleetConfig::default();
        let with = |f: fn(&mut FleetConfig)| {
            let mut c = ok;
            f(&mut c);
            c.validate()
        };
        assert_eq!(with(|c| c.jitter_ppm = 500_000), Ok(()));
        assert_eq!(
            with(|c| c.jitter_ppm = 500_001),
            Err(FleetConfigError::JitterOutOfRange)
        );
        assert_eq!(
            with(|c| c.live_periods = 0),
            Err(FleetConfigError::ZeroCount)
        );
        assert_eq!(
            with(|c| c.degraded_after = 0),
            Err(FleetConfigError::ZeroCount)
        );
        assert_eq!(with(|c| c.quorum_ppm = 1_000_000), Ok(()));
        assert_eq!(
            with(|c| c.quorum_ppm = 1_000_001),
            Err(FleetConfigError::QuorumOutOfRange)
        );
        // The longest jittered period of the default: 1000 ms + 10 %.
        assert_eq!(ok.max_period_ms(), 1100);
        assert_eq!(with(|c| c.lease_ms = 1101), Ok(()));
    }

    /// Every rule's error has its stable code (what the bindings raise) and a message that names
    /// the rule.
    #[test]
    fn config_errors_have_their_codes_and_messages() {
        use std::string::ToString;
        let cases = [
            (
                FleetConfigError::PeriodOutOfRange,
                "period_out_of_range",
                "period_ms",
            ),
            (
                FleetConfigError::JitterOutOfRange,
                "jitter_out_of_range",
                "jitter",
            ),
            (FleetConfigError::ZeroCount, "zero_count", "quorum_min"),
            (
                FleetConfigError::QuorumOutOfRange,
                "quorum_out_of_range",
                "quorum",
            ),
            (
                FleetConfigError::LeaseTooShort,
                "lease_too_short",
                "lease_ms",
            ),
            (
                FleetConfigError::PeriodTooLongForBuckets,
                "period_too_long_for_buckets",
                "window buckets",
            ),
        ];
        for (e, code, says) in cases {
            assert_eq!(e.code(), code);
            let text = e.to_string();
            assert!(text.contains(says), "{code}: {text:?}");
        }
    }
}
