//! A bare no_std staticlib that runs the engine, so the build links everything the core uses.
#![no_std]
// (`no_mangle` counts as unsafe, so this check crate cannot forbid it; the core does.)

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
            let o = if i % 7 == 0 { Outcome::server_error(5) } else { Outcome::success(300) };
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
