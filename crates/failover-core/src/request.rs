//! The request engine: one sans-IO state machine for a whole request — which provider to try
//! next, whether to retry the same one, whether to wait out a short `Retry-After`, when to give
//! up, each attempt's deadlines, and what a stream's first token, cut or stall means.
//!
//! The bindings only perform I/O: they start the attempt [`Request::poll`] asks for, enforce its
//! deadline, extract facts from the answer ([`crate::classify`]) and report them. Every decision
//! is made here, so Rust, Python and Node behave the same.

use crate::event::ProviderId;
use crate::outcome::{Outcome, OutcomeKind};
use crate::router::Router;
use crate::ticket::{PickRequest, ProviderSet, Recorded, Ticket, TicketKind};

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
    /// A sticky key (from [`crate::hash_key`]), as in [`PickRequest::key`].
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
    /// [`Request::poll`], which records a timeout.
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

/// What to do next; see [`Request::poll`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Start this attempt now. Returned once per attempt.
    Attempt(Attempt),
    /// An attempt is in flight: report its result, or call [`Request::poll`] again by
    /// `deadline_ms` (then the attempt is recorded as timed out or stalled).
    InFlight {
        /// The in-flight attempt's current deadline (first token, idle gap or whole call), ms.
        deadline_ms: u64,
    },
    /// No provider can take the request now; `provider` is expected back at `until_ms`, which
    /// fits the caller's wait limit and the request's deadline. Sleep until then and poll again.
    Wait {
        /// When to poll again, ms.
        until_ms: u64,
        /// The provider expected back then.
        provider: ProviderId,
    },
    /// The request is over.
    Done(Finish),
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// The next poll decides.
    Ready,
    Waiting {
        until: u64,
        provider: ProviderId,
    },
    /// The attempt's ticket is kept as its parts (a ticket copied through memory piecewise and
    /// read back whole stalls on store forwarding: see the router's `record`).
    InFlight {
        provider: ProviderId,
        kind: TicketKind,
        generation: u32,
        seq: u32,
        started: u64,
        deadline: u64,
        /// When the first token arrived (streams).
        first_token: Option<u64>,
    },
    Done(Finish),
}

/// One request from start to finish, driven by explicit time. Plain fixed-size data (about 100
/// bytes): no allocation, no clock, no I/O.
///
/// # Calling order
///
/// ```text
/// let mut req = Request::new(&router, &options, now);
/// loop {
///     match req.poll(&mut router, now) {
///         Step::Attempt(a)            => start the call to a.ticket.provider with a.timeout_ms,
///         Step::InFlight { deadline } => wait for the call's result or the deadline,
///         Step::Wait { until, .. }    => sleep until `until`,
///         Step::Done(finish)          => return the answer or the error,
///     }
///     then report what happened: handle_outcome (an answer or an error), or for a stream
///     handle_first_token, handle_chunk, handle_end; handle_cancel for the caller's own error.
/// }
/// ```
///
/// # Rules (each with its policy default)
///
/// - A request never sends to a provider that is open, throttled (inside its `Retry-After`) or
///   benched: when [`Router::pick_with`] would hand out its all-down fallback, the request waits
///   or gives up instead.
/// - After a failure: `refused` (context length, model not offered), `credentials_rejected` and
///   `quota_exhausted` move to the next provider and never come back to this one in this
///   request; a server or connection error (or a stream cut before content) moves to the next
///   provider, and retries the same provider (`same_provider_retries`, default 1) only when no
///   other provider can take the request; a timeout or stall moves on and never retries the same
///   provider; a 429 moves on at once, and the provider may be tried again once its throttle
///   ends.
/// - When no provider can take the request now, it waits for the soonest one if that is within
///   the caller's wait limit (`max_wait_ms`, default 10 s) and before the request's deadline;
///   otherwise it gives up at once with the hint of when one is expected back.
/// - The caller's fault (`client_error`) ends the request at once: no retry.
/// - `cancelled` (the caller's own error) ends it at once: re-raise the caller's error.
/// - Attempt deadlines: a non-streamed attempt gets `attempt_timeout_ms` (default 60 s); a
///   streamed one gets a first-token deadline of `first_token_factor` (4) × the provider's
///   latency baseline within `first_token_min_ms..=first_token_timeout_ms` (2–15 s; 15 s before
///   there is a baseline), and an idle deadline of `stream_idle_ms` (30 s) between chunks. The
///   request's last candidate gets all its remaining time instead: the attempt after which the
///   budget allows no other, or after which every provider is excluded from the request (it
///   failed there) and no same-provider retry remains. A provider that is only unavailable for
///   now (throttled, open) still counts as a candidate, since it may come back within the
///   deadline. No deadline passes the request's.
/// - A stream's latency is its time to the first token; its outcome is recorded when it ends (a
///   success with that latency, `stream_cut`, or `stalled`), so a stream's total duration never
///   feeds the slow-call or latency triggers. Before the first token, a failing stream fails
///   over; after it, the request gives up with [`GiveUp::StreamBroken`].
///
/// # Time
///
/// A `now` older than one already seen is treated as the latest seen, as in [`Router`].
///
/// # Cost
///
/// `poll` costs one [`Router::pick_with`] (plus O(P) when no provider can take the request), and
/// each report one [`Router::record`]; nothing allocates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    phase: Phase,
    now: u64,
    deadline: u64,
    max_wait: u64,
    key: Option<u64>,
    /// Providers this request will not try again.
    excluded: ProviderSet,
    /// The provider a same-provider retry may go to, after a transient failure.
    retry_same: Option<ProviderId>,
    same_retries_left: u32,
    attempts: u8,
    max_attempts: u8,
    stream: bool,
    /// The policy's `stream_idle_ms`.
    idle: u64,
    last: Option<OutcomeKind>,
    /// The latest recording and how many there were.
    report: Option<Report>,
    reports: u8,
}

impl Request {
    /// Starts a request at `now` with `options` (defaults from `router`'s policy). Cost: O(1).
    #[must_use]
    #[inline(always)]
    pub fn new<const P: usize, const B: usize, const E: usize>(
        router: &Router<P, B, E>,
        options: &RequestOptions,
        now: u64,
    ) -> Request {
        let p = router.policy();
        let now = now.max(router.now());
        let default_attempts = (router.len() as u64)
            .saturating_add(u64::from(p.same_provider_retries))
            .min(255) as u8;
        Request {
            phase: Phase::Ready,
            now,
            deadline: options
                .deadline_ms
                .unwrap_or_else(|| now.saturating_add(p.request_timeout_ms)),
            max_wait: options.max_wait_ms.unwrap_or(p.max_wait_ms),
            key: options.key,
            excluded: ProviderSet::new(),
            retry_same: None,
            same_retries_left: p.same_provider_retries,
            attempts: 0,
            max_attempts: options.max_attempts.unwrap_or(default_attempts).max(1),
            stream: options.stream,
            idle: p.stream_idle_ms,
            last: None,
            report: None,
            reports: 0,
        }
    }

    /// Attempts started so far.
    #[must_use]
    pub fn attempts(&self) -> u8 {
        self.attempts
    }

    /// The request's deadline, ms.
    #[must_use]
    pub fn deadline_ms(&self) -> u64 {
        self.deadline
    }

    /// What the request last recorded at the router, and how many outcomes it has recorded in
    /// all (one per attempt; a binding that lists the attempts reads it after each input).
    #[must_use]
    pub fn last_report(&self) -> (Option<Report>, u8) {
        (self.report, self.reports)
    }

    /// How the request ended, once it has.
    #[must_use]
    pub fn finish(&self) -> Option<Finish> {
        match self.phase {
            Phase::Done(f) => Some(f),
            _ => None,
        }
    }

    /// The attempt in flight, if any: its ticket.
    #[must_use]
    pub fn in_flight(&self) -> Option<Ticket> {
        match self.phase {
            Phase::InFlight {
                provider,
                kind,
                generation,
                seq,
                started,
                ..
            } => Some(Ticket {
                provider,
                kind,
                generation,
                probe_seq: seq,
                degraded: false,
                retry_after_ms: None,
                issued_at_ms: started,
            }),
            _ => None,
        }
    }

    /// Records the in-flight attempt's outcome (the caller has checked there is one).
    #[inline(always)]
    fn record<const P: usize, const B: usize, const E: usize>(
        &mut self,
        router: &mut Router<P, B, E>,
        outcome: Outcome,
        now: u64,
    ) {
        let Phase::InFlight {
            provider,
            kind,
            generation,
            seq,
            ..
        } = self.phase
        else {
            return;
        };
        let recorded = router.record_parts(provider, kind, generation, seq, outcome, now);
        self.report = Some(Report {
            provider,
            outcome,
            recorded,
        });
        self.reports = self.reports.wrapping_add(1);
        self.last = Some(outcome.kind);
    }

    fn clock(&mut self, now: u64) -> u64 {
        self.now = self.now.max(now);
        self.now
    }

    /// What to do next at `now`: start an attempt, wait for the one in flight, sleep until a
    /// provider is back, or finish. An in-flight attempt whose deadline has passed is recorded
    /// as a timeout (non-streamed, or no first token yet) or as `stalled` (a stream that went
    /// quiet after content) before deciding. Safe to call at any time; calling it again without
    /// an input returns the same answer (an attempt is handed out once: after that it is
    /// [`Step::InFlight`]).
    #[inline(always)]
    pub fn poll<const P: usize, const B: usize, const E: usize>(
        &mut self,
        router: &mut Router<P, B, E>,
        now: u64,
    ) -> Step {
        let now = self.clock(now);
        // The common cases inline: the first pick of a fresh request, and a finished request.
        match self.phase {
            Phase::Ready if self.attempts < self.max_attempts && now < self.deadline => {
                let now = router.clock(now);
                let req = PickRequest {
                    key: self.key,
                    tried: self.excluded,
                };
                match router.pick_choice(now, &req) {
                    Some((i, kind, seq)) => self.start(router, i, kind, seq, now),
                    None => self.after_pick(router, now),
                }
            }
            Phase::Done(f) => Step::Done(f),
            _ => self.poll_slow(router, now),
        }
    }

    #[inline(never)]
    fn poll_slow<const P: usize, const B: usize, const E: usize>(
        &mut self,
        router: &mut Router<P, B, E>,
        now: u64,
    ) -> Step {
        match self.phase {
            Phase::InFlight {
                deadline,
                first_token,
                ..
            } => {
                if now < deadline {
                    return Step::InFlight {
                        deadline_ms: deadline,
                    };
                }
                let kind = if first_token.is_some() {
                    OutcomeKind::Stalled
                } else {
                    OutcomeKind::Timeout
                };
                self.fail(router, kind, None, now);
            }
            Phase::Waiting { until, provider } if now < until => {
                return Step::Wait {
                    until_ms: until,
                    provider,
                };
            }
            Phase::Done(f) => return Step::Done(f),
            _ => {}
        }
        if let Phase::Done(f) = self.phase {
            return Step::Done(f);
        }
        self.decide(router, now)
    }

    fn give_up<const P: usize, const B: usize, const E: usize>(
        &mut self,
        router: &Router<P, B, E>,
        reason: GiveUp,
        hint: Option<u64>,
    ) -> Step {
        let f = Finish::GaveUp {
            reason,
            last: self.last,
            retry_after_ms: hint.unwrap_or_else(|| router.retry_hint()),
        };
        self.phase = Phase::Done(f);
        Step::Done(f)
    }

    fn decide<const P: usize, const B: usize, const E: usize>(
        &mut self,
        router: &mut Router<P, B, E>,
        now: u64,
    ) -> Step {
        if self.attempts >= self.max_attempts {
            return self.give_up(router, GiveUp::Attempts, None);
        }
        if now >= self.deadline {
            return self.give_up(router, GiveUp::Deadline, None);
        }
        let now = router.clock(now);
        let req = PickRequest {
            key: self.key,
            tried: self.excluded,
        };
        if let Some((i, kind, seq)) = router.pick_choice(now, &req) {
            return self.start(router, i, kind, seq, now);
        }
        self.after_pick(router, now)
    }

    /// When no provider outside `excluded` took the request at `now`: a same-provider retry, a
    /// wait, or giving up.
    #[inline(never)]
    fn after_pick<const P: usize, const B: usize, const E: usize>(
        &mut self,
        router: &mut Router<P, B, E>,
        now: u64,
    ) -> Step {
        // No provider outside `excluded` can take it now: a same-provider retry, if one is owed
        // and that provider can take it now.
        if let Some(id) = self.retry_same.take()
            && self.same_retries_left > 0
            && router.soonest(ProviderSet::from_bits(!(1u64 << id.index()))) == Some((id, now))
        {
            let only = PickRequest {
                key: self.key,
                tried: ProviderSet::from_bits(!(1u64 << id.index())),
            };
            if let Some((i, kind, seq)) = router.pick_choice(now, &only) {
                self.same_retries_left -= 1;
                return self.start(router, i, kind, seq, now);
            }
        }
        match router.soonest(self.excluded) {
            Some((id, at)) if at > now && at - now <= self.max_wait && at < self.deadline => {
                self.phase = Phase::Waiting {
                    until: at,
                    provider: id,
                };
                Step::Wait {
                    until_ms: at,
                    provider: id,
                }
            }
            Some((_, at)) => self.give_up(router, GiveUp::NoProvider, Some(at - now)),
            None => self.give_up(router, GiveUp::NoProvider, None),
        }
    }

    #[inline(always)]
    fn start<const P: usize, const B: usize, const E: usize>(
        &mut self,
        router: &Router<P, B, E>,
        i: usize,
        kind: TicketKind,
        seq: u32,
        now: u64,
    ) -> Step {
        let p = router.policy();
        let ticket = router.ticket(i, kind, seq, now);
        self.attempts += 1;
        let remaining = self.deadline - now;
        let mut after = self.excluded;
        after.insert(ticket.provider);
        let last = self.attempts >= self.max_attempts
            || (after.len() as usize >= router.len() && self.same_retries_left == 0);
        let own = if self.stream {
            match router.baseline_ms(ticket.provider) {
                Some(b) => (u64::from(b).saturating_mul(p.first_token_factor))
                    .clamp(p.first_token_min_ms, p.first_token_timeout_ms),
                None => p.first_token_timeout_ms,
            }
        } else {
            p.attempt_timeout_ms
        };
        let timeout = if last { remaining } else { own.min(remaining) };
        let deadline = now + timeout;
        self.phase = Phase::InFlight {
            provider: ticket.provider,
            kind,
            generation: ticket.generation,
            seq,
            started: now,
            deadline,
            first_token: None,
        };
        Step::Attempt(Attempt {
            ticket,
            number: self.attempts,
            deadline_ms: deadline,
            timeout_ms: timeout,
            idle_ms: self.stream.then_some(p.stream_idle_ms),
            last,
        })
    }

    /// Records a failure of the in-flight attempt and decides what the request does about it.
    fn fail<const P: usize, const B: usize, const E: usize>(
        &mut self,
        router: &mut Router<P, B, E>,
        kind: OutcomeKind,
        retry_after_ms: Option<u64>,
        now: u64,
    ) {
        let Phase::InFlight {
            provider: id,
            started,
            first_token,
            ..
        } = self.phase
        else {
            return;
        };
        let outcome = Outcome {
            kind,
            latency_ms: latency_ms(started, first_token.unwrap_or(now)),
            retry_after_ms,
        };
        self.record(router, outcome, now);
        self.phase = Phase::Ready;
        if first_token.is_some() && kind != OutcomeKind::Success {
            let f = Finish::GaveUp {
                reason: GiveUp::StreamBroken,
                last: Some(kind),
                retry_after_ms: router.retry_hint(),
            };
            self.phase = Phase::Done(f);
            return;
        }
        match kind {
            OutcomeKind::Success => {
                self.phase = Phase::Done(Finish::Success { provider: id });
            }
            OutcomeKind::ClientError => {
                self.phase = Phase::Done(Finish::CallerError { provider: id });
            }
            OutcomeKind::Cancelled => self.phase = Phase::Done(Finish::Cancelled),
            // The router's throttle keeps it out until its Retry-After; it may come back.
            OutcomeKind::RateLimited => {}
            OutcomeKind::ServerError | OutcomeKind::ConnectionError | OutcomeKind::StreamCut => {
                self.excluded.insert(id);
                self.retry_same = Some(id);
            }
            OutcomeKind::Timeout
            | OutcomeKind::Stalled
            | OutcomeKind::Refused
            | OutcomeKind::CredentialsRejected
            | OutcomeKind::QuotaExhausted => {
                self.excluded.insert(id);
                if self.retry_same == Some(id) {
                    self.retry_same = None;
                }
            }
        }
    }

    /// Reports the in-flight attempt's outcome at `now`: its kind and the provider's
    /// `Retry-After` (the latency is the request's own measure: from the attempt's start to
    /// `now`, or to the first token for a stream). For a stream, `success` means it ended with its
    /// terminal event (as [`Request::handle_end`] with `complete`). Then call
    /// [`Request::poll`] for what to do next.
    ///
    /// # Errors
    ///
    /// [`RequestError::NoAttempt`] when no attempt is in flight (reported twice, or after its
    /// deadline was recorded as a timeout: the late result is ignored), [`RequestError::Finished`]
    /// after the request ended.
    #[inline(always)]
    pub fn handle_outcome<const P: usize, const B: usize, const E: usize>(
        &mut self,
        router: &mut Router<P, B, E>,
        outcome: Outcome,
        now: u64,
    ) -> Result<(), RequestError> {
        // The common case inline: a non-streamed attempt's success.
        if let Phase::InFlight {
            provider, started, ..
        } = self.phase
            && !self.stream
            && outcome.kind == OutcomeKind::Success
        {
            let now = self.clock(now);
            let o = Outcome {
                kind: OutcomeKind::Success,
                latency_ms: latency_ms(started, now),
                retry_after_ms: outcome.retry_after_ms,
            };
            self.record(router, o, now);
            self.phase = Phase::Done(Finish::Success { provider });
            return Ok(());
        }
        self.handle_outcome_slow(router, outcome, now)
    }

    #[inline(never)]
    fn handle_outcome_slow<const P: usize, const B: usize, const E: usize>(
        &mut self,
        router: &mut Router<P, B, E>,
        outcome: Outcome,
        now: u64,
    ) -> Result<(), RequestError> {
        self.check_in_flight()?;
        if self.stream && outcome.kind == OutcomeKind::Success {
            return self.handle_end(router, true, now);
        }
        let now = self.clock(now);
        self.fail(router, outcome.kind, outcome.retry_after_ms, now);
        Ok(())
    }

    /// The first content of a stream reached the caller at `now` (a delta with text or a tool
    /// call; a role-only delta, a keep-alive comment or a ping is not content). From now on the
    /// attempt has an idle deadline, and a failure goes to the caller instead of failing over.
    /// A second call is a chunk.
    ///
    /// # Errors
    ///
    /// [`RequestError::NotStreamed`], [`RequestError::NoAttempt`], [`RequestError::Finished`].
    pub fn handle_first_token(&mut self, now: u64) -> Result<(), RequestError> {
        self.check_stream()?;
        let now = self.clock(now);
        let idle = self.idle;
        if let Phase::InFlight {
            first_token,
            deadline,
            ..
        } = &mut self.phase
        {
            first_token.get_or_insert(now);
            *deadline = now.saturating_add(idle).min(self.deadline);
        }
        Ok(())
    }

    /// A chunk of a stream (content or not) arrived at `now`: the idle deadline starts again.
    /// Before the first token this changes nothing (the first-token deadline stands).
    ///
    /// # Errors
    ///
    /// As [`Request::handle_first_token`].
    pub fn handle_chunk(&mut self, now: u64) -> Result<(), RequestError> {
        self.check_stream()?;
        let now = self.clock(now);
        let idle = self.idle;
        if let Phase::InFlight {
            first_token: Some(_),
            deadline,
            ..
        } = &mut self.phase
        {
            *deadline = now.saturating_add(idle).min(self.deadline);
        }
        Ok(())
    }

    /// The stream ended at `now`: `complete` when it ended with its terminal event
    /// (`finish_reason`, Anthropic's `message_stop`; `[DONE]` alone is not needed), otherwise it
    /// was cut (EOF, or an in-band error: classify the error and use
    /// [`Request::handle_outcome`] instead if it carries a status or code). A complete stream is
    /// recorded as a success whose latency is the time to the first token; a cut one as
    /// `stream_cut` (and, after content, the request gives up with [`GiveUp::StreamBroken`]).
    ///
    /// # Errors
    ///
    /// As [`Request::handle_first_token`].
    pub fn handle_end<const P: usize, const B: usize, const E: usize>(
        &mut self,
        router: &mut Router<P, B, E>,
        complete: bool,
        now: u64,
    ) -> Result<(), RequestError> {
        self.check_stream()?;
        let now = self.clock(now);
        let kind = if complete {
            OutcomeKind::Success
        } else {
            OutcomeKind::StreamCut
        };
        if complete
            && let Phase::InFlight {
                provider,
                started,
                first_token,
                ..
            } = self.phase
        {
            // A complete stream is a success even after content (no StreamBroken).
            let latency = latency_ms(started, first_token.unwrap_or(now));
            self.record(router, Outcome::success(latency), now);
            self.phase = Phase::Done(Finish::Success { provider });
            return Ok(());
        }
        self.fail(router, kind, None, now);
        Ok(())
    }

    /// The attempt failed in a way nobody can attribute to the provider (an error in the caller's
    /// own code), or the caller gave up on the whole request: recorded as `cancelled` (which
    /// frees a probe permit and counts nothing) and the request ends with
    /// [`Finish::Cancelled`]. Without an attempt in flight, it just ends the request.
    ///
    /// # Errors
    ///
    /// [`RequestError::Finished`] after the request ended.
    pub fn handle_cancel<const P: usize, const B: usize, const E: usize>(
        &mut self,
        router: &mut Router<P, B, E>,
        now: u64,
    ) -> Result<(), RequestError> {
        if matches!(self.phase, Phase::Done(_)) {
            return Err(RequestError::Finished);
        }
        let now = self.clock(now);
        if let Phase::InFlight { started, .. } = self.phase {
            let o = Outcome::new(OutcomeKind::Cancelled, latency_ms(started, now));
            self.record(router, o, now);
        }
        self.phase = Phase::Done(Finish::Cancelled);
        Ok(())
    }

    fn check_in_flight(&self) -> Result<(), RequestError> {
        match self.phase {
            Phase::InFlight { .. } => Ok(()),
            Phase::Done(_) => Err(RequestError::Finished),
            _ => Err(RequestError::NoAttempt),
        }
    }

    fn check_stream(&self) -> Result<(), RequestError> {
        if !self.stream {
            return Err(RequestError::NotStreamed);
        }
        self.check_in_flight()
    }
}

/// Milliseconds from `from` to `to` as an outcome's latency (saturating at `u32::MAX`).
fn latency_ms(from: u64, to: u64) -> u32 {
    to.saturating_sub(from).min(u64::from(u32::MAX)) as u32
}
