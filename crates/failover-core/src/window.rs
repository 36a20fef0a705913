//! The rolling window: a ring of time buckets on a fixed grid (`bucket index = t / bucket_ms`),
//! with running totals of the completed buckets so every figure is O(1) to read (the totals plus
//! the current bucket).
//!
//! Recording is O(1) and touches only the current bucket. Moving to a new bucket adds the finished
//! bucket to the totals and expires the buckets that fell out of the window, at most one per
//! elapsed bucket and never more than the window's length, so an idle gap costs a bounded amount
//! once (a gap longer than the window clears the totals in O(1) and leaves stale buckets to be
//! recognised by their stamp).

use crate::outcome::{Outcome, OutcomeKind};

/// Number of latency histogram bins: half-octaves from 1 ms to about 49 s (the last bin holds
/// everything slower).
pub const LATENCY_BINS: usize = 32;

/// Which histogram bin a latency falls in: bin `2e` holds [2^e, 1.5·2^e) ms and bin `2e + 1`
/// holds [1.5·2^e, 2^(e+1)) ms; 0 ms counts as 1 ms.
#[inline(always)]
#[must_use]
pub fn latency_bin(latency_ms: u32) -> usize {
    let x = latency_ms.max(1);
    // e = 31 − lz; the bit after the leading one picks the half.
    let lz = x.leading_zeros();
    let half = ((x << lz) >> 30) & 1;
    ((62 - 2 * lz + half) as usize).min(LATENCY_BINS - 1)
}

/// The latency a bin stands for: the middle of its range, in ms.
#[must_use]
pub fn bin_value(bin: usize) -> u32 {
    let e = (bin / 2) as u32;
    let lo = 1u32 << e;
    if bin.is_multiple_of(2) {
        // [2^e, 1.5·2^e): middle 1.25·2^e.
        lo + lo / 4
    } else {
        // [1.5·2^e, 2^(e+1)): middle 1.75·2^e.
        lo + lo / 2 + lo / 4
    }
}

/// Counts per outcome kind, plus slow successes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Successful calls.
    pub success: u32,
    /// Successful calls at or above the slow-call limit (also counted in `success`).
    pub slow: u32,
    /// Rate-limited calls (not part of the volume).
    pub rate_limited: u32,
    /// Server errors.
    pub server_error: u32,
    /// Connection errors.
    pub connection_error: u32,
    /// Timeouts.
    pub timeout: u32,
    /// Client errors.
    pub client_error: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Bucket {
    /// Grid index this bucket holds (`t / bucket_ms`); `u64::MAX` when never used.
    stamp: u64,
    counts: Counts,
    hist: [u16; LATENCY_BINS],
}

const EMPTY: Bucket = Bucket {
    stamp: u64::MAX,
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

/// Running totals over the live buckets before the current one, wide enough never to overflow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    success: u64,
    slow: u64,
    rate_limited: u64,
    server_error: u64,
    connection_error: u64,
    timeout: u64,
    client_error: u64,
    latency_samples: u64,
}

impl Totals {
    /// Adds a bucket's counts (or, with `remove`, takes them away).
    #[inline]
    fn fold_counts(&mut self, c: &Counts, remove: bool) {
        let op = |t: &mut u64, n: u32| {
            if remove {
                *t -= u64::from(n);
            } else {
                *t += u64::from(n);
            }
        };
        op(&mut self.success, c.success);
        op(&mut self.slow, c.slow);
        op(&mut self.rate_limited, c.rate_limited);
        op(&mut self.server_error, c.server_error);
        op(&mut self.connection_error, c.connection_error);
        op(&mut self.timeout, c.timeout);
        op(&mut self.client_error, c.client_error);
    }

    /// Adds another set of totals' counts (not its samples).
    #[inline]
    fn fold_counts_wide(&mut self, o: &Totals) {
        self.success += o.success;
        self.slow += o.slow;
        self.rate_limited += o.rate_limited;
        self.server_error += o.server_error;
        self.connection_error += o.connection_error;
        self.timeout += o.timeout;
        self.client_error += o.client_error;
    }

    /// Adds a bucket (or, with `remove`, takes it away): its counts, its samples, and its
    /// histogram into `hist`.
    fn fold(&mut self, hist: &mut [u32; LATENCY_BINS], b: &Bucket, remove: bool) {
        self.fold_counts(&b.counts, remove);
        let samples = hist_sum(&b.hist);
        if remove {
            for (h, &n) in hist.iter_mut().zip(b.hist.iter()) {
                *h -= u32::from(n);
            }
            self.latency_samples -= samples;
        } else {
            for (h, &n) in hist.iter_mut().zip(b.hist.iter()) {
                *h += u32::from(n);
            }
            self.latency_samples += samples;
        }
    }
}

/// A provider's rolling window over `B` buckets at most (the policy chooses how many are used).
#[derive(Clone, Debug)]
pub struct Window<const B: usize> {
    buckets: [Bucket; B],
    /// Buckets in use (`window_ms / bucket_ms`), 1..=B.
    len: usize,
    width: u64,
    /// Grid index of the current bucket.
    cur: u64,
    /// Start time of the current bucket (`cur * width`).
    cur_start: u64,
    /// Ring slot of the current bucket (`cur % len`).
    cur_slot: usize,
    /// Buckets with a stamp below this were cleared by [`Window::reset`].
    valid_from: u64,
    /// Sums of the live buckets other than the current one (which holds its own counts).
    totals: Totals,
    /// Latency histogram of the same buckets.
    hist: [u32; LATENCY_BINS],
    /// What the rest of the fleet counted in this window (fleet mode; zero otherwise): added to
    /// every figure the triggers read, never to the buckets (see `crate::fleet`).
    remote: Addend,
}

/// Counts and a latency histogram added to a window's own (what other instances counted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Addend {
    totals: Totals,
    hist: [u32; LATENCY_BINS],
}

impl Addend {
    /// Nothing.
    pub(crate) const ZERO: Addend = Addend {
        totals: Totals {
            success: 0,
            slow: 0,
            rate_limited: 0,
            server_error: 0,
            connection_error: 0,
            timeout: 0,
            client_error: 0,
            latency_samples: 0,
        },
        hist: [0; LATENCY_BINS],
    };

    /// Adds one bucket's counts and histogram (saturating).
    pub(crate) fn add(&mut self, c: &Counts, hist: &[u32; LATENCY_BINS]) {
        self.totals.fold_counts(c, false);
        for (h, &n) in self.hist.iter_mut().zip(hist.iter()) {
            *h = h.saturating_add(n);
        }
        self.totals.latency_samples += hist.iter().map(|&n| u64::from(n)).sum::<u64>();
    }

    /// Takes away one bucket's counts and histogram added before (saturating at zero).
    pub(crate) fn sub(&mut self, c: &Counts, hist: &[u32; LATENCY_BINS]) {
        let t = &mut self.totals;
        let op = |t: &mut u64, n: u32| *t = t.saturating_sub(u64::from(n));
        op(&mut t.success, c.success);
        op(&mut t.slow, c.slow);
        op(&mut t.rate_limited, c.rate_limited);
        op(&mut t.server_error, c.server_error);
        op(&mut t.connection_error, c.connection_error);
        op(&mut t.timeout, c.timeout);
        op(&mut t.client_error, c.client_error);
        let mut n = 0u64;
        for (h, &x) in self.hist.iter_mut().zip(hist.iter()) {
            *h = h.saturating_sub(x);
            n += u64::from(x);
        }
        t.latency_samples = t.latency_samples.saturating_sub(n);
    }

    fn fold_into(&self, t: &mut Totals, hist: &mut [u32; LATENCY_BINS]) {
        t.success += self.totals.success;
        t.slow += self.totals.slow;
        t.rate_limited += self.totals.rate_limited;
        t.server_error += self.totals.server_error;
        t.connection_error += self.totals.connection_error;
        t.timeout += self.totals.timeout;
        t.client_error += self.totals.client_error;
        t.latency_samples += self.totals.latency_samples;
        for (h, &n) in hist.iter_mut().zip(self.hist.iter()) {
            *h = h.saturating_add(n);
        }
    }
}

/// A snapshot of a window's figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WindowStats {
    /// Calls that count toward rates: successes, server and connection errors, timeouts (and
    /// client errors when the policy counts them).
    pub volume: u64,
    /// Successful calls.
    pub successes: u64,
    /// Hard failures (server and connection errors; client errors when counted).
    pub failures: u64,
    /// Timeouts.
    pub timeouts: u64,
    /// Slow successes.
    pub slow: u64,
    /// Rate-limited calls (not in `volume`).
    pub rate_limited: u64,
    /// Client errors (in `volume` only when counted).
    pub client_errors: u64,
}

impl<const B: usize> Window<B> {
    /// An empty window of `len` buckets of `width` ms. `len` is clamped to 1..=B and `width` to ≥ 1;
    /// `B` must be at least 1 (checked at compile time).
    #[must_use]
    pub fn new(len: usize, width: u64) -> Self {
        const { assert!(B >= 1, "a window needs at least one bucket") };
        let mut buckets = [EMPTY; B];
        // The current bucket always carries its stamp (see `advance_slow`).
        buckets[0].stamp = 0;
        Window {
            buckets,
            len: len.clamp(1, B.max(1)),
            width: width.max(1),
            cur: 0,
            cur_start: 0,
            cur_slot: 0,
            valid_from: 0,
            totals: Totals::default(),
            hist: [0; LATENCY_BINS],
            remote: Addend::ZERO,
        }
    }

    /// Moves the window so that its current bucket holds `now`. Returns how many bucket
    /// boundaries were crossed (0 on the fast path). Time must not go backwards (the router
    /// clamps it); an earlier `now` is treated as the current bucket.
    #[inline]
    pub fn advance(&mut self, now: u64) -> u64 {
        if now < self.cur_start || now - self.cur_start < self.width {
            return 0;
        }
        self.advance_slow(now)
    }

    #[cold]
    fn advance_slow(&mut self, now: u64) -> u64 {
        let idx = now / self.width;
        let gap = idx - self.cur;
        let len = self.len as u64;
        if gap >= len {
            // Everything in the window expired, the current bucket too: clear the totals; the
            // stale buckets are recognised by their stamps.
            self.totals = Totals::default();
            self.hist = [0; LATENCY_BINS];
        } else {
            // The current bucket is complete: into the totals (after a reset it started empty).
            let b = self.buckets[self.cur_slot];
            self.totals.fold(&mut self.hist, &b, false);
            let mut slot = self.cur_slot;
            for j in self.cur + 1..=idx {
                slot += 1;
                if slot == self.len {
                    slot = 0;
                }
                let b = self.buckets[slot];
                if j.checked_sub(len) == Some(b.stamp) && b.stamp >= self.valid_from {
                    self.totals.fold(&mut self.hist, &b, true);
                }
            }
        }
        self.cur = idx;
        self.cur_start = idx * self.width;
        self.cur_slot = (idx % len) as usize;
        // Its old content (if any) was subtracted above or is stale: the new current bucket
        // starts empty, so recording never checks the stamp.
        self.buckets[self.cur_slot] = Bucket {
            stamp: idx,
            ..EMPTY
        };
        gap
    }

    /// Records an outcome in the current bucket (call [`Window::advance`] first). `slow` marks a
    /// success at or above the slow-call limit. Cancelled outcomes are not recorded.
    #[inline]
    pub fn record(&mut self, outcome: &Outcome, slow: bool) {
        let b = &mut self.buckets[self.cur_slot];
        debug_assert_eq!(b.stamp, self.cur, "the current bucket carries its stamp");
        // Counts saturate per bucket; the totals take what the bucket kept when it completes, so
        // subtracting the bucket later is exact.
        let c = &mut b.counts;
        let n = match outcome.kind {
            OutcomeKind::Success => {
                if slow {
                    c.slow = c.slow.saturating_add(1);
                }
                let bin = latency_bin(outcome.latency_ms);
                b.hist[bin] = b.hist[bin].saturating_add(1);
                &mut c.success
            }
            OutcomeKind::RateLimited => &mut c.rate_limited,
            // A cut stream counts as a server error, a stall as a timeout.
            OutcomeKind::ServerError | OutcomeKind::StreamCut => &mut c.server_error,
            OutcomeKind::ConnectionError => &mut c.connection_error,
            OutcomeKind::Timeout | OutcomeKind::Stalled => &mut c.timeout,
            OutcomeKind::ClientError => &mut c.client_error,
            OutcomeKind::Cancelled
            | OutcomeKind::Refused
            | OutcomeKind::CredentialsRejected
            | OutcomeKind::QuotaExhausted => return,
        };
        *n = n.saturating_add(1);
    }

    /// Records a success that is not slow (call [`Window::advance`] first).
    #[inline(always)]
    pub(crate) fn record_fast_success(&mut self, latency_ms: u32) {
        let b = &mut self.buckets[self.cur_slot];
        debug_assert_eq!(b.stamp, self.cur, "the current bucket carries its stamp");
        b.counts.success = b.counts.success.saturating_add(1);
        let bin = latency_bin(latency_ms);
        b.hist[bin] = b.hist[bin].saturating_add(1);
    }

    /// Forgets everything recorded so far, in O(1) (used when a recovering provider starts its
    /// ramp, so failures from before the outage do not judge it).
    pub fn reset(&mut self) {
        self.totals = Totals::default();
        self.hist = [0; LATENCY_BINS];
        // The current bucket starts again empty; older buckets are never subtracted.
        self.buckets[self.cur_slot] = Bucket {
            stamp: self.cur,
            ..EMPTY
        };
        self.valid_from = self.cur;
        self.remote = Addend::ZERO;
    }

    /// Sets what the rest of the fleet counted (replacing the previous addend). O(32).
    pub(crate) fn set_remote(&mut self, remote: &Addend) {
        self.remote = *remote;
    }

    /// Grid index, counts and histogram of every live bucket from grid index `from` on, oldest
    /// first (for the fleet's export). O(B).
    pub(crate) fn buckets_from(
        &self,
        from: u64,
    ) -> impl Iterator<Item = (u64, &Counts, &[u16; LATENCY_BINS])> + '_ {
        let len = self.len as u64;
        let first = from
            .max(self.cur.saturating_sub(len - 1))
            .max(self.valid_from);
        (first..=self.cur).filter_map(move |stamp| {
            let b = &self.buckets[(stamp % len) as usize];
            (b.stamp == stamp).then_some((stamp, &b.counts, &b.hist))
        })
    }

    /// Grid index of the current bucket and the bucket width in ms.
    pub(crate) fn grid(&self) -> (u64, u64, usize) {
        (self.cur, self.width, self.len)
    }

    /// The totals and histogram of the whole window: the completed buckets plus the current one.
    fn live(&self) -> (Totals, [u32; LATENCY_BINS]) {
        let (mut t, mut hist) = (self.totals, self.hist);
        t.fold(&mut hist, &self.buckets[self.cur_slot], false);
        self.remote.fold_into(&mut t, &mut hist);
        (t, hist)
    }

    /// The window's figures. `count_client_errors` adds client errors to volume and failures.
    #[must_use]
    pub fn stats(&self, count_client_errors: bool) -> WindowStats {
        let mut t = self.totals;
        t.fold_counts(&self.buckets[self.cur_slot].counts, false);
        t.fold_counts_wide(&self.remote.totals);
        stats_of(&t, count_client_errors)
    }

    /// The totals and histogram of the buckets still in the window at `now`, without moving it:
    /// the running figures when `now` is in the current bucket, else a recount (O(B)).
    fn live_at(&self, now: u64) -> (Totals, [u32; LATENCY_BINS]) {
        let idx = now / self.width;
        if idx <= self.cur {
            return self.live();
        }
        self.recount(idx)
    }

    /// Sums the buckets that are in the window when its current bucket is `idx` (≥ the current
    /// one). O(B).
    fn recount(&self, idx: u64) -> (Totals, [u32; LATENCY_BINS]) {
        let len = self.len as u64;
        let mut t = Totals::default();
        let mut hist = [0u32; LATENCY_BINS];
        for b in &self.buckets[..self.len] {
            // Never-used buckets are all zero, so counting them changes nothing.
            let live = b.stamp >= self.valid_from && b.stamp <= idx && idx - b.stamp < len;
            if live {
                t.fold(&mut hist, b, false);
            }
        }
        self.remote.fold_into(&mut t, &mut hist);
        (t, hist)
    }

    /// [`Window::stats`] as of `now` (a time at or after the window's), without moving the window.
    /// O(1) when `now` is in the current bucket, O(B) otherwise.
    #[must_use]
    pub fn stats_at(&self, now: u64, count_client_errors: bool) -> WindowStats {
        let (t, _) = self.live_at(now);
        stats_of(&t, count_client_errors)
    }

    /// [`Window::latency_quantile`] as of `now`, without moving the window.
    #[must_use]
    pub fn latency_quantile_at(&self, now: u64, q_ppm: u32) -> Option<u32> {
        let (t, hist) = self.live_at(now);
        quantile_of(&hist, t.latency_samples, q_ppm)
    }

    /// Successful calls with a latency in the histogram. O(32).
    #[must_use]
    pub fn latency_samples(&self) -> u64 {
        self.totals.latency_samples
            + hist_sum(&self.buckets[self.cur_slot].hist)
            + self.remote.totals.latency_samples
    }

    /// The latency at quantile `q_ppm` (parts per million) of the window's successes, in ms, from
    /// the half-octave histogram; `None` with no successes. O(32).
    #[must_use]
    pub fn latency_quantile(&self, q_ppm: u32) -> Option<u32> {
        let (t, hist) = self.live();
        quantile_of(&hist, t.latency_samples, q_ppm)
    }

    /// [`Window::latency_samples`] and [`Window::latency_quantile`] in one pass.
    pub(crate) fn latency_summary(&self, q_ppm: u32) -> (u64, Option<u32>) {
        let (t, hist) = self.live();
        (
            t.latency_samples,
            quantile_of(&hist, t.latency_samples, q_ppm),
        )
    }

    /// Checks the running figures against a recount of the live buckets. Debug builds only: O(B).
    #[cfg(debug_assertions)]
    pub(crate) fn check_invariants(&self) {
        debug_assert_eq!(
            self.buckets[self.cur_slot].stamp, self.cur,
            "the current bucket lost its stamp"
        );
        let (t, hist) = self.recount(self.cur);
        let (live_t, live_hist) = self.live();
        debug_assert_eq!(t, live_t, "window totals drifted from its buckets");
        debug_assert_eq!(
            hist, live_hist,
            "latency histogram drifted from its buckets"
        );
        debug_assert!(t.slow <= t.success);
    }

    /// Whether `now` falls in the current bucket (so [`Window::advance`] would not move).
    #[inline(always)]
    pub(crate) fn holds(&self, now: u64) -> bool {
        now.wrapping_sub(self.cur_start) < self.width
    }
}

/// Samples in a bucket's histogram (a separate loop from the per-bin sums, so both vectorize).
#[inline]
fn hist_sum(hist: &[u16; LATENCY_BINS]) -> u64 {
    // 32 × u16::MAX fits in u32.
    u64::from(hist.iter().map(|&n| u32::from(n)).sum::<u32>())
}

fn stats_of(t: &Totals, count_client_errors: bool) -> WindowStats {
    let ce = if count_client_errors {
        t.client_error
    } else {
        0
    };
    let failures = t.server_error + t.connection_error + ce;
    WindowStats {
        volume: t.success + failures + t.timeout,
        successes: t.success,
        failures,
        timeouts: t.timeout,
        slow: t.slow,
        rate_limited: t.rate_limited,
        client_errors: t.client_error,
    }
}

fn quantile_of(hist: &[u32; LATENCY_BINS], n: u64, q_ppm: u32) -> Option<u32> {
    if n == 0 {
        return None;
    }
    // Smallest bin whose cumulative count reaches ceil(q · n), at least 1.
    let rank = ((u128::from(n) * u128::from(q_ppm)).div_ceil(1_000_000) as u64).max(1);
    let mut seen = 0u64;
    for (bin, &c) in hist.iter().enumerate() {
        seen += u64::from(c);
        if seen >= rank {
            return Some(bin_value(bin));
        }
    }
    Some(bin_value(LATENCY_BINS - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(ms: u32) -> Outcome {
        Outcome::success(ms)
    }

    #[test]
    fn bins_are_half_octaves() {
        assert_eq!(latency_bin(0), 0);
        assert_eq!(latency_bin(1), 0);
        assert_eq!(latency_bin(2), 2);
        assert_eq!(latency_bin(3), 3);
        assert_eq!(latency_bin(4), 4);
        assert_eq!(latency_bin(5), 4);
        assert_eq!(latency_bin(6), 5);
        assert_eq!(latency_bin(1000), 19);
        assert_eq!(latency_bin(u32::MAX), LATENCY_BINS - 1);
        for ms in [1u32, 2, 3, 5, 7, 100, 1000, 3000, 40_000] {
            let v = bin_value(latency_bin(ms));
            assert_eq!(latency_bin(v), latency_bin(ms), "{ms}");
        }
    }

    #[test]
    fn events_expire_after_the_window() {
        let mut w = Window::<10>::new(10, 100);
        w.advance(0);
        w.record(&Outcome::server_error(5), false);
        w.advance(950);
        w.record(&ok(5), false);
        assert_eq!(w.stats(false).volume, 2);
        assert_eq!(w.stats(false).failures, 1);
        // At t = 1000 the bucket [0, 100) falls out; [900, 1000) stays.
        w.advance(1000);
        assert_eq!(w.stats(false).failures, 0);
        assert_eq!(w.stats(false).volume, 1);
        #[cfg(debug_assertions)]
        w.check_invariants();
        w.advance(1899);
        assert_eq!(w.stats(false).volume, 1);
        w.advance(1900);
        assert_eq!(w.stats(false).volume, 0);
        #[cfg(debug_assertions)]
        w.check_invariants();
    }

    #[test]
    fn a_burst_at_the_edge_is_not_forgotten() {
        // gobreaker #21: a fixed window that resets forgets a burst at its edge. A rolling one
        // keeps it for a full window.
        let mut w = Window::<60>::new(60, 1000);
        w.advance(59_999);
        for _ in 0..10 {
            w.record(&Outcome::server_error(1), false);
        }
        w.advance(60_000);
        assert_eq!(w.stats(false).failures, 10);
        w.advance(118_999);
        assert_eq!(w.stats(false).failures, 10);
        w.advance(119_000);
        assert_eq!(w.stats(false).failures, 0);
    }

    #[test]
    fn stats_at_a_later_time_leave_out_aged_buckets() {
        let mut w = Window::<10>::new(10, 100);
        w.advance(0);
        w.record(&Outcome::server_error(5), false);
        w.advance(500);
        w.record(&ok(5), false);
        assert_eq!(w.stats_at(500, false), w.stats(false));
        assert_eq!(w.stats_at(999, false).volume, 2);
        assert_eq!(w.stats_at(1000, false).failures, 0);
        assert_eq!(w.stats_at(1000, false).volume, 1);
        assert_eq!(
            w.latency_quantile_at(1000, 500_000),
            Some(bin_value(latency_bin(5)))
        );
        assert_eq!(w.stats_at(1500, false).volume, 0);
        assert_eq!(w.latency_quantile_at(1500, 500_000), None);
        // Nothing moved.
        assert_eq!(w.stats(false).volume, 2);
    }

    #[test]
    fn long_idle_gap_clears_in_one_step() {
        let mut w = Window::<4>::new(4, 10);
        for t in 0..40 {
            w.advance(t);
            w.record(&ok(1), false);
        }
        assert_eq!(w.stats(false).volume, 40);
        assert_eq!(w.advance(1_000_000), 100_000 - 3);
        assert_eq!(w.stats(false).volume, 0);
        w.record(&ok(1), false);
        assert_eq!(w.stats(false).volume, 1);
        #[cfg(debug_assertions)]
        w.check_invariants();
        w.advance(u64::MAX);
        w.record(&ok(1), false);
        #[cfg(debug_assertions)]
        w.check_invariants();
        assert_eq!(w.stats(false).volume, 1);
    }

    #[test]
    fn reset_forgets_in_place() {
        let mut w = Window::<4>::new(4, 10);
        w.advance(5);
        w.record(&Outcome::timeout(1), false);
        w.advance(15);
        w.record(&Outcome::timeout(1), false);
        w.reset();
        assert_eq!(w.stats(false).volume, 0);
        #[cfg(debug_assertions)]
        w.check_invariants();
        w.record(&ok(1), false);
        assert_eq!(w.stats(false).volume, 1);
        #[cfg(debug_assertions)]
        w.check_invariants();
        w.advance(25);
        w.advance(45);
        w.advance(55);
        #[cfg(debug_assertions)]
        w.check_invariants();
        assert_eq!(w.stats(false).volume, 0);
    }

    #[test]
    fn quantiles() {
        let mut w = Window::<4>::new(4, 10);
        w.advance(0);
        assert_eq!(w.latency_quantile(500_000), None);
        for ms in [100, 100, 100, 1000, 1000] {
            w.record(&ok(ms), false);
        }
        let p50 = w.latency_quantile(500_000).unwrap();
        assert_eq!(latency_bin(p50), latency_bin(100));
        let p90 = w.latency_quantile(900_000).unwrap();
        assert_eq!(latency_bin(p90), latency_bin(1000));
        assert_eq!(
            latency_bin(w.latency_quantile(1_000_000).unwrap()),
            latency_bin(1000)
        );
        assert_eq!(
            latency_bin(w.latency_quantile(1).unwrap()),
            latency_bin(100)
        );
    }

    #[test]
    fn client_errors_count_only_when_asked() {
        let mut w = Window::<4>::new(4, 10);
        w.advance(0);
        w.record(&Outcome::client_error(1), false);
        w.record(&Outcome::rate_limited(None), false);
        w.record(&Outcome::cancelled(), false);
        assert_eq!(w.stats(false).volume, 0);
        assert_eq!(w.stats(false).client_errors, 1);
        assert_eq!(w.stats(false).rate_limited, 1);
        assert_eq!(w.stats(true).volume, 1);
        assert_eq!(w.stats(true).failures, 1);
    }

    /// The debug builds' recount fires on what it guards: running totals that drifted from the
    /// buckets (the fuzz targets and the property tests rely on it).
    #[cfg(debug_assertions)]
    #[test]
    #[should_panic(expected = "window totals drifted from its buckets")]
    fn the_recount_fires_on_drifted_totals() {
        let mut w = Window::<10>::new(10, 100);
        w.record(&ok(5), false);
        w.advance(100);
        w.check_invariants();
        w.totals.success += 1;
        w.check_invariants();
    }

    /// What the rest of the fleet counted is added to every figure the triggers read: a window
    /// with a remote addend reads exactly as one window that recorded everything itself (every
    /// kind of count, the latency samples and their quantiles, now and at a later time), and
    /// taking the addend away again leaves the window's own figures.
    #[test]
    fn a_remote_addend_reads_as_if_recorded_here() {
        let local = |w: &mut Window<10>| {
            w.advance(0);
            w.record(&ok(5), false);
            w.record(&ok(1000), true);
            w.record(&Outcome::server_error(3), false);
            w.record(&Outcome::timeout(9), false);
            w.advance(150);
            w.record(&ok(50), false);
        };
        let remote_counts = Counts {
            success: 7,
            slow: 3,
            rate_limited: 4,
            server_error: 5,
            connection_error: 6,
            timeout: 8,
            client_error: 9,
        };
        let mut remote_hist = [0u32; LATENCY_BINS];
        remote_hist[latency_bin(2000)] = 4;
        remote_hist[latency_bin(20)] = 3;
        let mut remote = Addend::ZERO;
        remote.add(&remote_counts, &remote_hist);

        let mut w = Window::<10>::new(10, 100);
        local(&mut w);
        let own = (w.stats(true), w.latency_summary(500_000));
        w.set_remote(&remote);

        let mut all = Window::<10>::new(10, 100);
        local(&mut all);
        for _ in 0..4 {
            all.record(&ok(2000), false);
        }
        for _ in 0..3 {
            all.record(&ok(20), true);
        }
        let n = |k: u32, o: Outcome, all: &mut Window<10>| {
            for _ in 0..k {
                all.record(&o, false);
            }
        };
        n(4, Outcome::rate_limited(None), &mut all);
        n(5, Outcome::server_error(1), &mut all);
        n(6, Outcome::connection_error(1), &mut all);
        n(8, Outcome::timeout(9), &mut all);
        n(9, Outcome::client_error(1), &mut all);

        for count_client_errors in [false, true] {
            assert_eq!(w.stats(count_client_errors), all.stats(count_client_errors));
            for now in [150, 199, 500, 1040] {
                assert_eq!(
                    w.stats_at(now, count_client_errors),
                    all.stats_at(now, count_client_errors),
                    "at {now}"
                );
            }
        }
        let s = w.stats(true);
        assert_eq!((s.successes, s.slow, s.rate_limited), (10, 4, 4));
        assert_eq!(
            (s.failures, s.timeouts, s.client_errors),
            (1 + 5 + 6 + 9, 9, 9)
        );
        assert_eq!(w.latency_samples(), 10);
        assert_eq!(w.latency_samples(), all.latency_samples());
        for q in [1, 300_000, 500_000, 900_000, 1_000_000] {
            assert_eq!(w.latency_quantile(q), all.latency_quantile(q), "q {q}");
            assert_eq!(w.latency_summary(q), all.latency_summary(q), "q {q}");
            for now in [150, 500, 1040] {
                assert_eq!(
                    w.latency_quantile_at(now, q),
                    all.latency_quantile_at(now, q),
                    "q {q} at {now}"
                );
            }
        }
        #[cfg(debug_assertions)]
        w.check_invariants();

        remote.sub(&remote_counts, &remote_hist);
        assert_eq!(remote, Addend::ZERO);
        w.set_remote(&remote);
        assert_eq!((w.stats(true), w.latency_summary(500_000)), own);
    }

    /// A quantile whose rank lies past the histogram's counts (the fleet's histogram saturates
    /// at `u32::MAX` per bin while the sample count does not) reads as the top bin's value.
    #[test]
    fn a_quantile_past_saturated_counts_reads_as_the_top_bin() {
        let mut remote = Addend::ZERO;
        let mut hist = [0u32; LATENCY_BINS];
        hist[latency_bin(100)] = u32::MAX;
        remote.add(&Counts::default(), &hist);
        remote.add(&Counts::default(), &hist);
        let mut w = Window::<10>::new(10, 100);
        w.advance(0);
        w.set_remote(&remote);
        assert_eq!(w.latency_samples(), 2 * u64::from(u32::MAX));
        let top = bin_value(LATENCY_BINS - 1);
        assert_eq!(
            w.latency_quantile(500_000),
            Some(bin_value(latency_bin(100)))
        );
        assert_eq!(w.latency_quantile(1_000_000), Some(top));
        assert_eq!(w.latency_quantile_at(5_000, 1_000_000), Some(top));
    }

    /// Time must not go backwards, but an earlier `now` is documented as the current bucket: the
    /// window does not move, and what it holds stays.
    #[test]
    fn an_earlier_time_is_treated_as_the_current_bucket() {
        let mut w = Window::<10>::new(10, 100);
        assert_eq!(w.advance(1_050), 10);
        w.record(&ok(5), false);
        for earlier in [1_000, 999, 0] {
            assert_eq!(w.advance(earlier), 0, "at {earlier}");
            assert_eq!(w.stats(false).successes, 1);
        }
        w.record(&ok(5), false);
        assert_eq!(w.advance(1_099), 0);
        assert_eq!(w.stats(false).successes, 2);
    }
}
