//! The open period's jitter, pinned to exact values: a golden table of jittered open durations per
//! (seed, provider, trip number).
//!
//! The other tests only check that a jittered period stays within its band and is deterministic,
//! so a weaker hash mix (say `|` for `^` between the seed, the provider and the trip count) would
//! go unnoticed, and so would any change to the durations that instances of different languages or
//! versions compute from the same seed. The table below was computed once, independently of the
//! core, from the documented rule (`policy.rs`, `open_jitter`) as implemented in
//! `Circuit::open_duration`:
//!
//! ```text
//! r      = splitmix64(seed ^ provider × 0xA24BAED4963EE407 ^ trips × 0x9FB21C651E98DF25) mod (2j + 1)
//! factor = 1 000 000 − j + r                      (ppm; j = open_jitter in ppm)
//! open   = base × factor / 1 000 000, clamped to [1, open_max_ms]
//! ```
//!
//! (wrapping u64 products; `trips` counts this trip, `base` is the ladder's step for the strike),
//! by a separate implementation (Python integers masked to 64 bits), then checked against the core:
//! both agree. The first table has a base of 1 000 000 ms and a multiplier of 1, so the open
//! duration in ms *is* the factor in ppm and each entry shows the hash's draw whole; the second is
//! the default policy (jitter 0.1, 30 s doubling), the durations users see.
//! Any change to the mix, the modulus or the factor fails this test; a deliberate change of the
//! jitter must come with a new table (and a note in the changelog: fleets mixing versions would
//! no longer share their durations).

use failover_core::{EventKind, Outcome, PickRequest, Policy, ProviderSet, Router, TicketKind};

type R = Router<4, 120, 64>;

const NAMES: [&str; 4] = ["p0", "p1", "p2", "p3"];

/// Jitter 0.5 (factor in [0.5, 1.5]) on a constant ladder of 1 000 000 ms (multiplier 1) whose cap
/// is out of the jitter's reach: the open duration in ms is the jitter factor in ppm.
fn wide(seed: u64) -> Policy {
    Policy {
        open_jitter: 0.5,
        open_base_ms: 1_000_000,
        open_multiplier: 1.0,
        open_max_ms: 2_000_000,
        consecutive_failures: Some(1),
        seed,
        ..Policy::default()
    }
}

/// The default policy (jitter 0.1, open 30 s doubling up to 10 min), opened by one failure.
fn default_jitter(seed: u64) -> Policy {
    Policy {
        consecutive_failures: Some(1),
        seed,
        ..Policy::default()
    }
}

/// The open durations of provider `p`'s first four trips under `policy`, through the public API:
/// a failure opens the circuit; at its end the circuit probes, and a failed probe opens it again
/// (the next trip).
fn durations(policy: &Policy, p: usize) -> [u64; 4] {
    let mut r = R::new(policy, &NAMES).unwrap();
    let id = r.provider(NAMES[p]).unwrap();
    let mut now = 1_000;
    let mut out = [0; 4];
    for (trip, slot) in (1..).zip(out.iter_mut()) {
        if trip == 1 {
            r.observe(id, Outcome::server_error(10), now);
        } else {
            // Every other provider counts as tried, so the pick is the probe of this one.
            let req = PickRequest {
                key: None,
                tried: ProviderSet::from_bits(0b1111 & !(1u64 << p)),
            };
            let t = r.pick_with(now, &req).expect("a probe");
            assert_eq!((t.provider, t.kind), (id, TicketKind::Probe));
            r.record(&t, Outcome::server_error(10), now);
        }
        let mut until = None;
        while let Some(e) = r.poll_event() {
            if let EventKind::Opened { until_ms, .. } = e.kind {
                assert_eq!(e.provider, id);
                assert!(until.is_none(), "one open per trip");
                until = Some(until_ms);
            }
        }
        let until = until.unwrap_or_else(|| panic!("trip {trip} of p{p} opened nothing"));
        assert_eq!(r.view(id).unwrap().trips, trip);
        *slot = until - now;
        // The open period ends: the circuit probes, and a failed probe is the next trip.
        r.handle_timeout(until);
        now = until;
    }
    out
}

/// (seed, provider, open durations of trips 1 to 4 in ms) under [`wide`].
const WIDE: [(u64, usize, [u64; 4]); 16] = [
    (0, 0, [730_414, 878_157, 985_401, 1_471_900]),
    (0, 1, [902_740, 1_306_855, 1_229_765, 996_465]),
    (0, 2, [801_690, 738_560, 1_169_289, 1_432_422]),
    (0, 3, [1_201_297, 1_305_648, 677_700, 543_858]),
    (1, 0, [1_347_528, 829_686, 562_431, 1_277_336]),
    (1, 1, [614_173, 1_364_235, 1_111_692, 1_303_660]),
    (1, 2, [945_732, 700_668, 667_381, 699_698]),
    (1, 3, [565_721, 748_087, 801_256, 1_389_410]),
    (
        0x5EED_F00D_CAFE_BEEF,
        0,
        [579_963, 1_427_451, 1_314_427, 1_273_988],
    ),
    (
        0x5EED_F00D_CAFE_BEEF,
        1,
        [998_307, 881_259, 1_036_272, 956_886],
    ),
    (
        0x5EED_F00D_CAFE_BEEF,
        2,
        [1_080_282, 770_132, 636_381, 520_097],
    ),
    (
        0x5EED_F00D_CAFE_BEEF,
        3,
        [1_060_093, 1_055_586, 551_734, 581_075],
    ),
    (u64::MAX, 0, [1_454_659, 1_145_350, 1_038_284, 612_268]),
    (u64::MAX, 1, [1_364_587, 571_098, 1_215_713, 1_132_864]),
    (u64::MAX, 2, [926_109, 670_113, 1_486_391, 852_556]),
    (u64::MAX, 3, [1_306_215, 627_824, 1_419_184, 858_186]),
];

/// (seed, provider, open durations of trips 1 to 4 in ms) under [`default_jitter`]: around 30 s,
/// 60 s, 120 s and 240 s, each within 10 %.
const DEFAULT: [(u64, usize, [u64; 4]); 8] = [
    (0, 0, [29_811, 63_681, 121_312, 240_908]),
    (0, 1, [32_428, 57_120, 124_642, 255_631]),
    (0, 2, [30_472, 61_213, 117_934, 220_647]),
    (0, 3, [30_810, 65_284, 114_362, 260_848]),
    (42, 0, [27_687, 58_763, 124_459, 242_053]),
    (42, 1, [27_380, 55_889, 128_581, 255_657]),
    (42, 2, [32_356, 64_275, 117_116, 248_007]),
    (42, 3, [29_721, 55_480, 130_659, 221_880]),
];

#[test]
fn jittered_open_durations_match_the_golden_table() {
    for (seed, p, want) in WIDE {
        assert_eq!(
            durations(&wide(seed), p,),
            want,
            "seed {seed:#x}, provider {p}"
        );
    }
}

#[test]
fn default_policy_open_durations_match_the_golden_table() {
    for (seed, p, want) in DEFAULT {
        assert_eq!(
            durations(&default_jitter(seed), p),
            want,
            "seed {seed:#x}, provider {p}"
        );
    }
}
