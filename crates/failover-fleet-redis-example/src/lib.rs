//! Fleet mode over Redis from Rust (issue #14): [`FleetDriver`] drives `failover_core`'s
//! [`Fleet`] with the blocking [`redis`] crate, the way the Python and Node bindings do with
//! their clients. Every decision is the core's: [`Fleet::watch`] and [`Fleet::poll_timeout`] say
//! when a round is due, [`Fleet::poll_transmit`] what it writes, the shared
//! [`failover_core::fleet::wire`] encodes it as the round script's arguments and decodes the
//! reply, [`Fleet::handle_snapshot`] merges it. The driver only performs the I/O: one `EVALSHA`
//! of [`REDIS_ROUND_SCRIPT`] per round (a `SCRIPT LOAD` first when the server answers
//! `NOSCRIPT`: the script did not run, so sending it again cannot count twice), a connect timeout
//! and a command timeout, no retry of a round that failed (its deltas were handed out once), and
//! the connection dropped after a failure so a late reply is never read as the next round's.
//!
//! The routers here run on Unix ms ([`unix_ms`]), so the fleet's clock mapping is
//! [`Clock::UNIX`]: no shift, no rounding.
//!
//! [`demo`] runs three instances against a Redis URL: the program in
//! `examples/fleet_rounds.rs` and the test in `tests/redis.rs` both call it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use failover_core::fleet::wire::{Arg, Clock, HeartbeatKey, KeyPrefix, Reply, Wire};
use failover_core::fleet::{
    Export, Fleet, FleetConfig, FleetConfigError, FleetEvent, REDIS_ROUND_SCRIPT, Snapshot,
};
use failover_core::{CircuitState, DefaultRouter, Outcome, Policy};
use redis::Value;

/// Providers a driver's fleet holds (the router's `P`).
pub const P: usize = 16;
/// Window buckets a driver's fleet holds (the router's `B`).
pub const B: usize = 120;

/// The wall clock, Unix ms.
#[must_use]
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A redis-rs reply value, read by the shared decoder.
struct V<'a>(&'a Value);

impl Reply for V<'_> {
    fn array_len(&self) -> Option<usize> {
        match self.0 {
            Value::Array(v) => Some(v.len()),
            _ => None,
        }
    }

    fn item(&self, i: usize) -> Option<Self> {
        match self.0 {
            Value::Array(v) => v.get(i).map(V),
            _ => None,
        }
    }

    fn integer(&self) -> Option<i64> {
        match self.0 {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    }

    fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        match self.0 {
            Value::BulkString(b) => Some(f(b)),
            Value::SimpleString(s) => Some(f(s.as_bytes())),
            _ => None,
        }
    }
}

/// Why a driver could not be built.
#[derive(Debug)]
pub enum DriverError {
    /// The fleet configuration breaks a rule.
    Config(FleetConfigError),
    /// The Redis URL is not valid.
    Url(redis::RedisError),
}

impl std::fmt::Display for DriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DriverError::Config(e) => write!(f, "fleet configuration: {e}"),
            DriverError::Url(e) => write!(f, "redis URL: {e}"),
        }
    }
}

impl std::error::Error for DriverError {}

/// One instance's fleet side over Redis (see the crate doc). Not thread-safe by itself: call it
/// from the thread that owns the router, or put both behind one lock, off the request path.
pub struct FleetDriver {
    fleet: Box<Fleet<P, B>>,
    wire: Wire,
    prefix: String,
    key: String,
    names: Vec<String>,
    client: redis::Client,
    con: Option<redis::Connection>,
    sha: String,
    export: Box<Export<P>>,
    snap: Box<Snapshot<P>>,
    connect_timeout: Duration,
    command_timeout: Duration,
    /// The last round's error, if it failed.
    pub last_error: Option<String>,
    /// Rounds answered and merged.
    pub rounds_ok: u64,
    /// Rounds that failed.
    pub rounds_failed: u64,
}

impl FleetDriver {
    /// Instance `instance` of the fleet `service` for `router` (whose inputs are Unix ms), on the
    /// Redis at `url`, with connect and command timeouts of 500 ms and 250 ms. Connects lazily,
    /// at the first round.
    ///
    /// # Errors
    ///
    /// [`DriverError`] when `config` breaks a rule or `url` is not a Redis URL.
    pub fn new(
        router: &DefaultRouter,
        service: &str,
        instance: u32,
        config: FleetConfig,
        url: &str,
    ) -> Result<FleetDriver, DriverError> {
        let fleet = Box::new(Fleet::new(config, instance, router).map_err(DriverError::Config)?);
        let names = (0..router.len())
            .filter_map(|i| router.provider_at(i).map(|id| router.name(id).to_owned()))
            .collect();
        Ok(FleetDriver {
            fleet,
            wire: Wire::new(&config, router.policy_in_force().window_ms, Clock::UNIX),
            prefix: KeyPrefix(service).to_string(),
            key: HeartbeatKey(service).to_string(),
            names,
            client: redis::Client::open(url).map_err(DriverError::Url)?,
            con: None,
            sha: String::new(),
            export: Box::default(),
            snap: Box::default(),
            connect_timeout: Duration::from_millis(500),
            command_timeout: Duration::from_millis(250),
            last_error: None,
            rounds_ok: 0,
            rounds_failed: 0,
        })
    }

    /// The core's fleet side (state, registers, events).
    #[must_use]
    pub fn fleet(&self) -> &Fleet<P, B> {
        &self.fleet
    }

    /// When the next round is due (Unix ms), after looking at the router ([`Fleet::watch`]: a
    /// local open or a failure run brings it forward); `None` while one is in flight.
    pub fn poll_timeout(&mut self, router: &DefaultRouter) -> Option<u64> {
        self.fleet.watch(router)
    }

    /// Makes the next round due at `now`.
    pub fn sync_now(&mut self, now: u64) {
        self.fleet.sync_now(now);
    }

    /// The next fleet event, oldest first.
    pub fn poll_event(&mut self) -> Option<FleetEvent> {
        self.fleet.poll_event()
    }

    /// Runs one round if one is due at `now`: `Some(true)` when it succeeded and was merged,
    /// `Some(false)` when it failed (reported to the core, never retried), `None` when none was
    /// due. Blocks for at most the connect timeout plus two command timeouts (a `NOSCRIPT`
    /// answer costs one `SCRIPT LOAD`).
    pub fn run_round(&mut self, router: &mut DefaultRouter, now: u64) -> Option<bool> {
        let round = self.fleet.poll_transmit(router, now, &mut self.export)?;
        match self.send() {
            Ok(reply) => {
                let providers = self.names.len().min(P);
                match self.wire.decode(&V(&reply), providers, &mut self.snap) {
                    Ok(()) => {
                        self.fleet.handle_snapshot(router, round, &self.snap, now);
                        self.rounds_ok += 1;
                        self.last_error = None;
                        Some(true)
                    }
                    Err(e) => Some(self.fail(router, round, now, e.to_string())),
                }
            }
            Err(e) => {
                // Dropped: a reply that arrives late must not be read as the next round's.
                self.con = None;
                Some(self.fail(router, round, now, e.to_string()))
            }
        }
    }

    fn fail(&mut self, router: &mut DefaultRouter, round: u64, now: u64, e: String) -> bool {
        self.fleet.handle_failure(router, round, now);
        self.rounds_failed += 1;
        self.last_error = Some(e);
        false
    }

    /// One `EVALSHA` of the round (loading the script first on `NOSCRIPT`).
    fn send(&mut self) -> redis::RedisResult<Value> {
        if self.con.is_none() {
            let con = self
                .client
                .get_connection_with_timeout(self.connect_timeout)?;
            con.set_read_timeout(Some(self.command_timeout))?;
            con.set_write_timeout(Some(self.command_timeout))?;
            self.con = Some(con);
        }
        let con = self.con.as_mut().expect("connected above");
        if self.sha.is_empty() {
            self.sha = redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg(REDIS_ROUND_SCRIPT)
                .query(con)?;
        }
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(&self.sha).arg(1).arg(&self.key);
        self.wire
            .encode(&self.prefix, &self.names, &self.export, |a| match a {
                Arg::Str(s) => {
                    cmd.arg(s);
                }
                Arg::Int(n) => {
                    cmd.arg(n);
                }
            });
        match cmd.query(con) {
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                // The script did not run (a restarted or flushed server): load it, send again.
                self.sha = redis::cmd("SCRIPT")
                    .arg("LOAD")
                    .arg(REDIS_ROUND_SCRIPT)
                    .query(con)?;
                cmd.query(con)
            }
            r => r,
        }
    }
}

/// What [`demo`] saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoReport {
    /// Rounds that succeeded, per instance.
    pub rounds_ok: Vec<u64>,
    /// Rounds that failed, per instance.
    pub rounds_failed: Vec<u64>,
    /// Live instances each saw at its last round.
    pub live: Vec<u32>,
    /// The primary's state on each instance at the end (`"open"`, `"healthy"`, …).
    pub primary: Vec<&'static str>,
    /// The register's epoch each instance saw for the primary.
    pub epochs: Vec<u64>,
    /// Failures the third instance's window counted for the primary (all of them the others').
    pub third_window_failures: u64,
}

fn state_name(s: CircuitState) -> &'static str {
    match s {
        CircuitState::Healthy => "healthy",
        CircuitState::Open => "open",
        CircuitState::Probing => "probing",
        CircuitState::Ramping => "ramping",
    }
}

/// Three instances of the fleet `service` on the Redis at `url`, each with its own router on Unix
/// ms: two rounds each (all live), then two of them see three server errors in a row from the
/// primary and open it, their next rounds publish the open and their votes, and the third adopts
/// it at its next round (2 voters reach the quorum `max(2, ⌈30 % × 3⌉)` = 2), its merged window
/// counting the others' 6 failures.
///
/// # Errors
///
/// When a driver cannot be built, or a round that should have succeeded failed (the message
/// says which and why).
pub fn demo(url: &str, service: &str) -> Result<DemoReport, Box<dyn std::error::Error>> {
    let policy = Policy {
        consecutive_failures: Some(3),
        open_jitter: 0.0,
        ..Policy::default()
    };
    let mut routers: Vec<Box<DefaultRouter>> = (0..3)
        .map(|_| DefaultRouter::new(&policy, &["primary", "secondary"]).map(Box::new))
        .collect::<Result<_, _>>()?;
    let mut drivers: Vec<FleetDriver> = (0..3)
        .map(|i| {
            FleetDriver::new(
                &routers[i],
                service,
                i as u32 + 1,
                FleetConfig::default(),
                url,
            )
        })
        .collect::<Result<_, _>>()?;
    let round = |k: usize, d: &mut [FleetDriver], r: &mut [Box<DefaultRouter>]| {
        let now = unix_ms();
        d[k].sync_now(now);
        match d[k].run_round(&mut r[k], now) {
            Some(true) => Ok(()),
            other => Err(format!(
                "instance {k}: round {other:?}: {}",
                d[k].last_error.clone().unwrap_or_default()
            )),
        }
    };
    for _ in 0..2 {
        for k in 0..3 {
            round(k, &mut drivers, &mut routers)?;
        }
    }
    let primary = routers[0].provider("primary").ok_or("no primary")?;
    for k in 0..2 {
        for _ in 0..3 {
            routers[k].observe(primary, Outcome::server_error(5), unix_ms());
        }
        // A local open makes the next round due at once.
        let due = drivers[k]
            .poll_timeout(&routers[k])
            .ok_or("a round in flight")?;
        let now = unix_ms().max(due);
        drivers[k]
            .run_round(&mut routers[k], now)
            .ok_or("no round due after a local open")?;
    }
    round(2, &mut drivers, &mut routers)?;
    Ok(DemoReport {
        rounds_ok: drivers.iter().map(|d| d.rounds_ok).collect(),
        rounds_failed: drivers.iter().map(|d| d.rounds_failed).collect(),
        live: drivers.iter().map(|d| d.fleet().live_instances()).collect(),
        primary: routers
            .iter()
            .map(|r| r.view(primary).map_or("unknown", |v| state_name(v.state)))
            .collect(),
        epochs: drivers
            .iter()
            .map(|d| d.fleet().register(primary).map_or(0, |g| g.epoch))
            .collect(),
        third_window_failures: routers[2].view(primary).map_or(0, |v| v.window.failures),
    })
}
