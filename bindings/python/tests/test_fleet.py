"""Fleet mode against a real Redis (issue #14): the round script's keys, and several Router
processes sharing one server. Checked by counting rounds and calls, not by timing, except where
a bound on time is the point (no request waits on a stopped Redis)."""

from __future__ import annotations

import json
import os
import queue
import statistics
import subprocess
import sys
import threading
import time
from typing import Any, Dict, Iterator, List

import pytest

from failover_core import Router

from redis_server import RedisClusterServers, RedisServer, find_server

redis = pytest.importorskip("redis")
from failover_core.fleet import FLEET_SCRIPT, FleetSync  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PERIOD_MS = 250  # the shortest period the core allows, so the tests run quickly
REPLY_TIMEOUT_S = 60  # a worker's answer, on a heavily loaded machine


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    binary = find_server()
    if binary is None:
        if os.environ.get("FAILOVER_REQUIRE_REDIS"):
            pytest.fail("redis-server not found (scripts/ensure-redis.sh installs it)")
        pytest.skip("redis-server not found (scripts/ensure-redis.sh installs it)")
    s = RedisServer(binary)
    s.start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def r(server: RedisServer) -> Iterator["redis.Redis"]:
    c = redis.Redis.from_url(server.url, socket_timeout=5)
    c.flushall()
    yield c
    c.close()


class Worker:
    """A fleet instance in its own process (tests/fleet_worker.py)."""

    def __init__(self, url: str, instance: int, policy: Dict[str, Any]) -> None:
        self.p = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "fleet_worker.py"), url, str(instance), str(PERIOD_MS),
             json.dumps(policy)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=HERE,
        )
        self.q: "queue.Queue[str]" = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            self.q.put(line)

    def send(self, **cmd: Any) -> None:
        assert self.p.stdin is not None
        self.p.stdin.write(json.dumps(cmd) + "\n")
        self.p.stdin.flush()

    def recv(self) -> Dict[str, Any]:
        out: Dict[str, Any] = json.loads(self.q.get(timeout=REPLY_TIMEOUT_S))
        return out

    def ask(self, **cmd: Any) -> Dict[str, Any]:
        self.send(**cmd)
        return self.recv()

    def close(self) -> None:
        try:
            self.send(op="quit")
            self.p.wait(10)
        except Exception:
            self.p.kill()
            self.p.wait(10)


@pytest.fixture
def workers(server: RedisServer, r: "redis.Redis") -> Iterator[List[Worker]]:
    ws: List[Worker] = []
    yield ws
    for w in ws:
        w.close()


def spawn(
    ws: List[Worker], server: RedisServer, n: int, skews: Any = None, **policy: Any
) -> List[Worker]:
    skews = skews or [0] * n
    ws.extend(Worker(server.url, 100 + i, dict(policy, clock_skew_ms=skews[i])) for i in range(n))
    for w in ws:  # every one synced at least twice: all are live and see each other
        assert w.ask(op="wait_rounds", n=2, timeout=30)["waited"] >= 2
    return ws


def each(ws: List[Worker], **cmd: Any) -> List[Dict[str, Any]]:
    """Sends `cmd` to every worker at once, then collects the answers."""
    for w in ws:
        w.send(**cmd)
    return [w.recv() for w in ws]


def test_one_round_writes_the_documented_keys(r: "redis.Redis", server: RedisServer) -> None:
    router = Router(["a", "b"])
    sync = FleetSync(router, "keys", url=server.url, instance=7, period_ms=PERIOD_MS)
    router.observe("a", "success", latency_ms=100)
    router.observe("a", "server_error", latency_ms=5)
    assert sync.run_round() is True
    assert sync.fleet.rounds_ok == 1 and sync.fleet.live_instances == 1
    keys = sorted(k.decode() for k in r.keys("*"))
    assert keys[0] == "fo:{keys}:hb" and r.zscore("fo:{keys}:hb", "7") is not None
    buckets = [k for k in keys if k.startswith("fo:{keys}:w:a:")]
    assert len(buckets) == 1, keys
    h = {k.decode(): int(v) for k, v in r.hgetall(buckets[0]).items()}
    assert h["success"] == 1 and h["server_error"] == 1 and sum(
        v for k, v in h.items() if k.startswith("h")) == 1
    for k in keys:
        assert r.pttl(k) > 0, f"{k} has no TTL"
    # A second round in the same bucket adds only what is new (deltas are written once).
    router.observe("a", "success", latency_ms=100)
    sync.sync_now()
    assert sync.run_round() is True
    assert int(r.hget(buckets[0], "success") or 0) == 2
    sync.stop()


def test_a_local_open_makes_the_next_round_due_at_once(
    r: "redis.Redis", server: RedisServer
) -> None:
    from failover_core._native import monotonic_ms

    router = Router(["a", "b"])
    sync = FleetSync(router, "push", url=server.url, instance=3, period_ms=5000, lease_ms=20000)
    assert sync.run_round() is True
    due = sync.fleet.poll_timeout()
    assert due is not None and due > monotonic_ms() + 1000  # a 5 s period ahead
    for _ in range(3):
        router.observe("a", "server_error", latency_ms=5)
    due = sync.fleet.poll_timeout()
    assert due is not None and due <= monotonic_ms()
    assert sync.run_round() is True
    epoch, until, _ = sync.fleet.register("a")
    assert epoch == 1 and until > 0
    stored = r.hgetall("fo:{push}:reg:a")
    assert int(stored[b"epoch"]) == 1
    assert r.zcard("fo:{push}:vote:a:1") == 1
    # An isolation by hand, and its release, make the next round due at once too.
    for act in (router.isolate, router.release):
        due = sync.fleet.poll_timeout()
        assert due is not None and due > monotonic_ms() + 1000
        assert act("b") is True
        due = sync.fleet.poll_timeout()
        assert due is not None and due <= monotonic_ms()
        assert sync.run_round() is True
    assert sync.fleet.register("b") == (2, 0, 0)  # isolated in epoch 1, released in 2
    sync.stop()


def test_a_round_runs_the_documented_op_budget(r: "redis.Redis", server: RedisServer) -> None:
    """docs/fleet.md's op budget, read from INFO commandstats: heartbeat 4, per delta (f + 1),
    per provider (r + 3) reads, with r = ⌈2 × longest period / bucket⌉ + 3 after the first round."""
    router = Router(["a", "b"])
    sync = FleetSync(router, "ops", url=server.url, instance=5, period_ms=PERIOD_MS)
    assert sync.run_round() is True  # the first round reads 16 indexes and loads the script
    router.observe("a", "success", latency_ms=100)  # one delta: success + one latency bin
    r.config_resetstat()
    sync.sync_now()
    assert sync.run_round() is True
    stats = r.info("commandstats")
    calls = {k[len("cmdstat_"):]: int(v["calls"]) for k, v in stats.items()}
    script_ops = sum(n for c, n in calls.items() if c not in ("evalsha", "config|resetstat", "info"))
    reads = -(-2 * (PERIOD_MS + PERIOD_MS // 10) // 1000) + 3  # 4
    assert calls.get("evalsha") == 1, calls  # one round trip
    assert script_ops == 4 + (2 + 1) + 2 * (reads + 3), calls
    sync.stop()


def test_one_round_trip_on_loopback(r: "redis.Redis", server: RedisServer) -> None:
    """The figure quoted in docs/fleet.md: one round (encode, EVALSHA, decode, merge) on
    loopback, 2 providers with traffic."""
    router = Router(["a", "b"])
    sync = FleetSync(router, "rtt", url=server.url, instance=1, period_ms=PERIOD_MS)
    times = []
    for i in range(300):
        router.observe("a", "success", latency_ms=100)
        router.observe("b", "success", latency_ms=200)
        sync.sync_now()
        t0 = time.perf_counter()
        assert sync.run_round() is True
        times.append((time.perf_counter() - t0) * 1e6)
    times.sort()
    print(f"\nfleet round trip on loopback: median {statistics.median(times):.0f} us, "
          f"p90 {times[int(len(times) * 0.9)]:.0f} us over {len(times)} rounds")
    sync.stop()


def _onset(url: str, share: bool, offset_ms: int, seed: int) -> int:
    """Eight instances in this process on one simulated clock (each router and fleet is given
    `now_ms`), one request a second each, instance k at k × 125 ms; the primary dies at a known
    time. Rounds go to the real Redis with the core's script whenever the core says one is due
    (`poll_timeout` also looks at the router for local opens and failure runs). Returns the
    calls that failed on the primary until every instance had it open."""
    from failover_core import _native

    n = 8
    routers = [Router(["primary", "secondary"], consecutive_failures=3, open_jitter=0.0)
               for _ in range(n)]
    service = f"onset-{share}-{offset_ms}-{seed}"
    fleets = [_native.Fleet(routers[k], service, 200 + k, seed=seed) for k in range(n)] if share else []
    client = redis.Redis.from_url(url, socket_timeout=5)
    sha = client.script_load(_native.FLEET_SCRIPT)
    t0 = 10_000_000
    outage = t0 + 5_000 + offset_ms
    wasted = 0
    try:
        for tick in range(4_000):  # 20 s of 5 ms steps
            now = t0 + tick * 5
            for k in range(n):
                r = routers[k]
                if (now - t0) % 1000 == k * 125:
                    t = r.pick(now)
                    dead = t.provider == "primary" and now >= outage
                    r.record(t, "server_error" if dead else "success", 300, now)
                    wasted += dead
                if share:
                    f = fleets[k]
                    due = f.poll_timeout()
                    if due is not None and due <= now:
                        tx = f.poll_transmit(now)
                        assert tx is not None
                        rnd, args = tx
                        reply = client.evalsha(sha, 1, f.key, *args)
                        assert f.handle_reply(rnd, reply, now)
            if now >= outage and all(r.view("primary").state == "open" for r in routers):
                return wasted
        raise AssertionError("the primary never opened everywhere")
    finally:
        client.close()


def test_sharing_keeps_the_calls_wasted_at_outage_onset_within_the_issues_bound(
    r: "redis.Redis", server: RedisServer
) -> None:
    """Issue #14: at most quorum × the consecutive-failure limit + the fleet's request rate ×
    one period wasted fleet-wide at an outage's onset, against 8 × the limit alone. Counted,
    not timed."""
    quorum = max(2, -(-8 * 3 // 10))  # 3 of 8 live
    per_period = -(-8 * 1100 // 1000)  # 8 requests a second over the longest jittered period
    bound = quorum * 3 + per_period  # 18
    runs = []
    for offset in (0, 5, 450):  # on a bucket boundary and inside a bucket
        alone = _onset(server.url, False, offset, 0)
        assert alone == 8 * 3, alone
        for seed in (0, 1):
            shared = _onset(server.url, True, offset, seed)
            runs.append(shared)
            assert shared <= bound, (offset, seed, shared, bound)
    print(f"\nwasted at onset over Redis: alone 24, sharing {runs} (bound {bound})")


def test_an_open_propagates_to_every_instance_within_two_rounds(
    workers: List[Worker], server: RedisServer
) -> None:
    ws = spawn(workers, server, 4)
    # Two instances (the quorum of 4 live: max(2, ⌈30 % × 4⌉) = 2) open "a" on their own
    # evidence (3 consecutive server errors), and each publishes it in its next round.
    for w in ws[:2]:
        assert w.ask(op="observe", provider="a", outcome="server_error", n=3)["a"] == "open"
    for w in ws[:2]:
        assert w.ask(op="wait_rounds", n=1, timeout=30)["waited"] >= 1
    # Every other instance has it open after at most two rounds of its own.
    for s in each(ws[2:], op="wait_rounds", n=2, timeout=30):
        assert s["waited"] >= 2
        assert s["a"] == "open", s


def test_one_bad_instance_does_not_open_the_fleet(
    workers: List[Worker], server: RedisServer
) -> None:
    ws = spawn(workers, server, 3)
    for w in ws[1:]:
        w.ask(op="observe", provider="a", outcome="success", n=30)
    assert ws[0].ask(op="observe", provider="a", outcome="server_error", n=3)["a"] == "open"
    assert ws[0].ask(op="wait_rounds", n=2, timeout=30)["a"] == "open"
    for s in each(ws[1:], op="wait_rounds", n=4, timeout=30):
        assert s["waited"] >= 4
        assert s["a"] == "healthy", s
        assert s["live"] == 3


def _fleet_sum(r: "redis.Redis", provider: str, field: str) -> int:
    return sum(int(r.hget(k, field) or 0) for k in r.keys(f"fo:{{test}}:w:{provider}:*"))


STOP_S = 10  # issue #14: Redis stopped (SIGSTOP) for 10 s


def test_a_stopped_redis_never_holds_up_a_request_and_nothing_counts_twice(
    workers: List[Worker], server: RedisServer, r: "redis.Redis"
) -> None:
    ws = spawn(workers, server, 3)
    server.pause()
    try:
        # The counts "before" are read once a round in flight at the pause has ended: one whose
        # reply Redis had already sent completes, any other times out (command timeout 250 ms).
        # Read before the pause, a round completing in between was counted as getting through.
        time.sleep(0.5)
        before = [w.ask(op="wait_rounds", n=0, timeout=0) for w in ws]
        # Requests go on for the whole stop while every round times out (command timeout
        # 250 ms), some of them failures, so the rounds have deltas to lose.
        loads = each(ws, op="load", seconds=STOP_S, fail_every=50)
        degraded = [w.ask(op="wait_rounds", n=0, timeout=0) for w in ws]
    finally:
        server.resume()
    print(f"\nRedis stopped {STOP_S} s: {sum(s['n'] for s in loads)} requests, the slowest "
          f"{max(s['worst_ms'] for s in loads):.1f} ms; rounds failed per instance "
          f"{[s['rounds_failed'] - b['rounds_failed'] for s, b in zip(degraded, before)]}")
    for s, b in zip(loads, before):
        assert s["n"] > 0 and s["elapsed_ms"] >= STOP_S * 1000, s  # it ran for the whole stop
        assert s["worst_ms"] < 250, s  # below the Redis command timeout
        assert s["rounds_ok"] == b["rounds_ok"], (s, b)  # no round got through
    for s, b in zip(degraded, before):
        assert s["degraded"] is True, s
        assert s["events"].count("degraded") == 1, s
        # Rounds kept being tried through the stop (the backoff of 1, 2, 4, 8 periods), and
        # every one failed rather than hung.
        assert s["rounds_failed"] - b["rounds_failed"] >= 5, (s, b)
    # Resumed, and after two more rounds each has written everything it counted.
    after = each(ws, op="wait_rounds", n=2, timeout=30)
    for s in after:
        assert s["waited"] >= 2 and s["degraded"] is False and s["events"][-1] == "resumed", s
    for field in ("success", "server_error"):
        recorded = sum(s["recorded"].get(field, 0) for s in after)
        stored = _fleet_sum(r, "a", field)
        print(f"{field}: recorded {recorded}, stored in Redis {stored}")
        # Lost rounds undercount; none counts twice.
        assert 0 < stored <= recorded, (field, stored, recorded)


def test_a_restarted_empty_redis_trips_nothing(
    workers: List[Worker], server: RedisServer
) -> None:
    ws = spawn(workers, server, 3)
    each(ws, op="observe", provider="a", outcome="success", n=30)
    each(ws, op="wait_rounds", n=1, timeout=30)
    server.restart_empty()
    for s in each(ws, op="wait_rounds", n=3, timeout=30):
        assert s["waited"] >= 3 and s["a"] == "healthy" and s["live"] == 3, s


def test_only_the_lease_holder_probes_and_every_instance_follows_its_ramp(
    workers: List[Worker], server: RedisServer
) -> None:
    # Opens of 1 s, so probing starts during the test.
    ws = spawn(workers, server, 3, open_base_ms=1000, open_jitter=0.0)
    for w in ws[:2]:
        assert w.ask(op="observe", provider="a", outcome="server_error", n=3)["a"] == "open"
    for s in each(ws, op="wait_rounds", n=2, timeout=30):
        assert s["a"] == "open", s
    # Requests for 3 s (the opens end after 1 s): probes of "a" go out from one instance only.
    loads = each(ws, op="load", seconds=3)
    probing = [s["probes"] for s in loads]
    print(f"\nprobe tickets for a per instance: {probing}")
    assert sum(1 for n in probing if n > 0) == 1, probing
    # Its probes confirmed recovery and it published the ramp start: every instance ramps.
    for s in each(ws, op="wait_rounds", n=2, timeout=30):
        assert s["a"] == "ramping", s


@pytest.mark.parametrize("skew_ms", [0, 300])
def test_the_merged_window_trips_what_no_instance_saw_alone_despite_clock_skew(
    workers: List[Worker], server: RedisServer, skew_ms: int
) -> None:
    # Instance 0's wall clock runs `skew_ms` ahead of the others' (plus up to a bucket either
    # way from the binding's rounding of each instance's clock shift: docs/fleet.md).
    ws = spawn(workers, server, 3, skews=[skew_ms, 0, 0])
    # 10 calls each on two instances, 6 server errors, never 3 in a row: below min_volume (20)
    # and the consecutive-failure limit alone; 20 calls at 60 % errors merged (threshold 50 %).
    seq = ["success", "server_error", "server_error"] * 3 + ["success"]
    for w in ws[:2]:
        assert w.ask(op="observe_seq", provider="a", outcomes=seq)["a"] == "healthy"
    for s in each(ws, op="wait_rounds", n=2, timeout=30):
        assert s["waited"] >= 2 and s["a"] == "open", s


def test_rounds_run_on_a_three_node_redis_cluster_through_redis_cluster() -> None:
    """Redis Cluster (issue #14): three masters on free loopback ports, redis-py's RedisCluster
    client, each instance starting from a different node. Every key of the fleet lands on the one
    node that holds the hash tag's slot, and the fleet works as on one server: counts merge, a
    quorum's open reaches the third instance."""
    binary = find_server()
    if binary is None:
        if os.environ.get("FAILOVER_REQUIRE_REDIS"):
            pytest.fail("redis-server not found (scripts/ensure-redis.sh installs it)")
        pytest.skip("redis-server not found (scripts/ensure-redis.sh installs it)")
    cluster = RedisClusterServers(binary, 3)
    cluster.start()
    syncs: List[FleetSync] = []
    try:
        routers = [Router(["a", "b"]) for _ in range(3)]
        syncs = [
            FleetSync(routers[i], "clu", url=f"redis://127.0.0.1:{cluster.ports[i]}/0", cluster=True,
                      instance=i + 1, period_ms=PERIOD_MS)
            for i in range(3)
        ]
        assert all(isinstance(s.client, redis.cluster.RedisCluster) for s in syncs)

        def round_of(i: int) -> None:
            syncs[i].sync_now()
            assert syncs[i].run_round() is True, syncs[i].last_error

        for _ in range(2):
            for i in range(3):
                round_of(i)
        assert [s.fleet.live_instances for s in syncs] == [3, 3, 3]
        # Two of three open "a" on their own evidence; the third adopts it (quorum 2).
        for i in (0, 1):
            for _ in range(3):
                routers[i].observe("a", "server_error", latency_ms=5)
            assert routers[i].view("a").state == "open"
            round_of(i)
        round_of(2)
        assert routers[2].view("a").state == "open"
        assert syncs[2].fleet.register("a")[0] == 1
        # The merged window: the 6 failures of the other two, counted on the third.
        assert routers[2].view("a").window.failures == 6
        # Every key on one node: the one holding the hash tag's slot.
        nodes = [redis.Redis(port=p, socket_timeout=5) for p in cluster.ports]
        try:
            slot = int(nodes[0].execute_command("CLUSTER", "KEYSLOT", "fo:{clu}:hb"))
            sizes = [n.dbsize() for n in nodes]
            owners = [i for i, n in enumerate(nodes) if n.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot)]
            assert len(owners) == 1 and sizes[owners[0]] > 0, sizes
            assert sum(sizes) == sizes[owners[0]], sizes
            keys = sorted(k.decode() for k in nodes[owners[0]].keys("*"))
            assert all(k.startswith("fo:{clu}:") for k in keys), keys
        finally:
            for n in nodes:
                n.close()
        print(f"\ncluster: fleet slot {slot} on node {owners[0]} of 3, {sizes[owners[0]]} keys")
    finally:
        for s in syncs:
            s.stop()
        cluster.stop()


def test_a_router_on_the_unix_clock_writes_its_own_times_with_no_rounding(
    r: "redis.Redis", server: RedisServer
) -> None:
    """``Router(clock="unix")``: the router's own clock reads Unix ms, so its fleet writes the
    router's times and grid indexes as they are (no wall-clock shift rounded to whole buckets, as
    a monotonic router's fleet needs)."""
    with pytest.raises(ValueError):
        Router(["a", "b"], clock="wall")
    unix = Router(["a", "b"], clock="unix")
    mono = Router(["a", "b"])
    assert (unix.clock, mono.clock) == ("unix", "monotonic")
    assert unix._clock_offset_ms > 0 and mono._clock_offset_ms == 0
    # Unix ms (a check of the clock's domain, a minute either way, not of timing).
    assert abs(unix.clock_ms() - time.time_ns() // 1_000_000) < 60_000
    # Requests run on it: the default times of call() are the router's clock.
    assert unix.call(lambda a: a.provider) == "a"

    async def acall() -> str:
        async def fn(a: Any) -> str:
            return str(a.provider)

        return await unix.acall(fn)

    import asyncio

    assert asyncio.run(asyncio.wait_for(acall(), 10)) == "a"
    assert abs(unix.now_ms - time.time_ns() // 1_000_000) < 60_000

    unix.observe("a", "server_error", latency_ms=5)
    observed_at = unix.now_ms
    sync = FleetSync(unix, "unixclock", url=server.url, instance=11, period_ms=PERIOD_MS)
    now = unix.clock_ms()
    tx = sync.fleet.poll_transmit(now)
    assert tx is not None
    rnd, args = tx
    reply = r.evalsha(r.script_load(FLEET_SCRIPT), 1, sync.fleet.key, *args)
    assert sync.fleet.handle_reply(rnd, reply, now)
    # The heartbeat's score is the round's time on the router's own clock, exactly.
    assert args[2] == str(now)
    assert int(r.zscore("fo:{unixclock}:hb", "11") or 0) == now
    # The bucket's grid index is the router's own (1 s buckets).
    keys = sorted(k.decode() for k in r.keys("fo:{unixclock}:w:a:*"))
    assert f"fo:{{unixclock}}:w:a:{observed_at // 1000}" in keys, (keys, observed_at)
    sync.stop()

    # A monotonic router's fleet shifts what it writes by whole buckets instead.
    msync = FleetSync(mono, "monoclock", url=server.url, instance=12, period_ms=PERIOD_MS)
    mnow = mono.clock_ms()
    mtx = msync.fleet.poll_transmit(mnow)
    assert mtx is not None
    shift = int(mtx[1][2]) - mnow
    assert shift != 0 and shift % 1000 == 0, shift
    msync.stop()


def test_an_isolation_by_hand_propagates_and_so_does_its_release(
    r: "redis.Redis", server: RedisServer
) -> None:
    """fixtures/fleet/isolation-propagates-and-so-does-release.json over the real store: the
    isolation is a new epoch whose open-until is the sentinel 2^63 (plus the clock translation) in
    Redis; every instance follows it on
    its next round, without quorum, and the release (a newer epoch) likewise."""
    got: Dict[str, List[Any]] = {"a": [], "b": []}
    ra = Router(["a", "b"], on_event=lambda e: got["a"].append((type(e).__name__, e.provider)))
    rb = Router(["a", "b"], on_event=lambda e: got["b"].append((type(e).__name__, e.provider)))
    sa = FleetSync(ra, "iso", url=server.url, instance=1, period_ms=PERIOD_MS)
    sb = FleetSync(rb, "iso", url=server.url, instance=2, period_ms=PERIOD_MS)

    def rounds() -> None:
        for s in (sa, sb):
            s.sync_now()
            assert s.run_round() is True

    rounds()
    assert ra.isolate("a") is True
    assert rb.pick().provider == "a"  # not yet heard of
    rounds()
    stored = r.hgetall("fo:{iso}:reg:a")
    assert int(stored[b"open_until_ms"]) >= 2**62 and int(stored[b"epoch"]) == 1
    epoch, until, ramp = sb.fleet.register("a")
    assert epoch == 1 and until >= 2**62 and ramp == 0
    assert rb.is_isolated("a") and rb.view("a").isolated and rb.view("a").share == 0.0
    assert rb.pick().provider == "b"
    assert got["b"] == [("Isolated", "a")]
    # More rounds change nothing: the isolation is adopted once.
    rounds()
    assert got["b"] == [("Isolated", "a")] and rb.is_isolated("a")
    assert ra.release("a") is True
    rounds()
    assert sb.fleet.register("a") == (2, 0, 0)
    assert not rb.is_isolated("a") and rb.pick().provider == "a"
    assert got["b"] == [("Isolated", "a"), ("Released", "a")]
    assert got["a"] == [("Isolated", "a"), ("Released", "a")]
    sa.stop()
    sb.stop()
