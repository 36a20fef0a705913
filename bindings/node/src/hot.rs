//! The routers of this thread, the default clock, and the fast path for `pick` and `record`.
//!
//! A napi-rs method costs a few hundred nanoseconds per call and a napi-rs function with
//! arguments over a hundred; a bare napi callback with no arguments costs about 30 ns. So the two
//! calls every request makes take no arguments and return nothing: the JS layer writes their
//! inputs into a small `Float64Array` shared with this module ([`io_buffer`]), calls `hotPick()`
//! or `hotRecord()` (registered by [`export_hot_functions`]), and reads the results and the
//! status from the same array. Everything else goes through ordinary methods of `NativeRouter`.
//!
//! Each Node environment (the main thread, each worker) runs on its own thread, so the buffer and
//! the router table are thread-local. The buffer is [`slot::LEN`] `f64`s leaked once per thread, so that no
//! `ArrayBuffer` can ever outlive it.

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
use std::{sync::OnceLock, time::Instant};

use failover_core::{
    DefaultRouter, Outcome, OutcomeKind, PickRequest, ProviderSet, Recorded, Ticket, TicketKind,
};
use napi::bindgen_prelude::{Env, Float64Array, Object};
use napi_derive::napi;

use crate::convert::{MAX_SAFE_INT, js_num};
use crate::error::{Failure, Res, panic_failure};

/// Slots of the shared buffer. Inputs are written by JS before a call, outputs by Rust during it.
pub(crate) mod slot {
    /// The router's handle (`NativeRouter.slot`).
    pub const ROUTER: usize = 0;
    /// In: `nowMs` of the call, or -1 to read the native monotonic clock ([`super::clock_ms`]).
    pub const NOW: usize = 1;
    /// In (pick): bit mask of providers already tried.
    pub const TRIED: usize = 2;
    /// In (record) / out (pick, pollAction): provider index.
    pub const PROVIDER: usize = 3;
    /// In (record) / out: ticket kind code (see `ticketKinds()`).
    pub const KIND: usize = 4;
    /// In (record) / out: circuit generation.
    pub const GENERATION: usize = 5;
    /// In (record) / out: probe permit sequence.
    pub const PROBE_SEQ: usize = 6;
    /// Out: 1 if the ticket is the all-down fallback.
    pub const DEGRADED: usize = 7;
    /// Out: the degraded ticket's `retry_after_ms`, -1 for none.
    pub const TICKET_RETRY_AFTER: usize = 8;
    /// Out: the engine's time when the ticket was issued.
    pub const ISSUED_AT: usize = 9;
    /// In (record, observe): outcome kind code (see `outcomeKinds()`).
    pub const OUTCOME: usize = 10;
    /// In (record, observe): latency, ms.
    pub const LATENCY: usize = 11;
    /// In (record, observe): the outcome's `retry_after_ms`, -1 for none.
    pub const RETRY_AFTER: usize = 12;
    /// Out (pick, record): the timestamp the call used (NOW, or the clock reading for -1).
    pub const USED_NOW: usize = 13;
    /// In (record with LATENCY = -1): when the call started; latency = USED_NOW - T0.
    pub const T0: usize = 14;
    /// Out: the status of the hot call: 0 (pick) or the `Recorded` code (record), or -1 with the
    /// failure parked for `throwPending()`.
    pub const STATUS: usize = 15;
    // The request engine's fast path (see `crate::hot_request`).
    /// In/out: the request's handle (`hotBegin` writes it).
    pub const REQUEST: usize = 16;
    /// In (begin, outcome): `nowMs` of the poll made in the same call, -1 for the default clock,
    /// -2 for no poll.
    pub const POLL_NOW: usize = 17;
    /// In (begin): `max_attempts`, -1 for the policy's.
    pub const MAX_ATTEMPTS: usize = 18;
    /// In (begin): the request's `deadline_ms`, -1 for the policy's.
    pub const REQUEST_DEADLINE: usize = 19;
    /// In (begin): `max_wait_ms`, -1 for the policy's.
    pub const MAX_WAIT: usize = 20;
    /// In (begin): the sticky key's hash, high 32 bits, -1 for no key (`requestKey` writes it).
    pub const KEY_HI: usize = 21;
    /// In (begin): the sticky key's hash, low 32 bits.
    pub const KEY_LO: usize = 22;
    /// Out: 1 while the request is live, 0 once it finished (and its handle was freed).
    pub const LIVE: usize = 23;
    /// Out: the step's code (see `requestCodes().steps`): 0 attempt, 1 in flight, 2 wait, 3 done.
    pub const STEP: usize = 24;
    /// Out (attempt): the attempt's number (1 for the first).
    pub const NUMBER: usize = 25;
    /// Out: the attempt's or the in-flight attempt's `deadline_ms`, or the wait's `until_ms`.
    pub const DEADLINE: usize = 26;
    /// Out (attempt): `timeout_ms`.
    pub const TIMEOUT: usize = 27;
    /// Out (attempt): `idle_ms`, -1 for none.
    pub const IDLE: usize = 28;
    /// Out (attempt): 1 if it is the request's last candidate.
    pub const LAST: usize = 29;
    /// Out (done): the finish code (see `requestCodes().finishes`).
    pub const FINISH: usize = 30;
    /// Out (done, gave up): the reason code (see `requestCodes().giveUps`), else -1.
    pub const REASON: usize = 31;
    /// Out (done, gave up): the last outcome's kind code, -1 for none.
    pub const LAST_OUTCOME: usize = 32;
    /// Out (done, gave up): `retry_after_ms`, else -1.
    pub const HINT: usize = 33;
    /// Out (outcome): what the request last recorded: the `Recorded` code, -1 for nothing.
    pub const RECORDED: usize = 34;
    /// Out (outcome): the latency of that recording, ms.
    pub const REPORT_LATENCY: usize = 35;
    /// Out: the router of the latest engine call (written by every call on a router).
    pub const EVENTS_ROUTER: usize = 36;
    /// Out: that router's count of events ever queued (the core's `queued_total`) after the call:
    /// the JS layer compares it with the count it has seen to find new events for its listeners.
    pub const EVENTS_TOTAL: usize = 37;
    /// Out (begin, poll, outcome, cancel): 1 if the call recorded an attempt's outcome (the
    /// REPORT_* slots then describe it, from the core's `Report`), else 0.
    pub const REPORTED: usize = 38;
    /// Out (reported): the attempt's provider index.
    pub const REPORT_PROVIDER: usize = 39;
    /// Out (reported): its ticket kind code.
    pub const REPORT_KIND: usize = 40;
    /// Out (reported): its number in the request.
    pub const REPORT_NUMBER: usize = 41;
    /// Out (reported): the outcome kind code recorded.
    pub const REPORT_OUTCOME: usize = 42;
    /// Out (reported): the `Recorded` code.
    pub const REPORT_RESULT: usize = 43;
    /// Out (reported): when the attempt started, engine ms.
    pub const REPORT_STARTED: usize = 44;
    /// Out (reported): when its outcome was recorded, engine ms.
    pub const REPORT_ENDED: usize = 45;
    /// Out (reported): when a stream's first token came, engine ms, -1 for none.
    pub const REPORT_FIRST_TOKEN: usize = 46;
    /// Out (reported): the outcome's `retry_after_ms`, -1 for none.
    pub const REPORT_RETRY_AFTER: usize = 47;
    /// Out (begin on the default clock): the clock reading the call used, in ms with a
    /// microsecond fraction, on the timeline of `performance.timeOrigin + performance.now()`
    /// (what [`super::calibrate_clock`] aligns): the JS layer times the first attempt's deadline
    /// from it instead of reading `performance.now()` again.
    pub const CLOCK_AT: usize = 48;
    /// Out (reported): the three bit planes of the core's `Report::excluded` (why the providers
    /// ahead of the attempt's were passed over), in this slot and the next two; all 0 when
    /// nobody was (a router has at most 16 providers, so each plane is exact in an f64).
    pub const REPORT_EXCLUDED: usize = 49;
    /// Length of the buffer.
    pub const LEN: usize = 52;
}

/// The largest integer a JS number holds exactly.
pub(crate) const MAX_SAFE: f64 = MAX_SAFE_INT as f64;

/// Nanoseconds of `CLOCK_MONOTONIC`, the clock `Instant` and `performance.now()` read on Linux,
/// straight from `clock_gettime` (a vDSO call, about 25 ns here). Going through `Instant` cost
/// about 14 ns more per reading (checked `Timespec` arithmetic, `Duration`, u128 nanoseconds), and
/// every `router.call` reads the clock twice.
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
fn monotonic_ns() -> i64 {
    /// `struct timespec` of 64-bit Linux (glibc and musl): `time_t` and `long` are 64 bits.
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    unsafe extern "C" {
        fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
    }
    const CLOCK_MONOTONIC: i32 = 1;
    let mut t = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a writable `struct timespec` of this platform's layout, and CLOCK_MONOTONIC
    // always exists on Linux (it cannot fail with a valid pointer). Kept unsafe because it pays:
    // with the `Instant` version below, `pick+record (native clock)` (two readings) measured
    // about 28 ns slower (bench.mjs, interleaved runs, 2026-11-29).
    let rc = unsafe { clock_gettime(CLOCK_MONOTONIC, &mut t) };
    debug_assert_eq!(rc, 0, "clock_gettime(CLOCK_MONOTONIC) failed");
    // Saturates after 292 years of uptime.
    t.tv_sec
        .saturating_mul(1_000_000_000)
        .saturating_add(t.tv_nsec)
}

/// Nanoseconds of the monotonic clock since a fixed point (the first reading), through `Instant`.
#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
fn monotonic_ns() -> i64 {
    static ANCHOR: OnceLock<Instant> = OnceLock::new();
    // Saturates after 292 years of uptime.
    i64::try_from(ANCHOR.get_or_init(Instant::now).elapsed().as_nanos()).unwrap_or(i64::MAX)
}

/// The default clock: integer ms of the monotonic clock `performance.now()` also reads
/// (`CLOCK_MONOTONIC` on Linux, elsewhere through `Instant`), offset to read like Unix
/// milliseconds. Never goes backwards, never jumps with the wall clock. Costs one `clock_gettime`
/// (about 25 ns) and integer arithmetic (no float rounding, which is a libm call on baseline
/// x86-64).
pub(crate) fn clock_ms(h: &Hot) -> u64 {
    ms_of(clock_ns(h))
}

/// The default clock in ns (never negative): [`clock_ms`] is its whole milliseconds.
pub(crate) fn clock_ns(h: &Hot) -> i64 {
    h.clock_offset_ns
        .get()
        .saturating_add(monotonic_ns())
        .max(0)
}

/// The whole milliseconds of a [`clock_ns`] reading.
pub(crate) fn ms_of(ns: i64) -> u64 {
    // At most i64::MAX / 10^6 ms, below 2^53: always a valid timestamp.
    (ns / 1_000_000) as u64
}

/// A [`clock_ns`] reading in ms with a microsecond fraction (below 2^53 µs for 285 years after
/// 1970: exact in an f64).
pub(crate) fn fine_ms(ns: i64) -> f64 {
    (ns / 1_000) as f64 / 1_000.0
}

/// Aligns [`clock_ms`] with the JS clock: `js_now_ms` is `performance.timeOrigin +
/// performance.now()` read just before the call.
#[napi]
pub fn calibrate_clock(js_now_ms: f64) {
    if js_now_ms.is_finite() {
        // `as` saturates; f64 keeps the offset to about 0.25 µs, far below the clock's 1 ms unit.
        let js_ns = (js_now_ms * 1e6) as i64;
        hot()
            .clock_offset_ns
            .set(js_ns.saturating_sub(monotonic_ns()));
    }
}

/// The default clock, [`clock_ms`].
#[napi]
pub fn monotonic_now() -> f64 {
    js_num(clock_ms(hot()))
}

/// A timestamp argument, or the default clock for -1 (how the JS layer says "no `nowMs`").
pub(crate) fn now_arg(h: &Hot, arg: &str, x: f64) -> Res<u64> {
    if x == -1.0 {
        Ok(clock_ms(h))
    } else {
        time(arg, x)
    }
}

struct Entry {
    router: Box<DefaultRouter>,
    poisoned: bool,
}

#[derive(Default)]
struct Table {
    slots: Vec<Option<Entry>>,
    free: Vec<usize>,
}

/// Everything this module keeps per thread (per Node environment), in one leaked allocation so the
/// hot path reads thread-local storage once per call.
pub(crate) struct Hot {
    /// The buffer shared with JS (`ioBuffer()`).
    pub(crate) io: [Cell<f64>; slot::LEN],
    /// The requests of the fast path (`hotBegin`).
    pub(crate) requests: RefCell<crate::hot_request::Slab>,
    routers: RefCell<Table>,
    /// Slots whose `NativeRouter` was collected while the table was in use.
    deferred_free: RefCell<Vec<usize>>,
    /// Added to [`monotonic_ns`]: set by [`calibrate_clock`] so the clock reads
    /// like `performance.timeOrigin + performance.now()` in this environment.
    clock_offset_ns: Cell<i64>,
}

thread_local! {
    static HOT: &'static Hot = Box::leak(Box::new(Hot {
        io: [const { Cell::new(0.0) }; slot::LEN],
        routers: RefCell::new(Table::default()),
        requests: RefCell::new(crate::hot_request::Slab::new()),
        deferred_free: RefCell::new(Vec::new()),
        clock_offset_ns: Cell::new(0),
    }));
}

/// This thread's state.
pub(crate) fn hot() -> &'static Hot {
    HOT.with(|h| *h)
}

/// Adds a router to this thread's table and returns its slot.
pub(crate) fn insert(router: Box<DefaultRouter>) -> usize {
    let h = hot();
    {
        let mut t = h.routers.borrow_mut();
        drain_deferred(h, &mut t);
        let e = Some(Entry {
            router,
            poisoned: false,
        });
        match t.free.pop() {
            Some(i) => {
                t.slots[i] = e;
                i
            }
            None => {
                t.slots.push(e);
                t.slots.len() - 1
            }
        }
    }
}

/// Frees a slot (when its `NativeRouter` is collected). Never panics, even during teardown.
pub(crate) fn remove(slot: usize) {
    // During thread teardown the thread-local may be gone: then nothing is left to free.
    let Ok(h) = HOT.try_with(|h| *h) else { return };
    match h.routers.try_borrow_mut() {
        Ok(mut t) => free(&mut t, slot),
        Err(_) => {
            if let Ok(mut d) = h.deferred_free.try_borrow_mut() {
                d.push(slot);
            }
        }
    }
}

fn free(t: &mut Table, slot: usize) {
    if let Some(s) = t.slots.get_mut(slot)
        && s.take().is_some()
    {
        t.free.push(slot);
    }
}

fn drain_deferred(h: &Hot, t: &mut Table) {
    let pending: Vec<usize> = std::mem::take(&mut *h.deferred_free.borrow_mut());
    for s in pending {
        free(t, s);
    }
}

/// Runs `f` on the router in `slot`, catching panics: a panic closes the router for good (its
/// state may be half-updated) and becomes [`Failure::Panic`]. `f` must not call into JavaScript.
pub(crate) fn with_router<T>(slot: usize, f: impl FnOnce(&mut DefaultRouter) -> Res<T>) -> Res<T> {
    with_router_in(hot(), slot, f)
}

/// [`with_router`] with this thread's state already in hand.
pub(crate) fn with_router_in<T>(
    h: &Hot,
    slot: usize,
    f: impl FnOnce(&mut DefaultRouter) -> Res<T>,
) -> Res<T> {
    {
        let mut t = h.routers.borrow_mut();
        let e = t
            .slots
            .get_mut(slot)
            .and_then(Option::as_mut)
            .ok_or(Failure::Closed)?;
        if e.poisoned {
            return Err(Failure::Poisoned);
        }
        match catch_unwind(AssertUnwindSafe(|| f(&mut e.router))) {
            Ok(r) => {
                // Two stores, so the JS layer can tell whether this call queued events.
                h.io[slot::EVENTS_ROUTER].set(slot as f64);
                h.io[slot::EVENTS_TOTAL].set(e.router.queued_total() as f64);
                r
            }
            Err(payload) => {
                e.poisoned = true;
                Err(panic_failure(payload))
            }
        }
    }
}

/// `x` as an integer if it is one in 0..=`max` (NaN and infinities are not). `max` ≤ 2^53.
pub(crate) fn int_in(x: f64, max: f64) -> Option<u64> {
    if !(0.0..=max).contains(&x) {
        return None;
    }
    // 0 ≤ x ≤ 2^53: the cast to i64 is exact for integers and truncates anything else. Signed
    // conversions are one instruction each way on baseline x86-64; `f64::trunc` is a libm call
    // and the unsigned conversions take several (perf had this line at 13% of hotRecord).
    let i = x as i64;
    (i as f64 == x).then_some(i as u64)
}

/// A timestamp argument: an integer in 0..=2^53 − 1.
pub(crate) fn time(arg: &str, x: f64) -> Res<u64> {
    int_in(x, MAX_SAFE).ok_or_else(|| Failure::time(arg, x))
}

/// An optional millisecond count: -1 (or any negative) for none, else as [`time`].
pub(crate) fn opt_ms(arg: &str, x: f64) -> Res<Option<u64>> {
    if x == -1.0 {
        Ok(None)
    } else {
        time(arg, x).map(Some)
    }
}

/// The outcome kind with code `code` (an index into `OutcomeKind::ALL`).
#[inline]
pub(crate) fn outcome_kind(code: f64) -> Res<OutcomeKind> {
    match int_in(code, MAX_SAFE).and_then(|i| OutcomeKind::ALL.get(i as usize)) {
        Some(k) => Ok(*k),
        None => Err(bad_outcome_kind()),
    }
}

/// The failure of an outcome code that names no kind (out of line: the hot path only tests).
#[cold]
#[inline(never)]
fn bad_outcome_kind() -> Failure {
    Failure::range(
        "outcome",
        format!(
            "must be an outcome kind code 0..{}",
            OutcomeKind::ALL.len() - 1
        ),
    )
}

/// Builds an outcome from its parts as the JS layer passes them.
pub(crate) fn outcome(kind: f64, latency_ms: f64, retry_after_ms: f64) -> Res<Outcome> {
    let kind = outcome_kind(kind)?;
    let Some(latency) = int_in(latency_ms, f64::from(u32::MAX)) else {
        return Err(Failure::range(
            "latency_ms",
            "must be an integer number of milliseconds between 0 and 4294967295",
        ));
    };
    Ok(Outcome {
        kind,
        latency_ms: latency as u32,
        retry_after_ms: opt_ms("retry_after_ms", retry_after_ms)?,
    })
}

/// Ticket kinds by code, in the order of `ticketKinds()`.
pub(crate) const TICKET_KINDS: [TicketKind; 3] = [
    TicketKind::Request,
    TicketKind::Probe,
    TicketKind::HealthCheck,
];

/// The code of a ticket kind.
pub(crate) fn kind_code(k: TicketKind) -> f64 {
    match k {
        TicketKind::Request => 0.0,
        TicketKind::Probe => 1.0,
        TicketKind::HealthCheck => 2.0,
    }
}

/// `Recorded` values by code, in the order of `recordedNames()`.
pub(crate) const RECORDED: [Recorded; 3] = [
    Recorded::Accepted,
    Recorded::Stale,
    Recorded::UnknownProvider,
];

/// The code of a `Recorded` value.
pub(crate) fn recorded_code(r: Recorded) -> i32 {
    match r {
        Recorded::Accepted => 0,
        Recorded::Stale => 1,
        Recorded::UnknownProvider => 2,
    }
}

/// Writes a ticket into the shared buffer.
pub(crate) fn write_ticket(h: &Hot, t: &Ticket) {
    let io = &h.io;
    io[slot::PROVIDER].set(js_num(t.provider.index() as u64));
    io[slot::KIND].set(kind_code(t.kind));
    io[slot::GENERATION].set(f64::from(t.generation));
    io[slot::PROBE_SEQ].set(f64::from(t.probe_seq));
    io[slot::DEGRADED].set(if t.degraded { 1.0 } else { 0.0 });
    io[slot::TICKET_RETRY_AFTER].set(t.retry_after_ms.map_or(-1.0, js_num));
    io[slot::ISSUED_AT].set(js_num(t.issued_at_ms));
}

/// Checks a tried-providers bit mask given as a JS number.
pub(crate) fn tried_mask(mask: f64) -> Res<u64> {
    int_in(mask, MAX_SAFE)
        .ok_or_else(|| Failure::range("tried", "must be a bit mask of provider indices"))
}

/// The provider set of a bit mask. Bits past the router's providers are ignored, as the core
/// ignores tried providers it does not have. (`ProviderId` has no public constructor, so the ids
/// come from the router itself.)
fn tried_set(r: &DefaultRouter, mask: u64) -> ProviderSet {
    let mut set = ProviderSet::new();
    if mask == 0 {
        return set;
    }
    for i in 0..r.len().min(64) {
        if mask & (1 << i) != 0
            && let Some(id) = r.provider_at(i)
        {
            set.insert(id);
        }
    }
    set
}

/// The ticket fields the JS layer wrote into the shared buffer: provider index and the ticket
/// (with a placeholder provider, replaced by the router's id for that index).
struct TicketIn {
    index: usize,
    kind: TicketKind,
    generation: u32,
    probe_seq: u32,
}

impl TicketIn {
    /// The core ticket, or `None` when the index names no provider of `r`.
    pub(crate) fn ticket(&self, r: &DefaultRouter) -> Option<Ticket> {
        Some(Ticket {
            provider: r.provider_at(self.index)?,
            kind: self.kind,
            generation: self.generation,
            probe_seq: self.probe_seq,
            degraded: false,
            retry_after_ms: None,
            issued_at_ms: 0,
        })
    }
}

fn read_ticket(io: &[Cell<f64>; slot::LEN]) -> Res<TicketIn> {
    let idx = io[slot::PROVIDER].get();
    let kind = io[slot::KIND].get();
    let generation = io[slot::GENERATION].get();
    let seq = io[slot::PROBE_SEQ].get();
    let u32_ok = |x: f64| int_in(x, f64::from(u32::MAX)).is_some();
    if int_in(idx, MAX_SAFE).is_none() {
        return Err(Failure::range("ticket.provider", "is not a provider index"));
    }
    if !(u32_ok(kind) && (kind as usize) < TICKET_KINDS.len()) {
        return Err(Failure::range("ticket.kind", "is not a ticket kind code"));
    }
    if !u32_ok(generation) || !u32_ok(seq) {
        return Err(Failure::range(
            "ticket",
            "has a generation or probe_seq outside 0..2^32",
        ));
    }
    Ok(TicketIn {
        index: idx as usize,
        kind: TICKET_KINDS[kind as usize],
        generation: generation as u32,
        probe_seq: seq as u32,
    })
}

pub(crate) fn router_slot(io: &[Cell<f64>; slot::LEN]) -> Res<usize> {
    int_in(io[slot::ROUTER].get(), MAX_SAFE)
        .map(|s| s as usize)
        .ok_or(Failure::Closed)
}

/// The shared buffer of this thread, as a `Float64Array` over memory that is never freed.
#[napi]
pub fn io_buffer() -> Float64Array {
    let p = hot().io.as_ptr() as *mut f64;
    // The one `unsafe` of the fast path, and it pays: a pick through this buffer and the bare
    // `hotPick` callback measured 30–50 ns, the same pick through a napi-rs method taking its
    // inputs as arguments (`NativeRouter.pickKeyed(now, null, 0)`) 500–700 ns (2026-11-29).
    // SAFETY: `p` points to `slot::LEN` f64s (`Cell<f64>` has the layout of `f64`) leaked for the
    // life of the process, so the array can never dangle; JS and Rust only touch it on this
    // thread, one at a time, and the cells make the shared mutation sound on the Rust side.
    unsafe { Float64Array::with_external_data(p, slot::LEN, |_, _| {}) }
}

/// Picks on the router in `slot` (with a hashed sticky key, and a tried mask as [`tried_mask`]
/// checks it) and writes USED_NOW and the ticket into the shared buffer.
pub(crate) fn pick_into(h: &Hot, slot: usize, now: u64, key: Option<u64>, tried: u64) -> Res<()> {
    h.io[slot::USED_NOW].set(js_num(now));
    let t = with_router_in(h, slot, |r| {
        let req = PickRequest {
            key,
            tried: tried_set(r, tried),
        };
        r.pick_with(now, &req).map_err(Failure::Unavailable)
    })?;
    write_ticket(h, &t);
    Ok(())
}

/// `pick`: reads ROUTER, NOW and TRIED; writes USED_NOW and the ticket. STATUS is 0, or -1 with
/// the failure (an `UnavailableError`, a bad argument, a panic) parked for `throwPending()`.
fn hot_pick(h: &Hot) -> Res<f64> {
    let io = &h.io;
    let slot = router_slot(io)?;
    let now = now_arg(h, "nowMs", io[slot::NOW].get())?;
    let tried = tried_mask(io[slot::TRIED].get())?;
    pick_into(h, slot, now, None, tried).map(|()| 0.0)
}

/// `record`: reads ROUTER, NOW, the ticket fields, OUTCOME, LATENCY (-1: measure from T0) and
/// RETRY_AFTER; writes USED_NOW. STATUS is the `Recorded` code (see `recordedNames()`), or -1
/// with the failure parked for `throwPending()`.
fn hot_record(h: &Hot) -> Res<f64> {
    let io = &h.io;
    {
        let slot = router_slot(io)?;
        let now = now_arg(h, "nowMs", io[slot::NOW].get())?;
        io[slot::USED_NOW].set(js_num(now));
        let t = read_ticket(io)?;
        let mut latency = io[slot::LATENCY].get();
        if latency == -1.0 {
            // Measured here: from T0 (the clock reading of the pick) to now.
            let t0 = time("t0", io[slot::T0].get())?;
            latency = js_num(now.saturating_sub(t0).min(u64::from(u32::MAX)));
        }
        let o = outcome(
            io[slot::OUTCOME].get(),
            latency,
            io[slot::RETRY_AFTER].get(),
        )?;
        with_router_in(h, slot, |r| {
            Ok(f64::from(recorded_code(match t.ticket(r) {
                Some(t) => r.record(&t, o, now),
                None => {
                    // The core's `record` advances the clock before it finds the provider unknown.
                    r.handle_timeout(now);
                    Recorded::UnknownProvider
                }
            })))
        })
    }
}

/// Runs a hot call and stores its status; never unwinds into the JS engine.
pub(crate) fn run_hot(f: fn(&Hot) -> Res<f64>) {
    let h = hot();
    // A panic inside the engine poisons its router (see `with_router_in`); elsewhere it leaves
    // nothing half-done (RefCell guards release on unwind).
    let status = match catch_unwind(AssertUnwindSafe(|| f(h))) {
        Ok(Ok(s)) => s,
        Ok(Err(failure)) => {
            failure.park();
            -1.0
        }
        Err(payload) => {
            panic_failure(payload).park();
            -1.0
        }
    };
    h.io[slot::STATUS].set(status);
}

/// `hotClock`: writes the default clock's reading ([`clock_ns`], in ms with a microsecond
/// fraction, as `CLOCK_AT`) and nothing else: one bare crossing and one clock reading, the unit
/// of the fast path's cost (bench.mjs times "the floor of this design" with it).
fn hot_clock(h: &Hot) -> Res<f64> {
    h.io[slot::CLOCK_AT].set(fine_ms(clock_ns(h)));
    Ok(0.0)
}

extern "C" fn clock_callback(
    _env: napi::sys::napi_env,
    _info: napi::sys::napi_callback_info,
) -> napi::sys::napi_value {
    run_hot(hot_clock);
    std::ptr::null_mut()
}

/// The napi callback of `hotPick()` (`PICK`) or `hotRecord()`: no arguments, returns
/// `undefined`; the results are in the shared buffer. Never unwinds (see [`run_hot`]).
extern "C" fn hot_callback<const PICK: bool>(
    _env: napi::sys::napi_env,
    _info: napi::sys::napi_callback_info,
) -> napi::sys::napi_value {
    run_hot(if PICK { hot_pick } else { hot_record });
    std::ptr::null_mut()
}

/// Adds `hotPick`, `hotRecord` and `hotClock` to the module's exports as plain napi functions: as
/// `#[napi]` functions, `pick+record` measured about 30 ns slower (bench.mjs, interleaved runs,
/// 2026-11-29), and the first two run on every request.
#[napi(module_exports)]
pub fn export_hot_functions(mut exports: Object, env: Env) -> napi::Result<()> {
    exports.set(
        "hotPick",
        env.create_function::<(), ()>("hotPick", hot_callback::<true>)?,
    )?;
    exports.set(
        "hotRecord",
        env.create_function::<(), ()>("hotRecord", hot_callback::<false>)?,
    )?;
    exports.set(
        "hotClock",
        env.create_function::<(), ()>("hotClock", clock_callback)?,
    )?;
    crate::hot_request::export(&mut exports, &env)
}
