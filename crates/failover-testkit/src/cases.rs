//! How many cases a property test runs, from the environment.

/// `default` cases, or the number in the environment variable `var` when it is set.
pub fn from_env(var: &str, default: u32) -> u32 {
    std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// `default` cases, scaled by `$var` / 1000 when `var` is set (for long local runs).
pub fn per_mille(var: &str, default: u32) -> u32 {
    std::env::var(var)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(default, |n| (u64::from(default) * n / 1000).max(1) as u32)
}
