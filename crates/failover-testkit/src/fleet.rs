//! A model of the fleet's store: what Redis does with one round's writes and reads (see
//! `docs/fleet.md`), in memory, so that tests and scenario files can put several routers in one
//! fleet. Sums per grid index by addition, the register by join (the Lua compare-and-set), votes
//! and heartbeats as scored sets counted from a time on, the lease as `SET NX PX` (renewed by
//! its holder).

use std::collections::HashMap;

use failover_core::fleet::wire::field_values;
use failover_core::fleet::{BucketCounts, Export, ProviderSnapshot, Register, Snapshot};

/// The store: one per fleet.
#[derive(Clone, Debug, Default)]
pub struct MemStore {
    sums: HashMap<(usize, u64), BucketCounts>,
    registers: HashMap<usize, Register>,
    votes: HashMap<(usize, u64), HashMap<u32, u64>>,
    heartbeats: HashMap<u32, u64>,
    leases: HashMap<usize, (u32, u64)>,
    /// Bucket deltas written so far (every write, for tests that count them).
    pub deltas_written: u64,
    /// Redis commands the rounds would have run, counted as `docs/fleet.md`'s op budget counts
    /// them (the commands inside the round's script included).
    pub ops: u64,
}

impl MemStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets everything (a restarted, empty Redis).
    pub fn flush(&mut self) {
        *self = MemStore {
            deltas_written: self.deltas_written,
            ops: self.ops,
            ..MemStore::default()
        };
    }

    /// Adds a delta to the fleet's sum for one provider and grid index directly (a write of an
    /// instance outside the test, or a late replay).
    pub fn add(&mut self, provider: usize, delta: &BucketCounts) {
        self.sums
            .entry((provider, delta.stamp))
            .or_insert(BucketCounts {
                stamp: delta.stamp,
                ..BucketCounts::ZERO
            })
            .add(delta);
    }

    /// The fleet's sum for one provider and grid index.
    #[must_use]
    pub fn sum(&self, provider: usize, stamp: u64) -> Option<BucketCounts> {
        self.sums.get(&(provider, stamp)).copied()
    }

    /// The register of one provider.
    #[must_use]
    pub fn register(&self, provider: usize) -> Register {
        self.registers.get(&provider).copied().unwrap_or_default()
    }

    /// One round: applies `export`'s writes in order (heartbeat, deltas, register join, vote,
    /// lease for `lease_ms`), then reads what the round asks for into `out`.
    pub fn round<const P: usize>(
        &mut self,
        export: &Export<P>,
        lease_ms: u64,
        out: &mut Snapshot<P>,
    ) {
        let now = export.at_ms;
        let me = export.instance;
        self.heartbeats.insert(me, now);
        // ZADD, ZREMRANGEBYSCORE, PEXPIRE of the heartbeats; ZCOUNT of the live ones.
        self.ops += 4;
        for (i, pe) in export.providers[..export.len].iter().enumerate() {
            for d in pe.deltas() {
                self.add(i, d);
                self.deltas_written += 1;
            }
            // One HINCRBY per non-zero field, one PEXPIRE per bucket.
            self.ops += pe
                .deltas()
                .iter()
                .map(|d| 1 + nonzero_fields(d))
                .sum::<u64>();
            if let Some(r) = pe.register {
                let cur = self.register(i);
                self.registers.insert(i, cur.join(r));
                self.ops += 3; // HMGET, HSET, PEXPIRE (in the round's script)
            }
            if let Some(epoch) = pe.vote {
                self.votes.entry((i, epoch)).or_default().insert(me, now);
                self.ops += 2; // ZADD, PEXPIRE
            }
            if pe.want_lease {
                let free = self
                    .leases
                    .get(&i)
                    .is_none_or(|&(holder, until)| until <= now || holder == me);
                if free {
                    self.leases.insert(i, (me, now + lease_ms));
                }
                self.ops += 2; // GET, then SET NX PX or PEXPIRE
            }
        }
        let since = export.live_since_ms;
        out.live_instances = self.heartbeats.values().filter(|&&t| t >= since).count() as u32;
        out.len = export.len;
        for i in 0..export.len {
            let mut ps = ProviderSnapshot::EMPTY;
            for stamp in export.read_from..=export.read_to {
                if let Some(s) = self.sums.get(&(i, stamp)) {
                    ps.push_sum(*s);
                }
            }
            ps.register = self.register(i);
            ps.voters = self
                .votes
                .get(&(i, ps.register.epoch))
                .map_or(0, |v| v.values().filter(|&&t| t >= since).count() as u32);
            ps.lease_holder = self
                .leases
                .get(&i)
                .filter(|&&(_, until)| until > now)
                .map(|&(h, _)| h);
            out.providers[i] = ps;
            // One HGETALL per grid index read; HMGET register, ZCOUNT votes, GET lease.
            self.ops += export.read_to - export.read_from + 1 + 3;
        }
    }
}

/// The fields a round writes for bucket `d`: its non-zero ones (the wire's own list).
fn nonzero_fields(d: &BucketCounts) -> u64 {
    field_values(d).filter(|&(_, n)| n > 0).count() as u64
}
