"""The idiomatic router: the native engine plus typed events and views, and ``call``/``acall``."""

from __future__ import annotations

import time
from typing import (
    TYPE_CHECKING,
    Any,
    Awaitable,
    Callable,
    List,
    Optional,
    TypeVar,
    Union,
)

from . import _native
from .classify import FAILURE_KINDS, Classification, classify_exception
from .errors import AllAttemptsFailed, Attempt, ProviderResponseError, Unavailable
from .events import Event, event_from_dict
from .view import ProviderView

if TYPE_CHECKING:
    from .health import HealthChecker

__all__ = ["Router", "Ticket"]

T = TypeVar("T")

Ticket = _native.Ticket

#: Turns an exception raised by a call into an outcome.
ClassifyException = Callable[[BaseException], Union[Classification, str]]
#: Turns a value returned by a call into an outcome; ``None`` means success.
ClassifyResult = Callable[[Any], Union[Classification, str, None]]

_mono_ns = time.monotonic_ns
_Failure = _native._Failure
_SUCCESS = Classification("success")


def _as_classification(c: Union[Classification, str, None]) -> Optional[Classification]:
    if c is None or isinstance(c, Classification):
        return c
    if isinstance(c, str):
        return Classification(c)
    raise TypeError(
        f"a classifier must return a Classification, an outcome name or None, not {type(c).__name__}"
    )


# The steps of one ``call``/``acall`` attempt in Python, shared by both (the caller only calls or
# awaits ``fn`` between them). Plain functions, not an object: in ``acall`` an object's creation
# and method calls cost more than the rest of the guard.


def _pick_attempt(
    router: "Router",
    key: Union[str, bytes, None],
    tried: Optional[List[str]],
    attempts: Optional[List[Attempt]],
) -> "tuple[Ticket, int]":
    """The next attempt's ticket and start time (ns), skipping the providers already tried. When
    none is left: the engine's ``Unavailable`` before any attempt, else ``AllAttemptsFailed``."""
    t0 = _mono_ns()
    try:
        if key is None and tried is None:
            return router.pick(t0 // 1_000_000), t0
        return router.pick(t0 // 1_000_000, key=key, tried=tried), t0
    except Unavailable as u:
        if attempts is None:
            raise
        failed = router._exhausted(attempts, u.retry_after_ms)
        raise failed from failed.__cause__


def _record_raised(
    router: "Router",
    classify: Optional[ClassifyException],
    ticket: "Ticket",
    t0: int,
    exc: BaseException,
) -> Optional[Attempt]:
    """Records an attempt that raised ``exc``: the failed attempt (try the next provider), or
    ``None`` when it is not a provider failure (re-raise it)."""
    t1 = _mono_ns()
    c = _as_classification((classify or classify_exception)(exc)) or _SUCCESS
    latency = (t1 - t0) / 1e6
    router.record(ticket, c.kind, latency, t1 // 1_000_000, retry_after_ms=c.retry_after_ms)
    if c.kind not in FAILURE_KINDS:
        return None
    return Attempt(ticket.provider, c.kind, latency, exc)


def _record_returned(
    router: "Router",
    classify_result: Optional[ClassifyResult],
    ticket: "Ticket",
    t0: int,
    result: Any,
) -> Optional[Attempt]:
    """Records an attempt that returned ``result``: ``None`` when the call is done (return it),
    or the failed attempt when ``classify_result`` called it a provider failure."""
    t1 = _mono_ns()
    latency = (t1 - t0) / 1e6
    rc = None if classify_result is None else _as_classification(classify_result(result))
    if rc is None:
        router.record(ticket, "success", latency, t1 // 1_000_000)
        return None
    router.record(ticket, rc.kind, latency, t1 // 1_000_000, retry_after_ms=rc.retry_after_ms)
    if rc.kind not in FAILURE_KINDS:
        return None
    provider = ticket.provider
    return Attempt(
        provider, rc.kind, latency, ProviderResponseError(provider, rc.kind, rc.status, result)
    )


class Router(_native.Router):
    """The failover engine for a list of providers in priority order (the first is the primary).

    ``Router(["openai", "anthropic"], consecutive_failures=3)`` or
    ``Router(names, {"consecutive_failures": 3})``: the policy fields are the scenario files'
    (see ``failover_core.POLICY_FIELDS``); the core validates them and raises
    :class:`~failover_core.ConfigError`.

    The run loop: :meth:`pick` a provider, call it, :meth:`record` the outcome against the ticket;
    drain :meth:`events`; if you run active health checks, drain :meth:`poll_action` (or let
    :meth:`start_health_checks` do it); sleep until :meth:`poll_timeout` and call
    :meth:`handle_timeout`. Or let :meth:`call` / :meth:`acall` do a whole request.

    Every method that takes time has an explicit ``now_ms`` (for replay and tests); omitted, it is
    ``time.monotonic_ns() // 1_000_000`` (:func:`failover_core.monotonic_ms`). Use one clock per
    router: a time older than one already seen counts as the latest seen.

    Thread safety: one router can be shared by threads and asyncio tasks. Each method holds the
    router's lock for one engine call (well under a microsecond) and runs no Python code under it.
    """

    __slots__ = ()

    # -- plain data -----------------------------------------------------------------------------

    def view(self, provider: str) -> ProviderView:
        """``provider``'s state as a :class:`ProviderView` (window figures as of the last input)."""
        return ProviderView.from_dict(self._view(provider))

    def views(self) -> List[ProviderView]:
        """Every provider's view, in priority order."""
        return [ProviderView.from_dict(self._view(p)) for p in self.providers]

    def poll_event(self) -> Optional[Event]:
        """The oldest queued event, or ``None``."""
        d = self._poll_event()
        return None if d is None else event_from_dict(d)

    def events(self) -> List[Event]:
        """Drains the event queue, oldest first."""
        return [event_from_dict(d) for d in self._drain_events()]

    # -- whole requests ---------------------------------------------------------------------------

    def _budget(self, max_attempts: Optional[int]) -> int:
        if max_attempts is None:
            return len(self)
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int):
            raise TypeError(f"max_attempts must be an int, not {type(max_attempts).__name__}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        return max_attempts

    def _exhausted(self, attempts: List[Attempt], hint: Optional[int]) -> AllAttemptsFailed:
        if hint is None:
            # Every provider tried: the soonest one's hint, read without a pick.
            hint = self.retry_hint()
        err = AllAttemptsFailed(attempts, hint)
        err.__cause__ = attempts[-1].error
        return err

    def call(
        self,
        fn: Callable[[str], T],
        /,
        *,
        key: Union[str, bytes, None] = None,
        max_attempts: Optional[int] = None,
        classify: Optional[ClassifyException] = None,
        classify_result: Optional[ClassifyResult] = None,
    ) -> T:
        """Runs one request with failover: picks a provider, calls ``fn(provider_name)``, measures
        the latency, classifies and records the outcome, and on a provider failure (server or
        connection error, timeout, rate limit) tries the next provider, at most ``max_attempts``
        times (default: once per provider).

        A client error (or any exception ``classify`` does not call a provider failure) is
        recorded and re-raised at once; so is a cancellation (``KeyboardInterrupt``, ...), recorded
        as ``cancelled``. When every attempt fails, raises :class:`AllAttemptsFailed` with every
        attempt's error, the last as ``__cause__``, and the engine's ``retry_after_ms``. When no
        provider may be called at all, raises :class:`Unavailable`.

        ``classify`` (default :func:`classify_exception`) turns an exception into an outcome;
        ``classify_result`` (default: every returned value is a success) does the same for returned
        values, e.g. :func:`classify_response` for unraised HTTP error responses.
        """
        if classify_result is not None:
            return self._call_classified(fn, key, max_attempts, classify, classify_result)
        if max_attempts is not None:
            self._budget(max_attempts)
        # The first attempt natively: pick, call, and on success record, in one native call.
        r = self._attempt(fn, key)
        if type(r) is not _Failure:
            return r  # type: ignore[no-any-return]
        budget = self._budget(max_attempts)
        attempts: List[Attempt] = []
        tried: List[str] = []
        while True:
            ticket = r.ticket
            exc = r.error
            c = _as_classification((classify or classify_exception)(exc)) or _SUCCESS
            self.record(ticket, c.kind, r.latency_ms, r.end_ms, retry_after_ms=c.retry_after_ms)
            if c.kind not in FAILURE_KINDS:
                raise exc
            attempts.append(Attempt(ticket.provider, c.kind, r.latency_ms, exc))
            tried.append(ticket.provider)
            if len(attempts) >= budget:
                failed = self._exhausted(attempts, None)
                raise failed from failed.__cause__
            try:
                r = self._attempt(fn, key, tried)
            except Unavailable as u:
                failed = self._exhausted(attempts, u.retry_after_ms)
                raise failed from failed.__cause__
            if type(r) is not _Failure:
                return r  # type: ignore[no-any-return]

    def _call_classified(
        self,
        fn: Callable[[str], T],
        key: Union[str, bytes, None],
        max_attempts: Optional[int],
        classify: Optional[ClassifyException],
        classify_result: ClassifyResult,
    ) -> T:
        """``call`` with a ``classify_result``: the same loop, in Python."""
        budget = self._budget(max_attempts)
        attempts: Optional[List[Attempt]] = None
        tried: Optional[List[str]] = None
        while attempts is None or len(attempts) < budget:
            ticket, t0 = _pick_attempt(self, key, tried, attempts)
            try:
                result = fn(ticket.provider)
            except BaseException as exc:
                failure = _record_raised(self, classify, ticket, t0, exc)
                if failure is None:
                    raise
            else:
                failure = _record_returned(self, classify_result, ticket, t0, result)
                if failure is None:
                    return result
            if attempts is None or tried is None:
                attempts, tried = [], []
            attempts.append(failure)
            tried.append(failure.provider)
        failed = self._exhausted(attempts, None)
        raise failed from failed.__cause__

    async def acall(
        self,
        fn: Callable[[str], Awaitable[T]],
        /,
        *,
        key: Union[str, bytes, None] = None,
        max_attempts: Optional[int] = None,
        classify: Optional[ClassifyException] = None,
        classify_result: Optional[ClassifyResult] = None,
    ) -> T:
        """The asyncio form of :meth:`call`: awaits ``fn(provider_name)``. A cancelled task
        records ``cancelled`` (which frees a probe permit) and re-raises ``CancelledError``."""
        budget = self._budget(max_attempts)
        attempts: Optional[List[Attempt]] = None
        tried: Optional[List[str]] = None
        while attempts is None or len(attempts) < budget:
            ticket, t0 = _pick_attempt(self, key, tried, attempts)
            try:
                result = await fn(ticket.provider)
            except BaseException as exc:
                failure = _record_raised(self, classify, ticket, t0, exc)
                if failure is None:
                    raise
            else:
                failure = _record_returned(self, classify_result, ticket, t0, result)
                if failure is None:
                    return result
            if attempts is None or tried is None:
                attempts, tried = [], []
            attempts.append(failure)
            tried.append(failure.provider)
        failed = self._exhausted(attempts, None)
        raise failed from failed.__cause__

    # -- active health checks ---------------------------------------------------------------------

    def start_health_checks(
        self,
        check: Callable[[str], Awaitable[Any]],
        *,
        on_event: Optional[Callable[[Event], Any]] = None,
        max_interval_s: float = 1.0,
        timeout_s: Optional[float] = None,
        classify: Optional[ClassifyException] = None,
        classify_result: Optional[ClassifyResult] = None,
    ) -> "HealthChecker":
        """Starts an asyncio task (in the running loop) that sends the health checks the engine
        asks for (policy ``probe_mode="health_checks"`` and/or ``health_check_interval_ms``) by
        awaiting ``check(provider_name)``,
        records their outcomes, and calls :meth:`handle_timeout` when a deadline is due. Returns a
        :class:`~failover_core.health.HealthChecker`; ``await checker.stop()`` (or use it as an
        ``async with``) to end it. See :class:`~failover_core.health.HealthChecker` for the
        arguments.
        """
        from .health import HealthChecker

        checker = HealthChecker(
            self,
            check,
            on_event=on_event,
            max_interval_s=max_interval_s,
            timeout_s=timeout_s,
            classify=classify,
            classify_result=classify_result,
        )
        checker.start()
        return checker
