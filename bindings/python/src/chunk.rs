//! `chunk_kind_of(chunk)`: what one chunk of a provider's stream is, by the core's
//! `classify_chunk`. This file only reads the facts off the chunk by duck typing (dicts and
//! objects alike, so raw JSON, the openai and anthropic SDKs' models and raw server-sent events
//! all work); the rule is the core's. Called once per chunk by the stream drivers, so the facts
//! are read here, in one native call, rather than in Python.

use std::borrow::Cow;

use failover_core::{ChunkFacts, ChunkKind, classify_chunk};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyList, PyString, PyTuple};

/// `obj[name]` for a dict, else `getattr(obj, name, None)`; `None` for a missing or `None` value.
fn member<'py>(
    obj: &Bound<'py, PyAny>,
    name: &Bound<'py, PyString>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let v = if let Ok(d) = obj.cast::<PyDict>() {
        d.get_item(name)?
    } else {
        obj.getattr_opt(name)?
    };
    Ok(v.filter(|v| !v.is_none()))
}

/// A member that is a `str`, as UTF-8; anything else (missing, `None`, another type) is absent.
fn text_of<'a>(v: Option<&'a Bound<'_, PyAny>>) -> PyResult<Option<Cow<'a, str>>> {
    match v.map(|v| v.cast::<PyString>()) {
        Some(Ok(s)) => Ok(Some(s.to_cow()?)),
        _ => Ok(None),
    }
}

/// Python truthiness, with a failing `__bool__` read as false (a malformed chunk says nothing).
fn truthy(v: Option<Bound<'_, PyAny>>) -> bool {
    v.is_some_and(|v| v.is_truthy().unwrap_or(false))
}

/// The facts of the chunk's `choices`: whether some delta carries content, and the first
/// `finish_reason` that is given (a `str` one is passed on; any other counts as absent).
fn choices_facts<'py>(
    py: Python<'py>,
    choices: &Bound<'py, PyAny>,
) -> PyResult<(bool, Option<Bound<'py, PyAny>>)> {
    let mut content = false;
    let mut finish: Option<Bound<'py, PyAny>> = None;
    let mut one = |c: Bound<'py, PyAny>| -> PyResult<()> {
        if !content && let Some(delta) = member(&c, intern!(py, "delta"))? {
            content = truthy(member(&delta, intern!(py, "content"))?)
                || truthy(member(&delta, intern!(py, "tool_calls"))?)
                || truthy(member(&delta, intern!(py, "refusal"))?);
        }
        if finish.is_none() {
            finish = member(&c, intern!(py, "finish_reason"))?;
        }
        Ok(())
    };
    if let Ok(l) = choices.cast::<PyList>() {
        for c in l.iter() {
            one(c)?;
        }
    } else if let Ok(t) = choices.cast::<PyTuple>() {
        for c in t.iter() {
            one(c)?;
        }
    }
    // Anything else (a str, a number, a dict): malformed, no choices.
    Ok((content, finish))
}

/// What one chunk of a provider's stream is, by the core's chunk table (`failover_core::chunk`),
/// from the facts read off it: a plain `str`/`bytes`/`bytearray` chunk's length; else (dicts and
/// objects alike) its `type`, its `choices` (whether a delta's `content`, `tool_calls` or
/// `refusal` is non-empty, the first `finish_reason`), its SSE `event` name when it has no `str` `type`,
/// and an `error` member (a `str` is its message; else its `code`, `type` and `message`).
///
/// Returns an int for a chunk that is not an error (bit 1 content, bit 2 terminal: 0 other, 1
/// content, 2 terminal, 3 last content), or for an in-band error the outcome kind name (`str`).
/// One call per chunk: no Python code runs.
#[pyfunction]
#[pyo3(signature = (chunk, /))]
pub fn chunk_kind_of<'py>(
    py: Python<'py>,
    chunk: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let k = if let Ok(s) = chunk.cast::<PyString>() {
        classify_chunk(&ChunkFacts {
            text_len: Some(s.len()?),
            ..ChunkFacts::default()
        })
    } else if let Ok(b) = chunk.cast::<PyBytes>() {
        classify_chunk(&ChunkFacts {
            text_len: Some(b.as_bytes().len()),
            ..ChunkFacts::default()
        })
    } else if let Ok(b) = chunk.cast::<PyByteArray>() {
        classify_chunk(&ChunkFacts {
            text_len: Some(b.len()),
            ..ChunkFacts::default()
        })
    } else {
        let kind = member(chunk, intern!(py, "type"))?;
        // The SSE event name counts only without a `type` (a str one).
        let event = if kind
            .as_ref()
            .is_some_and(|k| k.is_instance_of::<PyString>())
        {
            None
        } else {
            member(chunk, intern!(py, "event"))?
        };
        let (content, finish) = match member(chunk, intern!(py, "choices"))? {
            Some(c) => choices_facts(py, &c)?,
            None => (false, None),
        };
        let err = member(chunk, intern!(py, "error"))?;
        let (code, ty, msg) = match &err {
            None => (None, None, None),
            Some(e) if e.is_instance_of::<PyString>() => (None, None, Some(e.clone())),
            Some(e) => (
                member(e, intern!(py, "code"))?,
                member(e, intern!(py, "type"))?,
                member(e, intern!(py, "message"))?,
            ),
        };
        let kind_s = text_of(kind.as_ref())?;
        let event_s = text_of(event.as_ref())?;
        let finish_s = text_of(finish.as_ref())?;
        let (code_s, ty_s, msg_s) = (
            text_of(code.as_ref())?,
            text_of(ty.as_ref())?,
            text_of(msg.as_ref())?,
        );
        classify_chunk(&ChunkFacts {
            text_len: None,
            kind: kind_s.as_deref(),
            event: event_s.as_deref(),
            delta_content: content,
            finish_reason: finish_s.as_deref(),
            error: err.is_some(),
            error_code: code_s.as_deref(),
            error_type: ty_s.as_deref(),
            message: msg_s.as_deref(),
        })
    };
    Ok(match k {
        ChunkKind::Error(c) => PyString::intern(py, c.kind.name()).into_any(),
        k => (u8::from(k.is_content()) | (u8::from(k.is_terminal()) << 1))
            .into_pyobject(py)?
            .into_any(),
    })
}
