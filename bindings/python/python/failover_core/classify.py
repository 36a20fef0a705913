"""Turning what a provider call produced into an outcome the engine records.

HTTP statuses go through the core's ``classify_status`` and ``Retry-After`` values through the
core's ``parse_retry_after`` (the same functions the Rust and Node packages use). What this module
adds is duck typing over the objects Python HTTP and LLM clients produce, without importing any of
them:

* an exception or response with an ``int`` ``status_code`` (openai, anthropic, httpx, requests) or
  ``status`` (aiohttp), directly or on its ``response`` attribute, is classified by that status,
  and its ``headers`` (or ``response.headers``) give the ``Retry-After``;
* timeouts: ``TimeoutError`` (and ``asyncio``'s and ``socket``'s), or any exception whose class or
  a base class is named like an HTTP client's timeout (``TimeoutException``, ``ReadTimeout``,
  ``ConnectTimeout``, ``APITimeoutError``, …);
* connection failures: ``ConnectionError``, ``ssl.SSLError``, ``socket.gaierror``, or a class named
  like a client's transport error (``ConnectError``, ``APIConnectionError``,
  ``RemoteProtocolError``, …);
* ``asyncio.CancelledError``, ``KeyboardInterrupt`` and other ``BaseException``\\ s that are not
  ``Exception``\\ s: ``cancelled``;
* anything else: ``client_error`` — an unknown exception is most likely a bug on the caller's side
  and must not bench a provider. Pass your own ``classify`` to ``Router.call`` to change that.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any, FrozenSet, Iterable, Optional, Tuple, Union

from . import _native

__all__ = [
    "Classification",
    "FAILURE_KINDS",
    "classify_exception",
    "classify_http",
    "classify_response",
    "classify_status",
    "parse_retry_after",
    "retry_after_from_headers",
]

classify_status = _native.classify_status
parse_retry_after = _native.parse_retry_after

#: Outcome kinds that are the provider's fault: a call that ends so fails over to the next
#: provider. ``client_error``, ``cancelled`` and ``success`` do not.
FAILURE_KINDS = frozenset({"server_error", "connection_error", "timeout", "rate_limited"})

_TIMEOUT_TYPES: Tuple[type, ...] = (
    TimeoutError,
    asyncio.TimeoutError,
    socket.timeout,
    concurrent.futures.TimeoutError,
)
_TIMEOUT_NAMES = frozenset(
    {
        "TimeoutException",  # httpx
        "ReadTimeout",
        "ConnectTimeout",
        "WriteTimeout",
        "PoolTimeout",
        "APITimeoutError",  # openai, anthropic
        "Timeout",  # requests
        "TimeoutError",
        "ServerTimeoutError",  # aiohttp
        "DeadlineExceeded",
    }
)
_CONNECTION_TYPES: Tuple[type, ...] = (ConnectionError, ssl.SSLError, socket.gaierror)
_CONNECTION_NAMES = frozenset(
    {
        "ConnectError",  # httpx
        "NetworkError",
        "RemoteProtocolError",
        "ProtocolError",
        "APIConnectionError",  # openai, anthropic
        "ConnectionError",  # requests
        "ClientConnectionError",  # aiohttp
        "ClientOSError",
        "ServerDisconnectedError",
        "ClientPayloadError",
    }
)


@dataclass(frozen=True)
class Classification:
    """An outcome for :meth:`Router.record`: its ``kind``, the provider's ``Retry-After`` in ms if
    it sent one, and the HTTP status it came from, if any."""

    kind: str
    retry_after_ms: Optional[int] = None
    status: Optional[int] = None

    @property
    def is_failure(self) -> bool:
        """Whether the provider is at fault (server or connection error, timeout, rate limit)."""
        return self.kind in FAILURE_KINDS


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def _header(headers: Any, name: str) -> Any:
    """``headers[name]`` for a dict, httpx/requests/aiohttp headers, an ``email.message.Message``
    or a list of pairs; names compare case-insensitively."""
    if headers is None:
        return None
    get = getattr(headers, "get", None)
    if get is not None:
        try:
            v = get(name)
        except Exception:  # an odd mapping; fall back to the scan
            v = None
        if v is not None:
            return v
        items: Iterable[Any]
        items_of = getattr(headers, "items", None)
        if items_of is None:
            return None
        items = items_of()
    else:
        items = headers
    lname = name.lower()
    try:
        for pair in items:
            k, v = pair
            if isinstance(k, bytes):
                k = k.decode("latin-1")
            if isinstance(k, str) and k.lower() == lname:
                return v
    except (TypeError, ValueError):
        return None
    return None


def retry_after_from_headers(headers: Any, now_unix_ms: Optional[int] = None) -> Optional[int]:
    """The provider's ``Retry-After`` in ms from now, from response headers.

    ``retry-after-ms`` (sent by OpenAI and Anthropic) wins over ``retry-after``; ``retry-after`` may
    be seconds or an HTTP-date, for which ``now_unix_ms`` (default: the wall clock) is the
    current time. ``None`` when neither header is there or parses.
    """
    ms = _header(headers, "retry-after-ms")
    if isinstance(ms, (str, bytes)):
        # The core's parser reads a number of seconds into ms; the header holds ms.
        parsed = parse_retry_after(ms)
        if parsed is not None:
            return -(-parsed // 1000)
    value = _header(headers, "retry-after")
    if not isinstance(value, (str, bytes)):
        return None
    return parse_retry_after(value, _wall_ms() if now_unix_ms is None else now_unix_ms)


def classify_http(
    status: int, headers: Any = None, *, now_unix_ms: Optional[int] = None
) -> Classification:
    """Classifies an HTTP status (with the core's ``classify_status``) and reads ``Retry-After``
    from ``headers``."""
    return Classification(
        classify_status(status), retry_after_from_headers(headers, now_unix_ms), status
    )


def _status_of(obj: Any) -> Optional[int]:
    for attr in ("status_code", "status"):
        v = getattr(obj, attr, None)
        if isinstance(v, int) and not isinstance(v, bool):
            return v
    return None


def _status_and_headers(obj: Any) -> Tuple[Optional[int], Any]:
    status = _status_of(obj)
    headers = getattr(obj, "headers", None)
    response = getattr(obj, "response", None)
    if response is not None:
        if status is None:
            status = _status_of(response)
        if headers is None:
            headers = getattr(response, "headers", None)
    return status, headers


def _named(exc: BaseException, names: FrozenSet[str]) -> bool:
    return any(c.__name__ in names for c in type(exc).__mro__)


def classify_response(response: Any, now_unix_ms: Optional[int] = None) -> Optional[Classification]:
    """Classifies a returned HTTP response (anything with an ``int`` ``status_code`` or
    ``status``, such as an ``httpx.Response``); ``None`` for any other value (a success).

    Pass it as ``classify_result`` to :meth:`Router.call` when ``fn`` returns responses instead of
    raising on error statuses.
    """
    status, headers = _status_and_headers(response)
    if status is None:
        return None
    return Classification(
        classify_status(min(max(status, 0), 65535)),
        retry_after_from_headers(headers, now_unix_ms),
        status,
    )


def classify_exception(
    exc: BaseException, now_unix_ms: Optional[int] = None
) -> Classification:
    """Classifies an exception raised by a provider call (see the module's doc for the rules)."""
    if not isinstance(exc, Exception):
        return Classification("cancelled")
    status, headers = _status_and_headers(exc)
    if status is not None:
        return Classification(
            classify_status(min(max(status, 0), 65535)),
            retry_after_from_headers(headers, now_unix_ms),
            status,
        )
    if isinstance(exc, _TIMEOUT_TYPES) or _named(exc, _TIMEOUT_NAMES):
        return Classification("timeout")
    if isinstance(exc, _CONNECTION_TYPES) or _named(exc, _CONNECTION_NAMES):
        return Classification("connection_error")
    return Classification("client_error")


ClassifyResult = Union[Classification, str, None]
