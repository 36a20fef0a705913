//! The router: N providers in priority order, one decision per request, one record per outcome.

use crate::event::{Event, EventKind, Events, Manual, ProviderId};
use crate::headroom::Headroom;
use crate::outcome::{Outcome, OutcomeKind};
use crate::policy::{Compiled, ConfigError, MAX_NAME_LEN, Policy};
use crate::provider::Provider;
use crate::ticket::{Action, ProviderSet, Recorded, Ticket, TicketKind};
use crate::view::ProviderView;

mod pick;

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
    pub(crate) policy: Compiled,
    pub(crate) providers: heapless::Vec<Provider<B>, P>,
    pub(crate) events: Events<E>,
    pub(crate) now: u64,
    /// Minimum of the providers' cached deadlines.
    next_deadline: u64,
    /// Providers isolated by hand ([`Router::isolate`]).
    isolated: ProviderSet,
    /// The policy as given (validated), for [`Router::policy`].
    source: Policy,
    /// Cached for the request engine (the providers never change): a request's default attempt
    /// budget (one per provider plus `same_provider_retries`, at most 255) and the set of all
    /// providers as bits.
    request_attempts: u8,
    all: u64,
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
            let _ = providers.push(Provider::new(n, &compiled));
        }
        Ok(Router {
            policy: compiled,
            providers,
            events: Events::new(),
            now: 0,
            next_deadline: u64::MAX,
            isolated: ProviderSet::new(),
            source: policy.clone(),
            request_attempts: (names.len() as u64)
                .saturating_add(u64::from(policy.same_provider_retries))
                .min(255) as u8,
            all: u64::MAX >> (64 - names.len()),
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

    /// The policy in force, every field (defaults included), as given to [`Router::new`]: read it
    /// back field by field through [`crate::Fields`] (the bindings' `policy()`). Cost: O(1).
    #[must_use]
    pub fn policy_in_force(&self) -> &Policy {
        &self.source
    }

    /// The compiled policy (for the request engine).
    #[inline]
    pub(crate) fn policy(&self) -> &Compiled {
        &self.policy
    }

    /// A request's default attempt budget: one per provider plus the policy's
    /// `same_provider_retries`, at most 255.
    #[inline(always)]
    pub(crate) fn request_attempts(&self) -> u8 {
        self.request_attempts
    }

    /// Every provider, as bits.
    #[inline(always)]
    pub(crate) fn all(&self) -> u64 {
        self.all
    }

    /// Provider `id`'s long-horizon latency baseline (time to first token for streamed calls),
    /// ms, once it has one. Cost: O(1).
    #[must_use]
    pub fn baseline_ms(&self, id: ProviderId) -> Option<u32> {
        self.providers.get(id.index())?.health.baseline.value_ms()
    }

    /// The latest time the engine has seen, ms.
    #[must_use]
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Events dropped because the queue was full (drain it with [`Router::poll_event`]): when an
    /// event finds the queue full, the oldest queued event is dropped to make room, so the queue
    /// always holds the newest `E` events. A caller that drains after every input loses none unless
    /// one input queues more than `E` events.
    #[must_use]
    pub fn dropped_events(&self) -> u64 {
        self.events.dropped()
    }

    /// Events waiting in the queue.
    #[must_use]
    pub fn pending_events(&self) -> usize {
        self.events.len()
    }

    /// How many events were ever queued (drained, dropped or still waiting; wraps at `u64::MAX`).
    /// With [`Router::newest_events`], a caller can see every new event without draining the
    /// queue: remember this count after reading, and after the next input the difference is how
    /// many are new (all of them still queued unless one input queued more than `E`, or someone
    /// drained in between). The bindings push events to callbacks this way while
    /// [`Router::poll_event`] keeps working. Cost: O(1).
    #[must_use]
    pub fn queued_total(&self) -> u64 {
        self.events.total()
    }

    /// The `n` newest queued events, oldest first, without taking them (fewer when fewer are
    /// queued). Cost: O(n).
    pub fn newest_events(&self, n: usize) -> impl Iterator<Item = &Event> + '_ {
        self.events.newest(n)
    }

    #[inline]
    pub(crate) fn clock(&mut self, now: u64) -> u64 {
        if now > self.now {
            self.now = now;
        }
        self.now
    }

    /// Runs every transition due at `now`, then recomputes the next deadline.
    #[inline]
    pub(crate) fn catch_up(&mut self, now: u64) {
        if now >= self.next_deadline {
            self.catch_up_slow(now);
        }
    }

    #[cold]
    pub(crate) fn catch_up_slow(&mut self, now: u64) {
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

    /// Performs provider `i`'s due transitions and refreshes its deadline.
    fn maintain(&mut self, i: usize, now: u64) {
        let id = ProviderId(i as u8);
        self.providers[i].maintain(&self.policy, id, now, &mut self.events);
    }

    /// Refreshes provider `i`'s cached deadline after an input changed it, running what is due.
    #[inline]
    pub(crate) fn refresh(&mut self, i: usize, now: u64) {
        let old = self.providers[i].deadline;
        let new = self.providers[i].due_at(&self.policy);
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
    /// ending, pacing hints expiring, ramp stages advancing, backoff decaying, timeout breaches
    /// becoming sustained).
    /// Spurious or early calls are a harmless no-op. Cost: O(1) when nothing is due, O(P)
    /// otherwise.
    pub fn handle_timeout(&mut self, now: u64) {
        let now = self.clock(now);
        self.catch_up(now);
        self.debug_check();
    }

    /// When [`Router::handle_timeout`] next has something to do, or when the next health check is
    /// due ([`Router::poll_action`]; the latest time seen if one is due already). `None` when
    /// nothing is scheduled; `Some(u64::MAX)` when something is scheduled at the end of time (a
    /// deadline that saturated there: an input at `u64::MAX` performs it), the same as the views'
    /// `next_transition_ms`. Changes only after an input. Cost: O(P).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        let mut d = (self.next_deadline != u64::MAX).then_some(self.next_deadline);
        let mut at = |x: u64| d = Some(d.map_or(x, |y| y.min(x)));
        for (i, pr) in self.providers.iter().enumerate() {
            if !self.isolated.contains_index(i)
                && let Some(due) = pr.check_due_at(&self.policy, self.now)
            {
                at(due.max(self.now));
            }
            if self.next_deadline == u64::MAX
                && let Some(due) = pr.due(&self.policy)
            {
                at(due);
            }
        }
        d
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
            if self.isolated.contains_index(i) {
                continue;
            }
            if let Some((seq, took_permit)) = self.providers[i].issue_check(&self.policy, now) {
                if took_permit {
                    self.refresh(i, now);
                }
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

    /// Records the outcome of the call `ticket` decided. Returns whether it was counted.
    ///
    /// A ticket from an earlier circuit generation (issued before the provider's last trip or
    /// before its ramp started), or a probe whose permit expired, is [`Recorded::Stale`] and
    /// changes nothing: a late result cannot flip the current state. Cost: O(1) (see
    /// [`Router`]).
    #[inline(always)]
    pub fn record(&mut self, ticket: &Ticket, outcome: Outcome, now: u64) -> Recorded {
        self.record_parts(
            ticket.provider,
            ticket.kind,
            ticket.generation,
            ticket.probe_seq,
            outcome,
            now,
        )
    }

    /// [`Router::record`] with the ticket as scalars (so a caller that keeps a ticket's parts in
    /// its own state need not rebuild it in memory).
    #[inline(always)]
    pub(crate) fn record_parts(
        &mut self,
        provider: ProviderId,
        kind: TicketKind,
        generation: u32,
        probe_seq: u32,
        outcome: Outcome,
        now: u64,
    ) -> Recorded {
        let now = self.clock(now);
        // The common case: an ordinary success at a healthy provider with nothing due, which
        // provably changes nothing but the window (see `Health::record_quiet_success`).
        if now < self.next_deadline
            && kind == TicketKind::Request
            && outcome.kind == OutcomeKind::Success
            && outcome.retry_after_ms.is_none()
            && let Some(pr) = self.providers.get_mut(provider.index())
            && pr.record_quiet_success(generation, outcome.latency_ms, now)
        {
            return Recorded::Accepted;
        }
        self.record_slow(provider, kind, generation, probe_seq, outcome, now)
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
        match pr.admit(kind, generation, probe_seq, now) {
            Ok(probe) => {
                self.apply(i, outcome, probe, now);
                Recorded::Accepted
            }
            Err(r) => r,
        }
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

    /// Feeds one answer's rate-limit headers for provider `id` (read with [`Headroom::header`],
    /// from any answer: success, 429 or error): below the policy's `pace_watermark` the provider
    /// is *paced* (its share multiplied by headroom / watermark; none at zero headroom) until the
    /// quota's reset, `pace_max_age_ms` without a fresh header, or a fresh header at or above the
    /// watermark. Headers without a usable figure change nothing. Pacing is not a failure: it
    /// never opens a circuit, never starts a ramp and never ends a throttle (a 429 still wins).
    /// Emits [`crate::EventKind::Paced`] and [`crate::EventKind::Unpaced`]. The rules are in the
    /// `pacing` module's documentation (and the README).
    ///
    /// Separate from [`Router::record`] so that recording keeps its cost; call it with the same
    /// `now`, before or after. Returns [`Recorded::UnknownProvider`] for an id of another router,
    /// else [`Recorded::Accepted`]. Cost: O(1) (O(P) when the next deadline moves later).
    pub fn observe_headroom(&mut self, id: ProviderId, headroom: &Headroom, now: u64) -> Recorded {
        let now = self.clock(now);
        self.catch_up(now);
        let i = id.index();
        let Some(pr) = self.providers.get_mut(i) else {
            return Recorded::UnknownProvider;
        };
        if pr.observe_headroom(&self.policy, id, headroom, now, &mut self.events) {
            self.refresh(i, now);
        }
        self.debug_check();
        Recorded::Accepted
    }

    #[inline]
    fn apply(&mut self, i: usize, outcome: Outcome, probe: bool, now: u64) {
        let id = ProviderId(i as u8);
        if self.providers[i].apply(&self.policy, id, outcome, probe, now, &mut self.events) {
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
        Some(self.overlay(pr.view(&self.policy, id, self.now)))
    }

    /// A provider's view with what the router adds: isolated by hand, with a share of 0.
    fn overlay<'a>(&self, mut v: ProviderView<'a>) -> ProviderView<'a> {
        if self.isolated.contains(v.id) {
            v.isolated = true;
            v.share_ppm = 0;
        }
        v
    }

    /// Provider `id`'s view without its window's figures and latency quantiles (zero and `None`;
    /// every other field as [`Router::view`] gives it): O(1) rather than O(32). Not part of the
    /// API: only with the `testing` feature (the invariant checks read states on every pick).
    #[cfg(feature = "testing")]
    #[must_use]
    pub fn state_view(&self, id: ProviderId) -> Option<ProviderView<'_>> {
        let pr = self.providers.get(id.index())?;
        Some(self.overlay(pr.state_view(&self.policy, id)))
    }

    /// Provider `id`'s circuit generation, as its view reports it, without the view's window
    /// statistics: O(1). Not part of the API: only with the `testing` feature (the fuzz targets
    /// judge every record against it).
    #[cfg(feature = "testing")]
    #[must_use]
    pub fn generation(&self, id: ProviderId) -> Option<u32> {
        self.providers.get(id.index()).map(|p| p.circuit.generation)
    }

    /// Isolates provider `id` by hand, at `now` (an operator's decision during an incident): until
    /// [`Router::release`], it is never picked (not even as the all-down fallback when every other
    /// provider is down: then there is no provider), gets no probes and no health checks, and
    /// its view says `isolated` with a share of 0. Its circuit keeps its own state and timers;
    /// outcomes of calls already made are still recorded. Queues an `isolated` event. Returns
    /// false (and does nothing) for an unknown or already isolated provider. In fleet mode the
    /// next round publishes it and every instance isolates the provider too
    /// ([`crate::fleet::Register::isolation`]), as it does with a release. Cost: O(P).
    pub fn isolate(&mut self, id: ProviderId, now: u64) -> bool {
        self.manual(id, now, Manual::Isolated)
    }

    /// Ends an isolation ([`Router::isolate`]) at `now`: the provider takes traffic again as its
    /// circuit allows (use [`Router::reset`] too for a fresh start). Queues a `released` event.
    /// Returns false (and does nothing) for an unknown or not isolated provider. Cost: O(P).
    pub fn release(&mut self, id: ProviderId, now: u64) -> bool {
        self.manual(id, now, Manual::Released)
    }

    /// Clears provider `id`'s state by hand at `now`: its window, latency baseline, circuit
    /// (healthy), strikes, trips and backoff are as new; its circuit generation moves on, so a
    /// ticket issued before is stale. Isolation is kept. Queues a `reset` event. Returns false for
    /// an unknown provider. Cost: O(B + P).
    pub fn reset(&mut self, id: ProviderId, now: u64) -> bool {
        self.manual(id, now, Manual::Reset)
    }

    /// Whether provider `id` is isolated by hand. Cost: O(1).
    #[must_use]
    pub fn is_isolated(&self, id: ProviderId) -> bool {
        self.isolated.contains(id)
    }

    fn manual(&mut self, id: ProviderId, now: u64, action: Manual) -> bool {
        let now = self.clock(now);
        self.catch_up(now);
        let i = id.index();
        if i >= self.providers.len() {
            return false;
        }
        match action {
            Manual::Isolated if self.isolated.contains(id) => return false,
            Manual::Isolated => self.isolated.insert(id),
            Manual::Released if !self.isolated.contains(id) => return false,
            Manual::Released => {
                self.isolated = ProviderSet::from_bits(self.isolated.bits() & !(1u64 << i));
            }
            Manual::Reset => {
                self.providers[i].reset(&self.policy, now);
                self.recompute_deadline();
                if self.providers[i].deadline <= now {
                    self.maintain(i, now);
                    self.recompute_deadline();
                }
            }
        }
        self.events.push(now, id, EventKind::Manual(action));
        self.debug_check();
        true
    }

    /// Providers isolated by hand, for routing.
    #[inline(always)]
    pub(crate) fn isolated(&self) -> ProviderSet {
        self.isolated
    }

    /// Every provider's view, in priority order.
    pub fn views(&self) -> impl Iterator<Item = ProviderView<'_>> + '_ {
        (0..self.providers.len()).filter_map(|i| self.view(ProviderId(i as u8)))
    }

    /// Checks every internal invariant (window totals against a recount of the buckets, circuit
    /// fields, cached deadlines). `None` when all hold. Cost: O(P · B): for tests and fuzzing.
    #[must_use]
    pub fn invariant_violation(&self) -> Option<&'static str> {
        for pr in &self.providers {
            if let Some(v) = pr.violation(&self.policy, self.now) {
                return Some(v);
            }
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

#[cfg(test)]
mod tests {
    use super::Router;
    use crate::policy::Policy;

    /// The router's consistency check names each broken part: a router deadline that is not the
    /// providers' soonest, a provider's stale cached deadline (neither reachable through the API,
    /// whose runs the invariant suites check).
    #[test]
    fn invariant_violation_names_each_broken_part() {
        let mut r = Router::<4, 120, 64>::new(&Policy::default(), &["a", "b"]).unwrap();
        assert_eq!(r.invariant_violation(), None);
        let fresh = r.next_deadline;
        r.next_deadline = 5;
        assert_eq!(
            r.invariant_violation(),
            Some("router deadline is not the minimum of the providers'")
        );
        r.next_deadline = fresh;
        assert_eq!(r.invariant_violation(), None);
        r.providers[1].deadline = 5;
        assert_eq!(
            r.invariant_violation(),
            Some("cached provider deadline is out of date")
        );
    }

    /// The debug builds' checks after each input fire on what they guard (the fuzz targets and
    /// the property tests rely on them): a router deadline out of date, a due transition left
    /// undone, a circuit's broken field.
    #[cfg(debug_assertions)]
    #[test]
    #[should_panic(expected = "router deadline out of date")]
    fn the_debug_check_fires_on_a_stale_router_deadline() {
        let mut r = Router::<4, 120, 64>::new(&Policy::default(), &["a", "b"]).unwrap();
        r.debug_check();
        r.next_deadline = 5;
        r.debug_check();
    }

    #[cfg(debug_assertions)]
    #[test]
    #[should_panic(expected = "a due transition was not performed")]
    fn the_debug_check_fires_on_a_due_transition_left_undone() {
        let mut r = Router::<4, 120, 64>::new(&Policy::default(), &["a", "b"]).unwrap();
        r.providers[0].deadline = 5;
        r.next_deadline = 5;
        r.now = 5;
        r.debug_check();
    }

    #[cfg(debug_assertions)]
    #[test]
    #[should_panic(
        expected = "failover-core invariant broken: circuit left healthy without a trip"
    )]
    fn the_debug_check_fires_on_a_broken_circuit() {
        let mut r = Router::<4, 120, 64>::new(&Policy::default(), &["a", "b"]).unwrap();
        r.debug_check_one(1);
        r.providers[1].circuit.state = crate::event::CircuitState::Open;
        r.debug_check_one(1);
    }
}
