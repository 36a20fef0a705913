//! The router: N providers in priority order, one decision per request, one record per outcome.

use crate::circuit::Circuit;
use crate::event::{CircuitState, Event, Events, ProviderId, Reason};
use crate::outcome::{Outcome, OutcomeKind};
use crate::policy::{AllDown, Compiled, ConfigError, MAX_NAME_LEN, Policy, ProbeMode};
use crate::ramp::key_position;
use crate::triggers::Health;
use crate::window::WindowStats;

/// A set of providers (at most 64), used for the providers a request has already tried.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ProviderSet(u64);

impl ProviderSet {
    /// The empty set.
    #[must_use]
    pub const fn new() -> Self {
        ProviderSet(0)
    }

    /// The set whose bit `i` stands for the provider at index `i` (bits past the router's
    /// providers are ignored by it).
    #[must_use]
    pub const fn from_bits(bits: u64) -> Self {
        ProviderSet(bits)
    }

    /// The set as bits: bit `i` for the provider at index `i`.
    #[must_use]
    pub const fn bits(&self) -> u64 {
        self.0
    }

    /// Adds a provider.
    pub fn insert(&mut self, id: ProviderId) {
        self.0 |= 1 << id.index();
    }

    /// Whether the set holds `id`.
    #[must_use]
    pub const fn contains(&self, id: ProviderId) -> bool {
        self.0 & (1 << id.index()) != 0
    }

    /// Whether the set holds the provider at `index`.
    #[must_use]
    pub const fn contains_index(&self, index: usize) -> bool {
        index < 64 && self.0 & (1 << index) != 0
    }

    /// How many providers are in the set.
    #[must_use]
    pub const fn len(&self) -> u32 {
        self.0.count_ones()
    }

    /// Whether the set is empty.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.0 == 0
    }
}

/// What a ticket is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TicketKind {
    /// An ordinary request.
    Request,
    /// A real request that also probes a recovering provider (it holds a probe permit).
    Probe,
    /// An active health check asked for by [`Router::poll_action`] (it holds a probe permit).
    HealthCheck,
}

impl TicketKind {
    /// The stable snake_case name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            TicketKind::Request => "request",
            TicketKind::Probe => "probe",
            TicketKind::HealthCheck => "health_check",
        }
    }
}

/// A decision: which provider to call. Hand it back to [`Router::record`] with the outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ticket {
    /// The provider to call.
    pub provider: ProviderId,
    /// Request, probe or health check.
    pub kind: TicketKind,
    /// The provider's circuit generation when the ticket was issued; an outcome from an earlier
    /// generation is stale and ignored.
    pub generation: u32,
    /// Identifies the probe permit of a probe or health check (0 otherwise).
    pub probe_seq: u32,
    /// Set when no provider could take the request normally and this is the all-down fallback.
    pub degraded: bool,
    /// With `degraded`: when the chosen provider is expected to take traffic again, ms from now.
    pub retry_after_ms: Option<u64>,
    /// When the decision was made (the engine's time), ms.
    pub issued_at_ms: u64,
}

impl Ticket {
    /// Whether the call is a probe or health check of a recovering provider.
    #[must_use]
    pub const fn is_probe(&self) -> bool {
        !matches!(self.kind, TicketKind::Request)
    }
}

/// No provider may be called: every provider was tried, or every provider is unavailable and the
/// policy's `when_all_down` is `fail`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Unavailable {
    /// When the soonest provider is expected to take traffic again, ms from now (0 when one
    /// already can but every provider has been tried).
    pub retry_after_ms: u64,
}

impl core::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "no provider available; retry after {} ms",
            self.retry_after_ms
        )
    }
}

impl core::error::Error for Unavailable {}

/// Options of one pick.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PickRequest {
    /// A sticky key (from [`crate::hash_key`]): through a ramp the same key stays on the same
    /// provider, and a key moved back to a recovering provider at one stage stays there at every
    /// later stage.
    pub key: Option<u64>,
    /// Providers this request already tried: they are skipped.
    pub tried: ProviderSet,
}

/// What [`Router::record`] did with an outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Recorded {
    /// Counted (or, for cancelled calls, released its permit and ignored).
    Accepted,
    /// The ticket is from an earlier circuit generation, or its probe expired: ignored entirely.
    Stale,
    /// The ticket names no provider of this router: ignored.
    UnknownProvider,
}

impl Recorded {
    /// The stable snake_case name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Recorded::Accepted => "accepted",
            Recorded::Stale => "stale",
            Recorded::UnknownProvider => "unknown_provider",
        }
    }
}

/// Something the application should do; see [`Router::poll_action`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Send a health check to `ticket.provider` and report its outcome with [`Router::record`].
    HealthCheck(Ticket),
}

/// A provider's state as plain data, for dashboards and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProviderView<'a> {
    /// Its id (priority position).
    pub id: ProviderId,
    /// Its name.
    pub name: &'a str,
    /// Circuit state.
    pub state: CircuitState,
    /// Share of offered traffic it takes now, in ppm: 1 000 000 healthy, the stage's share while
    /// ramping, 0 while open, probing or throttled.
    pub share_ppm: u32,
    /// End of the current throttle, if throttled.
    pub throttled_until_ms: Option<u64>,
    /// End of the open period, while open.
    pub open_until_ms: Option<u64>,
    /// Ramp stage index, while ramping.
    pub ramp_stage: Option<u8>,
    /// Trip count that sets the next open duration.
    pub strikes: u32,
    /// Trips ever.
    pub trips: u32,
    /// Circuit generation.
    pub generation: u32,
    /// Probe permits held.
    pub probes_in_flight: u32,
    /// Successful probes in the current probing phase (0 outside one).
    pub probe_successes: u32,
    /// Hard failures in a row.
    pub consecutive_failures: u32,
    /// Window figures as of the latest time the router has seen (buckets that have aged out since
    /// the provider's last outcome are left out).
    pub window: WindowStats,
    /// The window's latency quantile (`latency_quantile`), ms.
    pub latency_ms: Option<u32>,
    /// The long-horizon latency baseline, ms.
    pub baseline_ms: Option<u32>,
    /// When the provider's next time-driven transition is due, if one is scheduled.
    pub next_transition_ms: Option<u64>,
}

/// An idle health check handed out and not yet reported.
#[derive(Clone, Copy, Debug)]
struct IdleCheck {
    seq: u32,
    issued: u64,
    /// When it expires (its ticket is then stale and a new check may be asked for), unless that
    /// is its issue time (at `u64::MAX`): nothing expires at the instant it was issued.
    until: u64,
}

impl IdleCheck {
    fn expiry(&self) -> Option<u64> {
        (self.until > self.issued).then_some(self.until)
    }

    fn expired(&self, now: u64) -> bool {
        now >= self.until && now > self.issued
    }
}

#[derive(Clone, Debug)]
struct Provider<const B: usize> {
    name: heapless::String<MAX_NAME_LEN>,
    health: Health<B>,
    circuit: Circuit,
    /// Cached `deadline()`.
    deadline: u64,
    /// When an outcome was last recorded for it (for idle health checks).
    last_seen: u64,
    /// The outstanding idle health check.
    check: Option<IdleCheck>,
    check_seq: u32,
}

impl<const B: usize> Provider<B> {
    fn deadline(&self, p: &Compiled) -> u64 {
        let d = self.circuit.deadline(p);
        match self.circuit.state {
            CircuitState::Healthy | CircuitState::Ramping => {
                d.min(self.health.timeout_deadline(p).unwrap_or(u64::MAX))
            }
            _ => d,
        }
    }
}

/// The failover engine: `P` providers at most (≤ 64), windows of `B` buckets at most, an event
/// queue of `E` events.
///
/// # Calling order
///
/// Per request: [`Router::pick`] (or [`Router::pick_with`]), call the provider, then
/// [`Router::record`] with the ticket and the outcome. After any input, drain
/// [`Router::poll_event`] if you log transitions, and, if you run active health checks, drain
/// [`Router::poll_action`]. Then sleep until [`Router::poll_timeout`] (or the next request) and
/// call [`Router::handle_timeout`]. Nothing is lost if you never call `handle_timeout`: every input
/// first performs the transitions that are due, so timers only make events prompter.
///
/// # Time
///
/// Every input carries `now`, milliseconds of the caller's monotonic clock. The engine never reads
/// a clock. A `now` older than one already seen is treated as the latest time seen (time never
/// goes backwards inside the engine; the input is still applied). All arithmetic on times
/// saturates, so values up to `u64::MAX` are safe.
///
/// # Cost
///
/// `pick` is O(providers visited), `record` is O(1) (O(32) when a slow success must recompute the
/// latency quantile), and neither allocates. An input that finds a transition due does O(P) work
/// once. A bucket boundary expires at most one bucket per elapsed bucket, never more than `B`.
///
/// Both have an inline fast path for the common case, with the same results as the general path
/// (a property test holds them to it): `pick` when nothing is due and the primary takes all
/// traffic; `record` for an ordinary success at a healthy provider, in the window's current
/// bucket, faster than the slow-call and latency-degradation limits, while the window is known to
/// hold enough calls with a timeout rate under its threshold. Such a success can trip nothing, so
/// it only counts itself in the current bucket.
#[derive(Clone, Debug)]
pub struct Router<const P: usize, const B: usize, const E: usize = 64> {
    policy: Compiled,
    providers: heapless::Vec<Provider<B>, P>,
    events: Events<E>,
    now: u64,
    /// Minimum of the providers' cached deadlines.
    next_deadline: u64,
}

impl<const P: usize, const B: usize, const E: usize> Router<P, B, E> {
    /// Builds a router over `names` in priority order (the first is the primary), validating the
    /// policy and the names. Cost: O(P · B) to lay out the windows.
    pub fn new(policy: &Policy, names: &[&str]) -> Result<Self, ConfigError> {
        const { assert!(P >= 1 && P <= 64, "a router holds 1 to 64 providers") };
        const { assert!(B >= 1, "a window needs at least one bucket") };
        const { assert!(E >= 1, "the event queue needs room for one event") };
        let compiled = policy.compile(B)?;
        if names.is_empty() {
            return Err(ConfigError::NoProviders);
        }
        if names.len() > P {
            return Err(ConfigError::TooManyProviders {
                count: names.len(),
                capacity: P,
            });
        }
        let mut providers: heapless::Vec<Provider<B>, P> = heapless::Vec::new();
        for (i, name) in names.iter().enumerate() {
            if name.is_empty() {
                return Err(ConfigError::EmptyName);
            }
            let n: heapless::String<MAX_NAME_LEN> =
                heapless::String::try_from(*name).map_err(|_| ConfigError::NameTooLong)?;
            if names[..i].contains(name) {
                return Err(ConfigError::DuplicateName { name: n });
            }
            let _ = providers.push(Provider {
                name: n,
                health: Health::new(&compiled),
                circuit: Circuit::new(),
                deadline: u64::MAX,
                last_seen: 0,
                check: None,
                check_seq: 0,
            });
        }
        Ok(Router {
            policy: compiled,
            providers,
            events: Events::new(),
            now: 0,
            next_deadline: u64::MAX,
        })
    }

    /// Number of providers.
    #[must_use]
    pub fn len(&self) -> usize {
        self.providers.len()
    }

    /// Always false: a router has at least one provider.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }

    /// The id of the provider called `name`. O(P).
    #[must_use]
    pub fn provider(&self, name: &str) -> Option<ProviderId> {
        self.providers
            .iter()
            .position(|p| p.name == name)
            .map(|i| ProviderId(i as u8))
    }

    /// The id of the provider at `index`, if there is one.
    #[must_use]
    pub fn provider_at(&self, index: usize) -> Option<ProviderId> {
        (index < self.providers.len()).then_some(ProviderId(index as u8))
    }

    /// The name of provider `id` (empty for an id of another router).
    #[must_use]
    pub fn name(&self, id: ProviderId) -> &str {
        self.providers
            .get(id.index())
            .map_or("", |p| p.name.as_str())
    }

    /// The latest time the engine has seen, ms.
    #[must_use]
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Events dropped because the queue was full (drain it with [`Router::poll_event`]).
    #[must_use]
    pub fn dropped_events(&self) -> u64 {
        self.events.dropped()
    }

    /// Events waiting in the queue.
    #[must_use]
    pub fn pending_events(&self) -> usize {
        self.events.len()
    }

    #[inline]
    fn clock(&mut self, now: u64) -> u64 {
        if now > self.now {
            self.now = now;
        }
        self.now
    }

    /// Runs every transition due at `now`, then recomputes the next deadline.
    #[inline]
    fn catch_up(&mut self, now: u64) {
        if now >= self.next_deadline {
            self.catch_up_slow(now);
        }
    }

    #[cold]
    fn catch_up_slow(&mut self, now: u64) {
        for i in 0..self.providers.len() {
            if self.providers[i].deadline <= now {
                self.maintain(i, now);
            }
        }
        self.recompute_deadline();
    }

    fn recompute_deadline(&mut self) {
        self.next_deadline = self
            .providers
            .iter()
            .map(|p| p.deadline)
            .min()
            .unwrap_or(u64::MAX);
    }

    /// Performs provider `i`'s due transitions (bounded: a few steps) and refreshes its deadline.
    fn maintain(&mut self, i: usize, now: u64) {
        let id = ProviderId(i as u8);
        let p = &self.policy;
        let pr = &mut self.providers[i];
        for _ in 0..4 {
            pr.circuit.maintain(p, id, now, &mut self.events);
            if matches!(
                pr.circuit.state,
                CircuitState::Healthy | CircuitState::Ramping
            ) && pr.health.timeout_deadline(p).is_some_and(|d| d <= now)
            {
                pr.health
                    .advance(p, now, pr.circuit.state == CircuitState::Healthy);
                let s = pr.health.stats(p);
                if let Some(r) = pr.health.check_timeouts(p, &s, now) {
                    pr.health.timeout_breach_since = None;
                    pr.circuit.trip(p, id, r, now, &mut self.events);
                }
            }
            pr.deadline = pr.deadline(p);
            if pr.deadline > now {
                break;
            }
        }
    }

    /// Refreshes provider `i`'s cached deadline after an input changed it, running what is due.
    #[inline]
    fn refresh(&mut self, i: usize, now: u64) {
        let old = self.providers[i].deadline;
        let new = self.providers[i].deadline(&self.policy);
        if new == old {
            return;
        }
        self.providers[i].deadline = new;
        if new <= now {
            self.maintain(i, now);
            self.recompute_deadline();
        } else if new < self.next_deadline {
            self.next_deadline = new;
        } else if old == self.next_deadline {
            self.recompute_deadline();
        }
    }

    /// Performs every transition due at `now` (open periods ending, probes expiring, throttles
    /// ending, ramp stages advancing, backoff decaying, timeout breaches becoming sustained).
    /// Spurious or early calls are a harmless no-op. Cost: O(1) when nothing is due, O(P)
    /// otherwise.
    pub fn handle_timeout(&mut self, now: u64) {
        let now = self.clock(now);
        self.catch_up(now);
        self.debug_check();
    }

    /// When [`Router::handle_timeout`] next has something to do, or when the next health check is
    /// due ([`Router::poll_action`]; the latest time seen if one is due already). `None` when
    /// nothing is scheduled. Changes only after an input. Cost: O(P).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        let mut d = self.next_deadline;
        for pr in &self.providers {
            if let Some(due) = self.check_due_at(pr) {
                d = d.min(due.max(self.now));
            }
        }
        (d != u64::MAX).then_some(d)
    }

    /// When provider `pr` next needs a health check, if it will: a probe permit free in the
    /// `health_checks` probe mode, or an idle healthy provider under `health_check_interval_ms`.
    fn check_due_at(&self, pr: &Provider<B>) -> Option<u64> {
        let p = &self.policy;
        if pr.circuit.throttled {
            return None;
        }
        match pr.circuit.state {
            CircuitState::Probing if p.probe_mode == ProbeMode::HealthChecks => {
                pr.circuit.has_free_permit(p).then_some(self.now)
            }
            CircuitState::Healthy => {
                let idle = pr.last_seen.saturating_add(p.health_check_interval_ms?);
                match pr.check {
                    None => Some(idle),
                    Some(c) => c.expiry().map(|e| idle.max(e)),
                }
            }
            _ => None,
        }
    }

    /// The next thing the application should do at `now`: a health check for each free probe
    /// permit of a probing provider (with `probe_mode = "health_checks"`), and for each healthy
    /// provider idle for `health_check_interval_ms` (when set). Call until `None`. Report each
    /// check's outcome with [`Router::record`]; an unreported check expires after
    /// `probe_timeout_ms` (a new one may then be asked for, and the old ticket is stale). Cost:
    /// O(P).
    pub fn poll_action(&mut self, now: u64) -> Option<Action> {
        let now = self.clock(now);
        self.catch_up(now);
        for i in 0..self.providers.len() {
            if self
                .check_due_at(&self.providers[i])
                .is_none_or(|due| due > now)
            {
                continue;
            }
            let pr = &mut self.providers[i];
            if pr.circuit.state == CircuitState::Healthy {
                let seq = pr.check_seq;
                pr.check_seq = seq.wrapping_add(1);
                pr.check = Some(IdleCheck {
                    seq,
                    issued: now,
                    until: now.saturating_add(self.policy.probe_timeout_ms),
                });
                self.debug_check();
                return Some(Action::HealthCheck(self.ticket(
                    i,
                    TicketKind::HealthCheck,
                    seq,
                    now,
                )));
            }
            if let Some(seq) = pr.circuit.take_permit(&self.policy, now) {
                self.refresh(i, now);
                self.debug_check();
                return Some(Action::HealthCheck(self.ticket(
                    i,
                    TicketKind::HealthCheck,
                    seq,
                    now,
                )));
            }
        }
        None
    }

    /// Takes the next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop()
    }

    /// Which provider to call now. Same as [`Router::pick_with`] with no key and nothing tried.
    #[inline(always)]
    pub fn pick(&mut self, now: u64) -> Result<Ticket, Unavailable> {
        self.pick_with(now, &PickRequest::default())
    }

    /// Which provider to call now for this request.
    ///
    /// Providers are visited in priority order, skipping those in `req.tried` and throttled ones.
    /// A healthy provider takes the request. A ramping one takes exactly its share of the requests
    /// offered to it (deterministically, with no random numbers: at 25 % exactly one request in
    /// four), or, with a key, the keys whose position is below its share; what it does not take
    /// spills to the next provider. A probing provider takes the request as a probe when
    /// `probe_mode` is `requests` and a permit is free. If no provider takes it, the first ramping
    /// provider does (a ramp limits traffic only when there is somewhere else to send it).
    ///
    /// When none can: with `when_all_down = "soonest"` the provider expected back soonest is
    /// returned with `degraded` and a `retry_after_ms` hint; with `"fail"`, or when every provider
    /// has been tried, [`Unavailable`] with that hint.
    ///
    /// Cost: O(providers visited); O(key-independent) hashing is the caller's ([`crate::hash_key`]).
    #[inline(always)]
    pub fn pick_with(&mut self, now: u64, req: &PickRequest) -> Result<Ticket, Unavailable> {
        let now = self.clock(now);
        // The common case: nothing is due and the primary takes all traffic. The general path
        // returns a register-sized choice, so the ticket is built here, in the caller's frame.
        let (i, kind, seq) = if now < self.next_deadline
            && !req.tried.contains_index(0)
            && self
                .providers
                .first()
                .is_some_and(|pr| pr.circuit.takes_all())
        {
            (0, TicketKind::Request, 0)
        } else {
            match self.choose(now, req) {
                Some((i, kind, seq)) => (usize::from(i), kind, seq),
                None => return self.all_down(now, req.tried),
            }
        };
        Ok(self.ticket(i, kind, seq, now))
    }

    /// The provider that takes this request (index, kind, probe sequence), or `None` when none
    /// can: [`Router::pick_with`] beyond the primary's fast path.
    #[inline(never)]
    fn choose(&mut self, now: u64, req: &PickRequest) -> Option<(u8, TicketKind, u32)> {
        self.catch_up(now);
        let p = &self.policy;
        let mut first_ramping = None;
        for i in 0..self.providers.len() {
            if req.tried.contains_index(i) {
                continue;
            }
            let c = &mut self.providers[i].circuit;
            if c.throttled {
                continue;
            }
            match c.state {
                CircuitState::Healthy => return Some((i as u8, TicketKind::Request, 0)),
                CircuitState::Ramping => {
                    let share = c.ramp.share_ppm(p);
                    let take = match req.key {
                        Some(h) => key_position(h, i) < share,
                        None => c.ramp.offer(share),
                    };
                    if take {
                        return Some((i as u8, TicketKind::Request, 0));
                    }
                    first_ramping.get_or_insert(i);
                }
                CircuitState::Probing => {
                    if p.probe_mode == ProbeMode::Requests
                        && let Some(seq) = c.take_permit(p, now)
                    {
                        self.refresh(i, now);
                        self.debug_check();
                        return Some((i as u8, TicketKind::Probe, seq));
                    }
                }
                CircuitState::Open => {}
            }
        }
        first_ramping.map(|i| (i as u8, TicketKind::Request, 0))
    }

    #[inline]
    fn ticket(&self, i: usize, kind: TicketKind, seq: u32, now: u64) -> Ticket {
        Ticket {
            provider: ProviderId(i as u8),
            kind,
            generation: self.providers[i].circuit.generation,
            probe_seq: seq,
            degraded: false,
            retry_after_ms: None,
            issued_at_ms: now,
        }
    }

    #[cold]
    #[inline(never)]
    fn all_down(&mut self, now: u64, tried: ProviderSet) -> Result<Ticket, Unavailable> {
        let p = &self.policy;
        let soonest = |skip_tried: bool| {
            let mut best: Option<(usize, u64)> = None;
            for (i, pr) in self.providers.iter().enumerate() {
                if skip_tried && tried.contains_index(i) {
                    continue;
                }
                let at = pr.circuit.available_at(p, now);
                if best.is_none_or(|(_, b)| at < b) {
                    best = Some((i, at));
                }
            }
            best
        };
        match soonest(true) {
            Some((i, at)) if p.when_all_down == AllDown::Soonest => {
                let mut t = self.ticket(i, TicketKind::Request, 0, now);
                t.degraded = true;
                t.retry_after_ms = Some(at - now);
                Ok(t)
            }
            Some((_, at)) => Err(Unavailable {
                retry_after_ms: at - now,
            }),
            None => {
                let at = soonest(false).map_or(now, |(_, at)| at);
                Err(Unavailable {
                    retry_after_ms: at - now,
                })
            }
        }
    }

    /// Records the outcome of the call `ticket` decided. Returns whether it was counted.
    ///
    /// A ticket from an earlier circuit generation (issued before the provider's last trip or
    /// before its ramp started), or a probe whose permit expired, is [`Recorded::Stale`] and
    /// changes nothing: a late result cannot flip the current state. Cost: O(1) (see
    /// [`Router`]).
    #[inline(always)]
    pub fn record(&mut self, ticket: &Ticket, outcome: Outcome, now: u64) -> Recorded {
        let now = self.clock(now);
        // The common case: an ordinary success at a healthy provider with nothing due, which
        // provably changes nothing but the window (see `Health::record_quiet_success`).
        if now < self.next_deadline
            && ticket.kind == TicketKind::Request
            && outcome.kind == OutcomeKind::Success
            && outcome.retry_after_ms.is_none()
            && let Some(pr) = self.providers.get_mut(ticket.provider.index())
            && pr.circuit.generation == ticket.generation
            && pr.circuit.state == CircuitState::Healthy
            && pr.health.record_quiet_success(now, outcome.latency_ms)
        {
            pr.last_seen = now;
            pr.circuit.note_success();
            return Recorded::Accepted;
        }
        self.record_slow(
            ticket.provider,
            ticket.kind,
            ticket.generation,
            ticket.probe_seq,
            outcome,
            now,
        )
    }

    /// [`Router::record`] without its fast path: every rule, for every outcome. Same results as
    /// `record` (a test holds them to that); not part of the API: only with the `testing`
    /// feature.
    #[cfg(feature = "testing")]
    #[inline(always)]
    pub fn record_general(&mut self, ticket: &Ticket, outcome: Outcome, now: u64) -> Recorded {
        self.record_slow(
            ticket.provider,
            ticket.kind,
            ticket.generation,
            ticket.probe_seq,
            outcome,
            now,
        )
    }

    /// The general path of [`Router::record`]. The ticket arrives as scalars so that the caller's
    /// ticket need not be in memory (a copy of it there stalls on store forwarding).
    #[inline(never)]
    fn record_slow(
        &mut self,
        provider: ProviderId,
        kind: TicketKind,
        generation: u32,
        probe_seq: u32,
        outcome: Outcome,
        now: u64,
    ) -> Recorded {
        let now = self.clock(now);
        self.catch_up(now);
        let i = provider.index();
        let Some(pr) = self.providers.get_mut(i) else {
            return Recorded::UnknownProvider;
        };
        if generation != pr.circuit.generation {
            return Recorded::Stale;
        }
        let mut probe = kind != TicketKind::Request;
        if kind == TicketKind::HealthCheck && pr.circuit.state == CircuitState::Healthy {
            // A check of an idle healthy provider: counted like a request.
            match pr.check {
                Some(c) if c.seq == probe_seq && !c.expired(now) => pr.check = None,
                _ => return Recorded::Stale,
            }
            probe = false;
        } else if probe && !pr.circuit.release_permit(probe_seq) {
            return Recorded::Stale;
        }
        self.apply(i, outcome, probe, now);
        Recorded::Accepted
    }

    /// Records an outcome for provider `id` without a ticket (a call made outside the router, a
    /// replayed log line). Counted like an ordinary request of the current generation. Cost: O(1).
    pub fn observe(&mut self, id: ProviderId, outcome: Outcome, now: u64) -> Recorded {
        let now = self.clock(now);
        self.catch_up(now);
        if id.index() >= self.providers.len() {
            return Recorded::UnknownProvider;
        }
        self.apply(id.index(), outcome, false, now);
        Recorded::Accepted
    }

    #[inline]
    fn apply(&mut self, i: usize, outcome: Outcome, probe: bool, now: u64) {
        let id = ProviderId(i as u8);
        let p = &self.policy;
        let pr = &mut self.providers[i];
        let state = pr.circuit.state;
        let before = (
            pr.circuit.throttled,
            pr.circuit.throttled_until,
            pr.health.timeout_breach_since,
        );
        pr.last_seen = now;
        // The baseline learns while healthy; a throttle is not a state.
        pr.health.advance(p, now, state == CircuitState::Healthy);
        if outcome.retry_after_ms.is_some() || outcome.kind == OutcomeKind::RateLimited {
            pr.circuit.throttle(p, id, &outcome, now, &mut self.events);
        }
        if outcome.kind == OutcomeKind::Success {
            // Any success ends a run of 429s, even one that carries a Retry-After.
            pr.circuit.note_success();
        }
        let judged = matches!(state, CircuitState::Healthy | CircuitState::Ramping);
        let mut reason: Option<Reason> = pr.health.record(p, &outcome, now, judged);
        if state == CircuitState::Ramping {
            pr.circuit.ramp.count(p, outcome.kind);
            if reason.is_none() {
                reason = crate::ramp::rollback(p, &pr.health.stats(p), outcome.kind);
            }
        }
        if let Some(r) = reason {
            pr.health.timeout_breach_since = None;
            pr.circuit.trip(p, id, r, now, &mut self.events);
        } else if state == CircuitState::Probing && probe {
            let failed = outcome.kind.is_hard_failure()
                || outcome.kind == OutcomeKind::Timeout
                || (p.count_client_errors && outcome.kind == OutcomeKind::ClientError);
            if failed {
                pr.circuit
                    .probe_failed(p, id, outcome.kind, now, &mut self.events);
            } else if outcome.kind == OutcomeKind::Success
                && pr.circuit.probe_succeeded(p, id, now, &mut self.events)
            {
                pr.health.reset(p);
            }
        }
        let pr = &self.providers[i];
        let after = (
            pr.circuit.throttled,
            pr.circuit.throttled_until,
            pr.health.timeout_breach_since,
        );
        // The deadline depends on the state, the throttle, the timeout breach and (ramping,
        // probing) the stage's samples and the probe permits; a healthy provider whose throttle
        // and breach did not move keeps its deadline.
        if pr.circuit.state != state || state != CircuitState::Healthy || before != after {
            self.refresh(i, now);
        }
        self.debug_check_one(i);
    }

    /// Provider `id`'s state as plain data, as of the latest time the router has seen. Cost: O(B)
    /// when the provider's window has not moved since that time (an idle provider), O(32)
    /// otherwise.
    #[must_use]
    pub fn view(&self, id: ProviderId) -> Option<ProviderView<'_>> {
        let pr = self.providers.get(id.index())?;
        let p = &self.policy;
        let c = &pr.circuit;
        Some(ProviderView {
            id,
            name: pr.name.as_str(),
            state: c.state,
            share_ppm: c.share_ppm(p),
            throttled_until_ms: c.throttled.then_some(c.throttled_until),
            open_until_ms: (c.state == CircuitState::Open).then_some(c.open_until),
            ramp_stage: (c.state == CircuitState::Ramping).then_some(c.ramp.stage as u8),
            strikes: c.strikes,
            trips: c.trips,
            generation: c.generation,
            probes_in_flight: c.probes_in_flight(),
            probe_successes: if c.state == CircuitState::Probing {
                c.probe_ok
            } else {
                0
            },
            consecutive_failures: pr.health.consecutive,
            window: pr.health.window.stats_at(self.now, p.count_client_errors),
            latency_ms: pr
                .health
                .window
                .latency_quantile_at(self.now, p.latency_quantile_ppm),
            baseline_ms: pr.health.baseline.value_ms(),
            next_transition_ms: (pr.deadline != u64::MAX).then_some(pr.deadline),
        })
    }

    /// Every provider's view, in priority order.
    pub fn views(&self) -> impl Iterator<Item = ProviderView<'_>> + '_ {
        (0..self.providers.len()).filter_map(|i| self.view(ProviderId(i as u8)))
    }

    /// Checks every internal invariant (window totals against a recount of the buckets, circuit
    /// fields, cached deadlines). `None` when all hold. Cost: O(P · B): for tests and fuzzing.
    #[must_use]
    pub fn invariant_violation(&self) -> Option<&'static str> {
        let p = &self.policy;
        for pr in &self.providers {
            if let Some(v) = pr.circuit.violation(p) {
                return Some(v);
            }
            if pr.deadline != pr.deadline(p) {
                return Some("cached provider deadline is out of date");
            }
            if pr.deadline <= self.now && pr.deadline != u64::MAX {
                return Some("a due transition was not performed");
            }
            #[cfg(debug_assertions)]
            pr.health.check_invariants(p);
        }
        if self.next_deadline
            != self
                .providers
                .iter()
                .map(|p| p.deadline)
                .min()
                .unwrap_or(u64::MAX)
        {
            return Some("router deadline is not the minimum of the providers'");
        }
        None
    }

    #[inline]
    fn debug_check_one(&self, i: usize) {
        #[cfg(debug_assertions)]
        if let Some(v) = self.providers[i].circuit.violation(&self.policy) {
            panic!("failover-core invariant broken: {v}");
        }
        let _ = i;
    }

    #[inline]
    fn debug_check(&self) {
        #[cfg(debug_assertions)]
        {
            let d = self
                .providers
                .iter()
                .map(|p| p.deadline)
                .min()
                .unwrap_or(u64::MAX);
            debug_assert_eq!(d, self.next_deadline, "router deadline out of date");
            // A deadline of u64::MAX means "never" (an input at u64::MAX performs it).
            debug_assert!(
                self.next_deadline > self.now || self.next_deadline == u64::MAX,
                "a due transition was not performed"
            );
        }
    }
}
