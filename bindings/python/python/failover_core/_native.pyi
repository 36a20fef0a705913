# Stub of the native extension module (bindings/python/src). Checked against the built module by
# `python -m mypy.stubtest failover_core._native` in bindings/python/test.sh.
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Literal,
    Mapping,
    Optional,
    Tuple,
    TypeVar,
    Union,
    final,
)

from typing_extensions import Self, Unpack, disjoint_base

from failover_core._policy import OutcomeName as _PublicOutcome
from failover_core._policy import Policy as _Policy
from failover_core._policy import PolicyInForce as _PolicyInForce

__all__ = [
    "FailoverError",
    "ConfigError",
    "Unavailable",
    "InternalError",
    "RequestError",
    "Router",
    "Request",
    "Attempt",
    "Ticket",
    "Fleet",
    "FLEET_SCRIPT",
    "DURATION_BUCKETS_S",
    "_Pending",
    "classify",
    "classify_status",
    "chunk_kind_of",
    "headroom",
    "parse_retry_after",
    "hash_key",
    "monotonic_ms",
    "validate_policy",
    "_set_event_hook",
    "OUTCOMES",
    "POLICY_FIELDS",
    "TRANSPORTS",
    "MAX_PROVIDERS",
    "__version__",
]

_OutcomeName = Literal[
    "success",
    "rate_limited",
    "server_error",
    "connection_error",
    "timeout",
    "client_error",
    "cancelled",
    "refused",
    "credentials_rejected",
    "quota_exhausted",
    "stream_cut",
    "stalled",
]
_TransportName = Literal["timeout", "connection", "malformed", "protocol", "aborted"]
_RecordedName = Literal["accepted", "stale", "unknown_provider"]
_TicketKindName = Literal["request", "probe", "health_check"]
_T = TypeVar("_T")
_PolicyValue = Union[None, bool, int, float, str, List[Mapping[str, Union[int, float]]]]

__version__: str
OUTCOMES: Tuple[str, ...]
POLICY_FIELDS: Tuple[str, ...]
TRANSPORTS: Tuple[str, ...]
MAX_PROVIDERS: int
FLEET_SCRIPT: str
#: Bucket boundaries in seconds for the duration histograms (the core's `DURATION_BUCKETS_S`).
DURATION_BUCKETS_S: Tuple[float, ...]

class FailoverError(Exception): ...

class ConfigError(ValueError):
    code: str
    field: Optional[str]
    message: str

class Unavailable(FailoverError):
    retry_after_ms: Optional[int]
    message: str

class InternalError(FailoverError): ...

class RequestError(FailoverError):
    code: Literal["no_attempt", "not_streamed", "finished"]
    message: str

@final
class Ticket:
    @property
    def provider(self) -> str: ...
    @property
    def provider_index(self) -> int: ...
    @property
    def kind(self) -> _TicketKindName: ...
    @property
    def is_probe(self) -> bool: ...
    @property
    def degraded(self) -> bool: ...
    @property
    def retry_after_ms(self) -> Optional[int]: ...
    @property
    def issued_at_ms(self) -> int: ...
    @property
    def generation(self) -> int: ...

@final
class Fleet:
    def __new__(
        cls,
        router: Router,
        service: str,
        instance: int,
        *,
        period_ms: int = 1000,
        jitter: float = 0.1,
        seed: int = 0,
        live_periods: int = 3,
        degraded_after: int = 3,
        quorum: float = 0.3,
        quorum_min: int = 2,
        lease_ms: int = 3000,
        clock_skew_ms: int = 0,
    ) -> Self: ...
    @property
    def key(self) -> str: ...
    @property
    def instance(self) -> int: ...
    def poll_timeout(self) -> Optional[int]: ...
    def sync_now(self, now_ms: Optional[int] = None) -> None: ...
    def poll_transmit(self, now_ms: Optional[int] = None) -> Optional[Tuple[int, List[str]]]: ...
    def handle_reply(self, round: int, reply: Any, now_ms: Optional[int] = None) -> bool: ...
    def handle_failure(self, round: int, now_ms: Optional[int] = None) -> bool: ...
    def poll_event(self) -> Optional[Dict[str, Any]]: ...
    @property
    def degraded(self) -> bool: ...
    @property
    def failures(self) -> int: ...
    @property
    def live_instances(self) -> int: ...
    @property
    def quorum(self) -> int: ...
    @property
    def rounds_ok(self) -> int: ...
    @property
    def rounds_failed(self) -> int: ...
    def register(self, provider: str) -> Tuple[int, int, int]: ...

@disjoint_base
class Router:
    def __new__(
        cls,
        providers: Iterable[str],
        policy: Union[_Policy, _PolicyInForce, None] = None,
        /,
        *,
        on_event: Optional[Callable[[Any], Any]] = None,
        clock: Optional[Literal["monotonic", "unix"]] = None,
        **policy_fields: Unpack[_Policy],
    ) -> Self: ...
    @property
    def providers(self) -> Tuple[str, ...]: ...
    @property
    def clock(self) -> Literal["monotonic", "unix"]: ...
    def clock_ms(self) -> int: ...
    @property
    def _clock_offset_ms(self) -> int: ...
    def __len__(self) -> int: ...
    @property
    def now_ms(self) -> int: ...
    @property
    def pending_events(self) -> int: ...
    @property
    def dropped_events(self) -> int: ...
    @property
    def on_event(self) -> Optional[Callable[[Any], Any]]: ...
    def isolate(self, provider: str, now_ms: Optional[int] = None) -> bool: ...
    def release(self, provider: str, now_ms: Optional[int] = None) -> bool: ...
    def reset(self, provider: str, now_ms: Optional[int] = None) -> bool: ...
    def is_isolated(self, provider: str) -> bool: ...
    def policy(self) -> _PolicyInForce: ...
    def set_on_event(self, callback: Optional[Callable[[Any], Any]]) -> Optional[Callable[[Any], Any]]: ...
    def _set_observer(self, observer: Any, per_attempt: bool = True) -> Any: ...
    def _count_attempts(self, on: bool) -> None: ...
    def _attempt_counts(
        self,
    ) -> Tuple[List[Tuple[str, str, str, int]], List[Tuple[str, int]]]: ...
    def pick(
        self,
        now_ms: Optional[int] = None,
        *,
        key: Union[str, bytes, None] = None,
        tried: Optional[Iterable[str]] = None,
    ) -> Ticket: ...
    def record(
        self,
        ticket: Ticket,
        outcome: _PublicOutcome,
        latency_ms: Union[int, float, None] = None,
        now_ms: Optional[int] = None,
        *,
        retry_after_ms: Union[int, float, None] = None,
    ) -> _RecordedName: ...
    def observe(
        self,
        provider: str,
        outcome: _PublicOutcome,
        latency_ms: Union[int, float, None] = None,
        now_ms: Optional[int] = None,
        *,
        retry_after_ms: Union[int, float, None] = None,
    ) -> _RecordedName: ...
    def observe_headroom(
        self,
        provider: str,
        headers: Union[
            Mapping[Any, Any], Iterable[Tuple[Union[str, bytes], Union[str, bytes]]]
        ],
        now_ms: Optional[int] = None,
        *,
        now_unix_ms: Optional[int] = None,
    ) -> _RecordedName: ...
    def call(
        self,
        fn_: Callable[[Attempt], _T],
        /,
        *,
        key: Union[str, bytes, None] = ...,
        max_attempts: Optional[int] = ...,
        timeout_ms: Optional[int] = ...,
        max_wait_ms: Optional[int] = ...,
        classify: Optional[Callable[[BaseException], Any]] = ...,
        classify_result: Optional[Callable[[Any], Any]] = ...,
    ) -> _T: ...
    def handle_timeout(self, now_ms: Optional[int] = None) -> None: ...
    def poll_timeout(self) -> Optional[int]: ...
    def retry_hint(self) -> int: ...
    def poll_action(self, now_ms: Optional[int] = None) -> Optional[Ticket]: ...
    def _poll_event(self) -> Optional[Dict[str, Any]]: ...
    def _drain_events(self) -> List[Dict[str, Any]]: ...
    def _view(self, provider: str) -> Dict[str, Any]: ...
    def invariant_violation(self) -> Optional[str]: ...
    def _debug_panic(self) -> None: ...

@final
class Attempt:
    @property
    def provider(self) -> str: ...
    @property
    def number(self) -> int: ...
    @property
    def is_probe(self) -> bool: ...
    @property
    def deadline_ms(self) -> int: ...
    @property
    def timeout_ms(self) -> int: ...
    @property
    def idle_ms(self) -> Optional[int]: ...
    @property
    def last(self) -> bool: ...
    @property
    def timeout_s(self) -> float: ...
    @property
    def deadline_s(self) -> float: ...

@final
class _Pending:
    @property
    def request(self) -> Request: ...
    @property
    def attempt(self) -> Optional[Attempt]: ...
    @property
    def error(self) -> Optional[BaseException]: ...
    @property
    def step(self) -> Optional[Dict[str, Any]]: ...

@final
class Request:
    # Internal until the call and stream drivers are built on it. Steps, finishes, reports and
    # tickets are dicts in the request scenario files' shapes (fixtures/README.md).
    def __new__(
        cls,
        router: Router,
        now_ms: Optional[int] = None,
        *,
        max_attempts: Optional[int] = None,
        deadline_ms: Optional[int] = None,
        max_wait_ms: Optional[int] = None,
        stream: Optional[bool] = None,
        key: Union[str, bytes, None] = None,
    ) -> "Request": ...
    def poll(self, router: Router, now_ms: Optional[int] = None) -> Dict[str, Any]: ...
    def handle_outcome(
        self,
        router: Router,
        outcome: str,
        now_ms: Optional[int] = None,
        *,
        retry_after_ms: Union[int, float, None] = None,
    ) -> None: ...
    def handle_first_token(self, now_ms: Optional[int] = None) -> None: ...
    def handle_chunk(self, now_ms: Optional[int] = None) -> None: ...
    def handle_end(self, router: Router, complete: bool, now_ms: Optional[int] = None) -> None: ...
    def handle_cancel(self, router: Router, now_ms: Optional[int] = None) -> None: ...
    def last_report(self) -> Tuple[Optional[Dict[str, Any]], int]: ...
    def finish(self) -> Optional[Dict[str, Any]]: ...
    def in_flight(self) -> Optional[Dict[str, Any]]: ...
    def deadline_ms(self) -> int: ...
    def attempts(self) -> int: ...
    @staticmethod
    def _call_first(
        router: Router,
        fn_: Callable[[Attempt], Any],
        key: Union[str, bytes, None] = None,
        max_attempts: Optional[int] = None,
        deadline_ms: Optional[int] = None,
        max_wait_ms: Optional[int] = None,
    ) -> Any: ...
    @staticmethod
    def _begin(
        router: Router,
        key: Union[str, bytes, None] = None,
        max_attempts: Optional[int] = None,
        deadline_ms: Optional[int] = None,
        max_wait_ms: Optional[int] = None,
    ) -> Tuple[Request, Any]: ...
    def _call(self, router: Router, fn_: Callable[[Attempt], Any]) -> Any: ...
    def _next(self, router: Router, now_ms: Optional[int] = None) -> Any: ...

def classify(
    *,
    status: Optional[int] = None,
    error_code: Optional[str] = None,
    error_type: Optional[str] = None,
    message: Optional[str] = None,
    transport: Optional[_TransportName] = None,
    retry_after: Union[str, bytes, None] = None,
    retry_after_ms: Union[str, bytes, None] = None,
    x_ms_retry_after_ms: Union[str, bytes, None] = None,
    now_unix_ms: Optional[int] = None,
) -> Tuple[_OutcomeName, Optional[int]]: ...
def classify_status(status: int) -> _OutcomeName: ...
def chunk_kind_of(chunk: Any, /) -> Union[int, _OutcomeName]:
    """What one stream chunk is by the core's chunk table: 0 other, 1 content, 2 terminal, 3 last
    content, or an in-band error's outcome kind name."""
def headroom(
    headers: Union[Mapping[Any, Any], Iterable[Tuple[Union[str, bytes], Union[str, bytes]]]],
    now_unix_ms: Optional[int] = None,
) -> Dict[str, Any]: ...
def parse_retry_after(value: Union[str, bytes], now_unix_ms: Optional[int] = None) -> Optional[int]: ...
def hash_key(key: Union[str, bytes]) -> int: ...
def monotonic_ms() -> int: ...
def _set_event_hook(hook: Callable[[Optional[Callable[[Any], Any]], List[Dict[str, Any]]], None]) -> None: ...
def validate_policy(
    policy: Optional[_Policy] = None, /, **policy_fields: Unpack[_Policy]
) -> None: ...
