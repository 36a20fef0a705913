//! One answer's rate-limit headers from a few numbers, for the tests and fuzz targets that drive
//! pacing (`Router::observe_headroom`): the property tests (`tests/invariants`, from their own
//! strategy and [`Quota::from_raw`]), the `events` fuzz target and the request driver
//! ([`decode`], from bytes) build the [`Headroom`] here, through the core's own header parser, as
//! a driver would from a real answer.
//!
//! Requests and tokens are sent as OpenAI's `x-ratelimit-*` headers (reset as a duration, `…ms`),
//! input and output tokens as Anthropic's `anthropic-ratelimit-*` headers (reset as an RFC 3339
//! time against the wall clock [`NOW_UNIX_MS`]), so both parsers and every dimension are fed.

use core::fmt::Write;

use failover_core::{Dimension, Headroom};

/// The wall clock given with the Anthropic headers: 2026-01-01T00:00:00Z.
pub const NOW_UNIX_MS: u64 = 1_767_225_600_000;

/// One dimension's figures as sent; `None`: the header is not sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Quota {
    /// The window's limit (`0` is sent as is: the parser takes it as unknown).
    pub limit: Option<u64>,
    /// What is left.
    pub remaining: Option<u64>,
    /// Milliseconds until the window resets (for Anthropic at most a day; longer is sent as a
    /// day).
    pub reset_ms: Option<u64>,
}

impl Quota {
    /// A quota from three raw numbers as the harnesses decode them: `limit` (0 is sent, and
    /// unknown), `remaining` as `per_mille` thousandths of the limit (above 1000: that many more
    /// than the limit, which the parser clamps), and `reset_ms`.
    #[must_use]
    pub fn from_raw(limit: u64, per_mille: u16, reset_ms: Option<u64>) -> Quota {
        let remaining = match per_mille {
            0..=1000 => {
                u64::try_from(u128::from(limit) * u128::from(per_mille) / 1000).unwrap_or(limit)
            }
            more => limit.saturating_add(u64::from(more - 1000)),
        };
        Quota {
            limit: Some(limit),
            remaining: Some(remaining),
            reset_ms,
        }
    }
}

/// Four quotas (one per dimension) decoded from bytes, `next` giving the next byte: the byte
/// decoding the fuzz targets and the request driver share. A dimension is absent one time in
/// three; a limit is now and then 0 (unknown) or near `u64::MAX`; the remaining is zero a quarter
/// of the time and mostly below a tenth of the limit, now and then above the limit; the reset is
/// absent, zero (the quota is back), a few seconds or a few minutes.
pub fn decode(mut next: impl FnMut() -> u8) -> [Quota; 4] {
    core::array::from_fn(|_| {
        let a = next();
        if a.is_multiple_of(3) {
            return Quota::default();
        }
        let limit = match a >> 5 {
            0 => 0,
            1 => u64::MAX - u64::from(next()),
            _ => 1 + u64::from(next()) * 4,
        };
        let per_mille = match next() {
            0..=63 => 0,
            b @ 64..=191 => u16::from(b - 64),
            b @ 192..=247 => u16::from(b - 192) * 18,
            b => 1000 + u16::from(b - 247),
        };
        let reset_ms = match next() {
            0..=79 => None,
            80..=95 => Some(0),
            r @ 96..=239 => Some(u64::from(r - 96) * 40),
            r => Some(u64::from(r) * 1_000),
        };
        Quota::from_raw(limit, per_mille, reset_ms)
    })
}

/// The header names, per dimension (as [`Dimension::ALL`]): limit, remaining, reset.
const NAMES: [[&str; 3]; 4] = [
    [
        "x-ratelimit-limit-requests",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
    ],
    [
        "x-ratelimit-limit-tokens",
        "x-ratelimit-remaining-tokens",
        "x-ratelimit-reset-tokens",
    ],
    [
        "anthropic-ratelimit-input-tokens-limit",
        "anthropic-ratelimit-input-tokens-remaining",
        "anthropic-ratelimit-input-tokens-reset",
    ],
    [
        "anthropic-ratelimit-output-tokens-limit",
        "anthropic-ratelimit-output-tokens-remaining",
        "anthropic-ratelimit-output-tokens-reset",
    ],
];

/// A header value written on the stack (the fuzz targets build many: no allocation).
struct Value {
    buf: [u8; 32],
    len: usize,
}

impl Value {
    fn new() -> Value {
        Value {
            buf: [0; 32],
            len: 0,
        }
    }

    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).expect("written from str")
    }
}

impl Write for Value {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len + s.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(core::fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// The headers of `quotas` (indexed like [`Dimension::ALL`]) read by one [`Headroom`].
#[must_use]
pub fn headroom(quotas: &[Quota; 4]) -> Headroom {
    let mut h = Headroom::default();
    for ((d, q), names) in Dimension::ALL.into_iter().zip(quotas).zip(NAMES) {
        let anthropic = matches!(d, Dimension::InputTokens | Dimension::OutputTokens);
        let mut send = |name: &str, value: &Value| {
            assert!(
                h.header(name, value.as_str(), Some(NOW_UNIX_MS)),
                "{name} is a rate-limit header"
            );
        };
        for (name, x) in names[..2].iter().zip([q.limit, q.remaining]) {
            if let Some(x) = x {
                let mut v = Value::new();
                write!(v, "{x}").unwrap();
                send(name, &v);
            }
        }
        if let Some(ms) = q.reset_ms {
            let mut v = Value::new();
            if anthropic {
                // 2026-01-01 plus at most a day less a millisecond.
                let ms = ms.min(86_399_999);
                let (h, m, s, f) = (
                    ms / 3_600_000,
                    ms / 60_000 % 60,
                    ms / 1_000 % 60,
                    ms % 1_000,
                );
                write!(v, "2026-01-01T{h:02}:{m:02}:{s:02}.{f:03}Z").unwrap();
            } else {
                write!(v, "{ms}ms").unwrap();
            }
            send(names[2], &v);
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The figures come back through the core's parser as they were given.
    #[test]
    fn the_core_reads_back_what_was_sent() {
        let q = [
            Quota::from_raw(60, 100, Some(1_500)),
            Quota::from_raw(1_000, 1000, None),
            Quota::from_raw(200, 0, Some(3_723_004)),
            Quota::default(),
        ];
        assert_eq!(q[0].remaining, Some(6));
        let h = headroom(&q);
        let r = h.quota(Dimension::Requests);
        assert_eq!(
            (r.limit, r.remaining, r.reset_in_ms),
            (Some(60), Some(6), Some(1_500))
        );
        assert_eq!(h.dimension_ppm(Dimension::Tokens), Some(1_000_000));
        let i = h.quota(Dimension::InputTokens);
        assert_eq!((i.remaining, i.reset_in_ms), (Some(0), Some(3_723_004)));
        assert_eq!(
            h.quota(Dimension::OutputTokens),
            failover_core::Quota::default()
        );
        assert_eq!(h.headroom_ppm(), Some(0));
        assert_eq!(Quota::from_raw(10, 1003, None).remaining, Some(13));
        // Bytes: absent; limit 1 + 4·9 = 37 with none left, resetting in 40 ms; then zeros
        // (absent) once the bytes run out.
        let mut bytes = [0u8, 0x41, 9, 0, 97].into_iter();
        let q = decode(|| bytes.next().unwrap_or(0));
        assert_eq!(q[0], Quota::default());
        assert_eq!(q[1], Quota::from_raw(37, 0, Some(40)));
        assert_eq!(q[2..], [Quota::default(); 2]);
    }
}
