"""``Router.stream`` / ``Router.astream``: a streamed request on the core's request engine.

The engine decides (which provider, fail over or not, the first-token and idle deadlines); this
module iterates the provider's stream, tells the engine when the first *content* arrived, when
chunks arrive and how the stream ended, and enforces the deadlines it gets.

Failing over is safe only before the caller has seen anything: chunks that are not content (a
role-only delta, ``message_start``, ``ping``) are held back until the first content chunk and
then delivered with it, so a stream that fails before content is replaced by the next
provider's without the caller noticing. After the first content, a failure is the caller's:
:class:`~failover_core.StreamBroken` carries the chunks already delivered.

What a chunk is (content, terminal, an in-band error, other) is the core's rule
(``failover_core::chunk``), and the native module reads its facts (``_native.chunk_kind_of``).

The per-attempt reading (held chunks, the first token, the idle deadline, the end) is one class,
:class:`_Reading`, shared by the sync and async loops; the loops differ only in how they wait and
read (blocking, or awaiting), which a generator cannot share without an extra frame per chunk.
"""

from __future__ import annotations

import asyncio
import socket
import threading
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
from .errors import FailedAttempt, ProviderStreamError, StreamBroken

C = TypeVar("C")

_Attempt = _native.Attempt
_monotonic_ms = _native.monotonic_ms
_INF = float("inf")


#: The core's kind of a chunk (``failover_core::classify_chunk``), its facts read natively in one
#: call: an int (bit 1 content, bit 2 terminal) or, for an in-band error, the outcome kind name.
_kind: Callable[[Any], Union[int, str]] = _native.chunk_kind_of
_KIND_NAMES = ("other", "content", "terminal", "last_content")


def chunk_kind(chunk: Any) -> str:
    """What ``chunk`` is by the core's chunk table: ``"content"``, ``"last_content"`` (content that
    also ends the stream), ``"terminal"``, ``"error"`` (an in-band error) or ``"other"``. Reads
    OpenAI chat completion chunks, Anthropic events, raw server-sent events, ``str``/``bytes`` and
    dicts of any of them (duck-typed)."""
    k = _kind(chunk)
    return "error" if type(k) is str else _KIND_NAMES[k]  # type: ignore[index]


def is_content(chunk: Any) -> bool:
    """Whether a chunk is content the caller sees (the core's chunk table): an OpenAI chat
    completion chunk whose delta has text, a refusal or tool calls; an Anthropic
    ``content_block_delta`` event; a non-empty ``str``/``bytes``. Objects and dicts alike."""
    k = _kind(chunk)
    return type(k) is int and bool(k & 1)


def is_terminal(chunk: Any) -> bool:
    """Whether a chunk ends the stream complete (the core's chunk table): an OpenAI chunk with a
    ``finish_reason``, or Anthropic's ``message_stop`` event."""
    k = _kind(chunk)
    return type(k) is int and bool(k & 2)


def _custom_kind(
    content: Callable[[Any], bool], terminal: Callable[[Any], bool]
) -> Callable[[Any], Union[int, str]]:
    """The kind function for a caller's own ``is_content``/``is_terminal`` (no error chunks)."""

    def kind(chunk: Any) -> int:
        return (1 if content(chunk) else 0) | (2 if terminal(chunk) else 0)

    return kind


def _kind_of(exc: BaseException, classify: Optional[Callable[[BaseException], Any]]) -> Any:
    from ._router import _kind_of as kind_of

    return kind_of(exc, classify)


class _Driver:
    """The state one streamed request shares between its sync and async loops."""

    __slots__ = ("router", "req", "classify", "kind", "failed", "delivered")

    def __init__(
        self,
        router: Any,
        key: Union[str, bytes, None],
        max_attempts: Optional[int],
        timeout_ms: Optional[int],
        max_wait_ms: Optional[int],
        classify: Optional[Callable[[BaseException], Any]],
        content: Optional[Callable[[Any], bool]],
        terminal: Optional[Callable[[Any], bool]],
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
        if content is None and terminal is None:
            self.kind: Callable[[Any], Union[int, str]] = _kind
        else:
            self.kind = _custom_kind(content or is_content, terminal or is_terminal)
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

        if type(exc) is ProviderStreamError:
            kind, retry_after_ms = exc.kind, None
        else:
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

    def late(self, a: Any, r: "_Reading") -> Any:
        """The read of attempt ``a`` was interrupted at its deadline (or the deadline passed):
        poll at it, which records the timeout (before content) or the stall (after). Returns the
        next step (``None``: poll again); raises ``StreamBroken`` after content."""
        started = r.started
        r.end()
        nxt = self.req._next(self.router, max(self.router.clock_ms(), r.deadline))
        if isinstance(nxt, dict) and "in_flight" in nxt:  # pragma: no cover
            return None  # not yet by the engine's clock
        outcome = "stalled" if started else "timeout"
        err = TimeoutError(
            f"{a.provider}'s stream "
            + ("stalled" if started else f"sent no content within {a.timeout_ms} ms")
        )
        self.failed.append(FailedAttempt(a.provider, outcome, 0.0, err, None, a.number))
        if started:
            raise StreamBroken(a.provider, outcome, self.delivered, err)
        return nxt


#: What :meth:`_Reading.take` says to do with a chunk.
_HOLD, _DELIVER, _FIRST = 0, 1, 2


class _Reading:
    """One attempt's stream as it is read, shared by the sync and async loops: the chunks held
    back before content, whether content started, the current deadline (the first token's, then
    the idle one from the last chunk), the last chunk's arrival and whether it is complete."""

    __slots__ = ("d", "a", "kind", "started", "held", "deadline", "idle", "last", "complete")

    def __init__(self, d: _Driver, a: Any) -> None:
        self.d = d
        self.a = a
        self.kind = d.kind
        self.started = False
        self.held: List[Any] = []
        self.deadline: int = a.deadline_ms
        self.idle: int = a.idle_ms or 0
        self.last = 0
        self.complete = False

    def take(self, chunk: Any, now: int) -> int:
        """One chunk arrived at ``now``: ``_DELIVER`` it, ``_FIRST`` (deliver the held chunks,
        then it: the first content) or ``_HOLD`` it. Raises :class:`ProviderStreamError` for an
        in-band error chunk. Sets ``complete`` on the terminal chunk."""
        k = self.kind(chunk)
        if type(k) is str:
            raise ProviderStreamError(self.a.provider, k, chunk)
        if k & 2:  # type: ignore[operator]
            self.complete = True
        if self.started:
            # The engine learns of chunk arrivals only when it must decide (before a poll): its
            # idle deadline is the last arrival's, as if told each time.
            self.last = now
            self.deadline = now + self.idle
            return _DELIVER
        if k & 1:  # type: ignore[operator]
            self.d.req.handle_first_token(now)
            self.started = True
            self.deadline = now + self.idle
            return _FIRST
        self.held.append(chunk)
        return _HOLD

    def end(self) -> List[Any]:
        """The stream ended (or was left): tells the engine of the last chunk; returns the held
        chunks to deliver (a complete stream without content delivers what it sent)."""
        if self.last:
            self.d.req.handle_chunk(self.last)
            self.last = 0
        return self.held if self.complete and not self.started else []


class _SyncWatchdog:
    """Interrupts the blocking reads of sync streams past the engine's deadline: one daemon
    thread for the process, sleeping until the earliest deadline of a read in progress.

    Each attempt has an entry ``[deadline_ms, reading, fired, stream]``; the reader writes the
    deadline and ``reading`` around every read (no lock, no notify, unless the deadline is earlier
    than the thread's next wake-up). At a deadline, a read still in progress is interrupted by
    :func:`_interrupt` and the entry marked ``fired``; the reader then records the timeout (before
    content) or the stall (after)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.entries: Dict[int, List[Any]] = {}
        #: When the thread wakes next (monotonic ms); ``inf`` while it waits for a notify.
        self.wake_at = _INF
        self.thread: Optional[threading.Thread] = None

    def add(self, entry: List[Any]) -> None:
        with self.cond:
            self.entries[id(entry)] = entry
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(
                    target=self._run, name="failover-core stream watchdog", daemon=True
                )
                self.thread.start()
            self.cond.notify()

    def remove(self, entry: List[Any]) -> None:
        with self.cond:
            self.entries.pop(id(entry), None)

    def kick(self, deadline: int) -> None:
        """A read with a deadline earlier than the thread's next wake-up began: wake it. The
        wake-up is moved to ``deadline`` at once, so the reads that follow before the thread runs
        do not wake it again."""
        with self.cond:
            if deadline < self.wake_at:
                self.wake_at = deadline
                self.cond.notify()

    def _run(self) -> None:
        with self.cond:
            while True:
                now = _monotonic_ms()
                soonest = _INF
                for e in list(self.entries.values()):
                    if not e[1] or e[2]:
                        continue  # between reads (the caller's code runs), or already fired
                    if now >= e[0]:
                        e[2] = True
                        _interrupt(e[3])
                    elif e[0] < soonest:
                        soonest = e[0]
                self.wake_at = soonest
                self.cond.wait(None if soonest == _INF else (soonest - now) / 1000)


_sync_watchdog = _SyncWatchdog()


def _interrupt(src: Any) -> None:
    """Ends a blocking read of ``src`` (what ``fn`` returned) from another thread: an httpx-based
    stream (the openai and anthropic SDKs' ``Stream``, an ``httpx.Response``) has its socket shut
    down, which wakes the read at once; anything else is closed (``close()``), which interrupts a
    read only if that object supports closing from another thread."""
    resp = getattr(src, "response", src)
    ext = getattr(resp, "extensions", None)
    ns = ext.get("network_stream") if isinstance(ext, dict) else None
    sock = None
    if ns is not None:
        try:
            sock = ns.get_extra_info("socket")
        except Exception:
            sock = None
    try:
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
        else:
            close = getattr(src, "close", None)
            if close is not None:
                close()
    except Exception:  # already closed, or closing failed: the read ends on its own
        pass


def _close(it: Any) -> None:
    close = getattr(it, "close", None)
    if close is not None:
        try:
            close()
        except Exception:  # closing a broken stream may fail again; nothing to add
            pass


def sync_chunks(d: _Driver, fn: Callable[[Any], Iterable[C]]) -> Generator[C, None, None]:
    """The sync stream's chunks (a generator: closing it cancels the request). Each blocking read
    of the stream ``fn`` returned is interrupted at the engine's deadline by the watchdog thread
    (see :func:`_interrupt`); the deadline is also checked as each chunk arrives."""
    from ._router import _pace

    req, router, delivered = d.req, d.router, d.delivered
    off = router._clock_offset_ms  # the router's clock − the monotonic clock, ms
    wd = _sync_watchdog
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
                time.sleep(max(0, until - router.clock_ms()) / 1000)
                continue
            r = _Reading(d, a)
            it: Any = None
            src: Any = None
            entry: List[Any] = [r.deadline, False, False, None]
            try:
                src = fn(a)
                # The stream's rate-limit headers (an SDK stream's ``response.headers``) to pacing.
                _pace(router, a.provider, src)
                it = iter(src)
                entry[3] = src
                wd.add(entry)
                while True:
                    dl = r.deadline
                    # The watchdog runs on the monotonic clock (it serves every router).
                    entry[0] = dl - off
                    entry[1] = True
                    if entry[0] < wd.wake_at:
                        wd.kick(entry[0])
                    chunk: Any = next(it, entry)
                    entry[1] = False
                    if chunk is entry:
                        break
                    now = router.clock_ms()
                    if now >= dl or entry[2]:
                        # Past the deadline: a read the watchdog could not interrupt.
                        entry[2] = True
                        break
                    code = r.take(chunk, now)
                    if code:
                        if code == _FIRST:
                            for h in r.held:
                                delivered.append(h)
                                yield h
                        delivered.append(chunk)
                        yield chunk
                    if r.complete:
                        break
                if entry[2]:
                    raise _Late()
                for h in r.end():
                    delivered.append(h)
                    yield h
                if d.ended(a, r.complete, r.started):
                    finished = True
                    return
            except GeneratorExit:
                raise
            except StreamBroken:
                finished = True
                raise
            except BaseException as exc:
                entry[1] = False
                if entry[2]:
                    # The watchdog interrupted the read at the deadline (or it passed).
                    try:
                        nxt = d.late(a, r)
                    except BaseException:
                        finished = True
                        raise
                    continue
                try:
                    d.failed_call(a, exc, r.started)
                except BaseException:
                    finished = True
                    raise
            finally:
                wd.remove(entry)
                _close(it)
                if src is not it:
                    _close(src)
    finally:
        if not finished and req.finish() is None:
            # The caller stopped early (or its code raised): the request is cancelled.
            req.handle_cancel(router)


class _Late(Exception):
    """A deadline passed during a sync read (never reaches the caller)."""


async def async_chunks(
    d: _Driver, fn: Callable[[Any], Union[AsyncIterator[C], Awaitable[AsyncIterator[C]]]]
) -> AsyncGenerator[C, None]:
    """The async stream's chunks: each read is bounded by the engine's current deadline (the
    first-token deadline, then the idle deadline), enforced by the event loop's watchdog."""
    from ._router import _last_watchdog, _pace, _uncancel, _watchdog

    req, router, delivered = d.req, d.router, d.delivered
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
                await asyncio.sleep(max(0, until - router.clock_ms()) / 1000)
                continue
            r = _Reading(d, a)
            it: Any = None
            # The watchdog's entry for this attempt: armed (its deadline in loop time) only while
            # a read is awaited, never while the caller's code runs between chunks.
            entry: List[Any] = [_INF, task, False]
            wd.inflight[a] = entry
            offset = loop.time() - router.clock_ms() / 1000
            try:
                src: Any = fn(a)
                if not hasattr(src, "__anext__") and not hasattr(src, "__aiter__"):
                    # A coroutine that opens the stream (the SDKs'), bounded by the same deadline.
                    entry[0] = r.deadline / 1000 + offset
                    if entry[0] < wd.armed_at:
                        wd.arm(entry[0])
                    src = await src
                    entry[0] = _INF
                _pace(router, a.provider, src)
                it = src if hasattr(src, "__anext__") else src.__aiter__()
                anext = it.__anext__
                while True:
                    when = r.deadline / 1000 + offset
                    entry[0] = when
                    if when < wd.armed_at:
                        wd.arm(when)
                    try:
                        chunk = await anext()
                    except StopAsyncIteration:
                        entry[0] = _INF
                        break
                    entry[0] = _INF
                    code = r.take(chunk, router.clock_ms())
                    if code:
                        if code == _FIRST:
                            for h in r.held:
                                delivered.append(h)
                                yield h
                        delivered.append(chunk)
                        yield chunk
                    if r.complete:
                        break
                for h in r.end():
                    delivered.append(h)
                    yield h
                if d.ended(a, r.complete, r.started):
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
                    try:
                        nxt = d.late(a, r)
                    except BaseException:
                        finished = True
                        raise
                    continue
                try:
                    d.failed_call(a, exc, r.started)
                except BaseException:
                    finished = True
                    raise
            finally:
                wd.inflight.pop(a, None)
                if it is not None:
                    aclose = getattr(it, "aclose", None) or getattr(it, "close", None)
                    if aclose is not None:
                        try:
                            r2 = aclose()
                            if asyncio.iscoroutine(r2):
                                await r2
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
