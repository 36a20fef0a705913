"""Classification helpers: HTTP statuses and Retry-After through the core, and duck typing of the
exceptions and responses of openai/anthropic/httpx/requests/aiohttp-like clients (faked here; none
of those packages is needed)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any, Dict, Optional

import pytest
from hypothesis import given
from hypothesis import strategies as st

import failover_core as fc
from failover_core import Classification, classify_exception, classify_http, classify_response


@pytest.mark.parametrize(
    "status, kind",
    [(200, "success"), (304, "success"), (400, "client_error"), (401, "credentials_rejected"),
     (403, "credentials_rejected"), (404, "refused"), (413, "refused"), (422, "client_error"),
     (408, "timeout"), (429, "rate_limited"), (499, "cancelled"),
     (500, "server_error"), (503, "server_error"), (504, "timeout"), (524, "timeout"),
     (529, "server_error"), (0, "server_error"), (100, "server_error"), (65535, "server_error")],
)
def test_classify_status_is_the_core_table(status: int, kind: str) -> None:
    assert fc.classify_status(status) == kind


def test_native_classify_is_the_core_table() -> None:
    from failover_core import _native

    assert _native.classify() == ("cancelled", None)
    assert _native.classify(status=401) == ("credentials_rejected", None)
    assert _native.classify(status=429, error_code="insufficient_quota") == ("quota_exhausted", None)
    assert _native.classify(status=429, error_type="rate_limit_error", retry_after=b"3") == (
        "rate_limited",
        3000,
    )
    assert _native.classify(transport="timeout", status=200) == ("timeout", None)
    assert _native.classify(status=400, message="maximum context length is 8192") == ("refused", None)
    assert _native.classify(status=429, retry_after_ms="1500.2", retry_after="9") == (
        "rate_limited",
        1501,
    )
    assert _native.TRANSPORTS == ("timeout", "connection", "malformed", "protocol", "aborted")


@pytest.mark.parametrize(
    "kwargs, exc",
    [({"status": 65536}, ValueError), ({"status": "429"}, TypeError),
     ({"transport": "socket"}, ValueError), ({"transport": 1}, TypeError),
     ({"error_code": b"x"}, TypeError), ({"retry_after": 5}, TypeError),
     ({"now_unix_ms": -1}, ValueError)],
)
def test_native_classify_refuses_bad_facts(kwargs: Any, exc: type) -> None:
    from failover_core import _native

    with pytest.raises(exc, match=next(iter(kwargs))):
        _native.classify(**kwargs)
    with pytest.raises(TypeError):
        _native.classify(429)  # type: ignore[misc]


@pytest.mark.parametrize("bad, exc", [(-1, ValueError), (65536, ValueError), (True, TypeError),
                                      (200.0, TypeError), ("200", TypeError)])
def test_classify_status_refuses_bad_statuses(bad: Any, exc: type) -> None:
    with pytest.raises(exc, match="status"):
        fc.classify_status(bad)


def test_parse_retry_after_is_the_core_parser() -> None:
    assert fc.parse_retry_after("120") == 120_000
    assert fc.parse_retry_after(" 1.5 ") == 1_500
    assert fc.parse_retry_after(b"2") == 2_000
    assert fc.parse_retry_after("-1") is None
    assert fc.parse_retry_after("soon") is None
    date = "Sun, 06 Nov 1994 08:49:37 GMT"
    assert fc.parse_retry_after(date) is None
    assert fc.parse_retry_after(date, 784_111_767_000) == 10_000
    assert fc.parse_retry_after(date, 784_111_787_000) == 0
    with pytest.raises(TypeError, match="value"):
        fc.parse_retry_after(5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="now_unix_ms"):
        fc.parse_retry_after(date, -1)


@given(st.text(max_size=40))
def test_parse_retry_after_never_raises_on_text(s: str) -> None:
    v = fc.parse_retry_after(s, 0)
    assert v is None or v >= 0


class Headers:
    """A case-insensitive header mapping like httpx.Headers."""

    def __init__(self, d: Dict[str, str]) -> None:
        self._d = {k.lower(): v for k, v in d.items()}

    def get(self, k: str, default: Any = None) -> Any:
        return self._d.get(k.lower(), default)

    def items(self) -> Any:
        return self._d.items()


class Response:
    def __init__(self, status_code: int, headers: Optional[Dict[str, str]] = None) -> None:
        self.status_code = status_code
        self.headers = Headers(headers or {})


class APIStatusError(Exception):
    """Like openai.APIStatusError / anthropic.APIStatusError."""

    def __init__(self, status_code: int, headers: Optional[Dict[str, str]] = None) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code
        self.response = Response(status_code, headers)


class HTTPStatusError(Exception):
    """Like httpx.HTTPStatusError / requests.HTTPError: the status is on `.response`."""

    def __init__(self, response: Response) -> None:
        super().__init__("bad status")
        self.response = response


class ClientResponseError(Exception):
    """Like aiohttp.ClientResponseError: `.status` and `.headers`."""

    def __init__(self, status: int, headers: Dict[str, str]) -> None:
        super().__init__("aiohttp")
        self.status = status
        self.headers = headers


# Class hierarchies named like the clients' own.
class APIConnectionError(Exception):
    pass


class APITimeoutError(APIConnectionError):
    pass


class TransportError(Exception):
    pass


class TimeoutException(TransportError):
    pass


class ReadTimeout(TimeoutException):
    pass


class NetworkError(TransportError):
    pass


class ConnectError(NetworkError):
    pass


def test_http_status_and_headers() -> None:
    assert classify_http(429, {"retry-after": "3"}) == Classification("rate_limited", 3000, 429)
    assert classify_http(503, Headers({"Retry-After": "1.5"})).retry_after_ms == 1500
    assert classify_http(200) == Classification("success", None, 200)
    # retry-after-ms (OpenAI, Anthropic) wins and is in ms.
    assert classify_http(429, {"retry-after-ms": "250", "retry-after": "9"}).retry_after_ms == 250
    assert classify_http(429, [("Retry-After", "4")]).retry_after_ms == 4000
    assert classify_http(429, [(b"retry-after", b"4")]).retry_after_ms == 4000
    date = "Sun, 06 Nov 1994 08:49:37 GMT"
    assert classify_http(429, {"Retry-After": date}, now_unix_ms=784_111_767_000).retry_after_ms == 10_000
    # Against the wall clock, a date in 1994 is in the past.
    assert classify_http(429, {"Retry-After": date}).retry_after_ms == 0
    assert classify_http(429, {"Retry-After": "later"}).retry_after_ms is None


def test_sdk_like_exceptions() -> None:
    c = classify_exception(APIStatusError(429, {"retry-after": "2"}))
    assert (c.kind, c.retry_after_ms, c.status) == ("rate_limited", 2000, 429)
    assert classify_exception(APIStatusError(500)).kind == "server_error"
    assert classify_exception(APIStatusError(529)).kind == "server_error"
    assert classify_exception(APIStatusError(400)).kind == "client_error"
    assert classify_exception(APIStatusError(401)).kind == "credentials_rejected"
    assert classify_exception(HTTPStatusError(Response(504))).kind == "timeout"
    c = classify_exception(HTTPStatusError(Response(503, {"Retry-After": "7"})))
    assert (c.kind, c.retry_after_ms) == ("server_error", 7000)
    c = classify_exception(ClientResponseError(429, {"Retry-After": "1"}))
    assert (c.kind, c.retry_after_ms) == ("rate_limited", 1000)


@pytest.mark.parametrize(
    "exc, kind",
    [
        (TimeoutError(), "timeout"),
        (asyncio.TimeoutError(), "timeout"),
        (socket.timeout(), "timeout"),
        (ReadTimeout("read"), "timeout"),
        (APITimeoutError("t"), "timeout"),  # a timeout although it is an APIConnectionError
        (ConnectionRefusedError(), "connection_error"),
        (ConnectionResetError(), "connection_error"),
        (ConnectError("refused"), "connection_error"),
        (APIConnectionError("c"), "connection_error"),
        (socket.gaierror(), "connection_error"),
        (KeyError("bug"), "client_error"),
        (ValueError("bad request built"), "client_error"),
        (asyncio.CancelledError(), "cancelled"),
        (KeyboardInterrupt(), "cancelled"),
    ],
)
def test_exceptions_by_type_and_name(exc: BaseException, kind: str) -> None:
    assert classify_exception(exc).kind == kind


def test_status_wins_over_names_and_bad_statuses_are_ignored() -> None:
    class Weird(TimeoutError):
        status_code = 503

    assert classify_exception(Weird()).kind == "server_error"

    class BoolStatus(Exception):
        status_code = True

    assert classify_exception(BoolStatus()).kind == "client_error"

    class Huge(Exception):
        status_code = 10**6

    assert classify_exception(Huge()).kind == "server_error"


def test_responses() -> None:
    assert classify_response(object()) is None
    assert classify_response(None) is None
    assert classify_response(Response(200)) == Classification("success", None, 200)
    c = classify_response(Response(429, {"retry-after": "1"}))
    assert c is not None and c.kind == "rate_limited" and c.retry_after_ms == 1000 and c.is_failure
    assert not Classification("client_error").is_failure
    assert fc.FAILURE_KINDS == {"server_error", "connection_error", "timeout", "rate_limited",
                                "refused", "credentials_rejected", "quota_exhausted",
                                "stream_cut", "stalled"}


def test_native_headroom_reads_rate_limit_headers() -> None:
    """The core's `Headroom` (golden rows: fixtures/scenarios/ratelimit-headers-table.json)."""
    from failover_core import _native

    h = _native.headroom(
        {
            "x-ratelimit-limit-requests": "60",
            "x-ratelimit-remaining-requests": "6",
            "x-ratelimit-reset-requests": "6m0s",
            "content-type": "application/json",
        }.items()
    )
    assert h["requests"] == {"limit": 60, "remaining": 6, "reset_in_ms": 360_000}
    assert h["tokens"] == {"limit": None, "remaining": None, "reset_in_ms": None}
    assert (h["headroom_ppm"], h["recognised"]) == (100_000, 3)
    # bytes (raw headers), a wall clock for Anthropic's reset time, Azure's bare 0.
    h = _native.headroom(
        [(b"anthropic-ratelimit-tokens-reset", b"2024-04-16T23:00:00Z"),
         (b"x-ratelimit-remaining-requests", b"0")],
        1_713_308_399_000,
    )
    assert h["tokens"]["reset_in_ms"] == 1000
    assert h["requests"]["remaining"] is None
    assert _native.headroom([])["headroom_ppm"] is None


@pytest.mark.parametrize("bad", [5, ["ab"], [("a",)], [("a", "b", "c")], [("a", 1)], [(None, "1")]])
def test_native_headroom_refuses_what_is_not_header_pairs(bad: Any) -> None:
    from failover_core import _native

    with pytest.raises(TypeError):
        _native.headroom(bad)
    with pytest.raises((TypeError, ValueError)):
        _native.headroom([], -1)
