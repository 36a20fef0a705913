//! Benchmarks of failover-core against the `failsafe` and `recloser` circuit breakers; see
//! `benches/peers.rs`. The crate has no code of its own: run
//! `cargo bench -p failover-peers -- --warm-up-time 1 --measurement-time 2`.
