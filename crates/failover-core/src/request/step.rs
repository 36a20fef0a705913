//! The request engine's public data: what a caller asks of a request, and what the request
//! answers (an attempt to make, a wait, a finish) and reports.

use crate::event::ProviderId;
use crate::outcome::{Outcome, OutcomeKind};
use crate::ticket::{Recorded, Ticket, TicketKind};

/// What the caller asks of one request; every field left `None` takes the policy's default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestOptions {
    /// Attempts at most, counting same-provider retries. Default: one per provider plus the
    /// policy's `same_provider_retries`, at most 255. 0 is treated as 1.
    pub max_attempts: Option<u8>,
    /// The request's deadline, in the engine's time (ms). Default: its start plus the policy's
    /// `request_timeout_ms`. No attempt starts at or after it, and no attempt's deadline is past it.
    pub deadline_ms: Option<u64>,
    /// The longest wait for a provider to come back, ms. Default: the policy's `max_wait_ms`.
    pub max_wait_ms: Option<u64>,
    /// The request is streamed: attempts get a first-token deadline and an idle deadline, and
    /// only the time to the first token is recorded as latency.
    pub stream: bool,
    /// A sticky key (from [`crate::hash_key`]), as in [`crate::PickRequest::key`].
    pub key: Option<u64>,
}

/// One attempt to make: call `ticket.provider` and report what happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// The router's ticket (the provider, whether the call is also a probe).
    pub ticket: Ticket,
    /// 1 for the request's first attempt, 2 for the next, ….
    pub number: u8,
    /// When the attempt must have answered (non-streamed) or produced its first token (streamed),
    /// in the engine's time (ms). The binding enforces it: it cancels the call then and calls
    /// [`crate::Request::poll`], which records a timeout.
    pub deadline_ms: u64,
    /// `deadline_ms` as a duration from the attempt's start, ms: the timeout to give the SDK.
    pub timeout_ms: u64,
    /// For a stream: the longest gap between chunks once content has started, ms.
    pub idle_ms: Option<u64>,
    /// Whether this is the request's last candidate (it was given all the remaining time).
    pub last: bool,
}

/// What the request recorded at the router for one attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Report {
    /// The attempt's provider.
    pub provider: ProviderId,
    /// The outcome recorded (its latency is the request's own measure).
    pub outcome: Outcome,
    /// What the router did with it.
    pub recorded: Recorded,
    /// The attempt's ticket kind (a probe of a recovering provider, or a plain request).
    pub kind: TicketKind,
    /// The attempt's number in its request (1 for the first).
    pub number: u8,
    /// When the attempt started, in the engine's time (ms).
    pub started_ms: u64,
    /// When a stream's first token arrived (ms); `None` for a non-streamed attempt or a stream
    /// that failed before it.
    pub first_token_ms: Option<u64>,
    /// When the outcome was recorded (ms): `ended_ms - started_ms` is the attempt's whole
    /// duration (for a stream, to its end), which `outcome.latency_ms` is not for a stream.
    pub ended_ms: u64,
    /// Why each provider ahead of this attempt's in priority order did not take it, as the
    /// router saw them when the attempt started (empty when the first provider took it).
    pub excluded: Excluded,
}

/// Why a provider ahead of an attempt's provider in priority order did not take the attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Exclusion {
    /// This request already tried it (or the caller excluded it).
    Tried,
    /// Isolated by hand ([`crate::Router::isolate`]).
    Isolated,
    /// Its circuit is open.
    Open,
    /// Its circuit is probing and gave no probe permit (one in flight, probes by health checks
    /// only, or another fleet instance holds the probe lease).
    Probing,
    /// Throttled after a 429 (until its Retry-After or backoff ends), or benched after its
    /// credentials or quota were rejected.
    Throttled,
    /// Paced by its rate-limit headroom: at zero headroom, or this request fell outside its
    /// paced share.
    Paced,
    /// Ramping back after recovery, and this request fell outside the ramp's share.
    Ramping,
}

impl Exclusion {
    /// Every reason, in code order (the code is the index).
    pub const ALL: [Exclusion; 7] = [
        Exclusion::Tried,
        Exclusion::Isolated,
        Exclusion::Open,
        Exclusion::Probing,
        Exclusion::Throttled,
        Exclusion::Paced,
        Exclusion::Ramping,
    ];

    /// The stable snake_case name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Exclusion::Tried => "tried",
            Exclusion::Isolated => "isolated",
            Exclusion::Open => "open",
            Exclusion::Probing => "probing",
            Exclusion::Throttled => "throttled",
            Exclusion::Paced => "paced",
            Exclusion::Ramping => "ramping",
        }
    }
}

/// The providers an attempt passed over and why ([`Report::excluded`]): one [`Exclusion`] or none
/// per provider, packed in three bit planes (provider `i`'s reason is `1 +` its code, bit `i`
/// of each plane; 0: not excluded). 24 bytes, `Copy`; empty by default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Excluded {
    planes: [u64; 3],
}

impl Excluded {
    /// Nobody excluded.
    pub const NONE: Excluded = Excluded { planes: [0; 3] };

    /// Marks provider `id` excluded for `why` (a provider is marked once). O(1).
    pub(crate) fn set(&mut self, id: ProviderId, why: Exclusion) {
        let code = why as u64 + 1;
        for (b, plane) in self.planes.iter_mut().enumerate() {
            if code >> b & 1 == 1 {
                *plane |= 1u64 << id.index();
            }
        }
    }

    /// Why provider `id` was excluded, if it was. O(1).
    #[must_use]
    pub fn get(&self, id: ProviderId) -> Option<Exclusion> {
        let i = id.index();
        if i >= 64 {
            return None;
        }
        let code = (0..3).fold(0usize, |c, b| c | ((self.planes[b] >> i & 1) as usize) << b);
        code.checked_sub(1)
            .and_then(|c| Exclusion::ALL.get(c).copied())
    }

    /// Whether nobody was excluded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.planes == [0; 3]
    }

    /// The excluded providers and why, in priority order. O(excluded).
    pub fn iter(&self) -> impl Iterator<Item = (ProviderId, Exclusion)> + '_ {
        let mut left = self.planes[0] | self.planes[1] | self.planes[2];
        core::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            let id = ProviderId(left.trailing_zeros() as u8);
            left &= left - 1;
            self.get(id).map(|why| (id, why))
        })
    }

    /// The three bit planes (for a binding that passes them through numbers and rebuilds the
    /// value with [`Excluded::from_planes`]).
    #[must_use]
    pub const fn planes(&self) -> [u64; 3] {
        self.planes
    }

    /// The value of [`Excluded::planes`]. A provider whose code is beyond the reasons reads as
    /// not excluded.
    #[must_use]
    pub const fn from_planes(planes: [u64; 3]) -> Excluded {
        Excluded { planes }
    }

    /// Every excluded provider's entry ([`Excluded::entry`]), in priority order, with its name from
    /// `names` (provider `i`'s is `names[i]`; a provider beyond `names` is left out): what the
    /// bindings copy into the span attribute `failover.excluded`. O(excluded).
    pub fn entries<'s, 'n: 's, S: AsRef<str>>(
        &'s self,
        names: &'n [S],
    ) -> impl Iterator<Item = ExclusionEntry<'n>> + 's {
        self.iter().filter_map(move |(id, why)| {
            names.get(id.index()).map(|n| ExclusionEntry {
                name: n.as_ref(),
                why,
            })
        })
    }

    /// Provider `id`'s entry as the OpenTelemetry span attribute `failover.excluded` lists it:
    /// `"<name>=<reason>"` (`"openai=open"`), written once here for every binding. `name` is the
    /// provider's name. None when `id` was not excluded.
    #[must_use]
    pub fn entry<'a>(&self, id: ProviderId, name: &'a str) -> Option<ExclusionEntry<'a>> {
        self.get(id).map(|why| ExclusionEntry { name, why })
    }
}

/// One excluded provider as text, `"<name>=<reason>"` ([`Excluded::entry`]; `Display`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExclusionEntry<'a> {
    /// The provider's name.
    pub name: &'a str,
    /// Why it was excluded.
    pub why: Exclusion,
}

impl core::fmt::Display for ExclusionEntry<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}={}", self.name, self.why.name())
    }
}

/// Why a request gave up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GiveUp {
    /// No provider can take the request, and none is expected back within the wait limit and
    /// the deadline.
    NoProvider,
    /// The attempt budget is spent.
    Attempts,
    /// The request's deadline passed.
    Deadline,
    /// The stream failed after content reached the caller: failing over now would repeat or mix
    /// answers, so the error goes to the caller (who holds what was already delivered).
    StreamBroken,
}

impl GiveUp {
    /// The stable snake_case name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            GiveUp::NoProvider => "no_provider",
            GiveUp::Attempts => "attempts",
            GiveUp::Deadline => "deadline",
            GiveUp::StreamBroken => "stream_broken",
        }
    }
}

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finish {
    /// An attempt succeeded (for a stream: it ended with its terminal event).
    Success {
        /// Who answered.
        provider: ProviderId,
    },
    /// The caller's fault (400, 422, a content-policy refusal): the provider's error goes back to
    /// the caller unchanged, with no retry.
    CallerError {
        /// Who answered.
        provider: ProviderId,
    },
    /// The caller cancelled, or the attempt failed in a way nobody can attribute to the provider
    /// (a bug in the caller's code): re-raise the caller's error unchanged.
    Cancelled,
    /// The request gave up.
    GaveUp {
        /// Why.
        reason: GiveUp,
        /// The last attempt's outcome, if there was an attempt.
        last: Option<OutcomeKind>,
        /// When a provider is expected to take traffic again, ms from the time the request gave
        /// up (0: one can now).
        retry_after_ms: u64,
    },
}

impl Finish {
    /// The stable snake_case name.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Finish::Success { .. } => "success",
            Finish::CallerError { .. } => "caller_error",
            Finish::Cancelled => "cancelled",
            Finish::GaveUp { .. } => "gave_up",
        }
    }
}

/// What to do next; see [`crate::Request::poll`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Start this attempt now. Returned once per attempt.
    Attempt(Attempt),
    /// An attempt is in flight: report its result, or call [`crate::Request::poll`] again by
    /// `deadline_ms` (then the attempt is recorded as timed out or stalled).
    InFlight {
        /// The in-flight attempt's current deadline (first token, idle gap or whole call), ms.
        deadline_ms: u64,
    },
    /// No provider can take the request now; `provider` is expected back at `until_ms`, which
    /// fits the caller's wait limit and the request's deadline. Sleep until then and poll again
    /// (polling earlier decides again: it may find a provider back sooner, or wait again).
    Wait {
        /// When to poll again, ms.
        until_ms: u64,
        /// The provider expected back then.
        provider: ProviderId,
    },
    /// The request is over.
    Done(Finish),
}

/// A [`Finish`] packed into one word, so that writing it and reading it back are one store and
/// one load of the same width (a value written piecewise and read back whole stalls on store
/// forwarding, several ns per request). Bits 0–7: the finish (0 success, 1 caller error,
/// 2 cancelled, 3 gave up); 8–15: the provider; 16–23: the give-up reason; 24–31: the last
/// outcome + 1 (0 for none). The give-up hint is kept beside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct End(pub(crate) u64);

const GIVE_UPS: [GiveUp; 4] = [
    GiveUp::NoProvider,
    GiveUp::Attempts,
    GiveUp::Deadline,
    GiveUp::StreamBroken,
];

impl End {
    #[inline(always)]
    pub(crate) fn pack(f: Finish) -> (End, u64) {
        match f {
            Finish::Success { provider } => (End(u64::from(provider.0) << 8), 0),
            Finish::CallerError { provider } => (End(1 | u64::from(provider.0) << 8), 0),
            Finish::Cancelled => (End(2), 0),
            Finish::GaveUp {
                reason,
                last,
                retry_after_ms,
            } => {
                let r = GIVE_UPS.iter().position(|g| *g == reason).unwrap_or(0) as u64;
                let l = last.map_or(0, |k| k as u64 + 1);
                (End(3 | r << 16 | l << 24), retry_after_ms)
            }
        }
    }

    #[inline(always)]
    pub(crate) fn unpack(self, retry_after_ms: u64) -> Finish {
        let provider = ProviderId((self.0 >> 8) as u8);
        match self.0 & 0xff {
            0 => Finish::Success { provider },
            1 => Finish::CallerError { provider },
            2 => Finish::Cancelled,
            _ => Finish::GaveUp {
                reason: GIVE_UPS[((self.0 >> 16) & 0xff) as usize % GIVE_UPS.len()],
                last: match (self.0 >> 24) & 0xff {
                    0 => None,
                    k => OutcomeKind::ALL.get(k as usize - 1).copied(),
                },
                retry_after_ms,
            },
        }
    }
}

/// An input the request cannot take in its current state. The input changed nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RequestError {
    /// No attempt is in flight: the result was already reported (or recorded as a timeout when
    /// its deadline passed), or no attempt was started.
    NoAttempt,
    /// A stream input (first token, chunk, end) for a request that is not streamed.
    NotStreamed,
    /// The request is over.
    Finished,
}

impl RequestError {
    /// The stable snake_case name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            RequestError::NoAttempt => "no_attempt",
            RequestError::NotStreamed => "not_streamed",
            RequestError::Finished => "finished",
        }
    }
}

impl core::fmt::Display for RequestError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            RequestError::NoAttempt => "no attempt is in flight",
            RequestError::NotStreamed => "the request is not streamed",
            RequestError::Finished => "the request is over",
        })
    }
}

impl core::error::Error for RequestError {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn the_planes_hold_every_reason_for_every_provider() {
        for (k, &why) in Exclusion::ALL.iter().enumerate() {
            let mut x = Excluded::NONE;
            for i in (k..64).step_by(7) {
                x.set(ProviderId(i as u8), why);
            }
            let back = Excluded::from_planes(x.planes());
            assert_eq!(back, x);
            let got: Vec<_> = back.iter().map(|(id, w)| (id.index(), w)).collect();
            let want: Vec<_> = (k..64).step_by(7).map(|i| (i, why)).collect();
            assert_eq!(got, want);
            assert_eq!(x.get(ProviderId(k as u8 + 1)), None);
        }
        assert!(Excluded::NONE.is_empty() && Excluded::NONE.iter().next().is_none());
        let mut x = Excluded::NONE;
        x.set(ProviderId(2), Exclusion::Open);
        assert_eq!(
            std::format!("{}", x.entry(ProviderId(2), "openai").unwrap()),
            "openai=open"
        );
        assert!(x.entry(ProviderId(1), "b").is_none());
    }
}
