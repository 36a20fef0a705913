//! The round script's wire format ([`super::REDIS_ROUND_SCRIPT`]), shared by every binding that
//! talks to Redis: how an [`Export`] becomes the script's arguments ([`Wire::encode`]), how the
//! script's reply becomes a [`Snapshot`] ([`Wire::decode`]), and how a router's clock maps to the
//! fleet's (Unix ms times and grid indexes: [`Clock`]). No I/O, no allocation: arguments go to a
//! sink one at a time as [`Arg`]s, and the reply is read through the small [`Reply`] trait that
//! each binding implements over its Redis client's reply values.
//!
//! # Clocks
//!
//! The fleet needs every instance on one time grid (Unix ms), but a binding's router may run on
//! a monotonic clock. A [`Clock`] holds `shift`, the difference of the wall clock and the
//! router's clock rounded to a whole number of buckets, and adds it to every time and grid index
//! written (subtracting it from what is read). Rounding keeps bucket boundaries where the router
//! has them, at the cost of up to half a bucket of skew per instance (so two instances may
//! disagree by up to a bucket plus their real skew: `docs/fleet.md`). The shift is fixed when the
//! clock is made, so a later wall-clock step does not move it. A router whose inputs already are
//! Unix ms uses [`Clock::UNIX`] (no shift).

use core::fmt;

use super::{BucketCounts, Export, FleetConfig, ProviderSnapshot, Register, Snapshot};
use crate::window::LATENCY_BINS;

/// The names of a bucket hash's count fields, in [`Counts`](super::Counts) order (`docs/fleet.md`).
pub const COUNT_FIELDS: [&str; 7] = [
    "success",
    "slow",
    "rate_limited",
    "server_error",
    "connection_error",
    "timeout",
    "client_error",
];

/// The names of a bucket hash's latency histogram fields: `h0` … `h31`.
pub const HIST_FIELDS: [&str; LATENCY_BINS] = [
    "h0", "h1", "h2", "h3", "h4", "h5", "h6", "h7", "h8", "h9", "h10", "h11", "h12", "h13", "h14",
    "h15", "h16", "h17", "h18", "h19", "h20", "h21", "h22", "h23", "h24", "h25", "h26", "h27",
    "h28", "h29", "h30", "h31",
];

/// How long the register lives, ms (24 h: it outlives any open; renewed on every write).
pub const REGISTER_TTL_MS: u64 = 86_400_000;

/// Where a bucket hash field goes: its index in [`COUNT_FIELDS`] followed by [`HIST_FIELDS`]
/// (0–6 the counts, 7–38 the histogram bins), or `None` for a name the format does not have.
#[must_use]
pub fn field_index(name: &[u8]) -> Option<usize> {
    if let Some(i) = COUNT_FIELDS.iter().position(|f| f.as_bytes() == name) {
        return Some(i);
    }
    let digits = name.strip_prefix(b"h")?;
    if digits.is_empty() || digits.len() > 2 || (digits.len() == 2 && digits[0] == b'0') {
        return None;
    }
    let mut bin = 0usize;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        bin = bin * 10 + usize::from(d - b'0');
    }
    (bin < LATENCY_BINS).then_some(COUNT_FIELDS.len() + bin)
}

/// Every field of a bucket's counts with its value, in the wire's order: [`COUNT_FIELDS`], then
/// [`HIST_FIELDS`]. A round writes the non-zero ones (one `HINCRBY` each).
pub fn field_values(b: &BucketCounts) -> impl Iterator<Item = (&'static str, u32)> + '_ {
    let c = &b.counts;
    let counts = [
        c.success,
        c.slow,
        c.rate_limited,
        c.server_error,
        c.connection_error,
        c.timeout,
        c.client_error,
    ];
    COUNT_FIELDS
        .iter()
        .copied()
        .zip(counts)
        .chain(HIST_FIELDS.iter().copied().zip(b.hist.iter().copied()))
}

fn set_field(b: &mut BucketCounts, index: usize, n: u32) {
    let c = &mut b.counts;
    match index {
        0 => c.success = n,
        1 => c.slow = n,
        2 => c.rate_limited = n,
        3 => c.server_error = n,
        4 => c.connection_error = n,
        5 => c.timeout = n,
        6 => c.client_error = n,
        i => {
            if let Some(slot) = b.hist.get_mut(i - COUNT_FIELDS.len()) {
                *slot = n;
            }
        }
    }
}

/// The fleet's key prefix for a service, `fo:{<service>}` (the hash tag puts every key of the
/// fleet in one Redis Cluster slot). Display it to get the string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyPrefix<'a>(pub &'a str);

impl fmt::Display for KeyPrefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fo:{{{}}}", self.0)
    }
}

/// The round script's one key for a service, `fo:{<service>}:hb` (the heartbeats). Display it to
/// get the string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeartbeatKey<'a>(pub &'a str);

impl fmt::Display for HeartbeatKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:hb", KeyPrefix(self.0))
    }
}

/// The mapping between a router's clock and the fleet's (Unix ms): see the module doc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    /// Wall clock − router clock, a whole number of buckets, ms.
    shift_ms: i64,
    bucket_ms: u64,
}

impl Clock {
    /// A router whose inputs are Unix ms already: nothing to shift.
    pub const UNIX: Clock = Clock {
        shift_ms: 0,
        bucket_ms: 1,
    };

    /// The mapping for a router of `bucket_ms` buckets whose clock reads `router_ms` when the
    /// wall clock reads `wall_ms` (Unix ms, both read at about the same moment): the difference,
    /// rounded to the nearest whole number of buckets (halves up). `bucket_ms` 0 counts as 1.
    #[must_use]
    pub fn new(bucket_ms: u64, wall_ms: i64, router_ms: i64) -> Clock {
        let b = i128::from(bucket_ms.max(1));
        let d = i128::from(wall_ms) - i128::from(router_ms);
        let shift = (d + b / 2).div_euclid(b) * b;
        Clock {
            shift_ms: i64::try_from(shift).unwrap_or(if shift < 0 { i64::MIN } else { i64::MAX }),
            bucket_ms: bucket_ms.max(1),
        }
    }

    /// The shift, ms (wall − router, a whole number of buckets).
    #[must_use]
    pub fn shift_ms(&self) -> i64 {
        self.shift_ms
    }

    fn add(v: u64, d: i64) -> u64 {
        u64::try_from(i128::from(v) + i128::from(d)).unwrap_or(if d < 0 { 0 } else { u64::MAX })
    }

    fn grid_shift(&self) -> i64 {
        self.shift_ms / self.bucket_ms as i64
    }

    /// A router time as a store time (saturating at 0).
    #[must_use]
    pub fn time_to_store(&self, t: u64) -> u64 {
        Self::add(t, self.shift_ms)
    }

    /// A store time as a router time (saturating at 0).
    #[must_use]
    pub fn time_to_local(&self, t: u64) -> u64 {
        Self::add(t, self.shift_ms.saturating_neg())
    }

    /// A router grid index as a store grid index.
    #[must_use]
    pub fn grid_to_store(&self, g: u64) -> u64 {
        Self::add(g, self.grid_shift())
    }

    /// A store grid index as a router grid index.
    #[must_use]
    pub fn grid_to_local(&self, g: u64) -> u64 {
        Self::add(g, self.grid_shift().saturating_neg())
    }

    /// A register time as a store time: 0 (unset) stays 0, any other at least 1.
    #[must_use]
    pub fn register_to_store(&self, t: u64) -> u64 {
        if t == 0 {
            0
        } else {
            self.time_to_store(t).max(1)
        }
    }

    /// A store register time as a router time: 0 (unset) stays 0, any other at least 1.
    #[must_use]
    pub fn register_to_local(&self, t: u64) -> u64 {
        if t == 0 {
            0
        } else {
            self.time_to_local(t).max(1)
        }
    }
}

/// One argument of the round script, handed to [`Wire::encode`]'s sink: a name or a decimal
/// integer. Display writes it as Redis receives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg<'a> {
    /// A name (the key prefix, a provider, a bucket hash field).
    Str(&'a str),
    /// A non-negative integer, sent as its decimal text.
    Int(u64),
}

impl fmt::Display for Arg<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Str(s) => f.write_str(s),
            Arg::Int(n) => write!(f, "{n}"),
        }
    }
}

/// A value of the script's reply, as a binding's Redis client gives it: an array, an integer, or
/// a bulk string. Implement it over the client's reply type; [`Wire::decode`] walks it.
pub trait Reply: Sized {
    /// The number of items when the value is an array, else `None`.
    fn array_len(&self) -> Option<usize>;
    /// Item `i` of an array (`None` when not an array or out of range).
    fn item(&self, i: usize) -> Option<Self>;
    /// The value when it is an integer reply, else `None`.
    fn integer(&self) -> Option<i64>;
    /// Calls `f` with the bytes of a bulk string (`None` when the value is not one).
    fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> Option<R>;
}

/// A reply that does not have the script's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WireError(pub &'static str);

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fleet reply: {}", self.0)
    }
}

impl core::error::Error for WireError {}

fn parse_decimal(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 20 {
        return None;
    }
    let mut n: u64 = 0;
    for &d in b {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(n)
}

/// A reply value as a non-negative integer: an integer reply, or a bulk string of decimal digits
/// (an empty one is 0).
fn num<R: Reply>(v: &R) -> Result<u64, WireError> {
    if let Some(i) = v.integer() {
        return u64::try_from(i).map_err(|_| WireError("a negative integer"));
    }
    match v.with_bytes(|b| {
        if b.is_empty() {
            Some(0)
        } else {
            parse_decimal(b)
        }
    }) {
        Some(Some(n)) => Ok(n),
        Some(None) => Err(WireError("a count is not a decimal integer")),
        None => Err(WireError("expected an integer or a bulk string")),
    }
}

fn array<R: Reply>(v: &R, what: &'static str) -> Result<usize, WireError> {
    v.array_len().ok_or(WireError(what))
}

fn item<R: Reply>(v: &R, i: usize) -> Result<R, WireError> {
    v.item(i).ok_or(WireError("an array item is missing"))
}

fn small(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// One instance's encoder and decoder of the round script (see the module doc): its clock
/// mapping and the TTLs and lease its rounds send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wire {
    /// The clock mapping.
    pub clock: Clock,
    /// How long a granted probe lease lasts, ms.
    pub lease_ms: u64,
    /// The heartbeat set's TTL, ms (10 periods).
    pub heartbeat_ttl_ms: u64,
    /// A bucket hash's TTL, ms (the window plus 2 longest periods).
    pub bucket_ttl_ms: u64,
    /// A vote set's TTL, ms (`live_periods` periods).
    pub vote_ttl_ms: u64,
    /// The register's TTL, ms ([`REGISTER_TTL_MS`]).
    pub register_ttl_ms: u64,
}

impl Wire {
    /// The wire of an instance with `config`, for a router whose window is `window_ms` long, on
    /// `clock`. The TTLs are those `docs/fleet.md` gives.
    #[must_use]
    pub fn new(config: &FleetConfig, window_ms: u64, clock: Clock) -> Wire {
        Wire {
            clock,
            lease_ms: config.lease_ms,
            heartbeat_ttl_ms: 10 * config.period_ms,
            bucket_ttl_ms: window_ms + 2 * config.max_period_ms(),
            vote_ttl_ms: u64::from(config.live_periods) * config.period_ms,
            register_ttl_ms: REGISTER_TTL_MS,
        }
    }

    /// The round script's arguments for `export`, in order, one [`Arg`] per call of `sink` (the
    /// script's key is [`HeartbeatKey`]). `prefix` is the fleet's [`KeyPrefix`], displayed;
    /// `names[i]` provider `i`'s name (the router's order). Times and grid indexes go through
    /// the clock. Cost: O(arguments), no allocation.
    ///
    /// # Panics
    ///
    /// If `names` has fewer than `export.len` names.
    pub fn encode<const P: usize, S: AsRef<str>>(
        &self,
        prefix: &str,
        names: &[S],
        export: &Export<P>,
        mut sink: impl FnMut(Arg<'_>),
    ) {
        let c = &self.clock;
        let len = export.len.min(P);
        assert!(names.len() >= len, "a provider name per exported provider");
        sink(Arg::Str(prefix));
        sink(Arg::Int(u64::from(export.instance)));
        sink(Arg::Int(c.time_to_store(export.at_ms)));
        sink(Arg::Int(c.time_to_store(export.live_since_ms)));
        sink(Arg::Int(c.grid_to_store(export.read_from)));
        sink(Arg::Int(c.grid_to_store(export.read_to)));
        sink(Arg::Int(self.lease_ms));
        sink(Arg::Int(self.heartbeat_ttl_ms));
        sink(Arg::Int(self.bucket_ttl_ms));
        sink(Arg::Int(self.vote_ttl_ms));
        sink(Arg::Int(self.register_ttl_ms));
        sink(Arg::Int(len as u64));
        for (pe, name) in export.providers[..len].iter().zip(names) {
            sink(Arg::Str(name.as_ref()));
            sink(Arg::Int(pe.deltas().len() as u64));
            for d in pe.deltas() {
                sink(Arg::Int(c.grid_to_store(d.stamp)));
                let nf = field_values(d).filter(|&(_, n)| n > 0).count();
                sink(Arg::Int(nf as u64));
                for (field, n) in field_values(d).filter(|&(_, n)| n > 0) {
                    sink(Arg::Str(field));
                    sink(Arg::Int(u64::from(n)));
                }
            }
            match pe.register {
                Some(r) => {
                    sink(Arg::Int(1));
                    sink(Arg::Int(r.epoch));
                    sink(Arg::Int(c.register_to_store(r.open_until_ms)));
                    sink(Arg::Int(c.register_to_store(r.ramp_start_ms)));
                }
                None => (0..4).for_each(|_| sink(Arg::Int(0))),
            }
            sink(Arg::Int(pe.vote.unwrap_or(0)));
            sink(Arg::Int(u64::from(pe.want_lease)));
        }
    }

    /// Reads the script's reply for a round of `providers` providers into `snap` (times and
    /// grid indexes back through the clock). A bucket field the format does not have is
    /// ignored; sums past a snapshot's capacity are dropped. Cost: O(reply), no allocation.
    ///
    /// # Errors
    ///
    /// [`WireError`] when the reply does not have the script's shape (`snap` is then partly
    /// written: count the round as failed).
    pub fn decode<const P: usize, R: Reply>(
        &self,
        reply: &R,
        providers: usize,
        snap: &mut Snapshot<P>,
    ) -> Result<(), WireError> {
        let c = &self.clock;
        if providers > P {
            return Err(WireError("more providers than a snapshot holds"));
        }
        if array(reply, "not an array")? != providers + 1 {
            return Err(WireError("wrong number of providers"));
        }
        snap.live_instances = small(num(&item(reply, 0)?)?);
        snap.len = providers;
        for i in 0..providers {
            let p = item(reply, i + 1)?;
            if array(&p, "a provider is not an array")? != 6 {
                return Err(WireError("a provider has not 6 items"));
            }
            let mut ps = ProviderSnapshot::EMPTY;
            let sums = item(&p, 0)?;
            for k in 0..array(&sums, "sums are not an array")? {
                let s = item(&sums, k)?;
                if array(&s, "a sum is not an array")? != 2 {
                    return Err(WireError("a sum has not 2 items"));
                }
                let mut b = BucketCounts {
                    stamp: c.grid_to_local(num(&item(&s, 0)?)?),
                    ..BucketCounts::ZERO
                };
                let kv = item(&s, 1)?;
                let n = array(&kv, "a hash is not an array")?;
                for j in (0..n.saturating_sub(1)).step_by(2) {
                    let field = item(&kv, j)?
                        .with_bytes(field_index)
                        .ok_or(WireError("a field name is not a bulk string"))?;
                    let v = small(num(&item(&kv, j + 1)?)?);
                    if let Some(f) = field {
                        set_field(&mut b, f, v);
                    }
                }
                if !ps.push_sum(b) {
                    break;
                }
            }
            ps.register = Register {
                epoch: num(&item(&p, 1)?)?,
                open_until_ms: c.register_to_local(num(&item(&p, 2)?)?),
                ramp_start_ms: c.register_to_local(num(&item(&p, 3)?)?),
            };
            ps.voters = small(num(&item(&p, 4)?)?);
            let holder = item(&p, 5)?;
            ps.lease_holder = match holder.integer() {
                Some(h) => u32::try_from(h).ok(),
                None => holder
                    .with_bytes(|b| parse_decimal(b).and_then(|h| u32::try_from(h).ok()))
                    .ok_or(WireError("a lease holder is not a bulk string"))?,
            };
            snap.providers[i] = ps;
        }
        Ok(())
    }
}

/// A fraction in `[0, 1]` (a binding's `jitter` or `quorum` option) in ppm, rounded to the
/// nearest: what [`FleetConfig`]'s `jitter_ppm` and `quorum_ppm` take. `None` outside `[0, 1]` or
/// NaN.
#[must_use]
pub fn fraction_ppm(v: f64) -> Option<u32> {
    if !(0.0..=1.0).contains(&v) {
        return None;
    }
    // 0 ≤ v × 10⁶ + 0.5 ≤ 1 000 000.5: the cast truncates to the rounded value.
    Some((v * 1_000_000.0 + 0.5) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_round_trip_and_strangers_are_refused() {
        for (i, f) in COUNT_FIELDS.iter().chain(HIST_FIELDS.iter()).enumerate() {
            assert_eq!(field_index(f.as_bytes()), Some(i), "{f}");
        }
        for bad in [
            &b"h"[..],
            b"h32",
            b"h01",
            b"h-1",
            b"hx",
            b"h100",
            b"Success",
            b"",
        ] {
            assert_eq!(field_index(bad), None, "{bad:?}");
        }
        let mut b = BucketCounts::ZERO;
        for i in 0..COUNT_FIELDS.len() + LATENCY_BINS {
            set_field(&mut b, i, i as u32 + 1);
        }
        let values: heapless::Vec<u32, 39> = field_values(&b).map(|(_, n)| n).collect();
        assert!(values.iter().enumerate().all(|(i, &n)| n == i as u32 + 1));
    }

    #[test]
    fn the_clock_shifts_by_whole_buckets_and_saturates() {
        let c = Clock::new(1000, 1_764_000_000_400, 5_000);
        assert_eq!(c.shift_ms(), 1_763_999_995_000);
        assert_eq!(c.time_to_store(5_000), 1_764_000_000_000);
        assert_eq!(c.time_to_local(c.time_to_store(7_123)), 7_123);
        assert_eq!(c.grid_to_store(5), 1_764_000_000);
        assert_eq!(c.grid_to_local(c.grid_to_store(42)), 42);
        assert_eq!(c.register_to_store(0), 0);
        assert_eq!(c.register_to_local(0), 0);
        // A store time before the router's epoch: saturates, and a set register time stays set.
        assert_eq!(c.time_to_local(1), 0);
        assert_eq!(c.register_to_local(1), 1);
        // Halves round up; a negative shift (router ahead of the wall clock) works too.
        assert_eq!(Clock::new(1000, 1_500, 1_000).shift_ms(), 1000);
        assert_eq!(Clock::new(1000, 1_499, 1_000).shift_ms(), 0);
        let back = Clock::new(250, 1_000, 10_000);
        assert_eq!(back.shift_ms(), -9_000);
        assert_eq!(back.grid_to_store(100), 64);
        assert_eq!(back.grid_to_store(3), 0);
        assert_eq!(Clock::UNIX.time_to_store(123), 123);
        assert_eq!(Clock::UNIX.grid_to_local(9), 9);
    }

    #[test]
    fn fractions_become_ppm() {
        assert_eq!(fraction_ppm(0.3), Some(300_000));
        assert_eq!(fraction_ppm(0.1), Some(100_000));
        assert_eq!(fraction_ppm(1.0), Some(1_000_000));
        assert_eq!(fraction_ppm(0.0), Some(0));
        assert_eq!(fraction_ppm(0.000_000_6), Some(1));
        assert_eq!(fraction_ppm(-0.1), None);
        assert_eq!(fraction_ppm(1.01), None);
        assert_eq!(fraction_ppm(f64::NAN), None);
    }

    #[test]
    fn keys_carry_the_hash_tag() {
        use core::fmt::Write;
        let mut s: heapless::String<32> = heapless::String::new();
        write!(s, "{} {}", KeyPrefix("svc"), HeartbeatKey("svc")).unwrap();
        assert_eq!(s.as_str(), "fo:{svc} fo:{svc}:hb");
    }
}
