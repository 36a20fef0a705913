//! How much rate-limit quota a provider says is left: the `x-ratelimit-*` and
//! `anthropic-ratelimit-*` headers of one answer, read into a fixed-size [`Headroom`].
//!
//! Providers announce on every answer, success or not, how many requests and tokens are left in
//! the current window and when it resets. A binding feeds the answer's headers to a
//! [`Headroom`] one `(name, value)` pair at a time with [`Headroom::header`] (headers that are not
//! rate-limit headers are ignored, so it can feed them all), then reads each [`Dimension`]'s
//! [`Quota`] and [`Headroom::headroom_ppm`]: the smallest `remaining / limit` over the dimensions
//! reported. Nothing here allocates, panics or reads a clock; the cost is linear in the length of
//! the name and the value.
//!
//! # The headers
//!
//! | provider | header | dimension, field | value |
//! |---|---|---|---|
//! | OpenAI | `x-ratelimit-limit-requests`, `x-ratelimit-limit-tokens` | requests, tokens: limit | a count: `60`, `150000` |
//! | OpenAI, Azure OpenAI | `x-ratelimit-remaining-requests`, `x-ratelimit-remaining-tokens` | requests, tokens: remaining | a count: `59`, `149984` |
//! | OpenAI | `x-ratelimit-reset-requests`, `x-ratelimit-reset-tokens` | requests, tokens: reset | a duration from now: `1s`, `6m0s`, `12ms`, `23h47m36.648s` |
//! | Anthropic | `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-limit` | that dimension: limit | a count: `50` |
//! | Anthropic | `anthropic-ratelimit-{…}-remaining` | that dimension: remaining | a count: `49` |
//! | Anthropic | `anthropic-ratelimit-{…}-reset` | that dimension: reset | an RFC 3339 time: `2024-04-16T22:59:59Z`, `2025-01-01T00:00:00.5+01:00` |
//!
//! # The rules, and why
//!
//! 1. **Names** match ignoring ASCII case (HTTP header names are case-insensitive; HTTP/2 and
//!    most clients lower-case them, some proxies do not). Any other name is ignored and
//!    [`Headroom::header`] returns `false`.
//! 2. **Values** are read after trimming surrounding spaces and tabs (HTTP's optional
//!    whitespace). Anything else that does not fit the grammar makes the field *unknown*: the
//!    engine must never act on a figure it had to guess.
//! 3. **The last header wins**: a recognised header always replaces its field, with unknown when
//!    its value does not parse. One answer's headers describe one moment; a later copy that
//!    cannot be read means we no longer know. (A client that joins repeated headers with `, `
//!    gives `60, 60`, which is malformed: unknown.)
//! 4. **Counts** (limit, remaining) are ASCII digits only, leading zeros allowed: `-1` (Azure's
//!    "unknown"), a sign, a fraction (`1.5`), an exponent, an empty value or a number beyond
//!    `u64::MAX` are unknown. Providers only ever send whole numbers; anything else is not a
//!    count we can trust.
//! 5. **A limit of `0` is unknown**: no window holds zero requests while answering one, and a
//!    ratio against zero means nothing.
//! 6. **A remaining of `0` is unknown unless the same dimension has a known positive limit**:
//!    Azure OpenAI sends `x-ratelimit-remaining-*: 0` without any limit when it does not track
//!    the figure, so a bare `0` cannot mean "exhausted". With a limit (`limit 60, remaining 0`) it
//!    does. This is applied when reading, so header order does not matter.
//! 7. **OpenAI's reset** is a Go duration: one or more `<number><unit>` segments, in any order,
//!    with no spaces (`6m0s`, `1h30m`, `1.5s`, `500ms`). A number is digits with an optional
//!    `.digits` fraction; a unit is `h`, `m`, `s`, `ms`, `us`, `µs`/`μs` or `ns`. After a
//!    number, `m` followed by `s` is `ms` (milliseconds), a lone `m` is minutes: `6m0s` is 360 s,
//!    `12ms` is 12 ms, `1m5ms` is 60.005 s. A bare `0` is zero (Go writes and reads it so). A
//!    sign, a number without a unit (`5`), an unknown or upper-case unit (`5S`, `5d`), `.5s`,
//!    `5.s` or a space is malformed: unknown. Fractions are read to 9 digits (further digits
//!    are ignored), each segment to the whole nanosecond below, and the total is rounded *up*
//!    to whole milliseconds (`1.0001ms` is 2 ms): the engine must not come back before the
//!    quota is back. Huge values saturate.
//! 8. **Anthropic's reset** is an RFC 3339 time, `YYYY-MM-DDTHH:MM:SS`, an optional fraction
//!    (`.` and one or more digits), then `Z` or an offset `±HH:MM` (`T` and `Z` may be lower
//!    case, as RFC 3339 allows). The date must exist (`2023-02-29` does not); a leap second
//!    (`:60`) counts as the next second. It becomes milliseconds from the caller's wall clock
//!    `now_unix_ms`, the fraction rounded up to the millisecond; a time in the past is `0` (the
//!    quota is already back). Without a wall clock (`None`) the reset is unknown.
//! 9. **Headroom** ([`Headroom::headroom_ppm`]) is, over the dimensions with a known positive
//!    limit *and* a known remaining, the smallest `remaining × 1 000 000 / limit`, rounded down
//!    and capped at 1 000 000 (a remaining above the limit, as when a limit was just lowered, is
//!    full). A provider runs out of whichever dimension is scarcest. `None` when no dimension
//!    has both: Azure's remaining-only headers say how much is left, not what fraction.
//!
//! ```
//! use failover_core::{Dimension, Headroom};
//!
//! let mut h = Headroom::default();
//! let now = 1_700_000_000_000;
//! h.header("x-ratelimit-limit-requests", "60", Some(now));
//! h.header("x-ratelimit-remaining-requests", "6", Some(now));
//! h.header("x-ratelimit-reset-requests", "6m0s", Some(now));
//! h.header("x-ratelimit-limit-tokens", "150000", Some(now));
//! h.header("x-ratelimit-remaining-tokens", "149984", Some(now));
//! h.header("content-type", "application/json", Some(now)); // ignored
//! let q = h.quota(Dimension::Requests);
//! assert_eq!((q.limit, q.remaining, q.reset_in_ms), (Some(60), Some(6), Some(360_000)));
//! assert_eq!(h.headroom_ppm(), Some(100_000)); // 6 of 60 requests: 10 %
//! ```

/// One kind of quota a provider counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Dimension {
    /// Requests per window (OpenAI, Azure OpenAI, Anthropic).
    Requests,
    /// Tokens per window (OpenAI, Azure OpenAI; Anthropic's most restrictive token limit).
    Tokens,
    /// Input tokens per window (Anthropic).
    InputTokens,
    /// Output tokens per window (Anthropic).
    OutputTokens,
}

impl Dimension {
    /// Every dimension, in declaration order.
    pub const ALL: [Dimension; 4] = [
        Dimension::Requests,
        Dimension::Tokens,
        Dimension::InputTokens,
        Dimension::OutputTokens,
    ];

    /// The stable snake_case name used by the scenario files and the bindings.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Dimension::Requests => "requests",
            Dimension::Tokens => "tokens",
            Dimension::InputTokens => "input_tokens",
            Dimension::OutputTokens => "output_tokens",
        }
    }

    /// Parses a name produced by [`Dimension::name`].
    #[must_use]
    pub fn from_name(name: &str) -> Option<Dimension> {
        Dimension::ALL.into_iter().find(|d| d.name() == name)
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// What the headers said about one [`Dimension`]. Each field is `None` when unknown (not sent,
/// malformed, or unknown by the rules in the [module documentation](self)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Quota {
    /// The window's limit; never `Some(0)` (rule 5).
    pub limit: Option<u64>,
    /// What is left in the window; `Some(0)` only with a known positive limit (rule 6).
    pub remaining: Option<u64>,
    /// Milliseconds from now until the window resets (rules 7 and 8).
    pub reset_in_ms: Option<u64>,
}

/// The rate-limit figures of one answer, fed one header at a time. Fixed size (no allocation);
/// `Headroom::default()` knows nothing. See the [module documentation](self) for the rules.
/// Two `Headroom`s are equal when they hold the same figures.
#[derive(Clone, Copy, Default)]
pub struct Headroom {
    /// Every dimension's limit, remaining and reset, in that order (dimension `d`'s at `3 × d`):
    /// flat, so that a header's field is one index its name's table entry carries.
    fields: [Option<u64>; 12],
    /// A cache for reading times, not a figure: equality, hashing and `Debug` ignore it.
    minute: Minute,
}

impl PartialEq for Headroom {
    fn eq(&self, other: &Self) -> bool {
        self.fields == other.fields
    }
}

impl Eq for Headroom {}

impl core::hash::Hash for Headroom {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.fields.hash(state);
    }
}

impl core::fmt::Debug for Headroom {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Headroom")
            .field("fields", &self.fields)
            .finish()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Limit,
    Remaining,
    Reset,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Provider {
    OpenAi,
    Anthropic,
}

/// How a header's value is read: which of the rules applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reader {
    /// Rule 4: a count.
    Count,
    /// Rule 7: OpenAI's Go duration.
    Duration,
    /// Rule 8: Anthropic's RFC 3339 time.
    Time,
}

impl Headroom {
    /// Reads one header. Returns whether it was a rate-limit header this module knows (whatever
    /// its value); any other header is ignored. `now_unix_ms` is the caller's wall clock, needed
    /// only for Anthropic's absolute reset times.
    #[inline]
    pub fn header(&mut self, name: &str, value: &str, now_unix_ms: Option<u64>) -> bool {
        let Some(k) = recognise(name.as_bytes()) else {
            return false;
        };
        // Rule 2's trimming comes second: a value with surrounding whitespace never reads (no
        // grammar here starts or ends with a space or a tab), and nearly no value has any, so
        // the common case skips it.
        let v = value.as_bytes();
        let read = self
            .read(k.reader, v, now_unix_ms)
            .or_else(|| self.read_trimmed(k.reader, v, now_unix_ms));
        // The slot is below 12 for every entry (the table is built so): the test is free.
        if let Some(f) = self.fields.get_mut(usize::from(k.slot)) {
            *f = read;
        }
        true
    }

    /// A value read by `reader` (rules 4, 7 and 8), untrimmed.
    #[inline(always)]
    fn read(&mut self, reader: Reader, v: &[u8], now_unix_ms: Option<u64>) -> Option<u64> {
        match reader {
            Reader::Count => parse_count(v),
            Reader::Duration => parse_duration_ms(v),
            Reader::Time => anthropic_reset_ms(v, now_unix_ms, &mut self.minute),
        }
    }

    /// A value that did not read as it came, read again trimmed (rule 2) if trimming changes
    /// it: out of line, as only a malformed or padded value gets here.
    #[cold]
    #[inline(never)]
    fn read_trimmed(&mut self, reader: Reader, v: &[u8], now_unix_ms: Option<u64>) -> Option<u64> {
        let t = trim(v);
        if t.len() == v.len() {
            return None;
        }
        self.read(reader, t, now_unix_ms)
    }

    /// What the headers said about `dim`, with rules 5 and 6 applied.
    #[must_use]
    pub fn quota(&self, dim: Dimension) -> Quota {
        let [limit, remaining, reset_in_ms] = self.dimension_fields(dim);
        let limit = limit.filter(|&l| l > 0);
        let remaining = remaining.filter(|&r| r > 0 || limit.is_some());
        Quota {
            limit,
            remaining,
            reset_in_ms,
        }
    }

    /// `dim`'s limit, remaining and reset as read (before rules 5 and 6).
    fn dimension_fields(&self, dim: Dimension) -> [Option<u64>; 3] {
        let i = 3 * dim.index();
        [self.fields[i], self.fields[i + 1], self.fields[i + 2]]
    }

    /// The headroom of one dimension in parts per million (rule 9), `None` unless both its limit
    /// and its remaining are known.
    #[must_use]
    pub fn dimension_ppm(&self, dim: Dimension) -> Option<u32> {
        let q = self.quota(dim);
        let (limit, remaining) = (q.limit?, q.remaining?);
        let remaining = remaining.min(limit);
        // At most 1 000 000: remaining ≤ limit. 64-bit arithmetic when it cannot overflow (a
        // 128-bit division is a library call).
        let ppm = match remaining.checked_mul(1_000_000) {
            Some(r) => r / limit,
            None => u64::try_from(u128::from(remaining) * 1_000_000 / u128::from(limit))
                .unwrap_or(1_000_000),
        };
        Some(u32::try_from(ppm).unwrap_or(1_000_000))
    }

    /// The smallest headroom over the dimensions reported, in parts per million (rule 9):
    /// `1_000_000` is a full window, `0` an exhausted one, `None` unknown.
    #[must_use]
    pub fn headroom_ppm(&self) -> Option<u32> {
        Dimension::ALL
            .into_iter()
            .filter_map(|d| self.dimension_ppm(d))
            .min()
    }

    /// Whether no rate-limit header with a usable value was read.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        Dimension::ALL
            .into_iter()
            .all(|d| self.quota(d) == Quota::default())
    }
}

/// Rule 8 resolved against the caller's wall clock: Anthropic's common shape inline, the rest out
/// of line.
#[inline(always)]
fn anthropic_reset_ms(v: &[u8], now_unix_ms: Option<u64>, memo: &mut Minute) -> Option<u64> {
    // Without a clock the reset is unknown whatever the value: nothing to parse. A time in the
    // past (or before 1970) is 0; years ≤ 9999 keep `at` far below `u64::MAX`.
    now_unix_ms.and_then(|now| {
        let at = parse_rfc3339_ms(v, memo)?;
        Some(u64::try_from(at).map_or(0, |at| at.saturating_sub(now)))
    })
}

/// The longest name this module knows: `anthropic-ratelimit-output-tokens-remaining`.
const LONGEST: usize = 43;
/// The shortest: `x-ratelimit-limit-tokens`.
const SHORTEST: usize = 24;

/// Rule 1. An exact (lower-case) match first, as HTTP/2 and most clients send; otherwise, if the
/// name has an upper-case letter, the same match on a lower-cased copy on the stack.
#[inline(always)]
fn recognise(name: &[u8]) -> Option<&'static Known> {
    if !(SHORTEST..=LONGEST).contains(&name.len()) {
        return None;
    }
    lookup(name).or_else(|| lookup_lower_cased(name))
}

/// Rule 1's second chance, out of line (rare: only a name that is not lower-case gets here).
#[cold]
#[inline(never)]
fn lookup_lower_cased(name: &[u8]) -> Option<&'static Known> {
    if !name.iter().any(u8::is_ascii_uppercase) {
        return None;
    }
    let mut buf = [0u8; LONGEST];
    let lower = buf.get_mut(..name.len())?;
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    lookup(lower)
}

type Entry = (&'static [u8], Provider, Dimension, Field);

/// Every name this module knows.
const NAMES: [Entry; 18] = {
    use Dimension::{InputTokens, OutputTokens, Requests, Tokens};
    use Field::{Limit, Remaining, Reset};
    use Provider::{Anthropic, OpenAi};
    [
        (b"x-ratelimit-limit-requests", OpenAi, Requests, Limit),
        (b"x-ratelimit-limit-tokens", OpenAi, Tokens, Limit),
        (
            b"x-ratelimit-remaining-requests",
            OpenAi,
            Requests,
            Remaining,
        ),
        (b"x-ratelimit-remaining-tokens", OpenAi, Tokens, Remaining),
        (b"x-ratelimit-reset-requests", OpenAi, Requests, Reset),
        (b"x-ratelimit-reset-tokens", OpenAi, Tokens, Reset),
        (
            b"anthropic-ratelimit-requests-limit",
            Anthropic,
            Requests,
            Limit,
        ),
        (
            b"anthropic-ratelimit-requests-remaining",
            Anthropic,
            Requests,
            Remaining,
        ),
        (
            b"anthropic-ratelimit-requests-reset",
            Anthropic,
            Requests,
            Reset,
        ),
        (
            b"anthropic-ratelimit-tokens-limit",
            Anthropic,
            Tokens,
            Limit,
        ),
        (
            b"anthropic-ratelimit-tokens-remaining",
            Anthropic,
            Tokens,
            Remaining,
        ),
        (
            b"anthropic-ratelimit-tokens-reset",
            Anthropic,
            Tokens,
            Reset,
        ),
        (
            b"anthropic-ratelimit-input-tokens-limit",
            Anthropic,
            InputTokens,
            Limit,
        ),
        (
            b"anthropic-ratelimit-input-tokens-remaining",
            Anthropic,
            InputTokens,
            Remaining,
        ),
        (
            b"anthropic-ratelimit-input-tokens-reset",
            Anthropic,
            InputTokens,
            Reset,
        ),
        (
            b"anthropic-ratelimit-output-tokens-limit",
            Anthropic,
            OutputTokens,
            Limit,
        ),
        (
            b"anthropic-ratelimit-output-tokens-remaining",
            Anthropic,
            OutputTokens,
            Remaining,
        ),
        (
            b"anthropic-ratelimit-output-tokens-reset",
            Anthropic,
            OutputTokens,
            Reset,
        ),
    ]
};

/// A perfect hash of the known names (any name of `SHORTEST..=LONGEST` bytes maps to a slot): the
/// length and two bytes that tell them apart. Found by search; [`TABLE`]'s construction fails to
/// compile if two names ever share a slot.
const fn slot(n: &[u8]) -> usize {
    ((n.len() << 1) + ((n[12] as usize) << 1) + n[n.len() - 5] as usize) & 31
}

/// A table slot: a known name as the words [`lookup`] compares (its first and its last 24 bytes,
/// which cover up to 48), what it means, and what reading it takes: how its value is read and
/// which of [`Headroom`]'s fields it sets. An empty slot has length 0, which no name that
/// reaches the table has.
#[derive(Clone, Copy)]
struct Known {
    head: (u128, u64),
    tail: (u128, u64),
    len: usize,
    reader: Reader,
    /// `3 × dimension + field`: the index in [`Headroom`]'s fields.
    slot: u8,
}

/// 24 bytes as the two words [`lookup`] compares, little-endian: the first 16 and the last 8.
/// Written with a `const` loop so that [`TABLE`] can use it.
const fn words(bytes: &[u8]) -> (u128, u64) {
    let (mut high, mut low) = (0u128, 0u64);
    let mut i = 0;
    while i < 16 {
        high |= (bytes[i] as u128) << (8 * i);
        i += 1;
    }
    while i < 24 {
        low |= (bytes[i] as u64) << (8 * (i - 16));
        i += 1;
    }
    (high, low)
}

const TABLE: [Known; 32] = {
    let empty = Known {
        head: (0, 0),
        tail: (0, 0),
        len: 0,
        reader: Reader::Count,
        slot: 0,
    };
    let mut t = [empty; 32];
    let mut k = 0;
    while k < NAMES.len() {
        let (name, provider, dim, field) = NAMES[k];
        let s = slot(name);
        assert!(t[s].len == 0, "two rate-limit header names share a slot");
        t[s] = Known {
            head: words(name),
            tail: words(name.split_at(name.len() - 24).1),
            len: name.len(),
            reader: match (field, provider) {
                (Field::Limit | Field::Remaining, _) => Reader::Count,
                (Field::Reset, Provider::OpenAi) => Reader::Duration,
                (Field::Reset, Provider::Anthropic) => Reader::Time,
            },
            slot: (3 * dim.index() + field as usize) as u8,
        };
        k += 1;
    }
    t
};

/// One table load and one comparison of the name's first and last 24 bytes (a name of
/// `SHORTEST..=LONGEST` bytes is assumed; the two overlap below 48): no call to `memcmp`, no
/// loop, no pointer to follow.
#[inline(always)]
fn lookup(name: &[u8]) -> Option<&'static Known> {
    let k = &TABLE[slot(name)];
    if k.len != name.len() {
        return None;
    }
    // The same words as `words`, read with one load each; a name of at least 24 bytes takes
    // neither `?`.
    let read = |w: &[u8; 24]| -> Option<(u128, u64)> {
        let (high, rest) = w.split_first_chunk::<16>()?;
        Some((
            u128::from_le_bytes(*high),
            u64::from_le_bytes(*rest.first_chunk::<8>()?),
        ))
    };
    let (h, t) = (read(name.first_chunk()?)?, read(name.last_chunk()?)?);
    let diff =
        (h.0 ^ k.head.0) | (t.0 ^ k.tail.0) | u128::from((h.1 ^ k.head.1) | (t.1 ^ k.tail.1));
    (diff == 0).then_some(k)
}

/// Rule 2: `v` without its surrounding spaces and tabs.
fn trim(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|b| !matches!(b, b' ' | b'\t'));
    let end = v.iter().rposition(|b| !matches!(b, b' ' | b'\t'));
    match (start, end) {
        (Some(s), Some(e)) => &v[s..=e],
        _ => &[],
    }
}

/// Rule 4: ASCII digits only, at most `u64::MAX`. Up to eight digits (every count a provider
/// sends today but the largest token limits) inline, the rest out of line.
#[inline(always)]
fn parse_count(v: &[u8]) -> Option<u64> {
    if (1..=8).contains(&v.len()) {
        up_to_eight_digits(v)
    } else {
        parse_long_count(v)
    }
}

#[inline(never)]
fn parse_long_count(v: &[u8]) -> Option<u64> {
    match v.len() {
        0 => None,
        1..=8 => up_to_eight_digits(v),
        // Two blocks of digits: at most 16 of them cannot overflow.
        9..=16 => {
            let (high, low) = v.split_at(v.len() - 8);
            Some(up_to_eight_digits(high)? * 100_000_000 + up_to_eight_digits(low)?)
        }
        17..=19 => {
            // At most 19 digits cannot overflow a u64: no checked arithmetic in the loop.
            let mut n: u64 = 0;
            for &b in v {
                let d = b.wrapping_sub(b'0');
                if d > 9 {
                    return None;
                }
                n = n * 10 + u64::from(d);
            }
            Some(n)
        }
        _ => {
            let mut n: u64 = 0;
            for &b in v {
                if !b.is_ascii_digit() {
                    return None;
                }
                n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
            }
            Some(n)
        }
    }
}

/// Eight `0x0F` nibbles, eight `0xF0` nibbles, eight ASCII `0`s, eight `6`s: the SWAR masks.
const LOW: u64 = 0x0F0F_0F0F_0F0F_0F0F;
const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
const ZEROS: u64 = 0x3030_3030_3030_3030;
const SIXES: u64 = 0x0606_0606_0606_0606;

/// One to eight ASCII digits, read as one little-endian word (the first digit in the lowest
/// byte), padded with leading `0`s, checked and converted at once (Daniel Lemire's
/// eight-digit SWAR conversion): no loop, no branch per digit.
#[inline(always)]
fn up_to_eight_digits(v: &[u8]) -> Option<u64> {
    let n = v.len();
    // The digits in the top n bytes of `x`, first digit lowest, zero bytes below them, which
    // read as leading `0`s: an eight-digit number. `pad` is 8 × the count of those bytes.
    let pad = 8 * 8usize.wrapping_sub(n);
    let x = match (v.first_chunk::<4>(), v.last_chunk::<4>()) {
        // Two overlapping 4-byte loads, the last four digits at the top: the shared bytes are
        // equal, so OR keeps them.
        (Some(lo), Some(hi)) if n <= 8 => {
            (u64::from(u32::from_le_bytes(*hi)) << 32) | (u64::from(u32::from_le_bytes(*lo)) << pad)
        }
        _ if (1..=3).contains(&n) => {
            (u64::from(v[0]) << pad)
                | (u64::from(v[n / 2]) << (pad + 8 * (n / 2)))
                | (u64::from(v[n - 1]) << 56)
        }
        _ => return None,
    };
    // Every digit byte an ASCII digit: its high nibble is 3, and adding 6 keeps it 3 (so the low
    // nibble is at most 9); the zero bytes below stay zero. A byte that could carry into its
    // neighbour (`0xFA` and above) fails the first test, so the carry cannot hide anything.
    // Both tests at once: one branch. (`pad` is below 64: n ≥ 1.)
    let (zeros, sixes) = (ZEROS << pad, SIXES << pad);
    let off = ((x & HIGH) ^ zeros) | ((x.wrapping_add(sixes) & HIGH) ^ zeros);
    if off != 0 {
        return None;
    }
    let d = x & LOW;
    // Pairs, then fours, then the eight: each step multiplies adjacent lanes and adds them.
    let d = d.wrapping_mul(10).wrapping_add(d >> 8);
    let d = ((d & 0x0000_00FF_0000_00FF).wrapping_mul(100 + (1_000_000 << 32)))
        .wrapping_add(((d >> 16) & 0x0000_00FF_0000_00FF).wrapping_mul(1 + (10_000 << 32)));
    Some(d >> 32)
}

/// Rule 7: a Go duration, rounded up to whole milliseconds.
#[inline(never)]
fn parse_duration_ms(v: &[u8]) -> Option<u64> {
    if v == b"0" {
        return Some(0);
    }
    if v.is_empty() {
        return None;
    }
    let mut total_ns: u128 = 0;
    let mut i = 0;
    while i < v.len() {
        // The whole part: at least one digit, saturating.
        let start = i;
        let mut whole: u64 = 0;
        while let Some(&b) = v.get(i).filter(|b| b.is_ascii_digit()) {
            whole = whole.saturating_mul(10).saturating_add(u64::from(b - b'0'));
            i += 1;
        }
        if i == start {
            return None;
        }
        // The fraction: `.` and at least one digit; the first nine are kept.
        let mut frac: u64 = 0;
        let mut frac_digits: u32 = 0;
        if v.get(i) == Some(&b'.') {
            i += 1;
            let fstart = i;
            while let Some(&b) = v.get(i).filter(|b| b.is_ascii_digit()) {
                if frac_digits < 9 {
                    frac = frac * 10 + u64::from(b - b'0');
                    frac_digits += 1;
                }
                i += 1;
            }
            if i == fstart {
                return None;
            }
        }
        // The unit: `ms` before `m`.
        let rest = &v[i..];
        let (unit_ns, len): (u64, usize) = if rest.starts_with(b"ms") {
            (1_000_000, 2)
        } else if rest.starts_with(b"us") {
            (1_000, 2)
        } else if rest.starts_with("µs".as_bytes()) || rest.starts_with("μs".as_bytes()) {
            (1_000, 3)
        } else if rest.starts_with(b"ns") {
            (1, 2)
        } else if rest.starts_with(b"h") {
            (3_600_000_000_000, 1)
        } else if rest.starts_with(b"m") {
            (60_000_000_000, 1)
        } else if rest.starts_with(b"s") {
            (1_000_000_000, 1)
        } else {
            return None;
        };
        i += len;
        // The fraction in nanoseconds, rounded down: with nine digits `f`, `f × unit / 10⁹`,
        // exact in 64 bits because every unit divides or is a multiple of a second.
        let nine = frac * 10u64.pow(9 - frac_digits);
        let frac_ns = if unit_ns >= 1_000_000_000 {
            nine * (unit_ns / 1_000_000_000)
        } else {
            nine / (1_000_000_000 / unit_ns)
        };
        let seg = u128::from(whole) * u128::from(unit_ns) + u128::from(frac_ns);
        total_ns = total_ns.saturating_add(seg);
    }
    Some(match u64::try_from(total_ns) {
        Ok(ns) => ns.div_ceil(1_000_000),
        Err(_) => u64::try_from(total_ns.div_ceil(1_000_000)).unwrap_or(u64::MAX),
    })
}

/// The days of each month beyond 28, two bits a month at bit `2 × month`.
const MONTH_EXTRA: u32 = 0x03BB_EECC;

fn is_leap(y: u32) -> bool {
    (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400)
}

/// Days since 1970-01-01 of a proleptic Gregorian date in years 0000–9999, negative before
/// 1970: Howard Hinnant's `days_from_civil` (years start in March, so the leap day is the last
/// day of a year), shifted by 400 years so that all of it is unsigned, and without his split
/// into 400-year eras, which only negative years need: `⌊y/400⌋ = ⌊⌊y/100⌋/4⌋`.
#[inline(always)]
fn days_from_civil(y: u32, m: u32, d: u32) -> i64 {
    /// Days before the first of each month in a year that starts on March 1 (index: month).
    const BEFORE: [u32; 13] = [0, 306, 337, 0, 31, 61, 92, 122, 153, 184, 214, 245, 275];
    let y = y + 400 - u32::from(m <= 2);
    let c = y / 100;
    // `m` is 1 to 12 here: the `unwrap_or` is never taken and costs no division.
    let doy = BEFORE.get(m as usize).copied().unwrap_or(0) + d - 1;
    let days = y * 365 + y / 4 - c + c / 4 + doy;
    // Hinnant's count is 0 on 0000-03-01 and 719 468 on 1970-01-01; the shift adds one
    // 400-year era, 146 097 days.
    i64::from(days) - (146_097 + 719_468)
}

/// `YYYY-MM-DDTHH:MM` as seconds since 1970 at the start of that minute (before any offset), or
/// `None` if the shape or the date is wrong: two 8-byte words (`YYYY-MM-`, `DDTHH:MM`, first byte
/// lowest), each checked at once against its pattern of digits and separators, then its digits
/// paired.
#[inline(always)]
fn minute_s(a: u64, b: u64) -> Option<i64> {
    // Digit positions (0xFF bytes), first byte lowest; then what the other bytes must be.
    const DIGITS_A: u64 = 0x00FF_FF00_FFFF_FFFF; // YYYY-MM-
    const DIGITS_B: u64 = 0xFFFF_00FF_FF00_FFFF; // DDTHH:MM
    const SEP_A: u64 = 0x2D00_002D_0000_0000; // - at 4 and 7
    const SEP_B: u64 = 0x0000_3A00_0074_0000; // t at 2 (T lower-cased by the OR), : at 5
    const T_CASE: u64 = 0x0000_0000_0020_0000;
    // Every test sets bits of `bad` when it fails: one branch for the whole shape.
    let off_digits = |w: u64, mask: u64| {
        ((w & HIGH & mask) ^ (ZEROS & mask))
            | ((w.wrapping_add(SIXES & mask) & HIGH & mask) ^ (ZEROS & mask))
    };
    let bad = off_digits(a, DIGITS_A)
        | off_digits(b, DIGITS_B)
        | ((a & !DIGITS_A) ^ SEP_A)
        | (((b | T_CASE) & !DIGITS_B) ^ SEP_B);
    if bad != 0 {
        return None;
    }
    // Each byte's digit, separators zeroed; then byte i becomes 10 × digit i + digit i+1
    // (at most 99: no carry between bytes).
    let pairs = |w: u64, mask: u64| {
        let d = w & LOW & mask;
        d.wrapping_mul(10).wrapping_add(d >> 8)
    };
    let (a, b) = (pairs(a, DIGITS_A), pairs(b, DIGITS_B));
    let byte = |w: u64, i: u32| ((w >> (8 * i)) & 0xFF) as u32;
    let year = byte(a, 0) * 100 + byte(a, 2);
    let (month, day) = (byte(a, 5), byte(b, 0));
    let (hh, mm) = (byte(b, 3), byte(b, 6));
    if !(1..=12).contains(&month) {
        return None;
    }
    let month_days = 28 + ((MONTH_EXTRA >> (2 * month)) & 3);
    let leap_day = month == 2 && day == 29 && is_leap(year);
    if day < 1 || (day > month_days && !leap_day) || hh > 23 || mm > 59 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + i64::from(hh * 3600 + mm * 60))
}

/// `:SS` (a leap second, `60`, allowed) as seconds, or `None`.
#[inline(always)]
fn second_s(tail: [u8; 3]) -> Option<i64> {
    let [colon, s1, s2] = tail;
    let (s1, s2) = (s1.wrapping_sub(b'0'), s2.wrapping_sub(b'0'));
    if colon != b':' || s1 > 9 || s2 > 9 {
        return None;
    }
    let ss = s1 * 10 + s2;
    (ss <= 60).then_some(i64::from(ss))
}

/// The minute of the last RFC 3339 time read: its first 16 bytes (`YYYY-MM-DDTHH:MM`, as one
/// little-endian word) and their [`minute_s`]. One answer's reset times nearly always share their
/// minute (Anthropic sends one per dimension), so the later ones skip the date: only their
/// seconds and what follows are read. It always holds a valid minute (a fresh one holds
/// 1970-01-01T00:00, which is 0), so a hit needs no other check.
#[derive(Clone, Copy, Debug)]
struct Minute {
    prefix: u128,
    secs: i64,
}

impl Default for Minute {
    fn default() -> Self {
        Minute {
            prefix: u128::from_le_bytes(*b"1970-01-01T00:00"),
            secs: 0,
        }
    }
}

/// Rule 8: an RFC 3339 time as Unix milliseconds, the fraction rounded up (years 0000–9999 keep
/// it far inside `i64`). `memo` is the last minute read (see [`Minute`]).
#[inline(always)]
fn parse_rfc3339_ms(v: &[u8], memo: &mut Minute) -> Option<i64> {
    // `YYYY-MM-DDTHH:MM:SS` is 19 bytes.
    let (head, rest) = v.split_first_chunk::<19>()?;
    let (minute, tail) = head.split_first_chunk::<16>()?;
    let prefix = u128::from_le_bytes(*minute);
    let minute = if prefix == memo.prefix {
        memo.secs
    } else {
        let (a, b) = minute.split_first_chunk::<8>()?;
        let a = u64::from_le_bytes(*a);
        let b = u64::from_le_bytes(*b.first_chunk::<8>()?);
        let secs = minute_s(a, b)?;
        *memo = Minute { prefix, secs };
        secs
    };
    let secs = minute + second_s(*tail.first_chunk::<3>()?)?;
    // The common shapes, `…Z` and `….mmmZ`, inline; any other fraction or an offset out of line.
    match *rest {
        [b'Z' | b'z'] => Some(secs * 1000),
        [b'.', a, b, c, b'Z' | b'z'] => {
            let (a, b, c) = (
                a.wrapping_sub(b'0'),
                b.wrapping_sub(b'0'),
                c.wrapping_sub(b'0'),
            );
            if a > 9 || b > 9 || c > 9 {
                return None;
            }
            Some(secs * 1000 + i64::from(u16::from(a) * 100 + u16::from(b) * 10 + u16::from(c)))
        }
        _ => fraction_and_offset(secs, rest),
    }
}

/// What follows `YYYY-MM-DDTHH:MM:SS` when it is not a lone `Z`: an optional fraction, then `Z`
/// or an offset; `secs` is the time before them.
#[inline(never)]
fn fraction_and_offset(secs: i64, mut rest: &[u8]) -> Option<i64> {
    // The fraction, to the millisecond rounded up.
    let mut frac_ms: i64 = 0;
    if rest.first() == Some(&b'.') {
        let n = rest[1..]
            .iter()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(rest.len() - 1);
        if n == 0 {
            return None;
        }
        let f = &rest[1..=n];
        for k in 0..3 {
            frac_ms = frac_ms * 10 + f.get(k).map_or(0, |&b| i64::from(b - b'0'));
        }
        if f.iter().skip(3).any(|&b| b != b'0') {
            frac_ms += 1;
        }
        rest = &rest[n + 1..];
    }
    let offset_s = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let two = |a: u8, b: u8| {
                let (a, b) = (a.wrapping_sub(b'0'), b.wrapping_sub(b'0'));
                (a <= 9 && b <= 9).then(|| i64::from(a) * 10 + i64::from(b))
            };
            let (oh, om) = (two(*h1, *h2)?, two(*m1, *m2)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let off = (oh * 60 + om) * 60;
            if *sign == b'-' { -off } else { off }
        }
        _ => return None,
    };
    Some((secs - offset_s) * 1000 + frac_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(name: &str, value: &str) -> Headroom {
        let mut h = Headroom::default();
        h.header(name, value, Some(NOW));
        h
    }

    const NOW: u64 = 1_713_308_399_000; // 2024-04-16T22:59:59Z

    /// The readings as they were before the word-at-a-time parsers (commit d26279e): the
    /// references that the fast ones must agree with on every input.
    mod reference {
        /// Rule 4: ASCII digits only, at most `u64::MAX`.
        pub(super) fn parse_count(v: &[u8]) -> Option<u64> {
            if v.is_empty() {
                return None;
            }
            if v.len() <= 19 {
                // At most 19 digits cannot overflow a u64: no checked arithmetic in the loop.
                let mut n: u64 = 0;
                for &b in v {
                    let d = b.wrapping_sub(b'0');
                    if d > 9 {
                        return None;
                    }
                    n = n * 10 + u64::from(d);
                }
                return Some(n);
            }
            let mut n: u64 = 0;
            for &b in v {
                if !b.is_ascii_digit() {
                    return None;
                }
                n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
            }
            Some(n)
        }

        fn digits(v: &[u8]) -> Option<i64> {
            let mut n: i64 = 0;
            for &b in v {
                if !b.is_ascii_digit() {
                    return None;
                }
                n = n * 10 + i64::from(b - b'0');
            }
            Some(n)
        }

        fn is_leap(y: i64) -> bool {
            (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
        }

        /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`),
        /// negative before 1970.
        fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
            let y = if m <= 2 { y - 1 } else { y };
            let era = y.div_euclid(400);
            let yoe = y - era * 400;
            let mp = (m + 9) % 12;
            let doy = (153 * mp + 2) / 5 + d - 1;
            let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
            era * 146_097 + doe - 719_468
        }

        /// Rule 8: an RFC 3339 time as Unix milliseconds, the fraction rounded up (years 0000–9999 keep
        /// it far inside `i64`).
        fn parse_rfc3339_ms(v: &[u8]) -> Option<i64> {
            // `YYYY-MM-DDTHH:MM:SS` is 19 bytes.
            let (head, mut rest) = v.split_at_checked(19)?;
            if head[4] != b'-'
                || head[7] != b'-'
                || !matches!(head[10], b'T' | b't')
                || head[13] != b':'
                || head[16] != b':'
            {
                return None;
            }
            let year = digits(&head[0..4])?;
            let month = digits(&head[5..7])?;
            let day = digits(&head[8..10])?;
            let (hh, mm, ss) = (
                digits(&head[11..13])?,
                digits(&head[14..16])?,
                digits(&head[17..19])?,
            );
            const DAYS: [i64; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
            if !(1..=12).contains(&month) {
                return None;
            }
            let month_days = DAYS[(month - 1) as usize] + i64::from(month == 2 && is_leap(year));
            if day < 1 || day > month_days || hh > 23 || mm > 59 || ss > 60 {
                return None;
            }
            // The fraction, to the millisecond rounded up.
            let mut frac_ms: i64 = 0;
            if rest.first() == Some(&b'.') {
                let n = rest[1..]
                    .iter()
                    .position(|b| !b.is_ascii_digit())
                    .unwrap_or(rest.len() - 1);
                if n == 0 {
                    return None;
                }
                let f = &rest[1..=n];
                for k in 0..3 {
                    frac_ms = frac_ms * 10 + f.get(k).map_or(0, |&b| i64::from(b - b'0'));
                }
                if f.iter().skip(3).any(|&b| b != b'0') {
                    frac_ms += 1;
                }
                rest = &rest[n + 1..];
            }
            let offset_min = match rest {
                [b'Z' | b'z'] => 0,
                [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
                    let (oh, om) = (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?);
                    if oh > 23 || om > 59 {
                        return None;
                    }
                    let off = oh * 60 + om;
                    if *sign == b'-' { -off } else { off }
                }
                _ => return None,
            };
            let secs = days_from_civil(year, month, day) * 86_400 + hh * 3600 + mm * 60 + ss
                - offset_min * 60;
            Some(secs * 1000 + frac_ms)
        }

        /// The reset as `Headroom::header` resolved it, in 128 bits.
        pub(super) fn anthropic_reset(v: &[u8], now: Option<u64>) -> Option<u64> {
            parse_rfc3339_ms(v).and_then(|at| {
                let left = i128::from(at) - i128::from(now?);
                Some(u64::try_from(left.max(0)).unwrap_or(u64::MAX))
            })
        }
    }

    /// What the fast paths read, against the references, for one value.
    fn agree(v: &str, now: Option<u64>) {
        let b = v.as_bytes();
        assert_eq!(
            parse_count(trim(b)),
            reference::parse_count(trim(b)),
            "count {v:?}"
        );
        let expect = reference::anthropic_reset(trim(b), now);
        let reset = "anthropic-ratelimit-tokens-reset";
        let mut h = Headroom::default();
        h.header(reset, v, now);
        let fast = h.dimension_fields(Dimension::Tokens)[2];
        assert_eq!(fast, expect, "reset {v:?} at {now:?}");
        // Read again, now with its own minute remembered, and after another time of the same
        // minute (the remembered minute's hit), and after one of another minute (its miss).
        h.header(reset, v, now);
        assert_eq!(
            h.dimension_fields(Dimension::Tokens)[2],
            expect,
            "again {v:?}"
        );
        let t = trim(b);
        for primer in [t.get(..16), Some(&b"2024-04-16T22:58"[..])]
            .into_iter()
            .flatten()
        {
            let mut primer = primer.to_vec();
            primer.extend_from_slice(b":07.5Z");
            let mut h = Headroom::default();
            h.header(
                reset,
                &std::string::String::from_utf8_lossy(&primer),
                Some(NOW),
            );
            h.header(reset, v, now);
            let got = h.dimension_fields(Dimension::Tokens)[2];
            assert_eq!(got, expect, "{v:?} after {primer:?}");
        }
    }

    /// An offset whose digits are not digits (the fuzz target's finding: `'/' - '0'` wraps to
    /// 255, and `255 * 10` overflowed a `u8` before the digit check could reject it).
    #[test]
    fn offsets_with_non_digits_are_malformed_not_a_panic() {
        for v in [
            "2024-04-17T01:00:00+02:/0",
            "2024-04-17T01:00:00+/2:00",
            "2024-04-17T01:00:00-0~:00",
            "2024-04-17T01:00:00+02:0\u{ff}",
            "2024-04-17T01:00:00.5+02:/9",
        ] {
            agree(v, Some(NOW));
            assert_eq!(
                one("anthropic-ratelimit-tokens-reset", v),
                Headroom::default(),
                "{v:?}"
            );
        }
    }

    #[test]
    fn fast_readings_agree_with_the_references_on_every_date() {
        // Every year 0000-9999 at the ends of its months, every day of four centuries' edges,
        // and the edges of every field.
        let mut days = 0u64;
        for y in 0..=9999 {
            let all_days = matches!(y % 400, 0 | 1 | 4 | 100);
            for m in 1..=12 {
                for d in (1..=31).filter(|&d| all_days || matches!(d, 1 | 28..)) {
                    let v = std::format!("{y:04}-{m:02}-{d:02}T{:02}:59:60Z", (y + m + d) % 24);
                    agree(&v, Some(NOW));
                    days += 1;
                }
            }
        }
        assert!(days > 10_000 * 12 * 5);
        for y in [0, 1969, 1970, 2000, 2024, 2100, 9999] {
            for m in 0..=99 {
                for d in 0..=99 {
                    agree(&std::format!("{y:04}-{m:02}-{d:02}T00:00:00Z"), Some(NOW));
                }
            }
            for t in 0..=99 {
                let v = std::format!("{y:04}-02-28T{t:02}:{t:02}:{t:02}Z");
                agree(&v, Some(NOW));
                agree(&v, Some(0));
                agree(&v, Some(u64::MAX));
                agree(&v, None);
            }
        }
    }

    #[test]
    fn fast_counts_agree_with_the_references() {
        for n in (0..100_000u64).chain([99_999_999, 100_000_000, 9_999_999_999_999_999]) {
            for v in [
                std::format!("{n}"),
                std::format!("{n:08}"),
                std::format!("{n:016}"),
            ] {
                agree(&v, Some(NOW));
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4_096))]

        /// Near-miss dates (one or two bytes replaced by anything) and arbitrary text.
        #[test]
        fn fast_readings_agree_with_the_references(
            shaped in "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,12})?([Zz]|[+-][0-9]{2}:[0-9]{2})?",
            hits in proptest::collection::vec((0usize..40, proptest::char::any()), 0..3),
            any in "\\PC{0,30}",
            digits in "[ \t]?[0-9+\\-.,e ]{0,22}[ \t]?",
            now in proptest::option::of(proptest::num::u64::ANY),
        ) {
            let mut mutated: std::vec::Vec<char> = shaped.chars().collect();
            for (at, c) in hits {
                if let Some(slot) = mutated.get_mut(at) {
                    *slot = c;
                }
            }
            let mutated: std::string::String = mutated.into_iter().collect();
            for v in [&shaped, &mutated, &any, &digits] {
                agree(v, now);
                agree(v, Some(NOW));
            }
        }

        /// Names: exactly the known ones, ignoring ASCII case; near misses of them are not.
        #[test]
        fn names_are_recognised_exactly(
            pick in 0usize..18,
            hits in proptest::collection::vec((0usize..44, proptest::char::any()), 0..3),
            upper in proptest::bool::ANY,
        ) {
            let mut name: std::vec::Vec<char> =
                core::str::from_utf8(NAMES[pick].0).unwrap().chars().collect();
            for (at, c) in hits {
                if let Some(slot) = name.get_mut(at) {
                    *slot = c;
                }
            }
            let mut name: std::string::String = name.into_iter().collect();
            if upper {
                name.make_ascii_uppercase();
            }
            let expect = NAMES.iter().find(|e| e.0.eq_ignore_ascii_case(name.as_bytes()));
            let got = recognise(name.as_bytes());
            proptest::prop_assert_eq!(got.is_some(), expect.is_some(), "{:?}", name);
            if let (Some(k), Some(&(_, provider, dim, field))) = (got, expect) {
                proptest::prop_assert_eq!(usize::from(k.slot), 3 * dim.index() + field as usize);
                let reader = match (field, provider) {
                    (Field::Reset, Provider::OpenAi) => Reader::Duration,
                    (Field::Reset, Provider::Anthropic) => Reader::Time,
                    _ => Reader::Count,
                };
                proptest::prop_assert_eq!(k.reader, reader);
            }
        }
    }

    fn reset(v: &str) -> Option<u64> {
        one("x-ratelimit-reset-requests", v)
            .quota(Dimension::Requests)
            .reset_in_ms
    }

    fn areset(v: &str) -> Option<u64> {
        one("anthropic-ratelimit-tokens-reset", v)
            .quota(Dimension::Tokens)
            .reset_in_ms
    }

    #[test]
    fn names_round_trip() {
        for d in Dimension::ALL {
            assert_eq!(Dimension::from_name(d.name()), Some(d));
        }
        assert_eq!(Dimension::from_name("bogus"), None);
    }

    #[test]
    fn recognises_every_name_and_nothing_else() {
        let mut h = Headroom::default();
        for f in ["limit", "remaining", "reset"] {
            for d in ["requests", "tokens"] {
                assert!(h.header(&std::format!("x-ratelimit-{f}-{d}"), "1", None));
                assert!(h.header(&std::format!("X-RateLimit-{f}-{d}"), "1", None));
            }
            for d in ["requests", "tokens", "input-tokens", "output-tokens"] {
                assert!(h.header(&std::format!("anthropic-ratelimit-{d}-{f}"), "1", None));
            }
        }
        for n in [
            "x-ratelimit-limit",
            "x-ratelimit-requests",
            "x-ratelimit--requests",
            "x-ratelimit-limit-input-tokens",
            "anthropic-ratelimit-requests",
            "anthropic-ratelimit-limit",
            "anthropic-ratelimit-requestslimit",
            "anthropic-ratelimit-requests-limit-x",
            "retry-after",
            "",
            "x-ratelimit-",
        ] {
            assert!(!h.header(n, "1", None), "{n}");
        }
    }

    #[test]
    fn counts() {
        let rem = |v: &str| {
            let mut h = one("x-ratelimit-limit-tokens", "100");
            h.header("x-ratelimit-remaining-tokens", v, None);
            h.quota(Dimension::Tokens).remaining
        };
        assert_eq!(rem("59"), Some(59));
        assert_eq!(rem(" 007\t"), Some(7));
        assert_eq!(rem("0"), Some(0));
        assert_eq!(rem("18446744073709551615"), Some(u64::MAX));
        for bad in [
            "-1",
            "",
            " ",
            "+5",
            "1.5",
            "1e3",
            "5 5",
            "60, 60",
            "18446744073709551616",
        ] {
            assert_eq!(rem(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn zero_means_unknown_without_a_positive_limit() {
        // Azure: remaining 0 and nothing else.
        let h = one("x-ratelimit-remaining-requests", "0");
        assert_eq!(h.quota(Dimension::Requests).remaining, None);
        assert!(h.is_empty());
        // Limit 0 is unknown, and so the remaining 0 with it.
        let mut h = one("x-ratelimit-limit-requests", "0");
        h.header("x-ratelimit-remaining-requests", "0", None);
        assert_eq!(h.quota(Dimension::Requests), Quota::default());
        // A positive limit, in either order.
        let mut h = one("x-ratelimit-remaining-requests", "0");
        h.header("x-ratelimit-limit-requests", "60", None);
        assert_eq!(h.quota(Dimension::Requests).remaining, Some(0));
        assert_eq!(h.headroom_ppm(), Some(0));
        // Azure's positive remaining alone is known, but gives no headroom.
        let h = one("x-ratelimit-remaining-tokens", "5000");
        assert_eq!(h.quota(Dimension::Tokens).remaining, Some(5000));
        assert_eq!(h.headroom_ppm(), None);
    }

    #[test]
    fn durations() {
        assert_eq!(reset("1s"), Some(1000));
        assert_eq!(reset("6m0s"), Some(360_000));
        assert_eq!(reset("12ms"), Some(12));
        assert_eq!(reset("23h47m36.648s"), Some(85_656_648));
        assert_eq!(reset("1m5ms"), Some(60_005));
        assert_eq!(reset("5ms1m"), Some(60_005));
        assert_eq!(reset("0"), Some(0));
        assert_eq!(reset("0s"), Some(0));
        assert_eq!(reset("1.0001ms"), Some(2));
        assert_eq!(reset("1500us"), Some(2));
        assert_eq!(reset("1µs"), Some(1));
        assert_eq!(reset("1μs"), Some(1));
        assert_eq!(reset("999999ns"), Some(1));
        assert_eq!(reset("1.5h"), Some(5_400_000));
        assert_eq!(reset("0.1234567891s"), Some(124));
        assert_eq!(reset(" 2s "), Some(2000));
        assert_eq!(reset("99999999999999999999999h"), Some(u64::MAX));
        for bad in [
            "", "5", "-1s", "+1s", ".5s", "5.s", "1S", "5d", "1 s", "1s ms", "s", "1m0", "1.2.3s",
            "00", "ms", "1sm",
        ] {
            assert_eq!(reset(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn rfc3339() {
        assert_eq!(areset("2024-04-16T22:59:59Z"), Some(0));
        assert_eq!(areset("2024-04-16T23:00:00Z"), Some(1000));
        assert_eq!(areset("2024-04-16t23:00:00z"), Some(1000));
        assert_eq!(areset("2024-04-16T23:00:00.5Z"), Some(1500));
        assert_eq!(areset("2024-04-16T23:00:00.0001Z"), Some(1001));
        assert_eq!(areset("2024-04-16T23:00:00.123000000Z"), Some(1123));
        assert_eq!(areset("2024-04-17T00:00:00+01:00"), Some(1000));
        assert_eq!(areset("2024-04-16T22:00:00-01:00"), Some(1000));
        assert_eq!(areset("2024-04-16T22:00:00Z"), Some(0), "past");
        assert_eq!(areset("1969-12-31T23:59:59Z"), Some(0), "before 1970");
        assert_eq!(areset("2024-04-16T22:59:60Z"), Some(1000), "leap second");
        assert_eq!(areset("2024-02-29T00:00:00Z"), Some(0));
        for bad in [
            "",
            "2024-04-16",
            "2024-04-16T23:00:00",
            "2024-04-16 23:00:00Z",
            "2024-04-16T23:00:00.Z",
            "2024-04-16T23:00:00+0100",
            "2024-04-16T23:00:00+24:00",
            "2023-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-04-31T00:00:00Z",
            "2024-04-16T24:00:00Z",
            "2024-04-16T23:60:00Z",
            "2024-04-16T23:00:61Z",
            "Tue, 16 Apr 2024 23:00:00 GMT",
            "1713308400",
            "2024-04-16T23:00:00ZZ",
            "+2024-04-16T23:00:00Z",
        ] {
            assert_eq!(areset(bad), None, "{bad:?}");
        }
        // No wall clock, no reset.
        let mut h = Headroom::default();
        h.header(
            "anthropic-ratelimit-tokens-reset",
            "2024-04-16T23:00:00Z",
            None,
        );
        assert_eq!(h.quota(Dimension::Tokens).reset_in_ms, None);
    }

    #[test]
    fn headroom_is_the_scarcest_dimension() {
        let mut h = Headroom::default();
        for (n, v) in [
            ("anthropic-ratelimit-requests-limit", "50"),
            ("anthropic-ratelimit-requests-remaining", "49"),
            ("anthropic-ratelimit-input-tokens-limit", "40000"),
            ("anthropic-ratelimit-input-tokens-remaining", "1000"),
            ("anthropic-ratelimit-output-tokens-limit", "8000"),
            ("anthropic-ratelimit-output-tokens-remaining", "9000"),
        ] {
            assert!(h.header(n, v, Some(NOW)));
        }
        assert_eq!(h.dimension_ppm(Dimension::Requests), Some(980_000));
        assert_eq!(h.dimension_ppm(Dimension::InputTokens), Some(25_000));
        assert_eq!(h.dimension_ppm(Dimension::OutputTokens), Some(1_000_000));
        assert_eq!(h.headroom_ppm(), Some(25_000));
        assert_eq!(Headroom::default().headroom_ppm(), None);
        // The last header wins, even when it is malformed.
        h.header("anthropic-ratelimit-input-tokens-remaining", "-1", None);
        assert_eq!(h.headroom_ppm(), Some(980_000));
        // Rounded down.
        let mut h = one("x-ratelimit-limit-requests", "3");
        h.header("x-ratelimit-remaining-requests", "1", None);
        assert_eq!(h.headroom_ppm(), Some(333_333));
        let mut h = one("x-ratelimit-limit-requests", "18446744073709551615");
        h.header(
            "x-ratelimit-remaining-requests",
            "18446744073709551614",
            None,
        );
        assert_eq!(h.headroom_ppm(), Some(999_999));
    }

    /// Two `Headroom`s are equal, hash alike and print alike when they hold the same figures,
    /// whatever times they read on the way (the remembered minute is a cache, not a figure); a
    /// different figure makes them unequal, hash apart and print apart.
    #[test]
    fn equality_hashing_and_debug_follow_the_figures() {
        use core::hash::{Hash, Hasher};
        fn hash(h: &Headroom) -> u64 {
            let mut s = std::hash::DefaultHasher::new();
            h.hash(&mut s);
            s.finish()
        }
        let reset = "anthropic-ratelimit-tokens-reset";
        // A reset read (the minute remembered), then overwritten by a value that does not read.
        let mut cached = one(reset, "2024-04-16T23:00:00Z");
        assert_ne!(cached, Headroom::default());
        cached.header(reset, "soon", Some(NOW));
        let empty = Headroom::default();
        assert!(cached.is_empty());
        assert_eq!(cached, empty);
        assert_eq!(hash(&cached), hash(&empty));
        assert_eq!(std::format!("{cached:?}"), std::format!("{empty:?}"));
        let some = one("x-ratelimit-remaining-requests", "5");
        assert_ne!(some, empty);
        assert_ne!(hash(&some), hash(&empty));
        let printed = std::format!("{some:?}");
        assert!(
            printed.starts_with("Headroom") && printed.contains("Some(5)"),
            "{printed}"
        );
        assert_ne!(printed, std::format!("{empty:?}"));
    }

    /// A name one or two bytes away from a known one is not recognised, whichever bytes change
    /// and by whatever difference (two changes by the same difference could cancel out in a
    /// comparison that mixes its words wrongly), unless it is a known name itself; upper case
    /// aside.
    #[test]
    fn names_near_a_known_one_are_not_recognised() {
        let mut h = Headroom::default();
        let mut checked = 0u32;
        for &(name, ..) in NAMES.iter() {
            for i in 0..name.len() {
                for j in i..name.len() {
                    for delta in [1u8, 2, 4, 8, 16, 64] {
                        let mut near = name.to_vec();
                        near[i] ^= delta;
                        if j > i {
                            near[j] ^= delta;
                        }
                        let known = NAMES.iter().any(|n| n.0.eq_ignore_ascii_case(&near));
                        let near = core::str::from_utf8(&near).unwrap();
                        assert_eq!(h.header(near, "1", None), known, "{near:?}");
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 50_000, "{checked}");
    }

    /// Counts of every length up to 20 digits (each length has its own path: up to 8, two blocks
    /// up to 16, a loop without overflow checks up to 19, a checked one beyond) agree with the
    /// reference: all nines, a one and zeros, every digit in turn, and a non-digit at each place.
    #[test]
    fn counts_of_every_length_agree_with_the_reference() {
        for len in 1..=20usize {
            let mut values = std::vec![
                "9".repeat(len),
                std::format!("1{}", "0".repeat(len - 1)),
                (0..len)
                    .map(|i| char::from(b'0' + (i % 10) as u8))
                    .collect(),
                (0..len)
                    .map(|i| char::from(b'9' - (i % 10) as u8))
                    .collect(),
            ];
            for at in 0..len {
                for bad in ['/', ':', 'a'] {
                    let mut v: std::vec::Vec<char> = "7".repeat(len).chars().collect();
                    v[at] = bad;
                    values.push(v.into_iter().collect());
                }
            }
            for v in values {
                agree(&v, Some(NOW));
            }
        }
        assert_eq!(
            parse_count(b"9999999999999999999"),
            Some(9_999_999_999_999_999_999)
        );
        assert_eq!(parse_count(b"99999999999999999999"), None);
    }

    /// A `Headroom` is empty until a header with a usable value is read, in any dimension and
    /// any field; an unreadable value, or a remaining 0 with no limit, leaves it empty.
    #[test]
    fn empty_until_a_usable_value_is_read() {
        assert!(Headroom::default().is_empty());
        assert!(one("x-ratelimit-limit-requests", "soon").is_empty());
        assert!(one("x-ratelimit-remaining-requests", "0").is_empty());
        for (name, value) in [
            ("x-ratelimit-limit-requests", "60"),
            ("x-ratelimit-remaining-tokens", "5000"),
            ("x-ratelimit-reset-requests", "1s"),
            ("anthropic-ratelimit-input-tokens-limit", "40000"),
            ("anthropic-ratelimit-output-tokens-remaining", "1"),
            ("anthropic-ratelimit-tokens-reset", "2024-04-16T23:00:00Z"),
        ] {
            assert!(!one(name, value).is_empty(), "{name}: {value}");
        }
    }

    /// A reset time with any other byte where a digit or a separator belongs (letters, whose
    /// high nibble is not a digit's, the bytes next to the digits, a space) agrees with the
    /// reference reader: it is not a time. In each of the shapes read by different code: `Z`,
    /// milliseconds, a longer fraction, an offset, none.
    #[test]
    fn reset_times_with_a_wrong_byte_anywhere_agree_with_the_reference() {
        let mut checked = 0u32;
        for base in [
            "2024-04-16T23:00:07Z",
            "2024-04-16T23:00:07.250Z",
            "2024-04-16T23:00:07.999Z",
            "2024-04-16T23:00:07.123z",
            "2024-04-16T23:00:07.2500001Z",
            "2024-04-16T23:00:07+01:30",
            // Offsets at their limits and one past them.
            "2024-04-16T23:00:07-23:59",
            "2024-04-16T23:00:07+24:00",
            "2024-04-16T23:00:07+00:60",
            // No zone: not a time, whatever comes before.
            "2024-04-16T23:00:07.2500001",
            "2024-04-16T23:00:07",
        ] {
            agree(base, Some(NOW));
            for at in 0..base.len() {
                for bad in [
                    b'/', b':', b'-', b'A', b'J', b'P', b'a', b'z', b' ', b'~', b'\t',
                ] {
                    let mut v = base.as_bytes().to_vec();
                    v[at] = bad;
                    agree(core::str::from_utf8(&v).unwrap(), Some(NOW));
                    checked += 1;
                }
            }
        }
        assert!(checked > 1_000, "{checked}");
        // Two wrong bytes at once: checks that combine the two words of the date wrongly could
        // let aligned errors cancel (a letter's nibble error in one word against the same bits
        // of a wrong separator in the other: `]` is `-` with `A`'s error).
        let base = b"2024-04-16T23:00:07Z";
        let wrong = [b'A', b']', b'/', b' ', b'~', b'J', b'z'];
        for i in 0..19 {
            for j in i + 1..19 {
                for x in wrong {
                    for y in wrong {
                        let mut v = base.to_vec();
                        (v[i], v[j]) = (x, y);
                        agree(core::str::from_utf8(&v).unwrap(), Some(NOW));
                    }
                }
            }
        }
    }
}
