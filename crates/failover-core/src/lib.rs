//! `failover-core`: a no_std, allocation-free decision engine for multi-provider LLM failover.
//!
//! It decides, per request, which provider to call; learns from every outcome (a rolling window
//! per provider) and from active health checks; opens a provider's circuit on the trigger that
//! fits the failure (a run of 5xx, an error rate, sustained timeouts, slow calls, latency far
//! above the provider's own baseline); treats rate limiting as a throttle, not an outage; and
//! brings a recovered provider back gradually (5 %, 25 %, 50 %, 100 % over 20 minutes by default)
//! with automatic rollback.
//!
//! It is a sans-IO state machine: no clock, no I/O, no heap, no `unsafe`. Every input carries the
//! caller's timestamp in milliseconds, so identical inputs give identical decisions.
//!
//! ```
//! use failover_core::{Outcome, Policy, Router};
//!
//! let mut router: Router<4, 120> = Router::new(&Policy::default(), &["primary", "secondary"])?;
//! let now = 1_000;
//! let ticket = router.pick(now).expect("a provider");
//! assert_eq!(router.name(ticket.provider), "primary");
//! // ... call the provider, measure the latency ...
//! router.record(&ticket, Outcome::success(850), now + 850);
//! while let Some(event) = router.poll_event() {
//!     // log event
//!     let _ = event;
//! }
//! if let Some(deadline) = router.poll_timeout() {
//!     // sleep until `deadline` or the next request, then:
//!     router.handle_timeout(deadline);
//! }
//! # Ok::<(), failover_core::ConfigError>(())
//! ```
//!
//! The pieces each live in a module named after them: `window` (the rolling window), `triggers`,
//! `circuit`, `ramp`, `provider` (one provider's state and transitions), `router` (the engine: its inputs, timers and event queue; `router/pick` routes between
//! providers), [`policy`], [`outcome`] and [`classify`](mod@classify) (the one
//! table that turns a provider's answer or error into an outcome kind), [`chunk`] (what one chunk of a stream is: content, terminal, an in-band error), [`headroom`] (the
//! providers' rate-limit headers: how much quota is left); the public data types in
//! `ticket`, `view` and `event`, and in `fields` the one description of their fields
//! ([`Fields`], [`Visitor`]) from which every binding builds its dicts, objects and JSON; and
//! [`fleet`], what many instances of one service share through a store (fleet mode: plain
//! fixed-size export and merge data and the sync state machine).
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::std_instead_of_core, clippy::alloc_instead_of_core)]

#[cfg(test)]
extern crate std;

pub mod chunk;
mod circuit;
pub mod classify;
mod compiled;
mod describe;
mod error;
mod event;
mod fields;
pub mod fleet;
pub mod headroom;
pub mod outcome;
mod pacing;
pub mod policy;
mod provider;
mod ramp;
mod request;
mod router;
mod ticket;
mod triggers;
mod view;
mod window;

pub use chunk::{ChunkFacts, ChunkKind, classify_chunk};
pub use classify::{Classification, Facts, Transport, classify, classify_status};
pub use describe::Description;
pub use event::{CircuitState, Event, EventKind, Manual, ProviderId, Reason, Trigger};
pub use fields::{Field, Fields, Visitor};
pub use headroom::{Dimension, Headroom, Quota};
pub use outcome::{Outcome, OutcomeKind, parse_retry_after};
pub use policy::{AllDown, ConfigError, Entries, Items, Policy, ProbeMode, RampStage, Value};
pub use ramp::{FULL_SHARE, hash_key, key_position};
pub use request::{
    Attempt, Excluded, Exclusion, ExclusionEntry, Finish, GiveUp, Report, Request, RequestError,
    RequestOptions, Step,
};
pub use router::Router;
pub use ticket::{Action, PickRequest, ProviderSet, Recorded, Ticket, TicketKind, Unavailable};
pub use view::ProviderView;
pub use window::WindowStats;

/// Bucket boundaries, in seconds, for histograms of attempt durations and times to first token
/// (the OpenTelemetry instruments `failover.attempt.duration` and `failover.time_to_first_token`
/// in every binding): the OpenTelemetry GenAI semantic conventions' advice for
/// `gen_ai.client.operation.duration`, doubling from 10 ms to about 82 s. The SDKs' default
/// boundaries (0, 5, 10, 25, … 10 000) suit milliseconds: in seconds nearly every LLM call would
/// fall in the first bucket.
pub const DURATION_BUCKETS_S: [f64; 14] = [
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];

/// The README's Rust examples, compiled and run as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;

/// The router the Python and Node bindings, the simulator and the scenario suite use: up to 16
/// providers, windows of up to 120 buckets (two minutes at the default one-second buckets), 64
/// queued events. About 200 KB; bindings keep it on the heap.
pub type DefaultRouter = Router<16, 120, 64>;
