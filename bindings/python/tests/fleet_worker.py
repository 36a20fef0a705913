"""One fleet instance in its own process, driven line by line over stdin (JSON in, JSON out) by
tests/test_fleet.py: a Router of providers "a" and "b" with a FleetSync to the test's Redis."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Dict

from failover_core import Router
from failover_core._native import monotonic_ms
from failover_core.fleet import FleetSync


def main() -> None:
    url, instance, period_ms = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    policy = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    skew = int(policy.pop("clock_skew_ms", 0))
    router = Router(["a", "b"], **policy)
    sync = FleetSync(
        router, "test", url=url, instance=instance, period_ms=period_ms, clock_skew_ms=skew
    ).start()
    recorded: Dict[str, int] = {}

    def state() -> Dict[str, Any]:
        f = sync.fleet
        return {
            "a": router.view("a").state,
            "b": router.view("b").state,
            "a_stage": router.view("a").ramp_stage,
            "a_share": router.view("a").share,
            "degraded": f.degraded,
            "rounds_ok": f.rounds_ok,
            "rounds_failed": f.rounds_failed,
            "live": f.live_instances,
            "events": [e["kind"] for e in sync.events],
            "recorded": recorded,
        }

    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd["op"]
        out: Dict[str, Any] = {}
        if op == "observe":
            for _ in range(int(cmd["n"])):
                router.observe(cmd["provider"], cmd["outcome"], latency_ms=100)
                recorded[cmd["outcome"]] = recorded.get(cmd["outcome"], 0) + 1
        elif op == "observe_seq":
            for outcome in cmd["outcomes"]:
                router.observe(cmd["provider"], outcome, latency_ms=100)
                recorded[outcome] = recorded.get(outcome, 0) + 1
        elif op == "load":
            # Requests (pick + record success) for `seconds`, at most `max` of them: the slowest
            # one's latency, on the request path only.
            # Every `fail_every`-th one (if given) is a server error, not a success; with `down` (a
            # provider), every call to it is one. One request every `interval_ms` (default 2).
            start = monotonic_ms()
            end = start + int(cmd["seconds"] * 1000)
            fail_every = int(cmd.get("fail_every", 0))
            interval_s = float(cmd.get("interval_ms", 2)) / 1000
            n, worst, probes = 0, 0.0, 0
            while monotonic_ms() < end and n < int(cmd.get("max", 100_000)):
                t0 = time.perf_counter()
                t = router.pick()
                failing = (fail_every and n % fail_every == fail_every - 1) or t.provider == cmd.get("down")
                outcome = "server_error" if failing else "success"
                probes += t.provider == "a" and t.is_probe
                router.record(t, outcome, latency_ms=50)
                worst = max(worst, time.perf_counter() - t0)
                if t.provider == "a":
                    recorded[outcome] = recorded.get(outcome, 0) + 1
                n += 1
                time.sleep(interval_s)
            out = {"n": n, "worst_ms": worst * 1000, "probes": probes,
                   "elapsed_ms": monotonic_ms() - start}
        elif op == "wait_rounds":
            # Until `n` more rounds succeeded (bounded by `timeout` seconds).
            start = sync.fleet.rounds_ok
            end = monotonic_ms() + int(cmd["timeout"] * 1000)
            while sync.fleet.rounds_ok < start + int(cmd["n"]) and monotonic_ms() < end:
                time.sleep(0.01)
            out = {"waited": sync.fleet.rounds_ok - start}
        elif op == "quit":
            sync.stop()
            print(json.dumps({"ok": True}), flush=True)
            return
        out.update(state())
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
