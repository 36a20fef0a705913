//! The request engine: one sans-IO state machine for a whole request — which provider to try
//! next, whether to retry the same one, whether to wait out a short `Retry-After`, when to give
//! up, each attempt's deadlines, and what a stream's first token, cut or stall means.
//!
//! The bindings only perform I/O: they start the attempt [`Request::poll`] asks for, enforce its
//! deadline, extract facts from the answer ([`crate::classify`]) and report them. Every decision
//! is made here, so Rust, Python and Node behave the same.

mod step;

use step::End;
pub use step::{
    Attempt, Excluded, Exclusion, ExclusionEntry, Finish, GiveUp, Report, RequestError,
    RequestOptions, Step,
};

use crate::event::ProviderId;
use crate::outcome::{Outcome, OutcomeKind};
use crate::router::Router;
use crate::ticket::{PickRequest, ProviderSet, Ticket, TicketKind};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// The next poll decides (also while waiting: a wait is decided again on every poll, so it
    /// needs no state of its own).
    Ready,
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
    /// Over: see `Request::end`.
    Done,
}

/// One request from start to finish, driven by explicit time. Plain fixed-size data (248 bytes
/// on a 64-bit target): no allocation, no clock, no I/O.
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
/// A `now` older than one already seen is treated as the latest seen, as in [`Router`]; when
/// polled, the request also takes the router's latest time (another request, or the caller's
/// other inputs, may have moved it on).
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
    /// The caller's wait limit (`None`: the policy's, read when needed).
    max_wait: Option<u64>,
    key: Option<u64>,
    /// Providers this request will not try again.
    excluded: ProviderSet,
    /// The provider a same-provider retry may go to, after a transient failure.
    retry_same: Option<ProviderId>,
    /// Same-provider retries made (the policy's `same_provider_retries` is the limit; at most
    /// one per attempt, so a byte holds it).
    same_retries_used: u8,
    attempts: u8,
    max_attempts: u8,
    stream: bool,
    /// The policy's `stream_idle_ms`, set when a streamed attempt starts (only a stream in
    /// flight reads it).
    idle: u64,
    /// How it ended, once `phase` is `Done`.
    end: End,
    end_retry_after_ms: u64,
    /// The latest recording and how many there were.
    report: Option<Report>,
    reports: u8,
    /// Why the providers ahead of the attempt in flight did not take it (for its report).
    passed: Excluded,
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
        Request {
            phase: Phase::Ready,
            now,
            deadline: options
                .deadline_ms
                .unwrap_or_else(|| now.saturating_add(p.request_timeout_ms)),
            max_wait: options.max_wait_ms,
            key: options.key,
            excluded: ProviderSet::new(),
            retry_same: None,
            same_retries_used: 0,
            attempts: 0,
            max_attempts: options
                .max_attempts
                .unwrap_or(router.request_attempts())
                .max(1),
            stream: options.stream,
            idle: 0,
            end: End(0),
            end_retry_after_ms: 0,
            report: None,
            reports: 0,
            passed: Excluded::NONE,
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
            Phase::Done => Some(self.end.unpack(self.end_retry_after_ms)),
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

    /// Ends the request with `f`.
    #[inline(always)]
    fn end_with(&mut self, f: Finish) {
        let (end, retry) = End::pack(f);
        self.end = end;
        // Only a give-up has a hint; otherwise it stays the 0 it was made with (a request ends
        // once), and not writing it keeps the success path shorter.
        if let Finish::GaveUp { .. } = f {
            self.end_retry_after_ms = retry;
        }
        self.phase = Phase::Done;
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
            started,
            first_token,
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
            kind,
            number: self.attempts,
            started_ms: started,
            first_token_ms: first_token,
            ended_ms: now,
            excluded: self.passed,
        });
        self.reports = self.reports.wrapping_add(1);
    }

    #[inline(always)]
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
        // A finished request answers the same whatever the time.
        if self.phase == Phase::Done {
            return Step::Done(self.end.unpack(self.end_retry_after_ms));
        }
        // The router's latest time counts too: another request may have moved it on.
        let now = self.clock(now.max(router.now()));
        match self.phase {
            // Ready (a wait included): decided inline, so that what a fresh request's first poll
            // does not change stays what the compiler knows (see `decide`).
            Phase::Ready => self.decide(router, now),
            _ => self.cold(|s| s.poll_slow_owned(router, now)),
        }
    }

    /// Runs a slow path on a copy of the request and stores the result back. The slow paths take
    /// the request by value so that it never escapes the caller's frame: then the fast paths,
    /// inlined into the caller, keep its fields in registers and drop the stores nobody reads.
    /// The slow functions are marked `#[cold]` so that the compiler moves the fields into place
    /// for them on their own branch, not on the fast path (callgrind: 19 instructions fewer per
    /// one-attempt request). They are not rare in every use (a stream's outcomes and every
    /// failure take one), but their cost is in their own work, not in a few register moves.
    #[inline(always)]
    fn cold<R>(&mut self, f: impl FnOnce(Request) -> (Request, R)) -> R {
        let (s, r) = f(*self);
        *self = s;
        r
    }

    #[cold]
    #[inline(never)]
    fn poll_slow_owned<const P: usize, const B: usize, const E: usize>(
        mut self,
        router: &mut Router<P, B, E>,
        now: u64,
    ) -> (Request, Step) {
        let step = self.poll_slow(router, now);
        (self, step)
    }

    #[cold]
    #[inline(never)]
    fn handle_outcome_owned<const P: usize, const B: usize, const E: usize>(
        mut self,
        router: &mut Router<P, B, E>,
        kind: OutcomeKind,
        latency_ms: u32,
        retry_after_ms: Option<u64>,
        now: u64,
    ) -> (Request, Result<(), RequestError>) {
        let outcome = Outcome {
            kind,
            latency_ms,
            retry_after_ms,
        };
        let r = self.handle_outcome_slow(router, outcome, now);
        (self, r)
    }

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
            Phase::Done => return Step::Done(self.end.unpack(self.end_retry_after_ms)),
            // Ready (a wait included: it is decided again, since a provider may have come back
            // sooner than expected, a probe permit freed, a throttle cut short, or later).
            Phase::Ready => {}
        }
        if self.phase == Phase::Done {
            return Step::Done(self.end.unpack(self.end_retry_after_ms));
        }
        self.decide(router, now)
    }

    /// Ends the request with a give-up. Inline, and with the O(P) scan for a missing hint out of
    /// line ([`retry_hint`]): it touches only the end, so the paths that do not give up keep all
    /// the rest in registers.
    #[inline(always)]
    fn give_up<const P: usize, const B: usize, const E: usize>(
        &mut self,
        router: &Router<P, B, E>,
        reason: GiveUp,
        hint: Option<u64>,
    ) -> Step {
        let f = Finish::GaveUp {
            reason,
            last: self.report.map(|r| r.outcome.kind),
            retry_after_ms: match hint {
                Some(h) => h,
                None => retry_hint(router),
            },
        };
        self.end_with(f);
        Step::Done(f)
    }

    /// What to do when no attempt is in flight: start one, wait or give up. Inline into `poll`
    /// (the common case, a fresh request's first attempt, is its first branches): every call it
    /// makes out of line takes and returns scalars (the router's `choose`, [`soonest`],
    /// [`retry_hint`]), never the request. A slow path that took the request by value and
    /// returned it would make every field of it a merge of two values where the paths join, all
    /// of them moved into place on the fast path too (callgrind and timing: about 3 ns of a
    /// one-attempt request's 12 went to that merge).
    #[inline(always)]
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
    #[inline(always)]
    fn after_pick<const P: usize, const B: usize, const E: usize>(
        &mut self,
        router: &mut Router<P, B, E>,
        now: u64,
    ) -> Step {
        // No provider outside `excluded` can take it now: a same-provider retry, if one is owed
        // and that provider can take it now.
        if let Some(id) = self.retry_same.take()
            && u32::from(self.same_retries_used) < router.policy().same_provider_retries
            && soonest(router, ProviderSet::from_bits(!(1u64 << id.index()))) == Some((id, now))
        {
            let only = PickRequest {
                key: self.key,
                tried: ProviderSet::from_bits(!(1u64 << id.index())),
            };
            if let Some((i, kind, seq)) = router.pick_choice(now, &only) {
                self.same_retries_used += 1;
                return self.start(router, i, kind, seq, now);
            }
        }
        match soonest(router, self.excluded) {
            Some((id, at))
                if at > now
                    && at - now <= self.max_wait.unwrap_or(router.policy().max_wait_ms)
                    && at < self.deadline =>
            {
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
        // Every provider excluded after this one (a mask test: `count_ones` is a dozen
        // instructions without a hardware popcount).
        let all = router.all();
        let after = self.excluded.bits() | (1u64 << ticket.provider.index());
        let last = self.attempts >= self.max_attempts
            || (after & all == all && u32::from(self.same_retries_used) >= p.same_provider_retries);
        let own = if self.stream {
            self.idle = p.stream_idle_ms;
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
        // Who was passed over, and why: nobody when the first provider took it (the common case
        // costs a compare).
        self.passed = if i == 0 {
            Excluded::NONE
        } else {
            router.exclusions(i, self.excluded)
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
            self.end_with(f);
            return;
        }
        match kind {
            OutcomeKind::Success => {
                self.end_with(Finish::Success { provider: id });
            }
            OutcomeKind::ClientError => {
                self.end_with(Finish::CallerError { provider: id });
            }
            OutcomeKind::Cancelled => self.end_with(Finish::Cancelled),
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
        // The common case inline: an attempt's success. A stream's is `handle_end` with
        // `complete`, written out here (so that a success never takes the slow path: where a
        // slow path that takes the request by value rejoins, every field of it is a merge of two
        // values, moved into place on the fast path too, about 2.5 ns of a one-attempt request):
        // its latency is the time to the first token, and it takes no Retry-After.
        if let Phase::InFlight {
            provider,
            started,
            first_token,
            ..
        } = self.phase
            && outcome.kind == OutcomeKind::Success
        {
            let now = self.clock(now);
            // Only a stream has a first token (`handle_first_token` refuses any other request).
            let o = Outcome {
                kind: OutcomeKind::Success,
                latency_ms: latency_ms(started, first_token.unwrap_or(now)),
                retry_after_ms: if self.stream {
                    None
                } else {
                    outcome.retry_after_ms
                },
            };
            self.record(router, o, now);
            self.end_with(Finish::Success { provider });
            return Ok(());
        }
        // The outcome as scalars (in registers: built in memory, it would be stored on every
        // call, the fast path's too).
        let Outcome {
            kind,
            latency_ms,
            retry_after_ms,
        } = outcome;
        self.cold(|s| s.handle_outcome_owned(router, kind, latency_ms, retry_after_ms, now))
    }

    fn handle_outcome_slow<const P: usize, const B: usize, const E: usize>(
        &mut self,
        router: &mut Router<P, B, E>,
        outcome: Outcome,
        now: u64,
    ) -> Result<(), RequestError> {
        // A success never gets here (see `handle_outcome`).
        self.check_in_flight()?;
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
    /// [`RequestError::Finished`] after the request ended (whatever else is wrong),
    /// [`RequestError::NotStreamed`] for a request that is not streamed, otherwise
    /// [`RequestError::NoAttempt`] when no attempt is in flight.
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
            self.end_with(Finish::Success { provider });
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
        if self.phase == Phase::Done {
            return Err(RequestError::Finished);
        }
        let now = self.clock(now);
        if let Phase::InFlight { started, .. } = self.phase {
            let o = Outcome::new(OutcomeKind::Cancelled, latency_ms(started, now));
            self.record(router, o, now);
        }
        self.end_with(Finish::Cancelled);
        Ok(())
    }

    fn check_in_flight(&self) -> Result<(), RequestError> {
        match self.phase {
            Phase::InFlight { .. } => Ok(()),
            Phase::Done => Err(RequestError::Finished),
            _ => Err(RequestError::NoAttempt),
        }
    }

    fn check_stream(&self) -> Result<(), RequestError> {
        if self.phase == Phase::Done {
            return Err(RequestError::Finished);
        }
        if !self.stream {
            return Err(RequestError::NotStreamed);
        }
        self.check_in_flight()
    }
}

/// [`Router::soonest`] out of line (O(P), and only when no provider can take a request).
#[cold]
#[inline(never)]
fn soonest<const P: usize, const B: usize, const E: usize>(
    router: &Router<P, B, E>,
    tried: ProviderSet,
) -> Option<(ProviderId, u64)> {
    router.soonest(tried)
}

/// [`Router::retry_hint`] out of line (O(P), and only when a request gives up).
#[cold]
#[inline(never)]
fn retry_hint<const P: usize, const B: usize, const E: usize>(router: &Router<P, B, E>) -> u64 {
    router.retry_hint()
}

/// Milliseconds from `from` to `to` as an outcome's latency (saturating at `u32::MAX`).
#[inline(always)]
fn latency_ms(from: u64, to: u64) -> u32 {
    // `to` is never before `from`: both are the request's clock, which never goes back, and
    // `from` (an attempt's start) was read from it first.
    debug_assert!(to >= from);
    to.wrapping_sub(from).min(u64::from(u32::MAX)) as u32
}
