//! What a fuzz target ran, printed when the process exits: how many inputs and how many engine
//! steps (operations fed to a router or a request), next to libFuzzer's own
//! `stat::number_of_executed_units` (printed with `-print_final_stats=1`), so that a run is
//! quoted both as inputs per second and as engine steps per second.
//!
//! The lines, on stderr at exit (a crash exits without them):
//!
//! ```text
//! stat::target_inputs: 12345
//! stat::target_steps: 6789012
//! ```

use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

static INPUTS: AtomicU64 = AtomicU64::new(0);
static STEPS: AtomicU64 = AtomicU64::new(0);
static REGISTER: Once = Once::new();

unsafe extern "C" {
    /// The C library's `atexit`: libFuzzer ends a run with `exit`, which runs these handlers.
    fn atexit(f: extern "C" fn()) -> core::ffi::c_int;
}

extern "C" fn report() {
    eprintln!(
        "stat::target_inputs: {}\nstat::target_steps: {}",
        INPUTS.load(Relaxed),
        STEPS.load(Relaxed)
    );
}

/// Counts one input of `steps` engine steps (and, on the first call, arranges the report at
/// exit).
pub fn add(steps: usize) {
    REGISTER.call_once(|| {
        // SAFETY: registers a handler that takes no arguments and only reads two atomics and
        // writes to stderr; `atexit` itself has no preconditions.
        unsafe {
            atexit(report);
        }
    });
    INPUTS.fetch_add(1, Relaxed);
    STEPS.fetch_add(steps as u64, Relaxed);
}

/// Inputs and steps counted so far.
#[must_use]
pub fn totals() -> (u64, u64) {
    (INPUTS.load(Relaxed), STEPS.load(Relaxed))
}
