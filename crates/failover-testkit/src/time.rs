//! How a driver's clock moves before an input, in the property tests.

/// A step of the driver's clock.
#[derive(Clone, Copy, Debug)]
pub enum Dt {
    /// Forwards by a little.
    Fwd(u64),
    /// Not at all.
    Same,
    /// Backwards (the engine keeps its latest time).
    Back(u64),
    /// Forwards by a lot.
    Jump(u64),
    /// To `u64::MAX` minus this.
    NearMax(u64),
    /// To `u64::MAX`.
    Max,
}

/// The time after `dt` from `t`, saturating at both ends.
pub fn advance(t: u64, dt: Dt) -> u64 {
    match dt {
        Dt::Fwd(d) | Dt::Jump(d) => t.saturating_add(d),
        Dt::Same => t,
        Dt::Back(d) => t.saturating_sub(d),
        Dt::NearMax(d) => u64::MAX - d,
        Dt::Max => u64::MAX,
    }
}

/// Mostly small steps forwards, sometimes none, backwards or a jump, and rarely the end of time
/// (rare enough that most cases never reach it: it is sticky, time never goes back inside the
/// engine). The steps go up to `fwd`, `back` and `jump` ms.
#[cfg(feature = "proptest")]
pub fn dt(fwd: u64, back: u64, jump: u64) -> impl proptest::strategy::Strategy<Value = Dt> {
    use proptest::prelude::*;
    prop_oneof![
        1_200 => (0..=fwd).prop_map(Dt::Fwd),
        100 => Just(Dt::Same),
        100 => (1..=back).prop_map(Dt::Back),
        60 => (1_000..=jump).prop_map(Dt::Jump),
        3 => (0..=5_000u64).prop_map(Dt::NearMax),
        1 => Just(Dt::Max),
    ]
}
