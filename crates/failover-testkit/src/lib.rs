//! What failover-core's tests, benchmarks and fuzz targets share, so that each rule is written
//! once:
//!
//! - [`check`]: the engine's documented promises as checks over a router's outputs and views
//!   (picks, health checks, views, events, the run loop), used alike by `tests/invariants` and
//!   the `events` fuzz target;
//! - [`ids`], [`tried_set`], [`NAMES`]: provider ids a router will not hand out (for forged
//!   tickets and unknown providers), and fixed provider names;
//! - [`Record`]: which entry point records an outcome (`record` with its fast path, or
//!   `record_general`), for the tests that compare the two;
//! - [`Rng`]: a tiny deterministic generator that does not allocate (benches, `no_alloc`);
//! - [`alloc`]: the counting global allocator of the tests that prove the engine never allocates;
//! - [`request`]: a byte-driven run of the request engine with its promises checked after every
//!   operation (`tests/request.rs` and the `request` fuzz target);
//! - [`headers`]: one answer's rate-limit headers from a few numbers, for the drivers of pacing;
//! - [`fleet`]: a model of the fleet's store (what Redis does with a round), for fleet tests;
//! - [`stats`]: a fuzz target's count of inputs and engine steps, printed at exit;
//! - [`bench`]: the benches' fake clock, and reading back the medians criterion wrote;
//! - with the `proptest` feature, [`time`]'s strategies and [`cases`].
//!
//! Not published, no semver promise: it follows failover-core's `testing` feature.

pub mod alloc;
pub mod bench;
pub mod check;
pub mod fleet;
pub mod headers;
mod ids;
mod record;
pub mod request;
mod rng;
pub mod stats;
pub mod time;

#[cfg(feature = "proptest")]
pub mod cases;

pub use check::{Check, Violation};
pub use ids::{NAMES, ids, tried_set};
pub use record::{Record, same_transcripts};
pub use rng::Rng;
