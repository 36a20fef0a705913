//! What the scenario chart (`--svg`, `svg.rs`) and the year's (`year --svg`, `year/chart.rs`)
//! share: a canvas that never draws two overlapping labels, the colour-blind-safe palette, the
//! outcome panels (failed requests per strategy, latency, request rate, failed calls by kind), the
//! policy's circuit states with their stages labelled, and writing SVG and PNG.
//!
//! Every label goes through [`Canvas::text`], which measures it (0.6 em per character, wider than
//! Helvetica's and Arial's average of about 0.55 em, plus the font's ascent and descent) and draws
//! it only where it overlaps no label drawn before; a label that does not fit is left out, and
//! what it said stays in the tooltip of the shape it named. The tests measure the labels of the
//! written SVG the same way and check that no two boxes intersect.
//!
//! Colours are Okabe and Ito's palette ("Color Universal Design", 2008), distinguishable with
//! every common colour-vision deficiency; the strategies also differ by dash pattern.

use std::fmt::Write as _;
use std::path::Path;

use crate::input::InputError;
use crate::run::FailureGroup;

/// Okabe–Ito blue.
pub const BLUE: &str = "#0072B2";
/// Okabe–Ito orange.
pub const ORANGE: &str = "#E69F00";
/// Okabe–Ito vermillion.
pub const VERMILLION: &str = "#D55E00";
/// Okabe–Ito bluish green.
pub const GREEN: &str = "#009E73";
/// Okabe–Ito reddish purple.
pub const PURPLE: &str = "#CC79A7";
/// Okabe–Ito sky blue.
pub const SKY: &str = "#56B4E9";
/// Okabe–Ito yellow.
pub const YELLOW: &str = "#F0E442";
/// Neutral grey.
pub const GREY: &str = "#8C8C8C";

const PROVIDERS: [&str; 8] = [
    BLUE, ORANGE, GREEN, PURPLE, SKY, VERMILLION, YELLOW, "#000000",
];

/// A provider's colour, by priority.
#[must_use]
pub fn provider_color(p: usize) -> &'static str {
    PROVIDERS[p % PROVIDERS.len()]
}

/// A strategy's colour and dash pattern, by key.
#[must_use]
pub fn strategy_style(key: &str) -> (&'static str, &'static str) {
    match key {
        "no_failover" => (VERMILLION, "6 3"),
        "naive" => (ORANGE, "2 2"),
        "policy" => (BLUE, "none"),
        _ => ("#000000", "8 2 2 2"),
    }
}

/// A failure group's colour.
#[must_use]
pub fn group_color(g: FailureGroup) -> &'static str {
    match g {
        FailureGroup::Server => VERMILLION,
        FailureGroup::Timeout => PURPLE,
        FailureGroup::RateLimited => SKY,
        FailureGroup::Other => GREY,
    }
}

/// Escapes text for XML.
#[must_use]
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => {}
            c => o.push(c),
        }
    }
    o
}

/// `1,234,567`.
#[must_use]
pub fn thousands(n: u64) -> String {
    crate::report::thousands(n)
}

/// A label's box.
#[derive(Clone, Copy, Debug)]
pub struct Rect {
    /// Left.
    pub x0: f64,
    /// Top.
    pub y0: f64,
    /// Right.
    pub x1: f64,
    /// Bottom.
    pub y1: f64,
}

impl Rect {
    /// Whether the two boxes share any area.
    #[must_use]
    pub fn intersects(&self, o: &Rect) -> bool {
        self.x0 < o.x1 && o.x0 < self.x1 && self.y0 < o.y1 && o.y0 < self.y1
    }
}

/// Text anchor.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// `start`.
    Start,
    /// `middle`.
    Middle,
    /// `end`.
    End,
}

/// Width of `text` at `size`, px (0.6 em a character).
#[must_use]
pub fn text_width(text: &str, size: f64) -> f64 {
    0.6 * size * text.chars().count() as f64
}

/// The box of a label whose baseline starts (or is centred, or ends) at `(x, y)`.
#[must_use]
pub fn text_box(x: f64, y: f64, size: f64, anchor: Anchor, text: &str) -> Rect {
    let w = text_width(text, size);
    let x0 = match anchor {
        Anchor::Start => x,
        Anchor::Middle => x - w / 2.0,
        Anchor::End => x - w,
    };
    Rect {
        x0,
        y0: y - 0.8 * size,
        x1: x0 + w,
        y1: y + 0.25 * size,
    }
}

/// An SVG body under construction, with the boxes of the labels drawn so far.
pub struct Canvas {
    body: String,
    boxes: Vec<Rect>,
    /// Width, px.
    pub width: f64,
}

impl Canvas {
    /// An empty canvas `width` px wide.
    #[must_use]
    pub fn new(width: f64) -> Canvas {
        Canvas {
            body: String::new(),
            boxes: Vec::new(),
            width,
        }
    }

    /// Appends shapes (no text).
    pub fn raw(&mut self, s: &str) {
        self.body.push_str(s);
        self.body.push('\n');
    }

    /// Whether `r` overlaps no label drawn so far and lies within the canvas.
    #[must_use]
    pub fn free(&self, r: &Rect) -> bool {
        r.x0 >= 0.0 && r.x1 <= self.width && !self.boxes.iter().any(|b| b.intersects(r))
    }

    /// Draws `text` (font-size `size`, extra attributes `attrs`) unless it would overlap a label
    /// already drawn; returns whether it was drawn.
    pub fn text(
        &mut self,
        x: f64,
        y: f64,
        size: f64,
        anchor: Anchor,
        attrs: &str,
        text: &str,
    ) -> bool {
        let r = text_box(x, y, size, anchor, text);
        if !self.free(&r) {
            return false;
        }
        self.boxes.push(r);
        let a = match anchor {
            Anchor::Start => "",
            Anchor::Middle => r#" text-anchor="middle""#,
            Anchor::End => r#" text-anchor="end""#,
        };
        let _ = writeln!(
            self.body,
            r#"<text x="{x:.1}" y="{y:.1}" font-size="{size}"{a} {attrs}>{}</text>"#,
            esc(text)
        );
        true
    }

    /// A row of coloured legend keys with labels from `x`; returns where the row ends.
    pub fn legend(&mut self, mut x: f64, y: f64, items: &[(&str, &str, &str)]) -> f64 {
        let w: f64 = items
            .iter()
            .map(|(_, _, l)| 36.0 + text_width(l, 11.0))
            .sum();
        self.backdrop(x, y, w);
        for (color, dash, label) in items {
            let _ = writeln!(
                self.body,
                r#"<line x1="{x:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{color}" stroke-width="2.5" stroke-dasharray="{dash}"/>"#,
                y - 4.0,
                x + 18.0,
                y - 4.0
            );
            self.text(x + 22.0, y, 11.0, Anchor::Start, r##"fill="#333""##, label);
            x += 36.0 + text_width(label, 11.0);
        }
        x
    }

    /// A white, mostly opaque band behind a legend row whose baseline is `y`, so that the data
    /// drawn before it does not run through its labels.
    pub fn backdrop(&mut self, x: f64, y: f64, w: f64) {
        let _ = writeln!(
            self.body,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="16" fill="#fff" fill-opacity="0.85"/>"##,
            x - 4.0,
            y - 12.0,
            w - 6.0
        );
    }

    /// The finished document.
    #[must_use]
    pub fn finish(self, height: f64, title: &str) -> String {
        let w = self.width;
        let mut o = String::with_capacity(self.body.len() + 600);
        let _ = writeln!(
            o,
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{height:.0}" viewBox="0 0 {w} {height:.0}" font-family="Helvetica, Arial, sans-serif" font-size="12">"##
        );
        let _ = writeln!(o, "<title>{}</title>", esc(title));
        let _ = writeln!(o, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
        let _ = writeln!(
            o,
            r##"<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#ffffff"/><rect width="3" height="6" fill="{GREY}"/></pattern></defs>"##
        );
        o.push_str(&self.body);
        o.push_str("</svg>\n");
        o
    }
}

/// Writes `doc` as SVG and/or PNG (through `rsvg-convert`); returns a line per file for the
/// report.
pub fn write(doc: &str, svg: Option<&Path>, png: Option<&Path>) -> Result<String, InputError> {
    let mut said = String::new();
    if let Some(path) = svg {
        std::fs::write(path, doc).map_err(|e| {
            InputError::file(&path.display().to_string(), format!("cannot write: {e}"))
        })?;
        let _ = writeln!(said, "Chart written to {}.", path.display());
    }
    if let Some(path) = png {
        png_from_svg(doc, path)?;
        let _ = writeln!(said, "Chart written to {}.", path.display());
    }
    Ok(said)
}

/// Renders `doc` to a PNG file with `rsvg-convert` (Debian: librsvg2-bin).
fn png_from_svg(doc: &str, path: &Path) -> Result<(), InputError> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let name = path.display().to_string();
    let mut child = Command::new("rsvg-convert")
        .args(["--format", "png", "--zoom", "1.5", "--output"])
        .arg(path)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            InputError::file(
                &name,
                format!(
                    "a PNG needs rsvg-convert (Debian/Ubuntu: apt-get install librsvg2-bin; macOS: brew install librsvg), which could not be run: {e}; --svg writes the chart without it"
                ),
            )
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(doc.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| InputError::file(&name, format!("rsvg-convert: {e}")))?;
    if !out.status.success() {
        return Err(InputError::file(
            &name,
            format!(
                "rsvg-convert failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    Ok(())
}

/// Maps `[t0, t1)` (ms) onto `[x0, x1]` (px).
#[derive(Clone, Copy)]
pub struct TimeAxis {
    /// First ms shown.
    pub t0: u64,
    /// End, ms.
    pub t1: u64,
    /// Left, px.
    pub x0: f64,
    /// Right, px.
    pub x1: f64,
}

impl TimeAxis {
    /// The x of `t`, clamped to the axis.
    #[must_use]
    pub fn x(&self, t: u64) -> f64 {
        let t = t.clamp(self.t0, self.t1);
        self.x0 + (self.x1 - self.x0) * (t - self.t0) as f64 / (self.t1 - self.t0).max(1) as f64
    }

    /// Tick spacing giving at most 10 ticks.
    #[must_use]
    pub fn step(&self) -> u64 {
        const STEPS: [u64; 16] = [
            10_000,
            30_000,
            60_000,
            300_000,
            600_000,
            900_000,
            1_800_000,
            3_600_000,
            7_200_000,
            10_800_000,
            21_600_000,
            43_200_000,
            86_400_000,
            604_800_000,
            2_592_000_000,
            7_776_000_000,
        ];
        let d = self.t1 - self.t0;
        STEPS
            .iter()
            .copied()
            .find(|&s| d / s <= 10)
            .unwrap_or(7_776_000_000)
    }

    /// Ticks (multiples of the step, from `t0` rounded up) labelled by `label`, below `y`, and
    /// faint vertical lines from `top` to `y`.
    pub fn draw(&self, c: &mut Canvas, top: f64, y: f64, label: &dyn Fn(u64) -> String) {
        let step = self.step();
        let mut t = self.t0.div_ceil(step) * step;
        while t <= self.t1 {
            let tx = self.x(t);
            c.raw(&format!(
                r##"<line x1="{tx:.1}" y1="{y:.1}" x2="{tx:.1}" y2="{:.1}" stroke="#999"/><line x1="{tx:.1}" y1="{top:.1}" x2="{tx:.1}" y2="{y:.1}" stroke="#000" stroke-opacity="0.07"/>"##,
                y + 5.0
            ));
            c.text(
                tx,
                y + 17.0,
                11.0,
                Anchor::Middle,
                r##"fill="#555""##,
                &label(t),
            );
            t += step;
        }
    }
}

/// Buckets `[lo, hi]` around `b`, widened (up to `reach` each side) until their `weight` sums to
/// at least `min`: with little traffic a single bucket is noise.
#[must_use]
pub fn around(
    weight: &dyn Fn(usize) -> u64,
    n: usize,
    b: usize,
    min: u64,
    reach: usize,
) -> (usize, usize) {
    let (mut lo, mut hi) = (b, b);
    let mut total = weight(b);
    while total < min && hi - lo < 2 * reach && (lo > 0 || hi + 1 < n) {
        if lo > 0 {
            lo -= 1;
            total += weight(lo);
        }
        if hi + 1 < n {
            hi += 1;
            total += weight(hi);
        }
    }
    (lo, hi)
}

/// A panel's frame, title and y gridlines (`ticks`: value and label, values in 0..=1 of the
/// height).
pub fn frame(
    c: &mut Canvas,
    ax: &TimeAxis,
    top: f64,
    h: f64,
    title: &str,
    note: &str,
    ticks: &[(f64, String)],
) {
    c.text(
        ax.x0,
        top - 8.0,
        12.0,
        Anchor::Start,
        r##"font-weight="bold" fill="#222""##,
        title,
    );
    if !note.is_empty() {
        let nx = ax.x0 + text_width(title, 12.0) + 10.0;
        c.text(nx, top - 8.0, 11.0, Anchor::Start, r##"fill="#666""##, note);
    }
    for (v, label) in ticks {
        let y = top + h * (1.0 - v);
        c.raw(&format!(
            r##"<line x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e3e3e3"/>"##,
            ax.x0, ax.x1
        ));
        c.text(
            ax.x0 - 6.0,
            y + 4.0,
            10.0,
            Anchor::End,
            r##"fill="#666""##,
            label,
        );
    }
    c.raw(&format!(
        r##"<rect x="{:.1}" y="{top:.1}" width="{:.1}" height="{h:.1}" fill="none" stroke="#999"/>"##,
        ax.x0,
        ax.x1 - ax.x0
    ));
}

/// The policy's key parameters, one line each at `x` from `y` down, then `note` in grey.
/// Returns the note's baseline.
pub fn policy_block(
    c: &mut Canvas,
    x: f64,
    mut y: f64,
    policy: &failover_core::Policy,
    note: &str,
) -> f64 {
    for line in crate::report::policy_summary(policy) {
        c.text(
            x,
            y,
            11.0,
            Anchor::Start,
            r##"fill="#444""##,
            &format!("policy: {line}"),
        );
        y += 14.0;
    }
    c.text(x, y, 11.0, Anchor::Start, r##"fill="#777""##, note);
    y
}

/// A "nice" axis maximum at or above `v`, and its gridlines at 0, ½ and 1 of it.
#[must_use]
pub fn nice_max(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * mag >= v {
            return m * mag;
        }
    }
    10.0 * mag
}

/// The label of decade `d` on a `log10(1 + v)` axis: `0`, `10`, `100`, `1k`.
#[must_use]
pub fn log_tick(d: i32) -> String {
    if d == 0 {
        "0".to_string()
    } else {
        short_num(10f64.powi(d))
    }
}

/// Formats an axis value: `0`, `12`, `1.5k`, `2M`.
#[must_use]
pub fn short_num(v: f64) -> String {
    if v >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if v >= 1e3 {
        format!("{}k", trim(v / 1e3))
    } else {
        trim(v)
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").unwrap_or(&s).to_string()
}

mod panels;

pub use panels::{Run, outcome_panels, state_bands};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canvas_refuses_an_overlapping_label() {
        let mut c = Canvas::new(400.0);
        assert!(c.text(10.0, 20.0, 12.0, Anchor::Start, "", "first label"));
        assert!(!c.text(40.0, 24.0, 12.0, Anchor::Start, "", "second"));
        assert!(c.text(40.0, 40.0, 12.0, Anchor::Start, "", "below"));
        assert!(!c.text(395.0, 60.0, 12.0, Anchor::Start, "", "off the edge"));
        assert_eq!(esc("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
        assert_eq!(nice_max(37.0), 50.0);
        assert_eq!(short_num(2500.0), "2.5k");
    }
}
