//! The simulation: requests arrive, a strategy picks a provider, the world answers after the call's
//! latency, failed attempts are retried on another provider within an attempt budget. Event
//! driven, so calls overlap as they do in a real service, and the engine sees every outcome at the
//! time it arrives. Three strategies run on the same arrivals and the same answers: no failover,
//! naive failover (the baseline most gateways implement) and the policy (the real engine).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use failover_core::{
    Action, DefaultRouter, Event, Outcome, OutcomeKind, PickRequest, ProviderSet, Ticket,
};

use crate::progress::Progress;
use crate::world::World;

/// A call decided by a strategy.
#[derive(Clone, Copy, Debug)]
pub struct Call {
    /// Provider index.
    pub provider: usize,
    /// The engine's ticket (policy only).
    pub ticket: Option<Ticket>,
    /// The engine's all-down fallback.
    pub degraded: bool,
}

/// A way of choosing providers.
pub trait Strategy {
    /// The provider for a request at `now` that already tried the providers in `tried` (a bit per
    /// provider index), or `None` to fail the request.
    fn pick(&mut self, now: u64, tried: u64) -> Option<Call>;
    /// The outcome of a call, at `now`.
    fn record(&mut self, call: &Call, outcome: &Outcome, now: u64);
    /// [`Strategy::pick`] for request `req` (a strategy of several instances routes by it).
    fn pick_for(&mut self, _req: u32, now: u64, tried: u64) -> Option<Call> {
        self.pick(now, tried)
    }
    /// [`Strategy::record`] for request `req` (`None`: a health check).
    fn record_for(&mut self, _req: Option<u32>, call: &Call, outcome: &Outcome, now: u64) {
        self.record(call, outcome, now);
    }
    /// When [`Strategy::on_timer`] next has work.
    fn next_timer(&self) -> Option<u64> {
        None
    }
    /// Runs timers due at `now`; health checks to send go into `checks`.
    fn on_timer(&mut self, _now: u64, _checks: &mut Vec<Call>) {}
}

/// No failover: every request goes to the primary, once.
pub struct NoFailover;

impl Strategy for NoFailover {
    fn pick(&mut self, _now: u64, tried: u64) -> Option<Call> {
        (tried & 1 == 0).then_some(Call {
            provider: 0,
            ticket: None,
            degraded: false,
        })
    }
    fn record(&mut self, _: &Call, _: &Outcome, _: u64) {}
}

/// Naive failover, as most gateways do it: try providers in order; a provider that fails
/// `allowed_fails` calls in a row (429s included) cools down for a fixed time, then takes its
/// full traffic again at once. When every provider is cooling down or tried, the request fails.
pub struct Naive {
    allowed_fails: u32,
    cooldown_ms: u64,
    in_a_row: Vec<u32>,
    cooling_until: Vec<u64>,
}

impl Naive {
    /// A baseline over `n` providers.
    #[must_use]
    pub fn new(n: usize, allowed_fails: u32, cooldown_ms: u64) -> Naive {
        Naive {
            allowed_fails: allowed_fails.max(1),
            cooldown_ms,
            in_a_row: vec![0; n],
            cooling_until: vec![0; n],
        }
    }
}

impl Strategy for Naive {
    fn pick(&mut self, now: u64, tried: u64) -> Option<Call> {
        (0..self.cooling_until.len())
            .find(|&i| tried & (1 << i) == 0 && now >= self.cooling_until[i])
            .map(|provider| Call {
                provider,
                ticket: None,
                degraded: false,
            })
    }

    fn record(&mut self, call: &Call, outcome: &Outcome, now: u64) {
        let p = call.provider;
        if outcome.kind == OutcomeKind::Success {
            self.in_a_row[p] = 0;
        }
        if !is_failure(outcome.kind) || now < self.cooling_until[p] {
            return;
        }
        self.in_a_row[p] += 1;
        if self.in_a_row[p] >= self.allowed_fails {
            self.cooling_until[p] = now.saturating_add(self.cooldown_ms);
            self.in_a_row[p] = 0;
        }
    }
}

/// The chosen policy: the real engine, with its events kept for the timeline.
pub struct PolicyStrategy {
    /// The engine.
    pub router: Box<DefaultRouter>,
    /// Every event, in order.
    pub events: Vec<Event>,
    stalled_at: Option<u64>,
}

impl PolicyStrategy {
    /// Wraps a router.
    #[must_use]
    pub fn new(router: Box<DefaultRouter>) -> PolicyStrategy {
        PolicyStrategy {
            router,
            events: Vec::new(),
            stalled_at: None,
        }
    }

    fn drain(&mut self) {
        while let Some(e) = self.router.poll_event() {
            self.events.push(e);
        }
    }
}

impl Strategy for PolicyStrategy {
    fn pick(&mut self, now: u64, tried: u64) -> Option<Call> {
        let mut set = ProviderSet::new();
        for i in 0..self.router.len() {
            if tried & (1 << i) != 0
                && let Some(id) = self.router.provider_at(i)
            {
                set.insert(id);
            }
        }
        let req = PickRequest {
            key: None,
            tried: set,
        };
        let r = self.router.pick_with(now, &req);
        self.drain();
        r.ok().map(|t| Call {
            provider: t.provider.index(),
            ticket: Some(t),
            degraded: t.degraded,
        })
    }

    fn record(&mut self, call: &Call, outcome: &Outcome, now: u64) {
        if let Some(t) = &call.ticket {
            self.router.record(t, *outcome, now);
        }
        self.drain();
    }

    fn next_timer(&self) -> Option<u64> {
        let now = self.router.now();
        match self.router.poll_timeout() {
            Some(d) if d > now => Some(d),
            // A health check is due now.
            Some(_) if self.stalled_at != Some(now) => Some(now),
            _ => None,
        }
    }

    fn on_timer(&mut self, now: u64, checks: &mut Vec<Call>) {
        self.router.handle_timeout(now);
        self.drain();
        let before = checks.len();
        while let Some(Action::HealthCheck(t)) = self.router.poll_action(now) {
            checks.push(Call {
                provider: t.provider.index(),
                ticket: Some(t),
                degraded: false,
            });
        }
        self.drain();
        let now = self.router.now();
        self.stalled_at = (checks.len() == before
            && self.router.poll_timeout().is_some_and(|d| d <= now))
        .then_some(now);
    }
}

/// Failures a request is retried after (client errors and cancellations are not retried: another
/// provider would not do better).
#[must_use]
pub fn is_failure(kind: OutcomeKind) -> bool {
    !matches!(
        kind,
        OutcomeKind::Success | OutcomeKind::ClientError | OutcomeKind::Cancelled
    )
}

/// Per-provider totals of one run.
#[derive(Clone, Debug, Default)]
pub struct ProviderStats {
    /// Calls made (requests, retries, probes, health checks).
    pub calls: u64,
    /// Answers by outcome kind (index: `OutcomeKind as usize`).
    pub by_kind: [u64; OutcomeKind::ALL.len()],
    /// Requests it served.
    pub served: u64,
    /// Requests sent to it first.
    pub first: u64,
}

/// Time series of one run, in buckets of `bucket_ms`, flattened `[bucket * providers + p]`.
#[derive(Clone, Debug)]
pub struct Series {
    /// Time of the first bucket's start, ms.
    pub origin: u64,
    /// Bucket width, ms.
    pub bucket_ms: u64,
    /// Number of buckets.
    pub buckets: usize,
    /// Providers.
    pub providers: usize,
    /// Requests arrived.
    pub requests: Vec<u32>,
    /// Requests that arrived then and failed.
    pub failed: Vec<u32>,
    /// Requests sent first to each provider.
    pub first: Vec<u32>,
    /// Calls started to each provider.
    pub calls: Vec<u32>,
    /// Calls to each provider that failed.
    pub call_failures: Vec<u32>,
    /// Failed calls (all providers) by [`FailureGroup`], `[bucket * FailureGroup::ALL.len() + g]`,
    /// in the bucket the call started.
    pub failures_by_group: Vec<u32>,
    /// End-to-end latency of served requests, a histogram per bucket of arrival,
    /// `[bucket * LATENCY_BINS + bin]` (see [`latency_bin`]).
    pub latency: Vec<u32>,
}

/// What kind of failure a failed call was, for the charts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureGroup {
    /// 429 (rate limited, quota exhausted).
    RateLimited,
    /// 5xx and connection errors.
    Server,
    /// Timeouts.
    Timeout,
    /// Anything else (client errors, refusals, credentials, cancellations).
    Other,
}

impl FailureGroup {
    /// Every group, in chart order.
    pub const ALL: [FailureGroup; 4] = [
        FailureGroup::Server,
        FailureGroup::Timeout,
        FailureGroup::RateLimited,
        FailureGroup::Other,
    ];

    /// The group of a failed outcome.
    #[must_use]
    pub fn of(kind: OutcomeKind) -> FailureGroup {
        match kind {
            OutcomeKind::RateLimited | OutcomeKind::QuotaExhausted => FailureGroup::RateLimited,
            OutcomeKind::ServerError | OutcomeKind::ConnectionError => FailureGroup::Server,
            OutcomeKind::Timeout => FailureGroup::Timeout,
            _ => FailureGroup::Other,
        }
    }

    /// Index in [`FailureGroup::ALL`].
    #[must_use]
    pub fn index(self) -> usize {
        match self {
            FailureGroup::Server => 0,
            FailureGroup::Timeout => 1,
            FailureGroup::RateLimited => 2,
            FailureGroup::Other => 3,
        }
    }

    /// Legend text.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            FailureGroup::RateLimited => "429",
            FailureGroup::Server => "5xx / connection",
            FailureGroup::Timeout => "timeout",
            FailureGroup::Other => "other",
        }
    }
}

/// Bins of the per-bucket latency histogram: bin `i` holds latencies up to
/// [`latency_bin_edge`]`(i)`, 25 ms × 1.25^i (the last bin everything above).
pub const LATENCY_BINS: usize = 40;

/// The bins' upper edges, ms, in integer arithmetic so that binning a latency is a short search
/// rather than a logarithm (it runs once per served request, millions of times in a year).
const LATENCY_EDGES: [u32; LATENCY_BINS] = {
    let mut e = [0u32; LATENCY_BINS];
    let mut v: u64 = 25 << 20;
    let mut i = 0;
    while i < LATENCY_BINS {
        e[i] = (v >> 20) as u32;
        v = v * 5 / 4;
        i += 1;
    }
    e
};

/// The histogram bin of a latency, ms.
#[must_use]
pub fn latency_bin(ms: u32) -> usize {
    LATENCY_EDGES
        .partition_point(|&e| e < ms)
        .min(LATENCY_BINS - 1)
}

/// The upper edge of bin `i`, ms (a quantile read from the histogram is at most 25 % above the
/// true one).
#[must_use]
pub fn latency_bin_edge(i: usize) -> f64 {
    f64::from(LATENCY_EDGES[i.min(LATENCY_BINS - 1)])
}

impl Series {
    pub(crate) fn new(bucket_ms: u64, end_ms: u64, providers: usize) -> Series {
        Series::span(bucket_ms, 0, end_ms, providers)
    }

    /// Buckets covering `[start_ms, end_ms)` only.
    pub(crate) fn span(bucket_ms: u64, start_ms: u64, end_ms: u64, providers: usize) -> Series {
        let buckets = end_ms.saturating_sub(start_ms).div_ceil(bucket_ms).max(1) as usize;
        Series {
            origin: start_ms,
            bucket_ms,
            buckets,
            providers,
            requests: vec![0; buckets],
            failed: vec![0; buckets],
            first: vec![0; buckets * providers],
            calls: vec![0; buckets * providers],
            call_failures: vec![0; buckets * providers],
            failures_by_group: vec![0; buckets * FailureGroup::ALL.len()],
            latency: vec![0; buckets * LATENCY_BINS],
        }
    }

    /// Quantile `q` of the served requests' latency that arrived in buckets `[b0, b1)`, ms, from
    /// the histogram (the bin's upper edge); `None` when none was served.
    #[must_use]
    pub fn latency_quantile(&self, b0: usize, b1: usize, q: f64) -> Option<f64> {
        let mut bins = [0u64; LATENCY_BINS];
        for b in b0..b1.min(self.buckets) {
            for (i, n) in bins.iter_mut().enumerate() {
                *n += u64::from(self.latency[b * LATENCY_BINS + i]);
            }
        }
        let total: u64 = bins.iter().sum();
        if total == 0 {
            return None;
        }
        let want = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in bins.iter().enumerate() {
            seen += n;
            if seen >= want {
                return Some(latency_bin_edge(i));
            }
        }
        Some(latency_bin_edge(LATENCY_BINS - 1))
    }

    pub(crate) fn bucket(&self, t: u64) -> usize {
        ((t.saturating_sub(self.origin) / self.bucket_ms) as usize).min(self.buckets - 1)
    }
}

/// Everything one strategy's run produced.
#[derive(Clone, Debug)]
pub struct RunStats {
    /// Requests offered.
    pub requests: u64,
    /// Requests answered successfully.
    pub served: u64,
    /// Requests that failed.
    pub failed: u64,
    /// Requests that needed more than one attempt.
    pub retried: u64,
    /// Requests refused outright: the strategy had no provider to call for their first attempt.
    pub unavailable: u64,
    /// Calls made for requests (attempts), not counting health checks.
    pub attempts: u64,
    /// Attempts that failed.
    pub failed_attempts: u64,
    /// Calls made on the engine's all-down fallback.
    pub degraded: u64,
    /// Health checks sent.
    pub health_checks: u64,
    /// Per provider.
    pub providers: Vec<ProviderStats>,
    /// End-to-end latency of served requests, ms (arrival to answer, retries included).
    pub latencies: Vec<u32>,
    /// Over time.
    pub series: Series,
}

impl RunStats {
    /// served / requests.
    #[must_use]
    pub fn availability(&self) -> f64 {
        if self.requests == 0 {
            1.0
        } else {
            self.served as f64 / self.requests as f64
        }
    }

    /// A latency quantile of served requests, ms.
    #[must_use]
    pub fn latency_quantile(&self, q: f64) -> Option<u32> {
        if self.latencies.is_empty() {
            return None;
        }
        let mut v = self.latencies.clone();
        let k = ((v.len() - 1) as f64 * q).round() as usize;
        let (_, x, _) = v.select_nth_unstable(k);
        Some(*x)
    }
}

/// Run options shared by the three strategies.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Attempts per request (first call included).
    pub attempts: u32,
    /// Series bucket width, ms.
    pub bucket_ms: u64,
    /// Where the series start, ms (0 for a whole run).
    pub start_ms: u64,
    /// Where the series end, ms.
    pub end_ms: u64,
}

/// Health checks use keys in their own range so they never share an answer with a request.
const CHECK_KEYS: u64 = 1 << 62;

struct Pending {
    at: u64,
    seq: u64,
    /// Request index, or `None` for a health check.
    req: Option<u32>,
    arrival: u64,
    attempt: u32,
    tried: u64,
    call: Call,
    outcome: Outcome,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    /// Reversed, so the heap pops the earliest (then the first scheduled).
    fn cmp(&self, o: &Self) -> Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

struct Sim<'a, S: Strategy> {
    world: &'a dyn World,
    s: &'a mut S,
    opt: Options,
    heap: BinaryHeap<Pending>,
    seq: u64,
    checks: u64,
    st: RunStats,
}

impl<S: Strategy> Sim<'_, S> {
    fn start(
        &mut self,
        req: Option<u32>,
        arrival: u64,
        attempt: u32,
        tried: u64,
        call: Call,
        now: u64,
    ) {
        let p = call.provider;
        let key = match req {
            Some(r) => u64::from(r),
            None => {
                self.checks += 1;
                CHECK_KEYS + self.checks
            }
        };
        let outcome = self.world.call(p, key, now);
        let b = self.st.series.bucket(now);
        let np = self.st.series.providers;
        self.st.series.calls[b * np + p] += 1;
        self.st.providers[p].calls += 1;
        match req {
            Some(_) => {
                self.st.attempts += 1;
                self.st.degraded += u64::from(call.degraded);
            }
            None => self.st.health_checks += 1,
        }
        self.seq += 1;
        self.heap.push(Pending {
            at: now.saturating_add(u64::from(outcome.latency_ms)),
            seq: self.seq,
            req,
            arrival,
            attempt,
            tried,
            call,
            outcome,
        });
    }

    fn attempt(&mut self, req: u32, arrival: u64, attempt: u32, tried: u64, now: u64) {
        if attempt == 0 {
            let b = self.st.series.bucket(arrival);
            self.st.series.requests[b] += 1;
        }
        match self.s.pick_for(req, now, tried) {
            Some(call) => {
                if attempt == 1 {
                    self.st.retried += 1;
                }
                if attempt == 0 {
                    let b = self.st.series.bucket(arrival);
                    let np = self.st.series.providers;
                    self.st.series.first[b * np + call.provider] += 1;
                    self.st.providers[call.provider].first += 1;
                }
                self.start(Some(req), arrival, attempt, tried, call, now);
            }
            None => {
                if attempt == 0 {
                    self.st.unavailable += 1;
                }
                self.fail(arrival);
            }
        }
    }

    fn fail(&mut self, arrival: u64) {
        self.st.failed += 1;
        let b = self.st.series.bucket(arrival);
        self.st.series.failed[b] += 1;
    }

    fn complete(&mut self, p: Pending) {
        let Pending {
            at,
            req,
            arrival,
            attempt,
            tried,
            call,
            outcome,
            ..
        } = p;
        self.s.record_for(req, &call, &outcome, at);
        let pr = call.provider;
        self.st.providers[pr].by_kind[outcome.kind as usize] += 1;
        let failure = outcome.kind != OutcomeKind::Success;
        if failure {
            let b = self
                .st
                .series
                .bucket(at.saturating_sub(u64::from(outcome.latency_ms)));
            let np = self.st.series.providers;
            self.st.series.call_failures[b * np + pr] += 1;
            let g = FailureGroup::of(outcome.kind).index();
            self.st.series.failures_by_group[b * FailureGroup::ALL.len() + g] += 1;
        }
        let Some(req) = req else { return };
        if !failure {
            self.st.served += 1;
            self.st.providers[pr].served += 1;
            let ms = u32::try_from(at - arrival).unwrap_or(u32::MAX);
            self.st.latencies.push(ms);
            let b = self.st.series.bucket(arrival);
            self.st.series.latency[b * LATENCY_BINS + latency_bin(ms)] += 1;
            return;
        }
        self.st.failed_attempts += 1;
        if is_failure(outcome.kind) && attempt + 1 < self.opt.attempts {
            self.attempt(req, arrival, attempt + 1, tried | (1 << pr), at);
        } else {
            self.fail(arrival);
        }
    }
}

/// Runs one strategy over `arrivals` against `world`.
pub fn run<S: Strategy>(
    world: &dyn World,
    arrivals: &[u64],
    strategy: &mut S,
    opt: Options,
    progress: &mut Progress,
) -> RunStats {
    let n = world.providers().len();
    let mut sim = Sim {
        world,
        s: strategy,
        opt,
        heap: BinaryHeap::new(),
        seq: 0,
        checks: 0,
        st: RunStats {
            requests: arrivals.len() as u64,
            served: 0,
            failed: 0,
            retried: 0,
            unavailable: 0,
            attempts: 0,
            failed_attempts: 0,
            degraded: 0,
            health_checks: 0,
            providers: vec![ProviderStats::default(); n],
            latencies: Vec::with_capacity(arrivals.len()),
            series: Series::span(opt.bucket_ms, opt.start_ms, opt.end_ms, n),
        },
    };
    let mut next = 0usize;
    let mut checks = Vec::new();
    loop {
        let ta = arrivals.get(next).copied().unwrap_or(u64::MAX);
        let tc = sim.heap.peek().map_or(u64::MAX, |p| p.at);
        let tt = sim.s.next_timer().unwrap_or(u64::MAX);
        if ta == u64::MAX && tc == u64::MAX {
            break;
        }
        if tt <= ta && tt <= tc {
            sim.s.on_timer(tt, &mut checks);
            for c in checks.drain(..) {
                sim.start(None, tt, 0, 0, c, tt);
            }
        } else if tc <= ta {
            let p = sim.heap.pop().expect("peeked");
            sim.complete(p);
        } else {
            sim.attempt(next as u32, ta, 0, 0, ta);
            next += 1;
            if next.is_multiple_of(8192) {
                progress.tick(next, arrivals.len());
            }
        }
    }
    sim.st
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::FaultModel;

    #[test]
    fn latency_bins_hold_what_their_edges_say() {
        assert_eq!(LATENCY_EDGES[0], 25);
        assert_eq!(LATENCY_EDGES[1], 31);
        assert_eq!(latency_bin(0), 0);
        assert_eq!(latency_bin(25), 0);
        assert_eq!(latency_bin(26), 1);
        assert_eq!(latency_bin(u32::MAX), LATENCY_BINS - 1);
        for ms in [100, 900, 6_000, 30_000] {
            let b = latency_bin(ms);
            assert!(
                latency_bin_edge(b) >= f64::from(ms) && latency_bin_edge(b - 1) < f64::from(ms)
            );
            assert!(latency_bin_edge(b) <= 1.25 * f64::from(ms) + 1.0, "{ms}");
        }
    }

    #[test]
    fn no_failover_only_calls_the_primary() {
        let m = FaultModel::builtin();
        let arrivals: Vec<u64> = m.arrivals().into_iter().take(5000).collect();
        let opt = Options {
            attempts: 3,
            bucket_ms: 60_000,
            start_ms: 0,
            end_ms: m.duration_ms,
        };
        let st = run(&m, &arrivals, &mut NoFailover, opt, &mut Progress::quiet());
        let binned: u32 = st.series.latency.iter().sum();
        assert_eq!(
            u64::from(binned),
            st.served,
            "every served request binned once"
        );
        assert_eq!(st.requests, 5000);
        assert_eq!(st.served + st.failed, 5000);
        assert_eq!(st.providers[0].calls, 5000);
        assert_eq!(st.providers[1].calls + st.providers[2].calls, 0);
    }
}
