//! A bare no_std staticlib that runs the engine, so the build links everything the core uses.
#![no_std]
// (`no_mangle` counts as unsafe, so this check crate cannot forbid it; the core does.)

use failover_core::fleet::{Export, Fleet, FleetConfig, ProviderSnapshot, Snapshot};
use failover_core::{Outcome, Policy, Router};

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}

/// Exercises pick, record, timers and events so none of it is optimised away.
#[unsafe(no_mangle)]
pub extern "C" fn failover_nostd_check(seed: u64) -> u64 {
    let Ok(mut r) = Router::<4, 60, 16>::new(&Policy::default(), &["a", "b", "c"]) else {
        return 0;
    };
    let mut acc = 0u64;
    for i in 0..1000u64 {
        let now = seed.wrapping_add(i * 100);
        if let Ok(t) = r.pick(now) {
            let o = if i % 7 == 0 {
                Outcome::server_error(5)
            } else {
                Outcome::success(300)
            };
            r.record(&t, o, now + 5);
            acc = acc.wrapping_add(t.provider.index() as u64);
        }
        r.handle_timeout(now);
        while let Some(e) = r.poll_event() {
            acc = acc.wrapping_add(e.at_ms);
        }
    }
    acc
}

/// Runs fleet mode's export and merge (a snapshot that echoes the export back as the fleet's sums),
/// so the build links them too.
#[unsafe(no_mangle)]
pub extern "C" fn failover_nostd_fleet_check(seed: u64) -> u64 {
    let Ok(mut r) = Router::<4, 60, 16>::new(&Policy::default(), &["a", "b", "c"]) else {
        return 0;
    };
    let Ok(mut f) = Fleet::<4, 60>::new(FleetConfig::default(), 1, &r) else {
        return 0;
    };
    let mut export = Export::<4>::new();
    let mut snap = Snapshot::<4>::new();
    let mut acc = 0u64;
    for i in 0..1000u64 {
        let now = seed.wrapping_add(i * 100);
        if let Ok(t) = r.pick(now) {
            let o = if i % 5 == 0 {
                Outcome::server_error(5)
            } else {
                Outcome::success(300)
            };
            r.record(&t, o, now + 5);
        }
        acc = acc.wrapping_add(f.watch(&r).unwrap_or(0));
        if let Some(round) = f.poll_transmit(&mut r, now, &mut export) {
            snap.live_instances = 2;
            snap.len = export.len;
            for (ps, pe) in snap.providers.iter_mut().zip(export.providers.iter()) {
                *ps = ProviderSnapshot::EMPTY;
                for d in pe.deltas() {
                    ps.push_sum(*d);
                }
                if let Some(reg) = pe.register {
                    ps.register = ps.register.join(reg);
                }
            }
            if i % 97 == 0 {
                f.handle_failure(&mut r, round, now);
            } else {
                f.handle_snapshot(&mut r, round, &snap, now);
            }
            acc = acc.wrapping_add(round);
        }
        while let Some(e) = r.poll_event() {
            acc = acc.wrapping_add(e.at_ms);
        }
        while f.poll_event().is_some() {
            acc = acc.wrapping_add(1);
        }
    }
    acc
}
