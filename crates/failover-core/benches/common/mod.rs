//! What both benchmark harnesses share (this crate's `engine` and `benches/peers`, which includes
//! this file by path): the workload generator and reading back the medians criterion wrote.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// A tiny deterministic generator (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

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
