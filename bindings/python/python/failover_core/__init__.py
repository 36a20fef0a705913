"""failover-core: which LLM provider to call, when to leave one and how to come back.

The decisions are made by the failover-core Rust engine (the same one the Rust crate and the Node
package use); this package adds the Python conveniences around it::

    from failover_core import Router

    router = Router(["openai", "anthropic"], consecutive_failures=3)
    answer = router.call(lambda attempt: clients[attempt.provider].complete(prompt))

See :class:`Router` for the run loop, :mod:`failover_core.classify` for how exceptions and HTTP
responses become outcomes, and :mod:`failover_core.events` for the typed events.
"""

from __future__ import annotations

from ._native import (
    MAX_PROVIDERS,
    OUTCOMES,
    POLICY_FIELDS,
    Ticket,
    hash_key,
    monotonic_ms,
    validate_policy,
)
from ._native import __version__ as __version__
from ._policy import OutcomeName, Policy, PolicyInForce, RampStageSpec
from ._router import Attempt, Router
from .classify import (
    FAILURE_KINDS,
    Classification,
    classify_exception,
    classify_facts,
    facts_of_exception,
    classify_http,
    classify_response,
    classify_status,
    parse_retry_after,
    retry_after_from_headers,
)
from .errors import (
    AllAttemptsFailed,
    ConfigError,
    FailedAttempt,
    FailoverError,
    InternalError,
    ProviderResponseError,
    ProviderStreamError,
    StreamBroken,
    Unavailable,
)
from ._stream import AsyncStream, Stream, chunk_kind, is_content, is_terminal
from .events import (
    BackoffDecayed,
    Event,
    Opened,
    ProbeExpired,
    Probing,
    RampStage,
    Reason,
    Recovered,
    Throttled,
    Unthrottled,
    Paced,
    Unpaced,
    Benched,
)
from .health import HealthChecker
from .view import ProviderView, WindowStats

__all__ = [
    "AllAttemptsFailed",
    "Attempt",
    "BackoffDecayed",
    "Classification",
    "ConfigError",
    "Event",
    "FAILURE_KINDS",
    "FailedAttempt",
    "FailoverError",
    "HealthChecker",
    "InternalError",
    "MAX_PROVIDERS",
    "OUTCOMES",
    "OutcomeName",
    "Policy",
    "PolicyInForce",
    "RampStageSpec",
    "Opened",
    "POLICY_FIELDS",
    "ProbeExpired",
    "Probing",
    "ProviderResponseError",
    "ProviderStreamError",
    "ProviderView",
    "RampStage",
    "Reason",
    "Recovered",
    "Router",
    "Stream",
    "AsyncStream",
    "StreamBroken",
    "chunk_kind",
    "is_content",
    "is_terminal",
    "Throttled",
    "Ticket",
    "Unavailable",
    "Unthrottled",
    "Paced",
    "Unpaced",
    "Benched",
    "WindowStats",
    "classify_exception",
    "classify_facts",
    "classify_http",
    "classify_response",
    "classify_status",
    "facts_of_exception",
    "hash_key",
    "monotonic_ms",
    "parse_retry_after",
    "retry_after_from_headers",
    "validate_policy",
]
