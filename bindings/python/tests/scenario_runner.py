"""Replays ``fixtures/scenarios/*.json`` through the public Python API and checks every expectation,
with the semantics of the Rust reference runner (``crates/failover-scenario/src/lib.rs``); and
``fixtures/requests/*.json``, whose request steps drive the native request engine
(``_native.Request``) as ``crates/failover-scenario/src/requests.rs`` does.

As a script it prints the compact JSON line of every step, like
``cargo run -p failover-scenario --example observe -- FILE``, so the two can be diffed::

    python bindings/python/tests/scenario_runner.py fixtures/scenarios/FILE.json
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

__all__ = [
    "BuildError",
    "Failure",
    "Scenario",
    "compact",
    "matches",
    "request_dir",
    "request_files",
    "scenario_dir",
    "scenario_files",
]

import failover_core
from failover_core import ConfigError, Router, Ticket, Unavailable, _native

U64_MAX = 2**64 - 1
U32_MAX = 2**32 - 1


def scenario_dir() -> Path:
    """The repository's ``fixtures/scenarios`` (``FAILOVER_SCENARIO_DIR`` overrides it)."""
    env = os.environ.get("FAILOVER_SCENARIO_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "fixtures" / "scenarios"


def scenario_files() -> List[Path]:
    return sorted(p for p in scenario_dir().glob("*.json") if p.is_file())


def request_dir() -> Path:
    """The repository's ``fixtures/requests`` (``FAILOVER_REQUEST_DIR`` overrides it)."""
    env = os.environ.get("FAILOVER_REQUEST_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "fixtures" / "requests"


def request_files() -> List[Path]:
    return sorted(p for p in request_dir().glob("*.json") if p.is_file())


class Failure(Exception):
    """A scenario failed: the file, the step (if any) and what differed."""

    def __init__(self, file: str, step: Optional[int], message: str) -> None:
        self.file = file
        self.step = step
        self.message = message
        where = f"{file}: step {step}" if step is not None else file
        super().__init__(f"{where}: {message}")


class BuildError(Exception):
    """Building the router failed with the core's configuration error (``code``, ``message``)."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(message)


class StepError(Exception):
    """A malformed step (the Rust runner's `Err(String)` from `apply`)."""


def compact(obj: Any) -> str:
    """JSON as serde_json prints it: no spaces, keys sorted (serde_json's map is a BTreeMap)."""
    return json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _is_u64(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= U64_MAX


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def matches(expected: Any, observed: Any) -> bool:
    """The Rust runner's `matches`: objects by the expected keys only (recursively), arrays element
    by element with equal lengths, numbers by value (``0`` equals ``0.0``), the rest exactly."""
    if isinstance(expected, dict) and isinstance(observed, dict):
        return all(k in observed and matches(v, observed[k]) for k, v in expected.items())
    if isinstance(expected, list) and isinstance(observed, list):
        return len(expected) == len(observed) and all(
            matches(a, b) for a, b in zip(expected, observed)
        )
    if _is_number(expected) and _is_number(observed):
        if _is_u64(expected) and _is_u64(observed):
            return expected == observed
        return float(expected) == float(observed)
    if _is_number(expected) or _is_number(observed):
        return False
    return type(expected) is type(observed) and expected == observed


@dataclass
class StepResult:
    step: int
    at: int
    result: Any
    events: List[Dict[str, Any]]
    next_deadline: Optional[int]

    def to_json(self) -> Dict[str, Any]:
        return {
            "step": self.step,
            "at": self.at,
            "result": self.result,
            "events": self.events,
            "next_deadline": self.next_deadline,
        }


_HTTP_TEXT = (
    "error_code",
    "error_type",
    "message",
    "transport",
    "retry_after",
    "retry_after_ms",
    "x_ms_retry_after_ms",
)


def _classify_step(h: Any) -> Dict[str, Any]:
    """The Rust runner's `http` step: the facts (every field optional) through the native
    ``classify``, the core's one classification table."""
    if not isinstance(h, dict):
        raise StepError("`http` must be an object")
    unknown = sorted(set(h) - {"status", "now_unix_ms", *_HTTP_TEXT})
    if unknown:
        raise StepError(f"unknown `http` field `{unknown[0]}`")
    status = h.get("status")
    if status is not None and not (_is_u64(status) and status <= 65535):
        raise StepError("`status` must be an integer 0–65535")
    now_unix = h.get("now_unix_ms")
    if now_unix is not None and not _is_u64(now_unix):
        raise StepError("`now_unix_ms` must be an integer ≥ 0")
    facts: Dict[str, Any] = {"status": status, "now_unix_ms": now_unix}
    for name in _HTTP_TEXT:
        v = h.get(name)
        if v is not None and not isinstance(v, str):
            raise StepError(f"`{name}` must be a string")
        facts[name] = v
    if facts["transport"] is not None and facts["transport"] not in _native.TRANSPORTS:
        raise StepError(f"unknown transport `{facts['transport']}`")
    outcome, ra = _native.classify(**facts)
    return {"outcome": outcome, "retry_after_ms": ra}


def _headers_step(h: Any) -> Dict[str, Any]:
    """The Rust runner's `headers` step: the `pairs` through the native ``headroom`` (the core's
    ``Headroom``), with the optional wall clock ``now_unix_ms``."""
    items, now_unix = _header_pairs(h, "headers")
    return _native.headroom(items, now_unix)


def _header_pairs(h: Any, step: str) -> Any:
    """The `pairs` and `now_unix_ms` of a `headers` or `headroom` step, checked as the Rust
    runner checks them."""
    if not isinstance(h, dict):
        raise StepError(f"`{step}` must be an object")
    unknown = sorted(set(h) - {"pairs", "now_unix_ms"})
    if unknown:
        raise StepError(f"unknown `{step}` field `{unknown[0]}`")
    now_unix = h.get("now_unix_ms")
    if now_unix is not None and not _is_u64(now_unix):
        raise StepError("`now_unix_ms` must be an integer ≥ 0")
    pairs = h.get("pairs")
    if not isinstance(pairs, list):
        raise StepError("`pairs` must be a list of [name, value]")
    items = []
    for p in pairs:
        if not (isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p)):
            raise StepError("each of `pairs` must be [name, value], two strings")
        items.append((p[0], p[1]))
    return items, now_unix


def _outcome(obj: Any) -> Dict[str, Any]:
    """The Rust runner's `outcome`: kind, latency (default 0) and retry-after (default none)."""
    if not isinstance(obj, dict):
        raise StepError("`outcome` must be an outcome kind")
    kind = obj.get("outcome")
    if not isinstance(kind, str):
        raise StepError("`outcome` must be an outcome kind")
    if kind not in failover_core.OUTCOMES:
        raise StepError(f"unknown outcome `{kind}`")
    latency = obj.get("latency_ms", 0)
    if "latency_ms" in obj and not (_is_u64(latency) and latency <= U32_MAX):
        raise StepError("`latency_ms` must be an integer 0–4294967295")
    retry = obj.get("retry_after_ms")
    if retry is not None and not _is_u64(retry):
        raise StepError("`retry_after_ms` must be a non-negative integer")
    return {"outcome": kind, "latency_ms": latency, "retry_after_ms": retry}


def _opt_u64(obj: Dict[str, Any], key: str) -> Optional[int]:
    v = obj.get(key)
    if v is None:
        return None
    if not _is_u64(v):
        raise StepError(f"`{key}` must be a non-negative integer")
    return int(v)


_REQUEST_ACTIONS = ("next", "report", "first_token", "chunk", "end", "cancel")


def _request_step(
    r: Router, requests: Dict[str, _native.Request], step: Dict[str, Any], at: int
) -> Any:
    """The Rust runner's request steps (``requests.rs``): ``begin`` starts a native request under
    the name in ``as``; the others drive it. The shapes are the native module's (built from the
    core's field list), wrapped as the Rust runner wraps them."""
    if "begin" in step:
        b = step["begin"] if isinstance(step["begin"], dict) else {}
        name = step.get("as")
        if not isinstance(name, str):
            raise StepError("`begin` needs `as`: the request's name")
        key = b.get("key")
        if key is not None and not isinstance(key, str):
            raise StepError("`key` must be a string")
        max_attempts = _opt_u64(b, "max_attempts")
        if max_attempts is not None and max_attempts > 255:
            raise StepError("`max_attempts` must be 0–255")
        stream = b.get("stream")
        req = _native.Request(
            r,
            at,
            max_attempts=max_attempts,
            deadline_ms=_opt_u64(b, "deadline_ms"),
            max_wait_ms=_opt_u64(b, "max_wait_ms"),
            stream=stream if isinstance(stream, bool) else False,
            key=key,
        )
        requests[name] = req
        return {"deadline_ms": req.deadline_ms()}
    action = next(a for a in _REQUEST_ACTIONS if a in step)
    v = step[action]
    name = v if isinstance(v, str) else v.get("request") if isinstance(v, dict) else None
    if not isinstance(name, str):
        raise StepError(f"`{action}` needs a request name")
    if name not in requests:
        raise StepError(f"no request named `{name}`")
    req = requests[name]
    if action == "next":
        return req.poll(r, at)
    _, before = req.last_report()
    try:
        if action == "report":
            o = _outcome(v)
            req.handle_outcome(r, o["outcome"], at, retry_after_ms=o["retry_after_ms"])
        elif action == "first_token":
            req.handle_first_token(at)
        elif action == "chunk":
            req.handle_chunk(at)
        elif action == "end":
            complete = v.get("complete") if isinstance(v, dict) else None
            if not isinstance(complete, bool):
                raise StepError("`end` needs `complete`: true or false")
            req.handle_end(r, complete, at)
        else:
            req.handle_cancel(r, at)
    except _native.RequestError as e:
        return {"error": e.code}
    report, after = req.last_report()
    return {"recorded": report if report is not None and after != before else None}


def _ticket_json(t: Ticket) -> Dict[str, Any]:
    return {
        "provider": t.provider,
        "kind": t.kind,
        "degraded": t.degraded,
        "retry_after_ms": t.retry_after_ms,
    }


class Scenario:
    def __init__(self, path: Path) -> None:
        self.file = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise Failure(self.file, None, f"cannot read: {e}") from e
        try:
            self.doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise Failure(
                self.file, None, f"invalid JSON at line {e.lineno}, column {e.colno}: {e}"
            ) from e

    def fail(self, step: Optional[int], message: str) -> Failure:
        return Failure(self.file, step, message)

    def build(self) -> Router:
        """Builds the router through the public API; a configuration error the core refuses is
        raised as :class:`BuildError` with the core's code and message."""
        names = self.doc.get("providers")
        if not isinstance(names, list):
            raise self.fail(None, "`providers` must be a list of names")
        if not all(isinstance(n, str) for n in names):
            raise self.fail(None, "provider names must be strings")
        policy = self.doc.get("policy", {})
        if not isinstance(policy, dict):
            # The Rust runner's `policy_from_json` refuses anything but an object (`null` too).
            raise BuildError("wrong_type", "`policy` takes an object, got another JSON type")
        # The Rust runner reads the policy object with serde_json, whose map iterates in key
        # order; the first error of a policy with several must be the same one.
        try:
            return Router(names, dict(sorted(policy.items())))
        except ConfigError as e:
            raise BuildError(e.code, e.message) from None

    def observe(self) -> List[StepResult]:
        """Replays the steps and returns what each observed, without checking."""
        try:
            router = self.build()
        except BuildError as e:
            return [StepResult(0, 0, {"error": e.code, "message": e.message}, [], None)]
        steps = self.doc.get("steps")
        if not isinstance(steps, list):
            raise self.fail(None, "`steps` must be a list")
        tickets: Dict[str, Ticket] = {}
        requests: Dict[str, _native.Request] = {}
        out: List[StepResult] = []
        for i, step in enumerate(steps):
            at = step.get("at") if isinstance(step, dict) else None
            if not _is_u64(at):
                raise self.fail(i, "`at` must be a non-negative integer")
            try:
                result = self.apply(router, tickets, requests, step, at)
            except StepError as e:
                raise self.fail(i, str(e)) from None
            events = [e.to_dict() for e in router.events()]
            out.append(StepResult(i, at, result, events, router.poll_timeout()))
        return out

    def apply(
        self,
        r: Router,
        tickets: Dict[str, Ticket],
        requests: Dict[str, _native.Request],
        step: Dict[str, Any],
        at: int,
    ) -> Any:
        if "begin" in step or any(a in step for a in _REQUEST_ACTIONS):
            return _request_step(r, requests, step, at)

        def provider(name: Any) -> str:
            if not isinstance(name, str):
                raise StepError("provider must be a name")
            if name not in r.providers:
                raise StepError(f"unknown provider `{name}`")
            return name

        if "pick" in step:
            pick = step["pick"] if isinstance(step["pick"], dict) else {}
            kwargs: Dict[str, Any] = {}
            if "key" in pick:
                if not isinstance(pick["key"], str):
                    raise StepError("`key` must be a string")
                kwargs["key"] = pick["key"]
            if "tried" in pick:
                if not isinstance(pick["tried"], list):
                    raise StepError("`tried` must be a list")
                kwargs["tried"] = [provider(n) for n in pick["tried"]]
            try:
                t = r.pick(at, **kwargs)
            except Unavailable as u:
                return {"unavailable": True, "retry_after_ms": u.retry_after_ms}
            name = step.get("as")
            if isinstance(name, str):
                tickets[name] = t
            return _ticket_json(t)
        if "record" in step:
            rec = step["record"]
            name = rec.get("ticket") if isinstance(rec, dict) else None
            if not isinstance(name, str):
                raise StepError("`record` needs a `ticket` name")
            if name not in tickets:
                raise StepError(f"no ticket named `{name}`")
            o = _outcome(rec)
            return r.record(
                tickets[name], o["outcome"], o["latency_ms"], at, retry_after_ms=o["retry_after_ms"]
            )
        if "observe" in step:
            obs = step["observe"]
            p = provider(obs.get("provider") if isinstance(obs, dict) else None)
            o = _outcome(obs)
            return r.observe(p, o["outcome"], o["latency_ms"], at, retry_after_ms=o["retry_after_ms"])
        if "policy" in step:
            return r.policy()
        for op in ("isolate", "release", "reset"):
            if op in step:
                return getattr(r, op)(provider(step[op]), at)
        if "http" in step:
            return _classify_step(step["http"])
        if "stream_chunk" in step:
            # The raw chunk through the stream driver's own reading (the native chunk_kind_of).
            k = _native.chunk_kind_of(step["stream_chunk"])
            if isinstance(k, str):
                return {"kind": "error", "outcome": k}
            return {"kind": ("other", "content", "terminal", "last_content")[k], "outcome": None}
        if "headers" in step:
            return _headers_step(step["headers"])
        if "headroom" in step:
            h = step["headroom"]
            if not isinstance(h, dict):
                raise StepError("`headroom` must be an object")
            p = provider(h.get("provider"))
            rest = {k: v for k, v in h.items() if k != "provider"}
            pairs, now_unix = _header_pairs(rest, "headroom")
            return r.observe_headroom(p, pairs, at, now_unix_ms=now_unix)
        if "tick" in step:
            r.handle_timeout(at)
            return None
        if "poll" in step:
            names = step.get("as")
            names = [n for n in names if isinstance(n, str)] if isinstance(names, list) else []
            actions = []
            while True:
                t = r.poll_action(at)
                if t is None:
                    break
                if len(actions) < len(names):
                    tickets[names[len(actions)]] = t
                actions.append({"provider": t.provider, "kind": t.kind})
            return actions
        if "view" in step:
            return r.view(provider(step["view"])).to_dict()
        if "traffic" in step:
            return self.traffic(r, step["traffic"], at)
        raise StepError(
            "the step has no action (pick, record, observe, isolate, release, reset, policy, http, stream_chunk, headers, headroom, tick, poll, view, traffic, "
            "begin, next, report, first_token, chunk, end, cancel)"
        )

    def traffic(self, r: Router, tr: Any, start: int) -> Dict[str, Any]:
        tr = tr if isinstance(tr, dict) else {}
        until = tr.get("until")
        if not _is_u64(until):
            raise StepError("`traffic.until` must be a timestamp")
        every = tr.get("every_ms")
        if not (_is_u64(every) and every > 0):
            raise StepError("`traffic.every_ms` must be a positive integer")
        outcomes = tr.get("outcomes")
        if not isinstance(outcomes, dict):
            raise StepError('`traffic.outcomes` must map provider names (or "*") to outcomes')
        by_provider: Dict[str, Dict[str, Any]] = {}
        default = None
        for name, o in outcomes.items():
            parsed = _outcome(o)
            if name == "*":
                default = parsed
            else:
                if name not in r.providers:
                    raise StepError(f"unknown provider `{name}`")
                by_provider[name] = parsed
        key = tr.get("key") if isinstance(tr.get("key"), str) else None
        picks = {n: 0 for n in r.providers}
        probes = degraded = unavailable = 0
        t = start
        while t < until:
            try:
                ticket = r.pick(t, key=key) if key is not None else r.pick(t)
            except Unavailable:
                unavailable += 1
            else:
                p = ticket.provider
                picks[p] += 1
                probes += ticket.is_probe
                degraded += ticket.degraded
                o = by_provider.get(p, default)
                if o is None:
                    raise StepError(f"no outcome for provider `{p}`")
                recorded = r.record(
                    ticket, o["outcome"], o["latency_ms"], t, retry_after_ms=o["retry_after_ms"]
                )
                # The Rust runner's `debug_assert_eq!(recorded, Recorded::Accepted)`.
                if recorded != "accepted":
                    raise StepError(f"traffic: a fresh ticket was recorded as `{recorded}`")
            t += every
            if t > U64_MAX:
                break
        return {"picks": picks, "probes": probes, "degraded": degraded, "unavailable": unavailable}

    def check(self, dump: bool = False) -> None:
        """Replays the scenario and checks every expectation; the first difference raises
        :class:`Failure` naming the file and step."""
        if "expect_error" in self.doc:
            code = self.doc["expect_error"]
            try:
                self.build()
            except BuildError as e:
                if e.code == code:
                    return
                raise self.fail(
                    None, f"expected configuration error {json.dumps(code)}, got `{e.code}` ({e})"
                ) from None
            raise self.fail(None, f"expected configuration error {json.dumps(code)}, got a router")
        try:
            self.build()
        except BuildError as e:
            raise self.fail(None, f"unexpected configuration error `{e.code}`: {e}") from None
        observed = self.observe()
        if dump:
            for res in observed:
                print(compact(res.to_json()))
        for res, step in zip(observed, self.doc["steps"]):
            i = res.step
            if "expect" in step and not matches(step["expect"], res.result):
                raise self.fail(
                    i, f"expected {compact(step['expect'])}\n   observed {compact(res.result)}"
                )
            if "events" in step and not matches(step["events"], res.events):
                raise self.fail(
                    i,
                    f"expected events {compact(step['events'])}\n"
                    f"   observed events {compact(res.events)}",
                )
            if "next_deadline" in step and not matches(step["next_deadline"], res.next_deadline):
                raise self.fail(
                    i,
                    f"expected next_deadline {compact(step['next_deadline'])}, "
                    f"observed {compact(res.next_deadline)}",
                )


def main(argv: List[str]) -> int:
    if len(argv) != 2:
        print("usage: scenario_runner.py SCENARIO.json", file=sys.stderr)
        return 2
    try:
        steps = Scenario(Path(argv[1])).observe()
    except Failure as f:
        print(f, file=sys.stderr)
        return 1
    for res in steps:
        print(compact(res.to_json()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
