"""An optional asyncio task that runs the active health checks the engine asks for."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional, Set, Union, cast

from ._policy import OutcomeName
from .classify import Classification, classify_exception

if TYPE_CHECKING:
    from ._native import Ticket
    from ._router import ClassifyException, ClassifyResult, Router
    from .events import Event

__all__ = ["HealthChecker"]

log = logging.getLogger("failover_core.health")

#: Shortest sleep between two rounds, so a deadline that stays due cannot spin the loop.
MIN_INTERVAL_S = 0.005


def _as_kind(c: Union[Classification, str, None]) -> Classification:
    if c is None:
        return Classification("success")
    if isinstance(c, str):
        return Classification(cast(OutcomeName, c))  # the engine checks the name
    return c


class HealthChecker:
    """Drives a router's active health checks from an asyncio task.

    Each round it drains :meth:`Router.poll_action` and starts one task per health check, which
    awaits ``check(provider_name)`` (within ``timeout_s`` if given), classifies the result or the
    exception (``classify`` / ``classify_result``, as for :meth:`Router.call`) and records it
    against the check's ticket. It then calls :meth:`Router.handle_timeout`, passes drained events
    to ``on_event`` if given (then do not drain events elsewhere), and sleeps until
    :meth:`Router.poll_timeout`, at most ``max_interval_s`` (so it notices deadlines that inputs from
    other tasks set meanwhile).

    The engine asks for checks of probing providers when the policy's ``probe_mode`` is
    ``"health_checks"``, and of healthy providers idle for ``health_check_interval_ms`` when that is
    set; with neither, the task only keeps timers prompt. Exceptions from ``check`` are outcomes, never
    raised; exceptions from ``on_event`` are logged.
    """

    def __init__(
        self,
        router: "Router",
        check: Callable[[str], Awaitable[Any]],
        *,
        on_event: Optional[Callable[["Event"], Any]] = None,
        max_interval_s: float = 1.0,
        timeout_s: Optional[float] = None,
        classify: Optional["ClassifyException"] = None,
        classify_result: Optional["ClassifyResult"] = None,
    ) -> None:
        if not callable(check):
            raise TypeError(f"check must be an async callable, not {type(check).__name__}")
        if isinstance(max_interval_s, bool) or not isinstance(max_interval_s, (int, float)):
            raise TypeError("max_interval_s must be a number of seconds")
        if not max_interval_s > 0:
            raise ValueError(f"max_interval_s must be positive, got {max_interval_s!r}")
        if timeout_s is not None and not timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s!r}")
        self.router = router
        self.check = check
        self.on_event = on_event
        self.max_interval_s = float(max_interval_s)
        self.timeout_s = timeout_s
        self.classify = classify or classify_exception
        self.classify_result = classify_result
        self.checks_sent = 0
        self._task: Optional["asyncio.Task[None]"] = None
        self._inflight: Set["asyncio.Task[None]"] = set()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> "asyncio.Task[None]":
        """Starts the task in the running event loop (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self.run())
        return self._task

    async def stop(self) -> None:
        """Cancels the loop and every check in flight, and waits for them."""
        tasks = [t for t in (self._task, *self._inflight) if t is not None]
        for t in tasks:
            t.cancel()
        for t in tasks:
            try:
                await t
            except asyncio.CancelledError:
                pass
        self._task = None

    async def __aenter__(self) -> "HealthChecker":
        self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    def round(self) -> float:
        """One round without sleeping: starts due checks, runs timers, delivers events. Returns
        how long to sleep before the next round, in seconds."""
        r = self.router
        now = r.clock_ms()
        while True:
            ticket = r.poll_action(now)
            if ticket is None:
                break
            self.checks_sent += 1
            task = asyncio.get_running_loop().create_task(self._run_check(ticket))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
        r.handle_timeout(now)
        self._deliver()
        deadline = r.poll_timeout()
        if deadline is None:
            return self.max_interval_s
        return min(self.max_interval_s, max(MIN_INTERVAL_S, (deadline - r.clock_ms()) / 1000))

    async def run(self) -> None:
        """The loop (``start`` runs it as a task)."""
        while True:
            await asyncio.sleep(self.round())

    def _deliver(self) -> None:
        if self.on_event is None:
            return
        for e in self.router.events():
            try:
                self.on_event(e)
            except Exception:  # a logging hook must not stop health checks
                log.exception("failover_core: on_event raised")

    async def _run_check(self, ticket: "Ticket") -> None:
        t0 = time.monotonic_ns()
        try:
            if self.timeout_s is None:
                result = await self.check(ticket.provider)
            else:
                result = await asyncio.wait_for(self.check(ticket.provider), self.timeout_s)
        except asyncio.CancelledError:
            self._record(ticket, Classification("cancelled"), t0)
            raise
        except Exception as exc:
            self._record(ticket, _as_kind(self.classify(exc)), t0)
            return
        c = None if self.classify_result is None else self.classify_result(result)
        self._record(ticket, _as_kind(c), t0)

    def _record(self, ticket: "Ticket", c: Classification, t0: int) -> None:
        t1 = time.monotonic_ns()
        try:
            self.router.record(
                ticket, c.kind, (t1 - t0) / 1e6, t1 // 1_000_000, retry_after_ms=c.retry_after_ms
            )
        except Exception:
            log.exception("failover_core: recording a health check failed")
        self._deliver()
