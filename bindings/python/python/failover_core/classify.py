"""Turning what a provider call produced into an outcome the engine records.

The decision is the core's one classification table (``_native.classify``, the same in Rust,
Python and Node); this module only extracts the *facts* it needs from the objects Python HTTP and
LLM clients produce (:func:`facts_of_exception`), without importing any of them:

* an exception or response with an ``int`` ``status_code`` (openai, anthropic, httpx, requests) or
  ``status`` (aiohttp), directly or on its ``response`` attribute, is classified by that status,
  and its ``headers`` (or ``response.headers``) give the ``Retry-After``;
* timeouts: ``TimeoutError`` (and ``asyncio``'s and ``socket``'s), or any exception whose class or
  a base class is named like an HTTP client's timeout (``TimeoutException``, ``ReadTimeout``,
  ``ConnectTimeout``, ``APITimeoutError``, …);
* connection failures: ``ConnectionError``, ``ssl.SSLError``, ``socket.gaierror``, or a class named
  like a client's transport error (``ConnectError``, ``APIConnectionError``,
  ``RemoteProtocolError``, …);
* the body of an ``APIStatusError`` (openai: ``.code``, ``.type``, ``.body``; anthropic: ``.body``
  ``{"error": {"type", "message"}}``) gives ``error_code``, ``error_type`` and ``message``; so
  does an SDK ``APIError`` without a status (openai's in-band SSE error event);
* malformed answers: ``json.JSONDecodeError`` and classes named like a decoding or response
  validation error (``DecodingError``, ``APIResponseValidationError``): transport ``malformed``;
* ``asyncio.CancelledError``, ``KeyboardInterrupt`` and other ``BaseException``\\ s that are not
  ``Exception``\\ s, and any exception none of the above describes: no facts (``None``).
  ``Router.call``/``acall`` re-raise those unchanged and record ``cancelled``;
  :func:`classify_exception` (kept for hand-written loops) calls them ``cancelled`` and
  ``client_error`` respectively.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any, Dict, FrozenSet, Iterable, Optional, Tuple, Union

from . import _native
from ._policy import OutcomeName

__all__ = [
    "Classification",
    "FAILURE_KINDS",
    "classify_exception",
    "classify_facts",
    "facts_of_exception",
    "classify_http",
    "classify_response",
    "classify_status",
    "parse_retry_after",
    "retry_after_from_headers",
]

classify_status = _native.classify_status
parse_retry_after = _native.parse_retry_after

#: Outcome kinds after which a request fails over to another provider. ``client_error``,
#: ``cancelled`` and ``success`` do not.
FAILURE_KINDS = frozenset(
    {
        "server_error",
        "connection_error",
        "timeout",
        "rate_limited",
        "refused",
        "credentials_rejected",
        "quota_exhausted",
        "stream_cut",
        "stalled",
    }
)

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
_PROTOCOL_NAMES = frozenset(
    {
        "RemoteProtocolError",  # httpx: the server broke the HTTP exchange
        "ProtocolError",
        "ChunkedEncodingError",  # requests
        "IncompleteRead",
    }
)
_API_ERROR_NAMES = frozenset({"APIError"})  # openai, anthropic: the base of their API errors
_MALFORMED_NAMES = frozenset(
    {
        "JSONDecodeError",  # json, requests
        "DecodingError",  # httpx
        "APIResponseValidationError",  # openai, anthropic
        "ContentTypeError",  # aiohttp
    }
)
_CONNECTION_NAMES = frozenset(
    {
        "ConnectError",  # httpx
        "NetworkError",
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

    kind: OutcomeName
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


def _text(v: Any) -> Optional[str]:
    return v if isinstance(v, str) and v else None


def _body_facts(exc: Any) -> Tuple[Optional[str], Optional[str], Optional[str]]:
    """``(error_code, error_type, message)`` from an SDK error: openai's ``.code``/``.type``, and
    the body (openai keeps the inner ``error`` object, anthropic the whole
    ``{"type": "error", "error": {"type", "message"}}``)."""
    code = _text(getattr(exc, "code", None))
    etype = _text(getattr(exc, "type", None))
    message = None
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            code = code or _text(err.get("code"))
            etype = etype or _text(err.get("type"))
            message = _text(err.get("message"))
        elif isinstance(err, str):
            message = err
    if message is None:
        message = _text(getattr(exc, "message", None))
    return code, etype, message


def _headers_facts(headers: Any, facts: Dict[str, Any]) -> None:
    for name, field in (
        ("retry-after", "retry_after"),
        ("retry-after-ms", "retry_after_ms"),
        ("x-ms-retry-after-ms", "x_ms_retry_after_ms"),
    ):
        v = _header(headers, name)
        if isinstance(v, (str, bytes)):
            facts[field] = v


def facts_of_exception(exc: BaseException) -> Optional[Dict[str, Any]]:
    """The facts the core's classification table reads, from an exception raised by a provider
    call, as keyword arguments for ``_native.classify``: ``status``, ``error_code``,
    ``error_type``, ``message``, ``transport`` and the three retry headers. ``None`` when nothing
    ties the exception to the provider (a bug in the caller's code, a cancellation): re-raise it.
    """
    if not isinstance(exc, Exception):
        return None
    facts: Dict[str, Any] = {}
    status, headers = _status_and_headers(exc)
    if status is not None:
        facts["status"] = min(max(status, 0), 65535)
        _headers_facts(headers, facts)
    # An exception with a status came with an answer: its class says nothing about the wire,
    # except a body that could not be read. Without one, openai's APITimeoutError (an
    # APIConnectionError) must be tried as a timeout first.
    if _named(exc, _MALFORMED_NAMES):
        facts["transport"] = "malformed"
    elif status is not None:
        pass
    elif isinstance(exc, _TIMEOUT_TYPES) or _named(exc, _TIMEOUT_NAMES):
        facts["transport"] = "timeout"
    elif _named(exc, _PROTOCOL_NAMES):
        facts["transport"] = "protocol"
    elif isinstance(exc, _CONNECTION_TYPES) or _named(exc, _CONNECTION_NAMES):
        facts["transport"] = "connection"
    code, etype, message = _body_facts(exc)
    # A code or type counts when the error came with an answer: a status, a transport problem,
    # or an SDK's API error carrying the body (openai's in-band SSE `{"error": ...}` event is an
    # `APIError` with no status). Another exception's `.code` (an errno, ...) says nothing.
    if status is not None or "transport" in facts or _named(exc, _API_ERROR_NAMES):
        if code is not None:
            facts["error_code"] = code
        if etype is not None:
            facts["error_type"] = etype
        if message is not None:
            facts["message"] = message
    if not facts:
        return None
    return facts


def classify_facts(facts: Dict[str, Any]) -> Classification:
    """The core's table on ``facts`` (as :func:`facts_of_exception` gives them)."""
    kind, retry_after_ms = _native.classify(**facts)
    return Classification(kind, retry_after_ms, facts.get("status"))


def classify_exception(
    exc: BaseException, now_unix_ms: Optional[int] = None
) -> Classification:
    """Classifies an exception raised by a provider call with the core's table (see the module's
    doc for the facts read). For hand-written loops: an exception with no facts is ``cancelled``
    when it is not an ``Exception`` and ``client_error`` otherwise (so it benches nothing);
    ``Router.call``/``acall`` re-raise it instead."""
    facts = facts_of_exception(exc)
    if facts is None:
        return Classification("client_error" if isinstance(exc, Exception) else "cancelled")
    if now_unix_ms is not None:
        facts["now_unix_ms"] = now_unix_ms
    return classify_facts(facts)


ClassifyResult = Union[Classification, str, None]
