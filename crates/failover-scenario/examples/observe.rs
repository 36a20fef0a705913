//! Prints the observed results of a scenario as JSON lines (one per step), for diffing languages:
//! `cargo run -p failover-scenario --example observe -- fixtures/scenarios/FILE.json`
fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: observe SCENARIO.json");
        std::process::exit(2);
    };
    let s = match failover_scenario::Scenario::load(std::path::Path::new(&path)) {
        Ok(s) => s,
        Err(f) => {
            eprintln!("{f}");
            std::process::exit(1);
        }
    };
    match s.observe() {
        Ok(steps) => {
            for r in steps {
                println!("{}", r.to_json());
            }
        }
        Err(f) => {
            eprintln!("{f}");
            std::process::exit(1);
        }
    }
}
