//! The request engine's promises under random inputs: `failover_testkit::request::run` decodes
//! a byte string into requests, outcomes, stream inputs, observations and clock moves, and checks
//! every promise after every operation (the `request` fuzz target runs the same driver).

use failover_testkit::request::run;
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("FAILOVER_REQUEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn request_promises_hold(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Err(v) = run(&data).map(|_| ()) {
            return Err(TestCaseError::fail(v.0));
        }
    }
}

/// The driver reaches every kind of step (a driver that never waits or never streams would
/// check nothing about them): over a fixed set of random inputs, every step kind, every finish
/// and every give-up reason is seen, and every promise holds.
#[test]
fn the_driver_reaches_every_rule() {
    use failover_testkit::Rng;
    let mut rng = Rng(0x5EED_1234_5678_9ABC);
    let mut total = failover_testkit::request::Seen::default();
    for case in 0..2_000 {
        let data: Vec<u8> = (0..400).map(|_| rng.next() as u8).collect();
        let seen = run(&data).unwrap_or_else(|v| panic!("case {case}: {v}"));
        total.attempts += seen.attempts;
        total.probes += seen.probes;
        total.streamed += seen.streamed;
        total.waits += seen.waits;
        total.refused += seen.refused;
        for i in 0..4 {
            total.finishes[i] += seen.finishes[i];
            total.give_ups[i] += seen.give_ups[i];
        }
    }
    println!("{total:?}");
    assert!(
        total.attempts > 0 && total.probes > 0 && total.streamed > 0,
        "{total:?}"
    );
    assert!(total.waits > 0 && total.refused > 0, "{total:?}");
    assert!(total.finishes.iter().all(|&n| n > 0), "{total:?}");
    assert!(total.give_ups.iter().all(|&n| n > 0), "{total:?}");
}
