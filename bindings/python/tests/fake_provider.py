"""A fake LLM provider for the tests: one local HTTP server (127.0.0.1, a free port) that speaks
the OpenAI chat completions API (``POST /{provider}/v1/chat/completions``) and Anthropic's
Messages API (``POST /{provider}/v1/messages``), non-streaming, for any number of provider names,
with scripted faults.

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
            assert f == "ok" or f == "hang" or f in FAULTS, f"unknown fault {f!r}"
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
        if fault == "ok":
            return self._send(h, 200, self._answer(api, provider, body))
        status, oai, atype, message, headers = FAULTS[fault]
        if api == "openai":
            err = {"error": {"message": message, "param": None, **oai}}
        else:
            err = {"type": "error", "error": {"type": atype, "message": message}}
        self._send(h, status, err, headers)

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
