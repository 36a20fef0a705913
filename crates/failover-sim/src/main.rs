//! `failover-sim`: see what a failover-core policy does during an outage.
//!
//! With no arguments it runs a built-in four-hour outage of three providers and prints a report:
//! the timeline of the engine's transitions with their reasons, the traffic share over time, and
//! the availability of no failover, naive failover and the policy on the same traffic and faults.
//! `--faults`, `--trace` and `--policy` change the inputs; `--json`, `--svg` and `--png` the outputs;
//! `scenario FILE` replays scenario files as JSON lines; `year` simulates a generated year of
//! incidents (see `year/mod.rs`). Run with `--help` for the details.
#![forbid(unsafe_code)]

mod app;
mod charts;
mod faults;
mod fleet;
mod input;
mod jsonout;
mod progress;
mod quota;
mod report;
mod rng;
mod run;
mod svg;
mod trace;
mod world;
mod year;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use app::Settings;
use input::{InputError, parse_duration};

const USAGE: &str = "\
failover-sim: see what a failover policy does during an outage

USAGE
  failover-sim [OPTIONS]                    simulate the built-in outage (or --faults / --trace)
  failover-sim year [OPTIONS]               a seeded year of generated incidents (also: --year)
  failover-sim quota [OPTIONS]              per-minute request and token quotas: 429s and failed
                                            requests with pacing from the rate-limit headers
                                            against without it, on the same traffic; options
                                            --rate R (req/s, default 10), --minutes N (30),
                                            --seed N, --attempts N (2), --retry-after, --policy
  failover-sim scenario [--check] FILE...   replay scenario files (fixtures/scenarios) and print each
                                            step's observed results as JSON lines; --check compares
                                            them with the files' expectations instead

INPUTS
  --policy FILE        policy as JSON, with the field names of the bindings and scenario files,
                       e.g. {\"consecutive_failures\": 3, \"ramp\": [{\"share\": 0.1, \"dwell_ms\": 60000},
                       {\"share\": 1.0, \"dwell_ms\": 0}]}; omitted fields keep the core's defaults
  --faults FILE        fault model (JSON) instead of the built-in one; --print-faults shows the
                       built-in one to start from
  --trace FILE         replay a request log (.csv with a header, or JSON lines): one call per line
                       with timestamp_ms (or timestamp: seconds or RFC 3339), provider, outcome
                       (success, server_error, rate_limited, timeout, ...) or status (HTTP code),
                       and optionally latency_ms, retry_after / retry_after_ms, request_id
  --providers A,B,..   with --trace: the providers' priority order (default: most calls first)
  --trace-bucket DUR   with --trace: calls the log never made are answered from the same provider's
                       logged answers within this time bucket (default 1m)
  --seed N             seed of the traffic and the answers (default: the fault model's)
  --attempts N         attempts per request, each on another provider (default 3)
  --naive-fails N      naive baseline: failures in a row that cool a provider down (default 3)
  --naive-cooldown DUR naive baseline: the cooldown (default 60s)

OUTPUTS
  (default)            a report on stdout
  --json               the report as JSON on stdout instead
  --svg FILE           also write a chart: failed requests per strategy, latency (p50/p99),
                       requests, failed calls by kind (5xx, timeout, 429), the policy's traffic
                       share, circuit states and stages, each provider's error rate
  --png FILE           the same chart as PNG, through rsvg-convert (Debian: librsvg2-bin)
  --width N            width of the terminal chart in columns (default 72)
  --instances N        spread the traffic over N instances (1-64), each with its own engine, and
                       compare them alone with them sharing through fleet mode (rounds every 1 s
                       through a model of the store): availability and calls wasted
  -q, --quiet          no progress on stderr
  --print-faults       print the built-in fault model and exit
  -h, --help           this help

YEAR (failover-sim year, or --year)
  A deterministic year of incidents for 2-4 providers, and what no failover, naive failover and the
  policy make of it: availability, hours of user-visible downtime (minutes with >= 5 % failed),
  failed requests, wasted calls, time on fallbacks, the worst incident. Options: --seed N (default
  2025), --providers N (2-4, default 2), --rate R (average requests/s, default 20, daily cycle
  x0.4 at 03:00 to x1.6 at 15:00 UTC), --days N (default 365), --policy, --attempts,
  --naive-fails, --naive-cooldown, -q.
  --json               the year's report as JSON on stdout instead of text
  --svg FILE, --png FILE  a chart of the year: failed requests per day per strategy, every
                       incident by kind, and the worst incidents zoomed in (failed requests,
                       latency, requests, failed calls by kind, the policy's states)
  --compare A B        two policy files on the same year (same incidents, traffic and answers):
                       naive failover, policy A, policy B and B - A per metric; with --json, both
                       reports and the differences
  Incident model, calibrated on Chu et al., ICPE 2025 (arXiv 2501.12469: incidents every few days
  per service, heavy-tailed durations with a median under an hour, weekday bias, correlated
  incidents within a provider, daily availability around 99.8-99.9 %):
    one incident every 5 days per provider, weekend days x0.5, 25 % followed within 3 h by a
    correlated one on the same provider; durations log-normal, median 35 min, sigma 1.3 (mean
    about 1h20m), 5 min to 12 h; kinds: 1/6 hard outage (95-100 % 5xx or connection errors),
    1/3 elevated 5xx (0.3-8 %), 1/4 latency x1.5-x6, 1/6 429 storm (0.5-15 %, Retry-After
    5-60 s), 1/12 silent hang (0.5-10 % of calls time out at 30 s); background 5xx 0.05 %.
    Each provider alone: 99.5-99.9 % available, 9-44 h of downtime in a year.
  Simulated request by request from 5 min before each primary incident to 45 min after it (all
  providers' faults in that window); the quiet rest in aggregate: expected requests served by
  the primary, its background failure rate applied statistically, failures retried on the next
  provider at its failure probability at that time; the engine is fast-forwarded between windows
  (timers run at their times, no outcomes fed).

FAULT MODEL (JSON; --print-faults for a full example)
  {\"seed\": 42, \"duration\": \"4h\", \"timeout_ms\": \"30s\",
   \"traffic\": {\"rate_per_s\": 20, \"arrivals\": \"poisson\" | \"uniform\",
               \"bursts\": {\"every\": \"15m\", \"length\": \"1m\", \"factor\": 3}  (or a list, also {from, to, factor})},
   \"providers\": [{\"name\": \"primary\", \"latency_ms\": {\"median\": 900, \"p99\": 6000}, \"error_rate\": 0.002,
                  \"faults\": [{\"from\": \"0:40:00\", \"to\": \"1:50:00\", \"kind\": \"server_error\", \"rate\": 0.97,
                              \"retry_after_ms\": [\"5s\", \"30s\"], \"latency_ms\": {...}, \"note\": \"...\"}]}, ...]}
  kind: server_error, connection_error, timeout, rate_limited, client_error, cancelled; a fault with
  only latency_ms makes calls slow. Providers are in priority order.

Durations are milliseconds or strings such as 250ms, 90s, 15m, 1h30m, 1:30:00.
Exit status: 0 done, 1 bad input or a failed scenario check, 2 bad command line.";

struct Cli {
    settings: Settings,
    json: bool,
    svg: Option<PathBuf>,
    png: Option<PathBuf>,
    width: usize,
}

/// `failover-sim year`: the settings and the outputs.
struct YearCli {
    settings: year::YearSettings,
    json: bool,
    svg: Option<PathBuf>,
    png: Option<PathBuf>,
    /// `--compare A B`: two policy files run on the same year.
    compare: Option<(PathBuf, PathBuf)>,
}

enum Command {
    Run(Box<Cli>),
    Year(Box<YearCli>),
    Scenario {
        check: bool,
        files: Vec<PathBuf>,
    },
    Quota(Box<(quota::QuotaModel, Option<PathBuf>)>),
    Help,
    PrintFaults,
    /// `--instances N`: the fleet comparison.
    Fleet(Box<Settings>, usize),
}

fn usage_error(msg: impl Into<String>) -> InputError {
    InputError::file("command line", msg)
}

fn parse_args(args: Vec<String>) -> Result<Command, InputError> {
    if args.first().map(String::as_str) == Some("scenario") {
        let mut check = false;
        let mut files = Vec::new();
        for a in &args[1..] {
            match a.as_str() {
                "--check" => check = true,
                "-h" | "--help" => return Ok(Command::Help),
                s if s.starts_with('-') => {
                    return Err(usage_error(format!("unknown option `{s}` for `scenario`")));
                }
                s => files.push(PathBuf::from(s)),
            }
        }
        if files.is_empty() {
            return Err(usage_error(
                "`scenario` needs at least one FILE (or a directory)",
            ));
        }
        return Ok(Command::Scenario { check, files });
    }
    if args.first().map(String::as_str) == Some("year") || args.iter().any(|a| a == "--year") {
        return parse_year(args);
    }
    if args.first().map(String::as_str) == Some("quota") {
        return parse_quota(&args[1..]);
    }
    let mut settings = Settings {
        policy: None,
        faults: None,
        trace: None,
        providers: None,
        seed: None,
        attempts: 3,
        naive_fails: 3,
        naive_cooldown_ms: 60_000,
        trace_bucket_ms: 60_000,
        quiet: false,
    };
    let mut json = false;
    let mut svg = None;
    let mut png = None;
    let mut width = 72;
    let mut instances: Option<usize> = None;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let value = |it: &mut std::vec::IntoIter<String>| -> Result<String, InputError> {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| usage_error(format!("`{flag}` needs a value")))
        };
        let number = |flag: &str, v: String, min: u64, max: u64| -> Result<u64, InputError> {
            v.parse::<u64>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| {
                    usage_error(format!(
                        "`{flag}` takes a whole number from {min} to {max}, got `{v}`"
                    ))
                })
        };
        let duration = |flag: &str, v: String| -> Result<u64, InputError> {
            parse_duration(&v).filter(|&d| d > 0).ok_or_else(|| {
                usage_error(format!(
                    "`{flag}` takes a positive duration such as 90s, got `{v}`"
                ))
            })
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--print-faults" => return Ok(Command::PrintFaults),
            "--json" => json = true,
            "-q" | "--quiet" => settings.quiet = true,
            "--policy" => settings.policy = Some(value(&mut it)?.into()),
            "--faults" => settings.faults = Some(value(&mut it)?.into()),
            "--trace" => settings.trace = Some(value(&mut it)?.into()),
            "--svg" => svg = Some(PathBuf::from(value(&mut it)?)),
            "--png" => png = Some(PathBuf::from(value(&mut it)?)),
            "--providers" => {
                let v = value(&mut it)?;
                let list: Vec<String> = v.split(',').map(|s| s.trim().to_string()).collect();
                if list.iter().any(String::is_empty) {
                    return Err(usage_error("`--providers` takes names separated by commas"));
                }
                settings.providers = Some(list);
            }
            "--seed" => settings.seed = Some(number("--seed", value(&mut it)?, 0, u64::MAX)?),
            "--attempts" => {
                settings.attempts = number("--attempts", value(&mut it)?, 1, 16)? as u32
            }
            "--naive-fails" => {
                settings.naive_fails =
                    number("--naive-fails", value(&mut it)?, 1, 1_000_000)? as u32;
            }
            "--naive-cooldown" => {
                settings.naive_cooldown_ms = duration("--naive-cooldown", value(&mut it)?)?;
            }
            "--trace-bucket" => {
                settings.trace_bucket_ms = duration("--trace-bucket", value(&mut it)?)?;
            }
            "--width" => width = number("--width", value(&mut it)?, 20, 1000)? as usize,
            "--instances" => {
                instances = Some(number("--instances", value(&mut it)?, 1, 64)? as usize);
            }
            s if s.starts_with('-') => {
                return Err(usage_error(format!("unknown option `{s}` (see --help)")));
            }
            s => {
                return Err(usage_error(format!(
                    "unexpected argument `{s}` (did you mean `scenario {s}` or `--faults {s}`?)"
                )));
            }
        }
    }
    if settings.faults.is_some() && settings.trace.is_some() {
        return Err(usage_error("give either --faults or --trace, not both"));
    }
    if settings.providers.is_some() && settings.trace.is_none() {
        return Err(usage_error(
            "`--providers` orders a trace's providers; a fault model lists them in order itself",
        ));
    }
    if let Some(n) = instances {
        return Ok(Command::Fleet(Box::new(settings), n));
    }
    Ok(Command::Run(Box::new(Cli {
        settings,
        json,
        svg,
        png,
        width,
    })))
}

fn parse_year(args: Vec<String>) -> Result<Command, InputError> {
    let mut y = year::YearSettings::default_with_seed(year::DEFAULT_SEED);
    y.quiet = false;
    let mut policy = None;
    let (mut json, mut svg, mut png, mut compare) = (false, None, None, None);
    let mut it = args.into_iter().peekable();
    if it.peek().map(String::as_str) == Some("year") {
        it.next();
    }
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = || -> Result<String, InputError> {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| usage_error(format!("`{flag}` needs a value")))
        };
        let number = |flag: &str, v: String, min: u64, max: u64| -> Result<u64, InputError> {
            v.parse::<u64>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| {
                    usage_error(format!(
                        "`{flag}` takes a whole number from {min} to {max}, got `{v}`"
                    ))
                })
        };
        match flag.as_str() {
            "--year" => {}
            "-h" | "--help" => return Ok(Command::Help),
            "-q" | "--quiet" => y.quiet = true,
            "--seed" => y.seed = number("--seed", value()?, 0, u64::MAX)?,
            "--providers" => y.providers = number("--providers", value()?, 2, 4)? as usize,
            "--days" => y.days = number("--days", value()?, 1, 366)?,
            "--rate" => {
                let v = value()?;
                y.rate_per_s = v
                    .parse::<f64>()
                    .ok()
                    .filter(|r| *r > 0.0 && *r <= 200.0)
                    .ok_or_else(|| {
                        usage_error(format!(
                            "`--rate` takes requests per second above 0 and at most 200, got `{v}`"
                        ))
                    })?;
            }
            "--attempts" => y.attempts = number("--attempts", value()?, 1, 16)? as u32,
            "--naive-fails" => {
                y.naive_fails = number("--naive-fails", value()?, 1, 1_000_000)? as u32;
            }
            "--naive-cooldown" => {
                let v = value()?;
                y.naive_cooldown_ms = parse_duration(&v).filter(|&d| d > 0).ok_or_else(|| {
                    usage_error(format!(
                        "`--naive-cooldown` takes a positive duration such as 90s, got `{v}`"
                    ))
                })?;
            }
            "--policy" => policy = Some(PathBuf::from(value()?)),
            "--json" => json = true,
            "--svg" => svg = Some(PathBuf::from(value()?)),
            "--png" => png = Some(PathBuf::from(value()?)),
            "--compare" => {
                let a = PathBuf::from(value()?);
                let b = it
                    .next()
                    .filter(|b| !b.starts_with('-'))
                    .ok_or_else(|| usage_error("`--compare` takes two policy files: A B"))?;
                compare = Some((a, PathBuf::from(b)));
            }
            s => {
                return Err(usage_error(format!(
                    "unknown option `{s}` for `year` (see --help)"
                )));
            }
        }
    }
    if compare.is_some() && (policy.is_some() || svg.is_some() || png.is_some()) {
        return Err(usage_error(
            "`--compare A B` names both policies and prints a table: not with --policy, --svg or --png",
        ));
    }
    if let Some(path) = policy {
        year_policy(&mut y, path)?;
    }
    Ok(Command::Year(Box::new(YearCli {
        settings: y,
        json,
        svg,
        png,
        compare,
    })))
}

/// Loads a policy file into a year's settings.
fn year_policy(y: &mut year::YearSettings, path: PathBuf) -> Result<(), InputError> {
    let settings = Settings {
        policy: Some(path),
        faults: None,
        trace: None,
        providers: None,
        seed: None,
        attempts: y.attempts,
        naive_fails: y.naive_fails,
        naive_cooldown_ms: y.naive_cooldown_ms,
        trace_bucket_ms: 60_000,
        quiet: true,
    };
    let (p, label, _) = app::load_policy(&settings)?;
    y.policy = p;
    y.policy_label = label;
    Ok(())
}

/// Runs `failover-sim year`: the text or JSON on stdout, charts to files.
fn year_command(cli: &YearCli) -> Result<String, InputError> {
    let y = &cli.settings;
    if let Some((a, b)) = &cli.compare {
        let (mut ya, mut yb) = (y.clone(), y.clone());
        year_policy(&mut ya, a.clone())?;
        year_policy(&mut yb, b.clone())?;
        let ra = year::simulate(&ya)?;
        let rb = year::simulate(&yb)?;
        return Ok(if cli.json {
            format!("{}\n", year::compare_json(&ra, &rb))
        } else {
            year::compare_text(&ra, &rb)
        });
    }
    let report = year::simulate(y)?;
    let mut text = if cli.json {
        format!("{}\n", year::report_json(&report))
    } else {
        year::render(&report)
    };
    if cli.svg.is_some() || cli.png.is_some() {
        let doc = year::chart(&report);
        let written = charts::write(&doc, cli.svg.as_deref(), cli.png.as_deref())?;
        if !cli.json {
            text.push_str(&written);
        }
    }
    Ok(text)
}

fn scenario(check: bool, files: &[PathBuf]) -> Result<bool, InputError> {
    let mut all = Vec::new();
    for f in files {
        if f.is_dir() {
            let loaded = failover_scenario::Scenario::load_dir(f)
                .map_err(|e| InputError::file(&e.file, e.message))?;
            all.extend(loaded);
        } else {
            all.push(
                failover_scenario::Scenario::load(f)
                    .map_err(|e| InputError::file(&e.file, e.message))?,
            );
        }
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let (mut passed, mut failed) = (0, 0);
    for s in &all {
        if check {
            match s.check() {
                Ok(()) => {
                    passed += 1;
                    let _ = writeln!(out, "ok    {}", s.file);
                }
                Err(f) => {
                    failed += 1;
                    let _ = writeln!(out, "FAIL  {f}");
                }
            }
        } else {
            let steps = s.observe().map_err(|f| {
                let mut e = InputError::file(&f.file, f.message);
                e.field = f.step.map(|i| format!("steps[{i}]"));
                e
            })?;
            for r in steps {
                let _ = writeln!(out, "{}", r.to_json());
            }
        }
    }
    if check {
        let _ = writeln!(out, "{passed} passed, {failed} failed");
    }
    Ok(failed == 0)
}

/// `quota [--seed N] [--minutes N] [--rate R] [--attempts N] [--retry-after] [--policy FILE]`.
fn parse_quota(args: &[String]) -> Result<Command, InputError> {
    let number = |flag: &str, v: String, min: u64, max: u64| -> Result<u64, InputError> {
        v.parse::<u64>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| {
                usage_error(format!(
                    "`{flag}` takes a whole number from {min} to {max}, got `{v}`"
                ))
            })
    };
    let mut m = quota::QuotaModel::default();
    let mut policy = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| usage_error(format!("`{a}` needs a value")))
        };
        match a.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--seed" => m.seed = number("--seed", value()?, 0, u64::MAX)?,
            "--minutes" => m.minutes = number("--minutes", value()?, 1, 100_000)?,
            "--attempts" => m.attempts = number("--attempts", value()?, 1, 16)? as u32,
            "--rate" => {
                let v = value()?;
                m.rate_per_s = v
                    .parse::<f64>()
                    .ok()
                    .filter(|r| *r > 0.0 && *r <= 10_000.0)
                    .ok_or_else(|| {
                        usage_error(format!("`--rate` takes 0 < R <= 10000, not `{v}`"))
                    })?;
            }
            "--retry-after" => m.retry_after = true,
            "--policy" => policy = Some(PathBuf::from(value()?)),
            s => return Err(usage_error(format!("unknown option `{s}` for `quota`"))),
        }
    }
    Ok(Command::Quota(Box::new((m, policy))))
}

fn quota_report(m: &quota::QuotaModel, policy: Option<&PathBuf>) -> Result<String, String> {
    let settings = Settings {
        policy: policy.cloned(),
        faults: None,
        trace: None,
        providers: None,
        seed: None,
        attempts: m.attempts,
        naive_fails: 3,
        naive_cooldown_ms: 60_000,
        trace_bucket_ms: 60_000,
        quiet: true,
    };
    let (policy, _, _) =
        app::load_policy(&settings).map_err(|e| format!("{}: {}", e.file, e.message))?;
    let without = quota::run(m, &policy, false)?;
    let with = quota::run(m, &policy, true)?;
    Ok(quota::render(m, &without, &with))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cmd = match parse_args(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("failover-sim: {}: {}", e.file, e.message);
            eprintln!("run `failover-sim --help` for usage");
            return ExitCode::from(2);
        }
    };
    match cmd {
        Command::Help => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Command::PrintFaults => {
            print!("{}", faults::DEFAULT);
            ExitCode::SUCCESS
        }
        Command::Scenario { check, files } => match scenario(check, &files) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("failover-sim: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Quota(q) => match quota_report(&q.0, q.1.as_ref()) {
            Ok(text) => {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(text.as_bytes());
                let _ = out.flush();
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("failover-sim: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Year(y) => {
            let started = std::time::Instant::now();
            let text = match year_command(&y) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("failover-sim: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
            // Not in the report, so that the same seed gives the same bytes.
            if !y.settings.quiet {
                eprintln!(
                    "failover-sim: the year took {:.1} s",
                    started.elapsed().as_secs_f64()
                );
            }
            ExitCode::SUCCESS
        }
        Command::Fleet(settings, n) => match fleet::compare(&settings, n) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("failover-sim: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Run(cli) => {
            let report = match app::simulate(&cli.settings) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("failover-sim: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let mut written = String::new();
            if cli.svg.is_some() || cli.png.is_some() {
                let doc = svg::render(&report);
                match charts::write(&doc, cli.svg.as_deref(), cli.png.as_deref()) {
                    Ok(w) => written = w,
                    Err(e) => {
                        eprintln!("failover-sim: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            let text = if cli.json {
                format!("{}\n", jsonout::report_json(&report))
            } else {
                let mut t = report::terminal(&report, cli.width);
                t.push_str(&written);
                t
            };
            let mut out = std::io::stdout().lock();
            // A closed pipe (`| head`) is not an error worth a panic.
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
            ExitCode::SUCCESS
        }
    }
}
