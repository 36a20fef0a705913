//! Generates one `#[test]` per scenario file and per request scenario file, so a failing file is
//! named by its test.
use std::io::Write;

fn generate(dir_name: &str, out_name: &str, count_const: &str) {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = std::path::Path::new(&manifest)
        .join("../../fixtures")
        .join(dir_name);
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".json"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let out = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join(out_name);
    let mut f = std::fs::File::create(out).unwrap();
    for n in &names {
        let ident: String = n
            .trim_end_matches(".json")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        writeln!(f, "#[test]\nfn {ident}() {{ run(\"{n}\"); }}").unwrap();
    }
    writeln!(f, "const {count_const}: usize = {};", names.len()).unwrap();
}

fn main() {
    generate("scenarios", "scenario_tests.rs", "SCENARIO_COUNT");
    generate("requests", "request_tests.rs", "REQUEST_COUNT");
    generate("fleet", "fleet_tests.rs", "FLEET_COUNT");
}
