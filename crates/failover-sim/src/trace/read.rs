//! Reading a trace file: CSV or JSON lines, each line parsed into a timestamped outcome, with
//! errors that name the line and the field.

use failover_core::{Outcome, OutcomeKind, classify_status, parse_retry_after};
use serde_json::Value as Json;

use crate::input::{InputError, short};
use crate::progress::Progress;

/// How the trace's times are written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TimeCol {
    Ms,
    Seconds,
}

struct Columns {
    time: (String, TimeCol),
    provider: String,
    outcome: Option<String>,
    status: Option<String>,
    latency: Option<String>,
    retry_after_ms: Option<String>,
    retry_after: Option<String>,
    request_id: Option<String>,
}

const TIME_MS: [&str; 3] = ["timestamp_ms", "ts_ms", "time_ms"];
const TIME_S: [&str; 3] = ["timestamp", "ts", "time"];

pub(super) struct Raw {
    pub(super) line: usize,
    pub(super) at_ms: u64,
    pub(super) provider: String,
    pub(super) outcome: Outcome,
    pub(super) request: Option<String>,
}

fn find_col(header: &[String], names: &[&str]) -> Option<String> {
    header.iter().find(|h| names.contains(&h.as_str())).cloned()
}

impl Columns {
    fn from_header(file: &str, line: usize, header: &[String]) -> Result<Columns, InputError> {
        let time = if let Some(c) = find_col(header, &TIME_MS) {
            (c, TimeCol::Ms)
        } else if let Some(c) = find_col(header, &TIME_S) {
            (c, TimeCol::Seconds)
        } else {
            return Err(InputError::at(
                file,
                line,
                None,
                "no time column: name one `timestamp_ms` (ms) or `timestamp` (seconds, or an RFC 3339 date such as 2026-11-20T14:03:22.5Z)",
            ));
        };
        let provider = find_col(header, &["provider"])
            .ok_or_else(|| InputError::at(file, line, None, "no `provider` column"))?;
        let outcome = find_col(header, &["outcome"]);
        let status = find_col(header, &["status", "status_code", "http_status"]);
        if outcome.is_none() && status.is_none() {
            return Err(InputError::at(
                file,
                line,
                None,
                "no `outcome` column (success, server_error, rate_limited, …) nor `status` column (HTTP status code)",
            ));
        }
        Ok(Columns {
            time,
            provider,
            outcome,
            status,
            latency: find_col(header, &["latency_ms", "duration_ms"]),
            retry_after_ms: find_col(header, &["retry_after_ms"]),
            retry_after: find_col(header, &["retry_after"]),
            request_id: find_col(header, &["request_id", "request", "id"]),
        })
    }
}

/// A field of one line: its text (CSV) or JSON value (JSONL).
#[derive(Clone, Copy)]
enum Field<'a> {
    Text(&'a str),
    Json(&'a Json),
}

impl Field<'_> {
    fn show(&self) -> String {
        match self {
            Field::Text(s) => format!("\"{s}\""),
            Field::Json(v) => short(v),
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Field::Text(s) => s.trim().is_empty(),
            Field::Json(v) => v.is_null() || v.as_str().is_some_and(|s| s.trim().is_empty()),
        }
    }

    fn text(&self) -> Option<String> {
        match self {
            Field::Text(s) => Some(s.trim().to_string()),
            Field::Json(Json::String(s)) => Some(s.trim().to_string()),
            Field::Json(Json::Number(n)) => Some(n.to_string()),
            Field::Json(_) => None,
        }
    }

    fn u64(&self) -> Option<u64> {
        match self {
            Field::Text(s) => s.trim().parse().ok(),
            Field::Json(v) => v.as_u64(),
        }
    }

    fn f64(&self) -> Option<f64> {
        match self {
            Field::Text(s) => s.trim().parse().ok(),
            Field::Json(v) => v.as_f64(),
        }
        .filter(|x: &f64| x.is_finite())
    }
}

/// Turns one line's fields into a call; `get` returns a column's field.
fn parse_line<'a>(
    file: &str,
    line: usize,
    cols: &Columns,
    get: impl Fn(&str) -> Option<Field<'a>>,
) -> Result<Raw, InputError> {
    let bad = |col: &str, msg: String| InputError::at(file, line, Some(col), msg);
    let need = |col: &str| -> Result<Field<'a>, InputError> {
        get(col)
            .filter(|f| !f.is_empty())
            .ok_or_else(|| bad(col, "missing value".to_string()))
    };
    let (tcol, tkind) = &cols.time;
    let tf = need(tcol)?;
    let at_ms = match tkind {
        TimeCol::Ms => tf.u64().ok_or_else(|| {
            bad(tcol, format!("must be whole milliseconds (a non-negative integer), got {}", tf.show()))
        })?,
        TimeCol::Seconds => match tf.f64() {
            Some(s) if (0.0..1e15).contains(&s) => (s * 1000.0).round() as u64,
            Some(_) => return Err(bad(tcol, format!("must be non-negative seconds, got {}", tf.show()))),
            None => tf.text().as_deref().and_then(parse_rfc3339).ok_or_else(|| {
                bad(
                    tcol,
                    format!(
                        "must be seconds (a number) or an RFC 3339 date such as 2026-11-20T14:03:22.5Z, got {}",
                        tf.show()
                    ),
                )
            })?,
        },
    };
    let pf = need(&cols.provider)?;
    let provider = match pf {
        Field::Json(v) if !v.is_string() => {
            return Err(bad(
                &cols.provider,
                format!("must be a name (a string), got {}", pf.show()),
            ));
        }
        _ => pf.text().unwrap_or_default(),
    };
    if provider.len() > 64 {
        return Err(bad(
            &cols.provider,
            "names are at most 64 bytes".to_string(),
        ));
    }
    let kind = match (&cols.outcome, &cols.status) {
        (Some(oc), _) if get(oc).is_some_and(|f| !f.is_empty()) => {
            let f = need(oc)?;
            let s = f.text().unwrap_or_default();
            OutcomeKind::from_name(&s).ok_or_else(|| {
                bad(
                    oc,
                    format!(
                        "unknown outcome {} (expected success, rate_limited, server_error, connection_error, timeout, client_error or cancelled)",
                        f.show()
                    ),
                )
            })?
        }
        (_, Some(sc)) => {
            let f = need(sc)?;
            let code = f
                .u64()
                .and_then(|c| u16::try_from(c).ok())
                .ok_or_else(|| bad(sc, format!("must be an HTTP status code, got {}", f.show())))?;
            classify_status(code)
        }
        (Some(oc), None) => return Err(bad(oc, "missing value".to_string())),
        (None, None) => unreachable!("checked by the header"),
    };
    let latency_ms = match &cols.latency {
        Some(c) => match get(c).filter(|f| !f.is_empty()) {
            None => 0,
            Some(f) => {
                let ms = f.f64().filter(|x| *x >= 0.0).ok_or_else(|| {
                    bad(
                        c,
                        format!(
                            "must be a non-negative number of milliseconds, got {}",
                            f.show()
                        ),
                    )
                })?;
                ms.min(f64::from(u32::MAX)).round() as u32
            }
        },
        None => 0,
    };
    let mut retry_after_ms = None;
    if let Some(c) = &cols.retry_after_ms
        && let Some(f) = get(c).filter(|f| !f.is_empty())
    {
        retry_after_ms = Some(f.u64().ok_or_else(|| {
            bad(
                c,
                format!("must be a non-negative integer, got {}", f.show()),
            )
        })?);
    }
    if retry_after_ms.is_none()
        && let Some(c) = &cols.retry_after
        && let Some(f) = get(c).filter(|f| !f.is_empty())
    {
        let v = f.text().unwrap_or_default();
        // An HTTP-date is read against the line's own time (only meaningful for Unix times).
        retry_after_ms = Some(parse_retry_after(&v, Some(at_ms)).ok_or_else(|| {
            bad(
                c,
                format!(
                    "must be a Retry-After header value (seconds or an HTTP date), got {}",
                    f.show()
                ),
            )
        })?);
    }
    let request = match &cols.request_id {
        Some(c) => get(c).filter(|f| !f.is_empty()).and_then(|f| f.text()),
        None => None,
    };
    Ok(Raw {
        line,
        at_ms,
        provider,
        outcome: Outcome {
            kind,
            latency_ms,
            retry_after_ms,
        },
        request,
    })
}

pub(super) fn read_jsonl(
    file: &str,
    text: &str,
    progress: &mut Progress,
) -> Result<Vec<Raw>, InputError> {
    let total = text.len();
    let mut out = Vec::new();
    let mut offset = 0;
    for (i, l) in text.split('\n').enumerate() {
        offset += l.len() + 1;
        let line = i + 1;
        let l = l.trim();
        if l.is_empty() {
            continue;
        }
        let v: Json = serde_json::from_str(l).map_err(|e| {
            InputError::at(
                file,
                line,
                None,
                format!("invalid JSON (column {}): {e}", e.column()),
            )
        })?;
        let obj = v
            .as_object()
            .ok_or_else(|| InputError::at(file, line, None, "each line must be a JSON object"))?;
        // Each line names its own fields, so optional ones may come and go.
        let keys: Vec<String> = obj.keys().cloned().collect();
        let cols = Columns::from_header(file, line, &keys)?;
        let raw = parse_line(file, line, &cols, |k| obj.get(k).map(Field::Json))?;
        out.push(raw);
        if out.len() % 65_536 == 0 {
            progress.tick(offset, total);
        }
    }
    progress.finish();
    Ok(out)
}

/// Splits one CSV record (RFC 4180 quoting; no newlines inside fields).
pub(super) fn split_csv(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    cur.push('"');
                }
                '"' => quoted = false,
                _ => cur.push(c),
            }
        } else {
            match c {
                ',' => {
                    out.push(std::mem::take(&mut cur));
                    was_quoted = false;
                }
                '"' if cur.trim().is_empty() && !was_quoted => {
                    cur.clear();
                    quoted = true;
                    was_quoted = true;
                }
                _ => cur.push(c),
            }
        }
    }
    if quoted {
        return Err("unclosed quote".to_string());
    }
    out.push(cur);
    Ok(out)
}

pub(super) fn read_csv(
    file: &str,
    text: &str,
    progress: &mut Progress,
) -> Result<Vec<Raw>, InputError> {
    let total = text.len();
    let mut lines = text.split('\n').enumerate();
    let (header_line, header) = loop {
        match lines.next() {
            Some((i, l)) if !l.trim().is_empty() => break (i + 1, l.trim_end_matches('\r')),
            Some(_) => {}
            None => return Err(InputError::file(file, "the trace is empty")),
        }
    };
    let header: Vec<String> = split_csv(header)
        .map_err(|e| InputError::at(file, header_line, None, e))?
        .into_iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let cols = Columns::from_header(file, header_line, &header)?;
    let mut out = Vec::new();
    let mut offset = 0;
    for (i, l) in lines {
        offset += l.len() + 1;
        let line = i + 1;
        let l = l.trim_end_matches('\r');
        if l.trim().is_empty() || l.starts_with('#') {
            continue;
        }
        let fields = split_csv(l).map_err(|e| InputError::at(file, line, None, e))?;
        if fields.len() != header.len() {
            return Err(InputError::at(
                file,
                line,
                None,
                format!(
                    "{} fields, but the header has {}",
                    fields.len(),
                    header.len()
                ),
            ));
        }
        let raw = parse_line(file, line, &cols, |name| {
            header
                .iter()
                .position(|h| h == name)
                .map(|i| Field::Text(fields[i].as_str()))
        })?;
        out.push(raw);
        if out.len() % 65_536 == 0 {
            progress.tick(offset, total);
        }
    }
    progress.finish();
    Ok(out)
}

/// `2026-11-20T14:03:22.123Z`, `2026-11-20 14:03:22+01:00`, `2026-11-20T14:03:22` (UTC) → Unix ms.
pub(super) fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u64> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !(1970..=9999).contains(&y)
        || !(1..=12).contains(&mo)
        || !(1..=31).contains(&d)
        || h > 23
        || mi > 59
        || sec > 60
    {
        return None;
    }
    let mut i = 19;
    let mut ms = 0u64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let frac = &s[start..i.min(start + 3)];
        ms = frac.parse::<u64>().ok()? * 10u64.pow(3 - frac.len() as u32);
    }
    let offset_min: i64 = match &s[i..] {
        "" | "Z" | "z" => 0,
        z if z.len() == 6 && (z.starts_with('+') || z.starts_with('-')) && &z[3..4] == ":" => {
            let oh: i64 = z[1..3].parse().ok()?;
            let om: i64 = z[4..6].parse().ok()?;
            let m = oh * 60 + om;
            if z.starts_with('-') { -m } else { m }
        }
        _ => return None,
    };
    let yy = if mo <= 2 { y - 1 } else { y };
    let era = yy / 400;
    let yoe = yy - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = (days * 86_400 + h * 3600 + mi * 60 + sec) as i64 - offset_min * 60;
    u64::try_from(secs).ok().map(|s| s * 1000 + ms)
}
