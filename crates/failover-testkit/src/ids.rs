use failover_core::{Policy, ProviderId, ProviderSet, Router};

/// Sixty-four fixed provider names, `p00` to `p63`.
pub const NAMES: [&str; 64] = [
    "p00", "p01", "p02", "p03", "p04", "p05", "p06", "p07", "p08", "p09", "p10", "p11", "p12",
    "p13", "p14", "p15", "p16", "p17", "p18", "p19", "p20", "p21", "p22", "p23", "p24", "p25",
    "p26", "p27", "p28", "p29", "p30", "p31", "p32", "p33", "p34", "p35", "p36", "p37", "p38",
    "p39", "p40", "p41", "p42", "p43", "p44", "p45", "p46", "p47", "p48", "p49", "p50", "p51",
    "p52", "p53", "p54", "p55", "p56", "p57", "p58", "p59", "p60", "p61", "p62", "p63",
];

/// Ids 0..8, for forged tickets and unknown providers (a router has no public id constructor):
/// the ids of a router of eight providers.
pub fn ids() -> Vec<ProviderId> {
    let p = Policy {
        bucket_ms: 1_000,
        window_ms: 1_000,
        ..Policy::default()
    };
    let r = Router::<8, 1, 1>::new(&p, &["a", "b", "c", "d", "e", "f", "g", "h"]).unwrap();
    (0..8).map(|i| r.provider_at(i).unwrap()).collect()
}

/// The set of the `ids` whose bit is set in `tried` (bit i for `ids[i]`).
pub fn tried_set(ids: &[ProviderId], tried: u64) -> ProviderSet {
    let mut set = ProviderSet::new();
    for (i, id) in ids.iter().enumerate() {
        if tried & (1 << i) != 0 {
            set.insert(*id);
        }
    }
    set
}
