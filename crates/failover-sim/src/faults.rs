//! The fault model: what each provider answers, when. Per provider a latency distribution and a
//! background error rate, plus time intervals with an error kind and rate, a latency of their
//! own and `Retry-After` values; and the traffic (a rate with bursts). Seeded, so a run is
//! reproducible. The built-in default is `defaults/outage.json`.

use failover_core::{Outcome, OutcomeKind};

use crate::input::{Doc, InputError, Node};
use crate::rng::Rng;
use crate::world::World;

/// The built-in fault model, printed by `--print-faults`.
pub const DEFAULT: &str = include_str!("../defaults/outage.json");

/// Most requests one run simulates (memory stays in the hundreds of MB).
pub const MAX_REQUESTS: f64 = 20_000_000.0;

/// A latency distribution: log-normal from a median and a 99th percentile (equal: constant).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Latency {
    /// Median, ms.
    pub median: f64,
    /// Log-normal sigma.
    pub sigma: f64,
}

impl Latency {
    /// Probability that a call takes at least `ms` (log-normal tail).
    #[must_use]
    pub fn tail(&self, ms: f64) -> f64 {
        if self.sigma <= 0.0 {
            return if self.median >= ms { 1.0 } else { 0.0 };
        }
        let z = (ms / self.median).ln() / self.sigma;
        0.5 * erfc(z / std::f64::consts::SQRT_2)
    }

    fn sample(&self, rng: &mut Rng) -> f64 {
        let z = rng.normal();
        self.median * (self.sigma * z).exp()
    }

    fn parse(n: &Node<'_>) -> Result<Latency, InputError> {
        if n.value.is_number() {
            let m = n.f64()?;
            if m < 0.0 {
                return Err(n.err("must not be negative"));
            }
            return Ok(Latency {
                median: m,
                sigma: 0.0,
            });
        }
        n.only(&["median", "p99"])?;
        let med = n.req("median")?;
        let median = med.f64()?;
        if median <= 0.0 {
            return Err(med.err("must be a positive number of milliseconds"));
        }
        let p99 = match n.get("p99")? {
            None => median,
            Some(p) => {
                let v = p.f64()?;
                if v < median {
                    return Err(p.err(format!("must be at least the median ({median})")));
                }
                v
            }
        };
        // The 99th percentile of a standard normal is 2.3263.
        Ok(Latency {
            median,
            sigma: (p99 / median).ln() / 2.326_3,
        })
    }
}

/// The complementary error function (Numerical Recipes' erfcc, relative error < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// One fault interval of a provider.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    /// Start, ms from the start of the run.
    pub from: u64,
    /// End (exclusive), ms.
    pub to: u64,
    /// The failure injected, if any.
    pub kind: Option<OutcomeKind>,
    /// Fraction of calls that get it.
    pub rate: f64,
    /// `Retry-After` sent with it: uniform in [lo, hi] ms.
    pub retry_after: Option<(u64, u64)>,
    /// Latency of calls in the interval, replacing the provider's.
    pub latency: Option<Latency>,
    /// A free-text label for reports.
    pub note: Option<String>,
}

/// One provider's behaviour.
#[derive(Clone, Debug, PartialEq)]
pub struct ProviderModel {
    /// Its name (priority order is the file's order).
    pub name: String,
    /// Latency of its calls.
    pub latency: Latency,
    /// Background fraction of server errors.
    pub error_rate: f64,
    /// Fault intervals.
    pub faults: Vec<Fault>,
}

/// Request bursts: the rate is multiplied by `factor` for `length` every `every`, and within
/// explicit intervals.
#[derive(Clone, Debug, PartialEq)]
pub struct Traffic {
    /// Requests per second outside bursts.
    pub rate_per_s: f64,
    /// Poisson (random gaps) or uniform (fixed gaps) arrivals.
    pub poisson: bool,
    /// Periodic bursts: (every, length, factor).
    pub periodic: Option<(u64, u64, f64)>,
    /// Explicit bursts: (from, to, factor).
    pub bursts: Vec<(u64, u64, f64)>,
}

impl Traffic {
    fn rate_at(&self, t: u64) -> f64 {
        let mut r = self.rate_per_s;
        if let Some((every, length, factor)) = self.periodic
            && t % every < length
        {
            r *= factor;
        }
        for &(from, to, factor) in &self.bursts {
            if (from..to).contains(&t) {
                r *= factor;
            }
        }
        r
    }

    /// Average rate over the run's sampled points (for the header and the size check).
    pub fn expected_requests(&self, duration_ms: u64) -> f64 {
        let steps = 2000u64;
        let dt = (duration_ms / steps).max(1);
        let mut total = 0.0;
        let mut t = 0;
        while t < duration_ms {
            total += self.rate_at(t) * dt.min(duration_ms - t) as f64 / 1000.0;
            t += dt;
        }
        total
    }
}

/// A whole fault model.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultModel {
    /// Shown in reports.
    pub name: String,
    /// Shown in reports.
    pub description: String,
    /// Seeds arrivals and answers.
    pub seed: u64,
    /// Length of the run, ms.
    pub duration_ms: u64,
    /// The caller's per-call timeout: a timeout takes this long, and a slower success is one.
    pub timeout_ms: u64,
    /// The traffic.
    pub traffic: Traffic,
    /// The providers, in priority order.
    pub providers: Vec<ProviderModel>,
    /// The line of the `providers` field, for errors about the provider list.
    pub providers_line: usize,
    names: Vec<String>,
}

impl FaultModel {
    /// The built-in model.
    pub fn builtin() -> FaultModel {
        FaultModel::parse("built-in fault model", DEFAULT).expect("the built-in model is valid")
    }

    /// Parses a fault-model file.
    pub fn parse(file: &str, text: &str) -> Result<FaultModel, InputError> {
        let doc = Doc::parse(file, text.to_string())?;
        let root = doc.root();
        root.only(&[
            "name",
            "description",
            "seed",
            "duration",
            "timeout_ms",
            "traffic",
            "providers",
        ])?;
        let name = match root.get("name")? {
            Some(n) => n.str()?.to_string(),
            None => file.to_string(),
        };
        let description = match root.get("description")? {
            Some(n) => n.str()?.to_string(),
            None => String::new(),
        };
        let seed = match root.get("seed")? {
            Some(n) => n.u64()?,
            None => 0,
        };
        let dn = root.req("duration")?;
        let duration_ms = dn.duration()?;
        if !(1000..=366 * 86_400_000).contains(&duration_ms) {
            return Err(dn.err("must be between one second and a year"));
        }
        let timeout_ms = match root.get("timeout_ms")? {
            Some(n) => {
                let t = n.duration()?;
                if t == 0 || t > u64::from(u32::MAX) {
                    return Err(n.err("must be between 1 ms and 49 days"));
                }
                t
            }
            None => 30_000,
        };
        let traffic = parse_traffic(&root.req("traffic")?, duration_ms)?;
        let pn = root.req("providers")?;
        let items = pn.items()?;
        if items.is_empty() {
            return Err(pn.err("needs at least one provider"));
        }
        let mut providers: Vec<ProviderModel> = Vec::new();
        for item in &items {
            let p = parse_provider(item, duration_ms)?;
            if providers.iter().any(|q| q.name == p.name) {
                return Err(item
                    .req("name")?
                    .err(format!("provider `{}` is listed twice", p.name)));
            }
            providers.push(p);
        }
        let expected = traffic.expected_requests(duration_ms);
        if expected > MAX_REQUESTS {
            return Err(root.req("traffic")?.err(format!(
                "about {expected:.0} requests: more than this simulator runs at once ({MAX_REQUESTS:.0}); shorten `duration` or lower `rate_per_s`"
            )));
        }
        let names = providers.iter().map(|p| p.name.clone()).collect();
        let providers_line = doc.line_of(&[crate::input::Seg::Key("providers".to_string())]);
        Ok(FaultModel {
            providers_line,
            name,
            description,
            seed,
            duration_ms,
            timeout_ms,
            traffic,
            providers,
            names,
        })
    }

    /// A model built in code (the year mode's), not parsed from a file.
    #[must_use]
    pub fn from_parts(
        name: &str,
        seed: u64,
        duration_ms: u64,
        timeout_ms: u64,
        traffic: Traffic,
        providers: Vec<ProviderModel>,
    ) -> FaultModel {
        let names = providers.iter().map(|p| p.name.clone()).collect();
        FaultModel {
            name: name.to_string(),
            description: String::new(),
            seed,
            duration_ms,
            timeout_ms,
            traffic,
            providers,
            providers_line: 0,
            names,
        }
    }

    /// Request arrival times, ms, sorted.
    pub fn arrivals(&self) -> Vec<u64> {
        let mut rng = Rng::keyed(&[self.seed, 0xA881_7A15]);
        let mut out = Vec::with_capacity(
            self.traffic
                .expected_requests(self.duration_ms)
                .min(MAX_REQUESTS) as usize
                + 16,
        );
        let mut t = 0f64;
        let end = self.duration_ms as f64;
        while t < end && (out.len() as f64) < MAX_REQUESTS * 1.1 {
            let rate_per_ms = self.traffic.rate_at(t as u64) / 1000.0;
            let gap = if self.traffic.poisson {
                rng.exp(1.0 / rate_per_ms)
            } else {
                1.0 / rate_per_ms
            };
            t += gap;
            if t < end {
                out.push(t as u64);
            }
        }
        out
    }
}

fn parse_traffic(n: &Node<'_>, duration_ms: u64) -> Result<Traffic, InputError> {
    n.only(&["rate_per_s", "arrivals", "bursts"])?;
    let rn = n.req("rate_per_s")?;
    let rate_per_s = rn.f64()?;
    if !(rate_per_s > 0.0 && rate_per_s <= 100_000.0) {
        return Err(rn.err("must be above 0 and at most 100000 requests per second"));
    }
    let poisson = match n.get("arrivals")? {
        None => true,
        Some(a) => match a.str()? {
            "poisson" => true,
            "uniform" => false,
            other => {
                return Err(a.err(format!(
                    "must be \"poisson\" or \"uniform\", got \"{other}\""
                )));
            }
        },
    };
    let factor = |f: &Node<'_>| -> Result<f64, InputError> {
        let x = f.f64()?;
        if x > 0.0 && x <= 1000.0 {
            Ok(x)
        } else {
            Err(f.err("must be above 0 and at most 1000"))
        }
    };
    let mut periodic = None;
    let mut bursts = Vec::new();
    if let Some(b) = n.get("bursts")? {
        let list = if b.value.is_object() {
            vec![b]
        } else {
            b.items()?
        };
        for item in list {
            let f = factor(&item.req("factor")?)?;
            if item.get("every")?.is_some() {
                item.only(&["every", "length", "factor"])?;
                let en = item.req("every")?;
                let every = en.duration()?;
                let ln = item.req("length")?;
                let length = ln.duration()?;
                if every == 0 {
                    return Err(en.err("must be positive"));
                }
                if length == 0 || length > every {
                    return Err(ln.err("must be positive and at most `every`"));
                }
                if periodic.is_some() {
                    return Err(item.err("only one periodic burst (`every`) is supported"));
                }
                periodic = Some((every, length, f));
            } else {
                item.only(&["from", "to", "factor"])?;
                let (from, to) = interval(&item, duration_ms)?;
                bursts.push((from, to, f));
            }
        }
    }
    Ok(Traffic {
        rate_per_s,
        poisson,
        periodic,
        bursts,
    })
}

fn interval(n: &Node<'_>, _duration_ms: u64) -> Result<(u64, u64), InputError> {
    let from = n.req("from")?.duration()?;
    let tn = n.req("to")?;
    let to = tn.duration()?;
    if to <= from {
        return Err(tn.err("must be after `from`"));
    }
    Ok((from, to))
}

fn parse_provider(n: &Node<'_>, duration_ms: u64) -> Result<ProviderModel, InputError> {
    n.only(&["name", "latency_ms", "error_rate", "faults"])?;
    let nn = n.req("name")?;
    let name = nn.str()?.to_string();
    if name.is_empty() {
        return Err(nn.err("must not be empty"));
    }
    let latency = match n.get("latency_ms")? {
        Some(l) => Latency::parse(&l)?,
        None => Latency {
            median: 1000.0,
            sigma: 0.5,
        },
    };
    let error_rate = match n.get("error_rate")? {
        Some(e) => e.fraction()?,
        None => 0.0,
    };
    let mut faults = Vec::new();
    if let Some(fl) = n.get("faults")? {
        for f in fl.items()? {
            faults.push(parse_fault(&f, duration_ms)?);
        }
    }
    Ok(ProviderModel {
        name,
        latency,
        error_rate,
        faults,
    })
}

fn parse_fault(n: &Node<'_>, duration_ms: u64) -> Result<Fault, InputError> {
    n.only(&[
        "from",
        "to",
        "kind",
        "rate",
        "retry_after_ms",
        "latency_ms",
        "note",
    ])?;
    let (from, to) = interval(n, duration_ms)?;
    let kind = match n.get("kind")? {
        None => None,
        Some(k) => {
            let s = k.str()?;
            let kind = OutcomeKind::from_name(s).filter(|k| *k != OutcomeKind::Success);
            Some(kind.ok_or_else(|| {
                k.err(format!(
                    "unknown kind \"{s}\" (expected one of: server_error, connection_error, timeout, rate_limited, client_error, cancelled)"
                ))
            })?)
        }
    };
    let rate = match n.get("rate")? {
        Some(r) => r.fraction()?,
        None => 1.0,
    };
    let retry_after = match n.get("retry_after_ms")? {
        None => None,
        Some(r) if r.value.is_array() => {
            let items = r.items()?;
            if items.len() != 2 {
                return Err(r.err("must be a duration or a [min, max] pair of durations"));
            }
            let lo = items[0].duration()?;
            let hi = items[1].duration()?;
            if hi < lo {
                return Err(items[1].err("the maximum must be at least the minimum"));
            }
            Some((lo, hi))
        }
        Some(r) => {
            let v = r.duration()?;
            Some((v, v))
        }
    };
    let latency = match n.get("latency_ms")? {
        Some(l) => Some(Latency::parse(&l)?),
        None => None,
    };
    if kind.is_none() && latency.is_none() {
        return Err(
            n.err("a fault needs a `kind` (an error to inject) or a `latency_ms` (slow calls)")
        );
    }
    if retry_after.is_some() && kind.is_none() {
        return Err(n
            .req("retry_after_ms")?
            .err("needs a `kind` to send it with"));
    }
    let note = match n.get("note")? {
        Some(s) => Some(s.str()?.to_string()),
        None => None,
    };
    Ok(Fault {
        from,
        to,
        kind,
        rate,
        retry_after,
        latency,
        note,
    })
}

impl World for FaultModel {
    fn providers(&self) -> &[String] {
        &self.names
    }

    fn call(&self, p: usize, key: u64, at: u64) -> Outcome {
        let m = &self.providers[p];
        let mut rng = Rng::keyed(&[self.seed, p as u64, key]);
        let mut latency = m.latency;
        let mut failure: Option<(OutcomeKind, Option<u64>)> = None;
        if rng.f64() < m.error_rate {
            failure = Some((OutcomeKind::ServerError, None));
        }
        for f in &m.faults {
            if !(f.from..f.to).contains(&at) {
                continue;
            }
            if let Some(l) = f.latency {
                latency = l;
            }
            // Always draw, so one fault's draw does not shift another's.
            let u = rng.f64();
            let ra = f.retry_after.map(|(lo, hi)| rng.range(lo, hi));
            if failure.is_none()
                && let Some(kind) = f.kind
                && u < f.rate
            {
                failure = Some((kind, ra));
            }
        }
        let sample = latency.sample(&mut rng).max(1.0);
        let timeout = self.timeout_ms as f64;
        let ms = |x: f64| x.clamp(1.0, timeout) as u32;
        match failure {
            None if sample >= timeout => Outcome::timeout(ms(timeout)),
            None => Outcome::success(ms(sample)),
            Some((kind, retry_after_ms)) => {
                let latency_ms = match kind {
                    OutcomeKind::Timeout => ms(timeout),
                    OutcomeKind::ConnectionError => rng.range(20, 200) as u32,
                    OutcomeKind::RateLimited => rng.range(30, 150) as u32,
                    OutcomeKind::ServerError => ms(sample * 0.25),
                    _ => ms(sample * 0.1),
                };
                Outcome {
                    kind,
                    latency_ms,
                    retry_after_ms,
                }
            }
        }
    }

    fn error_rate(&self, p: usize, from: u64, to: u64) -> Option<f64> {
        let m = &self.providers[p];
        let steps = 16u64;
        let span = to.saturating_sub(from).max(1);
        let mut total = 0.0;
        for i in 0..steps {
            let t = from + span * (2 * i + 1) / (2 * steps);
            let mut ok = 1.0 - m.error_rate;
            for f in &m.faults {
                if (f.from..f.to).contains(&t) && f.kind.is_some() {
                    ok *= 1.0 - f.rate;
                }
            }
            total += 1.0 - ok;
        }
        Some(total / steps as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_parses_and_is_about_twenty_per_second() {
        let m = FaultModel::builtin();
        assert_eq!(m.providers.len(), 3);
        let a = m.arrivals();
        let per_s = a.len() as f64 / (m.duration_ms as f64 / 1000.0);
        assert!((20.0..30.0).contains(&per_s), "{per_s}");
        assert!(a.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn same_key_same_answer() {
        let m = FaultModel::builtin();
        for k in 0..100 {
            assert_eq!(m.call(0, k, 5_000), m.call(0, k, 5_000));
        }
    }

    const SMALL: &str = r#"{"name": "m", "seed": 5, "duration": "2m", "timeout_ms": 30000,
        "traffic": {"rate_per_s": 5, "arrivals": "poisson",
                    "bursts": [{"every": "30s", "length": "5s", "factor": 2}, {"from": 0, "to": 10, "factor": 3}]},
        "providers": [{"name": "a", "latency_ms": {"median": 900, "p99": 4000}, "error_rate": 0.01,
                       "faults": [{"from": "10s", "to": "1m", "kind": "rate_limited", "rate": 0.5,
                                   "retry_after_ms": ["1s", "5s"], "latency_ms": 100, "note": "n"}]},
                      {"name": "b"}]}"#;

    /// Bad input never panics: every truncation and every junk value in every value's place is
    /// either refused with an error or simulated.
    #[test]
    fn mutations_never_panic() {
        let exercise = |m: &FaultModel| {
            let a = m.arrivals();
            for (k, &t) in a.iter().enumerate().take(50) {
                for p in 0..m.providers.len() {
                    let _ = m.call(p, k as u64, t);
                    let _ = m.error_rate(p, t, t + 1000);
                }
            }
        };
        exercise(&FaultModel::parse("small", SMALL).unwrap());
        for cut in 0..SMALL.len() {
            if SMALL.is_char_boundary(cut) {
                let _ = FaultModel::parse("cut", &SMALL[..cut]);
            }
        }
        let junk = [
            "-1",
            "0",
            "1e308",
            "-1e308",
            "0.5",
            "99999999999999999999",
            "\"\"",
            "\"x\"",
            "\"-5s\"",
            "\"1:2:3:4\"",
            "null",
            "true",
            "[]",
            "[1]",
            "[\"1s\",\"0s\"]",
            "{}",
        ];
        // Every value position: after a ':' or a '[' or ',' inside arrays.
        let bytes = SMALL.as_bytes();
        let mut starts = Vec::new();
        for (i, &b) in bytes.iter().enumerate() {
            if b == b':' {
                let mut j = i + 1;
                while bytes[j] == b' ' {
                    j += 1;
                }
                starts.push(j);
            }
        }
        for &s in &starts {
            // The value's end: the next ',' or '}' at the same depth (good enough for scalars;
            // for objects and lists we replace up to the matching bracket).
            let mut depth = 0i32;
            let mut e = s;
            let mut in_str = false;
            while e < bytes.len() {
                let c = bytes[e];
                if in_str {
                    if c == b'"' {
                        in_str = false;
                    }
                } else if c == b'"' {
                    in_str = true;
                } else if c == b'{' || c == b'[' {
                    depth += 1;
                } else if c == b'}' || c == b']' {
                    if depth == 0 {
                        break;
                    }
                    depth -= 1;
                } else if c == b',' && depth == 0 {
                    break;
                }
                e += 1;
            }
            for j in junk {
                let text = format!("{}{}{}", &SMALL[..s], j, &SMALL[e..]);
                if let Ok(m) = FaultModel::parse("mutated", &text) {
                    exercise(&m);
                }
            }
        }
    }

    #[test]
    fn errors_point_at_the_field() {
        let text = "{\n \"duration\": \"1h\",\n \"traffic\": {\"rate_per_s\": 5},\n \"providers\": [\n  {\"name\": \"a\",\n   \"faults\": [{\"from\": 0, \"to\": \"10m\", \"kind\": \"server_error\", \"rate\": 1.5}]}\n ]\n}";
        let e = FaultModel::parse("f.json", text).unwrap_err();
        assert_eq!(e.line, Some(6));
        assert_eq!(e.field.as_deref(), Some("providers[0].faults[0].rate"));
        let e = FaultModel::parse("f.json", "{\"duration\": \"1h\", \"traffic\": {\"rate_per_s\": 5}, \"providers\": [{\"name\": \"a\", \"latncy_ms\": 3}]}").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("providers[0].latncy_ms"));
        assert!(e.message.contains("unknown field"));
    }
}
