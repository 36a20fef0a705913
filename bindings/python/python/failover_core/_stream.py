"""``Router.stream`` / ``Router.astream``: a streamed request on the core's request engine.

The engine decides (which provider, fail over or not, the first-token and idle deadlines); this
module iterates the provider's stream, tells the engine when the first *content* arrived, when
chunks arrive and how the stream ended, and enforces the deadlines it gets.

Failing over is safe only before the caller has seen anything: chunks that are not content (a
role-only delta, ``message_start``, ``ping``) are held back until the first content chunk and
then delivered with it, so a stream that fails before content is replaced by the next
provider's without the caller noticing. After the first content, a failure is the caller's:
:class:`~failover_core.StreamBroken` carries the chunks already delivered.
"""

from __future__ import annotations

import asyncio
import time
from typing import (
    Any,
    AsyncGenerator,
    AsyncIterator,
    Generator,
    Generic,
    Awaitable,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    TypeVar,
    Union,
)

from . import _native
from .errors import FailedAttempt, StreamBroken

C = TypeVar("C")

_Attempt = _native.Attempt
_monotonic_ms = _native.monotonic_ms
_INF = float("inf")


def _get(obj: Any, name: str) -> Any:
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def is_content(chunk: Any) -> bool:
    """Whether a chunk is content the caller sees: an OpenAI chat completion chunk whose delta has
    text, a refusal or tool calls; an Anthropic ``content_block_delta`` event; a non-empty
    ``str``/``bytes``. Objects and dicts alike (duck-typed)."""
    if isinstance(chunk, (str, bytes)):
        return bool(chunk)
    kind = _get(chunk, "type")
    if kind is not None and isinstance(kind, str):
        if kind == "content_block_delta":
            return True
        if kind.startswith(("message_", "content_block_", "ping")):
            return False
    for choice in _get(chunk, "choices") or ():
        delta = _get(choice, "delta")
        if delta is not None and (
            _get(delta, "content") or _get(delta, "tool_calls") or _get(delta, "refusal")
        ):
            return True
    return False


def is_terminal(chunk: Any) -> bool:
    """Whether a chunk ends the stream complete: an OpenAI chunk with a ``finish_reason``, or
    Anthropic's ``message_stop`` event."""
    if type(chunk) is dict:  # the common raw shape, without the duck typing's getattr calls
        kind = chunk.get("type")
        if kind is not None:
            return bool(kind == "message_stop")
        for choice in chunk.get("choices") or ():
            if type(choice) is dict and choice.get("finish_reason") is not None:
                return True
        return False
    if _get(chunk, "type") == "message_stop":
        return True
    for choice in _get(chunk, "choices") or ():
        if _get(choice, "finish_reason") is not None:
            return True
    return False


def _kind_of(exc: BaseException, classify: Optional[Callable[[BaseException], Any]]) -> Any:
    from ._router import _kind_of as kind_of

    return kind_of(exc, classify)


class _Driver:
    """The state one streamed request shares between its sync and async loops."""

    __slots__ = (
        "router",
        "req",
        "classify",
        "content",
        "terminal",
        "failed",
        "delivered",
    )

    def __init__(
        self,
        router: Any,
        key: Union[str, bytes, None],
        max_attempts: Optional[int],
        timeout_ms: Optional[int],
        max_wait_ms: Optional[int],
        classify: Optional[Callable[[BaseException], Any]],
        content: Callable[[Any], bool],
        terminal: Callable[[Any], bool],
    ) -> None:
        from ._router import _ms_arg

        if max_attempts is not None:
            router._budget(max_attempts)
        self.router = router
        self.req = _native.Request(
            router,
            max_attempts=max_attempts,
            deadline_ms=None if timeout_ms is None else router._deadline(timeout_ms),
            max_wait_ms=_ms_arg("max_wait_ms", max_wait_ms),
            stream=True,
            key=key,
        )
        self.classify = classify
        self.content = content
        self.terminal = terminal
        self.failed: List[FailedAttempt] = []
        #: The chunks the caller has been given.
        self.delivered: List[Any] = []

    def finished(self, step: Dict[str, Any]) -> BaseException:
        from ._router import _finished

        return _finished(step["done"], self.failed)

    def failed_call(self, a: Any, exc: BaseException, started: bool) -> Optional[Any]:
        """An exception from the call or the stream: reports it. Returns the next step (failing
        over), or raises: ``exc`` itself when nothing ties it to the provider (the request is
        cancelled) or the engine ends the request there, ``StreamBroken`` after content."""
        from ._router import _report

        kind, retry_after_ms = _kind_of(exc, self.classify)
        if not _report(self.router, self.req, a, kind, retry_after_ms, exc, self.failed):
            raise exc
        if started:
            raise StreamBroken(a.provider, kind, self.delivered, exc) from exc
        return None

    def ended(self, a: Any, complete: bool, started: bool) -> bool:
        """The provider's stream ended: ``True`` when complete (the request is over); after
        content a cut raises ``StreamBroken``; before content it fails over (``False``)."""
        self.req.handle_end(self.router, complete)
        if complete:
            return True
        cut = RuntimeError(f"{a.provider}'s stream ended without its terminal event")
        self.failed.append(FailedAttempt(a.provider, "stream_cut", 0.0, cut, None, a.number))
        if started:
            raise StreamBroken(a.provider, "stream_cut", self.delivered, None)
        return False

    def late(self, a: Any, now: int, started: bool) -> Any:
        """A deadline passed: poll at it, which records the timeout (before content) or the stall
        (after). Returns the next step; raises ``StreamBroken`` after content."""
        nxt = self.req._next(self.router, now)
        if isinstance(nxt, dict) and "in_flight" in nxt:
            return nxt  # not yet by the engine's clock
        outcome = "stalled" if started else "timeout"
        err = TimeoutError(
            f"{a.provider}'s stream "
            + ("stalled" if started else f"sent no content within {a.timeout_ms} ms")
        )
        self.failed.append(FailedAttempt(a.provider, outcome, 0.0, err, None, a.number))
        if started:
            raise StreamBroken(a.provider, outcome, self.delivered, err)
        return nxt


def _close(it: Any) -> None:
    close = getattr(it, "close", None)
    if close is not None:
        try:
            close()
        except Exception:  # closing a broken stream may fail again; nothing to add
            pass


def sync_chunks(d: _Driver, fn: Callable[[Any], Iterable[C]]) -> Generator[C, None, None]:
    """The sync stream's chunks (a generator: closing it cancels the request)."""
    req, router, delivered = d.req, d.router, d.delivered
    content, terminal = d.content, d.terminal
    nxt: Any = None
    finished = False
    try:
        while True:
            a = req._next(router) if nxt is None else nxt
            nxt = None
            if type(a) is not _Attempt:
                if "done" in a:
                    finished = True
                    raise d.finished(a)
                inner = a.get("wait") or a.get("in_flight") or {}
                until = inner.get("until_ms", inner.get("deadline_ms", 0))
                time.sleep(max(0, until - _monotonic_ms()) / 1000)
                continue
            started = False
            held: List[C] = []
            deadline = a.deadline_ms
            idle = a.idle_ms or 0
            it: Any = None
            try:
                it = iter(fn(a))
                complete = False
                last = 0
                for chunk in it:
                    now = _monotonic_ms()
                    if now >= deadline:
                        # A synchronous read cannot be interrupted: the deadline is checked when
                        # a chunk arrives (the SDK's own timeout ends a silent read).
                        if last:
                            req.handle_chunk(last)
                        nxt = d.late(a, now, started)
                        if type(nxt) is _Attempt or "in_flight" not in nxt:
                            break
                        deadline = nxt["in_flight"]["deadline_ms"]
                        nxt = None
                    if terminal(chunk):
                        complete = True
                    if started:
                        # The engine learns of chunk arrivals only when it must decide (before a
                        # poll): its idle deadline is the last arrival's, as if told each time.
                        last = now
                        deadline = now + idle
                        delivered.append(chunk)
                        yield chunk
                    elif content(chunk):
                        req.handle_first_token(now)
                        started = True
                        deadline = now + idle
                        for h in held:
                            delivered.append(h)
                            yield h
                        delivered.append(chunk)
                        yield chunk
                    else:
                        held.append(chunk)
                    if complete:
                        break
                if nxt is not None:
                    continue
                if last:
                    req.handle_chunk(last)
                if complete and not started:  # complete with no content: deliver what it sent
                    for h in held:
                        delivered.append(h)
                        yield h
                if d.ended(a, complete, started):
                    finished = True
                    return
            except GeneratorExit:
                raise
            except StreamBroken:
                finished = True
                raise
            except BaseException as exc:
                try:
                    d.failed_call(a, exc, started)
                except BaseException:
                    finished = True
                    raise
            finally:
                _close(it)
    finally:
        if not finished and req.finish() is None:
            # The caller stopped early (or its code raised): the request is cancelled.
            req.handle_cancel(router)


async def async_chunks(
    d: _Driver, fn: Callable[[Any], Union[AsyncIterator[C], Awaitable[AsyncIterator[C]]]]
) -> AsyncGenerator[C, None]:
    """The async stream's chunks: each read is bounded by the engine's current deadline (the
    first-token deadline, then the idle deadline), enforced by the event loop's watchdog."""
    from ._router import _last_watchdog, _uncancel, _watchdog

    req, router, delivered = d.req, d.router, d.delivered
    content, terminal = d.content, d.terminal
    loop = asyncio.get_running_loop()
    wd = _last_watchdog[1] if _last_watchdog[0] is loop else _watchdog(loop)
    task = asyncio.current_task()
    nxt: Any = None
    finished = False
    try:
        while True:
            a = req._next(router) if nxt is None else nxt
            nxt = None
            if type(a) is not _Attempt:
                if "done" in a:
                    finished = True
                    raise d.finished(a)
                inner = a.get("wait") or a.get("in_flight") or {}
                until = inner.get("until_ms", inner.get("deadline_ms", 0))
                await asyncio.sleep(max(0, until - _monotonic_ms()) / 1000)
                continue
            started = False
            held: List[C] = []
            deadline = a.deadline_ms
            idle = a.idle_ms or 0
            it: Any = None
            # The watchdog's entry for this attempt: armed (its deadline in loop time) only while
            # a read is awaited, never while the caller's code runs between chunks.
            entry: List[Any] = [_INF, task, False]
            wd.inflight[a] = entry
            offset = loop.time() - _monotonic_ms() / 1000
            last = 0
            try:
                src: Any = fn(a)
                if not hasattr(src, "__anext__") and not hasattr(src, "__aiter__"):
                    # A coroutine that opens the stream (the SDKs'), bounded by the same deadline.
                    entry[0] = deadline / 1000 + offset
                    if entry[0] < wd.armed_at:
                        wd.arm(entry[0])
                    src = await src
                    entry[0] = _INF
                it = src if hasattr(src, "__anext__") else src.__aiter__()
                anext = it.__anext__
                complete = False
                while True:
                    when = deadline / 1000 + offset
                    entry[0] = when
                    if when < wd.armed_at:
                        wd.arm(when)
                    try:
                        chunk = await anext()
                    except StopAsyncIteration:
                        entry[0] = _INF
                        break
                    entry[0] = _INF
                    now = _monotonic_ms()
                    if terminal(chunk):
                        complete = True
                    if started:
                        last = now
                        deadline = now + idle
                        delivered.append(chunk)
                        yield chunk
                    elif content(chunk):
                        req.handle_first_token(now)
                        started = True
                        deadline = now + idle
                        for h in held:
                            delivered.append(h)
                            yield h
                        delivered.append(chunk)
                        yield chunk
                    else:
                        held.append(chunk)
                    if complete:
                        break
                if last:
                    req.handle_chunk(last)
                if complete and not started:
                    for h in held:
                        delivered.append(h)
                        yield h
                if d.ended(a, complete, started):
                    finished = True
                    return
            except GeneratorExit:
                raise
            except StreamBroken:
                finished = True
                raise
            except BaseException as exc:
                entry[0] = _INF
                if entry[2]:
                    # The watchdog cancelled the read at the deadline.
                    _uncancel(task)
                    if last:
                        req.handle_chunk(last)
                    try:
                        nxt = d.late(a, max(_monotonic_ms(), deadline), started)
                    except BaseException:
                        finished = True
                        raise
                    if isinstance(nxt, dict) and "in_flight" in nxt:  # pragma: no cover
                        nxt = None
                    continue
                try:
                    d.failed_call(a, exc, started)
                except BaseException:
                    finished = True
                    raise
            finally:
                wd.inflight.pop(a, None)
                if it is not None:
                    aclose = getattr(it, "aclose", None) or getattr(it, "close", None)
                    if aclose is not None:
                        try:
                            r = aclose()
                            if asyncio.iscoroutine(r):
                                await r
                        except Exception:
                            pass
    finally:
        if not finished and req.finish() is None:
            req.handle_cancel(router)


class Stream(Generic[C]):
    """``with router.stream(fn) as chunks:`` — ``chunks`` iterates over the answer's chunks;
    leaving the block closes the provider's stream (and cancels the request if it is not over)."""

    __slots__ = ("_gen",)

    def __init__(self, gen: Generator[C, None, None]) -> None:
        self._gen = gen

    def __enter__(self) -> Iterator[C]:
        return self._gen

    def __exit__(self, *exc: Any) -> None:
        self._gen.close()


class AsyncStream(Generic[C]):
    """``async with router.astream(fn) as chunks:`` — the async form of :class:`Stream`."""

    __slots__ = ("_gen",)

    def __init__(self, gen: AsyncGenerator[C, None]) -> None:
        self._gen = gen

    async def __aenter__(self) -> AsyncIterator[C]:
        return self._gen

    async def __aexit__(self, *exc: Any) -> None:
        await self._gen.aclose()
