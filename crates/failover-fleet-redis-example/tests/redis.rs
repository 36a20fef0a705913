//! The example against a real `redis-server`: started here on a free 127.0.0.1 port with no
//! persistence, stopped by its process id. Skipped, with a message, when `redis-server` is not
//! installed (`scripts/ensure-redis.sh` installs it; `FAILOVER_REQUIRE_REDIS=1` makes its absence
//! a failure). `REDIS_SERVER` names another binary.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Server {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        // By pid: the child we started, nothing else.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn binary() -> Option<String> {
    if let Ok(b) = std::env::var("REDIS_SERVER") {
        return Some(b);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("redis-server"))
        .find(|p| p.is_file())
        .map(|p| p.display().to_string())
}

fn ping(port: u16) -> bool {
    let Ok(mut s) =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200))
    else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = [0u8; 16];
    s.write_all(b"PING\r\n").is_ok()
        && s.read(&mut buf)
            .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
}

fn start() -> Option<Server> {
    let Some(bin) = binary() else {
        assert!(
            std::env::var_os("FAILOVER_REQUIRE_REDIS").is_none(),
            "redis-server not found (scripts/ensure-redis.sh installs it)"
        );
        eprintln!("skipped: redis-server not found (scripts/ensure-redis.sh installs it)");
        return None;
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let dir = std::env::temp_dir().join(format!("failover-redis-rs-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let child = Command::new(&bin)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(["--appendonly", "no", "--protected-mode", "no", "--dir"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server starts");
    let server = Server { child, port, dir };
    for _ in 0..100 {
        // At most ~10 s.
        if ping(port) {
            return Some(server);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("redis-server did not answer PING within 10 s");
}

/// Runs `f` on a thread with a large stack: a debug build moves the fleet's plain data (hundreds
/// of KB) through the stack.
fn big_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn the_example_shares_an_open_over_a_real_redis() {
    big_stack(shares_an_open);
}

fn shares_an_open() {
    let Some(server) = start() else { return };
    let url = format!("redis://127.0.0.1:{}/0", server.port);
    let r = failover_fleet_redis_example::demo(&url, "rs-example").unwrap();
    println!("{r:?}");
    assert_eq!(r.rounds_failed, [0, 0, 0]);
    assert_eq!(r.rounds_ok, [3, 3, 3]);
    assert_eq!(r.live, [3, 3, 3]);
    assert_eq!(r.primary, ["open", "open", "open"]);
    assert_eq!(r.epochs, [1, 1, 1]);
    assert_eq!(r.third_window_failures, 6);
    // The keys are the documented ones, each with a TTL.
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut con = client.get_connection().unwrap();
    let mut keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut con).unwrap();
    keys.sort();
    assert!(keys.contains(&"fo:{rs-example}:hb".to_owned()), "{keys:?}");
    assert!(
        keys.contains(&"fo:{rs-example}:reg:primary".to_owned()),
        "{keys:?}"
    );
    assert!(
        keys.contains(&"fo:{rs-example}:vote:primary:1".to_owned()),
        "{keys:?}"
    );
    for k in &keys {
        let ttl: i64 = redis::cmd("PTTL").arg(k).query(&mut con).unwrap();
        assert!(ttl > 0, "{k} has no TTL");
    }
}

#[test]
fn a_server_that_does_not_answer_fails_the_round_within_the_timeouts() {
    big_stack(silent_server);
}

fn silent_server() {
    // A listener that accepts and never answers: the command timeout ends the round, which the
    // core counts as failed; after three the instance is degraded.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let url = format!("redis://127.0.0.1:{port}/0");
    let policy = failover_core::Policy::default();
    let mut router = Box::new(failover_core::DefaultRouter::new(&policy, &["a", "b"]).unwrap());
    let mut d = failover_fleet_redis_example::FleetDriver::new(
        &router,
        "silent",
        1,
        failover_core::fleet::FleetConfig::default(),
        &url,
    )
    .unwrap();
    for i in 0..3 {
        let now = failover_fleet_redis_example::unix_ms();
        d.sync_now(now);
        let t = std::time::Instant::now();
        assert_eq!(d.run_round(&mut router, now), Some(false), "round {i}");
        // (A bound far above the 250 ms timeout, only to catch a hang.)
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    }
    assert!(d.fleet().degraded());
    assert_eq!(d.rounds_failed, 3);
    assert!(matches!(
        d.poll_event(),
        Some(failover_core::fleet::FleetEvent::Degraded { failures: 3, .. })
    ));
    drop(l);
}
