"""Fleet mode: many processes of one service share what they learn about the providers through
Redis, off the request path (issue #14; the key layout and op budget are in ``docs/fleet.md``).

Every decision is the Rust core's (:class:`failover_core._native.Fleet`): when a round is due,
what it writes, what the answer changes, when the instance goes degraded and how long it backs
off. This module only performs the I/O: one ``EVALSHA`` of the round script per period, from a
background thread, so no request ever waits on Redis.

Needs redis-py: ``pip install 'failover-core[fleet]'``.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Union

from . import _native

if TYPE_CHECKING:  # pragma: no cover
    import redis
    import redis.cluster

__all__ = ["FleetSync", "FLEET_SCRIPT"]

FLEET_SCRIPT: str = _native.FLEET_SCRIPT
"""The Lua round script (shared with every binding; see ``docs/fleet.md``)."""

_log = logging.getLogger("failover_core.fleet")

#: The longest the background thread sleeps before it looks again at its stop flag and at the
#: router's events (a local open makes the next round due at once), seconds.
_MAX_SLEEP_S = 0.05


class FleetSync:
    """Runs a router's fleet rounds against Redis in a background thread.

    ``FleetSync(router, service, url="redis://127.0.0.1:6379/0")`` joins the fleet ``service``
    (all instances of one fleet must use the same provider names and window policy). With
    ``cluster=True`` the client built from ``url`` (any node of the cluster) is a
    ``redis.cluster.RedisCluster``: every key of a fleet carries one hash tag, so each round is one
    call to the node that holds its slot. ``client`` may be a ``redis.Redis`` or
    ``redis.cluster.RedisCluster`` of your own instead of ``url``: it must not retry commands (a
    retried round could count its deltas twice; the clients built from ``url`` have retries off:
    ``retry=Retry(NoBackoff(), 0)``, which for ``RedisCluster`` also turns off its own retries on
    connection errors).
    ``connect_timeout_s`` and ``command_timeout_s`` (default 0.5 s and 0.25 s) bound each round;
    a round that times out is reported to the core as failed and the connection is dropped, so
    the next round reconnects (after the core's backoff). ``on_event`` is called from the sync
    thread with each fleet event (``{"kind": "degraded" | "resumed", ...}``); fleet events are
    also logged on the ``failover_core.fleet`` logger. The other keyword arguments are the core's
    :class:`failover_core._native.Fleet` configuration (``clock_skew_ms`` only simulates an
    instance whose wall clock is off, for tests).

    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        router: _native.Router,
        service: str,
        *,
        url: Optional[str] = None,
        client: Optional[Union["redis.Redis", "redis.cluster.RedisCluster"]] = None,
        cluster: bool = False,
        instance: Optional[int] = None,
        connect_timeout_s: float = 0.5,
        command_timeout_s: float = 0.25,
        period_ms: int = 1000,
        jitter: float = 0.1,
        seed: int = 0,
        live_periods: int = 3,
        degraded_after: int = 3,
        quorum: float = 0.3,
        quorum_min: int = 2,
        lease_ms: int = 3000,
        clock_skew_ms: int = 0,
        on_event: Optional[Callable[[Dict[str, Any]], Any]] = None,
    ) -> None:
        import redis as _redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        if instance is None:
            instance = int.from_bytes(os.urandom(4), "little")
        self.fleet = _native.Fleet(
            router,
            service,
            instance,
            period_ms=period_ms,
            jitter=jitter,
            seed=seed,
            live_periods=live_periods,
            degraded_after=degraded_after,
            quorum=quorum,
            quorum_min=quorum_min,
            lease_ms=lease_ms,
            clock_skew_ms=clock_skew_ms,
        )
        if client is None:
            options: Dict[str, Any] = dict(
                socket_connect_timeout=connect_timeout_s,
                socket_timeout=command_timeout_s,
                retry=Retry(NoBackoff(), 0),
            )
            if cluster:
                from redis.cluster import RedisCluster

                client = RedisCluster.from_url(url or "redis://127.0.0.1:6379/0", **options)
            else:
                client = _redis.Redis.from_url(url or "redis://127.0.0.1:6379/0", **options)
        self._router = router
        self._redis = _redis
        # A cluster client's own failures (no node reachable, slots not covered) are not
        # RedisErrors; they fail the round all the same.
        from redis.exceptions import RedisClusterException

        self._errors = (_redis.RedisError, RedisClusterException, OSError)
        self.client: Union["redis.Redis", "redis.cluster.RedisCluster"] = client
        self._script = client.register_script(FLEET_SCRIPT)
        self._on_event = on_event
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.events: List[Dict[str, Any]] = []
        """Every fleet event so far (also passed to ``on_event``)."""
        self.last_error: Optional[BaseException] = None
        """The last round's error, if it failed."""

    # The state, read from the core.
    @property
    def degraded(self) -> bool:
        """Whether the instance runs on local knowledge alone."""
        return self.fleet.degraded

    def start(self) -> "FleetSync":
        """Starts the background thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"failover-fleet-{self.fleet.instance}", daemon=True
            )
            self._thread.start()
        return self

    def stop(self, timeout_s: float = 2.0) -> None:
        """Stops the background thread (waits at most ``timeout_s``) and closes the client."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        try:
            self.client.close()
        except Exception:  # pragma: no cover - closing a broken client
            pass

    def __enter__(self) -> "FleetSync":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def sync_now(self) -> None:
        """Makes the next round due now (for example on a local open)."""
        self.fleet.sync_now()

    def run_round(self) -> Optional[bool]:
        """Runs one round if one is due: True if it succeeded, False if it failed, None if none
        was due. The background thread calls this; call it yourself only without :meth:`start`.
        """
        tx = self.fleet.poll_transmit()
        if tx is None:
            return None
        rnd, args = tx
        try:
            reply = self._script(keys=[self.fleet.key], args=args, client=self.client)
        except self._errors as e:
            # Never retried: its deltas were handed out once. Drop the connections so a late
            # reply cannot be read as the next round's; the next round reconnects.
            self.last_error = e
            self.fleet.handle_failure(rnd)
            try:
                if isinstance(self.client, self._redis.Redis):
                    self.client.connection_pool.disconnect()
                else:  # RedisCluster: every node's pool
                    self.client.disconnect_connection_pools()  # type: ignore[no-untyped-call]
            except Exception:  # pragma: no cover
                pass
            ok = False
        else:
            try:
                ok = self.fleet.handle_reply(rnd, reply)
                self.last_error = None
            except ValueError as e:
                self.last_error = e
                ok = False
        self._drain()
        return ok

    def _drain(self) -> None:
        while True:
            e = self.fleet.poll_event()
            if e is None:
                return
            self.events.append(e)
            if e["kind"] == "degraded":
                _log.warning("fleet: degraded after %s failed rounds (%s)", e["failures"], self.last_error)
            else:
                _log.info("fleet: resumed")
            if self._on_event is not None:
                try:
                    self._on_event(e)
                except Exception:  # the callback's bug must not stop the sync
                    _log.exception("fleet on_event callback raised")

    def _run(self) -> None:
        while not self._stop.is_set():
            due = self.fleet.poll_timeout()
            wait_ms = 0 if due is None else due - self._router.clock_ms()
            if wait_ms > 0:
                self._stop.wait(min(wait_ms / 1000, _MAX_SLEEP_S))
                continue
            try:
                self.run_round()
            except Exception:  # pragma: no cover - a bug must not kill the thread silently
                _log.exception("fleet round failed unexpectedly")
                self._stop.wait(_MAX_SLEEP_S)
