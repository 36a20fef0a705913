//! What both benchmark harnesses (failover-core's `engine` bench and `benches/peers`) share: a
//! fake clock over pre-generated increments, and reading back the medians criterion wrote for
//! their summaries.

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

/// A fake clock over a ring of pre-generated increments in microseconds (its length a power of
/// two), so that no clock is read while measuring: each [`tick`](FakeClock::tick) moves one slot
/// on and returns the slot and the new time in milliseconds.
pub struct FakeClock<'a> {
    dt_us: &'a [u64],
    k: usize,
    t_us: u64,
}

impl<'a> FakeClock<'a> {
    /// A clock at `t_us` microseconds, before slot 0 of `dt_us`.
    pub fn new(dt_us: &'a [u64], t_us: u64) -> Self {
        assert!(dt_us.len().is_power_of_two(), "a ring of 2^n increments");
        FakeClock { dt_us, k: 0, t_us }
    }

    /// Moves to the next slot: `(slot, now_ms)`. Two operations and a load.
    #[inline]
    pub fn tick(&mut self) -> (usize, u64) {
        self.k = self.k.wrapping_add(1);
        let i = self.k & (self.dt_us.len() - 1);
        self.t_us += self.dt_us[i];
        (i, self.t_us / 1_000)
    }
}
