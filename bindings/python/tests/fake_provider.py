"""A fake LLM provider for the tests: one local HTTP server (127.0.0.1, a free port) that speaks
the OpenAI chat completions API (``POST /{provider}/v1/chat/completions``) and Anthropic's
Messages API (``POST /{provider}/v1/messages``), plain and streamed (SSE, with Anthropic's event
types and ``ping``, OpenAI's ``[DONE]`` and a keep-alive comment), for any number of provider
names, with scripted faults.

``fake.script("primary", "503", "503")`` makes the next two requests to ``primary`` fail with a
503; after its script, a provider answers. Every request is logged (``fake.calls``). Bounded: a
``hang`` lasts at most ``HANG_S`` seconds or until ``stop()``, the server thread is a daemon and
``stop()`` joins it with a timeout.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Tuple

#: The longest a scripted hang holds its request, s.
HANG_S = 5.0

#: Fault name -> (status, OpenAI error body, Anthropic error type, message, headers).
FAULTS: Dict[str, Tuple[int, Dict[str, Any], str, str, Dict[str, str]]] = {
    "503": (
        503,
        {"code": None, "type": "server_error"},
        "api_error",
        "The server is overloaded",
        {},
    ),
    "429_retry_after": (
        429,
        {"code": "rate_limit_exceeded", "type": "requests"},
        "rate_limit_error",
        "Rate limit reached for requests",
        {"retry-after": "5"},
    ),
    "429_quota": (
        429,
        {"code": "insufficient_quota", "type": "insufficient_quota"},
        "rate_limit_error",
        "You exceeded your current quota, please check your plan and billing details",
        {},
    ),
    "400_content_filter": (
        400,
        {"code": "content_filter", "type": "invalid_request_error"},
        "invalid_request_error",
        "The response was filtered due to the prompt triggering the content management policy",
        {},
    ),
    "400_context_length": (
        400,
        {"code": "context_length_exceeded", "type": "invalid_request_error"},
        "invalid_request_error",
        "prompt is too long: 250000 tokens > 200000 maximum context length",
        {},
    ),
    "401": (
        401,
        {"code": "invalid_api_key", "type": "invalid_request_error"},
        "authentication_error",
        "invalid x-api-key",
        {},
    ),
}


#: Faults of a streamed answer (after a 200): a first token later than 1 s, the connection
#: closed after one token, a stall after one token (up to ``HANG_S``), an unparseable event
#: before any content, every token but no terminal event, an in-band SSE error event (OpenAI's
#: ``{"error": ...}`` data, Anthropic's ``event: error`` with ``overloaded_error``).
STREAM_FAULTS = {"slow_first_token", "cut_after_tokens", "stall", "malformed_chunk",
                 "missing_terminal", "error_event"}


def _sse(data: Dict[str, Any], event: Optional[str] = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()


def _openai_sse(provider: str, model: str) -> Tuple[List[bytes], List[bytes], List[bytes]]:
    def chunk(delta: Dict[str, Any], finish: Optional[str] = None) -> bytes:
        return _sse({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0,
                     "model": model,
                     "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    return (
        [b": keep-alive\n\n", chunk({"role": "assistant", "content": ""})],
        [chunk({"content": "Hel"}), chunk({"content": "lo"})],
        [chunk({}, "stop"), b"data: [DONE]\n\n"],
    )


def _anthropic_sse(model: str) -> Tuple[List[bytes], List[bytes], List[bytes]]:
    def delta(text: str) -> bytes:
        return _sse({"type": "content_block_delta", "index": 0,
                     "delta": {"type": "text_delta", "text": text}}, "content_block_delta")

    return (
        [
            _sse({"type": "message_start", "message": {
                "id": "msg_1", "type": "message", "role": "assistant", "model": model,
                "content": [], "stop_reason": None, "stop_sequence": None,
                "usage": {"input_tokens": 1, "output_tokens": 1}}}, "message_start"),
            _sse({"type": "content_block_start", "index": 0,
                  "content_block": {"type": "text", "text": ""}}, "content_block_start"),
            _sse({"type": "ping"}, "ping"),
        ],
        [delta("Hel"), delta("lo")],
        [
            _sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
            _sse({"type": "message_delta", "delta": {"stop_reason": "end_turn",
                                                     "stop_sequence": None},
                  "usage": {"output_tokens": 3}}, "message_delta"),
            _sse({"type": "message_stop"}, "message_stop"),
        ],
    )


class FakeProvider:
    """The server; use as a context manager (or ``start()``/``stop()``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripts: Dict[str, List[str]] = {}
        #: (provider, api, fault) per request, in arrival order.
        self.calls: List[Tuple[str, str, str]] = []
        self._stopping = threading.Event()
        self._server: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    # -- control ------------------------------------------------------------------------------

    def script(self, provider: str, *faults: str) -> None:
        for f in faults:
            assert f in ("ok", "hang") or f in FAULTS or f in STREAM_FAULTS, f"unknown fault {f!r}"
        with self._lock:
            self._scripts.setdefault(provider, []).extend(faults)

    def count(self, provider: str) -> int:
        with self._lock:
            return sum(1 for p, _, _ in self.calls if p == provider)

    def counts(self) -> Dict[str, int]:
        with self._lock:
            out: Dict[str, int] = {}
            for p, _, _ in self.calls:
                out[p] = out.get(p, 0) + 1
            return out

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def openai_url(self, provider: str) -> str:
        return f"http://127.0.0.1:{self.port}/{provider}/v1"

    def anthropic_url(self, provider: str) -> str:
        return f"http://127.0.0.1:{self.port}/{provider}"

    def start(self) -> "FakeProvider":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                fake._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "FakeProvider":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- serving ------------------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("content-length") or 0)
        body = json.loads(h.rfile.read(length) or b"{}")
        parts = h.path.strip("/").split("/")
        if parts[1:] == ["v1", "chat", "completions"]:
            api = "openai"
        elif parts[1:] == ["v1", "messages"]:
            api = "anthropic"
        else:
            return self._send(h, 404, {"error": {"message": f"no route {h.path}"}})
        provider = parts[0]
        with self._lock:
            script = self._scripts.get(provider) or []
            fault = script.pop(0) if script else "ok"
            self.calls.append((provider, api, fault))
        if fault == "hang":
            self._stopping.wait(HANG_S)
            fault = "ok"
        if body.get("stream") and (fault == "ok" or fault in STREAM_FAULTS):
            return self._stream(h, api, provider, body, fault)
        if fault == "ok":
            return self._send(h, 200, self._answer(api, provider, body))
        status, oai, atype, message, headers = FAULTS[fault]
        if api == "openai":
            err = {"error": {"message": message, "param": None, **oai}}
        else:
            err = {"type": "error", "error": {"type": atype, "message": message}}
        self._send(h, status, err, headers)

    def _stream(
        self, h: BaseHTTPRequestHandler, api: str, provider: str, req: Dict[str, Any], fault: str
    ) -> None:
        """An SSE answer ("Hel", "lo"), or one with a stream fault (see ``STREAM_FAULTS``)."""
        model = req.get("model", "m")
        h.close_connection = True
        try:
            h.send_response(200)
            h.send_header("content-type", "text/event-stream")
            h.send_header("connection", "close")
            h.end_headers()
            events = _openai_sse(provider, model) if api == "openai" else _anthropic_sse(model)
            head, tokens, tail = events
            for e in head:
                h.wfile.write(e)
            h.wfile.flush()
            if fault == "slow_first_token":
                self._stopping.wait(1.0)
            if fault == "error_event":  # an in-band error after the 200, before content
                h.wfile.write(
                    _sse({"error": {"message": "Overloaded", "type": "server_error",
                                    "code": None}}) if api == "openai"
                    else _sse({"type": "error", "error": {"type": "overloaded_error",
                                                          "message": "Overloaded"}}, "error"))
                h.wfile.flush()
                return
            if fault == "malformed_chunk":
                h.wfile.write(b"data: {not json\n\n" if api == "openai"
                              else b"event: content_block_delta\ndata: {not json\n\n")
                h.wfile.flush()
                return
            for i, e in enumerate(tokens):
                h.wfile.write(e)
                h.wfile.flush()
                if fault == "stall" and i == 0:
                    self._stopping.wait(HANG_S)
                if fault == "cut_after_tokens" and i == 0:
                    return  # the connection closes mid-answer
            if fault == "missing_terminal":
                if api == "openai":
                    h.wfile.write(b"data: [DONE]\n\n")  # [DONE] but no finish_reason
                return
            for e in tail:
                h.wfile.write(e)
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass

    @staticmethod
    def _answer(api: str, provider: str, req: Dict[str, Any]) -> Dict[str, Any]:
        text = f"hello from {provider}"
        model = req.get("model", "m")
        if api == "openai":
            return {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 0,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": 4},
            }
        return {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 1, "output_tokens": 3},
        }

    @staticmethod
    def _send(
        h: BaseHTTPRequestHandler,
        status: int,
        body: Dict[str, Any],
        headers: Optional[Dict[str, str]] = None,
    ) -> None:
        data = json.dumps(body).encode()
        try:
            h.send_response(status)
            h.send_header("content-type", "application/json")
            h.send_header("content-length", str(len(data)))
            for k, v in (headers or {}).items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a hang)
            pass
