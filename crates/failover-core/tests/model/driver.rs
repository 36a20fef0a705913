//! The lockstep driver: the core and the model take the same inputs and must agree.

use crate::*;

// ------------------------------------------------------------------------------------------------
// The lockstep driver.
// ------------------------------------------------------------------------------------------------

/// What a run exercised: how often each event, trigger and result was seen.
#[derive(Default, Debug)]
pub(crate) struct Coverage {
    pub(crate) seen: std::collections::BTreeMap<String, u64>,
}

impl Coverage {
    pub(crate) fn note(&mut self, what: impl Into<String>) {
        *self.seen.entry(what.into()).or_default() += 1;
    }
}

pub(crate) fn run(case: &Case, sem: Semantics, cov: &mut Coverage) -> Result<(), TestCaseError> {
    let spec = &case.spec;
    let policy = spec.policy();
    let names = spec.names();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut core = Core::new(&policy, &names)
        .map_err(|e| TestCaseError::fail(format!("a valid policy was refused: {e}")))?;
    // Ids of providers 0..8 for forged tickets (the core has at most four).
    let ids = failover_testkit::ids();
    let mut model = Model::new(spec, sem);
    let mut tickets: Vec<Ticket> = Vec::new();
    let mut t = case.start;

    for (step, op) in case.ops.iter().enumerate() {
        let bad = |provider: usize| ((step / case.phase) + provider).is_multiple_of(3);
        // Each input goes to the core first, so the model can take the core's jitter draws.
        let mut core_out = String::new();
        let mut model_out = String::new();
        let mut model_step: Box<dyn FnMut(&mut Model) -> String> = match op {
            Op::Pick {
                dt,
                key,
                tried,
                then: record_after,
            } => {
                t = advance(t, *dt);
                let key = key.map(|k| failover_core::hash_key(&[k]));
                let set = failover_testkit::tried_set(&ids, u64::from(*tried));
                let r = core.pick_with(t, &PickRequest { key, tried: set });
                core_out = format!(
                    "{:?}",
                    r.as_ref().map(MTicket::from).map_err(|u| u.retry_after_ms)
                );
                let (at, mask) = (t, u64::from(*tried));
                let mut then_record = None;
                match (r, record_after) {
                    (Ok(ticket), Some((dt2, raw))) => {
                        t = advance(t, *dt2);
                        let o = outcome(*raw, bad(ticket.provider.index()), case);
                        core_out.push_str(&format!(" {:?}", core.record(&ticket, o, t)));
                        then_record = Some((MTicket::from(&ticket), o, t));
                    }
                    (Ok(ticket), None) => tickets.push(ticket),
                    (Err(_), _) => {}
                }
                Box::new(move |m: &mut Model| {
                    let mut out = format!("{:?}", m.pick(at, key, mask));
                    if let Some((mt, o, at2)) = then_record {
                        out.push_str(&format!(" {:?}", m.record(&mt, &o, at2)));
                    }
                    out
                })
            }
            Op::Record {
                dt,
                which,
                keep,
                out,
            } => {
                t = advance(t, *dt);
                if tickets.is_empty() {
                    Box::new(|_| String::new())
                } else {
                    let k = which % tickets.len();
                    let ticket = if *keep {
                        tickets[k]
                    } else {
                        tickets.swap_remove(k)
                    };
                    let o = outcome(*out, bad(ticket.provider.index()), case);
                    core_out = format!("{:?}", core.record(&ticket, o, t));
                    let (mt, at) = (MTicket::from(&ticket), t);
                    Box::new(move |m: &mut Model| format!("{:?}", m.record(&mt, &o, at)))
                }
            }
            Op::Forged {
                dt,
                provider,
                kind,
                generation,
                seq,
                out,
            } => {
                t = advance(t, *dt);
                let i = usize::from(*provider);
                let generation = core
                    .view(ids[i])
                    .map_or(0, |v| v.generation)
                    .wrapping_add_signed(i32::from(*generation));
                let kind = [
                    TicketKind::Request,
                    TicketKind::Probe,
                    TicketKind::HealthCheck,
                ][usize::from(*kind) % 3];
                let ticket = Ticket {
                    provider: ids[i],
                    kind,
                    generation,
                    probe_seq: *seq,
                    degraded: false,
                    retry_after_ms: None,
                    issued_at_ms: t,
                };
                let o = outcome(*out, bad(i), case);
                core_out = format!("{:?}", core.record(&ticket, o, t));
                let (mt, at) = (MTicket::from(&ticket), t);
                Box::new(move |m: &mut Model| format!("{:?}", m.record(&mt, &o, at)))
            }
            Op::Observe { dt, provider, out } => {
                t = advance(t, *dt);
                let i = usize::from(*provider);
                let o = outcome(*out, bad(i), case);
                core_out = format!("{:?}", core.observe(ids[i], o, t));
                let at = t;
                Box::new(move |m: &mut Model| format!("{:?}", m.observe(i, &o, at)))
            }
            Op::PollAction { dt } => {
                t = advance(t, *dt);
                let a = core.poll_action(t);
                let a = a.map(|failover_core::Action::HealthCheck(ticket)| {
                    tickets.push(ticket);
                    MTicket::from(&ticket)
                });
                core_out = format!("{a:?}");
                let at = t;
                Box::new(move |m: &mut Model| format!("{:?}", m.poll_action(at)))
            }
            Op::HandleTimeout { dt } => {
                t = advance(t, *dt);
                core.handle_timeout(t);
                let at = t;
                Box::new(move |m: &mut Model| {
                    m.handle_timeout(at);
                    String::new()
                })
            }
            Op::SleepUntilDeadline => {
                let d = core.poll_timeout();
                prop_assert_eq!(d, model.poll_timeout(), "poll_timeout before step {}", step);
                if let Some(d) = d {
                    t = d;
                    core.handle_timeout(d);
                    Box::new(move |m: &mut Model| {
                        m.handle_timeout(d);
                        String::new()
                    })
                } else {
                    Box::new(|_| String::new())
                }
            }
        };
        let core_events: Vec<MEvent> = std::iter::from_fn(|| core.poll_event())
            .map(|e| MEvent {
                at_ms: e.at_ms,
                provider: e.provider.index(),
                kind: e.kind,
            })
            .collect();
        model.jitter_draws = core_events
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::Opened { until_ms, .. } => Some((e.provider, until_ms)),
                _ => None,
            })
            .collect();
        model_out.push_str(&model_step(&mut model));
        let model_events = std::mem::take(&mut model.events);

        for e in &core_events {
            cov.note(format!("event {}", e.kind.name()));
            if let EventKind::Opened { reason, from, .. } = e.kind {
                cov.note(format!("trigger {}", reason.trigger.name()));
                cov.note(format!("opened from {}", from.name()));
            }
        }
        let first_word = |s: &str| s.split(['(', ' ', '{']).next().unwrap_or("").to_string();
        match op {
            Op::Pick { .. } if core_out.contains("degraded: true") => cov.note("pick degraded"),
            Op::Pick { .. } if core_out.contains("Probe,") => cov.note("pick probe"),
            Op::Pick { .. } if core_out.starts_with("Err") => cov.note("pick unavailable"),
            Op::Pick { .. } => cov.note("pick request"),
            Op::PollAction { .. } if core_out.starts_with("Some") => cov.note("health check"),
            Op::Record { .. } | Op::Forged { .. } | Op::Observe { .. } if !core_out.is_empty() => {
                cov.note(format!("recorded {}", first_word(&core_out)))
            }
            _ => {}
        }
        if t == u64::MAX {
            cov.note("time at u64::MAX");
        }
        for i in 0..spec.providers {
            if model.baseline_established(i).is_some() {
                cov.note("baseline established");
            }
        }
        let ctx = || format!("step {step}: {op:?} at t = {t}");
        prop_assert_eq!(&core_out, &model_out, "result differs; {}", ctx());
        prop_assert_eq!(&core_events, &model_events, "events differ; {}", ctx());
        prop_assert!(model.broken.is_empty(), "{:?}; {}", model.broken, ctx());
        prop_assert_eq!(core.now(), model.now, "now differs; {}", ctx());
        prop_assert_eq!(core.dropped_events(), 0);
        for (i, id) in ids.iter().enumerate().take(spec.providers) {
            let cv = MView::from(&core.view(*id).unwrap());
            let mv = model.view(i);
            prop_assert_eq!(cv, mv, "provider {} differs; {}", i, ctx());
        }
        prop_assert_eq!(
            core.poll_timeout(),
            model.poll_timeout(),
            "poll_timeout differs; {}",
            ctx()
        );
        prop_assert_eq!(core.invariant_violation(), None, "{}", ctx());
    }
    Ok(())
}
