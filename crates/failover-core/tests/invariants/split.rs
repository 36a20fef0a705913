//! The split check (a run of picks at unchanged shares is the credit split of the shares) and the
//! ramp check (a stage advances only after its dwell and its minimum sample).

use std::collections::BTreeMap;

use failover_core::{CircuitState, Event, EventKind, Outcome, OutcomeKind, Policy, Router};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// What a pick saw of the shares, for the split check.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Shares {
    /// (state, share, held back (throttled, or paced at zero headroom), probes in flight,
    /// paced) per provider.
    providers: Vec<(CircuitState, u32, bool, u32, bool)>,
}

pub(crate) fn shares<const P: usize, const B: usize, const E: usize>(
    r: &Router<P, B, E>,
) -> Shares {
    Shares {
        providers: r
            .views()
            .map(|v| {
                (
                    v.state,
                    v.share_ppm,
                    v.throttled_until_ms.is_some() || v.paced_headroom_ppm == Some(0),
                    v.probes_in_flight,
                    v.paced_headroom_ppm.is_some(),
                )
            })
            .collect(),
    }
}

/// Checks that `taken` (one flag per request offered to a ramping provider) is the credit split of
/// `share_ppm`: some starting credit c0 in [0, 1e6) gives, after k offers, floor((c0 + k·share) /
/// 1e6) requests taken, for every k.
pub(crate) fn is_credit_split(taken: &[bool], share_ppm: u32) -> bool {
    let (s, m) = (i128::from(share_ppm), 1_000_000i128);
    let (mut lo, mut hi) = (0i128, m);
    let mut count = 0i128;
    for (k, &t) in taken.iter().enumerate() {
        count += i128::from(t);
        let ks = (k as i128 + 1) * s;
        lo = lo.max(count * m - ks);
        hi = hi.min((count + 1) * m - ks);
    }
    lo < hi
}

/// Checks a run of unkeyed, untried picks made while no share changed: walking the providers in
/// priority order, each ramping or paced provider takes exactly its credit split of the requests
/// offered to it (its share, pacing factor included: never more), a provider held back (throttled,
/// or paced at zero headroom) none, and the first healthy provider not paced takes everything
/// left.
pub(crate) fn check_split(before: &Shares, picks: &[usize]) -> Result<(), TestCaseError> {
    if picks.is_empty() {
        return Ok(());
    }
    let available = |&(state, _, held, _, _): &(CircuitState, u32, bool, u32, bool)| {
        !held && state != CircuitState::Open
    };
    // Only runs with somewhere to spill to are checked (otherwise the first ramping provider
    // takes what nobody takes, on top of its split).
    let Some(healthy) = before
        .providers
        .iter()
        .position(|p| available(p) && p.0 == CircuitState::Healthy && !p.4)
    else {
        return Ok(());
    };
    let mut offered: Vec<usize> = picks.to_vec();
    for (i, p) in before.providers.iter().enumerate().take(healthy + 1) {
        if !available(p) || p.0 == CircuitState::Probing {
            prop_assert!(!offered.contains(&i), "provider {i} ({p:?}) took a request");
            continue;
        }
        if i == healthy {
            prop_assert!(
                offered.iter().all(|&x| x == i),
                "the first healthy provider {i} takes everything offered: {offered:?}"
            );
            break;
        }
        // Ramping, or healthy and paced.
        let taken: Vec<bool> = offered.iter().map(|&x| x == i).collect();
        prop_assert!(
            is_credit_split(&taken, p.1),
            "provider {i} at {} ppm took {} of {} offered: {taken:?}",
            p.1,
            taken.iter().filter(|t| **t).count(),
            taken.len()
        );
        offered.retain(|&x| x != i);
    }
    Ok(())
}

/// Tracks each ramping provider's stage: (stage, entered at, counted calls since).
pub(crate) struct Stages<'a> {
    pub(crate) p: &'a Policy,
    pub(crate) at: BTreeMap<usize, (u8, u64, u32)>,
}

impl Stages<'_> {
    pub(crate) fn count(&mut self, i: usize, o: &Outcome) {
        let counted = matches!(
            o.kind,
            OutcomeKind::Success
                | OutcomeKind::ServerError
                | OutcomeKind::ConnectionError
                | OutcomeKind::Timeout
        ) || (self.p.count_client_errors && o.kind == OutcomeKind::ClientError);
        if counted && let Some(s) = self.at.get_mut(&i) {
            s.2 += 1;
        }
    }

    /// A stage advances only after its dwell and its minimum sample.
    pub(crate) fn absorb(&mut self, events: &[Event]) -> Result<(), TestCaseError> {
        let p = self.p;
        for e in events {
            let i = e.provider.index();
            match e.kind {
                EventKind::RampStage { stage: k, .. } => {
                    if k > 0 {
                        let Some(&(prev, since, samples)) = self.at.get(&i) else {
                            prop_assert!(
                                false,
                                "stage {k} of provider {i} without stage {}",
                                k - 1
                            );
                            unreachable!()
                        };
                        prop_assert_eq!(prev + 1, k, "stages in order");
                        let dwell = p.ramp[usize::from(prev)].dwell_ms;
                        prop_assert!(
                            e.at_ms >= since.saturating_add(dwell),
                            "stage {prev} of provider {i} entered at {since} left at {} before its \
                             dwell {dwell}",
                            e.at_ms
                        );
                        prop_assert!(
                            samples >= p.ramp_min_samples,
                            "stage {prev} of provider {i} left after {samples} calls"
                        );
                    }
                    self.at.insert(i, (k, e.at_ms, 0));
                }
                EventKind::Recovered => {
                    if let Some((prev, since, samples)) = self.at.remove(&i) {
                        let last = p.ramp.len() - 1;
                        let dwell = p.ramp[usize::from(prev)].dwell_ms;
                        prop_assert!(usize::from(prev) == last || usize::from(prev) + 1 == last);
                        prop_assert!(e.at_ms >= since.saturating_add(dwell));
                        prop_assert!(samples >= p.ramp_min_samples);
                    } else {
                        // A one-stage ramp with no dwell: healthy as soon as probing succeeds.
                        prop_assert!(
                            p.ramp.len() == 1 && p.ramp[0].dwell_ms == 0,
                            "recovered without a ramp"
                        );
                    }
                }
                EventKind::Opened { .. } => {
                    self.at.remove(&i);
                }
                _ => {}
            }
        }
        Ok(())
    }
}
