//! Minimal reproductions of the known disagreements (each asserts the documented behaviour).

use crate::*;

// ------------------------------------------------------------------------------------------------
// Minimal reproductions of the known disagreements (each asserts the documented behaviour).
// ------------------------------------------------------------------------------------------------

pub(crate) fn small_policy() -> Policy {
    Policy {
        bucket_ms: 1_000,
        window_ms: 10_000,
        min_volume: 4,
        consecutive_failures: None,
        timeout_rate_threshold: None,
        slow_call_rate_threshold: None,
        latency_factor: None,
        open_jitter: 0.0,
        ..Policy::default()
    }
}

/// A throttled provider is still healthy, but a bucket boundary crossed by a recorded outcome
/// while it is throttled does not teach its baseline (the timer path does).
#[test]
fn repro_baseline_does_not_learn_while_throttled() {
    let p = Policy {
        bucket_ms: 1_000,
        window_ms: 2_000,
        min_volume: 1,
        latency_factor: Some(3.0),
        ..small_policy()
    };
    let mut r: Router<2, 12, 16> = Router::new(&p, &["a", "b"]).unwrap();
    let a = r.provider_at(0).unwrap();
    r.observe(a, Outcome::success(100), 0);
    r.observe(a, Outcome::rate_limited(Some(10_000)), 500);
    let v = r.view(a).unwrap();
    assert_eq!(v.state, CircuitState::Healthy);
    assert_eq!(v.throttled_until_ms, Some(10_500));
    // Crosses a bucket boundary with one latency sample in the window.
    r.observe(a, Outcome::success(100), 1_000);
    assert_eq!(
        r.view(a).unwrap().baseline_ms,
        Some(112),
        "healthy (throttling is not a state): the baseline learns the window's p50"
    );
}

/// A success ends a run of 429s, also when it carries a `Retry-After`.
#[test]
fn repro_success_with_retry_after_keeps_the_429_doubling() {
    let mut r: Router<2, 12, 16> = Router::new(&small_policy(), &["a", "b"]).unwrap();
    let a = r.provider_at(0).unwrap();
    r.observe(a, Outcome::rate_limited(None), 0);
    assert_eq!(r.view(a).unwrap().throttled_until_ms, Some(1_000));
    let ok_with_hint = Outcome {
        retry_after_ms: Some(0),
        ..Outcome::success(10)
    };
    r.observe(a, ok_with_hint, 2_000);
    r.observe(a, Outcome::rate_limited(None), 3_000);
    assert_eq!(
        r.view(a).unwrap().throttled_until_ms,
        Some(4_000),
        "after a success the throttle starts again from throttle_base_ms"
    );
}

/// An idle check not reported within `probe_timeout_ms` has expired: its ticket is stale.
#[test]
fn repro_expired_idle_check_is_still_accepted() {
    let p = Policy {
        health_check_interval_ms: Some(1_000),
        probe_timeout_ms: 500,
        ..small_policy()
    };
    let mut r: Router<2, 12, 16> = Router::new(&p, &["a", "b"]).unwrap();
    let Some(failover_core::Action::HealthCheck(check)) = r.poll_action(1_000) else {
        panic!("an idle check is due at 1 000");
    };
    assert_eq!(
        r.record(&check, Outcome::success(10), 2_000),
        Recorded::Stale
    );
}

/// The view's window figures are "as of the last input", but picks and timers do not move it.
#[test]
fn repro_view_window_is_as_of_the_last_outcome() {
    let mut r: Router<2, 12, 16> = Router::new(&small_policy(), &["a", "b"]).unwrap();
    let a = r.provider_at(0).unwrap();
    r.observe(a, Outcome::server_error(10), 0);
    // An hour later, after inputs that are not outcomes of `a`.
    r.handle_timeout(3_600_000);
    let _ = r.pick(3_600_000);
    assert_eq!(
        r.view(a).unwrap().window.failures,
        0,
        "the 10 s window as of the last input holds nothing"
    );
}

/// At `now = u64::MAX` every saturated deadline is due at once; nothing may expire at the instant
/// it was issued, or `poll_action` would hand out a new check on every call and the documented
/// loop "call until `None`" would never end (a bug found by this model, now fixed).
#[test]
fn repro_poll_action_never_ends_at_the_end_of_time() {
    // An idle healthy provider: its check's expiry saturates to u64::MAX, which is "due".
    let p = Policy {
        health_check_interval_ms: Some(1_000),
        ..small_policy()
    };
    let mut r: Router<2, 12, 16> = Router::new(&p, &["a", "b"]).unwrap();
    let mut checks = 0;
    while let Some(failover_core::Action::HealthCheck(_)) = r.poll_action(u64::MAX) {
        checks += 1;
        assert!(checks <= 2, "{checks} checks at u64::MAX and counting");
    }
    // A probing provider in the health_checks mode: its probe expires as soon as it is issued.
    let p = Policy {
        probe_mode: ProbeMode::HealthChecks,
        consecutive_failures: Some(1),
        ..small_policy()
    };
    let mut r: Router<2, 12, 16> = Router::new(&p, &["a", "b"]).unwrap();
    let a = r.provider_at(0).unwrap();
    r.observe(a, Outcome::server_error(1), u64::MAX - 10);
    r.handle_timeout(u64::MAX);
    assert_eq!(r.view(a).unwrap().state, CircuitState::Probing);
    let mut checks = 0;
    while let Some(failover_core::Action::HealthCheck(_)) = r.poll_action(u64::MAX) {
        checks += 1;
        assert!(checks <= 1, "{checks} probes at u64::MAX and counting");
    }
}
