//! The data a pick hands out and a record hands back: tickets, provider sets, the answers of
//! `pick` and `record`, and the actions `poll_action` asks for.

use crate::event::ProviderId;

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
    /// An active health check asked for by [`crate::Router::poll_action`] (it holds a probe permit).
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

/// A decision: which provider to call. Hand it back to [`crate::Router::record`] with the outcome.
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

/// What [`crate::Router::record`] did with an outcome.
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

/// Something the application should do; see [`crate::Router::poll_action`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Send a health check to `ticket.provider` and report its outcome with [`crate::Router::record`].
    HealthCheck(Ticket),
}

#[cfg(test)]
mod tests {
    use super::ProviderSet;
    use crate::event::ProviderId;

    /// A provider set as the bindings and a request's `tried` use it: empty at first, holding
    /// what was inserted and nothing else, up to index 63, and nothing past it (an index of 64
    /// or more is never in it, rather than a shift out of range).
    #[test]
    fn a_provider_set_holds_what_was_inserted_and_nothing_past_63() {
        let mut s = ProviderSet::new();
        assert!(s.is_empty());
        assert_eq!((s.len(), s.bits()), (0, 0));
        s.insert(ProviderId(0));
        s.insert(ProviderId(63));
        assert!(!s.is_empty());
        assert_eq!((s.len(), s.bits()), (2, 1 | 1 << 63));
        assert!(s.contains(ProviderId(0)) && s.contains(ProviderId(63)));
        assert!(!s.contains(ProviderId(1)));
        for (index, held) in [(0, true), (1, false), (62, false), (63, true)] {
            assert_eq!(s.contains_index(index), held, "{index}");
        }
        for index in [64, 65, 127, usize::MAX] {
            assert!(!s.contains_index(index), "{index}");
            assert!(
                !ProviderSet::from_bits(u64::MAX).contains_index(index),
                "{index}"
            );
        }
        assert_eq!(ProviderSet::from_bits(s.bits()), s);
        assert_eq!(ProviderSet::default(), ProviderSet::new());
    }
}
