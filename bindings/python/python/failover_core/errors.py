"""The exceptions failover-core raises.

* :class:`ConfigError` (a ``ValueError``): the core refused the policy or the provider names;
  ``.code`` is the core's stable code (``"zero_duration"``, ``"unknown_field"``, …) and ``.message``
  its wording.
* :class:`FailoverError`: base of the run-time errors below.
* :class:`Unavailable`: no provider may be called now; ``.retry_after_ms`` says when one is expected
  back.
* :class:`AllAttemptsFailed` (an :class:`Unavailable`; Node's ``AllProvidersFailedError``):
  ``Router.call``/``acall`` tried providers and gave up; ``.attempts`` lists them
  (:class:`FailedAttempt`), ``.errors`` their exceptions (the last one is ``__cause__``),
  ``.reason`` why the engine gave up.
* :class:`ProviderResponseError`: a response that ``classify_result`` judged a failure (so there
  is an exception to put in ``.errors``).
* :class:`InternalError`: the engine panicked (a bug); the router is poisoned.

Bad arguments raise ``TypeError`` or ``ValueError`` naming the argument.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional, Sequence

from ._native import ConfigError, FailoverError, InternalError, Unavailable

__all__ = [
    "AllAttemptsFailed",
    "FailedAttempt",
    "ConfigError",
    "FailoverError",
    "InternalError",
    "ProviderResponseError",
    "StreamBroken",
    "Unavailable",
]


@dataclass(frozen=True)
class FailedAttempt:
    """One attempt of ``Router.call``/``acall`` that did not succeed, as the request recorded it:
    the provider, the ``outcome`` kind recorded, the latency the engine measured (ms), the
    provider's ``Retry-After`` (ms, if it sent one), the exception, and the attempt's number.

    Node: an entry of ``AllProvidersFailedError.attempts`` (a plain object with the same six
    field names)."""

    provider: str
    outcome: str
    latency_ms: float
    error: BaseException
    retry_after_ms: Optional[int] = None
    number: int = 0

    @property
    def kind(self) -> str:
        """Deprecated: ``outcome`` (the name before 0.2)."""
        return self.outcome


class AllAttemptsFailed(Unavailable):
    """The request gave up after at least one attempt (Node: ``AllProvidersFailedError``).

    * ``attempts``: every attempt that did not succeed, in order (:class:`FailedAttempt`:
      ``provider``, ``outcome``, ``latency_ms``, ``retry_after_ms``, ``error``);
    * ``errors``: their exceptions (the last one is also ``__cause__``);
    * ``reason``: why the request engine gave up: ``"attempts"`` (the budget is spent),
      ``"no_provider"`` (no provider can take the request within the wait limit and the
      deadline), ``"deadline"`` (the request's deadline passed);
    * ``retry_after_ms``: the engine's hint of when the soonest provider is expected to take
      traffic again (0 when one already can); ``retry_after`` the same in seconds;
    * ``code``: ``"all_providers_failed"``, as in Node.
    """

    code = "all_providers_failed"
    attempts: List[FailedAttempt]
    retry_after_ms: Optional[int]
    reason: str

    def __init__(
        self,
        attempts: Sequence[FailedAttempt],
        retry_after_ms: Optional[int],
        reason: str = "attempts",
    ) -> None:
        self.attempts = list(attempts)
        self.retry_after_ms = retry_after_ms
        self.reason = reason
        parts = "; ".join(
            f"{a.provider}: {a.outcome} ({type(a.error).__name__}: {a.error})" for a in self.attempts
        )
        hint = "" if retry_after_ms is None else f"; retry after {retry_after_ms} ms"
        self.message = f"all {len(self.attempts)} attempts failed ({reason}): {parts}{hint}"
        super().__init__(self.message)

    @property
    def errors(self) -> List[BaseException]:
        """The exceptions of the attempts, in order."""
        return [a.error for a in self.attempts]

    @property
    def retry_after(self) -> Optional[float]:
        """``retry_after_ms`` in seconds."""
        return None if self.retry_after_ms is None else self.retry_after_ms / 1000


class StreamBroken(FailoverError):
    """A stream failed after its first content reached the caller (``Router.stream``/``astream``;
    Node: ``StreamBrokenError``). Failing over then would repeat or mix answers, so the error is
    the caller's: ``chunks`` holds every chunk already delivered, ``provider`` who sent them,
    ``outcome`` what the engine recorded (``"stream_cut"``: the stream ended without its terminal
    event; ``"stalled"``: no chunk within the idle deadline; or the kind of the error the stream
    raised), ``error`` that exception (also ``__cause__``) or ``None``; ``code`` is
    ``"stream_broken"``."""

    code = "stream_broken"
    provider: str
    outcome: str
    chunks: List[Any]
    error: Optional[BaseException]

    def __init__(
        self, provider: str, outcome: str, chunks: Sequence[Any], error: Optional[BaseException]
    ) -> None:
        self.provider = provider
        self.outcome = outcome
        self.chunks = list(chunks)
        self.error = error
        super().__init__(
            f"{provider}'s stream broke after {len(self.chunks)} chunks were delivered ({outcome})"
        )


class ProviderResponseError(FailoverError):
    """A response returned by the call that ``classify_result`` classified as a failure."""

    provider: str
    kind: str
    status: Optional[int]
    response: Any

    def __init__(self, provider: str, kind: str, status: Optional[int], response: Any) -> None:
        self.provider = provider
        self.kind = kind
        self.status = status
        self.response = response
        super().__init__(f"{provider} answered {kind}" + ("" if status is None else f" (HTTP {status})"))


class ProviderStreamError(FailoverError):
    """An in-band error chunk in a provider's stream (an SSE ``error`` event, a chunk with an
    ``error`` member, Anthropic's ``{"type": "error", "error": {"type": "overloaded_error"}}``),
    as the core's chunk table classified it (Node: ``ProviderStreamError``): ``provider``, the
    outcome ``kind`` recorded, and the ``chunk`` itself. Before content the request fails over;
    after content it is the ``error`` of :class:`StreamBroken`."""

    code = "provider_stream_error"
    provider: str
    kind: str
    chunk: Any

    def __init__(self, provider: str, kind: str, chunk: Any) -> None:
        self.provider = provider
        self.kind = kind
        self.chunk = chunk
        super().__init__(f"{provider}'s stream sent an error chunk ({kind})")
