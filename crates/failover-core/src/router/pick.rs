//! Routing: which provider takes a request (priority order, ramps' exact shares and sticky keys,
//! probes), what happens when none can, and the read-only "who is back soonest" queries.

use super::Router;
use crate::event::{CircuitState, ProviderId};
use crate::policy::{AllDown, ProbeMode};
use crate::ramp::key_position;
use crate::request::{Excluded, Exclusion};
use crate::ticket::{PickRequest, ProviderSet, Ticket, TicketKind, Unavailable};

impl<const P: usize, const B: usize, const E: usize> Router<P, B, E> {
    /// Which provider to call now. Same as [`Router::pick_with`] with no key and nothing tried.
    #[inline(always)]
    pub fn pick(&mut self, now: u64) -> Result<Ticket, Unavailable> {
        self.pick_with(now, &PickRequest::default())
    }

    /// Which provider to call now for this request.
    ///
    /// Providers are visited in priority order, skipping those in `req.tried`, throttled ones and
    /// ones paced at zero headroom. A healthy provider takes the request. A ramping one takes
    /// exactly its share of the requests offered to it (deterministically, with no random
    /// numbers: at 25 % exactly one request in four), or, with a key, the keys whose position is
    /// below its share; what it does not take spills to the next provider. A paced provider
    /// ([`Router::observe_headroom`]) takes its share multiplied by headroom / watermark, the same
    /// way. A probing provider takes the request as a probe when `probe_mode` is `requests` and a
    /// permit is free. If no provider takes it, the first ramping or paced provider does (a ramp
    /// or pacing limits traffic only when there is somewhere else to send it).
    ///
    /// When none can: with `when_all_down = "soonest"` the provider expected back soonest is
    /// returned with `degraded` and a `retry_after_ms` hint; with `"fail"`, or when every provider
    /// has been tried, [`Unavailable`] with that hint.
    ///
    /// Cost: O(providers visited); O(key-independent) hashing is the caller's ([`crate::hash_key`]).
    #[inline(always)]
    pub fn pick_with(&mut self, now: u64, req: &PickRequest) -> Result<Ticket, Unavailable> {
        let now = self.clock(now);
        match self.pick_choice(now, req) {
            Some((i, kind, seq)) => Ok(self.ticket(i, kind, seq, now)),
            None => self.all_down(now, req.tried),
        }
    }

    /// The provider that takes this request at `now` (already clocked): index, kind and probe
    /// sequence, or `None` when none can (the all-down case is the caller's). The common case,
    /// nothing due and the primary taking all traffic, is inline; the rest is [`Router::choose`].
    /// The choice is register-sized, so the ticket is built in the caller's frame.
    #[inline(always)]
    pub(crate) fn pick_choice(
        &mut self,
        now: u64,
        req: &PickRequest,
    ) -> Option<(usize, TicketKind, u32)> {
        if !self.isolated().is_empty() {
            // Providers isolated by hand are skipped like providers already tried.
            let tried = ProviderSet::from_bits(req.tried.bits() | self.isolated().bits());
            return self
                .choose(now, req.key, tried)
                .map(|(i, kind, seq)| (usize::from(i), kind, seq));
        }
        if now < self.next_deadline
            && !req.tried.contains_index(0)
            && self.providers.first().is_some_and(|pr| pr.takes_all())
        {
            Some((0, TicketKind::Request, 0))
        } else {
            self.choose(now, req.key, req.tried)
                .map(|(i, kind, seq)| (usize::from(i), kind, seq))
        }
    }

    /// The provider that takes this request (index, kind, probe sequence), or `None` when none
    /// can: [`Router::pick_with`] beyond the primary's fast path. The request arrives as scalars
    /// (in registers), so a caller's fast path need not build it in memory.
    #[inline(never)]
    fn choose(
        &mut self,
        now: u64,
        key: Option<u64>,
        tried: ProviderSet,
    ) -> Option<(u8, TicketKind, u32)> {
        self.catch_up(now);
        let p = &self.policy;
        let mut first_limited = None;
        for i in 0..self.providers.len() {
            if tried.contains_index(i) {
                continue;
            }
            let pr = &mut self.providers[i];
            if pr.held_back() {
                continue;
            }
            let (c, pace) = (&mut pr.circuit, &mut pr.pace);
            match c.state {
                CircuitState::Healthy if !pace.active => {
                    return Some((i as u8, TicketKind::Request, 0));
                }
                CircuitState::Healthy => {
                    let share = pace.factor_ppm(p);
                    let take = match key {
                        Some(h) => key_position(h, i) < share,
                        None => pace.offer(share),
                    };
                    if take {
                        return Some((i as u8, TicketKind::Request, 0));
                    }
                    first_limited.get_or_insert(i);
                }
                CircuitState::Ramping => {
                    let share = pace.scale(p, c.ramp.share_ppm(p));
                    let take = match key {
                        Some(h) => key_position(h, i) < share,
                        None => c.ramp.offer(share),
                    };
                    if take {
                        return Some((i as u8, TicketKind::Request, 0));
                    }
                    first_limited.get_or_insert(i);
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
        first_limited.map(|i| (i as u8, TicketKind::Request, 0))
    }

    /// Why each provider ahead of `chosen` in priority order did not take a request that had
    /// `tried` (as [`Router::choose`] skips them, at the same time): tried, isolated, throttled
    /// or paced at zero headroom, open, probing without a permit, or outside a ramp's or
    /// pacing's share. Read-only. Cost: O(chosen).
    #[cold]
    #[inline(never)]
    pub(crate) fn exclusions(&self, chosen: usize, tried: ProviderSet) -> Excluded {
        let mut out = Excluded::NONE;
        for (i, pr) in self.providers.iter().enumerate().take(chosen) {
            let why = if tried.contains_index(i) {
                Exclusion::Tried
            } else if self.isolated.contains_index(i) {
                Exclusion::Isolated
            } else if pr.circuit.throttled {
                Exclusion::Throttled
            } else if pr.pace.exhausted() {
                Exclusion::Paced
            } else {
                match pr.circuit.state {
                    CircuitState::Open => Exclusion::Open,
                    CircuitState::Probing => Exclusion::Probing,
                    CircuitState::Ramping => Exclusion::Ramping,
                    CircuitState::Healthy => Exclusion::Paced,
                }
            };
            out.set(ProviderId(i as u8), why);
        }
        out
    }

    #[inline]
    pub(crate) fn ticket(&self, i: usize, kind: TicketKind, seq: u32, now: u64) -> Ticket {
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
        match self.soonest(tried) {
            // Never an isolated provider (`soonest` skips them).
            Some((id, at)) if self.policy.when_all_down == AllDown::Soonest => {
                let mut t = self.ticket(id.index(), TicketKind::Request, 0, now);
                t.degraded = true;
                t.retry_after_ms = Some(at - now);
                Ok(t)
            }
            Some((_, at)) => Err(Unavailable {
                retry_after_ms: at - now,
            }),
            None => Err(Unavailable {
                retry_after_ms: self.retry_hint(),
            }),
        }
    }

    /// The provider not in `tried` expected to take traffic soonest, and when (ms, the engine's
    /// time; the latest time seen if it can now): the end of its open period, its throttle, its
    /// pacing hint at zero headroom or its oldest probe permit. Ties go to the earlier provider.
    /// `None` when every provider is in `tried` or isolated by hand. Read-only: it changes nothing
    /// (a ramp's turn, a probe permit), so it can be asked at any time. Cost: O(P).
    #[must_use]
    pub fn soonest(&self, tried: ProviderSet) -> Option<(ProviderId, u64)> {
        let mut best: Option<(usize, u64)> = None;
        for (i, pr) in self.providers.iter().enumerate() {
            if tried.contains_index(i) || self.isolated.contains_index(i) {
                continue;
            }
            let at = pr.available_at(&self.policy, self.now);
            if best.is_none_or(|(_, b)| at < b) {
                best = Some((i, at));
            }
        }
        best.map(|(i, at)| (ProviderId(i as u8), at))
    }

    /// When a caller whose request every provider failed may try again: ms from the latest time
    /// seen until the soonest provider is expected to take traffic (0 when one already can). The
    /// hint [`Unavailable`] carries when every provider was tried. Read-only. Cost: O(P).
    #[must_use]
    pub fn retry_hint(&self) -> u64 {
        self.soonest(ProviderSet::new())
            .map_or(0, |(_, at)| at - self.now)
    }
}
