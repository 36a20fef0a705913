use failover_core::{Outcome, Recorded, Router, Ticket};

use crate::check::{Check, ensure};

/// Which entry point records outcomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record {
    /// `Router::record`, with its fast path for quiet successes.
    Fast,
    /// `Router::record_general`: every rule, for every outcome.
    General,
}

impl Record {
    /// Records `o` for `ticket` at `t` through this entry point.
    pub fn record<const P: usize, const B: usize, const E: usize>(
        self,
        r: &mut Router<P, B, E>,
        ticket: &Ticket,
        o: Outcome,
        t: u64,
    ) -> Recorded {
        match self {
            Record::Fast => r.record(ticket, o, t),
            Record::General => r.record_general(ticket, o, t),
        }
    }
}

/// Two transcripts of the same inputs are equal, line by line; the violation names the first line
/// that differs.
pub fn same_transcripts(a: &[String], b: &[String]) -> Check {
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        ensure!(x == y, "transcripts differ at line {i}: {x} vs {y}");
    }
    ensure!(
        a.len() == b.len(),
        "transcripts of {} and {} lines",
        a.len(),
        b.len()
    );
    Ok(())
}
