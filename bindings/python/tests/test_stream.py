"""`Router.stream` / `astream` on the request engine, with scripted chunk streams in the OpenAI
chat completion chunk and Anthropic Messages event shapes: first-token detection, held-back
non-content chunks, failover before content, `StreamBroken` after it (cut, stall, error), the
first-token and idle deadlines (async), and early exits recorded as cancelled."""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Dict, Iterator, List

import pytest

import failover_core as fc
from failover_core import AllAttemptsFailed, Attempt, Router, StreamBroken


class Status(Exception):
    def __init__(self, status_code: int) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code


def role(p: str) -> Dict[str, Any]:
    return {"id": p, "choices": [{"delta": {"role": "assistant"}, "finish_reason": None}]}


def tok(p: str, t: str) -> Dict[str, Any]:
    return {"id": p, "choices": [{"delta": {"content": t}, "finish_reason": None}]}


def stop(p: str) -> Dict[str, Any]:
    return {"id": p, "choices": [{"delta": {}, "finish_reason": "stop"}]}


def full(p: str) -> List[Any]:
    return [role(p), tok(p, "Hel"), tok(p, "lo"), stop(p)]


#: A script item: a chunk, an exception to raise, or ("sleep", seconds) (async only).
Script = List[Any]


class Provider:
    """Per provider: what `fn` does on each call (raise at open, or stream a script)."""

    def __init__(self, scripts: Dict[str, List[Any]]) -> None:
        self.scripts = scripts
        self.calls: List[str] = []
        self.closed = 0

    def open(self, a: Attempt) -> Script:
        self.calls.append(a.provider)
        queue = self.scripts.get(a.provider) or [full(a.provider)]
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(item, BaseException):
            raise item
        return list(item)

    def sync(self, a: Attempt) -> Iterator[Any]:
        script = self.open(a)

        def gen() -> Iterator[Any]:
            try:
                for x in script:
                    if isinstance(x, BaseException):
                        raise x
                    yield x
            finally:
                self.closed += 1

        return gen()

    def async_(self, a: Attempt) -> AsyncIterator[Any]:
        script = self.open(a)

        async def gen() -> AsyncIterator[Any]:
            try:
                for x in script:
                    if isinstance(x, BaseException):
                        raise x
                    if isinstance(x, tuple) and x[0] == "sleep":
                        await asyncio.sleep(x[1])
                        continue
                    yield x
            finally:
                self.closed += 1

        return gen()


def consume(r: Router, prov: Provider, is_async: bool, **kw: Any) -> Any:
    """The chunks the caller got, or (the exception, the chunks got before it)."""
    got: List[Any] = []
    if not is_async:
        try:
            with r.stream(prov.sync, **kw) as chunks:
                for c in chunks:
                    got.append(c)
            return got
        except Exception as e:
            return e, got

    async def main() -> Any:
        try:
            async with r.astream(prov.async_, **kw) as chunks:
                async for c in chunks:
                    got.append(c)
            return got
        except Exception as e:
            return e, got

    return asyncio.run(asyncio.wait_for(main(), 10))


MODES = pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])


@MODES
def test_a_complete_stream_is_delivered_and_recorded_as_a_success(is_async: bool) -> None:
    r = Router(["a", "b"])
    prov = Provider({})
    assert consume(r, prov, is_async) == full("a")
    assert prov.calls == ["a"] and prov.closed == 1
    assert r.view("a").window.successes == 1


@MODES
def test_an_error_at_open_fails_over(is_async: bool) -> None:
    r = Router(["a", "b"])
    prov = Provider({"a": [Status(503)]})
    assert consume(r, prov, is_async) == full("b")
    assert prov.calls == ["a", "b"]
    assert r.view("a").window.failures == 1


@MODES
def test_a_cut_before_content_fails_over_unseen(is_async: bool) -> None:
    r = Router(["a", "b"])
    prov = Provider({"a": [[role("a")]]})  # a role-only delta, then EOF: no content, cut
    got = consume(r, prov, is_async)
    assert got == full("b")  # a's role chunk was held back, never delivered
    assert prov.calls == ["a", "b"] and prov.closed == 2


@MODES
def test_a_cut_after_content_raises_stream_broken_with_the_delivered_chunks(is_async: bool) -> None:
    r = Router(["a", "b"])
    prov = Provider({"a": [[role("a"), tok("a", "Hel")]]})
    e, got = consume(r, prov, is_async)
    assert isinstance(e, StreamBroken) and isinstance(e, fc.FailoverError)
    assert e.provider == "a" and e.outcome == "stream_cut" and e.error is None
    assert e.chunks == got == [role("a"), tok("a", "Hel")]
    assert e.code == "stream_broken"
    assert prov.calls == ["a"]  # no failover after content


@MODES
def test_an_error_after_content_raises_stream_broken(is_async: bool) -> None:
    r = Router(["a", "b"])
    reset = ConnectionResetError("reset")
    prov = Provider({"a": [[role("a"), tok("a", "Hel"), reset]]})
    e, got = consume(r, prov, is_async)
    assert isinstance(e, StreamBroken) and e.outcome == "connection_error"
    assert e.error is reset and e.__cause__ is reset and e.chunks == got
    assert prov.calls == ["a"]


@MODES
def test_a_caller_error_at_open_is_reraised(is_async: bool) -> None:
    r = Router(["a", "b"])
    prov = Provider({"a": [Status(400)]})
    e, got = consume(r, prov, is_async)
    assert isinstance(e, Status) and e.status_code == 400 and got == []
    assert prov.calls == ["a"] and r.view("a").window.client_errors == 1


@MODES
def test_every_provider_cut_before_content_gives_up(is_async: bool) -> None:
    r = Router(["a", "b"], same_provider_retries=0)
    prov = Provider({"a": [[role("a")]], "b": [[role("b")]]})
    e, got = consume(r, prov, is_async)
    assert isinstance(e, AllAttemptsFailed) and got == []
    assert [(x.provider, x.outcome) for x in e.attempts] == [("a", "stream_cut"), ("b", "stream_cut")]


@MODES
def test_leaving_early_closes_the_stream_and_records_cancelled(is_async: bool) -> None:
    r = Router(["a", "b"])
    prov = Provider({})
    if not is_async:
        with r.stream(prov.sync) as chunks:
            for c in chunks:
                break
    else:
        async def main() -> None:
            async with r.astream(prov.async_) as chunks:
                async for c in chunks:
                    break

        asyncio.run(main())
    assert prov.closed == 1
    assert r.view("a").window.volume == 0  # cancelled counts nothing
    assert r.invariant_violation() is None


@MODES
def test_anthropic_events(is_async: bool) -> None:
    def events(p: str) -> List[Any]:
        return [
            {"type": "message_start", "message": {"id": p}},
            {"type": "content_block_start", "index": 0},
            {"type": "ping"},
            {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "Hi"}},
            {"type": "content_block_stop", "index": 0},
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}},
            {"type": "message_stop"},
        ]

    r = Router(["a", "b"])
    # a: Anthropic's stream without message_stop (cut before content: only a ping came).
    prov = Provider({"a": [events("a")[:3]], "b": [events("b")]})
    assert consume(r, prov, is_async) == events("b")
    assert fc.is_content(events("b")[3]) and not fc.is_content(events("b")[2])
    assert fc.is_terminal(events("b")[-1]) and not fc.is_terminal(events("b")[-2])


def test_async_slow_first_token_fails_over_at_the_first_token_deadline() -> None:
    r = Router(["a", "b"], first_token_min_ms=100, first_token_timeout_ms=200)
    prov = Provider({"a": [[role("a"), ("sleep", 5), tok("a", "late")]]})
    assert consume(r, prov, True) == full("b")
    assert prov.calls == ["a", "b"]
    assert r.view("a").window.timeouts == 1


def test_async_stall_after_content_raises_stream_broken() -> None:
    r = Router(["a", "b"], stream_idle_ms=200)
    prov = Provider({"a": [[role("a"), tok("a", "Hel"), ("sleep", 5), stop("a")]]})
    e, got = consume(r, prov, True)
    assert isinstance(e, StreamBroken) and e.outcome == "stalled"
    assert got == e.chunks == [role("a"), tok("a", "Hel")]
    assert prov.calls == ["a"]


@MODES
def test_an_error_chunk_before_content_fails_over_with_its_outcome(is_async: bool) -> None:
    # Anthropic's in-band overloaded_error: a server error; the caller never sees it.
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    r = Router(["a", "b"])
    prov = Provider({"a": [[role("a"), overloaded, tok("a", "never")]]})
    assert consume(r, prov, is_async) == full("b")
    assert prov.calls == ["a", "b"]
    assert r.view("a").window.failures == 1


@MODES
def test_an_error_chunk_after_content_raises_stream_broken(is_async: bool) -> None:
    # OpenAI's in-band error data: rate_limit_exceeded is a rate limit, recorded as such.
    limited = {"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}}
    r = Router(["a", "b"])
    prov = Provider({"a": [[role("a"), tok("a", "Hel"), limited]]})
    e, got = consume(r, prov, is_async)
    assert isinstance(e, StreamBroken) and e.outcome == "rate_limited"
    assert isinstance(e.error, fc.ProviderStreamError) and e.error.chunk == limited
    assert e.error.kind == "rate_limited" and e.error.provider == "a"
    assert got == [role("a"), tok("a", "Hel")] and prov.calls == ["a"]
    assert r.view("a").window.rate_limited == 1


def test_chunk_kind_reads_every_shape() -> None:
    class Obj:
        def __init__(self, **kw: Any) -> None:
            self.__dict__.update(kw)

    assert fc.chunk_kind(role("a")) == "other"
    assert fc.chunk_kind(tok("a", "x")) == "content"
    assert fc.chunk_kind(stop("a")) == "terminal"
    assert fc.chunk_kind({"choices": [{"delta": {"content": "x"}, "finish_reason": "length"}]}) \
        == "last_content"
    tool = Obj(choices=[Obj(delta=Obj(content=None, tool_calls=[Obj()], refusal=None),
                            finish_reason=None)])
    assert fc.chunk_kind(tool) == "content"
    assert fc.chunk_kind(Obj(type="content_block_delta")) == "content"
    assert fc.chunk_kind(Obj(event="error", data="{}")) == "error"
    assert fc.chunk_kind(Obj(event="message_stop", data="{}")) == "terminal"
    assert fc.chunk_kind("x") == "content" and fc.chunk_kind(b"") == "other"
    # Malformed: no facts, wrong types.
    for c in [None, 3, {}, {"choices": "x"}, {"choices": [None, 5]}, {"type": 7},
              {"choices": [{"delta": "x", "finish_reason": 1}]}]:
        assert fc.chunk_kind(c) == "other", c


class _LimitedStream:
    """A stream object as the SDKs return it: iterable, with the answer's ``response.headers``."""

    def __init__(self, p: str, remaining: int) -> None:
        self.response = type("R", (), {})()
        self.response.headers = {
            "x-ratelimit-limit-requests": "100",
            "x-ratelimit-remaining-requests": str(remaining),
            "x-ratelimit-reset-requests": "30s",
        }
        self.chunks = full(p)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.chunks)

    def __aiter__(self) -> AsyncIterator[Any]:
        async def gen() -> AsyncIterator[Any]:
            for c in self.chunks:
                yield c

        return gen()


class _LimitedFailure(Exception):
    def __init__(self, remaining: int) -> None:
        super().__init__("overloaded")
        self.status_code = 503
        self.response = _LimitedStream("x", remaining).response


@MODES
def test_stream_paces_from_the_headers_of_every_answer(is_async: bool) -> None:
    r = Router(["a", "b"])

    def run(fn: Any) -> List[Any]:
        async def amain() -> List[Any]:
            async def afn(a: Attempt) -> Any:
                return fn(a)

            async with r.astream(afn) as chunks:
                return [c async for c in chunks]

        if is_async:
            return asyncio.run(asyncio.wait_for(amain(), 10))
        with r.stream(fn) as chunks:
            return list(chunks)

    # A stream whose answer says the quota is gone: "a" takes no new traffic until the reset.
    assert run(lambda a: _LimitedStream(a.provider, 0)) == full("a")
    assert [(e.provider, e.headroom) for e in r.events() if isinstance(e, fc.Paced)] == [("a", 0.0)]
    assert run(lambda a: _LimitedStream(a.provider, 50)) == full("b")

    # A failure's headers count too: "b" answers 503 with 5 of 100 left.
    def fail(a: Attempt) -> Any:
        raise _LimitedFailure(5)

    with pytest.raises(AllAttemptsFailed):
        run(fail)
    assert [(e.provider, e.headroom) for e in r.events() if isinstance(e, fc.Paced)] == [("b", 0.05)]
