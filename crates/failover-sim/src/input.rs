//! Reading input files without ever panicking: every error names the file, the line and the field
//! at fault. JSON values are read through [`Node`], which remembers its path in the document so an
//! error can be pointed at the line it came from.

use std::fmt;

use serde_json::Value as Json;

/// A rejected input: `file:line: field: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// The file (or `--flag` for command-line values).
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The field at fault (a path such as `providers[0].faults[1].rate`, or a column name).
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl InputError {
    /// An error about a whole file.
    pub fn file(file: &str, message: impl Into<String>) -> Self {
        InputError {
            file: file.to_string(),
            line: None,
            field: None,
            message: message.into(),
        }
    }

    /// An error at a line, about a field.
    pub fn at(file: &str, line: usize, field: Option<&str>, message: impl Into<String>) -> Self {
        InputError {
            file: file.to_string(),
            line: Some(line),
            field: field.map(str::to_string),
            message: message.into(),
        }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for InputError {}

/// Reads a file as UTF-8 text.
pub fn read_text(path: &std::path::Path) -> Result<String, InputError> {
    let name = path.display().to_string();
    let bytes =
        std::fs::read(path).map_err(|e| InputError::file(&name, format!("cannot read: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        let line = 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        InputError::at(&name, line, None, "not UTF-8 text")
    })
}

/// One step of a path in a JSON document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// An object key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// A parsed JSON document with its text, for locating errors.
pub struct Doc {
    /// The file name as shown in errors.
    pub file: String,
    text: String,
    root: Json,
}

impl Doc {
    /// Parses `text`; a syntax error names its line and column.
    pub fn parse(file: &str, text: String) -> Result<Doc, InputError> {
        let root: Json = serde_json::from_str(&text).map_err(|e| {
            InputError::at(
                file,
                e.line().max(1),
                None,
                format!(
                    "invalid JSON (column {}): {}",
                    e.column(),
                    strip_position(&e.to_string())
                ),
            )
        })?;
        Ok(Doc {
            file: file.to_string(),
            text,
            root,
        })
    }

    /// The root value.
    pub fn root(&self) -> Node<'_> {
        Node {
            doc: self,
            value: &self.root,
            path: Vec::new(),
        }
    }

    /// The 1-based line where the value (or, for a key, the key) at `path` starts.
    pub fn line_of(&self, path: &[Seg]) -> usize {
        let offset = locate(self.text.as_bytes(), path).unwrap_or(0);
        1 + self.text.as_bytes()[..offset.min(self.text.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
    }
}

/// serde_json appends " at line L column C"; we print the position ourselves.
fn strip_position(msg: &str) -> &str {
    match msg.rfind(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    }
}

/// A value in a [`Doc`] with its path.
#[derive(Clone)]
pub struct Node<'a> {
    doc: &'a Doc,
    /// The value.
    pub value: &'a Json,
    path: Vec<Seg>,
}

impl<'a> Node<'a> {
    /// The path as text: `providers[0].faults[1].rate`.
    pub fn path_text(&self) -> String {
        let mut s = String::new();
        for seg in &self.path {
            match seg {
                Seg::Key(k) => {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    s.push_str(k);
                }
                Seg::Index(i) => s.push_str(&format!("[{i}]")),
            }
        }
        s
    }

    /// An error about this value.
    pub fn err(&self, message: impl Into<String>) -> InputError {
        let field = self.path_text();
        InputError {
            file: self.doc.file.clone(),
            line: Some(self.doc.line_of(&self.path)),
            field: (!field.is_empty()).then_some(field),
            message: message.into(),
        }
    }

    fn child(&self, seg: Seg, value: &'a Json) -> Node<'a> {
        let mut path = self.path.clone();
        path.push(seg);
        Node {
            doc: self.doc,
            value,
            path,
        }
    }

    /// The object's field `key`, if present (an error if this is not an object).
    pub fn get(&self, key: &str) -> Result<Option<Node<'a>>, InputError> {
        let obj = self
            .value
            .as_object()
            .ok_or_else(|| self.err("must be an object"))?;
        Ok(obj
            .get(key)
            .map(|v| self.child(Seg::Key(key.to_string()), v)))
    }

    /// The object's field `key`, which must be present.
    pub fn req(&self, key: &str) -> Result<Node<'a>, InputError> {
        self.get(key)?
            .ok_or_else(|| self.err(format!("missing field `{key}`")))
    }

    /// Refuses keys other than `allowed` (a misspelt field would otherwise be ignored silently).
    pub fn only(&self, allowed: &[&str]) -> Result<(), InputError> {
        let obj = self
            .value
            .as_object()
            .ok_or_else(|| self.err("must be an object"))?;
        for (k, v) in obj {
            if !allowed.contains(&k.as_str()) {
                return Err(self.child(Seg::Key(k.clone()), v).err(format!(
                    "unknown field (expected one of: {})",
                    allowed.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// The elements of an array.
    pub fn items(&self) -> Result<Vec<Node<'a>>, InputError> {
        let arr = self
            .value
            .as_array()
            .ok_or_else(|| self.err("must be a list"))?;
        Ok(arr
            .iter()
            .enumerate()
            .map(|(i, v)| self.child(Seg::Index(i), v))
            .collect())
    }

    /// A string.
    pub fn str(&self) -> Result<&'a str, InputError> {
        self.value
            .as_str()
            .ok_or_else(|| self.err("must be a string"))
    }

    /// A finite number.
    pub fn f64(&self) -> Result<f64, InputError> {
        self.value
            .as_f64()
            .filter(|x| x.is_finite())
            .ok_or_else(|| self.err(format!("must be a number, got {}", short(self.value))))
    }

    /// A fraction in [0, 1].
    pub fn fraction(&self) -> Result<f64, InputError> {
        let x = self.f64()?;
        if (0.0..=1.0).contains(&x) {
            Ok(x)
        } else {
            Err(self.err(format!("must be a fraction between 0 and 1, got {x}")))
        }
    }

    /// A non-negative integer.
    pub fn u64(&self) -> Result<u64, InputError> {
        self.value.as_u64().ok_or_else(|| {
            self.err(format!(
                "must be a non-negative integer, got {}",
                short(self.value)
            ))
        })
    }

    /// A duration: a number of milliseconds or a string such as `"90s"`, `"1h30m"`, `"1:30:00"`.
    pub fn duration(&self) -> Result<u64, InputError> {
        match self.value {
            Json::String(s) => parse_duration(s).ok_or_else(|| {
                self.err(format!(
                    "`{s}` is not a duration (write ms as a number, or e.g. \"250ms\", \"90s\", \"1h30m\", \"1:30:00\")"
                ))
            }),
            v => v.as_u64().ok_or_else(|| {
                self.err(format!(
                    "must be a duration (ms as a non-negative integer, or a string such as \"90s\"), got {}",
                    short(v)
                ))
            }),
        }
    }
}

/// A value shortened for an error message.
pub fn short(v: &Json) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s
    }
}

/// Parses `"250ms"`, `"90s"`, `"1.5h"`, `"1h30m"`, `"2d"`, `"1:30:00"`, `"45:00"` or a bare number
/// of milliseconds. Saturates instead of overflowing.
pub fn parse_duration(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s.contains(':') {
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return None;
        }
        let mut total = 0f64;
        for p in &parts {
            let v: f64 = p
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite() && *v >= 0.0)?;
            total = total * 60.0 + v;
        }
        // "45:00" is minutes:seconds, "1:30:00" hours:minutes:seconds.
        return Some(to_ms(total * 1000.0));
    }
    if let Ok(ms) = s.parse::<u64>() {
        return Some(ms);
    }
    let b = s.as_bytes();
    let mut i = 0;
    let mut total = 0f64;
    while i < b.len() {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        let start = i;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
            i += 1;
        }
        let num: f64 = s[start..i].parse().ok()?;
        let ustart = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = match &s[ustart..i] {
            "ms" => 1.0,
            "s" | "sec" => 1_000.0,
            "m" | "min" => 60_000.0,
            "h" => 3_600_000.0,
            "d" => 86_400_000.0,
            _ => return None,
        };
        total += num * unit;
    }
    Some(to_ms(total))
}

fn to_ms(x: f64) -> u64 {
    if x >= u64::MAX as f64 {
        u64::MAX
    } else {
        x.round() as u64
    }
}

/// `1:05:09` (hours not padded), for timelines.
pub fn clock(ms: u64) -> String {
    let s = ms / 1000;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// A short human duration: `850 ms`, `30 s`, `4m30s`, `2h05m`.
pub fn dur(ms: u64) -> String {
    if ms < 1000 {
        return format!("{ms} ms");
    }
    let s = ms.saturating_add(500) / 1000;
    if s < 60 {
        format!("{s} s")
    } else if s < 3600 {
        if s.is_multiple_of(60) {
            format!("{} min", s / 60)
        } else {
            format!("{}m{:02}s", s / 60, s % 60)
        }
    } else if s.is_multiple_of(3600) {
        format!("{} h", s / 3600)
    } else {
        format!("{}h{:02}m", s / 3600, (s / 60) % 60)
    }
}

/// Byte offset of the value at `path` (of the key, for a final object key) in JSON `b`, which has
/// already been parsed successfully. `None` if the path is not there.
fn locate(b: &[u8], path: &[Seg]) -> Option<usize> {
    let mut i = ws(b, 0);
    for (n, seg) in path.iter().enumerate() {
        let last = n + 1 == path.len();
        match seg {
            Seg::Key(k) => {
                if b.get(i) != Some(&b'{') {
                    return None;
                }
                i = ws(b, i + 1);
                loop {
                    if b.get(i)? != &b'"' {
                        return None;
                    }
                    let key_start = i;
                    let key_end = skip_string(b, i)?;
                    let key: String = serde_json::from_slice(&b[key_start..key_end]).ok()?;
                    i = ws(b, key_end);
                    if b.get(i)? != &b':' {
                        return None;
                    }
                    i = ws(b, i + 1);
                    if &key == k {
                        if last {
                            return Some(key_start);
                        }
                        break;
                    }
                    i = ws(b, skip_value(b, i)?);
                    if b.get(i)? != &b',' {
                        return None;
                    }
                    i = ws(b, i + 1);
                }
            }
            Seg::Index(idx) => {
                if b.get(i) != Some(&b'[') {
                    return None;
                }
                i = ws(b, i + 1);
                for _ in 0..*idx {
                    i = ws(b, skip_value(b, i)?);
                    if b.get(i)? != &b',' {
                        return None;
                    }
                    i = ws(b, i + 1);
                }
            }
        }
    }
    Some(i)
}

fn ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// End (exclusive) of the string starting at `i`.
fn skip_string(b: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// End (exclusive) of the value starting at `i`.
fn skip_value(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => skip_string(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = skip_string(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
            {
                j += 1;
            }
            Some(j)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250"), Some(250));
        assert_eq!(parse_duration("250ms"), Some(250));
        assert_eq!(parse_duration("90s"), Some(90_000));
        assert_eq!(parse_duration("1h30m"), Some(5_400_000));
        assert_eq!(parse_duration("1h 30m"), Some(5_400_000));
        assert_eq!(parse_duration("1.5h"), Some(5_400_000));
        assert_eq!(parse_duration("1:30:00"), Some(5_400_000));
        assert_eq!(parse_duration("45:00"), Some(2_700_000));
        assert_eq!(parse_duration("2d"), Some(172_800_000));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("5 parsecs"), None);
        assert_eq!(parse_duration(""), None);
        assert_eq!(parse_duration("1::2"), None);
        assert_eq!(parse_duration("99999999999999999999999h"), Some(u64::MAX));
        assert_eq!(clock(3_723_000), "1:02:03");
        assert_eq!(dur(30_000), "30 s");
        assert_eq!(dur(270_000), "4m30s");
        assert_eq!(dur(7_500_000), "2h05m");
    }

    #[test]
    fn locates_lines() {
        let text = "{\n  \"a\": 1,\n  \"b\": [\n    {\"x\": \"}\"},\n    {\"x\": 2,\n     \"y\": 3}\n  ]\n}\n";
        let doc = Doc::parse("f.json", text.to_string()).unwrap();
        let k = |s: &str| Seg::Key(s.to_string());
        assert_eq!(doc.line_of(&[k("a")]), 2);
        assert_eq!(doc.line_of(&[k("b")]), 3);
        assert_eq!(doc.line_of(&[k("b"), Seg::Index(0)]), 4);
        assert_eq!(doc.line_of(&[k("b"), Seg::Index(1), k("y")]), 6);
        let y = doc.root().req("b").unwrap().items().unwrap()[1]
            .req("y")
            .unwrap();
        assert_eq!(y.err("bad").to_string(), "f.json:6: b[1].y: bad");
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let e = Doc::parse("f.json", "{\n \"a\": 1,\n}".to_string())
            .err()
            .unwrap();
        assert_eq!(e.line, Some(3));
    }
}
