//! A counting global allocator, for the tests that prove the engine never allocates
//! (`tests/no_alloc.rs`, `tests/fleet_no_alloc.rs`, `tests/fleet_wire.rs`): each installs [`Counting`] as its binary's
//! global allocator, checks that it counts ([`assert_counting`]), then [`arm`]s it around its
//! workload and asserts the count [`Armed::finish`] returns is zero.
//!
//! Only allocations on the armed thread are counted (the flag is thread-local), so the test
//! harness's own threads do not disturb a count. Keep one test per file all the same: a binary has
//! one global allocator and one counter.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// The system allocator, counting the allocations (alloc, alloc_zeroed, realloc) made on an armed
/// thread. Install it with `#[global_allocator] static GLOBAL: Counting = Counting;`.
pub struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
}

fn note() {
    if ARMED.try_with(Cell::get).unwrap_or(false) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; counting touches only an
// atomic and a const-initialised thread-local, neither of which allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: the caller's contract is passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Counting in progress on this thread, from [`arm`] to [`Armed::finish`] (or its drop).
#[must_use = "the count is read with `finish`"]
pub struct Armed(());

/// Resets the count and starts counting this thread's allocations.
pub fn arm() -> Armed {
    ALLOCATIONS.store(0, Ordering::Relaxed);
    ARMED.with(|a| a.set(true));
    Armed(())
}

impl Armed {
    /// Stops counting and returns how many allocations this thread made since [`arm`].
    pub fn finish(self) -> u64 {
        ARMED.with(|a| a.set(false));
        ALLOCATIONS.load(Ordering::Relaxed)
    }
}

impl Drop for Armed {
    fn drop(&mut self) {
        ARMED.with(|a| a.set(false));
    }
}

/// Panics unless [`Counting`] is this binary's global allocator and counts: one allocation while
/// armed must be seen (without it a test that forgot `#[global_allocator]` would pass on a count
/// that never moves).
pub fn assert_counting() {
    let armed = arm();
    drop(std::hint::black_box(Box::new(7u64)));
    assert_eq!(
        armed.finish(),
        1,
        "the counting allocator is not installed, or missed an allocation"
    );
}
