//! One rule for every language: what one chunk of a provider's stream is — the first *content*
//! (after which failing over is no longer safe), the *terminal* chunk (the stream is complete), an
//! in-band *error* (and which outcome it is), or something else — from the few facts a binding
//! reads off it by duck typing ([`ChunkFacts`]).
//!
//! The bindings read the facts (the chunk's `type`, the SSE event name, whether a delta carries
//! content, the `finish_reason`, the `error` member's code, type and message) and call
//! [`classify_chunk`]; they never decide a chunk's kind themselves, so Python and Node agree.
//!
//! # The table
//!
//! Rows are tried top to bottom; the first that applies decides the kind.
//!
//! | # | facts | kind | why |
//! |---|---|---|---|
//! | 1 | an `error` member, `type` `error` or the SSE event `error` | `error`, with the outcome [`classify`] gives the error's code, type and message as a [`Transport::Protocol`] problem | an in-band error: Anthropic's `overloaded_error` is a server error, `rate_limit_error` a quota or rate limit, an unknown one a server error (the provider broke its stream) |
//! | 2 | plain text (a string or bytes) | `content` if not empty, else `other` | a stream of text has no terminal chunk: give the binding's own terminal test |
//! | 3 | `type` (or, without one, the SSE event) `content_block_delta` | `content` | Anthropic's text, tool input or thinking delta |
//! | 4 | `type` (or the SSE event) `message_stop` | `terminal` | Anthropic's end of message |
//! | 5 | `type` (or the SSE event) another of Anthropic's events: `message_start`, `message_delta`, `content_block_start`, `content_block_stop`, `ping` | `other` | the frame around the content; `message_delta`'s `stop_reason` is not the end, `message_stop` follows |
//! | 6 | a choice's delta carries content, and a choice has a `finish_reason` | `last_content` | an OpenAI chunk that is both the last content and the end (some compatible servers send them together) |
//! | 7 | a choice's delta carries content: non-empty `content`, `tool_calls` or `refusal` | `content` | OpenAI's text, tool call or refusal; a role-only delta (`{"role": "assistant"}`, `content: ""`) is not content |
//! | 8 | a choice has a `finish_reason` that is not blank | `terminal` | OpenAI's end of the answer (`stop`, `length`, `tool_calls`, `content_filter`) |
//! | 9 | anything else: no facts, an unknown `type` without choices, a malformed chunk | `other` | held back with the chunks before content; says nothing |
//!
//! Types and event names match exactly (they are protocol words, not prose). An unknown `type`
//! does not stop rows 6–8: a compatible server that adds its own `type` to OpenAI's chunks is
//! still read by its choices. A blank `finish_reason` (`""`, which some compatible servers send on
//! every chunk) is no finish reason.
//!
//! Whether a stream that ended without a terminal chunk was cut, and whether an error before
//! content may fail over, is the request engine's decision; this table only says what one chunk
//! is.

use crate::classify::{Classification, Facts, Transport, classify};

/// What a binding read off one chunk of a provider's stream. Every field is optional; leave out
/// what the chunk does not have. See the [module documentation](self) for how each is used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ChunkFacts<'a> {
    /// The chunk is plain text (a string, bytes, a byte array), not an object: its length.
    pub text_len: Option<usize>,
    /// The chunk's `type` member, when it is a string (Anthropic's event types, `error`).
    pub kind: Option<&'a str>,
    /// The SSE `event:` name, when the chunk is a raw server-sent event.
    pub event: Option<&'a str>,
    /// Whether some choice's `delta` carries content: a non-empty `content`, a non-empty
    /// `tool_calls` or a non-empty `refusal`.
    pub delta_content: bool,
    /// The first `finish_reason` of the chunk's choices that is a string.
    pub finish_reason: Option<&'a str>,
    /// Whether the chunk has an `error` member that is not null.
    pub error: bool,
    /// The error's `code` (the `error` member's, or the chunk's own for a `type: error` chunk).
    pub error_code: Option<&'a str>,
    /// The error's `type`, e.g. Anthropic's `overloaded_error`.
    pub error_type: Option<&'a str>,
    /// The error's message.
    pub message: Option<&'a str>,
}

/// What one chunk is, by the table in the [module documentation](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChunkKind {
    /// Not content and not the end: held back until the first content, then delivered with it.
    Other,
    /// Content the caller sees: the first one ends the time when failing over is safe.
    Content,
    /// Content that also ends the stream complete.
    LastContent,
    /// The end of a complete stream (not content).
    Terminal,
    /// An in-band error: the attempt failed with this outcome (the retry hint is always `None`:
    /// a chunk carries no headers).
    Error(Classification),
}

impl ChunkKind {
    /// Whether the chunk is content ([`Content`](Self::Content) or
    /// [`LastContent`](Self::LastContent)).
    #[must_use]
    pub const fn is_content(self) -> bool {
        matches!(self, ChunkKind::Content | ChunkKind::LastContent)
    }

    /// Whether the chunk ends the stream complete ([`Terminal`](Self::Terminal) or
    /// [`LastContent`](Self::LastContent)).
    #[must_use]
    pub const fn is_terminal(self) -> bool {
        matches!(self, ChunkKind::Terminal | ChunkKind::LastContent)
    }

    /// The stable snake_case name used by the scenario files and the bindings: `other`,
    /// `content`, `last_content`, `terminal` or `error`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            ChunkKind::Other => "other",
            ChunkKind::Content => "content",
            ChunkKind::LastContent => "last_content",
            ChunkKind::Terminal => "terminal",
            ChunkKind::Error(_) => "error",
        }
    }
}

/// Classifies one chunk by the table in the [module documentation](self).
///
/// Cost: constant for a chunk without an error (a few short string comparisons); linear in the
/// error's strings for an error chunk. No allocation; never panics.
#[must_use]
pub fn classify_chunk(f: &ChunkFacts<'_>) -> ChunkKind {
    let kind = f.kind.or(f.event);
    // Row 1.
    if f.error || f.kind == Some("error") || f.event == Some("error") {
        return ChunkKind::Error(classify(&Facts {
            error_code: f.error_code,
            error_type: f.error_type,
            message: f.message,
            transport: Some(Transport::Protocol),
            ..Facts::default()
        }));
    }
    // Row 2.
    if let Some(n) = f.text_len {
        return if n > 0 {
            ChunkKind::Content
        } else {
            ChunkKind::Other
        };
    }
    // Rows 3–5.
    match kind {
        Some("content_block_delta") => return ChunkKind::Content,
        Some("message_stop") => return ChunkKind::Terminal,
        Some(
            "message_start"
            | "message_delta"
            | "content_block_start"
            | "content_block_stop"
            | "ping",
        ) => return ChunkKind::Other,
        _ => {}
    }
    // Rows 6–9.
    let finished = f.finish_reason.is_some_and(|r| !r.trim().is_empty());
    match (f.delta_content, finished) {
        (true, true) => ChunkKind::LastContent,
        (true, false) => ChunkKind::Content,
        (false, true) => ChunkKind::Terminal,
        (false, false) => ChunkKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OutcomeKind;

    fn error_kind(f: &ChunkFacts<'_>) -> OutcomeKind {
        match classify_chunk(f) {
            ChunkKind::Error(c) => {
                assert_eq!(c.retry_after_ms, None);
                c.kind
            }
            k => panic!("expected an error, got {k:?}"),
        }
    }

    /// The two predicates, kind by kind (the bindings ask them of every chunk).
    #[test]
    fn content_and_terminal_by_kind() {
        let error = ChunkKind::Error(Classification {
            kind: OutcomeKind::ServerError,
            retry_after_ms: None,
        });
        let table = [
            (ChunkKind::Other, false, false),
            (ChunkKind::Content, true, false),
            (ChunkKind::LastContent, true, true),
            (ChunkKind::Terminal, false, true),
            (error, false, false),
        ];
        for (kind, content, terminal) in table {
            assert_eq!(kind.is_content(), content, "{kind:?}");
            assert_eq!(kind.is_terminal(), terminal, "{kind:?}");
        }
    }

    #[test]
    fn openai_chunks() {
        let role_only = ChunkFacts::default();
        assert_eq!(classify_chunk(&role_only), ChunkKind::Other);
        let text = ChunkFacts {
            delta_content: true,
            ..ChunkFacts::default()
        };
        assert_eq!(classify_chunk(&text), ChunkKind::Content);
        let stop = ChunkFacts {
            finish_reason: Some("stop"),
            ..ChunkFacts::default()
        };
        assert_eq!(classify_chunk(&stop), ChunkKind::Terminal);
        let both = ChunkFacts {
            finish_reason: Some("length"),
            ..text
        };
        assert_eq!(classify_chunk(&both), ChunkKind::LastContent);
        let blank = ChunkFacts {
            finish_reason: Some(" "),
            ..ChunkFacts::default()
        };
        assert_eq!(classify_chunk(&blank), ChunkKind::Other);
        // An unknown type does not hide the choices.
        let typed = ChunkFacts {
            kind: Some("chat.completion.chunk"),
            ..text
        };
        assert_eq!(classify_chunk(&typed), ChunkKind::Content);
    }

    #[test]
    fn anthropic_events() {
        let ev = |k| ChunkFacts {
            kind: Some(k),
            ..ChunkFacts::default()
        };
        assert_eq!(
            classify_chunk(&ev("content_block_delta")),
            ChunkKind::Content
        );
        assert_eq!(classify_chunk(&ev("message_stop")), ChunkKind::Terminal);
        for k in [
            "message_start",
            "message_delta",
            "content_block_start",
            "content_block_stop",
            "ping",
            "something_new",
            "",
        ] {
            assert_eq!(classify_chunk(&ev(k)), ChunkKind::Other, "{k}");
        }
        // The SSE event name stands in for a missing type, never over a present one.
        let raw = ChunkFacts {
            event: Some("content_block_delta"),
            ..ChunkFacts::default()
        };
        assert_eq!(classify_chunk(&raw), ChunkKind::Content);
        let both = ChunkFacts {
            kind: Some("ping"),
            ..raw
        };
        assert_eq!(classify_chunk(&both), ChunkKind::Other);
        // Anthropic types win over choices.
        let framed = ChunkFacts {
            kind: Some("message_delta"),
            finish_reason: Some("end_turn"),
            delta_content: true,
            ..ChunkFacts::default()
        };
        assert_eq!(classify_chunk(&framed), ChunkKind::Other);
    }

    #[test]
    fn errors() {
        let overloaded = ChunkFacts {
            kind: Some("error"),
            error: true,
            error_type: Some("overloaded_error"),
            message: Some("Overloaded"),
            ..ChunkFacts::default()
        };
        assert_eq!(error_kind(&overloaded), OutcomeKind::ServerError);
        let spent = ChunkFacts {
            error_type: Some("rate_limit_error"),
            ..overloaded
        };
        assert_eq!(error_kind(&spent), OutcomeKind::QuotaExhausted);
        let openai = ChunkFacts {
            error: true,
            error_code: Some("rate_limit_exceeded"),
            error_type: Some("requests"),
            delta_content: true,
            ..ChunkFacts::default()
        };
        assert_eq!(error_kind(&openai), OutcomeKind::RateLimited);
        let bare = ChunkFacts {
            event: Some("error"),
            ..ChunkFacts::default()
        };
        assert_eq!(error_kind(&bare), OutcomeKind::ServerError);
        let long = ChunkFacts {
            error: true,
            message: Some("This model's maximum context length is 8192 tokens"),
            ..ChunkFacts::default()
        };
        assert_eq!(error_kind(&long), OutcomeKind::Refused);
    }

    #[test]
    fn text() {
        let t = |n| ChunkFacts {
            text_len: Some(n),
            ..ChunkFacts::default()
        };
        assert_eq!(classify_chunk(&t(3)), ChunkKind::Content);
        assert_eq!(classify_chunk(&t(0)), ChunkKind::Other);
        assert!(!classify_chunk(&t(3)).is_terminal());
        assert!(ChunkKind::LastContent.is_content() && ChunkKind::LastContent.is_terminal());
    }
}
