//! The charts (`--svg`, `--png`, `year --svg`, `year --png`): well-formed SVG, the outcome panels
//! present, no two labels overlapping, and a PNG rendered through `rsvg-convert` when it is
//! installed (required when `FAILOVER_REQUIRE_RSVG=1`, as `scripts/test-all.sh` can set it).

use std::path::{Path, PathBuf};
use std::process::Command;

fn tmp(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("failover-sim-chart-tests");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn run_ok(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_failover-sim"))
        .args(args)
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A label's box, measured as the renderer promises to: 0.6 em per character (wider than
/// Helvetica's and Arial's average), 0.8 em above the baseline and 0.25 em below.
#[derive(Debug)]
struct Label {
    text: String,
    x0: f64,
    y0: f64,
    x1: f64,
    y1: f64,
}

fn attr(n: roxmltree::Node, name: &str) -> Option<f64> {
    n.attribute(name).and_then(|v| v.parse().ok())
}

/// Every `<text>` of the document with its box (font size and anchor inherited as SVG does).
fn labels(doc: &roxmltree::Document) -> Vec<Label> {
    let mut out = Vec::new();
    for n in doc.descendants().filter(|n| n.has_tag_name("text")) {
        let text: String = n
            .descendants()
            .filter(|d| d.is_text())
            .filter_map(|d| d.text())
            .collect();
        let inherited = |name: &str| n.ancestors().find_map(|a| a.attribute(name));
        let size: f64 = inherited("font-size").and_then(|v| v.parse().ok()).unwrap();
        let anchor = inherited("text-anchor").unwrap_or("start");
        assert!(
            n.children().all(|c| c.is_text()),
            "`{text}`: a label is one run of text (a tspan would shift it unmeasured)"
        );
        let (x, y) = (attr(n, "x").unwrap(), attr(n, "y").unwrap());
        let w = 0.6 * size * text.chars().count() as f64;
        let x0 = match anchor {
            "middle" => x - w / 2.0,
            "end" => x - w,
            _ => x,
        };
        out.push(Label {
            text,
            x0,
            y0: y - 0.8 * size,
            x1: x0 + w,
            y1: y + 0.25 * size,
        });
    }
    out
}

/// Parses the chart and checks that no two labels' boxes intersect and that every label lies
/// within the picture; returns the document's text.
fn check_chart(svg: &str) -> roxmltree::Document<'_> {
    let doc = roxmltree::Document::parse(svg).expect("well-formed SVG");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    let width = attr(root, "width").unwrap();
    let height = attr(root, "height").unwrap();
    let ls = labels(&doc);
    assert!(ls.len() > 20, "{} labels", ls.len());
    for l in &ls {
        assert!(
            l.x0 >= 0.0 && l.x1 <= width && l.y0 >= 0.0 && l.y1 <= height,
            "outside the picture: {l:?}"
        );
    }
    for (i, a) in ls.iter().enumerate() {
        for b in &ls[i + 1..] {
            let overlap = a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;
            assert!(!overlap, "labels overlap:\n  {a:?}\n  {b:?}");
        }
    }
    doc
}

fn count(doc: &roxmltree::Document, tag: &str, class: &str) -> usize {
    doc.descendants()
        .filter(|n| n.has_tag_name(tag) && n.attribute("class") == Some(class))
        .count()
}

fn all_text(doc: &roxmltree::Document) -> String {
    labels(doc)
        .into_iter()
        .map(|l| l.text)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn scenario_chart_shows_outcomes_without_overlapping_labels() {
    let path = tmp("outage.svg");
    run_ok(&["-q", "--svg", path.to_str().unwrap()]);
    let svg = std::fs::read_to_string(&path).unwrap();
    let doc = check_chart(&svg);
    // Outcomes: failed requests of each strategy, latency, requests, failed calls by kind.
    for key in ["no_failover", "naive", "policy"] {
        assert!(
            doc.descendants()
                .any(|n| n.attribute("class") == Some("failed")
                    && n.attribute("data-strategy") == Some(key)),
            "failed requests of {key}"
        );
    }
    assert_eq!(count(&doc, "path", "latency"), 3, "p50, p99, naive p99");
    assert_eq!(count(&doc, "path", "requests"), 1);
    assert_eq!(count(&doc, "path", "kind"), 4, "5xx, timeout, 429, other");
    let text = all_text(&doc);
    // The policy's key parameters in the title block, the stages labelled.
    assert!(
        text.contains("policy: opens on 3 server errors in a row"),
        "{text}"
    );
    assert!(text.contains("ramp 5 % → 25 % → 50 % → 100 %"), "{text}");
    assert!(
        count(&doc, "text", "stage") >= 3,
        "open and ramp stages labelled"
    );
    assert!(text.contains("primary opened") && text.contains("primary recovered"));
}

#[test]
fn year_chart_shows_the_overview_and_zoomed_incidents() {
    let path = tmp("year.svg");
    let out = run_ok(&[
        "year",
        "--days",
        "30",
        "--rate",
        "2",
        "--providers",
        "2",
        "--seed",
        "5",
        "-q",
        "--svg",
        path.to_str().unwrap(),
    ]);
    assert!(out.contains("Chart written to"), "{out}");
    let svg = std::fs::read_to_string(&path).unwrap();
    let doc = check_chart(&svg);
    assert_eq!(
        count(&doc, "path", "daily"),
        3,
        "failed per day per strategy"
    );
    assert_eq!(count(&doc, "g", "incidents"), 2, "incidents per provider");
    let zooms = count(&doc, "text", "zoom-title");
    assert!((1..=3).contains(&zooms), "{zooms} zoomed incidents");
    assert_eq!(count(&doc, "path", "kind"), 4 * zooms);
    // Deterministic to the byte.
    let again = tmp("year-again.svg");
    run_ok(&[
        "year",
        "--days",
        "30",
        "--rate",
        "2",
        "--providers",
        "2",
        "--seed",
        "5",
        "-q",
        "--svg",
        again.to_str().unwrap(),
    ]);
    assert_eq!(svg, std::fs::read_to_string(&again).unwrap());
}

fn rsvg_available() -> bool {
    let found = Command::new("rsvg-convert")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("FAILOVER_REQUIRE_RSVG").as_deref() != Ok("1"),
            "FAILOVER_REQUIRE_RSVG=1 but rsvg-convert is not installed (Debian: librsvg2-bin)"
        );
        eprintln!("skipped: rsvg-convert is not installed (Debian: apt-get install librsvg2-bin)");
    }
    found
}

/// A PNG's width and height, from its IHDR chunk.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "a PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&bytes[16..20]), be(&bytes[20..24]))
}

#[test]
fn charts_render_to_png() {
    if !rsvg_available() {
        return;
    }
    let png = tmp("outage.png");
    run_ok(&["-q", "--png", png.to_str().unwrap()]);
    let (w, h) = png_size(&std::fs::read(&png).unwrap());
    assert_eq!(w, 1500, "1000 px at a zoom of 1.5");
    assert!(h > 1500, "{h}");
    let png = tmp("year.png");
    run_ok(&[
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
        "--png",
        png.to_str().unwrap(),
    ]);
    assert_eq!(png_size(&std::fs::read(&png).unwrap()).0, 1500);
}

#[test]
fn trace_chart_names_all_four_strategies() {
    // 30 minutes, one request a second; the primary answers 503 from minute 5 to 15 and the
    // gateway retried on the secondary.
    let mut s = String::from("timestamp_ms,provider,status,latency_ms,request_id\n");
    let t0: u64 = 1_763_640_000_000;
    for i in 0..1800u64 {
        let t = t0 + i * 1000;
        if (300..900).contains(&i) {
            s.push_str(&format!("{t},primary,503,200,r{i}\n"));
            s.push_str(&format!("{},secondary,200,1000,r{i}\n", t + 200));
        } else {
            s.push_str(&format!("{t},primary,200,800,r{i}\n"));
        }
    }
    let trace = tmp("trace.csv");
    std::fs::write(&trace, s).unwrap();
    let path = tmp("trace.svg");
    run_ok(&[
        "-q",
        "--trace",
        trace.to_str().unwrap(),
        "--svg",
        path.to_str().unwrap(),
    ]);
    let svg = std::fs::read_to_string(&path).unwrap();
    let doc = check_chart(&svg);
    let text = all_text(&doc);
    // The title block wraps rather than dropping a strategy that does not fit on its line.
    for label in [
        "as logged: ",
        "no failover: ",
        "naive failover: ",
        "policy: 100",
    ] {
        assert!(text.contains(label), "{label} missing:\n{text}");
    }
    assert_eq!(count(&doc, "path", "failed"), 4);
}
