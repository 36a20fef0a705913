"""The exceptions failover-core raises.

* :class:`ConfigError` (a ``ValueError``): the core refused the policy or the provider names;
  ``.code`` is the core's stable code (``"zero_duration"``, ``"unknown_field"``, …) and ``.message``
  its wording.
* :class:`FailoverError`: base of the run-time errors below.
* :class:`Unavailable`: no provider may be called now; ``.retry_after_ms`` says when one is expected
  back.
* :class:`AllAttemptsFailed` (an :class:`Unavailable`): ``Router.call``/``acall`` tried providers
  and every attempt failed; ``.attempts`` lists them, ``.errors`` their exceptions, and the last
  one is ``__cause__``.
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
    "Attempt",
    "AllAttemptsFailed",
    "ConfigError",
    "FailoverError",
    "InternalError",
    "ProviderResponseError",
    "Unavailable",
]


@dataclass(frozen=True)
class Attempt:
    """One failed attempt of ``Router.call``/``acall``: the provider, the outcome kind recorded,
    the measured latency and the exception."""

    provider: str
    kind: str
    latency_ms: float
    error: BaseException


class AllAttemptsFailed(Unavailable):
    """Every attempt of ``Router.call``/``acall`` failed (or the attempt budget ran out).

    ``retry_after_ms`` is the engine's hint of when the soonest provider is expected to take
    traffic again (0 when one already can); ``retry_after`` the same in seconds.
    """

    attempts: List[Attempt]
    retry_after_ms: Optional[int]

    def __init__(self, attempts: Sequence[Attempt], retry_after_ms: Optional[int]) -> None:
        self.attempts = list(attempts)
        self.retry_after_ms = retry_after_ms
        parts = "; ".join(
            f"{a.provider}: {a.kind} ({type(a.error).__name__}: {a.error})" for a in self.attempts
        )
        hint = "" if retry_after_ms is None else f"; retry after {retry_after_ms} ms"
        self.message = f"all {len(self.attempts)} attempts failed: {parts}{hint}"
        super().__init__(self.message)

    @property
    def errors(self) -> List[BaseException]:
        """The exceptions of the attempts, in order."""
        return [a.error for a in self.attempts]

    @property
    def retry_after(self) -> Optional[float]:
        """``retry_after_ms`` in seconds."""
        return None if self.retry_after_ms is None else self.retry_after_ms / 1000


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
