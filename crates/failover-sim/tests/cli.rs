//! Runs the `failover-sim` binary on the built-in outage, on small fault models and traces, and on
//! bad input, and checks the figures it reports.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_failover-sim"))
}

fn data(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
        .display()
        .to_string()
}

/// A fresh path in the target's temporary directory.
fn tmp(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("failover-sim-tests");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn run(args: &[&str]) -> Output {
    let out = bin().args(args).output().expect("the binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{args:?} panicked:\n{stderr}");
    out
}

fn run_ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn run_json(args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.extend(["--json", "-q"]);
    serde_json::from_str(&run_ok(&a)).expect("--json prints JSON")
}

/// The error message of a run that must fail with exit status `code`.
fn run_err(args: &[&str], code: i32) -> String {
    let out = run(args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{args:?}: stdout {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).unwrap()
}

/// The built-in outage, as JSON, with its SVG; run once for every test that looks at it.
fn default_run() -> &'static (Value, String) {
    static RUN: OnceLock<(Value, String)> = OnceLock::new();
    RUN.get_or_init(|| {
        let svg = tmp("default.svg");
        let v = run_json(&["--svg", svg.to_str().unwrap()]);
        (v, std::fs::read_to_string(svg).unwrap())
    })
}

fn avail(v: &Value, strategy: &str) -> f64 {
    v["strategies"][strategy]["availability"].as_f64().unwrap()
}

fn events<'a>(v: &'a Value, provider: &str, kind: &str) -> Vec<&'a Value> {
    v["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["provider"] == provider && e["kind"] == kind)
        .collect()
}

/// The policy's share of first picks per bucket for `provider` (None for an empty bucket).
fn shares(v: &Value, provider: &str) -> Vec<Option<f64>> {
    let first = &v["series"]["strategies"]["policy"]["first"];
    let mine = first[provider].as_array().unwrap();
    let names: Vec<&str> = v["input"]["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    (0..mine.len())
        .map(|b| {
            let total: u64 = names.iter().map(|n| first[n][b].as_u64().unwrap()).sum();
            (total > 0).then(|| mine[b].as_u64().unwrap() as f64 / total as f64)
        })
        .collect()
}

/// Ramp start and end: the share is below 100 % for every bucket inside the ramp, 100 % for every
/// bucket after it, and the ramp lasted at least 20 minutes.
fn check_ramp(v: &Value, provider: &str) {
    let starts = events(v, provider, "ramp_stage");
    let start = starts
        .iter()
        .rfind(|e| e["stage"] == 0)
        .expect("the ramp started")["at_ms"]
        .as_u64()
        .unwrap();
    let recovered = events(v, provider, "recovered");
    assert_eq!(recovered.len(), 1, "recovered once");
    let end = recovered[0]["at_ms"].as_u64().unwrap();
    assert!(
        end - start >= 1_200_000,
        "the default ramp takes 20 minutes"
    );
    let bucket = v["series"]["bucket_ms"].as_u64().unwrap();
    let s = shares(v, provider);
    let first_opened = events(v, provider, "opened")[0]["at_ms"].as_u64().unwrap();
    for (b, share) in s.iter().enumerate() {
        let (from, to) = (b as u64 * bucket, (b as u64 + 1) * bucket);
        let Some(share) = share else { continue };
        if from >= first_opened && to <= end {
            assert!(
                *share < 1.0,
                "bucket {b} ({from} ms): share {share} before the ramp ended"
            );
        }
        if from >= end {
            assert_eq!(
                *share, 1.0,
                "bucket {b} ({from} ms): full share after the ramp"
            );
        }
    }
}

#[test]
fn default_run_tells_the_story() {
    let (v, _) = default_run();
    assert_eq!(
        v["input"]["providers"],
        serde_json::json!(["primary", "secondary", "tertiary"])
    );
    assert_eq!(v["input"]["duration_ms"], 4 * 3_600_000);
    let requests = v["strategies"]["policy"]["requests"].as_u64().unwrap();
    assert!(
        (250_000..450_000).contains(&requests),
        "about 20/s for 4 h: {requests}"
    );
    for s in ["no_failover", "naive", "policy"] {
        assert_eq!(
            v["strategies"][s]["requests"], requests,
            "{s}: same traffic"
        );
    }

    // The long 5xx outage opens the primary at once, by consecutive failures, at about 0:40.
    let opened = events(v, "primary", "opened");
    assert_eq!(opened[0]["trigger"], "consecutive_failures");
    assert_eq!(opened[0]["from"], "healthy");
    let at = opened[0]["at_ms"].as_u64().unwrap();
    assert!((2_400_000..2_410_000).contains(&at), "{at}");
    // The marginal recovery rolls back once.
    let rollbacks: Vec<_> = opened
        .iter()
        .filter(|e| e["trigger"] == "ramp_rollback")
        .collect();
    assert_eq!(rollbacks.len(), 1, "one rollback");
    // The rate-limit storm throttles the secondary with Retry-After and never opens it.
    let throttled = events(v, "secondary", "throttled");
    assert!(throttled.len() > 10);
    assert!(throttled.iter().all(|e| e["retry_after"] == true));
    assert!(
        events(v, "secondary", "opened").is_empty(),
        "429 is not an outage"
    );
    assert!(
        events(v, "secondary", "ramp_stage").is_empty(),
        "no ramp after a throttle"
    );
    assert_eq!(v["dropped_events"], 0);
    check_ramp(v, "primary");

    // Strategies side by side.
    let (none, naive, policy) = (
        avail(v, "no_failover"),
        avail(v, "naive"),
        avail(v, "policy"),
    );
    assert!(policy > none && naive > none, "{none} {naive} {policy}");
    assert!(
        policy > naive,
        "the policy beats naive failover here: {naive} {policy}"
    );
    assert!(policy > 0.999);
    assert_eq!(v["strategies"]["no_failover"]["retried"], 0);
    assert!(v["strategies"]["policy"]["retried"].as_u64().unwrap() > 0);
    assert!(
        v["strategies"]["policy"]["failed_calls"].as_u64().unwrap()
            < v["strategies"]["naive"]["failed_calls"].as_u64().unwrap(),
        "the policy wastes fewer calls on failing providers"
    );

    // With no failover the availability is the primary's: its error rate from the fault model,
    // averaged over the requests, gives the same figure up to sampling noise.
    let rates = v["series"]["error_rate"]["primary"].as_array().unwrap();
    let reqs = v["series"]["strategies"]["no_failover"]["requests"]
        .as_array()
        .unwrap();
    let (mut expected_fail, mut n) = (0.0, 0.0);
    for (r, q) in rates.iter().zip(reqs) {
        let q = q.as_f64().unwrap();
        expected_fail += r.as_f64().unwrap() * q;
        n += q;
    }
    let primary_availability = 1.0 - expected_fail / n;
    assert!(
        (none - primary_availability).abs() < 0.003,
        "no failover {none} vs the primary's {primary_availability}"
    );
    let p0 = &v["strategies"]["no_failover"]["providers"][0];
    assert_eq!(p0["calls"], requests);
    assert_eq!(p0["served"], v["strategies"]["no_failover"]["served"]);

    // Well under a second in release; allow a debug build its slowness.
    assert!(v["elapsed_s"].as_f64().unwrap() < 20.0);
}

#[test]
fn default_report_reads_well() {
    let text = run_ok(&["-q"]);
    for needle in [
        "failover-sim · built-in outage · seed 42",
        "Timeline of the policy's transitions",
        "OPENED      3 server errors in a row",
        "ROLLBACK",
        "RECOVERED",
        "Retry-After 5 s–30 s",
        "Traffic share under the policy",
        "Same traffic, same faults, three strategies",
        "no failover",
        "naive failover",
        "availability",
        "requests retried",
        "latency p99",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
    }
    // The terminal chart has one row per provider between the frame characters.
    for p in ["primary", "secondary", "tertiary"] {
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(p) && l.ends_with('│')),
            "no chart row for {p}"
        );
    }
    // The timeline is in time order.
    let times: Vec<u64> = text
        .lines()
        .skip_while(|l| !l.starts_with("Timeline"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| {
            let t = l.split_whitespace().next()?;
            let p: Vec<u64> = t
                .split(':')
                .map(|x| x.parse().ok())
                .collect::<Option<_>>()?;
            Some(p[0] * 3600 + p[1] * 60 + p[2])
        })
        .collect();
    assert!(times.len() >= 5);
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
}

#[test]
fn svg_is_well_formed_with_one_series_per_provider() {
    let (v, svg) = default_run();
    let doc = roxmltree::Document::parse(svg).expect("well-formed SVG");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    let names: Vec<&str> = v["input"]["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    for class in ["share", "error"] {
        let series: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_tag_name("path") && n.attribute("class") == Some(class))
            .collect();
        assert_eq!(series.len(), names.len(), "one {class} series per provider");
        for (s, name) in series.iter().zip(&names) {
            assert_eq!(s.attribute("data-provider"), Some(*name));
            assert!(
                s.attribute("d")
                    .is_some_and(|d| d.starts_with('M') && d.len() > 20)
            );
        }
    }
    let transitions = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("transition"))
        .count();
    assert!(
        transitions >= 3,
        "opened, rolled back and recovered are marked"
    );
    let states = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("states"))
        .count();
    assert_eq!(states, names.len());
}

#[test]
fn reopenings_below_the_cap_are_not_called_the_cap() {
    // Four reopenings, each longer, all under the 10 min open_max_ms.
    let text = run_ok(&["--faults", &data("primary-down.json")]);
    let reopened = text
        .lines()
        .skip_while(|l| !l.contains("reopened"))
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(reopened.contains("1m04s"), "{reopened}");
    assert!(reopened.contains("8m18s; open until"), "{reopened}");
    assert!(!reopened.contains("the cap"), "{reopened}");
    // The default run reaches it.
    assert!(run_ok(&[]).contains("then about 10 min (the cap)"));
}

#[test]
fn small_outage_figures_are_exact() {
    let v = run_json(&["--faults", &data("primary-down.json")]);
    // One request every 100 ms for an hour: 35,999; the 6,000 of 0:10–0:20 find the primary down.
    let nf = &v["strategies"]["no_failover"];
    assert_eq!(nf["requests"], 35_999);
    assert_eq!(nf["failed"], 6_000);
    assert_eq!(avail(&v, "no_failover"), 29_999.0 / 35_999.0);
    // Failing over serves every request, retrying the few that hit the primary first.
    assert_eq!(avail(&v, "policy"), 1.0);
    assert!(avail(&v, "policy") > avail(&v, "no_failover"));
    let retried = v["strategies"]["policy"]["retried"].as_u64().unwrap();
    assert!((5..100).contains(&retried), "{retried}");
    assert_eq!(
        events(&v, "primary", "opened")[0]["trigger"],
        "consecutive_failures"
    );
    assert!(events(&v, "secondary", "opened").is_empty());
    check_ramp(&v, "primary");
    // Fully recovered: healthy at the end.
    assert_eq!(v["final_state"][0]["state"], "healthy");
}

/// The default policy's trade-off (see `consecutive_failures` on `Policy`): three server errors in
/// a row open a provider, so 1 % independent errors at 20 requests a second open it now and then
/// (about 0.3 times in 4 hours: 288 000 calls × 0.01³). Over ten seeds of 4 hours the default
/// opens at most once per 4 hours on average.
#[test]
fn the_default_rarely_opens_on_background_errors() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("faults/background-errors.json")
        .display()
        .to_string();
    let mut trips = 0;
    for seed in 1..=10 {
        let v = run_json(&["--faults", &model, "--seed", &seed.to_string()]);
        let providers = v["final_state"].as_array().expect("final_state");
        trips += providers
            .iter()
            .map(|p| p["trips"].as_u64().expect("trips"))
            .sum::<u64>();
    }
    assert!(trips <= 10, "{trips} openings in 10 runs of 4 hours");
}

#[test]
fn same_seed_same_report() {
    let strip = |mut v: Value| {
        v.as_object_mut().unwrap().remove("elapsed_s");
        v
    };
    let a = strip(run_json(&["--faults", &data("rate-limit.json")]));
    let b = strip(run_json(&["--faults", &data("rate-limit.json")]));
    assert_eq!(a, b);
    let c = strip(run_json(&[
        "--faults",
        &data("rate-limit.json"),
        "--seed",
        "4",
    ]));
    assert_ne!(a["strategies"], c["strategies"]);
}

#[test]
fn rate_limiting_throttles_without_a_trip_or_a_ramp() {
    let v = run_json(&["--faults", &data("rate-limit.json")]);
    let throttled = events(&v, "primary", "throttled");
    assert!(!throttled.is_empty());
    for e in &throttled {
        let d = e["until_ms"].as_u64().unwrap() - e["at_ms"].as_u64().unwrap();
        assert!((5_000..=15_000).contains(&d), "Retry-After honoured: {d}");
    }
    assert!(events(&v, "primary", "opened").is_empty());
    assert!(events(&v, "primary", "ramp_stage").is_empty());
    assert_eq!(avail(&v, "policy"), 1.0);
    assert!(avail(&v, "no_failover") < 0.9);
}

#[test]
fn printed_default_model_is_the_default() {
    let printed = run_ok(&["--print-faults"]);
    let path = tmp("printed.json");
    std::fs::write(&path, printed).unwrap();
    let (v, _) = default_run();
    let w = run_json(&["--faults", path.to_str().unwrap()]);
    assert_eq!(v["strategies"], w["strategies"]);
}

fn write_csv_trace() -> PathBuf {
    // 30 minutes, one request a second. From minute 5 to 15 the primary answers 503 and the
    // gateway that wrote the log retried on the secondary (same request id).
    let mut s = String::from("timestamp_ms,provider,status,latency_ms,request_id\n");
    let t0: u64 = 1_763_640_000_000;
    for i in 0..1800u64 {
        let t = t0 + i * 1000;
        if (300..900).contains(&i) {
            s.push_str(&format!("{t},primary,503,200,r{i}\n"));
            s.push_str(&format!("{},secondary,200,1000,r{i}\n", t + 200));
        } else {
            s.push_str(&format!("{t},primary,200,800,r{i}\n"));
        }
    }
    let path = tmp("trace.csv");
    std::fs::write(&path, s).unwrap();
    path
}

#[test]
fn csv_trace_replays_what_the_policy_would_have_done() {
    let path = write_csv_trace();
    let v = run_json(&["--trace", path.to_str().unwrap()]);
    assert_eq!(v["input"]["kind"], "trace");
    assert_eq!(
        v["input"]["providers"],
        serde_json::json!(["primary", "secondary"])
    );
    assert_eq!(v["input"]["trace_lines"], 2400);
    assert_eq!(v["input"]["start_unix_ms"], 1_763_640_000_000u64);
    // As logged: every request was served, 600 of them after a retry.
    assert_eq!(avail(&v, "as_logged"), 1.0);
    assert_eq!(v["strategies"]["as_logged"]["retried"], 600);
    // No failover gets the primary's own answers: 1,200 of 1,800.
    assert_eq!(v["strategies"]["no_failover"]["requests"], 1800);
    assert_eq!(avail(&v, "no_failover"), 1200.0 / 1800.0);
    assert!(avail(&v, "policy") > avail(&v, "no_failover"));
    assert_eq!(avail(&v, "policy"), 1.0);
    assert_eq!(
        events(&v, "primary", "opened")[0]["trigger"],
        "consecutive_failures"
    );
    let borrowed = &v["input"]["borrowed_answers"];
    assert!(borrowed["borrowed"].as_u64().unwrap() > 0);
    // Priority order can be given.
    let w = run_json(&[
        "--trace",
        path.to_str().unwrap(),
        "--providers",
        "secondary,primary",
    ]);
    assert_eq!(
        w["input"]["providers"],
        serde_json::json!(["secondary", "primary"])
    );
    // The terminal report says where answers came from.
    let text = run_ok(&["--trace", path.to_str().unwrap(), "-q"]);
    assert!(text.contains("as logged"));
    assert!(text.contains("2025-11-20 12:00:00 UTC"));
    assert!(text.contains("came from a nearby window"));
}

#[test]
fn jsonl_trace_with_dates_statuses_and_retry_after() {
    let mut s = String::new();
    for i in 0..1200u64 {
        let (h, m, sec) = (14 + i / 3600, (i / 60) % 60, i % 60);
        let ts = format!("2026-11-20T{h:02}:{m:02}:{sec:02}Z");
        let line = if (600..660).contains(&i) {
            serde_json::json!({"timestamp": ts, "provider": "a", "status": 429, "retry_after": "10", "latency_ms": 50})
        } else {
            serde_json::json!({"timestamp": ts, "provider": "a", "outcome": "success", "latency_ms": 700.5})
        };
        s.push_str(&format!("{line}\n"));
        if i % 10 == 0 {
            let b = serde_json::json!({"timestamp": ts, "provider": "b", "status": 200, "latency_ms": 900});
            s.push_str(&format!("{b}\n"));
        }
    }
    let path = tmp("trace.jsonl");
    std::fs::write(&path, s).unwrap();
    let v = run_json(&["--trace", path.to_str().unwrap()]);
    assert_eq!(v["input"]["providers"], serde_json::json!(["a", "b"]));
    let throttled = events(&v, "a", "throttled");
    assert!(!throttled.is_empty());
    assert_eq!(
        throttled[0]["until_ms"].as_u64().unwrap() - throttled[0]["at_ms"].as_u64().unwrap(),
        10_000
    );
    assert!(events(&v, "a", "opened").is_empty());
    assert!(avail(&v, "policy") > avail(&v, "no_failover"));
}

#[test]
fn scenario_lines_match_the_scenario_runner() {
    let dir = failover_scenario::scenario_dir();
    let file = dir.join("consecutive-5xx-open-at-once.json");
    let out = run_ok(&["scenario", file.to_str().unwrap()]);
    let expected: Vec<String> = failover_scenario::Scenario::load(&file)
        .unwrap()
        .observe()
        .unwrap()
        .iter()
        .map(|r| r.to_json().to_string())
        .collect();
    let got: Vec<&str> = out.lines().collect();
    assert_eq!(got, expected);
    for l in &got {
        let v: Value = serde_json::from_str(l).unwrap();
        assert!(v.get("step").is_some() && v.get("events").is_some());
    }
    let check = run_ok(&["scenario", "--check", dir.to_str().unwrap()]);
    assert!(
        check.lines().last().unwrap().ends_with(" passed, 0 failed"),
        "{check}"
    );
    let err = run_err(&["scenario", "no-such-file.json"], 1);
    assert!(
        err.contains("no-such-file.json") && err.contains("cannot read"),
        "{err}"
    );
}

fn write(name: &str, text: &str) -> String {
    let p = tmp(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn bad_fault_models_name_file_line_and_field() {
    let f = write("syntax.json", "{\n  \"duration\": \"1h\",\n}\n");
    let e = run_err(&["--faults", &f], 1);
    assert!(e.contains("syntax.json:3: invalid JSON"), "{e}");

    let f = write(
        "rate.json",
        "{\n  \"duration\": \"1h\",\n  \"traffic\": {\"rate_per_s\": 5},\n  \"providers\": [\n    {\"name\": \"a\",\n     \"faults\": [{\"from\": 0, \"to\": \"10m\",\n                 \"kind\": \"server_error\", \"rate\": 1.5}]}\n  ]\n}\n",
    );
    let e = run_err(&["--faults", &f], 1);
    assert!(
        e.contains(
            "rate.json:7: providers[0].faults[0].rate: must be a fraction between 0 and 1, got 1.5"
        ),
        "{e}"
    );

    let f = write(
        "kind.json",
        "{\"duration\": \"1h\", \"traffic\": {\"rate_per_s\": 5},\n \"providers\": [{\"name\": \"a\", \"faults\": [{\"from\": 0, \"to\": 5, \"kind\": \"meltdown\"}]}]}",
    );
    let e = run_err(&["--faults", &f], 1);
    assert!(
        e.contains("kind.json:2: providers[0].faults[0].kind: unknown kind \"meltdown\""),
        "{e}"
    );

    let f = write("unknown.json", "{\"duration\": \"1h\",\n \"trafic\": {}}");
    let e = run_err(&["--faults", &f], 1);
    assert!(e.contains("unknown.json:2: trafic: unknown field"), "{e}");

    let f = write(
        "dur.json",
        "{\"duration\": \"soon\", \"traffic\": {\"rate_per_s\": 5}, \"providers\": []}",
    );
    let e = run_err(&["--faults", &f], 1);
    assert!(
        e.contains("dur.json:1: duration: `soon` is not a duration"),
        "{e}"
    );

    let many: Vec<String> = (0..17).map(|i| format!("{{\"name\": \"p{i}\"}}")).collect();
    let f = write(
        "many.json",
        &format!(
            "{{\"duration\": \"1h\", \"traffic\": {{\"rate_per_s\": 5}},\n\"providers\": [{}]}}",
            many.join(",")
        ),
    );
    let e = run_err(&["--faults", &f], 1);
    assert!(
        e.contains("many.json:2: providers: 17 providers given but this router holds at most 16"),
        "{e}"
    );

    let f = write("binary.json", "\u{0}\u{1}garbage");
    let e = run_err(&["--faults", &f], 1);
    assert!(e.contains("binary.json:1: invalid JSON"), "{e}");

    let e = run_err(&["--faults", "/no/such/file.json"], 1);
    assert!(e.contains("/no/such/file.json: cannot read"), "{e}");
}

#[test]
fn policy_errors_show_the_cores_message_at_the_line() {
    let cases = [
        (
            "{\n  \"consecutive_failures\": 3,\n  \"error_rate_threshold\": 1.5\n}\n",
            ":3: error_rate_threshold: `error_rate_threshold` must be a fraction in (0, 1]",
        ),
        (
            "{\n  \"eror_rate\": 0.5\n}\n",
            ":2: eror_rate: unknown policy field `eror_rate`",
        ),
        (
            "{\n  \"bucket_ms\": 1000,\n  \"window_ms\": 1500\n}\n",
            ":3: window_ms: `window_ms` (1500) must be a whole multiple of `bucket_ms` (1000)",
        ),
        (
            "{\n  \"ramp\": [\n    {\"share\": 0.5, \"dwell_ms\": 1000},\n    {\"share\": \"all\", \"dwell_ms\": 0}\n  ]\n}\n",
            ":4: ramp[1]: `ramp.share` takes a number, got a string",
        ),
        (
            "{\n  \"ramp\": [{\"share\": 0.5, \"dwell_ms\": 1000}]\n}\n",
            ":2: ramp: `ramp` must end with a stage of share 1.0",
        ),
        (
            "{\n  \"probe_mode\": \"sometimes\"\n}\n",
            ":2: probe_mode: `probe_mode` must be \"requests\" or \"health_checks\"",
        ),
        ("[1, 2]", ":1: `policy` takes an object"),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let f = write(&format!("policy{i}.json"), text);
        let e = run_err(&["--policy", &f, "--faults", &data("primary-down.json")], 1);
        assert!(
            e.contains(&format!("policy{i}.json{want}")),
            "case {i}: {e}"
        );
    }
    // A good policy file is used and named in the report.
    let f = write(
        "good-policy.json",
        "{\"consecutive_failures\": 3, \"open_jitter\": 0, \"ramp\": [{\"share\": 0.5, \"dwell_ms\": 60000}, {\"share\": 1.0, \"dwell_ms\": 0}]}",
    );
    let v = run_json(&["--policy", &f, "--faults", &data("primary-down.json")]);
    assert_eq!(v["settings"]["policy"], f);
    let opened = events(&v, "primary", "opened");
    assert_eq!(opened[0]["threshold"], 3);
    assert_eq!(
        opened[0]["until_ms"].as_u64().unwrap() - opened[0]["at_ms"].as_u64().unwrap(),
        30_000
    );
    assert_eq!(events(&v, "primary", "ramp_stage").len(), 1);
}

#[test]
fn bad_traces_name_file_line_and_column() {
    let cases = [
        (
            "timestamp_ms,provider,status\n0,a,200\n1000,a,abc\n",
            ":3: status: must be an HTTP status code, got \"abc\"",
        ),
        (
            "timestamp_ms,provider,status\n0,a,200\n1000,a\n",
            ":3: 2 fields, but the header has 3",
        ),
        ("timestamp_ms,status\n0,200\n", ":1: no `provider` column"),
        ("when,provider,status\n0,a,200\n", ":1: no time column"),
        (
            "timestamp,provider,outcome\nyesterday,a,success\n",
            ":2: timestamp: must be seconds (a number) or an RFC 3339 date",
        ),
        (
            "timestamp_ms,provider,outcome\n0,a,exploded\n",
            ":2: outcome: unknown outcome \"exploded\"",
        ),
        (
            "timestamp_ms,provider,status,latency_ms\n0,a,200,-5\n",
            ":2: latency_ms: must be a non-negative number of milliseconds",
        ),
        (
            "timestamp_ms,provider,status,retry_after\n0,a,429,later\n",
            ":2: retry_after: must be a Retry-After header value",
        ),
        (
            "timestamp_ms,provider,status\n0,\"a,200\n",
            ":2: unclosed quote",
        ),
        (
            "{\"timestamp_ms\": 0, \"provider\": \"a\", \"status\": 200}\n{\"timestamp_ms\": 5, \"provider\": 7, \"status\": 200}\n",
            ":2: provider: must be a name (a string), got 7",
        ),
        (
            "{\"timestamp_ms\": 0, \"provider\": \"a\", \"status\": 200}\n{oops}\n",
            ":2: invalid JSON",
        ),
        ("", ": the trace is empty"),
        (
            "timestamp_ms,provider,status\n",
            ": the trace has a header but no calls",
        ),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let f = write(&format!("trace{i}.txt"), text);
        let e = run_err(&["--trace", &f], 1);
        assert!(e.contains(&format!("trace{i}.txt{want}")), "case {i}: {e}");
    }
    let f = write(
        "order.csv",
        "timestamp_ms,provider,status\n0,a,200\n5,b,200\n",
    );
    let e = run_err(&["--trace", &f, "--providers", "a"], 1);
    assert!(
        e.contains("order.csv:3: provider: `b` is in the trace but not in --providers"),
        "{e}"
    );
}

#[test]
fn bad_command_lines_exit_2() {
    for args in [
        &["--bogus"][..],
        &["--attempts", "0"],
        &["--attempts"],
        &["--seed", "-1"],
        &["--naive-cooldown", "soon"],
        &["stray"],
        &["--faults", "a.json", "--trace", "b.csv"],
        &["--providers", "a,b"],
        &["scenario"],
    ] {
        let e = run_err(args, 2);
        assert!(e.contains("failover-sim: command line:"), "{args:?}: {e}");
    }
    assert!(run_ok(&["--help"]).contains("USAGE"));
}

/// A short year (10 days at 2 requests a second, 2 providers) with `seed`, as `first` spells the
/// command (`year` or `--year`).
fn short_year(first: &str, seed: &str) -> Output {
    let args = [
        "--days",
        "10",
        "--rate",
        "2",
        "--providers",
        "2",
        "-q",
        "--seed",
    ];
    let mut all = vec![first];
    all.extend(args);
    all.push(seed);
    run(&all)
}

#[test]
fn year_is_deterministic_and_reports_every_strategy() {
    let a = short_year("year", "3");
    let b = short_year("year", "3");
    assert!(a.status.success());
    assert_eq!(a.stdout, b.stdout, "same seed, same bytes");
    let text = String::from_utf8(a.stdout).unwrap();
    for want in [
        "availability",
        "downtime (hours with ≥ 5 % failed)",
        "requests failed",
        "wasted calls",
        "time on fallbacks",
        "Worst incident",
        "no failover",
        "naive failover",
        "policy",
    ] {
        assert!(text.contains(want), "missing {want}:\n{text}");
    }
    // --year is the same command.
    assert_eq!(text.as_bytes(), &short_year("--year", "3").stdout[..]);
    assert_ne!(text.as_bytes(), &short_year("year", "4").stdout[..]);
    run_err(&["year", "--providers", "5"], 2);
}
