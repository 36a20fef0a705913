//! Pacing: a provider whose rate-limit headers say its quota is running out takes a smaller share
//! of the traffic *before* it answers 429, and none at all once the quota is gone, until the
//! quota resets.
//!
//! The input is one answer's [`Headroom`] (fed with [`crate::Router::observe_headroom`]). The
//! rules, and why:
//!
//! 1. **Headroom** is the smallest `remaining / limit` over the dimensions the provider reports
//!    ([`Headroom::headroom_ppm`]): a provider runs out of whichever is scarcest. Headers with no
//!    usable figure (none sent, Azure's remaining-only headers, malformed values) change nothing:
//!    they are not a fresh hint.
//! 2. **At or above the low watermark** (`pace_watermark`, default 10 %) the provider is not paced.
//!    A fresh header at or above it ends pacing at once.
//! 3. **Below it** the provider's share is multiplied by `headroom / watermark`, on top of any
//!    ramp share: at 5 % headroom with a 10 % watermark a healthy provider takes half of the
//!    requests offered to it, a provider ramping at 25 % takes 12.5 %. The split is exact and
//!    deterministic (a credit accumulator, as for the ramp; with a key, the keys below the share).
//!    What it does not take spills to the next provider; if no provider takes the request, the
//!    first paced (or ramping) one does: pacing limits traffic only when there is somewhere else
//!    to send it.
//! 4. **At zero** the provider takes no new traffic at all until the hint expires, as if
//!    throttled (it is the one exception to rule 3's last sentence: its quota is gone). A request
//!    that finds every provider unavailable is told when it comes back.
//! 5. **The hint expires** at the reset of the dimensions below the watermark (the latest of
//!    their known resets: the quota is back only when all of them are), or `pace_max_age_ms`
//!    (default 60 s) after the header, whichever is first: a hint nobody refreshed is no longer
//!    evidence, and a provider at zero gets no traffic that could refresh it. A reset already
//!    past (Anthropic's absolute time behind the wall clock) ends pacing at once.
//! 6. **Pacing is not a failure**: it never counts toward opening a circuit, never starts a
//!    ramp, never changes the circuit state or the throttle. When it ends the provider has its
//!    share back at once. A 429 still wins: a throttle benches the provider whatever the hint
//!    says, and a hint never ends a throttle.
//! 7. **Events**: [`EventKind::Paced`] when pacing starts (with the headroom, the share factor
//!    and the hint's expiry) and [`EventKind::Unpaced`] when it ends (with the fresh headroom that
//!    ended it, or none when the hint expired). Changes of the figures while paced are visible in
//!    the view ([`crate::ProviderView::paced_headroom_ppm`]), not as events: a busy provider
//!    answers many times a second.
//!
//! Cost: [`Pacing::observe`] is O(dimensions) = O(4); nothing here allocates.

use crate::event::{EventKind, Events, ProviderId};
use crate::headroom::{Dimension, Headroom};
use crate::policy::Compiled;
use crate::ramp::FULL_SHARE;

/// One provider's pacing hint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Pacing {
    /// Paced: the last fresh hint was below the watermark and has not expired.
    pub active: bool,
    /// The hint's headroom, ppm (below the watermark while active).
    pub headroom_ppm: u32,
    /// When the hint expires (rule 5).
    pub until: u64,
    /// Split accumulator of a healthy paced provider, as the ramp's.
    credit: u32,
}

impl Pacing {
    /// The factor applied to the provider's share, ppm: `headroom / watermark` while paced, full
    /// otherwise.
    #[inline]
    pub(crate) fn factor_ppm(&self, p: &Compiled) -> u32 {
        match p.pace_watermark_ppm {
            Some(w) if self.active => {
                // headroom < watermark ≤ 1e6: fits, and is below one million.
                (u64::from(self.headroom_ppm) * u64::from(FULL_SHARE) / u64::from(w)) as u32
            }
            _ => FULL_SHARE,
        }
    }

    /// `share_ppm` with the pacing factor applied.
    #[inline]
    pub(crate) fn scale(&self, p: &Compiled, share_ppm: u32) -> u32 {
        if !self.active {
            return share_ppm;
        }
        (u64::from(share_ppm) * u64::from(self.factor_ppm(p)) / u64::from(FULL_SHARE)) as u32
    }

    /// Paced at zero headroom: no new traffic until the hint expires (rule 4).
    #[inline]
    pub(crate) fn exhausted(&self) -> bool {
        self.active && self.headroom_ppm == 0
    }

    /// Offers one request to a healthy paced provider taking `share_ppm`. Returns whether it
    /// takes it.
    #[inline]
    pub(crate) fn offer(&mut self, share_ppm: u32) -> bool {
        self.credit += share_ppm;
        if self.credit >= FULL_SHARE {
            self.credit -= FULL_SHARE;
            true
        } else {
            false
        }
    }

    /// When the hint expires, while paced.
    #[inline]
    pub(crate) fn due(&self) -> Option<u64> {
        self.active.then_some(self.until)
    }

    /// Applies one answer's headers (rules 1, 2, 3 and 5). Returns whether the pacing changed in a
    /// way the deadline or the routing depends on.
    pub(crate) fn observe<const E: usize>(
        &mut self,
        p: &Compiled,
        id: ProviderId,
        h: &Headroom,
        now: u64,
        ev: &mut Events<E>,
    ) -> bool {
        let (Some(watermark), Some(headroom)) = (p.pace_watermark_ppm, h.headroom_ppm()) else {
            return false;
        };
        if headroom >= watermark {
            return self.end(id, Some(headroom), now, ev);
        }
        let reset = Dimension::ALL
            .into_iter()
            .filter(|&d| h.dimension_ppm(d).is_some_and(|x| x < watermark))
            .filter_map(|d| h.quota(d).reset_in_ms)
            .max();
        let age = reset.map_or(p.pace_max_age_ms, |r| r.min(p.pace_max_age_ms));
        if age == 0 {
            // The quota is already back.
            return self.end(id, None, now, ev);
        }
        let until = now.saturating_add(age);
        let started = !self.active;
        let changed = started || self.until != until || self.headroom_ppm != headroom;
        self.active = true;
        self.headroom_ppm = headroom;
        self.until = until;
        if started {
            self.credit = 0;
            ev.push(
                now,
                id,
                EventKind::Paced {
                    headroom_ppm: headroom,
                    share_ppm: self.factor_ppm(p),
                    until_ms: until,
                },
            );
        }
        changed
    }

    /// Ends pacing if it is active (`headroom`: the fresh figure that ended it, `None` when the
    /// hint expired). Returns whether it was active.
    fn end<const E: usize>(
        &mut self,
        id: ProviderId,
        headroom: Option<u32>,
        now: u64,
        ev: &mut Events<E>,
    ) -> bool {
        if !self.active {
            return false;
        }
        *self = Pacing::default();
        ev.push(
            now,
            id,
            EventKind::Unpaced {
                headroom_ppm: headroom,
            },
        );
        true
    }

    /// Expires the hint when its time has come (rule 5). Spurious calls are a harmless no-op.
    pub(crate) fn maintain<const E: usize>(
        &mut self,
        id: ProviderId,
        now: u64,
        ev: &mut Events<E>,
    ) {
        if self.active && now >= self.until {
            self.end(id, None, now, ev);
        }
    }

    /// Consistency of the fields; `None` when all hold.
    pub(crate) fn violation(&self, p: &Compiled) -> Option<&'static str> {
        if self.credit >= FULL_SHARE {
            return Some("pacing credit not below one request");
        }
        if self.active && p.pace_watermark_ppm.is_none_or(|w| self.headroom_ppm >= w) {
            return Some("paced at or above the watermark");
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::string::ToString;
    use std::vec::Vec;

    use crate::event::{CircuitState, EventKind};
    use crate::headroom::Headroom;
    use crate::outcome::{Outcome, OutcomeKind};
    use crate::policy::{ConfigError, Policy};
    use crate::router::Router;

    type R = Router<4, 120, 64>;

    fn router(policy: &Policy) -> R {
        R::new(policy, &["a", "b"]).unwrap()
    }

    /// OpenAI-style requests headers: `remaining` of `limit`, resetting in `reset`.
    fn hint(limit: u64, remaining: u64, reset: Option<&str>) -> Headroom {
        let mut h = Headroom::default();
        let (l, r) = (limit.to_string(), remaining.to_string());
        h.header("x-ratelimit-limit-requests", &l, None);
        h.header("x-ratelimit-remaining-requests", &r, None);
        if let Some(reset) = reset {
            h.header("x-ratelimit-reset-requests", reset, None);
        }
        h
    }

    fn kinds(r: &mut R) -> Vec<EventKind> {
        core::iter::from_fn(|| r.poll_event())
            .map(|e| e.kind)
            .collect()
    }

    /// Picks `n` times at `at` (recording a success each), returns how many went to "a".
    fn picks_of_a(r: &mut R, at: u64, n: usize) -> usize {
        let a = r.provider("a").unwrap();
        (0..n)
            .filter(|_| {
                let t = r.pick(at).unwrap();
                r.record(&t, Outcome::success(100), at);
                t.provider == a
            })
            .count()
    }

    #[test]
    fn below_the_watermark_the_share_is_scaled_and_a_fresh_header_ends_it() {
        let mut r = router(&Policy::default());
        let a = r.provider("a").unwrap();
        // 3 of 60 left: 5 % headroom, half the 10 % watermark.
        r.observe_headroom(a, &hint(60, 3, Some("30s")), 1_000);
        assert_eq!(
            kinds(&mut r),
            [EventKind::Paced {
                headroom_ppm: 50_000,
                share_ppm: 500_000,
                until_ms: 31_000
            }]
        );
        let v = r.view(a).unwrap();
        assert_eq!(
            (v.share_ppm, v.paced_headroom_ppm, v.paced_until_ms),
            (500_000, Some(50_000), Some(31_000))
        );
        assert_eq!(r.poll_timeout(), Some(31_000));
        assert_eq!(picks_of_a(&mut r, 2_000, 10), 5);
        // A fresh header at or above the watermark ends it at once.
        r.observe_headroom(a, &hint(60, 30, Some("1s")), 3_000);
        assert_eq!(
            kinds(&mut r),
            [EventKind::Unpaced {
                headroom_ppm: Some(500_000)
            }]
        );
        assert_eq!(picks_of_a(&mut r, 3_000, 10), 10);
        assert_eq!(r.poll_timeout(), None);
    }

    #[test]
    fn at_zero_no_new_traffic_until_the_reset() {
        let mut r = router(&Policy::default());
        let a = r.provider("a").unwrap();
        r.observe_headroom(a, &hint(60, 0, Some("12s")), 1_000);
        assert_eq!(
            kinds(&mut r),
            [EventKind::Paced {
                headroom_ppm: 0,
                share_ppm: 0,
                until_ms: 13_000
            }]
        );
        assert_eq!(r.view(a).unwrap().share_ppm, 0);
        assert_eq!(picks_of_a(&mut r, 5_000, 10), 0);
        // Alone, a request is told when "a" comes back.
        let mut tried = crate::ProviderSet::new();
        tried.insert(r.provider("b").unwrap());
        let req = crate::PickRequest {
            tried,
            ..Default::default()
        };
        assert_eq!(
            r.pick_with(5_000, &req)
                .map(|t| (t.degraded, t.retry_after_ms)),
            Ok((true, Some(8_000)))
        );
        r.handle_timeout(13_000);
        assert_eq!(kinds(&mut r), [EventKind::Unpaced { headroom_ppm: None }]);
        assert_eq!(picks_of_a(&mut r, 13_000, 4), 4);
    }

    #[test]
    fn a_hint_expires_after_its_max_age_and_the_earlier_reset_wins() {
        let p = Policy {
            pace_max_age_ms: 20_000,
            ..Policy::default()
        };
        let mut r = router(&p);
        let a = r.provider("a").unwrap();
        // Reset in 6 minutes: the max age ends it first.
        r.observe_headroom(a, &hint(60, 0, Some("6m0s")), 1_000);
        assert_eq!(r.view(a).unwrap().paced_until_ms, Some(21_000));
        // No reset at all: the max age.
        r.observe_headroom(a, &hint(60, 0, None), 2_000);
        assert_eq!(r.view(a).unwrap().paced_until_ms, Some(22_000));
        // A reset already past (0): the quota is back.
        r.observe_headroom(a, &hint(60, 0, Some("0s")), 3_000);
        assert_eq!(r.view(a).unwrap().paced_until_ms, None);
        r.observe_headroom(a, &hint(60, 0, Some("1m")), 4_000);
        let _ = kinds(&mut r);
        r.handle_timeout(23_999);
        assert!(kinds(&mut r).is_empty());
        r.handle_timeout(24_000);
        assert_eq!(kinds(&mut r), [EventKind::Unpaced { headroom_ppm: None }]);
    }

    #[test]
    fn headers_without_a_figure_change_nothing() {
        let mut r = router(&Policy::default());
        let a = r.provider("a").unwrap();
        r.observe_headroom(a, &hint(60, 0, Some("10s")), 1_000);
        let _ = kinds(&mut r);
        let mut azure = Headroom::default();
        azure.header("x-ratelimit-remaining-requests", "50", None);
        r.observe_headroom(a, &azure, 2_000);
        r.observe_headroom(a, &Headroom::default(), 2_000);
        assert!(kinds(&mut r).is_empty());
        assert_eq!(r.view(a).unwrap().paced_until_ms, Some(11_000));
    }

    #[test]
    fn a_429_wins_over_a_hint_and_pacing_never_trips() {
        let mut r = router(&Policy::default());
        let a = r.provider("a").unwrap();
        let t = r.pick(1_000).unwrap();
        let mut o = Outcome::new(OutcomeKind::RateLimited, 50);
        o.retry_after_ms = Some(20_000);
        r.record(&t, o, 1_000);
        // A header claiming plenty of room does not lift the throttle.
        r.observe_headroom(a, &hint(60, 59, Some("1s")), 1_000);
        assert_eq!(picks_of_a(&mut r, 2_000, 5), 0);
        assert_eq!(r.view(a).unwrap().throttled_until_ms, Some(21_000));
        // Hundreds of exhausted hints: no trip, no ramp, healthy.
        for t in 0..300 {
            r.observe_headroom(a, &hint(60, 0, Some("1s")), 30_000 + t * 100);
        }
        let v = r.view(a).unwrap();
        assert_eq!((v.state, v.trips, v.strikes), (CircuitState::Healthy, 0, 0));
        assert!(
            kinds(&mut r)
                .iter()
                .all(|k| !matches!(k, EventKind::Opened { .. } | EventKind::RampStage { .. }))
        );
    }

    #[test]
    fn pacing_multiplies_a_ramp_share() {
        let p = Policy {
            open_jitter: 0.0,
            consecutive_failures: Some(1),
            probe_successes: 1,
            ..Policy::default()
        };
        let mut r = router(&p);
        let a = r.provider("a").unwrap();
        let t = r.pick(0).unwrap();
        r.record(&t, Outcome::new(OutcomeKind::ServerError, 10), 0);
        let t = r.pick(30_000).unwrap();
        assert_eq!(t.provider, a);
        r.record(&t, Outcome::success(10), 30_000);
        assert_eq!(r.view(a).unwrap().state, CircuitState::Ramping);
        r.observe_headroom(a, &hint(100, 5, Some("50s")), 30_000);
        // 5 % ramp × 50 %: 2.5 %, one request in 40.
        assert_eq!(r.view(a).unwrap().share_ppm, 25_000);
        assert_eq!(picks_of_a(&mut r, 30_000, 80), 2);
    }

    #[test]
    fn no_watermark_never_paces_and_the_fields_are_validated() {
        let p = Policy {
            pace_watermark: None,
            ..Policy::default()
        };
        let mut r = router(&p);
        let a = r.provider("a").unwrap();
        r.observe_headroom(a, &hint(60, 0, Some("10s")), 1_000);
        assert!(kinds(&mut r).is_empty());
        assert_eq!(picks_of_a(&mut r, 1_000, 3), 3);
        for (w, ok) in [(0.0, false), (1.5, false), (f64::NAN, false), (1.0, true)] {
            let p = Policy {
                pace_watermark: Some(w),
                ..Policy::default()
            };
            assert_eq!(
                p.validate(120).is_ok(),
                ok,
                "pace_watermark {w}: {:?}",
                p.validate(120)
            );
        }
        let p = Policy {
            pace_max_age_ms: 0,
            ..Policy::default()
        };
        assert_eq!(
            p.validate(120),
            Err(ConfigError::ZeroDuration {
                field: "pace_max_age_ms"
            })
        );
        let mut p = Policy::default();
        p.set("pace_watermark", crate::Value::Float(0.0)).unwrap();
        assert_eq!(
            p.validate(120).unwrap_err().code(),
            "threshold_out_of_range"
        );
    }

    /// The consistency check fires on each broken state (none reachable through the router,
    /// whose runs the invariant suites check): a credit of a whole request, and pacing at or above
    /// the watermark or with no watermark at all; an idle hint without a watermark is fine.
    #[test]
    fn violation_names_each_broken_state() {
        use super::{FULL_SHARE, Pacing};
        let p = Policy::default().compile(120).unwrap();
        let w = p.pace_watermark_ppm.unwrap();
        let paced = |headroom_ppm| Pacing {
            active: true,
            headroom_ppm,
            until: 10,
            ..Pacing::default()
        };
        assert_eq!(Pacing::default().violation(&p), None);
        assert_eq!(paced(w - 1).violation(&p), None);
        let full = Pacing {
            credit: FULL_SHARE,
            ..Pacing::default()
        };
        assert_eq!(
            full.violation(&p),
            Some("pacing credit not below one request")
        );
        assert_eq!(
            paced(w).violation(&p),
            Some("paced at or above the watermark")
        );
        let never = Policy {
            pace_watermark: None,
            ..Policy::default()
        }
        .compile(120)
        .unwrap();
        assert_eq!(Pacing::default().violation(&never), None);
        assert_eq!(
            paced(0).violation(&never),
            Some("paced at or above the watermark")
        );
    }

    /// The hint lasts until the latest reset of the dimensions below the watermark: a dimension
    /// exactly at the watermark is not short, and its later reset does not count.
    #[test]
    fn only_dimensions_below_the_watermark_set_the_hints_end() {
        let mut r = router(&Policy::default());
        let a = r.provider("a").unwrap();
        // Requests at 5 % (below the 10 % watermark), resetting in 10 s; tokens at exactly 10 %,
        // resetting in 50 s.
        let mut h = hint(100, 5, Some("10s"));
        for (n, v) in [
            ("x-ratelimit-limit-tokens", "1000"),
            ("x-ratelimit-remaining-tokens", "100"),
            ("x-ratelimit-reset-tokens", "50s"),
        ] {
            assert!(h.header(n, v, None));
        }
        r.observe_headroom(a, &h, 1_000);
        assert_eq!(r.view(a).unwrap().paced_until_ms, Some(11_000));
        // Tokens just below it too: its reset is the later one.
        h.header("x-ratelimit-remaining-tokens", "99", None);
        r.observe_headroom(a, &h, 2_000);
        assert_eq!(r.view(a).unwrap().paced_until_ms, Some(52_000));
    }

    /// A fresh header at the same headroom with another reset moves the hint's expiry, and the
    /// router's deadline with it, sooner or later (the figures the routing reads are unchanged,
    /// but the time the hint ends is not): the hint then ends at the new time, not the old one.
    #[test]
    fn a_new_reset_at_the_same_headroom_moves_the_deadline() {
        let mut r = router(&Policy::default());
        let a = r.provider("a").unwrap();
        r.observe_headroom(a, &hint(60, 3, Some("30s")), 1_000);
        assert_eq!(r.poll_timeout(), Some(31_000));
        // The same 5 %, resetting sooner.
        r.observe_headroom(a, &hint(60, 3, Some("5s")), 2_000);
        assert_eq!(r.invariant_violation(), None);
        assert_eq!(r.poll_timeout(), Some(7_000));
        // And later again.
        r.observe_headroom(a, &hint(60, 3, Some("20s")), 3_000);
        assert_eq!(r.invariant_violation(), None);
        assert_eq!(r.poll_timeout(), Some(23_000));
        kinds(&mut r);
        r.handle_timeout(22_999);
        assert_eq!(kinds(&mut r), []);
        r.handle_timeout(23_000);
        assert_eq!(kinds(&mut r), [EventKind::Unpaced { headroom_ppm: None }]);
        assert_eq!(r.poll_timeout(), None);
    }
}
