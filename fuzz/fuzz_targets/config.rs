//! Arbitrary bytes → a policy, through the Rust fields and through `Policy::set` /
//! `push_ramp_stage` with arbitrary names and values (absurd ones on purpose), then
//! `Router::new` with arbitrary provider names. It must accept or refuse, never panic; a
//! refusal must be the one validation gives; an accepted absurd policy must then survive a short
//! burst of traffic with its invariants intact (`Router::invariant_violation` and the views,
//! O(P · B), after every step that changed a circuit, every 8th step and the last: see
//! `failover_testkit::check::Sample`; `FAILOVER_FULL_CHECK_EVERY=1` checks every step).

#![no_main]

use std::fmt::Write as _;

use failover_core::policy::{FIELDS, MAX_NAME_LEN};
use failover_core::{
    AllDown, ConfigError, Outcome, OutcomeKind, PickRequest, Policy, ProbeMode, ProviderSet,
    RampStage, Router, Value,
};
use failover_testkit::check::Sample;
use failover_testkit::stats;
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut steps = 0;
    let _ = run(&mut Unstructured::new(data), &mut steps);
    stats::add(steps);
});

fn absurd_u64(u: &mut Unstructured) -> Result<u64> {
    Ok(match u.int_in_range(0..=11u8)? {
        0 => 0,
        1 => 1,
        2 => u64::MAX,
        3 => u64::MAX - 1,
        4 => u64::from(u32::MAX),
        5 => 1 << 53,
        6 => u.int_in_range(0..=100)?,
        7 => u.int_in_range(0..=100_000)?,
        8 => 1_000 * u.int_in_range(1..=120)?,
        _ => u.arbitrary()?,
    })
}

fn absurd_u32(u: &mut Unstructured) -> Result<u32> {
    Ok(match u.int_in_range(0..=6u8)? {
        0 => 0,
        1 => 1,
        2 => u32::MAX,
        3 => u.int_in_range(0..=10)?,
        4 => u.int_in_range(0..=64)?,
        _ => u.arbitrary()?,
    })
}

fn absurd_f64(u: &mut Unstructured) -> Result<f64> {
    Ok(match u.int_in_range(0..=19u8)? {
        0 => 0.0,
        1 => -0.0,
        2 => 1.0,
        3 => 0.5,
        4 => f64::NAN,
        5 => f64::INFINITY,
        6 => f64::NEG_INFINITY,
        7 => f64::MIN_POSITIVE,
        8 => f64::EPSILON,
        9 => 1.0 + f64::EPSILON,
        10 => 1.0 - f64::EPSILON / 2.0,
        11 => 1e-300,
        12 => 1e300,
        13 => f64::MAX,
        14 => -1.0,
        15 => 1e6,
        16 => 1_000_000.000_1,
        17 => f64::from(u.int_in_range(0..=1000u32)?) / 1000.0,
        _ => f64::from_bits(u.arbitrary()?),
    })
}

fn value<'a>(u: &mut Unstructured<'a>) -> Result<Value<'a>> {
    Ok(match u.int_in_range(0..=12u8)? {
        0 => Value::Null,
        10 => Value::List,
        11 => Value::Map,
        12 => Value::Unsupported,
        1 => Value::Bool(u.arbitrary()?),
        2 => Value::Int(i128::from(absurd_u64(u)?)),
        3 => Value::Int(u.arbitrary()?),
        4 => Value::Int(-i128::from(absurd_u64(u)?)),
        5 | 6 => Value::Float(absurd_f64(u)?),
        7 => {
            const WORDS: [&str; 6] = [
                "requests",
                "health_checks",
                "soonest",
                "fail",
                "",
                "Requests",
            ];
            Value::Str(WORDS[u.choose_index(WORDS.len())?])
        }
        _ => Value::Str(u.arbitrary()?),
    })
}

fn opt<T>(
    u: &mut Unstructured,
    f: impl FnOnce(&mut Unstructured) -> Result<T>,
) -> Result<Option<T>> {
    Ok(if u.ratio(1, 4)? { None } else { Some(f(u)?) })
}

/// Sets one Rust field to an absurd value.
fn set_field(p: &mut Policy, u: &mut Unstructured) -> Result<()> {
    match u.int_in_range(0..=30u8)? {
        0 => p.bucket_ms = absurd_u64(u)?,
        1 => p.window_ms = absurd_u64(u)?,
        2 => p.min_volume = absurd_u32(u)?,
        3 => p.error_rate_threshold = opt(u, absurd_f64)?,
        4 => p.consecutive_failures = opt(u, absurd_u32)?,
        5 => p.timeout_rate_threshold = opt(u, absurd_f64)?,
        6 => p.timeout_sustain_ms = absurd_u64(u)?,
        7 => p.slow_call_ms = absurd_u32(u)?,
        8 => p.slow_call_rate_threshold = opt(u, absurd_f64)?,
        9 => p.latency_factor = opt(u, absurd_f64)?,
        10 => p.latency_quantile = absurd_f64(u)?,
        11 => p.latency_baseline_ms = absurd_u64(u)?,
        12 => p.count_client_errors = u.arbitrary()?,
        13 => p.open_base_ms = absurd_u64(u)?,
        14 => p.open_multiplier = absurd_f64(u)?,
        15 => p.open_max_ms = absurd_u64(u)?,
        16 => p.open_jitter = absurd_f64(u)?,
        17 => p.seed = u.arbitrary()?,
        18 => p.backoff_decay_ms = absurd_u64(u)?,
        19 => {
            p.probe_mode = if u.arbitrary()? {
                ProbeMode::Requests
            } else {
                ProbeMode::HealthChecks
            }
        }
        20 => p.probe_max_in_flight = absurd_u32(u)?,
        21 => p.probe_successes = absurd_u32(u)?,
        22 => p.probe_timeout_ms = absurd_u64(u)?,
        23 => p.health_check_interval_ms = opt(u, absurd_u64)?,
        24 => p.ramp_min_samples = absurd_u32(u)?,
        25 => p.ramp_rollback_threshold = absurd_f64(u)?,
        26 => p.throttle_base_ms = absurd_u64(u)?,
        27 => p.throttle_max_ms = absurd_u64(u)?,
        28 => p.max_retry_after_ms = absurd_u64(u)?,
        29 => {
            p.when_all_down = if u.arbitrary()? {
                AllDown::Soonest
            } else {
                AllDown::Fail
            }
        }
        _ => {
            let stage = RampStage {
                share: absurd_f64(u)?,
                dwell_ms: absurd_u64(u)?,
            };
            if u.arbitrary()? {
                p.ramp.clear();
            }
            let _ = p.ramp.push(stage);
        }
    }
    Ok(())
}

fn check<const P: usize, const B: usize, const E: usize>(r: &Router<P, B, E>) {
    assert_eq!(r.invariant_violation(), None);
    for v in r.views() {
        assert!(v.share_ppm <= 1_000_000);
    }
}

fn run(u: &mut Unstructured, steps: &mut usize) -> Result<()> {
    let mut p = Policy::default();
    let ops = u.int_in_range(0..=40u8)?;
    for _ in 0..ops {
        match u.int_in_range(0..=5u8)? {
            0 | 1 => set_field(&mut p, u)?,
            2 | 3 => {
                let name: &str = if u.ratio(7, 8)? {
                    u.choose(&FIELDS)?
                } else {
                    u.arbitrary()?
                };
                let v = value(u)?;
                // Compared through Debug: a NaN field is not equal to itself.
                let before = format!("{p:?}");
                match p.set(name, v) {
                    Ok(()) => assert!(FIELDS.contains(&name) && name != "ramp"),
                    Err(e) => {
                        // A refused value leaves the policy as it was.
                        assert_eq!(format!("{p:?}"), before, "a refused set changed the policy");
                        check_error(&e);
                        if !FIELDS.contains(&name) {
                            assert_eq!(e.code(), "unknown_field");
                        }
                    }
                }
            }
            4 => p.clear_ramp(),
            _ => {
                let (share, dwell) = (value(u)?, value(u)?);
                match p.push_ramp_stage(share, dwell) {
                    Ok(()) => {}
                    Err(e) => check_error(&e),
                }
            }
        }
    }

    // Provider names: ordinary, empty, duplicate, too long, not ASCII, arbitrary.
    let count = u.int_in_range(0..=70usize)?;
    let mut owned: Vec<String> = Vec::with_capacity(count);
    for i in 0..count {
        owned.push(match u.int_in_range(0..=9u8)? {
            0 => String::new(),
            1 => "x".repeat(MAX_NAME_LEN),
            2 => "x".repeat(MAX_NAME_LEN + 1),
            3 => "é".repeat(MAX_NAME_LEN / 2 + 1),
            4 if i > 0 => owned[u.int_in_range(0..=i - 1)?].clone(),
            5 => String::from(u.arbitrary::<&str>()?),
            _ => format!("provider-{i}"),
        });
    }
    let names: Vec<&str> = owned.iter().map(String::as_str).collect();

    check_router::<4, 12, 8>(&p, &names, u, steps)?;
    check_router::<16, 120, 64>(&p, &names, u, steps)?;
    check_router::<64, 1, 1>(&p, &names, u, steps)?;
    Ok(())
}

fn check_error(e: &ConfigError) {
    let mut s = String::new();
    write!(s, "{e}").unwrap();
    assert!(!s.is_empty());
    assert!(!e.code().is_empty());
    let _ = e.field();
}

/// The name rules, written out independently of the engine.
fn names_error(names: &[&str], capacity: usize) -> Option<&'static str> {
    if names.is_empty() {
        return Some("no_providers");
    }
    if names.len() > capacity {
        return Some("too_many_providers");
    }
    for (i, n) in names.iter().enumerate() {
        if n.is_empty() {
            return Some("empty_name");
        }
        if n.len() > MAX_NAME_LEN {
            return Some("name_too_long");
        }
        if names[..i].contains(n) {
            return Some("duplicate_name");
        }
    }
    None
}

fn check_router<const P: usize, const B: usize, const E: usize>(
    p: &Policy,
    names: &[&str],
    u: &mut Unstructured,
    steps: &mut usize,
) -> Result<()> {
    let validated = p.validate(B);
    let built = Router::<P, B, E>::new(p, names);
    let mut r = match (&validated, built) {
        (Err(v), Err(b)) => {
            // The policy is judged first, by the same validation.
            assert_eq!(v, &b);
            check_error(&b);
            return Ok(());
        }
        (Err(v), Ok(_)) => panic!("validate refused ({v}) but Router::new accepted"),
        (Ok(()), Err(b)) => {
            check_error(&b);
            assert_eq!(
                Some(b.code()),
                names_error(names, P),
                "a valid policy refused for {b}"
            );
            return Ok(());
        }
        (Ok(()), Ok(r)) => {
            assert_eq!(
                names_error(names, P),
                None,
                "names accepted against the rules"
            );
            r
        }
    };
    assert_eq!(r.len(), names.len());
    for (i, n) in names.iter().enumerate() {
        let id = r.provider(n).unwrap();
        assert_eq!(id.index(), i);
        assert_eq!(r.name(id), *n);
    }

    // An accepted policy, however absurd, survives traffic.
    let n = r.len();
    let mut t: u64 = u.arbitrary()?;
    let mut tickets = Vec::new();
    let mut sample = Sample::from_env(8);
    let mut burst = || -> Result<()> {
        for _ in 0..u.int_in_range(0..=64u8)? {
            *steps += 1;
            t = match u.int_in_range(0..=5u8)? {
                0 => u.arbitrary()?,
                1 => u64::MAX,
                2 => t.saturating_sub(u.int_in_range(0..=1_000)?),
                _ => t.saturating_add(u.int_in_range(0..=100_000)?),
            };
            let kind = *u.choose(&OutcomeKind::ALL)?;
            let o = Outcome {
                kind,
                latency_ms: u.arbitrary()?,
                retry_after_ms: opt(u, absurd_u64)?,
            };
            match u.int_in_range(0..=4u8)? {
                0 => {
                    let req = PickRequest {
                        key: u.arbitrary()?,
                        tried: ProviderSet::from_bits(u.arbitrary()?),
                    };
                    if let Ok(ticket) = r.pick_with(t, &req) {
                        tickets.push(ticket);
                    }
                }
                1 if !tickets.is_empty() => {
                    let k = u.choose_index(tickets.len())?;
                    r.record(&tickets.swap_remove(k), o, t);
                }
                2 => {
                    let i = u.choose_index(n)?;
                    r.observe(r.provider_at(i).unwrap(), o, t);
                }
                3 => {
                    // Bounded: see the report on poll_action at u64::MAX.
                    for _ in 0..2 * n {
                        match r.poll_action(t) {
                            Some(failover_core::Action::HealthCheck(ticket)) => {
                                tickets.push(ticket)
                            }
                            None => break,
                        }
                    }
                }
                _ => {
                    if let Some(d) = r.poll_timeout() {
                        r.handle_timeout(d);
                    } else {
                        r.handle_timeout(t);
                    }
                }
            }
            let full = sample.full(&r);
            while r.poll_event().is_some() {}
            sample.drained(&r);
            if full {
                check(&r);
            }
        }
        Ok(())
    };
    // However the burst ends (the input may run out mid-step), its last state is checked.
    let end = burst();
    check(&r);
    end
}
