//! A real request log replayed against a policy: "what would this policy have done that day?"
//!
//! Each line is one call: when it was made, to which provider, and what came back (an outcome kind
//! or an HTTP status, which the core classifies), optionally its latency, `Retry-After` and a
//! request id grouping the attempts of one request. CSV (with a header) or JSON lines.
//!
//! The log says what each provider answered when it was called. To answer a call the log never
//! made, the replay draws one of that provider's logged answers from the same time bucket (a
//! minute by default), or from the nearest bucket that has any; those answers are counted as
//! borrowed, and the report says how many there were.

use std::cell::Cell;
use std::collections::HashMap;

use failover_core::{Outcome, OutcomeKind};

use crate::input::{InputError, dur};

/// The longest trace replayed: a year.
const MAX_SPAN_MS: u64 = 366 * 86_400_000;
use crate::progress::Progress;
use crate::rng::Rng;
use crate::run::{FailureGroup, LATENCY_BINS, ProviderStats, RunStats, Series, latency_bin};
use crate::world::World;

/// One logged call.
#[derive(Clone, Copy, Debug)]
struct Entry {
    /// ms since the first line.
    at: u64,
    provider: usize,
    outcome: Outcome,
    /// Index of its request.
    request: u32,
}

/// A loaded trace.
pub struct Trace {
    /// The file.
    pub file: String,
    /// Provider names in priority order.
    pub names: Vec<String>,
    /// Unix ms of the first line, if the timestamps were absolute.
    pub start_unix_ms: Option<u64>,
    /// From the first line to the last call's end, ms.
    pub duration_ms: u64,
    /// Request arrival times, ms since the start, sorted.
    pub arrivals: Vec<u64>,
    /// Lines read.
    pub lines: usize,
    entries: Vec<Entry>,
    bucket_ms: u64,
    /// Per provider: offsets into `by_provider` per bucket (CSR, buckets + 1 entries).
    offsets: Vec<Vec<u32>>,
    by_provider: Vec<Vec<Outcome>>,
    /// Per provider and bucket: the nearest bucket with any answer.
    nearest: Vec<Vec<u32>>,
    seed: u64,
    borrowed: Cell<u64>,
    answered: Cell<u64>,
}

mod read;

use read::{Raw, read_csv, read_jsonl};
#[cfg(test)]
use read::{parse_rfc3339, split_csv};

impl Trace {
    /// Loads a CSV or JSONL trace. `order` sets the providers' priority; by default the provider
    /// with the most calls comes first.
    pub fn load(
        file: &str,
        text: &str,
        order: Option<&[String]>,
        bucket_ms: u64,
        seed: u64,
        progress: &mut Progress,
    ) -> Result<Trace, InputError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let first = text.lines().find(|l| !l.trim().is_empty());
        let Some(first) = first else {
            return Err(InputError::file(file, "the trace is empty"));
        };
        progress.phase("reading trace");
        let raws = if first.trim_start().starts_with('{') {
            read_jsonl(file, text, progress)?
        } else {
            read_csv(file, text, progress)?
        };
        if raws.is_empty() {
            return Err(InputError::file(
                file,
                "the trace has a header but no calls",
            ));
        }
        Trace::build(file, raws, order, bucket_ms, seed)
    }

    fn build(
        file: &str,
        mut raws: Vec<Raw>,
        order: Option<&[String]>,
        bucket_ms: u64,
        seed: u64,
    ) -> Result<Trace, InputError> {
        let lines = raws.len();
        raws.sort_by_key(|r| r.at_ms);
        let t0 = raws[0].at_ms;
        // Providers: by call count, then first appearance.
        let mut seen: Vec<(String, usize, usize)> = Vec::new();
        for (i, r) in raws.iter().enumerate() {
            match seen.iter_mut().find(|s| s.0 == r.provider) {
                Some(s) => s.1 += 1,
                None => seen.push((r.provider.clone(), 1, i)),
            }
        }
        let names: Vec<String> = match order {
            Some(order) => {
                for (name, _, i) in &seen {
                    if !order.contains(name) {
                        return Err(InputError::at(
                            file,
                            raws[*i].line,
                            Some("provider"),
                            format!(
                                "`{name}` is in the trace but not in --providers (the trace has: {})",
                                seen.iter()
                                    .map(|s| s.0.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        ));
                    }
                }
                for name in order {
                    if !seen.iter().any(|s| &s.0 == name) {
                        return Err(InputError::file(
                            "--providers",
                            format!(
                                "`{name}` never appears in {file}: nothing to replay its answers from"
                            ),
                        ));
                    }
                }
                order.to_vec()
            }
            None => {
                seen.sort_by(|a, b| b.1.cmp(&a.1).then(a.2.cmp(&b.2)));
                seen.into_iter().map(|s| s.0).collect()
            }
        };
        let index: HashMap<&str, usize> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        // Requests: lines sharing a request id are one request, others one each.
        let mut ids: HashMap<String, u32> = HashMap::new();
        let mut arrivals: Vec<u64> = Vec::new();
        let mut entries = Vec::with_capacity(lines);
        let mut end = 0u64;
        for r in &raws {
            let at = r.at_ms - t0;
            let request = match &r.request {
                Some(id) => *ids.entry(id.clone()).or_insert_with(|| {
                    arrivals.push(at);
                    (arrivals.len() - 1) as u32
                }),
                None => {
                    arrivals.push(at);
                    (arrivals.len() - 1) as u32
                }
            };
            end = end.max(at.saturating_add(u64::from(r.outcome.latency_ms)));
            entries.push(Entry {
                at,
                provider: index[r.provider.as_str()],
                outcome: r.outcome,
                request,
            });
        }
        let duration_ms = end.max(1);
        if duration_ms > MAX_SPAN_MS || duration_ms / bucket_ms > 10_000_000 {
            return Err(InputError::at(
                file,
                raws.last().map_or(1, |r| r.line),
                None,
                format!(
                    "the trace spans {} from its first line (line {}) to its last: more than this \
                     replay handles (a year, and at most 10 million --trace-bucket windows)",
                    dur(duration_ms),
                    raws[0].line
                ),
            ));
        }
        // One more bucket than the span needs, so a call at the very end has one.
        let buckets = (duration_ms / bucket_ms + 1) as usize;
        let n = names.len();
        let mut counts = vec![vec![0u32; buckets + 1]; n];
        for e in &entries {
            counts[e.provider][(e.at / bucket_ms) as usize + 1] += 1;
        }
        let mut offsets = counts;
        for o in offsets.iter_mut() {
            for b in 1..=buckets {
                o[b] += o[b - 1];
            }
        }
        let mut by_provider: Vec<Vec<Outcome>> = (0..n)
            .map(|p| vec![Outcome::cancelled(); offsets[p][buckets] as usize])
            .collect();
        let mut fill: Vec<Vec<u32>> = offsets.iter().map(|o| o[..buckets].to_vec()).collect();
        for e in &entries {
            let b = (e.at / bucket_ms) as usize;
            let slot = &mut fill[e.provider][b];
            by_provider[e.provider][*slot as usize] = e.outcome;
            *slot += 1;
        }
        let nearest = offsets
            .iter()
            .map(|o| {
                let has = |b: usize| o[b + 1] > o[b];
                let mut near = vec![u32::MAX; buckets];
                let mut last: Option<usize> = None;
                for (b, slot) in near.iter_mut().enumerate() {
                    if has(b) {
                        last = Some(b);
                    }
                    if let Some(l) = last {
                        *slot = l as u32;
                    }
                }
                let mut next: Option<usize> = None;
                for b in (0..buckets).rev() {
                    if has(b) {
                        next = Some(b);
                    }
                    if let Some(nx) = next {
                        let cur = near[b];
                        if cur == u32::MAX || nx - b < b - cur as usize {
                            near[b] = nx as u32;
                        }
                    }
                }
                near
            })
            .collect();
        Ok(Trace {
            file: file.to_string(),
            names,
            start_unix_ms: (t0 > 0).then_some(t0),
            duration_ms,
            arrivals,
            lines,
            entries,
            bucket_ms,
            offsets,
            by_provider,
            nearest,
            seed,
            borrowed: Cell::new(0),
            answered: Cell::new(0),
        })
    }

    /// Answers drawn from another time bucket than the call's, and all answers drawn.
    #[must_use]
    pub fn borrowed(&self) -> (u64, u64) {
        (self.borrowed.get(), self.answered.get())
    }

    /// Resets the borrowed-answer counters (between strategies).
    pub fn reset_counters(&self) {
        self.borrowed.set(0);
        self.answered.set(0);
    }

    /// What actually happened, as logged, in the shape of a run.
    #[must_use]
    pub fn as_logged(&self, bucket_ms: u64, end_ms: u64) -> RunStats {
        let n = self.names.len();
        let nreq = self.arrivals.len();
        let mut series = Series::new(bucket_ms, end_ms, n);
        let mut providers = vec![ProviderStats::default(); n];
        let mut ok: Vec<Option<u64>> = vec![None; nreq];
        let mut calls_per_req = vec![0u32; nreq];
        let mut attempts = 0;
        let mut failed_attempts = 0;
        for e in &self.entries {
            let r = e.request as usize;
            let b = series.bucket(e.at);
            series.calls[b * n + e.provider] += 1;
            providers[e.provider].calls += 1;
            providers[e.provider].by_kind[e.outcome.kind as usize] += 1;
            attempts += 1;
            if calls_per_req[r] == 0 {
                let fb = series.bucket(self.arrivals[r]);
                series.first[fb * n + e.provider] += 1;
                providers[e.provider].first += 1;
            }
            calls_per_req[r] += 1;
            if e.outcome.kind == OutcomeKind::Success {
                if ok[r].is_none() {
                    providers[e.provider].served += 1;
                    ok[r] = Some(e.at + u64::from(e.outcome.latency_ms) - self.arrivals[r]);
                }
            } else {
                failed_attempts += 1;
                series.call_failures[b * n + e.provider] += 1;
                let g = FailureGroup::of(e.outcome.kind).index();
                series.failures_by_group[b * FailureGroup::ALL.len() + g] += 1;
            }
        }
        let mut latencies = Vec::with_capacity(nreq);
        let mut failed = 0;
        for (r, o) in ok.iter().enumerate() {
            let b = series.bucket(self.arrivals[r]);
            series.requests[b] += 1;
            match o {
                Some(l) => {
                    let ms = u32::try_from(*l).unwrap_or(u32::MAX);
                    latencies.push(ms);
                    series.latency[b * LATENCY_BINS + latency_bin(ms)] += 1;
                }
                None => {
                    failed += 1;
                    series.failed[b] += 1;
                }
            }
        }
        RunStats {
            requests: nreq as u64,
            served: nreq as u64 - failed,
            failed,
            retried: calls_per_req.iter().filter(|&&c| c > 1).count() as u64,
            unavailable: 0,
            attempts,
            failed_attempts,
            degraded: 0,
            health_checks: 0,
            providers,
            latencies,
            series,
        }
    }
}

impl World for Trace {
    fn providers(&self) -> &[String] {
        &self.names
    }

    fn call(&self, p: usize, key: u64, at: u64) -> Outcome {
        let o = &self.offsets[p];
        let buckets = o.len() - 1;
        let b = ((at / self.bucket_ms) as usize).min(buckets - 1);
        let nb = self.nearest[p][b] as usize;
        self.answered.set(self.answered.get() + 1);
        if nb != b {
            self.borrowed.set(self.borrowed.get() + 1);
        }
        let (lo, hi) = (o[nb] as usize, o[nb + 1] as usize);
        let mut rng = Rng::keyed(&[self.seed, p as u64, key]);
        let i = rng.range(lo as u64, hi as u64 - 1) as usize;
        self.by_provider[p][i]
    }

    fn error_rate(&self, p: usize, from: u64, to: u64) -> Option<f64> {
        let o = &self.offsets[p];
        let buckets = o.len() - 1;
        let b0 = ((from / self.bucket_ms) as usize).min(buckets - 1);
        let b1 = ((to.saturating_sub(1) / self.bucket_ms) as usize).clamp(b0, buckets - 1);
        let slice = &self.by_provider[p][o[b0] as usize..o[b1 + 1] as usize];
        if slice.is_empty() {
            return None;
        }
        let bad = slice
            .iter()
            .filter(|x| x.kind != OutcomeKind::Success)
            .count();
        Some(bad as f64 / slice.len() as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bad input never panics: truncations and junk in every field are refused or replayed.
    #[test]
    fn mutations_never_panic() {
        let csv = "timestamp_ms,provider,status,latency_ms,retry_after,request_id\n\
                   0,a,200,100,,r1\n60000,a,503,50,,r2\n60200,b,200,300,,r2\n120000,a,429,5,10,r3\n";
        let exercise = |t: &Trace| {
            for (k, &at) in t.arrivals.iter().enumerate() {
                for p in 0..t.names.len() {
                    let _ = t.call(p, k as u64, at);
                    let _ = t.call(p, k as u64, at + 10_000_000);
                    let _ = t.error_rate(p, at, at + 1);
                }
            }
            let _ = t.as_logged(1000, t.duration_ms);
        };
        let load = |text: &str| Trace::load("t.csv", text, None, 60_000, 1, &mut Progress::quiet());
        exercise(&load(csv).unwrap());
        for cut in 0..csv.len() {
            if let Ok(t) = load(&csv[..cut]) {
                exercise(&t);
            }
        }
        let junk = [
            "",
            "-1",
            "1e30",
            "x",
            "\"",
            "18446744073709551615",
            "99999999999999999999",
            "0.5",
            "2026-01-01T00:00:00Z",
        ];
        let lines: Vec<&str> = csv.lines().collect();
        for (li, line) in lines.iter().enumerate().skip(1) {
            let fields: Vec<&str> = line.split(',').collect();
            for fi in 0..fields.len() {
                for j in junk {
                    let mut f = fields.clone();
                    f[fi] = j;
                    let mut all = lines.clone();
                    let changed = f.join(",");
                    all[li] = &changed;
                    if let Ok(t) = load(&all.join("\n")) {
                        exercise(&t);
                    }
                }
            }
        }
        // The same as JSON lines, with odd values.
        for v in [
            "null",
            "-3",
            "1e400",
            "\"\"",
            "[]",
            "{}",
            "true",
            "1.5",
            "\"2026-11-20T14:00:00+25:00\"",
        ] {
            for key in [
                "timestamp",
                "timestamp_ms",
                "provider",
                "status",
                "outcome",
                "latency_ms",
                "retry_after_ms",
                "retry_after",
                "request_id",
            ] {
                let text = format!(
                    "{{\"timestamp_ms\": 5, \"provider\": \"a\", \"status\": 200}}\n{{\"timestamp_ms\": 9, \"provider\": \"a\", \"status\": 500, \"{key}\": {v}}}\n"
                );
                if let Ok(t) =
                    Trace::load("t.jsonl", &text, None, 60_000, 1, &mut Progress::quiet())
                {
                    exercise(&t);
                }
            }
        }
    }

    #[test]
    fn a_call_at_the_very_end_has_a_bucket() {
        let csv = "timestamp_ms,provider,status\n0,a,200\n60000,a,200\n";
        let t = Trace::load("t.csv", csv, None, 60_000, 1, &mut Progress::quiet()).unwrap();
        assert_eq!(t.call(0, 1, 60_000).kind, OutcomeKind::Success);
        let e = Trace::load(
            "t.csv",
            "timestamp_ms,provider,status\n0,a,200\n99999999999999,a,200\n",
            None,
            60_000,
            1,
            &mut Progress::quiet(),
        )
        .err()
        .unwrap();
        assert!(e.message.contains("the trace spans"), "{e}");
    }

    #[test]
    fn dates() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("1994-11-06T08:49:37Z"), Some(784_111_777_000));
        assert_eq!(
            parse_rfc3339("1994-11-06 09:49:37.5+01:00"),
            Some(784_111_777_500)
        );
        assert_eq!(parse_rfc3339("2000-02-29T00:00:00"), Some(951_782_400_000));
        assert_eq!(parse_rfc3339("2000-13-29T00:00:00"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn csv_quotes() {
        assert_eq!(
            split_csv("a,\"b,c\",\"d\"\"e\"").unwrap(),
            vec!["a", "b,c", "d\"e"]
        );
        assert!(split_csv("a,\"b").is_err());
    }

    #[test]
    fn csv_trace_and_borrowed_answers() {
        let csv =
            "timestamp_ms,provider,status,latency_ms\n0,a,200,100\n1000,a,500,50\n1000,b,200,300\n";
        let t = Trace::load("t.csv", csv, None, 60_000, 1, &mut Progress::quiet()).unwrap();
        assert_eq!(t.names, vec!["a", "b"]);
        assert_eq!(t.arrivals.len(), 3);
        let logged = t.as_logged(60_000, t.duration_ms);
        assert_eq!(logged.served, 2);
        let e = Trace::load(
            "t.csv",
            "timestamp_ms,provider,status\n0,a,abc\n",
            None,
            60_000,
            1,
            &mut Progress::quiet(),
        )
        .err()
        .unwrap();
        assert_eq!(
            e.to_string(),
            "t.csv:2: status: must be an HTTP status code, got \"abc\""
        );
    }
}
