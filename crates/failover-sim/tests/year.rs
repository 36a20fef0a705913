//! Runs `failover-sim year` on short years: `--json`, `--compare`, and their command-line errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn run(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_failover-sim"))
        .args(args)
        .output()
        .expect("the binary runs");
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

/// A fresh path in the target's temporary directory.
fn tmp(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("failover-sim-year-tests");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn write(name: &str, text: &str) -> String {
    let p = tmp(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// A short year: 20 days at 2 requests a second, 2 providers, seed 3, then `extra`.
fn short(extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "year",
        "--days",
        "20",
        "--rate",
        "2",
        "--providers",
        "2",
        "--seed",
        "3",
        "-q",
    ]
    .iter()
    .map(|s| (*s).to_string())
    .collect();
    a.extend(extra.iter().map(|s| (*s).to_string()));
    a
}

fn run_short(extra: &[&str]) -> String {
    let a = short(extra);
    let refs: Vec<&str> = a.iter().map(String::as_str).collect();
    run_ok(&refs)
}

#[test]
fn json_states_the_text_reports_figures() {
    let text = run_short(&[]);
    let raw = run_short(&["--json"]);
    let v: Value = serde_json::from_str(&raw).expect("JSON");
    assert_eq!(v["seed"], 3);
    assert_eq!(v["days"], 20);
    assert_eq!(v["providers"].as_array().unwrap().len(), 2);
    let keys: Vec<&str> = v["strategies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["strategy"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["no_failover", "naive", "policy"]);
    for s in v["strategies"].as_array().unwrap() {
        for k in [
            "availability",
            "downtime_hours",
            "requests",
            "failed",
            "wasted_calls",
            "fallback_hours",
        ] {
            assert!(s[k].is_number(), "{k} in {s}");
        }
        // The text's figures, rounded the same way.
        let failed = s["failed"].as_u64().unwrap();
        let mut n = failed.to_string();
        let mut i = n.len();
        while i > 3 {
            i -= 3;
            n.insert(i, ',');
        }
        assert!(text.contains(&n), "{n} not in\n{text}");
    }
    let nf = &v["strategies"][0];
    assert!(nf["fallback_hours"].as_f64().unwrap() == 0.0);
    assert!(v["alone"][0]["incidents"].as_u64().unwrap() > 0);
    // Deterministic to the byte.
    assert_eq!(run_short(&["--json"]), raw);
}

#[test]
fn compare_runs_two_policies_on_the_same_year() {
    let a = write("a.json", r#"{"consecutive_failures": 3}"#);
    let b = write(
        "b.json",
        r#"{"consecutive_failures": 20, "error_rate_threshold": null}"#,
    );
    let text = run_short(&["--compare", &a, &b]);
    for want in [
        "policy A",
        "policy B",
        "B − A",
        "requests failed",
        "wasted calls",
        "naive failover",
    ] {
        assert!(text.contains(want), "missing {want}:\n{text}");
    }
    let v: Value = serde_json::from_str(&run_short(&["--compare", &a, &b, "--json"])).unwrap();
    let pa = &v["a"]["strategies"][2];
    let pb = &v["b"]["strategies"][2];
    // Same year for both: the baselines agree to the request.
    assert_eq!(v["a"]["strategies"][1], v["b"]["strategies"][1]);
    assert_eq!(v["a"]["alone"], v["b"]["alone"]);
    let d = v["b_minus_a"]["failed"].as_f64().unwrap();
    assert_eq!(
        d,
        pb["failed"].as_f64().unwrap() - pa["failed"].as_f64().unwrap()
    );
    // The same policy twice differs by nothing.
    let same: Value = serde_json::from_str(&run_short(&["--compare", &a, &a, "--json"])).unwrap();
    for (k, x) in same["b_minus_a"].as_object().unwrap() {
        assert_eq!(x.as_f64(), Some(0.0), "{k}");
    }
}

#[test]
fn year_command_line_errors_exit_2() {
    let p = write("p.json", "{}");
    for args in [
        vec!["year", "--compare", &p],
        vec!["year", "--compare", &p, "--json"],
        vec!["year", "--compare", &p, &p, "--policy", &p],
        vec!["year", "--svg"],
        vec!["year", "--bogus"],
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(e.contains("command line"), "{args:?}: {e}");
    }
    // A policy the core refuses: exit 1, the file named.
    let bad = write("bad.json", r#"{"consecutive_failures": 0}"#);
    let out = run(&["year", "--days", "2", "-q", "--compare", &p, &bad]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.json"));
}
