//! The model's router: picks, records, observations, health checks, deadlines and views.

use crate::*;

impl Model {
    // --- the router -------------------------------------------------------------------------------

    pub(crate) fn ticket(&self, i: usize, kind: TicketKind, seq: u32) -> MTicket {
        MTicket {
            provider: i,
            kind,
            generation: self.provs[i].generation,
            probe_seq: seq,
            degraded: false,
            retry_after_ms: None,
            issued_at_ms: self.now,
        }
    }

    pub(crate) fn free_permit(&self, i: usize) -> bool {
        let p = &self.provs[i];
        p.state == CircuitState::Probing && p.probes.len() < self.s.probe_max as usize
    }

    pub(crate) fn take_permit(&mut self, i: usize) -> u32 {
        let now = self.now;
        let p = &mut self.provs[i];
        let seq = p.next_seq;
        p.next_seq = p.next_seq.wrapping_add(1);
        p.probes.push((seq, expiry(now, self.s.probe_timeout_ms)));
        self.after_input(i);
        seq
    }

    pub(crate) fn available_at(&self, i: usize) -> u64 {
        let p = &self.provs[i];
        let now = self.now;
        let state_at = match p.state {
            CircuitState::Healthy | CircuitState::Ramping => now,
            CircuitState::Open => p.open_until,
            CircuitState::Probing if self.free_permit(i) => now,
            CircuitState::Probing => p
                .probes
                .iter()
                .filter_map(|x| x.1)
                .min()
                .unwrap_or(u64::MAX),
        };
        state_at.max(p.throttled_until.unwrap_or(now)).max(now)
    }

    pub(crate) fn pick(&mut self, t: u64, key: Option<u64>, tried: u64) -> Result<MTicket, u64> {
        let now = self.clock(t);
        self.catch_up();
        let mut first_ramping = None;
        for i in 0..self.provs.len() {
            if tried & (1 << i) != 0 || self.provs[i].throttled_until.is_some() {
                continue;
            }
            match self.provs[i].state {
                CircuitState::Healthy => return Ok(self.ticket(i, TicketKind::Request, 0)),
                CircuitState::Ramping => {
                    let share = u64::from(self.s.ramp[self.provs[i].stage].0);
                    let take = match key {
                        Some(h) => u64::from(key_position(h, i)) < share,
                        None => {
                            // Exactly `share` of the requests offered: a credit accumulator.
                            let p = &mut self.provs[i];
                            p.credit += share;
                            if p.credit >= PPM {
                                p.credit -= PPM;
                                true
                            } else {
                                false
                            }
                        }
                    };
                    if take {
                        return Ok(self.ticket(i, TicketKind::Request, 0));
                    }
                    first_ramping.get_or_insert(i);
                }
                CircuitState::Probing => {
                    if self.s.probe_mode == ProbeMode::Requests && self.free_permit(i) {
                        let seq = self.take_permit(i);
                        return Ok(self.ticket(i, TicketKind::Probe, seq));
                    }
                }
                CircuitState::Open => {}
            }
        }
        if let Some(i) = first_ramping {
            return Ok(self.ticket(i, TicketKind::Request, 0));
        }
        // Nobody can take it: the provider expected back soonest (first in priority on a tie).
        let soonest = |skip_tried: bool| {
            (0..self.provs.len())
                .filter(|&i| !(skip_tried && tried & (1 << i) != 0))
                .map(|i| (self.available_at(i), i))
                .min()
        };
        match soonest(true) {
            Some((at, i)) if self.s.all_down == AllDown::Soonest => {
                let mut t = self.ticket(i, TicketKind::Request, 0);
                t.degraded = true;
                t.retry_after_ms = Some(at - now);
                Ok(t)
            }
            Some((at, _)) => Err(at - now),
            None => Err(soonest(false).map_or(0, |(at, _)| at - now)),
        }
    }

    pub(crate) fn record(&mut self, t: &MTicket, o: &Outcome, at: u64) -> Recorded {
        let now = self.clock(at);
        self.catch_up();
        let i = t.provider;
        if i >= self.provs.len() {
            return Recorded::UnknownProvider;
        }
        if t.generation != self.provs[i].generation {
            return Recorded::Stale;
        }
        let mut probe = t.kind != TicketKind::Request;
        if t.kind == TicketKind::HealthCheck && self.provs[i].state == CircuitState::Healthy {
            // A check of an idle healthy provider: counted like a request.
            let accept_expired = self.sem.idle_check_accepted_after_expiry;
            match self.provs[i].check {
                Some((seq, until))
                    if seq == t.probe_seq && (until.is_none_or(|u| now < u) || accept_expired) =>
                {
                    self.provs[i].check = None;
                }
                _ => return Recorded::Stale,
            }
            probe = false;
        } else if probe {
            let Some(pos) = self.provs[i].probes.iter().position(|x| x.0 == t.probe_seq) else {
                return Recorded::Stale;
            };
            self.provs[i].probes.remove(pos);
        }
        self.apply(i, o, probe, now);
        Recorded::Accepted
    }

    pub(crate) fn observe(&mut self, i: usize, o: &Outcome, at: u64) -> Recorded {
        let now = self.clock(at);
        self.catch_up();
        if i >= self.provs.len() {
            return Recorded::UnknownProvider;
        }
        self.apply(i, o, false, now);
        Recorded::Accepted
    }

    /// When provider `i` next needs a health check, if it will: a free probe permit in the
    /// `health_checks` mode (now), or an idle healthy provider under `health_check_interval_ms`
    /// (once idle that long and no unexpired check is outstanding). Never while throttled.
    pub(crate) fn check_due_at(&self, i: usize) -> Option<u64> {
        let p = &self.provs[i];
        if p.throttled_until.is_some() {
            return None;
        }
        match p.state {
            CircuitState::Probing if self.s.probe_mode == ProbeMode::HealthChecks => {
                self.free_permit(i).then_some(self.now)
            }
            CircuitState::Healthy => {
                let idle = p.last_seen.saturating_add(self.s.health_check_interval_ms?);
                match p.check {
                    None => Some(idle),
                    Some((_, Some(until))) => Some(idle.max(until)),
                    // A check that cannot expire is never replaced.
                    Some((_, None)) => None,
                }
            }
            _ => None,
        }
    }

    pub(crate) fn poll_action(&mut self, at: u64) -> Option<MTicket> {
        let now = self.clock(at);
        self.catch_up();
        for i in 0..self.provs.len() {
            if self.check_due_at(i).is_none_or(|d| d > now) {
                continue;
            }
            if self.provs[i].state == CircuitState::Healthy {
                let p = &mut self.provs[i];
                let seq = p.check_seq;
                p.check_seq = seq.wrapping_add(1);
                p.check = Some((seq, expiry(now, self.s.probe_timeout_ms)));
                return Some(self.ticket(i, TicketKind::HealthCheck, seq));
            }
            let seq = self.take_permit(i);
            return Some(self.ticket(i, TicketKind::HealthCheck, seq));
        }
        None
    }

    pub(crate) fn handle_timeout(&mut self, at: u64) {
        self.clock(at);
        self.catch_up();
    }

    pub(crate) fn poll_timeout(&self) -> Option<u64> {
        let timers = (0..self.provs.len()).filter_map(|i| self.due(i));
        let checks =
            (0..self.provs.len()).filter_map(|i| self.check_due_at(i).map(|d| d.max(self.now)));
        // "`Some(u64::MAX)` when something is scheduled at the end of time".
        timers.chain(checks).min()
    }

    pub(crate) fn view(&self, i: usize) -> MView {
        let p = &self.provs[i];
        let cur = if self.sem.view_window_as_of_last_outcome {
            p.win_bucket
        } else {
            p.win_bucket.max(self.now / self.s.bucket_ms)
        };
        let share_ppm = if p.throttled_until.is_some() {
            0
        } else {
            match p.state {
                CircuitState::Healthy => PPM as u32,
                CircuitState::Ramping => self.s.ramp[p.stage].0,
                CircuitState::Open | CircuitState::Probing => 0,
            }
        };
        MView {
            state: p.state,
            share_ppm,
            throttled_until_ms: p.throttled_until,
            open_until_ms: (p.state == CircuitState::Open).then_some(p.open_until),
            ramp_stage: (p.state == CircuitState::Ramping).then_some(p.stage as u8),
            strikes: p.strikes,
            trips: p.trips,
            generation: p.generation,
            probes_in_flight: p.probes.len() as u32,
            // "in the current probing phase": none outside one.
            probe_successes: if p.state == CircuitState::Probing {
                p.probe_ok
            } else {
                0
            },
            consecutive_failures: p.consecutive,
            window: self.stats_at(i, cur),
            latency_ms: self.quantile_at(i, self.s.latency_quantile, cur),
            baseline_ms: (p.baseline_updates > 0)
                .then_some((p.baseline_milli / 1000).min(u64::from(u32::MAX)) as u32),
            next_transition_ms: self.due(i),
        }
    }
}
