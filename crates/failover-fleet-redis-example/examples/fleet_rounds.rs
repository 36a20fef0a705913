//! Three fleet instances over a real Redis with the `redis` crate: two open the primary on their
//! own evidence, the third adopts the open from the fleet.
//!
//! ```text
//! cargo run -p failover-fleet-redis-example --example fleet_rounds -- redis://127.0.0.1:6379/0
//! ```

fn main() {
    // A debug build moves the fleet's plain data (hundreds of KB) through the stack.
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(run)
        .expect("a thread")
        .join()
        .expect("the example's thread");
}

fn run() {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "redis://127.0.0.1:6379/0".to_owned());
    let service = format!("example-{}", std::process::id());
    match failover_fleet_redis_example::demo(&url, &service) {
        Ok(r) => {
            println!("fleet `{service}` on {url}");
            for k in 0..r.primary.len() {
                println!(
                    "  instance {}: {} rounds ok, {} failed, {} live, primary {} (epoch {})",
                    k + 1,
                    r.rounds_ok[k],
                    r.rounds_failed[k],
                    r.live[k],
                    r.primary[k],
                    r.epochs[k]
                );
            }
            println!(
                "  instance 3's window counts {} failures of the others",
                r.third_window_failures
            );
            if r.primary.iter().any(|s| *s != "open") {
                eprintln!("error: the open did not reach every instance");
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
