//! Reading back the medians criterion wrote, for the benchmark harnesses' summaries (this
//! crate's `engine` bench and `benches/peers`).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The median's point estimate in a criterion `estimates.json`.
pub fn median(json: &str) -> Option<f64> {
    let rest = &json[json.find("\"median\"")?..];
    let rest = &rest[rest.find("\"point_estimate\"")? + "\"point_estimate\"".len()..];
    let rest = rest.trim_start_matches([':', ' ']);
    let end = rest.find([',', '}'])?;
    rest[..end].trim().parse().ok()
}

/// The median in `file` (an `estimates.json`), if criterion wrote it at or after `since` (in this
/// run, not an earlier one).
pub fn fresh_median(file: &Path, since: SystemTime) -> Option<f64> {
    let modified = std::fs::metadata(file).ok()?.modified().ok()?;
    if modified < since {
        return None;
    }
    median(&std::fs::read_to_string(file).ok()?)
}

/// Where criterion writes: `$CRITERION_HOME`, `$CARGO_TARGET_DIR/criterion`, else the
/// workspace's target directory.
pub fn criterion_dir() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return Some(home.into());
    }
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) => PathBuf::from(t),
        None => {
            let out = std::process::Command::new(std::env::var_os("CARGO")?)
                .args(["metadata", "--format-version", "1", "--no-deps"])
                .output()
                .ok()?;
            let s = String::from_utf8(out.stdout).ok()?;
            let key = "\"target_directory\":\"";
            let start = s.find(key)? + key.len();
            let end = start + s[start..].find('"')?;
            PathBuf::from(&s[start..end])
        }
    };
    Some(target.join("criterion"))
}
