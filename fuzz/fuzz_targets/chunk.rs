//! `classify_chunk` over arbitrary chunk facts: it never panics, an error chunk's outcome is the
//! classification table's for the same error as a protocol problem, and the other rows agree with
//! an independent reading of the table in the core's `chunk` module.
//!
//! Input: one byte of flags (which fields are present), two bytes of text length, then five
//! strings (type, SSE event, finish reason, error code, error type, message) separated by `\0`
//! (lossy UTF-8).

#![no_main]

use failover_core::{ChunkFacts, ChunkKind, Facts, Transport, classify, classify_chunk};
use libfuzzer_sys::fuzz_target;

const ANTHROPIC_OTHER: [&str; 5] = [
    "message_start",
    "message_delta",
    "content_block_start",
    "content_block_stop",
    "ping",
];

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let flags = u16::from(data[0]) | (u16::from(data[1] & 0x03) << 8);
    let text_len = usize::from(u16::from_be_bytes([data[2], data[3]]));
    let text = String::from_utf8_lossy(&data[4..]);
    let mut parts = text.split('\0');
    let mut next = || parts.next().unwrap_or("");
    let (kind, event, finish, code, ty, msg) = (next(), next(), next(), next(), next(), next());
    let on = |bit: u16| flags & (1 << bit) != 0;
    let f = ChunkFacts {
        text_len: on(0).then_some(text_len),
        kind: on(1).then_some(kind),
        event: on(2).then_some(event),
        delta_content: on(3),
        finish_reason: on(4).then_some(finish),
        error: on(5),
        error_code: on(6).then_some(code),
        error_type: on(7).then_some(ty),
        message: on(8).then_some(msg),
    };
    let k = classify_chunk(&f);
    assert_eq!(
        k.is_content(),
        matches!(k, ChunkKind::Content | ChunkKind::LastContent)
    );
    assert_eq!(
        k.is_terminal(),
        matches!(k, ChunkKind::Terminal | ChunkKind::LastContent)
    );

    let error = f.error || f.kind == Some("error") || f.event == Some("error");
    if error {
        let want = classify(&Facts {
            error_code: f.error_code,
            error_type: f.error_type,
            message: f.message,
            transport: Some(Transport::Protocol),
            ..Facts::default()
        });
        assert_eq!(k, ChunkKind::Error(want));
        return;
    }
    assert!(!matches!(k, ChunkKind::Error(_)), "{f:?}");
    // Text decides alone.
    if let Some(n) = f.text_len {
        assert_eq!(
            k,
            if n > 0 {
                ChunkKind::Content
            } else {
                ChunkKind::Other
            }
        );
        return;
    }
    // The error's fields say nothing without an error.
    let bare = ChunkFacts {
        error_code: None,
        error_type: None,
        message: None,
        ..f
    };
    assert_eq!(classify_chunk(&bare), k);
    let word = f.kind.or(f.event);
    match word {
        Some("content_block_delta") => assert_eq!(k, ChunkKind::Content),
        Some("message_stop") => assert_eq!(k, ChunkKind::Terminal),
        Some(w) if ANTHROPIC_OTHER.contains(&w) => assert_eq!(k, ChunkKind::Other),
        _ => {
            let done = f.finish_reason.is_some_and(|r| !r.trim().is_empty());
            assert_eq!(k.is_content(), f.delta_content, "{f:?}");
            assert_eq!(k.is_terminal(), done, "{f:?}");
        }
    }
});
