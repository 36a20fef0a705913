//! The recovery ramp: the share a recovering provider takes at each stage, the exact
//! deterministic split of requests, and the per-stage figures that decide advance or rollback.

use crate::event::{Reason, Trigger};
use crate::outcome::OutcomeKind;
use crate::policy::Compiled;
use crate::triggers::{rate_ppm, reaches};
use crate::window::WindowStats;

/// The rollback rule: while ramping, failures (hard failures and timeouts) / counted calls in the
/// provider's rolling window reach `ramp_rollback_threshold`, with at least `ramp_min_samples`
/// calls. The window holds only ramped traffic (it is cleared when the ramp starts), and it rolls,
/// so a relapse late in a long stage is not diluted by the stage's earlier successes. (Ramped
/// traffic that succeeds but slowly is caught by the latency-degradation trigger, which judges
/// the same window: its median, not single calls, since LLM latencies are heavy-tailed.)
pub(crate) fn rollback(p: &Compiled, s: &WindowStats, kind: OutcomeKind) -> Option<Reason> {
    let failed = s.failures + s.timeouts;
    if p.is_failure(kind)
        && s.volume >= u64::from(p.ramp_min_samples)
        && reaches(failed, s.volume, p.ramp_rollback_ppm)
    {
        return Some(Reason {
            trigger: Trigger::RampRollback,
            observed: rate_ppm(failed, s.volume),
            threshold: u64::from(p.ramp_rollback_ppm),
            volume: s.volume,
            outcome: Some(kind),
        });
    }
    None
}

/// One million: a share of 1.0 in parts per million.
pub const FULL_SHARE: u32 = 1_000_000;

/// Where a ramping provider is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Ramp {
    /// Index in the policy's ramp.
    pub stage: usize,
    /// When the stage began.
    pub since: u64,
    /// Counted calls in this stage.
    pub samples: u32,
    /// Split accumulator in ppm: every request offered adds the share; a request is taken when it
    /// reaches one million. Exactly `share` of the offered requests are taken over any run.
    pub credit: u32,
}

impl Ramp {
    pub(crate) fn start(now: u64) -> Ramp {
        Ramp {
            since: now,
            ..Ramp::default()
        }
    }

    pub(crate) fn share_ppm(&self, p: &Compiled) -> u32 {
        p.ramp.get(self.stage).map_or(FULL_SHARE, |s| s.0)
    }

    /// Offers one request to the ramping provider. Returns whether it takes it.
    #[inline]
    pub(crate) fn offer(&mut self, share_ppm: u32) -> bool {
        self.credit += share_ppm;
        if self.credit >= FULL_SHARE {
            self.credit -= FULL_SHARE;
            true
        } else {
            false
        }
    }

    /// Counts an outcome of ramped traffic toward the stage's minimum sample.
    pub(crate) fn count(&mut self, p: &Compiled, kind: OutcomeKind) {
        if p.is_counted(kind) {
            self.samples = self.samples.saturating_add(1);
        }
    }

    /// When this stage may end: its dwell is over and it has its samples. `None` while the stage
    /// still lacks samples (the record that completes them re-arms it).
    pub(crate) fn stage_end(&self, p: &Compiled) -> Option<u64> {
        if self.samples < p.ramp_min_samples {
            return None;
        }
        let dwell = p.ramp.get(self.stage).map_or(0, |s| s.1);
        Some(self.since.saturating_add(dwell))
    }
}

/// A key's position in [0, 1 000 000) for one provider: a key is sent back to a ramping provider
/// when its position is below the provider's share, so raising the share only ever adds keys.
#[must_use]
pub fn key_position(key_hash: u64, provider_index: usize) -> u32 {
    let x = splitmix64(key_hash ^ (provider_index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    (x % u64::from(FULL_SHARE)) as u32
}

/// Hashes a caller's key (a conversation id, a user id) for keyed picks: 64-bit FNV-1a. Stable
/// across versions, platforms and languages.
#[must_use]
pub fn hash_key(key: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// SplitMix64's finaliser: a fast, well-mixed 64-bit permutation.
#[must_use]
pub(crate) fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_in_four_at_a_quarter() {
        let mut r = Ramp::default();
        let taken: heapless::Vec<bool, 12> = (0..12).map(|_| r.offer(250_000)).collect();
        assert_eq!(
            taken[..],
            [
                false, false, false, true, false, false, false, true, false, false, false, true
            ]
        );
        let mut r = Ramp::default();
        assert_eq!((0..1000).filter(|_| r.offer(50_000)).count(), 50);
    }

    #[test]
    fn keys_are_monotone_in_share() {
        for k in 0..200u64 {
            let h = hash_key(&k.to_le_bytes());
            let pos = key_position(h, 0);
            let at5 = pos < 50_000;
            let at25 = pos < 250_000;
            assert!(!at5 || at25);
        }
        // FNV-1a test vector.
        assert_eq!(hash_key(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
