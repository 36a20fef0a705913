//! An attempt's report says why the providers ahead of it were passed over (the OpenTelemetry
//! span attribute `failover.excluded` copies it): each reason the router's choice skips for, as
//! the router saw it when the attempt started.

use failover_core::{
    DefaultRouter, Excluded, Exclusion, Outcome, Policy, Request, RequestOptions, Step,
};

fn router(names: &[&str]) -> DefaultRouter {
    let policy = Policy {
        consecutive_failures: Some(1),
        open_jitter: 0.0,
        ..Policy::default()
    };
    DefaultRouter::new(&policy, names).unwrap()
}

/// Starts a request at `now` and returns its first attempt's provider name and, once the
/// attempt succeeded, its report's exclusions as `name=reason` entries.
fn one_attempt(r: &mut DefaultRouter, now: u64) -> (String, Vec<String>) {
    let mut q = Request::new(r, &RequestOptions::default(), now);
    let Step::Attempt(a) = q.poll(r, now) else {
        panic!("no attempt")
    };
    let name = r.name(a.ticket.provider).to_string();
    q.handle_outcome(r, Outcome::success(10), now + 10).unwrap();
    (name, entries(r, &q.last_report().0.unwrap().excluded))
}

fn entries(r: &DefaultRouter, x: &Excluded) -> Vec<String> {
    let names: Vec<&str> = r.views().map(|v| v.name).collect();
    let all: Vec<String> = x.entries(&names).map(|e| e.to_string()).collect();
    // The same, one by one.
    let each: Vec<String> = x
        .iter()
        .map(|(id, _)| x.entry(id, r.name(id)).unwrap().to_string())
        .collect();
    assert_eq!(all, each);
    assert_eq!(x.is_empty(), all.is_empty(), "is_empty says so");
    assert_eq!(Excluded::from_planes(x.planes()), *x, "through the planes");
    all
}

#[test]
fn every_reason_the_choice_skips_for_is_reported() {
    let mut r = router(&["open", "isolated", "throttled", "paced", "last"]);
    let id = |r: &DefaultRouter, n: &str| r.provider(n).unwrap();
    let (o, t) = (id(&r, "open"), id(&r, "throttled"));
    r.observe(o, Outcome::server_error(5), 0);
    r.observe(t, Outcome::rate_limited(Some(30_000)), 0);
    assert!(r.isolate(id(&r, "isolated"), 0));
    // No requests left at "paced" (OpenAI's headers): paced at zero headroom.
    let mut h = failover_core::Headroom::default();
    h.header("x-ratelimit-limit-requests", "100", None);
    h.header("x-ratelimit-remaining-requests", "0", None);
    h.header("x-ratelimit-reset-requests", "60s", None);
    r.observe_headroom(id(&r, "paced"), &h, 0);
    let (took, why) = one_attempt(&mut r, 100);
    assert_eq!(took, "last");
    assert_eq!(
        why,
        [
            "open=open",
            "isolated=isolated",
            "throttled=throttled",
            "paced=paced"
        ]
    );
}

#[test]
fn the_first_provider_taking_it_excludes_nobody_and_a_retry_names_what_it_tried() {
    let mut r = router(&["a", "b"]);
    assert_eq!(one_attempt(&mut r, 0), ("a".to_string(), vec![]));
    // a fails (and opens); the request's next attempt goes to b, past a, which it tried.
    let mut q = Request::new(&r, &RequestOptions::default(), 100);
    let Step::Attempt(_) = q.poll(&mut r, 100) else {
        panic!()
    };
    q.handle_outcome(&mut r, Outcome::server_error(5), 105)
        .unwrap();
    let Step::Attempt(a) = q.poll(&mut r, 105) else {
        panic!()
    };
    assert_eq!(r.name(a.ticket.provider), "b");
    q.handle_outcome(&mut r, Outcome::success(5), 110).unwrap();
    let rep = q.last_report().0.unwrap();
    assert_eq!(
        rep.excluded.get(r.provider("a").unwrap()),
        Some(Exclusion::Tried)
    );
    assert_eq!(entries(&r, &rep.excluded), ["a=tried"]);
    // A new request passes a over because it is open now.
    assert_eq!(
        one_attempt(&mut r, 200),
        ("b".to_string(), vec!["a=open".to_string()])
    );
}
