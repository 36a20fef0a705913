//! What the providers answer: a fault model or a replayed trace.

use failover_core::Outcome;

/// The providers' behaviour, queried by every strategy alike.
pub trait World {
    /// Provider names, in priority order.
    fn providers(&self) -> &[String];

    /// What provider `p` answers to call `key` started at `at` (ms). The same `(p, key, at)`
    /// always gives the same answer, so strategies are compared on the same faults.
    fn call(&self, p: usize, key: u64, at: u64) -> Outcome;

    /// Fraction of provider `p`'s answers that are failures during `[from, to)`, if known.
    fn error_rate(&self, p: usize, from: u64, to: u64) -> Option<f64>;
}
