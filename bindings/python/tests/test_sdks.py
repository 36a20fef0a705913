"""`Router.call` / `acall` with the real `openai` and `anthropic` SDKs against a local fake
provider (``fake_provider.py``), used as a user would: the SDK's own retries off
(``max_retries=0``) and the attempt's timeout passed to each call.

For every scripted fault: what the caller got, which providers were called how often, and what
the router recorded (its views and events). The fault hits the primary once; the secondary
answers.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Dict, Iterator, List

import pytest

import failover_core as fc
from failover_core import AllAttemptsFailed, Attempt, Router
from fake_provider import FakeProvider

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")

PROVIDERS = ["primary", "secondary"]
#: The attempt deadline for these tests (a `hang` lasts longer).
ATTEMPT_MS = 400
MESSAGES = [{"role": "user", "content": "hi"}]

#: How each client kind runs one request: (sdk, is_async).
CLIENTS = {
    "openai": ("openai", False),
    "openai_async": ("openai", True),
    "anthropic": ("anthropic", False),
    "anthropic_async": ("anthropic", True),
}


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    with FakeProvider() as f:
        yield f


def new_router(**policy: Any) -> Router:
    return Router(PROVIDERS, attempt_timeout_ms=ATTEMPT_MS, open_jitter=0, **policy)


def run(fake: FakeProvider, router: Router, client: str, **options: Any) -> Any:
    """One request through `router.call`/`acall` with the SDK as a user writes it; returns the
    answer's text, or the exception the caller got."""
    sdk, is_async = CLIENTS[client]
    if not is_async:
        if sdk == "openai":
            oc = {p: openai.OpenAI(base_url=fake.openai_url(p), api_key="k", max_retries=0)
                  for p in PROVIDERS}

            def fn(attempt: Attempt) -> str:
                r = oc[attempt.provider].chat.completions.create(
                    model="gpt-test", messages=MESSAGES, timeout=attempt.timeout_s)
                return str(r.choices[0].message.content)
        else:
            ac = {p: anthropic.Anthropic(base_url=fake.anthropic_url(p), api_key="k",
                                         max_retries=0) for p in PROVIDERS}

            def fn(attempt: Attempt) -> str:
                r = ac[attempt.provider].messages.create(
                    model="claude-test", max_tokens=16, messages=MESSAGES,
                    timeout=attempt.timeout_s)
                return str(r.content[0].text)
        try:
            return router.call(fn, **options)
        except Exception as e:
            return e

    async def main() -> Any:
        if sdk == "openai":
            oc = {p: openai.AsyncOpenAI(base_url=fake.openai_url(p), api_key="k",
                                        max_retries=0) for p in PROVIDERS}

            async def afn(attempt: Attempt) -> str:
                r = await oc[attempt.provider].chat.completions.create(
                    model="gpt-test", messages=MESSAGES, timeout=attempt.timeout_s)
                return str(r.choices[0].message.content)
        else:
            ac = {p: anthropic.AsyncAnthropic(base_url=fake.anthropic_url(p), api_key="k",
                                              max_retries=0) for p in PROVIDERS}

            async def afn(attempt: Attempt) -> str:
                r = await ac[attempt.provider].messages.create(
                    model="claude-test", max_tokens=16, messages=MESSAGES,
                    timeout=attempt.timeout_s)
                return str(r.content[0].text)
        try:
            return await asyncio.wait_for(router.acall(afn, **options), 10)
        except Exception as e:
            return e

    return asyncio.run(main())


def events_of(router: Router, provider: str) -> List[Dict[str, Any]]:
    return [e.to_dict() for e in router.events() if e.provider == provider]


# fault -> check(result, fake, router) after one request whose primary attempt met the fault.
def failed_over(result: Any, fake: FakeProvider) -> None:
    assert result == "hello from secondary", result
    assert fake.counts() == {"primary": 1, "secondary": 1}


def check_503(result: Any, fake: FakeProvider, r: Router) -> None:
    failed_over(result, fake)
    assert r.view("primary").window.failures == 1
    assert r.view("secondary").window.successes == 1


def check_429_retry_after(result: Any, fake: FakeProvider, r: Router) -> None:
    failed_over(result, fake)
    v = r.view("primary")
    assert v.window.rate_limited == 1 and v.window.failures == 0
    assert v.throttled_until_ms is not None and v.share == 0.0
    ev = events_of(r, "primary")
    assert [e["kind"] for e in ev] == ["throttled"] and ev[0]["retry_after"] is True
    assert 4_900 <= ev[0]["until_ms"] - ev[0]["at_ms"] <= 5_000  # the server's Retry-After: 5


def check_429_quota(result: Any, fake: FakeProvider, r: Router) -> None:
    failed_over(result, fake)
    ev = events_of(r, "primary")
    assert [(e["kind"], e.get("cause")) for e in ev] == [("benched", "quota_exhausted")]
    assert r.view("primary").window.failures == 0  # benched, not counted as an outage


def check_hang(result: Any, fake: FakeProvider, r: Router) -> None:
    failed_over(result, fake)
    assert r.view("primary").window.timeouts == 1
    assert r.view("secondary").window.successes == 1


def check_400_content_filter(result: Any, fake: FakeProvider, r: Router) -> None:
    # The caller's fault: the SDK's own exception, at once, no failover.
    assert type(result).__name__ == "BadRequestError", repr(result)
    assert fake.counts() == {"primary": 1}
    assert r.view("primary").window.client_errors == 1
    assert r.view("primary").state == "healthy" and not events_of(r, "primary")


def check_400_context_length(result: Any, fake: FakeProvider, r: Router) -> None:
    # Refused here; another provider may take it. Counts nothing against the primary.
    failed_over(result, fake)
    w = r.view("primary").window
    assert (w.failures, w.client_errors, w.timeouts, w.rate_limited) == (0, 0, 0, 0)
    assert not events_of(r, "primary")


def check_401(result: Any, fake: FakeProvider, r: Router) -> None:
    failed_over(result, fake)
    ev = events_of(r, "primary")
    assert [(e["kind"], e.get("cause")) for e in ev] == [("benched", "credentials_rejected")]


CHECKS: Dict[str, Callable[[Any, FakeProvider, Router], None]] = {
    "503": check_503,
    "429_retry_after": check_429_retry_after,
    "429_quota": check_429_quota,
    "hang": check_hang,
    "400_content_filter": check_400_content_filter,
    "400_context_length": check_400_context_length,
    "401": check_401,
}

#: Faults after which the primary is not called by the next request (throttled or benched).
SKIPPED_NEXT = {"429_retry_after", "429_quota", "401"}


@pytest.mark.parametrize("client", list(CLIENTS))
@pytest.mark.parametrize("fault", list(CHECKS))
def test_one_fault_on_the_primary(fake: FakeProvider, client: str, fault: str) -> None:
    r = new_router()
    fake.script("primary", fault)
    result = run(fake, r, client)
    CHECKS[fault](result, fake, r)
    assert r.invariant_violation() is None
    # The next request: the primary again, unless the fault took it out of rotation.
    before = fake.counts()
    assert run(fake, r, client) == (
        "hello from secondary" if fault in SKIPPED_NEXT else "hello from primary"
    )
    after = fake.counts()
    assert after.get("primary", 0) - before.get("primary", 0) == (0 if fault in SKIPPED_NEXT else 1)


@pytest.mark.parametrize("client", ["openai", "anthropic_async"])
def test_a_503_burst_opens_the_primary(fake: FakeProvider, client: str) -> None:
    r = new_router(consecutive_failures=3)
    fake.script("primary", "503", "503", "503")
    for _ in range(3):
        assert run(fake, r, client) == "hello from secondary"
    assert fake.counts() == {"primary": 3, "secondary": 3}
    v = r.view("primary")
    assert v.state == "open" and v.window.failures == 3
    assert [e["kind"] for e in events_of(r, "primary")] == ["opened"]
    # Open: the next request goes straight to the secondary.
    assert run(fake, r, client) == "hello from secondary"
    assert fake.counts() == {"primary": 3, "secondary": 4}


@pytest.mark.parametrize("client", ["openai_async", "anthropic"])
def test_both_down_raises_all_attempts_failed(fake: FakeProvider, client: str) -> None:
    r = new_router(same_provider_retries=0)
    fake.script("primary", "503")
    fake.script("secondary", "503")
    e = run(fake, r, client)
    assert isinstance(e, AllAttemptsFailed), repr(e)
    assert [(a.provider, a.outcome, a.number) for a in e.attempts] == [
        ("primary", "server_error", 1),
        ("secondary", "server_error", 2),
    ]
    sdk = openai if CLIENTS[client][0] == "openai" else anthropic
    assert all(isinstance(x, sdk.APIStatusError) and x.status_code == 503 for x in e.errors)
    assert e.reason == "attempts" and e.retry_after_ms == 0
    assert fake.counts() == {"primary": 1, "secondary": 1}


def test_a_429_on_the_only_provider_gives_up_with_its_retry_after(fake: FakeProvider) -> None:
    r = Router(["primary"], attempt_timeout_ms=ATTEMPT_MS, same_provider_retries=0)
    fake.script("primary", "429_retry_after")
    oc = openai.OpenAI(base_url=fake.openai_url("primary"), api_key="k", max_retries=0)

    def fn(attempt: Attempt) -> str:
        r_ = oc.chat.completions.create(model="m", messages=MESSAGES, timeout=attempt.timeout_s)
        return str(r_.choices[0].message.content)

    # Retry-After: 5 s is beyond the caller's wait limit (0 here): give up with the hint.
    with pytest.raises(AllAttemptsFailed) as info:
        r.call(fn, max_attempts=2, max_wait_ms=0)
    e = info.value
    assert e.reason == "no_provider" and [a.outcome for a in e.attempts] == ["rate_limited"]
    assert e.attempts[0].retry_after_ms == 5_000
    assert e.retry_after_ms is not None and 4_500 <= e.retry_after_ms <= 5_000
    assert type(e.__cause__).__name__ == "RateLimitError"
    assert fake.counts() == {"primary": 1}


def test_facts_of_sdk_exceptions() -> None:
    """The facts read off the SDKs' exception classes, built as the SDKs build them."""
    try:  # the SDKs' HTTP client: httpx, or its successor httpx2 in newer SDKs
        import httpx2 as httpx  # type: ignore[import-not-found]
    except ImportError:
        import httpx  # type: ignore[import-not-found,no-redef]

    req = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")
    resp = httpx.Response(429, headers={"retry-after-ms": "1500"}, request=req)
    e = openai.RateLimitError("Error code: 429", response=resp,
                              body={"code": "insufficient_quota", "type": "insufficient_quota",
                                    "message": "You exceeded your current quota"})
    assert fc.facts_of_exception(e) == {
        "status": 429, "retry_after_ms": "1500", "error_code": "insufficient_quota",
        "error_type": "insufficient_quota", "message": "You exceeded your current quota"}
    assert fc.classify_exception(e).kind == "rate_limited"  # a retry header is present
    a = anthropic.RateLimitError("429", response=httpx.Response(429, request=req),
                                 body={"type": "error", "error": {"type": "rate_limit_error",
                                                                  "message": "spend limit"}})
    assert fc.classify_exception(a).kind == "quota_exhausted"
    # APITimeoutError is an APIConnectionError: the timeout is read first.
    t = fc.facts_of_exception(openai.APITimeoutError(request=req))
    assert t is not None and t["transport"] == "timeout"
    c = fc.facts_of_exception(anthropic.APIConnectionError(request=req))
    assert c is not None and c["transport"] == "connection"
    assert fc.facts_of_exception(httpx.ReadTimeout("slow")) == {"transport": "timeout"}
    assert fc.facts_of_exception(httpx.ConnectError("refused")) == {"transport": "connection"}
    assert fc.facts_of_exception(httpx.RemoteProtocolError("eof")) == {"transport": "protocol"}
    import json

    try:
        json.loads("{not json")
    except json.JSONDecodeError as j:
        assert fc.facts_of_exception(j) == {"transport": "malformed"}
        assert fc.classify_exception(j).kind == "server_error"
    assert fc.facts_of_exception(ValueError("a bug")) is None
    assert fc.facts_of_exception(KeyboardInterrupt()) is None


# -- streams ---------------------------------------------------------------------------------------

def stream_text(fake: FakeProvider, router: Router, client: str) -> Any:
    """One streamed request through `router.stream`/`astream` with the SDK as a user writes it:
    the text delivered, or (the exception, the text delivered before it)."""
    sdk, is_async = CLIENTS[client]
    got: List[str] = []

    def text_of(chunk: Any) -> str:
        if sdk == "openai":
            return "".join(c.delta.content or "" for c in chunk.choices)
        return chunk.delta.text if chunk.type == "content_block_delta" else ""

    if not is_async:
        if sdk == "openai":
            oc = {p: openai.OpenAI(base_url=fake.openai_url(p), api_key="k", max_retries=0)
                  for p in PROVIDERS}

            def fn(attempt: Attempt) -> Any:
                return oc[attempt.provider].chat.completions.create(
                    model="gpt-test", messages=MESSAGES, stream=True, timeout=attempt.timeout_s)
        else:
            ac = {p: anthropic.Anthropic(base_url=fake.anthropic_url(p), api_key="k",
                                         max_retries=0) for p in PROVIDERS}

            def fn(attempt: Attempt) -> Any:
                return ac[attempt.provider].messages.create(
                    model="claude-test", max_tokens=16, messages=MESSAGES, stream=True,
                    timeout=attempt.timeout_s)
        try:
            with router.stream(fn) as chunks:
                for c in chunks:
                    got.append(text_of(c))
            return "".join(got)
        except Exception as e:
            return e, "".join(got)

    async def main() -> Any:
        if sdk == "openai":
            oc = {p: openai.AsyncOpenAI(base_url=fake.openai_url(p), api_key="k",
                                        max_retries=0) for p in PROVIDERS}

            def afn(attempt: Attempt) -> Any:
                return oc[attempt.provider].chat.completions.create(
                    model="gpt-test", messages=MESSAGES, stream=True, timeout=attempt.timeout_s)
        else:
            ac = {p: anthropic.AsyncAnthropic(base_url=fake.anthropic_url(p), api_key="k",
                                              max_retries=0) for p in PROVIDERS}

            def afn(attempt: Attempt) -> Any:
                return ac[attempt.provider].messages.create(
                    model="claude-test", max_tokens=16, messages=MESSAGES, stream=True,
                    timeout=attempt.timeout_s)
        try:
            async with router.astream(afn) as chunks:
                async for c in chunks:
                    got.append(text_of(c))
            return "".join(got)
        except Exception as e:
            return e, "".join(got)

    return asyncio.run(asyncio.wait_for(main(), 10))


def stream_router() -> Router:
    # First-token deadline 300 ms (no latency baseline yet), idle deadline 200 ms.
    return Router(PROVIDERS, first_token_min_ms=100, first_token_timeout_ms=300,
                  stream_idle_ms=200, open_jitter=0)


@pytest.mark.parametrize("client", list(CLIENTS))
def test_stream_complete(fake: FakeProvider, client: str) -> None:
    r = stream_router()
    assert stream_text(fake, r, client) == "Hello"
    assert fake.counts() == {"primary": 1}
    assert r.view("primary").window.successes == 1


@pytest.mark.parametrize("client", list(CLIENTS))
@pytest.mark.parametrize("fault", ["503", "slow_first_token", "malformed_chunk", "error_event"])
def test_stream_fault_before_content_fails_over(fake: FakeProvider, client: str,
                                                fault: str) -> None:
    r = stream_router()
    fake.script("primary", fault)
    assert stream_text(fake, r, client) == "Hello"
    assert fake.counts() == {"primary": 1, "secondary": 1}
    w = r.view("primary").window
    if fault == "slow_first_token":
        assert w.timeouts == 1
    else:  # a 503 at open; an unparseable event or an in-band error event before content is
        assert w.failures == 1  # the provider's fault


@pytest.mark.parametrize("client", list(CLIENTS))
@pytest.mark.parametrize("fault", ["cut_after_tokens", "stall", "missing_terminal"])
def test_stream_broken_after_content(fake: FakeProvider, client: str, fault: str) -> None:
    r = stream_router()
    fake.script("primary", fault)
    out = stream_text(fake, r, client)
    assert isinstance(out, tuple), out
    e, text = out
    assert isinstance(e, fc.StreamBroken), repr(e)
    assert e.provider == "primary" and text.startswith("Hel")
    expected = {"cut_after_tokens": {"stream_cut"}, "missing_terminal": {"stream_cut"},
                # sync too: the watchdog ends the silent read at the idle deadline
                "stall": {"stalled"}}[fault]
    assert e.outcome in expected, e.outcome
    assert fake.counts() == {"primary": 1}  # no failover after content
    assert r.invariant_violation() is None


# -- the sync stream's watchdog ----------------------------------------------------------------------

def sync_stream(fake: FakeProvider, router: Router, sdk: str) -> Any:
    """`router.stream` with the sync SDK given a far timeout (30 s), so only the router's watchdog
    can end a silent read at the engine's deadline: (text, None) or (text, exception)."""
    if sdk == "openai":
        oc = {p: openai.OpenAI(base_url=fake.openai_url(p), api_key="k", max_retries=0)
              for p in PROVIDERS}

        def fn(attempt: Attempt) -> Any:
            return oc[attempt.provider].chat.completions.create(
                model="gpt-test", messages=MESSAGES, stream=True, timeout=30)

        def text_of(c: Any) -> str:
            return "".join(ch.delta.content or "" for ch in c.choices)
    else:
        ac = {p: anthropic.Anthropic(base_url=fake.anthropic_url(p), api_key="k", max_retries=0)
              for p in PROVIDERS}

        def fn(attempt: Attempt) -> Any:
            return ac[attempt.provider].messages.create(
                model="claude-test", max_tokens=16, messages=MESSAGES, stream=True, timeout=30)

        def text_of(c: Any) -> str:
            return str(c.delta.text) if c.type == "content_block_delta" else ""
    got: List[str] = []
    try:
        with router.stream(fn) as chunks:
            for c in chunks:
                got.append(text_of(c))
    except Exception as e:
        return "".join(got), e
    return "".join(got), None


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_sync_stream_slow_first_token_is_cut_at_the_first_token_deadline(
        fake: FakeProvider, sdk: str) -> None:
    import time

    r = stream_router()  # first-token deadline 300 ms; the fake's first token comes after 1 s
    fake.script("primary", "slow_first_token")
    t0 = time.monotonic()
    text, err = sync_stream(fake, r, sdk)
    elapsed = time.monotonic() - t0
    assert (text, err) == ("Hello", None)
    assert elapsed < 0.9, elapsed  # the watchdog ended the read, not the fake's 1 s
    assert fake.counts() == {"primary": 1, "secondary": 1}
    assert r.view("primary").window.timeouts == 1


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_sync_stream_stall_is_cut_at_the_idle_deadline(fake: FakeProvider, sdk: str) -> None:
    import time

    r = stream_router()  # idle deadline 200 ms; the fake stalls 5 s after one token
    fake.script("primary", "stall")
    t0 = time.monotonic()
    text, err = sync_stream(fake, r, sdk)
    elapsed = time.monotonic() - t0
    assert isinstance(err, fc.StreamBroken), repr(err)
    assert err.outcome == "stalled" and err.provider == "primary" and text == "Hel"
    assert elapsed < 2.0, elapsed
    assert fake.counts() == {"primary": 1}
    assert r.view("primary").window.timeouts == 1  # a stall counts with the timeouts
    assert r.invariant_violation() is None


def test_sync_stream_an_uninterruptible_read_is_checked_when_its_chunk_arrives() -> None:
    import time

    r = stream_router()

    def slow(attempt: Attempt) -> Any:
        if attempt.provider == "primary":
            time.sleep(0.4)  # a plain generator: the watchdog cannot end this read
            yield {"choices": [{"delta": {"content": "late"}, "finish_reason": None}]}
        yield {"choices": [{"delta": {"content": "ok"}, "finish_reason": "stop"}]}

    with r.stream(slow) as chunks:
        got = [c["choices"][0]["delta"]["content"] for c in chunks]
    assert got == ["ok"]
    assert r.view("primary").window.timeouts == 1
