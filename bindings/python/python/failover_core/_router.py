"""The idiomatic router: the native engine plus typed events and views, and ``call``/``acall``."""

from __future__ import annotations

import asyncio
import logging
import time
import types
import weakref
from typing import (
    TYPE_CHECKING,
    Any,
    Awaitable,
    Callable,
    Dict,
    Generator,
    Iterable,
    List,
    Optional,
    TypeVar,
    Union,
    cast,
)

from . import _native
from ._policy import OutcomeName
from .classify import Classification, _status_and_headers, facts_of_exception
from .errors import (
    AllAttemptsFailed,
    FailedAttempt,
    InternalError,
    ProviderResponseError,
    Unavailable,
)
from .events import Event, event_from_dict
from .view import ProviderView
from ._stream import AsyncStream, Stream, _Driver, async_chunks, sync_chunks

if TYPE_CHECKING:
    from .health import HealthChecker

__all__ = ["Attempt", "Router", "Ticket"]

T = TypeVar("T")
C = TypeVar("C")

Ticket = _native.Ticket
#: One attempt, as ``Router.call``/``acall`` hand it to the caller's function (a frozen native
#: object): ``provider``, ``number``, ``is_probe``, ``timeout_s``/``timeout_ms`` (give it to the
#: SDK call), ``deadline_ms``/``deadline_s`` (on the router's clock: ``time.monotonic()``'s, or
#: Unix time with ``clock="unix"``), ``last``.
Attempt = _native.Attempt

#: Turns an exception raised by a call into an outcome.
ClassifyException = Callable[[BaseException], Union[Classification, str]]
#: Turns a value returned by a call into an outcome; ``None`` means success.
ClassifyResult = Callable[[Any], Union[Classification, str, None]]

#: Outcomes of a returned value that go back to the caller as they are.
_RETURNED = frozenset({"success", "client_error"})
_Request = _native.Request
_Pending = _native._Pending
_NativeAttempt = _native.Attempt
_call_first = _native.Request._call_first
_begin = _native.Request._begin
_classify = _native.classify
_monotonic_ms = _native.monotonic_ms
_get_running_loop = asyncio.get_running_loop
_current_task = asyncio.current_task
_CoroutineType = types.CoroutineType


#: The logger of every router's events: INFO for opens (rollbacks included), recoveries and
#: benches; DEBUG for probes, ramp stages, throttles and the rest. The record's message is
#: ``"<provider> <kind>: <the core's description>"``; ``record.failover_event`` is the event.
logger = logging.getLogger("failover_core")
_INFO_KINDS = frozenset({"opened", "recovered", "benched"})


def _dispatch(
    listener: Optional[Callable[[Event], Any]],
    dicts: List[Dict[str, Any]],
    observer: Any = None,
) -> None:
    """Called by the native router right after an engine call that queued events (outside its
    lock), with the router's ``on_event`` callback and its observer (``failover_core.otel``):
    hands the raw events to the observer, logs each event and hands it to the callback. An
    exception from the callback or the observer is logged, never raised into the call."""
    if observer is not None:
        try:
            observer.events(dicts)
        except Exception:
            logger.exception("the observer raised on events")
    log_info = logger.isEnabledFor(logging.INFO)
    log_debug = log_info and logger.isEnabledFor(logging.DEBUG)
    if listener is None and not log_info:
        return
    for d in dicts:
        ev = event_from_dict(d)
        if log_info:
            level = logging.INFO if ev.kind in _INFO_KINDS else logging.DEBUG
            if level == logging.INFO or log_debug:
                logger.log(level, "%s", ev, extra={"failover_event": ev})
        if listener is not None:
            try:
                listener(ev)
            except Exception:
                logger.exception("on_event callback raised on %s", ev)


_native._set_event_hook(_dispatch)


def _as_classification(c: Union[Classification, str, None]) -> Optional[Classification]:
    if c is None or isinstance(c, Classification):
        return c
    if isinstance(c, str):
        return Classification(cast(OutcomeName, c))  # the engine checks the name
    raise TypeError(
        f"a classifier must return a Classification, an outcome name or None, not {type(c).__name__}"
    )


def _ms_arg(name: str, v: Optional[int]) -> Optional[int]:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"{name} must be an int number of milliseconds, not {type(v).__name__}")
    if v < 0:
        raise ValueError(f"{name} must not be negative, got {v}")
    return v


def _kind_of(
    exc: BaseException, classify: Optional[ClassifyException]
) -> "tuple[str, Optional[int]]":
    """The outcome of an attempt that raised ``exc``: the core's table on its facts (or the
    caller's ``classify``); ``cancelled`` when nothing ties it to the provider."""
    if classify is not None:
        c = _as_classification(classify(exc))
        if c is None:
            return "cancelled", None
        return c.kind, c.retry_after_ms
    facts = facts_of_exception(exc)
    if facts is None:
        return "cancelled", None
    return _classify(**facts)


def _pace(router: "_native.Router", provider: str, answer: Any) -> None:
    """Feeds the rate-limit headers of an answer or an error (its ``headers``, or its
    ``response.headers``) to the router's pacing, so ``call`` users get pacing with no code. An
    answer without headers, or with headers that cannot be read, changes nothing."""
    headers = _status_and_headers(answer)[1]
    if headers is None:
        return
    try:
        router.observe_headroom(provider, headers, now_unix_ms=time.time_ns() // 1_000_000)
    except (TypeError, ValueError):
        pass


def _report(
    router: "Router",
    req: "_native.Request",
    attempt: "Attempt",
    kind: str,
    retry_after_ms: Optional[int],
    error: BaseException,
    failed: List[FailedAttempt],
    now_ms: Optional[int] = None,
) -> bool:
    """Reports a failed attempt to the request; ``False`` when it ends the request as cancelled
    (the caller re-raises ``error``)."""
    if kind == "cancelled":
        req.handle_cancel(router, now_ms)
        return False
    req.handle_outcome(router, kind, now_ms, retry_after_ms=retry_after_ms)
    _pace(router, attempt.provider, error)
    rep = req.last_report()[0]
    latency = float(rep["latency_ms"]) if rep is not None else 0.0
    failed.append(
        FailedAttempt(attempt.provider, kind, latency, error, retry_after_ms, attempt.number)
    )
    return True


def _finished(done: Dict[str, Any], failed: List[FailedAttempt]) -> BaseException:
    """The exception to raise for a request that ended without a value (``done`` is ``poll``'s)."""
    finish = done["finish"]
    if finish in ("caller_error", "cancelled") and failed:
        return failed[-1].error
    if finish != "gave_up":  # pragma: no cover - a success is returned, never polled
        raise InternalError(f"the request ended as {finish!r} with no value to return")
    hint = done["retry_after_ms"]
    if not failed:
        u = Unavailable(f"no provider can take the request ({done['reason']}); retry after {hint} ms")
        u.retry_after_ms = hint
        u.message = str(u)
        return u
    err = AllAttemptsFailed(failed, hint, done["reason"])
    err.__cause__ = failed[-1].error
    return err


def _wait_s(router: "_native.Router", step: Dict[str, Any]) -> float:
    """How long to sleep for a ``wait`` (or, defensively, an ``in_flight``) step (its times are on
    the router's clock)."""
    inner = step.get("wait") or step.get("in_flight") or {}
    until: int = inner.get("until_ms", inner.get("deadline_ms", 0))
    return max(0, until - router.clock_ms()) / 1000


class _Resume:
    """Awaits the rest of an awaitable whose first step ``acall`` already ran (it yielded
    ``first``): passes what the event loop sends or throws on to it, as ``yield from`` would."""

    __slots__ = ("it", "first")

    def __init__(self, it: Any, first: Any) -> None:
        self.it = it
        self.first = first

    def __await__(self) -> Generator[Any, Any, Any]:
        it, value = self.it, self.first
        self.first = None
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                it.close()
                raise
            except BaseException as exc:
                try:
                    value = it.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    value = it.send(sent)
                except StopIteration as stop:
                    return stop.value


class _Watchdog:
    """Cancels the tasks of ``acall`` attempts past their deadlines, with one timer per event
    loop: armed at the earliest deadline in flight; when it fires, it cancels every task whose
    deadline passed (marking its entry) and re-arms for the next. Adding an attempt whose
    deadline is later than the armed one (the usual case) costs a dict insert."""

    __slots__ = ("loop", "inflight", "armed_at", "handle")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        #: attempt -> [deadline in loop time, task, expired]
        self.inflight: Dict[Any, List[Any]] = {}
        self.armed_at = float("inf")
        self.handle: Optional[asyncio.TimerHandle] = None

    def arm(self, when: float) -> None:
        if self.handle is not None:
            self.handle.cancel()
        self.armed_at = when
        self.handle = self.loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self.handle = None
        self.armed_at = float("inf")
        now = self.loop.time()
        soonest = float("inf")
        for entry in list(self.inflight.values()):
            if entry[2]:
                continue
            if entry[0] <= now:
                entry[2] = True
                if entry[1] is not None:
                    entry[1].cancel()
            elif entry[0] < soonest:
                soonest = entry[0]
        if soonest != float("inf"):
            self.arm(soonest)


_watchdogs: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Watchdog]" = (
    weakref.WeakKeyDictionary()
)
_last_watchdog: List[Any] = [None, None]


def _watchdog(loop: asyncio.AbstractEventLoop) -> _Watchdog:
    if _last_watchdog[0] is loop:
        return _last_watchdog[1]  # type: ignore[no-any-return]
    wd = _watchdogs.get(loop)
    if wd is None:
        wd = _watchdogs[loop] = _Watchdog(loop)
    _last_watchdog[0], _last_watchdog[1] = loop, wd
    return wd


def _uncancel(task: Any) -> None:
    """Takes back the watchdog's cancellation of ``task`` (Python 3.11+; before, a cancelled
    task does not count its cancellations)."""
    uncancel = getattr(task, "uncancel", None)
    if uncancel is not None:
        uncancel()


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
    the router's clock (:meth:`clock_ms`): ``time.monotonic_ns() // 1_000_000``
    (:func:`failover_core.monotonic_ms`) by default, or with ``Router(..., clock="unix")`` Unix
    milliseconds (the wall clock when the router is made, advancing with the monotonic clock, so
    it never steps): what fleet mode wants, since its instances share Unix-ms buckets
    (``docs/fleet.md``). Use one clock per router: a time older than one already seen counts as
    the latest seen.

    Thread safety: one router can be shared by threads and asyncio tasks. Each method holds the
    router's lock for one engine call (well under a microsecond) and runs no Python code under it.

    Events are pushed as they happen: ``Router(names, on_event=fn)`` (or
    :meth:`set_on_event`) calls ``fn(event)`` with every :class:`~failover_core.events.Event`
    right after the engine call that produced it, outside the lock, in the thread that made the
    call; including events of :meth:`call`, :meth:`acall`, :meth:`stream`, :meth:`astream` and
    health checks. They are also logged to ``logging.getLogger("failover_core")`` (INFO: opens,
    rollbacks, recoveries, benches; DEBUG: the rest). The queue drained by :meth:`events` is
    independent: it keeps the newest 64 and counts what it dropped (``dropped_events``).
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
        if not 1 <= max_attempts <= 255:
            raise ValueError(f"max_attempts must be in 1..=255, got {max_attempts}")
        return max_attempts

    def _deadline(self, timeout_ms: Optional[int]) -> Optional[int]:
        t = _ms_arg("timeout_ms", timeout_ms)
        return None if t is None else self.clock_ms() + t

    def _call_with_options(
        self,
        fn: Callable[[Attempt], T],
        /,
        *,
        key: Union[str, bytes, None] = None,
        max_attempts: Optional[int] = None,
        timeout_ms: Optional[int] = None,
        max_wait_ms: Optional[int] = None,
        classify: Optional[ClassifyException] = None,
        classify_result: Optional[ClassifyResult] = None,
    ) -> T:
        """Runs one request with failover, driven by the core's request engine: it says which
        provider each attempt goes to, whether to retry, wait or give up, and each attempt's
        deadline. ``call`` calls ``fn(attempt)`` (an :data:`Attempt`: ``provider``, ``number``,
        ``is_probe``, ``timeout_s``, ...), reads the facts of what it raised (status, body error
        code and type, retry headers, timeout and connection errors: see
        :func:`~failover_core.classify.facts_of_exception`), and reports them.

        * ``fn`` returns: a success; its value is returned.
        * The provider's fault (5xx, 429, timeout, connection error, refused, credentials
          rejected, quota exhausted): recorded; the engine picks the next attempt (or waits for a
          provider's ``Retry-After`` within ``max_wait_ms``, sleeping in ``time.sleep``).
        * The caller's fault (400, 422, content filter): recorded; that exception is re-raised.
        * An exception nothing ties to the provider (no status, no known transport error: a bug
          in ``fn``, ``KeyboardInterrupt``): the request records ``cancelled`` and it is re-raised
          unchanged.
        * The engine gives up after attempts: :class:`AllAttemptsFailed` (``attempts``,
          ``errors``, ``reason``, ``retry_after_ms``; the last error is ``__cause__``); before any
          attempt: :class:`Unavailable` with ``retry_after_ms``.

        A synchronous call cannot be interrupted: pass ``attempt.timeout_s`` to your SDK (with
        its own retries off, ``max_retries=0``) so the attempt ends by its deadline. A call that
        returns late still counts as what it returned.

        ``max_attempts`` (default: one per provider plus the policy's ``same_provider_retries``),
        ``timeout_ms`` (the whole request's, default the policy's ``request_timeout_ms``) and
        ``max_wait_ms`` (default the policy's) go to the engine. ``classify`` replaces the facts
        reading for exceptions (an outcome name, a :class:`Classification`, or ``None`` for "not
        the provider's"); ``classify_result`` classifies returned values (``None``: success),
        e.g. :func:`~failover_core.classify_response` for unraised HTTP error responses.
        """
        if max_attempts is not None:
            self._budget(max_attempts)
        deadline = None if timeout_ms is None else self._deadline(timeout_ms)
        if classify_result is not None:
            return self._call_classified(
                fn, key, max_attempts, deadline, max_wait_ms, classify, classify_result
            )
        # The first attempt natively: start the request, poll, call, and on success record, in
        # one native call (no request object is created then).
        r = _call_first(self, fn, key, max_attempts, deadline, _ms_arg("max_wait_ms", max_wait_ms))
        if type(r) is not _Pending:
            return r  # type: ignore[no-any-return]
        return self._call_rest(r, fn, classify)

    def _call_rest(
        self,
        r: "_native._Pending",
        fn: Callable[[Attempt], T],
        classify: Optional[ClassifyException] = None,
    ) -> T:
        """``call`` after a first attempt that did not return a value: report it, and make the
        attempts, waits and the finish the engine asks for."""
        req = r.request
        failed: List[FailedAttempt] = []
        while True:
            attempt = r.attempt
            if attempt is not None:
                exc: BaseException = r.error  # type: ignore[assignment]
                kind, retry_after_ms = _kind_of(exc, classify)
                if not _report(self, req, attempt, kind, retry_after_ms, exc, failed):
                    raise exc
                del exc
            else:
                step: Dict[str, Any] = r.step  # type: ignore[assignment]
                done = step.get("done")
                if done is not None:
                    raise _finished(done, failed)
                time.sleep(_wait_s(self, step))
            nxt = req._call(self, fn)
            if type(nxt) is not _Pending:
                return nxt  # type: ignore[no-any-return]
            r = nxt

    def _call_classified(
        self,
        fn: Callable[[Attempt], T],
        key: Union[str, bytes, None],
        max_attempts: Optional[int],
        deadline: Optional[int],
        max_wait_ms: Optional[int],
        classify: Optional[ClassifyException],
        classify_result: ClassifyResult,
    ) -> T:
        """``call`` with a ``classify_result``: the same loop, in Python."""
        req = _Request(
            self,
            max_attempts=max_attempts,
            deadline_ms=deadline,
            max_wait_ms=_ms_arg("max_wait_ms", max_wait_ms),
            key=key,
        )
        failed: List[FailedAttempt] = []
        while True:
            a = req._next(self)
            if type(a) is not _NativeAttempt:
                step: Dict[str, Any] = a
                done = step.get("done")
                if done is not None:
                    raise _finished(done, failed)
                time.sleep(_wait_s(self, step))
                continue
            try:
                result = fn(a)
            except BaseException as exc:
                kind, retry_after_ms = _kind_of(exc, classify)
                if not _report(self, req, a, kind, retry_after_ms, exc, failed):
                    raise
                continue
            rc = _as_classification(classify_result(result))
            if rc is None or rc.kind in _RETURNED:
                # A success, or the caller's fault: the response goes back as it is.
                req.handle_outcome(self, "success" if rc is None else rc.kind)
                _pace(self, a.provider, result)
                return result
            error = ProviderResponseError(a.provider, rc.kind, rc.status, result)
            if not _report(self, req, a, rc.kind, rc.retry_after_ms, error, failed):
                return result

    async def acall(
        self,
        fn: Callable[[Attempt], Awaitable[T]],
        /,
        *,
        key: Union[str, bytes, None] = None,
        max_attempts: Optional[int] = None,
        timeout_ms: Optional[int] = None,
        max_wait_ms: Optional[int] = None,
        classify: Optional[ClassifyException] = None,
        classify_result: Optional[ClassifyResult] = None,
    ) -> T:
        """The asyncio form of :meth:`call`: awaits ``fn(attempt)``, and cancels it at the
        attempt's deadline (the engine then records a ``timeout`` and moves on); waits with
        ``asyncio.sleep``. A cancelled task records ``cancelled`` (which frees a probe permit) and
        re-raises ``CancelledError``."""
        if max_attempts is None and timeout_ms is None and max_wait_ms is None:
            req, nxt = _begin(self, key)
        else:
            if max_attempts is not None:
                self._budget(max_attempts)
            req, nxt = _begin(
                self,
                key,
                max_attempts,
                None if timeout_ms is None else self._deadline(timeout_ms),
                _ms_arg("max_wait_ms", max_wait_ms),
            )
        failed: List[FailedAttempt] = []
        while True:
            a = req._next(self) if nxt is None else nxt
            nxt = None
            if type(a) is not _NativeAttempt:
                step: Dict[str, Any] = a
                done = step.get("done")
                if done is not None:
                    raise _finished(done, failed)
                await asyncio.sleep(_wait_s(self, step))
                continue
            # The first step of `fn(a)` runs here: an awaitable that finishes without suspending
            # needs no deadline. One that suspends is awaited on with its deadline armed: one
            # watchdog timer per event loop for every attempt in flight (a timer per attempt
            # costs microseconds) cancels this task then.
            entry: Optional[List[Any]] = None
            try:
                aw = fn(a)
                it: Any = aw if type(aw) is _CoroutineType else aw.__await__()
                try:
                    first = it.send(None)
                except StopIteration as stop:
                    result = stop.value
                else:
                    loop = _get_running_loop()
                    wd = _last_watchdog[1] if _last_watchdog[0] is loop else _watchdog(loop)
                    deadline = loop.time() + a.timeout_ms / 1000
                    entry = [deadline, _current_task(), False]
                    wd.inflight[a] = entry
                    if deadline < wd.armed_at:
                        wd.arm(deadline)
                    try:
                        result = await _Resume(it, first)
                    finally:
                        del wd.inflight[a]
            except BaseException as exc:
                timed_out = entry is not None and entry[2]
                if timed_out:
                    _uncancel(entry[1])  # type: ignore[index]
                    # The deadline passed: polling at it records the timeout, then decides
                    # the next step.
                    nxt = req._next(self, max(self.clock_ms(), a.deadline_ms))
                    rep = req.last_report()[0]
                    late = TimeoutError(
                        f"{a.provider} did not answer within {a.timeout_ms} ms (attempt {a.number})"
                    )
                    late.__context__ = exc
                    failed.append(
                        FailedAttempt(
                            a.provider,
                            "timeout",
                            float(rep["latency_ms"]) if rep is not None else 0.0,
                            late,
                            None,
                            a.number,
                        )
                    )
                    if type(nxt) is not _NativeAttempt and "done" in nxt:
                        raise _finished(nxt["done"], failed) from None
                    continue
                kind, retry_after_ms = _kind_of(exc, classify)
                if not _report(self, req, a, kind, retry_after_ms, exc, failed):
                    raise
                continue
            if entry is not None and entry[2]:  # the deadline passed; `fn` swallowed it
                _uncancel(entry[1])
            rc = None
            if classify_result is not None:
                rc = _as_classification(classify_result(result))
                if rc is not None and rc.kind not in _RETURNED:
                    error = ProviderResponseError(a.provider, rc.kind, rc.status, result)
                    if _report(self, req, a, rc.kind, rc.retry_after_ms, error, failed):
                        continue
                    return result  # type: ignore[no-any-return]
            req.handle_outcome(self, "success" if rc is None else rc.kind)
            _pace(self, a.provider, result)
            return result  # type: ignore[no-any-return]

    # -- streams ----------------------------------------------------------------------------------

    def stream(
        self,
        fn: Callable[[Attempt], Iterable[C]],
        /,
        *,
        key: Union[str, bytes, None] = None,
        max_attempts: Optional[int] = None,
        timeout_ms: Optional[int] = None,
        max_wait_ms: Optional[int] = None,
        classify: Optional[ClassifyException] = None,
        is_content: Optional[Callable[[Any], bool]] = None,
        is_terminal: Optional[Callable[[Any], bool]] = None,
    ) -> "Stream[C]":
        """A streamed request with failover: ``with router.stream(fn) as chunks: for c in
        chunks: ...``. ``fn(attempt)`` opens the provider's stream (an iterable of chunks, such
        as ``client.chat.completions.create(..., stream=True, timeout=attempt.timeout_s)``).

        What a chunk is comes from the core's chunk table (:func:`chunk_kind`). Chunks that are
        not content (OpenAI deltas with text, tool calls or a refusal, Anthropic
        ``content_block_delta`` are; role-only deltas, ``message_start`` or ``ping`` are not) are
        held back until the first content chunk, so a stream that fails before it (an error, an
        in-band error chunk, a cut, no content by the first-token deadline) is replaced by the
        next provider's unseen. It ends complete with its terminal chunk (a ``finish_reason``,
        ``message_stop``); ended without one, it was cut. After the first content a cut, a stall
        (no chunk within the idle deadline) or an error raises :class:`StreamBroken` with the
        chunks already delivered. ``is_content``/``is_terminal`` replace the core's table for
        other chunk shapes.

        Deadlines: a watchdog thread interrupts a blocking read at the first-token or idle
        deadline: an httpx-based stream (the openai and anthropic SDKs') has its socket shut
        down, any other object ``fn`` returned is closed. It cannot interrupt ``fn`` itself
        (sending the request, waiting for headers) or a generator's own blocking work, which are
        checked when they return: pass ``attempt.timeout_s`` to the SDK. Leaving the ``with``
        block early closes the provider's stream and records ``cancelled``.
        """
        d = _Driver(self, key, max_attempts, timeout_ms, max_wait_ms, classify, is_content,
                    is_terminal)
        return Stream(sync_chunks(d, fn))

    def astream(
        self,
        fn: Callable[[Attempt], Any],
        /,
        *,
        key: Union[str, bytes, None] = None,
        max_attempts: Optional[int] = None,
        timeout_ms: Optional[int] = None,
        max_wait_ms: Optional[int] = None,
        classify: Optional[ClassifyException] = None,
        is_content: Optional[Callable[[Any], bool]] = None,
        is_terminal: Optional[Callable[[Any], bool]] = None,
    ) -> "AsyncStream[Any]":
        """The asyncio form of :meth:`stream`: ``async with router.astream(fn) as chunks: async
        for c in chunks: ...``. ``fn(attempt)`` returns an async iterator of chunks, or a
        coroutine that opens one (``await client.chat.completions.create(..., stream=True)``).
        Every read is cancelled at the engine's current deadline (the first-token deadline, then
        the idle deadline from the last chunk), which records a timeout (before content: the
        request fails over) or a stall (after: :class:`StreamBroken`)."""
        d = _Driver(self, key, max_attempts, timeout_ms, max_wait_ms, classify, is_content,
                    is_terminal)
        return AsyncStream(async_chunks(d, fn))

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
